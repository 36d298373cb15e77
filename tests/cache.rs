//! The verified-token cache: expiry to the second, `nbf`, several issuers,
//! the check hooks that still run on every request, and bounded memory.
//! (Key removal from a remote set: tests/jwks.rs.)

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use http::{Request, Response, StatusCode, header::AUTHORIZATION};
use serde::Deserialize;
use tower::{Layer, ServiceExt, service_fn};
use tower_jwt_auth::{
    Algorithm, AuthError, AuthErrorKind, Claims, JwtAuthLayer, SigningKey, TokenIssuer,
    VerificationKey, Verifier,
    refresh::{MemoryStore, RefreshTokens, Subject},
};

const SECRET: &[u8] = b"cache-test-secret-cache-test-secret-0123";
const ISS: &str = "https://issuer.test";

#[derive(Debug, Clone, Deserialize)]
struct MyClaims {
    role: String,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn issuer(iss: &str, secret: &[u8]) -> TokenIssuer {
    TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, secret).unwrap()).issuer(iss)
}

fn verifier(leeway: Duration) -> Verifier {
    Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .issuer(ISS)
        .leeway(leeway)
        .cache(100)
        .build()
        .unwrap()
}

/// Waits (polling the clock, not sleeping a fixed time) until the Unix
/// second is at least `second`.
async fn wait_until(second: i64) {
    while now() < second {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_cached_token_expires_to_the_second() {
    let verifier = verifier(Duration::ZERO);
    let token = issuer(ISS, SECRET)
        .access_token("user-1")
        .role("USER")
        .expires_in(Duration::from_secs(2))
        .sign()
        .unwrap();
    let exp = token.expires_at();
    let token = token.as_str();

    // Accepted, and then from the cache, while the second is before `exp`.
    let mut served = 0;
    loop {
        let before = now();
        let result = verifier.verify::<MyClaims>(token);
        let after = now();
        if after >= exp {
            break;
        }
        assert!(before < exp);
        assert_eq!(result.unwrap().role, "USER");
        assert_eq!(verifier.cached_tokens(), 1);
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served > 0, "the token was never verified before its exp");

    // The first request in the second of `exp` is refused: the cache does
    // not serve past it, and drops the entry.
    wait_until(exp).await;
    let error = verifier.verify::<MyClaims>(token).unwrap_err();
    assert_eq!(error.kind(), AuthErrorKind::Expired);
    assert_eq!(verifier.cached_tokens(), 0);
}

#[tokio::test]
async fn the_leeway_is_the_same_with_the_cache() {
    let verifier = verifier(Duration::from_secs(1));
    let token = issuer(ISS, SECRET)
        .access_token("user-1")
        .role("USER")
        .expires_in(Duration::from_secs(1))
        .sign()
        .unwrap();
    let exp = token.expires_at();
    verifier.verify::<MyClaims>(token.as_str()).unwrap();
    assert_eq!(verifier.cached_tokens(), 1);
    // Past `exp`, within the leeway: still served.
    wait_until(exp).await;
    if now() < exp + 1 {
        verifier.verify::<MyClaims>(token.as_str()).unwrap();
    }
    // Past `exp + leeway`: refused.
    wait_until(exp + 1).await;
    let error = verifier.verify::<MyClaims>(token.as_str()).unwrap_err();
    assert_eq!(error.kind(), AuthErrorKind::Expired);
}

#[tokio::test]
async fn a_token_is_never_served_before_its_nbf() {
    let verifier = verifier(Duration::ZERO);
    let nbf = now() + 1;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"iss": ISS, "exp": nbf + 60, "nbf": nbf, "role": "USER"}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap();
    let error = verifier.verify::<MyClaims>(&token).unwrap_err();
    // Refused, and a failure is never cached.
    if now() < nbf {
        assert_eq!(error.kind(), AuthErrorKind::NotYetValid);
    }
    assert_eq!(verifier.cached_tokens(), 0);
    wait_until(nbf).await;
    verifier.verify::<MyClaims>(&token).unwrap();
    assert_eq!(verifier.cached_tokens(), 1);
}

#[test]
fn failures_are_not_cached() {
    let verifier = verifier(Duration::from_secs(30));
    let good = issuer(ISS, SECRET)
        .access_token("user-1")
        .role("USER")
        .sign()
        .unwrap();
    let forged = issuer(ISS, b"another secret of thirty-two bytes or more")
        .access_token("user-1")
        .role("USER")
        .sign()
        .unwrap();
    let other_issuer = issuer("https://other.test", SECRET)
        .access_token("user-1")
        .role("USER")
        .sign()
        .unwrap();
    let without_role = issuer(ISS, SECRET).access_token("user-1").sign().unwrap();
    for _ in 0..3 {
        for (token, kind) in [
            (&forged, AuthErrorKind::InvalidSignature),
            (&other_issuer, AuthErrorKind::InvalidIssuer),
            (&without_role, AuthErrorKind::InvalidClaims),
        ] {
            let error = verifier.verify::<MyClaims>(token.as_str()).unwrap_err();
            assert_eq!(error.kind(), kind);
        }
    }
    assert_eq!(verifier.cached_tokens(), 0);
    // The same payload under a bad signature is no key to the good one.
    verifier.verify::<MyClaims>(good.as_str()).unwrap();
    let (head, _) = good.as_str().rsplit_once('.').unwrap();
    let tampered = format!("{head}.{}", "A".repeat(43));
    let error = verifier.verify::<MyClaims>(&tampered).unwrap_err();
    assert_eq!(error.kind(), AuthErrorKind::InvalidSignature);
    assert_eq!(verifier.cached_tokens(), 1);
}

#[test]
fn several_issuers_and_the_issuer_choice_stay_apart() {
    let tenant = |iss: &str, secret: &[u8]| {
        Verifier::builder()
            .key(VerificationKey::hmac(secret).unwrap())
            .issuer(iss)
            .cache(10)
            .build()
            .unwrap()
    };
    // A and B share a secret, so that only the issuer tells their tokens
    // apart; C has its own.
    let (a, b, c) = ("https://a.test", "https://b.test", "https://c.test");
    let secret_c = b"tenant c's secret of thirty-two bytes!!";
    let verifier =
        Verifier::by_issuer([tenant(a, SECRET), tenant(b, SECRET), tenant(c, secret_c)]).unwrap();
    let token_a = issuer(a, SECRET)
        .access_token("u")
        .role("A")
        .sign()
        .unwrap();
    let token_c = issuer(c, secret_c)
        .access_token("u")
        .role("C")
        .sign()
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            verifier.verify::<MyClaims>(token_a.as_str()).unwrap().role,
            "A"
        );
        assert_eq!(
            verifier.verify::<MyClaims>(token_c.as_str()).unwrap().role,
            "C"
        );
        // Cached by routing on `iss`, A's token is still not B's when the
        // request chooses B, though B's key verifies its signature.
        let error = verifier
            .verify_for_issuer::<MyClaims>(b, token_a.as_str())
            .unwrap_err();
        assert_eq!(error.kind(), AuthErrorKind::InvalidIssuer);
        let claims = verifier
            .verify_for_issuer::<MyClaims>(a, token_a.as_str())
            .unwrap();
        assert_eq!(claims.role, "A");
    }
    // Keyed by the issuer choice: `verify` (twice) and `verify_for_issuer(a)`.
    assert_eq!(verifier.cached_tokens(), 3);
    // C's claims signed with A's key are refused, cache or not.
    let forged = issuer(c, SECRET)
        .access_token("u")
        .role("C")
        .sign()
        .unwrap();
    for _ in 0..2 {
        let error = verifier.verify::<MyClaims>(forged.as_str()).unwrap_err();
        assert_eq!(error.kind(), AuthErrorKind::InvalidSignature);
    }
}

#[test]
fn a_flood_of_unique_tokens_keeps_memory_bounded() {
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .issuer(ISS)
        .cache(200)
        .cache_memory(256 * 1024)
        .build()
        .unwrap();
    let issuer = issuer(ISS, SECRET);
    let padding = "p".repeat(1500);
    for i in 0..3_000 {
        let token = issuer
            .access_token(format!("user-{i}"))
            .role("USER")
            .claim("padding", &padding[..i % 1500])
            .sign()
            .unwrap();
        verifier.verify::<MyClaims>(token.as_str()).unwrap();
        assert!(verifier.cached_tokens() <= 200);
        assert!(verifier.cache_memory() <= 256 * 1024);
    }
    assert!(verifier.cached_tokens() > 0);
}

#[test]
fn a_cache_without_room_is_a_configuration_error() {
    let builder = Verifier::builder().key(VerificationKey::hmac(SECRET).unwrap());
    assert!(builder.clone().cache(0).build().is_err());
    assert!(builder.clone().cache_memory(0).build().is_err());
    let verifier = builder.no_cache().build().unwrap();
    let token = issuer(ISS, SECRET)
        .access_token("u")
        .role("USER")
        .sign()
        .unwrap();
    verifier.verify::<MyClaims>(token.as_str()).unwrap();
    assert_eq!(verifier.cached_tokens(), 0);
}

type Req = Request<String>;

fn request(token: &str) -> Req {
    Request::get("/")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap()
}

async fn ok(_: Req) -> Result<Response<String>, Infallible> {
    Ok(Response::new(String::new()))
}

#[tokio::test]
async fn checks_run_on_every_request() {
    let verifier = verifier(Duration::from_secs(30));
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let service = JwtAuthLayer::<MyClaims>::builder(verifier.clone())
        .check(move |claims: &Claims<MyClaims>| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let role = claims.role.clone();
            async move {
                // The third request is refused, cached token or not.
                if n == 2 || role != "USER" {
                    return Err(AuthError::rejected("refused by the check"));
                }
                Ok(())
            }
        })
        .build()
        .unwrap()
        .layer(service_fn(ok));
    let token = issuer(ISS, SECRET)
        .access_token("u")
        .role("USER")
        .sign()
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = service
            .clone()
            .oneshot(request(token.as_str()))
            .await
            .unwrap();
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::UNAUTHORIZED,
            StatusCode::OK
        ]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(verifier.cached_tokens(), 1);
}

#[tokio::test]
async fn an_ended_session_is_refused_though_its_token_is_cached() {
    let store = Arc::new(MemoryStore::new());
    let tokens = RefreshTokens::new(store, issuer(ISS, SECRET));
    let verifier = verifier(Duration::from_secs(30));
    let service = JwtAuthLayer::<serde_json::Value>::builder(verifier.clone())
        .check(tokens.session_check())
        .build()
        .unwrap()
        .layer(service_fn(ok));
    let pair = tokens
        .login(Subject::new("user-1").role("USER"), None)
        .await
        .unwrap();
    let access = pair.access_token.as_str();
    for _ in 0..2 {
        let response = service.clone().oneshot(request(access)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(verifier.cached_tokens(), 1);
    assert!(
        tokens
            .end_session("user-1", &pair.session.id)
            .await
            .unwrap()
    );
    let response = service.clone().oneshot(request(access)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
