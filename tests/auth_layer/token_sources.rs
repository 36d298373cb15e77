//! Cookie and custom header token sources.

use http::{
    HeaderName,
    header::{AUTHORIZATION, COOKIE},
};
use tower_jwt_auth::{AuthErrorKind, JwtAuthLayer, TokenSource};

use crate::support::*;

fn cookie_layer() -> JwtAuthLayer<MyClaims> {
    JwtAuthLayer::builder(verifier())
        .token_source(TokenSource::Cookie("access_token".into()))
        .build()
        .unwrap()
}

fn with_cookie(cookie: &str) -> Req {
    request()
        .header(COOKIE, cookie)
        .body(String::new())
        .unwrap()
}

#[tokio::test]
async fn cookie_token_source() {
    let token = valid_token();
    let (res, calls) = send!(
        cookie_layer(),
        with_cookie(&format!("theme=dark; access_token={token}; x=1"))
    );
    assert_passed(&res, calls);
    assert_eq!(claims_of(&res).subject(), Some("user-1"));

    let (res, calls) = send!(cookie_layer(), with_cookie("theme=dark"));
    assert_missing_credentials(&res, calls);

    // A cookie with a similar name is not the token.
    let (res, calls) = send!(
        cookie_layer(),
        with_cookie(&format!("access_token2={token}; xaccess_token={token}"))
    );
    assert_missing_credentials(&res, calls);

    let (res, calls) = send!(cookie_layer(), with_cookie("access_token=a.b.c"));
    assert_invalid_token(&res, calls, AuthErrorKind::Malformed);

    let (res, calls) = send!(
        cookie_layer(),
        with_cookie(&format!("access_token={token}; access_token={token}"))
    );
    assert_invalid_request(&res, calls, "the token cookie is repeated");

    let (res, calls) = send!(cookie_layer(), with_cookie("access_token=a,b"));
    assert_invalid_request(&res, calls, "the token cookie is malformed");

    // The default source never reads cookies.
    let (res, calls) = send!(layer(), with_cookie(&format!("access_token={token}")));
    assert_missing_credentials(&res, calls);
}

#[tokio::test]
async fn authorization_header_wins_over_the_cookie() {
    let token = valid_token();
    let req = request()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(COOKIE, "access_token=garbage.garbage.garbage")
        .body(String::new())
        .unwrap();
    let (res, calls) = send!(cookie_layer(), req);
    assert_passed(&res, calls);

    let req = request()
        .header(AUTHORIZATION, "Bearer garbage.garbage.garbage")
        .header(COOKIE, format!("access_token={token}"))
        .body(String::new())
        .unwrap();
    let (res, calls) = send!(cookie_layer(), req);
    assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
}

#[tokio::test]
async fn header_token_source() {
    let name = HeaderName::from_static("x-access-token");
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .token_source(TokenSource::Header(name.clone()))
        .build()
        .unwrap();
    let token = valid_token();
    let req = request().header(&name, &token).body(String::new()).unwrap();
    let (res, calls) = send!(layer.clone(), req);
    assert_passed(&res, calls);

    let (res, calls) = send!(layer.clone(), no_auth());
    assert_missing_credentials(&res, calls);

    let req = request()
        .header(&name, &token)
        .header(&name, &token)
        .body(String::new())
        .unwrap();
    let (res, calls) = send!(layer.clone(), req);
    assert_invalid_request(&res, calls, "the token header is repeated");

    let req = request()
        .header(&name, format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    let (res, calls) = send!(layer.clone(), req);
    assert_invalid_request(&res, calls, "the token header is malformed");

    // The Authorization header wins.
    let req = request()
        .header(AUTHORIZATION, "Bearer a.b.c")
        .header(&name, &token)
        .body(String::new())
        .unwrap();
    let (res, calls) = send!(layer, req);
    assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
}
