//! A [`RefreshStore`] on Redis or Redis Cluster (feature `redis`).

mod connection;

use std::{collections::HashMap, fmt, sync::LazyLock, time::Duration};

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt, stream};
use redis::{
    Client, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
};

mod events;

use self::connection::Connection;
use super::{
    InvalidReason, RefreshStore, RotateOutcome, Rotation, Session, StoreError, TokenHash,
    TokenRecord, TokenStatus,
};
use crate::refresh::session::{USER_TAG_LEN, user_tag};

/// The key prefix of [`RedisStore::new`].
const DEFAULT_PREFIX: &str = "tjwt:";
/// How long keys outlive their session's `expires_at` by default.
const DEFAULT_EXPIRY_MARGIN: Duration = Duration::from_secs(300);
/// Connect and response timeout of the stores built from URLs.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How many sessions one purge script deletes before handing Redis back. A
/// month-old session can hold thousands of rotated tokens, so batches stay
/// small to keep each script short.
const PURGE_BATCH: u32 = 20;
/// How many tags one purge, or one resync of the logout broadcast, works on at once.
const TAG_CONCURRENCY: usize = 32;
/// How many of one user's sessions one `sessions` or `revoke_user` script
/// looks at before handing Redis back.
const USER_BATCH: u32 = 128;
/// How many times a script that asks for further keys to declare (see
/// `create.lua`, `rotate.lua`, `revoke_user.lua`) is called again in a row
/// before giving up with a [`StoreError`]: once is the rule, more only when
/// concurrent logins or logouts change what it needs in between.
const DECLARE_ATTEMPTS: u32 = 4;
/// The characters of a user tag (base64url).
const TAG_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Key layout, with `P` the prefix and `T` a user's tag (two base64url
// characters, 12 bits of SHA-256 of the user id: `session::user_tag`). Every
// session id starts with its user's tag (`Session::new_id`), and every
// refresh token names its session, so each call finds `T` without a lookup.
// `{T}` is a Redis Cluster hash tag: all keys of a user, their sessions and
// those sessions' tokens share one hash slot, so every script below runs in
// one slot, atomically, on a single Redis and on Redis Cluster alike.
//
// - `P{T}t:{hex hash}`    hash: fam (session id), par (hex, absent for the login's token), gen, cat,
//                         st (a|r|x), rat, rty (the retry permit's end, absent without one)
// - `P{T}f:{session id}`  hash: uid, dev (absent for None), cat, lat, exp, gen, rev (0|1),
//                         at (auth_time), jkt (absent for an unbound session)
// - `P{T}ft:{session id}` set of the hex hashes of the session's tokens (for purge)
// - `P{T}u:{user id}`     sorted set of the ids of the user's sessions that are not
//                         revoked, by created_at (sessions, revoke_user, the session
//                         cap); every revocation takes the id out, so its size stays
//                         near the cap
// - `P{T}exp`             sorted set of the tag's session ids by expires_at (purge)
// - `P{T}rev`             sorted set of the tag's revoked session ids by last_used_at (purge)
// - `P{T}ended`           sorted set of the tag's session ids that ended (revoked), by the
//                         Redis time they ended, trimmed to a day (the logout broadcast's
//                         resync, see events.rs)
//
// And one channel, not a key: `Pended`, on which every revocation PUBLISHes
// the session id (the logout broadcast, see events.rs).
//
// Every session, token and user key expires `margin` seconds after its
// session's `expires_at` (EXPIREAT), so dead sessions vanish on their own.
//
// The scripts are the `*.lua` files beside this one, each opening with its
// KEYS, ARGV and reply. The scripts that write declare every key they
// touch in KEYS: Redis Cluster checks declared keys (their slot, `ASK`
// during a migration) before a script runs, but an undeclared key only when
// the script touches it, and Redis never rolls back a script's earlier
// writes. Where a script needs a key that Rust cannot compute up front
// (the user index of a session's user, the sessions the cap or `revoke_user`
// revoke), it first answers with what it needs and writes nothing, and is
// called again with those keys declared (`DECLARE_ATTEMPTS`). The read-only
// `sessions.lua` and the purge (which deletes dead sessions, its indexes
// trimmed last) still build keys of their tag from the base `P{T}`.
//
// Scripts that revoke sessions: rotate.lua (the reuse branch), create.lua
// (the session cap), revoke_session.lua and revoke_user.lua; each such
// branch is marked by a comment and goes through `revoke` (ended.lua):
// announce first, then mark revoked, so a script that fails part way has
// announced (the broadcast fails closed), and revoking a revoked session
// announces it again (a retry finishes the work).

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

/// Deletes up to a batch of one tag's dead sessions with their tokens.
/// KEYS, ARGV and reply: see `purge.lua`.
static PURGE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("purge.lua")));

/// A [`RefreshStore`] on Redis 7 or later, single or Redis Cluster (feature `redis`).
///
/// Rotation, with its reuse detection, session revocation, retry permit,
/// grace and expiry checks, is one Lua script run server-side: atomic under
/// any concurrency, one round trip (`EVALSHA`, loading the script on first
/// use). So are `create` (with the session cap), `revoke_session`, and each
/// batch of `revoke_user`, `sessions` and `purge`. Every script does bounded
/// work: a user's index holds only their sessions that are not revoked
/// (about the session cap), and longer lists are taken in batches.
///
/// Every script that writes declares each key it touches (Redis checks
/// declared keys before a script runs, and never rolls back the writes of
/// one that fails half way). Keys the store learns only from Redis cost a
/// first call that writes nothing and names them: the user of the session
/// that a reuse revokes (a reuse takes two round trips, a rotation one),
/// the sessions that the cap revokes (a login over the cap takes two), the
/// user of the session `revoke_session` revokes (two), and each batch of
/// `revoke_user` (one more in all).
///
/// # Redis Cluster
///
/// [`cluster`](Self::cluster) connects to a Redis Cluster. Every key of a
/// user, of their sessions and of those sessions' tokens carries the user's
/// *tag* as a hash tag (`{Xy}`, 12 bits of SHA-256 of the user id, 4096
/// tags): it is the first two characters of every session id
/// ([`Session::new_id`]), and a refresh token names its session, so each
/// call finds its slot without a lookup and every script above runs in one
/// slot. Nothing is consistent "eventually": logout everywhere, the session
/// list and the session cap are as atomic on the cluster as on one Redis.
/// The same scripts and keys serve both (a single Redis ignores hash tags),
/// so a store moves from one to the other with its data (`MIGRATE`).
/// [`purge`](RefreshStore::purge) visits the 4096 tags (32 at a time).
///
/// Sessions must have ids from [`Session::new_id`] for their user
/// ([`RefreshTokens`](crate::refresh::RefreshTokens) makes them so):
/// [`create`](RefreshStore::create) refuses others with a [`StoreError`].
///
/// Keys live under a prefix (`tjwt:` by default, see
/// [`with_prefix`](Self::with_prefix)) and hold only token *hashes*, in hex.
/// Session and token keys expire (`EXPIREAT`) a margin after their session's
/// absolute lifetime (five minutes by default, see
/// [`with_expiry_margin`](Self::with_expiry_margin)), so Redis never fills
/// with dead sessions; [`purge`](RefreshStore::purge) removes revoked ones
/// early and trims the purge indexes (`{prefix}{tag}exp`, `{prefix}{tag}rev`).
///
/// # Logout broadcast
///
/// Every revocation also announces the session for the logout broadcast
/// ([`SessionBroadcast`](crate::refresh::SessionBroadcast), through
/// [`SessionEvents`](crate::refresh::store::SessionEvents)), in the same
/// script: it is added to its tag's sorted set `{prefix}{tag}ended` (by
/// Redis time, trimmed to a day) and `PUBLISH`ed on the one channel
/// `{prefix}ended`. A subscription is a pub/sub connection of its own that
/// `SUBSCRIBE`s to that channel (pinging every five seconds); a resync reads
/// the 4096 tags' sorted sets, 32 at a time.
///
/// A script announces a session *before* it marks it revoked, so one that
/// fails part way has announced (the broadcast refuses the session's access
/// tokens: it fails closed); and [`revoke_session`](RefreshStore::revoke_session)
/// on a session revoked already announces it again and finishes the rest
/// (duplicate announcements are harmless), so a logout retried after a
/// failure repairs it. Announcements, and ids read back by a resync, that
/// are no session id (22 base64url characters) are skipped: only the
/// store's own Redis user should be allowed to `PUBLISH` on the channel
/// (Redis ACL `&{prefix}ended`), since a forged well-formed id refuses that
/// session's access tokens for the window.
///
/// On Redis Cluster, a script may only touch keys of its own slot, so there
/// is a sorted set per tag rather than one for the store. The channel stays
/// one: `PUBLISH` names no key, so a script of any slot may call it, and the
/// node running it forwards the message over the cluster bus to every node;
/// a subscription on any one node hears every tag (it tries the nodes of
/// [`cluster`](Self::cluster) in turn). Sharded pub/sub (`SPUBLISH` on a
/// channel per tag) would keep the messages off the bus, but every instance
/// would then hold 4096 shard subscriptions on the masters that own them and
/// follow each resharding and failover, which end them; logouts are rare,
/// and one short message per logout over the bus costs less. A resync needs
/// every master to answer: while one is down, the broadcast keeps falling
/// back to lookups.
///
/// A Redis that is down or slow (over two seconds for the stores built from
/// URLs), or a cluster node that is, makes the calls that need it fail with
/// a [`StoreError`], never a reuse verdict; calls for users in the slots of
/// the other nodes carry on while the cluster still covers every slot.
/// A rotation that the client library sends again (after a lost answer or
/// a failover) is answered as a rotation again, never as reuse.
#[derive(Clone)]
pub struct RedisStore {
    conn: Connection,
    /// Opens the pub/sub connections of the logout broadcast, tried in turn:
    /// the URL's client, or one per cluster node; empty for a store from a
    /// connection until `with_pubsub_client`.
    pubsub: Vec<Client>,
    prefix: String,
    margin: u64,
    endpoint: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("endpoint", &self.endpoint)
            .field("cluster", &matches!(self.conn, Connection::Cluster(_)))
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

/// A script that kept asking for other keys to declare (the user's
/// sessions changing under it).
fn unsettled(what: &str) -> StoreError {
    StoreError::new(format!(
        "redis: {what} gave up: the keys to declare kept changing"
    ))
}

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200))
}

/// The cluster client of [`RedisStore::cluster`]: the same timeouts as a
/// single Redis, the whole request (redirections and retries included)
/// bounded by the response timeout.
fn cluster_client(urls: &[String]) -> Result<redis::cluster::ClusterClient, StoreError> {
    if urls.is_empty() {
        return Err(StoreError::new(
            "redis: a cluster needs at least one node URL",
        ));
    }
    ClusterClientBuilder::new(urls.iter().map(String::as_str))
        .connection_timeout(TIMEOUT)
        .response_timeout(TIMEOUT)
        .retries(3)
        .build()
        .map_err(error("invalid cluster URL"))
}

/// A client per node URL, for the logout broadcast's subscriptions.
fn node_clients(urls: &[String]) -> Result<Vec<Client>, StoreError> {
    urls.iter()
        .map(|url| Client::open(url.as_str()).map_err(error("invalid cluster URL")))
        .collect()
}

/// The node URLs, redacted, for `Debug`.
fn cluster_endpoint(urls: &[String]) -> String {
    let nodes: Vec<String> = urls.iter().map(|url| redact(url)).collect();
    format!("cluster {}", nodes.join(","))
}

/// The tag of session `id`: its first two characters (the user's tag, for
/// an id made by `Session::new_id`).
fn session_tag(id: &str) -> &str {
    id.get(..USER_TAG_LEN).unwrap_or(id)
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
        Ok(Self::build(
            Connection::Single(conn),
            vec![client],
            redact(url),
        ))
    }

    /// Like [`new`](Self::new), but connects on first use: starts even while
    /// Redis is down (calls fail with a [`StoreError`] until it is up).
    ///
    /// Must be called within a Tokio runtime.
    pub fn new_lazy(url: &str) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(error("invalid URL"))?;
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config())
            .map_err(error("cannot connect"))?;
        Ok(Self::build(
            Connection::Single(conn),
            vec![client],
            redact(url),
        ))
    }

    /// Connects to the Redis Cluster that `nodes` belong to: one or more
    /// node URLs (`redis://[:password@]host:port`); the client learns the
    /// others and the slot map from them, and follows resharding and
    /// failover (`MOVED`, `ASK`).
    ///
    /// Fails if a URL is invalid or no node answers within two seconds.
    /// Every request, redirections and retries included, gives up after two
    /// seconds with a [`StoreError`].
    ///
    /// ```no_run
    /// use tower_jwt_auth::refresh::RedisStore;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = RedisStore::cluster([
    ///     "redis://10.0.0.1:6379",
    ///     "redis://10.0.0.2:6379",
    ///     "redis://10.0.0.3:6379",
    /// ])
    /// .await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn cluster<I>(nodes: I) -> Result<Self, StoreError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let urls: Vec<String> = nodes.into_iter().map(|u| u.as_ref().to_owned()).collect();
        let conn = cluster_client(&urls)?
            .get_async_connection()
            .await
            .map_err(error("cannot connect to the cluster"))?;
        Ok(Self::build(
            Connection::Cluster(conn),
            node_clients(&urls)?,
            cluster_endpoint(&urls),
        ))
    }

    /// Like [`cluster`](Self::cluster), but connects on first use: starts
    /// even while the cluster is down (calls fail with a [`StoreError`]
    /// until it is up).
    ///
    /// Must be called within a Tokio runtime.
    pub fn cluster_lazy<I>(nodes: I) -> Result<Self, StoreError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let urls: Vec<String> = nodes.into_iter().map(|u| u.as_ref().to_owned()).collect();
        let conn = cluster_client(&urls)?.get_pending_async_connection_with_config(
            // A config replaces the client's timeouts: the same again.
            redis::cluster::ClusterConfig::new()
                .set_connection_timeout(TIMEOUT)
                .set_response_timeout(TIMEOUT),
        );
        Ok(Self::build(
            Connection::Cluster(conn),
            node_clients(&urls)?,
            cluster_endpoint(&urls),
        ))
    }

    /// A store on a connection you configured yourself (TLS, timeouts,
    /// retries): the integration point with the `redis` crate, whose version
    /// is part of this function's signature.
    ///
    /// The logout broadcast ([`SessionBroadcast`](crate::refresh::SessionBroadcast))
    /// subscribes through a client of its own: give it one with
    /// [`with_pubsub_client`](Self::with_pubsub_client).
    pub fn from_connection_manager(conn: ConnectionManager) -> Self {
        Self::build(
            Connection::Single(conn),
            Vec::new(),
            "<connection manager>".to_owned(),
        )
    }

    /// A store on a Redis Cluster connection you configured yourself: the
    /// integration point with the `redis` crate, whose version is part of
    /// this function's signature. Keep a response timeout on it: without
    /// one, a node that stops answering blocks rotations instead of failing
    /// them with a [`StoreError`].
    ///
    /// The logout broadcast subscribes through a client of its own: give it
    /// one for any node of the cluster with
    /// [`with_pubsub_client`](Self::with_pubsub_client).
    pub fn from_cluster_connection(conn: ClusterConnection) -> Self {
        Self::build(
            Connection::Cluster(conn),
            Vec::new(),
            "<cluster connection>".to_owned(),
        )
    }

    /// The client that opens the pub/sub connections of the logout broadcast
    /// (one per subscription; the stores built from URLs use those URLs).
    /// On Redis Cluster, a client for any one node: every node hears every
    /// announcement (see the type's docs, "Logout broadcast").
    pub fn with_pubsub_client(mut self, client: Client) -> Self {
        self.pubsub = vec![client];
        self
    }

    fn build(conn: Connection, pubsub: Vec<Client>, endpoint: String) -> Self {
        Self {
            conn,
            pubsub,
            prefix: DEFAULT_PREFIX.to_owned(),
            margin: DEFAULT_EXPIRY_MARGIN.as_secs(),
            endpoint,
        }
    }

    /// Puts every key under `prefix` instead of `tjwt:`.
    ///
    /// Keep braces (`{`, `}`) out of it: on Redis Cluster they would make
    /// the prefix the hash tag of every key, all in one slot.
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

    /// `P{T}`: the prefix and hash tag of every key of tag `tag`.
    fn base(&self, tag: &str) -> String {
        format!("{}{{{tag}}}", self.prefix)
    }

    /// The base of the keys of session `id`.
    fn session_base(&self, id: &str) -> String {
        self.base(session_tag(id))
    }

    /// The base of the keys of user `user_id`.
    fn user_base(&self, user_id: &str) -> String {
        self.base(&user_tag(user_id))
    }

    fn token_key(base: &str, hash: &TokenHash) -> String {
        format!("{base}t:{}", hash.to_hex())
    }

    /// The key of the session `id`, for a raw look at the store (tests).
    #[doc(hidden)]
    pub fn session_key(&self, id: &str) -> String {
        format!("{}f:{id}", self.session_base(id))
    }

    /// The key of a token of session `session_id`, for a raw look at the
    /// store (tests).
    #[doc(hidden)]
    pub fn token_key_of(&self, session_id: &str, hash: &TokenHash) -> String {
        Self::token_key(&self.session_base(session_id), hash)
    }

    /// Purges the dead sessions of one tag; returns how many.
    async fn purge_tag(&self, tag: &str, now: i64, revoked_before: i64) -> Result<u64, StoreError> {
        let base = self.base(tag);
        let mut conn = self.conn.clone();
        let mut total = 0;
        loop {
            let (deleted, seen): (u64, u64) = PURGE
                .key(format!("{base}exp"))
                .key(format!("{base}rev"))
                .arg(&base)
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

/// Every user tag: two base64url characters.
fn all_tags() -> impl Iterator<Item = String> {
    TAG_ALPHABET.iter().flat_map(|&a| {
        TAG_ALPHABET
            .iter()
            .map(move |&b| String::from_utf8(vec![a, b]).expect("ASCII"))
    })
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
        let base = self.user_base(&session.user_id);
        // The shape too: the logout broadcast hears only ids of this shape
        // (see events.rs).
        if session_tag(&session.id) != user_tag(&session.user_id)
            || !events::is_session_id(session.id.as_bytes())
        {
            return Err(StoreError::new(
                "redis: the session id was not made by Session::new_id for its user",
            ));
        }
        let (status, rotated_at) = match token.status {
            TokenStatus::Active => ("a", String::new()),
            TokenStatus::Rotated(at) => ("r", at.to_string()),
            TokenStatus::Revoked => ("x", String::new()),
        };
        let expire_at = session.expires_at.saturating_add_unsigned(self.margin);
        let channel = self.ended_channel();
        // The sessions the cap revokes are declared keys: a first call names
        // them (writing nothing) when the user is over the cap.
        let mut conn = self.conn.clone();
        let mut declared: Vec<String> = Vec::new();
        for _ in 0..DECLARE_ATTEMPTS {
            let mut invocation = CREATE.prepare_invoke();
            invocation
                .key(format!("{base}f:{}", session.id))
                .key(Self::token_key(&base, &token.hash))
                .key(format!("{base}ft:{}", session.id))
                .key(format!("{base}u:{}", session.user_id))
                .key(format!("{base}exp"))
                .key(format!("{base}rev"))
                .key(format!("{base}ended"))
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
                .arg(&rotated_at)
                .arg(expire_at)
                .arg(max_sessions)
                .arg(&channel)
                .arg(session.auth_time)
                .arg(if session.jkt.is_some() { "1" } else { "0" })
                .arg(session.jkt.as_deref().unwrap_or(""));
            for id in &declared {
                invocation.key(format!("{base}f:{id}")).arg(id);
            }
            let mut reply: Vec<String> = invocation
                .invoke_async(&mut conn)
                .await
                .map_err(error("create failed"))?;
            match reply.first().map(String::as_str) {
                Some("created") => {
                    reply.remove(0);
                    return Ok(reply);
                }
                Some("need") => declared = reply.split_off(1),
                _ => return Err(corrupt("create reply")),
            }
        }
        Err(unsettled("create"))
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let base = self.session_base(&rotation.session_id);
        let channel = self.ended_channel();
        let mut conn = self.conn.clone();
        // The reuse branch revokes, and needs the user's index declared: the
        // session's user, which a first call names (writing nothing). Only a
        // reuse takes the second round trip.
        let mut user = String::new();
        let mut reply: Vec<String> = Vec::new();
        for _ in 0..DECLARE_ATTEMPTS {
            reply = ROTATE
                .key(Self::token_key(&base, &rotation.presented))
                .key(Self::token_key(&base, &rotation.child))
                .key(format!("{base}f:{}", rotation.session_id))
                .key(format!("{base}ft:{}", rotation.session_id))
                .key(format!("{base}rev"))
                .key(format!("{base}ended"))
                .key(format!("{base}u:{user}"))
                .arg(&rotation.session_id)
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
                .arg(&channel)
                .arg(&user)
                .invoke_async(&mut conn)
                .await
                .map_err(error("rotate failed"))?;
            match reply.as_slice() {
                [outcome, uid] if outcome == "user" => user = uid.clone(),
                _ => break,
            }
        }
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
            Some("user") => return Err(unsettled("rotate")),
            _ => return Err(corrupt("rotate reply")),
        })
    }

    async fn allow_retry(
        &self,
        session_id: &str,
        hash: &TokenHash,
        until: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("EVAL")
            .arg(ALLOW_RETRY)
            .arg(1)
            .arg(self.token_key_of(session_id, hash))
            .arg(until)
            .arg(session_id)
            .query_async(&mut conn)
            .await
            .map_err(error("recording a retry permit failed"))?;
        Ok(())
    }

    async fn token(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let mut conn = self.conn.clone();
        let map: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.token_key_of(session_id, hash))
            .query_async(&mut conn)
            .await
            .map_err(error("reading a token failed"))?;
        if map.is_empty() {
            return Ok(None);
        }
        let token = parse_token(*hash, &map)?;
        Ok((token.session_id == session_id).then_some(token))
    }

    async fn lookup(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<Option<(TokenRecord, Session)>, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Vec<String> = LOOKUP
            .key(self.token_key_of(session_id, hash))
            .key(self.session_key(session_id))
            .arg(session_id)
            .invoke_async(&mut conn)
            .await
            .map_err(error("reading a token failed"))?;
        let Some((count, rest)) = reply.split_first() else {
            return Ok(None);
        };
        let count: usize = count.parse().map_err(|_| corrupt("lookup"))?;
        if count > rest.len() {
            return Err(corrupt("lookup"));
        }
        let (token, session) = rest.split_at(count);
        Ok(Some((
            parse_token(*hash, &pairs(token))?,
            parse_session(session_id, &pairs(session))?,
        )))
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let mut conn = self.conn.clone();
        let map: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.session_key(id))
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
        let base = self.session_base(id);
        let key = format!("{base}f:{id}");
        // The user's index is a declared key: its user id first.
        let Some(user): Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg("uid")
            .query_async(&mut conn)
            .await
            .map_err(error("revoking a session failed"))?
        else {
            return Ok(false);
        };
        let reply: Vec<String> = REVOKE_SESSION
            .key(&key)
            .key(format!("{base}rev"))
            .key(format!("{base}ended"))
            .key(format!("{base}u:{user}"))
            .arg(id)
            .arg(&user)
            .arg(self.ended_channel())
            .invoke_async(&mut conn)
            .await
            .map_err(error("revoking a session failed"))?;
        match reply.first().map(String::as_str) {
            Some("1") => Ok(true),
            Some("0") => Ok(false),
            _ => Err(corrupt("revoke_session reply")),
        }
    }

    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        let base = self.user_base(user_id);
        let channel = self.ended_channel();
        let mut conn = self.conn.clone();
        let mut total = 0;
        // The batch's session keys are declared: a call names the next
        // batch (or, writing nothing, the batch it was not given).
        let mut declared: Vec<String> = Vec::new();
        let mut asked = 0;
        loop {
            let mut invocation = REVOKE_USER.prepare_invoke();
            invocation
                .key(format!("{base}u:{user_id}"))
                .key(format!("{base}rev"))
                .key(format!("{base}ended"))
                .arg(USER_BATCH)
                .arg(&channel);
            for id in &declared {
                invocation.key(format!("{base}f:{id}")).arg(id);
            }
            let mut reply: Vec<String> = invocation
                .invoke_async(&mut conn)
                .await
                .map_err(error("revoking a user's sessions failed"))?;
            match reply.first().map(String::as_str) {
                Some("need") if asked < DECLARE_ATTEMPTS => {
                    asked += 1;
                    declared = reply.split_off(1);
                }
                Some("need") => return Err(unsettled("revoke_user")),
                Some("revoked") if reply.len() >= 3 => {
                    let number = |s: &str| -> Result<u64, StoreError> {
                        s.parse().map_err(|_| corrupt("revoke_user reply"))
                    };
                    total += number(&reply[1])?;
                    if number(&reply[2])? < u64::from(USER_BATCH) {
                        return Ok(total);
                    }
                    asked = 0;
                    declared = reply.split_off(3);
                }
                _ => return Err(corrupt("revoke_user reply")),
            }
        }
    }

    async fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        let base = self.user_base(user_id);
        let mut conn = self.conn.clone();
        let mut sessions = Vec::new();
        let mut offset = 0;
        loop {
            let page: Vec<Vec<String>> = SESSIONS
                .key(format!("{base}u:{user_id}"))
                .arg(&base)
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
        // Each tag has its own purge indexes (one slot each on a cluster).
        stream::iter(all_tags())
            .map(|tag| async move { self.purge_tag(&tag, now, revoked_before).await })
            .buffer_unordered(TAG_CONCURRENCY)
            .try_fold(0, |total, deleted| async move { Ok(total + deleted) })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::{all_tags, redact, session_tag};
    use crate::refresh::{Session, session::user_tag};

    #[test]
    fn session_ids_carry_their_users_tag() {
        for user in ["user-1", "", "ünïcode", "a much longer user id than most"] {
            let id = Session::new_id(user);
            assert_eq!(session_tag(&id), user_tag(user));
        }
        assert_eq!(session_tag("x"), "x");
    }

    #[test]
    fn there_are_4096_tags_and_every_user_tag_is_one() {
        let tags: std::collections::HashSet<String> = all_tags().collect();
        assert_eq!(tags.len(), 4096);
        for n in 0..1000 {
            assert!(tags.contains(&user_tag(&format!("user-{n}"))));
        }
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("redis://:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1/"), "redis://127.0.0.1/");
    }
}
