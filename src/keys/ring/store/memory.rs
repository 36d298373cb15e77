//! A [`KeyRingStore`] in this process's memory.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use async_trait::async_trait;

use super::{KeyRingStore, KeyRingStoreError, StoredKey, StoredRing};

/// A [`KeyRingStore`] in memory: for one instance, and for tests.
///
/// Nothing survives a restart: a new process makes new keys, so tokens
/// signed before it no longer verify. Several instances need a shared
/// store (`RedisKeyRingStore`, `PostgresKeyRingStore`, or your own).
///
/// ```
/// use std::sync::Arc;
/// use tower_jwt_auth::{Algorithm, keys::ring::{KeyRing, store::MemoryKeyRingStore}};
///
/// # async fn run() -> Result<(), tower_jwt_auth::keys::ring::KeyRingError> {
/// let ring = KeyRing::builder(Algorithm::EdDSA)
///     .store(Arc::new(MemoryKeyRingStore::new()))
///     .build()
///     .await?;
/// # let _ = ring;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryKeyRingStore {
    rings: Mutex<HashMap<String, StoredRing>>,
}

impl MemoryKeyRingStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl KeyRingStore for MemoryKeyRingStore {
    async fn load(&self, ring: &str) -> Result<Option<StoredRing>, KeyRingStoreError> {
        let rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(rings.get(ring).cloned())
    }

    async fn compare_and_swap(
        &self,
        ring: &str,
        expected: Option<u64>,
        keys: &[StoredKey],
    ) -> Result<Option<u64>, KeyRingStoreError> {
        let mut rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        let current = rings.get(ring).map(|stored| stored.version);
        if current != expected {
            return Ok(None);
        }
        let version = current.unwrap_or(0) + 1;
        rings.insert(
            ring.to_owned(),
            StoredRing {
                version,
                keys: keys.to_vec(),
            },
        );
        Ok(Some(version))
    }
}
