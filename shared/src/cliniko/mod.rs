//! The Cliniko API v1 client: Basic auth, shard host, required headers, paging, `q[]`
//! filters, self-pacing under the per-user rate limit, retries. Wire DTOs stay private here.

mod error;

pub use error::ClinikoError;
