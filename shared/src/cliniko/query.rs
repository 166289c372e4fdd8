//! List queries: `q[]=field:<op>value` filters, `sort`, `per_page`, properly form-encoded.

use crate::domain::ClinikoId;
use chrono::{DateTime, SecondsFormat, Utc};

/// Cliniko's page size ceiling; every list the client reads asks for it.
pub const PER_PAGE: u32 = 100;

/// The query string of one list request. Repeated `q[]` filters are ANDed by Cliniko.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pairs: Vec<(String, String)>,
}

/// A filter timestamp as Cliniko wants it: UTC, second precision, literal `T` and `Z`.
/// Sub-second parts are dropped (floor), so `>=` never misses a row.
pub fn filter_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl ListQuery {
    pub fn new() -> Self {
        ListQuery::default()
    }

    /// `q[]=<field>:<op><value>` as given (the value is encoded, not interpreted).
    pub fn filter(mut self, field: &str, op: &str, value: &str) -> Self {
        self.pairs
            .push(("q[]".into(), format!("{field}:{op}{value}")));
        self
    }

    /// `field:>=<t>` (creates and updates since `t`).
    pub fn at_or_after(self, field: &str, t: DateTime<Utc>) -> Self {
        self.filter(field, ">=", &filter_time(t))
    }

    /// `field:*`: include rows whatever the column holds (archived, deleted, cancelled ones).
    pub fn any(self, field: &str) -> Self {
        self.filter(field, "*", "")
    }

    /// `field:=id1,id2,…` (exact decimal ids, never through a float).
    pub fn ids(self, field: &str, ids: &[ClinikoId]) -> Self {
        let list = ids
            .iter()
            .map(|i| i.0.to_string())
            .collect::<Vec<_>>()
            .join(",");
        self.filter(field, "=", &list)
    }

    /// `sort=a,b:desc`
    pub fn sort(mut self, columns: &str) -> Self {
        self.pairs.push(("sort".into(), columns.into()));
        self
    }

    pub fn per_page(mut self, n: u32) -> Self {
        self.pairs.push(("per_page".into(), n.to_string()));
        self
    }

    /// `application/x-www-form-urlencoded`: `q[]` → `q%5B%5D`, `%` → `%25`, `>=` → `%3E%3D`.
    pub fn encode(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            out.append_pair(k, v);
        }
        out.finish()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn changed_since_query_is_encoded() {
        let t = Utc.with_ymd_and_hms(2024, 3, 4, 20, 37, 17).unwrap()
            + chrono::TimeDelta::milliseconds(999);
        let q = ListQuery::new()
            .at_or_after("updated_at", t)
            .any("archived_at")
            .sort("updated_at,id")
            .per_page(PER_PAGE);
        assert_eq!(
            q.encode(),
            "q%5B%5D=updated_at%3A%3E%3D2024-03-04T20%3A37%3A17Z\
             &q%5B%5D=archived_at%3A*&sort=updated_at%2Cid&per_page=100"
        );
        // What a server decodes is exactly the grammar's text.
        let back: Vec<(String, String)> = url::form_urlencoded::parse(q.encode().as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            back[0],
            ("q[]".into(), "updated_at:>=2024-03-04T20:37:17Z".into())
        );
        assert_eq!(back[1], ("q[]".into(), "archived_at:*".into()));
    }

    #[test]
    fn timestamps_are_utc_with_z_at_second_precision() {
        let t = chrono::DateTime::parse_from_rfc3339("2024-01-01T10:00:00.750+10:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(filter_time(t), "2024-01-01T00:00:00Z");
    }

    #[test]
    fn id_lists_are_exact_and_literal_percent_is_escaped() {
        let q = ListQuery::new()
            .ids(
                "invoice_id",
                &[
                    ClinikoId(9_007_199_254_740_993),
                    ClinikoId(1_100_000_000_000_000_123),
                ],
            )
            .filter("last_name", "~~", "ja%on & co+");
        let back: Vec<(String, String)> = url::form_urlencoded::parse(q.encode().as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            back[0].1,
            "invoice_id:=9007199254740993,1100000000000000123"
        );
        assert_eq!(back[1].1, "last_name:~~ja%on & co+");
        assert!(q.encode().contains("ja%25on+%26+co%2B"), "{}", q.encode());
    }
}
