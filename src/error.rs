//! Errors: why a request was rejected, and why a configuration was refused.

use std::{borrow::Cow, error::Error as StdError, fmt, sync::Arc};

use http::StatusCode;

type BoxError = Arc<dyn StdError + Send + Sync + 'static>;

/// Why a request was rejected by [`JwtAuthLayer`](crate::JwtAuthLayer) or
/// [`RequireRoleLayer`](crate::RequireRoleLayer).
///
/// The error is attached to the extensions of every rejection response, so
/// code outside the layer (a logging layer, a test) can inspect it:
///
/// ```
/// use tower_jwt_auth::{AuthError, AuthErrorKind};
/// # let response = http::Response::new(());
/// if let Some(error) = response.extensions().get::<AuthError>() {
///     if error.kind() == AuthErrorKind::Expired {
///         // ...
///     }
/// }
/// ```
#[derive(Clone)]
pub struct AuthError {
    kind: AuthErrorKind,
    description: Cow<'static, str>,
    source: Option<BoxError>,
}

/// The kind of an [`AuthError`].
///
/// New kinds may be added in minor releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// The request carries no bearer token (401, challenge without an error code).
    MissingCredentials,
    /// The request is malformed: two `Authorization` headers, an empty or
    /// syntactically invalid bearer value (400 `invalid_request`).
    InvalidRequest,
    /// The token is longer than the configured maximum (401 `invalid_token`).
    TokenTooLong,
    /// The token is not a well-formed compact JWS: wrong number of parts, bad
    /// base64url, a header or payload that is not a JSON object (401 `invalid_token`).
    Malformed,
    /// The token's `alg` is not allowed for the selected key, or is `none` (401 `invalid_token`).
    UnsupportedAlgorithm,
    /// No configured key matches the token's `kid` (401 `invalid_token`).
    UnknownKey,
    /// The signature does not verify (401 `invalid_token`).
    InvalidSignature,
    /// The header names a critical extension (`crit`) this crate does not understand (401 `invalid_token`).
    UnsupportedCritical,
    /// The header's `typ` is not the expected one (401 `invalid_token`).
    InvalidType,
    /// The payload names a claim twice (401 `invalid_token`).
    DuplicateClaim,
    /// A required claim is missing (401 `invalid_token`).
    MissingClaim,
    /// A registered claim has the wrong type, or the claims do not deserialize
    /// into the application's claims type (401 `invalid_token`).
    InvalidClaims,
    /// The token has expired (`exp`) (401 `invalid_token`).
    Expired,
    /// The token is not valid yet: its `nbf`, or its `iat` (issued in the
    /// future, see [`VerifierBuilder::reject_future_iat`](crate::VerifierBuilder::reject_future_iat)),
    /// is later than now plus the leeway (401 `invalid_token`).
    NotYetValid,
    /// The `iss` claim is not an accepted issuer (401 `invalid_token`).
    InvalidIssuer,
    /// The `aud` claim names no accepted audience (401 `invalid_token`).
    InvalidAudience,
    /// The application's own check rejected the token, for example because its
    /// session was revoked (401 `invalid_token`).
    Rejected,
    /// The token is valid but lacks the required role (403 `insufficient_scope`).
    InsufficientScope,
    /// A check needed a backend that failed (503).
    Unavailable,
}

impl AuthErrorKind {
    /// The RFC 6750 error code of this kind, if it has one.
    ///
    /// A request without credentials has no error code (RFC 6750 section 3.1);
    /// a backend failure is not an authentication error at all.
    pub fn error_code(self) -> Option<&'static str> {
        match self {
            Self::MissingCredentials | Self::Unavailable => None,
            Self::InvalidRequest => Some("invalid_request"),
            Self::InsufficientScope => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }

    /// The HTTP status of a rejection of this kind.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn default_description(self) -> &'static str {
        match self {
            Self::MissingCredentials => "a bearer token is required",
            Self::InvalidRequest => "the authorization request is malformed",
            Self::TokenTooLong => "the token is too long",
            Self::Malformed => "the token is malformed",
            Self::UnsupportedAlgorithm => "the token algorithm is not accepted",
            Self::UnknownKey => "the token key is not known",
            Self::InvalidSignature => "the token signature is invalid",
            Self::UnsupportedCritical => "the token uses an unsupported critical header",
            Self::InvalidType => "the token type is not accepted",
            Self::DuplicateClaim => "the token repeats a claim",
            Self::MissingClaim => "the token lacks a required claim",
            Self::InvalidClaims => "the token claims are invalid",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::InvalidIssuer => "the token issuer is not accepted",
            Self::InvalidAudience => "the token audience is not accepted",
            Self::Rejected => "the token was rejected",
            Self::InsufficientScope => "the token lacks the required role",
            Self::Unavailable => "authentication is temporarily unavailable",
        }
    }
}

impl AuthError {
    /// An error of `kind` with its default description.
    pub fn new(kind: AuthErrorKind) -> Self {
        Self {
            kind,
            description: Cow::Borrowed(kind.default_description()),
            source: None,
        }
    }

    /// An error for a token that the application's own check refuses (401
    /// `invalid_token`), with a description sent to the client in
    /// `error_description`. Keep it short and free of secrets.
    ///
    /// ```
    /// use tower_jwt_auth::{AuthError, AuthErrorKind};
    /// let error = AuthError::rejected("the session was revoked");
    /// assert_eq!(error.kind(), AuthErrorKind::Rejected);
    /// ```
    pub fn rejected(description: &'static str) -> Self {
        Self::new(AuthErrorKind::Rejected).with_description(description)
    }

    /// An error for a check whose backend failed (503). The source is kept for
    /// logging and never sent to the client.
    pub fn unavailable(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self::new(AuthErrorKind::Unavailable).with_source(source)
    }

    pub(crate) fn with_description(mut self, description: &'static str) -> Self {
        if !description.is_empty() && description.bytes().all(is_qdtext) {
            self.description = Cow::Borrowed(description);
        }
        self
    }

    /// A description that names a claim of the application's claims type,
    /// such as `missing claim "role"`; never its value. A name that is not
    /// plain (letters, digits and `_-.:/`, at most 64 bytes) is left out.
    pub(crate) fn naming_claim(mut self, what: &str, name: Option<&str>) -> Self {
        let plain = |name: &str| {
            !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b))
        };
        if let Some(name) = name.filter(|name| plain(name)) {
            self.description = Cow::Owned(format!("{what} \"{name}\""));
        }
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// The HTTP status of the rejection.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The RFC 6750 error code (`invalid_request`, `invalid_token`,
    /// `insufficient_scope`), or `None` when the request had no credentials.
    pub fn error_code(&self) -> Option<&'static str> {
        self.kind.error_code()
    }

    /// A short human-readable description, safe to send to the client. It
    /// may name a claim (`missing claim "role"`), never a claim's value.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The `WWW-Authenticate` challenge for this error (RFC 6750 section 3),
    /// or `None` for errors that are not authentication failures (503).
    ///
    /// ```
    /// use tower_jwt_auth::{AuthError, AuthErrorKind};
    /// assert_eq!(
    ///     AuthError::new(AuthErrorKind::Expired).challenge("api").unwrap(),
    ///     r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#,
    /// );
    /// assert_eq!(
    ///     AuthError::new(AuthErrorKind::MissingCredentials).challenge("api").unwrap(),
    ///     r#"Bearer realm="api""#,
    /// );
    /// ```
    pub fn challenge(&self, realm: &str) -> Option<String> {
        if self.kind == AuthErrorKind::Unavailable {
            return None;
        }
        let mut challenge = format!("Bearer realm=\"{realm}\"");
        if let Some(code) = self.error_code() {
            challenge.push_str(", error=\"");
            challenge.push_str(code);
            challenge.push_str("\", error_description=\"");
            // RFC 6750 section 3 allows no `"` in the header's description: a
            // quoted claim name is written with single quotes there.
            challenge.extend(
                self.description
                    .chars()
                    .map(|c| if c == '"' { '\'' } else { c }),
            );
            challenge.push('"');
        }
        Some(challenge)
    }
}

/// RFC 6750 restricts `error_description` to `%x20-21 / %x23-5B / %x5D-7E`.
pub(crate) fn is_qdtext(b: u8) -> bool {
    matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthError")
            .field("kind", &self.kind)
            .field("description", &self.description)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

impl StdError for AuthError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

/// What is kept of a JSON error: where and what kind, never the message,
/// which can quote a claim value (`invalid type: string "..."`).
#[derive(Debug)]
pub(crate) struct JsonError {
    category: serde_json::error::Category,
    line: usize,
    column: usize,
}

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        Self {
            category: e.classify(),
            line: e.line(),
            column: e.column(),
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "JSON {:?} error at line {} column {}",
            self.category, self.line, self.column
        )
    }
}

impl StdError for JsonError {}

/// A configuration that cannot work: an unusable key, an algorithm that does
/// not fit its key, an empty allow-list. Returned when a verifier, issuer or
/// layer is built, never on a request.
#[derive(Debug)]
pub struct ConfigError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for ConfigError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

/// Displays an error and its whole source chain (`a: b: c`), for logs.
#[cfg(feature = "jwks")]
pub(crate) struct Report<'a>(pub(crate) &'a (dyn StdError + 'static));

#[cfg(feature = "jwks")]
impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_outside_rfc6750_charset_are_refused() {
        let error = AuthError::rejected("bad \"quote\"");
        assert_eq!(error.description(), "the token was rejected");
        let error = AuthError::rejected("revoked");
        assert_eq!(error.description(), "revoked");
    }

    #[test]
    fn statuses_follow_rfc6750() {
        assert_eq!(AuthErrorKind::InvalidRequest.status(), 400);
        assert_eq!(AuthErrorKind::Expired.status(), 401);
        assert_eq!(AuthErrorKind::InsufficientScope.status(), 403);
        assert_eq!(AuthErrorKind::Unavailable.status(), 503);
    }
}
