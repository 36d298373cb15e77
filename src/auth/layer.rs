use std::{fmt, future::Future, pin::Pin, sync::Arc};

use tower_layer::Layer;

use super::{JwtAuth, Presentation};
use crate::{
    challenge::ChallengeContext,
    claims::Claims,
    error::{AuthError, ConfigError},
    extract::{RequestHead, TokenSource},
    response::DefaultResponder,
    verifier::Verifier,
};

/// The future of a [`JwtAuthLayerBuilder::check`], boxed.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), AuthError>> + Send>>;
pub(crate) type CheckFn<C> = Arc<dyn Fn(&Claims<C>) -> Checked + Send + Sync>;

/// The answer of a [`JwtAuthLayerBuilder::check`]: now, or later.
///
/// A check that can often decide at once (from memory, such as the logout
/// broadcast's) answers [`Checked::Ready`], and the request goes on with no
/// future allocated or polled for it; one that must wait (a store lookup)
/// answers [`Checked::Pending`]. Any future of the right output is also a
/// check's answer ([`IntoChecked`]).
///
/// ```
/// use tower_jwt_auth::{AuthError, Claims, JwtAuthLayer, VerificationKey, Verifier, auth::Checked};
/// # let verifier = Verifier::builder()
/// #     .key(VerificationKey::hmac(b"a secret of at least thirty-two bytes!")?)
/// #     .build()?;
/// let layer = JwtAuthLayer::<serde_json::Value>::builder(verifier)
///     .check(|claims: &Claims<serde_json::Value>| {
///         if claims.subject() == Some("banned-user") {
///             return Checked::Ready(Err(AuthError::rejected("the account is disabled")));
///         }
///         Checked::Ready(Ok(()))
///     })
///     .build()?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub enum Checked {
    /// Decided: `Ok(())` lets the request through, an error rejects it.
    Ready(Result<(), AuthError>),
    /// To be decided by this future.
    Pending(CheckFuture),
}

impl fmt::Debug for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(result) => f.debug_tuple("Ready").field(result).finish(),
            Self::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}

/// What a [`JwtAuthLayerBuilder::check`] may return: a [`Checked`], or any
/// `Send` future of `Result<(), AuthError>`.
pub trait IntoChecked {
    /// The answer.
    fn into_checked(self) -> Checked;
}

impl IntoChecked for Checked {
    fn into_checked(self) -> Checked {
        self
    }
}

impl<F> IntoChecked for F
where
    F: Future<Output = Result<(), AuthError>> + Send + 'static,
{
    fn into_checked(self) -> Checked {
        Checked::Pending(Box::pin(self))
    }
}
pub(crate) type ResolverFn = Arc<dyn Fn(&RequestHead<'_>) -> Option<String> + Send + Sync>;

/// What every clone of the layer and its services shares.
pub(crate) struct Shared<C> {
    pub(crate) verifier: Verifier,
    pub(crate) source: TokenSource,
    pub(crate) optional: bool,
    pub(crate) check: Option<CheckFn<C>>,
    pub(crate) resolver: Option<ResolverFn>,
    pub(crate) presentation: Presentation,
    /// What the challenges advertise; `None`: Bearer alone, nothing more.
    pub(crate) context: Option<Arc<ChallengeContext>>,
}

/// Authenticates requests by bearer token; see the [module docs](crate::auth).
///
/// `C` is the application's claims type, decoded from the token's payload and
/// inserted into the request extensions as [`Claims<C>`]. `R` turns
/// rejections into responses ([`DefaultResponder`] unless replaced).
///
/// ```
/// use serde::Deserialize;
/// use tower_jwt_auth::{JwtAuthLayer, VerificationKey, Verifier};
///
/// #[derive(Clone, Deserialize)]
/// struct MyClaims {
///     role: String,
/// }
///
/// let verifier = Verifier::builder()
///     .key(VerificationKey::hmac(b"a secret of at least thirty-two bytes!")?)
///     .issuer("https://auth.example.com")
///     .audience("api")
///     .build()?;
/// let layer = JwtAuthLayer::<MyClaims>::builder(verifier)
///     .realm("my-api")
///     .build()?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
pub struct JwtAuthLayer<C, R = DefaultResponder> {
    shared: Arc<Shared<C>>,
    responder: R,
}

impl<C, R: Clone> Clone for JwtAuthLayer<C, R> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            responder: self.responder.clone(),
        }
    }
}

impl<C, R: fmt::Debug> fmt::Debug for JwtAuthLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field("verifier", &self.shared.verifier)
            .field("source", &self.shared.source)
            .field("optional", &self.shared.optional)
            .field("check", &self.shared.check.is_some())
            .field("presentation", &self.shared.presentation)
            .field("responder", &self.responder)
            .finish()
    }
}

impl<C> JwtAuthLayer<C> {
    /// A layer with the default settings: the `Authorization` header only,
    /// credentials required, realm `api`, the [`DefaultResponder`].
    pub fn new(verifier: Verifier) -> Self {
        Self {
            shared: Arc::new(Shared {
                verifier,
                source: TokenSource::AuthorizationHeader,
                optional: false,
                check: None,
                resolver: None,
                presentation: Presentation::bearer(),
                context: None,
            }),
            responder: DefaultResponder::default(),
        }
    }

    /// A builder for the other settings.
    pub fn builder(verifier: Verifier) -> JwtAuthLayerBuilder<C> {
        JwtAuthLayerBuilder {
            verifier,
            source: TokenSource::AuthorizationHeader,
            optional: false,
            check: None,
            resolver: None,
            presentation: Presentation::bearer(),
            resource_metadata: None,
            responder: DefaultResponder::default(),
            error: None,
        }
    }
}

impl<C, R> JwtAuthLayer<C, R> {
    /// The verifier this layer uses.
    pub fn verifier(&self) -> &Verifier {
        &self.shared.verifier
    }
}

impl<S, C, R: Clone> Layer<S> for JwtAuthLayer<C, R> {
    type Service = JwtAuth<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth::new(inner, Arc::clone(&self.shared), self.responder.clone())
    }
}

/// Builds a [`JwtAuthLayer`]. Mistakes surface from [`build`](Self::build).
#[must_use]
pub struct JwtAuthLayerBuilder<C, R = DefaultResponder> {
    verifier: Verifier,
    source: TokenSource,
    optional: bool,
    check: Option<CheckFn<C>>,
    resolver: Option<ResolverFn>,
    presentation: Presentation,
    resource_metadata: Option<String>,
    responder: R,
    error: Option<ConfigError>,
}

impl<C, R: fmt::Debug> fmt::Debug for JwtAuthLayerBuilder<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayerBuilder")
            .field("verifier", &self.verifier)
            .field("source", &self.source)
            .field("optional", &self.optional)
            .field("check", &self.check.is_some())
            .field("resolver", &self.resolver.is_some())
            .field("presentation", &self.presentation)
            .field("resource_metadata", &self.resource_metadata)
            .field("responder", &self.responder)
            .finish()
    }
}

impl<C> JwtAuthLayerBuilder<C, DefaultResponder> {
    /// The realm named in the `WWW-Authenticate` challenges (default `api`):
    /// printable ASCII without quotes or backslashes, checked by
    /// [`build`](Self::build).
    pub fn realm(mut self, realm: &str) -> Self {
        match DefaultResponder::new(realm) {
            Ok(responder) => self.responder = responder,
            Err(error) => self.error = Some(error),
        }
        self
    }
}

impl<C, R> JwtAuthLayerBuilder<C, R> {
    /// Where to look for the token when there is no `Authorization` header: a
    /// cookie, another header, a WebSocket subprotocol, or a function of the
    /// request ([`TokenSource::custom`]). The crate itself never reads the
    /// query string.
    pub fn token_source(mut self, source: TokenSource) -> Self {
        self.source = source;
        self
    }

    /// Lets requests without any credentials through, without claims. Bad
    /// credentials are still rejected. Handlers then extract
    /// `Option<Claims<C>>`.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// An async check run after the signature and claims are verified, before
    /// the inner service is called: a revoked `jti`, a disabled user. An
    /// error rejects the request ([`AuthError::rejected`] gives 401
    /// `invalid_token`, [`AuthError::unavailable`] 503).
    ///
    /// The check returns a future, or a [`Checked`]: a check that answers
    /// [`Checked::Ready`] costs the request no future at all.
    ///
    /// ```
    /// use tower_jwt_auth::{AuthError, Claims, JwtAuthLayer, VerificationKey, Verifier};
    /// # let verifier = Verifier::builder()
    /// #     .key(VerificationKey::hmac(b"a secret of at least thirty-two bytes!")?)
    /// #     .build()?;
    /// let layer = JwtAuthLayer::<serde_json::Value>::builder(verifier)
    ///     .check(|claims: &Claims<serde_json::Value>| {
    ///         let disabled = claims.subject() == Some("banned-user");
    ///         async move {
    ///             if disabled {
    ///                 return Err(AuthError::rejected("the account is disabled"));
    ///             }
    ///             Ok(())
    ///         }
    ///     })
    ///     .build()?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn check<F, A>(mut self, check: F) -> Self
    where
        F: Fn(&Claims<C>) -> A + Send + Sync + 'static,
        A: IntoChecked,
    {
        self.check = Some(Arc::new(move |claims: &Claims<C>| {
            check(claims).into_checked()
        }));
        self
    }

    /// Chooses the issuer (tenant) of a request from the request itself, such
    /// as its host or path, instead of from the token's `iss`: `Some(issuer)`
    /// verifies the token with that issuer's keys and rules only, and its
    /// `iss` must be `issuer` ([`Verifier::verify_for_issuer`]); `None` routes
    /// by the token's `iss` as usual. An issuer the verifier does not know is
    /// refused (401 `invalid_token`).
    ///
    /// ```
    /// use tower_jwt_auth::{JwtAuthLayer, RequestHead, VerificationKey, Verifier};
    /// # let tenant = |iss: &str, secret: &[u8]| {
    /// #     Verifier::builder().key(VerificationKey::hmac(secret).unwrap()).issuer(iss).build()
    /// # };
    /// let verifier = Verifier::by_issuer([
    ///     tenant("https://acme.example.com", b"acme's secret, thirty-two bytes!")?,
    ///     tenant("https://globex.example.com", b"globex's secret, thirty-two bytes")?,
    /// ])?;
    /// // acme.api.example.com takes acme's tokens only.
    /// let layer = JwtAuthLayer::<serde_json::Value>::builder(verifier)
    ///     .issuer_resolver(|head: &RequestHead<'_>| {
    ///         let host = head.headers().get("host")?.to_str().ok()?;
    ///         let tenant = host.strip_suffix(".api.example.com")?;
    ///         Some(format!("https://{tenant}.example.com"))
    ///     })
    ///     .build()?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn issuer_resolver<F>(mut self, resolver: F) -> Self
    where
        F: Fn(&RequestHead<'_>) -> Option<String> + Send + Sync + 'static,
    {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// How requests present their tokens: bearer tokens only (the default),
    /// or DPoP-bound tokens with proofs, alone or beside bearer tokens
    /// (RFC 9449); see [`crate::dpop`].
    ///
    /// ```
    /// use tower_jwt_auth::{JwtAuthLayer, VerificationKey, Verifier, dpop::Dpop};
    /// # let verifier = Verifier::builder()
    /// #     .key(VerificationKey::hmac(b"a secret of at least thirty-two bytes!")?)
    /// #     .build()?;
    /// let dpop = Dpop::builder().base_url("https://api.example.com").build()?;
    /// let layer = JwtAuthLayer::<serde_json::Value>::builder(verifier)
    ///     .presentation(dpop.or_bearer())
    ///     .build()?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn presentation(mut self, presentation: Presentation) -> Self {
        self.presentation = presentation;
        self
    }

    /// The URL of this resource's metadata (RFC 9728), named as
    /// `resource_metadata` in every challenge so that clients can find the
    /// authorization servers; see
    /// [`ProtectedResourceMetadata::metadata_url`](crate::resource_metadata::ProtectedResourceMetadata::metadata_url).
    /// An absolute `https` or `http` URL without quotes or backslashes,
    /// checked by [`build`](Self::build).
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    /// Replaces how rejections become responses; see [`Responder`](crate::Responder).
    pub fn responder<R2>(self, responder: R2) -> JwtAuthLayerBuilder<C, R2> {
        JwtAuthLayerBuilder {
            verifier: self.verifier,
            source: self.source,
            optional: self.optional,
            check: self.check,
            resolver: self.resolver,
            presentation: self.presentation,
            resource_metadata: self.resource_metadata,
            responder,
            error: self.error,
        }
    }

    /// Checks the configuration and builds the layer.
    pub fn build(self) -> Result<JwtAuthLayer<C, R>, ConfigError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.source.check()?;
        if let Some(url) = &self.resource_metadata {
            let absolute = url.starts_with("https://") || url.starts_with("http://");
            if !absolute || !url.bytes().all(crate::error::is_qdtext) {
                return Err(ConfigError::new(
                    "the resource metadata URL must be an absolute http(s) URL \
                     without quotes or backslashes",
                ));
            }
        }
        let proof = self.presentation.proof.as_ref();
        let context = (proof.is_some() || self.resource_metadata.is_some()).then(|| {
            Arc::new(ChallengeContext {
                bearer: self.presentation.bearer,
                dpop_algs: proof.map(|proof| proof.algs().to_owned()),
                resource_metadata: self.resource_metadata,
            })
        });
        Ok(JwtAuthLayer {
            shared: Arc::new(Shared {
                verifier: self.verifier,
                source: self.source,
                optional: self.optional,
                check: self.check,
                resolver: self.resolver,
                presentation: self.presentation,
                context,
            }),
            responder: self.responder,
        })
    }
}
