//! The embedded default store.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use async_trait::async_trait;

use super::{
    Family, InvalidReason, RefreshStore, RotateOutcome, Rotation, StoreError, TokenHash,
    TokenRecord, TokenStatus,
};

/// An in-memory [`RefreshStore`]: one process, nothing survives a restart.
///
/// Every operation takes one mutex for a few map lookups, so rotation is
/// atomic under any concurrency. Call [`purge`](RefreshStore::purge) now and
/// then (or use [`RefreshTokens::purge`](crate::refresh::RefreshTokens::purge)) to drop
/// dead families.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    families: HashMap<String, Family>,
    tokens: HashMap<TokenHash, TokenRecord>,
    /// family id -> hashes of its tokens, for purging.
    family_tokens: HashMap<String, Vec<TokenHash>>,
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
        self.family_tokens
            .entry(token.family_id.clone())
            .or_default()
            .push(token.hash);
        self.tokens.insert(token.hash, token);
    }
}

#[async_trait]
impl RefreshStore for MemoryStore {
    async fn create(&self, family: &Family, token: &TokenRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.families.contains_key(&family.id) || state.tokens.contains_key(&token.hash) {
            return Err(StoreError::new("family or token already exists"));
        }
        state.families.insert(family.id.clone(), family.clone());
        state.insert_token(token.clone());
        Ok(())
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let mut state = self.lock();
        let Some(token) = state.tokens.get(&rotation.presented).cloned() else {
            return Ok(RotateOutcome::Invalid(InvalidReason::Unknown));
        };
        let Some(family) = state.families.get(&token.family_id).cloned() else {
            return Ok(RotateOutcome::Invalid(InvalidReason::Unknown));
        };
        if family.revoked || token.status == TokenStatus::Revoked {
            return Ok(RotateOutcome::Invalid(InvalidReason::Revoked));
        }
        if family.expires_at <= rotation.now || family.last_used_at < rotation.idle_cutoff {
            return Ok(RotateOutcome::Invalid(InvalidReason::Expired));
        }
        let grace = match token.status {
            // Only the newest generation rotates: an active sibling left
            // behind by a grace retry is stale once the family moved on.
            TokenStatus::Active if token.generation == family.generation => false,
            TokenStatus::Rotated(at)
                if rotation.grace_cutoff.is_some_and(|cutoff| at >= cutoff)
                    && token.generation + 1 == family.generation =>
            {
                true
            }
            _ => {
                let family = state.families.get_mut(&token.family_id).expect("checked");
                family.revoked = true;
                return Ok(RotateOutcome::Reused(family.clone()));
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
        let child = TokenRecord::new(
            rotation.child,
            family.id.clone(),
            Some(rotation.presented),
            token.generation + 1,
            rotation.now,
            TokenStatus::Active,
        );
        state.insert_token(child);
        let family = state.families.get_mut(&token.family_id).expect("checked");
        family.generation = token.generation + 1;
        family.last_used_at = rotation.now;
        let family = family.clone();
        Ok(if grace {
            RotateOutcome::Grace(family)
        } else {
            RotateOutcome::Rotated(family)
        })
    }

    async fn token(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.lock().tokens.get(hash).cloned())
    }

    async fn family(&self, id: &str) -> Result<Option<Family>, StoreError> {
        Ok(self.lock().families.get(id).cloned())
    }

    async fn revoke_family(&self, id: &str) -> Result<bool, StoreError> {
        Ok(match self.lock().families.get_mut(id) {
            Some(family) => {
                family.revoked = true;
                true
            }
            None => false,
        })
    }

    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        let mut count = 0;
        for family in self.lock().families.values_mut() {
            if family.user_id == user_id && !family.revoked {
                family.revoked = true;
                count += 1;
            }
        }
        Ok(count)
    }

    async fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<Family>, StoreError> {
        let mut sessions: Vec<Family> = self
            .lock()
            .families
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
            .families
            .values()
            .filter(|f| f.expires_at <= now || (f.revoked && f.last_used_at < revoked_before))
            .map(|f| f.id.clone())
            .collect();
        for id in &dead {
            state.families.remove(id);
            for hash in state.family_tokens.remove(id).unwrap_or_default() {
                state.tokens.remove(&hash);
            }
        }
        Ok(dead.len() as u64)
    }
}
