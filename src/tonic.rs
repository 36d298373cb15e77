//! tonic integration (feature `tonic`): rejection bodies for
//! [`tonic::body::Body`] and the verified [`Claims`] of a [`tonic::Request`].
//!
//! Apply [`JwtAuthLayer`](crate::JwtAuthLayer) to the whole server with
//! [`Server::layer`](https://docs.rs/tonic/latest/tonic/transport/server/struct.Server.html#method.layer).
//! Every call then needs `authorization: Bearer <token>` metadata; a call
//! without a valid token ends with `UNAUTHENTICATED` (16), a call whose token
//! lacks a role required by [`RequireRoleLayer`](crate::RequireRoleLayer)
//! with `PERMISSION_DENIED` (7), as gRPC trailers-only responses.
//!
//! ```
//! use serde::Deserialize;
//! use tonic::transport::Server;
//! use tower::ServiceBuilder;
//! use tower_jwt_auth::{JwtAuthLayer, RequireRoleLayer, VerificationKey, Verifier};
//!
//! #[derive(Clone, Deserialize)]
//! struct MyClaims {
//!     role: String,
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder()
//!     .key(VerificationKey::hmac(b"a secret of at least thirty-two bytes!")?)
//!     .issuer("my-app")
//!     .audience("my-api")
//!     .build()?;
//! let (_reporter, health) = tonic_health::server::health_reporter();
//!
//! // Authentication outside, authorization inside.
//! let router = Server::builder()
//!     .layer(
//!         ServiceBuilder::new()
//!             .layer(JwtAuthLayer::<MyClaims>::new(verifier))
//!             .layer(RequireRoleLayer::any_of(["ADMIN"])),
//!     )
//!     .add_service(health);
//! // router.serve("127.0.0.1:50051".parse()?).await?;
//! # let _ = router;
//! # Ok(())
//! # }
//! ```
//!
//! In a handler or an interceptor, read the claims with
//! [`RequestClaimsExt::claims`].

use bytes::Bytes;
use tonic::{Request, Status, body::Body};

use crate::{claims::Claims, response::RejectionBody};

impl RejectionBody for Body {
    fn from_json(json: String) -> Self {
        Self::new(http_body_util::Full::new(Bytes::from(json)))
    }
}

/// Reads the [`Claims`] that [`JwtAuthLayer`](crate::JwtAuthLayer) verified
/// from a [`tonic::Request`] (tonic carries the HTTP request extensions over
/// into [`Request::extensions`]).
///
/// ```
/// use serde::Deserialize;
/// use tonic::{Code, Request, Response, Status};
/// use tower_jwt_auth::tonic::RequestClaimsExt;
///
/// #[derive(Clone, Deserialize)]
/// struct MyClaims {
///     role: String,
/// }
///
/// fn whoami(request: Request<()>) -> Result<Response<String>, Status> {
///     let claims = request.claims::<MyClaims>()?;
///     let user = claims.subject().unwrap_or("?");
///     Ok(Response::new(format!("{user} ({})", claims.role)))
/// }
///
/// // Without `JwtAuthLayer` in front, there are no claims.
/// let status = whoami(Request::new(())).unwrap_err();
/// assert_eq!(status.code(), Code::Unauthenticated);
/// ```
pub trait RequestClaimsExt {
    /// The verified claims of type `C`, or `UNAUTHENTICATED` when there are
    /// none: `JwtAuthLayer<C>` is not applied to the server, is applied with
    /// another claims type, or runs in optional mode and the call carried no
    /// credentials (then use `request.extensions().get::<Claims<C>>()`, which
    /// gives an `Option`).
    #[allow(clippy::result_large_err)] // `Status` is tonic's error type.
    fn claims<C>(&self) -> Result<&Claims<C>, Status>
    where
        C: Send + Sync + 'static;
}

impl<T> RequestClaimsExt for Request<T> {
    fn claims<C>(&self) -> Result<&Claims<C>, Status>
    where
        C: Send + Sync + 'static,
    {
        self.extensions().get::<Claims<C>>().ok_or_else(|| {
            let type_name = std::any::type_name::<C>();
            tracing::debug!(type_name, "no verified claims in the gRPC request");
            Status::unauthenticated(format!(
                "no verified `Claims<{type_name}>` in the request: \
                 is `JwtAuthLayer<{type_name}>` applied to this server?"
            ))
        })
    }
}
