//! The refresh endpoint: a Tower service any stack can mount.

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
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
    csrf::{self, CsrfPolicy, CsrfSettings},
    oauth::{self, invalid_request},
    store::StoreError,
};
use crate::{
    ConfigError,
    cookie::{self, CookieError},
    dpop::Dpop,
};

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
/// an HttpOnly cookie instead, and the new one is set there too; a refresh
/// from the cookie must then pass CSRF checks (a custom header, fetch
/// metadata, optionally an `Origin` allow-list), or get 403, and form and
/// `text/plain` bodies are refused (see
/// [`cookie`](RefreshEndpointBuilder::cookie)).
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
    cookie: Option<Arc<CookieMode>>,
    dpop: Option<Dpop>,
}

/// Cookie mode: the cookie's name and the CSRF checks a refresh from it must pass.
#[derive(Debug)]
struct CookieMode {
    name: String,
    csrf: CsrfPolicy,
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
            csrf: CsrfSettings::default(),
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
    csrf: CsrfSettings,
    dpop: Option<Dpop>,
}

impl<F> fmt::Debug for RefreshEndpointBuilder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshEndpointBuilder")
            .field("tokens", &self.tokens)
            .field("cookie", &self.cookie)
            .field("csrf", &self.csrf)
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
    /// The name must be a cookie-name, an HTTP token (letters, digits and
    /// ``!#$%&'*+-.^_`|~``); [`build`](Self::build) refuses anything else.
    /// The cookie is read by the same rules as
    /// [`TokenSource::Cookie`](crate::TokenSource::Cookie): the wanted
    /// cookie sent twice, or holding a byte outside RFC 6265's
    /// cookie-octets, is refused with 400 `invalid_request`; other cookies
    /// of the header, valid or not, are ignored.
    ///
    /// # Cross-site request forgery
    ///
    /// The browser sends the cookie with any request to the endpoint, and
    /// `SameSite=Strict` does not stop a sibling origin of the same site
    /// (`evil.example.com` beside `app.example.com`). So in cookie mode:
    ///
    /// - a form or `text/plain` body (`application/x-www-form-urlencoded`,
    ///   `multipart/form-data`, `text/plain`: what an HTML form can send) is
    ///   refused with 400 `invalid_request`, "a cookie-mode refresh takes a
    ///   JSON body or none, not a form or text/plain", whatever carries the
    ///   token; send JSON or no body;
    /// - a refresh whose token comes from the cookie must carry the CSRF
    ///   header, `X-Requested-With` (any non-empty value) unless
    ///   [`csrf_header`](Self::csrf_header) names another: without it, 403
    ///   `invalid_request`, "the refresh-token cookie needs the
    ///   X-Requested-With header". Another origin cannot add a custom header
    ///   without a CORS preflight, which this endpoint does not answer;
    /// - such a refresh with `Sec-Fetch-Site: cross-site`, or `same-site`
    ///   from an origin not in [`allowed_origins`](Self::allowed_origins), or
    ///   an `Origin` outside a configured allow-list, is refused with 403
    ///   `invalid_request`, "the request's origin may not use the
    ///   refresh-token cookie".
    ///
    /// 403, not RFC 6749's usual 400: the request is well formed but comes
    /// from where the cookie may not be used (OWASP's CSRF advice), and
    /// resending it will not help; the body keeps the RFC 6749 section 5.2
    /// shape. Nothing is looked up or spent before these checks pass. A
    /// token sent in the body is not subject to them: it is not ambient
    /// (a forger cannot know it).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tower_jwt_auth::refresh::{MemoryStore, RefreshEndpoint, RefreshTokens, Subject};
    /// use tower_jwt_auth::refresh::store::StoreError;
    /// # use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer};
    /// # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
    /// # let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?);
    /// # let tokens = RefreshTokens::new(Arc::new(MemoryStore::new()), issuer);
    /// // The browser app: fetch("/token/refresh", {method: "POST",
    /// //   credentials: "include", headers: {"X-Requested-With": "fetch"}})
    /// let endpoint = RefreshEndpoint::builder(tokens, |user_id: String| async move {
    ///     Ok::<_, StoreError>(Some(Subject::new(user_id)))
    /// })
    /// .cookie("__Host-refresh")
    /// .build()?;
    /// # let _ = endpoint;
    /// # Ok(())
    /// # }
    /// ```
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        self.cookie = Some(name.into());
        self
    }

    /// Cookie mode: the header a refresh from the cookie must carry, with
    /// any non-empty value, instead of `X-Requested-With` (see
    /// [`cookie`](Self::cookie)).
    ///
    /// [`build`](Self::build) refuses a name that is not a header name, a
    /// CORS-safelisted header any page may send (`Content-Type`, `Accept`,
    /// ...), or one the browser sets itself (`Origin`, `Cookie`, `Sec-*`,
    /// ...), and this setting without [`cookie`](Self::cookie).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tower_jwt_auth::refresh::{MemoryStore, RefreshEndpoint, RefreshTokens, Subject};
    /// use tower_jwt_auth::refresh::store::StoreError;
    /// # use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer};
    /// # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
    /// # let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?);
    /// # let tokens = RefreshTokens::new(Arc::new(MemoryStore::new()), issuer);
    /// let endpoint = RefreshEndpoint::builder(tokens, |user_id: String| async move {
    ///     Ok::<_, StoreError>(Some(Subject::new(user_id)))
    /// })
    /// .cookie("__Host-refresh")
    /// .csrf_header("X-CSRF")
    /// .build()?;
    /// # let _ = endpoint;
    /// # Ok(())
    /// # }
    /// ```
    pub fn csrf_header(mut self, name: impl Into<String>) -> Self {
        self.csrf.header = Some(name.into());
        self
    }

    /// Cookie mode: require no CSRF header; the
    /// [`allowed_origins`](Self::allowed_origins) list is then the defence,
    /// and a refresh from the cookie must name one of them in `Origin`
    /// (without `Origin`, 403). [`build`](Self::build) refuses this without
    /// an allow-list, with [`csrf_header`](Self::csrf_header), or without
    /// [`cookie`](Self::cookie).
    pub fn without_csrf_header(mut self) -> Self {
        self.csrf.without_header = true;
        self
    }

    /// Cookie mode: the origins that may refresh from the cookie, as
    /// browsers send them in `Origin` (`https://app.example.com`,
    /// `http://localhost:3000`: scheme, lower-case host, a port only when
    /// not the default; no path or trailing slash). List the endpoint's own
    /// origin too.
    ///
    /// With the list, a refresh from the cookie naming another origin in
    /// `Origin` is refused (403), and one with `Sec-Fetch-Site: same-site`
    /// passes only from a listed origin (without the list, never). The CSRF
    /// header is still required unless
    /// [`without_csrf_header`](Self::without_csrf_header). [`build`](Self::build)
    /// refuses an empty list, an entry that is not a serialized origin
    /// (`*`, `null`, a path...), and this setting without
    /// [`cookie`](Self::cookie).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tower_jwt_auth::refresh::{MemoryStore, RefreshEndpoint, RefreshTokens, Subject};
    /// use tower_jwt_auth::refresh::store::StoreError;
    /// # use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer};
    /// # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
    /// # let issuer = TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?);
    /// # let tokens = RefreshTokens::new(Arc::new(MemoryStore::new()), issuer);
    /// // The app at https://app.example.com calls https://api.example.com.
    /// let endpoint = RefreshEndpoint::builder(tokens, |user_id: String| async move {
    ///     Ok::<_, StoreError>(Some(Subject::new(user_id)))
    /// })
    /// .cookie("refresh")
    /// .allowed_origins(["https://app.example.com", "https://api.example.com"])
    /// .build()?;
    /// # let _ = endpoint;
    /// # Ok(())
    /// # }
    /// ```
    pub fn allowed_origins<I>(mut self, origins: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.csrf.origins = Some(origins.into_iter().map(Into::into).collect());
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
    /// A [`ConfigError`] if the cookie name is not an HTTP token, if a CSRF
    /// setting is given without a cookie, or if the CSRF settings are
    /// invalid or leave cookie mode without a defence (see
    /// [`csrf_header`](Self::csrf_header),
    /// [`without_csrf_header`](Self::without_csrf_header) and
    /// [`allowed_origins`](Self::allowed_origins)).
    pub fn build(self) -> Result<RefreshEndpoint<F>, ConfigError> {
        let cookie = match self.cookie {
            Some(name) if !cookie::is_name(&name) => {
                return Err(ConfigError::new(format!(
                    "the refresh-token cookie name {name:?} is not an HTTP token"
                )));
            }
            Some(name) => Some(Arc::new(CookieMode {
                name,
                csrf: self.csrf.build()?,
            })),
            None if self.csrf.is_set() => {
                return Err(ConfigError::new(
                    "the CSRF settings apply to cookie mode only: set cookie(name) too",
                ));
            }
            None => None,
        };
        Ok(RefreshEndpoint {
            tokens: self.tokens,
            subject: self.subject,
            cookie,
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
        if self.cookie.is_some() && csrf::is_simple_body(&parts.headers) {
            return invalid_request(csrf::SIMPLE_BODY);
        }
        let from_cookie = match self.cookie.as_deref() {
            Some(mode) => match cookie::find(&parts.headers, &mode.name) {
                Ok(value) => value.map(str::to_owned),
                Err(CookieError::Repeated) => {
                    return invalid_request("the refresh-token cookie is repeated");
                }
                Err(CookieError::Malformed) => {
                    return invalid_request("the refresh-token cookie is malformed");
                }
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
            Ok(None) => match (from_cookie, self.cookie.as_deref()) {
                (Some(token), Some(mode)) => {
                    if let Err(description) = mode.csrf.check(&parts.headers) {
                        return csrf::refused(description);
                    }
                    token
                }
                _ => return invalid_request("refresh_token is required"),
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
                let Some(CookieMode { name, .. }) = self.cookie.as_deref() else {
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
