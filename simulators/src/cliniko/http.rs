//! The Cliniko HTTP surface: `/v1` routes behind Basic auth, the User-Agent and Accept
//! rules, the per-user rate limit and fault injection; plus `/__admin` test controls.

use super::model::*;
use super::query::ListQuery;
use super::store::{
    AppointmentMark, ClinikoState, FieldErrors, InvoicePatch, InvoiceSpec, Table, WriteError,
    links_to_ids,
};
use crate::common::admin::{self, Controls};
use crate::common::{
    FaultHandle, FixedWindow, Outcome, RunningServer, SimClock, TrafficLog, traffic,
};
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// How a Cliniko simulator behaves.
#[derive(Clone, Debug)]
pub struct ClinikoConfig {
    /// Accepted API keys (with their `-shard` suffix; the bare key works too).
    pub api_keys: Vec<String>,
    /// Requests per minute per user; 0 disables the limit. Cliniko's is 200.
    pub rate_limit_per_minute: u32,
    /// Seed for fault injection.
    pub seed: u64,
    /// Keep every request and response body (tests); counters always run.
    pub capture_traffic: bool,
    /// Answer 403 when the User-Agent has no `(contact email)`.
    pub require_user_agent_email: bool,
    /// `GET /patients/{id}` of an archived patient needs `q[]=archived_at:*` (else 404).
    pub archived_get_needs_filter: bool,
}

impl Default for ClinikoConfig {
    fn default() -> Self {
        ClinikoConfig {
            api_keys: vec![DEFAULT_API_KEY.into()],
            rate_limit_per_minute: 200,
            seed: 1,
            capture_traffic: false,
            require_user_agent_email: true,
            archived_get_needs_filter: true,
        }
    }
}

/// A made-up key in the documented shape (`…-au1`).
pub const DEFAULT_API_KEY: &str = "MS0xNzQ0NTY2MjQ2NTQ0NjMxMDQ4LWNsaW5pa29zaW0-au1";

/// A running-or-not Cliniko simulator: its data, faults, rate limit, clock and traffic log.
#[derive(Clone)]
pub struct ClinikoSim {
    state: Arc<Mutex<ClinikoState>>,
    pub faults: FaultHandle,
    pub traffic: TrafficLog,
    pub rate_limit: FixedWindow,
    pub clock: SimClock,
    keys: Arc<RwLock<Vec<String>>>,
    config: Arc<ClinikoConfig>,
}

impl ClinikoSim {
    pub fn new(config: ClinikoConfig) -> Self {
        let clock = SimClock::new();
        ClinikoSim {
            state: Arc::new(Mutex::new(ClinikoState::new(clock.clone()))),
            faults: FaultHandle::new(config.seed),
            traffic: TrafficLog::new(config.capture_traffic),
            rate_limit: FixedWindow::new(config.rate_limit_per_minute, 60),
            clock,
            keys: Arc::new(RwLock::new(config.api_keys.clone())),
            config: Arc::new(config),
        }
    }

    /// Locks the data for reading or changing it directly from a test.
    pub fn state(&self) -> MutexGuard<'_, ClinikoState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut ClinikoState) -> T) -> T {
        f(&mut self.state())
    }

    pub fn api_key(&self) -> String {
        self.keys
            .read()
            .map(|k| k.first().cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn add_api_key(&self, key: &str) {
        if let Ok(mut keys) = self.keys.write() {
            keys.push(key.to_string());
        }
    }

    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/v1/patients", get(list::<Patient>).post(create_patient))
            .route(
                "/v1/patients/{id}",
                get(show::<Patient>)
                    .patch(update_patient)
                    .put(update_patient)
                    .delete(archive_patient),
            )
            .route("/v1/patients/{id}/archive", post(archive_patient))
            .route("/v1/patients/{id}/unarchive", post(unarchive_patient))
            .route("/v1/products", get(list::<Product>).post(create_product))
            .route(
                "/v1/products/{id}",
                get(show::<Product>)
                    .patch(update_product)
                    .put(update_product)
                    .delete(archive_product),
            )
            .route("/v1/products/{id}/archive", post(archive_product))
            .route(
                "/v1/stock_adjustments",
                get(list::<StockAdjustment>).post(create_stock_adjustment),
            )
            .route("/v1/stock_adjustments/{id}", get(show::<StockAdjustment>))
            .route("/v1/invoices", get(list::<Invoice>))
            .route("/v1/invoices/{id}", get(show::<Invoice>))
            .route("/v1/invoices/{id}/invoice_items", get(nested_invoice_items))
            .route("/v1/invoice_items", get(list::<InvoiceItem>))
            .route("/v1/invoice_items/{id}", get(show::<InvoiceItem>))
            .route("/v1/billable_items", get(list::<BillableItem>))
            .route("/v1/billable_items/{id}", get(show::<BillableItem>))
            .route("/v1/taxes", get(list::<Tax>))
            .route("/v1/taxes/{id}", get(show::<Tax>))
            .route("/v1/businesses", get(list::<Business>))
            .route("/v1/businesses/{id}", get(show::<Business>))
            .route("/v1/practitioners", get(list_practitioners))
            .route(
                "/v1/practitioners/inactive",
                get(list_inactive_practitioners),
            )
            .route("/v1/practitioners/{id}", get(show::<Practitioner>))
            .route("/v1/appointment_types", get(list::<AppointmentType>))
            .route("/v1/appointment_types/{id}", get(show::<AppointmentType>))
            .route(
                "/v1/individual_appointments",
                get(list::<IndividualAppointment>).post(create_appointment),
            )
            .route(
                "/v1/individual_appointments/{id}",
                get(show::<IndividualAppointment>).patch(update_appointment),
            )
            .route(
                "/v1/individual_appointments/{id}/cancel",
                patch(cancel_appointment),
            )
            .route(
                "/v1/appointment_type_billable_items",
                get(list::<AppointmentTypeBillableItem>)
                    .post(create_appointment_type_billable_item),
            )
            .route(
                "/v1/appointment_type_billable_items/{id}",
                get(show::<AppointmentTypeBillableItem>),
            )
            .route("/v1/contacts", get(list::<Contact>))
            .route("/v1/contacts/{id}", get(show::<Contact>))
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(self.clone(), guard))
            .with_state(self.clone());
        let admin = Router::new()
            .route("/__admin/state", get(admin_state))
            .route("/__admin/invoices", post(admin_create_invoice))
            .route("/__admin/invoices/{id}", patch(admin_update_invoice))
            .route("/__admin/patients/{id}/merge", post(admin_merge))
            .route(
                "/__admin/individual_appointments/{id}",
                patch(admin_mark_appointment),
            )
            .route("/__admin/import/{resource}", post(admin_import))
            .route("/__admin/rate_limit", post(admin_rate_limit))
            .with_state(self.clone())
            .merge(admin::routes(Controls {
                faults: self.faults.clone(),
                traffic: self.traffic.clone(),
                clock: self.clock.clone(),
            }));
        api.merge(admin).layer(middleware::from_fn_with_state(
            self.traffic.clone(),
            traffic::record,
        ))
    }

    /// Serves on `host:port` (0 = a free port). The API base URL is `origin() + "/v1"`.
    pub async fn start(&self, host: &str, port: u16) -> std::io::Result<RunningServer> {
        RunningServer::start(self.router(), host, port).await
    }
}

// ---- responses ---------------------------------------------------------------------

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

fn validation_failed(errors: FieldErrors) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "message": "Validation Failed", "errors": errors })),
    )
        .into_response()
}

fn write_error(e: WriteError) -> Response {
    match e {
        WriteError::NotFound => not_found_response(),
        WriteError::Invalid(errors) => validation_failed(errors),
    }
}

fn not_found_response() -> Response {
    message(StatusCode::NOT_FOUND, "Not found")
}

async fn not_found() -> Response {
    not_found_response()
}

/// `http://host/v1`, from the request's Host header, so links lead back here.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/v1")
}

fn query_pairs(uri: &axum::http::Uri) -> Vec<(String, String)> {
    serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default()
}

// ---- middleware: faults, auth, headers, rate limit ------------------------------------

fn strip_shard(key: &str) -> &str {
    match key.rsplit_once('-') {
        Some((bare, shard))
            if shard.len() >= 3
                && shard.len() <= 4
                && shard[..2].chars().all(|c| c.is_ascii_alphabetic())
                && shard[2..].chars().all(|c| c.is_ascii_digit()) =>
        {
            bare
        }
        _ => key,
    }
}

fn authorised_user(sim: &ClinikoSim, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let user = decoded.split(':').next()?;
    let keys = sim.keys.read().ok()?;
    keys.iter()
        .find(|k| user == k.as_str() || user == strip_shard(k))
        .map(|k| strip_shard(k).to_string())
}

fn has_contact_email(user_agent: &str) -> bool {
    let Some(open) = user_agent.find('(') else {
        return false;
    };
    let Some(close) = user_agent[open..].find(')') else {
        return false;
    };
    let inside = &user_agent[open + 1..open + close];
    inside.split([' ', ';', ',']).any(|part| {
        part.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
    }) && !user_agent[..open].trim().is_empty()
}

fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.contains("application/json") || v.contains("*/*") || v.contains("application/*")
        })
}

async fn guard(State(sim): State<ClinikoSim>, request: Request, next: Next) -> Response {
    let outcome = sim
        .faults
        .decide(request.method().as_str(), request.uri().path());
    let delay = match &outcome {
        Outcome::Pass(d)
        | Outcome::Error(_, d)
        | Outcome::RateLimited(d)
        | Outcome::Drop(d)
        | Outcome::Hang(d) => *d,
        Outcome::Outage => std::time::Duration::ZERO,
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match outcome {
        Outcome::Outage => return message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        Outcome::Error(status, _) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return message(status, status.canonical_reason().unwrap_or("Error"));
        }
        Outcome::RateLimited(_) => return rate_limited(sim.clock.now().timestamp() + 60),
        Outcome::Hang(_) => return message(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout"),
        Outcome::Drop(_) => {
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(traffic::broken_body())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        Outcome::Pass(_) => {}
    }
    let headers = request.headers();
    let Some(user) = authorised_user(&sim, headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"Application\"")],
            "HTTP Basic: Access denied.\n",
        )
            .into_response();
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if sim.config.require_user_agent_email && !has_contact_email(user_agent) {
        return message(
            StatusCode::FORBIDDEN,
            "Requests must include a User-Agent with your application name and contact email, e.g. \"App Name (dev@example.com)\".",
        );
    }
    if !accepts_json(headers) {
        return message(
            StatusCode::NOT_ACCEPTABLE,
            "Only application/json responses are available.",
        );
    }
    if let Err(reset) = sim.rate_limit.check(&user, sim.clock.now()) {
        return rate_limited(reset);
    }
    next.run(request).await
}

fn rate_limited(reset: i64) -> Response {
    let mut response = message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    if let Ok(v) = HeaderValue::from_str(&reset.to_string()) {
        response.headers_mut().insert("X-RateLimit-Reset", v);
    }
    response
}

// ---- reads -------------------------------------------------------------------------

fn envelope<R: Resource>(
    sim: &ClinikoSim,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    pairs: Vec<(String, String)>,
    extra: Option<super::query::Condition>,
) -> Response
where
    ClinikoState: Table<R>,
{
    let mut query = match ListQuery::parse::<R>(&pairs) {
        Ok(q) => q,
        Err(e) => return message(StatusCode::BAD_REQUEST, &e.message()),
    };
    query.conditions.extend(extra);
    let base = base_url(headers);
    let state = sim.state();
    let (page, total) = query.run(Table::<R>::table(&*state).values());
    let items: Vec<Value> = page.iter().map(|r| state.render(*r, &base)).collect();
    drop(state);
    let path = uri.path().strip_prefix("/v1").unwrap_or(uri.path());
    let kept: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != "page").collect();
    let link = |page: usize| {
        let mut all: Vec<(&str, String)> =
            kept.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        all.push(("page", page.to_string()));
        format!(
            "{base}{path}?{}",
            serde_urlencoded::to_string(&all).unwrap_or_default()
        )
    };
    let mut links = Map::new();
    links.insert("self".into(), Value::String(link(query.page)));
    if query.page > 1 {
        links.insert("previous".into(), Value::String(link(query.page - 1)));
    }
    if query.page * query.per_page < total {
        links.insert("next".into(), Value::String(link(query.page + 1)));
    }
    let mut body = Map::new();
    body.insert(R::PLURAL.into(), Value::Array(items));
    body.insert("total_entries".into(), json!(total));
    body.insert("links".into(), Value::Object(links));
    Json(Value::Object(body)).into_response()
}

async fn list<R: Resource>(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response
where
    ClinikoState: Table<R>,
{
    envelope::<R>(&sim, &headers, &uri, query_pairs(&uri), None)
}

async fn list_practitioners(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let active = super::query::parse_condition::<Practitioner>("active:=true").ok();
    envelope::<Practitioner>(&sim, &headers, &uri, query_pairs(&uri), active)
}

async fn list_inactive_practitioners(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let inactive = super::query::parse_condition::<Practitioner>("active:=false").ok();
    envelope::<Practitioner>(&sim, &headers, &uri, query_pairs(&uri), inactive)
}

async fn nested_invoice_items(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return not_found_response();
    };
    let by_invoice =
        super::query::parse_condition::<InvoiceItem>(&format!("invoice_id:={id}")).ok();
    envelope::<InvoiceItem>(&sim, &headers, &uri, query_pairs(&uri), by_invoice)
}

async fn show<R: Resource>(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Response
where
    ClinikoState: Table<R>,
{
    let Ok(id) = id.parse::<u64>() else {
        return not_found_response();
    };
    let query = match ListQuery::parse::<R>(&query_pairs(&uri)) {
        Ok(q) => q,
        Err(e) => return message(StatusCode::BAD_REQUEST, &e.message()),
    };
    let state = sim.state();
    let Some(record) = state.get::<R>(id) else {
        return not_found_response();
    };
    // Archived rows need `q[]=archived_at:*` (configurable); deleted rows are gone.
    let hidden = if sim.config.archived_get_needs_filter {
        !query.visible(record)
    } else {
        record.col("deleted_at") != Col::Null
            && !query.conditions.iter().any(|c| c.field == "deleted_at")
    };
    if hidden {
        return not_found_response();
    }
    Json(state.render(record, &base_url(&headers))).into_response()
}

// ---- writes ------------------------------------------------------------------------

/// Reads a JSON object body. Without a JSON content type Cliniko ignores the body, so every
/// field then reads as blank.
#[allow(clippy::result_large_err)] // the Err is the finished HTTP answer
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json || body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "must be an object",
        )),
        Err(_) => Err(message(
            StatusCode::BAD_REQUEST,
            "There was a problem in the JSON you submitted",
        )),
    }
}

fn created<R: Resource>(record: &R, headers: &HeaderMap) -> Response {
    let base = base_url(headers);
    let location = format!("{base}/{}/{}", R::PLURAL, record.id());
    let mut response = (StatusCode::CREATED, Json(render(record, &base))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

#[allow(clippy::result_large_err)] // the Err is the finished HTTP answer
fn parse_id(id: &str) -> Result<u64, Response> {
    id.parse().map_err(|_| not_found_response())
}

async fn create_patient(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match sim.with(|s| s.create_patient(&body)) {
        Ok(p) => created(&p, &headers),
        Err(e) => write_error(e),
    }
}

async fn update_patient(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (id, body) = match (parse_id(&id), json_body(&headers, &body)) {
        (Ok(i), Ok(b)) => (i, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match sim.with(|s| s.update_patient(id, &body)) {
        Ok(p) => Json(render(&p, &base_url(&headers))).into_response(),
        Err(e) => write_error(e),
    }
}

async fn create_appointment(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match sim.with(|s| s.create_appointment(&body)) {
        Ok(a) => created(&a, &headers),
        Err(e) => write_error(e),
    }
}

async fn update_appointment(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (id, body) = match (parse_id(&id), json_body(&headers, &body)) {
        (Ok(i), Ok(b)) => (i, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match sim.with(|s| s.update_appointment(id, &body)) {
        Ok(a) => Json(render(&a, &base_url(&headers))).into_response(),
        Err(e) => write_error(e),
    }
}

async fn cancel_appointment(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (id, body) = match (parse_id(&id), json_body(&headers, &body)) {
        (Ok(i), Ok(b)) => (i, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match sim.with(|s| s.cancel_appointment(id, &body)) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => write_error(e),
    }
}

async fn create_appointment_type_billable_item(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match sim.with(|s| s.create_appointment_type_billable_item(&body)) {
        Ok(a) => created(&a, &headers),
        Err(e) => write_error(e),
    }
}

async fn admin_mark_appointment(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(mark): Json<AppointmentMark>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match sim.with(|s| s.mark_appointment(id, &mark)) {
        Ok(a) => Json(render(&a, &base_url(&headers))).into_response(),
        Err(e) => write_error(e),
    }
}

async fn archive_patient(State(sim): State<ClinikoSim>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match sim.with(|s| s.set_patient_archived(id, true)) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => write_error(e),
    }
}

async fn unarchive_patient(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match sim.with(|s| s.set_patient_archived(id, false)) {
        Ok(p) => Json(render(&p, &base_url(&headers))).into_response(),
        Err(e) => write_error(e),
    }
}

async fn create_product(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match sim.with(|s| s.create_product(&body)) {
        Ok(p) => created(&p, &headers),
        Err(e) => write_error(e),
    }
}

async fn update_product(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (id, body) = match (parse_id(&id), json_body(&headers, &body)) {
        (Ok(i), Ok(b)) => (i, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match sim.with(|s| s.update_product(id, &body)) {
        Ok(p) => Json(render(&p, &base_url(&headers))).into_response(),
        Err(e) => write_error(e),
    }
}

async fn archive_product(State(sim): State<ClinikoSim>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match sim.with(|s| s.set_product_archived(id, true)) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => write_error(e),
    }
}

async fn create_stock_adjustment(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match sim.with(|s| s.create_stock_adjustment(&body)) {
        Ok(a) => created(&a, &headers),
        Err(e) => write_error(e),
    }
}

// ---- admin (test-only) -----------------------------------------------------------------

async fn admin_state(State(sim): State<ClinikoSim>) -> Response {
    let summary = sim.state().summary();
    Json(json!({ "tables": summary, "api_key": sim.api_key(), "rate_limit_per_minute": sim.rate_limit.limit() }))
        .into_response()
}

async fn admin_create_invoice(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    Json(spec): Json<InvoiceSpec>,
) -> Response {
    match sim.with(|s| s.create_invoice(&spec)) {
        Ok(inv) => created(&inv, &headers),
        Err(e) => write_error(e),
    }
}

async fn admin_update_invoice(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(patch): Json<InvoicePatch>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match sim.with(|s| s.update_invoice(id, &patch)) {
        Ok(inv) => Json(render(&inv, &base_url(&headers))).into_response(),
        Err(e) => write_error(e),
    }
}

#[derive(Deserialize)]
struct MergeBody {
    #[serde(with = "crate::common::wire::id")]
    into: u64,
}

async fn admin_merge(
    State(sim): State<ClinikoSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<MergeBody>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match sim.with(|s| s.merge_patients(id, b.into)) {
        Ok(p) => Json(render(&p, &base_url(&headers))).into_response(),
        Err(e) => write_error(e),
    }
}

#[derive(Deserialize)]
struct RateLimitBody {
    per_minute: u32,
}

async fn admin_rate_limit(State(sim): State<ClinikoSim>, Json(b): Json<RateLimitBody>) -> Response {
    sim.rate_limit.set_limit(b.per_minute);
    StatusCode::NO_CONTENT.into_response()
}

/// Accepts Cliniko JSON as the API or its legacy docs show it (a record, or a list envelope)
/// and stores it as is: the way to load vendor examples or hand-made fixtures.
async fn admin_import(
    State(sim): State<ClinikoSim>,
    Path(resource): Path<String>,
    body: Bytes,
) -> Response {
    // serde_json keeps the last of duplicate keys, as the legacy patient example needs.
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return message(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    };
    let records: Vec<Value> = match value.get(&resource) {
        Some(Value::Array(list)) => list.clone(),
        _ => vec![value],
    };
    let mut ids = Vec::new();
    for record in records {
        let result = sim.with(|s| import_one(s, &resource, record));
        match result {
            Ok(id) => ids.push(id.to_string()),
            Err(e) => return message(StatusCode::UNPROCESSABLE_ENTITY, &e),
        }
    }
    (StatusCode::CREATED, Json(json!({ "imported": ids }))).into_response()
}

fn import_as<R: Resource + serde::de::DeserializeOwned>(
    state: &mut ClinikoState,
    record: Value,
) -> Result<u64, String>
where
    ClinikoState: Table<R>,
{
    import_with::<R>(state, record, |_| {})
}

/// Imports one record, then fills in what the live API always derives (`fix`), so the record
/// reads back in the canonical form even when the legacy example omits it.
fn import_with<R: Resource + serde::de::DeserializeOwned>(
    state: &mut ClinikoState,
    record: Value,
    fix: impl FnOnce(&mut R),
) -> Result<u64, String>
where
    ClinikoState: Table<R>,
{
    let mut map = match record {
        Value::Object(m) => m,
        _ => return Err("a record must be a JSON object".into()),
    };
    links_to_ids(&mut map);
    let mut parsed: R =
        serde_json::from_value(Value::Object(map)).map_err(|e| format!("{}: {e}", R::PLURAL))?;
    fix(&mut parsed);
    Ok(state.insert(parsed).id())
}

pub fn import_one(state: &mut ClinikoState, resource: &str, record: Value) -> Result<u64, String> {
    match resource {
        "patients" => import_with::<Patient>(state, record, |p| {
            // The schema's phone numbers always carry a normalised form and patients a label.
            for phone in &mut p.patient_phone_numbers {
                if phone.normalized_number.is_none() {
                    phone.normalized_number = Some(super::store::normalize_phone(&phone.number));
                }
            }
            if p.label.is_none() {
                p.label = Some(p.full_label());
            }
        }),
        "invoices" => import_with::<Invoice>(state, record, |inv| {
            // Legacy invoices predate calculation methods: they are "Legacy" (1).
            if inv.calculation_method == 0 {
                inv.calculation_method = calculation_method::LEGACY;
            }
            if inv.calculation_method_description.is_empty() {
                inv.calculation_method_description =
                    calculation_method::description(inv.calculation_method).into();
            }
            if inv.status == 0 {
                inv.status = invoice_status::OPEN;
            }
            if inv.status_description.is_empty() {
                inv.status_description = invoice_status::description(inv.status).into();
            }
        }),
        "invoice_items" => import_as::<InvoiceItem>(state, record),
        "products" => import_as::<Product>(state, record),
        "stock_adjustments" => import_as::<StockAdjustment>(state, record),
        "billable_items" => import_as::<BillableItem>(state, record),
        "taxes" => import_as::<Tax>(state, record),
        "businesses" => import_as::<Business>(state, record),
        "practitioners" => import_as::<Practitioner>(state, record),
        "appointment_types" => import_as::<AppointmentType>(state, record),
        "individual_appointments" => import_with::<IndividualAppointment>(state, record, |a| {
            // The legacy example sends "" for "no reason"; the schema's enum wants a name or null.
            a.cancellation_reason_description = a
                .cancellation_reason
                .and_then(cancellation_reason_description)
                .map(str::to_string);
        }),
        "appointment_type_billable_items" => {
            import_as::<AppointmentTypeBillableItem>(state, record)
        }
        "contacts" => import_as::<Contact>(state, record),
        other => Err(format!("unknown resource {other:?}")),
    }
}

/// The OpenAPI enum of `cancellation_reason_description` for each `cancellation_reason` code.
pub fn cancellation_reason_description(code: i32) -> Option<&'static str> {
    Some(match code {
        10 => "Feeling Better",
        20 => "Condition Worse",
        30 => "Sick",
        31 => "COVID-19 related",
        40 => "Away",
        50 => "Other",
        60 => "Work",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_suffix_is_recognised() {
        assert_eq!(strip_shard("abc-au2"), "abc");
        assert_eq!(strip_shard("abc-uk1"), "abc");
        assert_eq!(strip_shard("abc"), "abc");
        assert_eq!(strip_shard("a-b-c-notashard"), "a-b-c-notashard");
    }

    #[test]
    fn user_agent_needs_name_and_email() {
        assert!(has_contact_email("Cliniko Reckon Sync (ops@example.com)"));
        assert!(!has_contact_email("curl/8.0"));
        assert!(!has_contact_email("(ops@example.com)"));
        assert!(!has_contact_email("App (not an email)"));
    }
}
