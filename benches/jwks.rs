//! The per-request cost of verifying with keys from a JWK Set, against a raw
//! `jsonwebtoken` verification with a pre-built `DecodingKey`.
//!
//! ```text
//! cargo bench --bench jwks --no-default-features --features rust_crypto,jwks
//! cargo bench --bench jwks --no-default-features --features aws_lc_rs,jwks
//! ```
//!
//! One group per algorithm (RS256, ES256), each with:
//!
//! - `raw_signature`: `jsonwebtoken::crypto::verify` of the signature only;
//! - `raw_decode`: `jsonwebtoken::decode` with the same validation as the verifier;
//! - `static_jwk`: `Verifier::verify` with the key from the JWK, as a static key;
//! - `remote_jwks`: `Verifier::verify` with the keys of a `RemoteJwks` (the
//!   `ArcSwap` load included);
//! - `remote_jwks_refreshing`: the same while another thread refetches and
//!   swaps the key set every millisecond.
//!
//! Measured on a shared 2-core VM (medians, µs; ratio to `raw_decode`):
//!
//! | backend | alg | raw_signature | raw_decode | static_jwk | remote_jwks | remote_jwks_refreshing |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | rust_crypto | RS256 | 105.6 | 101.0 | 90.0 (0.89) | 95.0 (0.94) | 88.3 (0.87) |
//! | rust_crypto | ES256 | 371.7 | 355.3 | 357.5 (1.01) | 365.8 (1.03) | 362.8 (1.02) |
//! | aws_lc_rs | RS256 | 23.7 | 26.3 | 22.8 (0.87) | 23.7 (0.90) | 23.5 (0.89) |
//! | aws_lc_rs | ES256 | 68.8 | 71.4 | 72.3 (1.01) | 72.6 (1.02) | 76.5 (1.07) |

use std::{
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{DecodingKey, Validation, decode};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_jwt_auth::{
    Algorithm, SigningKey, TokenIssuer, VerificationKey, Verifier,
    keys::{BoxFuture, FetchError, JwksClient, RemoteJwks},
};

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "example-api";

#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)]
struct BenchClaims {
    sub: String,
    role: String,
    exp: i64,
}

/// Serves a fixed JWK Set from memory and counts the fetches.
struct Fixed(Vec<u8>, Arc<AtomicUsize>);

impl JwksClient for Fixed {
    fn get<'a>(&'a self, _url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        self.1.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

struct Case {
    name: &'static str,
    alg: Algorithm,
    jwt_alg: jsonwebtoken::Algorithm,
    private: &'static [u8],
    jwk: &'static str,
    raw_key: fn(&[u8]) -> DecodingKey,
    public: &'static [u8],
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cases = [
        Case {
            name: "RS256",
            alg: Algorithm::RS256,
            jwt_alg: jsonwebtoken::Algorithm::RS256,
            private: include_bytes!("../tests/keys/rsa_private.pem"),
            jwk: include_str!("../tests/keys/rsa_public.jwk.json"),
            raw_key: |pem| DecodingKey::from_rsa_pem(pem).unwrap(),
            public: include_bytes!("../tests/keys/rsa_public.pem"),
        },
        Case {
            name: "ES256",
            alg: Algorithm::ES256,
            jwt_alg: jsonwebtoken::Algorithm::ES256,
            private: include_bytes!("../tests/keys/ec_private.pem"),
            jwk: include_str!("../tests/keys/ec_public.jwk.json"),
            raw_key: |pem| DecodingKey::from_ec_pem(pem).unwrap(),
            public: include_bytes!("../tests/keys/ec_public.pem"),
        },
    ];
    for case in cases {
        let mut jwk: Value = serde_json::from_str(case.jwk).unwrap();
        jwk["kid"] = json!("k1");
        let signing = match case.alg {
            Algorithm::RS256 => SigningKey::rsa_pem(case.alg, case.private),
            _ => SigningKey::ec_pem(case.alg, case.private),
        }
        .unwrap()
        .with_kid("k1");
        let token = TokenIssuer::new(signing)
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .access_token("user-1")
            .role("USER")
            .expires_in(Duration::from_secs(3600))
            .sign()
            .unwrap()
            .into_string();

        let static_verifier = Verifier::builder()
            .key(VerificationKey::from_jwk(jwk.to_string()).unwrap())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build()
            .unwrap();
        let fetches = Arc::new(AtomicUsize::new(0));
        let set = json!({ "keys": [jwk] }).to_string().into_bytes();
        let remote = runtime.block_on(async {
            RemoteJwks::builder("https://idp.example.com/jwks")
                .client(Fixed(set, Arc::clone(&fetches)))
                .refresh_interval(Duration::ZERO)
                .build()
                .await
                .unwrap()
        });
        let remote_verifier = Verifier::builder()
            .jwks(remote.clone())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build()
            .unwrap();

        let raw_key = (case.raw_key)(case.public);
        let mut validation = Validation::new(case.jwt_alg);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        let (message, signature) = token.rsplit_once('.').unwrap();

        let mut group = c.benchmark_group(case.name);
        group.bench_function("raw_signature", |b| {
            b.iter(|| {
                assert!(
                    jsonwebtoken::crypto::verify(
                        black_box(signature),
                        black_box(message.as_bytes()),
                        &raw_key,
                        case.jwt_alg
                    )
                    .unwrap()
                )
            })
        });
        group.bench_function("raw_decode", |b| {
            b.iter(|| decode::<BenchClaims>(black_box(&token), &raw_key, &validation).unwrap())
        });
        group.bench_function("static_jwk", |b| {
            b.iter(|| {
                static_verifier
                    .verify::<BenchClaims>(black_box(&token))
                    .unwrap()
            })
        });
        group.bench_function("remote_jwks", |b| {
            b.iter(|| {
                remote_verifier
                    .verify::<BenchClaims>(black_box(&token))
                    .unwrap()
            })
        });
        let stop = Arc::new(AtomicBool::new(false));
        let refresher = {
            let (remote, stop) = (remote.clone(), Arc::clone(&stop));
            runtime.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    remote.refresh().await.unwrap();
                    // A thousand swaps a second: far more than any provider rotates.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let before = fetches.load(Ordering::Relaxed);
        group.bench_function("remote_jwks_refreshing", |b| {
            b.iter(|| {
                remote_verifier
                    .verify::<BenchClaims>(black_box(&token))
                    .unwrap()
            })
        });
        stop.store(true, Ordering::Relaxed);
        runtime.block_on(refresher).unwrap();
        eprintln!(
            "{}: {} key-set swaps during remote_jwks_refreshing",
            case.name,
            fetches.load(Ordering::Relaxed) - before
        );
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
