//! What the Reckon client needs to know: endpoints, credentials, the book, and the knobs for
//! retries and pacing (small values make the tests fast).

use super::ReckonError;
use crate::domain::ReckonId;
use secrecy::SecretString;
use std::time::Duration;
use url::Url;

/// The documented gateway base (docs/vendor-apis.md; `openapi.yaml` says `https://api-v2.reckonone.com`).
pub const DEFAULT_API_BASE_URL: &str = "https://api.reckon.com/r1/v2";
/// Reckon's IdentityServer; `/connect/authorize` and `/connect/token` live under it (docs/vendor-apis.md).
pub const DEFAULT_IDENTITY_URL: &str = "https://identity.reckon.com";

/// Configuration of one connection to one Reckon One book. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct ReckonClientConfig {
    /// API base, without the book id (e.g. `https://api.reckon.com/r1/v2`).
    pub api_base_url: Url,
    /// Identity server origin; the client uses `{identity_url}/connect/{authorize,token}`.
    pub identity_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    /// APIM `Ocp-Apim-Subscription-Key`.
    pub subscription_key: SecretString,
    pub book_id: ReckonId,
    /// Registered OAuth redirect URI (must match exactly).
    pub redirect_uri: Url,
    /// Deposit ledger account for receipts (name or id), e.g. "Undeposited Funds".
    pub receipt_account: String,
    /// Optional payment method for receipts (name or id), e.g. "EFTPOS".
    pub payment_method: Option<String>,
    /// Invoice template (name or id); `None` lets Reckon use the book's default.
    pub invoice_template: Option<String>,
    /// Client-side pacing (token bucket, burst = this many); 0 disables it.
    pub requests_per_minute: u32,
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// First backoff delay for 5xx/transport retries; doubles each attempt, with jitter.
    pub backoff_base: Duration,
    /// Longest single wait (a larger `Retry-After` is capped to this).
    pub max_backoff: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Timeout of a token-endpoint request; shorter than any cross-process refresh lease
    /// (a lease that ran out mid-request would let a second caller redeem the same token).
    pub token_timeout: Duration,
    /// `perpage` for list calls (Reckon's maximum is undocumented; the simulator caps at 100).
    pub page_size: u32,
    /// Refresh the access token this long before it expires (docs/vendor-apis.md: ~5 minutes).
    pub refresh_margin: Duration,
}

impl ReckonClientConfig {
    /// A configuration with the documented endpoints and production defaults.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: SecretString,
        subscription_key: SecretString,
        book_id: ReckonId,
        redirect_uri: Url,
        receipt_account: impl Into<String>,
    ) -> Result<Self, ReckonError> {
        Ok(ReckonClientConfig {
            api_base_url: parse_url("api_base_url", DEFAULT_API_BASE_URL)?,
            identity_url: parse_url("identity_url", DEFAULT_IDENTITY_URL)?,
            client_id: client_id.into(),
            client_secret,
            subscription_key,
            book_id,
            redirect_uri,
            receipt_account: receipt_account.into(),
            payment_method: None,
            invoice_template: None,
            requests_per_minute: 60,
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
            token_timeout: Duration::from_secs(20),
            page_size: 100,
            refresh_margin: Duration::from_secs(300),
        })
    }

    pub(crate) fn validate(&self) -> Result<(), ReckonError> {
        if self.client_id.trim().is_empty() {
            return Err(ReckonError::Config("client_id is empty".into()));
        }
        if self.receipt_account.trim().is_empty() {
            return Err(ReckonError::Config("receipt_account is empty".into()));
        }
        if self.max_attempts == 0 {
            return Err(ReckonError::Config(
                "max_attempts must be at least 1".into(),
            ));
        }
        if self.page_size == 0 {
            return Err(ReckonError::Config("page_size must be at least 1".into()));
        }
        for (name, url) in [
            ("api_base_url", &self.api_base_url),
            ("identity_url", &self.identity_url),
        ] {
            if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
                return Err(ReckonError::Config(format!(
                    "{name} must be an http(s) URL"
                )));
            }
        }
        Ok(())
    }

    /// `{identity_url}/connect/{endpoint}`.
    pub(crate) fn identity_endpoint(&self, endpoint: &str) -> Result<Url, ReckonError> {
        let base = self.identity_url.as_str().trim_end_matches('/');
        parse_url("identity_url", &format!("{base}/connect/{endpoint}"))
    }

    /// `{api_base_url}/{book_id}/{path}`.
    pub(crate) fn book_url(&self, path: &str) -> Result<Url, ReckonError> {
        let base = self.api_base_url.as_str().trim_end_matches('/');
        parse_url(
            "api_base_url",
            &format!("{base}/{}/{}", self.book_id, path.trim_start_matches('/')),
        )
    }
}

fn parse_url(name: &str, value: &str) -> Result<Url, ReckonError> {
    Url::parse(value).map_err(|e| ReckonError::Config(format!("{name} is not a valid URL: {e}")))
}
