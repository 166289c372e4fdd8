//! Black-box tests of the Reckon One simulator over real HTTP: the identity server, the
//! APIM gateway rules, book-scoped resources, validation, invoice arithmetic, receipts,
//! lists, rate limiting and fault injection.

use crate::reckon_common;

use base64::Engine;
use reckon_common::{Env, MERGE_PATCH, dec, quiet_config};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use simulators::common::FaultRule;
use simulators::reckon::ReckonConfig;
use simulators::reckon::oauth::OAuthConfig;
use simulators::reckon::tax::Rounding;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const DENIED: &str = "Authorization has been denied for this request.";

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

async fn token_call(env: &Env, auth: &str, form: &[(&str, &str)]) -> reckon_common::Resp {
    env.send(
        env.http
            .post(format!("{}/connect/token", env.origin))
            .header("Authorization", auth)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap()),
    )
    .await
}

/// GET /customers with a given bearer token.
async fn with_token(env: &Env, token: &str) -> reckon_common::Resp {
    env.send(
        env.http
            .get(env.url("/customers"))
            .bearer_auth(token)
            .header("Ocp-Apim-Subscription-Key", &env.key),
    )
    .await
}

#[track_caller]
fn assert_denied(r: &reckon_common::Resp) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body, json!({"message": DENIED, "code": 401}));
}

// ---- OAuth 2 identity server ----------------------------------------------------------------

#[tokio::test]
async fn oauth_code_flow_refresh_rotation_revocation_and_expiry() {
    let env = Env::start().await;
    let oauth = env.sim.config().oauth.clone();
    let redirect = "http://127.0.0.1:1/cb";
    let query = serde_urlencoded::to_string([
        ("client_id", oauth.client_id.as_str()),
        ("response_type", "code"),
        ("scope", "openid read write offline_access"),
        ("redirect_uri", redirect),
        ("state", "xyz 123"),
        ("nonce", "n-1"),
    ])
    .unwrap();
    let r = env
        .send(
            env.http
                .get(format!("{}/connect/authorize?{query}", env.origin)),
        )
        .await
        .expect(302);
    let location = url::Url::parse(r.header("location").expect("Location")).unwrap();
    assert!(location.as_str().starts_with(redirect), "{location}");
    let params: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(params.get("state").map(String::as_str), Some("xyz 123"));
    let code = params.get("code").expect("code").clone();

    let auth = basic(&oauth.client_id, &oauth.client_secret);
    let wrong = basic(&oauth.client_id, "not-the-secret");
    // Wrong client secret: invalid_client, and the code stays usable.
    let r = token_call(
        &env,
        &wrong,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
        ],
    )
    .await
    .expect(401);
    assert_eq!(r.body["error"], "invalid_client");

    let first = token_call(
        &env,
        &auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
        ],
    )
    .await
    .expect(200);
    assert_eq!(first.body["token_type"], "Bearer");
    assert_eq!(first.body["expires_in"], 10800);
    let access1 = first.body["access_token"].as_str().unwrap().to_string();
    let refresh1 = first.body["refresh_token"].as_str().unwrap().to_string();
    with_token(&env, &access1).await.expect(200);

    // A code is single-use.
    let r = token_call(
        &env,
        &auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
        ],
    )
    .await
    .expect(400);
    assert_eq!(r.body["error"], "invalid_grant");

    // Refresh rotates: a new refresh token, and the old one is dead.
    let second = token_call(
        &env,
        &auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh1),
            ("redirect_uri", redirect),
        ],
    )
    .await
    .expect(200);
    let access2 = second.body["access_token"].as_str().unwrap().to_string();
    let refresh2 = second.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh1);
    assert_ne!(access2, access1);
    assert_eq!(second.body["expires_in"], 10800);
    let reused = token_call(
        &env,
        &auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh1),
        ],
    )
    .await
    .expect(400);
    assert_eq!(reused.body, json!({"error": "invalid_grant"}));
    let r = token_call(
        &env,
        &wrong,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
        ],
    )
    .await
    .expect(401);
    assert_eq!(r.body["error"], "invalid_client");
    with_token(&env, &access2).await.expect(200);

    // Revocation: 200, and the revoked access token no longer works.
    let revoke = |token: &str, hint: &str| {
        env.http
            .post(format!("{}/connect/revocation", env.origin))
            .header("Authorization", &auth)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                serde_urlencoded::to_string([("token", token), ("token_type_hint", hint)]).unwrap(),
            )
    };
    env.send(revoke(&access2, "access_token")).await.expect(200);
    assert_denied(&with_token(&env, &access2).await);
    env.send(revoke(&refresh2, "refresh_token"))
        .await
        .expect(200);
    let r = token_call(
        &env,
        &auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
        ],
    )
    .await
    .expect(400);
    assert_eq!(r.body["error"], "invalid_grant");

    // Access tokens last 3 hours.
    let fresh = env.sim.issue_tokens();
    env.sim.clock.advance(Duration::from_secs(10799));
    with_token(&env, &fresh.access_token).await.expect(200);
    env.sim.clock.advance(Duration::from_secs(1));
    assert_denied(&with_token(&env, &fresh.access_token).await);
    // ...while the refresh token still gets a new one.
    let r = token_call(
        &env,
        &auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &fresh.refresh_token),
        ],
    )
    .await
    .expect(200);
    with_token(&env, r.body["access_token"].as_str().unwrap())
        .await
        .expect(200);
}

#[tokio::test]
async fn oauth_lifetime_and_rotation_are_configurable() {
    let env = Env::with(ReckonConfig {
        oauth: OAuthConfig {
            access_ttl_secs: 600,
            rotate_refresh_tokens: false,
            ..OAuthConfig::default()
        },
        ..quiet_config()
    })
    .await;
    let oauth = env.sim.config().oauth.clone();
    let auth = basic(&oauth.client_id, &oauth.client_secret);
    let pair = env.sim.issue_tokens();
    assert_eq!(pair.expires_in, 600);
    let a = token_call(
        &env,
        &auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &pair.refresh_token),
        ],
    )
    .await
    .expect(200);
    assert_eq!(a.body["expires_in"], 600);
    assert_eq!(a.body["refresh_token"], pair.refresh_token.as_str());
    // ReUse: the same refresh token works again.
    token_call(
        &env,
        &auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &pair.refresh_token),
        ],
    )
    .await
    .expect(200);
    env.sim.clock.advance(Duration::from_secs(601));
    assert_denied(&with_token(&env, &pair.access_token).await);
    assert_denied(&with_token(&env, a.body["access_token"].as_str().unwrap()).await);
}

#[tokio::test]
async fn authorize_rejects_unknown_clients_and_redirects() {
    let env = Env::start().await;
    let bad_client = format!(
        "{}/connect/authorize?client_id=someone-else&response_type=code&redirect_uri=http://127.0.0.1:1/cb&state=s",
        env.origin
    );
    let r = env.send(env.http.get(bad_client)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let bad_redirect = format!(
        "{}/connect/authorize?client_id={}&response_type=code&redirect_uri=https://evil.example/cb&state=s",
        env.origin,
        env.sim.config().oauth.client_id
    );
    assert_eq!(env.send(env.http.get(bad_redirect)).await.status, 400);
}

// ---- gateway: subscription key and bearer token ------------------------------------------

#[tokio::test]
async fn every_call_needs_subscription_key_and_bearer_token() {
    let env = Env::start().await;
    let url = env.url("/customers");
    // No subscription key: APIM's 401.
    let r = env
        .send(env.http.get(&url).bearer_auth(&env.token))
        .await
        .expect(401);
    assert_eq!(
        r.body,
        json!({"statusCode": 401, "message": "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."})
    );
    // A wrong key: APIM's other 401.
    let r = env
        .send(
            env.http
                .get(&url)
                .bearer_auth(&env.token)
                .header("Ocp-Apim-Subscription-Key", "nope"),
        )
        .await
        .expect(401);
    assert_eq!(r.body["statusCode"], 401);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("invalid subscription key")
    );
    assert!(r.body.get("code").is_none());
    // The query-string form of the key.
    env.send(
        env.http
            .get(format!("{url}?subscription-key={}", env.key))
            .bearer_auth(&env.token),
    )
    .await
    .expect(200);
    // Key but no token, and key with a bad token: Reckon's own 401.
    let r = env
        .send(
            env.http
                .get(&url)
                .header("Ocp-Apim-Subscription-Key", &env.key),
        )
        .await;
    assert_denied(&r);
    assert_denied(&with_token(&env, "not-a-token").await);
    // The same for writes, /books and /heartbeat.
    let r = env
        .send(
            env.http
                .post(&url)
                .header("Ocp-Apim-Subscription-Key", &env.key)
                .json(&json!({"name": "X"})),
        )
        .await;
    assert_denied(&r);
    for path in ["/books", "/heartbeat"] {
        let r = env
            .send(
                env.http
                    .get(format!("{}{path}", env.api))
                    .header("Ocp-Apim-Subscription-Key", &env.key),
            )
            .await;
        assert_denied(&r);
        let r = env
            .send(
                env.http
                    .get(format!("{}{path}", env.api))
                    .bearer_auth(&env.token),
            )
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(r.body["statusCode"], 401);
    }
    assert_eq!(env.sim.with_book(|b, _| b.customers.len()), 0);
}

// ---- books, heartbeat, routing -------------------------------------------------------------

#[tokio::test]
async fn books_heartbeat_unknown_book_and_case_insensitive_paths() {
    let env = Env::start().await;
    let r = env.get_url(&format!("{}/books", env.api)).await.expect(200);
    let books = r.list();
    assert_eq!(books.len(), 1);
    assert_eq!(books[0]["id"], env.book.as_str());
    assert_eq!(books[0]["country"], "AU");
    let r = env
        .get_url(&format!("{}/books/{}", env.api, env.book))
        .await
        .expect(200);
    assert_eq!(r.body["id"], env.book.as_str());
    let r = env
        .get_url(&format!("{}/heartbeat", env.api))
        .await
        .expect(200);
    assert_eq!(r.body["status"], "OK");

    let not_found = json!({"message": "Resource not found.", "code": 404});
    let other = uuid::Uuid::new_v4();
    for url in [
        format!("{}/{other}/customers", env.api),
        format!("{}/not-a-guid/customers", env.api),
        format!("{}/{other}/invoices", env.api),
        format!("{}/books/{other}", env.api),
        env.url(&format!("/customers/{other}")),
        env.url("/no-such-resource"),
    ] {
        let r = env.get_url(&url).await.expect(404);
        assert_eq!(r.body, not_found, "{url}");
    }
    let r = env
        .send(
            env.authed(env.http.post(format!("{}/{other}/customers", env.api)))
                .json(&json!({"name": "Nobody"})),
        )
        .await
        .expect(404);
    assert_eq!(r.body, not_found);

    // Case-insensitive routing.
    let customer = env.customer("Case Test").await;
    env.item("Consultation", None).await;
    env.get_url(&format!("{}/Books", env.api)).await.expect(200);
    let r = env
        .get_url(&format!(
            "{}/{}/Customers/{customer}",
            env.api,
            env.book.to_uppercase()
        ))
        .await
        .expect(200);
    assert_eq!(r.body["name"], "Case Test");
    let invoice = env
        .invoice("Case Test", "Inclusive", &[("10", "1", "GST")])
        .await
        .expect(201)
        .id();
    for (n, segment) in ["LineItems", "lineitems"].into_iter().enumerate() {
        env.post(
            &format!("/Invoices/{invoice}/{segment}"),
            &json!({"lineNumber": 10 + n, "taxRate": "GST",
                    "itemDetails": {"item": "Consultation", "price": 1, "quantity": 1}}),
        )
        .await
        .expect(201);
    }
    let r = env.get(&format!("/invoices/{invoice}")).await.expect(200);
    assert_eq!(r.body["lineItems"].as_array().unwrap().len(), 3);
}

// ---- customers -----------------------------------------------------------------------------

#[tokio::test]
async fn customers_crud_and_typed_sub_resources() {
    let env = Env::start().await;
    let r = env
        .post(
            "/customers",
            &json!({"name": "Jane Citizen", "organisationName": "Citizen Pty Ltd", "businessNumber1": "51824753556",
                    "addresses": [{"type": "Postal", "line1": "1 Harbour St", "suburb": "Sydney", "state": "NSW", "postcode": "2000", "country": "Australia"}],
                    "phoneNumbers": [{"type": "Mobile", "number": "0400 000 000"}],
                    "electronicAddresses": [{"type": "Email", "address": "jane@example.com"}]}),
        )
        .await
        .expect(201);
    let id = r.id();
    assert_eq!(r.body["name"], "Jane Citizen");
    assert_eq!(r.body.as_object().unwrap().len(), 2, "{}", r.text);
    let c = env.get(&format!("/customers/{id}")).await.expect(200).body;
    assert_eq!(c["organisationName"], "Citizen Pty Ltd");
    assert_eq!(c["status"], "Active");
    assert_eq!(c["addresses"][0]["type"]["name"], "Postal");
    assert_eq!(c["addresses"][0]["line1"], "1 Harbour St");
    assert_eq!(c["phoneNumbers"][0]["number"], "0400 000 000");
    assert_eq!(c["electronicAddresses"][0]["address"], "jane@example.com");
    assert!(c["electronicAddresses"][0]["id"].is_string());
    assert!(!c.to_string().contains("null"), "no nulls: {c}");

    // PUT replaces: what is not sent is gone.
    let r = env
        .put(
            &format!("/customers/{id}"),
            &json!({"name": "Jane Citizen", "notes": "replaced",
                    "electronicAddresses": [{"type": "Email", "address": "jane@new.example.com"}]}),
        )
        .await
        .expect(204);
    assert!(r.text.is_empty());
    let c = env.get(&format!("/customers/{id}")).await.body;
    assert_eq!(c["notes"], "replaced");
    assert!(c.get("organisationName").is_none(), "{c}");
    assert_eq!(c["addresses"], json!([]));
    assert_eq!(
        c["electronicAddresses"][0]["address"],
        "jane@new.example.com"
    );

    // PATCH merges, and only as merge-patch+json.
    let r = env
        .patch_as(
            &format!("/customers/{id}"),
            &json!({"notes": "x"}),
            "application/json",
        )
        .await
        .expect(415);
    assert_eq!(
        r.body,
        json!({"message": "application/json is not supported. Please use content-type application/merge-patch+json.", "code": 415})
    );
    env.patch(
        &format!("/customers/{id}"),
        &json!({"branch": "North", "notes": null}),
    )
    .await
    .expect(204);
    let c = env.get(&format!("/customers/{id}")).await.body;
    assert_eq!(c["branch"], "North");
    assert!(c.get("notes").is_none());
    assert_eq!(c["name"], "Jane Citizen");
    assert_eq!(
        c["electronicAddresses"][0]["address"],
        "jane@new.example.com"
    );

    // Sub-resources keyed by type name.
    let base = format!("/customers/{id}");
    let r = env
        .post(
            &format!("{base}/addresses"),
            &json!({"type": "Billing", "line1": "2 Bill St", "postcode": "2001"}),
        )
        .await
        .expect(201);
    assert_eq!(r.body["type"]["name"], "Billing");
    assert!(r.body["id"].is_string());
    env.post(
        &format!("{base}/addresses"),
        &json!({"type": "Billing", "line1": "dup"}),
    )
    .await
    .expect(400);
    env.post(
        &format!("{base}/phoneNumbers"),
        &json!({"type": "Work", "areaCode": "02", "number": "9999 0000"}),
    )
    .await
    .expect(201);
    env.post(
        &format!("{base}/electronicAddresses"),
        &json!({"type": "Website", "address": "https://jane.example.com"}),
    )
    .await
    .expect(201);
    let r = env.get(&format!("{base}/addresses")).await.expect(200);
    assert_eq!(r.list().len(), 1);
    let r = env.get(&format!("{base}/phoneNumbers")).await.expect(200);
    assert_eq!(r.list().len(), 1);
    let r = env
        .get(&format!("{base}/electronicAddresses"))
        .await
        .expect(200);
    assert_eq!(r.list().len(), 2);
    let r = env
        .get(&format!("{base}/addresses/Billing"))
        .await
        .expect(200);
    assert_eq!(r.body["line1"], "2 Bill St");
    let address_id = r.body["id"].clone();
    env.put(
        &format!("{base}/addresses/Billing"),
        &json!({"line1": "3 Bill St", "town": "Sydney"}),
    )
    .await
    .expect(204);
    let r = env
        .get(&format!("{base}/addresses/billing"))
        .await
        .expect(200);
    assert_eq!(r.body["line1"], "3 Bill St");
    assert!(r.body.get("postcode").is_none(), "PUT replaces: {}", r.text);
    assert_eq!(r.body["id"], address_id, "the entry keeps its id");
    env.patch(
        &format!("{base}/addresses/Billing"),
        &json!({"postcode": "2002"}),
    )
    .await
    .expect(204);
    let r = env
        .get(&format!("{base}/addresses/Billing"))
        .await
        .expect(200);
    assert_eq!(
        (r.body["line1"].as_str(), r.body["postcode"].as_str()),
        (Some("3 Bill St"), Some("2002"))
    );
    env.patch_as(
        &format!("{base}/addresses/Billing"),
        &json!({"postcode": "1"}),
        "application/json",
    )
    .await
    .expect(415);
    env.patch(
        &format!("{base}/phoneNumbers/Work"),
        &json!({"extension": "12"}),
    )
    .await
    .expect(204);
    let r = env
        .get(&format!("{base}/phoneNumbers/Work"))
        .await
        .expect(200);
    assert_eq!(
        (r.body["number"].as_str(), r.body["extension"].as_str()),
        (Some("9999 0000"), Some("12"))
    );
    env.put(
        &format!("{base}/electronicAddresses/Email"),
        &json!({"address": "jane@third.example.com"}),
    )
    .await
    .expect(204);
    let r = env
        .get(&format!("{base}/electronicAddresses/Email"))
        .await
        .expect(200);
    assert_eq!(r.body["address"], "jane@third.example.com");
    env.delete(&format!("{base}/electronicAddresses/Website"))
        .await
        .expect(204);
    env.get(&format!("{base}/electronicAddresses/Website"))
        .await
        .expect(404);
    env.delete(&format!("{base}/addresses/Delivery"))
        .await
        .expect(404);
    env.put(
        &format!("{base}/addresses/Delivery"),
        &json!({"line1": "x"}),
    )
    .await
    .expect(404);
    env.post(
        &format!("{base}/addresses"),
        &json!({"type": "Moon base", "line1": "x"}),
    )
    .await
    .expect_invalid_at("addresses[1].type");

    // DELETE.
    env.delete(&format!("/customers/{id}")).await.expect(204);
    env.get(&format!("/customers/{id}")).await.expect(404);
    env.delete(&format!("/customers/{id}")).await.expect(404);
}

// ---- validation ----------------------------------------------------------------------------

#[tokio::test]
async fn schema_rules_and_unknown_references_answer_400_naming_the_field() {
    let env = Env::start().await;
    env.customer("Jane Citizen").await;
    env.item("Consultation", None).await;
    // Customer field limits and required fields.
    env.post("/customers", &json!({"name": "x".repeat(101)}))
        .await
        .expect_invalid_at("name");
    env.post("/customers", &json!({"name": "x".repeat(100)}))
        .await
        .expect(201);
    env.post("/customers", &json!({"notes": "no name"}))
        .await
        .expect_invalid_at("name");
    env.post("/customers", &json!({"name": ""}))
        .await
        .expect_invalid_at("name");
    env.post(
        "/customers",
        &json!({"name": "Long Line", "addresses": [{"type": "Postal", "line1": "y".repeat(81)}]}),
    )
    .await
    .expect_invalid_at("addresses[0].line1");
    env.post(
        "/customers",
        &json!({"name": "Long Mail", "electronicAddresses": [{"type": "Email", "address": format!("{}@x.com", "a".repeat(100))}]}),
    )
    .await
    .expect_invalid_at("electronicAddresses[0].address");
    env.post(
        "/customers",
        &json!({"name": "No Type", "phoneNumbers": [{"number": "1"}]}),
    )
    .await
    .expect_invalid_at("phoneNumbers[0].type");
    env.post(
        "/customers",
        &json!({"name": "Bad Status", "status": "Sleeping"}),
    )
    .await
    .expect_invalid_at("status");
    env.post("/customers", &json!({"name": 42}))
        .await
        .expect_invalid_at("name");
    // Not an object / not JSON.
    env.post("/customers", &json!(["a"])).await.expect(400);
    let r = env
        .send(
            env.authed(env.http.post(env.url("/customers")))
                .header("Content-Type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = env
        .send(
            env.authed(env.http.post(env.url("/customers")))
                .header("Content-Type", "text/plain")
                .body(r#"{"name":"Plain"}"#),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text);

    let good_line = json!({"lineNumber": 1, "taxRate": "GST", "itemDetails": {"item": "Consultation", "price": 10, "quantity": 1}});
    let invoice = |patch: Value| {
        let mut body = json!({"customer": "Jane Citizen", "invoiceDate": "2026-03-02", "amountTaxStatus": "Inclusive",
                              "lineItems": [good_line.clone()]});
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    env.post("/invoices", &invoice(json!({}))).await.expect(201);
    env.post("/invoices", &invoice(json!({"invoiceDate": null})))
        .await
        .expect_invalid_at("invoiceDate");
    env.post("/invoices", &invoice(json!({"invoiceDate": "02/03/2026"})))
        .await
        .expect_invalid_at("invoiceDate");
    env.post("/invoices", &invoice(json!({"amountTaxStatus": null})))
        .await
        .expect_invalid_at("amountTaxStatus");
    env.post("/invoices", &invoice(json!({"amountTaxStatus": "Gross"})))
        .await
        .expect_invalid_at("amountTaxStatus");
    env.post("/invoices", &invoice(json!({"customer": null})))
        .await
        .expect_invalid_at("customer");
    let r = env
        .post("/invoices", &invoice(json!({"customer": "John Nobody"})))
        .await
        .expect_invalid_at("customer");
    assert!(r.text.contains("John Nobody"), "{}", r.text);
    env.post("/invoices", &invoice(json!({"paymentTerms": "Whenever"})))
        .await
        .expect_invalid_at("paymentTerms");
    env.post("/invoices", &invoice(json!({"template": "Comic Sans"})))
        .await
        .expect_invalid_at("template");
    let with_line = |line: Value| invoice(json!({"lineItems": [good_line.clone(), line]}));
    env.post(
        "/invoices",
        &with_line(json!({"lineNumber": 2, "taxRate": "GST", "itemDetails": {"item": "No Such Item", "price": 1}})),
    )
    .await
    .expect_invalid_at("lineItems[1].itemDetails.item");
    env.post(
        "/invoices",
        &with_line(json!({"lineNumber": 2, "taxRate": "VAT", "itemDetails": {"item": "Consultation", "price": 1}})),
    )
    .await
    .expect_invalid_at("lineItems[1].taxRate");
    env.post(
        "/invoices",
        &with_line(
            json!({"lineNumber": 2, "accountDetails": {"ledgerAccount": "Nowhere", "amount": 1}}),
        ),
    )
    .await
    .expect_invalid_at("lineItems[1].accountDetails.ledgerAccount");
    // Both, and neither, of itemDetails/accountDetails.
    let r = env
        .post(
            "/invoices",
            &with_line(
                json!({"lineNumber": 2, "itemDetails": {"item": "Consultation", "price": 1},
                              "accountDetails": {"ledgerAccount": "Sales", "amount": 1}}),
            ),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_locations()
            .iter()
            .any(|l| l.starts_with("lineItems[1]")),
        "{}",
        r.text
    );
    let r = env
        .post(
            "/invoices",
            &with_line(json!({"lineNumber": 2, "description": "text only"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_locations()
            .iter()
            .any(|l| l.starts_with("lineItems[1]")),
        "{}",
        r.text
    );
    env.post(
        "/invoices",
        &with_line(json!({"taxRate": "GST", "itemDetails": {"item": "Consultation", "price": 1}})),
    )
    .await
    .expect_invalid_at("lineItems[1].lineNumber");
    env.post(
        "/invoices",
        &with_line(
            json!({"lineNumber": 2, "itemDetails": {"item": "Consultation", "price": "ten"}}),
        ),
    )
    .await
    .expect_invalid_at("lineItems[1].itemDetails.price");
    // Several problems at once are all reported.
    let r = env
        .post("/invoices", &json!({"lineItems": [{"lineNumber": 1}]}))
        .await
        .expect(400);
    let locations = r.error_locations();
    for field in ["customer", "invoiceDate", "amountTaxStatus"] {
        assert!(
            locations.iter().any(|l| l == field),
            "{field} in {locations:?}"
        );
    }
    // Items: required fields and unknown references.
    env.post("/items", &json!({"name": "No Status"}))
        .await
        .expect_invalid_at("amountTaxStatus");
    env.post("/items", &json!({"amountTaxStatus": "Inclusive"}))
        .await
        .expect_invalid_at("name");
    env.post(
        "/items",
        &json!({"name": "Orphan", "amountTaxStatus": "Inclusive", "parentItem": "Ghost"}),
    )
    .await
    .expect_invalid_at("parentItem");
    env.post(
        "/items",
        &json!({"name": "Taxed", "amountTaxStatus": "Inclusive", "sale": {"ledgerAccount": "Sales", "taxRate": "XYZ"}}),
    )
    .await
    .expect_invalid_at("sale.taxRate");
    env.post(
        "/items",
        &json!({"name": "No Account", "amountTaxStatus": "Inclusive", "sale": {"price": 1}}),
    )
    .await
    .expect_invalid_at("sale.ledgerAccount");
    // Nothing invalid was stored.
    assert_eq!(env.sim.with_book(|b, _| b.invoices.len()), 1);
    assert_eq!(env.sim.with_book(|b, _| b.customers.len()), 2);
}

#[tokio::test]
async fn references_resolve_by_name_or_id_and_come_back_as_id_name() {
    let env = Env::start().await;
    let customer = env.customer("Jane Citizen").await;
    let parent = env.item("Treatments", None).await;
    let child = env.item("Massage", Some("Treatments")).await;
    let grandchild = env.item("Deep Tissue", Some(&child)).await;
    let r = env.get(&format!("/items/{grandchild}")).await.expect(200);
    assert_eq!(r.body["fullName"], "Treatments:Massage:Deep Tissue");
    assert_eq!(r.body["parentItem"]["id"], child.as_str());
    assert_eq!(r.body["sale"]["taxRate"]["name"], "GST");
    assert_eq!(r.body["sale"]["ledgerAccount"]["name"], "Consultation Fees");
    let gst = env
        .get("/taxrates/2026-03-02?filter=name eq 'GST'")
        .await
        .expect(200)
        .list()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let terms = env.get("/terms").await.expect(200);
    let net14 = terms
        .list()
        .iter()
        .find(|t| t["name"] == "14 days net")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = env
        .post(
            "/invoices",
            &json!({"customer": "Jane Citizen", "invoiceDate": "2026-03-02T12:00:00Z", "amountTaxStatus": "Inclusive",
                    "paymentTerms": net14, "template": "Service invoice",
                    "lineItems": [
                        {"lineNumber": 1, "taxRate": "GST", "itemDetails": {"item": "Treatments:Massage", "price": 110, "quantity": 1}},
                        {"lineNumber": 2, "taxRate": gst, "itemDetails": {"item": parent, "price": 55, "quantity": 1}},
                        {"lineNumber": 3, "taxRate": "FRE", "accountDetails": {"ledgerAccount": "Sales", "amount": 20}}
                    ]}),
        )
        .await
        .expect(201);
    assert_eq!(
        r.body.as_object().unwrap().len(),
        1,
        "POST → {{id}}: {}",
        r.text
    );
    let inv = env
        .get(&format!("/invoices/{}", r.id()))
        .await
        .expect(200)
        .body;
    assert_eq!(
        inv["customer"],
        json!({"id": customer, "name": "Jane Citizen"})
    );
    assert_eq!(inv["paymentTerms"]["name"], "14 days net");
    assert_eq!(inv["template"]["name"], "Service invoice");
    assert_eq!(inv["dueDate"], "2026-03-16T12:00:00Z");
    assert_eq!(inv["invoiceDate"], "2026-03-02T12:00:00Z");
    let lines = inv["lineItems"].as_array().unwrap();
    assert_eq!(
        lines[0]["itemDetails"]["item"],
        json!({"id": child, "name": "Treatments:Massage"})
    );
    assert_eq!(lines[1]["itemDetails"]["item"]["id"], parent.as_str());
    assert_eq!(lines[1]["taxRate"], json!({"id": gst, "name": "GST"}));
    assert_eq!(lines[2]["accountDetails"]["ledgerAccount"]["name"], "Sales");
    assert_eq!(lines[2]["taxRate"]["name"], "FRE");
    // The customer by id works too; an unknown id is an unknown reference.
    env.post(
        "/invoices",
        &json!({"customer": customer, "invoiceDate": "2026-03-02", "amountTaxStatus": "Exclusive",
                "lineItems": [{"lineNumber": 1, "taxRate": "GST", "itemDetails": {"item": child, "price": 1}}]}),
    )
    .await
    .expect(201);
    env.post(
        "/invoices",
        &json!({"customer": uuid::Uuid::new_v4().to_string(), "invoiceDate": "2026-03-02", "amountTaxStatus": "Exclusive"}),
    )
    .await
    .expect_invalid_at("customer");
    // A child cannot be found by its short name when it has a parent.
    env.post(
        "/invoices",
        &json!({"customer": customer, "invoiceDate": "2026-03-02", "amountTaxStatus": "Exclusive",
                "lineItems": [{"lineNumber": 1, "itemDetails": {"item": "Massage", "price": 1}}]}),
    )
    .await
    .expect_invalid_at("lineItems[0].itemDetails.item");
    // An item used on an invoice cannot be deleted.
    env.delete(&format!("/items/{child}")).await.expect(400);
    let spare = env.item("Spare", None).await;
    env.delete(&format!("/items/{spare}")).await.expect(204);
    env.get(&format!("/items/{spare}")).await.expect(404);
}

// ---- invoice arithmetic ---------------------------------------------------------------------

fn line_taxes(inv: &Value) -> Vec<Decimal> {
    inv["lineItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| dec(&l["taxAmount"]))
        .collect()
}

#[tokio::test]
async fn gst_to_the_cent_inclusive_and_exclusive() {
    let env = Env::start().await;
    env.customer("Jane Citizen").await;
    env.item("Consultation", None).await;
    let lines = [
        ("95.45", "3", "GST"),
        ("49.99", "1", "GST"),
        ("12", "1", "FRE"),
    ];

    let id = env
        .invoice("Jane Citizen", "Inclusive", &lines)
        .await
        .expect(201)
        .id();
    let inv = env.get(&format!("/invoices/{id}")).await.expect(200).body;
    // 286.35/11 = 26.0318 → 26.03; 49.99/11 = 4.5445 → 4.54; FRE 0.
    assert_eq!(line_taxes(&inv), vec![dec!(26.03), dec!(4.54), dec!(0)]);
    assert_eq!(dec(&inv["totalTaxAmount"]), dec!(30.57));
    assert_eq!(dec(&inv["totalAmount"]), dec!(348.34));
    assert_eq!(dec(&inv["balance"]), dec!(348.34));
    assert_eq!(inv["invoiceNumber"], "INV0001");
    assert_eq!(inv["status"], "Draft");
    assert_eq!(inv["amountTaxStatus"], "Inclusive");
    assert!(
        inv["lineItems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["taxIsModified"] == false)
    );

    let id = env
        .invoice("Jane Citizen", "Exclusive", &lines)
        .await
        .expect(201)
        .id();
    let inv = env.get(&format!("/invoices/{id}")).await.expect(200).body;
    // 286.35 × 10% = 28.635 → 28.64; 49.99 × 10% = 4.999 → 5.00.
    assert_eq!(line_taxes(&inv), vec![dec!(28.64), dec!(5.00), dec!(0)]);
    assert_eq!(dec(&inv["totalTaxAmount"]), dec!(33.64));
    assert_eq!(dec(&inv["totalAmount"]), dec!(381.98));
    assert_eq!(inv["invoiceNumber"], "INV0002");

    let id = env
        .invoice("Jane Citizen", "NonTaxed", &lines)
        .await
        .expect(201)
        .id();
    let inv = env.get(&format!("/invoices/{id}")).await.expect(200).body;
    assert_eq!(dec(&inv["totalTaxAmount"]), dec!(0));
    assert_eq!(dec(&inv["totalAmount"]), dec!(348.34));
    assert_eq!(inv["invoiceNumber"], "INV0003");

    // Discounts come off before tax: 200 × 2 less 12.5% = 350 inclusive → 31.82.
    let r = env
        .post(
            "/invoices",
            &json!({"customer": "Jane Citizen", "invoiceDate": "2026-03-02", "amountTaxStatus": "Inclusive",
                    "lineItems": [{"lineNumber": 1, "taxRate": "GST",
                                   "itemDetails": {"item": "Consultation", "price": 200, "quantity": 2, "discountPercent": 12.5}}]}),
        )
        .await
        .expect(201);
    let inv = env.get(&format!("/invoices/{}", r.id())).await.body;
    assert_eq!(dec(&inv["totalAmount"]), dec!(350));
    assert_eq!(dec(&inv["totalTaxAmount"]), dec!(31.82));
}

#[tokio::test]
async fn client_tax_override_wins_and_is_flagged() {
    let env = Env::start().await;
    env.customer("Jane Citizen").await;
    env.item("Consultation", None).await;
    let r = env
        .post(
            "/invoices",
            &json!({"customer": "Jane Citizen", "invoiceDate": "2026-03-02", "amountTaxStatus": "Exclusive",
                    "lineItems": [
                        {"lineNumber": 1, "taxRate": "GST", "taxAmount": 9.99, "itemDetails": {"item": "Consultation", "price": 100, "quantity": 1}},
                        {"lineNumber": 2, "taxRate": "GST", "itemDetails": {"item": "Consultation", "price": 50, "quantity": 1}}
                    ]}),
        )
        .await
        .expect(201);
    let id = r.id();
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    assert_eq!(line_taxes(&inv), vec![dec!(9.99), dec!(5.00)]);
    assert_eq!(inv["lineItems"][0]["taxIsModified"], true);
    assert_eq!(inv["lineItems"][1]["taxIsModified"], false);
    assert_eq!(dec(&inv["totalTaxAmount"]), dec!(14.99));
    assert_eq!(dec(&inv["totalAmount"]), dec!(164.99));
    // Overriding through the line sub-resource.
    let line2 = inv["lineItems"][1]["lineId"].as_str().unwrap().to_string();
    env.patch(
        &format!("/invoices/{id}/lineItems/{line2}"),
        &json!({"taxAmount": 4.95}),
    )
    .await
    .expect(204);
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    assert_eq!(line_taxes(&inv), vec![dec!(9.99), dec!(4.95)]);
    assert_eq!(inv["lineItems"][1]["taxIsModified"], true);
    assert_eq!(dec(&inv["totalAmount"]), dec!(164.94));
    // Clearing the override returns to the computed tax.
    env.patch(
        &format!("/invoices/{id}/lineItems/{line2}"),
        &json!({"taxAmount": null}),
    )
    .await
    .expect(204);
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    assert_eq!(line_taxes(&inv), vec![dec!(9.99), dec!(5.00)]);
    assert_eq!(inv["lineItems"][1]["taxIsModified"], false);
}

#[tokio::test]
async fn the_three_rounding_rules_differ_on_a_crafted_invoice() {
    // Exclusive lines of 0.25, 0.05 and 0.05 at 10%: raw tax 0.025, 0.005, 0.005.
    //   LineHalfUp:   0.03 + 0.01 + 0.01 = 0.05
    //   LineHalfEven: 0.02 + 0.00 + 0.00 = 0.02
    //   InvoiceTotal: round(0.035)        = 0.04
    let mut seen = Vec::new();
    for (rounding, tax, lines) in [
        (
            Rounding::LineHalfUp,
            dec!(0.05),
            vec![dec!(0.03), dec!(0.01), dec!(0.01)],
        ),
        (
            Rounding::LineHalfEven,
            dec!(0.02),
            vec![dec!(0.02), dec!(0), dec!(0)],
        ),
        (Rounding::InvoiceTotal, dec!(0.04), vec![]),
    ] {
        let env = Env::with(ReckonConfig {
            rounding,
            ..quiet_config()
        })
        .await;
        env.customer("Jane Citizen").await;
        env.item("Consultation", None).await;
        let id = env
            .invoice(
                "Jane Citizen",
                "Exclusive",
                &[
                    ("0.25", "1", "GST"),
                    ("0.05", "1", "GST"),
                    ("0.05", "1", "GST"),
                ],
            )
            .await
            .expect(201)
            .id();
        let inv = env.get(&format!("/invoices/{id}")).await.body;
        assert_eq!(dec(&inv["totalTaxAmount"]), tax, "{rounding:?}");
        assert_eq!(dec(&inv["totalAmount"]), dec!(0.35) + tax, "{rounding:?}");
        assert_eq!(dec(&inv["balance"]), dec!(0.35) + tax, "{rounding:?}");
        if !lines.is_empty() {
            assert_eq!(line_taxes(&inv), lines, "{rounding:?}");
        }
        seen.push(tax);
    }
    seen.dedup();
    assert_eq!(seen.len(), 3);
}

// ---- invoice lifecycle and receipts -------------------------------------------------------

#[tokio::test]
async fn receipts_reduce_balance_then_mark_paid_and_paid_invoices_refuse_edits() {
    let env = Env::start().await;
    env.customer("Jane Citizen").await;
    env.customer("Other Person").await;
    env.item("Consultation", None).await;
    let r = env
        .invoice("Jane Citizen", "Inclusive", &[("110", "1", "GST")])
        .await
        .expect(201);
    let id = r.id();
    let receipt = |amount: f64, total: f64| {
        json!({"customer": "Jane Citizen", "receiptDate": "2026-03-05", "ledgerAccount": "Cheque Account",
               "paymentMethod": "EFT", "reference": "Cliniko payment", "totalAmount": total,
               "transactionLinks": [{"transactionType": "Invoice", "transactionId": id, "transactionAmount": amount}]})
    };
    // Not on a Draft.
    env.post("/receipts", &receipt(40.0, 40.0))
        .await
        .expect_invalid_at("transactionLinks[0].transactionId");
    // Approve with a merge-patch.
    env.patch_as(
        &format!("/invoices/{id}"),
        &json!({"status": "Approved"}),
        "application/json",
    )
    .await
    .expect(415);
    env.patch(&format!("/invoices/{id}"), &json!({"status": "Approved"}))
        .await
        .expect(204);
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    assert_eq!(inv["status"], "Approved");
    env.patch(&format!("/invoices/{id}"), &json!({"status": "Paid"}))
        .await
        .expect_invalid_at("status");
    // Receipts for the wrong customer or more than the balance are refused.
    let mut wrong = receipt(40.0, 40.0);
    wrong["customer"] = json!("Other Person");
    env.post("/receipts", &wrong).await.expect(400);
    env.post("/receipts", &receipt(110.01, 110.01))
        .await
        .expect_invalid_at("transactionLinks[0].transactionAmount");
    env.post("/receipts", &receipt(50.0, 40.0))
        .await
        .expect(400);

    // A part payment.
    let first = env
        .post("/receipts", &receipt(40.0, 40.0))
        .await
        .expect(201)
        .id();
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    assert_eq!(dec(&inv["balance"]), dec!(70));
    assert_eq!(dec(&inv["totalAmount"]), dec!(110));
    assert_eq!(inv["status"], "Approved");
    let links = inv["transactionLinks"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["transactionType"], "Receipt");
    assert_eq!(links[0]["transactionId"], first.as_str());
    assert_eq!(dec(&links[0]["transactionAmount"]), dec!(40));
    let rec = env
        .get(&format!("/receipts/{first}"))
        .await
        .expect(200)
        .body;
    assert_eq!(rec["transactionLinks"][0]["transactionId"], id.as_str());
    assert_eq!(rec["transactionLinks"][0]["transactionType"], "Invoice");
    assert_eq!(rec["customer"]["name"], "Jane Citizen");
    assert_eq!(rec["ledgerAccount"]["name"], "Cheque Account");
    assert_eq!(rec["paymentMethod"]["name"], "EFT");
    let mut unknown_method = receipt(1.0, 1.0);
    unknown_method["paymentMethod"] = json!("Bitcoin");
    env.post("/receipts", &unknown_method)
        .await
        .expect_invalid_at("paymentMethod");
    // Editing a receipt re-applies it: 40 → 45, then back.
    env.patch(&format!("/receipts/{first}"), &json!({"notes": "x"}))
        .await
        .expect_invalid_at("totalAmount");
    let mut edited = receipt(45.0, 45.0);
    edited["internalNotes"] = json!("i".repeat(401));
    env.put(&format!("/receipts/{first}"), &edited)
        .await
        .expect_invalid_at("internalNotes");
    edited["internalNotes"] = json!("checked");
    env.put(&format!("/receipts/{first}"), &edited)
        .await
        .expect(204);
    assert_eq!(
        dec(&env.get(&format!("/invoices/{id}")).await.body["balance"]),
        dec!(65)
    );
    env.patch(
        &format!("/receipts/{first}"),
        &json!({"totalAmount": 40, "transactionLinks": [{"transactionType": "Invoice", "transactionId": id, "transactionAmount": 40}]}),
    )
    .await
    .expect(204);
    let rec = env
        .get(&format!("/receipts/{first}"))
        .await
        .expect(200)
        .body;
    assert_eq!(rec["internalNotes"], "checked");
    assert_eq!(dec(&rec["totalAmount"]), dec!(40));
    let customers = env
        .get("/customers?filter=name eq 'Jane Citizen'")
        .await
        .expect(200);
    assert_eq!(dec(&customers.list()[0]["balance"]), dec!(70));
    // Edits still allowed while Approved, but not below what was received.
    let line = inv["lineItems"][0]["lineId"].as_str().unwrap().to_string();
    env.patch(
        &format!("/invoices/{id}/lineItems/{line}"),
        &json!({"itemDetails": {"price": 30}}),
    )
    .await
    .expect(400);
    // Removing the only line would take the total below the 40 received.
    env.delete(&format!("/invoices/{id}/lineItems/{line}"))
        .await
        .expect_invalid_at("lineItems");
    assert_eq!(
        dec(&env.get(&format!("/invoices/{id}")).await.body["balance"]),
        dec!(70)
    );
    env.patch(
        &format!("/invoices/{id}"),
        &json!({"reference": "still open"}),
    )
    .await
    .expect(204);
    env.delete(&format!("/invoices/{id}")).await.expect(400);

    // The rest: Paid.
    let second = env
        .post("/receipts", &receipt(70.0, 70.0))
        .await
        .expect(201)
        .id();
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    assert_eq!(dec(&inv["balance"]), dec!(0));
    assert_eq!(inv["status"], "Paid");
    assert_eq!(inv["transactionLinks"].as_array().unwrap().len(), 2);
    let list = env.get("/receipts").await.expect(200);
    assert_eq!(list.list().len(), 2);
    assert_eq!(list.header("X-Total-Count"), Some("2"));

    // Paid refuses PATCH, PUT, DELETE and line writes.
    env.patch(&format!("/invoices/{id}"), &json!({"reference": "changed"}))
        .await
        .expect(400);
    env.patch(&format!("/invoices/{id}"), &json!({"status": "Draft"}))
        .await
        .expect(400);
    let mut body = env
        .sim
        .with_book(|b, _| b.invoice_input(&b.invoices[&id.parse::<uuid::Uuid>().unwrap()]));
    body["reference"] = json!("changed");
    env.put(&format!("/invoices/{id}"), &body).await.expect(400);
    env.delete(&format!("/invoices/{id}")).await.expect(400);
    env.post(
        &format!("/invoices/{id}/lineItems"),
        &json!({"lineNumber": 2, "itemDetails": {"item": "Consultation", "price": 1}}),
    )
    .await
    .expect(400);
    env.delete(&format!("/invoices/{id}/lineItems/{line}"))
        .await
        .expect(400);
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    assert_eq!(inv["reference"], "still open");
    assert_eq!(inv["status"], "Paid");

    // Removing a receipt re-opens the invoice.
    env.delete(&format!("/receipts/{second}")).await.expect(204);
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    assert_eq!(inv["status"], "Approved");
    assert_eq!(dec(&inv["balance"]), dec!(70));
}

#[tokio::test]
async fn invoice_put_patch_delete_and_line_items() {
    let env = Env::start().await;
    env.customer("Jane Citizen").await;
    env.item("Consultation", None).await;
    let id = env
        .invoice(
            "Jane Citizen",
            "Inclusive",
            &[("110", "1", "GST"), ("55", "1", "GST")],
        )
        .await
        .expect(201)
        .id();
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    let line1 = inv["lineItems"][0]["lineId"].as_str().unwrap().to_string();
    let line2 = inv["lineItems"][1]["lineId"].as_str().unwrap().to_string();
    // GET one line.
    let r = env
        .get(&format!("/invoices/{id}/lineItems/{line2}"))
        .await
        .expect(200);
    assert_eq!(dec(&r.body["itemDetails"]["price"]), dec!(55));
    assert_eq!(dec(&r.body["taxAmount"]), dec!(5));
    // POST a line → 201 {id}.
    let r = env
        .post(
            &format!("/invoices/{id}/lineItems"),
            &json!({"lineNumber": 3, "taxRate": "GST", "accountDetails": {"ledgerAccount": "Sales", "amount": 22}}),
        )
        .await
        .expect(201);
    let line3 = r.id();
    env.post(
        &format!("/invoices/{id}/lineItems"),
        &json!({"lineNumber": 4, "itemDetails": {"item": "Ghost", "price": 1}}),
    )
    .await
    .expect_invalid_at("itemDetails.item");
    // PUT replaces a line.
    env.put(
        &format!("/invoices/{id}/lineItems/{line1}"),
        &json!({"lineNumber": 1, "taxRate": "GST", "description": "replaced", "itemDetails": {"item": "Consultation", "price": 220, "quantity": 1}}),
    )
    .await
    .expect(204);
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    assert_eq!(dec(&inv["totalAmount"]), dec!(297));
    assert_eq!(dec(&inv["totalTaxAmount"]), dec!(27));
    assert_eq!(
        inv["lineItems"][0]["lineId"],
        line1.as_str(),
        "line ids are stable"
    );
    assert_eq!(inv["lineItems"][2]["lineId"], line3.as_str());
    // DELETE a line.
    env.delete(&format!("/invoices/{id}/lineItems/{line2}"))
        .await
        .expect(204);
    env.get(&format!("/invoices/{id}/lineItems/{line2}"))
        .await
        .expect(404);
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    assert_eq!(dec(&inv["totalAmount"]), dec!(242));
    assert_eq!(inv["lineItems"][1]["lineId"], line3.as_str());
    // PUT the whole invoice replaces it (still Draft, same number).
    env.put(
        &format!("/invoices/{id}"),
        &json!({"customer": "Jane Citizen", "invoiceDate": "2026-04-01", "amountTaxStatus": "Exclusive", "reference": "put",
                "lineItems": [{"lineNumber": 1, "taxRate": "GST", "itemDetails": {"item": "Consultation", "price": 100}}]}),
    )
    .await
    .expect(204);
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    assert_eq!(inv["reference"], "put");
    assert_eq!(inv["invoiceNumber"], "INV0001");
    assert_eq!(inv["status"], "Draft");
    assert_eq!(dec(&inv["totalAmount"]), dec!(110));
    assert_eq!(inv["lineItems"].as_array().unwrap().len(), 1);
    env.put(
        &format!("/invoices/{id}"),
        &json!({"customer": "Jane Citizen"}),
    )
    .await
    .expect_invalid_at("invoiceDate");
    // PATCH merges scalar fields.
    env.patch(
        &format!("/invoices/{id}"),
        &json!({"notes": "Thanks", "reference": null}),
    )
    .await
    .expect(204);
    let inv = env.get(&format!("/invoices/{id}")).await.body;
    assert_eq!(inv["notes"], "Thanks");
    assert!(inv.get("reference").is_none());
    assert_eq!(dec(&inv["totalAmount"]), dec!(110));
    // DELETE a Draft invoice.
    env.delete(&format!("/invoices/{id}")).await.expect(204);
    env.get(&format!("/invoices/{id}")).await.expect(404);
}

// ---- items --------------------------------------------------------------------------------

#[tokio::test]
async fn items_crud() {
    let env = Env::start().await;
    let r = env
        .post(
            "/items",
            &json!({"name": "Initial Consult", "itemCode": "IC-1", "itemType": "Service", "amountTaxStatus": "Inclusive",
                    "sale": {"price": 95.5, "priceAccuracy": 2, "ledgerAccount": "Consultation Fees", "taxRate": "GST", "description": "First visit"}}),
        )
        .await
        .expect(201);
    let id = r.id();
    assert_eq!(r.body.as_object().unwrap().len(), 1);
    let item = env.get(&format!("/items/{id}")).await.expect(200).body;
    assert_eq!(item["fullName"], "Initial Consult");
    assert_eq!(dec(&item["sale"]["price"]), dec!(95.5));
    assert!(item.get("purchase").is_none());
    for stock in ["quantityOnHand", "qtyOnHand", "stock"] {
        assert!(item.get(stock).is_none());
    }
    env.patch(
        &format!("/items/{id}"),
        &json!({"itemCode": "IC-2", "sale": {"price": 99}}),
    )
    .await
    .expect(204);
    let item = env.get(&format!("/items/{id}")).await.body;
    assert_eq!(item["itemCode"], "IC-2");
    assert_eq!(dec(&item["sale"]["price"]), dec!(99));
    assert_eq!(item["sale"]["description"], "First visit");
    env.put(
        &format!("/items/{id}"),
        &json!({"name": "Initial Consult", "amountTaxStatus": "Exclusive", "itemType": "Service"}),
    )
    .await
    .expect(204);
    let item = env.get(&format!("/items/{id}")).await.body;
    assert!(item.get("sale").is_none());
    assert!(item.get("itemCode").is_none());
    assert_eq!(item["amountTaxStatus"], "Exclusive");
    env.patch_as(
        &format!("/items/{id}"),
        &json!({"itemCode": "x"}),
        "application/json",
    )
    .await
    .expect(415);
    env.delete(&format!("/items/{id}")).await.expect(204);
    env.get(&format!("/items/{id}")).await.expect(404);
}

// ---- lists --------------------------------------------------------------------------------

fn names(r: &reckon_common::Resp) -> Vec<String> {
    r.list()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn links(r: &reckon_common::Resp) -> HashMap<String, String> {
    let header = r.header("link").expect("Link header");
    header
        .split(", ")
        .map(|part| {
            let (url, rel) = part.split_once("; ").unwrap();
            let rel = rel.trim_start_matches("rel=\"").trim_end_matches('"');
            (
                rel.to_string(),
                url.trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn lists_page_with_total_count_and_links() {
    let env = Env::with(ReckonConfig {
        max_per_page: 20,
        ..quiet_config()
    })
    .await;
    for i in 1..=25 {
        env.customer(&format!("Customer {i:02}")).await;
    }
    let r = env.get("/customers").await.expect(200);
    assert_eq!(r.list().len(), 10, "perpage defaults to 10");
    assert_eq!(r.header("X-Total-Count"), Some("25"));
    assert_eq!(r.body.as_object().unwrap().len(), 1, "only `list`");
    let l = links(&r);
    assert!(l.contains_key("first") && l.contains_key("next") && l.contains_key("last"));
    assert!(!l.contains_key("prev"));
    assert!(l["last"].contains("page=3"), "{}", l["last"]);
    // Following `next` gets page 2, which has prev and next.
    let r2 = env.get_url(&l["next"]).await.expect(200);
    assert_eq!(names(&r2)[0], "Customer 11");
    let l2 = links(&r2);
    assert!(l2.contains_key("prev") && l2.contains_key("next"));
    assert!(l2["prev"].contains("page=1"));
    let r3 = env.get("/customers?page=3").await.expect(200);
    assert_eq!(r3.list().len(), 5);
    assert!(!links(&r3).contains_key("next"));
    assert!(links(&r3).contains_key("prev"));
    let r = env.get("/customers?page=2&perPage=7").await.expect(200);
    assert_eq!(names(&r).first().map(String::as_str), Some("Customer 08"));
    assert!(links(&r)["last"].contains("page=4"));
    // perpage above the configured maximum is capped.
    let r = env.get("/customers?perpage=1000").await.expect(200);
    assert_eq!(r.list().len(), 20);
    // Past the end: an empty list, still the total.
    let r = env.get("/customers?page=9").await.expect(200);
    assert!(r.list().is_empty());
    assert_eq!(r.header("X-Total-Count"), Some("25"));
    env.get("/customers?page=0").await.expect(400);
    env.get("/customers?perpage=lots").await.expect(400);
    // Filtered totals and links keep the filter.
    let r = env
        .get("/customers?filter=name ge 'Customer 20'&perpage=2")
        .await
        .expect(200);
    assert_eq!(r.header("X-Total-Count"), Some("6"));
    let next = &links(&r)["next"];
    assert!(next.contains("filter="), "{next}");
    let r = env.get_url(next).await.expect(200);
    assert_eq!(names(&r), vec!["Customer 22", "Customer 23"]);
    // Other lists page the same way.
    for path in [
        "/items",
        "/invoices",
        "/receipts",
        "/terms",
        "/ledgeraccounts",
        "/taxrates/2026-01-01",
    ] {
        let r = env.get(path).await.expect(200);
        assert!(r.header("X-Total-Count").is_some(), "{path}");
        assert!(r.header("Link").is_some(), "{path}");
    }
    let r = env.get("/taxrates/2026-01-01?perpage=2").await.expect(200);
    assert_eq!(r.list().len(), 2);
    assert_eq!(r.header("X-Total-Count"), Some("7"));
    env.get("/taxrates/not-a-date").await.expect(400);
}

#[tokio::test]
async fn filter_orderby_and_select() {
    let env = Env::start().await;
    env.item("Consultation", None).await;
    for (name, email) in [
        ("Alice Able", "alice@example.com"),
        ("Bob Baker", "bob@clinic.example.org"),
        ("Carol Cole", "carol@example.com"),
        ("Dan Dale", "dan@other.example.net"),
    ] {
        env.post(
            "/customers",
            &json!({"name": name, "electronicAddresses": [{"type": "Email", "address": email}]}),
        )
        .await
        .expect(201);
        env.sim.clock.advance(Duration::from_secs(60));
    }
    let q = |f: &str| format!("/customers?filter={}", urlencode(f));
    let cases: &[(&str, &[&str])] = &[
        ("name eq 'Bob Baker'", &["Bob Baker"]),
        ("name eq \"Bob Baker\"", &["Bob Baker"]),
        ("name eq 'bob baker'", &[]),
        (
            "name ne 'Bob Baker'",
            &["Alice Able", "Carol Cole", "Dan Dale"],
        ),
        ("name gt 'Bob Baker'", &["Carol Cole", "Dan Dale"]),
        (
            "name ge 'Bob Baker'",
            &["Bob Baker", "Carol Cole", "Dan Dale"],
        ),
        ("name lt 'Bob Baker'", &["Alice Able"]),
        ("name le 'Bob Baker'", &["Alice Able", "Bob Baker"]),
        (
            "name eq 'Alice Able' or name eq 'Dan Dale'",
            &["Alice Able", "Dan Dale"],
        ),
        (
            "startswith(name, 'C') and contains(name, 'ole')",
            &["Carol Cole"],
        ),
        (
            "contains(name, 'a')",
            &["Bob Baker", "Carol Cole", "Dan Dale"],
        ),
        (
            "electronicAddresses.address eq 'carol@example.com'",
            &["Carol Cole"],
        ),
        (
            "contains(electronicAddresses.address, 'example.com')",
            &["Alice Able", "Carol Cole"],
        ),
        (
            "(name eq 'Alice Able' or name eq 'Bob Baker') and startswith(name, 'B')",
            &["Bob Baker"],
        ),
    ];
    for (filter, expected) in cases {
        let r = env.get(&q(filter)).await;
        assert_eq!(r.status, 200, "{filter}: {}", r.text);
        assert_eq!(names(&r), *expected, "{filter}");
        assert_eq!(
            r.header("X-Total-Count"),
            Some(expected.len().to_string().as_str()),
            "{filter}"
        );
    }
    // lastModifiedDateTime: only the ones written after Bob.
    let bob = env.get(&q("name eq 'Bob Baker'")).await.list()[0].clone();
    let since = bob["lastModifiedDateTime"].as_str().unwrap().to_string();
    let r = env
        .get(&format!(
            "{}&orderby=lastModifiedDateTime desc",
            q(&format!("lastModifiedDateTime gt '{since}'"))
        ))
        .await
        .expect(200);
    assert_eq!(names(&r), vec!["Dan Dale", "Carol Cole"]);
    env.get(&q("name eq")).await.expect(400);
    env.get(&q("name frobs 'x'")).await.expect(400);

    // orderby, asc and desc.
    let r = env.get("/customers?orderby=name desc").await.expect(200);
    assert_eq!(
        names(&r),
        vec!["Dan Dale", "Carol Cole", "Bob Baker", "Alice Able"]
    );
    let r = env.get("/customers?orderby=name").await.expect(200);
    assert_eq!(names(&r)[0], "Alice Able");
    // select, on lists and single GETs.
    let r = env
        .get("/customers?select=id,name&orderby=name")
        .await
        .expect(200);
    for c in r.list() {
        let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["id", "name"], "{c}");
    }
    let id = bob["id"].as_str().unwrap();
    let r = env
        .get(&format!(
            "/customers/{id}?select=name,electronicAddresses.address"
        ))
        .await
        .expect(200);
    assert_eq!(
        r.body,
        json!({"name": "Bob Baker", "electronicAddresses": [{"address": "bob@clinic.example.org"}]})
    );

    // Invoices: nested customer.name and reference.
    for (customer, reference) in [
        ("Alice Able", "APPT-1"),
        ("Bob Baker", "APPT-2"),
        ("Alice Able", "APPT-3"),
    ] {
        env.post(
            "/invoices",
            &json!({"customer": customer, "invoiceDate": "2026-03-02", "amountTaxStatus": "Inclusive", "reference": reference,
                    "lineItems": [{"lineNumber": 1, "taxRate": "GST", "itemDetails": {"item": "Consultation", "price": 10}}]}),
        )
        .await
        .expect(201);
    }
    let refs = |r: &reckon_common::Resp| -> Vec<String> {
        r.list()
            .iter()
            .map(|i| i["reference"].as_str().unwrap().to_string())
            .collect()
    };
    let r = env
        .get(&format!(
            "/invoices?filter={}&orderby=reference desc",
            urlencode("customer.name eq 'Alice Able'")
        ))
        .await
        .expect(200);
    assert_eq!(refs(&r), vec!["APPT-3", "APPT-1"]);
    let r = env
        .get(&format!(
            "/invoices?filter={}",
            urlencode("reference eq 'APPT-2'")
        ))
        .await
        .expect(200);
    assert_eq!(refs(&r), vec!["APPT-2"]);
    assert_eq!(r.list()[0]["customer"]["name"], "Bob Baker");
    let r = env
        .get(&format!(
            "/invoices?filter={}",
            urlencode("startswith(reference, 'APPT') and totalAmount ge 10")
        ))
        .await
        .expect(200);
    assert_eq!(r.list().len(), 3);
    // Filtering on tax rates and /books.
    let r = env
        .get(&format!(
            "/taxrates/2026-03-02?filter={}",
            urlencode("name eq 'GST'")
        ))
        .await
        .expect(200);
    assert_eq!(r.list().len(), 1);
    assert_eq!(dec(&r.list()[0]["rate"]), dec!(10));
    let r = env
        .get_url(&format!("{}/books?select=id", env.api))
        .await
        .expect(200);
    assert_eq!(r.list()[0], json!({"id": env.book}));
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---- lastModifiedDateTime -------------------------------------------------------------------

#[tokio::test]
async fn last_modified_bumps_on_every_write() {
    let env = Env::start().await;
    let id = env.customer("Jane Citizen").await;
    env.item("Consultation", None).await;
    let stamp = |v: &Value| -> chrono::DateTime<chrono::Utc> {
        v["lastModifiedDateTime"]
            .as_str()
            .expect("lastModifiedDateTime")
            .parse()
            .unwrap()
    };
    let customer_path = format!("/customers/{id}");
    let mut last = stamp(&env.get(&customer_path).await.body);
    let writes: Vec<(&str, String, Value)> = vec![
        (
            "PUT",
            customer_path.clone(),
            json!({"name": "Jane Citizen", "notes": "a"}),
        ),
        ("PATCH", customer_path.clone(), json!({"notes": "b"})),
        (
            "POST",
            format!("{customer_path}/addresses"),
            json!({"type": "Postal", "line1": "1 St"}),
        ),
        (
            "PUT",
            format!("{customer_path}/addresses/Postal"),
            json!({"line1": "2 St"}),
        ),
        (
            "PATCH",
            format!("{customer_path}/addresses/Postal"),
            json!({"line2": "Unit 1"}),
        ),
        (
            "POST",
            format!("{customer_path}/phoneNumbers"),
            json!({"type": "Mobile", "number": "0400"}),
        ),
        (
            "PATCH",
            format!("{customer_path}/phoneNumbers/Mobile"),
            json!({"number": "0401"}),
        ),
        (
            "POST",
            format!("{customer_path}/electronicAddresses"),
            json!({"type": "Email", "address": "a@b.c"}),
        ),
        (
            "PUT",
            format!("{customer_path}/electronicAddresses/Email"),
            json!({"address": "d@e.f"}),
        ),
        (
            "DELETE",
            format!("{customer_path}/addresses/Postal"),
            Value::Null,
        ),
    ];
    for (method, path, body) in &writes {
        env.sim.clock.advance(Duration::from_secs(90));
        let r = match *method {
            "PUT" => env.put(path, body).await,
            "PATCH" => env.patch(path, body).await,
            "POST" => env.post(path, body).await,
            _ => env.delete(path).await,
        };
        assert!(
            r.status == 204 || r.status == 201,
            "{method} {path}: {}",
            r.text
        );
        let now = stamp(&env.get(&customer_path).await.body);
        assert!(
            now > last,
            "{method} {path} did not bump lastModifiedDateTime"
        );
        last = now;
    }

    // Items.
    let item = env.item("Extra", None).await;
    let item_path = format!("/items/{item}");
    let mut last = stamp(&env.get(&item_path).await.body);
    let created = env.get(&item_path).await.body["createdDateTime"].clone();
    for patch in [true, false] {
        env.sim.clock.advance(Duration::from_secs(90));
        if patch {
            env.patch(&item_path, &json!({"itemCode": "X1"}))
                .await
                .expect(204);
        } else {
            env.put(
                &item_path,
                &json!({"name": "Extra", "amountTaxStatus": "Exclusive"}),
            )
            .await
            .expect(204);
        }
        let body = env.get(&item_path).await.body;
        assert!(stamp(&body) > last, "item patch={patch}");
        assert_eq!(body["createdDateTime"], created, "created stays");
        last = stamp(&body);
    }

    // Invoices (newer API field) and their lines.
    let inv = env
        .invoice("Jane Citizen", "Inclusive", &[("10", "1", "GST")])
        .await
        .expect(201)
        .id();
    let inv_path = format!("/invoices/{inv}");
    let mut last = stamp(&env.get(&inv_path).await.body);
    let line = env.get(&inv_path).await.body["lineItems"][0]["lineId"]
        .as_str()
        .unwrap()
        .to_string();
    let line_body = json!({"lineNumber": 2, "taxRate": "GST", "itemDetails": {"item": "Consultation", "price": 5}});
    for step in 0..5 {
        env.sim.clock.advance(Duration::from_secs(90));
        let r = match step {
            0 => env.patch(&inv_path, &json!({"notes": "n"})).await,
            1 => env.post(&format!("{inv_path}/lineItems"), &line_body).await,
            2 => env.patch(&format!("{inv_path}/lineItems/{line}"), &json!({"description": "d"})).await,
            3 => env.patch(&inv_path, &json!({"status": "Approved"})).await,
            _ => {
                env.post(
                    "/receipts",
                    &json!({"customer": "Jane Citizen", "receiptDate": "2026-03-03", "totalAmount": 15,
                            "transactionLinks": [{"transactionType": "Invoice", "transactionId": inv, "transactionAmount": 15}]}),
                )
                .await
            }
        };
        assert!(
            r.status == 204 || r.status == 201,
            "step {step}: {}",
            r.text
        );
        let body = env.get(&inv_path).await.body;
        assert!(stamp(&body) > last, "invoice step {step}");
        last = stamp(&body);
    }
    assert_eq!(env.get(&inv_path).await.body["status"], "Paid");
}

// ---- rate limit ---------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_per_subscription_key_answers_429_with_retry_after() {
    let env = Env::with(ReckonConfig {
        rate_limit_per_minute: 60,
        rate_limit_burst: 3,
        subscription_keys: vec!["key-a".into(), "key-b".into()],
        ..quiet_config()
    })
    .await;
    let get = |key: &'static str| {
        env.http
            .get(env.url("/customers"))
            .bearer_auth(&env.token)
            .header("Ocp-Apim-Subscription-Key", key)
    };
    for _ in 0..3 {
        env.send(get("key-a")).await.expect(200);
    }
    let r = env.send(get("key-a")).await.expect(429);
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert_eq!(r.body["statusCode"], 429);
    assert_eq!(
        r.body["message"],
        "Rate limit is exceeded. Try again in 1 seconds."
    );
    // Another key has its own bucket.
    env.send(get("key-b")).await.expect(200);
    // The bucket refills with time (one token a second at 60/min).
    env.sim.clock.advance(Duration::from_secs(2));
    env.send(get("key-a")).await.expect(200);
    env.send(get("key-a")).await.expect(200);
    env.send(get("key-a")).await.expect(429);
    // The query-string key is limited as the same key.
    let r = env
        .send(
            env.http
                .get(format!("{}?subscription-key=key-a", env.url("/customers")))
                .bearer_auth(&env.token),
        )
        .await;
    assert_eq!(r.status, 429);
}

#[tokio::test]
async fn rate_limit_retry_after_reflects_the_refill_rate() {
    let env = Env::with(ReckonConfig {
        rate_limit_per_minute: 6,
        rate_limit_burst: 1,
        ..quiet_config()
    })
    .await;
    env.get("/customers").await.expect(200);
    let r = env.get("/customers").await.expect(429);
    assert_eq!(r.header("Retry-After"), Some("10"));
    assert!(r.body["message"].as_str().unwrap().contains("10 seconds"));
    env.sim.clock.advance(Duration::from_secs(10));
    env.get("/customers").await.expect(200);
}

// ---- faults -------------------------------------------------------------------------------

#[tokio::test]
async fn fault_rules_fail_next_bursts_and_outages() {
    let env = Env::start().await;
    env.sim
        .faults
        .add(FaultRule::fail_next("*/customers*", 503, 2));
    env.get("/customers").await.expect(503);
    env.get("/items").await.expect(200);
    env.get("/customers").await.expect(503);
    env.get("/customers").await.expect(200);

    env.sim.faults.add(FaultRule::rate_limit_burst(2));
    for _ in 0..2 {
        let r = env.get("/items").await.expect(429);
        assert!(r.header("Retry-After").is_some());
        assert_eq!(r.body["statusCode"], 429);
    }
    env.get("/items").await.expect(200);

    // Per-route error rates.
    env.sim.faults.add(FaultRule {
        path: Some("*/invoices*".into()),
        error_rate: 1.0,
        ..FaultRule::default()
    });
    for _ in 0..6 {
        let r = env.get("/invoices").await;
        assert!([500, 502, 503].contains(&r.status), "{}", r.status);
        env.get("/customers").await.expect(200);
    }
    env.sim.faults.clear();
    env.get("/invoices").await.expect(200);
    // Method filters.
    env.sim.faults.add(FaultRule {
        method: Some("POST".into()),
        error_rate: 1.0,
        error_statuses: vec![502],
        remaining: Some(1),
        ..FaultRule::default()
    });
    env.get("/customers").await.expect(200);
    env.post("/customers", &json!({"name": "Retry Me"}))
        .await
        .expect(502);
    env.post("/customers", &json!({"name": "Retry Me"}))
        .await
        .expect(201);

    // Outage windows: everything is 503, including the identity server.
    env.sim.faults.set_outage(true);
    env.get("/customers").await.expect(503);
    env.get_url(&format!("{}/heartbeat", env.api))
        .await
        .expect(503);
    let r = env
        .send(
            env.http
                .post(format!("{}/connect/token", env.origin))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("grant_type=refresh_token&refresh_token=x"),
        )
        .await;
    assert_eq!(r.status, 503);
    env.sim.faults.set_outage(false);
    env.get("/customers").await.expect(200);
}

#[tokio::test]
async fn faults_latency_hangs_and_dropped_connections() {
    let env = Env::start().await;
    env.sim.faults.add(FaultRule {
        path: Some("*/items".into()),
        latency_ms: 300,
        remaining: Some(1),
        ..FaultRule::default()
    });
    let t = Instant::now();
    env.get("/items").await.expect(200);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    let t = Instant::now();
    env.get("/items").await.expect(200);
    assert!(t.elapsed() < Duration::from_millis(300));

    // A hung request: the client's timeout fires first.
    env.sim.faults.set_hang_duration(Duration::from_secs(2));
    env.sim.faults.add(FaultRule {
        hang_rate: 1.0,
        remaining: Some(1),
        ..FaultRule::default()
    });
    let err = env
        .authed(env.http.get(env.url("/customers")))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("hangs past the timeout");
    assert!(err.is_timeout(), "{err}");
    env.get("/customers").await.expect(200);

    // A dropped connection: the headers arrive, the body never does.
    env.sim.faults.add(FaultRule {
        drop_rate: 1.0,
        remaining: Some(1),
        ..FaultRule::default()
    });
    let result = async {
        let response = env
            .authed(env.http.get(env.url("/customers")))
            .send()
            .await?;
        response.bytes().await
    }
    .await;
    assert!(result.is_err(), "the connection should break: {result:?}");
    env.get("/customers").await.expect(200);
}

#[tokio::test]
async fn faults_are_deterministic_under_a_seed() {
    async fn run(seed: u64) -> Vec<u16> {
        let env = Env::with(ReckonConfig {
            seed,
            ..quiet_config()
        })
        .await;
        env.sim.faults.add(FaultRule {
            path: Some("*/customers".into()),
            error_rate: 0.4,
            ..FaultRule::default()
        });
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(env.get("/customers").await.status);
        }
        out
    }
    let a = run(42).await;
    assert_eq!(a, run(42).await);
    assert_ne!(a, run(43).await);
    let errors = a.iter().filter(|s| **s != 200).count();
    assert!((5..35).contains(&errors), "{a:?}");
    assert!(a.iter().all(|s| [200, 500, 502, 503].contains(s)));
}

// ---- admin --------------------------------------------------------------------------------

#[tokio::test]
async fn admin_routes_control_the_sim_without_auth() {
    let env = Env::start().await;
    env.customer("Jane Citizen").await;
    let r = env
        .send(env.http.get(format!("{}/__admin/state", env.origin)))
        .await
        .expect(200);
    assert_eq!(r.body["books"][0]["customers"], 1);
    let r = env
        .send(env.http.post(format!("{}/__admin/tokens", env.origin)))
        .await
        .expect(200);
    let token = r.body["access_token"].as_str().unwrap().to_string();
    with_token(&env, &token).await.expect(200);
    env.send(
        env.http
            .post(format!("{}/__admin/tokens/expire", env.origin)),
    )
    .await
    .expect(204);
    assert_denied(&with_token(&env, &token).await);
    env.send(
        env.http
            .post(format!("{}/__admin/outage", env.origin))
            .json(&json!({"down": true})),
    )
    .await
    .expect(204);
    assert!(env.sim.faults.outage());
    env.sim.faults.set_outage(false);
    let _ = MERGE_PATCH;
}
