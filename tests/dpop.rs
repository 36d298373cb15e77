//! DPoP (RFC 9449) at the resource: tokens from a real OpenID provider
//! (`oidc-provider` with `features.dPoP`), proofs made by `jose`, a JOSE
//! library this crate does not use. Every refusal has its own test, with
//! the exact status and challenges, and the inner service never called.

#[path = "support/oidc.rs"]
mod oidc;
#[path = "support/dpop.rs"]
mod proofs;

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use http::{Request, Response, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tower::ServiceExt;
use tower_jwt_auth::{
    Algorithm, AuthError, AuthErrorKind, Claims, JwtAuthLayer, Presentation, SigningKey,
    TokenIssuer, VerificationKey, Verifier,
    dpop::{Dpop, MemoryReplayCache},
    keys::RemoteJwks,
};

use oidc::{Provider, ProviderOptions, client_id};

/// The URL clients call the API at.
const API: &str = "https://api.example.test";
/// The request's path, and its URL as a proof names it.
const PATH: &str = "/orders?page=2";
const HTU: &str = "https://api.example.test/orders";
const ALGS: &str = "ES256 ES384 EdDSA PS256 RS256";

/// The provider, two client keys (`a`, `b`), a token bound to `a` and an
/// unbound one.
struct Fixture {
    idp: Provider,
    keys: Value,
    bound: String,
    unbound: String,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceCell<Option<Fixture>> = OnceCell::const_new();
    FIXTURE
        .get_or_init(|| async {
            let idp = Provider::start(ProviderOptions::new().algs(&["ES256"])).await?;
            let keys = proofs::keys(&[("a", "ES256"), ("b", "ES256")]);
            let bound = dpop_token(&idp, &keys, "a").await;
            let unbound = idp.token("ES256", "read").await;
            Some(Fixture {
                idp,
                keys,
                bound,
                unbound,
            })
        })
        .await
        .as_ref()
}

/// A token of the provider bound to the key `name` (a DPoP proof at its
/// token endpoint).
async fn dpop_token(idp: &Provider, keys: &Value, name: &str) -> String {
    let proof = proofs::proof(
        keys,
        json!({"key": name, "htm": "POST", "htu": idp.token_endpoint()}),
    );
    let resource = idp.resource().to_owned();
    let response = idp
        .token_request(
            &client_id("ES256"),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read"),
                ("resource", &resource),
            ],
            &[("DPoP", &proof)],
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["token_type"], "DPoP", "{}", response.body);
    response.body["access_token"].as_str().unwrap().to_owned()
}

async fn verifier(idp: &Provider) -> Verifier {
    let remote = RemoteJwks::discover(idp.issuer()).build().await.unwrap();
    Verifier::builder()
        .jwks(remote)
        .audience(idp.audience())
        .rfc9068()
        .build()
        .unwrap()
}

fn dpop(cache: &Arc<MemoryReplayCache>) -> Dpop {
    Dpop::builder()
        .base_url(API)
        .replay_cache(Arc::clone(cache))
        .build()
        .unwrap()
}

/// How the layer takes tokens.
#[derive(Clone, Copy)]
enum Mode {
    Bearer,
    OrBearer,
    Only,
}

/// The status, the `WWW-Authenticate` lines, the error kind, and how often
/// the inner service ran.
struct Reply {
    status: StatusCode,
    challenges: Vec<String>,
    nonce: Option<String>,
    kind: Option<AuthErrorKind>,
    calls: usize,
    /// How many proofs the replay cache recorded.
    recorded: usize,
    body: String,
}

async fn send(idp: &Provider, mode: Mode, request: Request<()>) -> Reply {
    let cache = Arc::new(MemoryReplayCache::new(1_000));
    let presentation = match mode {
        Mode::Bearer => Presentation::bearer(),
        Mode::OrBearer => dpop(&cache).or_bearer(),
        Mode::Only => dpop(&cache).only(),
    };
    let layer = JwtAuthLayer::<Value>::builder(verifier(idp).await)
        .presentation(presentation)
        .build()
        .unwrap();
    let mut reply = send_to(&layer, request).await;
    reply.recorded = cache.len();
    reply
}

async fn send_to(layer: &JwtAuthLayer<Value>, request: Request<()>) -> Reply {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let inner = tower::service_fn(move |request: Request<()>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let claims = request.extensions().get::<Claims<Value>>().cloned();
        async move {
            let jkt = claims.and_then(|c| c.jkt().map(str::to_owned));
            Ok::<_, Infallible>(Response::new(jkt.unwrap_or_default()))
        }
    });
    let response = tower::Layer::layer(layer, inner)
        .oneshot(request)
        .await
        .unwrap();
    Reply {
        status: response.status(),
        challenges: response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect(),
        nonce: response
            .headers()
            .get("dpop-nonce")
            .map(|v| v.to_str().unwrap().to_owned()),
        kind: response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
        calls: calls.load(Ordering::SeqCst),
        recorded: 0,
        body: response.into_body(),
    }
}

fn request(scheme: &str, token: &str, proof: Option<&str>) -> Request<()> {
    let mut request = Request::get(PATH).header(header::AUTHORIZATION, format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.body(()).unwrap()
}

/// A valid proof of `key` for the bound token, with `overrides`.
fn proof_for(fixture: &Fixture, key: &str, overrides: Value) -> String {
    let mut spec = json!({"key": key, "htm": "GET", "htu": HTU, "accessToken": fixture.bound});
    for (name, value) in overrides.as_object().unwrap() {
        spec[name] = value.clone();
    }
    proofs::proof(&fixture.keys, spec)
}

/// A refusal: 401, the inner service never called, no proof recorded, the
/// error on the DPoP challenge beside a plain Bearer one.
fn assert_dpop_refusal(reply: &Reply, kind: AuthErrorKind, code: &str, description: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(reply.calls, 0, "the inner service must not run");
    assert_eq!(reply.recorded, 0, "a refused proof is not recorded");
    assert_eq!(reply.kind, Some(kind));
    assert_eq!(
        reply.challenges,
        [
            r#"Bearer realm="api""#.to_owned(),
            format!(
                r#"DPoP realm="api", error="{code}", error_description="{description}", algs="{ALGS}""#
            ),
        ]
    );
}

#[tokio::test]
async fn a_bound_token_with_its_proof_is_accepted() {
    let Some(fx) = fixture().await else { return };
    let proof = proof_for(fx, "a", json!({}));
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.bound, Some(&proof)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.challenges);
    assert_eq!(reply.calls, 1);
    assert_eq!(reply.recorded, 1, "the proof is recorded once accepted");
    // The token's cnf.jkt is jose's thumbprint of the key.
    assert_eq!(reply.body, proofs::thumbprint(&fx.keys, "a"));
}

#[tokio::test]
async fn an_unbound_bearer_token_is_still_accepted_beside_dpop() {
    let Some(fx) = fixture().await else { return };
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("Bearer", &fx.unbound, None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.calls, 1);
}

#[tokio::test]
async fn wrong_htu_is_refused() {
    let Some(fx) = fixture().await else { return };
    let proof = proof_for(fx, "a", json!({"htu": "https://api.example.test/other"}));
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.bound, Some(&proof)),
    )
    .await;
    assert_dpop_refusal(
        &reply,
        AuthErrorKind::InvalidDpopProof,
        "invalid_dpop_proof",
        "the DPoP proof is for another URL",
    );
}

#[tokio::test]
async fn htu_compares_normalized() {
    let Some(fx) = fixture().await else { return };
    // Scheme and host case, the default port, a query and a fragment: the same URL.
    let proof = proof_for(
        fx,
        "a",
        json!({"htu": "HTTPS://API.example.test:443/orders?page=9#top"}),
    );
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.bound, Some(&proof)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.challenges);
}

#[tokio::test]
async fn wrong_htm_is_refused() {
    let Some(fx) = fixture().await else { return };
    let proof = proof_for(fx, "a", json!({"htm": "POST"}));
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.bound, Some(&proof)),
    )
    .await;
    assert_dpop_refusal(
        &reply,
        AuthErrorKind::InvalidDpopProof,
        "invalid_dpop_proof",
        "the DPoP proof is for another method",
    );
}

#[tokio::test]
async fn a_proof_by_another_key_is_refused() {
    let Some(fx) = fixture().await else { return };
    let proof = proof_for(fx, "b", json!({}));
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.bound, Some(&proof)),
    )
    .await;
    assert_dpop_refusal(
        &reply,
        AuthErrorKind::KeyMismatch,
        "invalid_token",
        "the token is not bound to the DPoP proof's key",
    );
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let Some(fx) = fixture().await else { return };
    let layer = JwtAuthLayer::<Value>::builder(verifier(&fx.idp).await)
        .presentation(dpop(&Arc::new(MemoryReplayCache::new(1_000))).or_bearer())
        .build()
        .unwrap();
    let proof = proof_for(fx, "a", json!({}));
    let first = send_to(&layer, request("DPoP", &fx.bound, Some(&proof))).await;
    assert_eq!(first.status, StatusCode::OK);
    let replay = send_to(&layer, request("DPoP", &fx.bound, Some(&proof))).await;
    assert_dpop_refusal(
        &replay,
        AuthErrorKind::InvalidDpopProof,
        "invalid_dpop_proof",
        "the DPoP proof was already used",
    );
}

#[tokio::test]
async fn a_stale_proof_is_refused() {
    let Some(fx) = fixture().await else { return };
    let proof = proof_for(fx, "a", json!({"iat": now() - 120}));
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.bound, Some(&proof)),
    )
    .await;
    assert_dpop_refusal(
        &reply,
        AuthErrorKind::InvalidDpopProof,
        "invalid_dpop_proof",
        "the DPoP proof is too old or from the future",
    );
    let future = proof_for(fx, "a", json!({"iat": now() + 60}));
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.bound, Some(&future)),
    )
    .await;
    assert_eq!(reply.kind, Some(AuthErrorKind::InvalidDpopProof));
}

#[tokio::test]
async fn wrong_ath_is_refused() {
    let Some(fx) = fixture().await else { return };
    // A proof for the unbound token, sent with the bound one.
    let proof = proof_for(fx, "a", json!({"accessToken": fx.unbound}));
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.bound, Some(&proof)),
    )
    .await;
    assert_dpop_refusal(
        &reply,
        AuthErrorKind::InvalidDpopProof,
        "invalid_dpop_proof",
        "the DPoP proof is for another access token",
    );
}

#[tokio::test]
async fn a_bound_token_as_bearer_is_refused() {
    let Some(fx) = fixture().await else { return };
    let reply = send(&fx.idp, Mode::OrBearer, request("Bearer", &fx.bound, None)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.calls, 0);
    assert_eq!(reply.kind, Some(AuthErrorKind::ProofRequired));
    assert_eq!(
        reply.challenges,
        [
            r#"Bearer realm="api", error="invalid_token", error_description="the token must be presented with a DPoP proof""#.to_owned(),
            format!(r#"DPoP realm="api", algs="{ALGS}""#),
        ]
    );
    // A layer without DPoP refuses it too: the binding is never dropped.
    let reply = send(&fx.idp, Mode::Bearer, request("Bearer", &fx.bound, None)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.calls, 0);
    assert_eq!(
        reply.challenges,
        [
            r#"Bearer realm="api", error="invalid_token", error_description="the token must be presented with a DPoP proof""#
        ]
    );
}

#[tokio::test]
async fn a_missing_proof_is_refused() {
    let Some(fx) = fixture().await else { return };
    let reply = send(&fx.idp, Mode::OrBearer, request("DPoP", &fx.bound, None)).await;
    assert_dpop_refusal(
        &reply,
        AuthErrorKind::InvalidDpopProof,
        "invalid_dpop_proof",
        "a DPoP proof is required",
    );
}

#[tokio::test]
async fn a_proof_with_a_private_key_in_its_header_is_refused() {
    let Some(fx) = fixture().await else { return };
    let proof = proof_for(fx, "a", json!({"privateJwk": true}));
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.bound, Some(&proof)),
    )
    .await;
    assert_dpop_refusal(
        &reply,
        AuthErrorKind::InvalidDpopProof,
        "invalid_dpop_proof",
        "the DPoP proof's jwk is a private key",
    );
}

#[tokio::test]
async fn a_none_proof_is_refused() {
    let Some(fx) = fixture().await else { return };
    let proof = proof_for(fx, "a", json!({"unsecured": true}));
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.bound, Some(&proof)),
    )
    .await;
    assert_dpop_refusal(
        &reply,
        AuthErrorKind::InvalidDpopProof,
        "invalid_dpop_proof",
        "the DPoP proof's algorithm is not accepted",
    );
}

#[tokio::test]
async fn an_hs256_proof_is_refused() {
    let Some(fx) = fixture().await else { return };
    let proof = proof_for(
        fx,
        "a",
        json!({"hmacSecret": "a secret of at least thirty-two bytes!"}),
    );
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.bound, Some(&proof)),
    )
    .await;
    assert_dpop_refusal(
        &reply,
        AuthErrorKind::InvalidDpopProof,
        "invalid_dpop_proof",
        "the DPoP proof's algorithm is not accepted",
    );
}

#[tokio::test]
async fn a_proof_without_dpop_typ_is_refused() {
    let Some(fx) = fixture().await else { return };
    let proof = proof_for(fx, "a", json!({"typ": "JWT"}));
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.bound, Some(&proof)),
    )
    .await;
    assert_dpop_refusal(
        &reply,
        AuthErrorKind::InvalidDpopProof,
        "invalid_dpop_proof",
        "the DPoP proof's typ is not dpop+jwt",
    );
}

#[tokio::test]
async fn an_unbound_token_with_a_proof_is_refused() {
    let Some(fx) = fixture().await else { return };
    let proof = proof_for(fx, "a", json!({"accessToken": fx.unbound}));
    let reply = send(
        &fx.idp,
        Mode::OrBearer,
        request("DPoP", &fx.unbound, Some(&proof)),
    )
    .await;
    assert_dpop_refusal(
        &reply,
        AuthErrorKind::KeyMismatch,
        "invalid_token",
        "the token is not bound to the DPoP proof's key",
    );
}

#[tokio::test]
async fn dpop_only_refuses_bearer_tokens() {
    let Some(fx) = fixture().await else { return };
    let reply = send(&fx.idp, Mode::Only, request("Bearer", &fx.unbound, None)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.calls, 0);
    assert_eq!(reply.kind, Some(AuthErrorKind::ProofRequired));
    assert_eq!(
        reply.challenges,
        [format!(
            r#"DPoP realm="api", error="invalid_token", error_description="the token must be presented with a DPoP proof", algs="{ALGS}""#
        )]
    );
    // Without credentials: the DPoP challenge alone, no error code.
    let reply = send(&fx.idp, Mode::Only, Request::get(PATH).body(()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenges,
        [format!(r#"DPoP realm="api", algs="{ALGS}""#)]
    );
}

#[tokio::test]
async fn server_nonces_are_required_when_configured() {
    let Some(fx) = fixture().await else { return };
    let dpop = Dpop::builder()
        .base_url(API)
        .nonces(b"a nonce secret of at least 32 bytes!")
        .build()
        .unwrap();
    let layer = JwtAuthLayer::<Value>::builder(verifier(&fx.idp).await)
        .presentation(dpop.or_bearer())
        .build()
        .unwrap();
    let proof = proof_for(fx, "a", json!({}));
    let reply = send_to(&layer, request("DPoP", &fx.bound, Some(&proof))).await;
    assert_dpop_refusal(
        &reply,
        AuthErrorKind::UseDpopNonce,
        "use_dpop_nonce",
        "a DPoP proof with the server's nonce is required",
    );
    let nonce = reply.nonce.expect("a DPoP-Nonce header");
    let proof = proof_for(fx, "a", json!({"nonce": nonce}));
    let reply = send_to(&layer, request("DPoP", &fx.bound, Some(&proof))).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.challenges);
    // A nonce of another server is not ours.
    let proof = proof_for(
        fx,
        "a",
        json!({"nonce": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
    );
    let reply = send_to(&layer, request("DPoP", &fx.bound, Some(&proof))).await;
    assert_eq!(reply.kind, Some(AuthErrorKind::UseDpopNonce));
}

#[tokio::test]
async fn rsa_and_eddsa_proofs_are_accepted() {
    if !oidc::ensure_installed() {
        return;
    }
    // Tokens of our own issuer bound (cnf.jkt) to jose's thumbprints of
    // PS256 and EdDSA keys; the proofs by those keys.
    let secret = b"a secret of at least thirty-two bytes!";
    let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, secret).unwrap());
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(secret).unwrap())
        .build()
        .unwrap();
    let layer = JwtAuthLayer::<Value>::builder(verifier)
        .presentation(dpop(&Arc::new(MemoryReplayCache::new(1_000))).or_bearer())
        .build()
        .unwrap();
    let keys = proofs::keys(&[("r", "PS256"), ("e", "EdDSA")]);
    for name in ["r", "e"] {
        let jkt = proofs::thumbprint(&keys, name);
        let token = issuer.access_token("client").jkt(&jkt).sign().unwrap();
        let proof = proofs::proof(
            &keys,
            json!({"key": name, "htm": "GET", "htu": HTU, "accessToken": token.as_str()}),
        );
        let reply = send_to(&layer, request("DPoP", token.as_str(), Some(&proof))).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{name}: {:?}",
            reply.challenges
        );
        assert_eq!(reply.body, jkt);
    }
}
