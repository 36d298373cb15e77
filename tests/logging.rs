//! No token, secret or claim value ever reaches the logs, at any level.
//!
//! This test is alone in its binary and installs a global subscriber:
//! tracing's per-callsite interest cache makes thread-local subscribers
//! unreliable while other tests run in parallel.

use std::{
    convert::Infallible,
    io,
    sync::{Arc, Mutex},
};

use http::{Request, Response, header};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_jwt_auth::{
    Algorithm, AuthError, Claims, JwtAuthLayer, RequireRoleLayer, SigningKey, TokenIssuer,
    TokenSource, VerificationKey, Verifier,
};

const SECRET: &[u8] = b"logging-test-secret-0123456789-abcdefgh";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Layer = JwtAuthLayer<serde_json::Value>;

async fn send(layer: Layer, role: Option<&str>, request: Request<String>) {
    let inner = service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let role = role.map(|r| RequireRoleLayer::any_of([r]));
    let service = ServiceBuilder::new()
        .layer(layer)
        .option_layer(role)
        .service(inner);
    let _ = service.oneshot(request).await;
}

fn bearer(token: &str) -> Request<String> {
    Request::get("/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap()
}

#[tokio::test]
async fn logs_never_contain_tokens_or_secrets() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    )
    .unwrap();

    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .build()
        .unwrap();
    let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap());
    let valid = issuer
        .access_token("user-secret-subject")
        .role("ADMIN")
        .claim("name", "Personal Name")
        .sign()
        .unwrap()
        .into_string();
    let short_lived = issuer
        .access_token("short-lived-secret-subject")
        .claim("nickname", "Hidden Nick")
        .expires_in(std::time::Duration::from_secs(1))
        .sign()
        .unwrap()
        .into_string();
    let forged = {
        let parts: Vec<&str> = valid.split('.').collect();
        format!("{}.{}.{}", parts[0], parts[1].to_lowercase(), parts[2])
    };

    let plain = JwtAuthLayer::new(verifier.clone());
    let optional = JwtAuthLayer::builder(verifier.clone())
        .optional()
        .build()
        .unwrap();
    let rejecting = JwtAuthLayer::builder(verifier.clone())
        .check(|_: &Claims<serde_json::Value>| async {
            Err(AuthError::unavailable(io::Error::other("backend failed")))
        })
        .build()
        .unwrap();
    let cookie = JwtAuthLayer::builder(verifier)
        .token_source(TokenSource::Cookie("access_token".into()))
        .build()
        .unwrap();

    let tokens = [valid.clone(), short_lived.clone(), forged.clone()];
    for token in &tokens {
        send(plain.clone(), None, bearer(token)).await;
        send(optional.clone(), None, bearer(token)).await;
        send(plain.clone(), Some("SUPER"), bearer(token)).await;
        send(rejecting.clone(), None, bearer(token)).await;
        let with_cookie = Request::get("/")
            .header(header::COOKIE, format!("access_token={token}"))
            .body(String::new())
            .unwrap();
        send(cookie.clone(), None, with_cookie).await;
    }
    send(plain.clone(), None, bearer(&format!("{valid} {valid}"))).await;
    #[cfg(feature = "axum")]
    missing_claims_are_logged_not_answered(plain.clone(), &valid).await;
    tracing::info!("capture-marker");

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The capture works, and the layers did log the rejections.
    assert!(logs.contains("capture-marker"), "{logs}");
    assert!(logs.contains("bearer authentication failed"), "{logs}");
    assert!(logs.contains("role requirement not met"), "{logs}");
    assert!(logs.contains("token rejected by check"), "{logs}");
    assert!(logs.contains("InvalidSignature"), "{logs}");
    #[cfg(feature = "axum")]
    assert!(
        logs.contains("Claims<logging::OtherClaims>"),
        "the extractor's rejection names the claims type in the log: {logs}"
    );

    let secret = std::str::from_utf8(SECRET).unwrap();
    assert!(!logs.contains(secret), "the secret leaked");
    for token in &tokens {
        assert!(!logs.contains(token.as_str()), "a token leaked");
        for part in token.split('.') {
            assert!(!logs.contains(part), "a token segment leaked: {part}");
        }
    }
    for claim in [
        "user-secret-subject",
        "short-lived-secret-subject",
        "Personal Name",
        "Hidden Nick",
        "ADMIN",
    ] {
        assert!(!logs.contains(claim), "a claim value leaked: {claim}");
    }
}

#[cfg(feature = "axum")]
#[derive(Clone, serde::Deserialize)]
struct OtherClaims {}

/// A handler that extracts claims of another type than the layer's gets a
/// 500 whose body is generic; the type name goes to the log only.
#[cfg(feature = "axum")]
async fn missing_claims_are_logged_not_answered(layer: Layer, token: &str) {
    use axum::{Router, body::Body, routing::get};
    use http_body_util::BodyExt;

    let app: Router = Router::new()
        .route(
            "/",
            get(|_claims: Claims<OtherClaims>| async { "unreachable" }),
        )
        .layer(layer);
    let request = Request::get("/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = std::str::from_utf8(&body).unwrap();
    assert_eq!(body, "internal server error");
    for leak in ["OtherClaims", "logging::", "Claims<", "JwtAuthLayer"] {
        assert!(!body.contains(leak), "{leak} in the body: {body}");
    }
}
