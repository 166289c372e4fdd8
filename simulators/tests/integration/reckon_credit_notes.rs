//! Credit notes in the Reckon One simulator, over real HTTP: server-computed totals, the
//! Draft → Approved → Closed lifecycle, allocation to invoices through
//! `/creditnotes/{id}/transactionlinks` (invoice balances and Paid status follow), the rules
//! that refuse bad allocations and edits, lists, and conformance with Reckon's spec.

use crate::reckon_common;
use crate::support;

use reckon_common::{Env, dec};
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use support::apis_dir;
use support::openapi::Spec;

/// Jane Citizen (and Other Person), the Consultation item, and an Approved Inclusive invoice
/// for Jane of 110 (10 GST). Answers the invoice id.
async fn approved_invoice(env: &Env) -> String {
    env.customer("Jane Citizen").await;
    env.customer("Other Person").await;
    env.item("Consultation", None).await;
    let id = env
        .invoice("Jane Citizen", "Inclusive", &[("110", "1", "GST")])
        .await
        .expect(201)
        .id();
    env.patch(&format!("/invoices/{id}"), &json!({"status": "Approved"}))
        .await
        .expect(204);
    id
}

/// A CreditNoteInput for `customer` with one item line of `price` (GST, Inclusive).
fn credit_body(customer: &str, price: f64, reference: &str) -> Value {
    json!({"customer": customer, "creditNoteDate": "2026-03-10", "amountTaxStatus": "Inclusive",
           "reference": reference, "notes": "Refund of a cancelled visit",
           "lineItems": [{"lineNumber": 1, "description": "Cancelled visit", "taxRate": "GST",
                          "itemDetails": {"item": "Consultation", "price": price, "quantity": 1}}]})
}

async fn credit_note(env: &Env, customer: &str, price: f64, reference: &str) -> String {
    env.post("/creditnotes", &credit_body(customer, price, reference))
        .await
        .expect(201)
        .id()
}

async fn approve(env: &Env, id: &str) {
    env.patch(
        &format!("/creditnotes/{id}"),
        &json!({"status": "Approved"}),
    )
    .await
    .expect(204);
}

fn link(invoice: &str, amount: f64) -> Value {
    json!({"transactionId": invoice, "transactionType": "Invoice", "transactionAmount": amount})
}

#[tokio::test]
async fn create_approve_allocate_reduces_the_invoice_balance_and_pays_it_when_covered() {
    let env = Env::start().await;
    let invoice = approved_invoice(&env).await;
    let cn = credit_note(&env, "Jane Citizen", 55.0, "CN-1").await;
    let path = format!("/creditnotes/{cn}");

    // Created as a Draft, numbered, totals computed by the server.
    let view = env.get(&path).await.expect(200).body;
    assert_eq!(view["id"], cn.as_str());
    assert_eq!(view["creditNoteNumber"], "CAN0001");
    assert_eq!(view["status"], "Draft");
    assert_eq!(view["customer"]["name"], "Jane Citizen");
    assert_eq!(view["creditNoteDate"], "2026-03-10T12:00:00Z");
    assert_eq!(view["amountTaxStatus"], "Inclusive");
    assert_eq!(dec(&view["totalAmount"]), dec!(55));
    assert_eq!(dec(&view["totalTaxAmount"]), dec!(5));
    assert_eq!(dec(&view["balance"]), dec!(55));
    assert_eq!(view["reference"], "CN-1");
    assert_eq!(view["template"]["name"], "Professional Credit Note");
    assert_eq!(view["emailStatus"], "Unsent");
    assert_eq!(view["transactionLinks"], json!([]));
    let line = &view["lineItems"][0];
    assert_eq!(line["lineNumber"], 1);
    assert!(line["lineId"].is_string());
    assert_eq!(line["itemDetails"]["item"]["name"], "Consultation");
    assert_eq!(dec(&line["itemDetails"]["price"]), dec!(55));
    assert_eq!(line["taxRate"]["name"], "GST");
    assert_eq!(dec(&line["taxAmount"]), dec!(5));
    assert_eq!(line["taxIsModified"], false);
    assert!(line.get("serviceDate").is_none());

    // Approve (merge-patch only), then apply 55 of the 110.
    env.patch_as(&path, &json!({"status": "Approved"}), "application/json")
        .await
        .expect(415);
    approve(&env, &cn).await;
    assert_eq!(env.get(&path).await.body["status"], "Approved");
    let r = env
        .post(&format!("{path}/transactionlinks"), &link(&invoice, 55.0))
        .await
        .expect(201);
    assert_eq!(r.body, json!({"id": format!("INV-{invoice}")}));

    let inv = env.get(&format!("/invoices/{invoice}")).await.body;
    assert_eq!(dec(&inv["balance"]), dec!(55));
    assert_eq!(inv["status"], "Approved");
    let links = inv["transactionLinks"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["transactionType"], "CreditNote");
    assert_eq!(links[0]["transactionId"], cn.as_str());
    assert_eq!(links[0]["transactionNumber"], "CAN0001");
    assert_eq!(links[0]["transactionDate"], "2026-03-10T12:00:00Z");
    assert_eq!(dec(&links[0]["transactionAmount"]), dec!(55));
    assert_eq!(
        links[0]["href"],
        format!("/{}/creditnotes/{cn}", env.book).as_str()
    );

    // Fully applied: the credit note is Closed with nothing left.
    let view = env.get(&path).await.body;
    assert_eq!(view["status"], "Closed");
    assert_eq!(dec(&view["balance"]), dec!(0));
    let cl = &view["transactionLinks"][0];
    assert_eq!(cl["linkId"], format!("INV-{invoice}").as_str());
    assert_eq!(cl["transactionType"], "Invoice");
    assert_eq!(cl["transactionId"], invoice.as_str());
    assert_eq!(cl["transactionNumber"], "INV0001");
    assert_eq!(cl["transactionReference"], "R-1");
    assert_eq!(
        cl["href"],
        format!("/{}/invoices/{invoice}", env.book).as_str()
    );

    // A receipt for 30 and a second credit note for the last 25: the invoice is Paid.
    env.post(
        "/receipts",
        &json!({"customer": "Jane Citizen", "receiptDate": "2026-03-11", "totalAmount": 30,
                "transactionLinks": [{"transactionType": "Invoice", "transactionId": invoice, "transactionAmount": 30}]}),
    )
    .await
    .expect(201);
    // Receipts see what the credit note took: 26 is more than the 25 left.
    env.post(
        "/receipts",
        &json!({"customer": "Jane Citizen", "receiptDate": "2026-03-11", "totalAmount": 26,
                "transactionLinks": [{"transactionType": "Invoice", "transactionId": invoice, "transactionAmount": 26}]}),
    )
    .await
    .expect_invalid_at("transactionLinks[0].transactionAmount");
    let second = credit_note(&env, "Jane Citizen", 40.0, "CN-2").await;
    approve(&env, &second).await;
    env.post(
        &format!("/creditnotes/{second}/transactionlinks"),
        &link(&invoice, 25.0),
    )
    .await
    .expect(201);
    let inv = env.get(&format!("/invoices/{invoice}")).await.body;
    assert_eq!(dec(&inv["balance"]), dec!(0));
    assert_eq!(inv["status"], "Paid");
    assert_eq!(inv["transactionLinks"].as_array().unwrap().len(), 3);
    let second_view = env.get(&format!("/creditnotes/{second}")).await.body;
    assert_eq!(second_view["creditNoteNumber"], "CAN0002");
    assert_eq!(second_view["status"], "Approved");
    assert_eq!(dec(&second_view["balance"]), dec!(15));

    // The customer owes nothing and has 15 of credit unapplied.
    let customers = env
        .get("/customers?filter=name eq 'Jane Citizen'")
        .await
        .expect(200);
    assert_eq!(dec(&customers.list()[0]["balance"]), dec!(-15));
    let state = env
        .send(env.http.get(format!("{}/__admin/state", env.origin)))
        .await
        .expect(200);
    assert_eq!(state.body["books"][0]["credit_notes"], 2);
    assert_eq!(dec(&state.body["books"][0]["outstanding"]), dec!(0));
    assert_eq!(dec(&state.body["books"][0]["unapplied_credit"]), dec!(15));

    // A Paid invoice refuses edits, a return to Draft and deletion whatever paid it.
    env.patch(&format!("/invoices/{invoice}"), &json!({"status": "Draft"}))
        .await
        .expect(400);
    env.delete(&format!("/invoices/{invoice}"))
        .await
        .expect(400);
}

#[tokio::test]
async fn allocations_beyond_either_balance_or_otherwise_wrong_are_refused() {
    let env = Env::start().await;
    let invoice = approved_invoice(&env).await;
    let cn = credit_note(&env, "Jane Citizen", 200.0, "CN-big").await;
    approve(&env, &cn).await;
    let links = format!("/creditnotes/{cn}/transactionlinks");

    // More than the invoice owes (110), though the credit note has 200.
    env.post(&links, &link(&invoice, 110.01))
        .await
        .expect_invalid_at("transactionAmount");
    // Nothing, less than nothing, sub-cent amounts.
    env.post(&links, &link(&invoice, 0.0))
        .await
        .expect_invalid_at("transactionAmount");
    env.post(&links, &link(&invoice, -5.0))
        .await
        .expect_invalid_at("transactionAmount");
    env.post(&links, &link(&invoice, 10.005))
        .await
        .expect_invalid_at("transactionAmount");
    // Only invoices; required fields; a GUID.
    let mut receipt_type = link(&invoice, 10.0);
    receipt_type["transactionType"] = json!("Receipt");
    env.post(&links, &receipt_type)
        .await
        .expect_invalid_at("transactionType");
    env.post(
        &links,
        &json!({"transactionType": "Invoice", "transactionId": invoice}),
    )
    .await
    .expect_invalid_at("transactionAmount");
    env.post(&links, &link("not-a-guid", 10.0))
        .await
        .expect_invalid_at("transactionId");
    // An invoice that does not exist, a credit note that does not exist.
    env.post(&links, &link(&uuid::Uuid::new_v4().to_string(), 10.0))
        .await
        .expect(404);
    env.post(
        &format!("/creditnotes/{}/transactionlinks", uuid::Uuid::new_v4()),
        &link(&invoice, 10.0),
    )
    .await
    .expect(404);
    // Another customer's invoice; a draft invoice.
    let other = env
        .invoice("Other Person", "Inclusive", &[("110", "1", "GST")])
        .await
        .expect(201)
        .id();
    env.post(&links, &link(&other, 10.0))
        .await
        .expect_invalid_at("transactionId");
    let draft = env
        .invoice("Jane Citizen", "Inclusive", &[("50", "1", "GST")])
        .await
        .expect(201)
        .id();
    env.post(&links, &link(&draft, 10.0))
        .await
        .expect_invalid_at("transactionId");

    // 100 applies; a second link to the same invoice is refused (PATCH the link instead).
    env.post(&links, &link(&invoice, 100.0)).await.expect(201);
    env.post(&links, &link(&invoice, 5.0))
        .await
        .expect_invalid_at("transactionId");
    // More than the credit note has left: 100 of 200 is applied, the second invoice owes 50.
    env.patch(
        &format!("/invoices/{draft}"),
        &json!({"status": "Approved"}),
    )
    .await
    .expect(204);
    let small = credit_note(&env, "Jane Citizen", 20.0, "CN-small").await;
    approve(&env, &small).await;
    env.post(
        &format!("/creditnotes/{small}/transactionlinks"),
        &link(&draft, 20.01),
    )
    .await
    .expect_invalid_at("transactionAmount");

    // PATCH of a link: merge-patch only, same limits (own amount counts as free).
    let link_path = format!("{links}/INV-{}", invoice.to_uppercase());
    env.patch_as(
        &link_path,
        &json!({"transactionAmount": 110}),
        "application/json",
    )
    .await
    .expect(415);
    env.patch(&link_path, &json!({"transactionAmount": 110.5}))
        .await
        .expect_invalid_at("transactionAmount");
    env.patch(&link_path, &json!({}))
        .await
        .expect_invalid_at("transactionAmount");
    env.patch(&link_path, &json!({"transactionAmount": 110}))
        .await
        .expect(204);
    let inv = env.get(&format!("/invoices/{invoice}")).await.body;
    assert_eq!(inv["status"], "Paid");
    assert_eq!(dec(&inv["balance"]), dec!(0));
    assert_eq!(
        dec(&env.get(&format!("/creditnotes/{cn}")).await.body["balance"]),
        dec!(90)
    );
    // A Paid invoice has nothing left to credit.
    env.post(
        &format!("/creditnotes/{small}/transactionlinks"),
        &link(&invoice, 10.0),
    )
    .await
    .expect_invalid_at("transactionId");
    env.patch(
        &format!("{links}/INV-{}", uuid::Uuid::new_v4()),
        &json!({"transactionAmount": 1}),
    )
    .await
    .expect(404);
    // Nothing was applied by the refused attempts.
    let inv = env.get(&format!("/invoices/{draft}")).await.body;
    assert_eq!(dec(&inv["balance"]), dec!(50));
    assert_eq!(inv["transactionLinks"], json!([]));
}

#[tokio::test]
async fn a_draft_credit_note_cannot_be_allocated() {
    let env = Env::start().await;
    let invoice = approved_invoice(&env).await;
    let cn = credit_note(&env, "Jane Citizen", 55.0, "CN-draft").await;
    let r = env
        .post(
            &format!("/creditnotes/{cn}/transactionlinks"),
            &link(&invoice, 10.0),
        )
        .await
        .expect(400);
    assert!(r.text.contains("draft"), "{}", r.text);
    let inv = env.get(&format!("/invoices/{invoice}")).await.body;
    assert_eq!(dec(&inv["balance"]), dec!(110));
    // A status sent on POST or PUT is ignored: still a Draft.
    let mut body = credit_body("Jane Citizen", 10.0, "CN-status");
    body["status"] = json!("Approved");
    let id = env.post("/creditnotes", &body).await.expect(201).id();
    assert_eq!(
        env.get(&format!("/creditnotes/{id}")).await.body["status"],
        "Draft"
    );
    env.put(&format!("/creditnotes/{id}"), &body)
        .await
        .expect(204);
    assert_eq!(
        env.get(&format!("/creditnotes/{id}")).await.body["status"],
        "Draft"
    );
    // Closed is not a status to ask for.
    env.patch(&format!("/creditnotes/{id}"), &json!({"status": "Closed"}))
        .await
        .expect_invalid_at("status");
}

#[tokio::test]
async fn unlinking_restores_balances_and_statuses_and_links_block_edits() {
    let env = Env::start().await;
    let invoice = approved_invoice(&env).await;
    let cn = credit_note(&env, "Jane Citizen", 110.0, "CN-all").await;
    let path = format!("/creditnotes/{cn}");
    approve(&env, &cn).await;
    env.post(&format!("{path}/transactionlinks"), &link(&invoice, 110.0))
        .await
        .expect(201);
    assert_eq!(
        env.get(&format!("/invoices/{invoice}")).await.body["status"],
        "Paid"
    );
    assert_eq!(env.get(&path).await.body["status"], "Closed");

    // While linked: no return to Draft, no delete, no total below what is applied, no
    // change of customer.
    env.patch(&path, &json!({"status": "Draft"}))
        .await
        .expect_invalid_at("status");
    env.delete(&path).await.expect(400);
    env.put(&path, &credit_body("Jane Citizen", 100.0, "CN-all"))
        .await
        .expect_invalid_at("lineItems");
    env.patch(&path, &json!({"customer": "Other Person"}))
        .await
        .expect_invalid_at("customer");
    // Edits that keep the total are fine; a larger total reopens the credit note.
    env.patch(
        &path,
        &json!({"reference": "CN-all (edited)", "notes": null}),
    )
    .await
    .expect(204);
    let view = env.get(&path).await.body;
    assert_eq!(view["reference"], "CN-all (edited)");
    assert!(view.get("notes").is_none());
    assert_eq!(view["status"], "Closed");
    env.put(&path, &credit_body("Jane Citizen", 120.0, "CN-all"))
        .await
        .expect(204);
    let view = env.get(&path).await.body;
    assert_eq!(view["status"], "Approved");
    assert_eq!(dec(&view["balance"]), dec!(10));
    assert_eq!(view["transactionLinks"].as_array().unwrap().len(), 1);

    // Unlink (link ids match in any case): the invoice owes 110 again and is Approved.
    env.delete(&format!(
        "{path}/transactionlinks/INV-{}",
        uuid::Uuid::new_v4()
    ))
    .await
    .expect(404);
    env.delete(&format!("{path}/transactionlinks/inv-{invoice}"))
        .await
        .expect(204);
    env.delete(&format!("{path}/transactionlinks/INV-{invoice}"))
        .await
        .expect(404);
    let inv = env.get(&format!("/invoices/{invoice}")).await.body;
    assert_eq!(inv["status"], "Approved");
    assert_eq!(dec(&inv["balance"]), dec!(110));
    assert_eq!(inv["transactionLinks"], json!([]));
    let view = env.get(&path).await.body;
    assert_eq!(view["status"], "Approved");
    assert_eq!(dec(&view["balance"]), dec!(120));
    assert_eq!(view["transactionLinks"], json!([]));

    // Now free: back to Draft, and deleted.
    env.patch(&path, &json!({"status": "Draft"}))
        .await
        .expect(204);
    env.delete(&path).await.expect(204);
    env.get(&path).await.expect(404);
    // With nothing applied the invoice may return to Draft.
    env.patch(&format!("/invoices/{invoice}"), &json!({"status": "Draft"}))
        .await
        .expect(204);
}

#[tokio::test]
async fn an_invoice_edited_down_to_what_is_applied_is_paid_and_keeps_its_customer() {
    let env = Env::start().await;
    let invoice = approved_invoice(&env).await;
    let cn = credit_note(&env, "Jane Citizen", 55.0, "CN-half").await;
    approve(&env, &cn).await;
    env.post(
        &format!("/creditnotes/{cn}/transactionlinks"),
        &link(&invoice, 55.0),
    )
    .await
    .expect(201);
    let ipath = format!("/invoices/{invoice}");
    env.patch(&ipath, &json!({"customer": "Other Person"}))
        .await
        .expect_invalid_at("customer");
    let id: uuid::Uuid = invoice.parse().unwrap();
    let mut body = env.sim.with_book(|b, _| b.invoice_input(&b.invoices[&id]));
    body["lineItems"][0]["itemDetails"]["price"] = json!(50);
    env.put(&ipath, &body).await.expect_invalid_at("lineItems");
    body["lineItems"][0]["itemDetails"]["price"] = json!(55);
    env.put(&ipath, &body).await.expect(204);
    let inv = env.get(&ipath).await.body;
    assert_eq!(dec(&inv["balance"]), dec!(0));
    assert_eq!(inv["status"], "Paid");
}

#[tokio::test]
async fn credit_note_lists_filter_sort_select_and_page() {
    let env = Env::start().await;
    env.customer("Jane Citizen").await;
    let other = env.customer("Other Person").await;
    env.item("Consultation", None).await;
    for (who, price, reference) in [
        ("Jane Citizen", 10.0, "CN-A"),
        ("Other Person", 20.0, "CN-B"),
        ("Jane Citizen", 30.0, "CN-C"),
    ] {
        credit_note(&env, who, price, reference).await;
    }
    let r = env
        .get("/creditnotes?filter=reference eq 'CN-B'")
        .await
        .expect(200);
    assert_eq!(r.list().len(), 1);
    assert_eq!(r.list()[0]["customer"]["name"], "Other Person");
    assert_eq!(r.header("X-Total-Count"), Some("1"));
    let r = env
        .get(&format!("/creditNotes?filter=customer.id eq '{other}'"))
        .await
        .expect(200);
    assert_eq!(r.list().len(), 1);
    assert_eq!(r.list()[0]["reference"], "CN-B");
    let r = env
        .get("/creditnotes?orderby=totalAmount desc&select=reference,totalAmount")
        .await
        .expect(200);
    let refs: Vec<&str> = r
        .list()
        .iter()
        .map(|c| c["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["CN-C", "CN-B", "CN-A"]);
    assert!(r.list()[0].get("customer").is_none());
    let r = env.get("/creditnotes?page=2&perpage=2").await.expect(200);
    assert_eq!(r.list().len(), 1);
    assert_eq!(r.header("X-Total-Count"), Some("3"));
    let link = r.header("Link").unwrap();
    assert!(
        link.contains("rel=\"first\"") && link.contains("rel=\"prev\""),
        "{link}"
    );
    env.get("/creditnotes?filter=reference eq")
        .await
        .expect_invalid_at("query");
    let r = env
        .get("/creditnotes?filter=creditnotedate le '2026-03-31' and status eq 'Draft'")
        .await
        .expect(200);
    assert_eq!(r.list().len(), 3);
}

#[tokio::test]
async fn validation_and_what_credit_notes_keep_in_use() {
    let env = Env::start().await;
    let jane = env.customer("Jane Citizen").await;
    let item = env.item("Consultation", None).await;
    // Required fields, references by name, line shapes.
    let r = env.post("/creditnotes", &json!({})).await.expect(400);
    for field in ["customer", "creditNoteDate", "amountTaxStatus"] {
        assert!(
            r.error_locations().iter().any(|l| l == field),
            "{field}: {}",
            r.text
        );
    }
    let mut body = credit_body("Nobody", 10.0, "x");
    env.post("/creditnotes", &body)
        .await
        .expect_invalid_at("customer");
    body["customer"] = json!("Jane Citizen");
    body["lineItems"][0]["taxRate"] = json!("NOPE");
    env.post("/creditnotes", &body)
        .await
        .expect_invalid_at("lineItems[0].taxRate");
    body["template"] = json!("No such template");
    body["lineItems"][0]["taxRate"] = json!("GST");
    env.post("/creditnotes", &body)
        .await
        .expect_invalid_at("template");
    // Account lines, a tax override and an Exclusive total; the customer by id.
    let id = env
        .post(
            "/creditnotes",
            &json!({"customer": jane, "creditNoteDate": "2026-03-10T00:00:00Z", "amountTaxStatus": "Exclusive",
                    "template": "Professional Customer Adjustment Note",
                    "lineItems": [
                        {"lineNumber": 1, "taxRate": "GST", "accountDetails": {"ledgerAccount": "Consultation Fees", "amount": 100}},
                        {"lineNumber": 2, "taxRate": "GST", "taxAmount": 1.5,
                         "itemDetails": {"item": item, "price": 10, "quantity": 2, "discountAmount": 5}}]}),
        )
        .await
        .expect(201)
        .id();
    let view = env
        .get(&format!("/creditnotes/{id}"))
        .await
        .expect(200)
        .body;
    // 100 + 10 GST, and 20 (the invoice-only discount is ignored) + the 1.50 override.
    assert_eq!(dec(&view["totalAmount"]), dec!(131.5));
    assert_eq!(dec(&view["totalTaxAmount"]), dec!(11.5));
    assert_eq!(
        view["lineItems"][0]["accountDetails"]["ledgerAccount"]["name"],
        "Consultation Fees"
    );
    assert_eq!(view["lineItems"][1]["taxIsModified"], true);
    assert!(
        view["lineItems"][1]["itemDetails"]
            .get("discountAmount")
            .is_none()
    );
    assert_eq!(
        view["template"]["name"],
        "Professional Customer Adjustment Note"
    );
    let selected = env
        .get(&format!("/creditnotes/{id}?select=id,totalAmount"))
        .await
        .expect(200)
        .body;
    assert_eq!(
        selected,
        json!({"id": id, "totalAmount": view["totalAmount"].clone()})
    );

    // A customer with credit notes cannot be deleted, as one with invoices cannot; nor an
    // item used on one.
    env.delete(&format!("/customers/{jane}")).await.expect(400);
    env.delete(&format!("/items/{item}")).await.expect(400);
    env.delete(&format!("/creditnotes/{id}")).await.expect(204);
    env.delete(&format!("/items/{item}")).await.expect(204);
    env.delete(&format!("/customers/{jane}")).await.expect(204);
}

#[tokio::test]
async fn a_customer_with_invoices_or_credit_notes_cannot_be_deleted() {
    let env = Env::start().await;
    let with_invoice = env.customer("Jane Citizen").await;
    let with_credit = env.customer("Other Person").await;
    env.item("Consultation", None).await;
    env.invoice("Jane Citizen", "Inclusive", &[("110", "1", "GST")])
        .await
        .expect(201);
    credit_note(&env, "Other Person", 10.0, "CN-1").await;
    let a = env
        .delete(&format!("/customers/{with_invoice}"))
        .await
        .expect(400);
    let b = env
        .delete(&format!("/customers/{with_credit}"))
        .await
        .expect(400);
    assert_eq!(a.body, b.body);
}

// ---- conformance -------------------------------------------------------------------------

#[tokio::test]
async fn credit_note_exchanges_conform_to_the_spec() {
    let spec = Spec::load(&apis_dir().join("reckon-one/openapi.yaml")).expect("reckon spec loads");
    let env = Env::start().await;
    let invoice = approved_invoice(&env).await;
    env.sim.with_book(|b, _| {
        b.classifications
            .insert(uuid::Uuid::new_v4(), "Clinic A".into())
    });
    let mut body = credit_body("Jane Citizen", 55.0, "CN-1");
    body["classification"] = json!("Clinic A");
    let cn = env.post("/creditNotes", &body).await.expect(201).id();
    let path = format!("/creditNotes/{cn}");
    env.put(&path, &body).await.expect(204);
    env.patch(&path, &json!({"status": "Approved", "notes": "Approved"}))
        .await
        .expect(204);
    env.post(&format!("{path}/transactionLinks"), &link(&invoice, 50.0))
        .await
        .expect(201);
    env.post(&format!("{path}/transactionLinks"), &link(&invoice, 500.0))
        .await
        .expect(400);
    env.patch(
        &format!("{path}/transactionlinks/INV-{invoice}"),
        &json!({"transactionAmount": 55}),
    )
    .await
    .expect(204);
    let view = env.get(&path).await.expect(200).body;
    assert_eq!(view["classification"]["name"], "Clinic A");
    env.get("/creditnotes").await.expect(200);
    env.get(&format!("/invoices/{invoice}")).await.expect(200);
    env.delete(&path).await.expect(400);
    env.delete(&format!("{path}/transactionlinks/INV-{invoice}"))
        .await
        .expect(204);
    env.patch_as(&path, &json!({"notes": "x"}), "application/json")
        .await
        .expect(415);
    env.get(&format!("/creditnotes/{}", uuid::Uuid::new_v4()))
        .await
        .expect(404);
    env.delete(&path).await.expect(204);

    let mut violations = Vec::new();
    let mut checked = 0;
    for ex in env.sim.traffic.exchanges() {
        let lowered = ex.path.to_ascii_lowercase();
        if !lowered.contains("/creditnotes") && !lowered.contains("/invoices/") {
            continue;
        }
        let method = ex.method.to_ascii_lowercase();
        let what = format!("{} {} → {}", ex.method, ex.path, ex.status);
        let Some(template) = spec.match_path_for_method("/r1/v2", &method, &ex.path) else {
            violations.push(format!("{what}: no spec operation"));
            continue;
        };
        if (200..300).contains(&ex.status)
            && matches!(method.as_str(), "post" | "put" | "patch")
            && let Some(req) = ex.request_json()
            && let Err(e) = spec.validate_request(&template, &method, &req)
        {
            violations.push(format!("{what}: request: {e:?}"));
        }
        if ex.status == 204 {
            if !ex.response_body.is_empty() {
                violations.push(format!("{what}: 204 with a body"));
            }
            continue;
        }
        let Some(resp) = ex.response_json() else {
            violations.push(format!("{what}: response is not JSON"));
            continue;
        };
        if resp.to_string().contains(":null") {
            violations.push(format!("{what}: a null: {resp}"));
        }
        let declared = spec
            .response_codes(&template, &method)
            .contains(&ex.status.to_string());
        if !declared {
            violations.push(format!("{what}: status not declared"));
            continue;
        }
        if let Err(e) = spec.validate_response(&template, &method, ex.status, &resp) {
            violations.push(format!("{what}: response: {e:?}"));
        }
        checked += 1;
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    assert!(checked >= 8, "only {checked} responses checked");
}
