//! The one JSON pass over a token's header and payload, through the
//! crate's strict reader ([`crate::json`]): each member handed to a sink in
//! order, duplicate member names refused, strings borrowed from the input
//! where they can be.

use std::{borrow::Cow, fmt, marker::PhantomData};

use serde::{
    Deserialize,
    de::{
        self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor,
        value::{BorrowedStrDeserializer, StrDeserializer},
    },
};
use serde_json::value::RawValue;

use crate::{
    claims::{Spans, to_seconds},
    error::{AuthError, AuthErrorKind},
    json::{Names, ScanError, Sink, Str, scan_object},
};

/// `aud`: one string or an array of strings, kept as the raw JSON it was
/// (no allocation) and read again when matched against the policy.
#[derive(Clone, Copy)]
pub(crate) struct Audience<'de>(&'de str);

impl<'de> Audience<'de> {
    /// Checks the shape (a string or an array of strings) of the raw JSON
    /// value `raw` while scanning.
    pub(super) fn new(raw: &'de str) -> Result<Self, serde_json::Error> {
        let audience = Self(raw);
        audience.any(|_| false)?;
        Ok(audience)
    }

    /// A value the quick reader found to be a string or an array of
    /// strings, without escapes.
    pub(super) fn plain(raw: &'de str) -> Self {
        Self(raw)
    }

    /// Whether `matches` holds for one of the audiences.
    pub(crate) fn any(
        &self,
        mut matches: impl FnMut(&str) -> bool,
    ) -> Result<bool, serde_json::Error> {
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
        // The usual audience, one string without escapes, needs no parse.
        if let Some(plain) = self
            .0
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .filter(|inner| !inner.contains(['"', '\\']))
        {
            return Ok(matches(plain));
        }
        let mut de = serde_json::Deserializer::from_str(self.0);
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
    let mut names = Names::default();
    scan_object(json, &mut header, &mut names).map_err(|e| match e {
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
    /// `sub`, `jti` and `sid`: not checked, but located for
    /// [`Claims`](crate::Claims)' accessors.
    pub(crate) sub: Option<Cow<'de, str>>,
    pub(crate) jti: Option<Cow<'de, str>>,
    pub(crate) sid: Option<Cow<'de, str>>,
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

impl<'de> ClaimsSink<'de> {
    /// A string claim ([`Watch::Str`]).
    fn string(&mut self, name: &str, value: Cow<'de, str>) {
        let slot = match name {
            "iss" => &mut self.iss,
            "sub" => &mut self.sub,
            "jti" => &mut self.jti,
            _ => &mut self.sid,
        };
        *slot = Some(value);
    }

    /// Where `iss`, `sub`, `jti` and `sid` lie in `json`, the payload this
    /// sink read.
    pub(crate) fn spans(&self, json: &[u8]) -> Spans {
        Spans::locate(
            json,
            self.iss.as_ref(),
            self.sub.as_ref(),
            self.jti.as_ref(),
            self.sid.as_ref(),
        )
    }

    /// A NumericDate claim ([`Watch::Date`]).
    fn date<E: de::Error>(&mut self, name: &str, value: f64) -> Result<(), E> {
        let seconds = to_seconds(value)
            .ok_or_else(|| de::Error::custom("a NumericDate must be a finite number"))?;
        match name {
            "exp" => self.exp = Some(seconds),
            "nbf" => self.nbf = Some(seconds),
            _ => self.iat = Some(seconds),
        }
        Ok(())
    }

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
        match Watch::of(name) {
            Watch::Str => self.string(name, map.next_value::<Str<'de>>()?.0),
            Watch::Date => self.date(name, map.next_value::<f64>()?)?,
            Watch::Raw | Watch::No => self.other(name, map)?,
        }
        Ok(())
    }
}

impl<'de> ClaimsSink<'de> {
    /// Any claim but the strings and the dates.
    fn other<A: MapAccess<'de>>(
        &mut self,
        name: &Cow<'de, str>,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match name.as_ref() {
            "aud" => {
                let raw = map.next_value::<&'de RawValue>()?;
                self.aud = Some(Audience::new(raw.get()).map_err(de::Error::custom)?);
            }
            "cnf" => self.jkt = map.next_value::<Confirmation<'de>>()?.jkt,
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

/// The payload's one pass: duplicate names refused, the registered claims
/// read into `sink` (names in `names`), and the application's claims type
/// `C` decoded from the same walk.
///
/// `C` drives the walk: it sees a deserializer of the payload object whose
/// members pass through here first. A member the verifier reads (the
/// registered claims, the profile's, and the `required` ones, whose `null`
/// it must see) is read once into a [`Captured`] value, handed to the sink,
/// and then to `C` from that value; any other member goes to `C` untouched.
///
/// `None` when anything at all fails, `C`'s own errors included: the caller
/// then runs the two passes of old ([`scan_object`] and a plain decode),
/// which report the error exactly. So this pass never decides an outcome of
/// its own; it only makes the common, valid case fast.
pub(crate) fn decode_once<'de, C: Deserialize<'de>>(
    json: &'de [u8],
    sink: &mut ClaimsSink<'de>,
    names: &mut Names<'de>,
    required: &[String],
) -> Option<C> {
    // UTF-8 checked once for the whole payload, not string by string.
    let mut de = serde_json::Deserializer::from_str(std::str::from_utf8(json).ok()?);
    let mut visited = false;
    let top = Top {
        de: &mut de,
        walk: Walk {
            sink,
            names,
            required,
            visited: &mut visited,
        },
    };
    let custom = C::deserialize(top).ok()?;
    de.end().ok()?;
    // Every member went through `Members` only if `C` walked the object
    // (serde_json refuses a map left half read).
    visited.then_some(custom)
}

/// What [`decode_once`] carries through the walk.
struct Walk<'s, 'de> {
    sink: &'s mut ClaimsSink<'de>,
    names: &'s mut Names<'de>,
    required: &'s [String],
    visited: &'s mut bool,
}

/// The payload as `C` sees it: always the object (the caller checked that
/// the payload is one), whatever `C` asks for.
struct Top<'s, 'a, 'de> {
    de: &'a mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
    walk: Walk<'s, 'de>,
}

impl<'de> de::Deserializer<'de> for Top<'_, '_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_map(
            self.de,
            Object {
                visitor,
                walk: self.walk,
            },
        )
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// `C`'s visitor, handed the members through [`Members`].
struct Object<'s, 'de, V> {
    visitor: V,
    walk: Walk<'s, 'de>,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Object<'_, 'de, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        *self.walk.visited = true;
        self.visitor.visit_map(Members {
            map,
            walk: self.walk,
            current: None,
        })
    }
}

/// The payload's members, as `C` reads them.
struct Members<'s, 'de, A> {
    map: A,
    walk: Walk<'s, 'de>,
    /// The name whose value comes next.
    current: Option<Cow<'de, str>>,
}

/// How a member of the payload is read.
#[derive(Clone, Copy)]
enum Watch {
    /// By the claims type alone.
    No,
    /// A string (`iss`, `sub`, `jti`, `sid`).
    Str,
    /// A NumericDate (`exp`, `nbf`, `iat`).
    Date,
    /// Any other claim the sink reads, and the required claims.
    Raw,
}

impl Watch {
    /// The claims the verifier reads.
    fn of(name: &str) -> Self {
        match name {
            "iss" | "sub" | "jti" | "sid" => Self::Str,
            "exp" | "nbf" | "iat" => Self::Date,
            "aud" | "cnf" | "client_id" | "scope" | "acr" | "auth_time" | "amr" => Self::Raw,
            _ => Self::No,
        }
    }

    /// The claims the verifier reads, and the `required` ones: whether they
    /// are `null` matters.
    fn of_payload(name: &str, required: &[String]) -> Self {
        match Self::of(name) {
            Self::No if required.iter().any(|r| r == name) => Self::Raw,
            watch => watch,
        }
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Members<'_, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(Str(name)) = self.map.next_key::<Str<'de>>()? else {
            return Ok(None);
        };
        if !self.walk.names.insert(name.clone()) {
            return Err(de::Error::custom("duplicate member name"));
        }
        let key = match &name {
            Cow::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::new(s))?,
            Cow::Owned(s) => seed.deserialize(StrDeserializer::new(s))?,
        };
        self.current = Some(name);
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let name = self
            .current
            .take()
            .ok_or_else(|| de::Error::custom("a value without a name"))?;
        let sink = &mut *self.walk.sink;
        let captured = match Watch::of_payload(&name, self.walk.required) {
            Watch::No => return self.map.next_value_seed(seed),
            Watch::Str => {
                let value = self.map.next_value::<Str<'de>>()?.0;
                sink.string(&name, value.clone());
                Captured::Str(value)
            }
            Watch::Date => {
                let value = self.map.next_value::<Number>()?;
                sink.date(&name, value.as_f64())?;
                Captured::Num(value)
            }
            Watch::Raw => {
                let captured = Captured::Raw(self.map.next_value::<&'de RawValue>()?);
                sink.other(
                    &name,
                    &mut OneValue {
                        value: Some(&captured),
                        error: PhantomData::<A::Error>,
                    },
                )?;
                captured
            }
        };
        seed.deserialize(CapturedValue {
            value: &captured,
            error: PhantomData,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// A JSON number as serde_json reads it.
#[derive(Clone, Copy)]
enum Number {
    U(u64),
    I(i64),
    F(f64),
}

impl Number {
    /// As serde_json hands it to an `f64`.
    #[allow(clippy::cast_precision_loss)] // so does serde_json
    fn as_f64(self) -> f64 {
        match self {
            Self::U(n) => n as f64,
            Self::I(n) => n as f64,
            Self::F(n) => n,
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number::U(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number::I(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number::F(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A member's value, read once by the walk.
enum Captured<'de> {
    Str(Cow<'de, str>),
    Num(Number),
    Raw(&'de RawValue),
}

/// The one value of a member, for the sink's `next_value`.
struct OneValue<'a, 'de, E> {
    value: Option<&'a Captured<'de>>,
    error: PhantomData<E>,
}

impl<'de, E: de::Error> MapAccess<'de> for OneValue<'_, 'de, E> {
    type Error = E;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, _: K) -> Result<Option<K::Value>, E> {
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, E> {
        let value = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value read twice"))?;
        seed.deserialize(CapturedValue {
            value,
            error: PhantomData,
        })
    }
}

/// A captured value as a deserializer that answers as serde_json answers
/// for that value, and refuses (so that the caller falls back to the plain
/// decode) where it could not be sure to.
struct CapturedValue<'a, 'de, E> {
    value: &'a Captured<'de>,
    error: PhantomData<E>,
}

/// The name serde_json's `RawValue` asks for: a captured string or number
/// has no raw text to give, so it refuses.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

impl<'de, E: de::Error> CapturedValue<'_, 'de, E> {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match self.value {
            Captured::Str(s) => de::Unexpected::Str(s),
            Captured::Num(Number::U(n)) => de::Unexpected::Unsigned(*n),
            Captured::Num(Number::I(n)) => de::Unexpected::Signed(*n),
            Captured::Num(Number::F(n)) => de::Unexpected::Float(*n),
            Captured::Raw(_) => de::Unexpected::Other("a JSON value"),
        }
    }

    /// For the requests serde_json answers for a string (`str` and alike)
    /// or a number (all numeric types but 128-bit ones), and refuses for
    /// the other kind.
    fn scalar<V: Visitor<'de>>(self, visitor: V, string: bool) -> Result<V::Value, E> {
        match (self.value, string) {
            (Captured::Str(Cow::Borrowed(s)), true) => visitor.visit_borrowed_str(s),
            (Captured::Str(Cow::Owned(s)), true) => visitor.visit_str(s),
            (Captured::Num(Number::U(n)), false) => visitor.visit_u64(*n),
            (Captured::Num(Number::I(n)), false) => visitor.visit_i64(*n),
            (Captured::Num(Number::F(n)), false) => visitor.visit_f64(*n),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        }
    }

    fn refuse<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        Err(de::Error::invalid_type(self.unexpected(), &visitor))
    }
}

/// Forwards a request to serde_json over the raw text, or answers it for
/// a captured string or number with `$scalar`.
macro_rules! captured_methods {
    ($($method:ident ($($arg:ident: $ty:ty),*) => $how:ident $($string:expr)?;)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, E> {
            if let Captured::Raw(raw) = self.value {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                return de::Deserializer::$method(&mut de, $($arg,)* visitor)
                    .map_err(de::Error::custom);
            }
            $(let _ = $arg;)*
            captured_methods!(@ $how self visitor $($string)?)
        }
    )*};
    (@ scalar $self:ident $visitor:ident $string:expr) => { $self.scalar($visitor, $string) };
    (@ refuse $self:ident $visitor:ident) => { $self.refuse($visitor) };
}

impl<'de, E: de::Error> de::Deserializer<'de> for CapturedValue<'_, 'de, E> {
    type Error = E;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.value {
            Captured::Raw(raw) => {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                de::Deserializer::deserialize_any(&mut de, visitor).map_err(de::Error::custom)
            }
            Captured::Str(_) => self.scalar(visitor, true),
            Captured::Num(_) => self.scalar(visitor, false),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.value {
            Captured::Raw(raw) => {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                de::Deserializer::deserialize_option(&mut de, visitor).map_err(de::Error::custom)
            }
            // Never `null`: captured strings and numbers are `Some`.
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, E> {
        match self.value {
            Captured::Raw(raw) => {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                de::Deserializer::deserialize_newtype_struct(&mut de, name, visitor)
                    .map_err(de::Error::custom)
            }
            _ if name == RAW_VALUE_TOKEN => self.refuse(visitor),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, E> {
        match self.value {
            Captured::Raw(raw) => {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                de::Deserializer::deserialize_enum(&mut de, name, variants, visitor)
                    .map_err(de::Error::custom)
            }
            // A string is a unit variant, as serde_json reads it.
            Captured::Str(Cow::Borrowed(s)) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            Captured::Str(Cow::Owned(s)) => visitor.visit_enum(StrDeserializer::new(s)),
            Captured::Num(_) => self.refuse(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_unit()
    }

    captured_methods! {
        deserialize_bool() => refuse;
        deserialize_i8() => scalar false;
        deserialize_i16() => scalar false;
        deserialize_i32() => scalar false;
        deserialize_i64() => scalar false;
        deserialize_i128() => refuse;
        deserialize_u8() => scalar false;
        deserialize_u16() => scalar false;
        deserialize_u32() => scalar false;
        deserialize_u64() => scalar false;
        deserialize_u128() => refuse;
        deserialize_f32() => scalar false;
        deserialize_f64() => scalar false;
        deserialize_char() => scalar true;
        deserialize_str() => scalar true;
        deserialize_string() => scalar true;
        deserialize_identifier() => scalar true;
        deserialize_bytes() => refuse;
        deserialize_byte_buf() => refuse;
        deserialize_unit() => refuse;
        deserialize_unit_struct(name: &'static str) => refuse;
        deserialize_seq() => refuse;
        deserialize_tuple(len: usize) => refuse;
        deserialize_tuple_struct(name: &'static str, len: usize) => refuse;
        deserialize_map() => refuse;
        deserialize_struct(name: &'static str, fields: &'static [&'static str]) => refuse;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::de::DeserializeOwned;
    use serde_json::Value;

    use super::*;

    /// The one pass and the two passes of old agree: the same claims, the
    /// same registered claims read, the same names seen.
    fn agree<C: DeserializeOwned + PartialEq + fmt::Debug>(json: &str, required: &[&str]) {
        let required: Vec<String> = required.iter().map(|r| (*r).to_owned()).collect();
        let (mut sink, mut names) = (ClaimsSink::default(), Names::default());
        let once = decode_once::<C>(json.as_bytes(), &mut sink, &mut names, &required)
            .unwrap_or_else(|| panic!("one pass over {json}"));
        assert_eq!(once, serde_json::from_str::<C>(json).unwrap(), "{json}");
        let (mut old, mut old_names) = (ClaimsSink::default(), Names::default());
        scan_object(json.as_bytes(), &mut old, &mut old_names).unwrap();
        assert_eq!(sink.iss, old.iss, "{json}");
        assert_eq!(sink.exp, old.exp, "{json}");
        assert_eq!(sink.nbf, old.nbf, "{json}");
        assert_eq!(sink.iat, old.iat, "{json}");
        assert_eq!(sink.jkt, old.jkt, "{json}");
        assert_eq!(sink.mistyped, old.mistyped, "{json}");
        assert_eq!(
            sink.aud.map(|a| a.0.to_owned()),
            old.aud.map(|a| a.0.to_owned())
        );
        for name in &required {
            assert_eq!(names.contains(name), old_names.contains(name), "{json}");
            let null = |nulls: &[Cow<'_, str>]| nulls.iter().any(|n| n == name);
            assert_eq!(null(&sink.nulls), null(&old.nulls), "{name} in {json}");
        }
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Typical {
        sub: String,
        role: String,
        exp: i64,
        iss: String,
        aud: String,
        iat: u64,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Optional {
        sub: Option<String>,
        exp: Option<f64>,
        aud: Option<Value>,
        role: Option<String>,
        #[serde(default)]
        missing: Option<u8>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    enum Tenant {
        #[serde(rename = "https://a.example")]
        A,
        #[serde(rename = "https://b.example")]
        B,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Flattened {
        iss: Tenant,
        #[serde(flatten)]
        rest: HashMap<String, Value>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Newtype(String);

    #[derive(Debug, PartialEq, Deserialize)]
    struct Wrapped {
        sub: Newtype,
        exp: i32,
    }

    #[test]
    fn one_pass_reads_what_the_scan_and_the_decode_read() {
        let payloads = [
            r#"{"sub":"u","role":"R","exp":1700000000,"iss":"https://a.example","aud":"api","iat":1699999000}"#,
            r#" { "iss" : "https://a.example" , "aud":["api","x"],"exp":1.7e9,"sub":"u\u00e9","role":"R","iat":0,"extra":{"a":[1,2,{"b":null}]}} "#,
            r#"{"iss":"https://b.example","exp":-5,"role":null,"sub":"a\"b","aud":"api","iat":3,"cnf":{"jkt":"abc"},"scope":"a b","amr":["pwd"],"acr":"1","auth_time":5,"client_id":"c"}"#,
            r#"{"iss":"https://a.example","exp":17,"sub":"u","aud":"api","iat":1,"role":"R","client_id":7,"amr":[1]}"#,
        ];
        for json in payloads {
            agree::<Value>(json, &["exp", "role", "absent"]);
            agree::<HashMap<String, Value>>(json, &["role"]);
            agree::<Optional>(json, &["role"]);
            agree::<Flattened>(json, &["role", "sub"]);
        }
        agree::<Typical>(payloads[0], &["exp"]);
        agree::<Typical>(
            r#"{"iss":"https:\/\/a.example","aud":"api","exp":17,"sub":"\u00e9","role":"R","iat":0}"#,
            &["role"],
        );
        agree::<Wrapped>(r#"{"sub":"u","exp":5,"x":[]}"#, &[]);
    }

    fn once<C: DeserializeOwned>(json: &str, required: &[&str]) -> Option<C> {
        let required: Vec<String> = required.iter().map(|r| (*r).to_owned()).collect();
        let (mut sink, mut names) = (ClaimsSink::default(), Names::default());
        decode_once::<C>(json.as_bytes(), &mut sink, &mut names, &required)
    }

    #[test]
    fn anything_unusual_is_left_to_the_two_passes() {
        // Repeated names, whether or not the claims type reads them.
        assert!(once::<Value>(r#"{"a":1,"a":2}"#, &[]).is_none());
        assert!(once::<Typical>(r#"{"exp":1,"exp":2}"#, &[]).is_none());
        assert!(once::<Value>(r#"{"sub":"a","s\u0075b":"b"}"#, &[]).is_none());
        // Trailing data, malformed registered claims, a type that does not fit.
        assert!(once::<Value>(r#"{"a":1} x"#, &[]).is_none());
        assert!(once::<Value>(r#"{"exp":"soon"}"#, &[]).is_none());
        assert!(once::<Value>(r#"{"iss":null}"#, &[]).is_none());
        assert!(once::<Value>(r#"{"aud":[1]}"#, &[]).is_none());
        assert!(once::<Typical>(r#"{"sub":1}"#, &[]).is_none());
        // What the captured values cannot answer exactly: 128-bit integers,
        // bytes, serde_json's raw values.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Wide {
            exp: u128,
        }
        assert!(once::<Wide>(r#"{"exp":5}"#, &[]).is_none());
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Raw {
            iss: Box<RawValue>,
        }
        assert!(once::<Raw>(r#"{"iss":"i"}"#, &[]).is_none());
        // Not walked as a map at all.
        assert!(once::<()>("{}", &[]).is_none());
    }
}
