//! The OAuth 2.0 response shapes (RFC 6749 sections 5.1 and 5.2).

use http::{HeaderValue, Response, StatusCode, header};

/// An OAuth 2.0 error response (RFC 6749 section 5.2) as `Response<String>`.
pub(crate) fn error(status: StatusCode, error: &str, description: &str) -> Response<String> {
    let body = serde_json::json!({ "error": error, "error_description": description }).to_string();
    json(status, body)
}

/// 400 `invalid_request` with `description`.
pub(crate) fn invalid_request(description: &str) -> Response<String> {
    error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

/// A JSON response that no cache keeps.
pub(crate) fn json(status: StatusCode, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // RFC 6749 section 5.1: token responses must not be cached.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
