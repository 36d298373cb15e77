//! RFC 9728 protected-resource metadata: a tiny Tower service that serves
//! `/.well-known/oauth-protected-resource`, telling clients which
//! authorization servers issue tokens for this API, which scopes it knows
//! and how tokens are presented (bearer, DPoP algorithms).
//!
//! ```
//! use axum::Router;
//! use tower_jwt_auth::{JwtAuthLayer, VerificationKey, Verifier, dpop::Dpop};
//! use tower_jwt_auth::resource_metadata::ProtectedResourceMetadata;
//! # let verifier = Verifier::builder()
//! #     .key(VerificationKey::hmac(b"a secret of at least thirty-two bytes!")?)
//! #     .build()?;
//!
//! let dpop = Dpop::builder().base_url("https://api.example.com").build()?;
//! let metadata = ProtectedResourceMetadata::builder("https://api.example.com")
//!     .authorization_server("https://idp.example.com")
//!     .scopes(["read", "write"])
//!     .dpop(&dpop)
//!     .build()?;
//! // 401 challenges point at the metadata (RFC 9728 section 5.1).
//! let layer = JwtAuthLayer::<serde_json::Value>::builder(verifier)
//!     .presentation(dpop.or_bearer())
//!     .resource_metadata(metadata.metadata_url().unwrap())
//!     .build()?;
//! let app: Router = Router::new()
//!     .route_service(metadata.well_known_path(), metadata.clone());
//! # let _ = (app, layer);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

use std::{
    convert::Infallible,
    fmt,
    future::{Ready, ready},
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Serialize;
use tower_service::Service;

use crate::{dpop::Dpop, error::ConfigError, keys::Algorithm};

/// The well-known path of RFC 9728 section 3.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// The metadata of a protected resource (RFC 9728 section 2), served as JSON
/// by its [`Service`] implementation (GET and HEAD; other methods get 405).
///
/// Cheap to clone: the JSON is rendered once, when built.
#[derive(Clone)]
pub struct ProtectedResourceMetadata {
    inner: Arc<Inner>,
}

struct Inner {
    json: String,
    path: String,
    url: Option<String>,
}

impl fmt::Debug for ProtectedResourceMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedResourceMetadata")
            .field("json", &self.inner.json)
            .field("path", &self.inner.path)
            .finish()
    }
}

#[derive(Serialize)]
struct Document<'a> {
    resource: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    authorization_servers: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    scopes_supported: &'a [String],
    bearer_methods_supported: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dpop_signing_alg_values_supported: Vec<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dpop_bound_access_tokens_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_documentation: Option<&'a str>,
}

impl ProtectedResourceMetadata {
    /// Metadata for the resource identified by `resource`: RFC 9728 wants an
    /// `https` URL without query or fragment (an `http` URL or a plain
    /// audience name is accepted for development, without a
    /// [`metadata_url`](Self::metadata_url)).
    pub fn builder(resource: impl Into<String>) -> ProtectedResourceMetadataBuilder {
        ProtectedResourceMetadataBuilder {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes: Vec::new(),
            bearer_methods: vec!["header".to_owned()],
            dpop_algorithms: Vec::new(),
            dpop_required: false,
            name: None,
            documentation: None,
        }
    }

    /// The JSON document.
    pub fn json(&self) -> &str {
        &self.inner.json
    }

    /// Where the document is served: `/.well-known/oauth-protected-resource`,
    /// followed by the resource URL's path if it has one (RFC 9728 section 3.1).
    pub fn well_known_path(&self) -> &str {
        &self.inner.path
    }

    /// The absolute URL of the document, for the `resource_metadata`
    /// parameter of challenges
    /// ([`JwtAuthLayerBuilder::resource_metadata`](crate::JwtAuthLayerBuilder::resource_metadata));
    /// `None` when the resource is not an `http(s)` URL.
    pub fn metadata_url(&self) -> Option<&str> {
        self.inner.url.as_deref()
    }
}

/// Builds [`ProtectedResourceMetadata`]; mistakes surface from [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct ProtectedResourceMetadataBuilder {
    resource: String,
    authorization_servers: Vec<String>,
    scopes: Vec<String>,
    bearer_methods: Vec<String>,
    dpop_algorithms: Vec<Algorithm>,
    dpop_required: bool,
    name: Option<String>,
    documentation: Option<String>,
}

impl ProtectedResourceMetadataBuilder {
    /// Adds an issuer whose tokens the resource accepts (`authorization_servers`).
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// Adds several issuers.
    pub fn authorization_servers<I>(mut self, issuers: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.authorization_servers
            .extend(issuers.into_iter().map(Into::into));
        self
    }

    /// The scopes the resource knows (`scopes_supported`).
    pub fn scopes<I>(mut self, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// How bearer tokens may be sent (`bearer_methods_supported`): `header`
    /// (the default), `body`, `query`; an empty list for none.
    pub fn bearer_methods<I>(mut self, methods: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.bearer_methods = methods.into_iter().map(Into::into).collect();
        self
    }

    /// The DPoP proof algorithms of `dpop` (`dpop_signing_alg_values_supported`).
    pub fn dpop(mut self, dpop: &Dpop) -> Self {
        self.dpop_algorithms = dpop.algorithms().to_vec();
        self
    }

    /// Says that only DPoP-bound tokens are accepted
    /// (`dpop_bound_access_tokens_required`), as with
    /// [`Dpop::only`](crate::dpop::Dpop::only).
    pub fn dpop_bound_access_tokens_required(mut self, required: bool) -> Self {
        self.dpop_required = required;
        self
    }

    /// A name for people (`resource_name`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A page about the API for developers (`resource_documentation`).
    pub fn documentation(mut self, url: impl Into<String>) -> Self {
        self.documentation = Some(url.into());
        self
    }

    /// Checks the configuration and renders the document.
    pub fn build(self) -> Result<ProtectedResourceMetadata, ConfigError> {
        if self.resource.is_empty() || self.resource.contains(['?', '#']) {
            return Err(ConfigError::new(
                "the protected resource must be named, without query or fragment",
            ));
        }
        let (path, url) = match self
            .resource
            .split_once("://")
            .filter(|(scheme, _)| matches!(*scheme, "https" | "http"))
        {
            Some((scheme, rest)) => {
                let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
                let path = format!("{WELL_KNOWN_PATH}{}", path.trim_end_matches('/'));
                let url = format!("{scheme}://{authority}{path}");
                (path, Some(url))
            }
            None => (WELL_KNOWN_PATH.to_owned(), None),
        };
        let document = Document {
            resource: &self.resource,
            authorization_servers: &self.authorization_servers,
            scopes_supported: &self.scopes,
            bearer_methods_supported: &self.bearer_methods,
            dpop_signing_alg_values_supported: self
                .dpop_algorithms
                .iter()
                .map(|alg| alg.as_str())
                .collect(),
            dpop_bound_access_tokens_required: self.dpop_required,
            resource_name: self.name.as_deref(),
            resource_documentation: self.documentation.as_deref(),
        };
        let json = serde_json::to_string(&document)
            .map_err(|e| ConfigError::with_source("the resource metadata does not serialize", e))?;
        Ok(ProtectedResourceMetadata {
            inner: Arc::new(Inner { json, path, url }),
        })
    }
}

impl<B> Service<Request<B>> for ProtectedResourceMetadata {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = request.method();
        let mut response = if method == Method::GET || method == Method::HEAD {
            let body = if method == Method::GET {
                self.inner.json.clone()
            } else {
                String::new()
            };
            let mut response = Response::new(body);
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            response
        } else {
            let mut response = Response::new(String::new());
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        };
        // Public metadata, readable from any origin (RFC 9728 section 3).
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_path_keeps_the_resource_path() {
        let m = ProtectedResourceMetadata::builder("https://api.example.com/v1/")
            .build()
            .unwrap();
        assert_eq!(
            m.well_known_path(),
            "/.well-known/oauth-protected-resource/v1"
        );
        assert_eq!(
            m.metadata_url(),
            Some("https://api.example.com/.well-known/oauth-protected-resource/v1")
        );
        let m = ProtectedResourceMetadata::builder("my-api")
            .build()
            .unwrap();
        assert_eq!(m.well_known_path(), WELL_KNOWN_PATH);
        assert_eq!(m.metadata_url(), None);
        assert!(ProtectedResourceMetadata::builder("").build().is_err());
        assert!(
            ProtectedResourceMetadata::builder("https://a/?q")
                .build()
                .is_err()
        );
    }

    #[test]
    fn the_document_names_what_was_configured() {
        let dpop = Dpop::builder()
            .base_url("https://api.example.com")
            .algorithms([Algorithm::ES256, Algorithm::EdDSA])
            .build()
            .unwrap();
        let m = ProtectedResourceMetadata::builder("https://api.example.com")
            .authorization_servers(["https://a.example", "https://b.example"])
            .scopes(["read"])
            .dpop(&dpop)
            .build()
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(m.json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "resource": "https://api.example.com",
                "authorization_servers": ["https://a.example", "https://b.example"],
                "scopes_supported": ["read"],
                "bearer_methods_supported": ["header"],
                "dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
            })
        );
    }
}
