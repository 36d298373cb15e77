//! The embedded default store.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use async_trait::async_trait;

use super::{
    InvalidReason, RefreshStore, RotateOutcome, Rotation, Session, StoreError, TokenHash,
    TokenRecord, TokenStatus,
};

/// An in-memory [`RefreshStore`]: one process, nothing survives a restart.
///
/// Every operation takes one mutex for a few map lookups, so rotation is
/// atomic under any concurrency. Call [`purge`](RefreshStore::purge) now and
/// then (or use [`RefreshTokens::purge`](crate::refresh::RefreshTokens::purge)) to drop
/// dead sessions.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, Session>,
    tokens: HashMap<TokenHash, TokenRecord>,
    /// session id -> hashes of its tokens, for purging.
    session_tokens: HashMap<String, Vec<TokenHash>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-done rotation
        // (every step below writes after all its checks), so keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every token hash the store holds (for tests that prove no raw token is stored).
    pub fn token_hashes(&self) -> Vec<TokenHash> {
        self.lock().tokens.keys().copied().collect()
    }
}

impl State {
    fn insert_token(&mut self, token: TokenRecord) {
        self.session_tokens
            .entry(token.session_id.clone())
            .or_default()
            .push(token.hash);
        self.tokens.insert(token.hash, token);
    }
}

#[async_trait]
impl RefreshStore for MemoryStore {
    async fn create(&self, session: &Session, token: &TokenRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.sessions.contains_key(&session.id) || state.tokens.contains_key(&token.hash) {
            return Err(StoreError::new("session or token already exists"));
        }
        state.sessions.insert(session.id.clone(), session.clone());
        state.insert_token(token.clone());
        Ok(())
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let mut state = self.lock();
        let Some(token) = state.tokens.get(&rotation.presented).cloned() else {
            return Ok(RotateOutcome::Invalid(InvalidReason::Unknown));
        };
        let Some(session) = state.sessions.get(&token.session_id).cloned() else {
            return Ok(RotateOutcome::Invalid(InvalidReason::Unknown));
        };
        if session.revoked || token.status == TokenStatus::Revoked {
            return Ok(RotateOutcome::Invalid(InvalidReason::Revoked));
        }
        // Not revoked (above), so not live means expired.
        if !session.is_live(rotation.now, rotation.idle_cutoff) {
            return Ok(RotateOutcome::Invalid(InvalidReason::Expired));
        }
        let grace = match token.status {
            // Only the newest generation rotates: an active sibling left
            // behind by a grace retry is stale once the session moved on.
            TokenStatus::Active if token.generation == session.generation => false,
            TokenStatus::Rotated(at)
                if rotation.grace_cutoff.is_some_and(|cutoff| at >= cutoff)
                    && token.generation + 1 == session.generation =>
            {
                true
            }
            _ => {
                let session = state.sessions.get_mut(&token.session_id).expect("checked");
                session.revoked = true;
                return Ok(RotateOutcome::Reused(session.clone()));
            }
        };
        if state.tokens.contains_key(&rotation.child) {
            return Err(StoreError::new("the child token already exists"));
        }
        if !grace {
            state
                .tokens
                .get_mut(&rotation.presented)
                .expect("checked")
                .status = TokenStatus::Rotated(rotation.now);
        }
        let child = TokenRecord {
            hash: rotation.child,
            session_id: session.id.clone(),
            parent: Some(rotation.presented),
            generation: token.generation + 1,
            created_at: rotation.now,
            status: TokenStatus::Active,
        };
        state.insert_token(child);
        let session = state.sessions.get_mut(&token.session_id).expect("checked");
        session.generation = token.generation + 1;
        session.last_used_at = rotation.now;
        let session = session.clone();
        Ok(if grace {
            RotateOutcome::Grace(session)
        } else {
            RotateOutcome::Rotated(session)
        })
    }

    async fn token(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.lock().tokens.get(hash).cloned())
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.lock().sessions.get(id).cloned())
    }

    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(match self.lock().sessions.get_mut(id) {
            Some(session) => {
                session.revoked = true;
                true
            }
            None => false,
        })
    }

    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        let mut count = 0;
        for session in self.lock().sessions.values_mut() {
            if session.user_id == user_id && !session.revoked {
                session.revoked = true;
                count += 1;
            }
        }
        Ok(count)
    }

    async fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        let mut sessions: Vec<Session> = self
            .lock()
            .sessions
            .values()
            .filter(|f| f.user_id == user_id && !f.revoked && f.expires_at > now)
            .cloned()
            .collect();
        sessions.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(sessions)
    }

    async fn purge(&self, now: i64, revoked_before: i64) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let dead: Vec<String> = state
            .sessions
            .values()
            .filter(|f| f.expires_at <= now || (f.revoked && f.last_used_at < revoked_before))
            .map(|f| f.id.clone())
            .collect();
        for id in &dead {
            state.sessions.remove(id);
            for hash in state.session_tokens.remove(id).unwrap_or_default() {
                state.tokens.remove(&hash);
            }
        }
        Ok(dead.len() as u64)
    }
}
