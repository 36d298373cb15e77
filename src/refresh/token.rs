//! What a client holds: the refresh token, the token pair and its response.
//! Also how a refresh token is made, checked for shape and hashed.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use http::{Response, StatusCode};
use rand::{TryRngCore, rngs::OsRng};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    Session, oauth,
    session::{SESSION_ID_BYTES, SESSION_ID_LEN, is_base64url},
    store::TokenHash,
};
use crate::IssuedToken;

/// Bytes of randomness in a refresh token: 256 bits.
const REFRESH_TOKEN_BYTES: usize = 32;
/// Bytes of a refresh token: its session id, then the random bytes.
const REFRESH_TOKEN_RAW: usize = SESSION_ID_BYTES + REFRESH_TOKEN_BYTES;
/// The length of an encoded refresh token: 48 bytes, base64url.
const REFRESH_TOKEN_LEN: usize = 64;

/// A refresh token as handed to the client. `Debug` hides it.
///
/// 64 base64url characters: the 16 bytes of its session id, then 32 random
/// bytes (256 secret bits). The session id is not a secret (access tokens
/// carry it as `sid`); it tells the store where the token lives (on Redis
/// Cluster, its hash slot) without a lookup. The store sees only the hash of
/// the whole token, and the session id.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    /// A new token of session `session_id` (made by
    /// [`Session::new_id`]): its 16 bytes, then 256 random bits, base64url.
    pub(super) fn generate(session_id: &str) -> Result<Self, GenerateError> {
        let mut bytes = [0u8; REFRESH_TOKEN_RAW];
        let id = URL_SAFE_NO_PAD
            .decode(session_id)
            .ok()
            .filter(|id| id.len() == SESSION_ID_BYTES && session_id.len() == SESSION_ID_LEN)
            .ok_or(GenerateError::SessionId)?;
        bytes[..SESSION_ID_BYTES].copy_from_slice(&id);
        OsRng
            .try_fill_bytes(&mut bytes[SESSION_ID_BYTES..])
            .map_err(GenerateError::Random)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The session id that `token` names, if `token` has the shape of a
    /// refresh token (64 base64url characters): what a store is handed
    /// with the token's hash.
    ///
    /// ```
    /// use tower_jwt_auth::refresh::RefreshToken;
    /// assert_eq!(RefreshToken::session_id_of("not a refresh token"), None);
    /// ```
    pub fn session_id_of(token: &str) -> Option<String> {
        session_of(token)
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

/// Why [`RefreshToken::generate`] made no token.
#[derive(Debug)]
pub(super) enum GenerateError {
    /// The session id is not 16 bytes in base64url (not made by `Session::new_id`).
    SessionId,
    /// The operating system's random source failed.
    Random(rand::rand_core::OsError),
}

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SessionId => f.write_str("the session id was not made by Session::new_id"),
            Self::Random(_) => f.write_str("no random bytes for a refresh token"),
        }
    }
}

impl std::error::Error for GenerateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::SessionId => None,
            Self::Random(error) => Some(error),
        }
    }
}

/// The session id that `token` names, if `token` has the shape of a token
/// this crate issues: 64 base64url characters. Anything else is refused
/// before it is hashed or looked up.
pub(super) fn session_of(token: &str) -> Option<String> {
    if token.len() != REFRESH_TOKEN_LEN || !is_base64url(token.as_bytes()) {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    (bytes.len() == REFRESH_TOKEN_RAW).then(|| URL_SAFE_NO_PAD.encode(&bytes[..SESSION_ID_BYTES]))
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

#[cfg(test)]
mod tests {
    use super::{RefreshToken, session_of};
    use crate::refresh::Session;

    #[test]
    fn a_token_names_its_session_and_carries_256_random_bits() {
        let id = Session::new_id("user-1");
        let a = RefreshToken::generate(&id).unwrap();
        let b = RefreshToken::generate(&id).unwrap();
        assert_eq!(a.as_str().len(), 64);
        assert_ne!(a, b);
        assert_eq!(session_of(a.as_str()).as_deref(), Some(id.as_str()));
        assert_eq!(session_of(b.as_str()).as_deref(), Some(id.as_str()));
        // The first 21 characters are the session id's (126 of its 128 bits).
        assert_eq!(a.as_str()[..21], id[..21]);
    }

    #[test]
    fn only_session_ids_of_new_id_make_tokens() {
        assert!(RefreshToken::generate("s-1").is_err());
        assert!(RefreshToken::generate(&"A".repeat(24)).is_err());
    }

    #[test]
    fn misshapen_tokens_name_no_session() {
        let token = RefreshToken::generate(&Session::new_id("u")).unwrap();
        let token = token.as_str();
        assert_eq!(session_of(&token[..63]), None, "too short");
        assert_eq!(session_of(&format!("{token}A")), None, "too long");
        assert_eq!(
            session_of(&format!("{}+", &token[..63])),
            None,
            "not base64url"
        );
        assert_eq!(session_of(&format!("{}=", &token[..63])), None, "padding");
        assert_eq!(
            session_of(&"A".repeat(43)),
            None,
            "the old 43-character shape"
        );
    }
}
