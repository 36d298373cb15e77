//! Keys: what verifies a token and what signs one, from PEM, raw bytes, JSON
//! Web Keys, or an identity provider's JWK Set kept fresh.
//!
//! Every key is bound to the algorithms of its own type. An RSA public key can
//! never verify an HMAC token (the classic algorithm-confusion attack of RFC
//! 8725 section 2.1), and `none` is not an algorithm this crate knows.
//!
//! # JSON Web Keys
//!
//! Each JWK becomes one [`VerificationKey`], bound to exactly one algorithm:
//! the JWK's `alg` when it has one (it must fit the key type and curve),
//! otherwise the usual algorithm of its type:
//!
//! | `kty` | `crv` | default `alg` | allowed `alg` |
//! | --- | --- | --- | --- |
//! | `RSA` | | `RS256` | `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512` |
//! | `EC` | `P-256` | `ES256` | `ES256` |
//! | `EC` | `P-384` | `ES384` | `ES384` |
//! | `OKP` | `Ed25519` | `EdDSA` | `EdDSA`, `Ed25519` |
//! | `oct` | | `HS256` | `HS256`, `HS384`, `HS512` |
//!
//! RSA moduli shorter than 2048 bits are refused (RFC 7518 section 3.3), and
//! so are HMAC secrets shorter than the hash. A JWK with private members (`d`,
//! `p`, ...) is used for its public part only: the private members are
//! ignored and a warning is logged, because a published private key is a
//! leak. A key whose `use` is not `sig`, or whose `key_ops` lacks `verify`, is
//! not a verification key.
//!
//! A single JWK that cannot be used is an error. In a JWK Set, such keys are
//! skipped with a `tracing` warning, as RFC 7517 section 5 asks, so that one
//! key of an unknown type does not break the others.
//!
//! # Remote key sets
//!
//! With the `jwks` feature, [`RemoteJwks`] fetches a provider's JWK Set
//! (directly or by OpenID Connect discovery), keeps it fresh and refreshes it
//! when a token names an unknown `kid`; see its docs.
//!
//! # The issuer's key ring
//!
//! With the `key-ring` feature, [`ring::KeyRing`] makes and rotates the
//! issuer's own signing keys on a schedule shared by every instance, and
//! publishes their public halves; see the [`ring`] module.

mod algorithm;
mod jwk;
mod prepared;
#[cfg(feature = "jwks")]
mod remote;
#[cfg(feature = "key-ring")]
pub mod ring;
mod set;
mod signing;
mod verification;

use std::{borrow::Cow, fmt, future::Future, pin::Pin};

use jsonwebtoken as jwt;

use crate::error::AuthError;

#[cfg(feature = "jwks")]
pub(crate) use self::jwk::{Symmetric, parse_set};
#[cfg(feature = "jwks")]
pub use self::remote::{
    BoxFuture, DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_REFRESH_INTERVAL,
    DEFAULT_UNKNOWN_KID_COOLDOWN, DEFAULT_UNKNOWN_KID_MAX_WAIT, DefaultClient, FetchError,
    JwksClient, RemoteJwks, RemoteJwksBuilder, USER_AGENT,
};
pub(crate) use self::{algorithm::KeyType, set::KeySet};
pub use self::{
    algorithm::{Algorithm, UnknownAlgorithm},
    jwk::{JwkSet, thumbprint},
    signing::SigningKey,
    verification::VerificationKey,
};

/// Installs the process-wide crypto provider of `jsonwebtoken`, if none is.
///
/// With both backend features enabled (as `--all-features` does),
/// `jsonwebtoken` cannot pick a provider by itself and panics on first use;
/// this crate installs one (aws-lc-rs, the faster) whenever a [`Verifier`],
/// a [`TokenIssuer`](crate::TokenIssuer) or a key set is built. Call this
/// first only if your code uses `jsonwebtoken` directly before any of those.
/// It is cheap and idempotent.
///
/// [`Verifier`]: crate::Verifier
pub fn install_crypto_provider() {
    if jwt::crypto::CryptoProvider::try_get_default().is_some() {
        return;
    }
    #[cfg(feature = "aws_lc_rs")]
    let provider = &jwt::crypto::aws_lc::DEFAULT_PROVIDER;
    #[cfg(not(feature = "aws_lc_rs"))]
    let provider = &jwt::crypto::rust_crypto::DEFAULT_PROVIDER;
    // Losing a race to another thread's install is fine.
    let _ = provider.install_default();
}

/// Where a verifier's keys come from. The feature gate stays here: the
/// verifier only asks for a signature check and, for an unknown `kid`, a refresh.
pub(crate) enum KeySource {
    Static(KeySet),
    #[cfg(feature = "jwks")]
    Remote(RemoteJwks),
    /// The issuer's own published keys.
    #[cfg(feature = "key-ring")]
    Ring(ring::KeyRing),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(keys) => keys.fmt(f),
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.fmt(f),
            #[cfg(feature = "key-ring")]
            Self::Ring(ring) => ring.fmt(f),
        }
    }
}

/// A refresh of remote keys for an unknown `kid`, bounded in time.
pub(crate) type Refresh = Pin<Box<dyn Future<Output = ()> + Send>>;

impl KeySource {
    /// Verifies `signature` over `message` with the current keys; returns
    /// their generation.
    pub(crate) fn verify(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        message: &str,
        signature: &str,
    ) -> Result<u64, AuthError> {
        match self {
            Self::Static(keys) => keys.verify(kid, alg, message, signature),
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.verify(kid, alg, message, signature),
            #[cfg(feature = "key-ring")]
            Self::Ring(ring) => ring.verify(kid, alg, message, signature),
        }
    }

    /// The generation of the keys a token would be verified with now: static
    /// keys never change (0); a remote set gets a new one whenever a fetch
    /// brings other keys. An error where verification would fail at once
    /// (remote keys not there yet, or stale).
    pub(crate) fn generation(&self) -> Result<u64, AuthError> {
        match self {
            Self::Static(keys) => Ok(keys.generation()),
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.generation(),
            #[cfg(feature = "key-ring")]
            Self::Ring(ring) => Ok(ring.generation()),
        }
    }

    /// For an unknown `kid`: a refresh worth waiting for, or `None` (static
    /// keys, or a refresh ended less than the cooldown ago).
    pub(crate) fn refresh_for_unknown_kid(&self) -> Option<Refresh> {
        match self {
            Self::Static(_) => None,
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.refresh_for_unknown_kid(),
            // The ring's next keys are published a period ahead: an unknown
            // `kid` is not one of ours.
            #[cfg(feature = "key-ring")]
            Self::Ring(_) => None,
        }
    }

    /// Whether keys are at hand to verify with.
    pub(crate) fn is_ready(&self) -> bool {
        match self {
            Self::Static(_) => true,
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.is_ready(),
            #[cfg(feature = "key-ring")]
            Self::Ring(_) => true,
        }
    }
}

/// What an issuer signs with. The feature gate stays here: the issuer only
/// asks for the key of the moment and the longest lifetime it may give.
#[derive(Clone)]
pub(crate) enum SigningSource {
    Key(SigningKey),
    #[cfg(feature = "key-ring")]
    Ring(ring::KeyRing),
}

impl fmt::Debug for SigningSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(key) => key.fmt(f),
            #[cfg(feature = "key-ring")]
            Self::Ring(ring) => ring.fmt(f),
        }
    }
}

impl SigningSource {
    /// The key that signs now.
    pub(crate) fn current(&self) -> Cow<'_, SigningKey> {
        match self {
            Self::Key(key) => Cow::Borrowed(key),
            #[cfg(feature = "key-ring")]
            Self::Ring(ring) => Cow::Owned(ring.signing_key()),
        }
    }

    /// The longest token lifetime these keys allow, if limited.
    pub(crate) fn max_ttl(&self) -> Option<std::time::Duration> {
        match self {
            Self::Key(_) => None,
            #[cfg(feature = "key-ring")]
            Self::Ring(ring) => Some(ring.max_token_ttl()),
        }
    }
}
