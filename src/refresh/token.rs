//! What a client holds: the refresh token, the token pair and its response.
//! Also how a refresh token is made, checked for shape and hashed.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use http::{Response, StatusCode};
use rand::{TryRngCore, rngs::OsRng};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Session, oauth, store::TokenHash};
use crate::IssuedToken;

/// Bytes of randomness in a refresh token: 256 bits.
const REFRESH_TOKEN_BYTES: usize = 32;
/// The length of an encoded refresh token.
const REFRESH_TOKEN_LEN: usize = 43;

/// A refresh token as handed to the client. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    /// A new token of 256 random bits, base64url.
    pub(super) fn generate() -> Result<Self, rand::rand_core::OsError> {
        let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
        OsRng.try_fill_bytes(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The token, for the `refresh_token` field of a token response.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token, by value.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// Whether `token` has the shape of a token this crate issues: 43 base64url
/// characters. Anything else is refused before it is hashed or looked up.
pub(super) fn well_formed(token: &str) -> bool {
    token.len() == REFRESH_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How a refresh token becomes the [`TokenHash`] a store sees.
#[derive(Clone)]
pub(super) enum Hasher {
    /// Plain SHA-256.
    Sha256,
    /// HMAC-SHA-256 under a server-side key.
    Hmac(Hmac<Sha256>),
}

impl Hasher {
    pub(super) fn hash(&self, token: &str) -> TokenHash {
        let bytes: [u8; 32] = match self {
            Self::Sha256 => Sha256::digest(token.as_bytes()).into(),
            Self::Hmac(mac) => {
                let mut mac = mac.clone();
                mac.update(token.as_bytes());
                mac.finalize().into_bytes().into()
            }
        };
        TokenHash::from_bytes(bytes)
    }
}

/// An access token and a refresh token, for one session.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// The short-lived access token (a JWT carrying `sid`).
    pub access_token: IssuedToken,
    /// The long random refresh token.
    pub refresh_token: RefreshToken,
    /// The session the pair belongs to (its id is the access token's `sid`).
    pub session: Session,
}

impl TokenPair {
    /// The OAuth 2.0 token response (RFC 6749 section 5.1): `token_type`
    /// `DPoP` for a session bound to a DPoP key (RFC 9449 section 5), else
    /// `bearer`.
    pub fn response(&self) -> TokenResponse {
        TokenResponse {
            access_token: self.access_token.as_str().to_owned(),
            token_type: if self.session.jkt.is_some() {
                "DPoP"
            } else {
                "bearer"
            },
            expires_in: self.access_token.expires_in().as_secs(),
            refresh_token: Some(self.refresh_token.as_str().to_owned()),
        }
    }

    /// The RFC 6749 section 5.1 response: 200 with the token JSON, `no-store`.
    pub fn to_response(&self) -> Response<String> {
        self.response().to_response()
    }
}

/// The body of a successful token response (RFC 6749 section 5.1).
#[derive(Clone, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// `bearer`, or `DPoP` for a DPoP-bound session.
    pub token_type: &'static str,
    /// The access token's lifetime in seconds.
    pub expires_in: u64,
    /// The new refresh token; `None` (and absent from the JSON) when it is
    /// delivered in an HttpOnly cookie instead, out of reach of scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    /// 200 with this body as JSON, `no-store`.
    pub(super) fn to_response(&self) -> Response<String> {
        let body = serde_json::to_string(self).expect("a token response serializes");
        oauth::json(StatusCode::OK, body)
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}
