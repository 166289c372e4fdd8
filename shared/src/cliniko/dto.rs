//! Cliniko's wire shapes (private) and their conversion to domain types.
//!
//! Tolerant of what the live API and its legacy examples send: ids as strings or numbers
//! (exact `u64`, never through a float), money and quantities as decimal strings or JSON
//! numbers, `""` for null timestamps and strings, duplicate keys (the last wins, because the
//! body is read into a JSON tree first), and association links in place of `*_id` fields.
//! Only the fields of the domain types are read; everything else is ignored.

use super::ClinikoError;
use crate::domain::{
    Address, Appointment, AppointmentTypeLine, BillableItem, Business, ClinikoId, Discount,
    Invoice, InvoiceItem, InvoiceStatus, Patient, Phone, PhoneKind, Product, Tax, TaxCalculation,
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

// ---- lenient scalar readers ----------------------------------------------------------

mod lenient {
    use chrono::{DateTime, NaiveDate, Utc};
    use rust_decimal::Decimal;
    use serde::Deserialize;
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;
    use std::str::FromStr;

    /// A JSON scalar kept as text: strings as they are, integers exactly, floats in their
    /// shortest round-trip form. `None` for null (and for `""`, which legacy examples use).
    struct Text;

    impl<'de> Visitor<'de> for Text {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string, a number or null")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            Ok((!v.is_empty()).then(|| v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() {
                Ok(Some(v.to_string()))
            } else {
                Err(E::custom("not a finite number"))
            }
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Text)
        }
    }

    fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(Text)
    }

    pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match text(d)? {
            None => Ok(None),
            // Only plain digits: "1.0" or "1e3" would mean a float went through somewhere.
            Some(t) if t.bytes().all(|b| b.is_ascii_digit()) => u64::from_str(&t)
                .map(Some)
                .map_err(|_| de::Error::custom(format!("id {t:?} does not fit in 64 bits"))),
            Some(t) => Err(de::Error::custom(format!("{t:?} is not an integer id"))),
        }
    }

    pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match text(d)? {
            None => Ok(None),
            Some(t) => i64::from_str(&t)
                .map(Some)
                .map_err(|_| de::Error::custom(format!("{t:?} is not an integer"))),
        }
    }

    pub fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        match text(d)? {
            None => Ok(None),
            Some(t) => Decimal::from_str(&t)
                .or_else(|_| Decimal::from_scientific(&t))
                .map(Some)
                .map_err(|_| de::Error::custom(format!("{t:?} is not a decimal"))),
        }
    }

    pub fn opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match text(d)? {
            None => Ok(None),
            Some(t) => DateTime::parse_from_rfc3339(&t)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| de::Error::custom(format!("{t:?} is not an ISO-8601 timestamp"))),
        }
    }

    pub fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
        match text(d)? {
            None => Ok(None),
            Some(t) => NaiveDate::parse_from_str(&t, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| de::Error::custom(format!("{t:?} is not a YYYY-MM-DD date"))),
        }
    }

    /// A free-text field: `None` for null and for blank strings.
    pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        text(d)
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match text(d)? {
            None => Ok(None),
            Some(t) => match t.as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(de::Error::custom(format!("{t:?} is not a boolean"))),
            },
        }
    }

    /// Reads booleans as JSON booleans too (`Text` only sees scalars that are not bools).
    pub fn opt_bool_any<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum B {
            Bool(bool),
            Other(serde_json::Value),
        }
        match Option::<B>::deserialize(d)? {
            None => Ok(None),
            Some(B::Bool(b)) => Ok(Some(b)),
            Some(B::Other(v)) => opt_bool(v).map_err(de::Error::custom),
        }
    }
}

// ---- wire shapes ---------------------------------------------------------------------

/// `{"links":{"self":"https://…/v1/<plural>/<id>"}}`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Link {
    links: Option<SelfLink>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SelfLink {
    #[serde(rename = "self")]
    self_: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PhoneDto {
    #[serde(deserialize_with = "lenient::opt_text")]
    number: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    phone_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct PatientDto {
    #[serde(deserialize_with = "lenient::opt_id")]
    id: Option<u64>,
    #[serde(deserialize_with = "lenient::opt_text")]
    title: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    first_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    last_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    preferred_first_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    email: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    invoice_email: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    address_1: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    address_2: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    address_3: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    city: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    state: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    post_code: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    country_code: Option<String>,
    patient_phone_numbers: Option<Vec<PhoneDto>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    archived_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    merged_at: Option<DateTime<Utc>>,
    merged_with_patient: Option<Link>,
    #[serde(deserialize_with = "lenient::opt_time")]
    created_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct TaxDto {
    #[serde(deserialize_with = "lenient::opt_id")]
    id: Option<u64>,
    #[serde(deserialize_with = "lenient::opt_text")]
    name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    rate: Option<Decimal>,
    /// Deprecated alias of `rate`.
    #[serde(deserialize_with = "lenient::opt_decimal")]
    amount: Option<Decimal>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ProductDto {
    #[serde(deserialize_with = "lenient::opt_id")]
    id: Option<u64>,
    #[serde(deserialize_with = "lenient::opt_text")]
    name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    item_code: Option<String>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    price_ex_tax: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    price_including_tax: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    stock_level: Option<Decimal>,
    tax: Option<Link>,
    #[serde(deserialize_with = "lenient::opt_time")]
    archived_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    created_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct BillableItemDto {
    #[serde(deserialize_with = "lenient::opt_id")]
    id: Option<u64>,
    #[serde(deserialize_with = "lenient::opt_text")]
    name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    item_code: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    item_type: Option<String>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    price: Option<Decimal>,
    tax: Option<Link>,
    #[serde(deserialize_with = "lenient::opt_time")]
    archived_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    created_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct AppointmentDto {
    #[serde(deserialize_with = "lenient::opt_id")]
    id: Option<u64>,
    patient: Option<Link>,
    practitioner: Option<Link>,
    business: Option<Link>,
    appointment_type: Option<Link>,
    #[serde(deserialize_with = "lenient::opt_time")]
    starts_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    ends_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_bool_any")]
    patient_arrived: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_bool_any")]
    did_not_arrive: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_time")]
    cancelled_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    archived_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    deleted_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    created_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct AppointmentTypeLineDto {
    #[serde(deserialize_with = "lenient::opt_id")]
    id: Option<u64>,
    appointment_type: Option<Link>,
    billable_item: Option<Link>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    quantity: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    discount_percentage: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    discounted_amount: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_bool_any")]
    is_monetary_discount: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct InvoiceDto {
    #[serde(deserialize_with = "lenient::opt_id")]
    id: Option<u64>,
    #[serde(deserialize_with = "lenient::opt_int")]
    number: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_date")]
    issue_date: Option<NaiveDate>,
    #[serde(deserialize_with = "lenient::opt_int")]
    status: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_int")]
    calculation_method: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    total_amount: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    net_amount: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    tax_amount: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_text")]
    notes: Option<String>,
    patient: Option<Link>,
    business: Option<Link>,
    appointment: Option<Link>,
    original_invoice: Option<Link>,
    #[serde(deserialize_with = "lenient::opt_time")]
    closed_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    archived_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    deleted_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    created_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct InvoiceItemDto {
    #[serde(deserialize_with = "lenient::opt_id")]
    id: Option<u64>,
    invoice: Option<Link>,
    #[serde(deserialize_with = "lenient::opt_text")]
    name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    code: Option<String>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    unit_price: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    quantity: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    discount_percentage: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    discounted_amount: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_bool_any")]
    is_monetary_discount: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    net_price: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_text")]
    tax_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    tax_rate: Option<Decimal>,
    /// Deprecated; the line's tax in money, though legacy examples show the rate here.
    #[serde(deserialize_with = "lenient::opt_decimal")]
    tax_amount: Option<Decimal>,
    #[serde(deserialize_with = "lenient::opt_decimal")]
    total_including_tax: Option<Decimal>,
    product: Option<Link>,
    billable_item: Option<Link>,
    #[serde(deserialize_with = "lenient::opt_time")]
    archived_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    deleted_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient::opt_time")]
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct BusinessDto {
    #[serde(deserialize_with = "lenient::opt_id")]
    id: Option<u64>,
    #[serde(deserialize_with = "lenient::opt_text")]
    business_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    display_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    label: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    time_zone_identifier: Option<String>,
}

// ---- decoding one record -------------------------------------------------------------

/// A wire record of one resource: where it lives and how it becomes a domain value.
pub(super) trait Wire: DeserializeOwned {
    /// Singular resource name for errors (`patient`).
    const RESOURCE: &'static str;
    type Domain;
    fn into_domain(self, id: u64) -> Result<Self::Domain, Problem>;
    fn raw_id(&self) -> Option<u64>;
}

/// What is wrong with a record, before it is tied to the record's name and id.
#[derive(Debug)]
pub(super) struct Problem {
    field: String,
    problem: String,
}

fn problem(field: &str, problem: impl Into<String>) -> Problem {
    Problem {
        field: field.to_string(),
        problem: problem.into(),
    }
}

fn required<T>(v: Option<T>, field: &str) -> Result<T, Problem> {
    v.ok_or_else(|| problem(field, "missing"))
}

/// Largest amount of money a clinic's record can hold ($1,000,000,000,000).
const MONEY_MAX: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);
/// Largest quantity on a line or in stock.
const QUANTITY_MAX: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
/// Largest tax or discount percentage.
const PERCENT_MAX: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

/// A number from Cliniko within what any real record holds, or a problem naming the field:
/// refusing absurd values at the edge means no arithmetic on them can overflow later.
fn bounded(v: Decimal, max: Decimal, field: &str) -> Result<Decimal, Problem> {
    if v.abs() > max {
        return Err(problem(
            field,
            format!("{v} is beyond any real value (at most {max} either way)"),
        ));
    }
    Ok(v)
}

fn money(v: Option<Decimal>, field: &str) -> Result<Option<Decimal>, Problem> {
    v.map(|v| bounded(v, MONEY_MAX, field)).transpose()
}

fn quantity(v: Option<Decimal>, field: &str) -> Result<Option<Decimal>, Problem> {
    v.map(|v| bounded(v, QUANTITY_MAX, field)).transpose()
}

fn percent(v: Option<Decimal>, field: &str) -> Result<Option<Decimal>, Problem> {
    v.map(|v| bounded(v, PERCENT_MAX, field)).transpose()
}

/// The id at the end of a `links.self` URL (`…/patients/123` → 123).
fn link_id(link: Option<Link>, field: &str) -> Result<Option<ClinikoId>, Problem> {
    let Some(url) = link.and_then(|l| l.links).and_then(|l| l.self_) else {
        return Ok(None);
    };
    let parsed = url::Url::parse(&url).map_err(|_| problem(field, "link is not a URL"))?;
    let last = parsed
        .path_segments()
        .and_then(|mut s| s.rfind(|seg| !seg.is_empty()).map(str::to_string));
    match last {
        Some(seg) if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) => seg
            .parse()
            .map(|n| Some(ClinikoId(n)))
            .map_err(|_| problem(field, "link id does not fit in 64 bits")),
        _ => Err(problem(field, "link does not end in a record id")),
    }
}

/// Reads one record out of a JSON tree, naming the record and the field on failure.
pub(super) fn decode<W: Wire>(value: &Value) -> Result<W::Domain, ClinikoError> {
    let shown_id = || match value.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "(no id)".to_string(),
    };
    let invalid = |p: Problem, id: String| ClinikoError::InvalidRecord {
        resource: W::RESOURCE,
        id,
        field: p.field,
        problem: p.problem,
    };
    let dto: W = serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        // serde's message names the type problem only; no values from the record leave here
        // except what our own readers put in (ids, numbers, dates).
        let msg = e.into_inner().to_string();
        invalid(problem(&field, msg), shown_id())
    })?;
    let id = dto
        .raw_id()
        .ok_or_else(|| invalid(problem("id", "missing"), shown_id()))?;
    dto.into_domain(id).map_err(|p| invalid(p, id.to_string()))
}

fn live_lines(lines: [Option<String>; 3]) -> Vec<String> {
    lines.into_iter().flatten().collect()
}

fn phone_kind(t: Option<&str>) -> PhoneKind {
    match t.map(str::to_ascii_lowercase).as_deref() {
        Some("mobile") => PhoneKind::Mobile,
        Some("home") => PhoneKind::Home,
        Some("work") => PhoneKind::Work,
        Some("fax") => PhoneKind::Fax,
        _ => PhoneKind::Other,
    }
}

impl Wire for PatientDto {
    const RESOURCE: &'static str = "patient";
    type Domain = Patient;

    fn raw_id(&self) -> Option<u64> {
        self.id
    }

    fn into_domain(self, id: u64) -> Result<Patient, Problem> {
        Ok(Patient {
            id: ClinikoId(id),
            title: self.title,
            first_name: required(self.first_name, "first_name")?,
            last_name: required(self.last_name, "last_name")?,
            preferred_first_name: self.preferred_first_name,
            email: self.email,
            invoice_email: self.invoice_email,
            address: Address {
                lines: live_lines([self.address_1, self.address_2, self.address_3]),
                city: self.city,
                state: self.state,
                post_code: self.post_code,
                country_code: self.country_code,
            },
            phones: self
                .patient_phone_numbers
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| {
                    let kind = phone_kind(p.phone_type.as_deref());
                    p.number.map(|number| Phone { kind, number })
                })
                .collect(),
            archived_at: self.archived_at,
            merged_at: self.merged_at,
            merged_into: link_id(self.merged_with_patient, "merged_with_patient")?,
            created_at: required(self.created_at, "created_at")?,
            updated_at: required(self.updated_at, "updated_at")?,
        })
    }
}

impl Wire for TaxDto {
    const RESOURCE: &'static str = "tax";
    type Domain = Tax;

    fn raw_id(&self) -> Option<u64> {
        self.id
    }

    fn into_domain(self, id: u64) -> Result<Tax, Problem> {
        Ok(Tax {
            id: ClinikoId(id),
            name: required(self.name, "name")?,
            rate: required(percent(self.rate.or(self.amount), "rate")?, "rate")?,
        })
    }
}

impl Wire for ProductDto {
    const RESOURCE: &'static str = "product";
    type Domain = Product;

    fn raw_id(&self) -> Option<u64> {
        self.id
    }

    fn into_domain(self, id: u64) -> Result<Product, Problem> {
        Ok(Product {
            id: ClinikoId(id),
            name: required(self.name, "name")?,
            item_code: self.item_code,
            price_ex_tax: money(self.price_ex_tax, "price_ex_tax")?,
            price_including_tax: money(self.price_including_tax, "price_including_tax")?,
            tax_id: link_id(self.tax, "tax")?,
            stock_level: quantity(self.stock_level, "stock_level")?,
            archived_at: self.archived_at,
            created_at: required(self.created_at, "created_at")?,
            updated_at: required(self.updated_at, "updated_at")?,
        })
    }
}

impl Wire for BillableItemDto {
    const RESOURCE: &'static str = "billable_item";
    type Domain = BillableItem;

    fn raw_id(&self) -> Option<u64> {
        self.id
    }

    fn into_domain(self, id: u64) -> Result<BillableItem, Problem> {
        Ok(BillableItem {
            id: ClinikoId(id),
            name: required(self.name, "name")?,
            item_code: self.item_code,
            item_type: required(self.item_type, "item_type")?,
            price: required(money(self.price, "price")?, "price")?,
            tax_id: link_id(self.tax, "tax")?,
            archived_at: self.archived_at,
            created_at: required(self.created_at, "created_at")?,
            updated_at: required(self.updated_at, "updated_at")?,
        })
    }
}

impl Wire for AppointmentDto {
    const RESOURCE: &'static str = "individual_appointment";
    type Domain = Appointment;

    fn raw_id(&self) -> Option<u64> {
        self.id
    }

    fn into_domain(self, id: u64) -> Result<Appointment, Problem> {
        Ok(Appointment {
            id: ClinikoId(id),
            patient_id: link_id(self.patient, "patient")?,
            practitioner_id: link_id(self.practitioner, "practitioner")?,
            business_id: link_id(self.business, "business")?,
            appointment_type_id: link_id(self.appointment_type, "appointment_type")?,
            starts_at: required(self.starts_at, "starts_at")?,
            ends_at: required(self.ends_at, "ends_at")?,
            arrived: self.patient_arrived.unwrap_or(false),
            did_not_arrive: self.did_not_arrive.unwrap_or(false),
            cancelled_at: self.cancelled_at,
            archived_at: self.archived_at,
            deleted_at: self.deleted_at,
            created_at: required(self.created_at, "created_at")?,
            updated_at: required(self.updated_at, "updated_at")?,
        })
    }
}

impl Wire for AppointmentTypeLineDto {
    const RESOURCE: &'static str = "appointment_type_billable_item";
    type Domain = AppointmentTypeLine;

    fn raw_id(&self) -> Option<u64> {
        self.id
    }

    fn into_domain(self, id: u64) -> Result<AppointmentTypeLine, Problem> {
        let amount = money(self.discounted_amount, "discounted_amount")?;
        let pct = percent(self.discount_percentage, "discount_percentage")?;
        let discount = match (self.is_monetary_discount.unwrap_or(false), amount, pct) {
            (true, Some(a), _) if !a.is_zero() => Discount::Amount(a),
            (false, _, Some(p)) if !p.is_zero() => Discount::Percent(p),
            _ => Discount::None,
        };
        Ok(AppointmentTypeLine {
            id: ClinikoId(id),
            appointment_type_id: required(
                link_id(self.appointment_type, "appointment_type")?,
                "appointment_type",
            )?,
            billable_item_id: required(
                link_id(self.billable_item, "billable_item")?,
                "billable_item",
            )?,
            quantity: required(quantity(self.quantity, "quantity")?, "quantity")?,
            discount,
        })
    }
}

impl Wire for InvoiceDto {
    const RESOURCE: &'static str = "invoice";
    type Domain = Invoice;

    fn raw_id(&self) -> Option<u64> {
        self.id
    }

    fn into_domain(self, id: u64) -> Result<Invoice, Problem> {
        let status = required(self.status, "status")?;
        let status = InvoiceStatus::from_code(status)
            .ok_or_else(|| problem("status", format!("unknown status code {status}")))?;
        // Invoices from before calculation methods existed are "Legacy" (1): tax exclusive.
        let method = self.calculation_method.unwrap_or(1);
        let calculation = TaxCalculation::from_code(method).ok_or_else(|| {
            problem(
                "calculation_method",
                format!("unknown calculation method {method}"),
            )
        })?;
        Ok(Invoice {
            id: ClinikoId(id),
            number: required(self.number, "number")?,
            issue_date: self.issue_date,
            status,
            calculation,
            total_amount: required(money(self.total_amount, "total_amount")?, "total_amount")?,
            net_amount: required(money(self.net_amount, "net_amount")?, "net_amount")?,
            tax_amount: required(money(self.tax_amount, "tax_amount")?, "tax_amount")?,
            notes: self.notes,
            patient_id: link_id(self.patient, "patient")?,
            business_id: link_id(self.business, "business")?,
            appointment_id: link_id(self.appointment, "appointment")?,
            closed_at: self.closed_at,
            archived_at: self.archived_at,
            deleted_at: self.deleted_at,
            created_at: required(self.created_at, "created_at")?,
            updated_at: required(self.updated_at, "updated_at")?,
            items: Vec::new(),
            original_invoice_id: link_id(self.original_invoice, "original_invoice")?,
            reversals: Vec::new(),
        })
    }
}

/// An invoice item plus whether it is still live (not archived or deleted).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ItemRow {
    pub item: InvoiceItem,
    pub live: bool,
}

impl Wire for InvoiceItemDto {
    const RESOURCE: &'static str = "invoice_item";
    type Domain = ItemRow;

    fn raw_id(&self) -> Option<u64> {
        self.id
    }

    fn into_domain(self, id: u64) -> Result<ItemRow, Problem> {
        let discounted_amount = money(self.discounted_amount, "discounted_amount")?;
        let discount_percentage = percent(self.discount_percentage, "discount_percentage")?;
        let discount = match (
            self.is_monetary_discount.unwrap_or(false),
            discounted_amount,
            discount_percentage,
        ) {
            (true, Some(amount), _) if !amount.is_zero() => Discount::Amount(amount),
            (false, _, Some(pct)) if !pct.is_zero() => Discount::Percent(pct),
            _ => Discount::None,
        };
        let net_price = required(money(self.net_price, "net_price")?, "net_price")?;
        let total = required(
            money(self.total_including_tax, "total_including_tax")?,
            "total_including_tax",
        )?;
        let tax_rate = match (
            percent(self.tax_rate, "tax_rate")?,
            self.tax_name.as_deref(),
        ) {
            (Some(rate), _) => rate,
            // A line without a tax is GST-free; a named tax without a rate is not usable.
            (None, None) => Decimal::ZERO,
            (None, Some(_)) => return Err(problem("tax_rate", "missing for a taxed line")),
        };
        Ok(ItemRow {
            live: self.archived_at.is_none() && self.deleted_at.is_none(),
            item: InvoiceItem {
                id: ClinikoId(id),
                invoice_id: required(link_id(self.invoice, "invoice")?, "invoice")?,
                name: self.name.unwrap_or_default(),
                code: self.code,
                unit_price: required(money(self.unit_price, "unit_price")?, "unit_price")?,
                quantity: required(quantity(self.quantity, "quantity")?, "quantity")?,
                discount,
                net_price,
                tax_name: self.tax_name,
                tax_rate,
                tax_amount: line_tax(money(self.tax_amount, "tax_amount")?, net_price, total)?,
                total_including_tax: total,
                product_id: link_id(self.product, "product")?,
                billable_item_id: link_id(self.billable_item, "billable_item")?,
                updated_at: required(self.updated_at, "updated_at")?,
            },
        })
    }
}

/// The line's tax in money. Cliniko's `tax_amount` when it agrees with the line's amounts
/// (within a cent); otherwise (legacy answers put the rate there) the total less the net
/// price, in cents.
fn line_tax(
    stated: Option<Decimal>,
    net_price: Decimal,
    total: Decimal,
) -> Result<Decimal, Problem> {
    let derived = total
        .checked_sub(net_price)
        .ok_or_else(|| problem("total_including_tax", "less net_price is out of range"))?;
    Ok(
        match stated.and_then(|t| t.checked_sub(derived).map(|d| (t, d))) {
            Some((t, d)) if d.abs() < Decimal::new(1, 2) => t,
            _ => derived
                .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
        },
    )
}

impl Wire for BusinessDto {
    const RESOURCE: &'static str = "business";
    type Domain = Business;

    fn raw_id(&self) -> Option<u64> {
        self.id
    }

    fn into_domain(self, id: u64) -> Result<Business, Problem> {
        Ok(Business {
            id: ClinikoId(id),
            name: required(
                self.business_name.or(self.display_name).or(self.label),
                "business_name",
            )?,
            time_zone: self.time_zone_identifier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    /// The vendor's example payloads, kept in the repository (`fixtures/vendor-examples`);
    /// read at run time, so a build directory shared between clones does not pin the clone
    /// that compiled the test. A missing one fails the test rather than skipping it.
    fn example(name: &str) -> Option<Value> {
        let crate_dir = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
        let path = format!("{crate_dir}/../fixtures/vendor-examples/cliniko/{name}");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("vendor example {path} is missing: {e}"));
        Some(serde_json::from_str(&text).expect("vendor example is JSON"))
    }

    fn field_of(e: ClinikoError) -> (String, String, String) {
        match e {
            ClinikoError::InvalidRecord {
                resource,
                id,
                field,
                problem,
            } => (format!("{resource} {id}"), field, problem),
            other => panic!("expected InvalidRecord, got {other:?}"),
        }
    }

    #[test]
    fn vendor_patient_example_with_duplicate_key_and_empty_timestamps() {
        let Some(v) = example("patient.json") else {
            return;
        };
        let p = decode::<PatientDto>(&v).expect("example patient decodes");
        assert_eq!(p.id, ClinikoId(1));
        assert_eq!(p.first_name, "Peter");
        assert_eq!(p.preferred_first_name.as_deref(), Some("Pete"));
        assert_eq!(p.archived_at, None, "\"\" is no timestamp");
        assert_eq!(p.address.lines, vec!["1 Smith Street".to_string()]);
        assert_eq!(p.address.city.as_deref(), Some("Melbourne"));
        // The later of the duplicate `patient_phone_numbers` keys wins.
        assert_eq!(
            p.phones,
            vec![
                Phone {
                    kind: PhoneKind::Mobile,
                    number: "61444444444".into()
                },
                Phone {
                    kind: PhoneKind::Home,
                    number: "61399999999".into()
                },
            ]
        );
        assert_eq!(p.merged_into, None);
        assert_eq!(p.created_at.to_rfc3339(), "2013-03-26T14:00:00+00:00");
    }

    #[test]
    fn duplicate_keys_in_a_raw_body_keep_the_last() {
        let text = r#"{"id":"5","first_name":"A","last_name":"B","patient_phone_numbers":[],
            "patient_phone_numbers":[{"number":"0400","phone_type":"Mobile"}],
            "created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:00Z"}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        let p = decode::<PatientDto>(&v).unwrap();
        assert_eq!(p.phones.len(), 1);
    }

    #[test]
    fn vendor_invoice_and_item_and_product_examples() {
        if let Some(list) = example("invoices_list.json") {
            let inv = decode::<InvoiceDto>(&list["invoices"][0]).expect("invoice decodes");
            assert_eq!(inv.id, ClinikoId(108));
            assert_eq!(inv.number, 104);
            assert_eq!(inv.status, InvoiceStatus::Open);
            assert_eq!(inv.calculation, TaxCalculation::Exclusive);
            assert_eq!(inv.total_amount, dec!(50.0));
            assert_eq!(inv.patient_id, Some(ClinikoId(1593)));
            assert_eq!(inv.business_id, Some(ClinikoId(26)));
            assert_eq!(inv.appointment_id, Some(ClinikoId(70644)));
            assert_eq!(inv.notes, None);
            assert_eq!(inv.issue_date, NaiveDate::from_ymd_opt(2015, 4, 2));
        }
        if let Some(item) = example("invoice_item.json") {
            let row = decode::<InvoiceItemDto>(&item).expect("item decodes");
            let i = row.item;
            assert!(row.live);
            assert_eq!(i.invoice_id, ClinikoId(1));
            assert_eq!(i.product_id, Some(ClinikoId(1)));
            assert_eq!(i.billable_item_id, None);
            assert_eq!(i.quantity, dec!(1), "integer quantity accepted");
            assert_eq!(i.discount, Discount::Amount(dec!(20.0)));
            assert_eq!(i.net_price, dec!(81.818));
            assert_eq!(i.tax_rate, dec!(10.0));
            assert_eq!(i.total_including_tax, dec!(90.0));
            // `tax_amount` there is the rate (10.0), not money: the tax is 90 - 81.818.
            assert_eq!(i.tax_amount, dec!(8.18));
        }
        if let Some(list) = example("products_list.json") {
            let p = decode::<ProductDto>(&list["products"][0]).expect("product decodes");
            assert_eq!(
                p.stock_level,
                Some(dec!(10)),
                "integer stock level accepted"
            );
            assert_eq!(p.tax_id, Some(ClinikoId(1)));
            assert_eq!(p.price_ex_tax, Some(dec!(10.0)));
            assert_eq!(p.price_including_tax, None);
        }
    }

    fn item(extra: Value) -> Value {
        let mut base = json!({
            "id": "1100000000000000123",
            "invoice": {"links": {"self": "https://api.au2.cliniko.com/v1/invoices/9007199254740993"}},
            "name": "Consult", "unit_price": "100.0", "quantity": "1.0",
            "discount_percentage": "0.0", "discounted_amount": "0.0", "is_monetary_discount": false,
            "net_price": "100.0", "tax_name": "GST", "tax_rate": "10.0",
            "total_including_tax": 110.0,
            "billable_item": {"links": {"self": "https://api.au2.cliniko.com/v1/billable_items/7"}},
            "updated_at": "2024-05-01T01:02:03Z", "deleted_at": null
        });
        if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
            b.extend(e);
        }
        base
    }

    #[test]
    fn ids_are_exact_above_2_pow_53_as_strings_numbers_and_links() {
        let row = decode::<InvoiceItemDto>(&item(json!({}))).unwrap();
        assert_eq!(row.item.id, ClinikoId(1_100_000_000_000_000_123));
        assert_eq!(row.item.invoice_id, ClinikoId(9_007_199_254_740_993));
        assert_eq!(row.item.billable_item_id, Some(ClinikoId(7)));
        // A JSON number id is read as an integer, not through f64.
        let v: Value =
            serde_json::from_str(r#"{"id": 9007199254740993, "name": "GST", "rate": "10.0"}"#)
                .unwrap();
        assert_eq!(
            decode::<TaxDto>(&v).unwrap().id,
            ClinikoId(9_007_199_254_740_993)
        );
        // A float id is refused, naming the field.
        let v = json!({"id": 1.5, "name": "GST", "rate": "10.0"});
        let (_, field, _) = field_of(decode::<TaxDto>(&v).unwrap_err());
        assert_eq!(field, "id");
    }

    #[test]
    fn money_as_strings_or_numbers_and_discounts() {
        let row = decode::<InvoiceItemDto>(&item(json!({}))).unwrap();
        assert_eq!(row.item.total_including_tax, dec!(110));
        assert_eq!(row.item.tax_amount, dec!(10));
        assert_eq!(row.item.discount, Discount::None);
        let row = decode::<InvoiceItemDto>(&item(json!({
            "discount_percentage": "12.5", "net_price": 87.5, "total_including_tax": "96.25"
        })))
        .unwrap();
        assert_eq!(row.item.discount, Discount::Percent(dec!(12.5)));
        assert_eq!(row.item.tax_amount, dec!(8.75));
        // A stated tax that agrees with the amounts is taken as it is (net price has 4 dp).
        let row = decode::<InvoiceItemDto>(&item(json!({
            "net_price": "127.6818", "tax_amount": "12.77", "total_including_tax": "140.45"
        })))
        .unwrap();
        assert_eq!(row.item.tax_amount, dec!(12.77));
        let row = decode::<InvoiceItemDto>(&item(json!({
            "archived_at": "2024-05-02T00:00:00Z", "tax_name": null, "tax_rate": null,
            "total_including_tax": "100.0"
        })))
        .unwrap();
        assert!(!row.live);
        assert_eq!(row.item.tax_rate, Decimal::ZERO);
    }

    #[test]
    fn bad_records_name_resource_id_and_field() {
        let (who, field, _) = field_of(
            decode::<InvoiceItemDto>(&item(json!({"unit_price": "ten dollars"}))).unwrap_err(),
        );
        assert_eq!(who, "invoice_item 1100000000000000123");
        assert_eq!(field, "unit_price");
        let (_, field, problem) =
            field_of(decode::<InvoiceItemDto>(&item(json!({"quantity": null}))).unwrap_err());
        assert_eq!((field.as_str(), problem.as_str()), ("quantity", "missing"));
        let (_, field, _) = field_of(
            decode::<InvoiceItemDto>(&item(
                json!({"invoice": {"links": {"self": "https://x/v1/invoices/abc"}}}),
            ))
            .unwrap_err(),
        );
        assert_eq!(field, "invoice");
        let bad_phone = json!({"id": "3", "first_name": "A", "last_name": "B",
            "patient_phone_numbers": [{"number": {"nested": true}}],
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"});
        let (who, field, _) = field_of(decode::<PatientDto>(&bad_phone).unwrap_err());
        assert_eq!(who, "patient 3");
        assert_eq!(field, "patient_phone_numbers[0].number");
        let bad_status = json!({"id": "4", "number": 1, "status": 99, "total_amount": "1",
            "net_amount": "1", "tax_amount": "0",
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"});
        let (_, field, _) = field_of(decode::<InvoiceDto>(&bad_status).unwrap_err());
        assert_eq!(field, "status");
        let bad_time = json!({"id": "4", "name": "X", "created_at": "yesterday",
            "updated_at": "2024-01-01T00:00:00Z"});
        let (_, field, _) = field_of(decode::<ProductDto>(&bad_time).unwrap_err());
        assert_eq!(field, "created_at");
    }

    #[test]
    fn patient_fields_phones_addresses_and_merges() {
        let v = json!({
            "id": "1100000000000000500", "title": "", "first_name": "Zoë", "last_name": "O'Brien",
            "address_1": "Unit 4", "address_2": "", "address_3": "12 High St",
            "country_code": "AU", "email": "",
            "patient_phone_numbers": [
                {"number": "0400 000 000", "phone_type": "Mobile"},
                {"number": "02 9999 0000", "phone_type": "Work"},
                {"number": "02 9999 0001", "phone_type": "Fax"},
                {"number": "", "phone_type": "Home"},
                {"number": "123", "phone_type": "Pager"}
            ],
            "archived_at": "2024-02-01T00:00:00Z", "merged_at": "2024-02-01T00:00:00Z",
            "merged_with_patient": {"links": {"self": "https://api.au1.cliniko.com/v1/patients/1100000000000000499"}},
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-02-01T00:00:00Z",
            "medicare": "2123 45670 1", "notes": "clinical"
        });
        let p = decode::<PatientDto>(&v).unwrap();
        assert_eq!(p.title, None);
        assert_eq!(p.email, None);
        assert_eq!(p.address.lines, vec!["Unit 4", "12 High St"]);
        assert_eq!(p.address.country_code.as_deref(), Some("AU"));
        let kinds: Vec<PhoneKind> = p.phones.iter().map(|ph| ph.kind).collect();
        assert_eq!(
            kinds,
            vec![
                PhoneKind::Mobile,
                PhoneKind::Work,
                PhoneKind::Fax,
                PhoneKind::Other
            ]
        );
        assert_eq!(p.merged_into, Some(ClinikoId(1_100_000_000_000_000_499)));
        assert!(p.is_inactive());
    }

    #[test]
    fn business_time_zone_and_tax_rate_alias() {
        let b = decode::<BusinessDto>(&json!({"id": "2", "business_name": "Harbourside",
            "time_zone": "Hobart", "time_zone_identifier": "Australia/Hobart"}))
        .unwrap();
        assert_eq!(b.time_zone.as_deref(), Some("Australia/Hobart"));
        assert_eq!(b.name, "Harbourside");
        let t = decode::<TaxDto>(&json!({"id": "1", "name": "GST", "amount": "10.0"})).unwrap();
        assert_eq!(t.rate, dec!(10));
    }
}
