//! Behaviour tests against the two vendor specs (see scripts/vendor-apis,
//! the same relative location as from the main crate) and small synthetic specs.

use crate::support;

use serde_json::{Value, json};
use std::sync::OnceLock;
use support::apis_dir;
use support::openapi::{SchemaViolation, Spec};

fn cliniko() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        Spec::load(&apis_dir().join("cliniko/openapi.yaml")).expect("cliniko spec loads")
    })
}

fn reckon() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        Spec::load(&apis_dir().join("reckon-one/openapi.yaml")).expect("reckon spec loads")
    })
}

fn reckon_nullable() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        Spec::load(&apis_dir().join("reckon-one/openapi.yaml"))
            .expect("reckon spec loads")
            .with_implicit_nullable(true)
    })
}

fn pointers(errors: &[SchemaViolation]) -> Vec<&str> {
    errors.iter().map(|e| e.pointer.as_str()).collect()
}

#[track_caller]
fn assert_ok(result: Result<(), Vec<SchemaViolation>>) {
    if let Err(errors) = result {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("expected valid, got:\n{}", lines.join("\n"));
    }
}

#[track_caller]
fn assert_violation_at(
    result: Result<(), Vec<SchemaViolation>>,
    pointer: &str,
) -> Vec<SchemaViolation> {
    let errors = result.expect_err("expected a violation");
    assert!(
        errors.iter().any(|e| e.pointer == pointer),
        "expected a violation at {pointer}, got {:?}",
        errors
    );
    errors
}

// ----------------------------------------------------------------- loading

#[test]
fn both_specs_load_and_integer_status_keys_are_stringified() {
    assert!(cliniko().operations().len() > 100);
    assert!(reckon().operations().len() > 150);
    // Reckon writes `200:` (an integer YAML key); it must be reachable as "200".
    assert_eq!(
        reckon().response_codes("/{bookId}/customers", "get"),
        vec!["200", "401", "403", "404"]
    );
    assert_eq!(
        reckon().document().pointer("/openapi"),
        Some(&json!("3.0.1"))
    );
}

#[test]
fn load_reports_missing_file_and_non_spec_yaml() {
    let err = Spec::load(std::path::Path::new("/nonexistent/openapi.yaml"))
        .err()
        .unwrap();
    assert!(err.contains("cannot read"), "{err}");
    assert!(Spec::from_yaml_str("just: a map\n").is_err());
    assert!(Spec::from_yaml_str("- a\n- list\n").is_err());
}

// -------------------------------------------------------------- match_path

#[test]
fn match_path_cliniko() {
    let spec = cliniko();
    assert_eq!(
        spec.match_path("/v1", "/v1/patients/836447129235883061")
            .as_deref(),
        Some("/patients/{id}")
    );
    assert_eq!(
        spec.match_path("/v1", "/v1/patients?page=2&per_page=100")
            .as_deref(),
        Some("/patients")
    );
    assert_eq!(
        spec.match_path("/v1", "https://api.au2.cliniko.com/v1/patients/1/archive")
            .as_deref(),
        Some("/patients/{id}/archive")
    );
    // Literal `active` wins over `{id}`.
    assert_eq!(
        spec.match_path("/v1", "/v1/patient_cases/active")
            .as_deref(),
        Some("/patient_cases/active")
    );
    assert_eq!(
        spec.match_path("/v1", "/v1/patient_cases/123").as_deref(),
        Some("/patient_cases/{id}")
    );
    assert_eq!(spec.match_path("/v1", "/v1/no_such_thing/1/2/3"), None);
}

#[test]
fn match_path_reckon() {
    let spec = reckon();
    let book = "e7e3ba02-05e2-4bea-9348-85876c9952ba";
    let id = "ddca6e60-31ff-43a7-a152-1d08fba97332";
    assert_eq!(
        spec.match_path("/r1/v2", &format!("/r1/v2/{book}/customers"))
            .as_deref(),
        Some("/{bookId}/customers")
    );
    assert_eq!(
        spec.match_path("/r1/v2", &format!("/r1/v2/{book}/customers/{id}"))
            .as_deref(),
        Some("/{bookId}/customers/{customerId}")
    );
    // `/books/{bookId}` (literal first segment) beats `/{bookId}/...` templates.
    assert_eq!(
        spec.match_path("/r1/v2", &format!("/r1/v2/books/{book}"))
            .as_deref(),
        Some("/books/{bookId}")
    );
    assert_eq!(
        spec.match_path("/r1/v2", "/r1/v2/heartbeat").as_deref(),
        Some("/heartbeat")
    );
    // Literal `summary` beats `{invoiceId}`.
    assert_eq!(
        spec.match_path("/r1/v2", &format!("/r1/v2/{book}/invoices/summary"))
            .as_deref(),
        Some("/{bookId}/invoices/summary")
    );
    // The spec has both `lineItems` and `lineitems`: exact case wins, then
    // case-insensitive; the method-aware variant picks the one declaring it.
    assert_eq!(
        spec.match_path(
            "/r1/v2",
            &format!("/r1/v2/{book}/invoices/{id}/lineitems/{id}")
        )
        .as_deref(),
        Some("/{bookId}/invoices/{invoiceId}/lineitems/{lineItemId}")
    );
    assert_eq!(
        spec.match_path(
            "/r1/v2",
            &format!("/r1/v2/{book}/invoices/{id}/lineItems/{id}")
        )
        .as_deref(),
        Some("/{bookId}/invoices/{invoiceId}/lineItems/{lineItemId}")
    );
    assert_eq!(
        spec.match_path("/r1/v2", &format!("/r1/v2/{book}/CUSTOMERS"))
            .as_deref(),
        Some("/{bookId}/customers")
    );
    let get_line = spec.match_path_for_method(
        "/r1/v2",
        "GET",
        &format!("/r1/v2/{book}/invoices/{id}/lineitems/{id}"),
    );
    let get_line = get_line.expect("some lineItem template declares GET");
    assert_eq!(
        get_line,
        "/{bookId}/invoices/{invoiceId}/lineItems/{lineItemId}"
    );
    // PATCH/DELETE live on the lower-case `lineitems` template only.
    assert_eq!(
        spec.match_path_for_method(
            "/r1/v2",
            "patch",
            &format!("/r1/v2/{book}/invoices/{id}/lineItems/{id}")
        )
        .as_deref(),
        Some("/{bookId}/invoices/{invoiceId}/lineitems/{lineItemId}")
    );
    // Same shape, different parameter names per method: GET uses {accountId},
    // PUT/PATCH/DELETE use {ledgerAccountId}. Without a method, document order wins.
    let ledger = format!("/r1/v2/{book}/ledgeraccounts/{id}");
    assert_eq!(
        spec.match_path("/r1/v2", &ledger).as_deref(),
        Some("/{bookId}/ledgeraccounts/{accountId}")
    );
    assert_eq!(
        spec.match_path_for_method("/r1/v2", "put", &ledger)
            .as_deref(),
        Some("/{bookId}/ledgeraccounts/{ledgerAccountId}")
    );
    assert!(
        spec.response_codes(&get_line, "get")
            .contains(&"200".to_string())
    );
}

// ------------------------------------------------------------------ Cliniko

fn cliniko_patient() -> Value {
    json!({
        "id": "836447129235883061",
        "first_name": "Jane",
        "last_name": "Citizen",
        "preferred_first_name": null,
        "title": "Ms",
        "email": "jane.citizen@example.com",
        "date_of_birth": "1985-04-12",
        "sex": null,
        "address_1": "1 Smith Street",
        "address_2": null,
        "address_3": null,
        "city": "Melbourne",
        "state": "VIC",
        "post_code": "3000",
        "country_code": "AU",
        "notes": null,
        "dva_card_number": null,
        "archived_at": null,
        "deleted_at": null,
        "merged_at": null,
        "created_at": "2024-03-26T14:00:00Z",
        "updated_at": "2024-03-27T09:15:02Z",
        "accepted_privacy_policy": null,
        "receives_confirmation_emails": true,
        "reminder_type": "SMS & Email",
        "pronouns": null,
        "custom_fields": null,
        "patient_phone_numbers": [
            {"phone_type": "Mobile", "number": "0412 345 678", "normalized_number": "61412345678"}
        ],
        "appointments": {"links": {"self": "https://api.au1.cliniko.com/v1/patients/836447129235883061/appointments"}},
        "links": {"self": "https://api.au1.cliniko.com/v1/patients/836447129235883061"},
        "some_field_added_later": {"anything": true}
    })
}

#[test]
fn cliniko_patient_response_validates() {
    assert_ok(cliniko().validate_response("/patients/{id}", "get", 200, &cliniko_patient()));
    assert_ok(cliniko().validate_component("Patient", &cliniko_patient()));
}

#[test]
fn cliniko_patient_wrong_type_names_the_field() {
    let mut patient = cliniko_patient();
    patient["first_name"] = json!(5);
    let errors = assert_violation_at(
        cliniko().validate_response("/patients/{id}", "get", 200, &patient),
        "/first_name",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].to_string().starts_with("/first_name: "),
        "{}",
        errors[0]
    );
}

#[test]
fn cliniko_non_nullable_field_rejects_null_and_enum_still_applies() {
    let mut patient = cliniko_patient();
    patient["id"] = Value::Null; // id is `nullable: false`
    assert_violation_at(
        cliniko().validate_response("/patients/{id}", "get", 200, &patient),
        "/id",
    );

    let mut patient = cliniko_patient();
    patient["reminder_type"] = json!("Carrier pigeon"); // nullable enum
    assert_violation_at(
        cliniko().validate_response("/patients/{id}", "get", 200, &patient),
        "/reminder_type",
    );
    let mut patient = cliniko_patient();
    patient["patient_phone_numbers"][0]["phone_type"] = json!("Pager");
    assert_violation_at(
        cliniko().validate_response("/patients/{id}", "get", 200, &patient),
        "/patient_phone_numbers/0/phone_type",
    );
}

#[test]
fn cliniko_patient_list_envelope_validates() {
    let mut second = cliniko_patient();
    second["id"] = json!("836447129235883062");
    let list = json!({
        "patients": [cliniko_patient(), second],
        "total_entries": 2,
        "links": {"self": "https://api.au1.cliniko.com/v1/patients?page=1"}
    });
    assert_ok(cliniko().validate_response("/patients", "get", 200, &list));

    let bad = json!({"patients": [{"first_name": ["x"]}], "total_entries": "2", "links": {}});
    let errors = cliniko()
        .validate_response("/patients", "get", 200, &bad)
        .unwrap_err();
    let ptrs = pointers(&errors);
    assert!(ptrs.contains(&"/patients/0/first_name"), "{ptrs:?}");
    assert!(ptrs.contains(&"/total_entries"), "{ptrs:?}");
}

#[test]
fn cliniko_422_via_components_responses_ref() {
    let body = json!({"message": "Validation Failed", "errors": {"first_name": "can’t be blank"}});
    assert_ok(cliniko().validate_response("/patients", "post", 422, &body));
    // additionalProperties: {type: string} on `errors` is enforced.
    let bad = json!({"message": "Validation Failed", "errors": {"first_name": ["can’t be blank"]}});
    assert_violation_at(
        cliniko().validate_response("/patients", "post", 422, &bad),
        "/errors/first_name",
    );
}

#[test]
fn cliniko_request_body_via_components_request_bodies_ref() {
    let body = json!({"first_name": "Jane", "last_name": "Citizen", "email": "jane@example.com", "title": null});
    assert_ok(cliniko().validate_request("/patients", "post", &body));
    assert_violation_at(
        cliniko().validate_request(
            "/patients",
            "post",
            &json!({"first_name": 1, "last_name": "C"}),
        ),
        "/first_name",
    );
}

#[test]
fn cliniko_invoice_decimal_strings_and_nullable_integer_enum_status() {
    let invoice = json!({
        "id": "1234567890123456789",
        "number": 1042,
        "issue_date": "2024-05-01",
        "net_amount": "90.91",
        "discounted_amount": "0.00",
        "status": null,
        "status_description": null,
        "created_at": "2024-05-01T01:02:03Z"
    });
    assert_ok(cliniko().validate_response("/invoices/{id}", "get", 200, &invoice));
    let mut paid = invoice.clone();
    paid["status"] = json!(20);
    assert_ok(cliniko().validate_response("/invoices/{id}", "get", 200, &paid));
    let mut bad = invoice.clone();
    bad["status"] = json!(99);
    assert_violation_at(
        cliniko().validate_response("/invoices/{id}", "get", 200, &bad),
        "/status",
    );
    let mut bad = invoice;
    bad["net_amount"] = json!(90.91); // the spec says decimal *string*
    assert_violation_at(
        cliniko().validate_response("/invoices/{id}", "get", 200, &bad),
        "/net_amount",
    );
}

#[test]
fn cliniko_boolean_exclusive_bounds_are_converted() {
    // duration_in_minutes: minimum 0, maximum 1440, both exclusive (OAS 3.0 booleans).
    let ok = json!({"name": "Initial", "duration_in_minutes": 30});
    assert_ok(cliniko().validate_component("AppointmentType", &ok));
    for bad in [0, 1440, -5] {
        let body = json!({"name": "Initial", "duration_in_minutes": bad});
        assert_violation_at(
            cliniko().validate_component("AppointmentType", &body),
            "/duration_in_minutes",
        );
    }
    assert_ok(
        cliniko().validate_component("AppointmentType", &json!({"duration_in_minutes": 1439})),
    );
}

#[test]
fn cliniko_patterns_are_case_insensitive_but_still_asserted() {
    let mut patient = cliniko_patient();
    patient["email"] = json!("Mixed.Case@Example.com");
    assert_ok(cliniko().validate_component("Patient", &patient));
    patient["email"] = json!("not an email");
    assert_violation_at(cliniko().validate_component("Patient", &patient), "/email");
}

#[test]
fn cliniko_oneof_custom_fields() {
    let mut patient = cliniko_patient();
    patient["custom_fields"] = json!({"sections": [{
        "name": "Insurance", "token": "ef4c43ec-105d-489c-88cc-0f3c5f67dc70",
        "fields": [{"name": "Policy number", "type": "text", "token": "fdb9c8a0-2984-4d96-8dc1-fbe703a8afdb", "value": "ABC-12345"}]
    }]});
    assert_ok(cliniko().validate_response("/patients/{id}", "get", 200, &patient));
    patient["custom_fields"]["sections"][0]["fields"][0]["type"] = json!("hologram");
    assert_violation_at(
        cliniko().validate_response("/patients/{id}", "get", 200, &patient),
        "/custom_fields/sections/0/fields/0",
    );
}

#[test]
fn undeclared_things_are_reported_as_such() {
    let patient = cliniko_patient();
    let err = cliniko()
        .validate_response("/patients/{id}", "get", 418, &patient)
        .unwrap_err();
    assert!(
        err[0]
            .message
            .contains("status 418 is not declared for GET /patients/{id}"),
        "{}",
        err[0]
    );
    let err = cliniko()
        .validate_response("/nope", "get", 200, &patient)
        .unwrap_err();
    assert!(
        err[0].message.contains("path /nope is not declared"),
        "{}",
        err[0]
    );
    let err = cliniko()
        .validate_response("/patients/{id}", "options", 200, &patient)
        .unwrap_err();
    assert!(
        err[0]
            .message
            .contains("operation OPTIONS /patients/{id} is not declared"),
        "{}",
        err[0]
    );
    let err = cliniko()
        .validate_request("/patients/{id}", "get", &patient)
        .unwrap_err();
    assert!(
        err[0].message.contains("declares no requestBody"),
        "{}",
        err[0]
    );
    let err = cliniko()
        .validate_component("NoSuchSchema", &patient)
        .unwrap_err();
    assert!(
        err[0]
            .message
            .contains("component schema NoSuchSchema is not declared"),
        "{}",
        err[0]
    );
    // Reckon PUT customer: 204 with `content: {}`.
    let err = reckon()
        .validate_response("/{bookId}/customers/{customerId}", "put", 204, &json!({}))
        .unwrap_err();
    assert!(err[0].message.contains("declares no content"), "{}", err[0]);
}

// ------------------------------------------------------------------- Reckon

fn reckon_customer() -> Value {
    json!({
        "id": "c4e3cc74-8e81-4ae0-90d2-324d1e1a4479",
        "name": "John Doe",
        "organisationName": "My customer Pty Ltd",
        "status": "Active",
        "entityTypes": {"isCustomer": true, "isSupplier": false, "isEmployee": false, "isSuperfund": false},
        "electronicAddresses": [{"id": "x1", "type": {"id": "a9628717-f060-4565-8e37-21ef430c1410", "name": "Email"}, "address": "x@y.com"}],
        "phoneNumbers": [],
        "addresses": [],
        "contacts": [],
        "balance": 5789.35,
        "lastModifiedDateTime": "2020-02-06T04:13:45Z",
        "creditLimit": 12.5,
        "paymentTerms": {"id": "4cafd978-14ae-4dbe-8774-e86c29fabdc4", "name": "30 days"},
        "invoiceCount": 42
    })
}

#[test]
fn reckon_customer_get_validates() {
    assert_ok(reckon().validate_response(
        "/{bookId}/customers/{customerId}",
        "get",
        200,
        &reckon_customer(),
    ));
    let list = json!({"list": [reckon_customer()]});
    assert_ok(reckon().validate_response("/{bookId}/customers", "get", 200, &list));

    let mut missing_required = reckon_customer();
    missing_required
        .as_object_mut()
        .unwrap()
        .remove("lastModifiedDateTime");
    let errors = reckon()
        .validate_response(
            "/{bookId}/customers/{customerId}",
            "get",
            200,
            &missing_required,
        )
        .unwrap_err();
    assert!(
        errors[0].message.contains("lastModifiedDateTime"),
        "{errors:?}"
    );

    let mut wrong = reckon_customer();
    wrong["entityTypes"]["isCustomer"] = json!("yes");
    assert_violation_at(
        reckon().validate_response("/{bookId}/customers/{customerId}", "get", 200, &wrong),
        "/entityTypes/isCustomer",
    );
}

#[test]
fn reckon_formats_are_not_asserted() {
    // guid, date-time, decimal are annotations only.
    let mut customer = reckon_customer();
    customer["id"] = json!("not-a-guid");
    customer["lastModifiedDateTime"] = json!("2020-02-06");
    assert_ok(reckon().validate_response(
        "/{bookId}/customers/{customerId}",
        "get",
        200,
        &customer,
    ));
}

#[test]
fn reckon_customer_input_required_and_max_length() {
    let path = "/{bookId}/customers";
    assert_ok(reckon().validate_request(
        path,
        "post",
        &json!({"name": "Jane Citizen", "status": "Active"}),
    ));

    let errors = reckon()
        .validate_request(path, "post", &json!({"organisationName": "X"}))
        .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.pointer.is_empty() && e.message.contains("\"name\"")),
        "{errors:?}"
    );

    let long = "x".repeat(101);
    assert_violation_at(
        reckon().validate_request(path, "post", &json!({ "name": long })),
        "/name",
    );
    assert_ok(reckon().validate_request(path, "post", &json!({ "name": "x".repeat(100) })));
    // minLength: 1
    assert_violation_at(
        reckon().validate_request(path, "post", &json!({"name": ""})),
        "/name",
    );
    // nested AddressInput requires `type`
    assert_violation_at(
        reckon().validate_request(
            path,
            "post",
            &json!({"name": "J", "addresses": [{"line1": "1 St"}]}),
        ),
        "/addresses/0",
    );
}

fn reckon_invoice_input() -> Value {
    json!({
        "customer": "Company Ltd",
        "invoiceDate": "2020-02-06T12:00:00Z",
        "amountTaxStatus": "Inclusive",
        "paymentTerms": "30 days net",
        "reference": "My reference",
        "template": "Professional invoice",
        "notes": null,
        "lineItems": [{
            "lineNumber": 1,
            "description": "This is my new line",
            "taxRate": "GST",
            "itemDetails": {"item": "Parent item:Child item", "price": 5.5, "quantity": 1.0, "discountPercent": 25.0}
        }]
    })
}

#[test]
fn reckon_invoice_input_ref_with_siblings_and_enum() {
    let path = "/{bookId}/invoices";
    // `amountTaxStatus` is `type: object` + `$ref: AmountTaxStatus` (a string
    // enum): the $ref wins, so a string passes and `notes: null` passes
    // because NSwag declared `default: null`.
    assert_ok(reckon().validate_request(path, "post", &reckon_invoice_input()));

    let mut bad = reckon_invoice_input();
    bad["amountTaxStatus"] = json!("Sideways");
    let errors = assert_violation_at(
        reckon().validate_request(path, "post", &bad),
        "/amountTaxStatus",
    );
    assert!(errors[0].message.contains("Sideways"), "{errors:?}");

    let mut bad = reckon_invoice_input();
    bad["notes"] = json!(5);
    assert_violation_at(reckon().validate_request(path, "post", &bad), "/notes");

    // A non-nullable property without `default: null` still rejects null.
    let mut bad = reckon_invoice_input();
    bad["reference"] = Value::Null;
    assert_violation_at(reckon().validate_request(path, "post", &bad), "/reference");

    let mut bad = reckon_invoice_input();
    bad["lineItems"][0]
        .as_object_mut()
        .unwrap()
        .remove("lineNumber");
    assert_violation_at(
        reckon().validate_request(path, "post", &bad),
        "/lineItems/0",
    );
}

#[test]
fn reckon_null_status_needs_implicit_nullable() {
    // Reckon's spec declares no nullable component property; a GET invoice with
    // `status: null` fails as written, and passes with implicit nullability.
    let invoice = json!({
        "id": "8aa81e9a-d5e9-4cdb-8079-2d7acecf35f0",
        "invoiceNumber": "INV0123",
        "customer": {"id": "fa900bde-b588-4088-be5f-63375f6a693f", "name": "Company Ltd"},
        "invoiceDate": "2020-02-06T12:00:00Z",
        "totalAmount": 110.0,
        "balance": 54.0,
        "amountTaxStatus": "Inclusive",
        "emailStatus": "Unsent",
        "status": null,
        "paymentTerms": null
    });
    let path = "/{bookId}/invoices/{invoiceId}";
    let errors = reckon()
        .validate_response(path, "get", 200, &invoice)
        .unwrap_err();
    assert!(pointers(&errors).contains(&"/status"), "{errors:?}");
    assert_ok(reckon_nullable().validate_response(path, "get", 200, &invoice));
    let mut approved = invoice.clone();
    approved["status"] = json!("Approved");
    approved["paymentTerms"] =
        json!({"id": "04265ebe-f6df-4f2a-8317-a7b17522067e", "name": "30 days"});
    assert_ok(reckon().validate_response(path, "get", 200, &approved));
    // Implicit nullability does not switch off the enum.
    let mut bad = invoice;
    bad["status"] = json!("Sideways");
    let errors = assert_violation_at(
        reckon_nullable().validate_response(path, "get", 200, &bad),
        "/status",
    );
    // The nullable wrapper reports the real reason (the enum), not just "anyOf".
    assert!(
        errors[0].message.contains("\"Sideways\" is not one of")
            && errors[0].message.contains("null is also allowed"),
        "{errors:?}"
    );
}

#[test]
fn reckon_error_and_created_responses() {
    let created = json!({"id": "4914677a-e30e-4cfb-aef7-15ac09c697e6", "name": "Reckon co."});
    assert_ok(reckon().validate_response("/{bookId}/customers", "post", 201, &created));
    assert!(
        reckon()
            .validate_response("/{bookId}/customers", "post", 201, &json!({"name": "x"}))
            .is_err()
    );
}

// ------------------------------------------------------- synthetic spec

const SYNTHETIC: &str = r#"
openapi: 3.0.0
info: {title: t, version: "1"}
paths:
  /things/{id}:
    put:
      requestBody:
        content:
          application/json-patch+json:
            schema: {$ref: '#/components/schemas/Thing'}
      responses:
        200:
          description: ok
          content:
            text/plain: {schema: {type: string}}
            application/vnd.thing+json:
              schema: {$ref: '#/components/schemas/Thing'}
        4XX:
          description: client error
          content:
            application/json:
              schema: {type: object, required: [code], properties: {code: {type: integer}}}
components:
  schemas:
    Thing:
      type: object
      additionalProperties: false
      required: [id, name, secret]
      properties:
        id: {type: string, readOnly: true}
        name: {type: string, example: 2021-01-01, default: null}
        secret: {type: string, writeOnly: true}
        kind: {$ref: '#/components/schemas/Kind', nullable: true, type: object, description: ignored}
        children:
          type: array
          items: {$ref: '#/components/schemas/Thing'}
        parent:
          nullable: true
          allOf: [{$ref: '#/components/schemas/Thing'}]
    Kind:
      type: string
      enum: [a, b]
"#;

#[test]
fn synthetic_read_write_only_recursion_and_additional_properties() {
    let spec = Spec::from_yaml_str(SYNTHETIC).unwrap();
    let path = "/things/{id}";
    // Request: readOnly `id` is not required; writeOnly `secret` is.
    assert_ok(spec.validate_request(path, "put", &json!({"name": "n", "secret": "s"})));
    let errors = spec
        .validate_request(path, "put", &json!({"name": "n"}))
        .unwrap_err();
    assert!(errors[0].message.contains("secret"), "{errors:?}");
    // Response: writeOnly `secret` is not required; readOnly `id` is.
    assert_ok(spec.validate_response(path, "put", 200, &json!({"id": "1", "name": "n"})));
    let errors = spec
        .validate_response(path, "put", 200, &json!({"name": "n"}))
        .unwrap_err();
    assert!(errors[0].message.contains("id"), "{errors:?}");
    // additionalProperties: false is honoured.
    assert!(
        spec.validate_response(
            path,
            "put",
            200,
            &json!({"id": "1", "name": "n", "extra": 1})
        )
        .is_err()
    );
    // Recursion through $defs, nullable $ref (sibling `type: object` ignored) and nullable allOf.
    let nested = json!({"id": "1", "name": null, "kind": null, "parent": null,
        "children": [{"id": "2", "name": "c", "kind": "b", "parent": {"id": "0", "name": "p"}}]});
    assert_ok(spec.validate_response(path, "put", 200, &nested));
    let bad = json!({"id": "1", "name": "n", "children": [{"id": "2", "name": "c", "kind": "z"}]});
    assert_violation_at(
        spec.validate_response(path, "put", 200, &bad),
        "/children/0/kind",
    );
    let bad = json!({"id": "1", "name": "n", "children": [{"id": 2, "name": "c"}]});
    assert_violation_at(
        spec.validate_response(path, "put", 200, &bad),
        "/children/0/id",
    );
    // 4XX range key; status not covered.
    assert_ok(spec.validate_response(path, "put", 404, &json!({"code": 404})));
    assert_violation_at(
        spec.validate_response(path, "put", 404, &json!({"code": "x"})),
        "/code",
    );
    assert!(
        spec.validate_response(path, "put", 500, &json!({}))
            .unwrap_err()[0]
            .message
            .contains("not declared")
    );
}
