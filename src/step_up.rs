//! [`StepUpLayer`]: step-up authentication (RFC 9470).
//!
//! Some routes need more than a valid token: a recent login, or a stronger
//! one (a second factor). Put this layer inside
//! [`JwtAuthLayer`](crate::JwtAuthLayer) (in axum, as a `route_layer` on those
//! routes). A token whose `acr` is not one of the required values, or whose
//! `auth_time` is older than the maximum age, gets 401 with the error
//! `insufficient_user_authentication` and the requirements in the challenge,
//! so the client can send the user back to the authorization server with
//! those `acr_values` and `max_age`:
//!
//! ```text
//! HTTP/1.1 401 Unauthorized
//! www-authenticate: Bearer realm="api", error="insufficient_user_authentication", error_description="...", acr_values="urn:example:mfa", max_age=300
//! ```
//!
//! A request with no verified token at all gets a plain 401 and never passes.
//!
//! ```
//! use std::time::Duration;
//! use tower_jwt_auth::StepUpLayer;
//!
//! // Changing the password: a login with a second factor, at most 5 minutes old.
//! let recent_mfa = StepUpLayer::builder()
//!     .acr_values(["urn:example:mfa"])
//!     .max_age(Duration::from_secs(300))
//!     .build()?;
//! # let _ = recent_mfa;
//! # Ok::<_, tower_jwt_auth::ConfigError>(())
//! ```
//!
//! Tokens refreshed by [`RefreshTokens`](crate::refresh::RefreshTokens) keep
//! the `auth_time` of their session's login: a refresh never makes an old
//! login look recent.

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use serde::Deserialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    claims::{VerifiedPayload, numeric_date},
    error::{AuthError, AuthErrorKind, ConfigError, is_qdtext},
    response::{DefaultResponder, Responder},
    verifier::now,
};

#[derive(Debug)]
struct Requirement {
    acr_values: Vec<String>,
    /// `acr_values` space-separated, for the challenge.
    acr_param: Option<String>,
    max_age: Option<u64>,
}

/// The claims of the authentication event (OpenID Connect Core section 2).
#[derive(Deserialize)]
struct Authentication {
    acr: Option<String>,
    #[serde(default, deserialize_with = "numeric_date")]
    auth_time: Option<i64>,
}

impl Requirement {
    fn is_met_by(&self, payload: &VerifiedPayload, now: i64) -> bool {
        let Ok(event) = serde_json::from_slice::<Authentication>(payload.json()) else {
            return false;
        };
        if !self.acr_values.is_empty()
            && !event.acr.is_some_and(|acr| self.acr_values.contains(&acr))
        {
            return false;
        }
        match self.max_age {
            None => true,
            Some(max_age) => event.auth_time.is_some_and(|at| {
                at <= now && u64::try_from(now - at).is_ok_and(|age| age <= max_age)
            }),
        }
    }
}

/// Requires a recent or strong enough authentication; see the
/// [module docs](crate::step_up).
///
/// # Build it before serving
///
/// Wrap the service (`layer`) before the stack serves its first request,
/// as `ServiceBuilder` or axum's `Router::layer` do: the first such wrap
/// in the process tells [`JwtAuthLayer`](crate::JwtAuthLayer) to keep the
/// verified payload for this layer. A request verified before any such
/// layer was built carries none, and this layer then refuses it with 401
/// (it fails closed): building the layer lazily, inside another service's
/// `call`, refuses the requests verified before.
pub struct StepUpLayer<R = DefaultResponder> {
    requirement: Arc<Requirement>,
    responder: R,
}

impl<R: Clone> Clone for StepUpLayer<R> {
    fn clone(&self) -> Self {
        Self {
            requirement: Arc::clone(&self.requirement),
            responder: self.responder.clone(),
        }
    }
}

impl<R: fmt::Debug> fmt::Debug for StepUpLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUpLayer")
            .field("requirement", &self.requirement)
            .field("responder", &self.responder)
            .finish()
    }
}

impl StepUpLayer {
    /// A builder with no requirement yet.
    pub fn builder() -> StepUpLayerBuilder {
        StepUpLayerBuilder {
            acr_values: Vec::new(),
            max_age: None,
        }
    }
}

impl<R> StepUpLayer<R> {
    /// Replaces how rejections become responses; see [`Responder`]. To name
    /// the same realm as [`JwtAuthLayer`](crate::JwtAuthLayer), pass the same
    /// [`DefaultResponder`].
    #[must_use]
    pub fn responder<R2>(self, responder: R2) -> StepUpLayer<R2> {
        StepUpLayer {
            requirement: self.requirement,
            responder,
        }
    }
}

/// Builds a [`StepUpLayer`]; mistakes surface from [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct StepUpLayerBuilder {
    acr_values: Vec<String>,
    max_age: Option<Duration>,
}

impl StepUpLayerBuilder {
    /// Requires the token's `acr` to be one of `values` (compared exactly).
    /// Each value must be printable ASCII without spaces, quotes or
    /// backslashes, as it goes into the challenge.
    pub fn acr_values<I>(mut self, values: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.acr_values = values.into_iter().map(Into::into).collect();
        self
    }

    /// Requires the token's `auth_time` to be at most `max_age` old (whole
    /// seconds); a token without `auth_time` is refused.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Checks the configuration and builds the layer.
    pub fn build(self) -> Result<StepUpLayer, ConfigError> {
        if self.acr_values.is_empty() && self.max_age.is_none() {
            return Err(ConfigError::new(
                "a step-up layer needs acr values, a maximum age, or both",
            ));
        }
        for value in &self.acr_values {
            if value.is_empty() || !value.bytes().all(|b| b != b' ' && is_qdtext(b)) {
                return Err(ConfigError::new(format!(
                    "the acr value {value:?} cannot stand in a challenge"
                )));
            }
        }
        let acr_param = (!self.acr_values.is_empty()).then(|| self.acr_values.join(" "));
        Ok(StepUpLayer {
            requirement: Arc::new(Requirement {
                acr_values: self.acr_values,
                acr_param,
                max_age: self.max_age.map(|age| age.as_secs()),
            }),
            responder: DefaultResponder::default(),
        })
    }
}

impl<S, R: Clone> Layer<S> for StepUpLayer<R> {
    type Service = StepUp<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        crate::claims::payload_is_read();
        StepUp {
            inner,
            requirement: Arc::clone(&self.requirement),
            responder: self.responder.clone(),
        }
    }
}

/// The middleware of [`StepUpLayer`].
pub struct StepUp<S, R = DefaultResponder> {
    inner: S,
    requirement: Arc<Requirement>,
    responder: R,
}

impl<S: Clone, R: Clone> Clone for StepUp<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            requirement: Arc::clone(&self.requirement),
            responder: self.responder.clone(),
        }
    }
}

impl<S: fmt::Debug, R: fmt::Debug> fmt::Debug for StepUp<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUp")
            .field("inner", &self.inner)
            .field("requirement", &self.requirement)
            .field("responder", &self.responder)
            .finish()
    }
}

impl<S, R> StepUp<S, R> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, by value.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for StepUp<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: Responder<ResBody>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let requirement = &*self.requirement;
        let verdict = match request.extensions().get::<VerifiedPayload>() {
            Some(payload) if requirement.is_met_by(payload, now()) => Ok(()),
            Some(_) => Err(
                AuthError::new(AuthErrorKind::InsufficientUserAuthentication)
                    .with_step_up(requirement.acr_param.clone(), requirement.max_age),
            ),
            None => Err(AuthError::new(AuthErrorKind::MissingCredentials)),
        };
        ResponseFuture::decide(
            &mut self.inner,
            request,
            verdict,
            &self.responder,
            "step-up requirement not met",
        )
    }
}

/// The response future of [`StepUp`]: the role layer's, since both only
/// call the inner service or answer a refusal.
pub use crate::role::ResponseFuture;

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(json: &str) -> VerifiedPayload {
        VerifiedPayload::new(json.as_bytes(), None, Default::default())
    }

    #[test]
    fn acr_and_age_are_both_required_when_configured() {
        let layer = StepUpLayer::builder()
            .acr_values(["mfa", "hwk"])
            .max_age(Duration::from_secs(300))
            .build()
            .unwrap();
        let r = &layer.requirement;
        assert!(r.is_met_by(&payload(r#"{"acr":"mfa","auth_time":1000}"#), 1300));
        assert!(!r.is_met_by(&payload(r#"{"acr":"mfa","auth_time":1000}"#), 1301));
        assert!(!r.is_met_by(&payload(r#"{"acr":"pwd","auth_time":1000}"#), 1000));
        assert!(!r.is_met_by(&payload(r#"{"acr":"mfa"}"#), 1000));
        assert!(!r.is_met_by(&payload(r#"{"auth_time":1000}"#), 1000));
        assert!(
            !r.is_met_by(&payload(r#"{"acr":"mfa","auth_time":2000}"#), 1000),
            "future"
        );
        assert_eq!(r.acr_param.as_deref(), Some("mfa hwk"));
    }

    #[test]
    fn unusable_configurations_fail_at_build() {
        assert!(StepUpLayer::builder().build().is_err());
        assert!(StepUpLayer::builder().acr_values(["a b"]).build().is_err());
        assert!(StepUpLayer::builder().acr_values(["a\"b"]).build().is_err());
    }
}
