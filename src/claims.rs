//! The decoded claims that [`JwtAuthLayer`](crate::JwtAuthLayer) puts into the
//! request extensions.

use std::{
    borrow::Cow,
    fmt,
    ops::Deref,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use serde::{Deserialize, Deserializer, de};

/// The registered claims of RFC 7519 section 4.1, plus `sid`.
///
/// Read them from [`Claims::registered`]. Time claims are seconds since the
/// Unix epoch (fractions are truncated).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RegisteredClaims {
    /// `iss`: who issued the token.
    pub iss: Option<String>,
    /// `sub`: whom the token is about (the user id).
    pub sub: Option<String>,
    /// `aud`: whom the token is for; a single string becomes a one-element list.
    #[serde(default, deserialize_with = "string_or_seq")]
    pub aud: Vec<String>,
    /// `exp`: when the token expires.
    #[serde(default, deserialize_with = "numeric_date")]
    pub exp: Option<i64>,
    /// `nbf`: when the token becomes valid.
    #[serde(default, deserialize_with = "numeric_date")]
    pub nbf: Option<i64>,
    /// `iat`: when the token was issued.
    #[serde(default, deserialize_with = "numeric_date")]
    pub iat: Option<i64>,
    /// `jti`: the token's unique id.
    pub jti: Option<String>,
    /// `sid`: the session the token belongs to (the refresh-token family).
    pub sid: Option<String>,
}

fn string_or_seq<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

pub(crate) fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = f64::deserialize(d)?;
    to_seconds(value)
        .map(Some)
        .ok_or_else(|| de::Error::custom("a NumericDate must be a finite number"))
}

pub(crate) fn to_seconds(value: f64) -> Option<i64> {
    // `as` saturates; NaN and infinities are refused outright.
    value.is_finite().then_some(value as i64)
}

/// Whether a layer that reads the verified payload from the request
/// extensions (a [`RequireRole`](crate::RequireRole) or
/// [`StepUp`](crate::step_up::StepUp) service) has been built in this
/// process. Until one has, the payload is not put into the extensions beside
/// the claims: a request then carries one entry, not two. Such a layer is
/// built before the stack serves, and one that finds no payload refuses
/// (401), so the saving can never let a request through.
static PAYLOAD_READERS: AtomicBool = AtomicBool::new(false);

/// Called by every layer that reads [`VerifiedPayload`] from the extensions,
/// when it wraps a service.
pub(crate) fn payload_is_read() {
    PAYLOAD_READERS.store(true, Ordering::Release);
}

/// Where the value of a string claim lies in the payload, as the
/// verifier's pass over it found it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Span {
    /// Not known: the value is read by parsing the payload (a payload
    /// that the verifier did not locate, or a value with escapes, whose
    /// text is not the value).
    #[default]
    Parse,
    /// The claim is not in the payload.
    Absent,
    /// The value is these bytes of the payload, verbatim.
    At(u32, u32),
}

impl Span {
    /// The span of `value`, read from `json` by the verifier.
    fn of(json: &[u8], value: Option<&Cow<'_, str>>) -> Self {
        let Some(value) = value else {
            return Self::Absent;
        };
        let Cow::Borrowed(text) = value else {
            return Self::Parse;
        };
        // A borrowed value is a slice of the payload: its place in it is the
        // distance between the two. Anything else (it cannot happen) is
        // left to the parse.
        let start = (text.as_ptr() as usize).wrapping_sub(json.as_ptr() as usize);
        match (start.checked_add(text.len()), u32::try_from(start)) {
            (Some(end), Ok(from)) if end <= json.len() => {
                u32::try_from(end).map_or(Self::Parse, |to| Self::At(from, to))
            }
            _ => Self::Parse,
        }
    }
}

/// Where the string claims `iss`, `sub`, `jti` and `sid` lie in a verified
/// payload, so that reading them parses nothing and allocates nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Spans {
    iss: Span,
    sub: Span,
    jti: Span,
    sid: Span,
}

impl Spans {
    /// The places of the values the verifier read from `json` (each one
    /// borrowed from `json` when it had no escape).
    pub(crate) fn locate(
        json: &[u8],
        iss: Option<&Cow<'_, str>>,
        sub: Option<&Cow<'_, str>>,
        jti: Option<&Cow<'_, str>>,
        sid: Option<&Cow<'_, str>>,
    ) -> Self {
        Self {
            iss: Span::of(json, iss),
            sub: Span::of(json, sub),
            jti: Span::of(json, jti),
            sid: Span::of(json, sid),
        }
    }
}

/// A string claim that [`Spans`] locates.
#[derive(Clone, Copy)]
pub(crate) enum StrClaim {
    Iss,
    Sub,
    Jti,
    Sid,
}

impl StrClaim {
    fn span(self, spans: &Spans) -> Span {
        match self {
            Self::Iss => spans.iss,
            Self::Sub => spans.sub,
            Self::Jti => spans.jti,
            Self::Sid => spans.sid,
        }
    }

    fn of(self, registered: &RegisteredClaims) -> Option<&str> {
        match self {
            Self::Iss => registered.iss.as_deref(),
            Self::Sub => registered.sub.as_deref(),
            Self::Jti => registered.jti.as_deref(),
            Self::Sid => registered.sid.as_deref(),
        }
    }
}

/// A verified token's payload: the JSON, in one shared allocation, and
/// `cnf.jkt` when the token is bound to a key. Cloned by reference count
/// into the cache and the claims.
#[derive(Clone)]
pub(crate) struct VerifiedPayload {
    json: Arc<[u8]>,
    /// `cnf.jkt`: the thumbprint of the key the token is bound to (RFC 9449).
    jkt: Option<Arc<str>>,
    /// For a cached token, its registered claims, parsed once for all the
    /// requests that carry it; `None` for a payload of one request.
    registered: Option<Arc<OnceLock<RegisteredClaims>>>,
    /// Where the string claims lie in `json`.
    spans: Spans,
}

impl VerifiedPayload {
    /// A payload copied into its shared buffer; its string claims are read
    /// at `spans` of `json` (the default: by a parse).
    pub(crate) fn new(json: &[u8], jkt: Option<&str>, spans: Spans) -> Self {
        Self {
            json: Arc::from(json),
            jkt: jkt.map(Arc::from),
            registered: None,
            spans,
        }
    }

    /// A payload already in its shared buffer.
    pub(crate) fn from_parts(json: Arc<[u8]>, jkt: Option<Arc<str>>, spans: Spans) -> Self {
        Self {
            json,
            jkt,
            registered: None,
            spans,
        }
    }

    /// A string claim, without a parse when the verifier located it:
    /// `Ok(None)` when it is absent, `Err(())` when only a parse can say.
    fn located(&self, claim: StrClaim) -> Result<Option<&str>, ()> {
        match claim.span(&self.spans) {
            Span::Absent => Ok(None),
            // The payload is UTF-8 (the verifier read it as a `str`) and the
            // span is a whole string value: this check cannot fail.
            Span::At(from, to) => self
                .json
                .get(from as usize..to as usize)
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .map(Some)
                .ok_or(()),
            Span::Parse => Err(()),
        }
    }

    /// Whether `claim` is read without a parse.
    #[cfg(test)]
    pub(crate) fn is_located(&self, claim: StrClaim) -> bool {
        self.located(claim).is_ok()
    }

    /// A string claim of the payload, for a check that holds the payload
    /// rather than the claims (it outlives the request's borrow): borrowed
    /// when the verifier located it, else parsed.
    pub(crate) fn string_claim(&self, claim: StrClaim) -> Option<Cow<'_, str>> {
        match self.located(claim) {
            Ok(value) => value.map(Cow::Borrowed),
            Err(()) => match &self.registered {
                Some(shared) => claim
                    .of(shared.get_or_init(|| self.registered()))
                    .map(Cow::Borrowed),
                None => claim
                    .of(&self.registered())
                    .map(|v| Cow::Owned(v.to_owned())),
            },
        }
    }

    /// The payload as the cache keeps it: its registered claims, once
    /// parsed, serve every request with the token.
    pub(crate) fn shared(mut self) -> Self {
        self.registered = Some(Arc::default());
        self
    }

    /// `cnf.jkt`, read by the verifier's one pass over the payload.
    pub(crate) fn jkt(&self) -> Option<&str> {
        self.jkt.as_deref()
    }

    pub(crate) fn json(&self) -> &[u8] {
        &self.json
    }

    fn registered(&self) -> RegisteredClaims {
        // The verifier already parsed these claims with the same types, so
        // this cannot fail; a default is still the safe answer if it did.
        serde_json::from_slice(&self.json).unwrap_or_default()
    }
}

/// The verified claims of the request's token: the application's own claims
/// type `C` and the registered claims.
///
/// [`JwtAuthLayer`](crate::JwtAuthLayer) inserts it into the request
/// extensions. It dereferences to `C`.
///
/// ```
/// use serde::Deserialize;
/// use tower_jwt_auth::Claims;
///
/// #[derive(Clone, Deserialize)]
/// struct MyClaims {
///     role: String,
/// }
///
/// fn handler(request: http::Request<()>) {
///     if let Some(claims) = request.extensions().get::<Claims<MyClaims>>() {
///         println!("{} is a {}", claims.registered().sub.as_deref().unwrap_or("?"), claims.role);
///     }
/// }
/// ```
#[derive(Clone)]
pub struct Claims<C> {
    custom: C,
    payload: VerifiedPayload,
    /// Parsed from the payload when first asked for (unless the payload
    /// shares them, see [`VerifiedPayload::shared`]).
    registered: OnceLock<Box<RegisteredClaims>>,
}

impl<C> Claims<C> {
    pub(crate) fn new(custom: C, payload: VerifiedPayload) -> Self {
        Self {
            custom,
            payload,
            registered: OnceLock::new(),
        }
    }

    /// Puts the claims into `extensions`: one entry, and a second one with
    /// the payload once a layer that is not generic over `C` reads it
    /// (see [`payload_is_read`]).
    pub(crate) fn insert_into(self, extensions: &mut http::Extensions)
    where
        C: Clone + Send + Sync + 'static,
    {
        if PAYLOAD_READERS.load(Ordering::Acquire) {
            extensions.insert(self.payload.clone());
        }
        extensions.insert(self);
    }

    /// The application's claims.
    pub fn custom(&self) -> &C {
        &self.custom
    }

    /// The application's claims, by value.
    pub fn into_custom(self) -> C {
        self.custom
    }

    /// The registered claims (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`, `sid`).
    pub fn registered(&self) -> &RegisteredClaims {
        match &self.payload.registered {
            Some(shared) => shared.get_or_init(|| self.payload.registered()),
            None => self
                .registered
                .get_or_init(|| Box::new(self.payload.registered())),
        }
    }

    /// A string claim: where the verifier found it in the payload, or
    /// else from the registered claims parsed once.
    fn string_claim(&self, claim: StrClaim) -> Option<&str> {
        self.payload
            .located(claim)
            .unwrap_or_else(|()| claim.of(self.registered()))
    }

    /// The payload the claims were decoded from, for a check whose future
    /// outlives the borrow of the claims.
    pub(crate) fn payload(&self) -> &VerifiedPayload {
        &self.payload
    }

    /// The subject (`sub`), usually the user id.
    ///
    /// Like [`issuer`](Self::issuer), [`token_id`](Self::token_id) and
    /// [`session_id`](Self::session_id), it reads the value where the
    /// verifier found it in the payload: no parse and no allocation (a
    /// value written with JSON escapes is read from
    /// [`registered`](Self::registered) instead). The value is always the
    /// one `registered()` holds.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer, VerificationKey, Verifier};
    ///
    /// let secret = b"a secret of at least thirty-two bytes!";
    /// let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, secret)?);
    /// let verifier = Verifier::builder().key(VerificationKey::hmac(secret)?).build()?;
    /// let token = issuer.access_token("user-1").session_id("s-1").sign()?;
    ///
    /// let claims = verifier.verify::<serde_json::Value>(token.as_str())?;
    /// assert_eq!(claims.subject(), Some("user-1"));
    /// assert_eq!(claims.session_id(), Some("s-1"));
    /// assert_eq!(claims.token_id(), claims.registered().jti.as_deref());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn subject(&self) -> Option<&str> {
        self.string_claim(StrClaim::Sub)
    }

    /// The session the token belongs to (`sid`, the refresh-token family
    /// its refresh token rotates in), without a parse or an allocation;
    /// `None` for a token without one. See [`subject`](Self::subject).
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer, VerificationKey, Verifier};
    ///
    /// let secret = b"a secret of at least thirty-two bytes!";
    /// let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, secret)?);
    /// let verifier = Verifier::builder().key(VerificationKey::hmac(secret)?).build()?;
    /// // An access token signed outside a refresh-token session has none.
    /// let token = issuer.access_token("user-1").sign()?;
    ///
    /// let claims = verifier.verify::<serde_json::Value>(token.as_str())?;
    /// assert_eq!(claims.session_id(), None);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn session_id(&self) -> Option<&str> {
        self.string_claim(StrClaim::Sid)
    }

    /// The issuer (`iss`), without a parse or an allocation. See
    /// [`subject`](Self::subject).
    pub fn issuer(&self) -> Option<&str> {
        self.string_claim(StrClaim::Iss)
    }

    /// The token's unique id (`jti`), without a parse or an allocation. See
    /// [`subject`](Self::subject).
    pub fn token_id(&self) -> Option<&str> {
        self.string_claim(StrClaim::Jti)
    }

    /// The JWK SHA-256 thumbprint the token is bound to (`cnf.jkt`, RFC
    /// 9449 section 6), if it is a DPoP-bound token. The layer accepts such a
    /// token only with a DPoP proof signed by that key.
    pub fn jkt(&self) -> Option<&str> {
        self.payload.jkt()
    }
}

impl<C> Deref for Claims<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.custom
    }
}

impl<C: fmt::Debug> fmt::Debug for Claims<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The full claim set is not printed: it can carry personal data.
        f.debug_struct("Claims")
            .field("sub", &self.subject())
            .field("custom", &self.custom)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_payloads_parse_their_registered_claims_once() {
        let json = br#"{"sub":"u","sid":"s","aud":"a","exp":5}"#;
        let one = Claims::new((), VerifiedPayload::new(json, None, Spans::default()));
        let other = Claims::new((), VerifiedPayload::new(json, None, Spans::default()));
        assert_eq!(one.subject(), Some("u"));
        assert_eq!(one.registered(), other.registered());
        assert!(!std::ptr::eq(one.registered(), other.registered()));

        let shared = VerifiedPayload::new(json, Some("k"), Spans::default()).shared();
        let (a, b) = (Claims::new((), shared.clone()), Claims::new((), shared));
        assert!(std::ptr::eq(a.registered(), b.registered()));
        assert_eq!(a.registered().sid.as_deref(), Some("s"));
        assert_eq!(a.registered().aud, ["a"]);
        assert_eq!(a.jkt(), Some("k"));
    }
}
