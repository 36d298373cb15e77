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
//!
//! Anyone allowed to `PUBLISH` on the channel can announce anything: a
//! payload, and an id read back by a resync, counts only if it has the
//! shape of a session id (22 base64url characters, what
//! `Session::new_id` makes); anything else is skipped (logged at debug
//! level with a count, never its value), and the subscription carries on.

use std::{future::poll_fn, sync::LazyLock, time::Duration};

use async_trait::async_trait;
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use redis::{
    Client, RedisResult, Script,
    aio::{PubSub, PubSubSink, PubSubStream},
};

use super::{RedisStore, TAG_CONCURRENCY, TIMEOUT, all_tags, error};
use crate::refresh::{
    session::{SESSION_ID_LEN, is_base64url},
    store::{EndedSession, EndedSessions, SessionEvents, StoreError},
};

/// How long `{prefix}{tag}ended` keeps an ended session: the `86400` of `ended.lua`.
const ENDED_RETENTION: Duration = Duration::from_secs(86_400);
/// How often a quiet subscription pings Redis to prove it is alive.
const PING_EVERY: Duration = Duration::from_secs(5);

/// The sessions that ended within a window. KEYS, ARGV and reply: see `recently_ended.lua`.
static RECENTLY_ENDED: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("recently_ended.lua")));

/// Whether `id` has the shape of a session id: [`SESSION_ID_LEN`]
/// base64url characters. Announcements and resynced ids of any other shape
/// are not the store's (a forged `PUBLISH`, a damaged key) and are skipped.
pub(super) fn is_session_id(id: &[u8]) -> bool {
    id.len() == SESSION_ID_LEN && is_base64url(id)
}

impl RedisStore {
    /// The channel that announces ended sessions: `{prefix}ended`.
    pub(super) fn ended_channel(&self) -> String {
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
        // Bytes: a member that is not UTF-8 is skipped, not an error.
        let reply: Vec<Vec<u8>> = RECENTLY_ENDED
            .key(self.ended_key(tag))
            .arg(within.as_secs())
            .invoke_async(&mut conn)
            .await
            .map_err(error("reading the ended sessions failed"))?;
        let corrupt = || StoreError::new("redis: corrupt ended sessions");
        let seconds = |bytes: &[u8]| -> Result<u64, StoreError> {
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(corrupt)
        };
        let (now, rest) = reply.split_first().ok_or_else(corrupt)?;
        let now = seconds(now)?;
        let mut ended = Vec::with_capacity(rest.len() / 2);
        let mut skipped = 0u64;
        for pair in rest.chunks_exact(2) {
            if !is_session_id(&pair[0]) {
                skipped += 1;
                continue;
            }
            let at = seconds(&pair[1])?;
            ended.push(EndedSession {
                // ASCII, checked above.
                id: String::from_utf8_lossy(&pair[0]).into_owned(),
                age: Duration::from_secs(now.saturating_sub(at)),
            });
        }
        if skipped > 0 {
            tracing::debug!(
                skipped,
                "redis: skipped ended-session entries that are no session id"
            );
        }
        Ok(ended)
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
        Ok(Box::new(RedisSubscription {
            sink,
            stream,
            ping,
            skipped: 0,
        }))
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
    /// How many announcements were skipped as no session id.
    skipped: u64,
}

impl std::fmt::Debug for RedisSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSubscription")
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
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
                    let payload = message.get_payload_bytes();
                    if is_session_id(payload) {
                        // ASCII, checked above.
                        return Ok(String::from_utf8_lossy(payload).into_owned());
                    }
                    self.skipped += 1;
                    tracing::debug!(
                        skipped = self.skipped,
                        "redis: skipped an ended-session announcement that is no session id"
                    );
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

#[cfg(test)]
mod tests {
    use super::is_session_id;
    use crate::refresh::Session;

    #[test]
    fn only_the_shape_of_a_session_id_counts() {
        for user in ["user-1", "", "ünïcode"] {
            assert!(is_session_id(Session::new_id(user).as_bytes()));
        }
        assert!(is_session_id(b"AAAAAAAAAAAAAAAAAAAAA-"));
        for forged in [
            &b""[..],
            b"AAAAAAAAAAAAAAAAAAAAA",
            b"AAAAAAAAAAAAAAAAAAAAAAA",
            b"AAAAAAAAAAAAAAAAAAAAA=",
            b"AAAAAAAAAAAAAAAAAAAAA/",
            b"AAAAAAAAAAAAAAAAAAAA\xc3\xa9",
            b"AAAAAAAAAAAAAAAAAAAAA\xff",
        ] {
            assert!(!is_session_id(forged), "{forged:?}");
        }
    }
}
