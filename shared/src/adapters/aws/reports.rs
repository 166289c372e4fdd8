//! Reconciliation reports in S3: one dated folder per run,
//! `reports/{tenant}/{YYYY-MM-DD}/{HHMMSS}Z/` with `report.json`, `report.html` and one CSV
//! per category. The bucket's default encryption (KMS) and lifecycle rule apply.

use super::check_tenant;
use crate::ports::{RenderedReport, ReportSink, StateError};

/// Where the reports go.
#[derive(Debug, Clone)]
pub struct S3Reports {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Reports {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Reports {
            client,
            bucket: bucket.into(),
        }
    }

    /// The folder a run's report goes to.
    pub fn prefix(tenant: &str, report: &RenderedReport) -> Result<String, StateError> {
        check_tenant(tenant)?;
        Ok(format!(
            "reports/{tenant}/{}/",
            report.generated_at.format("%Y-%m-%d/%H%M%SZ")
        ))
    }
}

impl ReportSink for S3Reports {
    /// Writes every rendering of `report`; returns the keys written.
    async fn publish(
        &self,
        tenant: &str,
        report: &RenderedReport,
    ) -> Result<Vec<String>, StateError> {
        let prefix = Self::prefix(tenant, report)?;
        let mut keys = Vec::with_capacity(report.files.len());
        for file in &report.files {
            let key = format!("{prefix}{}", file.name);
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .content_type(file.content_type)
                .body(file.body.clone().into_bytes().into())
                .send()
                .await
                .map_err(|e| super::backend("S3 PutObject (report)", e))?;
            keys.push(key);
        }
        Ok(keys)
    }
}
