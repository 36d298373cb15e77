//! `RedisStore` against a real Redis (`REDIS_URL`, default
//! `redis://127.0.0.1:6379/`). Skipped when unreachable, unless `CI=true`.

mod common_store;

use std::{collections::HashMap, sync::Arc};

use common_store::{login_and_refresh, model, unique, unreachable, url};
use tower_jwt_auth::refresh::{
    RedisStore, Session, conformance,
    store::{RefreshStore, Rotation, TokenHash, TokenRecord, TokenStatus},
};

fn redis_url() -> String {
    url("REDIS_URL", "redis://127.0.0.1:6379/")
}

/// A store under a fresh prefix, or `None` (skip) when Redis is down.
async fn store() -> Option<RedisStore> {
    match RedisStore::new(&redis_url()).await {
        Ok(store) => Some(store.with_prefix(format!("{}:", unique("tjwt-test-")))),
        Err(e) => unreachable("Redis", "REDIS_URL", &e),
    }
}

async fn raw_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conforms() {
    let Some(store) = store().await else { return };
    conformance::run(Arc::new(store.clone())).await;

    // A purge far in the future empties the prefix: families, tokens, user
    // sets and both purge indexes.
    let far = 4_000_000_000;
    assert!(store.purge(far, far).await.unwrap() > 0);
    let mut conn = raw_connection().await;
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", store.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(left.is_empty(), "purge left {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_no_raw_token_and_expires_every_key() {
    let Some(store) = store().await else { return };
    let prefix = store.prefix().to_owned();
    let (raw, user) = login_and_refresh(Arc::new(store)).await;

    let mut conn = raw_connection().await;
    let keys: Vec<String> = {
        let mut iter: redis::AsyncIter<'_, String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter_async(&mut conn)
            .await
            .unwrap();
        let mut keys = Vec::new();
        while let Some(key) = iter.next_item().await {
            keys.push(key.unwrap());
        }
        keys
    };
    // A family, its token set, three tokens, the user's set, the expiry index.
    assert_eq!(keys.len(), 7, "{keys:?}");
    assert!(keys.contains(&format!("{prefix}u:{user}")));

    let mut everything = String::new();
    for key in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let values: Vec<String> = match kind.as_str() {
            "hash" => {
                let map: HashMap<String, String> = redis::cmd("HGETALL")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                map.into_iter().flat_map(|(k, v)| [k, v]).collect()
            }
            "set" => redis::cmd("SMEMBERS")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
                .unwrap(),
            "string" => vec![
                redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
            ],
            other => panic!("unexpected key type {other} of {key}"),
        };
        assert!(!values.is_empty(), "{key} is empty");
        everything.push_str(key);
        everything.push('\n');
        for value in values {
            everything.push_str(&value);
            everything.push('\n');
        }
        // Everything but the purge index dies with the family.
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if key != &format!("{prefix}exp") {
            assert!(ttl > 0, "{key} has no expiry ({ttl})");
        }
    }
    for token in &raw {
        assert!(
            !everything.contains(token.as_str()),
            "a raw refresh token is stored in Redis"
        );
    }
    // Token keys are named by hash.
    let token_keys = keys
        .iter()
        .filter(|k| k.starts_with(&format!("{prefix}t:")))
        .count();
    assert_eq!(token_keys, raw.len());
    for key in keys
        .iter()
        .filter(|k| k.starts_with(&format!("{prefix}t:")))
    {
        assert!(TokenHash::from_hex(&key[prefix.len() + 2..]).is_some());
    }

    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
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
    // Fixed hashes are fine: the prefix is unique.
    let hash = TokenHash::from_bytes([7; 32]);
    let token = TokenRecord {
        hash,
        session_id: family.id.clone(),
        parent: None,
        generation: 0,
        created_at: now,
        status: TokenStatus::Active,
    };
    store.create(&family, &token).await.unwrap();

    // The same keys, through a Redis that is not there.
    let dead = RedisStore::new_lazy("redis://127.0.0.1:1/")
        .unwrap()
        .with_prefix(store.prefix());
    let started = std::time::Instant::now();
    let rotation = Rotation {
        presented: hash,
        child: TokenHash::from_bytes([8; 32]),
        now: now + 1,
        idle_cutoff: now - 60,
        grace_cutoff: None,
    };
    assert!(
        dead.rotate(&rotation).await.is_err(),
        "a dead server is an error"
    );
    assert!(dead.revoke_session(&family.id).await.is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(RedisStore::new("redis://127.0.0.1:1/").await.is_err());

    // Nothing was revoked or rotated.
    let stored = store.session(&family.id).await.unwrap().unwrap();
    assert!(!stored.revoked);
    assert_eq!(stored.generation, 0);
    assert_eq!(
        store.token(&hash).await.unwrap().unwrap().status,
        TokenStatus::Active
    );
    assert!(format!("{dead:?}").contains("127.0.0.1:1"));
    let with_password = RedisStore::new_lazy("redis://:hunter2@127.0.0.1:1/").unwrap();
    assert!(!format!("{with_password:?}").contains("hunter2"));
    store.revoke_session(&family.id).await.unwrap();
    store.purge(now + 7200, now + 7200).await.unwrap();
}

/// The model of the store contract (`common_store::model`), over random
/// sequences; each case under a prefix of its own, purged at its end.
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
    model::check(&runtime, 48, 25, true, || {
        Arc::new(
            store
                .clone()
                .with_prefix(format!("{}:", unique("tjwt-model-"))),
        )
    });
}
