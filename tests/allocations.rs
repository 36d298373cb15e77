//! Heap allocations on the hot path, counted by a global allocator that
//! counts on the current thread only (so other tests' threads do not count).
//!
//! A request through the layer, verified in full (no cache), allocates only
//! what it hands to the request: the verified payload (its buffer and the
//! `Arc` that shares it) and the two extension entries (`Claims<C>`, and the
//! payload handle that `RequireRoleLayer` and the session check read), and
//! nothing for a claims type without heap data. A cached token allocates
//! the two extension entries only.

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
    Algorithm, Claims, JwtAuthLayer, SigningKey, TokenIssuer, VerificationKey, Verifier,
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

#[test]
fn the_hot_path_allocates_only_the_claims_it_hands_over() {
    let token = token();

    // The same request without the layer allocates nothing itself.
    let bare = service_fn(|request: Request<String>| async move {
        drop(request);
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    assert_eq!(one_request(&bare, &token), 0);

    // Verified in full: the payload buffer, its Arc, two extension entries.
    let service = JwtAuthLayer::<Small>::new(verifier(false)).layer(service_fn(inner));
    for _ in 0..3 {
        assert_eq!(one_request(&service, &token), 4);
    }

    // From the cache: the two extension entries only.
    let service = JwtAuthLayer::<Small>::new(verifier(true)).layer(service_fn(inner));
    one_request(&service, &token);
    for _ in 0..3 {
        assert_eq!(one_request(&service, &token), 2);
    }
}
