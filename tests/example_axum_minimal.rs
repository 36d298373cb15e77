//! Drives the router of `examples/axum_minimal.rs` in memory.
#![cfg(feature = "axum")]

#[path = "../examples/axum_minimal.rs"]
#[allow(dead_code)]
mod axum_minimal;

use axum::{
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
};
use http_body_util::BodyExt;
use tower::ServiceExt;

use axum_minimal::{app, demo_token};

const SECRET: &[u8] = b"test-secret-test-secret-test-secret-0123456789";

async fn get(path: &str, token: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app(SECRET)
        .unwrap()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn challenge(headers: &HeaderMap) -> &str {
    headers[header::WWW_AUTHENTICATE].to_str().unwrap()
}

#[tokio::test]
async fn without_a_token_both_routes_are_401() {
    for path in ["/me", "/admin"] {
        let (status, headers, _) = get(path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(challenge(&headers), r#"Bearer realm="api""#, "{path}");
    }
}

#[tokio::test]
async fn the_demo_token_reaches_both_routes() {
    let token = demo_token(SECRET, "ADMIN").unwrap();
    let (status, _, body) = get("/me", Some(&token)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "demo-user"));
    let (status, _, body) = get("/admin", Some(&token)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello, admin"));
}

#[tokio::test]
async fn without_the_role_admin_is_403() {
    let token = demo_token(SECRET, "USER").unwrap();
    let (status, _, body) = get("/me", Some(&token)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "demo-user"));
    let (status, headers, _) = get("/admin", Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&headers),
        r#"Bearer realm="api", error="insufficient_scope", error_description="the token lacks the required role""#
    );
}

#[tokio::test]
async fn a_token_of_another_secret_is_401() {
    let token = demo_token(b"another-secret-another-secret-another-0123", "ADMIN").unwrap();
    let (status, headers, _) = get("/me", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&headers),
        r#"Bearer realm="api", error="invalid_token", error_description="the token signature is invalid""#
    );
}
