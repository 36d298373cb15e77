//! The one JSON pass over a token's header and payload, through the
//! crate's strict reader ([`crate::json`]): each member handed to a sink in
//! order, duplicate member names refused, strings borrowed from the input
//! where they can be.

use std::{borrow::Cow, fmt};

use serde::{
    Deserialize,
    de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::value::RawValue;

use crate::{
    claims::to_seconds,
    error::{AuthError, AuthErrorKind},
    json::{ScanError, Sink, Str, scan_object},
};

/// `aud`: one string or an array of strings, kept as the raw JSON it was
/// (no allocation) and read again when matched against the policy.
#[derive(Clone, Copy)]
pub(crate) struct Audience<'de>(&'de RawValue);

impl<'de> Audience<'de> {
    /// Checks the shape (a string or an array of strings) while scanning.
    fn new(raw: &'de RawValue) -> Result<Self, serde_json::Error> {
        let audience = Self(raw);
        audience.any(|_| false)?;
        Ok(audience)
    }

    /// Whether `matches` holds for one of the audiences.
    pub(crate) fn any(&self, matches: impl FnMut(&str) -> bool) -> Result<bool, serde_json::Error> {
        struct Any<F>(F);
        impl<'de, F: FnMut(&str) -> bool> Visitor<'de> for Any<F> {
            type Value = bool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(mut self, v: &str) -> Result<bool, E> {
                Ok((self.0)(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<bool, A::Error> {
                let mut found = false;
                // Every element is read, so a malformed array fails whatever
                // it matched.
                while let Some(Str(aud)) = seq.next_element::<Str<'de>>()? {
                    found = found || (self.0)(&aud);
                }
                Ok(found)
            }
        }
        let mut de = serde_json::Deserializer::from_str(self.0.get());
        de::Deserializer::deserialize_any(&mut de, Any(matches))
    }
}

pub(crate) struct Header<'de> {
    pub(crate) alg: Option<Cow<'de, str>>,
    pub(crate) kid: Option<Cow<'de, str>>,
    pub(crate) typ: Option<Cow<'de, str>>,
    pub(crate) crit: bool,
}

impl<'de> Sink<'de> for Header<'de> {
    fn member<A: MapAccess<'de>>(
        &mut self,
        name: &Cow<'de, str>,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match name.as_ref() {
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

pub(crate) fn parse_header(json: &[u8]) -> Result<Header<'_>, AuthError> {
    let mut header = Header {
        alg: None,
        kid: None,
        typ: None,
        crit: false,
    };
    // A header is never "invalid claims": anything wrong in it is malformed.
    scan_object(json, &mut header).map_err(|e| match e {
        ScanError::Duplicate => AuthError::new(AuthErrorKind::Malformed),
        e => e.into_auth_error(AuthErrorKind::Malformed),
    })?;
    if header.alg.is_none() {
        return Err(AuthError::new(AuthErrorKind::Malformed));
    }
    Ok(header)
}

/// The registered claims the verifier validates, borrowed from the payload.
#[derive(Default)]
pub(crate) struct ClaimsSink<'de> {
    pub(crate) iss: Option<Cow<'de, str>>,
    pub(crate) aud: Option<Audience<'de>>,
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: Option<i64>,
    /// `cnf.jkt` (RFC 9449 section 6.1).
    pub(crate) jkt: Option<Cow<'de, str>>,
    pub(crate) iat: Option<i64>,
    /// The members whose value is `null`: absent, to the required-claims
    /// check. Rare, so usually never allocated.
    pub(crate) nulls: Vec<Cow<'de, str>>,
    /// The first claim of the RFC 9068 profile (`client_id`, `scope`,
    /// `auth_time`, `acr`, `amr`) whose value has the wrong type. Recorded,
    /// not refused: only a verifier with the profile refuses it.
    pub(crate) mistyped: Option<&'static str>,
}

/// `cnf` (RFC 7800): an object; only `jkt` is read.
#[derive(Deserialize)]
struct Confirmation<'a> {
    #[serde(borrow, default)]
    jkt: Option<Cow<'a, str>>,
}

fn numeric_date<'de, A: MapAccess<'de>>(map: &mut A) -> Result<i64, A::Error> {
    to_seconds(map.next_value::<f64>()?)
        .ok_or_else(|| de::Error::custom("a NumericDate must be a finite number"))
}

impl<'de> ClaimsSink<'de> {
    /// Reads a claim of the RFC 9068 profile and records whether its type fits.
    fn profile_claim<A: MapAccess<'de>>(
        &mut self,
        name: &Cow<'de, str>,
        expected: &'static str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        let shape = map.next_value::<Shape>()?;
        if shape == Shape::Null {
            self.nulls.push(name.clone());
        }
        let fits = match expected {
            "auth_time" => shape == Shape::Number,
            "amr" => shape == Shape::Strings,
            // client_id, scope, acr
            _ => shape == Shape::String,
        };
        if !fits {
            self.mistyped.get_or_insert(expected);
        }
        Ok(())
    }
}

impl<'de> Sink<'de> for ClaimsSink<'de> {
    fn member<A: MapAccess<'de>>(
        &mut self,
        name: &Cow<'de, str>,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match name.as_ref() {
            "iss" => self.iss = Some(map.next_value::<Str<'de>>()?.0),
            "aud" => {
                let raw = map.next_value::<&'de RawValue>()?;
                self.aud = Some(Audience::new(raw).map_err(de::Error::custom)?);
            }
            "exp" => self.exp = Some(numeric_date(map)?),
            "nbf" => self.nbf = Some(numeric_date(map)?),
            "cnf" => self.jkt = map.next_value::<Confirmation<'de>>()?.jkt,
            "iat" => self.iat = Some(numeric_date(map)?),
            "sub" | "jti" | "sid" => {
                map.next_value::<Str<'de>>()?;
            }
            // RFC 9068 section 2.2 (and RFC 8693 section 4.3 for client_id).
            "client_id" => self.profile_claim(name, "client_id", map)?,
            "scope" => self.profile_claim(name, "scope", map)?,
            "acr" => self.profile_claim(name, "acr", map)?,
            "auth_time" => self.profile_claim(name, "auth_time", map)?,
            "amr" => self.profile_claim(name, "amr", map)?,
            _ => {
                // `Option` reads `null` and skips anything else unread.
                if map.next_value::<Option<IgnoredAny>>()?.is_none() {
                    self.nulls.push(name.clone());
                }
            }
        }
        Ok(())
    }
}

/// The type of a JSON value, for the claims whose type a profile fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Null,
    Bool,
    /// A number (a NumericDate).
    Number,
    String,
    /// An array of strings only (an empty one included).
    Strings,
    /// Any other array.
    Array,
    Object,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Bool)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Number)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Number)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
                // serde_json refuses numbers beyond f64: what it hands over is finite.
                Ok(Shape::Number)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::String)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                let mut strings = true;
                while let Some(item) = seq.next_element::<Shape>()? {
                    strings &= item == Shape::String;
                }
                Ok(if strings {
                    Shape::Strings
                } else {
                    Shape::Array
                })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shape::Object)
            }
        }
        d.deserialize_any(V)
    }
}
