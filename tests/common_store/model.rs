//! A model of the `RefreshStore` contract, and a property test that runs a
//! store against it over random sequences of create / rotate / reuse /
//! logout / expire.
//!
//! The model is the algorithm written on `RefreshStore::rotate`, step by
//! step, over two plain maps: every outcome, and afterwards every session
//! and token the sequence touched, must be the same in the store.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use proptest::{
    collection,
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use tower_jwt_auth::refresh::{
    Session,
    store::{
        InvalidReason, RefreshStore, RotateOutcome, Rotation, TokenHash, TokenRecord, TokenStatus,
    },
};

/// The idle timeout of the modelled configuration, in seconds.
const IDLE: i64 = 300;
/// Its grace window, in seconds.
const GRACE: i64 = 10;
/// Users per sequence.
const USERS: u8 = 3;

/// The contract of `RefreshStore`, as plain data.
#[derive(Debug, Default)]
pub struct Model {
    sessions: BTreeMap<String, Session>,
    tokens: HashMap<TokenHash, TokenRecord>,
}

impl Model {
    pub fn create(&mut self, session: &Session, token: &TokenRecord) {
        self.sessions.insert(session.id.clone(), session.clone());
        self.tokens.insert(token.hash, token.clone());
    }

    /// `RefreshStore::rotate`, steps 1 to 6 of its documentation.
    pub fn rotate(&mut self, r: &Rotation) -> RotateOutcome {
        // 1. No token (or no session): unknown.
        // A token presented with another session's id is unknown too.
        let Some(t) = self
            .tokens
            .get(&r.presented)
            .filter(|t| t.session_id == r.session_id)
            .cloned()
        else {
            return RotateOutcome::Invalid(InvalidReason::Unknown);
        };
        let Some(s) = self.sessions.get(&t.session_id).cloned() else {
            return RotateOutcome::Invalid(InvalidReason::Unknown);
        };
        // 2. Revoked.
        if s.revoked || t.status == TokenStatus::Revoked {
            return RotateOutcome::Invalid(InvalidReason::Revoked);
        }
        // 3. Expired, absolutely or idle.
        if s.expires_at <= r.now || s.last_used_at < r.idle_cutoff {
            return RotateOutcome::Invalid(InvalidReason::Expired);
        }
        let child = TokenRecord {
            hash: r.child,
            session_id: s.id.clone(),
            parent: Some(t.hash),
            generation: t.generation + 1,
            created_at: r.now,
            status: TokenStatus::Active,
        };
        // 4. The newest active token rotates.
        if t.status == TokenStatus::Active && t.generation == s.generation {
            self.tokens.get_mut(&t.hash).unwrap().status = TokenStatus::Rotated(r.now);
            self.tokens.insert(child.hash, child);
            let s = self.sessions.get_mut(&t.session_id).unwrap();
            s.generation = t.generation + 1;
            s.last_used_at = r.now;
            return RotateOutcome::Rotated(s.clone());
        }
        // 5. The immediate predecessor, within the grace window: a sibling.
        if let (TokenStatus::Rotated(at), Some(cutoff)) = (t.status, r.grace_cutoff)
            && at >= cutoff
            && t.generation + 1 == s.generation
        {
            self.tokens.insert(child.hash, child);
            let s = self.sessions.get_mut(&t.session_id).unwrap();
            s.last_used_at = r.now;
            return RotateOutcome::Grace(s.clone());
        }
        // 6. Reuse: the session is revoked.
        let s = self.sessions.get_mut(&t.session_id).unwrap();
        s.revoked = true;
        RotateOutcome::Reused(s.clone())
    }

    pub fn revoke_session(&mut self, id: &str) -> bool {
        match self.sessions.get_mut(id) {
            Some(s) => {
                s.revoked = true;
                true
            }
            None => false,
        }
    }

    pub fn revoke_user(&mut self, user: &str) -> u64 {
        let mut count = 0;
        for s in self.sessions.values_mut() {
            if s.user_id == user && !s.revoked {
                s.revoked = true;
                count += 1;
            }
        }
        count
    }

    pub fn sessions(&self, user: &str, now: i64) -> Vec<Session> {
        let mut live: Vec<Session> = self
            .sessions
            .values()
            .filter(|s| s.user_id == user && !s.revoked && s.expires_at > now)
            .cloned()
            .collect();
        live.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        live
    }

    pub fn purge(&mut self, now: i64, revoked_before: i64) -> u64 {
        let dead: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.expires_at <= now || (s.revoked && s.last_used_at < revoked_before))
            .map(|s| s.id.clone())
            .collect();
        for id in &dead {
            self.sessions.remove(id);
        }
        self.tokens
            .retain(|_, t| self.sessions.contains_key(&t.session_id));
        dead.len() as u64
    }

    /// The newest token of the `index`-th session (in creation order),
    /// whatever its state.
    fn newest_of(&self, order: &[String], index: usize) -> Option<TokenHash> {
        let id = order.get(index % order.len().max(1))?;
        self.tokens
            .values()
            .filter(|t| &t.session_id == id)
            .max_by_key(|t| (t.generation, t.created_at, t.hash))
            .map(|t| t.hash)
    }
}

/// One step of a sequence. Indexes pick among what exists so far.
#[derive(Debug, Clone)]
pub enum Op {
    /// A login: a new session of a user, with its first token.
    Create { user: u8, lifetime: i64 },
    /// Rotate the newest token of a session.
    Rotate {
        session: usize,
        wait: i64,
        grace: bool,
    },
    /// Present the parent (or the grandparent) of a session's newest token:
    /// the client's retry after a lost response (grace when the parent is
    /// within the window, else reuse).
    Retry {
        session: usize,
        grandparent: bool,
        wait: i64,
        grace: bool,
    },
    /// Present any token issued so far: reuse when it was rotated, a grace
    /// retry when recent enough.
    Present {
        token: usize,
        wait: i64,
        grace: bool,
    },
    /// Present a token no store has.
    Unknown,
    /// Logout on one device.
    Logout { session: usize },
    /// Logout everywhere.
    LogoutUser { user: u8 },
    /// Time passes: sessions go idle or reach their lifetime.
    Wait { secs: i64 },
    /// Time passes to one second around an edge of a session (the end of
    /// its lifetime, or of its idle timeout; never backwards), where its
    /// newest token is presented.
    Edge {
        session: usize,
        idle: bool,
        delta: i64,
    },
    /// Purge dead sessions (stores whose data is this test's own only).
    Purge { revoked_age: i64 },
}

/// A random step; `purge` allows [`Op::Purge`].
pub fn op(purge: bool) -> BoxedStrategy<Op> {
    // Short waits, biased to the edges of the grace window.
    let wait = || prop_oneof![0i64..3, GRACE - 1..GRACE + 2, 0i64..30];
    let steps = prop_oneof![
        // Sessions that outlive the idle timeout, and some that do not.
        3 => (0..USERS, prop_oneof![600i64..7200, 1..IDLE])
            .prop_map(|(user, lifetime)| Op::Create { user, lifetime }),
        6 => (any::<usize>(), wait(), any::<bool>())
            .prop_map(|(session, wait, grace)| Op::Rotate { session, wait, grace }),
        3 => (any::<usize>(), any::<bool>(), wait(), any::<bool>()).prop_map(
            |(session, grandparent, wait, grace)| Op::Retry { session, grandparent, wait, grace }
        ),
        3 => (any::<usize>(), wait(), any::<bool>())
            .prop_map(|(token, wait, grace)| Op::Present { token, wait, grace }),
        1 => Just(Op::Unknown),
        1 => any::<usize>().prop_map(|session| Op::Logout { session }),
        1 => (0..USERS).prop_map(|user| Op::LogoutUser { user }),
        2 => prop_oneof![0i64..60, IDLE - 30..IDLE + 30, 3000i64..8000]
            .prop_map(|secs| Op::Wait { secs }),
        2 => (any::<usize>(), any::<bool>(), -1i64..=1)
            .prop_map(|(session, idle, delta)| Op::Edge { session, idle, delta }),
    ];
    if purge {
        prop_oneof![
            18 => steps,
            1 => (0i64..600).prop_map(|revoked_age| Op::Purge { revoked_age }),
        ]
        .boxed()
    } else {
        steps.boxed()
    }
}

fn random_hash() -> TokenHash {
    TokenHash::from_bytes(rand::random())
}

/// Runs `ops` against `store` and the model, comparing every outcome and,
/// after each step, every session and token issued so far. Ids are fresh
/// (`run` is unique per case), so a shared database is fine; times start at
/// the real clock (a store may expire its keys by it).
pub async fn run(store: &dyn RefreshStore, ops: &[Op]) -> Result<(), TestCaseError> {
    let run = format!("m{:016x}", rand::random::<u64>());
    let user = |u: u8| format!("{run}-user-{u}");
    let mut model = Model::default();
    let mut now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut order: Vec<String> = Vec::new();
    let mut issued: Vec<TokenHash> = Vec::new();
    // The session each issued token names (a refresh token carries it).
    let mut owner: std::collections::HashMap<TokenHash, String> = Default::default();
    let rotation = |session_id: &str, presented: TokenHash, now: i64, grace: bool| Rotation {
        session_id: session_id.to_owned(),
        presented,
        child: random_hash(),
        now,
        idle_cutoff: now - IDLE,
        grace_cutoff: grace.then_some(now - GRACE),
    };
    for (step, op) in ops.iter().enumerate() {
        let context = || format!("step {step}: {op:?}");
        match *op {
            Op::Create { user: u, lifetime } => {
                let session = Session {
                    id: Session::new_id(&user(u)),
                    user_id: user(u),
                    device: (u % 2 == 0).then(|| "model device".to_owned()),
                    created_at: now,
                    last_used_at: now,
                    expires_at: now + lifetime,
                    generation: 0,
                    revoked: false,
                    auth_time: now,
                    jkt: None,
                };
                let token = TokenRecord {
                    hash: random_hash(),
                    session_id: session.id.clone(),
                    parent: None,
                    generation: 0,
                    created_at: now,
                    status: TokenStatus::Active,
                };
                // No session cap here (the conformance suite checks the
                // cap): nothing may be evicted.
                let evicted = store
                    .create(&session, &token, u32::MAX)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("{}: {e}", context())))?;
                prop_assert!(evicted.is_empty(), "{}: evicted {evicted:?}", context());
                model.create(&session, &token);
                order.push(session.id);
                owner.insert(token.hash, token.session_id.clone());
                issued.push(token.hash);
            }
            Op::Rotate {
                session,
                wait,
                grace,
            } => {
                let Some(presented) = model.newest_of(&order, session) else {
                    continue;
                };
                now += wait;
                let r = rotation(&owner[&presented], presented, now, grace);
                let expected = model.rotate(&r);
                let got = store
                    .rotate(&r)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&got, &expected, "{}", context());
                if model.tokens.contains_key(&r.child) {
                    owner.insert(r.child, r.session_id.clone());
                    issued.push(r.child);
                }
            }
            Op::Retry {
                session,
                grandparent,
                wait,
                grace,
            } => {
                let parent_of = |hash: TokenHash| model.tokens[&hash].parent;
                let Some(parent) = model
                    .newest_of(&order, session)
                    .and_then(parent_of)
                    .and_then(|p| if grandparent { parent_of(p) } else { Some(p) })
                else {
                    continue;
                };
                now += wait;
                let r = rotation(&owner[&parent], parent, now, grace);
                let expected = model.rotate(&r);
                let got = store
                    .rotate(&r)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&got, &expected, "{}", context());
                if model.tokens.contains_key(&r.child) {
                    owner.insert(r.child, r.session_id.clone());
                    issued.push(r.child);
                }
            }
            Op::Present { token, wait, grace } => {
                if issued.is_empty() {
                    continue;
                }
                let presented = issued[token % issued.len()];
                now += wait;
                let r = rotation(&owner[&presented], presented, now, grace);
                let expected = model.rotate(&r);
                let got = store
                    .rotate(&r)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&got, &expected, "{}", context());
                if model.tokens.contains_key(&r.child) {
                    owner.insert(r.child, r.session_id.clone());
                    issued.push(r.child);
                }
            }
            Op::Unknown => {
                let any = order.first().map_or("no-session", String::as_str);
                let r = rotation(any, random_hash(), now, true);
                let got = store
                    .rotate(&r)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(got, model.rotate(&r), "{}", context());
            }
            Op::Logout { session } => {
                let id = order
                    .get(session % order.len().max(1))
                    .cloned()
                    .unwrap_or_else(|| format!("{run}-none"));
                let got = store
                    .revoke_session(&id)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(got, model.revoke_session(&id), "{}", context());
            }
            Op::LogoutUser { user: u } => {
                let got = store
                    .revoke_user(&user(u))
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(got, model.revoke_user(&user(u)), "{}", context());
            }
            Op::Wait { secs } => now += secs,
            Op::Edge {
                session,
                idle,
                delta,
            } => {
                let Some(s) = order
                    .get(session % order.len().max(1))
                    .and_then(|id| model.sessions.get(id))
                else {
                    continue;
                };
                let edge = if idle {
                    s.last_used_at + IDLE
                } else {
                    s.expires_at
                };
                now = now.max(edge + delta);
                let presented = model
                    .newest_of(&order, session)
                    .expect("a session has tokens");
                let r = rotation(&owner[&presented], presented, now, false);
                let expected = model.rotate(&r);
                let got = store
                    .rotate(&r)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&got, &expected, "{}", context());
                if model.tokens.contains_key(&r.child) {
                    owner.insert(r.child, r.session_id.clone());
                    issued.push(r.child);
                }
            }
            Op::Purge { revoked_age } => {
                let got = store
                    .purge(now, now - revoked_age)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(got, model.purge(now, now - revoked_age), "{}", context());
            }
        }
        // Everything issued so far reads back as the model has it.
        for id in &order {
            let got = store
                .session(id)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(
                got.as_ref(),
                model.sessions.get(id),
                "session {} after {}",
                id,
                context()
            );
        }
        for hash in &issued {
            let got = store
                .token(&owner[hash], hash)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(
                got.as_ref(),
                model.tokens.get(hash),
                "token after {}",
                context()
            );
        }
        for u in 0..USERS {
            let got = store
                .sessions(&user(u), now)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(
                got,
                model.sessions(&user(u), now),
                "sessions after {}",
                context()
            );
        }
    }
    Ok(())
}

/// Runs `cases` random sequences of up to `max_ops` steps, each against a
/// store from `make`, on `runtime`. `own` says each store's data is this
/// test's alone (a memory store, a Redis prefix per case): then sequences
/// purge too, and each case ends by purging everything it left. A shared
/// database (PostgreSQL) is never purged here: other tests' rows live there.
pub fn check<F>(runtime: &tokio::runtime::Runtime, cases: u32, max_ops: usize, own: bool, make: F)
where
    F: Fn() -> Arc<dyn RefreshStore>,
{
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&collection::vec(op(own), 1..max_ops), |ops| {
        let store = make();
        let result = runtime.block_on(run(&*store, &ops));
        if own {
            let far = i64::MAX / 4;
            runtime
                .block_on(store.purge(far, far))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        result
    });
    if let Err(error) = result {
        panic!("the store departs from the model: {error}");
    }
}
