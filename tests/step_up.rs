//! Step-up authentication (RFC 9470) and the resource metadata of RFC 9728
//! in challenges: the exact status and challenge of each refusal.

use std::{
    convert::Infallible,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use http::{Request, Response, StatusCode, header};
use serde_json::Value;
use tower::{Layer, ServiceExt};
use tower_jwt_auth::{
    Algorithm, AuthError, AuthErrorKind, JwtAuthLayer, SigningKey, StepUpLayer, TokenIssuer,
    VerificationKey, Verifier, dpop::Dpop, resource_metadata::ProtectedResourceMetadata,
};

const SECRET: &[u8] = b"a secret of at least thirty-two bytes!";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn issuer() -> TokenIssuer {
    TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
}

fn auth() -> tower_jwt_auth::JwtAuthLayerBuilder<Value> {
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .build()
        .unwrap();
    JwtAuthLayer::builder(verifier)
}

struct Reply {
    status: StatusCode,
    challenges: Vec<String>,
    kind: Option<AuthErrorKind>,
}

async fn send(auth: &JwtAuthLayer<Value>, step_up: &StepUpLayer, token: Option<&str>) -> Reply {
    let inner = tower::service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let service = auth.layer(step_up.layer(inner));
    let mut request = Request::get("/account/password");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = service.oneshot(request.body(()).unwrap()).await.unwrap();
    Reply {
        status: response.status(),
        challenges: response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect(),
        kind: response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
    }
}

fn mfa_within_5_minutes() -> StepUpLayer {
    StepUpLayer::builder()
        .acr_values(["urn:example:mfa"])
        .max_age(Duration::from_secs(300))
        .build()
        .unwrap()
}

const CHALLENGE: &str = r#"Bearer realm="api", error="insufficient_user_authentication", error_description="a more recent or stronger authentication is required", acr_values="urn:example:mfa", max_age=300"#;

#[tokio::test]
async fn a_recent_strong_login_passes() {
    let token = issuer()
        .access_token("u")
        .claim("acr", "urn:example:mfa")
        .auth_time(now() - 10)
        .sign()
        .unwrap();
    let reply = send(
        &auth().build().unwrap(),
        &mfa_within_5_minutes(),
        Some(token.as_str()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn an_old_login_is_refused_with_max_age() {
    let token = issuer()
        .access_token("u")
        .claim("acr", "urn:example:mfa")
        .auth_time(now() - 301)
        .sign()
        .unwrap();
    let reply = send(
        &auth().build().unwrap(),
        &mfa_within_5_minutes(),
        Some(token.as_str()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.kind,
        Some(AuthErrorKind::InsufficientUserAuthentication)
    );
    assert_eq!(reply.challenges, [CHALLENGE]);
}

#[tokio::test]
async fn a_weak_login_is_refused_with_acr_values() {
    let token = issuer()
        .access_token("u")
        .claim("acr", "urn:example:password")
        .auth_time(now())
        .sign()
        .unwrap();
    let reply = send(
        &auth().build().unwrap(),
        &mfa_within_5_minutes(),
        Some(token.as_str()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenges, [CHALLENGE]);
}

#[tokio::test]
async fn a_token_without_auth_time_is_refused() {
    let token = issuer()
        .access_token("u")
        .claim("acr", "urn:example:mfa")
        .sign()
        .unwrap();
    let max_age_only = StepUpLayer::builder()
        .max_age(Duration::from_secs(60))
        .build()
        .unwrap();
    let reply = send(
        &auth().build().unwrap(),
        &max_age_only,
        Some(token.as_str()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenges,
        [
            r#"Bearer realm="api", error="insufficient_user_authentication", error_description="a more recent or stronger authentication is required", max_age=60"#
        ]
    );
}

#[tokio::test]
async fn without_a_verified_token_nothing_passes() {
    let auth = auth().optional().build().unwrap();
    let reply = send(&auth, &mfa_within_5_minutes(), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.kind, Some(AuthErrorKind::MissingCredentials));
    assert_eq!(reply.challenges, [r#"Bearer realm="api""#]);
}

#[tokio::test]
async fn step_up_challenges_name_every_scheme_and_the_metadata() {
    let dpop = Dpop::builder()
        .base_url("https://api.example.com")
        .algorithms([Algorithm::ES256])
        .build()
        .unwrap();
    let metadata = ProtectedResourceMetadata::builder("https://api.example.com")
        .authorization_server("https://idp.example.com")
        .dpop(&dpop)
        .build()
        .unwrap();
    let url = metadata.metadata_url().unwrap();
    assert_eq!(
        url,
        "https://api.example.com/.well-known/oauth-protected-resource"
    );
    let auth = auth()
        .presentation(dpop.or_bearer())
        .resource_metadata(url)
        .build()
        .unwrap();
    let token = issuer().access_token("u").sign().unwrap();
    let reply = send(&auth, &mfa_within_5_minutes(), Some(token.as_str())).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let params = r#"error="insufficient_user_authentication", error_description="a more recent or stronger authentication is required", acr_values="urn:example:mfa", max_age=300"#;
    assert_eq!(
        reply.challenges,
        [
            format!(r#"Bearer realm="api", {params}, resource_metadata="{url}""#),
            format!(r#"DPoP realm="api", {params}, algs="ES256", resource_metadata="{url}""#),
        ]
    );
    // And a request without credentials: the metadata, no error.
    let reply = send(&auth, &mfa_within_5_minutes(), None).await;
    assert_eq!(
        reply.challenges,
        [
            format!(r#"Bearer realm="api", resource_metadata="{url}""#),
            format!(r#"DPoP realm="api", algs="ES256", resource_metadata="{url}""#),
        ]
    );
}

#[tokio::test]
async fn the_metadata_service_serves_the_document() {
    let metadata = ProtectedResourceMetadata::builder("https://api.example.com")
        .authorization_servers(["https://idp.example.com"])
        .scopes(["read", "write"])
        .build()
        .unwrap();
    let response = metadata
        .clone()
        .oneshot(Request::get(metadata.well_known_path()).body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let json: Value = serde_json::from_str(response.body()).unwrap();
    assert_eq!(json["resource"], "https://api.example.com");
    assert_eq!(json["authorization_servers"][0], "https://idp.example.com");
    assert_eq!(
        json["scopes_supported"],
        serde_json::json!(["read", "write"])
    );
    assert_eq!(
        json["bearer_methods_supported"],
        serde_json::json!(["header"])
    );
    let response = metadata
        .oneshot(Request::post("/").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "GET, HEAD");
}

#[test]
fn a_bad_metadata_url_fails_at_build() {
    assert!(auth().resource_metadata("not a url").build().is_err());
    assert!(
        auth()
            .resource_metadata("https://a.example/\"x")
            .build()
            .is_err()
    );
}
