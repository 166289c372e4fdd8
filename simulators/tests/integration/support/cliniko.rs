//! A Cliniko simulator on a loopback port plus a `reqwest` client that talks to it the way
//! the sync does (Basic auth, a User-Agent with a contact email, `Accept: application/json`).

use chrono::{DateTime, TimeZone, Utc};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use simulators::cliniko::model::*;
use simulators::cliniko::store::ClinikoState;
use simulators::cliniko::{ClinikoConfig, ClinikoSim};
use simulators::common::RunningServer;

pub const UA: &str = "Cliniko Reckon Sync tests (dev@example.com)";

pub struct Harness {
    pub sim: ClinikoSim,
    pub server: RunningServer,
    /// `http://127.0.0.1:PORT/v1`
    pub base: String,
    pub client: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::with_config(ClinikoConfig {
            capture_traffic: true,
            ..Default::default()
        })
        .await
    }

    pub async fn with_config(config: ClinikoConfig) -> Harness {
        let sim = ClinikoSim::new(config);
        let server = sim.start("127.0.0.1", 0).await.expect("simulator starts");
        let base = format!("{}/v1", server.origin());
        Harness {
            sim,
            server,
            base,
            client: reqwest::Client::new(),
        }
    }

    pub fn origin(&self) -> String {
        self.server.origin()
    }

    /// `path` is relative to `/v1` (`/patients?page=2`) or an absolute URL (a `links.next`).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// A request with the headers the sync sends.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .basic_auth(self.sim.api_key(), Some(""))
            .header("User-Agent", UA)
            .header("Accept", "application/json")
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// GET and parse; panics on transport errors or a non-JSON body.
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        read(self.get(path).send().await.expect("request sent")).await
    }

    /// GET with `(key, value)` query pairs (encoded by reqwest, so `q[]` and `%` are safe).
    pub async fn list(&self, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        read(self.get(path).query(query).send().await.expect("sent")).await
    }

    /// Ids (as strings) of a list page under the resource's plural key.
    pub async fn ids(&self, path: &str, query: &[(&str, &str)]) -> Vec<String> {
        let (status, body) = self.list(path, query).await;
        assert_eq!(status, 200, "GET {path} {query:?}: {body}");
        let plural = path
            .trim_start_matches('/')
            .split(['/', '?'])
            .next()
            .unwrap();
        ids_of(&body[plural])
    }

    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> (StatusCode, Value) {
        read(
            self.request(method, path)
                .json(body)
                .send()
                .await
                .expect("request sent"),
        )
        .await
    }

    /// A call to the test-only `/__admin` routes (no auth needed).
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}/__admin{path}", self.origin()));
        if let Some(b) = body {
            req = req.json(b);
        }
        read(req.send().await.expect("admin request sent")).await
    }
}

pub async fn read(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body read");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

pub fn ids_of(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|r| r["id"].as_str().expect("string id").to_string())
        .collect()
}

pub fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("a JSON object")
}

pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

// ---- fixtures ---------------------------------------------------------------------------

/// A small clinic: one of each reference record, ids in a struct.
#[derive(Debug, Clone, Copy)]
pub struct Clinic {
    pub gst: u64,
    pub business: u64,
    pub practitioner: u64,
    pub inactive_practitioner: u64,
    pub appointment_type: u64,
    pub billable_item: u64,
    pub contact: u64,
    pub product: u64,
    pub patient: u64,
}

pub fn patient(s: &mut ClinikoState, first: &str, last: &str) -> Patient {
    s.create_patient(&obj(json!({"first_name": first, "last_name": last})))
        .expect("patient created")
}

pub fn seed_clinic(s: &mut ClinikoState) -> Clinic {
    let now = s.now();
    let gst = s.fresh_id();
    s.insert(Tax {
        id: gst,
        name: "GST".into(),
        rate: Decimal::TEN,
        amount: Decimal::TEN,
        created_at: now,
        updated_at: now,
    });
    let business = s.fresh_id();
    s.insert(Business {
        id: business,
        business_name: Some("Harbour Physio".into()),
        display_name: Some("Harbour Physio".into()),
        label: Some("Harbour Physio".into()),
        country: Some("Australia".into()),
        country_code: Some("AU".into()),
        business_registration_name: Some("ABN".into()),
        business_registration_value: Some("51 824 753 556".into()),
        time_zone: Some("Sydney".into()),
        time_zone_identifier: Some("Australia/Sydney".into()),
        created_at: now,
        updated_at: now,
        ..Default::default()
    });
    let practitioner = s.fresh_id();
    s.insert(Practitioner {
        id: practitioner,
        active: Some(true),
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        display_name: Some("Ada Lovelace".into()),
        label: Some("Ada Lovelace, Physiotherapist".into()),
        designation: Some("Physiotherapist".into()),
        show_in_online_bookings: Some(true),
        created_at: now,
        updated_at: now,
        ..Default::default()
    });
    let inactive_practitioner = s.fresh_id();
    s.insert(Practitioner {
        id: inactive_practitioner,
        active: Some(false),
        first_name: Some("Old".into()),
        last_name: Some("Timer".into()),
        display_name: Some("Old Timer".into()),
        label: Some("Old Timer".into()),
        created_at: now,
        updated_at: now,
        ..Default::default()
    });
    let billable_item = s.fresh_id();
    s.insert(BillableItem {
        id: billable_item,
        name: "Initial consultation".into(),
        item_code: Some("IC".into()),
        item_type: "Service".into(),
        price: Decimal::new(9500, 2),
        created_at: now,
        updated_at: now,
        tax_id: None,
        ..Default::default()
    });
    let appointment_type = s.fresh_id();
    s.insert(AppointmentType {
        id: appointment_type,
        name: "Initial consultation".into(),
        category: Some("Physio".into()),
        color: "#3a87ad".into(),
        duration_in_minutes: 45,
        max_attendees: 1,
        show_in_online_bookings: Some(true),
        telehealth_enabled: Some(false),
        deposit_price: Some(Decimal::ZERO),
        created_at: now,
        updated_at: now,
        billable_item_id: Some(billable_item),
        ..Default::default()
    });
    let contact = s.fresh_id();
    s.insert(Contact {
        id: contact,
        first_name: Some("Greg".into()),
        last_name: Some("House".into()),
        company_name: Some("Princeton GP".into()),
        doctor_type: Some("general_practitioner".into()),
        email: Some("greg@example.com".into()),
        contact_type: Some("Doctor".into()),
        created_at: now,
        updated_at: now,
        ..Default::default()
    });
    let product = s
        .create_product(&obj(json!({"name": "Theraband", "price": 22,
            "price_includes_tax": true, "tax_id": gst.to_string(), "stock_level": "5"})))
        .expect("product")
        .id;
    let patient = patient(s, "Zoë", "O'Brien").id;
    Clinic {
        gst,
        business,
        practitioner,
        inactive_practitioner,
        appointment_type,
        billable_item,
        contact,
        product,
        patient,
    }
}

/// An individual appointment for the clinic's patient, starting `start` (Unix seconds).
pub fn appointment(s: &mut ClinikoState, c: &Clinic, start: i64) -> IndividualAppointment {
    let now = s.now();
    let id = s.fresh_id();
    s.insert(IndividualAppointment {
        id,
        starts_at: at(start),
        ends_at: at(start + 45 * 60),
        patient_name: Some("Zoë O'Brien".into()),
        did_not_arrive: Some(false),
        patient_arrived: Some(true),
        email_reminder_sent: Some(false),
        sms_reminder_sent: Some(false),
        created_at: now,
        updated_at: now,
        patient_id: Some(c.patient),
        practitioner_id: Some(c.practitioner),
        business_id: Some(c.business),
        appointment_type_id: Some(c.appointment_type),
        ..Default::default()
    })
}
