//! The PostgreSQL store's announcements of ended sessions (the logout
//! broadcast).
//!
//! A trigger on `tjwt_families` (schema version 6) stamps `revoked_at` and
//! calls `pg_notify` with the session id whenever `revoked` goes from false
//! to true, whichever statement did it; the notification is delivered on
//! commit. The channel is `tjwt_ended_channel(schema)` of the tables'
//! schema (`tjwt_ended_` and 12 hex digits). A subscription is a
//! [`PgListener`] on a connection of the store's pool, held for as long as
//! the subscription lives.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgListener;

use super::{ACQUIRE_TIMEOUT, PostgresStore, error};
use crate::refresh::store::{EndedSession, EndedSessions, SessionEvents, StoreError};

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
            let mut listener = PgListener::connect_with(&self.pool).await?;
            // A lost connection is reported (Ok(None)) and the subscription
            // dropped; the broadcast subscribes again and resynchronizes.
            listener.eager_reconnect(false);
            listener.listen(&channel).await?;
            Ok(listener)
        };
        let listener = tokio::time::timeout(ACQUIRE_TIMEOUT, subscribe)
            .await
            .map_err(|_| StoreError::new("postgres: subscribing timed out"))?
            .map_err(error("cannot subscribe"))?;
        Ok(Box::new(PgSubscription { listener }))
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

/// A `LISTEN` on the ended channel.
#[derive(Debug)]
struct PgSubscription {
    listener: PgListener,
}

#[async_trait]
impl EndedSessions for PgSubscription {
    async fn next(&mut self) -> Result<String, StoreError> {
        match self.listener.try_recv().await {
            Ok(Some(notification)) => Ok(notification.payload().to_owned()),
            Ok(None) => Err(StoreError::new(
                "postgres: the subscription's connection was lost",
            )),
            Err(e) => Err(error("the subscription failed")(e)),
        }
    }
}
