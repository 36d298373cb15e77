//! A real OpenID provider for the integration tests: the npm package
//! `oidc-provider` (pinned in `tests/oidc/package.json`), run by
//! `tests/oidc/provider.mjs` on 127.0.0.1.
//!
//! ```ignore
//! #[path = "support/oidc.rs"]
//! mod oidc;
//!
//! let Some(idp) = oidc::Provider::start(oidc::ProviderOptions::new()).await else {
//!     return; // node is missing and this is not CI: skipped, with a notice
//! };
//! let token = idp.token("ES256", "read write").await;
//! ```
//!
//! The provider is a child process that exits when its stdin closes: when the
//! [`Provider`] is dropped or stopped, and when the test process ends (a
//! `static` provider shared by the tests of a binary included). It does not
//! depend on the Tokio runtime that started it, so one provider can serve
//! the tests of a binary, each on its own runtime.
//!
//! With `CI=true` every failure to install or start panics; elsewhere a
//! missing `node` or `npm` skips (a notice on stderr), anything else panics.

#![allow(dead_code)]

use std::{
    fs,
    io::{BufRead, BufReader, ErrorKind, Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{Value, json};

/// How long a provider may take to print its `READY` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process waits for another one's `npm ci`.
const INSTALL_LOCK_TIMEOUT: Duration = Duration::from_secs(300);
/// A lock file older than this is left over from a killed process.
const STALE_LOCK: Duration = Duration::from_secs(240);

/// `tests/oidc`: the package, its lock file and the provider script.
pub fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("oidc")
}

/// Whether this is CI (`CI=true`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A missing tool: a notice and `false` locally, a panic in CI.
fn skip(reason: &str) -> bool {
    if in_ci() {
        panic!("the OpenID provider tests cannot run: {reason} (CI=true: nothing is skipped)");
    }
    notice(&format!(
        "NOTICE: skipping the OpenID provider tests: {reason}"
    ));
    false
}

/// Straight to stderr, past the test harness's capture.
fn notice(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn tool_runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The `oidc-provider` version pinned in `tests/oidc/package.json`.
pub fn pinned_version() -> String {
    let path = oidc_dir().join("package.json");
    let package: Value = serde_json::from_slice(
        &fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    package["dependencies"]["oidc-provider"]
        .as_str()
        .unwrap_or_else(|| panic!("{} pins no oidc-provider", path.display()))
        .to_owned()
}

/// Whether a complete install of the pinned version is there: npm writes
/// `node_modules/.package-lock.json` when an install has finished, and
/// `npm ci` removes `node_modules` first.
fn installed(pinned: &str) -> bool {
    let modules = oidc_dir().join("node_modules");
    if !modules.join(".package-lock.json").is_file() {
        return false;
    }
    fs::read(modules.join("oidc-provider").join("package.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|package| package["version"] == pinned)
}

/// A lock file held while installing; removed when dropped.
struct InstallLock(PathBuf);

impl InstallLock {
    fn acquire() -> Self {
        let path = oidc_dir().join(".install.lock");
        let deadline = Instant::now() + INSTALL_LOCK_TIMEOUT;
        loop {
            match fs::File::create_new(&path) {
                Ok(_) => return Self(path),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let age = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok());
                    if age.is_some_and(|age| age > STALE_LOCK) {
                        notice(&format!("removing the stale lock {}", path.display()));
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "waited {INSTALL_LOCK_TIMEOUT:?} for {} (another npm ci?)",
                        path.display()
                    );
                    thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("creating {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Installs `tests/oidc` (`npm ci`) unless the pinned version is there
/// already; once per process, serialized across processes by a lock file.
/// Returns `false` after a notice when `node` or `npm` is missing outside CI.
pub fn ensure_installed() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(install)
}

fn install() -> bool {
    if !tool_runs("node") {
        return skip("`node` was not found (install Node.js 20 or later)");
    }
    let pinned = pinned_version();
    if installed(&pinned) {
        return true;
    }
    if !tool_runs("npm") {
        return skip("`npm` was not found");
    }
    let _lock = InstallLock::acquire();
    if installed(&pinned) {
        return true; // another process installed it meanwhile
    }
    let started = Instant::now();
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(oidc_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running npm ci: {e}"));
    assert!(
        output.status.success(),
        "npm ci in {} failed ({}):\n{}\n{}",
        oidc_dir().display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        installed(&pinned),
        "npm ci succeeded but oidc-provider {pinned} is not in {}",
        oidc_dir().join("node_modules").display()
    );
    notice(&format!(
        "installed oidc-provider {pinned} in {:.1?}",
        started.elapsed()
    ));
    true
}

/// Removes the key set folders of test processes that are gone (a `static`
/// provider is never dropped). Linux only: it asks `/proc`.
fn remove_dead_dirs() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Ok(entries) = fs::read_dir(env!("CARGO_TARGET_TMPDIR")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("oidc-"))
            .and_then(|n| n.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The client of an algorithm: `client-rs256`, `client-es256`, `client-eddsa`.
pub fn client_id(alg: &str) -> String {
    format!("client-{}", alg.to_ascii_lowercase())
}

/// The secret of a client.
pub fn client_secret(client_id: &str) -> String {
    format!("{client_id}-secret")
}

/// How a provider is configured; see `tests/oidc/provider.mjs`.
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    /// The algorithms of a generated key set (`RS256`, `ES256`, `EdDSA`);
    /// each gets a client ([`client_id`]) whose tokens it signs.
    pub algs: Vec<String>,
    /// The resource indicator the provider knows.
    pub resource: String,
    /// The `aud` of its access tokens (default: the resource).
    pub audience: Option<String>,
    /// The scopes of the resource server; others requested are dropped.
    pub scopes: String,
    /// Extra claims on every access token.
    pub claims: Option<Value>,
    /// Extra claims by client id, over `claims`.
    pub client_claims: serde_json::Map<String, Value>,
    /// The access token lifetime in seconds (default 300).
    pub access_token_ttl: Option<u64>,
    /// A private JWK Set to start with instead of generated keys.
    pub jwks: Option<Value>,
    /// The port (0: a free one).
    pub port: u16,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        Self {
            algs: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
            resource: "https://api.example.test".into(),
            audience: None,
            scopes: "read write admin".into(),
            claims: None,
            client_claims: serde_json::Map::new(),
            access_token_ttl: None,
            jwks: None,
            port: 0,
        }
    }
}

impl ProviderOptions {
    /// RS256, ES256 and EdDSA keys; resource `https://api.example.test`;
    /// scopes `read write admin`.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn algs(mut self, algs: &[&str]) -> Self {
        self.algs = algs.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = resource.to_owned();
        self
    }

    pub fn audience(mut self, audience: &str) -> Self {
        self.audience = Some(audience.to_owned());
        self
    }

    pub fn scopes(mut self, scopes: &str) -> Self {
        self.scopes = scopes.to_owned();
        self
    }

    /// Extra claims on every access token, e.g. `json!({"roles": ["ADMIN"]})`.
    pub fn claims(mut self, claims: Value) -> Self {
        self.claims = Some(claims);
        self
    }

    /// Extra claims on the access tokens of one client, over [`claims`](Self::claims).
    pub fn client_claims(mut self, client_id: &str, claims: Value) -> Self {
        self.client_claims.insert(client_id.to_owned(), claims);
        self
    }

    pub fn access_token_ttl(mut self, seconds: u64) -> Self {
        self.access_token_ttl = Some(seconds);
        self
    }

    /// Starts with this private JWK Set (each key with `kid` and `alg`).
    pub fn jwks(mut self, jwks: Value) -> Self {
        self.jwks = Some(jwks);
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
}

/// What a restart does with the key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// The same keys (and `kid`s).
    Keep,
    /// New keys for [`ProviderOptions::algs`]; the old ones are gone.
    Replace,
    /// New keys that sign from now on, the old ones still published after them.
    Rotate,
}

/// The answer of the token endpoint.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub status: u16,
    pub body: Value,
}

/// A running provider; see the [module docs](self).
#[derive(Debug)]
pub struct Provider {
    options: ProviderOptions,
    dir: PathBuf,
    issuer: String,
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
}

impl Provider {
    /// Installs if needed and starts a provider; `None` only when the tests
    /// are skipped (see [`ensure_installed`]). Panics on any other failure.
    pub async fn start(options: ProviderOptions) -> Option<Self> {
        if !ensure_installed() {
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        if NEXT.load(Ordering::Relaxed) == 0 {
            remove_dead_dirs();
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "oidc-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let mut provider = Self {
            options,
            dir,
            issuer: String::new(),
            child: None,
            stderr: Arc::default(),
        };
        if let Some(jwks) = &provider.options.jwks {
            provider.write_jwks(jwks);
        }
        provider.spawn(false).await;
        Some(provider)
    }

    /// `http://127.0.0.1:PORT`, the same across restarts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port the provider listens on.
    pub fn port(&self) -> u16 {
        self.options.port
    }

    /// The resource indicator the provider knows.
    pub fn resource(&self) -> &str {
        &self.options.resource
    }

    /// The `aud` of its access tokens.
    pub fn audience(&self) -> &str {
        self.options
            .audience
            .as_deref()
            .unwrap_or(&self.options.resource)
    }

    /// `{issuer}/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// The options, to change before a [`restart`](Self::restart) (the port
    /// stays).
    pub fn options_mut(&mut self) -> &mut ProviderOptions {
        &mut self.options
    }

    /// The private JWK Set file (read when the provider starts).
    pub fn jwks_path(&self) -> PathBuf {
        self.dir.join("jwks.json")
    }

    /// The private JWK Set in use.
    pub fn private_jwks(&self) -> Value {
        let path = self.jwks_path();
        serde_json::from_slice(
            &fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
        )
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    }

    /// The `kid`s of the key set, signing keys first.
    pub fn kids(&self) -> Vec<String> {
        self.private_jwks()["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["kid"].as_str().map(str::to_owned))
            .collect()
    }

    /// The `kid` that signs the tokens of `alg`.
    pub fn signing_kid(&self, alg: &str) -> String {
        self.private_jwks()["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|k| k["alg"] == alg)
            .and_then(|k| k["kid"].as_str())
            .unwrap_or_else(|| panic!("no {alg} key"))
            .to_owned()
    }

    /// Replaces the private JWK Set; takes effect with a
    /// [`restart`](Self::restart) keeping the keys.
    pub fn write_jwks(&self, jwks: &Value) {
        let path = self.jwks_path();
        fs::write(&path, serde_json::to_vec_pretty(jwks).unwrap())
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// The provider's stderr so far (warnings, server errors).
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether the provider process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// An access token (RFC 9068 `at+jwt`) of `alg`'s client by
    /// `client_credentials`, with the provider's resource indicator; panics
    /// unless the provider issues one.
    pub async fn token(&self, alg: &str, scope: &str) -> String {
        let resource = self.options.resource.clone();
        self.token_for(&client_id(alg), scope, Some(&resource))
            .await
    }

    /// Like [`token`](Self::token), for a client id and with any resource
    /// indicator (`None`: no `resource` parameter).
    pub async fn token_for(&self, client_id: &str, scope: &str, resource: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        let response = self.token_request(client_id, &form, &[]).await;
        assert_eq!(
            response.status,
            200,
            "the token endpoint refused: {}\nprovider log:\n{}",
            response.body,
            self.log()
        );
        response.body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {}", response.body))
            .to_owned()
    }

    /// `POST /token` with `form`, authenticated as `client_id`
    /// (`client_secret_basic`), with extra headers (e.g. `DPoP`).
    pub async fn token_request(
        &self,
        client_id: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> TokenResponse {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let basic = STANDARD.encode(format!("{client_id}:{}", client_secret(client_id)));
        let mut request = http::Request::post(self.token_endpoint())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .header("authorization", format!("Basic {basic}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        // A client per request: clients are tied to the runtime that made them.
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
            .await
            .expect("the token endpoint did not answer within 10 s")
            .unwrap_or_else(|e| panic!("POST {}: {e}", self.token_endpoint()));
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        TokenResponse { status, body }
    }

    /// Stops the provider (its port is free afterwards).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts the provider again on the same port (so with the same
    /// issuer), with the current [`options`](Self::options_mut).
    pub async fn restart(&mut self, keys: Keys) {
        self.stop();
        match keys {
            Keys::Keep => {}
            Keys::Replace => {
                let _ = fs::remove_file(self.jwks_path());
            }
            Keys::Rotate => {}
        }
        self.spawn(keys == Keys::Rotate).await;
    }

    async fn spawn(&mut self, rotate: bool) {
        let options = &self.options;
        let config = json!({
            "port": options.port,
            "algs": options.algs,
            "jwksFile": self.jwks_path(),
            "rotate": rotate,
            "resource": options.resource,
            "audience": options.audience,
            "scopes": options.scopes,
            "claims": options.claims,
            "clientClaims": options.client_claims,
            "accessTokenTtl": options.access_token_ttl,
        });
        let script = oidc_dir().join("provider.mjs");
        let spawned = Command::new("node")
            .arg(&script)
            .arg(config.to_string())
            .current_dir(oidc_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => panic!("starting node {}: {e}", script.display()),
        };

        let stderr = Arc::clone(&self.stderr);
        stderr.lock().unwrap().clear();
        let mut err_pipe = child.stderr.take().unwrap();
        let stderr_thread = thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = err_pipe.read(&mut buf) {
                stderr
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });

        // The READY line, read on a thread of its own: nothing here depends
        // on the runtime that started the provider.
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let out_pipe = child.stdout.take().unwrap();
        thread::spawn(move || {
            let mut lines = BufReader::new(out_pipe).lines();
            let mut ready_tx = Some(ready_tx);
            while let Some(Ok(line)) = lines.next() {
                if let Some(issuer) = line.strip_prefix("READY ")
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(issuer.to_owned());
                }
            }
        });

        let issuer = match tokio::time::timeout(START_TIMEOUT, ready_rx).await {
            Ok(Ok(issuer)) => issuer,
            outcome => {
                let _ = child.kill();
                let status = child.wait();
                let _ = stderr_thread.join();
                panic!(
                    "the OpenID provider did not start ({}; {status:?}); its stderr:\n{}",
                    if outcome.is_err() {
                        format!("no READY line within {START_TIMEOUT:?}")
                    } else {
                        "it exited".to_owned()
                    },
                    self.log()
                );
            }
        };
        let port = issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in the issuer {issuer:?}"));
        if !self.issuer.is_empty() {
            assert_eq!(issuer, self.issuer, "a restart changed the issuer");
        }
        self.issuer = issuer;
        self.options.port = port;
        self.child = Some(child);
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
