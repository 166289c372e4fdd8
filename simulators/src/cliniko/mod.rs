//! The Cliniko API v1 simulator.

pub mod invoice_math;
pub mod model;
pub mod query;
pub mod store;
pub mod http;

pub use http::{ClinikoConfig, ClinikoSim, DEFAULT_API_KEY};
