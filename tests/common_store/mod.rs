//! Shared helpers of the store tests: server URLs, skip-or-fail, unique ids.

#![allow(dead_code)]

pub mod model;

use std::sync::Arc;

use tower_jwt_auth::{
    Algorithm, SigningKey, TokenIssuer,
    refresh::{RefreshToken, RefreshTokens, Subject, store::RefreshStore},
};

/// `name` from the environment, or `default`.
pub fn url(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The server is unreachable: panics on CI (`CI=true`), else prints a skip
/// message and returns `None`.
pub fn unreachable<T>(what: &str, url_var: &str, error: &dyn std::error::Error) -> Option<T> {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if ci {
        panic!("{what} is unreachable on CI ({url_var}): {message}");
    }
    eprintln!("SKIPPED: {what} is unreachable ({message}); set {url_var} to run this test");
    None
}

/// A unique id for one test run.
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}{}-{nanos:x}", std::process::id())
}

/// Logs in and refreshes twice through `RefreshTokens`; returns every raw
/// refresh token handed out, and the user id.
pub async fn login_and_refresh(store: Arc<dyn RefreshStore>) -> (Vec<RefreshToken>, String) {
    let issuer = TokenIssuer::new(
        SigningKey::hmac(Algorithm::HS256, b"store tests secret of >= 32 bytes!!").unwrap(),
    );
    let tokens = RefreshTokens::new(store, issuer);
    let user = unique("user-");
    let login = tokens
        .login(Subject::new(user.clone()), Some("device"))
        .await
        .expect("login");
    let subject = |u: String| async move { Ok(Some(Subject::new(u))) };
    let second = tokens
        .refresh(login.refresh_token.as_str(), subject)
        .await
        .expect("refresh");
    let third = tokens
        .refresh(second.refresh_token.as_str(), subject)
        .await
        .expect("refresh again");
    (
        vec![
            login.refresh_token,
            second.refresh_token,
            third.refresh_token,
        ],
        user,
    )
}
