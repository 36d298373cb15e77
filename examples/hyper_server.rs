//! A plain hyper 1.x server behind `JwtAuthLayer` and `RequireRoleLayer`.
//!
//! ```text
//! cargo run --example hyper_server
//! ```
//!
//! Routes:
//!
//! - `GET /me`: any valid token; answers `{"id": <sub>, "role": <role>}`.
//! - `GET /admin`: a token with the role `ADMIN`.
//!
//! Environment:
//!
//! - `BIND`: the listening address (default `127.0.0.1:3001`).
//! - `JWT_SECRET`: the HS256 secret, at least 32 bytes. Unset, a random one is
//!   generated, and tokens do not survive a restart.
//! - `JWT_ISSUER`: the `iss` of accepted tokens (default `tower-jwt-auth-example`).
//! - `JWT_AUDIENCE`: the `aud` of accepted tokens (default `example-api`).
//! - `RUST_LOG`: the log filter (default `info,tower_jwt_auth=debug`).
//!
//! Tokens are HS256 with `sub`, `role`, `iss`, `aud`, `exp`, `iat` and `jti`,
//! as `TokenIssuer` mints them. The axum example's `POST /users/login`, run with the
//! same `JWT_SECRET`, `JWT_ISSUER` and `JWT_AUDIENCE`, issues such tokens; so
//! does this example (the server never logs one):
//!
//! ```text
//! export JWT_SECRET=$(openssl rand -hex 32)
//! TOKEN=$(cargo run -q --example hyper_server -- --print-token user-1 ADMIN)
//! cargo run --example hyper_server &
//! curl -i http://127.0.0.1:3001/me -H "authorization: Bearer $TOKEN"
//! curl -i http://127.0.0.1:3001/admin -H "authorization: Bearer $TOKEN"
//! ```

use std::{convert::Infallible, error::Error, net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use serde::Deserialize;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
use tower_jwt_auth::{
    Algorithm, Claims, ConfigError, JwtAuthLayer, RequireRoleLayer, SigningKey, TokenIssuer,
    VerificationKey, Verifier,
};

/// The claims the application reads, besides the registered ones.
#[derive(Debug, Clone, Deserialize)]
pub struct AppClaims {
    pub role: String,
}

/// The response body of every route.
pub type Body = Full<Bytes>;

/// The token settings, shared by the verifier and the issuer.
pub struct Config {
    pub secret: Vec<u8>,
    pub issuer: String,
    pub audience: String,
}

impl Config {
    /// Reads `JWT_SECRET`, `JWT_ISSUER` and `JWT_AUDIENCE`.
    pub fn from_env() -> Result<Self, Box<dyn Error>> {
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

/// The application: routing inside `JwtAuthLayer`, with `RequireRoleLayer`
/// on `/admin` only.
pub fn app(
    config: &Config,
) -> Result<
    impl Service<
        Request<Incoming>,
        Response = Response<Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static,
    ConfigError,
> {
    let admin = ServiceBuilder::new()
        .layer(RequireRoleLayer::any_of(["ADMIN"]))
        .service_fn(admin);

    let router = service_fn(move |request: Request<Incoming>| {
        let admin = admin.clone();
        async move {
            match (request.method(), request.uri().path()) {
                (&Method::GET, "/me") => me(request).await,
                (&Method::GET, "/admin") => admin.oneshot(request).await,
                (_, "/me" | "/admin") => Ok(json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    serde_json::json!({ "error": "method_not_allowed" }),
                )),
                _ => Ok(json(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({ "error": "not_found" }),
                )),
            }
        }
    });

    Ok(ServiceBuilder::new()
        .layer(JwtAuthLayer::<AppClaims>::new(config.verifier()?))
        .service(router))
}

async fn me(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    // `JwtAuthLayer` inserted the verified claims.
    let Some(claims) = request.extensions().get::<Claims<AppClaims>>() else {
        return Ok(json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "error": "no claims: is JwtAuthLayer applied?" }),
        ));
    };
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "id": claims.subject(), "role": claims.role }),
    ))
}

async fn admin(_request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "message": "hello, admin" }),
    ))
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Serves `app` on `listener`, HTTP/1.1 and HTTP/2, until the task is dropped.
pub async fn serve<S>(listener: TcpListener, app: S)
where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Such as too many open files: wait, then go on.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = auto::Builder::new(TokioExecutor::new());
            if let Err(error) = connection
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, %error, "connection closed with an error");
            }
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
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
        return Err("usage: hyper_server [--print-token USER_ID ROLE]".into());
    }

    let config = Config::from_env()?;
    let bind: SocketAddr = std::env::var("BIND")
        .unwrap_or_else(|_| "127.0.0.1:3001".into())
        .parse()?;
    let app = app(&config)?;
    let listener = TcpListener::bind(bind).await?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    serve(listener, app).await;
    Ok(())
}
