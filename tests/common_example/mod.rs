//! Shared helpers of the tests that drive an example server over loopback
//! (`hyper_example`, `tonic_example`): the configuration values, a time bound
//! and an expired token.

use std::{
    future::Future,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub const SECRET: &[u8] = b"an integration-test secret of 32+ bytes";
pub const ISSUER: &str = "tower-jwt-auth-example";
pub const AUDIENCE: &str = "example-api";

/// Every test finishes within this bound or fails.
pub async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("the test timed out")
}

/// A well-signed token that expired well beyond the 30 s leeway.
pub fn expired_token() -> String {
    tower_jwt_auth::install_crypto_provider();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "sub": "user-1",
        "role": "USER",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now - 600,
        "exp": now - 300,
        "jti": "expired-1",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap()
}
