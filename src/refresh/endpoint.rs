//! The refresh endpoint: a Tower service any stack can mount.

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use tower_service::Service;

use super::RefreshError;
use super::{
    RefreshTokens, Subject,
    clock::now,
    oauth::{self, invalid_request},
    store::StoreError,
};
use crate::{ConfigError, dpop::Dpop};

/// The largest request body the endpoint reads.
const MAX_BODY: usize = 4 * 1024;

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: Option<String>,
    grant_type: Option<String>,
}

/// Why a request body was refused.
enum BadBody {
    /// 400 `invalid_request`, with this description.
    Invalid(&'static str),
    /// 400 `unsupported_grant_type`.
    UnsupportedGrant,
}

impl BadBody {
    fn to_response(&self) -> Response<String> {
        match self {
            Self::Invalid(description) => invalid_request(description),
            Self::UnsupportedGrant => oauth::error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type=refresh_token is supported",
            ),
        }
    }
}

/// The refresh token of an RFC 6749 section 6 form body
/// (`grant_type=refresh_token&refresh_token=...`), if it names one.
fn parse_form(bytes: &[u8]) -> Result<Option<String>, BadBody> {
    let (mut grant_type, mut token) = (None, None);
    for (name, value) in form_urlencoded::parse(bytes) {
        let slot = match &*name {
            "grant_type" => &mut grant_type,
            "refresh_token" => &mut token,
            _ => continue,
        };
        // RFC 6749 section 3.1: parameters must not be repeated.
        if slot.replace(value.into_owned()).is_some() {
            return Err(BadBody::Invalid("a parameter is repeated"));
        }
    }
    match grant_type.as_deref() {
        Some("refresh_token") => Ok(token),
        Some(_) => Err(BadBody::UnsupportedGrant),
        None => Err(BadBody::Invalid("grant_type is required")),
    }
}

/// The refresh token of a JSON body `{"refresh_token": ...}` (an optional
/// `grant_type` must be `refresh_token`).
fn parse_json(bytes: &[u8]) -> Result<Option<String>, BadBody> {
    let request = serde_json::from_slice::<RefreshRequest>(bytes)
        .map_err(|_| BadBody::Invalid("expected a JSON body with refresh_token"))?;
    match request.grant_type.as_deref() {
        None | Some("refresh_token") => Ok(request.refresh_token),
        Some(_) => Err(BadBody::UnsupportedGrant),
    }
}

/// `POST {"refresh_token": "..."}` → a new token pair, as a Tower service.
///
/// The request is JSON (`{"refresh_token": "..."}`, with an optional
/// `"grant_type": "refresh_token"`), or the RFC 6749 section 6 form
/// (`application/x-www-form-urlencoded`,
/// `grant_type=refresh_token&refresh_token=...`). Answers in the OAuth 2.0
/// shapes: 200 `{"access_token", "token_type": "bearer", "expires_in",
/// "refresh_token"}`; 400 `invalid_grant` for an unknown, expired, revoked or
/// reused token; 400 `unsupported_grant_type` for another grant; 400
/// `invalid_request` for a malformed request; 503 when the store fails.
/// With a [`cookie`](RefreshEndpointBuilder::cookie), the token may come in
/// an HttpOnly cookie instead, and the new one is set there too.
///
/// `subject` looks the user up on each refresh, so role changes reach the
/// next access token.
///
/// ```
/// # use std::sync::Arc;
/// use axum::{Router, routing::post};
/// use tower_jwt_auth::refresh::{MemoryStore, RefreshEndpoint, RefreshTokens, Subject};
/// # use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer};
/// # let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, [7u8; 32]).unwrap());
/// let tokens = RefreshTokens::new(Arc::new(MemoryStore::new()), issuer);
/// let endpoint = RefreshEndpoint::new(tokens, |user_id: String| async move {
///     // Look the user up in your database.
///     Ok(Some(Subject::new(user_id).role("USER")))
/// });
/// let app: Router = Router::new().route_service("/token/refresh", endpoint);
/// ```
#[derive(Clone)]
pub struct RefreshEndpoint<F> {
    tokens: RefreshTokens,
    subject: F,
    cookie: Option<String>,
    dpop: Option<Dpop>,
}

impl<F> fmt::Debug for RefreshEndpoint<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshEndpoint")
            .field("tokens", &self.tokens)
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl<F> RefreshEndpoint<F> {
    /// An endpoint rotating with `tokens`, looking users up with `subject`,
    /// reading the refresh token from the body only. See
    /// [`builder`](Self::builder) for a cookie.
    pub fn new(tokens: RefreshTokens, subject: F) -> Self {
        Self {
            tokens,
            subject,
            cookie: None,
            dpop: None,
        }
    }

    /// Configures an endpoint rotating with `tokens`, looking users up with
    /// `subject`. Mistakes surface in [`build`](RefreshEndpointBuilder::build).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use tower_jwt_auth::refresh::{
    ///     MemoryStore, RefreshEndpoint, RefreshTokens, Subject, store::StoreError,
    /// };
    /// # use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer};
    /// # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
    /// # let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?);
    /// # let tokens = RefreshTokens::new(Arc::new(MemoryStore::new()), issuer);
    /// let endpoint = RefreshEndpoint::builder(tokens, |user_id: String| async move {
    ///     Ok::<_, StoreError>(Some(Subject::new(user_id)))
    /// })
    /// .cookie("__Host-refresh")
    /// .build()?;
    /// # let _ = endpoint;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(tokens: RefreshTokens, subject: F) -> RefreshEndpointBuilder<F> {
        RefreshEndpointBuilder {
            tokens,
            subject,
            cookie: None,
            dpop: None,
        }
    }
}

/// Configures a [`RefreshEndpoint`]; made by [`RefreshEndpoint::builder`].
#[must_use]
pub struct RefreshEndpointBuilder<F> {
    tokens: RefreshTokens,
    subject: F,
    cookie: Option<String>,
    dpop: Option<Dpop>,
}

impl<F> fmt::Debug for RefreshEndpointBuilder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshEndpointBuilder")
            .field("tokens", &self.tokens)
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl<F> RefreshEndpointBuilder<F> {
    /// Also accepts the refresh token from the cookie `name` (when the body
    /// has none), and sets the new one there: `HttpOnly; Secure;
    /// SameSite=Strict; Path=/`. The response body then carries no
    /// `refresh_token`, so scripts never see it. A name starting with
    /// `__Host-` is recommended: browsers then refuse the cookie from other
    /// subdomains or without `Secure` and `Path=/`.
    ///
    /// The name must be a cookie-name token (letters, digits, `-`, `_`,
    /// `.`); [`build`](Self::build) refuses anything else.
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        self.cookie = Some(name.into());
        self
    }

    /// Checks the `DPoP` proof of each request (RFC 9449 section 5) with
    /// `dpop`, configured with the URL clients call this endpoint at: a
    /// session bound to a key at login refreshes only with a proof by that
    /// key, and its new access token stays bound (`token_type` `DPoP`). A bad
    /// proof is 400 `invalid_dpop_proof` (or `use_dpop_nonce` with
    /// `DPoP-Nonce`). Without this, every refresh of a bound session is
    /// refused.
    pub fn dpop(mut self, dpop: Dpop) -> Self {
        self.dpop = Some(dpop);
        self
    }

    /// The configured [`RefreshEndpoint`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] if the cookie name is empty or holds a character
    /// other than a letter, a digit, `-`, `_` or `.`.
    pub fn build(self) -> Result<RefreshEndpoint<F>, ConfigError> {
        if let Some(name) = &self.cookie {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !valid {
                return Err(ConfigError::new(
                    "a refresh-token cookie name must be letters, digits, `-`, `_` or `.`",
                ));
            }
        }
        Ok(RefreshEndpoint {
            tokens: self.tokens,
            subject: self.subject,
            cookie: self.cookie,
            dpop: self.dpop,
        })
    }
}

impl<F, Fut, B> Service<Request<B>> for RefreshEndpoint<F>
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Subject>, StoreError>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(request).await) })
    }
}

impl<F, Fut> RefreshEndpoint<F>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Option<Subject>, StoreError>>,
{
    async fn handle<B>(&self, request: Request<B>) -> Response<String>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if request.method() != http::Method::POST {
            let mut response = oauth::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "use POST",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let (parts, body) = request.into_parts();
        let from_cookie = match self.cookie.as_deref() {
            Some(name) => match cookie_value(&parts.headers, name) {
                Ok(value) => value,
                Err(()) => return invalid_request("the refresh-token cookie is repeated"),
            },
            None => None,
        };
        let Ok(collected) = Limited::new(body, MAX_BODY).collect().await else {
            return invalid_request("the request body is too large or unreadable");
        };
        let bytes = collected.to_bytes();
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let from_body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(None)
        } else if is_form {
            parse_form(&bytes)
        } else {
            parse_json(&bytes)
        };
        let token = match from_body {
            Ok(Some(token)) => token,
            Ok(None) => match from_cookie {
                Some(token) => token,
                None => return invalid_request("refresh_token is required"),
            },
            Err(bad) => return bad.to_response(),
        };
        let proof = match &self.dpop {
            Some(dpop) => match dpop
                .check_token_request(&parts.method, &parts.uri, &parts.headers)
                .await
            {
                Ok(proof) => proof,
                Err(error) => return RefreshError::dpop(error).to_response(),
            },
            None => None,
        };
        match self
            .tokens
            .refresh_with_proof(&token, proof.as_ref(), &self.subject)
            .await
        {
            Ok(pair) => {
                let Some(name) = &self.cookie else {
                    return pair.to_response();
                };
                // The token goes in the HttpOnly cookie only, never in the
                // body, where a script could read it.
                let mut body = pair.response();
                body.refresh_token = None;
                let mut response = body.to_response();
                let max_age = (pair.session.expires_at - now()).max(0);
                let cookie = format!(
                    "{name}={}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age}",
                    pair.refresh_token.as_str()
                );
                if let Ok(value) = HeaderValue::try_from(cookie) {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                }
                response
            }
            Err(error) => error.to_response(),
        }
    }
}

/// The value of the cookie `name`; `Err` if it is sent twice (a cookie
/// planted for a more specific path or a sibling domain could shadow ours).
fn cookie_value(headers: &http::HeaderMap, name: &str) -> Result<Option<String>, ()> {
    let mut values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned());
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    Ok(first)
}
