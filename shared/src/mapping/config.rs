//! Mapping configuration, read from the `[mapping]` table of the CLI's TOML (every field is
//! optional; unknown keys are rejected so a typo is an error, not a silent default).

use crate::domain::{InvoiceStatus, ReckonInvoiceStatus};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How Cliniko data becomes Reckon data where a choice exists.
///
/// ```toml
/// [mapping]
/// tax_free_code = "FRE"
/// default_time_zone = "Australia/Perth"
/// product_income_account = "Product Sales"
/// service_income_account = "Consultation Fees"
/// [mapping.tax_codes]
/// GST = "GST"
/// "Input taxed" = "INP"
/// [mapping.invoice_statuses]
/// open = "Draft"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingConfig {
    /// Cliniko tax name → Reckon tax rate code (matched trimmed and case-insensitively).
    /// Default `GST` → `GST`. A line or item whose tax is not listed here uses
    /// `tax_free_code` when its rate is 0 and is a mapping error otherwise.
    pub tax_codes: BTreeMap<String, String>,
    /// Reckon code for GST-free lines and items and for those with no tax. Default `FRE`.
    pub tax_free_code: String,
    /// The business time zone when Cliniko names none (or an unknown one).
    /// Default `Australia/Sydney`.
    #[serde(with = "tz_name")]
    pub default_time_zone: Tz,
    /// Income ledger account (name or id) for Cliniko products. Default `Sales`.
    pub product_income_account: String,
    /// Income ledger account (name or id) for Cliniko billable items. Default `Income`.
    pub service_income_account: String,
    /// Cliniko invoice status → Reckon invoice status.
    pub invoice_statuses: StatusMapping,
    /// Use the patient's `invoice_email` (when set) rather than `email` as the email of the
    /// customers the sync creates. Default `false`: the invoice address is often an
    /// insurer's or employer's accounts inbox, not the patient's; a customer that already
    /// existed in Reckon keeps the patient's own email either way.
    pub prefer_invoice_email: bool,
    /// Reckon address type the patient's address is written as. Default `Billing` (the one
    /// Reckon prints on invoices).
    pub address_type: String,
    /// Copy Cliniko invoice notes to the Reckon invoice. Default `true`.
    pub copy_invoice_notes: bool,
    /// How the part of a Closed (30) invoice that its Cliniko credit notes do not clear is
    /// settled in Reckon. Default `write_off`.
    pub closed_remainder: ClosedRemainder,
    /// Ledger account (name or id) for write-off credit notes. Default: none, so the
    /// write-off reverses the invoice's own lines (same items or accounts, same tax codes).
    pub write_off_account: Option<String>,
    /// The approval workflow: from the configuration's `[invoicing]` table (not `[mapping]`),
    /// see [`crate::mapping::approval`].
    #[serde(skip)]
    pub invoicing: super::approval::InvoicingRules,
    /// How customers are named: from the configuration's `[customers]` table.
    #[serde(skip)]
    pub customers: super::customer::CustomerRules,
    /// `[accounts.items]`: a billable item's or product's own income account, keyed by its
    /// Cliniko name (matched trimmed, in any case) or id.
    #[serde(skip)]
    pub item_accounts: BTreeMap<String, String>,
    /// Which keys of the configuration named the accounts, for messages: `[mapping]`'s or
    /// `[accounts]`'s.
    #[serde(skip)]
    pub account_keys: AccountKeys,
}

/// The configuration keys that named the product, service and receipt accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountKeys {
    pub product_income: &'static str,
    pub service_income: &'static str,
    pub receipt: &'static str,
    pub write_off: &'static str,
}

impl Default for AccountKeys {
    fn default() -> Self {
        AccountKeys {
            product_income: "mapping.product_income_account",
            service_income: "mapping.service_income_account",
            receipt: "reckon.receipt_account",
            write_off: "mapping.write_off_account",
        }
    }
}

/// What settles a Closed invoice's remainder (see docs/cliniko-invoice-statuses.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedRemainder {
    /// A Reckon credit note for the remainder, allocated to the invoice (`Write-off <n>`).
    WriteOff,
    /// A receipt for the remainder, as for Paid: for clinics that close invoices paid
    /// outside Cliniko.
    Receipt,
    /// Nothing: the remainder stays owing in Reckon (the behaviour before this setting).
    LeaveOwing,
}

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig {
            tax_codes: BTreeMap::from([("GST".to_string(), "GST".to_string())]),
            tax_free_code: "FRE".into(),
            default_time_zone: chrono_tz::Australia::Sydney,
            product_income_account: "Sales".into(),
            service_income_account: "Income".into(),
            invoice_statuses: StatusMapping::default(),
            prefer_invoice_email: false,
            address_type: "Billing".into(),
            copy_invoice_notes: true,
            closed_remainder: ClosedRemainder::WriteOff,
            write_off_account: None,
            invoicing: Default::default(),
            customers: Default::default(),
            item_accounts: BTreeMap::new(),
            account_keys: AccountKeys::default(),
        }
    }
}

impl MappingConfig {
    /// The Reckon tax code for a Cliniko tax: the configured code for its name, else the
    /// GST-free code when the rate is zero, else `None` (an unknown tax).
    pub fn tax_code(&self, name: Option<&str>, rate: Decimal) -> Option<String> {
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        if let Some(name) = name {
            let found = self
                .tax_codes
                .get(name)
                .or_else(|| {
                    self.tax_codes
                        .iter()
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                })
                .map(|code| code.trim().to_string());
            if found.is_some() {
                return found;
            }
        }
        rate.is_zero().then(|| self.tax_free_code.clone())
    }

    /// The income account for a product or billable item: its own (`[accounts.items]`, by
    /// id or name), else `default`.
    pub fn item_income_account(
        &self,
        id: crate::domain::ClinikoId,
        name: &str,
        default: &str,
    ) -> String {
        let id = id.0.to_string();
        let name = name.trim().to_lowercase();
        self.item_accounts
            .iter()
            .find(|(k, _)| k.trim() == id)
            .or_else(|| {
                self.item_accounts
                    .iter()
                    .find(|(k, _)| k.trim().to_lowercase() == name)
            })
            .map(|(_, account)| account.clone())
            .unwrap_or_else(|| default.to_string())
    }

    /// The Reckon status for a Cliniko status, as configured.
    pub fn invoice_status(&self, status: InvoiceStatus) -> ReckonInvoiceStatus {
        let m = &self.invoice_statuses;
        match status {
            InvoiceStatus::Open => m.open,
            InvoiceStatus::Paid => m.paid,
            InvoiceStatus::Closed => m.closed,
            InvoiceStatus::OpenCredit => m.open_credit,
        }
    }
}

/// Cliniko invoice status → Reckon invoice status. Cliniko has no draft state (every invoice
/// is issued), so the defaults approve everything. `Paid` here means "approve, then record
/// a receipt for the balance" (Reckon reaches `Paid` only through a payment): the draft then
/// says `status: Approved, paid: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusMapping {
    /// 10 Open. Default `Approved`.
    pub open: ReckonInvoiceStatus,
    /// 20 Paid. Default `Paid` (approved + receipt).
    pub paid: ReckonInvoiceStatus,
    /// 30 Closed. Default `Approved`.
    pub closed: ReckonInvoiceStatus,
    /// 40 Open credit. Default `Approved`.
    pub open_credit: ReckonInvoiceStatus,
}

impl Default for StatusMapping {
    fn default() -> Self {
        StatusMapping {
            open: ReckonInvoiceStatus::Approved,
            paid: ReckonInvoiceStatus::Paid,
            closed: ReckonInvoiceStatus::Approved,
            open_credit: ReckonInvoiceStatus::Approved,
        }
    }
}

/// A `Tz` as its IANA name (chrono-tz is built without its serde feature).
mod tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.trim().parse::<Tz>().map_err(|_| {
            serde::de::Error::custom(format!(
                "default_time_zone: unknown IANA time zone {name:?} (e.g. \"Australia/Sydney\")"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn defaults() {
        let c = MappingConfig::default();
        assert_eq!(c.tax_code(Some("GST"), dec!(10)).as_deref(), Some("GST"));
        assert_eq!(c.tax_code(Some(" gst "), dec!(10)).as_deref(), Some("GST"));
        assert_eq!(
            c.tax_code(Some("GST Free"), dec!(0)).as_deref(),
            Some("FRE")
        );
        assert_eq!(c.tax_code(None, dec!(0)).as_deref(), Some("FRE"));
        assert_eq!(c.tax_code(Some("VAT"), dec!(20)), None);
        assert_eq!(c.tax_code(None, dec!(10)), None);
        assert_eq!(c.default_time_zone, chrono_tz::Australia::Sydney);
    }

    #[test]
    fn statuses_default_and_configured() {
        let c = MappingConfig::default();
        assert_eq!(
            c.invoice_status(InvoiceStatus::Open),
            ReckonInvoiceStatus::Approved
        );
        assert_eq!(
            c.invoice_status(InvoiceStatus::Paid),
            ReckonInvoiceStatus::Paid
        );
        assert_eq!(
            c.invoice_status(InvoiceStatus::Closed),
            ReckonInvoiceStatus::Approved
        );
        assert_eq!(
            c.invoice_status(InvoiceStatus::OpenCredit),
            ReckonInvoiceStatus::Approved
        );
        let c: MappingConfig =
            serde_json::from_str(r#"{"invoice_statuses": {"open": "Draft"}}"#).unwrap();
        assert_eq!(
            c.invoice_status(InvoiceStatus::Open),
            ReckonInvoiceStatus::Draft
        );
        assert_eq!(
            c.invoice_status(InvoiceStatus::Paid),
            ReckonInvoiceStatus::Paid
        );
    }

    #[test]
    fn deserialises_partially_and_rejects_bad_input() {
        let c: MappingConfig = serde_json::from_str(
            r#"{"default_time_zone": "Australia/Perth", "tax_codes": {"GST": "GST", "Input taxed": "INP"}}"#,
        )
        .unwrap();
        assert_eq!(c.default_time_zone, chrono_tz::Australia::Perth);
        assert_eq!(
            c.tax_code(Some("Input taxed"), dec!(0)).as_deref(),
            Some("INP")
        );
        assert_eq!(c.tax_free_code, "FRE");
        let err = serde_json::from_str::<MappingConfig>(r#"{"default_time_zone": "Mars/Base"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Mars/Base"), "{err}");
        assert!(serde_json::from_str::<MappingConfig>(r#"{"tax_code": {}}"#).is_err());
        // Round trip.
        let text = serde_json::to_string(&MappingConfig::default()).unwrap();
        assert_eq!(
            serde_json::from_str::<MappingConfig>(&text).unwrap(),
            MappingConfig::default()
        );
    }
}
