//! The Cliniko API v1 simulator.

pub mod http;
pub mod invoice_math;
pub mod model;
pub mod query;
pub mod store;

pub use http::{ClinikoConfig, ClinikoSim, DEFAULT_API_KEY};
