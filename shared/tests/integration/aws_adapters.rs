//! The AWS adapters against a local AWS emulator (moto server). Run them with
//! `scripts/with-moto cargo test -p cliniko-reckon --features aws --test integration aws_adapters`.
//! Each test makes its own table, queues and secrets (unique names), so they run in parallel.
#![cfg(feature = "aws")]

use crate::support;

use support::{at, create_table_named, moto, rid, state, unique};

use chrono::Utc;
use cliniko_reckon::adapters::aws::{
    AppSecretsError, DecodeError, DynamoState, MAX_MESSAGE_BYTES, QueueUrls, SecretsTokenStore,
    SqsQueue, TokenLease, decode_message, load_app_secrets,
};
use cliniko_reckon::domain::{
    Address, BillableItem, ClinikoId, EntityKind, Invoice, InvoiceStatus, Patient, Product,
    ReckonId, Record, TaxCalculation,
};
use cliniko_reckon::ports::{
    AuditEntry, Intent, Outcome, StateStore, TokenSet, TokenStore, WorkItem, WorkQueue,
};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::time::Duration;

fn patient(id: u64, updated: i64) -> Record {
    Record::Patient(Patient {
        id: ClinikoId(id),
        title: None,
        first_name: "Siobhán".into(),
        last_name: "O'Brien".into(),
        preferred_first_name: None,
        email: None,
        invoice_email: None,
        address: Address::default(),
        phones: vec![],
        archived_at: None,
        merged_at: None,
        merged_into: None,
        created_at: at(0),
        updated_at: at(updated),
    })
}

fn product(id: u64) -> Record {
    Record::Product(Product {
        id: ClinikoId(id),
        name: "Foam roller".into(),
        item_code: Some("FR-1".into()),
        price_ex_tax: Some(Decimal::new(2995, 2)),
        price_including_tax: None,
        tax_id: None,
        stock_level: Some(Decimal::new(3, 0)),
        archived_at: None,
        created_at: at(0),
        updated_at: at(1),
    })
}

fn billable_item(id: u64) -> Record {
    Record::BillableItem(BillableItem {
        id: ClinikoId(id),
        name: "Initial consult".into(),
        item_code: None,
        item_type: "Service".into(),
        price: Decimal::new(9500, 2),
        tax_id: None,
        archived_at: None,
        created_at: at(0),
        updated_at: at(2),
    })
}

fn invoice(id: u64) -> Record {
    Record::Invoice(Invoice {
        id: ClinikoId(id),
        number: 1000 + id as i64,
        issue_date: None,
        status: InvoiceStatus::Open,
        calculation: TaxCalculation::Exclusive,
        total_amount: Decimal::new(10450, 2),
        net_amount: Decimal::new(9500, 2),
        tax_amount: Decimal::new(950, 2),
        notes: None,
        patient_id: Some(ClinikoId(1)),
        business_id: None,
        appointment_id: None,
        closed_at: None,
        archived_at: None,
        deleted_at: None,
        created_at: at(0),
        updated_at: at(3),
        items: vec![],
        original_invoice_id: None,
        reversals: vec![],
    })
}

/// One table serves many tenants: each sees only its own state (the rest of the state
/// store's behaviour is the contract in state_store_contract.rs).
#[tokio::test]
async fn tenants_share_a_table_without_seeing_each_other() {
    let Some(config) = moto().await else { return };
    let s = state(&config).await;
    s.advance_watermark(EntityKind::Patient, at(20))
        .await
        .unwrap();
    assert_eq!(
        s.watermarks().await.unwrap(),
        vec![(EntityKind::Patient, at(20))]
    );

    // Another tenant in the same table sees nothing of clinic-1's state.
    let other = DynamoState::new(s.client().clone(), s.table(), "clinic-2").unwrap();
    assert_eq!(other.watermark(EntityKind::Patient).await.unwrap(), None);
    assert!(DynamoState::new(s.client().clone(), s.table(), "bad#tenant").is_err());
}

#[tokio::test]
async fn intents_reserve_names_until_cleared_and_expire() {
    let Some(config) = moto().await else { return };
    let s = state(&config).await;
    let i = Intent {
        kind: EntityKind::Patient,
        cliniko_id: ClinikoId(9),
        marker: "Jane Citizen".into(),
        started_at: at(1),
        owner: "worker-a".into(),
    };
    assert!(s.put_intent(&i).await.unwrap(), "claimed");
    assert_eq!(
        s.intent(EntityKind::Patient, ClinikoId(9)).await.unwrap(),
        Some(i.clone())
    );
    // Two workers can never both create one record: another worker's claim a minute
    // later is refused; the same worker may retry its own; after INTENT_CLAIM the
    // crashed attempt's intent is taken over.
    let other = |minutes: i64| Intent {
        owner: "worker-b".into(),
        started_at: i.started_at + chrono::TimeDelta::minutes(minutes),
        ..i.clone()
    };
    assert!(
        !s.put_intent(&other(1)).await.unwrap(),
        "another worker is refused"
    );
    assert!(
        s.put_intent(&Intent {
            started_at: i.started_at + chrono::TimeDelta::seconds(30),
            ..i.clone()
        })
        .await
        .unwrap(),
        "the same worker retries"
    );
    assert!(
        s.put_intent(&other(6)).await.unwrap(),
        "a stale claim is taken over"
    );
    assert!(
        !s.put_intent(&i).await.unwrap(),
        "and not taken back by the old attempt"
    );
    s.clear_intent(EntityKind::Patient, ClinikoId(9))
        .await
        .unwrap();
    assert!(s.put_intent(&i).await.unwrap());
    assert_eq!(
        s.name_owner(EntityKind::Patient, "jane CITIZEN")
            .await
            .unwrap(),
        Some(ClinikoId(9))
    );

    // The TTL attribute is there: Unix seconds, about 7 days out.
    let raw = s
        .client()
        .get_item()
        .table_name(s.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("T#clinic-1#INTENT#patient".into()),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("9".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let expires: i64 = raw
        .get("expires_at")
        .and_then(|v| v.as_n().ok())
        .unwrap()
        .parse()
        .unwrap();
    let in_days = (expires - Utc::now().timestamp()) as f64 / 86_400.0;
    assert!((6.9..=7.1).contains(&in_days), "expires in {in_days} days");
}

/// The audit log by day (DynamoDB's own reader; the failures are in the state-store contract).
#[tokio::test]
async fn audit_entries_are_kept_by_day_in_time_order() {
    let Some(config) = moto().await else { return };
    let s = state(&config).await;
    let e1 = AuditEntry {
        at: at(5),
        kind: EntityKind::Patient,
        cliniko_id: ClinikoId(1),
        version: at(1),
        outcome: Outcome::Created,
        reckon_id: Some(rid(1)),
        detail: "created".into(),
    };
    let e2 = AuditEntry {
        at: at(6),
        kind: EntityKind::Invoice,
        cliniko_id: ClinikoId(2),
        version: at(2),
        outcome: Outcome::Skipped,
        reckon_id: None,
        detail: "withdrawn invoice".into(),
    };
    s.audit(&e2).await.unwrap();
    s.audit(&e1).await.unwrap();
    s.audit(&e1).await.unwrap();
    assert_eq!(
        s.audit_for_day(at(5).date_naive()).await.unwrap(),
        vec![e1.clone(), e1, e2],
        "every entry is kept, in time order"
    );
}

fn queue_url_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

async fn receive_all(client: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for m in messages {
            bodies.push(m.body.unwrap());
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

async fn queues(config: &aws_config::SdkConfig) -> (aws_sdk_sqs::Client, QueueUrls) {
    let client = aws_sdk_sqs::Client::new(config);
    let mut urls = Vec::new();
    for name in ["patients", "products", "invoices"] {
        let out = client
            .create_queue()
            .queue_name(unique(name))
            .send()
            .await
            .unwrap();
        urls.push(out.queue_url.unwrap());
    }
    let urls = QueueUrls {
        patients: urls[0].clone(),
        products: urls[1].clone(),
        invoices: urls[2].clone(),
    };
    (client, urls)
}

#[tokio::test]
async fn queue_batches_and_routes_work_items() {
    let Some(config) = moto().await else { return };
    let (client, urls) = queues(&config).await;
    let clinic = cliniko_reckon::domain::TenantId::new("clinic-7").unwrap();
    let q = SqsQueue::new(client.clone(), urls.clone()).for_tenant(clinic.clone());
    let mut items: Vec<WorkItem> = (1..=25)
        .map(|i| WorkItem::new(patient(1_100_000_000_000_000_000 + i, i as i64), at(100)))
        .collect();
    items.push(WorkItem::new(product(7), at(100)));
    items.push(WorkItem::new(billable_item(8), at(100)));
    items.push(WorkItem::new(invoice(9), at(100)));
    q.enqueue(items.clone()).await.unwrap();
    // Every message names the tenant whose queue sent it.
    for item in &mut items {
        item.tenant = clinic.clone();
    }

    let mut got: HashMap<&str, Vec<WorkItem>> = HashMap::new();
    for (route, url) in [
        ("patients", &urls.patients),
        ("products", &urls.products),
        ("invoices", &urls.invoices),
    ] {
        for body in receive_all(&client, url).await {
            got.entry(route)
                .or_default()
                .push(decode_message(&body).unwrap());
        }
        assert!(queue_url_name(url).starts_with(route));
    }
    let sorted = |mut v: Vec<WorkItem>| {
        v.sort_by_key(|w| (w.record.kind().as_str(), w.record.id()));
        v
    };
    assert_eq!(
        sorted(got.remove("patients").unwrap_or_default()),
        sorted(items[..25].to_vec()),
        "all 25 patients, exactly, on the patients queue"
    );
    assert_eq!(
        sorted(got.remove("products").unwrap_or_default()),
        sorted(items[25..27].to_vec()),
        "products and billable items share the products queue"
    );
    assert_eq!(
        got.remove("invoices").unwrap_or_default(),
        items[27..].to_vec()
    );
}

#[tokio::test]
async fn oversized_messages_are_handed_back_and_the_rest_sent() {
    let Some(config) = moto().await else { return };
    let (client, urls) = queues(&config).await;
    let q = SqsQueue::new(client.clone(), urls.clone());
    let mut big = patient(77, 1);
    if let Record::Patient(p) = &mut big {
        p.last_name = "x".repeat(MAX_MESSAGE_BYTES);
    }
    let refused = q
        .enqueue(vec![
            WorkItem::new(patient(76, 1), at(0)),
            WorkItem::new(big, at(0)),
        ])
        .await
        .unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].cliniko_id, ClinikoId(77));
    assert!(
        refused[0].reason.contains("patient 77"),
        "{}",
        refused[0].reason
    );
    assert!(
        refused[0].reason.contains("over SQS's limit"),
        "{}",
        refused[0].reason
    );
    let sent = receive_all(&client, &urls.patients).await;
    assert_eq!(sent.len(), 1, "the record beside it was sent");

    // Nine messages of ~100 KiB each go out in batches under the size limit.
    let items: Vec<WorkItem> = (0..9)
        .map(|i| {
            let mut r = patient(100 + i, 1);
            if let Record::Patient(p) = &mut r {
                p.last_name = "y".repeat(100 * 1024);
            }
            WorkItem::new(r, at(0))
        })
        .collect();
    q.enqueue(items).await.unwrap();
    assert_eq!(receive_all(&client, &urls.patients).await.len(), 9);
}

#[test]
fn decode_refuses_newer_schemas() {
    let item = WorkItem::new(patient(5, 1), at(0));
    let mut body: serde_json::Value = serde_json::to_value(&item).unwrap();
    assert_eq!(decode_message(&body.to_string()).unwrap(), item);
    body["schema"] = serde_json::json!(0);
    assert!(
        decode_message(&body.to_string()).is_ok(),
        "older schemas are read"
    );
    body["schema"] = serde_json::json!(cliniko_reckon::ports::WORK_SCHEMA + 1);
    let err = decode_message(&body.to_string()).unwrap_err();
    assert!(matches!(err, DecodeError::TooNew { .. }), "{err}");
    assert!(err.to_string().contains("patient 5"), "{err}");
}

#[tokio::test]
async fn token_store_saves_and_loads_with_rotation() {
    let Some(config) = moto().await else { return };
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let store = SecretsTokenStore::new(client.clone(), unique("reckon-tokens"));
    assert!(store.load().await.unwrap().is_none(), "no secret yet");
    store
        .save(&TokenSet {
            access_token: SecretString::from("access-1"),
            refresh_token: SecretString::from("refresh-1"),
            expires_at: at(100),
        })
        .await
        .unwrap();
    store
        .save(&TokenSet {
            access_token: SecretString::from("access-2"),
            refresh_token: SecretString::from("refresh-2"),
            expires_at: at(200),
        })
        .await
        .unwrap();
    let t = store.load().await.unwrap().unwrap();
    assert_eq!(t.access_token.expose_secret(), "access-2");
    assert_eq!(
        t.refresh_token.expose_secret(),
        "refresh-2",
        "the rotated token"
    );
    assert_eq!(t.expires_at, at(200));
    let debug = format!("{store:?} {t:?}");
    assert!(
        !debug.contains("refresh-2") && !debug.contains("access-2"),
        "{debug}"
    );

    // A placeholder secret (as a stack may create it) means "not connected yet".
    let placeholder = unique("reckon-tokens");
    client
        .create_secret()
        .name(&placeholder)
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    let store = SecretsTokenStore::new(client.clone(), placeholder);
    assert!(store.load().await.unwrap().is_none());
    // So is the one the CDK stack creates: every field an empty string.
    let stack_placeholder = unique("reckon-tokens");
    client
        .create_secret()
        .name(&stack_placeholder)
        .secret_string(r#"{"access_token":"","refresh_token":"","expires_at":""}"#)
        .send()
        .await
        .unwrap();
    let store = SecretsTokenStore::new(client.clone(), stack_placeholder);
    assert!(store.load().await.unwrap().is_none());

    // A corrupt secret is an error that does not quote the secret.
    let corrupt = unique("reckon-tokens");
    client
        .create_secret()
        .name(&corrupt)
        .secret_string(r#"{"access_token": "sekrit-value", "refresh_token": 5}"#)
        .send()
        .await
        .unwrap();
    let err = SecretsTokenStore::new(client, corrupt)
        .load()
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("sekrit"), "{err}");
}

#[tokio::test]
async fn app_secrets_are_read_once_as_secrets() {
    let Some(config) = moto().await else { return };
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let (cliniko, reckon) = (unique("cliniko"), unique("reckon-app"));
    client
        .create_secret()
        .name(&cliniko)
        .secret_string("MS0xLWNsaW5pa28ta2V5-au1")
        .send()
        .await
        .unwrap();
    client
        .create_secret()
        .name(&reckon)
        .secret_string(
            r#"{"client_id": "app-1", "client_secret": "cs-secret", "subscription_key": "sub-secret"}"#,
        )
        .send()
        .await
        .unwrap();
    let s = load_app_secrets(&client, &cliniko, &reckon).await.unwrap();
    assert_eq!(
        s.cliniko_api_key.expose_secret(),
        "MS0xLWNsaW5pa28ta2V5-au1"
    );
    assert_eq!(s.reckon.client_id, "app-1");
    assert_eq!(s.reckon.client_secret.expose_secret(), "cs-secret");
    assert_eq!(s.reckon.subscription_key.expose_secret(), "sub-secret");
    let debug = format!("{s:?}");
    assert!(
        !debug.contains("cs-secret") && !debug.contains("sub-secret") && !debug.contains("MS0x"),
        "{debug}"
    );
    let missing = load_app_secrets(&client, &unique("nope"), &reckon)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, AppSecretsError::Missing { .. }),
        "{missing}"
    );
}

#[tokio::test]
async fn token_lease_is_exclusive_and_released_only_by_its_owner() {
    let Some(config) = moto().await else { return };
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("lease");
    create_table_named(&client, &table).await;
    let lease = |owner: &str, ttl: Duration| {
        TokenLease::new(client.clone(), table.clone(), "clinic-1", owner, ttl).unwrap()
    };
    let a = lease("lambda-a", Duration::from_secs(30));
    let b = lease("lambda-b", Duration::from_secs(30));

    let guard = a
        .try_acquire()
        .await
        .unwrap()
        .expect("a takes the free lease");
    assert!(b.try_acquire().await.unwrap().is_none(), "b is kept out");
    assert!(!b.release().await.unwrap(), "b cannot release a's lease");
    assert_eq!(a.holder().await.unwrap().unwrap().0, "lambda-a");
    assert!(
        b.acquire_waiting(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none(),
        "waiting does not help while a holds it"
    );
    assert!(guard.release().await.unwrap());
    assert!(a.holder().await.unwrap().is_none());
    let guard_b = b
        .try_acquire()
        .await
        .unwrap()
        .expect("b takes it once free");
    assert!(!a.release().await.unwrap(), "a cannot release b's lease");
    assert!(guard_b.release().await.unwrap());

    // A lease that ran out (a crashed holder) can be taken over.
    let short = lease("lambda-crashed", Duration::from_millis(200));
    let _abandoned = short.try_acquire().await.unwrap().unwrap();
    let taken = b
        .acquire_waiting(Duration::from_secs(5))
        .await
        .unwrap()
        .expect("b takes over the expired lease");
    assert!(
        !short.release().await.unwrap(),
        "the old holder no longer owns it"
    );
    assert!(taken.release().await.unwrap());

    // Another tenant's lease is independent.
    let other = TokenLease::new(
        client.clone(),
        table.clone(),
        "clinic-2",
        "lambda-a",
        Duration::from_secs(30),
    )
    .unwrap();
    let g1 = a.try_acquire().await.unwrap().unwrap();
    let g2 = other.try_acquire().await.unwrap().unwrap();
    assert!(g1.release().await.unwrap() && g2.release().await.unwrap());
}

/// Three "Lambdas" (each its own Reckon client, token manager and lease owner) find the
/// stored access token expired at the same moment. Reckon's refresh tokens are single-use,
/// so without the lease two of them would redeem a dead token and need re-authorisation;
/// with it exactly one refreshes, the others re-read the secret and reuse its new pair.
#[tokio::test]
async fn concurrent_functions_refresh_the_reckon_tokens_once_through_the_lease() {
    use cliniko_reckon::adapters::aws::LeasedTokenStore;
    use cliniko_reckon::ports::CustomerSink;
    use cliniko_reckon::reckon::{ReckonClient, ReckonClientConfig};
    use simulators::reckon::{DEFAULT_SUBSCRIPTION_KEY, ReckonConfig, ReckonSim};

    let Some(config) = moto().await else { return };
    let sim = ReckonSim::new(ReckonConfig {
        rate_limit_per_minute: 0,
        ..Default::default()
    });
    let server = sim.start("127.0.0.1", 0).await.expect("simulator starts");
    let origin = server.origin();

    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("lease");
    create_table_named(&dynamo, &table).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let secret_id = unique("reckon-tokens");
    let pair = sim.issue_tokens();
    SecretsTokenStore::new(secrets.clone(), secret_id.clone())
        .save(&TokenSet {
            access_token: SecretString::from(pair.access_token),
            refresh_token: SecretString::from(pair.refresh_token.clone()),
            // Expired: every function's first call must refresh.
            expires_at: Utc::now() - chrono::TimeDelta::minutes(1),
        })
        .await
        .unwrap();

    let function = |n: usize| {
        let oauth = &sim.config().oauth;
        let mut c = ReckonClientConfig::new(
            oauth.client_id.clone(),
            SecretString::from(oauth.client_secret.clone()),
            SecretString::from(DEFAULT_SUBSCRIPTION_KEY.to_string()),
            ReckonId(sim.book_id()),
            url::Url::parse("http://127.0.0.1:1/callback").unwrap(),
            "Undeposited Funds",
        )
        .unwrap();
        c.api_base_url = url::Url::parse(&format!("{origin}/r1/v2")).unwrap();
        c.identity_url = url::Url::parse(&origin).unwrap();
        c.requests_per_minute = 0;
        let lease = TokenLease::new(
            dynamo.clone(),
            table.clone(),
            "clinic-1",
            format!("lambda-{n}"),
            Duration::from_secs(30),
        )
        .unwrap();
        let store = LeasedTokenStore::new(
            SecretsTokenStore::new(secrets.clone(), secret_id.clone()),
            lease,
            Duration::from_secs(45),
        );
        ReckonClient::new(c, store).unwrap()
    };
    let (a, b, c) = (function(1), function(2), function(3));
    let (ra, rb, rc) = tokio::join!(a.customers(), b.customers(), c.customers());
    ra.expect("function 1 reads Reckon");
    rb.expect("function 2 reads Reckon");
    rc.expect("function 3 reads Reckon");

    assert_eq!(
        sim.state().oauth.refreshes,
        1,
        "one refresh across three functions"
    );
    let stored = SecretsTokenStore::new(secrets.clone(), secret_id.clone())
        .load()
        .await
        .unwrap()
        .expect("tokens stored");
    assert_ne!(
        stored.refresh_token.expose_secret(),
        &pair.refresh_token,
        "the rotated refresh token is in the secret"
    );
    assert!(stored.expires_at > Utc::now() + chrono::TimeDelta::hours(1));
    assert!(
        a.tokens().store().lease().holder().await.unwrap().is_none(),
        "the lease is released after the refresh"
    );
    // The secret's refresh token is the live one.
    sim.expire_access_tokens();
    a.customers()
        .await
        .expect("refreshes again with the stored token");
    assert_eq!(sim.state().oauth.refreshes, 2);
}
