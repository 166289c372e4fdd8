//! Adapters for the ports: local (SQLite, a report folder) here; AWS (DynamoDB, SQS,
//! Secrets Manager) beside it; in-memory twins of Cliniko and Reckon for tests. The vendor
//! clients live in `crate::cliniko` and `crate::reckon`.

#[cfg(feature = "aws")]
pub mod aws;
pub mod memory;
pub mod report_dir;
pub mod sqlite;
pub mod state_file;
