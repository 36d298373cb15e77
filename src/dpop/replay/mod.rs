//! The replay cache: every DPoP proof's `jti` is accepted once.

use std::{error::Error as StdError, fmt};

use async_trait::async_trait;

mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use self::memory::{DEFAULT_CAPACITY, MemoryReplayCache};
#[cfg(feature = "redis")]
pub use self::redis::RedisReplayCache;

/// What identifies a proof in the cache: SHA-256 of the thumbprint of the
/// proof's key and its `jti`, so proofs of different clients never collide
/// and a cache entry has a fixed size however long the `jti`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey([u8; 32]);

impl ReplayKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 characters: a convenient text key.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            let _ = write!(out, "{byte:02x}");
        }
        out
    }
}

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplayKey({}…)", &self.to_hex()[..12])
    }
}

/// Remembers the proofs already used, until they could no longer be
/// accepted anyway: implement it to share the cache between instances.
///
/// Usable as `Arc<dyn ReplayCache>`.
///
/// ```
/// use async_trait::async_trait;
/// use tower_jwt_auth::dpop::{ReplayCache, ReplayCacheError, ReplayKey};
///
/// /// A cache that forgets nothing (and so fills up): an example only.
/// #[derive(Debug, Default)]
/// struct Forever(std::sync::Mutex<std::collections::HashSet<ReplayKey>>);
///
/// #[async_trait]
/// impl ReplayCache for Forever {
///     async fn first_use(&self, key: &ReplayKey, _expires_at: i64) -> Result<bool, ReplayCacheError> {
///         Ok(self.0.lock().unwrap().insert(*key))
///     }
/// }
/// ```
#[async_trait]
pub trait ReplayCache: Send + Sync + fmt::Debug + 'static {
    /// Records `key` until `expires_at` (Unix seconds), atomically:
    /// `Ok(true)` if it was not recorded yet (the proof is accepted),
    /// `Ok(false)` if it was (a replay). Under any concurrency, at most one
    /// call for a key may answer `true` before `expires_at`.
    ///
    /// An error refuses the request with 503 and is never taken for a replay.
    async fn first_use(&self, key: &ReplayKey, expires_at: i64) -> Result<bool, ReplayCacheError>;
}

/// A shared cache: one cache for several [`Dpop`](super::Dpop) rules (an
/// API's and its token endpoint's), or kept by the application to watch.
#[async_trait]
impl<T: ReplayCache + ?Sized> ReplayCache for std::sync::Arc<T> {
    async fn first_use(&self, key: &ReplayKey, expires_at: i64) -> Result<bool, ReplayCacheError> {
        (**self).first_use(key, expires_at).await
    }
}

/// A replay cache failure: unreachable, full.
///
/// Its [`Display`](fmt::Display) is the message only; the driver's error,
/// if any, is its [`source`](StdError::source).
#[derive(Debug)]
pub struct ReplayCacheError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl ReplayCacheError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by `source` (a driver's error).
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for ReplayCacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for ReplayCacheError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}
