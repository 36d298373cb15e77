//! Drives `examples/tonic_server.rs` in-process over loopback with tonic's
//! generated health client: the gRPC rejections end to end.

mod common_example;
#[allow(dead_code)] // `main` and `--print-token` are not used here.
#[path = "../examples/tonic_server.rs"]
mod tonic_server;

use std::{net::SocketAddr, time::Duration};

use common_example::{AUDIENCE, ISSUER, SECRET, bounded, expired_token};
use tokio::net::TcpListener;
use tonic::{Code, Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_server::Config;

fn config(required_role: Option<&str>) -> Config {
    Config {
        secret: SECRET.to_vec(),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        required_role: required_role.map(Into::into),
    }
}

/// Starts the example's server on an ephemeral loopback port and connects.
async fn start(required_role: Option<&str>) -> HealthClient<Channel> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let config = config(required_role);
    tokio::spawn(async move { tonic_server::serve(listener, &config).await.unwrap() });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

fn token(role: &str) -> String {
    config(None)
        .token_issuer()
        .unwrap()
        .access_token("user-1")
        .role(role)
        .expires_in(Duration::from_secs(300))
        .sign()
        .unwrap()
        .into_string()
}

/// `grpc.health.v1.Health/Check` for the whole server, with `token` if any.
async fn check(
    client: &mut HealthClient<Channel>,
    token: Option<&str>,
) -> Result<ServingStatus, tonic::Status> {
    let mut request = Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    Ok(client.check(request).await?.into_inner().status())
}

#[tokio::test]
async fn no_token_is_unauthenticated() {
    bounded(async {
        let mut client = start(None).await;
        let status = check(&mut client, None).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(status.message(), "a bearer token is required");
    })
    .await;
}

#[tokio::test]
async fn a_valid_token_gets_serving() {
    bounded(async {
        let mut client = start(None).await;
        let status = check(&mut client, Some(&token("USER"))).await.unwrap();
        assert_eq!(status, ServingStatus::Serving);
    })
    .await;
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated() {
    bounded(async {
        let mut client = start(None).await;
        let status = check(&mut client, Some(&expired_token()))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(status.message(), "the token has expired");
    })
    .await;
}

#[tokio::test]
async fn a_garbage_token_is_unauthenticated() {
    bounded(async {
        let mut client = start(None).await;
        let status = check(&mut client, Some("not.a.jwt")).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    })
    .await;
}

#[tokio::test]
async fn the_wrong_role_is_permission_denied() {
    bounded(async {
        let mut client = start(Some("ADMIN")).await;
        let status = check(&mut client, Some(&token("USER"))).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(status.message(), "the token lacks the required role");
    })
    .await;
}

#[tokio::test]
async fn the_required_role_gets_serving() {
    bounded(async {
        let mut client = start(Some("ADMIN")).await;
        let status = check(&mut client, Some(&token("ADMIN"))).await.unwrap();
        assert_eq!(status, ServingStatus::Serving);
    })
    .await;
}

#[tokio::test]
async fn no_token_with_a_required_role_is_unauthenticated() {
    bounded(async {
        let mut client = start(Some("ADMIN")).await;
        let status = check(&mut client, None).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    })
    .await;
}

#[tokio::test]
async fn one_connection_serves_rejected_and_accepted_calls() {
    bounded(async {
        let mut client = start(None).await;
        for _ in 0..3 {
            let status = check(&mut client, None).await.unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated);
            let status = check(&mut client, Some(&token("USER"))).await.unwrap();
            assert_eq!(status, ServingStatus::Serving);
        }
    })
    .await;
}
