//! Secrets Manager: the Reckon token pair ([`SecretsTokenStore`]), the app secrets read once
//! at start-up ([`load_app_secrets`]), and a DynamoDB lease ([`TokenLease`]) so one caller at
//! a time refreshes the tokens across concurrent Lambdas.
//!
//! # Refreshing the Reckon tokens across Lambdas
//!
//! Reckon rotates the refresh token on every use: two Lambdas refreshing with the same
//! refresh token would leave one of them (and the secret, if it writes last) holding a dead
//! token. The Reckon client's token manager serialises refreshes inside one process; across
//! processes it goes through the lease:
//!
//! 1. `lease.acquire_waiting(max_wait)`: returns a [`LeaseGuard`] once this caller holds the
//!    lease (another holder's lease expires after its TTL if it crashed).
//! 2. Re-read the secret (`SecretsTokenStore::load`): another Lambda may have refreshed while
//!    this one waited. If the stored access token is fresh (and is not the one Reckon just
//!    rejected), use it and stop.
//! 3. Otherwise refresh with the stored refresh token and `save` the new pair *before* using
//!    the new access token (a rotated refresh token is never lost).
//! 4. `guard.release()`: deletes the lease only if this caller still owns it.
//!
//! The lease TTL must exceed one refresh round trip plus the save (the default is 30 s).
//! [`LeasedTokenStore`] ties it together: `crate::reckon::TokenManager` over it takes the
//! lease in `begin_refresh` (1), re-reads and refreshes (2–3), and releases in `end_refresh`
//! (4). A cold function whose stored token is still fresh never touches the lease.

use super::{backend, check_tenant, corrupt, parse_ts};
use crate::ports::{StateError, TokenSet, TokenStore};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// The token pair as stored in the secret (JSON). Secret values never reach an error.
#[derive(serde::Deserialize)]
struct StoredTokens {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_at: Option<String>,
}

/// Describes a JSON error without quoting the (secret) input.
fn json_error_without_values(e: &serde_json::Error) -> String {
    let class = match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "unexpected field types",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{class} at line {} column {}", e.line(), e.column())
}

/// [`TokenStore`] over one Secrets Manager secret holding
/// `{"access_token", "refresh_token", "expires_at"}`. A missing secret, a secret without a
/// value, or an empty object (`{}`, e.g. the CDK's placeholder) means "not connected yet".
/// `save` is one `PutSecretValue` (atomic), creating the secret when it does not exist.
#[derive(Clone)]
pub struct SecretsTokenStore {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl std::fmt::Debug for SecretsTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsTokenStore")
            .field("secret_id", &self.secret_id)
            .finish_non_exhaustive()
    }
}

impl SecretsTokenStore {
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        secret_id: impl Into<String>,
    ) -> SecretsTokenStore {
        SecretsTokenStore {
            client,
            secret_id: secret_id.into(),
        }
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }
}

impl TokenStore for SecretsTokenStore {
    async fn load(&self) -> Result<Option<TokenSet>, StateError> {
        let out = match self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(backend("Secrets Manager GetSecretValue (tokens)", e)),
        };
        let key = format!("secret {}", self.secret_id);
        let Some(text) = out.secret_string().filter(|t| !t.trim().is_empty()) else {
            return Ok(None);
        };
        let stored: StoredTokens =
            serde_json::from_str(text).map_err(|e| corrupt(&key, json_error_without_values(&e)))?;
        // The stack's placeholder holds empty strings: that is "not connected yet".
        let filled = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        let stored = StoredTokens {
            access_token: filled(stored.access_token),
            refresh_token: filled(stored.refresh_token),
            expires_at: filled(stored.expires_at),
        };
        match stored {
            StoredTokens {
                access_token: None,
                refresh_token: None,
                expires_at: None,
            } => Ok(None),
            StoredTokens {
                access_token: Some(access),
                refresh_token: Some(refresh),
                expires_at: Some(expires),
            } => Ok(Some(TokenSet {
                access_token: SecretString::from(access),
                refresh_token: SecretString::from(refresh),
                expires_at: parse_ts(&format!("{key} expires_at"), &expires)?,
            })),
            _ => Err(corrupt(
                &key,
                "the token pair is incomplete (access_token, refresh_token and expires_at are all required)",
            )),
        }
    }

    async fn save(&self, t: &TokenSet) -> Result<(), StateError> {
        let body = t.to_secret_json();
        let put = self
            .client
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(body.expose_secret())
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.client
                    .create_secret()
                    .name(&self.secret_id)
                    .description("Reckon One OAuth tokens (cliniko-reckon)")
                    .secret_string(body.expose_secret())
                    .send()
                    .await
                    .map_err(|e| backend("Secrets Manager CreateSecret (tokens)", e))?;
                Ok(())
            }
            Err(e) => Err(backend("Secrets Manager PutSecretValue (tokens)", e)),
        }
    }
}

/// The Reckon app's own credentials (one secret, JSON
/// `{"client_id", "client_secret", "subscription_key"}`).
#[derive(Debug, Clone)]
pub struct ReckonAppSecret {
    pub client_id: String,
    pub client_secret: SecretString,
    pub subscription_key: SecretString,
}

/// Everything secret a function needs besides the Reckon tokens. `Debug` redacts the values.
#[derive(Debug, Clone)]
pub struct AppSecrets {
    pub cliniko_api_key: SecretString,
    pub reckon: ReckonAppSecret,
}

/// Why the app secrets could not be read; never carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum AppSecretsError {
    #[error("secret {secret_id} does not exist or has no value")]
    Missing { secret_id: String },
    #[error("secret {secret_id} is malformed: {detail}")]
    Malformed { secret_id: String, detail: String },
    #[error("reading secret {secret_id}")]
    Backend {
        secret_id: String,
        #[source]
        source: StateError,
    },
}

impl AppSecretsError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, AppSecretsError::Backend { source, .. } if source.is_retryable())
    }
}

async fn secret_string(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<SecretString, AppSecretsError> {
    let out = match client.get_secret_value().secret_id(secret_id).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Err(AppSecretsError::Missing {
                secret_id: secret_id.to_string(),
            });
        }
        Err(e) => {
            return Err(AppSecretsError::Backend {
                secret_id: secret_id.to_string(),
                source: backend("Secrets Manager GetSecretValue", e),
            });
        }
    };
    match out.secret_string() {
        Some(text) if !text.trim().is_empty() => Ok(SecretString::from(text.to_string())),
        _ => Err(AppSecretsError::Missing {
            secret_id: secret_id.to_string(),
        }),
    }
}

/// The Cliniko API key: the secret's whole value, or its `api_key` field when it is a JSON
/// object.
pub async fn load_cliniko_api_key(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<SecretString, AppSecretsError> {
    let raw = secret_string(client, secret_id).await?;
    let text = raw.expose_secret().trim();
    if !text.starts_with('{') {
        return Ok(SecretString::from(text.to_string()));
    }
    #[derive(serde::Deserialize)]
    struct Wrapped {
        api_key: String,
    }
    let wrapped: Wrapped = serde_json::from_str(text).map_err(|e| AppSecretsError::Malformed {
        secret_id: secret_id.to_string(),
        detail: format!(
            "expected the key, or {{\"api_key\": …}}: {}",
            json_error_without_values(&e)
        ),
    })?;
    if wrapped.api_key.trim().is_empty() {
        return Err(AppSecretsError::Malformed {
            secret_id: secret_id.to_string(),
            detail: "api_key is empty".into(),
        });
    }
    Ok(SecretString::from(wrapped.api_key.trim().to_string()))
}

/// The Reckon app secret: JSON `{"client_id", "client_secret", "subscription_key"}`.
pub async fn load_reckon_app_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<ReckonAppSecret, AppSecretsError> {
    #[derive(serde::Deserialize)]
    struct Stored {
        client_id: String,
        client_secret: String,
        subscription_key: String,
    }
    let raw = secret_string(client, secret_id).await?;
    let stored: Stored =
        serde_json::from_str(raw.expose_secret()).map_err(|e| AppSecretsError::Malformed {
            secret_id: secret_id.to_string(),
            detail: format!(
                "expected {{\"client_id\", \"client_secret\", \"subscription_key\"}}: {}",
                json_error_without_values(&e)
            ),
        })?;
    for (field, value) in [
        ("client_id", &stored.client_id),
        ("client_secret", &stored.client_secret),
        ("subscription_key", &stored.subscription_key),
    ] {
        if value.trim().is_empty() {
            return Err(AppSecretsError::Malformed {
                secret_id: secret_id.to_string(),
                detail: format!("{field} is empty"),
            });
        }
    }
    Ok(ReckonAppSecret {
        client_id: stored.client_id,
        client_secret: SecretString::from(stored.client_secret),
        subscription_key: SecretString::from(stored.subscription_key),
    })
}

/// Reads both app secrets, once: call it at cold start (outside the handler) and keep the
/// result for the life of the execution environment.
pub async fn load_app_secrets(
    client: &aws_sdk_secretsmanager::Client,
    cliniko_secret_id: &str,
    reckon_secret_id: &str,
) -> Result<AppSecrets, AppSecretsError> {
    Ok(AppSecrets {
        cliniko_api_key: load_cliniko_api_key(client, cliniko_secret_id).await?,
        reckon: load_reckon_app_secret(client, reckon_secret_id).await?,
    })
}

/// A lease in the state table (`pk = T#{tenant}#LEASE`, `sk = reckon-tokens`) held by one
/// owner until it releases it or the lease runs out. See the module docs for the protocol.
#[derive(Clone)]
pub struct TokenLease {
    client: aws_sdk_dynamodb::Client,
    table: String,
    tenant: String,
    owner: String,
    ttl: Duration,
}

impl std::fmt::Debug for TokenLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenLease")
            .field("table", &self.table)
            .field("tenant", &self.tenant)
            .field("owner", &self.owner)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Proof of holding the lease; hand it back with [`LeaseGuard::release`].
#[derive(Debug)]
#[must_use = "release the lease when the refresh is saved"]
pub struct LeaseGuard {
    lease: TokenLease,
    until: DateTime<Utc>,
}

impl LeaseGuard {
    /// When the lease runs out unless released first.
    pub fn until(&self) -> DateTime<Utc> {
        self.until
    }

    /// Releases the lease; `Ok(false)` when it was no longer ours (it ran out and another
    /// caller took it).
    pub async fn release(self) -> Result<bool, StateError> {
        self.lease.release().await
    }
}

const LEASE_SK: &str = "reckon-tokens";

impl TokenLease {
    /// A lease for `tenant` in `table`, held as `owner` (unique per caller: e.g. the Lambda
    /// request id or a UUID), lasting `ttl` unless released.
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        tenant: impl Into<String>,
        owner: impl Into<String>,
        ttl: Duration,
    ) -> Result<TokenLease, StateError> {
        let tenant = tenant.into();
        check_tenant(&tenant)?;
        Ok(TokenLease {
            client,
            table: table.into(),
            tenant,
            owner: owner.into(),
            ttl,
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn pk(&self) -> String {
        format!("T#{}#LEASE", self.tenant)
    }

    /// Takes the lease if it is free, ran out, or is already ours (then extends it).
    /// `Ok(None)` when another owner holds it.
    pub async fn try_acquire(&self) -> Result<Option<LeaseGuard>, StateError> {
        let now = Utc::now();
        let ttl = chrono::TimeDelta::from_std(self.ttl).unwrap_or(chrono::TimeDelta::seconds(30));
        let until = now + ttl;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(self.pk()))
            .item("sk", AttributeValue::S(LEASE_SK.into()))
            .item("owner", AttributeValue::S(self.owner.clone()))
            .item(
                "lease_until_ms",
                AttributeValue::N(until.timestamp_millis().to_string()),
            )
            // TTL clean-up of leases nobody released (an hour after they ran out).
            .item(
                "expires_at",
                AttributeValue::N((until.timestamp() + 3600).to_string()),
            )
            .condition_expression("attribute_not_exists(#pk) OR #until < :now OR #owner = :me")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#until", "lease_until_ms")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(
                ":now",
                AttributeValue::N(now.timestamp_millis().to_string()),
            )
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(LeaseGuard {
                lease: self.clone(),
                until,
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(backend("DynamoDB PutItem (token lease)", e)),
        }
    }

    /// Waits (polling with back-off, 50 ms to 1 s) until the lease is ours or `max_wait`
    /// passes (`Ok(None)`).
    pub async fn acquire_waiting(
        &self,
        max_wait: Duration,
    ) -> Result<Option<LeaseGuard>, StateError> {
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut pause = Duration::from_millis(50);
        loop {
            if let Some(guard) = self.try_acquire().await? {
                return Ok(Some(guard));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Deletes the lease if this owner holds it; `Ok(false)` otherwise.
    pub async fn release(&self) -> Result<bool, StateError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(self.pk()))
            .key("sk", AttributeValue::S(LEASE_SK.into()))
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(backend("DynamoDB DeleteItem (token lease)", e)),
        }
    }

    /// The current holder and when its lease runs out, if anyone holds it.
    pub async fn holder(&self) -> Result<Option<(String, DateTime<Utc>)>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(self.pk()))
            .key("sk", AttributeValue::S(LEASE_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("DynamoDB GetItem (token lease)", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let key = "token lease";
        let owner = match item.get("owner") {
            Some(AttributeValue::S(o)) => o.clone(),
            _ => return Err(corrupt(key, "owner is missing")),
        };
        let until = match item.get("lease_until_ms") {
            Some(AttributeValue::N(n)) => n
                .parse::<i64>()
                .ok()
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .ok_or_else(|| corrupt(key, format!("lease_until_ms {n:?} is not a time")))?,
            _ => return Err(corrupt(key, "lease_until_ms is missing")),
        };
        Ok(Some((owner, until)))
    }
}

/// The token store the Lambdas use: [`SecretsTokenStore`] whose refreshes go through a
/// [`TokenLease`], so concurrent functions never redeem the same (single-use) refresh token
/// twice. The token manager re-reads the secret once it holds the lease (module docs).
#[derive(Debug)]
pub struct LeasedTokenStore {
    tokens: SecretsTokenStore,
    lease: TokenLease,
    max_wait: Duration,
    held: tokio::sync::Mutex<Option<LeaseGuard>>,
}

impl LeasedTokenStore {
    /// `max_wait` bounds how long a refresh waits for another holder (it should exceed the
    /// lease TTL, so a crashed holder's lease runs out first).
    pub fn new(tokens: SecretsTokenStore, lease: TokenLease, max_wait: Duration) -> Self {
        LeasedTokenStore {
            tokens,
            lease,
            max_wait,
            held: tokio::sync::Mutex::new(None),
        }
    }

    pub fn lease(&self) -> &TokenLease {
        &self.lease
    }

    pub fn tokens(&self) -> &SecretsTokenStore {
        &self.tokens
    }
}

impl TokenStore for LeasedTokenStore {
    async fn load(&self) -> Result<Option<TokenSet>, StateError> {
        self.tokens.load().await
    }

    async fn save(&self, tokens: &TokenSet) -> Result<(), StateError> {
        self.tokens.save(tokens).await
    }

    async fn begin_refresh(&self) -> Result<(), StateError> {
        let mut held = self.held.lock().await;
        if held.is_some() {
            // Already ours (the manager serialises refreshes within the process).
            return Ok(());
        }
        match self.lease.acquire_waiting(self.max_wait).await? {
            Some(guard) => {
                *held = Some(guard);
                Ok(())
            }
            None => Err(StateError::Backend {
                detail: format!(
                    "another function has been refreshing the Reckon tokens for over {} s",
                    self.max_wait.as_secs()
                ),
                retryable: true,
            }),
        }
    }

    async fn end_refresh(&self) -> Result<(), StateError> {
        let guard = self.held.lock().await.take();
        match guard {
            Some(guard) => {
                if !guard.release().await? {
                    tracing::warn!(
                        "the token lease ran out during the refresh (another function may have taken it)"
                    );
                }
                Ok(())
            }
            None => Ok(()),
        }
    }
}
