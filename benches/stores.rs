//! Rotations per second of each refresh store, and round trips per rotation.
//!
//! ```text
//! cargo bench --bench stores --features redis,postgres,test-util
//! cargo bench --bench stores --features redis,postgres,test-util -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! One caller rotates the newest token of one family over and over (each
//! iteration: a fresh child hash, one `RefreshStore::rotate`). Servers come
//! from `REDIS_URL` (default `redis://127.0.0.1:6379/`) and `DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`); a store whose server
//! is unreachable is skipped with a message.
//!
//! Before measuring, a setup step prints for each server store:
//!
//! - Redis: the commands the server executed per rotation, from
//!   `INFO commandstats` before and after [`PROBE`] rotations (the `INFO`
//!   calls themselves excluded), split into what the client sent
//!   (`EVALSHA`: one round trip each) and what the script ran inside Redis;
//! - PostgreSQL: the transactions committed per rotation, from
//!   `pg_stat_database.xact_commit` before and after [`PROBE`] rotations
//!   (waiting 11 s before each read for the statistics to be flushed, and
//!   subtracting the reads' own transactions): every rotation is one
//!   statement in its own implicit transaction, so one per rotation is one
//!   round trip;
//!
//! and a plain wall-clock rotations/s over those rotations.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use criterion::{Criterion, criterion_group, criterion_main};
use sqlx::Row;
use tokio::runtime::Runtime;
use tower_jwt_auth::refresh::{
    MemoryStore, PostgresStore, RedisStore, Session,
    store::{RefreshStore, RotateOutcome, Rotation, TokenHash, TokenRecord, TokenStatus},
};

/// How many rotations the round-trip probes run.
const PROBE: u64 = 1000;

fn env(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn random_hash() -> TokenHash {
    TokenHash::from_bytes(rand::random())
}

/// One family whose newest token the bench keeps rotating.
struct Chain {
    store: Arc<dyn RefreshStore>,
    newest: TokenHash,
    family: String,
}

impl Chain {
    async fn new(store: Arc<dyn RefreshStore>) -> Self {
        let now = now();
        let user = format!("bench-user-{:x}", rand::random::<u64>());
        let id = Session::new_id(&user);
        let family = Session {
            id: id.clone(),
            user_id: user,
            device: Some("bench".into()),
            created_at: now,
            last_used_at: now,
            expires_at: now + 86_400,
            generation: 0,
            revoked: false,
            auth_time: 0,
            jkt: None,
        };
        let newest = random_hash();
        let token = TokenRecord {
            hash: newest,
            session_id: id.clone(),
            parent: None,
            generation: 0,
            created_at: now,
            status: TokenStatus::Active,
        };
        store.create(&family, &token, 100).await.expect("create");
        Self {
            store,
            newest,
            family: id,
        }
    }

    async fn rotate(&mut self) {
        let now = now();
        let child = random_hash();
        let outcome = self
            .store
            .rotate(&Rotation {
                session_id: self.family.clone(),
                presented: self.newest,
                child,
                now,
                idle_cutoff: now - 3600,
                grace_cutoff: None,
            })
            .await
            .expect("rotate");
        assert!(matches!(outcome, RotateOutcome::Rotated(_)), "{outcome:?}");
        self.newest = child;
    }

    async fn rotate_n(&mut self, n: u64) -> f64 {
        let started = Instant::now();
        for _ in 0..n {
            self.rotate().await;
        }
        n as f64 / started.elapsed().as_secs_f64()
    }

    async fn finish(self) {
        self.store
            .revoke_session(&self.family)
            .await
            .expect("revoke");
        let now = now();
        self.store.purge(now - 1, now + 1).await.expect("purge");
    }
}

async fn redis_commands(conn: &mut redis::aio::MultiplexedConnection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .filter(|(name, _)| name != "info")
        .collect()
}

async fn redis_probe(url: &str, store: Arc<dyn RefreshStore>) {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut chain = Chain::new(store).await;
    chain.rotate().await; // loads the script
    let before = redis_commands(&mut conn).await;
    let per_second = chain.rotate_n(PROBE).await;
    let after = redis_commands(&mut conn).await;
    let mut deltas: Vec<(String, u64)> = after
        .iter()
        .map(|(name, calls)| (name.clone(), calls - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, delta)| *delta > 0)
        .collect();
    deltas.sort();
    // `INFO commandstats` also counts the commands a script runs
    // (`redis.call`); only EVAL/EVALSHA/SCRIPT come from the client.
    let is_client = |name: &str| {
        matches!(name, "evalsha" | "eval" | "evalsha_ro" | "eval_ro") || name.starts_with("script")
    };
    let (client, inside): (Vec<_>, Vec<_>) = deltas.iter().partition(|(name, _)| is_client(name));
    let client_total: u64 = client.iter().map(|(_, d)| d).sum();
    let inside_total: u64 = inside.iter().map(|(_, d)| d).sum();
    eprintln!(
        "redis: {PROBE} rotations: {client_total} client commands = {:.2} round trips per rotation {client:?}; \
         {inside_total} commands run inside the script ({:.1} per rotation) {inside:?}; {per_second:.0} rotations/s",
        client_total as f64 / PROBE as f64,
        inside_total as f64 / PROBE as f64,
    );
    chain.finish().await;
}

async fn postgres_commits(pool: &sqlx::PgPool) -> i64 {
    // A backend flushes its statistics at most once a second, and an idle one
    // after ten seconds: wait for every connection's counts to land.
    tokio::time::sleep(Duration::from_millis(11_000)).await;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .unwrap()
    .get(0)
}

async fn postgres_probe(url: &str, store: Arc<dyn RefreshStore>) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let mut chain = Chain::new(store).await;
    chain.rotate().await; // prepares the statement
    // The probe's own two statements (clear snapshot, read) count too.
    let idle = postgres_commits(&pool).await;
    let before = postgres_commits(&pool).await;
    let overhead = before - idle;
    let per_second = chain.rotate_n(PROBE).await;
    let after = postgres_commits(&pool).await;
    let transactions = after - before - overhead;
    eprintln!(
        "postgres: {PROBE} rotations: {transactions} transactions ({:.2} per rotation, one statement each); {per_second:.0} rotations/s",
        transactions as f64 / PROBE as f64
    );
    chain.finish().await;
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut stores: Vec<(&str, Arc<dyn RefreshStore>)> =
        vec![("memory", Arc::new(MemoryStore::new()))];

    let redis_url = env("REDIS_URL", "redis://127.0.0.1:6379/");
    match rt.block_on(RedisStore::new(&redis_url)) {
        Ok(store) => {
            let store: Arc<dyn RefreshStore> =
                Arc::new(store.with_prefix(format!("tjwt-bench-{}:", std::process::id())));
            rt.block_on(redis_probe(&redis_url, Arc::clone(&store)));
            stores.push(("redis", store));
        }
        Err(e) => eprintln!("SKIPPED redis: unreachable ({e}); set REDIS_URL"),
    }

    let database_url = env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test");
    match rt.block_on(PostgresStore::new(&database_url)) {
        Ok(store) => {
            rt.block_on(store.migrate()).expect("migrate");
            let store: Arc<dyn RefreshStore> = Arc::new(store);
            rt.block_on(postgres_probe(&database_url, Arc::clone(&store)));
            stores.push(("postgres", store));
        }
        Err(e) => eprintln!("SKIPPED postgres: unreachable ({e}); set DATABASE_URL"),
    }

    let mut group = c.benchmark_group("rotate");
    for (name, store) in stores {
        let mut chain = rt.block_on(Chain::new(store));
        group.bench_function(name, |b| b.iter(|| rt.block_on(chain.rotate())));
        rt.block_on(chain.finish());
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
