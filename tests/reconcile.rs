//! Reconciliation against both simulators: a clean sync reconciles to zero, and each drift
//! made behind the sync's back is found exactly once, in the right category, with both
//! sides' values.

use cliniko_reckon::domain::{ClinikoId, EntityKind, ReckonId};
use cliniko_reckon::mapping::MappingConfig;
use cliniko_reckon::pipeline::local;
use cliniko_reckon::reconcile::{
    Category, LinkError, LinkRequest, Mismatch, ReconcileReport, RepairSummary, link, reconcile,
    repair,
};
use cliniko_reckon_e2e::{Harness, Options, fast_retry};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use simulators::cliniko::store::InvoicePatch;
use simulators::reckon::book::LineDetail;

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

async fn run_reconcile(h: &Harness) -> ReconcileReport {
    reconcile(
        &h.syncer.source,
        &h.syncer.sink,
        h.state(),
        &MappingConfig::default(),
        "test-clinic",
        chrono::Utc::now(),
    )
    .await
    .expect("reconcile")
}

/// `reconcile --repair`'s second half: queue what the report marks as repairable.
async fn run_repair(h: &Harness, report: &ReconcileReport) -> RepairSummary {
    repair(
        report,
        &h.syncer.source,
        h.state(),
        h.state(),
        chrono::Utc::now(),
    )
    .await
    .expect("repair")
}

/// Applies only what is queued (no poll), as `sync --once` would after it.
async fn drain_queue(h: &Harness) -> local::DrainSummary {
    let quiet = |_: local::Progress<'_>| {};
    local::drain(&h.syncer, &fast_retry(), &quiet)
        .await
        .expect("drain")
}

fn only(report: &ReconcileReport, category: Category) -> Vec<&Mismatch> {
    report.in_category(category).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_sync_reconciles_to_zero() {
    let h = Harness::start(Options {
        patients: 40,
        existing_fraction: 0.1,
        ..Default::default()
    })
    .await;
    h.run().await;
    let report = run_reconcile(&h).await;
    assert!(report.is_clean(), "{:#?}", report.mismatches);
    assert_eq!(report.scanned.cliniko_patients as usize, h.seed.patients);
    assert!(report.scanned.cliniko_invoices > 0);
    assert!(report.scanned.reckon_invoices > 0);
    assert_eq!(report.summary.len(), 8, "every category is counted");
    // Reading back writes nothing.
    let writes = h.reckon_writes();
    run_reconcile(&h).await;
    assert_eq!(h.reckon_writes(), writes);
}

/// The six drifts of the issue, made behind the sync's back, and the records they touch.
struct Drifts {
    patient_a: u64,
    customer_a: ReckonId,
    old_name: String,
    patient_b: u64,
    duplicate: uuid::Uuid,
    deleted_inv: u64,
    deleted_rid: ReckonId,
    edited_inv: u64,
    paid_inv: u64,
    product: u64,
}

async fn make_six_drifts(h: &Harness) -> Drifts {
    // Pick the records to disturb.
    let linked = |kind, id: u64| async move { h.reckon_id(kind, id).await.expect("linked") };
    let (patient_a, patient_b) = h.cliniko.with(|s| {
        let mut ids = s
            .tables
            .patients
            .values()
            .filter(|p| p.archived_at.is_none() && p.merged_at.is_none())
            .map(|p| p.id);
        (ids.next().unwrap(), ids.next().unwrap())
    });
    let live_invoices: Vec<(u64, i32)> = h.cliniko.with(|s| {
        s.tables
            .invoices
            .values()
            .filter(|i| i.archived_at.is_none() && i.deleted_at.is_none())
            .map(|i| (i.id, i.status))
            .collect()
    });
    let open: Vec<u64> = live_invoices
        .iter()
        .filter(|(_, s)| *s == 10)
        .map(|(i, _)| *i)
        .collect();
    assert!(open.len() >= 3, "the clinic has open invoices to disturb");
    let (deleted_inv, edited_inv, paid_inv) = (open[0], open[1], open[2]);
    let product = h.cliniko.with(|s| {
        s.tables
            .products
            .values()
            .find(|p| p.archived_at.is_none())
            .map(|p| p.id)
            .unwrap()
    });

    let customer_a = linked(EntityKind::Patient, patient_a).await;
    let customer_b = linked(EntityKind::Patient, patient_b).await;
    let deleted_rid = linked(EntityKind::Invoice, deleted_inv).await;
    let edited_rid = linked(EntityKind::Invoice, edited_inv).await;

    // 1. A customer renamed directly in Reckon.
    let old_name = h.reckon.with_book(|b, _| {
        let c = b.customers.get_mut(&customer_a.0).unwrap();
        let old = c.name.clone();
        c.name = format!("{old} (edited in Reckon)");
        old
    });
    // 2. A Reckon invoice deleted.
    h.reckon
        .with_book(|b, _| b.invoices.shift_remove(&deleted_rid.0));
    // 3. A line amount changed in Reckon.
    let (old_price, new_price) = h.reckon.with_book(|b, _| {
        let inv = b.invoices.get_mut(&edited_rid.0).unwrap();
        match &mut inv.lines[0].detail {
            LineDetail::Item { price, .. } => {
                let old = price.unwrap_or_default();
                let new = old + Decimal::new(500, 2);
                *price = Some(new);
                (old, new)
            }
            LineDetail::Account { amount, .. } => {
                let old = amount.unwrap_or_default();
                let new = old + Decimal::new(500, 2);
                *amount = Some(new);
                (old, new)
            }
        }
    });
    assert_ne!(old_price, new_price);
    // 4. A duplicate customer created by hand (same email, another name).
    let duplicate = h.reckon.with_book(|b, _| {
        let mut copy = b.customers[&customer_b.0].clone();
        copy.id = uuid::Uuid::new_v4();
        copy.name = format!("{} DUPLICATE", copy.name);
        let id = copy.id;
        b.customers.insert(id, copy);
        id
    });
    // 5. An invoice paid in Cliniko only, and 6. a product price changed in Cliniko, while
    //    the sync is paused (no run in between).
    h.cliniko.with(|s| {
        s.update_invoice(
            paid_inv,
            &InvoicePatch {
                status: Some(20),
                ..Default::default()
            },
        )
        .unwrap();
        s.update_product(product, &object(json!({"price": "123.45"})))
            .unwrap();
    });

    Drifts {
        patient_a,
        customer_a,
        old_name,
        patient_b,
        duplicate,
        deleted_inv,
        deleted_rid,
        edited_inv,
        paid_inv,
        product,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_drift_is_found_once_in_its_category() {
    let h = Harness::start(Options {
        patients: 30,
        ..Default::default()
    })
    .await;
    h.run().await;
    assert!(run_reconcile(&h).await.is_clean());
    let Drifts {
        patient_a,
        customer_a,
        old_name,
        patient_b,
        duplicate,
        deleted_inv,
        deleted_rid,
        edited_inv,
        paid_inv,
        product,
        ..
    } = make_six_drifts(&h).await;

    let report = run_reconcile(&h).await;
    let by_category = |c| only(&report, c);

    let fields: Vec<_> = by_category(Category::FieldDrift);
    assert_eq!(fields.len(), 2, "{fields:#?}");
    let name = fields
        .iter()
        .find(|m| m.entity == EntityKind::Patient)
        .expect("the Reckon rename");
    assert_eq!(name.cliniko_id, Some(ClinikoId(patient_a)));
    assert_eq!(name.reckon_id, Some(customer_a));
    assert_eq!(name.field.as_deref(), Some("name"));
    assert_eq!(name.cliniko_value.as_deref(), Some(old_name.as_str()));
    assert_eq!(
        name.reckon_value.as_deref(),
        Some(format!("{old_name} (edited in Reckon)").as_str())
    );
    let price = fields
        .iter()
        .find(|m| m.entity == EntityKind::Product)
        .expect("the Cliniko price change");
    assert_eq!(price.cliniko_id, Some(ClinikoId(product)));
    assert_eq!(price.field.as_deref(), Some("price"));
    assert_eq!(price.cliniko_value.as_deref(), Some("$123.45"));

    let gone = by_category(Category::LinkedRecordGone);
    assert_eq!(gone.len(), 1, "{gone:#?}");
    assert_eq!(gone[0].cliniko_id, Some(ClinikoId(deleted_inv)));
    assert_eq!(gone[0].reckon_id, Some(deleted_rid));

    let amounts = by_category(Category::AmountDrift);
    assert_eq!(amounts.len(), 1, "{amounts:#?}");
    assert_eq!(amounts[0].cliniko_id, Some(ClinikoId(edited_inv)));
    let field = amounts[0].field.as_deref().unwrap_or_default();
    assert!(field.contains("line 1 amount"), "{field}");
    assert!(field.contains("total"), "{field}");
    let theirs = amounts[0].reckon_value.as_deref().unwrap_or_default();
    let ours = amounts[0].cliniko_value.as_deref().unwrap_or_default();
    assert!(theirs.contains("line 1 amount $"), "{theirs}");
    assert_ne!(ours, theirs);

    let duplicates = by_category(Category::DuplicateInReckon);
    assert_eq!(duplicates.len(), 1, "{duplicates:#?}");
    assert_eq!(duplicates[0].cliniko_id, Some(ClinikoId(patient_b)));
    assert_eq!(duplicates[0].reckon_id, Some(ReckonId(duplicate)));

    let status = by_category(Category::StatusDrift);
    assert_eq!(status.len(), 1, "{status:#?}");
    assert_eq!(status[0].cliniko_id, Some(ClinikoId(paid_inv)));
    assert_eq!(status[0].field.as_deref(), Some("paid"));
    assert_eq!(status[0].cliniko_value.as_deref(), Some("Paid"));

    assert_eq!(report.count(Category::MissingInReckon), 0);
    assert_eq!(report.count(Category::LinkSuggestion), 0);
    assert_eq!(report.count(Category::SyncFailure), 0);
    assert_eq!(report.total(), 6, "six drifts, six findings");

    // The three renderings carry the same findings.
    let json: Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["summary"]["field_drift"], 2);
    assert_eq!(json["mismatches"].as_array().unwrap().len(), 6);
    let csv = report.to_csv(Category::FieldDrift).unwrap();
    assert_eq!(csv.lines().count(), 3, "header and two rows: {csv}");
    assert!(csv.contains("(edited in Reckon)"));
    let html = report.to_html(chrono_tz::Australia::Sydney).unwrap();
    assert!(html.contains("(edited in Reckon)"));
    assert!(html.contains("$123.45"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsynced_records_are_missing_or_suggested_links() {
    let h = Harness::start(Options {
        patients: 12,
        existing_fraction: 0.5,
        ..Default::default()
    })
    .await;
    // Nothing synced yet: every patient is missing, those with a same-email Reckon customer
    // come out as link suggestions instead.
    let report = run_reconcile(&h).await;
    let missing = report.count(Category::MissingInReckon);
    let suggested = report.count(Category::LinkSuggestion);
    assert!(suggested > 0, "{:#?}", report.mismatches);
    let patients = report
        .mismatches
        .iter()
        .filter(|m| {
            m.entity == EntityKind::Patient
                && matches!(
                    m.category,
                    Category::MissingInReckon | Category::LinkSuggestion
                )
        })
        .count();
    assert_eq!(patients, h.seed.patients, "each patient reported once");
    assert!(missing > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_puts_right_what_the_sync_can_and_leaves_the_rest_to_a_person() {
    let h = Harness::start(Options {
        patients: 30,
        ..Default::default()
    })
    .await;
    h.run().await;
    let d = make_six_drifts(&h).await;
    let report = run_reconcile(&h).await;
    assert_eq!(report.total(), 6, "{:#?}", report.mismatches);

    let summary = run_repair(&h, &report).await;
    assert_eq!(
        summary,
        RepairSummary {
            queued_to_sync: 0,
            queued_to_rewrite: 4,
            queued_to_recreate: 1,
            gone_from_cliniko: 0,
            left_for_a_person: 1,
        },
        "rename, line amount, payment and price rewritten; the deleted invoice re-created; the duplicate left"
    );
    let customers_before = h.reckon.with_book(|b, _| b.customers.len());

    // Only what repair queued: no poll (it alone would pick up the two Cliniko-side edits).
    let drained = drain_queue(&h).await;
    assert_eq!(drained.failed(), 0, "{drained:#?}");

    let after = run_reconcile(&h).await;
    assert_eq!(after.total(), 1, "{:#?}", after.mismatches);
    assert_eq!(after.count(Category::DuplicateInReckon), 1);
    // Reckon has the Cliniko name back, a new twin for the deleted invoice, and still every
    // customer (the duplicate is for a person to merge; nothing is deleted).
    let name = h
        .reckon
        .with_book(|b, _| b.customers[&d.customer_a.0].name.clone());
    assert_eq!(name, d.old_name);
    let recreated = h
        .reckon_id(EntityKind::Invoice, d.deleted_inv)
        .await
        .expect("re-created and linked");
    assert_ne!(recreated, d.deleted_rid);
    assert!(
        h.reckon
            .with_book(|b, _| b.invoices.contains_key(&recreated.0))
    );
    assert_eq!(
        h.reckon.with_book(|b, _| b.customers.len()),
        customers_before
    );
    assert!(
        h.reckon
            .with_book(|b, _| b.customers.contains_key(&d.duplicate))
    );
    // Repairing a clean report queues nothing.
    let clean = run_reconcile(&h).await;
    let nothing = run_repair(&h, &clean).await;
    assert_eq!(nothing.queued(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_accepts_a_suggestion_and_refuses_what_would_double_link() {
    let h = Harness::start(Options {
        patients: 12,
        existing_fraction: 0.5,
        ..Default::default()
    })
    .await;
    let report = run_reconcile(&h).await;
    let suggestion = report
        .in_category(Category::LinkSuggestion)
        .find(|m| m.entity == EntityKind::Patient)
        .expect("a patient with a same-email Reckon customer")
        .clone();
    let (patient, customer) = (
        suggestion.cliniko_id.unwrap(),
        suggestion.reckon_id.unwrap(),
    );
    assert!(
        suggestion
            .action
            .contains(&format!("cliniko-reckon link patient {patient} {customer}")),
        "{}",
        suggestion.action
    );
    let now = chrono::Utc::now();
    let request = |kind, cliniko_id, reckon_id| LinkRequest {
        kind,
        cliniko_id,
        reckon_id,
    };
    let (source, book, state) = (&h.syncer.source, &h.syncer.sink, h.state());

    let unknown = ReckonId(uuid::Uuid::new_v4());
    let e = link(
        source,
        book,
        state,
        state,
        request(EntityKind::Patient, patient, unknown),
        now,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, LinkError::NoSuchReckonRecord { .. }), "{e}");
    let e = link(
        source,
        book,
        state,
        state,
        request(EntityKind::Patient, ClinikoId(999_999_999), customer),
        now,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, LinkError::NoSuchClinikoRecord { .. }), "{e}");

    link(
        source,
        book,
        state,
        state,
        request(EntityKind::Patient, patient, customer),
        now,
    )
    .await
    .expect("link");
    assert_eq!(
        h.reckon_id(EntityKind::Patient, patient.0).await,
        Some(customer)
    );
    let other = report
        .in_category(Category::MissingInReckon)
        .chain(report.in_category(Category::LinkSuggestion))
        .filter_map(|m| (m.entity == EntityKind::Patient).then_some(m.cliniko_id?))
        .find(|id| *id != patient)
        .expect("another patient");
    let e = link(
        source,
        book,
        state,
        state,
        request(EntityKind::Patient, other, customer),
        now,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, LinkError::TakenByAnother { .. }), "{e}");

    // The queued patient updates the linked customer rather than creating another.
    let customers = h.reckon.with_book(|b, _| b.customers.len());
    let drained = drain_queue(&h).await;
    assert_eq!(drained.failed(), 0);
    assert_eq!(h.reckon.with_book(|b, _| b.customers.len()), customers);
    let after = run_reconcile(&h).await;
    assert!(
        !after
            .mismatches
            .iter()
            .any(|m| m.entity == EntityKind::Patient && m.cliniko_id == Some(patient)),
        "{:#?}",
        after.mismatches
    );
}
