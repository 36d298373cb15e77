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
    future::{Checking, Step, accept, log_check, refuse},
    layer::{Checked, Shared},
    presentation::Proven,
};
use crate::{
    challenge::{Scheme, SharedContext},
    claims::Claims,
    error::{AuthError, AuthErrorKind},
    extract::{RequestHead, canonical_bearer, find_token},
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
    /// returns the one asynchronous step: the verifier's key refresh, the
    /// proof's replay check and the application's check.
    fn authenticate<B>(&self, request: &Request<B>) -> Step<C> {
        let head = RequestHead::new(request);
        if let Some(step) = self.quick(&head) {
            return step;
        }
        match self.find_and_verify(&head) {
            Ok(Some((scheme, proven, verification))) => self.proceed(scheme, proven, verification),
            Ok(None) => Step::Anonymous,
            Err(error) => self.fail(error),
        }
    }

    /// Most requests: a bearer token in the canonical `Authorization`
    /// header, verified before its syntax is checked (see
    /// [`canonical_bearer`]). `None` leaves the request to
    /// [`find_and_verify`](Self::find_and_verify): a request in another
    /// shape, or one that the general rules read otherwise.
    #[inline]
    fn quick(&self, head: &RequestHead<'_>) -> Option<Step<C>> {
        let shared = &*self.shared;
        if shared.presentation.proof.is_some() || !shared.presentation.bearer {
            return None;
        }
        let token = canonical_bearer(head)?;
        let issuer = shared.resolver.as_ref().and_then(|resolve| resolve(head));
        let error = match shared.verifier.verify_now::<C>(token, issuer.as_deref()) {
            Ok(claims) => return Some(self.verified(claims, Scheme::Bearer)),
            Err(error) => error,
        };
        match find_token(head, &shared.source, false) {
            // Not a `b64token`: the request is malformed (400), whatever the
            // verification said, as when the syntax is checked first; and
            // no key refresh is begun for it.
            Err(error) => Some(self.fail(error)),
            // The same token, well formed: its verification stands, and
            // goes on to a key refresh for an unknown `kid`.
            Ok(Some((found, scheme))) if *found == *token => {
                let verification = shared.verifier.after::<C>(error, token, issuer.as_deref());
                Some(self.proceed(scheme, None, verification))
            }
            // Anything else is read again by the general rules.
            Ok(_) => None,
        }
    }

    /// A refusal, with the layer's challenge context.
    fn fail(&self, error: AuthError) -> Step<C> {
        Step::Failed(error.with_context(self.shared.context.as_ref()))
    }

    /// What follows a verification begun for a token presented with
    /// `scheme` (and `proven` by its proof).
    fn proceed(
        &self,
        scheme: Scheme,
        proven: Option<Proven>,
        verification: Verification<C>,
    ) -> Step<C> {
        match (verification, proven) {
            (Verification::Done(Err(error)), _) => self.fail(error.with_scheme(scheme)),
            (Verification::Done(Ok(claims)), None) => self.verified(claims, scheme),
            (verification, proven) => {
                let check = self.shared.check.clone();
                let context = self.shared.context.clone();
                Step::Pending(Box::pin(async move {
                    let outcome = async move {
                        let claims = match verification {
                            Verification::Done(result) => result?,
                            Verification::Pending(pending) => pending.await?,
                        };
                        bind(&claims, proven.as_ref().map(|p| p.jkt.as_str()))?;
                        if let Some(proven) = proven {
                            proven.commit.await?;
                        }
                        if let Some(check) = check {
                            match check(&claims) {
                                Checked::Ready(result) => result,
                                Checked::Pending(pending) => pending.await,
                            }
                            .inspect_err(log_check)?;
                        }
                        Ok(claims)
                    };
                    outcome.await.map_err(|error: AuthError| {
                        error.with_scheme(scheme).with_context(context.as_ref())
                    })
                }))
            }
        }
    }

    /// A token verified at once, with no proof: bound to no key, and
    /// through the application's check.
    #[inline]
    fn verified(&self, claims: Claims<C>, scheme: Scheme) -> Step<C> {
        if let Err(error) = bind(&claims, None) {
            return self.fail(error.with_scheme(scheme));
        }
        match self.shared.check.as_ref().map(|check| check(&claims)) {
            // Decided at once (no check, or one that answers from memory):
            // nothing to wait for.
            None | Some(Checked::Ready(Ok(()))) => Step::Verified(claims),
            Some(Checked::Ready(Err(error))) => {
                log_check(&error);
                self.fail(error.with_scheme(scheme))
            }
            // Verified now, only the application's check to wait for: the
            // response future polls it itself.
            Some(Checked::Pending(check)) => Step::Checking(Checking {
                check,
                claims,
                scheme,
                context: self.shared.context.clone(),
            }),
        }
    }

    /// The request's token, from wherever the layer takes it and with its
    /// proof when it has one, and its verification begun; `None` for a
    /// request without a token, in optional mode.
    #[allow(clippy::type_complexity)]
    fn find_and_verify(
        &self,
        head: &RequestHead<'_>,
    ) -> Result<Option<(Scheme, Option<Proven>, Verification<C>)>, AuthError> {
        let shared = &*self.shared;
        let presentation = &shared.presentation;
        let (token, scheme) = match find_token(head, &shared.source, presentation.proof.is_some())?
        {
            Some(found) => found,
            None if shared.optional => return Ok(None),
            None => return Err(AuthError::new(AuthErrorKind::MissingCredentials)),
        };
        let proven = match (scheme, &presentation.proof) {
            (Scheme::Dpop, Some(proof)) => Some(
                proof
                    .prove(head, &token)
                    .map_err(|error| error.with_scheme(Scheme::Dpop))?,
            ),
            (Scheme::Bearer, _) if !presentation.bearer => {
                return Err(
                    AuthError::new(AuthErrorKind::ProofRequired).with_scheme(Scheme::Bearer)
                );
            }
            _ => None,
        };
        let issuer = shared.resolver.as_ref().and_then(|resolve| resolve(head));
        let verification = shared.verifier.start::<C>(&token, issuer.as_deref());
        Ok(Some((scheme, proven, verification)))
    }
}

/// A token bound to a key (`cnf.jkt`, RFC 9449 section 6) needs a proof by
/// that key; a proof needs a token bound to its key.
fn bind<C>(claims: &Claims<C>, proof_jkt: Option<&str>) -> Result<(), AuthError> {
    match (claims.jkt(), proof_jkt) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(AuthError::new(AuthErrorKind::ProofRequired)),
        (Some(bound), Some(proof)) if bound == proof => Ok(()),
        (_, Some(_)) => Err(AuthError::new(AuthErrorKind::KeyMismatch)),
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
        // The layers after this one (roles, step-up) challenge alike.
        if let Some(context) = &self.shared.context {
            request
                .extensions_mut()
                .insert(SharedContext(Arc::clone(context)));
        }
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
            Step::Checking(checking) => {
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::checking(checking, request, inner, self.responder.clone(), echo)
            }
            Step::Pending(pending) => {
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::pending(pending, request, inner, self.responder.clone(), echo)
            }
        }
    }
}
