//! Sessions: the record, its ids, and the check that ends access tokens
//! with them.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;

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
    /// The session id; access tokens carry it as `sid`.
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

/// A new session id: 128 random bits, base64url.
pub(super) fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
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
                    return Err(AuthError::rejected("the token has no session"));
                };
                let now = now();
                match tokens.store().session(&sid).await {
                    Ok(Some(session))
                        if session.is_live(now, tokens.idle_cutoff(now))
                            && payload.string_claim(StrClaim::Sub).as_deref()
                                == Some(session.user_id.as_str()) =>
                    {
                        Ok(())
                    }
                    Ok(_) => Err(AuthError::rejected("the session has ended")),
                    Err(error) => Err(AuthError::unavailable(error)),
                }
            })
        }
    }
}
