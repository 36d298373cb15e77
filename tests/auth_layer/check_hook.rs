//! The check hook, async or answering at once: rejected, unavailable, accepted.

use std::{
    io,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use tower_jwt_auth::{AuthError, AuthErrorKind, Claims, JwtAuthLayer, auth::Checked};

use crate::support::*;

#[tokio::test]
async fn rejecting_check_is_401_with_its_description() {
    let checked = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&checked);
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(move |claims: &Claims<MyClaims>| {
            seen.fetch_add(1, Ordering::SeqCst);
            let banned = claims.subject() == Some("user-1");
            async move {
                tokio::task::yield_now().await;
                if banned {
                    Err(AuthError::rejected("the account is disabled"))
                } else {
                    Ok(())
                }
            }
        })
        .build()
        .unwrap();
    let (res, calls) = send!(layer.clone(), bearer(&valid_token()));
    assert_invalid_token_with(
        &res,
        calls,
        AuthErrorKind::Rejected,
        "the account is disabled",
    );
    assert_eq!(checked.load(Ordering::SeqCst), 1);

    // Another subject passes the same check.
    let other = issuer().access_token("user-2").sign().unwrap();
    let (res, calls) = send!(layer.clone(), bearer(other.as_str()));
    assert_passed(&res, calls);
    assert_eq!(claims_of(&res).subject(), Some("user-2"));
    assert_eq!(checked.load(Ordering::SeqCst), 2);

    // The check never runs for a token that fails verification.
    let (res, calls) = send!(layer, bearer(&hs(HS_HEADER, &with_exp("0"))));
    assert_invalid_token(&res, calls, AuthErrorKind::Expired);
    assert_eq!(checked.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn check_description_outside_the_rfc6750_charset_is_replaced() {
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(|_: &Claims<MyClaims>| async {
            Err(AuthError::rejected("bad \"quote\"\r\nX-Injected: 1"))
        })
        .build()
        .unwrap();
    let (res, calls) = send!(layer, bearer(&valid_token()));
    assert_invalid_token(&res, calls, AuthErrorKind::Rejected);
}

#[tokio::test]
async fn unavailable_check_is_503_without_challenge() {
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(|_: &Claims<MyClaims>| async {
            Err(AuthError::unavailable(io::Error::other(
                "redis down at 10.0.0.7 password=hunter2",
            )))
        })
        .build()
        .unwrap();
    let (res, calls) = send!(layer, bearer(&valid_token()));
    assert_rejection(
        &res,
        calls,
        AuthErrorKind::Unavailable,
        503,
        None,
        "temporarily_unavailable",
        "authentication is temporarily unavailable",
    );
    assert!(!res.body().contains("redis"));
    assert!(!res.body().contains("hunter2"));
}

#[tokio::test]
async fn accepting_check_passes_and_sees_the_claims() {
    let seen = Arc::new(Mutex::new(None));
    let record = Arc::clone(&seen);
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(move |claims: &Claims<MyClaims>| {
            *record.lock().unwrap() = claims.subject().map(str::to_owned);
            async { Ok(()) }
        })
        .build()
        .unwrap();
    let (res, calls) = send!(layer, bearer(&valid_token()));
    assert_passed(&res, calls);
    assert_eq!(seen.lock().unwrap().as_deref(), Some("user-1"));
    assert_eq!(claims_of(&res).subject(), Some("user-1"));
}

/// A check that answers at once (`Checked::Ready`), as the logout
/// broadcast's does from memory: the same answers as an async one.
#[tokio::test]
async fn ready_checks_answer_like_async_ones() {
    let checked = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&checked);
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(move |claims: &Claims<MyClaims>| {
            seen.fetch_add(1, Ordering::SeqCst);
            Checked::Ready(match claims.subject() {
                Some("user-1") => Err(AuthError::rejected("the session has ended")),
                Some("user-3") => Err(AuthError::unavailable("the store is down")),
                _ => Ok(()),
            })
        })
        .build()
        .unwrap();
    let (res, calls) = send!(layer.clone(), bearer(&valid_token()));
    assert_invalid_token_with(
        &res,
        calls,
        AuthErrorKind::Rejected,
        "the session has ended",
    );

    let other = issuer().access_token("user-2").sign().unwrap();
    let (res, calls) = send!(layer.clone(), bearer(other.as_str()));
    assert_passed(&res, calls);
    assert_eq!(claims_of(&res).subject(), Some("user-2"));

    let down = issuer().access_token("user-3").sign().unwrap();
    let (res, calls) = send!(layer.clone(), bearer(down.as_str()));
    assert_rejection(
        &res,
        calls,
        AuthErrorKind::Unavailable,
        503,
        None,
        "temporarily_unavailable",
        "authentication is temporarily unavailable",
    );
    assert_eq!(checked.load(Ordering::SeqCst), 3);

    // Never for a token that fails verification.
    let (res, calls) = send!(layer, bearer(&hs(HS_HEADER, &with_exp("0"))));
    assert_invalid_token(&res, calls, AuthErrorKind::Expired);
    assert_eq!(checked.load(Ordering::SeqCst), 3);
}

/// A check may answer at once for some tokens and wait for others.
#[tokio::test]
async fn a_check_may_answer_now_or_later() {
    let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
        .check(|claims: &Claims<MyClaims>| {
            if claims.subject() == Some("user-1") {
                return Checked::Ready(Ok(()));
            }
            Checked::Pending(Box::pin(async {
                tokio::task::yield_now().await;
                Err(AuthError::rejected("looked up: refused"))
            }))
        })
        .build()
        .unwrap();
    let (res, calls) = send!(layer.clone(), bearer(&valid_token()));
    assert_passed(&res, calls);
    let other = issuer().access_token("user-2").sign().unwrap();
    let (res, calls) = send!(layer, bearer(other.as_str()));
    assert_invalid_token_with(&res, calls, AuthErrorKind::Rejected, "looked up: refused");
}

#[tokio::test]
async fn a_check_refusal_carries_the_realm_and_the_body() {
    // A check that answers at once and one that waits: the same refusal.
    for wait in [false, true] {
        let layer = JwtAuthLayer::<MyClaims>::builder(verifier())
            .realm("my api")
            .check(move |claims: &Claims<MyClaims>| {
                let sid = claims.session_id().map(str::to_owned);
                async move {
                    if wait {
                        tokio::task::yield_now().await;
                    }
                    match sid {
                        Some(_) => Ok(()),
                        None => Err(AuthError::rejected("the token has no session")),
                    }
                }
            })
            .build()
            .unwrap();
        let (res, calls) = send!(layer.clone(), bearer(&valid_token()));
        assert_rejection(
            &res,
            calls,
            AuthErrorKind::Rejected,
            401,
            Some(
                r#"Bearer realm="my api", error="invalid_token", error_description="the token has no session""#,
            ),
            "invalid_token",
            "the token has no session",
        );
        let with_session = issuer()
            .access_token("user-1")
            .session_id("s-1")
            .sign()
            .unwrap();
        let (res, calls) = send!(layer, bearer(with_session.as_str()));
        assert_passed(&res, calls);
        assert_eq!(claims_of(&res).session_id(), Some("s-1"));
    }
}
