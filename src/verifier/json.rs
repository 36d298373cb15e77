//! The one JSON pass over a token's header and payload: each member handed
//! to a sink in order, duplicate member names refused (RFC 7515 section 4,
//! RFC 7519 section 4), strings borrowed from the input where they can be.

use std::{borrow::Cow, collections::HashSet, fmt};

use serde::{
    Deserialize,
    de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::value::RawValue;

use crate::{
    claims::to_seconds,
    error::{AuthError, AuthErrorKind, JsonError},
};

/// A JSON string that borrows from the input when it has no escapes.
pub(crate) struct Str<'de>(Cow<'de, str>);

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

/// Receives each member of a JSON object, in order.
pub(crate) trait Sink<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error>;
}

/// The names seen so far; a repeated name is an error (RFC 7515 section 4,
/// RFC 7519 section 4: names must be unique, and we reject rather than guess).
///
/// The first names sit in a fixed array (no allocation for the usual header
/// and payload); a hash set takes over beyond that, so a hostile payload with
/// thousands of names stays linear overall.
pub(crate) struct Names<'de> {
    inline: [Cow<'de, str>; INLINE_NAMES],
    len: usize,
    set: Option<HashSet<Cow<'de, str>>>,
}

const INLINE_NAMES: usize = 16;

impl Default for Names<'_> {
    fn default() -> Self {
        Self {
            inline: [const { Cow::Borrowed("") }; INLINE_NAMES],
            len: 0,
            set: None,
        }
    }
}

impl<'de> Names<'de> {
    fn insert(&mut self, name: Cow<'de, str>) -> bool {
        if let Some(set) = &mut self.set {
            return set.insert(name);
        }
        if self.inline[..self.len].contains(&name) {
            return false;
        }
        if self.len == INLINE_NAMES {
            let mut set: HashSet<_> = self.inline.iter_mut().map(std::mem::take).collect();
            set.insert(name);
            self.set = Some(set);
            self.len = 0;
            return true;
        }
        self.inline[self.len] = name;
        self.len += 1;
        true
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        match &self.set {
            Some(set) => set.contains(name),
            None => self.inline[..self.len].iter().any(|n| n == name),
        }
    }
}

/// Why a JSON object could not be scanned.
pub(crate) enum ScanError {
    /// A member name appears twice.
    Duplicate,
    /// Not JSON, or a member of the wrong type.
    Json(serde_json::Error),
}

impl ScanError {
    /// The error kind for a token whose header or payload failed the scan.
    pub(crate) fn into_auth_error(self, data: AuthErrorKind) -> AuthError {
        match self {
            Self::Duplicate => AuthError::new(AuthErrorKind::DuplicateClaim),
            Self::Json(e) => {
                let kind = if e.is_data() {
                    data
                } else {
                    AuthErrorKind::Malformed
                };
                AuthError::new(kind).with_source(JsonError::from(e))
            }
        }
    }
}

/// Walks a JSON object once, refusing duplicate member names and handing each
/// member to `sink`; returns the names seen.
pub(crate) fn scan_object<'de, S: Sink<'de>>(
    json: &'de [u8],
    sink: &mut S,
) -> Result<Names<'de>, ScanError> {
    struct ObjectVisitor<'s, S> {
        sink: &'s mut S,
        duplicate: &'s mut bool,
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
                    *self.duplicate = true;
                    return Err(de::Error::custom("duplicate member name"));
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

    let mut duplicate = false;
    let mut de = serde_json::Deserializer::from_slice(json);
    let scanned = ObjectVisitor {
        sink,
        duplicate: &mut duplicate,
    }
    .deserialize(&mut de)
    .and_then(|names| de.end().map(|()| names));
    match scanned {
        Ok(names) => Ok(names),
        Err(_) if duplicate => Err(ScanError::Duplicate),
        Err(e) => Err(ScanError::Json(e)),
    }
}

pub(crate) struct Header<'de> {
    pub(crate) alg: Option<Cow<'de, str>>,
    pub(crate) kid: Option<Cow<'de, str>>,
    pub(crate) typ: Option<Cow<'de, str>>,
    pub(crate) crit: bool,
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

impl<'de> Sink<'de> for ClaimsSink<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "iss" => self.iss = Some(map.next_value::<Str<'de>>()?.0),
            "aud" => {
                let raw = map.next_value::<&'de RawValue>()?;
                self.aud = Some(Audience::new(raw).map_err(de::Error::custom)?);
            }
            "exp" => self.exp = Some(numeric_date(map)?),
            "nbf" => self.nbf = Some(numeric_date(map)?),
            "cnf" => self.jkt = map.next_value::<Confirmation<'de>>()?.jkt,
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
