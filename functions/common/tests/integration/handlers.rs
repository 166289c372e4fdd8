//! The Lambda handlers with the local twins (SQLite state and queue, both simulators): the
//! sample events load, batches apply with partial failures, and poller → queue → workers
//! ends with Reckon in step with Cliniko.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use cliniko_reckon::domain::TenantId;
use cliniko_reckon::domain::{ClinikoId, EntityKind};
use cliniko_reckon::ports::StateStore;
use cliniko_reckon_e2e::{Harness, Options};
use lambda_handlers::{PoisonMessage, PollLoop, decode, handle_batch, poll_rounds};
use simulators::common::FaultRule;
use std::collections::HashMap;
use std::path::PathBuf;

fn event_file(name: &str) -> String {
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let path = PathBuf::from(crate_dir).join("../../events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sqs_event(name: &str) -> SqsEvent {
    serde_json::from_str(&event_file(name)).expect("an SQS event")
}

const PATIENTS: &[EntityKind] = &[EntityKind::Patient];
const PRODUCTS: &[EntityKind] = &[EntityKind::Product, EntityKind::BillableItem];
const INVOICES: &[EntityKind] = &[EntityKind::Invoice, EntityKind::Appointment];

#[test]
fn every_sample_event_loads() {
    for (file, accepts) in [
        ("patient-sync-batch.json", PATIENTS),
        ("product-sync-batch.json", PRODUCTS),
        ("invoice-sync-batch.json", INVOICES),
    ] {
        let event = sqs_event(file);
        assert!(!event.records.is_empty(), "{file}");
        for m in &event.records {
            let item = decode(
                m.body.as_deref().unwrap_or_default(),
                accepts,
                &TenantId::default(),
            )
            .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(accepts.contains(&item.record.kind()));
        }
    }
    let poison = sqs_event("poison-message.json");
    let errors: Vec<_> = poison
        .records
        .iter()
        .map(|m| {
            decode(
                m.body.as_deref().unwrap_or_default(),
                PATIENTS,
                &TenantId::default(),
            )
            .unwrap_err()
        })
        .collect();
    assert!(
        matches!(errors[0], PoisonMessage::Unreadable(_)),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(errors[1], PoisonMessage::NewerSchema(99)),
        "{:?}",
        errors[1]
    );
    for file in ["poller-scheduled.json", "reconciler-scheduled.json"] {
        let v: serde_json::Value = serde_json::from_str(&event_file(file)).unwrap();
        assert_eq!(v["detail-type"], "Scheduled Event");
    }
    // A patient on the invoice queue is refused, not applied.
    let patients = sqs_event("patient-sync-batch.json");
    let body = patients.records[0].body.as_deref().unwrap_or_default();
    assert!(matches!(
        decode(body, INVOICES, &TenantId::default()),
        Err(PoisonMessage::WrongQueue(EntityKind::Patient))
    ));
    // Another clinic's record is refused by a function serving this one, before anything
    // is applied; the queue adapters stamp the polling tenant on every message.
    let clinic_b = TenantId::new("clinic-b").unwrap();
    match decode(body, PATIENTS, &clinic_b) {
        Err(PoisonMessage::OtherTenant { found, serves }) => {
            assert_eq!((found.as_str(), serves.as_str()), ("default", "clinic-b"));
        }
        other => panic!("expected OtherTenant, got {other:?}"),
    }
    let mut stamped: serde_json::Value = serde_json::from_str(body).unwrap();
    stamped["tenant"] = "clinic-b".into();
    let item = decode(&stamped.to_string(), PATIENTS, &clinic_b).unwrap();
    assert_eq!(item.tenant, clinic_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_patient_batch_applies() {
    let h = Harness::start(Options {
        patients: 3,
        ..Default::default()
    })
    .await;
    let response = handle_batch(
        &h.syncer,
        sqs_event("patient-sync-batch.json"),
        PATIENTS,
        5,
        &TenantId::default(),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    for (id, name, status) in [
        (
            1_100_000_000_000_004_321u64,
            "Siobhán O'Brien-Ngata",
            "Active",
        ),
        (1_100_000_000_000_004_322, "李 小龙", "Inactive"),
    ] {
        let rid = h.reckon_id(EntityKind::Patient, id).await.expect("linked");
        let (got_name, got_status) = h.reckon.with_book(|b, _| {
            (
                b.customers[&rid.0].name.clone(),
                b.customers[&rid.0].status.clone(),
            )
        });
        assert_eq!((got_name.as_str(), got_status.as_str()), (name, status));
    }
    // Redelivery of the same batch writes nothing new.
    let writes = h.reckon_writes();
    let again = handle_batch(
        &h.syncer,
        sqs_event("patient-sync-batch.json"),
        PATIENTS,
        5,
        &TenantId::default(),
    )
    .await
    .unwrap();
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(h.reckon_writes(), writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_reported_not_applied() {
    let h = Harness::start(Options {
        patients: 2,
        ..Default::default()
    })
    .await;
    let event = sqs_event("poison-message.json");
    let ids: Vec<String> = event
        .records
        .iter()
        .filter_map(|m| m.message_id.clone())
        .collect();
    let response = handle_batch(&h.syncer, event, PATIENTS, 5, &TenantId::default())
        .await
        .unwrap();
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, ids);
    assert_eq!(h.reckon_writes(), 0);
}

/// Wraps queued work items as the SQS batches Lambda would deliver (≤ 10 per batch).
fn batches(items: Vec<(EntityKind, String)>) -> HashMap<&'static str, Vec<SqsEvent>> {
    let mut by_queue: HashMap<&'static str, Vec<SqsMessage>> = HashMap::new();
    for (n, (kind, body)) in items.into_iter().enumerate() {
        let queue = match kind {
            EntityKind::Patient => "patients",
            EntityKind::Product | EntityKind::BillableItem => "products",
            EntityKind::Invoice | EntityKind::Appointment => "invoices",
        };
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m-{n}"));
        m.body = Some(body);
        m.attributes
            .insert("ApproximateReceiveCount".into(), "1".into());
        by_queue.entry(queue).or_default().push(m);
    }
    by_queue
        .into_iter()
        .map(|(q, messages)| {
            let events = messages
                .chunks(10)
                .map(|c| {
                    let mut e = SqsEvent::default();
                    e.records = c.to_vec();
                    e
                })
                .collect();
            (q, events)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poller_then_workers_bring_reckon_in_step() {
    let h = Harness::start(Options {
        patients: 25,
        ..Default::default()
    })
    .await;
    // The poller writes to the queue (the SQLite twin of the three SQS queues).
    let summary = poll_rounds(&h.syncer.source, h.state(), h.state(), &PollLoop::default())
        .await
        .unwrap();
    assert!(summary.enqueued >= h.seed.patients);
    let claimed = h.state().claim(100_000, chrono::Utc::now()).unwrap();
    assert_eq!(claimed.len(), summary.enqueued);
    let items = claimed
        .iter()
        .map(|c| {
            (
                c.item.record.kind(),
                serde_json::to_string(&c.item).unwrap(),
            )
        })
        .collect();
    let mut queues = batches(items);
    // Invoices first: workers run concurrently and in any order, and an invoice syncs its
    // customer and items itself when they have not arrived yet.
    for (queue, accepts) in [
        ("invoices", INVOICES),
        ("patients", PATIENTS),
        ("products", PRODUCTS),
    ] {
        for event in queues.remove(queue).unwrap_or_default() {
            let response = handle_batch(&h.syncer, event, accepts, 5, &TenantId::default())
                .await
                .unwrap();
            assert!(
                response.batch_item_failures.is_empty(),
                "{queue}: {response:?}"
            );
        }
    }
    h.assert_in_step().await;
    // No record was created twice although dependencies raced the queues.
    assert_eq!(
        h.reckon.with_book(|b, _| b.customers.len()),
        h.seed.patients
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_go_back_on_the_queue_and_permanent_ones_are_recorded() {
    let h = Harness::start(Options {
        patients: 2,
        ..Default::default()
    })
    .await;
    // Reckon keeps failing: the customer create is retryable, so the message is returned.
    h.reckon
        .faults
        .add(FaultRule::fail_next("/r1/v2/*", 503, 1000));
    let response = handle_batch(
        &h.syncer,
        sqs_event("patient-sync-batch.json"),
        PATIENTS,
        5,
        &TenantId::default(),
    )
    .await
    .unwrap();
    assert_eq!(response.batch_item_failures.len(), 2);
    assert!(
        h.state().failures().await.unwrap().is_empty(),
        "retryable: not parked"
    );
    // On its last receive (the queue's maxReceiveCount) the same failure is parked with its
    // reason before SQS moves the message to the DLQ: no record reaches the DLQ unnamed. The
    // second record is not tried (Reckon is down): it is kept as a passing failure and its
    // message deleted, an outage is not the record's fault.
    let mut last = sqs_event("patient-sync-batch.json");
    for m in &mut last.records {
        m.attributes
            .insert("ApproximateReceiveCount".into(), "5".into());
    }
    let response = handle_batch(&h.syncer, last, PATIENTS, 5, &TenantId::default())
        .await
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1, "{response:?}");
    let parked = h.state().failures().await.unwrap();
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert!(
        parked.iter().all(|f| f.retryable && f.attempts == 5),
        "{parked:?}"
    );
    assert!(parked.iter().all(|f| f.error.contains("503")), "{parked:?}");
    assert_eq!(
        parked
            .iter()
            .filter(|f| f.error.starts_with("not tried"))
            .count(),
        1,
        "{parked:?}"
    );
    for f in &parked {
        h.state().clear_failure(f.kind, f.cliniko_id).await.unwrap();
    }
    h.reckon.faults.clear();

    // A product whose tax Cliniko does not list cannot be mapped: recorded with the reason.
    let response = handle_batch(
        &h.syncer,
        sqs_event("product-sync-batch.json"),
        PRODUCTS,
        5,
        &TenantId::default(),
    )
    .await
    .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1, "{response:?}");
    let failures = h.state().failures().await.unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].cliniko_id, ClinikoId(1_100_000_000_000_007_001));
    assert!(!failures[0].retryable);
    assert!(failures[0].error.contains("tax"), "{}", failures[0].error);
    // The GST-free billable item in the same batch went through.
    assert!(
        h.reckon_id(EntityKind::BillableItem, 1_100_000_000_000_008_001)
            .await
            .is_some()
    );
}

/// A Cliniko source that panics the first time taxes are read: stands in for any bug or
/// data a record could carry that makes `apply` panic.
struct PanicsOnce {
    inner: cliniko_reckon::cliniko::ClinikoClient,
    armed: std::sync::atomic::AtomicBool,
}

impl cliniko_reckon::ports::ClinikoSource for PanicsOnce {
    async fn changed_since(
        &self,
        kind: EntityKind,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<cliniko_reckon::ports::Changes, cliniko_reckon::ports::SourceError> {
        self.inner.changed_since(kind, since).await
    }
    async fn record(
        &self,
        kind: EntityKind,
        id: ClinikoId,
    ) -> Result<Option<cliniko_reckon::domain::Record>, cliniko_reckon::ports::SourceError> {
        self.inner.record(kind, id).await
    }
    async fn all_page(
        &self,
        kind: EntityKind,
        cursor: Option<cliniko_reckon::ports::PageCursor>,
    ) -> Result<
        cliniko_reckon::ports::Page<cliniko_reckon::domain::Record>,
        cliniko_reckon::ports::SourceError,
    > {
        self.inner.all_page(kind, cursor).await
    }
    async fn taxes(
        &self,
    ) -> Result<Vec<cliniko_reckon::domain::Tax>, cliniko_reckon::ports::SourceError> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            panic!("a record the sync cannot handle");
        }
        self.inner.taxes().await
    }
    async fn businesses(
        &self,
    ) -> Result<Vec<cliniko_reckon::domain::Business>, cliniko_reckon::ports::SourceError> {
        self.inner.businesses().await
    }
    async fn appointment_type_lines(
        &self,
    ) -> Result<Vec<cliniko_reckon::domain::AppointmentTypeLine>, cliniko_reckon::ports::SourceError>
    {
        self.inner.appointment_type_lines().await
    }
    async fn invoices_of_appointment(
        &self,
        appointment: ClinikoId,
    ) -> Result<Vec<cliniko_reckon::domain::Invoice>, cliniko_reckon::ports::SourceError> {
        self.inner.invoices_of_appointment(appointment).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_record_fails_alone_and_the_rest_of_the_batch_applies() {
    let h = Harness::start(Options {
        patients: 2,
        ..Default::default()
    })
    .await;
    let syncer = cliniko_reckon::pipeline::Syncer::new(
        PanicsOnce {
            inner: cliniko_reckon_e2e::cliniko_client(&h.cliniko_server),
            armed: std::sync::atomic::AtomicBool::new(true),
        },
        cliniko_reckon::reckon::ReckonClient::new(
            cliniko_reckon_e2e::reckon_config(&h.reckon, &h.reckon_server),
            h.state().clone(),
        )
        .expect("reckon client"),
        h.state().clone(),
        cliniko_reckon::mapping::MappingConfig::default(),
    );
    let event = sqs_event("product-sync-batch.json");
    assert!(
        event.records.len() >= 2,
        "a batch with a message after the bad one"
    );
    let first = event.records[0].message_id.clone().expect("id");
    let records: Vec<_> = event
        .records
        .iter()
        .map(|m| {
            decode(
                m.body.as_deref().unwrap_or_default(),
                PRODUCTS,
                &TenantId::default(),
            )
            .expect("item")
            .record
        })
        .collect();
    let response = handle_batch(&syncer, event, PRODUCTS, 5, &TenantId::default())
        .await
        .expect("the batch returns");
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        vec![first.as_str()],
        "only the panicking message failed"
    );
    for r in &records[1..] {
        assert!(
            h.reckon_id(r.kind(), r.id().0).await.is_some(),
            "{} {} applied",
            r.kind(),
            r.id()
        );
    }
    let failures = h.state().failures().await.expect("failures");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].cliniko_id, records[0].id());
    assert!(
        failures[0].error.contains("panicked"),
        "{}",
        failures[0].error
    );
}

/// The poller gives records an outage parked another go, as the local run does, but each
/// at most once per rest period however often it runs; data problems wait for a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_requeues_what_an_outage_parked_once_per_rest() {
    use cliniko_reckon::ports::Failure;
    let h = Harness::start(Options {
        patients: 3,
        ..Default::default()
    })
    .await;
    let ids: Vec<u64> = h
        .cliniko
        .with(|s| s.tables.patients.keys().take(2).copied().collect());
    let long_ago = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    for (id, retryable) in [(ids[0], true), (ids[1], false)] {
        h.state()
            .record_failure(&Failure {
                kind: EntityKind::Patient,
                cliniko_id: ClinikoId(id),
                version: long_ago,
                error: if retryable {
                    "Reckon 503"
                } else {
                    "first_name: missing"
                }
                .into(),
                retryable,
                attempts: 5,
                last_at: long_ago,
            })
            .await
            .unwrap();
    }
    let plan = PollLoop::default();
    let first = poll_rounds(&h.syncer.source, h.state(), h.state(), &plan)
        .await
        .unwrap();
    assert_eq!(first.requeued, 1, "only the one parked by an outage");
    // (The first poll queues every patient anyway; what tells is the failure rows.)
    let failures = h.state().failures().await.unwrap();
    let tried = |id: u64| {
        failures
            .iter()
            .find(|f| f.cliniko_id == ClinikoId(id))
            .map(|f| f.last_at)
            .expect("still parked until a worker applies it")
    };
    let second = chrono::TimeDelta::seconds(1);
    assert!(tried(ids[0]) - long_ago > second, "marked as tried now");
    assert!(
        (tried(ids[1]) - long_ago).abs() < second,
        "a data problem waits for a person"
    );
    let again = poll_rounds(&h.syncer.source, h.state(), h.state(), &plan)
        .await
        .unwrap();
    assert_eq!(again.requeued, 0, "it rests before the next go");
}
