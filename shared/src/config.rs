//! One clinic's configuration, the same schema everywhere: the clinic's TOML file locally
//! (`cliniko-reckon --config`), the tenant item's TOML text on AWS. Parsing names the key of
//! any error (`sync.overlap_seconds: expected …`); unknown keys are refused so a typo never
//! passes silently.

use crate::mapping::MappingConfig;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantConfig {
    pub cliniko: ClinikoSection,
    pub reckon: ReckonSection,
    pub mapping: MappingConfig,
    pub sync: SyncSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClinikoSection {
    pub api_key: Option<String>,
    pub base_url: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReckonSection {
    pub api_base_url: Option<String>,
    pub identity_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub subscription_key: Option<String>,
    pub book_id: Option<String>,
    pub refresh_token: Option<String>,
    pub redirect_uri: Option<String>,
    /// Bank or clearing account that receives payments of invoices Cliniko marks paid.
    pub receipt_account: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSection {
    /// How far back each poll re-reads before the watermark, in seconds (0–3600).
    #[serde(deserialize_with = "overlap_seconds")]
    pub overlap_seconds: i64,
    /// Cliniko's documented limit is 200 per minute per user (1–10000).
    #[serde(deserialize_with = "per_minute")]
    pub cliniko_requests_per_minute: u32,
    /// Reckon does not document its limit; 60 per minute is a cautious default (0 = no
    /// pacing, up to 10000).
    #[serde(deserialize_with = "per_minute_or_zero")]
    pub reckon_requests_per_minute: u32,
}

/// A whole number from the configuration within `min..=max`, with a message that says
/// what was expected and what was found (serde adds the key's path).
fn whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
    what: &'static str,
    min: i64,
    max: i64,
) -> Result<i64, D::Error> {
    use serde::de::Error;
    let value = toml::Value::deserialize(d)?;
    let n = match &value {
        toml::Value::Integer(n) => *n,
        toml::Value::String(s) => {
            return Err(D::Error::custom(format!("expected {what}, got {s:?}")));
        }
        other => return Err(D::Error::custom(format!("expected {what}, got {other}"))),
    };
    if !(min..=max).contains(&n) {
        return Err(D::Error::custom(format!(
            "expected {what} from {min} to {max}, got {n}"
        )));
    }
    Ok(n)
}

fn overlap_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    whole_number(d, "a whole number of seconds", 0, 3600)
}

fn per_minute<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    whole_number(d, "a whole number of requests per minute", 1, 10_000).map(|n| n as u32)
}

fn per_minute_or_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    whole_number(d, "a whole number of requests per minute", 0, 10_000).map(|n| n as u32)
}

/// Reads the TOML configuration; an error names the key (`sync.overlap_seconds: …`).
pub fn parse_tenant_config(text: &str) -> Result<TenantConfig, String> {
    let de = toml::Deserializer::parse(text).map_err(|e| e.message().to_string())?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().to_string();
        if path.is_empty() || path == "." {
            message
        } else {
            format!("{path}: {message}")
        }
    })
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            overlap_seconds: 120,
            cliniko_requests_per_minute: 200,
            reckon_requests_per_minute: 60,
        }
    }
}

impl TenantConfig {
    /// The keys holding a credential. A deployment that keeps credentials in a secret store
    /// (AWS Secrets Manager) refuses a configuration that carries any of them, so a key never
    /// sits in plain text beside the clinic's settings.
    pub fn credential_keys(&self) -> Vec<&'static str> {
        let mut found = Vec::new();
        let present = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
        if present(&self.cliniko.api_key) {
            found.push("cliniko.api_key");
        }
        for (key, value) in [
            ("reckon.client_id", &self.reckon.client_id),
            ("reckon.client_secret", &self.reckon.client_secret),
            ("reckon.subscription_key", &self.reckon.subscription_key),
            ("reckon.refresh_token", &self.reckon.refresh_token),
        ] {
            if present(value) {
                found.push(key);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key_and_unknown_keys_are_refused() {
        let e = parse_tenant_config("[sync]\noverlap_seconds = 99999\n").err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("sync.overlap_seconds: expected")),
            "{e:?}"
        );
        let e = parse_tenant_config("[reckon]\nbook = \"x\"\n").err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("unknown field `book`")),
            "{e:?}"
        );
    }

    #[test]
    fn credentials_in_the_configuration_are_found_by_key() {
        let config = parse_tenant_config(
            "[cliniko]\nuser_agent = \"A (a@b.c)\"\napi_key = \"k\"\n[reckon]\nbook_id = \"b\"\nclient_secret = \"s\"\n",
        );
        assert_eq!(
            config.map(|c| c.credential_keys()).ok(),
            Some(vec!["cliniko.api_key", "reckon.client_secret"])
        );
        let clean = parse_tenant_config("[reckon]\nbook_id = \"b\"\n[mapping]\n");
        assert_eq!(clean.map(|c| c.credential_keys().len()).ok(), Some(0));
    }
}
