//! Reconciliation reports in a local folder (the CLI's `reconcile --out DIR`), and an
//! in-memory twin for tests.

use crate::ports::{RenderedReport, ReportSink, StateError};
use std::path::PathBuf;
use std::sync::Mutex;

/// Writes every rendering into one folder (created if missing), replacing the last run's.
#[derive(Debug, Clone)]
pub struct ReportDir {
    pub dir: PathBuf,
}

impl ReportSink for ReportDir {
    async fn publish(
        &self,
        _tenant: &str,
        report: &RenderedReport,
    ) -> Result<Vec<String>, StateError> {
        let failed = |what: String, e: std::io::Error| StateError::Backend {
            detail: format!("{what}: {e}"),
            retryable: false,
        };
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| failed(format!("creating {}", self.dir.display()), e))?;
        let mut written = Vec::with_capacity(report.files.len());
        for file in &report.files {
            let path = self.dir.join(&file.name);
            std::fs::write(&path, &file.body)
                .map_err(|e| failed(format!("writing {}", path.display()), e))?;
            written.push(path.display().to_string());
        }
        Ok(written)
    }
}

/// Keeps what was published, `(tenant, file name, text)`, for tests.
#[derive(Debug, Default)]
pub struct MemoryReports {
    pub published: Mutex<Vec<(String, String, String)>>,
}

impl ReportSink for MemoryReports {
    async fn publish(
        &self,
        tenant: &str,
        report: &RenderedReport,
    ) -> Result<Vec<String>, StateError> {
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let mut names = Vec::with_capacity(report.files.len());
        for file in &report.files {
            names.push(format!("{tenant}/{}", file.name));
            published.push((tenant.to_string(), file.name.clone(), file.body.clone()));
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{Category, ReconcileReport, Scanned};

    #[tokio::test]
    async fn every_sink_stores_every_rendering() {
        let report = ReconcileReport::new(
            "clinic-a",
            chrono::Utc::now(),
            Scanned::default(),
            Vec::new(),
        );
        let dir = tempfile::tempdir().unwrap();
        let folder = ReportDir {
            dir: dir.path().join("out"),
        };
        let report = report.rendered(chrono_tz::Australia::Perth).unwrap();
        let written = folder.publish("clinic-a", &report).await.unwrap();
        let memory = MemoryReports::default();
        let kept = memory.publish("clinic-a", &report).await.unwrap();
        let want = 2 + Category::ALL.len();
        assert_eq!((written.len(), kept.len()), (want, want));
        for name in ["report.json", "report.html"] {
            let text = std::fs::read_to_string(dir.path().join("out").join(name)).unwrap();
            assert!(!text.is_empty(), "{name}");
            assert!(kept.contains(&format!("clinic-a/{name}")));
        }
        let published = memory.published.lock().unwrap();
        assert!(published.iter().all(|(tenant, _, _)| tenant == "clinic-a"));
    }
}
