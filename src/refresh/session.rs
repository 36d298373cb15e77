//! Sessions: their ids, and the check that ends access tokens with them.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;

use super::{RefreshTokens, clock::now};
use crate::{AuthError, Claims, auth::CheckFuture};

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
        let store = Arc::clone(self.store());
        let idle = self.idle_secs();
        move |claims: &Claims<C>| {
            let store = Arc::clone(&store);
            let registered = claims.registered();
            let sid = registered.sid.clone();
            let sub = registered.sub.clone();
            Box::pin(async move {
                let Some(sid) = sid else {
                    return Err(AuthError::rejected("the token has no session"));
                };
                let now = now();
                match store.family(&sid).await {
                    Ok(Some(family))
                        if !family.revoked
                            && family.expires_at > now
                            && family.last_used_at >= now.saturating_sub(idle)
                            && sub.as_deref() == Some(family.user_id.as_str()) =>
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
