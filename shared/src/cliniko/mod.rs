//! The Cliniko API v1 client: Basic auth, shard host, required headers, paging, `q[]`
//! filters, self-pacing under the per-user rate limit, retries. Wire DTOs stay private here.

mod client;
mod config;
mod dto;
mod error;
mod pacing;
mod query;

pub use client::ClinikoClient;
pub use config::{ClinikoClientConfig, shard_base_url, shard_of};
pub use error::ClinikoError;
pub use query::{ListQuery, PER_PAGE, filter_time};
