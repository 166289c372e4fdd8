//! Ports: the small traits the pipeline steps are written against. Adapters implement them:
//! the Cliniko and Reckon clients (`crate::cliniko`, `crate::reckon`), SQLite for local
//! mode (`crate::adapters::sqlite`), and AWS (DynamoDB, SQS, Secrets Manager) for Lambda.
//!
//! Futures are `Send` so the same steps run inside Lambda handlers and tokio tasks.
//!
//! One file per capability; each port's errors say what a failure means for the work
//! (`ErrorClass`: retry, park, or stop the tenant), and each port has an in-memory twin in
//! `crate::adapters::memory` (or SQLite in memory for the state) for tests.

mod error;
mod queue;
mod reports;
mod sink;
mod source;
mod state;
mod tenants;
mod tokens;

pub use error::{ErrorClass, SinkError, SourceError};
pub use queue::*;
pub use reports::*;
pub use sink::*;
pub use source::*;
pub use state::*;
pub use tenants::*;
pub use tokens::*;
