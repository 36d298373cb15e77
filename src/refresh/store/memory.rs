//! The embedded default store.

use std::{
    collections::{BTreeSet, HashMap},
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
/// atomic under any concurrency. Sessions are indexed by user, so listing or
/// revoking one user's sessions touches only theirs (at most the session cap
/// of [`RefreshTokensBuilder::max_sessions`](crate::refresh::RefreshTokensBuilder::max_sessions)
/// that are not revoked), never every user's. Call
/// [`purge`](RefreshStore::purge) now and then (or use
/// [`RefreshTokens::purge`](crate::refresh::RefreshTokens::purge)) to drop
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
    /// user id -> `(created_at, session id)` of their sessions that are not
    /// revoked, oldest first: `sessions`, `revoke_user` and the session cap.
    users: HashMap<String, BTreeSet<(i64, String)>>,
    /// token hash -> until: the retry permits of `allow_retry`.
    retry_permits: HashMap<TokenHash, i64>,
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

    /// Takes a session out of its user's index (it was revoked or deleted).
    fn unindex(&mut self, session: &Session) {
        if let Some(index) = self.users.get_mut(&session.user_id) {
            index.remove(&(session.created_at, session.id.clone()));
            if index.is_empty() {
                self.users.remove(&session.user_id);
            }
        }
    }

    /// Revokes a session; `Some(true)` if it was live until now, `None` if unknown.
    fn revoke(&mut self, id: &str) -> Option<bool> {
        let session = self.sessions.get_mut(id)?;
        if session.revoked {
            return Some(false);
        }
        session.revoked = true;
        let session = session.clone();
        self.unindex(&session);
        Some(true)
    }
}

/// What a rotation that goes ahead does (rules 4 to 6 of `rotate`).
enum Step {
    Rotate,
    Retry,
    Grace,
}

#[async_trait]
impl RefreshStore for MemoryStore {
    async fn create(
        &self,
        session: &Session,
        token: &TokenRecord,
        max_sessions: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut state = self.lock();
        if state.sessions.contains_key(&session.id) || state.tokens.contains_key(&token.hash) {
            return Err(StoreError::new("session or token already exists"));
        }
        state.sessions.insert(session.id.clone(), session.clone());
        state.insert_token(token.clone());
        if session.revoked {
            return Ok(Vec::new());
        }
        let index = state.users.entry(session.user_id.clone()).or_default();
        index.insert((session.created_at, session.id.clone()));
        // The oldest others beyond the cap; the new session always stays.
        let excess = index.len().saturating_sub(max_sessions as usize);
        let evicted: Vec<String> = index
            .iter()
            .map(|(_, id)| id)
            .filter(|id| **id != session.id)
            .take(excess)
            .cloned()
            .collect();
        for id in &evicted {
            state.revoke(id);
        }
        Ok(evicted)
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let mut state = self.lock();
        let Some(token) = state
            .tokens
            .get(&rotation.presented)
            .filter(|token| token.session_id == rotation.session_id)
            .cloned()
        else {
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
        let predecessor = token.generation + 1 == session.generation;
        let permit = state
            .retry_permits
            .get(&rotation.presented)
            .is_some_and(|until| *until >= rotation.now);
        let step = match token.status {
            // Only the newest generation rotates: an active sibling left
            // behind by a retry is stale once the session moved on.
            TokenStatus::Active if token.generation == session.generation => Step::Rotate,
            TokenStatus::Rotated(_) if permit && predecessor => Step::Retry,
            TokenStatus::Rotated(at)
                if rotation.grace_cutoff.is_some_and(|cutoff| at >= cutoff) && predecessor =>
            {
                Step::Grace
            }
            _ => {
                state.revoke(&token.session_id);
                let session = state.sessions.get(&token.session_id).expect("checked");
                return Ok(RotateOutcome::Reused(session.clone()));
            }
        };
        if state.tokens.contains_key(&rotation.child) {
            return Err(StoreError::new("the child token already exists"));
        }
        match step {
            Step::Rotate => {
                state
                    .tokens
                    .get_mut(&rotation.presented)
                    .expect("checked")
                    .status = TokenStatus::Rotated(rotation.now);
            }
            Step::Retry => {
                state.retry_permits.remove(&rotation.presented);
            }
            Step::Grace => {}
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
        Ok(match step {
            Step::Rotate => RotateOutcome::Rotated(session),
            Step::Retry => RotateOutcome::Retried(session),
            Step::Grace => RotateOutcome::Grace(session),
        })
    }

    async fn allow_retry(
        &self,
        session_id: &str,
        hash: &TokenHash,
        until: i64,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .tokens
            .get(hash)
            .is_some_and(|token| token.session_id == session_id)
        {
            state.retry_permits.insert(*hash, until);
        }
        Ok(())
    }

    async fn token(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self
            .lock()
            .tokens
            .get(hash)
            .filter(|token| token.session_id == session_id)
            .cloned())
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.lock().sessions.get(id).cloned())
    }

    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().revoke(id).is_some())
    }

    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let Some(index) = state.users.remove(user_id) else {
            return Ok(0);
        };
        for (_, id) in &index {
            if let Some(session) = state.sessions.get_mut(id) {
                session.revoked = true;
            }
        }
        Ok(index.len() as u64)
    }

    async fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        let state = self.lock();
        let Some(index) = state.users.get(user_id) else {
            return Ok(Vec::new());
        };
        // The index is in (created_at, id) order: oldest first.
        Ok(index
            .iter()
            .filter_map(|(_, id)| state.sessions.get(id))
            .filter(|session| session.expires_at > now)
            .cloned()
            .collect())
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
            if let Some(session) = state.sessions.remove(id) {
                state.unindex(&session);
            }
            for hash in state.session_tokens.remove(id).unwrap_or_default() {
                state.tokens.remove(&hash);
                state.retry_permits.remove(&hash);
            }
        }
        Ok(dead.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::{MemoryStore, RefreshStore, Session, TokenRecord, TokenStatus};
    use crate::refresh::store::TokenHash;

    async fn login(store: &MemoryStore, user: &str, id: &str, at: i64) {
        let session = Session {
            id: id.into(),
            user_id: user.into(),
            device: None,
            created_at: at,
            last_used_at: at,
            expires_at: at + 3600,
            generation: 0,
            revoked: false,
            auth_time: at,
            jkt: None,
        };
        let token = TokenRecord {
            hash: TokenHash::from_bytes(rand::random()),
            session_id: id.into(),
            parent: None,
            generation: 0,
            created_at: at,
            status: TokenStatus::Active,
        };
        store.create(&session, &token, 100).await.unwrap();
    }

    fn indexed(store: &MemoryStore, user: &str) -> Vec<String> {
        let state = store.lock();
        state
            .users
            .get(user)
            .map(|index| index.iter().map(|(_, id)| id.clone()).collect())
            .unwrap_or_default()
    }

    /// `sessions` and `revoke_user` read one user's index under the mutex,
    /// never every session: the index holds exactly the user's sessions
    /// that are not revoked, whatever revoked them.
    #[tokio::test]
    async fn users_index_holds_only_their_sessions_not_revoked() {
        let store = MemoryStore::new();
        login(&store, "a", "a1", 10).await;
        login(&store, "a", "a2", 20).await;
        login(&store, "a", "a3", 30).await;
        login(&store, "b", "b1", 10).await;
        assert_eq!(indexed(&store, "a"), ["a1", "a2", "a3"]);
        assert_eq!(indexed(&store, "b"), ["b1"]);

        store.revoke_session("a2").await.unwrap();
        assert_eq!(indexed(&store, "a"), ["a1", "a3"]);
        assert_eq!(store.revoke_user("a").await.unwrap(), 2);
        assert!(indexed(&store, "a").is_empty());
        assert!(
            !store.lock().users.contains_key("a"),
            "no empty index is kept"
        );
        assert_eq!(indexed(&store, "b"), ["b1"]);

        // Purged sessions leave the index too.
        assert_eq!(store.purge(10_000, 0).await.unwrap(), 4);
        assert!(store.lock().users.is_empty());
    }
}
