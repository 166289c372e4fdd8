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
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/apis")
}
