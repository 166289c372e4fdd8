//! CloudWatch metrics as Embedded Metric Format log lines (no PutMetricData call, no extra
//! permission). Names and namespace match `infra/lib/constants.ts`, where the alarms read them.

use serde_json::json;

pub const NAMESPACE: &str = "ClinikoReckonSync";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Seconds the poller's last successful round took to see Cliniko's changes. Absent when
    /// a clinic's polling fails (`PollFailures` says so); absent for every clinic, the
    /// `PollerSilent` alarm fires.
    WatermarkAgeSeconds,
    /// 1 when a Reckon call found the refresh token dead: run `cliniko-reckon connect`.
    ReckonReauthorizationNeeded,
    ReconciliationMismatches,
    /// 1 for each tenant poll that failed or could not start (misconfigured, Cliniko
    /// unreadable): the per-tenant series says which clinic.
    PollFailures,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::WatermarkAgeSeconds => "WatermarkAgeSeconds",
            Metric::ReckonReauthorizationNeeded => "ReckonReauthorizationNeeded",
            Metric::ReconciliationMismatches => "ReconciliationMismatches",
            Metric::PollFailures => "PollFailures",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Metric::WatermarkAgeSeconds => "Seconds",
            _ => "Count",
        }
    }
}

/// The EMF document for one value, published twice: per tenant (`TenantId`: the series the
/// dashboard graphs and the alarms evaluate, one alarm contributor per clinic) and over all
/// tenants (no dimension: the deployment's totals).
pub fn document(metric: Metric, value: f64, tenant: &str, at_ms: i64) -> serde_json::Value {
    json!({
        "_aws": {
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["TenantId"], []],
                "Metrics": [{"Name": metric.name(), "Unit": metric.unit()}]
            }]
        },
        "TenantId": tenant,
        metric.name(): value
    })
}

/// Writes the metric to stdout, where Lambda's log capture hands it to CloudWatch.
pub fn emit(metric: Metric, value: f64, tenant: &str) {
    let doc = document(metric, value, tenant, chrono::Utc::now().timestamp_millis());
    println!("{doc}");
}

/// The reconciliation's findings in one EMF document under `TenantId`: the total as
/// `ReconciliationMismatches` (the alarm's series) and each category as
/// `ReconciliationMismatches.<category>`.
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
        if let Some(metrics) = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array_mut() {
            metrics.push(json!({"Name": metric, "Unit": "Count"}));
        }
        doc[metric] = json!(*count as f64);
    }
    doc
}

pub fn emit_reconciliation(tenant: &str, total: u64, per_category: &[(&str, u64)]) {
    let doc = reconciliation_document(
        tenant,
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
    fn the_reconciliation_document_carries_the_total_and_each_category() {
        let d = reconciliation_document(
            "clinic-a",
            3,
            &[("field_drift", 2), ("amount_drift", 1), ("sync_failure", 0)],
            1_700_000_000_000,
        );
        let set = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(set["Namespace"], NAMESPACE);
        assert_eq!(set["Dimensions"][0][0], "TenantId");
        assert_eq!(set["Dimensions"][1], json!([]), "the all-tenants series");
        let names: Vec<&str> = set["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "ReconciliationMismatches",
                "ReconciliationMismatches.field_drift",
                "ReconciliationMismatches.amount_drift",
                "ReconciliationMismatches.sync_failure",
            ]
        );
        assert_eq!(d["ReconciliationMismatches"], 3.0);
        assert_eq!(d["ReconciliationMismatches.field_drift"], 2.0);
        assert_eq!(d["ReconciliationMismatches.sync_failure"], 0.0);
        assert_eq!(d["TenantId"], "clinic-a");
    }

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
            Metric::PollFailures,
        ] {
            assert!(constants.contains(m.name()), "{}", m.name());
        }
    }
}
