//! A [`RefreshStore`] on Redis (feature `redis`).

use std::{collections::HashMap, fmt, sync::LazyLock, time::Duration};

use async_trait::async_trait;
use redis::{
    Client, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

mod events;

use super::{
    InvalidReason, RefreshStore, RotateOutcome, Rotation, Session, StoreError, TokenHash,
    TokenRecord, TokenStatus,
};

/// The key prefix of [`RedisStore::new`].
const DEFAULT_PREFIX: &str = "tjwt:";
/// How long keys outlive their session's `expires_at` by default.
const DEFAULT_EXPIRY_MARGIN: Duration = Duration::from_secs(300);
/// Connect and response timeout of the stores built from a URL.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How many sessions one purge script deletes before handing Redis back. A
/// month-old session can hold thousands of rotated tokens, so batches stay
/// small to keep each script short.
const PURGE_BATCH: u32 = 20;
/// How many of one user's sessions one `sessions` or `revoke_user` script
/// looks at before handing Redis back.
const USER_BATCH: u32 = 128;

// Key layout, with `P` the prefix:
//
// - `Pt:{hex hash}`    hash: fam (session id), par (hex, absent for the login's token), gen, cat, st (a|r|x), rat,
//                      rty (the retry permit's end, absent without one)
// - `Pf:{session id}`  hash: uid, dev (absent for None), cat, lat, exp, gen, rev (0|1),
//                      at (auth_time), jkt (absent for an unbound session)
// - `Pft:{session id}` set of the hex hashes of the session's tokens (for purge)
// - `Pu:{user id}`     sorted set of the ids of the user's sessions that are not
//                      revoked, by created_at (sessions, revoke_user, the session
//                      cap); every revocation takes the id out, so its size stays
//                      near the cap
// - `Pexp`             sorted set of session ids by expires_at (purge)
// - `Prev`             sorted set of revoked session ids by last_used_at (purge)
// - `Pended`           sorted set of the ids of sessions that ended (revoked), by the
//                      Redis time they ended, trimmed to a day (the logout broadcast's
//                      resync, see events.rs); the channel of the same name announces
//                      each one as it ends
//
// Every session, token and user key expires `margin` seconds after its
// session's `expires_at` (EXPIREAT), so dead sessions vanish on their own.
//
// The scripts are the `*.lua` files beside this one, each opening with its
// KEYS, ARGV and reply.

/// A script that ends sessions: `ended.lua` (its `ended(prefix, id)`
/// helper) before the file's own body.
macro_rules! with_ended {
    ($file:literal) => {
        concat!(include_str!("ended.lua"), include_str!($file))
    };
}

/// Stores a new session and its first token, and enforces the session cap.
/// KEYS, ARGV and reply: see `create.lua`.
static CREATE: LazyLock<Script> = LazyLock::new(|| Script::new(with_ended!("create.lua")));

/// The whole of [`RefreshStore::rotate`], atomically. KEYS, ARGV and reply: see `rotate.lua`.
static ROTATE: LazyLock<Script> = LazyLock::new(|| Script::new(with_ended!("rotate.lua")));

/// Gives a token a retry permit. KEYS, ARGV and reply: see `allow_retry.lua`.
///
/// Sent whole with `EVAL`, never as `EVALSHA`: it runs right after a failed
/// rotation, typically while Redis is too busy to answer in time, and an
/// `EVALSHA` answered `NOSCRIPT` (a script cache emptied by a restart or a
/// failover) after the client gave up would never be loaded and retried.
const ALLOW_RETRY: &str = include_str!("allow_retry.lua");

/// A token and its session in one round trip. KEYS, ARGV and reply: see `lookup.lua`.
static LOOKUP: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lookup.lua")));

/// Revokes one session. KEYS, ARGV and reply: see `revoke_session.lua`.
static REVOKE_SESSION: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_ended!("revoke_session.lua")));

/// Revokes a batch of a user's sessions. KEYS, ARGV and reply: see `revoke_user.lua`.
static REVOKE_USER: LazyLock<Script> =
    LazyLock::new(|| Script::new(with_ended!("revoke_user.lua")));

/// A page of a user's live sessions, oldest first. KEYS, ARGV and reply: see `sessions.lua`.
static SESSIONS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("sessions.lua")));

/// Deletes up to a batch of dead sessions with their tokens. KEYS, ARGV and reply: see `purge.lua`.
static PURGE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("purge.lua")));

/// A [`RefreshStore`] on Redis 7 or later (feature `redis`).
///
/// Rotation, with its reuse detection, session revocation, retry permit,
/// grace and expiry checks, is one Lua script run server-side: atomic under any concurrency,
/// one round trip (`EVALSHA`, loading the script on first use). So are
/// `create` (with the session cap), `revoke_session`, and each batch of
/// `revoke_user`, `sessions` and `purge`. Every script does bounded work: a
/// user's index holds only their sessions that are not revoked (about the
/// session cap), and longer lists are taken in batches.
///
/// Keys live under a prefix (`tjwt:` by default, see
/// [`with_prefix`](Self::with_prefix)) and hold only token *hashes*, in hex.
/// Session and token keys expire (`EXPIREAT`) a margin after their session's
/// absolute lifetime (five minutes by default, see
/// [`with_expiry_margin`](Self::with_expiry_margin)), so Redis never fills
/// with dead sessions; [`purge`](RefreshStore::purge) removes revoked ones
/// early and trims the two purge indexes (`{prefix}exp`, `{prefix}rev`).
///
/// Every revocation also announces the session for the logout broadcast
/// ([`SessionBroadcast`](crate::refresh::SessionBroadcast)): it is added to
/// the sorted set `{prefix}ended` and published on the channel of the same
/// name, in the same script.
///
/// The keys of one rotation are not in one hash slot: use a single Redis
/// (or a primary with replicas), not Redis Cluster.
///
/// A Redis that is down or slow (over two seconds for the stores built from
/// a URL) makes every call fail with a [`StoreError`], never a reuse verdict.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    /// Opens the pub/sub connections of the logout broadcast; `None` for a
    /// store from a connection manager until `with_pubsub_client`.
    client: Option<Client>,
    prefix: String,
    margin: u64,
    endpoint: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .field("expiry_margin_secs", &self.margin)
            .finish_non_exhaustive()
    }
}

/// The URL without its user info (passwords stay out of logs).
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = &rest[..end];
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[end..]),
                None => url.to_owned(),
            }
        }
        None => "<redis>".to_owned(),
    }
}

fn error(message: &str) -> impl FnOnce(redis::RedisError) -> StoreError + '_ {
    move |e| StoreError::with_source(format!("redis: {message}"), e)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(format!("redis: corrupt {what}"))
}

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200))
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://[:password@]host:port/db`,
    /// `rediss://` for TLS when the `redis` crate is built with it).
    ///
    /// Fails if the URL is invalid or the server unreachable within two
    /// seconds. The connection reconnects by itself later on.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use tower_jwt_auth::{
    ///     Algorithm, SigningKey, TokenIssuer,
    ///     refresh::{RedisStore, RefreshTokens},
    /// };
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = RedisStore::new("redis://127.0.0.1:6379/")
    ///     .await?
    ///     .with_prefix("myapp:sessions:");
    /// let issuer = TokenIssuer::new(SigningKey::hmac(
    ///     Algorithm::HS256,
    ///     b"a secret of at least thirty-two bytes!",
    /// )?);
    /// let tokens = RefreshTokens::new(Arc::new(store), issuer);
    /// # let _ = tokens;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn new(url: &str) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(error("invalid URL"))?;
        let conn = ConnectionManager::new_with_config(client.clone(), config())
            .await
            .map_err(error("cannot connect"))?;
        Ok(Self::build(conn, Some(client), redact(url)))
    }

    /// Like [`new`](Self::new), but connects on first use: starts even while
    /// Redis is down (calls fail with a [`StoreError`] until it is up).
    ///
    /// Must be called within a Tokio runtime.
    pub fn new_lazy(url: &str) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(error("invalid URL"))?;
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config())
            .map_err(error("cannot connect"))?;
        Ok(Self::build(conn, Some(client), redact(url)))
    }

    /// A store on a connection you configured yourself (TLS, timeouts,
    /// retries): the integration point with the `redis` crate, whose version
    /// is part of this function's signature.
    ///
    /// The logout broadcast ([`SessionBroadcast`](crate::refresh::SessionBroadcast))
    /// subscribes through a client of its own: give it one with
    /// [`with_pubsub_client`](Self::with_pubsub_client).
    pub fn from_connection_manager(conn: ConnectionManager) -> Self {
        Self::build(conn, None, "<connection manager>".to_owned())
    }

    /// The client that opens the pub/sub connections of the logout broadcast
    /// (one per subscription; the stores built from a URL use that URL).
    pub fn with_pubsub_client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    fn build(conn: ConnectionManager, client: Option<Client>, endpoint: String) -> Self {
        Self {
            conn,
            client,
            prefix: DEFAULT_PREFIX.to_owned(),
            margin: DEFAULT_EXPIRY_MARGIN.as_secs(),
            endpoint,
        }
    }

    /// Puts every key under `prefix` instead of `tjwt:`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How long after its session's `expires_at` Redis drops a key (five
    /// minutes by default; whole seconds).
    ///
    /// Until then an expired session is still known (a rotation is refused as
    /// expired rather than unknown, and `revoke_user` still counts it); the
    /// margin also absorbs clock skew between your servers and Redis.
    pub fn with_expiry_margin(mut self, margin: Duration) -> Self {
        self.margin = margin.as_secs();
        self
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    fn token_key(&self, hash: &TokenHash) -> String {
        self.key("t", &hash.to_hex())
    }
}

fn field<'a>(
    map: &'a HashMap<String, String>,
    name: &str,
    what: &str,
) -> Result<&'a str, StoreError> {
    map.get(name)
        .map(String::as_str)
        .ok_or_else(|| corrupt(what))
}

fn number<T: std::str::FromStr>(
    map: &HashMap<String, String>,
    name: &str,
    what: &str,
) -> Result<T, StoreError> {
    field(map, name, what)?.parse().map_err(|_| corrupt(what))
}

fn pairs(values: &[String]) -> HashMap<String, String> {
    values
        .chunks_exact(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

fn parse_session(id: &str, map: &HashMap<String, String>) -> Result<Session, StoreError> {
    const WHAT: &str = "session";
    let created_at = number(map, "cat", WHAT)?;
    Ok(Session {
        // Sessions stored before `at` existed: their login is their creation.
        auth_time: match map.get("at") {
            Some(_) => number(map, "at", WHAT)?,
            None => created_at,
        },
        jkt: map.get("jkt").cloned(),
        id: id.to_owned(),
        user_id: field(map, "uid", WHAT)?.to_owned(),
        device: map.get("dev").cloned(),
        created_at,
        last_used_at: number(map, "lat", WHAT)?,
        expires_at: number(map, "exp", WHAT)?,
        generation: number(map, "gen", WHAT)?,
        revoked: field(map, "rev", WHAT)? == "1",
    })
}

fn parse_token(hash: TokenHash, map: &HashMap<String, String>) -> Result<TokenRecord, StoreError> {
    const WHAT: &str = "token";
    let parent = match map.get("par") {
        Some(hex) => Some(TokenHash::from_hex(hex).ok_or_else(|| corrupt(WHAT))?),
        None => None,
    };
    let status = match field(map, "st", WHAT)? {
        "a" => TokenStatus::Active,
        "r" => TokenStatus::Rotated(number(map, "rat", WHAT)?),
        "x" => TokenStatus::Revoked,
        _ => return Err(corrupt(WHAT)),
    };
    Ok(TokenRecord {
        hash,
        session_id: field(map, "fam", WHAT)?.to_owned(),
        parent,
        generation: number(map, "gen", WHAT)?,
        created_at: number(map, "cat", WHAT)?,
        status,
    })
}

#[async_trait]
impl RefreshStore for RedisStore {
    async fn create(
        &self,
        session: &Session,
        token: &TokenRecord,
        max_sessions: u32,
    ) -> Result<Vec<String>, StoreError> {
        if token.session_id != session.id {
            return Err(StoreError::new("the token belongs to another session"));
        }
        let (status, rotated_at) = match token.status {
            TokenStatus::Active => ("a", String::new()),
            TokenStatus::Rotated(at) => ("r", at.to_string()),
            TokenStatus::Revoked => ("x", String::new()),
        };
        let expire_at = session.expires_at.saturating_add_unsigned(self.margin);
        let mut conn = self.conn.clone();
        CREATE
            .key(self.key("f", &session.id))
            .key(self.token_key(&token.hash))
            .key(self.key("ft", &session.id))
            .key(self.key("u", &session.user_id))
            .key(format!("{}exp", self.prefix))
            .key(format!("{}rev", self.prefix))
            .arg(&session.id)
            .arg(&session.user_id)
            .arg(if session.device.is_some() { "1" } else { "0" })
            .arg(session.device.as_deref().unwrap_or(""))
            .arg(session.created_at)
            .arg(session.last_used_at)
            .arg(session.expires_at)
            .arg(session.generation)
            .arg(if session.revoked { "1" } else { "0" })
            .arg(token.hash.to_hex())
            .arg(token.generation)
            .arg(token.created_at)
            .arg(status)
            .arg(rotated_at)
            .arg(expire_at)
            .arg(max_sessions)
            .arg(&self.prefix)
            .arg(session.auth_time)
            .arg(if session.jkt.is_some() { "1" } else { "0" })
            .arg(session.jkt.as_deref().unwrap_or(""))
            .invoke_async(&mut conn)
            .await
            .map_err(error("create failed"))
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Vec<String> = ROTATE
            .key(self.token_key(&rotation.presented))
            .key(self.token_key(&rotation.child))
            .arg(&self.prefix)
            .arg(rotation.presented.to_hex())
            .arg(rotation.child.to_hex())
            .arg(rotation.now)
            .arg(rotation.idle_cutoff)
            .arg(
                rotation
                    .grace_cutoff
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            )
            .arg(self.margin)
            .invoke_async(&mut conn)
            .await
            .map_err(error("rotate failed"))?;
        let session = || -> Result<Session, StoreError> {
            let id = reply.get(1).ok_or_else(|| corrupt("rotate reply"))?;
            parse_session(id, &pairs(&reply[2..]))
        };
        Ok(match reply.first().map(String::as_str) {
            Some("unknown") => RotateOutcome::Invalid(InvalidReason::Unknown),
            Some("revoked") => RotateOutcome::Invalid(InvalidReason::Revoked),
            Some("expired") => RotateOutcome::Invalid(InvalidReason::Expired),
            Some("rotated") => RotateOutcome::Rotated(session()?),
            Some("grace") => RotateOutcome::Grace(session()?),
            Some("retried") => RotateOutcome::Retried(session()?),
            Some("reused") => RotateOutcome::Reused(session()?),
            _ => return Err(corrupt("rotate reply")),
        })
    }

    async fn allow_retry(&self, hash: &TokenHash, until: i64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("EVAL")
            .arg(ALLOW_RETRY)
            .arg(1)
            .arg(self.token_key(hash))
            .arg(until)
            .query_async(&mut conn)
            .await
            .map_err(error("recording a retry permit failed"))?;
        Ok(())
    }

    async fn token(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        let mut conn = self.conn.clone();
        let map: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.token_key(hash))
            .query_async(&mut conn)
            .await
            .map_err(error("reading a token failed"))?;
        if map.is_empty() {
            return Ok(None);
        }
        parse_token(*hash, &map).map(Some)
    }

    async fn lookup(&self, hash: &TokenHash) -> Result<Option<(TokenRecord, Session)>, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Vec<String> = LOOKUP
            .key(self.token_key(hash))
            .arg(&self.prefix)
            .invoke_async(&mut conn)
            .await
            .map_err(error("reading a token failed"))?;
        let Some((fid, rest)) = reply.split_first() else {
            return Ok(None);
        };
        let pairs = |items: &[String]| -> HashMap<String, String> {
            items
                .chunks_exact(2)
                .map(|kv| (kv[0].clone(), kv[1].clone()))
                .collect()
        };
        let (count, rest) = rest.split_first().ok_or_else(|| corrupt("lookup"))?;
        let count: usize = count.parse().map_err(|_| corrupt("lookup"))?;
        if count > rest.len() {
            return Err(corrupt("lookup"));
        }
        let (token, session) = rest.split_at(count);
        Ok(Some((
            parse_token(*hash, &pairs(token))?,
            parse_session(fid, &pairs(session))?,
        )))
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let mut conn = self.conn.clone();
        let map: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.key("f", id))
            .query_async(&mut conn)
            .await
            .map_err(error("reading a session failed"))?;
        if map.is_empty() {
            return Ok(None);
        }
        parse_session(id, &map).map(Some)
    }

    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let found: i64 = REVOKE_SESSION
            .key(self.key("f", id))
            .key(format!("{}rev", self.prefix))
            .arg(id)
            .arg(&self.prefix)
            .invoke_async(&mut conn)
            .await
            .map_err(error("revoking a session failed"))?;
        Ok(found == 1)
    }

    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let mut total = 0;
        loop {
            let (revoked, seen): (u64, u64) = REVOKE_USER
                .key(self.key("u", user_id))
                .key(format!("{}rev", self.prefix))
                .arg(&self.prefix)
                .arg(USER_BATCH)
                .invoke_async(&mut conn)
                .await
                .map_err(error("revoking a user's sessions failed"))?;
            total += revoked;
            if seen < u64::from(USER_BATCH) {
                return Ok(total);
            }
        }
    }

    async fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        let mut conn = self.conn.clone();
        let mut sessions = Vec::new();
        let mut offset = 0;
        loop {
            let page: Vec<Vec<String>> = SESSIONS
                .key(self.key("u", user_id))
                .arg(&self.prefix)
                .arg(now)
                .arg(offset)
                .arg(USER_BATCH)
                .invoke_async(&mut conn)
                .await
                .map_err(error("listing sessions failed"))?;
            let (seen, rows) = page
                .split_first()
                .ok_or_else(|| corrupt("sessions reply"))?;
            let seen: u32 = seen
                .first()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| corrupt("sessions reply"))?;
            for row in rows {
                let (id, rest) = row.split_first().ok_or_else(|| corrupt("sessions reply"))?;
                // A page boundary that moved under a concurrent login or
                // revocation may show a session twice.
                if !sessions.iter().any(|s: &Session| &s.id == id) {
                    sessions.push(parse_session(id, &pairs(rest))?);
                }
            }
            if seen < USER_BATCH {
                return Ok(sessions);
            }
            offset += USER_BATCH;
        }
    }

    async fn purge(&self, now: i64, revoked_before: i64) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let mut total = 0;
        loop {
            let (deleted, seen): (u64, u64) = PURGE
                .key(format!("{}exp", self.prefix))
                .key(format!("{}rev", self.prefix))
                .arg(&self.prefix)
                .arg(now)
                .arg(revoked_before)
                .arg(PURGE_BATCH)
                .invoke_async(&mut conn)
                .await
                .map_err(error("purge failed"))?;
            total += deleted;
            if seen < u64::from(PURGE_BATCH) {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("redis://:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1/"), "redis://127.0.0.1/");
    }
}
