//! The Redis store's announcements of ended sessions (the logout broadcast).
//!
//! Every script that revokes a session calls `ended(prefix, id)` (from
//! `ended.lua`), which in the same atomic step adds the id to the sorted set
//! `{prefix}ended` (scored by the Redis time it ended, trimmed to a day) and
//! `PUBLISH`es it on the channel `{prefix}ended`. A subscription is a
//! dedicated pub/sub connection ([`redis::Client::get_async_pubsub`]) that
//! `SUBSCRIBE`s to that channel and pings it every few seconds, so that a
//! connection that died silently fails too.

use std::{future::poll_fn, sync::LazyLock, time::Duration};

use async_trait::async_trait;
use futures_core::Stream;
use redis::{
    RedisResult, Script,
    aio::{PubSub, PubSubSink, PubSubStream},
};

use super::{RedisStore, TIMEOUT, error};
use crate::refresh::store::{EndedSession, EndedSessions, SessionEvents, StoreError};

/// How long `{prefix}ended` keeps an ended session: the `86400` of `ended.lua`.
const ENDED_RETENTION: Duration = Duration::from_secs(86_400);
/// How often a quiet subscription pings Redis to prove it is alive.
const PING_EVERY: Duration = Duration::from_secs(5);

/// The sessions that ended within a window. KEYS, ARGV and reply: see `recently_ended.lua`.
static RECENTLY_ENDED: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("recently_ended.lua")));

impl RedisStore {
    /// The sorted set of recently ended sessions, and the channel that
    /// announces them: `{prefix}ended` both.
    fn ended_key(&self) -> String {
        format!("{}ended", self.prefix)
    }
}

/// Starts listening for ended sessions on `pubsub`: the one place that names
/// the channels and the subscribe command. (On Redis Cluster this becomes
/// `SSUBSCRIBE` on each shard's channel.)
async fn listen(pubsub: &mut PubSub, store: &RedisStore) -> RedisResult<()> {
    pubsub.subscribe(store.ended_key()).await
}

#[async_trait]
impl SessionEvents for RedisStore {
    async fn subscribe(&self) -> Result<Box<dyn EndedSessions>, StoreError> {
        let client = self.client.as_ref().ok_or_else(|| {
            StoreError::new(
                "redis: no client to subscribe with (a store from a connection manager \
                 needs RedisStore::with_pubsub_client)",
            )
        })?;
        let subscribe = async {
            let mut pubsub = client.get_async_pubsub().await?;
            listen(&mut pubsub, self).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::time::timeout(TIMEOUT, subscribe)
            .await
            .map_err(|_| StoreError::new("redis: subscribing timed out"))?
            .map_err(error("cannot subscribe"))?;
        let (sink, stream) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: the subscription was just confirmed.
        ping.reset();
        Ok(Box::new(RedisSubscription { sink, stream, ping }))
    }

    async fn recently_ended(&self, within: Duration) -> Result<Vec<EndedSession>, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Vec<String> = RECENTLY_ENDED
            .key(self.ended_key())
            .arg(within.as_secs())
            .invoke_async(&mut conn)
            .await
            .map_err(error("reading the ended sessions failed"))?;
        let corrupt = || StoreError::new("redis: corrupt ended sessions");
        let (now, rest) = reply.split_first().ok_or_else(corrupt)?;
        let now: u64 = now.parse().map_err(|_| corrupt())?;
        rest.chunks_exact(2)
            .map(|pair| {
                let at: u64 = pair[1].parse().map_err(|_| corrupt())?;
                Ok(EndedSession {
                    id: pair[0].clone(),
                    age: Duration::from_secs(now.saturating_sub(at)),
                })
            })
            .collect()
    }

    fn ended_retention(&self) -> Duration {
        ENDED_RETENTION
    }
}

/// A pub/sub connection subscribed to `{prefix}ended`.
struct RedisSubscription {
    sink: PubSubSink,
    stream: PubSubStream,
    ping: tokio::time::Interval,
}

impl std::fmt::Debug for RedisSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSubscription").finish_non_exhaustive()
    }
}

#[async_trait]
impl EndedSessions for RedisSubscription {
    async fn next(&mut self) -> Result<String, StoreError> {
        loop {
            let stream = &mut self.stream;
            tokio::select! {
                message = poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)) => {
                    let Some(message) = message else {
                        return Err(StoreError::new("redis: the subscription's connection closed"));
                    };
                    return message
                        .get_payload::<String>()
                        .map_err(error("corrupt ended-session announcement"));
                }
                _ = self.ping.tick() => {
                    // A connection that died without a word answers no ping.
                    match tokio::time::timeout(TIMEOUT, self.sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(error("the subscription's ping failed")(e)),
                        Err(_) => return Err(StoreError::new("redis: the subscription's ping timed out")),
                    }
                }
            }
        }
    }
}
