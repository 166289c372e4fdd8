//! Local stand-ins for the two vendor APIs the sync talks to: Cliniko v1 (the source) and
//! Reckon One v2 (the target). Each runs in-process on a loopback port for tests, or as a
//! binary (`cliniko-sim`, `reckon-sim`). Built from the vendors' OpenAPI descriptions and
//! documentation; what they say is summarised in docs/vendor-apis.md.

pub mod cliniko;
pub mod common;
pub mod generator;
pub mod reckon;
