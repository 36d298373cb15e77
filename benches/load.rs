//! Load: requests per second of an axum "hello" server with and without
//! `JwtAuthLayer`, over loopback HTTP/1.1, measured in one run.
//!
//! ```text
//! cargo bench --bench load
//! LOAD_SECONDS=3 LOAD_ROUNDS=5 cargo bench --bench load   # longer
//! ```
//!
//! One server thread (a current-thread Tokio runtime, like `wrk` against a
//! one-worker server) serves every route:
//!
//! | route | layer |
//! |---|---|
//! | `/plain` | none |
//! | `/hs256`, `/hs256-cached` | HS256, the verified-token cache off / on |
//! | `/es256`, `/es256-cached` | ES256, the cache off / on |
//! | `/floor` | a bare HS256 check: what no verifying layer can skip |
//!
//! `/floor`'s layer does only what the verify bench calls the floor: the
//! three parts of the token decoded, a prekeyed HMAC-SHA256 checked, the
//! claims deserialized and put into the request; no claim is checked, and
//! a request it cannot verify panics (the client only sends good tokens).
//! Its ratio is the most any HS256 layer can score on this machine.
//!
//! One client thread (hyper's HTTP/1.1 client connections on a
//! current-thread runtime, `LOAD_CONNECTIONS` keep-alive connections, 32 by
//! default) sends `GET` requests with one of 16 tokens (16 users) in turn
//! and checks every answer is 200. Each measurement stops by itself after
//! `LOAD_SECONDS` (default 0.5) or `LOAD_MAX_REQUESTS` (default 200,000),
//! whichever comes first. Each round (`LOAD_ROUNDS`, default 7) measures
//! `/plain` before and after every other route; a route's ratio in that
//! round is its rate over the mean of the two `/plain` rates beside it, and
//! the report gives each route's median rate and the median of its
//! per-round ratios: a shared machine's load, which drifts over seconds,
//! tilts a ratio far less than it tilts the rates themselves.
//!
//! Only the loopback address is ever used.

use std::{
    cell::Cell,
    net::SocketAddr,
    rc::Rc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{Router, routing::get};
use hmac::{Hmac, Mac};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use sha2::Sha256;
use tokio::{net::TcpStream, sync::oneshot};
use tower_jwt_auth::{Algorithm, JwtAuthLayer, SigningKey, TokenIssuer, VerificationKey, Verifier};

#[path = "common/floor.rs"]
mod floor;
use floor::floor;

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "example-api";
const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret-0123456789";
const USERS: usize = 16;

/// The application's claims, as a realistic handler would want them.
#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)] // only deserialized
struct BenchClaims {
    sub: String,
    role: String,
    exp: i64,
}

struct Settings {
    seconds: f64,
    max_requests: u64,
    connections: usize,
    rounds: usize,
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env() -> Self {
        let settings = Self {
            seconds: setting("LOAD_SECONDS", 0.5),
            max_requests: setting("LOAD_MAX_REQUESTS", 200_000),
            connections: setting("LOAD_CONNECTIONS", 32),
            rounds: setting("LOAD_ROUNDS", 7),
        };
        assert!(settings.seconds > 0.0 && settings.seconds <= 60.0);
        assert!(settings.max_requests > 0 && settings.connections > 0 && settings.rounds > 0);
        settings
    }
}

fn key(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("tests/keys/{name}: {e}"))
}

fn verifier(key: VerificationKey, cache: bool) -> Verifier {
    let builder = Verifier::builder()
        .key(key)
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let builder = if cache { builder } else { builder.no_cache() };
    builder.build().unwrap()
}

fn tokens(signing: SigningKey) -> Vec<String> {
    let issuer = TokenIssuer::new(signing).issuer(ISSUER).audience(AUDIENCE);
    (0..USERS)
        .map(|i| {
            issuer
                .access_token(format!("user-{i}"))
                .role("USER")
                .sign()
                .unwrap()
                .into_string()
        })
        .collect()
}

fn app() -> Router {
    let hmac = || VerificationKey::hmac(SECRET).unwrap();
    let ec = || VerificationKey::ec_pem(key("ec_public.pem")).unwrap();
    let layer = |verifier| JwtAuthLayer::<BenchClaims>::new(verifier);
    async fn hello() -> &'static str {
        "Hello, World!"
    }
    Router::new()
        .route("/plain", get(hello))
        .route("/hs256", get(hello).layer(layer(verifier(hmac(), false))))
        .route(
            "/hs256-cached",
            get(hello).layer(layer(verifier(hmac(), true))),
        )
        .route("/es256", get(hello).layer(layer(verifier(ec(), false))))
        .route(
            "/floor",
            get(hello).layer(tower::layer::layer_fn(|inner| Floor {
                inner,
                mac: Hmac::new_from_slice(SECRET).unwrap(),
            })),
        )
        .route(
            "/es256-cached",
            get(hello).layer(layer(verifier(ec(), true))),
        )
}

/// The floor of an HS256 layer (see the module docs).
#[derive(Clone)]
struct Floor<S> {
    inner: S,
    mac: Hmac<Sha256>,
}

impl<S: tower::Service<Request<B>>, B> tower::Service<Request<B>> for Floor<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        let value = request.headers()[header::AUTHORIZATION].to_str().unwrap();
        let token = value.strip_prefix("Bearer ").unwrap();
        let claims: BenchClaims = floor(token, &self.mac);
        request.extensions_mut().insert(claims);
        self.inner.call(request)
    }
}

/// Serves `app` on one thread until told to stop.
fn start_server() -> (SocketAddr, oneshot::Sender<()>, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app())
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
    });
    (addr, stop, thread)
}

/// Sends requests to `path` on `connections` connections until `seconds`
/// pass or `max_requests` are answered; returns requests per second.
async fn measure(addr: SocketAddr, path: &str, tokens: &[String], settings: &Settings) -> f64 {
    let done = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(settings.seconds);
    let local = tokio::task::LocalSet::new();
    for connection in 0..settings.connections {
        let done = Rc::clone(&done);
        let path = path.to_owned();
        let tokens = tokens.to_vec();
        let max = settings.max_requests;
        local.spawn_local(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::task::spawn_local(conn);
            let mut n = connection;
            while Instant::now() < deadline && done.get() < max {
                let mut request = Request::get(path.as_str())
                    .header(header::HOST, "127.0.0.1")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                if !tokens.is_empty() {
                    let token = &tokens[n % tokens.len()];
                    request.headers_mut().insert(
                        header::AUTHORIZATION,
                        format!("Bearer {token}").parse().unwrap(),
                    );
                }
                n += 1;
                sender.ready().await.unwrap();
                let response = sender.send_request(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{path}");
                response.into_body().collect().await.unwrap();
                done.set(done.get() + 1);
            }
        });
    }
    local.await;
    done.get() as f64 / start.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let settings = Settings::from_env();
    // Builds the verifiers (and installs the crypto provider) before any
    // token is signed.
    drop(app());
    let hs = tokens(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap());
    let es = tokens(SigningKey::ec_pem(Algorithm::ES256, key("ec_private.pem")).unwrap());
    let routes: [(&str, &[String]); 6] = [
        ("/plain", &[]),
        ("/hs256", &hs),
        ("/hs256-cached", &hs),
        ("/es256", &es),
        ("/es256-cached", &es),
        ("/floor", &hs),
    ];

    let (addr, stop, server) = start_server();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "load: {} connection(s), {} s or {} requests per measurement, {} round(s), server on {addr} (one thread)",
        settings.connections, settings.seconds, settings.max_requests, settings.rounds
    );
    // Warm-up: every route, and the caches hold the tokens.
    let warm_up = Settings {
        seconds: 0.3,
        ..settings
    };
    for (path, tokens) in routes {
        client.block_on(measure(addr, path, tokens, &warm_up));
    }
    let mut rates = vec![Vec::new(); routes.len()];
    // Per round: each route's rate over the `/plain` rates beside it.
    let mut ratios = vec![Vec::new(); routes.len()];
    let mut cached_es_over_hs = Vec::new();
    let mut hs_over_floor = Vec::new();
    for round in 0..settings.rounds {
        let mut plain = client.block_on(measure(addr, "/plain", &[], &settings));
        rates[0].push(plain);
        let mut round_rates = vec![0.0; routes.len()];
        for (i, (path, tokens)) in routes.iter().enumerate().skip(1) {
            let rps = client.block_on(measure(addr, path, tokens, &settings));
            let after = client.block_on(measure(addr, "/plain", &[], &settings));
            println!(
                "round {}: {path:<14} {rps:>10.0} requests/s (/plain {plain:.0} before, {after:.0} after)",
                round + 1
            );
            rates[i].push(rps);
            rates[0].push(after);
            ratios[i].push(rps / ((plain + after) / 2.0));
            round_rates[i] = rps;
            plain = after;
        }
        cached_es_over_hs.push(round_rates[4] / round_rates[2]);
        hs_over_floor.push(round_rates[1] / round_rates[5]);
    }
    let _ = stop.send(());
    server.join().unwrap();

    println!();
    println!("| route | requests/s (median) | with layer / without (median of rounds) |");
    println!("|---|---|---|");
    for (i, (path, _)) in routes.iter().enumerate() {
        let ratio = if i == 0 {
            1.0
        } else {
            median(ratios[i].clone())
        };
        println!(
            "| `{path}` | {:.0} | {ratio:.2} |",
            median(rates[i].clone())
        );
    }
    println!();
    println!(
        "ES256 with the cache / HS256 with the cache (median of rounds): {:.2}",
        median(cached_es_over_hs)
    );
    println!(
        "HS256 without the cache / the floor (median of rounds): {:.2}",
        median(hs_over_floor)
    );
}
