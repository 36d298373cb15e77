//! What every handler shares, and the router that puts handlers behind the layers.

use std::{fmt, sync::Arc};

use axum::{
    Router,
    routing::{get, post, put},
};
use serde::Deserialize;
use tower_jwt_auth::{
    Algorithm, ConfigError, DefaultResponder, JwtAuthLayer, RequireRoleLayer, RoleHierarchy,
    SigningKey, TokenIssuer, VerificationKey, Verifier,
    refresh::{MemoryStore, RefreshError, RefreshStore, RefreshTokens, Subject, TokenResponse},
};

use super::{
    config::Config,
    handlers::{
        list_users, login, logout, logout_all, me, no_local_tokens, refresh_endpoint, sessions,
        update_me,
    },
    users::{Role, User, UserStore},
};

/// The realm named in the `WWW-Authenticate` challenges.
pub const REALM: &str = "tower-jwt-auth-example";

/// The application's claims: what handlers read from `Claims<AccessClaims>`.
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
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        Self::with_store(config, Arc::new(MemoryStore::new()))
    }

    /// The state for `config`, with the demo users and refresh tokens in `store`.
    pub fn with_store(config: &Config, store: Arc<dyn RefreshStore>) -> Result<Self, ConfigError> {
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
        let invalid = |e: ConfigError| format!("invalid configuration: {e}");
        let Some(provider) = &config.provider else {
            return Self::with_store(config, store).map_err(invalid);
        };
        #[cfg(not(feature = "jwks"))]
        return Err(format!("{provider:?} needs the `jwks` feature"));
        #[cfg(feature = "jwks")]
        {
            use super::config::ProviderKeys;
            use tower_jwt_auth::keys::RemoteJwks;
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
        Ok(pair.response())
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
