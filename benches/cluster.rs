//! Rotations per second of `RedisStore` on a Redis Cluster of three masters
//! against a single Redis, in the same run, with 32 concurrent callers.
//!
//! ```text
//! cargo bench --bench cluster --features redis
//! cargo bench --bench cluster --features redis -- --warm-up-time 1 --measurement-time 5
//! ```
//!
//! The single Redis comes from `REDIS_URL` (default
//! `redis://127.0.0.1:6379/`); the cluster is started by the bench itself on
//! loopback ports (`tests/support/redis_cluster.rs`, the same code as the
//! tests: three `redis-server --cluster-enabled yes`, `redis-cli --cluster
//! create`) and removed at the end. The cluster's nodes keep an append-only
//! file (`appendfsync always`, as the tests need for their restart); the
//! bench turns that off (`CONFIG SET appendonly no`) so both sides run
//! without persistence.
//!
//! Each of [`CALLERS`] tasks rotates the newest token of its own session
//! (its own user: sessions spread over the cluster's slots) over and over;
//! one criterion iteration is one rotation, so the reported throughput is
//! rotations per second across all callers. Before measuring, a plain
//! wall-clock run of [`PROBE`] rotations per side prints both figures and
//! their ratio.
//!
//! On one machine the cluster's three servers share its cores with the
//! single Redis and the bench itself: the figure shows what the routing and
//! the hash tags cost, not what three machines would add.

#[path = "../tests/support/redis_cluster.rs"]
mod redis_cluster;

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tower_jwt_auth::refresh::{
    RedisStore, Session,
    store::{RefreshStore, RotateOutcome, Rotation, TokenHash, TokenRecord, TokenStatus},
};

use redis_cluster::RedisCluster;

/// Concurrent callers, each on its own session.
const CALLERS: usize = 32;
/// Rotations of the wall-clock probe, per side.
const PROBE: u64 = 20_000;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// One session whose newest token a caller keeps rotating.
struct Chain {
    store: Arc<dyn RefreshStore>,
    session: String,
    newest: TokenHash,
}

impl Chain {
    async fn new(store: Arc<dyn RefreshStore>) -> Self {
        let now = now();
        let user = format!("bench-user-{:x}", rand::random::<u64>());
        let id = Session::new_id(&user);
        let session = Session {
            id: id.clone(),
            user_id: user,
            device: None,
            created_at: now,
            last_used_at: now,
            expires_at: now + 86_400,
            generation: 0,
            revoked: false,
            auth_time: now,
            jkt: None,
        };
        let newest = TokenHash::from_bytes(rand::random());
        let token = TokenRecord {
            hash: newest,
            session_id: id.clone(),
            parent: None,
            generation: 0,
            created_at: now,
            status: TokenStatus::Active,
        };
        store.create(&session, &token, 100).await.expect("create");
        Self {
            store,
            session: id,
            newest,
        }
    }

    async fn rotate(&mut self) {
        let now = now();
        let child = TokenHash::from_bytes(rand::random());
        let outcome = self
            .store
            .rotate(&Rotation {
                session_id: self.session.clone(),
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
}

/// [`CALLERS`] chains on `store`.
async fn chains(store: &Arc<dyn RefreshStore>) -> Vec<Chain> {
    let mut chains = Vec::with_capacity(CALLERS);
    for _ in 0..CALLERS {
        chains.push(Chain::new(Arc::clone(store)).await);
    }
    chains
}

/// `total` rotations spread over the chains, all callers at once; returns
/// the chains and the wall-clock time.
async fn rotate_all(chains: Vec<Chain>, total: u64) -> (Vec<Chain>, Duration) {
    let per_caller = total.div_ceil(CALLERS as u64).max(1);
    let started = Instant::now();
    let tasks: Vec<_> = chains
        .into_iter()
        .map(|mut chain| {
            tokio::spawn(async move {
                for _ in 0..per_caller {
                    chain.rotate().await;
                }
                chain
            })
        })
        .collect();
    let mut chains = Vec::with_capacity(CALLERS);
    for task in tasks {
        chains.push(task.await.expect("caller"));
    }
    let elapsed = started.elapsed();
    // Criterion asked for `total`: scale the time of the rounded-up run.
    let scaled = elapsed.mul_f64(total as f64 / (per_caller * CALLERS as u64) as f64);
    (chains, scaled)
}

async fn probe(store: &Arc<dyn RefreshStore>) -> f64 {
    let chains = chains(store).await;
    let (chains, _) = rotate_all(chains, CALLERS as u64 * 10).await; // loads the script
    let (_, elapsed) = rotate_all(chains, PROBE).await;
    PROBE as f64 / elapsed.as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let prefix = format!("tjwt-bench-cluster-{}:", std::process::id());
    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned());
    let single: Arc<dyn RefreshStore> = match rt.block_on(RedisStore::new(&redis_url)) {
        Ok(store) => Arc::new(store.with_prefix(prefix.as_str())),
        Err(e) => {
            eprintln!("SKIPPED: Redis is unreachable ({e}); set REDIS_URL");
            return;
        }
    };
    let cluster = match RedisCluster::start() {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            return;
        }
    };
    for port in cluster.ports() {
        let mut conn = rt
            .block_on(
                redis::Client::open(format!("redis://127.0.0.1:{port}"))
                    .unwrap()
                    .get_multiplexed_async_connection(),
            )
            .unwrap();
        let () = rt
            .block_on(
                redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("appendonly")
                    .arg("no")
                    .query_async(&mut conn),
            )
            .unwrap();
    }
    let clustered: Arc<dyn RefreshStore> = Arc::new(
        rt.block_on(RedisStore::cluster(cluster.urls()))
            .expect("connect to the cluster")
            .with_prefix(prefix.as_str()),
    );

    let single_rate = rt.block_on(probe(&single));
    let cluster_rate = rt.block_on(probe(&clustered));
    eprintln!(
        "{CALLERS} callers, {PROBE} rotations each side: single Redis {single_rate:.0} rotations/s, \
         Redis Cluster (3 masters) {cluster_rate:.0} rotations/s, cluster/single {:.2}",
        cluster_rate / single_rate
    );

    let mut group = c.benchmark_group("rotate_32_callers");
    group.throughput(Throughput::Elements(1));
    for (name, store) in [("redis", &single), ("redis_cluster", &clustered)] {
        let mut chains = Some(rt.block_on(chains(store)));
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let (back, elapsed) =
                    rt.block_on(rotate_all(chains.take().expect("chains"), iterations));
                chains = Some(back);
                elapsed
            })
        });
    }
    group.finish();

    let far = 4_000_000_000;
    rt.block_on(single.purge(far, far)).expect("purge");
    drop(clustered);
    drop(cluster);
}

criterion_group!(benches, bench);
criterion_main!(benches);
