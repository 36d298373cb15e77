//! Refresh-token rotation with reuse detection (RFC 9700 section 4.14).
//!
//! A login starts a *session*: one user on one device, with a short-lived
//! access token and a long random refresh token. Each refresh spends the
//! presented token at once and issues a new pair; presenting a spent token
//! again is *reuse*, a sign that it leaked, and revokes the whole session, the
//! newest token included.
//!
//! ```text
//! client                         RefreshTokens                      RefreshStore
//!   | login --------------------------> | create(session, R0) ------------> |
//!   | <--------------- access A0 + R0   |                                   |
//!   | refresh(R0) --------------------> | rotate(R0 -> R1) ---------------> | R0 active: R0 rotated, R1 stored
//!   | <--------------- access A1 + R1   |                                   |
//!   | refresh(R0) again (attacker?) --> | rotate(R0 -> R2) ---------------> | R0 already rotated: session revoked
//!   | <------------ 400 invalid_grant   |                                   |
//!   | refresh(R1) --------------------> | rotate(R1 -> R3) ---------------> | session revoked: refused
//!   | <------------ 400 invalid_grant   |                                   |
//! ```
//!
//! # Vocabulary
//!
//! A *session* is what RFC 9700 and others call a refresh-token *family*:
//! the tokens issued from one login, each replacing the one before. This crate
//! says session everywhere ([`Session`], [`TokenPair::session`], the access
//! token's `sid`, [`RefreshTokens::sessions`]). A session is *live* while it is
//! not revoked and neither its absolute nor its idle lifetime has run out
//! ([`Session::is_live`]).
//!
//! # Reuse is a security event
//!
//! A detected reuse fails with [`RefreshErrorKind::Reused`] (the client
//! sees a plain `invalid_grant`), logs a `tracing` warning naming the user
//! and session, calls the hook of [`RefreshTokensBuilder::on_reuse`] with a
//! [`ReuseEvent`], and counts in the `reuse` outcome of
//! [`metrics::REFRESHES`](crate::metrics::REFRESHES). Every counter this
//! module emits is listed in [`crate::metrics`].
//!
//! # Two readers
//!
//! Applications use what this module exports: [`RefreshTokens`] (login,
//! refresh, logout, the session check), `SessionBroadcast` (the session
//! check answered from memory, feature `broadcast`), [`Subject`], [`TokenPair`],
//! [`RefreshEndpoint`], and a store: [`MemoryStore`] (embedded, the default),
//! `RedisStore` (feature `redis`) or `PostgresStore` (feature `postgres`).
//!
//! Store authors implement [`store::RefreshStore`] over the records of the
//! [`store`] module, and check their store in one call with the conformance
//! suite (`conformance`, feature `test-util`). The store only ever sees
//! SHA-256 (or HMAC) hashes of refresh tokens.

#[cfg(feature = "broadcast")]
mod broadcast;
mod clock;
#[cfg(feature = "test-util")]
pub mod conformance;
mod csrf;
mod endpoint;
mod error;
mod oauth;
mod reuse;
mod session;
pub mod store;
mod subject;
mod token;
mod tokens;

pub use self::{
    endpoint::{RefreshEndpoint, RefreshEndpointBuilder},
    error::{RefreshError, RefreshErrorKind},
    reuse::ReuseEvent,
    session::Session,
    store::MemoryStore,
    subject::Subject,
    token::{RefreshToken, TokenPair, TokenResponse},
    tokens::{
        DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_SESSIONS, DEFAULT_RETRY_WINDOW, DEFAULT_SESSION_LIFETIME,
        RefreshTokens, RefreshTokensBuilder,
    },
};

#[cfg(feature = "broadcast")]
pub use self::broadcast::{SessionBroadcast, SessionBroadcastBuilder};
#[cfg(feature = "postgres")]
pub use self::store::PostgresStore;
#[cfg(feature = "redis")]
pub use self::store::RedisStore;
