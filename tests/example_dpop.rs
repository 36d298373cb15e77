//! DPoP in the issuing mode of `examples/axum_server/`: a login with a
//! `DPoP` proof (made by `jose`) returns a bound pair, the protected routes
//! take the bound token with proofs, and only the key's proofs refresh it.
#![cfg(feature = "axum")]

#[path = "../examples/axum_server/main.rs"]
#[allow(dead_code)]
mod axum_server;
#[path = "support/oidc.rs"]
mod oidc;
#[path = "support/dpop.rs"]
mod proofs;

use std::{collections::HashMap, env::VarError};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use axum_server::{AppState, Config, app};

/// Without `PUBLIC_URL` the example trusts `Host`, over http.
const HOST: &str = "localhost:3000";

fn new_app() -> Router {
    let vars = HashMap::from([(
        "JWT_SECRET",
        "test-secret-test-secret-test-secret-0123456789",
    )]);
    let config = Config::from_lookup(|name| {
        vars.get(name)
            .map(|v| (*v).to_owned())
            .ok_or(VarError::NotPresent)
    })
    .unwrap();
    app(AppState::new(&config).unwrap())
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn proof(keys: &Value, key: &str, method: &str, path: &str, token: Option<&str>) -> String {
    let mut spec = json!({"key": key, "htm": method, "htu": format!("http://{HOST}{path}")});
    if let Some(token) = token {
        spec["accessToken"] = token.into();
    }
    proofs::proof(keys, spec)
}

fn login(proof: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/users/login")
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request
        .body(Body::from(
            "username=user%40example.com&password=user-password",
        ))
        .unwrap()
}

fn refresh(refresh_token: &str, proof: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/users/refresh")
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request
        .body(Body::from(
            json!({ "refresh_token": refresh_token }).to_string(),
        ))
        .unwrap()
}

fn me(token: &str, proof: &str) -> Request<Body> {
    Request::get("/users/me")
        .header(header::HOST, HOST)
        .header(header::AUTHORIZATION, format!("DPoP {token}"))
        .header("DPoP", proof)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_login_with_a_proof_returns_a_bound_pair() {
    if !oidc::ensure_installed() {
        return;
    }
    let app = new_app();
    let keys = proofs::keys(&[("k", "ES256"), ("other", "EdDSA")]);
    let (status, pair) = send(
        &app,
        login(Some(&proof(&keys, "k", "POST", "/users/login", None))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert_eq!(pair["token_type"], "DPoP");
    let access = pair["access_token"].as_str().unwrap();
    let claims = payload(access);
    assert_eq!(
        claims["cnf"]["jkt"],
        proofs::thumbprint(&keys, "k").as_str()
    );

    // The bound token with its proof on a protected route.
    let (status, body) = send(
        &app,
        me(access, &proof(&keys, "k", "GET", "/users/me", Some(access))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], claims["sub"]);

    // A stolen refresh token alone refreshes nothing, nor with another key.
    let refresh_token = pair["refresh_token"].as_str().unwrap();
    let (status, body) = send(&app, refresh(refresh_token, None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_dpop_proof");
    let other = proof(&keys, "other", "POST", "/users/refresh", None);
    let (status, body) = send(&app, refresh(refresh_token, Some(&other))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");

    // The key's proof refreshes: still bound, never fresher than the login.
    let own = proof(&keys, "k", "POST", "/users/refresh", None);
    let (status, refreshed) = send(&app, refresh(refresh_token, Some(&own))).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["token_type"], "DPoP");
    let new_claims = payload(refreshed["access_token"].as_str().unwrap());
    assert_eq!(new_claims["cnf"], claims["cnf"]);
    assert_eq!(new_claims["auth_time"], claims["auth_time"]);
}

#[tokio::test]
async fn a_login_with_a_bad_proof_is_400_and_without_one_is_bearer() {
    if !oidc::ensure_installed() {
        return;
    }
    let app = new_app();
    let keys = proofs::keys(&[("k", "ES256")]);
    let wrong_url = proof(&keys, "k", "POST", "/users/elsewhere", None);
    let (status, body) = send(&app, login(Some(&wrong_url))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_dpop_proof");
    let (status, body) = send(&app, login(None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "bearer");
    assert!(
        payload(body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
}
