//! The demo users: roles, password hashes, and an in-memory user store.

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

/// The users, by id. In memory: a real application has a database here.
#[derive(Debug, Clone, Default)]
pub struct UserStore {
    users: Arc<RwLock<HashMap<String, User>>>,
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
            users: Arc::new(RwLock::new(users)),
        }
    }

    /// The user with this email and password, if both match.
    pub async fn authenticate(&self, email: &str, password: &str) -> Option<User> {
        let users = self.users.read().await;
        // A linear scan is fine for two users; a database has an index on email.
        let user = users.values().find(|u| u.email.eq_ignore_ascii_case(email));
        // Hash and compare even for an unknown email, so that the answer takes
        // as long either way and does not reveal which emails exist.
        let dummy = PasswordHash([0; 32]);
        let stored = user.map_or(&dummy, |u| &u.password);
        let password_ok = stored.verify(password);
        user.filter(|_| password_ok).cloned()
    }

    /// The user with this id.
    pub async fn get(&self, id: &str) -> Option<User> {
        self.users.read().await.get(id).cloned()
    }

    /// Every user, ordered by id.
    pub async fn list(&self) -> Vec<UserView> {
        let mut users: Vec<UserView> = self
            .users
            .read()
            .await
            .values()
            .map(UserView::from)
            .collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users
    }

    /// Applies `change` to the user with this id; `None` if there is none.
    pub async fn update(&self, id: &str, change: impl FnOnce(&mut User)) -> Option<User> {
        let mut users = self.users.write().await;
        let user = users.get_mut(id)?;
        change(user);
        Some(user.clone())
    }
}
