//! The rotation protocol: issuing, rotating and revoking refresh tokens.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{
    Session,
    clock::{now, secs},
    error::{RefreshError, RefreshErrorKind},
    reuse::{ReuseEvent, ReuseHook},
    store::{
        InvalidReason, RefreshStore, RotateOutcome, Rotation, StoreError, TokenHash, TokenRecord,
        TokenStatus,
    },
    subject::Subject,
    token::{Hasher, RefreshToken, TokenPair, session_of},
};
use crate::{
    ConfigError, IssuedToken, TokenIssuer,
    dpop::DpopProof,
    metrics::{self, Refresh},
};

/// Issues token pairs and rotates refresh tokens over a [`RefreshStore`],
/// following RFC 9700 section 4.14: every refresh token is used once; a
/// reused one revokes its whole session.
///
/// ```
/// use std::sync::Arc;
/// use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer};
/// use tower_jwt_auth::refresh::{MemoryStore, RefreshTokens, Subject};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes!")?);
/// let tokens = RefreshTokens::new(Arc::new(MemoryStore::new()), issuer);
///
/// let login = tokens.login(Subject::new("user-1").role("USER"), Some("laptop")).await?;
/// let refreshed = tokens
///     .refresh(login.refresh_token.as_str(), |user_id| async move {
///         Ok(Some(Subject::new(user_id).role("USER")))
///     })
///     .await?;
/// // The first refresh token is spent: presenting it again revokes the session.
/// assert!(tokens.refresh(login.refresh_token.as_str(), |u| async move { Ok(Some(Subject::new(u))) }).await.is_err());
/// assert!(tokens.refresh(refreshed.refresh_token.as_str(), |u| async move { Ok(Some(Subject::new(u))) }).await.is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RefreshTokens {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn RefreshStore>,
    issuer: TokenIssuer,
    session_lifetime: Duration,
    idle_timeout: Duration,
    grace: Option<Duration>,
    retry_window: Duration,
    max_sessions: u32,
    hasher: Hasher,
    on_reuse: Option<Arc<ReuseHook>>,
}

impl fmt::Debug for RefreshTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokens")
            .field("store", &self.inner.store)
            .field("issuer", &self.inner.issuer)
            .field("session_lifetime", &self.inner.session_lifetime)
            .field("idle_timeout", &self.inner.idle_timeout)
            .field("grace", &self.inner.grace)
            .field("retry_window", &self.inner.retry_window)
            .field("max_sessions", &self.inner.max_sessions)
            .field("keyed_hash", &matches!(self.inner.hasher, Hasher::Hmac(_)))
            .field("on_reuse", &self.inner.on_reuse.is_some())
            .finish()
    }
}

/// Configures [`RefreshTokens`]; made by [`RefreshTokens::builder`].
#[must_use]
pub struct RefreshTokensBuilder {
    store: Arc<dyn RefreshStore>,
    issuer: TokenIssuer,
    session_lifetime: Duration,
    idle_timeout: Duration,
    grace: Option<Duration>,
    retry_window: Duration,
    max_sessions: u32,
    hash_key: Option<Vec<u8>>,
    on_reuse: Option<Arc<ReuseHook>>,
}

impl fmt::Debug for RefreshTokensBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokensBuilder")
            .field("store", &self.store)
            .field("issuer", &self.issuer)
            .field("session_lifetime", &self.session_lifetime)
            .field("idle_timeout", &self.idle_timeout)
            .field("grace", &self.grace)
            .field("retry_window", &self.retry_window)
            .field("max_sessions", &self.max_sessions)
            .field("keyed_hash", &self.hash_key.is_some())
            .field("on_reuse", &self.on_reuse.is_some())
            .finish()
    }
}

impl RefreshTokensBuilder {
    /// The absolute lifetime of a session (default 30 days).
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = lifetime;
        self
    }

    /// How long a session may go without a refresh (default 7 days).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// A grace window (default off): the immediate predecessor of the newest
    /// refresh token, presented again within `window` of its rotation, gets a
    /// fresh sibling pair instead of revoking the session, for clients that
    /// lost a response. Older tokens never get grace.
    pub fn grace_period(mut self, window: Duration) -> Self {
        self.grace = Some(window);
        self
    }

    /// How long a refresh token whose rotation *failed* may be retried
    /// (default [`DEFAULT_RETRY_WINDOW`], 60 s; [`Duration::ZERO`] turns it
    /// off).
    ///
    /// A store call can fail after the store did the work: a Redis busy past
    /// the client's response timeout still runs the queued rotation, a
    /// connection can drop after PostgreSQL committed. The client got a 503
    /// and retries the same token, which the store has spent: without more,
    /// that retry is reuse and revokes the session, though nothing leaked.
    /// So when a rotation fails, [`RefreshTokens::refresh`] gives the token a
    /// *retry permit* ([`RefreshStore::allow_retry`]) until `window` from
    /// then: one retry of it gets a sibling pair, like the grace window, and
    /// the permit is used up.
    ///
    /// Unlike a grace window, nothing changes for a token whose rotation
    /// answered: presenting it again is reuse at once. A thief replaying a
    /// spent token gains something only if a rotation of that very token
    /// failed within the window, and then gets at most one sibling pair:
    /// the first of the thief and the client to present the token uses the
    /// permit, and the other's attempt is reuse, which revokes the session.
    /// Never more than a grace window would give. A permit that cannot be recorded (the
    /// store fails that call too) is logged at `warn`; that retry is then
    /// reuse, as before. A refresh whose future is dropped mid-rotation (a
    /// timeout *around* the endpoint) records nothing: time limits belong on
    /// the store's client, which all three stores have.
    pub fn retry_window(mut self, window: Duration) -> Self {
        self.retry_window = window;
        self
    }

    /// How many sessions one user may have (default
    /// [`DEFAULT_MAX_SESSIONS`], 100): a login beyond it revokes the user's
    /// oldest sessions (by login time), so sessions per user stay bounded
    /// and so does every store operation over one user's sessions.
    ///
    /// At least 1; [`build`](Self::build) refuses 0.
    pub fn max_sessions(mut self, max: u32) -> Self {
        self.max_sessions = max;
        self
    }

    /// Calls `hook` on every detected reuse, after the session was revoked:
    /// for alerting, or to act on the leak (force a password reset, end the
    /// user's other sessions). The [`ReuseEvent`] names the session, user,
    /// device and generations.
    ///
    /// The hook runs inline, before [`refresh`](RefreshTokens::refresh)
    /// answers: keep it short, and hand slow work (I/O) to a task or a
    /// channel.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer};
    /// use tower_jwt_auth::refresh::{MemoryStore, RefreshTokens};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes!")?);
    /// let tokens = RefreshTokens::builder(Arc::new(MemoryStore::new()), issuer)
    ///     .on_reuse(|event| {
    ///         eprintln!(
    ///             "refresh token reuse: user {} session {} ({:?}), token generation {} of {}",
    ///             event.user_id, event.session_id, event.device, event.generation, event.newest_generation,
    ///         );
    ///     })
    ///     .build()?;
    /// # let _ = tokens;
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_reuse<F>(mut self, hook: F) -> Self
    where
        F: Fn(&ReuseEvent) + Send + Sync + 'static,
    {
        self.on_reuse = Some(Arc::new(hook));
        self
    }

    /// Hashes refresh tokens with HMAC-SHA-256 under `key` instead of plain
    /// SHA-256, so a stolen database cannot even confirm a guessed token.
    ///
    /// The key must be at least 32 bytes (the SHA-256 output size);
    /// [`build`](Self::build) refuses a shorter one.
    pub fn hash_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.hash_key = Some(key.as_ref().to_vec());
        self
    }

    /// The configured [`RefreshTokens`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] if the hash key is shorter than 32 bytes, or the
    /// session cap is 0.
    pub fn build(self) -> Result<RefreshTokens, ConfigError> {
        if self.max_sessions == 0 {
            return Err(ConfigError::new(
                "the session cap (max_sessions) must be at least 1",
            ));
        }
        let hasher = match self.hash_key {
            None => Hasher::Sha256,
            Some(key) if key.len() < 32 => {
                return Err(ConfigError::new(
                    "a refresh-token hash key must be at least 32 bytes",
                ));
            }
            Some(key) => Hasher::Hmac(
                Hmac::<Sha256>::new_from_slice(&key)
                    .map_err(|e| ConfigError::with_source("invalid hash key", e))?,
            ),
        };
        Ok(RefreshTokens {
            inner: Arc::new(Inner {
                store: self.store,
                issuer: self.issuer,
                session_lifetime: self.session_lifetime,
                idle_timeout: self.idle_timeout,
                grace: self.grace,
                retry_window: self.retry_window,
                max_sessions: self.max_sessions,
                hasher,
                on_reuse: self.on_reuse,
            }),
        })
    }
}

/// The default absolute lifetime of a session: 30 days.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// The default idle lifetime of a session: 7 days without a refresh.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// The default retry window after a failed rotation: 60 seconds (see
/// [`RefreshTokensBuilder::retry_window`]).
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(60);
/// The default cap on one user's sessions: 100 (see
/// [`RefreshTokensBuilder::max_sessions`]).
pub const DEFAULT_MAX_SESSIONS: u32 = 100;

impl RefreshTokens {
    /// Rotation over `store`, issuing access tokens with `issuer`: 30-day
    /// sessions, 7-day idle timeout, at most 100 sessions per user, no grace
    /// window, a 60-second retry window after a failed rotation, SHA-256 hashes. See [`builder`](Self::builder) to change any
    /// of these.
    pub fn new(store: Arc<dyn RefreshStore>, issuer: TokenIssuer) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                issuer,
                session_lifetime: DEFAULT_SESSION_LIFETIME,
                idle_timeout: DEFAULT_IDLE_TIMEOUT,
                grace: None,
                retry_window: DEFAULT_RETRY_WINDOW,
                max_sessions: DEFAULT_MAX_SESSIONS,
                hasher: Hasher::Sha256,
                on_reuse: None,
            }),
        }
    }

    /// Configures rotation over `store` with `issuer`: lifetimes, a grace
    /// window, the retry window, the session cap, a hash key. Mistakes surface in
    /// [`build`](RefreshTokensBuilder::build).
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer};
    /// use tower_jwt_auth::refresh::{MemoryStore, RefreshTokens};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes!")?);
    /// let tokens = RefreshTokens::builder(Arc::new(MemoryStore::new()), issuer)
    ///     .session_lifetime(Duration::from_secs(14 * 24 * 3600))
    ///     .idle_timeout(Duration::from_secs(2 * 24 * 3600))
    ///     .grace_period(Duration::from_secs(10))
    ///     .max_sessions(20)
    ///     .hash_key(b"a server-side hash key of 32+ bytes")
    ///     .build()?;
    /// # let _ = tokens;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(store: Arc<dyn RefreshStore>, issuer: TokenIssuer) -> RefreshTokensBuilder {
        RefreshTokensBuilder {
            store,
            issuer,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            grace: None,
            retry_window: DEFAULT_RETRY_WINDOW,
            max_sessions: DEFAULT_MAX_SESSIONS,
            hash_key: None,
            on_reuse: None,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn RefreshStore> {
        &self.inner.store
    }

    /// The access-token issuer.
    pub fn issuer(&self) -> &TokenIssuer {
        &self.inner.issuer
    }

    /// The `idle_cutoff` of [`Session::is_live`] at `now`.
    pub(super) fn idle_cutoff(&self, now: i64) -> i64 {
        now.saturating_sub(secs(self.inner.idle_timeout))
    }

    /// The hash under which `token` is stored.
    pub fn hash(&self, token: &str) -> TokenHash {
        self.inner.hasher.hash(token)
    }

    fn new_refresh_token(
        &self,
        session_id: &str,
    ) -> Result<(RefreshToken, TokenHash), RefreshError> {
        let token = RefreshToken::generate(session_id).map_err(RefreshError::issue)?;
        let hash = self.hash(token.as_str());
        Ok((token, hash))
    }

    fn access_token(
        &self,
        subject: Subject,
        session: &Session,
    ) -> Result<IssuedToken, RefreshError> {
        let mut builder = self
            .inner
            .issuer
            .access_token(subject.user_id)
            .session_id(&session.id)
            .auth_time(session.auth_time);
        if let Some(jkt) = &session.jkt {
            builder = builder.jkt(jkt);
        }
        if let Some(Value::String(role)) = subject.role {
            builder = builder.role(role);
        }
        if let Some(roles) = subject.roles {
            builder = builder.roles(roles);
        }
        for (name, value) in subject.extra {
            builder = builder.claim(name, value);
        }
        builder.sign().map_err(RefreshError::issue)
    }

    /// Starts a session for `subject` on `device`: stores it with its first
    /// refresh token, and issues an access token carrying the session id as
    /// `sid` and the login time as `auth_time`.
    ///
    /// If the user already has as many sessions as the cap
    /// ([`RefreshTokensBuilder::max_sessions`]), their oldest session is
    /// revoked (logged at `info`).
    pub async fn login(
        &self,
        subject: Subject,
        device: Option<&str>,
    ) -> Result<TokenPair, RefreshError> {
        self.start(subject, device, None).await
    }

    /// Starts a session bound to the key of a DPoP proof that came with the
    /// login (RFC 9449 section 5), checked with
    /// [`Dpop::check_token_request`](crate::dpop::Dpop::check_token_request):
    /// the access tokens carry its thumbprint as `cnf.jkt`, and every
    /// refresh of the session needs a proof by the same key
    /// ([`refresh_with_proof`](Self::refresh_with_proof)). A stolen refresh
    /// token alone then refreshes nothing.
    ///
    /// ```
    /// use tower_jwt_auth::dpop::Dpop;
    /// use tower_jwt_auth::refresh::{RefreshError, RefreshTokens, Subject, TokenPair};
    ///
    /// async fn login(
    ///     tokens: &RefreshTokens,
    ///     dpop: &Dpop,
    ///     request: &http::request::Parts,
    /// ) -> Result<TokenPair, RefreshError> {
    ///     let proof = dpop
    ///         .check_token_request(&request.method, &request.uri, &request.headers)
    ///         .await
    ///         .map_err(RefreshError::dpop)?;
    ///     let subject = Subject::new("user-1");
    ///     match proof {
    ///         Some(proof) => tokens.login_with_proof(subject, None, &proof).await,
    ///         None => tokens.login(subject, None).await,
    ///     }
    /// }
    /// ```
    pub async fn login_with_proof(
        &self,
        subject: Subject,
        device: Option<&str>,
        proof: &DpopProof,
    ) -> Result<TokenPair, RefreshError> {
        self.start(subject, device, Some(proof.jkt().to_owned()))
            .await
    }

    async fn start(
        &self,
        subject: Subject,
        device: Option<&str>,
        jkt: Option<String>,
    ) -> Result<TokenPair, RefreshError> {
        let now = now();
        let session = Session {
            id: Session::new_id(&subject.user_id),
            user_id: subject.user_id.clone(),
            device: device.map(str::to_owned),
            created_at: now,
            last_used_at: now,
            expires_at: now.saturating_add(secs(self.inner.session_lifetime)),
            generation: 0,
            revoked: false,
            auth_time: now,
            jkt,
        };
        let (refresh_token, hash) = self.new_refresh_token(&session.id)?;
        let record = TokenRecord {
            hash,
            session_id: session.id.clone(),
            parent: None,
            generation: 0,
            created_at: now,
            status: TokenStatus::Active,
        };
        let access_token = self.access_token(subject, &session)?;
        let evicted = self
            .inner
            .store
            .create(&session, &record, self.inner.max_sessions)
            .await
            .map_err(RefreshError::store)?;
        tracing::debug!(session = %session.id, user = %session.user_id, "session started");
        for id in &evicted {
            tracing::info!(session = %id, user = %session.user_id, "session cap reached: oldest session revoked");
        }
        metrics::sessions_evicted(evicted.len() as u64);
        Ok(TokenPair {
            access_token,
            refresh_token,
            session,
        })
    }

    /// Rotates `refresh_token`: the presented token is spent at once and a
    /// new pair issued. `subject` looks the user up again (their role may
    /// have changed); `Ok(None)` means the user is gone, which ends the session.
    ///
    /// A token that was already rotated revokes its whole session (reuse
    /// detection: `Reused`, and the [`on_reuse`](RefreshTokensBuilder::on_reuse)
    /// hook); unknown, expired and revoked tokens change nothing
    /// (`InvalidGrant`). Both answer OAuth `invalid_grant`. A store failure is `Unavailable` and
    /// revokes nothing; if it struck the rotation itself, the token gets a
    /// retry permit (see [`RefreshTokensBuilder::retry_window`]), so the
    /// client's retry is not taken for reuse.
    ///
    /// A session bound to a DPoP key refuses this call
    /// (`InvalidDpopProof`): see [`refresh_with_proof`](Self::refresh_with_proof).
    pub async fn refresh<F, Fut>(
        &self,
        refresh_token: &str,
        subject: F,
    ) -> Result<TokenPair, RefreshError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Option<Subject>, StoreError>>,
    {
        self.refresh_with_proof(refresh_token, None, subject).await
    }

    /// Rotates `refresh_token` like [`refresh`](Self::refresh), with the
    /// DPoP proof that came with the request, if any (checked with
    /// [`Dpop::check_token_request`](crate::dpop::Dpop::check_token_request)).
    ///
    /// A session bound to a key needs a proof by that key: without a proof
    /// the refresh fails with `InvalidDpopProof`, with another key's proof
    /// with `InvalidGrant`; neither spends the token nor ends the session.
    /// A proof that comes with an unbound session's token is ignored (the
    /// session stays unbound). The new access token keeps the session's
    /// `auth_time` and `cnf.jkt`.
    pub async fn refresh_with_proof<F, Fut>(
        &self,
        refresh_token: &str,
        proof: Option<&DpopProof>,
        subject: F,
    ) -> Result<TokenPair, RefreshError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Option<Subject>, StoreError>>,
    {
        let result = self.rotate(refresh_token, proof, subject).await;
        metrics::refresh(match &result {
            Ok((_, outcome)) => *outcome,
            Err(error) => match error.kind() {
                RefreshErrorKind::InvalidGrant
                | RefreshErrorKind::InvalidDpopProof
                | RefreshErrorKind::UseDpopNonce => Refresh::Invalid,
                RefreshErrorKind::Reused => Refresh::Reuse,
                RefreshErrorKind::Unavailable => Refresh::Unavailable,
                RefreshErrorKind::Issue => Refresh::Error,
            },
        });
        result.map(|(pair, _)| pair)
    }

    /// [`refresh_with_proof`](Self::refresh_with_proof), with the outcome it counts.
    async fn rotate<F, Fut>(
        &self,
        refresh_token: &str,
        proof: Option<&DpopProof>,
        subject: F,
    ) -> Result<(TokenPair, Refresh), RefreshError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Option<Subject>, StoreError>>,
    {
        let Some(session_id) = session_of(refresh_token) else {
            tracing::debug!("malformed refresh token presented");
            return Err(RefreshError::new(RefreshErrorKind::InvalidGrant));
        };
        let store = &self.inner.store;
        let presented = self.hash(refresh_token);
        // Everything that can fail for reasons other than the token (the user
        // lookup, signing) happens before the token is spent: a client told
        // "try again" must be able to, without its retry looking like reuse.
        let Some((token, session)) = store
            .lookup(&session_id, &presented)
            .await
            .map_err(RefreshError::store)?
        else {
            tracing::debug!(reason = ?InvalidReason::Unknown, "refresh token refused");
            return Err(RefreshError::new(RefreshErrorKind::InvalidGrant));
        };
        let now = now();
        let idle_cutoff = self.idle_cutoff(now);
        if !session.is_live(now, idle_cutoff) {
            // Dead for good: the store would refuse it too, and touch nothing.
            tracing::debug!("refresh token of an ended session refused");
            return Err(RefreshError::new(RefreshErrorKind::InvalidGrant));
        }
        // Before anything is spent: a stolen refresh token alone refreshes nothing.
        match (&session.jkt, proof) {
            (None, _) => {}
            (Some(_), None) => {
                tracing::info!(session = %session.id, "refresh of a DPoP-bound session without a proof refused");
                return Err(RefreshError::new(RefreshErrorKind::InvalidDpopProof));
            }
            (Some(bound), Some(proof)) if bound == proof.jkt() => {}
            (Some(_), Some(_)) => {
                tracing::warn!(session = %session.id, "refresh of a DPoP-bound session with another key's proof refused");
                return Err(RefreshError::new(RefreshErrorKind::InvalidGrant));
            }
        }
        let subject = match subject(session.user_id.clone()).await {
            Ok(Some(subject)) if subject.user_id == session.user_id => subject,
            Ok(_) => {
                tracing::info!(session = %session.id, "user gone: session revoked");
                store
                    .revoke_session(&session.id)
                    .await
                    .map_err(RefreshError::store)?;
                return Err(RefreshError::new(RefreshErrorKind::InvalidGrant));
            }
            Err(error) => return Err(RefreshError::store(error)),
        };
        let access_token = self.access_token(subject, &session)?;

        let (child_token, child) = self.new_refresh_token(&session.id)?;
        let rotation = Rotation {
            session_id,
            presented,
            child,
            now,
            idle_cutoff,
            grace_cutoff: self.inner.grace.map(|g| now.saturating_sub(secs(g))),
        };
        let outcome = match store.rotate(&rotation).await {
            Ok(outcome) => outcome,
            Err(error) => {
                self.allow_retry(&rotation.session_id, &presented, now)
                    .await;
                return Err(RefreshError::store(error));
            }
        };
        let (session, counted) = match outcome {
            RotateOutcome::Rotated(session) => (session, Refresh::Ok),
            RotateOutcome::Retried(session) => {
                tracing::info!(session = %session.id, user = %session.user_id, "refresh token retried after a failed rotation");
                (session, Refresh::Retry)
            }
            RotateOutcome::Grace(session) => {
                tracing::info!(session = %session.id, user = %session.user_id, "refresh token retried within the grace window");
                (session, Refresh::Grace)
            }
            RotateOutcome::Reused(session) => {
                tracing::warn!(session = %session.id, user = %session.user_id, "refresh token reuse detected: session revoked");
                if let Some(hook) = &self.inner.on_reuse {
                    hook(&ReuseEvent {
                        generation: token.generation,
                        newest_generation: session.generation,
                        session_id: session.id,
                        user_id: session.user_id,
                        device: session.device,
                    });
                }
                return Err(RefreshError::new(RefreshErrorKind::Reused));
            }
            RotateOutcome::Invalid(reason) => {
                tracing::debug!(reason = ?reason, "refresh token refused");
                return Err(RefreshError::new(RefreshErrorKind::InvalidGrant));
            }
        };
        Ok((
            TokenPair {
                access_token,
                refresh_token: child_token,
                session,
            },
            counted,
        ))
    }

    /// After a failed rotation of `presented` at `now`: the rotation may have
    /// run with its answer lost, so let one retry of the token through.
    async fn allow_retry(&self, session_id: &str, presented: &TokenHash, now: i64) {
        let window = self.inner.retry_window;
        if window.is_zero() {
            return;
        }
        let until = now.saturating_add(secs(window));
        if let Err(error) = self
            .inner
            .store
            .allow_retry(session_id, presented, until)
            .await
        {
            tracing::warn!(error = %error, "no retry permit after a failed rotation: a retry of this token will count as reuse");
        }
    }

    /// Ends the session that `refresh_token` belongs to, if it belongs to
    /// `user_id` (logout on one device). Returns whether a session ended;
    /// another user's token, or an unknown one, ends nothing.
    ///
    /// Looking the token up does not rotate it. A session revoked already
    /// is revoked again in the store (it answers `false`): a store that
    /// announces endings announces it again, so a logout retried after a
    /// store error finishes what the failed call left undone.
    pub async fn logout(&self, user_id: &str, refresh_token: &str) -> Result<bool, RefreshError> {
        let Some(session_id) = session_of(refresh_token) else {
            return Ok(false);
        };
        let store = &self.inner.store;
        let hash = self.hash(refresh_token);
        let Some(token) = store
            .token(&session_id, &hash)
            .await
            .map_err(RefreshError::store)?
        else {
            return Ok(false);
        };
        match store
            .session(&token.session_id)
            .await
            .map_err(RefreshError::store)?
        {
            Some(session) if session.user_id == user_id => {
                Self::end(store.as_ref(), &session).await
            }
            _ => Ok(false),
        }
    }

    /// Revokes `session` in the store, even one revoked already: a store
    /// that announces endings announces it again, so a logout retried after
    /// a store failure finishes what the failed call left undone. Returns
    /// whether a session ended now (`false` for one revoked before).
    async fn end(store: &dyn RefreshStore, session: &Session) -> Result<bool, RefreshError> {
        let found = store
            .revoke_session(&session.id)
            .await
            .map_err(RefreshError::store)?;
        Ok(found && !session.revoked)
    }

    /// Ends the session `session_id` (an access token's `sid`) if it belongs
    /// to `user_id`. Returns whether a session ended; one revoked already is
    /// revoked again in the store, like [`logout`](Self::logout) does.
    pub async fn end_session(&self, user_id: &str, session_id: &str) -> Result<bool, RefreshError> {
        let store = &self.inner.store;
        match store
            .session(session_id)
            .await
            .map_err(RefreshError::store)?
        {
            Some(session) if session.user_id == user_id => {
                Self::end(store.as_ref(), &session).await
            }
            _ => Ok(false),
        }
    }

    /// Ends every session of `user_id` (logout everywhere).
    pub async fn logout_all(&self, user_id: &str) -> Result<u64, RefreshError> {
        self.inner
            .store
            .revoke_user(user_id)
            .await
            .map_err(RefreshError::store)
    }

    /// The live sessions of `user_id`, oldest first.
    pub async fn sessions(&self, user_id: &str) -> Result<Vec<Session>, RefreshError> {
        let now = now();
        let mut sessions = self
            .inner
            .store
            .sessions(user_id, now)
            .await
            .map_err(RefreshError::store)?;
        // The store filtered by revocation and absolute lifetime only.
        let idle_cutoff = self.idle_cutoff(now);
        sessions.retain(|session| session.is_live(now, idle_cutoff));
        Ok(sessions)
    }

    /// Deletes expired sessions, and revoked ones idle for longer than the
    /// idle timeout (kept until then so reuse is still recognised).
    pub async fn purge(&self) -> Result<u64, RefreshError> {
        let now = now();
        self.inner
            .store
            .purge(now, self.idle_cutoff(now))
            .await
            .map_err(RefreshError::store)
    }
}
