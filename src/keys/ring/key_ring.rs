//! The key ring: which key signs now, which are published, and the rotation
//! that every instance agrees on through the store.

use std::{
    error::Error as StdError,
    fmt,
    sync::{Arc, Weak},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;
use serde::Serialize;

use super::{
    generate,
    store::{KeyRingStore, KeyRingStoreError, MemoryKeyRingStore, StoredKey},
};
use crate::{
    error::{AuthError, ConfigError},
    keys::{Algorithm, KeySet, KeyType, SigningKey, jwk::PublicJwk},
};

/// The default time a key signs before the next one takes over: 30 days.
pub const DEFAULT_ROTATION_PERIOD: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The default (and longest default) interval at which an instance reloads
/// the ring from the store: one minute, or a quarter of the rotation period
/// if that is shorter.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(60);
/// The name of a ring in its store unless [`KeyRingBuilder::name`] says otherwise.
pub const DEFAULT_RING_NAME: &str = "default";

/// How often a write that lost a compare-and-swap is planned again before
/// giving up: each loss means another instance wrote, which is rare.
const MAX_ATTEMPTS: usize = 5;

/// The issuer's signing keys, rotated on a schedule that every instance
/// shares through a [`KeyRingStore`] (feature `key-ring`). Cheap to clone:
/// clones share the keys.
///
/// A ring holds a few asymmetric keys of one algorithm, each named by its
/// RFC 7638 thumbprint (the `kid` of the tokens it signs):
///
/// - the **active** key signs: the newest key whose activation time has come;
/// - the **next** key is published (in the JWK Set) at least half a rotation
///   period before it signs, so verifiers that cache the JWK Set know it
///   before its first token;
/// - a **retired** key stays published until its last token has expired:
///   [`max_token_ttl`](KeyRingBuilder::max_token_ttl) plus
///   [`leeway`](KeyRingBuilder::leeway) plus the
///   [`sync_interval`](KeyRingBuilder::sync_interval) after the next key took
///   over (an instance may sign with it until it next syncs).
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::{Algorithm, TokenIssuer, Verifier, keys::ring::KeyRing};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // In memory here; a RedisKeyRingStore or PostgresKeyRingStore shares
/// // the ring between instances.
/// let ring = KeyRing::builder(Algorithm::ES256)
///     .rotation_period(Duration::from_secs(7 * 24 * 3600))
///     .max_token_ttl(Duration::from_secs(900))
///     .build()
///     .await?;
/// let issuer = TokenIssuer::with_key_ring(ring.clone()).issuer("https://auth.example.com");
/// let token = issuer.access_token("user-1").sign()?;
///
/// // The service itself verifies with the ring's published keys; other
/// // services fetch them from the JWKS endpoint (see JwksService).
/// let verifier = Verifier::builder()
///     .key_ring(ring.clone())
///     .issuer("https://auth.example.com")
///     .build()?;
/// verifier.verify::<serde_json::Value>(token.as_str())?;
///
/// assert!(ring.rotate().await?); // at once, instead of on schedule
/// let newer = issuer.access_token("user-1").sign()?;
/// verifier.verify::<serde_json::Value>(token.as_str())?; // still valid
/// verifier.verify::<serde_json::Value>(newer.as_str())?;
/// # Ok(())
/// # }
/// ```
///
/// # Sharing between instances
///
/// All the state is in the store, as one document under the ring's
/// [`name`](KeyRingBuilder::name); each instance holds a copy, reloaded every
/// [`sync_interval`](KeyRingBuilder::sync_interval) by a background task (and
/// by [`sync`](Self::sync)). Activation times are absolute, so every instance
/// switches to the next key at the same moment by its own clock, without
/// talking to the others. Making a key, activating one early
/// ([`rotate`](Self::rotate)) and dropping an expired one are writes of the
/// whole document by compare-and-swap: when several instances try at once,
/// one write wins and the others reload and find the work done. No instance
/// ever rotates twice for one period.
///
/// # When the store is down
///
/// Nothing stops. Each instance keeps signing and publishing the keys it
/// has; the next key, already known, still takes over on time. No new key
/// can be made and none dropped until the store is back, so the newest key
/// keeps signing past its period, and stays published everywhere. A failed
/// sync is logged (`tracing` warning) and retried at the next interval.
///
/// An instance that alone cannot reach the store (while the others can)
/// follows the shared schedule as long as its copy reaches: at least half a
/// rotation period. Past that it may sign with a key the others have
/// retired, then dropped: watch for the warning.
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn KeyRingStore>,
    name: String,
    algorithm: Algorithm,
    schedule: Schedule,
    max_token_ttl: Duration,
    sync_interval: Duration,
    snapshot: ArcSwap<Snapshot>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.inner.snapshot.load();
        f.debug_struct("KeyRing")
            .field("name", &self.inner.name)
            .field("store", &self.inner.store)
            .field("algorithm", &self.inner.algorithm)
            .field("version", &snapshot.version)
            .field(
                "kids",
                &snapshot
                    .keys
                    .iter()
                    .map(|k| &k.stored.kid)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The times that decide the keys, in seconds.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// How long a key signs.
    period: i64,
    /// How long a key stays published after the next one took over.
    retention: i64,
}

/// One key of the ring, ready to sign and to verify.
struct LoadedKey {
    stored: StoredKey,
    signing: SigningKey,
    public: PublicJwk,
}

/// What an instance holds of the ring: its keys by activation, the keys that
/// verify, and the JWK Set document, all built once per version.
struct Snapshot {
    version: u64,
    keys: Vec<LoadedKey>,
    verify: KeySet,
    jwks: String,
}

impl Snapshot {
    /// The key that signs at `now`: the newest one activated, or else the
    /// first one (a clock behind the instance that made it).
    fn active(&self, now: i64) -> &LoadedKey {
        self.keys
            .iter()
            .rev()
            .find(|key| key.stored.activates_at <= now)
            .unwrap_or(&self.keys[0])
    }
}

/// Builds a [`KeyRing`]; see [`KeyRing::builder`].
#[must_use]
pub struct KeyRingBuilder {
    algorithm: Algorithm,
    store: Option<Arc<dyn KeyRingStore>>,
    name: String,
    rotation_period: Duration,
    max_token_ttl: Duration,
    leeway: Duration,
    sync_interval: Option<Duration>,
}

impl fmt::Debug for KeyRingBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRingBuilder")
            .field("algorithm", &self.algorithm)
            .field("store", &self.store)
            .field("name", &self.name)
            .field("rotation_period", &self.rotation_period)
            .field("max_token_ttl", &self.max_token_ttl)
            .field("leeway", &self.leeway)
            .field("sync_interval", &self.sync_interval)
            .finish()
    }
}

/// The state of a published key; see [`KeyRing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyStatus {
    /// Published, not signing yet.
    Next,
    /// Signing.
    Active,
    /// Published until its last token has expired, not signing.
    Retired,
}

/// One key the ring publishes, as [`KeyRing::keys`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    kid: String,
    algorithm: Algorithm,
    status: KeyStatus,
    activates_at: i64,
}

impl PublishedKey {
    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm the key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether it signs, will sign, or did.
    pub fn status(&self) -> KeyStatus {
        self.status
    }

    /// When it signs (or signed) first, in Unix seconds.
    pub fn activates_at(&self) -> i64 {
        self.activates_at
    }
}

/// Why a key ring could not be built, synced or rotated.
///
/// Its [`Display`](fmt::Display) is the message only; the cause (a
/// [`ConfigError`], a [`KeyRingStoreError`]...) is its
/// [`source`](StdError::source).
#[derive(Debug)]
pub struct KeyRingError {
    kind: KeyRingErrorKind,
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

/// What went wrong with a key ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyRingErrorKind {
    /// The builder's settings are invalid.
    Config,
    /// The store failed (unreachable, timed out, corrupt document).
    Store,
    /// A key of the store cannot be used (not the ring's algorithm, not a
    /// valid private key, a `kid` that is not its thumbprint), or a new key
    /// could not be made.
    Key,
    /// Other instances kept writing the ring between this one's load and
    /// write, more times than it retries.
    Contention,
}

impl KeyRingError {
    fn new(kind: KeyRingErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    fn with_source(
        kind: KeyRingErrorKind,
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    fn config(error: ConfigError) -> Self {
        Self::with_source(KeyRingErrorKind::Config, "invalid key ring settings", error)
    }

    fn key(error: ConfigError) -> Self {
        Self::with_source(KeyRingErrorKind::Key, "unusable key ring key", error)
    }

    fn store(error: KeyRingStoreError) -> Self {
        Self::with_source(KeyRingErrorKind::Store, "key ring store failed", error)
    }

    /// What went wrong.
    pub fn kind(&self) -> KeyRingErrorKind {
        self.kind
    }
}

impl fmt::Display for KeyRingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for KeyRingError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl KeyRing {
    /// A builder for a ring of `algorithm` keys (`ES256`, `ES384`, `EdDSA`,
    /// `RS256`...`PS512` with 2048-bit keys), in memory unless
    /// [`store`](KeyRingBuilder::store) says otherwise, rotated every 30 days,
    /// for tokens of at most 15 minutes.
    pub fn builder(algorithm: Algorithm) -> KeyRingBuilder {
        KeyRingBuilder {
            algorithm,
            store: None,
            name: DEFAULT_RING_NAME.to_owned(),
            rotation_period: DEFAULT_ROTATION_PERIOD,
            max_token_ttl: crate::DEFAULT_ACCESS_TOKEN_TTL,
            leeway: crate::DEFAULT_LEEWAY,
            sync_interval: None,
        }
    }

    /// The algorithm of the ring's keys.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.algorithm
    }

    /// How long each key signs.
    pub fn rotation_period(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.inner.schedule.period).unwrap_or(u64::MAX))
    }

    /// The longest lifetime of a token signed with the ring: a
    /// [`TokenIssuer`](crate::TokenIssuer) on the ring refuses longer ones,
    /// since retired keys are published only that long.
    pub fn max_token_ttl(&self) -> Duration {
        self.inner.max_token_ttl
    }

    /// The key that signs now, with its `kid`.
    pub fn signing_key(&self) -> SigningKey {
        self.inner.snapshot.load().active(now()).signing.clone()
    }

    /// The `kid` of the key that signs now.
    pub fn active_kid(&self) -> String {
        self.inner.snapshot.load().active(now()).stored.kid.clone()
    }

    /// The published keys, in order of activation, as this instance last
    /// synced them.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, keys::ring::{KeyRing, KeyStatus}};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_jwt_auth::keys::ring::KeyRingError> {
    /// let ring = KeyRing::builder(Algorithm::EdDSA).build().await?;
    /// let statuses: Vec<KeyStatus> = ring.keys().iter().map(|k| k.status()).collect();
    /// assert_eq!(statuses, [KeyStatus::Active, KeyStatus::Next]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn keys(&self) -> Vec<PublishedKey> {
        let snapshot = self.inner.snapshot.load();
        let now = now();
        let active = &snapshot.active(now).stored.kid;
        let mut seen_active = false;
        snapshot
            .keys
            .iter()
            .map(|key| {
                let status = if &key.stored.kid == active {
                    seen_active = true;
                    KeyStatus::Active
                } else if seen_active {
                    KeyStatus::Next
                } else {
                    KeyStatus::Retired
                };
                PublishedKey {
                    kid: key.stored.kid.clone(),
                    algorithm: key.stored.algorithm,
                    status,
                    activates_at: key.stored.activates_at,
                }
            })
            .collect()
    }

    /// The JWK Set of the published keys (RFC 7517 section 5): public
    /// members only (`kty`, `crv`, `x`, `y`, `n`, `e`), with `kid`, `alg` and
    /// `use: "sig"`. [`JwksService`](crate::JwksService) serves it.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, JwkSet, keys::ring::KeyRing};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let ring = KeyRing::builder(Algorithm::ES256).build().await?;
    /// let set = JwkSet::from_json(ring.jwks())?;
    /// assert_eq!(set.keys().len(), 2); // the active key and the next one
    /// assert!(!ring.jwks().contains(r#""d""#));
    /// # Ok(())
    /// # }
    /// ```
    pub fn jwks(&self) -> String {
        self.inner.snapshot.load().jwks.clone()
    }

    /// Reloads the ring from the store, and does what is due: makes the next
    /// key once the previous next key has started signing, drops keys whose
    /// tokens have all expired. The background task calls it every
    /// [`sync_interval`](KeyRingBuilder::sync_interval); a failure leaves the
    /// keys this instance has in use.
    pub async fn sync(&self) -> Result<(), KeyRingError> {
        self.update(|_, _| Edit::Maintain).await.map(drop)
    }

    /// Rotates at once: the key that signs now (as this instance knows the
    /// ring) retires, the next key (published since it was made) starts
    /// signing, and a new next key is made. Returns whether this call
    /// rotated.
    ///
    /// The rotation is a compare-and-swap on the active key: when several
    /// instances rotate at once, the ring rotates once, and the others
    /// return `false` with the rotated ring taken in. So does a call that
    /// finds the ring already rotated past the key this instance had as
    /// active. Other instances switch when they next sync; until then they
    /// sign with the retired key, which stays published long enough.
    pub async fn rotate(&self) -> Result<bool, KeyRingError> {
        let retiring = self.active_kid();
        let edit = self
            .update(move |keys, now| {
                if active_kid(keys, now).as_deref() == Some(retiring.as_str()) {
                    Edit::Rotate
                } else {
                    Edit::Maintain
                }
            })
            .await?;
        Ok(edit == Edit::Rotate)
    }

    /// Loads, edits and writes the ring by compare-and-swap until a write
    /// succeeds or nothing is left to write; then takes the result in.
    async fn update(
        &self,
        mut decide: impl FnMut(&[StoredKey], i64) -> Edit,
    ) -> Result<Edit, KeyRingError> {
        let inner = &self.inner;
        for _ in 0..MAX_ATTEMPTS {
            let loaded = inner
                .store
                .load(&inner.name)
                .await
                .map_err(KeyRingError::store)?;
            let (version, mut keys) = match loaded {
                Some(ring) => (Some(ring.version), ring.keys),
                None => (None, Vec::new()),
            };
            sort(&mut keys);
            let now = now();
            let edit = decide(&keys, now);
            let changed = inner.edit(&mut keys, now, edit).await?;
            if !changed {
                if let Some(version) = version {
                    inner.take(version, keys)?;
                }
                return Ok(edit);
            }
            match inner
                .store
                .compare_and_swap(&inner.name, version, &keys)
                .await
                .map_err(KeyRingError::store)?
            {
                Some(version) => {
                    inner.take(version, keys)?;
                    return Ok(edit);
                }
                None => {
                    tracing::debug!(ring = %inner.name, "another instance wrote the key ring first; reloading");
                }
            }
        }
        Err(KeyRingError::new(
            KeyRingErrorKind::Contention,
            format!(
                "the key ring {:?} changed under every one of {MAX_ATTEMPTS} writes",
                inner.name
            ),
        ))
    }

    /// Verifies with the published keys; returns their generation.
    pub(crate) fn verify(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        message: &str,
        signature: &str,
    ) -> Result<u64, AuthError> {
        self.inner
            .snapshot
            .load()
            .verify
            .verify(kid, alg, message, signature)
    }

    /// The generation of the published keys (the stored version).
    pub(crate) fn generation(&self) -> u64 {
        self.inner.snapshot.load().verify.generation()
    }

    /// Reloads in the background until the last clone is dropped.
    fn spawn_sync(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let delay = match weak.upgrade() {
                    Some(inner) => inner.next_sync(now()),
                    None => return,
                };
                tokio::time::sleep(delay).await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let ring = KeyRing { inner };
                if let Err(error) = ring.sync().await {
                    tracing::warn!(
                        ring = %ring.inner.name,
                        error = %crate::error::Report(&error),
                        "key ring sync failed; signing on with the keys at hand"
                    );
                }
            }
        });
    }
}

/// What an update does to the loaded keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    /// Only what is due.
    Maintain,
    /// Activate the next key now, then what is due.
    Rotate,
}

/// Orders keys by activation. The sort is stable: keys activated in the same
/// second keep the order they were written in, which is the order they
/// took over (a rotation within the second the ring was made, say).
fn sort(keys: &mut [StoredKey]) {
    keys.sort_by_key(|key| key.activates_at);
}

/// The `kid` of the key that signs at `now`, if one does.
fn active_kid(keys: &[StoredKey], now: i64) -> Option<String> {
    keys.iter()
        .rev()
        .find(|key| key.activates_at <= now)
        .map(|key| key.kid.clone())
}

/// What is due at `now` for keys sorted by activation: the keys to keep, and
/// when a new key must activate, if one must be made. Pure, so that the
/// schedule is tested without clocks.
fn plan(keys: &[StoredKey], now: i64, schedule: Schedule) -> (Vec<StoredKey>, Option<i64>) {
    let mut keep = Vec::with_capacity(keys.len() + 1);
    for (index, key) in keys.iter().enumerate() {
        let superseded_at = keys.get(index + 1).map(|next| next.activates_at);
        let expired = superseded_at
            .is_some_and(|at| at <= now && at.saturating_add(schedule.retention) <= now);
        if !expired {
            keep.push(key.clone());
        }
    }
    let new_key_at = match keep.last() {
        // An empty ring: its first key signs at once (nobody verifies yet).
        None => Some(now),
        Some(last) if last.activates_at > now => None,
        // Published at least half a period before it signs.
        Some(last) => Some(
            last.activates_at
                .saturating_add(schedule.period)
                .max(now.saturating_add(schedule.period / 2)),
        ),
    };
    (keep, new_key_at)
}

/// Activates the first key that is not active yet at `now`; `false` if
/// there is none (a key must be made to activate).
fn activate_next(keys: &mut [StoredKey], now: i64) -> bool {
    match keys.iter_mut().find(|key| key.activates_at > now) {
        Some(next) => {
            next.activates_at = now;
            true
        }
        None => false,
    }
}

impl Inner {
    /// Applies `edit` and what is due to `keys`, making keys as needed;
    /// whether anything changed.
    async fn edit(
        &self,
        keys: &mut Vec<StoredKey>,
        now: i64,
        edit: Edit,
    ) -> Result<bool, KeyRingError> {
        let mut changed = false;
        if edit == Edit::Rotate {
            if !activate_next(keys, now) {
                keys.push(self.make_key(now, now).await?);
            }
            sort(keys);
            changed = true;
        }
        // Two rounds at most: an empty ring gets its active key, then its next.
        for _ in 0..2 {
            let (keep, new_key_at) = plan(keys, now, self.schedule);
            changed |= keep.len() != keys.len();
            *keys = keep;
            let Some(at) = new_key_at else {
                break;
            };
            keys.push(self.make_key(now, at).await?);
            sort(keys);
            changed = true;
        }
        Ok(changed)
    }

    /// A new key of the ring's algorithm, named by its thumbprint. RSA keys
    /// take a while to make: off the async threads.
    async fn make_key(&self, now: i64, activates_at: i64) -> Result<StoredKey, KeyRingError> {
        let algorithm = self.algorithm;
        let pem = tokio::task::spawn_blocking(move || generate::private_key_pem(algorithm))
            .await
            .map_err(|e| {
                KeyRingError::with_source(KeyRingErrorKind::Key, "key generation failed", e)
            })?
            .map_err(KeyRingError::key)?;
        let (_, public) = load_pem(algorithm, &pem).map_err(KeyRingError::key)?;
        let kid = public.thumbprint();
        tracing::info!(ring = %self.name, %kid, activates_at, "made a key ring key");
        Ok(StoredKey {
            kid,
            algorithm,
            private_key_pem: pem,
            created_at: now,
            activates_at,
        })
    }

    /// Takes in the keys of `version`, unless this instance has them already.
    fn take(&self, version: u64, keys: Vec<StoredKey>) -> Result<(), KeyRingError> {
        let current = self.snapshot.load();
        if current.version == version && !current.keys.is_empty() {
            return Ok(());
        }
        let mut loaded = Vec::with_capacity(keys.len());
        for stored in keys {
            // Keys this instance has parsed before are reused.
            if let Some(known) = current.keys.iter().find(|k| {
                k.stored.kid == stored.kid && k.stored.private_key_pem == stored.private_key_pem
            }) {
                loaded.push(LoadedKey {
                    stored,
                    signing: known.signing.clone(),
                    public: known.public.clone(),
                });
                continue;
            }
            loaded.push(self.load_key(stored)?);
        }
        let snapshot = build_snapshot(version, loaded)?;
        self.snapshot.store(Arc::new(snapshot));
        Ok(())
    }

    /// Parses a stored key and checks it: the ring's algorithm, and a `kid`
    /// that is the thumbprint of its public key.
    fn load_key(&self, stored: StoredKey) -> Result<LoadedKey, KeyRingError> {
        if stored.algorithm != self.algorithm {
            return Err(KeyRingError::new(
                KeyRingErrorKind::Key,
                format!(
                    "the key {:?} of the ring {:?} is for {}, not {}: one ring, one algorithm",
                    stored.kid, self.name, stored.algorithm, self.algorithm
                ),
            ));
        }
        let (signing, public) =
            load_pem(stored.algorithm, &stored.private_key_pem).map_err(KeyRingError::key)?;
        if public.thumbprint() != stored.kid {
            return Err(KeyRingError::new(
                KeyRingErrorKind::Key,
                format!(
                    "the key {:?} of the ring {:?} is not named by its thumbprint",
                    stored.kid, self.name
                ),
            ));
        }
        Ok(LoadedKey {
            signing: signing.with_kid(&stored.kid),
            public: public.with_kid(&stored.kid),
            stored,
        })
    }

    /// How long until the next sync: the sync interval, or just after the
    /// next key activates if that is sooner (so that its successor is made),
    /// with a little jitter so that instances do not all write at once.
    fn next_sync(&self, now: i64) -> Duration {
        let snapshot = self.snapshot.load();
        let mut delay = self.sync_interval;
        if let Some(next) = snapshot.keys.iter().find(|k| k.stored.activates_at > now) {
            let until = u64::try_from(next.stored.activates_at - now).unwrap_or(0) + 1;
            delay = delay.min(Duration::from_secs(until));
        }
        let jitter_ms = u64::try_from(delay.as_millis() / 10).unwrap_or(0);
        delay + Duration::from_millis(rand::random_range(0..=jitter_ms))
    }
}

/// A signing key and its public JWK from PKCS#8 PEM.
fn load_pem(algorithm: Algorithm, pem: &str) -> Result<(SigningKey, PublicJwk), ConfigError> {
    let signing = match algorithm.key_type() {
        KeyType::Ec => SigningKey::ec_pem(algorithm, pem)?,
        KeyType::Ed => SigningKey::ed_pem(pem)?,
        KeyType::Rsa => SigningKey::rsa_pem(algorithm, pem)?,
        KeyType::Hmac => {
            return Err(ConfigError::new("a key ring holds no symmetric keys"));
        }
    };
    let public = PublicJwk::of(&signing.key, algorithm)?;
    Ok((signing, public))
}

#[derive(Serialize)]
struct JwksDocument<'a> {
    keys: Vec<&'a PublicJwk>,
}

fn build_snapshot(version: u64, keys: Vec<LoadedKey>) -> Result<Snapshot, KeyRingError> {
    if keys.is_empty() {
        return Err(KeyRingError::new(
            KeyRingErrorKind::Store,
            "the stored key ring has no keys",
        ));
    }
    // The stored version is the generation: a verified-token cache drops
    // what older keys verified when the ring changes.
    let verify = KeySet::new(
        keys.iter()
            .map(|key| key.public.verification_key())
            .collect::<Result<Vec<_>, _>>()
            .map_err(KeyRingError::key)?,
    )
    .map_err(KeyRingError::key)?
    .with_generation(version);
    let jwks = serde_json::to_string(&JwksDocument {
        keys: keys.iter().map(|key| &key.public).collect(),
    })
    .expect("a JWK Set always serializes");
    Ok(Snapshot {
        version,
        keys,
        verify,
        jwks,
    })
}

impl KeyRingBuilder {
    /// Where the ring lives (default: a new [`MemoryKeyRingStore`], this
    /// instance alone). Instances that issue for one issuer share one store
    /// and one [`name`](Self::name).
    pub fn store(mut self, store: Arc<dyn KeyRingStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The ring's name in the store (default `default`): one ring per issuer.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How long each key signs (default 30 days). The next key is published
    /// at least half of it before it signs: keep it well above the interval
    /// at which verifiers refetch the JWK Set.
    pub fn rotation_period(mut self, period: Duration) -> Self {
        self.rotation_period = period;
        self
    }

    /// The longest lifetime of the tokens signed with the ring (default 15
    /// minutes): retired keys stay published that long, plus the leeway and
    /// the sync interval.
    pub fn max_token_ttl(mut self, ttl: Duration) -> Self {
        self.max_token_ttl = ttl;
        self
    }

    /// The clock skew verifiers tolerate for `exp` (default 30 s, the
    /// verifier's default): retired keys stay published that much longer.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How often each instance reloads the ring from the store (default one
    /// minute, or a quarter of the rotation period if shorter). At most a
    /// quarter of the rotation period, at least a second.
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = Some(interval);
        self
    }

    /// Checks the settings, loads the ring from the store (making its keys
    /// if it has none yet) and starts the background sync. Must be called
    /// within a Tokio runtime.
    ///
    /// Fails with [`KeyRingErrorKind::Config`] for invalid settings, and
    /// when the store cannot be reached or holds unusable keys.
    pub async fn build(self) -> Result<KeyRing, KeyRingError> {
        crate::keys::install_crypto_provider();
        let config = |message: &str| KeyRingError::config(ConfigError::new(message));
        if self.algorithm.key_type() == KeyType::Hmac {
            return Err(config(
                "a key ring publishes its public keys, so it needs an asymmetric algorithm \
                 (ES256, ES384, EdDSA, RS256...); HMAC secrets cannot be published",
            ));
        }
        if self.name.is_empty() {
            return Err(config("the key ring's name must not be empty"));
        }
        if self.rotation_period < Duration::from_secs(4) {
            return Err(config("the rotation period must be at least 4 seconds"));
        }
        if self.max_token_ttl.is_zero() {
            return Err(config("the maximum token lifetime must not be zero"));
        }
        let quarter = self.rotation_period / 4;
        let sync_interval = self
            .sync_interval
            .unwrap_or_else(|| DEFAULT_SYNC_INTERVAL.min(quarter));
        if sync_interval < Duration::from_secs(1) || sync_interval > quarter {
            return Err(config(
                "the sync interval must be at least a second and at most a quarter of the \
                 rotation period",
            ));
        }
        let retention = self
            .max_token_ttl
            .saturating_add(self.leeway)
            .saturating_add(sync_interval);
        let ring = KeyRing {
            inner: Arc::new(Inner {
                store: self
                    .store
                    .unwrap_or_else(|| Arc::new(MemoryKeyRingStore::new())),
                name: self.name,
                algorithm: self.algorithm,
                schedule: Schedule {
                    period: secs(self.rotation_period),
                    retention: secs(retention),
                },
                max_token_ttl: self.max_token_ttl,
                sync_interval,
                snapshot: ArcSwap::from_pointee(Snapshot {
                    version: 0,
                    keys: Vec::new(),
                    verify: KeySet::new(Vec::new()).map_err(KeyRingError::key)?,
                    jwks: String::new(),
                }),
            }),
        };
        ring.sync().await?;
        ring.spawn_sync();
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: Schedule = Schedule {
        period: 1000,
        retention: 100,
    };

    fn key(kid: &str, activates_at: i64) -> StoredKey {
        StoredKey {
            kid: kid.into(),
            algorithm: Algorithm::EdDSA,
            private_key_pem: String::new(),
            created_at: 0,
            activates_at,
        }
    }

    fn kids(keys: &[StoredKey]) -> Vec<&str> {
        keys.iter().map(|k| k.kid.as_str()).collect()
    }

    #[test]
    fn an_empty_ring_gets_a_key_at_once() {
        assert_eq!(plan(&[], 50, SCHEDULE), (vec![], Some(50)));
        // Then its next key, a period later.
        let (keep, at) = plan(&[key("a", 50)], 50, SCHEDULE);
        assert_eq!(kids(&keep), ["a"]);
        assert_eq!(at, Some(1050));
    }

    #[test]
    fn nothing_is_due_while_a_next_key_waits() {
        let keys = [key("a", 0), key("b", 1000)];
        assert_eq!(plan(&keys, 999, SCHEDULE), (keys.to_vec(), None));
    }

    #[test]
    fn a_successor_is_made_once_the_next_key_signs() {
        let keys = [key("a", 0), key("b", 1000)];
        let (keep, at) = plan(&keys, 1000, SCHEDULE);
        assert_eq!(kids(&keep), ["a", "b"]);
        assert_eq!(at, Some(2000));
        // Late (the instances were down): still half a period ahead.
        let (_, at) = plan(&keys, 1900, SCHEDULE);
        assert_eq!(at, Some(2400));
    }

    #[test]
    fn retired_keys_stay_published_for_the_retention() {
        let keys = [key("a", 0), key("b", 1000), key("c", 2000)];
        assert_eq!(kids(&plan(&keys, 1099, SCHEDULE).0), ["a", "b", "c"]);
        assert_eq!(kids(&plan(&keys, 1100, SCHEDULE).0), ["b", "c"]);
        // A future key never retires the one before it.
        let keys = [key("a", 0), key("b", 5000)];
        assert_eq!(kids(&plan(&keys, 4000, SCHEDULE).0), ["a", "b"]);
    }

    #[test]
    fn rotation_in_the_same_second_takes_over() {
        let mut keys = vec![key("b", 400), key("a", 1400)];
        assert!(activate_next(&mut keys, 400));
        sort(&mut keys);
        assert_eq!(active_kid(&keys, 400).as_deref(), Some("a"));
    }

    #[test]
    fn rotation_activates_the_published_next_key() {
        let mut keys = vec![key("a", 0), key("b", 1000)];
        assert!(activate_next(&mut keys, 400));
        assert_eq!(active_kid(&keys, 400).as_deref(), Some("b"));
        let (keep, at) = plan(&keys, 400, SCHEDULE);
        assert_eq!(kids(&keep), ["a", "b"]);
        assert_eq!(at, Some(1400));
        let mut only_active = vec![key("a", 0)];
        assert!(!activate_next(&mut only_active, 400));
    }
}
