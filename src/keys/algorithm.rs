//! JWS algorithms and the key types they belong to.

use std::{fmt, str::FromStr};

use jsonwebtoken as jwt;

/// A JWS signature algorithm.
///
/// `none` is deliberately absent: an unsigned token is never accepted.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// ECDSA with P-384 and SHA-384.
    ES384,
    /// EdDSA (Ed25519).
    EdDSA,
}

/// The type of a key, which fixes the algorithms it may be used with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

impl Algorithm {
    /// The algorithm's name as it appears in a JWS header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    pub(crate) fn key_type(self) -> KeyType {
        match self {
            Self::HS256 | Self::HS384 | Self::HS512 => KeyType::Hmac,
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                KeyType::Rsa
            }
            Self::ES256 | Self::ES384 => KeyType::Ec,
            Self::EdDSA => KeyType::Ed,
        }
    }

    pub(crate) fn to_jwt(self) -> jwt::Algorithm {
        match self {
            Self::HS256 => jwt::Algorithm::HS256,
            Self::HS384 => jwt::Algorithm::HS384,
            Self::HS512 => jwt::Algorithm::HS512,
            Self::RS256 => jwt::Algorithm::RS256,
            Self::RS384 => jwt::Algorithm::RS384,
            Self::RS512 => jwt::Algorithm::RS512,
            Self::PS256 => jwt::Algorithm::PS256,
            Self::PS384 => jwt::Algorithm::PS384,
            Self::PS512 => jwt::Algorithm::PS512,
            Self::ES256 => jwt::Algorithm::ES256,
            Self::ES384 => jwt::Algorithm::ES384,
            Self::EdDSA => jwt::Algorithm::EdDSA,
        }
    }

    /// The smallest HMAC secret RFC 7518 section 3.2 allows: the hash size.
    pub(crate) fn min_hmac_secret_len(self) -> usize {
        match self {
            Self::HS384 => 48,
            Self::HS512 => 64,
            _ => 32,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown algorithm name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAlgorithm(());

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown or unsupported JWS algorithm")
    }
}

impl std::error::Error for UnknownAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Parses an algorithm name exactly as it appears in a JWS header
    /// (case-sensitive, per RFC 7515). `none` is an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "EdDSA" => Self::EdDSA,
            _ => return Err(UnknownAlgorithm(())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_not_an_algorithm() {
        assert!("none".parse::<Algorithm>().is_err());
        assert!("hs256".parse::<Algorithm>().is_err());
        assert_eq!("EdDSA".parse::<Algorithm>(), Ok(Algorithm::EdDSA));
    }
}
