//! kid (RFC 7515 section 4.1.4, RFC 8725 section 3.10).

use tower_jwt_auth::{Algorithm, AuthErrorKind, SigningKey, VerificationKey, Verifier};

use crate::support::*;

fn two_key_verifier() -> Verifier {
    verifier_builder(VerificationKey::hmac(SECRET).unwrap().with_kid("key-a"))
        .key(
            VerificationKey::hmac(OTHER_SECRET)
                .unwrap()
                .with_kid("key-b"),
        )
        .build()
        .unwrap()
}

fn token_with_kid(kid: &str, secret: &[u8]) -> String {
    issuer_with(
        SigningKey::hmac(Algorithm::HS256, secret)
            .unwrap()
            .with_kid(kid),
    )
    .access_token("user-1")
    .sign()
    .unwrap()
    .into_string()
}

#[tokio::test]
async fn kid_selects_exactly_one_key() {
    let (res, calls) = send!(
        layer_with(two_key_verifier()),
        bearer(&token_with_kid("key-a", SECRET))
    );
    assert_passed(&res, calls);
    let (res, calls) = send!(
        layer_with(two_key_verifier()),
        bearer(&token_with_kid("key-b", OTHER_SECRET))
    );
    assert_passed(&res, calls);
    // Signed with A's secret but naming B: only B is tried.
    let (res, calls) = send!(
        layer_with(two_key_verifier()),
        bearer(&token_with_kid("key-b", SECRET))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
    let (res, calls) = send!(
        layer_with(two_key_verifier()),
        bearer(&token_with_kid("key-a", OTHER_SECRET))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
    // kid matching is exact and case-sensitive.
    let (res, calls) = send!(
        layer_with(two_key_verifier()),
        bearer(&token_with_kid("KEY-A", SECRET))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::UnknownKey);
}

#[tokio::test]
async fn unknown_or_hostile_kid_is_an_unknown_key() {
    let long = "k".repeat(4096);
    let kids = [
        "key-c",
        "",
        "../../etc/passwd",
        "' OR 1=1 --",
        "key-a\u{0}",
        " key-a",
        "key-a ",
        "%00",
        "\u{202e}a-yek",
        "../../../../../../dev/null",
        "$(rm -rf /)",
        long.as_str(),
    ];
    for kid in kids {
        let header = serde_json::json!({ "alg": "HS256", "kid": kid }).to_string();
        let token = hs(&header, &payload(""));
        assert!(token.len() <= 8 * 1024);
        let (res, calls) = send!(layer_with(two_key_verifier()), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::UnknownKey);
    }
    // Without a kid, there is no anonymous key to try.
    let (res, calls) = send!(layer_with(two_key_verifier()), bearer(&valid_token()));
    assert_invalid_token(&res, calls, AuthErrorKind::UnknownKey);
}

#[tokio::test]
async fn unmatched_kid_falls_back_to_keys_without_kid_only() {
    let verifier = verifier_builder(VerificationKey::hmac(SECRET).unwrap())
        .key(
            VerificationKey::hmac(OTHER_SECRET)
                .unwrap()
                .with_kid("key-b"),
        )
        .build()
        .unwrap();
    // An unknown kid, signed by the anonymous key: accepted (documented fallback).
    let (res, calls) = send!(
        layer_with(verifier.clone()),
        bearer(&token_with_kid("rotated", SECRET))
    );
    assert_passed(&res, calls);
    // Naming key-b pins key-b: the anonymous key is not tried.
    let (res, calls) = send!(
        layer_with(verifier.clone()),
        bearer(&token_with_kid("key-b", SECRET))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
    // An unknown kid signed by key-b's secret: key-b is not a fallback.
    let (res, calls) = send!(
        layer_with(verifier),
        bearer(&token_with_kid("rotated", OTHER_SECRET))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}
