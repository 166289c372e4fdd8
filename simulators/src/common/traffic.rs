//! What each simulator saw: a counter per (method, route) and, when capture is on, every
//! exchange with both bodies, so tests can inspect what was written and check every
//! response against the vendor's schema.

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One request and its answer.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The router's pattern (`/v1/patients/{id}`), when a route matched.
    pub route: Option<String>,
    pub status: u16,
    pub request_content_type: Option<String>,
    pub request_body: Bytes,
    pub response_body: Bytes,
    /// True when the simulator broke the connection on purpose.
    pub dropped: bool,
}

impl Exchange {
    pub fn request_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.request_body).ok()
    }

    pub fn response_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.response_body).ok()
    }
}

#[derive(Default, Debug)]
struct TrafficState {
    counts: BTreeMap<(String, String), u64>,
    capture: bool,
    exchanges: Vec<Exchange>,
}

#[derive(Clone, Default, Debug)]
pub struct TrafficLog {
    state: Arc<Mutex<TrafficState>>,
}

const BODY_LIMIT: usize = 16 * 1024 * 1024;

impl TrafficLog {
    pub fn new(capture: bool) -> Self {
        let log = TrafficLog::default();
        log.set_capture(capture);
        log
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TrafficState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns body capture on or off (counters always run).
    pub fn set_capture(&self, on: bool) {
        self.lock().capture = on;
    }

    /// Requests per `(METHOD, route pattern)`; unmatched paths count under their raw path.
    pub fn counts(&self) -> BTreeMap<(String, String), u64> {
        self.lock().counts.clone()
    }

    /// Requests whose method matches and whose route pattern or path contains `needle`.
    pub fn count(&self, method: &str, needle: &str) -> u64 {
        self.lock()
            .counts
            .iter()
            .filter(|((m, r), _)| m.eq_ignore_ascii_case(method) && r.contains(needle))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn total(&self) -> u64 {
        self.lock().counts.values().sum()
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.lock().exchanges.clone()
    }

    pub fn reset(&self) {
        let mut s = self.lock();
        s.counts.clear();
        s.exchanges.clear();
    }

    fn record(&self, exchange: Exchange) {
        let mut s = self.lock();
        let route = exchange
            .route
            .clone()
            .unwrap_or_else(|| exchange.path.clone());
        *s.counts
            .entry((exchange.method.clone(), route))
            .or_default() += 1;
        if s.capture {
            s.exchanges.push(exchange);
        }
    }
}

/// Middleware: counts and (optionally) captures every exchange.
pub async fn record(State(log): State<TrafficLog>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let request_content_type = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (parts, body) = request.into_parts();
    let request_body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response_plain(),
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(request_body.clone())))
        .await;
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let (response_body, dropped) = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => (b, false),
        Err(_) => (Bytes::new(), true),
    };
    log.record(Exchange {
        method,
        path,
        query,
        route,
        status,
        request_content_type,
        request_body,
        response_body: response_body.clone(),
        dropped,
    });
    if dropped {
        return Response::from_parts(parts, broken_body());
    }
    Response::from_parts(parts, Body::from(response_body))
}

/// A body that fails after the headers are sent, so the client sees a broken connection.
pub fn broken_body() -> Body {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated dropped connection",
        ))
    });
    Body::from_stream(failing)
}

trait PlainResponse {
    fn into_response_plain(self) -> Response;
}

impl PlainResponse for StatusCode {
    fn into_response_plain(self) -> Response {
        axum::response::IntoResponse::into_response(self)
    }
}
