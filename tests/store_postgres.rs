//! `PostgresStore` against a real PostgreSQL (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Skipped when unreachable,
//! unless `CI=true`. Each test works in a schema of its own.

mod common_store;

use std::{str::FromStr, sync::Arc, time::Duration};

use common_store::{login_and_refresh, model, unique, unreachable, url};
use sqlx::{
    PgPool, Row,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tower_jwt_auth::refresh::{
    PostgresStore, Session, conformance,
    store::{
        RefreshStore, RotateOutcome, Rotation, SessionEvents, TokenHash, TokenRecord, TokenStatus,
    },
};

fn database_url() -> String {
    url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
}

/// A PostgreSQL schema of one test's own: its tables, functions and schema
/// version are nobody else's, whatever else shares the database (other
/// tests, other builds migrating it).
struct Isolated {
    name: String,
    options: PgConnectOptions,
}

impl Isolated {
    /// A fresh schema, or `None` (skip) when the database is down.
    async fn new() -> Option<Self> {
        let name = unique("tjwt_test_").replace('-', "_");
        let base = PgConnectOptions::from_str(&database_url()).expect("DATABASE_URL");
        let admin = match PgPoolOptions::new()
            .max_connections(1)
            .connect_with(base.clone())
            .await
        {
            Ok(pool) => pool,
            Err(e) => return unreachable("PostgreSQL", "DATABASE_URL", &e),
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&admin)
            .await
            .expect("create a schema");
        let options = base.options([("search_path", name.as_str())]);
        Some(Self { name, options })
    }

    /// A pool whose connections work in the schema.
    async fn pool(&self, max_connections: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(self.options.clone())
            .await
            .expect("connect")
    }

    /// A store on the schema, not migrated.
    async fn store(&self) -> PostgresStore {
        PostgresStore::from_pool(self.pool(10).await)
    }

    /// A migrated store on the schema.
    async fn migrated(&self) -> PostgresStore {
        let store = self.store().await;
        store.migrate().await.expect("migrate");
        store
    }

    async fn remove(self) {
        let pool = self.pool(1).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.name
        )))
        .execute(&pool)
        .await
        .expect("drop the schema");
    }
}

fn random_hash() -> TokenHash {
    TokenHash::from_bytes(rand::random())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conforms() {
    let Some(db) = Isolated::new().await else {
        return;
    };
    let store = db.migrated().await;
    // Twice: migrate is idempotent.
    store.migrate().await.unwrap();
    conformance::run(Arc::new(store)).await;
    db.remove().await;
}

async fn schema_version(pool: &PgPool) -> i32 {
    sqlx::query_scalar("SELECT max(version) FROM tjwt_schema")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn rotate_function(pool: &PgPool) -> String {
    // The name is a parameter: a constant `regproc` would be resolved once,
    // in the connection's cached plan, and migrate() replaces the function.
    sqlx::query_scalar("SELECT pg_get_functiondef($1::text::regproc)")
        .bind("tjwt_rotate")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn migrate_goes_up_never_down() {
    let Some(db) = Isolated::new().await else {
        return;
    };
    let store = db.migrated().await;
    let pool = db.pool(1).await;
    let current = schema_version(&pool).await;

    // A newer build migrated the database: a newer version, a newer
    // rotation function.
    let newer = rotate_function(&pool).await.replacen(
        "BEGIN",
        "BEGIN\n    -- installed by a newer build",
        1,
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(newer))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE tjwt_schema SET version = $1")
        .bind(current + 1)
        .execute(&pool)
        .await
        .unwrap();

    // This (older) build restarts: a clear error, and nothing downgraded.
    let error = store
        .migrate()
        .await
        .expect_err("an older build must not migrate a newer schema");
    let message = error.to_string();
    assert!(
        message.contains(&format!("version {}", current + 1))
            && message.contains(&format!("version {current}")),
        "{message}"
    );
    assert_eq!(schema_version(&pool).await, current + 1);
    assert!(
        rotate_function(&pool)
            .await
            .contains("installed by a newer build"),
        "the newer rotation function must stay"
    );

    // An older stored version is upgraded.
    sqlx::query("UPDATE tjwt_schema SET version = $1")
        .bind(current - 1)
        .execute(&pool)
        .await
        .unwrap();
    store.migrate().await.expect("an upgrade");
    assert_eq!(schema_version(&pool).await, current);
    assert!(
        !rotate_function(&pool)
            .await
            .contains("installed by a newer build")
    );
    db.remove().await;
}

#[tokio::test]
async fn migrate_upgrades_a_version_2_database_in_place() {
    let Some(db) = Isolated::new().await else {
        return;
    };
    let pool = db.pool(1).await;
    sqlx::raw_sql(include_str!("fixtures/postgres_schema_v2.sql"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO tjwt_schema (id, version) VALUES (true, 2)")
        .execute(&pool)
        .await
        .unwrap();
    // A session that the version-2 build started.
    let now = 1_900_000_000_i64;
    let user = unique("user-");
    let old = random_hash();
    sqlx::query(
        "INSERT INTO tjwt_families
             (id, user_id, device, created_at, last_used_at, expires_at, generation, revoked)
         VALUES ('old-session', $1, NULL, $2, $2, $3, 0, false)",
    )
    .bind(&user)
    .bind(now)
    .bind(now + 3600)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO tjwt_tokens (hash, family_id, parent, generation, created_at, status)
         VALUES ($1, 'old-session', NULL, 0, $2, 0)",
    )
    .bind(&old.as_bytes()[..])
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();

    let store = db.store().await;
    store.migrate().await.expect("an upgrade from version 2");
    assert!(schema_version(&pool).await > 2);

    // The old session rotates under the new functions ...
    let rotation = Rotation {
        session_id: "old-session".to_owned(),
        presented: old,
        child: random_hash(),
        now: now + 1,
        idle_cutoff: now - 60,
        grace_cutoff: None,
    };
    assert!(matches!(
        store.rotate(&rotation).await.unwrap(),
        RotateOutcome::Rotated(_)
    ));
    // ... takes a retry permit (a new column) ...
    store
        .allow_retry("old-session", &old, now + 60)
        .await
        .unwrap();
    let retry = Rotation {
        child: random_hash(),
        now: now + 2,
        ..rotation
    };
    assert!(matches!(
        store.rotate(&retry).await.unwrap(),
        RotateOutcome::Retried(_)
    ));
    // ... and counts toward the session cap.
    let session = Session {
        id: unique("new-"),
        user_id: user.clone(),
        device: None,
        created_at: now + 3,
        last_used_at: now + 3,
        expires_at: now + 3600,
        generation: 0,
        revoked: false,

        auth_time: now + 3,
        jkt: None,
    };
    let token = TokenRecord {
        hash: random_hash(),
        session_id: session.id.clone(),
        parent: None,
        generation: 0,
        created_at: now + 3,
        status: TokenStatus::Active,
    };
    assert_eq!(
        store.create(&session, &token, 1).await.unwrap(),
        ["old-session"]
    );
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_no_raw_token() {
    let Some(db) = Isolated::new().await else {
        return;
    };
    let (raw, user) = login_and_refresh(Arc::new(db.migrated().await)).await;

    let pool = db.pool(1).await;
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
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_down_is_an_error_and_keeps_the_family() {
    let Some(db) = Isolated::new().await else {
        return;
    };
    let store = db.migrated().await;
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
    store.create(&family, &token, 100).await.unwrap();

    // A pool on a port where nothing listens.
    let dead = PostgresStore::new_lazy("postgres://postgres:hunter2@127.0.0.1:1/test").unwrap();
    assert!(!format!("{dead:?}").contains("hunter2"));
    let started = std::time::Instant::now();
    let rotation = Rotation {
        session_id: family.id.clone(),
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
        .connect_with(db.options.clone())
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
        store
            .token(&family.id, &hash)
            .await
            .unwrap()
            .unwrap()
            .status,
        TokenStatus::Active
    );
    // And the real store rotates it.
    assert!(matches!(
        starved.rotate(&rotation).await.unwrap(),
        RotateOutcome::Rotated(_)
    ));
    drop(pool);
    db.remove().await;
}

/// A database of an older schema version upgrades in place: version 2,
/// version 3 of the DPoP branch (`auth_time` and `jkt`, no session cap or
/// retry permits), version 4 (session cap and retry permits, no
/// `auth_time` or `jkt`) and version 5 (no `revoked_at`, no trigger for the
/// logout broadcast). Its sessions read their creation as their login
/// when they have none, stay unbound, keep rotating under the current
/// functions, count toward the session cap, and are announced when they end;
/// a session revoked before the upgrade is found by the first resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrates_versions_2_to_5() {
    for (version, schema) in [
        (2, include_str!("fixtures/postgres_schema_v2.sql")),
        (3, include_str!("fixtures/postgres_schema_v3_dpop.sql")),
        (4, include_str!("fixtures/postgres_schema_v4.sql")),
        (5, include_str!("fixtures/postgres_schema_v5.sql")),
    ] {
        let Some(db) = Isolated::new().await else {
            return;
        };
        let pool = db.pool(1).await;
        sqlx::raw_sql(schema).execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO tjwt_schema (id, version) VALUES (true, $1)")
            .bind(version)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::raw_sql(
            "INSERT INTO tjwt_families
                 (id, user_id, device, created_at, last_used_at, expires_at, generation, revoked)
                 VALUES ('old-session', 'old-user', NULL, 1000, 1000, 4000000000, 0, false),
                        ('old-revoked', 'old-user', NULL, 1000, 1000, 4000000000, 0, true);
             INSERT INTO tjwt_tokens (hash, family_id, parent, generation, created_at, status)
                 VALUES (decode(repeat('ab', 32), 'hex'), 'old-session', NULL, 0, 1000, 0);",
        )
        .execute(&pool)
        .await
        .unwrap();
        let store = db.store().await;
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrate from version {version}: {e}"));
        store.migrate().await.expect("and again: already current");
        assert_eq!(schema_version(&pool).await, 6, "from version {version}");
        // Revoked before the upgrade: stamped now, so the first resync of a
        // logout broadcast finds it.
        let ended = store.recently_ended(Duration::from_secs(60)).await.unwrap();
        assert_eq!(
            ended.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["old-revoked"],
            "from version {version}"
        );
        assert!(ended[0].age < Duration::from_secs(60));
        let session = store.session("old-session").await.unwrap().unwrap();
        assert_eq!((session.auth_time, session.jkt), (1000, None));
        let outcome = store
            .rotate(&Rotation {
                session_id: "old-session".to_owned(),
                presented: TokenHash::from_bytes([0xab; 32]),
                child: random_hash(),
                now: 2000,
                idle_cutoff: 0,
                grace_cutoff: None,
            })
            .await
            .unwrap();
        assert!(
            matches!(&outcome, RotateOutcome::Rotated(s) if s.auth_time == 1000),
            "from version {version}: {outcome:?}"
        );
        // A bound session with a cap of one: the old session is evicted.
        let session = Session {
            id: unique("new-"),
            user_id: "old-user".to_owned(),
            device: None,
            created_at: 3000,
            last_used_at: 3000,
            expires_at: 4_000_000_000,
            generation: 0,
            revoked: false,
            auth_time: 2500,
            jkt: Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".to_owned()),
        };
        let token = TokenRecord {
            hash: random_hash(),
            session_id: session.id.clone(),
            parent: None,
            generation: 0,
            created_at: 3000,
            status: TokenStatus::Active,
        };
        let evicted = store.create(&session, &token, 1).await.unwrap();
        assert_eq!(
            evicted,
            vec!["old-session".to_owned()],
            "from version {version}"
        );
        // The eviction was stamped for the logout broadcast's resync.
        let ended = store.recently_ended(Duration::from_secs(60)).await.unwrap();
        let mut ids = ended.iter().map(|s| s.id.as_str()).collect::<Vec<_>>();
        ids.sort_unstable();
        assert_eq!(
            ids,
            ["old-revoked", "old-session"],
            "from version {version}"
        );
        assert_eq!(
            store.session(&session.id).await.unwrap().as_ref(),
            Some(&session)
        );
        drop(store);
        pool.close().await;
        db.remove().await;
    }
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
    let Some(db) = runtime.block_on(Isolated::new()) else {
        return;
    };
    let store = runtime.block_on(db.migrated());
    model::check(&runtime, 32, 25, false, || Arc::new(store.clone()));
    drop(store);
    runtime.block_on(db.remove());
}
