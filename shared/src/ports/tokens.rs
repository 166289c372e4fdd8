//! Where the Reckon OAuth tokens live.

use super::StateError;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use std::future::Future;

/// An OAuth token pair for Reckon.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    pub expires_at: DateTime<Utc>,
}

impl TokenSet {
    /// The pair as the Reckon tokens secret holds it on AWS:
    /// `{"access_token", "refresh_token", "expires_at"}` (RFC 3339, UTC).
    pub fn to_secret_json(&self) -> SecretString {
        use secrecy::ExposeSecret;
        let body = serde_json::json!({
            "access_token": self.access_token.expose_secret(),
            "refresh_token": self.refresh_token.expose_secret(),
            "expires_at": self
                .expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        });
        SecretString::from(body.to_string())
    }
}

/// Where the Reckon tokens live; `save` must be atomic (a rotated refresh token is the only
/// one that works, so losing it means reconnecting by hand).
///
/// A store shared by several processes (Secrets Manager behind concurrent Lambdas) also
/// excludes the other processes while one refreshes: the token manager calls
/// `begin_refresh` before it re-reads and redeems the refresh token and `end_refresh` after
/// the new pair is saved (or the refresh failed). The defaults do nothing: a store used by
/// one process needs only the manager's own in-process lock.
pub trait TokenStore: Send + Sync {
    fn load(&self) -> impl Future<Output = Result<Option<TokenSet>, StateError>> + Send;
    fn save(&self, tokens: &TokenSet) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Waits until this process may refresh. An error means the refresh must not happen.
    fn begin_refresh(&self) -> impl Future<Output = Result<(), StateError>> + Send {
        std::future::ready(Ok(()))
    }

    /// Lets the other processes refresh again.
    fn end_refresh(&self) -> impl Future<Output = Result<(), StateError>> + Send {
        std::future::ready(Ok(()))
    }

    /// Whether a `save` would succeed now, checked before a refresh token is redeemed (a
    /// redeemed token is spent: the new pair must have somewhere to go). The default
    /// trusts the store.
    fn check_writable(&self) -> impl Future<Output = Result<(), StateError>> + Send {
        std::future::ready(Ok(()))
    }
}
