//! What a rejection's `WWW-Authenticate` challenges say beyond the error:
//! the schemes a layer accepts (Bearer, RFC 6750; DPoP, RFC 9449), the DPoP
//! algorithms, and the protected resource's metadata URL (RFC 9728).

use std::sync::Arc;

/// An `Authorization` scheme a token can be presented with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP` (RFC 9449): the token with a proof of possession of its key.
    Dpop,
}

/// What a layer advertises in every challenge it sends. The layers that run
/// after authentication (roles, step-up) find it in the request extensions,
/// so their challenges name the same schemes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChallengeContext {
    /// Whether `Bearer` is accepted.
    pub(crate) bearer: bool,
    /// `Some(algs)` when `DPoP` is accepted: the `algs` parameter.
    pub(crate) dpop_algs: Option<String>,
    /// The `resource_metadata` parameter (RFC 9728 section 5.1).
    pub(crate) resource_metadata: Option<String>,
}

impl Default for ChallengeContext {
    fn default() -> Self {
        Self {
            bearer: true,
            dpop_algs: None,
            resource_metadata: None,
        }
    }
}

/// The context as the request extensions carry it.
#[derive(Debug, Clone)]
pub(crate) struct SharedContext(pub(crate) Arc<ChallengeContext>);
