//! Test support shared by the simulator test binaries.
#![allow(dead_code)]

pub mod cliniko;
pub mod openapi;

use std::path::PathBuf;

/// The vendors' OpenAPI descriptions (`cliniko/openapi.yaml`, `reckon-one/openapi.yaml`):
/// `APIS_DIR` when set (scripts/test sets it), else the copy `scripts/vendor-apis` keeps in
/// `~/.cache/cliniko-reckon/apis`. A missing description fails the test, never skips it.
pub fn apis_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("APIS_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    let cached = PathBuf::from(home).join(".cache/cliniko-reckon/apis");
    assert!(
        cached.join("cliniko/openapi.yaml").is_file(),
        "the vendor API descriptions are missing: run scripts/vendor-apis (or set APIS_DIR)"
    );
    cached
}

/// The vendors' example payloads, kept in the repository (`fixtures/vendor-examples`).
pub fn examples_dir() -> PathBuf {
    // The crate directory at run time (cargo and nextest set it), so a build directory
    // shared between clones does not pin the clone that compiled the test.
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    PathBuf::from(crate_dir).join("../fixtures/vendor-examples")
}
