//! DPoP (RFC 9449): access tokens bound to a client's key, each request
//! proving possession of that key.
//!
//! A DPoP-bound token carries the thumbprint of the client's public key
//! (`cnf.jkt`). The client sends it as `Authorization: DPoP <token>` with a
//! `DPoP` header: a fresh JWT signed by that key, naming the request's
//! method (`htm`) and URL (`htu`), when it was made (`iat`), a unique id
//! (`jti`) and the hash of the token (`ath`). A stolen token is then useless
//! without the key.
//!
//! [`Dpop`] holds the rules; give it to [`JwtAuthLayer`](crate::JwtAuthLayer)
//! as its [`Presentation`](crate::auth::Presentation):
//!
//! ```
//! use tower_jwt_auth::{JwtAuthLayer, VerificationKey, Verifier, dpop::Dpop};
//! # let verifier = Verifier::builder()
//! #     .key(VerificationKey::hmac(b"a secret of at least thirty-two bytes!")?)
//! #     .build()?;
//! // The URL clients call, as they see it (behind a proxy, not the bind address).
//! let dpop = Dpop::builder().base_url("https://api.example.com").build()?;
//! // DPoP-bound tokens with proofs, and plain bearer tokens (unbound only).
//! let layer = JwtAuthLayer::<serde_json::Value>::builder(verifier)
//!     .presentation(dpop.or_bearer())
//!     .build()?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is checked
//!
//! In this order (RFC 9449 section 4.3): exactly one `DPoP` header; a compact
//! JWS of at most 8 KiB with `typ` `dpop+jwt`, an asymmetric `alg` from the
//! allow-list ([`DpopBuilder::algorithms`]) and a public `jwk` (a key with
//! private members is refused, and so are symmetric keys and RSA keys under
//! 2048 bits); the signature, by that key (the crate's own
//! [`VerificationKey::from_jwk`](crate::VerificationKey::from_jwk)); `htm`
//! equal to the method; `htu` equal to the request's URL, both normalized
//! (RFC 3986 section 6: no query or fragment, scheme and host in lower case,
//! the default port dropped, percent-encoding normalized, dot segments
//! removed); `iat` within [`proof_lifetime`](DpopBuilder::proof_lifetime) in
//! the past and the [`leeway`](DpopBuilder::leeway) in the future; the
//! server's nonce when [`nonces`](DpopBuilder::nonces) are on; `ath` equal to
//! base64url(SHA-256(token)). Then the token is verified, and its `cnf.jkt`
//! must be the RFC 7638 thumbprint of the proof's key. Last, the proof's
//! `jti` must never have been seen ([`ReplayCache`]); only then is it
//! recorded.
//!
//! Whatever the presentation, a token with `cnf.jkt` sent as a bearer token
//! is refused (401 `invalid_token`).
//!
//! # The request's URL
//!
//! `htu` is the URL the client called. Behind a proxy or load balancer,
//! the server cannot see it: configure it. Either
//! [`base_url`](DpopBuilder::base_url), the public origin (and path prefix)
//! of the API, to which the request's path is appended; or
//! [`trust_forwarded_headers`](DpopBuilder::trust_forwarded_headers), which
//! reads the scheme and host from `Forwarded` (RFC 7239) or
//! `X-Forwarded-Proto` / `X-Forwarded-Host`, then `Host`. Trust those only
//! behind a proxy that overwrites them: a client could set them itself.
//!
//! # Rejections
//!
//! 401 with a `DPoP` challenge listing the algorithms (`DPoP algs="ES256
//! ..."`), beside the `Bearer` one when bearer tokens are accepted; the
//! error code goes on the scheme the request used: `invalid_dpop_proof` for a
//! bad proof, `use_dpop_nonce` (with a `DPoP-Nonce` header) when the server's
//! nonce is missing or old, `invalid_token` for a bad token, a token bound to
//! another key, or a bound token sent as a bearer token. A replay cache
//! that fails gives 503.
//!
//! # Several instances
//!
//! The default replay cache, [`MemoryReplayCache`], sees the proofs of its
//! own process only. Behind a load balancer, share one:
//! `RedisReplayCache` (feature `redis`, `SET NX EXAT`), or your own
//! [`ReplayCache`].

mod config;
mod nonce;
mod proof;
mod replay;
mod url;

#[cfg(feature = "redis")]
pub use self::replay::RedisReplayCache;
pub use self::{
    config::{
        DEFAULT_LEEWAY, DEFAULT_NONCE_LIFETIME, DEFAULT_PROOF_LIFETIME, Dpop, DpopBuilder,
        DpopProof,
    },
    replay::{DEFAULT_CAPACITY, MemoryReplayCache, ReplayCache, ReplayCacheError, ReplayKey},
};
