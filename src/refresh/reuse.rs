//! Reuse as a security event: what the `on_reuse` hook receives.

/// A detected reuse: a spent refresh token was presented again, and its
/// session is now revoked. Handed to the hook of
/// [`RefreshTokensBuilder::on_reuse`](super::RefreshTokensBuilder::on_reuse)
/// to alert on, or to act on (force a password reset, end the user's other
/// sessions with [`RefreshTokens::logout_all`](super::RefreshTokens::logout_all)).
///
/// Either the client or an attacker holds a copy of the token, and the
/// server cannot tell which: treat it as a leak of that session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReuseEvent {
    /// The revoked session (an access token's `sid`).
    pub session_id: String,
    /// The user the session belongs to.
    pub user_id: String,
    /// The device label chosen at login, if any.
    pub device: Option<String>,
    /// The generation of the presented (spent) token: 0 for the login's.
    pub generation: u32,
    /// The session's newest generation when the reuse was detected: how far
    /// the session had moved on past the presented token.
    pub newest_generation: u32,
}

/// The hook of [`RefreshTokensBuilder::on_reuse`](super::RefreshTokensBuilder::on_reuse).
pub(super) type ReuseHook = dyn Fn(&ReuseEvent) + Send + Sync + 'static;
