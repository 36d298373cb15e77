#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "rust_crypto", feature = "aws_lc_rs")))]
compile_error!("enable a crypto backend: the `rust_crypto` (default) or `aws_lc_rs` feature");

pub mod auth;
#[cfg(feature = "axum")]
pub mod axum;
mod challenge;
mod claims;
mod cookie;
pub mod dpop;
mod error;
mod extract;
mod issuer;
mod json;
pub mod keys;
pub mod metrics;
pub mod refresh;
pub mod resource_metadata;
mod response;
pub mod role;
pub mod step_up;
#[cfg(feature = "tonic")]
pub mod tonic;
mod verifier;

#[cfg(feature = "key-ring")]
pub use crate::issuer::{DEFAULT_JWKS_MAX_AGE, JwksService, JwksServiceBuilder};
pub use crate::{
    auth::{JwtAuth, JwtAuthLayer, JwtAuthLayerBuilder, Presentation},
    claims::{Claims, RegisteredClaims},
    error::{AuthError, AuthErrorKind, ConfigError},
    extract::{CustomSource, RequestHead, TokenSource},
    issuer::{AccessTokenBuilder, DEFAULT_ACCESS_TOKEN_TTL, IssueError, IssuedToken, TokenIssuer},
    keys::{
        Algorithm, JwkSet, SigningKey, UnknownAlgorithm, VerificationKey, install_crypto_provider,
    },
    response::{DefaultResponder, RejectionBody, Responder},
    role::{RequireRole, RequireRoleLayer, RoleHierarchy},
    step_up::{StepUp, StepUpLayer, StepUpLayerBuilder},
    verifier::{
        DEFAULT_CACHE_ENTRIES, DEFAULT_CACHE_MEMORY, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN,
        Verifier, VerifierBuilder,
    },
};
