//! The issuer's published documents: its JWK Set and a minimal OpenID
//! Connect discovery document, served from a key ring.

use std::{
    convert::Infallible,
    fmt,
    future::{Ready, ready},
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use tower_service::Service;

use crate::{error::ConfigError, keys::ring::KeyRing};

/// The default `max-age` of both documents: 5 minutes (or a quarter of the
/// ring's rotation period, if that is shorter).
pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(5 * 60);

const JWKS_PATH: &str = "/.well-known/jwks.json";
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// A Tower service that publishes a [`KeyRing`]'s public keys (feature
/// `key-ring`):
///
/// - `GET {issuer path}/.well-known/jwks.json`: the JWK Set of the ring's
///   published keys (next, active, retired), public members only, as
///   `application/jwk-set+json`;
/// - `GET {issuer path}/.well-known/openid-configuration`, when an
///   [`issuer`](JwksServiceBuilder::issuer) is set: `{"issuer", "jwks_uri"}`,
///   what [`RemoteJwks::discover`](crate::keys::RemoteJwks::discover) needs
///   (not the full metadata of an OpenID provider).
///
/// Both carry `Cache-Control: public, max-age=...`
/// ([`max_age`](JwksServiceBuilder::max_age)). `HEAD` is answered like
/// `GET` without a body; another method gets 405 with `Allow: GET, HEAD`,
/// another path 404. The documents are the ring's as this instance last
/// synced it: every instance serves the same keys within a sync interval.
///
/// ```
/// use axum::Router;
/// use tower_jwt_auth::{Algorithm, JwksService, keys::ring::KeyRing};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ring = KeyRing::builder(Algorithm::ES256).build().await?;
/// let documents = JwksService::builder(ring)
///     .issuer("https://auth.example.com")
///     .build()?;
/// let app: Router = Router::new()
///     .route_service(documents.jwks_path(), documents.clone())
///     .route_service(documents.discovery_path().unwrap(), documents.clone());
/// # let _ = app;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct JwksService {
    inner: Arc<WellKnown>,
}

struct WellKnown {
    ring: KeyRing,
    jwks_path: String,
    /// The discovery document's path and body, when an issuer is set.
    discovery: Option<(String, Bytes)>,
    cache_control: HeaderValue,
}

impl fmt::Debug for JwksService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksService")
            .field("ring", &self.inner.ring)
            .field("jwks_path", &self.inner.jwks_path)
            .field(
                "discovery_path",
                &self.inner.discovery.as_ref().map(|(path, _)| path),
            )
            .field("cache_control", &self.inner.cache_control)
            .finish()
    }
}

/// Builds a [`JwksService`]; see [`JwksService::builder`]. Mistakes surface
/// from [`build`](Self::build).
#[derive(Debug)]
#[must_use]
pub struct JwksServiceBuilder {
    ring: KeyRing,
    issuer: Option<String>,
    max_age: Option<Duration>,
}

#[derive(Serialize)]
struct Discovery<'a> {
    issuer: &'a str,
    jwks_uri: &'a str,
}

impl JwksService {
    /// A builder for the documents of `ring`.
    pub fn builder(ring: KeyRing) -> JwksServiceBuilder {
        JwksServiceBuilder {
            ring,
            issuer: None,
            max_age: None,
        }
    }

    /// The path of the JWK Set: `/.well-known/jwks.json` after the
    /// issuer's path, if any.
    pub fn jwks_path(&self) -> &str {
        &self.inner.jwks_path
    }

    /// The path of the discovery document, when an issuer is set.
    pub fn discovery_path(&self) -> Option<&str> {
        self.inner.discovery.as_ref().map(|(path, _)| path.as_str())
    }

    fn respond(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        let (body, content_type) = if path == self.inner.jwks_path {
            (
                Bytes::from(self.inner.ring.jwks()),
                "application/jwk-set+json",
            )
        } else if let Some((_, document)) = self
            .inner
            .discovery
            .as_ref()
            .filter(|(discovery, _)| discovery == path)
        {
            (document.clone(), "application/json")
        } else {
            return plain(StatusCode::NOT_FOUND);
        };
        if method != Method::GET && method != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED);
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let length = body.len();
        let body = if method == Method::HEAD {
            Bytes::new()
        } else {
            body
        };
        let mut response = Response::new(Full::new(body));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        headers.insert(header::CACHE_CONTROL, self.inner.cache_control.clone());
        response
    }
}

fn plain(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

impl JwksServiceBuilder {
    /// The issuer (`iss`) of the ring's tokens: an `http(s)` URL, without
    /// query or fragment. Serves the discovery document, with the JWK Set's
    /// URL as `jwks_uri`, and puts both documents under the issuer's path
    /// (`https://auth.example.com/tenant-a` serves
    /// `/tenant-a/.well-known/jwks.json`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// How long caches may keep the documents (default 5 minutes, or a
    /// quarter of the rotation period if shorter). At most a quarter of the
    /// ring's rotation period, so that a cached JWK Set always has the next
    /// key before it signs.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Checks the settings and builds the service.
    pub fn build(self) -> Result<JwksService, ConfigError> {
        let quarter = self.ring.rotation_period() / 4;
        let max_age = self
            .max_age
            .unwrap_or_else(|| DEFAULT_JWKS_MAX_AGE.min(quarter));
        if max_age > quarter {
            return Err(ConfigError::new(format!(
                "the JWK Set's max-age ({max_age:?}) must be at most a quarter of the \
                 rotation period ({quarter:?}), so that caches see the next key in time"
            )));
        }
        let cache_control = HeaderValue::try_from(format!("public, max-age={}", max_age.as_secs()))
            .expect("digits are a valid header value");
        let (jwks_path, discovery) = match &self.issuer {
            None => (JWKS_PATH.to_owned(), None),
            Some(issuer) => {
                let base = issuer.trim_end_matches('/');
                let path = issuer_path(base)?;
                let jwks_uri = format!("{base}{JWKS_PATH}");
                let document = serde_json::to_vec(&Discovery {
                    issuer,
                    jwks_uri: &jwks_uri,
                })
                .expect("the discovery document always serializes");
                (
                    format!("{path}{JWKS_PATH}"),
                    Some((format!("{path}{DISCOVERY_PATH}"), Bytes::from(document))),
                )
            }
        };
        Ok(JwksService {
            inner: Arc::new(WellKnown {
                ring: self.ring,
                jwks_path,
                discovery,
                cache_control,
            }),
        })
    }
}

/// The path of an issuer URL (without a trailing `/`): `""` for
/// `https://auth.example.com`.
fn issuer_path(issuer: &str) -> Result<&str, ConfigError> {
    let invalid = || {
        ConfigError::new(format!(
            "the issuer {issuer:?} must be an http(s) URL without query or fragment, \
             such as https://auth.example.com"
        ))
    };
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .ok_or_else(invalid)?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#']) {
        return Err(invalid());
    }
    Ok(rest.find('/').map_or("", |start| &rest[start..]))
}

impl<ReqBody> Service<Request<ReqBody>> for JwksService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        ready(Ok(self.respond(request.method(), request.uri().path())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_paths() {
        assert_eq!(issuer_path("https://auth.example.com").unwrap(), "");
        assert_eq!(issuer_path("http://127.0.0.1:3000").unwrap(), "");
        assert_eq!(issuer_path("https://a.example.com/t/1").unwrap(), "/t/1");
        for bad in ["auth", "https://", "https:///x", "https://a?x=1", "ftp://a"] {
            assert!(issuer_path(bad).is_err(), "{bad}");
        }
    }
}
