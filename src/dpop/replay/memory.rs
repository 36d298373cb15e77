//! The embedded replay cache.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
};

use async_trait::async_trait;

use super::{ReplayCache, ReplayCacheError, ReplayKey};
use crate::verifier::now;

/// The default capacity of a [`MemoryReplayCache`]: 100,000 proofs (about
/// 10 MB), 1,600 requests a second for the default proof lifetime.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// A [`ReplayCache`] in this process's memory, bounded: at most `capacity`
/// proofs are remembered, each until it expires.
///
/// When it is full of proofs that have not expired, new proofs are refused
/// (503) rather than old ones forgotten: forgetting would let a replay in.
/// Size it for the peak rate of DPoP requests times the proof lifetime.
#[derive(Debug)]
pub struct MemoryReplayCache {
    state: Mutex<State>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    seen: HashMap<ReplayKey, i64>,
    /// Keys in insertion order with their expiry, to drop the expired.
    order: VecDeque<(ReplayKey, i64)>,
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl MemoryReplayCache {
    /// A cache remembering at most `capacity` proofs.
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::default(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many proofs are remembered.
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// Whether no proof is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, key: &ReplayKey, expires_at: i64, now: i64) -> Result<bool, ReplayCacheError> {
        let mut state = self.lock();
        let State { seen, order } = &mut *state;
        // Expiries are close to insertion order (now plus a fixed window):
        // dropping from the front keeps the cache bounded in amortized O(1).
        while let Some(&(old, at)) = order.front() {
            if at > now {
                break;
            }
            order.pop_front();
            if seen.get(&old) == Some(&at) {
                seen.remove(&old);
            }
        }
        if let Some(&at) = seen.get(key)
            && at > now
        {
            return Ok(false);
        }
        if seen.len() >= self.capacity {
            return Err(ReplayCacheError::new("the DPoP replay cache is full"));
        }
        seen.insert(*key, expires_at);
        order.push_back((*key, expires_at));
        Ok(true)
    }
}

#[async_trait]
impl ReplayCache for MemoryReplayCache {
    async fn first_use(&self, key: &ReplayKey, expires_at: i64) -> Result<bool, ReplayCacheError> {
        self.insert(key, expires_at, now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> ReplayKey {
        ReplayKey::from_bytes([n; 32])
    }

    #[test]
    fn a_key_is_accepted_once_until_it_expires() {
        let cache = MemoryReplayCache::new(10);
        assert!(cache.insert(&key(1), 100, 50).unwrap());
        assert!(!cache.insert(&key(1), 100, 60).unwrap());
        assert!(
            cache.insert(&key(1), 200, 100).unwrap(),
            "expired, forgotten"
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets() {
        let cache = MemoryReplayCache::new(2);
        assert!(cache.insert(&key(1), 100, 0).unwrap());
        assert!(cache.insert(&key(2), 100, 0).unwrap());
        assert!(cache.insert(&key(3), 100, 0).is_err());
        assert!(!cache.insert(&key(1), 100, 1).unwrap(), "still a replay");
        // Once the first expire, there is room again.
        assert!(cache.insert(&key(3), 300, 100).unwrap());
        assert_eq!(cache.len(), 1);
    }
}
