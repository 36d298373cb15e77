//! The decoded claims that [`JwtAuthLayer`](crate::JwtAuthLayer) puts into the
//! request extensions.

use std::{
    fmt,
    ops::Deref,
    sync::{Arc, OnceLock},
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

/// A verified token's payload, shared by every extension that refers to it.
pub(crate) struct Payload {
    json: Box<[u8]>,
    registered: OnceLock<RegisteredClaims>,
    /// `cnf.jkt`: the thumbprint of the key the token is bound to (RFC 9449).
    jkt: Option<Box<str>>,
}

/// The verified, undecoded payload; inserted next to [`Claims`] so that
/// layers that are not generic over the claims type (roles, sessions) can read it.
#[derive(Clone)]
pub(crate) struct VerifiedPayload(pub(crate) Arc<Payload>);

impl VerifiedPayload {
    pub(crate) fn new(json: Box<[u8]>, jkt: Option<Box<str>>) -> Self {
        Self(Arc::new(Payload {
            json,
            registered: OnceLock::new(),
            jkt,
        }))
    }

    /// `cnf.jkt`, read by the verifier's one pass over the payload.
    pub(crate) fn jkt(&self) -> Option<&str> {
        self.0.jkt.as_deref()
    }

    pub(crate) fn json(&self) -> &[u8] {
        &self.0.json
    }

    pub(crate) fn registered(&self) -> &RegisteredClaims {
        self.0.registered.get_or_init(|| {
            // The verifier already parsed these claims with the same types, so
            // this cannot fail; a default is still the safe answer if it did.
            serde_json::from_slice(&self.0.json).unwrap_or_default()
        })
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
}

impl<C> Claims<C> {
    pub(crate) fn new(custom: C, payload: VerifiedPayload) -> Self {
        Self { custom, payload }
    }

    /// Puts the claims into `extensions`, with the payload beside them for
    /// the layers that are not generic over `C`.
    pub(crate) fn insert_into(self, extensions: &mut http::Extensions)
    where
        C: Clone + Send + Sync + 'static,
    {
        extensions.insert(self.payload.clone());
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
        self.payload.registered()
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
