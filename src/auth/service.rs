use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::{
    ResponseFuture,
    future::{Step, accept, refuse},
    layer::Shared,
};
use crate::{
    error::{AuthError, AuthErrorKind},
    extract::{RequestHead, find_token},
    response::Responder,
    verifier::Verification,
};

/// The middleware of [`JwtAuthLayer`](super::JwtAuthLayer).
pub struct JwtAuth<S, C, R> {
    inner: S,
    shared: Arc<Shared<C>>,
    responder: R,
}

impl<S, C, R> JwtAuth<S, C, R> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<C>>, responder: R) -> Self {
        Self {
            inner,
            shared,
            responder,
        }
    }

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

impl<S: Clone, C, R: Clone> Clone for JwtAuth<S, C, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            responder: self.responder.clone(),
        }
    }
}

impl<S: fmt::Debug, C, R: fmt::Debug> fmt::Debug for JwtAuth<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("inner", &self.inner)
            .field("verifier", &self.shared.verifier)
            .field("responder", &self.responder)
            .finish_non_exhaustive()
    }
}

impl<S, C, R> JwtAuth<S, C, R>
where
    C: DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Authenticates without waiting when it can (the common case), or
    /// returns the one asynchronous step: the verifier's key refresh and the
    /// application's check.
    fn authenticate<B>(&self, request: &Request<B>) -> Step<C> {
        let shared = &*self.shared;
        let head = RequestHead::new(request);
        let token = match find_token(&head, &shared.source) {
            Ok(Some(token)) => token,
            Ok(None) if shared.optional => return Step::Anonymous,
            Ok(None) => return Step::Failed(AuthError::new(AuthErrorKind::MissingCredentials)),
            Err(error) => return Step::Failed(error),
        };
        let issuer = shared.resolver.as_ref().and_then(|resolve| resolve(&head));
        match (
            shared.verifier.start::<C>(&token, issuer.as_deref()),
            &shared.check,
        ) {
            (Verification::Done(Err(error)), _) => Step::Failed(error),
            (Verification::Done(Ok(claims)), None) => Step::Verified(claims),
            (Verification::Done(Ok(claims)), Some(check)) => {
                let check = check(&claims);
                Step::Pending(Box::pin(async move {
                    check.await.inspect_err(log_check)?;
                    Ok(claims)
                }))
            }
            (Verification::Pending(verification), check) => {
                let check = check.clone();
                Step::Pending(Box::pin(async move {
                    let claims = verification.await?;
                    if let Some(check) = check {
                        check(&claims).await.inspect_err(log_check)?;
                    }
                    Ok(claims)
                }))
            }
        }
    }
}

impl<S, C, R, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S, C, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    C: DeserializeOwned + Clone + Send + Sync + 'static,
    R: Responder<ResBody>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, C, ReqBody, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let step = self.authenticate(&request);
        let echo = self.shared.source.echo(request.headers());
        match step {
            // Decided now (the common case): the service that was polled
            // ready is called at once, with no clone of it.
            Step::Verified(claims) => {
                accept(claims, &mut request);
                ResponseFuture::called(self.inner.call(request), echo)
            }
            Step::Anonymous => ResponseFuture::called(self.inner.call(request), echo),
            Step::Failed(error) => {
                ResponseFuture::rejected(refuse(error, &request, &self.responder))
            }
            // Call the service that was polled ready once the step is done;
            // keep a fresh clone for next time.
            Step::Pending(pending) => {
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::pending(pending, request, inner, self.responder.clone(), echo)
            }
        }
    }
}

fn log_check(error: &AuthError) {
    tracing::debug!(kind = ?error.kind(), "token rejected by check");
}
