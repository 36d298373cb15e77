//! Finding the bearer token in a request (RFC 6750 section 2).
//!
//! Only the `Authorization` header, and optionally a named cookie or header,
//! a WebSocket subprotocol, or the application's own function, are read. The
//! query string never is by this crate (RFC 6750 section 2.3 and RFC 9700
//! section 2.4 advise against it: URLs end up in logs).

use std::{borrow::Cow, fmt, sync::Arc};

use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, Uri, header};

use crate::{
    challenge::Scheme,
    cookie::{self, CookieError},
    error::{AuthError, AuthErrorKind, ConfigError},
};

/// Where [`JwtAuthLayer`](crate::JwtAuthLayer) looks for the token, after the
/// `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// The `Authorization: Bearer <token>` header only (the default).
    AuthorizationHeader,
    /// A cookie of this name, when there is no `Authorization` header.
    ///
    /// The `Cookie` headers are read as bytes: other cookies, even with
    /// bytes outside ASCII, are ignored and cannot hide this one. The name
    /// matches exactly once spaces and tabs around it are trimmed; the value
    /// is trimmed and may be enclosed in double quotes. This cookie sent
    /// twice is refused with 400 `invalid_request` ("the token cookie is
    /// repeated"), and so is a value that is not an RFC 6750 `b64token`
    /// ("the token cookie is malformed"). The refresh endpoint's cookie
    /// mode reads its cookie by the same rules.
    Cookie(String),
    /// A header of this name carrying the bare token, when there is no
    /// `Authorization` header.
    Header(HeaderName),
    /// For browser WebSockets, which cannot set headers: the client offers
    /// this subprotocol followed by the token,
    /// `new WebSocket(url, ["<name>", token])`, that is
    /// `Sec-WebSocket-Protocol: <name>, <token>`. The token is the entry right
    /// after `<name>`; a successful upgrade (101) answers
    /// `Sec-WebSocket-Protocol: <name>` unless the application chose one,
    /// since RFC 6455 section 4.1 requires the server to echo one the client
    /// offered (never the token). Off unless chosen; the name must be an
    /// HTTP token (checked when the layer is built).
    WebSocketProtocol(String),
    /// The application's own function of the request; see [`TokenSource::custom`].
    Custom(CustomSource),
}

impl TokenSource {
    /// A token found by the application's function, when there is no
    /// `Authorization` header: `Ok(None)` for a request without one,
    /// `Err` to refuse it (400 with [`AuthError`]'s kind `InvalidRequest` is
    /// usual). The token must still be an RFC 6750 `b64token`.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use tower_jwt_auth::{RequestHead, TokenSource};
    ///
    /// // `X-Api-Token: Token <jwt>`, a legacy client's format.
    /// let source = TokenSource::custom(|head: &RequestHead<'_>| {
    ///     Ok(head
    ///         .headers()
    ///         .get("x-api-token")
    ///         .and_then(|v| v.to_str().ok())
    ///         .and_then(|v| v.strip_prefix("Token "))
    ///         .map(|token| Cow::Owned(token.to_owned())))
    /// });
    /// # let _ = source;
    /// ```
    pub fn custom<F>(find: F) -> Self
    where
        F: for<'a> Fn(&RequestHead<'a>) -> Result<Option<Cow<'a, str>>, AuthError>
            + Send
            + Sync
            + 'static,
    {
        Self::Custom(CustomSource(Arc::new(find)))
    }

    /// Checks what the variants cannot check when built.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        match self {
            Self::WebSocketProtocol(name) if !is_token(name) => Err(ConfigError::new(format!(
                "the WebSocket subprotocol {name:?} is not an HTTP token"
            ))),
            Self::Cookie(name) if !cookie::is_name(name) => Err(ConfigError::new(format!(
                "the cookie name {name:?} is not an HTTP token"
            ))),
            _ => Ok(()),
        }
    }

    /// The subprotocol to echo on a successful upgrade, if the token came
    /// from one.
    pub(crate) fn echo(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        match self {
            Self::WebSocketProtocol(name) if !headers.contains_key(header::AUTHORIZATION) => {
                HeaderValue::from_str(name).ok()
            }
            _ => None,
        }
    }
}

/// The application's token function of [`TokenSource::custom`].
#[derive(Clone)]
pub struct CustomSource(Arc<CustomFn>);

type CustomFn =
    dyn for<'a> Fn(&RequestHead<'a>) -> Result<Option<Cow<'a, str>>, AuthError> + Send + Sync;

impl fmt::Debug for CustomSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomSource(..)")
    }
}

impl PartialEq for CustomSource {
    /// The same function, not an equal one.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CustomSource {}

/// What a [`TokenSource::custom`] function sees of the request: its method,
/// URI, headers and extensions, without the body.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    pub(crate) fn new<B>(request: &'a http::Request<B>) -> Self {
        Self {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions (connection info, for example).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

/// RFC 9110 section 5.6.2: `token = 1*tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether RFC 6750's `b64token` allows `b` before its trailing `=` padding.
/// Comparisons without branches, so that the loops over a token (this runs
/// on every request) are vectorized.
const fn is_b64token_byte(b: u8) -> bool {
    (b.wrapping_sub(b'0') < 10)
        | ((b | 0x20).wrapping_sub(b'a') < 26)
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

/// RFC 6750 section 2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(crate) fn is_b64token(token: &str) -> bool {
    is_b64token_bytes(token.as_bytes())
}

fn is_b64token_bytes(bytes: &[u8]) -> bool {
    let end = bytes.len() - bytes.iter().rev().take_while(|&&b| b == b'=').count();
    end > 0 && all_bytes(&bytes[..end], is_b64token_byte)
}

/// Whether `allowed` holds for every byte, in blocks of 16 without
/// branches (the compiler turns each block into a few vector operations);
/// the last block overlaps the one before rather than going byte by byte.
#[inline]
fn all_bytes(bytes: &[u8], allowed: impl Fn(u8) -> bool + Copy) -> bool {
    let block = |ok: bool, block: &[u8; 16]| ok & block.iter().fold(true, |ok, &b| ok & allowed(b));
    let (blocks, rest) = bytes.as_chunks::<16>();
    let body = blocks.iter().fold(true, block);
    match bytes.len().checked_sub(16) {
        Some(start) if !rest.is_empty() => {
            let last: &[u8; 16] = bytes[start..].try_into().expect("16 bytes");
            block(body, last)
        }
        Some(_) => body,
        None => rest.iter().fold(true, |ok, &b| ok & allowed(b)),
    }
}

/// [`HeaderValue::to_str`] (visible ASCII and tabs), in a loop without
/// branches: an `Authorization` value is as long as its token.
fn header_str(value: &HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    let visible = all_bytes(bytes, |b| (b' '..=b'~').contains(&b) | (b == b'\t'));
    visible.then(|| std::str::from_utf8(bytes).ok()).flatten()
}

fn invalid_request(description: &'static str) -> AuthError {
    AuthError::new(AuthErrorKind::InvalidRequest).with_description(description)
}

/// The token of the request and the scheme it came with, `Ok(None)` if it
/// carries none. `dpop`: whether `Authorization: DPoP <token>` is accepted
/// (RFC 9449 section 7.1); otherwise that scheme carries no token for us.
/// Tokens from the other sources are bearer tokens.
pub(crate) fn find_token<'a>(
    head: &RequestHead<'a>,
    fallback: &TokenSource,
    dpop: bool,
) -> Result<Option<(Cow<'a, str>, Scheme)>, AuthError> {
    if let Some((token, scheme)) = find_borrowed(head, fallback, dpop)? {
        return Ok(Some((Cow::Borrowed(token), scheme)));
    }
    let TokenSource::Custom(custom) = fallback else {
        return Ok(None);
    };
    if head.headers.contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    match (custom.0)(head)? {
        Some(token) if is_b64token(&token) => Ok(Some((token, Scheme::Bearer))),
        Some(_) => Err(invalid_request("the token is malformed")),
        None => Ok(None),
    }
}

/// The token of a lone `Authorization: Bearer <token>` header in its
/// canonical shape (the scheme in any case, one space), its syntax not yet
/// checked: what the layer verifies first, as most requests carry it.
///
/// A token that verifies is three base64url parts, and so a `b64token`:
/// the check [`find_token`] makes up front would only have cost time. One
/// that does not verify at once is read again by [`find_token`] before its
/// error is answered, so a malformed request still gets its 400.
pub(crate) fn canonical_bearer<'a>(head: &RequestHead<'a>) -> Option<&'a str> {
    let value = authorization(head.headers).ok()??;
    std::str::from_utf8(after_scheme(value.as_bytes(), b"bearer ")?).ok()
}

/// The request's one `Authorization` header, if it has one; two are an
/// invalid request.
fn authorization(headers: &HeaderMap) -> Result<Option<&HeaderValue>, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next();
    if values.next().is_some() {
        return Err(invalid_request("more than one Authorization header"));
    }
    Ok(value)
}

/// What follows `scheme` (its name and one space, in any case) at the start
/// of `value`.
fn after_scheme<'v>(value: &'v [u8], scheme: &[u8]) -> Option<&'v [u8]> {
    let (head, rest) = value.split_at_checked(scheme.len())?;
    head.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// `Bearer <b64token>` (or `DPoP <b64token>` when that scheme is accepted)
/// in its canonical shape: the scheme, one space, the token. What
/// [`general`] gives for such a value, without its passes over the value:
/// a `b64token` is visible ASCII, so the whole value is.
fn canonical(value: &HeaderValue, dpop: bool) -> Option<(&str, Scheme)> {
    let bytes = value.as_bytes();
    let (scheme, token) = match after_scheme(bytes, b"bearer ") {
        Some(token) => (Scheme::Bearer, token),
        None if dpop => (Scheme::Dpop, after_scheme(bytes, b"dpop ")?),
        None => return None,
    };
    if !is_b64token_bytes(token) {
        return None;
    }
    Some((std::str::from_utf8(token).ok()?, scheme))
}

/// The `Authorization` value read by RFC 6750's rules (and RFC 9449's for
/// `DPoP`), every malformed shape refused with its own description.
fn general(value: &HeaderValue, dpop: bool) -> Result<Option<(&str, Scheme)>, AuthError> {
    let value = header_str(value)
        .ok_or_else(|| invalid_request("the Authorization header is not valid ASCII"))?;
    let scheme_of = |name: &str| {
        if name.eq_ignore_ascii_case("bearer") {
            Some(Scheme::Bearer)
        } else if dpop && name.eq_ignore_ascii_case("dpop") {
            Some(Scheme::Dpop)
        } else {
            None
        }
    };
    match split_scheme(value) {
        Some((name, credentials)) => match scheme_of(name) {
            Some(scheme) => {
                if credentials.is_empty() {
                    return Err(invalid_request(empty(scheme)));
                }
                if !is_b64token(credentials) {
                    return Err(invalid_request(match scheme {
                        Scheme::Bearer => "the bearer token is malformed",
                        Scheme::Dpop => "the DPoP token is malformed",
                    }));
                }
                Ok(Some((credentials, scheme)))
            }
            // Another scheme (Basic, ...) carries no token for us.
            None => Ok(None),
        },
        None if value.trim().is_empty() => {
            Err(invalid_request("the Authorization header is empty"))
        }
        // A lone word: "Bearer" without a token is malformed, anything
        // else is a scheme we do not handle.
        None => match scheme_of(value.trim()) {
            Some(scheme) => Err(invalid_request(empty(scheme))),
            None => Ok(None),
        },
    }
}

/// The token found by the crate's own rules (all but [`TokenSource::Custom`]).
fn find_borrowed<'a>(
    head: &RequestHead<'a>,
    fallback: &TokenSource,
    dpop: bool,
) -> Result<Option<(&'a str, Scheme)>, AuthError> {
    let headers = head.headers;
    if let Some(value) = authorization(headers)? {
        if let Some(found) = canonical(value, dpop) {
            return Ok(Some(found));
        }
        return general(value, dpop);
    }
    let token = match fallback {
        TokenSource::AuthorizationHeader => None,
        TokenSource::Header(name) => {
            let mut values = headers.get_all(name).iter();
            let Some(value) = values.next() else {
                return Ok(None);
            };
            if values.next().is_some() {
                return Err(invalid_request("the token header is repeated"));
            }
            match value.to_str() {
                Ok(token) if is_b64token(token) => Some(token),
                _ => return Err(invalid_request("the token header is malformed")),
            }
        }
        TokenSource::Cookie(name) => find_cookie(headers, name)?,
        TokenSource::WebSocketProtocol(name) => find_subprotocol(headers, name)?,
        TokenSource::Custom(_) => None,
    };
    Ok(token.map(|token| (token, Scheme::Bearer)))
}

fn empty(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Bearer => "the bearer token is empty",
        Scheme::Dpop => "the DPoP token is empty",
    }
}

/// `Sec-WebSocket-Protocol: <name>, <token>`: the entry after `name`.
fn find_subprotocol<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut found = None;
    for value in headers.get_all(header::SEC_WEBSOCKET_PROTOCOL) {
        let Ok(value) = value.to_str() else {
            return Err(invalid_request(
                "the WebSocket subprotocols are not valid ASCII",
            ));
        };
        let mut entries = value.split(',').map(str::trim);
        while let Some(entry) = entries.next() {
            if entry != name {
                continue;
            }
            if found.is_some() {
                return Err(invalid_request("the token subprotocol is repeated"));
            }
            match entries.next() {
                Some(token) if is_b64token(token) => found = Some(token),
                _ => return Err(invalid_request("the token subprotocol carries no token")),
            }
        }
    }
    Ok(found)
}

/// `scheme 1*SP credentials`; `None` when there is no space.
fn split_scheme(value: &str) -> Option<(&str, &str)> {
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = value.split_once(' ')?;
    Some((scheme, rest.trim_start_matches(' ')))
}

/// The token in the cookie `name`, read by the crate's one cookie parser.
fn find_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    match cookie::find(headers, name) {
        Ok(Some(token)) if is_b64token(token) => Ok(Some(token)),
        Ok(Some(_)) | Err(CookieError::Malformed) => {
            Err(invalid_request("the token cookie is malformed"))
        }
        Err(CookieError::Repeated) => Err(invalid_request("the token cookie is repeated")),
        Ok(None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn the_canonical_shape_reads_as_the_general_rules_read_it() {
        let values = [
            "Bearer abc.def-ghi_jkl~mno+pqr/stu==",
            "bearer abc",
            "BEARER a",
            "DPoP abc.def",
            "dpop abc",
            "Bearer  abc",
            "Bearer abc ",
            " Bearer abc",
            "Bearer\tabc",
            "Bearer ",
            "Bearer",
            "Bearer ==",
            "Bearer a b",
            "Bearer a,b",
            "Basic abc",
            "Bearerabc",
            "DPoPabc",
            "DPoP ",
            "Beare abc",
            "Bearer \u{e9}",
            "",
        ];
        for text in values {
            for dpop in [false, true] {
                let Ok(value) = HeaderValue::from_str(text) else {
                    continue;
                };
                if let Some(found) = canonical(&value, dpop) {
                    assert_eq!(general(&value, dpop).unwrap(), Some(found), "{text:?}");
                }
            }
        }
        let value = HeaderValue::from_static("Bearer abc");
        assert_eq!(canonical(&value, false), Some(("abc", Scheme::Bearer)));
        let value = HeaderValue::from_static("DPoP abc");
        assert_eq!(canonical(&value, false), None);
        assert_eq!(canonical(&value, true), Some(("abc", Scheme::Dpop)));
        for text in ["Bearer  abc", "Bearer ", "bearer a b", " Bearer a"] {
            assert_eq!(canonical(&HeaderValue::from_str(text).unwrap(), true), None);
        }
    }

    #[test]
    fn the_branchless_checks_agree_with_their_definitions() {
        for b in 0..=u8::MAX {
            let b64token =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(is_b64token_byte(b), b64token, "{b:#x}");
            for bytes in [
                vec![b],
                vec![b'a', b, b'z'],
                [&b"Bearer "[..], &[b; 40]].concat(),
            ] {
                if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                    assert_eq!(header_str(&value), value.to_str().ok(), "{bytes:?}");
                }
            }
        }
        for len in 0..70 {
            for bad in 0..len {
                let mut token = vec![b'a'; len];
                assert_eq!(is_b64token(std::str::from_utf8(&token).unwrap()), len > 0);
                token[bad] = b' ';
                assert!(
                    !is_b64token(std::str::from_utf8(&token).unwrap()),
                    "{len} {bad}"
                );
                let value = HeaderValue::from_bytes(&token).unwrap();
                assert!(header_str(&value).is_some());
                token[bad] = 0x80;
                let value = HeaderValue::from_bytes(&token).unwrap();
                assert_eq!(header_str(&value), None, "{len} {bad}");
            }
        }
        assert!(is_b64token("a.b-c_d~e+f/g=="));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a=b"));
        assert!(!is_b64token("a b"));
    }

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

    fn find_in(
        pairs: &[(&str, &str)],
        source: &TokenSource,
    ) -> Result<Option<&'static str>, AuthErrorKind> {
        let mut request = http::Request::new(());
        *request.headers_mut() = headers(pairs);
        let request: &'static http::Request<()> = Box::leak(Box::new(request));
        find_token(&RequestHead::new(request), source, false)
            .map(|token| token.map(|(t, _)| &*Box::leak(t.into_owned().into_boxed_str())))
            .map_err(|e| e.kind())
    }

    fn find(pairs: &[(&str, &str)]) -> Result<Option<&'static str>, AuthErrorKind> {
        find_in(pairs, &TokenSource::Cookie("at".into()))
    }

    #[test]
    fn websocket_subprotocol_carries_the_token_after_its_name() {
        let source = TokenSource::WebSocketProtocol("bearer".into());
        let ws = |value| find_in(&[("sec-websocket-protocol", value)], &source);
        assert_eq!(ws("bearer, a.b.c"), Ok(Some("a.b.c")));
        assert_eq!(ws("chat, bearer,a.b.c"), Ok(Some("a.b.c")));
        assert_eq!(ws("chat"), Ok(None));
        assert_eq!(ws("bearer"), Err(AuthErrorKind::InvalidRequest));
        assert_eq!(ws("bearer, a b"), Err(AuthErrorKind::InvalidRequest));
        assert_eq!(
            ws("bearer, x, bearer, y"),
            Err(AuthErrorKind::InvalidRequest)
        );
        // The Authorization header still comes first.
        assert_eq!(
            find_in(
                &[
                    ("sec-websocket-protocol", "bearer, x.y.z"),
                    ("authorization", "Bearer a.b.c")
                ],
                &source
            ),
            Ok(Some("a.b.c"))
        );
        assert!(
            TokenSource::WebSocketProtocol("a b".into())
                .check()
                .is_err()
        );
        assert!(source.check().is_ok());
    }

    #[test]
    fn custom_sources_see_the_request_head() {
        let source = TokenSource::custom(|head: &RequestHead<'_>| {
            if head.uri().path() == "/refuse" {
                return Err(invalid_request("refused"));
            }
            Ok(head
                .headers()
                .get("x-token")
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed))
        });
        assert_eq!(find_in(&[("x-token", "a.b.c")], &source), Ok(Some("a.b.c")));
        assert_eq!(find_in(&[], &source), Ok(None));
        assert_eq!(
            find_in(&[("x-token", "a b")], &source),
            Err(AuthErrorKind::InvalidRequest)
        );
        assert_eq!(
            find_in(
                &[("x-token", "x.y.z"), ("authorization", "Bearer a.b.c")],
                &source
            ),
            Ok(Some("a.b.c"))
        );
        assert_eq!(source, source.clone());
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
