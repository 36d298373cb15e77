//! What each fuzz target runs, one function per target.
//!
//! The same file is the library of the fuzz crate (`cargo +nightly fuzz run
//! <target>`) and a module of the main package's `tests/fuzz_corpora.rs`,
//! which replays the committed corpora on stable: it depends only on crates
//! that the main package has too, and never on libFuzzer.
//!
//! Every function takes arbitrary bytes, must not panic, and asserts the
//! invariants that hold whatever the input (an oracle per target).

use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    pin::pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, Waker},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use sha2::Sha256;
use tower_jwt_auth::{
    Algorithm, AuthErrorKind, Claims, JwkSet, JwtAuthLayer, RequireRoleLayer, RoleHierarchy,
    SigningKey, TokenIssuer, TokenSource, VerificationKey, Verifier,
    refresh::{MemoryStore, RefreshEndpoint, RefreshTokens, Subject, store::StoreError},
};
use tower_layer::Layer;
use tower_service::Service;

/// The HMAC secret of every fixture.
pub const SECRET: &[u8] = b"fuzzing secret of at least 32 bytes!!";
/// Another issuer's secret.
pub const OTHER_SECRET: &[u8] = b"another fuzzing secret of 32 bytes...";
/// The issuer and audience the fixtures accept.
pub const ISS: &str = "https://issuer.fuzz";
/// See [`ISS`].
pub const AUD: &str = "api";
/// Replaced by a valid access token in `extract`'s input, and by the
/// session's refresh token in `refresh_endpoint`'s, so that the fuzzer
/// reaches the paths past verification.
pub const TOKEN_MARK: &[u8] = b"$T";

const RSA_PUBLIC: &[u8] = include_bytes!("../../tests/keys/rsa_public.pem");
const EC_PUBLIC: &[u8] = include_bytes!("../../tests/keys/ec_public.pem");
const ED_PUBLIC: &[u8] = include_bytes!("../../tests/keys/ed_public.pem");

/// Polls `future` to completion without a runtime: everything fuzzed here
/// (static keys, the memory store) is ready at once, so a future still
/// pending after many polls is a bug.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("a future that needs no I/O stayed pending");
}

struct Fixtures {
    /// Issuer and audience, HS256.
    hs: Verifier,
    /// Neither issuer nor audience checked, `exp` not required.
    open: Verifier,
    /// RFC 9068, with `role` required too.
    profile: Verifier,
    /// RSA, EC, Ed25519 and HMAC keys by `kid`.
    many: Verifier,
    /// Two issuers, routed by `iss`.
    by_issuer: Verifier,
    /// A token `hs` accepts, minted at start.
    valid: String,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let hmac = || VerificationKey::hmac(SECRET).unwrap();
        let hs = Verifier::builder()
            .key(hmac())
            .issuer(ISS)
            .audience(AUD)
            .build()
            .unwrap();
        let open = Verifier::builder()
            .key(hmac())
            .required_claims(Vec::<String>::new())
            .build()
            .unwrap();
        let profile = Verifier::builder()
            .key(hmac())
            .issuer(ISS)
            .audience(AUD)
            .rfc9068()
            .build()
            .unwrap();
        let many = Verifier::builder()
            .key(hmac().with_kid("h"))
            .key(VerificationKey::rsa_pem(RSA_PUBLIC).unwrap().with_kid("r"))
            .key(VerificationKey::ec_pem(EC_PUBLIC).unwrap().with_kid("e"))
            .key(VerificationKey::ed_pem(ED_PUBLIC).unwrap().with_kid("d"))
            .build()
            .unwrap();
        let other = Verifier::builder()
            .key(VerificationKey::hmac(OTHER_SECRET).unwrap())
            .issuer("https://other.fuzz")
            .audience(AUD)
            .build()
            .unwrap();
        let by_issuer = Verifier::by_issuer([hs.clone(), other]).unwrap();
        let valid = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
            .issuer(ISS)
            .audience(AUD)
            .access_token("user-1")
            .role("ADMIN")
            .claim("realm_access", serde_json::json!({"roles": ["admin"]}))
            .claim("scope", "read write")
            .expires_in(std::time::Duration::from_secs(24 * 3600))
            .sign()
            .unwrap()
            .into_string();
        Fixtures {
            hs,
            open,
            profile,
            many,
            by_issuer,
            valid,
        }
    })
}

/// HS256 over `header.payload` (raw bytes, base64url-encoded here) with `SECRET`.
fn sign(header: &[u8], payload: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(message.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{message}.{signature}")
}

/// The inner service of the layers: answers 200 and checks that the layer
/// inserted the claims (unless it runs in optional mode).
#[derive(Clone)]
struct Inner {
    optional: bool,
}

impl Service<Request<String>> for Inner {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<String>) -> Self::Future {
        let claims = request
            .extensions()
            .get::<Claims<serde_json::Value>>()
            .is_some();
        assert!(
            self.optional || claims,
            "the inner service ran without claims"
        );
        ready(Ok(Response::new("ok".to_owned())))
    }
}

/// Sends `request` through `service` (built by `layer` around [`Inner`]).
fn send<S>(mut service: S, request: Request<String>) -> Response<String>
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible>,
{
    block_on(std::future::poll_fn(|cx| service.poll_ready(cx))).unwrap();
    block_on(service.call(request)).unwrap()
}

/// A rejection of the layers: a status they may answer with, and the error
/// in the extensions when it is not a pass.
fn check_layer_response(response: &Response<String>) {
    let status = response.status();
    assert!(
        [200, 400, 401, 403].contains(&status.as_u16()),
        "unexpected status {status}"
    );
    if status != StatusCode::OK {
        assert!(
            response
                .extensions()
                .get::<tower_jwt_auth::AuthError>()
                .is_some()
        );
        assert!(serde_json::from_str::<serde_json::Value>(response.body()).is_ok());
    }
}

/// `Verifier::verify` with fixed keys. The first byte picks how the rest is
/// used: a raw token; a payload signed with the fixtures' secret (so
/// that everything after the signature is reached); or a header and a
/// payload (split at the first newline), signed.
pub fn verify(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixtures();
    match mode % 3 {
        0 => {
            let token = String::from_utf8_lossy(rest);
            for verifier in [&f.hs, &f.open, &f.profile, &f.many, &f.by_issuer] {
                let first = verifier.verify::<serde_json::Value>(&token);
                let again = verifier.verify::<serde_json::Value>(&token);
                assert_eq!(
                    first
                        .as_ref()
                        .map(|c| c.custom().clone())
                        .map_err(|e| e.kind()),
                    again
                        .as_ref()
                        .map(|c| c.custom().clone())
                        .map_err(|e| e.kind()),
                    "verification is deterministic"
                );
            }
        }
        1 => {
            let token = sign(br#"{"alg":"HS256","typ":"JWT"}"#, rest);
            signed(f, rest, &token, true);
        }
        _ => {
            let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let (header, payload) = (&rest[..split], rest.get(split + 1..).unwrap_or_default());
            let token = sign(header, payload);
            signed(f, payload, &token, false);
        }
    }
}

/// A token signed with the fixtures' secret over `payload`.
fn signed(f: &Fixtures, payload: &[u8], token: &str, good_header: bool) {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Typed {
        sub: Option<String>,
        role: Option<serde_json::Value>,
        level: Option<u32>,
    }
    for verifier in [&f.hs, &f.open, &f.profile, &f.by_issuer] {
        match verifier.verify::<serde_json::Value>(token) {
            Ok(claims) => {
                // Only a JSON object verifies, and its claims are that object.
                let parsed: serde_json::Value = serde_json::from_slice(payload).unwrap();
                assert!(parsed.is_object());
                assert_eq!(claims.custom(), &parsed);
                let registered = claims.registered();
                assert_eq!(registered.sub.as_deref(), parsed["sub"].as_str());
                // What the verifier located in the payload (the quick
                // reader, or the strict one) is what a full parse reads.
                assert_eq!(claims.subject(), registered.sub.as_deref());
                assert_eq!(claims.issuer(), registered.iss.as_deref());
                assert_eq!(claims.token_id(), registered.jti.as_deref());
                assert_eq!(claims.session_id(), registered.sid.as_deref());
                // A verified token is within its time bounds as a full
                // parse reads them (the default leeway, 30 s, and a second
                // for the clock to move).
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64;
                assert!(
                    registered
                        .exp
                        .is_none_or(|exp| now < exp.saturating_add(31))
                );
                assert!(
                    registered
                        .nbf
                        .is_none_or(|nbf| nbf <= now.saturating_add(31))
                );
                // And for us, as a full parse reads it.
                if !std::ptr::eq(verifier, &f.open) {
                    assert!(
                        registered.aud.iter().any(|a| a == AUD),
                        "{:?}",
                        registered.aud
                    );
                }
            }
            Err(error) => {
                if good_header {
                    // The signature holds and the header is plain: what
                    // fails is the payload or the claims.
                    assert!(
                        !matches!(
                            error.kind(),
                            AuthErrorKind::InvalidSignature
                                | AuthErrorKind::UnknownKey
                                | AuthErrorKind::UnsupportedAlgorithm
                                | AuthErrorKind::InvalidType
                                | AuthErrorKind::UnsupportedCritical
                        ) || std::ptr::eq(verifier, &f.profile),
                        "{error:?}"
                    );
                }
            }
        }
        let _ = verifier.verify::<Typed>(token);
    }
    // `many` has no key without a kid: a token naming none is unknown.
    if good_header && token.len() <= tower_jwt_auth::DEFAULT_MAX_TOKEN_LEN {
        assert_eq!(
            f.many
                .verify::<serde_json::Value>(token)
                .unwrap_err()
                .kind(),
            AuthErrorKind::UnknownKey
        );
    }
    // The role layer reads the verified payload once more, its own way.
    for role in [
        RequireRoleLayer::any_of(["admin"]).claim_path(["realm_access", "roles"]),
        RequireRoleLayer::any_of(["read"]).scope(),
        RequireRoleLayer::all_of(["a", "b"])
            .claim("roles")
            .hierarchy(RoleHierarchy::new().grant("c", ["a", "b"])),
        RequireRoleLayer::any_of(["ADMIN"]),
        RequireRoleLayer::any_of(["x"]).claim_path(["a", "b", "c", "d"]),
    ] {
        let service = JwtAuthLayer::<serde_json::Value>::new(f.open.clone())
            .layer(role.layer(Inner { optional: false }));
        let request = Request::builder()
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(String::new())
            .unwrap();
        check_layer_response(&send(service, request));
    }
}

/// Token extraction from raw headers, through `JwtAuthLayer` with each token
/// source: one header per line (`name: value`); `$T` stands for a valid token.
pub fn extract(data: &[u8]) {
    let f = fixtures();
    let mut request = Request::builder();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        let value = replace(
            line[colon + 1..].trim_ascii(),
            TOKEN_MARK,
            f.valid.as_bytes(),
        );
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_bytes(&value),
        ) {
            request = request.header(name, value);
        }
    }
    let Ok(request) = request.body(String::new()) else {
        return;
    };
    let sources = [
        TokenSource::AuthorizationHeader,
        TokenSource::Cookie("access_token".to_owned()),
        TokenSource::Header(HeaderName::from_static("x-token")),
        TokenSource::WebSocketProtocol("jwt".to_owned()),
    ];
    for optional in [false, true] {
        for source in &sources {
            let mut builder = JwtAuthLayer::<serde_json::Value>::builder(f.hs.clone())
                .token_source(source.clone());
            if optional {
                builder = builder.optional();
            }
            let layer = builder.build().unwrap();
            let mut copy = Request::new(String::new());
            *copy.headers_mut() = request.headers().clone();
            let response = send(layer.layer(Inner { optional }), copy);
            check_layer_response(&response);
            // A bare request, without any credential header, is never a 400.
            if request.headers().is_empty() {
                let expected = if optional { 200 } else { 401 };
                assert_eq!(response.status().as_u16(), expected);
            }
        }
    }
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(needle) {
            out.extend_from_slice(with);
            rest = &rest[needle.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// `RefreshEndpoint` over a `MemoryStore` with one fresh session. The first
/// byte picks the content type (JSON, form, none, other), whether the
/// endpoint takes a cookie (then the first line of the rest is the `Cookie`
/// header), the method, and whether the request is sent twice; `$T` stands
/// for the session's refresh token.
pub fn refresh_endpoint(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap());
    let tokens = RefreshTokens::new(Arc::new(MemoryStore::new()), issuer);
    let login = block_on(tokens.login(Subject::new("user-1"), Some("fuzz"))).unwrap();
    let refresh = login.refresh_token.as_str().as_bytes();
    let subject =
        |user: String| async move { Ok::<_, StoreError>(Some(Subject::new(user).role("USER"))) };
    let cookie = flags & 0b100 != 0;
    let endpoint = if cookie {
        RefreshEndpoint::builder(tokens.clone(), subject)
            .cookie("__Host-refresh")
            .build()
            .unwrap()
    } else {
        RefreshEndpoint::new(tokens.clone(), subject)
    };
    let (cookie_header, body) = if cookie {
        let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        (
            Some(&rest[..split]),
            rest.get(split + 1..).unwrap_or_default(),
        )
    } else {
        (None, rest)
    };
    let body = String::from_utf8_lossy(&replace(body, TOKEN_MARK, refresh)).into_owned();
    let content_type = match flags & 0b11 {
        0 => Some("application/json"),
        1 => Some("application/x-www-form-urlencoded; charset=utf-8"),
        2 => None,
        _ => Some("text/plain"),
    };
    let method = if flags & 0b1000 == 0 {
        http::Method::POST
    } else {
        http::Method::GET
    };
    let request = || {
        let mut request = Request::builder()
            .method(method.clone())
            .uri("/token/refresh");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(value) = cookie_header
            .map(|c| replace(c, TOKEN_MARK, refresh))
            .and_then(|c| HeaderValue::from_bytes(&c).ok())
        {
            // The CSRF defence of cookie mode: a script's custom header.
            request = request
                .header(header::COOKIE, value)
                .header("x-requested-with", "XMLHttpRequest");
        }
        request.body(body.clone()).unwrap()
    };
    let verifier = &fixtures().open;
    let mut endpoint = endpoint;
    let times = if flags & 0b1_0000 == 0 { 1 } else { 2 };
    let mut statuses = Vec::new();
    for _ in 0..times {
        block_on(std::future::poll_fn(|cx| {
            Service::<Request<String>>::poll_ready(&mut endpoint, cx)
        }))
        .unwrap();
        let response = block_on(endpoint.call(request())).unwrap();
        let status = response.status().as_u16();
        // The memory store never fails: no 500 or 503. Cookie mode may
        // refuse a request its CSRF defence does not trust (403).
        assert!(
            [200, 400, 405].contains(&status) || (cookie && status == 403),
            "unexpected status {status}"
        );
        let json: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        if status == 200 {
            let access = json["access_token"].as_str().unwrap();
            let claims = verifier.verify::<serde_json::Value>(access).unwrap();
            assert_eq!(claims.subject(), Some("user-1"));
            assert_eq!(
                json.get("refresh_token").is_some(),
                !cookie,
                "with a cookie, the refresh token is never in the body"
            );
        } else {
            assert!(json["error"].is_string());
        }
        statuses.push(status);
    }
    // The same refresh token twice, without a grace window: reuse.
    if statuses == [200, 200] {
        panic!("a refresh token was rotated twice");
    }
}

/// JWK Set and JWK parsing; a set that parses builds a verifier, which then
/// verifies (or refuses) a token without panicking.
pub fn jwk_set(data: &[u8]) {
    let f = fixtures();
    let parsed = [
        JwkSet::from_json(data).map(JwkSet::into_keys),
        JwkSet::from_json_with_defaults(
            data,
            [
                Algorithm::PS256,
                Algorithm::ES256,
                Algorithm::EdDSA,
                Algorithm::HS512,
            ],
        )
        .map(JwkSet::into_keys),
        VerificationKey::from_jwk(data).map(|key| vec![key]),
    ];
    for keys in parsed.into_iter().flatten() {
        // Anything accepted is JSON, with no member name repeated.
        assert!(serde_json::from_slice::<serde_json::Value>(data).is_ok());
        assert!(!keys.is_empty());
        if let Ok(verifier) = Verifier::builder().keys(keys).build() {
            let _ = verifier.verify::<serde_json::Value>(&f.valid);
            let _ =
                verifier.verify::<serde_json::Value>(&sign(br#"{"alg":"HS256","kid":"k"}"#, b"{}"));
        }
    }
}
