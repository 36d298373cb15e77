//! The request's URL as the client sees it, and the normalization `htu` is
//! compared under (RFC 9449 section 4.3, RFC 3986 section 6.2.2 and 6.2.3).

use http::header;

use crate::extract::RequestHead;

/// Where the scheme and host of a request's URL come from.
#[derive(Debug, Clone)]
pub(crate) enum ExternalUrl {
    /// A fixed origin and path prefix, normalized, without a trailing `/`.
    Base(String),
    /// `Forwarded`, `X-Forwarded-*`, then `Host`; the scheme defaults to the
    /// base's (or `https`).
    Forwarded { default_scheme: String },
}

impl ExternalUrl {
    /// The normalized URL of the request, without query or fragment.
    pub(crate) fn of(&self, head: &RequestHead<'_>) -> Option<String> {
        let path = head.uri().path();
        let raw = match self {
            Self::Base(base) => format!("{base}{path}"),
            Self::Forwarded { default_scheme } => {
                let headers = head.headers();
                let (mut proto, mut host) = forwarded(headers);
                let first = |name: &str| {
                    let value = headers.get(name)?.to_str().ok()?;
                    Some(value.split(',').next()?.trim().to_owned())
                };
                if proto.is_none() {
                    proto = first("x-forwarded-proto");
                }
                if host.is_none() {
                    host = first("x-forwarded-host");
                }
                let host = host
                    .or_else(|| first(header::HOST.as_str()))
                    .or_else(|| head.uri().authority().map(|a| a.as_str().to_owned()))?;
                let proto = proto.unwrap_or_else(|| default_scheme.clone());
                format!("{proto}://{host}{path}")
            }
        };
        normalize(&raw)
    }
}

/// `proto` and `host` of the first element of `Forwarded` (RFC 7239).
fn forwarded(headers: &http::HeaderMap) -> (Option<String>, Option<String>) {
    let Some(value) = headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()) else {
        return (None, None);
    };
    let first = value.split(',').next().unwrap_or("");
    let (mut proto, mut host) = (None, None);
    for pair in first.split(';') {
        let Some((name, value)) = pair.trim().split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_owned();
        if name.trim().eq_ignore_ascii_case("proto") {
            proto = Some(value);
        } else if name.trim().eq_ignore_ascii_case("host") {
            host = Some(value);
        }
    }
    (proto, host)
}

/// An `http` or `https` URL normalized for comparison: the query and
/// fragment dropped, the scheme and host in lower case, the default port
/// dropped, an empty path made `/`, percent-encodings in upper case with
/// unreserved characters decoded, dot segments removed. `None` for anything
/// else (another scheme, user info, a bad port).
pub(crate) fn normalize(url: &str) -> Option<String> {
    let url = url.split('#').next()?;
    let url = url.split('?').next()?;
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    // A bracketed IPv6 literal may hold colons; the port follows `]`.
    let port_at = match authority.rfind(']') {
        Some(end) => authority[end..].find(':').map(|i| end + i),
        None => authority.rfind(':'),
    };
    let (host, port) = match port_at {
        Some(at) => (&authority[..at], &authority[at + 1..]),
        None => (authority, ""),
    };
    if host.is_empty() {
        return None;
    }
    let mut out = format!("{scheme}://{}", host.to_ascii_lowercase());
    if !port.is_empty() {
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let port: u16 = port.parse().ok()?;
        if port != default_port {
            out.push_str(&format!(":{port}"));
        }
    }
    let path = normalize_percent(path)?;
    let path = remove_dot_segments(&path);
    if path.is_empty() {
        out.push('/');
    } else {
        out.push_str(&path);
    }
    Some(out)
}

/// Upper-case hex digits in percent-encodings; unreserved characters
/// (RFC 3986 section 2.3) decoded. `None` for a broken percent-encoding.
fn normalize_percent(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            let value = u8::from_str_radix(hex, 16).ok()?;
            if value.is_ascii_alphanumeric() || b"-._~".contains(&value) {
                out.push(char::from(value));
            } else {
                out.push_str(&format!("%{value:02X}"));
            }
            i += 3;
        } else {
            out.push(char::from(bytes[i]));
            i += 1;
        }
    }
    out.is_ascii().then_some(out)
}

/// RFC 3986 section 5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing = false;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => trailing = i == last,
            ".." => {
                if output.len() > 1 {
                    output.pop();
                }
                trailing = i == last;
            }
            s => {
                output.push(s);
                trailing = false;
            }
        }
    }
    let mut joined = output.join("/");
    if trailing && !joined.ends_with('/') {
        joined.push('/');
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalize_per_rfc3986() {
        let n = |u| normalize(u);
        assert_eq!(
            n("https://Api.Example.COM/a?q=1#f").as_deref(),
            Some("https://api.example.com/a")
        );
        assert_eq!(
            n("HTTPS://api.example.com:443/a").as_deref(),
            Some("https://api.example.com/a")
        );
        assert_eq!(
            n("http://api.example.com:80").as_deref(),
            Some("http://api.example.com/")
        );
        assert_eq!(
            n("http://127.0.0.1:8080/x").as_deref(),
            Some("http://127.0.0.1:8080/x")
        );
        assert_eq!(
            n("https://h/%7euser/%2f%41").as_deref(),
            Some("https://h/~user/%2FA")
        );
        assert_eq!(n("https://h/a/./b/../c").as_deref(), Some("https://h/a/c"));
        assert_eq!(
            n("https://[::1]:8443/a").as_deref(),
            Some("https://[::1]:8443/a")
        );
        assert_eq!(n("https://[::1]/a").as_deref(), Some("https://[::1]/a"));
        assert_eq!(n("ftp://h/a"), None);
        assert_eq!(n("https://user@h/a"), None);
        assert_eq!(n("https://h:x/a"), None);
        assert_eq!(n("https://h/%zz"), None);
        assert_eq!(n("https:///a"), None);
        // Case matters in the path.
        assert_ne!(n("https://h/A"), n("https://h/a"));
    }
}
