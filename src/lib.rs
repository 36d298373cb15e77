#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "rust_crypto", feature = "aws_lc_rs")))]
compile_error!("enable a crypto backend: the `rust_crypto` (default) or `aws_lc_rs` feature");

pub mod auth;
#[cfg(feature = "axum")]
pub mod axum;
mod claims;
mod error;
mod extract;
mod issuer;
mod json;
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
