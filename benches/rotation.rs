//! Refresh-token rotations per second on `MemoryStore`: one caller, and
//! several callers contending for the store at once.
//!
//! ```text
//! cargo bench --bench rotation
//! ```
//!
//! - `rotation/store`: `RefreshStore::rotate` alone (the atomic step);
//! - `rotation/protocol`: `RefreshTokens::refresh`, the whole protocol: a
//!   fresh 256-bit token from the OS, two SHA-256 hashes, the store's rotate
//!   and an HS256 access token;
//! - `rotation/contended_4`: the whole protocol from 4 tasks on a 4-thread
//!   runtime at once, each on its own session; time per rotation.
//!
//! Rotations per second are 1 / the time per iteration.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use tower_jwt_auth::{
    Algorithm, SigningKey, TokenIssuer,
    refresh::{
        MemoryStore, RefreshTokens, Session, Subject,
        store::{RefreshStore, Rotation, StoreError, TokenHash, TokenRecord, TokenStatus},
    },
};

fn issuer() -> TokenIssuer {
    TokenIssuer::new(
        SigningKey::hmac(Algorithm::HS256, b"rotation-bench-secret-of-32-bytes!!").unwrap(),
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn user(user: String) -> Result<Option<Subject>, StoreError> {
    Ok(Some(Subject::new(user).role("USER")))
}

/// A session whose refresh token is rotated over and over.
struct Chain {
    tokens: RefreshTokens,
    current: String,
}

impl Chain {
    async fn new(tokens: RefreshTokens) -> Self {
        let pair = tokens
            .login(Subject::new("bench-user"), None)
            .await
            .unwrap();
        Self {
            tokens,
            current: pair.refresh_token.into_string(),
        }
    }

    async fn rotate(&mut self) {
        let pair = self.tokens.refresh(&self.current, user).await.unwrap();
        self.current = pair.refresh_token.into_string();
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let tokens = RefreshTokens::new(store.clone(), issuer());
    let mut group = c.benchmark_group("rotation");

    // The store's atomic step alone.
    let t0 = now();
    let family = Session {
        id: Session::new_id("bench-user"),
        user_id: "bench-user".into(),
        device: None,
        created_at: t0,
        last_used_at: t0,
        expires_at: t0 + 3600,
        generation: 0,
        revoked: false,
        auth_time: 0,
        jkt: None,
    };
    let mut hash = TokenHash::from_bytes(rand::random());
    runtime
        .block_on(store.create(
            &family,
            &TokenRecord {
                hash,
                session_id: family.id.clone(),
                parent: None,
                generation: 0,
                created_at: t0,
                status: TokenStatus::Active,
            },
            100,
        ))
        .unwrap();
    group.bench_function("store", |b| {
        b.iter(|| {
            let child = TokenHash::from_bytes(rand::random());
            let rotation = Rotation {
                session_id: family.id.clone(),
                presented: hash,
                child,
                now: t0,
                idle_cutoff: t0 - 60,
                grace_cutoff: None,
            };
            runtime.block_on(store.rotate(&rotation)).unwrap();
            hash = child;
        })
    });

    let mut chain = runtime.block_on(Chain::new(tokens.clone()));
    group.bench_function("protocol", |b| b.iter(|| runtime.block_on(chain.rotate())));

    group.bench_function("contended_4", |b| {
        b.iter_custom(|iterations| {
            let per_task = iterations.div_ceil(4).max(1);
            runtime.block_on(async {
                let mut chains = Vec::new();
                for _ in 0..4 {
                    chains.push(Chain::new(tokens.clone()).await);
                }
                let start = Instant::now();
                let tasks: Vec<_> = chains
                    .into_iter()
                    .map(|mut chain| {
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                chain.rotate().await;
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                let elapsed = start.elapsed();
                // Time per rotation, scaled to the iterations asked for.
                Duration::from_secs_f64(
                    elapsed.as_secs_f64() * iterations as f64 / (per_task * 4) as f64,
                )
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
