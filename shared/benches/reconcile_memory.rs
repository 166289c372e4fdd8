//! Memory and speed of a full reconciliation at clinic scale: by default 100,000 patients
//! and 300,000 invoices (with 1–3 lines each), both sides read page by page, the links read
//! from a real SQLite state file. Prints peak resident memory (the figure Lambda's memory
//! size is about), time and throughput; checks that the planted drifts are found exactly.
//!
//! `cargo bench -p cliniko-reckon --bench reconcile_memory [-- --patients N --invoices M]`
//!
//! The state file is written by this process; the reconciliation runs in a child process
//! so its peak memory (`VmHWM`) is its own, not the set-up's. The Cliniko and Reckon sides
//! are generated record by record from their index (what a page request would return), so
//! the measured memory is the reconciliation's: the Reckon book, the links and the report.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use cliniko_reckon::adapters::sqlite::SqliteState;
use cliniko_reckon::domain::*;
use cliniko_reckon::mapping::{self, MappingConfig};
use cliniko_reckon::ports::{
    Changes, ClinikoSource, CrossRef, Page, PageCursor, ReckonBook, StateStore,
};
use cliniko_reckon::ports::{SinkError, SourceError};
use cliniko_reckon::reconcile::{Category, reconcile};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const PAGE: u64 = 100;
const PRODUCTS: u64 = 40;
const SERVICES: u64 = 25;
/// Every this many customers has its name edited in Reckon; every this many invoices has
/// its first line's amount edited in Reckon.
const DRIFT_EVERY: u64 = 1_000;

const FIRST: [&str; 12] = [
    "Olivia",
    "Jack",
    "Charlotte",
    "William",
    "Amelia",
    "Noah",
    "Isla",
    "Oliver",
    "Mia",
    "Leo",
    "Ava",
    "Henry",
];
const LAST: [&str; 10] = [
    "Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin",
    "Anderson",
];
const STREETS: [&str; 6] = [
    "George Street",
    "Pitt Street",
    "King Street",
    "Oxford Street",
    "Military Road",
    "Pacific Highway",
];

#[derive(Clone, Copy)]
struct Clinic {
    patients: u64,
    invoices: u64,
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

fn gst() -> Tax {
    Tax {
        id: ClinikoId(1),
        name: "GST".into(),
        rate: Decimal::TEN,
    }
}

fn patient(i: u64) -> Patient {
    let first = FIRST[(i % 12) as usize];
    let last = LAST[(i / 12 % 10) as usize];
    Patient {
        id: ClinikoId(1_000_000 + i),
        title: None,
        first_name: first.into(),
        last_name: format!("{last}-{i}"),
        preferred_first_name: None,
        email: Some(format!(
            "{}.{}{i}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        )),
        invoice_email: None,
        address: Address {
            lines: vec![format!("{} {}", i % 300 + 1, STREETS[(i % 6) as usize])],
            city: Some("Sydney".into()),
            state: Some("NSW".into()),
            post_code: Some(format!("2{:03}", i % 1000)),
            country_code: Some("AU".into()),
        },
        phones: vec![Phone {
            kind: PhoneKind::Mobile,
            number: format!("04{:08}", i % 100_000_000),
        }],
        archived_at: None,
        merged_at: None,
        merged_into: None,
        created_at: at(),
        updated_at: at(),
    }
}

fn product(i: u64) -> Product {
    Product {
        id: ClinikoId(2_000_000 + i),
        name: format!("Product {i}"),
        item_code: Some(format!("P{i}")),
        price_ex_tax: Some(money(1_995 + i as i64 * 100)),
        price_including_tax: None,
        tax_id: Some(ClinikoId(1)),
        stock_level: None,
        archived_at: None,
        created_at: at(),
        updated_at: at(),
    }
}

fn service(i: u64) -> BillableItem {
    BillableItem {
        id: ClinikoId(3_000_000 + i),
        name: format!("Consultation {i}"),
        item_code: None,
        item_type: "Service".into(),
        price: money(8_500 + i as i64 * 500),
        tax_id: None,
        archived_at: None,
        created_at: at(),
        updated_at: at(),
    }
}

fn invoice(clinic: Clinic, j: u64) -> Invoice {
    let id = ClinikoId(5_000_000 + j);
    let lines = 1 + j % 3;
    let items: Vec<InvoiceItem> = (0..lines)
        .map(|n| {
            // The last line of every third invoice sells a product (GST), the rest services.
            let is_product = n == 2;
            let (unit, rate, product_id, billable_item_id) = if is_product {
                let p = product((j + n) % PRODUCTS);
                (
                    p.price_ex_tax.unwrap_or_default(),
                    Decimal::TEN,
                    Some(p.id),
                    None,
                )
            } else {
                let s = service((j + n) % SERVICES);
                (s.price, Decimal::ZERO, None, Some(s.id))
            };
            let tax = (unit * rate / Decimal::ONE_HUNDRED).round_dp(2);
            InvoiceItem {
                id: ClinikoId(id.0 * 10 + n),
                invoice_id: id,
                name: format!("Line {n}"),
                code: None,
                unit_price: unit,
                quantity: Decimal::ONE,
                discount: Discount::None,
                net_price: unit,
                tax_name: is_product.then(|| "GST".to_string()),
                tax_rate: rate,
                tax_amount: tax,
                total_including_tax: unit + tax,
                product_id,
                billable_item_id,
                updated_at: at(),
            }
        })
        .collect();
    let net: Decimal = items.iter().map(|i| i.net_price).sum();
    let tax: Decimal = items.iter().map(|i| i.tax_amount).sum();
    let paid = !j.is_multiple_of(5);
    Invoice {
        id,
        number: 10_000 + j as i64,
        issue_date: NaiveDate::from_ymd_opt(2026, 1 + (j % 9) as u32, 1 + (j % 28) as u32),
        status: if paid {
            InvoiceStatus::Paid
        } else {
            InvoiceStatus::Open
        },
        calculation: TaxCalculation::Exclusive,
        total_amount: net + tax,
        net_amount: net,
        tax_amount: tax,
        notes: None,
        patient_id: Some(ClinikoId(1_000_000 + j % clinic.patients)),
        business_id: None,
        appointment_id: None,
        closed_at: paid.then(at),
        archived_at: None,
        deleted_at: None,
        created_at: at(),
        updated_at: at(),
        items,
        original_invoice_id: None,
        reversals: Vec::new(),
    }
}

fn reckon_id(kind: EntityKind, cliniko: ClinikoId) -> ReckonId {
    let tag = match kind {
        EntityKind::Patient => 1u128,
        EntityKind::Product => 2,
        EntityKind::BillableItem => 3,
        EntityKind::Invoice => 4,
        EntityKind::Appointment => 5,
    };
    ReckonId(uuid::Uuid::from_u128(tag << 96 | u128::from(cliniko.0)))
}

/// The generator index behind a Reckon id made by [`reckon_id`].
fn index_of(id: ReckonId, tag: u128, base: u64, count: u64) -> Option<u64> {
    let v = id.0.as_u128();
    let cliniko = (v & u128::from(u64::MAX)) as u64;
    (v >> 96 == tag && cliniko >= base && cliniko - base < count).then(|| cliniko - base)
}

/// Generates Cliniko pages; reconciliation only reads `all_page`, taxes and businesses.
struct GeneratedCliniko(Clinic);

fn page_number(cursor: Option<PageCursor>) -> u64 {
    cursor.and_then(|c| c.0.parse().ok()).unwrap_or(0)
}

fn page_of<T>(page: u64, total: u64, make: impl Fn(u64) -> T) -> Page<T> {
    let start = page * PAGE;
    let end = (start + PAGE).min(total);
    Page::new(
        (start..end).map(make).collect(),
        (end < total).then(|| PageCursor((page + 1).to_string())),
    )
}

impl ClinikoSource for GeneratedCliniko {
    async fn changed_since(
        &self,
        _kind: EntityKind,
        _since: Option<DateTime<Utc>>,
    ) -> Result<Changes, SourceError> {
        Ok(Changes::default())
    }

    async fn record(&self, _: EntityKind, _: ClinikoId) -> Result<Option<Record>, SourceError> {
        Ok(None)
    }

    async fn all_page(
        &self,
        kind: EntityKind,
        cursor: Option<PageCursor>,
    ) -> Result<Page<Record>, SourceError> {
        let clinic = self.0;
        let page = page_number(cursor);
        Ok(match kind {
            EntityKind::Patient => page_of(page, clinic.patients, |i| Record::Patient(patient(i))),
            EntityKind::Product => page_of(page, PRODUCTS, |i| Record::Product(product(i))),
            EntityKind::BillableItem => {
                page_of(page, SERVICES, |i| Record::BillableItem(service(i)))
            }
            EntityKind::Invoice => page_of(page, clinic.invoices, |j| {
                Record::Invoice(invoice(clinic, j))
            }),
            // This clinic invoices in Cliniko: appointments are not read.
            EntityKind::Appointment => Page::new(Vec::new(), None),
        })
    }

    async fn taxes(&self) -> Result<Vec<Tax>, SourceError> {
        Ok(vec![gst()])
    }

    async fn businesses(&self) -> Result<Vec<Business>, SourceError> {
        Ok(Vec::new())
    }

    async fn appointment_type_lines(&self) -> Result<Vec<AppointmentTypeLine>, SourceError> {
        Ok(Vec::new())
    }

    async fn invoices_of_appointment(&self, _: ClinikoId) -> Result<Vec<Invoice>, SourceError> {
        Ok(Vec::new())
    }
}

/// Generates the Reckon book the sync would have written (the mapping functions), with
/// the planted drifts.
struct GeneratedReckon {
    clinic: Clinic,
    mapping: MappingConfig,
}

impl GeneratedReckon {
    fn customer(&self, i: u64) -> ReckonCustomerRecord {
        let p = patient(i);
        let draft = mapping::patient_to_customer(&p, &mapping::customer_name(&p), &self.mapping);
        ReckonCustomerRecord {
            id: reckon_id(EntityKind::Patient, p.id),
            name: if i % DRIFT_EVERY == 7 {
                format!("{} (edited)", draft.name)
            } else {
                draft.name
            },
            status: draft.status,
            email: draft.email,
            phones: draft.phones,
            addresses: draft.addresses,
        }
    }

    fn item(&self, i: u64) -> ReckonItemRecord {
        let (kind, id, draft) = if i < PRODUCTS {
            let p = product(i);
            (
                EntityKind::Product,
                p.id,
                mapping::product_to_item(&p, &[gst()], &self.mapping),
            )
        } else {
            let s = service(i - PRODUCTS);
            (
                EntityKind::BillableItem,
                s.id,
                mapping::billable_item_to_item(&s, &[gst()], &self.mapping),
            )
        };
        let draft = draft.unwrap_or_else(|e| panic!("generated item does not map: {e}"));
        ReckonItemRecord {
            id: reckon_id(kind, id),
            name: draft.name,
            status: draft.status,
            sale_price: Some(draft.sale_price),
            tax_code: Some(draft.tax_code),
        }
    }

    fn invoice(&self, j: u64) -> ReckonInvoiceRecord {
        let inv = invoice(self.clinic, j);
        let customer = reckon_id(EntityKind::Patient, inv.patient_id.unwrap_or(ClinikoId(0)));
        let targets: Vec<LineTarget> = inv
            .items
            .iter()
            .map(|l| match (l.product_id, l.billable_item_id) {
                (Some(p), _) => LineTarget::Item(reckon_id(EntityKind::Product, p)),
                (None, Some(b)) => LineTarget::Item(reckon_id(EntityKind::BillableItem, b)),
                (None, None) => LineTarget::Account(self.mapping.service_income_account.clone()),
            })
            .collect();
        let draft = mapping::invoice_to_draft(
            &inv,
            customer,
            &targets,
            self.mapping.default_time_zone,
            &self.mapping,
        )
        .unwrap_or_else(|e| panic!("generated invoice does not map: {e}"));
        let mut lines: Vec<ReckonLineRecord> = draft
            .lines
            .iter()
            .map(|l| ReckonLineRecord {
                line_number: l.line_number,
                amount: mapping::reckon_line_amount(l.price, l.quantity, l.discount_amount)
                    .unwrap_or_default(),
                tax_amount: l.tax_amount,
            })
            .collect();
        if j % DRIFT_EVERY == 3
            && let Some(first) = lines.first_mut()
        {
            first.amount += Decimal::ONE;
        }
        ReckonInvoiceRecord {
            id: reckon_id(EntityKind::Invoice, inv.id),
            reference: Some(draft.reference),
            customer: Some(customer),
            status: if draft.paid {
                ReckonInvoiceStatus::Paid
            } else {
                ReckonInvoiceStatus::Approved
            },
            total_amount: draft.expected_total,
            total_tax_amount: draft.expected_tax,
            balance: if draft.paid {
                Decimal::ZERO
            } else {
                draft.expected_total
            },
            lines,
        }
    }
}

impl ReckonBook for GeneratedReckon {
    async fn customer_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ReckonCustomerRecord>, SinkError> {
        Ok(page_of(page_number(cursor), self.clinic.patients, |i| {
            self.customer(i)
        }))
    }

    async fn item_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ReckonItemRecord>, SinkError> {
        Ok(page_of(page_number(cursor), PRODUCTS + SERVICES, |i| {
            self.item(i)
        }))
    }

    async fn invoice_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ReckonInvoiceRecord>, SinkError> {
        Ok(page_of(page_number(cursor), self.clinic.invoices, |j| {
            self.invoice(j)
        }))
    }

    async fn credit_note_page(
        &self,
        _cursor: Option<PageCursor>,
    ) -> Result<Page<ReckonCreditNote>, SinkError> {
        // The generated clinic has no credit notes.
        Ok(Page::new(Vec::new(), None))
    }

    async fn customer(&self, id: ReckonId) -> Result<Option<ReckonCustomerRecord>, SinkError> {
        Ok(index_of(id, 1, 1_000_000, self.clinic.patients).map(|i| self.customer(i)))
    }

    async fn item(&self, id: ReckonId) -> Result<Option<ReckonItemRecord>, SinkError> {
        let product = index_of(id, 2, 2_000_000, PRODUCTS);
        let service = index_of(id, 3, 3_000_000, SERVICES).map(|i| i + PRODUCTS);
        Ok(product.or(service).map(|i| self.item(i)))
    }

    async fn invoice_record(&self, id: ReckonId) -> Result<Option<ReckonInvoiceRecord>, SinkError> {
        Ok(index_of(id, 4, 5_000_000, self.clinic.invoices).map(|j| self.invoice(j)))
    }
}

/// Peak resident set size of this process, in bytes (Linux `VmHWM`).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Writes the links the sync would have recorded for every generated record.
async fn write_links(path: &Path, clinic: Clinic) -> Result<(), Box<dyn std::error::Error>> {
    let state = SqliteState::open(path)?;
    let mut ids: Vec<(EntityKind, ClinikoId)> = Vec::new();
    ids.extend((0..clinic.patients).map(|i| (EntityKind::Patient, patient(i).id)));
    ids.extend((0..PRODUCTS).map(|i| (EntityKind::Product, product(i).id)));
    ids.extend((0..SERVICES).map(|i| (EntityKind::BillableItem, service(i).id)));
    ids.extend((0..clinic.invoices).map(|j| (EntityKind::Invoice, ClinikoId(5_000_000 + j))));
    for (kind, id) in ids {
        state
            .put_cross_ref(&CrossRef {
                kind,
                cliniko_id: id,
                reckon_id: reckon_id(kind, id),
                version: at(),
                content_hash: String::new(),
                reckon_name: None,
                adopted: false,
            })
            .await?;
    }
    Ok(())
}

async fn measure(path: &Path, clinic: Clinic) -> Result<(), Box<dyn std::error::Error>> {
    let state = SqliteState::open(path)?;
    let mapping = MappingConfig::default();
    let source = GeneratedCliniko(clinic);
    let book = GeneratedReckon {
        clinic,
        mapping: mapping.clone(),
    };
    let started = Instant::now();
    let report = reconcile(&source, &book, &state, &mapping, "bench", Utc::now()).await?;
    let elapsed = started.elapsed();
    let expect_names = clinic.patients.saturating_sub(7).div_ceil(DRIFT_EVERY);
    let expect_amounts = clinic.invoices.saturating_sub(3).div_ceil(DRIFT_EVERY);
    let drift = report.count(Category::FieldDrift) as u64;
    let amounts = report.count(Category::AmountDrift) as u64;
    if drift != expect_names
        || amounts != expect_amounts
        || report.total() as u64 != drift + amounts
    {
        return Err(format!(
            "planted {expect_names} name drifts and {expect_amounts} amount drifts; the report has {drift} field drifts, {amounts} amount drifts, {} in all",
            report.total()
        )
        .into());
    }
    let records = clinic.patients + clinic.invoices + PRODUCTS + SERVICES;
    println!(
        "reconcile: {} patients, {} invoices ({} records per side) in {:.1} s ({:.0} records/s)",
        clinic.patients,
        clinic.invoices,
        records,
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64()
    );
    println!(
        "found: {drift} field drifts and {amounts} amount drifts, as planted ({} mismatches)",
        report.total()
    );
    match peak_rss() {
        Some(peak) => println!(
            "peak resident memory: {:.1} MiB (budget 128 MiB: {})",
            mib(peak),
            if mib(peak) <= 128.0 { "within" } else { "OVER" }
        ),
        None => println!("peak resident memory: unavailable (no /proc/self/status)"),
    }
    Ok(())
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let number = |name: &str, default: u64| -> Result<u64, Box<dyn std::error::Error>> {
        Ok(match arg(&args, name) {
            Some(v) => v.parse()?,
            None => default,
        })
    };
    let clinic = Clinic {
        patients: number("--patients", 100_000)?.max(1),
        invoices: number("--invoices", 300_000)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Some(path) = arg(&args, "--measure") {
        return runtime.block_on(measure(Path::new(&path), clinic));
    }
    let dir = tempfile::tempdir()?;
    let path: PathBuf = dir.path().join("state.sqlite");
    let started = Instant::now();
    runtime.block_on(write_links(&path, clinic))?;
    println!(
        "set-up: links for every record written to SQLite in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let status = Command::new(std::env::current_exe()?)
        .args([
            "--measure",
            &path.to_string_lossy(),
            "--patients",
            &clinic.patients.to_string(),
            "--invoices",
            &clinic.invoices.to_string(),
        ])
        .status()?;
    if !status.success() {
        return Err(format!("the measuring process failed: {status}").into());
    }
    Ok(())
}
