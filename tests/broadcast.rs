//! The logout broadcast (`SessionBroadcast`) on real stores: Redis
//! (`REDIS_URL`) and PostgreSQL (`DATABASE_URL`), skipped when unreachable
//! unless `CI=true`; on a Redis Cluster of three masters that the test
//! starts on loopback ports (`tests/support/redis_cluster.rs`); and its life
//! cycle on a scripted store under paused time.

mod common_store;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;

use std::{
    collections::BTreeSet,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use http::{Request, Response, StatusCode, header};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::{Mutex, Notify, mpsc};
use tower::{ServiceBuilder, ServiceExt, service_fn, util::BoxCloneService};
use tower_jwt_auth::{
    Algorithm, AuthError, AuthErrorKind, Claims, JwtAuthLayer, SigningKey, TokenIssuer,
    VerificationKey, Verifier,
    auth::IntoChecked,
    metrics::{EVENT, SESSION_BROADCAST},
    refresh::{
        MemoryStore, PostgresStore, RedisStore, RefreshErrorKind, RefreshTokens, SessionBroadcast,
        Subject,
        store::{EndedSession, EndedSessions, RefreshStore, SessionEvents, StoreError},
    },
};

use common_store::{unique, unreachable, url};

const SECRET: &[u8] = b"broadcast tests secret of >= 32 bytes";

/// Tests that kill every pub/sub connection of the Redis server run alone
/// (write); the others together (read).
static REDIS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn issuer() -> TokenIssuer {
    TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
}

/// Every wait of these tests ends within this bound or fails.
async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

// ---------------------------------------------------------------- stores

async fn redis_store() -> Option<Arc<RedisStore>> {
    match RedisStore::new(&url("REDIS_URL", "redis://127.0.0.1:6379/")).await {
        Ok(store) => Some(Arc::new(
            store.with_prefix(format!("{}:", unique("tjwt-bc-"))),
        )),
        Err(e) => unreachable("Redis", "REDIS_URL", &e),
    }
}

async fn redis_raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(url("REDIS_URL", "redis://127.0.0.1:6379/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Deletes every key of `store`: its sessions, then its tags' indexes of
/// ended ones (`{prefix}{tag}ended`).
async fn redis_clean_up(store: &RedisStore) {
    let far = i64::MAX / 2;
    store.purge(far, far).await.unwrap();
    let mut conn = redis_raw().await;
    let pattern = format!("{}*", store.prefix());
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

/// Drops every pub/sub connection of the Redis server.
async fn kill_redis_subscriptions() {
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut redis_raw().await)
        .await
        .unwrap();
}

/// A migrated store in a schema of its own, and the schema's name.
async fn postgres_store() -> Option<(Arc<PostgresStore>, String)> {
    let name = unique("tjwt_bc_").replace('-', "_");
    let base = PgConnectOptions::from_str(&url(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    ))
    .expect("DATABASE_URL");
    let admin = match PgPoolOptions::new()
        .max_connections(1)
        .connect_with(base.clone())
        .await
    {
        Ok(pool) => pool,
        Err(e) => return unreachable("PostgreSQL", "DATABASE_URL", &e),
    };
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .execute(&admin)
        .await
        .expect("create a schema");
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect_with(base.options([("search_path", name.as_str())]))
        .await
        .expect("connect");
    let store = PostgresStore::from_pool(pool);
    store.migrate().await.expect("migrate");
    Some((Arc::new(store), name))
}

async fn drop_schema(name: &str) {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            PgConnectOptions::from_str(&url(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
        .execute(&pool)
        .await
        .expect("drop the schema");
}

/// Terminates the backends listening on the ended channel of `schema`.
async fn kill_postgres_subscriptions(schema: &str) -> u64 {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            PgConnectOptions::from_str(&url(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ))
            .unwrap()
            .options([("search_path", schema)]),
        )
        .await
        .unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE query = 'LISTEN \"' || tjwt_ended_channel($1) || '\"'",
    )
    .bind(schema)
    .fetch_all(&pool)
    .await
    .unwrap();
    killed.len() as u64
}

// ------------------------------------------------- every revoking path

/// Every way a session ends is announced to a subscription, once, and
/// found by `recently_ended`; logins and rotations announce nothing.
async fn announces_every_ended_session<S: RefreshStore + SessionEvents>(
    store: Arc<S>,
    reannounces: bool,
) {
    let mut subscription = store.subscribe().await.expect("subscribe");
    let tokens = RefreshTokens::builder(store.clone(), issuer())
        .max_sessions(2)
        .build()
        .unwrap();
    let subject = |u: String| async move { Ok(Some(Subject::new(u))) };
    let mut next = async || {
        bounded("an announcement", subscription.next())
            .await
            .unwrap()
    };
    let user = unique("u-");
    let mut ended = Vec::new();

    // Logout.
    let a = tokens.login(Subject::new(&user), None).await.unwrap();
    assert!(
        tokens
            .logout(&user, a.refresh_token.as_str())
            .await
            .unwrap()
    );
    assert_eq!(next().await, a.session.id, "logout");
    let a_token = a.refresh_token;
    ended.push(a.session.id);

    // Ending one session by id (the sessions page).
    let b = tokens.login(Subject::new(&user), None).await.unwrap();
    assert!(tokens.end_session(&user, &b.session.id).await.unwrap());
    assert_eq!(next().await, b.session.id, "end_session");
    ended.push(b.session.id);

    // Reuse detection: a rotation announces nothing, a reuse its session.
    let c = tokens.login(Subject::new(&user), None).await.unwrap();
    tokens
        .refresh(c.refresh_token.as_str(), subject)
        .await
        .unwrap();
    let reuse = tokens
        .refresh(c.refresh_token.as_str(), subject)
        .await
        .unwrap_err();
    assert_eq!(reuse.kind(), RefreshErrorKind::Reused);
    assert_eq!(next().await, c.session.id, "reuse");
    ended.push(c.session.id);

    // The session cap (two): a third login evicts the oldest of the two
    // others (by creation time, then id: both may share a second).
    let d1 = tokens.login(Subject::new(&user), None).await.unwrap();
    let d2 = tokens.login(Subject::new(&user), None).await.unwrap();
    let d3 = tokens.login(Subject::new(&user), None).await.unwrap();
    let evicted = next().await;
    assert!(
        [&d1.session.id, &d2.session.id].contains(&&evicted),
        "session cap"
    );
    let kept = if evicted == d1.session.id { d2 } else { d1 };
    assert!(store.session(&evicted).await.unwrap().unwrap().revoked);
    ended.push(evicted);

    // Logout everywhere: the two left, in any order.
    assert_eq!(tokens.logout_all(&user).await.unwrap(), 2);
    let both = BTreeSet::from([next().await, next().await]);
    assert_eq!(
        both,
        BTreeSet::from([kept.session.id.clone(), d3.session.id.clone()]),
        "logout_all"
    );
    ended.extend([kept.session.id, d3.session.id]);

    // Revoking an ended session again: Redis announces it again (a retry
    // after a script that failed part way finishes the work; duplicates are
    // allowed), PostgreSQL announces nothing. Logout everywhere again
    // announces nothing: the next announcement is the next session that
    // ends.
    assert!(store.revoke_session(&ended[0]).await.unwrap());
    if reannounces {
        assert_eq!(next().await, ended[0], "revoked again");
        // So does a logout or end_session retried after a failure (they
        // still answer that nothing ended now).
        assert!(!tokens.logout(&user, a_token.as_str()).await.unwrap());
        assert_eq!(next().await, ended[0], "logout again");
        assert!(!tokens.end_session(&user, &ended[1]).await.unwrap());
        assert_eq!(next().await, ended[1], "end_session again");
    }
    assert_eq!(store.revoke_user(&user).await.unwrap(), 0);
    let e = tokens.login(Subject::new(&user), None).await.unwrap();
    assert!(tokens.end_session(&user, &e.session.id).await.unwrap());
    assert_eq!(next().await, e.session.id, "nothing announced twice");
    ended.push(e.session.id);

    // A resync finds each of them, ended moments ago.
    let recent = store
        .recently_ended(Duration::from_secs(600))
        .await
        .unwrap();
    let recent_ids: BTreeSet<_> = recent.iter().map(|s| s.id.clone()).collect();
    for id in &ended {
        assert!(recent_ids.contains(id), "{id} missing from {recent:?}");
    }
    assert!(
        recent
            .iter()
            .filter(|s| ended.contains(&s.id))
            .all(|s| s.age <= Duration::from_secs(60)),
        "{recent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_announces_every_ended_session() {
    let _shared = REDIS.read().await;
    let Some(store) = redis_store().await else {
        return;
    };
    announces_every_ended_session(store.clone(), true).await;
    redis_clean_up(&store).await;
}

/// Publishes `payload` on the store's announcement channel, by hand.
async fn publish(store: &RedisStore, payload: &[u8]) {
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{}ended", store.prefix()))
        .arg(payload)
        .query_async(&mut redis_raw().await)
        .await
        .unwrap();
}

/// Payloads that are no session id (a forged `PUBLISH`): not UTF-8, too
/// short, too long, outside base64url, empty.
const MALFORMED: [&[u8]; 6] = [
    b"\xff\xfe not utf-8 \xc3",
    b"AAAAAAAAAAAAAAAAAAAAA",
    b"AAAAAAAAAAAAAAAAAAAAAAA",
    b"AAAAAAAAAAAAAAAAAAAA+/",
    b"",
    &[b'A'; 4096],
];

/// Announcements that are no session id are skipped: the subscription
/// carries on (it used to fail on a payload that is not UTF-8, forcing a
/// resync), the broadcast stays synced and keeps none of them, and the next
/// well-formed announcement lands. A resync skips such ids as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_skips_malformed_announcements() {
    let _shared = REDIS.read().await;
    let Some(store) = redis_store().await else {
        return;
    };

    // A subscription of its own: the well-formed id after them comes next.
    let mut subscription = store.subscribe().await.expect("subscribe");
    for payload in MALFORMED {
        publish(&store, payload).await;
    }
    let forged = tower_jwt_auth::refresh::Session::new_id("someone");
    publish(&store, forged.as_bytes()).await;
    let heard = bounded("an announcement", subscription.next())
        .await
        .expect("the subscription carries on");
    assert_eq!(heard, forged);
    drop(subscription);

    // The broadcast: stays synced, keeps only the well-formed id. An id
    // published by hand is in no sorted set: had the subscription failed,
    // the resync would not have found it.
    let tokens = RefreshTokens::new(store.clone(), issuer());
    let broadcast = SessionBroadcast::builder(tokens, store.clone())
        .start()
        .unwrap();
    bounded("the first sync", broadcast.synced()).await;
    for payload in MALFORMED {
        publish(&store, payload).await;
    }
    let forged = tower_jwt_auth::refresh::Session::new_id("someone else");
    publish(&store, forged.as_bytes()).await;
    until("the well-formed announcement", || broadcast.len() == 1).await;
    assert!(broadcast.is_synced(), "no resync");
    drop(broadcast);

    // A resync reads only well-formed ids back.
    let user = unique("u-");
    let tokens = RefreshTokens::new(store.clone(), issuer());
    let pair = tokens.login(Subject::new(&user), None).await.unwrap();
    assert!(tokens.end_session(&user, &pair.session.id).await.unwrap());
    let key = format!("{}{{{}}}ended", store.prefix(), &pair.session.id[..2]);
    let now: (u64, u64) = redis::cmd("TIME")
        .query_async(&mut redis_raw().await)
        .await
        .unwrap();
    for payload in MALFORMED {
        let _: i64 = redis::cmd("ZADD")
            .arg(&key)
            .arg(now.0)
            .arg(payload)
            .query_async(&mut redis_raw().await)
            .await
            .unwrap();
    }
    let recent: Vec<String> = store
        .recently_ended(Duration::from_secs(600))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(recent, std::slice::from_ref(&pair.session.id));
    redis_clean_up(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_announces_every_ended_session() {
    let Some((store, schema)) = postgres_store().await else {
        return;
    };
    announces_every_ended_session(store, false).await;
    drop_schema(&schema).await;
}

// -------------------------------------------- the check, through a layer

type Service = BoxCloneService<Request<String>, Response<String>, std::convert::Infallible>;

fn service<A: IntoChecked>(
    check: impl Fn(&Claims<serde_json::Value>) -> A + Send + Sync + 'static,
) -> Service {
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .build()
        .unwrap();
    let layer = JwtAuthLayer::<serde_json::Value>::builder(verifier)
        .realm("api")
        .check(check)
        .build()
        .unwrap();
    BoxCloneService::new(ServiceBuilder::new().layer(layer).service(service_fn(
        |_req: Request<String>| async {
            Ok::<_, std::convert::Infallible>(Response::new("ok".to_owned()))
        },
    )))
}

async fn call(service: &Service, token: &str) -> Response<String> {
    let request = Request::get("/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    service.clone().oneshot(request).await.unwrap()
}

async fn assert_accepted(service: &Service, token: &str) {
    let response = call(service, token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), "ok");
}

/// The exact rejection of `session_check` for an ended session (or, with
/// `description` "the token has no session", a token without `sid`).
async fn assert_rejected(service: &Service, token: &str, description: &str) {
    let response = call(service, token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        format!(r#"Bearer realm="api", error="invalid_token", error_description="{description}""#)
    );
    assert_eq!(
        response.extensions().get::<AuthError>().unwrap().kind(),
        AuthErrorKind::Rejected
    );
    assert_eq!(
        response.body(),
        &format!(r#"{{"error":"invalid_token","error_description":"{description}"}}"#)
    );
}

/// A store whose subscriptions can be held back: while `closed`, `subscribe`
/// fails, so a lost subscription stays lost.
#[derive(Debug)]
struct Gate<S> {
    store: Arc<S>,
    closed: AtomicBool,
}

#[async_trait]
impl<S: SessionEvents> SessionEvents for Gate<S> {
    async fn subscribe(&self) -> Result<Box<dyn EndedSessions>, StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::new("gate closed"));
        }
        self.store.subscribe().await
    }

    async fn recently_ended(&self, within: Duration) -> Result<Vec<EndedSession>, StoreError> {
        self.store.recently_ended(within).await
    }

    fn ended_retention(&self) -> Duration {
        self.store.ended_retention()
    }
}

/// Logs `user` out of a session that lives on a master that is up, while
/// another master is down and not yet marked failed. The cluster client
/// may be refreshing its slot map then, and wait out its connect timeout on
/// the dead node (the store's timeout): a logout answered `Unavailable` is
/// tried again, three times at most. What counts is that the session ends,
/// which the caller checks next; a retry of a logout that did end it may
/// find it ended already.
async fn logout_while_a_node_is_down(tokens: &RefreshTokens, user: &str, refresh_token: &str) {
    for attempt in 1.. {
        match tokens.logout(user, refresh_token).await {
            Ok(ended) => {
                assert!(ended || attempt > 1, "the first logout ends the session");
                return;
            }
            Err(error) if error.kind() == RefreshErrorKind::Unavailable && attempt < 4 => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("logout while a node is down: {error:?}"),
        }
    }
}

async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    bounded(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// The broadcast check on a real store: memory answers once synced, store
/// lookups while the subscription is lost, memory again after the resync.
async fn checks_from_memory_and_falls_back<S, K, F>(store: Arc<S>, kill: K)
where
    S: RefreshStore + SessionEvents,
    K: Fn() -> F,
    F: Future<Output = ()>,
{
    let tokens = RefreshTokens::new(store.clone(), issuer());
    let gate = Arc::new(Gate {
        store: store.clone(),
        closed: AtomicBool::new(false),
    });
    let broadcast = SessionBroadcast::builder(tokens.clone(), gate.clone())
        .start()
        .unwrap();
    let service = service(broadcast.check());
    bounded("the first sync", broadcast.synced()).await;
    assert!(broadcast.is_synced());

    let user = unique("u-");
    let kept = tokens.login(Subject::new(&user), None).await.unwrap();
    let a = tokens.login(Subject::new(&user), None).await.unwrap();
    assert_accepted(&service, a.access_token.as_str()).await;
    assert!(
        tokens
            .logout(&user, a.refresh_token.as_str())
            .await
            .unwrap()
    );
    until("the announcement", || broadcast.len() == 1).await;
    assert_rejected(&service, a.access_token.as_str(), "the session has ended").await;
    assert_accepted(&service, kept.access_token.as_str()).await;
    // A token without `sid` is refused, as by session_check.
    let plain = issuer().access_token(&user).sign().unwrap();
    assert_rejected(&service, plain.as_str(), "the token has no session").await;

    // The subscription is lost and stays lost: lookups.
    gate.closed.store(true, Ordering::SeqCst);
    kill().await;
    until("the loss to be noticed", || !broadcast.is_synced()).await;
    let b = tokens.login(Subject::new(&user), None).await.unwrap();
    assert_accepted(&service, b.access_token.as_str()).await;
    assert!(
        tokens
            .logout(&user, b.refresh_token.as_str())
            .await
            .unwrap()
    );
    assert_eq!(broadcast.len(), 1, "nobody listened");
    assert_rejected(&service, b.access_token.as_str(), "the session has ended").await;
    assert_rejected(&service, a.access_token.as_str(), "the session has ended").await;
    assert_accepted(&service, kept.access_token.as_str()).await;
    // A lookup also checks what memory does not: another user's `sid`.
    let borrowed = issuer()
        .access_token("someone-else")
        .session_id(&kept.session.id)
        .sign()
        .unwrap();
    assert_rejected(&service, borrowed.as_str(), "the session has ended").await;

    // Back: the resync brings the session that ended during the outage.
    gate.closed.store(false, Ordering::SeqCst);
    bounded("the resync", broadcast.synced()).await;
    assert_eq!(broadcast.len(), 2, "a and b");
    assert_rejected(&service, b.access_token.as_str(), "the session has ended").await;
    assert_accepted(&service, kept.access_token.as_str()).await;
    // And the new subscription announces again.
    assert!(
        tokens
            .logout(&user, kept.refresh_token.as_str())
            .await
            .unwrap()
    );
    until("the announcement", || broadcast.len() == 3).await;
    assert_rejected(
        &service,
        kept.access_token.as_str(),
        "the session has ended",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_checks_from_memory_and_falls_back_to_lookups() {
    let _alone = REDIS.write().await;
    let Some(store) = redis_store().await else {
        return;
    };
    checks_from_memory_and_falls_back(store.clone(), kill_redis_subscriptions).await;
    redis_clean_up(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_checks_from_memory_and_falls_back_to_lookups() {
    let Some((store, schema)) = postgres_store().await else {
        return;
    };
    let name = schema.clone();
    checks_from_memory_and_falls_back(store, move || {
        let schema = name.clone();
        async move {
            assert_eq!(kill_postgres_subscriptions(&schema).await, 1);
        }
    })
    .await;
    drop_schema(&schema).await;
}

/// A TCP proxy on loopback that can be frozen: it then stops forwarding
/// bytes both ways without closing anything, as a half-open connection
/// does (no FIN, no RST: reads just wait).
struct FreezingProxy {
    port: u16,
    frozen: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl FreezingProxy {
    async fn start(upstream: (String, u16)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let state = frozen.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(Self::pump(client_read, server_write, state.clone()));
                tokio::spawn(Self::pump(server_read, client_write, state.clone()));
            }
        });
        Self { port, frozen, task }
    }

    /// Copies `from` to `to`, holding every byte while frozen.
    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        frozen: Arc<AtomicBool>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0; 16 * 1024];
        loop {
            while frozen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            while frozen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
    }
}

impl Drop for FreezingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// PostgreSQL's `LISTEN` connection goes silent (a half-open connection,
/// frozen in a proxy while the pool still works): the heartbeat notices
/// within its period plus its timeout, the check falls back to lookups (a
/// logout meanwhile is refused), and the broadcast resyncs once the path
/// is back. Heartbeats and malformed announcements never enter the set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_heartbeat_notices_a_silent_listener() {
    let Some((store, schema)) = postgres_store().await else {
        return;
    };
    let base = PgConnectOptions::from_str(&url(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    ))
    .expect("DATABASE_URL");
    let proxy = FreezingProxy::start((base.get_host().to_owned(), base.get_port())).await;
    let every = Duration::from_millis(200);
    let timeout = Duration::from_millis(300);
    let events = Arc::new(
        (*store)
            .clone()
            .listener(
                base.host("127.0.0.1")
                    .port(proxy.port)
                    .options([("search_path", schema.as_str())]),
            )
            .heartbeat(every, timeout),
    );
    let tokens = RefreshTokens::new(store.clone(), issuer());
    let broadcast = SessionBroadcast::builder(tokens.clone(), events)
        .start()
        .unwrap();
    let service = service(broadcast.check());
    bounded("the first sync", broadcast.synced()).await;

    // Several heartbeats come and go: still synced, and none in the set.
    // (In the test's schema: `tjwt_ended_channel` lives there.)
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            PgConnectOptions::from_str(&url(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ))
            .unwrap()
            .options([("search_path", schema.as_str())]),
        )
        .await
        .unwrap();
    let beats: i64 = bounded("a heartbeat", async {
        loop {
            tokio::time::sleep(every).await;
            let beats: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_notify(%'",
            )
            .fetch_one(&admin)
            .await
            .unwrap();
            // The pool's connection last ran a heartbeat.
            if beats > 0 {
                break beats;
            }
        }
    })
    .await;
    assert!(beats > 0);
    tokio::time::sleep(every * 5).await;
    assert!(broadcast.is_synced(), "heartbeats come back");
    assert!(broadcast.is_empty(), "heartbeats are not session ids");

    // Anyone who can connect can NOTIFY: malformed payloads are skipped,
    // and the subscription lives on.
    for payload in ["not an id!", &"a".repeat(100), "tjwt:heartbeat:0"] {
        sqlx::query("SELECT pg_notify(tjwt_ended_channel($1), $2)")
            .bind(&schema)
            .bind(payload)
            .execute(&admin)
            .await
            .unwrap();
    }
    let user = unique("u-");
    let a = tokens.login(Subject::new(&user), None).await.unwrap();
    assert_accepted(&service, a.access_token.as_str()).await;
    assert!(
        tokens
            .logout(&user, a.refresh_token.as_str())
            .await
            .unwrap()
    );
    until("the announcement", || broadcast.len() == 1).await;
    assert!(broadcast.is_synced(), "malformed payloads are not fatal");
    assert_rejected(&service, a.access_token.as_str(), "the session has ended").await;

    // The listener's connection goes silent: no error, no FIN.
    let b = tokens.login(Subject::new(&user), None).await.unwrap();
    proxy.freeze(true);
    let frozen_at = std::time::Instant::now();
    until("the silent loss to be noticed", || !broadcast.is_synced()).await;
    let noticed = frozen_at.elapsed();
    // Within a period plus the timeout (0.5 s), with room for a loaded machine.
    assert!(
        noticed < Duration::from_secs(5),
        "noticed after {noticed:?}"
    );
    // A logout meanwhile goes unheard, and is refused by lookups.
    assert_accepted(&service, b.access_token.as_str()).await;
    assert!(
        tokens
            .logout(&user, b.refresh_token.as_str())
            .await
            .unwrap()
    );
    assert_eq!(broadcast.len(), 1, "nobody heard");
    assert_rejected(&service, b.access_token.as_str(), "the session has ended").await;
    assert!(!broadcast.is_synced(), "subscribing again stalls too");

    // The path is back: a resync finds b.
    proxy.freeze(false);
    bounded("the resync", broadcast.synced()).await;
    assert_eq!(broadcast.len(), 2, "a and b");
    assert_rejected(&service, b.access_token.as_str(), "the session has ended").await;
    drop((service, broadcast));
    admin.close().await;
    drop_schema(&schema).await;
}

/// A store that is down answers lookups with 503 while not synced, as
/// `session_check` does; a synced broadcast keeps answering from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_before_the_first_sync_gives_503() {
    let _shared = REDIS.read().await;
    // Nothing listens on port 1.
    let store = Arc::new(RedisStore::new_lazy("redis://127.0.0.1:1/").unwrap());
    let tokens = RefreshTokens::new(store.clone(), issuer());
    let broadcast = SessionBroadcast::builder(tokens, store).start().unwrap();
    let service = service(broadcast.check());
    let token = issuer().access_token("u").session_id("s-1").sign().unwrap();
    let response = call(&service, token.as_str()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.extensions().get::<AuthError>().unwrap().kind(),
        AuthErrorKind::Unavailable
    );
    assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
    assert_eq!(
        response.body(),
        r#"{"error":"temporarily_unavailable","error_description":"authentication is temporarily unavailable"}"#
    );
    assert!(!broadcast.is_synced());
}

// ------------------------------------ the life cycle, on a scripted store

/// Ended sessions announced by hand, over a `MemoryStore`.
#[derive(Debug, Default)]
struct Scripted {
    subscribers: std::sync::Mutex<Vec<mpsc::UnboundedSender<Result<String, StoreError>>>>,
    recent: std::sync::Mutex<Vec<EndedSession>>,
    subscribed: Notify,
    failing: AtomicBool,
}

impl Scripted {
    fn announce(&self, id: &str) {
        for subscriber in self.subscribers.lock().unwrap().iter() {
            let _ = subscriber.send(Ok(id.to_owned()));
        }
    }

    fn lose(&self) {
        for subscriber in self.subscribers.lock().unwrap().drain(..) {
            let _ = subscriber.send(Err(StoreError::new("lost")));
        }
    }
}

#[derive(Debug)]
struct ScriptedSubscription(Mutex<mpsc::UnboundedReceiver<Result<String, StoreError>>>);

#[async_trait]
impl EndedSessions for ScriptedSubscription {
    async fn next(&mut self) -> Result<String, StoreError> {
        self.0
            .get_mut()
            .recv()
            .await
            .unwrap_or_else(|| Err(StoreError::new("closed")))
    }
}

#[async_trait]
impl SessionEvents for Scripted {
    async fn subscribe(&self) -> Result<Box<dyn EndedSessions>, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::new("down"));
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        self.subscribers.lock().unwrap().push(sender);
        self.subscribed.notify_waiters();
        Ok(Box::new(ScriptedSubscription(Mutex::new(receiver))))
    }

    async fn recently_ended(&self, within: Duration) -> Result<Vec<EndedSession>, StoreError> {
        Ok(self
            .recent
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.age <= within)
            .cloned()
            .collect())
    }

    fn ended_retention(&self) -> Duration {
        Duration::from_secs(3600)
    }
}

fn scripted_broadcast(window: Duration) -> (Arc<Scripted>, SessionBroadcast) {
    let events = Arc::new(Scripted::default());
    let tokens = RefreshTokens::new(Arc::new(MemoryStore::new()), issuer());
    let broadcast = SessionBroadcast::builder(tokens, events.clone())
        .window(window)
        .start()
        .unwrap();
    (events, broadcast)
}

#[tokio::test(start_paused = true)]
async fn entries_expire_after_the_window_and_resyncs_keep_what_is_left() {
    let window = Duration::from_secs(900);
    let (events, broadcast) = scripted_broadcast(window);
    events.recent.lock().unwrap().extend([
        EndedSession {
            id: "old".into(),
            age: Duration::from_secs(600),
        },
        EndedSession {
            id: "too-old".into(),
            age: Duration::from_secs(1_000),
        },
    ]);
    broadcast.synced().await;
    assert_eq!(broadcast.len(), 1, "only the session within the window");
    events.announce("fresh");
    tokio::task::yield_now().await;
    while broadcast.len() < 2 {
        tokio::task::yield_now().await;
    }
    // "old" has 300 s left, "fresh" 900 s; pruning runs every 30 s.
    tokio::time::sleep(Duration::from_secs(331)).await;
    assert_eq!(broadcast.len(), 1, "old is gone");
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(broadcast.is_empty(), "fresh is gone too");
    assert!(broadcast.is_synced());
}

#[tokio::test(start_paused = true)]
async fn a_lost_subscription_falls_back_until_resubscribed_and_resynced() {
    // The broadcast's tasks run on this test's thread (a current-thread
    // runtime): a thread-local recorder sees their counts.
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut counts = std::collections::HashMap::<String, u64>::new();
    let mut count = |event: &str| {
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let metrics_util::debugging::DebugValue::Counter(n) = value else {
                panic!("{key:?} is not a counter");
            };
            assert_eq!(key.key().name(), SESSION_BROADCAST);
            let label = key.key().labels().find(|l| l.key() == EVENT).unwrap();
            *counts.entry(label.value().to_owned()).or_default() += n;
        }
        counts.get(event).copied().unwrap_or(0)
    };
    let (events, broadcast) = scripted_broadcast(Duration::from_secs(60));
    broadcast.synced().await;
    assert_eq!(count("synced"), 1);
    events.failing.store(true, Ordering::SeqCst);
    events.lose();
    while broadcast.is_synced() {
        tokio::task::yield_now().await;
    }
    // Retries back off: 100 ms, 200 ms, ... up to 5 s; none succeeds.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!broadcast.is_synced());
    assert_eq!(count("lost"), 1);
    // 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 3.2 + 5 + 5 + 5 + 5 s: ten or eleven
    // attempts in 30 s, not thousands.
    assert!((10..=12).contains(&count("failed")), "{}", count("failed"));
    events.recent.lock().unwrap().push(EndedSession {
        id: "during-the-outage".into(),
        age: Duration::from_secs(1),
    });
    events.failing.store(false, Ordering::SeqCst);
    broadcast.synced().await;
    assert_eq!(broadcast.len(), 1);
    assert_eq!(count("synced"), 2);
}

/// Announcements that are no session id are skipped; past `max_entries`
/// the set neither grows nor forgets: the check falls back to lookups until
/// the entries expired and a resync fits.
#[tokio::test(start_paused = true)]
async fn a_full_set_falls_back_to_lookups_and_malformed_ids_are_skipped() {
    let events = Arc::new(Scripted::default());
    let tokens = RefreshTokens::new(Arc::new(MemoryStore::new()), issuer());
    let window = Duration::from_secs(60);
    let broadcast = SessionBroadcast::builder(tokens.clone(), events.clone())
        .window(window)
        .max_entries(2)
        .start()
        .unwrap();
    let service = service(broadcast.check());
    broadcast.synced().await;
    let user = unique("u-");
    let live = tokens.login(Subject::new(&user), None).await.unwrap();

    events.announce("not a session id");
    events.announce(&"a".repeat(65));
    events.announce("");
    events.announce("ended-1");
    events.announce("ended-2");
    while broadcast.len() < 2 {
        tokio::task::yield_now().await;
    }
    assert!(
        broadcast.is_synced(),
        "malformed ids are skipped, not fatal"
    );
    // A forged id is refused (the denial of service the docs warn of).
    let forged = issuer()
        .access_token(&user)
        .session_id("ended-1")
        .sign()
        .unwrap();
    assert_rejected(&service, forged.as_str(), "the session has ended").await;

    // One more: the set is full.
    events.announce("ended-3");
    while broadcast.is_synced() {
        tokio::task::yield_now().await;
    }
    assert_eq!(broadcast.len(), 2, "neither grown nor emptied");
    // Lookups: the live session passes, an unknown one is refused.
    assert_accepted(&service, live.access_token.as_str()).await;
    let unknown = issuer()
        .access_token(&user)
        .session_id("ended-3")
        .sign()
        .unwrap();
    assert_rejected(&service, unknown.as_str(), "the session has ended").await;
    // Resyncs do not fit while the entries live; once they expired, one does.
    events.recent.lock().unwrap().push(EndedSession {
        id: "ended-3".into(),
        age: Duration::from_secs(1),
    });
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        !broadcast.is_synced(),
        "ended-1 and ended-2 still take the set"
    );
    tokio::time::sleep(window).await;
    broadcast.synced().await;
    assert_eq!(broadcast.len(), 1, "ended-3 alone");
    assert_rejected(&service, unknown.as_str(), "the session has ended").await;
    events.announce("ended-4");
    while broadcast.len() < 2 {
        tokio::task::yield_now().await;
    }
    assert!(broadcast.is_synced());
    assert!(
        SessionBroadcast::builder(tokens, events)
            .max_entries(0)
            .start()
            .unwrap_err()
            .to_string()
            .contains("max_entries")
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_broadcast_stops_its_task() {
    let (events, broadcast) = scripted_broadcast(Duration::from_secs(60));
    broadcast.synced().await;
    let check = broadcast.check::<serde_json::Value>();
    drop(broadcast);
    // A check still holds it: the subscription lives.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!events.subscribers.lock().unwrap()[0].is_closed());
    drop(check);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        events.subscribers.lock().unwrap()[0].is_closed(),
        "the task ended and dropped its subscription"
    );
}

#[tokio::test]
async fn a_window_longer_than_the_store_keeps_is_refused() {
    let events = Arc::new(Scripted::default());
    let tokens = RefreshTokens::new(Arc::new(MemoryStore::new()), issuer());
    let error = SessionBroadcast::builder(tokens.clone(), events.clone())
        .window(Duration::from_secs(7_200))
        .start()
        .unwrap_err();
    assert!(
        error.to_string().contains("longer than the store keeps"),
        "{error}"
    );
    let error = SessionBroadcast::builder(tokens, events)
        .window(Duration::ZERO)
        .start()
        .unwrap_err();
    assert!(error.to_string().contains("zero"), "{error}");
}

#[test]
fn starting_outside_a_runtime_is_refused() {
    let tokens = RefreshTokens::new(Arc::new(MemoryStore::new()), issuer());
    let error = SessionBroadcast::builder(tokens, Arc::new(Scripted::default()))
        .start()
        .unwrap_err();
    assert!(error.to_string().contains("Tokio runtime"), "{error}");
}

// ------------------------------------------------------- Redis Cluster

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A store on `cluster` under a prefix of its own.
async fn cluster_store(cluster: &redis_cluster::RedisCluster) -> Arc<RedisStore> {
    let store = RedisStore::cluster(cluster.urls())
        .await
        .expect("connect to the cluster");
    Arc::new(store.with_prefix(format!("{}:", unique("tjwt-bc-cluster-"))))
}

/// Drops every pub/sub connection of every node of the cluster.
async fn kill_cluster_subscriptions(ports: Vec<u16>) {
    for port in ports {
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: redis::Value = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// A login of a user whose keys live on the master at `port`.
async fn login_on(
    cluster: &redis_cluster::RedisCluster,
    store: &RedisStore,
    tokens: &RefreshTokens,
    port: u16,
) -> (String, tower_jwt_auth::refresh::TokenPair) {
    for _ in 0..200 {
        let user = unique("u-");
        let pair = tokens.login(Subject::new(&user), None).await.unwrap();
        let key = store.session_key(&pair.session.id);
        if cluster.port_of(&key).unwrap() == port {
            return (user, pair);
        }
    }
    panic!("no user of 200 lands on the master at {port}");
}

/// On a Redis Cluster of three masters: every revoking path is announced
/// and found by a resync; sessions ending on each master reach one
/// subscription (on the first node), through the cluster bus; the check
/// answers from memory, falls back to lookups while the subscriptions are
/// killed, and resyncs; and when the subscription's node dies, the check
/// looks sessions up until the node is back and the resync (which reads
/// every master) has run, then answers from memory again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_broadcast() {
    let mut cluster = match tokio::task::spawn_blocking(redis_cluster::RedisCluster::start)
        .await
        .unwrap()
    {
        Ok(cluster) => cluster,
        Err(error) if !ci() => {
            eprintln!("SKIPPED: {error}; install redis-server to run this test");
            return;
        }
        Err(error) => panic!("{error}"),
    };
    let ports = cluster.ports();

    // Every revoking path (one user: one slot).
    announces_every_ended_session(cluster_store(&cluster).await, true).await;

    // One session ending on each master, heard by one subscription.
    let store = cluster_store(&cluster).await;
    let tokens = RefreshTokens::new(store.clone(), issuer());
    let mut subscription = store.subscribe().await.expect("subscribe");
    let mut ended = BTreeSet::new();
    for &port in &ports {
        let (user, pair) = login_on(&cluster, &store, &tokens, port).await;
        assert!(
            tokens
                .logout(&user, pair.refresh_token.as_str())
                .await
                .unwrap()
        );
        let heard = bounded("an announcement", subscription.next())
            .await
            .unwrap();
        assert_eq!(heard, pair.session.id, "a session of the master at {port}");
        ended.insert(heard);
    }
    drop(subscription);
    let recent: BTreeSet<_> = store
        .recently_ended(Duration::from_secs(600))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(recent, ended, "a resync reads every master");

    // Killed subscriptions: lookups, then a resync.
    let kill_ports = ports.clone();
    checks_from_memory_and_falls_back(cluster_store(&cluster).await, || {
        kill_cluster_subscriptions(kill_ports.clone())
    })
    .await;

    // The subscription's node dies (it is the first URL's: the first that
    // answers). Users on the other masters log in and out meanwhile.
    let store = cluster_store(&cluster).await;
    let tokens = RefreshTokens::new(store.clone(), issuer());
    let victim = ports[0];
    let (user, pair) = login_on(&cluster, &store, &tokens, ports[1]).await;
    let broadcast = SessionBroadcast::builder(tokens.clone(), store.clone())
        .start()
        .unwrap();
    let service = service(broadcast.check());
    bounded("the first sync", broadcast.synced()).await;
    assert_eq!(broadcast.len(), 0);
    cluster.kill(victim);
    until("the loss to be noticed", || !broadcast.is_synced()).await;
    // Lookups, on a master that is up (within the cluster's node timeout,
    // before the dead node is marked failed).
    assert_accepted(&service, pair.access_token.as_str()).await;
    logout_while_a_node_is_down(&tokens, &user, pair.refresh_token.as_str()).await;
    assert_rejected(
        &service,
        pair.access_token.as_str(),
        "the session has ended",
    )
    .await;
    assert_eq!(broadcast.len(), 0, "nothing from memory yet");
    assert!(!broadcast.is_synced(), "a resync needs every master");
    // The node comes back: the broadcast resubscribes, resyncs (finding the
    // session that ended during the outage) and answers from memory.
    let restart = tokio::task::spawn_blocking(move || cluster.restart(victim).map(|()| cluster));
    let cluster = restart.await.unwrap().expect("the node restarts");
    bounded("the resync", broadcast.synced()).await;
    assert_eq!(broadcast.len(), 1, "found by the resync");
    assert_rejected(
        &service,
        pair.access_token.as_str(),
        "the session has ended",
    )
    .await;
    drop(broadcast);
    // Dropping the cluster kills its nodes and removes their files.
    drop(cluster);
}
