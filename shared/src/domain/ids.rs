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
}
