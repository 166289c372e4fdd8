//! The whole sync against both simulators: backfill, incremental edits, idempotent re-runs,
//! restarts from the state file, and same-second timestamps across page boundaries.

use cliniko_reckon::domain::EntityKind;
use cliniko_reckon_e2e::{Harness, Options};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use simulators::cliniko::store::{InvoicePatch, InvoiceSpec, ItemSpec};

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_matches_cliniko_record_by_record() {
    let h = Harness::start(Options {
        patients: 60,
        existing_fraction: 0.15,
        ..Default::default()
    })
    .await;
    let existing = h.reckon.with_book(|b, _| b.customers.len());
    assert!(existing > 0, "the book starts with customers to link");
    let (polls, drained) = h.run().await;
    assert_eq!(drained.failed(), 0, "{drained:?}");
    let compared = h.assert_in_step().await;
    assert_eq!(compared.patients, h.seed.patients);
    assert!(compared.invoices > 60, "{compared:?}");
    assert!(compared.paid_invoices > 0, "{compared:?}");
    assert!(
        compared.closed_invoices > 0 && compared.credit_notes > 0,
        "the clinic has Closed invoices and credit notes: {compared:?}"
    );

    // Existing customers were linked by email, not duplicated.
    let patients = &drained.per_kind[&EntityKind::Patient];
    assert!(patients.linked > 0, "{patients:?}");
    let customers = h.reckon.with_book(|b, _| b.customers.len());
    assert_eq!(
        customers as u64,
        h.seed.patients as u64 + existing as u64 - patients.linked,
        "every Reckon customer is a patient's, plus pre-existing ones nobody matched"
    );
    let enqueued: usize = polls.iter().map(|p| p.enqueued).sum();
    assert!(enqueued >= h.seed.patients + h.seed.invoices);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_makes_zero_reckon_writes() {
    let h = Harness::start(Options::default()).await;
    h.run().await;
    let writes = h.reckon_writes();
    let cliniko_before = h.cliniko.traffic.total();
    let (polls, drained) = h.run().await;
    assert_eq!(
        h.reckon_writes(),
        writes,
        "an unchanged clinic writes nothing"
    );
    assert_eq!(
        polls.iter().map(|p| p.enqueued).sum::<usize>(),
        0,
        "{polls:?}"
    );
    assert_eq!(drained.failed(), 0);
    // An idle cycle costs one Cliniko request per entity type, plus one for the items and
    // one for the reversing credit notes of invoices that changed within the overlap window
    // (re-read, then dropped as applied).
    let idle = h.cliniko.traffic.total() - cliniko_before;
    assert!(idle <= 6, "{idle} Cliniko requests on an idle cycle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_edits_land() {
    let h = Harness::start(Options::default()).await;
    h.run().await;
    h.next_second().await;

    let (new_patient, changed, archived, product, invoice, paid) = h.cliniko.with(|s| {
        let ids: Vec<u64> = s
            .tables
            .patients
            .values()
            .filter(|p| p.archived_at.is_none() && p.merged_at.is_none())
            .map(|p| p.id)
            .collect();
        let new_patient = s
            .create_patient(&object(json!({
                "first_name": "Ngaio",
                "last_name": "O'Connell-Tūhoe",
                "email": "ngaio@example.com",
            })))
            .unwrap();
        let changed = ids[0];
        s.update_patient(
            changed,
            &object(json!({"email": "changed@example.com", "invoice_email": null})),
        )
        .unwrap();
        let archived = ids[1];
        s.set_patient_archived(archived, true).unwrap();
        let product = s
            .create_product(&object(json!({
                "name": "Theraband (red)",
                "price": "18.50",
                "tax_id": h.seed.gst_tax_id.to_string(),
            })))
            .unwrap();
        let invoice = s
            .create_invoice(&InvoiceSpec {
                patient_id: Some(new_patient.id),
                business_id: Some(h.seed.business_id),
                calculation_method: Some(3),
                items: vec![
                    ItemSpec {
                        product_id: Some(product.id),
                        quantity: Some(Decimal::new(3, 0)),
                        discount_amount: Some(Decimal::new(250, 2)),
                        ..Default::default()
                    },
                    ItemSpec {
                        billable_item_id: h.seed.billable_item_ids.first().copied(),
                        quantity: Some(Decimal::ONE),
                        discount_percentage: Some(Decimal::new(15, 0)),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            })
            .unwrap();
        let open = s
            .tables
            .invoices
            .values()
            .find(|i| i.status == 10 && i.archived_at.is_none() && i.deleted_at.is_none())
            .map(|i| i.id)
            .unwrap();
        s.update_invoice(
            open,
            &InvoicePatch {
                status: Some(20),
                ..Default::default()
            },
        )
        .unwrap();
        (
            new_patient.id,
            changed,
            archived,
            product.id,
            invoice.id,
            open,
        )
    });

    let (_, drained) = h.run().await;
    assert_eq!(drained.failed(), 0, "{drained:?}");
    let p = &drained.per_kind[&EntityKind::Patient];
    assert_eq!((p.created, p.updated), (1, 2), "{p:?}");
    let i = &drained.per_kind[&EntityKind::Invoice];
    assert_eq!((i.created, i.updated), (1, 1), "{i:?}");
    assert_eq!(drained.per_kind[&EntityKind::Product].created, 1);
    h.assert_in_step().await;

    for (kind, id) in [
        (EntityKind::Patient, new_patient),
        (EntityKind::Patient, changed),
        (EntityKind::Patient, archived),
        (EntityKind::Product, product),
        (EntityKind::Invoice, invoice),
        (EntityKind::Invoice, paid),
    ] {
        assert!(h.reckon_id(kind, id).await.is_some(), "{kind} {id}");
    }
    let rid = h.reckon_id(EntityKind::Patient, new_patient).await.unwrap();
    let name = h.reckon.with_book(|b, _| b.customers[&rid.0].name.clone());
    assert_eq!(name, "Ngaio O'Connell-Tūhoe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_at_the_watermark() {
    let mut h = Harness::start(Options::default()).await;
    h.run().await;
    let posts = h.reckon.traffic.count("POST", "customers");
    h.restart().await;
    h.next_second().await;
    h.cliniko.with(|s| {
        s.create_patient(&object(
            json!({"first_name": "Resumed", "last_name": "Patient"}),
        ))
        .unwrap()
    });
    let (polls, drained) = h.run().await;
    let patients = polls
        .iter()
        .find(|p| p.kind == EntityKind::Patient)
        .unwrap();
    assert_eq!(
        patients.enqueued, 1,
        "only the new patient is queued: {patients:?}"
    );
    assert_eq!(drained.per_kind[&EntityKind::Patient].created, 1);
    assert_eq!(h.reckon.traffic.count("POST", "customers"), posts + 1);
    h.assert_in_step().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_updated_at_across_page_boundaries_is_not_skipped() {
    let h = Harness::start(Options {
        patients: 260,
        ..Default::default()
    })
    .await;
    // Every patient changed in the same second: pages of 100 all share one timestamp.
    let stamp = h.cliniko.with(|s| {
        let now = s.now();
        let stamp = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap();
        for p in s.tables.patients.values_mut() {
            p.updated_at = stamp;
        }
        stamp
    });
    let (polls, drained) = h.run().await;
    let patients = polls
        .iter()
        .find(|p| p.kind == EntityKind::Patient)
        .unwrap();
    assert_eq!(patients.fetched, h.seed.patients);
    assert_eq!(patients.watermark, Some(stamp));
    assert_eq!(drained.failed(), 0);
    assert_eq!(h.assert_in_step().await.patients, h.seed.patients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_in_cliniko_rename_the_reckon_records() {
    let h = Harness::start(Options {
        patients: 12,
        ..Default::default()
    })
    .await;
    h.run().await;
    h.next_second().await;
    let (patient, product) = h.cliniko.with(|s| {
        let patient = *s.tables.patients.keys().next().unwrap();
        let product = *s.tables.products.keys().next().unwrap();
        s.update_patient(
            patient,
            &object(json!({"first_name": "Aroha", "last_name": "Married-Name"})),
        )
        .unwrap();
        s.update_product(product, &object(json!({"name": "Renamed product"})))
            .unwrap();
        (patient, product)
    });
    let (_, drained) = h.run().await;
    assert_eq!(drained.failed(), 0, "{drained:?}");
    let customer = h.reckon_id(EntityKind::Patient, patient).await.unwrap();
    let item = h.reckon_id(EntityKind::Product, product).await.unwrap();
    let (customer_name, item_name) = h.reckon.with_book(|b, _| {
        (
            b.customers[&customer.0].name.clone(),
            b.items[&item.0].name.clone(),
        )
    });
    assert_eq!(customer_name, "Aroha Married-Name");
    assert_eq!(item_name, "Renamed product");
    // The new names are recorded: the next run writes nothing.
    let writes = h.reckon_writes();
    h.run().await;
    assert_eq!(h.reckon_writes(), writes);
}
