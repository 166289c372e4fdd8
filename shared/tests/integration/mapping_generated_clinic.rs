//! Maps every record of a large generated clinic (2000 patients, about 5000 invoices with
//! GST and GST-free lines, percentage and money discounts, fractional quantities, both tax
//! calculation methods and every status) and checks, with the simulator's copy of Reckon's
//! arithmetic, that every Reckon invoice reproduces Cliniko's total and tax to the cent
//! under every rounding rule.

use cliniko_reckon::domain::{
    self, ActiveStatus, AmountTaxStatus, ClinikoId, Discount, InvoiceStatus, LineTarget, PhoneKind,
    ReckonId, TaxCalculation,
};
use cliniko_reckon::mapping::{
    MappingConfig, billable_item_to_item, business_time_zone, customer_name, disambiguate,
    invoice_to_draft, patient_to_customer, product_to_item,
};
use rust_decimal::Decimal;
use simulators::cliniko::model as sim;
use simulators::cliniko::store::ClinikoState;
use simulators::common::SimClock;
use simulators::generator::{ClinicSize, seed_clinic};
use simulators::reckon::tax::{self as reckon, LineIn, Rounding};
use std::collections::{BTreeMap, HashMap, HashSet};

// ---- test-only converter: simulator records → domain types -----------------------------

fn tax(t: &sim::Tax) -> domain::Tax {
    domain::Tax {
        id: ClinikoId(t.id),
        name: t.name.clone(),
        rate: t.rate,
    }
}

fn patient(p: &sim::Patient) -> domain::Patient {
    let lines = [&p.address_1, &p.address_2, &p.address_3]
        .into_iter()
        .flatten()
        .filter(|l| !l.trim().is_empty())
        .cloned()
        .collect();
    let phones = p
        .patient_phone_numbers
        .iter()
        .map(|n| domain::Phone {
            kind: match n.phone_type.as_str() {
                "Mobile" => PhoneKind::Mobile,
                "Home" => PhoneKind::Home,
                "Work" => PhoneKind::Work,
                "Fax" => PhoneKind::Fax,
                _ => PhoneKind::Other,
            },
            number: n.number.clone(),
        })
        .collect();
    domain::Patient {
        id: ClinikoId(p.id),
        title: p.title.clone(),
        first_name: p.first_name.clone(),
        last_name: p.last_name.clone(),
        preferred_first_name: p.preferred_first_name.clone(),
        email: p.email.clone(),
        invoice_email: p.invoice_email.clone(),
        address: domain::Address {
            lines,
            city: p.city.clone(),
            state: p.state.clone(),
            post_code: p.post_code.clone(),
            country_code: p.country_code.clone(),
        },
        phones,
        archived_at: p.archived_at,
        merged_at: p.merged_at,
        merged_into: p.merged_with_patient_id.map(ClinikoId),
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

fn product(p: &sim::Product) -> domain::Product {
    domain::Product {
        id: ClinikoId(p.id),
        name: p.name.clone(),
        item_code: p.item_code.clone(),
        price_ex_tax: p.price_ex_tax,
        price_including_tax: p.price_including_tax,
        tax_id: p.tax_id.map(ClinikoId),
        stock_level: p.stock_level,
        archived_at: p.archived_at,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

fn billable_item(b: &sim::BillableItem) -> domain::BillableItem {
    domain::BillableItem {
        id: ClinikoId(b.id),
        name: b.name.clone(),
        item_code: b.item_code.clone(),
        item_type: b.item_type.clone(),
        price: b.price,
        tax_id: b.tax_id.map(ClinikoId),
        archived_at: b.archived_at,
        created_at: b.created_at,
        updated_at: b.updated_at,
    }
}

fn invoice_item(i: &sim::InvoiceItem) -> domain::InvoiceItem {
    let discount = match (
        i.is_monetary_discount,
        i.discount_percentage,
        i.discounted_amount,
    ) {
        (Some(true), _, Some(a)) => Discount::Amount(a),
        (_, Some(p), _) if !p.is_zero() => Discount::Percent(p),
        _ => Discount::None,
    };
    domain::InvoiceItem {
        id: ClinikoId(i.id),
        invoice_id: ClinikoId(i.invoice_id.expect("simulator items belong to an invoice")),
        name: i.name.clone().unwrap_or_default(),
        code: i.code.clone(),
        unit_price: i.unit_price,
        quantity: i.quantity,
        discount,
        net_price: i.net_price.unwrap_or_default(),
        tax_name: i.tax_name.clone(),
        tax_rate: i.tax_rate.unwrap_or_default(),
        tax_amount: i.tax_amount.unwrap_or_default(),
        total_including_tax: i.total_including_tax.unwrap_or_default(),
        product_id: i.product_id.map(ClinikoId),
        billable_item_id: i.billable_item_id.map(ClinikoId),
        updated_at: i.updated_at,
    }
}

fn invoice(inv: &sim::Invoice, items: Vec<domain::InvoiceItem>) -> domain::Invoice {
    domain::Invoice {
        id: ClinikoId(inv.id),
        number: inv.number,
        issue_date: inv.issue_date,
        status: InvoiceStatus::from_code(i64::from(inv.status)).expect("known status"),
        calculation: TaxCalculation::from_code(i64::from(inv.calculation_method))
            .expect("known method"),
        total_amount: inv.total_amount.unwrap_or_default(),
        net_amount: inv.net_amount.unwrap_or_default(),
        tax_amount: inv.tax_amount.unwrap_or_default(),
        notes: inv.notes.clone(),
        patient_id: inv.patient_id.map(ClinikoId),
        business_id: inv.business_id.map(ClinikoId),
        appointment_id: inv.appointment_id.map(ClinikoId),
        closed_at: inv.closed_at,
        archived_at: inv.archived_at,
        deleted_at: inv.deleted_at,
        created_at: inv.created_at,
        updated_at: inv.updated_at,
        items,
        original_invoice_id: None,
        reversals: Vec::new(),
    }
}

fn business(b: &sim::Business) -> domain::Business {
    domain::Business {
        id: ClinikoId(b.id),
        name: b.business_name.clone().unwrap_or_default(),
        time_zone: b.time_zone_identifier.clone(),
    }
}

// ---- the test ------------------------------------------------------------------------

fn reckon_status(s: AmountTaxStatus) -> reckon::AmountTaxStatus {
    match s {
        AmountTaxStatus::Inclusive => reckon::AmountTaxStatus::Inclusive,
        AmountTaxStatus::Exclusive => reckon::AmountTaxStatus::Exclusive,
        AmountTaxStatus::NonTaxed => reckon::AmountTaxStatus::NonTaxed,
    }
}

#[test]
fn every_generated_invoice_maps_to_clinikos_totals_to_the_cent() {
    let mut state = ClinikoState::new(SimClock::new());
    let report = seed_clinic(&mut state, 20_240_301, ClinicSize::with_patients(2000));
    let t = &state.tables;
    let cfg = MappingConfig::default();
    let taxes: Vec<domain::Tax> = t.taxes.values().map(tax).collect();
    let rates: HashMap<String, Decimal> = [("GST".to_string(), Decimal::TEN)].into();

    // Customers: every patient maps; same names are disambiguated into unique ones.
    let mut names: HashMap<String, ClinikoId> = HashMap::new();
    let mut collisions = 0;
    let mut inactive = 0;
    for p in t.patients.values().map(patient) {
        let mut name = customer_name(&p);
        if names.contains_key(&name) {
            name = disambiguate(&name, p.id);
            collisions += 1;
        }
        assert!(
            names.insert(name.clone(), p.id).is_none(),
            "still taken: {name}"
        );
        let c = patient_to_customer(&p, &name, &cfg);
        assert!(!c.name.is_empty() && c.name.encode_utf16().count() <= 100);
        assert!(c.addresses.len() <= 1);
        for a in &c.addresses {
            assert!(a.lines.len() <= 3);
            assert!(a.lines.iter().all(|l| l.encode_utf16().count() <= 80));
        }
        let kinds: HashSet<&str> = c.phones.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(kinds.len(), c.phones.len(), "one phone per type");
        inactive += usize::from(c.status == ActiveStatus::Inactive);
    }
    assert_eq!(names.len(), t.patients.len());

    // Items: every product and billable item maps.
    for p in t.products.values() {
        product_to_item(&product(p), &taxes, &cfg).expect("product maps");
    }
    for b in t.billable_items.values() {
        billable_item_to_item(&billable_item(b), &taxes, &cfg).expect("billable item maps");
    }

    // Invoices.
    let tz = business_time_zone(t.businesses.values().next().map(business).as_ref(), &cfg);
    assert_eq!(tz, chrono_tz::Australia::Sydney);
    let mut items_by_invoice: BTreeMap<u64, Vec<domain::InvoiceItem>> = BTreeMap::new();
    for i in t.invoice_items.values() {
        if let (None, None, Some(inv)) = (i.deleted_at, i.archived_at, i.invoice_id) {
            items_by_invoice
                .entry(inv)
                .or_default()
                .push(invoice_item(i));
        }
    }
    let customer = ReckonId(uuid::Uuid::from_u128(1));
    let mut mix: BTreeMap<String, usize> = BTreeMap::new();
    let (mut checked, mut lines_checked, mut fallbacks, mut discounted_by_rounding) =
        (0usize, 0usize, 0usize, 0usize);
    for inv in t.invoices.values() {
        let mut items = items_by_invoice.remove(&inv.id).unwrap_or_default();
        items.sort_by_key(|i| i.id);
        let inv = invoice(inv, items);
        let targets: Vec<LineTarget> = inv
            .items
            .iter()
            .map(|i| LineTarget::Item(ReckonId(uuid::Uuid::from_u128(u128::from(i.id.0)))))
            .collect();
        let draft = invoice_to_draft(&inv, customer, &targets, tz, &cfg)
            .unwrap_or_else(|e| panic!("invoice {} does not map: {e}", inv.number));
        let lines: Vec<LineIn> = draft
            .lines
            .iter()
            .map(|l| LineIn {
                amount: reckon::line_amount(l.price, l.quantity, l.discount_amount, None),
                rate: rates.get(&l.tax_code).copied().unwrap_or_default(),
                tax_override: Some(l.tax_amount),
            })
            .collect();
        for rounding in [
            Rounding::LineHalfUp,
            Rounding::LineHalfEven,
            Rounding::InvoiceTotal,
        ] {
            let totals = reckon::compute(&lines, reckon_status(draft.amount_tax_status), rounding);
            assert_eq!(
                (totals.total, totals.total_tax),
                (inv.total_amount, inv.tax_amount),
                "invoice {} under {rounding:?}: {draft:#?}",
                inv.number
            );
        }
        assert_eq!(draft.reference, inv.number.to_string());
        assert_eq!(draft.paid, inv.status == InvoiceStatus::Paid);
        assert_eq!(draft.expected_total, inv.total_amount);
        assert_eq!(draft.expected_tax, inv.tax_amount);
        for (l, item) in draft.lines.iter().zip(&inv.items) {
            assert!(l.discount_amount.is_none_or(|d| d > Decimal::ZERO));
            if l.quantity != item.quantity {
                fallbacks += 1;
            }
            if matches!(item.discount, Discount::None) && l.discount_amount.is_some() {
                discounted_by_rounding += 1;
            }
            let discount = match item.discount {
                Discount::None => "none",
                Discount::Percent(_) => "percent",
                Discount::Amount(_) => "amount",
            };
            let method = match inv.calculation {
                TaxCalculation::Inclusive => "inclusive",
                TaxCalculation::Exclusive => "exclusive",
            };
            let tax = if item.tax_rate.is_zero() {
                "gst-free"
            } else {
                "gst"
            };
            *mix.entry(format!("{method}/{tax}/{discount}")).or_default() += 1;
            lines_checked += 1;
        }
        checked += 1;
    }
    assert_eq!(checked, report.invoices);
    // Every combination of method, tax and discount is exercised.
    assert_eq!(mix.len(), 12, "{mix:#?}");
    eprintln!(
        "checked {checked} invoices, {lines_checked} lines ({fallbacks} fallbacks, \
         {discounted_by_rounding} undiscounted lines needing a rounding discount); \
         {} patients ({collisions} name collisions disambiguated, {inactive} inactive); \
         line mix: {mix:#?}",
        names.len()
    );
    assert!(checked > 4000, "a large clinic: {checked}");
}
