//! [`Dpop`]: the rules for DPoP proofs, and how they plug into the layer.

use std::{fmt, sync::Arc, time::Duration};

use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};

use super::{
    nonce::Nonces,
    proof::{self, Expected, Rules, invalid},
    replay::{MemoryReplayCache, ReplayCache},
    url::{ExternalUrl, normalize},
};
use crate::{
    auth::{Presentation, ProofCheck, Proven},
    error::{AuthError, AuthErrorKind, ConfigError},
    extract::RequestHead,
    keys::{Algorithm, KeyType},
    verifier::now,
};

/// The default [`DpopBuilder::proof_lifetime`]: 60 seconds.
pub const DEFAULT_PROOF_LIFETIME: Duration = Duration::from_secs(60);
/// The default [`DpopBuilder::leeway`]: 5 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// The default lifetime of a server nonce ([`DpopBuilder::nonces`]): 5 minutes.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// The algorithms accepted unless [`DpopBuilder::algorithms`] says otherwise.
const DEFAULT_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::RS256,
];

/// The rules for DPoP proofs (RFC 9449); see the [module docs](crate::dpop).
///
/// Cheap to clone. Give it to [`JwtAuthLayer`](crate::JwtAuthLayer) with
/// [`or_bearer`](Self::or_bearer) or [`only`](Self::only); check the proofs
/// of a token endpoint with [`check_token_request`](Self::check_token_request).
#[derive(Clone)]
pub struct Dpop {
    inner: Arc<Inner>,
}

struct Inner {
    algorithms: Vec<Algorithm>,
    algs: String,
    url: ExternalUrl,
    max_age: i64,
    leeway: i64,
    replay: Arc<dyn ReplayCache>,
    nonces: Option<Nonces>,
}

impl fmt::Debug for Dpop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("Dpop")
            .field("algorithms", &inner.algorithms)
            .field("url", &inner.url)
            .field("max_age", &inner.max_age)
            .field("leeway", &inner.leeway)
            .field("replay", &inner.replay)
            .field("nonces", &inner.nonces.is_some())
            .finish()
    }
}

/// A DPoP proof that holds for its request: what a token endpoint binds a
/// session to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopProof {
    jkt: String,
}

impl DpopProof {
    #[cfg(feature = "test-util")]
    pub(crate) fn from_jkt(jkt: impl Into<String>) -> Self {
        Self { jkt: jkt.into() }
    }

    /// The RFC 7638 SHA-256 thumbprint of the proof's public key: the
    /// `cnf.jkt` of the tokens bound to it.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }
}

impl Dpop {
    /// A builder with the defaults: ES256, ES384, EdDSA, PS256 and RS256
    /// proofs, 60 s proof lifetime, 5 s leeway, an in-memory replay cache of
    /// 100,000 proofs, no nonces. The request URL must be configured.
    pub fn builder() -> DpopBuilder {
        DpopBuilder {
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            base_url: None,
            forwarded: false,
            max_age: DEFAULT_PROOF_LIFETIME,
            leeway: DEFAULT_LEEWAY,
            replay: None,
            nonce_secret: None,
            nonce_lifetime: DEFAULT_NONCE_LIFETIME,
        }
    }

    /// Bearer tokens (unbound) and DPoP-bound tokens with their proofs.
    pub fn or_bearer(&self) -> Presentation {
        Presentation::with_proof(Arc::new(self.clone()), true)
    }

    /// DPoP-bound tokens with their proofs only: a bearer token is refused
    /// (401 `invalid_token`).
    pub fn only(&self) -> Presentation {
        Presentation::with_proof(Arc::new(self.clone()), false)
    }

    /// The accepted proof algorithms (the `dpop_signing_alg_values_supported`
    /// of RFC 9728 metadata).
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.inner.algorithms
    }

    /// A fresh server nonce, when nonces are on: to send in `DPoP-Nonce`.
    pub fn new_nonce(&self) -> Option<String> {
        Some(self.inner.nonces.as_ref()?.issue(now()))
    }

    /// Checks the DPoP proof of a request to a token endpoint (a login, a
    /// refresh): no access token comes with it, so there is no `ath`. The
    /// proof is recorded in the replay cache.
    ///
    /// `Ok(None)` when the request has no `DPoP` header. Errors are
    /// [`AuthErrorKind::InvalidDpopProof`], [`AuthErrorKind::UseDpopNonce`]
    /// (with a [`dpop_nonce`](AuthError::dpop_nonce) to send) and
    /// [`AuthErrorKind::Unavailable`]; a token endpoint answers them with 400
    /// `invalid_dpop_proof` or `use_dpop_nonce` (RFC 9449 section 5).
    pub async fn check_token_request(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Option<DpopProof>, AuthError> {
        if !headers.contains_key("dpop") {
            return Ok(None);
        }
        let mut request = http::Request::new(());
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers.clone();
        let proven = self.inner.prove(&RequestHead::new(&request), None)?;
        proven.commit.await?;
        Ok(Some(DpopProof { jkt: proven.jkt }))
    }
}

impl ProofCheck for Dpop {
    fn algs(&self) -> &str {
        &self.inner.algs
    }

    fn prove(&self, head: &RequestHead<'_>, token: &str) -> Result<Proven, AuthError> {
        self.inner.prove(head, Some(token))
    }
}

impl Inner {
    fn prove(&self, head: &RequestHead<'_>, token: Option<&str>) -> Result<Proven, AuthError> {
        let now = now();
        self.check(head, token, now)
            .map_err(|error| match &self.nonces {
                // Any DPoP error of a server with nonces hands out a fresh one.
                Some(nonces)
                    if matches!(
                        error.kind(),
                        AuthErrorKind::InvalidDpopProof | AuthErrorKind::UseDpopNonce
                    ) =>
                {
                    error.with_dpop_nonce(nonces.issue(now))
                }
                _ => error,
            })
    }

    fn check(
        &self,
        head: &RequestHead<'_>,
        token: Option<&str>,
        now: i64,
    ) -> Result<Proven, AuthError> {
        let mut values = head.headers().get_all("dpop").iter();
        let value = match (values.next(), values.next()) {
            (Some(value), None) => value,
            (None, _) => return Err(invalid("a DPoP proof is required")),
            (Some(_), Some(_)) => return Err(invalid("more than one DPoP header")),
        };
        let proof = value
            .to_str()
            .map_err(|_| invalid("the DPoP proof is not a compact JWS"))?;
        let url = self
            .url
            .of(head)
            .ok_or_else(|| invalid("the request URL cannot be determined"))?;
        let checked = proof::check(
            proof,
            &Expected {
                method: head.method().as_str(),
                url: &url,
                token,
            },
            &Rules {
                algorithms: &self.algorithms,
                now,
                max_age: self.max_age,
                leeway: self.leeway,
            },
        )?;
        if let Some(nonces) = &self.nonces {
            let fresh = checked
                .nonce
                .as_deref()
                .is_some_and(|nonce| nonces.is_fresh(nonce, now));
            if !fresh {
                return Err(AuthError::new(AuthErrorKind::UseDpopNonce));
            }
        }
        let replay = Arc::clone(&self.replay);
        let (key, expires_at) = (checked.replay_key, checked.expires_at);
        Ok(Proven {
            jkt: checked.jkt,
            commit: Box::pin(async move {
                match replay.first_use(&key, expires_at).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(invalid("the DPoP proof was already used")),
                    Err(error) => Err(AuthError::unavailable(error)),
                }
            }),
        })
    }
}

/// Builds a [`Dpop`]. Mistakes surface from [`build`](Self::build).
#[must_use]
pub struct DpopBuilder {
    algorithms: Vec<Algorithm>,
    base_url: Option<String>,
    forwarded: bool,
    max_age: Duration,
    leeway: Duration,
    replay: Option<Arc<dyn ReplayCache>>,
    nonce_secret: Option<Vec<u8>>,
    nonce_lifetime: Duration,
}

impl fmt::Debug for DpopBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopBuilder")
            .field("algorithms", &self.algorithms)
            .field("base_url", &self.base_url)
            .field("forwarded", &self.forwarded)
            .field("max_age", &self.max_age)
            .field("leeway", &self.leeway)
            .field("replay", &self.replay)
            .field("nonces", &self.nonce_secret.is_some())
            .finish()
    }
}

fn secs(d: Duration) -> Result<i64, ConfigError> {
    i64::try_from(d.as_secs()).map_err(|_| ConfigError::new("a DPoP duration is too long"))
}

impl DpopBuilder {
    /// The public URL of the API as clients call it, such as
    /// `https://api.example.com` or `https://example.com/api` (a path prefix
    /// the proxy strips): a proof's `htu` must be it followed by the
    /// request's path.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Takes the request's scheme and host from `Forwarded` (RFC 7239) or
    /// `X-Forwarded-Proto` and `X-Forwarded-Host`, then `Host` (the scheme
    /// then defaults to the [`base_url`](Self::base_url)'s, or `https`).
    ///
    /// Only behind a proxy that sets these headers itself, overwriting what
    /// clients send.
    pub fn trust_forwarded_headers(mut self) -> Self {
        self.forwarded = true;
        self
    }

    /// The proof algorithms accepted (default ES256, ES384, EdDSA, PS256,
    /// RS256): asymmetric ones only, checked by [`build`](Self::build).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// How old a proof's `iat` may be (default 60 s); the replay cache
    /// remembers each proof this long (plus the leeway).
    pub fn proof_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_age = lifetime;
        self
    }

    /// How far in the future a proof's `iat` may be, for clock skew (default 5 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Where used proofs are remembered (default a [`MemoryReplayCache`] of
    /// 100,000 proofs, for one instance).
    pub fn replay_cache(mut self, cache: impl ReplayCache) -> Self {
        self.replay = Some(Arc::new(cache));
        self
    }

    /// Requires server nonces (RFC 9449 section 8): a proof must carry a
    /// nonce this server (or another holding the same `secret`) issued
    /// within the [nonce lifetime](Self::nonce_lifetime). A proof without one
    /// is refused with `use_dpop_nonce` and a `DPoP-Nonce` header. The secret
    /// must be at least 32 bytes.
    pub fn nonces(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.nonce_secret = Some(secret.as_ref().to_vec());
        self
    }

    /// How long a nonce is accepted (default 5 minutes).
    pub fn nonce_lifetime(mut self, lifetime: Duration) -> Self {
        self.nonce_lifetime = lifetime;
        self
    }

    /// Checks the configuration and builds the rules.
    pub fn build(self) -> Result<Dpop, ConfigError> {
        crate::keys::install_crypto_provider();
        if self.algorithms.is_empty() {
            return Err(ConfigError::new("DPoP needs at least one algorithm"));
        }
        if let Some(alg) = self
            .algorithms
            .iter()
            .find(|alg| alg.key_type() == KeyType::Hmac)
        {
            return Err(ConfigError::new(format!(
                "DPoP proofs are signed with asymmetric keys: {alg} cannot be accepted"
            )));
        }
        let base = match &self.base_url {
            Some(url) => {
                let normalized = normalize(url)
                    .filter(|_| !url.contains(['?', '#']))
                    .ok_or_else(|| {
                        ConfigError::new(format!(
                            "the DPoP base URL {url:?} is not an absolute http(s) URL \
                             without query or fragment"
                        ))
                    })?;
                Some(normalized.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        let url = match (base, self.forwarded) {
            (base, true) => ExternalUrl::Forwarded {
                default_scheme: base
                    .as_deref()
                    .and_then(|b| b.split_once("://"))
                    .map_or("https", |(scheme, _)| scheme)
                    .to_owned(),
            },
            (Some(base), false) => ExternalUrl::Base(base),
            (None, false) => {
                return Err(ConfigError::new(
                    "DPoP needs the URL clients call: configure base_url, \
                     or trust_forwarded_headers behind a proxy",
                ));
            }
        };
        let max_age = secs(self.max_age)?;
        if max_age == 0 {
            return Err(ConfigError::new("the DPoP proof lifetime must not be zero"));
        }
        let leeway = secs(self.leeway)?;
        let nonces = match self.nonce_secret {
            None => None,
            Some(secret) if secret.len() < 32 => {
                return Err(ConfigError::new(
                    "a DPoP nonce secret must be at least 32 bytes",
                ));
            }
            Some(secret) => Some(Nonces::new(
                Hmac::new_from_slice(&secret)
                    .map_err(|e| ConfigError::with_source("invalid DPoP nonce secret", e))?,
                secs(self.nonce_lifetime)?,
                leeway,
            )),
        };
        let algs = self
            .algorithms
            .iter()
            .map(|alg| alg.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Dpop {
            inner: Arc::new(Inner {
                algs,
                algorithms: self.algorithms,
                url,
                max_age,
                leeway,
                replay: self
                    .replay
                    .unwrap_or_else(|| Arc::new(MemoryReplayCache::default())),
                nonces,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_mistakes_fail_at_build() {
        assert!(Dpop::builder().build().is_err(), "no URL");
        assert!(Dpop::builder().base_url("api.example.com").build().is_err());
        assert!(
            Dpop::builder()
                .base_url("https://a.example/?q")
                .build()
                .is_err()
        );
        let url = || Dpop::builder().base_url("https://api.example.com");
        assert!(url().algorithms([Algorithm::HS256]).build().is_err());
        assert!(url().algorithms([]).build().is_err());
        assert!(url().nonces([1u8; 16]).build().is_err());
        assert!(url().proof_lifetime(Duration::ZERO).build().is_err());
        let dpop = url().build().unwrap();
        assert_eq!(ProofCheck::algs(&dpop), "ES256 ES384 EdDSA PS256 RS256");
        assert!(Dpop::builder().trust_forwarded_headers().build().is_ok());
    }
}
