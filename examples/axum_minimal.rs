//! The smallest useful setup: one route for any valid token, one for a role.
//!
//! ```text
//! cargo run --example axum_minimal    # prints a demo token and curl commands
//! curl -i localhost:3000/me -H "Authorization: Bearer $TOKEN"     # 200 demo-user
//! curl -i localhost:3000/admin -H "Authorization: Bearer $TOKEN"  # 200 (role ADMIN)
//! curl -i localhost:3000/me                                       # 401
//! ```
//!
//! `JWT_SECRET` sets the HS256 secret (at least 32 bytes). Unset, a demo secret
//! is used: fine for trying the example, never for anything else. The full
//! demo, with login, refresh-token rotation and sessions, is `axum_server`.

use std::error::Error;

use axum::{Router, routing::get};
use serde::Deserialize;
use tower_jwt_auth::{
    Algorithm, Claims, ConfigError, JwtAuthLayer, RequireRoleLayer, SigningKey, TokenIssuer,
    VerificationKey, Verifier,
};

/// The secret when `JWT_SECRET` is unset: public, so for demos only.
const DEMO_SECRET: &str = "demo-secret-of-axum-minimal-never-deploy-it";

/// What the handlers read from a verified token; `role` is read by the role layer.
#[derive(Clone, Deserialize)]
pub struct AppClaims {
    /// The user id.
    pub sub: String,
}

/// `/me` for any valid token, `/admin` for a token with the role `ADMIN`.
pub fn app(secret: &[u8]) -> Result<Router, ConfigError> {
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(secret)?)
        .build()?;
    Ok(Router::new()
        .route(
            "/me",
            get(|claims: Claims<AppClaims>| async move { claims.sub.clone() }),
        )
        .route(
            "/admin",
            get(|| async { "hello, admin" }).route_layer(RequireRoleLayer::any_of(["ADMIN"])),
        )
        .layer(JwtAuthLayer::<AppClaims>::new(verifier)))
}

/// A 15-minute access token for `demo-user` with `role`.
pub fn demo_token(secret: &[u8], role: &str) -> Result<String, Box<dyn Error>> {
    let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, secret)?);
    Ok(issuer
        .access_token("demo-user")
        .role(role)
        .sign()?
        .into_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let secret = std::env::var("JWT_SECRET").unwrap_or_else(|_| DEMO_SECRET.to_owned());
    let app = app(secret.as_bytes())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let token = demo_token(secret.as_bytes(), "ADMIN")?;
    println!("listening on http://127.0.0.1:3000; a demo token (role ADMIN, 15 minutes):");
    println!("export TOKEN={token}");
    println!("curl -i localhost:3000/me -H \"Authorization: Bearer $TOKEN\"");
    axum::serve(listener, app).await?;
    Ok(())
}
