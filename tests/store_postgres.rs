//! `PostgresStore` against a real PostgreSQL (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Skipped when unreachable,
//! unless `CI=true`.

mod common_store;

use std::{sync::Arc, time::Duration};

use common_store::{login_and_refresh, model, unique, unreachable, url};
use sqlx::{Row, postgres::PgPoolOptions};
use tower_jwt_auth::refresh::{
    PostgresStore, Session, conformance,
    store::{RefreshStore, Rotation, TokenHash, TokenRecord, TokenStatus},
};

fn database_url() -> String {
    url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
}

/// A migrated store, or `None` (skip) when the database is down.
async fn store() -> Option<PostgresStore> {
    match PostgresStore::new(&database_url()).await {
        Ok(store) => {
            store.migrate().await.expect("migrate");
            Some(store)
        }
        Err(e) => unreachable("PostgreSQL", "DATABASE_URL", &e),
    }
}

fn random_hash() -> TokenHash {
    TokenHash::from_bytes(rand::random())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conforms() {
    let Some(store) = store().await else { return };
    // Twice: migrate is idempotent.
    store.migrate().await.unwrap();
    conformance::run(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_no_raw_token() {
    let Some(store) = store().await else { return };
    let (raw, user) = login_and_refresh(Arc::new(store)).await;

    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&database_url())
        .await
        .unwrap();
    // Every row of both tables, as text.
    let mut everything = String::new();
    for table in ["tjwt_families", "tjwt_tokens"] {
        let sql = format!("SELECT t::text AS row FROM {table} t");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap();
        for row in rows {
            everything.push_str(&row.get::<String, _>("row"));
            everything.push('\n');
        }
    }
    assert!(everything.contains(&user), "the scan sees this test's rows");
    for token in &raw {
        assert!(
            !everything.contains(token.as_str()),
            "a raw refresh token is stored in PostgreSQL"
        );
    }
    let hashes: i64 = sqlx::query(
        "SELECT count(*) FROM tjwt_tokens t JOIN tjwt_families f ON f.id = t.family_id
         WHERE f.user_id = $1 AND octet_length(t.hash) = 32",
    )
    .bind(&user)
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(hashes, raw.len() as i64, "one 32-byte hash per token");
    sqlx::query("DELETE FROM tjwt_families WHERE user_id = $1")
        .bind(&user)
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_down_is_an_error_and_keeps_the_family() {
    let Some(store) = store().await else { return };
    let now = 1_900_000_000;
    let family = Session {
        id: unique("fam-"),
        user_id: unique("user-"),
        device: None,
        created_at: now,
        last_used_at: now,
        expires_at: now + 3600,
        generation: 0,
        revoked: false,
    };
    let hash = random_hash();
    let token = TokenRecord {
        hash,
        session_id: family.id.clone(),
        parent: None,
        generation: 0,
        created_at: now,
        status: TokenStatus::Active,
    };
    store.create(&family, &token).await.unwrap();

    // A pool on a port where nothing listens.
    let dead = PostgresStore::new_lazy("postgres://postgres:hunter2@127.0.0.1:1/test").unwrap();
    assert!(!format!("{dead:?}").contains("hunter2"));
    let started = std::time::Instant::now();
    let rotation = Rotation {
        presented: hash,
        child: random_hash(),
        now: now + 1,
        idle_cutoff: now - 60,
        grace_cutoff: None,
    };
    assert!(
        dead.rotate(&rotation).await.is_err(),
        "a dead server is an error"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        PostgresStore::new("postgres://postgres@127.0.0.1:1/test")
            .await
            .is_err()
    );

    // A pool that times out: its only connection is busy.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(300))
        .connect(&database_url())
        .await
        .unwrap();
    let busy = pool.acquire().await.unwrap();
    let starved = PostgresStore::from_pool(pool.clone());
    assert!(
        starved.rotate(&rotation).await.is_err(),
        "a timeout is an error"
    );
    drop(busy);

    // Nothing was revoked or rotated.
    let stored = store.session(&family.id).await.unwrap().unwrap();
    assert!(!stored.revoked);
    assert_eq!(stored.generation, 0);
    assert_eq!(
        store.token(&hash).await.unwrap().unwrap().status,
        TokenStatus::Active
    );
    // And the real store rotates it.
    assert!(matches!(
        starved.rotate(&rotation).await.unwrap(),
        tower_jwt_auth::refresh::store::RotateOutcome::Rotated(_)
    ));
    sqlx::query("DELETE FROM tjwt_families WHERE id = $1")
        .bind(&family.id)
        .execute(&pool)
        .await
        .unwrap();
}

/// The model of the store contract (`common_store::model`), over random
/// sequences with ids of their own (the tables are shared: no purge).
#[test]
fn follows_the_model() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(store) = runtime.block_on(store()) else {
        return;
    };
    model::check(&runtime, 32, 25, false, || Arc::new(store.clone()));
}
