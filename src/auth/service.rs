use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::{ResponseFuture, layer::Shared};
use crate::{
    claims::Claims,
    error::{AuthError, AuthErrorKind},
    extract::find_token,
    response::{Responder, is_grpc, reject},
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
    /// The verified claims of the request, `Ok(None)` for a request without
    /// credentials in optional mode.
    fn authenticate<B>(&self, request: &Request<B>) -> Result<Option<Claims<C>>, AuthError> {
        let shared = &*self.shared;
        match find_token(request.headers(), &shared.source)? {
            Some(token) => shared.verifier.verify::<C>(token).map(Some),
            None if shared.optional => Ok(None),
            None => Err(AuthError::new(AuthErrorKind::MissingCredentials)),
        }
    }

    /// For a token with an unknown `kid` and remote keys: refresh the keys
    /// (cooldown and single-flight apply), then verify again. Only this path
    /// copies the token and boxes a future.
    #[cfg(feature = "jwks")]
    fn retry_after_refresh<B>(
        &self,
        error: &AuthError,
        request: &Request<B>,
    ) -> Option<super::future::RetryFuture> {
        if error.kind() != AuthErrorKind::UnknownKey {
            return None;
        }
        let remote = self.shared.verifier.remote()?.clone();
        let token = find_token(request.headers(), &self.shared.source)
            .ok()??
            .to_owned();
        let shared = Arc::clone(&self.shared);
        Some(Box::pin(async move {
            remote.refresh_for_unknown_kid().await;
            let claims = shared.verifier.verify::<C>(&token)?;
            let check = shared.check.as_ref().map(|check| check(&claims));
            let authenticated: super::future::Authenticated =
                Box::new(move |extensions: &mut http::Extensions| {
                    claims.insert_into(extensions);
                    check
                });
            Ok(authenticated)
        }))
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
    type Future = ResponseFuture<S, ReqBody, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let claims = match self.authenticate(&request) {
            Ok(claims) => claims,
            Err(error) => {
                #[cfg(feature = "jwks")]
                if let Some(retry) = self.retry_after_refresh(&error, &request) {
                    let clone = self.inner.clone();
                    let inner = std::mem::replace(&mut self.inner, clone);
                    return ResponseFuture::refreshing(
                        retry,
                        request,
                        inner,
                        self.responder.clone(),
                    );
                }
                tracing::debug!(kind = ?error.kind(), "bearer authentication failed");
                let grpc = is_grpc(&request);
                return ResponseFuture::rejected(reject(error, grpc, &self.responder));
            }
        };
        // Call the service that was polled ready; keep a fresh clone for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(claims) = claims else {
            return ResponseFuture::inner(inner.call(request));
        };
        let check = self.shared.check.as_ref().map(|check| check(&claims));
        claims.insert_into(request.extensions_mut());
        match check {
            None => ResponseFuture::inner(inner.call(request)),
            Some(check) => ResponseFuture::checking(check, request, inner, self.responder.clone()),
        }
    }
}
