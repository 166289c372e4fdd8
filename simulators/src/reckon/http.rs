//! The Reckon One HTTP surface: the identity server (`/connect/*`), the API under `/r1/v2`
//! behind the APIM gateway rules (subscription key, rate limit) and bearer tokens, list
//! paging/filtering, and `/__admin` test controls. Paths match case-insensitively.

use super::book::{Book, BookError, Ctx, money};
use super::oauth::{OAuthConfig, OAuthError, OAuthState, TokenPair};
use super::query::{Filter, OrderBy, apply_select, parse_select};
use super::tax::Rounding;
use crate::common::admin::{self, Controls};
use crate::common::{
    FaultHandle, Outcome, RunningServer, SimClock, TokenBucket, TrafficLog, traffic,
};
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use base64::Engine;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tower::ServiceExt;
use uuid::Uuid;

/// How a Reckon simulator behaves.
#[derive(Clone, Debug)]
pub struct ReckonConfig {
    pub oauth: OAuthConfig,
    /// Accepted `Ocp-Apim-Subscription-Key` values.
    pub subscription_keys: Vec<String>,
    pub book_name: String,
    /// APIM rate limit per subscription key (token bucket); 0 disables it.
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
    /// Largest `perpage` honoured (Reckon's maximum is undocumented).
    pub max_per_page: usize,
    pub rounding: Rounding,
    pub seed: u64,
    pub capture_traffic: bool,
}

pub const DEFAULT_SUBSCRIPTION_KEY: &str = "sim-subscription-key-0123456789abcdef";

impl Default for ReckonConfig {
    fn default() -> Self {
        ReckonConfig {
            oauth: OAuthConfig::default(),
            subscription_keys: vec![DEFAULT_SUBSCRIPTION_KEY.into()],
            book_name: "Harbourside Physiotherapy".into(),
            rate_limit_per_minute: 60,
            rate_limit_burst: 60,
            max_per_page: 100,
            rounding: Rounding::default(),
            seed: 1,
            capture_traffic: false,
        }
    }
}

/// Everything the simulator knows: books and the identity server's grants.
#[derive(Debug)]
pub struct ReckonState {
    pub books: IndexMap<Uuid, Book>,
    pub oauth: OAuthState,
}

#[derive(Clone)]
pub struct ReckonSim {
    state: Arc<Mutex<ReckonState>>,
    pub faults: FaultHandle,
    pub traffic: TrafficLog,
    pub rate_limit: TokenBucket,
    pub clock: SimClock,
    config: Arc<ReckonConfig>,
    book_id: Uuid,
}

impl ReckonSim {
    pub fn new(config: ReckonConfig) -> Self {
        let clock = SimClock::new();
        let book_id = Uuid::new_v4();
        let mut book = Book::new(book_id, &config.book_name, clock.now());
        book.rounding = config.rounding;
        let mut books = IndexMap::new();
        books.insert(book_id, book);
        ReckonSim {
            state: Arc::new(Mutex::new(ReckonState {
                books,
                oauth: OAuthState::default(),
            })),
            faults: FaultHandle::new(config.seed),
            traffic: TrafficLog::new(config.capture_traffic),
            rate_limit: TokenBucket::new(config.rate_limit_per_minute, config.rate_limit_burst),
            clock,
            config: Arc::new(config),
            book_id,
        }
    }

    pub fn config(&self) -> &ReckonConfig {
        &self.config
    }

    /// The id of the book created at start-up.
    pub fn book_id(&self) -> Uuid {
        self.book_id
    }

    pub fn state(&self) -> MutexGuard<'_, ReckonState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the default book (for seeding and inspecting from tests).
    pub fn with_book<T>(&self, f: impl FnOnce(&mut Book, &Ctx) -> T) -> T {
        let ctx = Ctx {
            now: self.clock.now_seconds(),
        };
        let mut state = self.state();
        let book = state
            .books
            .get_mut(&self.book_id)
            .expect("the default book always exists");
        f(book, &ctx)
    }

    /// A valid token pair, as if a user had completed the connect flow.
    pub fn issue_tokens(&self) -> TokenPair {
        let now = self.clock.now();
        self.state().oauth.issue_for_test(&self.config.oauth, now)
    }

    /// Makes every access token expire now, so the next call needs a refresh.
    pub fn expire_access_tokens(&self) {
        let now = self.clock.now();
        self.state().oauth.expire_access_tokens(now);
    }

    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/r1/v2/heartbeat", get(heartbeat))
            .route("/r1/v2/books", get(list_books))
            .route("/r1/v2/books/{book}", get(get_book))
            .route(
                "/r1/v2/{book}/customers",
                get(list_customers).post(create_customer),
            )
            .route(
                "/r1/v2/{book}/customers/{id}",
                get(get_customer)
                    .put(put_customer)
                    .patch(patch_customer)
                    .delete(delete_customer),
            )
            .route(
                "/r1/v2/{book}/customers/{id}/{part}",
                get(list_customer_parts).post(post_customer_part),
            )
            .route(
                "/r1/v2/{book}/customers/{id}/{part}/{kind}",
                get(get_customer_part)
                    .put(put_customer_part)
                    .patch(patch_customer_part)
                    .delete(delete_customer_part),
            )
            .route("/r1/v2/{book}/items", get(list_items).post(create_item))
            .route(
                "/r1/v2/{book}/items/{id}",
                get(get_item)
                    .put(put_item)
                    .patch(patch_item)
                    .delete(delete_item),
            )
            .route(
                "/r1/v2/{book}/invoices",
                get(list_invoices).post(create_invoice),
            )
            .route(
                "/r1/v2/{book}/invoices/{id}",
                get(get_invoice)
                    .put(put_invoice)
                    .patch(patch_invoice)
                    .delete(delete_invoice),
            )
            .route("/r1/v2/{book}/invoices/{id}/lineitems", post(post_line))
            .route(
                "/r1/v2/{book}/invoices/{id}/lineitems/{line}",
                get(get_line)
                    .put(put_line)
                    .patch(patch_line)
                    .delete(delete_line),
            )
            .route(
                "/r1/v2/{book}/receipts",
                get(list_receipts).post(create_receipt),
            )
            .route(
                "/r1/v2/{book}/receipts/{id}",
                get(get_receipt)
                    .put(put_receipt)
                    .patch(patch_receipt)
                    .delete(delete_receipt),
            )
            .route(
                "/r1/v2/{book}/creditnotes",
                get(list_credit_notes).post(create_credit_note),
            )
            .route(
                "/r1/v2/{book}/creditnotes/{id}",
                get(get_credit_note)
                    .put(put_credit_note)
                    .patch(patch_credit_note)
                    .delete(delete_credit_note),
            )
            .route(
                "/r1/v2/{book}/creditnotes/{id}/transactionlinks",
                post(post_credit_link),
            )
            .route(
                "/r1/v2/{book}/creditnotes/{id}/transactionlinks/{link}",
                patch(patch_credit_link).delete(delete_credit_link),
            )
            .route("/r1/v2/{book}/taxrates/{date}", get(list_tax_rates))
            .route("/r1/v2/{book}/taxrates/{id}/{date}", get(get_tax_rate))
            .route("/r1/v2/{book}/terms", get(list_terms).post(create_term))
            .route("/r1/v2/{book}/terms/{id}", get(get_term))
            .route(
                "/r1/v2/{book}/ledgeraccounts",
                get(list_ledger_accounts).post(create_ledger_account),
            )
            .route("/r1/v2/{book}/ledgeraccounts/{id}", get(get_ledger_account))
            .route("/r1/v2/{book}/addresstypes", get(address_types))
            .route("/r1/v2/{book}/paymentmethods", get(payment_methods))
            .route("/r1/v2/{book}/phonetypes", get(phone_types))
            .route(
                "/r1/v2/{book}/electronicaddresstypes",
                get(electronic_types),
            )
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(self.clone(), gateway))
            .with_state(self.clone());
        let identity = Router::new()
            .route("/connect/authorize", get(authorize))
            .route("/connect/token", post(token))
            .route("/connect/revocation", post(revoke))
            .route("/.well-known/openid-configuration", get(discovery))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                identity_faults,
            ))
            .with_state(self.clone());
        let admin = Router::new()
            .route("/__admin/state", get(admin_state))
            .route("/__admin/tokens", post(admin_tokens))
            .route("/__admin/tokens/expire", post(admin_expire_tokens))
            .with_state(self.clone())
            .merge(admin::routes(Controls {
                faults: self.faults.clone(),
                traffic: self.traffic.clone(),
                clock: self.clock.clone(),
            }));
        let inner = api
            .merge(identity)
            .merge(admin)
            .layer(middleware::from_fn_with_state(
                self.traffic.clone(),
                traffic::record,
            ));
        // ASP.NET routes case-insensitively: lower-case the path before routing.
        Router::new().fallback_service(tower::service_fn(move |mut request: Request| {
            let inner = inner.clone();
            async move {
                let uri = request.uri();
                let lowered = uri.path().to_ascii_lowercase();
                if lowered != uri.path() {
                    let rebuilt = match uri.query() {
                        Some(q) => format!("{lowered}?{q}"),
                        None => lowered,
                    };
                    if let Ok(new_uri) = rebuilt.parse() {
                        *request.uri_mut() = new_uri;
                    }
                }
                inner.oneshot(request).await
            }
        }))
    }

    /// Serves on `host:port` (0 = free port). API base `origin()/r1/v2`, identity `origin()`.
    pub async fn start(&self, host: &str, port: u16) -> std::io::Result<RunningServer> {
        RunningServer::start(self.router(), host, port).await
    }
}

// ---- responses ---------------------------------------------------------------------

fn reckon_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "message": message, "code": status.as_u16() })),
    )
        .into_response()
}

fn not_found_response() -> Response {
    reckon_error(StatusCode::NOT_FOUND, "Resource not found.")
}

async fn not_found() -> Response {
    not_found_response()
}

fn book_error(e: BookError) -> Response {
    match e {
        BookError::NotFound => not_found_response(),
        BookError::Invalid(errors) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "message": "The request is invalid.", "code": 400, "errors": errors })),
        )
            .into_response(),
    }
}

fn apim(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "statusCode": status.as_u16(), "message": message })),
    )
        .into_response()
}

fn created(id: Uuid, name: Option<&str>) -> Response {
    let body = match name {
        Some(n) => json!({ "id": id.to_string(), "name": n }),
        None => json!({ "id": id.to_string() }),
    };
    (StatusCode::CREATED, Json(body)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

// ---- gateway: faults, subscription key, rate limit, bearer token -------------------------

fn fault_response(outcome: &Outcome) -> Option<Response> {
    match outcome {
        Outcome::Pass(_) => None,
        Outcome::Outage => Some(reckon_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable.",
        )),
        Outcome::Error(status, _) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(reckon_error(status, "An error has occurred."))
        }
        Outcome::RateLimited(_) => Some(rate_limited(1)),
        Outcome::Hang(_) => Some(reckon_error(
            StatusCode::GATEWAY_TIMEOUT,
            "The gateway timed out.",
        )),
        Outcome::Drop(_) => Some(
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(traffic::broken_body())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        ),
    }
}

/// Decided before any await: a request body is not `Sync`, so no reference may cross a sleep.
fn decide(sim: &ReckonSim, request: &Request) -> Outcome {
    sim.faults
        .decide(request.method().as_str(), request.uri().path())
}

async fn delay_then_fault(outcome: Outcome) -> Option<Response> {
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
    fault_response(&outcome)
}

fn rate_limited(seconds: u64) -> Response {
    let mut response = apim(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("Rate limit is exceeded. Try again in {seconds} seconds."),
    );
    if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn subscription_key(request: &Request) -> Option<String> {
    if let Some(v) = request
        .headers()
        .get("Ocp-Apim-Subscription-Key")
        .and_then(|v| v.to_str().ok())
    {
        return Some(v.to_string());
    }
    let query = request.uri().query()?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("subscription-key"))
        .map(|(_, v)| v)
}

async fn gateway(State(sim): State<ReckonSim>, request: Request, next: Next) -> Response {
    let outcome = decide(&sim, &request);
    if let Some(r) = delay_then_fault(outcome).await {
        return r;
    }
    let Some(key) = subscription_key(&request) else {
        return apim(
            StatusCode::UNAUTHORIZED,
            "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.",
        );
    };
    if !sim.config.subscription_keys.contains(&key) {
        return apim(
            StatusCode::UNAUTHORIZED,
            "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.",
        );
    }
    if let Err(wait) = sim.rate_limit.check(&key, sim.clock.now()) {
        return rate_limited(wait);
    }
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let now = sim.clock.now();
    if !bearer.is_some_and(|t| sim.state().oauth.access_valid(t, now)) {
        return reckon_error(
            StatusCode::UNAUTHORIZED,
            "Authorization has been denied for this request.",
        );
    }
    next.run(request).await
}

async fn identity_faults(State(sim): State<ReckonSim>, request: Request, next: Next) -> Response {
    let outcome = decide(&sim, &request);
    if let Some(r) = delay_then_fault(outcome).await {
        return r;
    }
    next.run(request).await
}

// ---- identity server -------------------------------------------------------------------

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
}

async fn authorize(State(sim): State<ReckonSim>, Query(q): Query<AuthorizeQuery>) -> Response {
    let (Some(client_id), Some(redirect_uri)) = (q.client_id, q.redirect_uri) else {
        return (
            StatusCode::BAD_REQUEST,
            "client_id and redirect_uri are required",
        )
            .into_response();
    };
    if q.response_type.as_deref() != Some("code") {
        return (StatusCode::BAD_REQUEST, "unsupported response_type").into_response();
    }
    let now = sim.clock.now();
    let scope = q
        .scope
        .unwrap_or_else(|| "openid read write offline_access".into());
    let code =
        sim.state()
            .oauth
            .authorize(&sim.config.oauth, &client_id, &redirect_uri, &scope, now);
    match code {
        // The simulator's user approves at once.
        Ok(code) => {
            let mut pairs = vec![("code", code), ("scope", scope)];
            if let Some(state) = q.state {
                pairs.push(("state", state));
            }
            let sep = if redirect_uri.contains('?') { '&' } else { '?' };
            let location = format!(
                "{redirect_uri}{sep}{}",
                serde_urlencoded::to_string(&pairs).unwrap_or_default()
            );
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("invalid authorize request: {}", e.code()),
        )
            .into_response(),
    }
}

fn oauth_error(e: OAuthError) -> Response {
    let status = if e == OAuthError::InvalidClient {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, Json(json!({ "error": e.code() }))).into_response()
}

fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        // OAuth 2 says Basic credentials are form-urlencoded first.
        let id = form_decode(id);
        let secret = form_decode(secret);
        return Some((id, secret));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

fn form_decode(s: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("x={s}"))
        .ok()
        .and_then(|v| v.into_iter().next().map(|(_, v)| v))
        .unwrap_or_else(|| s.to_string())
}

fn token_response(pair: TokenPair) -> Response {
    let mut response = Json(json!({
        "access_token": pair.access_token,
        "expires_in": pair.expires_in,
        "token_type": "Bearer",
        "refresh_token": pair.refresh_token,
        "scope": pair.scope,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn token(State(sim): State<ReckonSim>, headers: HeaderMap, body: Bytes) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return oauth_error(OAuthError::InvalidRequest);
    }
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let Some((id, secret)) = client_credentials(&headers, &form) else {
        return oauth_error(OAuthError::InvalidClient);
    };
    let config = &sim.config.oauth;
    if id != config.client_id || secret != config.client_secret {
        return oauth_error(OAuthError::InvalidClient);
    }
    let now = sim.clock.now();
    let result = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => match form.get("code") {
            Some(code) => sim.state().oauth.exchange_code(
                config,
                code,
                form.get("redirect_uri").map(String::as_str),
                now,
            ),
            None => Err(OAuthError::InvalidRequest),
        },
        Some("refresh_token") => match form.get("refresh_token") {
            Some(rt) => sim.state().oauth.refresh(config, rt, now),
            None => Err(OAuthError::InvalidRequest),
        },
        _ => Err(OAuthError::UnsupportedGrantType),
    };
    match result {
        Ok(pair) => token_response(pair),
        Err(e) => oauth_error(e),
    }
}

async fn revoke(State(sim): State<ReckonSim>, headers: HeaderMap, body: Bytes) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let config = &sim.config.oauth;
    match client_credentials(&headers, &form) {
        Some((id, secret)) if id == config.client_id && secret == config.client_secret => {}
        _ => return oauth_error(OAuthError::InvalidClient),
    }
    if let Some(t) = form.get("token") {
        sim.state().oauth.revoke(t);
    }
    StatusCode::OK.into_response()
}

async fn discovery(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}");
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/connect/authorize"),
        "token_endpoint": format!("{base}/connect/token"),
        "revocation_endpoint": format!("{base}/connect/revocation"),
        "scopes_supported": ["openid", "read", "write", "offline_access"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
    .into_response()
}

// ---- list plumbing ---------------------------------------------------------------------

/// Reads `page`, `perpage`, `filter`, `orderby` and `select` (names case-insensitive) and
/// answers a paged `{ "list": [...] }` with `X-Total-Count` and an RFC 5988 `Link`.
fn list_response<T>(
    sim: &ReckonSim,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    rows: &[T],
    render: impl Fn(&T) -> Value,
    paged: bool,
) -> Response {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let bad = |m: String| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "The request is invalid.", "code": 400, "errors": [{"location": "query", "message": m}]})),
        )
            .into_response()
    };
    let filter = match param("filter")
        .filter(|f| !f.trim().is_empty())
        .map(Filter::parse)
    {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => return bad(format!("filter: {}", e.message)),
        None => None,
    };
    let order = match param("orderby")
        .filter(|f| !f.trim().is_empty())
        .map(OrderBy::parse)
    {
        Some(Ok(o)) => Some(o),
        Some(Err(e)) => return bad(format!("orderby: {}", e.message)),
        None => None,
    };
    let select = match param("select")
        .filter(|f| !f.trim().is_empty())
        .map(parse_select)
    {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => return bad(format!("select: {}", e.message)),
        None => None,
    };
    let page: usize = match param("page").map(str::parse) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        _ => return bad("page must be a whole number from 1".into()),
    };
    let per_page: usize = match param("perpage").map(str::parse::<usize>) {
        None | Some(Ok(0)) => 10,
        Some(Ok(n)) => n.min(sim.config.max_per_page),
        Some(Err(_)) => return bad("perPage must be a whole number".into()),
    };
    // Without filter or order, render only the requested page.
    let (total, window): (usize, Vec<Value>) = if filter.is_none() && order.is_none() {
        let start = if paged {
            (page - 1).saturating_mul(per_page)
        } else {
            0
        };
        let take = if paged { per_page } else { usize::MAX };
        (
            rows.len(),
            rows.iter().skip(start).take(take).map(&render).collect(),
        )
    } else {
        let mut all: Vec<Value> = rows
            .iter()
            .map(&render)
            .filter(|v| filter.as_ref().is_none_or(|f| f.matches(v)))
            .collect();
        if let Some(o) = &order {
            all.sort_by(|a, b| o.compare(a, b));
        }
        let total = all.len();
        let window = if paged {
            all.into_iter()
                .skip((page - 1).saturating_mul(per_page))
                .take(per_page)
                .collect()
        } else {
            all
        };
        (total, window)
    };
    let window: Vec<Value> = match &select {
        Some(paths) => window.iter().map(|v| apply_select(v, paths)).collect(),
        None => window,
    };
    let mut response = Json(json!({ "list": window })).into_response();
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        response.headers_mut().insert("X-Total-Count", v);
    }
    if paged {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let kept: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("page") && !k.eq_ignore_ascii_case("perpage"))
            .cloned()
            .collect();
        let link = |p: usize, rel: &str| {
            let mut q = kept.clone();
            q.push(("page".into(), p.to_string()));
            q.push(("perPage".into(), per_page.to_string()));
            format!(
                "<http://{host}{}?{}>; rel=\"{rel}\"",
                uri.path(),
                serde_urlencoded::to_string(&q).unwrap_or_default()
            )
        };
        let last = total.div_ceil(per_page).max(1);
        let mut links = vec![link(1, "first")];
        if page > 1 {
            links.push(link(page - 1, "prev"));
        }
        if page < last {
            links.push(link(page + 1, "next"));
        }
        links.push(link(last, "last"));
        if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    response
}

fn one(uri: &axum::http::Uri, view: Option<Value>) -> Response {
    let Some(view) = view else {
        return not_found_response();
    };
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default();
    match pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("select"))
        .map(|(_, v)| parse_select(v))
    {
        Some(Ok(paths)) => Json(apply_select(&view, &paths)).into_response(),
        Some(Err(e)) => reckon_error(StatusCode::BAD_REQUEST, &format!("select: {}", e.message)),
        None => Json(view).into_response(),
    }
}

/// Runs `f` against the book named in the path (404 when it does not exist).
#[allow(clippy::result_large_err)] // handlers return the ready error response
fn on_book<T>(
    sim: &ReckonSim,
    book: &str,
    f: impl FnOnce(&mut Book, &Ctx) -> T,
) -> Result<T, Response> {
    let id = Uuid::parse_str(book).map_err(|_| not_found_response())?;
    let ctx = Ctx {
        now: sim.clock.now_seconds(),
    };
    let mut state = sim.state();
    let book = state.books.get_mut(&id).ok_or_else(not_found_response)?;
    Ok(f(book, &ctx))
}

#[allow(clippy::result_large_err)]
fn parse_uuid(s: &str) -> Result<Uuid, Response> {
    Uuid::parse_str(s).map_err(|_| not_found_response())
}

/// POST/PUT bodies must be JSON; PATCH bodies must be `application/merge-patch+json`.
#[allow(clippy::result_large_err)]
fn body_json(headers: &HeaderMap, body: &Bytes, merge_patch: bool) -> Result<Value, Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if merge_patch && media != "application/merge-patch+json" {
        let shown = if media.is_empty() {
            "application/json".to_string()
        } else {
            media
        };
        return Err(reckon_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!(
                "{shown} is not supported. Please use content-type application/merge-patch+json."
            ),
        ));
    }
    if !merge_patch
        && media != "application/json"
        && media != "text/json"
        && !media.ends_with("+json")
    {
        let shown = if media.is_empty() {
            "(none)".to_string()
        } else {
            media
        };
        return Err(reckon_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("{shown} is not supported."),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "The request is invalid.", "code": 400,
                        "errors": [{"location": "", "message": format!("The body is not valid JSON: {e}")}]})),
        )
            .into_response()
    })
}

macro_rules! try_resp {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

fn done(result: Result<(), BookError>) -> Response {
    match result {
        Ok(()) => no_content(),
        Err(e) => book_error(e),
    }
}

// ---- books and heartbeat ---------------------------------------------------------------

async fn heartbeat() -> Response {
    Json(json!({"status": "OK", "version": "1.0.5473.0", "description": "R1 Public API Version 2"}))
        .into_response()
}

fn book_view(b: &Book) -> Value {
    json!({"id": b.id.to_string(), "name": b.name, "status": "Active", "ownership": "Owned", "country": b.country,
           "bookCreated": true, "ownedAsPartner": false, "hasRoleAssigned": true, "isTrial": false,
           "products": [{"id": "7445ce22-d894-4fe4-88ee-ed96862939ca", "name": "InvoicingMedium", "portalProductId": "CICL0UD1M"}]})
}

async fn list_books(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let books: Vec<Value> = sim.state().books.values().map(book_view).collect();
    list_response(&sim, &headers, &uri, &books, Clone::clone, false)
}

async fn get_book(
    State(sim): State<ReckonSim>,
    OriginalUri(uri): OriginalUri,
    Path(book): Path<String>,
) -> Response {
    let view = Uuid::parse_str(&book)
        .ok()
        .and_then(|id| sim.state().books.get(&id).map(book_view));
    one(&uri, view)
}

// ---- customers ---------------------------------------------------------------------------

async fn list_customers(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(book): Path<String>,
) -> Response {
    try_resp!(on_book(&sim, &book, |b, _| {
        let rows: Vec<_> = b.customers.values().collect();
        list_response(&sim, &headers, &uri, &rows, |c| b.customer_view(c), true)
    }))
}

async fn create_customer(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path(book): Path<String>,
    body: Bytes,
) -> Response {
    let body = try_resp!(body_json(&headers, &body, false));
    match try_resp!(on_book(&sim, &book, |b, ctx| b.create_customer(&body, ctx))) {
        Ok(c) => created(c.id, Some(&c.name)),
        Err(e) => book_error(e),
    }
}

async fn get_customer(
    State(sim): State<ReckonSim>,
    OriginalUri(uri): OriginalUri,
    Path((book, id)): Path<(String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let view = try_resp!(on_book(&sim, &book, |b, _| b
        .customers
        .get(&id)
        .map(|c| b.customer_view(c))));
    one(&uri, view)
}

async fn put_customer(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, false));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.replace_customer(id, &body, ctx))
    ))
}

async fn patch_customer(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, true));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.patch_customer(id, &body, ctx))
    ))
}

async fn delete_customer(
    State(sim): State<ReckonSim>,
    Path((book, id)): Path<(String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    done(try_resp!(on_book(&sim, &book, |b, _| b.delete_customer(id))))
}

const PARTS: &[&str] = &["addresses", "phonenumbers", "electronicaddresses"];

fn part_views(b: &Book, id: Uuid, part: &str) -> Option<Vec<Value>> {
    let c = b.customers.get(&id)?;
    let view = b.customer_view(c);
    let key = match part {
        "addresses" => "addresses",
        "phonenumbers" => "phoneNumbers",
        _ => "electronicAddresses",
    };
    view.get(key).and_then(Value::as_array).cloned()
}

async fn list_customer_parts(
    State(sim): State<ReckonSim>,
    Path((book, id, part)): Path<(String, String, String)>,
) -> Response {
    if !PARTS.contains(&part.as_str()) {
        return not_found_response();
    }
    let id = try_resp!(parse_uuid(&id));
    match try_resp!(on_book(&sim, &book, |b, _| part_views(b, id, &part))) {
        Some(list) => Json(json!({ "list": list })).into_response(),
        None => not_found_response(),
    }
}

async fn get_customer_part(
    State(sim): State<ReckonSim>,
    Path((book, id, part, kind)): Path<(String, String, String, String)>,
) -> Response {
    if !PARTS.contains(&part.as_str()) {
        return not_found_response();
    }
    let id = try_resp!(parse_uuid(&id));
    let found = try_resp!(on_book(&sim, &book, |b, _| part_views(b, id, &part))).and_then(|list| {
        list.into_iter().find(|v| {
            v.pointer("/type/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(&kind))
        })
    });
    match found {
        Some(v) => Json(v).into_response(),
        None => not_found_response(),
    }
}

async fn post_customer_part(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id, part)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    if !PARTS.contains(&part.as_str()) {
        return not_found_response();
    }
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, false));
    let kind = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let result = try_resp!(on_book(&sim, &book, |b, ctx| {
        b.upsert_customer_part(id, &part, None, &body, false, ctx)?;
        Ok::<_, BookError>(part_views(b, id, &part).and_then(|l| {
            l.into_iter().find(|v| {
                v.pointer("/type/name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(&kind))
            })
        }))
    }));
    match result {
        Ok(Some(v)) => (
            StatusCode::CREATED,
            Json(json!({"id": v.get("id"), "type": v.get("type")})),
        )
            .into_response(),
        Ok(None) => not_found_response(),
        Err(e) => book_error(e),
    }
}

async fn put_customer_part(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id, part, kind)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    customer_part_write(sim, headers, book, id, part, kind, body, false).await
}

async fn patch_customer_part(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id, part, kind)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    customer_part_write(sim, headers, book, id, part, kind, body, true).await
}

#[allow(clippy::too_many_arguments)]
async fn customer_part_write(
    sim: ReckonSim,
    headers: HeaderMap,
    book: String,
    id: String,
    part: String,
    kind: String,
    body: Bytes,
    merge: bool,
) -> Response {
    if !PARTS.contains(&part.as_str()) {
        return not_found_response();
    }
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, merge));
    done(try_resp!(on_book(&sim, &book, |b, ctx| b
        .upsert_customer_part(
            id,
            &part,
            Some(&kind),
            &body,
            merge,
            ctx
        ))))
}

async fn delete_customer_part(
    State(sim): State<ReckonSim>,
    Path((book, id, part, kind)): Path<(String, String, String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    done(try_resp!(on_book(&sim, &book, |b, ctx| b
        .delete_customer_part(id, &part, &kind, ctx))))
}

// ---- items -------------------------------------------------------------------------------

async fn list_items(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(book): Path<String>,
) -> Response {
    try_resp!(on_book(&sim, &book, |b, _| {
        let rows: Vec<_> = b.items.values().collect();
        list_response(&sim, &headers, &uri, &rows, |i| b.item_view(i), true)
    }))
}

async fn create_item(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path(book): Path<String>,
    body: Bytes,
) -> Response {
    let body = try_resp!(body_json(&headers, &body, false));
    match try_resp!(on_book(&sim, &book, |b, ctx| b.create_item(&body, ctx))) {
        Ok(i) => created(i.id, None),
        Err(e) => book_error(e),
    }
}

async fn get_item(
    State(sim): State<ReckonSim>,
    OriginalUri(uri): OriginalUri,
    Path((book, id)): Path<(String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let view = try_resp!(on_book(&sim, &book, |b, _| b
        .items
        .get(&id)
        .map(|i| b.item_view(i))));
    one(&uri, view)
}

async fn put_item(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, false));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.replace_item(id, &body, ctx))
    ))
}

async fn patch_item(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, true));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.patch_item(id, &body, ctx))
    ))
}

async fn delete_item(
    State(sim): State<ReckonSim>,
    Path((book, id)): Path<(String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    done(try_resp!(on_book(&sim, &book, |b, _| b.delete_item(id))))
}

// ---- invoices ----------------------------------------------------------------------------

async fn list_invoices(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(book): Path<String>,
) -> Response {
    try_resp!(on_book(&sim, &book, |b, _| {
        let rows: Vec<_> = b.invoices.values().collect();
        list_response(&sim, &headers, &uri, &rows, |i| b.invoice_view(i), true)
    }))
}

async fn create_invoice(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path(book): Path<String>,
    body: Bytes,
) -> Response {
    let body = try_resp!(body_json(&headers, &body, false));
    match try_resp!(on_book(&sim, &book, |b, ctx| b.create_invoice(&body, ctx))) {
        Ok(i) => created(i.id, None),
        Err(e) => book_error(e),
    }
}

async fn get_invoice(
    State(sim): State<ReckonSim>,
    OriginalUri(uri): OriginalUri,
    Path((book, id)): Path<(String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let view = try_resp!(on_book(&sim, &book, |b, _| b
        .invoices
        .get(&id)
        .map(|i| b.invoice_view(i))));
    one(&uri, view)
}

async fn put_invoice(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, false));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.replace_invoice(id, &body, ctx))
    ))
}

async fn patch_invoice(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, true));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.patch_invoice(id, &body, ctx))
    ))
}

async fn delete_invoice(
    State(sim): State<ReckonSim>,
    Path((book, id)): Path<(String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    done(try_resp!(on_book(&sim, &book, |b, _| b.delete_invoice(id))))
}

async fn post_line(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, false));
    match try_resp!(on_book(&sim, &book, |b, ctx| b
        .write_line(id, None, &body, false, ctx)))
    {
        Ok(line) => created(line, None),
        Err(e) => book_error(e),
    }
}

async fn get_line(
    State(sim): State<ReckonSim>,
    Path((book, id, line)): Path<(String, String, String)>,
) -> Response {
    let (id, line) = (try_resp!(parse_uuid(&id)), try_resp!(parse_uuid(&line)));
    let found = try_resp!(on_book(&sim, &book, |b, _| {
        b.invoices
            .get(&id)
            .map(|i| b.invoice_view(i))
            .and_then(|v| {
                v.get("lineItems")?
                    .as_array()?
                    .iter()
                    .find(|l| l.get("lineId").and_then(Value::as_str) == Some(&line.to_string()))
                    .cloned()
            })
    }));
    match found {
        Some(v) => Json(v).into_response(),
        None => not_found_response(),
    }
}

async fn put_line(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id, line)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    line_write(sim, headers, book, id, line, body, false).await
}

async fn patch_line(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id, line)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    line_write(sim, headers, book, id, line, body, true).await
}

async fn line_write(
    sim: ReckonSim,
    headers: HeaderMap,
    book: String,
    id: String,
    line: String,
    body: Bytes,
    merge: bool,
) -> Response {
    let (id, line) = (try_resp!(parse_uuid(&id)), try_resp!(parse_uuid(&line)));
    let body = try_resp!(body_json(&headers, &body, merge));
    match try_resp!(on_book(&sim, &book, |b, ctx| b.write_line(
        id,
        Some(line),
        &body,
        merge,
        ctx
    ))) {
        Ok(_) => no_content(),
        Err(e) => book_error(e),
    }
}

async fn delete_line(
    State(sim): State<ReckonSim>,
    Path((book, id, line)): Path<(String, String, String)>,
) -> Response {
    let (id, line) = (try_resp!(parse_uuid(&id)), try_resp!(parse_uuid(&line)));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.delete_line(id, line, ctx))
    ))
}

// ---- receipts ----------------------------------------------------------------------------

async fn list_receipts(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(book): Path<String>,
) -> Response {
    try_resp!(on_book(&sim, &book, |b, _| {
        let rows: Vec<_> = b.receipts.values().collect();
        list_response(&sim, &headers, &uri, &rows, |r| b.receipt_view(r), true)
    }))
}

async fn create_receipt(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path(book): Path<String>,
    body: Bytes,
) -> Response {
    let body = try_resp!(body_json(&headers, &body, false));
    match try_resp!(on_book(&sim, &book, |b, ctx| b.create_receipt(&body, ctx))) {
        Ok(r) => created(r.id, None),
        Err(e) => book_error(e),
    }
}

async fn get_receipt(
    State(sim): State<ReckonSim>,
    OriginalUri(uri): OriginalUri,
    Path((book, id)): Path<(String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let view = try_resp!(on_book(&sim, &book, |b, _| b
        .receipts
        .get(&id)
        .map(|r| b.receipt_view(r))));
    one(&uri, view)
}

async fn put_receipt(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, false));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.replace_receipt(id, &body, ctx))
    ))
}

async fn patch_receipt(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, true));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.patch_receipt(id, &body, ctx))
    ))
}

async fn delete_receipt(
    State(sim): State<ReckonSim>,
    Path((book, id)): Path<(String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.delete_receipt(id, ctx))
    ))
}

// ---- credit notes ------------------------------------------------------------------------

async fn list_credit_notes(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(book): Path<String>,
) -> Response {
    try_resp!(on_book(&sim, &book, |b, _| {
        let rows: Vec<_> = b.credit_notes.values().collect();
        list_response(&sim, &headers, &uri, &rows, |c| b.credit_note_view(c), true)
    }))
}

async fn create_credit_note(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path(book): Path<String>,
    body: Bytes,
) -> Response {
    let body = try_resp!(body_json(&headers, &body, false));
    match try_resp!(on_book(&sim, &book, |b, ctx| b.create_credit_note(&body, ctx))) {
        Ok(c) => created(c.id, None),
        Err(e) => book_error(e),
    }
}

async fn get_credit_note(
    State(sim): State<ReckonSim>,
    OriginalUri(uri): OriginalUri,
    Path((book, id)): Path<(String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let view = try_resp!(on_book(&sim, &book, |b, _| b
        .credit_notes
        .get(&id)
        .map(|c| b.credit_note_view(c))));
    one(&uri, view)
}

async fn put_credit_note(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, false));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.replace_credit_note(id, &body, ctx))
    ))
}

async fn patch_credit_note(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, true));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.patch_credit_note(id, &body, ctx))
    ))
}

async fn delete_credit_note(
    State(sim): State<ReckonSim>,
    Path((book, id)): Path<(String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    done(try_resp!(
        on_book(&sim, &book, |b, _| b.delete_credit_note(id))
    ))
}

/// 201 `{"id": "INV-<invoice id>"}` (a StringIdResponse: link ids are not GUIDs).
async fn post_credit_link(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, false));
    match try_resp!(on_book(&sim, &book, |b, ctx| b.link_credit_note(id, &body, ctx))) {
        Ok(link) => (StatusCode::CREATED, Json(json!({ "id": link }))).into_response(),
        Err(e) => book_error(e),
    }
}

async fn patch_credit_link(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path((book, id, link)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let body = try_resp!(body_json(&headers, &body, true));
    done(try_resp!(on_book(&sim, &book, |b, ctx| b
        .patch_credit_link(id, &link, &body, ctx))))
}

async fn delete_credit_link(
    State(sim): State<ReckonSim>,
    Path((book, id, link)): Path<(String, String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    done(try_resp!(
        on_book(&sim, &book, |b, ctx| b.unlink_credit_note(id, &link, ctx))
    ))
}

// ---- reference data ----------------------------------------------------------------------

async fn list_tax_rates(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path((book, date)): Path<(String, String)>,
) -> Response {
    if super::input::parse_date(&date).is_none() {
        return reckon_error(
            StatusCode::BAD_REQUEST,
            "The effective date is not a valid date.",
        );
    }
    try_resp!(on_book(&sim, &book, |b, _| {
        let rows: Vec<_> = b.tax_rates.values().collect();
        list_response(
            &sim,
            &headers,
            &uri,
            &rows,
            |t| Book::tax_rate_view(t),
            true,
        )
    }))
}

async fn get_tax_rate(
    State(sim): State<ReckonSim>,
    OriginalUri(uri): OriginalUri,
    Path((book, id, date)): Path<(String, String, String)>,
) -> Response {
    if super::input::parse_date(&date).is_none() {
        return reckon_error(
            StatusCode::BAD_REQUEST,
            "The effective date is not a valid date.",
        );
    }
    let id = try_resp!(parse_uuid(&id));
    let view = try_resp!(on_book(&sim, &book, |b, _| b
        .tax_rates
        .get(&id)
        .map(Book::tax_rate_view)));
    one(&uri, view)
}

async fn list_terms(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(book): Path<String>,
) -> Response {
    try_resp!(on_book(&sim, &book, |b, _| {
        let rows: Vec<_> = b.terms.values().collect();
        list_response(&sim, &headers, &uri, &rows, |t| Book::term_view(t), true)
    }))
}

async fn create_term(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path(book): Path<String>,
    body: Bytes,
) -> Response {
    let body = try_resp!(body_json(&headers, &body, false));
    match try_resp!(on_book(&sim, &book, |b, _| b.create_term(&body))) {
        Ok(t) => created(t.id, None),
        Err(e) => book_error(e),
    }
}

async fn get_term(
    State(sim): State<ReckonSim>,
    OriginalUri(uri): OriginalUri,
    Path((book, id)): Path<(String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let view = try_resp!(on_book(&sim, &book, |b, _| b
        .terms
        .get(&id)
        .map(Book::term_view)));
    one(&uri, view)
}

async fn list_ledger_accounts(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(book): Path<String>,
) -> Response {
    try_resp!(on_book(&sim, &book, |b, _| {
        let rows: Vec<_> = b.ledger_accounts.values().collect();
        list_response(&sim, &headers, &uri, &rows, |a| Book::ledger_view(a), true)
    }))
}

async fn create_ledger_account(
    State(sim): State<ReckonSim>,
    headers: HeaderMap,
    Path(book): Path<String>,
    body: Bytes,
) -> Response {
    let body = try_resp!(body_json(&headers, &body, false));
    match try_resp!(on_book(&sim, &book, |b, ctx| b.create_ledger_account(&body, ctx))) {
        Ok(a) => created(a.id, None),
        Err(e) => book_error(e),
    }
}

async fn get_ledger_account(
    State(sim): State<ReckonSim>,
    OriginalUri(uri): OriginalUri,
    Path((book, id)): Path<(String, String)>,
) -> Response {
    let id = try_resp!(parse_uuid(&id));
    let view = try_resp!(on_book(&sim, &book, |b, _| b
        .ledger_accounts
        .get(&id)
        .map(Book::ledger_view)));
    one(&uri, view)
}

fn type_list(names: &[String]) -> Response {
    let list: Vec<Value> = names
        .iter()
        .map(|n| json!({"id": Uuid::new_v5(&Uuid::NAMESPACE_OID, n.as_bytes()).to_string(), "name": n}))
        .collect();
    Json(json!({ "list": list })).into_response()
}

async fn payment_methods(State(sim): State<ReckonSim>, Path(book): Path<String>) -> Response {
    try_resp!(on_book(&sim, &book, |b, _| {
        let list: Vec<Value> = b
            .payment_methods
            .iter()
            .map(|(id, name)| json!({"id": id.to_string(), "name": name}))
            .collect();
        Json(json!({ "list": list })).into_response()
    }))
}

async fn address_types(State(sim): State<ReckonSim>, Path(book): Path<String>) -> Response {
    try_resp!(on_book(&sim, &book, |b, _| type_list(&b.address_types)))
}

async fn phone_types(State(sim): State<ReckonSim>, Path(book): Path<String>) -> Response {
    try_resp!(on_book(&sim, &book, |b, _| type_list(&b.phone_types)))
}

async fn electronic_types(State(sim): State<ReckonSim>, Path(book): Path<String>) -> Response {
    try_resp!(on_book(&sim, &book, |b, _| type_list(&b.electronic_types)))
}

// ---- admin (test-only) -------------------------------------------------------------------

async fn admin_state(State(sim): State<ReckonSim>) -> Response {
    let state = sim.state();
    let books: Vec<Value> = state
        .books
        .values()
        .map(|b| {
            let outstanding: rust_decimal::Decimal = b.invoices.values().map(|i| b.invoice_balance(i)).sum();
            let unapplied: rust_decimal::Decimal = b
                .credit_notes
                .values()
                .filter(|c| c.status != "Draft")
                .map(|c| b.credit_note_balance(c))
                .sum();
            json!({"id": b.id.to_string(), "name": b.name, "customers": b.customers.len(), "items": b.items.len(),
                   "invoices": b.invoices.len(), "receipts": b.receipts.len(), "credit_notes": b.credit_notes.len(),
                   "outstanding": money(outstanding), "unapplied_credit": money(unapplied)})
        })
        .collect();
    Json(json!({"books": books, "tokens_issued": state.oauth.tokens_issued, "refreshes": state.oauth.refreshes,
                "client_id": sim.config.oauth.client_id, "subscription_key": sim.config.subscription_keys.first()}))
    .into_response()
}

async fn admin_tokens(State(sim): State<ReckonSim>) -> Response {
    let pair = sim.issue_tokens();
    Json(json!({"access_token": pair.access_token, "refresh_token": pair.refresh_token, "expires_in": pair.expires_in}))
        .into_response()
}

async fn admin_expire_tokens(State(sim): State<ReckonSim>) -> Response {
    sim.expire_access_tokens();
    no_content()
}
