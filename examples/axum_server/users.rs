//! The demo users: roles, password hashes, credential epochs, and an
//! in-memory user store.

use std::{collections::HashMap, fmt, sync::Arc};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::RwLock;

/// A role, as carried in the token's `role` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    /// An ordinary user.
    User,
    /// An administrator; implies `USER` (see `app::app`).
    Admin,
}

impl Role {
    /// The name in tokens and role requirements.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Admin => "ADMIN",
        }
    }
}

/// A stored password.
///
/// A real application stores a slow, salted password hash (argon2id, with the
/// `argon2` crate) and verifies with it. SHA-256 is NOT a password hash; it is
/// used here only to keep the demo's build small. What the demo does get
/// right: the plain password is never stored, and the comparison takes the
/// same time wherever the inputs differ.
#[derive(Clone)]
pub struct PasswordHash([u8; 32]);

impl PasswordHash {
    /// Hashes `password` (see the type's docs: argon2id in a real application).
    pub fn new(password: &str) -> Self {
        Self(Sha256::digest(password.as_bytes()).into())
    }

    /// Whether `password` is the stored one, compared in constant time.
    pub fn verify(&self, password: &str) -> bool {
        Self::new(password).0.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A stored user.
#[derive(Debug, Clone)]
pub struct User {
    /// The credential epoch: one more at each password change. A session
    /// remembers the epoch it was started under (see
    /// [`UserStore::record_session`]); one started under an older epoch is
    /// refused, so a login that checked the old password while the change
    /// ran keeps no session.
    pub epoch: u64,
    /// The id, the `sub` of the user's tokens.
    pub id: String,
    /// The login name.
    pub email: String,
    /// The display name.
    pub name: String,
    /// The role, the `role` of the user's tokens.
    pub role: Role,
    /// The password, hashed.
    pub password: PasswordHash,
}

/// A user as the API shows it: never with the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    /// The id.
    pub id: String,
    /// The login name.
    pub email: String,
    /// The display name.
    pub name: String,
    /// The role.
    pub role: Role,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role,
        }
    }
}

/// The users, by id, and the credential epoch of each session. In memory: a
/// real application has a database here (a `users` table with an `epoch`
/// column, and a `session_epochs` table).
#[derive(Clone, Default)]
pub struct UserStore {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    users: HashMap<String, User>,
    /// Session id -> the session's user and the epoch it was started under.
    sessions: HashMap<String, SessionEpoch>,
}

/// Who a session belongs to and under which credential epoch it started.
struct SessionEpoch {
    user_id: String,
    epoch: u64,
    /// When the session started (Unix seconds), to forget it once it has
    /// expired for sure.
    created_at: i64,
}

impl fmt::Debug for UserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserStore").finish_non_exhaustive()
    }
}

/// Why [`UserStore::change_credentials`] changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeError {
    /// There is no such user.
    NotFound,
    /// The current password given is not (or no longer) the user's.
    WrongPassword,
}

impl UserStore {
    /// The two demo users.
    pub fn with_demo_users() -> Self {
        let users = [
            (
                "user-1",
                "user@example.com",
                "Demo User",
                Role::User,
                "user-password",
            ),
            (
                "admin-1",
                "admin@example.com",
                "Demo Admin",
                Role::Admin,
                "admin-password",
            ),
        ]
        .into_iter()
        .map(|(id, email, name, role, password)| {
            let user = User {
                epoch: 0,
                id: id.to_owned(),
                email: email.to_owned(),
                name: name.to_owned(),
                role,
                password: PasswordHash::new(password),
            };
            (user.id.clone(), user)
        })
        .collect();
        Self {
            inner: Arc::new(RwLock::new(Inner {
                users,
                sessions: HashMap::new(),
            })),
        }
    }

    /// The user with this email and password, if both match, as read at
    /// that moment (with its epoch).
    pub async fn authenticate(&self, email: &str, password: &str) -> Option<User> {
        let inner = self.inner.read().await;
        // A linear scan is fine for two users; a database has an index on email.
        let user = inner
            .users
            .values()
            .find(|u| u.email.eq_ignore_ascii_case(email));
        // Hash and compare even for an unknown email, so that the answer takes
        // as long either way and does not reveal which emails exist.
        let dummy = PasswordHash([0; 32]);
        let stored = user.map_or(&dummy, |u| &u.password);
        let password_ok = stored.verify(password);
        user.filter(|_| password_ok).cloned()
    }

    /// The user with this id.
    pub async fn get(&self, id: &str) -> Option<User> {
        self.inner.read().await.users.get(id).cloned()
    }

    /// Every user, ordered by id.
    pub async fn list(&self) -> Vec<UserView> {
        let mut users: Vec<UserView> = self
            .inner
            .read()
            .await
            .users
            .values()
            .map(UserView::from)
            .collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users
    }

    /// Changes the name and password of user `id`, and moves it to the
    /// credential epoch `epoch` (at least), in one step, if `current` is
    /// still its password.
    pub async fn change_credentials(
        &self,
        id: &str,
        current: &str,
        name: &str,
        password: PasswordHash,
        epoch: u64,
    ) -> Result<User, ChangeError> {
        let mut inner = self.inner.write().await;
        let user = inner.users.get_mut(id).ok_or(ChangeError::NotFound)?;
        if !user.password.verify(current) {
            return Err(ChangeError::WrongPassword);
        }
        user.name = name.to_owned();
        user.password = password;
        user.epoch = user.epoch.max(epoch);
        Ok(user.clone())
    }

    /// Remembers that session `session_id` of `user_id` started at
    /// `created_at` under the credential epoch `epoch`, and forgets the
    /// user's sessions that are older than `lifetime` seconds (expired
    /// whatever happened).
    pub async fn record_session(
        &self,
        user_id: &str,
        session_id: &str,
        epoch: u64,
        created_at: i64,
        lifetime: i64,
    ) {
        let mut inner = self.inner.write().await;
        let oldest = created_at.saturating_sub(lifetime);
        inner
            .sessions
            .retain(|_, s| s.user_id != user_id || s.created_at >= oldest);
        inner.sessions.insert(
            session_id.to_owned(),
            SessionEpoch {
                user_id: user_id.to_owned(),
                epoch,
                created_at,
            },
        );
    }

    /// Whether session `session_id` of `user_id` started under an older
    /// credential epoch than the user's (or the user is gone).
    pub async fn is_stale(&self, user_id: &str, session_id: &str) -> bool {
        let inner = self.inner.read().await;
        let Some(session) = inner.sessions.get(session_id) else {
            // Not started by a login of ours: nothing to compare.
            return false;
        };
        match inner.users.get(user_id) {
            Some(user) => session.user_id != user_id || session.epoch < user.epoch,
            None => true,
        }
    }

    /// The sessions of `user_id` started under an older credential epoch
    /// than the user's.
    pub async fn stale_sessions(&self, user_id: &str) -> Vec<String> {
        let inner = self.inner.read().await;
        let Some(user) = inner.users.get(user_id) else {
            return Vec::new();
        };
        inner
            .sessions
            .iter()
            .filter(|(_, s)| s.user_id == user_id && s.epoch < user.epoch)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Forgets session `session_id` (it has been ended).
    pub async fn forget_session(&self, session_id: &str) {
        self.inner.write().await.sessions.remove(session_id);
    }
}
