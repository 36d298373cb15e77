//! The server's configuration. Every environment variable the server reads is
//! parsed here, in [`Config::from_lookup`], and nowhere else (except
//! `RUST_LOG`, the log filter, which `main` hands to `tracing-subscriber`).

use std::{env::VarError, fmt, net::SocketAddr, num::NonZeroU32, time::Duration};

use rand::RngCore;
use tower_jwt_auth::Algorithm;

use super::limit::DEFAULT_LOGIN_RATE_PER_MIN;

/// The shortest `JWT_SECRET` accepted: the HS256 hash size (RFC 7518 section 3.2).
pub const MIN_SECRET_LEN: usize = 32;

/// The default `JWT_ISSUER`: the `iss` of this server's own tokens, and of a
/// single `JWKS_URL`'s tokens.
pub const DEFAULT_ISSUER: &str = "tower-jwt-auth-example";

/// The server's configuration, read from the environment.
#[derive(Clone)]
pub struct Config {
    /// Where to listen.
    pub bind: SocketAddr,
    /// The HS256 secret.
    pub secret: Vec<u8>,
    /// Whether `secret` was generated because `JWT_SECRET` was unset.
    pub secret_generated: bool,
    /// The `iss` of issued tokens, required of incoming ones (`JWT_ISSUER`).
    pub issuer: String,
    /// The `aud` of issued tokens, required of incoming ones, the provider's
    /// included (`JWT_AUDIENCE`).
    pub audience: String,
    /// Where refresh-token families live.
    pub store: StoreKind,
    /// Login attempts allowed a minute per client IP (`LOGIN_RATE_PER_MIN`,
    /// default 10).
    pub login_rate_per_min: NonZeroU32,
    /// `PUBLIC_URL`: the URL clients call this server at, which their DPoP
    /// proofs name (`htu`). When unset, the `Host` header is trusted, with
    /// `http`: fine on a developer's machine, not behind a proxy.
    pub public_url: Option<String>,
    /// Provider mode: identity providers whose tokens are verified instead
    /// of our own (`OIDC_ISSUER` or `JWKS_URL`).
    pub provider: Option<ProviderConfig>,
    /// Key-ring mode (`SIGNING_ALG`): tokens signed by a rotating key ring
    /// instead of the HS256 secret, its public keys served as a JWK Set.
    pub signing: Option<SigningConfig>,
}

/// Key-ring mode: how this server's tokens are signed when not with the
/// HS256 secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningConfig {
    /// `SIGNING_ALG`: `ES256`, `ES384`, `EdDSA`, `RS256`...`PS512`.
    pub algorithm: Algorithm,
    /// `KEY_ROTATE_SECS`: how long each key signs (the key ring's default,
    /// 30 days, when unset).
    pub rotation_period: Option<Duration>,
}

/// The shortest `KEY_ROTATE_SECS` the key ring accepts.
pub const MIN_ROTATE_SECS: u64 = 4;

/// Provider mode: the issuers whose tokens are accepted, and where a token's
/// roles are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// One entry per issuer, each with its own keys; never empty, no issuer twice.
    pub issuers: Vec<ProviderKeys>,
    /// `ROLE_CLAIM`: where a token's roles are (default `role`).
    pub role_claim: RoleClaim,
    /// `ADMIN_ROLE`: the role `GET /admin/users` needs (default `ADMIN`).
    pub admin_role: String,
    /// `JWKS_LAZY=1`: start without the keys; requests are answered 503
    /// until they arrive.
    pub lazy: bool,
}

/// One issuer of provider mode and where its keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKeys {
    /// An `OIDC_ISSUER` entry: the issuer, its keys found by OpenID Connect
    /// discovery.
    OidcIssuer(String),
    /// A `JWKS_URL` entry and the `JWT_ISSUER` entry at the same position.
    JwksUrl {
        /// The JWK Set URL.
        url: String,
        /// The `iss` of the tokens its keys sign.
        issuer: String,
    },
}

impl ProviderKeys {
    /// The `iss` of the tokens these keys sign.
    pub fn issuer(&self) -> &str {
        match self {
            Self::OidcIssuer(issuer) | Self::JwksUrl { issuer, .. } => issuer,
        }
    }
}

/// `ROLE_CLAIM`: where a provider token's roles are, a string or an array of
/// strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleClaim {
    /// A top-level claim, its name taken literally: `role`, or a URL-named
    /// claim such as `https://example.com/roles` (any value with `://`).
    Claim(String),
    /// A nested claim, one segment per object level: `realm_access.roles`
    /// (Keycloak realm roles), `resource_access.my-client.roles` (client roles).
    Path(Vec<String>),
    /// `scope`: the space-delimited scopes (RFC 9068), each one a role.
    Scope,
}

impl RoleClaim {
    /// Parses `ROLE_CLAIM`: `scope`; a name with `://` as it is; a dotted path
    /// split on `.`; a plain name.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value == "scope" {
            return Ok(Self::Scope);
        }
        if value.contains("://") {
            return Ok(Self::Claim(value.to_owned()));
        }
        if !value.contains('.') {
            return Ok(Self::Claim(value.to_owned()));
        }
        let path: Vec<String> = value.split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            return Err(format!(
                "ROLE_CLAIM={value:?} has an empty path segment: expected a claim name, \
                 a dotted path such as realm_access.roles, a URL-named claim or scope"
            ));
        }
        Ok(Self::Path(path))
    }
}

/// The Redis store of `REDIS_URL` and `REDIS_CLUSTER`: a cluster when
/// `REDIS_URL` lists several comma-separated node URLs, or when
/// `REDIS_CLUSTER` is `1` or `true`; else a single Redis.
fn redis_store(url: String, cluster: Option<String>) -> Result<StoreKind, String> {
    let urls: Vec<String> = url.split(',').map(|u| u.trim().to_owned()).collect();
    if urls.iter().any(String::is_empty) {
        return Err(format!(
            "REDIS_URL lists an empty node URL: {} URLs, comma-separated",
            urls.len()
        ));
    }
    let cluster = match cluster.as_deref().map(str::trim) {
        None | Some("") => urls.len() > 1,
        Some("1" | "true") => true,
        Some("0" | "false") if urls.len() == 1 => false,
        Some("0" | "false") => {
            return Err(
                "REDIS_URL lists several nodes: that is a cluster, unset REDIS_CLUSTER".into(),
            );
        }
        Some(other) => return Err(format!("REDIS_CLUSTER={other:?}: expected 1 or 0")),
    };
    Ok(if cluster {
        StoreKind::RedisCluster(urls)
    } else {
        StoreKind::Redis(url)
    })
}

/// `REFRESH_STORE`: where refresh-token families live.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// In this process (the default); nothing survives a restart.
    Memory,
    /// Redis at this URL (`REDIS_URL`, default `redis://127.0.0.1:6379/`);
    /// needs the `redis` feature.
    Redis(String),
    /// A Redis Cluster reached through these node URLs: `REDIS_URL` with
    /// several comma-separated URLs, or one with `REDIS_CLUSTER=1`; needs
    /// the `redis` feature.
    RedisCluster(Vec<String>),
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
            Self::RedisCluster(_) => "redis-cluster",
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
            .field("login_rate_per_min", &self.login_rate_per_min)
            .field("provider", &self.provider)
            .field("signing", &self.signing)
            .finish()
    }
}

impl Config {
    /// Reads `BIND`, `JWT_SECRET`, `JWT_ISSUER`, `JWT_AUDIENCE`,
    /// `REFRESH_STORE` (with `REDIS_URL` or `DATABASE_URL`),
    /// `LOGIN_RATE_PER_MIN`, for key-ring mode `SIGNING_ALG` and
    /// `KEY_ROTATE_SECS`, and for provider mode `OIDC_ISSUER` and/or
    /// `JWKS_URL`, with `ROLE_CLAIM`, `ADMIN_ROLE` and `JWKS_LAZY`.
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
        let jwt_secret = var("JWT_SECRET")?;
        let signing = SigningConfig::from_vars(&var, jwt_secret.is_some())?;
        let (secret, secret_generated) = match jwt_secret {
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
            non_empty_or(name, var(name)?, default)
        };
        let store = match var("REFRESH_STORE")?.as_deref() {
            None | Some("memory") => StoreKind::Memory,
            Some("redis") => redis_store(
                non_empty("REDIS_URL", "redis://127.0.0.1:6379/")?,
                var("REDIS_CLUSTER")?,
            )?,
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
        let login_rate_per_min = match var("LOGIN_RATE_PER_MIN")? {
            None => DEFAULT_LOGIN_RATE_PER_MIN,
            Some(value) => value.parse::<NonZeroU32>().map_err(|_| {
                format!(
                    "LOGIN_RATE_PER_MIN={value:?}: expected a whole number of login \
                         attempts a minute per client, at least 1"
                )
            })?,
        };
        let provider = ProviderConfig::from_vars(&var)?;
        if provider.is_some() && cfg!(not(feature = "jwks")) {
            return Err("JWKS_URL and OIDC_ISSUER need the `jwks` feature: \
                        cargo run --example axum_server --features jwks"
                .into());
        }
        if let Some(signing) = &signing {
            if provider.is_some() {
                return Err(format!(
                    "SIGNING_ALG={} signs this server's own tokens, and provider mode \
                     (OIDC_ISSUER, JWKS_URL) issues none: set one or the other",
                    signing.algorithm
                ));
            }
            if cfg!(not(feature = "key-ring")) {
                return Err("SIGNING_ALG needs the `key-ring` feature: \
                            cargo run --example axum_server --features key-ring"
                    .into());
            }
        }
        let issuer = non_empty("JWT_ISSUER", DEFAULT_ISSUER)?;
        if signing.is_some() && url_list("JWT_ISSUER", &issuer).map(|urls| urls.len()) != Ok(1) {
            return Err(format!(
                "with SIGNING_ALG, JWT_ISSUER={issuer:?} must be this server's public URL \
                 (such as https://auth.example.com): the discovery document and the JWK Set \
                 are served under it"
            ));
        }
        Ok(Self {
            provider,
            signing,
            bind,
            secret,
            secret_generated,
            issuer,
            audience: non_empty("JWT_AUDIENCE", "example-api")?,
            store,
            login_rate_per_min,
            public_url: var("PUBLIC_URL")?,
        })
    }
}

/// A variable's value: `None` when unset, an error when not UTF-8.
type Var<'a> = dyn Fn(&str) -> Result<Option<String>, String> + 'a;

impl SigningConfig {
    /// Reads `SIGNING_ALG` and `KEY_ROTATE_SECS`; `None` when `SIGNING_ALG`
    /// is unset (the HS256 secret signs; `KEY_ROTATE_SECS` is then an error,
    /// and so is `JWT_SECRET` with `SIGNING_ALG`).
    fn from_vars(var: &Var<'_>, jwt_secret: bool) -> Result<Option<Self>, String> {
        let rotate = var("KEY_ROTATE_SECS")?;
        let Some(name) = var("SIGNING_ALG")? else {
            if rotate.is_some() {
                return Err(
                    "KEY_ROTATE_SECS applies only with SIGNING_ALG (a key ring); \
                            the HS256 secret does not rotate"
                        .into(),
                );
            }
            return Ok(None);
        };
        let algorithm: Algorithm = name.parse().map_err(|_| {
            format!("SIGNING_ALG={name:?}: expected ES256, ES384, EdDSA, RS256, RS384, RS512, PS256, PS384 or PS512")
        })?;
        if algorithm.as_str().starts_with("HS") {
            return Err(format!(
                "SIGNING_ALG={name:?}: HS256 with JWT_SECRET is the default; SIGNING_ALG \
                 takes an asymmetric algorithm (ES256, EdDSA, RS256...) whose public keys \
                 can be published"
            ));
        }
        if jwt_secret {
            return Err(
                "JWT_SECRET is not used with SIGNING_ALG (a key ring signs): unset it".into(),
            );
        }
        let rotation_period = match rotate {
            None => None,
            Some(value) => match value.parse::<u64>() {
                Ok(secs) if secs >= MIN_ROTATE_SECS => Some(Duration::from_secs(secs)),
                _ => {
                    return Err(format!(
                        "KEY_ROTATE_SECS={value:?}: expected a whole number of seconds, \
                         at least {MIN_ROTATE_SECS}"
                    ));
                }
            },
        };
        Ok(Some(Self {
            algorithm,
            rotation_period,
        }))
    }
}

impl ProviderConfig {
    /// Reads `OIDC_ISSUER`, `JWKS_URL` (with `JWT_ISSUER`), `ROLE_CLAIM`,
    /// `ADMIN_ROLE` and `JWKS_LAZY`; `None` when neither `OIDC_ISSUER` nor
    /// `JWKS_URL` is set (the provider-only variables are then an error).
    fn from_vars(var: &Var<'_>) -> Result<Option<Self>, String> {
        let oidc = var("OIDC_ISSUER")?
            .map(|v| url_list("OIDC_ISSUER", &v))
            .transpose()?;
        let jwks = var("JWKS_URL")?
            .map(|v| url_list("JWKS_URL", &v))
            .transpose()?;
        let role_claim = var("ROLE_CLAIM")?;
        let admin_role = var("ADMIN_ROLE")?;
        let lazy = var("JWKS_LAZY")?;
        if oidc.is_none() && jwks.is_none() {
            for (name, value) in [
                ("ROLE_CLAIM", &role_claim),
                ("ADMIN_ROLE", &admin_role),
                ("JWKS_LAZY", &lazy),
            ] {
                if value.is_some() {
                    return Err(format!(
                        "{name} applies only in provider mode (with OIDC_ISSUER or JWKS_URL); \
                         this server's own tokens carry `role`"
                    ));
                }
            }
            return Ok(None);
        }

        let mut issuers: Vec<ProviderKeys> = oidc
            .unwrap_or_default()
            .into_iter()
            .map(ProviderKeys::OidcIssuer)
            .collect();
        let jwt_issuer = var("JWT_ISSUER")?;
        match jwks {
            Some(urls) => {
                let names = match &jwt_issuer {
                    Some(value) => list("JWT_ISSUER", value)?,
                    // One JWK Set keeps the single-issuer default.
                    None if urls.len() == 1 => vec![DEFAULT_ISSUER.to_owned()],
                    None => Vec::new(),
                };
                if names.len() != urls.len() {
                    return Err(format!(
                        "JWKS_URL lists {} JWK Sets but JWT_ISSUER lists {} issuer(s): \
                         give JWT_ISSUER one issuer per JWKS_URL entry, in the same order",
                        urls.len(),
                        names.len()
                    ));
                }
                issuers.extend(
                    urls.into_iter()
                        .zip(names)
                        .map(|(url, issuer)| ProviderKeys::JwksUrl { url, issuer }),
                );
            }
            None if jwt_issuer.is_some() => {
                return Err("JWT_ISSUER is not used with OIDC_ISSUER: each OIDC_ISSUER entry \
                            is an issuer (and its discovery document must name it); unset JWT_ISSUER"
                    .into());
            }
            None => {}
        }
        for (i, keys) in issuers.iter().enumerate() {
            if issuers[..i].iter().any(|k| k.issuer() == keys.issuer()) {
                return Err(format!(
                    "the issuer {:?} is configured twice",
                    keys.issuer()
                ));
            }
        }

        let role_claim = RoleClaim::parse(&non_empty_or("ROLE_CLAIM", role_claim, "role")?)?;
        let admin_role = non_empty_or("ADMIN_ROLE", admin_role, "ADMIN")?;
        if role_claim == RoleClaim::Scope && admin_role.contains(' ') {
            return Err(format!(
                "ADMIN_ROLE={admin_role:?} has a space, so no scope can match it (ROLE_CLAIM=scope)"
            ));
        }
        let lazy = match lazy.as_deref() {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => return Err(format!("JWKS_LAZY={other:?}: expected 1 or 0")),
        };
        Ok(Some(Self {
            issuers,
            role_claim,
            admin_role,
            lazy,
        }))
    }
}

/// `value`, unless empty; `default` when unset.
fn non_empty_or(name: &str, value: Option<String>, default: &str) -> Result<String, String> {
    match value {
        Some(value) if value.is_empty() => Err(format!("{name} must not be empty")),
        Some(value) => Ok(value),
        None => Ok(default.to_owned()),
    }
}

/// A comma-separated list, each entry trimmed; an empty entry is an error.
fn list(name: &str, value: &str) -> Result<Vec<String>, String> {
    value
        .split(',')
        .map(str::trim)
        .map(|entry| {
            if entry.is_empty() {
                Err(format!(
                    "{name}={value:?} has an empty entry: expected a comma-separated list"
                ))
            } else {
                Ok(entry.to_owned())
            }
        })
        .collect()
}

/// A comma-separated list of `http://` or `https://` URLs (the keys' client
/// accepts plain `http://` for loopback hosts only).
fn url_list(name: &str, value: &str) -> Result<Vec<String>, String> {
    let entries = list(name, value)?;
    for entry in &entries {
        let rest = entry
            .strip_prefix("https://")
            .or_else(|| entry.strip_prefix("http://"));
        if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
            return Err(format!(
                "{name} entry {entry:?} is not an http(s) URL such as \
                 https://idp.example.com/realms/main"
            ));
        }
    }
    Ok(entries)
}
