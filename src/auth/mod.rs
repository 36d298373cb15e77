//! [`JwtAuthLayer`]: bearer-token authentication.
//!
//! The layer finds the request's bearer token, verifies it with a
//! [`Verifier`](crate::Verifier), and inserts the decoded
//! [`Claims<C>`](crate::Claims) into the request extensions. A request that
//! fails is answered by the layer (RFC 6750: 401 with a `WWW-Authenticate:
//! Bearer` challenge, 400 for a malformed request) and never reaches the
//! inner service.
//!
//! With a DPoP [`Presentation`] (see [`crate::dpop`]), tokens come as
//! `Authorization: DPoP <token>` with a `DPoP` proof header (RFC 9449), and
//! the challenges name the `DPoP` scheme too.

mod future;
mod layer;
mod presentation;
mod service;

pub(crate) use self::presentation::{ProofCheck, Proven};
pub use self::{
    future::ResponseFuture,
    layer::{CheckFuture, Checked, IntoChecked, JwtAuthLayer, JwtAuthLayerBuilder},
    presentation::Presentation,
    service::JwtAuth,
};
