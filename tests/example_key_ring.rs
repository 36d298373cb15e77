//! Key-ring mode of `examples/axum_server/` (`SIGNING_ALG`,
//! `KEY_ROTATE_SECS`): the example's router served by `axum::serve` on
//! loopback, and a second, independent verifier that knows nothing but the
//! issuer's URL and verifies the example's tokens through `RemoteJwks` over
//! real HTTP, before and after a rotation.

#[path = "../examples/axum_server/main.rs"]
#[allow(dead_code)]
mod axum_server;

use std::{env::VarError, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::Value;
use tokio::net::TcpListener;
use tower_jwt_auth::{
    Algorithm, AuthErrorKind, Verifier,
    keys::{self, RemoteJwks, ring::KeyStatus},
    refresh::MemoryStore,
};

use axum_server::{AppState, Config, app, config::SigningConfig};

const AUDIENCE: &str = "example-api";

/// Members a published JWK may carry; the private ones (`d`, `p`, `q`,
/// `dp`, `dq`, `qi`, `oth`) and symmetric secrets (`k`) never.
const PUBLIC_MEMBERS: &[&str] = &["kty", "crv", "x", "y", "n", "e", "kid", "alg", "use"];

async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .expect("the test timed out")
}

fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or(VarError::NotPresent)
    })
}

/// The example in key-ring mode for `algorithm`, served on an ephemeral
/// loopback port; its issuer is its own URL.
async fn start(algorithm: &str) -> (String, AppState) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let issuer = format!("http://{addr}");
    let config = config(&[
        ("SIGNING_ALG", algorithm),
        ("KEY_ROTATE_SECS", "3600"),
        ("JWT_ISSUER", &issuer),
    ])
    .unwrap();
    let state = AppState::from_config(&config, Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let router = app(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (issuer, state)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

async fn send(request: Request<Full<Bytes>>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

async fn get(url: String, token: Option<&str>) -> Reply {
    let mut request = Request::get(url);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    send(request.body(Full::default()).unwrap()).await
}

/// Logs in over HTTP: the example's access token.
async fn login(issuer: &str) -> String {
    let reply = send(
        Request::post(format!("{issuer}/users/login"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::from(
                "username=user@example.com&password=user-password",
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

fn header_of(token: &str) -> Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// The JWK Set over HTTP, checked: cacheable, public members only, each
/// key named by its RFC 7638 thumbprint. Returns the kids.
async fn published_kids(issuer: &str) -> Vec<String> {
    let reply = get(format!("{issuer}/.well-known/jwks.json"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers[header::CACHE_CONTROL],
        "public, max-age=300",
        "KEY_ROTATE_SECS=3600: the default 5 minutes"
    );
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "application/jwk-set+json"
    );
    let set = reply.json();
    let keys = set["keys"].as_array().unwrap();
    let mut kids = Vec::new();
    for key in keys {
        let members: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for member in &members {
            assert!(
                PUBLIC_MEMBERS.contains(member),
                "the JWK Set publishes {member:?}: {set}"
            );
        }
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(key.get(private).is_none(), "{private} is published: {set}");
        }
        let kid = key["kid"].as_str().unwrap();
        assert_eq!(keys::thumbprint(key.to_string()).unwrap(), kid);
        assert_eq!(key["use"], "sig");
        kids.push(kid.to_owned());
    }
    kids
}

/// A verifier elsewhere: it knows only the issuer's URL, finds the JWK Set by
/// discovery, and fetches the keys over HTTP.
async fn remote_verifier(issuer: &str) -> (RemoteJwks, Verifier) {
    let remote = RemoteJwks::discover(issuer).build().await.unwrap();
    assert_eq!(
        remote.jwks_url(),
        Some(format!("{issuer}/.well-known/jwks.json").as_str())
    );
    let verifier = Verifier::builder()
        .jwks(remote.clone())
        .audience(AUDIENCE)
        .build()
        .unwrap();
    (remote, verifier)
}

async fn rotation_is_seen_by_a_remote_verifier(algorithm: &str) {
    let (issuer, state) = start(algorithm).await;
    let ring = state.key_ring.clone().expect("key-ring mode");

    let discovery = get(format!("{issuer}/.well-known/openid-configuration"), None).await;
    assert_eq!(discovery.status, StatusCode::OK);
    assert_eq!(
        discovery.json(),
        serde_json::json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        })
    );
    let before = published_kids(&issuer).await;
    assert_eq!(before.len(), 2, "the active key and the next one");

    let old = login(&issuer).await;
    assert_eq!(header_of(&old)["alg"], algorithm);
    assert_eq!(header_of(&old)["kid"], before[0].as_str());
    let (remote, verifier) = remote_verifier(&issuer).await;
    let claims = verifier.verify_async::<Value>(&old).await.unwrap();
    assert_eq!(claims.subject(), Some("user-1"));
    assert_eq!(claims["iss"], issuer.as_str());
    // The example verifies its own tokens with the same ring.
    assert_eq!(
        get(format!("{issuer}/users/me"), Some(&old)).await.status,
        StatusCode::OK
    );

    // Rotate: the published next key signs, the active one retires.
    assert!(ring.rotate().await.unwrap());
    let statuses: Vec<KeyStatus> = ring.keys().iter().map(|k| k.status()).collect();
    assert_eq!(
        statuses,
        [KeyStatus::Retired, KeyStatus::Active, KeyStatus::Next]
    );
    let new = login(&issuer).await;
    assert_eq!(header_of(&new)["kid"], before[1].as_str());

    // After a refetch the remote verifier has the new next key too, and
    // still the retired one: new tokens verify, and old ones until they expire.
    remote.refresh().await.unwrap();
    let after = published_kids(&issuer).await;
    assert_eq!(after.len(), 3);
    assert_eq!(&after[..2], &before[..]);
    let mut known = remote.key_ids();
    known.sort();
    let mut expected = after.clone();
    expected.sort();
    assert_eq!(known, expected);
    verifier.verify_async::<Value>(&new).await.unwrap();
    verifier.verify_async::<Value>(&old).await.unwrap();
    for token in [&old, &new] {
        let reply = get(format!("{issuer}/users/me"), Some(token)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    // A token of another issuer's ring is not one of ours: its key is
    // unknown (the signature is checked before any claim).
    let (stranger, _) = start(algorithm).await;
    let foreign = login(&stranger).await;
    let error = verifier.verify::<Value>(&foreign).unwrap_err();
    assert_eq!(error.kind(), AuthErrorKind::UnknownKey);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_tokens_verify_remotely_across_a_rotation() {
    bounded(rotation_is_seen_by_a_remote_verifier("ES256")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eddsa_tokens_verify_remotely_across_a_rotation() {
    bounded(rotation_is_seen_by_a_remote_verifier("EdDSA")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_verify_remotely_across_a_rotation() {
    bounded(rotation_is_seen_by_a_remote_verifier("RS256")).await;
}

#[test]
fn key_ring_mode_reads_the_environment() {
    let url = "https://auth.example.test";
    let signing = config_ok(&[
        ("SIGNING_ALG", "EdDSA"),
        ("KEY_ROTATE_SECS", "86400"),
        ("JWT_ISSUER", url),
    ]);
    assert_eq!(
        signing.signing,
        Some(SigningConfig {
            algorithm: Algorithm::EdDSA,
            rotation_period: Some(Duration::from_secs(86400)),
        })
    );
    // The default stays HS256.
    assert_eq!(config_ok(&[]).signing, None);

    for (vars, message) in [
        (
            &[("SIGNING_ALG", "HS256"), ("JWT_ISSUER", url)][..],
            "asymmetric",
        ),
        (
            &[("SIGNING_ALG", "ES512"), ("JWT_ISSUER", url)][..],
            "expected",
        ),
        (&[("SIGNING_ALG", "ES256")][..], "public URL"),
        (
            &[
                ("SIGNING_ALG", "ES256"),
                ("JWT_ISSUER", url),
                ("JWT_SECRET", "a-secret-of-at-least-thirty-two-bytes"),
            ][..],
            "JWT_SECRET",
        ),
        (&[("KEY_ROTATE_SECS", "60")][..], "only with SIGNING_ALG"),
        (
            &[
                ("SIGNING_ALG", "ES256"),
                ("JWT_ISSUER", url),
                ("KEY_ROTATE_SECS", "3"),
            ][..],
            "at least 4",
        ),
        (
            &[
                ("SIGNING_ALG", "ES256"),
                ("JWKS_URL", "https://idp.example.test/jwks"),
            ][..],
            "provider mode",
        ),
    ] {
        let error = config(vars).unwrap_err();
        assert!(error.contains(message), "{vars:?}: {error}");
    }
}

fn config_ok(vars: &[(&str, &str)]) -> Config {
    config(vars).unwrap()
}

#[tokio::test]
async fn key_rotate_secs_is_the_rotation_period() {
    let (_, state) = bounded(start("ES256")).await;
    let ring = state.key_ring.unwrap();
    assert_eq!(ring.rotation_period(), Duration::from_secs(3600));
    let keys = ring.keys();
    assert_eq!(keys[1].activates_at() - keys[0].activates_at(), 3600);
}

/// Two instances of the example on one Redis share one ring (named by their
/// common `JWT_ISSUER`): a token of either verifies with keys fetched from
/// the other, and a rotation by one is the other's after a sync.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_redis_share_the_ring() {
    bounded(async {
        let redis_url = std::env::var("REDIS_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned());
        if let Err(e) = redis::Client::open(redis_url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
        {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "Redis is unreachable on CI: {e}"
            );
            eprintln!("SKIPPED: Redis is unreachable ({e}); set REDIS_URL to run this test");
            return;
        }
        let (a, b) = (
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
        );
        // Both instances are the one issuer (behind a load balancer, its
        // public URL); here it is instance A's address.
        let issuer = format!("http://{}", a.local_addr().unwrap());
        let b_url = format!("http://{}", b.local_addr().unwrap());
        let mut states = Vec::new();
        for listener in [a, b] {
            let config = config(&[
                ("SIGNING_ALG", "ES256"),
                ("JWT_ISSUER", &issuer),
                ("REFRESH_STORE", "redis"),
                ("REDIS_URL", &redis_url),
            ])
            .unwrap();
            let store = config.store.connect().await.unwrap();
            let state = AppState::from_config(&config, store).await.unwrap();
            let router = app(state.clone());
            tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
            states.push(state);
        }
        let ring_a = states[0].key_ring.clone().unwrap();
        let ring_b = states[1].key_ring.clone().unwrap();
        assert_eq!(ring_a.keys(), ring_b.keys());

        let (remote, verifier) = remote_verifier(&issuer).await;
        let from_b = login(&b_url).await;
        verifier.verify_async::<Value>(&from_b).await.unwrap();

        assert!(ring_b.rotate().await.unwrap());
        assert!(!ring_a.rotate().await.unwrap(), "A finds the ring rotated");
        assert_eq!(ring_a.keys(), ring_b.keys());
        let from_a = login(&issuer).await;
        assert_eq!(header_of(&from_a)["kid"], ring_b.active_kid().as_str());
        remote.refresh().await.unwrap();
        verifier.verify_async::<Value>(&from_a).await.unwrap();
        verifier.verify_async::<Value>(&from_b).await.unwrap();

        let mut conn = redis::Client::open(redis_url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: () = redis::cmd("DEL")
            .arg(format!("tjwt:ring:{issuer}"))
            .query_async(&mut conn)
            .await
            .unwrap();
    })
    .await;
}
