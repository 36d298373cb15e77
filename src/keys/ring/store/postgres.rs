//! A [`KeyRingStore`] on PostgreSQL (feature `postgres`).

use std::{fmt, str::FromStr, time::Duration};

use async_trait::async_trait;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use super::{KeyRingStore, KeyRingStoreError, StoredKey, StoredRing, keys_from_json, keys_to_json};

/// The table, created by [`PostgresKeyRingStore::migrate`].
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tjwt_key_rings (
    name       text PRIMARY KEY,
    version    bigint NOT NULL CHECK (version > 0),
    keys       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)";
/// How long a call waits for a pooled connection (or a new one) before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// The server-side `statement_timeout` of the pools built from a URL.
const STATEMENT_TIMEOUT_MS: &str = "5000";

/// A [`KeyRingStore`] on PostgreSQL (feature `postgres`), through a `sqlx`
/// connection pool.
///
/// One row per ring in `tjwt_key_rings` (created by
/// [`migrate`](Self::migrate)): the name, the version and the JSON document
/// of [`keys_to_json`]. The compare-and-swap is one `UPDATE ... WHERE
/// version = $expected` (or one `INSERT ... ON CONFLICT DO NOTHING` for the
/// first write): atomic under the default READ COMMITTED isolation, and no
/// lock is held between the load and the write.
///
/// The document holds the private keys: see [Private keys at
/// rest](super#private-keys-at-rest). Let only the issuing service's role
/// select from the table (`REVOKE ALL ON tjwt_key_rings FROM PUBLIC`).
#[derive(Clone)]
pub struct PostgresKeyRingStore {
    pool: PgPool,
}

impl fmt::Debug for PostgresKeyRingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresKeyRingStore")
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

fn error(message: &'static str) -> impl FnOnce(sqlx::Error) -> KeyRingStoreError {
    move |e| KeyRingStoreError::with_source(format!("postgres: {message}"), e)
}

impl PostgresKeyRingStore {
    /// Connects to the database at `url`
    /// (`postgres://user:password@host:port/database`). Call
    /// [`migrate`](Self::migrate) once before use.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use tower_jwt_auth::{
    ///     Algorithm,
    ///     keys::ring::{KeyRing, store::PostgresKeyRingStore},
    /// };
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresKeyRingStore::new("postgres://issuer@127.0.0.1:5432/auth").await?;
    /// store.migrate().await?;
    /// let ring = KeyRing::builder(Algorithm::ES256).store(Arc::new(store)).build().await?;
    /// # let _ = ring;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn new(url: &str) -> Result<Self, KeyRingStoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(error("invalid URL"))?
            .options([("statement_timeout", STATEMENT_TIMEOUT_MS)]);
        let pool = PgPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(error("cannot connect"))?;
        Ok(Self { pool })
    }

    /// A store on a pool you configured yourself: the integration point with
    /// `sqlx`, whose version is part of this function's signature.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Creates the table if it does not exist. Safe to run from several
    /// instances at once.
    pub async fn migrate(&self) -> Result<(), KeyRingStoreError> {
        sqlx::raw_sql(SCHEMA)
            .execute(&self.pool)
            .await
            .map(drop)
            .or_else(|e| match &e {
                // Two instances creating the table at once: the loser's
                // catalog insert fails, and the table is there.
                sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => Ok(()),
                _ => Err(error("migration failed")(e)),
            })
    }

    /// The schema [`migrate`](Self::migrate) applies.
    pub fn schema() -> &'static str {
        SCHEMA
    }
}

#[async_trait]
impl KeyRingStore for PostgresKeyRingStore {
    async fn load(&self, ring: &str) -> Result<Option<StoredRing>, KeyRingStoreError> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT version, keys FROM tjwt_key_rings WHERE name = $1")
                .bind(ring)
                .fetch_optional(&self.pool)
                .await
                .map_err(error("cannot load the key ring"))?;
        row.map(|(version, keys)| {
            Ok(StoredRing {
                version: u64::try_from(version)
                    .map_err(|_| KeyRingStoreError::new("postgres: corrupt key ring version"))?,
                keys: keys_from_json(&keys)?,
            })
        })
        .transpose()
    }

    async fn compare_and_swap(
        &self,
        ring: &str,
        expected: Option<u64>,
        keys: &[StoredKey],
    ) -> Result<Option<u64>, KeyRingStoreError> {
        let document = keys_to_json(keys);
        let version: Option<i64> = match expected {
            None => {
                sqlx::query_scalar(
                    "INSERT INTO tjwt_key_rings (name, version, keys) VALUES ($1, 1, $2) \
                     ON CONFLICT (name) DO NOTHING RETURNING version",
                )
                .bind(ring)
                .bind(document)
                .fetch_optional(&self.pool)
                .await
            }
            Some(expected) => {
                let expected = i64::try_from(expected)
                    .map_err(|_| KeyRingStoreError::new("postgres: version out of range"))?;
                sqlx::query_scalar(
                    "UPDATE tjwt_key_rings SET version = version + 1, keys = $3, updated_at = now() \
                     WHERE name = $1 AND version = $2 RETURNING version",
                )
                .bind(ring)
                .bind(expected)
                .bind(document)
                .fetch_optional(&self.pool)
                .await
            }
        }
        .map_err(error("cannot write the key ring"))?;
        Ok(version.and_then(|v| u64::try_from(v).ok()))
    }
}
