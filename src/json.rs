//! The crate's one strict JSON reader: objects walked member by member,
//! duplicate member names refused (RFC 7515 section 4, RFC 7517 section 4,
//! RFC 7519 section 4: names must be unique, and we reject rather than
//! guess), strings borrowed from the input where they can be.
//!
//! Three entry points, one rule:
//! - [`scan_object`]: one object, each member handed to a [`Sink`] (a
//!   token's header and payload, per request);
//! - [`read_path`]: the value at a path of nested objects, every object on
//!   the way checked (the role layer, per request: one linear pass, no tree);
//! - [`check_unique`]: a whole document, every object at any depth checked
//!   (JWKs and JWK Sets, once per key set).

use std::{borrow::Cow, cell::Cell, collections::HashSet, fmt};

use serde::{
    Deserialize,
    de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor},
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
///
/// The first names sit in a fixed array (no allocation for the usual header,
/// payload or JWK); a hash set takes over beyond that, so a hostile object
/// with thousands of names stays linear overall.
pub(crate) struct Names<'de> {
    inline: [Cow<'de, str>; INLINE_NAMES],
    /// The [`fingerprint`] of each inline name: most names differ in it,
    /// so few comparisons reach the bytes.
    prints: [u64; INLINE_NAMES],
    len: usize,
    set: Option<HashSet<Cow<'de, str>>>,
}

const INLINE_NAMES: usize = 16;

impl Default for Names<'_> {
    fn default() -> Self {
        Self {
            inline: [const { Cow::Borrowed("") }; INLINE_NAMES],
            prints: [0; INLINE_NAMES],
            len: 0,
            set: None,
        }
    }
}

impl<'de> Names<'de> {
    /// `false` if `name` was seen before.
    pub(crate) fn insert(&mut self, name: Cow<'de, str>) -> bool {
        if let Some(set) = &mut self.set {
            return set.insert(name);
        }
        let print = fingerprint(&name);
        let seen = self.prints[..self.len]
            .iter()
            .zip(&self.inline)
            .any(|(p, n)| *p == print && *n == name);
        if seen {
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
        self.prints[self.len] = print;
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

/// A name's length and first eight bytes, in one word: equal names have
/// equal fingerprints.
#[inline]
fn fingerprint(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let head = match bytes.first_chunk::<8>() {
        Some(head) => u64::from_le_bytes(*head),
        None => bytes.iter().fold(0, |head, &b| head << 8 | u64::from(b)),
    };
    head ^ (bytes.len() as u64).rotate_left(56)
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
/// member to `sink`; the names seen are left in `names` (the caller's, so
/// that no array of names is moved around).
pub(crate) fn scan_object<'de, S: Sink<'de>>(
    json: &'de [u8],
    sink: &mut S,
    names: &mut Names<'de>,
) -> Result<(), ScanError> {
    struct ObjectVisitor<'s, 'de, S> {
        sink: &'s mut S,
        names: &'s mut Names<'de>,
        duplicate: &'s Cell<bool>,
    }

    impl<'de, S: Sink<'de>> Visitor<'de> for ObjectVisitor<'_, 'de, S> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
                self.sink.member(&name, &mut map)?;
                if !self.names.insert(name) {
                    return Err(duplicate(self.duplicate));
                }
            }
            Ok(())
        }
    }

    impl<'de, S: Sink<'de>> DeserializeSeed<'de> for ObjectVisitor<'_, 'de, S> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }

    let duplicate = Cell::new(false);
    let seed = ObjectVisitor {
        sink,
        names,
        duplicate: &duplicate,
    };
    run(json, &duplicate, seed)
}

/// Checks that no object anywhere in `json` repeats a member name.
pub(crate) fn check_unique(json: &[u8]) -> Result<(), ScanError> {
    struct Unique<'f> {
        duplicate: &'f Cell<bool>,
    }

    impl<'de> DeserializeSeed<'de> for Unique<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Unique<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_none<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq
                .next_element_seed(Unique {
                    duplicate: self.duplicate,
                })?
                .is_some()
            {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut names = Names::default();
            while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
                if !names.insert(name) {
                    return Err(duplicate(self.duplicate));
                }
                map.next_value_seed(Unique {
                    duplicate: self.duplicate,
                })?;
            }
            Ok(())
        }
    }

    let duplicate = Cell::new(false);
    run(
        json,
        &duplicate,
        Unique {
            duplicate: &duplicate,
        },
    )
}

/// The value at `path` in the JSON object `json`, read by `leaf`: one
/// member name per level of nested objects. `None` when a member on the way
/// is missing or not an object. Every object on the way (the top level
/// included) must not repeat a member name; objects off the path, and
/// inside the leaf, are skipped unread.
pub(crate) fn read_path<'de, L>(
    json: &'de [u8],
    path: &[String],
    leaf: L,
) -> Result<Option<L::Value>, ScanError>
where
    L: DeserializeSeed<'de>,
{
    struct Walk<'p, 'f, L> {
        path: &'p [String],
        leaf: L,
        duplicate: &'f Cell<bool>,
    }

    impl<'de, L: DeserializeSeed<'de>> DeserializeSeed<'de> for Walk<'_, '_, L> {
        type Value = Option<L::Value>;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            match self.path.split_first() {
                None => self.leaf.deserialize(d).map(Some),
                Some(_) => d.deserialize_any(self),
            }
        }
    }

    impl<'de, L: DeserializeSeed<'de>> Visitor<'de> for Walk<'_, '_, L> {
        type Value = Option<L::Value>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (segment, rest) = self.path.split_first().expect("a path to walk");
            let mut names = Names::default();
            let mut leaf = Some(self.leaf);
            let mut found = None;
            while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
                match leaf.take_if(|_| name == segment.as_str()) {
                    Some(leaf) => {
                        found = map.next_value_seed(Walk {
                            path: rest,
                            leaf,
                            duplicate: self.duplicate,
                        })?;
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                if !names.insert(name) {
                    return Err(duplicate(self.duplicate));
                }
            }
            Ok(found)
        }
    }

    let duplicate = Cell::new(false);
    if path.is_empty() {
        return run(json, &duplicate, leaf).map(Some);
    }
    let walk = Walk {
        path,
        leaf,
        duplicate: &duplicate,
    };
    run(json, &duplicate, walk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_repeats_inline_and_beyond() {
        let all: Vec<String> = (0..40)
            .map(|i| format!("a-long-shared-prefix-{i}"))
            .chain(["", "a", "b", "ab", "ba"].map(String::from))
            .collect();
        let mut names = Names::default();
        for (i, name) in all.iter().enumerate() {
            assert!(names.insert(Cow::Borrowed(name)), "{name}");
            for earlier in &all[..=i] {
                assert!(!names.insert(Cow::Owned(earlier.clone())), "{earlier}");
                assert!(names.contains(earlier));
            }
            assert!(!names.contains("never"));
        }
    }

    fn unique(json: &str) -> Result<(), ScanError> {
        check_unique(json.as_bytes())
    }

    #[test]
    fn check_unique_looks_at_every_depth() {
        assert!(unique(r#"{"a":1,"b":{"a":1,"b":[{"a":1},{"a":2}]}}"#).is_ok());
        for json in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":{"b":1,"b":2}}"#,
            r#"[{"x":[{"y":1,"\u0079":2}]}]"#,
            r#"{"keys":[{"kty":"OKP"},{"kty":"OKP","kty":"RSA"}]}"#,
        ] {
            assert!(matches!(unique(json), Err(ScanError::Duplicate)), "{json}");
        }
        assert!(matches!(unique("{"), Err(ScanError::Json(_))));
        assert!(matches!(unique("{} {}"), Err(ScanError::Json(_))));
    }

    fn path(json: &str, path: &[&str]) -> Result<Option<String>, ScanError> {
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        read_path(json.as_bytes(), &path, std::marker::PhantomData::<String>)
    }

    #[test]
    fn read_path_walks_nested_objects_and_refuses_duplicates_on_the_way() {
        let json = r#"{"a":{"b":{"c":"x"},"z":[1,{"q":1,"q":2}]},"d":1}"#;
        assert_eq!(path(json, &["a", "b", "c"]).unwrap().as_deref(), Some("x"));
        assert_eq!(path(json, &["a", "missing"]).unwrap(), None);
        assert_eq!(path(json, &["d", "c"]).unwrap(), None);
        assert_eq!(path(r#"{"a":[1]}"#, &["a", "b"]).unwrap(), None);
        for json in [
            r#"{"a":{"b":{"c":"x","c":"y"}}}"#,
            r#"{"a":{"b":{"c":"x"},"b":{"c":"y"}}}"#,
            r#"{"a":{"b":{"c":"x"},"other":1,"other":2}}"#,
            r#"{"a":{"b":{"c":"x"}},"a":1}"#,
        ] {
            assert!(
                matches!(path(json, &["a", "b", "c"]), Err(ScanError::Duplicate)),
                "{json}"
            );
        }
    }
}
