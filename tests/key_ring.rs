//! The issuer's key ring (feature `key-ring`): keys of every algorithm sign
//! and verify, rotation keeps old tokens valid, the JWK Set has public
//! members only, kids are RFC 7638 thumbprints, and the JWKS service answers
//! as documented.

use std::{sync::Arc, time::Duration};

use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use tower_jwt_auth::{
    Algorithm, AuthErrorKind, JwkSet, JwksService, TokenIssuer, Verifier,
    keys::{
        self,
        ring::{
            KeyRing, KeyRingErrorKind, KeyStatus, conformance,
            store::{KeyRingStore, MemoryKeyRingStore},
        },
    },
};

const ISSUER: &str = "https://auth.example.test";

/// Members a published JWK may carry; anything else (`d`, `p`, `q`, `dp`,
/// `dq`, `qi`, `k`, `oth`...) is a leak.
const PUBLIC_MEMBERS: &[&str] = &["kty", "crv", "x", "y", "n", "e", "kid", "alg", "use"];

fn assert_public_only(jwks: &str) {
    let set: Value = serde_json::from_str(jwks).unwrap();
    let keys = set["keys"].as_array().expect("a `keys` array");
    assert!(!keys.is_empty());
    for key in keys {
        for (member, _) in key.as_object().unwrap() {
            assert!(
                PUBLIC_MEMBERS.contains(&member.as_str()),
                "the JWK Set publishes {member:?}: {jwks}"
            );
        }
        assert_eq!(key["use"], "sig");
        // The kid is the key's own thumbprint.
        assert_eq!(
            keys::thumbprint(key.to_string()).unwrap(),
            key["kid"].as_str().unwrap()
        );
    }
}

fn verifier(ring: &KeyRing) -> Verifier {
    Verifier::builder()
        .key_ring(ring.clone())
        .issuer(ISSUER)
        .build()
        .unwrap()
}

#[test]
fn thumbprints_match_rfc7638() {
    // RFC 7638 section 3.1.
    let jwk = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
    assert_eq!(
        keys::thumbprint(jwk).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    // RFC 8037 appendix A.3: the Ed25519 example.
    let okp = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    assert_eq!(
        keys::thumbprint(okp).unwrap(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    assert!(keys::thumbprint(r#"{"kty":"EC","crv":"P-256","x":"AA"}"#).is_err());
    assert!(keys::thumbprint(r#"{"kty":"XYZ"}"#).is_err());
}

async fn sign_and_verify(algorithm: Algorithm) {
    let ring = KeyRing::builder(algorithm).build().await.unwrap();
    assert_eq!(ring.algorithm(), algorithm);
    let statuses: Vec<KeyStatus> = ring.keys().iter().map(|k| k.status()).collect();
    assert_eq!(
        statuses,
        [KeyStatus::Active, KeyStatus::Next],
        "{algorithm}"
    );
    assert_public_only(&ring.jwks());
    // Another verifier parses the same set, as RemoteJwks would.
    assert_eq!(JwkSet::from_json(ring.jwks()).unwrap().keys().len(), 2);

    let issuer = TokenIssuer::with_key_ring(ring.clone()).issuer(ISSUER);
    let token = issuer.access_token("user-1").sign().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.as_str().split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], algorithm.as_str());
    assert_eq!(header["kid"], ring.active_kid());
    let claims = verifier(&ring)
        .verify::<Value>(token.as_str())
        .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
    assert_eq!(claims.subject(), Some("user-1"));
}

#[tokio::test]
async fn every_algorithm_signs_and_verifies() {
    for algorithm in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
        sign_and_verify(algorithm).await;
    }
}

#[tokio::test]
async fn rsa_rings_sign_and_verify() {
    sign_and_verify(Algorithm::RS256).await;
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid() {
    let store: Arc<dyn KeyRingStore> = Arc::new(MemoryKeyRingStore::new());
    let ring = KeyRing::builder(Algorithm::EdDSA)
        .store(Arc::clone(&store))
        .build()
        .await
        .unwrap();
    let issuer = TokenIssuer::with_key_ring(ring.clone()).issuer(ISSUER);
    let verifier = verifier(&ring);
    let before = ring.keys();
    let old = issuer.access_token("user-1").sign().unwrap();

    assert!(ring.rotate().await.unwrap());
    let after = ring.keys();
    assert_eq!(after.len(), 3);
    assert_eq!(after[0].kid(), before[0].kid());
    assert_eq!(after[0].status(), KeyStatus::Retired);
    // The key published as next is the one that signs now.
    assert_eq!(after[1].kid(), before[1].kid());
    assert_eq!(after[1].status(), KeyStatus::Active);
    assert_eq!(after[2].status(), KeyStatus::Next);
    assert_eq!(ring.active_kid(), before[1].kid());

    let new = issuer.access_token("user-1").sign().unwrap();
    assert_ne!(old.as_str(), new.as_str());
    verifier.verify::<Value>(old.as_str()).unwrap();
    verifier.verify::<Value>(new.as_str()).unwrap();

    // A second instance on the same store agrees, and a stale rotation of
    // the first instance's old view does nothing.
    let other = KeyRing::builder(Algorithm::EdDSA)
        .store(Arc::clone(&store))
        .build()
        .await
        .unwrap();
    assert_eq!(other.keys(), after);
    assert!(other.rotate().await.unwrap(), "rotating again is allowed");
    ring.sync().await.unwrap();
    assert_eq!(ring.keys(), other.keys());
}

#[tokio::test]
async fn token_lifetimes_are_bounded_by_the_ring() {
    let ring = KeyRing::builder(Algorithm::ES256)
        .max_token_ttl(Duration::from_secs(300))
        .build()
        .await
        .unwrap();
    let issuer = TokenIssuer::with_key_ring(ring);
    assert_eq!(issuer.default_ttl(), Duration::from_secs(300));
    let error = issuer
        .access_token("u")
        .expires_in(Duration::from_secs(301))
        .sign()
        .unwrap_err();
    assert!(error.to_string().contains("maximum"), "{error}");
}

#[tokio::test]
async fn invalid_settings_are_config_errors() {
    for builder in [
        KeyRing::builder(Algorithm::HS256),
        KeyRing::builder(Algorithm::ES256).rotation_period(Duration::from_secs(2)),
        KeyRing::builder(Algorithm::ES256).max_token_ttl(Duration::ZERO),
        KeyRing::builder(Algorithm::ES256).name(""),
        KeyRing::builder(Algorithm::ES256)
            .rotation_period(Duration::from_secs(3600))
            .sync_interval(Duration::from_secs(901)),
    ] {
        let error = builder.build().await.unwrap_err();
        assert_eq!(error.kind(), KeyRingErrorKind::Config, "{error}");
        assert!(std::error::Error::source(&error).is_some());
    }
}

#[tokio::test]
async fn a_ring_of_another_algorithm_is_refused() {
    let store: Arc<dyn KeyRingStore> = Arc::new(MemoryKeyRingStore::new());
    KeyRing::builder(Algorithm::ES256)
        .store(Arc::clone(&store))
        .build()
        .await
        .unwrap();
    let error = KeyRing::builder(Algorithm::EdDSA)
        .store(store)
        .build()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), KeyRingErrorKind::Key);
}

#[tokio::test]
async fn tokens_of_unknown_keys_are_refused() {
    let ring = KeyRing::builder(Algorithm::ES256).build().await.unwrap();
    let stranger = KeyRing::builder(Algorithm::ES256).build().await.unwrap();
    let token = TokenIssuer::with_key_ring(stranger)
        .issuer(ISSUER)
        .access_token("u")
        .sign()
        .unwrap();
    let error = verifier(&ring).verify::<Value>(token.as_str()).unwrap_err();
    assert_eq!(error.kind(), AuthErrorKind::UnknownKey);
}

async fn get(service: &JwksService, method: Method, path: &str) -> http::Response<Vec<u8>> {
    let response = service
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(path)
                .body(())
                .unwrap(),
        )
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    http::Response::from_parts(parts, body)
}

#[tokio::test]
async fn the_service_serves_both_documents() {
    let ring = KeyRing::builder(Algorithm::ES256).build().await.unwrap();
    let service = JwksService::builder(ring.clone())
        .issuer("https://auth.example.test/tenant-a/")
        .build()
        .unwrap();
    assert_eq!(service.jwks_path(), "/tenant-a/.well-known/jwks.json");
    assert_eq!(
        service.discovery_path(),
        Some("/tenant-a/.well-known/openid-configuration")
    );

    let jwks = get(&service, Method::GET, "/tenant-a/.well-known/jwks.json").await;
    assert_eq!(jwks.status(), StatusCode::OK);
    assert_eq!(
        jwks.headers()[header::CONTENT_TYPE],
        "application/jwk-set+json"
    );
    assert_eq!(jwks.headers()[header::CACHE_CONTROL], "public, max-age=300");
    let body = String::from_utf8(jwks.body().clone()).unwrap();
    assert_eq!(body, ring.jwks());
    assert_public_only(&body);

    let discovery = get(
        &service,
        Method::GET,
        "/tenant-a/.well-known/openid-configuration",
    )
    .await;
    assert_eq!(discovery.status(), StatusCode::OK);
    assert_eq!(
        discovery.headers()[header::CONTENT_TYPE],
        "application/json"
    );
    let document: Value = serde_json::from_slice(discovery.body()).unwrap();
    assert_eq!(
        document,
        serde_json::json!({
            "issuer": "https://auth.example.test/tenant-a/",
            "jwks_uri": "https://auth.example.test/tenant-a/.well-known/jwks.json",
        })
    );

    let head = get(&service, Method::HEAD, "/tenant-a/.well-known/jwks.json").await;
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.body().is_empty());
    assert_eq!(
        head.headers()[header::CONTENT_LENGTH],
        ring.jwks().len().to_string()
    );

    let post = get(&service, Method::POST, "/tenant-a/.well-known/jwks.json").await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");
    assert!(post.body().is_empty());

    for path in [
        "/.well-known/jwks.json",
        "/tenant-a/.well-known/jwks.json/x",
        "/",
    ] {
        let missing = get(&service, Method::GET, path).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn the_service_checks_its_settings() {
    let ring = KeyRing::builder(Algorithm::ES256)
        .rotation_period(Duration::from_secs(600))
        .build()
        .await
        .unwrap();
    // The default max-age follows a short rotation period.
    let service = JwksService::builder(ring.clone()).build().unwrap();
    let jwks = get(&service, Method::GET, "/.well-known/jwks.json").await;
    assert_eq!(jwks.headers()[header::CACHE_CONTROL], "public, max-age=150");
    assert_eq!(service.discovery_path(), None);
    assert!(
        JwksService::builder(ring.clone())
            .max_age(Duration::from_secs(151))
            .build()
            .is_err()
    );
    for issuer in ["tower-jwt-auth-example", "https://a.example?x", "ftp://a"] {
        assert!(
            JwksService::builder(ring.clone())
                .issuer(issuer)
                .build()
                .is_err(),
            "{issuer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_memory_store_conforms() {
    conformance::run(Arc::new(MemoryKeyRingStore::new())).await;
}
