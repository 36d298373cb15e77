//! The per-request cost of `tower-jwt-auth` against a raw
//! `jsonwebtoken::decode` of the same token, in the same run.
//!
//! ```text
//! cargo bench --bench verify
//! cargo bench --bench verify -- --warm-up-time 1 --measurement-time 3   # quicker
//! ```
//!
//! One group per algorithm (HS256, RS256, ES256, EdDSA), each with:
//!
//! - `raw_decode`: `jsonwebtoken::decode` with the same validation as the
//!   verifier (the one algorithm, `iss`, `aud`, `exp` required, 30 s leeway);
//! - `floor` (HS256 only): what no verifier can skip, URL-safe base64 of
//!   the three parts, a prekeyed HMAC-SHA256 and serde of the claims;
//! - `verifier`: `Verifier::verify::<BenchClaims>`, the cache off;
//! - `verifier_cached`: the same with the verified-token cache (on by
//!   default), the token already in it;
//! - `layer`: a whole request through `JwtAuthLayer` around a trivial
//!   `service_fn`, the cache off: token extraction, verification, the claims
//!   inserted into the request extensions, the inner call, and the request
//!   dropped with them. Requests are built as axum hands them to a route's
//!   layers, their extension map already made (axum's router puts
//!   `OriginalUri` and `MatchedPath` into it first); `ratios` also measures
//!   requests without one (`layer_bare`, net of `inner_bare`), whose map
//!   the layer's entry creates;
//! - `layer_cached`: the same with the cache on, the token in it.
//!
//! The `jwt_authorizer_HS256` and `jwt_authorizer_ES256` groups put the same
//! token through `jwt-authorizer`'s layer and ours, each around a trivial
//! service of its own framework's body type (`inner_ours`, `inner_theirs`,
//! to subtract):
//!
//! ```text
//! cargo bench --bench verify -- jwt_authorizer --warm-up-time 2 --measurement-time 5
//! ```
//!
//! On a loaded machine, the ratios of one criterion run drift with the
//! load between functions. `cargo bench --bench verify -- ratios` runs the
//! HS256 and ES256 subjects in turn instead, about 2 ms each, for
//! `RATIO_ROUNDS` rounds (default 100), and prints the median of the
//! per-round ratios: ours / raw decode, ours / floor, jwt-authorizer /
//! ours, and (HS256, a token with a `sid`) a layer whose check reads `sid`
//! and `sub` / the layer without a check, layers net of their inner service.
//!
//! The `routing_HS256` and `routing_ES256` groups put the same token through
//! a single-issuer verifier (`single`) and through `Verifier::by_issuer` of
//! three issuers, the token's among them (`by_issuer`), with `verify` and as
//! a whole `layer` request: what routing by `iss` costs.
//!
//! ```text
//! cargo bench --bench verify -- routing --warm-up-time 2 --measurement-time 5
//! ```
//!
//! The `dpop_ES256` group prices DPoP (RFC 9449) in the same run: `bearer`
//! is an ES256 token through a bearer-only layer; `dpop` is an ES256 token
//! bound to a P-256 key, with a fresh ES256 proof per request (`htm`, `htu`,
//! `iat`, `jti`, `ath`), through `dpop.or_bearer()`: the proof's header and
//! claims parsed, its key parsed and its signature verified, the URL
//! normalized, the binding compared and the `jti` recorded in the default
//! in-memory replay cache. Proofs are signed in the batch setup, outside the
//! measurement.
//!
//! ```text
//! cargo bench --bench verify -- dpop --warm-up-time 2 --measurement-time 5
//! ```
//!
//! The `baseline/inner_only` function sends the same request to the trivial
//! service without the layer: what the `layer` numbers include that is not
//! the layer's (executor, `oneshot`, the service, batching), a few ns.
//!
//! Executor: every future here is ready on its first poll (the service is an
//! `async` block with no await point, and the layer has no `check`), so
//! [`block_on`] polls once with a no-op waker and nothing else. No thread-local
//! parking (`futures::executor`) or runtime context (`tokio`) is entered, which
//! would add tens to hundreds of nanoseconds that are not the layer's.
//!
//! Requests are built in `iter_batched` setup, outside the measurement:
//! a server has the request already.

use std::{
    convert::Infallible,
    future::Future,
    hint::black_box,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use criterion::{BatchSize, Criterion, criterion_group};
use hmac::{Hmac, Mac};
use http::{Request, Response, StatusCode, header};
use jsonwebtoken::{DecodingKey, Validation, decode};
use jwt_authorizer::{IntoLayer, JwtAuthorizer};
use serde::Deserialize;
use sha2::Sha256;
use tower::{Layer, ServiceExt, service_fn};
use tower_jwt_auth::{
    Algorithm, AuthError, Claims, JwtAuthLayer, SigningKey, TokenIssuer, VerificationKey, Verifier,
    dpop::{Dpop, MemoryReplayCache},
    refresh::{MemoryStore, RefreshTokens, Subject},
};

#[path = "common/floor.rs"]
mod floor;
use floor::floor;

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "example-api";
const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret-0123456789";

/// The application's claims, as a realistic handler would want them.
#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)] // only deserialized; reading them is not what is measured
struct BenchClaims {
    sub: String,
    role: String,
    exp: i64,
    iss: String,
    aud: String,
    iat: i64,
    jti: String,
}

/// Polls `future` once with a no-op waker; see the module docs.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benchmark futures are ready on their first poll"),
    }
}

struct Case {
    name: &'static str,
    token: String,
    raw_key: DecodingKey,
    validation: Validation,
    /// The cache off.
    verifier: Verifier,
    /// The cache on (the default).
    cached: Verifier,
    /// The public key in PEM, for jwt-authorizer (`None` for HMAC).
    pem: Option<Vec<u8>>,
}

fn case(
    name: &'static str,
    signing: SigningKey,
    verification: VerificationKey,
    raw_key: DecodingKey,
    alg: jsonwebtoken::Algorithm,
    pem: Option<Vec<u8>>,
) -> Case {
    let builder = Verifier::builder()
        .key(verification)
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let cached = builder.clone().build().unwrap();
    let verifier = builder.no_cache().build().unwrap();
    let token = TokenIssuer::new(signing)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .access_token("user-1")
        .role("USER")
        .sign()
        .unwrap()
        .into_string();
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.leeway = 30;
    Case {
        name,
        token,
        raw_key,
        validation,
        verifier,
        cached,
        pem,
    }
}

fn cases() -> Vec<Case> {
    let key = |name: &str| {
        std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_else(|e| panic!("tests/keys/{name}: {e}"))
    };
    vec![
        case(
            "HS256",
            SigningKey::hmac(Algorithm::HS256, SECRET).unwrap(),
            VerificationKey::hmac(SECRET).unwrap(),
            DecodingKey::from_secret(SECRET).unwrap(),
            jsonwebtoken::Algorithm::HS256,
            None,
        ),
        case(
            "RS256",
            SigningKey::rsa_pem(Algorithm::RS256, key("rsa_private.pem")).unwrap(),
            VerificationKey::rsa_pem(key("rsa_public.pem")).unwrap(),
            DecodingKey::from_rsa_pem(&key("rsa_public.pem")).unwrap(),
            jsonwebtoken::Algorithm::RS256,
            Some(key("rsa_public.pem")),
        ),
        case(
            "ES256",
            SigningKey::ec_pem(Algorithm::ES256, key("ec_private.pem")).unwrap(),
            VerificationKey::ec_pem(key("ec_public.pem")).unwrap(),
            DecodingKey::from_ec_pem(&key("ec_public.pem")).unwrap(),
            jsonwebtoken::Algorithm::ES256,
            Some(key("ec_public.pem")),
        ),
        case(
            "EdDSA",
            SigningKey::ed_pem(key("ed_private.pem")).unwrap(),
            VerificationKey::ed_pem(key("ed_public.pem")).unwrap(),
            DecodingKey::from_ed_pem(&key("ed_public.pem")).unwrap(),
            jsonwebtoken::Algorithm::EdDSA,
            Some(key("ed_public.pem")),
        ),
    ]
}

/// A request as axum hands it to a route's layers: its extension map
/// exists already (axum's router has put `OriginalUri` and `MatchedPath`
/// into it), so a layer's first entry does not create the map. For both
/// layers and their inner services alike.
fn request(token: &str) -> Request<String> {
    let mut request = bare_request(token);
    request.extensions_mut().insert(Routed);
    request
}

/// The marker that [`request`] puts into the extensions.
#[derive(Clone, Copy)]
struct Routed;

/// The same request with no extension map at all, as a bare hyper server
/// hands it over: the layer's entry creates the map (two allocations more).
fn bare_request(token: &str) -> Request<String> {
    Request::builder()
        .uri("/users/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap()
}

async fn trivial(_request: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(Response::new(String::new()))
}

fn bench(c: &mut Criterion) {
    let cases = cases();
    for case in &cases {
        let Case {
            name,
            token,
            raw_key,
            validation,
            verifier,
            cached,
            ..
        } = case;
        let service = JwtAuthLayer::<BenchClaims>::new(verifier.clone()).layer(service_fn(trivial));
        let service_cached =
            JwtAuthLayer::<BenchClaims>::new(cached.clone()).layer(service_fn(trivial));

        // Every path accepts the token before anything is timed (and the
        // cached ones hold it).
        decode::<BenchClaims>(token, raw_key, validation).expect("raw decode");
        verifier.verify::<BenchClaims>(token).expect("verifier");
        cached.verify::<BenchClaims>(token).expect("verifier");
        for service in [&service, &service_cached] {
            let response = block_on(service.clone().oneshot(request(token))).unwrap();
            assert_eq!(response.status(), StatusCode::OK, "layer");
        }

        let mut group = c.benchmark_group(*name);
        group.bench_function("raw_decode", |b| {
            b.iter(|| {
                decode::<BenchClaims>(black_box(token.as_str()), raw_key, validation).unwrap()
            })
        });
        if *name == "HS256" {
            let mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
            floor::<BenchClaims>(token, &mac);
            group.bench_function("floor", |b| {
                b.iter(|| floor::<BenchClaims>(black_box(token.as_str()), &mac))
            });
        }
        group.bench_function("verifier", |b| {
            b.iter(|| {
                verifier
                    .verify::<BenchClaims>(black_box(token.as_str()))
                    .unwrap()
            })
        });
        group.bench_function("verifier_cached", |b| {
            b.iter(|| {
                cached
                    .verify::<BenchClaims>(black_box(token.as_str()))
                    .unwrap()
            })
        });
        group.bench_function("layer", |b| {
            b.iter_batched(
                || (service.clone(), request(token)),
                |(service, request)| block_on(service.oneshot(request)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("layer_cached", |b| {
            b.iter_batched(
                || (service_cached.clone(), request(token)),
                |(service, request)| block_on(service.oneshot(request)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }

    routing(c, &cases);
    jwt_authorizer(c, &cases);
    session_check(c);

    let token = &cases[0].token;
    let service = service_fn(trivial);
    c.benchmark_group("baseline")
        .bench_function("inner_only", |b| {
            b.iter_batched(
                || (service, request(token)),
                |(service, request)| block_on(service.oneshot(request)).unwrap(),
                BatchSize::SmallInput,
            )
        });
}

/// A single-issuer verifier against `Verifier::by_issuer` of three issuers
/// (the token's in the middle), for the HS256 and ES256 tokens: `verify`, and
/// a whole request through the layer.
fn routing(c: &mut Criterion, cases: &[Case]) {
    let other = |issuer: &str| {
        Verifier::builder()
            .key(VerificationKey::hmac(format!("{issuer} has a secret of its own")).unwrap())
            .issuer(issuer)
            .audience(AUDIENCE)
            .build()
            .unwrap()
    };
    for case in cases.iter().filter(|c| matches!(c.name, "HS256" | "ES256")) {
        let token = case.token.as_str();
        let single = case.verifier.clone();
        let by_issuer = Verifier::by_issuer([
            other("https://auth-a.example.com"),
            single.clone(),
            other("https://auth-z.example.com"),
        ])
        .unwrap();
        let mut group = c.benchmark_group(format!("routing_{}", case.name));
        for (name, verifier) in [("single", single), ("by_issuer", by_issuer)] {
            let service =
                JwtAuthLayer::<BenchClaims>::new(verifier.clone()).layer(service_fn(trivial));
            verifier.verify::<BenchClaims>(token).expect("verifier");
            let response = block_on(service.clone().oneshot(request(token))).unwrap();
            assert_eq!(response.status(), StatusCode::OK, "layer");

            group.bench_function(format!("{name}/verify"), |b| {
                b.iter(|| verifier.verify::<BenchClaims>(black_box(token)).unwrap())
            });
            group.bench_function(format!("{name}/layer"), |b| {
                b.iter_batched(
                    || (service.clone(), request(token)),
                    |(service, request)| block_on(service.oneshot(request)).unwrap(),
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }
}

/// The body type of `jwt-authorizer`'s responses (axum 0.7's).
type TheirBody = axum_core_04::body::Body;

async fn theirs_trivial(_request: Request<String>) -> Result<Response<TheirBody>, Infallible> {
    Ok(Response::new(TheirBody::empty()))
}

/// `jwt-authorizer`'s layer for `case` (HMAC secret or EC key), with the
/// same validation as ours, around [`theirs_trivial`].
fn theirs(
    case: &Case,
) -> impl tower::Service<Request<String>, Response = Response<TheirBody>, Error = Infallible> + Clone
{
    let builder = match &case.pem {
        None => JwtAuthorizer::<BenchClaims>::from_secret(std::str::from_utf8(SECRET).unwrap()),
        Some(pem) => JwtAuthorizer::from_ec_pem_text(std::str::from_utf8(pem).unwrap()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let authorizer = runtime
        .block_on(
            builder
                .validation(
                    jwt_authorizer::Validation::new()
                        .iss(&[ISSUER])
                        .aud(&[AUDIENCE])
                        .leeway(30),
                )
                .build(),
        )
        .unwrap();
    vec![authorizer]
        .into_layer()
        .layer(service_fn(theirs_trivial))
}

/// `jwt-authorizer`'s layer against ours, the same token and validation
/// (`iss`, `aud`, `exp`, 30 s leeway), for HS256 and ES256. Each layer
/// wraps a trivial service of its own framework's body type; its
/// `inner_*` function is the same request without the layer, to subtract.
fn jwt_authorizer(c: &mut Criterion, cases: &[Case]) {
    for case in cases.iter().filter(|c| matches!(c.name, "HS256" | "ES256")) {
        let token = case.token.as_str();
        let theirs = theirs(case);
        let ours =
            JwtAuthLayer::<BenchClaims>::new(case.verifier.clone()).layer(service_fn(trivial));
        let ours_cached =
            JwtAuthLayer::<BenchClaims>::new(case.cached.clone()).layer(service_fn(trivial));
        let response = block_on(theirs.clone().oneshot(request(token))).unwrap();
        assert_eq!(response.status(), StatusCode::OK, "jwt-authorizer");
        for service in [&ours, &ours_cached] {
            let response = block_on(service.clone().oneshot(request(token))).unwrap();
            assert_eq!(response.status(), StatusCode::OK, "ours");
        }

        let mut group = c.benchmark_group(format!("jwt_authorizer_{}", case.name));
        group.bench_function("theirs", |b| {
            b.iter_batched(
                || (theirs.clone(), request(token)),
                |(service, request)| block_on(service.oneshot(request)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("inner_theirs", |b| {
            b.iter_batched(
                || (service_fn(theirs_trivial), request(token)),
                |(service, request)| block_on(service.oneshot(request)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("ours", |b| {
            b.iter_batched(
                || (ours.clone(), request(token)),
                |(service, request)| block_on(service.oneshot(request)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("ours_cached", |b| {
            b.iter_batched(
                || (ours_cached.clone(), request(token)),
                |(service, request)| block_on(service.oneshot(request)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("inner_ours", |b| {
            b.iter_batched(
                || (service_fn(trivial), request(token)),
                |(service, request)| block_on(service.oneshot(request)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

/// What `RefreshTokens::session_check` adds to an HS256 request: one
/// `MemoryStore` lookup of the token's `sid` (a store on the network adds its
/// round trip on top). The check is async, but a `MemoryStore` answers on the
/// first poll, so [`block_on`] still suffices.
fn session_check(c: &mut Criterion) {
    let store = Arc::new(MemoryStore::new());
    let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let tokens = RefreshTokens::new(store, issuer);
    // Other sessions in the store, so the lookup is not in a one-entry map.
    for i in 0..1000 {
        block_on(tokens.login(Subject::new(format!("user-{i}")), None)).unwrap();
    }
    let pair = block_on(tokens.login(Subject::new("user-1").role("USER"), None)).unwrap();
    let token = pair.access_token.as_str();
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let plain = JwtAuthLayer::<BenchClaims>::new(verifier.clone()).layer(service_fn(trivial));
    let checked = JwtAuthLayer::<BenchClaims>::builder(verifier)
        .check(tokens.session_check())
        .build()
        .unwrap()
        .layer(service_fn(trivial));
    for service in [plain.clone(), checked.clone()] {
        let response = block_on(service.oneshot(request(token))).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let mut group = c.benchmark_group("session_check");
    group.bench_function("layer", |b| {
        b.iter_batched(
            || (plain.clone(), request(token)),
            |(service, request)| block_on(service.oneshot(request)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("layer_with_session_check", |b| {
        b.iter_batched(
            || (checked.clone(), request(token)),
            |(service, request)| block_on(service.oneshot(request)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// One subject of [`ratios`]: runs `n` iterations, the setup untimed, and
/// returns the time they took.
type Timed<'a> = (&'static str, Box<dyn FnMut(usize) -> Duration + 'a>);

fn timed<T>(n: usize, mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    start.elapsed()
}

/// A whole request through `service`, `n` times: the services and requests
/// are made before the clock starts, as in `iter_batched`.
fn requests<S, B>(service: &S, token: &str, n: usize) -> Duration
where
    S: tower::Service<Request<String>, Response = Response<B>, Error = Infallible> + Clone,
{
    requests_of(service, request, token, n)
}

/// [`requests`], each request made by `make`.
fn requests_of<S, B>(
    service: &S,
    make: fn(&str) -> Request<String>,
    token: &str,
    n: usize,
) -> Duration
where
    S: tower::Service<Request<String>, Response = Response<B>, Error = Infallible> + Clone,
{
    let batch: Vec<_> = (0..n).map(|_| (service.clone(), make(token))).collect();
    let start = Instant::now();
    for (service, request) in batch {
        black_box(block_on(service.oneshot(request)).unwrap());
    }
    start.elapsed()
}

/// Ratios that the machine's load cannot tilt: the subjects run in turn,
/// a few milliseconds each, round after round, and each ratio is the median
/// of the ratios within a round. Layers are net of their inner service
/// alone (`inner_ours`, `inner_theirs`), measured in the same round.
///
/// ```text
/// cargo bench --bench verify -- ratios
/// ```
fn ratios(cases: &[Case]) {
    let rounds: usize = std::env::var("RATIO_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    let sid_token = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .access_token("user-1")
        .session_id("session-1")
        .role("USER")
        .sign()
        .unwrap()
        .into_string();
    for case in cases.iter().filter(|c| matches!(c.name, "HS256" | "ES256")) {
        let token = case.token.as_str();
        let ours =
            JwtAuthLayer::<BenchClaims>::new(case.verifier.clone()).layer(service_fn(trivial));
        let ours_cached =
            JwtAuthLayer::<BenchClaims>::new(case.cached.clone()).layer(service_fn(trivial));
        let theirs = theirs(case);
        let mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        // A check that reads `sid` and `sub` and answers at once (what a
        // session check costs besides its store lookup), against the same
        // request without a check, and against the same check reading them
        // from `Claims::registered` (a parse of the payload).
        let sid = sid_token.as_str();
        let sid_plain =
            JwtAuthLayer::<BenchClaims>::new(case.verifier.clone()).layer(service_fn(trivial));
        let sid_check = JwtAuthLayer::<BenchClaims>::builder(case.verifier.clone())
            .check(|claims: &Claims<BenchClaims>| {
                let ok =
                    claims.session_id() == Some("session-1") && claims.subject() == Some("user-1");
                std::future::ready(ok.then_some(()).ok_or_else(|| AuthError::rejected("sid")))
            })
            .build()
            .unwrap()
            .layer(service_fn(trivial));
        let registered_check = JwtAuthLayer::<BenchClaims>::builder(case.verifier.clone())
            .check(|claims: &Claims<BenchClaims>| {
                let registered = claims.registered();
                let ok = registered.sid.as_deref() == Some("session-1")
                    && registered.sub.as_deref() == Some("user-1");
                std::future::ready(ok.then_some(()).ok_or_else(|| AuthError::rejected("sid")))
            })
            .build()
            .unwrap()
            .layer(service_fn(trivial));
        let empty_check = JwtAuthLayer::<BenchClaims>::builder(case.verifier.clone())
            .check(|_: &Claims<BenchClaims>| std::future::ready(Ok(())))
            .build()
            .unwrap()
            .layer(service_fn(trivial));
        if case.name == "HS256" {
            for service in [&sid_plain, &sid_check, &registered_check, &empty_check] {
                let response = block_on(service.clone().oneshot(request(sid))).unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
        }
        case.cached.verify::<BenchClaims>(token).unwrap();
        block_on(ours_cached.clone().oneshot(request(token))).unwrap();
        let mut subjects: Vec<Timed<'_>> = vec![
            (
                "raw_decode",
                Box::new(|n| {
                    timed(n, || {
                        decode::<BenchClaims>(token, &case.raw_key, &case.validation).unwrap()
                    })
                }),
            ),
            (
                "verifier",
                Box::new(|n| timed(n, || case.verifier.verify::<BenchClaims>(token).unwrap())),
            ),
            (
                "verifier_cached",
                Box::new(|n| timed(n, || case.cached.verify::<BenchClaims>(token).unwrap())),
            ),
            (
                "inner_ours",
                Box::new(|n| requests(&service_fn(trivial), token, n)),
            ),
            ("layer", Box::new(|n| requests(&ours, token, n))),
            (
                "layer_cached",
                Box::new(|n| requests(&ours_cached, token, n)),
            ),
            (
                "inner_theirs",
                Box::new(|n| requests(&service_fn(theirs_trivial), token, n)),
            ),
            ("theirs", Box::new(|n| requests(&theirs, token, n))),
        ];
        if case.name == "HS256" {
            subjects.push((
                "floor",
                Box::new(|n| timed(n, || floor::<BenchClaims>(token, &mac))),
            ));
            subjects.push((
                "inner_bare",
                Box::new(|n| requests_of(&service_fn(trivial), bare_request, token, n)),
            ));
            subjects.push((
                "layer_bare",
                Box::new(|n| requests_of(&ours, bare_request, token, n)),
            ));
            subjects.push(("layer_sid", Box::new(|n| requests(&sid_plain, sid, n))));
            subjects.push((
                "layer_sid_check",
                Box::new(|n| requests(&sid_check, sid, n)),
            ));
            subjects.push((
                "layer_empty_check",
                Box::new(|n| requests(&empty_check, sid, n)),
            ));
            subjects.push((
                "layer_registered_check",
                Box::new(|n| requests(&registered_check, sid, n)),
            ));
        }
        // Batches of about 2 ms each.
        let sizes: Vec<usize> = subjects
            .iter_mut()
            .map(|(_, run)| {
                let once = run(16).as_secs_f64() / 16.0;
                ((0.002 / once.max(1e-9)) as usize).clamp(1, 100_000)
            })
            .collect();
        let mut ns: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); subjects.len()];
        for _ in 0..rounds {
            for (i, (_, run)) in subjects.iter_mut().enumerate() {
                ns[i].push(run(sizes[i]).as_secs_f64() * 1e9 / sizes[i] as f64);
            }
        }
        let index = |name: &str| subjects.iter().position(|(n, _)| *n == name);
        let per_round = |f: &dyn Fn(usize) -> f64| {
            let mut values: Vec<f64> = (0..rounds).map(f).collect();
            values.sort_by(f64::total_cmp);
            values[rounds / 2]
        };
        println!(
            "\n{} ({rounds} interleaved rounds of about 2 ms per subject)",
            case.name
        );
        println!("| subject | median ns | / raw_decode |");
        println!("|---|---|---|");
        let raw = index("raw_decode").unwrap();
        let (inner_ours, inner_theirs) =
            (index("inner_ours").unwrap(), index("inner_theirs").unwrap());
        for (i, (name, _)) in subjects.iter().enumerate() {
            let net = match *name {
                "layer_bare" => Some(index("inner_bare").unwrap()),
                "layer"
                | "layer_cached"
                | "layer_sid"
                | "layer_sid_check"
                | "layer_empty_check"
                | "layer_registered_check" => Some(inner_ours),
                "theirs" => Some(inner_theirs),
                _ => None,
            };
            let value = |r: usize| ns[i][r] - net.map_or(0.0, |j| ns[j][r]);
            let label = if net.is_some() {
                format!("{name} (net)")
            } else {
                (*name).to_owned()
            };
            println!(
                "| {label} | {:.0} | {:.2}x |",
                per_round(&|r| value(r)),
                per_round(&|r| value(r) / ns[raw][r])
            );
        }
        let layer = index("layer").unwrap();
        let cached = index("layer_cached").unwrap();
        let theirs = index("theirs").unwrap();
        let net = |i: usize, inner: usize, r: usize| ns[i][r] - ns[inner][r];
        if let Some(floor) = index("floor") {
            println!(
                "verifier / floor: {:.2}x; layer (net) / floor: {:.2}x; the same with \
                 requests that have no extension map yet: {:.2}x",
                per_round(&|r| ns[index("verifier").unwrap()][r] / ns[floor][r]),
                per_round(&|r| net(layer, inner_ours, r) / ns[floor][r]),
                per_round(&|r| net(
                    index("layer_bare").unwrap(),
                    index("inner_bare").unwrap(),
                    r
                ) / ns[floor][r])
            );
        }
        if let (Some(plain), Some(check), Some(empty), Some(registered)) = (
            index("layer_sid"),
            index("layer_sid_check"),
            index("layer_empty_check"),
            index("layer_registered_check"),
        ) {
            println!(
                "a check reading sid and sub (net) / no check (net), cache off: {:.2}x by \
                 Claims::session_id and Claims::subject, {:.2}x by Claims::registered; \
                 a check reading nothing: {:.2}x",
                per_round(&|r| net(check, inner_ours, r) / net(plain, inner_ours, r)),
                per_round(&|r| net(registered, inner_ours, r) / net(plain, inner_ours, r)),
                per_round(&|r| net(empty, inner_ours, r) / net(plain, inner_ours, r))
            );
            println!(
                "the check reading sid and sub / the check reading nothing: {:.2}x",
                per_round(&|r| net(check, inner_ours, r) / net(empty, inner_ours, r))
            );
        }
        println!(
            "jwt-authorizer (net) / our layer (net): {:.2}x without the cache, {:.2}x with it",
            per_round(&|r| net(theirs, inner_theirs, r) / net(layer, inner_ours, r)),
            per_round(&|r| net(theirs, inner_theirs, r) / net(cached, inner_ours, r))
        );
    }
}

criterion_group!(benches, bench, bench_dpop);

fn main() {
    if std::env::args().skip(1).any(|arg| arg == "ratios") {
        ratios(&cases());
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
/// The client's P-256 key: its public JWK, its thumbprint, its signing key.
struct Client {
    jwk: serde_json::Value,
    jkt: String,
    key: jsonwebtoken::EncodingKey,
}

fn client() -> Client {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use sha2::{Digest, Sha256};
    let dir = format!("{}/tests/keys", env!("CARGO_MANIFEST_DIR"));
    let jwk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{dir}/ec_public.jwk.json")).unwrap())
            .unwrap();
    // RFC 7638: the required members in order, no whitespace.
    let canonical = format!(
        r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["crv"].as_str().unwrap(),
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    let jkt = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let key = jsonwebtoken::EncodingKey::from_ec_pem(
        &std::fs::read(format!("{dir}/ec_private.pem")).unwrap(),
    )
    .unwrap();
    Client { jwk, jkt, key }
}

/// A fresh proof for `GET /users/me` with `token`.
fn proof(client: &Client, token: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use sha2::{Digest, Sha256};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": client.jwk});
    let claims = serde_json::json!({
        "jti": URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
        "htm": "GET",
        "htu": "https://api.example.com/users/me",
        "iat": now,
        "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())),
    });
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &client.key,
        jsonwebtoken::Algorithm::ES256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

fn bench_dpop(c: &mut Criterion) {
    let key = |name: &str| {
        std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let verifier = Verifier::builder()
        .key(VerificationKey::ec_pem(key("ec_public.pem")).unwrap())
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let issuer =
        TokenIssuer::new(SigningKey::ec_pem(Algorithm::ES256, key("ec_private.pem")).unwrap())
            .issuer(ISSUER)
            .audience(AUDIENCE);
    let client = client();
    let bearer_token = issuer
        .access_token("user-1")
        .role("USER")
        .sign()
        .unwrap()
        .into_string();
    let bound_token = issuer
        .access_token("user-1")
        .role("USER")
        .jkt(&client.jkt)
        .sign()
        .unwrap()
        .into_string();
    let dpop = Dpop::builder()
        .base_url("https://api.example.com")
        // Every proof of the run stays remembered: room for all of them.
        .replay_cache(MemoryReplayCache::new(20_000_000))
        .build()
        .unwrap();
    let bearer = JwtAuthLayer::<BenchClaims>::new(verifier.clone()).layer(service_fn(trivial));
    let bound = JwtAuthLayer::<BenchClaims>::builder(verifier)
        .presentation(dpop.or_bearer())
        .build()
        .unwrap()
        .layer(service_fn(trivial));
    let dpop_request = || {
        Request::builder()
            .uri("/users/me")
            .header(header::AUTHORIZATION, format!("DPoP {bound_token}"))
            .header("DPoP", proof(&client, &bound_token))
            .body(String::new())
            .unwrap()
    };
    let response = block_on(bearer.clone().oneshot(request(&bearer_token))).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = block_on(bound.clone().oneshot(dpop_request())).unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let mut group = c.benchmark_group("dpop_ES256");
    group.bench_function("bearer", |b| {
        b.iter_batched(
            || (bearer.clone(), request(&bearer_token)),
            |(service, request)| block_on(service.oneshot(request)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("dpop", |b| {
        b.iter_batched(
            || (bound.clone(), dpop_request()),
            |(service, request)| {
                let response = block_on(service.oneshot(request)).unwrap();
                debug_assert_eq!(response.status(), StatusCode::OK);
                response
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}
