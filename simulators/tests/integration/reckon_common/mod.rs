//! A running Reckon simulator and a thin HTTP client for the Reckon integration tests.
#![allow(dead_code)]

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use simulators::common::RunningServer;
use simulators::reckon::{DEFAULT_SUBSCRIPTION_KEY, ReckonConfig, ReckonSim};

pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// One answer: status, headers and the JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `body.list`, which every list endpoint answers.
    pub fn list(&self) -> &Vec<Value> {
        self.body["list"]
            .as_array()
            .unwrap_or_else(|| panic!("no list in {}", self.text))
    }

    /// The `location`s of a 400's `errors[]`.
    pub fn error_locations(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|d| d["location"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        self
    }

    /// Asserts a 400 whose `errors[]` name `location`, in Reckon's `ErrorResponse` shape.
    #[track_caller]
    pub fn expect_invalid_at(self, location: &str) -> Resp {
        assert_eq!(self.status, 400, "expected 400, got: {}", self.text);
        assert_eq!(self.body["code"], 400, "{}", self.text);
        assert!(self.body["message"].is_string(), "{}", self.text);
        for e in self.body["errors"].as_array().expect("errors[]") {
            assert!(e["location"].is_string() && e["message"].is_string(), "{e}");
        }
        assert!(
            self.error_locations().iter().any(|l| l == location),
            "expected an error at {location}, got {}",
            self.text
        );
        self
    }

    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.text))
            .to_string()
    }
}

/// A decimal from a JSON number (exactly as written on the wire).
#[track_caller]
pub fn dec(v: &Value) -> Decimal {
    assert!(v.is_number(), "not a number: {v}");
    v.to_string().parse().expect("a decimal")
}

pub struct Env {
    pub sim: ReckonSim,
    pub server: RunningServer,
    pub origin: String,
    pub api: String,
    pub book: String,
    pub token: String,
    pub key: String,
    pub http: reqwest::Client,
}

pub fn quiet_config() -> ReckonConfig {
    ReckonConfig {
        capture_traffic: true,
        rate_limit_per_minute: 0,
        ..Default::default()
    }
}

impl Env {
    pub async fn start() -> Env {
        Env::with(quiet_config()).await
    }

    pub async fn with(config: ReckonConfig) -> Env {
        let sim = ReckonSim::new(config);
        let server = sim.start("127.0.0.1", 0).await.expect("simulator starts");
        let origin = server.origin();
        let token = sim.issue_tokens().access_token;
        Env {
            api: format!("{origin}/r1/v2"),
            book: sim.book_id().to_string(),
            key: DEFAULT_SUBSCRIPTION_KEY.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            sim,
            server,
            origin,
            token,
        }
    }

    /// `/r1/v2/{book}{path}` (path starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}{}", self.api, self.book, path)
    }

    pub fn authed(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        rb.bearer_auth(&self.token)
            .header("Ocp-Apim-Subscription-Key", &self.key)
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let response = rb.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    /// GET a full URL with the usual credentials.
    pub async fn get_url(&self, url: &str) -> Resp {
        self.send(self.authed(self.http.get(url))).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.get_url(&self.url(path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(self.authed(self.http.post(self.url(path))).json(body))
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send(self.authed(self.http.put(self.url(path))).json(body))
            .await
    }

    /// PATCH as Reckon wants it: `application/merge-patch+json`.
    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.patch_as(path, body, MERGE_PATCH).await
    }

    pub async fn patch_as(&self, path: &str, body: &Value, content_type: &str) -> Resp {
        self.send(
            self.authed(self.http.patch(self.url(path)))
                .header(CONTENT_TYPE, content_type)
                .body(body.to_string()),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.authed(self.http.delete(self.url(path))))
            .await
    }

    // ---- seeding over HTTP -------------------------------------------------------------

    pub async fn customer(&self, name: &str) -> String {
        self.post("/customers", &json!({ "name": name }))
            .await
            .expect(201)
            .id()
    }

    /// A sold item priced `price` (tax status of the item itself: Inclusive).
    pub async fn item(&self, name: &str, parent: Option<&str>) -> String {
        let mut body = json!({
            "name": name, "itemType": "Service", "amountTaxStatus": "Inclusive",
            "sale": {"price": 100, "ledgerAccount": "Consultation Fees", "taxRate": "GST"}
        });
        if let Some(p) = parent {
            body["parentItem"] = json!(p);
        }
        self.post("/items", &body).await.expect(201).id()
    }

    /// An invoice with item lines `(price, quantity, taxRate)`.
    pub async fn invoice(
        &self,
        customer: &str,
        status: &str,
        lines: &[(&str, &str, &str)],
    ) -> Resp {
        let lines: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, (price, qty, tax))| {
                json!({"lineNumber": i + 1, "description": format!("line {}", i + 1), "taxRate": tax,
                       "itemDetails": {"item": "Consultation", "price": price.parse::<f64>().unwrap(),
                                       "quantity": qty.parse::<f64>().unwrap()}})
            })
            .collect();
        self.post(
            "/invoices",
            &json!({"customer": customer, "invoiceDate": "2026-03-02", "amountTaxStatus": status,
                    "reference": "R-1", "lineItems": lines}),
        )
        .await
    }
}
