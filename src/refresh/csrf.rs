//! Cookie mode's defence against cross-site request forgery.
//!
//! A browser attaches the refresh-token cookie to every request to the
//! endpoint, whoever starts it. `SameSite=Strict` stops other sites, but not
//! the endpoint's own site: a sibling origin (`evil.example.com` beside
//! `app.example.com`) is same-site, so its forms and scripts get the cookie
//! sent too. A refresh from the cookie therefore also needs what a forged
//! request cannot have:
//!
//! - a body that an HTML form cannot send: form and `text/plain` bodies are
//!   refused in cookie mode (the media types a cross-origin request may use
//!   without a CORS preflight);
//! - a custom header (`X-Requested-With` unless configured): another origin
//!   cannot add one without a CORS preflight that this endpoint never
//!   answers;
//! - fetch metadata: `Sec-Fetch-Site: cross-site` is refused, and
//!   `same-site` (a sibling origin) unless its `Origin` is allowed;
//! - optionally, an `Origin` allow-list: a request naming another origin is
//!   refused (and, without the header defence, one naming none).
//!
//! Answers: 400 `invalid_request` for a form or `text/plain` body (the client
//! can fix the request: cookie mode takes JSON or no body); 403 with the RFC
//! 6749 section 5.2 error shape and `invalid_request` for a request whose
//! origin or missing header makes it untrusted (OWASP's advice; the same
//! request will never pass, so 400's "fix your syntax" would mislead).

use http::{HeaderMap, HeaderName, Response, StatusCode, header};

use super::oauth;
use crate::ConfigError;

/// The custom header required by default.
const DEFAULT_HEADER: &str = "X-Requested-With";

/// The description of a 400 for a form or `text/plain` body in cookie mode.
pub(super) const SIMPLE_BODY: &str =
    "a cookie-mode refresh takes a JSON body or none, not a form or text/plain";

/// The description of a 403 for an untrusted origin.
const ORIGIN_REFUSED: &str = "the request's origin may not use the refresh-token cookie";

/// The CSRF settings as the builder collects them.
#[derive(Debug, Default)]
pub(super) struct CsrfSettings {
    pub(super) header: Option<String>,
    pub(super) without_header: bool,
    pub(super) origins: Option<Vec<String>>,
}

/// The checks a refresh from the cookie must pass; made by
/// [`CsrfSettings::build`].
#[derive(Debug)]
pub(super) struct CsrfPolicy {
    /// The required header and the description of its 403.
    header: Option<(HeaderName, String)>,
    /// Allowed origins, serialized (`https://app.example.com`); empty when
    /// no allow-list is configured.
    origins: Vec<String>,
}

impl CsrfSettings {
    /// Whether anything was configured (which needs cookie mode).
    pub(super) fn is_set(&self) -> bool {
        self.header.is_some() || self.without_header || self.origins.is_some()
    }

    /// The policy, or why these settings cannot defend cookie mode.
    pub(super) fn build(self) -> Result<CsrfPolicy, ConfigError> {
        let header = match (self.header, self.without_header) {
            (Some(_), true) => {
                return Err(ConfigError::new(
                    "csrf_header and without_csrf_header contradict each other",
                ));
            }
            (Some(name), false) => Some(header(name)?),
            (None, false) => Some(header(DEFAULT_HEADER.to_owned())?),
            (None, true) => None,
        };
        let origins = match self.origins {
            Some(origins) if origins.is_empty() => {
                return Err(ConfigError::new(
                    "allowed_origins is empty: list at least one origin, or leave it unset",
                ));
            }
            Some(origins) => {
                for origin in &origins {
                    check_origin(origin)?;
                }
                origins
            }
            None => Vec::new(),
        };
        if header.is_none() && origins.is_empty() {
            return Err(ConfigError::new(
                "cookie mode needs a CSRF defence: keep the CSRF header or set allowed_origins",
            ));
        }
        Ok(CsrfPolicy { header, origins })
    }
}

/// The header `name`, if a cross-origin page cannot send it without a CORS
/// preflight and the browser does not set it itself.
fn header(name: String) -> Result<(HeaderName, String), ConfigError> {
    let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
        ConfigError::with_source(format!("the CSRF header {name:?} is not a header name"), e)
    })?;
    // CORS-safelisted request headers (a page may send them anywhere) and
    // the headers a browser sets itself (fetch's forbidden request headers).
    const UNFIT: [&str; 26] = [
        "accept",
        "accept-language",
        "content-language",
        "content-type",
        "range",
        "accept-charset",
        "accept-encoding",
        "access-control-request-headers",
        "access-control-request-method",
        "connection",
        "content-length",
        "cookie",
        "cookie2",
        "date",
        "dnt",
        "expect",
        "host",
        "keep-alive",
        "origin",
        "referer",
        "set-cookie",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
    ];
    let lower = parsed.as_str();
    if UNFIT.contains(&lower) || lower.starts_with("sec-") || lower.starts_with("proxy-") {
        return Err(ConfigError::new(format!(
            "the CSRF header {name:?} is one that any page may send or that the browser sets \
             itself: choose a custom header such as X-Requested-With"
        )));
    }
    let description = format!("the refresh-token cookie needs the {name} header");
    Ok((parsed, description))
}

/// Checks that `origin` is a serialized web origin: `http` or `https`, a
/// lower-case host, a port only when not the scheme's default; no path, no
/// trailing slash, no wildcard (browsers send `Origin` in exactly this form).
fn check_origin(origin: &str) -> Result<(), ConfigError> {
    let invalid = |why: &str| {
        Err(ConfigError::new(format!(
            "the allowed origin {origin:?} {why}: expected a serialized origin such as \
             https://app.example.com or http://localhost:3000"
        )))
    };
    let (rest, default_port) = if let Some(rest) = origin.strip_prefix("https://") {
        (rest, "443")
    } else if let Some(rest) = origin.strip_prefix("http://") {
        (rest, "80")
    } else {
        return invalid("is not http:// or https://");
    };
    let (host, port, ipv6) = if let Some(end) = rest.strip_prefix('[').and_then(|r| r.find(']')) {
        // An IPv6 literal, `[...]` then an optional `:port`.
        let (literal, after) = rest.split_at(end + 2);
        let address = &literal[1..literal.len() - 1];
        let valid = address.contains(':')
            && address
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'a'..=b'f' | b':' | b'.'));
        if !valid {
            return invalid("has an invalid IPv6 address");
        }
        match after {
            "" => (literal, None, true),
            _ => match after.strip_prefix(':') {
                Some(port) => (literal, Some(port), true),
                None => return invalid("has something after its host"),
            },
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port), false),
            None => (rest, None, false),
        }
    };
    let host_ok = ipv6
        || (!host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.')));
    if !host_ok {
        return invalid(
            "has no host, or a host that is not lower-case letters, digits, `-` and `.`",
        );
    }
    if let Some(port) = port {
        let in_range = port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && !port.starts_with('0')
            && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p));
        if !in_range {
            return invalid("has an invalid port");
        }
        if port == default_port {
            return invalid("names its scheme's default port, which browsers leave out");
        }
    }
    Ok(())
}

impl CsrfPolicy {
    /// Whether the request passes the checks that a refresh from the
    /// cookie needs; the description of the 403 ([`refused`]) if not.
    pub(super) fn check(&self, headers: &HeaderMap) -> Result<(), &str> {
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let origin = origins.next().map(|v| v.as_bytes());
        if origins.next().is_some() {
            return Err(ORIGIN_REFUSED);
        }
        let allowed = origin.is_some_and(|origin| {
            self.origins
                .iter()
                .any(|allowed| allowed.as_bytes() == origin)
        });
        let site = headers
            .get(HeaderName::from_static("sec-fetch-site"))
            .map(|v| v.as_bytes());
        match site {
            Some(site) if site.eq_ignore_ascii_case(b"cross-site") => {
                return Err(ORIGIN_REFUSED);
            }
            Some(site) if site.eq_ignore_ascii_case(b"same-site") && !allowed => {
                return Err(ORIGIN_REFUSED);
            }
            _ => {}
        }
        if !self.origins.is_empty() && !allowed && (origin.is_some() || self.header.is_none()) {
            return Err(ORIGIN_REFUSED);
        }
        if let Some((name, description)) = &self.header {
            let present = headers
                .get_all(name)
                .iter()
                .any(|v| v.as_bytes().iter().any(|&b| b != b' ' && b != b'\t'));
            if !present {
                return Err(description.as_str());
            }
        }
        Ok(())
    }
}

/// The 403 for a refresh from the cookie that [`CsrfPolicy::check`] refused.
pub(super) fn refused(description: &str) -> Response<String> {
    tracing::info!(reason = description, "cookie-mode refresh refused");
    oauth::error(StatusCode::FORBIDDEN, "invalid_request", description)
}

/// Whether the request's `Content-Type` is one an HTML form (or a no-cors
/// fetch) can send across origins without a CORS preflight: a form or
/// `text/plain`.
pub(super) fn is_simple_body(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONTENT_TYPE).iter().any(|value| {
        let bytes = value.as_bytes();
        let essence = bytes.split(|&b| b == b';').next().unwrap_or_default();
        let essence = essence.trim_ascii();
        [
            &b"application/x-www-form-urlencoded"[..],
            b"multipart/form-data",
            b"text/plain",
        ]
        .iter()
        .any(|simple| essence.eq_ignore_ascii_case(simple))
    })
}

#[cfg(test)]
mod tests {
    use super::{CsrfSettings, check_origin};

    #[test]
    fn origins_must_be_serialized_origins() {
        for good in [
            "https://app.example.com",
            "http://localhost:3000",
            "https://xn--bcher-kva.example",
            "http://127.0.0.1:8080",
            "https://[::1]:8443",
            "https://[2001:db8::1]",
        ] {
            assert!(check_origin(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "*",
            "null",
            "app.example.com",
            "ftp://app.example.com",
            "https://",
            "https://App.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://*.example.com",
            "https://user@app.example.com",
            "https://app.example.com:",
            "https://app.example.com:443",
            "http://app.example.com:80",
            "https://app.example.com:0",
            "https://app.example.com:65536",
            "https://app.example.com:08080",
            "https://[::1",
            "https://[::g]",
            "https://[]",
            "https://[abc",
            "https://[::1]x",
            "https://app.example.com ",
        ] {
            assert!(check_origin(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_defence_is_required() {
        let settings = CsrfSettings {
            without_header: true,
            ..CsrfSettings::default()
        };
        assert!(settings.build().is_err());
        assert!(
            CsrfSettings::default().build().is_ok(),
            "the default header"
        );
    }
}
