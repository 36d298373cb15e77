//! The crate's one strict JSON reader: objects walked member by member,
//! duplicate member names refused (RFC 7515 section 4, RFC 7517 section 4,
//! RFC 7519 section 4: names must be unique, and we reject rather than
//! guess), strings borrowed from the input where they can be.
//!
//! [`scan_object`]: one object, each member handed to a [`Sink`] (a token's
//! header and payload, per request).

use std::{borrow::Cow, cell::Cell, collections::HashSet, fmt};

use serde::{
    Deserialize,
    de::{self, DeserializeSeed, MapAccess, Visitor},
};

use crate::error::{AuthError, AuthErrorKind, JsonError};

/// A JSON string that borrows from the input when it has no escapes.
pub(crate) struct Str<'de>(pub(crate) Cow<'de, str>);

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

/// Receives each member of a JSON object, in order.
pub(crate) trait Sink<'de> {
    /// Reads (or skips) the value of the member `name`: exactly one
    /// `next_value` call on `map`.
    fn member<A: MapAccess<'de>>(
        &mut self,
        name: &Cow<'de, str>,
        map: &mut A,
    ) -> Result<(), A::Error>;
}

/// The names seen so far in one object.
#[derive(Default)]
pub(crate) struct Names<'de> {
    list: Vec<Cow<'de, str>>,
    set: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> Names<'de> {
    /// `false` if `name` was seen before. Linear search while small (the
    /// common case); a hash set beyond that, so a hostile object with
    /// thousands of names stays linear overall.
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

    pub(crate) fn contains(&self, name: &str) -> bool {
        match &self.set {
            Some(set) => set.contains(name),
            None => self.list.iter().any(|n| n == name),
        }
    }
}

/// Why a JSON document could not be read.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// A member name appears twice in one object.
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

/// Runs `seed` over `json`, which must hold nothing after the value; a
/// duplicate flagged (in `duplicate`) by the seed wins over the error it caused.
fn run<'de, S: DeserializeSeed<'de>>(
    json: &'de [u8],
    duplicate: &Cell<bool>,
    seed: S,
) -> Result<S::Value, ScanError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let result = seed
        .deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value));
    match result {
        Ok(value) => Ok(value),
        Err(_) if duplicate.get() => Err(ScanError::Duplicate),
        Err(e) => Err(ScanError::Json(e)),
    }
}

/// The error that stops the parse at a repeated name, flagged so that
/// [`run`] reports it as [`ScanError::Duplicate`].
fn duplicate<E: de::Error>(flag: &Cell<bool>) -> E {
    flag.set(true);
    E::custom("duplicate member name")
}

/// Walks a JSON object once, refusing duplicate member names and handing each
/// member to `sink`; returns the names seen.
pub(crate) fn scan_object<'de, S: Sink<'de>>(
    json: &'de [u8],
    sink: &mut S,
) -> Result<Names<'de>, ScanError> {
    struct ObjectVisitor<'s, S> {
        sink: &'s mut S,
        duplicate: &'s Cell<bool>,
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
                    return Err(duplicate(self.duplicate));
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

    let duplicate = Cell::new(false);
    let seed = ObjectVisitor {
        sink,
        duplicate: &duplicate,
    };
    run(json, &duplicate, seed)
}
