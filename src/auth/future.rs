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
use crate::response::{Responder, is_grpc, reject};

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
