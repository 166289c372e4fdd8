//! Adapters for the ports: local (SQLite, a report folder) here; AWS (DynamoDB, SQS,
//! Secrets Manager) beside it; in-memory twins of Cliniko and Reckon for tests. The vendor
//! clients live in `crate::cliniko` and `crate::reckon`.

#[cfg(feature = "aws")]
pub mod aws;
pub mod memory;
pub mod report_dir;
pub mod sqlite;
pub mod state_file;

/// Every rendering of a report as a report sink stores it, a rendering failure as a state
/// error (it is not retryable: the same report fails again).
pub(crate) fn report_files(
    report: &crate::reconcile::ReconcileReport,
    zone: chrono_tz::Tz,
) -> Result<Vec<(String, &'static str, String)>, crate::ports::StateError> {
    report
        .renderings(zone)
        .map_err(|e| crate::ports::StateError::Backend {
            detail: e.to_string(),
            retryable: false,
        })
}
