//! The Reckon One client against the in-process Reckon simulator: OAuth (code flow, refresh
//! rotation, single-flight refresh, dead refresh tokens), customers, items, invoices with
//! Reckon's totals, receipts, validation errors, 429 and 5xx retries.

use chrono::{NaiveDate, TimeDelta, Utc};
use cliniko_reckon::domain::{
    ActiveStatus, AmountTaxStatus, CustomerDraft, InvoiceDraft, InvoiceLineDraft, ItemDraft,
    ItemType, LineTarget, ReckonAddress, ReckonId, ReckonInvoiceStatus, ReckonPhone,
};
use cliniko_reckon::ports::{
    CustomerSink, ErrorClass, InvoiceSink, ItemSink, PaymentDraft, TokenSet,
};
use cliniko_reckon::reckon::{MemoryTokenStore, ReckonClient, ReckonClientConfig, ReckonError};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use simulators::common::{FaultRule, RunningServer};
use simulators::reckon::{DEFAULT_SUBSCRIPTION_KEY, ReckonConfig, ReckonSim};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:1/callback";

struct Env {
    sim: ReckonSim,
    _server: RunningServer,
    origin: String,
}

async fn start() -> Env {
    let sim = ReckonSim::new(ReckonConfig {
        rate_limit_per_minute: 0,
        ..Default::default()
    });
    let server = sim.start("127.0.0.1", 0).await.expect("simulator starts");
    let origin = server.origin();
    Env {
        sim,
        _server: server,
        origin,
    }
}

impl Env {
    fn config(&self) -> ReckonClientConfig {
        let oauth = &self.sim.config().oauth;
        let mut c = ReckonClientConfig::new(
            oauth.client_id.clone(),
            SecretString::from(oauth.client_secret.clone()),
            SecretString::from(DEFAULT_SUBSCRIPTION_KEY.to_string()),
            ReckonId(self.sim.book_id()),
            Url::parse(REDIRECT).expect("url"),
            "Undeposited Funds",
        )
        .expect("config");
        c.api_base_url = Url::parse(&format!("{}/r1/v2", self.origin)).expect("url");
        c.identity_url = Url::parse(&self.origin).expect("url");
        c.requests_per_minute = 0;
        c.max_attempts = 4;
        c.backoff_base = Duration::from_millis(5);
        c.max_backoff = Duration::from_secs(3);
        c
    }

    /// A store holding a fresh pair minted by the simulator.
    fn store(&self, expires_in: TimeDelta) -> MemoryTokenStore {
        let pair = self.sim.issue_tokens();
        MemoryTokenStore::with_tokens(TokenSet {
            access_token: SecretString::from(pair.access_token),
            refresh_token: SecretString::from(pair.refresh_token),
            expires_at: Utc::now() + expires_in,
        })
    }

    fn client(&self) -> (ReckonClient<MemoryTokenStore>, MemoryTokenStore) {
        let store = self.store(TimeDelta::hours(3));
        let client = ReckonClient::new(self.config(), store.clone()).expect("client");
        (client, store)
    }

    fn refreshes(&self) -> u64 {
        self.sim.state().oauth.refreshes
    }

    fn tokens_issued(&self) -> u64 {
        self.sim.state().oauth.tokens_issued
    }

    fn invoice_view(&self, id: ReckonId) -> Value {
        self.sim
            .with_book(|b, _| b.invoices.get(&id.0).map(|i| b.invoice_view(i)))
            .expect("invoice exists")
    }
}

fn rt(store: &MemoryTokenStore) -> String {
    store
        .current()
        .expect("tokens stored")
        .refresh_token
        .expose_secret()
        .to_string()
}

fn at(store: &MemoryTokenStore) -> String {
    store
        .current()
        .expect("tokens stored")
        .access_token
        .expose_secret()
        .to_string()
}

// ---- OAuth ---------------------------------------------------------------------------------

#[tokio::test]
async fn code_flow_through_the_authorize_redirect_saves_tokens() {
    let env = start().await;
    let store = MemoryTokenStore::new();
    let client = ReckonClient::new(env.config(), store.clone()).expect("client");
    let url = client.authorize_url("state-42");
    assert!(
        url.as_str()
            .starts_with(&format!("{}/connect/authorize", env.origin))
    );
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], env.sim.config().oauth.client_id);
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["scope"], "openid read write offline_access");
    assert_eq!(q["state"], "state-42");
    assert!(q.get("nonce").is_some_and(|n| !n.is_empty()));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let r = http.get(url).send().await.expect("authorize");
    assert_eq!(r.status(), 302);
    let location =
        Url::parse(r.headers()["location"].to_str().expect("location is text")).expect("location");
    let back: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(back["state"], "state-42");

    client.connect(&back["code"]).await.expect("code exchanged");
    let saved = store.current().expect("tokens saved");
    assert!(saved.expires_at > Utc::now() + TimeDelta::hours(2));
    assert_eq!(store.saves(), 1);
    assert_eq!(env.tokens_issued(), 1);
    // The saved access token works.
    client.customers().await.expect("authorized call");
    assert_eq!(env.refreshes(), 0);
    // The code is single-use.
    let again = client.connect(&back["code"]).await;
    assert!(
        matches!(again, Err(ReckonError::ReauthorizationNeeded(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn early_refresh_rotates_and_stores_the_newest_refresh_token() {
    let env = start().await;
    // Expires within the 5-minute margin: the next call refreshes first.
    let store = env.store(TimeDelta::minutes(2));
    let (old_rt, old_at) = (rt(&store), at(&store));
    let client = ReckonClient::new(env.config(), store.clone()).expect("client");
    client.customers().await.expect("call");
    assert_eq!(env.refreshes(), 1);
    assert_eq!(client.tokens().oauth().requests_made(), 1);
    assert_ne!(rt(&store), old_rt, "the rotated refresh token is stored");
    assert_ne!(at(&store), old_at);
    assert!(store.current().expect("tokens").expires_at > Utc::now() + TimeDelta::hours(2));
    // Fresh now: no more refreshes.
    client.customers().await.expect("call");
    assert_eq!(env.refreshes(), 1);

    // The stored refresh token is the live one; the old one is dead.
    let other = MemoryTokenStore::new();
    let c2 = ReckonClient::new(env.config(), other.clone()).expect("client");
    let dead = c2
        .tokens()
        .bootstrap_from_refresh_token(SecretString::from(old_rt))
        .await;
    assert!(
        matches!(dead, Err(ReckonError::ReauthorizationNeeded(_))),
        "{dead:?}"
    );
    assert!(other.current().is_none());
    c2.tokens()
        .bootstrap_from_refresh_token(SecretString::from(rt(&store)))
        .await
        .expect("newest refresh token works");
    c2.customers().await.expect("bootstrapped client works");
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_exactly_once_for_concurrent_calls() {
    let env = start().await;
    let (client, store) = env.client();
    client.customers().await.expect("warm");
    let before = rt(&store);
    env.sim.expire_access_tokens();
    let (a, b, c, d) = tokio::join!(
        client.customers(),
        client.find_customer_by_name("Nobody"),
        client.find_item_by_name("Nothing"),
        client.find_invoices_by_reference("none"),
    );
    a.expect("a");
    b.expect("b");
    c.expect("c");
    d.expect("d");
    assert_eq!(env.refreshes(), 1, "one refresh for four 401s");
    assert_eq!(client.tokens().oauth().requests_made(), 1);
    assert_ne!(rt(&store), before);
}

#[tokio::test]
async fn a_reused_refresh_token_needs_reauthorization() {
    let env = start().await;
    let store = env.store(TimeDelta::minutes(-1));
    let stale = rt(&store);
    // Someone else (another process) redeems it first; our store still holds the old pair.
    let elsewhere = MemoryTokenStore::new();
    ReckonClient::new(env.config(), elsewhere)
        .expect("client")
        .tokens()
        .bootstrap_from_refresh_token(SecretString::from(stale.clone()))
        .await
        .expect("first use works");
    let client = ReckonClient::new(env.config(), store.clone()).expect("client");
    let err = client.customers().await.expect_err("dead refresh token");
    assert!(
        matches!(
            err.cause::<ReckonError>(),
            Some(ReckonError::ReauthorizationNeeded(_))
        ),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::StopTenant, "stops the tenant");
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains(&stale), "no token in errors");
    assert_eq!(client.requests_made(), 0, "no API call without a token");
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let env = start().await;
    let (client, store) = env.client();
    let shown = format!("{client:?} {:?} {store:?}", env.config());
    for secret in [
        env.sim.config().oauth.client_secret.as_str(),
        DEFAULT_SUBSCRIPTION_KEY,
        &rt(&store),
        &at(&store),
    ] {
        assert!(!shown.contains(secret), "secret leaked in {shown}");
    }
}

// ---- customers and items -----------------------------------------------------------------------

fn patient(name: &str) -> CustomerDraft {
    CustomerDraft {
        name: name.into(),
        first_name: Some("Seán".into()),
        last_name: Some("O'Brien".into()),
        status: ActiveStatus::Active,
        email: Some("sean@example.com".into()),
        addresses: vec![ReckonAddress {
            kind: "Postal".into(),
            lines: vec![
                "Unit 4".into(),
                "12 Harbour St".into(),
                "Rear".into(),
                "Level 2".into(),
            ],
            suburb: Some("Manly".into()),
            state: Some("NSW".into()),
            postcode: Some("2095".into()),
            country: Some("Australia".into()),
        }],
        phones: vec![ReckonPhone {
            kind: "Mobile".into(),
            number: "0400 000 001".into(),
        }],
        payment_terms: None,
    }
}

#[tokio::test]
async fn customers_create_find_update_and_list_every_page() {
    let env = start().await;
    let (client, _) = env.client();
    let name = "Seán O'Brien";
    let id = client
        .create_customer(&patient(name))
        .await
        .expect("create");
    let found = client
        .find_customer_by_name(name)
        .await
        .expect("find")
        .expect("found by a name with an apostrophe");
    assert_eq!(found.id, id);
    assert_eq!(found.email.as_deref(), Some("sean@example.com"));
    assert_eq!(found.status, ActiveStatus::Active);
    assert!(
        client
            .find_customer_by_name("O'Brien")
            .await
            .expect("find")
            .is_none()
    );

    let view = env
        .sim
        .with_book(|b, _| b.customers.get(&id.0).map(|c| b.customer_view(c)))
        .expect("customer");
    assert_eq!(view["addresses"][0]["line1"], "Unit 4");
    assert_eq!(view["addresses"][0]["line3"], "Rear, Level 2");
    assert_eq!(view["addresses"][0]["suburb"], "Manly");
    assert_eq!(view["phoneNumbers"][0]["type"]["name"], "Mobile");
    assert_eq!(view["phoneNumbers"][0]["number"], "0400 000 001");

    // Someone adds notes in Reckon; the sync's update keeps them.
    env.sim.with_book(|b, _| {
        if let Some(c) = b.customers.get_mut(&id.0) {
            c.notes = Some("Accountant's note".into());
        }
    });
    let mut changed = patient(name);
    changed.status = ActiveStatus::Inactive;
    changed.email = Some("sean@new.example.com".into());
    client.update_customer(id, &changed).await.expect("update");
    let found = client
        .find_customer_by_name(name)
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.status, ActiveStatus::Inactive);
    assert_eq!(found.email.as_deref(), Some("sean@new.example.com"));
    let view = env
        .sim
        .with_book(|b, _| b.customers.get(&id.0).map(|c| b.customer_view(c)))
        .expect("customer");
    assert_eq!(view["notes"], "Accountant's note");

    // Paging: 7 customers at 3 per page.
    for i in 0..6 {
        client
            .create_customer(&patient(&format!("Patient {i}")))
            .await
            .expect("create");
    }
    let mut config = env.config();
    config.page_size = 3;
    let paged = ReckonClient::new(config, env.store(TimeDelta::hours(3))).expect("client");
    let all = paged.customers().await.expect("list");
    assert_eq!(all.len(), 7);
    assert_eq!(paged.requests_made(), 3);
}

fn consult_item() -> ItemDraft {
    ItemDraft {
        name: "Standard consultation".into(),
        item_code: Some("CONS-1".into()),
        item_type: ItemType::Service,
        status: ActiveStatus::Active,
        sale_price: dec!(100.00),
        tax_code: "GST".into(),
        income_account: "Consultation Fees".into(),
        description: Some("45 minutes".into()),
    }
}

#[tokio::test]
async fn items_create_find_and_update() {
    let env = start().await;
    let (client, _) = env.client();
    let id = client.create_item(&consult_item()).await.expect("create");
    let found = client
        .find_item_by_name("Standard consultation")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.id, id);
    let view = env
        .sim
        .with_book(|b, _| b.items.get(&id.0).map(|i| b.item_view(i)))
        .expect("item");
    assert_eq!(view["itemType"], "Service");
    assert_eq!(view["amountTaxStatus"], "Exclusive");
    assert_eq!(view["sale"]["price"].as_f64(), Some(100.0));
    assert_eq!(view["sale"]["taxRate"]["name"], "GST");
    assert_eq!(view["sale"]["ledgerAccount"]["name"], "Consultation Fees");

    let mut changed = consult_item();
    changed.sale_price = dec!(120.455);
    changed.status = ActiveStatus::Inactive;
    client.update_item(id, &changed).await.expect("update");
    let found = client
        .find_item_by_name("Standard consultation")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.status, ActiveStatus::Inactive);
    let view = env
        .sim
        .with_book(|b, _| b.items.get(&id.0).map(|i| b.item_view(i)))
        .expect("item");
    assert_eq!(view["sale"]["price"].as_f64(), Some(120.455));
    assert_eq!(view["sale"]["priceAccuracy"], 3);
}

// ---- invoices and payments ---------------------------------------------------------------------

fn invoice_draft(customer: ReckonId, item: ReckonId) -> InvoiceDraft {
    InvoiceDraft {
        customer,
        reference: "1042".into(),
        invoice_date: NaiveDate::from_ymd_opt(2024, 3, 31).expect("date"),
        amount_tax_status: AmountTaxStatus::Inclusive,
        status: ReckonInvoiceStatus::Approved,
        notes: Some("Thanks".into()),
        lines: vec![
            // GST inclusive: 110.00, tax 10.00.
            InvoiceLineDraft {
                line_number: 1,
                description: "Initial consultation".into(),
                target: LineTarget::Item(item),
                price: dec!(110.00),
                quantity: dec!(1),
                discount_amount: None,
                tax_code: "GST".into(),
                tax_amount: dec!(10.00),
            },
            // GST-free to an income account: 2 × 55 − 10 = 100.00.
            InvoiceLineDraft {
                line_number: 2,
                description: "Report".into(),
                target: LineTarget::Account("Consultation Fees".into()),
                price: dec!(55.00),
                quantity: dec!(2),
                discount_amount: Some(dec!(10.00)),
                tax_code: "FRE".into(),
                tax_amount: dec!(0),
            },
            // 3 × 33 − 9 = 90.00; Reckon would say 8.18, Cliniko says 8.19 (override).
            InvoiceLineDraft {
                line_number: 3,
                description: "Follow-ups".into(),
                target: LineTarget::Item(item),
                price: dec!(33.00),
                quantity: dec!(3),
                discount_amount: Some(dec!(9.00)),
                tax_code: "GST".into(),
                tax_amount: dec!(8.19),
            },
        ],
        expected_total: dec!(300.00),
        expected_tax: dec!(18.19),
        paid: true,
        template: None,
    }
}

#[tokio::test]
async fn invoice_round_trips_with_reckons_totals_then_a_payment_makes_it_paid() {
    let env = start().await;
    let (client, _) = env.client();
    let customer = client
        .create_customer(&patient("Jo Citizen"))
        .await
        .expect("customer");
    let item = client.create_item(&consult_item()).await.expect("item");
    let draft = invoice_draft(customer, item);
    let id = client.create_invoice(&draft).await.expect("invoice");

    let inv = client.invoice(id).await.expect("get").expect("exists");
    assert_eq!(inv.status, ReckonInvoiceStatus::Approved);
    assert_eq!(inv.total_amount, draft.expected_total);
    assert_eq!(inv.total_tax_amount, draft.expected_tax);
    assert_eq!(inv.balance, draft.expected_total);
    assert_eq!(inv.reference.as_deref(), Some("1042"));
    assert!(inv.invoice_number.is_some());

    let view = env.invoice_view(id);
    assert_eq!(view["amountTaxStatus"], "Inclusive");
    assert!(
        view["invoiceDate"]
            .as_str()
            .is_some_and(|d| d.starts_with("2024-03-31"))
    );
    let lines = view["lineItems"].as_array().expect("lines");
    assert_eq!(lines[0]["itemDetails"]["item"]["id"], item.to_string());
    assert_eq!(lines[1]["accountDetails"]["amount"].as_f64(), Some(100.0));
    assert_eq!(lines[1]["taxRate"]["name"], "FRE");
    assert_eq!(
        lines[2]["itemDetails"]["discountAmount"].as_f64(),
        Some(9.0)
    );
    assert_eq!(lines[2]["taxAmount"].as_f64(), Some(8.19));
    assert_eq!(lines[2]["taxIsModified"], true);

    let found = client
        .find_invoices_by_reference("1042")
        .await
        .expect("find");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    assert!(
        client
            .find_invoices_by_reference("104")
            .await
            .expect("find")
            .is_empty()
    );
    assert!(
        client
            .invoice(ReckonId(uuid::Uuid::new_v4()))
            .await
            .expect("get")
            .is_none()
    );

    // Update: the follow-ups line changes; PUT replaces and the status is re-applied.
    let mut changed = draft.clone();
    changed.lines[2].quantity = dec!(4);
    changed.lines[2].discount_amount = Some(dec!(12.00));
    changed.lines[2].tax_amount = dec!(10.91);
    client.update_invoice(id, &changed).await.expect("update");
    let inv = client.invoice(id).await.expect("get").expect("exists");
    assert_eq!(inv.total_amount, dec!(330.00));
    assert_eq!(inv.total_tax_amount, dec!(20.91));
    assert_eq!(inv.status, ReckonInvoiceStatus::Approved);

    let receipt = client
        .record_payment(&PaymentDraft {
            customer,
            invoice: id,
            amount: inv.balance,
            date: NaiveDate::from_ymd_opt(2024, 4, 2).expect("date"),
            reference: "1042".into(),
        })
        .await
        .expect("payment");
    let inv = client.invoice(id).await.expect("get").expect("exists");
    assert_eq!(inv.status, ReckonInvoiceStatus::Paid);
    assert_eq!(inv.balance, Decimal::ZERO);
    let r = env
        .sim
        .with_book(|b, _| b.receipts.get(&receipt.0).map(|r| b.receipt_view(r)))
        .expect("receipt");
    assert_eq!(r["reference"], "1042");
    assert_eq!(r["ledgerAccount"]["name"], "Undeposited Funds");
}

#[tokio::test]
async fn a_draft_invoice_stays_draft() {
    let env = start().await;
    let (client, _) = env.client();
    let customer = client
        .create_customer(&patient("Draft Person"))
        .await
        .expect("customer");
    let item = client.create_item(&consult_item()).await.expect("item");
    let mut draft = invoice_draft(customer, item);
    draft.status = ReckonInvoiceStatus::Draft;
    let before = client.requests_made();
    let id = client.create_invoice(&draft).await.expect("invoice");
    assert_eq!(
        client.requests_made() - before,
        1,
        "no status patch for a draft"
    );
    let inv = client.invoice(id).await.expect("get").expect("exists");
    assert_eq!(inv.status, ReckonInvoiceStatus::Draft);
}

// ---- errors and retries -------------------------------------------------------------------

#[tokio::test]
async fn validation_errors_name_the_field() {
    let env = start().await;
    let (client, _) = env.client();
    let customer = client
        .create_customer(&patient("Val Idation"))
        .await
        .expect("customer");
    let item = client.create_item(&consult_item()).await.expect("item");
    let mut draft = invoice_draft(customer, item);
    draft.lines[1].tax_code = "NOPE".into();
    let err = client
        .create_invoice(&draft)
        .await
        .expect_err("unknown tax code");
    let Some(ReckonError::Validation { errors, .. }) = err.cause::<ReckonError>() else {
        panic!("expected a validation error, got {err:?}");
    };
    assert!(
        errors.iter().any(|e| e.location == "lineItems[1].taxRate"),
        "{errors:?}"
    );
    assert!(err.to_string().contains("lineItems[1].taxRate"));
    assert!(!err.is_retryable());

    // Refused before sending: a name longer than Reckon's 100 characters.
    let before = client.requests_made();
    let err = client
        .create_customer(&patient(&"x".repeat(101)))
        .await
        .expect_err("too long");
    assert_eq!(
        err.cause::<ReckonError>()
            .map(|e| e.field_errors()[0].location.as_str()),
        Some("name")
    );
    assert_eq!(client.requests_made(), before);
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let env = start().await;
    let (client, _) = env.client();
    env.sim.faults.add(FaultRule::rate_limit_burst(1));
    let started = Instant::now();
    client.customers().await.expect("retried after 429");
    assert_eq!(client.requests_made(), 2);
    // The simulator says `Retry-After: 1`; the backoff alone would be milliseconds.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn server_error_bursts_are_retried_and_posts_only_when_safe() {
    let env = start().await;
    let (client, _) = env.client();
    env.sim
        .faults
        .add(FaultRule::fail_next("*/customers*", 502, 2));
    client.customers().await.expect("retried through the burst");
    assert_eq!(client.requests_made(), 3);

    // 503 on a POST: not processed, so retried.
    env.sim.faults.add(FaultRule::fail_next("*/items*", 503, 1));
    client.create_item(&consult_item()).await.expect("retried");
    assert_eq!(env.sim.with_book(|b, _| b.items.len()), 1);

    // 500 on a POST might have created the record: returned, retryable, not repeated.
    env.sim.faults.add(FaultRule {
        method: Some("POST".into()),
        ..FaultRule::fail_next("*/customers*", 500, 1)
    });
    let before = client.requests_made();
    let err = client
        .create_customer(&patient("Once Only"))
        .await
        .expect_err("500");
    assert!(
        matches!(
            err.cause::<ReckonError>(),
            Some(ReckonError::Status { status: 500, .. })
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(client.requests_made() - before, 1);

    // A burst longer than max_attempts gives up with a retryable error.
    env.sim
        .faults
        .add(FaultRule::fail_next("*/invoices*", 503, 10));
    let before = client.requests_made();
    let err = client
        .find_invoices_by_reference("x")
        .await
        .expect_err("gives up");
    assert!(err.is_retryable());
    assert_eq!(client.requests_made() - before, 4);
}

#[tokio::test]
async fn a_wrong_subscription_key_is_not_a_token_problem() {
    let env = start().await;
    let mut config = env.config();
    config.subscription_key = SecretString::from("wrong-key".to_string());
    let client = ReckonClient::new(config, env.store(TimeDelta::hours(3))).expect("client");
    let err = client.customers().await.expect_err("401");
    assert!(
        matches!(
            err.cause::<ReckonError>(),
            Some(ReckonError::Status { status: 401, .. })
        ),
        "{err:?}"
    );
    assert_eq!(env.refreshes(), 0, "the gateway's 401 causes no refresh");
    assert!(!err.to_string().contains("wrong-key"));
}

/// A token store that can refuse writes: not writable at all, or failing its next saves.
#[derive(Clone, Default)]
struct FlakyStore {
    inner: MemoryTokenStore,
    unwritable: std::sync::Arc<std::sync::atomic::AtomicBool>,
    failing_saves: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl cliniko_reckon::ports::TokenStore for FlakyStore {
    async fn load(&self) -> Result<Option<TokenSet>, cliniko_reckon::ports::StateError> {
        self.inner.load().await
    }
    async fn save(&self, tokens: &TokenSet) -> Result<(), cliniko_reckon::ports::StateError> {
        use std::sync::atomic::Ordering;
        let left = self.failing_saves.load(Ordering::SeqCst);
        if left > 0 {
            self.failing_saves.store(left - 1, Ordering::SeqCst);
            return Err(cliniko_reckon::ports::StateError::Backend {
                detail: "database is locked".into(),
                retryable: true,
            });
        }
        self.inner.save(tokens).await
    }
    async fn check_writable(&self) -> Result<(), cliniko_reckon::ports::StateError> {
        if self.unwritable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(cliniko_reckon::ports::StateError::Backend {
                detail: "attempt to write a readonly database".into(),
                retryable: false,
            });
        }
        Ok(())
    }
}

#[tokio::test]
async fn no_refresh_token_is_spent_when_the_new_pair_cannot_be_stored() {
    use std::sync::atomic::Ordering;
    let env = start().await;
    let store = FlakyStore {
        inner: env.store(TimeDelta::minutes(1)),
        ..Default::default()
    };
    let before = rt(&store.inner);
    let client = ReckonClient::new(env.config(), store.clone()).expect("client");

    // Not writable: the refresh token is never redeemed.
    store.unwritable.store(true, Ordering::SeqCst);
    let err = client
        .customers()
        .await
        .expect_err("cannot store a new pair");
    assert!(err.to_string().contains("readonly"), "{err}");
    assert_eq!(env.refreshes(), 0, "nothing redeemed");
    assert_eq!(
        rt(&store.inner),
        before,
        "the stored refresh token still works"
    );

    // Writable, but the save fails twice (a busy file): retried, and the pair is kept.
    store.unwritable.store(false, Ordering::SeqCst);
    store.failing_saves.store(2, Ordering::SeqCst);
    client.customers().await.expect("saved on the third try");
    assert_eq!(env.refreshes(), 1);
    assert_ne!(rt(&store.inner), before, "the rotated token is stored");
}

/// `[invoicing] payment_terms` and `template`: a customer the sync writes gets the clinic's
/// terms unless it has its own in Reckon, its invoices fall due by them, and an invoice
/// carries the clinic's template.
#[tokio::test]
async fn payment_terms_go_on_customers_without_their_own_and_templates_on_invoices() {
    let env = start().await;
    let (client, _) = env.client();
    let mut with_terms = patient("Terms Patient");
    with_terms.payment_terms = Some("14 days net".into());
    let customer = client.create_customer(&with_terms).await.expect("create");
    let term_name = |id: ReckonId| {
        env.sim.with_book(|b, _| {
            b.customers
                .get(&id.0)
                .and_then(|c| c.payment_terms)
                .and_then(|t| b.terms.get(&t))
                .map(|t| t.name.clone())
        })
    };
    assert_eq!(term_name(customer).as_deref(), Some("14 days net"));

    // A bookkeeper gives the customer other terms; the sync's next update keeps them.
    let seven = env.sim.with_book(|b, _| {
        b.terms
            .values()
            .find(|t| t.name == "7 days net")
            .map(|t| t.id)
    });
    env.sim.with_book(|b, _| {
        if let Some(c) = b.customers.get_mut(&customer.0) {
            c.payment_terms = seven;
        }
    });
    client
        .update_customer(customer, &with_terms)
        .await
        .expect("update");
    assert_eq!(term_name(customer).as_deref(), Some("7 days net"), "kept");

    // Unknown terms are refused, naming the field.
    let mut unknown = patient("Unknown Terms");
    unknown.payment_terms = Some("60 days".into());
    let err = client.create_customer(&unknown).await.expect_err("unknown");
    assert!(err.to_string().contains("paymentTerms"), "{err}");

    // Its invoice falls due by the customer's terms, with the clinic's template.
    let item = client.create_item(&consult_item()).await.expect("item");
    let mut draft = invoice_draft(customer, item);
    draft.template = Some("Professional invoice".into());
    let id = client.create_invoice(&draft).await.expect("invoice");
    let (terms, template) = env.sim.with_book(|b, _| {
        let i = b.invoices.get(&id.0).expect("there");
        (
            i.payment_terms
                .and_then(|t| b.terms.get(&t))
                .map(|t| t.name.clone()),
            i.template.and_then(|t| b.templates.get(&t)).cloned(),
        )
    });
    assert_eq!(terms.as_deref(), Some("7 days net"));
    assert_eq!(template.as_deref(), Some("Professional invoice"));
}
