//! The decoded claims that [`JwtAuthLayer`](crate::JwtAuthLayer) puts into the
//! request extensions.

use std::{
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
}

impl VerifiedPayload {
    pub(crate) fn new(json: &[u8], jkt: Option<&str>) -> Self {
        Self {
            json: Arc::from(json),
            jkt: jkt.map(Arc::from),
            registered: None,
        }
    }

    /// A payload already in its shared buffer.
    pub(crate) fn from_parts(json: Arc<[u8]>, jkt: Option<Arc<str>>) -> Self {
        Self {
            json,
            jkt,
            registered: None,
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

    /// The subject (`sub`), usually the user id.
    pub fn subject(&self) -> Option<&str> {
        self.registered().sub.as_deref()
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
            .field("sub", &self.registered().sub)
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
        let one = Claims::new((), VerifiedPayload::new(json, None));
        let other = Claims::new((), VerifiedPayload::new(json, None));
        assert_eq!(one.subject(), Some("u"));
        assert_eq!(one.registered(), other.registered());
        assert!(!std::ptr::eq(one.registered(), other.registered()));

        let shared = VerifiedPayload::new(json, Some("k")).shared();
        let (a, b) = (Claims::new((), shared.clone()), Claims::new((), shared));
        assert!(std::ptr::eq(a.registered(), b.registered()));
        assert_eq!(a.registered().sid.as_deref(), Some("s"));
        assert_eq!(a.registered().aud, ["a"]);
        assert_eq!(a.jkt(), Some("k"));
    }
}
