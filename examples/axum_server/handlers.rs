//! The route handlers and the bodies they read and answer.

use std::{fmt, future::Future, pin::Pin};

use axum::{
    Form, Json,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use tower_jwt_auth::{
    Claims,
    refresh::{RefreshEndpoint, RefreshError, Subject, TokenResponse, store::StoreError},
};

use super::{
    app::{AccessClaims, AppState, ProviderClaims},
    error::{ApiError, no_store},
    users::{ChangeError, PasswordHash, Role, UserView},
};

/// Login, refresh, logout, sessions and `PUT /users` in provider mode
/// (`OIDC_ISSUER` or `JWKS_URL`): tokens, sessions and accounts are the
/// identity provider's.
pub async fn not_in_provider_mode() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "this server issues no tokens and keeps no sessions: \
         use the identity provider for them",
    )
}

/// The OAuth 2.0 password grant (RFC 6749 section 4.3.2). `Debug` hides the
/// password.
#[derive(Deserialize)]
pub struct LoginForm {
    /// The user's email.
    pub username: String,
    /// The user's password.
    pub password: String,
    /// `password` if given (some clients send it, others do not).
    pub grant_type: Option<String>,
}

impl fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("grant_type", &self.grant_type)
            .finish()
    }
}

/// `POST /users/refresh`: users are looked up again on every refresh, so a
/// role change reaches the next access token, and a deleted user's session ends.
///
/// The lookup also ends the user's sessions that were started under an
/// older credential epoch (a login that checked the old password while a
/// password change ran): the session being refreshed, if it is one of them,
/// is then revoked, and the store refuses to rotate it (400 `invalid_grant`).
/// If they cannot be ended, the refresh fails with 503 and spends nothing.
pub fn refresh_endpoint(
    state: &AppState,
) -> RefreshEndpoint<impl Fn(String) -> RefreshLookup + Clone + Send + Sync + 'static> {
    let users = state.users.clone();
    let refresh = state.refresh.clone();
    RefreshEndpoint::builder(state.refresh.clone(), move |user_id: String| {
        let users = users.clone();
        let refresh = refresh.clone();
        Box::pin(async move {
            for session_id in users.stale_sessions(&user_id).await {
                refresh
                    .end_session(&user_id, &session_id)
                    .await
                    .map_err(|e| {
                        StoreError::with_source("ending a session of older credentials", e)
                    })?;
                users.forget_session(&session_id).await;
                tracing::info!(user = %user_id, "session of older credentials ended");
            }
            Ok(users
                .get(&user_id)
                .await
                .map(|user| Subject::new(user.id).role(user.role.as_str())))
        }) as RefreshLookup
    })
    // A session bound at login refreshes only with a proof by its key.
    .dpop(state.dpop.clone())
    .build()
    .expect("no cookie: nothing to refuse")
}

/// The future of the refresh endpoint's user lookup.
pub type RefreshLookup = Pin<Box<dyn Future<Output = Result<Option<Subject>, StoreError>> + Send>>;

/// The device label of a login: its `User-Agent`, shortened.
fn device_label(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(header::USER_AGENT)?.to_str().ok()?;
    Some(agent.chars().take(100).collect())
}

fn refresh_error(error: RefreshError) -> Response {
    tracing::info!(error = %error, "token request refused");
    error.to_response().map(axum::body::Body::from)
}

pub async fn login(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
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
    // A `DPoP` proof binds the session to its key (RFC 9449 section 5).
    let proof = match state
        .dpop
        .check_token_request(&method, &uri, &headers)
        .await
    {
        Ok(proof) => proof,
        Err(error) => return refresh_error(RefreshError::dpop(error)),
    };
    tracing::info!(user = %user.id, bound = proof.is_some(), "login");
    match state
        .issue_tokens(&user, device_label(&headers).as_deref(), proof.as_ref())
        .await
    {
        Ok(tokens) => no_store(Json(tokens).into_response()),
        Err(error) => refresh_error(error),
    }
}

/// The body of `POST /users/logout`. `Debug` hides the token.
#[derive(Deserialize)]
pub struct LogoutRequest {
    /// The refresh token of the session to end.
    pub refresh_token: String,
}

impl fmt::Debug for LogoutRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogoutRequest")
            .field("refresh_token", &"<redacted>")
            .finish()
    }
}

pub async fn logout(
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

pub async fn logout_all(State(state): State<AppState>, claims: Claims<AccessClaims>) -> Response {
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

pub async fn sessions(State(state): State<AppState>, claims: Claims<AccessClaims>) -> Response {
    let current = claims.session_id().map(str::to_owned);
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

pub async fn me(claims: Claims<AccessClaims>) -> Json<Me> {
    Json(Me {
        id: claims.sub.clone(),
        role: claims.role,
    })
}

/// `GET /users/me` in provider mode: `{"id"}`, with `"role"` when the token
/// has a `role` claim (as the provider wrote it).
#[derive(Debug, Serialize, Deserialize)]
pub struct ProviderMe {
    /// The subject (`sub`): a user, or a client.
    pub id: String,
    /// The `role` claim, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<serde_json::Value>,
}

pub async fn provider_me(claims: Claims<ProviderClaims>) -> Json<ProviderMe> {
    Json(ProviderMe {
        id: claims.sub.clone(),
        role: claims.role.clone(),
    })
}

/// The body of `PUT /users`. `Debug` hides the passwords.
#[derive(Deserialize)]
pub struct UpdateUser {
    /// The new display name.
    pub name: String,
    /// The new password.
    pub password: String,
    /// The current password: required, since the change ends every session.
    pub current_password: Option<String>,
}

impl fmt::Debug for UpdateUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateUser")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field(
                "current_password",
                &self.current_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The answer of `PUT /users`: the updated user, and the caller's new token
/// pair (every earlier session has ended). `Debug` hides the tokens.
#[derive(Debug, Serialize)]
pub struct UserUpdated {
    /// The user, without the password.
    pub user: UserView,
    /// A fresh token pair, the user's only session.
    pub tokens: TokenResponse,
}

/// `PUT /users`: a new name and password, given the current password.
///
/// In this order, so that a failure is reported before anything is changed:
/// the current password is checked (400 without it, 403 when wrong); every
/// session of the user ends in one step (logout-all; 503 if the store
/// fails, and the password stays); a fresh session for the caller starts
/// under the next credential epoch (503 if it cannot); then the name,
/// password and epoch change together. A login that checked the old
/// password meanwhile started its session under the old epoch, so that
/// session is refused (see [`refresh_endpoint`] and the layer's check).
pub async fn update_me(
    State(state): State<AppState>,
    claims: Claims<AccessClaims>,
    headers: HeaderMap,
    Json(update): Json<UpdateUser>,
) -> Result<Response, ApiError> {
    let name = update.name.trim();
    if name.is_empty() {
        return Err(ApiError::unprocessable("the name must not be empty"));
    }
    if update.password.is_empty() {
        return Err(ApiError::unprocessable("the password must not be empty"));
    }
    let Some(current) = update.current_password.as_deref() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "current_password is required to change the password",
        ));
    };
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the user does not exist",
        )
    };
    let wrong_password = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_grant",
            "the current password is wrong",
        )
    };
    let user = state.users.get(&claims.sub).await.ok_or_else(not_found)?;
    if !user.password.verify(current) {
        tracing::info!(user = %user.id, "password change refused: wrong current password");
        return Err(wrong_password());
    }

    // Every session ends, the caller's too, in one step; if that fails,
    // nothing else happens.
    let ended = state.refresh.logout_all(&user.id).await.map_err(|e| {
        tracing::error!(error = %e, "ending the sessions failed; the password was not changed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the sessions could not be ended, so the password was not changed: try again later",
        )
    })?;
    let epoch = user.epoch + 1;
    let fresh = state
        // Not bound to a DPoP key: the request's proof was made for this
        // resource, not for a token request.
        .start_session(&user, epoch, device_label(&headers).as_deref(), None)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "starting a session failed; the password was not changed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "no new session could be started, so the password was not changed: \
                 log in and try again",
            )
        })?;
    let password = PasswordHash::new(&update.password);
    match state
        .users
        .change_credentials(&user.id, current, name, password, epoch)
        .await
    {
        Ok(user) => {
            tracing::info!(user = %user.id, ended, "password changed; every earlier session ended");
            // It carries tokens: not to be cached.
            Ok(no_store(
                Json(UserUpdated {
                    user: UserView::from(&user),
                    tokens: fresh.response(),
                })
                .into_response(),
            ))
        }
        Err(error) => {
            // Another change came first: the fresh session must not outlive it.
            if let Err(e) = state.refresh.end_session(&user.id, &fresh.session.id).await {
                tracing::error!(error = %e, "ending the unused fresh session failed");
            }
            Err(match error {
                ChangeError::NotFound => not_found(),
                ChangeError::WrongPassword => wrong_password(),
            })
        }
    }
}

pub async fn list_users(State(state): State<AppState>) -> Json<Vec<UserView>> {
    Json(state.users.list().await)
}
