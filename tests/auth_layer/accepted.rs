//! Valid tokens pass, with their claims, for every key type.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::Value;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer, VerificationKey, Verifier};

use crate::support::*;

#[tokio::test]
async fn valid_token_passes_with_claims() {
    let token = issuer()
        .access_token("user-42")
        .role("ADMIN")
        .claim("name", "Ada")
        .expires_in(Duration::from_secs(300))
        .sign()
        .unwrap();
    let (res, calls) = send!(layer(), bearer(token.as_str()));
    assert_passed(&res, calls);
    let claims = claims_of(&res);
    assert_eq!(claims.subject(), Some("user-42"));
    assert_eq!(claims.role, Some(Value::from("ADMIN")));
    assert_eq!(claims.name.as_deref(), Some("Ada"));
    let registered = claims.registered();
    assert_eq!(registered.iss.as_deref(), Some(ISS));
    assert_eq!(registered.aud, vec![AUD.to_owned()]);
    assert_eq!(registered.exp, Some(token.expires_at()));
    assert_eq!(registered.jti.as_deref(), Some(token.jti()));
    let iat = registered.iat.expect("iat");
    assert_eq!(registered.exp.unwrap() - iat, 300);
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive_and_extra_spaces_are_tolerated() {
    let token = valid_token();
    for value in [
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("Bearer    {token}"),
    ] {
        let (res, calls) = send!(layer(), with_auth(&value));
        assert_passed(&res, calls);
    }
}

#[tokio::test]
async fn one_service_counts_each_accepted_call_and_none_of_the_rejected() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut svc = ServiceBuilder::new()
        .layer(layer())
        .service(inner(Arc::clone(&calls)));
    let token = valid_token();
    for i in 0..6 {
        let req = if i % 2 == 0 {
            bearer(&token)
        } else {
            bearer("a.b.c")
        };
        let res = svc.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(res.status().as_u16(), if i % 2 == 0 { 200 } else { 401 });
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn rsa_ec_ed_and_pss_keys_verify_their_own_tokens() {
    let cases: Vec<(SigningKey, VerificationKey)> = vec![
        (
            SigningKey::rsa_pem(Algorithm::RS256, RSA_PRIVATE).unwrap(),
            VerificationKey::rsa_pem(RSA_PUBLIC).unwrap(),
        ),
        (
            SigningKey::rsa_pem(Algorithm::PS256, RSA_PRIVATE).unwrap(),
            VerificationKey::rsa_pem(RSA_PUBLIC)
                .unwrap()
                .with_algorithms([Algorithm::PS256]),
        ),
        (
            SigningKey::ec_pem(Algorithm::ES256, EC_PRIVATE).unwrap(),
            VerificationKey::ec_pem(EC_PUBLIC).unwrap(),
        ),
        (
            SigningKey::ed_pem(ED_PRIVATE).unwrap(),
            VerificationKey::ed_pem(ED_PUBLIC).unwrap(),
        ),
    ];
    for (signing, verifying) in cases {
        let alg = signing.algorithm();
        let token = TokenIssuer::new(signing)
            .access_token("user-1")
            .sign()
            .unwrap();
        let verifier = Verifier::builder().key(verifying).build().unwrap();
        let (res, calls) = send!(layer_with(verifier), bearer(token.as_str()));
        assert_passed(&res, calls);
        assert_eq!(claims_of(&res).subject(), Some("user-1"), "{alg}");
    }
}
