//! The rejection-path catalogue of `JwtAuthLayer` and `RequireRoleLayer`.
//!
//! Every rejection test checks the exact status, the exact `WWW-Authenticate`
//! challenge, the exact JSON body, the `AuthError` kind in the response
//! extensions, and that the inner service was never called. Hostile tokens are
//! minted by hand (base64url + JSON + `jsonwebtoken::crypto::sign`); valid ones
//! with the crate's own `TokenIssuer`.
//!
//! References: RFC 6750 (bearer tokens), RFC 7515 (JWS), RFC 7519 (JWT),
//! RFC 8725 (JWT best current practices), RFC 9068 (JWT access tokens).

use std::{
    convert::Infallible,
    io,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{
    HeaderName, HeaderValue, Request, Response, StatusCode,
    header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, WWW_AUTHENTICATE},
};
use jsonwebtoken as jwt;
use serde::Deserialize;
use serde_json::Value;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_jwt_auth::{
    Algorithm, AuthError, AuthErrorKind, Claims, JwtAuthLayer, RequireRoleLayer, RoleHierarchy,
    SigningKey, TokenIssuer, TokenSource, VerificationKey, Verifier,
};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const SECRET: &[u8] = b"integration-test-secret-0123456789-abcdef";
const OTHER_SECRET: &[u8] = b"another-integration-test-secret-9876543210";
const SECRET_64: &[u8] = b"a-sixty-four-byte-secret-for-hs512-0123456789-0123456789-abcdefg";
const ISS: &str = "https://issuer.test";
const AUD: &str = "api";

const RSA_PRIVATE: &[u8] = include_bytes!("keys/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("keys/rsa_public.pem");
const RSA2_PRIVATE: &[u8] = include_bytes!("keys/rsa2_private.pem");
const EC_PRIVATE: &[u8] = include_bytes!("keys/ec_private.pem");
const EC_PUBLIC: &[u8] = include_bytes!("keys/ec_public.pem");
const ED_PRIVATE: &[u8] = include_bytes!("keys/ed_private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("keys/ed_public.pem");

#[derive(Clone, Debug, Deserialize)]
struct MyClaims {
    #[serde(default)]
    role: Option<Value>,
    #[serde(default)]
    name: Option<String>,
}

type Req = Request<String>;
type Res = Response<String>;

/// The inner service: counts its calls, answers 200 "ok", and copies the
/// claims it saw into the response extensions so the tests can read them.
fn inner(calls: Arc<AtomicUsize>) -> impl Service<Req, Response = Res, Error = Infallible> + Clone {
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
        let calls = Arc::new(AtomicUsize::new(0));
        let svc = ServiceBuilder::new()
            .layer($layer)
            .service(inner(Arc::clone(&calls)));
        let res: Res = svc.oneshot($req).await.unwrap();
        (res, calls.load(Ordering::SeqCst))
    }};
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

fn verifier() -> Verifier {
    verifier_with(VerificationKey::hmac(SECRET).unwrap())
}

/// A verifier for our issuer and audience with `key` only.
fn verifier_with(key: VerificationKey) -> Verifier {
    Verifier::builder()
        .key(key)
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap()
}

fn layer() -> JwtAuthLayer<MyClaims> {
    JwtAuthLayer::new(verifier())
}

fn layer_with(verifier: Verifier) -> JwtAuthLayer<MyClaims> {
    JwtAuthLayer::new(verifier)
}

fn issuer() -> TokenIssuer {
    TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer(ISS)
        .audience(AUD)
}

fn valid_token() -> String {
    issuer()
        .access_token("user-1")
        .role("USER")
        .sign()
        .unwrap()
        .into_string()
}

fn request() -> http::request::Builder {
    Request::builder().uri("/resource")
}

fn bearer(token: &str) -> Req {
    request()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap()
}

fn with_auth(value: &str) -> Req {
    request()
        .header(AUTHORIZATION, value)
        .body(String::new())
        .unwrap()
}

fn no_auth() -> Req {
    request().body(String::new()).unwrap()
}

fn grpc(token: Option<&str>, content_type: &str) -> Req {
    let mut builder = request()
        .method(http::Method::POST)
        .header(CONTENT_TYPE, content_type);
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(String::new()).unwrap()
}

/// Signs `header.payload` (both raw JSON text, used verbatim) with `key`.
fn sign_raw(header: &str, payload: &str, key: &jwt::EncodingKey, alg: jwt::Algorithm) -> String {
    tower_jwt_auth::install_crypto_provider();
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature = jwt::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// Signs the already-encoded `header_b64.payload_b64` with `key`.
fn sign_segments(header_b64: &str, payload_b64: &str) -> String {
    tower_jwt_auth::install_crypto_provider();
    let message = format!("{header_b64}.{payload_b64}");
    let key = jwt::EncodingKey::from_secret(SECRET).unwrap();
    let signature = jwt::crypto::sign(message.as_bytes(), &key, jwt::Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

/// HS256 with the verifier's secret over raw JSON header and payload.
fn hs(header: &str, payload: &str) -> String {
    let key = jwt::EncodingKey::from_secret(SECRET).unwrap();
    sign_raw(header, payload, &key, jwt::Algorithm::HS256)
}

const HS_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// A payload accepted by `verifier()`, with `extra` members appended
/// (`extra` starts with a comma, or is empty).
fn payload(extra: &str) -> String {
    format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"user-1","exp":{}{extra}}}"#,
        now() + 600
    )
}

/// The descriptions the crate must send, copied here independently so the
/// tests fail if the crate's table changes.
fn description(kind: AuthErrorKind) -> &'static str {
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

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

#[track_caller]
fn assert_rejection(
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
fn assert_invalid_token(res: &Res, calls: usize, kind: AuthErrorKind) {
    assert_invalid_token_with(res, calls, kind, description(kind));
}

#[track_caller]
fn assert_invalid_token_with(res: &Res, calls: usize, kind: AuthErrorKind, desc: &str) {
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
fn assert_invalid_request(res: &Res, calls: usize, desc: &str) {
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
fn assert_missing_credentials(res: &Res, calls: usize) {
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
fn assert_forbidden(res: &Res, calls: usize) {
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
fn assert_passed(res: &Res, calls: usize) {
    assert_eq!(res.status(), StatusCode::OK, "body: {}", res.body());
    assert_eq!(calls, 1, "the inner service must be called once");
    assert_eq!(res.body(), "ok");
    assert!(res.extensions().get::<AuthError>().is_none());
    assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
}

#[track_caller]
fn claims_of(res: &Res) -> &Claims<MyClaims> {
    res.extensions()
        .get::<Claims<MyClaims>>()
        .expect("Claims<MyClaims> in the request extensions")
}

// ---------------------------------------------------------------------------
// Positive paths
// ---------------------------------------------------------------------------

#[tokio::test]
async fn valid_token_passes_with_claims() {
    let token = issuer()
        .access_token("user-42")
        .role("ADMIN")
        .claim("name", "Ada")
        .expires_in(Duration::from_secs(300))
        .sign()
        .unwrap();
    let (res, calls) = send!(layer(), bearer(token.as_str()));
    assert_passed(&res, calls);
    let claims = claims_of(&res);
    assert_eq!(claims.subject(), Some("user-42"));
    assert_eq!(claims.role, Some(Value::from("ADMIN")));
    assert_eq!(claims.name.as_deref(), Some("Ada"));
    let registered = claims.registered();
    assert_eq!(registered.iss.as_deref(), Some(ISS));
    assert_eq!(registered.aud, vec![AUD.to_owned()]);
    assert_eq!(registered.exp, Some(token.expires_at()));
    assert_eq!(registered.jti.as_deref(), Some(token.jti()));
    let iat = registered.iat.expect("iat");
    assert_eq!(registered.exp.unwrap() - iat, 300);
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive_and_extra_spaces_are_tolerated() {
    let token = valid_token();
    for value in [
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("Bearer    {token}"),
    ] {
        let (res, calls) = send!(layer(), with_auth(&value));
        assert_passed(&res, calls);
    }
}

#[tokio::test]
async fn one_service_counts_each_accepted_call_and_none_of_the_rejected() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut svc = ServiceBuilder::new()
        .layer(layer())
        .service(inner(Arc::clone(&calls)));
    let token = valid_token();
    for i in 0..6 {
        let req = if i % 2 == 0 {
            bearer(&token)
        } else {
            bearer("a.b.c")
        };
        let res = svc.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(res.status().as_u16(), if i % 2 == 0 { 200 } else { 401 });
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn rsa_ec_ed_and_pss_keys_verify_their_own_tokens() {
    let cases: Vec<(SigningKey, VerificationKey)> = vec![
        (
            SigningKey::rsa_pem(Algorithm::RS256, RSA_PRIVATE).unwrap(),
            VerificationKey::rsa_pem(RSA_PUBLIC).unwrap(),
        ),
        (
            SigningKey::rsa_pem(Algorithm::PS256, RSA_PRIVATE).unwrap(),
            VerificationKey::rsa_pem(RSA_PUBLIC)
                .unwrap()
                .with_algorithms([Algorithm::PS256]),
        ),
        (
            SigningKey::ec_pem(Algorithm::ES256, EC_PRIVATE).unwrap(),
            VerificationKey::ec_pem(EC_PUBLIC).unwrap(),
        ),
        (
            SigningKey::ed_pem(ED_PRIVATE).unwrap(),
            VerificationKey::ed_pem(ED_PUBLIC).unwrap(),
        ),
    ];
    for (signing, verifying) in cases {
        let alg = signing.algorithm();
        let token = TokenIssuer::new(signing)
            .access_token("user-1")
            .sign()
            .unwrap();
        let verifier = Verifier::builder().key(verifying).build().unwrap();
        let (res, calls) = send!(layer_with(verifier), bearer(token.as_str()));
        assert_passed(&res, calls);
        assert_eq!(claims_of(&res).subject(), Some("user-1"), "{alg}");
    }
}

// ---------------------------------------------------------------------------
// Credentials in the request (RFC 6750 section 2.1, 3.1)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn no_authorization_header_is_401_without_error_code() {
    let (res, calls) = send!(layer(), no_auth());
    assert_missing_credentials(&res, calls);
}

#[tokio::test]
async fn other_schemes_carry_no_bearer_credentials() {
    for value in [
        "Basic dXNlcjpwYXNz",
        "Digest username=\"x\"",
        "Token abc",
        "Bearer\tabc",
    ] {
        let (res, calls) = send!(layer(), with_auth(value));
        assert_missing_credentials(&res, calls);
    }
}

#[tokio::test]
async fn two_authorization_headers_are_an_invalid_request() {
    let token = valid_token();
    let req = request()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    let (res, calls) = send!(layer(), req);
    assert_invalid_request(&res, calls, "more than one Authorization header");

    let req = request()
        .header(AUTHORIZATION, "Basic dXNlcjpwYXNz")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    let (res, calls) = send!(layer(), req);
    assert_invalid_request(&res, calls, "more than one Authorization header");
}

#[tokio::test]
async fn empty_bearer_value_is_an_invalid_request() {
    for value in ["Bearer", "Bearer ", "bearer    ", "Bearer ===="] {
        let (res, calls) = send!(layer(), with_auth(value));
        let desc = if value.ends_with('=') {
            "the bearer token is malformed"
        } else {
            "the bearer token is empty"
        };
        assert_invalid_request(&res, calls, desc);
    }
}

#[tokio::test]
async fn empty_authorization_header_is_an_invalid_request() {
    for value in ["", "   "] {
        let (res, calls) = send!(layer(), with_auth(value));
        assert_invalid_request(&res, calls, "the Authorization header is empty");
    }
}

#[tokio::test]
async fn bearer_with_two_words_is_an_invalid_request() {
    let token = valid_token();
    for value in ["Bearer a b".to_owned(), format!("Bearer {token} {token}")] {
        let (res, calls) = send!(layer(), with_auth(&value));
        assert_invalid_request(&res, calls, "the bearer token is malformed");
    }
}

#[tokio::test]
async fn non_b64token_characters_are_an_invalid_request() {
    let token = valid_token();
    let (h, rest) = token.split_once('.').unwrap();
    let cases = [
        format!("{token},"),
        format!("\"{token}\""),
        format!("{token};"),
        format!("{token}%"),
        format!("{h}=.{rest}"), // padding inside the token
        format!("{token}\\"),
        format!("{token}@"),
        "a=b".to_owned(),
    ];
    for value in cases {
        let (res, calls) = send!(layer(), bearer(&value));
        assert_invalid_request(&res, calls, "the bearer token is malformed");
    }
}

#[tokio::test]
async fn non_ascii_authorization_header_is_an_invalid_request() {
    let mut req = no_auth();
    req.headers_mut().insert(
        AUTHORIZATION,
        HeaderValue::from_bytes(b"Bearer abc\xffdef").unwrap(),
    );
    let (res, calls) = send!(layer(), req);
    assert_invalid_request(&res, calls, "the Authorization header is not valid ASCII");
}

#[tokio::test]
async fn query_string_tokens_are_never_read() {
    let token = valid_token();
    let req = Request::builder()
        .uri(format!("/resource?access_token={token}"))
        .body(String::new())
        .unwrap();
    let (res, calls) = send!(layer(), req);
    assert_missing_credentials(&res, calls);
}

// ---------------------------------------------------------------------------
// Algorithms (RFC 8725 sections 2.1, 3.1, 3.2)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn alg_none_with_empty_signature_is_refused() {
    let token = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(payload(""))
    );
    let (res, calls) = send!(layer(), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);
}

#[tokio::test]
async fn alg_none_spellings_are_refused_even_when_signed() {
    for alg in [
        "none", "None", "NONE", "nOnE", "", "hs256", "HS256 ", "HS-256", "\u{0}",
    ] {
        let header = serde_json::json!({ "alg": alg, "typ": "JWT" }).to_string();
        for token in [
            format!("{}.{}.", b64(&header), b64(payload(""))),
            hs(&header, &payload("")),
        ] {
            let (res, calls) = send!(layer(), bearer(&token));
            assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);
        }
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused_by_an_rsa_verifier() {
    // The classic algorithm-confusion attack: the public key PEM as HMAC secret.
    let key = jwt::EncodingKey::from_secret(RSA_PUBLIC).unwrap();
    let token = sign_raw(HS_HEADER, &payload(""), &key, jwt::Algorithm::HS256);
    let verifier = verifier_with(VerificationKey::rsa_pem(RSA_PUBLIC).unwrap());
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);
}

#[tokio::test]
async fn algorithm_confusion_through_kid_is_refused() {
    // An RSA key with kid "rsa" next to an HMAC key: an HS256 token naming
    // the RSA key's kid must not be verified with the RSA key bytes.
    let verifier = Verifier::builder()
        .key(
            VerificationKey::rsa_pem(RSA_PUBLIC)
                .unwrap()
                .with_kid("rsa"),
        )
        .key(VerificationKey::hmac(SECRET).unwrap().with_kid("hmac"))
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap();
    let key = jwt::EncodingKey::from_secret(RSA_PUBLIC).unwrap();
    let token = sign_raw(
        r#"{"alg":"HS256","kid":"rsa"}"#,
        &payload(""),
        &key,
        jwt::Algorithm::HS256,
    );
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);
}

#[tokio::test]
async fn rs256_token_is_refused_by_an_hmac_only_verifier() {
    let token = TokenIssuer::new(SigningKey::rsa_pem(Algorithm::RS256, RSA_PRIVATE).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .access_token("user-1")
        .sign()
        .unwrap();
    let (res, calls) = send!(layer(), bearer(token.as_str()));
    assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);
}

#[tokio::test]
async fn hs512_token_is_refused_when_the_key_allows_only_hs256() {
    let verifier = verifier_with(VerificationKey::hmac(SECRET_64).unwrap());
    let token = TokenIssuer::new(SigningKey::hmac(Algorithm::HS512, SECRET_64).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .access_token("user-1")
        .sign()
        .unwrap();
    let (res, calls) = send!(layer_with(verifier.clone()), bearer(token.as_str()));
    assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);

    // Control: the same token passes once HS512 is allowed for that key.
    let widened = verifier_with(
        VerificationKey::hmac(SECRET_64)
            .unwrap()
            .with_algorithms([Algorithm::HS256, Algorithm::HS512]),
    );
    let (res, calls) = send!(layer_with(widened), bearer(token.as_str()));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn es256_signature_under_an_es384_header_is_refused() {
    tower_jwt_auth::install_crypto_provider();
    let key = jwt::EncodingKey::from_ec_pem(EC_PRIVATE).unwrap();
    let message = format!("{}.{}", b64(r#"{"alg":"ES384"}"#), b64(payload("")));
    let signature = jwt::crypto::sign(message.as_bytes(), &key, jwt::Algorithm::ES256).unwrap();
    let token = format!("{message}.{signature}");
    let verifier = verifier_with(VerificationKey::ec_pem(EC_PUBLIC).unwrap());
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedAlgorithm);
}

#[tokio::test]
async fn token_signed_by_another_rsa_key_is_refused() {
    let key = jwt::EncodingKey::from_rsa_pem(RSA2_PRIVATE).unwrap();
    let token = sign_raw(
        r#"{"alg":"RS256"}"#,
        &payload(""),
        &key,
        jwt::Algorithm::RS256,
    );
    let verifier = verifier_with(VerificationKey::rsa_pem(RSA_PUBLIC).unwrap());
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

#[tokio::test]
async fn keys_embedded_in_the_header_are_ignored() {
    // jwk / jku / x5u / x5c in the header name the attacker's key; the
    // verifier must only ever use its configured keys (RFC 8725 section 3.10).
    let key = jwt::EncodingKey::from_rsa_pem(RSA2_PRIVATE).unwrap();
    let verifier = verifier_with(VerificationKey::rsa_pem(RSA_PUBLIC).unwrap());
    for header in [
        r#"{"alg":"RS256","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}"#,
        r#"{"alg":"RS256","jku":"https://attacker.test/jwks.json"}"#,
        r#"{"alg":"RS256","x5u":"https://attacker.test/cert.pem"}"#,
        r#"{"alg":"RS256","x5c":["MIIBIjANBgkq"]}"#,
    ] {
        let token = sign_raw(header, &payload(""), &key, jwt::Algorithm::RS256);
        let (res, calls) = send!(layer_with(verifier.clone()), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
    }
}

// ---------------------------------------------------------------------------
// Compact serialization (RFC 7515 section 7.1)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn tampered_payload_is_refused() {
    let token = valid_token();
    let parts: Vec<&str> = token.split('.').collect();
    let forged = b64(payload(r#","role":"ADMIN""#));
    let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
    let (res, calls) = send!(layer(), bearer(&tampered));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);

    // The signature of another valid token does not transfer either.
    let other = issuer()
        .access_token("user-2")
        .sign()
        .unwrap()
        .into_string();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        other.rsplit('.').next().unwrap()
    );
    let (res, calls) = send!(layer(), bearer(&swapped));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

#[tokio::test]
async fn tampered_header_is_refused() {
    let token = valid_token();
    let (_, rest) = token.split_once('.').unwrap();
    let header = b64(r#"{"alg":"HS256","typ":"JWT","kid":"x"}"#);
    let (res, calls) = send!(layer(), bearer(&format!("{header}.{rest}")));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

#[tokio::test]
async fn stripped_signature_is_refused() {
    let token = valid_token();
    let unsigned = &token[..=token.rfind('.').unwrap()];
    assert!(unsigned.ends_with('.'));
    let (res, calls) = send!(layer(), bearer(unsigned));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

#[tokio::test]
async fn wrong_number_of_parts_is_malformed() {
    let token = valid_token();
    let parts: Vec<&str> = token.split('.').collect();
    let cases = [
        parts[0].to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.{}", parts[2]),
        format!("{token}.{}.{}", parts[1], parts[2]), // JWE-like, five parts
        format!("{token}."),
    ];
    for case in cases {
        let (res, calls) = send!(layer(), bearer(&case));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn empty_parts_are_refused() {
    let token = valid_token();
    let parts: Vec<&str> = token.split('.').collect();
    for case in ["..".to_owned(), format!(".{}.{}", parts[1], parts[2])] {
        let (res, calls) = send!(layer(), bearer(&case));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
    // An empty payload under a valid signature is still malformed.
    let signed_empty = sign_segments(&b64(HS_HEADER), "");
    let (res, calls) = send!(layer(), bearer(&signed_empty));
    assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    // An empty payload under a foreign signature fails the signature first.
    let (res, calls) = send!(layer(), bearer(&format!("{}..{}", parts[0], parts[2])));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

#[tokio::test]
async fn malformed_base64_in_the_header_is_malformed() {
    let payload_b64 = b64(payload(""));
    for header_b64 in [
        // standard-alphabet characters are not base64url
        "eyJhbGciOiJIUzI1NiJ9+".to_owned(),
        format!("{}/", b64(HS_HEADER)),
        // impossible length (4n + 1)
        format!("{}A", b64(r#"{"alg":"HS256"}"#)),
        // non-canonical trailing bits
        {
            let mut h = b64(r#"{"alg":"HS256"} "#);
            let last = h.pop().unwrap();
            h.push(if last == 'A' { 'B' } else { 'A' });
            h
        },
    ] {
        let token = sign_segments(&header_b64, &payload_b64);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn malformed_base64_in_the_payload_is_malformed() {
    let header_b64 = b64(HS_HEADER);
    for payload_b64 in [
        format!("{}+", b64(payload(""))),
        format!("{}A", b64(payload(""))),
        format!("{}~", b64(payload(""))),
    ] {
        // Correctly signed, so only the payload's encoding is wrong.
        let token = sign_segments(&header_b64, &payload_b64);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn malformed_base64_in_the_signature_is_malformed() {
    let token = valid_token();
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut non_canonical = signature.to_owned();
    // HS256: 32 bytes, 43 characters; the last one carries 2 unused bits.
    let last = non_canonical.pop().unwrap();
    let idx = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        .iter()
        .position(|&c| c == last as u8)
        .unwrap();
    non_canonical
        .push(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[idx ^ 1] as char);
    for bad in [
        format!("{signature}="),         // padding
        format!("{signature}AA"),        // impossible length (4n + 1)
        format!("+{}", &signature[1..]), // standard alphabet
        format!("{}/", &signature[..signature.len() - 1]),
        non_canonical, // same bytes, other spelling
    ] {
        let (res, calls) = send!(layer(), bearer(&format!("{message}.{bad}")));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn payload_that_is_not_a_json_object_is_malformed() {
    for body in [
        "not json",
        "[1,2,3]",
        r#""a string""#,
        "null",
        "42",
        "",
        "{",
        r#"{"exp":1e999999999999"#,
    ] {
        let token = hs(HS_HEADER, body);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn payload_with_trailing_data_is_malformed() {
    for suffix in [" x", "{}", ",", "\u{0}"] {
        let token = hs(HS_HEADER, &format!("{}{suffix}", payload("")));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn deeply_nested_claims_do_not_overflow_and_fail_closed_for_roles() {
    // The verifier skips unknown claims without recursion, so a signed token
    // with a deeply nested unknown claim is accepted, without a stack overflow.
    let depth = 2000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let token = hs(
        HS_HEADER,
        &payload(&format!(r#","role":"ADMIN","deep":{nested}"#)),
    );
    assert!(token.len() < 8 * 1024);
    let (res, calls) = send!(layer(), bearer(&token));
    assert_passed(&res, calls);
    // The role layer cannot parse such a payload into a JSON tree (recursion
    // limit): it must deny rather than grant.
    let (res, calls) = send!(
        ServiceBuilder::new()
            .layer(layer())
            .layer(RequireRoleLayer::any_of(["ADMIN"])),
        bearer(&token)
    );
    assert_forbidden(&res, calls);
    // The same nesting in an unsigned header is rejected at the signature.
    let header = format!(r#"{{"alg":"HS256","deep":{nested}}}"#);
    let forged = format!("{}.{}.{}", b64(header), b64(payload("")), "A".repeat(43));
    let (res, calls) = send!(layer(), bearer(&forged));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

#[tokio::test]
async fn header_that_is_not_a_json_object_is_malformed() {
    for header in [
        "[]",
        r#""HS256""#,
        "null",
        "",
        "not json",
        r#"{"alg":"HS256""#,
        r#"{"alg":"HS256"} x"#,
    ] {
        let token = hs(header, &payload(""));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

#[tokio::test]
async fn header_without_a_string_alg_is_malformed() {
    for header in [
        r#"{"typ":"JWT"}"#,
        "{}",
        r#"{"alg":null}"#,
        r#"{"alg":256}"#,
        r#"{"alg":["HS256"]}"#,
        r#"{"alg":{"name":"HS256"}}"#,
        r#"{"alg":"HS256","kid":7}"#,
        r#"{"alg":"HS256","typ":["JWT"]}"#,
    ] {
        let token = hs(header, &payload(""));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

// ---------------------------------------------------------------------------
// crit and duplicate names (RFC 7515 sections 4, 4.1.11; RFC 7519 section 4)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn any_crit_header_is_refused() {
    for header in [
        r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
        r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        r#"{"alg":"HS256","crit":[]}"#,
        r#"{"alg":"HS256","crit":"b64"}"#,
        r#"{"alg":"HS256","crit":null}"#,
    ] {
        let token = hs(header, &payload(""));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedCritical);
    }
}

#[tokio::test]
async fn duplicate_claims_are_refused() {
    let n = now();
    let cases = [
        format!(
            r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"exp":{}}}"#,
            n + 600,
            n + 6000
        ),
        format!(
            r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"e\u0078p":{}}}"#,
            n + 600,
            n + 6000
        ),
        // privilege escalation through a second `role` must not be possible
        payload(r#","role":"USER","role":"ADMIN""#),
        payload(r#","role":"USER","\u0072ole":"ADMIN""#),
        // `iss` twice: one accepted, one not
        format!(
            r#"{{"iss":"https://evil.test","iss":"{ISS}","aud":"{AUD}","exp":{}}}"#,
            n + 600
        ),
        format!(
            r#"{{"iss":"{ISS}","aud":"{AUD}","aud":"other","exp":{}}}"#,
            n + 600
        ),
        // past the small-set threshold, where names move into a hash set
        payload(&format!(
            "{},\"c3\":0",
            (0..40).map(|i| format!(",\"c{i}\":0")).collect::<String>()
        )),
    ];
    for body in cases {
        let token = hs(HS_HEADER, &body);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::DuplicateClaim);
    }
}

#[tokio::test]
async fn many_distinct_claims_pass() {
    // Control for the hash-set path of the duplicate check.
    let extra: String = (0..40).map(|i| format!(",\"c{i}\":{i}")).collect();
    let token = hs(HS_HEADER, &payload(&extra));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn duplicate_header_parameters_are_malformed() {
    for header in [
        r#"{"alg":"HS256","alg":"none"}"#,
        r#"{"alg":"HS256","alg":"HS256"}"#,
        r#"{"alg":"HS256","a\u006cg":"HS256"}"#,
        r#"{"alg":"HS256","kid":"a","kid":"b"}"#,
        r#"{"alg":"HS256","typ":"JWT","typ":"at+jwt"}"#,
    ] {
        let token = hs(header, &payload(""));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}

// ---------------------------------------------------------------------------
// Registered claims (RFC 7519 section 4.1)
// ---------------------------------------------------------------------------

fn with_exp(exp: &str) -> String {
    format!(r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"user-1","exp":{exp}}}"#)
}

#[tokio::test]
async fn expired_token_is_refused() {
    for exp in [now() - 120, now() - 31 - 60, 0, -1, 1] {
        let token = hs(HS_HEADER, &with_exp(&exp.to_string()));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Expired);
    }
}

#[tokio::test]
async fn expired_token_from_the_issuer_is_refused() {
    // Issued with a 1 s lifetime, verified with no leeway 2 s later would be
    // slow; instead use a verifier whose leeway is zero and a past `exp`.
    let token = hs(HS_HEADER, &with_exp(&(now() - 10).to_string()));
    let strict = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    let (res, calls) = send!(layer_with(strict), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::Expired);
}

#[tokio::test]
async fn exp_within_the_leeway_passes() {
    let token = hs(HS_HEADER, &with_exp(&(now() - 10).to_string()));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_passed(&res, calls);
    // fractional NumericDate values are allowed (RFC 7519 section 2)
    let token = hs(HS_HEADER, &with_exp(&format!("{}.75", now() + 600)));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn missing_exp_is_a_missing_claim() {
    let body = format!(r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"user-1"}}"#);
    let token = hs(HS_HEADER, &body);
    let (res, calls) = send!(layer(), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::MissingClaim);
}

#[tokio::test]
async fn exp_of_the_wrong_type_is_invalid_claims() {
    let future = now() + 600;
    for exp in [
        format!(r#""{future}""#),
        "true".to_owned(),
        "null".to_owned(),
        format!("[{future}]"),
        format!(r#"{{"value":{future}}}"#),
    ] {
        let token = hs(HS_HEADER, &with_exp(&exp));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidClaims);
    }
}

#[tokio::test]
async fn extreme_exp_values_do_not_wrap_around() {
    // Far past values saturate and stay expired.
    for exp in ["-1e300", "-9223372036854775808", "-99999999999999999999"] {
        let token = hs(HS_HEADER, &with_exp(exp));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Expired);
    }
    // Numbers beyond f64 (which JSON cannot carry as NaN or infinity) are refused.
    for exp in ["1e400", "-1e400"] {
        let token = hs(HS_HEADER, &with_exp(exp));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
    // Far future values saturate and stay valid: exp + leeway must not overflow
    // into the past.
    for exp in ["9223372036854775807", "1e300", "18446744073709551615"] {
        let token = hs(HS_HEADER, &with_exp(exp));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_passed(&res, calls);
    }
}

#[tokio::test]
async fn future_nbf_is_refused_and_nbf_within_leeway_passes() {
    let token = hs(HS_HEADER, &payload(&format!(r#","nbf":{}"#, now() + 600)));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::NotYetValid);

    let token = hs(HS_HEADER, &payload(&format!(r#","nbf":{}"#, now() + 10)));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_passed(&res, calls);

    let token = hs(HS_HEADER, &payload(&format!(r#","nbf":"{}""#, now())));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidClaims);
}

#[tokio::test]
async fn wrong_or_missing_issuer_is_refused() {
    let exp = now() + 600;
    for body in [
        format!(r#"{{"iss":"https://evil.test","aud":"{AUD}","exp":{exp}}}"#),
        format!(r#"{{"iss":"HTTPS://ISSUER.TEST","aud":"{AUD}","exp":{exp}}}"#),
        format!(r#"{{"iss":"{ISS}/","aud":"{AUD}","exp":{exp}}}"#),
        format!(r#"{{"iss":"","aud":"{AUD}","exp":{exp}}}"#),
        format!(r#"{{"aud":"{AUD}","exp":{exp}}}"#),
    ] {
        let token = hs(HS_HEADER, &body);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidIssuer);
    }
    // `iss` of the wrong type is invalid, not merely unknown.
    for iss in [format!(r#"["{ISS}"]"#), "null".to_owned(), "1".to_owned()] {
        let body = format!(r#"{{"iss":{iss},"aud":"{AUD}","exp":{exp}}}"#);
        let token = hs(HS_HEADER, &body);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidClaims);
    }
}

#[tokio::test]
async fn any_of_several_configured_issuers_is_accepted() {
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .issuer("https://a.test")
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap();
    let (res, calls) = send!(layer_with(verifier), bearer(&valid_token()));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn wrong_or_missing_audience_is_refused() {
    let exp = now() + 600;
    for aud in [
        r#","aud":"other""#.to_owned(),
        r#","aud":"API""#.to_owned(),
        r#","aud":["other","another"]"#.to_owned(),
        r#","aud":[]"#.to_owned(),
        String::new(),
    ] {
        let body = format!(r#"{{"iss":"{ISS}","exp":{exp}{aud}}}"#);
        let token = hs(HS_HEADER, &body);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidAudience);
    }
    for aud in ["1", r#"[1]"#, r#"{"aud":"api"}"#, "null", r#"["api",null]"#] {
        let body = format!(r#"{{"iss":"{ISS}","exp":{exp},"aud":{aud}}}"#);
        let token = hs(HS_HEADER, &body);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidClaims);
    }
}

#[tokio::test]
async fn audience_array_containing_ours_passes() {
    let body = format!(
        r#"{{"iss":"{ISS}","aud":["other","{AUD}"],"exp":{}}}"#,
        now() + 600
    );
    let token = hs(HS_HEADER, &body);
    let (res, calls) = send!(layer(), bearer(&token));
    assert_passed(&res, calls);
    assert_eq!(
        claims_of(&res).registered().aud,
        vec!["other".to_owned(), AUD.to_owned()]
    );
}

#[tokio::test]
async fn audience_present_when_none_is_configured_is_refused() {
    // RFC 7519 section 4.1.3: a token that names audiences must name us.
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .build()
        .unwrap();
    let exp = now() + 600;
    for aud in [r#""api""#, r#"["api"]"#, "[]"] {
        let token = hs(HS_HEADER, &format!(r#"{{"exp":{exp},"aud":{aud}}}"#));
        let (res, calls) = send!(layer_with(verifier.clone()), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidAudience);
    }
    // Control: without `aud` it passes.
    let token = hs(HS_HEADER, &format!(r#"{{"exp":{exp}}}"#));
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn other_registered_claims_of_the_wrong_type_are_invalid() {
    for extra in [
        r#","iat":"yesterday""#,
        r#","sub":42"#,
        r#","jti":["a"]"#,
        r#","sid":{}"#,
        r#","nbf":null"#,
    ] {
        let token = hs(HS_HEADER, &payload(extra));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidClaims);
    }
}

#[tokio::test]
async fn claims_that_do_not_fit_the_application_type_are_invalid() {
    #[derive(Clone, Deserialize)]
    #[allow(dead_code)]
    struct Strict {
        tenant: String,
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::<Strict>::new(verifier()))
        .service(tower::service_fn(move |_req: Req| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new("ok".to_owned())) }
        }));
    let res = svc.clone().oneshot(bearer(&valid_token())).await.unwrap();
    assert_invalid_token(
        &res,
        calls.load(Ordering::SeqCst),
        AuthErrorKind::InvalidClaims,
    );

    let token = hs(HS_HEADER, &payload(r#","tenant":7"#));
    let res = svc.clone().oneshot(bearer(&token)).await.unwrap();
    assert_invalid_token(
        &res,
        calls.load(Ordering::SeqCst),
        AuthErrorKind::InvalidClaims,
    );

    let token = hs(HS_HEADER, &payload(r#","tenant":"acme""#));
    let res = svc.oneshot(bearer(&token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------
// Token length
// ---------------------------------------------------------------------------

#[tokio::test]
async fn oversized_token_is_refused_before_decoding() {
    // 8 KiB + 1 of b64token characters; not even a JWS.
    let long = "a".repeat(8 * 1024 + 1);
    let (res, calls) = send!(layer(), bearer(&long));
    assert_invalid_token(&res, calls, AuthErrorKind::TokenTooLong);

    // Exactly at the limit it is decoded (and found malformed).
    let at_limit = "a".repeat(8 * 1024);
    let (res, calls) = send!(layer(), bearer(&at_limit));
    assert_invalid_token(&res, calls, AuthErrorKind::Malformed);

    // A validly signed token over the limit is refused too.
    let big = "x".repeat(9 * 1024);
    let token = issuer()
        .access_token("user-1")
        .claim("name", big)
        .sign()
        .unwrap();
    assert!(token.as_str().len() > 8 * 1024);
    let (res, calls) = send!(layer(), bearer(token.as_str()));
    assert_invalid_token(&res, calls, AuthErrorKind::TokenTooLong);
}

#[tokio::test]
async fn custom_max_token_len_is_enforced() {
    let token = valid_token();
    let build = |max: usize| {
        Verifier::builder()
            .key(VerificationKey::hmac(SECRET).unwrap())
            .issuer(ISS)
            .audience(AUD)
            .max_token_len(max)
            .build()
            .unwrap()
    };
    let (res, calls) = send!(layer_with(build(token.len() - 1)), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::TokenTooLong);
    let (res, calls) = send!(layer_with(build(token.len())), bearer(&token));
    assert_passed(&res, calls);
    let (res, calls) = send!(layer_with(build(64)), bearer(&"a".repeat(65)));
    assert_invalid_token(&res, calls, AuthErrorKind::TokenTooLong);
}

// ---------------------------------------------------------------------------
// typ (RFC 7515 section 4.1.9, RFC 8725 section 3.11, RFC 9068)
// ---------------------------------------------------------------------------

fn at_jwt_verifier() -> Verifier {
    Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .require_type("at+jwt")
        .build()
        .unwrap()
}

#[tokio::test]
async fn required_type_accepts_its_spellings() {
    let token = issuer()
        .token_type("at+jwt")
        .access_token("user-1")
        .sign()
        .unwrap();
    let (res, calls) = send!(layer_with(at_jwt_verifier()), bearer(token.as_str()));
    assert_passed(&res, calls);
    for typ in ["application/at+jwt", "AT+JWT", "Application/At+Jwt"] {
        let header = format!(r#"{{"alg":"HS256","typ":"{typ}"}}"#);
        let token = hs(&header, &payload(""));
        let (res, calls) = send!(layer_with(at_jwt_verifier()), bearer(&token));
        assert_passed(&res, calls);
    }
}

#[tokio::test]
async fn required_type_refuses_other_or_missing_types() {
    let plain = valid_token(); // typ: JWT
    let (res, calls) = send!(layer_with(at_jwt_verifier()), bearer(&plain));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidType);
    for header in [
        r#"{"alg":"HS256"}"#,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"{"alg":"HS256","typ":""}"#,
        r#"{"alg":"HS256","typ":"at+jwt "}"#,
        r#"{"alg":"HS256","typ":"application/application/at+jwt"}"#,
        r#"{"alg":"HS256","typ":"text/at+jwt"}"#,
        r#"{"alg":"HS256","typ":"at+jwt; charset=utf-8"}"#,
    ] {
        let token = hs(header, &payload(""));
        let (res, calls) = send!(layer_with(at_jwt_verifier()), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidType);
    }
}

#[tokio::test]
async fn rfc9068_profile_requires_its_claims() {
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .rfc9068()
        .build()
        .unwrap();
    let issuer = issuer().token_type("at+jwt");
    let token = issuer
        .access_token("user-1")
        .claim("client_id", "client-1")
        .sign()
        .unwrap();
    let (res, calls) = send!(layer_with(verifier.clone()), bearer(token.as_str()));
    assert_passed(&res, calls);

    // No client_id.
    let token = issuer.access_token("user-1").sign().unwrap();
    let (res, calls) = send!(layer_with(verifier.clone()), bearer(token.as_str()));
    assert_invalid_token(&res, calls, AuthErrorKind::MissingClaim);

    // Each required claim, removed in turn.
    let n = now();
    let full = [
        ("iss", format!(r#""{ISS}""#)),
        ("exp", (n + 600).to_string()),
        ("aud", format!(r#""{AUD}""#)),
        ("sub", r#""user-1""#.to_owned()),
        ("client_id", r#""client-1""#.to_owned()),
        ("iat", n.to_string()),
        ("jti", r#""j-1""#.to_owned()),
    ];
    let header = r#"{"alg":"HS256","typ":"at+jwt"}"#;
    let render = |skip: Option<&str>| {
        let members: Vec<String> = full
            .iter()
            .filter(|(k, _)| Some(*k) != skip)
            .map(|(k, v)| format!(r#""{k}":{v}"#))
            .collect();
        format!("{{{}}}", members.join(","))
    };
    let (res, calls) = send!(
        layer_with(verifier.clone()),
        bearer(&hs(header, &render(None)))
    );
    assert_passed(&res, calls);
    for (name, _) in &full {
        let token = hs(header, &render(Some(name)));
        let (res, calls) = send!(layer_with(verifier.clone()), bearer(&token));
        // `iss` and `aud` are also checked against the configuration, but
        // the required-claim check comes first.
        assert_invalid_token(&res, calls, AuthErrorKind::MissingClaim);
    }
    // The right claims with the plain JWT type are refused.
    let token = hs(HS_HEADER, &render(None));
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidType);
}

// ---------------------------------------------------------------------------
// kid (RFC 7515 section 4.1.4, RFC 8725 section 3.10)
// ---------------------------------------------------------------------------

fn two_key_verifier() -> Verifier {
    Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap().with_kid("key-a"))
        .key(
            VerificationKey::hmac(OTHER_SECRET)
                .unwrap()
                .with_kid("key-b"),
        )
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap()
}

fn token_with_kid(kid: &str, secret: &[u8]) -> String {
    TokenIssuer::new(
        SigningKey::hmac(Algorithm::HS256, secret)
            .unwrap()
            .with_kid(kid),
    )
    .issuer(ISS)
    .audience(AUD)
    .access_token("user-1")
    .sign()
    .unwrap()
    .into_string()
}

#[tokio::test]
async fn kid_selects_exactly_one_key() {
    let (res, calls) = send!(
        layer_with(two_key_verifier()),
        bearer(&token_with_kid("key-a", SECRET))
    );
    assert_passed(&res, calls);
    let (res, calls) = send!(
        layer_with(two_key_verifier()),
        bearer(&token_with_kid("key-b", OTHER_SECRET))
    );
    assert_passed(&res, calls);
    // Signed with A's secret but naming B: only B is tried.
    let (res, calls) = send!(
        layer_with(two_key_verifier()),
        bearer(&token_with_kid("key-b", SECRET))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
    let (res, calls) = send!(
        layer_with(two_key_verifier()),
        bearer(&token_with_kid("key-a", OTHER_SECRET))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
    // kid matching is exact and case-sensitive.
    let (res, calls) = send!(
        layer_with(two_key_verifier()),
        bearer(&token_with_kid("KEY-A", SECRET))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::UnknownKey);
}

#[tokio::test]
async fn unknown_or_hostile_kid_is_an_unknown_key() {
    let long = "k".repeat(4096);
    let kids = [
        "key-c",
        "",
        "../../etc/passwd",
        "' OR 1=1 --",
        "key-a\u{0}",
        " key-a",
        "key-a ",
        "%00",
        "\u{202e}a-yek",
        "../../../../../../dev/null",
        "$(rm -rf /)",
        long.as_str(),
    ];
    for kid in kids {
        let header = serde_json::json!({ "alg": "HS256", "kid": kid }).to_string();
        let token = hs(&header, &payload(""));
        assert!(token.len() <= 8 * 1024);
        let (res, calls) = send!(layer_with(two_key_verifier()), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::UnknownKey);
    }
    // Without a kid, there is no anonymous key to try.
    let (res, calls) = send!(layer_with(two_key_verifier()), bearer(&valid_token()));
    assert_invalid_token(&res, calls, AuthErrorKind::UnknownKey);
}

#[tokio::test]
async fn unmatched_kid_falls_back_to_keys_without_kid_only() {
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .key(
            VerificationKey::hmac(OTHER_SECRET)
                .unwrap()
                .with_kid("key-b"),
        )
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap();
    // An unknown kid, signed by the anonymous key: accepted (documented fallback).
    let (res, calls) = send!(
        layer_with(verifier.clone()),
        bearer(&token_with_kid("rotated", SECRET))
    );
    assert_passed(&res, calls);
    // Naming key-b pins key-b: the anonymous key is not tried.
    let (res, calls) = send!(
        layer_with(verifier.clone()),
        bearer(&token_with_kid("key-b", SECRET))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
    // An unknown kid signed by key-b's secret: key-b is not a fallback.
    let (res, calls) = send!(
        layer_with(verifier),
        bearer(&token_with_kid("rotated", OTHER_SECRET))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidSignature);
}

// ---------------------------------------------------------------------------
// Optional mode
// ---------------------------------------------------------------------------

fn optional_layer() -> JwtAuthLayer<MyClaims> {
    JwtAuthLayer::builder(verifier())
        .optional()
        .build()
        .unwrap()
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_without_claims() {
    for req in [no_auth(), with_auth("Basic dXNlcjpwYXNz")] {
        let (res, calls) = send!(optional_layer(), req);
        assert_passed(&res, calls);
        assert!(res.extensions().get::<Claims<MyClaims>>().is_none());
    }
}

#[tokio::test]
async fn optional_mode_still_refuses_bad_credentials() {
    let (res, calls) = send!(optional_layer(), bearer("a.b.c"));
    assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    let expired = hs(HS_HEADER, &with_exp(&(now() - 3600).to_string()));
    let (res, calls) = send!(optional_layer(), bearer(&expired));
    assert_invalid_token(&res, calls, AuthErrorKind::Expired);
    let (res, calls) = send!(optional_layer(), with_auth("Bearer "));
    assert_invalid_request(&res, calls, "the bearer token is empty");
}

#[tokio::test]
async fn optional_mode_with_a_valid_token_has_claims() {
    let (res, calls) = send!(optional_layer(), bearer(&valid_token()));
    assert_passed(&res, calls);
    assert_eq!(claims_of(&res).subject(), Some("user-1"));
}

// ---------------------------------------------------------------------------
// The async check hook
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rejecting_check_is_401_with_its_description() {
    let checked = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&checked);
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(move |claims: &Claims<MyClaims>| {
            seen.fetch_add(1, Ordering::SeqCst);
            let banned = claims.subject() == Some("user-1");
            async move {
                tokio::task::yield_now().await;
                if banned {
                    Err(AuthError::rejected("the account is disabled"))
                } else {
                    Ok(())
                }
            }
        })
        .build()
        .unwrap();
    let (res, calls) = send!(layer.clone(), bearer(&valid_token()));
    assert_invalid_token_with(
        &res,
        calls,
        AuthErrorKind::Rejected,
        "the account is disabled",
    );
    assert_eq!(checked.load(Ordering::SeqCst), 1);

    // Another subject passes the same check.
    let other = issuer().access_token("user-2").sign().unwrap();
    let (res, calls) = send!(layer.clone(), bearer(other.as_str()));
    assert_passed(&res, calls);
    assert_eq!(claims_of(&res).subject(), Some("user-2"));
    assert_eq!(checked.load(Ordering::SeqCst), 2);

    // The check never runs for a token that fails verification.
    let (res, calls) = send!(layer, bearer(&hs(HS_HEADER, &with_exp("0"))));
    assert_invalid_token(&res, calls, AuthErrorKind::Expired);
    assert_eq!(checked.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn check_description_outside_the_rfc6750_charset_is_replaced() {
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(|_: &Claims<MyClaims>| async {
            Err(AuthError::rejected("bad \"quote\"\r\nX-Injected: 1"))
        })
        .build()
        .unwrap();
    let (res, calls) = send!(layer, bearer(&valid_token()));
    assert_invalid_token(&res, calls, AuthErrorKind::Rejected);
}

#[tokio::test]
async fn unavailable_check_is_503_without_challenge() {
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(|_: &Claims<MyClaims>| async {
            Err(AuthError::unavailable(io::Error::other(
                "redis down at 10.0.0.7 password=hunter2",
            )))
        })
        .build()
        .unwrap();
    let (res, calls) = send!(layer, bearer(&valid_token()));
    assert_rejection(
        &res,
        calls,
        AuthErrorKind::Unavailable,
        503,
        None,
        "temporarily_unavailable",
        "authentication is temporarily unavailable",
    );
    assert!(!res.body().contains("redis"));
    assert!(!res.body().contains("hunter2"));
}

#[tokio::test]
async fn accepting_check_passes_and_sees_the_claims() {
    let seen = Arc::new(Mutex::new(None));
    let record = Arc::clone(&seen);
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(move |claims: &Claims<MyClaims>| {
            *record.lock().unwrap() = claims.subject().map(str::to_owned);
            async { Ok(()) }
        })
        .build()
        .unwrap();
    let (res, calls) = send!(layer, bearer(&valid_token()));
    assert_passed(&res, calls);
    assert_eq!(seen.lock().unwrap().as_deref(), Some("user-1"));
    assert_eq!(claims_of(&res).subject(), Some("user-1"));
}

// ---------------------------------------------------------------------------
// Responders and realm
// ---------------------------------------------------------------------------

#[tokio::test]
async fn custom_responder_replaces_the_body_and_keeps_the_error() {
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .responder(|error: &AuthError| {
            let mut res = Response::new(format!("denied: {}", error.description()));
            *res.status_mut() = error.status();
            res.headers_mut()
                .insert("x-denied", HeaderValue::from_static("1"));
            res
        })
        .build()
        .unwrap();
    let (res, calls) = send!(layer.clone(), bearer(&hs(HS_HEADER, &with_exp("0"))));
    assert_eq!(calls, 0);
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.body(), "denied: the token has expired");
    assert_eq!(res.headers().get("x-denied").unwrap(), "1");
    assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
    assert_eq!(
        res.extensions().get::<AuthError>().map(AuthError::kind),
        Some(AuthErrorKind::Expired)
    );

    let (res, calls) = send!(layer.clone(), no_auth());
    assert_eq!(calls, 0);
    assert_eq!(res.body(), "denied: a bearer token is required");
    assert_eq!(
        res.extensions().get::<AuthError>().map(AuthError::kind),
        Some(AuthErrorKind::MissingCredentials)
    );

    let (res, calls) = send!(layer, bearer(&valid_token()));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn realm_is_used_in_challenges_and_validated() {
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .realm("my api")
        .build()
        .unwrap();
    let (res, calls) = send!(layer.clone(), no_auth());
    assert_eq!(calls, 0);
    assert_eq!(
        res.headers().get(WWW_AUTHENTICATE).unwrap(),
        r#"Bearer realm="my api""#
    );
    let (res, _) = send!(layer, bearer(&hs(HS_HEADER, &with_exp("0"))));
    assert_eq!(
        res.headers().get(WWW_AUTHENTICATE).unwrap(),
        r#"Bearer realm="my api", error="invalid_token", error_description="the token has expired""#
    );
    for bad in ["", "a\"b", "a\\b", "line\nbreak", "caf\u{e9}"] {
        assert!(
            JwtAuthLayer::<MyClaims>::builder(verifier())
                .realm(bad)
                .build()
                .is_err(),
            "{bad:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Token sources
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// RequireRoleLayer
// ---------------------------------------------------------------------------

macro_rules! send_role {
    ($auth:expr, $role:expr, $req:expr) => {
        send!(ServiceBuilder::new().layer($auth).layer($role), $req)
    };
}

fn token_with(extra: &str) -> String {
    hs(HS_HEADER, &payload(extra))
}

#[tokio::test]
async fn single_role_string() {
    let admin = issuer().access_token("u").role("ADMIN").sign().unwrap();
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["ADMIN"]),
        bearer(admin.as_str())
    );
    assert_passed(&res, calls);
    assert_eq!(claims_of(&res).role, Some(Value::from("ADMIN")));

    for role in ["USER", "admin", "ADMIN ", "ADMINISTRATOR", ""] {
        let token = issuer().access_token("u").role(role).sign().unwrap();
        let (res, calls) = send_role!(
            layer(),
            RequireRoleLayer::any_of(["ADMIN"]),
            bearer(token.as_str())
        );
        assert_forbidden(&res, calls);
    }
    // No role claim at all.
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["ADMIN"]),
        bearer(&valid_token_without_role())
    );
    assert_forbidden(&res, calls);
}

fn valid_token_without_role() -> String {
    issuer().access_token("u").sign().unwrap().into_string()
}

#[tokio::test]
async fn role_claim_of_the_wrong_shape_grants_nothing() {
    for extra in [
        r#","role":1"#,
        r#","role":true"#,
        r#","role":{"ADMIN":true}"#,
        r#","role":[["ADMIN"]]"#,
        r#","role":null"#,
        r#","role":"USER ADMIN""#, // not space-delimited by default
    ] {
        let (res, calls) = send_role!(
            layer(),
            RequireRoleLayer::any_of(["ADMIN"]),
            bearer(&token_with(extra))
        );
        assert_forbidden(&res, calls);
    }
    // Non-strings inside an array are skipped, strings still count.
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["ADMIN"]),
        bearer(&token_with(r#","role":[1,null,"ADMIN"]"#))
    );
    assert_passed(&res, calls);
}

#[tokio::test]
async fn roles_array_claim() {
    let token = token_with(r#","roles":["reader","writer"]"#);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["writer"]).claim("roles"),
        bearer(&token)
    );
    assert_passed(&res, calls);
    // The default claim is `role`, not `roles`.
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["writer"]),
        bearer(&token)
    );
    assert_forbidden(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["admin"]).claim("roles"),
        bearer(&token)
    );
    assert_forbidden(&res, calls);
    // Issued by the crate with `.roles(...)`.
    let issued = issuer()
        .role_claim("roles")
        .access_token("u")
        .roles(["reader", "writer"])
        .sign()
        .unwrap();
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::all_of(["reader", "writer"]).claim("roles"),
        bearer(issued.as_str())
    );
    assert_passed(&res, calls);
}

#[tokio::test]
async fn all_of_versus_any_of() {
    let one = token_with(r#","role":["reader"]"#);
    let both = token_with(r#","role":["reader","writer"]"#);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["reader", "writer"]),
        bearer(&one)
    );
    assert_passed(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::all_of(["reader", "writer"]),
        bearer(&one)
    );
    assert_forbidden(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::all_of(["reader", "writer"]),
        bearer(&both)
    );
    assert_passed(&res, calls);
    // An empty requirement denies everything.
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(Vec::<String>::new()),
        bearer(&both)
    );
    assert_forbidden(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::all_of(Vec::<String>::new()),
        bearer(&both)
    );
    assert_forbidden(&res, calls);
}

#[tokio::test]
async fn scope_claim_is_space_delimited() {
    let token = token_with(r#","scope":"read  write""#);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["write"]).scope(),
        bearer(&token)
    );
    assert_passed(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::all_of(["read", "write"]).scope(),
        bearer(&token)
    );
    assert_passed(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::all_of(["read", "admin"]).scope(),
        bearer(&token)
    );
    assert_forbidden(&res, calls);
    // "read write" is not itself a scope.
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["read write"]).scope(),
        bearer(&token)
    );
    assert_forbidden(&res, calls);
    // Prefixes do not match.
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["wri"]).scope(),
        bearer(&token)
    );
    assert_forbidden(&res, calls);
}

#[tokio::test]
async fn nested_claim_path() {
    let token = token_with(r#","realm_access":{"roles":["admin","user"]}"#);
    let layer_for =
        |role: &str| RequireRoleLayer::any_of([role]).claim_path(["realm_access", "roles"]);
    let (res, calls) = send_role!(layer(), layer_for("admin"), bearer(&token));
    assert_passed(&res, calls);
    let (res, calls) = send_role!(layer(), layer_for("superuser"), bearer(&token));
    assert_forbidden(&res, calls);
    // A literal dotted claim name is not a path.
    let dotted = token_with(r#","realm_access.roles":["admin"]"#);
    let (res, calls) = send_role!(layer(), layer_for("admin"), bearer(&dotted));
    assert_forbidden(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["admin"]).claim("realm_access.roles"),
        bearer(&dotted)
    );
    assert_passed(&res, calls);
    // The path through a non-object grants nothing.
    let flat = token_with(r#","realm_access":["admin"]"#);
    let (res, calls) = send_role!(layer(), layer_for("admin"), bearer(&flat));
    assert_forbidden(&res, calls);
}

#[tokio::test]
async fn role_hierarchy() {
    let hierarchy = RoleHierarchy::new()
        .grant("ADMIN", ["MANAGER"])
        .grant("MANAGER", ["USER"]);
    let role_token = |role: &str| {
        issuer()
            .access_token("u")
            .role(role)
            .sign()
            .unwrap()
            .into_string()
    };
    let needs = |role: &str| RequireRoleLayer::any_of([role]).hierarchy(hierarchy.clone());
    let (res, calls) = send_role!(layer(), needs("USER"), bearer(&role_token("ADMIN")));
    assert_passed(&res, calls);
    let (res, calls) = send_role!(layer(), needs("MANAGER"), bearer(&role_token("ADMIN")));
    assert_passed(&res, calls);
    let (res, calls) = send_role!(layer(), needs("ADMIN"), bearer(&role_token("USER")));
    assert_forbidden(&res, calls);
    let (res, calls) = send_role!(layer(), needs("ADMIN"), bearer(&role_token("MANAGER")));
    assert_forbidden(&res, calls);
    // A cyclic hierarchy terminates.
    let cyclic = RoleHierarchy::new().grant("A", ["B"]).grant("B", ["A"]);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["C"]).hierarchy(cyclic),
        bearer(&role_token("A"))
    );
    assert_forbidden(&res, calls);
}

#[tokio::test]
async fn role_layer_without_authentication_never_passes() {
    let admin = issuer().access_token("u").role("ADMIN").sign().unwrap();
    // No JwtAuthLayer at all: even a valid admin token is not enough.
    let (res, calls) = send!(RequireRoleLayer::any_of(["ADMIN"]), bearer(admin.as_str()));
    assert_missing_credentials(&res, calls);
    let (res, calls) = send!(RequireRoleLayer::any_of(["ADMIN"]), no_auth());
    assert_missing_credentials(&res, calls);
    // Misordered: the role layer outside the authentication layer.
    let (res, calls) = send!(
        ServiceBuilder::new()
            .layer(RequireRoleLayer::any_of(["ADMIN"]))
            .layer(layer()),
        bearer(admin.as_str())
    );
    assert_missing_credentials(&res, calls);
    // Optional mode without a token.
    let (res, calls) = send_role!(
        optional_layer(),
        RequireRoleLayer::any_of(["ADMIN"]),
        no_auth()
    );
    assert_missing_credentials(&res, calls);
    // Optional mode with the token: passes.
    let (res, calls) = send_role!(
        optional_layer(),
        RequireRoleLayer::any_of(["ADMIN"]),
        bearer(admin.as_str())
    );
    assert_passed(&res, calls);
}

#[tokio::test]
async fn authentication_failure_comes_before_the_role_check() {
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["ADMIN"]),
        bearer(&hs(HS_HEADER, &with_exp("0")))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::Expired);
    let (res, calls) = send_role!(layer(), RequireRoleLayer::any_of(["ADMIN"]), no_auth());
    assert_missing_credentials(&res, calls);
}

// ---------------------------------------------------------------------------
// gRPC
// ---------------------------------------------------------------------------

#[track_caller]
fn assert_grpc_rejection(
    res: &Res,
    calls: usize,
    kind: AuthErrorKind,
    status: &str,
    message: &str,
) {
    assert_eq!(calls, 0, "the inner service must not be called");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers().get("grpc-status").unwrap(), status);
    assert_eq!(res.headers().get("grpc-message").unwrap(), message);
    assert_eq!(res.headers().get(CONTENT_TYPE).unwrap(), "application/grpc");
    assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
    assert_eq!(res.body(), "");
    assert_eq!(
        res.extensions().get::<AuthError>().map(AuthError::kind),
        Some(kind)
    );
}

#[tokio::test]
async fn grpc_rejections_are_trailers_only_responses() {
    for content_type in [
        "application/grpc",
        "application/grpc+proto",
        "application/GRPC;charset=utf-8",
    ] {
        let (res, calls) = send!(layer(), grpc(None, content_type));
        assert_grpc_rejection(
            &res,
            calls,
            AuthErrorKind::MissingCredentials,
            "16",
            "a bearer token is required",
        );

        let expired = hs(HS_HEADER, &with_exp("0"));
        let (res, calls) = send!(layer(), grpc(Some(&expired), content_type));
        assert_grpc_rejection(
            &res,
            calls,
            AuthErrorKind::Expired,
            "16",
            "the token has expired",
        );

        let user = issuer().access_token("u").role("USER").sign().unwrap();
        let (res, calls) = send_role!(
            layer(),
            RequireRoleLayer::any_of(["ADMIN"]),
            grpc(Some(user.as_str()), content_type)
        );
        assert_grpc_rejection(
            &res,
            calls,
            AuthErrorKind::InsufficientScope,
            "7",
            "the token lacks the required role",
        );

        let (res, calls) = send!(layer(), grpc(Some(user.as_str()), content_type));
        assert_passed(&res, calls);
    }
}

#[tokio::test]
async fn grpc_check_rejections() {
    let rejecting = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(|_: &Claims<MyClaims>| async { Err(AuthError::rejected("the session was revoked")) })
        .build()
        .unwrap();
    let token = valid_token();
    let (res, calls) = send!(rejecting, grpc(Some(&token), "application/grpc"));
    assert_grpc_rejection(
        &res,
        calls,
        AuthErrorKind::Rejected,
        "16",
        "the session was revoked",
    );

    let unavailable = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(|_: &Claims<MyClaims>| async { Err(AuthError::unavailable("backend down")) })
        .build()
        .unwrap();
    let (res, calls) = send!(unavailable, grpc(Some(&token), "application/grpc"));
    assert_grpc_rejection(
        &res,
        calls,
        AuthErrorKind::Unavailable,
        "14",
        "authentication is temporarily unavailable",
    );
}

#[tokio::test]
async fn grpc_web_is_not_grpc() {
    let (res, calls) = send!(layer(), grpc(None, "application/grpc-web"));
    assert_missing_credentials(&res, calls);
    assert!(res.headers().get("grpc-status").is_none());
}
