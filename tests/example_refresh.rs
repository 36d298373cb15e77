//! The example server's refresh-token routes, driven through its router.
#![cfg(feature = "axum")]

#[path = "../examples/axum_server/main.rs"]
#[allow(dead_code)]
mod axum_server;
#[cfg(feature = "redis")]
#[path = "support/redis_cluster.rs"]
mod redis_cluster;

use std::{
    collections::HashMap,
    env::VarError,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use async_trait::async_trait;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_jwt_auth::refresh::{
    MemoryStore, Session,
    store::{RefreshStore, RotateOutcome, Rotation, StoreError, TokenHash, TokenRecord},
};

use axum_server::{AppState, Config, StoreKind, app};

fn config(store: Option<&str>) -> Config {
    let mut vars = HashMap::from([("JWT_SECRET", "refresh-example-secret-of-at-least-32-bytes")]);
    if let Some(store) = store {
        vars.insert("REFRESH_STORE", store);
    }
    Config::from_lookup(|name| match vars.get(name) {
        Some(value) => Ok((*value).to_owned()),
        None => std::env::var(name).map_err(|_| VarError::NotPresent),
    })
    .unwrap()
}

fn new_app() -> Router {
    app(AppState::new(&config(None)).unwrap())
}

#[test]
fn refresh_store_is_chosen_by_env() {
    assert_eq!(config(None).store, StoreKind::Memory);
    assert_eq!(config(Some("memory")).store, StoreKind::Memory);
    assert!(matches!(config(Some("redis")).store, StoreKind::Redis(_)));
    assert!(matches!(
        config(Some("postgres")).store,
        StoreKind::Postgres(_)
    ));
    let vars = HashMap::from([("REFRESH_STORE", "mongo")]);
    let error = Config::from_lookup(|name| {
        vars.get(name)
            .map(|v| (*v).to_owned())
            .ok_or(VarError::NotPresent)
    })
    .unwrap_err();
    assert!(
        error.contains("expected memory, redis or postgres"),
        "{error}"
    );
    // Redis Cluster: several comma-separated node URLs, or REDIS_CLUSTER=1.
    let redis = |vars: &[(&str, &str)]| {
        let mut all = HashMap::from([("REFRESH_STORE", "redis")]);
        all.extend(vars.iter().copied());
        Config::from_lookup(|name| {
            all.get(name)
                .map(|v| (*v).to_owned())
                .ok_or(VarError::NotPresent)
        })
        .map(|config| config.store)
    };
    assert_eq!(
        redis(&[("REDIS_URL", "redis://a:7000, redis://b:7001,redis://c:7002")]),
        Ok(StoreKind::RedisCluster(vec![
            "redis://a:7000".into(),
            "redis://b:7001".into(),
            "redis://c:7002".into()
        ]))
    );
    assert_eq!(
        redis(&[("REDIS_URL", "redis://a:7000"), ("REDIS_CLUSTER", "1")]),
        Ok(StoreKind::RedisCluster(vec!["redis://a:7000".into()]))
    );
    assert_eq!(
        redis(&[("REDIS_URL", "redis://a:7000"), ("REDIS_CLUSTER", "0")]),
        Ok(StoreKind::Redis("redis://a:7000".into()))
    );
    let error = redis(&[("REDIS_URL", "redis://a,redis://b"), ("REDIS_CLUSTER", "0")]).unwrap_err();
    assert!(error.contains("several nodes"), "{error}");
    let error = redis(&[("REDIS_URL", "redis://a,,redis://b")]).unwrap_err();
    assert!(error.contains("empty node URL"), "{error}");
    let error = redis(&[("REDIS_CLUSTER", "yes")]).unwrap_err();
    assert!(error.contains("REDIS_CLUSTER=\"yes\""), "{error}");
    assert_eq!(
        format!(
            "{:?}",
            StoreKind::RedisCluster(vec!["redis://:pw@h/".into()])
        ),
        "redis-cluster"
    );
    // The kind is logged, never the URL (it may carry a password).
    assert_eq!(
        format!("{:?}", StoreKind::Redis("redis://:pw@h/".into())),
        "redis"
    );
}

/// The whole refresh flow against a real store, when its feature is on and
/// its server is reachable (required when `CI=true`).
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn flow_against(store: &str) {
    let config = config(Some(store));
    let connected = match config.store.connect().await {
        Ok(connected) => connected,
        Err(error) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{store} is unreachable in CI: {error}")
        }
        Err(error) => {
            eprintln!("skipping the {store} flow: {error}");
            return;
        }
    };
    flow_on(&config, connected).await;
}

/// The whole refresh flow against the store of `config`, which must be up.
#[cfg(feature = "redis")]
async fn flow_with(config: &Config) {
    let connected = config.store.connect().await.expect("connect");
    flow_on(config, connected).await;
}

#[cfg(any(feature = "redis", feature = "postgres"))]
async fn flow_on(config: &Config, connected: Arc<dyn RefreshStore>) {
    let app = app(AppState::with_store(config, connected).unwrap());
    let (_, r0) = login(&app, "laptop").await;
    let (status, json) = send(&app, refresh(&r0)).await;
    assert_eq!(status, StatusCode::OK);
    let r1 = json["refresh_token"].as_str().unwrap().to_owned();
    let a1 = json["access_token"].as_str().unwrap().to_owned();
    let (status, _) = send(&app, authed("GET", "/users/me", &a1, None)).await;
    assert_eq!(status, StatusCode::OK);
    // Reuse revokes the family on the real store too.
    let (status, json) = send(&app, refresh(&r0)).await;
    assert_eq!((status, json), (StatusCode::BAD_REQUEST, invalid_grant()));
    let (status, _) = send(&app, refresh(&r1)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // On Redis and PostgreSQL the layer checks sessions with the logout
    // broadcast: the revocation reaches it through the store's announcement,
    // milliseconds later (tests/example_broadcast.rs holds it to 100 ms).
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, json) = send(&app, authed("GET", "/users/me", &a1, None)).await;
        if status != StatusCode::OK {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(
                json,
                json!({"error": "invalid_token", "error_description": "the session has ended"})
            );
            break;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "the session never ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn refresh_flow_on_redis() {
    flow_against("redis").await;
}

/// The example on a Redis Cluster of three masters started on loopback
/// (`REDIS_URL` with the three node URLs).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_flow_on_redis_cluster() {
    let cluster = match tokio::task::spawn_blocking(redis_cluster::RedisCluster::start)
        .await
        .unwrap()
    {
        Ok(cluster) => cluster,
        Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping the Redis Cluster flow: {error}");
            return;
        }
        Err(error) => panic!("{error}"),
    };
    let urls = cluster.urls().join(",");
    let vars = HashMap::from([
        ("JWT_SECRET", "refresh-example-secret-of-at-least-32-bytes"),
        ("REFRESH_STORE", "redis"),
        ("REDIS_URL", urls.as_str()),
    ]);
    let config = Config::from_lookup(|name| {
        vars.get(name)
            .map(|v| (*v).to_owned())
            .ok_or(VarError::NotPresent)
    })
    .unwrap();
    assert!(matches!(&config.store, StoreKind::RedisCluster(nodes) if nodes.len() == 3));
    flow_with(&config).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn refresh_flow_on_postgres() {
    flow_against("postgres").await;
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, json)
}

/// Logs in as the demo user from `device`: (access token, refresh token).
async fn login(app: &Router, device: &str) -> (String, String) {
    let request = Request::post("/users/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::USER_AGENT, device)
        .body(Body::from(
            "username=user%40example.com&password=user-password",
        ))
        .unwrap();
    let (status, json) = send(app, request).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    (
        json["access_token"].as_str().unwrap().to_owned(),
        json["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn refresh(token: &str) -> Request<Body> {
    Request::post("/users/refresh")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "refresh_token": token }).to_string()))
        .unwrap()
}

fn authed(method: &str, uri: &str, access: &str, body: Option<Value>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {access}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap()
}

fn invalid_grant() -> Value {
    json!({
        "error": "invalid_grant",
        "error_description": "the refresh token is invalid, expired or revoked",
    })
}

#[tokio::test]
async fn refresh_rotates_and_reuse_kills_the_newest_token() {
    let app = new_app();
    let (_, r0) = login(&app, "laptop").await;
    let (status, json) = send(&app, refresh(&r0)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["token_type"], "bearer");
    assert_eq!(json["expires_in"], 900);
    let r1 = json["refresh_token"].as_str().unwrap().to_owned();
    let a1 = json["access_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r0);
    let (status, me) = send(&app, authed("GET", "/users/me", &a1, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me, json!({"id": "user-1", "role": "USER"}));

    // R0 again: reuse. The family dies, R1 and A1 with it.
    let (status, json) = send(&app, refresh(&r0)).await;
    assert_eq!((status, json), (StatusCode::BAD_REQUEST, invalid_grant()));
    let (status, json) = send(&app, refresh(&r1)).await;
    assert_eq!((status, json), (StatusCode::BAD_REQUEST, invalid_grant()));
    let (status, json) = send(&app, authed("GET", "/users/me", &a1, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error_description"], "the session has ended");
}

#[tokio::test]
async fn unknown_and_malformed_refresh_requests() {
    let app = new_app();
    let (status, json) = send(&app, refresh(&"A".repeat(64))).await;
    assert_eq!((status, json), (StatusCode::BAD_REQUEST, invalid_grant()));
    let request = Request::post("/users/refresh")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"token\": 1}"))
        .unwrap();
    let (status, json) = send(&app, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["error"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refreshes_of_one_token_have_exactly_one_winner() {
    let app = new_app();
    let (_, r0) = login(&app, "laptop").await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let app = app.clone();
        let r0 = r0.clone();
        tasks.push(tokio::spawn(
            async move { send(&app, refresh(&r0)).await.0 },
        ));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST)
    );
}

#[tokio::test]
async fn logout_ends_one_session_and_logout_all_ends_every_one() {
    let app = new_app();
    let (laptop_access, laptop_refresh) = login(&app, "laptop").await;
    let (phone_access, phone_refresh) = login(&app, "phone").await;

    let (status, sessions) =
        send(&app, authed("GET", "/users/sessions", &phone_access, None)).await;
    assert_eq!(status, StatusCode::OK);
    // Both logins may fall in the same second: compare without order.
    let mut devices: Vec<(&str, bool)> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["device"].as_str().unwrap(),
                s["current"].as_bool().unwrap(),
            )
        })
        .collect();
    devices.sort();
    assert_eq!(devices, [("laptop", false), ("phone", true)]);

    // Logout of the laptop, with the laptop's tokens.
    let body = json!({ "refresh_token": laptop_refresh });
    let (status, _) = send(
        &app,
        authed("POST", "/users/logout", &laptop_access, Some(body)),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(&app, refresh(&laptop_refresh)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(&app, authed("GET", "/users/me", &laptop_access, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "logout bites at once");

    // The phone lives on.
    let (status, json) = send(&app, refresh(&phone_refresh)).await;
    assert_eq!(status, StatusCode::OK);
    let phone_access = json["access_token"].as_str().unwrap().to_owned();
    let phone_refresh = json["refresh_token"].as_str().unwrap().to_owned();
    let (status, sessions) =
        send(&app, authed("GET", "/users/sessions", &phone_access, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sessions.as_array().unwrap().len(), 1);

    // Logout everywhere.
    let (_, _) = login(&app, "tablet").await;
    let (status, json) = send(
        &app,
        authed("POST", "/users/logout-all", &phone_access, None),
    )
    .await;
    assert_eq!((status, json), (StatusCode::OK, json!({"revoked": 2})));
    let (status, _) = send(&app, refresh(&phone_refresh)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(&app, authed("GET", "/users/me", &phone_access, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_needs_an_access_token_and_cannot_end_another_users_session() {
    let app = new_app();
    let (_, user_refresh) = login(&app, "laptop").await;
    let request = Request::post("/users/logout")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({ "refresh_token": user_refresh }).to_string(),
        ))
        .unwrap();
    let (status, _) = send(&app, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let admin = Request::post("/users/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(
            "username=admin%40example.com&password=admin-password",
        ))
        .unwrap();
    let (_, json) = send(&app, admin).await;
    let admin_access = json["access_token"].as_str().unwrap();
    let body = json!({ "refresh_token": user_refresh });
    let (status, _) = send(
        &app,
        authed("POST", "/users/logout", admin_access, Some(body)),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The user's session is untouched.
    let (status, _) = send(&app, refresh(&user_refresh)).await;
    assert_eq!(status, StatusCode::OK);
}

/// `PUT /users` as the demo user: a new name and password, with the current one.
fn change_password(access: &str, current: &str, new: &str) -> Request<Body> {
    authed(
        "PUT",
        "/users",
        access,
        Some(json!({"name": "Ada", "password": new, "current_password": current})),
    )
}

#[tokio::test]
async fn a_password_change_ends_every_session_and_returns_a_fresh_pair() {
    let app = new_app();
    let (laptop_access, laptop_refresh) = login(&app, "laptop").await;
    let (phone_access, phone_refresh) = login(&app, "phone").await;
    let (status, json) = send(
        &app,
        change_password(&laptop_access, "user-password", "a-new-password"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        json["user"],
        json!({"id": "user-1", "email": "user@example.com", "name": "Ada", "role": "USER"})
    );
    assert_eq!(json["tokens"]["token_type"], "bearer");
    assert_eq!(json["tokens"]["expires_in"], 900);
    let fresh_access = json["tokens"]["access_token"].as_str().unwrap().to_owned();
    let fresh_refresh = json["tokens"]["refresh_token"].as_str().unwrap().to_owned();

    // Every earlier session is over, the caller's included (logout-all).
    for refresh_token in [&laptop_refresh, &phone_refresh] {
        let (status, json) = send(&app, refresh(refresh_token)).await;
        assert_eq!((status, json), (StatusCode::BAD_REQUEST, invalid_grant()));
    }
    for access in [&laptop_access, &phone_access] {
        let (status, json) = send(&app, authed("GET", "/users/me", access, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(json["error_description"], "the session has ended");
    }
    // The fresh pair is the one session left.
    let (status, sessions) =
        send(&app, authed("GET", "/users/sessions", &fresh_access, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert_eq!(sessions[0]["current"], true);
    let (status, _) = send(&app, refresh(&fresh_refresh)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_changes_nothing_without_it() {
    let app = new_app();
    let (access, refresh_token) = login(&app, "laptop").await;
    let missing = authed(
        "PUT",
        "/users",
        &access,
        Some(json!({"name": "Ada", "password": "a-new-password"})),
    );
    let (status, json) = send(&app, missing).await;
    assert_eq!(
        (status, json),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "current_password is required to change the password"})
        )
    );
    for wrong in ["admin-password", "", "USER-PASSWORD"] {
        let (status, json) = send(&app, change_password(&access, wrong, "a-new-password")).await;
        assert_eq!(
            (status, json),
            (
                StatusCode::FORBIDDEN,
                json!({"error": "invalid_grant", "error_description": "the current password is wrong"})
            ),
            "{wrong:?}"
        );
    }
    // Nothing changed: the name, the password, the session.
    let (status, me) = send(&app, authed("GET", "/users/me", &access, None)).await;
    assert_eq!(
        (status, me["id"].as_str()),
        (StatusCode::OK, Some("user-1"))
    );
    let (status, _) = send(&app, refresh(&refresh_token)).await;
    assert_eq!(status, StatusCode::OK);
    login(&app, "phone").await;
    let request = Request::post("/users/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(
            "username=user%40example.com&password=a-new-password",
        ))
        .unwrap();
    assert_eq!(send(&app, request).await.0, StatusCode::UNAUTHORIZED);
    let (admin_access, _) = login_as(&app, "admin%40example.com", "admin-password").await;
    let (_, users) = send(&app, authed("GET", "/admin/users", &admin_access, None)).await;
    assert_eq!(users[1]["name"], "Demo User");
}

/// Logs in as `username` (form-encoded): (access token, refresh token).
async fn login_as(app: &Router, username: &str, password: &str) -> (String, String) {
    let request = Request::post("/users/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "username={username}&password={password}"
        )))
        .unwrap();
    let (status, json) = send(app, request).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    (
        json["access_token"].as_str().unwrap().to_owned(),
        json["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// A memory store whose revocations fail while `down` is set.
#[derive(Debug)]
struct RevocationsFail {
    inner: MemoryStore,
    down: AtomicBool,
}

impl RevocationsFail {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::new("the store is down"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl RefreshStore for RevocationsFail {
    async fn create(
        &self,
        session: &Session,
        token: &TokenRecord,
        max_sessions: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.create(session, token, max_sessions).await
    }
    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        self.inner.rotate(rotation).await
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
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.inner.session(id).await
    }
    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.revoke_session(id).await
    }
    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.revoke_user(user_id).await
    }
    async fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        self.inner.sessions(user_id, now).await
    }
    async fn purge(&self, now: i64, revoked_before: i64) -> Result<u64, StoreError> {
        self.inner.purge(now, revoked_before).await
    }
}

#[tokio::test]
async fn a_password_change_whose_sessions_cannot_end_is_no_200_and_changes_nothing() {
    let store = Arc::new(RevocationsFail {
        inner: MemoryStore::new(),
        down: AtomicBool::new(false),
    });
    let app = app(AppState::with_store(&config(None), store.clone()).unwrap());
    let (access, refresh_token) = login(&app, "laptop").await;
    let (_, phone_refresh) = login(&app, "phone").await;
    store.down.store(true, Ordering::SeqCst);
    let (status, json) = send(
        &app,
        change_password(&access, "user-password", "a-new-password"),
    )
    .await;
    assert_eq!(
        (status, json),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "error": "temporarily_unavailable",
                "error_description": "the sessions could not be ended, so the password was not changed: try again later",
            })
        )
    );
    store.down.store(false, Ordering::SeqCst);
    // The password did not change, and the sessions live on.
    let (status, _) = send(&app, refresh(&phone_refresh)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&app, refresh(&refresh_token)).await;
    assert_eq!(status, StatusCode::OK);
    login(&app, "tablet").await;
    let request = Request::post("/users/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(
            "username=user%40example.com&password=a-new-password",
        ))
        .unwrap();
    assert_eq!(send(&app, request).await.0, StatusCode::UNAUTHORIZED);
    // Once the store is back, the change goes through.
    let (status, _) = send(
        &app,
        change_password(&access, "user-password", "a-new-password"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_login_racing_a_password_change_keeps_no_session() {
    let state = AppState::new(&config(None)).unwrap();
    let app = app(state.clone());
    let (access, _) = login(&app, "laptop").await;
    // A login with the old password has checked it, but not yet started its
    // session, when the change runs.
    let racer = state
        .users
        .authenticate("user@example.com", "user-password")
        .await
        .unwrap();
    let (status, _) = send(
        &app,
        change_password(&access, "user-password", "a-new-password"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Now the racing login finishes: its session was started under the old
    // credentials, so neither its refresh token nor its access token works.
    let late = state
        .issue_tokens(&racer, Some("racer"), None)
        .await
        .unwrap();
    let late_refresh = late.refresh_token.clone().unwrap();
    let (status, json) = send(&app, refresh(&late_refresh)).await;
    assert_eq!((status, json), (StatusCode::BAD_REQUEST, invalid_grant()));
    let (status, json) = send(&app, authed("GET", "/users/me", &late.access_token, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error_description"], "the session has ended");
    // And the refusal sticks: the session is revoked, not merely skipped.
    let (status, _) = send(&app, refresh(&late_refresh)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
