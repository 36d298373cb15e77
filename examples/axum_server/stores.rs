//! Connecting to the refresh-token store that `REFRESH_STORE` names, and
//! choosing how access tokens' sessions are checked against it.

use std::sync::Arc;

use tower_jwt_auth::{
    Claims, ConfigError,
    auth::Checked,
    refresh::{MemoryStore, RefreshTokens, store::RefreshStore},
};

use super::{app::AccessClaims, config::StoreKind};

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

/// How the layer checks that an access token's session is live.
#[derive(Clone, Debug)]
pub enum SessionCheck {
    /// One store lookup per request ([`RefreshTokens::session_check`]): the
    /// in-memory store, where a lookup is a map read in this process.
    Lookup,
    /// From memory, fed by the store's announcements of ended sessions
    /// ([`SessionBroadcast`]): Redis and PostgreSQL, shared by every
    /// instance. Falls back to lookups until synced.
    #[cfg(feature = "broadcast")]
    Broadcast(tower_jwt_auth::refresh::SessionBroadcast),
}

impl SessionCheck {
    /// The check for [`JwtAuthLayerBuilder::check`](tower_jwt_auth::JwtAuthLayerBuilder::check).
    pub fn check(&self, refresh: &RefreshTokens) -> SessionCheckFn {
        match self {
            Self::Lookup => {
                let check = refresh.session_check::<AccessClaims>();
                Arc::new(move |claims: &Claims<AccessClaims>| Checked::Pending(check(claims)))
            }
            #[cfg(feature = "broadcast")]
            Self::Broadcast(broadcast) => Arc::new(broadcast.check::<AccessClaims>()),
        }
    }

    /// `lookup` or `broadcast`, for the logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Lookup => "lookup",
            #[cfg(feature = "broadcast")]
            Self::Broadcast(_) => "broadcast",
        }
    }
}

/// A session check, shared by the layer's clones.
pub type SessionCheckFn = Arc<dyn Fn(&Claims<AccessClaims>) -> Checked + Send + Sync>;

impl StoreKind {
    /// The session check for `refresh`'s sessions in this store: the logout
    /// broadcast on Redis and PostgreSQL (its own connections to the same
    /// server; the task starts now, so this needs a Tokio runtime), a lookup
    /// per request in memory.
    pub fn session_check(&self, refresh: &RefreshTokens) -> Result<SessionCheck, ConfigError> {
        #[cfg(feature = "broadcast")]
        {
            use tower_jwt_auth::refresh::{SessionBroadcast, store::SessionEvents};
            let events: Result<Arc<dyn SessionEvents>, String> = match self {
                Self::Memory => return Ok(SessionCheck::Lookup),
                #[cfg(feature = "redis")]
                Self::Redis(url) => tower_jwt_auth::refresh::RedisStore::new_lazy(url)
                    .map(|store| Arc::new(store) as Arc<dyn SessionEvents>)
                    .map_err(|e| e.to_string()),
                // One subscription on any node hears the whole cluster.
                #[cfg(feature = "redis")]
                Self::RedisCluster(urls) => tower_jwt_auth::refresh::RedisStore::cluster_lazy(urls)
                    .map(|store| Arc::new(store) as Arc<dyn SessionEvents>)
                    .map_err(|e| e.to_string()),
                #[cfg(feature = "postgres")]
                Self::Postgres(url) => tower_jwt_auth::refresh::PostgresStore::new_lazy(url)
                    .map(|store| Arc::new(store) as Arc<dyn SessionEvents>)
                    .map_err(|e| e.to_string()),
                #[allow(unreachable_patterns)]
                _ => return Ok(SessionCheck::Lookup),
            };
            match events {
                Ok(events) => {
                    let broadcast = SessionBroadcast::builder(refresh.clone(), events).start()?;
                    Ok(SessionCheck::Broadcast(broadcast))
                }
                // Not after `connect` accepted the same URL; lookups work anyway.
                Err(error) => {
                    tracing::warn!(%error, "no logout broadcast: checking sessions by store lookups");
                    Ok(SessionCheck::Lookup)
                }
            }
        }
        #[cfg(not(feature = "broadcast"))]
        {
            let _ = refresh;
            Ok(SessionCheck::Lookup)
        }
    }
}
