//! Bearer credentials in the request (RFC 6750 sections 2.1, 3.1).

use http::{HeaderValue, Request, header::AUTHORIZATION};

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
