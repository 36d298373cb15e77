//! The storage contract of refresh-token rotation: what a store author
//! implements.
//!
//! Applications use [`RefreshTokens`](super::RefreshTokens) and pick a store
//! ([`MemoryStore`], `RedisStore`, `PostgresStore`);
//! they need nothing here beyond the [`RefreshStore`] trait object they hand
//! over and the [`StoreError`] their user lookup may return. To keep
//! sessions in another database, implement [`RefreshStore`] over the records
//! of this module, then run the conformance suite (`refresh::conformance`,
//! feature `test-util`) against it.

use std::{error::Error as StdError, fmt};

use async_trait::async_trait;

use super::Session;

#[cfg(feature = "broadcast")]
mod events;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "broadcast")]
pub use self::events::{EndedSession, EndedSessions, SessionEvents};
pub use self::memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use self::postgres::PostgresStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;

/// The hash of a refresh token: with the token's session id, all a store
/// ever sees of one.
///
/// SHA-256 of the token, or HMAC-SHA-256 with a server-side key when one is
/// configured. Refresh tokens carry 256 random bits, so the hash is a safe
/// lookup key; the raw token never leaves [`RefreshTokens`](super::RefreshTokens).
///
/// A refresh token also names its session in clear (the session id is not a
/// secret: access tokens carry it as `sid`), so every call that presents a
/// token hands the store both: a store may use the session id to find where
/// the token lives (the Redis store's hash slot on Redis Cluster), and must
/// treat a token presented with another session's id as unknown.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// A hash from its 32 bytes, as a store reads it back.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 characters: a convenient text key.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            let _ = write!(out, "{byte:02x}");
        }
        out
    }

    /// Parses the output of [`to_hex`](Self::to_hex).
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell hashes apart in logs.
        write!(f, "TokenHash({}…)", &self.to_hex()[..12])
    }
}

/// The state of one refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    /// It may be rotated.
    Active,
    /// It was rotated at this time (Unix seconds); presenting it again is reuse.
    Rotated(i64),
    /// It was revoked with its session.
    Revoked,
}

/// One refresh token, by hash: a plain record, built with a struct literal.
///
/// ```
/// use tower_jwt_auth::refresh::store::{TokenHash, TokenRecord, TokenStatus};
/// let login_token = TokenRecord {
///     hash: TokenHash::from_bytes([7; 32]),
///     session_id: "s-1".into(),
///     parent: None,
///     generation: 0,
///     created_at: 1_700_000_000,
///     status: TokenStatus::Active,
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's hash.
    pub hash: TokenHash,
    /// Its session.
    pub session_id: String,
    /// The token it replaced; `None` for the login's token.
    pub parent: Option<TokenHash>,
    /// 0 for the login's token, one more per rotation.
    pub generation: u32,
    /// When it was issued, in Unix seconds.
    pub created_at: i64,
    /// Its state.
    pub status: TokenStatus,
}

/// One rotation request, with every decision rule already turned into a
/// number by [`RefreshTokens`](super::RefreshTokens): a plain record, built
/// with a struct literal (the conformance suite and store tests do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The session the presented token names. A token of another session
    /// is unknown (rule 1 of [`RefreshStore::rotate`]).
    pub session_id: String,
    /// The hash of the presented token.
    pub presented: TokenHash,
    /// The hash of the token to issue in its place.
    pub child: TokenHash,
    /// The current time, in Unix seconds.
    pub now: i64,
    /// A session whose `last_used_at` is before this is idle-expired.
    pub idle_cutoff: i64,
    /// A rotated token whose rotation time is at or after this may be
    /// retried (the grace window); `None` when grace is off.
    pub grace_cutoff: Option<i64>,
}

/// Why [`RefreshStore::rotate`] refused a presented refresh token without
/// changing anything: the reason carried by [`RotateOutcome::Invalid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidReason {
    /// No token has this hash.
    Unknown,
    /// The token or its session was revoked.
    Revoked,
    /// The session outlived its absolute or idle lifetime.
    Expired,
}

/// What [`RefreshStore::rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateOutcome {
    /// The presented token was active: it is now rotated and the child
    /// stored as the session's newest token. Carries the updated session.
    Rotated(Session),
    /// The presented token was the immediate predecessor of the newest
    /// generation, rotated within the grace window: the child was stored as a
    /// sibling of the newest token(s). Carries the updated session.
    Grace(Session),
    /// The presented token was the immediate predecessor of the newest
    /// generation and held a retry permit ([`RefreshStore::allow_retry`]): the
    /// answer to its rotation was lost. The permit is used up and the child
    /// stored as a sibling of the newest token(s). Carries the updated session.
    Retried(Session),
    /// The presented token was already rotated (and no grace applied): the
    /// whole session is now revoked. Carries the revoked session.
    Reused(Session),
    /// Nothing was changed.
    Invalid(InvalidReason),
}

/// A store failure: unreachable, timed out, corrupt data.
///
/// Never mistaken for reuse: the endpoint answers 503 and nothing is revoked.
/// Its [`Display`](fmt::Display) is the message only; the driver's error,
/// if any, is its [`source`](StdError::source).
#[derive(Debug)]
pub struct StoreError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl StoreError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by `source` (a driver's error).
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

/// Where sessions and their refresh tokens live: implement it for your database.
///
/// The store holds [`Session`] and [`TokenRecord`] rows and carries out two
/// steps atomically: [`rotate`](Self::rotate) and the revocations.
/// Everything that decides security (token generation, hashing, lifetimes,
/// grace rules, access tokens) stays in [`RefreshTokens`](super::RefreshTokens);
/// a store only follows the algorithm written on `rotate`, and the
/// conformance suite (`tower_jwt_auth::refresh::conformance`, feature
/// `test-util`) checks that it does, races included.
///
/// Usable as `Arc<dyn RefreshStore>`.
#[async_trait]
pub trait RefreshStore: Send + Sync + fmt::Debug + 'static {
    /// Stores a new session and its first token (generation 0, active), then
    /// enforces the session cap, as one atomic step: if the user now has more
    /// than `max_sessions` sessions that are not revoked (the new one
    /// included, expired ones too), revokes the oldest of the *others*, by
    /// `(created_at, id)`, until `max_sessions` are left (or only the new
    /// one). Returns the ids of the sessions it revoked, oldest first.
    ///
    /// The work is bounded by the excess (one session per login once a user
    /// is at the cap), never by every session the user ever had: keep the
    /// user's sessions that are not revoked in an index of their own.
    async fn create(
        &self,
        session: &Session,
        token: &TokenRecord,
        max_sessions: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Rotates a token, as one atomic step. With `t` the token of hash
    /// `rotation.presented` and `s` its session:
    ///
    /// 1. No `t`, or `t` belongs to another session than
    ///    `rotation.session_id`: `Invalid(Unknown)`.
    /// 2. `s.revoked` or `t` is `Revoked`: `Invalid(Revoked)`.
    /// 3. `s.expires_at <= now` or `s.last_used_at < idle_cutoff`: `Invalid(Expired)`.
    /// 4. `t` is `Active` and `t.generation == s.generation` (it is the
    ///    newest): mark it `Rotated(now)`; store the child
    ///    (`parent` = `t`, generation `t.generation + 1`, created `now`,
    ///    `Active`); set `s.generation` to the child's and `s.last_used_at` to
    ///    `now`: `Rotated(s)`.
    /// 5. `t` is `Rotated(_)`, holds a retry permit ([`allow_retry`](Self::allow_retry))
    ///    whose `until >= now`, and `t.generation + 1 == s.generation`: drop
    ///    the permit (it lets one retry through), store the child as in 4 (a
    ///    sibling of the newest token), set `s.last_used_at` to `now`: `Retried(s)`.
    /// 6. `t` is `Rotated(at)`, `grace_cutoff` is `Some(c)`, `at >= c` and
    ///    `t.generation + 1 == s.generation`: store the child as in 4 (a
    ///    sibling of the newest token), set `s.last_used_at` to `now`: `Grace(s)`.
    /// 7. Otherwise (`t` was rotated before, or is a stale sibling that a
    ///    retry left active after the session moved on): revoke the
    ///    session (set `s.revoked`; a session's tokens are dead once it is):
    ///    `Reused(s)`.
    ///
    /// Under any concurrency, at most one call may see `t` as `Active`, and
    /// at most one may use a retry permit.
    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError>;

    /// Gives the token of hash `hash` in session `session_id` a retry permit
    /// running until `until` (Unix seconds), replacing any it had; an unknown
    /// hash, or a token of another session, changes nothing.
    ///
    /// [`RefreshTokens`](super::RefreshTokens) calls it when
    /// [`rotate`](Self::rotate) failed: the rotation may still have run (a
    /// timeout while the server was busy) with its answer lost, and then the
    /// client's retry of the same token must not count as reuse. The permit
    /// lets exactly one such retry through (rule 5 of `rotate`). Record it
    /// whatever the token's state: the failed rotation may run before or
    /// after this call, or never.
    async fn allow_retry(
        &self,
        session_id: &str,
        hash: &TokenHash,
        until: i64,
    ) -> Result<(), StoreError>;

    /// The token of hash `hash` in session `session_id`, whatever its state;
    /// `None` if unknown or of another session.
    async fn token(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<Option<TokenRecord>, StoreError>;

    /// The token of hash `hash` in session `session_id`, and the session;
    /// `None` if either is unknown, or the token is of another session.
    ///
    /// [`RefreshTokens::refresh`](super::RefreshTokens::refresh) reads this
    /// before rotating, so that a failure of the user lookup or of signing
    /// spends nothing. The default calls [`token`](Self::token) then
    /// [`session`](Self::session); override it to answer in one round trip.
    async fn lookup(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<Option<(TokenRecord, Session)>, StoreError> {
        let Some(token) = self.token(session_id, hash).await? else {
            return Ok(None);
        };
        if token.session_id != session_id {
            return Ok(None);
        }
        Ok(self
            .session(&token.session_id)
            .await?
            .map(|session| (token, session)))
    }

    /// The session `id`, revoked or not; `None` if unknown (or purged).
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError>;

    /// Revokes one session (and so all its tokens); `false` if it was unknown.
    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError>;

    /// Revokes every session of `user_id`; returns how many were not
    /// revoked before (expired ones included).
    ///
    /// Bounded by the user's sessions that are not revoked (at most the
    /// session cap), never by every user's.
    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError>;

    /// The sessions of `user_id` that are not revoked and not expired at
    /// `now` (by `expires_at` only), oldest first.
    ///
    /// Bounded like [`revoke_user`](Self::revoke_user).
    async fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<Session>, StoreError>;

    /// Deletes sessions (and their tokens) that expired before `now` or are
    /// revoked and were last used before `revoked_before`; returns how many.
    async fn purge(&self, now: i64, revoked_before: i64) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::StoreError;

    #[test]
    fn store_errors_keep_their_source_out_of_display() {
        let cause = std::io::Error::other("connection refused");
        let error = StoreError::with_source("redis: cannot connect", cause);
        assert_eq!(error.to_string(), "redis: cannot connect");
        let source = error.source().expect("the cause is kept");
        assert_eq!(source.to_string(), "connection refused");
        assert!(StoreError::new("corrupt").source().is_none());
    }

    #[test]
    fn token_hashes_round_trip_through_hex() {
        let hash = super::TokenHash::from_bytes([0xab; 32]);
        assert_eq!(hash.to_hex(), "ab".repeat(32));
        assert_eq!(super::TokenHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(super::TokenHash::from_hex("ab"), None);
        assert_eq!(super::TokenHash::from_hex(&"zz".repeat(32)), None);
    }
}
