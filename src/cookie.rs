//! The crate's one cookie parser: finds one cookie in a request's `Cookie`
//! headers. The token source [`TokenSource::Cookie`](crate::TokenSource::Cookie)
//! and the refresh endpoint's cookie mode both read cookies here, so they
//! follow the same rules.
//!
//! The headers are read as bytes, never as text: a cookie holding a byte
//! outside ASCII (which a sibling subdomain may plant) must not make the
//! whole header unreadable and so hide the cookie we want. Only the wanted
//! cookie has to be valid:
//!
//! - every `Cookie` header is split on `;`, each pair at its first `=`
//!   (pairs without `=` are skipped);
//! - the name matches the wanted one exactly (case included) once optional
//!   whitespace (spaces and tabs) around it is trimmed;
//! - the value is trimmed the same way, and one pair of enclosing double
//!   quotes is removed (RFC 6265 section 4.1.1);
//! - the wanted cookie sent twice, in one header or across several, is an
//!   error: a cookie planted for a more specific path or a parent domain
//!   could otherwise shadow ours;
//! - its value must be `*cookie-octet` (RFC 6265 section 4.1.1: visible
//!   ASCII except `"`, `,`, `;` and `\`); each caller then checks its own
//!   token syntax on top.

use http::{HeaderMap, header};

/// Why the wanted cookie cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CookieError {
    /// The cookie is sent more than once.
    Repeated,
    /// Its value holds a byte outside the cookie-octets (or an unbalanced
    /// double quote).
    Malformed,
}

/// The value of the cookie `name` in the `Cookie` headers of `headers`;
/// `Ok(None)` when no pair has that name. See the module docs for the rules.
pub(crate) fn find<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, CookieError> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        for pair in value.as_bytes().split(|&b| b == b';') {
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if trim_ows(&pair[..eq]) != name.as_bytes() {
                continue;
            }
            if found.replace(&pair[eq + 1..]).is_some() {
                return Err(CookieError::Repeated);
            }
        }
    }
    found.map(cookie_value).transpose()
}

/// The raw value, trimmed and unquoted, if it is `*cookie-octet`.
fn cookie_value(raw: &[u8]) -> Result<&str, CookieError> {
    let value = trim_ows(raw);
    let value = match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    };
    if !value.iter().all(|&b| is_cookie_octet(b)) {
        return Err(CookieError::Malformed);
    }
    // Cookie-octets are ASCII, so this cannot fail.
    std::str::from_utf8(value).map_err(|_| CookieError::Malformed)
}

/// RFC 6265 section 4.1.1: `cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// `bytes` without leading and trailing optional whitespace (SP and HTAB,
/// RFC 9110 section 5.6.3).
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Whether `name` may name a cookie: RFC 6265's `cookie-name`, an HTTP
/// token (RFC 9110 section 5.6.2, `1*tchar`).
pub(crate) fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, header::COOKIE};

    use super::{CookieError, find, is_name};

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(COOKIE, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    fn find_in(values: &[&[u8]]) -> Result<Option<String>, CookieError> {
        find(&headers(values), "rt").map(|value| value.map(str::to_owned))
    }

    fn found(value: &str) -> Result<Option<String>, CookieError> {
        Ok(Some(value.to_owned()))
    }

    #[test]
    fn non_ascii_bytes_elsewhere_do_not_hide_the_cookie() {
        assert_eq!(find_in(&[b"a=caf\xc3\xa9; rt=abc; z=\xff"]), found("abc"));
        assert_eq!(find_in(&[b"\xfe\xff=\x80", b"rt=abc"]), found("abc"));
        assert_eq!(find_in(&[b"rt=abc", b"\xc3\xa9"]), found("abc"));
        // A name holding the wanted one and a non-ASCII byte is another name.
        assert_eq!(find_in(&[b"rt\xff=x; rt=abc"]), found("abc"));
    }

    #[test]
    fn only_the_wanted_cookie_must_be_valid() {
        for bad in [
            &b"rt=abc\xff"[..],
            b"rt=\xc3\xa9",
            b"rt=a,b",
            b"rt=a\\b",
            b"rt=a b",
            b"rt=a\"b",
            b"rt=\"abc",
            b"rt=abc\"",
            b"rt=\"\"abc\"\"",
            b"rt=a\tb",
        ] {
            assert_eq!(
                find_in(&[bad]),
                Err(CookieError::Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(find_in(&[b"a=\"; rt=ok"]), found("ok"));
    }

    #[test]
    fn names_match_exactly_after_trimming() {
        assert_eq!(find_in(&[b" \trt \t=abc"]), found("abc"));
        assert_eq!(find_in(&[b"x=1;rt=abc;y=2"]), found("abc"));
        assert_eq!(find_in(&[b"RT=abc"]), Ok(None));
        assert_eq!(find_in(&[b"rt2=abc; xrt=abc; r t=abc"]), Ok(None));
        assert_eq!(find_in(&[b"rt"]), Ok(None), "a pair without `=`");
        assert_eq!(find_in(&[]), Ok(None));
    }

    #[test]
    fn values_are_trimmed_and_unquoted() {
        assert_eq!(find_in(&[b"rt=  abc \t"]), found("abc"));
        assert_eq!(find_in(&[b"rt=\"abc\""]), found("abc"));
        assert_eq!(find_in(&[b"rt= \"abc\" "]), found("abc"));
        assert_eq!(find_in(&[b"rt=a=b=="]), found("a=b=="));
        assert_eq!(find_in(&[b"rt="]), found(""));
        assert_eq!(find_in(&[b"rt=\"\""]), found(""));
    }

    #[test]
    fn duplicates_are_refused_in_one_header_or_several() {
        assert_eq!(find_in(&[b"rt=a; rt=b"]), Err(CookieError::Repeated));
        assert_eq!(find_in(&[b"rt=a", b"rt=a"]), Err(CookieError::Repeated));
        assert_eq!(
            find_in(&[b"rt=a", b"rt=\xc3\xa9"]),
            Err(CookieError::Repeated)
        );
        assert_eq!(
            find_in(&[b"rt=\xff; x=1", b" rt =a"]),
            Err(CookieError::Repeated)
        );
    }

    #[test]
    fn cookie_names_are_http_tokens() {
        for good in ["rt", "__Host-refresh_token.v1", "a!#$%&'*+-.^_`|~z"] {
            assert!(is_name(good), "{good:?}");
        }
        for bad in [
            "", "rt token", "rt;", "rt=", "r\u{e9}t", "a,b", "a\"b", "(rt)",
        ] {
            assert!(!is_name(bad), "{bad:?}");
        }
    }
}
