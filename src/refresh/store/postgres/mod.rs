//! A [`RefreshStore`] on PostgreSQL (feature `postgres`).

use std::{fmt, str::FromStr, time::Duration};

use async_trait::async_trait;
use sqlx::{
    PgPool, Row,
    postgres::{PgConnectOptions, PgPoolOptions, PgRow},
};

mod events;

use super::{
    InvalidReason, RefreshStore, RotateOutcome, Rotation, Session, StoreError, TokenHash,
    TokenRecord, TokenStatus,
};

/// The schema: tables, indexes and the rotation function.
const SCHEMA: &str = include_str!("postgres.sql");
/// The advisory lock key that serializes concurrent migrations ("tjwt").
const MIGRATION_LOCK: i64 = 0x746a_7774;
/// The version of [`SCHEMA`]; bump it with every change to the file.
const SCHEMA_VERSION: i32 = 6;
/// How long a call waits for a pooled connection (or a new one) before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// The server-side `statement_timeout` of the pools built from a URL.
const STATEMENT_TIMEOUT_MS: &str = "5000";

/// A [`RefreshStore`] on PostgreSQL (feature `postgres`), through a `sqlx`
/// connection pool.
///
/// Two tables with a fixed `tjwt_` prefix, created by
/// [`migrate`](Self::migrate) from the schema shipped with the crate:
///
/// - `tjwt_families` (one row per session): primary key `id`; indexes on `(user_id, created_at,
///   id)` (partial, not revoked only: about the session cap per user) for sessions,
///   logout-everywhere and the session cap, on `expires_at` and (partial, revoked only) on
///   `last_used_at` for purging, and (partial) on `revoked_at` for the logout broadcast; a
///   trigger stamps `revoked_at` and notifies the channel `tjwt_ended` when a session ends;
/// - `tjwt_tokens`: primary key `hash` (`bytea`, the 32-byte token hash: no
///   raw token ever reaches the database); `family_id` references
///   `tjwt_families` `ON DELETE CASCADE`, indexed.
///
/// [`rotate`](RefreshStore::rotate) is one call of the `tjwt_rotate`
/// PL/pgSQL function: one round trip, one short transaction that locks the
/// session row, then the token row (`SELECT ... FOR UPDATE`, always in that
/// order), correct under the default READ COMMITTED isolation.
/// [`create`](RefreshStore::create) is one call of `tjwt_create`: the
/// session, its first token and the session cap, with one user's logins
/// taking turns (a transaction-scoped advisory lock on the user).
///
/// A database that is down or slow makes calls fail with a [`StoreError`]
/// (after 3 s waiting for a connection; statements of pools built from a URL
/// time out after 5 s), never with a reuse verdict.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    endpoint: String,
    /// Where the logout broadcast's `LISTEN` connects, if not where the pool does.
    listener: Option<PgConnectOptions>,
    heartbeat: events::Heartbeat,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("endpoint", &self.endpoint)
            .field("connections", &self.pool.size())
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

fn error(message: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::with_source(format!("postgres: {message}"), e)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(format!("postgres: corrupt {what}"))
}

fn options(url: &str) -> Result<(PgConnectOptions, String), StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(error("invalid URL"))?
        .options([("statement_timeout", STATEMENT_TIMEOUT_MS)]);
    let endpoint = format!(
        "postgres://{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    );
    Ok((options, endpoint))
}

fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT)
}

impl PostgresStore {
    /// Connects to the database at `url`
    /// (`postgres://user:password@host:port/database`).
    ///
    /// Fails if the URL is invalid or the server unreachable. Call
    /// [`migrate`](Self::migrate) once before use.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use tower_jwt_auth::{
    ///     Algorithm, SigningKey, TokenIssuer,
    ///     refresh::{PostgresStore, RefreshTokens},
    /// };
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresStore::new("postgres://app@127.0.0.1:5432/app").await?;
    /// store.migrate().await?;
    /// let issuer = TokenIssuer::new(SigningKey::hmac(
    ///     Algorithm::HS256,
    ///     b"a secret of at least thirty-two bytes!",
    /// )?);
    /// let tokens = RefreshTokens::new(Arc::new(store), issuer);
    /// # let _ = tokens;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn new(url: &str) -> Result<Self, StoreError> {
        let (options, endpoint) = options(url)?;
        let pool = pool_options()
            .connect_with(options)
            .await
            .map_err(error("cannot connect"))?;
        Ok(Self::with(pool, endpoint))
    }

    fn with(pool: PgPool, endpoint: String) -> Self {
        Self {
            pool,
            endpoint,
            listener: None,
            heartbeat: events::Heartbeat::default(),
        }
    }

    /// Like [`new`](Self::new), but connects on first use: starts even while
    /// the database is down (calls fail with a [`StoreError`] until it is up).
    ///
    /// Must be called within a Tokio runtime.
    pub fn new_lazy(url: &str) -> Result<Self, StoreError> {
        let (options, endpoint) = options(url)?;
        let pool = pool_options().connect_lazy_with(options);
        Ok(Self::with(pool, endpoint))
    }

    /// A store on a pool you configured yourself (size, TLS, timeouts): the
    /// integration point with `sqlx`, whose version is part of this
    /// function's signature.
    pub fn from_pool(pool: PgPool) -> Self {
        Self::with(pool, "<pool>".to_owned())
    }

    /// Where the logout broadcast's `LISTEN` connection connects, when it
    /// must not go where the pool does: straight to PostgreSQL when the pool
    /// goes through PgBouncer in transaction mode (where a `LISTEN` hears
    /// nothing). Default: the pool's own connect options. Each subscription
    /// holds one connection of its own, apart from the pool.
    ///
    /// ```no_run
    /// use std::str::FromStr;
    /// use sqlx::postgres::PgConnectOptions;
    /// use tower_jwt_auth::refresh::PostgresStore;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresStore::new("postgres://app@pgbouncer:6432/app")
    ///     .await?
    ///     .listener(PgConnectOptions::from_str("postgres://app@db:5432/app")?);
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn listener(mut self, options: PgConnectOptions) -> Self {
        self.listener = Some(options);
        self
    }

    /// How the logout broadcast's subscription finds out that its `LISTEN`
    /// connection died without a word (a half-open TCP connection, a `LISTEN`
    /// through PgBouncer in transaction mode): every `every` (default 5 s),
    /// it sends `pg_notify(channel, 'tjwt:heartbeat:<nonce>')` through the
    /// pool, and fails when that nonce is not back on its connection within
    /// `timeout` (default 2 s). The broadcast then checks sessions by store
    /// lookups, subscribes again and resyncs: a silent death is noticed
    /// within `every + timeout` (7 s by default).
    ///
    /// Heartbeats are never taken for session ids (their payload holds a
    /// `:`), and other servers' heartbeats on the channel are skipped.
    /// A zero `every` or `timeout` is taken as one millisecond.
    #[must_use]
    pub fn heartbeat(mut self, every: Duration, timeout: Duration) -> Self {
        let floor = Duration::from_millis(1);
        self.heartbeat = events::Heartbeat {
            every: every.max(floor),
            timeout: timeout.max(floor),
        };
        self
    }

    /// Creates the tables, indexes and functions if missing, or upgrades an
    /// older schema (idempotent; concurrent calls wait for each other).
    ///
    /// Migration only goes upward. The database records the version of the
    /// schema it holds; at this build's version `migrate` changes nothing.
    /// A database at a *newer* version, migrated by a newer build of this
    /// crate (an older build restarting during a rolling deploy, or after a
    /// rollback), is left exactly as it is and `migrate` fails with a
    /// [`StoreError`] naming both versions: this build does not know whether
    /// its queries fit the newer schema, and re-applying its own schema would
    /// put its older functions under every server of the fleet. Run the newer
    /// build, or, to roll back on purpose, restore the older schema yourself.
    ///
    /// The schema is `src/refresh/store/postgres/postgres.sql` in the crate, should you
    /// rather apply it with your own migration tool.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(error("cannot connect"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(error("migration lock failed"))?;
        // Already current: no DDL, so no table locks against live traffic.
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('tjwt_schema') IS NOT NULL")
            .fetch_one(&mut *tx)
            .await
            .map_err(error("migration check failed"))?;
        let current: Option<i32> = if exists {
            sqlx::query_scalar("SELECT max(version) FROM tjwt_schema")
                .fetch_one(&mut *tx)
                .await
                .map_err(error("migration check failed"))?
        } else {
            None
        };
        match current {
            Some(version) if version == SCHEMA_VERSION => {
                return tx.commit().await.map_err(error("migration failed"));
            }
            // Never downgrade: the transaction rolls back, nothing changes.
            Some(version) if version > SCHEMA_VERSION => {
                return Err(StoreError::new(format!(
                    "postgres: the database schema is version {version}, newer than this \
                     build's version {SCHEMA_VERSION}; not downgrading it"
                )));
            }
            _ => {}
        }
        sqlx::raw_sql(SCHEMA)
            .execute(&mut *tx)
            .await
            .map_err(error("migration failed"))?;
        sqlx::query(
            "INSERT INTO tjwt_schema (id, version) VALUES (true, $1) \
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
        )
        .bind(SCHEMA_VERSION)
        .execute(&mut *tx)
        .await
        .map_err(error("migration failed"))?;
        tx.commit().await.map_err(error("migration failed"))
    }

    /// The schema [`migrate`](Self::migrate) applies.
    pub fn schema() -> &'static str {
        SCHEMA
    }
}

fn generation(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(what))
}

fn read_token(token_hash: TokenHash, row: &PgRow) -> Result<TokenRecord, StoreError> {
    let map = |e: sqlx::Error| StoreError::with_source("postgres: corrupt token", e);
    let parent: Option<Vec<u8>> = row.try_get("parent").map_err(map)?;
    let status: i16 = row.try_get("status").map_err(map)?;
    let rotated_at: Option<i64> = row.try_get("rotated_at").map_err(map)?;
    let status = match (status, rotated_at) {
        (0, _) => TokenStatus::Active,
        (1, Some(at)) => TokenStatus::Rotated(at),
        (2, _) => TokenStatus::Revoked,
        _ => return Err(corrupt("token status")),
    };
    Ok(TokenRecord {
        hash: token_hash,
        session_id: row.try_get("family_id").map_err(map)?,
        parent: parent.map(hash).transpose()?,
        generation: generation(row.try_get("t_generation").map_err(map)?, "token")?,
        created_at: row.try_get("t_created_at").map_err(map)?,
        status,
    })
}

fn read_session(row: &PgRow, prefix: &str) -> Result<Session, StoreError> {
    let get = |name: &str| format!("{prefix}{name}");
    let map = |e: sqlx::Error| StoreError::with_source("postgres: corrupt session", e);
    Ok(Session {
        id: row.try_get(get("id").as_str()).map_err(map)?,
        user_id: row.try_get(get("user_id").as_str()).map_err(map)?,
        device: row.try_get(get("device").as_str()).map_err(map)?,
        created_at: row.try_get(get("created_at").as_str()).map_err(map)?,
        last_used_at: row.try_get(get("last_used_at").as_str()).map_err(map)?,
        expires_at: row.try_get(get("expires_at").as_str()).map_err(map)?,
        generation: generation(
            row.try_get(get("generation").as_str()).map_err(map)?,
            "session",
        )?,
        revoked: row.try_get(get("revoked").as_str()).map_err(map)?,
        auth_time: row.try_get(get("auth_time").as_str()).map_err(map)?,
        jkt: row.try_get(get("jkt").as_str()).map_err(map)?,
    })
}

fn hash(bytes: Vec<u8>) -> Result<TokenHash, StoreError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| corrupt("token hash"))?;
    Ok(TokenHash::from_bytes(bytes))
}

#[async_trait]
impl RefreshStore for PostgresStore {
    async fn create(
        &self,
        session: &Session,
        token: &TokenRecord,
        max_sessions: u32,
    ) -> Result<Vec<String>, StoreError> {
        if token.session_id != session.id {
            return Err(StoreError::new("the token belongs to another session"));
        }
        let (status, rotated_at): (i16, Option<i64>) = match token.status {
            TokenStatus::Active => (0, None),
            TokenStatus::Rotated(at) => (1, Some(at)),
            TokenStatus::Revoked => (2, None),
        };
        // One call of tjwt_create (one round trip, atomic): the session, its
        // token, then the session cap.
        sqlx::query_scalar(
            "SELECT id FROM tjwt_create(
                 $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17
             ) AS id",
        )
        .bind(&session.id)
        .bind(&session.user_id)
        .bind(session.device.as_deref())
        .bind(session.created_at)
        .bind(session.last_used_at)
        .bind(session.expires_at)
        .bind(i64::from(session.generation))
        .bind(session.revoked)
        .bind(&token.hash.as_bytes()[..])
        .bind(token.parent.as_ref().map(|p| &p.as_bytes()[..]))
        .bind(i64::from(token.generation))
        .bind(token.created_at)
        .bind(status)
        .bind(rotated_at)
        .bind(i32::try_from(max_sessions).unwrap_or(i32::MAX))
        .bind(session.auth_time)
        .bind(session.jkt.as_deref())
        .fetch_all(&self.pool)
        .await
        .map_err(error("create failed"))
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        // The function runs only for a token of the named session (LATERAL:
        // once per row of `tk`, and a token's session never changes), so a
        // token presented with another session's id is unknown and changes
        // nothing. No schema change: the check stays outside the function.
        let row = sqlx::query(
            "SELECT r.* FROM tjwt_tokens tk,
                 LATERAL tjwt_rotate(tk.hash, $2, $3, $4, $5) r
             WHERE tk.hash = $1 AND tk.family_id = $6",
        )
        .bind(&rotation.presented.as_bytes()[..])
        .bind(&rotation.child.as_bytes()[..])
        .bind(rotation.now)
        .bind(rotation.idle_cutoff)
        .bind(rotation.grace_cutoff)
        .bind(&rotation.session_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(error("rotate failed"))?;
        let Some(row) = row else {
            return Ok(RotateOutcome::Invalid(InvalidReason::Unknown));
        };
        let outcome: String = row.try_get("o_outcome").map_err(error("rotate failed"))?;
        Ok(match outcome.as_str() {
            "unknown" => RotateOutcome::Invalid(InvalidReason::Unknown),
            "revoked" => RotateOutcome::Invalid(InvalidReason::Revoked),
            "expired" => RotateOutcome::Invalid(InvalidReason::Expired),
            "rotated" => RotateOutcome::Rotated(read_session(&row, "o_")?),
            "grace" => RotateOutcome::Grace(read_session(&row, "o_")?),
            "retried" => RotateOutcome::Retried(read_session(&row, "o_")?),
            "reused" => RotateOutcome::Reused(read_session(&row, "o_")?),
            _ => return Err(corrupt("rotate reply")),
        })
    }

    async fn allow_retry(
        &self,
        session_id: &str,
        hash_: &TokenHash,
        until: i64,
    ) -> Result<(), StoreError> {
        // One row lock, on the token only: no lock-order cycle with tjwt_rotate.
        sqlx::query("UPDATE tjwt_tokens SET retry_until = $2 WHERE hash = $1 AND family_id = $3")
            .bind(&hash_.as_bytes()[..])
            .bind(until)
            .bind(session_id)
            .execute(&self.pool)
            .await
            .map_err(error("recording a retry permit failed"))?;
        Ok(())
    }

    async fn token(
        &self,
        session_id: &str,
        hash_: &TokenHash,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT family_id, parent, generation AS t_generation, created_at AS t_created_at,
                    status, rotated_at
             FROM tjwt_tokens WHERE hash = $1 AND family_id = $2",
        )
        .bind(&hash_.as_bytes()[..])
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(error("reading a token failed"))?;
        row.map(|row| read_token(*hash_, &row)).transpose()
    }

    async fn lookup(
        &self,
        session_id: &str,
        hash_: &TokenHash,
    ) -> Result<Option<(TokenRecord, Session)>, StoreError> {
        // One round trip for both rows.
        let row = sqlx::query(
            "SELECT t.family_id, t.parent, t.generation AS t_generation,
                    t.created_at AS t_created_at, t.status, t.rotated_at,
                    f.id, f.user_id, f.device, f.created_at, f.last_used_at, f.expires_at,
                    f.generation, f.revoked, COALESCE(f.auth_time, f.created_at) AS auth_time,
                    f.jkt
             FROM tjwt_tokens t JOIN tjwt_families f ON f.id = t.family_id
             WHERE t.hash = $1 AND t.family_id = $2",
        )
        .bind(&hash_.as_bytes()[..])
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(error("reading a token failed"))?;
        row.map(|row| Ok((read_token(*hash_, &row)?, read_session(&row, "")?)))
            .transpose()
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT id, user_id, device, created_at, last_used_at, expires_at, generation, revoked,
                    COALESCE(auth_time, created_at) AS auth_time, jkt
             FROM tjwt_families WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(error("reading a session failed"))?;
        row.map(|row| read_session(&row, "")).transpose()
    }

    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE tjwt_families SET revoked = true WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(error("revoking a session failed"))?;
        Ok(result.rows_affected() > 0)
    }

    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        // Lock in index order, like every other statement that takes several
        // sessions of one user.
        let result = sqlx::query(
            "UPDATE tjwt_families SET revoked = true
             WHERE id IN (
                 SELECT id FROM tjwt_families WHERE user_id = $1 AND NOT revoked
                 ORDER BY created_at, id FOR UPDATE
             ) AND NOT revoked",
        )
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(error("revoking a user's sessions failed"))?;
        Ok(result.rows_affected())
    }

    async fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, device, created_at, last_used_at, expires_at, generation, revoked,
                    COALESCE(auth_time, created_at) AS auth_time, jkt
             FROM tjwt_families
             WHERE user_id = $1 AND NOT revoked AND expires_at > $2
             ORDER BY created_at, id",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(error("listing sessions failed"))?;
        rows.iter().map(|row| read_session(row, "")).collect()
    }

    async fn purge(&self, now: i64, revoked_before: i64) -> Result<u64, StoreError> {
        // Two index scans (expires_at; the partial revoked index), tokens go
        // by ON DELETE CASCADE.
        let result = sqlx::query(
            "DELETE FROM tjwt_families WHERE id IN (
                 SELECT id FROM tjwt_families WHERE expires_at <= $1
                 UNION
                 SELECT id FROM tjwt_families WHERE revoked AND last_used_at < $2
             )",
        )
        .bind(now)
        .bind(revoked_before)
        .execute(&self.pool)
        .await
        .map_err(error("purge failed"))?;
        Ok(result.rows_affected())
    }
}
