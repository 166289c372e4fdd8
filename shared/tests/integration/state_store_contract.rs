//! One contract for the state store and one for the tenant directory, run against every adapter: SQLite (local mode) and
//! DynamoDB (moto; run via `scripts/with-moto`). What only one adapter does (DynamoDB's
//! conditional intent claims and TTLs, one table for many tenants) is tested beside it in
//! `aws_adapters.rs`.
#![cfg(feature = "aws")]

use crate::support;

use cliniko_reckon::adapters::sqlite::SqliteState;
use cliniko_reckon::domain::TenantId;
use cliniko_reckon::domain::{ClinikoId, EntityKind};
use cliniko_reckon::ports::{
    Failure, Intent, StateStore, TenantDirectory, TenantEntry, TenantStatus,
};
use support::{at, rid, xref};

async fn watermarks_never_move_backwards<St: StateStore>(s: &St) {
    assert_eq!(s.watermark(EntityKind::Patient).await.unwrap(), None);
    s.advance_watermark(EntityKind::Patient, at(10))
        .await
        .unwrap();
    s.advance_watermark(EntityKind::Patient, at(5))
        .await
        .unwrap();
    assert_eq!(
        s.watermark(EntityKind::Patient).await.unwrap(),
        Some(at(10))
    );
    s.advance_watermark(EntityKind::Patient, at(20))
        .await
        .unwrap();
    assert_eq!(
        s.watermark(EntityKind::Patient).await.unwrap(),
        Some(at(20))
    );
    assert_eq!(s.watermark(EntityKind::Invoice).await.unwrap(), None);
}

async fn cross_refs_are_version_guarded_and_exact<St: StateStore>(s: &St) {
    let id = ClinikoId(1_100_000_000_000_000_123);
    assert!(s.put_cross_ref(&xref(id, 10, "a")).await.unwrap());
    assert!(
        !s.put_cross_ref(&xref(id, 5, "old")).await.unwrap(),
        "older version refused"
    );
    let got = s.cross_ref(EntityKind::Patient, id).await.unwrap().unwrap();
    assert_eq!(got.content_hash, "a", "the stale write changed nothing");
    assert!(
        s.put_cross_ref(&xref(id, 10, "b")).await.unwrap(),
        "same version may re-record"
    );
    let got = s.cross_ref(EntityKind::Patient, id).await.unwrap().unwrap();
    assert_eq!(got, xref(id, 10, "b"));
    assert_eq!(got.cliniko_id, id, "64-bit ids stay exact");
    let by_reckon = |kind, n| async move { s.cross_ref_by_reckon(kind, rid(n)).await.unwrap() };
    assert_eq!(
        by_reckon(EntityKind::Patient, 7)
            .await
            .map(|x| x.cliniko_id),
        Some(id)
    );
    assert_eq!(by_reckon(EntityKind::Patient, 8).await, None);
    assert_eq!(by_reckon(EntityKind::Product, 7).await, None);
    let owner = |kind, name: &'static str| async move { s.name_owner(kind, name).await.unwrap() };
    assert_eq!(
        owner(EntityKind::Patient, "siobhán o'brien").await,
        Some(id),
        "names compare case-insensitively"
    );
    assert_eq!(owner(EntityKind::Product, "Siobhán O'Brien").await, None);
    assert_eq!(
        s.cross_ref(EntityKind::Patient, ClinikoId(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.links(EntityKind::Patient).await.unwrap(),
        vec![(id, rid(7))]
    );

    // Re-pointed and renamed: the old Reckon id and the old name no longer find it.
    let mut moved = xref(id, 11, "c");
    moved.reckon_id = rid(9);
    moved.reckon_name = Some("Siobhan O'Brien (2)".into());
    assert!(s.put_cross_ref(&moved).await.unwrap());
    assert_eq!(by_reckon(EntityKind::Patient, 7).await, None);
    assert_eq!(by_reckon(EntityKind::Patient, 9).await, Some(moved.clone()));
    assert_eq!(owner(EntityKind::Patient, "Siobhán O'Brien").await, None);
    assert_eq!(
        owner(EntityKind::Patient, "SIOBHAN O'BRIEN (2)").await,
        Some(id)
    );
    // No name at all: nothing owns a name for it.
    let mut nameless = moved.clone();
    nameless.version = at(12);
    nameless.reckon_name = None;
    assert!(s.put_cross_ref(&nameless).await.unwrap());
    assert_eq!(
        owner(EntityKind::Patient, "Siobhan O'Brien (2)").await,
        None
    );
    assert_eq!(
        s.cross_ref(EntityKind::Patient, id).await.unwrap(),
        Some(nameless)
    );
}

async fn a_forgotten_cross_ref_frees_its_name_only_while_it_points_at_the_gone_record<
    St: StateStore,
>(
    s: &St,
) {
    let id = ClinikoId(77);
    assert!(s.put_cross_ref(&xref(id, 10, "a")).await.unwrap());
    assert!(
        !s.forget_cross_ref(EntityKind::Patient, id, rid(8))
            .await
            .unwrap(),
        "it points at another Reckon record: kept"
    );
    assert!(
        s.cross_ref(EntityKind::Patient, id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.forget_cross_ref(EntityKind::Patient, id, rid(7))
            .await
            .unwrap()
    );
    assert_eq!(s.cross_ref(EntityKind::Patient, id).await.unwrap(), None);
    assert_eq!(
        s.cross_ref_by_reckon(EntityKind::Patient, rid(7))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.name_owner(EntityKind::Patient, "Siobhán O'Brien")
            .await
            .unwrap(),
        None,
        "the name claim went with it"
    );
    assert!(s.links(EntityKind::Patient).await.unwrap().is_empty());
}

async fn concurrent_cross_ref_puts_never_regress<St: StateStore + Clone + 'static>(s: &St) {
    let id = ClinikoId(42);
    // Two writers race over versions 1..=30 in opposite orders; a reader watches.
    let writer = |s: St, versions: Vec<i64>| {
        tokio::spawn(async move {
            for v in versions {
                s.put_cross_ref(&xref(id, v, &format!("h{v}")))
                    .await
                    .unwrap();
            }
        })
    };
    let a = writer(s.clone(), (1..=30).collect());
    let b = writer(s.clone(), (1..=30).rev().collect());
    let reader = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..40 {
                if let Some(x) = s.cross_ref(EntityKind::Patient, id).await.unwrap() {
                    seen.push(x.version);
                }
            }
            seen
        })
    };
    a.await.unwrap();
    b.await.unwrap();
    let seen = reader.await.unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "a reader saw the version go backwards: {seen:?}"
    );
    let last = s.cross_ref(EntityKind::Patient, id).await.unwrap().unwrap();
    assert_eq!(last.version, at(30));
    assert_eq!(last.content_hash, "h30");
}

async fn intents_reserve_names_until_cleared<St: StateStore>(s: &St) {
    let i = Intent {
        kind: EntityKind::Patient,
        cliniko_id: ClinikoId(9),
        marker: "Jane Citizen".into(),
        started_at: at(1),
        owner: "worker-a".into(),
    };
    assert!(s.put_intent(&i).await.unwrap(), "claimed");
    assert_eq!(
        s.intent(EntityKind::Patient, ClinikoId(9))
            .await
            .unwrap()
            .map(|x| x.marker),
        Some(i.marker.clone())
    );
    assert_eq!(
        s.name_owner(EntityKind::Patient, "jane CITIZEN")
            .await
            .unwrap(),
        Some(ClinikoId(9))
    );
    s.clear_intent(EntityKind::Patient, ClinikoId(9))
        .await
        .unwrap();
    assert_eq!(
        s.intent(EntityKind::Patient, ClinikoId(9)).await.unwrap(),
        None
    );
    assert_eq!(
        s.name_owner(EntityKind::Patient, "Jane Citizen")
            .await
            .unwrap(),
        None
    );
}

async fn failures_round_trip<St: StateStore>(s: &St) {
    let f = Failure {
        kind: EntityKind::Invoice,
        cliniko_id: ClinikoId(5),
        version: at(3),
        error: "Reckon refused: taxRate".into(),
        retryable: false,
        attempts: 2,
        last_at: at(4),
    };
    let g = Failure {
        kind: EntityKind::Patient,
        cliniko_id: ClinikoId(6),
        version: at(3),
        error: "timeout".into(),
        retryable: true,
        attempts: 1,
        last_at: at(9),
    };
    s.record_failure(&f).await.unwrap();
    s.record_failure(&g).await.unwrap();
    let sorted = |mut v: Vec<Failure>| {
        v.sort_by_key(|f| (f.kind, f.cliniko_id.0));
        v
    };
    assert_eq!(
        sorted(s.failures().await.unwrap()),
        sorted(vec![g.clone(), f.clone()])
    );
    let mut f2 = f.clone();
    f2.attempts = 3;
    s.record_failure(&f2).await.unwrap();
    assert_eq!(
        sorted(s.failures().await.unwrap()),
        sorted(vec![g.clone(), f2])
    );
    s.clear_failure(EntityKind::Invoice, ClinikoId(5))
        .await
        .unwrap();
    assert_eq!(s.failures().await.unwrap(), vec![g]);
}

/// Each contract test, once per adapter.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let s = SqliteState::open(&dir.path().join("state.sqlite")).unwrap();
                    super::$name(&s).await;
                }
            )*
        }
        mod dynamo {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(config) = support::moto().await else { return };
                    super::$name(&support::state(&config).await).await;
                }
            )*
        }
    };
}

contract!(
    watermarks_never_move_backwards,
    cross_refs_are_version_guarded_and_exact,
    a_forgotten_cross_ref_frees_its_name_only_while_it_points_at_the_gone_record,
    concurrent_cross_ref_puts_never_regress,
    intents_reserve_names_until_cleared,
    failures_round_trip,
);

fn tenant(id: &str, config: &str) -> TenantEntry {
    TenantEntry {
        id: TenantId::new(id).unwrap(),
        config: config.into(),
        status: TenantStatus::Active,
        reason: None,
        added_at: at(0),
        changed_at: at(0),
    }
}

/// The tenant directory: added, listed in id order, re-configured keeping the status,
/// paused with a reason and resumed; an unknown tenant is said to be unknown.
async fn tenants_are_added_paused_resumed_and_reconfigured<D, St>(d: &D, _: &St, _: &St)
where
    D: TenantDirectory,
    St: StateStore,
{
    assert!(d.tenants().await.unwrap().is_empty());
    d.put_tenant(&tenant("clinic-b", "b-1")).await.unwrap();
    d.put_tenant(&tenant("clinic-a", "a-1")).await.unwrap();
    let ids: Vec<String> = d
        .tenants()
        .await
        .unwrap()
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(ids, ["clinic-a", "clinic-b"]);
    let a = TenantId::new("clinic-a").unwrap();
    assert!(
        d.set_tenant_status(&a, TenantStatus::Paused, Some("month-end"), at(5))
            .await
            .unwrap()
    );
    let mut again = tenant("clinic-a", "a-2");
    again.added_at = at(9);
    d.put_tenant(&again).await.unwrap();
    let got = d.tenant(&a).await.unwrap().unwrap();
    assert_eq!(got.config, "a-2", "the configuration is replaced");
    assert_eq!(got.status, TenantStatus::Paused, "the status is kept");
    assert_eq!(got.reason.as_deref(), Some("month-end"));
    assert_eq!((got.added_at, got.changed_at), (at(0), at(5)));
    assert!(
        d.set_tenant_status(&a, TenantStatus::Active, None, at(6))
            .await
            .unwrap()
    );
    let got = d.tenant(&a).await.unwrap().unwrap();
    assert_eq!((got.status, got.reason), (TenantStatus::Active, None));
    let nobody = TenantId::new("clinic-z").unwrap();
    assert!(d.tenant(&nobody).await.unwrap().is_none());
    assert!(
        !d.set_tenant_status(&nobody, TenantStatus::Paused, None, at(7))
            .await
            .unwrap()
    );
    assert!(
        d.tenant(&nobody).await.unwrap().is_none(),
        "no item made by a status change"
    );
}

/// Removing a tenant removes its registration and its state, and nothing of another's.
async fn removing_a_tenant_removes_its_state_only<D, St>(d: &D, a: &St, b: &St)
where
    D: TenantDirectory,
    St: StateStore,
{
    d.put_tenant(&tenant("clinic-a", "a")).await.unwrap();
    d.put_tenant(&tenant("clinic-b", "b")).await.unwrap();
    for s in [a, b] {
        s.advance_watermark(EntityKind::Patient, at(10))
            .await
            .unwrap();
        assert!(s.put_cross_ref(&xref(ClinikoId(1), 1, "h")).await.unwrap());
    }
    assert!(
        d.remove_tenant(&TenantId::new("clinic-a").unwrap())
            .await
            .unwrap()
    );
    assert!(
        !d.remove_tenant(&TenantId::new("clinic-a").unwrap())
            .await
            .unwrap()
    );
    assert_eq!(a.watermark(EntityKind::Patient).await.unwrap(), None);
    assert!(
        a.cross_ref(EntityKind::Patient, ClinikoId(1))
            .await
            .unwrap()
            .is_none()
    );
    assert!(a.links(EntityKind::Patient).await.unwrap().is_empty());
    assert_eq!(
        b.watermark(EntityKind::Patient).await.unwrap(),
        Some(at(10))
    );
    assert_eq!(
        b.links(EntityKind::Patient).await.unwrap(),
        vec![(ClinikoId(1), rid(7))]
    );
    let left: Vec<String> = d
        .tenants()
        .await
        .unwrap()
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(left, ["clinic-b"]);
}

/// Each directory contract test, once per adapter: the directory and two tenants' state.
macro_rules! directory_contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite_directory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let s = SqliteState::open(&dir.path().join("state.sqlite")).unwrap();
                    let a = s.for_tenant(&TenantId::new("clinic-a").unwrap());
                    let b = s.for_tenant(&TenantId::new("clinic-b").unwrap());
                    super::$name(&s, &a, &b).await;
                }
            )*
        }
        mod dynamo_directory {
            use super::*;
            use cliniko_reckon::adapters::aws::{DynamoState, DynamoTenants};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(config) = support::moto().await else { return };
                    let client = aws_sdk_dynamodb::Client::new(&config);
                    let table = support::unique("tenants");
                    support::create_table_named(&client, &table).await;
                    let a = DynamoState::new(client.clone(), table.clone(), "clinic-a").unwrap();
                    let b = DynamoState::new(client.clone(), table.clone(), "clinic-b").unwrap();
                    super::$name(&DynamoTenants::new(client, table), &a, &b).await;
                }
            )*
        }
    };
}

directory_contract!(
    tenants_are_added_paused_resumed_and_reconfigured,
    removing_a_tenant_removes_its_state_only,
);
