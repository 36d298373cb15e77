//! The quick read of a payload in the shape nearly every issuer gives it:
//! a flat walk over the text that picks out the registered claims, with no
//! serde machinery between the members and the claims type.
//!
//! It reads only what it is sure of, and says `None` to anything else:
//! an escape in a member name or in a string claim the verifier reads, a
//! `null` member, a NumericDate that is not a plain integer, an `aud` that
//! is not plain strings, `cnf`, a claim of the RFC 9068 profile that is not
//! a plain string (or integer, for `auth_time`; strings, for `amr`), a
//! repeated name, more than 32 members. The caller then reads the payload with the strict
//! reader ([`decode_once`](super::json::decode_once), then the two passes),
//! which decides every such case exactly.
//!
//! It does not check that the text is JSON: the caller decodes the claims
//! type from the same text with serde_json, which does, and keeps this
//! reading only when that decode succeeded. On JSON, what it reads is what
//! the strict reader reads (the fuzz target `verify` and the tests below
//! compare the two); on anything else it reads garbage, never panics, and
//! is thrown away.

use std::borrow::Cow;

use super::json::{Audience, ClaimsSink};

/// Reads the registered claims of the payload that `seen` was made for into
/// `sink`, and its member names into `seen` (the caller's, so that they are
/// not moved); `None` when the payload is not in the shape this reader
/// knows (see the module docs): `sink` and `seen` are then left half
/// filled, for the caller to discard.
pub(super) fn read<'de>(sink: &mut ClaimsSink<'de>, seen: &mut Seen<'de>) -> Option<()> {
    let json = seen.json;
    let mut text = Cursor { json, at: 0 };
    text.space();
    text.eat(b'{')?;
    text.space();
    if text.eat(b'}').is_none() {
        loop {
            let start = text.at + 1;
            let name = text.plain_str()?;
            let word = text.word_at(start, name.len());
            text.space();
            text.eat(b':')?;
            text.space();
            seen.insert(start, name.len(), word)?;
            member(&mut text, Name::of(name, word), sink)?;
            text.space();
            match text.next()? {
                b',' => text.space(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    text.space();
    (text.at == json.len()).then_some(())
}

/// The member names of a payload, [`MAX_NAMES`] at most: a payload with
/// more goes to the strict reader.
pub(super) struct Seen<'de> {
    /// The payload.
    json: &'de str,
    /// Each name's [`word`], compared before the name.
    words: [u64; MAX_NAMES],
    /// Where each name lies in the payload: its start, and its length in
    /// the low 32 bits.
    spans: [u64; MAX_NAMES],
    len: usize,
    /// One bit per word (a bloom filter of one hash): most names are new,
    /// and are found so with no comparison.
    bloom: u64,
}

const MAX_NAMES: usize = 32;

impl<'de> Seen<'de> {
    /// No names yet, of the payload `json`.
    pub(super) fn new(json: &'de str) -> Self {
        Self {
            json,
            words: [0; MAX_NAMES],
            spans: [0; MAX_NAMES],
            len: 0,
            bloom: 0,
        }
    }

    fn bit(word: u64) -> u64 {
        1 << (word.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
    }

    /// The name at `span`.
    fn name(&self, span: u64) -> &'de str {
        let (start, len) = ((span >> 32) as usize, (span & 0xFFFF_FFFF) as usize);
        self.json.get(start..start + len).unwrap_or_default()
    }

    /// Whether `name` (of `word`) is among the names.
    #[inline]
    fn has(&self, name: &str, word: u64) -> bool {
        self.bloom & Self::bit(word) != 0
            && self.words[..self.len]
                .iter()
                .zip(&self.spans)
                .any(|(w, span)| *w == word && self.name(*span) == name)
    }

    /// Adds the name of `len` bytes at `start`; `None` when it was seen
    /// before, or there is no room.
    fn insert(&mut self, start: usize, len: usize, word: u64) -> Option<()> {
        let name = self.json.get(start..start + len)?;
        if self.has(name, word) {
            return None;
        }
        let span = u64::try_from(start).ok()? << 32 | u64::try_from(len).ok()?;
        *self.words.get_mut(self.len)? = word;
        self.spans[self.len] = span;
        self.len += 1;
        self.bloom |= Self::bit(word);
        Some(())
    }

    /// Whether the payload has a member `name`.
    pub(super) fn contains(&self, name: &str) -> bool {
        self.has(name, word(name.as_bytes()))
    }
}

/// A name as one word: its bytes when it has eight or fewer (JSON escapes
/// NUL, so none is padding: equal words are equal names), else its first
/// eight bytes mixed with its length.
const fn word(name: &[u8]) -> u64 {
    if name.len() > 8 {
        let mut head = [0u8; 8];
        let mut i = 0;
        while i < 8 {
            head[i] = name[i];
            i += 1;
        }
        return u64::from_le_bytes(head) ^ (name.len() as u64).rotate_left(56) ^ 1;
    }
    let mut word = 0;
    let mut i = name.len();
    while i > 0 {
        i -= 1;
        word = word << 8 | name[i] as u64;
    }
    word
}

/// Reads the value of the member `name`, the cursor on its first byte.
fn member<'de>(text: &mut Cursor<'de>, name: Name, sink: &mut ClaimsSink<'de>) -> Option<()> {
    let string = |text: &mut Cursor<'de>| text.plain_str().map(Cow::Borrowed);
    match name {
        Name::Iss => sink.iss = Some(string(text)?),
        Name::Sub => sink.sub = Some(string(text)?),
        Name::Jti => sink.jti = Some(string(text)?),
        Name::Sid => sink.sid = Some(string(text)?),
        Name::Exp => sink.exp = Some(text.integer()?),
        Name::Nbf => sink.nbf = Some(text.integer()?),
        Name::Iat => sink.iat = Some(text.integer()?),
        Name::Aud => {
            let start = text.at;
            match text.peek()? {
                b'"' => {
                    text.plain_str()?;
                }
                b'[' => text.plain_strs()?,
                _ => return None,
            }
            sink.aud = Some(Audience::plain(text.json.get(start..text.at)?));
        }
        // RFC 9068 section 2.2: plain strings and integers only. The strict
        // reader decodes these claims (where serde_json, skipping them for
        // a claims type without them, would pass a number beyond f64 or a
        // lone surrogate), and records a mistyped or null one itself.
        Name::ProfileString => {
            text.plain_str()?;
        }
        Name::AuthTime => {
            text.integer()?;
        }
        Name::Amr => text.plain_strs()?,
        // RFC 7800: a nested object the strict reader reads.
        Name::Cnf => return None,
        // A `null` counts as absent for the required claims: the strict
        // reader's. (In JSON, only `null` starts with `n`.)
        Name::Other => {
            if text.peek()? == b'n' {
                return None;
            }
            text.skip()?;
        }
    }
    Some(())
}

/// The member names the verifier reads.
#[derive(Clone, Copy)]
enum Name {
    Iss,
    Sub,
    Jti,
    Sid,
    Exp,
    Nbf,
    Iat,
    Aud,
    /// `client_id`, `scope`, `acr`: strings in RFC 9068.
    ProfileString,
    AuthTime,
    Amr,
    Cnf,
    Other,
}

impl Name {
    /// One comparison of a word per name, not one of bytes per candidate;
    /// `packed` is the name's [`word`].
    fn of(name: &str, packed: u64) -> Self {
        const ISS: u64 = word(b"iss");
        const SUB: u64 = word(b"sub");
        const JTI: u64 = word(b"jti");
        const SID: u64 = word(b"sid");
        const EXP: u64 = word(b"exp");
        const NBF: u64 = word(b"nbf");
        const IAT: u64 = word(b"iat");
        const AUD: u64 = word(b"aud");
        const SCOPE: u64 = word(b"scope");
        const ACR: u64 = word(b"acr");
        const AMR: u64 = word(b"amr");
        const CNF: u64 = word(b"cnf");
        if name.len() > 8 {
            return match name {
                "client_id" => Self::ProfileString,
                "auth_time" => Self::AuthTime,
                _ => Self::Other,
            };
        }
        match packed {
            ISS => Self::Iss,
            SUB => Self::Sub,
            JTI => Self::Jti,
            SID => Self::Sid,
            EXP => Self::Exp,
            NBF => Self::Nbf,
            IAT => Self::Iat,
            AUD => Self::Aud,
            SCOPE | ACR => Self::ProfileString,
            AMR => Self::Amr,
            CNF => Self::Cnf,
            _ => Self::Other,
        }
    }
}

/// A position in the payload's text.
struct Cursor<'de> {
    json: &'de str,
    at: usize,
}

impl<'de> Cursor<'de> {
    fn rest(&self) -> &'de [u8] {
        self.json.as_bytes().get(self.at..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.rest().first().copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Some(())
        } else {
            None
        }
    }

    /// The [`word`] of the name of `len` bytes at `start`: one load of
    /// eight bytes when the text has them (the name is followed by its
    /// quote at least), masked to the name.
    #[inline]
    fn word_at(&self, start: usize, len: usize) -> u64 {
        let bytes = self.json.as_bytes();
        let Some(head) = bytes.get(start..).and_then(|rest| rest.first_chunk::<8>()) else {
            return word(bytes.get(start..start + len).unwrap_or_default());
        };
        let head = u64::from_le_bytes(*head);
        match len {
            0..8 => head & ((1 << (len * 8)) - 1),
            8 => head,
            _ => head ^ (len as u64).rotate_left(56) ^ 1,
        }
    }

    /// JSON's white space (RFC 8259 section 2).
    #[inline]
    fn space(&mut self) {
        // Most payloads have none.
        if !matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            return;
        }
        let skipped = self
            .rest()
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .count();
        self.at += skipped;
    }

    /// A string without escapes, the cursor on its opening quote: its
    /// contents, borrowed.
    fn plain_str(&mut self) -> Option<&'de str> {
        self.eat(b'"')?;
        let start = self.at;
        let len = self.unescaped();
        self.at += len;
        self.eat(b'"')?;
        // Both ends are next to an ASCII quote: char boundaries.
        self.json.get(start..start + len)
    }

    /// The length of the run of string bytes from the cursor up to the
    /// next quote or backslash (or to the end): eight bytes a step, as
    /// serde_json does it, since a vectorized search costs more to set up
    /// than a claim is long.
    #[inline]
    fn unescaped(&self) -> usize {
        const ONES: u64 = u64::from_le_bytes([1; 8]);
        const HIGH: u64 = ONES << 7;
        let rest = self.rest();
        let (words, tail) = rest.as_chunks::<8>();
        for (i, word) in words.iter().enumerate() {
            let word = u64::from_le_bytes(*word);
            let quote = word ^ (ONES * u64::from(b'"'));
            let backslash = word ^ (ONES * u64::from(b'\\'));
            // The lowest byte that is zero in either sets the lowest
            // flagged bit (the bits above it may be false alarms).
            let found = (quote.wrapping_sub(ONES) & !quote
                | backslash.wrapping_sub(ONES) & !backslash)
                & HIGH;
            if found != 0 {
                return i * 8 + (found.trailing_zeros() / 8) as usize;
            }
        }
        let done = words.len() * 8;
        done + tail
            .iter()
            .position(|&b| b == b'"' || b == b'\\')
            .unwrap_or(tail.len())
    }

    /// An array of strings without escapes (an empty one included).
    fn plain_strs(&mut self) -> Option<()> {
        self.eat(b'[')?;
        self.space();
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            self.plain_str()?;
            self.space();
            match self.next()? {
                b',' => self.space(),
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A NumericDate written as an integer of at most 15 digits (exact as
    /// an `f64`, as the strict reader reads it); `None` for any other number.
    fn integer(&mut self) -> Option<i64> {
        let negative = self.eat(b'-').is_some();
        let mut value = 0i64;
        let mut digits = 0;
        for &b in self.rest() {
            if !b.is_ascii_digit() {
                break;
            }
            value = value * 10 + i64::from(b - b'0');
            digits += 1;
            if digits > 15 {
                return None;
            }
        }
        if digits == 0 {
            return None;
        }
        self.at += digits;
        // A fraction or an exponent: the strict reader's.
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(if negative { -value } else { value })
    }

    /// Skips a value, the cursor on its first byte.
    fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_str(),
            b'{' | b'[' => self.skip_nested(),
            _ => {
                // A number or a literal runs to the next delimiter.
                let len = self
                    .rest()
                    .iter()
                    .take_while(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                    .count();
                self.at += len;
                Some(())
            }
        }
    }

    /// Skips a string, escapes and all, the cursor on its opening quote.
    fn skip_str(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            self.at += self.unescaped();
            if self.next()? == b'"' {
                return Some(());
            }
            // The escaped byte; the rest of a `\u` escape is hex digits.
            self.next()?;
        }
    }

    /// Skips an object or an array, the cursor on its opening bracket.
    fn skip_nested(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => self.skip_str()?,
                b'{' | b'[' => {
                    depth += 1;
                    self.at += 1;
                }
                b'}' | b']' => {
                    depth -= 1;
                    self.at += 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
                _ => self.at += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::json::Names;

    /// What the quick reader read: names, `iss`, `exp`, `aud`.
    type Read = (Vec<String>, Option<String>, Option<i64>, Option<String>);

    fn quick(json: &str) -> Option<Read> {
        let mut sink = ClaimsSink::default();
        let mut names = Seen::new(json);
        read(&mut sink, &mut names)?;
        let mut listed = Vec::new();
        for name in ["iss", "sub", "jti", "sid", "aud", "exp", "role", "x"] {
            if names.contains(name) {
                listed.push(name.to_owned());
            }
        }
        Some((
            listed,
            sink.iss.map(|s| s.into_owned()),
            sink.exp,
            sink.aud.map(|a| {
                let mut all = Vec::new();
                a.any(|s| {
                    all.push(s.to_owned());
                    false
                })
                .unwrap();
                all.join(",")
            }),
        ))
    }

    #[test]
    fn reads_the_common_shape() {
        let (names, iss, exp, aud) = quick(
            r#" {"sub":"u","role":"USER","exp":1700000000, "iss" : "https://a.example",
               "aud":["api","other"],"iat":-5,"jti":"j","x":{"a":[1,"]}",{"b":null}]}} "#,
        )
        .unwrap();
        assert_eq!(names, ["iss", "sub", "jti", "aud", "exp", "role", "x"]);
        assert_eq!(iss.as_deref(), Some("https://a.example"));
        assert_eq!(exp, Some(1_700_000_000));
        assert_eq!(aud.as_deref(), Some("api,other"));
        assert!(quick("{}").is_some());
        assert!(quick(r#"{"aud":[]}"#).is_some());
        assert!(quick(r#"{"x":"a\"b\\","y":true,"z":[],"w":1.5e3}"#).is_some());
    }

    #[test]
    fn leaves_the_rest_to_the_strict_reader() {
        for json in [
            r#"{"iss":"https:\/\/a"}"#,
            r#"{"\u0065xp":1}"#,
            r#"{"exp":1.5}"#,
            r#"{"exp":1e3}"#,
            r#"{"exp":1234567890123456}"#,
            r#"{"exp":"1"}"#,
            r#"{"exp":null}"#,
            r#"{"role":null}"#,
            r#"{"aud":1}"#,
            r#"{"aud":["a",1]}"#,
            r#"{"aud":"a\u0062"}"#,
            r#"{"cnf":{"jkt":"x"}}"#,
            r#"{"scope":1}"#,
            r#"{"auth_time":"1"}"#,
            r#"{"auth_time":1e400}"#,
            r#"{"auth_time":1.5}"#,
            r#"{"scope":"\ud800"}"#,
            r#"{"acr":"a\"b"}"#,
            r#"{"amr":"pwd"}"#,
            r#"{"x":1,"x":2}"#,
            r#"{"sub":"a","sub":"a"}"#,
            r#"{"x":1}x"#,
            r#"{"x":1,}"#,
            r#"[]"#,
            "",
            r#"{"x""#,
            r#"{"x":"\"#,
            r#"{"x":[[[["#,
        ] {
            assert!(quick(json).is_none(), "{json}");
        }
    }

    /// A member value, as JSON text.
    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            // Strings: plain, escaped, and beyond ASCII.
            4 => "[a-z:/.-]{0,12}".prop_map(|s| format!("\"{s}\"")),
            1 => prop::sample::select(vec![
                r#""a\"b""#, r#""\\""#, r#""https:\/\/x""#, r#""\u00e9""#, r#""é""#, r#""""#,
                r#""\ud800""#, r#""\udc00x""#,
            ])
            .prop_map(str::to_owned),
            // Numbers: integers of every size, fractions, exponents.
            1 => any::<i64>().prop_map(|n| n.to_string()),
            3 => (-99_999i64..99_999).prop_map(|n| n.to_string()),
            1 => prop::sample::select(vec![
                "1.5", "-0", "0", "1e3", "2E-1", "123456789012345", "1234567890123456", "1e400",
                "-1e400", "1e-400",
            ])
                .prop_map(str::to_owned),
            1 => prop::sample::select(vec!["null", "true", "false"]).prop_map(str::to_owned),
        ];
        leaf.prop_recursive(3, 12, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((name(), inner), 0..4).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(n, v)| format!("{n}:{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    /// A member name, as JSON text: the claims the readers treat apart,
    /// others, and escaped ones.
    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "iss",
            "sub",
            "jti",
            "sid",
            "exp",
            "nbf",
            "iat",
            "aud",
            "cnf",
            "client_id",
            "scope",
            "acr",
            "auth_time",
            "amr",
            "role",
            "x",
            "a_rather_long_claim_name",
            "\\u0065xp",
            "",
        ])
        .prop_map(|n| format!("\"{n}\""))
    }

    /// White space, mostly none.
    fn space() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", "", "", " ", "\n\t ", "\r"])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// On every JSON object the quick reader takes, it reads what the
        /// strict reader reads.
        #[test]
        fn reads_what_the_strict_reader_reads(
            members in prop::collection::vec((name(), value(), space(), space()), 0..10),
            edges in (space(), space()),
        ) {
            let body: Vec<String> = members
                .iter()
                .map(|(n, v, a, b)| format!("{a}{n}{b}:{a}{v}{b}"))
                .collect();
            let json = format!("{}{{{}}}{}", edges.0, body.join(","), edges.1);
            let mut quick = ClaimsSink::default();
            let mut seen = Seen::new(&json);
            // The most lenient claims type: serde_json skips every member
            // of it, checking only the syntax.
            #[derive(serde::Deserialize)]
            struct Lenient {}
            let taken = read(&mut quick, &mut seen).is_some()
                && serde_json::from_str::<Lenient>(&json).is_ok();
            if taken {
                let mut strict = ClaimsSink::default();
                let mut names = Names::default();
                let scanned = super::super::scan_payload(json.as_bytes(), &mut strict, &mut names);
                prop_assert!(scanned.is_ok(), "{json}: {scanned:?}");
                prop_assert_eq!(&quick.iss, &strict.iss);
                prop_assert_eq!(&quick.sub, &strict.sub);
                prop_assert_eq!(&quick.jti, &strict.jti);
                prop_assert_eq!(&quick.sid, &strict.sid);
                prop_assert_eq!(quick.exp, strict.exp);
                prop_assert_eq!(quick.nbf, strict.nbf);
                prop_assert_eq!(quick.iat, strict.iat);
                prop_assert!(strict.nulls.is_empty() && strict.mistyped.is_none() && strict.jkt.is_none());
                let audiences = |sink: &ClaimsSink<'_>| sink.aud.map(|aud| {
                    let mut all = Vec::new();
                    aud.any(|a| { all.push(a.to_owned()); false }).unwrap();
                    all
                });
                prop_assert_eq!(audiences(&quick), audiences(&strict));
                for (name, ..) in &members {
                    let name: String = serde_json::from_str(name).unwrap();
                    prop_assert_eq!(seen.contains(&name), names.contains(&name));
                }
            }
        }
    }
}
