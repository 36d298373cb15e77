//! How a rejection becomes a response.

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};

use crate::error::{AuthError, AuthErrorKind, ConfigError, is_qdtext};

/// Turns an [`AuthError`] into the response sent to the client.
///
/// The layer attaches the error to the response extensions afterwards, so the
/// responder does not have to. [`DefaultResponder`] sends the RFC 6750
/// challenge and a small JSON body; a closure `Fn(&AuthError) -> Response<B>`
/// is a responder too:
///
/// ```
/// use http::{Response, header};
/// use tower_jwt_auth::AuthError;
///
/// let responder = |error: &AuthError| {
///     let mut response = Response::new(format!("denied: {}", error.description()));
///     *response.status_mut() = error.status();
///     if let Some(challenge) = error.challenge("my-api") {
///         response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge.parse().unwrap());
///     }
///     response
/// };
/// # fn takes<R: tower_jwt_auth::Responder<String>>(_: R) {}
/// # takes(responder);
/// ```
pub trait Responder<B>: Clone + Send + Sync + 'static {
    /// Builds the response for `error`.
    fn respond(&self, error: &AuthError) -> Response<B>;
}

impl<F, B> Responder<B> for F
where
    F: Fn(&AuthError) -> Response<B> + Clone + Send + Sync + 'static,
{
    fn respond(&self, error: &AuthError) -> Response<B> {
        self(error)
    }
}

/// A response body that [`DefaultResponder`] can fill with its JSON.
///
/// Implemented for the common body types; for another one, supply a closure
/// as the responder.
pub trait RejectionBody {
    /// A body holding `json`.
    fn from_json(json: String) -> Self;
}

impl RejectionBody for String {
    fn from_json(json: String) -> Self {
        json
    }
}

impl RejectionBody for Bytes {
    fn from_json(json: String) -> Self {
        Bytes::from(json)
    }
}

impl RejectionBody for http_body_util::Full<Bytes> {
    fn from_json(json: String) -> Self {
        Self::new(Bytes::from(json))
    }
}

impl<E> RejectionBody for http_body_util::combinators::BoxBody<Bytes, E>
where
    E: 'static,
{
    fn from_json(json: String) -> Self {
        use http_body_util::BodyExt;
        http_body_util::Full::new(Bytes::from(json))
            .map_err(|never| match never {})
            .boxed()
    }
}

impl<E> RejectionBody for http_body_util::combinators::UnsyncBoxBody<Bytes, E>
where
    E: 'static,
{
    fn from_json(json: String) -> Self {
        use http_body_util::BodyExt;
        http_body_util::Full::new(Bytes::from(json))
            .map_err(|never| match never {})
            .boxed_unsync()
    }
}

/// The default responder: the RFC 6750 status and `WWW-Authenticate`
/// challenge, and a JSON body `{"error": ..., "error_description": ...}`.
///
/// ```text
/// HTTP/1.1 401 Unauthorized
/// www-authenticate: Bearer realm="api", error="invalid_token", error_description="the token has expired"
/// content-type: application/json
///
/// {"error":"invalid_token","error_description":"the token has expired"}
/// ```
#[derive(Debug, Clone)]
pub struct DefaultResponder {
    realm: HeaderSafe,
}

/// A realm already checked to be safe inside a quoted string.
#[derive(Debug, Clone)]
struct HeaderSafe(std::sync::Arc<str>);

impl DefaultResponder {
    /// A responder whose challenges name `realm`.
    ///
    /// The realm must be printable ASCII without quotes or backslashes, so it
    /// can stand in a quoted header string.
    pub fn new(realm: &str) -> Result<Self, ConfigError> {
        if realm.is_empty() || !realm.bytes().all(is_qdtext) {
            return Err(ConfigError::new(
                "a realm must be non-empty printable ASCII without quotes or backslashes",
            ));
        }
        Ok(Self {
            realm: HeaderSafe(realm.into()),
        })
    }

    /// The realm of the challenges.
    pub fn realm(&self) -> &str {
        &self.realm.0
    }
}

impl Default for DefaultResponder {
    fn default() -> Self {
        Self {
            realm: HeaderSafe("api".into()),
        }
    }
}

impl<B: RejectionBody> Responder<B> for DefaultResponder {
    fn respond(&self, error: &AuthError) -> Response<B> {
        let code = match error.kind() {
            AuthErrorKind::MissingCredentials => "unauthorized",
            AuthErrorKind::Unavailable => "temporarily_unavailable",
            _ => error.error_code().unwrap_or("invalid_token"),
        };
        let json = serde_json::json!({
            "error": code,
            "error_description": error.description(),
        })
        .to_string();
        let mut response = Response::new(B::from_json(json));
        *response.status_mut() = error.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // One header line per challenge (Bearer, DPoP). The realm,
        // description and parameters were checked for header safety.
        for challenge in error.challenges(self.realm()) {
            if let Ok(value) = HeaderValue::try_from(challenge) {
                headers.append(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// Whether the request is a gRPC call: a POST with `content-type:
/// application/grpc...`. (A GET claiming gRPC gets the HTTP rejection, not a
/// cacheable 200.)
pub(crate) fn is_grpc<B>(request: &Request<B>) -> bool {
    request.method() == http::Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.len() >= 16
                    && v[..16].eq_ignore_ascii_case("application/grpc")
                    && matches!(v.as_bytes().get(16), None | Some(b'+' | b';'))
            })
}

/// A gRPC "trailers-only" response: HTTP 200 whose headers carry the status.
pub(crate) fn grpc_rejection<B: Default>(error: &AuthError) -> Response<B> {
    let status = match error.kind() {
        AuthErrorKind::InsufficientScope => "7", // PERMISSION_DENIED
        AuthErrorKind::Unavailable => "14",      // UNAVAILABLE
        _ => "16",                               // UNAUTHENTICATED
    };
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from_static(status));
    // Descriptions are printable ASCII without `%`, so they need no percent-encoding.
    let message = error.description().replace('%', "%25");
    if let Ok(value) = HeaderValue::try_from(message) {
        headers.insert("grpc-message", value);
    }
    response
}

/// The rejection response for `error`, with the error in its extensions.
pub(crate) fn reject<B, R>(error: AuthError, grpc: bool, responder: &R) -> Response<B>
where
    B: Default,
    R: Responder<B>,
{
    let mut response = if grpc {
        grpc_rejection(&error)
    } else {
        responder.respond(&error)
    };
    // RFC 9449 section 9: the nonce travels whatever the responder wrote.
    if let Some(nonce) = error.dpop_nonce()
        && let Ok(value) = HeaderValue::from_str(nonce)
    {
        response.headers_mut().insert("dpop-nonce", value);
    }
    response.extensions_mut().insert(error);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_detection() {
        let req = |ct: &str| {
            Request::post("/")
                .header("content-type", ct)
                .body(())
                .unwrap()
        };
        assert!(is_grpc(&req("application/grpc")));
        assert!(is_grpc(&req("application/grpc+proto")));
        assert!(is_grpc(&req("Application/GRPC;charset=utf-8")));
        assert!(!is_grpc(&req("application/grpc-web")));
        assert!(!is_grpc(&req("application/json")));
        let get = Request::get("/")
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        assert!(!is_grpc(&get));
    }

    #[test]
    fn realms_with_quotes_are_refused() {
        assert!(DefaultResponder::new("a\"b").is_err());
        assert!(DefaultResponder::new("").is_err());
        assert_eq!(DefaultResponder::new("my api").unwrap().realm(), "my api");
    }
}
