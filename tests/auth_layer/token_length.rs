//! Token length limits, checked before decoding.

use tower_jwt_auth::{AuthErrorKind, VerificationKey};

use crate::support::*;

#[tokio::test]
async fn oversized_token_is_refused_before_decoding() {
    // 8 KiB + 1 of b64token characters; not even a JWS.
    let long = "a".repeat(8 * 1024 + 1);
    let (res, calls) = send!(layer(), bearer(&long));
    assert_invalid_token(&res, calls, AuthErrorKind::TokenTooLong);

    // Exactly at the limit it is decoded (and found malformed).
    let at_limit = "a".repeat(8 * 1024);
    let (res, calls) = send!(layer(), bearer(&at_limit));
    assert_invalid_token(&res, calls, AuthErrorKind::Malformed);

    // A validly signed token over the limit is refused too.
    let big = "x".repeat(9 * 1024);
    let token = issuer()
        .access_token("user-1")
        .claim("name", big)
        .sign()
        .unwrap();
    assert!(token.as_str().len() > 8 * 1024);
    let (res, calls) = send!(layer(), bearer(token.as_str()));
    assert_invalid_token(&res, calls, AuthErrorKind::TokenTooLong);
}

#[tokio::test]
async fn custom_max_token_len_is_enforced() {
    let token = valid_token();
    let build = |max: usize| {
        verifier_builder(VerificationKey::hmac(SECRET).unwrap())
            .max_token_len(max)
            .build()
            .unwrap()
    };
    let (res, calls) = send!(layer_with(build(token.len() - 1)), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::TokenTooLong);
    let (res, calls) = send!(layer_with(build(token.len())), bearer(&token));
    assert_passed(&res, calls);
    let (res, calls) = send!(layer_with(build(64)), bearer(&"a".repeat(65)));
    assert_invalid_token(&res, calls, AuthErrorKind::TokenTooLong);
}
