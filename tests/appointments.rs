//! Appointment invoicing (`[invoicing] source`) against both simulators: attended
//! appointments invoiced once as `APPT-<id>` at the simulator's own prices, a cancellation
//! withdrawn by a credit note, a Cliniko invoice for an invoiced appointment taking its
//! place under `both` (never two invoices), an unmapped tax parked with its reason while the
//! rest flow on, and the reconciliation clean after each.

use cliniko_reckon::domain::EntityKind;
use cliniko_reckon::mapping::MappingConfig;
use cliniko_reckon::mapping::appointment::InvoicingSource;
use cliniko_reckon::ports::StateStore;
use cliniko_reckon::reconcile::{ReconcileReport, reconcile};
use cliniko_reckon_e2e::{Harness, Options};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use simulators::cliniko::invoice_math::{Discount, line_totals};
use simulators::cliniko::model::IndividualAppointment;
use simulators::cliniko::store::{AppointmentMark, InvoiceSpec, ItemSpec};

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

async fn clinic(source: InvoicingSource) -> Harness {
    let mut h = Harness::start(Options {
        patients: 20,
        seed: 5,
        ..Default::default()
    })
    .await;
    h.syncer.mapping.invoicing.appointments.source = source;
    h
}

async fn run_reconcile(h: &Harness, mapping: &MappingConfig) -> ReconcileReport {
    reconcile(
        &h.syncer.source,
        &h.syncer.sink,
        h.state(),
        mapping,
        "test-clinic",
        chrono::Utc::now(),
    )
    .await
    .expect("reconcile")
}

fn complete(a: &IndividualAppointment) -> bool {
    a.patient_arrived == Some(true)
        && a.did_not_arrive != Some(true)
        && a.cancelled_at.is_none()
        && a.archived_at.is_none()
        && a.deleted_at.is_none()
}

/// What the simulator's own arithmetic charges for an appointment: its type's billable
/// items at their prices and tax, tax exclusive.
fn expected_total(h: &Harness, a: &IndividualAppointment) -> Decimal {
    h.cliniko.with(|s| {
        s.tables
            .appointment_type_billable_items
            .values()
            .filter(|l| l.appointment_type_id == a.appointment_type_id)
            .map(|l| {
                let item = l
                    .billable_item_id
                    .and_then(|id| s.tables.billable_items.get(&id))
                    .expect("the line's billable item");
                let rate = s.tax_rate(item.tax_id).map(|t| t.rate).unwrap_or_default();
                line_totals(item.price, l.quantity, Discount::None, rate, false).total_including_tax
            })
            .sum()
    })
}

/// Reckon invoices by reference: (reference, total, balance, customer).
fn reckon_invoices(h: &Harness) -> Vec<(String, Decimal, Decimal, Option<uuid::Uuid>)> {
    h.reckon.with_book(|b, _| {
        b.invoices
            .values()
            .map(|i| {
                (
                    i.reference.clone().unwrap_or_default(),
                    b.invoice_totals(i).total,
                    b.invoice_balance(i),
                    Some(i.customer),
                )
            })
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attended_appointments_are_invoiced_once_and_a_cancelled_one_is_withdrawn() {
    let h = clinic(InvoicingSource::CompletedAppointments).await;
    let (_, drained) = h.run().await;
    assert_eq!(drained.failed(), 0, "{drained:?}");

    let appointments: Vec<IndividualAppointment> = h
        .cliniko
        .with(|s| s.tables.appointments.values().cloned().collect());
    let attended: Vec<&IndividualAppointment> =
        appointments.iter().filter(|a| complete(a)).collect();
    assert!(attended.len() >= 10, "the seed has attended appointments");
    assert!(
        attended.len() < appointments.len(),
        "and others (cancelled, did not arrive, booked ahead)"
    );
    let invoices = reckon_invoices(&h);
    assert_eq!(
        invoices.len(),
        attended.len(),
        "one Reckon invoice per attended appointment, none for Cliniko's own invoices"
    );
    for a in &attended {
        let reference = format!("APPT-{}", a.id);
        let found: Vec<_> = invoices.iter().filter(|i| i.0 == reference).collect();
        assert_eq!(found.len(), 1, "{reference}");
        assert_eq!(found[0].1, expected_total(&h, a), "{reference}'s total");
        let customer = h
            .reckon_id(EntityKind::Patient, a.patient_id.expect("patient"))
            .await
            .expect("its patient synced");
        assert_eq!(found[0].3, Some(customer.0), "{reference}'s customer");
    }
    let mapping = h.syncer.mapping.clone();
    let report = run_reconcile(&h, &mapping).await;
    assert!(report.is_clean(), "{:#?}", report.mismatches);
    assert_eq!(
        report.scanned.cliniko_appointments as usize,
        appointments.len()
    );

    // Nothing changed: nothing written.
    let writes = h.reckon_writes();
    h.run().await;
    assert_eq!(h.reckon_writes(), writes, "an idle run writes nothing");

    // Cancelled after it was invoiced (Cliniko's API): the invoice is credited in full.
    let cancelled = attended[0];
    h.next_second().await;
    h.cliniko
        .with(|s| {
            s.cancel_appointment(
                cancelled.id,
                &object(json!({"cancellation_reason": 50, "cancellation_note": "Unwell"})),
            )
        })
        .expect("cancel");
    let (_, drained) = h.run().await;
    assert_eq!(drained.failed(), 0, "{drained:?}");
    let reference = format!("APPT-{}", cancelled.id);
    let (balance, credits) = h.reckon.with_book(|b, _| {
        let balance = b
            .invoices
            .values()
            .find(|i| i.reference.as_deref() == Some(reference.as_str()))
            .map(|i| b.invoice_balance(i));
        let credits: Vec<Decimal> = b
            .credit_notes
            .values()
            .filter(|c| c.reference.as_deref() == Some(format!("Withdrawn {reference}").as_str()))
            .map(|c| b.credit_note_totals(c).total)
            .collect();
        (balance, credits)
    });
    assert_eq!(balance, Some(Decimal::ZERO), "credited in full");
    assert_eq!(credits, vec![expected_total(&h, cancelled)]);
    assert_eq!(
        reckon_invoices(&h).len(),
        attended.len(),
        "no invoice added"
    );
    let report = run_reconcile(&h, &mapping).await;
    assert!(report.is_clean(), "{:#?}", report.mismatches);

    // Seen again: credited once only.
    h.run().await;
    let credits = h.reckon.with_book(|b, _| b.credit_notes.len());
    assert_eq!(credits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_both_a_cliniko_invoice_for_an_invoiced_appointment_replaces_it_never_doubles() {
    let h = clinic(InvoicingSource::Both).await;
    h.run().await;
    // The seed's attended appointments all have Cliniko invoices: those win.
    let before = reckon_invoices(&h);
    assert!(
        before.iter().all(|i| !i.0.starts_with("APPT-")),
        "appointments Cliniko invoiced are not billed again: {before:?}"
    );

    // A new appointment, attended, not yet invoiced in Cliniko.
    let (patient, practitioner, business, appointment_type, item) = h.cliniko.with(|s| {
        let line = s
            .tables
            .appointment_type_billable_items
            .values()
            .next()
            .cloned()
            .expect("a type line");
        (
            *s.tables.patients.keys().next().expect("patient"),
            *s.tables.practitioners.keys().next().expect("practitioner"),
            *s.tables.businesses.keys().next().expect("business"),
            line.appointment_type_id.expect("type"),
            line.billable_item_id.expect("item"),
        )
    });
    h.next_second().await;
    let starts = chrono::Utc::now() - chrono::TimeDelta::hours(2);
    let appointment = h
        .cliniko
        .with(|s| {
            s.create_appointment(&object(json!({
                "starts_at": starts.to_rfc3339(),
                "patient_id": patient.to_string(),
                "practitioner_id": practitioner.to_string(),
                "business_id": business.to_string(),
                "appointment_type_id": appointment_type.to_string(),
            })))
        })
        .expect("booked");
    h.cliniko
        .with(|s| {
            s.mark_appointment(
                appointment.id,
                &AppointmentMark {
                    patient_arrived: Some(true),
                    ..Default::default()
                },
            )
        })
        .expect("arrived");
    let (_, drained) = h.run().await;
    assert_eq!(drained.failed(), 0, "{drained:?}");
    let reference = format!("APPT-{}", appointment.id);
    let billed = h
        .reckon_id(EntityKind::Appointment, appointment.id)
        .await
        .expect("the appointment is invoiced");
    assert_eq!(reckon_invoices(&h).len(), before.len() + 1);
    assert!(reckon_invoices(&h).iter().any(|i| i.0 == reference));

    // The practitioner then raises Cliniko's own invoice for it.
    h.next_second().await;
    let invoice = h
        .cliniko
        .with(|s| {
            s.create_invoice(&InvoiceSpec {
                patient_id: Some(patient),
                business_id: Some(business),
                practitioner_id: Some(practitioner),
                appointment_id: Some(appointment.id),
                items: vec![ItemSpec {
                    billable_item_id: Some(item),
                    quantity: Some(Decimal::ONE),
                    ..Default::default()
                }],
                ..Default::default()
            })
        })
        .expect("invoiced in Cliniko");
    let (_, drained) = h.run().await;
    assert_eq!(drained.failed(), 0, "{drained:?}");
    let after = reckon_invoices(&h);
    assert_eq!(after.len(), before.len() + 1, "still one invoice for it");
    assert!(
        after.iter().all(|i| i.0 != reference),
        "the appointment's invoice became Cliniko's: {after:?}"
    );
    assert_eq!(
        h.reckon_id(EntityKind::Invoice, invoice.id).await,
        Some(billed),
        "the same Reckon invoice, now linked to Cliniko's"
    );
    let now = h.reckon.with_book(|b, _| {
        b.invoices
            .get(&billed.0)
            .map(|i| (i.reference.clone(), b.invoice_totals(i).total))
    });
    assert_eq!(
        now,
        Some((
            Some(invoice.number.to_string()),
            invoice.total_amount.expect("total")
        ))
    );
    let mapping = h.syncer.mapping.clone();
    let report = run_reconcile(&h, &mapping).await;
    assert!(report.is_clean(), "{:#?}", report.mismatches);
    h.assert_in_step().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appointment_whose_tax_has_no_reckon_code_is_parked_and_the_rest_are_invoiced() {
    let mut h = clinic(InvoicingSource::CompletedAppointments).await;
    // GST has no Reckon code: GST-free types still invoice, GST ones wait with the reason.
    h.syncer.mapping.tax_codes.clear();
    let (_, drained) = h.run().await;
    assert!(drained.failed() > 0, "{drained:?}");
    let failures = h.state().failures().await.expect("failures");
    let parked: Vec<_> = failures
        .iter()
        .filter(|f| f.kind == EntityKind::Appointment)
        .collect();
    assert!(!parked.is_empty(), "{failures:?}");
    for f in &parked {
        assert!(
            f.error.contains(&format!("appointment {}", f.cliniko_id))
                && f.error.contains("unknown tax")
                && f.error.contains("GST"),
            "{}",
            f.error
        );
        assert!(!f.retryable);
        assert_eq!(
            h.state()
                .cross_ref(EntityKind::Appointment, f.cliniko_id)
                .await
                .expect("state"),
            None,
            "nothing written for it"
        );
    }
    let invoiced = reckon_invoices(&h).len();
    assert!(
        invoiced > 0,
        "GST-free appointments are invoiced regardless"
    );
    let mapping = h.syncer.mapping.clone();
    let report = run_reconcile(&h, &mapping).await;
    assert_eq!(
        report
            .in_category(cliniko_reckon::reconcile::Category::SyncFailure)
            .count(),
        failures.len(),
        "each waiting failure is in the report"
    );
    assert_eq!(
        report
            .in_category(cliniko_reckon::reconcile::Category::MissingInReckon)
            .count(),
        0,
        "a parked appointment is a failure, not a missing invoice"
    );
}
