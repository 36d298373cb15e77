//! Finding the bearer token in a request (RFC 6750 section 2).
//!
//! Only the `Authorization` header, and optionally a named cookie or header,
//! are read. The query string never is (RFC 6750 section 2.3 and RFC 9700
//! section 2.4 advise against it: URLs end up in logs).

use http::{HeaderMap, HeaderName, header};

use crate::error::{AuthError, AuthErrorKind};

/// Where [`JwtAuthLayer`](crate::JwtAuthLayer) looks for the token, after the
/// `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// The `Authorization: Bearer <token>` header only (the default).
    AuthorizationHeader,
    /// A cookie of this name, when there is no `Authorization` header.
    Cookie(String),
    /// A header of this name carrying the bare token, when there is no
    /// `Authorization` header.
    Header(HeaderName),
}

/// The bytes RFC 6750's `b64token` allows before its trailing `=` padding.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

/// RFC 6750 section 2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
///
/// One table lookup per byte: this runs on every request.
pub(crate) fn is_b64token(token: &str) -> bool {
    let bytes = token.as_bytes();
    let end = bytes.len() - bytes.iter().rev().take_while(|&&b| b == b'=').count();
    end > 0 && bytes[..end].iter().all(|&b| B64TOKEN[usize::from(b)])
}

fn invalid_request(description: &'static str) -> AuthError {
    AuthError::new(AuthErrorKind::InvalidRequest).with_description(description)
}

/// The token of the request, `Ok(None)` if it carries none.
pub(crate) fn find_token<'a>(
    headers: &'a HeaderMap,
    fallback: &TokenSource,
) -> Result<Option<&'a str>, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    if let Some(value) = values.next() {
        if values.next().is_some() {
            return Err(invalid_request("more than one Authorization header"));
        }
        let value = value
            .to_str()
            .map_err(|_| invalid_request("the Authorization header is not valid ASCII"))?;
        return match split_scheme(value) {
            Some((scheme, credentials)) if scheme.eq_ignore_ascii_case("bearer") => {
                if credentials.is_empty() {
                    return Err(invalid_request("the bearer token is empty"));
                }
                if !is_b64token(credentials) {
                    return Err(invalid_request("the bearer token is malformed"));
                }
                Ok(Some(credentials))
            }
            // Another scheme (Basic, ...) carries no bearer credentials.
            Some(_) => Ok(None),
            None if value.trim().is_empty() => {
                Err(invalid_request("the Authorization header is empty"))
            }
            // A lone word: "Bearer" without a token is malformed, anything
            // else is a scheme we do not handle.
            None if value.trim().eq_ignore_ascii_case("bearer") => {
                Err(invalid_request("the bearer token is empty"))
            }
            None => Ok(None),
        };
    }
    match fallback {
        TokenSource::AuthorizationHeader => Ok(None),
        TokenSource::Header(name) => {
            let mut values = headers.get_all(name).iter();
            let Some(value) = values.next() else {
                return Ok(None);
            };
            if values.next().is_some() {
                return Err(invalid_request("the token header is repeated"));
            }
            match value.to_str() {
                Ok(token) if is_b64token(token) => Ok(Some(token)),
                _ => Err(invalid_request("the token header is malformed")),
            }
        }
        TokenSource::Cookie(name) => find_cookie(headers, name),
    }
}

/// `scheme 1*SP credentials`; `None` when there is no space.
fn split_scheme(value: &str) -> Option<(&str, &str)> {
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = value.split_once(' ')?;
    Some((scheme, rest.trim_start_matches(' ')))
}

fn find_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            let Some((key, token)) = pair.trim().split_once('=') else {
                continue;
            };
            if key.trim() != name {
                continue;
            }
            if found.is_some() {
                return Err(invalid_request("the token cookie is repeated"));
            }
            let token = token.trim().trim_matches('"');
            if !is_b64token(token) {
                return Err(invalid_request("the token cookie is malformed"));
            }
            found = Some(token);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn find(pairs: &[(&str, &str)]) -> Result<Option<&'static str>, AuthErrorKind> {
        let map = Box::leak(Box::new(headers(pairs)));
        find_token(map, &TokenSource::Cookie("at".into())).map_err(|e| e.kind())
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(
            find(&[("authorization", "Bearer a.b.c")]),
            Ok(Some("a.b.c"))
        );
        assert_eq!(
            find(&[("authorization", "bEaReR a.b.c")]),
            Ok(Some("a.b.c"))
        );
        assert_eq!(
            find(&[("authorization", "Bearer   a.b.c")]),
            Ok(Some("a.b.c"))
        );
    }

    #[test]
    fn malformed_bearer_values_are_invalid_requests() {
        for value in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a,b",
            "Bearer ====",
            "",
        ] {
            assert_eq!(
                find(&[("authorization", value)]),
                Err(AuthErrorKind::InvalidRequest),
                "{value:?}"
            );
        }
        assert_eq!(
            find(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
            Err(AuthErrorKind::InvalidRequest)
        );
    }

    #[test]
    fn other_schemes_carry_no_bearer_token() {
        assert_eq!(find(&[("authorization", "Basic dXNlcjpwYXNz")]), Ok(None));
        assert_eq!(find(&[]), Ok(None));
    }

    #[test]
    fn cookie_is_a_fallback() {
        assert_eq!(find(&[("cookie", "a=1; at=x.y.z")]), Ok(Some("x.y.z")));
        assert_eq!(
            find(&[("cookie", "at=x.y.z"), ("authorization", "Bearer a.b.c")]),
            Ok(Some("a.b.c"))
        );
        assert_eq!(
            find(&[("cookie", "at=1; at=2")]),
            Err(AuthErrorKind::InvalidRequest)
        );
        assert_eq!(
            find(&[("cookie", "at=a b")]),
            Err(AuthErrorKind::InvalidRequest)
        );
    }

    #[test]
    fn b64token_syntax() {
        assert!(is_b64token("abc-._~+/=="));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a=b"));
        assert!(!is_b64token("a\"b"));
    }
}
