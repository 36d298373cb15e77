//! `RedisStore` on a real Redis Cluster of three masters, started on
//! loopback ports by the test itself (`tests/support/redis_cluster.rs`:
//! `redis-server --cluster-enabled yes` three times, `redis-cli --cluster
//! create`). Needs `redis-server` and `redis-cli` (or `REDIS_SERVER` and
//! `REDIS_CLI`); skipped without them, unless `CI=true`.
//!
//! One test, in steps, so the cluster starts once: the whole conformance
//! suite (the 32-way race included); keys spread over every node; then a
//! node's process killed while clients keep refreshing: 503s, never reuse,
//! nothing revoked; the node restarted: every client carries on.

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

use http::{Request, StatusCode, header};
use tower::ServiceExt;
use tower_jwt_auth::{
    Algorithm, SigningKey, TokenIssuer,
    refresh::{
        RedisStore, RefreshEndpoint, RefreshErrorKind, RefreshToken, RefreshTokens, Subject,
        TokenPair, conformance,
        store::{RefreshStore, StoreError, TokenStatus},
    },
};

use common_store::unique;
use redis_cluster::RedisCluster;

/// How many clients keep refreshing through the outage.
const CLIENTS: usize = 24;

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
    let issuer = TokenIssuer::new(
        SigningKey::hmac(Algorithm::HS256, b"cluster tests secret of >= 32 bytes").unwrap(),
    );
    let tokens = RefreshTokens::new(Arc::new(store.clone()), issuer);
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
    // token it holds. A rotation that ran as the process died, its answer
    // lost (and its retry permit with the node), would spend the held
    // token: such a client is counted, not retried (its retry would be
    // reuse, as it is on a single Redis that dies mid-answer).
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
                lost += 1;
            }
            TokenStatus::Revoked => panic!("node {node}: a revoked token"),
        }
    }
    assert!(lost < CLIENTS / 2, "{lost} lost answers");
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
