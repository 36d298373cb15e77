//! Errors: why a request was rejected, and why a configuration was refused.

use std::{borrow::Cow, error::Error as StdError, fmt, sync::Arc};

use http::StatusCode;

use crate::challenge::{ChallengeContext, Scheme};

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
    /// The scheme the failure concerns; `None`: every accepted scheme.
    scheme: Option<Scheme>,
    /// What the layer advertises in its challenges.
    context: Option<Arc<ChallengeContext>>,
    /// Parameters of this error alone: a nonce, step-up requirements.
    extra: Option<Box<Extra>>,
}

/// Challenge parameters and headers of one error.
#[derive(Debug, Clone, Default)]
struct Extra {
    dpop_nonce: Option<String>,
    acr_values: Option<String>,
    max_age: Option<u64>,
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
    /// The DPoP proof (RFC 9449) is missing, malformed, signed with a key or
    /// algorithm that is not accepted, made for another request, stale, or
    /// replayed (401 `invalid_dpop_proof`).
    InvalidDpopProof,
    /// The DPoP proof lacks the server's current nonce; the response carries
    /// a fresh one in `DPoP-Nonce` (401 `use_dpop_nonce`).
    UseDpopNonce,
    /// The token is bound to another key than the DPoP proof's, or to no key
    /// at all (RFC 9449 section 7.1, 401 `invalid_token`).
    KeyMismatch,
    /// The token is bound to a key (`cnf.jkt`) but was presented without a
    /// proof of possession, as a bearer token; or the layer accepts only
    /// DPoP (401 `invalid_token`).
    ProofRequired,
    /// The token's authentication is too old (`auth_time`) or too weak
    /// (`acr`) for the resource (RFC 9470, 401 `insufficient_user_authentication`).
    InsufficientUserAuthentication,
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
            Self::InvalidDpopProof => Some("invalid_dpop_proof"),
            Self::UseDpopNonce => Some("use_dpop_nonce"),
            Self::InsufficientUserAuthentication => Some("insufficient_user_authentication"),
            _ => Some("invalid_token"),
        }
    }

    /// A short, stable `snake_case` name of this kind (`"expired"`,
    /// `"invalid_signature"`, ...): the `kind` label of the
    /// [`TOKENS_REJECTED`](crate::metrics::TOKENS_REJECTED) counter, and a
    /// good field for your own logs. Static, so it costs no allocation.
    ///
    /// ```
    /// use tower_jwt_auth::AuthErrorKind;
    /// assert_eq!(AuthErrorKind::Expired.as_str(), "expired");
    /// assert_eq!(AuthErrorKind::MissingCredentials.as_str(), "missing_credentials");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidRequest => "invalid_request",
            Self::TokenTooLong => "token_too_long",
            Self::Malformed => "malformed",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::InvalidSignature => "invalid_signature",
            Self::UnsupportedCritical => "unsupported_critical",
            Self::InvalidType => "invalid_type",
            Self::DuplicateClaim => "duplicate_claim",
            Self::MissingClaim => "missing_claim",
            Self::InvalidClaims => "invalid_claims",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::InvalidIssuer => "invalid_issuer",
            Self::InvalidAudience => "invalid_audience",
            Self::Rejected => "rejected",
            Self::InsufficientScope => "insufficient_scope",
            Self::Unavailable => "unavailable",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::KeyMismatch => "key_mismatch",
            Self::ProofRequired => "proof_required",
            Self::InsufficientUserAuthentication => "insufficient_user_authentication",
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
            Self::InvalidDpopProof => "the DPoP proof is invalid",
            Self::UseDpopNonce => "a DPoP proof with the server's nonce is required",
            Self::KeyMismatch => "the token is not bound to the DPoP proof's key",
            Self::ProofRequired => "the token must be presented with a DPoP proof",
            Self::InsufficientUserAuthentication => {
                "a more recent or stronger authentication is required"
            }
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
            scheme: None,
            context: None,
            extra: None,
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

    /// The scheme this failure concerns: its challenge carries the error.
    pub(crate) fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = Some(scheme);
        self
    }

    /// The challenges name what the layer accepts, unless a layer already
    /// said so.
    pub(crate) fn with_context(mut self, context: Option<&Arc<ChallengeContext>>) -> Self {
        if self.context.is_none() {
            self.context = context.cloned();
        }
        self
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// A fresh DPoP nonce for the client, sent in `DPoP-Nonce`.
    pub(crate) fn with_dpop_nonce(mut self, nonce: String) -> Self {
        self.extra_mut().dpop_nonce = Some(nonce);
        self
    }

    /// The step-up requirements (RFC 9470 section 3): space-separated `acr`
    /// values (checked header-safe by the layer's builder), a maximum age.
    pub(crate) fn with_step_up(mut self, acr_values: Option<String>, max_age: Option<u64>) -> Self {
        let extra = self.extra_mut();
        extra.acr_values = acr_values;
        extra.max_age = max_age;
        self
    }

    /// The nonce to send in the `DPoP-Nonce` response header (RFC 9449
    /// section 9), with `use_dpop_nonce` and other DPoP errors of a layer
    /// that requires nonces.
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.extra.as_ref()?.dpop_nonce.as_deref()
    }

    /// The `acr` values a step-up rejection asks for (RFC 9470), space-separated.
    pub fn acr_values(&self) -> Option<&str> {
        self.extra.as_ref()?.acr_values.as_deref()
    }

    /// The maximum authentication age, in seconds, a step-up rejection asks for (RFC 9470).
    pub fn max_age(&self) -> Option<u64> {
        self.extra.as_ref()?.max_age
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

    /// The `WWW-Authenticate` challenges for this error, one per scheme the
    /// layer accepts (RFC 6750 section 3, RFC 9449 section 7.1), or none for
    /// errors that are not authentication failures (503).
    ///
    /// The error code goes on the challenge of the scheme the request used;
    /// a `DPoP` challenge lists the accepted algorithms; every challenge
    /// names the resource metadata when the layer is configured with it
    /// (RFC 9728 section 5.1).
    ///
    /// ```
    /// use tower_jwt_auth::{AuthError, AuthErrorKind};
    /// assert_eq!(
    ///     AuthError::new(AuthErrorKind::Expired).challenges("api"),
    ///     [r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#],
    /// );
    /// ```
    pub fn challenges(&self, realm: &str) -> Vec<String> {
        if self.kind == AuthErrorKind::Unavailable {
            return Vec::new();
        }
        let default = ChallengeContext::default();
        let context = self.context.as_deref().unwrap_or(&default);
        let offered = |scheme: Scheme| match scheme {
            Scheme::Bearer => context.bearer,
            Scheme::Dpop => context.dpop_algs.is_some(),
        };
        // The error goes on its scheme's challenge, or on every one when its
        // scheme is not offered (a bearer token sent to a DPoP-only layer).
        let carries_error = |scheme: Scheme| match self.scheme {
            Some(own) => own == scheme || !offered(own),
            None => true,
        };
        let mut challenges = Vec::with_capacity(2);
        if context.bearer {
            challenges.push(self.render(
                "Bearer",
                realm,
                carries_error(Scheme::Bearer),
                None,
                context,
            ));
        }
        if let Some(algs) = &context.dpop_algs {
            challenges.push(self.render(
                "DPoP",
                realm,
                carries_error(Scheme::Dpop),
                Some(algs),
                context,
            ));
        }
        challenges
    }

    fn render(
        &self,
        scheme: &str,
        realm: &str,
        with_error: bool,
        algs: Option<&str>,
        context: &ChallengeContext,
    ) -> String {
        let mut challenge = format!("{scheme} realm=\"{realm}\"");
        if with_error && let Some(code) = self.error_code() {
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
            if let Some(acr) = self.acr_values() {
                challenge.push_str(", acr_values=\"");
                challenge.push_str(acr);
                challenge.push('"');
            }
            if let Some(max_age) = self.max_age() {
                challenge.push_str(&format!(", max_age={max_age}"));
            }
        }
        if let Some(algs) = algs {
            challenge.push_str(", algs=\"");
            challenge.push_str(algs);
            challenge.push('"');
        }
        if let Some(url) = &context.resource_metadata {
            challenge.push_str(", resource_metadata=\"");
            challenge.push_str(url);
            challenge.push('"');
        }
        challenge
    }

    /// The `WWW-Authenticate` value for this error: its
    /// [`challenges`](Self::challenges) joined into one field value (RFC
    /// 9110 section 11.6.1), or `None` for errors that are not
    /// authentication failures (503).
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
        let challenges = self.challenges(realm);
        (!challenges.is_empty()).then(|| challenges.join(", "))
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
            .field("scheme", &self.scheme)
            .field("extra", &self.extra)
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
#[cfg(any(feature = "jwks", feature = "key-ring"))]
pub(crate) struct Report<'a>(pub(crate) &'a (dyn StdError + 'static));

#[cfg(any(feature = "jwks", feature = "key-ring"))]
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
