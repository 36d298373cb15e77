//! The PostgreSQL store's announcements of ended sessions (the logout
//! broadcast).
//!
//! A trigger on `tjwt_families` (schema version 6) stamps `revoked_at` and
//! calls `pg_notify` with the session id whenever `revoked` goes from false
//! to true, whichever statement did it; the notification is delivered on
//! commit. The channel is `tjwt_ended_channel(schema)` of the tables'
//! schema (`tjwt_ended_` and 12 hex digits). A subscription is a
//! [`PgListener`] on a connection of its own (the store's connect options,
//! or [`PostgresStore::listener`]'s), held for as long as the subscription
//! lives.
//!
//! A connection that dies without a word (a half-open TCP connection after
//! a NAT or load balancer dropped the flow, a host gone in a failover, a
//! `LISTEN` through PgBouncer in transaction mode, which never hears
//! anything) makes no read fail: every [`HEARTBEAT_EVERY`] the subscription
//! sends `pg_notify(channel, 'tjwt:heartbeat:<nonce>')` through the pool and
//! expects that nonce back on its own connection within
//! [`HEARTBEAT_TIMEOUT`]; when it does not come, the subscription fails, and
//! the broadcast falls back to lookups, subscribes again and resyncs.

use std::time::Duration;

use async_trait::async_trait;
use rand::RngCore;
use sqlx::{
    PgPool,
    postgres::{PgListener, PgNotification, PgPoolOptions},
};
use tokio::time::Instant;

use super::{ACQUIRE_TIMEOUT, PostgresStore, error};
use crate::refresh::store::{EndedSession, EndedSessions, SessionEvents, StoreError};

/// How often a subscription tests its whole path by default: a
/// notification sent through the pool must come back on the `LISTEN`
/// connection (see [`PostgresStore::heartbeat`]).
pub(super) const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How long a heartbeat may take to come back by default.
pub(super) const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a subscription sends a heartbeat, and how long it waits for it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Heartbeat {
    pub(super) every: Duration,
    pub(super) timeout: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            every: HEARTBEAT_EVERY,
            timeout: HEARTBEAT_TIMEOUT,
        }
    }
}

#[async_trait]
impl SessionEvents for PostgresStore {
    async fn subscribe(&self) -> Result<Box<dyn EndedSessions>, StoreError> {
        let subscribe = async {
            // The channel of the schema where this pool finds the tables.
            let channel: Option<String> = sqlx::query_scalar(
                "SELECT tjwt_ended_channel(n.nspname)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.oid = to_regclass('tjwt_families')",
            )
            .fetch_one(&self.pool)
            .await?;
            let Some(channel) = channel else {
                return Err(sqlx::Error::Protocol(
                    "no tjwt_families table: call PostgresStore::migrate".into(),
                ));
            };
            // A pool of its own, of one connection: a listener dropped on a
            // dead connection (its `UNLISTEN` then hangs until TCP gives up)
            // never holds one of the store's connections.
            let options = self
                .listener
                .clone()
                .unwrap_or_else(|| (*self.pool.connect_options()).clone());
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_lazy_with(options);
            let mut listener = PgListener::connect_with(&pool).await?;
            // A lost connection is reported (Ok(None)) and the subscription
            // dropped; the broadcast subscribes again and resynchronizes.
            listener.eager_reconnect(false);
            listener.listen(&channel).await?;
            Ok((listener, channel))
        };
        let (listener, channel) = tokio::time::timeout(ACQUIRE_TIMEOUT, subscribe)
            .await
            .map_err(|_| StoreError::new("postgres: subscribing timed out"))?
            .map_err(error("cannot subscribe"))?;
        Ok(Box::new(PgSubscription {
            listener,
            pool: self.pool.clone(),
            channel,
            heartbeat: self.heartbeat,
            // The first heartbeat one period from now.
            next_beat: Instant::now() + self.heartbeat.every,
            awaiting: None,
        }))
    }

    async fn recently_ended(&self, within: Duration) -> Result<Vec<EndedSession>, StoreError> {
        let within = i64::try_from(within.as_secs()).unwrap_or(i64::MAX);
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "WITH now AS (SELECT floor(extract(epoch FROM clock_timestamp()))::bigint AS t)
             SELECT id, greatest(now.t - revoked_at, 0) FROM tjwt_families, now
             WHERE revoked_at IS NOT NULL AND revoked_at >= now.t - $1",
        )
        .bind(within)
        .fetch_all(&self.pool)
        .await
        .map_err(error("reading the ended sessions failed"))?;
        Ok(rows
            .into_iter()
            .map(|(id, age)| EndedSession {
                id,
                age: Duration::from_secs(u64::try_from(age).unwrap_or(0)),
            })
            .collect())
    }

    /// Unbounded: a revoked session stays until
    /// [`purge`](crate::refresh::store::RefreshStore::purge) deletes it, and
    /// [`RefreshTokens::purge`](crate::refresh::RefreshTokens::purge) only
    /// deletes revoked sessions idle for longer than the idle timeout (whose
    /// access tokens expired long before).
    fn ended_retention(&self) -> Duration {
        Duration::MAX
    }
}

/// What a heartbeat notification's payload starts with: `:` is not a
/// base64url character, so no heartbeat is ever taken for a session id.
const HEARTBEAT_MARKER: &str = "tjwt:heartbeat:";

/// A `LISTEN` on the ended channel, tested by heartbeats.
#[derive(Debug)]
struct PgSubscription {
    listener: PgListener,
    pool: PgPool,
    channel: String,
    heartbeat: Heartbeat,
    /// When the next heartbeat is sent.
    next_beat: Instant,
    /// The payload of the heartbeat in flight, and when it must be back.
    awaiting: Option<(String, Instant)>,
}

/// What woke [`PgSubscription::next`].
enum Wake {
    Received(Result<Option<PgNotification>, sqlx::Error>),
    Timer,
}

impl PgSubscription {
    /// Sends a heartbeat through the pool: a notification on the channel
    /// that this subscription must receive within the timeout.
    async fn beat(&mut self) -> Result<(), StoreError> {
        let sent = Instant::now();
        let payload = format!("{HEARTBEAT_MARKER}{:016x}", rand::rng().next_u64());
        tokio::time::timeout(
            self.heartbeat.timeout,
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&self.channel)
                .bind(&payload)
                .execute(&self.pool),
        )
        .await
        .map_err(|_| StoreError::new("postgres: sending the subscription's heartbeat timed out"))?
        .map_err(error("sending the subscription's heartbeat failed"))?;
        self.awaiting = Some((payload, sent + self.heartbeat.timeout));
        Ok(())
    }
}

#[async_trait]
impl EndedSessions for PgSubscription {
    async fn next(&mut self) -> Result<String, StoreError> {
        loop {
            let wake_at = self
                .awaiting
                .as_ref()
                .map_or(self.next_beat, |(_, deadline)| *deadline);
            let wake = tokio::select! {
                // Cancel-safe: sqlx reads a message whole or keeps its bytes.
                received = self.listener.try_recv() => Wake::Received(received),
                () = tokio::time::sleep_until(wake_at) => Wake::Timer,
            };
            let notification = match wake {
                Wake::Timer if self.awaiting.is_some() => {
                    return Err(StoreError::new(format!(
                        "postgres: the subscription's heartbeat did not come back within {:?}",
                        self.heartbeat.timeout
                    )));
                }
                Wake::Timer => {
                    self.beat().await?;
                    continue;
                }
                Wake::Received(Ok(Some(notification))) => notification,
                Wake::Received(Ok(None)) => {
                    return Err(StoreError::new(
                        "postgres: the subscription's connection was lost",
                    ));
                }
                Wake::Received(Err(e)) => return Err(error("the subscription failed")(e)),
            };
            let payload = notification.payload();
            if payload.starts_with(HEARTBEAT_MARKER) {
                // Ours comes back: the whole path works. Others' (another
                // server's subscription on the same channel) are skipped.
                if self
                    .awaiting
                    .as_ref()
                    .is_some_and(|(sent, _)| sent == payload)
                {
                    self.awaiting = None;
                    self.next_beat = Instant::now() + self.heartbeat.every;
                }
                continue;
            }
            // Anyone who can connect can NOTIFY: the broadcast skips what is
            // no session id (`broadcast::is_session_id`), never fatal.
            return Ok(payload.to_owned());
        }
    }
}
