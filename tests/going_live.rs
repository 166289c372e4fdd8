//! Switching the sync on beside a book that already exists: a new, lost or emptied state
//! file adopts what Reckon holds instead of duplicating it; a state file that is not ours is
//! refused; one writer per state; one bad Cliniko record never stops the rest; a record
//! stamped in the future never carries the watermark there.

use chrono::{Duration, Utc};
use cliniko_reckon::adapters::sqlite::SqliteState;
use cliniko_reckon::domain::{ClinikoId, EntityKind};
use cliniko_reckon::pipeline::local::Requeue;
use cliniko_reckon::ports::{ClinikoSource, StateError, StateStore};
use cliniko_reckon_e2e::{Harness, Options};
use serde_json::{Map, Value, json};
use simulators::cliniko::model::{Invoice, Patient};

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Reckon records by type: customers, items, invoices, receipts.
fn book(h: &Harness) -> [usize; 4] {
    h.reckon.with_book(|b, _| {
        [
            b.customers.len(),
            b.items.len(),
            b.invoices.len(),
            b.receipts.len(),
        ]
    })
}

async fn links(
    state: &SqliteState,
) -> Vec<(
    EntityKind,
    Vec<(ClinikoId, cliniko_reckon::domain::ReckonId)>,
)> {
    let mut out = Vec::new();
    for kind in EntityKind::ALL {
        let mut l = state.links(kind).await.expect("links");
        l.sort();
        out.push((kind, l));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_state_file_against_a_filled_book_creates_nothing_twice() {
    let mut h = Harness::start(Options {
        patients: 40,
        existing_fraction: 0.15,
        ..Default::default()
    })
    .await;
    h.run().await;
    let filled = book(&h);
    let linked = links(h.state()).await;
    assert!(filled[2] > 40 && filled[3] > 0, "{filled:?}");

    // The state file is lost: the next run starts from a new one.
    h.use_state_file("second.sqlite").await;
    let (_, drained) = h.run().await;
    assert_eq!(book(&h), filled, "no Reckon record was created twice");
    assert_eq!(drained.failed(), 0, "{drained:?}");
    let created: u64 = drained.per_kind.values().map(|c| c.created).sum();
    assert_eq!(created, 0, "{drained:?}");
    let tried: u64 = drained
        .per_kind
        .values()
        .map(|c| c.created + c.updated + c.linked + c.unchanged + c.skipped + c.failed)
        .sum();
    eprintln!(
        "figures: book before {filled:?} (customers, items, invoices, receipts), after a new state file {:?}; records tried {tried}, created {created}",
        book(&h)
    );
    assert_eq!(
        links(h.state()).await,
        linked,
        "every record re-linked to the same Reckon record"
    );
    h.assert_in_step().await;

    // And once more: an idle run on the adopted state writes nothing.
    let writes = h.reckon_writes();
    h.run().await;
    assert_eq!(h.reckon_writes(), writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_files_that_are_not_ours_are_refused_not_started_afresh() {
    let dir = tempfile::tempdir().expect("dir");
    let empty = dir.path().join("empty.sqlite");
    std::fs::write(&empty, b"").expect("zero bytes");
    let e = SqliteState::open(&empty).expect_err("a zero-byte file is refused");
    assert!(matches!(e, StateError::Unusable { .. }), "{e}");
    assert!(e.to_string().contains("is empty (0 bytes)"), "{e}");
    assert_eq!(
        std::fs::metadata(&empty).expect("kept").len(),
        0,
        "left as it was"
    );

    let text = dir.path().join("notes.sqlite");
    std::fs::write(
        &text,
        "not a database at all, just some notes\n".repeat(200),
    )
    .expect("text");
    let e = SqliteState::open(&text).expect_err("a text file is refused");
    assert!(e.to_string().contains("is not a SQLite database"), "{e}");

    let other = dir.path().join("other.sqlite");
    {
        let c = rusqlite_like(&other);
        c.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY);")
            .expect("another program's table");
    }
    let e = SqliteState::open(&other).expect_err("another program's database is refused");
    assert!(
        e.to_string().contains("not a cliniko-reckon state file"),
        "{e}"
    );

    let newer = dir.path().join("newer.sqlite");
    SqliteState::open(&newer).expect("a new state file");
    {
        let c = rusqlite_like(&newer);
        c.pragma_update(None, "user_version", 99).expect("bump");
    }
    let e = SqliteState::open(&newer).expect_err("a newer schema is refused");
    assert!(
        e.to_string()
            .contains("newer cliniko-reckon (state schema 99"),
        "{e}"
    );
}

fn rusqlite_like(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("sqlite")
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_file_and_its_wal_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::start(Options {
        patients: 5,
        ..Default::default()
    })
    .await;
    h.run().await;
    let path = h.state_path();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let mode = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{p:?}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{p:?} is {:o}", mode & 0o777);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state.sqlite");
    let first = SqliteState::open_writer(&path, "sync --watch").expect("first writer");
    let e = SqliteState::open_writer(&path, "sync --once").expect_err("second writer");
    let text = e.to_string();
    assert!(text.contains("in use by `sync --watch`"), "{text}");
    assert!(
        text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    assert!(text.contains("started at"), "{text}");
    // A reader (status) still opens it.
    SqliteState::open(&path).expect("a reader is not refused");
    drop(first);
    SqliteState::open_writer(&path, "sync --once").expect("free once the first is gone");
}

/// One patient without `first_name`, one invoice with an undocumented status and one with
/// an absurd price, on the same pages as everything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_record_never_stops_the_rest() {
    let h = Harness::start(Options {
        patients: 30,
        ..Default::default()
    })
    .await;
    let (no_name, odd_status, absurd) = h.cliniko.with(|s| {
        let patient = s
            .tables
            .patients
            .values()
            .next()
            .map(|p| p.id)
            .expect("a patient");
        let mut invoices = s
            .tables
            .invoices
            .values()
            .filter(|i| {
                i.patient_id != Some(patient) && i.deleted_at.is_none() && i.archived_at.is_none()
            })
            .map(|i| i.id);
        let odd = invoices.next().expect("an invoice");
        let absurd = invoices.next().expect("another invoice");
        s.override_wire::<Patient>(patient, object(json!({"first_name": null})));
        s.override_wire::<Invoice>(odd, object(json!({"status": 70})));
        s.override_wire::<Invoice>(
            absurd,
            object(json!({"total_amount": "99999999999999999999999999.00"})),
        );
        (patient, odd, absurd)
    });
    let live = |i: &Invoice| i.deleted_at.is_none() && i.archived_at.is_none();
    // The unreadable patient's own invoices cannot find their customer: parked too.
    let dependents: Vec<u64> = h.cliniko.with(|s| {
        s.tables
            .invoices
            .values()
            .filter(|i| live(i) && i.patient_id == Some(no_name))
            .map(|i| i.id)
            .collect()
    });
    let outcome = h.try_run().await.expect("the run goes on");
    assert!(
        outcome.polls.errors.is_empty(),
        "{:?}",
        outcome.polls.errors
    );
    let parked: Vec<_> = outcome
        .polls
        .reports
        .iter()
        .flat_map(|r| &r.parked)
        .collect();
    assert_eq!(parked.len(), 3, "{parked:?}");
    assert_eq!(
        outcome.drained.failed(),
        dependents.len() as u64,
        "{:?}",
        outcome.drained
    );

    let failures = h.state().failures().await.expect("failures");
    let named = |kind: EntityKind, id: u64, field: &str| {
        let f = failures
            .iter()
            .find(|f| f.kind == kind && f.cliniko_id == ClinikoId(id))
            .unwrap_or_else(|| panic!("{kind} {id} is not parked: {failures:?}"));
        assert!(f.error.contains(field), "{kind} {id}: {}", f.error);
        assert!(!f.retryable);
    };
    named(EntityKind::Patient, no_name, "first_name");
    named(EntityKind::Invoice, odd_status, "status");
    named(EntityKind::Invoice, absurd, "total_amount");
    for id in &dependents {
        named(EntityKind::Invoice, *id, "first_name");
    }
    assert_eq!(failures.len(), 3 + dependents.len(), "{failures:?}");
    eprintln!(
        "figures: {} records read, 3 unreadable parked by the poll, {} dependents parked, {} invoices in Reckon",
        outcome
            .polls
            .reports
            .iter()
            .map(|r| r.fetched)
            .sum::<usize>(),
        dependents.len(),
        h.reckon.with_book(|b, _| b.invoices.len())
    );

    // Everything else is in Reckon.
    let invoices_in_reckon = h.reckon.with_book(|b, _| {
        // Cliniko's credit notes are Reckon credit notes; write-offs are the sync's own.
        let credits = b
            .credit_notes
            .values()
            .filter(|c| {
                !c.reference
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with("Write-off")
            })
            .count();
        b.invoices.len() + credits
    });
    let syncable = h
        .cliniko
        .with(|s| s.tables.invoices.values().filter(|i| live(i)).count());
    assert_eq!(invoices_in_reckon, syncable - 2 - dependents.len());
    // Appointments are read only by clinics that invoice them.
    for kind in cliniko_reckon::mapping::appointment::InvoicingSource::default().kinds() {
        assert!(
            h.state().watermark(kind).await.expect("wm").is_some(),
            "{kind}"
        );
    }

    // Fixed in Cliniko: the next change syncs it and clears its failure.
    h.next_second().await;
    h.cliniko.with(|s| {
        s.wire_overrides.clear();
        s.update_patient(no_name, &object(json!({"first_name": "Fixed"})))
            .expect("edit");
    });
    h.run().await;
    let left = h.state().failures().await.expect("failures");
    assert!(
        !left.iter().any(|f| f.cliniko_id == ClinikoId(no_name)),
        "{left:?}"
    );
    assert!(h.reckon_id(EntityKind::Patient, no_name).await.is_some());
    // The invoices did not change in Cliniko: they wait for `sync --retry-failed`.
    assert_eq!(left.len(), 2 + dependents.len(), "{left:?}");
    h.run_with(Requeue::All).await.expect("retry failed");
    assert!(h.state().failures().await.expect("failures").is_empty());
    h.assert_in_step().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_stamped_in_2099_never_moves_the_watermark_past_now() {
    let h = Harness::start(Options {
        patients: 10,
        ..Default::default()
    })
    .await;
    h.run().await;
    let (future, other) = h.cliniko.with(|s| {
        let mut ids = s.tables.patients.values().map(|p| p.id);
        (ids.next().expect("one"), ids.next().expect("two"))
    });
    h.next_second().await;
    h.cliniko.with(|s| {
        s.update_patient(future, &object(json!({"last_name": "Futura"})))
            .expect("edit");
        s.override_wire::<Patient>(
            future,
            object(json!({"updated_at": "2099-01-01T00:00:00Z"})),
        );
    });
    h.run().await;
    let watermark = h
        .state()
        .watermark(EntityKind::Patient)
        .await
        .expect("wm")
        .expect("set");
    assert!(
        watermark < Utc::now() + Duration::minutes(10),
        "{watermark}"
    );

    // Normal edits afterwards land: another patient's, and the stamped one's own.
    h.next_second().await;
    h.cliniko.with(|s| {
        s.wire_overrides.clear();
        s.update_patient(other, &object(json!({"last_name": "Later"})))
            .expect("edit");
        s.update_patient(future, &object(json!({"last_name": "Presente"})))
            .expect("edit");
    });
    h.run().await;
    let customer_name = |rid: cliniko_reckon::domain::ReckonId| {
        h.reckon
            .with_book(|b, _| b.customers.get(&rid.0).map(|c| c.name.clone()))
            .unwrap_or_default()
    };
    let other_rid = h
        .reckon_id(EntityKind::Patient, other)
        .await
        .expect("linked");
    assert!(
        customer_name(other_rid).ends_with("Later"),
        "{}",
        customer_name(other_rid)
    );
    let future_rid = h
        .reckon_id(EntityKind::Patient, future)
        .await
        .expect("linked");
    assert!(
        customer_name(future_rid).ends_with("Presente"),
        "{}",
        customer_name(future_rid)
    );
}

/// A payment at 00:30 in Perth (16:30 UTC the day before) is receipted on the Perth day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_dated_in_the_business_time_zone() {
    use chrono::{NaiveDate, TimeZone};
    use simulators::cliniko::model::Business;
    use simulators::cliniko::store::{InvoiceSpec, ItemSpec};
    let h = Harness::start(Options {
        patients: 5,
        ..Default::default()
    })
    .await;
    let closed = Utc.with_ymd_and_hms(2026, 3, 2, 16, 30, 0).unwrap();
    let invoice = h.cliniko.with(|s| {
        s.edit::<Business>(h.seed.business_id, |b| {
            b.time_zone_identifier = Some("Australia/Perth".into());
        });
        let patient = s
            .tables
            .patients
            .values()
            .next()
            .map(|p| p.id)
            .expect("a patient");
        let inv = s
            .create_invoice(&InvoiceSpec {
                patient_id: Some(patient),
                business_id: Some(h.seed.business_id),
                issue_date: NaiveDate::from_ymd_opt(2026, 3, 1),
                status: Some(20),
                items: vec![ItemSpec {
                    billable_item_id: h.seed.billable_item_ids.first().copied(),
                    quantity: Some(rust_decimal::Decimal::ONE),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .expect("invoice");
        s.edit::<Invoice>(inv.id, |i| i.closed_at = Some(closed));
        inv.id
    });
    h.run().await;
    let rid = h
        .reckon_id(EntityKind::Invoice, invoice)
        .await
        .expect("synced");
    let dates: Vec<NaiveDate> = h.reckon.with_book(|b, _| {
        b.receipts
            .values()
            .filter(|r| r.allocations.iter().any(|(inv, _)| *inv == rid.0))
            .map(|r| r.receipt_date)
            .collect()
    });
    assert_eq!(dates, vec![NaiveDate::from_ymd_opt(2026, 3, 3).unwrap()]);
}

/// What the bookkeeper keyed by hand is adopted by the right key, and never wrongly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_reckon_records_are_adopted_by_their_stable_keys() {
    let mut h = Harness::start(Options {
        patients: 4,
        ..Default::default()
    })
    .await;
    h.syncer.mapping.prefer_invoice_email = true;
    let gst = h.seed.gst_tax_id.to_string();
    let (keyed, fresh, nameless, band, wrap) = h.cliniko.with(|s| {
        let keyed = s
            .create_patient(&object(
                json!({"first_name": "Aoife", "last_name": "O'Connor",
                "email": "aoife@example.com", "invoice_email": "claims@insurer.example"}),
            ))
            .expect("patient");
        let fresh = s
            .create_patient(&object(json!({"first_name": "Ben", "last_name": "D'Arcy",
                "email": "ben@example.com", "invoice_email": "accounts@employer.example"})))
            .expect("patient");
        let nameless = s
            .create_patient(&object(json!({"first_name": "Cai", "last_name": "Lê"})))
            .expect("patient");
        let band = s
            .create_product(&object(
                json!({"name": "Tim's \"Red\" Band", "price": "18.50", "tax_id": gst}),
            ))
            .expect("product");
        let wrap = s
            .create_product(&object(
                json!({"name": "Ankle wrap", "price": "9.00", "tax_id": gst}),
            ))
            .expect("product");
        (keyed.id, fresh.id, nameless.id, band.id, wrap.id)
    });
    // Keyed by hand in Reckon before the sync: the customer with the patient's own email,
    // one with the name only, the product (both quote kinds in its name), and a *service*
    // that happens to share the other product's name.
    let (aoife, cai, band_item, wrap_service) = h.reckon.with_book(|b, ctx| {
        let aoife = b
            .create_customer(&json!({"name": "Aoife O'Connor", "status": "Active",
                "electronicAddresses": [{"type": "Email", "address": "aoife@example.com"}]}), ctx)
            .expect("customer");
        let cai = b
            .create_customer(&json!({"name": "Cai Lê", "status": "Active"}), ctx)
            .expect("customer");
        let item = |name: &str, kind: &str| {
            json!({"name": name, "itemType": kind, "status": "Active", "amountTaxStatus": "Exclusive",
                "sale": {"price": 1, "ledgerAccount": "Sales", "taxRate": "GST"}})
        };
        let band = b.create_item(&item("Tim's \"Red\" Band", "Product"), ctx).expect("item");
        let wrap = b.create_item(&item("Ankle wrap", "Service"), ctx).expect("item");
        (aoife.id, cai.id, band.id, wrap.id)
    });
    let before = book(&h);
    let (_, drained) = h.run().await;
    assert_eq!(drained.failed(), 0, "{drained:?}");
    let rid = |kind, id| {
        let h = &h;
        async move { h.reckon_id(kind, id).await.expect("linked").0 }
    };
    assert_eq!(rid(EntityKind::Patient, keyed).await, aoife, "by email");
    assert_eq!(rid(EntityKind::Patient, nameless).await, cai, "by name");
    assert_eq!(
        rid(EntityKind::Product, band).await,
        band_item,
        "by name, both quotes"
    );
    assert_ne!(
        rid(EntityKind::Product, wrap).await,
        wrap_service,
        "a service of the same name is not this product"
    );
    let email_of = |id: uuid::Uuid| {
        h.reckon.with_book(|b, _| {
            b.customers[&id]
                .electronic_addresses
                .iter()
                .filter_map(|e| e.address.clone())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(
        email_of(aoife),
        vec!["aoife@example.com".to_string()],
        "kept, never the insurer's"
    );
    let ben = rid(EntityKind::Patient, fresh).await;
    assert_eq!(
        email_of(ben),
        vec!["accounts@employer.example".to_string()],
        "created: preferred"
    );
    let after = book(&h);
    // Created: Ben and the product whose name a service holds; nothing else.
    assert_eq!(
        after[0],
        before[0] + 1 + (h.seed.patients),
        "{before:?} → {after:?}"
    );
    let wrap_name = h.reckon.with_book(|b, _| {
        b.items
            .values()
            .filter(|i| i.name.starts_with("Ankle wrap"))
            .map(|i| i.name.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(wrap_name.len(), 2, "{wrap_name:?}");
}

async fn preview_now(h: &Harness) -> cliniko_reckon::preview::Plan {
    cliniko_reckon::preview::preview(
        cliniko_reckon_e2e::cliniko_client(&h.cliniko_server),
        cliniko_reckon::reckon::ReckonClient::new(
            cliniko_reckon_e2e::reckon_config(&h.reckon, &h.reckon_server),
            h.state().clone(),
        )
        .expect("reckon client"),
        h.state().clone(),
        cliniko_reckon::mapping::MappingConfig::default(),
        &cliniko_reckon::pipeline::PollConfig::default(),
        "preview-test",
        Utc::now(),
    )
    .await
    .expect("preview")
}

type Step = (EntityKind, ClinikoId, cliniko_reckon::preview::Action);

/// What the next real run does, record by record, from the audit log.
async fn run_and_read_audit(h: &Harness) -> Vec<Step> {
    let before = h.state().recent_audit(1_000_000).expect("audit").len();
    h.run().await;
    let mut all = h.state().recent_audit(1_000_000).expect("audit");
    all.truncate(all.len() - before);
    all.reverse();
    all.into_iter()
        .map(|e| {
            (
                e.kind,
                e.cliniko_id,
                cliniko_reckon::preview::Action::of(e.outcome),
            )
        })
        .collect()
}

fn planned(plan: &cliniko_reckon::preview::Plan) -> Vec<Step> {
    plan.records
        .iter()
        .map(|p| (p.kind, p.cliniko_id, p.action))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_writes_nothing_and_the_sync_then_does_exactly_what_it_said() {
    use cliniko_reckon::preview::Action;
    let h = Harness::start(Options {
        patients: 30,
        existing_fraction: 0.2,
        ..Default::default()
    })
    .await;
    let book_before = book(&h);
    let writes = h.reckon_writes();
    let plan = preview_now(&h).await;
    assert_eq!(
        h.reckon_writes(),
        writes,
        "zero Reckon writes during the preview"
    );
    assert_eq!(book(&h), book_before);
    for kind in EntityKind::ALL {
        assert_eq!(h.state().watermark(kind).await.expect("wm"), None, "{kind}");
        assert!(
            h.state().links(kind).await.expect("links").is_empty(),
            "{kind}"
        );
    }
    assert_eq!(h.state().queue_depth().expect("queue").pending, 0);
    assert!(h.state().failures().await.expect("failures").is_empty());
    assert!(plan.count(Action::Create) > 30, "{:?}", plan.summary);
    assert!(
        plan.count(Action::Link) > 0,
        "pre-existing customers: {:?}",
        plan.summary
    );
    let linked = plan
        .records
        .iter()
        .find(|p| p.action == Action::Link)
        .expect("a link");
    assert!(
        linked.detail.contains("linked by email"),
        "{}",
        linked.detail
    );
    assert!(
        plan.records.iter().any(|p| p.payment.is_some()),
        "paid invoices show their receipt"
    );

    let done = run_and_read_audit(&h).await;
    assert_eq!(
        done,
        planned(&plan),
        "the sync did exactly what the preview said"
    );

    // Later: a rename, a new email and a new invoice; the preview shows both values.
    h.next_second().await;
    let patient = h.cliniko.with(|s| {
        let p = s
            .tables
            .patients
            .values()
            .find(|p| p.archived_at.is_none() && p.merged_at.is_none())
            .map(|p| p.id)
            .expect("a patient");
        s.update_patient(
            p,
            &object(json!({"last_name": "Renamed", "email": "renamed@example.com"})),
        )
        .expect("edit");
        p
    });
    let plan = preview_now(&h).await;
    let update = plan
        .records
        .iter()
        .find(|p| p.kind == EntityKind::Patient && p.cliniko_id == ClinikoId(patient))
        .expect("the edited patient is in the plan");
    assert_eq!(update.action, Action::Update, "{update:?}");
    let name = update
        .changes
        .iter()
        .find(|c| c.field == "name")
        .expect("the name changes");
    assert!(
        name.cliniko.ends_with("Renamed") && !name.reckon.ends_with("Renamed"),
        "{name:?}"
    );
    assert!(
        update
            .changes
            .iter()
            .any(|c| c.field == "email" && c.cliniko == "renamed@example.com")
    );
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("plan.html"),
        plan.to_html(chrono_tz::Australia::Sydney).expect("html"),
    )
    .expect("write");
    let csv = plan.to_csv().expect("csv");
    assert!(csv.contains("\nupdate,patient,"), "{csv}");
    let done = run_and_read_audit(&h).await;
    assert_eq!(done, planned(&plan));
}

/// Closed and Open-credit invoices are never owed in Reckon, in whichever order Reckon
/// meets an invoice and its credit note, under each remainder policy; the reconciliation
/// compares balances by the same rule and finds nothing; a second run writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_and_credit_invoices_reconcile_to_zero_mismatches() {
    use cliniko_reckon::mapping::ClosedRemainder;
    use rust_decimal::Decimal;
    use simulators::cliniko::store::{InvoicePatch, InvoiceSpec, ItemSpec};
    for policy in [
        ClosedRemainder::WriteOff,
        ClosedRemainder::Receipt,
        ClosedRemainder::LeaveOwing,
    ] {
        let mut h = Harness::start(Options {
            patients: 8,
            ..Default::default()
        })
        .await;
        h.syncer.mapping.closed_remainder = policy;
        let new_invoice = |s: &mut simulators::cliniko::store::ClinikoState, status: i32| {
            let patient = s
                .tables
                .patients
                .values()
                .find(|p| p.archived_at.is_none() && p.merged_at.is_none())
                .map(|p| p.id)
                .expect("a patient");
            s.create_invoice(&InvoiceSpec {
                patient_id: Some(patient),
                business_id: Some(h.seed.business_id),
                status: Some(status),
                calculation_method: Some(3),
                items: vec![
                    ItemSpec {
                        billable_item_id: h.seed.billable_item_ids.first().copied(),
                        quantity: Some(Decimal::ONE),
                        ..Default::default()
                    },
                    ItemSpec {
                        product_id: h.seed.product_ids.first().copied(),
                        quantity: Some(Decimal::TWO),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            })
            .expect("invoice")
            .id
        };
        // Synced first, reversed afterwards.
        let (reversed_later, paid_then_credited) =
            h.cliniko.with(|s| (new_invoice(s, 10), new_invoice(s, 20)));
        h.run().await;
        h.next_second().await;
        let (
            credit_later,
            kept_credit,
            reversed_first,
            credit_first,
            closed_outright,
            credit_before,
            credit_ahead,
        ) = h.cliniko.with(|s| {
            let now = s.now();
            let credit_later = s
                .reverse_invoice_at(reversed_later, false, now)
                .expect("reverse")
                .id;
            let kept_credit = s
                .reverse_invoice_at(paid_then_credited, true, now)
                .expect("reverse")
                .id;
            // Reversed before the sync ever saw it: both arrive together.
            let reversed_first = new_invoice(s, 10);
            let credit_first = s
                .reverse_invoice_at(reversed_first, false, now)
                .expect("reverse")
                .id;
            // Its credit note reaches Reckon first (below), the invoice after.
            let credit_before = new_invoice(s, 10);
            let credit_ahead = s
                .reverse_invoice_at(credit_before, false, now)
                .expect("reverse")
                .id;
            // Closed with no credit note: the remainder policy settles it.
            let closed_outright = new_invoice(s, 10);
            s.update_invoice(
                closed_outright,
                &InvoicePatch {
                    status: Some(30),
                    ..Default::default()
                },
            )
            .expect("close");
            (
                credit_later,
                kept_credit,
                reversed_first,
                credit_first,
                closed_outright,
                credit_before,
                credit_ahead,
            )
        });
        // The credit note alone first, as a worker that takes it before its invoice would.
        let ahead = h
            .syncer
            .source
            .record(EntityKind::Invoice, ClinikoId(credit_ahead))
            .await
            .expect("read")
            .expect("the credit note");
        h.syncer
            .apply(&ahead)
            .await
            .expect("credit note applied alone");
        h.run().await;

        let invoice_state = |h: &Harness, rid: cliniko_reckon::domain::ReckonId| {
            h.reckon.with_book(|b, _| {
                let i = &b.invoices[&rid.0];
                (
                    b.invoice_totals(i).total,
                    b.invoice_balance(i),
                    i.status.clone(),
                )
            })
        };
        let credit_state = |h: &Harness, rid: cliniko_reckon::domain::ReckonId| {
            h.reckon.with_book(|b, _| {
                let c = &b.credit_notes[&rid.0];
                (b.credit_note_totals(c).total, b.credit_note_balance(c))
            })
        };
        let rid = |id: u64| {
            let h = &h;
            async move {
                h.reckon_id(EntityKind::Invoice, id)
                    .await
                    .unwrap_or_else(|| panic!("{id} synced"))
            }
        };
        for (original, credit) in [
            (reversed_later, credit_later),
            (reversed_first, credit_first),
            (credit_before, credit_ahead),
        ] {
            let (total, balance, status) = invoice_state(&h, rid(original).await);
            assert_eq!(
                balance,
                Decimal::ZERO,
                "{policy:?}: reversed invoice owes nothing"
            );
            assert_eq!(status, "Paid");
            let (credit_total, credit_balance) = credit_state(&h, rid(credit).await);
            assert_eq!(
                credit_total, total,
                "the credit note is the invoice made positive"
            );
            assert_eq!(
                credit_balance,
                Decimal::ZERO,
                "its credit is used on the invoice"
            );
        }
        let (_, balance, _) = invoice_state(&h, rid(paid_then_credited).await);
        assert_eq!(balance, Decimal::ZERO);
        let (credit_total, credit_balance) = credit_state(&h, rid(kept_credit).await);
        assert!(credit_total > Decimal::ZERO);
        assert_eq!(
            credit_balance, credit_total,
            "an Open credit stays the patient's"
        );
        let (total, balance, _) = invoice_state(&h, rid(closed_outright).await);
        let write_offs = h.reckon.with_book(|b, _| {
            b.credit_notes
                .values()
                .filter(|c| {
                    c.reference
                        .as_deref()
                        .is_some_and(|r| r.starts_with("Write-off"))
                })
                .count()
        });
        match policy {
            ClosedRemainder::WriteOff => {
                assert_eq!(balance, Decimal::ZERO);
                assert_eq!(
                    write_offs, 1,
                    "one write-off, for the one invoice closed outright"
                );
                let unused: Decimal = h.reckon.with_book(|b, _| {
                    b.credit_notes
                        .values()
                        .filter(|c| {
                            c.reference
                                .as_deref()
                                .is_some_and(|r| r.starts_with("Write-off"))
                        })
                        .map(|c| b.credit_note_balance(c))
                        .sum()
                });
                assert_eq!(unused, Decimal::ZERO, "the write-off is allocated in full");
            }
            ClosedRemainder::Receipt => {
                assert_eq!(balance, Decimal::ZERO);
                assert_eq!(write_offs, 0);
            }
            ClosedRemainder::LeaveOwing => {
                assert_eq!(balance, total, "left owing, as configured");
                assert_eq!(write_offs, 0);
            }
        }

        let report = cliniko_reckon::reconcile::reconcile(
            &h.syncer.source,
            &h.syncer.sink,
            h.state(),
            &h.syncer.mapping,
            "test-clinic",
            Utc::now(),
        )
        .await
        .expect("reconcile");
        let (closed, credits) = h.cliniko.with(|s| {
            let live = s
                .tables
                .invoices
                .values()
                .filter(|i| i.archived_at.is_none() && i.deleted_at.is_none());
            let closed = live
                .clone()
                .filter(|i| i.status == 30 && i.total_amount.unwrap_or_default() > Decimal::ZERO)
                .count();
            let credits = live
                .filter(|i| i.total_amount.unwrap_or_default() < Decimal::ZERO)
                .count();
            (closed, credits)
        });
        eprintln!(
            "figures ({policy:?}): {closed} Closed invoices and {credits} credit notes, {} mismatches, {write_offs} write-offs",
            report.mismatches.len()
        );
        assert_eq!(
            (closed, credits),
            (4, 4),
            "the scenario's invoices (README figures)"
        );
        assert!(
            report.mismatches.is_empty(),
            "{policy:?}: {:#?}",
            report.mismatches
        );

        let writes = h.reckon_writes();
        h.run().await;
        assert_eq!(
            h.reckon_writes(),
            writes,
            "{policy:?}: a second run writes nothing"
        );
    }
}

/// A credit Cliniko says was used (Closed) but not on the invoice it reverses, which was
/// paid before it (a refund, or credit spent on another invoice Cliniko does not name):
/// left unallocated, never guessed, and named for a person by the reconciliation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credit_used_elsewhere_is_left_for_a_person_never_guessed() {
    use cliniko_reckon::reconcile::Category;
    use rust_decimal::Decimal;
    use simulators::cliniko::store::{InvoicePatch, InvoiceSpec, ItemSpec};
    let h = Harness::start(Options {
        patients: 4,
        ..Default::default()
    })
    .await;
    let (paid, credit) = h.cliniko.with(|s| {
        let patient = s
            .tables
            .patients
            .values()
            .find(|p| p.archived_at.is_none() && p.merged_at.is_none())
            .map(|p| p.id)
            .expect("a patient");
        let paid = s
            .create_invoice(&InvoiceSpec {
                patient_id: Some(patient),
                business_id: Some(h.seed.business_id),
                status: Some(20),
                items: vec![ItemSpec {
                    billable_item_id: h.seed.billable_item_ids.first().copied(),
                    quantity: Some(Decimal::ONE),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .expect("invoice")
            .id;
        let now = s.now();
        let credit = s.reverse_invoice_at(paid, true, now).expect("reverse").id;
        (paid, credit)
    });
    h.run().await;
    h.next_second().await;
    h.cliniko.with(|s| {
        s.update_invoice(
            credit,
            &InvoicePatch {
                status: Some(30),
                ..Default::default()
            },
        )
        .expect("credit used")
    });
    h.run().await;
    let rid = h
        .reckon_id(EntityKind::Invoice, credit)
        .await
        .expect("credit synced");
    let (total, balance) = h.reckon.with_book(|b, _| {
        let c = &b.credit_notes[&rid.0];
        (b.credit_note_totals(c).total, b.credit_note_balance(c))
    });
    assert!(total > Decimal::ZERO);
    assert_eq!(
        balance, total,
        "not allocated to the paid invoice it reverses"
    );
    let paid_rid = h.reckon_id(EntityKind::Invoice, paid).await.expect("paid");
    let receipts = h.reckon.with_book(|b, _| {
        b.receipts
            .values()
            .filter(|r| r.allocations.iter().any(|(i, _)| *i == paid_rid.0))
            .count()
    });
    assert_eq!(receipts, 1, "the payment stays as it was");
    let report = cliniko_reckon::reconcile::reconcile(
        &h.syncer.source,
        &h.syncer.sink,
        h.state(),
        &h.syncer.mapping,
        "test-clinic",
        Utc::now(),
    )
    .await
    .expect("reconcile");
    let named: Vec<_> = report
        .mismatches
        .iter()
        .filter(|m| m.cliniko_id == Some(ClinikoId(credit)))
        .collect();
    assert_eq!(named.len(), 1, "{:#?}", report.mismatches);
    assert_eq!(named[0].category, Category::StatusDrift);
    assert_eq!(named[0].field.as_deref(), Some("credit"));
    assert!(named[0].repair.is_none(), "a person decides");
    assert_eq!(report.mismatches.len(), 1, "{:#?}", report.mismatches);
}
