//! Sessions: the record, its ids, and the check that ends access tokens
//! with them.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{RefreshTokens, clock::now};
use crate::{AuthError, Claims, auth::CheckFuture, claims::StrClaim};

/// One login on one device, and the refresh tokens rotated within it.
///
/// RFC 9700 calls the tokens of one login a refresh-token *family*; this
/// crate calls it a session throughout. Access tokens carry its
/// [`id`](Self::id) as `sid`.
///
/// A plain record: a store builds it with a struct literal when it reads one
/// back.
///
/// ```
/// use tower_jwt_auth::refresh::Session;
/// let session = Session {
///     id: "s-1".into(),
///     user_id: "user-1".into(),
///     device: Some("Firefox on Linux".into()),
///     created_at: 1_700_000_000,
///     last_used_at: 1_700_000_000,
///     expires_at: 1_702_592_000,
///     generation: 0,
///     revoked: false,
///     auth_time: 1_700_000_000,
///     jkt: None,
/// };
/// # let _ = session;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session id; access tokens carry it as `sid`, and refresh tokens
    /// name it too. Made by [`Session::new_id`]: 128 bits, base64url.
    pub id: String,
    /// The user the session belongs to.
    pub user_id: String,
    /// A label for the device, chosen at login ("Firefox on Linux").
    pub device: Option<String>,
    /// When the session was created (the login), in Unix seconds.
    pub created_at: i64,
    /// When a token of the session was last issued or rotated, in Unix seconds.
    pub last_used_at: i64,
    /// When the session dies whatever happens (the absolute lifetime), in Unix seconds.
    pub expires_at: i64,
    /// The generation of the newest token (the login's token is generation 0).
    pub generation: u32,
    /// Whether the session was revoked (logout, reuse detected).
    pub revoked: bool,
    /// When the user authenticated for this session, in Unix seconds: the
    /// login's time, kept by every rotation. Access tokens carry it as
    /// `auth_time`, so a refreshed token is never fresher than its login
    /// (RFC 9470 step-up checks).
    pub auth_time: i64,
    /// The DPoP key the session is bound to: the RFC 7638 thumbprint of the
    /// key whose proof came with the login (RFC 9449 section 5). Every
    /// refresh then needs a proof by that key, and access tokens carry it as
    /// `cnf.jkt`. `None` for an unbound session.
    pub jkt: Option<String>,
}

impl Session {
    /// Whether the session may still be used at `now`: it is not revoked, its
    /// absolute lifetime has not run out (`now < expires_at`), and it was last
    /// used at or after `idle_cutoff` (`now` minus the idle timeout).
    ///
    /// The one liveness rule: [`RefreshTokens::refresh`],
    /// [`RefreshTokens::sessions`] and [`RefreshTokens::session_check`] ask
    /// it, and a store's [`rotate`](super::store::RefreshStore::rotate)
    /// refuses exactly the sessions it calls dead (steps 2 and 3).
    ///
    /// ```
    /// # use tower_jwt_auth::refresh::Session;
    /// let session = Session {
    ///     id: "s-1".into(),
    ///     user_id: "user-1".into(),
    ///     device: None,
    ///     created_at: 1_000,
    ///     last_used_at: 1_500,
    ///     expires_at: 5_000,
    ///     generation: 3,
    ///     revoked: false,
    ///     auth_time: 1_000,
    ///     jkt: None,
    /// };
    /// let idle = 600; // seconds
    /// assert!(session.is_live(2_000, 2_000 - idle));
    /// assert!(!session.is_live(2_200, 2_200 - idle), "idle for too long");
    /// assert!(!session.is_live(5_000, 0), "past its absolute lifetime");
    /// ```
    pub fn is_live(&self, now: i64, idle_cutoff: i64) -> bool {
        !self.revoked && now < self.expires_at && self.last_used_at >= idle_cutoff
    }
}

/// Whether every byte is of the URL-safe base64 alphabet (RFC 4648
/// section 5): what refresh tokens, session ids and their announcements are
/// checked against before anything else is done with them.
pub(crate) fn is_base64url(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Bytes in a session id.
pub(super) const SESSION_ID_BYTES: usize = 16;
/// Characters of a session id, base64url without padding.
pub(super) const SESSION_ID_LEN: usize = 22;
/// Characters of a session id's [user tag](user_tag): 12 bits.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) const USER_TAG_LEN: usize = 2;

/// The tag that every session id of `user_id` starts with: the first 12
/// bits of SHA-256 of the user id, as two base64url characters (4096 tags).
///
/// It lets a store keep all of one user's sessions together without a
/// lookup: the Redis store uses it as the hash tag of every key of the user
/// and their sessions, so on Redis Cluster a user's sessions, their tokens
/// and the user's index share one hash slot.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn user_tag(user_id: &str) -> String {
    let digest = Sha256::digest(user_id.as_bytes());
    let mut tag = URL_SAFE_NO_PAD.encode(&digest[..3]);
    tag.truncate(USER_TAG_LEN);
    tag
}

impl Session {
    /// A new session id for a session of `user_id`: 128 bits, base64url (22
    /// characters); the first 12 bits are the user's tag (SHA-256 of the
    /// user id), the other 116 random.
    ///
    /// [`RefreshTokens`] makes every session id with it. The tag lets a
    /// store keep all of a user's sessions in one place without a lookup
    /// (the Redis store's hash slot on Redis Cluster), and says nothing the
    /// access token's `sub` does not. Build sessions with it when you create
    /// them yourself (tests, imports): the Redis store refuses ids made
    /// otherwise.
    ///
    /// ```
    /// use tower_jwt_auth::refresh::Session;
    /// let a = Session::new_id("user-1");
    /// let b = Session::new_id("user-1");
    /// assert_eq!(a.len(), 22);
    /// assert_ne!(a, b);
    /// assert_eq!(a[..2], b[..2], "one user, one tag");
    /// ```
    pub fn new_id(user_id: &str) -> String {
        let mut bytes = [0u8; SESSION_ID_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let digest = Sha256::digest(user_id.as_bytes());
        bytes[0] = digest[0];
        bytes[1] = (digest[1] & 0xf0) | (bytes[1] & 0x0f);
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

impl RefreshTokens {
    /// A check for [`JwtAuthLayerBuilder::check`](crate::JwtAuthLayerBuilder::check)
    /// that rejects access tokens whose session (`sid`) was revoked or has
    /// expired (absolute or idle), or belongs to another user than the token's
    /// `sub`, so logout takes effect before the access token expires. It
    /// costs one store lookup per request; a token without `sid` is rejected.
    pub fn session_check<C>(&self) -> impl Fn(&Claims<C>) -> CheckFuture + Send + Sync + 'static {
        let tokens = self.clone();
        move |claims: &Claims<C>| {
            let tokens = tokens.clone();
            // The payload by reference count: `sid` and `sub` are read where
            // the verifier found them, not parsed or copied.
            let payload = claims.payload().clone();
            Box::pin(async move {
                let Some(sid) = payload.string_claim(StrClaim::Sid) else {
                    return Err(no_session());
                };
                let sub = payload.string_claim(StrClaim::Sub);
                tokens.check_session(&sid, sub.as_deref()).await
            })
        }
    }

    /// The store lookup of [`session_check`](Self::session_check): session
    /// `sid` is live and belongs to `sub`.
    pub(super) async fn check_session(
        &self,
        sid: &str,
        sub: Option<&str>,
    ) -> Result<(), AuthError> {
        let now = now();
        match self.store().session(sid).await {
            Ok(Some(session))
                if session.is_live(now, self.idle_cutoff(now))
                    && sub == Some(session.user_id.as_str()) =>
            {
                Ok(())
            }
            Ok(_) => Err(ended()),
            Err(error) => Err(AuthError::unavailable(error)),
        }
    }
}

/// The rejection of an access token without `sid`.
pub(super) fn no_session() -> AuthError {
    AuthError::rejected("the token has no session")
}

/// The rejection of an access token whose session has ended.
pub(super) fn ended() -> AuthError {
    AuthError::rejected("the session has ended")
}

#[cfg(test)]
mod tests {
    use super::{SESSION_ID_LEN, Session, USER_TAG_LEN, user_tag};

    #[test]
    fn a_session_id_starts_with_its_users_tag() {
        for user in ["user-1", "", "ünïcode", &"x".repeat(1000)] {
            let id = Session::new_id(user);
            assert_eq!(id.len(), SESSION_ID_LEN);
            assert_eq!(&id[..USER_TAG_LEN], user_tag(user));
        }
        assert_ne!(user_tag("user-1"), user_tag("user-2"));
    }
}
