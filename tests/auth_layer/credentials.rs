//! Bearer credentials in the request (RFC 6750 sections 2.1, 3.1).

use http::{HeaderValue, Request, header::AUTHORIZATION};
use tower_jwt_auth::AuthErrorKind;

use crate::support::*;

#[tokio::test]
async fn no_authorization_header_is_401_without_error_code() {
    let (res, calls) = send!(layer(), no_auth());
    assert_missing_credentials(&res, calls);
}

#[tokio::test]
async fn other_schemes_carry_no_bearer_credentials() {
    for value in [
        "Basic dXNlcjpwYXNz",
        "Digest username=\"x\"",
        "Token abc",
        "Bearer\tabc",
    ] {
        let (res, calls) = send!(layer(), with_auth(value));
        assert_missing_credentials(&res, calls);
    }
}

#[tokio::test]
async fn two_authorization_headers_are_an_invalid_request() {
    let token = valid_token();
    let req = request()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    let (res, calls) = send!(layer(), req);
    assert_invalid_request(&res, calls, "more than one Authorization header");

    let req = request()
        .header(AUTHORIZATION, "Basic dXNlcjpwYXNz")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    let (res, calls) = send!(layer(), req);
    assert_invalid_request(&res, calls, "more than one Authorization header");
}

#[tokio::test]
async fn empty_bearer_value_is_an_invalid_request() {
    for value in ["Bearer", "Bearer ", "bearer    ", "Bearer ===="] {
        let (res, calls) = send!(layer(), with_auth(value));
        let desc = if value.ends_with('=') {
            "the bearer token is malformed"
        } else {
            "the bearer token is empty"
        };
        assert_invalid_request(&res, calls, desc);
    }
}

#[tokio::test]
async fn empty_authorization_header_is_an_invalid_request() {
    for value in ["", "   "] {
        let (res, calls) = send!(layer(), with_auth(value));
        assert_invalid_request(&res, calls, "the Authorization header is empty");
    }
}

#[tokio::test]
async fn bearer_with_two_words_is_an_invalid_request() {
    let token = valid_token();
    for value in ["Bearer a b".to_owned(), format!("Bearer {token} {token}")] {
        let (res, calls) = send!(layer(), with_auth(&value));
        assert_invalid_request(&res, calls, "the bearer token is malformed");
    }
}

#[tokio::test]
async fn non_b64token_characters_are_an_invalid_request() {
    let token = valid_token();
    let (h, rest) = token.split_once('.').unwrap();
    let cases = [
        format!("{token},"),
        format!("\"{token}\""),
        format!("{token};"),
        format!("{token}%"),
        format!("{h}=.{rest}"), // padding inside the token
        format!("{token}\\"),
        format!("{token}@"),
        "a=b".to_owned(),
    ];
    for value in cases {
        let (res, calls) = send!(layer(), bearer(&value));
        assert_invalid_request(&res, calls, "the bearer token is malformed");
    }
}

#[tokio::test]
async fn non_ascii_authorization_header_is_an_invalid_request() {
    let mut req = no_auth();
    req.headers_mut().insert(
        AUTHORIZATION,
        HeaderValue::from_bytes(b"Bearer abc\xffdef").unwrap(),
    );
    let (res, calls) = send!(layer(), req);
    assert_invalid_request(&res, calls, "the Authorization header is not valid ASCII");
}

#[tokio::test]
async fn query_string_tokens_are_never_read() {
    let token = valid_token();
    let req = Request::builder()
        .uri(format!("/resource?access_token={token}"))
        .body(String::new())
        .unwrap();
    let (res, calls) = send!(layer(), req);
    assert_missing_credentials(&res, calls);
}

/// The layer verifies a token in the canonical `Bearer <token>` shape before
/// it checks the token's syntax: a value in any other shape the general
/// rules accept is still read by them, and verifies.
#[tokio::test]
async fn other_spacings_of_a_valid_token_are_read_by_the_general_rules() {
    let token = valid_token();
    for value in [
        format!("Bearer  {token}"),
        format!("Bearer {token} "),
        format!("Bearer {token}\t"),
        format!(" Bearer {token}"),
        format!("bEaReR {token}"),
    ] {
        let (res, calls) = send!(layer(), with_auth(&value));
        assert_passed(&res, calls);
        assert_eq!(claims_of(&res).subject(), Some("user-1"), "{value:?}");
    }
}

/// A token in the canonical shape that does not verify at once answers
/// what its syntax says first (400), then what its verification says
/// (401), exactly as when the syntax is checked up front.
#[tokio::test]
async fn a_token_that_fails_is_judged_by_its_syntax_first() {
    let token = valid_token();
    let (head, rest) = token.split_once('.').unwrap();
    // Not a b64token, whatever its signature: 400.
    for value in [format!("{token} x"), format!("{head}!.{rest}")] {
        let (res, calls) = send!(layer(), with_auth(&format!("Bearer {value}")));
        assert_invalid_request(&res, calls, "the bearer token is malformed");
    }
    let (res, calls) = send!(layer(), with_auth("Bearer é"));
    assert_invalid_request(&res, calls, "the Authorization header is not valid ASCII");
    // A b64token that is no JWS, or one whose signature fails: 401.
    let (res, calls) = send!(layer(), bearer("abc"));
    assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    let mut tampered = token.into_bytes();
    let inside = tampered.len() - 5; // a signature byte, not its last bits
    tampered[inside] = if tampered[inside] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (res, calls) = send!(layer(), bearer(&tampered));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}
