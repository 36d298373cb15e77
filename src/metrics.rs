//! The counters this crate emits through the [`metrics`](https://docs.rs/metrics)
//! facade: every name, label and value in one place.
//!
//! Install any `metrics` recorder (a Prometheus exporter, StatsD, ...) and
//! they appear; the crate installs none. Without a recorder, a count costs
//! one check for a recorder and allocates nothing: every key, labels
//! included, is a `static`.
//!
//! | name | labels | counts |
//! |---|---|---|
//! | [`TOKENS_VERIFIED`] `tower_jwt_auth_tokens_verified_total` | none | requests whose access token [`JwtAuthLayer`](crate::JwtAuthLayer) accepted (verified, and passed the `check` if there is one) |
//! | [`TOKENS_REJECTED`] `tower_jwt_auth_tokens_rejected_total` | [`KIND`]: [`AuthErrorKind::as_str`] (`expired`, `invalid_signature`, `missing_credentials`, `rejected`, `unavailable`, ...) | requests `JwtAuthLayer` rejected, by why |
//! | [`REFRESHES`] `tower_jwt_auth_refreshes_total` | [`OUTCOME`]: `ok`, `grace`, `retry`, `invalid`, `reuse`, `unavailable`, `error` | calls of [`RefreshTokens::refresh`](crate::refresh::RefreshTokens::refresh), by outcome |
//! | [`SESSIONS_EVICTED`] `tower_jwt_auth_sessions_evicted_total` | none | sessions revoked at a login by the session cap ([`RefreshTokensBuilder::max_sessions`](crate::refresh::RefreshTokensBuilder::max_sessions)) |
//! | [`SESSION_BROADCAST`] `tower_jwt_auth_session_broadcast_total` | [`EVENT`]: `synced`, `lost`, `failed` | the logout broadcast's changes of state (`SessionBroadcast`, feature `broadcast`) |
//!
//! The refresh outcomes:
//!
//! - `ok`: rotated, a new pair issued;
//! - `grace`: a retry within the grace window got a sibling pair
//!   ([`RefreshTokensBuilder::grace_period`](crate::refresh::RefreshTokensBuilder::grace_period));
//! - `retry`: a retry after a failed rotation got a sibling pair
//!   ([`RefreshTokensBuilder::retry_window`](crate::refresh::RefreshTokensBuilder::retry_window));
//! - `invalid`: an unknown, malformed, expired or revoked token, or a user
//!   who is gone (400 `invalid_grant`);
//! - `reuse`: a spent token presented again: its session was revoked (400
//!   `invalid_grant`; see also
//!   [`RefreshTokensBuilder::on_reuse`](crate::refresh::RefreshTokensBuilder::on_reuse));
//! - `unavailable`: the store or the user lookup failed (503);
//! - `error`: the access token could not be signed (500).
//!
//! A rising `reuse` means leaked refresh tokens (or a client that replays
//! them); rising `unavailable` or `retry`, a struggling store.
//!
//! The logout broadcast's events:
//!
//! - `synced`: subscribed and resynchronized; the check answers from memory;
//! - `lost`: the subscription was lost; the check looks sessions up in the
//!   store until the next `synced`;
//! - `failed`: an attempt to subscribe or to resynchronize failed (retried
//!   after a pause growing from 100 ms to 5 s).
//!
//! `lost` without a `synced` soon after means every request of that server
//! pays a store lookup.

use ::metrics::{Key, Label, Level, Metadata};

use crate::AuthErrorKind;

/// Counter: requests whose access token `JwtAuthLayer` accepted.
pub const TOKENS_VERIFIED: &str = "tower_jwt_auth_tokens_verified_total";
/// Counter: requests `JwtAuthLayer` rejected, labelled by [`KIND`].
pub const TOKENS_REJECTED: &str = "tower_jwt_auth_tokens_rejected_total";
/// Counter: refreshes, labelled by [`OUTCOME`].
pub const REFRESHES: &str = "tower_jwt_auth_refreshes_total";
/// Counter: sessions revoked by the session cap at a login.
pub const SESSIONS_EVICTED: &str = "tower_jwt_auth_sessions_evicted_total";

/// Counter: the logout broadcast's changes of state, labelled by [`EVENT`].
pub const SESSION_BROADCAST: &str = "tower_jwt_auth_session_broadcast_total";

/// The label of [`TOKENS_REJECTED`]: the rejection's [`AuthErrorKind::as_str`].
pub const KIND: &str = "kind";
/// The label of [`REFRESHES`]: `ok`, `grace`, `retry`, `invalid`, `reuse`,
/// `unavailable` or `error`.
pub const OUTCOME: &str = "outcome";
/// The label of [`SESSION_BROADCAST`]: `synced`, `lost` or `failed`.
pub const EVENT: &str = "event";

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// A `&'static Key`, labels included: nothing is built per count.
macro_rules! static_key {
    ($name:expr) => {{
        static KEY: Key = Key::from_static_name($name);
        &KEY
    }};
    ($name:expr, $label:expr => $value:expr) => {{
        static LABELS: [Label; 1] = [Label::from_static_parts($label, $value)];
        static KEY: Key = Key::from_static_parts($name, &LABELS);
        &KEY
    }};
}

fn increment(key: &'static Key, by: u64) {
    ::metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA).increment(by));
}

/// One key per rejection kind; the match is exhaustive, so a new kind
/// cannot be forgotten.
macro_rules! rejected_key {
    ($kind:expr; $($variant:ident),* $(,)?) => {
        match $kind {
            $(AuthErrorKind::$variant => {
                static_key!(TOKENS_REJECTED, KIND => AuthErrorKind::$variant.as_str())
            })*
        }
    };
}

/// An access token was accepted.
pub(crate) fn token_verified() {
    increment(static_key!(TOKENS_VERIFIED), 1);
}

/// A request was rejected.
pub(crate) fn token_rejected(kind: AuthErrorKind) {
    let key = rejected_key!(kind;
        MissingCredentials, InvalidRequest, TokenTooLong, Malformed, UnsupportedAlgorithm,
        UnknownKey, InvalidSignature, UnsupportedCritical, InvalidType, DuplicateClaim,
        MissingClaim, InvalidClaims, Expired, NotYetValid, InvalidIssuer, InvalidAudience,
        Rejected, InsufficientScope, Unavailable, InvalidDpopProof, UseDpopNonce, KeyMismatch,
        ProofRequired, InsufficientUserAuthentication,
    );
    increment(key, 1);
}

/// The outcome of a refresh, as [`REFRESHES`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    Ok,
    Grace,
    Retry,
    Invalid,
    Reuse,
    Unavailable,
    Error,
}

/// A refresh ended with `outcome`.
pub(crate) fn refresh(outcome: Refresh) {
    let key = match outcome {
        Refresh::Ok => static_key!(REFRESHES, OUTCOME => "ok"),
        Refresh::Grace => static_key!(REFRESHES, OUTCOME => "grace"),
        Refresh::Retry => static_key!(REFRESHES, OUTCOME => "retry"),
        Refresh::Invalid => static_key!(REFRESHES, OUTCOME => "invalid"),
        Refresh::Reuse => static_key!(REFRESHES, OUTCOME => "reuse"),
        Refresh::Unavailable => static_key!(REFRESHES, OUTCOME => "unavailable"),
        Refresh::Error => static_key!(REFRESHES, OUTCOME => "error"),
    };
    increment(key, 1);
}

/// The session cap revoked `count` sessions at a login.
pub(crate) fn sessions_evicted(count: u64) {
    if count > 0 {
        increment(static_key!(SESSIONS_EVICTED), count);
    }
}

/// An event of the logout broadcast, as [`SESSION_BROADCAST`] counts it.
#[cfg(feature = "broadcast")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Broadcast {
    Synced,
    Lost,
    Failed,
}

/// The logout broadcast went through `event`.
#[cfg(feature = "broadcast")]
pub(crate) fn broadcast(event: Broadcast) {
    let key = match event {
        Broadcast::Synced => static_key!(SESSION_BROADCAST, EVENT => "synced"),
        Broadcast::Lost => static_key!(SESSION_BROADCAST, EVENT => "lost"),
        Broadcast::Failed => static_key!(SESSION_BROADCAST, EVENT => "failed"),
    };
    increment(key, 1);
}
