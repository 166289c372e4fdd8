//! What the per-entity apply tests share: a `Syncer` over the in-memory Cliniko and Reckon
//! twins and SQLite in memory, and Cliniko records to feed it.

use super::*;
use crate::adapters::memory::{MemoryBook, MemoryCliniko};
use crate::adapters::sqlite::SqliteState;
use chrono::{DateTime, TimeZone};

pub use crate::ports::{CreditNoteSink, InvoiceSink};
pub use chrono::NaiveDate;

pub type TestSyncer = Syncer<MemoryCliniko, MemoryBook, SqliteState>;

/// A clinic with GST (10%) and nothing else yet.
pub fn syncer() -> TestSyncer {
    let cliniko = MemoryCliniko::new();
    cliniko.put_tax(Tax {
        id: ClinikoId(1),
        name: "GST".into(),
        rate: Decimal::TEN,
    });
    let state = SqliteState::open_in_memory().expect("state in memory");
    Syncer::new(cliniko, MemoryBook::new(), state, MappingConfig::default())
}

/// Noon UTC on a day of March 2024 (later days are later versions).
pub fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, d, 12, 0, 0).unwrap()
}

pub fn patient(id: u64, first: &str, last: &str, email: Option<&str>) -> Patient {
    Patient {
        id: ClinikoId(id),
        title: None,
        first_name: first.into(),
        last_name: last.into(),
        preferred_first_name: None,
        email: email.map(String::from),
        invoice_email: None,
        address: Address::default(),
        phones: vec![],
        archived_at: None,
        merged_at: None,
        merged_into: None,
        created_at: day(1),
        updated_at: day(1),
    }
}

pub fn service(id: u64, name: &str, price: Decimal) -> BillableItem {
    BillableItem {
        id: ClinikoId(id),
        name: name.into(),
        item_code: None,
        item_type: "Service".into(),
        price,
        tax_id: Some(ClinikoId(1)),
        archived_at: None,
        created_at: day(1),
        updated_at: day(1),
    }
}

pub fn product(id: u64, name: &str, code: Option<&str>, price_ex_tax: Decimal) -> Product {
    Product {
        id: ClinikoId(id),
        name: name.into(),
        item_code: code.map(String::from),
        price_ex_tax: Some(price_ex_tax),
        price_including_tax: None,
        tax_id: Some(ClinikoId(1)),
        stock_level: None,
        archived_at: None,
        created_at: day(1),
        updated_at: day(1),
    }
}

/// An Open, tax-exclusive invoice `number` for `patient`: one line per `(service, price,
/// quantity)`, each with GST, totals as Cliniko computes them.
pub fn invoice(id: u64, number: i64, patient: u64, lines: &[(u64, Decimal, u32)]) -> Invoice {
    let items: Vec<InvoiceItem> = lines
        .iter()
        .enumerate()
        .map(|(i, (service, price, qty))| {
            let net = price * Decimal::from(*qty);
            let tax = (net / Decimal::TEN).round_dp(2);
            InvoiceItem {
                id: ClinikoId(id * 100 + i as u64),
                invoice_id: ClinikoId(id),
                name: format!("Service {service}"),
                code: None,
                unit_price: *price,
                quantity: Decimal::from(*qty),
                discount: Discount::None,
                net_price: net,
                tax_name: Some("GST".into()),
                tax_rate: Decimal::TEN,
                tax_amount: tax,
                total_including_tax: net + tax,
                product_id: None,
                billable_item_id: Some(ClinikoId(*service)),
                updated_at: day(2),
            }
        })
        .collect();
    let net: Decimal = items.iter().map(|i| i.net_price).sum();
    let tax: Decimal = items.iter().map(|i| i.tax_amount).sum();
    Invoice {
        id: ClinikoId(id),
        number,
        issue_date: NaiveDate::from_ymd_opt(2024, 3, 2),
        status: InvoiceStatus::Open,
        calculation: TaxCalculation::Exclusive,
        total_amount: net + tax,
        net_amount: net,
        tax_amount: tax,
        notes: None,
        patient_id: Some(ClinikoId(patient)),
        business_id: None,
        appointment_id: None,
        closed_at: None,
        archived_at: None,
        deleted_at: None,
        created_at: day(2),
        updated_at: day(2),
        items,
        original_invoice_id: None,
        reversals: Vec::new(),
    }
}

/// `cents` as money.
pub fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}
