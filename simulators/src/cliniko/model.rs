//! Cliniko records as the simulator stores them. Attributes serialise exactly as the API
//! sends them; foreign keys are kept as `*_id` fields that never serialise (Cliniko responses
//! carry `{"links":{"self":…}}` objects instead, added by [`Resource::links`]).

use crate::common::wire;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A column value used by `q[]` filters and `sort`.
#[derive(Debug, Clone, PartialEq)]
pub enum Col<'a> {
    Null,
    Int(i64),
    Str(&'a str),
    Bool(bool),
    Time(DateTime<Utc>),
    Date(NaiveDate),
}

/// The filter grammar of a searchable column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Int,
    Str,
    Bool,
    Time,
    Date,
}

pub trait Resource: Serialize + Clone + Send + Sync + 'static {
    /// The list envelope key and path segment (`patients`).
    const PLURAL: &'static str;
    /// Columns accepted in `q[]` (per each list operation's description in `openapi.yaml`).
    const SEARCHABLE: &'static [(&'static str, ColType)];
    /// Extra columns accepted by `sort` only.
    const SORTABLE: &'static [&'static str] = &[];
    /// Timestamp columns whose non-null rows are hidden unless the query filters on them.
    const HIDDEN_UNLESS_ASKED: &'static [&'static str] = &["archived_at"];

    fn id(&self) -> u64;
    fn col(&self, name: &str) -> Col<'_>;
    /// Adds the association links (everything but `links.self`).
    fn links(&self, base: &str, out: &mut Map<String, Value>);
}

pub(crate) fn link(url: String) -> Value {
    json!({ "links": { "self": url } })
}

/// An association link, or no key at all when there is none: the OpenAPI schema types every
/// association as a non-nullable `{links: {self}}` object, so `null` would not conform.
fn opt_link(out: &mut Map<String, Value>, key: &str, url: Option<String>) {
    if let Some(url) = url {
        out.insert(key.to_string(), link(url));
    }
}

fn time(t: &Option<DateTime<Utc>>) -> Col<'static> {
    t.map(Col::Time).unwrap_or(Col::Null)
}

fn int(v: Option<u64>) -> Col<'static> {
    v.map(|v| Col::Int(v as i64)).unwrap_or(Col::Null)
}

fn text(v: &Option<String>) -> Col<'_> {
    v.as_deref().map(Col::Str).unwrap_or(Col::Null)
}

/// Renders a record as Cliniko sends it.
pub fn render<R: Resource>(record: &R, base: &str) -> Value {
    let mut value = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        record.links(base, map);
        map.insert(
            "links".into(),
            json!({ "self": format!("{base}/{}/{}", R::PLURAL, record.id()) }),
        );
    }
    value
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PhoneNumber {
    pub number: String,
    pub normalized_number: Option<String>,
    pub phone_type: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Patient {
    #[serde(with = "wire::id")]
    pub id: u64,
    pub title: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub preferred_first_name: Option<String>,
    pub label: Option<String>,
    #[serde(with = "wire::opt_date")]
    pub date_of_birth: Option<NaiveDate>,
    pub sex: Option<String>,
    pub gender_identity: Option<String>,
    pub pronouns: Option<Value>,
    pub email: Option<String>,
    pub invoice_email: Option<String>,
    pub invoice_default_to: Option<String>,
    pub invoice_extra_information: Option<String>,
    pub address_1: Option<String>,
    pub address_2: Option<String>,
    pub address_3: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub post_code: Option<String>,
    pub country: Option<String>,
    pub country_code: Option<String>,
    pub patient_phone_numbers: Vec<PhoneNumber>,
    pub time_zone: Option<String>,
    pub reminder_type: Option<String>,
    pub accepted_privacy_policy: Option<bool>,
    pub accepted_email_marketing: Option<bool>,
    pub accepted_sms_marketing: Option<bool>,
    pub receives_cancellation_emails: Option<bool>,
    pub receives_confirmation_emails: Option<bool>,
    pub medicare: Option<String>,
    pub medicare_reference_number: Option<String>,
    pub dva_card_number: Option<String>,
    pub emergency_contact: Option<String>,
    pub occupation: Option<String>,
    pub old_reference_id: Option<String>,
    pub referral_source: Option<String>,
    pub notes: Option<String>,
    pub appointment_notes: Option<String>,
    pub custom_fields: Option<Value>,
    #[serde(with = "wire::opt_timestamp")]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::opt_timestamp")]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::opt_timestamp")]
    pub merged_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub merged_with_patient_id: Option<u64>,
}

impl Patient {
    pub fn full_label(&self) -> String {
        let first = self
            .preferred_first_name
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(&self.first_name);
        format!("{first} {}", self.last_name).trim().to_string()
    }
}

impl Resource for Patient {
    const PLURAL: &'static str = "patients";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("accepted_privacy_policy", ColType::Bool),
        ("archived_at", ColType::Time),
        ("created_at", ColType::Time),
        ("date_of_birth", ColType::Date),
        ("email", ColType::Str),
        ("first_name", ColType::Str),
        ("id", ColType::Int),
        ("last_name", ColType::Str),
        ("old_reference_id", ColType::Str),
        ("preferred_first_name", ColType::Str),
        ("updated_at", ColType::Time),
    ];
    const SORTABLE: &'static [&'static str] = &["merged_at"];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "accepted_privacy_policy" => self
                .accepted_privacy_policy
                .map(Col::Bool)
                .unwrap_or(Col::Null),
            "archived_at" => time(&self.archived_at),
            "created_at" => Col::Time(self.created_at),
            "updated_at" => Col::Time(self.updated_at),
            "merged_at" => time(&self.merged_at),
            "date_of_birth" => self.date_of_birth.map(Col::Date).unwrap_or(Col::Null),
            "email" => text(&self.email),
            "first_name" => Col::Str(&self.first_name),
            "last_name" => Col::Str(&self.last_name),
            "old_reference_id" => text(&self.old_reference_id),
            "preferred_first_name" => text(&self.preferred_first_name),
            "id" => Col::Int(self.id as i64),
            _ => Col::Null,
        }
    }

    fn links(&self, base: &str, out: &mut Map<String, Value>) {
        let id = self.id;
        for (key, url) in [
            ("appointments", format!("{base}/patients/{id}/appointments")),
            (
                "attendees",
                format!("{base}/attendees?q%5B%5D=patient_id%3A%3D{id}"),
            ),
            (
                "invoices",
                format!("{base}/invoices?q%5B%5D=patient_id%3A%3D{id}"),
            ),
            (
                "medical_alerts",
                format!("{base}/patients/{id}/medical_alerts"),
            ),
            (
                "relationships",
                format!("{base}/patients/{id}/relationships"),
            ),
            (
                "patient_attachments",
                format!("{base}/patients/{id}/attachments"),
            ),
            (
                "latest_booking",
                format!("{base}/patients/{id}/latest_booking"),
            ),
        ] {
            out.insert(key.into(), link(url));
        }
        opt_link(
            out,
            "merged_with_patient",
            self.merged_with_patient_id
                .map(|m| format!("{base}/patients/{m}")),
        );
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Tax {
    #[serde(with = "wire::id")]
    pub id: u64,
    pub name: String,
    #[serde(with = "wire::decimal")]
    pub rate: Decimal,
    #[serde(with = "wire::decimal")]
    pub amount: Decimal,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Resource for Tax {
    const PLURAL: &'static str = "taxes";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("created_at", ColType::Time),
        ("id", ColType::Int),
        ("updated_at", ColType::Time),
    ];
    const SORTABLE: &'static [&'static str] = &["name"];
    const HIDDEN_UNLESS_ASKED: &'static [&'static str] = &[];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "id" => Col::Int(self.id as i64),
            "created_at" => Col::Time(self.created_at),
            "updated_at" => Col::Time(self.updated_at),
            "name" => Col::Str(&self.name),
            _ => Col::Null,
        }
    }

    fn links(&self, _base: &str, _out: &mut Map<String, Value>) {}
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Product {
    #[serde(with = "wire::id")]
    pub id: u64,
    pub name: String,
    pub item_code: Option<String>,
    pub serial_number: Option<String>,
    pub notes: Option<String>,
    #[serde(with = "wire::opt_decimal")]
    pub price_ex_tax: Option<Decimal>,
    #[serde(with = "wire::opt_decimal")]
    pub price_including_tax: Option<Decimal>,
    #[serde(with = "wire::opt_decimal")]
    pub cost_price: Option<Decimal>,
    #[serde(with = "wire::opt_decimal")]
    pub stock_level: Option<Decimal>,
    pub product_supplier_name: Option<String>,
    #[serde(with = "wire::opt_timestamp")]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub tax_id: Option<u64>,
}

impl Resource for Product {
    const PLURAL: &'static str = "products";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("archived_at", ColType::Time),
        ("created_at", ColType::Time),
        ("id", ColType::Int),
        ("name", ColType::Str),
        ("tax_id", ColType::Int),
        ("updated_at", ColType::Time),
    ];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "archived_at" => time(&self.archived_at),
            "created_at" => Col::Time(self.created_at),
            "updated_at" => Col::Time(self.updated_at),
            "id" => Col::Int(self.id as i64),
            "name" => Col::Str(&self.name),
            "tax_id" => int(self.tax_id),
            _ => Col::Null,
        }
    }

    fn links(&self, base: &str, out: &mut Map<String, Value>) {
        opt_link(out, "tax", self.tax_id.map(|t| format!("{base}/taxes/{t}")));
        out.insert(
            "stock_adjustments".into(),
            link(format!(
                "{base}/stock_adjustments?q%5B%5D=product_id%3A%3D{}",
                self.id
            )),
        );
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StockAdjustment {
    #[serde(with = "wire::id")]
    pub id: u64,
    pub adjustment_type: String,
    #[serde(with = "wire::opt_decimal")]
    pub quantity: Option<Decimal>,
    pub comment: Option<String>,
    pub notes: Option<String>,
    #[serde(with = "wire::opt_timestamp")]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub product_id: Option<u64>,
}

impl Resource for StockAdjustment {
    const PLURAL: &'static str = "stock_adjustments";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("archived_at", ColType::Time),
        ("created_at", ColType::Time),
        ("id", ColType::Int),
        ("product_id", ColType::Int),
        ("updated_at", ColType::Time),
    ];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "archived_at" => time(&self.archived_at),
            "created_at" => Col::Time(self.created_at),
            "updated_at" => Col::Time(self.updated_at),
            "id" => Col::Int(self.id as i64),
            "product_id" => int(self.product_id),
            _ => Col::Null,
        }
    }

    fn links(&self, base: &str, out: &mut Map<String, Value>) {
        opt_link(
            out,
            "product",
            self.product_id.map(|p| format!("{base}/products/{p}")),
        );
        out.insert("user".into(), link(format!("{base}/users/1")));
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct BillableItem {
    #[serde(with = "wire::id")]
    pub id: u64,
    pub name: String,
    pub item_code: Option<String>,
    /// `Product`, `Service` or `Other`.
    pub item_type: String,
    #[serde(with = "wire::decimal")]
    pub price: Decimal,
    #[serde(with = "wire::opt_timestamp")]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub tax_id: Option<u64>,
}

impl Resource for BillableItem {
    const PLURAL: &'static str = "billable_items";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("archived_at", ColType::Time),
        ("created_at", ColType::Time),
        ("id", ColType::Int),
        ("tax_id", ColType::Int),
        ("updated_at", ColType::Time),
    ];
    const SORTABLE: &'static [&'static str] = &["name"];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "archived_at" => time(&self.archived_at),
            "created_at" => Col::Time(self.created_at),
            "updated_at" => Col::Time(self.updated_at),
            "id" => Col::Int(self.id as i64),
            "tax_id" => int(self.tax_id),
            "name" => Col::Str(&self.name),
            _ => Col::Null,
        }
    }

    fn links(&self, base: &str, out: &mut Map<String, Value>) {
        opt_link(out, "tax", self.tax_id.map(|t| format!("{base}/taxes/{t}")));
    }
}

/// Invoice status codes.
pub mod invoice_status {
    pub const OPEN: i32 = 10;
    pub const PAID: i32 = 20;
    pub const CLOSED: i32 = 30;
    pub const OPEN_CREDIT: i32 = 40;

    pub fn description(status: i32) -> &'static str {
        match status {
            PAID => "Paid",
            CLOSED => "Closed",
            OPEN_CREDIT => "Open credit",
            _ => "Open",
        }
    }
}

/// Calculation methods: 1 legacy, 2 tax exclusive, 3 tax inclusive.
pub mod calculation_method {
    pub const LEGACY: i32 = 1;
    pub const TAX_EXCLUSIVE: i32 = 2;
    pub const TAX_INCLUSIVE: i32 = 3;

    pub fn description(method: i32) -> &'static str {
        match method {
            LEGACY => "Legacy",
            TAX_INCLUSIVE => "Tax inclusive",
            _ => "Tax exclusive",
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Invoice {
    #[serde(with = "wire::id")]
    pub id: u64,
    pub number: i64,
    #[serde(with = "wire::opt_date")]
    pub issue_date: Option<NaiveDate>,
    pub status: i32,
    pub status_description: String,
    pub calculation_method: i32,
    pub calculation_method_description: String,
    #[serde(with = "wire::opt_decimal")]
    pub total_amount: Option<Decimal>,
    #[serde(with = "wire::opt_decimal")]
    pub net_amount: Option<Decimal>,
    #[serde(with = "wire::opt_decimal")]
    pub tax_amount: Option<Decimal>,
    #[serde(with = "wire::opt_decimal")]
    pub discounted_amount: Option<Decimal>,
    pub notes: Option<String>,
    pub invoice_to: Option<String>,
    pub patient_extra_information: Option<String>,
    pub online_payment_url: Option<String>,
    #[serde(with = "wire::opt_timestamp")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::opt_timestamp")]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::opt_timestamp")]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub patient_id: Option<u64>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub business_id: Option<u64>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub practitioner_id: Option<u64>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub appointment_id: Option<u64>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub original_invoice_id: Option<u64>,
}

impl Resource for Invoice {
    const PLURAL: &'static str = "invoices";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("appointment_id", ColType::Int),
        ("archived_at", ColType::Time),
        ("attendee_id", ColType::Int),
        ("business_id", ColType::Int),
        ("closed_at", ColType::Time),
        ("created_at", ColType::Time),
        ("deleted_at", ColType::Time),
        ("id", ColType::Int),
        ("issue_date", ColType::Date),
        ("number", ColType::Int),
        ("original_invoice_id", ColType::Int),
        ("patient_id", ColType::Int),
        ("practitioner_id", ColType::Int),
        ("status", ColType::Int),
        ("updated_at", ColType::Time),
    ];
    const HIDDEN_UNLESS_ASKED: &'static [&'static str] = &["archived_at", "deleted_at"];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "appointment_id" => int(self.appointment_id),
            "archived_at" => time(&self.archived_at),
            "business_id" => int(self.business_id),
            "closed_at" => time(&self.closed_at),
            "created_at" => Col::Time(self.created_at),
            "deleted_at" => time(&self.deleted_at),
            "id" => Col::Int(self.id as i64),
            "issue_date" => self.issue_date.map(Col::Date).unwrap_or(Col::Null),
            "number" => Col::Int(self.number),
            "original_invoice_id" => int(self.original_invoice_id),
            "patient_id" => int(self.patient_id),
            "practitioner_id" => int(self.practitioner_id),
            "status" => Col::Int(i64::from(self.status)),
            "updated_at" => Col::Time(self.updated_at),
            _ => Col::Null,
        }
    }

    fn links(&self, base: &str, out: &mut Map<String, Value>) {
        opt_link(
            out,
            "patient",
            self.patient_id.map(|v| format!("{base}/patients/{v}")),
        );
        opt_link(
            out,
            "business",
            self.business_id.map(|v| format!("{base}/businesses/{v}")),
        );
        opt_link(
            out,
            "practitioner",
            self.practitioner_id
                .map(|v| format!("{base}/practitioners/{v}")),
        );
        opt_link(
            out,
            "appointment",
            self.appointment_id
                .map(|v| format!("{base}/appointments/{v}")),
        );
        opt_link(
            out,
            "original_invoice",
            self.original_invoice_id
                .map(|v| format!("{base}/invoices/{v}")),
        );
        out.insert(
            "invoice_items".into(),
            link(format!("{base}/invoices/{}/invoice_items", self.id)),
        );
        out.insert(
            "reversed_invoices".into(),
            link(format!(
                "{base}/invoices?q%5B%5D=original_invoice_id%3A%3D{}",
                self.id
            )),
        );
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct InvoiceItem {
    #[serde(with = "wire::id")]
    pub id: u64,
    pub name: Option<String>,
    pub code: Option<String>,
    pub concession_type_name: Option<String>,
    #[serde(with = "wire::decimal")]
    pub unit_price: Decimal,
    #[serde(with = "wire::decimal")]
    pub quantity: Decimal,
    #[serde(with = "wire::opt_decimal")]
    pub discount_percentage: Option<Decimal>,
    #[serde(with = "wire::opt_decimal")]
    pub discounted_amount: Option<Decimal>,
    pub is_monetary_discount: Option<bool>,
    #[serde(with = "wire::opt_decimal")]
    pub net_price: Option<Decimal>,
    pub tax_name: Option<String>,
    #[serde(with = "wire::opt_decimal")]
    pub tax_rate: Option<Decimal>,
    /// Deprecated in favour of `tax_rate`; the simulator sends the line's tax in money.
    #[serde(with = "wire::opt_decimal")]
    pub tax_amount: Option<Decimal>,
    #[serde(with = "wire::opt_decimal_number")]
    pub total_including_tax: Option<Decimal>,
    #[serde(with = "wire::opt_timestamp")]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::opt_timestamp")]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub invoice_id: Option<u64>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub product_id: Option<u64>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub billable_item_id: Option<u64>,
}

impl Resource for InvoiceItem {
    const PLURAL: &'static str = "invoice_items";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("archived_at", ColType::Time),
        ("created_at", ColType::Time),
        ("deleted_at", ColType::Time),
        ("id", ColType::Int),
        ("invoice_id", ColType::Int),
        ("source_item_id", ColType::Int),
        ("updated_at", ColType::Time),
    ];
    const HIDDEN_UNLESS_ASKED: &'static [&'static str] = &["archived_at", "deleted_at"];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "archived_at" => time(&self.archived_at),
            "created_at" => Col::Time(self.created_at),
            "deleted_at" => time(&self.deleted_at),
            "updated_at" => Col::Time(self.updated_at),
            "id" => Col::Int(self.id as i64),
            "invoice_id" => int(self.invoice_id),
            "source_item_id" => int(self.product_id.or(self.billable_item_id)),
            _ => Col::Null,
        }
    }

    fn links(&self, base: &str, out: &mut Map<String, Value>) {
        opt_link(
            out,
            "invoice",
            self.invoice_id.map(|v| format!("{base}/invoices/{v}")),
        );
        // An item links its product or its billable item, never both.
        if let Some(p) = self.product_id {
            out.insert("product".into(), link(format!("{base}/products/{p}")));
        }
        if let Some(b) = self.billable_item_id {
            out.insert(
                "billable_item".into(),
                link(format!("{base}/billable_items/{b}")),
            );
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Business {
    #[serde(with = "wire::id")]
    pub id: u64,
    pub business_name: Option<String>,
    pub display_name: Option<String>,
    pub label: Option<String>,
    pub address_1: Option<String>,
    pub address_2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub post_code: Option<String>,
    pub country: Option<String>,
    pub country_code: Option<String>,
    pub business_registration_name: Option<String>,
    pub business_registration_value: Option<String>,
    pub contact_information: Option<String>,
    pub email_reply_to: Option<String>,
    pub website_address: Option<String>,
    pub additional_information: Option<String>,
    pub additional_invoice_information: Option<String>,
    pub appointment_reminders_enabled: Option<bool>,
    pub show_in_online_bookings: Option<bool>,
    pub appointment_type_ids: Vec<String>,
    pub time_zone: Option<String>,
    pub time_zone_identifier: Option<String>,
    #[serde(with = "wire::opt_timestamp")]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::opt_timestamp")]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Resource for Business {
    const PLURAL: &'static str = "businesses";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("archived_at", ColType::Time),
        ("created_at", ColType::Time),
        ("deleted_at", ColType::Time),
        ("id", ColType::Int),
        ("show_in_online_bookings", ColType::Bool),
        ("updated_at", ColType::Time),
    ];
    const HIDDEN_UNLESS_ASKED: &'static [&'static str] = &["archived_at", "deleted_at"];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "archived_at" => time(&self.archived_at),
            "deleted_at" => time(&self.deleted_at),
            "created_at" => Col::Time(self.created_at),
            "updated_at" => Col::Time(self.updated_at),
            "id" => Col::Int(self.id as i64),
            "show_in_online_bookings" => self
                .show_in_online_bookings
                .map(Col::Bool)
                .unwrap_or(Col::Null),
            _ => Col::Null,
        }
    }

    fn links(&self, base: &str, out: &mut Map<String, Value>) {
        out.insert(
            "practitioners".into(),
            link(format!("{base}/businesses/{}/practitioners", self.id)),
        );
        out.insert(
            "appointments".into(),
            link(format!("{base}/businesses/{}/appointments", self.id)),
        );
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Practitioner {
    #[serde(with = "wire::id")]
    pub id: u64,
    pub active: Option<bool>,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub label: Option<String>,
    pub designation: Option<String>,
    pub description: Option<String>,
    pub show_in_online_bookings: Option<bool>,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Resource for Practitioner {
    const PLURAL: &'static str = "practitioners";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("active", ColType::Bool),
        ("created_at", ColType::Time),
        ("id", ColType::Int),
        ("show_in_online_bookings", ColType::Bool),
        ("updated_at", ColType::Time),
        ("user_id", ColType::Int),
    ];
    const HIDDEN_UNLESS_ASKED: &'static [&'static str] = &[];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "active" => self.active.map(Col::Bool).unwrap_or(Col::Null),
            "show_in_online_bookings" => self
                .show_in_online_bookings
                .map(Col::Bool)
                .unwrap_or(Col::Null),
            "created_at" => Col::Time(self.created_at),
            "updated_at" => Col::Time(self.updated_at),
            "id" => Col::Int(self.id as i64),
            _ => Col::Null,
        }
    }

    fn links(&self, base: &str, out: &mut Map<String, Value>) {
        let id = self.id;
        out.insert("user".into(), link(format!("{base}/users/{id}")));
        out.insert(
            "appointments".into(),
            link(format!("{base}/practitioners/{id}/appointments")),
        );
        out.insert(
            "invoices".into(),
            link(format!("{base}/practitioners/{id}/invoices")),
        );
        out.insert(
            "appointment_types".into(),
            link(format!("{base}/practitioners/{id}/appointment_types")),
        );
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AppointmentType {
    #[serde(with = "wire::id")]
    pub id: u64,
    pub name: String,
    pub category: Option<String>,
    pub description: Option<String>,
    pub color: String,
    pub duration_in_minutes: i64,
    pub max_attendees: i64,
    pub show_in_online_bookings: Option<bool>,
    pub telehealth_enabled: Option<bool>,
    #[serde(with = "wire::opt_decimal")]
    pub deposit_price: Option<Decimal>,
    #[serde(with = "wire::opt_timestamp")]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
    /// The billable item an appointment of this type is charged with (deprecated link).
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub billable_item_id: Option<u64>,
}

impl Resource for AppointmentType {
    const PLURAL: &'static str = "appointment_types";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("archived_at", ColType::Time),
        ("category", ColType::Str),
        ("created_at", ColType::Time),
        ("id", ColType::Int),
        ("show_in_online_bookings", ColType::Bool),
        ("updated_at", ColType::Time),
    ];
    const SORTABLE: &'static [&'static str] = &["name"];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "archived_at" => time(&self.archived_at),
            "category" => text(&self.category),
            "created_at" => Col::Time(self.created_at),
            "updated_at" => Col::Time(self.updated_at),
            "id" => Col::Int(self.id as i64),
            "name" => Col::Str(&self.name),
            "show_in_online_bookings" => self
                .show_in_online_bookings
                .map(Col::Bool)
                .unwrap_or(Col::Null),
            _ => Col::Null,
        }
    }

    fn links(&self, base: &str, out: &mut Map<String, Value>) {
        let id = self.id;
        opt_link(
            out,
            "billable_item",
            self.billable_item_id
                .map(|b| format!("{base}/billable_items/{b}")),
        );
        out.insert(
            "practitioners".into(),
            link(format!("{base}/appointment_types/{id}/practitioners")),
        );
        out.insert(
            "appointment_type_billable_items".into(),
            link(format!(
                "{base}/appointment_types/{id}/appointment_type_billable_items"
            )),
        );
        out.insert(
            "appointment_type_products".into(),
            link(format!(
                "{base}/appointment_types/{id}/appointment_type_products"
            )),
        );
    }
}

/// What an appointment of a type is charged with: one billable item, its quantity and
/// discount (`/appointment_type_billable_items`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AppointmentTypeBillableItem {
    #[serde(with = "wire::id")]
    pub id: u64,
    #[serde(with = "wire::decimal")]
    pub quantity: Decimal,
    #[serde(with = "wire::opt_decimal")]
    pub discount_percentage: Option<Decimal>,
    #[serde(with = "wire::opt_decimal")]
    pub discounted_amount: Option<Decimal>,
    pub is_monetary_discount: Option<bool>,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub appointment_type_id: Option<u64>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub billable_item_id: Option<u64>,
}

impl Resource for AppointmentTypeBillableItem {
    const PLURAL: &'static str = "appointment_type_billable_items";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("appointment_type_id", ColType::Int),
        ("billable_item_id", ColType::Int),
        ("created_at", ColType::Time),
        ("id", ColType::Int),
        ("updated_at", ColType::Time),
    ];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "appointment_type_id" => int(self.appointment_type_id),
            "billable_item_id" => int(self.billable_item_id),
            "created_at" => Col::Time(self.created_at),
            "updated_at" => Col::Time(self.updated_at),
            "id" => Col::Int(self.id as i64),
            _ => Col::Null,
        }
    }

    fn links(&self, base: &str, out: &mut Map<String, Value>) {
        opt_link(
            out,
            "appointment_type",
            self.appointment_type_id
                .map(|v| format!("{base}/appointment_types/{v}")),
        );
        opt_link(
            out,
            "billable_item",
            self.billable_item_id
                .map(|v| format!("{base}/billable_items/{v}")),
        );
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IndividualAppointment {
    #[serde(with = "wire::id")]
    pub id: u64,
    #[serde(with = "wire::timestamp")]
    pub starts_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub ends_at: DateTime<Utc>,
    pub patient_name: Option<String>,
    pub notes: Option<String>,
    pub did_not_arrive: Option<bool>,
    pub patient_arrived: Option<bool>,
    pub email_reminder_sent: Option<bool>,
    pub sms_reminder_sent: Option<bool>,
    /// 10 open, 20 paid, 30 closed, 40 open credit; null when not invoiced.
    pub invoice_status: Option<i32>,
    /// 10 draft, 90 final.
    pub treatment_note_status: Option<i32>,
    #[serde(with = "wire::opt_timestamp")]
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancellation_reason: Option<i32>,
    pub cancellation_reason_description: Option<String>,
    pub cancellation_note: Option<String>,
    #[serde(with = "wire::opt_timestamp")]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::opt_timestamp")]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub patient_id: Option<u64>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub practitioner_id: Option<u64>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub business_id: Option<u64>,
    #[serde(with = "wire::opt_id", skip_serializing)]
    pub appointment_type_id: Option<u64>,
}

impl Resource for IndividualAppointment {
    const PLURAL: &'static str = "individual_appointments";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("appointment_type_id", ColType::Int),
        ("archived_at", ColType::Time),
        ("business_id", ColType::Int),
        ("cancelled_at", ColType::Time),
        ("created_at", ColType::Time),
        ("deleted_at", ColType::Time),
        ("did_not_arrive", ColType::Bool),
        ("ends_at", ColType::Time),
        ("id", ColType::Int),
        ("patient_id", ColType::Int),
        ("practitioner_id", ColType::Int),
        ("repeated_from_id", ColType::Int),
        ("starts_at", ColType::Time),
        ("updated_at", ColType::Time),
    ];
    const HIDDEN_UNLESS_ASKED: &'static [&'static str] =
        &["archived_at", "cancelled_at", "deleted_at"];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "appointment_type_id" => int(self.appointment_type_id),
            "archived_at" => time(&self.archived_at),
            "business_id" => int(self.business_id),
            "cancelled_at" => time(&self.cancelled_at),
            "created_at" => Col::Time(self.created_at),
            "deleted_at" => time(&self.deleted_at),
            "did_not_arrive" => self.did_not_arrive.map(Col::Bool).unwrap_or(Col::Null),
            "ends_at" => Col::Time(self.ends_at),
            "starts_at" => Col::Time(self.starts_at),
            "updated_at" => Col::Time(self.updated_at),
            "id" => Col::Int(self.id as i64),
            "patient_id" => int(self.patient_id),
            "practitioner_id" => int(self.practitioner_id),
            _ => Col::Null,
        }
    }

    fn links(&self, base: &str, out: &mut Map<String, Value>) {
        let id = self.id;
        opt_link(
            out,
            "patient",
            self.patient_id.map(|v| format!("{base}/patients/{v}")),
        );
        opt_link(
            out,
            "practitioner",
            self.practitioner_id
                .map(|v| format!("{base}/practitioners/{v}")),
        );
        opt_link(
            out,
            "business",
            self.business_id.map(|v| format!("{base}/businesses/{v}")),
        );
        opt_link(
            out,
            "appointment_type",
            self.appointment_type_id
                .map(|v| format!("{base}/appointment_types/{v}")),
        );
        out.insert(
            "attendees".into(),
            link(format!("{base}/individual_appointments/{id}/attendees")),
        );
        out.insert(
            "conflicts".into(),
            link(format!("{base}/individual_appointments/{id}/conflicts")),
        );
        out.insert(
            "repeats".into(),
            link(format!(
                "{base}/individual_appointments?q%5B%5D=repeated_from_id%3A%3D{id}"
            )),
        );
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Contact {
    #[serde(with = "wire::id")]
    pub id: u64,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub preferred_name: Option<String>,
    pub company_name: Option<String>,
    pub occupation: Option<String>,
    pub doctor_type: Option<String>,
    pub provider_number: Option<String>,
    pub email: Option<String>,
    pub phone_numbers: Vec<PhoneNumber>,
    pub address_1: Option<String>,
    pub address_2: Option<String>,
    pub address_3: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub post_code: Option<String>,
    pub country: Option<String>,
    pub country_code: Option<String>,
    pub notes: Option<String>,
    #[serde(rename = "type")]
    pub contact_type: Option<String>,
    #[serde(with = "wire::opt_timestamp")]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::opt_timestamp")]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(with = "wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "wire::timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Resource for Contact {
    const PLURAL: &'static str = "contacts";
    const SEARCHABLE: &'static [(&'static str, ColType)] = &[
        ("archived_at", ColType::Time),
        ("company_name", ColType::Str),
        ("created_at", ColType::Time),
        ("deleted_at", ColType::Time),
        ("email", ColType::Str),
        ("first_name", ColType::Str),
        ("id", ColType::Int),
        ("last_name", ColType::Str),
        ("occupation", ColType::Str),
        ("updated_at", ColType::Time),
    ];
    const HIDDEN_UNLESS_ASKED: &'static [&'static str] = &["archived_at", "deleted_at"];

    fn id(&self) -> u64 {
        self.id
    }

    fn col(&self, name: &str) -> Col<'_> {
        match name {
            "archived_at" => time(&self.archived_at),
            "deleted_at" => time(&self.deleted_at),
            "created_at" => Col::Time(self.created_at),
            "updated_at" => Col::Time(self.updated_at),
            "id" => Col::Int(self.id as i64),
            "company_name" => text(&self.company_name),
            "email" => text(&self.email),
            "first_name" => text(&self.first_name),
            "last_name" => text(&self.last_name),
            "occupation" => text(&self.occupation),
            _ => Col::Null,
        }
    }

    fn links(&self, _base: &str, _out: &mut Map<String, Value>) {}
}
