//! Conformance of the Cliniko simulator with the vendor's OpenAPI description
//! (`cliniko/openapi.yaml`, see scripts/vendor-apis) and example payloads (`fixtures/vendor-examples`): every response
//! the sync relies on validates against its declared schema, the request bodies the tests send
//! are valid, requests the schema forbids are refused, and the vendor examples load.

use crate::support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use simulators::cliniko::store::ClinikoState;
use simulators::common::{Exchange, SimClock};
use std::collections::BTreeSet;
use std::sync::OnceLock;
use support::cliniko::*;
use support::openapi::Spec;
use support::{apis_dir, examples_dir};

fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        Spec::load(&apis_dir().join("cliniko/openapi.yaml")).expect("cliniko spec loads")
    })
}

/// Keys ending in `_id` that the spec's response schemas do declare.
const DECLARED_ID_KEYS: &[&str] = &["old_reference_id", "product_supplier_id"];

fn stray_id_keys(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k.ends_with("_id") && !DECLARED_ID_KEYS.contains(&k.as_str()) {
                    out.push(format!("{path}/{k}"));
                }
                stray_id_keys(v, &format!("{path}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                stray_id_keys(v, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Runs every read and write the sync (and its tests) use; returns the captured traffic.
async fn exercise_everything(h: &Harness) -> Vec<Exchange> {
    let (c, appt, cancelled) = h.sim.with(|s| {
        let c = seed_clinic(s);
        let appt = appointment(s, &c, 1_760_000_000).id;
        let cancelled = appointment(s, &c, 1_760_090_000).id;
        let now = s.now();
        s.edit::<simulators::cliniko::model::IndividualAppointment>(cancelled, |a| {
            a.cancelled_at = Some(now);
            a.cancellation_reason = Some(50);
            a.cancellation_reason_description = Some("Other".into());
            a.cancellation_note = Some("rang in".into());
        });
        for i in 0..4 {
            patient(s, &format!("Extra{i}"), "Paged");
        }
        (c, appt, cancelled)
    });

    // Test-only invoice writes (not validated against the spec: /__admin is not Cliniko's).
    let (status, inv) = h
        .admin(
            Method::POST,
            "/invoices",
            Some(&json!({"patient_id": c.patient.to_string(), "appointment_id": appt.to_string(),
                "items": [{"product_id": c.product.to_string(), "quantity": "2", "discount_percentage": "10"},
                          {"billable_item_id": c.billable_item.to_string(), "discount_amount": "5"}]})),
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    let invoice = inv["id"].as_str().unwrap().to_string();
    let (status, _) = h
        .admin(
            Method::PATCH,
            &format!("/invoices/{invoice}"),
            Some(&json!({"status": 20})),
        )
        .await;
    assert_eq!(status, 200);
    let item = h.ids("/invoice_items", &[]).await[0].clone();

    // Reads: every list (plain, filtered, paged, sorted) and every get.
    for (plural, id) in [
        ("patients", c.patient.to_string()),
        ("invoices", invoice.clone()),
        ("invoice_items", item.clone()),
        ("products", c.product.to_string()),
        ("billable_items", c.billable_item.to_string()),
        ("taxes", c.gst.to_string()),
        ("individual_appointments", appt.to_string()),
        ("appointment_types", c.appointment_type.to_string()),
        ("businesses", c.business.to_string()),
        ("practitioners", c.practitioner.to_string()),
        ("contacts", c.contact.to_string()),
    ] {
        let (status, _) = h.get_json(&format!("/{plural}")).await;
        assert_eq!(status, 200, "{plural}");
        let (status, _) = h
            .list(
                &format!("/{plural}"),
                &[
                    ("q[]", "updated_at:>=2000-01-01T00:00:00Z"),
                    ("sort", "updated_at,id"),
                    ("per_page", "2"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{plural} filtered");
        let (status, _) = h.get_json(&format!("/{plural}/{id}")).await;
        assert_eq!(status, 200, "{plural}/{id}");
    }
    let (_, page2) = h
        .list("/patients", &[("per_page", "2"), ("page", "2")])
        .await;
    assert!(page2["links"]["next"].is_string() && page2["links"]["previous"].is_string());
    h.get_json("/practitioners/inactive").await;
    h.get_json(&format!("/invoices/{invoice}/invoice_items"))
        .await;
    h.list(
        "/individual_appointments",
        &[("q[]", "cancelled_at:*"), ("q[]", "archived_at:*")],
    )
    .await;
    let (status, _) = h
        .list(
            &format!("/individual_appointments/{cancelled}"),
            &[("q[]", "cancelled_at:*")],
        )
        .await;
    assert_eq!(status, 200);
    h.list("/invoices", &[("q[]", "status:=20")]).await;

    // Patient writes.
    let (status, p) = h
        .send_json(
            Method::POST,
            "/patients",
            &json!({"first_name": "Zoë", "last_name": "O'Brien", "title": "Ms",
                "email": "zoe@example.com", "date_of_birth": "1984-02-29", "sex": "Female",
                "reminder_type": "SMS & Email", "accepted_privacy_policy": true,
                "address_1": "1 Harbour St", "city": "Hobart", "state": "TAS", "post_code": "7000",
                "country_code": "AU", "medicare": "2123456701", "dva_card_number": "NX123456",
                "pronouns": {"accusative": "her", "nominative": "she", "predicative_possessive": "hers",
                    "pronominal_possessive": "her", "reflexive": "herself"},
                "patient_phone_numbers": [{"number": "0412 345 678", "phone_type": "Mobile"},
                    {"number": "(03) 6200 0000", "phone_type": "Home"}]}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let pid = p["id"].as_str().unwrap().to_string();
    let (status, _) = h
        .send_json(
            Method::PATCH,
            &format!("/patients/{pid}"),
            &json!({"notes": "Prefers mornings", "reminder_type": "Email", "email": null}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = h
        .send_json(Method::POST, "/patients", &json!({"first_name": ""}))
        .await;
    assert_eq!(status, 422);
    let (status, _) = h
        .send_json(
            Method::POST,
            &format!("/patients/{pid}/archive"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = h
        .send_json(
            Method::POST,
            &format!("/patients/{pid}/unarchive"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = h
        .admin(
            Method::POST,
            &format!("/patients/{pid}/merge"),
            Some(&json!({"into": c.patient.to_string()})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = h
        .list(&format!("/patients/{pid}"), &[("q[]", "archived_at:*")])
        .await;
    assert_eq!(status, 200, "merged patient reads back");

    // Product and stock writes.
    let (status, prod) = h
        .send_json(
            Method::POST,
            "/products",
            &json!({"name": "Foam roller", "item_code": "FR-1", "serial_number": "SN1",
                "price": 45.5, "price_includes_tax": false, "tax_id": c.gst.to_string(),
                "cost_price": "20.0", "stock_level": "3", "notes": "blue"}),
        )
        .await;
    assert_eq!(status, 201, "{prod}");
    let prod = prod["id"].as_str().unwrap().to_string();
    let (status, _) = h
        .send_json(
            Method::PATCH,
            &format!("/products/{prod}"),
            &json!({"name": "Foam roller XL", "price": 50}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = h
        .send_json(
            Method::PATCH,
            &format!("/products/{prod}"),
            &json!({"stock_level": "10"}),
        )
        .await;
    assert_eq!(status, 422);
    let (status, adj) = h
        .send_json(
            Method::POST,
            "/stock_adjustments",
            &json!({"product_id": prod, "adjustment_type": "Stock Purchase", "quantity": "12",
                "notes": "delivery"}),
        )
        .await;
    assert_eq!(status, 201, "{adj}");
    let adj = adj["id"].as_str().unwrap().to_string();
    let (status, _) = h
        .send_json(
            Method::POST,
            "/stock_adjustments",
            &json!({"product_id": prod, "adjustment_type": "Damaged", "quantity": "1"}),
        )
        .await;
    assert_eq!(status, 422);
    h.get_json("/stock_adjustments").await;
    h.get_json(&format!("/stock_adjustments/{adj}")).await;
    let (status, _) = h
        .send_json(
            Method::POST,
            &format!("/products/{prod}/archive"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let r = h
        .request(Method::DELETE, &format!("/patients/{}", c.patient))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    h.list("/products", &[("q[]", "archived_at:?")]).await;
    h.list("/patients", &[("q[]", "archived_at:*")]).await;

    h.sim.traffic.exchanges()
}

fn api_exchanges(exchanges: &[Exchange]) -> impl Iterator<Item = &Exchange> {
    exchanges.iter().filter(|e| e.path.starts_with("/v1/"))
}

#[tokio::test]
async fn every_response_validates_against_the_spec() {
    let h = Harness::start().await;
    let exchanges = exercise_everything(&h).await;
    let mut violations = Vec::new();
    let mut covered = BTreeSet::new();
    for e in api_exchanges(&exchanges) {
        if !(e.status < 300 || e.status == 422) || e.response_body.is_empty() {
            continue;
        }
        let method = e.method.to_ascii_lowercase();
        let Some(template) = spec().match_path_for_method("/v1", &method, &e.path) else {
            violations.push(format!("{} {} is not in the spec", e.method, e.path));
            continue;
        };
        let body = e.response_json().expect("JSON response");
        if let Err(errors) = spec().validate_response(&template, &method, e.status, &body) {
            for err in errors {
                violations.push(format!(
                    "{} {}?{} → {}: {err}",
                    e.method, e.path, e.query, e.status
                ));
            }
        }
        let mut stray = Vec::new();
        stray_id_keys(&body, "", &mut stray);
        for key in stray {
            violations.push(format!("{} {}: undeclared key {key}", e.method, e.path));
        }
        covered.insert(format!("{} {template} {}", e.method, e.status));
    }
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    for needed in [
        "GET /patients 200",
        "GET /patients/{id} 200",
        "POST /patients 201",
        "POST /patients 422",
        "PATCH /patients/{id} 200",
        "POST /patients/{id}/unarchive 200",
        "GET /invoices 200",
        "GET /invoices/{id} 200",
        "GET /invoice_items 200",
        "GET /invoice_items/{id} 200",
        "GET /invoices/{invoice_id}/invoice_items 200",
        "GET /products 200",
        "GET /products/{id} 200",
        "POST /products 201",
        "PATCH /products/{id} 200",
        "PATCH /products/{id} 422",
        "POST /stock_adjustments 201",
        "POST /stock_adjustments 422",
        "GET /stock_adjustments 200",
        "GET /stock_adjustments/{id} 200",
        "GET /billable_items 200",
        "GET /billable_items/{id} 200",
        "GET /taxes 200",
        "GET /taxes/{id} 200",
        "GET /individual_appointments 200",
        "GET /individual_appointments/{id} 200",
        "GET /appointment_types 200",
        "GET /appointment_types/{id} 200",
        "GET /businesses 200",
        "GET /businesses/{id} 200",
        "GET /practitioners 200",
        "GET /practitioners/inactive 200",
        "GET /practitioners/{id} 200",
        "GET /contacts 200",
        "GET /contacts/{id} 200",
    ] {
        assert!(
            covered.contains(needed),
            "not exercised: {needed}\n{covered:#?}"
        );
    }
    // Archive and delete answer 204 with no body, as documented.
    for e in api_exchanges(&exchanges) {
        if e.path.ends_with("/archive") || e.method == "DELETE" {
            assert_eq!(e.status, 204, "{} {}", e.method, e.path);
            assert!(e.response_body.is_empty());
        }
    }
}

#[tokio::test]
async fn request_bodies_sent_are_valid_per_the_spec() {
    let h = Harness::start().await;
    let exchanges = exercise_everything(&h).await;
    let mut checked = 0;
    let mut problems = Vec::new();
    for e in api_exchanges(&exchanges) {
        let method = e.method.to_ascii_lowercase();
        if !["post", "patch", "put"].contains(&method.as_str()) {
            continue;
        }
        let template = spec()
            .match_path_for_method("/v1", &method, &e.path)
            .unwrap_or_else(|| panic!("{} {} is not in the spec", e.method, e.path));
        // Archive/unarchive take no body in the spec.
        if template.ends_with("archive") {
            continue;
        }
        let body = e.request_json().expect("a JSON request body");
        let result = spec().validate_request(&template, &method, &body);
        // The deliberately invalid ones (422s) are checked in the next test.
        if e.status == 422 {
            continue;
        }
        checked += 1;
        if let Err(errors) = result {
            for err in errors {
                problems.push(format!("{} {template}: {err}", e.method));
            }
        }
    }
    assert!(checked >= 5, "only {checked} write bodies checked");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn requests_the_schema_forbids_are_refused_with_422() {
    let h = Harness::start().await;
    let (c, pid) = h.sim.with(|s| {
        let c = seed_clinic(s);
        (c, c.patient.to_string())
    });
    let prod = c.product.to_string();
    let ok_names = json!({"first_name": "A", "last_name": "B"});
    let with = |extra: Value| {
        let mut body = ok_names.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let long = "x".repeat(256);
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/patients".into(),
            json!({"first_name": 5, "last_name": "B"}),
            "first_name",
        ),
        (
            Method::POST,
            "/patients".into(),
            with(json!({"reminder_type": "Pigeon"})),
            "reminder_type",
        ),
        (
            Method::POST,
            "/patients".into(),
            with(json!({"title": long})),
            "title",
        ),
        (
            Method::POST,
            "/patients".into(),
            with(json!({"accepted_privacy_policy": "yes"})),
            "accepted_privacy_policy",
        ),
        (
            Method::POST,
            "/patients".into(),
            with(json!({"date_of_birth": 19800517})),
            "date_of_birth",
        ),
        (
            Method::POST,
            "/patients".into(),
            with(json!({"email": "not-an-email"})),
            "email",
        ),
        (
            Method::POST,
            "/patients".into(),
            with(json!({"dva_card_number": "12345"})),
            "dva_card_number",
        ),
        (
            Method::POST,
            "/patients".into(),
            with(json!({"pronouns": {"nominative": "they"}})),
            "pronouns",
        ),
        (
            Method::POST,
            "/patients".into(),
            with(
                json!({"patient_phone_numbers": [{"number": "0400 000 000", "phone_type": "Pager"}]}),
            ),
            "patient_phone_numbers",
        ),
        (
            Method::PATCH,
            format!("/patients/{pid}"),
            json!({"reminder_type": "Pigeon"}),
            "reminder_type",
        ),
        (
            Method::PATCH,
            format!("/patients/{pid}"),
            json!({"last_name": ["B"]}),
            "last_name",
        ),
        (
            Method::POST,
            "/products".into(),
            json!({"name": long}),
            "name",
        ),
        (
            Method::POST,
            "/products".into(),
            json!({"name": "A", "item_code": "x".repeat(101)}),
            "item_code",
        ),
        (
            Method::POST,
            "/products".into(),
            json!({"name": "A", "price_includes_tax": "yes"}),
            "price_includes_tax",
        ),
        (
            Method::POST,
            "/products".into(),
            json!({"name": "A", "price": true}),
            "price",
        ),
        (
            Method::PATCH,
            format!("/products/{prod}"),
            json!({"name": 5}),
            "name",
        ),
        (
            Method::POST,
            "/stock_adjustments".into(),
            json!({"product_id": prod, "adjustment_type": "Lost", "quantity": "1"}),
            "adjustment_type",
        ),
        (
            Method::POST,
            "/stock_adjustments".into(),
            json!({"product_id": prod, "adjustment_type": 7, "quantity": "1"}),
            "adjustment_type",
        ),
    ];
    for (method, path, body, field) in cases {
        let m = method.as_str().to_ascii_lowercase();
        let template = spec().match_path_for_method("/v1", &m, &path).unwrap();
        assert!(
            spec().validate_request(&template, &m, &body).is_err(),
            "the spec should forbid {method} {path} {body}"
        );
        let (status, answer) = h.send_json(method.clone(), &path, &body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path} {body} → {answer}"
        );
        assert_eq!(answer["message"], json!("Validation Failed"));
        assert!(
            answer["errors"][field].is_string(),
            "{method} {path} {body}: expected an error on {field}, got {answer}"
        );
        if let Err(errors) = spec().validate_response(&template, &m, 422, &answer) {
            panic!("422 body does not match the spec: {errors:?}");
        }
    }
    // Nothing invalid was stored.
    let state = h.sim.state();
    assert_eq!(state.tables.patients.len(), 1);
    assert_eq!(state.tables.products.len(), 1);
    assert_eq!(state.tables.stock_adjustments.len(), 0);
    assert_eq!(
        state.tables.patients[&c.patient].reminder_type, None,
        "a refused PATCH changes nothing"
    );
}

// ---- vendor examples -----------------------------------------------------------------------

const EXAMPLES: &[(&str, &str)] = &[
    ("patient.json", "patients"),
    ("invoices_list.json", "invoices"),
    ("invoice_item.json", "invoice_items"),
    ("products_list.json", "products"),
    (
        "individual_appointments_list.json",
        "individual_appointments",
    ),
];

fn example(file: &str) -> Vec<u8> {
    std::fs::read(examples_dir().join("cliniko").join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn the_examples_folder_holds_exactly_the_mapped_files() {
    let mut files: Vec<String> = std::fs::read_dir(examples_dir().join("cliniko"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort();
    let mut mapped: Vec<String> = EXAMPLES.iter().map(|(f, _)| f.to_string()).collect();
    mapped.sort();
    assert_eq!(files, mapped, "map every example file to its resource");
}

#[test]
fn the_models_accept_every_vendor_example() {
    for (file, resource) in EXAMPLES {
        let mut state = ClinikoState::new(SimClock::new());
        // serde_json keeps the last of duplicate keys (patient.json repeats one).
        let value: Value = serde_json::from_slice(&example(file)).unwrap();
        let records = match value.get(*resource) {
            Some(Value::Array(list)) => list.clone(),
            _ => vec![value],
        };
        assert!(!records.is_empty());
        for record in records {
            let id = simulators::cliniko::http::import_one(&mut state, resource, record)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(id > 0);
        }
    }
    let mut state = ClinikoState::new(SimClock::new());
    assert!(simulators::cliniko::http::import_one(&mut state, "payments", json!({})).is_err());
    assert!(simulators::cliniko::http::import_one(&mut state, "patients", json!([1])).is_err());
}

#[tokio::test]
async fn vendor_examples_import_and_read_back_in_canonical_form() {
    let h = Harness::start().await;
    for (file, resource) in EXAMPLES {
        let original: Value = serde_json::from_slice(&example(file)).unwrap();
        let r = h
            .client
            .post(format!("{}/__admin/import/{resource}", h.origin()))
            .header("Content-Type", "application/json")
            .body(example(file))
            .send()
            .await
            .unwrap();
        let (status, body) = read(r).await;
        assert_eq!(status, 201, "{file}: {body}");
        let ids = body["imported"].as_array().expect("imported ids").clone();
        assert!(!ids.is_empty(), "{file}");
        let originals = match original.get(*resource) {
            Some(Value::Array(list)) => list.clone(),
            _ => vec![original.clone()],
        };
        assert_eq!(ids.len(), originals.len(), "{file}");
        for (id, source) in ids.iter().zip(&originals) {
            let id = id.as_str().expect("imported id as a string");
            assert_eq!(
                id,
                source["id"].to_string().trim_matches('"'),
                "{file}: ids kept"
            );
            let (status, got) = h
                .list(
                    &format!("/{resource}/{id}"),
                    &[
                        ("q[]", "archived_at:*"),
                        ("q[]", "deleted_at:*"),
                        ("q[]", "cancelled_at:*"),
                    ]
                    .into_iter()
                    .filter(|(_, f)| {
                        // Only columns the resource can filter on.
                        match *resource {
                            "patients" => f.starts_with("archived"),
                            "products" => f.starts_with("archived"),
                            "individual_appointments" => true,
                            _ => !f.starts_with("cancelled"),
                        }
                    })
                    .collect::<Vec<_>>(),
                )
                .await;
            assert_eq!(status, 200, "{file}: GET /{resource}/{id}: {got}");
            assert_eq!(got["id"], json!(id), "{file}: string id");
            if let Err(errors) =
                spec().validate_response(&format!("/{resource}/{{id}}"), "get", 200, &got)
            {
                panic!("{file} read back does not match the spec: {errors:#?}\n{got:#}");
            }
            let mut stray = Vec::new();
            stray_id_keys(&got, "", &mut stray);
            assert!(stray.is_empty(), "{file}: {stray:?}");
            check_canonical(&got, file);
            // Values survive: a scalar the example gives reads back the same or in canonical form.
            for key in ["first_name", "name", "number", "notes", "patient_name"] {
                if let (Some(a), Some(b)) = (source.get(key), got.get(key))
                    && !a.is_null()
                {
                    assert_eq!(a, b, "{file}: {key}");
                }
            }
        }
    }
    // Legacy quirks are normalised.
    let (_, item) = h.get_json("/invoice_items/1").await;
    assert_eq!(
        item["quantity"],
        json!("1.0"),
        "integer quantity → decimal string"
    );
    assert_eq!(item["net_price"], json!("81.818"));
    assert_eq!(item["discount_percentage"], json!("18.1818"));
    assert_eq!(
        item["product"]["links"]["self"],
        json!(format!("{}/products/1", h.base))
    );
    let (_, product) = h.get_json("/products/1").await;
    assert_eq!(
        product["stock_level"],
        json!("10.0"),
        "integer stock → decimal string"
    );
    assert_eq!(
        product["tax"]["links"]["self"],
        json!(format!("{}/taxes/1", h.base))
    );
    let (_, invoice) = h.get_json("/invoices/108").await;
    assert_eq!(invoice["total_amount"], json!("50.0"));
    assert_eq!(
        invoice["patient"]["links"]["self"],
        json!(format!("{}/patients/1593", h.base))
    );
    let patient_id =
        serde_json::from_slice::<Value>(&example("patient.json")).unwrap()["id"].to_string();
    let (_, patient) = h.get_json(&format!("/patients/{patient_id}")).await;
    assert_eq!(patient["archived_at"], Value::Null, "\"\" → null");
    assert_eq!(
        patient["patient_phone_numbers"].as_array().unwrap().len(),
        2,
        "the last of the duplicate keys wins"
    );
    // An import the models cannot read is refused with a reason.
    let (status, body) = h
        .admin(
            Method::POST,
            "/import/patients",
            Some(&json!({"id": "x", "first_name": "A"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = h
        .admin(Method::POST, "/import/payments", Some(&json!({"id": 1})))
        .await;
    assert_eq!(status, 422);
}

/// Ids are strings of integers, timestamps `…Z`, and money or quantities decimal strings.
fn check_canonical(value: &Value, file: &str) {
    const DECIMALS: &[&str] = &[
        "unit_price",
        "quantity",
        "discount_percentage",
        "discounted_amount",
        "net_price",
        "tax_rate",
        "tax_amount",
        "total_amount",
        "net_amount",
        "price_ex_tax",
        "price_including_tax",
        "cost_price",
        "stock_level",
        "rate",
    ];
    let Value::Object(map) = value else { return };
    for (k, v) in map {
        if k == "id" {
            let s = v.as_str().unwrap_or_else(|| panic!("{file}: id {v}"));
            s.parse::<u64>().unwrap();
        } else if k.ends_with("_at") && !v.is_null() {
            let s = v.as_str().unwrap();
            assert!(
                s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T',
                "{file}: {k}={s}"
            );
        } else if DECIMALS.contains(&k.as_str()) && !v.is_null() {
            let s = v.as_str().unwrap_or_else(|| panic!("{file}: {k}={v}"));
            let (int, frac) = s
                .split_once('.')
                .unwrap_or_else(|| panic!("{file}: {k}={s}"));
            assert!(
                !int.is_empty() && !frac.is_empty() && frac.chars().all(|c| c.is_ascii_digit()),
                "{file}: {k}={s}"
            );
        }
    }
}
