//! crit and duplicate names (RFC 7515 sections 4, 4.1.11; RFC 7519 section 4).

use tower_jwt_auth::AuthErrorKind;

use crate::support::*;

#[tokio::test]
async fn any_crit_header_is_refused() {
    for header in [
        r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
        r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        r#"{"alg":"HS256","crit":[]}"#,
        r#"{"alg":"HS256","crit":"b64"}"#,
        r#"{"alg":"HS256","crit":null}"#,
    ] {
        let token = hs(header, &payload(""));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::UnsupportedCritical);
    }
}

#[tokio::test]
async fn duplicate_claims_are_refused() {
    let n = now();
    let cases = [
        format!(
            r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"exp":{}}}"#,
            n + 600,
            n + 6000
        ),
        format!(
            r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"e\u0078p":{}}}"#,
            n + 600,
            n + 6000
        ),
        // privilege escalation through a second `role` must not be possible
        payload(r#","role":"USER","role":"ADMIN""#),
        payload(r#","role":"USER","\u0072ole":"ADMIN""#),
        // `iss` twice: one accepted, one not
        format!(
            r#"{{"iss":"https://evil.test","iss":"{ISS}","aud":"{AUD}","exp":{}}}"#,
            n + 600
        ),
        format!(
            r#"{{"iss":"{ISS}","aud":"{AUD}","aud":"other","exp":{}}}"#,
            n + 600
        ),
        // past the small-set threshold, where names move into a hash set
        payload(&format!(
            "{},\"c3\":0",
            (0..40).map(|i| format!(",\"c{i}\":0")).collect::<String>()
        )),
    ];
    for body in cases {
        let token = hs(HS_HEADER, &body);
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::DuplicateClaim);
    }
}

#[tokio::test]
async fn many_distinct_claims_pass() {
    // Control for the hash-set path of the duplicate check.
    let extra: String = (0..40).map(|i| format!(",\"c{i}\":{i}")).collect();
    let token = hs(HS_HEADER, &payload(&extra));
    let (res, calls) = send!(layer(), bearer(&token));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn duplicate_header_parameters_are_malformed() {
    for header in [
        r#"{"alg":"HS256","alg":"none"}"#,
        r#"{"alg":"HS256","alg":"HS256"}"#,
        r#"{"alg":"HS256","a\u006cg":"HS256"}"#,
        r#"{"alg":"HS256","kid":"a","kid":"b"}"#,
        r#"{"alg":"HS256","typ":"JWT","typ":"at+jwt"}"#,
    ] {
        let token = hs(header, &payload(""));
        let (res, calls) = send!(layer(), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::Malformed);
    }
}
