use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{HeaderValue, Request, Response, StatusCode, header::SEC_WEBSOCKET_PROTOCOL};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::{
    claims::Claims,
    error::AuthError,
    metrics,
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
    /// Waiting for the one asynchronous step.
    Pending(Pending<C>),
    /// Taken by `poll`.
    Done,
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
        // Authentication is decided (or waits for its one asynchronous step);
        // then the claims go into the request and the inner service is called.
        Authenticating {
            step: Step<C>,
            request: Option<Request<ReqBody>>,
            inner: Option<S>,
            responder: R,
            echo: Option<HeaderValue>,
        },
        Inner {
            #[pin]
            future: S::Future,
            // The WebSocket subprotocol to answer a successful upgrade with.
            echo: Option<HeaderValue>,
        },
    }
}

impl<S, C, ReqBody, R> ResponseFuture<S, C, ReqBody, R>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn new(
        step: Step<C>,
        request: Request<ReqBody>,
        inner: S,
        responder: R,
        echo: Option<HeaderValue>,
    ) -> Self {
        Self {
            state: State::Authenticating {
                step,
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
                StateProj::Authenticating {
                    step,
                    request,
                    inner,
                    responder,
                    echo,
                } => {
                    let outcome = match step {
                        Step::Pending(pending) => {
                            let outcome = ready!(pending.as_mut().poll(cx));
                            *step = Step::Done;
                            outcome.map(Some)
                        }
                        _ => match std::mem::replace(step, Step::Done) {
                            Step::Verified(claims) => Ok(Some(claims)),
                            Step::Anonymous => Ok(None),
                            Step::Failed(error) => Err(error),
                            Step::Pending(_) | Step::Done => panic!("polled after completion"),
                        },
                    };
                    let mut request = request.take().expect("polled after completion");
                    match outcome {
                        Ok(Some(claims)) => {
                            metrics::token_verified();
                            claims.insert_into(request.extensions_mut());
                        }
                        Ok(None) => {}
                        Err(error) => {
                            metrics::token_rejected(error.kind());
                            tracing::debug!(kind = ?error.kind(), "bearer authentication failed");
                            let grpc = is_grpc(&request);
                            return Poll::Ready(Ok(reject(error, grpc, responder)));
                        }
                    }
                    let mut inner = inner.take().expect("polled after completion");
                    let future = inner.call(request);
                    let echo = echo.take();
                    this.state.set(State::Inner { future, echo });
                }
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
