//! Cold-start wiring shared by the functions: configuration from the environment (the
//! contract with `infra/lib/constants.ts`), secrets read once, clients built once.
//!
//! | Variable | Used by | Meaning |
//! |---|---|---|
//! | `TABLE_NAME` | all | the state table |
//! | `TENANT_ID` | all | the clinic this deployment serves (default `default`) |
//! | `PATIENTS_QUEUE_URL`, `PRODUCTS_QUEUE_URL`, `INVOICES_QUEUE_URL` | poller, reconciler | work queues (the reconciler queues repairs) |
//! | `CLINIKO_SECRET_ARN` | all | `{"api_key", "user_agent"}` (or the bare key) |
//! | `RECKON_APP_SECRET_ARN` | workers, reconciler | `{"client_id", "client_secret", "subscription_key"}` |
//! | `RECKON_TOKENS_SECRET_ARN` | workers, reconciler | the OAuth token pair (read and rotated) |
//! | `RECKON_BOOK_ID` | workers, reconciler | the Reckon book's GUID (else `book_id` in the app secret) |
//! | `REPORT_BUCKET` | reconciler | the S3 bucket for reconciliation reports |
//! | `CLINIKO_USER_AGENT` | all | when the Cliniko secret has no `user_agent` |
//! | `CLINIKO_BASE_URL`, `RECKON_API_BASE_URL`, `RECKON_IDENTITY_URL`, `RECKON_RECEIPT_ACCOUNT` | optional | endpoint and account overrides |
//! | `MAPPING_PRODUCT_INCOME_ACCOUNT`, `MAPPING_SERVICE_INCOME_ACCOUNT` | optional, workers and reconciler | income accounts (default `Sales`, `Income`), checked against the book at cold start |
//!
//! The AWS endpoint comes from the SDK's own configuration (`AWS_ENDPOINT_URL` for a local
//! emulator); there is no local-mode switch.

use cliniko_reckon::adapters::aws::{
    DynamoState, LeasedTokenStore, QueueUrls, S3Reports, SecretsTokenStore, SqsQueue, TokenLease,
    load_reckon_app_secret, load_sdk_config,
};
use cliniko_reckon::cliniko::{ClinikoClient, ClinikoClientConfig};
use cliniko_reckon::domain::{ReckonId, TenantId};
use cliniko_reckon::mapping::MappingConfig;
use cliniko_reckon::pipeline::Syncer;
use cliniko_reckon::reckon::{ReckonClient, ReckonClientConfig};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use url::Url;

/// How long one function may hold the Reckon token-refresh lease: well beyond the token
/// request's timeout (set below from it), so a lease never runs out while its holder is
/// still redeeming the refresh token.
const LEASE_TTL: Duration = Duration::from_secs(60);

/// The token request's timeout inside a lease: a third of it, leaving room for the save.
fn token_timeout_within_lease(configured: Duration) -> Duration {
    configured.min(LEASE_TTL / 3)
}

pub type LambdaSyncer = Syncer<ClinikoClient, ReckonClient<LeasedTokenStore>, DynamoState>;

/// A configuration problem, naming the variable or secret; fatal at cold start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WiringError(String);

fn var(name: &str) -> Result<String, WiringError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| WiringError(format!("environment variable {name} is not set")))
}

fn optional_url(name: &str) -> Result<Option<Url>, WiringError> {
    match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => Url::parse(&v)
            .map(Some)
            .map_err(|e| WiringError(format!("{name} is not a valid URL: {e}"))),
    }
}

/// The AWS clients every function shares.
pub struct Aws {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub table: String,
    /// The clinic this deployment serves (`TENANT_ID`, default `default`), checked once.
    pub tenant: TenantId,
}

impl Aws {
    pub async fn from_env() -> Result<Aws, WiringError> {
        let sdk = load_sdk_config().await;
        Ok(Aws {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            s3: aws_sdk_s3::Client::new(&sdk),
            table: var("TABLE_NAME")?,
            tenant: match std::env::var("TENANT_ID")
                .ok()
                .filter(|t| !t.trim().is_empty())
            {
                Some(t) => TenantId::new(&t).map_err(|e| WiringError(format!("TENANT_ID: {e}")))?,
                None => TenantId::default(),
            },
        })
    }

    pub fn state(&self) -> Result<DynamoState, WiringError> {
        DynamoState::new(
            self.dynamodb.clone(),
            self.table.clone(),
            self.tenant.to_string(),
        )
        .map_err(|e| WiringError(format!("TENANT_ID: {e}")))
    }

    /// The work queues, stamping this deployment's tenant on every message.
    pub fn queue(&self) -> Result<SqsQueue, WiringError> {
        Ok(SqsQueue::new(
            self.sqs.clone(),
            QueueUrls {
                patients: var("PATIENTS_QUEUE_URL")?,
                products: var("PRODUCTS_QUEUE_URL")?,
                invoices: var("INVOICES_QUEUE_URL")?,
            },
        )
        .for_tenant(self.tenant.clone()))
    }

    /// The Cliniko client from `CLINIKO_SECRET_ARN` (`{"api_key", "user_agent"}`).
    pub async fn cliniko(&self) -> Result<ClinikoClient, WiringError> {
        let arn = var("CLINIKO_SECRET_ARN")?;
        let text = self
            .secrets
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await
            .map_err(|e| WiringError(format!("reading the Cliniko secret: {e}")))?
            .secret_string()
            .map(|s| SecretString::from(s.to_string()))
            .ok_or_else(|| WiringError("the Cliniko secret has no value".into()))?;
        #[derive(serde::Deserialize)]
        struct Stored {
            api_key: String,
            #[serde(default)]
            user_agent: Option<String>,
        }
        let (key, agent) = if text.expose_secret().trim_start().starts_with('{') {
            let stored: Stored = serde_json::from_str(text.expose_secret()).map_err(|_| {
                WiringError("the Cliniko secret must be {\"api_key\", \"user_agent\"}".into())
            })?;
            (stored.api_key, stored.user_agent)
        } else {
            (text.expose_secret().trim().to_string(), None)
        };
        let agent = match agent.filter(|a| !a.trim().is_empty()) {
            Some(a) => a,
            None => var("CLINIKO_USER_AGENT")?,
        };
        let mut cfg = ClinikoClientConfig::new(SecretString::from(key), agent);
        cfg.base_url = optional_url("CLINIKO_BASE_URL")?;
        ClinikoClient::new(cfg).map_err(|e| WiringError(e.to_string()))
    }

    /// The Reckon client over the tokens secret, from the app secret and `RECKON_BOOK_ID`.
    pub async fn reckon(&self) -> Result<ReckonClient<LeasedTokenStore>, WiringError> {
        let app_arn = var("RECKON_APP_SECRET_ARN")?;
        let app = load_reckon_app_secret(&self.secrets, &app_arn)
            .await
            .map_err(|e| WiringError(e.to_string()))?;
        let book_text = match var("RECKON_BOOK_ID") {
            Ok(book) => book,
            Err(missing) => self
                .book_id_from_app_secret(&app_arn)
                .await?
                .ok_or(missing)?,
        };
        let book: ReckonId = book_text
            .parse()
            .map_err(|_| WiringError("RECKON_BOOK_ID must be the book's GUID".into()))?;
        let receipt_account = std::env::var("RECKON_RECEIPT_ACCOUNT")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "Undeposited Funds".into());
        let redirect =
            Url::parse("http://127.0.0.1:8765/callback").map_err(|e| WiringError(e.to_string()))?;
        let mut cfg = ReckonClientConfig::new(
            app.client_id,
            app.client_secret,
            app.subscription_key,
            book,
            redirect,
            receipt_account,
        )
        .map_err(|e| WiringError(e.to_string()))?;
        if let Some(u) = optional_url("RECKON_API_BASE_URL")? {
            cfg.api_base_url = u;
        }
        if let Some(u) = optional_url("RECKON_IDENTITY_URL")? {
            cfg.identity_url = u;
        }
        cfg.token_timeout = token_timeout_within_lease(cfg.token_timeout);
        let tokens = SecretsTokenStore::new(self.secrets.clone(), var("RECKON_TOKENS_SECRET_ARN")?);
        // One lease owner per execution environment; a refresh round trip plus the save
        // fits well inside the lease, and a waiter outlasts a crashed holder's lease.
        let lease = TokenLease::new(
            self.dynamodb.clone(),
            self.table.clone(),
            self.tenant.to_string(),
            format!("lambda-{}", uuid::Uuid::new_v4()),
            LEASE_TTL,
        )
        .map_err(|e| WiringError(format!("TENANT_ID: {e}")))?;
        let tokens = LeasedTokenStore::new(tokens, lease, LEASE_TTL + Duration::from_secs(15));
        ReckonClient::new(cfg, tokens).map_err(|e| WiringError(e.to_string()))
    }

    /// The app secret may carry the book too (`"book_id"`), so a tenant is one secret.
    async fn book_id_from_app_secret(&self, arn: &str) -> Result<Option<String>, WiringError> {
        let value = self
            .secrets
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| WiringError(format!("reading the Reckon app secret: {e}")))?;
        let parsed: Option<serde_json::Value> = value
            .secret_string()
            .and_then(|text| serde_json::from_str(text).ok());
        Ok(parsed
            .as_ref()
            .and_then(|v| v.get("book_id"))
            .and_then(|b| b.as_str())
            .map(str::to_string))
    }

    /// Where the reconciler writes its reports (`REPORT_BUCKET`).
    pub fn reports(&self) -> Result<S3Reports, WiringError> {
        Ok(S3Reports::new(self.s3.clone(), var("REPORT_BUCKET")?))
    }

    /// Everything a sync worker needs, built once per execution environment, with the
    /// configured accounts checked against the book (the same check as
    /// `cliniko-reckon sync`; notes become warnings).
    pub async fn syncer(&self) -> Result<LambdaSyncer, WiringError> {
        let mut reckon = self.reckon().await?;
        let mut mapping = mapping_from_env();
        checked_accounts(&mut reckon, &mut mapping).await?;
        Ok(Syncer::new(
            self.cliniko().await?,
            reckon,
            self.state()?,
            mapping,
        ))
    }
}

/// The mapping the environment configures: the defaults, with the income accounts from
/// `MAPPING_PRODUCT_INCOME_ACCOUNT` and `MAPPING_SERVICE_INCOME_ACCOUNT` when set.
pub fn mapping_from_env() -> MappingConfig {
    let mut mapping = MappingConfig::default();
    if let Ok(name) = var("MAPPING_PRODUCT_INCOME_ACCOUNT") {
        mapping.product_income_account = name;
    }
    if let Ok(name) = var("MAPPING_SERVICE_INCOME_ACCOUNT") {
        mapping.service_income_account = name;
    }
    mapping
}

/// The one account check (`pipeline::accounts::check_accounts`) for a Lambda: the income
/// accounts of `mapping` and the client's receipt account, checked against the book.
pub async fn checked_accounts<S: cliniko_reckon::ports::TokenStore>(
    reckon: &mut ReckonClient<S>,
    mapping: &mut MappingConfig,
) -> Result<(), WiringError> {
    use cliniko_reckon::pipeline::accounts::{AccountSettings, check_accounts};
    let chart = reckon.ledger_accounts().await.map_err(|e| e.to_string());
    let mut receipt = reckon.config().receipt_account.clone();
    let notes = check_accounts(
        chart.as_deref().map_err(Clone::clone),
        mapping,
        &mut receipt,
        AccountSettings {
            product_income: "MAPPING_PRODUCT_INCOME_ACCOUNT",
            service_income: "MAPPING_SERVICE_INCOME_ACCOUNT",
            receipt: "RECKON_RECEIPT_ACCOUNT",
        },
    )
    .map_err(WiringError)?;
    for note in notes {
        tracing::warn!("{note}");
    }
    reckon.set_receipt_account(receipt);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_request_ends_well_inside_the_refresh_lease() {
        for configured in [
            Duration::from_secs(5),
            Duration::from_secs(60),
            Duration::MAX,
        ] {
            let timeout = token_timeout_within_lease(configured);
            assert!(
                timeout * 2 < LEASE_TTL,
                "{timeout:?} vs lease {LEASE_TTL:?}"
            );
            assert!(timeout <= configured);
        }
    }
}
