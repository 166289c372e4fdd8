//! Serde helpers for the vendors' wire formats: 64-bit ids as strings, decimal strings in
//! Ruby BigDecimal style, second-precision UTC timestamps, and the legacy quirks Cliniko's
//! own examples show (numeric ids, `""` for null timestamps, integer quantities).

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serializer};
use std::str::FromStr;

/// A JSON value that is a string or a number, as Cliniko's examples mix both.
#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrNum {
    Str(String),
    Num(serde_json::Number),
}

impl StrOrNum {
    fn text(self) -> String {
        match self {
            StrOrNum::Str(s) => s,
            StrOrNum::Num(n) => n.to_string(),
        }
    }
}

/// Formats a decimal the way Cliniko's Rails API does: at least one fractional digit.
pub fn decimal_text(value: &Decimal) -> String {
    let text = value.normalize().to_string();
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

pub fn timestamp_text(value: &DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub mod id {
    use super::*;

    pub fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = StrOrNum::deserialize(d)?.text();
        u64::from_str(&text).map_err(|_| de::Error::custom(format!("invalid id {text:?}")))
    }
}

pub mod opt_id {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<StrOrNum>::deserialize(d)? {
            None => Ok(None),
            Some(v) => {
                let text = v.text();
                if text.is_empty() {
                    return Ok(None);
                }
                u64::from_str(&text)
                    .map(Some)
                    .map_err(|_| de::Error::custom(format!("invalid id {text:?}")))
            }
        }
    }
}

/// Decimal as a Ruby-style string (`"50.0"`); accepts a string or a number on input.
pub mod decimal {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&decimal_text(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let text = StrOrNum::deserialize(d)?.text();
        parse(&text).map_err(de::Error::custom)
    }

    pub(crate) fn parse(text: &str) -> Result<Decimal, String> {
        Decimal::from_str(text.trim())
            .or_else(|_| Decimal::from_scientific(text.trim()))
            .map_err(|_| format!("invalid decimal {text:?}"))
    }
}

pub mod opt_decimal {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_str(&decimal_text(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        match Option::<StrOrNum>::deserialize(d)? {
            None => Ok(None),
            Some(v) => {
                let text = v.text();
                if text.is_empty() {
                    Ok(None)
                } else {
                    decimal::parse(&text).map(Some).map_err(de::Error::custom)
                }
            }
        }
    }
}

/// Decimal as a JSON number (`total_including_tax` is a number in Cliniko's OpenAPI, and
/// Reckon sends all money as numbers).
pub mod decimal_number {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        let number = serde_json::Number::from_str(&value.normalize().to_string())
            .map_err(serde::ser::Error::custom)?;
        serde::Serialize::serialize(&number, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let text = StrOrNum::deserialize(d)?.text();
        decimal::parse(&text).map_err(de::Error::custom)
    }
}

pub mod opt_decimal_number {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => decimal_number::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        match Option::<StrOrNum>::deserialize(d)? {
            None => Ok(None),
            Some(v) => decimal::parse(&v.text())
                .map(Some)
                .map_err(de::Error::custom),
        }
    }
}

/// UTC timestamp at second precision with a `Z`.
pub mod timestamp {
    use super::*;

    pub fn serialize<S: Serializer>(value: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&timestamp_text(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(de::Error::custom)
    }

    pub(crate) fn parse(text: &str) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| format!("invalid timestamp {text:?}"))
    }
}

/// Nullable timestamp; the legacy `""` means null.
pub mod opt_timestamp {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_str(&timestamp_text(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(t) if t.is_empty() => Ok(None),
            Some(t) => timestamp::parse(&t).map(Some).map_err(de::Error::custom),
        }
    }
}

pub mod opt_date {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_str(&v.format("%Y-%m-%d").to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(t) if t.is_empty() => Ok(None),
            Some(t) => NaiveDate::parse_from_str(&t, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| de::Error::custom(format!("invalid date {t:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Sample {
        #[serde(with = "id")]
        id: u64,
        #[serde(with = "decimal")]
        price: Decimal,
        #[serde(with = "opt_timestamp")]
        archived_at: Option<DateTime<Utc>>,
    }

    #[test]
    fn ids_round_trip_exactly_above_two_to_the_53() {
        let json = r#"{"id":"836447129235883061","price":"81.818","archived_at":null}"#;
        let s: Sample = serde_json::from_str(json).unwrap();
        assert_eq!(s.id, 836447129235883061);
        assert_eq!(serde_json::to_string(&s).unwrap(), json);
    }

    #[test]
    fn legacy_quirks_are_accepted() {
        let s: Sample = serde_json::from_str(r#"{"id":1,"price":90,"archived_at":""}"#).unwrap();
        assert_eq!(s.id, 1);
        assert_eq!(s.archived_at, None);
        assert_eq!(decimal_text(&s.price), "90.0");
    }

    #[test]
    fn decimals_print_ruby_style() {
        assert_eq!(decimal_text(&Decimal::new(5000, 2)), "50.0");
        assert_eq!(decimal_text(&Decimal::new(81818, 3)), "81.818");
        assert_eq!(decimal_text(&Decimal::ZERO), "0.0");
    }
}
