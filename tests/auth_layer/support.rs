//! Shared fixtures of the `auth_layer` tests: keys, token minting, requests,
//! the `send!` macros and the rejection assertions.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{
    Request, Response, StatusCode,
    header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE},
};
use jsonwebtoken as jwt;
use serde::Deserialize;
use serde_json::Value;
use tower::Service;
use tower_jwt_auth::{
    Algorithm, AuthError, AuthErrorKind, Claims, JwtAuthLayer, SigningKey, TokenIssuer,
    VerificationKey, Verifier, VerifierBuilder,
};

// ---------------------------------------------------------------------------
// Keys and claims
// ---------------------------------------------------------------------------

pub const SECRET: &[u8] = b"integration-test-secret-0123456789-abcdef";
pub const OTHER_SECRET: &[u8] = b"another-integration-test-secret-9876543210";
pub const SECRET_64: &[u8] = b"a-sixty-four-byte-secret-for-hs512-0123456789-0123456789-abcdefg";
pub const ISS: &str = "https://issuer.test";
pub const AUD: &str = "api";

pub const RSA_PRIVATE: &[u8] = include_bytes!("../keys/rsa_private.pem");
pub const RSA_PUBLIC: &[u8] = include_bytes!("../keys/rsa_public.pem");
pub const RSA2_PRIVATE: &[u8] = include_bytes!("../keys/rsa2_private.pem");
pub const EC_PRIVATE: &[u8] = include_bytes!("../keys/ec_private.pem");
pub const EC_PUBLIC: &[u8] = include_bytes!("../keys/ec_public.pem");
pub const ED_PRIVATE: &[u8] = include_bytes!("../keys/ed_private.pem");
pub const ED_PUBLIC: &[u8] = include_bytes!("../keys/ed_public.pem");

#[derive(Clone, Debug, Deserialize)]
pub struct MyClaims {
    #[serde(default)]
    pub role: Option<Value>,
    #[serde(default)]
    pub name: Option<String>,
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn b64(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

// ---------------------------------------------------------------------------
// Verifiers and layers
// ---------------------------------------------------------------------------

/// A verifier builder for our issuer and audience with `key` only.
pub fn verifier_builder(key: VerificationKey) -> VerifierBuilder {
    Verifier::builder().key(key).issuer(ISS).audience(AUD)
}

/// A verifier for our issuer and audience with `key` only.
pub fn verifier_with(key: VerificationKey) -> Verifier {
    verifier_builder(key).build().unwrap()
}

/// A verifier for our issuer and audience with the HMAC key of `SECRET`.
pub fn verifier() -> Verifier {
    verifier_with(VerificationKey::hmac(SECRET).unwrap())
}

pub fn layer() -> JwtAuthLayer<MyClaims> {
    JwtAuthLayer::new(verifier())
}

pub fn layer_with(verifier: Verifier) -> JwtAuthLayer<MyClaims> {
    JwtAuthLayer::new(verifier)
}

/// `layer()` in optional mode.
pub fn optional_layer() -> JwtAuthLayer<MyClaims> {
    JwtAuthLayer::builder(verifier())
        .optional()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

/// An issuer for our issuer and audience signing with `key`.
pub fn issuer_with(key: SigningKey) -> TokenIssuer {
    TokenIssuer::new(key).issuer(ISS).audience(AUD)
}

/// An issuer for our issuer and audience signing HS256 with `SECRET`.
pub fn issuer() -> TokenIssuer {
    issuer_with(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
}

pub fn valid_token() -> String {
    issuer()
        .access_token("user-1")
        .role("USER")
        .sign()
        .unwrap()
        .into_string()
}

/// Signs the already-encoded `header_b64.payload_b64` with `key`.
pub fn sign_encoded(
    header_b64: &str,
    payload_b64: &str,
    key: &jwt::EncodingKey,
    alg: jwt::Algorithm,
) -> String {
    tower_jwt_auth::install_crypto_provider();
    let message = format!("{header_b64}.{payload_b64}");
    let signature = jwt::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// Signs `header.payload` (both raw JSON text, used verbatim) with `key`.
pub fn sign_raw(
    header: &str,
    payload: &str,
    key: &jwt::EncodingKey,
    alg: jwt::Algorithm,
) -> String {
    sign_encoded(&b64(header), &b64(payload), key, alg)
}

/// Signs the already-encoded `header_b64.payload_b64` HS256 with `SECRET`.
pub fn sign_segments(header_b64: &str, payload_b64: &str) -> String {
    let key = jwt::EncodingKey::from_secret(SECRET).unwrap();
    sign_encoded(header_b64, payload_b64, &key, jwt::Algorithm::HS256)
}

/// HS256 with the verifier's secret over raw JSON header and payload.
pub fn hs(header: &str, payload: &str) -> String {
    sign_segments(&b64(header), &b64(payload))
}

pub const HS_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// A payload accepted by `verifier()`, with `extra` members appended
/// (`extra` starts with a comma, or is empty).
pub fn payload(extra: &str) -> String {
    format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"user-1","exp":{}{extra}}}"#,
        now() + 600
    )
}

/// A payload accepted by `verifier()` except perhaps for `exp`, given as raw
/// JSON text.
pub fn with_exp(exp: &str) -> String {
    format!(r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"user-1","exp":{exp}}}"#)
}

// ---------------------------------------------------------------------------
// Requests and sending
// ---------------------------------------------------------------------------

pub type Req = Request<String>;
pub type Res = Response<String>;

pub fn request() -> http::request::Builder {
    Request::builder().uri("/resource")
}

pub fn bearer(token: &str) -> Req {
    request()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap()
}

pub fn with_auth(value: &str) -> Req {
    request()
        .header(AUTHORIZATION, value)
        .body(String::new())
        .unwrap()
}

pub fn no_auth() -> Req {
    request().body(String::new()).unwrap()
}

/// The inner service: counts its calls, answers 200 "ok", and copies the
/// claims it saw into the response extensions so the tests can read them.
pub fn inner(
    calls: Arc<AtomicUsize>,
) -> impl Service<Req, Response = Res, Error = Infallible> + Clone {
    tower::service_fn(move |req: Req| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let mut res = Response::new("ok".to_owned());
            if let Some(claims) = req.extensions().get::<Claims<MyClaims>>() {
                res.extensions_mut().insert(claims.clone());
            }
            Ok::<_, Infallible>(res)
        }
    })
}

/// Wraps the counting inner service with `$layer`, sends `$req` once, and
/// returns the response and how often the inner service was called.
macro_rules! send {
    ($layer:expr, $req:expr) => {{
        let calls = ::std::sync::Arc::new(::std::sync::atomic::AtomicUsize::new(0));
        let svc = ::tower::ServiceBuilder::new()
            .layer($layer)
            .service($crate::support::inner(::std::sync::Arc::clone(&calls)));
        let res: $crate::support::Res = ::tower::ServiceExt::oneshot(svc, $req).await.unwrap();
        (res, calls.load(::std::sync::atomic::Ordering::SeqCst))
    }};
}
pub(crate) use send;

/// `send!` through the authentication layer `$auth`, then the role layer `$role`.
macro_rules! send_role {
    ($auth:expr, $role:expr, $req:expr) => {
        $crate::support::send!(
            ::tower::ServiceBuilder::new().layer($auth).layer($role),
            $req
        )
    };
}
pub(crate) use send_role;

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

/// The descriptions the crate must send, copied here independently so the
/// tests fail if the crate's table changes.
pub fn description(kind: AuthErrorKind) -> &'static str {
    match kind {
        AuthErrorKind::MissingCredentials => "a bearer token is required",
        AuthErrorKind::InvalidRequest => "the authorization request is malformed",
        AuthErrorKind::TokenTooLong => "the token is too long",
        AuthErrorKind::Malformed => "the token is malformed",
        AuthErrorKind::UnsupportedAlgorithm => "the token algorithm is not accepted",
        AuthErrorKind::UnknownKey => "the token key is not known",
        AuthErrorKind::InvalidSignature => "the token signature is invalid",
        AuthErrorKind::UnsupportedCritical => "the token uses an unsupported critical header",
        AuthErrorKind::InvalidType => "the token type is not accepted",
        AuthErrorKind::DuplicateClaim => "the token repeats a claim",
        AuthErrorKind::MissingClaim => "the token lacks a required claim",
        AuthErrorKind::InvalidClaims => "the token claims are invalid",
        AuthErrorKind::Expired => "the token has expired",
        AuthErrorKind::NotYetValid => "the token is not valid yet",
        AuthErrorKind::InvalidIssuer => "the token issuer is not accepted",
        AuthErrorKind::InvalidAudience => "the token audience is not accepted",
        AuthErrorKind::Rejected => "the token was rejected",
        AuthErrorKind::InsufficientScope => "the token lacks the required role",
        AuthErrorKind::Unavailable => "authentication is temporarily unavailable",
        other => panic!("no expected description for {other:?}"),
    }
}

#[track_caller]
pub fn assert_rejection(
    res: &Res,
    calls: usize,
    kind: AuthErrorKind,
    status: u16,
    challenge: Option<&str>,
    error: &str,
    description: &str,
) {
    assert_eq!(calls, 0, "the inner service must not be called");
    assert_eq!(res.status().as_u16(), status, "status");
    assert_eq!(
        res.headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap()),
        challenge,
        "WWW-Authenticate"
    );
    assert_eq!(
        res.headers().get_all(WWW_AUTHENTICATE).iter().count(),
        usize::from(challenge.is_some())
    );
    assert_eq!(
        res.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap()),
        Some("application/json")
    );
    assert_eq!(
        res.body(),
        &format!(r#"{{"error":"{error}","error_description":"{description}"}}"#),
        "body"
    );
    let attached = res
        .extensions()
        .get::<AuthError>()
        .expect("AuthError in the response extensions");
    assert_eq!(attached.kind(), kind, "AuthError kind");
    assert_eq!(attached.description(), description);
    assert!(res.extensions().get::<Claims<MyClaims>>().is_none());
}

#[track_caller]
pub fn assert_invalid_token(res: &Res, calls: usize, kind: AuthErrorKind) {
    assert_invalid_token_with(res, calls, kind, description(kind));
}

#[track_caller]
pub fn assert_invalid_token_with(res: &Res, calls: usize, kind: AuthErrorKind, desc: &str) {
    let challenge =
        format!(r#"Bearer realm="api", error="invalid_token", error_description="{desc}""#);
    assert_rejection(
        res,
        calls,
        kind,
        401,
        Some(&challenge),
        "invalid_token",
        desc,
    );
}

#[track_caller]
pub fn assert_invalid_request(res: &Res, calls: usize, desc: &str) {
    let challenge =
        format!(r#"Bearer realm="api", error="invalid_request", error_description="{desc}""#);
    assert_rejection(
        res,
        calls,
        AuthErrorKind::InvalidRequest,
        400,
        Some(&challenge),
        "invalid_request",
        desc,
    );
}

#[track_caller]
pub fn assert_missing_credentials(res: &Res, calls: usize) {
    assert_rejection(
        res,
        calls,
        AuthErrorKind::MissingCredentials,
        401,
        Some(r#"Bearer realm="api""#),
        "unauthorized",
        "a bearer token is required",
    );
}

#[track_caller]
pub fn assert_forbidden(res: &Res, calls: usize) {
    assert_rejection(
        res,
        calls,
        AuthErrorKind::InsufficientScope,
        403,
        Some(
            r#"Bearer realm="api", error="insufficient_scope", error_description="the token lacks the required role""#,
        ),
        "insufficient_scope",
        "the token lacks the required role",
    );
}

/// The request reached the inner service exactly once, and the response is
/// the inner service's own.
#[track_caller]
pub fn assert_passed(res: &Res, calls: usize) {
    assert_eq!(res.status(), StatusCode::OK, "body: {}", res.body());
    assert_eq!(calls, 1, "the inner service must be called once");
    assert_eq!(res.body(), "ok");
    assert!(res.extensions().get::<AuthError>().is_none());
    assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
}

#[track_caller]
pub fn claims_of(res: &Res) -> &Claims<MyClaims> {
    res.extensions()
        .get::<Claims<MyClaims>>()
        .expect("Claims<MyClaims> in the request extensions")
}
