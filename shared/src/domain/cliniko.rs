//! Cliniko records as the sync sees them: only the fields the mapping uses (patient data is
//! health information; Medicare/DVA numbers, notes and custom fields never enter here).

use super::ClinikoId;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The Cliniko record types the sync polls, each with its own watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Patient,
    Product,
    BillableItem,
    Invoice,
    /// Individual appointments, invoiced when complete under `[invoicing] source`.
    Appointment,
}

impl EntityKind {
    /// In dependency order: what an invoice refers to is synced before invoices.
    /// Appointments come after invoices: where both are read, a Cliniko invoice for an
    /// appointment is applied first and the appointment then finds it.
    pub const ALL: [EntityKind; 5] = [
        EntityKind::Patient,
        EntityKind::Product,
        EntityKind::BillableItem,
        EntityKind::Invoice,
        EntityKind::Appointment,
    ];

    /// The name used in state keys, queues, logs and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Patient => "patient",
            EntityKind::Product => "product",
            EntityKind::BillableItem => "billable_item",
            EntityKind::Invoice => "invoice",
            EntityKind::Appointment => "appointment",
        }
    }

    pub fn parse(s: &str) -> Option<EntityKind> {
        EntityKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Postal address as Cliniko holds it: up to three lines plus locality fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// `address_1..3`, empty lines removed.
    pub lines: Vec<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub post_code: Option<String>,
    /// ISO 3166-1 alpha-2 (`AU`).
    pub country_code: Option<String>,
}

impl Address {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
            && self.city.is_none()
            && self.state.is_none()
            && self.post_code.is_none()
            && self.country_code.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PhoneKind {
    Mobile,
    Home,
    Work,
    Fax,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phone {
    pub kind: PhoneKind,
    pub number: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patient {
    pub id: ClinikoId,
    pub title: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub preferred_first_name: Option<String>,
    pub email: Option<String>,
    /// Where invoices go when it differs from `email`.
    pub invoice_email: Option<String>,
    pub address: Address,
    pub phones: Vec<Phone>,
    pub archived_at: Option<DateTime<Utc>>,
    pub merged_at: Option<DateTime<Utc>>,
    /// The surviving patient after a merge.
    pub merged_into: Option<ClinikoId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Patient {
    /// Archived or merged away: the customer stays in Reckon, marked Inactive.
    pub fn is_inactive(&self) -> bool {
        self.archived_at.is_some() || self.merged_at.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tax {
    pub id: ClinikoId,
    pub name: String,
    /// Percentage (10 for GST).
    pub rate: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: ClinikoId,
    pub name: String,
    pub item_code: Option<String>,
    pub price_ex_tax: Option<Decimal>,
    pub price_including_tax: Option<Decimal>,
    pub tax_id: Option<ClinikoId>,
    /// Reported only: Reckon One items have no stock fields.
    pub stock_level: Option<Decimal>,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillableItem {
    pub id: ClinikoId,
    pub name: String,
    pub item_code: Option<String>,
    /// Cliniko's `item_type` ("Service", "Other", …).
    pub item_type: String,
    /// Price excluding tax.
    pub price: Decimal,
    pub tax_id: Option<ClinikoId>,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Cliniko invoice status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InvoiceStatus {
    /// 10
    Open,
    /// 20
    Paid,
    /// 30
    Closed,
    /// 40
    OpenCredit,
}

impl InvoiceStatus {
    pub fn from_code(code: i64) -> Option<InvoiceStatus> {
        match code {
            10 => Some(InvoiceStatus::Open),
            20 => Some(InvoiceStatus::Paid),
            30 => Some(InvoiceStatus::Closed),
            40 => Some(InvoiceStatus::OpenCredit),
            _ => None,
        }
    }

    pub fn code(self) -> i64 {
        match self {
            InvoiceStatus::Open => 10,
            InvoiceStatus::Paid => 20,
            InvoiceStatus::Closed => 30,
            InvoiceStatus::OpenCredit => 40,
        }
    }
}

/// Cliniko's `calculation_method`: whether unit prices include tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaxCalculation {
    /// 1 (Legacy) and 2 (Tax exclusive): prices exclude tax, tax is added.
    Exclusive,
    /// 3: prices include tax.
    Inclusive,
}

impl TaxCalculation {
    pub fn from_code(code: i64) -> Option<TaxCalculation> {
        match code {
            1 | 2 => Some(TaxCalculation::Exclusive),
            3 => Some(TaxCalculation::Inclusive),
            _ => None,
        }
    }
}

/// A line's discount as Cliniko states it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Discount {
    None,
    /// 0–100.
    Percent(Decimal),
    /// Money off the line.
    Amount(Decimal),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceItem {
    pub id: ClinikoId,
    pub invoice_id: ClinikoId,
    pub name: String,
    pub code: Option<String>,
    /// Excluding tax.
    pub unit_price: Decimal,
    pub quantity: Decimal,
    pub discount: Discount,
    /// Line amount after discount, excluding tax.
    pub net_price: Decimal,
    pub tax_name: Option<String>,
    /// Percentage; 0 for GST-free lines.
    pub tax_rate: Decimal,
    pub tax_amount: Decimal,
    pub total_including_tax: Decimal,
    pub product_id: Option<ClinikoId>,
    pub billable_item_id: Option<ClinikoId>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: ClinikoId,
    /// Cliniko's invoice number; Reckon's `reference`.
    pub number: i64,
    pub issue_date: Option<NaiveDate>,
    pub status: InvoiceStatus,
    pub calculation: TaxCalculation,
    /// Including tax.
    pub total_amount: Decimal,
    pub net_amount: Decimal,
    pub tax_amount: Decimal,
    pub notes: Option<String>,
    pub patient_id: Option<ClinikoId>,
    pub business_id: Option<ClinikoId>,
    pub appointment_id: Option<ClinikoId>,
    pub closed_at: Option<DateTime<Utc>>,
    pub archived_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Its live (not archived or deleted) invoice items.
    pub items: Vec<InvoiceItem>,
    /// For a credit note (a reversal): the invoice it reverses.
    #[serde(default)]
    pub original_invoice_id: Option<ClinikoId>,
    /// For a Closed invoice: the live credit notes that reverse it (read with it, so
    /// the sync knows how much of its balance they clear); empty for other statuses.
    #[serde(default)]
    pub reversals: Vec<Reversal>,
}

/// A credit note that reverses an invoice, as far as settling the invoice needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reversal {
    pub id: ClinikoId,
    pub number: i64,
    pub status: InvoiceStatus,
    /// Negative, including tax.
    pub total_amount: Decimal,
    pub created_at: DateTime<Utc>,
}

/// What a Cliniko invoice is in accounting terms; decides its Reckon representation
/// (see docs/cliniko-invoice-statuses.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceRole {
    /// A sale: a Reckon invoice.
    Sale,
    /// A negative total (a reversal or a credit): a Reckon credit note.
    Credit,
}

impl Invoice {
    pub fn role(&self) -> InvoiceRole {
        if self.total_amount.is_sign_negative() && !self.total_amount.is_zero() {
            InvoiceRole::Credit
        } else {
            InvoiceRole::Sale
        }
    }

    /// Whether Cliniko needs the reversals read with this invoice (see `reversals`): every
    /// sale, since a credit note used on it lowers what it owes whatever its status.
    pub fn wants_reversals(&self) -> bool {
        self.role() == InvoiceRole::Sale
    }

    /// Whether a credit note that reverses this invoice (with `status`, made at
    /// `created_at`) was used on it: a used (Closed) one on an Open or Closed invoice, or on
    /// a Paid one it existed before the invoice was settled; a credit made after a Paid
    /// invoice was settled is a refund or credit spent elsewhere, and an Open credit one is
    /// unused.
    pub fn credited_by(&self, status: InvoiceStatus, created_at: DateTime<Utc>) -> bool {
        if status != InvoiceStatus::Closed || self.role() != InvoiceRole::Sale {
            return false;
        }
        match self.status {
            InvoiceStatus::Open | InvoiceStatus::Closed => true,
            InvoiceStatus::Paid => self.closed_at.is_none_or(|settled| created_at <= settled),
            InvoiceStatus::OpenCredit => false,
        }
    }

    /// The reversals used on this invoice (see [`Invoice::credited_by`]).
    pub fn used_reversals(&self) -> impl Iterator<Item = &Reversal> {
        self.reversals
            .iter()
            .filter(|r| self.credited_by(r.status, r.created_at))
    }

    /// The version that orders edits: an item edit may move only the item's `updated_at`.
    pub fn version(&self) -> DateTime<Utc> {
        self.items
            .iter()
            .map(|i| i.updated_at)
            .fold(self.updated_at, |a, b| a.max(b))
    }
}

/// An individual appointment, as far as invoicing it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appointment {
    pub id: ClinikoId,
    pub patient_id: Option<ClinikoId>,
    pub practitioner_id: Option<ClinikoId>,
    pub business_id: Option<ClinikoId>,
    pub appointment_type_id: Option<ClinikoId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Marked arrived in Cliniko (`patient_arrived`).
    pub arrived: bool,
    pub did_not_arrive: bool,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub archived_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One line an appointment of a type is charged with (`appointment_type_billable_items`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentTypeLine {
    pub id: ClinikoId,
    pub appointment_type_id: ClinikoId,
    pub billable_item_id: ClinikoId,
    pub quantity: Decimal,
    pub discount: Discount,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Business {
    pub id: ClinikoId,
    pub name: String,
    /// IANA zone (`Australia/Hobart`); `None` when Cliniko has none.
    pub time_zone: Option<String>,
}

/// How far ahead of our clock a Cliniko timestamp may be before it is taken as wrong: a
/// record stamped in 2099 must not carry the watermark (or its own version) there, or no
/// later change would ever sync.
pub const FUTURE_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// One changed Cliniko record, as queued for the sync workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
pub enum Record {
    Patient(Patient),
    Product(Product),
    BillableItem(BillableItem),
    Invoice(Invoice),
    Appointment(Appointment),
}

impl Record {
    pub fn kind(&self) -> EntityKind {
        match self {
            Record::Patient(_) => EntityKind::Patient,
            Record::Product(_) => EntityKind::Product,
            Record::BillableItem(_) => EntityKind::BillableItem,
            Record::Invoice(_) => EntityKind::Invoice,
            Record::Appointment(_) => EntityKind::Appointment,
        }
    }

    pub fn id(&self) -> ClinikoId {
        match self {
            Record::Patient(r) => r.id,
            Record::Product(r) => r.id,
            Record::BillableItem(r) => r.id,
            Record::Invoice(r) => r.id,
            Record::Appointment(r) => r.id,
        }
    }

    /// An invoice archived or deleted in Cliniko: never created in Reckon if it was not
    /// synced before (nothing is deleted in Reckon either way).
    pub fn is_withdrawn_invoice(&self) -> bool {
        matches!(self, Record::Invoice(i) if i.archived_at.is_some() || i.deleted_at.is_some())
    }

    /// Takes every version timestamp later than `limit` as `now` (see
    /// [`FUTURE_TOLERANCE`]), so the record's next real edit is newer; returns whether any
    /// was.
    pub fn clamp_versions(&mut self, limit: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let mut clamped = false;
        let mut clamp = |t: &mut DateTime<Utc>| {
            if *t > limit {
                *t = now;
                clamped = true;
            }
        };
        match self {
            Record::Patient(r) => clamp(&mut r.updated_at),
            Record::Product(r) => clamp(&mut r.updated_at),
            Record::BillableItem(r) => clamp(&mut r.updated_at),
            Record::Invoice(r) => {
                clamp(&mut r.updated_at);
                for item in &mut r.items {
                    clamp(&mut item.updated_at);
                }
            }
            Record::Appointment(r) => clamp(&mut r.updated_at),
        }
        clamped
    }

    /// The version the sync orders by (never applies an older one over a newer).
    pub fn version(&self) -> DateTime<Utc> {
        match self {
            Record::Patient(r) => r.updated_at,
            Record::Product(r) => r.updated_at,
            Record::BillableItem(r) => r.updated_at,
            Record::Invoice(r) => r.version(),
            Record::Appointment(r) => r.updated_at,
        }
    }
}
