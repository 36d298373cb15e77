use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::layer::CheckFuture;
use crate::{
    error::AuthError,
    response::{Responder, is_grpc, reject},
};

/// A verification that succeeded after a key refresh: puts the claims into
/// the request's extensions and returns the application's check, if any.
pub(crate) type Authenticated =
    Box<dyn FnOnce(&mut http::Extensions) -> Option<CheckFuture> + Send>;
/// Refreshes the keys for an unknown `kid`, then verifies the token again.
pub(crate) type RetryFuture =
    Pin<Box<dyn Future<Output = Result<Authenticated, AuthError>> + Send>>;

pin_project! {
    /// The response future of [`JwtAuth`](super::JwtAuth).
    pub struct ResponseFuture<S, ReqBody, R>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, R>
    where
        S: Service<Request<ReqBody>>,
    {
        // The token named an unknown `kid`: the remote keys are being
        // refreshed, then the token is verified again.
        #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
        Refreshing {
            retry: RetryFuture,
            request: Option<Request<ReqBody>>,
            inner: Option<S>,
            responder: R,
        },
        // The application's check is running; the request waits for it.
        Checking {
            check: CheckFuture,
            request: Option<Request<ReqBody>>,
            inner: Option<S>,
            responder: R,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<S::Response>,
        },
    }
}

impl<S, ReqBody, R> ResponseFuture<S, ReqBody, R>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn inner(future: S::Future) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(crate) fn rejected(response: S::Response) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    #[cfg(feature = "jwks")]
    pub(crate) fn refreshing(
        retry: RetryFuture,
        request: Request<ReqBody>,
        inner: S,
        responder: R,
    ) -> Self {
        Self {
            state: State::Refreshing {
                retry,
                request: Some(request),
                inner: Some(inner),
                responder,
            },
        }
    }

    pub(crate) fn checking(
        check: CheckFuture,
        request: Request<ReqBody>,
        inner: S,
        responder: R,
    ) -> Self {
        Self {
            state: State::Checking {
                check,
                request: Some(request),
                inner: Some(inner),
                responder,
            },
        }
    }
}

impl<S, ReqBody, ResBody, R> Future for ResponseFuture<S, ReqBody, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: Responder<ResBody>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Refreshing {
                    retry,
                    request,
                    inner,
                    responder,
                } => {
                    let outcome = ready!(retry.as_mut().poll(cx));
                    let mut request = request.take().expect("polled after completion");
                    let mut inner = inner.take().expect("polled after completion");
                    let authenticated = match outcome {
                        Ok(authenticated) => authenticated,
                        Err(error) => {
                            tracing::debug!(kind = ?error.kind(), "bearer authentication failed");
                            let grpc = is_grpc(&request);
                            return Poll::Ready(Ok(reject(error, grpc, responder)));
                        }
                    };
                    match authenticated(request.extensions_mut()) {
                        None => {
                            let future = inner.call(request);
                            this.state.set(State::Inner { future });
                        }
                        Some(check) => {
                            let responder = responder.clone();
                            this.state.set(State::Checking {
                                check,
                                request: Some(request),
                                inner: Some(inner),
                                responder,
                            });
                        }
                    }
                }
                StateProj::Checking {
                    check,
                    request,
                    inner,
                    responder,
                } => {
                    let outcome = ready!(check.as_mut().poll(cx));
                    let request = request.take().expect("polled after completion");
                    let mut inner = inner.take().expect("polled after completion");
                    if let Err(error) = outcome {
                        tracing::debug!(kind = ?error.kind(), "token rejected by check");
                        let grpc = is_grpc(&request);
                        return Poll::Ready(Ok(reject(error, grpc, responder)));
                    }
                    let future = inner.call(request);
                    this.state.set(State::Inner { future });
                }
                StateProj::Inner { future } => return future.poll(cx),
                StateProj::Rejected { response } => {
                    return Poll::Ready(Ok(response.take().expect("polled after completion")));
                }
            }
        }
    }
}

impl<S, ReqBody, R> fmt::Debug for ResponseFuture<S, ReqBody, R>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
