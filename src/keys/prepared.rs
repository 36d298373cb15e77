//! Public keys parsed once, when a key set is built, instead of on every
//! verification (`jsonwebtoken::crypto::verify` rebuilds the backend's key
//! object from bytes each time: an RSA modulus and its Montgomery parameters,
//! an EC point check, an Ed25519 point decompression).
//!
//! The backend is the one `install_crypto_provider` installs: aws-lc-rs when
//! the `aws_lc_rs` feature is on, RustCrypto otherwise. A key that cannot be
//! prepared is left to jsonwebtoken, which then reports the error per token
//! exactly as before.

use jsonwebtoken::{DecodingKey, DecodingKeyKind};

use crate::keys::{Algorithm, KeyType};

/// One parsed public key per allowed algorithm.
pub(crate) struct PreparedKey {
    by_alg: Vec<(Algorithm, backend::Key)>,
}

impl PreparedKey {
    /// `None` if the key (or one of its algorithms) cannot be prepared.
    pub(crate) fn new(
        key: &DecodingKey,
        key_type: KeyType,
        algorithms: &[Algorithm],
    ) -> Option<Self> {
        if key_type == KeyType::Hmac {
            return None;
        }
        let by_alg = algorithms
            .iter()
            .map(|&alg| backend::Key::new(key.kind(), alg).map(|k| (alg, k)))
            .collect::<Option<Vec<_>>>()?;
        Some(Self { by_alg })
    }

    /// Whether `signature` (raw bytes) is valid for `message`; `None` if
    /// `alg` was not prepared.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> Option<bool> {
        self.by_alg
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, key)| key.verify(message, signature))
    }
}

#[cfg(feature = "aws_lc_rs")]
mod backend {
    use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};

    use super::DecodingKeyKind;
    use crate::keys::Algorithm;

    pub(super) struct Key(ParsedPublicKey);

    impl Key {
        pub(super) fn new(kind: &DecodingKeyKind, alg: Algorithm) -> Option<Self> {
            let rsa = match alg {
                Algorithm::RS256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
                Algorithm::RS384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
                Algorithm::RS512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
                Algorithm::PS256 => Some(&sig::RSA_PSS_2048_8192_SHA256),
                Algorithm::PS384 => Some(&sig::RSA_PSS_2048_8192_SHA384),
                Algorithm::PS512 => Some(&sig::RSA_PSS_2048_8192_SHA512),
                _ => None,
            };
            let parsed = match (rsa, kind) {
                (Some(params), DecodingKeyKind::SecretOrDer(der)) => {
                    ParsedPublicKey::new(params, der)
                }
                (Some(params), DecodingKeyKind::RsaModulusExponent { n, e }) => {
                    RsaPublicKeyComponents { n, e }.to_parsed_public_key(params)
                }
                (None, DecodingKeyKind::SecretOrDer(bytes)) => {
                    let algorithm: &'static dyn sig::VerificationAlgorithm = match alg {
                        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
                        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
                        Algorithm::EdDSA => &sig::ED25519,
                        _ => return None,
                    };
                    ParsedPublicKey::new(algorithm, bytes)
                }
                (None, DecodingKeyKind::RsaModulusExponent { .. }) => return None,
            };
            parsed.ok().map(Self)
        }

        pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
            self.0.verify_sig(message, signature).is_ok()
        }
    }
}

#[cfg(not(feature = "aws_lc_rs"))]
mod backend {
    use jsonwebtoken::signature::Verifier as _;
    use rsa::{BoxedUint, Pkcs1v15Sign, Pss, PublicKey as RsaPublicKey, pkcs1::DecodeRsaPublicKey};
    use sha2_v011::{Digest, Sha256, Sha384, Sha512};

    use super::DecodingKeyKind;
    use crate::keys::Algorithm;

    pub(super) enum Key {
        Rsa(Box<RsaPublicKey>, Algorithm),
        P256(p256::ecdsa::VerifyingKey),
        P384(p384::ecdsa::VerifyingKey),
        Ed(ed25519_dalek::VerifyingKey),
    }

    impl Key {
        pub(super) fn new(kind: &DecodingKeyKind, alg: Algorithm) -> Option<Self> {
            Some(match (alg, kind) {
                (
                    Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512,
                    kind,
                ) => {
                    let key = match kind {
                        DecodingKeyKind::SecretOrDer(der) => {
                            RsaPublicKey::from_pkcs1_der(der).ok()?
                        }
                        DecodingKeyKind::RsaModulusExponent { n, e } => RsaPublicKey::new(
                            BoxedUint::from_be_slice_vartime(n),
                            BoxedUint::from_be_slice_vartime(e),
                        )
                        .ok()?,
                    };
                    Self::Rsa(Box::new(key), alg)
                }
                (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
                    Self::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(point).ok()?)
                }
                (Algorithm::ES384, DecodingKeyKind::SecretOrDer(point)) => {
                    Self::P384(p384::ecdsa::VerifyingKey::from_sec1_bytes(point).ok()?)
                }
                (Algorithm::EdDSA, DecodingKeyKind::SecretOrDer(bytes)) => {
                    let bytes: &[u8; 32] = bytes.as_slice().try_into().ok()?;
                    Self::Ed(ed25519_dalek::VerifyingKey::from_bytes(bytes).ok()?)
                }
                _ => return None,
            })
        }

        pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
            match self {
                Self::Rsa(key, alg) => {
                    let ok = match alg {
                        Algorithm::RS256 => key.verify(
                            Pkcs1v15Sign::new::<Sha256>(),
                            &Sha256::digest(message),
                            signature,
                        ),
                        Algorithm::RS384 => key.verify(
                            Pkcs1v15Sign::new::<Sha384>(),
                            &Sha384::digest(message),
                            signature,
                        ),
                        Algorithm::RS512 => key.verify(
                            Pkcs1v15Sign::new::<Sha512>(),
                            &Sha512::digest(message),
                            signature,
                        ),
                        Algorithm::PS256 => {
                            key.verify(Pss::<Sha256>::new(), &Sha256::digest(message), signature)
                        }
                        Algorithm::PS384 => {
                            key.verify(Pss::<Sha384>::new(), &Sha384::digest(message), signature)
                        }
                        Algorithm::PS512 => {
                            key.verify(Pss::<Sha512>::new(), &Sha512::digest(message), signature)
                        }
                        _ => return false,
                    };
                    ok.is_ok()
                }
                Self::P256(key) => p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|s| key.verify(message, &s).is_ok()),
                Self::P384(key) => p384::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|s| key.verify(message, &s).is_ok()),
                Self::Ed(key) => ed25519_dalek::Signature::from_slice(signature)
                    .is_ok_and(|s| key.verify(message, &s).is_ok()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::{self as jwt, EncodingKey};

    use super::*;
    use crate::keys::VerificationKey;

    const RSA_PRIVATE: &[u8] = include_bytes!("../../tests/keys/rsa_private.pem");
    const RSA_PUBLIC: &[u8] = include_bytes!("../../tests/keys/rsa_public.pem");
    const RSA_JWK: &str = include_str!("../../tests/keys/rsa_public.jwk.json");
    const EC_PRIVATE: &[u8] = include_bytes!("../../tests/keys/ec_private.pem");
    const EC_PUBLIC: &[u8] = include_bytes!("../../tests/keys/ec_public.pem");
    const ED_PRIVATE: &[u8] = include_bytes!("../../tests/keys/ed_private.pem");
    const ED_PUBLIC: &[u8] = include_bytes!("../../tests/keys/ed_public.pem");

    fn check(public: VerificationKey, private: EncodingKey, alg: Algorithm) {
        crate::keys::install_crypto_provider();
        let public = public.with_algorithms([alg]);
        let prepared = PreparedKey::new(&public.key, public.key_type, &public.algorithms)
            .expect("the key is prepared");
        let message = b"header.payload";
        let signature = jwt::crypto::sign(message, &private, alg.to_jwt()).unwrap();
        let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        assert_eq!(
            prepared.verify(alg, message, &signature),
            Some(true),
            "{alg}"
        );
        assert_eq!(
            prepared.verify(alg, b"header.payload2", &signature),
            Some(false)
        );
        signature[5] ^= 1;
        assert_eq!(prepared.verify(alg, message, &signature), Some(false));
        assert_eq!(prepared.verify(alg, message, &signature[..10]), Some(false));
        assert_eq!(prepared.verify(Algorithm::HS256, message, &signature), None);
    }

    #[test]
    fn prepared_keys_verify_like_jsonwebtoken() {
        let rsa = || EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap();
        for alg in [
            Algorithm::RS256,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
        ] {
            check(VerificationKey::rsa_pem(RSA_PUBLIC).unwrap(), rsa(), alg);
            check(VerificationKey::from_jwk(RSA_JWK).unwrap(), rsa(), alg);
        }
        check(
            VerificationKey::ec_pem(EC_PUBLIC).unwrap(),
            EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
            Algorithm::ES256,
        );
        check(
            VerificationKey::ed_pem(ED_PUBLIC).unwrap(),
            EncodingKey::from_ed_pem(ED_PRIVATE).unwrap(),
            Algorithm::EdDSA,
        );
    }

    #[test]
    fn hmac_and_broken_keys_are_not_prepared() {
        let hmac = VerificationKey::hmac([7u8; 32]).unwrap();
        assert!(PreparedKey::new(&hmac.key, hmac.key_type, &hmac.algorithms).is_none());
        let broken = VerificationKey::ec_point([4u8; 10]);
        assert!(PreparedKey::new(&broken.key, broken.key_type, &broken.algorithms).is_none());
    }
}
