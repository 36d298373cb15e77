//! The login rate limit: `LOGIN_RATE_PER_MIN` attempts a minute per client
//! IP address (GCRA, with the `governor` crate), refused with 429 and
//! `Retry-After`.
//!
//! The client is the TCP peer, as `axum::serve` records it with
//! `into_make_service_with_connect_info::<SocketAddr>()` (see `main.rs`):
//! no header is read. Behind a reverse proxy every client then has the
//! proxy's address and all share one budget; keying by `X-Forwarded-For` or
//! `Forwarded` is right only when a proxy you run overwrites that header,
//! since any client can send it, so this example does not. IPv6 clients are
//! keyed by their /64 (one host usually holds a whole /64), IPv4-mapped IPv6
//! addresses as IPv4. A request without a peer address (a router served
//! without connect info, or driven directly by a test) counts against one
//! shared budget.

use std::{
    convert::Infallible,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderValue, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    state::keyed::DefaultKeyedStateStore,
};

use super::error::ApiError;

/// Login attempts a minute per client when `LOGIN_RATE_PER_MIN` is unset.
pub const DEFAULT_LOGIN_RATE_PER_MIN: NonZeroU32 = NonZeroU32::new(10).unwrap();

type KeyedLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// A budget of login attempts per client; clones share it.
#[derive(Clone)]
pub struct LoginLimiter {
    limiter: Arc<KeyedLimiter>,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("clients", &self.limiter.len())
            .finish_non_exhaustive()
    }
}

impl LoginLimiter {
    /// `per_minute` attempts a minute per client, all of them at once at
    /// most (the burst), then one every `60 / per_minute` seconds.
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        Self {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
        }
    }

    /// Counts an attempt of `client`: `Err` with the wait until the next
    /// one is allowed when its budget is spent.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        self.limiter
            .check_key(&key(client))
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Forgets the clients whose budget is full again (call it now and
    /// then, or the table grows with every client ever seen).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

/// The budget `client` counts against.
fn key(client: Option<IpAddr>) -> IpAddr {
    match client {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
        Some(v4) => v4,
        None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// The client's IP address: the TCP peer that `axum::serve` recorded
/// (`ConnectInfo`), if it did.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip()),
        ))
    }
}

/// Middleware for `POST /users/login`: counts the attempt before the body
/// is read; over the budget, 429 `too_many_requests` with `Retry-After` (whole
/// seconds, rounded up).
pub async fn limit_logins(
    State(limiter): State<LoginLimiter>,
    ClientIp(client): ClientIp,
    request: Request,
    next: Next,
) -> Response {
    match limiter.check(client) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            tracing::info!(client = ?client, "login rate limit reached");
            let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "too many login attempts: try again later",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
    }
}
