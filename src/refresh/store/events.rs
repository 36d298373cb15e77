//! What a store tells the logout broadcast: the sessions that end.

use std::{fmt, time::Duration};

use async_trait::async_trait;

use super::StoreError;

/// A store that announces the sessions that end, so that every server can
/// keep them in memory ([`SessionBroadcast`](crate::refresh::SessionBroadcast),
/// feature `broadcast`).
///
/// A session *ends* when its `revoked` flag goes from false to true: logout,
/// logout everywhere, reuse detection (step 7 of
/// [`rotate`](super::RefreshStore::rotate)), or the session cap of
/// [`create`](super::RefreshStore::create). Every such change must, in the
/// same atomic step as the change itself:
///
/// 1. announce the session id to every live subscription
///    ([`subscribe`](Self::subscribe)), and
/// 2. record it, with the time it ended by the store's own clock, where
///    [`recently_ended`](Self::recently_ended) finds it for at least
///    [`ended_retention`](Self::ended_retention).
///
/// An announcement may arrive more than once; it must never be lost while a
/// subscription reports no error. A subscription that may have missed one
/// (a dropped connection) fails, and the broadcast subscribes again and
/// resynchronizes from `recently_ended`.
///
/// [`RedisStore`](crate::refresh::RedisStore) (a pub/sub channel and a
/// sorted set) and [`PostgresStore`](crate::refresh::PostgresStore)
/// (`LISTEN/NOTIFY` from a trigger, and a `revoked_at` column) implement it.
#[async_trait]
pub trait SessionEvents: Send + Sync + fmt::Debug + 'static {
    /// Starts a subscription to the sessions that end from now on. Returns
    /// once the subscription is active: every session that ends after this
    /// returns is announced to it.
    async fn subscribe(&self) -> Result<Box<dyn EndedSessions>, StoreError>;

    /// The sessions that ended within `within` of now (the store's now), each
    /// once, in any order: what a new subscription may have missed.
    async fn recently_ended(&self, within: Duration) -> Result<Vec<EndedSession>, StoreError>;

    /// How long [`recently_ended`](Self::recently_ended) can see back: a
    /// broadcast refuses a window longer than this.
    fn ended_retention(&self) -> Duration;
}

/// A live subscription of [`SessionEvents::subscribe`].
#[async_trait]
pub trait EndedSessions: Send + fmt::Debug {
    /// The id of the next session that ends, waiting for one.
    ///
    /// An error means the subscription is lost and announcements may have
    /// been missed: drop it, [`subscribe`](SessionEvents::subscribe) again,
    /// then read [`recently_ended`](SessionEvents::recently_ended).
    async fn next(&mut self) -> Result<String, StoreError>;
}

/// A session that ended, as [`SessionEvents::recently_ended`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    /// The session id (an access token's `sid`).
    pub id: String,
    /// How long ago it ended, by the store's clock (so clock skew between
    /// servers and the store does not matter).
    pub age: Duration,
}
