//! Several issuers in one layer: routing by `iss`, and by the request.

use tower_jwt_auth::{
    Algorithm, AuthErrorKind, JwtAuthLayer, RequestHead, SigningKey, TokenIssuer, VerificationKey,
    Verifier,
};

use crate::support::*;

const A: &str = "https://a.example.com";
const B: &str = "https://b.example.com";
const SECRET_A: &[u8] = b"issuer A's secret, thirty-two bytes long";
const SECRET_B: &[u8] = b"issuer B's secret, thirty-two bytes long";

fn tenant(iss: &str, secret: &[u8]) -> Verifier {
    Verifier::builder()
        .key(VerificationKey::hmac(secret).unwrap())
        .issuer(iss)
        .audience(AUD)
        .build()
        .unwrap()
}

fn both() -> Verifier {
    Verifier::by_issuer([tenant(A, SECRET_A), tenant(B, SECRET_B)]).unwrap()
}

/// A token claiming `iss`, signed with `secret`.
fn token(iss: &str, secret: &[u8]) -> String {
    TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, secret).unwrap())
        .issuer(iss)
        .audience(AUD)
        .access_token("user-1")
        .role("USER")
        .sign()
        .unwrap()
        .into_string()
}

#[tokio::test]
async fn each_issuer_is_verified_with_its_own_keys_only() {
    let layer = || layer_with(both());
    for (iss, secret) in [(A, SECRET_A), (B, SECRET_B)] {
        let (res, calls) = send!(layer(), bearer(&token(iss, secret)));
        assert_passed(&res, calls);
        assert_eq!(claims_of(&res).registered().iss.as_deref(), Some(iss));
    }
    // Issuer B's claims signed with issuer A's key.
    let (res, calls) = send!(layer(), bearer(&token(B, SECRET_A)));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
    // An issuer nobody configured, even with a valid key of a known one.
    let (res, calls) = send!(layer(), bearer(&token("https://evil.example", SECRET_A)));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidIssuer);
    // No `iss` at all.
    let (res, calls) = send!(layer(), bearer(&hs(HS_HEADER, &payload(""))));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidIssuer);
}

#[test]
fn several_issuers_need_distinct_named_issuers() {
    let anonymous = Verifier::builder()
        .key(VerificationKey::hmac(SECRET_A).unwrap())
        .build()
        .unwrap();
    let error = Verifier::by_issuer([tenant(A, SECRET_A), anonymous]).unwrap_err();
    assert!(
        error.to_string().contains("must name its issuer"),
        "{error}"
    );
    let error = Verifier::by_issuer([tenant(A, SECRET_A), tenant(A, SECRET_B)]).unwrap_err();
    assert!(error.to_string().contains("configured twice"), "{error}");
    assert!(Verifier::by_issuer([]).is_err());
}

#[tokio::test]
async fn the_request_can_choose_the_issuer() {
    let layer = || {
        JwtAuthLayer::<MyClaims>::builder(both())
            .issuer_resolver(|head: &RequestHead<'_>| {
                match head.headers().get("host")?.to_str().ok()? {
                    "a.api" => Some(A.to_owned()),
                    "b.api" => Some(B.to_owned()),
                    "ghost.api" => Some("https://ghost.example.com".to_owned()),
                    _ => None,
                }
            })
            .build()
            .unwrap()
    };
    let on = |host: &str, token: &str| {
        request()
            .header("host", host)
            .header("authorization", format!("Bearer {token}"))
            .body(String::new())
            .unwrap()
    };
    let (res, calls) = send!(layer(), on("a.api", &token(A, SECRET_A)));
    assert_passed(&res, calls);
    // Tenant B's host refuses tenant A's token, whatever its `iss` says.
    let (res, calls) = send!(layer(), on("b.api", &token(A, SECRET_A)));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
    let (res, calls) = send!(layer(), on("b.api", &token(A, SECRET_B)));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidIssuer);
    // A tenant the verifier does not know.
    let (res, calls) = send!(layer(), on("ghost.api", &token(A, SECRET_A)));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidIssuer);
    // No choice: routed by `iss`.
    let (res, calls) = send!(layer(), on("other", &token(B, SECRET_B)));
    assert_passed(&res, calls);
}
