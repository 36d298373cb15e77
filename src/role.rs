//! [`RequireRoleLayer`]: authorization by role.
//!
//! Put it inside [`JwtAuthLayer`](crate::JwtAuthLayer) (in axum, as a
//! `route_layer` on the routes that need the role). A request whose verified
//! token lacks the role gets 403 with `WWW-Authenticate: Bearer
//! error="insufficient_scope"`; a request with no verified token at all (the
//! authentication layer missing, misordered, or in optional mode without
//! credentials) gets 401 and never passes.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use serde_json::Value;
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    challenge::SharedContext,
    claims::VerifiedPayload,
    error::{AuthError, AuthErrorKind},
    response::{DefaultResponder, Responder, is_grpc, reject},
};

/// Which roles imply which others, such as "ADMIN implies USER".
///
/// Implications are transitive.
///
/// ```
/// use tower_jwt_auth::RoleHierarchy;
///
/// let hierarchy = RoleHierarchy::new()
///     .grant("ADMIN", ["MANAGER"])
///     .grant("MANAGER", ["USER"]); // so ADMIN implies USER too
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RoleHierarchy {
    implies: HashMap<String, Vec<String>>,
}

impl RoleHierarchy {
    /// An empty hierarchy: every role stands for itself only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares that holding `role` grants each of `implied` as well.
    pub fn grant<I>(mut self, role: impl Into<String>, implied: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.implies
            .entry(role.into())
            .or_default()
            .extend(implied.into_iter().map(Into::into));
        self
    }

    /// `roles` with everything they imply.
    fn expand(&self, roles: Vec<String>) -> HashSet<String> {
        let mut all: HashSet<String> = HashSet::new();
        let mut stack = roles;
        while let Some(role) = stack.pop() {
            if let Some(implied) = self.implies.get(&role) {
                stack.extend(implied.iter().filter(|r| !all.contains(*r)).cloned());
            }
            all.insert(role);
        }
        all
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    AnyOf,
    AllOf,
}

#[derive(Debug, Clone)]
struct Requirement {
    roles: Vec<String>,
    mode: Mode,
    path: Vec<String>,
    space_delimited: bool,
    hierarchy: RoleHierarchy,
}

impl Requirement {
    /// The roles the token holds, read from the configured claim.
    fn roles_of(&self, payload: &VerifiedPayload) -> Vec<String> {
        let Ok(root) = serde_json::from_slice::<Value>(payload.json()) else {
            return Vec::new();
        };
        let mut value = &root;
        for segment in &self.path {
            match value.get(segment) {
                Some(next) => value = next,
                None => return Vec::new(),
            }
        }
        match value {
            Value::String(s) if self.space_delimited => s
                .split(' ')
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn is_met_by(&self, payload: &VerifiedPayload) -> bool {
        if self.roles.is_empty() {
            return false;
        }
        let held = self.hierarchy.expand(self.roles_of(payload));
        match self.mode {
            Mode::AnyOf => self.roles.iter().any(|r| held.contains(r)),
            Mode::AllOf => self.roles.iter().all(|r| held.contains(r)),
        }
    }
}

/// Requires the verified token to carry roles; see the [module docs](crate::role).
///
/// Roles are read from the `role` claim by default, which may hold a single
/// string (`"role": "ADMIN"`) or an array of strings. Other shapes:
///
/// ```
/// use tower_jwt_auth::{RequireRoleLayer, RoleHierarchy};
///
/// // "role": "ADMIN", where ADMIN also satisfies USER.
/// let users = RequireRoleLayer::any_of(["USER"])
///     .hierarchy(RoleHierarchy::new().grant("ADMIN", ["USER"]));
/// // "roles": ["reader", "writer"]
/// let writers = RequireRoleLayer::all_of(["reader", "writer"]).claim("roles");
/// // "scope": "read write" (RFC 8693 / RFC 9068)
/// let readers = RequireRoleLayer::any_of(["read"]).scope();
/// // Keycloak: "realm_access": {"roles": [...]}
/// let admins = RequireRoleLayer::any_of(["admin"]).claim_path(["realm_access", "roles"]);
/// ```
///
/// An empty list of roles denies every request.
pub struct RequireRoleLayer<R = DefaultResponder> {
    requirement: Arc<Requirement>,
    responder: R,
}

impl<R: Clone> Clone for RequireRoleLayer<R> {
    fn clone(&self) -> Self {
        Self {
            requirement: Arc::clone(&self.requirement),
            responder: self.responder.clone(),
        }
    }
}

impl<R: fmt::Debug> fmt::Debug for RequireRoleLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireRoleLayer")
            .field("requirement", &self.requirement)
            .field("responder", &self.responder)
            .finish()
    }
}

impl RequireRoleLayer {
    fn with_mode<I>(mode: Mode, roles: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self {
            requirement: Arc::new(Requirement {
                roles: roles.into_iter().map(Into::into).collect(),
                mode,
                path: vec!["role".to_owned()],
                space_delimited: false,
                hierarchy: RoleHierarchy::default(),
            }),
            responder: DefaultResponder::default(),
        }
    }

    /// Requires at least one of `roles`.
    #[must_use]
    pub fn any_of<I>(roles: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self::with_mode(Mode::AnyOf, roles)
    }

    /// Requires every one of `roles`.
    #[must_use]
    pub fn all_of<I>(roles: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self::with_mode(Mode::AllOf, roles)
    }
}

impl<R> RequireRoleLayer<R> {
    fn requirement_mut(&mut self) -> &mut Requirement {
        Arc::make_mut(&mut self.requirement)
    }

    /// Reads roles from the top-level claim `name` (default `role`). The name
    /// is taken literally, dots included, as in Auth0's namespaced claims.
    #[must_use]
    pub fn claim(self, name: impl Into<String>) -> Self {
        self.claim_path([name])
    }

    /// Reads roles from a nested claim, one segment per object level:
    /// `["realm_access", "roles"]` reads `{"realm_access": {"roles": [...]}}`.
    #[must_use]
    pub fn claim_path<I>(mut self, path: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.requirement_mut().path = path.into_iter().map(Into::into).collect();
        self
    }

    /// Reads roles from the space-delimited `scope` claim (RFC 9068).
    #[must_use]
    pub fn scope(self) -> Self {
        self.claim("scope").space_delimited()
    }

    /// Splits a string claim on spaces into several roles.
    #[must_use]
    pub fn space_delimited(mut self) -> Self {
        self.requirement_mut().space_delimited = true;
        self
    }

    /// Roles that imply others, such as ADMIN implying USER.
    #[must_use]
    pub fn hierarchy(mut self, hierarchy: RoleHierarchy) -> Self {
        self.requirement_mut().hierarchy = hierarchy;
        self
    }

    /// Replaces how rejections become responses; see [`Responder`].
    ///
    /// This layer has its own responder: to name the same realm as
    /// [`JwtAuthLayer`](crate::JwtAuthLayer), pass both the same
    /// [`DefaultResponder`], e.g. `DefaultResponder::new("my-api")?`.
    #[must_use]
    pub fn responder<R2>(self, responder: R2) -> RequireRoleLayer<R2> {
        RequireRoleLayer {
            requirement: self.requirement,
            responder,
        }
    }
}

impl<S, R: Clone> Layer<S> for RequireRoleLayer<R> {
    type Service = RequireRole<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireRole {
            inner,
            requirement: Arc::clone(&self.requirement),
            responder: self.responder.clone(),
        }
    }
}

/// The middleware of [`RequireRoleLayer`].
pub struct RequireRole<S, R = DefaultResponder> {
    inner: S,
    requirement: Arc<Requirement>,
    responder: R,
}

impl<S: Clone, R: Clone> Clone for RequireRole<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            requirement: Arc::clone(&self.requirement),
            responder: self.responder.clone(),
        }
    }
}

impl<S, R> RequireRole<S, R> {
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

impl<S: fmt::Debug, R: fmt::Debug> fmt::Debug for RequireRole<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireRole")
            .field("inner", &self.inner)
            .field("requirement", &self.requirement)
            .field("responder", &self.responder)
            .finish()
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for RequireRole<S, R>
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
        let verdict = match request.extensions().get::<VerifiedPayload>() {
            Some(payload) if self.requirement.is_met_by(payload) => Ok(()),
            Some(_) => Err(AuthError::new(AuthErrorKind::InsufficientScope)),
            None => Err(AuthError::new(AuthErrorKind::MissingCredentials)),
        };
        match verdict {
            Ok(()) => ResponseFuture {
                state: RoleState::Inner {
                    future: self.inner.call(request),
                },
            },
            Err(error) => {
                tracing::debug!(kind = ?error.kind(), "role requirement not met");
                let error = error.with_context(
                    request
                        .extensions()
                        .get::<SharedContext>()
                        .map(|context| &context.0),
                );
                let response = reject(error, is_grpc(&request), &self.responder);
                ResponseFuture {
                    state: RoleState::Rejected {
                        response: Some(response),
                    },
                }
            }
        }
    }
}

pin_project! {
    /// The response future of [`RequireRole`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: RoleState<F, B>,
    }
}

pin_project! {
    #[project = RoleStateProj]
    enum RoleState<F, B> {
        Inner { #[pin] future: F },
        Rejected { response: Option<Response<B>> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            RoleStateProj::Inner { future } => future.poll(cx),
            RoleStateProj::Rejected { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
