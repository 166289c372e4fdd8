//! Adapters for the ports: local (SQLite) here; AWS (DynamoDB, SQS, Secrets Manager) beside
//! it. The vendor clients live in `crate::cliniko` and `crate::reckon`.

pub mod sqlite;
