//! Property tests of issuing and verifying: random claims round-trip;
//! random bytes and random mutations of valid tokens never panic and never
//! verify.

use std::{sync::LazyLock, time::Duration};

use proptest::{collection, option, prelude::*};
use serde_json::Value;
use tower_jwt_auth::{Algorithm, SigningKey, TokenIssuer, VerificationKey, Verifier};

const SECRET: &[u8] = b"property-test secret of 32+ bytes!!";
const ISS: &str = "https://issuer.prop";
const AUD: &str = "api";

/// One signing key and the verifier for it, per algorithm family.
struct Pair {
    issuer: TokenIssuer,
    verifier: Verifier,
}

static PAIRS: LazyLock<Vec<Pair>> = LazyLock::new(|| {
    let keys = [
        (
            SigningKey::hmac(Algorithm::HS256, SECRET).unwrap(),
            VerificationKey::hmac(SECRET).unwrap(),
        ),
        (
            SigningKey::ec_pem(Algorithm::ES256, include_bytes!("keys/ec_private.pem")).unwrap(),
            VerificationKey::ec_pem(include_bytes!("keys/ec_public.pem")).unwrap(),
        ),
        (
            SigningKey::ed_pem(include_bytes!("keys/ed_private.pem")).unwrap(),
            VerificationKey::ed_pem(include_bytes!("keys/ed_public.pem")).unwrap(),
        ),
    ];
    keys.into_iter()
        .map(|(signing, verification)| Pair {
            issuer: TokenIssuer::new(signing).issuer(ISS).audience(AUD),
            verifier: Verifier::builder()
                .key(verification)
                .issuer(ISS)
                .audience(AUD)
                .build()
                .unwrap(),
        })
        .collect()
});

/// One valid token per key, to mutate.
static TOKENS: LazyLock<Vec<String>> = LazyLock::new(|| {
    PAIRS
        .iter()
        .map(|pair| {
            pair.issuer
                .access_token("user-1")
                .role("ADMIN")
                .session_id("s-1")
                .sign()
                .unwrap()
                .into_string()
        })
        .collect()
});

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// JSON values an application may put in a claim (no floats: they do not
/// round-trip bit for bit through every printer).
fn claim_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn issued_claims_round_trip(
        pair in 0..3usize,
        subject in "\\PC{0,40}",
        roles in option::of(collection::vec("\\PC{1,12}", 0..4)),
        sid in option::of("[A-Za-z0-9_-]{1,24}"),
        ttl in 1u64..100_000_000,
        extra in collection::btree_map("x_[a-z_]{1,10}", claim_value(), 0..5),
    ) {
        let pair = &PAIRS[pair];
        let mut builder = pair.issuer.access_token(subject.clone()).expires_in(Duration::from_secs(ttl));
        if let Some(roles) = &roles {
            builder = builder.roles(roles.clone());
        }
        if let Some(sid) = &sid {
            builder = builder.session_id(sid.clone());
        }
        for (name, value) in &extra {
            builder = builder.claim(name.clone(), value.clone());
        }
        let token = builder.sign().unwrap();
        let claims = pair.verifier.verify::<Value>(token.as_str()).unwrap();
        let registered = claims.registered();
        prop_assert_eq!(claims.subject(), Some(subject.as_str()));
        prop_assert_eq!(registered.iss.as_deref(), Some(ISS));
        prop_assert_eq!(&registered.aud, &vec![AUD.to_owned()]);
        prop_assert_eq!(registered.sid.as_deref(), sid.as_deref());
        prop_assert_eq!(registered.jti.as_deref(), Some(token.jti()));
        let (iat, exp) = (registered.iat.unwrap(), registered.exp.unwrap());
        prop_assert_eq!(exp - iat, i64::try_from(ttl).unwrap());
        prop_assert_eq!(exp, token.expires_at());
        let role = roles.map(Value::from);
        prop_assert_eq!(claims.get("role"), role.as_ref());
        for (name, value) in &extra {
            prop_assert_eq!(claims.get(name), Some(value), "claim {}", name);
        }
        // Typed claims see the same values.
        #[derive(serde::Deserialize)]
        struct Typed {
            sub: String,
            exp: i64,
        }
        let typed = pair.verifier.verify::<Typed>(token.as_str()).unwrap();
        prop_assert_eq!(&typed.sub, &subject);
        prop_assert_eq!(typed.exp, exp);
    }

    #[test]
    fn random_bytes_never_verify(bytes in collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        for pair in PAIRS.iter() {
            prop_assert!(pair.verifier.verify::<Value>(&text).is_err());
        }
    }

    #[test]
    fn random_compact_shapes_never_verify(
        token in "[A-Za-z0-9_-]{0,64}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,90}",
    ) {
        for pair in PAIRS.iter() {
            prop_assert!(pair.verifier.verify::<Value>(&token).is_err());
        }
    }

    #[test]
    fn mutated_tokens_never_verify(
        which in 0..3usize,
        mutation in 0..7u8,
        at in any::<prop::sample::Index>(),
        other in any::<prop::sample::Index>(),
        byte in prop::sample::select(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ".to_vec()
        ),
    ) {
        let original = &TOKENS[which];
        let mut bytes = original.as_bytes().to_vec();
        let i = at.index(bytes.len());
        match mutation {
            // Replace one character.
            0 => bytes[i] = byte,
            // Insert one.
            1 => bytes.insert(i, byte),
            // Delete one.
            2 => {
                bytes.remove(i);
            }
            // Truncate.
            3 => bytes.truncate(i),
            // Flip the case of one letter.
            4 => bytes[i] = if bytes[i].is_ascii_lowercase() {
                bytes[i].to_ascii_uppercase()
            } else {
                bytes[i].to_ascii_lowercase()
            },
            // Swap two characters.
            5 => {
                let j = other.index(bytes.len());
                bytes.swap(i, j);
            }
            // Swap two segments.
            _ => {
                let parts: Vec<&[u8]> = original.as_bytes().split(|&b| b == b'.').collect();
                let (a, b) = (i % 3, other.index(3));
                let mut swapped = parts.clone();
                swapped.swap(a, b);
                bytes = swapped.join(&b'.');
            }
        }
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assume!(&mutated != original);
        for pair in PAIRS.iter() {
            let result = pair.verifier.verify::<Value>(&mutated);
            prop_assert!(result.is_err(), "{} verified", mutated);
        }
    }
}

#[test]
fn every_pair_verifies_its_own_token_only() {
    // Control for the mutation test: each token verifies with its key, and
    // with no other.
    for (i, token) in TOKENS.iter().enumerate() {
        for (j, pair) in PAIRS.iter().enumerate() {
            assert_eq!(pair.verifier.verify::<Value>(token).is_ok(), i == j);
        }
    }
}
