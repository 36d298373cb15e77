//! Minting access tokens with the same keys the layer verifies, or with
//! the keys of a key ring.

use std::{fmt, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken as jwt;
use rand::RngCore;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    keys::{SigningKey, SigningSource},
    verifier::now,
};

/// The default lifetime of an access token: 15 minutes.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// Claims the issuer sets itself; an extra claim may not replace them.
const RESERVED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "sid",
    "auth_time",
    "cnf",
];

/// Mints short-lived access tokens.
///
/// Every token carries `sub`, `iat`, `exp` and a random `jti`, plus `iss` and
/// `aud` when configured, the role claim when given, and any extra claims.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer};
///
/// let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes!")?)
///     .issuer("https://auth.example.com")
///     .audience("api")
///     .ttl(Duration::from_secs(600));
///
/// // The seed's create_access_token(payload, role, expires_delta):
/// let token = issuer
///     .access_token("user-1")
///     .role("ADMIN")
///     .expires_in(Duration::from_secs(300))
///     .claim("name", "Ada")
///     .sign()?;
/// assert_eq!(token.expires_in(), Duration::from_secs(300));
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct TokenIssuer {
    keys: SigningSource,
    /// The header's settings; `alg` and `kid` are the signing key's.
    header: jwt::Header,
    issuer: Option<String>,
    audience: Vec<String>,
    ttl: Duration,
    role_claim: String,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("keys", &self.keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .field("role_claim", &self.role_claim)
            .finish()
    }
}

impl TokenIssuer {
    /// An issuer that signs with `key`, with a 15-minute lifetime, `typ: JWT`
    /// and the role in the `role` claim.
    pub fn new(key: SigningKey) -> Self {
        Self::with_keys(SigningSource::Key(key), DEFAULT_ACCESS_TOKEN_TTL)
    }

    /// An issuer that signs with the active key of `ring`, naming it by its
    /// `kid`, so that tokens follow the ring's rotation (feature
    /// `key-ring`). The default lifetime is 15 minutes or the ring's
    /// [`max_token_ttl`](crate::keys::ring::KeyRing::max_token_ttl),
    /// whichever is shorter; a longer lifetime makes
    /// [`sign`](AccessTokenBuilder::sign) fail, since the ring publishes a
    /// retired key only that long.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, TokenIssuer, keys::ring::KeyRing};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let ring = KeyRing::builder(Algorithm::EdDSA).build().await?;
    /// let issuer = TokenIssuer::with_key_ring(ring.clone()).issuer("https://auth.example.com");
    /// let token = issuer.access_token("user-1").sign()?;
    /// # let _ = token;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "key-ring")]
    pub fn with_key_ring(ring: crate::keys::ring::KeyRing) -> Self {
        let ttl = DEFAULT_ACCESS_TOKEN_TTL.min(ring.max_token_ttl());
        Self::with_keys(SigningSource::Ring(ring), ttl)
    }

    fn with_keys(keys: SigningSource, ttl: Duration) -> Self {
        crate::keys::install_crypto_provider();
        let header = jwt::Header::new(keys.current().algorithm.to_jwt());
        Self {
            keys,
            header,
            issuer: None,
            audience: Vec::new(),
            ttl,
            role_claim: "role".to_owned(),
        }
    }

    /// The `iss` of every token.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Adds an audience to the `aud` of every token.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience.push(audience.into());
        self
    }

    /// The default lifetime of a token (15 minutes unless set).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The claim that carries the role (default `role`).
    pub fn role_claim(mut self, name: impl Into<String>) -> Self {
        self.role_claim = name.into();
        self
    }

    /// The header's `typ`, such as `at+jwt` for RFC 9068 access tokens
    /// (default `JWT`).
    pub fn token_type(mut self, typ: impl Into<String>) -> Self {
        self.header.typ = Some(typ.into());
        self
    }

    /// The default lifetime of a token.
    pub fn default_ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts an access token for `subject` (the user id).
    pub fn access_token(&self, subject: impl Into<String>) -> AccessTokenBuilder<'_> {
        AccessTokenBuilder {
            issuer: self,
            subject: subject.into(),
            ttl: self.ttl,
            role: None,
            session: None,
            auth_time: None,
            jkt: None,
            extra: Map::new(),
            error: None,
        }
    }
}

/// An access token being assembled; finish it with [`sign`](Self::sign).
#[must_use]
pub struct AccessTokenBuilder<'a> {
    issuer: &'a TokenIssuer,
    subject: String,
    ttl: Duration,
    role: Option<Value>,
    session: Option<String>,
    auth_time: Option<i64>,
    jkt: Option<String>,
    extra: Map<String, Value>,
    error: Option<IssueError>,
}

impl fmt::Debug for AccessTokenBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenBuilder")
            .field("subject", &self.subject)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl AccessTokenBuilder<'_> {
    /// The role, as a single string in the role claim.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(Value::String(role.into()));
        self
    }

    /// Several roles, as an array in the role claim.
    pub fn roles<I>(mut self, roles: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.role = Some(Value::Array(
            roles.into_iter().map(|r| Value::String(r.into())).collect(),
        ));
        self
    }

    /// This token's lifetime, instead of the issuer's default.
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The session (`sid`) this token belongs to.
    pub fn session_id(mut self, sid: impl Into<String>) -> Self {
        self.session = Some(sid.into());
        self
    }

    /// When the user authenticated (`auth_time`, Unix seconds): the login,
    /// not the refresh, for step-up checks (RFC 9470).
    pub fn auth_time(mut self, auth_time: i64) -> Self {
        self.auth_time = Some(auth_time);
        self
    }

    /// Binds the token to a DPoP key (`cnf.jkt`, RFC 9449 section 6): its
    /// RFC 7638 thumbprint, as [`DpopProof::jkt`](crate::dpop::DpopProof::jkt)
    /// gives it. The token is then accepted only with proofs by that key.
    pub fn jkt(mut self, thumbprint: impl Into<String>) -> Self {
        self.jkt = Some(thumbprint.into());
        self
    }

    /// An extra claim. The registered claims and the role claim are the
    /// issuer's own: naming one here makes [`sign`](Self::sign) fail.
    pub fn claim(mut self, name: impl Into<String>, value: impl Serialize) -> Self {
        let name = name.into();
        if RESERVED.contains(&name.as_str()) || name == self.issuer.role_claim {
            self.error = Some(IssueError::new(format!("the claim {name:?} is reserved")));
            return self;
        }
        match serde_json::to_value(value) {
            Ok(value) => {
                self.extra.insert(name, value);
            }
            Err(e) => {
                self.error = Some(IssueError::with_source(
                    format!("the claim {name:?} cannot be serialized"),
                    e,
                ))
            }
        }
        self
    }

    /// Signs the token.
    pub fn sign(self) -> Result<IssuedToken, IssueError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.ttl.is_zero() {
            return Err(IssueError::new("a token lifetime must not be zero"));
        }
        let issuer = self.issuer;
        if let Some(max) = issuer.keys.max_ttl()
            && self.ttl > max
        {
            return Err(IssueError::new(format!(
                "the token lifetime {:?} exceeds the key ring's maximum {max:?}",
                self.ttl
            )));
        }
        let iat = now();
        let ttl = i64::try_from(self.ttl.as_secs())
            .map_err(|_| IssueError::new("the token lifetime is too long"))?;
        let exp = iat.saturating_add(ttl);
        let jti = random_id();

        let mut claims = self.extra;
        if let Some(iss) = &issuer.issuer {
            claims.insert("iss".into(), Value::String(iss.clone()));
        }
        claims.insert("sub".into(), Value::String(self.subject));
        match issuer.audience.as_slice() {
            [] => {}
            [one] => {
                claims.insert("aud".into(), Value::String(one.clone()));
            }
            many => {
                claims.insert(
                    "aud".into(),
                    many.iter().cloned().map(Value::String).collect(),
                );
            }
        }
        claims.insert("iat".into(), iat.into());
        claims.insert("exp".into(), exp.into());
        claims.insert("jti".into(), Value::String(jti.clone()));
        if let Some(sid) = self.session {
            claims.insert("sid".into(), Value::String(sid));
        }
        if let Some(auth_time) = self.auth_time {
            claims.insert("auth_time".into(), auth_time.into());
        }
        if let Some(jkt) = self.jkt {
            claims.insert("cnf".into(), serde_json::json!({ "jkt": jkt }));
        }
        if let Some(role) = self.role {
            claims.insert(issuer.role_claim.clone(), role);
        }
        let key = issuer.keys.current();
        let mut header = issuer.header.clone();
        header.alg = key.algorithm.to_jwt();
        header.kid.clone_from(&key.kid);
        let token = jwt::encode(&header, &claims, &key.key)
            .map_err(|e| IssueError::with_source("signing failed", e))?;
        Ok(IssuedToken {
            token,
            jti,
            expires_in: self.ttl,
            expires_at: exp,
        })
    }
}

/// 128 random bits, base64url: a `jti`.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signed access token.
///
/// Its `Debug` output hides the token itself.
#[derive(Clone)]
pub struct IssuedToken {
    token: String,
    jti: String,
    expires_in: Duration,
    expires_at: i64,
}

impl IssuedToken {
    /// The compact JWS, for the `access_token` field of a token response.
    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// The compact JWS, by value.
    pub fn into_string(self) -> String {
        self.token
    }

    /// The token's `jti`.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// The lifetime, for the `expires_in` field of a token response.
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// The `exp` claim: seconds since the Unix epoch.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("jti", &self.jti)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Why a token could not be issued.
#[derive(Debug, Clone)]
pub struct IssueError {
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl IssueError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }
}

impl fmt::Display for IssueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IssueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Algorithm;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, [1u8; 32]).unwrap())
    }

    #[test]
    fn reserved_claims_cannot_be_overridden() {
        for name in ["exp", "sub", "role", "sid"] {
            assert!(
                issuer().access_token("u").claim(name, 1).sign().is_err(),
                "{name}"
            );
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let token = issuer().access_token("u").sign().unwrap();
        assert!(!format!("{token:?}").contains(token.as_str()));
    }

    #[test]
    fn zero_lifetime_is_refused() {
        assert!(
            issuer()
                .access_token("u")
                .expires_in(Duration::ZERO)
                .sign()
                .is_err()
        );
    }
}
