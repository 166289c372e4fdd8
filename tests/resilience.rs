//! Invariants under trouble: throttling, server errors, outages, crashes between the Reckon
//! write and our bookkeeping, and expiring tokens all end in the same Reckon state as a
//! clean run, with no duplicates.

use cliniko_reckon::domain::{ClinikoId, EntityKind};
use cliniko_reckon::ports::{Intent, StateStore};
use cliniko_reckon_e2e::{Harness, Options};
use serde_json::json;
use simulators::common::FaultRule;

fn object(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cliniko_429_storm_and_reckon_5xx_bursts_end_in_the_right_state() {
    let h = Harness::start(Options {
        patients: 30,
        seed: 5,
        ..Default::default()
    })
    .await;
    // Cliniko: the next dozen requests are throttled (their reset is a minute out, so the
    // client's capped wait and retries carry it through).
    h.cliniko.faults.add(FaultRule::rate_limit_burst(12));
    // Reckon: a burst of 503s, then one request in ten fails with 500/502/503.
    h.reckon
        .faults
        .add(FaultRule::fail_next("/r1/v2/*", 503, 8));
    h.reckon.faults.add(FaultRule {
        path: Some("/r1/v2/*".into()),
        error_rate: 0.1,
        ..Default::default()
    });
    let mut runs = 0;
    loop {
        runs += 1;
        let outcome = h.try_run().await;
        let failures = h.state().failures().await.unwrap();
        let clean = outcome
            .as_ref()
            .is_ok_and(|o| o.polls.errors.is_empty() && o.requeue_error.is_none());
        if clean && failures.is_empty() {
            break;
        }
        assert!(
            runs < 6,
            "still failing after {runs} runs: {outcome:?} {failures:?}"
        );
    }
    h.reckon.faults.clear();
    h.cliniko.faults.clear();
    let compared = h.assert_in_step().await;
    assert_eq!(compared.patients, h.seed.patients);
    let customers = h.reckon.with_book(|b, _| b.customers.len());
    assert_eq!(customers, h.seed.patients, "no duplicate customers");
    let invoices = h.reckon.with_book(|b, _| b.invoices.len());
    // Invoices archived or deleted before their first sync are never created.
    assert_eq!(invoices, compared.invoices, "no duplicate invoices");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_reckon_create_makes_no_duplicate() {
    let h = Harness::start(Options {
        patients: 12,
        ..Default::default()
    })
    .await;
    // Reckon creates the records but the answers never arrive: like a crash between the
    // Reckon write and the bookkeeping.
    h.reckon.faults.add(FaultRule {
        method: Some("POST".into()),
        path: Some("/r1/v2/*/customers".into()),
        drop_rate: 1.0,
        remaining: Some(5),
        ..Default::default()
    });
    h.reckon.faults.add(FaultRule {
        method: Some("POST".into()),
        path: Some("/r1/v2/*/invoices".into()),
        drop_rate: 1.0,
        remaining: Some(5),
        ..Default::default()
    });
    let (_, drained) = h.run().await;
    assert_eq!(drained.failed(), 0, "{drained:?}");
    let retried: u64 = drained.per_kind.values().map(|c| c.retried).sum();
    assert!(
        retried >= 10,
        "the dropped creates were retried: {drained:?}"
    );
    let compared = h.assert_in_step().await;
    assert_eq!(
        h.reckon.with_book(|b, _| b.customers.len()),
        h.seed.patients
    );
    assert_eq!(
        h.reckon.with_book(|b, _| b.invoices.len()),
        compared.invoices
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_create_is_found_by_its_marker() {
    let h = Harness::start(Options {
        patients: 5,
        ..Default::default()
    })
    .await;
    // A previous process stored its intent and created the customer, then died.
    let (id, name) = h.cliniko.with(|s| {
        let p = s.tables.patients.values().next().unwrap().clone();
        (p.id, format!("{} {}", p.first_name, p.last_name))
    });
    h.state()
        .put_intent(&Intent {
            kind: EntityKind::Patient,
            cliniko_id: ClinikoId(id),
            marker: name.clone(),
            started_at: chrono::Utc::now(),
            owner: String::new(),
        })
        .await
        .unwrap();
    h.reckon.with_book(|b, ctx| {
        b.create_customer(
            &json!({"name": name, "status": "Active", "entityTypes": {"isCustomer": true}}),
            ctx,
        )
        .unwrap()
    });
    h.run().await;
    assert_eq!(
        h.reckon.with_book(|b, _| b.customers.len()),
        h.seed.patients
    );
    assert!(
        h.state()
            .intent(EntityKind::Patient, ClinikoId(id))
            .await
            .unwrap()
            .is_none()
    );
    h.assert_in_step().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing() {
    let h = Harness::start(Options {
        patients: 15,
        ..Default::default()
    })
    .await;
    h.run().await;
    h.next_second().await;
    let new = h.cliniko.with(|s| {
        s.create_patient(&object(
            json!({"first_name": "During", "last_name": "Outage"}),
        ))
        .unwrap()
        .id
    });
    h.reckon.faults.set_outage(true);
    let (_, drained) = h.run().await;
    assert_eq!(
        drained.failed(),
        1,
        "the new patient waits as a failure: {drained:?}"
    );
    assert!(h.reckon_id(EntityKind::Patient, new).await.is_none());
    h.reckon.faults.set_outage(false);
    // The watermark moved past it; the next run still applies it.
    let (_, drained) = h.run().await;
    assert_eq!(drained.failed(), 0);
    assert!(h.reckon_id(EntityKind::Patient, new).await.is_some());
    assert!(h.state().failures().await.unwrap().is_empty());
    h.assert_in_step().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_refreshed_once() {
    let h = Harness::start(Options {
        patients: 5,
        ..Default::default()
    })
    .await;
    h.run().await;
    h.next_second().await;
    h.cliniko.with(|s| {
        for i in 0..3 {
            s.create_patient(&object(
                json!({"first_name": format!("Token{i}"), "last_name": "Expiry"}),
            ))
            .unwrap();
        }
    });
    h.reckon.expire_access_tokens();
    let before = h.reckon.traffic.count("POST", "/connect/token");
    let (_, drained) = h.run().await;
    assert_eq!(drained.per_kind[&EntityKind::Patient].created, 3);
    assert_eq!(h.reckon.traffic.count("POST", "/connect/token") - before, 1);
    h.assert_in_step().await;
}

/// A revoked Reckon connection stops the run with the reason and parks nothing: the work
/// waits in the queue, and after reconnecting the next run lands all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_connection_stops_the_run_and_keeps_the_work() {
    use cliniko_reckon::ports::{TokenSet, TokenStore};
    use secrecy::{ExposeSecret, SecretString};
    let h = Harness::start(Options {
        patients: 5,
        ..Default::default()
    })
    .await;
    h.run().await;
    h.next_second().await;
    h.cliniko.with(|s| {
        for i in 0..3 {
            s.create_patient(&object(
                json!({"first_name": format!("Revoked{i}"), "last_name": "Connection"}),
            ))
            .unwrap();
        }
    });
    let tokens = TokenStore::load(h.state()).await.unwrap().expect("tokens");
    h.reckon
        .state()
        .oauth
        .revoke(tokens.refresh_token.expose_secret());
    h.reckon.expire_access_tokens();
    let err = h
        .try_run()
        .await
        .expect_err("stops: Reckon must be reconnected");
    assert!(
        cliniko_reckon::pipeline::disposition::stops_tenant(&err),
        "{err}"
    );
    assert!(
        h.state().failures().await.unwrap().is_empty(),
        "nothing parked: the records are not at fault"
    );
    assert_eq!(
        h.state().queue_depth().unwrap().pending,
        3,
        "the work is kept"
    );

    // `connect` again, then the next run takes the waiting work.
    let pair = h.reckon.issue_tokens();
    TokenStore::save(
        h.state(),
        &TokenSet {
            access_token: SecretString::from(pair.access_token),
            refresh_token: SecretString::from(pair.refresh_token),
            expires_at: chrono::Utc::now() + chrono::Duration::seconds(pair.expires_in),
        },
    )
    .await
    .unwrap();
    let (_, drained) = h.run().await;
    assert_eq!(drained.per_kind[&EntityKind::Patient].created, 3);
    h.assert_in_step().await;
}
