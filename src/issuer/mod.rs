//! Issuing: minting access tokens ([`TokenIssuer`]), and, with a key ring
//! (feature `key-ring`), publishing the keys that verify them
//! ([`JwksService`]).

mod tokens;
#[cfg(feature = "key-ring")]
mod well_known;

#[cfg(all(feature = "key-ring", feature = "test-util"))]
pub(crate) use self::tokens::random_id;
pub use self::tokens::{
    AccessTokenBuilder, DEFAULT_ACCESS_TOKEN_TTL, IssueError, IssuedToken, TokenIssuer,
};
#[cfg(feature = "key-ring")]
pub use self::well_known::{DEFAULT_JWKS_MAX_AGE, JwksService, JwksServiceBuilder};
