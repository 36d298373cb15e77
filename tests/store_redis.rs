//! `RedisStore` against a real Redis (`REDIS_URL`, default
//! `redis://127.0.0.1:6379/`). Skipped when unreachable, unless `CI=true`.

mod common_store;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;

use common_store::{login_and_refresh, model, unique, unreachable, url};
use tower_jwt_auth::{
    Algorithm, SigningKey, TokenIssuer,
    refresh::{
        RedisStore, RefreshErrorKind, RefreshTokens, Session, Subject, conformance,
        store::{
            RefreshStore, RotateOutcome, Rotation, StoreError, TokenHash, TokenRecord, TokenStatus,
        },
    },
};

/// The stall test stops every Redis client for a while: it runs alone
/// (write), the others together (read).
static REDIS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn redis_url() -> String {
    url("REDIS_URL", "redis://127.0.0.1:6379/")
}

/// A store under a fresh prefix, or `None` (skip) when Redis is down.
async fn store() -> Option<RedisStore> {
    match RedisStore::new(&redis_url()).await {
        Ok(store) => Some(store.with_prefix(format!("{}:", unique("tjwt-test-")))),
        Err(e) => unreachable("Redis", "REDIS_URL", &e),
    }
}

async fn raw_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conforms() {
    let _shared = REDIS.read().await;
    let Some(store) = store().await else { return };
    conformance::run(Arc::new(store.clone())).await;

    // A purge far in the future empties the prefix of families, tokens, user
    // sets and both purge indexes.
    let far = 4_000_000_000;
    assert!(store.purge(far, far).await.unwrap() > 0);
    let mut conn = raw_connection().await;
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", store.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    // Only the logout broadcast's indexes of recently ended sessions stay,
    // one per user tag that had one (`{prefix}{tag}ended`, a day by Redis
    // time), each with an expiry of its own.
    assert!(!left.is_empty(), "the conformance suite ends sessions");
    for ended in &left {
        let tag = ended
            .strip_prefix(store.prefix())
            .and_then(|rest| rest.strip_suffix("ended"))
            .unwrap_or_else(|| panic!("purge left {ended}"));
        assert!(
            tag.len() == 4 && tag.starts_with('{') && tag.ends_with('}'),
            "purge left {ended}"
        );
        let ttl: i64 = redis::cmd("TTL")
            .arg(ended)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((1..=86_400).contains(&ttl), "{ended} expires: {ttl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_no_raw_token_and_expires_every_key() {
    let _shared = REDIS.read().await;
    let Some(store) = store().await else { return };
    let prefix = store.prefix().to_owned();
    let (raw, user) = login_and_refresh(Arc::new(store)).await;

    let mut conn = raw_connection().await;
    let keys: Vec<String> = {
        let mut iter: redis::AsyncIter<'_, String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter_async(&mut conn)
            .await
            .unwrap();
        let mut keys = Vec::new();
        while let Some(key) = iter.next_item().await {
            keys.push(key.unwrap());
        }
        keys
    };
    // A family, its token set, three tokens, the user's set, the expiry
    // index: all under the user's tag (one hash slot on a cluster).
    assert_eq!(keys.len(), 7, "{keys:?}");
    let tag = &Session::new_id(&user)[..2];
    let base = format!("{prefix}{{{tag}}}");
    assert!(keys.iter().all(|k| k.starts_with(&base)), "{keys:?}");
    assert!(keys.contains(&format!("{base}u:{user}")));

    let mut everything = String::new();
    for key in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let values: Vec<String> = match kind.as_str() {
            "hash" => {
                let map: HashMap<String, String> = redis::cmd("HGETALL")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                map.into_iter().flat_map(|(k, v)| [k, v]).collect()
            }
            "set" => redis::cmd("SMEMBERS")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
                .unwrap(),
            "string" => vec![
                redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
            ],
            other => panic!("unexpected key type {other} of {key}"),
        };
        assert!(!values.is_empty(), "{key} is empty");
        everything.push_str(key);
        everything.push('\n');
        for value in values {
            everything.push_str(&value);
            everything.push('\n');
        }
        // Everything but the purge index dies with the family.
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if key != &format!("{base}exp") {
            assert!(ttl > 0, "{key} has no expiry ({ttl})");
        }
    }
    for token in &raw {
        assert!(
            !everything.contains(token.as_str()),
            "a raw refresh token is stored in Redis"
        );
    }
    // Token keys are named by hash.
    let token_keys = keys
        .iter()
        .filter(|k| k.starts_with(&format!("{base}t:")))
        .count();
    assert_eq!(token_keys, raw.len());
    for key in keys.iter().filter(|k| k.starts_with(&format!("{base}t:"))) {
        assert!(TokenHash::from_hex(&key[base.len() + 2..]).is_some());
    }

    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_down_is_an_error_and_keeps_the_family() {
    let _shared = REDIS.read().await;
    let Some(store) = store().await else { return };
    let now = 1_900_000_000;
    let user = unique("user-");
    let family = Session {
        id: Session::new_id(&user),
        user_id: user,
        device: None,
        created_at: now,
        last_used_at: now,
        expires_at: now + 3600,
        generation: 0,
        revoked: false,
        auth_time: 0,
        jkt: None,
    };
    // Fixed hashes are fine: the prefix is unique.
    let hash = TokenHash::from_bytes([7; 32]);
    let token = TokenRecord {
        hash,
        session_id: family.id.clone(),
        parent: None,
        generation: 0,
        created_at: now,
        status: TokenStatus::Active,
    };
    store.create(&family, &token, 100).await.unwrap();

    // The same keys, through a Redis that is not there.
    let dead = RedisStore::new_lazy("redis://127.0.0.1:1/")
        .unwrap()
        .with_prefix(store.prefix());
    let started = std::time::Instant::now();
    let rotation = Rotation {
        session_id: family.id.clone(),
        presented: hash,
        child: TokenHash::from_bytes([8; 32]),
        now: now + 1,
        idle_cutoff: now - 60,
        grace_cutoff: None,
    };
    assert!(
        dead.rotate(&rotation).await.is_err(),
        "a dead server is an error"
    );
    assert!(dead.revoke_session(&family.id).await.is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(RedisStore::new("redis://127.0.0.1:1/").await.is_err());

    // Nothing was revoked or rotated.
    let stored = store.session(&family.id).await.unwrap().unwrap();
    assert!(!stored.revoked);
    assert_eq!(stored.generation, 0);
    assert_eq!(
        store
            .token(&family.id, &hash)
            .await
            .unwrap()
            .unwrap()
            .status,
        TokenStatus::Active
    );
    assert!(format!("{dead:?}").contains("127.0.0.1:1"));
    let with_password = RedisStore::new_lazy("redis://:hunter2@127.0.0.1:1/").unwrap();
    assert!(!format!("{with_password:?}").contains("hunter2"));
    store.revoke_session(&family.id).await.unwrap();
    store.purge(now + 7200, now + 7200).await.unwrap();
}

fn tokens(store: &RedisStore, max_sessions: u32) -> RefreshTokens {
    let issuer = TokenIssuer::new(
        SigningKey::hmac(Algorithm::HS256, b"store tests secret of >= 32 bytes!!").unwrap(),
    );
    RefreshTokens::builder(Arc::new(store.clone()), issuer)
        .max_sessions(max_sessions)
        .build()
        .unwrap()
}

async fn indexed(store: &RedisStore, user: &str) -> u64 {
    let mut conn = raw_connection().await;
    redis::cmd("ZCARD")
        .arg(format!(
            "{}{{{}}}u:{user}",
            store.prefix(),
            &Session::new_id(user)[..2]
        ))
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Every script over one user's sessions reads their index, which holds
/// only sessions that are not revoked: it stays at the cap, whatever
/// revoked the others (the cap, logout, reuse, logout everywhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_users_index_stays_at_the_session_cap() {
    let _shared = REDIS.read().await;
    let Some(store) = store().await else { return };
    let tokens = tokens(&store, 3);
    let user = unique("user-");
    let subject = |u: String| async move { Ok(Some(Subject::new(u))) };
    let mut logins = Vec::new();
    for _ in 0..5 {
        logins.push(
            tokens
                .login(Subject::new(user.clone()), None)
                .await
                .unwrap(),
        );
    }
    assert_eq!(indexed(&store, &user).await, 3, "the cap evicts");
    assert_eq!(tokens.sessions(&user).await.unwrap().len(), 3);

    let newest = logins.last().unwrap();
    assert!(
        tokens
            .logout(&user, newest.refresh_token.as_str())
            .await
            .unwrap()
    );
    assert_eq!(indexed(&store, &user).await, 2, "logout");

    let sessions = tokens.sessions(&user).await.unwrap();
    let survivor = logins
        .iter()
        .find(|l| l.session.id == sessions[0].id)
        .unwrap();
    tokens
        .refresh(survivor.refresh_token.as_str(), subject)
        .await
        .unwrap();
    assert!(
        tokens
            .refresh(survivor.refresh_token.as_str(), subject)
            .await
            .is_err()
    );
    assert_eq!(indexed(&store, &user).await, 1, "reuse");

    assert_eq!(tokens.logout_all(&user).await.unwrap(), 1);
    assert_eq!(indexed(&store, &user).await, 0, "logout everywhere");
    store.purge(4_000_000_000, 4_000_000_000).await.unwrap();
}

/// `sessions` and `revoke_user` take a long index in batches, and see all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_session_lists_come_in_batches() {
    let _shared = REDIS.read().await;
    let Some(store) = store().await else { return };
    let tokens = tokens(&store, 300);
    let user = unique("user-");
    for _ in 0..300 {
        tokens
            .login(Subject::new(user.clone()), None)
            .await
            .unwrap();
    }
    let sessions = tokens.sessions(&user).await.unwrap();
    assert_eq!(sessions.len(), 300);
    let mut ids: Vec<_> = sessions.iter().map(|s| s.id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 300, "no session twice");
    assert!(
        sessions
            .windows(2)
            .all(|w| (w[0].created_at, &w[0].id) <= (w[1].created_at, &w[1].id)),
        "oldest first"
    );
    assert_eq!(tokens.logout_all(&user).await.unwrap(), 300);
    assert!(tokens.sessions(&user).await.unwrap().is_empty());
    store.purge(4_000_000_000, 4_000_000_000).await.unwrap();
}

/// How long the busy script stalls Redis: well past the store's response
/// timeout, well under Redis's `busy-reply-threshold` (5 s).
const STALL: Duration = Duration::from_millis(1000);
/// The response timeout of the store under test.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(300);

/// Busy-waits for ARGV[1] milliseconds: every client waits meanwhile.
const BUSY_SCRIPT: &str = "
local function ms() local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000) end
local start = ms()
while ms() - start < tonumber(ARGV[1]) do end
return 1";

/// Stalls Redis (a busy script on another connection) right before its next
/// rotation, so the rotation queues behind the script: the store's client
/// times out, and the rotation runs once the script ends.
#[derive(Debug)]
struct Stalling {
    inner: RedisStore,
    stall_next: AtomicBool,
}

impl Stalling {
    async fn stall(&self) {
        // Both connected before the stall: a handshake would wait too.
        let mut busy = raw_connection().await;
        let mut probe = raw_connection().await;
        tokio::spawn(async move {
            let _: Result<i64, _> = redis::cmd("EVAL")
                .arg(BUSY_SCRIPT)
                .arg(0)
                .arg(STALL.as_millis() as u64)
                .query_async(&mut busy)
                .await;
        });
        // Stalled once a PING goes unanswered.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let cmd = redis::cmd("PING");
            let ping = cmd.query_async::<String>(&mut probe);
            if tokio::time::timeout(Duration::from_millis(100), ping)
                .await
                .is_err()
            {
                return;
            }
            assert!(Instant::now() < deadline, "Redis never stalled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[async_trait]
impl RefreshStore for Stalling {
    async fn create(
        &self,
        session: &Session,
        token: &TokenRecord,
        max_sessions: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.create(session, token, max_sessions).await
    }
    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        if self.stall_next.swap(false, Ordering::SeqCst) {
            self.stall().await;
        }
        self.inner.rotate(rotation).await
    }
    async fn allow_retry(
        &self,
        session_id: &str,
        hash: &TokenHash,
        until: i64,
    ) -> Result<(), StoreError> {
        self.inner.allow_retry(session_id, hash, until).await
    }
    async fn token(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.token(session_id, hash).await
    }
    async fn lookup(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<Option<(TokenRecord, Session)>, StoreError> {
        self.inner.lookup(session_id, hash).await
    }
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.inner.session(id).await
    }
    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.revoke_session(id).await
    }
    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        self.inner.revoke_user(user_id).await
    }
    async fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        self.inner.sessions(user_id, now).await
    }
    async fn purge(&self, now: i64, revoked_before: i64) -> Result<u64, StoreError> {
        self.inner.purge(now, revoked_before).await
    }
}

/// The finding of a stalled Redis: a refresh times out (503) while its
/// rotation still runs afterwards, so the token the client retries with is
/// in fact spent. The retry must get a new pair, not revoke the session:
/// a store failure never revokes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_a_redis_timeout_is_not_reuse() {
    let _alone = REDIS.write().await;
    if store().await.is_none() {
        return;
    }
    let client = redis::Client::open(redis_url()).unwrap();
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(1);
    let conn = redis::aio::ConnectionManager::new_with_config(client, config)
        .await
        .unwrap();
    let store =
        RedisStore::from_connection_manager(conn).with_prefix(format!("{}:", unique("tjwt-test-")));
    let stalling = Arc::new(Stalling {
        inner: store.clone(),
        stall_next: AtomicBool::new(false),
    });
    let issuer = TokenIssuer::new(
        SigningKey::hmac(Algorithm::HS256, b"store tests secret of >= 32 bytes!!").unwrap(),
    );
    let tokens = RefreshTokens::new(stalling.clone(), issuer);
    let subject = |u: String| async move { Ok(Some(Subject::new(u))) };
    let first = tokens
        .login(Subject::new(unique("user-")), None)
        .await
        .unwrap();
    // One refresh first, so Redis holds the rotation script: an `EVALSHA`
    // answered `NOSCRIPT` after the client gave up would never be retried.
    let login = tokens
        .refresh(first.refresh_token.as_str(), subject)
        .await
        .unwrap();

    // Redis stalls between the refresh's lookup and its rotation.
    stalling.stall_next.store(true, Ordering::SeqCst);
    let error = tokens
        .refresh(login.refresh_token.as_str(), subject)
        .await
        .expect_err("the rotation timed out");
    assert_eq!(error.kind(), RefreshErrorKind::Unavailable);

    // Once the stall is over, the queued rotation has run: the token is spent.
    let presented = tokens.hash(login.refresh_token.as_str());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(token)) = store.token(&login.session.id, &presented).await
            && matches!(token.status, TokenStatus::Rotated(_))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the queued rotation never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The client retries the token it still holds.
    let retried = match tokens.refresh(login.refresh_token.as_str(), subject).await {
        Ok(pair) => pair,
        Err(error) => {
            let mut conn = raw_connection().await;
            let record: HashMap<String, String> = redis::cmd("HGETALL")
                .arg(store.token_key_of(&login.session.id, &presented))
                .query_async(&mut conn)
                .await
                .unwrap();
            panic!("a retry after a timeout is not reuse: {error:?}; the spent token: {record:?}");
        }
    };
    assert_eq!(retried.session.id, login.session.id);
    assert!(
        !store
            .session(&login.session.id)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    tokens
        .refresh(retried.refresh_token.as_str(), subject)
        .await
        .expect("the retried pair works");
    store.purge(4_000_000_000, 4_000_000_000).await.unwrap();
}

/// The DPoP replay cache on Redis: shared by instances, one `SET NX EXAT`
/// per proof, forgotten by Redis when the proof could no longer be accepted.
#[tokio::test]
async fn the_dpop_replay_cache_is_shared_and_expires() {
    use tower_jwt_auth::dpop::{RedisReplayCache, ReplayCache, ReplayKey};
    let _shared = REDIS.read().await;

    let prefix = format!("{}:", unique("tjwt-dpop-test-"));
    let first = match RedisReplayCache::new(&redis_url()).await {
        Ok(cache) => cache.with_prefix(&prefix),
        Err(e) => {
            unreachable::<()>("Redis", "REDIS_URL", &e);
            return;
        }
    };
    let second = RedisReplayCache::new(&redis_url())
        .await
        .unwrap()
        .with_prefix(&prefix);
    let key = ReplayKey::from_bytes(rand::random());
    let expires_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 65;
    assert!(first.first_use(&key, expires_at).await.unwrap());
    assert!(
        !second.first_use(&key, expires_at).await.unwrap(),
        "another instance sees the replay"
    );
    assert!(
        second
            .first_use(&ReplayKey::from_bytes(rand::random()), expires_at)
            .await
            .unwrap()
    );
    let mut conn = raw_connection().await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}{}", key.to_hex()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        (1..=65).contains(&ttl),
        "the key expires with the proof: {ttl}"
    );
}

/// The model of the store contract (`common_store::model`), over random
/// sequences; each case under a prefix of its own, purged at its end.
#[test]
fn follows_the_model() {
    let _shared = REDIS.blocking_read();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(store) = runtime.block_on(store()) else {
        return;
    };
    model::check(&runtime, 48, 25, true, || {
        Arc::new(
            store
                .clone()
                .with_prefix(format!("{}:", unique("tjwt-model-"))),
        )
    });
}

/// A new session of a new user in `store`, with its login token.
async fn new_session(store: &RedisStore, now: i64) -> (Session, TokenHash) {
    let user = unique("user-");
    let session = Session {
        id: Session::new_id(&user),
        user_id: user,
        device: None,
        created_at: now,
        last_used_at: now,
        expires_at: now + 3600,
        generation: 0,
        revoked: false,
        auth_time: now,
        jkt: None,
    };
    let hash = TokenHash::from_bytes(rand::random());
    let token = TokenRecord {
        hash,
        session_id: session.id.clone(),
        parent: None,
        generation: 0,
        created_at: now,
        status: TokenStatus::Active,
    };
    store.create(&session, &token, 100).await.unwrap();
    (session, hash)
}

/// The same rotation delivered twice (the client library resending it
/// after a lost answer, or to a promoted replica after a failover) is
/// answered as a rotation both times: never reuse, nothing revoked. A
/// different child for the spent token is still reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotation_delivered_twice_is_not_reuse() {
    let _shared = REDIS.read().await;
    let Some(store) = store().await else { return };
    let now = 1_900_000_000;
    let (session, r0) = new_session(&store, now).await;
    let rotation = Rotation {
        session_id: session.id.clone(),
        presented: r0,
        child: TokenHash::from_bytes(rand::random()),
        now: now + 1,
        idle_cutoff: now - 60,
        grace_cutoff: None,
    };
    let first = store.rotate(&rotation).await.unwrap();
    let RotateOutcome::Rotated(rotated) = &first else {
        panic!("the first delivery rotates: {first:?}");
    };
    let again = store.rotate(&rotation).await.unwrap();
    assert_eq!(again, first, "the second delivery answers the same");
    assert_eq!(rotated.generation, 1, "one rotation, not two");
    let child = store
        .token(&session.id, &rotation.child)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((child.generation, child.parent), (1, Some(r0)));

    let other_child = Rotation {
        child: TokenHash::from_bytes(rand::random()),
        ..rotation.clone()
    };
    assert!(matches!(
        store.rotate(&other_child).await.unwrap(),
        RotateOutcome::Reused(s) if s.revoked
    ));
    store.purge(4_000_000_000, 4_000_000_000).await.unwrap();
}

/// Session ids carry their user's tag: `create` refuses an id made
/// otherwise (it would put the session in another hash slot than its user
/// on a cluster), and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_need_ids_made_for_their_user() {
    let _shared = REDIS.read().await;
    let Some(store) = store().await else { return };
    let now = 1_900_000_000;
    let user = unique("user-");
    let mut foreign = Session::new_id("someone else");
    while foreign[..2] == Session::new_id(&user)[..2] {
        foreign = Session::new_id(&unique("someone-"));
    }
    // The user's tag, but not the shape of an id from `Session::new_id`
    // (whose announcements the logout broadcast would not hear).
    let odd_shape = format!("{}-not-a-session-id", &Session::new_id(&user)[..2]);
    for id in [foreign, "s-1".to_owned(), odd_shape] {
        let session = Session {
            id: id.clone(),
            user_id: user.clone(),
            device: None,
            created_at: now,
            last_used_at: now,
            expires_at: now + 3600,
            generation: 0,
            revoked: false,
            auth_time: now,
            jkt: None,
        };
        let token = TokenRecord {
            hash: TokenHash::from_bytes(rand::random()),
            session_id: id.clone(),
            parent: None,
            generation: 0,
            created_at: now,
            status: TokenStatus::Active,
        };
        let error = store.create(&session, &token, 100).await.unwrap_err();
        assert!(error.to_string().contains("Session::new_id"), "{error}");
        assert_eq!(store.session(&id).await.unwrap(), None);
        assert!(store.sessions(&user, now).await.unwrap().is_empty());
    }
    let mut conn = raw_connection().await;
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", store.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(left.is_empty(), "nothing stored: {left:?}");
}

/// Makes `key` a string, so that the next script writing it as a set or
/// sorted set fails half way (`WRONGTYPE`): a stand-in for any command of
/// a script failing after its first writes.
async fn damage(key: &str) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("damaged")
        .query_async(&mut raw_connection().await)
        .await
        .unwrap();
}

async fn repair(key: &str) {
    let _: i64 = redis::cmd("DEL")
        .arg(key)
        .query_async(&mut raw_connection().await)
        .await
        .unwrap();
}

/// A revocation whose script fails half way has announced the ending
/// first (the broadcast refuses the session's access tokens: it fails
/// closed), and the logout retried after it (which finds the session
/// revoked and answers that nothing ended now) announces it again and
/// finishes the work: out of the user's index, in the purge index.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_that_fails_half_way_is_announced_and_a_retry_finishes_it() {
    use tower_jwt_auth::refresh::store::SessionEvents;

    let _shared = REDIS.read().await;
    let Some(store) = store().await else { return };
    let tokens = tokens(&store, 10);
    let mut subscription = store.subscribe().await.unwrap();
    let user = unique("user-");
    let pair = tokens
        .login(Subject::new(user.clone()), None)
        .await
        .unwrap();
    let id = pair.session.id.clone();
    let base = format!("{}{{{}}}", store.prefix(), &id[..2]);
    let revoked_index = format!("{base}rev");

    damage(&revoked_index).await;
    let error = tokens
        .logout(&user, pair.refresh_token.as_str())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), RefreshErrorKind::Unavailable);
    let heard = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(heard, id, "announced before the failure");
    assert!(store.session(&id).await.unwrap().unwrap().revoked);
    assert_eq!(indexed(&store, &user).await, 1, "the script stopped there");

    repair(&revoked_index).await;
    assert!(
        !tokens
            .logout(&user, pair.refresh_token.as_str())
            .await
            .unwrap(),
        "the retry: nothing ended now"
    );
    let heard = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(heard, id, "announced again");
    assert_eq!(indexed(&store, &user).await, 0, "the retry finished");
    let score: Option<i64> = redis::cmd("ZSCORE")
        .arg(&revoked_index)
        .arg(&id)
        .query_async(&mut raw_connection().await)
        .await
        .unwrap();
    assert_eq!(score, Some(pair.session.last_used_at));
    let recent = store
        .recently_ended(Duration::from_secs(600))
        .await
        .unwrap();
    assert!(recent.iter().any(|s| s.id == id), "{recent:?}");
    store.purge(4_000_000_000, 4_000_000_000).await.unwrap();
}

/// A rotation whose script fails on the one write that can fail (the
/// session's token set, damaged) leaves the presented token active and the
/// session where it was: the user's retry rotates, never counts as reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotation_that_fails_half_way_leaves_the_token_to_retry() {
    let _shared = REDIS.read().await;
    let Some(store) = store().await else { return };
    let tokens = tokens(&store, 10);
    let subject = |u: String| async move { Ok(Some(Subject::new(u))) };
    let user = unique("user-");
    let pair = tokens
        .login(Subject::new(user.clone()), None)
        .await
        .unwrap();
    let id = pair.session.id.clone();
    let token_set = format!("{}{{{}}}ft:{id}", store.prefix(), &id[..2]);

    damage(&token_set).await;
    let error = tokens
        .refresh(pair.refresh_token.as_str(), subject)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), RefreshErrorKind::Unavailable);
    let session = store.session(&id).await.unwrap().unwrap();
    assert_eq!((session.generation, session.revoked), (0, false));

    repair(&token_set).await;
    let next = tokens
        .refresh(pair.refresh_token.as_str(), subject)
        .await
        .expect("the retry rotates");
    assert_eq!(next.session.generation, 1);
    assert!(!store.session(&id).await.unwrap().unwrap().revoked);
    store.purge(4_000_000_000, 4_000_000_000).await.unwrap();
}

/// A delivery of a rotation that stopped after writing the child (its key
/// is there, the session has not moved on): delivered again, it rotates
/// for real instead of answering as the rotation it never completed, and
/// the child then rotates in turn (it would otherwise count as reuse).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotation_that_stopped_half_way_completes_when_delivered_again() {
    let _shared = REDIS.read().await;
    let Some(store) = store().await else { return };
    let now = 1_900_000_000;
    let (session, r0) = new_session(&store, now).await;
    let rotation = Rotation {
        session_id: session.id.clone(),
        presented: r0,
        child: TokenHash::from_bytes(rand::random()),
        now: now + 1,
        idle_cutoff: now - 60,
        grace_cutoff: None,
    };
    let _: () = redis::cmd("HSET")
        .arg(store.token_key_of(&session.id, &rotation.child))
        .arg(&[
            ("fam", session.id.clone()),
            ("par", r0.to_hex()),
            ("gen", "1".to_owned()),
            ("cat", (now + 1).to_string()),
            ("st", "a".to_owned()),
        ])
        .query_async(&mut raw_connection().await)
        .await
        .unwrap();

    let outcome = store.rotate(&rotation).await.unwrap();
    let RotateOutcome::Rotated(rotated) = &outcome else {
        panic!("delivered again, it rotates: {outcome:?}");
    };
    assert_eq!(rotated.generation, 1);
    let presented = store.token(&session.id, &r0).await.unwrap().unwrap();
    assert_eq!(presented.status, TokenStatus::Rotated(now + 1));

    let next = Rotation {
        presented: rotation.child,
        child: TokenHash::from_bytes(rand::random()),
        now: now + 2,
        ..rotation.clone()
    };
    assert!(matches!(
        store.rotate(&next).await.unwrap(),
        RotateOutcome::Rotated(s) if s.generation == 2
    ));
    store.purge(4_000_000_000, 4_000_000_000).await.unwrap();
}
