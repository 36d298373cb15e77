//! What the logout broadcast's session check costs a request, against the
//! same layer without any session check, in the same run.
//!
//! ```text
//! cargo bench --bench broadcast --features redis          # needs Redis (REDIS_URL)
//! cargo bench --bench broadcast --features redis -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Subjects: one HS256 access token of a live session (`sid`), through
//! `JwtAuthLayer` around a trivial `service_fn`:
//!
//! - `none`: no session check;
//! - `broadcast`: `SessionBroadcast::check` over a `RedisStore`, synced (a
//!   live subscription), the set holding 10 000 ended sessions: the answer
//!   comes from memory;
//! - `session_check_redis` (criterion only, for contrast): the lookup of
//!   `RefreshTokens::session_check`, one Redis round trip per request.
//!
//! Each with the verified-token cache off (`uncached`) and on (`cached`, the
//! default, the token already in it).
//!
//! The interleaved ratios add `read_sid_only`: a check that only reads the
//! token's `sid` (`Claims::session_id()`, where the verifier found it: no
//! parse) and answers `Checked::Ready`, as the broadcast's check does before
//! its set lookup; `broadcast / read_sid_only` is the set lookup's own cost.
//!
//! After criterion, the ratio `broadcast / none` is measured again the way
//! `benches/verify.rs` does in its `ratios` mode, which the machine's load
//! cannot tilt: the subjects run in turn, about 2 ms each, for
//! `RATIO_ROUNDS` rounds (default 100), and the median of the per-round
//! ratios is printed. The goal is at most 1.10x. `-- ratios` runs only
//! that.
//!
//! Executor: with no check, or the broadcast's (a ready future while
//! synced), every future is ready on its first poll: a no-op waker polls it
//! once, as in `benches/verify.rs`. The Redis lookup runs on a Tokio runtime.

use std::{
    convert::Infallible,
    future::Future,
    hint::black_box,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use criterion::{BatchSize, Criterion};
use http::{Request, Response, header};
use tower::{Layer, ServiceExt, service_fn};
use tower_jwt_auth::{
    Algorithm, Claims, JwtAuthLayer, SigningKey, TokenIssuer, VerificationKey, Verifier,
    auth::Checked,
    refresh::{RedisStore, RefreshTokens, SessionBroadcast, Subject, store::RefreshStore},
};

const SECRET: &[u8] = b"a benchmark secret of at least 32 bytes";
const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "example-api";
/// Sessions ended before the measurement, in the broadcast's set.
const ENDED: usize = 10_000;

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benchmark futures are ready on their first poll"),
    }
}

fn request(token: &str) -> Request<String> {
    Request::builder()
        .uri("/users/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap()
}

async fn trivial(_request: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(Response::new(String::new()))
}

fn verifier(cache: bool) -> Verifier {
    let builder = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let builder = if cache { builder } else { builder.no_cache() };
    builder.build().unwrap()
}

/// A request through `service`, `n` times, the requests made before the
/// clock starts.
fn requests<S>(service: &S, token: &str, n: usize) -> Duration
where
    S: tower::Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone,
{
    let batch: Vec<_> = (0..n).map(|_| (service.clone(), request(token))).collect();
    let start = Instant::now();
    for (service, request) in batch {
        let response = block_on(service.oneshot(request)).unwrap();
        assert!(response.status().is_success());
        black_box(response);
    }
    start.elapsed()
}

struct Setup {
    runtime: tokio::runtime::Runtime,
    store: Arc<RedisStore>,
    tokens: RefreshTokens,
    broadcast: SessionBroadcast,
    token: String,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let url = redis_url();
    let prefix = format!("tjwt-bench-broadcast-{}:", std::process::id());
    let (store, tokens, broadcast, token) = runtime.block_on(async {
        let store = Arc::new(
            RedisStore::new(&url)
                .await
                .unwrap_or_else(|e| panic!("this benchmark needs Redis at {url}: {e}"))
                .with_prefix(&prefix),
        );
        let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
            .issuer(ISSUER)
            .audience(AUDIENCE);
        let tokens = RefreshTokens::new(store.clone(), issuer);
        let broadcast = SessionBroadcast::builder(tokens.clone(), store.clone())
            .start()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), broadcast.synced())
            .await
            .expect("the broadcast syncs");
        // Ended sessions fill the set (each ending is announced).
        let user = "bench-ended";
        for _ in 0..ENDED / 100 {
            for _ in 0..100 {
                let login = tokens.login(Subject::new(user), None).await.unwrap();
                store.revoke_session(&login.session.id).await.unwrap();
            }
        }
        while broadcast.len() < ENDED {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let live = tokens
            .login(Subject::new("bench-user"), None)
            .await
            .unwrap();
        (store, tokens, broadcast, live.access_token.into_string())
    });
    Setup {
        runtime,
        store,
        tokens,
        broadcast,
        token,
    }
}

fn main() {
    let setup = setup();
    if std::env::args().skip(1).any(|arg| arg == "ratios") {
        ratios(&setup);
        clean_up(&setup);
        return;
    }
    let token = setup.token.as_str();
    let mut criterion = Criterion::default().configure_from_args();
    for cache in [false, true] {
        let name = if cache { "cached" } else { "uncached" };
        let none =
            JwtAuthLayer::<serde_json::Value>::new(verifier(cache)).layer(service_fn(trivial));
        let broadcast = JwtAuthLayer::<serde_json::Value>::builder(verifier(cache))
            .check(setup.broadcast.check())
            .build()
            .unwrap()
            .layer(service_fn(trivial));
        let lookup = JwtAuthLayer::<serde_json::Value>::builder(verifier(cache))
            .check(setup.tokens.session_check())
            .build()
            .unwrap()
            .layer(service_fn(trivial));
        let mut group = criterion.benchmark_group(format!("session_check_{name}"));
        group.bench_function("none", |b| {
            b.iter_batched(
                || (none.clone(), request(token)),
                |(service, request)| block_on(service.oneshot(request)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("broadcast", |b| {
            b.iter_batched(
                || (broadcast.clone(), request(token)),
                |(service, request)| block_on(service.oneshot(request)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("session_check_redis", |b| {
            b.iter_batched(
                || (lookup.clone(), request(token)),
                |(service, request)| setup.runtime.block_on(service.oneshot(request)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
    criterion.final_summary();
    ratios(&setup);
    clean_up(&setup);
}

/// Deletes the benchmark's sessions and its tags' indexes of ended ones.
fn clean_up(setup: &Setup) {
    setup.runtime.block_on(async {
        let far = i64::MAX / 2;
        setup.store.purge(far, far).await.unwrap();
        let mut conn = redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        // What a purge leaves: the tags' indexes of ended sessions.
        let pattern = format!("{}*ended", setup.store.prefix());
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
    });
}

fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned())
}

/// One subject of [`ratios`]: runs `n` requests and returns the time they took.
type Timed<'a> = (&'static str, Box<dyn FnMut(usize) -> Duration + 'a>);

/// `broadcast / none`, interleaved rounds, medians (see the module docs).
fn ratios(setup: &Setup) {
    let rounds: usize = std::env::var("RATIO_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    let token = setup.token.as_str();
    for cache in [false, true] {
        let none =
            JwtAuthLayer::<serde_json::Value>::new(verifier(cache)).layer(service_fn(trivial));
        let broadcast = JwtAuthLayer::<serde_json::Value>::builder(verifier(cache))
            .check(setup.broadcast.check())
            .build()
            .unwrap()
            .layer(service_fn(trivial));
        // What the broadcast's check must do before its set lookup: read
        // `sid` (no parse: where the verifier found it).
        let registered = JwtAuthLayer::<serde_json::Value>::builder(verifier(cache))
            .check(|claims: &Claims<serde_json::Value>| {
                black_box(claims.session_id());
                Checked::Ready(Ok(()))
            })
            .build()
            .unwrap()
            .layer(service_fn(trivial));
        let mut subjects: [Timed<'_>; 3] = [
            ("none", Box::new(|n| requests(&none, token, n))),
            ("broadcast", Box::new(|n| requests(&broadcast, token, n))),
            (
                "read_sid_only",
                Box::new(|n| requests(&registered, token, n)),
            ),
        ];
        let sizes: Vec<usize> = subjects
            .iter_mut()
            .map(|(_, run)| {
                let once = run(64).as_secs_f64() / 64.0;
                ((0.002 / once.max(1e-9)) as usize).clamp(1, 100_000)
            })
            .collect();
        let mut ns = [
            Vec::with_capacity(rounds),
            Vec::with_capacity(rounds),
            Vec::with_capacity(rounds),
        ];
        for _ in 0..rounds {
            for (i, (_, run)) in subjects.iter_mut().enumerate() {
                ns[i].push(run(sizes[i]).as_secs_f64() * 1e9 / sizes[i] as f64);
            }
        }
        let median = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let name = if cache { "cache on" } else { "cache off" };
        println!(
            "\n{name}, {rounds} interleaved rounds of about 2 ms per subject, {} ended sessions held:",
            setup.broadcast.len()
        );
        println!("| subject | median ns |");
        println!("|---|---|");
        for (i, (subject, _)) in subjects.iter().enumerate() {
            println!("| {subject} | {:.0} |", median(ns[i].clone()));
        }
        let ratio = median((0..rounds).map(|r| ns[1][r] / ns[0][r]).collect());
        println!("broadcast / none: {ratio:.3}x (goal: at most 1.10x)");
        let read = median((0..rounds).map(|r| ns[2][r] / ns[0][r]).collect());
        let own = median((0..rounds).map(|r| ns[1][r] / ns[2][r]).collect());
        println!(
            "read_sid_only / none: {read:.3}x; broadcast / read_sid_only: {own:.3}x \
             (the set lookup and everything else of the check)"
        );
    }
}
