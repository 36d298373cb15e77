//! A replay cache on Redis (feature `redis`): `SET key 1 NX EXAT expires_at`.

use std::{fmt, time::Duration};

use async_trait::async_trait;
use redis::{
    Client,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{ReplayCache, ReplayCacheError, ReplayKey};

/// The key prefix of [`RedisReplayCache::new`].
const DEFAULT_PREFIX: &str = "tjwt:dpop:";
/// Connect and response timeout of the caches built from a URL.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A [`ReplayCache`] on Redis (feature `redis`), shared by every instance
/// of the API: each proof is one `SET {prefix}{hex key} 1 NX EXAT
/// {expires_at}`, atomic, and Redis forgets it when it expires.
///
/// A Redis that is down or slow (over two seconds for the caches built from
/// a URL) refuses DPoP requests with 503, never lets a replay through.
#[derive(Clone)]
pub struct RedisReplayCache {
    conn: ConnectionManager,
    prefix: String,
}

impl fmt::Debug for RedisReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn error(message: &str) -> impl FnOnce(redis::RedisError) -> ReplayCacheError + '_ {
    move |e| ReplayCacheError::with_source(format!("redis: {message}"), e)
}

impl RedisReplayCache {
    /// Connects to the Redis at `url` (`redis://[:password@]host:port/db`).
    ///
    /// ```no_run
    /// use tower_jwt_auth::dpop::{Dpop, RedisReplayCache};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let cache = RedisReplayCache::new("redis://127.0.0.1:6379/").await?;
    /// let dpop = Dpop::builder()
    ///     .base_url("https://api.example.com")
    ///     .replay_cache(cache)
    ///     .build()?;
    /// # let _ = dpop;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn new(url: &str) -> Result<Self, ReplayCacheError> {
        let client = Client::open(url).map_err(error("invalid URL"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(error("cannot connect"))?;
        Ok(Self::from_connection_manager(conn))
    }

    /// A cache on a connection you configured yourself: the integration
    /// point with the `redis` crate, whose version is part of this
    /// function's signature.
    pub fn from_connection_manager(conn: ConnectionManager) -> Self {
        Self {
            conn,
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }

    /// Puts every key under `prefix` instead of `tjwt:dpop:`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

#[async_trait]
impl ReplayCache for RedisReplayCache {
    async fn first_use(&self, key: &ReplayKey, expires_at: i64) -> Result<bool, ReplayCacheError> {
        let mut conn = self.conn.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(format!("{}{}", self.prefix, key.to_hex()))
            .arg(1)
            .arg("NX")
            .arg("EXAT")
            .arg(expires_at.max(1))
            .query_async(&mut conn)
            .await
            .map_err(error("recording a DPoP proof failed"))?;
        Ok(reply.is_some())
    }
}
