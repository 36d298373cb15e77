//! Drives `examples/hyper_server.rs` in-process over loopback with hyper's client.

mod common_example;
#[allow(dead_code)] // `main` and `--print-token` are not used here.
#[path = "../examples/hyper_server.rs"]
mod hyper_server;

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use common_example::{AUDIENCE, ISSUER, SECRET, bounded, expired_token};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_server::Config;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::net::TcpListener;

fn config() -> Config {
    Config {
        secret: SECRET.to_vec(),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
    }
}

/// Starts the example's server on an ephemeral loopback port.
async fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = hyper_server::app(&config()).unwrap();
    tokio::spawn(hyper_server::serve(listener, app));
    addr
}

fn token(role: &str) -> String {
    config()
        .token_issuer()
        .unwrap()
        .access_token("user-1")
        .role(role)
        .expires_in(Duration::from_secs(300))
        .sign()
        .unwrap()
        .into_string()
}

struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    json: serde_json::Value,
}

async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut request = Request::get(format!("http://{addr}{path}"));
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = client
        .request(request.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        challenge,
        json: serde_json::from_slice(&body).unwrap(),
    }
}

#[tokio::test]
async fn no_token_is_401_with_a_bearer_challenge() {
    bounded(async {
        let addr = start().await;
        let reply = get(addr, "/me", None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.challenge.as_deref(), Some(r#"Bearer realm="api""#));
        assert_eq!(reply.json["error"], "unauthorized");
    })
    .await;
}

#[tokio::test]
async fn a_user_token_reads_me() {
    bounded(async {
        let addr = start().await;
        let reply = get(addr, "/me", Some(&token("USER"))).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.challenge, None);
        assert_eq!(
            reply.json,
            serde_json::json!({ "id": "user-1", "role": "USER" })
        );
    })
    .await;
}

#[tokio::test]
async fn a_user_token_on_admin_is_403_insufficient_scope() {
    bounded(async {
        let addr = start().await;
        let reply = get(addr, "/admin", Some(&token("USER"))).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let challenge = reply.challenge.unwrap();
        assert!(
            challenge.starts_with(r#"Bearer realm="api""#),
            "{challenge}"
        );
        assert!(
            challenge.contains(r#"error="insufficient_scope""#),
            "{challenge}"
        );
        assert_eq!(reply.json["error"], "insufficient_scope");
    })
    .await;
}

#[tokio::test]
async fn an_admin_token_on_admin_is_200() {
    bounded(async {
        let addr = start().await;
        let reply = get(addr, "/admin", Some(&token("ADMIN"))).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json["message"], "hello, admin");
    })
    .await;
}

#[tokio::test]
async fn an_expired_token_is_401_invalid_token() {
    bounded(async {
        let addr = start().await;
        let reply = get(addr, "/me", Some(&expired_token())).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        let challenge = reply.challenge.unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        assert_eq!(reply.json["error"], "invalid_token");
        assert_eq!(reply.json["error_description"], "the token has expired");
    })
    .await;
}

#[tokio::test]
async fn unknown_paths_still_need_a_token() {
    bounded(async {
        let addr = start().await;
        assert_eq!(
            get(addr, "/nowhere", None).await.status,
            StatusCode::UNAUTHORIZED
        );
        let reply = get(addr, "/nowhere", Some(&token("USER"))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    })
    .await;
}
