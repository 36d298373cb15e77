//! The issuer's key ring (feature `key-ring`): signing keys made, rotated
//! and retired on a schedule shared by every instance of the issuing service,
//! their public halves published as a JWK Set.
//!
//! - [`KeyRing`] holds the keys: the active one signs
//!   ([`TokenIssuer::with_key_ring`](crate::TokenIssuer::with_key_ring)), the
//!   next one is published ahead of use, retired ones stay published until
//!   their last token has expired. Each `kid` is the key's RFC 7638
//!   thumbprint ([`thumbprint`](crate::keys::thumbprint)).
//! - [`store`] is where the ring lives: [`store::MemoryKeyRingStore`] for
//!   one instance, `RedisKeyRingStore` (feature `redis`) or
//!   `PostgresKeyRingStore` (feature `postgres`) for several, or your own
//!   [`store::KeyRingStore`].
//! - [`JwksService`](crate::JwksService) serves `/.well-known/jwks.json` and
//!   `/.well-known/openid-configuration`, so that other services verify with
//!   [`RemoteJwks`](crate::keys::RemoteJwks).

#[cfg(feature = "test-util")]
pub mod conformance;
mod generate;
mod key_ring;
pub mod store;

pub use self::key_ring::{
    DEFAULT_RING_NAME, DEFAULT_ROTATION_PERIOD, DEFAULT_SYNC_INTERVAL, KeyRing, KeyRingBuilder,
    KeyRingError, KeyRingErrorKind, KeyStatus, PublishedKey,
};
