//! A [`KeyRingStore`] on Redis (feature `redis`).

use std::{fmt, sync::LazyLock, time::Duration};

use async_trait::async_trait;
use redis::{
    Client, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{KeyRingStore, KeyRingStoreError, StoredKey, StoredRing, keys_from_json, keys_to_json};

/// The key prefix of [`RedisKeyRingStore::new`].
const DEFAULT_PREFIX: &str = "tjwt:ring:";
/// Connect and response timeout of the stores built from a URL.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The compare-and-swap, run server-side so that the check and the write are
/// one atomic step.
///
/// KEYS[1]: the ring's hash (fields `v`, the version, and `doc`, the JSON).
/// ARGV[1]: the expected version, or `""` for "no ring yet".
/// ARGV[2]: the new document.
/// Reply: the new version, or 0 when the version was not the expected one.
static COMPARE_AND_SWAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HGET', KEYS[1], 'v')
if v == false then v = '' end
if v ~= ARGV[1] then return 0 end
local next = (tonumber(v) or 0) + 1
redis.call('HSET', KEYS[1], 'v', next, 'doc', ARGV[2])
return next
",
    )
});

/// A [`KeyRingStore`] on Redis (feature `redis`).
///
/// Each ring is one hash, `{prefix}{ring name}` (prefix `tjwt:ring:` by
/// default, see [`with_prefix`](Self::with_prefix)), with the version and
/// the JSON document of [`keys_to_json`]; it never expires. The
/// compare-and-swap is a Lua script: atomic, one round trip.
///
/// The document holds the private keys: see [Private keys at
/// rest](super#private-keys-at-rest). Give the issuing service a Redis user
/// whose ACL covers this prefix, and no other service that user.
///
/// A Redis that is down or slow (over two seconds for the stores built from
/// a URL) makes calls fail with a [`KeyRingStoreError`]; the ring then keeps
/// signing with the keys it has (see [`KeyRing`](super::super::KeyRing)).
#[derive(Clone)]
pub struct RedisKeyRingStore {
    conn: ConnectionManager,
    prefix: String,
}

impl fmt::Debug for RedisKeyRingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisKeyRingStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn error(message: &str) -> impl FnOnce(redis::RedisError) -> KeyRingStoreError + '_ {
    move |e| KeyRingStoreError::with_source(format!("redis: {message}"), e)
}

impl RedisKeyRingStore {
    /// Connects to the Redis at `url` (`redis://[user:password@]host:port/db`).
    ///
    /// Fails if the URL is invalid or the server unreachable within two
    /// seconds. The connection reconnects by itself later on.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use tower_jwt_auth::{
    ///     Algorithm,
    ///     keys::ring::{KeyRing, store::RedisKeyRingStore},
    /// };
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = RedisKeyRingStore::new("redis://ring-writer:secret@127.0.0.1:6379/").await?;
    /// let ring = KeyRing::builder(Algorithm::ES256).store(Arc::new(store)).build().await?;
    /// # let _ = ring;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn new(url: &str) -> Result<Self, KeyRingStoreError> {
        let client = Client::open(url).map_err(error("invalid URL"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(error("cannot connect"))?;
        Ok(Self::from_connection_manager(conn))
    }

    /// A store on a connection you configured yourself (TLS, timeouts,
    /// retries): the integration point with the `redis` crate, whose version
    /// is part of this function's signature.
    pub fn from_connection_manager(conn: ConnectionManager) -> Self {
        Self {
            conn,
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }

    /// Puts every ring under `prefix` instead of `tjwt:ring:`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn key(&self, ring: &str) -> String {
        format!("{}{ring}", self.prefix)
    }
}

#[async_trait]
impl KeyRingStore for RedisKeyRingStore {
    async fn load(&self, ring: &str) -> Result<Option<StoredRing>, KeyRingStoreError> {
        let mut conn = self.conn.clone();
        let (version, document): (Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.key(ring))
            .arg("v")
            .arg("doc")
            .query_async(&mut conn)
            .await
            .map_err(error("cannot load the key ring"))?;
        match (version, document) {
            (None, None) => Ok(None),
            (Some(version), Some(document)) => Ok(Some(StoredRing {
                version,
                keys: keys_from_json(&document)?,
            })),
            _ => Err(KeyRingStoreError::new("redis: corrupt key ring")),
        }
    }

    async fn compare_and_swap(
        &self,
        ring: &str,
        expected: Option<u64>,
        keys: &[StoredKey],
    ) -> Result<Option<u64>, KeyRingStoreError> {
        let mut conn = self.conn.clone();
        let expected = expected.map(|v| v.to_string()).unwrap_or_default();
        let version: u64 = COMPARE_AND_SWAP
            .key(self.key(ring))
            .arg(expected)
            .arg(keys_to_json(keys))
            .invoke_async(&mut conn)
            .await
            .map_err(error("cannot write the key ring"))?;
        Ok((version != 0).then_some(version))
    }
}
