//! The Reckon One API v2 client: OAuth 2 tokens (via the `oauth2` crate and a token-store
//! port), the APIM subscription key, book-scoped resources, merge-patch updates, 429 and
//! 400 handling. Wire DTOs stay private here.

mod error;

pub use error::{FieldError, ReckonError};
