//! The verified-token cache: a token verified once is accepted again, until
//! its `exp`, without its signature checked or its payload decoded again.
//!
//! - Keyed by the whole token and by the issuer the caller chose
//!   ([`Verifier::verify_for_issuer`](super::Verifier::verify_for_issuer)):
//!   the hash only finds the entry, the token is compared in full to accept it.
//! - An entry remembers which policy (issuer) verified it and the generation
//!   of that policy's keys; a key set that changed since (a remote JWK Set
//!   refetched with other keys) or keys that can no longer be used (stale)
//!   turn the entry into a miss, and the token is verified afresh.
//! - The time rules are those of a verification: an entry serves until
//!   `exp + leeway` (exclusive) and never before `nbf - leeway`. A
//!   verifier's configuration never changes once built: a new verifier
//!   starts with an empty cache.
//! - Only verified tokens are stored; failures never are.
//! - Bounded in entries and in memory: each entry weighs its estimated size,
//!   and never less than `max_memory / max_entries`, in a
//!   [`quick_cache`] (sharded, read-locked per shard: a read takes no global
//!   lock; S3-FIFO eviction keeps tokens in use over one-off ones).

use std::{
    any::Any,
    hash::{Hash, Hasher},
    sync::Arc,
};

use quick_cache::{Equivalent, Weighter, sync::Cache};

use crate::claims::VerifiedPayload;

/// A verified token, as cached.
pub(crate) struct Entry {
    /// The policy that verified it (its index; 0 for a single issuer).
    pub(crate) policy: usize,
    /// The generation of that policy's keys when it was verified.
    pub(crate) generation: u64,
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: Option<i64>,
    pub(crate) payload: VerifiedPayload,
    /// The application's claims, decoded once, for the claims type that
    /// first verified the token (the layer's); another type decodes the
    /// payload again.
    pub(crate) custom: Option<Box<dyn Any + Send + Sync>>,
    /// The estimated size of `custom`, counted when it was decoded.
    custom_size: usize,
}

impl Entry {
    pub(crate) fn new(
        policy: usize,
        generation: u64,
        exp: Option<i64>,
        nbf: Option<i64>,
        payload: VerifiedPayload,
    ) -> Self {
        Self {
            policy,
            generation,
            exp,
            nbf,
            payload,
            custom: None,
            custom_size: 0,
        }
    }

    /// Keeps the decoded claims; `size` is their estimated size.
    pub(crate) fn with_custom(mut self, custom: Box<dyn Any + Send + Sync>, size: usize) -> Self {
        self.custom = Some(custom);
        self.custom_size = size;
        self
    }

    /// Whether the entry may still serve at `now`: the same rules as a
    /// verification (`exp` exclusive, both widened by `leeway`).
    pub(crate) fn is_live(&self, now: i64, leeway: i64) -> bool {
        self.exp.is_none_or(|exp| now < exp.saturating_add(leeway))
            && self.nbf.is_none_or(|nbf| now.saturating_add(leeway) >= nbf)
    }
}

/// The owned key of an entry.
struct Key {
    issuer: Option<Box<str>>,
    token: Box<str>,
}

/// The key looked up, borrowed from the request.
struct Lookup<'a> {
    issuer: Option<&'a str>,
    token: &'a str,
}

fn hash_parts<H: Hasher>(issuer: Option<&str>, token: &str, state: &mut H) {
    issuer.hash(state);
    token.hash(state);
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts(self.issuer.as_deref(), &self.token, state);
    }
}

impl Hash for Lookup<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts(self.issuer, self.token, state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.issuer == other.issuer && self.token == other.token
    }
}

impl Eq for Key {}

impl Equivalent<Key> for Lookup<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.token == &*key.token && self.issuer == key.issuer.as_deref()
    }
}

/// What an entry costs beyond its variable parts: the entry and its key,
/// the shared payload's header, and the cache's own slot and index.
const FIXED_COST: usize = std::mem::size_of::<Entry>() + std::mem::size_of::<Key>() + 128;

/// Weighs an entry by its estimated size, and never less than the share of
/// one entry, so the weight bounds both the memory and the entry count.
#[derive(Clone)]
struct Weigh {
    min: u64,
}

impl Weighter<Key, Arc<Entry>> for Weigh {
    fn weight(&self, key: &Key, entry: &Arc<Entry>) -> u64 {
        let bytes = FIXED_COST
            + key.token.len()
            + key.issuer.as_deref().map_or(0, str::len)
            + entry.payload.json().len()
            + entry.custom_size;
        u64::try_from(bytes).unwrap_or(u64::MAX).max(self.min)
    }
}

/// The size settings of a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheSize {
    pub(crate) max_entries: usize,
    pub(crate) max_memory: usize,
}

/// Verified tokens; see the [module docs](self).
pub(crate) struct TokenCache {
    size: CacheSize,
    cache: Cache<Key, Arc<Entry>, Weigh>,
}

impl TokenCache {
    /// A cache of at most `size.max_entries` entries weighing at most
    /// `size.max_memory` bytes together. Both must be positive.
    pub(crate) fn new(size: CacheSize) -> Self {
        let max_entries = size.max_entries.max(1);
        let max_memory = u64::try_from(size.max_memory).unwrap_or(u64::MAX);
        let min = (max_memory / u64::try_from(max_entries).unwrap_or(u64::MAX)).max(1);
        Self {
            size,
            cache: Cache::with_weighter(max_entries, max_memory, Weigh { min }),
        }
    }

    pub(crate) fn size(&self) -> CacheSize {
        self.size
    }

    /// The entry of `token` (verified as a token of `issuer`, if given).
    pub(crate) fn get(&self, issuer: Option<&str>, token: &str) -> Option<Arc<Entry>> {
        self.cache.get(&Lookup { issuer, token })
    }

    pub(crate) fn insert(&self, issuer: Option<&str>, token: &str, entry: Entry) {
        let key = Key {
            issuer: issuer.map(Box::from),
            token: Box::from(token),
        };
        self.cache.insert(key, Arc::new(entry));
    }

    pub(crate) fn remove(&self, issuer: Option<&str>, token: &str) {
        self.cache.remove(&Lookup { issuer, token });
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.cache.len()
    }

    /// The summed weight of the entries: their estimated memory, at least
    /// the share of one entry each.
    pub(crate) fn weight(&self) -> u64 {
        self.cache.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(exp: Option<i64>, nbf: Option<i64>) -> Entry {
        Entry::new(
            0,
            0,
            exp,
            nbf,
            VerifiedPayload::new(b"{}", None, Default::default()),
        )
    }

    #[test]
    fn an_entry_lives_by_the_verification_rules() {
        // exp is exclusive, widened by the leeway.
        let e = entry(Some(100), None);
        assert!(e.is_live(99, 0));
        assert!(!e.is_live(100, 0));
        assert!(e.is_live(129, 30));
        assert!(!e.is_live(130, 30));
        // Never before nbf (less the leeway).
        let e = entry(Some(1000), Some(200));
        assert!(!e.is_live(199, 0));
        assert!(e.is_live(200, 0));
        assert!(e.is_live(170, 30));
        assert!(!e.is_live(169, 30));
        // No exp: live until evicted or invalidated.
        assert!(entry(None, None).is_live(i64::MAX, 30));
    }

    #[test]
    fn the_whole_token_and_the_issuer_choice_are_the_key() {
        let cache = TokenCache::new(CacheSize {
            max_entries: 100,
            max_memory: 1 << 20,
        });
        cache.insert(None, "a.b.c", entry(None, None));
        assert!(cache.get(None, "a.b.c").is_some());
        assert!(cache.get(None, "a.b.cd").is_none());
        assert!(cache.get(None, "a.b.").is_none());
        assert!(cache.get(Some("https://i"), "a.b.c").is_none());
        cache.insert(Some("https://i"), "a.b.c", entry(None, None));
        assert!(cache.get(Some("https://i"), "a.b.c").is_some());
        assert!(cache.get(Some("https://j"), "a.b.c").is_none());
        cache.remove(None, "a.b.c");
        assert!(cache.get(None, "a.b.c").is_none());
        assert!(cache.get(Some("https://i"), "a.b.c").is_some());
    }

    #[test]
    fn entries_and_memory_stay_bounded() {
        let size = CacheSize {
            max_entries: 64,
            max_memory: 64 * 1024,
        };
        let cache = TokenCache::new(size);
        for i in 0..10_000 {
            cache.insert(None, &format!("token-{i}"), entry(None, None));
        }
        assert!(cache.len() <= 64, "{} entries", cache.len());
        assert!(cache.weight() <= 64 * 1024, "{} bytes", cache.weight());

        // Large entries: the memory bound binds before the count.
        let cache = TokenCache::new(size);
        let big = "x".repeat(8 * 1024);
        for i in 0..1_000 {
            cache.insert(None, &format!("{big}{i}"), entry(None, None));
        }
        assert!(cache.len() <= 8, "{} entries", cache.len());
        assert!(cache.weight() <= 64 * 1024, "{} bytes", cache.weight());
    }
}
