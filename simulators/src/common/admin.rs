//! Test-only control routes both simulators mount under `/__admin` (no auth): faults,
//! outages, the clock and request counters. Never part of either vendor's API.

use super::{FaultHandle, FaultRule, SimClock, TrafficLog};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

#[derive(Clone)]
pub struct Controls {
    pub faults: FaultHandle,
    pub traffic: TrafficLog,
    pub clock: SimClock,
}

#[derive(Deserialize)]
struct Outage {
    down: bool,
}

#[derive(Deserialize)]
struct Advance {
    seconds: u64,
}

pub fn routes(controls: Controls) -> Router {
    Router::new()
        .route(
            "/__admin/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/__admin/outage", post(set_outage))
        .route("/__admin/clock/advance", post(advance_clock))
        .route("/__admin/requests", get(requests).delete(reset_requests))
        .with_state(controls)
}

async fn list_faults(State(c): State<Controls>) -> Response {
    Json(json!({ "rules": c.faults.rules(), "outage": c.faults.outage() })).into_response()
}

async fn add_fault(State(c): State<Controls>, Json(rule): Json<FaultRule>) -> Response {
    c.faults.add(rule);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(c): State<Controls>) -> Response {
    c.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn set_outage(State(c): State<Controls>, Json(o): Json<Outage>) -> Response {
    c.faults.set_outage(o.down);
    StatusCode::NO_CONTENT.into_response()
}

async fn advance_clock(State(c): State<Controls>, Json(a): Json<Advance>) -> Response {
    c.clock.advance(std::time::Duration::from_secs(a.seconds));
    Json(json!({ "now": super::wire::timestamp_text(&c.clock.now()) })).into_response()
}

async fn requests(State(c): State<Controls>) -> Response {
    let counts: Vec<_> = c
        .traffic
        .counts()
        .into_iter()
        .map(|((method, route), n)| json!({ "method": method, "route": route, "count": n }))
        .collect();
    Json(json!({ "total": c.traffic.total(), "routes": counts })).into_response()
}

async fn reset_requests(State(c): State<Controls>) -> Response {
    c.traffic.reset();
    StatusCode::NO_CONTENT.into_response()
}
