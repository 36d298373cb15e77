//! The counters of `tower_jwt_auth::metrics`, read back with `metrics-util`'s
//! `DebuggingRecorder` (installed per test, on the test's own thread).

use std::{cell::RefCell, collections::HashMap, sync::Arc, time::Duration};

use http::{Request, Response, StatusCode, header};
use metrics_util::{
    CompositeKey, MetricKind,
    debugging::{DebugValue, DebuggingRecorder, Snapshotter},
};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_jwt_auth::{
    Algorithm, JwtAuthLayer, SigningKey, TokenIssuer, VerificationKey, Verifier,
    metrics::{KIND, OUTCOME, REFRESHES, SESSIONS_EVICTED, TOKENS_REJECTED, TOKENS_VERIFIED},
    refresh::{
        MemoryStore, RefreshTokens, Subject,
        store::{RefreshStore, StoreError},
    },
};

const SECRET: &[u8] = b"metrics-tests-secret-of-32-bytes!!";

fn issuer(secret: &[u8]) -> TokenIssuer {
    TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, secret).unwrap())
}

/// The counters seen so far. A snapshot hands out the counts since the one
/// before (it resets them), so they are added up here.
struct Counters {
    snapshotter: Snapshotter,
    totals: RefCell<HashMap<CompositeKey, u64>>,
}

impl Counters {
    fn new(snapshotter: Snapshotter) -> Self {
        Self {
            snapshotter,
            totals: RefCell::default(),
        }
    }

    /// The value of the counter `name` (with `label`, if given; summed over
    /// every label otherwise), 0 if never counted.
    fn get(&self, name: &str, label: Option<(&str, &str)>) -> u64 {
        let mut totals = self.totals.borrow_mut();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let DebugValue::Counter(n) = value else {
                panic!("{key:?} is not a counter: {value:?}");
            };
            *totals.entry(key).or_default() += n;
        }
        totals
            .iter()
            .filter(|(key, _)| is(key, name, label))
            .map(|(_, n)| n)
            .sum()
    }
}

fn is(key: &CompositeKey, name: &str, label: Option<(&str, &str)>) -> bool {
    key.kind() == MetricKind::Counter
        && key.key().name() == name
        && label.is_none_or(|(k, v)| key.key().labels().any(|l| l.key() == k && l.value() == v))
}

async fn same_user(user: String) -> Result<Option<Subject>, StoreError> {
    Ok(Some(Subject::new(user)))
}

#[tokio::test]
async fn refreshes_are_counted_by_outcome() {
    let recorder = DebuggingRecorder::new();
    let counters = Counters::new(recorder.snapshotter());
    let _local = metrics::set_default_local_recorder(&recorder);

    let store = Arc::new(MemoryStore::new());
    let tokens = RefreshTokens::builder(store.clone(), issuer(SECRET))
        .grace_period(Duration::from_secs(30))
        .max_sessions(1)
        .build()
        .unwrap();
    let outcome = |value| counters.get(REFRESHES, Some((OUTCOME, value)));

    // ok, then grace (the login token retried within the window).
    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let first = tokens
        .refresh(login.refresh_token.as_str(), same_user)
        .await
        .unwrap();
    tokens
        .refresh(login.refresh_token.as_str(), same_user)
        .await
        .unwrap();
    assert_eq!((outcome("ok"), outcome("grace")), (1, 1));

    // retry: a failed rotation left the spent token a retry permit.
    let second = tokens
        .refresh(first.refresh_token.as_str(), same_user)
        .await
        .unwrap();
    store
        .allow_retry(
            &first.session.id,
            &tokens.hash(first.refresh_token.as_str()),
            i64::MAX,
        )
        .await
        .unwrap();
    tokens
        .refresh(first.refresh_token.as_str(), same_user)
        .await
        .unwrap();
    assert_eq!((outcome("ok"), outcome("retry")), (2, 1));

    // invalid: malformed, unknown.
    assert!(tokens.refresh("nope", same_user).await.is_err());
    let unknown = "A".repeat(64);
    assert!(tokens.refresh(&unknown, same_user).await.is_err());
    assert_eq!(outcome("invalid"), 2);

    // unavailable: the user lookup failed (nothing spent).
    let down = |_: String| async { Err(StoreError::new("the user database is down")) };
    assert!(
        tokens
            .refresh(second.refresh_token.as_str(), down)
            .await
            .is_err()
    );
    assert_eq!(outcome("unavailable"), 1);

    // reuse: the login token is an older ancestor now.
    assert!(
        tokens
            .refresh(login.refresh_token.as_str(), same_user)
            .await
            .is_err()
    );
    assert_eq!(outcome("reuse"), 1);
    assert_eq!(counters.get(REFRESHES, None), 8, "one count per refresh");

    // A login beyond the cap of 1 evicts the first session.
    tokens.login(Subject::new("v"), None).await.unwrap();
    assert_eq!(counters.get(SESSIONS_EVICTED, None), 0);
    tokens.login(Subject::new("v"), None).await.unwrap();
    assert_eq!(counters.get(SESSIONS_EVICTED, None), 1);
}

#[tokio::test]
async fn the_layer_counts_verified_and_rejected_tokens_by_kind() {
    let recorder = DebuggingRecorder::new();
    let counters = Counters::new(recorder.snapshotter());
    let _local = metrics::set_default_local_recorder(&recorder);

    let store = Arc::new(MemoryStore::new());
    let tokens = RefreshTokens::new(store, issuer(SECRET));
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .build()
        .unwrap();
    let layer = JwtAuthLayer::<serde_json::Value>::builder(verifier)
        .check(tokens.session_check())
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|_req| async {
            Ok::<_, std::convert::Infallible>(Response::new(String::new()))
        }));
    let call = |token: Option<String>| {
        let service = service.clone();
        async move {
            let mut request = Request::get("/");
            if let Some(token) = token {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            service
                .oneshot(request.body(String::new()).unwrap())
                .await
                .unwrap()
                .status()
        }
    };
    let rejected = |kind| counters.get(TOKENS_REJECTED, Some((KIND, kind)));

    let login = tokens.login(Subject::new("u"), None).await.unwrap();
    let valid = login.access_token.as_str().to_owned();
    assert_eq!(call(Some(valid.clone())).await, StatusCode::OK);
    assert_eq!(call(Some(valid.clone())).await, StatusCode::OK);
    assert_eq!(counters.get(TOKENS_VERIFIED, None), 2);

    assert_eq!(call(None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(rejected("missing_credentials"), 1);
    assert_eq!(call(Some("abc".into())).await, StatusCode::UNAUTHORIZED);
    assert_eq!(rejected("malformed"), 1);
    let forged = issuer(b"another-secret-of-at-least-32-bytes")
        .access_token("u")
        .sign()
        .unwrap();
    assert_eq!(
        call(Some(forged.as_str().to_owned())).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(rejected("invalid_signature"), 1);

    // Logged out: the check rejects the still-valid token.
    tokens
        .logout("u", login.refresh_token.as_str())
        .await
        .unwrap();
    assert_eq!(call(Some(valid)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(rejected("rejected"), 1);

    assert_eq!(counters.get(TOKENS_REJECTED, None), 4);
    assert_eq!(counters.get(TOKENS_VERIFIED, None), 2);
}
