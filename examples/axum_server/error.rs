//! The handlers' error answers.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// An error answered as `{"error", "error_description"}`, the shape the
/// layers use too.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
}

impl ApiError {
    /// An error with this status, code and description.
    pub fn new(status: StatusCode, error: &'static str, description: &'static str) -> Self {
        Self {
            status,
            error,
            description,
        }
    }

    /// 422 `invalid_request`: a body that parsed but makes no sense.
    pub fn unprocessable(description: &'static str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            description,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        });
        let response = (self.status, Json(body)).into_response();
        // Token endpoint answers must not be cached (RFC 6749 section 5.1);
        // harmless elsewhere.
        no_store(response)
    }
}

/// Marks `response` as not to be cached.
pub fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
