//! `PostgresStore` against a real PostgreSQL (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Skipped when unreachable,
//! unless `CI=true`.

mod common_store;

use std::{sync::Arc, time::Duration};

use common_store::{login_and_refresh, unique, unreachable, url};
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
        auth_time: 0,
        jkt: None,
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

/// A database of schema version 2 (before `auth_time` and `jkt`) upgrades
/// in place: its sessions read their creation as their login, unbound, and
/// keep rotating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrates_a_version_2_database() {
    let Some(_) = store().await else { return };
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&database_url())
        .await
        .unwrap();
    let name = unique("tjwt_v2_").replace('-', "_").to_lowercase();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let base = database_url();
    let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
    {
        let old = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql(include_str!("postgres_schema_v2.sql"))
            .execute(&old)
            .await
            .unwrap();
        sqlx::raw_sql(
            "INSERT INTO tjwt_schema (id, version) VALUES (true, 2);
             INSERT INTO tjwt_families
                 (id, user_id, device, created_at, last_used_at, expires_at, generation, revoked)
                 VALUES ('old-session', 'old-user', NULL, 1000, 1000, 4000000000, 0, false);
             INSERT INTO tjwt_tokens (hash, family_id, parent, generation, created_at, status)
                 VALUES (decode(repeat('ab', 32), 'hex'), 'old-session', NULL, 0, 1000, 0);",
        )
        .execute(&old)
        .await
        .unwrap();
        old.close().await;
    }
    let store = PostgresStore::new(&url).await.unwrap();
    store.migrate().await.expect("migrate from version 2");
    store.migrate().await.expect("and again: already current");
    let session = store.session("old-session").await.unwrap().unwrap();
    assert_eq!((session.auth_time, session.jkt), (1000, None));
    let outcome = store
        .rotate(&Rotation {
            presented: TokenHash::from_bytes([0xab; 32]),
            child: random_hash(),
            now: 2000,
            idle_cutoff: 0,
            grace_cutoff: None,
        })
        .await
        .unwrap();
    assert!(
        matches!(&outcome, tower_jwt_auth::refresh::store::RotateOutcome::Rotated(s) if s.auth_time == 1000),
        "{outcome:?}"
    );
    let version: i32 = sqlx::query_scalar("SELECT max(version) FROM tjwt_schema")
        .fetch_one(
            &PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(version, 3);
    drop(store);
    // Best effort: the pool's connections close as it drops.
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await;
}
