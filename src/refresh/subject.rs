//! Who a token pair is for.

use serde::Serialize;
use serde_json::{Map, Value};

/// Who a token pair is for, and what the access token says about them.
///
/// ```
/// use tower_jwt_auth::refresh::Subject;
/// let subject = Subject::new("user-1").role("ADMIN").claim("name", "Ada");
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Subject {
    pub(super) user_id: String,
    pub(super) role: Option<Value>,
    pub(super) roles: Option<Vec<String>>,
    pub(super) extra: Map<String, Value>,
}

impl Subject {
    /// The user `user_id` (the access token's `sub`).
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            role: None,
            roles: None,
            extra: Map::new(),
        }
    }

    /// A single role.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(Value::String(role.into()));
        self.roles = None;
        self
    }

    /// Several roles.
    pub fn roles<I>(mut self, roles: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.roles = Some(roles.into_iter().map(Into::into).collect());
        self.role = None;
        self
    }

    /// An extra claim for the access token (a serialization failure drops it).
    pub fn claim(mut self, name: impl Into<String>, value: impl Serialize) -> Self {
        if let Ok(value) = serde_json::to_value(value) {
            self.extra.insert(name.into(), value);
        }
        self
    }

    /// The user id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
}
