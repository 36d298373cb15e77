//! JWT bearer authentication, role authorization and refresh-token rotation
//! as [Tower](https://docs.rs/tower) middleware, for axum, hyper, tonic and
//! any other Tower stack.
//!
//! ```
//! use axum::{Router, routing::get};
//! use serde::Deserialize;
//! use tower_jwt_auth::{
//!     Algorithm, Claims, JwtAuthLayer, RequireRoleLayer, SigningKey, TokenIssuer,
//!     VerificationKey, Verifier,
//! };
//!
//! #[derive(Clone, Deserialize)]
//! struct MyClaims {
//!     role: String,
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = b"a secret of at least thirty-two bytes!";
//!
//! // Verify: HS256 only, `exp` required, our issuer and audience.
//! let verifier = Verifier::builder()
//!     .key(VerificationKey::hmac(secret)?)
//!     .issuer("my-app")
//!     .audience("my-api")
//!     .build()?;
//!
//! let app: Router = Router::new()
//!     .route(
//!         "/admin",
//!         get(|| async { "hello, admin" }).route_layer(RequireRoleLayer::any_of(["ADMIN"])),
//!     )
//!     .route("/me", get(|claims: Claims<MyClaims>| async move { claims.role.clone() }))
//!     .layer(JwtAuthLayer::<MyClaims>::new(verifier));
//!
//! // Issue: a 15-minute access token for a login.
//! let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, secret)?)
//!     .issuer("my-app")
//!     .audience("my-api");
//! let token = issuer.access_token("user-1").role("ADMIN").sign()?;
//! # let _ = (app, token);
//! # Ok(())
//! # }
//! ```
//!
//! # Rejections
//!
//! Following RFC 6750, a request without a token gets 401 with
//! `WWW-Authenticate: Bearer realm="api"`; a bad token 401 with
//! `error="invalid_token"`; a malformed request (two `Authorization` headers,
//! an empty or malformed bearer value) 400 `invalid_request`; a valid token
//! without the required role 403 `insufficient_scope`. gRPC requests get a
//! trailers-only response with `grpc-status` 16 (UNAUTHENTICATED) or 7
//! (PERMISSION_DENIED) instead. The [`AuthError`] is attached to every
//! rejection's extensions; how it becomes a body is a [`Responder`].
//!
//! # Secure defaults
//!
//! - Each key is bound to the algorithms of its type; `none` does not exist.
//! - `exp` is required; `nbf` is checked; leeway is 30 s.
//! - Tokens longer than 8 KiB are refused before any decoding.
//! - A `crit` header, duplicate claim names, or an `aud` claim when no
//!   audience is configured are refused.
//! - HMAC secrets shorter than the hash are refused when the key is built.
//! - No token, refresh token, secret or claim value is logged, and the error
//!   sources kept on an [`AuthError`] never quote one. (The refresh module's
//!   warnings name the user and session of a detected reuse: that is their point.)
//!
//! # Feature flags
//!
//! - `rust_crypto` (default): pure-Rust signature verification.
//! - `aws_lc_rs`: aws-lc-rs instead, several times faster for RS256 and ES256.
//!   Enable exactly one of the two.
//! - `axum` (default): [`Claims`] as an axum extractor.
//! - `tonic`: rejection bodies for `tonic::body::Body`, and
//!   `tonic::RequestClaimsExt` to read [`Claims`] in gRPC handlers.
//! - `redis`, `postgres`: refresh-token stores on Redis and PostgreSQL.
//! - `jwks`: keys from an identity provider's JWK Set URL or by OpenID
//!   Connect discovery, cached, refreshed in the background and on an unknown
//!   `kid` ([`keys::RemoteJwks`]). Static JWK and JWK Set JSON is supported
//!   without it ([`JwkSet`], [`VerificationKey::from_jwk`]).
//! - `test-util`: the [`RefreshStore`](refresh::store::RefreshStore) conformance suite.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(not(any(feature = "rust_crypto", feature = "aws_lc_rs")))]
compile_error!("enable a crypto backend: the `rust_crypto` (default) or `aws_lc_rs` feature");

pub mod auth;
#[cfg(feature = "axum")]
pub mod axum;
mod claims;
mod error;
mod extract;
mod issuer;
pub mod keys;
pub mod refresh;
mod response;
pub mod role;
#[cfg(feature = "tonic")]
pub mod tonic;
mod verifier;

pub use crate::{
    auth::{JwtAuth, JwtAuthLayer, JwtAuthLayerBuilder},
    claims::{Claims, RegisteredClaims},
    error::{AuthError, AuthErrorKind, ConfigError},
    extract::{CustomSource, RequestHead, TokenSource},
    issuer::{AccessTokenBuilder, DEFAULT_ACCESS_TOKEN_TTL, IssueError, IssuedToken, TokenIssuer},
    keys::{
        Algorithm, JwkSet, SigningKey, UnknownAlgorithm, VerificationKey, install_crypto_provider,
    },
    response::{DefaultResponder, RejectionBody, Responder},
    role::{RequireRole, RequireRoleLayer, RoleHierarchy},
    verifier::{DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN, Verifier, VerifierBuilder},
};
