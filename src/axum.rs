//! axum integration (feature `axum`): [`Claims`] as an extractor.
//!
//! ```
//! use axum::{Router, routing::get};
//! use serde::Deserialize;
//! use tower_jwt_auth::{Claims, JwtAuthLayer, RequireRoleLayer, VerificationKey, Verifier};
//!
//! #[derive(Clone, Deserialize)]
//! struct MyClaims {
//!     role: String,
//! }
//!
//! async fn me(claims: Claims<MyClaims>) -> String {
//!     format!("{} ({})", claims.subject().unwrap_or("?"), claims.role)
//! }
//!
//! async fn maybe(claims: Option<Claims<MyClaims>>) -> &'static str {
//!     if claims.is_some() { "signed in" } else { "anonymous" }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder()
//!     .key(VerificationKey::hmac(b"a secret of at least thirty-two bytes!")?)
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/admin", get(me).route_layer(RequireRoleLayer::any_of(["ADMIN"])))
//!     .route("/me", get(me))
//!     .layer(JwtAuthLayer::<MyClaims>::new(verifier));
//! # Ok(())
//! # }
//! ```

use std::{convert::Infallible, fmt};

use axum_core::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::{StatusCode, request::Parts};

use crate::claims::Claims;

impl<S, C> FromRequestParts<S> for Claims<C>
where
    C: Clone + Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = MissingClaims;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Claims<C>>()
            .cloned()
            .ok_or(MissingClaims {
                type_name: std::any::type_name::<C>(),
            })
    }
}

impl<S, C> OptionalFromRequestParts<S> for Claims<C>
where
    C: Clone + Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Claims<C>>().cloned())
    }
}

/// The rejection of the [`Claims`] extractor when the request carries no
/// claims of that type: `JwtAuthLayer` is not applied to the route, is applied
/// with another claims type, or runs in optional mode (then extract
/// `Option<Claims<C>>`). A server bug, so 500.
///
/// Its [`Display`](fmt::Display) names the claims type and the layer to
/// check, and is logged (at `error`) when it becomes a response; the response
/// body says only `internal server error`, so that no Rust type name (nor
/// anything else about the server's code) reaches the client.
#[derive(Debug, Clone)]
pub struct MissingClaims {
    type_name: &'static str,
}

impl fmt::Display for MissingClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no `Claims<{}>` in the request extensions: is `JwtAuthLayer<{}>` applied to this route?",
            self.type_name, self.type_name
        )
    }
}

impl std::error::Error for MissingClaims {}

impl IntoResponse for MissingClaims {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
    }
}

impl crate::response::RejectionBody for axum_core::body::Body {
    fn from_json(json: String) -> Self {
        Self::from(json)
    }
}
