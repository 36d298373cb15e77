//! The storage contract of refresh-token rotation: what a store author
//! implements.
//!
//! Applications use [`RefreshTokens`](super::RefreshTokens) and pick a store
//! ([`MemoryStore`], `RedisStore`, `PostgresStore`);
//! they need nothing here beyond the [`RefreshStore`] trait object they hand
//! over and the [`StoreError`] their user lookup may return. To keep
//! families in another database, implement [`RefreshStore`] over the records
//! of this module, then run the conformance suite (`refresh::conformance`,
//! feature `test-util`) against it.

use std::{error::Error as StdError, fmt};

use async_trait::async_trait;

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

pub use self::memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use self::postgres::PostgresStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;

/// The hash of a refresh token: all a store ever sees of one.
///
/// SHA-256 of the token, or HMAC-SHA-256 with a server-side key when one is
/// configured. Refresh tokens carry 256 random bits, so the hash is a safe
/// lookup key; the raw token never leaves [`RefreshTokens`](super::RefreshTokens).
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

/// One login on one device: a refresh-token family.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Family {
    /// The family id; access tokens carry it as `sid`.
    pub id: String,
    /// The user the family belongs to.
    pub user_id: String,
    /// A label for the device, chosen at login ("Firefox on Linux").
    pub device: Option<String>,
    /// When the family was created (the login), in Unix seconds.
    pub created_at: i64,
    /// When a token of the family was last issued or rotated, in Unix seconds.
    pub last_used_at: i64,
    /// When the family dies whatever happens (the absolute lifetime), in Unix seconds.
    pub expires_at: i64,
    /// The generation of the newest token (the login's token is generation 0).
    pub generation: u32,
    /// Whether the family was revoked (logout, reuse detected).
    pub revoked: bool,
}

impl Family {
    /// A family as a store reads it back.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        user_id: String,
        device: Option<String>,
        created_at: i64,
        last_used_at: i64,
        expires_at: i64,
        generation: u32,
        revoked: bool,
    ) -> Self {
        Self {
            id,
            user_id,
            device,
            created_at,
            last_used_at,
            expires_at,
            generation,
            revoked,
        }
    }
}

/// The state of one refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    /// It may be rotated.
    Active,
    /// It was rotated at this time (Unix seconds); presenting it again is reuse.
    Rotated(i64),
    /// It was revoked with its family.
    Revoked,
}

/// One refresh token, by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRecord {
    /// The token's hash.
    pub hash: TokenHash,
    /// Its family.
    pub family_id: String,
    /// The token it replaced; `None` for the login's token.
    pub parent: Option<TokenHash>,
    /// 0 for the login's token, one more per rotation.
    pub generation: u32,
    /// When it was issued, in Unix seconds.
    pub created_at: i64,
    /// Its state.
    pub status: TokenStatus,
}

impl TokenRecord {
    /// A record as a store reads it back.
    pub fn new(
        hash: TokenHash,
        family_id: String,
        parent: Option<TokenHash>,
        generation: u32,
        created_at: i64,
        status: TokenStatus,
    ) -> Self {
        Self {
            hash,
            family_id,
            parent,
            generation,
            created_at,
            status,
        }
    }
}

/// One rotation request, with every decision rule already turned into a
/// number by [`RefreshTokens`](super::RefreshTokens).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotation {
    /// The hash of the presented token.
    pub presented: TokenHash,
    /// The hash of the token to issue in its place.
    pub child: TokenHash,
    /// The current time, in Unix seconds.
    pub now: i64,
    /// A family whose `last_used_at` is before this is idle-expired.
    pub idle_cutoff: i64,
    /// A rotated token whose rotation time is at or after this may be
    /// retried (the grace window); `None` when grace is off.
    pub grace_cutoff: Option<i64>,
}

impl Rotation {
    /// A rotation request (for store tests).
    pub fn new(
        presented: TokenHash,
        child: TokenHash,
        now: i64,
        idle_cutoff: i64,
        grace_cutoff: Option<i64>,
    ) -> Self {
        Self {
            presented,
            child,
            now,
            idle_cutoff,
            grace_cutoff,
        }
    }
}

/// Why [`RefreshStore::rotate`] refused a presented refresh token without
/// changing anything: the reason carried by [`RotateOutcome::Invalid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidReason {
    /// No token has this hash.
    Unknown,
    /// The token or its family was revoked.
    Revoked,
    /// The family outlived its absolute or idle lifetime.
    Expired,
}

/// What [`RefreshStore::rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateOutcome {
    /// The presented token was active: it is now rotated and the child
    /// stored as the family's newest token. Carries the updated family.
    Rotated(Family),
    /// The presented token was the immediate predecessor of the newest
    /// generation, rotated within the grace window: the child was stored as a
    /// sibling of the newest token(s). Carries the updated family.
    Grace(Family),
    /// The presented token was already rotated (and no grace applied): the
    /// whole family is now revoked. Carries the revoked family.
    Reused(Family),
    /// Nothing was changed.
    Invalid(InvalidReason),
}

/// A store failure: unreachable, timed out, corrupt data.
///
/// Never mistaken for reuse: the endpoint answers 503 and nothing is revoked.
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

/// Where refresh-token families live: implement it for your database.
///
/// The store holds [`Family`] and [`TokenRecord`] rows and carries out two
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
    /// Stores a new family and its first token (generation 0, active).
    async fn create(&self, family: &Family, token: &TokenRecord) -> Result<(), StoreError>;

    /// Rotates a token, as one atomic step. With `t` the token of hash
    /// `rotation.presented` and `f` its family:
    ///
    /// 1. No `t`: `Invalid(Unknown)`.
    /// 2. `f.revoked` or `t` is `Revoked`: `Invalid(Revoked)`.
    /// 3. `f.expires_at <= now` or `f.last_used_at < idle_cutoff`: `Invalid(Expired)`.
    /// 4. `t` is `Active` and `t.generation == f.generation` (it is the
    ///    newest): mark it `Rotated(now)`; store the child
    ///    (`parent` = `t`, generation `t.generation + 1`, created `now`,
    ///    `Active`); set `f.generation` to the child's and `f.last_used_at` to
    ///    `now`: `Rotated(f)`.
    /// 5. `t` is `Rotated(at)`, `grace_cutoff` is `Some(c)`, `at >= c` and
    ///    `t.generation + 1 == f.generation`: store the child as in 4 (a
    ///    sibling of the newest token), set `f.last_used_at` to `now`: `Grace(f)`.
    /// 6. Otherwise (`t` was rotated before, or is a stale sibling that a
    ///    grace retry left active after the family moved on): revoke the family (set
    ///    `f.revoked`; a family's tokens are dead once it is): `Reused(f)`.
    ///
    /// Under any concurrency, at most one call may see `t` as `Active`.
    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError>;

    /// The token of hash `hash`, whatever its state; `None` if unknown.
    async fn token(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError>;

    /// The token of hash `hash` and its family; `None` if either is unknown.
    ///
    /// [`RefreshTokens::refresh`](super::RefreshTokens::refresh) reads this
    /// before rotating, so that a failure of the user lookup or of signing
    /// spends nothing. The default calls [`token`](Self::token) then
    /// [`family`](Self::family); override it to answer in one round trip.
    async fn lookup(&self, hash: &TokenHash) -> Result<Option<(TokenRecord, Family)>, StoreError> {
        let Some(token) = self.token(hash).await? else {
            return Ok(None);
        };
        Ok(self
            .family(&token.family_id)
            .await?
            .map(|family| (token, family)))
    }

    /// The family `id`, revoked or not; `None` if unknown (or purged).
    async fn family(&self, id: &str) -> Result<Option<Family>, StoreError>;

    /// Revokes one family (and so all its tokens); `false` if it was unknown.
    async fn revoke_family(&self, id: &str) -> Result<bool, StoreError>;

    /// Revokes every family of `user_id`; returns how many were active.
    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError>;

    /// The families of `user_id` that are not revoked and not expired at
    /// `now` (by `expires_at` only), oldest first.
    async fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<Family>, StoreError>;

    /// Deletes families (and their tokens) that expired before `now` or are
    /// revoked and were last used before `revoked_before`; returns how many.
    async fn purge(&self, now: i64, revoked_before: i64) -> Result<u64, StoreError>;
}
