//! The server's configuration. Every environment variable the server reads is
//! parsed here, in [`Config::from_lookup`], and nowhere else (except
//! `RUST_LOG`, the log filter, which `main` hands to `tracing-subscriber`).

use std::{env::VarError, fmt, net::SocketAddr};

use rand::RngCore;

/// The shortest `JWT_SECRET` accepted: the HS256 hash size (RFC 7518 section 3.2).
pub const MIN_SECRET_LEN: usize = 32;

/// The server's configuration, read from the environment.
#[derive(Clone)]
pub struct Config {
    /// Where to listen.
    pub bind: SocketAddr,
    /// The HS256 secret.
    pub secret: Vec<u8>,
    /// Whether `secret` was generated because `JWT_SECRET` was unset.
    pub secret_generated: bool,
    /// The `iss` of issued tokens, required of incoming ones.
    pub issuer: String,
    /// The `aud` of issued tokens, required of incoming ones.
    pub audience: String,
    /// Where refresh-token families live.
    pub store: StoreKind,
    /// An identity provider whose tokens are verified instead of our own.
    pub provider: Option<ProviderKeys>,
}

/// `JWKS_URL` or `OIDC_ISSUER`: where an identity provider's keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKeys {
    /// The provider's JWK Set URL.
    JwksUrl(String),
    /// The provider's issuer, for OpenID Connect discovery.
    OidcIssuer(String),
}

/// `REFRESH_STORE`: where refresh-token families live.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// In this process (the default); nothing survives a restart.
    Memory,
    /// Redis at this URL (`REDIS_URL`, default `redis://127.0.0.1:6379/`);
    /// needs the `redis` feature.
    Redis(String),
    /// PostgreSQL at this URL (`DATABASE_URL`, default
    /// `postgres://postgres@127.0.0.1:5432/test`); needs the `postgres` feature.
    Postgres(String),
}

impl fmt::Debug for StoreKind {
    /// The kind only: URLs may carry passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Memory => "memory",
            Self::Redis(_) => "redis",
            Self::Postgres(_) => "postgres",
        })
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("secret", &"<redacted>")
            .field("secret_generated", &self.secret_generated)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("store", &self.store)
            .field("provider", &self.provider)
            .finish()
    }
}

impl Config {
    /// Reads `BIND`, `JWT_SECRET`, `JWT_ISSUER`, `JWT_AUDIENCE`,
    /// `REFRESH_STORE` (with `REDIS_URL` or `DATABASE_URL`), and `JWKS_URL` or
    /// `OIDC_ISSUER`.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name))
    }

    /// Like [`from_env`](Self::from_env), with `lookup` in place of
    /// `std::env::var` (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Result<String, VarError>) -> Result<Self, String> {
        let var = |name: &str| match lookup(name) {
            Ok(value) => Ok(Some(value)),
            Err(VarError::NotPresent) => Ok(None),
            Err(VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
        };
        let bind = match var("BIND")? {
            Some(bind) => bind
                .parse()
                .map_err(|e| format!("BIND={bind:?} is not a socket address: {e}"))?,
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
        };
        let (secret, secret_generated) = match var("JWT_SECRET")? {
            Some(secret) if secret.len() < MIN_SECRET_LEN => {
                return Err(format!(
                    "JWT_SECRET must be at least {MIN_SECRET_LEN} bytes long (it is {}); \
                     generate one with `openssl rand -base64 48`",
                    secret.len()
                ));
            }
            Some(secret) => (secret.into_bytes(), false),
            None => {
                let mut secret = vec![0u8; 64];
                rand::rng().fill_bytes(&mut secret);
                (secret, true)
            }
        };
        let non_empty = |name: &str, default: &str| -> Result<String, String> {
            match var(name)? {
                Some(value) if value.is_empty() => Err(format!("{name} must not be empty")),
                Some(value) => Ok(value),
                None => Ok(default.to_owned()),
            }
        };
        let store = match var("REFRESH_STORE")?.as_deref() {
            None | Some("memory") => StoreKind::Memory,
            Some("redis") => StoreKind::Redis(non_empty("REDIS_URL", "redis://127.0.0.1:6379/")?),
            Some("postgres") => StoreKind::Postgres(non_empty(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            )?),
            Some(other) => {
                return Err(format!(
                    "REFRESH_STORE={other:?}: expected memory, redis or postgres"
                ));
            }
        };
        let provider = match (var("JWKS_URL")?, var("OIDC_ISSUER")?) {
            (Some(_), Some(_)) => return Err("set JWKS_URL or OIDC_ISSUER, not both".into()),
            (Some(url), None) => Some(ProviderKeys::JwksUrl(url)),
            (None, Some(issuer)) => Some(ProviderKeys::OidcIssuer(issuer)),
            (None, None) => None,
        };
        if provider.is_some() && cfg!(not(feature = "jwks")) {
            return Err("JWKS_URL and OIDC_ISSUER need the `jwks` feature: \
                        cargo run --example axum_server --features jwks"
                .into());
        }
        Ok(Self {
            provider,
            bind,
            secret,
            secret_generated,
            issuer: non_empty("JWT_ISSUER", "tower-jwt-auth-example")?,
            audience: non_empty("JWT_AUDIENCE", "example-api")?,
            store,
        })
    }
}
