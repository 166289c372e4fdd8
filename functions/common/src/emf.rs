//! CloudWatch metrics as Embedded Metric Format log lines (no PutMetricData call, no extra
//! permission). Names and namespace match `infra/lib/constants.ts`, where the alarms read them.

use serde_json::json;

pub const NAMESPACE: &str = "ClinikoReckonSync";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Seconds the poller's last successful round took to see Cliniko's changes (absent when
    /// polling fails, which the alarm treats as breaching).
    WatermarkAgeSeconds,
    /// 1 when a Reckon call found the refresh token dead: run `cliniko-reckon connect`.
    ReckonReauthorizationNeeded,
    ReconciliationMismatches,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::WatermarkAgeSeconds => "WatermarkAgeSeconds",
            Metric::ReckonReauthorizationNeeded => "ReckonReauthorizationNeeded",
            Metric::ReconciliationMismatches => "ReconciliationMismatches",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Metric::WatermarkAgeSeconds => "Seconds",
            _ => "Count",
        }
    }
}

fn tenant() -> String {
    std::env::var("TENANT_ID")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "default".into())
}

/// The EMF document for one value, dimensioned by tenant.
pub fn document(metric: Metric, value: f64, tenant: &str, at_ms: i64) -> serde_json::Value {
    json!({
        "_aws": {
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["TenantId"]],
                "Metrics": [{"Name": metric.name(), "Unit": metric.unit()}]
            }]
        },
        "TenantId": tenant,
        metric.name(): value
    })
}

/// Writes the metric to stdout, where Lambda's log capture hands it to CloudWatch.
pub fn emit(metric: Metric, value: f64) {
    let doc = document(
        metric,
        value,
        &tenant(),
        chrono::Utc::now().timestamp_millis(),
    );
    println!("{doc}");
}

/// The reconciliation's findings: the total under `TenantId` (the alarm's series) and one
/// value per category under `TenantId` + `Category`, in a single EMF document.
pub fn reconciliation_document(
    tenant: &str,
    total: u64,
    per_category: &[(&str, u64)],
    at_ms: i64,
) -> serde_json::Value {
    let name = Metric::ReconciliationMismatches.name();
    let mut doc = document(
        Metric::ReconciliationMismatches,
        total as f64,
        tenant,
        at_ms,
    );
    for (category, count) in per_category {
        let metric = format!("{name}.{category}");
        doc["_aws"]["CloudWatchMetrics"]
            .as_array_mut()
            .map(|sets| {
                sets.push(json!({
                    "Namespace": NAMESPACE,
                    "Dimensions": [["TenantId"]],
                    "Metrics": [{"Name": metric, "Unit": "Count"}]
                }))
            })
            .unwrap_or_default();
        doc[metric] = json!(*count as f64);
    }
    doc
}

pub fn emit_reconciliation(total: u64, per_category: &[(&str, u64)]) {
    let doc = reconciliation_document(
        &tenant(),
        total,
        per_category,
        chrono::Utc::now().timestamp_millis(),
    );
    println!("{doc}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_embedded_metric_format() {
        let d = document(
            Metric::WatermarkAgeSeconds,
            3.5,
            "clinic-a",
            1_700_000_000_000,
        );
        assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "TenantId"
        );
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "WatermarkAgeSeconds"
        );
        assert_eq!(d["TenantId"], "clinic-a");
        assert_eq!(d["WatermarkAgeSeconds"], 3.5);
        assert_eq!(d["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }

    #[test]
    fn metric_names_match_the_infra_constants() {
        let crate_dir = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
        let constants =
            std::fs::read_to_string(format!("{crate_dir}/../../infra/lib/constants.ts"))
                .expect("infra/lib/constants.ts");
        assert!(constants.contains(NAMESPACE));
        for m in [
            Metric::WatermarkAgeSeconds,
            Metric::ReckonReauthorizationNeeded,
            Metric::ReconciliationMismatches,
        ] {
            assert!(constants.contains(m.name()), "{}", m.name());
        }
    }
}
