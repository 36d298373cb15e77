//! [`JwtAuthLayer`]: bearer-token authentication.
//!
//! The layer finds the request's bearer token, verifies it with a
//! [`Verifier`](crate::Verifier), and inserts the decoded
//! [`Claims<C>`](crate::Claims) into the request extensions. A request that
//! fails is answered by the layer (RFC 6750: 401 with a `WWW-Authenticate:
//! Bearer` challenge, 400 for a malformed request) and never reaches the
//! inner service.

mod future;
mod layer;
mod service;

pub use self::{
    future::ResponseFuture,
    layer::{CheckFuture, JwtAuthLayer, JwtAuthLayerBuilder},
    service::JwtAuth,
};
