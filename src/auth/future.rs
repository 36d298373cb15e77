use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::{HeaderValue, Request, Response, StatusCode, header::SEC_WEBSOCKET_PROTOCOL};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::CheckFuture;
use crate::{
    challenge::{ChallengeContext, Scheme},
    claims::Claims,
    error::AuthError,
    response::{Responder, is_grpc, reject},
};

/// The asynchronous step of an authentication: a key refresh for an unknown
/// `kid` and a second verification, and/or the application's check.
pub(crate) type Pending<C> = Pin<Box<dyn Future<Output = Result<Claims<C>, AuthError>> + Send>>;

/// How far authentication got when the layer was called.
pub(crate) enum Step<C> {
    /// Verified, no check to run: the common case, decided without waiting.
    Verified(Claims<C>),
    /// No credentials, in optional mode.
    Anonymous,
    /// Refused.
    Failed(AuthError),
    /// Verified now, waiting for the application's check only.
    Checking(Checking<C>),
    /// Waiting for the one asynchronous step.
    Pending(Pending<C>),
}

/// A token verified in `call` whose claims wait for the application's
/// check: the check's future is polled by the response future itself, with
/// no second boxed future around it.
pub(crate) struct Checking<C> {
    pub(crate) claims: Claims<C>,
    pub(crate) check: CheckFuture,
    pub(crate) scheme: Scheme,
    pub(crate) context: Option<Arc<ChallengeContext>>,
}

pin_project! {
    /// The response future of [`JwtAuth`](super::JwtAuth).
    pub struct ResponseFuture<S, C, ReqBody, R>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, C, ReqBody, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, C, ReqBody, R>
    where
        S: Service<Request<ReqBody>>,
    {
        // Decided in `call` (the common case): the inner service was called
        // with the claims in the request.
        Inner {
            #[pin]
            future: S::Future,
            // The WebSocket subprotocol to answer a successful upgrade with.
            echo: Option<HeaderValue>,
        },
        // Refused in `call`.
        Rejected {
            response: Option<S::Response>,
        },
        // Verified in `call`, waiting for the application's check; then the
        // claims go into the request and the inner service is called.
        // The claims are in the request already: no one sees it before the
        // check passes, and it is dropped if the check refuses.
        Checking {
            check: CheckFuture,
            scheme: Scheme,
            context: Option<Arc<ChallengeContext>>,
            request: Option<Request<ReqBody>>,
            inner: Option<S>,
            responder: R,
            echo: Option<HeaderValue>,
        },
        // Waiting for the one asynchronous step (a key refresh, the
        // application's check); then the claims go into the request and the
        // inner service is called.
        Authenticating {
            pending: Pending<C>,
            request: Option<Request<ReqBody>>,
            inner: Option<S>,
            responder: R,
            echo: Option<HeaderValue>,
        },
    }
}

impl<S, C, ReqBody, R> ResponseFuture<S, C, ReqBody, R>
where
    S: Service<Request<ReqBody>>,
{
    /// The inner service was called.
    pub(crate) fn called(future: S::Future, echo: Option<HeaderValue>) -> Self {
        Self {
            state: State::Inner { future, echo },
        }
    }

    /// The request was refused.
    pub(crate) fn rejected(response: S::Response) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    /// The claims wait for the application's check; `inner` was polled
    /// ready.
    pub(crate) fn checking(
        checking: Checking<C>,
        request: Request<ReqBody>,
        inner: S,
        responder: R,
        echo: Option<HeaderValue>,
    ) -> Self
    where
        C: Clone + Send + Sync + 'static,
    {
        let mut request = request;
        let Checking {
            claims,
            check,
            scheme,
            context,
        } = checking;
        claims.insert_into(request.extensions_mut());
        Self {
            state: State::Checking {
                check,
                scheme,
                context,
                request: Some(request),
                inner: Some(inner),
                responder,
                echo,
            },
        }
    }

    /// Authentication waits for `pending`; `inner` was polled ready.
    pub(crate) fn pending(
        pending: Pending<C>,
        request: Request<ReqBody>,
        inner: S,
        responder: R,
        echo: Option<HeaderValue>,
    ) -> Self {
        Self {
            state: State::Authenticating {
                pending,
                request: Some(request),
                inner: Some(inner),
                responder,
                echo,
            },
        }
    }
}

impl<S, C, ReqBody, ResBody, R> Future for ResponseFuture<S, C, ReqBody, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: Clone + Send + Sync + 'static,
    R: Responder<ResBody>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Inner { future, echo } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(protocol) = echo.take()
                        && response.status() == StatusCode::SWITCHING_PROTOCOLS
                        && !response.headers().contains_key(SEC_WEBSOCKET_PROTOCOL)
                    {
                        response
                            .headers_mut()
                            .insert(SEC_WEBSOCKET_PROTOCOL, protocol);
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Rejected { response } => {
                    return Poll::Ready(Ok(response.take().expect("polled after completion")));
                }
                StateProj::Checking {
                    check,
                    scheme,
                    context,
                    request,
                    inner,
                    responder,
                    echo,
                } => {
                    let outcome = ready!(check.as_mut().poll(cx));
                    let request = request.take().expect("polled after completion");
                    match outcome {
                        // The claims went into the request with the check.
                        Ok(()) => crate::metrics::token_verified(),
                        Err(error) => {
                            log_check(&error);
                            let error = error.with_scheme(*scheme).with_context(context.as_ref());
                            return Poll::Ready(Ok(refuse(error, &request, responder)));
                        }
                    }
                    let mut inner = inner.take().expect("polled after completion");
                    let future = inner.call(request);
                    let echo = echo.take();
                    this.state.set(State::Inner { future, echo });
                }
                StateProj::Authenticating {
                    pending,
                    request,
                    inner,
                    responder,
                    echo,
                } => {
                    let outcome = ready!(pending.as_mut().poll(cx));
                    let mut request = request.take().expect("polled after completion");
                    match outcome {
                        Ok(claims) => accept(claims, &mut request),
                        Err(error) => return Poll::Ready(Ok(refuse(error, &request, responder))),
                    }
                    let mut inner = inner.take().expect("polled after completion");
                    let future = inner.call(request);
                    let echo = echo.take();
                    this.state.set(State::Inner { future, echo });
                }
            }
        }
    }
}

impl<S, C, ReqBody, R> fmt::Debug for ResponseFuture<S, C, ReqBody, R>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// An authenticated request: counted, and its claims put into its extensions.
/// Both the layer's `call` and the response future accept through here.
pub(crate) fn accept<C, B>(claims: Claims<C>, request: &mut Request<B>)
where
    C: Clone + Send + Sync + 'static,
{
    crate::metrics::token_verified();
    claims.insert_into(request.extensions_mut());
}

/// A request refused by the application's check, logged by kind only.
pub(crate) fn log_check(error: &AuthError) {
    tracing::debug!(kind = ?error.kind(), "token rejected by check");
}

/// A refused request: counted, logged by kind only, and answered.
pub(crate) fn refuse<B, ReqBody, R>(
    error: AuthError,
    request: &Request<ReqBody>,
    responder: &R,
) -> Response<B>
where
    B: Default,
    R: Responder<B>,
{
    crate::metrics::token_rejected(error.kind());
    tracing::debug!(kind = ?error.kind(), "bearer authentication failed");
    reject(error, is_grpc(request), responder)
}
