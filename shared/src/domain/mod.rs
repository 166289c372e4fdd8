//! Domain types, free of wire formats: what the sync knows about each side's records.
//! Vendor JSON stays inside the clients (`crate::cliniko`, `crate::reckon`); these are what
//! they convert to and from. They are also the body of queued work, so they are serde types
//! with a stable shape (see `crate::pipeline::WorkItem`).

mod cliniko;
mod ids;
mod reckon;

pub use cliniko::*;
pub use ids::{ClinikoId, DEFAULT_TENANT, InvalidTenantId, ReckonId, TenantId};
pub use reckon::*;
