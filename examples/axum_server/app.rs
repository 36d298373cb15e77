//! What every handler shares, and the router that puts handlers behind the layers.

use std::{fmt, sync::Arc};

use axum::{
    Router, middleware,
    routing::{get, post, put},
};
use serde::Deserialize;
use tower_jwt_auth::{
    Algorithm, AuthError, Claims, ConfigError, DefaultResponder, JwtAuthLayer, RequireRoleLayer,
    RoleHierarchy, SigningKey, TokenIssuer, VerificationKey, Verifier,
    auth::Checked,
    dpop::{Dpop, DpopProof},
    refresh::{
        DEFAULT_SESSION_LIFETIME, MemoryStore, RefreshError, RefreshTokens, Subject, TokenPair,
        TokenResponse, store::RefreshStore,
    },
    resource_metadata::ProtectedResourceMetadata,
};

use super::{
    config::{Config, ProviderConfig, RoleClaim},
    handlers::{
        list_users, login, logout, logout_all, me, not_in_provider_mode, provider_me,
        refresh_endpoint, sessions, update_me,
    },
    limit::{LoginLimiter, limit_logins},
    stores::SessionCheck,
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

/// The claims of an identity provider's token (provider mode): `sub` only is
/// required, so every valid token of the provider is accepted, with or
/// without roles; `GET /admin/users` reads the roles itself (`ROLE_CLAIM`).
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderClaims {
    /// The subject: a user, or a client for `client_credentials` tokens.
    pub sub: String,
    /// The `role` claim, as the provider wrote it (a string, an array...).
    #[serde(default)]
    pub role: Option<serde_json::Value>,
}

/// Provider mode's layers: they replace [`AppState::auth`] and the role layers.
#[derive(Clone)]
pub struct ProviderAuth {
    /// Verifies the providers' tokens, each issuer with its own keys.
    pub auth: JwtAuthLayer<ProviderClaims>,
    /// `GET /admin/users`: `ADMIN_ROLE` in `ROLE_CLAIM`.
    pub admins: RequireRoleLayer,
    /// The verifier inside `auth`: [`Verifier::is_ready`] turns true once
    /// every issuer's keys are at hand (with `JWKS_LAZY=1`, not at start).
    pub verifier: Verifier,
    /// `/.well-known/oauth-protected-resource` (RFC 9728): the audience as
    /// the resource, the providers as its authorization servers.
    pub metadata: ProtectedResourceMetadata,
}

impl ProviderAuth {
    /// The layers for `verifier`, with the role requirement of `provider`.
    pub fn new(
        verifier: Verifier,
        provider: &ProviderConfig,
        audience: &str,
        dpop: &Dpop,
        responder: &DefaultResponder,
    ) -> Result<Self, ConfigError> {
        // No session check: the provider's tokens carry no local session.
        // Bearer tokens, and DPoP-bound ones with their proofs.
        let auth = JwtAuthLayer::builder(verifier.clone())
            .presentation(dpop.or_bearer())
            .responder(responder.clone())
            .build()?;
        let metadata = ProtectedResourceMetadata::builder(audience)
            .authorization_servers(provider.issuers.iter().map(|keys| keys.issuer()))
            .dpop(dpop)
            .build()?;
        let admins = RequireRoleLayer::any_of([provider.admin_role.as_str()]);
        let admins = match &provider.role_claim {
            RoleClaim::Claim(name) => admins.claim(name),
            RoleClaim::Path(path) => admins.claim_path(path),
            RoleClaim::Scope => admins.scope(),
        };
        Ok(Self {
            auth,
            admins: admins.responder(responder.clone()),
            verifier,
            metadata,
        })
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The users.
    pub users: UserStore,
    /// Mints access tokens.
    pub tokens: TokenIssuer,
    /// Verifies this server's own access tokens (not used in provider mode).
    pub auth: JwtAuthLayer<AccessClaims>,
    /// Answers rejections; the role layers need it too, for the same realm.
    pub responder: DefaultResponder,
    /// Refresh-token rotation and sessions.
    pub refresh: RefreshTokens,
    /// How the layer checks access tokens' sessions: the logout broadcast
    /// (Redis, PostgreSQL) or a lookup per request (memory).
    pub sessions: SessionCheck,
    /// The DPoP proof rules: for the protected routes, and for the login and
    /// refresh endpoints, where a proof binds the session to its key.
    pub dpop: Dpop,
    /// `/.well-known/oauth-protected-resource` of issuing mode.
    pub metadata: ProtectedResourceMetadata,
    /// Provider mode (`OIDC_ISSUER` or `JWKS_URL`): its layers verify the
    /// providers' tokens instead of `auth`, and this server issues none.
    pub provider: Option<ProviderAuth>,
    /// The login attempts left to each client (`LOGIN_RATE_PER_MIN`).
    pub login_limiter: LoginLimiter,
    /// Key-ring mode (`SIGNING_ALG`): the routes that publish the keys,
    /// merged into the router as they are.
    pub well_known: Option<Router>,
    /// Key-ring mode: the ring that signs `tokens` and verifies them.
    #[cfg(feature = "key-ring")]
    pub key_ring: Option<tower_jwt_auth::keys::ring::KeyRing>,
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

    /// The state for `config`, with the demo users and refresh tokens in
    /// `store`, signing with the HS256 secret.
    pub fn with_store(config: &Config, store: Arc<dyn RefreshStore>) -> Result<Self, ConfigError> {
        // HS256 only: the verifier allows exactly the algorithm of its key.
        let verifier = Verifier::builder()
            .key(VerificationKey::hmac(&config.secret)?)
            .issuer(&config.issuer)
            .audience(&config.audience)
            .build()?;
        let tokens = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, &config.secret)?)
            .issuer(&config.issuer)
            .audience(&config.audience);
        Self::assemble(config, store, tokens, verifier)
    }

    /// The state around an issuer and the verifier of its tokens, with the
    /// demo users and refresh tokens in `store`, and `config`'s login limit.
    pub fn assemble(
        config: &Config,
        store: Arc<dyn RefreshStore>,
        tokens: TokenIssuer,
        verifier: Verifier,
    ) -> Result<Self, ConfigError> {
        let responder = DefaultResponder::new(REALM)?;
        let refresh = RefreshTokens::new(store, tokens.clone());
        let users = UserStore::with_demo_users();
        let dpop = dpop(config)?;
        // Access tokens of ended sessions are refused at once (from memory
        // with the logout broadcast on Redis and PostgreSQL, by a lookup in
        // memory), and so are those of sessions started under older
        // credentials (a login that raced a password change); DPoP-bound
        // tokens (a login with a proof) need their proofs.
        let sessions = config.store.session_check(&refresh)?;
        let session_check = sessions.check(&refresh);
        let epochs = users.clone();
        let auth = JwtAuthLayer::builder(verifier)
            .presentation(dpop.or_bearer())
            .responder(responder.clone())
            .check(move |claims: &Claims<AccessClaims>| {
                let live = session_check(claims);
                let users = epochs.clone();
                let user_id = claims.sub.clone();
                let session_id = claims.session_id().map(str::to_owned);
                async move {
                    match live {
                        Checked::Ready(result) => result?,
                        Checked::Pending(pending) => pending.await?,
                    }
                    match session_id {
                        Some(sid) if users.is_stale(&user_id, &sid).await => {
                            Err(AuthError::rejected("the session has ended"))
                        }
                        _ => Ok(()),
                    }
                }
            })
            .build()?;
        let metadata = ProtectedResourceMetadata::builder(&config.audience)
            .authorization_server(&config.issuer)
            .dpop(&dpop)
            .build()?;
        Ok(Self {
            users,
            tokens,
            auth,
            responder,
            refresh,
            sessions,
            dpop,
            metadata,
            provider: None,
            login_limiter: LoginLimiter::per_minute(config.login_rate_per_min),
            well_known: None,
            #[cfg(feature = "key-ring")]
            key_ring: None,
        })
    }

    /// The state for `config`: in provider mode with the providers' keys
    /// (fetched now, an unreachable provider an error, unless `JWKS_LAZY=1`),
    /// in key-ring mode with the ring (loaded or made now), with our own
    /// secret otherwise.
    pub async fn from_config(
        config: &Config,
        store: Arc<dyn RefreshStore>,
    ) -> Result<Self, String> {
        let invalid = |e: ConfigError| format!("invalid configuration: {e}");
        let mut state = match &config.signing {
            None => Self::with_store(config, store).map_err(invalid)?,
            #[cfg(feature = "key-ring")]
            Some(signing) => super::signing::state(config, signing, store).await?,
            #[cfg(not(feature = "key-ring"))]
            Some(_) => return Err("SIGNING_ALG needs the `key-ring` feature".into()),
        };
        if let Some(provider) = &config.provider {
            let verifier = provider_verifier(provider, &config.audience).await?;
            state.provider = Some(
                ProviderAuth::new(
                    verifier,
                    provider,
                    &config.audience,
                    &state.dpop,
                    &state.responder,
                )
                .map_err(invalid)?,
            );
        }
        Ok(state)
    }

    /// The token response of a successful login: a new session on `device`,
    /// under the credential epoch `user` was read with, bound to the key of
    /// `proof` when the login carried one (`token_type` `DPoP`).
    pub async fn issue_tokens(
        &self,
        user: &User,
        device: Option<&str>,
        proof: Option<&DpopProof>,
    ) -> Result<TokenResponse, RefreshError> {
        Ok(self
            .start_session(user, user.epoch, device, proof)
            .await?
            .response())
    }

    /// A new session for `user` on `device`, remembered as started under the
    /// credential epoch `epoch`, bound to the key of `proof` if any.
    pub async fn start_session(
        &self,
        user: &User,
        epoch: u64,
        device: Option<&str>,
        proof: Option<&DpopProof>,
    ) -> Result<TokenPair, RefreshError> {
        let subject = Subject::new(&user.id).role(user.role.as_str());
        let pair = match proof {
            Some(proof) => {
                self.refresh
                    .login_with_proof(subject, device, proof)
                    .await?
            }
            None => self.refresh.login(subject, device).await?,
        };
        let lifetime = i64::try_from(DEFAULT_SESSION_LIFETIME.as_secs()).unwrap_or(i64::MAX);
        self.users
            .record_session(
                &user.id,
                &pair.session.id,
                epoch,
                pair.session.created_at,
                lifetime,
            )
            .await;
        Ok(pair)
    }
}

/// The DPoP rules: proofs name `PUBLIC_URL`, or else the `Host` the client
/// called, over `http` (a developer's machine; behind a proxy, set
/// `PUBLIC_URL`).
fn dpop(config: &Config) -> Result<Dpop, ConfigError> {
    match &config.public_url {
        Some(url) => Dpop::builder().base_url(url).build(),
        None => Dpop::builder()
            .base_url("http://localhost")
            .trust_forwarded_headers()
            .build(),
    }
}

/// One verifier for every issuer of `provider`, each with its own keys
/// (several: routed by `iss` with [`Verifier::by_issuer`]); tokens must name
/// `audience`. The algorithms are those of the providers' keys (RS256,
/// ES256, EdDSA...).
#[cfg(feature = "jwks")]
async fn provider_verifier(provider: &ProviderConfig, audience: &str) -> Result<Verifier, String> {
    use super::config::ProviderKeys;
    use tower_jwt_auth::keys::RemoteJwks;

    let mut verifiers = Vec::with_capacity(provider.issuers.len());
    for keys in &provider.issuers {
        let remote = match keys {
            ProviderKeys::OidcIssuer(issuer) => RemoteJwks::discover(issuer),
            ProviderKeys::JwksUrl { url, issuer } => RemoteJwks::builder(url).issuer(issuer),
        };
        let remote = if provider.lazy { remote.lazy() } else { remote };
        let remote = remote.build().await.map_err(|e| {
            format!(
                "cannot load the provider's keys (issuer {:?}): {}",
                keys.issuer(),
                report(&e)
            )
        })?;
        // The issuer is the remote keys' own (discovered, or set above).
        let verifier = Verifier::builder()
            .jwks(remote)
            .audience(audience)
            .build()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        verifiers.push(verifier);
    }
    if verifiers.len() == 1 {
        return Ok(verifiers.remove(0));
    }
    Verifier::by_issuer(verifiers).map_err(|e| format!("invalid configuration: {e}"))
}

#[cfg(not(feature = "jwks"))]
async fn provider_verifier(_: &ProviderConfig, _: &str) -> Result<Verifier, String> {
    Err("JWKS_URL and OIDC_ISSUER need the `jwks` feature".into())
}

/// `error` with its causes, as one line.
#[cfg(feature = "jwks")]
fn report(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// The router. [`JwtAuthLayer`] is applied to the authenticated routes before
/// the public ones are merged in (`Router::layer` wraps only the routes added
/// so far), so login needs no token. Add new public routes to `public`, and
/// protected ones to `authenticated`. In provider mode, see [`provider_app`].
pub fn app(state: AppState) -> Router {
    if let Some(provider) = state.provider.clone() {
        return provider_app(state, provider);
    }

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

    // Login attempts are counted per client before the body is read.
    let login_limit = middleware::from_fn_with_state(state.login_limiter.clone(), limit_logins);
    let public = Router::new()
        .route("/users/login", post(login).route_layer(login_limit))
        .route_service("/users/refresh", refresh_endpoint(&state))
        .route_service(state.metadata.well_known_path(), state.metadata.clone());

    // Key-ring mode: the JWK Set and the discovery document, no token needed.
    let well_known = state.well_known.clone();
    let router = public.merge(authenticated).with_state(state);
    match well_known {
        Some(documents) => router.merge(documents),
        None => router,
    }
}

/// The router of provider mode: the providers' tokens on `/users/me` and
/// `/admin/users`. This server issues no tokens (its own, HS256, would not
/// verify) and keeps no sessions or accounts for the providers' users, so
/// the routes of those answer 404 `not_found`, with or without a token.
fn provider_app(state: AppState, provider: ProviderAuth) -> Router {
    let authenticated = Router::new()
        .route("/users/me", get(provider_me))
        .route("/admin/users", get(list_users).route_layer(provider.admins))
        .layer(provider.auth);
    Router::new()
        .route_service(
            provider.metadata.well_known_path(),
            provider.metadata.clone(),
        )
        .route("/users/login", post(not_in_provider_mode))
        .route("/users/refresh", post(not_in_provider_mode))
        .route("/users/logout", post(not_in_provider_mode))
        .route("/users/logout-all", post(not_in_provider_mode))
        .route("/users/sessions", get(not_in_provider_mode))
        .route("/users", put(not_in_provider_mode))
        .merge(authenticated)
        .with_state(state)
}
