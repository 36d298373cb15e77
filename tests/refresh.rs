//! Refresh-token rotation over the in-memory store: the conformance suite,
//! the protocol, and the endpoint's responses.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use http::{Request, Response, StatusCode, header};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_jwt_auth::{
    Algorithm, AuthErrorKind, JwtAuthLayer, SigningKey, TokenIssuer, VerificationKey, Verifier,
    refresh::{
        DEFAULT_MAX_SESSIONS, MemoryStore, RefreshEndpoint, RefreshErrorKind, RefreshToken,
        RefreshTokens, ReuseEvent, Session, Subject, conformance,
        store::{
            RefreshStore, RotateOutcome, Rotation, StoreError, TokenHash, TokenRecord, TokenStatus,
        },
    },
};

const SECRET: &[u8] = b"refresh-tests-secret-of-32-bytes!!";

fn issuer() -> TokenIssuer {
    TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
}

fn tokens(store: Arc<dyn RefreshStore>) -> RefreshTokens {
    RefreshTokens::new(store, issuer())
}

async fn is_revoked(store: &dyn RefreshStore, family: &str) -> bool {
    store.session(family).await.unwrap().unwrap().revoked
}

async fn same_user(user: String) -> Result<Option<Subject>, StoreError> {
    Ok(Some(Subject::new(user).role("USER")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    conformance::run(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn login_then_refresh_rotates() {
    let store = Arc::new(MemoryStore::new());
    let tokens = tokens(store.clone());
    let login = tokens
        .login(Subject::new("user-1").role("USER"), Some("laptop"))
        .await
        .unwrap();
    assert_eq!(
        login.refresh_token.as_str().len(),
        64,
        "the session id's 128 bits, then 256 random bits, base64url"
    );
    assert_eq!(
        RefreshToken::session_id_of(login.refresh_token.as_str()).as_deref(),
        Some(login.session.id.as_str()),
        "the token names its session"
    );
    assert_eq!(login.session.device.as_deref(), Some("laptop"));

    let next = tokens
        .refresh(login.refresh_token.as_str(), same_user)
        .await
        .unwrap();
    assert_ne!(next.refresh_token, login.refresh_token);
    assert_eq!(next.session.id, login.session.id, "same family");

    // The access token carries the family as `sid` and the role.
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .build()
        .unwrap();
    let claims = verifier
        .verify::<serde_json::Value>(next.access_token.as_str())
        .unwrap();
    assert_eq!(
        claims.registered().sid.as_deref(),
        Some(login.session.id.as_str())
    );
    assert_eq!(claims["role"], "USER");
    assert_eq!(claims.subject(), Some("user-1"));
}

#[tokio::test]
async fn reuse_revokes_the_family_including_the_newest_token() {
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let tokens = RefreshTokens::builder(Arc::new(MemoryStore::new()), issuer())
        .on_reuse(move |event: &ReuseEvent| seen.lock().unwrap().push(event.clone()))
        .build()
        .unwrap();
    let login = tokens
        .login(Subject::new("u"), Some("laptop"))
        .await
        .unwrap();
    let second = tokens
        .refresh(login.refresh_token.as_str(), same_user)
        .await
        .unwrap();
    let third = tokens
        .refresh(second.refresh_token.as_str(), same_user)
        .await
        .unwrap();
    assert!(events.lock().unwrap().is_empty(), "no reuse yet");

    // The login token, spent two rotations ago, comes back.
    let reuse = tokens
        .refresh(login.refresh_token.as_str(), same_user)
        .await
        .unwrap_err();
    assert_eq!(
        reuse.kind(),
        RefreshErrorKind::Reused,
        "a typed security event"
    );
    assert_eq!(
        reuse.to_response().status(),
        400,
        "still invalid_grant to the client"
    );
    {
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 1, "the hook ran once");
        let event = &events[0];
        assert_eq!(event.session_id, login.session.id);
        assert_eq!(event.user_id, "u");
        assert_eq!(event.device.as_deref(), Some("laptop"));
        assert_eq!((event.generation, event.newest_generation), (0, 2));
    }

    // The newest token died with its session: refused, but no second event.
    let newest = tokens
        .refresh(third.refresh_token.as_str(), same_user)
        .await
        .unwrap_err();
    assert_eq!(newest.kind(), RefreshErrorKind::InvalidGrant);
    assert_eq!(events.lock().unwrap().len(), 1);
    assert!(tokens.sessions("u").await.unwrap().is_empty());
}

#[tokio::test]
async fn grace_window_gives_the_immediate_predecessor_a_sibling() {
    let tokens = RefreshTokens::builder(Arc::new(MemoryStore::new()), issuer())
        .grace_period(Duration::from_secs(30))
        .build()
        .unwrap();
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let first = tokens
        .refresh(login.refresh_token.as_str(), same_user)
        .await
        .unwrap();
    // The response was lost: the client retries with the same token.
    let retry = tokens
        .refresh(login.refresh_token.as_str(), same_user)
        .await
        .unwrap();
    assert_eq!(retry.session.id, first.session.id);
    // Both children work; the session lives on.
    let after = tokens
        .refresh(retry.refresh_token.as_str(), same_user)
        .await
        .unwrap();
    // Now the login token is an older ancestor: no grace, reuse.
    assert!(
        tokens
            .refresh(login.refresh_token.as_str(), same_user)
            .await
            .is_err()
    );
    assert!(
        tokens
            .refresh(after.refresh_token.as_str(), same_user)
            .await
            .is_err(),
        "reuse revoked the family"
    );
}

#[tokio::test]
async fn expired_and_unknown_tokens_are_invalid_grants_that_touch_nothing() {
    let store = Arc::new(MemoryStore::new());
    let expired = RefreshTokens::builder(store.clone(), issuer())
        .session_lifetime(Duration::ZERO)
        .build()
        .unwrap();
    let login = expired.login(Subject::new("u"), None).await.unwrap();
    let error = expired
        .refresh(login.refresh_token.as_str(), same_user)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), RefreshErrorKind::InvalidGrant);
    let family = store.session(&login.session.id).await.unwrap().unwrap();
    assert!(!family.revoked);
    assert_eq!(family.generation, 0);

    let tokens = tokens(store.clone());
    let live = tokens.login(Subject::new("v"), None).await.unwrap();
    // The secret part of a live token under its real session id, and the
    // live token's secret under another session's id: both unknown.
    let live_token = live.refresh_token.as_str();
    let other = tokens.login(Subject::new("w"), None).await.unwrap();
    let before = store.token_hashes().len();
    for bogus in [
        format!("{}{}", &live_token[..22], "A".repeat(42)),
        format!(
            "{}{}",
            &other.refresh_token.as_str()[..22],
            &live_token[22..]
        ),
        "x".repeat(64),
        "x".repeat(43),
        String::new(),
        "not a token".into(),
        "a".repeat(10_000),
    ] {
        let error = tokens.refresh(&bogus, same_user).await.unwrap_err();
        assert_eq!(error.kind(), RefreshErrorKind::InvalidGrant);
    }
    assert_eq!(store.token_hashes().len(), before, "nothing stored");
    assert!(!is_revoked(&*store, &live.session.id).await);
}

#[tokio::test]
async fn a_failed_user_lookup_or_signing_spends_nothing() {
    let store = Arc::new(MemoryStore::new());
    let tokens = tokens(store.clone());
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let presented = tokens.hash(login.refresh_token.as_str());

    // The application's user database is down: 503, the token unspent.
    let error = tokens
        .refresh(login.refresh_token.as_str(), |_| async {
            Err(StoreError::new("users database down"))
        })
        .await
        .unwrap_err();
    assert_eq!(error.kind(), RefreshErrorKind::Unavailable);
    // The access token cannot be signed (a reserved claim): nothing spent either.
    let error = tokens
        .refresh(login.refresh_token.as_str(), |u| async move {
            Ok(Some(Subject::new(u).claim("aud", "forged")))
        })
        .await
        .unwrap_err();
    assert_eq!(error.kind(), RefreshErrorKind::Issue);
    let token = store
        .token(&login.session.id, &presented)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.status, TokenStatus::Active);
    assert_eq!(store.token_hashes().len(), 1, "no child stored");

    // The retry works and is not mistaken for reuse.
    tokens
        .refresh(login.refresh_token.as_str(), same_user)
        .await
        .unwrap();
    assert!(!is_revoked(&*store, &login.session.id).await);
}

#[tokio::test]
async fn a_deleted_user_ends_the_session() {
    let store = Arc::new(MemoryStore::new());
    let tokens = tokens(store.clone());
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let error = tokens
        .refresh(login.refresh_token.as_str(), |_| async { Ok(None) })
        .await
        .unwrap_err();
    assert_eq!(error.kind(), RefreshErrorKind::InvalidGrant);
    assert!(is_revoked(&*store, &login.session.id).await);
}

#[tokio::test]
async fn logout_one_device_leaves_the_other_and_logout_all_ends_both() {
    let tokens = tokens(Arc::new(MemoryStore::new()));
    let laptop = tokens
        .login(Subject::new("u"), Some("laptop"))
        .await
        .unwrap();
    let phone = tokens
        .login(Subject::new("u"), Some("phone"))
        .await
        .unwrap();
    let devices: Vec<_> = tokens
        .sessions("u")
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.device.unwrap())
        .collect();
    assert_eq!(devices.len(), 2);

    // Another user cannot log this session out.
    assert!(
        !tokens
            .logout("intruder", laptop.refresh_token.as_str())
            .await
            .unwrap()
    );
    assert!(
        tokens
            .logout("u", laptop.refresh_token.as_str())
            .await
            .unwrap()
    );
    assert!(
        tokens
            .refresh(laptop.refresh_token.as_str(), same_user)
            .await
            .is_err()
    );
    let phone2 = tokens
        .refresh(phone.refresh_token.as_str(), same_user)
        .await
        .unwrap();

    assert_eq!(tokens.logout_all("u").await.unwrap(), 1);
    assert!(
        tokens
            .refresh(phone2.refresh_token.as_str(), same_user)
            .await
            .is_err()
    );
    assert!(tokens.sessions("u").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_login_beyond_the_session_cap_revokes_the_oldest_session() {
    // The default cap: 100 sessions per user.
    let tokens = tokens(Arc::new(MemoryStore::new()));
    // Logins within one second are ordered by id: which one is the oldest
    // is not known here, only how many stay.
    for _ in 0..=DEFAULT_MAX_SESSIONS {
        tokens.login(Subject::new("u"), None).await.unwrap();
    }
    let other = tokens.login(Subject::new("other"), None).await.unwrap();
    let live = tokens.sessions("u").await.unwrap();
    assert_eq!(live.len(), DEFAULT_MAX_SESSIONS as usize);
    assert_eq!(
        tokens.logout_all("u").await.unwrap(),
        u64::from(DEFAULT_MAX_SESSIONS)
    );
    assert!(
        tokens
            .refresh(other.refresh_token.as_str(), same_user)
            .await
            .is_ok()
    );

    // A cap of 1: every login ends the one before, whose tokens die with it.
    let store = Arc::new(MemoryStore::new());
    let single = RefreshTokens::builder(store.clone(), issuer())
        .max_sessions(1)
        .build()
        .unwrap();
    let laptop = single
        .login(Subject::new("u"), Some("laptop"))
        .await
        .unwrap();
    let phone = single
        .login(Subject::new("u"), Some("phone"))
        .await
        .unwrap();
    assert!(is_revoked(&*store, &laptop.session.id).await);
    let error = single
        .refresh(laptop.refresh_token.as_str(), same_user)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), RefreshErrorKind::InvalidGrant);
    let sessions = single.sessions("u").await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].id, phone.session.id);
    assert!(
        single
            .refresh(phone.refresh_token.as_str(), same_user)
            .await
            .is_ok()
    );

    assert!(
        RefreshTokens::builder(store, issuer())
            .max_sessions(0)
            .build()
            .is_err(),
        "a cap of 0 is a configuration error"
    );
}

#[test]
fn short_hash_keys_are_refused() {
    let store: Arc<dyn RefreshStore> = Arc::new(MemoryStore::new());
    assert!(
        RefreshTokens::builder(store.clone(), issuer())
            .hash_key([7u8; 31])
            .build()
            .is_err()
    );
    let keyed = RefreshTokens::builder(store.clone(), issuer())
        .hash_key([7u8; 32])
        .build()
        .unwrap();
    let plain = tokens(store);
    assert_ne!(keyed.hash("x"), plain.hash("x"), "the key changes the hash");
}

#[tokio::test]
async fn purge_removes_dead_sessions() {
    let store = Arc::new(MemoryStore::new());
    let short = RefreshTokens::builder(store.clone(), issuer())
        .session_lifetime(Duration::ZERO)
        .build()
        .unwrap();
    short.login(Subject::new("u"), None).await.unwrap();
    let live = tokens(store.clone());
    live.login(Subject::new("u"), None).await.unwrap();
    assert_eq!(live.purge().await.unwrap(), 1);
    assert_eq!(store.token_hashes().len(), 1);
}

/// A store whose every call fails, wrapping a real one to check it is untouched.
#[derive(Debug)]
struct Down {
    inner: Arc<MemoryStore>,
    down: AtomicBool,
}

impl Down {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::new("connection refused"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl RefreshStore for Down {
    async fn create(
        &self,
        f: &Session,
        t: &TokenRecord,
        max: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.check()?;
        self.inner.create(f, t, max).await
    }
    async fn rotate(&self, r: &Rotation) -> Result<RotateOutcome, StoreError> {
        self.check()?;
        self.inner.rotate(r).await
    }
    async fn allow_retry(
        &self,
        session_id: &str,
        h: &TokenHash,
        until: i64,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.allow_retry(session_id, h, until).await
    }
    async fn token(
        &self,
        session_id: &str,
        h: &TokenHash,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.check()?;
        self.inner.token(session_id, h).await
    }
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.check()?;
        self.inner.session(id).await
    }
    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.revoke_session(id).await
    }
    async fn revoke_user(&self, u: &str) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.revoke_user(u).await
    }
    async fn sessions(&self, u: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        self.check()?;
        self.inner.sessions(u, now).await
    }
    async fn purge(&self, now: i64, before: i64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.purge(now, before).await
    }
}

async fn body_json(response: Response<String>) -> serde_json::Value {
    serde_json::from_str(response.body()).unwrap()
}

fn refresh_request(body: &str) -> Request<String> {
    Request::post("/refresh")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_owned())
        .unwrap()
}

#[tokio::test]
async fn store_failure_is_503_and_revokes_nothing() {
    let memory = Arc::new(MemoryStore::new());
    let store = Arc::new(Down {
        inner: memory.clone(),
        down: AtomicBool::new(false),
    });
    let tokens = tokens(store.clone());
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    store.down.store(true, Ordering::SeqCst);

    let endpoint = RefreshEndpoint::new(tokens.clone(), same_user);
    let body = format!(r#"{{"refresh_token":"{}"}}"#, login.refresh_token.as_str());
    let response = endpoint
        .clone()
        .oneshot(refresh_request(&body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body_json(response).await,
        serde_json::json!({"error": "temporarily_unavailable", "error_description": "try again later"})
    );
    // Nothing was revoked or rotated; once the store is back the token works.
    let token = memory
        .token(
            &login.session.id,
            &tokens.hash(login.refresh_token.as_str()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.status, TokenStatus::Active);
    store.down.store(false, Ordering::SeqCst);
    let response = endpoint.oneshot(refresh_request(&body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn endpoint_answers_in_oauth_shapes() {
    let store = Arc::new(MemoryStore::new());
    let tokens = tokens(store.clone());
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let endpoint = RefreshEndpoint::new(tokens.clone(), same_user);

    let body = format!(r#"{{"refresh_token":"{}"}}"#, login.refresh_token.as_str());
    let response = endpoint
        .clone()
        .oneshot(refresh_request(&body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let json = body_json(response).await;
    assert_eq!(json["token_type"], "bearer");
    assert_eq!(json["expires_in"], 900);
    assert!(json["access_token"].as_str().unwrap().split('.').count() == 3);
    assert_eq!(json["refresh_token"].as_str().unwrap().len(), 64);

    let invalid_grant = serde_json::json!({
        "error": "invalid_grant",
        "error_description": "the refresh token is invalid, expired or revoked",
    });
    // Reuse of the first token: 400 invalid_grant.
    let response = endpoint
        .clone()
        .oneshot(refresh_request(&body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(response).await, invalid_grant);
    // Unknown token.
    let response = endpoint
        .clone()
        .oneshot(refresh_request(&format!(
            r#"{{"refresh_token":"{}"}}"#,
            "A".repeat(64)
        )))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(response).await, invalid_grant);

    let hashes = store.token_hashes().len();
    for bad in ["", "{}", "not json", r#"{"refresh_token": 5}"#, "[]"] {
        let response = endpoint
            .clone()
            .oneshot(refresh_request(bad))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(
            body_json(response).await["error"],
            "invalid_request",
            "{bad:?}"
        );
    }
    let huge = format!(r#"{{"refresh_token":"{}"}}"#, "a".repeat(10_000));
    let response = endpoint
        .clone()
        .oneshot(refresh_request(&huge))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        store.token_hashes().len(),
        hashes,
        "bad requests store nothing"
    );

    let get = Request::get("/refresh").body(String::new()).unwrap();
    let response = endpoint.oneshot(get).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "POST");
}

fn form_request(body: &str) -> Request<String> {
    Request::post("/refresh")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .unwrap()
}

#[tokio::test]
async fn endpoint_accepts_the_rfc6749_form_and_checks_grant_type() {
    let store = Arc::new(MemoryStore::new());
    let tokens = tokens(store.clone());
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let endpoint = RefreshEndpoint::new(tokens, same_user);
    let token = login.refresh_token.as_str();

    let hashes = store.token_hashes().len();
    let unsupported = serde_json::json!({
        "error": "unsupported_grant_type",
        "error_description": "only grant_type=refresh_token is supported",
    });
    for (request, expected) in [
        (
            form_request(&format!("grant_type=password&refresh_token={token}")),
            unsupported.clone(),
        ),
        (
            refresh_request(&format!(
                r#"{{"grant_type":"client_credentials","refresh_token":"{token}"}}"#
            )),
            unsupported,
        ),
        (
            form_request(&format!("refresh_token={token}")),
            serde_json::json!({"error": "invalid_request", "error_description": "grant_type is required"}),
        ),
        (
            form_request(&format!(
                "grant_type=refresh_token&refresh_token={token}&refresh_token={token}"
            )),
            serde_json::json!({"error": "invalid_request", "error_description": "a parameter is repeated"}),
        ),
        (
            form_request("grant_type=refresh_token"),
            serde_json::json!({"error": "invalid_request", "error_description": "refresh_token is required"}),
        ),
    ] {
        let response = endpoint.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_json(response).await, expected);
    }
    assert_eq!(
        store.token_hashes().len(),
        hashes,
        "nothing stored or spent"
    );

    // The form, then JSON with an explicit grant_type.
    let response = endpoint
        .clone()
        .oneshot(form_request(&format!(
            "grant_type=refresh_token&refresh_token={token}"
        )))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let next = body_json(response).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = endpoint
        .oneshot(refresh_request(&format!(
            r#"{{"grant_type":"refresh_token","refresh_token":"{next}"}}"#
        )))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn cookie_names_are_checked_when_the_endpoint_is_built() {
    let tokens = tokens(Arc::new(MemoryStore::new()));
    for bad in ["", "rt token", "rt;", "rt=", "r\u{e9}t"] {
        let built = RefreshEndpoint::builder(tokens.clone(), same_user)
            .cookie(bad)
            .build();
        assert!(built.is_err(), "{bad:?} is not a cookie name");
    }
    for good in ["rt", "__Host-refresh_token.v1"] {
        let built = RefreshEndpoint::builder(tokens.clone(), same_user)
            .cookie(good)
            .build();
        assert!(built.is_ok(), "{good:?} is a cookie name");
    }
}

#[tokio::test]
async fn endpoint_reads_and_sets_the_cookie() {
    let tokens = tokens(Arc::new(MemoryStore::new()));
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let endpoint = RefreshEndpoint::builder(tokens, same_user)
        .cookie("rt")
        .build()
        .unwrap();
    let request = Request::post("/refresh")
        .header("x-requested-with", "fetch")
        .header(
            header::COOKIE,
            format!("other=1; rt={}", login.refresh_token.as_str()),
        )
        .body(String::new())
        .unwrap();
    let response = endpoint.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let json = body_json(response).await;
    assert_eq!(json["token_type"], "bearer");
    assert!(
        json.get("refresh_token").is_none(),
        "the body never carries it: {json}"
    );
    let (value, attributes) = cookie.split_once(';').unwrap();
    let new_token = value.strip_prefix("rt=").unwrap();
    assert_eq!(new_token.len(), 64);
    assert!(attributes.contains("HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age="));

    // The cookie's new token works; a repeated cookie is refused.
    let request = Request::post("/refresh")
        .header("x-requested-with", "fetch")
        .header(header::COOKIE, format!("rt={new_token}"))
        .body(String::new())
        .unwrap();
    let response = endpoint.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let request = Request::post("/refresh")
        .header("x-requested-with", "fetch")
        .header(header::COOKIE, format!("rt={new_token}; rt=planted"))
        .body(String::new())
        .unwrap();
    let response = endpoint.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(response).await["error"], "invalid_request");
}

/// A cookie-mode refresh request with these raw `Cookie` header values and
/// the default CSRF header.
fn cookie_refresh(values: &[&[u8]]) -> Request<String> {
    let mut request = Request::post("/refresh")
        .header("x-requested-with", "fetch")
        .body(String::new())
        .unwrap();
    for value in values {
        request.headers_mut().append(
            header::COOKIE,
            http::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    request
}

#[tokio::test]
async fn a_non_ascii_cookie_does_not_hide_the_refresh_cookie() {
    let store = Arc::new(MemoryStore::new());
    let tokens = tokens(store.clone());
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let endpoint = RefreshEndpoint::builder(tokens, same_user)
        .cookie("rt")
        .build()
        .unwrap();
    let ours = format!("rt={}", login.refresh_token.as_str()).into_bytes();

    // A planted duplicate with a non-ASCII byte is refused, never skipped;
    // nothing is spent.
    let hashes = store.token_hashes().len();
    for values in [
        vec![ours.as_slice(), &b"rt=\xc3\xa9"[..]],
        vec![&b"rt=\xc3\xa9"[..], ours.as_slice()],
    ] {
        let response = endpoint
            .clone()
            .oneshot(cookie_refresh(&values))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body_json(response).await,
            serde_json::json!({"error": "invalid_request", "error_description": "the refresh-token cookie is repeated"})
        );
    }
    // The wanted cookie with a non-ASCII byte, or a byte outside the
    // cookie-octets, is malformed.
    for value in [&b"rt=abc\xff"[..], b"rt=a,b", b"rt=\"abc", b"rt=a\\b"] {
        let response = endpoint
            .clone()
            .oneshot(cookie_refresh(&[value]))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body_json(response).await,
            serde_json::json!({"error": "invalid_request", "error_description": "the refresh-token cookie is malformed"}),
            "{:?}",
            String::from_utf8_lossy(value)
        );
    }
    assert_eq!(store.token_hashes().len(), hashes, "nothing spent");

    // A non-ASCII cookie beside ours, in the same header or another one,
    // does not hide it.
    let mut raw = b"planted=caf\xc3\xa9; ".to_vec();
    raw.extend_from_slice(&ours);
    let response = endpoint
        .clone()
        .oneshot(cookie_refresh(&[raw.as_slice()]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    let next = cookie.split(';').next().unwrap().to_owned();
    let next_value = next.strip_prefix("rt=").unwrap().to_owned();
    let quoted = format!(" rt = \"{next_value}\" ").into_bytes();
    let response = endpoint
        .oneshot(cookie_refresh(&[b"\xfe=\xff", quoted.as_slice()]))
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the name is trimmed, the value trimmed and unquoted"
    );
}

/// Whether the refresh token of `login` is still active (nothing spent).
async fn still_active(store: &MemoryStore, tokens: &RefreshTokens, token: &str) -> bool {
    let session_id = RefreshToken::session_id_of(token).expect("a refresh token");
    store
        .token(&session_id, &tokens.hash(token))
        .await
        .unwrap()
        .is_some_and(|record| record.status == TokenStatus::Active)
}

/// A cookie-mode refresh request with the cookie `rt={token}` and `headers`.
fn cookie_request(token: &str, headers: &[(&str, &str)]) -> Request<String> {
    let mut request = Request::post("/refresh")
        .header(header::COOKIE, format!("rt={token}"))
        .body(String::new())
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    request
}

#[tokio::test]
async fn cookie_refresh_needs_the_csrf_header_and_spends_nothing_without_it() {
    let store = Arc::new(MemoryStore::new());
    let tokens = tokens(store.clone());
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let token = login.refresh_token.as_str();
    let endpoint = RefreshEndpoint::builder(tokens.clone(), same_user)
        .cookie("rt")
        .build()
        .unwrap();
    let hashes = store.token_hashes().len();
    for headers in [
        &[][..],
        &[("x-requested-with", "")],
        &[("x-requested-wit", "fetch")],
        &[("content-type", "application/json")],
    ] {
        let response = endpoint
            .clone()
            .oneshot(cookie_request(token, headers))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert!(response.headers().get(header::SET_COOKIE).is_none());
        assert_eq!(
            body_json(response).await,
            serde_json::json!({
                "error": "invalid_request",
                "error_description": "the refresh-token cookie needs the X-Requested-With header",
            })
        );
    }
    assert_eq!(store.token_hashes().len(), hashes, "nothing stored");
    assert!(still_active(&store, &tokens, token).await, "nothing spent");

    // With the header, the same token refreshes.
    let response = endpoint
        .oneshot(cookie_request(
            token,
            &[("x-requested-with", "XMLHttpRequest")],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn cookie_refresh_refuses_form_and_text_bodies() {
    let store = Arc::new(MemoryStore::new());
    let tokens = tokens(store.clone());
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let token = login.refresh_token.as_str();
    let endpoint = RefreshEndpoint::builder(tokens.clone(), same_user)
        .cookie("rt")
        .build()
        .unwrap();
    // What a cross-site HTML form (or a no-cors fetch) can send without a
    // CORS preflight, with the CSRF header added to show that the content
    // type alone is refused.
    for (content_type, body) in [
        (
            "application/x-www-form-urlencoded",
            "grant_type=refresh_token".to_owned(),
        ),
        (
            "Application/X-WWW-Form-Urlencoded; charset=utf-8",
            "grant_type=refresh_token".to_owned(),
        ),
        ("multipart/form-data; boundary=x", "--x--".to_owned()),
        ("text/plain", String::new()),
        ("text/plain;charset=UTF-8", "{}".to_owned()),
        // A form carrying the token in the body is refused too in cookie mode.
        (
            "application/x-www-form-urlencoded",
            format!("grant_type=refresh_token&refresh_token={token}"),
        ),
    ] {
        let mut request = cookie_request(
            token,
            &[
                ("x-requested-with", "fetch"),
                ("content-type", content_type),
            ],
        );
        *request.body_mut() = body;
        let response = endpoint.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{content_type}");
        assert_eq!(
            body_json(response).await,
            serde_json::json!({
                "error": "invalid_request",
                "error_description": "a cookie-mode refresh takes a JSON body or none, not a form or text/plain",
            }),
            "{content_type}"
        );
    }
    assert!(still_active(&store, &tokens, token).await, "nothing spent");

    // JSON or no body at all is what cookie mode takes.
    let mut request = cookie_request(
        token,
        &[
            ("x-requested-with", "fetch"),
            ("content-type", "application/json"),
        ],
    );
    *request.body_mut() = "{}".to_owned();
    let response = endpoint.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

const ORIGIN_REFUSED: &str = "the request's origin may not use the refresh-token cookie";

/// Sends `request` to `endpoint`: the status and the JSON body.
async fn status_and_json(
    endpoint: &RefreshEndpoint<fn(String) -> SameUserFuture>,
    request: Request<String>,
) -> (StatusCode, serde_json::Value) {
    let response = endpoint.clone().oneshot(request).await.unwrap();
    (response.status(), body_json(response).await)
}

type SameUserFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Option<Subject>, StoreError>> + Send>,
>;

fn same_user_boxed(user: String) -> SameUserFuture {
    Box::pin(same_user(user))
}

fn origin_refused() -> (StatusCode, serde_json::Value) {
    (
        StatusCode::FORBIDDEN,
        serde_json::json!({"error": "invalid_request", "error_description": ORIGIN_REFUSED}),
    )
}

#[tokio::test]
async fn cookie_refresh_checks_fetch_metadata_and_allowed_origins() {
    let store = Arc::new(MemoryStore::new());
    let tokens = tokens(store.clone());
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let token = login.refresh_token.as_str();
    let lookup = same_user_boxed as fn(String) -> SameUserFuture;
    let header = ("x-requested-with", "fetch");

    // Without an allow-list: another site, or a sibling origin of this
    // site, is refused even with the header; the header alone is not enough.
    let plain = RefreshEndpoint::builder(tokens.clone(), lookup)
        .cookie("rt")
        .build()
        .unwrap();
    for headers in [
        vec![header, ("sec-fetch-site", "cross-site")],
        vec![
            header,
            ("sec-fetch-site", "same-site"),
            ("origin", "https://evil.example.com"),
        ],
        vec![header, ("sec-fetch-site", "Same-Site")],
        vec![
            header,
            ("origin", "https://a.example"),
            ("origin", "https://b.example"),
        ],
    ] {
        assert_eq!(
            status_and_json(&plain, cookie_request(token, &headers)).await,
            origin_refused(),
            "{headers:?}"
        );
    }

    // With an allow-list: an unlisted Origin is refused, a listed sibling
    // passes.
    let listed = RefreshEndpoint::builder(tokens.clone(), lookup)
        .cookie("rt")
        .allowed_origins(["https://app.example.com", "http://localhost:3000"])
        .build()
        .unwrap();
    for headers in [
        vec![header, ("origin", "https://evil.example.com")],
        vec![header, ("origin", "null")],
        vec![header, ("origin", "https://app.example.com.evil.test")],
        vec![header, ("origin", "HTTPS://APP.EXAMPLE.COM")],
        vec![header, ("sec-fetch-site", "same-site")],
        vec![
            header,
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.example.com"),
        ],
    ] {
        assert_eq!(
            status_and_json(&listed, cookie_request(token, &headers)).await,
            origin_refused(),
            "{headers:?}"
        );
    }
    // A listed origin still needs the header.
    let (status, json) = status_and_json(
        &listed,
        cookie_request(token, &[("origin", "https://app.example.com")]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        json["error_description"],
        "the refresh-token cookie needs the X-Requested-With header"
    );

    // Origin only: the header is not needed, Origin is.
    let origin_only = RefreshEndpoint::builder(tokens.clone(), lookup)
        .cookie("rt")
        .allowed_origins(["https://app.example.com"])
        .without_csrf_header()
        .build()
        .unwrap();
    assert_eq!(
        status_and_json(&origin_only, cookie_request(token, &[])).await,
        origin_refused()
    );
    assert_eq!(
        status_and_json(
            &origin_only,
            cookie_request(token, &[("sec-fetch-site", "same-origin")])
        )
        .await,
        origin_refused()
    );

    // A custom header name replaces X-Requested-With.
    let custom = RefreshEndpoint::builder(tokens.clone(), lookup)
        .cookie("rt")
        .csrf_header("X-CSRF")
        .build()
        .unwrap();
    assert_eq!(
        status_and_json(&custom, cookie_request(token, &[header])).await,
        (
            StatusCode::FORBIDDEN,
            serde_json::json!({
                "error": "invalid_request",
                "error_description": "the refresh-token cookie needs the X-CSRF header",
            })
        )
    );
    assert!(still_active(&store, &tokens, token).await, "nothing spent");

    // What passes: the token refreshes once through each endpoint, in turn.
    let mut token = token.to_owned();
    for (endpoint, headers) in [
        (&plain, vec![header, ("sec-fetch-site", "same-origin")]),
        (&plain, vec![header, ("origin", "https://anything.example")]),
        (
            &listed,
            vec![
                header,
                ("sec-fetch-site", "same-site"),
                ("origin", "https://app.example.com"),
            ],
        ),
        (&listed, vec![header]),
        (&origin_only, vec![("origin", "https://app.example.com")]),
        (&custom, vec![("x-csrf", "1")]),
    ] {
        let response = endpoint
            .clone()
            .oneshot(cookie_request(&token, &headers))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{headers:?}");
        let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
        token = cookie
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("rt=")
            .unwrap()
            .to_owned();
    }

    // A token in the body is not ambient: no header or origin is needed.
    let mut request = refresh_request(&format!(r#"{{"refresh_token":"{token}"}}"#));
    request.headers_mut().insert(
        "sec-fetch-site",
        http::HeaderValue::from_static("cross-site"),
    );
    let response = plain.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn csrf_settings_are_checked_when_the_endpoint_is_built() {
    let tokens = tokens(Arc::new(MemoryStore::new()));
    let builder = || RefreshEndpoint::builder(tokens.clone(), same_user);
    let error =
        |built: Result<_, tower_jwt_auth::ConfigError>| built.map(|_| ()).unwrap_err().to_string();

    // Without cookie mode the settings mean nothing: a mistake.
    assert!(error(builder().csrf_header("x-csrf").build()).contains("cookie mode only"));
    assert!(
        error(
            builder()
                .allowed_origins(["https://app.example.com"])
                .build()
        )
        .contains("cookie mode only")
    );
    assert!(error(builder().without_csrf_header().build()).contains("cookie mode only"));

    // Cookie mode needs a defence.
    assert!(
        error(builder().cookie("rt").without_csrf_header().build())
            .contains("needs a CSRF defence")
    );
    assert!(
        builder()
            .cookie("rt")
            .csrf_header("x-csrf")
            .without_csrf_header()
            .build()
            .is_err()
    );

    for bad in [
        "",
        "x csrf",
        "content-type",
        "Accept",
        "origin",
        "cookie",
        "Sec-Fetch-Site",
        "proxy-x",
        "range",
    ] {
        assert!(
            builder().cookie("rt").csrf_header(bad).build().is_err(),
            "{bad:?} is no CSRF header"
        );
    }
    assert!(
        builder()
            .cookie("rt")
            .allowed_origins(Vec::<String>::new())
            .build()
            .is_err(),
        "an empty list"
    );
    for bad in [
        "*",
        "null",
        "https://app.example.com/",
        "app.example.com",
        "https://App.example.com",
    ] {
        assert!(
            builder()
                .cookie("rt")
                .allowed_origins([bad])
                .build()
                .is_err(),
            "{bad:?} is no origin"
        );
    }

    for good in [
        builder().cookie("rt").build(),
        builder().cookie("rt").csrf_header("X-CSRF-Token").build(),
        builder()
            .cookie("rt")
            .allowed_origins(["https://app.example.com", "http://localhost:3000"])
            .build(),
        builder()
            .cookie("rt")
            .allowed_origins(["https://app.example.com"])
            .without_csrf_header()
            .build(),
    ] {
        assert!(good.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refreshes_of_one_token_have_exactly_one_winner() {
    let tokens = tokens(Arc::new(MemoryStore::new()));
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let endpoint = RefreshEndpoint::new(tokens, same_user);
    let body = format!(r#"{{"refresh_token":"{}"}}"#, login.refresh_token.as_str());
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let endpoint = endpoint.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            endpoint
                .oneshot(refresh_request(&body))
                .await
                .unwrap()
                .status()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn session_check_rejects_access_tokens_of_ended_sessions() {
    let store = Arc::new(MemoryStore::new());
    let memory_calls = Arc::new(AtomicUsize::new(0));
    let tokens = tokens(store.clone());
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .build()
        .unwrap();
    let layer = JwtAuthLayer::<serde_json::Value>::builder(verifier)
        .check(tokens.session_check())
        .build()
        .unwrap();
    let calls = memory_calls.clone();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(move |_req| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::convert::Infallible>(Response::new(String::new())) }
        }));
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let request = |token: &str| {
        Request::get("/")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(String::new())
            .unwrap()
    };
    let response = service
        .clone()
        .oneshot(request(login.access_token.as_str()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    assert!(
        tokens
            .logout("u", login.refresh_token.as_str())
            .await
            .unwrap()
    );
    let response = service
        .clone()
        .oneshot(request(login.access_token.as_str()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer realm="api", error="invalid_token", error_description="the session has ended""#
    );
    assert_eq!(
        response
            .extensions()
            .get::<tower_jwt_auth::AuthError>()
            .unwrap()
            .kind(),
        AuthErrorKind::Rejected
    );
    // A live session id in another user's token is refused.
    let other = tokens.login(Subject::new("v"), None).await.unwrap();
    let borrowed = issuer()
        .access_token("u")
        .session_id(&other.session.id)
        .sign()
        .unwrap();
    let response = service
        .clone()
        .oneshot(request(borrowed.as_str()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // A token without `sid` is refused too.
    let plain = issuer().access_token("u").sign().unwrap();
    let response = service.oneshot(request(plain.as_str())).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        memory_calls.load(Ordering::SeqCst),
        1,
        "only the live session got through"
    );
}
