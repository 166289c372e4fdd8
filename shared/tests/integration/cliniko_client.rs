//! The Cliniko client against the in-process Cliniko simulator: paging, incremental reads,
//! invoice items, exact ids, rate limits, retries and typed errors.

use chrono::{DateTime, TimeDelta, Utc};
use cliniko_reckon::cliniko::{ClinikoClient, ClinikoClientConfig, ClinikoError};
use cliniko_reckon::domain::{ClinikoId, EntityKind, Record};
use cliniko_reckon::ports::ClinikoSource;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use simulators::cliniko::model as sim_model;
use simulators::cliniko::store::{ClinikoState, InvoicePatch, ItemSpec};
use simulators::cliniko::{ClinikoConfig, ClinikoSim, DEFAULT_API_KEY};
use simulators::common::RunningServer;
use simulators::common::faults::FaultRule;
use simulators::generator::{ClinicSize, seed_clinic};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use url::Url;

const UA: &str = "Cliniko Reckon Sync tests (dev@example.com)";

struct Sim {
    sim: ClinikoSim,
    server: RunningServer,
}

async fn start(config: ClinikoConfig) -> Sim {
    let sim = ClinikoSim::new(config);
    let server = sim.start("127.0.0.1", 0).await.expect("simulator starts");
    Sim { sim, server }
}

async fn start_default() -> Sim {
    start(ClinikoConfig {
        rate_limit_per_minute: 0,
        ..Default::default()
    })
    .await
}

impl Sim {
    fn config(&self) -> ClinikoClientConfig {
        let mut cfg = ClinikoClientConfig::new(DEFAULT_API_KEY.into(), UA);
        cfg.base_url = Some(
            Url::parse(&format!("{}/v1", self.server.origin())).expect("simulator URL parses"),
        );
        cfg.requests_per_minute = 0;
        cfg.max_attempts = 5;
        cfg.request_timeout = Duration::from_secs(10);
        cfg.backoff_base = Duration::from_millis(1);
        cfg.max_backoff = Duration::from_millis(20);
        cfg
    }

    fn client(&self) -> ClinikoClient {
        ClinikoClient::new(self.config()).expect("client builds")
    }

    fn patient(&self, first: &str, last: &str) -> sim_model::Patient {
        self.sim.with(|s| {
            s.create_patient(&obj(json!({"first_name": first, "last_name": last})))
                .expect("patient created")
        })
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn ids(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.id().0).collect()
}

fn updated(r: &Record) -> DateTime<Utc> {
    match r {
        Record::Patient(p) => p.updated_at,
        Record::Product(p) => p.updated_at,
        Record::BillableItem(b) => b.updated_at,
        Record::Invoice(i) => i.updated_at,
        Record::Appointment(a) => a.updated_at,
    }
}

fn assert_sorted_and_unique(records: &[Record]) {
    let unique: HashSet<u64> = ids(records).into_iter().collect();
    assert_eq!(unique.len(), records.len(), "no id twice");
    for pair in records.windows(2) {
        assert!(
            (updated(&pair[0]), pair[0].id()) < (updated(&pair[1]), pair[1].id()),
            "ordered by updated_at, id"
        );
    }
}

#[tokio::test]
async fn a_seeded_clinic_is_read_in_full_across_pages() {
    let s = start_default().await;
    let report = s
        .sim
        .with(|st| seed_clinic(st, 11, ClinicSize::with_patients(300)));
    let client = s.client();

    let patients = client
        .changed_since(EntityKind::Patient, None)
        .await
        .expect("patients read")
        .records;
    let (sim_patients, archived) = s.sim.with(|st| {
        let t = &st.tables.patients;
        (
            t.keys().copied().collect::<HashSet<u64>>(),
            t.values().filter(|p| p.archived_at.is_some()).count(),
        )
    });
    assert!(sim_patients.len() >= 300);
    assert_eq!(
        patients.len(),
        sim_patients.len(),
        "every patient, archived too"
    );
    assert_eq!(
        ids(&patients).into_iter().collect::<HashSet<_>>(),
        sim_patients
    );
    assert!(archived > 0, "the clinic has archived patients");
    let seen_archived = patients
        .iter()
        .filter(|r| matches!(r, Record::Patient(p) if p.archived_at.is_some()))
        .count();
    assert_eq!(seen_archived, archived);
    assert_sorted_and_unique(&patients);
    // 100 per page: the client followed links.next to the end and asked no more.
    let pages = sim_patients.len().div_ceil(100) as u64;
    assert_eq!(client.requests_made(), pages);
    // Merged patients point at their survivor.
    let merged: Vec<_> = patients
        .iter()
        .filter_map(|r| match r {
            Record::Patient(p) if p.merged_at.is_some() => Some(p),
            _ => None,
        })
        .collect();
    assert!(!merged.is_empty());
    for p in merged {
        let survivor = p.merged_into.expect("merged patient names its survivor");
        let expected = s.sim.with(|st| {
            st.tables.patients[&p.id.0]
                .merged_with_patient_id
                .expect("sim survivor")
        });
        assert_eq!(survivor, ClinikoId(expected));
    }

    let products = client
        .changed_since(EntityKind::Product, None)
        .await
        .expect("products read")
        .records;
    assert_eq!(products.len(), s.sim.with(|st| st.tables.products.len()));
    assert!(products.len() >= report.products && !products.is_empty());
    let billables = client
        .changed_since(EntityKind::BillableItem, None)
        .await
        .expect("billable items read")
        .records;
    assert_eq!(
        billables.len(),
        s.sim.with(|st| st.tables.billable_items.len())
    );
    assert!(!billables.is_empty());
}

#[tokio::test]
async fn invoices_carry_exactly_their_live_items_and_totals_match() {
    let s = start_default().await;
    let report = s
        .sim
        .with(|st| seed_clinic(st, 5, ClinicSize::with_patients(120)));
    // One invoice gets its lines replaced (the old ones are deleted), one is deleted, one
    // archived.
    let changed: Vec<u64> = s.sim.with(|st| {
        let ids: Vec<u64> = st.tables.invoices.keys().copied().take(3).collect();
        let line = ItemSpec {
            billable_item_id: report.billable_item_ids.first().copied(),
            quantity: Some(Decimal::TWO),
            ..Default::default()
        };
        let patches = [
            InvoicePatch {
                items: Some(vec![line]),
                ..Default::default()
            },
            InvoicePatch {
                deleted: Some(true),
                ..Default::default()
            },
            InvoicePatch {
                archived: Some(true),
                ..Default::default()
            },
        ];
        for (id, patch) in ids.iter().zip(patches) {
            st.update_invoice(*id, &patch).expect("invoice changed");
        }
        ids
    });
    let client = s.client();
    let invoices = client
        .changed_since(EntityKind::Invoice, None)
        .await
        .expect("invoices read")
        .records;
    let (sim_invoices, deleted, live_items, dead_items) = s.sim.with(|st| {
        let t = &st.tables;
        let mut live: BTreeMap<u64, HashSet<u64>> = BTreeMap::new();
        let mut dead = 0;
        for item in t.invoice_items.values() {
            if item.archived_at.is_none() && item.deleted_at.is_none() {
                if let Some(inv) = item.invoice_id {
                    live.entry(inv).or_default().insert(item.id);
                }
            } else {
                dead += 1;
            }
        }
        (
            t.invoices.len(),
            t.invoices
                .values()
                .filter(|i| i.deleted_at.is_some())
                .count(),
            live,
            dead,
        )
    });
    assert!(sim_invoices > 100, "more than one page of invoices");
    assert_eq!(
        invoices.len(),
        sim_invoices,
        "deleted and archived included"
    );
    assert!(deleted > 0 && dead_items > 0, "the clinic has deleted rows");
    assert_sorted_and_unique(&invoices);
    let find = |id: u64| {
        invoices
            .iter()
            .find_map(|r| match r {
                Record::Invoice(i) if i.id.0 == id => Some(i.clone()),
                _ => None,
            })
            .expect("invoice listed")
    };
    assert_eq!(find(changed[0]).items.len(), 1, "only the replacement line");
    assert!(find(changed[1]).deleted_at.is_some());
    assert!(find(changed[2]).archived_at.is_some());
    let mut with_items = 0;
    for r in &invoices {
        let Record::Invoice(inv) = r else {
            panic!("not an invoice: {r:?}")
        };
        let got: HashSet<u64> = inv.items.iter().map(|i| i.id.0).collect();
        assert_eq!(got.len(), inv.items.len());
        let want = live_items.get(&inv.id.0).cloned().unwrap_or_default();
        assert_eq!(got, want, "invoice {} has exactly its live items", inv.id);
        if inv.items.is_empty() {
            continue;
        }
        with_items += 1;
        assert!(inv.items.iter().all(|i| i.invoice_id == inv.id));
        let total: Decimal = inv.items.iter().map(|i| i.total_including_tax).sum();
        let tax: Decimal = inv.items.iter().map(|i| i.tax_amount).sum();
        assert_eq!(total, inv.total_amount, "invoice {} total", inv.id);
        assert_eq!(tax, inv.tax_amount, "invoice {} tax", inv.id);
        assert_eq!(inv.net_amount, inv.total_amount - inv.tax_amount);
        let sim_number = s.sim.with(|st| st.tables.invoices[&inv.id.0].number);
        assert_eq!(inv.number, sim_number);
    }
    assert!(with_items > 100);
    // One invoice page plus one item query (and its pages) per invoice page, and one
    // reversal query per page that has Closed invoices, no more.
    let invoice_pages = sim_invoices.div_ceil(100) as u64;
    let traffic = s.sim.traffic.count("GET", "/v1/invoice_items");
    let invoice_reads = s.sim.traffic.count("GET", "/v1/invoices");
    assert!(
        invoice_reads > invoice_pages && invoice_reads <= invoice_pages * 2,
        "no per-invoice requests: {invoice_reads} for {invoice_pages} pages"
    );
    assert!(
        traffic >= invoice_pages && traffic <= invoice_pages * 4,
        "{traffic}"
    );
    assert_eq!(client.requests_made(), invoice_reads + traffic);
    let all: Vec<&cliniko_reckon::domain::Invoice> = invoices
        .iter()
        .filter_map(|r| match r {
            Record::Invoice(i) => Some(i),
            _ => None,
        })
        .collect();
    let closed = all
        .iter()
        .filter(|i| {
            i.status == cliniko_reckon::domain::InvoiceStatus::Closed
                && i.total_amount > Decimal::ZERO
        })
        .collect::<Vec<_>>();
    assert!(!closed.is_empty());
    assert!(
        closed.iter().any(|i| !i.reversals.is_empty()),
        "Closed invoices come with the credit notes that reverse them"
    );
    for inv in &closed {
        for r in &inv.reversals {
            let credit = all
                .iter()
                .find(|c| c.id == r.id)
                .expect("reversal read too");
            assert_eq!(credit.original_invoice_id, Some(inv.id));
            assert_eq!(r.total_amount, credit.total_amount);
        }
    }

    // One invoice by id, with its items.
    let some = invoices
        .iter()
        .find_map(|r| match r {
            Record::Invoice(i) if !i.items.is_empty() => Some(i.clone()),
            _ => None,
        })
        .expect("an invoice with items");
    let again = client
        .record(EntityKind::Invoice, some.id)
        .await
        .expect("read by id");
    assert_eq!(again, Some(Record::Invoice(some)));
}

#[tokio::test]
async fn changed_since_returns_only_newer_records_archived_included() {
    let s = start_default().await;
    let old: Vec<_> = (0..5)
        .map(|i| s.patient(&format!("Old{i}"), "Patient"))
        .collect();
    s.sim.clock.advance(Duration::from_secs(120));
    let watermark = s.sim.clock.now_seconds();
    s.sim.clock.advance(Duration::from_secs(5));
    let fresh = s.patient("New", "Patient");
    let edited = s.sim.with(|st| {
        st.update_patient(old[1].id, &obj(json!({"email": "edited@example.com"})))
            .expect("patient edited")
    });
    let archived = s.sim.with(|st| {
        st.set_patient_archived(old[2].id, true)
            .expect("patient archived")
    });
    let client = s.client();
    let changed = client
        .changed_since(EntityKind::Patient, Some(watermark))
        .await
        .expect("changes read")
        .records;
    let got: HashSet<u64> = ids(&changed).into_iter().collect();
    let want: HashSet<u64> = [fresh.id, edited.id, archived.id].into_iter().collect();
    assert_eq!(got, want);
    let archived_seen = changed
        .iter()
        .find(|r| r.id().0 == archived.id)
        .expect("archived patient returned");
    let Record::Patient(p) = archived_seen else {
        panic!("patient expected")
    };
    assert!(p.archived_at.is_some() && p.is_inactive());
    let Some(Record::Patient(e)) = changed.iter().find(|r| r.id().0 == edited.id) else {
        panic!("edited patient expected")
    };
    assert_eq!(e.email.as_deref(), Some("edited@example.com"));

    // Nothing changed after now: an empty answer from one request.
    let before = client.requests_made();
    let later = s.sim.clock.now() + TimeDelta::seconds(60);
    let none = client
        .changed_since(EntityKind::Patient, Some(later))
        .await
        .expect("empty read")
        .records;
    assert!(none.is_empty());
    assert_eq!(client.requests_made() - before, 1);

    let all = client
        .changed_since(EntityKind::Patient, None)
        .await
        .expect("full read")
        .records;
    assert_eq!(all.len(), 6);
}

#[tokio::test]
async fn identical_updated_at_across_a_page_boundary_are_all_returned() {
    let s = start_default().await;
    let stamp = s.sim.clock.now_seconds() - TimeDelta::seconds(30);
    let made: HashSet<u64> = s.sim.with(|st: &mut ClinikoState| {
        (0..250)
            .map(|i| {
                let id = st.fresh_id();
                st.insert(sim_model::Patient {
                    id,
                    first_name: format!("Same{i}"),
                    last_name: "Stamp".into(),
                    created_at: stamp - TimeDelta::seconds(i64::from(i % 7)),
                    updated_at: stamp,
                    ..Default::default()
                })
                .id
            })
            .collect()
    });
    let client = s.client();
    let got = client
        .changed_since(EntityKind::Patient, Some(stamp))
        .await
        .expect("read")
        .records;
    assert_eq!(got.len(), 250);
    assert_eq!(ids(&got).into_iter().collect::<HashSet<_>>(), made);
    assert_sorted_and_unique(&got);
    assert_eq!(client.requests_made(), 3);
}

#[tokio::test]
async fn ids_above_2_pow_53_stay_exact() {
    let s = start_default().await;
    let survivor = s.patient("Keep", "Me");
    let merged = s.patient("Dup", "Me");
    s.sim
        .with(|st| st.merge_patients(merged.id, survivor.id).expect("merged"));
    assert!(merged.id > (1u64 << 53));
    let client = s.client();
    let got = client
        .record(EntityKind::Patient, ClinikoId(merged.id))
        .await
        .expect("read")
        .expect("found, though archived");
    let Record::Patient(p) = got else {
        panic!("patient expected")
    };
    assert_eq!(p.id.0, merged.id);
    assert_eq!(p.merged_into, Some(ClinikoId(survivor.id)));
    // Another id above 2^53 that no double can hold exactly.
    let next = s.sim.with(|st| {
        st.insert(sim_model::Patient {
            id: (1u64 << 53) + 1,
            first_name: "Odd".into(),
            last_name: "Id".into(),
            created_at: st.now(),
            updated_at: st.now(),
            ..Default::default()
        })
    });
    let got = client
        .record(EntityKind::Patient, ClinikoId(next.id))
        .await
        .expect("read")
        .expect("found");
    assert_eq!(got.id().0, next.id);
    // An id that does not exist is None, not an error.
    let missing = client
        .record(EntityKind::Patient, ClinikoId(next.id + 1000))
        .await
        .expect("404 is not an error");
    assert_eq!(missing, None);
}

#[tokio::test]
async fn taxes_and_businesses_with_time_zones() {
    let s = start_default().await;
    let report = s
        .sim
        .with(|st| seed_clinic(st, 3, ClinicSize::with_patients(20)));
    let client = s.client();
    let taxes = client.taxes().await.expect("taxes");
    let gst = taxes
        .iter()
        .find(|t| t.id.0 == report.gst_tax_id)
        .expect("GST listed");
    assert_eq!(gst.rate, Decimal::TEN);
    assert!(
        taxes
            .iter()
            .any(|t| t.id.0 == report.gst_free_tax_id && t.rate.is_zero())
    );
    let businesses = client.businesses().await.expect("businesses");
    let b = businesses
        .iter()
        .find(|b| b.id.0 == report.business_id)
        .expect("business listed");
    assert_eq!(b.time_zone.as_deref(), Some("Australia/Sydney"));
    assert!(!b.name.is_empty());
}

#[tokio::test]
async fn server_errors_are_retried_to_success() {
    let s = start_default().await;
    s.sim
        .with(|st| seed_clinic(st, 2, ClinicSize::with_patients(150)));
    // A burst of four 5xx answers (500, 502, 503 at random) on the patients list.
    s.sim.faults.add(FaultRule {
        path: Some("/v1/patients*".into()),
        error_rate: 1.0,
        remaining: Some(4),
        ..Default::default()
    });
    let client = s.client();
    let got = client
        .changed_since(EntityKind::Patient, None)
        .await
        .expect("retries reach success")
        .records;
    let n = s.sim.with(|st| st.tables.patients.len());
    assert_eq!(got.len(), n);
    // 4 failures plus the pages themselves.
    assert_eq!(client.requests_made(), n.div_ceil(100) as u64 + 4);
}

#[tokio::test]
async fn broken_connections_and_timeouts_are_retried() {
    let s = start_default().await;
    s.patient("A", "B");
    s.sim.faults.set_hang_duration(Duration::from_secs(5));
    s.sim.faults.add(FaultRule {
        path: Some("/v1/patients*".into()),
        drop_rate: 1.0,
        remaining: Some(1),
        ..Default::default()
    });
    // Every matching rule spends its budget on each request: the first request is dropped
    // (the first rule wins), the second hangs.
    s.sim.faults.add(FaultRule {
        path: Some("/v1/patients*".into()),
        hang_rate: 1.0,
        remaining: Some(2),
        ..Default::default()
    });
    let mut cfg = s.config();
    cfg.request_timeout = Duration::from_millis(400);
    let client = ClinikoClient::new(cfg).expect("client");
    let started = Instant::now();
    let got = client
        .changed_since(EntityKind::Patient, None)
        .await
        .expect("retried past a dropped connection and a hung request")
        .records;
    assert_eq!(got.len(), 1);
    assert_eq!(client.requests_made(), 3);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the timeout cut the hang short"
    );
}

#[tokio::test]
async fn persistent_server_errors_end_in_a_retryable_error() {
    let s = start_default().await;
    s.sim
        .faults
        .add(FaultRule::fail_next("/v1/taxes*", 503, 100));
    let mut cfg = s.config();
    cfg.max_attempts = 3;
    let client = ClinikoClient::new(cfg).expect("client");
    let err = client.taxes().await.expect_err("keeps failing");
    assert!(
        matches!(
            err.cause::<ClinikoError>(),
            Some(ClinikoError::Status { status: 503, .. })
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(client.requests_made(), 3, "max_attempts bounds the tries");
}

#[tokio::test]
async fn a_wrong_key_is_a_401_that_says_it_is_not_retryable() {
    let s = start_default().await;
    let mut cfg = s.config();
    let wrong = "WrongKeyWrongKey-au1";
    cfg.api_key = wrong.into();
    let client = ClinikoClient::new(cfg).expect("client");
    let err = client
        .changed_since(EntityKind::Patient, None)
        .await
        .expect_err("unauthorised");
    assert!(
        matches!(
            err.cause::<ClinikoError>(),
            Some(ClinikoError::Status { status: 401, .. })
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("not retryable"), "{text}");
    assert!(!text.contains(wrong) && !format!("{err:?}").contains(wrong));
    assert_eq!(client.requests_made(), 1, "no retries of a 401");
}

#[tokio::test]
async fn a_429_waits_for_x_ratelimit_reset() {
    // The simulator allows 3 requests a minute; the client's own pacing is off so it hits
    // the limit. The wait the header asks for (~60 s) is capped at 2 s here, and the
    // simulator's clock is moved past the window meanwhile, so the retry succeeds.
    let s = start(ClinikoConfig {
        rate_limit_per_minute: 3,
        ..Default::default()
    })
    .await;
    s.patient("A", "B");
    let mut cfg = s.config();
    cfg.max_rate_limit_wait = Duration::from_secs(2);
    let client = ClinikoClient::new(cfg).expect("client");
    for _ in 0..3 {
        client.taxes().await.expect("within the limit");
    }
    let clock = s.sim.clock.clone();
    let started = Instant::now();
    let (result, ()) = tokio::join!(client.changed_since(EntityKind::Patient, None), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        clock.advance(Duration::from_secs(61));
    });
    let elapsed = started.elapsed();
    assert_eq!(result.expect("succeeds after the reset").records.len(), 1);
    assert_eq!(client.requests_made(), 5, "one 429, then one success");
    assert!(
        elapsed >= Duration::from_millis(1900),
        "waited for the reset (capped), not the 1 ms backoff: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[tokio::test]
async fn rate_limited_to_the_end_is_a_retryable_rate_limit_error() {
    let s = start_default().await;
    s.sim.faults.add(FaultRule::rate_limit_burst(10));
    let mut cfg = s.config();
    cfg.max_attempts = 2;
    cfg.max_rate_limit_wait = Duration::from_millis(50);
    let client = ClinikoClient::new(cfg).expect("client");
    let err = client.businesses().await.expect_err("still throttled");
    assert!(
        matches!(
            err.cause::<ClinikoError>(),
            Some(ClinikoError::RateLimited { .. })
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(client.requests_made(), 2);
}

#[tokio::test]
async fn clones_share_the_request_counter() {
    let s = start_default().await;
    let client = s.client();
    let clone = client.clone();
    clone.taxes().await.expect("taxes");
    client.taxes().await.expect("taxes");
    assert_eq!(client.requests_made(), 2);
    assert_eq!(clone.requests_made(), 2);
}
