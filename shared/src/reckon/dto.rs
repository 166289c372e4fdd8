//! Reckon One v2 wire shapes (camelCase JSON, docs/vendor-apis.md) and their mapping to and from the
//! domain types. Private to the client.

use super::{FieldError, ReckonError};
use crate::domain::{
    ActiveStatus, AmountTaxStatus, CreditAllocation, CreditNoteDraft, CreditNoteStatus,
    CustomerDraft, InvoiceDraft, InvoiceLineDraft, ItemDraft, ItemType, LineTarget, ReckonAddress,
    ReckonCreditNote, ReckonCustomer, ReckonCustomerRecord, ReckonId, ReckonInvoice,
    ReckonInvoiceRecord, ReckonInvoiceStatus, ReckonItem, ReckonItemRecord, ReckonLineRecord,
    ReckonPhone,
};
use crate::ports::PaymentDraft;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

// ---- money: JSON numbers, exact for up to 15 significant digits ------------------------------

/// Reckon money and quantities are JSON numbers. Without serde_json's arbitrary precision a
/// number travels as an `f64`; the shortest round-trip text of the nearest double is the
/// decimal itself for anything up to 15 significant digits (all real money here).
pub(crate) mod money {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::str::FromStr;

    pub fn to_f64(d: &Decimal) -> Option<f64> {
        d.normalize().to_string().parse::<f64>().ok()
    }

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        match to_f64(d) {
            Some(f) => s.serialize_f64(f),
            None => Err(serde::ser::Error::custom("decimal out of range")),
        }
    }

    pub fn parse(text: &str) -> Option<Decimal> {
        Decimal::from_str(text)
            .or_else(|_| Decimal::from_scientific(text))
            .ok()
            .map(|d| d.normalize())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let text = match &v {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            _ => return Err(D::Error::custom("expected a number")),
        };
        parse(&text).ok_or_else(|| D::Error::custom(format!("not a decimal: {text}")))
    }

    pub mod opt {
        use super::*;

        pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
            let v = Option::<serde_json::Value>::deserialize(d)?;
            match v {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::Number(n)) => parse(&n.to_string())
                    .map(Some)
                    .ok_or_else(|| D::Error::custom("not a decimal")),
                Some(serde_json::Value::String(s)) => parse(&s)
                    .map(Some)
                    .ok_or_else(|| D::Error::custom("not a decimal")),
                Some(_) => Err(D::Error::custom("expected a number")),
            }
        }
    }
}

// ---- filters -----------------------------------------------------------------------------

/// A look-up filter `field eq "value"` for Reckon's `filter` grammar. Reckon documents both
/// `'…'` and `"…"` quoting but no escape inside either, so a value is quoted with whichever
/// quote it does not contain (`O'Connor` → `"O'Connor"`). A value holding both kinds cannot
/// be written exactly: the filter is then broadened to `contains` on its longest quote-free
/// run (or dropped when there is none), and the caller keeps only exact matches, as every
/// caller does anyway.
pub(crate) fn eq_filter(field: &str, value: &str) -> Option<String> {
    if !value.contains('\'') {
        return Some(format!("{field} eq '{value}'"));
    }
    if !value.contains('"') {
        return Some(format!("{field} eq \"{value}\""));
    }
    value
        .split(['\'', '"'])
        .max_by_key(|run| run.chars().count())
        .filter(|run| !run.is_empty())
        .map(|run| format!("{field} contains '{run}'"))
}

// ---- shared shapes -----------------------------------------------------------------------

/// `{id, name}` as responses name related records.
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct IdName {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Created {
    pub id: ReckonId,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListBody<T> {
    #[serde(default = "Vec::new")]
    pub list: Vec<T>,
}

/// Reckon's `ErrorResponse` (`{message, code, errors}`) or APIM's `{statusCode, message}`.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub errors: Vec<ErrorEntry>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorEntry {
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl ErrorBody {
    pub fn parse(body: &[u8]) -> ErrorBody {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// Whether the APIM gateway (not the API behind it) answered.
    pub fn is_gateway(&self) -> bool {
        self.status_code.is_some()
    }

    pub fn message_or(&self, fallback: &str) -> String {
        self.message
            .clone()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| fallback.to_string())
    }

    pub fn field_errors(&self) -> Vec<FieldError> {
        self.errors
            .iter()
            .map(|e| FieldError {
                location: e.location.clone().unwrap_or_default(),
                message: e.message.clone().unwrap_or_default(),
            })
            .collect()
    }
}

fn status_wire(s: ActiveStatus) -> &'static str {
    match s {
        ActiveStatus::Active => "Active",
        ActiveStatus::Inactive => "Inactive",
    }
}

fn parse_status(s: Option<&str>) -> ActiveStatus {
    match s {
        Some("Inactive") => ActiveStatus::Inactive,
        _ => ActiveStatus::Active,
    }
}

fn amount_tax_status_wire(s: AmountTaxStatus) -> &'static str {
    match s {
        AmountTaxStatus::Inclusive => "Inclusive",
        AmountTaxStatus::Exclusive => "Exclusive",
        AmountTaxStatus::NonTaxed => "NonTaxed",
    }
}

fn invoice_status_wire(s: ReckonInvoiceStatus) -> &'static str {
    match s {
        ReckonInvoiceStatus::Draft => "Draft",
        ReckonInvoiceStatus::Approved => "Approved",
        ReckonInvoiceStatus::Paid => "Paid",
    }
}

/// Date-only fields go out as noon UTC (docs/vendor-apis.md), so no time zone moves the day.
pub(crate) fn date_wire(d: NaiveDate) -> String {
    format!("{}T12:00:00Z", d.format("%Y-%m-%d"))
}

// ---- client-side length checks (docs/vendor-apis.md) -----------------------------------------------------

#[derive(Default)]
pub(crate) struct Checks {
    errors: Vec<FieldError>,
}

impl Checks {
    fn len(&mut self, location: &str, value: &str, min: usize, max: usize) {
        let n = value.chars().count();
        if n < min || n > max {
            self.errors.push(FieldError {
                location: location.to_string(),
                message: if n < min {
                    format!("must be at least {min} characters")
                } else {
                    format!("is {n} characters; Reckon allows at most {max}")
                },
            });
        }
    }

    fn opt(&mut self, location: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            self.len(location, v, 0, max);
        }
    }

    fn finish(self, endpoint: &str) -> Result<(), ReckonError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ReckonError::Validation {
                endpoint: endpoint.to_string(),
                message: "refused before sending: a value breaks Reckon's documented limits".into(),
                errors: self.errors,
            })
        }
    }
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

// ---- customers ---------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CustomerInput {
    pub name: String,
    pub status: &'static str,
    pub entity_types: EntityTypes,
    pub addresses: Vec<AddressInput>,
    pub phone_numbers: Vec<PhoneInput>,
    pub electronic_addresses: Vec<ElectronicInput>,
    /// Fields the sync does not manage, kept from the existing customer on update.
    #[serde(flatten)]
    pub preserved: Map<String, Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EntityTypes {
    pub is_customer: bool,
    pub is_supplier: bool,
    pub is_employee: bool,
    pub is_superfund: bool,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AddressInput {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line3: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suburb: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct PhoneInput {
    #[serde(rename = "type")]
    pub kind: String,
    pub number: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct ElectronicInput {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub address: String,
}

/// Keys of an existing customer that a PUT must carry over (everything the draft does not own).
const PRESERVED_CUSTOMER_FIELDS: [&str; 7] = [
    "organisationName",
    "branch",
    "notes",
    "businessNumber1",
    "businessNumber2",
    "businessNumber",
    "creditLimit",
];

impl CustomerInput {
    /// Maps a draft; one entry per address/phone type (the first wins), at most three address
    /// lines (a fourth is joined onto the third), and the documented lengths enforced.
    pub fn from_draft(d: &CustomerDraft) -> Result<CustomerInput, ReckonError> {
        let mut checks = Checks::default();
        let name = d.name.trim().to_string();
        checks.len("name", &name, 1, 100);
        let mut addresses: Vec<AddressInput> = Vec::new();
        for a in &d.addresses {
            if addresses.iter().any(|x| x.kind == a.kind) {
                continue;
            }
            let lines: Vec<String> = a
                .lines
                .iter()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            let line3 = if lines.len() > 2 {
                Some(lines[2..].join(", "))
            } else {
                None
            };
            let i = addresses.len();
            let input = AddressInput {
                kind: a.kind.clone(),
                line1: lines.first().cloned(),
                line2: lines.get(1).cloned(),
                line3,
                suburb: non_empty(&a.suburb),
                state: non_empty(&a.state),
                postcode: non_empty(&a.postcode),
                country: non_empty(&a.country),
            };
            let at = |f: &str| format!("addresses[{i}].{f}");
            checks.len(&at("type"), &input.kind, 1, 100);
            for (f, v, max) in [
                ("line1", &input.line1, 80),
                ("line2", &input.line2, 80),
                ("line3", &input.line3, 80),
                ("suburb", &input.suburb, 80),
                ("state", &input.state, 80),
                ("postcode", &input.postcode, 30),
                ("country", &input.country, 30),
            ] {
                checks.opt(&at(f), v.as_deref(), max);
            }
            addresses.push(input);
        }
        let mut phone_numbers: Vec<PhoneInput> = Vec::new();
        for p in &d.phones {
            let number = p.number.trim().to_string();
            if number.is_empty() || phone_numbers.iter().any(|x| x.kind == p.kind) {
                continue;
            }
            let i = phone_numbers.len();
            checks.len(&format!("phoneNumbers[{i}].type"), &p.kind, 1, 100);
            checks.len(&format!("phoneNumbers[{i}].number"), &number, 1, 30);
            phone_numbers.push(PhoneInput {
                kind: p.kind.clone(),
                number,
            });
        }
        let mut electronic_addresses = Vec::new();
        if let Some(email) = non_empty(&d.email) {
            checks.len("electronicAddresses[0].address", &email, 1, 100);
            electronic_addresses.push(ElectronicInput {
                kind: "Email",
                address: email,
            });
        }
        checks.finish("customers")?;
        // The clinic's terms, by name; on an update `preserve_from` puts back terms the
        // customer already has in Reckon (a bookkeeper's choice wins).
        let mut preserved = Map::new();
        if let Some(terms) = d
            .payment_terms
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            preserved.insert("paymentTerms".into(), Value::String(terms.to_string()));
        }
        Ok(CustomerInput {
            name,
            status: status_wire(d.status),
            entity_types: EntityTypes {
                is_customer: true,
                is_supplier: false,
                is_employee: false,
                is_superfund: false,
            },
            addresses,
            phone_numbers,
            electronic_addresses,
            preserved,
        })
    }

    /// Carries over what the sync does not own from the customer as Reckon returns it
    /// (notes, ABN, credit limit, payment terms, the other entity-type flags).
    pub fn preserve_from(&mut self, existing: &Value) {
        let Some(obj) = existing.as_object() else {
            return;
        };
        for key in PRESERVED_CUSTOMER_FIELDS {
            if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
                self.preserved.insert(key.to_string(), v.clone());
            }
        }
        if let Some(id) = obj
            .get("paymentTerms")
            .and_then(|t| t.get("id"))
            .and_then(Value::as_str)
        {
            self.preserved
                .insert("paymentTerms".into(), Value::String(id.to_string()));
        }
        if let Some(e) = obj.get("entityTypes") {
            let flag = |k: &str| e.get(k).and_then(Value::as_bool).unwrap_or(false);
            self.entity_types.is_supplier = flag("isSupplier");
            self.entity_types.is_employee = flag("isEmployee");
            self.entity_types.is_superfund = flag("isSuperfund");
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CustomerView {
    pub id: ReckonId,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub electronic_addresses: Option<Vec<ElectronicView>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ElectronicView {
    #[serde(rename = "type", default)]
    pub kind: Option<IdName>,
    #[serde(default)]
    pub address: Option<String>,
}

/// The address of a customer's `Email` electronic address, if any.
fn email_of(electronic_addresses: Option<Vec<ElectronicView>>) -> Option<String> {
    electronic_addresses
        .unwrap_or_default()
        .into_iter()
        .find(|e| {
            e.kind
                .as_ref()
                .and_then(|k| k.name.as_deref())
                .is_some_and(|n| n.eq_ignore_ascii_case("Email"))
        })
        .and_then(|e| e.address)
}

impl CustomerView {
    pub fn into_domain(self) -> ReckonCustomer {
        let email = email_of(self.electronic_addresses);
        ReckonCustomer {
            id: self.id,
            name: self.name,
            status: parse_status(self.status.as_deref()),
            email,
        }
    }
}

// ---- items -------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemInput {
    pub name: String,
    pub item_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_code: Option<String>,
    pub status: &'static str,
    /// The draft's sale price excludes tax.
    pub amount_tax_status: &'static str,
    pub sale: ItemUseInput,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemUseInput {
    #[serde(with = "money")]
    pub price: Decimal,
    pub price_accuracy: u32,
    pub ledger_account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub tax_rate: String,
}

impl ItemInput {
    pub fn from_draft(d: &ItemDraft) -> Result<ItemInput, ReckonError> {
        let mut checks = Checks::default();
        let name = d.name.trim().to_string();
        checks.len("name", &name, 1, 100);
        let item_code = non_empty(&d.item_code);
        checks.opt("itemCode", item_code.as_deref(), 100);
        let description = non_empty(&d.description);
        checks.opt("sale.description", description.as_deref(), 1000);
        checks.len("sale.ledgerAccount", d.income_account.trim(), 1, 200);
        checks.len("sale.taxRate", d.tax_code.trim(), 1, 100);
        checks.finish("items")?;
        let price = d.sale_price.normalize();
        Ok(ItemInput {
            name,
            item_type: match d.item_type {
                ItemType::Product => "Product",
                ItemType::Service => "Service",
            },
            item_code,
            status: status_wire(d.status),
            amount_tax_status: "Exclusive",
            sale: ItemUseInput {
                price,
                price_accuracy: price.scale().clamp(2, 8),
                ledger_account: d.income_account.trim().to_string(),
                description,
                tax_rate: d.tax_code.trim().to_string(),
            },
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ItemView {
    pub id: ReckonId,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    /// `Product` | `Service` (the schema's `ItemType`); anything else reads as unknown.
    #[serde(default, rename = "itemType")]
    pub item_type: Option<String>,
    #[serde(default, rename = "itemCode")]
    pub item_code: Option<String>,
}

impl ItemView {
    pub fn into_domain(self) -> ReckonItem {
        ReckonItem {
            id: self.id,
            name: self.name,
            status: parse_status(self.status.as_deref()),
            item_type: match self.item_type.as_deref() {
                Some("Product") => Some(ItemType::Product),
                Some("Service") => Some(ItemType::Service),
                _ => None,
            },
            item_code: self.item_code.filter(|c| !c.trim().is_empty()),
        }
    }
}

// ---- invoices ----------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvoiceInput {
    pub customer: String,
    pub invoice_date: String,
    pub amount_tax_status: &'static str,
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub line_items: Vec<LineInput>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LineInput {
    pub line_number: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub tax_rate: String,
    /// Cliniko's tax for the line: Reckon's override (`taxIsModified`).
    #[serde(with = "money")]
    pub tax_amount: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_details: Option<ItemDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_details: Option<AccountDetails>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemDetails {
    pub item: String,
    #[serde(with = "money")]
    pub price: Decimal,
    #[serde(with = "money")]
    pub quantity: Decimal,
    #[serde(with = "money::opt", skip_serializing_if = "Option::is_none")]
    pub discount_amount: Option<Decimal>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountDetails {
    pub ledger_account: String,
    /// The whole line amount (`price × quantity − discount`, to the cent).
    #[serde(with = "money")]
    pub amount: Decimal,
}

impl InvoiceInput {
    pub fn from_draft(
        d: &InvoiceDraft,
        template: Option<&str>,
    ) -> Result<InvoiceInput, ReckonError> {
        let (notes, line_items) = document_body(
            &d.reference,
            &d.notes,
            &d.lines,
            "invoices",
            "an invoice needs at least one line",
            true,
        )?;
        Ok(InvoiceInput {
            customer: d.customer.to_string(),
            invoice_date: date_wire(d.invoice_date),
            amount_tax_status: amount_tax_status_wire(d.amount_tax_status),
            reference: d.reference.trim().to_string(),
            template: d.template.clone().or(template.map(str::to_string)),
            notes,
            line_items,
        })
    }
}

/// What an invoice and a credit note share: the reference, the notes and the lines, checked
/// against Reckon's limits (every problem named), as sent.
fn document_body(
    reference: &str,
    notes: &Option<String>,
    lines: &[InvoiceLineDraft],
    endpoint: &str,
    no_lines: &str,
    discounts: bool,
) -> Result<(Option<String>, Vec<LineInput>), ReckonError> {
    let mut checks = Checks::default();
    checks.len("reference", reference.trim(), 1, 255);
    let notes = non_empty(notes);
    checks.opt("notes", notes.as_deref(), 4000);
    if lines.is_empty() {
        checks.errors.push(FieldError {
            location: "lineItems".into(),
            message: no_lines.into(),
        });
    }
    let line_items = line_inputs(lines, &mut checks, discounts);
    checks.finish(endpoint)?;
    Ok((notes, line_items))
}

/// The `lineItems` of an invoice or credit note. Credit-note lines take no discount, so
/// with `discounts` off a discounted item line goes as one unit at its line amount.
fn line_inputs(lines: &[InvoiceLineDraft], checks: &mut Checks, discounts: bool) -> Vec<LineInput> {
    let mut line_items = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let description = Some(l.description.trim().to_string()).filter(|s| !s.is_empty());
        checks.opt(
            &format!("lineItems[{i}].description"),
            description.as_deref(),
            4000,
        );
        checks.len(
            &format!("lineItems[{i}].taxRate"),
            l.tax_code.trim(),
            1,
            100,
        );
        let discount = l.discount_amount.filter(|a| !a.is_zero());
        // Reckon's line amount, to the cent (what a discounted credit-note line is sent as).
        let line_amount = l
            .price
            .checked_mul(l.quantity)
            .and_then(|gross| gross.checked_sub(discount.unwrap_or_default()))
            .map(|a| a.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero));
        let Some(line_amount) = line_amount else {
            checks.errors.push(FieldError {
                location: format!("lineItems[{i}].price"),
                message: "price × quantity is beyond any real amount".into(),
            });
            continue;
        };
        let (item_details, account_details) = match &l.target {
            LineTarget::Item(id) => {
                let (price, quantity, discount_amount) = match discount {
                    Some(_) if !discounts => (line_amount, Decimal::ONE, None),
                    other => (l.price, l.quantity, other),
                };
                (
                    Some(ItemDetails {
                        item: id.to_string(),
                        price,
                        quantity,
                        discount_amount,
                    }),
                    None,
                )
            }
            LineTarget::Account(account) => {
                checks.len(
                    &format!("lineItems[{i}].accountDetails.ledgerAccount"),
                    account.trim(),
                    1,
                    200,
                );
                (
                    None,
                    Some(AccountDetails {
                        ledger_account: account.trim().to_string(),
                        amount: line_amount,
                    }),
                )
            }
        };
        line_items.push(LineInput {
            line_number: l.line_number,
            description,
            tax_rate: l.tax_code.trim().to_string(),
            tax_amount: l.tax_amount,
            item_details,
            account_details,
        });
    }
    line_items
}

/// The merge-patch that moves an invoice to `target`. `Paid` is not settable (a receipt
/// pays an invoice), so it asks for `Approved`.
pub(crate) fn status_patch(target: ReckonInvoiceStatus) -> Value {
    let status = match target {
        ReckonInvoiceStatus::Paid => ReckonInvoiceStatus::Approved,
        other => other,
    };
    serde_json::json!({ "status": invoice_status_wire(status) })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvoiceView {
    pub id: ReckonId,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub customer: Option<IdRef>,
    #[serde(default)]
    pub invoice_number: Option<String>,
    pub status: String,
    #[serde(with = "money")]
    pub total_amount: Decimal,
    #[serde(default, with = "money::opt")]
    pub total_tax_amount: Option<Decimal>,
    #[serde(with = "money")]
    pub balance: Decimal,
    #[serde(default)]
    pub last_modified_date_time: Option<DateTime<Utc>>,
}

impl InvoiceView {
    pub fn into_domain(self, endpoint: &str) -> Result<ReckonInvoice, ReckonError> {
        let status = match self.status.as_str() {
            "Draft" => ReckonInvoiceStatus::Draft,
            "Approved" => ReckonInvoiceStatus::Approved,
            "Paid" => ReckonInvoiceStatus::Paid,
            other => {
                return Err(ReckonError::Decode {
                    endpoint: endpoint.to_string(),
                    detail: format!("unknown invoice status {other:?}"),
                });
            }
        };
        Ok(ReckonInvoice {
            id: self.id,
            reference: self.reference,
            customer: self.customer.and_then(|c| c.id),
            invoice_number: self.invoice_number,
            status,
            total_amount: self.total_amount,
            total_tax_amount: self.total_tax_amount.unwrap_or_default(),
            balance: self.balance,
            last_modified: self.last_modified_date_time,
        })
    }
}

// ---- credit notes ------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreditNoteInput {
    pub customer: String,
    pub credit_note_date: String,
    pub amount_tax_status: &'static str,
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub line_items: Vec<LineInput>,
}

impl CreditNoteInput {
    pub fn from_draft(d: &CreditNoteDraft) -> Result<CreditNoteInput, ReckonError> {
        let (notes, line_items) = document_body(
            &d.reference,
            &d.notes,
            &d.lines,
            "creditnotes",
            "a credit note needs at least one line",
            false,
        )?;
        Ok(CreditNoteInput {
            customer: d.customer.to_string(),
            credit_note_date: date_wire(d.date),
            amount_tax_status: amount_tax_status_wire(d.amount_tax_status),
            reference: d.reference.trim().to_string(),
            notes,
            line_items,
        })
    }
}

/// The merge-patch that moves a credit note to `target` (`Closed` is Reckon's to set).
pub(crate) fn credit_status_patch(target: CreditNoteStatus) -> Value {
    let status = match target {
        CreditNoteStatus::Draft => "Draft",
        CreditNoteStatus::Approved | CreditNoteStatus::Closed => "Approved",
    };
    serde_json::json!({ "status": status })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreditLinkInput {
    pub transaction_id: String,
    pub transaction_type: &'static str,
    #[serde(with = "money")]
    pub transaction_amount: Decimal,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreditNoteView {
    pub id: ReckonId,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub customer: Option<IdRef>,
    pub status: String,
    #[serde(with = "money")]
    pub total_amount: Decimal,
    #[serde(default, with = "money::opt")]
    pub total_tax_amount: Option<Decimal>,
    #[serde(with = "money")]
    pub balance: Decimal,
    #[serde(default)]
    pub transaction_links: Option<Vec<TransactionLinkView>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TransactionLinkView {
    #[serde(default)]
    pub link_id: Option<String>,
    #[serde(default)]
    pub transaction_type: Option<String>,
    /// Text: a link to something this build does not know must not fail the read.
    #[serde(default)]
    pub transaction_id: Option<String>,
    #[serde(default, with = "money::opt")]
    pub transaction_amount: Option<Decimal>,
}

impl CreditNoteView {
    pub fn into_domain(self, endpoint: &str) -> Result<ReckonCreditNote, ReckonError> {
        let status = match self.status.as_str() {
            "Draft" => CreditNoteStatus::Draft,
            "Approved" => CreditNoteStatus::Approved,
            "Closed" => CreditNoteStatus::Closed,
            other => {
                return Err(ReckonError::Decode {
                    endpoint: endpoint.to_string(),
                    detail: format!("unknown credit note status {other:?}"),
                });
            }
        };
        let allocations = self
            .transaction_links
            .unwrap_or_default()
            .into_iter()
            .filter(|l| l.transaction_type.as_deref() == Some("Invoice"))
            .filter_map(|l| {
                Some(CreditAllocation {
                    link_id: l.link_id,
                    invoice: l.transaction_id?.trim().parse().ok()?,
                    amount: l.transaction_amount.unwrap_or_default(),
                })
            })
            .collect();
        Ok(ReckonCreditNote {
            id: self.id,
            reference: self.reference,
            customer: self.customer.and_then(|c| c.id),
            status,
            total_amount: self.total_amount,
            total_tax_amount: self.total_tax_amount.unwrap_or_default(),
            balance: self.balance,
            allocations,
        })
    }
}

// ---- receipts ----------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReceiptInput {
    pub customer: String,
    pub receipt_date: String,
    pub ledger_account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    pub reference: String,
    #[serde(with = "money")]
    pub total_amount: Decimal,
    pub transaction_links: Vec<TransactionLinkInput>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TransactionLinkInput {
    pub transaction_type: &'static str,
    pub transaction_id: String,
    #[serde(with = "money")]
    pub transaction_amount: Decimal,
}

impl ReceiptInput {
    pub fn from_payment(
        p: &PaymentDraft,
        ledger_account: &str,
        payment_method: Option<&str>,
    ) -> Result<ReceiptInput, ReckonError> {
        let mut checks = Checks::default();
        checks.len("reference", p.reference.trim(), 0, 200);
        if p.amount <= Decimal::ZERO {
            checks.errors.push(FieldError {
                location: "totalAmount".into(),
                message: "a payment must be more than 0".into(),
            });
        }
        checks.finish("receipts")?;
        Ok(ReceiptInput {
            customer: p.customer.to_string(),
            receipt_date: date_wire(p.date),
            ledger_account: ledger_account.to_string(),
            payment_method: payment_method.map(str::to_string),
            reference: p.reference.trim().to_string(),
            total_amount: p.amount,
            transaction_links: vec![TransactionLinkInput {
                transaction_type: "Invoice",
                transaction_id: p.invoice.to_string(),
                transaction_amount: p.amount,
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InvoiceLineDraft, ReckonAddress, ReckonPhone};
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn draft() -> CustomerDraft {
        CustomerDraft {
            name: " Mary O'Neil ".into(),
            first_name: Some("Mary".into()),
            last_name: Some("O'Neil".into()),
            status: ActiveStatus::Inactive,
            email: Some("mary@example.com".into()),
            addresses: vec![
                ReckonAddress {
                    kind: "Postal".into(),
                    lines: vec!["1".into(), "2".into(), "3".into(), "4".into()],
                    suburb: Some("Bondi".into()),
                    state: Some(" ".into()),
                    postcode: Some("2026".into()),
                    country: None,
                },
                ReckonAddress {
                    kind: "Postal".into(),
                    lines: vec!["dup".into()],
                    ..Default::default()
                },
            ],
            phones: vec![
                ReckonPhone {
                    kind: "Mobile".into(),
                    number: "0400 111 222".into(),
                },
                ReckonPhone {
                    kind: "Home".into(),
                    number: "  ".into(),
                },
            ],
            payment_terms: Some("30 days net".into()),
        }
    }

    #[test]
    fn filter_values_use_the_quote_they_do_not_contain() {
        assert_eq!(
            eq_filter("name", "Jane Citizen").as_deref(),
            Some("name eq 'Jane Citizen'")
        );
        assert_eq!(
            eq_filter("name", "O'Connor").as_deref(),
            Some("name eq \"O'Connor\"")
        );
        assert_eq!(
            eq_filter("name", "say \"hi\"").as_deref(),
            Some("name eq 'say \"hi\"'")
        );
        // Both kinds: no documented escape, so a broader filter on the longest plain run.
        assert_eq!(
            eq_filter("name", "Jo \"JJ\" D'Arcy-Smith").as_deref(),
            Some("name contains 'Arcy-Smith'")
        );
        assert_eq!(eq_filter("name", "'\""), None);
    }

    #[test]
    fn customer_draft_maps_to_documented_wire_fields() {
        let input = CustomerInput::from_draft(&draft()).expect("valid");
        let v = serde_json::to_value(&input).expect("json");
        assert_eq!(
            v,
            json!({
                "name": "Mary O'Neil",
                "status": "Inactive",
                "paymentTerms": "30 days net",
                "entityTypes": {"isCustomer": true, "isSupplier": false, "isEmployee": false, "isSuperfund": false},
                "addresses": [{"type": "Postal", "line1": "1", "line2": "2", "line3": "3, 4",
                               "suburb": "Bondi", "postcode": "2026"}],
                "phoneNumbers": [{"type": "Mobile", "number": "0400 111 222"}],
                "electronicAddresses": [{"type": "Email", "address": "mary@example.com"}],
            })
        );
        // Not sent: first/last names are only for the display name.
        assert!(!v.to_string().contains("firstName"));
    }

    #[test]
    fn customer_lengths_are_enforced_naming_fields() {
        let mut d = draft();
        d.name = "n".repeat(101);
        d.email = Some(format!("{}@x.com", "e".repeat(100)));
        d.addresses[0].postcode = Some("p".repeat(31));
        let err = CustomerInput::from_draft(&d).expect_err("too long");
        let locations: Vec<&str> = err
            .field_errors()
            .iter()
            .map(|e| e.location.as_str())
            .collect();
        assert_eq!(
            locations,
            [
                "name",
                "addresses[0].postcode",
                "electronicAddresses[0].address"
            ]
        );
        d.name = "  ".into();
        assert!(CustomerInput::from_draft(&d).is_err());
    }

    #[test]
    fn update_preserves_fields_the_sync_does_not_own() {
        let mut input = CustomerInput::from_draft(&draft()).expect("valid");
        input.preserve_from(&json!({
            "id": "x", "name": "old", "notes": "keep", "creditLimit": 500.0, "branch": null,
            "paymentTerms": {"id": "t-1", "name": "30 days"},
            "entityTypes": {"isCustomer": true, "isSupplier": true},
            "addresses": [{"type": {"name": "Business"}}],
        }));
        let v = serde_json::to_value(&input).expect("json");
        assert_eq!(v["notes"], "keep");
        assert_eq!(v["creditLimit"], 500.0);
        assert_eq!(v["paymentTerms"], "t-1");
        assert_eq!(v["entityTypes"]["isSupplier"], true);
        assert!(v.get("branch").is_none());
        assert_eq!(v["name"], "Mary O'Neil");
        assert_eq!(v["addresses"][0]["type"], "Postal");
    }

    #[test]
    fn item_draft_maps_sale_block() {
        let d = ItemDraft {
            name: "Theraband".into(),
            item_code: Some("TB".into()),
            item_type: ItemType::Product,
            status: ActiveStatus::Active,
            sale_price: dec!(12.34500),
            tax_code: "GST".into(),
            income_account: "Product Sales".into(),
            description: None,
        };
        let v = serde_json::to_value(ItemInput::from_draft(&d).expect("valid")).expect("json");
        assert_eq!(
            v,
            json!({"name": "Theraband", "itemType": "Product", "itemCode": "TB", "status": "Active",
                   "amountTaxStatus": "Exclusive",
                   "sale": {"price": 12.345, "priceAccuracy": 3, "ledgerAccount": "Product Sales", "taxRate": "GST"}})
        );
    }

    fn line(target: LineTarget) -> InvoiceLineDraft {
        InvoiceLineDraft {
            line_number: 1,
            description: "Consult".into(),
            target,
            price: dec!(33.335),
            quantity: dec!(3),
            discount_amount: Some(dec!(0.00)),
            tax_code: "GST".into(),
            tax_amount: dec!(9.09),
        }
    }

    #[test]
    fn invoice_lines_map_to_item_or_account_details() {
        let item = ReckonId(uuid::Uuid::nil());
        let mut account_line = line(LineTarget::Account("Income".into()));
        account_line.line_number = 2;
        account_line.discount_amount = Some(dec!(1));
        let d = InvoiceDraft {
            customer: item,
            reference: "77".into(),
            invoice_date: NaiveDate::from_ymd_opt(2024, 7, 1).expect("date"),
            amount_tax_status: AmountTaxStatus::Inclusive,
            status: ReckonInvoiceStatus::Paid,
            notes: None,
            lines: vec![line(LineTarget::Item(item)), account_line],
            expected_total: dec!(0),
            expected_tax: dec!(0),
            paid: true,
            template: None,
        };
        let v = serde_json::to_value(
            InvoiceInput::from_draft(&d, Some("Service invoice")).expect("valid"),
        )
        .expect("json");
        assert_eq!(v["invoiceDate"], "2024-07-01T12:00:00Z");
        assert_eq!(v["amountTaxStatus"], "Inclusive");
        assert_eq!(v["template"], "Service invoice");
        assert!(v.get("notes").is_none());
        assert_eq!(
            v["lineItems"][0],
            json!({"lineNumber": 1, "description": "Consult", "taxRate": "GST", "taxAmount": 9.09,
                   "itemDetails": {"item": item.to_string(), "price": 33.335, "quantity": 3.0}})
        );
        // 33.335 × 3 − 1 = 99.005 → 99.01 (half away from zero), the whole line amount.
        assert_eq!(
            v["lineItems"][1]["accountDetails"],
            json!({"ledgerAccount": "Income", "amount": 99.01})
        );
        assert_eq!(
            status_patch(ReckonInvoiceStatus::Paid),
            json!({"status": "Approved"})
        );
        assert_eq!(
            status_patch(ReckonInvoiceStatus::Draft),
            json!({"status": "Draft"})
        );
    }

    #[test]
    fn an_absurd_line_read_back_is_an_error_naming_it_never_a_panic() {
        let view: InvoiceFullView = serde_json::from_value(json!({
            "id": "00000000-0000-0000-0000-000000000001",
            "status": "Approved",
            "totalAmount": 1.0,
            "balance": 1.0,
            "lineItems": [{"lineNumber": 1, "itemDetails": {"price": 7.9e25, "quantity": 1.0e5}}]
        }))
        .unwrap();
        let err = view.into_domain("GET /invoices").unwrap_err();
        assert!(err.to_string().contains("lineItems[0]"), "{err}");
    }

    #[test]
    fn invoice_views_read_money_exactly() {
        let v: InvoiceView = serde_json::from_value(json!({
            "id": "6f1c8f55-0b5e-4a43-9b4c-0c5b7c3f1a10", "invoiceNumber": "INV0001",
            "status": "Approved", "totalAmount": 330.1, "totalTaxAmount": 30.01, "balance": 0.1,
            "reference": "9", "lastModifiedDateTime": "2024-01-02T03:04:05Z", "lineItems": []
        }))
        .expect("decodes");
        let inv = v.into_domain("GET /invoices/x").expect("domain");
        assert_eq!(inv.total_amount, dec!(330.1));
        assert_eq!(inv.total_tax_amount, dec!(30.01));
        assert_eq!(inv.balance, dec!(0.1));
        assert_eq!(inv.status, ReckonInvoiceStatus::Approved);
        assert!(inv.last_modified.is_some());
        for text in ["0.1", "1234567.89", "1e-7", "110"] {
            let d = money::parse(text).expect("parses");
            let back = serde_json::to_string(&serde_json::Number::from_f64(
                money::to_f64(&d).expect("f64"),
            ))
            .expect("json");
            assert_eq!(money::parse(&back), Some(d), "{text} → {back}");
        }
    }

    #[test]
    fn error_bodies_parse_both_shapes() {
        let reckon = ErrorBody::parse(
            br#"{"message":"The request is invalid.","code":400,"errors":[{"location":"lineItems[0].taxRate","message":"Unknown"}]}"#,
        );
        assert!(!reckon.is_gateway());
        assert_eq!(
            reckon.field_errors(),
            vec![FieldError {
                location: "lineItems[0].taxRate".into(),
                message: "Unknown".into()
            }]
        );
        let apim = ErrorBody::parse(
            br#"{"statusCode":401,"message":"Access denied due to invalid subscription key."}"#,
        );
        assert!(apim.is_gateway());
        assert_eq!(
            apim.message_or("x"),
            "Access denied due to invalid subscription key."
        );
        let junk = ErrorBody::parse(b"<html>");
        assert_eq!(junk.message_or("fallback"), "fallback");
        assert!(junk.field_errors().is_empty());
    }

    #[test]
    fn receipts_link_the_invoice_and_carry_the_reference() {
        let p = PaymentDraft {
            customer: ReckonId(uuid::Uuid::nil()),
            invoice: ReckonId(uuid::Uuid::max()),
            amount: dec!(55.5),
            date: NaiveDate::from_ymd_opt(2024, 2, 29).expect("date"),
            reference: "1042".into(),
        };
        let v = serde_json::to_value(
            ReceiptInput::from_payment(&p, "Undeposited Funds", None).expect("valid"),
        )
        .expect("json");
        assert_eq!(v["receiptDate"], "2024-02-29T12:00:00Z");
        assert_eq!(v["totalAmount"], 55.5);
        assert_eq!(v["reference"], "1042");
        assert_eq!(
            v["transactionLinks"],
            json!([{"transactionType": "Invoice", "transactionId": uuid::Uuid::max().to_string(), "transactionAmount": 55.5}])
        );
        let mut zero = p.clone();
        zero.amount = dec!(0);
        assert!(ReceiptInput::from_payment(&zero, "x", None).is_err());
    }
}

/// A ledger account as listed by `GET /{book}/ledgeraccounts`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerAccountOut {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub account_type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// A payment term as listed by `GET /{book}/terms`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentTermOut {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
}

// ---- full views for reconciliation ---------------------------------------------------------

#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct IdRef {
    #[serde(default)]
    pub id: Option<ReckonId>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CustomerFullView {
    pub id: ReckonId,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub electronic_addresses: Option<Vec<ElectronicView>>,
    #[serde(default)]
    pub phone_numbers: Option<Vec<PhoneView>>,
    #[serde(default)]
    pub addresses: Option<Vec<AddressView>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PhoneView {
    #[serde(rename = "type", default)]
    pub kind: Option<IdNameOrText>,
    #[serde(default)]
    pub number: Option<String>,
}

/// A `type` Reckon answers either as `{id, name}` or as plain text.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum IdNameOrText {
    Text(String),
    Object(IdName),
}

impl IdNameOrText {
    fn text(&self) -> String {
        match self {
            IdNameOrText::Text(t) => t.clone(),
            IdNameOrText::Object(o) => o.name.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AddressView {
    #[serde(rename = "type", default)]
    pub kind: Option<IdNameOrText>,
    #[serde(default)]
    pub line1: Option<String>,
    #[serde(default)]
    pub line2: Option<String>,
    #[serde(default)]
    pub line3: Option<String>,
    #[serde(default)]
    pub suburb: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub postcode: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
}

impl CustomerFullView {
    pub fn into_domain(self) -> ReckonCustomerRecord {
        let email = email_of(self.electronic_addresses);
        let phones = self
            .phone_numbers
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                Some(ReckonPhone {
                    kind: p.kind.map(|k| k.text()).unwrap_or_default(),
                    number: p.number.filter(|n| !n.trim().is_empty())?,
                })
            })
            .collect();
        let addresses = self
            .addresses
            .unwrap_or_default()
            .into_iter()
            .map(|a| ReckonAddress {
                kind: a.kind.map(|k| k.text()).unwrap_or_default(),
                lines: [a.line1, a.line2, a.line3]
                    .into_iter()
                    .flatten()
                    .filter(|l| !l.trim().is_empty())
                    .collect(),
                suburb: a.suburb.filter(|v| !v.trim().is_empty()),
                state: a.state.filter(|v| !v.trim().is_empty()),
                postcode: a.postcode.filter(|v| !v.trim().is_empty()),
                country: a.country.filter(|v| !v.trim().is_empty()),
            })
            .collect();
        ReckonCustomerRecord {
            id: self.id,
            name: self.name,
            status: parse_status(self.status.as_deref()),
            email,
            phones,
            addresses,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemFullView {
    pub id: ReckonId,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub sale: Option<ItemUseView>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemUseView {
    #[serde(default, with = "money::opt")]
    pub price: Option<Decimal>,
    #[serde(default)]
    pub tax_rate: Option<IdNameOrText>,
}

impl ItemFullView {
    pub fn into_domain(self) -> ReckonItemRecord {
        let (sale_price, tax_code) = match self.sale {
            Some(s) => (s.price, s.tax_rate.map(|t| t.text())),
            None => (None, None),
        };
        ReckonItemRecord {
            id: self.id,
            name: self.name,
            status: parse_status(self.status.as_deref()),
            sale_price,
            tax_code,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvoiceFullView {
    #[serde(flatten)]
    pub head: InvoiceView,
    #[serde(default)]
    pub customer: Option<IdRef>,
    #[serde(default)]
    pub line_items: Option<Vec<LineView>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LineView {
    #[serde(default)]
    pub line_number: Option<u32>,
    #[serde(default)]
    pub item_details: Option<LineItemDetailsView>,
    #[serde(default)]
    pub account_details: Option<LineAccountDetailsView>,
    #[serde(default, with = "money::opt")]
    pub tax_amount: Option<Decimal>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LineItemDetailsView {
    #[serde(default, with = "money::opt")]
    pub price: Option<Decimal>,
    #[serde(default, with = "money::opt")]
    pub quantity: Option<Decimal>,
    #[serde(default, with = "money::opt")]
    pub discount_amount: Option<Decimal>,
    #[serde(default, with = "money::opt")]
    pub discount_percent: Option<Decimal>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LineAccountDetailsView {
    #[serde(default, with = "money::opt")]
    pub quantity: Option<Decimal>,
    #[serde(default, with = "money::opt")]
    pub amount: Option<Decimal>,
}

impl InvoiceFullView {
    pub fn into_domain(self, endpoint: &str) -> Result<ReckonInvoiceRecord, ReckonError> {
        let beyond = |i: usize| ReckonError::Decode {
            endpoint: endpoint.to_string(),
            detail: format!("lineItems[{i}]: price × quantity is beyond any real amount"),
        };
        let mut lines = Vec::new();
        for (i, l) in self.line_items.unwrap_or_default().into_iter().enumerate() {
            let amount = match (&l.item_details, &l.account_details) {
                (Some(d), _) => {
                    let gross = d
                        .price
                        .unwrap_or_default()
                        .checked_mul(d.quantity.unwrap_or(Decimal::ONE))
                        .ok_or_else(|| beyond(i))?;
                    let off = match (d.discount_amount, d.discount_percent) {
                        (Some(a), _) => a,
                        (None, Some(p)) => gross
                            .checked_mul(p)
                            .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
                            .ok_or_else(|| beyond(i))?,
                        (None, None) => Decimal::ZERO,
                    };
                    gross.checked_sub(off).ok_or_else(|| beyond(i))?
                }
                (None, Some(a)) => a
                    .amount
                    .unwrap_or_default()
                    .checked_mul(a.quantity.unwrap_or(Decimal::ONE))
                    .ok_or_else(|| beyond(i))?,
                (None, None) => Decimal::ZERO,
            };
            lines.push(ReckonLineRecord {
                line_number: l
                    .line_number
                    .unwrap_or_else(|| u32::try_from(i + 1).unwrap_or(u32::MAX)),
                // Half away from zero, as Reckon rounds a line to the cent
                // (docs/vendor-apis.md, and the simulator's copy of the arithmetic).
                amount: amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero),
                tax_amount: l.tax_amount.unwrap_or_default(),
            });
        }
        let customer = self.customer.and_then(|c| c.id);
        let head = self.head.into_domain(endpoint)?;
        Ok(ReckonInvoiceRecord {
            id: head.id,
            reference: head.reference,
            customer,
            status: head.status,
            total_amount: head.total_amount,
            total_tax_amount: head.total_tax_amount,
            balance: head.balance,
            lines,
        })
    }
}
