//! Optional mode: anonymous requests pass, bad credentials do not.

use tower_jwt_auth::{AuthErrorKind, Claims};

use crate::support::*;

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_without_claims() {
    for req in [no_auth(), with_auth("Basic dXNlcjpwYXNz")] {
        let (res, calls) = send!(optional_layer(), req);
        assert_passed(&res, calls);
        assert!(res.extensions().get::<Claims<MyClaims>>().is_none());
    }
}

#[tokio::test]
async fn optional_mode_still_refuses_bad_credentials() {
    let (res, calls) = send!(optional_layer(), bearer("a.b.c"));
    assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    let expired = hs(HS_HEADER, &with_exp(&(now() - 3600).to_string()));
    let (res, calls) = send!(optional_layer(), bearer(&expired));
    assert_invalid_token(&res, calls, AuthErrorKind::Expired);
    let (res, calls) = send!(optional_layer(), with_auth("Bearer "));
    assert_invalid_request(&res, calls, "the bearer token is empty");
}

#[tokio::test]
async fn optional_mode_with_a_valid_token_has_claims() {
    let (res, calls) = send!(optional_layer(), bearer(&valid_token()));
    assert_passed(&res, calls);
    assert_eq!(claims_of(&res).subject(), Some("user-1"));
}
