//! Where reconciliation reports go.

use super::StateError;
use chrono::{DateTime, Utc};
use std::future::Future;

/// One file of a rendered report (`report.json`, `report.html`, a CSV per category).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFile {
    pub name: String,
    pub content_type: &'static str,
    pub body: String,
}

/// A report as a sink stores it: every rendering, and when the run was (its dated folder).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedReport {
    pub generated_at: DateTime<Utc>,
    pub files: Vec<ReportFile>,
}

/// Where reconciliation reports go: a folder locally, S3 on AWS, memory in tests. Each
/// stores every file of a rendered report and says where.
pub trait ReportSink: Send + Sync {
    fn publish(
        &self,
        tenant: &str,
        report: &RenderedReport,
    ) -> impl Future<Output = Result<Vec<String>, StateError>> + Send;
}
