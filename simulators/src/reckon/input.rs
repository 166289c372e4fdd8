//! Reading Reckon request bodies the way its ASP.NET API does: property names match
//! case-insensitively (Reckon's own examples mix camelCase and PascalCase), unknown
//! properties are ignored, and every problem becomes an `errors[]` entry naming the JSON
//! path (`lineItems[0].itemDetails.item`) so a client can tell which field was wrong.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

/// One `errors[]` entry of Reckon's 400 `ErrorResponse`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ErrorDetail {
    pub location: String,
    pub message: String,
}

/// Collects errors while reading one body.
#[derive(Debug, Default)]
pub struct Errors(pub Vec<ErrorDetail>);

impl Errors {
    pub fn add(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.0.push(ErrorDetail {
            location: location.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A JSON object being read, with its path for error locations.
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

pub fn path_join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

impl<'a> Obj<'a> {
    pub fn root(value: &'a Value, errors: &mut Errors) -> Option<Obj<'a>> {
        match value {
            Value::Object(map) => Some(Obj {
                map,
                path: String::new(),
            }),
            _ => {
                errors.add("", "The request body must be a JSON object.");
                None
            }
        }
    }

    /// The error location of `key`: spelled as the body spells it when present (keys match
    /// case-insensitively), otherwise as asked for.
    pub fn location(&self, key: &str) -> String {
        let spelled = if self.map.contains_key(key) {
            key
        } else {
            self.map
                .keys()
                .find(|k| k.eq_ignore_ascii_case(key))
                .map_or(key, String::as_str)
        };
        path_join(&self.path, spelled)
    }

    /// The raw value for `key`, matched case-insensitively; JSON null counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map
            .get(key)
            .or_else(|| {
                self.map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Whether the body names `key` at all (even as null): merge-patch uses null to clear.
    pub fn mentions(&self, key: &str) -> bool {
        self.map.keys().any(|k| k.eq_ignore_ascii_case(key))
    }

    pub fn string(
        &self,
        key: &str,
        max: usize,
        required: bool,
        errors: &mut Errors,
    ) -> Option<String> {
        match self.get(key) {
            None => {
                if required {
                    errors.add(self.location(key), format!("The {key} field is required."));
                }
                None
            }
            Some(Value::String(s)) => {
                if required && s.trim().is_empty() {
                    errors.add(self.location(key), format!("The {key} field is required."));
                    return None;
                }
                if s.chars().count() > max {
                    errors.add(
                        self.location(key),
                        format!("The field {key} must be a string with a maximum length of {max}."),
                    );
                    return None;
                }
                Some(s.clone())
            }
            Some(_) => {
                errors.add(
                    self.location(key),
                    format!("The {key} field must be a string."),
                );
                None
            }
        }
    }

    pub fn decimal(&self, key: &str, errors: &mut Errors) -> Option<Decimal> {
        match self.get(key)? {
            Value::Number(n) => match crate::common::wire::decimal::parse(&n.to_string()) {
                Ok(d) => Some(d),
                Err(_) => {
                    errors.add(
                        self.location(key),
                        format!("The {key} field must be a number."),
                    );
                    None
                }
            },
            _ => {
                errors.add(
                    self.location(key),
                    format!("The {key} field must be a number."),
                );
                None
            }
        }
    }

    pub fn integer(&self, key: &str, errors: &mut Errors) -> Option<i64> {
        match self.get(key)? {
            Value::Number(n) if n.is_i64() => n.as_i64(),
            _ => {
                errors.add(
                    self.location(key),
                    format!("The {key} field must be an integer."),
                );
                None
            }
        }
    }

    pub fn boolean(&self, key: &str, errors: &mut Errors) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                errors.add(
                    self.location(key),
                    format!("The {key} field must be true or false."),
                );
                None
            }
        }
    }

    /// One of `allowed`, matched case-insensitively and returned in its canonical spelling.
    pub fn enumeration(
        &self,
        key: &str,
        allowed: &[&'static str],
        errors: &mut Errors,
    ) -> Option<&'static str> {
        let value = self.get(key)?;
        let found = value
            .as_str()
            .and_then(|s| allowed.iter().find(|a| a.eq_ignore_ascii_case(s)));
        if found.is_none() {
            errors.add(
                self.location(key),
                format!(
                    "The value {value} is not valid for {key}. Valid values: {}.",
                    allowed.join(", ")
                ),
            );
        }
        found.copied()
    }

    /// A date or date-time; dates are kept as the calendar date written.
    pub fn date(&self, key: &str, required: bool, errors: &mut Errors) -> Option<NaiveDate> {
        let Some(value) = self.get(key) else {
            if required {
                errors.add(self.location(key), format!("The {key} field is required."));
            }
            return None;
        };
        let parsed = value.as_str().and_then(parse_date);
        if parsed.is_none() {
            errors.add(
                self.location(key),
                format!("The value {value} is not a valid date for {key}."),
            );
        }
        parsed
    }

    pub fn object(&self, key: &str, errors: &mut Errors) -> Option<Obj<'a>> {
        match self.get(key)? {
            Value::Object(map) => Some(Obj {
                map,
                path: self.location(key),
            }),
            _ => {
                errors.add(
                    self.location(key),
                    format!("The {key} field must be an object."),
                );
                None
            }
        }
    }

    /// Each element of an array of objects, with `key[i]` locations.
    pub fn objects(&self, key: &str, errors: &mut Errors) -> Vec<Obj<'a>> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Object(map) => out.push(Obj {
                            map,
                            path: format!("{}[{i}]", self.location(key)),
                        }),
                        _ => errors.add(
                            format!("{}[{i}]", self.location(key)),
                            "Each entry must be an object.",
                        ),
                    }
                }
                out
            }
            Some(_) => {
                errors.add(
                    self.location(key),
                    format!("The {key} field must be an array."),
                );
                Vec::new()
            }
        }
    }
}

pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.date_naive())
        })
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|t| t.date())
        })
}

/// Date-only fields go out at noon UTC, as Reckon's own examples write them.
pub fn date_out(date: NaiveDate) -> String {
    format!("{}T12:00:00Z", date.format("%Y-%m-%d"))
}

pub fn timestamp_out(t: DateTime<Utc>) -> String {
    crate::common::wire::timestamp_text(&t)
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(patch_map) = patch {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        if let Value::Object(target_map) = target {
            for (key, value) in patch_map {
                // Match existing keys case-insensitively so `Name` patches `name`.
                let existing = target_map
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(key))
                    .cloned();
                let key = existing.unwrap_or_else(|| key.clone());
                if value.is_null() {
                    target_map.remove(&key);
                } else {
                    merge_patch(target_map.entry(key).or_insert(Value::Null), value);
                }
            }
        }
    } else {
        *target = patch.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_match_case_insensitively_and_errors_name_paths() {
        let body = json!({"Name": "Jane", "lineItems": [{"itemDetails": {"price": "x"}}]});
        let mut errors = Errors::default();
        let root = Obj::root(&body, &mut errors).unwrap();
        assert_eq!(
            root.string("name", 100, true, &mut errors).as_deref(),
            Some("Jane")
        );
        let lines = root.objects("lineitems", &mut errors);
        let details = lines[0].object("itemDetails", &mut errors).unwrap();
        assert_eq!(details.decimal("price", &mut errors), None);
        assert_eq!(errors.0[0].location, "lineItems[0].itemDetails.price");
    }

    #[test]
    fn length_and_required_rules() {
        let body = json!({"name": "x".repeat(101)});
        let mut errors = Errors::default();
        let root = Obj::root(&body, &mut errors).unwrap();
        assert_eq!(root.string("name", 100, true, &mut errors), None);
        assert_eq!(root.string("notes", 10, true, &mut errors), None);
        assert_eq!(errors.0.len(), 2);
        assert!(errors.0[0].message.contains("maximum length of 100"));
    }

    #[test]
    fn dates_accept_date_and_datetime() {
        assert_eq!(
            parse_date("2026-03-01"),
            NaiveDate::from_ymd_opt(2026, 3, 1)
        );
        assert_eq!(
            parse_date("2026-03-01T12:00:00Z"),
            NaiveDate::from_ymd_opt(2026, 3, 1)
        );
        assert_eq!(parse_date("01/03/2026"), None);
        assert_eq!(
            date_out(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
            "2026-03-01T12:00:00Z"
        );
    }

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut target =
            json!({"name": "A", "status": "Active", "entityTypes": {"isCustomer": true}});
        merge_patch(
            &mut target,
            &json!({"Name": "B", "status": null, "entityTypes": {"isSupplier": false}}),
        );
        assert_eq!(
            target,
            json!({"name": "B", "entityTypes": {"isCustomer": true, "isSupplier": false}})
        );
    }
}
