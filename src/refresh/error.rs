//! Why a refresh failed, and its OAuth 2.0 error response.

use std::{error::Error as StdError, fmt};

use http::{Response, StatusCode};

use super::{oauth, store::StoreError};
use crate::error::{AuthError, AuthErrorKind};

/// Why a refresh failed.
///
/// Its [`Display`](fmt::Display) names the kind only; the cause (a
/// [`StoreError`], an [`IssueError`](crate::IssueError)) is its [`source`](StdError::source).
#[derive(Debug)]
pub struct RefreshError {
    kind: RefreshErrorKind,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    /// A DPoP nonce for the client (`DPoP-Nonce`).
    nonce: Option<String>,
}

/// The kind of a [`RefreshError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshErrorKind {
    /// The refresh token is unknown, malformed, expired or revoked, or its
    /// user is gone: OAuth `invalid_grant`.
    InvalidGrant,
    /// The refresh token was already spent: presenting it again is reuse, a
    /// sign that it leaked, and its whole session is now revoked. A security
    /// event (see [`RefreshTokensBuilder::on_reuse`](super::RefreshTokensBuilder::on_reuse));
    /// the client gets the same OAuth `invalid_grant` as for
    /// [`InvalidGrant`](Self::InvalidGrant), so it learns nothing more.
    Reused,
    /// The store failed: nothing was revoked, try again later.
    Unavailable,
    /// The access token could not be signed.
    Issue,
    /// The request's DPoP proof is missing (for a DPoP-bound session) or
    /// invalid: OAuth `invalid_dpop_proof` (RFC 9449 section 5).
    InvalidDpopProof,
    /// The DPoP proof lacks the server's nonce: OAuth `use_dpop_nonce`, with
    /// a fresh nonce in `DPoP-Nonce` (RFC 9449 section 8).
    UseDpopNonce,
}

impl RefreshError {
    pub(super) fn new(kind: RefreshErrorKind) -> Self {
        Self {
            kind,
            source: None,
            nonce: None,
        }
    }

    pub(super) fn store(error: StoreError) -> Self {
        Self {
            source: Some(Box::new(error)),
            ..Self::new(RefreshErrorKind::Unavailable)
        }
    }

    pub(super) fn issue(error: impl StdError + Send + Sync + 'static) -> Self {
        Self {
            source: Some(Box::new(error)),
            ..Self::new(RefreshErrorKind::Issue)
        }
    }

    /// The refusal of a token request whose DPoP proof failed
    /// [`Dpop::check_token_request`](crate::dpop::Dpop::check_token_request):
    /// `InvalidDpopProof`, `UseDpopNonce` (keeping the nonce to send), or
    /// `Unavailable` when the replay cache failed. The [`AuthError`] is the source.
    pub fn dpop(error: AuthError) -> Self {
        let kind = match error.kind() {
            AuthErrorKind::UseDpopNonce => RefreshErrorKind::UseDpopNonce,
            AuthErrorKind::Unavailable => RefreshErrorKind::Unavailable,
            _ => RefreshErrorKind::InvalidDpopProof,
        };
        Self {
            nonce: error.dpop_nonce().map(str::to_owned),
            source: Some(Box::new(error)),
            ..Self::new(kind)
        }
    }

    /// The kind of error.
    pub fn kind(&self) -> RefreshErrorKind {
        self.kind
    }

    /// The RFC 6749 section 5.2 response for this error: 400 `invalid_grant`
    /// (reuse included), `invalid_dpop_proof` or `use_dpop_nonce` (with
    /// `DPoP-Nonce`), 503 `temporarily_unavailable`, or 500 `server_error`.
    pub fn to_response(&self) -> Response<String> {
        let mut response = self.oauth_response();
        if let Some(nonce) = &self.nonce
            && let Ok(value) = http::HeaderValue::from_str(nonce)
        {
            response.headers_mut().insert("dpop-nonce", value);
        }
        response
    }

    fn oauth_response(&self) -> Response<String> {
        match self.kind {
            RefreshErrorKind::InvalidGrant | RefreshErrorKind::Reused => oauth::error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the refresh token is invalid, expired or revoked",
            ),
            RefreshErrorKind::Unavailable => oauth::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again later",
            ),
            RefreshErrorKind::Issue => oauth::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the token could not be issued",
            ),
            RefreshErrorKind::InvalidDpopProof => oauth::error(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                "a valid DPoP proof by the session's key is required",
            ),
            RefreshErrorKind::UseDpopNonce => oauth::error(
                StatusCode::BAD_REQUEST,
                "use_dpop_nonce",
                "a DPoP proof with the server's nonce is required",
            ),
        }
    }
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            RefreshErrorKind::InvalidGrant => "the refresh token is invalid",
            RefreshErrorKind::Reused => "the refresh token was reused: its session is revoked",
            RefreshErrorKind::Unavailable => "the token store is unavailable",
            RefreshErrorKind::Issue => "the access token could not be issued",
            RefreshErrorKind::InvalidDpopProof => "the DPoP proof is missing or invalid",
            RefreshErrorKind::UseDpopNonce => "the DPoP proof lacks the server's nonce",
        })
    }
}

impl StdError for RefreshError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::{RefreshError, RefreshErrorKind};
    use crate::refresh::store::StoreError;

    #[test]
    fn refresh_errors_keep_their_source_out_of_display() {
        let error = RefreshError::store(StoreError::new("redis: cannot connect"));
        assert_eq!(error.kind(), RefreshErrorKind::Unavailable);
        assert_eq!(error.to_string(), "the token store is unavailable");
        let source = error.source().expect("the store error is kept");
        assert_eq!(source.to_string(), "redis: cannot connect");
        assert_eq!(error.to_response().status(), 503);
        assert!(
            RefreshError::new(RefreshErrorKind::InvalidGrant)
                .source()
                .is_none()
        );
    }

    #[test]
    fn reuse_answers_like_any_invalid_grant() {
        let reused = RefreshError::new(RefreshErrorKind::Reused).to_response();
        let invalid = RefreshError::new(RefreshErrorKind::InvalidGrant).to_response();
        assert_eq!(reused.status(), 400);
        assert_eq!(
            reused.body(),
            invalid.body(),
            "the client learns nothing more"
        );
    }
}
