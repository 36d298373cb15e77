//! A conformance suite for [`RefreshStore`] implementations (feature `test-util`).
//!
//! Run it against your store with one call, from a multi-threaded Tokio test:
//!
//! ```
//! use std::sync::Arc;
//! use tower_jwt_auth::refresh::{MemoryStore, conformance};
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! async fn my_store_conforms() {
//!     conformance::run(Arc::new(MemoryStore::new())).await;
//! }
//! # fn main() {}
//! ```
//!
//! Every check uses fresh random user and session ids, so the suite can run
//! against a shared database. A failed check panics with what went wrong.

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use async_trait::async_trait;

use super::{
    RefreshErrorKind, RefreshTokens, Session, Subject,
    clock::now,
    store::{
        InvalidReason, RefreshStore, RotateOutcome, Rotation, StoreError, TokenHash, TokenRecord,
        TokenStatus,
    },
};
use crate::{Algorithm, SigningKey, TokenIssuer, VerificationKey, Verifier, dpop::DpopProof};

/// How many concurrent rotations of one token [`race`] starts.
pub const RACE_WIDTH: usize = 32;

/// The session cap the checks create sessions with, except [`session_cap`]:
/// high enough never to evict.
const NO_CAP: u32 = 1_000;

/// Runs every check against `store`.
pub async fn run(store: Arc<dyn RefreshStore>) {
    rotation(&*store).await;
    reuse_revokes_session(&*store).await;
    grace_window(&*store).await;
    retry_after_a_lost_answer(&*store).await;
    lifetimes(&*store).await;
    unknown_token(&*store).await;
    wrong_session(&*store).await;
    revocation_and_sessions(&*store).await;
    session_cap(&*store).await;
    purge(&*store).await;
    hash_only(Arc::clone(&store)).await;
    lost_answer_through_refresh_tokens(Arc::clone(&store)).await;
    bound_sessions(Arc::clone(&store)).await;
    race(store).await;
}

/// A fresh random string, for user ids.
fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn hash() -> TokenHash {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    TokenHash::from_bytes(bytes)
}

/// A new session of a new user with its first token, created in `store`.
async fn new_session(store: &dyn RefreshStore, now: i64, lifetime: i64) -> (Session, TokenHash) {
    let user_id = format!("user-{}", random_id());
    let session = Session {
        id: Session::new_id(&user_id),
        user_id,
        device: Some("conformance device".to_owned()),
        created_at: now,
        last_used_at: now,
        expires_at: now + lifetime,
        generation: 0,
        revoked: false,
        auth_time: now - 30,
        jkt: None,
    };
    let token = hash();
    let record = TokenRecord {
        hash: token,
        session_id: session.id.clone(),
        parent: None,
        generation: 0,
        created_at: now,
        status: TokenStatus::Active,
    };
    let evicted = store
        .create(&session, &record, NO_CAP)
        .await
        .expect("create a session");
    assert!(evicted.is_empty(), "a new user's session evicts nothing");
    (session, token)
}

async fn rotate(store: &dyn RefreshStore, rotation: &Rotation) -> RotateOutcome {
    store.rotate(rotation).await.expect("rotate")
}

fn plain(session: &Session, presented: TokenHash, child: TokenHash, now: i64) -> Rotation {
    Rotation {
        session_id: session.id.clone(),
        presented,
        child,
        now,
        idle_cutoff: now - 3600,
        grace_cutoff: None,
    }
}

/// An active token rotates: parent rotated, child active, session advanced.
pub async fn rotation(store: &dyn RefreshStore) {
    let t0 = now();
    let (created, r0) = new_session(store, t0, 3600).await;
    let r1 = hash();
    let RotateOutcome::Rotated(f) = rotate(store, &plain(&created, r0, r1, t0 + 5)).await else {
        panic!("an active token must rotate");
    };
    assert_eq!(f.id, created.id);
    assert_eq!(f.user_id, created.user_id);
    assert_eq!(f.device, created.device);
    assert_eq!(f.generation, 1, "the session's generation advances");
    assert_eq!(f.last_used_at, t0 + 5, "last_used_at is the rotation time");
    assert_eq!(f.created_at, t0);
    assert!(!f.revoked);

    let (token, session) = store
        .lookup(&created.id, &r1)
        .await
        .unwrap()
        .expect("lookup finds the child");
    assert_eq!(
        Some(token),
        store.token(&created.id, &r1).await.unwrap(),
        "lookup = token"
    );
    assert_eq!(session, f, "lookup = session");
    assert_eq!(
        store.lookup(&created.id, &hash()).await.unwrap(),
        None,
        "lookup of an unknown hash"
    );

    let parent = store
        .token(&created.id, &r0)
        .await
        .unwrap()
        .expect("the parent is kept");
    assert_eq!(parent.status, TokenStatus::Rotated(t0 + 5));
    let child = store
        .token(&created.id, &r1)
        .await
        .unwrap()
        .expect("the child is stored");
    assert_eq!(child.status, TokenStatus::Active);
    assert_eq!(child.parent, Some(r0));
    assert_eq!(child.generation, 1);
    assert_eq!(child.session_id, created.id);
    assert_eq!(child.created_at, t0 + 5);

    let r2 = hash();
    assert!(
        matches!(rotate(store, &plain(&created, r1, r2, t0 + 6)).await, RotateOutcome::Rotated(f) if f.generation == 2),
        "the child rotates in turn"
    );
}

/// A rotated token presented again revokes the session, newest token included.
pub async fn reuse_revokes_session(store: &dyn RefreshStore) {
    let t0 = now();
    let (created, r0) = new_session(store, t0, 3600).await;
    let r1 = hash();
    assert!(matches!(
        rotate(store, &plain(&created, r0, r1, t0)).await,
        RotateOutcome::Rotated(_)
    ));
    let outcome = rotate(store, &plain(&created, r0, hash(), t0 + 1)).await;
    assert!(
        matches!(&outcome, RotateOutcome::Reused(f) if f.id == created.id && f.revoked),
        "reuse must revoke the session, got {outcome:?}"
    );
    assert!(store.session(&created.id).await.unwrap().unwrap().revoked);
    assert_eq!(
        rotate(store, &plain(&created, r1, hash(), t0 + 2)).await,
        RotateOutcome::Invalid(InvalidReason::Revoked),
        "the newest token dies with its session"
    );
    assert_eq!(
        rotate(store, &plain(&created, r0, hash(), t0 + 3)).await,
        RotateOutcome::Invalid(InvalidReason::Revoked),
        "a revoked session stays revoked"
    );
}

/// Grace: only the immediate predecessor, only within the window.
pub async fn grace_window(store: &dyn RefreshStore) {
    let t0 = now();
    let grace = |session: &Session, at: i64| Rotation {
        session_id: session.id.clone(),
        presented: hash(),
        child: hash(),
        now: at,
        idle_cutoff: at - 3600,
        grace_cutoff: Some(at - 10),
    };

    // Within the window: a sibling, the session intact.
    let (created, r0) = new_session(store, t0, 3600).await;
    let r1 = hash();
    assert!(matches!(
        rotate(store, &plain(&created, r0, r1, t0)).await,
        RotateOutcome::Rotated(_)
    ));
    let sibling = hash();
    let mut retry = grace(&created, t0 + 5);
    retry.presented = r0;
    retry.child = sibling;
    let outcome = rotate(store, &retry).await;
    assert!(
        matches!(&outcome, RotateOutcome::Grace(f) if f.id == created.id && !f.revoked && f.generation == 1),
        "a retry within the window gets a sibling, got {outcome:?}"
    );
    let record = store
        .token(&created.id, &sibling)
        .await
        .unwrap()
        .expect("the sibling is stored");
    assert_eq!(
        (record.status, record.generation, record.parent),
        (TokenStatus::Active, 1, Some(r0))
    );
    assert_eq!(
        store.token(&created.id, &r1).await.unwrap().unwrap().status,
        TokenStatus::Active,
        "the first child stays valid"
    );
    // Once one sibling rotates, the other is stale: presenting it is reuse
    // (else a thief holding one sibling could refresh forever beside the owner).
    assert!(matches!(
        rotate(store, &plain(&created, r1, hash(), t0 + 6)).await,
        RotateOutcome::Rotated(f) if f.generation == 2
    ));
    let outcome = rotate(store, &plain(&created, sibling, hash(), t0 + 7)).await;
    assert!(
        matches!(&outcome, RotateOutcome::Reused(f) if f.id == created.id && f.revoked),
        "a stale sibling must be reuse, got {outcome:?}"
    );

    // Outside the window: reuse.
    let (created, r0) = new_session(store, t0, 3600).await;
    assert!(matches!(
        rotate(store, &plain(&created, r0, hash(), t0)).await,
        RotateOutcome::Rotated(_)
    ));
    let mut late = grace(&created, t0 + 11);
    late.presented = r0;
    assert!(
        matches!(rotate(store, &late).await, RotateOutcome::Reused(f) if f.id == created.id),
        "a retry after the window is reuse"
    );

    // An older ancestor never gets grace, even within the window.
    let (created, r0) = new_session(store, t0, 3600).await;
    let r1 = hash();
    assert!(matches!(
        rotate(store, &plain(&created, r0, r1, t0)).await,
        RotateOutcome::Rotated(_)
    ));
    assert!(matches!(
        rotate(store, &plain(&created, r1, hash(), t0 + 1)).await,
        RotateOutcome::Rotated(_)
    ));
    let mut ancestor = grace(&created, t0 + 2);
    ancestor.presented = r0;
    assert!(
        matches!(rotate(store, &ancestor).await, RotateOutcome::Reused(f) if f.id == created.id),
        "an older ancestor is reuse"
    );
}

/// A rotation that ran but whose answer was lost (the store call failed):
/// the retry permit of `allow_retry` lets one retry of the immediate
/// predecessor through, within its time, whichever ran first.
pub async fn retry_after_a_lost_answer(store: &dyn RefreshStore) {
    let t0 = now();

    // The rotation ran, its answer was lost, the permit was recorded.
    let (created, r0) = new_session(store, t0, 3600).await;
    let r1 = hash();
    assert!(matches!(
        rotate(store, &plain(&created, r0, r1, t0)).await,
        RotateOutcome::Rotated(_)
    ));
    store
        .allow_retry(&created.id, &r0, t0 + 30)
        .await
        .expect("allow_retry");
    let sibling = hash();
    let outcome = rotate(store, &plain(&created, r0, sibling, t0 + 5)).await;
    assert!(
        matches!(&outcome, RotateOutcome::Retried(f)
            if f.id == created.id && !f.revoked && f.generation == 1 && f.last_used_at == t0 + 5),
        "a retry with a permit gets a sibling, got {outcome:?}"
    );
    let record = store
        .token(&created.id, &sibling)
        .await
        .unwrap()
        .expect("the sibling is stored");
    assert_eq!(
        (record.status, record.generation, record.parent),
        (TokenStatus::Active, 1, Some(r0))
    );
    assert_eq!(
        store.token(&created.id, &r0).await.unwrap().unwrap().status,
        TokenStatus::Rotated(t0),
        "the retried token keeps its rotation time"
    );
    // One permit, one retry: the next is reuse.
    let outcome = rotate(store, &plain(&created, r0, hash(), t0 + 6)).await;
    assert!(
        matches!(&outcome, RotateOutcome::Reused(f) if f.id == created.id && f.revoked),
        "a permit is used up by its retry, got {outcome:?}"
    );

    // The permit recorded before the lost rotation ran (it waited longer).
    let (created, r0) = new_session(store, t0, 3600).await;
    store.allow_retry(&created.id, &r0, t0 + 30).await.unwrap();
    let r1 = hash();
    assert!(
        matches!(
            rotate(store, &plain(&created, r0, r1, t0)).await,
            RotateOutcome::Rotated(_)
        ),
        "a permit does not stop an active token from rotating"
    );
    let sibling = hash();
    assert!(matches!(
        rotate(store, &plain(&created, r0, sibling, t0 + 1)).await,
        RotateOutcome::Retried(_)
    ));
    // The sibling goes on; the lost child is stale from then on.
    assert!(matches!(
        rotate(store, &plain(&created, sibling, hash(), t0 + 2)).await,
        RotateOutcome::Rotated(f) if f.generation == 2
    ));
    assert!(
        matches!(rotate(store, &plain(&created, r1, hash(), t0 + 3)).await, RotateOutcome::Reused(f) if f.id == created.id),
        "the lost child is stale once the retried sibling rotated"
    );

    // A permit that ran out: reuse.
    let (created, r0) = new_session(store, t0, 3600).await;
    assert!(matches!(
        rotate(store, &plain(&created, r0, hash(), t0)).await,
        RotateOutcome::Rotated(_)
    ));
    store.allow_retry(&created.id, &r0, t0 + 10).await.unwrap();
    assert!(
        matches!(rotate(store, &plain(&created, r0, hash(), t0 + 11)).await, RotateOutcome::Reused(f) if f.id == created.id),
        "a retry after the permit ran out is reuse"
    );

    // A permit never reaches past the immediate predecessor.
    let (created, r0) = new_session(store, t0, 3600).await;
    let r1 = hash();
    assert!(matches!(
        rotate(store, &plain(&created, r0, r1, t0)).await,
        RotateOutcome::Rotated(_)
    ));
    assert!(matches!(
        rotate(store, &plain(&created, r1, hash(), t0 + 1)).await,
        RotateOutcome::Rotated(_)
    ));
    store.allow_retry(&created.id, &r0, t0 + 30).await.unwrap();
    assert!(
        matches!(rotate(store, &plain(&created, r0, hash(), t0 + 2)).await, RotateOutcome::Reused(f) if f.id == created.id),
        "an older ancestor with a permit is reuse"
    );

    // An unknown hash: nothing is stored.
    let ghost = hash();
    store
        .allow_retry(&created.id, &ghost, t0 + 30)
        .await
        .unwrap();
    assert_eq!(store.token(&created.id, &ghost).await.unwrap(), None);
    assert_eq!(store.lookup(&created.id, &ghost).await.unwrap(), None);
}

/// Expired sessions refuse rotation and are left untouched.
pub async fn lifetimes(store: &dyn RefreshStore) {
    let t0 = now();
    // Absolute lifetime.
    let (created, r0) = new_session(store, t0, 60).await;
    assert_eq!(
        rotate(store, &plain(&created, r0, hash(), t0 + 60)).await,
        RotateOutcome::Invalid(InvalidReason::Expired)
    );
    assert_eq!(store.session(&created.id).await.unwrap().unwrap(), created);
    assert_eq!(
        store.token(&created.id, &r0).await.unwrap().unwrap().status,
        TokenStatus::Active
    );
    // Idle lifetime.
    let (created, r0) = new_session(store, t0, 3600).await;
    let idle = Rotation {
        session_id: created.id.clone(),
        presented: r0,
        child: hash(),
        now: t0 + 100,
        idle_cutoff: t0 + 1,
        grace_cutoff: None,
    };
    assert_eq!(
        rotate(store, &idle).await,
        RotateOutcome::Invalid(InvalidReason::Expired)
    );
    assert_eq!(store.session(&created.id).await.unwrap().unwrap(), created);
}

/// An unknown token changes nothing.
pub async fn unknown_token(store: &dyn RefreshStore) {
    let t0 = now();
    let (created, r0) = new_session(store, t0, 3600).await;
    let child = hash();
    assert_eq!(
        rotate(store, &plain(&created, hash(), child, t0)).await,
        RotateOutcome::Invalid(InvalidReason::Unknown)
    );
    assert_eq!(
        store.token(&created.id, &child).await.unwrap(),
        None,
        "no child is stored"
    );
    assert_eq!(store.session(&created.id).await.unwrap().unwrap(), created);
    assert_eq!(
        store.token(&created.id, &r0).await.unwrap().unwrap().status,
        TokenStatus::Active
    );
}

/// A token presented with another session's id is unknown, and changes
/// nothing: neither session, nor the token, nor its retry permit. The other
/// session is one of another user and one of the same user.
pub async fn wrong_session(store: &dyn RefreshStore) {
    let t0 = now();
    let (created, r0) = new_session(store, t0, 3600).await;
    let (stranger, _) = new_session(store, t0, 3600).await;
    let (sibling, _) = user_session(store, &created.user_id, t0 + 1, NO_CAP).await;
    for other in [&stranger, &sibling] {
        let child = hash();
        assert_eq!(
            rotate(store, &plain(other, r0, child, t0 + 2)).await,
            RotateOutcome::Invalid(InvalidReason::Unknown),
            "a token presented with another session's id"
        );
        assert_eq!(store.token(&other.id, &r0).await.unwrap(), None);
        assert_eq!(store.lookup(&other.id, &r0).await.unwrap(), None);
        assert_eq!(store.token(&other.id, &child).await.unwrap(), None);
        assert_eq!(store.token(&created.id, &child).await.unwrap(), None);
        store.allow_retry(&other.id, &r0, t0 + 30).await.unwrap();
        assert_eq!(store.session(&other.id).await.unwrap().unwrap(), *other);
    }
    assert_eq!(store.session(&created.id).await.unwrap().unwrap(), created);
    assert_eq!(
        store.token(&created.id, &r0).await.unwrap().unwrap().status,
        TokenStatus::Active
    );
    // The token still rotates with its own session id; the permits asked
    // for under the other ids were not recorded, so presenting it again is
    // reuse.
    assert!(matches!(
        rotate(store, &plain(&created, r0, hash(), t0 + 3)).await,
        RotateOutcome::Rotated(_)
    ));
    assert!(matches!(
        rotate(store, &plain(&created, r0, hash(), t0 + 4)).await,
        RotateOutcome::Reused(f) if f.id == created.id
    ));
    assert!(!store.session(&sibling.id).await.unwrap().unwrap().revoked);
}

/// Logout, logout-all and session listing.
pub async fn revocation_and_sessions(store: &dyn RefreshStore) {
    let t0 = now();
    let (a, ra) = new_session(store, t0, 3600).await;
    // Two more sessions of the same user, and one of someone else.
    let mut second = a.clone();
    second.id = Session::new_id(&a.user_id);
    second.created_at = t0 + 1;
    second.device = Some("phone".into());
    let rb = hash();
    store
        .create(
            &second,
            &TokenRecord {
                hash: rb,
                session_id: second.id.clone(),
                parent: None,
                generation: 0,
                created_at: t0 + 1,
                status: TokenStatus::Active,
            },
            NO_CAP,
        )
        .await
        .unwrap();
    let mut expired = a.clone();
    expired.id = Session::new_id(&a.user_id);
    expired.expires_at = t0 - 1;
    store
        .create(
            &expired,
            &TokenRecord {
                hash: hash(),
                session_id: expired.id.clone(),
                parent: None,
                generation: 0,
                created_at: t0,
                status: TokenStatus::Active,
            },
            NO_CAP,
        )
        .await
        .unwrap();
    let (other, _) = new_session(store, t0, 3600).await;

    let sessions = store.sessions(&a.user_id, t0).await.unwrap();
    let ids: Vec<&str> = sessions.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [a.id.as_str(), second.id.as_str()],
        "live sessions, oldest first"
    );
    assert_eq!(sessions[1].device.as_deref(), Some("phone"));

    assert!(store.revoke_session(&a.id).await.unwrap());
    assert!(!store.revoke_session("no-such-session").await.unwrap());
    assert_eq!(
        rotate(store, &plain(&a, ra, hash(), t0)).await,
        RotateOutcome::Invalid(InvalidReason::Revoked)
    );
    assert!(
        matches!(
            rotate(store, &plain(&second, rb, hash(), t0)).await,
            RotateOutcome::Rotated(_)
        ),
        "revoking one session leaves the other alive"
    );
    let ids: Vec<String> = store
        .sessions(&a.user_id, t0)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, [second.id.clone()]);

    assert_eq!(
        store.revoke_user(&a.user_id).await.unwrap(),
        2,
        "the live and the expired session"
    );
    assert!(store.sessions(&a.user_id, t0).await.unwrap().is_empty());
    assert!(
        !store.session(&other.id).await.unwrap().unwrap().revoked,
        "other users are untouched"
    );
}

/// A session of `user` created at `at`, with its first token.
async fn user_session(
    store: &dyn RefreshStore,
    user: &str,
    at: i64,
    max: u32,
) -> (Session, Vec<String>) {
    let session = Session {
        id: Session::new_id(user),
        user_id: user.to_owned(),
        device: None,
        created_at: at,
        last_used_at: at,
        expires_at: at + 3600,
        generation: 0,
        revoked: false,
        auth_time: at,
        jkt: None,
    };
    let record = TokenRecord {
        hash: hash(),
        session_id: session.id.clone(),
        parent: None,
        generation: 0,
        created_at: at,
        status: TokenStatus::Active,
    };
    let evicted = store
        .create(&session, &record, max)
        .await
        .expect("create a session");
    (session, evicted)
}

async fn live_ids(store: &dyn RefreshStore, user: &str, now: i64) -> Vec<String> {
    let sessions = store.sessions(user, now).await.expect("sessions");
    sessions.into_iter().map(|s| s.id).collect()
}

/// The session cap: a login beyond it revokes the user's oldest others.
pub async fn session_cap(store: &dyn RefreshStore) {
    let t0 = now();
    let user = format!("user-{}", random_id());
    let mut ids = Vec::new();
    for i in 0..3 {
        let (session, evicted) = user_session(store, &user, t0 + i, 3).await;
        assert!(evicted.is_empty(), "under the cap nothing is evicted");
        ids.push(session.id);
    }
    let (other, _) = new_session(store, t0, 3600).await;

    // A fourth login: the oldest goes.
    let (fourth, evicted) = user_session(store, &user, t0 + 3, 3).await;
    assert_eq!(evicted, [ids[0].clone()], "the oldest session is evicted");
    assert!(store.session(&ids[0]).await.unwrap().unwrap().revoked);
    assert_eq!(
        live_ids(store, &user, t0).await,
        [ids[1].clone(), ids[2].clone(), fourth.id.clone()]
    );

    // A revoked session frees its place.
    assert!(store.revoke_session(&ids[1]).await.unwrap());
    let (fifth, evicted) = user_session(store, &user, t0 + 4, 3).await;
    assert!(evicted.is_empty(), "a revoked session does not count");

    // A lower cap evicts several at once, oldest first; the new session
    // stays even when it is the oldest (a clock behind the others).
    let (behind, evicted) = user_session(store, &user, t0 - 100, 1).await;
    assert_eq!(
        evicted,
        [ids[2].clone(), fourth.id.clone(), fifth.id.clone()],
        "every other session beyond the cap, oldest first"
    );
    assert_eq!(live_ids(store, &user, t0).await, [behind.id.as_str()]);
    assert_eq!(store.revoke_user(&user).await.unwrap(), 1);
    assert!(
        !store.session(&other.id).await.unwrap().unwrap().revoked,
        "other users are untouched"
    );
}

/// Purge drops expired and long-revoked sessions and their tokens.
pub async fn purge(store: &dyn RefreshStore) {
    let t0 = now();
    let (expired, r_expired) = new_session(store, t0 - 100, 50).await;
    let (revoked, r_revoked) = new_session(store, t0 - 100, 3600).await;
    store.revoke_session(&revoked.id).await.unwrap();
    let (live, r_live) = new_session(store, t0, 3600).await;
    let purged = store.purge(t0, t0 - 10).await.unwrap();
    assert!(purged >= 2, "purge reports what it removed");
    assert_eq!(store.session(&expired.id).await.unwrap(), None);
    assert_eq!(store.token(&expired.id, &r_expired).await.unwrap(), None);
    assert_eq!(store.session(&revoked.id).await.unwrap(), None);
    assert_eq!(store.token(&revoked.id, &r_revoked).await.unwrap(), None);
    assert!(store.session(&live.id).await.unwrap().is_some());
    assert!(store.token(&live.id, &r_live).await.unwrap().is_some());
}

/// Records every string and hash a store is handed.
struct Spy {
    inner: Arc<dyn RefreshStore>,
    seen: Mutex<Vec<String>>,
}

impl fmt::Debug for Spy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spy").finish_non_exhaustive()
    }
}

impl Spy {
    fn see(&self, items: impl IntoIterator<Item = String>) {
        self.seen.lock().unwrap().extend(items);
    }

    fn see_session(&self, f: &Session) {
        self.see([
            f.id.clone(),
            f.user_id.clone(),
            f.device.clone().unwrap_or_default(),
        ]);
    }
}

#[async_trait]
impl RefreshStore for Spy {
    async fn create(
        &self,
        session: &Session,
        token: &TokenRecord,
        max_sessions: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.see_session(session);
        self.see([token.hash.to_hex(), token.session_id.clone()]);
        self.inner.create(session, token, max_sessions).await
    }
    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        self.see([
            rotation.session_id.clone(),
            rotation.presented.to_hex(),
            rotation.child.to_hex(),
        ]);
        self.inner.rotate(rotation).await
    }
    async fn allow_retry(
        &self,
        session_id: &str,
        hash: &TokenHash,
        until: i64,
    ) -> Result<(), StoreError> {
        self.see([session_id.to_owned(), hash.to_hex()]);
        self.inner.allow_retry(session_id, hash, until).await
    }
    async fn token(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.see([session_id.to_owned(), hash.to_hex()]);
        self.inner.token(session_id, hash).await
    }
    async fn lookup(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<Option<(TokenRecord, Session)>, StoreError> {
        self.see([session_id.to_owned(), hash.to_hex()]);
        self.inner.lookup(session_id, hash).await
    }
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.see([id.to_owned()]);
        self.inner.session(id).await
    }
    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        self.see([id.to_owned()]);
        self.inner.revoke_session(id).await
    }
    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        self.see([user_id.to_owned()]);
        self.inner.revoke_user(user_id).await
    }
    async fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        self.see([user_id.to_owned()]);
        self.inner.sessions(user_id, now).await
    }
    async fn purge(&self, now: i64, revoked_before: i64) -> Result<u64, StoreError> {
        self.inner.purge(now, revoked_before).await
    }
}

fn issuer() -> TokenIssuer {
    TokenIssuer::new(
        SigningKey::hmac(Algorithm::HS256, b"conformance-suite-secret-of-32-bytes!")
            .expect("a valid key"),
    )
}

/// Through [`RefreshTokens`], the store is never handed a raw refresh token:
/// only its hash.
pub async fn hash_only(store: Arc<dyn RefreshStore>) {
    let spy = Arc::new(Spy {
        inner: store,
        seen: Mutex::new(Vec::new()),
    });
    let tokens = RefreshTokens::new(spy.clone(), issuer());
    let user = format!("user-{}", random_id());
    let subject = |u: String| async move { Ok(Some(Subject::new(u))) };
    let login = tokens
        .login(Subject::new(user.clone()), Some("laptop"))
        .await
        .unwrap();
    let second = tokens
        .refresh(login.refresh_token.as_str(), subject)
        .await
        .unwrap();
    let third = tokens
        .refresh(second.refresh_token.as_str(), subject)
        .await
        .unwrap();
    // Reuse, logout and listing hand the store nothing more.
    assert!(
        tokens
            .refresh(login.refresh_token.as_str(), subject)
            .await
            .is_err()
    );
    tokens
        .logout(&user, third.refresh_token.as_str())
        .await
        .unwrap();
    tokens.sessions(&user).await.unwrap();

    let raw = [
        &login.refresh_token,
        &second.refresh_token,
        &third.refresh_token,
    ];
    let seen = spy.seen.lock().unwrap();
    assert!(!seen.is_empty());
    for token in raw {
        let expected = tokens.hash(token.as_str()).to_hex();
        assert!(seen.contains(&expected), "the store sees the hash");
        // The session id is the token's first 128 bits; the rest (from
        // the 23rd character) is secret.
        let secret = &token.as_str()[22..];
        for value in seen.iter() {
            assert!(
                !value.contains(token.as_str()) && !value.contains(secret),
                "a raw refresh token reached the store"
            );
        }
    }
}

/// A store whose next rotation runs but answers with an error, as a client
/// timeout does while the server still carries the rotation out.
struct LostAnswer {
    inner: Arc<dyn RefreshStore>,
    lose_next: AtomicBool,
}

impl fmt::Debug for LostAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LostAnswer").finish_non_exhaustive()
    }
}

#[async_trait]
impl RefreshStore for LostAnswer {
    async fn create(
        &self,
        session: &Session,
        token: &TokenRecord,
        max_sessions: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.create(session, token, max_sessions).await
    }
    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let outcome = self.inner.rotate(rotation).await;
        if self.lose_next.swap(false, Ordering::SeqCst) {
            return Err(StoreError::new("timed out (the answer was lost)"));
        }
        outcome
    }
    async fn allow_retry(
        &self,
        session_id: &str,
        hash: &TokenHash,
        until: i64,
    ) -> Result<(), StoreError> {
        self.inner.allow_retry(session_id, hash, until).await
    }
    async fn token(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.token(session_id, hash).await
    }
    async fn lookup(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<Option<(TokenRecord, Session)>, StoreError> {
        self.inner.lookup(session_id, hash).await
    }
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.inner.session(id).await
    }
    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.revoke_session(id).await
    }
    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        self.inner.revoke_user(user_id).await
    }
    async fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        self.inner.sessions(user_id, now).await
    }
    async fn purge(&self, now: i64, revoked_before: i64) -> Result<u64, StoreError> {
        self.inner.purge(now, revoked_before).await
    }
}

/// Through [`RefreshTokens`] with its defaults: a refresh whose rotation ran
/// but whose answer was lost fails with `Unavailable`, and the client's retry
/// of the same token gets a new pair instead of revoking the session. A
/// replay of the spent token after that is reuse again.
pub async fn lost_answer_through_refresh_tokens(store: Arc<dyn RefreshStore>) {
    let lossy = Arc::new(LostAnswer {
        inner: Arc::clone(&store),
        lose_next: AtomicBool::new(false),
    });
    let tokens = RefreshTokens::new(lossy.clone(), issuer());
    let subject = |u: String| async move { Ok(Some(Subject::new(u))) };
    let user = format!("user-{}", random_id());
    let login = tokens.login(Subject::new(user), None).await.unwrap();

    lossy.lose_next.store(true, Ordering::SeqCst);
    let error = tokens
        .refresh(login.refresh_token.as_str(), subject)
        .await
        .expect_err("the answer was lost");
    assert_eq!(error.kind(), RefreshErrorKind::Unavailable);
    let spent = store
        .token(
            &login.session.id,
            &tokens.hash(login.refresh_token.as_str()),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(spent.status, TokenStatus::Rotated(_)),
        "the lost rotation ran"
    );

    let retried = tokens
        .refresh(login.refresh_token.as_str(), subject)
        .await
        .expect("the retry after a lost answer gets a new pair");
    assert_eq!(retried.session.id, login.session.id);
    assert!(!retried.session.revoked);
    let next = tokens
        .refresh(retried.refresh_token.as_str(), subject)
        .await
        .expect("the retried pair works");

    // The permit is used up: the spent login token is reuse again.
    assert!(
        tokens
            .refresh(login.refresh_token.as_str(), subject)
            .await
            .is_err()
    );
    assert!(
        store
            .session(&next.session.id)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
}

/// A session keeps its login time (`auth_time`) and its DPoP key (`jkt`)
/// through every read and rotation; through [`RefreshTokens`], a session
/// bound at login refreshes only with a proof by its key, and a refusal
/// spends nothing.
pub async fn bound_sessions(store: Arc<dyn RefreshStore>) {
    // The records, as the store keeps them.
    let t0 = now();
    let user_id = format!("user-{}", random_id());
    let session = Session {
        id: Session::new_id(&user_id),
        user_id,
        device: None,
        created_at: t0,
        last_used_at: t0,
        expires_at: t0 + 3600,
        generation: 0,
        revoked: false,
        auth_time: t0 - 100,
        jkt: Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".to_owned()),
    };
    let r0 = hash();
    let record = TokenRecord {
        hash: r0,
        session_id: session.id.clone(),
        parent: None,
        generation: 0,
        created_at: t0,
        status: TokenStatus::Active,
    };
    store
        .create(&session, &record, NO_CAP)
        .await
        .expect("create");
    assert_eq!(
        store.session(&session.id).await.unwrap().as_ref(),
        Some(&session),
        "auth_time and jkt are stored"
    );
    let RotateOutcome::Rotated(rotated) =
        rotate(&*store, &plain(&session, r0, hash(), t0 + 5)).await
    else {
        panic!("a bound session rotates like any other");
    };
    assert_eq!(
        (rotated.auth_time, rotated.jkt.as_deref()),
        (session.auth_time, session.jkt.as_deref()),
        "rotation keeps auth_time and jkt"
    );
    let listed = store.sessions(&session.user_id, t0).await.unwrap();
    assert_eq!(listed[0].jkt, session.jkt);
    assert_eq!(listed[0].auth_time, session.auth_time);

    // Through RefreshTokens.
    let tokens = RefreshTokens::new(Arc::clone(&store), issuer());
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(b"conformance-suite-secret-of-32-bytes!").expect("a valid key"))
        .build()
        .expect("a verifier");
    let key = DpopProof::from_jkt("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    let other = DpopProof::from_jkt("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    let subject = |u: String| async move { Ok(Some(Subject::new(u))) };
    let login = tokens
        .login_with_proof(Subject::new(format!("user-{}", random_id())), None, &key)
        .await
        .expect("login");
    assert_eq!(login.session.jkt.as_deref(), Some(key.jkt()));
    assert_eq!(login.response().token_type, "DPoP");
    let claims = verifier
        .verify::<serde_json::Value>(login.access_token.as_str())
        .expect("the access token verifies");
    assert_eq!(claims.jkt(), Some(key.jkt()), "access tokens carry cnf.jkt");
    let login_time = claims["auth_time"].as_i64().expect("auth_time");

    let stolen = tokens
        .refresh(login.refresh_token.as_str(), subject)
        .await
        .expect_err("no proof, no refresh");
    assert_eq!(stolen.kind(), RefreshErrorKind::InvalidDpopProof);
    let wrong = tokens
        .refresh_with_proof(login.refresh_token.as_str(), Some(&other), subject)
        .await
        .expect_err("another key's proof, no refresh");
    assert_eq!(wrong.kind(), RefreshErrorKind::InvalidGrant);
    assert_eq!(
        store
            .token(
                &login.session.id,
                &tokens.hash(login.refresh_token.as_str())
            )
            .await
            .unwrap()
            .map(|t| t.status),
        Some(TokenStatus::Active),
        "a refused refresh spends nothing"
    );
    let refreshed = tokens
        .refresh_with_proof(login.refresh_token.as_str(), Some(&key), subject)
        .await
        .expect("the key's proof refreshes");
    assert_eq!(refreshed.response().token_type, "DPoP");
    let claims = verifier
        .verify::<serde_json::Value>(refreshed.access_token.as_str())
        .expect("the refreshed access token verifies");
    assert_eq!(claims.jkt(), Some(key.jkt()));
    assert_eq!(
        claims["auth_time"].as_i64(),
        Some(login_time),
        "a refreshed token is never fresher than its login"
    );
    // An unbound session ignores a proof, and stays unbound.
    let plain_login = tokens
        .login(Subject::new(format!("user-{}", random_id())), None)
        .await
        .expect("login");
    let again = tokens
        .refresh_with_proof(plain_login.refresh_token.as_str(), Some(&key), subject)
        .await
        .expect("refresh");
    assert_eq!(again.session.jkt, None);
    assert_eq!(again.response().token_type, "bearer");
}

/// [`RACE_WIDTH`] concurrent rotations of one token: exactly one wins.
pub async fn race(store: Arc<dyn RefreshStore>) {
    let t0 = now();
    let (created, r0) = new_session(&*store, t0, 3600).await;
    let mut tasks = Vec::new();
    for _ in 0..RACE_WIDTH {
        let store = Arc::clone(&store);
        let created = created.clone();
        tasks.push(tokio::spawn(async move {
            let child = hash();
            (
                child,
                store
                    .rotate(&plain(&created, r0, child, t0 + 1))
                    .await
                    .expect("rotate"),
            )
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (child, outcome) = task.await.expect("task");
        match outcome {
            RotateOutcome::Rotated(_) => winners.push(child),
            RotateOutcome::Reused(_) | RotateOutcome::Invalid(InvalidReason::Revoked) => {}
            other => panic!("unexpected outcome in a race: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one concurrent rotation wins");
    // The losers presented a spent token: the session is revoked.
    assert!(store.session(&created.id).await.unwrap().unwrap().revoked);
}
