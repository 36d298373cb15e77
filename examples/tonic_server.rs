//! A tonic server whose every call needs a bearer token: the standard gRPC
//! health service (`grpc.health.v1.Health`) behind `JwtAuthLayer`, and
//! optionally `RequireRoleLayer`.
//!
//! ```text
//! cargo run --example tonic_server --features tonic
//! ```
//!
//! Environment:
//!
//! - `BIND`: the listening address (default `127.0.0.1:50051`).
//! - `JWT_SECRET`: the HS256 secret, at least 32 bytes. Unset, a random one is
//!   generated, and tokens do not survive a restart.
//! - `JWT_ISSUER`: the `iss` of accepted tokens (default `tower-jwt-auth-example`).
//! - `JWT_AUDIENCE`: the `aud` of accepted tokens (default `example-api`).
//! - `REQUIRED_ROLE`: a role every call needs, such as `ADMIN` (default: none,
//!   any valid token).
//! - `RUST_LOG`: the log filter (default `info,tower_jwt_auth=debug`).
//!
//! A call without a valid token ends with `UNAUTHENTICATED`; a call whose
//! token lacks `REQUIRED_ROLE` with `PERMISSION_DENIED`. Tokens are HS256 with
//! `sub`, `role`, `iss`, `aud`, `exp`, `iat` and `jti`, as `TokenIssuer` mints
//! them (the axum example's `POST /users/login`, with the same settings,
//! or `--print-token`; the server never logs one):
//!
//! ```text
//! export JWT_SECRET=$(openssl rand -hex 32)
//! TOKEN=$(cargo run -q --example tonic_server --features tonic -- --print-token user-1 ADMIN)
//! REQUIRED_ROLE=ADMIN cargo run --example tonic_server --features tonic &
//! grpcurl -plaintext -H "authorization: Bearer $TOKEN" \
//!     -import-path . -proto health.proto 127.0.0.1:50051 grpc.health.v1.Health/Check
//! ```
//!
//! (The server has no reflection service, so grpcurl needs the
//! [health.proto](https://github.com/grpc/grpc/blob/master/src/proto/grpc/health/v1/health.proto).)

use std::{error::Error, net::SocketAddr};

use serde::Deserialize;
use tokio::net::TcpListener;
use tonic::{
    Request, Status,
    service::interceptor::InterceptedService,
    transport::{Server, server::TcpIncoming},
};
use tower::ServiceBuilder;
use tower_jwt_auth::{
    Algorithm, ConfigError, JwtAuthLayer, RequireRoleLayer, SigningKey, TokenIssuer,
    VerificationKey, Verifier, tonic::RequestClaimsExt,
};

/// The claims the application reads, besides the registered ones.
#[derive(Debug, Clone, Deserialize)]
pub struct AppClaims {
    pub role: String,
}

/// The token settings, shared by the verifier and the issuer.
pub struct Config {
    pub secret: Vec<u8>,
    pub issuer: String,
    pub audience: String,
    /// A role every call needs; `None` for any valid token.
    pub required_role: Option<String>,
}

impl Config {
    /// Reads `JWT_SECRET`, `JWT_ISSUER`, `JWT_AUDIENCE` and `REQUIRED_ROLE`.
    pub fn from_env() -> Result<Self, Box<dyn Error + Send + Sync>> {
        let secret = match std::env::var("JWT_SECRET") {
            Ok(secret) if secret.len() >= 32 => secret.into_bytes(),
            Ok(_) => return Err("JWT_SECRET must be at least 32 bytes".into()),
            Err(_) => {
                tracing::warn!(
                    "JWT_SECRET is not set: using a random secret; tokens will not survive a restart"
                );
                rand::random::<[u8; 32]>().to_vec()
            }
        };
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        Ok(Self {
            secret,
            issuer: var("JWT_ISSUER", "tower-jwt-auth-example"),
            audience: var("JWT_AUDIENCE", "example-api"),
            required_role: std::env::var("REQUIRED_ROLE")
                .ok()
                .filter(|r| !r.is_empty()),
        })
    }

    /// HS256 only, `exp` required, our issuer and audience.
    pub fn verifier(&self) -> Result<Verifier, ConfigError> {
        Verifier::builder()
            .key(VerificationKey::hmac(&self.secret)?)
            .issuer(&self.issuer)
            .audience(&self.audience)
            .build()
    }

    /// Mints tokens this server accepts.
    pub fn token_issuer(&self) -> Result<TokenIssuer, ConfigError> {
        Ok(
            TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, &self.secret)?)
                .issuer(&self.issuer)
                .audience(&self.audience),
        )
    }
}

/// Serves the health service on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    config: &Config,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let (_reporter, health) = tonic_health::server::health_reporter();
    // The interceptor sees the claims that `JwtAuthLayer` verified.
    let health = InterceptedService::new(health, |request: Request<()>| {
        request.claims::<AppClaims>()?;
        tracing::debug!("authenticated gRPC call");
        Ok::<_, Status>(request)
    });

    // Authentication outside, authorization inside; no role layer without a
    // required role.
    let auth = ServiceBuilder::new()
        .layer(JwtAuthLayer::<AppClaims>::new(config.verifier()?))
        .option_layer(
            config
                .required_role
                .as_ref()
                .map(|role| RequireRoleLayer::any_of([role.as_str()])),
        );

    Server::builder()
        .layer(auth)
        .add_service(health)
        .serve_with_incoming(TcpIncoming::from(listener))
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_jwt_auth=debug".into()),
        )
        .init();

    // `--print-token USER_ID ROLE`: mint a token for the configured secret and exit.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, user, role] = args.as_slice()
        && flag == "--print-token"
    {
        if std::env::var_os("JWT_SECRET").is_none() {
            return Err("set JWT_SECRET: a token signed with a random secret is useless".into());
        }
        let config = Config::from_env()?;
        let token = config
            .token_issuer()?
            .access_token(user)
            .role(role)
            .sign()?;
        println!("{}", token.as_str());
        return Ok(());
    }
    if !args.is_empty() {
        return Err("usage: tonic_server [--print-token USER_ID ROLE]".into());
    }

    let config = Config::from_env()?;
    let bind: SocketAddr = std::env::var("BIND")
        .unwrap_or_else(|_| "127.0.0.1:50051".into())
        .parse()?;
    let listener = TcpListener::bind(bind).await?;
    tracing::info!(
        address = %listener.local_addr()?,
        required_role = config.required_role.as_deref().unwrap_or("none"),
        "listening"
    );
    serve(listener, &config).await
}
