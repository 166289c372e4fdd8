//! One contract for the Reckon sink (and book-reading) ports, run against every adapter:
//! the Reckon client over HTTP (against the Reckon simulator) and the in-memory twin the
//! apply unit tests use. Where the twin passes and the client passes, a unit test over the
//! twin means what it would mean against Reckon.

use chrono::{NaiveDate, TimeDelta, Utc};
use cliniko_reckon::adapters::memory::MemoryBook;
use cliniko_reckon::domain::*;
use cliniko_reckon::ports::{ErrorClass, PaymentDraft, ReckonBook, ReckonSink, TokenSet};
use cliniko_reckon::reckon::{MemoryTokenStore, ReckonClient, ReckonClientConfig};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use secrecy::SecretString;
use simulators::common::RunningServer;
use simulators::reckon::{DEFAULT_SUBSCRIPTION_KEY, ReckonConfig, ReckonSim};
use std::time::Duration;
use url::Url;

fn customer(name: &str) -> CustomerDraft {
    CustomerDraft {
        name: name.into(),
        first_name: None,
        last_name: None,
        status: ActiveStatus::Active,
        email: Some(format!(
            "{}@example.com",
            name.to_lowercase().replace(' ', ".")
        )),
        addresses: vec![],
        phones: vec![],
        payment_terms: None,
    }
}

fn item(name: &str, code: &str, tax_code: &str) -> ItemDraft {
    ItemDraft {
        name: name.into(),
        item_code: Some(code.into()),
        item_type: ItemType::Service,
        status: ActiveStatus::Active,
        sale_price: dec!(90.00),
        tax_code: tax_code.into(),
        income_account: "Consultation Fees".into(),
        description: None,
    }
}

/// Tax exclusive: 2 × 45.50 with GST 9.10, and one 20.00 GST-free line less 5.00.
fn invoice(customer: ReckonId, item: ReckonId, reference: &str) -> InvoiceDraft {
    InvoiceDraft {
        customer,
        reference: reference.into(),
        invoice_date: NaiveDate::from_ymd_opt(2024, 3, 31).expect("date"),
        amount_tax_status: AmountTaxStatus::Exclusive,
        status: ReckonInvoiceStatus::Approved,
        notes: None,
        lines: vec![
            InvoiceLineDraft {
                line_number: 1,
                description: "Consult".into(),
                target: LineTarget::Item(item),
                price: dec!(45.50),
                quantity: dec!(2),
                discount_amount: None,
                tax_code: "GST".into(),
                tax_amount: dec!(9.10),
            },
            InvoiceLineDraft {
                line_number: 2,
                description: "Report".into(),
                target: LineTarget::Account("Consultation Fees".into()),
                price: dec!(20.00),
                quantity: dec!(1),
                discount_amount: Some(dec!(5.00)),
                tax_code: "FRE".into(),
                tax_amount: dec!(0),
            },
        ],
        expected_total: dec!(115.10),
        expected_tax: dec!(9.10),
        paid: false,
        template: None,
    }
}

fn payment(customer: ReckonId, invoice: ReckonId, amount: Decimal) -> PaymentDraft {
    PaymentDraft {
        customer,
        invoice,
        amount,
        date: NaiveDate::from_ymd_opt(2024, 4, 1).expect("date"),
        reference: "1042".into(),
    }
}

async fn customers_are_found_by_name_and_names_are_unique<S: ReckonSink + ReckonBook>(s: &S) {
    let id = s
        .create_customer(&customer("Ada Lovelace"))
        .await
        .expect("create");
    let found = s
        .find_customer_by_name("Ada Lovelace")
        .await
        .expect("find")
        .expect("found");
    assert_eq!((found.id, found.status), (id, ActiveStatus::Active));
    assert!(
        s.find_customer_by_name("Ada")
            .await
            .expect("find")
            .is_none(),
        "exact names only"
    );
    let twice = s
        .create_customer(&customer("Ada Lovelace"))
        .await
        .expect_err("a second customer of one name");
    assert_eq!(twice.class(), ErrorClass::Park, "{twice}");

    let mut renamed = customer("Ada King");
    renamed.status = ActiveStatus::Inactive;
    s.update_customer(id, &renamed).await.expect("update");
    let record = s.customer(id).await.expect("read").expect("there");
    assert_eq!(
        (record.name.as_str(), record.status),
        ("Ada King", ActiveStatus::Inactive)
    );
    assert!(
        s.customers()
            .await
            .expect("list")
            .iter()
            .any(|c| c.id == id),
        "listed"
    );
}

async fn items_need_a_known_tax_code_and_are_found_by_code<S: ReckonSink + ReckonBook>(s: &S) {
    let bad = s
        .create_item(&item("Mystery", "M-1", "NOPE"))
        .await
        .expect_err("unknown tax code");
    assert_eq!(bad.class(), ErrorClass::Park, "{bad}");
    let id = s
        .create_item(&item("Consult", "C-1", "GST"))
        .await
        .expect("create");
    let by_code = s.find_items_by_code("C-1").await.expect("find");
    assert_eq!(by_code.iter().map(|i| i.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(by_code[0].item_type, Some(ItemType::Service));
    let record = s.item(id).await.expect("read").expect("there");
    assert_eq!(record.sale_price, Some(dec!(90.00)));
    assert_eq!(record.tax_code.as_deref(), Some("GST"));
}

async fn reckon_computes_totals_and_a_paid_invoice_is_locked<S: ReckonSink + ReckonBook>(s: &S) {
    let c = s
        .create_customer(&customer("Paid Patient"))
        .await
        .expect("customer");
    let i = s
        .create_item(&item("Visit", "V-1", "GST"))
        .await
        .expect("item");
    let draft = invoice(c, i, "1042");
    let id = s.create_invoice(&draft).await.expect("create");
    let seen = s.invoice(id).await.expect("read").expect("there");
    assert_eq!(
        (seen.total_amount, seen.total_tax_amount, seen.balance),
        (dec!(115.10), dec!(9.10), dec!(115.10)),
        "Reckon's own arithmetic"
    );
    assert_eq!(seen.status, ReckonInvoiceStatus::Approved);
    assert_eq!(seen.customer, Some(c));
    let found = s.find_invoices_by_reference("1042").await.expect("find");
    assert_eq!(found.iter().map(|i| i.id).collect::<Vec<_>>(), vec![id]);
    let record = s.invoice_record(id).await.expect("read").expect("there");
    let amounts: Vec<Decimal> = record.lines.iter().map(|l| l.amount).collect();
    assert_eq!(amounts, vec![dec!(91.00), dec!(15.00)]);

    let too_much = s
        .record_payment(&payment(c, id, dec!(200.00)))
        .await
        .expect_err("more than the balance");
    assert_eq!(too_much.class(), ErrorClass::Park, "{too_much}");
    s.record_payment(&payment(c, id, dec!(15.10)))
        .await
        .expect("part");
    s.record_payment(&payment(c, id, dec!(100.00)))
        .await
        .expect("rest");
    let paid = s.invoice(id).await.expect("read").expect("there");
    assert_eq!(
        (paid.status, paid.balance),
        (ReckonInvoiceStatus::Paid, Decimal::ZERO)
    );
    let mut edited = draft.clone();
    edited.notes = Some("changed".into());
    let locked = s
        .update_invoice(id, &edited)
        .await
        .expect_err("a paid invoice cannot change");
    assert_eq!(locked.class(), ErrorClass::Park, "{locked}");
}

async fn an_approved_credit_note_is_allocated_within_both_balances<S: ReckonSink + ReckonBook>(
    s: &S,
) {
    let c = s
        .create_customer(&customer("Credited Patient"))
        .await
        .expect("customer");
    let i = s
        .create_item(&item("Review", "R-1", "GST"))
        .await
        .expect("item");
    let inv = s
        .create_invoice(&invoice(c, i, "2001"))
        .await
        .expect("invoice");
    let credit = CreditNoteDraft {
        customer: c,
        reference: "2002".into(),
        date: NaiveDate::from_ymd_opt(2024, 4, 2).expect("date"),
        amount_tax_status: AmountTaxStatus::Inclusive,
        status: CreditNoteStatus::Approved,
        notes: None,
        lines: vec![InvoiceLineDraft {
            line_number: 1,
            description: "Refund".into(),
            target: LineTarget::Item(i),
            price: dec!(33.00),
            quantity: dec!(1),
            discount_amount: None,
            tax_code: "GST".into(),
            tax_amount: dec!(3.00),
        }],
        expected_total: dec!(33.00),
        expected_tax: dec!(3.00),
    };
    let cid = s.create_credit_note(&credit).await.expect("credit");
    let note = s.credit_note(cid).await.expect("read").expect("there");
    assert_eq!(
        (note.total_amount, note.total_tax_amount, note.balance),
        (dec!(33.00), dec!(3.00), dec!(33.00))
    );
    let over = s
        .allocate_credit_note(cid, inv, dec!(40.00))
        .await
        .expect_err("more than the credit");
    assert_eq!(over.class(), ErrorClass::Park, "{over}");
    s.allocate_credit_note(cid, inv, dec!(33.00))
        .await
        .expect("allocate");
    let note = s.credit_note(cid).await.expect("read").expect("there");
    assert_eq!(note.balance, Decimal::ZERO);
    assert_eq!(note.allocated_to(inv), Some(dec!(33.00)));
    let after = s.invoice(inv).await.expect("read").expect("there");
    assert_eq!(after.balance, dec!(82.10));
    let found = s
        .find_credit_notes_by_reference("2002")
        .await
        .expect("find");
    assert_eq!(found.len(), 1);
    let mut back_to_draft = credit.clone();
    back_to_draft.status = CreditNoteStatus::Draft;
    let refused = s
        .update_credit_note(cid, &back_to_draft)
        .await
        .expect_err("an allocated credit note stays Approved");
    assert_eq!(refused.class(), ErrorClass::Park, "{refused}");
}

async fn the_book_reads_back_every_page<S: ReckonSink + ReckonBook>(s: &S) {
    let mut made = Vec::new();
    for n in 0..120 {
        made.push(
            s.create_customer(&customer(&format!("Page Patient {n:03}")))
                .await
                .expect("create"),
        );
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.customer_page(cursor).await.expect("page");
        seen.extend(page.items.into_iter().map(|c| c.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    for id in made {
        assert!(seen.contains(&id), "{id} read back");
    }
}

async fn contract<S: ReckonSink + ReckonBook>(s: &S) {
    customers_are_found_by_name_and_names_are_unique(s).await;
    items_need_a_known_tax_code_and_are_found_by_code(s).await;
    reckon_computes_totals_and_a_paid_invoice_is_locked(s).await;
    an_approved_credit_note_is_allocated_within_both_balances(s).await;
    the_book_reads_back_every_page(s).await;
}

#[tokio::test]
async fn the_in_memory_book_keeps_the_contract() {
    contract(&MemoryBook::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reckon_client_keeps_the_contract() {
    let sim = ReckonSim::new(ReckonConfig {
        rate_limit_per_minute: 0,
        ..Default::default()
    });
    let server: RunningServer = sim.start("127.0.0.1", 0).await.expect("simulator starts");
    let origin = server.origin();
    let oauth = &sim.config().oauth;
    let mut config = ReckonClientConfig::new(
        oauth.client_id.clone(),
        SecretString::from(oauth.client_secret.clone()),
        SecretString::from(DEFAULT_SUBSCRIPTION_KEY.to_string()),
        ReckonId(sim.book_id()),
        Url::parse("http://127.0.0.1:1/callback").expect("url"),
        "Undeposited Funds",
    )
    .expect("config");
    config.api_base_url = Url::parse(&format!("{origin}/r1/v2")).expect("url");
    config.identity_url = Url::parse(&origin).expect("url");
    config.requests_per_minute = 0;
    config.backoff_base = Duration::from_millis(5);
    let pair = sim.issue_tokens();
    let store = MemoryTokenStore::with_tokens(TokenSet {
        access_token: SecretString::from(pair.access_token),
        refresh_token: SecretString::from(pair.refresh_token),
        expires_at: Utc::now() + TimeDelta::hours(3),
    });
    let client = ReckonClient::new(config, store).expect("client");
    contract(&client).await;
}
