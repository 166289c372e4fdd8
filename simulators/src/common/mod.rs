//! Pieces both simulators share: a controllable clock, fault injection, rate limiting,
//! a request log with per-route counters, serde helpers for the vendors' wire formats,
//! and the HTTP server runner.

pub mod admin;
pub mod clock;
pub mod faults;
pub mod ratelimit;
pub mod server;
pub mod traffic;
pub mod wire;

pub use clock::SimClock;
pub use faults::{FaultHandle, FaultRule, Outcome};
pub use ratelimit::{FixedWindow, TokenBucket};
pub use server::RunningServer;
pub use traffic::{Exchange, TrafficLog};
