//! Three processes of `examples/axum_server` sharing one store (Redis,
//! PostgreSQL, and a Redis Cluster of three masters that the test starts on
//! loopback ports): a logout through one makes the other two reject that
//! session's access token within 100 ms (the logout broadcast).
//!
//! The processes are this test binary, started again to run the example's
//! `main` (the ignored test `example_server_process`), so they are real
//! processes with nothing shared but the store. Skipped when a store is
//! unreachable, unless `CI=true`.

#[path = "../examples/axum_server/main.rs"]
#[allow(dead_code)]
mod axum_server;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::Value;

/// The environment variable that makes `example_server_process` a server.
const CHILD: &str = "TJWT_EXAMPLE_BROADCAST_CHILD";
const SECRET: &str = "the broadcast example test's secret, 32+ bytes";
/// The issue's bound: a logout through one instance is refused by the others
/// within this.
const DEADLINE: Duration = Duration::from_millis(100);

/// Not a test of its own: the server process of the tests below, which
/// start it with `CHILD` set. Without it, it returns at once.
#[test]
#[ignore = "the example server as a child process of the tests in this file"]
fn example_server_process() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    // The test that started this process holds its stdin: when that test
    // ends, however it ends, stdin closes and the server goes with it.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let code = axum_server::main();
    std::process::exit(if code == std::process::ExitCode::SUCCESS {
        0
    } else {
        1
    });
}

/// One example server process, killed on drop.
struct Instance {
    child: Child,
    url: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an instance with `env`, and waits until it listens with the logout
/// broadcast synced.
fn start(env: &[(&str, &str)]) -> Instance {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "example_server_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("BIND", "127.0.0.1:0")
        .env("JWT_SECRET", SECRET)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start the example");
    let stdout = child.stdout.take().unwrap();
    let (lines, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                // Nobody reads any more: keep draining so the child never blocks.
                continue;
            }
        }
    });
    let mut instance = Instance {
        child,
        url: String::new(),
    };
    let (mut synced, mut broadcast) = (false, false);
    let give_up = Instant::now() + Duration::from_secs(30);
    while instance.url.is_empty() || !synced {
        let line = receive
            .recv_timeout(give_up.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the example did not start with a synced broadcast"));
        eprintln!("[example] {line}");
        if line.contains("listening") {
            let address = line
                .split_whitespace()
                .find_map(|field| field.strip_prefix("address="))
                .expect("the listening line names the address");
            instance.url = format!("http://{address}");
            broadcast = line.contains(r#"sessions="broadcast""#);
        }
        synced |= line.contains("logout broadcast: synced");
    }
    assert!(broadcast, "the example runs the broadcast check");
    instance
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    json: Value,
}

async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> Reply {
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    Reply {
        status,
        challenge,
        json,
    }
}

async fn me(client: &HttpClient, instance: &Instance, token: &str) -> Reply {
    let request = Request::get(format!("{}/users/me", instance.url))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::default())
        .unwrap();
    send(client, request).await
}

/// The rejection of an access token whose session ended, exactly.
fn assert_ended(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            r#"Bearer realm="tower-jwt-auth-example", error="invalid_token", error_description="the session has ended""#
        )
    );
    assert_eq!(
        reply.json,
        serde_json::json!({"error": "invalid_token", "error_description": "the session has ended"})
    );
}

/// Polls `instance` with `token` until it refuses it; how long that took
/// since `since`.
async fn refused_after(
    client: &HttpClient,
    instance: &Instance,
    token: &str,
    since: Instant,
) -> Duration {
    loop {
        let reply = me(client, instance, token).await;
        if reply.status != StatusCode::OK {
            let latency = since.elapsed();
            assert_ended(&reply);
            return latency;
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "{} still accepts the token",
            instance.url
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Log in through the first instance; the token works on all three; log out
/// through the first; the other two refuse the token within the deadline.
async fn logout_reaches_every_instance(store: &str, env: &[(&str, &str)]) {
    let instances: Vec<Instance> = std::thread::scope(|scope| {
        let started: Vec<_> = (0..3).map(|_| scope.spawn(|| start(env))).collect();
        started.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    let login = Request::post(format!("{}/users/login", instances[0].url))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::from(
            "username=user@example.com&password=user-password",
        ))
        .unwrap();
    let reply = send(&client, login).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    let access = reply.json["access_token"].as_str().unwrap().to_owned();
    let refresh = reply.json["refresh_token"].as_str().unwrap().to_owned();
    for instance in &instances {
        let reply = me(&client, instance, &access).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {}",
            instance.url,
            reply.json
        );
    }

    let logout = Request::post(format!("{}/users/logout", instances[0].url))
        .header(header::AUTHORIZATION, format!("Bearer {access}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::from(
            serde_json::json!({ "refresh_token": refresh }).to_string(),
        ))
        .unwrap();
    let reply = send(&client, logout).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.json);
    // From the logout's answer: the store has committed the revocation.
    let ended = Instant::now();
    let (first, second) = tokio::join!(
        refused_after(&client, &instances[1], &access, ended),
        refused_after(&client, &instances[2], &access, ended),
    );
    eprintln!("{store}: the other instances refused the token after {first:?} and {second:?}");
    for latency in [first, second] {
        assert!(
            latency < DEADLINE,
            "{store}: {latency:?} is over {DEADLINE:?}"
        );
    }
    refused_after(&client, &instances[0], &access, Instant::now()).await;
}

/// `name` from the environment, or `default`.
fn url(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn skip_or_fail(what: &str, error: &dyn std::fmt::Display) {
    assert!(
        !std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")),
        "{what} is unreachable on CI: {error}"
    );
    eprintln!("SKIPPED: {what} is unreachable ({error})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_reaches_the_other_instances_on_redis() {
    let redis_url = url("REDIS_URL", "redis://127.0.0.1:6379/");
    if let Err(e) = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
    {
        return skip_or_fail("Redis", &e);
    }
    logout_reaches_every_instance(
        "redis",
        &[("REFRESH_STORE", "redis"), ("REDIS_URL", &redis_url)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_reaches_the_other_instances_on_postgres() {
    use sqlx::Connection;
    let base = url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test");
    let mut admin = match sqlx::PgConnection::connect(&base).await {
        Ok(admin) => admin,
        Err(e) => return skip_or_fail("PostgreSQL", &e),
    };
    // A schema of this test's own, whatever else shares the database.
    let schema = format!("tjwt_example_bc_{}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let database_url = format!("{base}{separator}options[search_path]={schema}");
    logout_reaches_every_instance(
        "postgres",
        &[
            ("REFRESH_STORE", "postgres"),
            ("DATABASE_URL", &database_url),
        ],
    )
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_reaches_the_other_instances_on_redis_cluster() {
    let cluster = match tokio::task::spawn_blocking(redis_cluster::RedisCluster::start)
        .await
        .unwrap()
    {
        Ok(cluster) => cluster,
        Err(e) => return skip_or_fail("a Redis Cluster (redis-server)", &e),
    };
    // Several comma-separated node URLs: the example's cluster mode.
    let nodes = cluster.urls().join(",");
    logout_reaches_every_instance(
        "redis-cluster",
        &[("REFRESH_STORE", "redis"), ("REDIS_URL", &nodes)],
    )
    .await;
    // Dropping the cluster kills its nodes and removes their files.
    drop(cluster);
}
