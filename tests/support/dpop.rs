//! DPoP proofs made by `jose` (tests/oidc/dpop-proof.mjs), a JOSE library
//! this crate does not use: the proofs the tests send are an independent
//! implementation's.
//!
//! Needs `mod oidc` (tests/support/oidc.rs) beside it, for the npm install.

#![allow(dead_code)]

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::oidc;

/// Runs the script with `keys` (names to algorithms or private JWKs) and
/// `proofs` (see the script); returns its output: `keys`, `public`,
/// `thumbprints` and `proofs`.
pub fn run(keys: &Value, proofs: &[Value]) -> Value {
    let input = json!({ "keys": keys, "proofs": proofs });
    let script = oidc::oidc_dir().join("dpop-proof.mjs");
    let output = Command::new("node")
        .arg(&script)
        .arg(input.to_string())
        .current_dir(oidc::oidc_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running node {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

/// New key pairs: `{name: alg}` → `{name: private JWK}`.
pub fn keys(algs: &[(&str, &str)]) -> Value {
    let spec: serde_json::Map<String, Value> = algs
        .iter()
        .map(|(name, alg)| ((*name).to_owned(), Value::from(*alg)))
        .collect();
    run(&Value::Object(spec), &[])["keys"].clone()
}

/// The proofs of `specs`, by the keys `keys` (private JWKs).
pub fn proofs(keys: &Value, specs: &[Value]) -> Vec<String> {
    run(keys, specs)["proofs"]
        .as_array()
        .expect("proofs")
        .iter()
        .map(|p| p.as_str().expect("a proof").to_owned())
        .collect()
}

/// One proof.
pub fn proof(keys: &Value, spec: Value) -> String {
    proofs(keys, &[spec]).remove(0)
}

/// The RFC 7638 thumbprint `jose` computes for the key `name`.
pub fn thumbprint(keys: &Value, name: &str) -> String {
    run(keys, &[])["thumbprints"][name]
        .as_str()
        .expect("a thumbprint")
        .to_owned()
}
