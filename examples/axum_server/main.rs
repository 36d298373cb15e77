//! A small user API protected by `tower-jwt-auth`, in memory, no setup.
//!
//! ```text
//! cargo run --example axum_server
//!
//! # log in (OAuth 2.0 password grant, form-encoded)
//! curl -s -X POST localhost:3000/users/login \
//!      -d username=user@example.com -d password=user-password
//! # {"access_token":"eyJ...","token_type":"bearer","expires_in":900,"refresh_token":"..."}
//!
//! # a new pair for the refresh token (the old one is spent)
//! curl -s -X POST localhost:3000/users/refresh -H 'content-type: application/json' \
//!      -d '{"refresh_token":"..."}'
//!
//! curl -s localhost:3000/users/me -H "Authorization: Bearer $TOKEN"
//! # a new name and password: every session ends, the answer carries a fresh pair
//! curl -s -X PUT localhost:3000/users -H "Authorization: Bearer $TOKEN" \
//!      -H 'content-type: application/json' \
//!      -d '{"name":"Ada","password":"new-password","current_password":"user-password"}'
//! # {"user":{"id":"user-1",...},"tokens":{"access_token":"eyJ...",...,"refresh_token":"..."}}
//! curl -s localhost:3000/admin/users -H "Authorization: Bearer $ADMIN_TOKEN"
//! ```
//!
//! Environment:
//!
//! - `BIND`: the address to listen on (default `127.0.0.1:3000`).
//! - `JWT_SECRET`: the HS256 secret, at least 32 bytes. When unset, a random
//!   one is generated at start-up, so tokens do not survive a restart.
//! - `JWT_ISSUER` (default `tower-jwt-auth-example`) and `JWT_AUDIENCE`
//!   (default `example-api`): put into issued tokens and required of incoming ones.
//! - `REFRESH_STORE`: `memory` (default), `redis` (with `REDIS_URL`, default
//!   `redis://127.0.0.1:6379/`; build with `--features redis`) or `postgres`
//!   (with `DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`;
//!   build with `--features postgres`).
//!   - Redis Cluster: `REDIS_URL` with several comma-separated node URLs
//!     (`redis://10.0.0.1:6379,redis://10.0.0.2:6379,redis://10.0.0.3:6379`),
//!     or a single node URL with `REDIS_CLUSTER=1`. The client learns the
//!     other nodes from those it is given. (Key-ring mode keeps its ring in a
//!     single Redis or PostgreSQL.)
//! - Key-ring mode (build with `--features key-ring`): sign with a rotating
//!   key ring instead of the HS256 secret, and publish its public keys.
//!   - `SIGNING_ALG`: `ES256`, `ES384`, `EdDSA`, `RS256`...`PS512`. The
//!     server then serves `GET /.well-known/jwks.json` (the public keys:
//!     next, active, retired) and `GET /.well-known/openid-configuration`
//!     (`{"issuer", "jwks_uri"}`), under `JWT_ISSUER`'s path, with
//!     `Cache-Control: public, max-age=...`; other services verify its tokens
//!     with `RemoteJwks::discover(JWT_ISSUER)`. `JWT_ISSUER` must be the
//!     server's public URL (`https://auth.example.com`), and `JWT_SECRET`
//!     unset.
//!   - `KEY_ROTATE_SECS`: how long each key signs (default 30 days, at
//!     least 4). The next key is published at least half of that ahead;
//!     a retired key stays published until its last token has expired.
//!   - The ring lives where `REFRESH_STORE` says, under the name
//!     `JWT_ISSUER`: in memory it is this process's alone (a restart makes
//!     new keys); in Redis or PostgreSQL (`--features key-ring,redis`) every
//!     instance shares it and rotates it once per period.
//!   - Without `SIGNING_ALG` (the default), tokens are HS256 as above, and
//!     `KEY_ROTATE_SECS` is an error.
//! - Provider mode (build with `--features jwks`): verify the RS256, ES256
//!   or EdDSA tokens of identity providers instead of the server's own.
//!   - `OIDC_ISSUER`: issuers, comma-separated; each one's keys are found by
//!     OpenID Connect discovery, whose document must name that issuer, and
//!     its tokens must carry it as `iss`. `JWT_ISSUER` is not used (setting
//!     it with `OIDC_ISSUER` alone is an error).
//!   - `JWKS_URL`: JWK Set URLs, comma-separated; the tokens of each are
//!     those whose `iss` is the `JWT_ISSUER` entry at the same position, so
//!     several URLs need `JWT_ISSUER` to list as many issuers, in the same
//!     order (`JWKS_URL=https://a/jwks,https://b/jwks
//!     JWT_ISSUER=https://a,https://b`). One URL keeps the `JWT_ISSUER`
//!     default. `OIDC_ISSUER` and `JWKS_URL` may be combined; no issuer twice.
//!   - Every issuer has its own keys: a token is routed by its `iss` and
//!     verified with that issuer's keys only. Tokens must name `JWT_AUDIENCE`
//!     in `aud` and carry `sub`; nothing else is required.
//!   - `ROLE_CLAIM` (default `role`): where `GET /admin/users` looks for
//!     `ADMIN_ROLE`: a claim name (`role`), a dotted path
//!     (`realm_access.roles`, `resource_access.my-client.roles`), a
//!     URL-named claim taken literally (any value with `://`, such as
//!     `https://example.com/roles`), or `scope` (the space-delimited scopes).
//!     The claim may hold a string or an array of strings.
//!   - `ADMIN_ROLE` (default `ADMIN`): the role `GET /admin/users` needs.
//!   - `JWKS_LAZY=1`: start even when a provider cannot be reached; requests
//!     are answered 503 `temporarily_unavailable` until its keys arrive
//!     (fetched in the background with backoff). Without it, an unreachable
//!     provider stops the start-up.
//!   - This server then issues no tokens and keeps no sessions or accounts
//!     for the providers' users: `/users/login`, `/users/refresh`,
//!     `/users/logout`, `/users/logout-all`, `/users/sessions` and `PUT
//!     /users` answer 404 `not_found`; the layer checks no local session
//!     (`sid`). `JWT_SECRET` is not used. `ROLE_CLAIM`, `ADMIN_ROLE` and
//!     `JWKS_LAZY` outside provider mode are an error.
//! - `LOGIN_RATE_PER_MIN`: login attempts allowed a minute per client IP
//!   address (default 10, at least 1), failed or not; one more comes back
//!   every `60 / LOGIN_RATE_PER_MIN` seconds. Over it, `POST /users/login`
//!   answers 429 `{"error": "too_many_requests", "error_description": "too
//!   many login attempts: try again later"}` with `Retry-After` (seconds),
//!   before reading the body. The client is the TCP peer (axum's
//!   `ConnectInfo`); no `X-Forwarded-For` is trusted, so behind a reverse
//!   proxy all clients share the proxy's budget (see `limit.rs`).
//! - `PUBLIC_URL`: the URL clients call the server at (`https://api.example.com`),
//!   which their DPoP proofs name as `htu`. When unset, the `Host` header
//!   is trusted, over `http`: right on a developer's machine, wrong behind
//!   a proxy.
//! - `RUST_LOG`: the log filter (default `info`).
//!
//! DPoP (RFC 9449), in both modes: every protected route takes bearer
//! tokens and DPoP-bound tokens (`Authorization: DPoP <token>` with a `DPoP`
//! proof); a bound token sent as a bearer token is refused. In issuing mode
//! a login with a `DPoP` proof binds the session to the proof's key: the
//! pair's `token_type` is `DPoP`, its access tokens carry `cnf.jkt`, and
//! `/users/refresh` refreshes it only with a proof by that key. Every access
//! token carries the login's `auth_time`, refreshed ones included.
//!
//! `GET /.well-known/oauth-protected-resource` (RFC 9728), in both modes:
//! `resource` is `JWT_AUDIENCE`, `authorization_servers` the issuers
//! (`JWT_ISSUER`, or the providers'), with the DPoP algorithms.
//!
//! Routes (issuing mode, the default):
//!
//! | route               | who                     | answer                                       |
//! |---------------------|-------------------------|----------------------------------------------|
//! | `POST /users/login` | anyone, `LOGIN_RATE_PER_MIN` a minute per IP | `{"access_token", "token_type", "expires_in", "refresh_token"}`; 429 with `Retry-After` over the limit |
//! | `POST /users/refresh` | anyone with a refresh token `{"refresh_token"}` | a new pair; 400 `invalid_grant` if spent, expired or revoked |
//! | `POST /users/logout` | any valid token, `{"refresh_token"}` | 204; ends that session only |
//! | `POST /users/logout-all` | any valid token    | `{"revoked": n}`; ends every session of the user |
//! | `GET /users/sessions` | any valid token       | the user's sessions (device, created, last used) |
//! | `GET /users/me`     | any valid token         | `{"id", "role"}` from the token              |
//! | `PUT /users` `{"name", "password", "current_password"}` | role `USER` (or `ADMIN`) | `{"user": {"id", "email", "name", "role"}, "tokens": {...}}`; ends every session of the user, the answer's pair is the only one left |
//! | `GET /admin/users`  | role `ADMIN`            | every user, without passwords                |
//!
//! In key-ring mode two more routes answer, without a token:
//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`
//! (see above).
//!
//! ```text
//! SIGNING_ALG=ES256 KEY_ROTATE_SECS=86400 JWT_ISSUER=http://127.0.0.1:3000 \
//!   cargo run --example axum_server --features key-ring
//! curl -s localhost:3000/.well-known/jwks.json
//! ```
//!
//! In provider mode (see above) only two routes need a token:
//!
//! | route               | who                     | answer                                       |
//! |---------------------|-------------------------|----------------------------------------------|
//! | `GET /users/me`     | any valid provider token, with or without roles | `{"id"}` (the `sub`), with `"role"` if the token has that claim |
//! | `GET /admin/users`  | `ADMIN_ROLE` in `ROLE_CLAIM` | every demo user, without passwords      |
//!
//! ```text
//! OIDC_ISSUER=https://idp.example.com/realms/main JWT_AUDIENCE=example-api \
//!   ROLE_CLAIM=realm_access.roles cargo run --example axum_server --features jwks
//! ```
//!
//! Refresh tokens rotate on every use; presenting a spent one revokes its
//! whole session (no grace window). Access tokens carry the session as `sid`,
//! and the layer checks it, so logout takes effect at once. In memory, the
//! check looks the session up on every request. On Redis (Redis Cluster
//! too) and PostgreSQL it uses the logout broadcast (`SessionBroadcast`):
//! every instance keeps the sessions that ended in memory, fed by the store
//! (pub/sub, `LISTEN/NOTIFY`), so a logout through one instance reaches the
//! others within milliseconds and no request pays a store round trip. Until the broadcast is synced (at
//! start-up, and after a lost subscription until it is back), the check
//! falls back to a lookup per request. The start-up log says which check
//! runs (`sessions="broadcast"` or `"lookup"`), and the broadcast logs
//! "logout broadcast: synced" once it answers from memory.
//!
//! A password change (`PUT /users`) needs the current password: without
//! `current_password` 400 `{"error": "invalid_request", "error_description":
//! "current_password is required to change the password"}`, with a wrong one
//! 403 `{"error": "invalid_grant", "error_description": "the current password
//! is wrong"}`, and nothing changes. It then ends every session of the user
//! in one step (logout-all), the caller's included, and answers with a fresh
//! token pair. A failure comes before any change: if the sessions cannot be
//! ended, 503 `temporarily_unavailable` and the password stays. Each user has
//! a credential epoch, one more at each change, and each session remembers
//! the epoch it started under: a login that checked the old password while
//! the change ran gets a session of the old epoch, whose access token the
//! layer refuses (401 "the session has ended") and whose refresh token the
//! refresh endpoint's user lookup refuses (400 `invalid_grant`).
//!
//! Rejections come from the layers (RFC 6750): no token 401 with
//! `WWW-Authenticate: Bearer realm="tower-jwt-auth-example"`, a bad token 401
//! `invalid_token`, a malformed `Authorization` (such as two of them) 400
//! `invalid_request`, a missing role 403 `insufficient_scope`.
//!
//! Bodies the handlers cannot parse get axum's own rejections: a login form
//! with a missing field 422, a login that is not form-encoded 415; for `PUT
//! /users`, invalid JSON 400, a missing field 422, a missing JSON content
//! type 415.
//!
//! Layout:
//!
//! - `config.rs`: the environment, parsed in one place.
//! - `stores.rs`: connects the refresh-token store `REFRESH_STORE` names
//!   (and, in key-ring mode, the key ring's), and picks the session check
//!   (the logout broadcast on Redis, Redis Cluster and PostgreSQL).
//! - `signing.rs`: key-ring mode (`SIGNING_ALG`).
//! - `users.rs`: the demo users, their roles and password hashes.
//! - `app.rs`: the state the handlers share, and the router: which routes
//!   need a token, which a role.
//! - `handlers.rs`: the routes and the bodies they read and answer.
//! - `error.rs`: the handlers' error answers.
//! - `limit.rs`: the login rate limit (`governor`), per client IP.
//! - `main.rs` (this file): starts the server and stops it gracefully.
//!
//! The smallest setup, without refresh tokens, is `examples/axum_minimal.rs`.

pub mod app;
pub mod config;
pub mod error;
pub mod handlers;
pub mod limit;
#[cfg(feature = "key-ring")]
pub mod signing;
pub mod stores;
pub mod users;

pub use self::{
    app::{AppState, app},
    config::Config,
};
// For the tests that include this example as a module (tests/example_*.rs).
#[allow(unused_imports)]
pub use self::config::StoreKind;

/// Starts the server (public for tests/example_broadcast.rs, which runs it
/// as child processes).
#[tokio::main]
pub async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let config = Config::from_env()?;
    if config.secret_generated && config.provider.is_none() && config.signing.is_none() {
        tracing::warn!(
            "JWT_SECRET is not set: using a random secret, so tokens will not survive a restart"
        );
    }
    let store = config.store.connect().await?;
    let state = AppState::from_config(&config, store).await?;
    if let Some(provider) = &state.provider
        && !provider.verifier.is_ready()
    {
        tracing::warn!(
            "JWKS_LAZY: the identity providers' keys are not loaded yet; \
             requests get 503 until they arrive"
        );
    }
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    // The bound address: with port 0, the one the system picked.
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    match &config.provider {
        None => tracing::info!(
            %address,
            issuer = %config.issuer,
            audience = %config.audience,
            store = ?config.store,
            sessions = state.sessions.name(),
            "listening; demo users: user@example.com / user-password, admin@example.com / admin-password"
        ),
        Some(provider) => tracing::info!(
            %address,
            audience = %config.audience,
            issuers = ?provider.issuers,
            role_claim = ?provider.role_claim,
            admin_role = %provider.admin_role,
            lazy = provider.lazy,
            "listening in provider mode; tokens come from the identity providers"
        ),
    }
    // The login limit forgets clients whose budget is full again, once a minute.
    let limiter = state.login_limiter.clone();
    tokio::spawn(async move {
        let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            limiter.forget_idle();
        }
    });
    // With connect info, so the login limit knows each client's address.
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("shut down");
    Ok(())
}

/// Resolves on Ctrl-C, or SIGTERM on Unix; in-flight requests then finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
