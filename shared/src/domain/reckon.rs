//! Reckon One records as the sync writes them (drafts, built by `crate::mapping`) and as it
//! reads them back (for linking, idempotent creates and reconciliation).

use super::ReckonId;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActiveStatus {
    Active,
    Inactive,
}

/// Reckon's multi-field address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReckonAddress {
    /// Reckon address type name: "Postal", "Business", "Billing".
    pub kind: String,
    /// At most four lines (`address1`..`address4` style), each within Reckon's length limit.
    pub lines: Vec<String>,
    pub suburb: Option<String>,
    pub state: Option<String>,
    pub postcode: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReckonPhone {
    /// Reckon phone type name: "Mobile", "Home", "Work", "Fax".
    pub kind: String,
    pub number: String,
}

/// A customer as the sync wants it in Reckon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerDraft {
    /// Unique within the book (collisions disambiguated by the mapping).
    pub name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub status: ActiveStatus,
    pub email: Option<String>,
    pub addresses: Vec<ReckonAddress>,
    pub phones: Vec<ReckonPhone>,
    /// The payment terms (a name in the book) for a customer that has none of its own in
    /// Reckon; terms a bookkeeper gave the customer are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_terms: Option<String>,
}

/// What the sync reads back about a Reckon customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReckonCustomer {
    pub id: ReckonId,
    pub name: String,
    pub status: ActiveStatus,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ItemType {
    Product,
    Service,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemDraft {
    /// Unique within the book.
    pub name: String,
    pub item_code: Option<String>,
    pub item_type: ItemType,
    pub status: ActiveStatus,
    /// Sale price excluding tax.
    pub sale_price: Decimal,
    /// Reckon tax rate code (`GST`, `FRE`).
    pub tax_code: String,
    /// Income ledger account (name or id, as Reckon accepts both).
    pub income_account: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReckonItem {
    pub id: ReckonId,
    pub name: String,
    pub status: ActiveStatus,
    /// `None` when Reckon sent a type this build does not know.
    pub item_type: Option<ItemType>,
    pub item_code: Option<String>,
}

/// Reckon's `amountTaxStatus`: whether line amounts include tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AmountTaxStatus {
    Inclusive,
    Exclusive,
    NonTaxed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReckonInvoiceStatus {
    Draft,
    Approved,
    Paid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineTarget {
    /// `itemDetails` with price, quantity and discount.
    Item(ReckonId),
    /// `accountDetails` with the line amount (`price × quantity − discount_amount`).
    Account(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceLineDraft {
    pub line_number: u32,
    pub description: String,
    /// What the line sells: a Reckon item, or straight to an income account for Cliniko
    /// lines that name no product or billable item.
    pub target: LineTarget,
    /// Unit price in the invoice's `amountTaxStatus`.
    pub price: Decimal,
    pub quantity: Decimal,
    /// Money off the line, so that `price × quantity − discount_amount` is the line amount.
    pub discount_amount: Option<Decimal>,
    pub tax_code: String,
    /// Tax for the line exactly as Cliniko computed it (Reckon's override).
    pub tax_amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceDraft {
    pub customer: ReckonId,
    /// Cliniko invoice number: the marker that finds this invoice again.
    pub reference: String,
    /// The issue date in the business's own time zone.
    pub invoice_date: NaiveDate,
    pub amount_tax_status: AmountTaxStatus,
    pub status: ReckonInvoiceStatus,
    pub notes: Option<String>,
    pub lines: Vec<InvoiceLineDraft>,
    /// What Reckon must compute, including tax (checked after writing).
    pub expected_total: Decimal,
    pub expected_tax: Decimal,
    /// Cliniko says paid: record a receipt for the balance.
    pub paid: bool,
    /// The Reckon invoice template (a name in the book); `None`: the book's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReckonInvoice {
    pub id: ReckonId,
    pub reference: Option<String>,
    /// The customer's id, when Reckon sent one.
    pub customer: Option<ReckonId>,
    pub invoice_number: Option<String>,
    pub status: ReckonInvoiceStatus,
    pub total_amount: Decimal,
    pub total_tax_amount: Decimal,
    pub balance: Decimal,
    pub last_modified: Option<DateTime<Utc>>,
}

/// A Reckon payment term, for checking the configured one against the book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentTerm {
    /// As Reckon gives it (what a customer's `paymentTerms` takes).
    pub id: String,
    pub name: String,
    pub active: bool,
}

/// A Reckon ledger account, for checking configured account names against the book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerAccount {
    pub id: ReckonId,
    pub name: String,
    /// Reckon's `accountType`, e.g. `Income`, `CurrentAsset_Bank`.
    pub account_type: String,
    pub active: bool,
}

// ---- what reconciliation reads back (every field it compares) -----------------------------

/// A Reckon customer with the fields the sync owns, as read back for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReckonCustomerRecord {
    pub id: ReckonId,
    pub name: String,
    pub status: ActiveStatus,
    pub email: Option<String>,
    pub phones: Vec<ReckonPhone>,
    pub addresses: Vec<ReckonAddress>,
}

/// A Reckon item with its sale price (tax exclusive) and tax rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReckonItemRecord {
    pub id: ReckonId,
    pub name: String,
    pub status: ActiveStatus,
    pub sale_price: Option<Decimal>,
    pub tax_code: Option<String>,
}

/// One invoice line as Reckon holds it: its amount before tax handling (price × quantity −
/// discount, or the account amount) and its tax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReckonLineRecord {
    pub line_number: u32,
    pub amount: Decimal,
    pub tax_amount: Decimal,
}

/// A Reckon invoice with its customer, totals, status and lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReckonInvoiceRecord {
    pub id: ReckonId,
    pub reference: Option<String>,
    pub customer: Option<ReckonId>,
    pub status: ReckonInvoiceStatus,
    pub total_amount: Decimal,
    pub total_tax_amount: Decimal,
    pub balance: Decimal,
    pub lines: Vec<ReckonLineRecord>,
}

// ---- credit notes ---------------------------------------------------------------------------

/// Reckon's `CreditNoteStatus`: `Closed` once it is used up (fully allocated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CreditNoteStatus {
    Draft,
    Approved,
    Closed,
}

/// A credit note as the sync wants it in Reckon: a Cliniko credit note with its amounts
/// made positive, or the write-off that clears a Closed invoice's remainder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditNoteDraft {
    pub customer: ReckonId,
    /// The Cliniko credit note's number, or `Write-off <invoice number>`.
    pub reference: String,
    pub date: NaiveDate,
    pub amount_tax_status: AmountTaxStatus,
    /// Draft or Approved (only an approved credit note can be allocated).
    pub status: CreditNoteStatus,
    pub notes: Option<String>,
    /// Reckon credit-note lines take no discount: a discounted line is sent as one unit
    /// at its line amount.
    pub lines: Vec<InvoiceLineDraft>,
    /// What Reckon must compute, including tax (checked after writing).
    pub expected_total: Decimal,
    pub expected_tax: Decimal,
}

/// One allocation of a credit note to an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditAllocation {
    /// Reckon's link id (what unlinks it).
    pub link_id: Option<String>,
    pub invoice: ReckonId,
    pub amount: Decimal,
}

/// What the sync reads back about a Reckon credit note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReckonCreditNote {
    pub id: ReckonId,
    pub reference: Option<String>,
    pub customer: Option<ReckonId>,
    pub status: CreditNoteStatus,
    pub total_amount: Decimal,
    pub total_tax_amount: Decimal,
    /// What is not yet allocated to invoices.
    pub balance: Decimal,
    pub allocations: Vec<CreditAllocation>,
}

impl ReckonCreditNote {
    /// How much of this credit note is allocated to `invoice` (`None` on an overflow,
    /// which only absurd data from Reckon could cause).
    pub fn allocated_to(&self, invoice: ReckonId) -> Option<Decimal> {
        self.allocations
            .iter()
            .filter(|a| a.invoice == invoice)
            .try_fold(Decimal::ZERO, |sum, a| sum.checked_add(a.amount))
    }
}
