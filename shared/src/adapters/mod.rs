//! Adapters for the ports: local (SQLite) here; AWS (DynamoDB, SQS, Secrets Manager) beside
//! it. The vendor clients live in `crate::cliniko` and `crate::reckon`.

#[cfg(feature = "aws")]
pub mod aws;
pub mod sqlite;
pub mod state_file;
