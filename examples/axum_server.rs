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
//! curl -s -X PUT localhost:3000/users -H "Authorization: Bearer $TOKEN" \
//!      -H 'content-type: application/json' -d '{"name":"Ada","password":"new-password"}'
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
//! - `JWKS_URL` or `OIDC_ISSUER` (build with `--features jwks`): verify the
//!   RS256, ES256 or EdDSA tokens of an identity provider instead of the
//!   server's own: keys from that JWK Set URL, or found by OpenID Connect
//!   discovery of that issuer (whose `iss` is then what `JWT_ISSUER` should
//!   be). The provider's tokens must carry `sub` and `role` (`USER` or
//!   `ADMIN`). This server then issues no tokens: `/users/login` and
//!   `/users/refresh` answer 404, and the layer checks no local session (`sid`),
//!   since the provider's tokens have none; ending sessions is the provider's
//!   job. `JWT_SECRET` is not used.
//! - `RUST_LOG`: the log filter (default `info`).
//!
//! Routes:
//!
//! | route               | who                     | answer                                       |
//! |---------------------|-------------------------|----------------------------------------------|
//! | `POST /users/login` | anyone                  | `{"access_token", "token_type", "expires_in", "refresh_token"}` |
//! | `POST /users/refresh` | anyone with a refresh token `{"refresh_token"}` | a new pair; 400 `invalid_grant` if spent, expired or revoked |
//! | `POST /users/logout` | any valid token, `{"refresh_token"}` | 204; ends that session only |
//! | `POST /users/logout-all` | any valid token    | `{"revoked": n}`; ends every session of the user |
//! | `GET /users/sessions` | any valid token       | the user's sessions (device, created, last used) |
//! | `GET /users/me`     | any valid token         | `{"id", "role"}` from the token              |
//! | `PUT /users`        | role `USER` (or `ADMIN`)| the updated user `{"id", "email", "name", "role"}` |
//! | `GET /admin/users`  | role `ADMIN`            | every user, without passwords                |
//!
//! Refresh tokens rotate on every use; presenting a spent one revokes its
//! whole session (no grace window). Access tokens carry the session as `sid`,
//! and the layer checks it, so logout takes effect at once.
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

use std::{collections::HashMap, env::VarError, fmt, net::SocketAddr, sync::Arc};

use axum::{
    Form, Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::RwLock;
use tower_jwt_auth::{
    Algorithm, Claims, DefaultResponder, JwtAuthLayer, RequireRoleLayer, RoleHierarchy, SigningKey,
    TokenIssuer, VerificationKey, Verifier,
    refresh::{
        MemoryStore, RefreshEndpoint, RefreshError, RefreshTokens, Subject,
        store::{RefreshStore, StoreError},
    },
};

/// The realm named in the `WWW-Authenticate` challenges.
pub const REALM: &str = "tower-jwt-auth-example";
/// The shortest `JWT_SECRET` accepted: the HS256 hash size (RFC 7518 section 3.2).
pub const MIN_SECRET_LEN: usize = 32;

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// The server's configuration, read from the environment.
#[derive(Clone)]
pub struct Config {
    /// Where to listen.
    pub bind: SocketAddr,
    /// The HS256 secret.
    pub secret: Vec<u8>,
    /// Whether `secret` was generated because `JWT_SECRET` was unset.
    pub secret_generated: bool,
    /// The `iss` of issued tokens, required of incoming ones.
    pub issuer: String,
    /// The `aud` of issued tokens, required of incoming ones.
    pub audience: String,
    /// Where refresh-token families live.
    pub store: StoreKind,
    /// An identity provider whose tokens are verified instead of our own.
    pub provider: Option<ProviderKeys>,
}

/// `JWKS_URL` or `OIDC_ISSUER`: where an identity provider's keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKeys {
    /// The provider's JWK Set URL.
    JwksUrl(String),
    /// The provider's issuer, for OpenID Connect discovery.
    OidcIssuer(String),
}

/// `REFRESH_STORE`: where refresh-token families live.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// In this process (the default); nothing survives a restart.
    Memory,
    /// Redis at this URL (`REDIS_URL`, default `redis://127.0.0.1:6379/`);
    /// needs the `redis` feature.
    Redis(String),
    /// PostgreSQL at this URL (`DATABASE_URL`, default
    /// `postgres://postgres@127.0.0.1:5432/test`); needs the `postgres` feature.
    Postgres(String),
}

impl fmt::Debug for StoreKind {
    /// The kind only: URLs may carry passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Memory => "memory",
            Self::Redis(_) => "redis",
            Self::Postgres(_) => "postgres",
        })
    }
}

impl StoreKind {
    /// Connects to the store (and, for PostgreSQL, applies the schema).
    pub async fn connect(&self) -> Result<Arc<dyn RefreshStore>, String> {
        match self {
            Self::Memory => Ok(Arc::new(MemoryStore::new())),
            #[cfg(feature = "redis")]
            Self::Redis(url) => {
                let store = tower_jwt_auth::refresh::RedisStore::new(url)
                    .await
                    .map_err(|e| format!("cannot connect to Redis: {e}"))?;
                Ok(Arc::new(store))
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => {
                let store = tower_jwt_auth::refresh::PostgresStore::new(url)
                    .await
                    .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
                store
                    .migrate()
                    .await
                    .map_err(|e| format!("cannot apply the schema: {e}"))?;
                Ok(Arc::new(store))
            }
            #[allow(unreachable_patterns)]
            other => Err(format!(
                "REFRESH_STORE={other:?} needs the matching cargo feature: \
                 cargo run --example axum_server --features redis (or postgres)"
            )),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("secret", &"<redacted>")
            .field("secret_generated", &self.secret_generated)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("store", &self.store)
            .field("provider", &self.provider)
            .finish()
    }
}

impl Config {
    /// Reads `BIND`, `JWT_SECRET`, `JWT_ISSUER` and `JWT_AUDIENCE`.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name))
    }

    /// Like [`from_env`](Self::from_env), with `lookup` in place of
    /// `std::env::var` (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Result<String, VarError>) -> Result<Self, String> {
        let var = |name: &str| match lookup(name) {
            Ok(value) => Ok(Some(value)),
            Err(VarError::NotPresent) => Ok(None),
            Err(VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
        };
        let bind = match var("BIND")? {
            Some(bind) => bind
                .parse()
                .map_err(|e| format!("BIND={bind:?} is not a socket address: {e}"))?,
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
        };
        let (secret, secret_generated) = match var("JWT_SECRET")? {
            Some(secret) if secret.len() < MIN_SECRET_LEN => {
                return Err(format!(
                    "JWT_SECRET must be at least {MIN_SECRET_LEN} bytes long (it is {}); \
                     generate one with `openssl rand -base64 48`",
                    secret.len()
                ));
            }
            Some(secret) => (secret.into_bytes(), false),
            None => {
                let mut secret = vec![0u8; 64];
                rand::rng().fill_bytes(&mut secret);
                (secret, true)
            }
        };
        let non_empty = |name: &str, default: &str| -> Result<String, String> {
            match var(name)? {
                Some(value) if value.is_empty() => Err(format!("{name} must not be empty")),
                Some(value) => Ok(value),
                None => Ok(default.to_owned()),
            }
        };
        let store = match var("REFRESH_STORE")?.as_deref() {
            None | Some("memory") => StoreKind::Memory,
            Some("redis") => StoreKind::Redis(non_empty("REDIS_URL", "redis://127.0.0.1:6379/")?),
            Some("postgres") => StoreKind::Postgres(non_empty(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            )?),
            Some(other) => {
                return Err(format!(
                    "REFRESH_STORE={other:?}: expected memory, redis or postgres"
                ));
            }
        };
        let provider = match (var("JWKS_URL")?, var("OIDC_ISSUER")?) {
            (Some(_), Some(_)) => return Err("set JWKS_URL or OIDC_ISSUER, not both".into()),
            (Some(url), None) => Some(ProviderKeys::JwksUrl(url)),
            (None, Some(issuer)) => Some(ProviderKeys::OidcIssuer(issuer)),
            (None, None) => None,
        };
        if provider.is_some() && cfg!(not(feature = "jwks")) {
            return Err("JWKS_URL and OIDC_ISSUER need the `jwks` feature: \
                        cargo run --example axum_server --features jwks"
                .into());
        }
        Ok(Self {
            provider,
            bind,
            secret,
            secret_generated,
            issuer: non_empty("JWT_ISSUER", "tower-jwt-auth-example")?,
            audience: non_empty("JWT_AUDIENCE", "example-api")?,
            store,
        })
    }
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

/// A role, as carried in the token's `role` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    /// An ordinary user.
    User,
    /// An administrator; implies `USER` (see [`app`]).
    Admin,
}

impl Role {
    /// The name in tokens and role requirements.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Admin => "ADMIN",
        }
    }
}

/// A stored password.
///
/// A real application stores a slow, salted password hash (argon2id, with the
/// `argon2` crate) and verifies with it. SHA-256 is NOT a password hash; it is
/// used here only to keep the demo's build small. What the demo does get
/// right: the plain password is never stored, and the comparison takes the
/// same time wherever the inputs differ.
#[derive(Clone)]
pub struct PasswordHash([u8; 32]);

impl PasswordHash {
    /// Hashes `password` (see the type's docs: argon2id in a real application).
    pub fn new(password: &str) -> Self {
        Self(Sha256::digest(password.as_bytes()).into())
    }

    /// Whether `password` is the stored one, compared in constant time.
    pub fn verify(&self, password: &str) -> bool {
        Self::new(password).0.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A stored user.
#[derive(Debug, Clone)]
pub struct User {
    /// The id, the `sub` of the user's tokens.
    pub id: String,
    /// The login name.
    pub email: String,
    /// The display name.
    pub name: String,
    /// The role, the `role` of the user's tokens.
    pub role: Role,
    /// The password, hashed.
    pub password: PasswordHash,
}

/// A user as the API shows it: never with the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    /// The id.
    pub id: String,
    /// The login name.
    pub email: String,
    /// The display name.
    pub name: String,
    /// The role.
    pub role: Role,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role,
        }
    }
}

/// The users, by id. In memory: a real application has a database here.
#[derive(Debug, Clone, Default)]
pub struct UserStore {
    users: Arc<RwLock<HashMap<String, User>>>,
}

impl UserStore {
    /// The two demo users.
    pub fn with_demo_users() -> Self {
        let users = [
            (
                "user-1",
                "user@example.com",
                "Demo User",
                Role::User,
                "user-password",
            ),
            (
                "admin-1",
                "admin@example.com",
                "Demo Admin",
                Role::Admin,
                "admin-password",
            ),
        ]
        .into_iter()
        .map(|(id, email, name, role, password)| {
            let user = User {
                id: id.to_owned(),
                email: email.to_owned(),
                name: name.to_owned(),
                role,
                password: PasswordHash::new(password),
            };
            (user.id.clone(), user)
        })
        .collect();
        Self {
            users: Arc::new(RwLock::new(users)),
        }
    }

    /// The user with this email and password, if both match.
    pub async fn authenticate(&self, email: &str, password: &str) -> Option<User> {
        let users = self.users.read().await;
        // A linear scan is fine for two users; a database has an index on email.
        let user = users.values().find(|u| u.email.eq_ignore_ascii_case(email));
        // Hash and compare even for an unknown email, so that the answer takes
        // as long either way and does not reveal which emails exist.
        let dummy = PasswordHash([0; 32]);
        let stored = user.map_or(&dummy, |u| &u.password);
        let password_ok = stored.verify(password);
        user.filter(|_| password_ok).cloned()
    }

    /// The user with this id.
    pub async fn get(&self, id: &str) -> Option<User> {
        self.users.read().await.get(id).cloned()
    }

    /// Every user, ordered by id.
    pub async fn list(&self) -> Vec<UserView> {
        let mut users: Vec<UserView> = self
            .users
            .read()
            .await
            .values()
            .map(UserView::from)
            .collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users
    }

    /// Applies `change` to the user with this id; `None` if there is none.
    pub async fn update(&self, id: &str, change: impl FnOnce(&mut User)) -> Option<User> {
        let mut users = self.users.write().await;
        let user = users.get_mut(id)?;
        change(user);
        Some(user.clone())
    }
}

// ---------------------------------------------------------------------------
// State, tokens and the router
// ---------------------------------------------------------------------------

/// The application's claims: what handlers read from [`Claims`].
///
/// A token whose `role` is not one of ours does not deserialize and is
/// rejected with 401 `invalid_token` by the layer.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// The user's role.
    pub role: Role,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The users.
    pub users: UserStore,
    /// Mints access tokens.
    pub tokens: TokenIssuer,
    /// Verifies access tokens.
    pub auth: JwtAuthLayer<AccessClaims>,
    /// Answers rejections; the role layers need it too, for the same realm.
    pub responder: DefaultResponder,
    /// Refresh-token rotation and sessions.
    pub refresh: RefreshTokens,
    /// Whether this server issues tokens (login, refresh); not with `JWKS_URL`
    /// or `OIDC_ISSUER`.
    pub local_login: bool,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("users", &self.users)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state for `config`, with the demo users and the in-memory store.
    pub fn new(config: &Config) -> Result<Self, tower_jwt_auth::ConfigError> {
        Self::with_store(config, Arc::new(MemoryStore::new()))
    }

    /// The state for `config`, with the demo users and refresh tokens in `store`.
    pub fn with_store(
        config: &Config,
        store: Arc<dyn RefreshStore>,
    ) -> Result<Self, tower_jwt_auth::ConfigError> {
        // HS256 only: the verifier allows exactly the algorithm of its key.
        let verifier = Verifier::builder()
            .key(VerificationKey::hmac(&config.secret)?)
            .issuer(&config.issuer)
            .audience(&config.audience)
            .build()?;
        let responder = DefaultResponder::new(REALM)?;
        let tokens = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, &config.secret)?)
            .issuer(&config.issuer)
            .audience(&config.audience);
        let refresh = RefreshTokens::new(store, tokens.clone());
        // Access tokens of ended sessions are refused at once.
        let auth = JwtAuthLayer::builder(verifier)
            .responder(responder.clone())
            .check(refresh.session_check())
            .build()?;
        Ok(Self {
            users: UserStore::with_demo_users(),
            tokens,
            auth,
            responder,
            refresh,
            local_login: true,
        })
    }

    /// The state for `config`: with the provider's keys if it names a
    /// provider (fetched now; an unreachable provider is an error), with
    /// our own secret otherwise.
    pub async fn from_config(
        config: &Config,
        store: Arc<dyn RefreshStore>,
    ) -> Result<Self, String> {
        let invalid = |e: tower_jwt_auth::ConfigError| format!("invalid configuration: {e}");
        let Some(provider) = &config.provider else {
            return Self::with_store(config, store).map_err(invalid);
        };
        #[cfg(not(feature = "jwks"))]
        return Err(format!("{provider:?} needs the `jwks` feature"));
        #[cfg(feature = "jwks")]
        {
            use tower_jwt_auth::jwks::RemoteJwks;
            let remote = match provider {
                ProviderKeys::JwksUrl(url) => RemoteJwks::builder(url),
                ProviderKeys::OidcIssuer(issuer) => RemoteJwks::discover(issuer),
            };
            let remote = remote
                .build()
                .await
                .map_err(|e| format!("cannot load the provider's keys: {e}"))?;
            // The algorithms are those of the provider's keys (RS256, ES256, EdDSA...).
            let verifier = Verifier::builder()
                .jwks(remote)
                .issuer(&config.issuer)
                .audience(&config.audience)
                .build()
                .map_err(invalid)?;
            let mut state = Self::with_store(config, store).map_err(invalid)?;
            // No session check: the provider's tokens carry no local session.
            state.auth = JwtAuthLayer::builder(verifier)
                .responder(state.responder.clone())
                .build()
                .map_err(invalid)?;
            state.local_login = false;
            Ok(state)
        }
    }

    /// The token response of a successful login: a new session on `device`.
    pub async fn issue_tokens(
        &self,
        user: &User,
        device: Option<&str>,
    ) -> Result<TokenResponse, RefreshError> {
        let subject = Subject::new(&user.id).role(user.role.as_str());
        let pair = self.refresh.login(subject, device).await?;
        Ok(TokenResponse {
            expires_in: pair.access_token.expires_in().as_secs(),
            access_token: pair.access_token.into_string(),
            token_type: "bearer",
            refresh_token: pair.refresh_token.into_string(),
        })
    }
}

/// The router. [`JwtAuthLayer`] is applied to the authenticated routes before
/// the public ones are merged in (`Router::layer` wraps only the routes added
/// so far), so login needs no token. Add new public routes to `public`, and
/// protected ones to `authenticated`.
pub fn app(state: AppState) -> Router {
    // ADMIN implies USER, so administrators may use the user routes too.
    let users_or_admins = RequireRoleLayer::any_of([Role::User.as_str()])
        .hierarchy(RoleHierarchy::new().grant(Role::Admin.as_str(), [Role::User.as_str()]))
        .responder(state.responder.clone());
    let admins =
        RequireRoleLayer::any_of([Role::Admin.as_str()]).responder(state.responder.clone());

    let authenticated = Router::new()
        .route("/users/me", get(me))
        .route("/users/sessions", get(sessions))
        .route("/users/logout", post(logout))
        .route("/users/logout-all", post(logout_all))
        .route("/users", put(update_me).route_layer(users_or_admins))
        .route("/admin/users", get(list_users).route_layer(admins))
        .layer(state.auth.clone());

    // With a provider's keys, this server issues no tokens: its own (HS256)
    // would not verify. Login and refresh are then 404.
    if !state.local_login {
        return Router::new()
            .route("/users/login", post(no_local_tokens))
            .route("/users/refresh", post(no_local_tokens))
            .merge(authenticated)
            .with_state(state);
    }

    let public = Router::new()
        .route("/users/login", post(login))
        .route_service("/users/refresh", refresh_endpoint(&state));

    public.merge(authenticated).with_state(state)
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

/// Login and refresh with `JWKS_URL` or `OIDC_ISSUER`: tokens come from the provider.
async fn no_local_tokens() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "this server issues no tokens; get them from the identity provider",
    )
}

/// The OAuth 2.0 password grant (RFC 6749 section 4.3.2).
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The user's email.
    pub username: String,
    /// The user's password.
    pub password: String,
    /// `password` if given (some clients send it, others do not).
    pub grant_type: Option<String>,
}

/// A successful token response (RFC 6749 section 5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// The access token's lifetime in seconds.
    pub expires_in: u64,
    /// The refresh token.
    pub refresh_token: String,
}

/// `POST /users/refresh`: users are looked up again on every refresh, so a
/// role change reaches the next access token, and a deleted user's session ends.
fn refresh_endpoint(
    state: &AppState,
) -> RefreshEndpoint<impl Fn(String) -> RefreshLookup + Clone + Send + Sync + 'static> {
    let users = state.users.clone();
    RefreshEndpoint::new(state.refresh.clone(), move |user_id: String| {
        let users = users.clone();
        Box::pin(async move {
            Ok(users
                .get(&user_id)
                .await
                .map(|user| Subject::new(user.id).role(user.role.as_str())))
        }) as RefreshLookup
    })
}

/// The future of the refresh endpoint's user lookup.
type RefreshLookup = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Option<Subject>, StoreError>> + Send>,
>;

/// The device label of a login: its `User-Agent`, shortened.
fn device_label(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(header::USER_AGENT)?.to_str().ok()?;
    Some(agent.chars().take(100).collect())
}

fn refresh_error(error: RefreshError) -> Response {
    tracing::error!(error = %error, "refresh store");
    error.to_response().map(axum::body::Body::from)
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if form.grant_type.as_deref().is_some_and(|g| g != "password") {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only the password grant is supported",
        )
        .into_response();
    }
    let Some(user) = state
        .users
        .authenticate(&form.username, &form.password)
        .await
    else {
        // RFC 6749 section 5.2 would answer 400; this API's contract is 401.
        // No `WWW-Authenticate`: the credentials go in the form, not in an
        // HTTP authentication scheme, so there is no challenge to offer.
        tracing::info!("login failed");
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "invalid username or password",
        )
        .into_response();
    };
    tracing::info!(user = %user.id, "login");
    match state
        .issue_tokens(&user, device_label(&headers).as_deref())
        .await
    {
        Ok(tokens) => no_store(Json(tokens).into_response()),
        Err(error) => refresh_error(error),
    }
}

/// The body of `POST /users/logout`.
#[derive(Debug, Deserialize)]
pub struct LogoutRequest {
    /// The refresh token of the session to end.
    pub refresh_token: String,
}

async fn logout(
    State(state): State<AppState>,
    claims: Claims<AccessClaims>,
    Json(request): Json<LogoutRequest>,
) -> Response {
    // Another user's token, or an unknown one, ends nothing, and says so to no one.
    match state
        .refresh
        .logout(&claims.sub, &request.refresh_token)
        .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => refresh_error(error),
    }
}

async fn logout_all(State(state): State<AppState>, claims: Claims<AccessClaims>) -> Response {
    match state.refresh.logout_all(&claims.sub).await {
        Ok(revoked) => Json(serde_json::json!({ "revoked": revoked })).into_response(),
        Err(error) => refresh_error(error),
    }
}

/// One session in `GET /users/sessions`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionView {
    /// The session id (the access tokens' `sid`).
    pub id: String,
    /// The device label given at login.
    pub device: Option<String>,
    /// When the session started (Unix seconds).
    pub created_at: i64,
    /// When it was last refreshed (Unix seconds).
    pub last_used_at: i64,
    /// Whether the request's own access token belongs to it.
    pub current: bool,
}

async fn sessions(State(state): State<AppState>, claims: Claims<AccessClaims>) -> Response {
    let current = claims.registered().sid.clone();
    match state.refresh.sessions(&claims.sub).await {
        Ok(sessions) => Json(
            sessions
                .into_iter()
                .map(|s| SessionView {
                    current: current.as_deref() == Some(s.id.as_str()),
                    id: s.id,
                    device: s.device,
                    created_at: s.created_at,
                    last_used_at: s.last_used_at,
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(error) => refresh_error(error),
    }
}

/// `{"id", "role"}` of the token's user.
#[derive(Debug, Serialize, Deserialize)]
pub struct Me {
    /// The user id (`sub`).
    pub id: String,
    /// The role.
    pub role: Role,
}

async fn me(claims: Claims<AccessClaims>) -> Json<Me> {
    Json(Me {
        id: claims.sub.clone(),
        role: claims.role,
    })
}

/// The body of `PUT /users`.
#[derive(Debug, Deserialize)]
pub struct UpdateUser {
    /// The new display name.
    pub name: String,
    /// The new password.
    pub password: String,
}

async fn update_me(
    State(state): State<AppState>,
    claims: Claims<AccessClaims>,
    Json(update): Json<UpdateUser>,
) -> Result<Json<UserView>, ApiError> {
    let name = update.name.trim();
    if name.is_empty() {
        return Err(ApiError::unprocessable("the name must not be empty"));
    }
    if update.password.is_empty() {
        return Err(ApiError::unprocessable("the password must not be empty"));
    }
    let password = PasswordHash::new(&update.password);
    let user = state
        .users
        .update(&claims.sub, |user| {
            user.name = name.to_owned();
            user.password = password;
        })
        .await
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the user does not exist",
            )
        })?;
    // A new password ends every other session: whoever else held one (a
    // stolen refresh token, say) is out. A production app would also ask for
    // the current password before changing it; this example keeps the API of
    // the seed design, `{"name", "password"}`.
    let current = claims.registered().sid.clone();
    let sessions = state.refresh.sessions(&user.id).await.map_err(|e| {
        tracing::error!(error = %e, "listing sessions failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again later",
        )
    })?;
    for session in sessions {
        if Some(&session.id) != current.as_ref()
            && let Err(e) = state.refresh.end_session(&user.id, &session.id).await
        {
            tracing::error!(error = %e, "ending a session failed");
        }
    }
    tracing::info!(user = %user.id, "user updated; other sessions ended");
    Ok(Json(UserView::from(&user)))
}

async fn list_users(State(state): State<AppState>) -> Json<Vec<UserView>> {
    Json(state.users.list().await)
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// An error answered as `{"error", "error_description"}`, the shape the
/// layers use too.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
}

impl ApiError {
    /// An error with this status, code and description.
    pub fn new(status: StatusCode, error: &'static str, description: &'static str) -> Self {
        Self {
            status,
            error,
            description,
        }
    }

    fn unprocessable(description: &'static str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            description,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        });
        let response = (self.status, Json(body)).into_response();
        // Token endpoint answers must not be cached (RFC 6749 section 5.1);
        // harmless elsewhere.
        no_store(response)
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

#[tokio::main]
async fn main() -> std::process::ExitCode {
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
    if config.secret_generated && config.provider.is_none() {
        tracing::warn!(
            "JWT_SECRET is not set: using a random secret, so tokens will not survive a restart"
        );
    }
    let store = config.store.connect().await?;
    let state = AppState::from_config(&config, store).await?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    tracing::info!(
        address = %config.bind,
        issuer = %config.issuer,
        audience = %config.audience,
        store = ?config.store,
        provider = ?config.provider,
        "listening; demo users: user@example.com / user-password, admin@example.com / admin-password"
    );
    axum::serve(listener, app(state))
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
