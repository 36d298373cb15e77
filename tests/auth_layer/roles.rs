//! `RequireRoleLayer`: role, roles, scope, claim paths and hierarchy.

use serde_json::Value;
use tower::ServiceBuilder;
use tower_jwt_auth::{AuthErrorKind, RequireRoleLayer, RoleHierarchy};

use crate::support::*;

fn token_with(extra: &str) -> String {
    hs(HS_HEADER, &payload(extra))
}

#[tokio::test]
async fn single_role_string() {
    let admin = issuer().access_token("u").role("ADMIN").sign().unwrap();
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["ADMIN"]),
        bearer(admin.as_str())
    );
    assert_passed(&res, calls);
    assert_eq!(claims_of(&res).role, Some(Value::from("ADMIN")));

    for role in ["USER", "admin", "ADMIN ", "ADMINISTRATOR", ""] {
        let token = issuer().access_token("u").role(role).sign().unwrap();
        let (res, calls) = send_role!(
            layer(),
            RequireRoleLayer::any_of(["ADMIN"]),
            bearer(token.as_str())
        );
        assert_forbidden(&res, calls);
    }
    // No role claim at all.
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["ADMIN"]),
        bearer(&valid_token_without_role())
    );
    assert_forbidden(&res, calls);
}

fn valid_token_without_role() -> String {
    issuer().access_token("u").sign().unwrap().into_string()
}

#[tokio::test]
async fn role_claim_of_the_wrong_shape_grants_nothing() {
    for extra in [
        r#","role":1"#,
        r#","role":true"#,
        r#","role":{"ADMIN":true}"#,
        r#","role":[["ADMIN"]]"#,
        r#","role":null"#,
        r#","role":"USER ADMIN""#, // not space-delimited by default
    ] {
        let (res, calls) = send_role!(
            layer(),
            RequireRoleLayer::any_of(["ADMIN"]),
            bearer(&token_with(extra))
        );
        assert_forbidden(&res, calls);
    }
    // Non-strings inside an array are skipped, strings still count.
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["ADMIN"]),
        bearer(&token_with(r#","role":[1,null,"ADMIN"]"#))
    );
    assert_passed(&res, calls);
}

#[tokio::test]
async fn roles_array_claim() {
    let token = token_with(r#","roles":["reader","writer"]"#);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["writer"]).claim("roles"),
        bearer(&token)
    );
    assert_passed(&res, calls);
    // The default claim is `role`, not `roles`.
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["writer"]),
        bearer(&token)
    );
    assert_forbidden(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["admin"]).claim("roles"),
        bearer(&token)
    );
    assert_forbidden(&res, calls);
    // Issued by the crate with `.roles(...)`.
    let issued = issuer()
        .role_claim("roles")
        .access_token("u")
        .roles(["reader", "writer"])
        .sign()
        .unwrap();
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::all_of(["reader", "writer"]).claim("roles"),
        bearer(issued.as_str())
    );
    assert_passed(&res, calls);
}

#[tokio::test]
async fn all_of_versus_any_of() {
    let one = token_with(r#","role":["reader"]"#);
    let both = token_with(r#","role":["reader","writer"]"#);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["reader", "writer"]),
        bearer(&one)
    );
    assert_passed(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::all_of(["reader", "writer"]),
        bearer(&one)
    );
    assert_forbidden(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::all_of(["reader", "writer"]),
        bearer(&both)
    );
    assert_passed(&res, calls);
    // An empty requirement denies everything.
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(Vec::<String>::new()),
        bearer(&both)
    );
    assert_forbidden(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::all_of(Vec::<String>::new()),
        bearer(&both)
    );
    assert_forbidden(&res, calls);
}

#[tokio::test]
async fn scope_claim_is_space_delimited() {
    let token = token_with(r#","scope":"read  write""#);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["write"]).scope(),
        bearer(&token)
    );
    assert_passed(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::all_of(["read", "write"]).scope(),
        bearer(&token)
    );
    assert_passed(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::all_of(["read", "admin"]).scope(),
        bearer(&token)
    );
    assert_forbidden(&res, calls);
    // "read write" is not itself a scope.
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["read write"]).scope(),
        bearer(&token)
    );
    assert_forbidden(&res, calls);
    // Prefixes do not match.
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["wri"]).scope(),
        bearer(&token)
    );
    assert_forbidden(&res, calls);
}

#[tokio::test]
async fn nested_claim_path() {
    let token = token_with(r#","realm_access":{"roles":["admin","user"]}"#);
    let layer_for =
        |role: &str| RequireRoleLayer::any_of([role]).claim_path(["realm_access", "roles"]);
    let (res, calls) = send_role!(layer(), layer_for("admin"), bearer(&token));
    assert_passed(&res, calls);
    let (res, calls) = send_role!(layer(), layer_for("superuser"), bearer(&token));
    assert_forbidden(&res, calls);
    // A literal dotted claim name is not a path.
    let dotted = token_with(r#","realm_access.roles":["admin"]"#);
    let (res, calls) = send_role!(layer(), layer_for("admin"), bearer(&dotted));
    assert_forbidden(&res, calls);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["admin"]).claim("realm_access.roles"),
        bearer(&dotted)
    );
    assert_passed(&res, calls);
    // The path through a non-object grants nothing.
    let flat = token_with(r#","realm_access":["admin"]"#);
    let (res, calls) = send_role!(layer(), layer_for("admin"), bearer(&flat));
    assert_forbidden(&res, calls);
}

#[tokio::test]
async fn duplicate_names_on_the_claim_path_are_refused() {
    let layer_for =
        |role: &str| RequireRoleLayer::any_of([role]).claim_path(["realm_access", "roles"]);
    for extra in [
        // Last-wins would grant admin; first-wins would not: neither guesses.
        r#","realm_access":{"roles":["user"],"roles":["admin"]}"#,
        r#","realm_access":{"roles":["admin"],"roles":["user"]}"#,
        r#","realm_access":{"roles":["user"],"r\u006fles":["admin"]}"#,
        // Any repeated name in an object the layer reads.
        r#","realm_access":{"roles":["admin"],"x":1,"x":2}"#,
    ] {
        let token = token_with(extra);
        let (res, calls) = send_role!(layer(), layer_for("admin"), bearer(&token));
        assert_invalid_token(&res, calls, AuthErrorKind::DuplicateClaim);
    }
    // Repeats in objects the layer does not read are not its business.
    let token = token_with(r#","realm_access":{"roles":["admin"]},"other":{"a":1,"a":2}"#);
    let (res, calls) = send_role!(layer(), layer_for("admin"), bearer(&token));
    assert_passed(&res, calls);
    let token = token_with(r#","realm_access":{"roles":[{"a":1,"a":2},"admin"]}"#);
    let (res, calls) = send_role!(layer(), layer_for("admin"), bearer(&token));
    assert_passed(&res, calls);
}

#[tokio::test]
async fn role_hierarchy() {
    let hierarchy = RoleHierarchy::new()
        .grant("ADMIN", ["MANAGER"])
        .grant("MANAGER", ["USER"]);
    let role_token = |role: &str| {
        issuer()
            .access_token("u")
            .role(role)
            .sign()
            .unwrap()
            .into_string()
    };
    let needs = |role: &str| RequireRoleLayer::any_of([role]).hierarchy(hierarchy.clone());
    let (res, calls) = send_role!(layer(), needs("USER"), bearer(&role_token("ADMIN")));
    assert_passed(&res, calls);
    let (res, calls) = send_role!(layer(), needs("MANAGER"), bearer(&role_token("ADMIN")));
    assert_passed(&res, calls);
    let (res, calls) = send_role!(layer(), needs("ADMIN"), bearer(&role_token("USER")));
    assert_forbidden(&res, calls);
    let (res, calls) = send_role!(layer(), needs("ADMIN"), bearer(&role_token("MANAGER")));
    assert_forbidden(&res, calls);
    // A cyclic hierarchy terminates.
    let cyclic = RoleHierarchy::new().grant("A", ["B"]).grant("B", ["A"]);
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["C"]).hierarchy(cyclic),
        bearer(&role_token("A"))
    );
    assert_forbidden(&res, calls);
}

#[tokio::test]
async fn role_layer_without_authentication_never_passes() {
    let admin = issuer().access_token("u").role("ADMIN").sign().unwrap();
    // No JwtAuthLayer at all: even a valid admin token is not enough.
    let (res, calls) = send!(RequireRoleLayer::any_of(["ADMIN"]), bearer(admin.as_str()));
    assert_missing_credentials(&res, calls);
    let (res, calls) = send!(RequireRoleLayer::any_of(["ADMIN"]), no_auth());
    assert_missing_credentials(&res, calls);
    // Misordered: the role layer outside the authentication layer.
    let (res, calls) = send!(
        ServiceBuilder::new()
            .layer(RequireRoleLayer::any_of(["ADMIN"]))
            .layer(layer()),
        bearer(admin.as_str())
    );
    assert_missing_credentials(&res, calls);
    // Optional mode without a token.
    let (res, calls) = send_role!(
        optional_layer(),
        RequireRoleLayer::any_of(["ADMIN"]),
        no_auth()
    );
    assert_missing_credentials(&res, calls);
    // Optional mode with the token: passes.
    let (res, calls) = send_role!(
        optional_layer(),
        RequireRoleLayer::any_of(["ADMIN"]),
        bearer(admin.as_str())
    );
    assert_passed(&res, calls);
}

#[tokio::test]
async fn authentication_failure_comes_before_the_role_check() {
    let (res, calls) = send_role!(
        layer(),
        RequireRoleLayer::any_of(["ADMIN"]),
        bearer(&hs(HS_HEADER, &with_exp("0")))
    );
    assert_invalid_token(&res, calls, AuthErrorKind::Expired);
    let (res, calls) = send_role!(layer(), RequireRoleLayer::any_of(["ADMIN"]), no_auth());
    assert_missing_credentials(&res, calls);
}
