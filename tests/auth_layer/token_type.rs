//! typ (RFC 7515 section 4.1.9, RFC 8725 section 3.11, RFC 9068).

use tower_jwt_auth::{AuthError, AuthErrorKind, VerificationKey, Verifier};

use crate::support::*;

fn at_jwt_verifier() -> Verifier {
    verifier_builder(VerificationKey::hmac(SECRET).unwrap())
        .require_type("at+jwt")
        .build()
        .unwrap()
}

#[tokio::test]
async fn required_type_accepts_its_spellings() {
    let token = issuer()
        .token_type("at+jwt")
        .access_token("user-1")
        .sign()
        .unwrap();
    let (res, calls) = send!(layer_with(at_jwt_verifier()), bearer(token.as_str()));
    assert_passed(&res, calls);
    for typ in ["application/at+jwt", "AT+JWT", "Application/At+Jwt"] {
        let header = format!(r#"{{"alg":"HS256","typ":"{typ}"}}"#);
        let token = hs(&header, &payload(""));
        let (res, calls) = send!(layer_with(at_jwt_verifier()), bearer(&token));
        assert_passed(&res, calls);
    }
}

#[tokio::test]
async fn required_type_refuses_other_or_missing_types() {
    let plain = valid_token(); // typ: JWT
    let (res, calls) = send!(layer_with(at_jwt_verifier()), bearer(&plain));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidType);
    for header in [
        r#"{"alg":"HS256"}"#,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"{"alg":"HS256","typ":""}"#,
        r#"{"alg":"HS256","typ":"at+jwt "}"#,
        r#"{"alg":"HS256","typ":"application/application/at+jwt"}"#,
        r#"{"alg":"HS256","typ":"text/at+jwt"}"#,
        r#"{"alg":"HS256","typ":"at+jwt; charset=utf-8"}"#,
    ] {
        let token = hs(header, &payload(""));
        let (res, calls) = send!(layer_with(at_jwt_verifier()), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::InvalidType);
    }
}

#[tokio::test]
async fn rfc9068_profile_requires_its_claims() {
    let verifier = verifier_builder(VerificationKey::hmac(SECRET).unwrap())
        .rfc9068()
        .build()
        .unwrap();
    let issuer = issuer().token_type("at+jwt");
    let token = issuer
        .access_token("user-1")
        .claim("client_id", "client-1")
        .sign()
        .unwrap();
    let (res, calls) = send!(layer_with(verifier.clone()), bearer(token.as_str()));
    assert_passed(&res, calls);

    // No client_id.
    let token = issuer.access_token("user-1").sign().unwrap();
    let (res, calls) = send!(layer_with(verifier.clone()), bearer(token.as_str()));
    assert_invalid_token(&res, calls, AuthErrorKind::MissingClaim);

    // Each required claim, removed in turn.
    let n = now();
    let full = [
        ("iss", format!(r#""{ISS}""#)),
        ("exp", (n + 600).to_string()),
        ("aud", format!(r#""{AUD}""#)),
        ("sub", r#""user-1""#.to_owned()),
        ("client_id", r#""client-1""#.to_owned()),
        ("iat", n.to_string()),
        ("jti", r#""j-1""#.to_owned()),
    ];
    let header = r#"{"alg":"HS256","typ":"at+jwt"}"#;
    let render = |skip: Option<&str>| {
        let members: Vec<String> = full
            .iter()
            .filter(|(k, _)| Some(*k) != skip)
            .map(|(k, v)| format!(r#""{k}":{v}"#))
            .collect();
        format!("{{{}}}", members.join(","))
    };
    let (res, calls) = send!(
        layer_with(verifier.clone()),
        bearer(&hs(header, &render(None)))
    );
    assert_passed(&res, calls);
    for (name, _) in &full {
        let token = hs(header, &render(Some(name)));
        let (res, calls) = send!(layer_with(verifier.clone()), bearer(&token));
        // `iss` and `aud` are also checked against the configuration, but
        // the required-claim check comes first.
        assert_invalid_token(&res, calls, AuthErrorKind::MissingClaim);
    }
    // The right claims with the plain JWT type are refused.
    let token = hs(HS_HEADER, &render(None));
    let (res, calls) = send!(layer_with(verifier), bearer(&token));
    assert_invalid_token(&res, calls, AuthErrorKind::InvalidType);
}

#[tokio::test]
async fn rfc9068_claims_are_type_checked() {
    let verifier = verifier_builder(VerificationKey::hmac(SECRET).unwrap())
        .rfc9068()
        .build()
        .unwrap();
    let n = now();
    let header = r#"{"alg":"HS256","typ":"at+jwt"}"#;
    let render = |extra: &str| {
        format!(
            r#"{{"iss":"{ISS}","exp":{},"aud":"{AUD}","sub":"user-1","iat":{n},"jti":"j-1"{extra}}}"#,
            n + 600
        )
    };
    let good = [
        r#","client_id":"client-1""#,
        r#","client_id":"client-1","scope":"read write""#,
        r#","client_id":"client-1","scope":"""#,
        r#","client_id":"c","auth_time":1700000000,"acr":"urn:mace:incommon:iap:silver""#,
        r#","client_id":"c","amr":["pwd","otp"],"auth_time":1.5"#,
        r#","client_id":"c","amr":[]"#,
        // Claims outside the profile keep any type.
        r#","client_id":"c","roles":{"a":1},"groups":7"#,
    ];
    for extra in good {
        let (res, calls) = send!(
            layer_with(verifier.clone()),
            bearer(&hs(header, &render(extra)))
        );
        assert_passed(&res, calls);
    }
    // A required claim that is null counts as missing.
    let (res, calls) = send!(
        layer_with(verifier.clone()),
        bearer(&hs(header, &render(r#","client_id":null"#)))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::MissingClaim);
    let bad = [
        ("client_id", r#","client_id":1"#),
        ("client_id", r#","client_id":["c"]"#),
        ("client_id", r#","client_id":{"id":"c"}"#),
        ("client_id", r#","client_id":true"#),
        ("scope", r#","client_id":"c","scope":["read"]"#),
        ("scope", r#","client_id":"c","scope":null"#),
        ("scope", r#","client_id":"c","scope":1"#),
        ("auth_time", r#","client_id":"c","auth_time":"1700000000""#),
        ("auth_time", r#","client_id":"c","auth_time":null"#),
        ("acr", r#","client_id":"c","acr":1"#),
        ("amr", r#","client_id":"c","amr":"pwd""#),
        ("amr", r#","client_id":"c","amr":["pwd",1]"#),
        ("amr", r#","client_id":"c","amr":[null]"#),
    ];
    for (claim, extra) in bad {
        let (res, calls) = send!(
            layer_with(verifier.clone()),
            bearer(&hs(header, &render(extra)))
        );
        assert_eq!(calls, 0, "{extra}");
        assert_eq!(res.status(), 401, "{extra}");
        let error = res.extensions().get::<AuthError>().unwrap();
        assert_eq!(error.kind(), AuthErrorKind::InvalidClaims, "{extra}");
        assert_eq!(error.description(), format!(r#"invalid claim "{claim}""#));
    }
    // Without the profile these claims are the application's business.
    let plain = verifier_builder(VerificationKey::hmac(SECRET).unwrap())
        .build()
        .unwrap();
    let (res, calls) = send!(
        layer_with(plain),
        bearer(&hs(
            HS_HEADER,
            &render(r#","client_id":1,"scope":["read"]"#)
        ))
    );
    assert_passed(&res, calls);
}
