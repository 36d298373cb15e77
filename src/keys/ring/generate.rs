//! New private keys for the ring, from the crypto backend: aws-lc-rs when the
//! `aws_lc_rs` feature is on, RustCrypto otherwise (as for verification).
//!
//! Every key leaves here as PKCS#8 v1 PEM (`PRIVATE KEY`), the one format
//! both backends, `jsonwebtoken` and `openssl pkey` read, and the format the
//! ring's stores hold.

use crate::{error::ConfigError, keys::Algorithm};

/// The size of the RSA keys the ring makes (RFC 7518 section 3.3's minimum).
pub(super) const RSA_BITS: usize = 2048;

/// A new private key for `algorithm`, as PKCS#8 v1 PEM.
pub(super) fn private_key_pem(algorithm: Algorithm) -> Result<String, ConfigError> {
    let der = backend::pkcs8_der(algorithm)?;
    Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der)))
}

fn failed(algorithm: Algorithm) -> ConfigError {
    ConfigError::new(format!("generating a key for {algorithm} failed"))
}

fn unsupported(algorithm: Algorithm) -> ConfigError {
    ConfigError::new(format!(
        "a key ring cannot hold {algorithm} keys: its public keys are published, so it \
         needs an asymmetric algorithm (ES256, ES384, EdDSA, RS256..., PS256...)"
    ))
}

#[cfg(feature = "aws_lc_rs")]
mod backend {
    use aws_lc_rs::{
        encoding::AsDer,
        rsa::{KeyPair as RsaKeyPair, KeySize},
        signature::{
            ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
            Ed25519KeyPair,
        },
    };

    use super::{RSA_BITS, failed, unsupported};
    use crate::{
        error::ConfigError,
        keys::{Algorithm, KeyType},
    };

    pub(super) fn pkcs8_der(algorithm: Algorithm) -> Result<Vec<u8>, ConfigError> {
        let der = match algorithm {
            Algorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|key| key.to_pkcs8v1())
                .map(|doc| doc.as_ref().to_vec()),
            Algorithm::ES384 => EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING)
                .and_then(|key| key.to_pkcs8v1())
                .map(|doc| doc.as_ref().to_vec()),
            Algorithm::EdDSA => Ed25519KeyPair::generate()
                .and_then(|key| key.to_pkcs8v1())
                .map(|doc| doc.as_ref().to_vec()),
            alg if alg.key_type() == KeyType::Rsa => {
                debug_assert_eq!(RSA_BITS, 2048);
                RsaKeyPair::generate(KeySize::Rsa2048)
                    .and_then(|key| key.as_der())
                    .map(|der| der.as_ref().to_vec())
            }
            other => return Err(unsupported(other)),
        };
        der.map_err(|_| failed(algorithm))
    }
}

#[cfg(not(feature = "aws_lc_rs"))]
mod backend {
    // One `pkcs8` crate (and so one `EncodePrivateKey`) for every key type.
    use ed25519_dalek::pkcs8::{EncodePrivateKey as _, KeypairBytes};
    use getrandom::{SysRng, rand_core::UnwrapErr};
    use p256::elliptic_curve::Generate as _;

    use super::{RSA_BITS, failed, unsupported};
    use crate::{
        error::ConfigError,
        keys::{Algorithm, KeyType},
    };

    pub(super) fn pkcs8_der(algorithm: Algorithm) -> Result<Vec<u8>, ConfigError> {
        let der = match algorithm {
            Algorithm::ES256 => p256::SecretKey::try_generate_from_rng(&mut SysRng)
                .map_err(|_| failed(algorithm))?
                .to_pkcs8_der(),
            Algorithm::ES384 => p384::SecretKey::try_generate_from_rng(&mut SysRng)
                .map_err(|_| failed(algorithm))?
                .to_pkcs8_der(),
            Algorithm::EdDSA => {
                // PKCS#8 v1 (the private key alone), as `openssl genpkey`
                // writes it and `jsonwebtoken` expects it. The OS RNG does
                // not fail once the process has started.
                let key = ed25519_dalek::SigningKey::generate(&mut UnwrapErr(SysRng));
                KeypairBytes {
                    secret_key: key.to_bytes(),
                    public_key: None,
                }
                .to_pkcs8_der()
            }
            alg if alg.key_type() == KeyType::Rsa => rsa::PrivateKey::new(&mut SysRng, RSA_BITS)
                .map_err(|_| failed(algorithm))?
                .to_pkcs8_der(),
            other => return Err(unsupported(other)),
        };
        der.map(|doc| doc.as_bytes().to_vec())
            .map_err(|_| failed(algorithm))
    }
}
