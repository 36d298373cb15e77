//! Refresh-token rotation with reuse detection (RFC 9700 section 4.14).
//!
//! Login starts a *family* (one session on one device) with a short-lived
//! access token and a long random refresh token. Each refresh spends the
//! presented token at once and issues a new pair; presenting a spent token
//! again is *reuse*, a sign that it leaked, and revokes the whole family, the
//! newest token included.
//!
//! ```text
//! client                       RefreshTokens                    RefreshStore
//!   | login ------------------------> | create(family, R0) ------------> |
//!   | <------------- access A0 + R0   |                                  |
//!   | refresh(R0) ------------------> | rotate(R0 -> R1) --------------> | R0 active: R0 rotated, R1 stored
//!   | <------------- access A1 + R1   |                                  |
//!   | refresh(R0) again (attacker?) -> | rotate(R0 -> R2) --------------> | R0 already rotated: family revoked
//!   | <---------- 400 invalid_grant   |                                  |
//!   | refresh(R1) ------------------> | rotate(R1 -> R3) --------------> | family revoked: refused
//!   | <---------- 400 invalid_grant   |                                  |
//! ```
//!
//! The store only ever sees SHA-256 (or HMAC) hashes of refresh tokens. Store
//! your families anywhere by implementing [`RefreshStore`](store::RefreshStore); [`MemoryStore`] is
//! the embedded default, and the conformance suite (feature `test-util`)
//! checks a store in one call.

mod clock;
#[cfg(feature = "test-util")]
pub mod conformance;
mod endpoint;
mod error;
mod oauth;
mod session;
pub mod store;
mod subject;
mod token;
mod tokens;

pub use self::{
    endpoint::RefreshEndpoint,
    error::{RefreshError, RefreshErrorKind},
    store::{Family, MemoryStore},
    subject::Subject,
    token::{RefreshToken, TokenPair, TokenResponse},
    tokens::{DEFAULT_FAMILY_LIFETIME, DEFAULT_IDLE_TIMEOUT, RefreshTokens},
};

#[cfg(feature = "postgres")]
pub use self::store::PostgresStore;
#[cfg(feature = "redis")]
pub use self::store::RedisStore;
