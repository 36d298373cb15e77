//! The logout broadcast: a session check answered from memory.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, OnceLock, RwLock, RwLockReadGuard, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::watch,
    task::AbortHandle,
    time::{Instant, MissedTickBehavior},
};

use super::{
    RefreshTokens,
    session::{ended, is_base64url, no_session},
    store::{EndedSession, SessionEvents},
};
use crate::{
    Claims, ConfigError,
    auth::Checked,
    metrics::{self, Broadcast},
};

/// What the window adds to the access-token lifetime by default: the
/// verifier's default leeway (30 s), clock skew, and the one-second
/// resolution of the stores' timestamps.
const DEFAULT_SLACK: Duration = Duration::from_secs(60);
/// The first wait before subscribing again after a failure; it doubles up to
/// [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts to subscribe.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How many ended sessions the set holds at most by default.
const DEFAULT_MAX_ENTRIES: usize = 1_000_000;
/// The longest announced id taken; the crate's session ids have 22
/// characters.
const MAX_ID_LEN: usize = 64;

/// Whether an announced `id` looks like a session id: 1 to 64 base64url
/// characters. Anything else (a forged or damaged announcement) is skipped.
pub(crate) fn is_session_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && is_base64url(id.as_bytes())
}

/// Ends access tokens with their sessions on every server, answering each
/// request from memory (feature `broadcast`, which the `redis` and
/// `postgres` features bring along).
///
/// [`RefreshTokens::session_check`] costs one store round trip per request.
/// A `SessionBroadcast` keeps, in this process, the set of sessions that
/// ended (logout, logout everywhere, reuse detected, the session cap) within
/// the last access-token lifetime, fed by the store's announcements
/// ([`SessionEvents`]: Redis pub/sub, PostgreSQL `LISTEN/NOTIFY`). Its
/// [`check`](Self::check) rejects an access token whose `sid` is in the set,
/// with the same 401 as `session_check` (`invalid_token`, "the session has
/// ended"), and one without `sid` as `session_check` does.
///
/// # Synced, or lookups
///
/// A background task subscribes to the announcements, *then* reads the
/// sessions that ended within the window ([`SessionEvents::recently_ended`]),
/// and only then is the broadcast *synced*: from there on, every session
/// that ends reaches the set as soon as the store announces it (on a
/// loopback store, within a millisecond or two).
///
/// Until then, and whenever the subscription is lost (a dropped connection,
/// a store restart, a ping unanswered) until it is back and resynchronized,
/// the check **falls back to the store lookup of `session_check`**: it
/// neither lets every token through (failing open would revive logged-out
/// sessions during an outage of the pub/sub connection alone) nor refuses
/// every token (failing closed would log everyone out whenever the
/// subscription blinks). When the store itself is down, the lookups fail
/// with 503, as `session_check` does. Between the moment a connection dies
/// and the moment the task notices (at once for a closed connection; within
/// about seven seconds for a silent one: Redis pings, PostgreSQL sends
/// itself a heartbeat notification, see `PostgresStore::heartbeat`), a
/// session that ends is missed until the resync.
///
/// # What it checks, and what it leaves out
///
/// The set holds each ended session for the *window*: the access-token
/// lifetime of the issuer ([`TokenIssuer::default_ttl`](crate::TokenIssuer::default_ttl))
/// plus a minute (see [`SessionBroadcastBuilder::window`]). After that
/// every access token of the session has expired, since an ended session
/// mints no new ones; the set so stays as small as the sessions that end
/// within one access-token lifetime, and never grows past
/// [`max_entries`](SessionBroadcastBuilder::max_entries).
///
/// **The rule: window ≥ the longest lifetime of any access token carrying a
/// `sid` + the verifier's [`leeway`](crate::VerifierBuilder::leeway).** The
/// default covers tokens of the issuer's default lifetime and a leeway of up
/// to about a minute (the verifier's default is 30 s). The broadcast cannot
/// see the verifier nor tokens minted with
/// [`expires_in`](crate::AccessTokenBuilder::expires_in): with a leeway
/// above 60 s, or tokens with a `sid` living longer than the default
/// lifetime, set [`window`](SessionBroadcastBuilder::window) yourself, or a
/// token of an ended session is accepted again once its `sid` left the set.
///
/// # Who can announce
///
/// The broadcast believes every announcement: whoever can publish on the
/// channel can force 401s on any session whose id they know (each access
/// token carries its `sid`), a denial of service. On Redis, allow `PUBLISH`
/// on the `{prefix}ended` channel to the store's user alone (an ACL such as
/// `resetchannels &{prefix}ended` for it, and no `allchannels` for others).
/// On PostgreSQL, `NOTIFY` takes no privilege: any role that can connect
/// to the database can announce on the channel. Announcements that are not
/// 1 to 64 base64url characters are skipped, and an announcement flood
/// cannot grow the set past `max_entries` (the broadcast falls back to
/// lookups instead).
///
/// Unlike `session_check`, a synced broadcast does not look at a session's
/// idle or absolute expiry, nor compare its user with the token's `sub`:
///
/// - the pairing of `sid` and `sub` is the issuer's, which signed both from
///   the session's own record;
/// - idle expiry cannot outlive an access token: every token is minted at
///   login or refresh, which is when the session was last used, so a
///   session idle for longer than the idle timeout (days) holds only tokens
///   expired long ago (as long as the access-token lifetime is shorter);
/// - absolute expiry: a token minted just before its session's end of life
///   lives on for its own lifetime (minutes), as it would without any
///   session check.
///
/// Nor does it hear of a session that is *deleted* without being revoked
/// first (a manual `DELETE FROM tjwt_families ...`, a script removing a
/// user's Redis keys): only endings are announced. The store's own
/// [`purge`](RefreshTokens::purge) deletes only sessions that expired or were
/// revoked long ago, so this is about manual deletes: revoke a session (for
/// instance with [`RefreshTokens::logout_all`]) before deleting it. A Redis
/// store for a broadcast must run with `maxmemory-policy noeviction`, or an
/// evicted record of ended sessions goes unheard by resyncs.
///
/// ```no_run
/// # #[cfg(feature = "redis")]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use tower_jwt_auth::{
///     Algorithm, JwtAuthLayer, SigningKey, TokenIssuer, VerificationKey, Verifier,
///     refresh::{RedisStore, RefreshTokens, SessionBroadcast},
/// };
///
/// let secret = b"a secret of at least thirty-two bytes!";
/// let store = Arc::new(RedisStore::new("redis://127.0.0.1:6379/").await?);
/// let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, secret)?);
/// let tokens = RefreshTokens::new(store.clone(), issuer);
/// // Within a Tokio runtime: the broadcast runs a task of its own.
/// let broadcast = SessionBroadcast::builder(tokens, store).start()?;
/// let verifier = Verifier::builder().key(VerificationKey::hmac(secret)?).build()?;
/// let layer = JwtAuthLayer::<serde_json::Value>::builder(verifier)
///     .check(broadcast.check())
///     .build()?;
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SessionBroadcast {
    shared: Arc<Shared>,
}

/// What the broadcast's handles and checks share; the task holds it weakly
/// and is aborted when the last of them goes.
struct Shared {
    tokens: RefreshTokens,
    window: Duration,
    synced: AtomicBool,
    /// `synced` for those who wait for it.
    state: watch::Sender<bool>,
    ended: RwLock<Ended>,
    max_entries: usize,
    tasks: OnceLock<[AbortHandle; 2]>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in self.tasks.get().into_iter().flatten() {
            task.abort();
        }
    }
}

impl fmt::Debug for SessionBroadcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBroadcast")
            .field("window", &self.shared.window)
            .field("synced", &self.is_synced())
            .field("ended", &self.len())
            .finish_non_exhaustive()
    }
}

/// Configures a [`SessionBroadcast`]; made by [`SessionBroadcast::builder`].
#[must_use]
pub struct SessionBroadcastBuilder {
    tokens: RefreshTokens,
    events: Arc<dyn SessionEvents>,
    window: Option<Duration>,
    max_entries: usize,
}

impl fmt::Debug for SessionBroadcastBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBroadcastBuilder")
            .field("events", &self.events)
            .field("window", &self.window)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl SessionBroadcast {
    /// A broadcast for the sessions of `tokens`, fed by `events`: the same
    /// store as `tokens`' (hand over the store's `Arc` twice).
    pub fn builder(
        tokens: RefreshTokens,
        events: Arc<dyn SessionEvents>,
    ) -> SessionBroadcastBuilder {
        SessionBroadcastBuilder {
            tokens,
            events,
            window: None,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }

    /// A check for [`JwtAuthLayerBuilder::check`](crate::JwtAuthLayerBuilder::check):
    /// like [`RefreshTokens::session_check`], but answered from memory while
    /// the broadcast is synced, and by the store lookup otherwise (see the
    /// [type docs](Self)).
    ///
    /// While synced it answers [`Checked::Ready`]: the request waits for
    /// nothing and allocates nothing for the check.
    pub fn check<C>(&self) -> impl Fn(&Claims<C>) -> Checked + Send + Sync + 'static {
        let shared = Arc::clone(&self.shared);
        move |claims: &Claims<C>| {
            // Read where the verifier found it: no parse, no allocation.
            let Some(sid) = claims.session_id() else {
                return Checked::Ready(Err(no_session()));
            };
            if shared.synced.load(Ordering::Acquire) {
                return Checked::Ready(if shared.read().contains(sid) {
                    Err(ended())
                } else {
                    Ok(())
                });
            }
            let tokens = shared.tokens.clone();
            let sid = sid.to_owned();
            let sub = claims.subject().map(str::to_owned);
            Checked::Pending(Box::pin(async move {
                tokens.check_session(&sid, sub.as_deref()).await
            }))
        }
    }

    /// Whether the check answers from memory now (subscribed and
    /// resynchronized), rather than by store lookups.
    pub fn is_synced(&self) -> bool {
        self.shared.synced.load(Ordering::Acquire)
    }

    /// Waits until the broadcast is synced (at once if it is).
    pub async fn synced(&self) {
        let mut state = self.shared.state.subscribe();
        // The sender lives as long as `self`: this cannot fail.
        let _ = state.wait_for(|synced| *synced).await;
    }

    /// How many ended sessions the set holds.
    pub fn len(&self) -> usize {
        self.shared.read().expiry.len()
    }

    /// Whether the set holds no ended session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long an ended session stays in the set.
    pub fn window(&self) -> Duration {
        self.shared.window
    }
}

impl SessionBroadcastBuilder {
    /// How long an ended session stays in the set: at least the longest
    /// lifetime of an access token carrying a `sid` of these sessions (the
    /// issuer's default, or longer with
    /// [`expires_in`](crate::AccessTokenBuilder::expires_in)) plus the
    /// verifier's [`leeway`](crate::VerifierBuilder::leeway). Default: the
    /// issuer's [`default_ttl`](crate::TokenIssuer::default_ttl) plus a
    /// minute, which covers the default 30 s leeway; a leeway above 60 s or
    /// longer-lived tokens need a longer window.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = Some(window);
        self
    }

    /// How many ended sessions the set holds at most (default 1,000,000,
    /// about 100 MB). Past it, the broadcast neither grows nor forgets: it
    /// falls back to store lookups (correct, slower) until enough entries
    /// expired for a resync to fit. Only a flood of announcements (forged,
    /// see [who can announce](SessionBroadcast#who-can-announce)) or far more
    /// sessions ending per window than planned gets there. Zero is refused
    /// by [`start`](Self::start).
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Starts the broadcast's background task (subscribe, resync, listen;
    /// again after every loss) and returns the broadcast, not yet synced:
    /// its check answers by store lookups until it is
    /// ([`SessionBroadcast::synced`] waits for that).
    ///
    /// Fails outside a Tokio runtime, or when the window is longer than the
    /// store keeps ended sessions ([`SessionEvents::ended_retention`]).
    pub fn start(self) -> Result<SessionBroadcast, ConfigError> {
        let window = self.window.unwrap_or_else(|| {
            self.tokens
                .issuer()
                .default_ttl()
                .saturating_add(DEFAULT_SLACK)
        });
        let retention = self.events.ended_retention();
        if window > retention {
            return Err(ConfigError::new(format!(
                "the broadcast's window ({window:?}) is longer than the store keeps ended \
                 sessions ({retention:?})"
            )));
        }
        if window.is_zero() {
            return Err(ConfigError::new("the broadcast's window must not be zero"));
        }
        if self.max_entries == 0 {
            return Err(ConfigError::new(
                "the broadcast's max_entries must not be zero",
            ));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            ConfigError::with_source("the logout broadcast must start within a Tokio runtime", e)
        })?;
        let (state, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            tokens: self.tokens,
            window,
            synced: AtomicBool::new(false),
            state,
            ended: RwLock::new(Ended::default()),
            max_entries: self.max_entries,
            tasks: OnceLock::new(),
        });
        // The tasks hold the broadcast weakly: dropping its last handle (and
        // every check made from it) aborts them.
        let weak = Arc::downgrade(&shared);
        let listen = runtime.spawn(listen(weak.clone(), self.events));
        let prune = runtime.spawn(prune(weak, prune_every(window)));
        let _ = shared
            .tasks
            .set([listen.abort_handle(), prune.abort_handle()]);
        Ok(SessionBroadcast { shared })
    }
}

impl Shared {
    fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::Release);
        self.state.send_replace(synced);
    }

    // A poisoned lock only means a panic elsewhere; the map is still whole.
    fn with_ended<T>(&self, f: impl FnOnce(&mut Ended) -> T) -> T {
        let mut set = self.ended.write().unwrap_or_else(|e| e.into_inner());
        f(&mut set)
    }

    fn read(&self) -> RwLockReadGuard<'_, Ended> {
        self.ended.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// How often expired entries are dropped: an eighth of the window, between
/// one and thirty seconds.
fn prune_every(window: Duration) -> Duration {
    (window / 8).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// The ended sessions, each with the instant it may be forgotten.
#[derive(Debug, Default)]
struct Ended {
    expiry: HashMap<Box<str>, Instant>,
}

impl Ended {
    fn contains(&self, sid: &str) -> bool {
        self.expiry.contains_key(sid)
    }

    /// Adds `sid` until `until` (keeping the later of two); `false`, and
    /// nothing added, when a new `sid` would take the set past `max`.
    fn insert(&mut self, sid: &str, until: Instant, max: usize) -> bool {
        let full = self.expiry.len() >= max;
        match self.expiry.get_mut(sid) {
            Some(at) => *at = (*at).max(until),
            None if full => return false,
            None => {
                self.expiry.insert(sid.into(), until);
            }
        }
        true
    }

    /// Adds what a resync read: each session for what is left of its
    /// window; `false` when the set is full (what it holds is then
    /// incomplete: the broadcast must not sync).
    fn insert_recent(
        &mut self,
        ended: &[EndedSession],
        now: Instant,
        window: Duration,
        max: usize,
    ) -> bool {
        self.prune(now);
        for session in ended {
            if !is_session_id(&session.id) {
                continue;
            }
            // A session that ended a whole window ago has no live token left.
            if let Some(left) = window
                .checked_sub(session.age)
                .filter(|left| !left.is_zero())
                && !self.insert(&session.id, now + left, max)
            {
                return false;
            }
        }
        true
    }

    /// Forgets the sessions whose window is over at `now`.
    fn prune(&mut self, now: Instant) {
        self.expiry.retain(|_, until| *until > now);
    }
}

/// The background task: subscribe, resync, listen; on any failure, fall
/// back to lookups and start again after a growing pause.
async fn listen(shared: Weak<Shared>, events: Arc<dyn SessionEvents>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut subscription = match events.subscribe().await {
            Ok(subscription) => subscription,
            Err(error) => {
                metrics::broadcast(Broadcast::Failed);
                tracing::warn!(%error, retry_in = ?backoff, "logout broadcast: cannot subscribe; checking sessions by store lookups");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let Some(window) = shared.upgrade().map(|shared| shared.window) else {
            return;
        };
        // Subscribed first: whatever ends from now on is announced, so the
        // read below misses nothing.
        match events.recently_ended(window).await {
            Ok(ended) => {
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let max = shared.max_entries;
                if !shared.with_ended(|set| set.insert_recent(&ended, Instant::now(), window, max))
                {
                    metrics::broadcast(Broadcast::Failed);
                    tracing::warn!(max_entries = max, retry_in = ?backoff, "logout broadcast: the set is full; checking sessions by store lookups");
                    drop((subscription, shared));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                shared.set_synced(true);
                metrics::broadcast(Broadcast::Synced);
                tracing::info!(
                    ended = ended.len(),
                    "logout broadcast: synced; checking sessions in memory"
                );
                backoff = MIN_BACKOFF;
            }
            Err(error) => {
                metrics::broadcast(Broadcast::Failed);
                tracing::warn!(%error, retry_in = ?backoff, "logout broadcast: cannot resync; checking sessions by store lookups");
                drop(subscription);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        }
        loop {
            let next = subscription.next().await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            match next {
                Ok(sid) if !is_session_id(&sid) => {
                    tracing::warn!(
                        len = sid.len(),
                        "logout broadcast: skipped a malformed announcement"
                    );
                }
                Ok(sid) => {
                    let until = Instant::now() + shared.window;
                    let max = shared.max_entries;
                    if !shared.with_ended(|set| set.insert(&sid, until, max)) {
                        // Neither grow nor forget: lookups until a resync fits.
                        shared.set_synced(false);
                        metrics::broadcast(Broadcast::Lost);
                        tracing::warn!(max_entries = max, retry_in = ?backoff, "logout broadcast: the set is full; checking sessions by store lookups");
                        drop((subscription, shared));
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        break;
                    }
                }
                Err(error) => {
                    shared.set_synced(false);
                    metrics::broadcast(Broadcast::Lost);
                    tracing::warn!(%error, "logout broadcast: subscription lost; checking sessions by store lookups until resynced");
                    break;
                }
            }
        }
    }
}

/// The other background task: forgets sessions whose window is over.
async fn prune(shared: Weak<Shared>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.with_ended(|set| set.prune(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{Ended, EndedSession, is_session_id, prune_every};

    const MAX: usize = usize::MAX;

    #[test]
    fn entries_last_their_window_then_go() {
        let start = Instant::now();
        let window = Duration::from_secs(900);
        let mut set = Ended::default();
        set.insert("a", start + window, MAX);
        set.insert("b", start + Duration::from_secs(10) + window, MAX);
        set.prune(start + window - Duration::from_secs(1));
        assert!(set.contains("a") && set.contains("b"));
        set.prune(start + window);
        assert!(!set.contains("a"), "a's window is over");
        assert!(set.contains("b"));
        set.prune(start + window + Duration::from_secs(10));
        assert!(set.expiry.is_empty());
    }

    #[test]
    fn a_resync_keeps_what_is_left_of_each_window() {
        let now = Instant::now();
        let window = Duration::from_secs(900);
        let mut set = Ended::default();
        let ended = |id: &str, age: u64| EndedSession {
            id: id.into(),
            age: Duration::from_secs(age),
        };
        set.insert_recent(
            &[
                ended("fresh", 0),
                ended("old", 800),
                ended("gone", 900),
                ended("older", 5_000),
            ],
            now,
            window,
            MAX,
        );
        assert_eq!(
            set.expiry.len(),
            2,
            "only sessions within the window: {set:?}"
        );
        assert_eq!(set.expiry["fresh"], now + window);
        assert_eq!(set.expiry["old"], now + Duration::from_secs(100));
        // A later announcement of the same session extends it, never shortens.
        set.insert("old", now + Duration::from_secs(50), MAX);
        assert_eq!(set.expiry["old"], now + Duration::from_secs(100));
    }

    #[test]
    fn the_set_stays_bounded_by_what_ends_within_a_window() {
        let start = Instant::now();
        let window = Duration::from_secs(60);
        let every = prune_every(window);
        let mut set = Ended::default();
        let mut largest = 0;
        // One session ends every second for ten windows, pruned on schedule.
        for second in 0..600u64 {
            let now = start + Duration::from_secs(second);
            set.insert(&format!("s-{second}"), now + window, MAX);
            if second % every.as_secs() == 0 {
                set.prune(now);
            }
            largest = largest.max(set.expiry.len());
        }
        let bound = (window + every).as_secs() as usize + 1;
        assert!(largest <= bound, "{largest} entries, bound {bound}");
        assert!(largest >= window.as_secs() as usize);
    }

    #[test]
    fn only_session_id_shaped_announcements_are_taken() {
        assert!(is_session_id("AAAAAAAAAAAAAAAAAAAAAA"));
        assert!(is_session_id("a-_Z9"));
        assert!(is_session_id(&"a".repeat(64)));
        for bad in [
            String::new(),
            "a".repeat(65),
            "tjwt:heartbeat:00ff".to_owned(),
            "a b".to_owned(),
            "a+b/c=".to_owned(),
            "é".to_owned(),
            "a\0".to_owned(),
        ] {
            assert!(!is_session_id(&bad), "{bad:?}");
        }
    }

    #[test]
    fn a_full_set_neither_grows_nor_forgets() {
        let now = Instant::now();
        let window = Duration::from_secs(60);
        let mut set = Ended::default();
        assert!(set.insert("a", now + window, 2));
        assert!(set.insert("b", now + window, 2));
        assert!(!set.insert("c", now + window, 2), "full");
        assert!(set.contains("a") && set.contains("b") && !set.contains("c"));
        // An id already held is still extended.
        assert!(set.insert("a", now + window * 2, 2));
        assert_eq!(set.expiry["a"], now + window * 2);
        // A resync that does not fit says so; one that fits once the
        // expired entries are pruned does.
        let ended = |id: &str| EndedSession {
            id: id.into(),
            age: Duration::from_secs(1),
        };
        assert!(!set.insert_recent(&[ended("c")], now, window, 2));
        assert!(set.insert_recent(&[ended("c")], now + window, window, 2));
        assert!(set.contains("c") && set.contains("a") && !set.contains("b"));
        // Malformed ids read back are skipped, not counted.
        assert!(set.insert_recent(&[ended("x y"), ended("")], now + window, window, 2));
        assert_eq!(set.expiry.len(), 2);
    }
}
