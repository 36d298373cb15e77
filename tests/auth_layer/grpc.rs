//! gRPC requests: rejections as trailers-only responses.

use http::{
    StatusCode,
    header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE},
};
use tower_jwt_auth::{AuthError, AuthErrorKind, Claims, JwtAuthLayer, RequireRoleLayer};

use crate::support::*;

fn grpc(token: Option<&str>, content_type: &str) -> Req {
    let mut builder = request()
        .method(http::Method::POST)
        .header(CONTENT_TYPE, content_type);
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(String::new()).unwrap()
}

#[track_caller]
fn assert_grpc_rejection(
    res: &Res,
    calls: usize,
    kind: AuthErrorKind,
    status: &str,
    message: &str,
) {
    assert_eq!(calls, 0, "the inner service must not be called");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers().get("grpc-status").unwrap(), status);
    assert_eq!(res.headers().get("grpc-message").unwrap(), message);
    assert_eq!(res.headers().get(CONTENT_TYPE).unwrap(), "application/grpc");
    assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
    assert_eq!(res.body(), "");
    assert_eq!(
        res.extensions().get::<AuthError>().map(AuthError::kind),
        Some(kind)
    );
}

#[tokio::test]
async fn grpc_rejections_are_trailers_only_responses() {
    for content_type in [
        "application/grpc",
        "application/grpc+proto",
        "application/GRPC;charset=utf-8",
    ] {
        let (res, calls) = send!(layer(), grpc(None, content_type));
        assert_grpc_rejection(
            &res,
            calls,
            AuthErrorKind::MissingCredentials,
            "16",
            "a bearer token is required",
        );

        let expired = hs(HS_HEADER, &with_exp("0"));
        let (res, calls) = send!(layer(), grpc(Some(&expired), content_type));
        assert_grpc_rejection(
            &res,
            calls,
            AuthErrorKind::Expired,
            "16",
            "the token has expired",
        );

        let user = issuer().access_token("u").role("USER").sign().unwrap();
        let (res, calls) = send_role!(
            layer(),
            RequireRoleLayer::any_of(["ADMIN"]),
            grpc(Some(user.as_str()), content_type)
        );
        assert_grpc_rejection(
            &res,
            calls,
            AuthErrorKind::InsufficientScope,
            "7",
            "the token lacks the required role",
        );

        let (res, calls) = send!(layer(), grpc(Some(user.as_str()), content_type));
        assert_passed(&res, calls);
    }
}

#[tokio::test]
async fn grpc_check_rejections() {
    let rejecting = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(|_: &Claims<MyClaims>| async { Err(AuthError::rejected("the session was revoked")) })
        .build()
        .unwrap();
    let token = valid_token();
    let (res, calls) = send!(rejecting, grpc(Some(&token), "application/grpc"));
    assert_grpc_rejection(
        &res,
        calls,
        AuthErrorKind::Rejected,
        "16",
        "the session was revoked",
    );

    let unavailable = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(|_: &Claims<MyClaims>| async { Err(AuthError::unavailable("backend down")) })
        .build()
        .unwrap();
    let (res, calls) = send!(unavailable, grpc(Some(&token), "application/grpc"));
    assert_grpc_rejection(
        &res,
        calls,
        AuthErrorKind::Unavailable,
        "14",
        "authentication is temporarily unavailable",
    );
}

#[tokio::test]
async fn grpc_web_is_not_grpc() {
    let (res, calls) = send!(layer(), grpc(None, "application/grpc-web"));
    assert_missing_credentials(&res, calls);
    assert!(res.headers().get("grpc-status").is_none());
}
