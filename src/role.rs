//! [`RequireRoleLayer`]: authorization by role.
//!
//! Put it inside [`JwtAuthLayer`](crate::JwtAuthLayer) (in axum, as a
//! `route_layer` on the routes that need the role). A request whose verified
//! token lacks the role gets 403 with `WWW-Authenticate: Bearer
//! error="insufficient_scope"`; a request with no verified token at all (the
//! authentication layer missing, misordered, or in optional mode without
//! credentials) gets 401 and never passes. A token that repeats a member
//! name in an object on the roles claim's path (`{"realm_access": {"roles":
//! [...], "roles": [...]}}`) gets 401 `invalid_token`
//! ([`DuplicateClaim`](crate::AuthErrorKind::DuplicateClaim)): the verifier
//! refuses repeats at the top level, this layer in the objects it reads.

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
use serde::{
    Deserialize, Deserializer,
    de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    challenge::SharedContext,
    claims::VerifiedPayload,
    error::{AuthError, AuthErrorKind},
    json::{ScanError, read_path},
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
    /// The roles the token holds, read from the configured claim in one pass
    /// over the payload (no JSON tree is built). A member name repeated in
    /// an object on the claim's path is refused: last-wins (or first-wins)
    /// would let a token carry two answers and have us pick one.
    fn roles_of(&self, payload: &VerifiedPayload) -> Result<Vec<String>, AuthError> {
        let seed = Roles {
            space_delimited: self.space_delimited,
        };
        match read_path(payload.json(), &self.path, seed) {
            Ok(roles) => Ok(roles.unwrap_or_default()),
            Err(ScanError::Duplicate) => Err(AuthError::new(AuthErrorKind::DuplicateClaim)),
            // A verified payload is JSON; a number beyond f64 on the path is
            // all that can fail here, and it names no role.
            Err(ScanError::Json(_)) => Ok(Vec::new()),
        }
    }

    fn check(&self, payload: &VerifiedPayload) -> Result<(), AuthError> {
        let denied = || Err(AuthError::new(AuthErrorKind::InsufficientScope));
        if self.roles.is_empty() {
            return denied();
        }
        let held = self.hierarchy.expand(self.roles_of(payload)?);
        let met = match self.mode {
            Mode::AnyOf => self.roles.iter().any(|r| held.contains(r)),
            Mode::AllOf => self.roles.iter().all(|r| held.contains(r)),
        };
        if met { Ok(()) } else { denied() }
    }
}

/// Reads the roles claim: a string (one role, or several space-delimited),
/// or an array whose strings are roles (anything else in it is skipped).
/// Any other shape holds no role.
struct Roles {
    space_delimited: bool,
}

impl<'de> DeserializeSeed<'de> for Roles {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Roles {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a role or a list of roles")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<String>, E> {
        Ok(if self.space_delimited {
            s.split(' ')
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            vec![s.to_owned()]
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut roles = Vec::new();
        while let Some(Role(role)) = seq.next_element::<Role>()? {
            roles.extend(role);
        }
        Ok(roles)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
}

/// One item of a roles array: a string is a role, anything else is skipped.
struct Role(Option<String>);

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only a string counts; `IgnoredAny` skips the rest unread.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Role;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a role")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Role, E> {
                Ok(Role(Some(s.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Role, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Role(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Role, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Role(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Role, E> {
                Ok(Role(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Role, E> {
                Ok(Role(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Role, E> {
                Ok(Role(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Role, E> {
                Ok(Role(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Role, E> {
                Ok(Role(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Role, E> {
                Ok(Role(None))
            }
        }
        d.deserialize_any(V)
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
        crate::claims::payload_is_read();
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
            Some(payload) => self.requirement.check(payload),
            None => Err(AuthError::new(AuthErrorKind::MissingCredentials)),
        };
        ResponseFuture::decide(
            &mut self.inner,
            request,
            verdict,
            &self.responder,
            "role requirement not met",
        )
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

impl<F, B> ResponseFuture<F, B> {
    /// Calls `inner` when `verdict` allows the request, or answers the
    /// refusal (with the authentication layer's challenge context): the
    /// whole of an authorization layer's `call`, shared by the role and
    /// step-up layers.
    pub(crate) fn decide<S, ReqBody, R>(
        inner: &mut S,
        request: Request<ReqBody>,
        verdict: Result<(), AuthError>,
        responder: &R,
        refused: &'static str,
    ) -> Self
    where
        S: Service<Request<ReqBody>, Future = F, Response = Response<B>>,
        R: Responder<B>,
        B: Default,
    {
        match verdict {
            Ok(()) => Self {
                state: RoleState::Inner {
                    future: inner.call(request),
                },
            },
            Err(error) => {
                tracing::debug!(kind = ?error.kind(), "{refused}");
                let error = error.with_context(
                    request
                        .extensions()
                        .get::<SharedContext>()
                        .map(|context| &context.0),
                );
                Self {
                    state: RoleState::Rejected {
                        response: Some(reject(error, is_grpc(&request), responder)),
                    },
                }
            }
        }
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
