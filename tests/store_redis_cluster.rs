//! `RedisStore` on a real Redis Cluster of three masters, started on
//! loopback ports by the test itself (`tests/support/redis_cluster.rs`:
//! `redis-server --cluster-enabled yes` three times, `redis-cli --cluster
//! create`). Needs `redis-server` and `redis-cli` (or `REDIS_SERVER` and
//! `REDIS_CLI`); skipped without them, unless `CI=true`.
//!
//! One test, in steps, so the cluster starts once: the whole conformance
//! suite (the 32-way race included); a logout while its slot migrates
//! (refused before its script runs, then done once the slot has moved);
//! keys spread over every node; a node stalled past the response timeout
//! (in the lookup, and between lookup and rotation): 503, and the retry
//! gets a new pair; then a node's process
//! killed while clients keep refreshing: 503s, never reuse, nothing
//! revoked; the node restarted: every client carries on (one whose answer
//! died with the node, with a grace period).

mod common_store;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use http::{Request, StatusCode, header};
use tower::ServiceExt;
use tower_jwt_auth::{
    Algorithm, SigningKey, TokenIssuer,
    refresh::{
        RedisStore, RefreshEndpoint, RefreshErrorKind, RefreshToken, RefreshTokens, Session,
        Subject, TokenPair, conformance,
        store::{
            RefreshStore, RotateOutcome, Rotation, StoreError, TokenHash, TokenRecord, TokenStatus,
        },
    },
};

use common_store::unique;
use redis_cluster::RedisCluster;

/// How many clients keep refreshing through the outage.
const CLIENTS: usize = 24;

fn issuer() -> TokenIssuer {
    TokenIssuer::new(
        SigningKey::hmac(Algorithm::HS256, b"cluster tests secret of >= 32 bytes").unwrap(),
    )
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

async fn same_user(user: String) -> Result<Option<Subject>, StoreError> {
    Ok(Some(Subject::new(user)))
}

fn refresh_request(token: &RefreshToken) -> Request<String> {
    Request::post("/refresh")
        .header(header::CONTENT_TYPE, "application/json")
        .body(format!(r#"{{"refresh_token":"{}"}}"#, token.as_str()))
        .unwrap()
}

/// What one client saw: the token it holds now, and each refresh's result.
struct Client {
    pair: TokenPair,
    results: Vec<Result<(), RefreshErrorKind>>,
}

/// Refreshes `pair`'s token again and again until `stop`, keeping the token
/// it holds (the new one after a success, the same one after a failure).
async fn keep_refreshing(
    tokens: RefreshTokens,
    mut pair: TokenPair,
    stop: Arc<AtomicBool>,
) -> Client {
    let mut results = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match tokens.refresh(pair.refresh_token.as_str(), same_user).await {
            Ok(next) => {
                pair = next;
                results.push(Ok(()));
            }
            Err(error) => results.push(Err(error.kind())),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Client { pair, results }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster() {
    let mut cluster = match tokio::task::spawn_blocking(RedisCluster::start)
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
    let store = RedisStore::cluster(cluster.urls())
        .await
        .expect("connect to the cluster")
        .with_prefix(format!("{}:", unique("tjwt-cluster-")));
    assert!(format!("{store:?}").contains("cluster: true"));

    // The whole suite, the 32-way race included.
    conformance::run(Arc::new(store.clone())).await;

    // Users land on every node.
    let tokens = RefreshTokens::new(Arc::new(store.clone()), issuer());
    a_migrating_slot_refuses_a_revocation_before_it_runs(&cluster, &store, &tokens).await;
    let mut logins = Vec::new();
    for i in 0..CLIENTS {
        let user = format!("cluster-user-{i}-{}", unique(""));
        logins.push(tokens.login(Subject::new(user), None).await.unwrap());
    }
    let mut nodes = Vec::new();
    for login in &logins {
        nodes.push(
            cluster
                .port_of(&store.session_key(&login.session.id))
                .unwrap(),
        );
    }
    for port in cluster.ports() {
        assert!(
            nodes.contains(&port),
            "no session on node {port}: {nodes:?}"
        );
    }
    let victim = nodes[0];

    // A node stalled past the client's response timeout: 503, nothing
    // revoked, and the client's retry of the token it holds gets a new
    // pair; also when the stall begins between the lookup and the rotation
    // (the queued rotation runs afterwards, with its retry permit).
    let lazy = RedisStore::cluster_lazy(cluster.urls())
        .unwrap()
        .with_prefix(store.prefix());
    stalled_node_is_503_then_retry(&tokens, &store, victim, &mut logins[0], true, &lazy).await;
    let stalling = RefreshTokens::new(
        Arc::new(StallBeforeRotate {
            inner: store.clone(),
            port: victim,
            armed: AtomicBool::new(true),
        }),
        issuer(),
    );
    stalled_node_is_503_then_retry(&stalling, &store, victim, &mut logins[0], false, &lazy).await;

    // Clients refresh while the victim's process is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = logins
        .into_iter()
        .map(|login| tokio::spawn(keep_refreshing(tokens.clone(), login, Arc::clone(&stop))))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.kill(victim);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut clients = Vec::new();
    for task in tasks {
        clients.push(task.await.unwrap());
    }

    // Only successes and 503s; the victim's sessions saw the outage.
    for (client, node) in clients.iter().zip(&nodes) {
        for result in &client.results {
            assert!(
                matches!(result, Ok(()) | Err(RefreshErrorKind::Unavailable)),
                "during the outage, node {node}: {result:?} (never reuse or invalid)"
            );
        }
        assert!(
            client.results.iter().any(Result::is_ok),
            "{node}: before the kill"
        );
        if *node == victim {
            assert!(
                client.results.last() == Some(&Err(RefreshErrorKind::Unavailable)),
                "a session on the killed node is unavailable"
            );
        }
    }

    // At the endpoint: 503 temporarily_unavailable, nothing spent.
    let endpoint = RefreshEndpoint::new(tokens.clone(), same_user);
    let held = &clients[0].pair;
    let response = endpoint
        .clone()
        .oneshot(refresh_request(&held.refresh_token))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(response.body()).unwrap(),
        serde_json::json!({"error": "temporarily_unavailable", "error_description": "try again later"})
    );

    // The node comes back with its data; every client carries on with the
    // token it holds. A rotation that ran as the process died (written to
    // the append-only file, its answer lost, and its retry permit never
    // written to the dead node) spent the held token: exactly one rotation
    // past it, the session live. Its retry would count as reuse, as on a
    // single Redis that dies mid-answer; with a grace period it gets a
    // sibling pair.
    let graceful = RefreshTokens::builder(Arc::new(store.clone()), issuer())
        .grace_period(Duration::from_secs(120))
        .build()
        .unwrap();
    let restart = tokio::task::spawn_blocking(move || cluster.restart(victim).map(|()| cluster));
    let cluster = restart.await.unwrap().expect("the node restarts");
    let mut lost = 0;
    for (client, node) in clients.iter().zip(&nodes) {
        let pair = &client.pair;
        let hash = tokens.hash(pair.refresh_token.as_str());
        let record = retry(|| store.token(&pair.session.id, &hash))
            .await
            .expect("the held token is still stored");
        let session = store.session(&pair.session.id).await.unwrap().unwrap();
        assert!(!session.revoked, "node {node}: nothing was revoked");
        match record.status {
            TokenStatus::Active => {
                let response = endpoint
                    .clone()
                    .oneshot(refresh_request(&pair.refresh_token))
                    .await
                    .unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::OK,
                    "node {node}: {}",
                    response.body()
                );
            }
            TokenStatus::Rotated(_) => {
                assert_eq!(*node, victim, "only the killed node loses answers");
                assert_eq!(
                    session.generation,
                    record.generation + 1,
                    "one rotation ran"
                );
                let sibling = graceful
                    .refresh(pair.refresh_token.as_str(), same_user)
                    .await
                    .expect("a lost answer's retry within the grace period");
                assert_eq!(sibling.session.id, pair.session.id);
                lost += 1;
            }
            TokenStatus::Revoked => panic!("node {node}: a revoked token"),
        }
    }
    eprintln!("cluster outage: {lost} rotation(s) ran with their answer lost");
    store.purge(4_000_000_000, 4_000_000_000).await.unwrap();

    // Dropping the cluster kills its nodes and removes their files.
    let root = cluster.root().to_owned();
    let ports = cluster.ports();
    drop(cluster);
    assert!(!root.exists(), "{root:?} is left behind");
    for port in ports {
        assert!(!RedisCluster::answers(port), "node {port} still runs");
    }
}

/// A slot being migrated (resharding) whose user index has already moved:
/// the logout's script is refused before it runs (`TRYAGAIN`: it declares
/// every key it touches), never half way: nothing revoked, nothing
/// announced, and the logout fails with a 503's error. Once the migration
/// is complete, the retried logout goes through and is announced.
async fn a_migrating_slot_refuses_a_revocation_before_it_runs(
    cluster: &RedisCluster,
    store: &RedisStore,
    tokens: &RefreshTokens,
) {
    let user = unique("migrating-");
    // A session of the user that ended: the tag's purge index and ended
    // index exist, so the script's keys are only missing the user index.
    let ended = tokens
        .login(Subject::new(user.clone()), None)
        .await
        .unwrap();
    assert!(tokens.end_session(&user, &ended.session.id).await.unwrap());
    let pair = tokens
        .login(Subject::new(user.clone()), None)
        .await
        .unwrap();
    let id = pair.session.id.clone();
    let base = format!("{}{{{}}}", store.prefix(), &id[..2]);
    let source = cluster.port_of(&store.session_key(&id)).unwrap();
    let target = *cluster.ports().iter().find(|&&p| p != source).unwrap();
    let mut src = node_connection(source).await;
    let mut dst = node_connection(target).await;
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(&base)
        .query_async(&mut src)
        .await
        .unwrap();
    let myid = async |conn: &mut redis::aio::MultiplexedConnection| -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query_async(conn)
            .await
            .unwrap()
    };
    let (src_id, dst_id) = (myid(&mut src).await, myid(&mut dst).await);
    let setslot = async |conn: &mut redis::aio::MultiplexedConnection, how: &str, node: &str| {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(how)
            .arg(node)
            .query_async(conn)
            .await
            .unwrap();
    };
    let migrate = async |conn: &mut redis::aio::MultiplexedConnection, keys: &[String]| {
        let _: redis::Value = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(target)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(keys)
            .query_async(conn)
            .await
            .unwrap();
    };
    setslot(&mut dst, "IMPORTING", &src_id).await;
    setslot(&mut src, "MIGRATING", &dst_id).await;
    migrate(&mut src, &[format!("{base}u:{user}")]).await;

    let error = tokens
        .logout(&user, pair.refresh_token.as_str())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), RefreshErrorKind::Unavailable);
    let session: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(store.session_key(&id))
        .query_async(&mut src)
        .await
        .unwrap();
    assert_eq!(
        session.get("rev").map(String::as_str),
        Some("0"),
        "not revoked"
    );
    let announced: Option<u64> = redis::cmd("ZSCORE")
        .arg(format!("{base}ended"))
        .arg(&id)
        .query_async(&mut src)
        .await
        .unwrap();
    assert_eq!(announced, None, "not announced");

    // The migration completes: every key of the slot, then the slot.
    loop {
        let keys: Vec<String> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(100)
            .query_async(&mut src)
            .await
            .unwrap();
        if keys.is_empty() {
            break;
        }
        migrate(&mut src, &keys).await;
    }
    for port in cluster.ports() {
        setslot(&mut node_connection(port).await, "NODE", &dst_id).await;
    }
    assert!(
        tokens
            .logout(&user, pair.refresh_token.as_str())
            .await
            .unwrap(),
        "the retry after the migration"
    );
    assert!(store.session(&id).await.unwrap().unwrap().revoked);
    let announced: Option<u64> = redis::cmd("ZSCORE")
        .arg(format!("{base}ended"))
        .arg(&id)
        .query_async(&mut dst)
        .await
        .unwrap();
    assert!(announced.is_some(), "announced");
}

/// How long the busy script stalls a node: past the store's two-second
/// response timeout, under Redis's `busy-reply-threshold` (5 s) and the
/// cluster's node timeout.
const STALL_MS: u64 = 3000;

/// Busy-waits for ARGV[1] milliseconds: every client of the node waits.
const BUSY_SCRIPT: &str = "
local function ms() local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000) end
local start = ms()
while ms() - start < tonumber(ARGV[1]) do end
return 1";

async fn node_connection(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Runs the busy script on the node on `port` and returns once the node
/// no longer answers (the script runs on for [`STALL_MS`]).
async fn stall(port: u16) {
    let mut busy = node_connection(port).await;
    let mut probe = node_connection(port).await;
    tokio::spawn(async move {
        let _: Result<i64, _> = redis::cmd("EVAL")
            .arg(BUSY_SCRIPT)
            .arg(0)
            .arg(STALL_MS)
            .query_async(&mut busy)
            .await;
    });
    loop {
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut probe);
        if tokio::time::timeout(Duration::from_millis(100), ping)
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A `RedisStore` that stalls the node on `port` right before its next
/// rotation: the refresh's lookup answered, its rotation queues behind the
/// busy script, the client times out, and the rotation runs afterwards.
#[derive(Debug)]
struct StallBeforeRotate {
    inner: RedisStore,
    port: u16,
    armed: AtomicBool,
}

#[async_trait]
impl RefreshStore for StallBeforeRotate {
    async fn create(
        &self,
        session: &Session,
        token: &TokenRecord,
        max_sessions: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.create(session, token, max_sessions).await
    }
    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            stall(self.port).await;
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

/// A refresh while the node on `port` is stalled (now if `stall_now`, else
/// by the store before its rotation): 503; once the node is free, the
/// client's retry of the token it holds gets a new pair (a `Retried` one
/// when the queued rotation spent the token), nothing revoked.
async fn stalled_node_is_503_then_retry(
    tokens: &RefreshTokens,
    store: &RedisStore,
    port: u16,
    login: &mut TokenPair,
    stall_now: bool,
    lazy: &RedisStore,
) {
    // Stalled now (in the lookup), or by the store at its rotation.
    let error = if stall_now {
        stall(port).await;
        // A store connected lazily keeps the response timeout too.
        let (refreshed, read) = tokio::join!(
            tokens.refresh(login.refresh_token.as_str(), same_user),
            lazy.session(&login.session.id),
        );
        assert!(
            read.is_err(),
            "a lazy cluster store times out too: {read:?}"
        );
        refreshed
    } else {
        tokens
            .refresh(login.refresh_token.as_str(), same_user)
            .await
    }
    .expect_err("the node is stalled past the response timeout");
    assert_eq!(error.kind(), RefreshErrorKind::Unavailable);
    // Free again once a PING is answered.
    let mut probe = node_connection(port).await;
    for _ in 0..100 {
        let cmd = redis::cmd("PING");
        if let Ok(Ok(_)) = tokio::time::timeout(
            Duration::from_secs(1),
            cmd.query_async::<String>(&mut probe),
        )
        .await
        {
            break;
        }
    }

    // The refresh timed out in its lookup (nothing spent) or in its
    // rotation (queued, run once the node was free, with the retry permit
    // queued behind it): either way the token is not revoked.
    let hash = tokens.hash(login.refresh_token.as_str());
    let held = retry(|| store.token(&login.session.id, &hash))
        .await
        .unwrap();
    if stall_now {
        assert!(
            matches!(held.status, TokenStatus::Active | TokenStatus::Rotated(_)),
            "{held:?}"
        );
    } else {
        assert!(
            matches!(held.status, TokenStatus::Rotated(_)),
            "the queued rotation ran: {held:?}"
        );
    }
    // The client retries the token it holds: a new pair, not reuse.
    let next = tokens
        .refresh(login.refresh_token.as_str(), same_user)
        .await
        .expect("the retry after a timeout is not reuse");
    assert_eq!(next.session.id, login.session.id);
    assert!(
        !store
            .session(&login.session.id)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    *login = next;
}

/// `call` until it succeeds (the client finding the restarted node), for
/// up to half a minute.
async fn retry<T, F, Fut>(mut call: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, StoreError>>,
{
    for _ in 0..300 {
        if let Ok(value) = call().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// A cluster whose nodes do not answer: `cluster` fails within the
/// connect timeout, `cluster_lazy` starts and its calls fail with a
/// `StoreError`; no node URL at all is an error.
#[tokio::test]
async fn an_unreachable_cluster_is_an_error() {
    let started = std::time::Instant::now();
    assert!(RedisStore::cluster(["redis://127.0.0.1:1"]).await.is_err());
    assert!(RedisStore::cluster(Vec::<String>::new()).await.is_err());
    assert!(RedisStore::cluster(["not a url"]).await.is_err());
    let lazy = RedisStore::cluster_lazy(["redis://:hunter2@127.0.0.1:1"]).unwrap();
    assert!(!format!("{lazy:?}").contains("hunter2"));
    assert!(lazy.session("s").await.is_err());
    assert!(lazy.revoke_user("u").await.is_err());
    assert!(started.elapsed() < Duration::from_secs(30));
}
