//! JSON Web Keys (RFC 7517) and JWK Sets: parsing into verification keys.

use std::{collections::BTreeMap, fmt};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[cfg(feature = "key-ring")]
use jsonwebtoken as jwt;

use crate::{
    error::ConfigError,
    json::{ScanError, check_unique},
    keys::{Algorithm, VerificationKey},
};

/// The members of a JWK this crate reads. Unknown members are ignored; a
/// member name given twice anywhere in the JSON is an error (RFC 7517
/// section 4 allows refusing, and we never guess), checked by
/// [`check_unique`] before this is read.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
    d: Option<String>,
    p: Option<String>,
}

#[derive(Deserialize)]
struct RawJwkSet {
    keys: Vec<serde_json::Value>,
}

/// Whether symmetric (`oct`) keys may be taken from the JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Symmetric {
    Allow,
    Skip,
}

/// A set of verification keys parsed from a JWK Set (RFC 7517 section 5).
///
/// ```
/// use tower_jwt_auth::{JwkSet, Verifier};
///
/// let jwks = r#"{"keys": [{
///     "kty": "OKP", "crv": "Ed25519", "kid": "2026-11", "use": "sig",
///     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
/// }]}"#;
/// let set = JwkSet::from_json(jwks)?;
/// assert_eq!(set.keys()[0].kid(), Some("2026-11"));
/// let verifier = Verifier::builder().keys(set).issuer("https://idp.example.com").build()?;
/// # let _ = verifier;
/// # Ok::<_, tower_jwt_auth::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct JwkSet {
    keys: Vec<VerificationKey>,
}

impl fmt::Debug for JwkSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwkSet").field("keys", &self.keys).finish()
    }
}

impl JwkSet {
    /// Parses a JWK Set. Keys that cannot be used for verification are
    /// skipped with a warning (see the [module docs](crate::keys)); a set
    /// without any usable key, JSON that is not a JWK Set, a member name
    /// repeated in any object of it (RFC 7517 section 4), or two keys with
    /// the same `kid` are errors.
    pub fn from_json(json: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        Self::from_json_with_defaults(json, [])
    }

    /// Parses a JWK Set like [`from_json`](Self::from_json), with the
    /// algorithms that keys without `alg` accept: each such key accepts those
    /// of `algorithms` that fit its type and curve (for example `PS256` for
    /// RSA keys), or else its type's usual one.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, JwkSet};
    ///
    /// let jwks = r#"{"keys": [{"kty": "OKP", "crv": "Ed25519",
    ///     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    /// let set = JwkSet::from_json_with_defaults(jwks, [Algorithm::PS256, Algorithm::EdDSA])?;
    /// assert_eq!(set.keys()[0].algorithms(), [Algorithm::EdDSA]);
    /// # Ok::<_, tower_jwt_auth::ConfigError>(())
    /// ```
    pub fn from_json_with_defaults(
        json: impl AsRef<[u8]>,
        algorithms: impl IntoIterator<Item = Algorithm>,
    ) -> Result<Self, ConfigError> {
        let without_alg: Vec<Algorithm> = algorithms.into_iter().collect();
        parse_set(json.as_ref(), Symmetric::Allow, &without_alg).map(|keys| Self { keys })
    }

    /// The keys, in the order of the set.
    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// The keys, by value.
    pub fn into_keys(self) -> Vec<VerificationKey> {
        self.keys
    }
}

impl IntoIterator for JwkSet {
    type Item = VerificationKey;
    type IntoIter = std::vec::IntoIter<VerificationKey>;

    fn into_iter(self) -> Self::IntoIter {
        self.keys.into_iter()
    }
}

impl VerificationKey {
    /// A key from one JWK (RFC 7517), bound to its `alg` or to its type's
    /// default algorithm, with its `kid`. See the [module docs](crate::keys)
    /// for the supported key types and the rules.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, VerificationKey};
    ///
    /// let key = VerificationKey::from_jwk(
    ///     r#"{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
    ///         "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
    /// )?;
    /// assert_eq!(key.algorithms(), [Algorithm::EdDSA]);
    /// # Ok::<_, tower_jwt_auth::ConfigError>(())
    /// ```
    pub fn from_jwk(json: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let json = json.as_ref();
        unique_members(json, "a JWK must be a JSON object")?;
        let raw: RawJwk = serde_json::from_slice(json)
            .map_err(|e| ConfigError::with_source("a JWK must be a JSON object", e))?;
        from_raw(raw, Symmetric::Allow, &[])
    }
}

/// The JWK Thumbprint of a key (RFC 7638): SHA-256 over the key's required
/// public members, in the canonical form of the RFC (members in
/// lexicographic order, no whitespace), base64url without padding.
///
/// The required members are `e`, `kty`, `n` for RSA; `crv`, `kty`, `x`, `y`
/// for EC; `crv`, `kty`, `x` for OKP (RFC 8037); `k`, `kty` for `oct`. Every
/// other member (`kid`, `alg`, `use`, private members) leaves the thumbprint
/// unchanged. The issuer's key ring (feature `key-ring`) names its keys so.
///
/// ```
/// // The example of RFC 7638 section 3.1.
/// let jwk = r#"{
///     "kty": "RSA",
///     "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
///     "e": "AQAB",
///     "alg": "RS256",
///     "kid": "2011-04-29"
/// }"#;
/// assert_eq!(
///     tower_jwt_auth::keys::thumbprint(jwk)?,
///     "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
/// );
/// # Ok::<_, tower_jwt_auth::ConfigError>(())
/// ```
pub fn thumbprint(jwk: impl AsRef<[u8]>) -> Result<String, ConfigError> {
    unique_members(jwk.as_ref(), "a JWK must be a JSON object")?;
    let raw: RawJwk = serde_json::from_slice(jwk.as_ref())
        .map_err(|e| ConfigError::with_source("a JWK must be a JSON object", e))?;
    let kty = raw.kty.as_str();
    let required: &[(&str, &Option<String>)] = match kty {
        "RSA" => &[("e", &raw.e), ("n", &raw.n)],
        "EC" => &[("crv", &raw.crv), ("x", &raw.x), ("y", &raw.y)],
        "OKP" => &[("crv", &raw.crv), ("x", &raw.x)],
        "oct" => &[("k", &raw.k)],
        other => {
            return Err(ConfigError::new(format!(
                "the JWK key type {other:?} is not supported"
            )));
        }
    };
    let mut members = BTreeMap::new();
    members.insert("kty", kty);
    for (name, value) in required {
        members.insert(*name, member(value, name, kty)?);
    }
    Ok(canonical_thumbprint(&members))
}

/// RFC 7638 section 3: the members are already the required ones; a
/// `BTreeMap` serializes them in lexicographic order, without whitespace.
fn canonical_thumbprint(members: &BTreeMap<&str, &str>) -> String {
    let canonical = serde_json::to_vec(members).expect("strings always serialize");
    URL_SAFE_NO_PAD.encode(Sha256::digest(&canonical))
}

#[cfg(feature = "key-ring")]
/// The public part of a signing key as a JWK: only public members exist
/// here, so no private one can ever be published.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct PublicJwk {
    kty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
}

#[cfg(feature = "key-ring")]
impl PublicJwk {
    /// The public JWK of `key`, through `jsonwebtoken`'s backend (it derives
    /// the public key from the private one). Symmetric keys have none.
    pub(crate) fn of(key: &jwt::EncodingKey, algorithm: Algorithm) -> Result<Self, ConfigError> {
        use jwt::jwk::{AlgorithmParameters, EllipticCurve};

        crate::keys::install_crypto_provider();
        let jwk = jwt::jwk::Jwk::from_encoding_key(key, algorithm.to_jwt())
            .map_err(|e| ConfigError::with_source("cannot derive the public key", e))?;
        let mut public = Self {
            kty: "",
            crv: None,
            n: None,
            e: None,
            x: None,
            y: None,
            kid: None,
            alg: algorithm.as_str(),
            use_: "sig",
        };
        match jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                public.kty = "RSA";
                public.n = Some(rsa.n);
                public.e = Some(rsa.e);
            }
            AlgorithmParameters::EllipticCurve(ec) => {
                public.kty = "EC";
                public.crv = Some(match ec.curve {
                    EllipticCurve::P256 => "P-256",
                    EllipticCurve::P384 => "P-384",
                    _ => return Err(ConfigError::new("the EC curve is not supported")),
                });
                public.x = Some(ec.x);
                public.y = Some(ec.y);
            }
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                public.kty = "OKP";
                public.crv = Some("Ed25519");
                public.x = Some(okp.x);
            }
            _ => {
                return Err(ConfigError::new(
                    "only an asymmetric key has a public JWK to publish",
                ));
            }
        }
        Ok(public)
    }

    /// The RFC 7638 thumbprint of the key, from its required members.
    pub(crate) fn thumbprint(&self) -> String {
        let mut members = BTreeMap::new();
        members.insert("kty", self.kty);
        for (name, value) in [
            ("crv", self.crv),
            ("n", self.n.as_deref()),
            ("e", self.e.as_deref()),
            ("x", self.x.as_deref()),
            ("y", self.y.as_deref()),
        ] {
            if let Some(value) = value {
                members.insert(name, value);
            }
        }
        canonical_thumbprint(&members)
    }

    /// The same key, named `kid`.
    pub(crate) fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The verification key of this JWK, through the one JWK parser.
    pub(crate) fn verification_key(&self) -> Result<VerificationKey, ConfigError> {
        let json = serde_json::to_vec(self).expect("a JWK always serializes");
        VerificationKey::from_jwk(json)
    }
}

/// Refuses JSON in which an object, at any depth, repeats a member name.
fn unique_members(json: &[u8], not_json: &'static str) -> Result<(), ConfigError> {
    check_unique(json).map_err(|e| match e {
        ScanError::Duplicate => ConfigError::new("the JSON repeats a member name in an object"),
        ScanError::Json(e) => ConfigError::with_source(not_json, e),
    })
}

/// Parses a JWK Set, skipping unusable keys with a warning. A member name
/// repeated anywhere (in the set or in any key) refuses the whole set.
pub(crate) fn parse_set(
    json: &[u8],
    symmetric: Symmetric,
    without_alg: &[Algorithm],
) -> Result<Vec<VerificationKey>, ConfigError> {
    unique_members(json, "a JWK Set must be a JSON object with a `keys` array")?;
    let set: RawJwkSet = serde_json::from_slice(json).map_err(|e| {
        ConfigError::with_source("a JWK Set must be a JSON object with a `keys` array", e)
    })?;
    let mut keys: Vec<VerificationKey> = Vec::with_capacity(set.keys.len());
    for (index, value) in set.keys.into_iter().enumerate() {
        let key = serde_json::from_value::<RawJwk>(value)
            .map_err(|e| ConfigError::with_source("a JWK must be a JSON object", e))
            .and_then(|raw| from_raw(raw, symmetric, without_alg));
        match key {
            Ok(key) => {
                if let Some(kid) = key.kid()
                    && keys.iter().any(|k| k.kid() == Some(kid))
                {
                    return Err(ConfigError::new(format!(
                        "two keys of the JWK Set share the kid {kid:?}"
                    )));
                }
                keys.push(key);
            }
            Err(error) => {
                tracing::warn!(index, %error, "skipping a JWK that cannot verify tokens");
            }
        }
    }
    if keys.is_empty() {
        return Err(ConfigError::new(
            "the JWK Set has no key usable for verification",
        ));
    }
    Ok(keys)
}

fn decode(value: &str, what: &'static str) -> Result<Vec<u8>, ConfigError> {
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|e| ConfigError::with_source(what, e))
}

fn member<'a>(value: &'a Option<String>, name: &str, kty: &str) -> Result<&'a str, ConfigError> {
    value
        .as_deref()
        .ok_or_else(|| ConfigError::new(format!("a {kty} JWK needs the member `{name}`")))
}

fn from_raw(
    raw: RawJwk,
    symmetric: Symmetric,
    without_alg: &[Algorithm],
) -> Result<VerificationKey, ConfigError> {
    if let Some(use_) = &raw.use_
        && use_ != "sig"
    {
        return Err(ConfigError::new(format!(
            "the JWK is for `use` {use_:?}, not `sig`"
        )));
    }
    if let Some(ops) = &raw.key_ops
        && !ops.iter().any(|op| op == "verify")
    {
        return Err(ConfigError::new(
            "the JWK's `key_ops` do not include `verify`",
        ));
    }
    let alg = match raw.alg.as_deref() {
        None => None,
        // RFC 9864's fully specified name for EdDSA with Ed25519.
        Some("Ed25519") => Some(Algorithm::EdDSA),
        Some(name) => Some(name.parse::<Algorithm>().map_err(|e| {
            ConfigError::with_source(format!("the JWK's `alg` {name:?} is not supported"), e)
        })?),
    };
    let kty = raw.kty.as_str();
    // A key without `alg` accepts the configured defaults that fit its type
    // and curve, or else its type's usual algorithm.
    let fit = |default: Algorithm, allowed: &[Algorithm]| -> Result<Vec<Algorithm>, ConfigError> {
        match alg {
            None => {
                let fitting: Vec<Algorithm> = without_alg
                    .iter()
                    .copied()
                    .filter(|alg| allowed.contains(alg))
                    .collect();
                Ok(if fitting.is_empty() {
                    vec![default]
                } else {
                    fitting
                })
            }
            Some(alg) if allowed.contains(&alg) => Ok(vec![alg]),
            Some(alg) => Err(ConfigError::new(format!(
                "the JWK's `alg` {alg} does not fit its key type {kty:?}{}",
                raw.crv
                    .as_deref()
                    .map(|crv| format!(" and curve {crv:?}"))
                    .unwrap_or_default()
            ))),
        }
    };
    let private = raw.d.is_some() || raw.p.is_some();
    let key = match kty {
        "RSA" => {
            use Algorithm::*;
            let alg = fit(RS256, &[RS256, RS384, RS512, PS256, PS384, PS512])?;
            let n = member(&raw.n, "n", kty)?;
            let e = member(&raw.e, "e", kty)?;
            decode(n, "the RSA modulus `n` is not base64url")?;
            decode(e, "the RSA exponent `e` is not base64url")?;
            VerificationKey::rsa_components(n, e)?.with_algorithms(alg)
        }
        "EC" => {
            let (alg, len) = match raw.crv.as_deref() {
                Some("P-256") => (fit(Algorithm::ES256, &[Algorithm::ES256])?, 32),
                Some("P-384") => (fit(Algorithm::ES384, &[Algorithm::ES384])?, 48),
                Some(crv) => {
                    return Err(ConfigError::new(format!(
                        "the EC curve {crv:?} is not supported"
                    )));
                }
                None => return Err(ConfigError::new("an EC JWK needs the member `crv`")),
            };
            let x = decode(member(&raw.x, "x", kty)?, "the EC `x` is not base64url")?;
            let y = decode(member(&raw.y, "y", kty)?, "the EC `y` is not base64url")?;
            if x.len() != len || y.len() != len {
                return Err(ConfigError::new(
                    "the EC coordinates do not have the curve's size",
                ));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            VerificationKey::ec_point(point).with_algorithms(alg)
        }
        "OKP" => {
            match raw.crv.as_deref() {
                Some("Ed25519") => {}
                Some(crv) => {
                    return Err(ConfigError::new(format!(
                        "the OKP curve {crv:?} is not supported"
                    )));
                }
                None => return Err(ConfigError::new("an OKP JWK needs the member `crv`")),
            }
            let alg = fit(Algorithm::EdDSA, &[Algorithm::EdDSA])?;
            let x = decode(
                member(&raw.x, "x", kty)?,
                "the Ed25519 `x` is not base64url",
            )?;
            if x.len() != 32 {
                return Err(ConfigError::new("an Ed25519 public key is 32 bytes"));
            }
            VerificationKey::ed_raw(x).with_algorithms(alg)
        }
        "oct" => {
            if symmetric == Symmetric::Skip {
                return Err(ConfigError::new(
                    "symmetric (`oct`) keys are not taken from a remote JWK Set",
                ));
            }
            use Algorithm::*;
            let alg = fit(HS256, &[HS256, HS384, HS512])?;
            let secret = decode(member(&raw.k, "k", kty)?, "the `k` is not base64url")?;
            VerificationKey::hmac(&secret)?.with_algorithms(alg)
        }
        other => {
            return Err(ConfigError::new(format!(
                "the JWK key type {other:?} is not supported"
            )));
        }
    };
    // The key's own checks: the algorithm fits, an RSA modulus has at least
    // 2048 bits, an HMAC secret is at least as long as the hash.
    key.check()?;
    if private && kty != "oct" {
        tracing::warn!(
            kid = raw.kid.as_deref().unwrap_or_default(),
            "a JWK carries private key members; only its public part is used"
        );
    }
    Ok(match raw.kid {
        Some(kid) => key.with_kid(kid),
        None => key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn ed25519_defaults_to_eddsa() {
        let key =
            VerificationKey::from_jwk(format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}"}}"#))
                .unwrap();
        assert_eq!(key.algorithms(), [Algorithm::EdDSA]);
        assert_eq!(key.kid(), None);
    }

    #[test]
    fn alg_must_fit_the_key_type() {
        for alg in ["RS256", "HS256", "ES256", "none"] {
            let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","alg":"{alg}","x":"{ED_X}"}}"#);
            assert!(VerificationKey::from_jwk(jwk).is_err(), "{alg}");
        }
        let p256 = format!(
            r#"{{"kty":"EC","crv":"P-256","alg":"ES384","x":"{x}","y":"{x}"}}"#,
            x = URL_SAFE_NO_PAD.encode([1u8; 32])
        );
        assert!(VerificationKey::from_jwk(p256).is_err());
    }

    #[test]
    fn oct_keys_are_bound_and_checked() {
        let k = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let key = VerificationKey::from_jwk(format!(r#"{{"kty":"oct","k":"{k}"}}"#)).unwrap();
        assert_eq!(key.algorithms(), [Algorithm::HS256]);
        // 32 bytes are too short for HS512.
        let jwk = format!(r#"{{"kty":"oct","alg":"HS512","k":"{k}"}}"#);
        assert!(VerificationKey::from_jwk(jwk).is_err());
        let set = format!(r#"{{"keys":[{{"kty":"oct","k":"{k}"}}]}}"#);
        assert!(parse_set(set.as_bytes(), Symmetric::Skip, &[]).is_err());
    }

    #[test]
    fn small_rsa_keys_are_refused() {
        let n = URL_SAFE_NO_PAD.encode([0xffu8; 128]);
        let jwk = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#);
        assert!(VerificationKey::from_jwk(jwk).is_err());
    }

    #[test]
    fn sets_skip_unusable_keys_and_refuse_duplicate_kids() {
        let ed = format!(r#"{{"kty":"OKP","crv":"Ed25519","kid":"a","x":"{ED_X}"}}"#);
        let enc = format!(r#"{{"kty":"OKP","crv":"Ed25519","kid":"b","use":"enc","x":"{ED_X}"}}"#);
        let set = format!(r#"{{"keys":[{ed},{enc},{{"kty":"XYZ"}},42]}}"#);
        let keys = JwkSet::from_json(set).unwrap().into_keys();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid(), Some("a"));
        let dup = format!(r#"{{"keys":[{ed},{ed}]}}"#);
        assert!(JwkSet::from_json(dup).is_err());
        assert!(JwkSet::from_json(r#"{"keys":[]}"#).is_err());
        assert!(JwkSet::from_json("[]").is_err());
    }

    #[test]
    fn duplicate_members_are_refused() {
        let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","x":"{ED_X}"}}"#);
        assert!(VerificationKey::from_jwk(jwk).is_err());
        // Members this crate does not read, and nested objects, too.
        for jwk in [
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","ext":true,"ext":false}}"#),
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","meta":{{"a":1,"a":2}}}}"#),
        ] {
            assert!(VerificationKey::from_jwk(&jwk).is_err(), "{jwk}");
        }
    }

    #[test]
    fn duplicate_members_in_a_set_are_refused() {
        let other_x = URL_SAFE_NO_PAD.encode([9u8; 32]);
        let ed = format!(r#"{{"kty":"OKP","crv":"Ed25519","kid":"a","x":"{ED_X}"}}"#);
        for set in [
            // Last-wins would pick one `x` or the other: refuse, do not guess.
            format!(
                r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"a","x":"{other_x}","x":"{ED_X}"}}]}}"#
            ),
            format!(
                r#"{{"keys":[{ed},{{"kty":"OKP","crv":"Ed25519","kid":"b","kid":"a","x":"{ED_X}"}}]}}"#
            ),
            format!(r#"{{"keys":[{ed}],"keys":[{ed}]}}"#),
            format!(r#"{{"keys":[{ed}],"meta":{{"v":1,"v":2}}}}"#),
        ] {
            assert!(JwkSet::from_json(&set).is_err(), "{set}");
            assert!(
                parse_set(set.as_bytes(), Symmetric::Skip, &[]).is_err(),
                "{set}"
            );
        }
        // Control: the same key set without repeats.
        assert!(JwkSet::from_json(format!(r#"{{"keys":[{ed}],"meta":{{"v":1}}}}"#)).is_ok());
    }
}
