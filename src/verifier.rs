//! Token verification: the one place where a compact JWS becomes claims.
//!
//! The order is fixed and matters (RFC 8725): the length is checked before
//! anything is decoded; the header is parsed strictly; the key is chosen by
//! exact `kid` and must allow the header's `alg`; the signature is verified
//! before the payload is even decoded; then the payload is parsed once, with
//! duplicate claim names refused, and the registered claims validated.

use std::{
    borrow::Cow,
    collections::HashSet,
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{
    Deserialize,
    de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor},
};

use crate::{
    claims::{Claims, VerifiedPayload, to_seconds},
    error::{AuthError, AuthErrorKind, ConfigError, JsonError},
    keys::{Algorithm, KeySet, VerificationKey},
};

/// The default maximum token length: 8 KiB.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// The default clock-skew leeway for `exp` and `nbf`: 30 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// Verifies tokens: signature, algorithm, key and claims.
///
/// Build one with [`Verifier::builder`]; it is cheap to clone and is shared
/// by every clone of the layer. It can also be used on its own, outside any
/// middleware.
///
/// ```
/// use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer, VerificationKey, Verifier};
///
/// let secret = b"a secret of at least thirty-two bytes!";
/// let verifier = Verifier::builder()
///     .key(VerificationKey::hmac(secret)?)
///     .issuer("https://auth.example.com")
///     .audience("api")
///     .build()?;
///
/// let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, secret)?)
///     .issuer("https://auth.example.com")
///     .audience("api");
/// let token = issuer.access_token("user-1").role("USER").sign()?;
///
/// let claims = verifier.verify::<serde_json::Value>(token.as_str())?;
/// assert_eq!(claims.subject(), Some("user-1"));
/// assert_eq!(claims["role"], "USER");
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

/// Where the keys come from.
enum KeySource {
    Static(KeySet),
    #[cfg(feature = "jwks")]
    Remote(crate::keys::RemoteJwks),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(keys) => keys.fmt(f),
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.fmt(f),
        }
    }
}

struct Inner {
    keys: KeySource,
    issuers: Vec<String>,
    audiences: Vec<String>,
    required: Vec<String>,
    leeway: i64,
    max_len: usize,
    typ: Option<String>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Verifier")
            .field("keys", &inner.keys)
            .field("issuers", &inner.issuers)
            .field("audiences", &inner.audiences)
            .field("required", &inner.required)
            .field("leeway", &inner.leeway)
            .field("max_len", &inner.max_len)
            .field("typ", &inner.typ)
            .finish()
    }
}

/// Builds a [`Verifier`]. Mistakes surface from [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifierBuilder {
    keys: Vec<VerificationKey>,
    #[cfg(feature = "jwks")]
    remote: Option<crate::keys::RemoteJwks>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    required: Vec<String>,
    leeway: Duration,
    max_len: usize,
    typ: Option<String>,
    rfc9068: bool,
}

impl Verifier {
    /// A builder with the secure defaults: `exp` required, 30 s leeway, 8 KiB
    /// maximum token length, and no keys yet.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder {
            keys: Vec::new(),
            #[cfg(feature = "jwks")]
            remote: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            required: vec!["exp".to_owned()],
            leeway: DEFAULT_LEEWAY,
            max_len: DEFAULT_MAX_TOKEN_LEN,
            typ: None,
            rfc9068: false,
        }
    }

    /// The maximum token length this verifier accepts.
    pub fn max_token_len(&self) -> usize {
        self.inner.max_len
    }

    /// Verifies `token` and decodes its claims into `C`.
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<Claims<C>, AuthError> {
        let payload = self.verify_payload(token)?;
        let custom = serde_json::from_slice(payload.json()).map_err(|e| {
            AuthError::new(AuthErrorKind::InvalidClaims).with_source(JsonError::from(e))
        })?;
        Ok(Claims::new(custom, payload))
    }

    pub(crate) fn verify_payload(&self, token: &str) -> Result<VerifiedPayload, AuthError> {
        let inner = &*self.inner;
        if token.len() > inner.max_len {
            return Err(AuthError::new(AuthErrorKind::TokenTooLong));
        }
        let malformed = || AuthError::new(AuthErrorKind::Malformed);
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let message = &token[..header_b64.len() + 1 + payload_b64.len()];

        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|e| malformed().with_source(e))?;
        let header = parse_header(&header_json)?;
        if header.crit {
            return Err(AuthError::new(AuthErrorKind::UnsupportedCritical));
        }
        if let Some(expected) = &inner.typ {
            let ok = header
                .typ
                .as_deref()
                .is_some_and(|typ| typ_matches(typ, expected));
            if !ok {
                return Err(AuthError::new(AuthErrorKind::InvalidType));
            }
        }
        let alg: Algorithm = header
            .alg
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|_| AuthError::new(AuthErrorKind::UnsupportedAlgorithm))?;

        self.verify_signature(header.kid.as_deref(), alg, message, signature)?;

        let payload_json = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|e| malformed().with_source(e))?;
        self.validate_claims(&payload_json)?;
        Ok(VerifiedPayload::new(payload_json))
    }

    fn verify_signature(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        message: &str,
        signature: &str,
    ) -> Result<(), AuthError> {
        match &self.inner.keys {
            KeySource::Static(keys) => keys.verify(kid, alg, message, signature),
            #[cfg(feature = "jwks")]
            KeySource::Remote(remote) => remote.verify(kid, alg, message, signature),
        }
    }

    /// The remote key source, if the keys come from one.
    #[cfg(feature = "jwks")]
    pub(crate) fn remote(&self) -> Option<&crate::keys::RemoteJwks> {
        match &self.inner.keys {
            KeySource::Remote(remote) => Some(remote),
            KeySource::Static(_) => None,
        }
    }

    fn validate_claims(&self, json: &[u8]) -> Result<(), AuthError> {
        let inner = &*self.inner;
        // A payload that is not a JSON object is malformed, not invalid claims.
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(AuthError::new(AuthErrorKind::Malformed));
        }
        let mut sink = ClaimsSink::default();
        let names = scan_object(json, &mut sink).map_err(|e| {
            let kind = if is_duplicate(&e) {
                AuthErrorKind::DuplicateClaim
            } else if e.is_data() {
                AuthErrorKind::InvalidClaims
            } else {
                AuthErrorKind::Malformed
            };
            AuthError::new(kind).with_source(JsonError::from(e))
        })?;

        for name in &inner.required {
            if !names.contains(name) {
                return Err(AuthError::new(AuthErrorKind::MissingClaim));
            }
        }
        let now = now();
        match sink.exp {
            Some(exp) if now >= exp.saturating_add(inner.leeway) => {
                return Err(AuthError::new(AuthErrorKind::Expired));
            }
            _ => {}
        }
        if let Some(nbf) = sink.nbf
            && now.saturating_add(inner.leeway) < nbf
        {
            return Err(AuthError::new(AuthErrorKind::NotYetValid));
        }
        if !inner.issuers.is_empty() {
            let ok = sink
                .iss
                .as_deref()
                .is_some_and(|iss| inner.issuers.iter().any(|i| i == iss));
            if !ok {
                return Err(AuthError::new(AuthErrorKind::InvalidIssuer));
            }
        }
        // RFC 7519 section 4.1.3: a token that names audiences must name us.
        match (&sink.aud, inner.audiences.is_empty()) {
            (None, true) => {}
            (Some(_), true) | (None, false) => {
                return Err(AuthError::new(AuthErrorKind::InvalidAudience));
            }
            (Some(aud), false) => {
                if !aud.iter().any(|a| inner.audiences.iter().any(|b| b == a)) {
                    return Err(AuthError::new(AuthErrorKind::InvalidAudience));
                }
            }
        }
        Ok(())
    }
}

impl VerifierBuilder {
    /// Adds a key. Several keys may be configured; a token is matched to one
    /// by its `kid` (exact match), and a token whose `kid` matches no key is
    /// tried against the keys that have no `kid`.
    pub fn key(mut self, key: VerificationKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds several keys, for example those of a [`JwkSet`](crate::JwkSet).
    pub fn keys(mut self, keys: impl IntoIterator<Item = VerificationKey>) -> Self {
        self.keys.extend(keys);
        self
    }

    /// Takes the keys from an identity provider's JWK Set, kept fresh (feature
    /// `jwks`); see [`RemoteJwks`](crate::keys::RemoteJwks). Static keys
    /// cannot be added as well.
    #[cfg(feature = "jwks")]
    pub fn jwks(mut self, remote: crate::keys::RemoteJwks) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Accepts tokens whose `iss` is `issuer`. May be called more than once;
    /// once called, `iss` is required.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens whose `aud` names `audience`. May be called more than
    /// once; once called, `aud` is required. Without any audience, a token
    /// that carries `aud` is refused (RFC 7519 section 4.1.3).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The claims every token must carry, replacing the default (`exp`).
    ///
    /// Dropping `exp` from the list allows tokens that never expire; think twice.
    pub fn required_claims<I>(mut self, claims: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.required = claims.into_iter().map(Into::into).collect();
        self
    }

    /// The clock skew tolerated for `exp` and `nbf` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The longest token accepted, checked before any decoding (default 8 KiB).
    pub fn max_token_len(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }

    /// Requires the header's `typ` to be `typ` (compared case-insensitively,
    /// with an optional `application/` prefix, per RFC 7515 section 4.1.9).
    pub fn require_type(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// The strict profile of RFC 9068 (JWT access tokens): `typ` must be
    /// `at+jwt`, and `iss`, `exp`, `aud`, `sub`, `client_id`, `iat` and `jti`
    /// are required.
    ///
    /// The profile also needs an [`issuer`](Self::issuer) and an
    /// [`audience`](Self::audience) (RFC 9068 section 4): [`build`](Self::build)
    /// fails without them.
    pub fn rfc9068(mut self) -> Self {
        self.rfc9068 = true;
        self.require_type("at+jwt").required_claims([
            "iss",
            "exp",
            "aud",
            "sub",
            "client_id",
            "iat",
            "jti",
        ])
    }

    /// Checks the configuration and builds the verifier.
    pub fn build(self) -> Result<Verifier, ConfigError> {
        crate::keys::install_crypto_provider();
        if self.rfc9068 && (self.issuers.is_empty() || self.audiences.is_empty()) {
            return Err(ConfigError::new(
                "the RFC 9068 profile needs an issuer and an audience to match exactly",
            ));
        }
        #[cfg(feature = "jwks")]
        let remote = self.remote;
        #[cfg(not(feature = "jwks"))]
        let remote: Option<std::convert::Infallible> = None;
        if self.keys.is_empty() && remote.is_none() {
            return Err(ConfigError::new("a verifier needs at least one key"));
        }
        if !self.keys.is_empty() && remote.is_some() {
            return Err(ConfigError::new(
                "a verifier takes either static keys or a remote JWK Set, not both",
            ));
        }
        if self.max_len == 0 {
            return Err(ConfigError::new(
                "the maximum token length must not be zero",
            ));
        }
        let leeway = i64::try_from(self.leeway.as_secs())
            .map_err(|_| ConfigError::new("the leeway is too large"))?;
        let keys = match remote {
            #[cfg(feature = "jwks")]
            Some(remote) => KeySource::Remote(remote),
            #[cfg(not(feature = "jwks"))]
            Some(never) => match never {},
            None => KeySource::Static(KeySet::new(self.keys)?),
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                keys,
                issuers: self.issuers,
                audiences: self.audiences,
                required: self.required,
                leeway,
                max_len: self.max_len,
                typ: self.typ,
            }),
        })
    }
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 7515 section 4.1.9: media types compare case-insensitively, and the
/// `application/` prefix may be left out. No allocation: this runs per request.
fn typ_matches(typ: &str, expected: &str) -> bool {
    fn bare(s: &str) -> &str {
        const PREFIX: &str = "application/";
        match s.get(..PREFIX.len()) {
            Some(head) if head.eq_ignore_ascii_case(PREFIX) => &s[PREFIX.len()..],
            _ => s,
        }
    }
    bare(typ).eq_ignore_ascii_case(bare(expected))
}

/// A JSON string that borrows from the input when it has no escapes.
struct Str<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// `aud`: one string or an array of strings.
struct Audience<'de>(Vec<Cow<'de, str>>);

impl<'de> Deserialize<'de> for Audience<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany<'a> {
            #[serde(borrow)]
            One(Cow<'a, str>),
            #[serde(borrow)]
            Many(Vec<Cow<'a, str>>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => Audience(vec![s]),
            OneOrMany::Many(v) => Audience(v),
        })
    }
}

/// Receives each member of a JSON object, in order.
trait Sink<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error>;
}

/// The names seen so far; a repeated name is an error (RFC 7515 section 4,
/// RFC 7519 section 4: names must be unique, and we reject rather than guess).
#[derive(Default)]
struct Names<'de> {
    list: Vec<Cow<'de, str>>,
    set: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> Names<'de> {
    /// Linear search while small (the common case); a hash set beyond that,
    /// so a hostile payload with thousands of names stays linear overall.
    fn insert(&mut self, name: Cow<'de, str>) -> bool {
        if let Some(set) = &mut self.set {
            return set.insert(name);
        }
        if self.list.contains(&name) {
            return false;
        }
        self.list.push(name);
        if self.list.len() > 16 {
            self.set = Some(self.list.drain(..).collect());
        }
        true
    }

    fn contains(&self, name: &str) -> bool {
        match &self.set {
            Some(set) => set.contains(name),
            None => self.list.iter().any(|n| n == name),
        }
    }
}

const DUPLICATE: &str = "\u{0}duplicate member name";

/// Walks a JSON object once, refusing duplicate member names and handing each
/// member to `sink`; returns the names seen.
fn scan_object<'de, S: Sink<'de>>(
    json: &'de [u8],
    sink: &mut S,
) -> Result<Names<'de>, serde_json::Error> {
    struct ObjectVisitor<'s, S> {
        sink: &'s mut S,
    }

    impl<'de, S: Sink<'de>> Visitor<'de> for ObjectVisitor<'_, S> {
        type Value = Names<'de>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Names<'de>, A::Error> {
            let mut names = Names::default();
            while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
                self.sink.member(&name, &mut map)?;
                if !names.insert(name) {
                    return Err(de::Error::custom(DUPLICATE));
                }
            }
            Ok(names)
        }
    }

    impl<'de, S: Sink<'de>> DeserializeSeed<'de> for ObjectVisitor<'_, S> {
        type Value = Names<'de>;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Names<'de>, D::Error> {
            d.deserialize_map(self)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(json);
    let names = ObjectVisitor { sink }.deserialize(&mut de)?;
    de.end()?;
    Ok(names)
}

fn is_duplicate(e: &serde_json::Error) -> bool {
    e.is_data() && e.to_string().starts_with(DUPLICATE)
}

struct Header<'de> {
    alg: Option<Cow<'de, str>>,
    kid: Option<Cow<'de, str>>,
    typ: Option<Cow<'de, str>>,
    crit: bool,
}

impl<'de> Sink<'de> for Header<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "alg" => self.alg = Some(map.next_value::<Str<'de>>()?.0),
            "kid" => self.kid = Some(map.next_value::<Str<'de>>()?.0),
            "typ" => self.typ = Some(map.next_value::<Str<'de>>()?.0),
            // RFC 7515 section 4.1.11: we understand no extension, so any
            // `crit` at all (even an empty or malformed one) is refused.
            "crit" => {
                map.next_value::<IgnoredAny>()?;
                self.crit = true;
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

fn parse_header(json: &[u8]) -> Result<Header<'_>, AuthError> {
    let mut header = Header {
        alg: None,
        kid: None,
        typ: None,
        crit: false,
    };
    scan_object(json, &mut header)
        .map_err(|e| AuthError::new(AuthErrorKind::Malformed).with_source(JsonError::from(e)))?;
    if header.alg.is_none() {
        return Err(AuthError::new(AuthErrorKind::Malformed));
    }
    Ok(header)
}

/// The registered claims the verifier validates, borrowed from the payload.
#[derive(Default)]
struct ClaimsSink<'de> {
    iss: Option<Cow<'de, str>>,
    aud: Option<Vec<Cow<'de, str>>>,
    exp: Option<i64>,
    nbf: Option<i64>,
}

fn numeric_date<'de, A: MapAccess<'de>>(map: &mut A) -> Result<i64, A::Error> {
    to_seconds(map.next_value::<f64>()?)
        .ok_or_else(|| de::Error::custom("a NumericDate must be a finite number"))
}

impl<'de> Sink<'de> for ClaimsSink<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "iss" => self.iss = Some(map.next_value::<Str<'de>>()?.0),
            "aud" => self.aud = Some(map.next_value::<Audience<'de>>()?.0),
            "exp" => self.exp = Some(numeric_date(map)?),
            "nbf" => self.nbf = Some(numeric_date(map)?),
            "iat" => {
                numeric_date(map)?;
            }
            "sub" | "jti" | "sid" => {
                map.next_value::<Str<'de>>()?;
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> VerificationKey {
        VerificationKey::hmac([7u8; 32]).unwrap()
    }

    #[test]
    fn rfc9068_needs_an_issuer_and_an_audience() {
        assert!(Verifier::builder().key(key()).rfc9068().build().is_err());
        assert!(
            Verifier::builder()
                .key(key())
                .issuer("i")
                .rfc9068()
                .build()
                .is_err()
        );
        assert!(
            Verifier::builder()
                .key(key())
                .issuer("i")
                .audience("a")
                .rfc9068()
                .build()
                .is_ok()
        );
    }

    #[test]
    fn json_errors_never_quote_claim_values() {
        let verifier = Verifier::builder().key(key()).build().unwrap();
        let issuer =
            crate::TokenIssuer::new(crate::SigningKey::hmac(Algorithm::HS256, [7u8; 32]).unwrap());
        let token = issuer
            .access_token("u")
            .claim("level", "secret-claim-value")
            .sign()
            .unwrap();
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Numeric {
            level: u32,
        }
        let error = verifier.verify::<Numeric>(token.as_str()).unwrap_err();
        assert_eq!(error.kind(), AuthErrorKind::InvalidClaims);
        let debug = format!("{error:?} {}", std::error::Error::source(&error).unwrap());
        assert!(!debug.contains("secret-claim-value"), "{debug}");
    }
}
