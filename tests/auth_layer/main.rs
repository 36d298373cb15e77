//! The rejection-path catalogue of `JwtAuthLayer` and `RequireRoleLayer`.
//!
//! Every rejection test checks the exact status, the exact `WWW-Authenticate`
//! challenge, the exact JSON body, the `AuthError` kind in the response
//! extensions, and that the inner service was never called. Hostile tokens are
//! minted by hand (base64url + JSON + `jsonwebtoken::crypto::sign`); valid ones
//! with the crate's own `TokenIssuer`.
//!
//! References: RFC 6750 (bearer tokens), RFC 7515 (JWS), RFC 7519 (JWT),
//! RFC 8725 (JWT best current practices), RFC 9068 (JWT access tokens).
//!
//! `support` holds the shared fixtures; each other module is one area.

mod support;

mod accepted;
mod algorithms;
mod check_hook;
mod credentials;
mod crit_and_duplicates;
mod grpc;
mod issuers;
mod kid;
mod optional_mode;
mod registered_claims;
mod responder_and_realm;
mod roles;
mod serialization;
mod token_length;
mod token_sources;
mod token_type;
