//! The Cliniko → Reckon One sync as a library: domain types, the two vendor clients, pure
//! mapping functions, ports (small traits) with their adapters, and the pipeline steps the
//! CLI and the Lambda functions share. How it fits together: README.md (How it works) and
//! docs/vendor-apis.md for what the two APIs do.

pub mod adapters;
pub mod cliniko;
pub mod config;
pub mod domain;
pub mod mapping;
pub mod pipeline;
pub mod ports;
pub mod preview;
pub mod reckon;
pub mod reconcile;
