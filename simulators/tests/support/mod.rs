//! Test support shared by the simulator test binaries.
#![allow(dead_code)]

pub mod cliniko;
pub mod openapi;

use std::path::PathBuf;

/// The vendor descriptions: `../shared/apis` beside the repository (override with `APIS_DIR`).
pub fn apis_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("APIS_DIR") {
        return PathBuf::from(dir);
    }
    // The crate directory at run time (cargo and nextest set it), so a build directory
    // shared between clones does not pin the clone that compiled the test.
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    PathBuf::from(crate_dir).join("../../shared/apis")
}
