//! Custom responders and the challenge realm.

use http::{HeaderValue, Response, StatusCode, header::WWW_AUTHENTICATE};
use tower_jwt_auth::{AuthError, AuthErrorKind, JwtAuthLayer};

use crate::support::*;

#[tokio::test]
async fn custom_responder_replaces_the_body_and_keeps_the_error() {
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .responder(|error: &AuthError| {
            let mut res = Response::new(format!("denied: {}", error.description()));
            *res.status_mut() = error.status();
            res.headers_mut()
                .insert("x-denied", HeaderValue::from_static("1"));
            res
        })
        .build()
        .unwrap();
    let (res, calls) = send!(layer.clone(), bearer(&hs(HS_HEADER, &with_exp("0"))));
    assert_eq!(calls, 0);
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.body(), "denied: the token has expired");
    assert_eq!(res.headers().get("x-denied").unwrap(), "1");
    assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
    assert_eq!(
        res.extensions().get::<AuthError>().map(AuthError::kind),
        Some(AuthErrorKind::Expired)
    );

    let (res, calls) = send!(layer.clone(), no_auth());
    assert_eq!(calls, 0);
    assert_eq!(res.body(), "denied: a bearer token is required");
    assert_eq!(
        res.extensions().get::<AuthError>().map(AuthError::kind),
        Some(AuthErrorKind::MissingCredentials)
    );

    let (res, calls) = send!(layer, bearer(&valid_token()));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn realm_is_used_in_challenges_and_validated() {
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .realm("my api")
        .build()
        .unwrap();
    let (res, calls) = send!(layer.clone(), no_auth());
    assert_eq!(calls, 0);
    assert_eq!(
        res.headers().get(WWW_AUTHENTICATE).unwrap(),
        r#"Bearer realm="my api""#
    );
    let (res, _) = send!(layer, bearer(&hs(HS_HEADER, &with_exp("0"))));
    assert_eq!(
        res.headers().get(WWW_AUTHENTICATE).unwrap(),
        r#"Bearer realm="my api", error="invalid_token", error_description="the token has expired""#
    );
    for bad in ["", "a\"b", "a\\b", "line\nbreak", "caf\u{e9}"] {
        assert!(
            JwtAuthLayer::<MyClaims>::builder(verifier())
                .realm(bad)
                .build()
                .is_err(),
            "{bad:?}"
        );
    }
}
