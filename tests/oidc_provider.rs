//! Access tokens from a real OpenID provider (`oidc-provider`, run by
//! tests/oidc/provider.mjs): RFC 9068 `at+jwt` tokens by `client_credentials`
//! with a resource indicator, verified through OpenID discovery.

#[path = "support/oidc.rs"]
mod oidc;

use std::time::Duration;

use axum::{Router, routing::get};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tower::ServiceExt;
use tower_jwt_auth::{Claims, JwtAuthLayer, Verifier, keys::RemoteJwks};

use oidc::{Keys, Provider, ProviderOptions};

const SCOPE: &str = "read write";

/// One provider for the tests of this binary, each on its own runtime.
async fn idp() -> Option<&'static Provider> {
    static IDP: OnceCell<Option<Provider>> = OnceCell::const_new();
    IDP.get_or_init(|| {
        Provider::start(ProviderOptions::new().claims(json!({
            "roles": ["ADMIN"],
            "realm_access": {"roles": ["ADMIN", "USER"]},
        })))
    })
    .await
    .as_ref()
}

/// The RFC 9068 verifier of `idp`'s tokens, its keys found by discovery.
async fn verifier(idp: &Provider) -> Verifier {
    let remote = RemoteJwks::discover(idp.issuer()).build().await.unwrap();
    Verifier::builder()
        .jwks(remote)
        .issuer(idp.issuer())
        .audience(idp.audience())
        .rfc9068()
        .build()
        .unwrap()
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

async fn verifies(alg: &str) {
    let Some(idp) = idp().await else { return };
    let token = idp.token(alg, SCOPE).await;

    let header = header_of(&token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], alg);
    assert_eq!(header["kid"], idp.signing_kid(alg).as_str());

    let claims = verifier(idp).await.verify::<Value>(&token).unwrap();
    let client = oidc::client_id(alg);
    assert_eq!(claims.subject(), Some(client.as_str()));
    assert_eq!(claims["client_id"], client.as_str());
    assert_eq!(claims["scope"], SCOPE);
    assert_eq!(claims.registered().iss.as_deref(), Some(idp.issuer()));
    assert_eq!(claims.registered().aud, [idp.audience()]);
    assert_eq!(claims["roles"], json!(["ADMIN"]));
    assert_eq!(claims["realm_access"]["roles"], json!(["ADMIN", "USER"]));
}

#[tokio::test]
async fn rs256_access_token_verifies() {
    verifies("RS256").await;
}

#[tokio::test]
async fn es256_access_token_verifies() {
    verifies("ES256").await;
}

#[tokio::test]
async fn eddsa_access_token_verifies() {
    verifies("EdDSA").await;
}

#[tokio::test]
async fn scopes_unknown_to_the_resource_server_are_dropped() {
    let Some(idp) = idp().await else { return };
    let token = idp.token("ES256", "read bogus").await;
    let claims = verifier(idp).await.verify::<Value>(&token).unwrap();
    assert_eq!(claims["scope"], "read");
}

fn app(verifier: Verifier) -> Router {
    Router::new()
        .route(
            "/me",
            get(|claims: Claims<Value>| async move { claims["client_id"].to_string() }),
        )
        .layer(JwtAuthLayer::<Value>::new(verifier))
}

async fn call(app: &Router, token: Option<&str>) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get("/me");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        challenge,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn layer_accepts_the_providers_token_and_refuses_another_issuers() {
    let Some(idp) = idp().await else { return };
    let Some(other) = Provider::start(ProviderOptions::new().algs(&["ES256"])).await else {
        return;
    };
    assert_ne!(other.issuer(), idp.issuer());
    assert_eq!(other.audience(), idp.audience());
    let app = app(verifier(idp).await);

    let token = idp.token("RS256", SCOPE).await;
    let (status, challenge, body) = call(&app, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{challenge:?}");
    assert_eq!(body, "\"client-rs256\"");

    // Another issuer's token: its key is not in our set.
    let foreign = other.token("ES256", SCOPE).await;
    let (status, challenge, _) = call(&app, Some(&foreign)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge.as_deref(),
        Some(
            r#"Bearer realm="api", error="invalid_token", error_description="the token key is not known""#
        )
    );

    let (status, challenge, _) = call(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="api""#));
}

/// The harness's restarts: same port and issuer; keys kept, rotated (the new
/// key signs, the old one is still published) or replaced. The layer's
/// refetch on an unknown `kid` picks the new keys up.
#[tokio::test]
async fn restarts_keep_rotate_or_replace_the_keys() {
    let Some(mut idp) = Provider::start(ProviderOptions::new().algs(&["ES256"])).await else {
        return;
    };
    let issuer = idp.issuer().to_owned();
    let first = idp.token("ES256", SCOPE).await;
    let first_kid = idp.signing_kid("ES256");
    let remote = RemoteJwks::discover(idp.issuer())
        .unknown_kid_cooldown(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let verifier = Verifier::builder()
        .jwks(remote.clone())
        .issuer(idp.issuer())
        .audience(idp.audience())
        .rfc9068()
        .build()
        .unwrap();
    let app = app(verifier);
    assert_eq!(call(&app, Some(&first)).await.0, StatusCode::OK);

    idp.restart(Keys::Keep).await;
    assert_eq!(idp.issuer(), issuer);
    assert_eq!(idp.kids(), [first_kid.as_str()]);
    let kept = idp.token("ES256", SCOPE).await;
    assert_eq!(header_of(&kept)["kid"], first_kid.as_str());
    assert_eq!(call(&app, Some(&kept)).await.0, StatusCode::OK);

    idp.restart(Keys::Rotate).await;
    let rotated_kid = idp.signing_kid("ES256");
    assert_ne!(rotated_kid, first_kid);
    assert_eq!(idp.kids(), [rotated_kid.as_str(), first_kid.as_str()]);
    let rotated = idp.token("ES256", SCOPE).await;
    assert_eq!(header_of(&rotated)["kid"], rotated_kid.as_str());
    assert_eq!(call(&app, Some(&rotated)).await.0, StatusCode::OK);
    assert_eq!(call(&app, Some(&first)).await.0, StatusCode::OK);
    assert_eq!(remote.key_ids().len(), 2);

    idp.restart(Keys::Replace).await;
    let replaced_kid = idp.signing_kid("ES256");
    assert_eq!(idp.kids(), [replaced_kid.as_str()]);
    let replaced = idp.token("ES256", SCOPE).await;
    assert_eq!(call(&app, Some(&replaced)).await.0, StatusCode::OK);
    // The old keys are gone from the refetched set.
    let (status, challenge, _) = call(&app, Some(&first)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("the token key is not known"));

    idp.stop();
    assert!(!idp.is_running());
}
