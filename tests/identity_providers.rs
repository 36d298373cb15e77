//! Real identity providers (`oidc-provider`, run by tests/oidc/provider.mjs):
//! several issuers behind one layer, key rotation, a provider that is down
//! at start or goes down mid-run. Every reply is checked whole: status,
//! `WWW-Authenticate` (or its absence) and body.

#[path = "support/oidc.rs"]
mod oidc;

use std::time::{Duration, Instant};

use axum::{Router, routing::post};
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
/// The resource (and audience) of issuer B, another API than A's default.
const RESOURCE_B: &str = "https://b.api.example.test";
/// The longest any test waits for the provider or the keys.
const BOUND: Duration = Duration::from_secs(20);
const UNAVAILABLE: &str = r#"{"error":"temporarily_unavailable","error_description":"authentication is temporarily unavailable"}"#;

/// A reply: status, `WWW-Authenticate`, body.
type Reply = (StatusCode, Option<String>, String);

fn ok(body: &str) -> Reply {
    (StatusCode::OK, None, body.to_owned())
}

fn invalid_token(description: &str) -> Reply {
    (
        StatusCode::UNAUTHORIZED,
        Some(format!(
            r#"Bearer realm="api", error="invalid_token", error_description="{description}""#
        )),
        format!(r#"{{"error":"invalid_token","error_description":"{description}"}}"#),
    )
}

fn unavailable() -> Reply {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        UNAVAILABLE.to_owned(),
    )
}

/// Two providers, two issuers, shared by the tests that do not change them.
async fn idp_a() -> Option<&'static Provider> {
    static IDP: OnceCell<Option<Provider>> = OnceCell::const_new();
    IDP.get_or_init(|| Provider::start(ProviderOptions::new()))
        .await
        .as_ref()
}

async fn idp_b() -> Option<&'static Provider> {
    static IDP: OnceCell<Option<Provider>> = OnceCell::const_new();
    IDP.get_or_init(|| Provider::start(ProviderOptions::new().resource(RESOURCE_B)))
        .await
        .as_ref()
}

/// The keys of `idp` by discovery; an unknown `kid` refetches at once.
async fn remote(idp: &Provider) -> RemoteJwks {
    RemoteJwks::discover(idp.issuer())
        .unknown_kid_cooldown(Duration::ZERO)
        .build()
        .await
        .unwrap()
}

/// The RFC 9068 verifier of `remote`'s issuer (taken from discovery).
fn verifier(remote: RemoteJwks, audience: &str) -> Verifier {
    Verifier::builder()
        .jwks(remote)
        .audience(audience)
        .rfc9068()
        .build()
        .unwrap()
}

/// Answers `iss client_id` of the verified token.
fn app(verifier: Verifier) -> Router {
    Router::new()
        .route(
            "/me",
            post(|claims: Claims<Value>| async move {
                format!(
                    "{} {}",
                    claims["iss"].as_str().unwrap(),
                    claims["client_id"].as_str().unwrap()
                )
            }),
        )
        .layer(JwtAuthLayer::<Value>::new(verifier))
}

fn request(token: Option<&str>) -> http::request::Builder {
    let mut request = Request::post("/me");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request
}

async fn call(app: &Router, token: Option<&str>) -> Reply {
    let request = request(token).body(Empty::<Bytes>::new()).unwrap();
    let response = tokio::time::timeout(BOUND, app.clone().oneshot(request))
        .await
        .expect("the layer answers in bounded time")
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

/// A gRPC call: status, `grpc-status`, `grpc-message`, whether a challenge came.
async fn call_grpc(app: &Router, token: &str) -> (StatusCode, String, String, bool) {
    let request = request(Some(token))
        .header(header::CONTENT_TYPE, "application/grpc")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(BOUND, app.clone().oneshot(request))
        .await
        .expect("the layer answers in bounded time")
        .unwrap();
    let text = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    (
        response.status(),
        text("grpc-status"),
        text("grpc-message"),
        response.headers().contains_key(header::WWW_AUTHENTICATE),
    )
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// An `at+jwt` of `issuer` that needs the keys to be judged: its `kid` is
/// looked up, its signature never checked.
fn unverifiable(issuer: &str, audience: &str) -> String {
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "es256-not-yet-known"});
    let claims = json!({
        "iss": issuer, "aud": audience, "sub": "client-es256", "client_id": "client-es256",
        "iat": 1_700_000_000u64, "exp": 4_000_000_000u64, "jti": "j",
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode([0u8; 64])
    )
}

/// A port nobody listens on now, for a provider started later.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn two_providers_are_two_issuers_of_one_layer() {
    let (Some(a), Some(b)) = (idp_a().await, idp_b().await) else {
        return;
    };
    assert_ne!(a.issuer(), b.issuer());
    assert_ne!(a.audience(), b.audience());
    // A with its own RemoteJwks, B in one call.
    let by_issuer = Verifier::by_issuer([
        verifier(remote(a).await, a.audience()),
        Verifier::discover(b.issuer(), b.audience()).await.unwrap(),
    ])
    .unwrap();
    assert!(by_issuer.is_ready());
    let app = app(by_issuer);

    for idp in [a, b] {
        for alg in ["RS256", "ES256", "EdDSA"] {
            let token = idp.token(alg, SCOPE).await;
            let header = header_of(&token);
            assert_eq!(header["typ"], "at+jwt");
            assert_eq!(header["alg"], alg);
            let client = oidc::client_id(alg);
            assert_eq!(
                call(&app, Some(&token)).await,
                ok(&format!("{} {client}", idp.issuer())),
                "{alg} of {}",
                idp.issuer()
            );
        }
    }

    assert_eq!(
        call(&app, None).await,
        (
            StatusCode::UNAUTHORIZED,
            Some(r#"Bearer realm="api""#.to_owned()),
            r#"{"error":"unauthorized","error_description":"a bearer token is required"}"#
                .to_owned()
        )
    );
}

/// Issuer B's genuine token where only A is configured: refused by its `iss`
/// before any key is looked up.
#[tokio::test]
async fn a_token_of_an_issuer_not_configured_is_refused() {
    let (Some(a), Some(b)) = (idp_a().await, idp_b().await) else {
        return;
    };
    let remote_a = remote(a).await;
    let app = app(Verifier::by_issuer([verifier(remote_a.clone(), a.audience())]).unwrap());
    let kids = remote_a.key_ids();

    for alg in ["RS256", "ES256", "EdDSA"] {
        let foreign = b.token(alg, SCOPE).await;
        assert_eq!(
            call(&app, Some(&foreign)).await,
            invalid_token("the token issuer is not accepted"),
            "{alg}"
        );
    }
    // A's own token, and no key was fetched for B's.
    let token = a.token("ES256", SCOPE).await;
    assert_eq!(
        call(&app, Some(&token)).await,
        ok(&format!("{} client-es256", a.issuer()))
    );
    assert_eq!(remote_a.key_ids(), kids);
}

/// A rotation: the new key signs and is fetched on its first token while the
/// old one still verifies; once the provider withdraws the old key, a
/// refresh drops it and its tokens are refused. The other issuer is untouched.
#[tokio::test]
async fn a_rotated_key_is_fetched_and_a_withdrawn_one_refused() {
    let Some(b) = idp_b().await else { return };
    let Some(mut a) = Provider::start(ProviderOptions::new().algs(&["ES256", "EdDSA"])).await
    else {
        return;
    };
    let remote_a = remote(&a).await;
    let app = app(Verifier::by_issuer([
        verifier(remote_a.clone(), a.audience()),
        verifier(remote(b).await, b.audience()),
    ])
    .unwrap());
    let issuer = a.issuer().to_owned();
    let accepted = |alg: &str| ok(&format!("{issuer} {}", oidc::client_id(alg)));
    let b_token = b.token("RS256", SCOPE).await;
    let b_accepted = ok(&format!("{} client-rs256", b.issuer()));

    let old_es = a.token("ES256", SCOPE).await;
    let old_ed = a.token("EdDSA", SCOPE).await;
    let (old_es_kid, old_ed_kid) = (a.signing_kid("ES256"), a.signing_kid("EdDSA"));
    assert_eq!(call(&app, Some(&old_es)).await, accepted("ES256"));
    assert_eq!(call(&app, Some(&old_ed)).await, accepted("EdDSA"));

    a.restart(Keys::Rotate).await;
    let (new_es_kid, new_ed_kid) = (a.signing_kid("ES256"), a.signing_kid("EdDSA"));
    assert_ne!(new_es_kid, old_es_kid);
    assert_ne!(new_ed_kid, old_ed_kid);
    let new_es = a.token("ES256", SCOPE).await;
    let new_ed = a.token("EdDSA", SCOPE).await;
    assert_eq!(header_of(&new_es)["kid"], new_es_kid.as_str());
    assert!(!remote_a.key_ids().contains(&new_es_kid));
    // The first token with the new kid refetches the set.
    assert_eq!(call(&app, Some(&new_es)).await, accepted("ES256"));
    let mut kids = remote_a.key_ids();
    kids.sort();
    let mut published = a.kids();
    published.sort();
    assert_eq!(kids, published);
    assert_eq!(call(&app, Some(&new_ed)).await, accepted("EdDSA"));
    // The old keys are still published: their tokens still verify.
    assert_eq!(call(&app, Some(&old_es)).await, accepted("ES256"));
    assert_eq!(call(&app, Some(&old_ed)).await, accepted("EdDSA"));

    // The provider withdraws the old keys.
    let mut jwks = a.private_jwks();
    jwks["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] == new_es_kid.as_str() || k["kid"] == new_ed_kid.as_str());
    a.write_jwks(&jwks);
    a.restart(Keys::Keep).await;
    assert_eq!(a.kids(), [new_es_kid.as_str(), new_ed_kid.as_str()]);
    // What the periodic refresh does, now.
    tokio::time::timeout(BOUND, remote_a.refresh())
        .await
        .expect("bounded")
        .unwrap();
    let mut kids = remote_a.key_ids();
    kids.sort();
    let mut expected = vec![new_es_kid.clone(), new_ed_kid.clone()];
    expected.sort();
    assert_eq!(kids, expected);

    assert_eq!(
        call(&app, Some(&old_es)).await,
        invalid_token("the token key is not known")
    );
    assert_eq!(
        call(&app, Some(&old_ed)).await,
        invalid_token("the token key is not known")
    );
    assert_eq!(call(&app, Some(&new_es)).await, accepted("ES256"));
    assert_eq!(call(&app, Some(&new_ed)).await, accepted("EdDSA"));
    assert_eq!(call(&app, Some(&b_token)).await, b_accepted);
}

/// The provider is down when the service starts: with `lazy`, the service
/// starts anyway and answers 503 until the provider is up and the keys are in.
#[tokio::test]
async fn a_lazy_start_answers_503_until_the_provider_is_up() {
    if !oidc::ensure_installed() {
        return;
    }
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let audience = ProviderOptions::new().resource;

    let started = Instant::now();
    let remote = tokio::time::timeout(BOUND, RemoteJwks::discover(&issuer).lazy().build())
        .await
        .expect("a lazy build returns at once")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(remote.issuer(), Some(issuer.as_str()));
    assert_eq!(remote.jwks_url(), None);
    assert!(!remote.is_ready());
    let verifier = verifier(remote.clone(), &audience);
    assert!(!verifier.is_ready());
    let app = app(verifier.clone());

    let waiting = unverifiable(&issuer, &audience);
    assert_eq!(call(&app, Some(&waiting)).await, unavailable());
    assert_eq!(
        call_grpc(&app, &waiting).await,
        (
            StatusCode::OK,
            "14".to_owned(),
            "authentication is temporarily unavailable".to_owned(),
            false
        )
    );
    // A token that is malformed, or none, needs no keys to be refused.
    assert_eq!(
        call(&app, Some("not-a-jwt")).await,
        invalid_token("the token is malformed")
    );

    let Some(idp) = Provider::start(ProviderOptions::new().algs(&["ES256"]).port(port)).await
    else {
        return;
    };
    assert_eq!(idp.issuer(), issuer);
    tokio::time::timeout(BOUND, remote.ready())
        .await
        .expect("the keys arrive once the provider is up");
    assert!(remote.is_ready());
    assert!(verifier.is_ready());
    assert_eq!(
        remote.jwks_url().map(str::to_owned),
        Some(format!("{issuer}/jwks"))
    );
    let token = idp.token("ES256", SCOPE).await;
    assert_eq!(
        call(&app, Some(&token)).await,
        ok(&format!("{issuer} client-es256"))
    );
}

/// The provider goes down mid-run: the last good keys keep serving; with
/// `max_stale`, only until they are that old, then 503 until a fetch works.
#[tokio::test]
async fn a_provider_down_mid_run_serves_stale_keys_up_to_max_stale() {
    let Some(mut idp) = Provider::start(ProviderOptions::new().algs(&["ES256"])).await else {
        return;
    };
    let issuer = idp.issuer().to_owned();
    let token = idp.token("ES256", SCOPE).await;
    let accepted = ok(&format!("{issuer} client-es256"));
    let max_stale = Duration::from_secs(2);
    let refresh = Duration::from_millis(300);

    let lenient = RemoteJwks::discover(&issuer)
        .refresh_interval(refresh)
        .build()
        .await
        .unwrap();
    let strict = RemoteJwks::discover(&issuer)
        .refresh_interval(refresh)
        .max_stale(max_stale)
        .build()
        .await
        .unwrap();
    let lenient_app = app(verifier(lenient.clone(), idp.audience()));
    let strict_app = app(verifier(strict.clone(), idp.audience()));
    assert_eq!(call(&lenient_app, Some(&token)).await, accepted);
    assert_eq!(call(&strict_app, Some(&token)).await, accepted);

    idp.stop();
    let stopped = Instant::now();
    assert!(lenient.refresh().await.is_err(), "the provider is down");
    assert!(strict.refresh().await.is_err(), "the provider is down");
    // The last good keys still serve.
    assert_eq!(call(&lenient_app, Some(&token)).await, accepted);
    assert_eq!(call(&strict_app, Some(&token)).await, accepted);
    assert!(strict.is_ready());

    // Past `max_stale` after the last successful fetch: 503, no challenge.
    let deadline = stopped + BOUND;
    while strict.is_ready() {
        assert!(Instant::now() < deadline, "the keys never went stale");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stopped.elapsed() >= max_stale - refresh - Duration::from_millis(100));
    assert_eq!(call(&strict_app, Some(&token)).await, unavailable());
    assert_eq!(
        call_grpc(&strict_app, &token).await,
        (
            StatusCode::OK,
            "14".to_owned(),
            "authentication is temporarily unavailable".to_owned(),
            false
        )
    );
    // Without `max_stale` the keys serve for as long as the outage lasts.
    assert!(lenient.is_ready());
    assert_eq!(call(&lenient_app, Some(&token)).await, accepted);

    // The provider is back: one successful fetch and the keys serve again.
    idp.restart(Keys::Keep).await;
    tokio::time::timeout(BOUND, strict.refresh())
        .await
        .expect("bounded")
        .unwrap();
    assert!(strict.is_ready());
    assert_eq!(call(&strict_app, Some(&token)).await, accepted);
}
