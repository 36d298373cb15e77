//! Algorithms (RFC 8725 sections 2.1, 3.1, 3.2).

use jsonwebtoken as jwt;
use tower_jwt_auth::{Algorithm, AuthErrorKind, SigningKey, VerificationKey};

use crate::support::*;

#[tokio::test]
async fn alg_none_with_empty_signature_is_refused() {
    let token = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(payload(""))
    );
    let (res, calls) = send!(layer(), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);
}

#[tokio::test]
async fn alg_none_spellings_are_refused_even_when_signed() {
    for alg in [
        "none", "None", "NONE", "nOnE", "", "hs256", "HS256 ", "HS-256", "\u{0}",
    ] {
        let header = serde_json::json!({ "alg": alg, "typ": "JWT" }).to_string();
        for token in [
            format!("{}.{}.", b64(&header), b64(payload(""))),
            hs(&header, &payload("")),
        ] {
            let (res, calls) = send!(layer(), bearer(&token));
            assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);
        }
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused_by_an_rsa_verifier() {
    // The classic algorithm-confusion attack: the public key PEM as HMAC secret.
    let key = jwt::EncodingKey::from_secret(RSA_PUBLIC).unwrap();
    let token = sign_raw(HS_HEADER, &payload(""), &key, jwt::Algorithm::HS256);
    let verifier = verifier_with(VerificationKey::rsa_pem(RSA_PUBLIC).unwrap());
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);
}

#[tokio::test]
async fn algorithm_confusion_through_kid_is_refused() {
    // An RSA key with kid "rsa" next to an HMAC key: an HS256 token naming
    // the RSA key's kid must not be verified with the RSA key bytes.
    let verifier = verifier_builder(
        VerificationKey::rsa_pem(RSA_PUBLIC)
            .unwrap()
            .with_kid("rsa"),
    )
    .key(VerificationKey::hmac(SECRET).unwrap().with_kid("hmac"))
    .build()
    .unwrap();
    let key = jwt::EncodingKey::from_secret(RSA_PUBLIC).unwrap();
    let token = sign_raw(
        r#"{"alg":"HS256","kid":"rsa"}"#,
        &payload(""),
        &key,
        jwt::Algorithm::HS256,
    );
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);
}

#[tokio::test]
async fn rs256_token_is_refused_by_an_hmac_only_verifier() {
    let token = issuer_with(SigningKey::rsa_pem(Algorithm::RS256, RSA_PRIVATE).unwrap())
        .access_token("user-1")
        .sign()
        .unwrap();
    let (res, calls) = send!(layer(), bearer(token.as_str()));
    assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);
}

#[tokio::test]
async fn hs512_token_is_refused_when_the_key_allows_only_hs256() {
    let verifier = verifier_with(VerificationKey::hmac(SECRET_64).unwrap());
    let token = issuer_with(SigningKey::hmac(Algorithm::HS512, SECRET_64).unwrap())
        .access_token("user-1")
        .sign()
        .unwrap();
    let (res, calls) = send!(layer_with(verifier.clone()), bearer(token.as_str()));
    assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);

    // Control: the same token passes once HS512 is allowed for that key.
    let widened = verifier_with(
        VerificationKey::hmac(SECRET_64)
            .unwrap()
            .with_algorithms([Algorithm::HS256, Algorithm::HS512]),
    );
    let (res, calls) = send!(layer_with(widened), bearer(token.as_str()));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn es256_signature_under_an_es384_header_is_refused() {
    let key = jwt::EncodingKey::from_ec_pem(EC_PRIVATE).unwrap();
    // The header names ES384; the signature is ES256.
    let token = sign_raw(
        r#"{"alg":"ES384"}"#,
        &payload(""),
        &key,
        jwt::Algorithm::ES256,
    );
    let verifier = verifier_with(VerificationKey::ec_pem(EC_PUBLIC).unwrap());
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);
}

#[tokio::test]
async fn token_signed_by_another_rsa_key_is_refused() {
    let key = jwt::EncodingKey::from_rsa_pem(RSA2_PRIVATE).unwrap();
    let token = sign_raw(
        r#"{"alg":"RS256"}"#,
        &payload(""),
        &key,
        jwt::Algorithm::RS256,
    );
    let verifier = verifier_with(VerificationKey::rsa_pem(RSA_PUBLIC).unwrap());
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

#[tokio::test]
async fn keys_embedded_in_the_header_are_ignored() {
    // jwk / jku / x5u / x5c in the header name the attacker's key; the
    // verifier must only ever use its configured keys (RFC 8725 section 3.10).
    let key = jwt::EncodingKey::from_rsa_pem(RSA2_PRIVATE).unwrap();
    let verifier = verifier_with(VerificationKey::rsa_pem(RSA_PUBLIC).unwrap());
    for header in [
        r#"{"alg":"RS256","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}"#,
        r#"{"alg":"RS256","jku":"https://attacker.test/jwks.json"}"#,
        r#"{"alg":"RS256","x5u":"https://attacker.test/cert.pem"}"#,
        r#"{"alg":"RS256","x5c":["MIIBIjANBgkq"]}"#,
    ] {
        let token = sign_raw(header, &payload(""), &key, jwt::Algorithm::RS256);
        let (res, calls) = send!(layer_with(verifier.clone()), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
    }
}
