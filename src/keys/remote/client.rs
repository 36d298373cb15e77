//! The HTTP client that fetches JWK Sets and discovery documents.

use std::{error::Error as StdError, fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use rustls::pki_types::{CertificateDer, pem::PemObject};

use crate::error::ConfigError;

/// A boxed, `Send` future, as returned by [`JwksClient::get`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Fetches documents over HTTP(S): the JWK Set and the OpenID discovery document.
///
/// Implement it to use your own HTTP client (a proxy, custom roots, mTLS,
/// metrics). **Timeouts are the client's job**: a request that never ends
/// holds up the refresh, and with it the requests that wait for an unknown
/// `kid`. The client must not follow redirects to other hosts blindly, and
/// should cap the response size.
///
/// ```
/// use tower_jwt_auth::keys::{BoxFuture, FetchError, JwksClient};
///
/// /// Serves a fixed JWK Set, for tests.
/// struct Fixed(Vec<u8>);
///
/// impl JwksClient for Fixed {
///     fn get<'a>(&'a self, _url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
///         Box::pin(async move { Ok(self.0.clone()) })
///     }
/// }
/// ```
pub trait JwksClient: Send + Sync + 'static {
    /// GETs `url` and returns the body of a `200 OK` response; any other
    /// status, a transport error or a timeout is a [`FetchError`].
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, FetchError>>;
}

impl<T: JwksClient + ?Sized> JwksClient for Arc<T> {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        (**self).get(url)
    }
}

/// Why a document could not be fetched.
#[derive(Debug)]
pub struct FetchError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl FetchError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message and its cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// The message alone: the cause is [`source()`](StdError::source), so that
/// reporters which walk the chain do not show it twice.
impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for FetchError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

/// The `User-Agent` of [`DefaultClient`]'s requests: `tower-jwt-auth/<version>`.
/// Some gateways refuse requests without one.
pub const USER_AGENT: &str = concat!("tower-jwt-auth/", env!("CARGO_PKG_VERSION"));

/// The default timeout of [`DefaultClient`]: 10 seconds per request.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The default response size limit of [`DefaultClient`]: 1 MiB.
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 1024 * 1024;

/// The built-in [`JwksClient`]: hyper over rustls, trusting the Mozilla
/// roots of `webpki-roots`, HTTP/1.1, no redirects, a timeout for the whole
/// request (10 s by default, connecting included) and a response size limit
/// (1 MiB by default).
///
/// A provider whose certificate chains to a private CA (an on-premise
/// Keycloak, a corporate PKI) is trusted by adding that CA with
/// [`add_root_certificate_pem`](Self::add_root_certificate_pem); the Mozilla
/// roots stay trusted.
///
/// It speaks plain `http://` too; [`RemoteJwks`](super::RemoteJwks) only
/// lets it for loopback hosts.
#[derive(Clone)]
pub struct DefaultClient {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    roots: rustls::RootCertStore,
    timeout: Duration,
    max_size: usize,
}

impl fmt::Debug for DefaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultClient")
            .field("roots", &self.roots.len())
            .field("timeout", &self.timeout)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

impl Default for DefaultClient {
    fn default() -> Self {
        Self::new()
    }
}

impl DefaultClient {
    /// A client with the default timeout and size limit, trusting the Mozilla
    /// roots of `webpki-roots`.
    pub fn new() -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Self {
            client: https_client(roots.clone()),
            roots,
            timeout: DEFAULT_FETCH_TIMEOUT,
            max_size: DEFAULT_MAX_RESPONSE_SIZE,
        }
    }

    /// Also trusts the root certificates in `pem`: one or more
    /// `-----BEGIN CERTIFICATE-----` blocks (other PEM sections are ignored),
    /// for example the CA of an on-premise identity provider. The Mozilla
    /// roots stay trusted; call it again to add more.
    ///
    /// Fails if `pem` holds no certificate, a malformed PEM block or a
    /// certificate that cannot be used as a trust anchor.
    ///
    /// ```no_run
    /// use tower_jwt_auth::keys::{DefaultClient, RemoteJwks};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let ca = std::fs::read("/etc/ssl/private-ca.pem")?;
    /// let remote = RemoteJwks::discover("https://keycloak.internal/realms/main")
    ///     .client(DefaultClient::new().add_root_certificate_pem(&ca)?)
    ///     .build()
    ///     .await?;
    /// # let _ = remote;
    /// # Ok(())
    /// # }
    /// ```
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Result<Self, ConfigError> {
        let mut added = 0usize;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert
                .map_err(|e| ConfigError::with_source("invalid PEM in the root certificates", e))?;
            self.roots
                .add(cert)
                .map_err(|e| ConfigError::with_source("invalid root certificate", e))?;
            added += 1;
        }
        if added == 0 {
            return Err(ConfigError::new(
                "no CERTIFICATE block in the root certificates PEM",
            ));
        }
        self.client = https_client(self.roots.clone());
        Ok(self)
    }

    /// The time a whole request may take, from connecting to the last byte.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body accepted.
    #[must_use]
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| FetchError::with_source("invalid URL", Box::new(e) as Box<_>))?;
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, USER_AGENT)
            .body(Empty::new())
            .map_err(|e| FetchError::with_source("invalid request", Box::new(e) as Box<_>))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| FetchError::with_source("request failed", Box::new(e) as Box<_>))?;
        let status = response.status();
        if status != http::StatusCode::OK {
            return Err(FetchError::new(format!("unexpected status {status}")));
        }
        let body = Limited::new(response.into_body(), self.max_size)
            .collect()
            .await
            .map_err(|e| FetchError::with_source("reading the response failed", e))?;
        Ok(body.to_bytes().to_vec())
    }
}

/// The hyper client over rustls (ring, an explicit provider) trusting `roots`.
fn https_client(
    roots: rustls::RootCertStore,
) -> Client<HttpsConnector<HttpConnector>, Empty<Bytes>> {
    // An explicit provider: never depend on (or panic over) the process default.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(DEFAULT_FETCH_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(https)
}

impl JwksClient for DefaultClient {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, self.fetch(url)).await {
                Ok(result) => result,
                Err(_) => Err(FetchError::new(format!(
                    "timed out after {:?}",
                    self.timeout
                ))),
            }
        })
    }
}
