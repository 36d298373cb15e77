//! Cookie, custom header, WebSocket subprotocol and custom function token sources.

use http::{
    HeaderName,
    header::{AUTHORIZATION, COOKIE, SEC_WEBSOCKET_PROTOCOL},
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

/// A `Cookie` header value from raw bytes (non-ASCII included).
fn with_raw_cookies(values: &[&[u8]]) -> Req {
    let mut req = request().body(String::new()).unwrap();
    for value in values {
        req.headers_mut()
            .append(COOKIE, http::HeaderValue::from_bytes(value).unwrap());
    }
    req
}

#[tokio::test]
async fn a_non_ascii_cookie_does_not_hide_the_token_cookie() {
    let token = valid_token();
    // A sibling subdomain plants a cookie with a non-ASCII byte beside ours:
    // the header is read as bytes, and only the wanted cookie must be valid.
    let mut raw = b"planted=caf\xc3\xa9; access_token=".to_vec();
    raw.extend_from_slice(token.as_bytes());
    raw.extend_from_slice(b"; x=\xff");
    let (res, calls) = send!(cookie_layer(), with_raw_cookies(&[raw.as_slice()]));
    assert_passed(&res, calls);
    assert_eq!(claims_of(&res).subject(), Some("user-1"));

    // In a Cookie header of its own, too.
    let mut ours = b"access_token=".to_vec();
    ours.extend_from_slice(token.as_bytes());
    let (res, calls) = send!(
        cookie_layer(),
        with_raw_cookies(&[b"\xfe\xff=\x80", ours.as_slice()])
    );
    assert_passed(&res, calls);

    // The wanted cookie itself with a non-ASCII byte is malformed, not absent.
    let (res, calls) = send!(
        cookie_layer(),
        with_raw_cookies(&[b"access_token=a.b\xc3\xa9.c"])
    );
    assert_invalid_request(&res, calls, "the token cookie is malformed");

    // A planted duplicate with a non-ASCII byte is refused, never skipped.
    let (res, calls) = send!(
        cookie_layer(),
        with_raw_cookies(&[ours.as_slice(), b"access_token=\xc3\xa9"])
    );
    assert_invalid_request(&res, calls, "the token cookie is repeated");

    // Names match exactly after trimming spaces and tabs; values are
    // trimmed and may be quoted.
    let (res, calls) = send!(
        cookie_layer(),
        with_cookie(&format!("theme=dark;\t access_token =  \"{token}\" ;x=1"))
    );
    assert_passed(&res, calls);
    let (res, calls) = send!(
        cookie_layer(),
        with_cookie(&format!("Access_Token={token}"))
    );
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

fn websocket_layer() -> JwtAuthLayer<MyClaims> {
    JwtAuthLayer::builder(verifier())
        .token_source(TokenSource::WebSocketProtocol("bearer".into()))
        .build()
        .unwrap()
}

fn with_subprotocols(value: &str) -> Req {
    request()
        .header(SEC_WEBSOCKET_PROTOCOL, value)
        .body(String::new())
        .unwrap()
}

/// An inner service that accepts the upgrade (101), optionally choosing a
/// subprotocol itself.
fn upgrading(
    chosen: Option<&'static str>,
) -> impl tower::Service<Req, Response = Res, Error = std::convert::Infallible> + Clone {
    tower::service_fn(move |_req: Req| async move {
        let mut res = http::Response::new(String::new());
        *res.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
        if let Some(chosen) = chosen {
            res.headers_mut()
                .insert(SEC_WEBSOCKET_PROTOCOL, chosen.parse().unwrap());
        }
        Ok(res)
    })
}

#[tokio::test]
async fn websocket_subprotocol_token_source() {
    use tower::{ServiceBuilder, ServiceExt};

    let token = valid_token();
    let (res, calls) = send!(
        websocket_layer(),
        with_subprotocols(&format!("bearer, {token}"))
    );
    assert_passed(&res, calls);
    assert_eq!(claims_of(&res).subject(), Some("user-1"));

    // A successful upgrade echoes the marker, never the token.
    let svc = ServiceBuilder::new()
        .layer(websocket_layer())
        .service(upgrading(None));
    let res = svc
        .oneshot(with_subprotocols(&format!("bearer, {token}")))
        .await
        .unwrap();
    assert_eq!(res.status(), 101);
    assert_eq!(res.headers()[SEC_WEBSOCKET_PROTOCOL], "bearer");
    // The application's own choice stands.
    let svc = ServiceBuilder::new()
        .layer(websocket_layer())
        .service(upgrading(Some("chat")));
    let res = svc
        .oneshot(with_subprotocols(&format!("chat, bearer, {token}")))
        .await
        .unwrap();
    assert_eq!(res.headers()[SEC_WEBSOCKET_PROTOCOL], "chat");

    let (res, calls) = send!(websocket_layer(), with_subprotocols("chat"));
    assert_missing_credentials(&res, calls);
    let (res, calls) = send!(websocket_layer(), with_subprotocols("bearer"));
    assert_invalid_request(&res, calls, "the token subprotocol carries no token");
    let (res, calls) = send!(websocket_layer(), with_subprotocols("bearer, a.b.c"));
    assert_invalid_token(&res, calls, AuthErrorKind::Malformed);

    // A name that is not an HTTP token is refused when the layer is built.
    let error = JwtAuthLayer::<MyClaims>::builder(verifier())
        .token_source(TokenSource::WebSocketProtocol("a b".into()))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("not an HTTP token"), "{error}");
}

#[tokio::test]
async fn custom_token_source() {
    use std::borrow::Cow;
    use tower_jwt_auth::{AuthError, RequestHead};

    // `?access_token=` for one legacy path only, as an application may choose.
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .token_source(TokenSource::custom(|head: &RequestHead<'_>| {
            if head.uri().path() != "/legacy" {
                return Ok(None);
            }
            let query = head.uri().query().unwrap_or_default();
            match query.strip_prefix("access_token=") {
                Some(token) => Ok(Some(Cow::Borrowed(token))),
                None => Err(AuthError::new(AuthErrorKind::InvalidRequest)),
            }
        }))
        .build()
        .unwrap();
    let token = valid_token();
    let get = |uri: &str| {
        http::Request::get(uri.to_owned())
            .body(String::new())
            .unwrap()
    };
    let (res, calls) = send!(layer.clone(), get(&format!("/legacy?access_token={token}")));
    assert_passed(&res, calls);
    assert_eq!(claims_of(&res).subject(), Some("user-1"));
    let (res, calls) = send!(layer.clone(), get(&format!("/other?access_token={token}")));
    assert_missing_credentials(&res, calls);
    let (res, calls) = send!(layer.clone(), get("/legacy"));
    assert_invalid_request(&res, calls, "the authorization request is malformed");
    let (res, calls) = send!(layer.clone(), get("/legacy?access_token=a%20b"));
    assert_invalid_request(&res, calls, "the token is malformed");
    let (res, calls) = send!(layer, get("/legacy?access_token=a.b.c"));
    assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
}
