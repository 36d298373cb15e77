//! Remote JWK Sets and OpenID Connect discovery, against a local provider
//! started on 127.0.0.1:0 by each test.

#[path = "../examples/axum_server/main.rs"]
#[allow(dead_code)]
mod axum_server;

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

// Tokio's clock: std's in the tests that run in real time, the paused
// clock in those that start paused (their waits are tokio timers, so the
// clock jumps ahead whenever every task waits, and no test sleeps for real).
use tokio::time::Instant;

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use http::{Request, Response, header::AUTHORIZATION};
use serde::Deserialize;
use serde_json::{Value, json};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_jwt_auth::{
    Algorithm, AuthError, AuthErrorKind, Claims, JwkSet, JwtAuthLayer, SigningKey, TokenIssuer,
    VerificationKey, Verifier,
    keys::{BoxFuture, DefaultClient, FetchError, JwksClient, RemoteJwks},
};

const RSA_PRIVATE: &[u8] = include_bytes!("keys/rsa_private.pem");
const RSA2_PRIVATE: &[u8] = include_bytes!("keys/rsa2_private.pem");
const EC_PRIVATE: &[u8] = include_bytes!("keys/ec_private.pem");
const ED_PRIVATE: &[u8] = include_bytes!("keys/ed_private.pem");
const RSA_JWK: &str = include_str!("keys/rsa_public.jwk.json");
const RSA2_JWK: &str = include_str!("keys/rsa2_public.jwk.json");
const EC_JWK: &str = include_str!("keys/ec_public.jwk.json");
const ED_JWK: &str = include_str!("keys/ed_public.jwk.json");
const AUD: &str = "api";

/// A JWK with `kid` and, optionally, `alg`.
fn jwk(json: &str, kid: &str, alg: Option<&str>) -> Value {
    let mut jwk: Value = serde_json::from_str(json).unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    if let Some(alg) = alg {
        jwk["alg"] = json!(alg);
    }
    jwk
}

// ---------------------------------------------------------------------------
// The provider

#[derive(Default)]
struct ProviderState {
    keys: Mutex<Vec<Value>>,
    /// JWK Set fetches.
    fetches: AtomicUsize,
    /// Every path requested, in order.
    paths: Mutex<Vec<String>>,
    /// Answer 500 to everything.
    down: AtomicBool,
    /// The `issuer` of the discovery document, if not the provider's own URL.
    issuer: Mutex<Option<String>>,
    base: Mutex<String>,
    /// The `User-Agent` of every request, in order (`None`: there was none).
    user_agents: Mutex<Vec<Option<String>>>,
    /// JWK Set requests hang until `release` (at most `HANG_LIMIT`).
    hang: AtomicBool,
    release: tokio::sync::Notify,
}

/// The longest a hanging provider hangs: far longer than any bounded wait.
const HANG_LIMIT: Duration = Duration::from_secs(10);

struct Provider {
    base: String,
    state: Arc<ProviderState>,
}

impl Provider {
    fn app(state: &Arc<ProviderState>) -> Router {
        Router::new()
            .route("/jwks", get(jwks))
            .route("/.well-known/openid-configuration", get(discovery))
            .fallback(get(other))
            .with_state(Arc::clone(state))
    }

    async fn start(keys: Vec<Value>) -> Self {
        let state = Arc::new(ProviderState::default());
        *state.keys.lock().unwrap() = keys;
        let app = Self::app(&state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        *state.base.lock().unwrap() = base.clone();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, state }
    }

    /// The same provider over HTTPS at `https://localhost:PORT`, with a
    /// certificate for `localhost` and `127.0.0.1` issued by a CA made now;
    /// returns the provider and the CA certificate (PEM).
    async fn start_tls(keys: Vec<Value>) -> (Self, String) {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tower-jwt-auth test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        // An explicit provider, as the client does: no process-default panic.
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let state = Arc::new(ProviderState::default());
        *state.keys.lock().unwrap() = keys;
        let app = Self::app(&state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!(
            "https://localhost:{}",
            listener.local_addr().unwrap().port()
        );
        *state.base.lock().unwrap() = base.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(
                            hyper_util::rt::TokioIo::new(tls),
                            hyper_util::service::TowerToHyperService::new(app),
                        )
                        .await;
                });
            }
        });
        (Self { base, state }, ca.pem())
    }

    fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base)
    }

    fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    fn publish(&self, keys: Vec<Value>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// JWK Set requests from now on hang until [`release`](Self::release).
    fn hang(&self) {
        self.state.hang.store(true, Ordering::SeqCst);
    }

    /// Ends the hang of the (one) hanging request and of those to come.
    fn release(&self) {
        self.state.hang.store(false, Ordering::SeqCst);
        self.state.release.notify_one();
    }

    fn user_agents(&self) -> Vec<Option<String>> {
        self.state.user_agents.lock().unwrap().clone()
    }
}

fn record_user_agent(state: &ProviderState, headers: &http::HeaderMap) {
    let agent = headers
        .get(http::header::USER_AGENT)
        .map(|v| v.to_str().unwrap().to_owned());
    state.user_agents.lock().unwrap().push(agent);
}

async fn jwks(
    State(state): State<Arc<ProviderState>>,
    headers: http::HeaderMap,
) -> impl IntoResponse {
    state.paths.lock().unwrap().push("/jwks".into());
    record_user_agent(&state, &headers);
    state.fetches.fetch_add(1, Ordering::SeqCst);
    if state.hang.load(Ordering::SeqCst) {
        let _ = tokio::time::timeout(HANG_LIMIT, state.release.notified()).await;
    }
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let keys = state.keys.lock().unwrap().clone();
    Json(json!({ "keys": keys })).into_response()
}

async fn discovery(
    State(state): State<Arc<ProviderState>>,
    headers: http::HeaderMap,
) -> impl IntoResponse {
    state
        .paths
        .lock()
        .unwrap()
        .push("/.well-known/openid-configuration".into());
    record_user_agent(&state, &headers);
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let base = state.base.lock().unwrap().clone();
    let issuer = state.issuer.lock().unwrap().clone().unwrap_or(base.clone());
    Json(json!({ "issuer": issuer, "jwks_uri": format!("{base}/jwks") })).into_response()
}

async fn other(State(state): State<Arc<ProviderState>>, uri: http::Uri) -> StatusCode {
    state.paths.lock().unwrap().push(uri.path().to_owned());
    StatusCode::NOT_FOUND
}

/// Captures what `tracing` logs on this thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let logs = self.clone();
        tracing_subscriber::fmt()
            .with_writer(move || logs.clone())
            .with_ansi(false)
            .finish()
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

// ---------------------------------------------------------------------------
// Tokens and the service

#[derive(Clone, Deserialize)]
struct MyClaims {
    #[serde(default)]
    role: Option<String>,
}

fn issuer_for(key: SigningKey, iss: &str) -> TokenIssuer {
    TokenIssuer::new(key).issuer(iss).audience(AUD)
}

fn token(key: SigningKey, iss: &str) -> String {
    issuer_for(key, iss)
        .access_token("user-1")
        .role("USER")
        .sign()
        .unwrap()
        .into_string()
}

fn rsa(kid: &str) -> SigningKey {
    SigningKey::rsa_pem(Algorithm::RS256, RSA_PRIVATE)
        .unwrap()
        .with_kid(kid)
}

fn rsa2(kid: &str) -> SigningKey {
    SigningKey::rsa_pem(Algorithm::RS256, RSA2_PRIVATE)
        .unwrap()
        .with_kid(kid)
}

const ISS: &str = "https://idp.test";

async fn remote(provider: &Provider, cooldown: Duration) -> RemoteJwks {
    RemoteJwks::builder(provider.jwks_url())
        .refresh_interval(Duration::ZERO)
        .unknown_kid_cooldown(cooldown)
        .build()
        .await
        .unwrap()
}

fn verifier(remote: RemoteJwks, iss: &str) -> Verifier {
    Verifier::builder()
        .jwks(remote)
        .issuer(iss)
        .audience(AUD)
        .build()
        .unwrap()
}

type Req = Request<String>;
type Res = Response<String>;

fn service(
    verifier: Verifier,
) -> impl Service<Req, Response = Res, Error = Infallible, Future: Send> + Clone {
    ServiceBuilder::new()
        .layer(JwtAuthLayer::<MyClaims>::new(verifier))
        .service(tower::service_fn(|req: Req| async move {
            let role = req
                .extensions()
                .get::<Claims<MyClaims>>()
                .and_then(|c| c.role.clone())
                .unwrap_or_default();
            Ok::<_, Infallible>(Response::new(role))
        }))
}

fn request(token: &str) -> Req {
    Request::get("/")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap()
}

async fn send<S>(svc: &S, token: &str) -> Res
where
    S: Service<Req, Response = Res, Error = Infallible> + Clone,
{
    svc.clone().oneshot(request(token)).await.unwrap()
}

fn kind(res: &Res) -> Option<AuthErrorKind> {
    res.extensions().get::<AuthError>().map(AuthError::kind)
}

// ---------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn every_key_type_verifies_through_the_remote_set() {
    let provider = Provider::start(vec![
        jwk(RSA_JWK, "rsa", None),
        jwk(EC_JWK, "ec", Some("ES256")),
        jwk(ED_JWK, "ed", None),
    ])
    .await;
    let remote = remote(&provider, Duration::from_millis(100)).await;
    let mut kids = remote.key_ids();
    kids.sort();
    assert_eq!(kids, ["ec", "ed", "rsa"]);
    let svc = service(verifier(remote, ISS));
    let keys = [
        rsa("rsa"),
        SigningKey::ec_pem(Algorithm::ES256, EC_PRIVATE)
            .unwrap()
            .with_kid("ec"),
        SigningKey::ed_pem(ED_PRIVATE).unwrap().with_kid("ed"),
    ];
    for key in keys {
        let res = send(&svc, &token(key, ISS)).await;
        assert_eq!(res.status(), 200, "{:?}", kind(&res));
        assert_eq!(res.body(), "USER");
    }
    assert_eq!(provider.fetches(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_rotated_key_is_fetched_on_its_first_token() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "k1", None)]).await;
    let cooldown = Duration::from_millis(300);
    let remote = remote(&provider, cooldown).await;
    let svc = service(verifier(remote.clone(), ISS));
    // Signed up front: RSA signing is slow in debug builds.
    let (old, new) = (token(rsa("k1"), ISS), token(rsa2("k2"), ISS));
    assert_eq!(send(&svc, &old).await.status(), 200);

    // The provider rotates: k2 is published, k1 withdrawn.
    provider.publish(vec![jwk(RSA2_JWK, "k2", None)]);
    tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
    let res = send(&svc, &new).await;
    assert_eq!(res.status(), 200, "{:?}", kind(&res));
    assert_eq!(provider.fetches(), 2);
    assert_eq!(remote.key_ids(), ["k2"]);

    // The withdrawn key is gone; within the cooldown, no refetch for it.
    let res = send(&svc, &old).await;
    assert_eq!(kind(&res), Some(AuthErrorKind::UnknownKey));
    assert_eq!(provider.fetches(), 2);
}

#[tokio::test]
async fn a_removed_key_invalidates_the_tokens_it_verified_at_once() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "k1", None), jwk(RSA2_JWK, "k2", None)]).await;
    let remote = remote(&provider, Duration::from_secs(3600)).await;
    let verifier = verifier(remote.clone(), ISS);
    let svc = service(verifier.clone());
    let (old, new) = (token(rsa("k1"), ISS), token(rsa2("k2"), ISS));
    for _ in 0..2 {
        assert_eq!(send(&svc, &old).await.status(), 200);
        assert_eq!(send(&svc, &new).await.status(), 200);
    }
    assert_eq!(verifier.cached_tokens(), 2);

    // The same set fetched again changes nothing: the tokens stay cached.
    remote.refresh().await.unwrap();
    assert_eq!(send(&svc, &old).await.status(), 200);
    assert_eq!(verifier.cached_tokens(), 2);

    // k1 is withdrawn: its token is refused on the very next request,
    // though it was cached and has not expired; k2's still verifies.
    provider.publish(vec![jwk(RSA2_JWK, "k2", None)]);
    remote.refresh().await.unwrap();
    let res = send(&svc, &old).await;
    assert_eq!(kind(&res), Some(AuthErrorKind::UnknownKey));
    let error = verifier.verify::<MyClaims>(&old).err().unwrap();
    assert_eq!(error.kind(), AuthErrorKind::UnknownKey);
    let res = send(&svc, &new).await;
    assert_eq!(res.status(), 200, "{:?}", kind(&res));
    assert_eq!(verifier.cached_tokens(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_unknown_kids_costs_one_fetch_per_cooldown() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "k1", None)]).await;
    let cooldown = Duration::from_millis(500);
    let remote = remote(&provider, cooldown).await;
    let svc = service(verifier(remote, ISS));
    // Past the cooldown of the initial fetch.
    tokio::time::sleep(cooldown + Duration::from_millis(50)).await;

    let started = Instant::now();
    let before = provider.fetches();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let svc = svc.clone();
            let token = unsigned(&format!("random-{i}-{}", rand_kid()));
            tokio::spawn(async move { send(&svc, &token).await })
        })
        .collect();
    for task in tasks {
        let res = task.await.unwrap();
        assert_eq!(kind(&res), Some(AuthErrorKind::UnknownKey));
    }
    let fetched = provider.fetches() - before;
    let windows = 1 + (started.elapsed().as_millis() / cooldown.as_millis()) as usize;
    assert!(fetched >= 1, "the first unknown kid refreshes");
    assert!(fetched <= windows, "{fetched} fetches in {windows} windows");

    // The known key still works meanwhile.
    assert_eq!(send(&svc, &token(rsa("k1"), ISS)).await.status(), 200);
}

/// A token whose signature is never checked: its `kid` names no key.
fn unsigned(kid: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let claims = json!({"iss": ISS, "aud": AUD, "sub": "x", "exp": 4_000_000_000u64});
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string()),
        B64.encode([0u8; 256])
    )
}

fn rand_kid() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

#[tokio::test(start_paused = true)]
async fn a_provider_outage_keeps_the_last_good_keys() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "k1", None)]).await;
    let remote = remote(&provider, Duration::from_millis(50)).await;
    let svc = service(verifier(remote.clone(), ISS));

    provider.set_down(true);
    let logs = Logs::default();
    let error = {
        let _guard = tracing::subscriber::set_default(logs.subscriber());
        remote.refresh().await.unwrap_err()
    };
    assert!(report(&error).contains("500"), "{error}");
    let logs = logs.text();
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains("the previous keys stay in use"), "{logs}");
    assert_eq!(send(&svc, &token(rsa("k1"), ISS)).await.status(), 200);

    // An unknown kid during the outage: one refetch that fails, then a clean 401.
    tokio::time::sleep(Duration::from_millis(80)).await;
    let res = send(&svc, &token(rsa2("k2"), ISS)).await;
    assert_eq!(kind(&res), Some(AuthErrorKind::UnknownKey));
    assert_eq!(send(&svc, &token(rsa("k1"), ISS)).await.status(), 200);

    // A broken set is not swapped in either.
    provider.set_down(false);
    provider.publish(vec![
        json!({"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"}),
    ]);
    assert!(remote.refresh().await.is_err());
    assert_eq!(send(&svc, &token(rsa("k1"), ISS)).await.status(), 200);
    assert_eq!(remote.key_ids(), ["k1"]);
}

#[tokio::test]
async fn hostile_kids_are_only_looked_up() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "k1", None)]).await;
    let cooldown = Duration::from_secs(60);
    let remote = remote(&provider, cooldown).await;
    let svc = service(verifier(remote, ISS));
    let huge = "k".repeat(4000);
    let kids = [
        "../../../../etc/passwd",
        "/jwks?kid=1",
        "http://127.0.0.1:1/evil",
        "' OR '1'='1' --",
        "k1\u{0}",
        "K1",
        " k1",
        huge.as_str(),
    ];
    for kid in kids {
        let res = send(&svc, &unsigned(kid)).await;
        assert_eq!(kind(&res), Some(AuthErrorKind::UnknownKey), "{kid:.40}");
    }
    // A header naming its own key set is not followed.
    let evil = format!("{}/evil-jwks", provider.base);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("k1-from-jku".into());
    header.jku = Some(evil.clone());
    header.x5u = Some(evil);
    let claims = json!({"iss": ISS, "aud": AUD, "sub": "x", "exp": 4_000_000_000u64});
    let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap();
    let forged = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    let res = send(&svc, &forged).await;
    assert_eq!(kind(&res), Some(AuthErrorKind::UnknownKey));

    // Only the configured URL was ever requested, and only once: the cooldown
    // started with the initial fetch.
    assert_eq!(*provider.state.paths.lock().unwrap(), ["/jwks"]);
}

#[tokio::test]
async fn a_jwk_alg_binds_the_key() {
    let provider = Provider::start(vec![
        jwk(RSA_JWK, "rs384-only", Some("RS384")),
        jwk(EC_JWK, "ec", Some("ES256")),
    ])
    .await;
    let remote = remote(&provider, Duration::from_secs(60)).await;
    let svc = service(verifier(remote, ISS));
    // Signed RS256 by the right key, but the JWK allows RS384 only.
    let res = send(&svc, &token(rsa("rs384-only"), ISS)).await;
    assert_eq!(kind(&res), Some(AuthErrorKind::UnsupportedAlgorithm));
    let rs384 = SigningKey::rsa_pem(Algorithm::RS384, RSA_PRIVATE)
        .unwrap()
        .with_kid("rs384-only");
    assert_eq!(send(&svc, &token(rs384, ISS)).await.status(), 200);
    // An RSA token naming the EC key's kid.
    let res = send(&svc, &token(rsa("ec"), ISS)).await;
    assert_eq!(kind(&res), Some(AuthErrorKind::UnsupportedAlgorithm));

    // A JWK whose alg contradicts its type is refused, alone or in a set.
    let bad = jwk(EC_JWK, "bad", Some("RS256")).to_string();
    assert!(VerificationKey::from_jwk(&bad).is_err());
    let set =
        json!({"keys": [serde_json::from_str::<Value>(&bad).unwrap(), jwk(ED_JWK, "ed", None)]});
    let keys = JwkSet::from_json(set.to_string()).unwrap();
    assert_eq!(keys.keys().len(), 1);
    assert_eq!(keys.keys()[0].kid(), Some("ed"));
}

#[tokio::test]
async fn oidc_discovery_checks_the_issuer() {
    let provider = Provider::start(vec![jwk(ED_JWK, "ed", None)]).await;
    let remote = RemoteJwks::discover(provider.base.clone())
        .refresh_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    assert_eq!(remote.issuer(), Some(provider.base.as_str()));
    assert_eq!(remote.jwks_url(), Some(provider.jwks_url().as_str()));
    let svc = service(verifier(remote, &provider.base));
    let ed = SigningKey::ed_pem(ED_PRIVATE).unwrap().with_kid("ed");
    assert_eq!(
        send(&svc, &token(ed.clone(), &provider.base))
            .await
            .status(),
        200
    );
    let res = send(&svc, &token(ed, ISS)).await;
    assert_eq!(kind(&res), Some(AuthErrorKind::InvalidIssuer));

    // A trailing slash in the configured issuer: same document, but the
    // exact-match check fails.
    let error = RemoteJwks::discover(format!("{}/", provider.base))
        .build()
        .await
        .unwrap_err();
    assert!(report(&error).contains("issuer"), "{error}");

    // A document naming another issuer.
    *provider.state.issuer.lock().unwrap() = Some("https://evil.example".into());
    let error = RemoteJwks::discover(provider.base.clone())
        .build()
        .await
        .unwrap_err();
    assert!(report(&error).contains("https://evil.example"), "{error}");
}

#[tokio::test]
async fn startup_fails_clearly_without_the_provider() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    drop(listener);
    let error = RemoteJwks::builder(url.clone()).build().await.unwrap_err();
    assert!(report(&error).contains("fetching the JWK Set"), "{error}");
    assert!(report(&error).contains(&url), "{error}");

    let error = RemoteJwks::discover("http://127.0.0.1:1")
        .build()
        .await
        .unwrap_err();
    assert!(report(&error).contains("discovery"), "{error}");

    // Plain http to a non-loopback host is refused before any request.
    let error = RemoteJwks::builder("http://idp.example.com/jwks")
        .build()
        .await
        .unwrap_err();
    assert!(report(&error).contains("https"), "{error}");

    // HTTPS to a server that speaks plain HTTP: the TLS handshake fails.
    let plain = Provider::start(vec![jwk(ED_JWK, "ed", None)]).await;
    let https = plain.jwks_url().replace("http://", "https://");
    let error = RemoteJwks::builder(https).build().await.unwrap_err();
    assert!(report(&error).contains("request failed"), "{error}");
    assert_eq!(plain.fetches(), 0);

    // A provider whose set has no usable key.
    let provider = Provider::start(vec![json!({"kty": "oct", "k": "c2VjcmV0"})]).await;
    let error = RemoteJwks::builder(provider.jwks_url())
        .build()
        .await
        .unwrap_err();
    assert!(report(&error).contains("no key usable"), "{error}");

    // Static and remote keys together are a configuration error.
    let provider = Provider::start(vec![jwk(ED_JWK, "ed", None)]).await;
    let remote = remote(&provider, Duration::from_secs(1)).await;
    let error = Verifier::builder()
        .jwks(remote)
        .key(VerificationKey::hmac([7u8; 32]).unwrap())
        .build()
        .unwrap_err();
    assert!(report(&error).contains("not both"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn the_background_refresh_runs_and_stops_with_the_verifier() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "k1", None)]).await;
    let remote = RemoteJwks::builder(provider.jwks_url())
        .refresh_interval(Duration::from_millis(50))
        .unknown_kid_cooldown(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    provider.publish(vec![jwk(RSA_JWK, "k1", None), jwk(RSA2_JWK, "k2", None)]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while remote.key_ids().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the background refresh never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Verifying with the new key needs no unknown-kid refresh (cooldown is 60 s).
    let verifier = verifier(remote.clone(), ISS);
    verifier
        .verify::<Value>(&token(rsa2("k2"), ISS))
        .expect("k2 was refreshed in the background");

    drop((remote, verifier));
    tokio::time::sleep(Duration::from_millis(120)).await;
    let after_drop = provider.fetches();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(provider.fetches(), after_drop, "the task outlived the keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifying_while_refreshing_never_fails_or_blocks() {
    let provider = Provider::start(vec![jwk(EC_JWK, "ec", None)]).await;
    let remote = remote(&provider, Duration::from_millis(10)).await;
    let verifier = verifier(remote.clone(), ISS);
    let ec = SigningKey::ec_pem(Algorithm::ES256, EC_PRIVATE)
        .unwrap()
        .with_kid("ec");
    let token = Arc::new(token(ec, ISS));
    let stop = Arc::new(AtomicBool::new(false));
    let refresher = {
        let (remote, stop) = (remote.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut refreshes = 0;
            while !stop.load(Ordering::SeqCst) {
                remote.refresh().await.unwrap();
                refreshes += 1;
            }
            refreshes
        })
    };
    let started = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), Arc::clone(&token));
            tokio::spawn(async move {
                for _ in 0..25 {
                    verifier.verify::<Value>(&token).unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let refreshes = refresher.await.unwrap();
    assert!(refreshes >= 1);
    eprintln!("200 ES256 verifications during {refreshes} refreshes in {elapsed:?}");
}

/// A client that serves a fixed set and counts its calls.
struct Fixed(Vec<u8>, AtomicUsize);

impl JwksClient for Fixed {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        Box::pin(async move {
            self.1.fetch_add(1, Ordering::SeqCst);
            assert_eq!(url, "https://idp.test/jwks");
            Ok(self.0.clone())
        })
    }
}

#[tokio::test]
async fn a_custom_client_can_be_plugged_in() {
    let set = json!({"keys": [jwk(ED_JWK, "ed", None)]}).to_string();
    let client = Arc::new(Fixed(set.into_bytes(), AtomicUsize::new(0)));
    let remote = RemoteJwks::builder("https://idp.test/jwks")
        .client(Arc::clone(&client))
        .refresh_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let verifier = verifier(remote, ISS);
    let ed = SigningKey::ed_pem(ED_PRIVATE).unwrap().with_kid("ed");
    verifier.verify::<Value>(&token(ed, ISS)).unwrap();
    assert_eq!(client.1.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_default_client_fetches_over_https_with_an_added_root() {
    let (provider, ca_pem) = Provider::start_tls(vec![jwk(RSA_JWK, "k1", None)]).await;
    let client = DefaultClient::new()
        .add_root_certificate_pem(ca_pem.as_bytes())
        .unwrap();

    // By name (`localhost`), the JWK Set URL directly.
    let remote = tokio::time::timeout(
        Duration::from_secs(10),
        RemoteJwks::builder(provider.jwks_url())
            .client(client.clone())
            .refresh_interval(Duration::ZERO)
            .build(),
    )
    .await
    .expect("bounded")
    .unwrap();
    let claims = verifier(remote, ISS)
        .verify::<Value>(&token(rsa("k1"), ISS))
        .unwrap();
    assert_eq!(claims.registered().sub.as_deref(), Some("user-1"));
    assert_eq!(provider.fetches(), 1);

    // By IP address (`127.0.0.1`, an IP SAN), through OIDC discovery.
    let port = provider.base.rsplit(':').next().unwrap();
    let by_ip = format!("https://127.0.0.1:{port}");
    *provider.state.base.lock().unwrap() = by_ip.clone();
    let remote = tokio::time::timeout(
        Duration::from_secs(10),
        RemoteJwks::discover(by_ip.clone())
            .client(client)
            .refresh_interval(Duration::ZERO)
            .build(),
    )
    .await
    .expect("bounded")
    .unwrap();
    assert_eq!(remote.jwks_url(), Some(format!("{by_ip}/jwks").as_str()));
    verifier(remote, &by_ip)
        .verify::<Value>(&token(rsa("k1"), &by_ip))
        .unwrap();
    assert_eq!(provider.fetches(), 2);
}

#[tokio::test]
async fn the_default_client_refuses_an_unknown_ca() {
    let (provider, _ca_pem) = Provider::start_tls(vec![jwk(RSA_JWK, "k1", None)]).await;
    let started = Instant::now();
    let error = tokio::time::timeout(
        Duration::from_secs(10),
        RemoteJwks::builder(provider.jwks_url())
            .refresh_interval(Duration::ZERO)
            .build(),
    )
    .await
    .expect("a TLS failure, not a hang")
    .unwrap_err();
    let text = report(&error);
    assert!(text.contains("fetching the JWK Set"), "{text}");
    assert!(text.contains("invalid peer certificate"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5), "{text}");
    assert_eq!(provider.fetches(), 0);

    // Another CA (same name, another key) does not help either.
    let (_other, other_ca) = Provider::start_tls(vec![]).await;
    let client = DefaultClient::new()
        .add_root_certificate_pem(other_ca.as_bytes())
        .unwrap();
    let error = RemoteJwks::builder(provider.jwks_url())
        .client(client)
        .build()
        .await
        .unwrap_err();
    assert!(
        report(&error).contains("invalid peer certificate"),
        "{error}"
    );
    assert_eq!(provider.fetches(), 0);
}

#[test]
fn adding_a_root_refuses_input_without_a_certificate() {
    let error = DefaultClient::new()
        .add_root_certificate_pem(b"not a pem")
        .unwrap_err();
    assert!(report(&error).contains("no CERTIFICATE"), "{error}");
    let error = DefaultClient::new()
        .add_root_certificate_pem(RSA_PRIVATE)
        .unwrap_err();
    assert!(report(&error).contains("no CERTIFICATE"), "{error}");
    let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let error = DefaultClient::new()
        .add_root_certificate_pem(garbage)
        .unwrap_err();
    assert!(
        report(&error).contains("invalid root certificate"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------
// The example server in JWKS mode

#[tokio::test]
async fn the_example_server_verifies_provider_tokens() {
    use axum_server::{AppState, Config, app};
    use tower_jwt_auth::refresh::MemoryStore;

    let provider = Provider::start(vec![
        jwk(RSA_JWK, "rsa", None),
        jwk(EC_JWK, "ec", None),
        jwk(ED_JWK, "ed", None),
    ])
    .await;
    let url = provider.jwks_url();
    let config = Config::from_lookup(|name| match name {
        "JWKS_URL" => Ok(url.clone()),
        "JWT_ISSUER" => Ok(ISS.to_owned()),
        "JWT_AUDIENCE" => Ok(AUD.to_owned()),
        _ => Err(std::env::VarError::NotPresent),
    })
    .unwrap();
    let state = AppState::from_config(&config, Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let local = state.tokens.clone();
    let router = app(state);
    let call = |method: &str, path: &str, token: Option<String>| {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(axum::body::Body::empty()).unwrap();
        router.clone().oneshot(request)
    };
    let provider_token = |key: SigningKey, role: &str| {
        issuer_for(key, ISS)
            .access_token("user-1")
            .role(role)
            .sign()
            .unwrap()
            .into_string()
    };
    let ec = SigningKey::ec_pem(Algorithm::ES256, EC_PRIVATE)
        .unwrap()
        .with_kid("ec");
    let ed = SigningKey::ed_pem(ED_PRIVATE).unwrap().with_kid("ed");

    for key in [rsa("rsa"), ec.clone(), ed] {
        let res = call("GET", "/users/me", Some(provider_token(key, "USER")))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap();
        let me: Value = serde_json::from_slice(&body.to_bytes()).unwrap();
        assert_eq!(me, json!({"id": "user-1", "role": "USER"}));
    }
    let res = call(
        "GET",
        "/admin/users",
        Some(provider_token(ec.clone(), "USER")),
    );
    assert_eq!(res.await.unwrap().status(), 403);
    let res = call("GET", "/admin/users", Some(provider_token(ec, "ADMIN")));
    assert_eq!(res.await.unwrap().status(), 200);

    // The server's own tokens are not accepted, and it issues none.
    let own = local.access_token("user-1").role("USER").sign().unwrap();
    let res = call("GET", "/users/me", Some(own.into_string()))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        call("POST", "/users/login", None).await.unwrap().status(),
        404
    );
    assert_eq!(
        call("POST", "/users/refresh", None).await.unwrap().status(),
        404
    );

    // A provider that cannot be reached stops the start-up.
    let config = Config::from_lookup(|name| match name {
        "JWKS_URL" => Ok("http://127.0.0.1:1/jwks".to_owned()),
        _ => Err(std::env::VarError::NotPresent),
    })
    .unwrap();
    let error = AppState::from_config(&config, Arc::new(MemoryStore::new()))
        .await
        .err()
        .unwrap();
    assert!(error.contains("cannot load the provider's keys"), "{error}");
}

#[tokio::test]
async fn after_a_refresh_the_check_hook_and_extensions_work_as_usual() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "k1", None)]).await;
    let remote = RemoteJwks::builder(provider.jwks_url())
        .refresh_interval(Duration::ZERO)
        .unknown_kid_cooldown(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let checks = Arc::new(AtomicUsize::new(0));
    let layer = {
        let checks = Arc::clone(&checks);
        JwtAuthLayer::<MyClaims>::builder(verifier(remote, ISS))
            .check(move |claims: &Claims<MyClaims>| {
                checks.fetch_add(1, Ordering::SeqCst);
                let banned = claims.role.as_deref() == Some("BANNED");
                async move {
                    if banned {
                        Err(AuthError::rejected("banned"))
                    } else {
                        Ok(())
                    }
                }
            })
            .build()
            .unwrap()
    };
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(|req: Req| async move {
            let role = req
                .extensions()
                .get::<Claims<MyClaims>>()
                .and_then(|c| c.role.clone())
                .unwrap_or_default();
            Ok::<_, Infallible>(Response::new(role))
        }));
    let signer = issuer_for(rsa2("k2"), ISS);
    let user = signer.access_token("u").role("USER").sign().unwrap();
    let banned = signer.access_token("u").role("BANNED").sign().unwrap();
    provider.publish(vec![jwk(RSA_JWK, "k1", None), jwk(RSA2_JWK, "k2", None)]);

    // The first token with the new kid goes through the refresh path, and
    // the check still runs on it.
    let res = svc.clone().oneshot(request(banned.as_str())).await.unwrap();
    assert_eq!(kind(&res), Some(AuthErrorKind::Rejected));
    assert_eq!(provider.fetches(), 2);
    let res = svc.clone().oneshot(request(user.as_str())).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.body(), "USER");
    assert_eq!(checks.load(Ordering::SeqCst), 2);
    // A token that stays unknown after the refresh is still a clean 401.
    let res = svc
        .clone()
        .oneshot(request(&unsigned("nope")))
        .await
        .unwrap();
    assert_eq!(kind(&res), Some(AuthErrorKind::UnknownKey));
    assert_eq!(res.status(), 401);
}

/// An error with its whole source chain, as a reporter prints it.
fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------
// Several issuers, bounded waits, a lazy start

const ISS_A: &str = "https://a.idp.test";
const ISS_B: &str = "https://b.idp.test";
const RSA_PUBLIC_PEM: &[u8] = include_bytes!("keys/rsa_public.pem");
const UNAVAILABLE: &str = r#"{"error":"temporarily_unavailable","error_description":"authentication is temporarily unavailable"}"#;

/// A 401 `invalid_token` with `description`: status, challenge and body exactly.
#[track_caller]
fn assert_invalid_token(res: &Res, description: &str) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{:?}", kind(res));
    let challenge =
        format!(r#"Bearer realm="api", error="invalid_token", error_description="{description}""#);
    assert_eq!(
        res.headers()
            .get(http::header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap()),
        Some(challenge.as_str())
    );
    assert_eq!(
        res.body(),
        &format!(r#"{{"error":"invalid_token","error_description":"{description}"}}"#)
    );
}

/// A 200 from the service of [`service`]: the token's role, no challenge.
#[track_caller]
fn assert_accepted(res: &Res) {
    assert_eq!(res.status(), StatusCode::OK, "{:?}", kind(res));
    assert!(res.headers().get(http::header::WWW_AUTHENTICATE).is_none());
    assert_eq!(res.body(), "USER");
}

fn ed(kid: &str) -> SigningKey {
    SigningKey::ed_pem(ED_PRIVATE).unwrap().with_kid(kid)
}

#[tokio::test]
async fn by_issuer_refuses_one_issuers_claims_signed_with_anothers_key() {
    // Both publish a `k1`, each its own key; only A has `ed-a`.
    let a = Provider::start(vec![jwk(RSA_JWK, "k1", None), jwk(ED_JWK, "ed-a", None)]).await;
    let b = Provider::start(vec![jwk(RSA2_JWK, "k1", None)]).await;
    let verifier = Verifier::by_issuer([
        verifier(remote(&a, Duration::ZERO).await, ISS_A),
        verifier(remote(&b, Duration::ZERO).await, ISS_B),
    ])
    .unwrap();
    let svc = service(verifier.clone());
    assert_accepted(&send(&svc, &token(rsa("k1"), ISS_A)).await);
    assert_accepted(&send(&svc, &token(rsa2("k1"), ISS_B)).await);
    assert_accepted(&send(&svc, &token(ed("ed-a"), ISS_A)).await);
    let (fetches_a, fetches_b) = (a.fetches(), b.fetches());

    // B's claims signed with A's key under the `kid` both use: B's `k1` is
    // another key.
    let forged = token(rsa("k1"), ISS_B);
    assert_invalid_token(&send(&svc, &forged).await, "the token signature is invalid");
    let error = verifier.verify_async::<Value>(&forged).await.unwrap_err();
    assert_eq!(error.kind(), AuthErrorKind::InvalidSignature);
    // And the other way round.
    assert_invalid_token(
        &send(&svc, &token(rsa2("k1"), ISS_A)).await,
        "the token signature is invalid",
    );
    assert_eq!((a.fetches(), b.fetches()), (fetches_a, fetches_b));

    // B's claims signed with a key only A has: looked up (and refetched)
    // in B's set alone.
    assert_invalid_token(
        &send(&svc, &token(ed("ed-a"), ISS_B)).await,
        "the token key is not known",
    );
    assert_eq!(a.fetches(), fetches_a);
    assert_eq!(b.fetches(), fetches_b + 1);
}

#[tokio::test]
async fn an_unknown_issuer_costs_no_key_lookup_and_no_fetch() {
    let a = Provider::start(vec![jwk(RSA_JWK, "k1", None)]).await;
    let b = Provider::start(vec![jwk(RSA2_JWK, "k2", None)]).await;
    // Without a cooldown, any unknown `kid` that reached a key set would
    // refetch it.
    let verifier = Verifier::by_issuer([
        verifier(remote(&a, Duration::ZERO).await, ISS_A),
        verifier(remote(&b, Duration::ZERO).await, ISS_B),
    ])
    .unwrap();
    let svc = service(verifier.clone());
    let (paths_a, paths_b) = (
        a.state.paths.lock().unwrap().clone(),
        b.state.paths.lock().unwrap().clone(),
    );

    let no_iss = TokenIssuer::new(rsa("k1"))
        .audience(AUD)
        .access_token("user-1")
        .role("USER")
        .sign()
        .unwrap()
        .into_string();
    let tokens = [
        // A's key and `kid`, another issuer.
        token(rsa("k1"), "https://evil.test"),
        // An unknown `kid`, an issuer not configured.
        unsigned("k-unknown"),
        // An issuer that differs from A's by a trailing slash.
        token(rsa("k1"), &format!("{ISS_A}/")),
        // No `iss` at all.
        no_iss,
    ];
    for token in &tokens {
        assert_invalid_token(&send(&svc, token).await, "the token issuer is not accepted");
        let error = verifier.verify_async::<Value>(token).await.unwrap_err();
        assert_eq!(error.kind(), AuthErrorKind::InvalidIssuer);
    }
    // A flood of them, each with a fresh unknown `kid`.
    for i in 0..50 {
        let token = unsigned(&format!("flood-{i}-{}", rand_kid()));
        assert_invalid_token(
            &send(&svc, &token).await,
            "the token issuer is not accepted",
        );
    }
    assert_eq!(*a.state.paths.lock().unwrap(), paths_a);
    assert_eq!(*b.state.paths.lock().unwrap(), paths_b);
    assert_eq!((a.fetches(), b.fetches()), (1, 1));
}

#[test]
fn by_issuer_configuration_errors() {
    let hmac = || VerificationKey::hmac([7u8; 32]).unwrap();
    let one = |issuers: &[&str]| {
        let mut builder = Verifier::builder().key(hmac()).audience(AUD);
        for issuer in issuers {
            builder = builder.issuer(*issuer);
        }
        builder.build().unwrap()
    };
    let message = |result: Result<Verifier, tower_jwt_auth::ConfigError>| {
        result.map(|_| ()).unwrap_err().to_string()
    };

    assert_eq!(
        message(Verifier::by_issuer([one(&[ISS_A]), one(&[])])),
        "each verifier of a several-issuer verifier must name its issuer"
    );
    assert_eq!(
        message(Verifier::by_issuer([one(&[ISS_A]), one(&[ISS_A])])),
        r#"the issuer "https://a.idp.test" is configured twice"#
    );
    // One verifier naming two issuers, one of them another's.
    assert_eq!(
        message(Verifier::by_issuer([one(&[ISS_A, ISS_B]), one(&[ISS_B])])),
        r#"the issuer "https://b.idp.test" is configured twice"#
    );
    // Nested: the inner verifiers count.
    let inner = Verifier::by_issuer([one(&[ISS_A]), one(&[ISS_B])]).unwrap();
    assert_eq!(
        message(Verifier::by_issuer([inner.clone(), one(&[ISS_B])])),
        r#"the issuer "https://b.idp.test" is configured twice"#
    );
    assert_eq!(
        message(Verifier::by_issuer(Vec::new())),
        "a verifier needs at least one issuer"
    );
    // Issuers differing only by a trailing slash are two issuers.
    assert!(Verifier::by_issuer([one(&[ISS_A]), one(&[&format!("{ISS_A}/")])]).is_ok());
    assert!(Verifier::by_issuer([inner, one(&[ISS])]).is_ok());
}

#[tokio::test]
async fn remote_keys_without_an_issuer_are_a_build_error() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "k1", None)]).await;
    let remote = remote(&provider, Duration::ZERO).await;
    assert_eq!(remote.issuer(), None);
    let error = Verifier::builder()
        .jwks(remote)
        .audience(AUD)
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "remote keys need the issuer whose tokens they verify: \
         configure `issuer`, or find the keys by discovery"
    );

    // The issuer given to the remote keys is the verifier's.
    let remote = RemoteJwks::builder(provider.jwks_url())
        .issuer(ISS)
        .refresh_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    assert_eq!(remote.issuer(), Some(ISS));
    let verifier = Verifier::builder()
        .jwks(remote)
        .audience(AUD)
        .build()
        .unwrap();
    let svc = service(Verifier::by_issuer([verifier]).unwrap());
    assert_accepted(&send(&svc, &token(rsa("k1"), ISS)).await);
    assert_invalid_token(
        &send(&svc, &token(rsa("k1"), ISS_A)).await,
        "the token issuer is not accepted",
    );
}

#[tokio::test]
async fn remote_keys_verify_their_own_issuer_only() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "k1", None)]).await;
    let remote = || async {
        RemoteJwks::builder(provider.jwks_url())
            .issuer(ISS)
            .refresh_interval(Duration::ZERO)
            .build()
            .await
            .unwrap()
    };
    // Another issuer configured beside (or instead of) the keys' own is refused.
    for issuers in [vec![ISS_A], vec![ISS, ISS_A]] {
        let mut builder = Verifier::builder().jwks(remote().await).audience(AUD);
        for iss in issuers {
            builder = builder.issuer(iss);
        }
        let error = builder.build().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the remote keys belong to the issuer {ISS:?}: they cannot verify tokens of another issuer"
            )
        );
    }
    // Naming the keys' own issuer again is fine.
    assert!(
        Verifier::builder()
            .jwks(remote().await)
            .issuer(ISS)
            .audience(AUD)
            .build()
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn healthy_keys_never_go_stale_whatever_the_refresh_interval() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "k1", None)]).await;
    let remote = RemoteJwks::builder(provider.jwks_url())
        .issuer(ISS)
        .refresh_interval(Duration::from_secs(300))
        .max_stale(Duration::from_millis(400))
        .build()
        .await
        .unwrap();
    let svc = service(verifier(remote.clone(), ISS));
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(remote.is_ready());
        assert_accepted(&send(&svc, &token(rsa("k1"), ISS)).await);
    }
    // The background refresh ran every half of the maximum age.
    assert!(provider.fetches() >= 3, "{}", provider.fetches());
}

#[tokio::test]
async fn default_algorithms_choose_what_keys_without_alg_accept() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "rsa", None)]).await;
    let rsa_as = |alg: Algorithm| {
        SigningKey::rsa_pem(alg, RSA_PRIVATE)
            .unwrap()
            .with_kid("rsa")
    };
    let (ps256, rs256) = (
        token(rsa_as(Algorithm::PS256), ISS),
        token(rsa_as(Algorithm::RS256), ISS),
    );
    // The classic confusion: the RSA public key as an HMAC secret.
    let hs256 = token(
        SigningKey::hmac(Algorithm::HS256, RSA_PUBLIC_PEM)
            .unwrap()
            .with_kid("rsa"),
        ISS,
    );
    let with_defaults = |algs: Vec<Algorithm>| {
        RemoteJwks::builder(provider.jwks_url())
            .issuer(ISS)
            .refresh_interval(Duration::ZERO)
            .unknown_kid_cooldown(Duration::from_secs(60))
            .default_algorithms(algs)
            .build()
    };

    // Without defaults, an RSA key without `alg` is RS256 only.
    let svc = service(verifier(with_defaults(vec![]).await.unwrap(), ISS));
    assert_accepted(&send(&svc, &rs256).await);
    let refused = "the token algorithm is not accepted";
    assert_invalid_token(&send(&svc, &ps256).await, refused);
    assert_invalid_token(&send(&svc, &hs256).await, refused);

    // PS256 (EdDSA does not fit an RSA key and is ignored for it).
    let remote = with_defaults(vec![Algorithm::PS256, Algorithm::EdDSA])
        .await
        .unwrap();
    let svc = service(verifier(remote, ISS));
    assert_accepted(&send(&svc, &ps256).await);
    assert_invalid_token(&send(&svc, &rs256).await, refused);
    assert_invalid_token(&send(&svc, &hs256).await, refused);

    // Both, and never HS256: `oct` is no default of an RSA key.
    let remote = with_defaults(vec![Algorithm::RS256, Algorithm::PS256, Algorithm::HS256])
        .await
        .unwrap();
    let svc = service(verifier(remote, ISS));
    assert_accepted(&send(&svc, &ps256).await);
    assert_accepted(&send(&svc, &rs256).await);
    assert_invalid_token(&send(&svc, &hs256).await, refused);

    // The same rule for a static JWK Set.
    let set = json!({"keys": [jwk(RSA_JWK, "rsa", None)]}).to_string();
    let keys = JwkSet::from_json_with_defaults(&set, [Algorithm::PS256]).unwrap();
    let verifier = Verifier::builder()
        .keys(keys.into_keys())
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap();
    verifier.verify::<Value>(&ps256).unwrap();
    for token in [&rs256, &hs256] {
        let error = verifier.verify::<Value>(token).unwrap_err();
        assert_eq!(error.kind(), AuthErrorKind::UnsupportedAlgorithm);
    }
    assert_eq!(provider.fetches(), 3);
}

#[tokio::test]
async fn the_default_client_sends_its_user_agent() {
    assert_eq!(
        tower_jwt_auth::keys::USER_AGENT,
        format!("tower-jwt-auth/{}", env!("CARGO_PKG_VERSION"))
    );
    let provider = Provider::start(vec![jwk(ED_JWK, "ed", None)]).await;
    let remote = RemoteJwks::discover(provider.base.clone())
        .refresh_interval(Duration::ZERO)
        .unknown_kid_cooldown(Duration::ZERO)
        .build()
        .await
        .unwrap();
    remote.refresh().await.unwrap();
    let svc = service(verifier(remote, &provider.base));
    // An unknown `kid` refetches with the same client.
    assert_invalid_token(
        &send(&svc, &token(ed("other"), &provider.base)).await,
        "the token key is not known",
    );
    assert_eq!(
        *provider.state.paths.lock().unwrap(),
        [
            "/.well-known/openid-configuration",
            "/jwks",
            "/jwks",
            "/jwks"
        ]
    );
    let agent = Some(tower_jwt_auth::keys::USER_AGENT.to_owned());
    assert_eq!(provider.user_agents(), vec![agent; 4]);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_kid_waits_no_longer_than_max_wait_for_a_hanging_provider() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "k1", None)]).await;
    let max_wait = Duration::from_millis(200);
    let remote = RemoteJwks::builder(provider.jwks_url())
        .issuer(ISS)
        .refresh_interval(Duration::ZERO)
        .unknown_kid_cooldown(Duration::ZERO)
        .unknown_kid_max_wait(max_wait)
        .build()
        .await
        .unwrap();
    let svc = service(verifier(remote.clone(), ISS));
    // Signed up front: RSA signing is slow in debug builds.
    let (old, new) = (token(rsa("k1"), ISS), token(rsa2("k2"), ISS));

    // The provider rotates, but its JWK Set requests hang (up to 10 s).
    provider.publish(vec![jwk(RSA_JWK, "k1", None), jwk(RSA2_JWK, "k2", None)]);
    provider.hang();
    let started = Instant::now();
    let res = send(&svc, &new).await;
    let waited = started.elapsed();
    assert_invalid_token(&res, "the token key is not known");
    assert!(waited >= max_wait - Duration::from_millis(20), "{waited:?}");
    assert!(
        waited < Duration::from_secs(2),
        "{waited:?} for a hang of {HANG_LIMIT:?}"
    );
    assert_eq!(provider.fetches(), 2);

    // Many concurrent unknown `kid`s during the hang join the one fetch.
    let started = Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let svc = svc.clone();
            let token = if i % 2 == 0 {
                new.clone()
            } else {
                unsigned(&format!("random-{i}-{}", rand_kid()))
            };
            tokio::spawn(async move {
                let started = Instant::now();
                let res = send(&svc, &token).await;
                (res, started.elapsed())
            })
        })
        .collect();
    for task in tasks {
        let (res, waited) = task.await.unwrap();
        assert_invalid_token(&res, "the token key is not known");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(provider.fetches(), 2, "one fetch for them all");
    // The known key works meanwhile, without a fetch.
    assert_accepted(&send(&svc, &old).await);
    assert_eq!(provider.fetches(), 2);

    // The fetch goes on; once it ends, its keys serve.
    provider.release();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !remote.key_ids().contains(&"k2".to_owned()) {
        assert!(Instant::now() < deadline, "the released fetch never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_accepted(&send(&svc, &new).await);
    assert_eq!(provider.fetches(), 2);
}

fn grpc_request(token: &str) -> Req {
    Request::post("/")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .body(String::new())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_lazy_start_answers_503_until_the_keys_arrive() {
    let provider = Provider::start(vec![jwk(RSA_JWK, "k1", None)]).await;
    provider.set_down(true);
    let started = Instant::now();
    let remote = tokio::time::timeout(
        Duration::from_secs(5),
        RemoteJwks::builder(provider.jwks_url())
            .issuer(ISS)
            .lazy()
            .build(),
    )
    .await
    .expect("a lazy build does not wait for the provider")
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!remote.is_ready());
    assert!(remote.key_ids().is_empty());
    let verifier = verifier(remote.clone(), ISS);
    assert!(!verifier.is_ready());
    let static_b = Verifier::builder()
        .key(VerificationKey::hmac([7u8; 32]).unwrap())
        .issuer(ISS_B)
        .audience(AUD)
        .build()
        .unwrap();
    assert!(static_b.is_ready());
    let both = Verifier::by_issuer([verifier.clone(), static_b]).unwrap();
    assert!(!both.is_ready());
    let svc = service(both.clone());
    let token = token(rsa("k1"), ISS);
    // The first fetch runs in the background, and fails.
    let deadline = Instant::now() + Duration::from_secs(5);
    while provider.fetches() == 0 {
        assert!(Instant::now() < deadline, "the first fetch never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!remote.is_ready());

    let res = send(&svc, &token).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get(http::header::WWW_AUTHENTICATE).is_none());
    assert_eq!(
        res.headers().get(http::header::CONTENT_TYPE).unwrap(),
        "application/json"
    );
    assert_eq!(res.body(), UNAVAILABLE);
    assert_eq!(kind(&res), Some(AuthErrorKind::Unavailable));
    let error = verifier.verify_async::<Value>(&token).await.unwrap_err();
    assert_eq!(error.kind(), AuthErrorKind::Unavailable);

    let res = svc.clone().oneshot(grpc_request(&token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers().get("grpc-status").unwrap(), "14");
    assert_eq!(
        res.headers().get("grpc-message").unwrap(),
        "authentication is temporarily unavailable"
    );
    assert_eq!(
        res.headers().get(http::header::CONTENT_TYPE).unwrap(),
        "application/grpc"
    );
    assert!(res.headers().get(http::header::WWW_AUTHENTICATE).is_none());
    assert_eq!(res.body(), "");
    assert_eq!(kind(&res), Some(AuthErrorKind::Unavailable));

    provider.set_down(false);
    tokio::time::timeout(Duration::from_secs(10), remote.ready())
        .await
        .expect("the keys arrive with the backoff's next try");
    assert!(remote.is_ready());
    assert!(verifier.is_ready());
    assert!(both.is_ready());
    assert_eq!(remote.key_ids(), ["k1"]);
    assert_accepted(&send(&svc, &token).await);
    let res = svc.clone().oneshot(grpc_request(&token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("grpc-status").is_none());
    assert_eq!(res.body(), "USER");
    assert!(provider.fetches() >= 2, "a failed try, then the good one");
}
