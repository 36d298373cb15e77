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
//! - `verifier`: `Verifier::verify::<BenchClaims>`;
//! - `layer`: a whole request through `JwtAuthLayer` around a trivial
//!   `service_fn`: token extraction, verification, the claims inserted into
//!   the request extensions, the inner call, and the request dropped with them.
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
};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response, StatusCode, header};
use jsonwebtoken::{DecodingKey, Validation, decode};
use serde::Deserialize;
use tower::{Layer, ServiceExt, service_fn};
use tower_jwt_auth::{
    Algorithm, JwtAuthLayer, SigningKey, TokenIssuer, VerificationKey, Verifier,
    dpop::{Dpop, MemoryReplayCache},
    refresh::{MemoryStore, RefreshTokens, Subject},
};

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
    verifier: Verifier,
}

fn case(
    name: &'static str,
    signing: SigningKey,
    verification: VerificationKey,
    raw_key: DecodingKey,
    alg: jsonwebtoken::Algorithm,
) -> Case {
    let verifier = Verifier::builder()
        .key(verification)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
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
        ),
        case(
            "RS256",
            SigningKey::rsa_pem(Algorithm::RS256, key("rsa_private.pem")).unwrap(),
            VerificationKey::rsa_pem(key("rsa_public.pem")).unwrap(),
            DecodingKey::from_rsa_pem(&key("rsa_public.pem")).unwrap(),
            jsonwebtoken::Algorithm::RS256,
        ),
        case(
            "ES256",
            SigningKey::ec_pem(Algorithm::ES256, key("ec_private.pem")).unwrap(),
            VerificationKey::ec_pem(key("ec_public.pem")).unwrap(),
            DecodingKey::from_ec_pem(&key("ec_public.pem")).unwrap(),
            jsonwebtoken::Algorithm::ES256,
        ),
        case(
            "EdDSA",
            SigningKey::ed_pem(key("ed_private.pem")).unwrap(),
            VerificationKey::ed_pem(key("ed_public.pem")).unwrap(),
            DecodingKey::from_ed_pem(&key("ed_public.pem")).unwrap(),
            jsonwebtoken::Algorithm::EdDSA,
        ),
    ]
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

fn bench(c: &mut Criterion) {
    let cases = cases();
    for case in &cases {
        let Case {
            name,
            token,
            raw_key,
            validation,
            verifier,
        } = case;
        let service = JwtAuthLayer::<BenchClaims>::new(verifier.clone()).layer(service_fn(trivial));

        // Both paths accept the token before anything is timed.
        decode::<BenchClaims>(token, raw_key, validation).expect("raw decode");
        verifier.verify::<BenchClaims>(token).expect("verifier");
        let response = block_on(service.clone().oneshot(request(token))).unwrap();
        assert_eq!(response.status(), StatusCode::OK, "layer");

        let mut group = c.benchmark_group(*name);
        group.bench_function("raw_decode", |b| {
            b.iter(|| {
                decode::<BenchClaims>(black_box(token.as_str()), raw_key, validation).unwrap()
            })
        });
        group.bench_function("verifier", |b| {
            b.iter(|| {
                verifier
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
        group.finish();
    }

    routing(c, &cases);
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

criterion_group!(benches, bench, bench_dpop);
criterion_main!(benches);
