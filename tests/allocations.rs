//! Heap allocations on the hot path, counted by a global allocator that
//! counts on the current thread only (so other tests' threads do not count).
//!
//! A request through the layer, verified in full (no cache), allocates only
//! what it hands to the request: the `Claims<C>` entry of the extensions
//! and the verified payload it holds (one shared buffer, which backs
//! `Claims::registered`), and nothing for a claims type without heap data.
//! A cached token allocates the entry only: the payload is the cache's.
//! Reading `sid`, `sub`, `iss` or `jti` from the claims allocates nothing.
//! Once a `RequireRoleLayer` or `StepUpLayer` has wrapped a service in the
//! process, a second entry (the payload, for those layers) comes on top.
//!
//! One test function: that last switch is process-wide, so the counts
//! without it are taken first.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    convert::Infallible,
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

use http::{Request, Response, StatusCode, header::AUTHORIZATION};
use serde::Deserialize;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_jwt_auth::{
    Algorithm, Claims, JwtAuthLayer, RequireRoleLayer, SigningKey, TokenIssuer, VerificationKey,
    Verifier,
};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the thread may be tearing down its locals.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded to `System` unchanged; counting touches
// only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocations `f` makes on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (usize, T) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    let out = f();
    COUNTING.with(|on| on.set(false));
    (ALLOCATIONS.with(Cell::get), out)
}

/// Claims without heap data.
#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)]
struct Small {
    exp: i64,
    iat: i64,
}

/// Claims with one `String`.
#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)]
struct Named {
    sub: String,
    exp: i64,
}

const SECRET: &[u8] = b"allocation-test-secret-0123456789abcdef";
const ISS: &str = "https://issuer.test";
const AUD: &str = "api";

fn verifier(cache: bool) -> Verifier {
    let builder = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .issuer(ISS)
        .audience(AUD);
    let builder = if cache { builder } else { builder.no_cache() };
    builder.build().unwrap()
}

fn token() -> String {
    TokenIssuer::new(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .access_token("user-1")
        .session_id("session-1")
        .role("USER")
        .sign()
        .unwrap()
        .into_string()
}

/// A request as a server hands it over: its extension map already exists
/// (hyper and axum put their own entries there), so the layer's entries
/// are all that is counted.
#[derive(Clone)]
struct ConnectionInfo;

fn request(token: &str) -> Request<String> {
    let mut request = Request::get("/")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    request.extensions_mut().insert(ConnectionInfo);
    request
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("ready on the first poll"),
    }
}

/// The inner service keeps nothing and allocates nothing: it checks the
/// claims are there and returns an empty response.
async fn inner(request: Request<String>) -> Result<Response<String>, Infallible> {
    let ok = request.extensions().get::<Claims<Small>>().is_some();
    let mut response = Response::new(String::new());
    if !ok {
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    }
    Ok(response)
}

async fn inner_named(request: Request<String>) -> Result<Response<String>, Infallible> {
    let ok = request
        .extensions()
        .get::<Claims<Named>>()
        .is_some_and(|claims| claims.sub == "user-1");
    let mut response = Response::new(String::new());
    if !ok {
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    }
    Ok(response)
}

/// Reads the string claims as a session check does: `sid`, `sub`, and
/// `iss` and `jti` too.
async fn inner_reading(request: Request<String>) -> Result<Response<String>, Infallible> {
    let ok = request
        .extensions()
        .get::<Claims<Small>>()
        .is_some_and(|claims| {
            claims.session_id() == Some("session-1")
                && claims.subject() == Some("user-1")
                && claims.issuer() == Some(ISS)
                && claims.token_id().is_some_and(|jti| !jti.is_empty())
        });
    let mut response = Response::new(String::new());
    if !ok {
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    }
    Ok(response)
}

/// Allocations of one request through `service`, the request built (and
/// the service polled ready) beforehand: what a server's call costs.
fn one_request<S>(service: &S, token: &str) -> usize
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone,
{
    let mut service = service.clone();
    block_on(service.ready()).unwrap();
    let request = request(token);
    let (n, response) = allocations(|| block_on(service.call(request)).unwrap());
    assert_eq!(response.status(), StatusCode::OK);
    n
}

/// The allocations of the same request, three times after a first one: a
/// thread's first token allocates the strings of its header memo (see
/// `Verifier`), and a cached token is verified in full the first time.
fn steady<S>(service: &S, token: &str) -> [usize; 3]
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone,
{
    one_request(service, token);
    [(); 3].map(|()| one_request(service, token))
}

#[test]
fn the_hot_path_allocates_only_the_claims_it_hands_over() {
    let token = token();

    // The same request without the layer allocates nothing itself.
    let bare = service_fn(|request: Request<String>| async move {
        drop(request);
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    assert_eq!(steady(&bare, &token), [0; 3]);

    // Verified in full: the payload buffer and the `Claims<C>` entry.
    let full = JwtAuthLayer::<Small>::new(verifier(false)).layer(service_fn(inner));
    assert_eq!(steady(&full, &token), [2; 3]);

    // From the cache: the `Claims<C>` entry only.
    let cached = JwtAuthLayer::<Small>::new(verifier(true)).layer(service_fn(inner));
    assert_eq!(steady(&cached, &token), [1; 3]);

    // Reading `sid`, `sub`, `iss` and `jti` allocates nothing: they are read
    // where the verifier found them in the payload.
    let reading = JwtAuthLayer::<Small>::new(verifier(false)).layer(service_fn(inner_reading));
    assert_eq!(steady(&reading, &token), [2; 3]);
    let reading = JwtAuthLayer::<Small>::new(verifier(true)).layer(service_fn(inner_reading));
    assert_eq!(steady(&reading, &token), [1; 3]);

    // A claims type with heap data adds its own: here one `String`, decoded
    // in full, or cloned out of the cache.
    let full_named = JwtAuthLayer::<Named>::new(verifier(false)).layer(service_fn(inner_named));
    assert_eq!(steady(&full_named, &token), [3; 3]);
    let cached_named = JwtAuthLayer::<Named>::new(verifier(true)).layer(service_fn(inner_named));
    assert_eq!(steady(&cached_named, &token), [2; 3]);

    // A role layer anywhere in the process: the payload entry comes on top,
    // for every stack (the layer is what reads it).
    let _roles = RequireRoleLayer::any_of(["USER"]).layer(service_fn(inner));
    assert_eq!(steady(&full, &token), [3; 3]);
    assert_eq!(steady(&cached, &token), [2; 3]);
}
