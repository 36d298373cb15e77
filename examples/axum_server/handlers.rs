//! The route handlers and the bodies they read and answer.

use std::{future::Future, pin::Pin};

use axum::{
    Form, Json,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use tower_jwt_auth::{
    Claims,
    refresh::{RefreshEndpoint, RefreshError, Subject, store::StoreError},
};

use super::{
    app::{AccessClaims, AppState, ProviderClaims},
    error::{ApiError, no_store},
    users::{PasswordHash, Role, UserView},
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

/// `POST /users/refresh`: users are looked up again on every refresh, so a
/// role change reaches the next access token, and a deleted user's session ends.
pub fn refresh_endpoint(
    state: &AppState,
) -> RefreshEndpoint<impl Fn(String) -> RefreshLookup + Clone + Send + Sync + 'static> {
    let users = state.users.clone();
    RefreshEndpoint::builder(state.refresh.clone(), move |user_id: String| {
        let users = users.clone();
        Box::pin(async move {
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

/// The body of `POST /users/logout`.
#[derive(Debug, Deserialize)]
pub struct LogoutRequest {
    /// The refresh token of the session to end.
    pub refresh_token: String,
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

/// The body of `PUT /users`.
#[derive(Debug, Deserialize)]
pub struct UpdateUser {
    /// The new display name.
    pub name: String,
    /// The new password.
    pub password: String,
}

pub async fn update_me(
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

pub async fn list_users(State(state): State<AppState>) -> Json<Vec<UserView>> {
    Json(state.users.list().await)
}
