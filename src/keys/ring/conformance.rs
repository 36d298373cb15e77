//! A conformance suite for [`KeyRingStore`] implementations (features
//! `key-ring` and `test-util`).
//!
//! Run it against your store with one call, from a multi-threaded Tokio test:
//!
//! ```
//! use std::sync::Arc;
//! use tower_jwt_auth::keys::ring::{conformance, store::MemoryKeyRingStore};
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! async fn my_store_conforms() {
//!     conformance::run(Arc::new(MemoryKeyRingStore::new())).await;
//! }
//! # fn main() {}
//! ```
//!
//! Every check uses rings of fresh random names, so the suite can run
//! against a shared database. A failed check panics with what went wrong.

use std::sync::Arc;

use super::{
    KeyRing,
    store::{KeyRingStore, StoredKey},
};
use crate::keys::Algorithm;

/// How many concurrent writes with one expected version [`race`] starts, and
/// how many instances [`rotations_race`] rotates at once.
pub const RACE_WIDTH: usize = 16;

/// Runs every check against `store`.
pub async fn run(store: Arc<dyn KeyRingStore>) {
    compare_and_swap(&*store).await;
    race(Arc::clone(&store)).await;
    rotations_race(store).await;
}

fn ring_name() -> String {
    format!("conformance-{}", crate::issuer::random_id())
}

fn key(kid: &str, activates_at: i64) -> StoredKey {
    StoredKey {
        kid: kid.to_owned(),
        algorithm: Algorithm::EdDSA,
        private_key_pem: format!("-----BEGIN PRIVATE KEY-----\n{kid}\n"),
        created_at: 1_700_000_000,
        activates_at,
    }
}

/// Load, first write, conflicting writes, versions that only grow, keys
/// kept in the order written (the order breaks ties of activation times).
pub async fn compare_and_swap(store: &dyn KeyRingStore) {
    let name = ring_name();
    assert_eq!(
        store.load(&name).await.unwrap(),
        None,
        "a new ring is absent"
    );
    let first = vec![key("a", 1)];
    let v1 = store
        .compare_and_swap(&name, None, &first)
        .await
        .unwrap()
        .expect("the first write succeeds");
    assert_eq!(
        store
            .compare_and_swap(&name, None, &[key("x", 1)])
            .await
            .unwrap(),
        None,
        "a second first write is refused"
    );
    let loaded = store.load(&name).await.unwrap().expect("the ring is there");
    assert_eq!((loaded.version, loaded.keys), (v1, first.clone()));

    let second = vec![key("b", 1), key("a", 1), key("c", 0)];
    let v2 = store
        .compare_and_swap(&name, Some(v1), &second)
        .await
        .unwrap()
        .expect("a write with the current version succeeds");
    assert!(v2 > v1, "versions grow");
    assert_eq!(
        store
            .compare_and_swap(&name, Some(v1), &first)
            .await
            .unwrap(),
        None,
        "a write with an old version is refused"
    );
    let loaded = store.load(&name).await.unwrap().unwrap();
    assert_eq!(
        (loaded.version, loaded.keys),
        (v2, second),
        "nothing was written"
    );
    let other = ring_name();
    assert_eq!(store.load(&other).await.unwrap(), None, "rings are apart");
}

/// [`RACE_WIDTH`] concurrent writes with one expected version: exactly one wins.
pub async fn race(store: Arc<dyn KeyRingStore>) {
    let name = ring_name();
    let v1 = store
        .compare_and_swap(&name, None, &[key("a", 1)])
        .await
        .unwrap()
        .unwrap();
    let writes = (0..RACE_WIDTH).map(|i| {
        let store = Arc::clone(&store);
        let name = name.clone();
        tokio::spawn(async move {
            store
                .compare_and_swap(&name, Some(v1), &[key(&format!("w{i}"), 2)])
                .await
                .unwrap()
        })
    });
    let mut winners = Vec::new();
    for (i, write) in writes.collect::<Vec<_>>().into_iter().enumerate() {
        if write.await.unwrap().is_some() {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one concurrent write wins");
    let loaded = store.load(&name).await.unwrap().unwrap();
    assert_eq!(loaded.keys, [key(&format!("w{}", winners[0]), 2)]);
}

/// [`RACE_WIDTH`] instances of one ring start and rotate at once: they agree
/// on one set of keys, and the ring rotated once.
pub async fn rotations_race(store: Arc<dyn KeyRingStore>) {
    let name = ring_name();
    let builds = (0..RACE_WIDTH).map(|_| {
        KeyRing::builder(Algorithm::EdDSA)
            .store(Arc::clone(&store))
            .name(&name)
            .build()
    });
    let rings: Vec<KeyRing> = futures_join_all(builds).await;
    let kids = rings[0].keys();
    assert_eq!(kids.len(), 2, "one active key and one next key");
    for ring in &rings {
        ring.sync().await.unwrap();
        assert_eq!(ring.keys(), kids, "every instance has the same keys");
    }
    let before = rings[0].active_kid();
    let rotations = rings.iter().map(KeyRing::rotate);
    let rotated = futures_join_all_results(rotations)
        .await
        .into_iter()
        .filter(|result| *result.as_ref().unwrap())
        .count();
    assert_eq!(rotated, 1, "exactly one instance rotated");
    let stored = store.load(&name).await.unwrap().unwrap();
    assert_eq!(stored.keys.len(), 3, "rotated once: retired, active, next");
    for ring in &rings {
        ring.sync().await.unwrap();
        assert_ne!(ring.active_kid(), before, "the active key changed");
        assert_eq!(
            ring.active_kid(),
            kids[1].kid(),
            "the published next key signs"
        );
    }
}

async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<KeyRing>
where
    F: std::future::Future<Output = Result<KeyRing, super::KeyRingError>>,
{
    let mut out = Vec::new();
    for result in futures_join_all_results(futures).await {
        out.push(result.expect("the ring builds"));
    }
    out
}

/// Polls every future concurrently (within this task), in order of results.
async fn futures_join_all_results<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut results: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, result) in pending.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *result = Some(value),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results
        .into_iter()
        .map(|r| r.expect("every future is done"))
        .collect()
}
