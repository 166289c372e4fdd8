//! The Reckon One API v2 simulator (with its OAuth 2 identity server).

pub mod book;
pub mod http;
pub mod input;
pub mod oauth;
pub mod query;
pub mod tax;
pub use http::{DEFAULT_SUBSCRIPTION_KEY, ReckonConfig, ReckonSim};
