//! Pure mapping from Cliniko records to Reckon One drafts: no I/O, no clock, no randomness.
//! Same input, same output, so retries and re-runs write the same thing (and
//! [`content_hash`] can tell whether anything changed).
//!
//! - customers: [`customer_name`], [`disambiguate`], [`patient_to_customer`]
//! - items: [`product_to_item`], [`billable_item_to_item`], [`item_name`],
//!   [`disambiguate_item`]
//! - invoices: [`invoice_to_draft`], [`business_time_zone`]; the line arithmetic that keeps
//!   Reckon's totals equal to Cliniko's to the cent is in [`invoice`]
//! - appointments: [`appointment`] (when one is complete, and the invoice it becomes)
//! - configuration: [`MappingConfig`]; the approval workflow: [`approval`]

pub mod appointment;
pub mod approval;
mod config;
mod customer;
pub mod invoice;
mod item;
#[cfg(test)]
mod proptests;
pub mod text;
pub mod writes;

pub use config::{AccountKeys, ClosedRemainder, MappingConfig, StatusMapping};
pub use customer::{
    Collision, CustomerRules, NameFormat, customer_draft, customer_name, disambiguate,
    patient_to_customer,
};
pub use invoice::{
    business_time_zone, closed_remainder, credit_note_draft, credited_amount, invoice_to_draft,
    payment_date, reckon_line_amount, write_off_draft, write_off_reference,
};
pub use item::{billable_item_to_item, disambiguate_item, item_name, product_to_item};

use crate::domain::{ClinikoId, EntityKind};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Why a Cliniko record cannot be mapped. Every variant names the record (kind and Cliniko
/// id) and the field, so the record can wait in a DLQ or report with a clear reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A tax the configuration has no Reckon code for, or a tax id Cliniko does not list.
    #[error(
        "{kind} {id}: field `{field}`: unknown tax {tax}: add it to taxes.codes (Cliniko tax name = Reckon tax code)"
    )]
    UnknownTax {
        kind: EntityKind,
        id: ClinikoId,
        field: String,
        tax: String,
    },
    /// Cliniko's stated totals are not the sum of its lines.
    #[error(
        "{kind} {id}: field `{field}`: Cliniko says {stated} but its lines add up to {from_lines}"
    )]
    TotalsMismatch {
        kind: EntityKind,
        id: ClinikoId,
        field: String,
        stated: String,
        from_lines: String,
    },
    /// Any other value the mapping cannot use.
    #[error("{kind} {id}: field `{field}`: {message}")]
    Invalid {
        kind: EntityKind,
        id: ClinikoId,
        field: String,
        message: String,
    },
}

impl MappingError {
    pub fn kind(&self) -> EntityKind {
        match self {
            MappingError::UnknownTax { kind, .. }
            | MappingError::TotalsMismatch { kind, .. }
            | MappingError::Invalid { kind, .. } => *kind,
        }
    }

    pub fn id(&self) -> ClinikoId {
        match self {
            MappingError::UnknownTax { id, .. }
            | MappingError::TotalsMismatch { id, .. }
            | MappingError::Invalid { id, .. } => *id,
        }
    }

    pub fn field(&self) -> &str {
        match self {
            MappingError::UnknownTax { field, .. }
            | MappingError::TotalsMismatch { field, .. }
            | MappingError::Invalid { field, .. } => field,
        }
    }

    pub(crate) fn invalid(
        kind: EntityKind,
        id: ClinikoId,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        MappingError::Invalid {
            kind,
            id,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// SHA-256 (lower-case hex) of the value's canonical JSON: object keys sorted at every level,
/// no insignificant whitespace. Equal values hash equally whatever their field order, so the
/// sync can skip a write when the draft has not changed since the last one.
///
/// Decimals serialise as their text, so `10.0` and `10.00` hash differently: at worst one
/// redundant write. A value serde cannot turn into JSON (a map with non-string keys, which
/// no draft has) hashes as the text of its serialisation error.
pub fn content_hash<T: Serialize + ?Sized>(value: &T) -> String {
    let canonical = match serde_json::to_value(value) {
        Ok(v) => canonical_json(&v),
        Err(e) => format!("unserialisable: {e}"),
    };
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(child) = map.get(k) {
                    write_canonical(child, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_hash_ignores_key_order_and_sees_every_change() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "é"}});
        let b = json!({"a": {"x": "é", "y": [1, 2]}, "b": 1});
        let c = json!({"a": {"x": "é", "y": [2, 1]}, "b": 1});
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&a), content_hash(&c));
        assert_eq!(content_hash(&a).len(), 64);
        assert!(content_hash(&a).chars().all(|c| c.is_ascii_hexdigit()));
        // sha256("null"), a fixed point that catches an algorithm or encoding change.
        assert_eq!(
            content_hash(&()),
            "74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b"
        );
        assert_eq!(canonical_json(&a), r#"{"a":{"x":"é","y":[1,2]},"b":1}"#);
    }

    #[test]
    fn errors_name_record_and_field() {
        let e = MappingError::invalid(EntityKind::Invoice, ClinikoId(7), "items[0].quantity", "x");
        assert_eq!(e.kind(), EntityKind::Invoice);
        assert_eq!(e.id(), ClinikoId(7));
        assert_eq!(e.field(), "items[0].quantity");
        assert_eq!(e.to_string(), "invoice 7: field `items[0].quantity`: x");
    }
}
