//! One DPoP proof, checked (RFC 9449 section 4.3).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::IgnoredAny};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::replay::ReplayKey;
use crate::{
    claims::to_seconds,
    error::{AuthError, AuthErrorKind},
    keys::{Algorithm, KeySet, VerificationKey},
};

/// The longest `DPoP` header accepted: an RSA-4096 key and its signature fit.
pub(crate) const MAX_PROOF_LEN: usize = 8 * 1024;
/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;
/// Members of a JWK that only a private key has (RFC 7518 section 6).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

pub(crate) fn invalid(description: &'static str) -> AuthError {
    AuthError::new(AuthErrorKind::InvalidDpopProof).with_description(description)
}

/// What the request says the proof must match.
pub(crate) struct Expected<'a> {
    pub(crate) method: &'a str,
    /// The request's normalized URL.
    pub(crate) url: &'a str,
    /// The access token the proof comes with, for `ath`; `None` at a token
    /// endpoint.
    pub(crate) token: Option<&'a str>,
}

/// The rules a proof is checked by.
pub(crate) struct Rules<'a> {
    pub(crate) algorithms: &'a [Algorithm],
    pub(crate) now: i64,
    pub(crate) max_age: i64,
    pub(crate) leeway: i64,
}

/// A proof whose signature, key and claims hold: what is left is the
/// binding to the token, the nonce and the replay check.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The RFC 7638 thumbprint of the proof's key.
    pub(crate) jkt: String,
    pub(crate) replay_key: ReplayKey,
    /// Until when the proof could be accepted: how long to remember it.
    pub(crate) expires_at: i64,
    pub(crate) nonce: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: Option<String>,
    jwk: Option<Map<String, Value>>,
    crit: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Payload {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<f64>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// The `ath` of `token`: base64url(SHA-256(token)) (RFC 9449 section 4.2).
pub(crate) fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// Checks `proof` (the `DPoP` header's value) against the request.
pub(crate) fn check(
    proof: &str,
    expected: &Expected<'_>,
    rules: &Rules<'_>,
) -> Result<Checked, AuthError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(invalid("the DPoP proof is too long"));
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("the DPoP proof is not a compact JWS"));
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| invalid("the DPoP proof is not a compact JWS").with_source(e))
    };
    let header: Header = serde_json::from_slice(&decode(header_b64)?)
        .map_err(|_| invalid("the DPoP proof header is malformed"))?;
    if header.crit.is_some() {
        return Err(invalid(
            "the DPoP proof uses an unsupported critical header",
        ));
    }
    let typ_ok = header.typ.as_deref().is_some_and(|typ| {
        let typ = typ
            .get(..12)
            .filter(|head| head.eq_ignore_ascii_case("application/"))
            .map_or(typ, |_| &typ[12..]);
        typ.eq_ignore_ascii_case("dpop+jwt")
    });
    if !typ_ok {
        return Err(invalid("the DPoP proof's typ is not dpop+jwt"));
    }
    let alg: Algorithm = header
        .alg
        .as_deref()
        .and_then(|alg| alg.parse().ok())
        .filter(|alg| rules.algorithms.contains(alg))
        .ok_or_else(|| invalid("the DPoP proof's algorithm is not accepted"))?;
    let jwk = header
        .jwk
        .ok_or_else(|| invalid("the DPoP proof has no jwk"))?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(invalid("the DPoP proof's jwk is a private key"));
    }
    if jwk
        .get("alg")
        .is_some_and(|jwk_alg| jwk_alg.as_str() != Some(alg.as_str()))
    {
        return Err(invalid("the DPoP proof's jwk is for another algorithm"));
    }
    let jkt = thumbprint(&jwk)?;
    verify_signature(
        &jwk,
        alg,
        &proof[..header_b64.len() + 1 + payload_b64.len()],
        signature,
    )?;

    let payload: Payload = serde_json::from_slice(&decode(payload_b64)?)
        .map_err(|_| invalid("the DPoP proof's claims are malformed"))?;
    let jti = payload
        .jti
        .filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_LEN)
        .ok_or_else(|| invalid("the DPoP proof has no valid jti"))?;
    if payload.htm.as_deref() != Some(expected.method) {
        return Err(invalid("the DPoP proof is for another method"));
    }
    let htu = payload
        .htu
        .as_deref()
        .and_then(super::url::normalize)
        .ok_or_else(|| invalid("the DPoP proof has no valid htu"))?;
    if htu != expected.url {
        return Err(invalid("the DPoP proof is for another URL"));
    }
    let iat = payload
        .iat
        .and_then(to_seconds)
        .ok_or_else(|| invalid("the DPoP proof has no valid iat"))?;
    if iat > rules.now.saturating_add(rules.leeway) || iat < rules.now.saturating_sub(rules.max_age)
    {
        return Err(invalid("the DPoP proof is too old or from the future"));
    }
    match (expected.token, payload.ath.as_deref()) {
        (None, _) => {}
        (Some(_), None) => return Err(invalid("the DPoP proof has no ath")),
        (Some(token), Some(ath)) => {
            if ath != token_hash(token) {
                return Err(invalid("the DPoP proof is for another access token"));
            }
        }
    }
    let replay_key = {
        let mut hash = Sha256::new();
        hash.update(jkt.as_bytes());
        hash.update(b":");
        hash.update(jti.as_bytes());
        ReplayKey::from_bytes(hash.finalize().into())
    };
    Ok(Checked {
        jkt,
        replay_key,
        expires_at: rules
            .now
            .saturating_add(rules.max_age)
            .saturating_add(rules.leeway),
        nonce: payload.nonce,
    })
}

/// Verifies the signature with the key of the `jwk`, through the crate's
/// own key types: the same checks as any configured key (type and curve,
/// RSA size, the algorithm fitting the key).
fn verify_signature(
    jwk: &Map<String, Value>,
    alg: Algorithm,
    message: &str,
    signature: &str,
) -> Result<(), AuthError> {
    let json = serde_json::to_vec(jwk).map_err(|_| invalid("the DPoP proof's jwk is malformed"))?;
    let mut key = VerificationKey::from_jwk(json)
        .map_err(|e| invalid("the DPoP proof's jwk is not a usable public key").with_source(e))?
        .with_algorithms([alg]);
    // Matched by nothing but being the only key.
    key.kid = None;
    let keys = KeySet::new(vec![key])
        .map_err(|e| invalid("the DPoP proof's jwk does not fit its algorithm").with_source(e))?;
    keys.verify(None, alg, message, signature)
        .map(|_generation| ())
        .map_err(|e| invalid("the DPoP proof's signature is invalid").with_source(e))
}

#[derive(Serialize)]
struct EcThumb<'a> {
    crv: &'a str,
    kty: &'a str,
    x: &'a str,
    y: &'a str,
}

#[derive(Serialize)]
struct RsaThumb<'a> {
    e: &'a str,
    kty: &'a str,
    n: &'a str,
}

#[derive(Serialize)]
struct OkpThumb<'a> {
    crv: &'a str,
    kty: &'a str,
    x: &'a str,
}

/// The RFC 7638 JWK SHA-256 thumbprint: the required members only, in
/// lexicographic order, no whitespace, hashed, base64url.
pub(crate) fn thumbprint(jwk: &Map<String, Value>) -> Result<String, AuthError> {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("the DPoP proof's jwk lacks a required member"))
    };
    let kty = member("kty")?;
    let canonical = match kty {
        "EC" => serde_json::to_string(&EcThumb {
            crv: member("crv")?,
            kty,
            x: member("x")?,
            y: member("y")?,
        }),
        "RSA" => serde_json::to_string(&RsaThumb {
            e: member("e")?,
            kty,
            n: member("n")?,
        }),
        "OKP" => serde_json::to_string(&OkpThumb {
            crv: member("crv")?,
            kty,
            x: member("x")?,
        }),
        _ => return Err(invalid("the DPoP proof's jwk is not an asymmetric key")),
    }
    .map_err(|_| invalid("the DPoP proof's jwk is malformed"))?;
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 section 3.1.
        let jwk: Map<String, Value> = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn symmetric_keys_have_no_thumbprint_here() {
        let jwk: Map<String, Value> = serde_json::from_str(r#"{"kty":"oct","k":"AAAA"}"#).unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap_err().kind(),
            AuthErrorKind::InvalidDpopProof
        );
    }
}
