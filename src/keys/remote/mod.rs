//! Remote JWK Sets (feature `jwks`); see [`RemoteJwks`].

mod client;

use std::{
    fmt,
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwapOption;
use serde::Deserialize;
use sha2::{Digest, Sha256};
// Tokio's clock, not std's: the same outside tests, and it follows a paused
// test clock, like the timers of the refresh task do.
use tokio::{sync::watch, time::Instant};

pub use self::client::{
    BoxFuture, DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_RESPONSE_SIZE, DefaultClient, FetchError,
    JwksClient, USER_AGENT,
};
use crate::{
    error::{AuthError, ConfigError},
    keys::{Algorithm, KeySet, Refresh, Symmetric, parse_set},
};

/// The default interval of the background refresh: 5 minutes.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The default minimum time between two refreshes for an unknown `kid`: 30 seconds.
pub const DEFAULT_UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(30);
/// The default longest time a request waits for a refresh for an unknown `kid`: 2 seconds.
pub const DEFAULT_UNKNOWN_KID_MAX_WAIT: Duration = Duration::from_secs(2);

/// The first retry delay after a failed fetch; it doubles up to the refresh
/// interval, and never beyond a minute.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Keys from an identity provider: a remote JWK Set, found directly or by
/// OpenID Connect discovery, cached and refreshed (feature `jwks`). Cheap to
/// clone: clones share the keys. Give it to
/// [`VerifierBuilder::jwks`](crate::VerifierBuilder::jwks).
///
/// ```no_run
/// use tower_jwt_auth::{Verifier, keys::RemoteJwks};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // `{issuer}/.well-known/openid-configuration` names the `jwks_uri`; the
/// // document's `issuer` must be exactly the configured one, and tokens
/// // must carry it as `iss`.
/// let remote = RemoteJwks::discover("https://idp.example.com/realms/main")
///     .build()
///     .await?;
/// let verifier = Verifier::builder().jwks(remote).audience("my-api").build()?;
/// # let _ = verifier;
/// # Ok(())
/// # }
/// ```
///
/// # How keys are kept fresh
///
/// - By default the keys are fetched when the [`RemoteJwks`] is built: a
///   provider that cannot be reached, or a JWK Set without a usable key,
///   makes [`build`](RemoteJwksBuilder::build) fail. With
///   [`lazy`](RemoteJwksBuilder::lazy) it starts without them and keeps
///   trying in the background with backoff; until the first keys arrive,
///   requests are answered 503 and [`is_ready`](RemoteJwks::is_ready) is false.
/// - The parsed, prepared key set sits in an `ArcSwap`: verifying a token
///   takes no lock and never waits for I/O; a refresh parses the keys once and
///   swaps the whole set in.
/// - A background task refetches the set every
///   [`refresh_interval`](RemoteJwksBuilder::refresh_interval) (5 minutes by
///   default), sooner with backoff after a failure. It holds only a weak
///   reference and ends once the last clone of the `RemoteJwks` (and of the
///   verifiers using it) is dropped.
/// - A token whose `kid` is unknown makes [`JwtAuthLayer`](crate::JwtAuthLayer)
///   (and [`Verifier::verify_async`](crate::Verifier::verify_async)) refetch
///   the set and verify again (key rotation). The refetch runs in its own
///   task, shared by every request that waits for it, at most one per
///   [`unknown_kid_cooldown`](RemoteJwksBuilder::unknown_kid_cooldown)
///   (30 s by default); no request waits longer than
///   [`unknown_kid_max_wait`](RemoteJwksBuilder::unknown_kid_max_wait) (2 s
///   by default), and none queues behind a lock.
/// - A failed refresh keeps the last good keys serving, with a warning, up to
///   [`max_stale`](RemoteJwksBuilder::max_stale) after the last success (no
///   limit by default); beyond it, requests are answered 503.
///
/// # What is never done
///
/// A `kid` is only ever looked up in the key set (exact match): it never
/// becomes part of a URL or a path. The `jku`, `x5u` and `jwk` headers of a
/// token are ignored: keys come from the configured URL only. Plain `http://`
/// is refused except for loopback hosts (tests, sidecars). Symmetric (`oct`)
/// keys in a remote set are skipped. `Cache-Control` is not interpreted; the
/// refresh interval is.
#[derive(Clone)]
pub struct RemoteJwks {
    shared: Arc<Shared>,
}

struct Shared {
    source: Source,
    issuer: Option<String>,
    /// The JWK Set URL: configured, or found by discovery (once).
    jwks_url: OnceLock<String>,
    client: Arc<dyn JwksClient>,
    without_alg: Vec<Algorithm>,
    /// The keys, each set stamped with its generation (the ArcSwap makes the
    /// keys and their generation one atomic value).
    keys: ArcSwapOption<KeySet>,
    /// The SHA-256 of the last JWK Set swapped in: a refetch of the same
    /// document keeps the generation, so verified tokens stay cached.
    digest: Mutex<Option<[u8; 32]>>,
    /// When the keys were last fetched successfully, in milliseconds after `epoch`.
    fetched_ms: AtomicU64,
    epoch: Instant,
    cooldown: Duration,
    max_wait: Duration,
    max_stale: Option<Duration>,
    fetch: Mutex<FetchState>,
    /// Counts the fetches that ended, successful or not; waiters watch it.
    ended: watch::Sender<u64>,
}

#[derive(Default)]
struct FetchState {
    in_flight: bool,
    last_end: Option<Instant>,
    last_error: Option<Arc<FetchError>>,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("source", &self.shared.source)
            .field("jwks_url", &self.shared.jwks_url.get())
            .field("keys", &self.shared.keys.load().as_deref())
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
    issuer: Option<String>,
    client: Option<Arc<dyn JwksClient>>,
    refresh_interval: Duration,
    cooldown: Duration,
    max_wait: Duration,
    max_stale: Option<Duration>,
    without_alg: Vec<Algorithm>,
    lazy: bool,
}

impl fmt::Debug for RemoteJwksBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwksBuilder")
            .field("source", &self.source)
            .field("issuer", &self.issuer)
            .field("custom_client", &self.client.is_some())
            .field("refresh_interval", &self.refresh_interval)
            .field("cooldown", &self.cooldown)
            .field("max_wait", &self.max_wait)
            .field("max_stale", &self.max_stale)
            .field("without_alg", &self.without_alg)
            .field("lazy", &self.lazy)
            .finish()
    }
}

impl RemoteJwks {
    /// Keys from the JWK Set at `jwks_url`. A verifier using them needs the
    /// issuer whose tokens they verify
    /// ([`VerifierBuilder::issuer`](crate::VerifierBuilder::issuer) or
    /// [`RemoteJwksBuilder::issuer`]).
    pub fn builder(jwks_url: impl Into<String>) -> RemoteJwksBuilder {
        RemoteJwksBuilder::new(Source::Url(jwks_url.into()))
    }

    /// Keys found by OpenID Connect discovery: the `jwks_uri` of
    /// `{issuer}/.well-known/openid-configuration` (a trailing `/` of the
    /// issuer removed first, per OpenID Connect Discovery 1.0 section 4). The
    /// document's `issuer` must equal `issuer` exactly, or the build fails
    /// (or, when [`lazy`](RemoteJwksBuilder::lazy), the keys never arrive).
    /// Discovery runs once, until it succeeds; refreshes refetch the `jwks_uri`.
    pub fn discover(issuer: impl Into<String>) -> RemoteJwksBuilder {
        let issuer = issuer.into();
        let mut builder = RemoteJwksBuilder::new(Source::Issuer(issuer.clone()));
        builder.issuer = Some(issuer);
        builder
    }

    /// The URL of the JWK Set: the configured one, or the discovered one once
    /// discovery succeeded.
    pub fn jwks_url(&self) -> Option<&str> {
        self.shared.jwks_url.get().map(String::as_str)
    }

    /// The issuer these keys belong to: the one discovery checks, or the one
    /// set with [`RemoteJwksBuilder::issuer`].
    pub fn issuer(&self) -> Option<&str> {
        self.shared.issuer.as_deref()
    }

    /// The `kid`s of the current keys.
    pub fn key_ids(&self) -> Vec<String> {
        self.shared
            .keys
            .load()
            .as_deref()
            .map(KeySet::kids)
            .unwrap_or_default()
    }

    /// Whether keys are at hand: after the first successful fetch, and while
    /// they are not older than [`max_stale`](RemoteJwksBuilder::max_stale).
    pub fn is_ready(&self) -> bool {
        self.shared.keys.load().is_some() && !self.shared.is_stale()
    }

    /// Waits until [`is_ready`](Self::is_ready): for a readiness probe, or to
    /// hold back a server's start until the keys arrive.
    pub async fn ready(&self) {
        let mut ended = self.shared.ended.subscribe();
        while !self.is_ready() {
            if ended.changed().await.is_err() {
                return;
            }
        }
    }

    /// Refetches the set now (no cooldown), or joins a fetch under way, and
    /// waits for it. On failure the current keys stay.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let mut ended = self.shared.ended.subscribe();
        Shared::start_fetch(&self.shared, None);
        let _ = ended.changed().await;
        match &self.shared.fetch.lock().expect("fetch state").last_error {
            None => Ok(()),
            Some(error) => Err(FetchError::with_source(
                "refreshing the JWK Set failed",
                Arc::clone(error),
            )),
        }
    }

    /// For a token whose `kid` is unknown: starts a refetch unless one ended
    /// less than the cooldown ago (or joins the one under way), and returns a
    /// wait for it bounded by the maximum wait. `None` when nothing is worth
    /// waiting for.
    pub(crate) fn refresh_for_unknown_kid(&self) -> Option<Refresh> {
        let mut ended = self.shared.ended.subscribe();
        if !Shared::start_fetch(&self.shared, Some(self.shared.cooldown)) {
            return None;
        }
        let max_wait = self.shared.max_wait;
        Some(Box::pin(async move {
            let _ = tokio::time::timeout(max_wait, ended.changed()).await;
        }))
    }

    pub(crate) fn verify(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        message: &str,
        signature: &str,
    ) -> Result<u64, AuthError> {
        let keys = self.shared.keys.load();
        self.usable(keys.as_deref())?
            .verify(kid, alg, message, signature)
    }

    /// The generation of the current keys: it changes whenever a fetch
    /// brings a set that differs from the one before.
    pub(crate) fn generation(&self) -> Result<u64, AuthError> {
        let keys = self.shared.keys.load();
        self.usable(keys.as_deref()).map(KeySet::generation)
    }

    /// The keys, if they can be used: fetched, and not stale.
    fn usable<'k>(&self, keys: Option<&'k KeySet>) -> Result<&'k KeySet, AuthError> {
        let Some(keys) = keys else {
            return Err(AuthError::unavailable(FetchError::new(
                "the identity provider's keys have not arrived yet",
            )));
        };
        if self.shared.is_stale() {
            return Err(AuthError::unavailable(FetchError::new(
                "the identity provider's keys are older than their maximum age",
            )));
        }
        Ok(keys)
    }
}

impl Shared {
    /// Sets `in_flight` unless a fetch is under way; whether it did.
    fn claim_fetch(&self) -> bool {
        !std::mem::replace(&mut self.fetch.lock().expect("fetch state").in_flight, true)
    }

    fn is_stale(&self) -> bool {
        self.max_stale.is_some_and(|max| {
            let fetched = Duration::from_millis(self.fetched_ms.load(Ordering::Acquire));
            self.epoch.elapsed().saturating_sub(fetched) > max
        })
    }

    /// Starts a fetch in its own task unless one is under way (then it is
    /// joined) or, with a cooldown, one ended less than that ago. Returns
    /// whether a fetch is now under way.
    fn start_fetch(shared: &Arc<Self>, cooldown: Option<Duration>) -> bool {
        {
            let mut state = shared.fetch.lock().expect("fetch state");
            if state.in_flight {
                return true;
            }
            if let (Some(cooldown), Some(end)) = (cooldown, state.last_end)
                && end.elapsed() < cooldown
            {
                return false;
            }
            state.in_flight = true;
        }
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            let _ = shared.fetch_now().await;
        });
        true
    }

    /// Fetches (discovering first if still needed), swaps the keys in and
    /// tells the waiters. Called with `in_flight` set, or at start.
    async fn fetch_now(&self) -> Result<(), Arc<FetchError>> {
        let result = self.fetch_keys().await.map_err(Arc::new);
        {
            let mut state = self.fetch.lock().expect("fetch state");
            state.in_flight = false;
            state.last_end = Some(Instant::now());
            state.last_error = result.as_ref().err().cloned();
        }
        self.ended.send_modify(|n| *n += 1);
        result
    }

    async fn fetch_keys(&self) -> Result<(), FetchError> {
        let url = match self.jwks_url.get() {
            Some(url) => url.clone(),
            None => {
                let Source::Issuer(issuer) = &self.source else {
                    unreachable!("a JWK Set URL source sets the URL when built");
                };
                let url = discover(&*self.client, issuer).await?;
                self.jwks_url.get_or_init(|| url).clone()
            }
        };
        match fetch_keys(&*self.client, &url, &self.without_alg).await {
            Ok((keys, digest)) => {
                tracing::debug!(kids = ?keys.kids(), "JWK Set refreshed");
                let mut last = self.digest.lock().expect("digest");
                let current = self.keys.load().as_deref().map(KeySet::generation);
                let generation = match current {
                    Some(generation) if *last == Some(digest) => generation,
                    Some(generation) => generation + 1,
                    None => 0,
                };
                *last = Some(digest);
                self.keys
                    .store(Some(Arc::new(keys.with_generation(generation))));
                drop(last);
                let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
                self.fetched_ms.store(now, Ordering::Release);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(
                    url = %url,
                    error = %crate::error::Report(&error),
                    "fetching the JWK Set failed; the previous keys stay in use, if there are any"
                );
                Err(error)
            }
        }
    }
}

/// The key set at `url`, and the SHA-256 of the document it came from.
async fn fetch_keys(
    client: &dyn JwksClient,
    url: &str,
    without_alg: &[Algorithm],
) -> Result<(KeySet, [u8; 32]), FetchError> {
    let body = client.get(url).await.map_err(|e| {
        FetchError::with_source(format!("fetching the JWK Set from {url:?} failed"), e)
    })?;
    let keys = parse_set(&body, Symmetric::Skip, without_alg)
        .and_then(KeySet::new)
        .map_err(|e| FetchError::with_source("the JWK Set is unusable", e))?;
    Ok((keys, Sha256::digest(&body).into()))
}

/// OpenID Connect discovery: the `jwks_uri` of the issuer's configuration
/// document, whose `issuer` must be exactly the configured one.
async fn discover(client: &dyn JwksClient, issuer: &str) -> Result<String, FetchError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let body = client
        .get(&url)
        .await
        .map_err(|e| FetchError::with_source(format!("OpenID discovery at {url:?} failed"), e))?;
    let document: Discovery = serde_json::from_slice(&body).map_err(|e| {
        FetchError::with_source(format!("the discovery document at {url:?} is invalid"), e)
    })?;
    if document.issuer != issuer {
        return Err(FetchError::new(format!(
            "the discovery document names the issuer {:?}, not {issuer:?}",
            document.issuer
        )));
    }
    check_url(&document.jwks_uri, "JWK Set URL", Some(issuer))
        .map_err(|e| FetchError::with_source("the discovered JWK Set URL is refused", e))?;
    Ok(document.jwks_uri)
}

/// HTTPS anywhere; plain HTTP only to loopback hosts, and for a discovered
/// URL only when the issuer itself is a loopback HTTP URL.
fn check_url(url: &str, what: &str, issuer: Option<&str>) -> Result<(), ConfigError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| ConfigError::with_source(format!("the {what} {url:?} is not a URL"), e))?;
    let host = uri.host().unwrap_or_default();
    let loopback = |host: &str| matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1");
    let issuer_is_loopback_http = issuer.is_none_or(|issuer| {
        issuer
            .parse::<http::Uri>()
            .is_ok_and(|i| i.scheme_str() == Some("http") && loopback(i.host().unwrap_or_default()))
    });
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if loopback(host) && issuer_is_loopback_http => Ok(()),
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
            issuer: None,
            client: None,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            cooldown: DEFAULT_UNKNOWN_KID_COOLDOWN,
            max_wait: DEFAULT_UNKNOWN_KID_MAX_WAIT,
            max_stale: None,
            without_alg: Vec::new(),
            lazy: false,
        }
    }

    /// The issuer whose tokens these keys verify, for a JWK Set found by URL
    /// (with [`RemoteJwks::discover`], the discovered issuer already is). A
    /// verifier using the keys takes it as its issuer unless it names one.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The HTTP client ([`DefaultClient`] unless set): for a proxy, custom
    /// headers or another TLS setup, implement [`JwksClient`].
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

    /// The longest a request waits for a refetch for an unknown `kid`
    /// (default 2 s); the fetch itself goes on, and later requests use its keys.
    pub fn unknown_kid_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// How long after the last successful fetch the keys may still be used
    /// while refreshes fail (no limit by default); beyond it, requests are
    /// answered 503 until a fetch succeeds. The background refresh then runs
    /// at least every half of this age, so keys of a healthy provider never
    /// go stale.
    pub fn max_stale(mut self, max_age: Duration) -> Self {
        self.max_stale = Some(max_age);
        self
    }

    /// The algorithms that keys without `alg` accept, each key those that fit
    /// its type and curve (default: the type's usual one, such as `RS256`).
    /// Some providers publish RSA keys without `alg` and sign with `PS256`.
    pub fn default_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.without_alg = algorithms.into_iter().collect();
        self
    }

    /// Starts without the keys: [`build`](Self::build) returns at once, and
    /// the fetch (and discovery) is retried in the background with backoff
    /// until it succeeds. Until then requests are answered 503 (gRPC
    /// `UNAVAILABLE`); see [`RemoteJwks::is_ready`] and [`RemoteJwks::ready`].
    /// Off by default: a provider that cannot be reached fails the start.
    pub fn lazy(mut self) -> Self {
        self.lazy = true;
        self
    }

    /// Checks the configuration, then (unless [`lazy`](Self::lazy))
    /// discovers and fetches the JWK Set; starts the background refresh on
    /// the current Tokio runtime.
    ///
    /// Fails if a URL is not https (plain http only for loopback), or, unless
    /// lazy, if the provider cannot be reached, the discovered issuer is not
    /// the configured one, or the set has no usable key.
    pub async fn build(self) -> Result<RemoteJwks, ConfigError> {
        crate::keys::install_crypto_provider();
        let client = match self.client {
            Some(client) => client,
            None => Arc::new(DefaultClient::new()),
        };
        let jwks_url = OnceLock::new();
        match &self.source {
            Source::Url(url) => {
                check_url(url, "JWK Set URL", None)?;
                let _ = jwks_url.set(url.clone());
            }
            Source::Issuer(issuer) => {
                check_url(issuer, "issuer", None)?;
            }
        }
        let (ended, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            source: self.source,
            issuer: self.issuer,
            jwks_url,
            client,
            without_alg: self.without_alg,
            keys: ArcSwapOption::empty(),
            digest: Mutex::new(None),
            fetched_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            cooldown: self.cooldown,
            max_wait: self.max_wait,
            max_stale: self.max_stale,
            fetch: Mutex::new(FetchState {
                in_flight: true,
                ..FetchState::default()
            }),
            ended,
        });
        if !self.lazy {
            shared.fetch_now().await.map_err(|e| {
                ConfigError::with_source("the identity provider's keys could not be fetched", e)
            })?;
        }
        tokio::spawn(keep_fresh(
            Arc::downgrade(&shared),
            self.lazy,
            self.refresh_interval,
        ));
        Ok(RemoteJwks { shared })
    }
}

/// The background task: the first fetch when lazy, then a refetch every
/// `interval` (never, if zero, unless `max_stale` needs one: then every half
/// of it, so healthy keys never go stale); after a failure, retries from
/// half a second, doubling up to the interval (at most a minute).
async fn keep_fresh(shared: Weak<Shared>, lazy: bool, interval: Duration) {
    let interval = match shared.upgrade().and_then(|shared| shared.max_stale) {
        Some(max_stale) if interval.is_zero() => max_stale / 2,
        Some(max_stale) => interval.min(max_stale / 2),
        None => interval,
    };
    let max_retry = if interval.is_zero() {
        MAX_RETRY
    } else {
        interval.clamp(FIRST_RETRY, MAX_RETRY)
    };
    let mut failing = false;
    if lazy {
        // `build` left `in_flight` set for this first fetch.
        let Some(shared) = shared.upgrade() else {
            return;
        };
        failing = shared.fetch_now().await.is_err();
    }
    let mut retry = FIRST_RETRY;
    loop {
        let wait = if failing {
            let wait = retry;
            retry = (retry * 2).min(max_retry);
            wait
        } else if interval.is_zero() {
            return;
        } else {
            retry = FIRST_RETRY;
            interval
        };
        tokio::time::sleep(wait).await;
        let Some(shared) = shared.upgrade() else {
            tracing::debug!("JWK Set dropped; the background refresh ends");
            return;
        };
        if !shared.claim_fetch() {
            // A fetch for an unknown `kid` is under way: this round is its.
            continue;
        }
        failing = shared.fetch_now().await.is_err();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback() {
        assert!(check_url("https://idp.example.com/jwks", "u", None).is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks", "u", None).is_ok());
        assert!(check_url("http://localhost/jwks", "u", None).is_ok());
        assert!(check_url("http://[::1]:1/jwks", "u", None).is_ok());
        assert!(check_url("http://idp.example.com/jwks", "u", None).is_err());
        assert!(check_url("http://127.0.0.1.evil.com/jwks", "u", None).is_err());
        assert!(check_url("file:///etc/passwd", "u", None).is_err());
        assert!(check_url("/jwks", "u", None).is_err());
    }
}
