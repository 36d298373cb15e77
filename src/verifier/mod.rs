//! Token verification: the one place where a compact JWS becomes claims.
//!
//! The order is fixed and matters (RFC 8725): the length is checked before
//! anything is decoded; the header is parsed strictly; the key is chosen by
//! exact `kid` and must allow the header's `alg`; the signature is verified
//! before the payload is used; then the payload is read (duplicate claim
//! names refused, the registered claims read, the application's claims type
//! decoded) and its registered claims are validated before the claims are
//! handed over. The payload is read in the first of three ways that reads
//! it cleanly: a quick walk over the text that picks out the registered
//! claims of a payload in the usual shape, beside a plain serde_json decode
//! of the claims type ([`quick`]); one strict pass that decodes the claims
//! type in the same walk ([`json::decode_once`]); and the slow way, a scan
//! and then a decode, which name what is wrong in the fixed order. The
//! first two decide nothing of their own: whatever they do not read
//! cleanly falls through to the next. (A verifier for several issuers scans
//! the payload before the signature, to route by `iss`, and decodes the
//! claims type after the checks.)
//!
//! Costs per token, without the cache: the payload is decoded on the stack
//! (up to 1 KiB of JSON) and kept in one shared buffer; a header equal,
//! byte for byte, to the last one the thread read is not decoded or parsed
//! again (a memo per thread whose strings keep their capacity).
//!
//! A verifier for several issuers ([`Verifier::by_issuer`]) reads the
//! unverified `iss` only to choose the issuer, then verifies strictly with
//! that issuer's keys and rules alone.
//!
//! A verified token may be kept in the verifier's cache ([`cache`]) and
//! accepted again without its signature checked, until its `exp`.

mod cache;
mod json;
mod quick;

use std::{
    any::Any,
    borrow::Cow,
    cell::RefCell,
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::de::DeserializeOwned;

use self::{
    cache::{CacheSize, Entry, TokenCache},
    json::{ClaimsSink, decode_once, parse_header},
};
use crate::{
    claims::{Claims, Spans, VerifiedPayload},
    error::{AuthError, AuthErrorKind, ConfigError, JsonError},
    json::{Names, scan_object},
    keys::{Algorithm, KeySet, KeySource, VerificationKey},
};

/// The default maximum token length: 8 KiB.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// The default clock-skew leeway for `exp` and `nbf`: 30 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// The default number of verified tokens a verifier keeps: 10,000.
pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;
/// The default memory bound of the verified-token cache: 16 MiB.
pub const DEFAULT_CACHE_MEMORY: usize = 16 * 1024 * 1024;

/// Verifies tokens: signature, algorithm, key and claims.
///
/// Build one with [`Verifier::builder`] (one issuer, or none checked) or
/// [`Verifier::by_issuer`] (several, each with its own keys and rules); it
/// is cheap to clone and is shared by every clone of the layer. It can also
/// be used on its own, outside any middleware.
///
/// ```
/// use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer, VerificationKey, Verifier};
///
/// let secret = b"a secret of at least thirty-two bytes!";
/// let verifier = Verifier::builder()
///     .key(VerificationKey::hmac(secret)?)
///     .issuer("https://auth.example.com")
///     .audience("api")
///     .build()?;
///
/// let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, secret)?)
///     .issuer("https://auth.example.com")
///     .audience("api");
/// let token = issuer.access_token("user-1").role("USER").sign()?;
///
/// let claims = verifier.verify::<serde_json::Value>(token.as_str())?;
/// assert_eq!(claims.subject(), Some("user-1"));
/// assert_eq!(claims["role"], "USER");
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    rules: Rules,
    /// Verified tokens, if caching is on.
    cache: Option<TokenCache>,
}

enum Rules {
    /// One set of keys and rules.
    One(Policy),
    /// Several issuers, routed by `iss`.
    ByIssuer(Routes),
}

/// One issuer's keys and rules.
struct Policy {
    keys: KeySource,
    issuers: Vec<String>,
    audiences: Vec<String>,
    required: Vec<String>,
    leeway: i64,
    max_len: usize,
    typ: Option<String>,
    /// The RFC 9068 profile: its claims must have their types.
    rfc9068: bool,
    reject_future_iat: bool,
}

struct Routes {
    policies: Vec<Verifier>,
    by_iss: HashMap<String, usize>,
    max_len: usize,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cache = self.inner.cache.as_ref().map(TokenCache::size);
        match &self.inner.rules {
            Rules::One(policy) => f
                .debug_struct("Verifier")
                .field("keys", &policy.keys)
                .field("issuers", &policy.issuers)
                .field("audiences", &policy.audiences)
                .field("required", &policy.required)
                .field("leeway", &policy.leeway)
                .field("max_len", &policy.max_len)
                .field("typ", &policy.typ)
                .field("rfc9068", &policy.rfc9068)
                .field("reject_future_iat", &policy.reject_future_iat)
                .field("cache", &cache)
                .finish(),
            Rules::ByIssuer(routes) => f
                .debug_struct("Verifier")
                .field("by_issuer", &routes.policies)
                .field("cache", &cache)
                .finish(),
        }
    }
}

/// A verification that must wait for remote keys: a token named an unknown
/// `kid`, so the key set is refreshed (bounded, shared) and the token is
/// verified once more.
pub(crate) type Pending<C> = Pin<Box<dyn Future<Output = Result<Claims<C>, AuthError>> + Send>>;

/// The outcome of [`Verifier::start`].
pub(crate) enum Verification<C> {
    /// Decided without waiting: the common case.
    Done(Result<Claims<C>, AuthError>),
    /// Waiting for a key refresh.
    Pending(Pending<C>),
}

/// Builds a [`Verifier`]. Mistakes surface from [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifierBuilder {
    keys: Vec<VerificationKey>,
    #[cfg(feature = "jwks")]
    remote: Option<crate::keys::RemoteJwks>,
    #[cfg(feature = "key-ring")]
    ring: Option<crate::keys::ring::KeyRing>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    required: Vec<String>,
    leeway: Duration,
    max_len: usize,
    typ: Option<String>,
    rfc9068: bool,
    cache: Option<CacheSize>,
    reject_future_iat: bool,
}

impl Verifier {
    /// A builder with the secure defaults: `exp` required, 30 s leeway, a
    /// token issued in the future (`iat`) refused, 8 KiB maximum token
    /// length, and no keys yet.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder {
            keys: Vec::new(),
            #[cfg(feature = "jwks")]
            remote: None,
            #[cfg(feature = "key-ring")]
            ring: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            required: vec!["exp".to_owned()],
            leeway: DEFAULT_LEEWAY,
            max_len: DEFAULT_MAX_TOKEN_LEN,
            typ: None,
            rfc9068: false,
            cache: Some(CacheSize {
                max_entries: DEFAULT_CACHE_ENTRIES,
                max_memory: DEFAULT_CACHE_MEMORY,
            }),
            reject_future_iat: true,
        }
    }

    /// A verifier for several issuers, each a verifier of its own with its
    /// own keys (static, a JWK Set URL or discovery), audiences, algorithms
    /// and profile.
    ///
    /// A token is routed by its `iss`, read from the unverified payload only
    /// to choose the issuer, then verified strictly by that issuer's verifier
    /// alone: issuer B's claims signed with issuer A's key are refused. A
    /// token whose `iss` names no configured issuer is refused (401
    /// `invalid_token`) without any key lookup or fetch.
    ///
    /// Each verifier must name its issuers ([`VerifierBuilder::issuer`], or
    /// the issuer found by discovery); an issuer named twice is an error.
    ///
    /// ```
    /// use tower_jwt_auth::{VerificationKey, Verifier};
    ///
    /// let tenant_a = Verifier::builder()
    ///     .key(VerificationKey::hmac(b"tenant A's secret, thirty-two bytes")?)
    ///     .issuer("https://a.example.com")
    ///     .audience("api")
    ///     .build()?;
    /// let tenant_b = Verifier::builder()
    ///     .key(VerificationKey::hmac(b"tenant B's secret, thirty-two bytes")?)
    ///     .issuer("https://b.example.com")
    ///     .audience("api")
    ///     .build()?;
    /// let verifier = Verifier::by_issuer([tenant_a, tenant_b])?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn by_issuer(verifiers: impl IntoIterator<Item = Verifier>) -> Result<Self, ConfigError> {
        let mut policies = Vec::new();
        let mut caches = Vec::new();
        for verifier in verifiers {
            caches.extend(verifier.inner.cache.as_ref().map(TokenCache::size));
            match &verifier.inner.rules {
                Rules::One(_) => policies.push(verifier),
                Rules::ByIssuer(routes) => policies.extend(routes.policies.iter().cloned()),
            }
        }
        if policies.is_empty() {
            return Err(ConfigError::new("a verifier needs at least one issuer"));
        }
        let mut by_iss = HashMap::new();
        for (index, verifier) in policies.iter().enumerate() {
            let policy = verifier.policy();
            if policy.issuers.is_empty() {
                return Err(ConfigError::new(
                    "each verifier of a several-issuer verifier must name its issuer",
                ));
            }
            for iss in &policy.issuers {
                if by_iss.insert(iss.clone(), index).is_some() {
                    return Err(ConfigError::new(format!(
                        "the issuer {iss:?} is configured twice"
                    )));
                }
            }
        }
        let max_len = policies
            .iter()
            .map(|v| v.policy().max_len)
            .max()
            .unwrap_or(DEFAULT_MAX_TOKEN_LEN);
        // One cache in front of the routing, as large as the parts' together.
        let cache = (!caches.is_empty()).then(|| {
            TokenCache::new(CacheSize {
                max_entries: caches.iter().map(|c| c.max_entries).sum(),
                max_memory: caches.iter().map(|c| c.max_memory).sum(),
            })
        });
        Ok(Self {
            inner: Arc::new(Inner {
                rules: Rules::ByIssuer(Routes {
                    policies,
                    by_iss,
                    max_len,
                }),
                cache,
            }),
        })
    }

    /// One issuer by OpenID Connect discovery, in one call: the provider's
    /// `{issuer}/.well-known/openid-configuration` names its JWK Set, the
    /// discovered issuer must be `issuer` exactly, tokens must carry it as
    /// `iss` and name `audience` in `aud` (feature `jwks`).
    ///
    /// Fails when the provider cannot be reached; see
    /// [`RemoteJwksBuilder::lazy`](crate::keys::RemoteJwksBuilder::lazy) to
    /// start without it. For more settings, build the
    /// [`RemoteJwks`](crate::keys::RemoteJwks) and use [`VerifierBuilder::jwks`].
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tower_jwt_auth::ConfigError> {
    /// let verifier =
    ///     tower_jwt_auth::Verifier::discover("https://idp.example.com/realms/main", "my-api").await?;
    /// # let _ = verifier;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "jwks")]
    pub async fn discover(
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let remote = crate::keys::RemoteJwks::discover(issuer).build().await?;
        Self::builder().jwks(remote).audience(audience).build()
    }

    fn policy(&self) -> &Policy {
        match &self.inner.rules {
            Rules::One(policy) => policy,
            Rules::ByIssuer(_) => unreachable!("routes hold single-issuer verifiers only"),
        }
    }

    /// The policy at `index`: the only one, or that route's.
    fn policy_at(&self, index: usize) -> Option<&Policy> {
        match &self.inner.rules {
            Rules::One(policy) => (index == 0).then_some(policy),
            Rules::ByIssuer(routes) => routes.policies.get(index).map(Verifier::policy),
        }
    }

    /// The maximum token length this verifier accepts.
    pub fn max_token_len(&self) -> usize {
        match &self.inner.rules {
            Rules::One(policy) => policy.max_len,
            Rules::ByIssuer(routes) => routes.max_len,
        }
    }

    /// Whether every key source has keys to verify with: always true for
    /// static keys; for a lazily started `keys::RemoteJwks`, true once its first fetch
    /// succeeded and while its keys are not older than its maximum age.
    /// Meant for readiness probes.
    pub fn is_ready(&self) -> bool {
        match &self.inner.rules {
            Rules::One(policy) => policy.keys.is_ready(),
            Rules::ByIssuer(routes) => routes.policies.iter().all(Verifier::is_ready),
        }
    }

    /// The number of verified tokens in the cache (0 without one).
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, TokenCache::len)
    }

    /// The estimated memory of the verified-token cache in bytes, as it
    /// counts against [`VerifierBuilder::cache_memory`] (0 without a cache).
    pub fn cache_memory(&self) -> u64 {
        self.inner.cache.as_ref().map_or(0, TokenCache::weight)
    }

    /// Verifies `token` and decodes its claims into `C`, with the keys at
    /// hand: it never waits. A token whose `kid` is unknown fails with
    /// [`AuthErrorKind::UnknownKey`]; [`verify_async`](Self::verify_async)
    /// (and [`JwtAuthLayer`](crate::JwtAuthLayer)) refresh remote keys first.
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<Claims<C>, AuthError> {
        self.verify_as(token, None, None)
    }

    /// Verifies `token` as a token of `issuer` only: with that issuer's keys
    /// and rules, and its `iss` must be `issuer`. For tenants chosen by the
    /// request (host, path) rather than by the token; see
    /// [`JwtAuthLayerBuilder::issuer_resolver`](crate::JwtAuthLayerBuilder::issuer_resolver).
    /// An issuer this verifier does not know is refused (401 `invalid_token`).
    pub fn verify_for_issuer<C: DeserializeOwned>(
        &self,
        issuer: &str,
        token: &str,
    ) -> Result<Claims<C>, AuthError> {
        self.verify_as(token, Some(issuer), None)
    }

    /// Verifies `token`, from the cache when it holds it. With `share`, the
    /// decoded claims are cached too and cloned on a hit; without, a hit
    /// decodes them from the cached payload.
    fn verify_as<C: DeserializeOwned>(
        &self,
        token: &str,
        issuer: Option<&str>,
        share: Option<Share<C>>,
    ) -> Result<Claims<C>, AuthError> {
        let Some(cache) = &self.inner.cache else {
            let verified = self.verify_payload::<C>(token, issuer)?;
            return Ok(Claims::new(verified.custom, verified.payload));
        };
        if let Some(entry) = self.cached(cache, token, issuer) {
            let custom = match (&share, &entry.custom) {
                (Some(share), Some(custom)) => (share.get)(&**custom),
                _ => None,
            };
            let custom = match custom {
                Some(custom) => custom,
                None => decode_claims(entry.payload.json())?,
            };
            return Ok(Claims::new(custom, entry.payload.clone()));
        }
        // A payload that does not fit `C` is refused, and not cached.
        let mut verified = self.verify_payload::<C>(token, issuer)?;
        verified.payload = verified.payload.shared();
        let mut entry = Entry::new(
            verified.policy,
            verified.generation,
            verified.exp,
            verified.nbf,
            verified.payload.clone(),
        );
        if let Some(share) = &share {
            entry = entry.with_custom(
                (share.put)(&verified.custom),
                // The claims' own size, and their heap data, estimated
                // by the payload they came from.
                std::mem::size_of::<C>() + 2 * verified.payload.json().len(),
            );
        }
        cache.insert(issuer, token, entry);
        Ok(Claims::new(verified.custom, verified.payload))
    }

    /// The cached entry of `token`, if it may still serve: within its time
    /// bounds, verified by keys of the generation now in use. An entry
    /// that may not is removed, and the token verified afresh.
    fn cached(&self, cache: &TokenCache, token: &str, issuer: Option<&str>) -> Option<Arc<Entry>> {
        let entry = cache.get(issuer, token)?;
        let live = self.policy_at(entry.policy).is_some_and(|policy| {
            entry.is_live(now(), policy.leeway)
                && policy.keys.generation().ok() == Some(entry.generation)
        });
        if live {
            Some(entry)
        } else {
            cache.remove(issuer, token);
            None
        }
    }

    /// Verifies `token` like [`verify`](Self::verify), but when a token names
    /// a `kid` that remote keys do not have, refreshes them (shared with
    /// concurrent requests, at most once per cooldown, and bounded in time)
    /// and verifies once more: what the layer does on every request.
    pub async fn verify_async<C>(&self, token: &str) -> Result<Claims<C>, AuthError>
    where
        C: DeserializeOwned + Send + 'static,
    {
        match self.start_with(token, None, None) {
            Verification::Done(result) => result,
            Verification::Pending(pending) => pending.await,
        }
    }

    /// Verifies at once, or returns the one asynchronous step: a key refresh
    /// for an unknown `kid`, then a second verification. `issuer`, when
    /// given, replaces routing by the token's `iss`. The decoded claims are
    /// cached with the token (when caching is on), and cloned on a hit.
    pub(crate) fn start<C>(&self, token: &str, issuer: Option<&str>) -> Verification<C>
    where
        C: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.start_with(token, issuer, Some(Share::of()))
    }

    /// [`start`](Self::start) in two steps, for the layer's common case:
    /// the verification with the keys at hand, the claims handed over as
    /// they are; then, for a token that failed, [`after`](Self::after).
    pub(crate) fn verify_now<C>(
        &self,
        token: &str,
        issuer: Option<&str>,
    ) -> Result<Claims<C>, AuthError>
    where
        C: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.verify_as(token, issuer, Some(Share::of()))
    }

    /// What follows a failed [`verify_now`](Self::verify_now): for an
    /// unknown `kid`, a refresh of the remote keys and a second
    /// verification; for anything else, the error.
    pub(crate) fn after<C>(
        &self,
        error: AuthError,
        token: &str,
        issuer: Option<&str>,
    ) -> Verification<C>
    where
        C: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.after_with(error, token, issuer, Some(Share::of()))
    }

    fn start_with<C>(
        &self,
        token: &str,
        issuer: Option<&str>,
        share: Option<Share<C>>,
    ) -> Verification<C>
    where
        C: DeserializeOwned + Send + 'static,
    {
        match self.verify_as::<C>(token, issuer, share) {
            Ok(claims) => Verification::Done(Ok(claims)),
            Err(error) => self.after_with(error, token, issuer, share),
        }
    }

    fn after_with<C>(
        &self,
        error: AuthError,
        token: &str,
        issuer: Option<&str>,
        share: Option<Share<C>>,
    ) -> Verification<C>
    where
        C: DeserializeOwned + Send + 'static,
    {
        if error.kind() == AuthErrorKind::UnknownKey
            && let Some(refresh) = self
                .route(token, issuer)
                .ok()
                .and_then(|p| p.keys.refresh_for_unknown_kid())
        {
            let verifier = self.clone();
            let token = token.to_owned();
            let issuer = issuer.map(str::to_owned);
            return Verification::Pending(Box::pin(async move {
                refresh.await;
                verifier.verify_as::<C>(&token, issuer.as_deref(), share)
            }));
        }
        Verification::Done(Err(error))
    }

    /// The policy that verifies `token`: the one `issuer` names, or else the
    /// only one, or the one the token's `iss` names.
    fn route(&self, token: &str, issuer: Option<&str>) -> Result<&Policy, AuthError> {
        match (&self.inner.rules, issuer) {
            (Rules::One(policy), None) => Ok(policy),
            (Rules::One(policy), Some(iss)) => {
                if policy.issuers.is_empty() || policy.issuers.iter().any(|i| i == iss) {
                    Ok(policy)
                } else {
                    Err(AuthError::new(AuthErrorKind::InvalidIssuer))
                }
            }
            (Rules::ByIssuer(routes), Some(iss)) => routes.policy_for(Some(iss)).map(|(_, p)| p),
            (Rules::ByIssuer(routes), None) => {
                let (_, payload_b64, _) = split(token, routes.max_len)?;
                let json = decode_part(payload_b64)?;
                let mut sink = ClaimsSink::default();
                scan_payload(&json, &mut sink, &mut Names::default())?;
                routes.policy_for(sink.iss.as_deref()).map(|(_, p)| p)
            }
        }
    }

    /// Verifies `token` in full and decodes its claims; `issuer`, when
    /// given, chooses the policy and must be the token's `iss`.
    fn verify_payload<C: DeserializeOwned>(
        &self,
        token: &str,
        issuer: Option<&str>,
    ) -> Result<Verified<C>, AuthError> {
        match (&self.inner.rules, issuer) {
            (Rules::One(policy), None) => policy.verify(token, None),
            (Rules::ByIssuer(routes), None) => routes.verify(token),
            (Rules::One(_), Some(iss)) => self.route(token, issuer)?.verify(token, Some(iss)),
            (Rules::ByIssuer(routes), Some(iss)) => {
                let (index, policy) = routes.policy_for(Some(iss))?;
                let mut verified = policy.verify(token, Some(iss))?;
                verified.policy = index;
                Ok(verified)
            }
        }
    }
}

/// How the layer's claims type is kept in the cache and cloned out of it,
/// as plain functions so that the generic paths need no `Clone` bound.
struct Share<C> {
    get: fn(&(dyn Any + Send + Sync)) -> Option<C>,
    put: fn(&C) -> Box<dyn Any + Send + Sync>,
}

impl<C> Clone for Share<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Share<C> {}

impl<C: Clone + Send + Sync + 'static> Share<C> {
    fn of() -> Self {
        Self {
            get: |any| any.downcast_ref::<C>().cloned(),
            put: |custom| Box::new(custom.clone()),
        }
    }
}

/// What a verification keeps of the registered claims it read.
struct Read<'de> {
    exp: Option<i64>,
    nbf: Option<i64>,
    jkt: Option<Cow<'de, str>>,
    /// Where the string claims lie in the payload.
    spans: Spans,
}

impl<'de> Read<'de> {
    /// What `sink` read from `json` (taken from it, not moved with it).
    fn new(json: &[u8], sink: &mut ClaimsSink<'de>) -> Self {
        Self {
            spans: sink.spans(json),
            exp: sink.exp,
            nbf: sink.nbf,
            jkt: sink.jkt.take(),
        }
    }
}

/// A token verified by one policy, its claims decoded.
struct Verified<C> {
    custom: C,
    payload: VerifiedPayload,
    exp: Option<i64>,
    nbf: Option<i64>,
    /// The policy that verified it (0 for a single issuer).
    policy: usize,
    /// The generation of the keys that verified it.
    generation: u64,
}

impl Routes {
    fn policy_for(&self, iss: Option<&str>) -> Result<(usize, &Policy), AuthError> {
        iss.and_then(|iss| self.by_iss.get(iss))
            .map(|&index| (index, self.policies[index].policy()))
            .ok_or_else(|| AuthError::new(AuthErrorKind::InvalidIssuer))
    }

    /// Decodes and scans the payload: `iss` chooses the policy, which
    /// verifies the signature and then validates the scanned claims; the
    /// claims type is decoded last.
    fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<Verified<C>, AuthError> {
        let (header_b64, payload_b64, signature) = split(token, self.max_len)?;
        let mut stack = [0u8; PAYLOAD_BUFFER];
        let mut heap = Vec::new();
        let json = decode_into(payload_b64, &mut stack, &mut heap)?;
        let mut sink = ClaimsSink::default();
        let mut names = Names::default();
        let scanned = scan_payload(json, &mut sink, &mut names);
        // The payload's own errors only count once the signature holds;
        // without an issuer to route to, there is nothing to verify with.
        let iss = scanned.as_ref().ok().and(sink.iss.as_deref());
        let (index, policy) = self.policy_for(iss)?;
        if token.len() > policy.max_len {
            return Err(AuthError::new(AuthErrorKind::TokenTooLong));
        }
        let generation =
            policy.verify_header_and_signature(header_b64, payload_b64, signature, token)?;
        scanned?;
        policy.validate(|name| names.contains(name), &sink)?;
        let custom = decode_claims(json)?;
        Ok(Verified {
            custom,
            payload: VerifiedPayload::new(json, sink.jkt.as_deref(), sink.spans(json)),
            exp: sink.exp,
            nbf: sink.nbf,
            policy: index,
            generation,
        })
    }
}

impl Policy {
    /// Verifies `token` with these keys and rules and decodes its claims;
    /// with `issuer`, its `iss` must be that issuer.
    fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        issuer: Option<&str>,
    ) -> Result<Verified<C>, AuthError> {
        let (header_b64, payload_b64, signature) = split(token, self.max_len)?;
        let generation =
            self.verify_header_and_signature(header_b64, payload_b64, signature, token)?;
        let json = decode_shared(payload_b64)?;
        let (custom, read) = self.read_payload::<C>(&json, issuer)?;
        let (exp, nbf, spans) = (read.exp, read.nbf, read.spans);
        let jkt = read.jkt.as_deref().map(Arc::from);
        Ok(Verified {
            custom,
            payload: VerifiedPayload::from_parts(json, jkt, spans),
            exp,
            nbf,
            policy: 0,
            generation,
        })
    }

    /// Reads a verified payload: quickly when it has the usual shape (see
    /// [`quick`]), in one pass when it is valid (the claims type decoded in
    /// the same walk, see [`decode_once`]); otherwise the scan and the
    /// decode one after the other, which name what is wrong: a duplicate
    /// name or malformed JSON first, then the registered claims, then the
    /// claims type.
    fn read_payload<'de, C: DeserializeOwned>(
        &self,
        json: &'de [u8],
        issuer: Option<&str>,
    ) -> Result<(C, Read<'de>), AuthError> {
        if !is_object(json) {
            return Err(AuthError::new(AuthErrorKind::Malformed));
        }
        let mut sink = ClaimsSink::default();
        // The common shape: the registered claims picked out of the text,
        // and the claims type decoded by serde_json alone, which checks
        // that the text is JSON (see `quick`).
        if let Ok(text) = std::str::from_utf8(json)
            && let mut seen = quick::Seen::new(text)
            && quick::read(&mut sink, &mut seen).is_some()
            && let Ok(custom) = serde_json::from_str::<C>(text)
        {
            self.check(|name| seen.contains(name), &sink, issuer)?;
            return Ok((custom, Read::new(json, &mut sink)));
        }
        self.read_payload_strictly(json, issuer)
    }

    /// [`read_payload`](Self::read_payload) for a payload the quick read
    /// did not take: out of line, so that the common path does not set up
    /// the strict readers' state.
    #[cold]
    #[inline(never)]
    fn read_payload_strictly<'de, C: DeserializeOwned>(
        &self,
        json: &'de [u8],
        issuer: Option<&str>,
    ) -> Result<(C, Read<'de>), AuthError> {
        let mut sink = ClaimsSink::default();
        let mut names = Names::default();
        if let Some(custom) = decode_once::<C>(json, &mut sink, &mut names, &self.required) {
            self.check(|name| names.contains(name), &sink, issuer)?;
            return Ok((custom, Read::new(json, &mut sink)));
        }
        let mut sink = ClaimsSink::default();
        let mut names = Names::default();
        scan_payload(json, &mut sink, &mut names)?;
        self.check(|name| names.contains(name), &sink, issuer)?;
        Ok((decode_claims(json)?, Read::new(json, &mut sink)))
    }

    /// The registered claims' checks, and the issuer chosen by the caller.
    fn check(
        &self,
        names: impl Fn(&str) -> bool,
        sink: &ClaimsSink<'_>,
        issuer: Option<&str>,
    ) -> Result<(), AuthError> {
        self.validate(names, sink)?;
        match issuer {
            Some(iss) if sink.iss.as_deref() != Some(iss) => {
                Err(AuthError::new(AuthErrorKind::InvalidIssuer))
            }
            _ => Ok(()),
        }
    }

    /// Checks the header and the signature; returns the generation of the
    /// keys that verified it.
    fn verify_header_and_signature(
        &self,
        header_b64: &str,
        payload_b64: &str,
        signature: &str,
        token: &str,
    ) -> Result<u64, AuthError> {
        let message = &token[..header_b64.len() + 1 + payload_b64.len()];
        LAST_HEADER.with_borrow_mut(|header| {
            header.read(header_b64)?;
            if header.crit {
                return Err(AuthError::new(AuthErrorKind::UnsupportedCritical));
            }
            if let Some(expected) = &self.typ {
                let ok = header
                    .typ
                    .as_deref()
                    .is_some_and(|typ| typ_matches(typ, expected));
                if !ok {
                    return Err(AuthError::new(AuthErrorKind::InvalidType));
                }
            }
            let alg: Algorithm = header
                .alg
                .parse()
                .map_err(|_| AuthError::new(AuthErrorKind::UnsupportedAlgorithm))?;
            self.keys
                .verify(header.kid.as_deref(), alg, message, signature)
        })
    }

    /// The registered claims' checks; `names` says whether a member name
    /// is in the payload.
    fn validate(
        &self,
        names: impl Fn(&str) -> bool,
        sink: &ClaimsSink<'_>,
    ) -> Result<(), AuthError> {
        // A claim whose value is `null` is as good as absent.
        for name in &self.required {
            if !names(name) || sink.nulls.iter().any(|n| n == name) {
                return Err(AuthError::new(AuthErrorKind::MissingClaim));
            }
        }
        if self.rfc9068
            && let Some(claim) = sink.mistyped
        {
            return Err(AuthError::new(AuthErrorKind::InvalidClaims)
                .naming_claim("invalid claim", Some(claim)));
        }
        let now = now();
        if let Some(exp) = sink.exp
            && now >= exp.saturating_add(self.leeway)
        {
            return Err(AuthError::new(AuthErrorKind::Expired));
        }
        if let Some(nbf) = sink.nbf
            && now.saturating_add(self.leeway) < nbf
        {
            return Err(AuthError::new(AuthErrorKind::NotYetValid));
        }
        // A token issued in the future is not valid yet either: the issuer's
        // clock (or the token) is wrong. The same kind as `nbf`, so clients
        // and logs treat both alike.
        if self.reject_future_iat
            && let Some(iat) = sink.iat
            && now.saturating_add(self.leeway) < iat
        {
            return Err(AuthError::new(AuthErrorKind::NotYetValid));
        }
        if !self.issuers.is_empty() {
            let ok = sink
                .iss
                .as_deref()
                .is_some_and(|iss| self.issuers.iter().any(|i| i == iss));
            if !ok {
                return Err(AuthError::new(AuthErrorKind::InvalidIssuer));
            }
        }
        // RFC 7519 section 4.1.3: a token that names audiences must name us.
        match (&sink.aud, self.audiences.is_empty()) {
            (None, true) => {}
            (Some(_), true) | (None, false) => {
                return Err(AuthError::new(AuthErrorKind::InvalidAudience));
            }
            (Some(aud), false) => {
                let ours = aud
                    .any(|a| self.audiences.iter().any(|b| b == a))
                    .map_err(|e| {
                        AuthError::new(AuthErrorKind::InvalidClaims).with_source(JsonError::from(e))
                    })?;
                if !ours {
                    return Err(AuthError::new(AuthErrorKind::InvalidAudience));
                }
            }
        }
        Ok(())
    }
}

thread_local! {
    /// The header this thread read last. Tokens of one issuer share their
    /// header (`alg`, `kid`, `typ`), so a header equal to the last one, byte
    /// for byte, is not decoded and parsed again: what parsing it gives
    /// depends on those bytes alone. Only a header that parsed is kept.
    static LAST_HEADER: RefCell<HeaderMemo> = const { RefCell::new(HeaderMemo::new()) };
}

/// A parsed header, and the base64url it came from; its strings keep their
/// capacity from one header to the next, so a thread allocates for headers
/// only until it has seen its longest.
struct HeaderMemo {
    /// The encoded header ("" until one parsed).
    b64: String,
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: bool,
    /// The capacity `kid` and `typ` keep while they are `None`.
    spare: [String; 2],
}

impl HeaderMemo {
    const fn new() -> Self {
        Self {
            b64: String::new(),
            alg: String::new(),
            kid: None,
            typ: None,
            crit: false,
            spare: [String::new(), String::new()],
        }
    }

    /// Makes this the header `b64` encodes, parsing it unless it is the
    /// last one.
    fn read(&mut self, b64: &str) -> Result<(), AuthError> {
        if self.b64 == b64 && !b64.is_empty() {
            return Ok(());
        }
        self.b64.clear();
        // A header is small: decoded on the stack when it fits.
        let mut stack = [0u8; 512];
        let mut heap = Vec::new();
        let json = decode_into(b64, &mut stack, &mut heap)?;
        let header = parse_header(json)?;
        fn keep(slot: &mut Option<String>, spare: &mut String, value: Option<&str>) {
            let mut string = slot.take().unwrap_or_else(|| std::mem::take(spare));
            string.clear();
            match value {
                Some(value) => {
                    string.push_str(value);
                    *slot = Some(string);
                }
                None => *spare = string,
            }
        }
        let [kid_spare, typ_spare] = &mut self.spare;
        keep(&mut self.kid, kid_spare, header.kid.as_deref());
        keep(&mut self.typ, typ_spare, header.typ.as_deref());
        self.alg.clear();
        self.alg.push_str(header.alg.as_deref().unwrap_or_default());
        self.crit = header.crit;
        self.b64.push_str(b64);
        Ok(())
    }
}

/// The three parts of a compact JWS, after the length check.
fn split(token: &str, max_len: usize) -> Result<(&str, &str, &str), AuthError> {
    if token.len() > max_len {
        return Err(AuthError::new(AuthErrorKind::TokenTooLong));
    }
    // Two dots, and no third: found with SIMD, as a token is long.
    let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
    match (dots.next(), dots.next(), dots.next()) {
        (Some(first), Some(second), None) => Ok((
            &token[..first],
            &token[first + 1..second],
            &token[second + 1..],
        )),
        _ => Err(AuthError::new(AuthErrorKind::Malformed)),
    }
}

fn malformed(e: base64::DecodeSliceError) -> AuthError {
    AuthError::new(AuthErrorKind::Malformed).with_source(e)
}

fn decode_part(part: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| AuthError::new(AuthErrorKind::Malformed).with_source(e))
}

/// The payloads a verifier for several issuers decodes on the stack to
/// route them: most tokens' (a heap buffer for the others, up to the
/// maximum token length).
const PAYLOAD_BUFFER: usize = 1024;

/// Decodes a verified payload straight into the shared buffer that keeps
/// it: one allocation, no copy.
fn decode_shared(part: &str) -> Result<Arc<[u8]>, AuthError> {
    // Unpadded base64url: three bytes per four characters.
    let len = part.len() / 4 * 3 + (part.len() % 4).saturating_sub(1);
    let mut json: Arc<[u8]> = std::iter::repeat_n(0, len).collect();
    let buffer = Arc::get_mut(&mut json).expect("a new Arc is not shared");
    let written = URL_SAFE_NO_PAD
        .decode_slice(part, buffer)
        .map_err(malformed)?;
    Ok(if written == len {
        json
    } else {
        Arc::from(&json[..written])
    })
}

/// Decodes a part into `stack` when it fits, into `heap` otherwise.
fn decode_into<'b, const N: usize>(
    part: &str,
    stack: &'b mut [u8; N],
    heap: &'b mut Vec<u8>,
) -> Result<&'b [u8], AuthError> {
    if base64::decoded_len_estimate(part.len()) <= N {
        let len = URL_SAFE_NO_PAD
            .decode_slice(part, stack)
            .map_err(malformed)?;
        Ok(&stack[..len])
    } else {
        *heap = decode_part(part)?;
        Ok(heap)
    }
}

/// Whether `json` starts (after white space) an object.
fn is_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Scans a payload: it must be a JSON object without duplicate names.
fn scan_payload<'de>(
    json: &'de [u8],
    sink: &mut ClaimsSink<'de>,
    names: &mut Names<'de>,
) -> Result<(), AuthError> {
    // A payload that is not a JSON object is malformed, not invalid claims.
    if !is_object(json) {
        return Err(AuthError::new(AuthErrorKind::Malformed));
    }
    scan_object(json, sink, names).map_err(|e| e.into_auth_error(AuthErrorKind::InvalidClaims))
}

/// Decodes the application's claims type; a failure names the claim (never
/// its value): `missing claim "role"`, `invalid claim "level"`.
fn decode_claims<C: DeserializeOwned>(json: &[u8]) -> Result<C, AuthError> {
    // The common case without the path tracking; a failure is decoded again
    // to name the claim.
    if let Ok(custom) = serde_json::from_slice(json) {
        return Ok(custom);
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let error = AuthError::new(AuthErrorKind::InvalidClaims);
        let error = match missing_field(&inner).as_deref() {
            Some(field) => {
                let name = if path == "." {
                    field.to_owned()
                } else {
                    format!("{path}.{field}")
                };
                error.naming_claim("missing claim", Some(&name))
            }
            None => error.naming_claim("invalid claim", (path != ".").then_some(path.as_str())),
        };
        error.with_source(JsonError::from(inner))
    })
}

/// The field serde reports missing (`missing field `role``), if that is the
/// error. serde's message for `de::Error::missing_field` is fixed, and the
/// name in it comes from the application's type, not from the token.
fn missing_field(error: &serde_json::Error) -> Option<String> {
    let text = error.to_string();
    let rest = text.strip_prefix("missing field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

impl VerifierBuilder {
    /// Adds a key. Several keys may be configured; a token is matched to one
    /// by its `kid` (exact match), and a token whose `kid` matches no key is
    /// tried against the keys that have no `kid`.
    pub fn key(mut self, key: VerificationKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds several keys, for example those of a [`JwkSet`](crate::JwkSet).
    pub fn keys(mut self, keys: impl IntoIterator<Item = VerificationKey>) -> Self {
        self.keys.extend(keys);
        self
    }

    /// Takes the keys from an identity provider's JWK Set, kept fresh (feature
    /// `jwks`); see [`RemoteJwks`](crate::keys::RemoteJwks). Static keys
    /// cannot be added as well.
    #[cfg(feature = "jwks")]
    pub fn jwks(mut self, remote: crate::keys::RemoteJwks) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Verifies with the keys a [`KeyRing`](crate::keys::ring::KeyRing)
    /// publishes, as they rotate: the issuing service checking its own
    /// tokens (feature `key-ring`). Other services use the ring's JWK Set
    /// through [`jwks`](Self::jwks). Static or remote keys cannot be added
    /// as well.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, Verifier, keys::ring::KeyRing};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let ring = KeyRing::builder(Algorithm::ES256).build().await?;
    /// let verifier = Verifier::builder()
    ///     .key_ring(ring)
    ///     .issuer("https://auth.example.com")
    ///     .build()?;
    /// # let _ = verifier;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "key-ring")]
    pub fn key_ring(mut self, ring: crate::keys::ring::KeyRing) -> Self {
        self.ring = Some(ring);
        self
    }

    /// Accepts tokens whose `iss` is `issuer`. May be called more than once;
    /// once called, `iss` is required.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens whose `aud` names `audience`. May be called more than
    /// once; once called, `aud` is required. Without any audience, a token
    /// that carries `aud` is refused (RFC 7519 section 4.1.3).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The claims every token must carry, replacing the default (`exp`). A
    /// claim whose value is `null` counts as missing.
    ///
    /// Dropping `exp` from the list allows tokens that never expire; think twice.
    pub fn required_claims<I>(mut self, claims: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.required = claims.into_iter().map(Into::into).collect();
        self
    }

    /// The clock skew tolerated for `exp`, `nbf` and `iat` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Whether a token issued in the future, its `iat` later than now plus
    /// the [`leeway`](Self::leeway), is refused as
    /// [`NotYetValid`](AuthErrorKind::NotYetValid) (default: refused). A
    /// token without `iat` is not affected; to require it, add it to the
    /// [`required_claims`](Self::required_claims).
    ///
    /// ```
    /// use tower_jwt_auth::{VerificationKey, Verifier};
    ///
    /// // An issuer whose clock is known to run ahead, by more than the leeway.
    /// let verifier = Verifier::builder()
    ///     .key(VerificationKey::hmac(b"a secret of at least thirty-two bytes!")?)
    ///     .reject_future_iat(false)
    ///     .build()?;
    /// # let _ = verifier;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn reject_future_iat(mut self, reject: bool) -> Self {
        self.reject_future_iat = reject;
        self
    }

    /// The longest token accepted, checked before any decoding (default 8 KiB).
    pub fn max_token_len(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }

    /// Requires the header's `typ` to be `typ` (compared case-insensitively,
    /// with an optional `application/` prefix, per RFC 7515 section 4.1.9).
    pub fn require_type(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// The strict profile of RFC 9068 (JWT access tokens): `typ` must be
    /// `at+jwt`, and `iss`, `exp`, `aud`, `sub`, `client_id`, `iat` and `jti`
    /// are required.
    ///
    /// The profile's claims must have their types (RFC 9068 section 2.2),
    /// or the token is refused as [`InvalidClaims`](AuthErrorKind::InvalidClaims),
    /// the description naming the claim: `client_id`, `scope` (space-delimited,
    /// RFC 8693 section 4.2) and `acr` strings, `auth_time` a NumericDate,
    /// `amr` an array of strings. `iss`, `sub`, `jti` (strings), `aud`, `exp`
    /// and `iat` are type-checked with or without the profile.
    ///
    /// The profile also needs an [`issuer`](Self::issuer) and an
    /// [`audience`](Self::audience) (RFC 9068 section 4): [`build`](Self::build)
    /// fails without them.
    pub fn rfc9068(mut self) -> Self {
        self.rfc9068 = true;
        self.require_type("at+jwt").required_claims([
            "iss",
            "exp",
            "aud",
            "sub",
            "client_id",
            "iat",
            "jti",
        ])
    }

    /// Keeps up to `max_entries` verified tokens (default
    /// [`DEFAULT_CACHE_ENTRIES`]) and accepts each again, until its `exp`,
    /// without checking its signature or decoding its payload again; see
    /// [the README's "Verified-token cache"](crate#verified-token-cache).
    /// On by default.
    ///
    /// ```
    /// use tower_jwt_auth::{VerificationKey, Verifier};
    ///
    /// let verifier = Verifier::builder()
    ///     .key(VerificationKey::hmac(b"a secret of at least thirty-two bytes!")?)
    ///     .cache(50_000)
    ///     .cache_memory(64 * 1024 * 1024)
    ///     .build()?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn cache(mut self, max_entries: usize) -> Self {
        let max_memory = self.cache.map_or(DEFAULT_CACHE_MEMORY, |c| c.max_memory);
        self.cache = Some(CacheSize {
            max_entries,
            max_memory,
        });
        self
    }

    /// The memory bound of the verified-token cache in bytes (default
    /// [`DEFAULT_CACHE_MEMORY`]): each entry counts its token, its payload
    /// and an estimate of its decoded claims, and never less than
    /// `max_memory / max_entries`.
    pub fn cache_memory(mut self, max_memory: usize) -> Self {
        let max_entries = self.cache.map_or(DEFAULT_CACHE_ENTRIES, |c| c.max_entries);
        self.cache = Some(CacheSize {
            max_entries,
            max_memory,
        });
        self
    }

    /// Turns the verified-token cache off: every token is verified in full
    /// on every request.
    pub fn no_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// Checks the configuration and builds the verifier.
    pub fn build(mut self) -> Result<Verifier, ConfigError> {
        crate::keys::install_crypto_provider();
        let keys = match self.ring_keys()?.or(self.remote_keys()?) {
            Some(keys) => keys,
            None if self.keys.is_empty() => {
                return Err(ConfigError::new("a verifier needs at least one key"));
            }
            None => KeySource::Static(KeySet::new(std::mem::take(&mut self.keys))?),
        };
        if self.rfc9068 && (self.issuers.is_empty() || self.audiences.is_empty()) {
            return Err(ConfigError::new(
                "the RFC 9068 profile needs an issuer and an audience to match exactly",
            ));
        }
        if self.max_len == 0 {
            return Err(ConfigError::new(
                "the maximum token length must not be zero",
            ));
        }
        let leeway = i64::try_from(self.leeway.as_secs())
            .map_err(|_| ConfigError::new("the leeway is too large"))?;
        if let Some(size) = self.cache
            && (size.max_entries == 0 || size.max_memory == 0)
        {
            return Err(ConfigError::new(
                "a verified-token cache needs room for at least one entry: \
                 use `no_cache` to turn it off",
            ));
        }
        Ok(Verifier {
            inner: Arc::new(Inner {
                rules: Rules::One(Policy {
                    keys,
                    issuers: self.issuers,
                    audiences: self.audiences,
                    required: self.required,
                    leeway,
                    max_len: self.max_len,
                    typ: self.typ,
                    rfc9068: self.rfc9068,
                    reject_future_iat: self.reject_future_iat,
                }),
                cache: self.cache.map(TokenCache::new),
            }),
        })
    }

    /// The remote key source, bound to an issuer: the configured one, or the
    /// one discovery checked. Remote keys verify only their issuer's tokens.
    #[cfg(feature = "jwks")]
    fn remote_keys(&mut self) -> Result<Option<KeySource>, ConfigError> {
        let Some(remote) = self.remote.take() else {
            return Ok(None);
        };
        if !self.keys.is_empty() {
            return Err(ConfigError::new(
                "a verifier takes either static keys or a remote JWK Set, not both",
            ));
        }
        if let Some(issuer) = remote.issuer()
            && self.issuers.iter().any(|configured| configured != issuer)
        {
            return Err(ConfigError::new(format!(
                "the remote keys belong to the issuer {issuer:?}: they cannot verify \
                 tokens of another issuer"
            )));
        }
        if self.issuers.is_empty() {
            let Some(issuer) = remote.issuer() else {
                return Err(ConfigError::new(
                    "remote keys need the issuer whose tokens they verify: \
                     configure `issuer`, or find the keys by discovery",
                ));
            };
            self.issuers.push(issuer.to_owned());
        }
        Ok(Some(KeySource::Remote(remote)))
    }

    #[cfg(not(feature = "jwks"))]
    fn remote_keys(&mut self) -> Result<Option<KeySource>, ConfigError> {
        Ok(None)
    }

    /// The key ring's published keys, alone.
    #[cfg(feature = "key-ring")]
    fn ring_keys(&mut self) -> Result<Option<KeySource>, ConfigError> {
        let Some(ring) = self.ring.take() else {
            return Ok(None);
        };
        #[cfg(feature = "jwks")]
        let remote = self.remote.is_some();
        #[cfg(not(feature = "jwks"))]
        let remote = false;
        if !self.keys.is_empty() || remote {
            return Err(ConfigError::new(
                "a verifier takes keys from one source: a key ring, static keys or a \
                 remote JWK Set",
            ));
        }
        Ok(Some(KeySource::Ring(ring)))
    }

    #[cfg(not(feature = "key-ring"))]
    fn ring_keys(&mut self) -> Result<Option<KeySource>, ConfigError> {
        Ok(None)
    }
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 7515 section 4.1.9: media types compare case-insensitively, and the
/// `application/` prefix may be left out. No allocation: this runs per request.
fn typ_matches(typ: &str, expected: &str) -> bool {
    fn bare(s: &str) -> &str {
        const PREFIX: &str = "application/";
        match s.get(..PREFIX.len()) {
            Some(head) if head.eq_ignore_ascii_case(PREFIX) => &s[PREFIX.len()..],
            _ => s,
        }
    }
    bare(typ).eq_ignore_ascii_case(bare(expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::{RegisteredClaims, StrClaim};

    fn key() -> VerificationKey {
        VerificationKey::hmac([7u8; 32]).unwrap()
    }

    #[test]
    fn rfc9068_needs_an_issuer_and_an_audience() {
        assert!(Verifier::builder().key(key()).rfc9068().build().is_err());
        assert!(
            Verifier::builder()
                .key(key())
                .issuer("i")
                .rfc9068()
                .build()
                .is_err()
        );
        assert!(
            Verifier::builder()
                .key(key())
                .issuer("i")
                .audience("a")
                .rfc9068()
                .build()
                .is_ok()
        );
    }

    #[test]
    fn payloads_decode_into_their_exact_buffer() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let decoded = decode_shared(&URL_SAFE_NO_PAD.encode(&bytes)).unwrap();
            assert_eq!(&decoded[..], &bytes[..]);
        }
        for bad in ["a", "ab=c", "a.bc", "abcde"] {
            let error = decode_shared(bad).unwrap_err();
            assert_eq!(error.kind(), AuthErrorKind::Malformed, "{bad}");
        }
    }

    #[test]
    fn a_token_splits_at_exactly_two_dots() {
        assert_eq!(split("a.b.c", 10).unwrap(), ("a", "b", "c"));
        assert_eq!(split("..", 10).unwrap(), ("", "", ""));
        assert_eq!(split("a..c", 10).unwrap(), ("a", "", "c"));
        for token in ["", "abc", "a.b", "a.b.c.d", "a.b.c."] {
            let error = split(token, 10).unwrap_err();
            assert_eq!(error.kind(), AuthErrorKind::Malformed, "{token}");
        }
        let error = split("a.b.c", 4).unwrap_err();
        assert_eq!(error.kind(), AuthErrorKind::TokenTooLong);
    }

    #[test]
    fn json_errors_never_quote_claim_values() {
        let verifier = Verifier::builder().key(key()).build().unwrap();
        let issuer =
            crate::TokenIssuer::new(crate::SigningKey::hmac(Algorithm::HS256, [7u8; 32]).unwrap());
        let token = issuer
            .access_token("u")
            .claim("level", "secret-claim-value")
            .sign()
            .unwrap();
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Numeric {
            level: u32,
        }
        let error = verifier.verify::<Numeric>(token.as_str()).unwrap_err();
        assert_eq!(error.kind(), AuthErrorKind::InvalidClaims);
        let debug = format!("{error:?} {}", std::error::Error::source(&error).unwrap());
        assert!(!debug.contains("secret-claim-value"), "{debug}");
    }

    /// An HS256 token over `payload`, verbatim.
    fn raw_token(payload: &str) -> String {
        use hmac::{Hmac, Mac};
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&[7u8; 32]).unwrap();
        mac.update(input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{input}.{signature}")
    }

    #[test]
    fn located_string_claims_are_the_parsed_ones() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Wide {
            #[serde(default)]
            n: u128,
        }
        let one = Verifier::builder().key(key()).build().unwrap();
        let cached = Verifier::builder().key(key()).cache(16).build().unwrap();
        let routed = Verifier::by_issuer([
            Verifier::builder().key(key()).issuer("i").build().unwrap(),
            Verifier::builder().key(key()).issuer("j").build().unwrap(),
        ])
        .unwrap();
        let payloads = [
            r#"{"iss":"i","exp":4000000000,"sub":"user-1","sid":"s-1","jti":"t"}"#,
            r#" { "sid" : "s\"1" , "sub":"\u00e9","iss":"i","exp":4000000000,"n":1} "#,
            r#"{"iss":"i","exp":4000000000,"sub":"","extra":{"sid":"not this one"}}"#,
            r#"{"iss":"i","exp":4000000000,"jti":"\/t","sid":"s-\u0031"}"#,
            r#"{"iss":"i","exp":4000000000,"sub":"u","sid":"é"}"#,
        ];
        for payload in payloads {
            let token = raw_token(payload);
            let mut all = vec![
                one.verify::<serde_json::Value>(&token).unwrap(),
                cached.verify::<serde_json::Value>(&token).unwrap(),
                cached.verify::<serde_json::Value>(&token).unwrap(),
                routed.verify::<serde_json::Value>(&token).unwrap(),
            ];
            // A claims type the one pass leaves to the two passes of old.
            let wide = one.verify::<Wide>(&token).unwrap();
            let wide = Claims::new(serde_json::Value::Null, wide.payload().clone());
            all.push(wide);
            for claims in &all {
                let registered = serde_json::from_str::<RegisteredClaims>(payload).unwrap();
                assert_eq!(claims.subject(), registered.sub.as_deref(), "{payload}");
                assert_eq!(claims.session_id(), registered.sid.as_deref(), "{payload}");
                assert_eq!(claims.issuer(), registered.iss.as_deref(), "{payload}");
                assert_eq!(claims.token_id(), registered.jti.as_deref(), "{payload}");
                for (claim, value) in [
                    (StrClaim::Sub, &registered.sub),
                    (StrClaim::Sid, &registered.sid),
                ] {
                    let read = claims.payload().string_claim(claim);
                    assert_eq!(read.as_deref(), value.as_deref(), "{payload}");
                }
                assert_eq!(claims.registered(), &registered, "{payload}");
            }
        }
        // Values without escapes, and absent ones, are read where they lie.
        let located = |payload: &str, claim| {
            let claims = one
                .verify::<serde_json::Value>(&raw_token(payload))
                .unwrap();
            claims.payload().is_located(claim)
        };
        for claim in [StrClaim::Iss, StrClaim::Sub, StrClaim::Jti, StrClaim::Sid] {
            assert!(located(payloads[0], claim));
        }
        assert!(!located(payloads[1], StrClaim::Sid));
        assert!(!located(payloads[1], StrClaim::Sub));
        assert!(located(payloads[1], StrClaim::Jti));
        assert!(located(payloads[4], StrClaim::Sid));
        // A `sid` or `sub` that is not a string is refused, whatever the path.
        for payload in [
            r#"{"iss":"i","exp":4000000000,"sid":5}"#,
            r#"{"iss":"i","exp":4000000000,"sid":null}"#,
            r#"{"iss":"i","exp":4000000000,"sub":["u"]}"#,
            r#"{"iss":"i","exp":4000000000,"sid":{"a":"b"}}"#,
        ] {
            let token = raw_token(payload);
            for verifier in [&one, &cached] {
                let error = verifier.verify::<serde_json::Value>(&token).unwrap_err();
                assert_eq!(error.kind(), AuthErrorKind::InvalidClaims, "{payload}");
            }
            // Several issuers: a payload that cannot be read has no issuer to
            // route to.
            let error = routed.verify::<serde_json::Value>(&token).unwrap_err();
            assert_eq!(error.kind(), AuthErrorKind::InvalidIssuer, "{payload}");
        }
    }
}
