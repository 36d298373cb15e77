//! Registered claims (RFC 7519 section 4.1).

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use http::{Response, StatusCode, header::WWW_AUTHENTICATE};
use serde::Deserialize;
use tower::{ServiceBuilder, ServiceExt};
use tower_jwt_auth::{AuthError, AuthErrorKind, JwtAuthLayer, VerificationKey, Verifier};

use crate::support::*;

#[tokio::test]
async fn expired_token_is_refused() {
    for exp in [now() - 120, now() - 31 - 60, 0, -1, 1] {
        let token = hs(HS_HEADER, &with_exp(&exp.to_string()));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Expired);
    }
}

#[tokio::test]
async fn expired_token_from_the_issuer_is_refused() {
    // Issued with a 1 s lifetime, verified with no leeway 2 s later would be
    // slow; instead use a verifier whose leeway is zero and a past `exp`.
    let token = hs(HS_HEADER, &with_exp(&(now() - 10).to_string()));
    let strict = verifier_builder(VerificationKey::hmac(SECRET).unwrap())
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    let (res, calls) = send!(layer_with(strict), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::Expired);
}

#[tokio::test]
async fn exp_within_the_leeway_passes() {
    let token = hs(HS_HEADER, &with_exp(&(now() - 10).to_string()));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_passed(&res, calls);
    // fractional NumericDate values are allowed (RFC 7519 section 2)
    let token = hs(HS_HEADER, &with_exp(&format!("{}.75", now() + 600)));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn missing_exp_is_a_missing_claim() {
    let body = format!(r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"user-1"}}"#);
    let token = hs(HS_HEADER, &body);
    let (res, calls) = send!(layer(), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::MissingClaim);
}

#[tokio::test]
async fn exp_of_the_wrong_type_is_invalid_claims() {
    let future = now() + 600;
    for exp in [
        format!(r#""{future}""#),
        "true".to_owned(),
        "null".to_owned(),
        format!("[{future}]"),
        format!(r#"{{"value":{future}}}"#),
    ] {
        let token = hs(HS_HEADER, &with_exp(&exp));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidClaims);
    }
}

#[tokio::test]
async fn extreme_exp_values_do_not_wrap_around() {
    // Far past values saturate and stay expired.
    for exp in ["-1e300", "-9223372036854775808", "-99999999999999999999"] {
        let token = hs(HS_HEADER, &with_exp(exp));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Expired);
    }
    // Numbers beyond f64 (which JSON cannot carry as NaN or infinity) are refused.
    for exp in ["1e400", "-1e400"] {
        let token = hs(HS_HEADER, &with_exp(exp));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
    // Far future values saturate and stay valid: exp + leeway must not overflow
    // into the past.
    for exp in ["9223372036854775807", "1e300", "18446744073709551615"] {
        let token = hs(HS_HEADER, &with_exp(exp));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_passed(&res, calls);
    }
}

#[tokio::test]
async fn future_nbf_is_refused_and_nbf_within_leeway_passes() {
    let token = hs(HS_HEADER, &payload(&format!(r#","nbf":{}"#, now() + 600)));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::NotYetValid);

    let token = hs(HS_HEADER, &payload(&format!(r#","nbf":{}"#, now() + 10)));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_passed(&res, calls);

    let token = hs(HS_HEADER, &payload(&format!(r#","nbf":"{}""#, now())));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidClaims);
}

#[tokio::test]
async fn wrong_or_missing_issuer_is_refused() {
    let exp = now() + 600;
    for body in [
        format!(r#"{{"iss":"https://evil.test","aud":"{AUD}","exp":{exp}}}"#),
        format!(r#"{{"iss":"HTTPS://ISSUER.TEST","aud":"{AUD}","exp":{exp}}}"#),
        format!(r#"{{"iss":"{ISS}/","aud":"{AUD}","exp":{exp}}}"#),
        format!(r#"{{"iss":"","aud":"{AUD}","exp":{exp}}}"#),
        format!(r#"{{"aud":"{AUD}","exp":{exp}}}"#),
    ] {
        let token = hs(HS_HEADER, &body);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidIssuer);
    }
    // `iss` of the wrong type is invalid, not merely unknown.
    for iss in [format!(r#"["{ISS}"]"#), "null".to_owned(), "1".to_owned()] {
        let body = format!(r#"{{"iss":{iss},"aud":"{AUD}","exp":{exp}}}"#);
        let token = hs(HS_HEADER, &body);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidClaims);
    }
}

#[tokio::test]
async fn any_of_several_configured_issuers_is_accepted() {
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .issuer("https://a.test")
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap();
    let (res, calls) = send!(layer_with(verifier), bearer(&valid_token()));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn wrong_or_missing_audience_is_refused() {
    let exp = now() + 600;
    for aud in [
        r#","aud":"other""#.to_owned(),
        r#","aud":"API""#.to_owned(),
        r#","aud":["other","another"]"#.to_owned(),
        r#","aud":[]"#.to_owned(),
        String::new(),
    ] {
        let body = format!(r#"{{"iss":"{ISS}","exp":{exp}{aud}}}"#);
        let token = hs(HS_HEADER, &body);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidAudience);
    }
    for aud in ["1", r#"[1]"#, r#"{"aud":"api"}"#, "null", r#"["api",null]"#] {
        let body = format!(r#"{{"iss":"{ISS}","exp":{exp},"aud":{aud}}}"#);
        let token = hs(HS_HEADER, &body);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidClaims);
    }
}

#[tokio::test]
async fn audience_array_containing_ours_passes() {
    let body = format!(
        r#"{{"iss":"{ISS}","aud":["other","{AUD}"],"exp":{}}}"#,
        now() + 600
    );
    let token = hs(HS_HEADER, &body);
    let (res, calls) = send!(layer(), bearer(&token));
    assert_passed(&res, calls);
    assert_eq!(
        claims_of(&res).registered().aud,
        vec!["other".to_owned(), AUD.to_owned()]
    );
}

#[tokio::test]
async fn audience_present_when_none_is_configured_is_refused() {
    // RFC 7519 section 4.1.3: a token that names audiences must name us.
    let verifier = Verifier::builder()
        .key(VerificationKey::hmac(SECRET).unwrap())
        .build()
        .unwrap();
    let exp = now() + 600;
    for aud in [r#""api""#, r#"["api"]"#, "[]"] {
        let token = hs(HS_HEADER, &format!(r#"{{"exp":{exp},"aud":{aud}}}"#));
        let (res, calls) = send!(layer_with(verifier.clone()), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidAudience);
    }
    // Control: without `aud` it passes.
    let token = hs(HS_HEADER, &format!(r#"{{"exp":{exp}}}"#));
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn other_registered_claims_of_the_wrong_type_are_invalid() {
    for extra in [
        r#","iat":"yesterday""#,
        r#","sub":42"#,
        r#","jti":["a"]"#,
        r#","sid":{}"#,
        r#","nbf":null"#,
    ] {
        let token = hs(HS_HEADER, &payload(extra));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidClaims);
    }
}

#[tokio::test]
async fn claims_that_do_not_fit_the_application_type_are_invalid() {
    #[derive(Clone, Deserialize)]
    #[allow(dead_code)]
    struct Strict {
        tenant: String,
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::<Strict>::new(verifier()))
        .service(tower::service_fn(move |_req: Req| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new("ok".to_owned())) }
        }));
    // The description names the claim, never its value: in the header with
    // single quotes (RFC 6750 allows no `"` there), in the JSON body as is.
    let res = svc.clone().oneshot(bearer(&valid_token())).await.unwrap();
    assert_claim_named(
        &res,
        calls.load(Ordering::SeqCst),
        "missing claim",
        "tenant",
    );

    let token = hs(HS_HEADER, &payload(r#","tenant":7"#));
    let res = svc.clone().oneshot(bearer(&token)).await.unwrap();
    assert_claim_named(
        &res,
        calls.load(Ordering::SeqCst),
        "invalid claim",
        "tenant",
    );
    assert!(!res.body().contains('7'), "the value is never quoted");

    let token = hs(HS_HEADER, &payload(r#","tenant":"acme""#));
    let res = svc.oneshot(bearer(&token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[track_caller]
fn assert_claim_named(res: &Res, calls: usize, what: &str, claim: &str) {
    assert_eq!(calls, 0, "the inner service must not be called");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap()),
        Some(
            format!(
                r#"Bearer realm="api", error="invalid_token", error_description="{what} '{claim}'""#
            )
            .as_str()
        )
    );
    let description = format!(r#"{what} "{claim}""#);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(res.body()).unwrap(),
        serde_json::json!({"error": "invalid_token", "error_description": description})
    );
    let attached = res.extensions().get::<AuthError>().unwrap();
    assert_eq!(attached.kind(), AuthErrorKind::InvalidClaims);
    assert_eq!(attached.description(), description);
}

#[tokio::test]
async fn a_required_claim_set_to_null_is_missing() {
    let verifier = verifier_builder(VerificationKey::hmac(SECRET).unwrap())
        .required_claims(["exp", "tenant"])
        .build()
        .unwrap();
    for tenant in [r#","tenant":null"#, r#","tenant":null,"other":1"#] {
        let token = hs(HS_HEADER, &payload(tenant));
        let (res, calls) = send!(layer_with(verifier.clone()), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::MissingClaim);
    }
    // Control: any non-null value satisfies the requirement.
    for tenant in [
        r#","tenant":"acme""#,
        r#","tenant":0"#,
        r#","tenant":false"#,
    ] {
        let token = hs(HS_HEADER, &payload(tenant));
        let (res, calls) = send!(layer_with(verifier.clone()), bearer(&token));
        assert_passed(&res, calls);
    }
    // A claim that is not required may be null.
    let token = hs(HS_HEADER, &payload(r#","tenant":"acme","note":null"#));
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn iat_in_the_future_beyond_the_leeway_is_not_yet_valid() {
    let n = now();
    for iat in [n + 600, n + 31 + 60, i64::MAX] {
        let token = hs(HS_HEADER, &payload(&format!(r#","iat":{iat}"#)));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::NotYetValid);
    }
    let token = hs(HS_HEADER, &payload(r#","iat":1e300"#));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::NotYetValid);
    // Within the leeway, now, or in the past: accepted.
    for iat in [n + 10, n, n - 3600, 0] {
        let token = hs(HS_HEADER, &payload(&format!(r#","iat":{iat}"#)));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_passed(&res, calls);
    }
}

#[tokio::test]
async fn future_iat_is_accepted_when_the_check_is_turned_off() {
    let verifier = verifier_builder(VerificationKey::hmac(SECRET).unwrap())
        .reject_future_iat(false)
        .build()
        .unwrap();
    let token = hs(HS_HEADER, &payload(&format!(r#","iat":{}"#, now() + 600)));
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_passed(&res, calls);
}

/// The claims the RFC 9068 profile types (`auth_time`, `scope`, `acr`,
/// `client_id`) are read to their value whether or not the profile is on:
/// a number beyond f64 or a lone surrogate in them is malformed JSON, as
/// it is in `exp`, even for a claims type that would only skip them.
#[tokio::test]
async fn profile_claims_beyond_json_are_malformed() {
    for extra in [
        r#","auth_time":1e400"#,
        r#","auth_time":-1e400"#,
        r#","scope":"\ud800""#,
        r#","acr":"a\udc00""#,
        r#","client_id":"\ud800\ud800""#,
    ] {
        let token = hs(HS_HEADER, &payload(extra));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}
