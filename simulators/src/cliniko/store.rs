//! The Cliniko simulator's data: every table, id and invoice-number sequences, and the
//! writes the real API allows (patients, products, stock adjustments) plus the test-only
//! ones it does not (invoices, merges, arbitrary edits).

use super::invoice_math::{Discount, line_totals};
use super::model::*;
use crate::common::SimClock;
use crate::common::wire::decimal_text;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// 422 field errors, one message per field as Cliniko sends them.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq)]
pub enum WriteError {
    NotFound,
    Invalid(FieldErrors),
}

pub const BLANK: &str = "can’t be blank";

/// Where each table lives, so list and get routes can be generic.
pub trait Table<R> {
    fn table(&self) -> &BTreeMap<u64, R>;
    fn table_mut(&mut self) -> &mut BTreeMap<u64, R>;
}

macro_rules! tables {
    ($($field:ident: $ty:ty),* $(,)?) => {
        /// Every Cliniko table the simulator keeps.
        #[derive(Debug, Default, Clone)]
        pub struct Tables { $(pub $field: BTreeMap<u64, $ty>,)* }
        $(impl Table<$ty> for ClinikoState {
            fn table(&self) -> &BTreeMap<u64, $ty> { &self.tables.$field }
            fn table_mut(&mut self) -> &mut BTreeMap<u64, $ty> { &mut self.tables.$field }
        })*
    };
}

tables! {
    patients: Patient,
    invoices: Invoice,
    invoice_items: InvoiceItem,
    products: Product,
    stock_adjustments: StockAdjustment,
    billable_items: BillableItem,
    taxes: Tax,
    businesses: Business,
    practitioners: Practitioner,
    appointment_types: AppointmentType,
    appointments: IndividualAppointment,
    appointment_type_billable_items: AppointmentTypeBillableItem,
    contacts: Contact,
}

#[derive(Debug, Clone)]
pub struct ClinikoState {
    pub tables: Tables,
    clock: SimClock,
    next_id: u64,
    next_invoice_number: i64,
    /// Whether archiving bumps `updated_at` (unverified against the live API; on by default).
    pub archive_bumps_updated_at: bool,
    /// Fields sent in place of a record's own, keyed by resource (`patients`) and id: how
    /// tests make the API send what the documents do not promise (a field missing, an
    /// undocumented status, an absurd price). `null` removes the field.
    pub wire_overrides: BTreeMap<(&'static str, u64), Map<String, Value>>,
}

/// What a test or the admin route says about a new invoice (Cliniko's API cannot create them).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct InvoiceSpec {
    #[serde(with = "crate::common::wire::opt_id")]
    pub patient_id: Option<u64>,
    #[serde(with = "crate::common::wire::opt_id")]
    pub business_id: Option<u64>,
    #[serde(with = "crate::common::wire::opt_id")]
    pub practitioner_id: Option<u64>,
    #[serde(with = "crate::common::wire::opt_id")]
    pub appointment_id: Option<u64>,
    #[serde(with = "crate::common::wire::opt_date")]
    pub issue_date: Option<NaiveDate>,
    /// 10 open (default), 20 paid, 30 closed, 40 open credit.
    pub status: Option<i32>,
    /// 2 tax exclusive (default) or 3 tax inclusive.
    pub calculation_method: Option<i32>,
    pub notes: Option<String>,
    pub invoice_to: Option<String>,
    pub items: Vec<ItemSpec>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct ItemSpec {
    #[serde(with = "crate::common::wire::opt_id")]
    pub product_id: Option<u64>,
    #[serde(with = "crate::common::wire::opt_id")]
    pub billable_item_id: Option<u64>,
    pub name: Option<String>,
    /// Ex-tax unit price; defaults to the product's or billable item's price.
    #[serde(with = "crate::common::wire::opt_decimal")]
    pub unit_price: Option<Decimal>,
    #[serde(with = "crate::common::wire::opt_decimal")]
    pub quantity: Option<Decimal>,
    #[serde(with = "crate::common::wire::opt_decimal")]
    pub discount_percentage: Option<Decimal>,
    /// Money off the line; makes the discount monetary.
    #[serde(with = "crate::common::wire::opt_decimal")]
    pub discount_amount: Option<Decimal>,
    /// Tax to charge; defaults to the product's or billable item's tax (none when neither).
    #[serde(with = "crate::common::wire::opt_id")]
    pub tax_id: Option<u64>,
}

/// What the Cliniko app records on an appointment that the API cannot (admin route).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct AppointmentMark {
    pub patient_arrived: Option<bool>,
    pub did_not_arrive: Option<bool>,
    /// `false` undoes a cancellation.
    pub cancelled: Option<bool>,
    pub archived: Option<bool>,
    pub deleted: Option<bool>,
}

/// A change to an existing invoice (status, notes, dates, archive/delete, or new lines).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct InvoicePatch {
    pub status: Option<i32>,
    pub notes: Option<String>,
    #[serde(with = "crate::common::wire::opt_date")]
    pub issue_date: Option<NaiveDate>,
    pub archived: Option<bool>,
    pub deleted: Option<bool>,
    /// Replaces every line (the old lines are marked deleted).
    pub items: Option<Vec<ItemSpec>>,
}

impl ClinikoState {
    pub fn new(clock: SimClock) -> Self {
        ClinikoState {
            tables: Tables::default(),
            clock,
            // Above 2^53 like live Cliniko ids, so a client that goes through f64 breaks.
            next_id: 1_100_000_000_000_000_000,
            next_invoice_number: 1000,
            archive_bumps_updated_at: true,
            wire_overrides: BTreeMap::new(),
        }
    }

    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now_seconds()
    }

    /// Next id: increasing, with uneven gaps as live ids have.
    pub fn fresh_id(&mut self) -> u64 {
        self.next_id += 1 + (self.next_id % 89);
        self.next_id
    }

    /// Makes the API send `fields` in place of the record's own (see `wire_overrides`).
    pub fn override_wire<R: Resource>(&mut self, id: u64, fields: Map<String, Value>) {
        self.wire_overrides
            .entry((R::PLURAL, id))
            .or_default()
            .extend(fields);
    }

    /// A record as the API sends it: rendered, then with any wire override applied.
    pub fn render<R: Resource>(&self, record: &R, base: &str) -> Value {
        let mut value = super::model::render(record, base);
        if let (Value::Object(map), Some(fields)) = (
            &mut value,
            self.wire_overrides.get(&(R::PLURAL, record.id())),
        ) {
            for (k, v) in fields {
                if v.is_null() {
                    map.remove(k);
                } else {
                    map.insert(k.clone(), v.clone());
                }
            }
        }
        value
    }

    pub fn get<R: Resource>(&self, id: u64) -> Option<&R>
    where
        Self: Table<R>,
    {
        self.table().get(&id)
    }

    /// Applies `change` to a record in place (the caller sets any timestamps it changes).
    pub fn edit<R: Resource>(&mut self, id: u64, change: impl FnOnce(&mut R)) -> Option<R>
    where
        Self: Table<R>,
    {
        let record = self.table_mut().get_mut(&id)?;
        change(record);
        Some(record.clone())
    }

    pub fn insert<R: Resource>(&mut self, record: R) -> R
    where
        Self: Table<R>,
    {
        self.table_mut().insert(record.id(), record.clone());
        record
    }

    pub fn tax_rate(&self, tax_id: Option<u64>) -> Option<&Tax> {
        tax_id.and_then(|t| self.tables.taxes.get(&t))
    }

    // ---- patients -------------------------------------------------------------------

    pub fn create_patient(&mut self, body: &Map<String, Value>) -> Result<Patient, WriteError> {
        let now = self.now();
        let mut patient = Patient {
            id: self.fresh_id(),
            created_at: now,
            updated_at: now,
            ..Default::default()
        };
        apply_patient_fields(&mut patient, body)?;
        Ok(self.insert(patient))
    }

    pub fn update_patient(
        &mut self,
        id: u64,
        body: &Map<String, Value>,
    ) -> Result<Patient, WriteError> {
        let mut patient = self
            .tables
            .patients
            .get(&id)
            .cloned()
            .ok_or(WriteError::NotFound)?;
        apply_patient_fields(&mut patient, body)?;
        patient.updated_at = self.now();
        Ok(self.insert(patient))
    }

    pub fn set_patient_archived(&mut self, id: u64, archived: bool) -> Result<Patient, WriteError> {
        let now = self.now();
        let bump = self.archive_bumps_updated_at;
        self.edit::<Patient>(id, |p| {
            p.archived_at = archived.then_some(now);
            if bump {
                p.updated_at = now;
            }
        })
        .ok_or(WriteError::NotFound)
    }

    /// Merges `from` into `into`: `from` is archived with `merged_at` and a link to the survivor.
    pub fn merge_patients(&mut self, from: u64, into: u64) -> Result<Patient, WriteError> {
        if from == into || !self.tables.patients.contains_key(&into) {
            return Err(WriteError::NotFound);
        }
        let now = self.now();
        self.edit::<Patient>(from, |p| {
            p.archived_at = Some(now);
            p.merged_at = Some(now);
            p.merged_with_patient_id = Some(into);
            p.updated_at = now;
        })
        .ok_or(WriteError::NotFound)
    }

    // ---- appointments ---------------------------------------------------------------

    /// `POST /individual_appointments`: patient, practitioner, appointment type and
    /// business must exist; `ends_at` defaults to the type's duration.
    pub fn create_appointment(
        &mut self,
        body: &Map<String, Value>,
    ) -> Result<IndividualAppointment, WriteError> {
        let now = self.now();
        let mut a = IndividualAppointment {
            id: self.fresh_id(),
            patient_arrived: Some(false),
            did_not_arrive: Some(false),
            created_at: now,
            updated_at: now,
            ..Default::default()
        };
        let mut errors = FieldErrors::new();
        for field in [
            "starts_at",
            "patient_id",
            "practitioner_id",
            "appointment_type_id",
            "business_id",
        ] {
            if body.get(field).is_none_or(Value::is_null) {
                errors.insert(field.into(), BLANK.into());
            }
        }
        if !errors.is_empty() {
            return Err(WriteError::Invalid(errors));
        }
        self.apply_appointment_fields(&mut a, body)?;
        Ok(self.insert(a))
    }

    /// `PATCH /individual_appointments/{id}`: the same fields, each optional.
    pub fn update_appointment(
        &mut self,
        id: u64,
        body: &Map<String, Value>,
    ) -> Result<IndividualAppointment, WriteError> {
        let mut a = self
            .tables
            .appointments
            .get(&id)
            .cloned()
            .ok_or(WriteError::NotFound)?;
        self.apply_appointment_fields(&mut a, body)?;
        a.updated_at = self.now();
        Ok(self.insert(a))
    }

    fn apply_appointment_fields(
        &self,
        a: &mut IndividualAppointment,
        body: &Map<String, Value>,
    ) -> Result<(), WriteError> {
        let mut errors = FieldErrors::new();
        let t = &self.tables;
        let mut id_of = |field: &str, exists: &dyn Fn(u64) -> bool| -> Option<Option<u64>> {
            let v = body.get(field)?;
            match id_value(v) {
                Ok(Some(id)) if exists(id) => Some(Some(id)),
                Ok(None) => Some(None),
                _ => {
                    errors.insert(field.into(), "does not exist".into());
                    None
                }
            }
        };
        if let Some(v) = id_of("patient_id", &|i| t.patients.contains_key(&i)) {
            a.patient_id = v;
        }
        if let Some(v) = id_of("practitioner_id", &|i| t.practitioners.contains_key(&i)) {
            a.practitioner_id = v;
        }
        if let Some(v) = id_of("appointment_type_id", &|i| {
            t.appointment_types.contains_key(&i)
        }) {
            a.appointment_type_id = v;
        }
        if let Some(v) = id_of("business_id", &|i| t.businesses.contains_key(&i)) {
            a.business_id = v;
        }
        let time = |field: &str| -> Result<Option<Option<DateTime<Utc>>>, ()> {
            match body.get(field) {
                None => Ok(None),
                Some(Value::Null) => Ok(Some(None)),
                Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
                    .map(|t| Some(Some(t.with_timezone(&Utc))))
                    .map_err(|_| ()),
                Some(_) => Err(()),
            }
        };
        match time("starts_at") {
            Ok(Some(Some(t))) => a.starts_at = t,
            Ok(None) => {}
            _ => {
                errors.insert("starts_at".into(), "is invalid".into());
            }
        }
        match time("ends_at") {
            Ok(Some(Some(t))) => a.ends_at = t,
            // Absent on create, or null on update: the type's duration.
            Ok(Some(None)) | Ok(None)
                if body.contains_key("ends_at") || a.ends_at < a.starts_at =>
            {
                let minutes = a
                    .appointment_type_id
                    .and_then(|id| t.appointment_types.get(&id))
                    .map_or(30, |ty| ty.duration_in_minutes);
                a.ends_at = a.starts_at + chrono::TimeDelta::minutes(minutes);
            }
            Ok(_) => {}
            Err(()) => {
                errors.insert("ends_at".into(), "is invalid".into());
            }
        }
        if let Some(v) = body.get("notes") {
            match string_field(v, 5000) {
                Ok(n) => a.notes = n,
                Err(e) => {
                    errors.insert("notes".into(), e);
                }
            }
        }
        if a.ends_at < a.starts_at {
            errors.insert("ends_at".into(), "must be after starts_at".into());
        }
        if !errors.is_empty() {
            return Err(WriteError::Invalid(errors));
        }
        if let Some(p) = a.patient_id.and_then(|id| t.patients.get(&id)) {
            a.patient_name = Some(p.full_label());
        }
        Ok(())
    }

    /// `PATCH /individual_appointments/{id}/cancel`: `cancellation_reason` is mandatory.
    pub fn cancel_appointment(
        &mut self,
        id: u64,
        body: &Map<String, Value>,
    ) -> Result<IndividualAppointment, WriteError> {
        let reason = match body.get("cancellation_reason") {
            Some(Value::Number(n)) => n.as_i64().and_then(|c| i32::try_from(c).ok()),
            _ => None,
        };
        let Some(reason) = reason.filter(|r| [10, 20, 30, 40, 50, 60].contains(r)) else {
            return Err(WriteError::Invalid(FieldErrors::from([(
                "cancellation_reason".into(),
                "is not included in the list".into(),
            )])));
        };
        let note = body
            .get("cancellation_note")
            .and_then(Value::as_str)
            .map(str::to_string);
        let now = self.now();
        self.edit::<IndividualAppointment>(id, |a| {
            a.cancelled_at = Some(now);
            a.cancellation_reason = Some(reason);
            a.cancellation_reason_description =
                super::http::cancellation_reason_description(reason).map(str::to_string);
            a.cancellation_note = note;
            a.updated_at = now;
        })
        .ok_or(WriteError::NotFound)
    }

    /// What only the Cliniko app does to an appointment (the API cannot): the patient
    /// arrived or did not, the cancellation undone, archived or deleted.
    pub fn mark_appointment(
        &mut self,
        id: u64,
        mark: &AppointmentMark,
    ) -> Result<IndividualAppointment, WriteError> {
        let now = self.now();
        self.edit::<IndividualAppointment>(id, |a| {
            if let Some(v) = mark.patient_arrived {
                a.patient_arrived = Some(v);
            }
            if let Some(v) = mark.did_not_arrive {
                a.did_not_arrive = Some(v);
            }
            if mark.cancelled == Some(false) {
                a.cancelled_at = None;
                a.cancellation_reason = None;
                a.cancellation_reason_description = None;
            }
            if let Some(v) = mark.archived {
                a.archived_at = v.then_some(now);
            }
            if let Some(v) = mark.deleted {
                a.deleted_at = v.then_some(now);
            }
            a.updated_at = now;
        })
        .ok_or(WriteError::NotFound)
    }

    /// `POST /appointment_type_billable_items`.
    pub fn create_appointment_type_billable_item(
        &mut self,
        body: &Map<String, Value>,
    ) -> Result<AppointmentTypeBillableItem, WriteError> {
        let now = self.now();
        let mut errors = FieldErrors::new();
        let ty = body.get("appointment_type_id").map(id_value);
        let item = body.get("billable_item_id").map(id_value);
        let appointment_type_id = match ty {
            Some(Ok(Some(id))) if self.tables.appointment_types.contains_key(&id) => Some(id),
            _ => {
                errors.insert("appointment_type_id".into(), "does not exist".into());
                None
            }
        };
        let billable_item_id = match item {
            Some(Ok(Some(id))) if self.tables.billable_items.contains_key(&id) => Some(id),
            _ => {
                errors.insert("billable_item_id".into(), "does not exist".into());
                None
            }
        };
        let decimal = |field: &str, errors: &mut FieldErrors| -> Option<Decimal> {
            let v = body.get(field).filter(|v| !v.is_null())?;
            let d = decimal_value(v);
            if d.is_none() {
                errors.insert(field.into(), "is not a number".into());
            }
            d
        };
        let quantity = decimal("quantity", &mut errors).unwrap_or(Decimal::ONE);
        let discount_percentage = decimal("discount_percentage", &mut errors);
        let discounted_amount = decimal("discounted_amount", &mut errors);
        if !errors.is_empty() {
            return Err(WriteError::Invalid(errors));
        }
        let row = AppointmentTypeBillableItem {
            id: self.fresh_id(),
            quantity,
            discount_percentage,
            discounted_amount,
            is_monetary_discount: Some(discounted_amount.is_some()),
            created_at: now,
            updated_at: now,
            appointment_type_id,
            billable_item_id,
        };
        Ok(self.insert(row))
    }

    // ---- products -------------------------------------------------------------------

    pub fn create_product(&mut self, body: &Map<String, Value>) -> Result<Product, WriteError> {
        let now = self.now();
        let mut product = Product {
            id: self.fresh_id(),
            created_at: now,
            updated_at: now,
            stock_level: Some(Decimal::ZERO),
            ..Default::default()
        };
        let mut errors = FieldErrors::new();
        if let Some(level) = body.get("stock_level") {
            match decimal_value(level) {
                Some(d) => product.stock_level = Some(d),
                None => {
                    errors.insert("stock_level".into(), "is not a number".into());
                }
            }
        }
        self.apply_product_fields(&mut product, body, errors)?;
        if product.name.trim().is_empty() {
            return Err(WriteError::Invalid(FieldErrors::from([(
                "name".into(),
                BLANK.into(),
            )])));
        }
        Ok(self.insert(product))
    }

    pub fn update_product(
        &mut self,
        id: u64,
        body: &Map<String, Value>,
    ) -> Result<Product, WriteError> {
        let mut product = self
            .tables
            .products
            .get(&id)
            .cloned()
            .ok_or(WriteError::NotFound)?;
        let mut errors = FieldErrors::new();
        if body.contains_key("stock_level") {
            errors.insert(
                "stock_level".into(),
                "Stock level cannot be updated with this request. Please use create stock adjustment".into(),
            );
        }
        self.apply_product_fields(&mut product, body, errors)?;
        if product.name.trim().is_empty() {
            return Err(WriteError::Invalid(FieldErrors::from([(
                "name".into(),
                BLANK.into(),
            )])));
        }
        product.updated_at = self.now();
        Ok(self.insert(product))
    }

    fn apply_product_fields(
        &self,
        product: &mut Product,
        body: &Map<String, Value>,
        mut errors: FieldErrors,
    ) -> Result<(), WriteError> {
        let text = |key: &str, max: usize, slot: &mut Option<String>, errors: &mut FieldErrors| {
            if let Some(v) = body.get(key) {
                match string_field(v, max) {
                    Ok(s) => *slot = s,
                    Err(e) => {
                        errors.insert(key.into(), e);
                    }
                }
            }
        };
        let mut name = Some(product.name.clone());
        text("name", 255, &mut name, &mut errors);
        product.name = name.unwrap_or_default();
        text("item_code", 100, &mut product.item_code, &mut errors);
        text(
            "serial_number",
            255,
            &mut product.serial_number,
            &mut errors,
        );
        text("notes", usize::MAX, &mut product.notes, &mut errors);
        text(
            "product_supplier_name",
            usize::MAX,
            &mut product.product_supplier_name,
            &mut errors,
        );
        if let Some(v) = body.get("cost_price") {
            match decimal_value(v) {
                Some(d) if d >= Decimal::ZERO && d <= Decimal::from(4_000_000_000u64) => {
                    product.cost_price = Some(d)
                }
                _ => {
                    errors.insert("cost_price".into(), "is not a number".into());
                }
            }
        }
        if let Some(v) = body.get("tax_id") {
            match id_value(v) {
                Ok(Some(t)) if self.tables.taxes.contains_key(&t) => product.tax_id = Some(t),
                Ok(None) => product.tax_id = None,
                _ => {
                    errors.insert("tax".into(), "must exist".into());
                }
            }
        }
        let includes_tax = match body.get("price_includes_tax") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                errors.insert("price_includes_tax".into(), "is invalid".into());
                false
            }
        };
        let rate = self
            .tax_rate(product.tax_id)
            .map(|t| t.rate)
            .unwrap_or_default();
        let factor = Decimal::ONE + rate / Decimal::ONE_HUNDRED;
        if let Some(v) = body.get("price") {
            match decimal_value(v) {
                Some(price) if price >= Decimal::ZERO => {
                    let (ex, inc) = if includes_tax {
                        ((price / factor).round_dp(4), price)
                    } else {
                        (price, (price * factor).round_dp(2))
                    };
                    product.price_ex_tax = Some(ex);
                    product.price_including_tax = Some(inc);
                }
                _ => {
                    errors.insert("price".into(), "is not a number".into());
                }
            }
        } else if body.contains_key("tax_id") {
            // A new tax changes the tax-inclusive price.
            if let Some(ex) = product.price_ex_tax {
                product.price_including_tax = Some((ex * factor).round_dp(2));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(WriteError::Invalid(errors))
        }
    }

    pub fn set_product_archived(&mut self, id: u64, archived: bool) -> Result<Product, WriteError> {
        let now = self.now();
        let bump = self.archive_bumps_updated_at;
        self.edit::<Product>(id, |p| {
            p.archived_at = archived.then_some(now);
            if bump {
                p.updated_at = now;
            }
        })
        .ok_or(WriteError::NotFound)
    }

    pub fn create_stock_adjustment(
        &mut self,
        body: &Map<String, Value>,
    ) -> Result<StockAdjustment, WriteError> {
        const INCREASING: &[&str] = &["Stock Purchase", "Returned", "Other"];
        const DECREASING: &[&str] = &["Damaged", "Out of Date", "Item Sold", "Other", "Correction"];
        let mut errors = FieldErrors::new();
        let product_id = match body.get("product_id").map(id_value) {
            Some(Ok(Some(p))) if self.tables.products.contains_key(&p) => Some(p),
            _ => {
                errors.insert("product".into(), "must exist".into());
                None
            }
        };
        let kind = body
            .get("adjustment_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !INCREASING.contains(&kind.as_str()) && !DECREASING.contains(&kind.as_str()) {
            errors.insert(
                "adjustment_type".into(),
                "is not included in the list".into(),
            );
        }
        let quantity = body.get("quantity").and_then(decimal_value);
        match quantity {
            None => {
                errors.insert("quantity".into(), "is not a number".into());
            }
            Some(q) if q.is_zero() => {
                errors.insert("quantity".into(), "must be other than 0".into());
            }
            Some(q)
                if q > Decimal::ZERO
                    && !INCREASING.contains(&kind.as_str())
                    && !errors.contains_key("adjustment_type") =>
            {
                errors.insert(
                    "quantity".into(),
                    "must be negative for this adjustment type".into(),
                );
            }
            Some(q)
                if q < Decimal::ZERO
                    && !DECREASING.contains(&kind.as_str())
                    && !errors.contains_key("adjustment_type") =>
            {
                errors.insert(
                    "quantity".into(),
                    "must be positive for this adjustment type".into(),
                );
            }
            _ => {}
        }
        let (Some(product_id), Some(quantity), true) = (product_id, quantity, errors.is_empty())
        else {
            return Err(WriteError::Invalid(errors));
        };
        let now = self.now();
        let adjustment = StockAdjustment {
            id: self.fresh_id(),
            adjustment_type: kind,
            quantity: Some(quantity),
            comment: body
                .get("comment")
                .and_then(Value::as_str)
                .map(str::to_string),
            notes: body
                .get("notes")
                .and_then(Value::as_str)
                .map(str::to_string),
            archived_at: None,
            created_at: now,
            updated_at: now,
            product_id: Some(product_id),
        };
        self.edit::<Product>(product_id, |p| {
            p.stock_level = Some(p.stock_level.unwrap_or_default() + quantity);
            p.updated_at = now;
        });
        Ok(self.insert(adjustment))
    }

    // ---- invoices (test-only writes) --------------------------------------------------

    fn build_items(
        &mut self,
        invoice: &Invoice,
        specs: &[ItemSpec],
    ) -> Result<Vec<InvoiceItem>, WriteError> {
        let inclusive = invoice.calculation_method == calculation_method::TAX_INCLUSIVE;
        let mut items = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let invalid = |msg: &str| {
                WriteError::Invalid(FieldErrors::from([(
                    format!("items[{i}]"),
                    msg.to_string(),
                )]))
            };
            let (name, code, price, tax_id) = if let Some(pid) = spec.product_id {
                let p = self
                    .tables
                    .products
                    .get(&pid)
                    .ok_or_else(|| invalid("product must exist"))?;
                (
                    p.name.clone(),
                    p.item_code.clone(),
                    p.price_ex_tax.unwrap_or_default(),
                    p.tax_id,
                )
            } else if let Some(bid) = spec.billable_item_id {
                let b = self
                    .tables
                    .billable_items
                    .get(&bid)
                    .ok_or_else(|| invalid("billable item must exist"))?;
                (b.name.clone(), b.item_code.clone(), b.price, b.tax_id)
            } else {
                return Err(invalid("needs product_id or billable_item_id"));
            };
            let tax_id = spec.tax_id.or(tax_id);
            let tax = self.tax_rate(tax_id).cloned();
            let unit_price = spec.unit_price.unwrap_or(price);
            let quantity = spec.quantity.unwrap_or(Decimal::ONE);
            if quantity <= Decimal::ZERO {
                return Err(invalid("quantity must be greater than 0"));
            }
            let discount = match (spec.discount_amount, spec.discount_percentage) {
                (Some(a), _) => Discount::Amount(a),
                (None, Some(p)) if (Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&p) => {
                    Discount::Percent(p)
                }
                (None, Some(_)) => {
                    return Err(invalid("discount_percentage must be between 0 and 100"));
                }
                (None, None) => Discount::None,
            };
            let rate = tax.as_ref().map(|t| t.rate).unwrap_or_default();
            let totals = line_totals(unit_price, quantity, discount, rate, inclusive);
            items.push(InvoiceItem {
                id: self.fresh_id(),
                name: Some(spec.name.clone().unwrap_or(name)),
                code,
                concession_type_name: None,
                unit_price,
                quantity,
                discount_percentage: Some(totals.discount_percentage),
                discounted_amount: Some(totals.discounted_amount),
                is_monetary_discount: Some(matches!(discount, Discount::Amount(_))),
                net_price: Some(totals.net_price),
                tax_name: tax.as_ref().map(|t| t.name.clone()),
                tax_rate: Some(rate),
                tax_amount: Some(totals.tax),
                total_including_tax: Some(totals.total_including_tax),
                archived_at: None,
                deleted_at: None,
                created_at: invoice.updated_at,
                updated_at: invoice.updated_at,
                invoice_id: Some(invoice.id),
                product_id: spec.product_id,
                billable_item_id: if spec.product_id.is_some() {
                    None
                } else {
                    spec.billable_item_id
                },
            });
        }
        Ok(items)
    }

    /// Creates an invoice with its items; totals are computed from the lines.
    pub fn create_invoice(&mut self, spec: &InvoiceSpec) -> Result<Invoice, WriteError> {
        self.create_invoice_at(spec, self.now())
    }

    /// As [`create_invoice`](Self::create_invoice), stamped at a given time (for seeding history).
    pub fn create_invoice_at(
        &mut self,
        spec: &InvoiceSpec,
        at: DateTime<Utc>,
    ) -> Result<Invoice, WriteError> {
        let mut errors = FieldErrors::new();
        match spec.patient_id {
            Some(p) if self.tables.patients.contains_key(&p) => {}
            _ => {
                errors.insert("patient".into(), "must exist".into());
            }
        }
        let status = spec.status.unwrap_or(invoice_status::OPEN);
        if ![10, 20, 30, 40].contains(&status) {
            errors.insert("status".into(), "is not included in the list".into());
        }
        let method = spec
            .calculation_method
            .unwrap_or(calculation_method::TAX_EXCLUSIVE);
        if ![1, 2, 3].contains(&method) {
            errors.insert(
                "calculation_method".into(),
                "is not included in the list".into(),
            );
        }
        if spec.items.is_empty() {
            errors.insert("items".into(), BLANK.into());
        }
        if !errors.is_empty() {
            return Err(WriteError::Invalid(errors));
        }
        let business_id = spec
            .business_id
            .or_else(|| self.tables.businesses.keys().next().copied());
        let practitioner_id = spec
            .practitioner_id
            .or_else(|| self.tables.practitioners.keys().next().copied());
        self.next_invoice_number += 1;
        let patient_label = spec
            .patient_id
            .and_then(|p| self.tables.patients.get(&p))
            .map(Patient::full_label);
        let invoice = Invoice {
            id: self.fresh_id(),
            number: self.next_invoice_number,
            issue_date: Some(spec.issue_date.unwrap_or_else(|| at.date_naive())),
            status,
            status_description: invoice_status::description(status).into(),
            calculation_method: method,
            calculation_method_description: calculation_method::description(method).into(),
            notes: spec.notes.clone(),
            invoice_to: spec.invoice_to.clone().or(patient_label),
            closed_at: (status != invoice_status::OPEN).then_some(at),
            created_at: at,
            updated_at: at,
            patient_id: spec.patient_id,
            business_id,
            practitioner_id,
            appointment_id: spec.appointment_id,
            ..Default::default()
        };
        let items = self.build_items(&invoice, &spec.items)?;
        // Totals from the new lines directly: scanning every item would make seeding quadratic.
        let mut invoice = invoice;
        apply_totals(&mut invoice, &items);
        for item in items {
            self.insert(item);
        }
        Ok(self.insert(invoice))
    }

    pub fn update_invoice(&mut self, id: u64, patch: &InvoicePatch) -> Result<Invoice, WriteError> {
        let mut invoice = self
            .tables
            .invoices
            .get(&id)
            .cloned()
            .ok_or(WriteError::NotFound)?;
        let now = self.now();
        if let Some(status) = patch.status {
            if ![10, 20, 30, 40].contains(&status) {
                return Err(WriteError::Invalid(FieldErrors::from([(
                    "status".into(),
                    "is not included in the list".into(),
                )])));
            }
            invoice.status = status;
            invoice.status_description = invoice_status::description(status).into();
            invoice.closed_at = if status == invoice_status::OPEN {
                None
            } else {
                Some(now)
            };
        }
        if let Some(notes) = &patch.notes {
            invoice.notes = Some(notes.clone());
        }
        if let Some(date) = patch.issue_date {
            invoice.issue_date = Some(date);
        }
        if let Some(archived) = patch.archived {
            invoice.archived_at = archived.then_some(now);
        }
        if let Some(deleted) = patch.deleted {
            invoice.deleted_at = deleted.then_some(now);
        }
        invoice.updated_at = now;
        // Only new lines change the totals; a status or note change leaves them as they are.
        if let Some(specs) = &patch.items {
            let items = self.build_items(&invoice, specs)?;
            for item in self.tables.invoice_items.values_mut() {
                if item.invoice_id == Some(id) && item.deleted_at.is_none() {
                    item.deleted_at = Some(now);
                    item.updated_at = now;
                }
            }
            apply_totals(&mut invoice, &items);
            for item in items {
                self.insert(item);
            }
        }
        Ok(self.insert(invoice))
    }

    /// Reverses an invoice the way Cliniko does: a credit note (a new invoice with the
    /// original's live lines at negative quantities, a negative total and an
    /// `original_invoice` link). An Open original is settled by it (both become Closed);
    /// reversing a Paid one leaves the credit with the patient (`keep_credit`: the credit
    /// note stays Open credit) or refunds it (Closed).
    pub fn reverse_invoice_at(
        &mut self,
        id: u64,
        keep_credit: bool,
        at: DateTime<Utc>,
    ) -> Result<Invoice, WriteError> {
        let mut original = self
            .tables
            .invoices
            .get(&id)
            .cloned()
            .ok_or(WriteError::NotFound)?;
        if original.original_invoice_id.is_some() {
            return Err(WriteError::Invalid(FieldErrors::from([(
                "original_invoice".into(),
                "a credit note cannot be reversed".into(),
            )])));
        }
        let lines: Vec<InvoiceItem> = self
            .tables
            .invoice_items
            .values()
            .filter(|i| {
                i.invoice_id == Some(id) && i.deleted_at.is_none() && i.archived_at.is_none()
            })
            .cloned()
            .collect();
        let settles_original = original.status == invoice_status::OPEN;
        let status = if settles_original || !keep_credit {
            30
        } else {
            40
        };
        self.next_invoice_number += 1;
        let mut credit = Invoice {
            id: self.fresh_id(),
            number: self.next_invoice_number,
            issue_date: Some(at.date_naive()),
            status,
            status_description: invoice_status::description(status).into(),
            closed_at: (status == 30).then_some(at),
            created_at: at,
            updated_at: at,
            original_invoice_id: Some(id),
            notes: Some(format!("Reversal of invoice {}", original.number)),
            ..original.clone()
        };
        let negate = |v: Option<Decimal>| v.map(|d| -d);
        let items: Vec<InvoiceItem> = lines
            .into_iter()
            .map(|i| InvoiceItem {
                id: 0,
                quantity: -i.quantity,
                discounted_amount: negate(i.discounted_amount),
                net_price: negate(i.net_price),
                tax_amount: negate(i.tax_amount),
                total_including_tax: negate(i.total_including_tax),
                created_at: at,
                updated_at: at,
                invoice_id: Some(credit.id),
                ..i
            })
            .collect();
        let items: Vec<InvoiceItem> = items
            .into_iter()
            .map(|i| InvoiceItem {
                id: self.fresh_id(),
                ..i
            })
            .collect();
        apply_totals(&mut credit, &items);
        for item in items {
            self.insert(item);
        }
        if settles_original {
            original.status = 30;
            original.status_description = invoice_status::description(30).into();
            original.closed_at = Some(at);
        }
        // The original's `reversed_invoices` changed: it is a change to sync.
        original.updated_at = at;
        self.insert(original);
        Ok(self.insert(credit))
    }

    /// Counts per table, for `/__admin/state` and the binaries' start-up banner.
    pub fn summary(&self) -> BTreeMap<&'static str, usize> {
        let t = &self.tables;
        BTreeMap::from([
            ("patients", t.patients.len()),
            ("invoices", t.invoices.len()),
            ("invoice_items", t.invoice_items.len()),
            ("products", t.products.len()),
            ("stock_adjustments", t.stock_adjustments.len()),
            ("billable_items", t.billable_items.len()),
            ("taxes", t.taxes.len()),
            ("businesses", t.businesses.len()),
            ("practitioners", t.practitioners.len()),
            ("appointment_types", t.appointment_types.len()),
            ("individual_appointments", t.appointments.len()),
            (
                "appointment_type_billable_items",
                t.appointment_type_billable_items.len(),
            ),
            ("contacts", t.contacts.len()),
        ])
    }
}

fn apply_totals(invoice: &mut Invoice, live: &[InvoiceItem]) {
    let total: Decimal = live.iter().filter_map(|i| i.total_including_tax).sum();
    let tax: Decimal = live.iter().filter_map(|i| i.tax_amount).sum();
    let off: Decimal = live.iter().filter_map(|i| i.discounted_amount).sum();
    invoice.total_amount = Some(total);
    invoice.tax_amount = Some(tax);
    invoice.net_amount = Some(total - tax);
    invoice.discounted_amount = Some(off);
}

// ---- field validation for writes -----------------------------------------------------

fn string_field(v: &Value, max: usize) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() > max => {
            Err(format!("is too long (maximum is {max} characters)"))
        }
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err("is invalid".into()),
    }
}

pub fn decimal_value(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => crate::common::wire::decimal::parse(&n.to_string()).ok(),
        Value::String(s) => crate::common::wire::decimal::parse(s).ok(),
        _ => None,
    }
}

/// `Ok(None)` for null, `Err(())` for something that is not an id.
#[allow(clippy::result_unit_err)]
pub fn id_value(v: &Value) -> Result<Option<u64>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => s.parse().map(Some).map_err(|_| ()),
        Value::Number(n) => n.as_u64().map(Some).ok_or(()),
        _ => Err(()),
    }
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
}

/// The OpenAPI pattern `^[NVQSWT]([A-Z ][0-9]{1,6}|[A-Z]{2}[0-9]{1,5}|[A-Z]{3}[0-9]{1,4})[A-Z]?$`
/// (a state letter, a file-number prefix, digits and an optional segment letter).
fn is_dva_card_number(s: &str) -> bool {
    let upper = s.to_ascii_uppercase();
    let b = upper.as_bytes();
    let Some((state, rest)) = b.split_first() else {
        return false;
    };
    if !b"NVQSWT".contains(state) {
        return false;
    }
    let middle = |r: &[u8]| {
        [(1, 6), (2, 5), (3, 4)]
            .iter()
            .any(|&(letters, max_digits)| {
                r.len() > letters
                    && r[..letters]
                        .iter()
                        .all(|c| c.is_ascii_uppercase() || (letters == 1 && *c == b' '))
                    && r.len() - letters <= max_digits
                    && r[letters..].iter().all(u8::is_ascii_digit)
            })
    };
    middle(rest)
        || rest
            .split_last()
            .is_some_and(|(last, head)| last.is_ascii_uppercase() && middle(head))
}

/// Pronouns: all five forms, each a string of at most 50 characters.
fn valid_pronouns(v: &Value) -> bool {
    const FORMS: [&str; 5] = [
        "accusative",
        "nominative",
        "predicative_possessive",
        "pronominal_possessive",
        "reflexive",
    ];
    v.as_object().is_some_and(|m| {
        FORMS.iter().all(|f| {
            m.get(*f)
                .and_then(Value::as_str)
                .is_some_and(|s| s.chars().count() <= 50)
        })
    })
}

/// Australian normalisation: digits only, a leading 0 becomes the country code 61.
pub fn normalize_phone(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix('0') {
        Some(rest) if number.trim_start().starts_with('0') => format!("61{rest}"),
        _ => digits,
    }
}

const PATIENT_TEXT_255: &[&str] = &[
    "address_1",
    "address_2",
    "address_3",
    "city",
    "email",
    "emergency_contact",
    "first_name",
    "last_name",
    "medicare",
    "medicare_reference_number",
    "occupation",
    "old_reference_id",
    "preferred_first_name",
    "referral_source",
    "title",
];
const PATIENT_TEXT: &[&str] = &[
    "appointment_notes",
    "country",
    "country_code",
    "dva_card_number",
    "gender_identity",
    "invoice_default_to",
    "invoice_email",
    "invoice_extra_information",
    "notes",
    "post_code",
    "sex",
    "state",
    "time_zone",
];
const PATIENT_BOOLS: &[&str] = &[
    "accepted_email_marketing",
    "accepted_privacy_policy",
    "accepted_sms_marketing",
    "receives_cancellation_emails",
    "receives_confirmation_emails",
];

/// Applies the writable patient fields present in `body` (PATCH semantics), then validates.
fn apply_patient_fields(
    patient: &mut Patient,
    body: &Map<String, Value>,
) -> Result<(), WriteError> {
    let mut errors = FieldErrors::new();
    let mut json = match serde_json::to_value(&*patient) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (key, value) in body {
        let key = key.as_str();
        let max = if PATIENT_TEXT_255.contains(&key) {
            Some(255)
        } else if PATIENT_TEXT.contains(&key) {
            Some(usize::MAX)
        } else {
            None
        };
        if let Some(max) = max {
            match string_field(value, max) {
                Ok(s) => {
                    json.insert(key.into(), s.map(Value::String).unwrap_or(Value::Null));
                }
                Err(e) => {
                    errors.insert(key.into(), e);
                }
            }
        } else if PATIENT_BOOLS.contains(&key) {
            if matches!(value, Value::Bool(_) | Value::Null) {
                json.insert(key.into(), value.clone());
            } else {
                errors.insert(key.into(), "is invalid".into());
            }
        } else if key == "reminder_type" {
            match value {
                Value::Null => {
                    json.insert(key.into(), Value::Null);
                }
                Value::String(s)
                    if ["None", "SMS", "Email", "SMS & Email"].contains(&s.as_str()) =>
                {
                    json.insert(key.into(), value.clone());
                }
                _ => {
                    errors.insert(key.into(), "is not included in the list".into());
                }
            }
        } else if key == "date_of_birth" {
            match value {
                Value::Null => {
                    json.insert(key.into(), Value::Null);
                }
                Value::String(s) if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => {
                    json.insert(key.into(), value.clone());
                }
                _ => {
                    errors.insert(key.into(), "is invalid".into());
                }
            }
        } else if key == "custom_fields" || key == "pronouns" {
            if matches!(value, Value::Object(_) | Value::Null) {
                json.insert(key.into(), value.clone());
            } else {
                errors.insert(key.into(), "must be an object".into());
            }
        } else if key == "patient_phone_numbers" {
            match phone_numbers(value) {
                Ok(list) => {
                    json.insert(
                        key.into(),
                        serde_json::to_value(list).unwrap_or(Value::Null),
                    );
                }
                Err(e) => {
                    errors.insert(key.into(), e);
                }
            }
        }
        // Anything else (ids of concession types, unknown keys) is ignored, as Rails does.
    }
    for key in ["email", "invoice_email"] {
        if let Some(Value::String(e)) = json.get(key)
            && !e.is_empty()
            && !is_email(e)
        {
            errors.insert(key.into(), "is invalid".into());
        }
    }
    if let Some(Value::String(dva)) = json.get("dva_card_number")
        && !dva.is_empty()
        && !is_dva_card_number(dva)
    {
        errors.insert("dva_card_number".into(), "is invalid".into());
    }
    if let Some(pronouns) = body.get("pronouns")
        && !pronouns.is_null()
        && !valid_pronouns(pronouns)
    {
        errors.insert("pronouns".into(), "is invalid".into());
    }
    for key in ["first_name", "last_name"] {
        let blank = json
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty());
        if blank && !errors.contains_key(key) {
            errors.insert(key.into(), BLANK.into());
        }
    }
    if !errors.is_empty() {
        return Err(WriteError::Invalid(errors));
    }
    let merged_with = patient.merged_with_patient_id;
    let mut updated: Patient = serde_json::from_value(Value::Object(json))
        .map_err(|e| WriteError::Invalid(FieldErrors::from([("base".into(), e.to_string())])))?;
    updated.merged_with_patient_id = merged_with;
    updated.label = Some(updated.full_label());
    if updated.country.is_none() {
        updated.country = updated.country_code.as_deref().map(country_name);
    }
    *patient = updated;
    Ok(())
}

fn phone_numbers(value: &Value) -> Result<Vec<PhoneNumber>, String> {
    let Value::Array(items) = value else {
        return if value.is_null() {
            Ok(Vec::new())
        } else {
            Err("is invalid".into())
        };
    };
    let mut out = Vec::new();
    for item in items {
        let number = item
            .get("number")
            .and_then(Value::as_str)
            .ok_or("number can’t be blank")?;
        let kind = item
            .get("phone_type")
            .and_then(Value::as_str)
            .unwrap_or("Mobile");
        if !["Fax", "Home", "Mobile", "Other", "Work"].contains(&kind) {
            return Err("phone_type is not included in the list".into());
        }
        out.push(PhoneNumber {
            number: number.to_string(),
            normalized_number: Some(normalize_phone(number)),
            phone_type: kind.to_string(),
        });
    }
    Ok(out)
}

pub fn country_name(code: &str) -> String {
    match code {
        "AU" => "Australia",
        "NZ" => "New Zealand",
        "GB" => "United Kingdom",
        "CA" => "Canada",
        "US" => "United States",
        other => other,
    }
    .to_string()
}

/// Turns a Cliniko JSON record (as the API or the legacy docs show it) into the shape the
/// models read: association links become `*_id` fields.
pub fn links_to_ids(record: &mut Map<String, Value>) {
    let mut ids = Vec::new();
    for (key, value) in record.iter() {
        let url = value
            .get("links")
            .and_then(|l| l.get("self"))
            .and_then(Value::as_str);
        if let (Some(url), false) = (url, key == "links") {
            let tail = url
                .split('?')
                .next()
                .unwrap_or(url)
                .rsplit('/')
                .next()
                .unwrap_or("");
            if tail.chars().all(|c| c.is_ascii_digit()) && !tail.is_empty() {
                ids.push((format!("{key}_id"), Value::String(tail.to_string())));
            }
        }
    }
    for (k, v) in ids {
        record.insert(k, v);
    }
}

pub fn decimal_string(d: Decimal) -> Value {
    Value::String(decimal_text(&d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn state() -> ClinikoState {
        let mut s = ClinikoState::new(SimClock::new());
        let now = s.now();
        let id = s.fresh_id();
        s.insert(Tax {
            id,
            name: "GST".into(),
            rate: dec!(10),
            amount: dec!(10),
            created_at: now,
            updated_at: now,
        });
        s
    }

    #[test]
    fn patient_create_validates_like_rails() {
        let mut s = state();
        let err = s
            .create_patient(&obj(json!({"first_name": "", "email": "nope"})))
            .unwrap_err();
        let WriteError::Invalid(errors) = err else {
            panic!()
        };
        assert_eq!(errors["first_name"], BLANK);
        assert_eq!(errors["last_name"], BLANK);
        assert_eq!(errors["email"], "is invalid");
        let long = "x".repeat(256);
        let WriteError::Invalid(errors) = s
            .create_patient(&obj(json!({"first_name": long, "last_name": "A"})))
            .unwrap_err()
        else {
            panic!()
        };
        assert_eq!(
            errors["first_name"],
            "is too long (maximum is 255 characters)"
        );
    }

    #[test]
    fn patient_patch_changes_only_given_fields_and_bumps_updated_at() {
        let mut s = state();
        let p = s
            .create_patient(&obj(
                json!({"first_name": "Zoë", "last_name": "O'Brien", "email": "z@example.com",
                "patient_phone_numbers": [{"number": "0412 345 678", "phone_type": "Mobile"}]}),
            ))
            .unwrap();
        assert_eq!(
            p.patient_phone_numbers[0].normalized_number.as_deref(),
            Some("61412345678")
        );
        s.clock().advance(std::time::Duration::from_secs(5));
        let q = s
            .update_patient(p.id, &obj(json!({"email": "zoe@example.com"})))
            .unwrap();
        assert_eq!(q.first_name, "Zoë");
        assert_eq!(q.email.as_deref(), Some("zoe@example.com"));
        assert!(q.updated_at > p.updated_at);
        assert_eq!(q.label.as_deref(), Some("Zoë O'Brien"));
    }

    #[test]
    fn product_prices_follow_tax_and_stock_needs_adjustments() {
        let mut s = state();
        let gst = *s.tables.taxes.keys().next().unwrap();
        let p = s
            .create_product(&obj(
                json!({"name": "Theraband", "price": 22, "price_includes_tax": true,
                "tax_id": gst.to_string(), "stock_level": "5"}),
            ))
            .unwrap();
        assert_eq!(p.price_ex_tax, Some(dec!(20)));
        assert_eq!(p.price_including_tax, Some(dec!(22)));
        let err = s
            .update_product(p.id, &obj(json!({"stock_level": "9"})))
            .unwrap_err();
        assert!(matches!(err, WriteError::Invalid(e) if e.contains_key("stock_level")));
        let bad = s.create_stock_adjustment(&obj(json!({"product_id": p.id.to_string(),
            "adjustment_type": "Damaged", "quantity": "2"})));
        assert!(bad.is_err(), "damaged stock must be a negative quantity");
        s.create_stock_adjustment(&obj(json!({"product_id": p.id.to_string(),
            "adjustment_type": "Damaged", "quantity": "-2"})))
            .unwrap();
        assert_eq!(s.tables.products[&p.id].stock_level, Some(dec!(3)));
    }

    #[test]
    fn invoice_totals_are_the_sum_of_lines() {
        let mut s = state();
        let gst = *s.tables.taxes.keys().next().unwrap();
        let patient = s
            .create_patient(&obj(json!({"first_name": "A", "last_name": "B"})))
            .unwrap();
        let product = s
            .create_product(&obj(
                json!({"name": "Ball", "price": "10.00", "tax_id": gst.to_string()}),
            ))
            .unwrap();
        let inv = s
            .create_invoice(&InvoiceSpec {
                patient_id: Some(patient.id),
                items: vec![
                    ItemSpec {
                        product_id: Some(product.id),
                        quantity: Some(dec!(3)),
                        ..Default::default()
                    },
                    ItemSpec {
                        product_id: Some(product.id),
                        discount_percentage: Some(dec!(50)),
                        tax_id: None,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(inv.total_amount, Some(dec!(38.50)));
        assert_eq!(inv.tax_amount, Some(dec!(3.50)));
        assert_eq!(inv.net_amount, Some(dec!(35.00)));
        let paid = s
            .update_invoice(
                inv.id,
                &InvoicePatch {
                    status: Some(20),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(paid.status_description, "Paid");
        assert!(paid.closed_at.is_some());
    }

    #[test]
    fn merge_archives_and_links_the_survivor() {
        let mut s = state();
        let a = s
            .create_patient(&obj(json!({"first_name": "A", "last_name": "B"})))
            .unwrap();
        let b = s
            .create_patient(&obj(json!({"first_name": "A", "last_name": "B"})))
            .unwrap();
        let merged = s.merge_patients(a.id, b.id).unwrap();
        assert!(merged.archived_at.is_some() && merged.merged_at.is_some());
        assert_eq!(merged.merged_with_patient_id, Some(b.id));
    }

    #[test]
    fn dva_numbers_and_pronouns_follow_the_schema() {
        for ok in ["NX123456", "V 12345", "QSM1234A", "WABC1234", "t 1"] {
            assert!(is_dva_card_number(ok), "{ok}");
        }
        for bad in [
            "12345",
            "X123456",
            "N1234567",
            "NABCD123",
            "N",
            "NX",
            "NX123456AB",
        ] {
            assert!(!is_dva_card_number(bad), "{bad}");
        }
        let all = json!({"accusative": "them", "nominative": "they",
            "predicative_possessive": "theirs", "pronominal_possessive": "their",
            "reflexive": "themselves"});
        assert!(valid_pronouns(&all));
        assert!(!valid_pronouns(&json!({"nominative": "they"})));
        let mut long = all.clone();
        long["reflexive"] = json!("x".repeat(51));
        assert!(!valid_pronouns(&long));
    }

    #[test]
    fn links_become_ids() {
        let mut m = obj(
            json!({"invoice": {"links": {"self": "https://api.au1.cliniko.com/v1/invoices/77"}},
            "links": {"self": "https://x/v1/invoice_items/1"}}),
        );
        links_to_ids(&mut m);
        assert_eq!(m["invoice_id"], json!("77"));
        assert!(!m.contains_key("links_id"));
    }
}
