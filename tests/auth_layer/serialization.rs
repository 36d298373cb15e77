//! Compact serialization (RFC 7515 section 7.1).

use tower::ServiceBuilder;
use tower_jwt_auth::{AuthErrorKind, RequireRoleLayer};

use crate::support::*;

#[tokio::test]
async fn tampered_payload_is_refused() {
    let token = valid_token();
    let parts: Vec<&str> = token.split('.').collect();
    let forged = b64(payload(r#","role":"ADMIN""#));
    let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
    let (res, calls) = send!(layer(), bearer(&tampered));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);

    // The signature of another valid token does not transfer either.
    let other = issuer()
        .access_token("user-2")
        .sign()
        .unwrap()
        .into_string();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        other.rsplit('.').next().unwrap()
    );
    let (res, calls) = send!(layer(), bearer(&swapped));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

#[tokio::test]
async fn tampered_header_is_refused() {
    let token = valid_token();
    let (_, rest) = token.split_once('.').unwrap();
    let header = b64(r#"{"alg":"HS256","typ":"JWT","kid":"x"}"#);
    let (res, calls) = send!(layer(), bearer(&format!("{header}.{rest}")));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

#[tokio::test]
async fn stripped_signature_is_refused() {
    let token = valid_token();
    let unsigned = &token[..=token.rfind('.').unwrap()];
    assert!(unsigned.ends_with('.'));
    let (res, calls) = send!(layer(), bearer(unsigned));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

#[tokio::test]
async fn wrong_number_of_parts_is_malformed() {
    let token = valid_token();
    let parts: Vec<&str> = token.split('.').collect();
    let cases = [
        parts[0].to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.{}", parts[2]),
        format!("{token}.{}.{}", parts[1], parts[2]), // JWE-like, five parts
        format!("{token}."),
    ];
    for case in cases {
        let (res, calls) = send!(layer(), bearer(&case));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn empty_parts_are_refused() {
    let token = valid_token();
    let parts: Vec<&str> = token.split('.').collect();
    for case in ["..".to_owned(), format!(".{}.{}", parts[1], parts[2])] {
        let (res, calls) = send!(layer(), bearer(&case));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
    // An empty payload under a valid signature is still malformed.
    let signed_empty = sign_segments(&b64(HS_HEADER), "");
    let (res, calls) = send!(layer(), bearer(&signed_empty));
    assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    // An empty payload under a foreign signature fails the signature first.
    let (res, calls) = send!(layer(), bearer(&format!("{}..{}", parts[0], parts[2])));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

#[tokio::test]
async fn malformed_base64_in_the_header_is_malformed() {
    let payload_b64 = b64(payload(""));
    for header_b64 in [
        // standard-alphabet characters are not base64url
        "eyJhbGciOiJIUzI1NiJ9+".to_owned(),
        format!("{}/", b64(HS_HEADER)),
        // impossible length (4n + 1)
        format!("{}A", b64(r#"{"alg":"HS256"}"#)),
        // non-canonical trailing bits
        {
            let mut h = b64(r#"{"alg":"HS256"} "#);
            let last = h.pop().unwrap();
            h.push(if last == 'A' { 'B' } else { 'A' });
            h
        },
    ] {
        let token = sign_segments(&header_b64, &payload_b64);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn malformed_base64_in_the_payload_is_malformed() {
    let header_b64 = b64(HS_HEADER);
    for payload_b64 in [
        format!("{}+", b64(payload(""))),
        format!("{}A", b64(payload(""))),
        format!("{}~", b64(payload(""))),
    ] {
        // Correctly signed, so only the payload's encoding is wrong.
        let token = sign_segments(&header_b64, &payload_b64);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn malformed_base64_in_the_signature_is_malformed() {
    let token = valid_token();
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut non_canonical = signature.to_owned();
    // HS256: 32 bytes, 43 characters; the last one carries 2 unused bits.
    let last = non_canonical.pop().unwrap();
    let idx = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        .iter()
        .position(|&c| c == last as u8)
        .unwrap();
    non_canonical
        .push(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[idx ^ 1] as char);
    for bad in [
        format!("{signature}="),         // padding
        format!("{signature}AA"),        // impossible length (4n + 1)
        format!("+{}", &signature[1..]), // standard alphabet
        format!("{}/", &signature[..signature.len() - 1]),
        non_canonical, // same bytes, other spelling
    ] {
        let (res, calls) = send!(layer(), bearer(&format!("{message}.{bad}")));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn payload_that_is_not_a_json_object_is_malformed() {
    for body in [
        "not json",
        "[1,2,3]",
        r#""a string""#,
        "null",
        "42",
        "",
        "{",
        r#"{"exp":1e999999999999"#,
    ] {
        let token = hs(HS_HEADER, body);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn payload_with_trailing_data_is_malformed() {
    for suffix in [" x", "{}", ",", "\u{0}"] {
        let token = hs(HS_HEADER, &format!("{}{suffix}", payload("")));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn deeply_nested_claims_overflow_neither_the_verifier_nor_the_role_layer() {
    // The verifier skips unknown claims without recursion, so a signed token
    // with a deeply nested unknown claim is accepted, without a stack overflow.
    let depth = 2000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let token = hs(
        HS_HEADER,
        &payload(&format!(r#","role":"ADMIN","deep":{nested}"#)),
    );
    assert!(token.len() < 8 * 1024);
    let (res, calls) = send!(layer(), bearer(&token));
    assert_passed(&res, calls);
    // The role layer reads only the path to its claim, skipping the rest
    // without recursion either: the role is read and granted.
    let role_layer = || {
        ServiceBuilder::new()
            .layer(layer())
            .layer(RequireRoleLayer::any_of(["ADMIN"]))
    };
    let (res, calls) = send!(role_layer(), bearer(&token));
    assert_passed(&res, calls);
    // Deep nesting inside the roles claim (one the application's claims type
    // does not decode) names no role: denied, no overflow.
    let roles_layer = || {
        ServiceBuilder::new()
            .layer(layer())
            .layer(RequireRoleLayer::any_of(["ADMIN"]).claim("roles"))
    };
    let token = hs(HS_HEADER, &payload(&format!(r#","roles":{nested}"#)));
    let (res, calls) = send!(roles_layer(), bearer(&token));
    assert_forbidden(&res, calls);
    let token = hs(
        HS_HEADER,
        &payload(&format!(r#","roles":[{nested},"ADMIN"]"#)),
    );
    let (res, calls) = send!(roles_layer(), bearer(&token));
    assert_passed(&res, calls);
    // The same nesting in an unsigned header is rejected at the signature.
    let header = format!(r#"{{"alg":"HS256","deep":{nested}}}"#);
    let forged = format!("{}.{}.{}", b64(header), b64(payload("")), "A".repeat(43));
    let (res, calls) = send!(layer(), bearer(&forged));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

#[tokio::test]
async fn header_that_is_not_a_json_object_is_malformed() {
    for header in [
        "[]",
        r#""HS256""#,
        "null",
        "",
        "not json",
        r#"{"alg":"HS256""#,
        r#"{"alg":"HS256"} x"#,
    ] {
        let token = hs(header, &payload(""));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn header_without_a_string_alg_is_malformed() {
    for header in [
        r#"{"typ":"JWT"}"#,
        "{}",
        r#"{"alg":null}"#,
        r#"{"alg":256}"#,
        r#"{"alg":["HS256"]}"#,
        r#"{"alg":{"name":"HS256"}}"#,
        r#"{"alg":"HS256","kid":7}"#,
        r#"{"alg":"HS256","typ":["JWT"]}"#,
    ] {
        let token = hs(header, &payload(""));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}
