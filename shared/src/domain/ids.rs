//! Exact ids for both sides.

use std::fmt;
use std::str::FromStr;

/// A Cliniko id: a 64-bit integer Cliniko sends as a string (often above 2^53, so never
/// through a float).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ClinikoId(pub u64);

impl fmt::Display for ClinikoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for ClinikoId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(ClinikoId)
    }
}

/// A Reckon One id (a GUID).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ReckonId(pub uuid::Uuid);

impl fmt::Display for ReckonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for ReckonId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s.trim()).map(ReckonId)
    }
}

/// Which clinic (one Cliniko account and one Reckon book) a piece of state belongs to. It is
/// part of every key in the state store, the secrets' names, report prefixes, log fields and
/// metric dimensions, so it is limited to 1–64 ASCII letters, digits, `_`, `.` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

/// The tenant of a deployment or state file that never named one (one clinic).
pub const DEFAULT_TENANT: &str = "default";

impl TenantId {
    pub fn new(id: &str) -> Result<TenantId, InvalidTenantId> {
        let ok = (1..=64).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok {
            Ok(TenantId(id.to_string()))
        } else {
            Err(InvalidTenantId(id.to_string()))
        }
    }

    /// The tenant of a single-clinic state file or deployment.
    pub fn default_tenant() -> TenantId {
        TenantId(DEFAULT_TENANT.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    fn default() -> Self {
        TenantId::default_tenant()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TenantId {
    type Err = InvalidTenantId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TenantId::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TenantId::new(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant id {0:?}: use 1-64 letters, digits, '_', '.' or '-'")]
pub struct InvalidTenantId(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cliniko_ids_parse_exactly_above_two_to_the_53() {
        let id: ClinikoId = "1100000000000000123".parse().unwrap();
        assert_eq!(id.0, 1_100_000_000_000_000_123);
        assert_eq!(id.to_string(), "1100000000000000123");
        assert_eq!(serde_json::to_string(&id).unwrap(), "1100000000000000123");
    }

    #[test]
    fn tenant_ids_cannot_break_out_of_a_key_or_a_path() {
        for good in ["default", "clinic-1", "Acme_Physio.2"] {
            assert_eq!(TenantId::new(good).unwrap().as_str(), good);
        }
        for bad in ["", "a#WM", "a/b", "a b", "a\nb", "é", &"x".repeat(65)] {
            assert!(TenantId::new(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<TenantId>("\"a#b\"").is_err());
    }
}
