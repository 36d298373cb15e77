//! Provider mode of `examples/axum_server/` (`OIDC_ISSUER`, `JWKS_URL`,
//! `ROLE_CLAIM`, `ADMIN_ROLE`, `JWKS_LAZY`), driven in memory with the
//! tokens of a real OpenID provider (`tests/support/oidc.rs`).

#[path = "../examples/axum_server/main.rs"]
#[allow(dead_code)]
mod axum_server;

#[path = "support/oidc.rs"]
mod oidc;
#[path = "support/dpop.rs"]
mod proofs;

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tower::ServiceExt;
use tower_jwt_auth::{Verifier, keys::RemoteJwks, refresh::MemoryStore};

use axum_server::{
    AppState, Config, app,
    config::{ProviderConfig, ProviderKeys, RoleClaim},
};
use oidc::{Provider, ProviderOptions};

/// The audience of both providers' tokens (their default resource).
const AUDIENCE: &str = "https://api.example.test";

const INSUFFICIENT_SCOPE: &str = r#"Bearer realm="tower-jwt-auth-example", error="insufficient_scope", error_description="the token lacks the required role""#;

/// Provider A: per client, roles in every form `ROLE_CLAIM` reads.
/// `client-rs256` is an administrator, `client-es256` a plain user, and
/// `client-eddsa` has no role claim at all.
async fn idp_a() -> Option<&'static Provider> {
    static IDP: OnceCell<Option<Provider>> = OnceCell::const_new();
    IDP.get_or_init(|| {
        Provider::start(
            ProviderOptions::new()
                .client_claims(
                    "client-rs256",
                    json!({
                        "role": "ADMIN",
                        "realm_access": {"roles": ["USER", "ADMIN"]},
                        "resource_access": {"my-client": {"roles": ["api-admin"]}},
                        "https://example.com/roles": ["ADMIN"],
                    }),
                )
                .client_claims(
                    "client-es256",
                    json!({
                        "role": "USER",
                        "realm_access": {"roles": ["USER"]},
                        "resource_access": {"my-client": {"roles": ["viewer"]}},
                        "https://example.com/roles": ["USER"],
                    }),
                ),
        )
    })
    .await
    .as_ref()
}

/// Provider B: another issuer, ES256 only, no role claims.
async fn idp_b() -> Option<&'static Provider> {
    static IDP: OnceCell<Option<Provider>> = OnceCell::const_new();
    IDP.get_or_init(|| Provider::start(ProviderOptions::new().algs(&["ES256"])))
        .await
        .as_ref()
}

fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or(std::env::VarError::NotPresent)
    })
}

fn provider_config(vars: &[(&str, &str)]) -> ProviderConfig {
    config(vars).unwrap().provider.expect("provider mode")
}

/// The example's state for `vars`, its keys loaded (unless lazy).
async fn state(vars: &[(&str, &str)]) -> AppState {
    AppState::from_config(&config(vars).unwrap(), Arc::new(MemoryStore::new()))
        .await
        .unwrap()
}

async fn router(vars: &[(&str, &str)]) -> Router {
    app(state(vars).await)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    fn challenge(&self) -> Option<&str> {
        self.headers
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap())
    }
}

async fn send(app: &Router, method: Method, uri: &str, token: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}

async fn get(app: &Router, uri: &str, token: &str) -> Reply {
    send(app, Method::GET, uri, Some(token)).await
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn sub(token: &str) -> String {
    payload(token)["sub"].as_str().unwrap().to_owned()
}

/// `GET /users/me` answers exactly `expected`.
async fn assert_me(app: &Router, token: &str, expected: Value) {
    let reply = get(app, "/users/me", token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), expected);
}

/// `GET /admin/users` answers 200 with the demo users.
async fn assert_admin(app: &Router, token: &str) {
    let reply = get(app, "/admin/users", token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json().as_array().map(Vec::len), Some(2));
}

/// `GET /admin/users` answers 403 with the exact `insufficient_scope` challenge.
async fn assert_not_admin(app: &Router, token: &str) {
    let reply = get(app, "/admin/users", token).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert_eq!(reply.challenge(), Some(INSUFFICIENT_SCOPE));
    assert_eq!(
        reply.json(),
        json!({"error": "insufficient_scope", "error_description": "the token lacks the required role"})
    );
}

#[tokio::test]
async fn two_oidc_issuers_are_both_accepted_each_with_its_own_keys() {
    let (Some(a), Some(b)) = (idp_a().await, idp_b().await) else {
        return;
    };
    let issuers = format!("{}, {}", a.issuer(), b.issuer());
    let app = router(&[("OIDC_ISSUER", &issuers), ("JWT_AUDIENCE", AUDIENCE)]).await;

    let from_a = a.token("EdDSA", "read").await;
    let from_b = b.token("ES256", "read").await;
    assert_eq!(payload(&from_a)["iss"], a.issuer());
    assert_eq!(payload(&from_b)["iss"], b.issuer());
    for token in [&from_a, &from_b] {
        // No role claim: still a valid token for /users/me, not an admin.
        assert_me(&app, token, json!({"id": sub(token)})).await;
        assert_not_admin(&app, token).await;
    }
    // The default ROLE_CLAIM (`role`) and ADMIN_ROLE (`ADMIN`).
    let admin = a.token("RS256", "read").await;
    assert_me(&app, &admin, json!({"id": "client-rs256", "role": "ADMIN"})).await;
    assert_admin(&app, &admin).await;
    let user = a.token("ES256", "read").await;
    assert_me(&app, &user, json!({"id": "client-es256", "role": "USER"})).await;
    assert_not_admin(&app, &user).await;

    // Only the configured issuers: A alone refuses B's tokens.
    let only_a = router(&[("OIDC_ISSUER", a.issuer()), ("JWT_AUDIENCE", AUDIENCE)]).await;
    assert_eq!(
        get(&only_a, "/users/me", &from_b).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_me(&only_a, &from_a, json!({"id": sub(&from_a)})).await;

    // And tokens must name JWT_AUDIENCE.
    let other_audience = router(&[("OIDC_ISSUER", &issuers)]).await;
    let reply = get(&other_audience, "/users/me", &from_a).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge(),
        Some(
            r#"Bearer realm="tower-jwt-auth-example", error="invalid_token", error_description="the token audience is not accepted""#
        )
    );
}

#[tokio::test]
async fn several_jwks_urls_pair_with_the_jwt_issuer_list() {
    let (Some(a), Some(b)) = (idp_a().await, idp_b().await) else {
        return;
    };
    let jwks_url = |issuer: String| async move {
        let remote = RemoteJwks::discover(issuer).build().await.unwrap();
        remote.jwks_url().unwrap().to_owned()
    };
    let urls = format!(
        "{},{}",
        jwks_url(a.issuer().to_owned()).await,
        jwks_url(b.issuer().to_owned()).await
    );
    let issuers = format!("{},{}", a.issuer(), b.issuer());
    let app = router(&[
        ("JWKS_URL", &urls),
        ("JWT_ISSUER", &issuers),
        ("JWT_AUDIENCE", AUDIENCE),
    ])
    .await;
    for token in [
        a.token("EdDSA", "read").await,
        b.token("ES256", "read").await,
    ] {
        assert_me(&app, &token, json!({"id": sub(&token)})).await;
    }

    // Paired the wrong way round, each issuer's tokens meet the other's keys.
    let swapped = format!("{},{}", b.issuer(), a.issuer());
    let app = router(&[
        ("JWKS_URL", &urls),
        ("JWT_ISSUER", &swapped),
        ("JWT_AUDIENCE", AUDIENCE),
    ])
    .await;
    let reply = get(&app, "/users/me", &a.token("EdDSA", "read").await).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

/// For each form of `ROLE_CLAIM`: an administrator's token gets 200 on
/// `/admin/users`, a user's and a role-less one the exact 403; all get 200
/// on `/users/me`.
#[tokio::test]
async fn role_claim_takes_a_dotted_path_a_url_named_claim_or_scope() {
    let Some(a) = idp_a().await else { return };
    let admin = a.token("RS256", "read").await;
    let user = a.token("ES256", "read").await;
    let no_role = a.token("EdDSA", "read write").await;

    for (role_claim, admin_role) in [
        ("realm_access.roles", "ADMIN"),
        ("resource_access.my-client.roles", "api-admin"),
        ("https://example.com/roles", "ADMIN"),
    ] {
        let app = router(&[
            ("OIDC_ISSUER", a.issuer()),
            ("JWT_AUDIENCE", AUDIENCE),
            ("ROLE_CLAIM", role_claim),
            ("ADMIN_ROLE", admin_role),
        ])
        .await;
        assert_admin(&app, &admin).await;
        assert_not_admin(&app, &user).await;
        assert_not_admin(&app, &no_role).await;
        assert_me(&app, &no_role, json!({"id": "client-eddsa"})).await;
        assert_me(&app, &user, json!({"id": "client-es256", "role": "USER"})).await;
    }

    // `scope`: the scopes of the token, space-delimited.
    let app = router(&[
        ("OIDC_ISSUER", a.issuer()),
        ("JWT_AUDIENCE", AUDIENCE),
        ("ROLE_CLAIM", "scope"),
        ("ADMIN_ROLE", "admin"),
    ])
    .await;
    let scoped_admin = a.token("EdDSA", "read admin").await;
    assert_eq!(payload(&scoped_admin)["scope"], "read admin");
    assert_admin(&app, &scoped_admin).await;
    assert_not_admin(&app, &no_role).await;
    // A `role` claim does not count here.
    assert_not_admin(&app, &admin).await;
    assert_me(&app, &scoped_admin, json!({"id": "client-eddsa"})).await;
}

/// With `JWKS_LAZY=1` the server starts while the provider is down and
/// answers 503 until the keys arrive; then the provider's tokens pass.
#[tokio::test]
async fn lazy_keys_answer_503_until_the_provider_is_up() {
    if !oidc::ensure_installed() {
        return;
    }
    // A port free now, so the issuer is known before the provider runs.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let state = state(&[
        ("OIDC_ISSUER", &issuer),
        ("JWT_AUDIENCE", AUDIENCE),
        ("JWKS_LAZY", "1"),
    ])
    .await;
    let verifier = state.provider.as_ref().unwrap().verifier.clone();
    assert!(!verifier.is_ready());
    let app = app(state);

    // A well-formed token of that issuer: there is nothing to verify it with yet.
    let token = unverifiable_token(&issuer);
    for uri in ["/users/me", "/admin/users"] {
        let reply = get(&app, uri, &token).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            reply.text(),
            r#"{"error":"temporarily_unavailable","error_description":"authentication is temporarily unavailable"}"#
        );
        assert_eq!(reply.challenge(), None);
    }

    let Some(idp) = Provider::start(ProviderOptions::new().algs(&["ES256"]).port(port)).await
    else {
        return;
    };
    assert_eq!(idp.issuer(), issuer);
    wait_ready(&verifier).await;

    let token = idp.token("ES256", "read").await;
    assert_me(&app, &token, json!({"id": "client-es256"})).await;
    assert_not_admin(&app, &token).await;
}

/// Waits (a bounded real-time wait: the provider is another process) until
/// the background fetch, retried with backoff, has the keys.
async fn wait_ready(verifier: &Verifier) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !verifier.is_ready() {
        assert!(
            Instant::now() < deadline,
            "the keys did not arrive within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A token of `issuer` with a made-up signature.
fn unverifiable_token(issuer: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "not-yet-known"});
    let claims =
        json!({"iss": issuer, "sub": "someone", "aud": AUDIENCE, "iat": now, "exp": now + 300});
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(&header),
        part(&claims),
        URL_SAFE_NO_PAD.encode([7u8; 64])
    )
}

/// Tokens, sessions and accounts are the provider's: those routes are 404,
/// with or without a token.
#[tokio::test]
async fn routes_of_local_tokens_and_sessions_are_404_in_provider_mode() {
    // Lazy, towards a port nothing listens on: no provider needed.
    let app = router(&[("OIDC_ISSUER", "http://127.0.0.1:1"), ("JWKS_LAZY", "1")]).await;
    let expected = json!({
        "error": "not_found",
        "error_description":
            "this server issues no tokens and keeps no sessions: use the identity provider for them",
    });
    for (method, uri) in [
        (Method::POST, "/users/login"),
        (Method::POST, "/users/refresh"),
        (Method::POST, "/users/logout"),
        (Method::POST, "/users/logout-all"),
        (Method::GET, "/users/sessions"),
        (Method::PUT, "/users"),
    ] {
        for token in [None, Some("anything")] {
            let reply = send(&app, method.clone(), uri, token).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {uri}");
            assert_eq!(reply.json(), expected, "{method} {uri}");
        }
    }
}

#[test]
fn provider_variables_are_parsed_into_issuers_and_a_role_claim() {
    let provider = provider_config(&[
        (
            "OIDC_ISSUER",
            "https://a.example.com, https://b.example.com/realms/x",
        ),
        (
            "JWKS_URL",
            "https://c.example.com/jwks,https://d.example.com/jwks",
        ),
        ("JWT_ISSUER", "issuer-c, issuer-d"),
    ]);
    assert_eq!(
        provider,
        ProviderConfig {
            issuers: vec![
                ProviderKeys::OidcIssuer("https://a.example.com".into()),
                ProviderKeys::OidcIssuer("https://b.example.com/realms/x".into()),
                ProviderKeys::JwksUrl {
                    url: "https://c.example.com/jwks".into(),
                    issuer: "issuer-c".into(),
                },
                ProviderKeys::JwksUrl {
                    url: "https://d.example.com/jwks".into(),
                    issuer: "issuer-d".into(),
                },
            ],
            role_claim: RoleClaim::Claim("role".into()),
            admin_role: "ADMIN".into(),
            lazy: false,
        }
    );
    // One JWK Set keeps the JWT_ISSUER default.
    assert_eq!(
        provider_config(&[("JWKS_URL", "https://c.example.com/jwks")]).issuers,
        [ProviderKeys::JwksUrl {
            url: "https://c.example.com/jwks".into(),
            issuer: "tower-jwt-auth-example".into(),
        }]
    );

    let role_claim = |value: &str| {
        provider_config(&[
            ("OIDC_ISSUER", "https://a.example.com"),
            ("ROLE_CLAIM", value),
        ])
        .role_claim
    };
    assert_eq!(
        role_claim("realm_access.roles"),
        RoleClaim::Path(vec!["realm_access".into(), "roles".into()])
    );
    assert_eq!(
        role_claim("resource_access.my-client.roles"),
        RoleClaim::Path(vec![
            "resource_access".into(),
            "my-client".into(),
            "roles".into()
        ])
    );
    assert_eq!(
        role_claim("https://example.com/roles"),
        RoleClaim::Claim("https://example.com/roles".into())
    );
    assert_eq!(role_claim("groups"), RoleClaim::Claim("groups".into()));
    assert_eq!(role_claim("scope"), RoleClaim::Scope);

    let lazy = provider_config(&[
        ("OIDC_ISSUER", "https://a.example.com"),
        ("JWKS_LAZY", "1"),
        ("ADMIN_ROLE", "api-admin"),
    ]);
    assert!(lazy.lazy);
    assert_eq!(lazy.admin_role, "api-admin");
}

#[test]
fn bad_provider_combinations_are_clear_errors() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("OIDC_ISSUER", "https://a.example.com,idp.example.com")],
            r#"OIDC_ISSUER entry "idp.example.com" is not an http(s) URL such as https://idp.example.com/realms/main"#,
        ),
        (
            &[("JWKS_URL", "https://a.example.com/jwks,ftp://b/jwks")],
            r#"JWKS_URL entry "ftp://b/jwks" is not an http(s) URL such as https://idp.example.com/realms/main"#,
        ),
        (
            &[("OIDC_ISSUER", "https://a.example.com,")],
            r#"OIDC_ISSUER="https://a.example.com," has an empty entry: expected a comma-separated list"#,
        ),
        (
            &[
                (
                    "JWKS_URL",
                    "https://a.example.com/jwks,https://b.example.com/jwks",
                ),
                ("JWT_ISSUER", "issuer-a"),
            ],
            "JWKS_URL lists 2 JWK Sets but JWT_ISSUER lists 1 issuer(s): \
             give JWT_ISSUER one issuer per JWKS_URL entry, in the same order",
        ),
        (
            &[(
                "JWKS_URL",
                "https://a.example.com/jwks,https://b.example.com/jwks",
            )],
            "JWKS_URL lists 2 JWK Sets but JWT_ISSUER lists 0 issuer(s): \
             give JWT_ISSUER one issuer per JWKS_URL entry, in the same order",
        ),
        (
            &[
                ("OIDC_ISSUER", "https://a.example.com"),
                ("JWT_ISSUER", "https://a.example.com"),
            ],
            "JWT_ISSUER is not used with OIDC_ISSUER: each OIDC_ISSUER entry is an issuer \
             (and its discovery document must name it); unset JWT_ISSUER",
        ),
        (
            &[
                ("OIDC_ISSUER", "https://a.example.com"),
                ("JWKS_URL", "https://a.example.com/jwks"),
                ("JWT_ISSUER", "https://a.example.com"),
            ],
            r#"the issuer "https://a.example.com" is configured twice"#,
        ),
        (
            &[
                ("OIDC_ISSUER", "https://a.example.com"),
                ("ROLE_CLAIM", "realm_access..roles"),
            ],
            r#"ROLE_CLAIM="realm_access..roles" has an empty path segment: expected a claim name, a dotted path such as realm_access.roles, a URL-named claim or scope"#,
        ),
        (
            &[("OIDC_ISSUER", "https://a.example.com"), ("ROLE_CLAIM", "")],
            "ROLE_CLAIM must not be empty",
        ),
        (
            &[
                ("OIDC_ISSUER", "https://a.example.com"),
                ("ROLE_CLAIM", "scope"),
                ("ADMIN_ROLE", "api admin"),
            ],
            r#"ADMIN_ROLE="api admin" has a space, so no scope can match it (ROLE_CLAIM=scope)"#,
        ),
        (
            &[
                ("OIDC_ISSUER", "https://a.example.com"),
                ("JWKS_LAZY", "yes"),
            ],
            r#"JWKS_LAZY="yes": expected 1 or 0"#,
        ),
        (
            &[("ROLE_CLAIM", "realm_access.roles")],
            "ROLE_CLAIM applies only in provider mode (with OIDC_ISSUER or JWKS_URL); \
             this server's own tokens carry `role`",
        ),
        (
            &[("JWKS_LAZY", "1")],
            "JWKS_LAZY applies only in provider mode (with OIDC_ISSUER or JWKS_URL); \
             this server's own tokens carry `role`",
        ),
    ];
    for (vars, expected) in cases {
        assert_eq!(config(vars).err().as_deref(), Some(*expected), "{vars:?}");
    }
}

/// Without `JWKS_LAZY`, an unreachable provider stops the start-up, and the
/// error names the issuer.
#[tokio::test]
async fn an_unreachable_provider_names_its_issuer() {
    let config = config(&[(
        "OIDC_ISSUER",
        "http://127.0.0.1:1/realms/a,http://127.0.0.1:1/realms/b",
    )])
    .unwrap();
    let error = AppState::from_config(&config, Arc::new(MemoryStore::new()))
        .await
        .err()
        .unwrap();
    assert!(
        error.starts_with(
            r#"cannot load the provider's keys (issuer "http://127.0.0.1:1/realms/a"): "#
        ),
        "{error}"
    );
}

/// A token of `idp`'s client `client_id` bound (DPoP) to the key `name` of `keys`.
async fn dpop_token(idp: &Provider, client_id: &str, keys: &Value, name: &str) -> String {
    let proof = proofs::proof(
        keys,
        json!({"key": name, "htm": "POST", "htu": idp.token_endpoint()}),
    );
    let resource = idp.resource().to_owned();
    let response = idp
        .token_request(
            client_id,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read"),
                ("resource", &resource),
            ],
            &[("DPoP", &proof)],
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["token_type"], "DPoP");
    response.body["access_token"].as_str().unwrap().to_owned()
}

/// `GET uri` with `Authorization: DPoP <token>` and a proof by `key` made by `jose`.
async fn get_dpop(app: &Router, uri: &str, token: &str, keys: &Value, key: &str) -> Reply {
    let htu = format!("https://api.example.test{uri}");
    let proof = proofs::proof(
        keys,
        json!({"key": key, "htm": "GET", "htu": htu, "accessToken": token}),
    );
    let request = Request::get(uri)
        .header(header::AUTHORIZATION, format!("DPoP {token}"))
        .header("DPoP", proof)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}

#[tokio::test]
async fn dpop_bound_tokens_with_proofs_pass_every_protected_route() {
    let Some(a) = idp_a().await else { return };
    let app = router(&[
        ("OIDC_ISSUER", a.issuer()),
        ("JWT_AUDIENCE", AUDIENCE),
        ("PUBLIC_URL", "https://api.example.test"),
    ])
    .await;
    let keys = proofs::keys(&[("k", "ES256"), ("other", "ES256")]);
    // The administrator client's token, bound to `k`.
    let token = dpop_token(a, "client-rs256", &keys, "k").await;
    assert_eq!(
        payload(&token)["cnf"]["jkt"],
        proofs::thumbprint(&keys, "k").as_str()
    );
    let me = get_dpop(&app, "/users/me", &token, &keys, "k").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["id"], "client-rs256");
    let admin = get_dpop(&app, "/admin/users", &token, &keys, "k").await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.text());

    // Without the key: another key's proof, or no proof at all.
    let stolen = get_dpop(&app, "/users/me", &token, &keys, "other").await;
    assert_eq!(stolen.status, StatusCode::UNAUTHORIZED);
    let as_bearer = get(&app, "/users/me", &token).await;
    assert_eq!(as_bearer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        as_bearer.challenge(),
        Some(
            r#"Bearer realm="tower-jwt-auth-example", error="invalid_token", error_description="the token must be presented with a DPoP proof""#
        )
    );
}

#[tokio::test]
async fn provider_mode_serves_its_resource_metadata() {
    let (Some(a), Some(b)) = (idp_a().await, idp_b().await) else {
        return;
    };
    let issuers = format!("{}, {}", a.issuer(), b.issuer());
    let app = router(&[("OIDC_ISSUER", &issuers), ("JWT_AUDIENCE", AUDIENCE)]).await;
    let reply = send(
        &app,
        Method::GET,
        "/.well-known/oauth-protected-resource",
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["resource"], AUDIENCE);
    assert_eq!(
        json["authorization_servers"],
        json!([a.issuer(), b.issuer()])
    );
    assert_eq!(json["bearer_methods_supported"], json!(["header"]));
    assert_eq!(
        json["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "EdDSA", "PS256", "RS256"])
    );
}
