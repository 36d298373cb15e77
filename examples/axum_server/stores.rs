//! Connecting to the refresh-token store that `REFRESH_STORE` names.

use std::sync::Arc;

use tower_jwt_auth::refresh::{MemoryStore, store::RefreshStore};

use super::config::StoreKind;

impl StoreKind {
    /// Connects to the store (and, for PostgreSQL, applies the schema).
    pub async fn connect(&self) -> Result<Arc<dyn RefreshStore>, String> {
        match self {
            Self::Memory => Ok(Arc::new(MemoryStore::new())),
            #[cfg(feature = "redis")]
            Self::Redis(url) => {
                let store = tower_jwt_auth::refresh::RedisStore::new(url)
                    .await
                    .map_err(|e| format!("cannot connect to Redis: {e}"))?;
                Ok(Arc::new(store))
            }
            #[cfg(feature = "redis")]
            Self::RedisCluster(urls) => {
                let store = tower_jwt_auth::refresh::RedisStore::cluster(urls)
                    .await
                    .map_err(|e| format!("cannot connect to the Redis Cluster: {e}"))?;
                Ok(Arc::new(store))
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => {
                let store = tower_jwt_auth::refresh::PostgresStore::new(url)
                    .await
                    .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
                store
                    .migrate()
                    .await
                    .map_err(|e| format!("cannot apply the schema: {e}"))?;
                Ok(Arc::new(store))
            }
            #[allow(unreachable_patterns)]
            other => Err(format!(
                "REFRESH_STORE={other:?} needs the matching cargo feature: \
                 cargo run --example axum_server --features redis (or postgres)"
            )),
        }
    }
}

#[cfg(feature = "key-ring")]
impl StoreKind {
    /// Connects to the key ring's store (key-ring mode): the same kind of
    /// store as the refresh tokens', so that every instance shares the ring.
    /// In memory, the ring is this process's alone.
    pub async fn connect_key_ring(
        &self,
    ) -> Result<Arc<dyn tower_jwt_auth::keys::ring::store::KeyRingStore>, String> {
        match self {
            Self::Memory => Ok(Arc::new(
                tower_jwt_auth::keys::ring::store::MemoryKeyRingStore::new(),
            )),
            #[cfg(feature = "redis")]
            Self::Redis(url) => {
                let store = tower_jwt_auth::keys::ring::store::RedisKeyRingStore::new(url)
                    .await
                    .map_err(|e| format!("cannot connect to Redis for the key ring: {e}"))?;
                Ok(Arc::new(store))
            }
            Self::RedisCluster(_) => Err("key-ring mode keeps the ring in a single Redis or in \
                 PostgreSQL, not on Redis Cluster: REFRESH_STORE=postgres, or one REDIS_URL"
                .to_owned()),
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => {
                let store = tower_jwt_auth::keys::ring::store::PostgresKeyRingStore::new(url)
                    .await
                    .map_err(|e| format!("cannot connect to PostgreSQL for the key ring: {e}"))?;
                store
                    .migrate()
                    .await
                    .map_err(|e| format!("cannot apply the key ring's schema: {e}"))?;
                Ok(Arc::new(store))
            }
            #[allow(unreachable_patterns)]
            other => Err(format!(
                "REFRESH_STORE={other:?} needs the matching cargo feature: \
                 cargo run --example axum_server --features key-ring,redis (or postgres)"
            )),
        }
    }
}
