//! `RedisKeyRingStore` and `PostgresKeyRingStore` against real servers
//! (`REDIS_URL`, `DATABASE_URL`): the conformance suite, and two instances
//! sharing one ring. Skipped when a server is unreachable, unless `CI=true`.

mod common_store;

use std::sync::Arc;

use common_store::{unique, unreachable, url};
use serde_json::Value;
use tower_jwt_auth::{
    Algorithm, TokenIssuer, Verifier,
    keys::ring::{
        KeyRing, conformance,
        store::{KeyRingStore, PostgresKeyRingStore, RedisKeyRingStore},
    },
};

async fn redis() -> Option<RedisKeyRingStore> {
    match RedisKeyRingStore::new(&url("REDIS_URL", "redis://127.0.0.1:6379/")).await {
        Ok(store) => Some(store.with_prefix(format!("{}:", unique("tjwt-ring-test-")))),
        Err(e) => unreachable("Redis", "REDIS_URL", &e),
    }
}

async fn postgres() -> Option<PostgresKeyRingStore> {
    let url = url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test");
    match PostgresKeyRingStore::new(&url).await {
        Ok(store) => {
            store.migrate().await.unwrap();
            Some(store)
        }
        Err(e) => unreachable("PostgreSQL", "DATABASE_URL", &e),
    }
}

/// Two instances on one store: tokens of either verify with the other,
/// before and after a rotation by one of them.
async fn instances_share_the_ring(store: Arc<dyn KeyRingStore>) {
    let name = unique("shared-");
    let instance = || {
        KeyRing::builder(Algorithm::ES256)
            .store(Arc::clone(&store))
            .name(&name)
            .build()
    };
    let (a, b) = (instance().await.unwrap(), instance().await.unwrap());
    assert_eq!(a.keys(), b.keys());
    let verifier = |ring: &KeyRing| Verifier::builder().key_ring(ring.clone()).build().unwrap();
    let old = TokenIssuer::with_key_ring(a.clone())
        .access_token("u")
        .sign()
        .unwrap();
    verifier(&b).verify::<Value>(old.as_str()).unwrap();

    assert!(a.rotate().await.unwrap());
    assert!(!b.rotate().await.unwrap(), "b finds the ring rotated");
    assert_eq!(a.keys(), b.keys());
    let new = TokenIssuer::with_key_ring(b.clone())
        .access_token("u")
        .sign()
        .unwrap();
    for ring in [&a, &b] {
        verifier(ring).verify::<Value>(old.as_str()).unwrap();
        verifier(ring).verify::<Value>(new.as_str()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_conforms() {
    let Some(store) = redis().await else { return };
    let store: Arc<dyn KeyRingStore> = Arc::new(store);
    conformance::run(Arc::clone(&store)).await;
    instances_share_the_ring(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_conforms() {
    let Some(store) = postgres().await else {
        return;
    };
    // Migrating twice, even at once, is harmless.
    let (a, b) = tokio::join!(store.migrate(), store.migrate());
    a.unwrap();
    b.unwrap();
    let store: Arc<dyn KeyRingStore> = Arc::new(store);
    conformance::run(Arc::clone(&store)).await;
    instances_share_the_ring(store).await;
}
