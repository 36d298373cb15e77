//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) on stable:
//! every input runs through the same code as its fuzz target
//! (`fuzz/src/lib.rs`, included here as a module) and must not panic.
//!
//! The fuzz crate is its own workspace and needs nightly and libFuzzer;
//! this test needs neither. See `fuzz/README.md` to run the fuzzers.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::{
    fs,
    panic::{AssertUnwindSafe, catch_unwind},
    path::PathBuf,
};

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no corpus at {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus {} is empty", dir.display());
    let mut failed = Vec::new();
    for file in &files {
        let data = fs::read(file).unwrap();
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs of {target} panicked: {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn verify() {
    replay("verify", harness::verify);
}

#[test]
fn extract() {
    replay("extract", harness::extract);
}

#[test]
fn refresh_endpoint() {
    replay("refresh_endpoint", harness::refresh_endpoint);
}

#[test]
fn jwk_set() {
    replay("jwk_set", harness::jwk_set);
}
