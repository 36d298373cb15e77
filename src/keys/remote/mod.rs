//! Keys from an identity provider: a remote JWK Set, found directly or by
//! OpenID Connect discovery, cached and refreshed (feature `jwks`).
//!
//! ```no_run
//! use tower_jwt_auth::{Verifier, keys::RemoteJwks};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // `{issuer}/.well-known/openid-configuration` names the `jwks_uri`; the
//! // document's `issuer` must be exactly the configured one.
//! let remote = RemoteJwks::discover("https://idp.example.com/realms/main")
//!     .build()
//!     .await?;
//! let verifier = Verifier::builder()
//!     .jwks(remote)
//!     .issuer("https://idp.example.com/realms/main")
//!     .audience("my-api")
//!     .build()?;
//! # let _ = verifier;
//! # Ok(())
//! # }
//! ```
//!
//! # How keys are kept fresh
//!
//! - The keys are fetched when the [`RemoteJwks`] is built: a provider that
//!   cannot be reached, or a JWK Set without a usable key, makes
//!   [`build`](RemoteJwksBuilder::build) fail.
//! - The parsed, prepared key set sits in an `ArcSwap`: verifying a token
//!   takes no lock and never waits for I/O; a refresh parses the keys once and
//!   swaps the whole set in.
//! - A background task refetches the set every
//!   [`refresh_interval`](RemoteJwksBuilder::refresh_interval) (5 minutes by
//!   default). It holds only a weak reference and ends once the last clone of
//!   the `RemoteJwks` (and of the verifiers using it) is dropped.
//! - A token whose `kid` is unknown makes [`JwtAuthLayer`](crate::JwtAuthLayer)
//!   refetch the set once and verify again (key rotation). Such refetches are
//!   single-flight (concurrent misses share one fetch) and at most one per
//!   [`unknown_kid_cooldown`](RemoteJwksBuilder::unknown_kid_cooldown)
//!   (30 s by default), so a flood of tokens with random `kid`s costs at most
//!   one request to the provider per window.
//! - A failed refresh keeps the last good keys serving, with a warning.
//!
//! # What is never done
//!
//! A `kid` is only ever looked up in the key set (exact match): it never
//! becomes part of a URL or a path. The `jku`, `x5u` and `jwk` headers of a
//! token are ignored: keys come from the configured URL only. Plain `http://`
//! is refused except for loopback hosts (tests, sidecars). Symmetric (`oct`)
//! keys in a remote set are skipped. `Cache-Control` is not interpreted; the
//! refresh interval is.

mod client;

use std::{
    fmt,
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use serde::Deserialize;

pub use self::client::{
    BoxFuture, DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_RESPONSE_SIZE, DefaultClient, FetchError,
    JwksClient,
};
use crate::{
    error::{AuthError, ConfigError},
    keys::{Algorithm, KeySet, Symmetric, parse_set},
};

/// The default interval of the background refresh: 5 minutes.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The default minimum time between two refreshes for an unknown `kid`: 30 seconds.
pub const DEFAULT_UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(30);

/// A JWK Set fetched from an identity provider and kept fresh; see the
/// [module docs](self). Cheap to clone: clones share the keys.
///
/// Give it to [`VerifierBuilder::jwks`](crate::VerifierBuilder::jwks).
#[derive(Clone)]
pub struct RemoteJwks {
    shared: Arc<Shared>,
}

struct Shared {
    jwks_url: String,
    issuer: Option<String>,
    client: Arc<dyn JwksClient>,
    keys: ArcSwap<KeySet>,
    cooldown: Duration,
    /// Held while fetching; remembers when the last fetch ended.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    /// Counts the fetches that ended, successful or not.
    generation: AtomicU64,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("jwks_url", &self.shared.jwks_url)
            .field("issuer", &self.shared.issuer)
            .field("keys", &**self.shared.keys.load())
            .field("cooldown", &self.shared.cooldown)
            .finish_non_exhaustive()
    }
}

/// Where the keys come from.
#[derive(Debug, Clone)]
enum Source {
    Url(String),
    Issuer(String),
}

/// Builds a [`RemoteJwks`]; see [`RemoteJwks::builder`] and [`RemoteJwks::discover`].
#[must_use]
pub struct RemoteJwksBuilder {
    source: Source,
    client: Option<Arc<dyn JwksClient>>,
    refresh_interval: Duration,
    cooldown: Duration,
}

impl fmt::Debug for RemoteJwksBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwksBuilder")
            .field("source", &self.source)
            .field("custom_client", &self.client.is_some())
            .field("refresh_interval", &self.refresh_interval)
            .field("cooldown", &self.cooldown)
            .finish()
    }
}

impl RemoteJwks {
    /// Keys from the JWK Set at `jwks_url`.
    pub fn builder(jwks_url: impl Into<String>) -> RemoteJwksBuilder {
        RemoteJwksBuilder::new(Source::Url(jwks_url.into()))
    }

    /// Keys found by OpenID Connect discovery: the `jwks_uri` of
    /// `{issuer}/.well-known/openid-configuration` (a trailing `/` of the
    /// issuer removed first, per OpenID Connect Discovery 1.0 section 4). The
    /// document's `issuer` must equal `issuer` exactly, or the build fails.
    /// Discovery runs once, when built; refreshes refetch the `jwks_uri`.
    pub fn discover(issuer: impl Into<String>) -> RemoteJwksBuilder {
        RemoteJwksBuilder::new(Source::Issuer(issuer.into()))
    }

    /// The URL of the JWK Set (discovered, with [`discover`](Self::discover)).
    pub fn jwks_url(&self) -> &str {
        &self.shared.jwks_url
    }

    /// The issuer checked by discovery, with [`discover`](Self::discover).
    pub fn issuer(&self) -> Option<&str> {
        self.shared.issuer.as_deref()
    }

    /// The `kid`s of the current keys.
    pub fn key_ids(&self) -> Vec<String> {
        self.shared.keys.load().kids()
    }

    /// Refetches the set now, sharing a fetch already under way (no cooldown).
    /// On failure the current keys stay.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let seen = self.shared.generation.load(Ordering::Acquire);
        let mut last = self.shared.fetching.lock().await;
        if self.shared.generation.load(Ordering::Acquire) != seen {
            // A fetch ended while we waited for it: take its result.
            return Ok(());
        }
        self.shared.fetch(&mut last).await
    }

    /// Refetches the set because a token named an unknown `kid`, unless a
    /// fetch ended less than the cooldown ago. Concurrent calls share one
    /// fetch. Returns whether a fetch ended meanwhile, that is whether
    /// verifying again may succeed; it is called by
    /// [`JwtAuthLayer`](crate::JwtAuthLayer) on its own.
    pub async fn refresh_for_unknown_kid(&self) -> bool {
        let seen = self.shared.generation.load(Ordering::Acquire);
        let mut last = self.shared.fetching.lock().await;
        if self.shared.generation.load(Ordering::Acquire) != seen {
            return true;
        }
        if last.is_some_and(|at| at.elapsed() < self.shared.cooldown) {
            return false;
        }
        tracing::debug!("refreshing the JWK Set for an unknown kid");
        self.shared.fetch(&mut last).await.is_ok()
    }

    pub(crate) fn verify(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        message: &str,
        signature: &str,
    ) -> Result<(), AuthError> {
        self.shared.keys.load().verify(kid, alg, message, signature)
    }
}

impl Shared {
    /// Fetches, parses and swaps in the set; the caller holds `fetching`.
    async fn fetch(&self, last: &mut Option<Instant>) -> Result<(), FetchError> {
        let result = fetch_keys(&*self.client, &self.jwks_url).await;
        *last = Some(Instant::now());
        self.generation.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(keys) => {
                tracing::debug!(kids = ?keys.kids(), "JWK Set refreshed");
                self.keys.store(Arc::new(keys));
                Ok(())
            }
            Err(error) => {
                tracing::warn!(
                    url = %self.jwks_url,
                    %error,
                    "refreshing the JWK Set failed; the previous keys stay in use"
                );
                Err(error)
            }
        }
    }
}

async fn fetch_keys(client: &dyn JwksClient, url: &str) -> Result<KeySet, FetchError> {
    let body = client.get(url).await?;
    let keys = parse_set(&body, Symmetric::Skip)
        .and_then(KeySet::new)
        .map_err(|e| FetchError::with_source("the JWK Set is unusable", e))?;
    Ok(keys)
}

/// Plain HTTP only to loopback hosts; HTTPS anywhere.
fn check_url(url: &str, what: &str) -> Result<(), ConfigError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| ConfigError::with_source(format!("the {what} {url:?} is not a URL"), e))?;
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1") => Ok(()),
        _ => Err(ConfigError::new(format!(
            "the {what} {url:?} must be an https URL (plain http only for loopback hosts)"
        ))),
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl RemoteJwksBuilder {
    fn new(source: Source) -> Self {
        Self {
            source,
            client: None,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            cooldown: DEFAULT_UNKNOWN_KID_COOLDOWN,
        }
    }

    /// The HTTP client ([`DefaultClient`] unless set).
    pub fn client(mut self, client: impl JwksClient) -> Self {
        self.client = Some(Arc::new(client));
        self
    }

    /// How often the background task refetches the set (default 5 minutes);
    /// `Duration::ZERO` turns the background refresh off.
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The minimum time between the end of a fetch and a refetch for an
    /// unknown `kid` (default 30 s).
    pub fn unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Discovers the JWK Set if asked to, fetches it, and starts the
    /// background refresh on the current Tokio runtime.
    ///
    /// Fails if the provider cannot be reached, the discovered issuer is
    /// not the configured one, or the set has no usable key.
    pub async fn build(self) -> Result<RemoteJwks, ConfigError> {
        crate::keys::install_crypto_provider();
        let client = match self.client {
            Some(client) => client,
            None => Arc::new(DefaultClient::new()),
        };
        let (jwks_url, issuer) = match self.source {
            Source::Url(url) => (url, None),
            Source::Issuer(issuer) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                check_url(&url, "discovery URL")?;
                let body = client.get(&url).await.map_err(|e| {
                    ConfigError::with_source(format!("OpenID discovery at {url:?} failed"), e)
                })?;
                let document: Discovery = serde_json::from_slice(&body).map_err(|e| {
                    ConfigError::with_source(
                        format!("the discovery document at {url:?} is invalid"),
                        e,
                    )
                })?;
                if document.issuer != issuer {
                    return Err(ConfigError::new(format!(
                        "the discovery document names the issuer {:?}, not {issuer:?}",
                        document.issuer
                    )));
                }
                (document.jwks_uri, Some(issuer))
            }
        };
        check_url(&jwks_url, "JWK Set URL")?;
        let keys = fetch_keys(&*client, &jwks_url).await.map_err(|e| {
            ConfigError::with_source(format!("fetching the JWK Set from {jwks_url:?} failed"), e)
        })?;
        let shared = Arc::new(Shared {
            jwks_url,
            issuer,
            client,
            keys: ArcSwap::from_pointee(keys),
            cooldown: self.cooldown,
            fetching: tokio::sync::Mutex::new(Some(Instant::now())),
            generation: AtomicU64::new(0),
        });
        if !self.refresh_interval.is_zero() {
            tokio::spawn(refresh_periodically(
                Arc::downgrade(&shared),
                self.refresh_interval,
            ));
        }
        Ok(RemoteJwks { shared })
    }
}

async fn refresh_periodically(shared: Weak<Shared>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(shared) = shared.upgrade() else {
            tracing::debug!("JWK Set dropped; the background refresh ends");
            return;
        };
        let remote = RemoteJwks { shared };
        let _ = remote.refresh().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback() {
        assert!(check_url("https://idp.example.com/jwks", "u").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks", "u").is_ok());
        assert!(check_url("http://localhost/jwks", "u").is_ok());
        assert!(check_url("http://[::1]:1/jwks", "u").is_ok());
        assert!(check_url("http://idp.example.com/jwks", "u").is_err());
        assert!(check_url("http://127.0.0.1.evil.com/jwks", "u").is_err());
        assert!(check_url("file:///etc/passwd", "u").is_err());
        assert!(check_url("/jwks", "u").is_err());
    }
}
