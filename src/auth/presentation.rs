//! How a request presents its access token: as a bearer token (RFC 6750),
//! or with a proof of possession of the key the token is bound to.
//!
//! The layer knows proofs only through [`ProofCheck`]: a module beside this
//! one (`dpop`) gives its type that behaviour, and the layer stays generic.

use std::{fmt, sync::Arc};

use super::CheckFuture;
use crate::{error::AuthError, extract::RequestHead};

/// How requests present their access tokens to a
/// [`JwtAuthLayer`](crate::JwtAuthLayer): bearer tokens only (the default),
/// or DPoP-bound tokens with their proofs (RFC 9449), with or without bearer
/// tokens beside them.
///
/// Make the DPoP presentations from a [`Dpop`](crate::dpop::Dpop):
/// [`Dpop::or_bearer`](crate::dpop::Dpop::or_bearer) and
/// [`Dpop::only`](crate::dpop::Dpop::only).
///
/// Whatever the presentation, a token bound to a key (`cnf.jkt`) is never
/// accepted as a bearer token.
#[derive(Clone)]
pub struct Presentation {
    pub(crate) bearer: bool,
    pub(crate) proof: Option<Arc<dyn ProofCheck>>,
}

impl Presentation {
    /// `Authorization: Bearer <token>` and the layer's other token sources
    /// (RFC 6750): the default.
    pub fn bearer() -> Self {
        Self {
            bearer: true,
            proof: None,
        }
    }

    pub(crate) fn with_proof(proof: Arc<dyn ProofCheck>, bearer: bool) -> Self {
        Self {
            bearer,
            proof: Some(proof),
        }
    }
}

impl Default for Presentation {
    fn default() -> Self {
        Self::bearer()
    }
}

impl fmt::Debug for Presentation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presentation")
            .field("bearer", &self.bearer)
            .field("proof", &self.proof)
            .finish()
    }
}

/// A proof of possession that comes with a token (DPoP).
pub(crate) trait ProofCheck: Send + Sync + fmt::Debug + 'static {
    /// The `algs` parameter of the `DPoP` challenge: the accepted proof
    /// algorithms, space-separated.
    fn algs(&self) -> &str;

    /// Checks the request's proof for `token` before the token itself is
    /// verified: everything but the binding and the replay check.
    fn prove(&self, head: &RequestHead<'_>, token: &str) -> Result<Proven, AuthError>;
}

/// A proof that holds for its request and token.
pub(crate) struct Proven {
    /// The thumbprint of the proof's key: the token's `cnf.jkt` must be it.
    pub(crate) jkt: String,
    /// Records the proof as used (replay detection); polled only once the
    /// token is verified and bound to `jkt`.
    pub(crate) commit: CheckFuture,
}
