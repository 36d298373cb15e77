//! The storage contract of the key ring: what a store author implements.
//!
//! Applications pick a store ([`MemoryKeyRingStore`], `RedisKeyRingStore`
//! with the `redis` feature, `PostgresKeyRingStore` with `postgres`) and hand
//! it to [`KeyRing::builder`](super::KeyRing::builder). To keep the ring in
//! another database, implement [`KeyRingStore`]: two calls, a load and a
//! compare-and-swap of one small document, then run the conformance suite
//! (`keys::ring::conformance`, feature `test-util`) against it.
//!
//! # Private keys at rest
//!
//! A ring's document holds the private keys, as PKCS#8 PEM, in clear: every
//! instance that signs must be able to read them. Whoever reads the store can
//! sign tokens. Protect it as you would the signing key itself:
//!
//! - give the store its own credentials, readable by the issuing service
//!   only (a Redis ACL user limited to the ring's key pattern, a PostgreSQL
//!   role that alone may select from the table); verifying services never
//!   need the store, only the JWK Set;
//! - use TLS to the store, and encrypted disks, snapshots and backups;
//! - to encrypt the keys themselves, wrap a store in a [`KeyRingStore`] of
//!   your own that seals [`StoredKey::private_key_pem`] with a key from your
//!   KMS before delegating, and opens it on [`load`](KeyRingStore::load).
//!
//! Nothing else in the document is secret; the public keys are derived from
//! the private ones when a ring is loaded, never read from the store.

use std::{error::Error as StdError, fmt};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::keys::Algorithm;

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

pub use self::memory::MemoryKeyRingStore;
#[cfg(feature = "postgres")]
pub use self::postgres::PostgresKeyRingStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisKeyRingStore;

/// One key of a ring as a store holds it: a plain record, built with a
/// struct literal. Its `Debug` output hides the private key.
///
/// ```
/// use tower_jwt_auth::{Algorithm, keys::ring::store::StoredKey};
///
/// let key = StoredKey {
///     kid: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into(),
///     algorithm: Algorithm::ES256,
///     private_key_pem: "-----BEGIN PRIVATE KEY-----\n...".into(),
///     created_at: 1_700_000_000,
///     activates_at: 1_700_086_400,
/// };
/// assert!(!format!("{key:?}").contains("BEGIN"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key id: the RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// The algorithm the key signs with.
    pub algorithm: Algorithm,
    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: String,
    /// When the key was made, in Unix seconds.
    pub created_at: i64,
    /// From when the key signs, in Unix seconds; it signs until the next
    /// key's `activates_at`.
    pub activates_at: i64,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_key_pem", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish()
    }
}

/// A ring as a store holds it: its keys and the version that
/// [`compare_and_swap`](KeyRingStore::compare_and_swap) checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRing {
    /// Increases with every successful write; chosen by the store.
    pub version: u64,
    /// The keys, in the order they were written: a store keeps that order
    /// (it decides which of two keys activated in the same second signs).
    pub keys: Vec<StoredKey>,
}

/// A store failure: unreachable, timed out, corrupt data.
///
/// Its [`Display`](fmt::Display) is the message only; the driver's error, if
/// any, is its [`source`](StdError::source).
#[derive(Debug)]
pub struct KeyRingStoreError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl KeyRingStoreError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by `source` (a driver's error).
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for KeyRingStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for KeyRingStoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

/// Where a key ring lives, shared by every instance of the issuing service.
///
/// A ring is one small document (a handful of keys) under a name. Every
/// decision (when to make a key, when one signs, when one is dropped) is
/// taken by [`KeyRing`](super::KeyRing); a store only loads the document and
/// replaces it atomically if nobody else did in between. That
/// compare-and-swap is what makes rotation safe when several instances rotate
/// at once: one write wins, the others reload and find the work done.
///
/// Usable as `Arc<dyn KeyRingStore>`.
///
/// ```
/// use std::sync::Arc;
/// use tower_jwt_auth::keys::ring::store::{KeyRingStore, MemoryKeyRingStore};
///
/// let store: Arc<dyn KeyRingStore> = Arc::new(MemoryKeyRingStore::new());
/// # let _ = store;
/// ```
#[async_trait]
pub trait KeyRingStore: Send + Sync + fmt::Debug + 'static {
    /// The ring named `ring`, with its version; `None` if none was written.
    async fn load(&self, ring: &str) -> Result<Option<StoredRing>, KeyRingStoreError>;

    /// Writes `keys` as the ring named `ring`, atomically, if its version is
    /// still `expected` (`None`: only if no ring of that name exists).
    ///
    /// Returns the new version, greater than any before; or `None`, having
    /// written nothing, when the version is not `expected` any more. Under
    /// any concurrency, at most one of several calls with the same
    /// `expected` succeeds.
    async fn compare_and_swap(
        &self,
        ring: &str,
        expected: Option<u64>,
        keys: &[StoredKey],
    ) -> Result<Option<u64>, KeyRingStoreError>;
}

/// The document format, versioned so that a later one can be told apart.
#[derive(Serialize, Deserialize)]
struct Document {
    format: u32,
    keys: Vec<DocumentKey>,
}

#[derive(Serialize, Deserialize)]
struct DocumentKey {
    kid: String,
    alg: String,
    created_at: i64,
    activates_at: i64,
    private_key: String,
}

const FORMAT: u32 = 1;

/// The keys as the JSON document the shipped stores write: one format for
/// every store that keeps the ring as text.
///
/// ```
/// use tower_jwt_auth::keys::ring::store::{keys_from_json, keys_to_json};
///
/// let json = keys_to_json(&[]);
/// assert!(keys_from_json(&json)?.is_empty());
/// # Ok::<_, tower_jwt_auth::keys::ring::store::KeyRingStoreError>(())
/// ```
pub fn keys_to_json(keys: &[StoredKey]) -> String {
    let document = Document {
        format: FORMAT,
        keys: keys
            .iter()
            .map(|key| DocumentKey {
                kid: key.kid.clone(),
                alg: key.algorithm.as_str().to_owned(),
                created_at: key.created_at,
                activates_at: key.activates_at,
                private_key: key.private_key_pem.clone(),
            })
            .collect(),
    };
    serde_json::to_string(&document).expect("the document always serializes")
}

/// Parses what [`keys_to_json`] wrote.
pub fn keys_from_json(json: &str) -> Result<Vec<StoredKey>, KeyRingStoreError> {
    let document: Document = serde_json::from_str(json)
        .map_err(|e| KeyRingStoreError::with_source("corrupt key ring document", e))?;
    if document.format != FORMAT {
        return Err(KeyRingStoreError::new(format!(
            "unknown key ring document format {}",
            document.format
        )));
    }
    document
        .keys
        .into_iter()
        .map(|key| {
            let algorithm = key.alg.parse().map_err(|e| {
                KeyRingStoreError::with_source(
                    format!("corrupt key ring document: algorithm {:?}", key.alg),
                    e,
                )
            })?;
            Ok(StoredKey {
                kid: key.kid,
                algorithm,
                private_key_pem: key.private_key,
                created_at: key.created_at,
                activates_at: key.activates_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn documents_round_trip() {
        let keys = vec![StoredKey {
            kid: "k1".into(),
            algorithm: Algorithm::EdDSA,
            private_key_pem: "pem".into(),
            created_at: 1,
            activates_at: 2,
        }];
        assert_eq!(keys_from_json(&keys_to_json(&keys)).unwrap(), keys);
        assert!(keys_from_json(r#"{"format":2,"keys":[]}"#).is_err());
        let bad = keys_to_json(&keys).replace("EdDSA", "none");
        let error = keys_from_json(&bad).unwrap_err();
        assert!(error.source().is_some());
    }
}
