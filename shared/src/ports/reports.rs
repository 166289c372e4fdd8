//! Where reconciliation reports go.

use super::StateError;
use std::future::Future;

/// Where reconciliation reports go: a folder locally, S3 on AWS, memory in tests. Each
/// stores every rendering of a report (`ReconcileReport::renderings`) and says where.
pub trait ReportSink: Send + Sync {
    fn publish(
        &self,
        tenant: &str,
        report: &crate::reconcile::ReconcileReport,
        zone: chrono_tz::Tz,
    ) -> impl Future<Output = Result<Vec<String>, StateError>> + Send;
}
