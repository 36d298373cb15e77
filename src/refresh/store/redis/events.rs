//! The Redis store's announcements of ended sessions (the logout broadcast).
//!
//! Every script that revokes a session calls `ended(base, id)` (from
//! `ended.lua`), which in the same atomic step adds the id to its tag's
//! sorted set `{prefix}{tag}ended` (scored by the Redis time it ended,
//! trimmed to a day; in the slot of the script's other keys) and `PUBLISH`es
//! it on the one channel `{prefix}ended`. A subscription is a dedicated
//! pub/sub connection ([`redis::Client::get_async_pubsub`]) that
//! `SUBSCRIBE`s to that channel and pings it every few seconds, so that a
//! connection that died silently fails too. A resync reads the 4096 tags'
//! sorted sets, 32 at a time.
//!
//! On Redis Cluster the same holds: `PUBLISH` names no key, so a script may
//! call it whatever its slot, and the node that runs it forwards the message
//! over the cluster bus to every node; one subscription on any node hears
//! every tag. The subscription tries the cluster's nodes in turn, so a dead
//! node costs one failed attempt. Sharded pub/sub (`SPUBLISH` on a channel
//! per tag) would keep the messages off the bus, but a subscriber would have
//! to `SSUBSCRIBE` to 4096 channels on their owners and follow every
//! resharding and failover (Redis ends shard subscriptions when a slot
//! moves); logouts are rare, so the bus's fan-out costs less than that.

use std::{future::poll_fn, sync::LazyLock, time::Duration};

use async_trait::async_trait;
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use redis::{
    Client, RedisResult, Script,
    aio::{PubSub, PubSubSink, PubSubStream},
};

use super::{RedisStore, TAG_CONCURRENCY, TIMEOUT, all_tags, error};
use crate::refresh::store::{EndedSession, EndedSessions, SessionEvents, StoreError};

/// How long `{prefix}{tag}ended` keeps an ended session: the `86400` of `ended.lua`.
const ENDED_RETENTION: Duration = Duration::from_secs(86_400);
/// How often a quiet subscription pings Redis to prove it is alive.
const PING_EVERY: Duration = Duration::from_secs(5);

/// The sessions that ended within a window. KEYS, ARGV and reply: see `recently_ended.lua`.
static RECENTLY_ENDED: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("recently_ended.lua")));

impl RedisStore {
    /// The channel that announces ended sessions: `{prefix}ended`.
    fn ended_channel(&self) -> String {
        format!("{}ended", self.prefix)
    }

    /// The sorted set of the recently ended sessions of `tag`: `{prefix}{tag}ended`.
    fn ended_key(&self, tag: &str) -> String {
        format!("{}ended", self.base(tag))
    }

    /// The recently ended sessions of `tag`, with their age by the Redis
    /// time of the node that holds them.
    async fn recently_ended_of(
        &self,
        tag: &str,
        within: Duration,
    ) -> Result<Vec<EndedSession>, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Vec<String> = RECENTLY_ENDED
            .key(self.ended_key(tag))
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
}

/// Starts listening for ended sessions on `pubsub`: the one place that names
/// the channel and the subscribe command (a plain `SUBSCRIBE`, on Redis
/// Cluster too: see the module docs).
async fn listen(pubsub: &mut PubSub, store: &RedisStore) -> RedisResult<()> {
    pubsub.subscribe(store.ended_channel()).await
}

/// A pub/sub connection through `client`, listening, within the timeout.
async fn subscribe_through(client: &Client, store: &RedisStore) -> Result<PubSub, StoreError> {
    let subscribe = async {
        let mut pubsub = client.get_async_pubsub().await?;
        listen(&mut pubsub, store).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    tokio::time::timeout(TIMEOUT, subscribe)
        .await
        .map_err(|_| StoreError::new("redis: subscribing timed out"))?
        .map_err(error("cannot subscribe"))
}

#[async_trait]
impl SessionEvents for RedisStore {
    async fn subscribe(&self) -> Result<Box<dyn EndedSessions>, StoreError> {
        // One client for a single Redis; one per node of a cluster, where any
        // node hears every announcement: the first that answers.
        let mut last = StoreError::new(
            "redis: no client to subscribe with (a store from a connection \
             needs RedisStore::with_pubsub_client)",
        );
        let mut subscribed = None;
        for client in &self.pubsub {
            match subscribe_through(client, self).await {
                Ok(pubsub) => {
                    subscribed = Some(pubsub);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let pubsub = subscribed.ok_or(last)?;
        let (sink, stream) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: the subscription was just confirmed.
        ping.reset();
        Ok(Box::new(RedisSubscription { sink, stream, ping }))
    }

    async fn recently_ended(&self, within: Duration) -> Result<Vec<EndedSession>, StoreError> {
        // Each tag has its own sorted set (one slot each on a cluster).
        stream::iter(all_tags())
            .map(|tag| async move { self.recently_ended_of(&tag, within).await })
            .buffer_unordered(TAG_CONCURRENCY)
            .try_fold(Vec::new(), |mut all, ended| async move {
                all.extend(ended);
                Ok(all)
            })
            .await
    }

    fn ended_retention(&self) -> Duration {
        ENDED_RETENTION
    }
}

/// A pub/sub connection subscribed to the channel `{prefix}ended`.
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
