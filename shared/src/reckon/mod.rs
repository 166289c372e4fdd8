//! The Reckon One API v2 client: OAuth 2 tokens (via the `oauth2` crate and a token-store
//! port), the APIM subscription key, book-scoped resources, merge-patch updates, 429 and
//! 400 handling. Wire DTOs stay private here.
//!
//! ```no_run
//! # async fn demo(config: cliniko_reckon::reckon::ReckonClientConfig) -> Result<(), cliniko_reckon::reckon::ReckonError> {
//! use cliniko_reckon::reckon::{MemoryTokenStore, ReckonClient};
//! let client = ReckonClient::new(config, MemoryTokenStore::new())?;
//! let url = client.authorize_url("random-state"); // send the user there
//! client.connect("code-from-the-redirect").await?;  // tokens saved in the store
//! # Ok(()) }
//! ```

mod auth;
mod client;
mod config;
mod dto;
mod error;

pub use auth::{MemoryTokenStore, ReckonOAuth, SCOPES, TokenManager};
pub use client::{ReckonClient, bootstrap_client};
pub use config::{DEFAULT_API_BASE_URL, DEFAULT_IDENTITY_URL, ReckonClientConfig};
pub use error::{FieldError, ReckonError};
