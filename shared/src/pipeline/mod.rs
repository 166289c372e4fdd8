//! The pipeline steps shared by the CLI and the Lambda functions: `poll_once` (Cliniko
//! changes → work queue), `Syncer::apply` (one record → Reckon) and what happens to a
//! record that failed (`disposition`), plus the local runner that drains the SQLite queue in
//! one process.

pub mod accounts;
mod apply;
pub mod disposition;
pub mod local;
mod poll;
pub mod requeue;

pub use apply::{Applied, Syncer};
pub use poll::{
    Parked, PollConfig, PollFailure, PollReport, PollRound, poll_every_kind, poll_once,
};

use crate::domain::ClinikoId;
use crate::mapping::MappingError;
use crate::ports::{ErrorClass, SinkError, SourceError, StateError};
use rust_decimal::Decimal;

/// Why a pipeline step failed; `is_retryable` decides between "try again later" and "park
/// it for a person" (DLQ, failures table, report).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("missing dependency: {0}")]
    MissingDependency(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// Another worker is creating this record right now: try again shortly.
    #[error("in progress elsewhere: {0}")]
    InProgress(String),
    #[error(
        "invoice {invoice}: Reckon computed total {reckon_total} and tax {reckon_tax}, Cliniko has {cliniko_total} and {cliniko_tax}"
    )]
    TotalsMismatch {
        invoice: ClinikoId,
        reckon_total: Decimal,
        cliniko_total: Decimal,
        reckon_tax: Decimal,
        cliniko_tax: Decimal,
    },
    #[error("internal: {0}")]
    Internal(String),
}

impl PipelineError {
    pub fn is_retryable(&self) -> bool {
        match self {
            PipelineError::Source(e) => e.is_retryable(),
            PipelineError::Sink(e) => e.is_retryable(),
            PipelineError::State(e) => e.is_retryable(),
            PipelineError::InProgress(_) => true,
            PipelineError::Mapping(_)
            | PipelineError::MissingDependency(_)
            | PipelineError::Conflict(_)
            | PipelineError::TotalsMismatch { .. }
            | PipelineError::Internal(_) => false,
        }
    }

    /// Whether the whole tenant cannot go on (its Reckon connection is revoked or spent),
    /// rather than this one record.
    pub fn stops_tenant(&self) -> bool {
        match self {
            PipelineError::Source(e) => e.class() == ErrorClass::StopTenant,
            PipelineError::Sink(e) => e.class() == ErrorClass::StopTenant,
            _ => false,
        }
    }
}
