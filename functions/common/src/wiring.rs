//! Cold-start wiring shared by the functions: the deployment's settings from the
//! environment (the contract with `infra/lib/constants.ts`), and for each tenant of the
//! directory its clients, built from the tenant item's configuration and the tenant's
//! secrets the first time the tenant comes by.
//!
//! | Variable | Used by | Meaning |
//! |---|---|---|
//! | `TABLE_NAME` | all | the state table (tenant items, every tenant's state) |
//! | `PATIENTS_QUEUE_URL`, `PRODUCTS_QUEUE_URL`, `INVOICES_QUEUE_URL` | poller, reconciler | work queues (the reconciler queues repairs) |
//! | `TENANT_SECRET_PREFIX` | all | where each tenant's secrets are: `{prefix}{tenant}/cliniko` (`{"api_key"}` or the bare key) and `{prefix}{tenant}/reckon-tokens` (the OAuth token pair, read and rotated); default `cliniko-reckon/tenants/` |
//! | `RECKON_APP_SECRET_ARN` | workers, reconciler | the consultancy's Reckon app, one for every tenant: `{"client_id", "client_secret", "subscription_key"}` |
//! | `REPORT_BUCKET` | reconciler | the S3 bucket for reconciliation reports (under each tenant's prefix) |
//! | `CLINIKO_USER_AGENT` | all | when a tenant's configuration names no `cliniko.user_agent` |
//! | `MAX_RECEIVE_COUNT` | workers | the queue's `maxReceiveCount` |
//! | `POLL_ROUNDS`, `POLL_PAUSE_SECONDS`, `POLL_CONCURRENCY` | poller | rounds per invocation, the pause between them, tenants polled at once |
//!
//! A tenant's configuration is the same TOML a clinic's file holds locally
//! (`cliniko_reckon::config`), minus credentials, which live in its secrets: a tenant item
//! that carries one is refused, naming the key. Its Reckon book is `reckon.book_id`; endpoint
//! overrides (`cliniko.base_url`, `reckon.api_base_url`, `reckon.identity_url`), accounts,
//! mapping and pacing come from the same file.
//!
//! The AWS endpoint comes from the SDK's own configuration (`AWS_ENDPOINT_URL` for a local
//! emulator); there is no local-mode switch.

use crate::HoldState;
use crate::tenancy::{BuildForTenant, TenantUnavailable, Tenants};
use cliniko_reckon::adapters::aws::{
    AppSecretsError, DynamoState, DynamoTenants, LeasedTokenStore, QueueUrls, ReckonAppSecret,
    S3Reports, SecretsTokenStore, SqsQueue, TokenLease, load_cliniko_api_key,
    load_reckon_app_secret, load_sdk_config,
};
use cliniko_reckon::cliniko::{ClinikoClient, ClinikoClientConfig};
use cliniko_reckon::config::{TenantConfig, parse_tenant_config};
use cliniko_reckon::domain::{ReckonId, TenantId};
use cliniko_reckon::mapping::MappingConfig;
use cliniko_reckon::pipeline::Syncer;
use cliniko_reckon::ports::{StateError, TenantEntry};
use cliniko_reckon::reckon::{ReckonClient, ReckonClientConfig};
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

pub const DEFAULT_SECRET_PREFIX: &str = "cliniko-reckon/tenants/";
const DEFAULT_RECKON_API: &str = "https://api.reckon.com/r1/v2";
const DEFAULT_RECKON_IDENTITY: &str = "https://identity.reckon.com";
const DEFAULT_RECEIPT_ACCOUNT: &str = "Undeposited Funds";

pub type LambdaReckon = ReckonClient<LeasedTokenStore>;
pub type LambdaSyncer = Syncer<ClinikoClient, LambdaReckon, DynamoState>;

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

/// The secret names of one tenant, under the deployment's prefix.
pub fn cliniko_secret_id(prefix: &str, tenant: &TenantId) -> String {
    format!("{prefix}{tenant}/cliniko")
}

pub fn tokens_secret_id(prefix: &str, tenant: &TenantId) -> String {
    format!("{prefix}{tenant}/reckon-tokens")
}

/// The AWS clients and deployment settings every function shares.
#[derive(Clone)]
pub struct Aws {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub table: String,
    /// Where each tenant's secrets are (`TENANT_SECRET_PREFIX`).
    pub secret_prefix: String,
    /// Used when a tenant's configuration names no `cliniko.user_agent`.
    pub default_user_agent: Option<String>,
}

impl Aws {
    pub async fn from_env() -> Result<Aws, WiringError> {
        let sdk = load_sdk_config().await;
        Ok(Aws::new(&sdk, var("TABLE_NAME")?)
            .with_secret_prefix(
                std::env::var("TENANT_SECRET_PREFIX")
                    .ok()
                    .filter(|p| !p.trim().is_empty())
                    .unwrap_or_else(|| DEFAULT_SECRET_PREFIX.into()),
            )
            .with_default_user_agent(var("CLINIKO_USER_AGENT").ok()))
    }

    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Aws {
        Aws {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            s3: aws_sdk_s3::Client::new(sdk),
            table: table.into(),
            secret_prefix: DEFAULT_SECRET_PREFIX.into(),
            default_user_agent: None,
        }
    }

    pub fn with_secret_prefix(mut self, prefix: impl Into<String>) -> Aws {
        self.secret_prefix = prefix.into();
        self
    }

    pub fn with_default_user_agent(mut self, agent: Option<String>) -> Aws {
        self.default_user_agent = agent;
        self
    }

    pub fn directory(&self) -> DynamoTenants {
        DynamoTenants::new(self.dynamodb.clone(), self.table.clone())
    }

    pub fn state(&self, tenant: &TenantId) -> Result<DynamoState, StateError> {
        DynamoState::new(
            self.dynamodb.clone(),
            self.table.clone(),
            tenant.to_string(),
        )
    }

    /// The work queues from the environment.
    pub fn queue_urls() -> Result<QueueUrls, WiringError> {
        Ok(QueueUrls {
            patients: var("PATIENTS_QUEUE_URL")?,
            products: var("PRODUCTS_QUEUE_URL")?,
            invoices: var("INVOICES_QUEUE_URL")?,
        })
    }

    /// Where the reconciler writes its reports (`REPORT_BUCKET`).
    pub fn reports(&self) -> Result<S3Reports, WiringError> {
        Ok(S3Reports::new(self.s3.clone(), var("REPORT_BUCKET")?))
    }

    /// The consultancy's Reckon app (`RECKON_APP_SECRET_ARN`), read once at cold start.
    pub async fn reckon_app(&self) -> Result<ReckonAppSecret, WiringError> {
        let arn = var("RECKON_APP_SECRET_ARN")?;
        load_reckon_app_secret(&self.secrets, &arn)
            .await
            .map_err(|e| WiringError(e.to_string()))
    }

    /// The tenant's configuration from its directory entry; credentials in it are refused.
    pub fn config(&self, entry: &TenantEntry) -> Result<TenantConfig, TenantUnavailable> {
        let tenant = &entry.id;
        let config = parse_tenant_config(&entry.config)
            .map_err(|e| TenantUnavailable::misconfigured(tenant, format!("configuration: {e}")))?;
        let held = config.credential_keys();
        if !held.is_empty() {
            return Err(TenantUnavailable::misconfigured(
                tenant,
                format!(
                    "configuration holds credentials ({}); they belong in the tenant's secrets ({}…)",
                    held.join(", "),
                    cliniko_secret_id(&self.secret_prefix, tenant).trim_end_matches("cliniko")
                ),
            ));
        }
        Ok(config)
    }

    /// The tenant's Cliniko client: its key from `{prefix}{tenant}/cliniko`, its own pacing.
    pub async fn cliniko(
        &self,
        tenant: &TenantId,
        config: &TenantConfig,
    ) -> Result<ClinikoClient, TenantUnavailable> {
        let secret_id = cliniko_secret_id(&self.secret_prefix, tenant);
        let key = load_cliniko_api_key(&self.secrets, &secret_id)
            .await
            .map_err(|e| secret_error(tenant, &e))?;
        let agent = config
            .cliniko
            .user_agent
            .clone()
            .filter(|a| !a.trim().is_empty())
            .or_else(|| self.default_user_agent.clone())
            .ok_or_else(|| {
                TenantUnavailable::misconfigured(
                    tenant,
                    "cliniko.user_agent is missing (and CLINIKO_USER_AGENT is not set)",
                )
            })?;
        let mut cfg = ClinikoClientConfig::new(key, agent);
        cfg.base_url = config_url(
            tenant,
            "cliniko.base_url",
            config.cliniko.base_url.as_deref(),
        )?;
        cfg.requests_per_minute = config.sync.cliniko_requests_per_minute;
        ClinikoClient::new(cfg)
            .map_err(|e| TenantUnavailable::misconfigured(tenant, format!("cliniko: {e}")))
    }

    /// The tenant's Reckon client over `{prefix}{tenant}/reckon-tokens`, behind the tenant's
    /// own token-refresh lease, for the book its configuration names.
    pub fn reckon(
        &self,
        tenant: &TenantId,
        config: &TenantConfig,
        app: &ReckonAppSecret,
    ) -> Result<LambdaReckon, TenantUnavailable> {
        let bad = |detail: String| TenantUnavailable::misconfigured(tenant, detail);
        let book_text = config
            .reckon
            .book_id
            .as_deref()
            .filter(|b| !b.trim().is_empty())
            .ok_or_else(|| bad("reckon.book_id is missing".into()))?;
        let book: ReckonId = book_text.trim().parse().map_err(|_| {
            bad(format!(
                "reckon.book_id must be the book's GUID, got {book_text:?}"
            ))
        })?;
        let receipt_account = config
            .reckon
            .receipt_account
            .clone()
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_RECEIPT_ACCOUNT.into());
        // The redirect is only used by `connect`, which runs on a person's machine.
        let redirect =
            Url::parse("http://127.0.0.1:8765/callback").map_err(|e| bad(e.to_string()))?;
        let mut cfg = ReckonClientConfig::new(
            app.client_id.clone(),
            app.client_secret.clone(),
            app.subscription_key.clone(),
            book,
            redirect,
            receipt_account,
        )
        .map_err(|e| bad(format!("reckon: {e}")))?;
        cfg.api_base_url = config_url(
            tenant,
            "reckon.api_base_url",
            config.reckon.api_base_url.as_deref(),
        )?
        .unwrap_or(Url::parse(DEFAULT_RECKON_API).map_err(|e| bad(e.to_string()))?);
        cfg.identity_url = config_url(
            tenant,
            "reckon.identity_url",
            config.reckon.identity_url.as_deref(),
        )?
        .unwrap_or(Url::parse(DEFAULT_RECKON_IDENTITY).map_err(|e| bad(e.to_string()))?);
        cfg.requests_per_minute = config.sync.reckon_requests_per_minute;
        cfg.token_timeout = token_timeout_within_lease(cfg.token_timeout);
        let tokens = SecretsTokenStore::new(
            self.secrets.clone(),
            tokens_secret_id(&self.secret_prefix, tenant),
        );
        // One lease owner per execution environment and tenant; a refresh round trip plus
        // the save fits well inside the lease, and a waiter outlasts a crashed holder's.
        let lease = TokenLease::new(
            self.dynamodb.clone(),
            self.table.clone(),
            tenant.to_string(),
            format!("lambda-{}", uuid::Uuid::new_v4()),
            LEASE_TTL,
        )
        .map_err(|e| bad(e.to_string()))?;
        let tokens = LeasedTokenStore::new(tokens, lease, LEASE_TTL + Duration::from_secs(15));
        ReckonClient::new(cfg, tokens).map_err(|e| bad(format!("reckon: {e}")))
    }
}

impl Aws {
    /// The tenant's state, for a builder: a bad tenant id is its configuration's fault.
    fn tenant_state(&self, tenant: &TenantId) -> Result<DynamoState, TenantUnavailable> {
        self.state(tenant)
            .map_err(|e| TenantUnavailable::misconfigured(tenant, e))
    }

    /// The work queues, stamping `tenant` on every message.
    fn tenant_queue(&self, queues: &QueueUrls, tenant: &TenantId) -> SqsQueue {
        SqsQueue::new(self.sqs.clone(), queues.clone()).for_tenant(tenant.clone())
    }

    /// The tenant's Reckon client and the mapping, after the one account check against its
    /// book (the workers write with it, the reconciler compares with it).
    async fn checked_reckon(
        &self,
        tenant: &TenantId,
        config: &TenantConfig,
        app: &ReckonAppSecret,
    ) -> Result<(LambdaReckon, MappingConfig), TenantUnavailable> {
        let mut reckon = self.reckon(tenant, config, app)?;
        let mut mapping = config.mapping.clone();
        checked_accounts(&mut reckon, &mut mapping)
            .await
            .map_err(|e| TenantUnavailable::misconfigured(tenant, e))?;
        Ok((reckon, mapping))
    }
}

fn config_url(
    tenant: &TenantId,
    key: &str,
    value: Option<&str>,
) -> Result<Option<Url>, TenantUnavailable> {
    match value.filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => Url::parse(v.trim()).map(Some).map_err(|e| {
            TenantUnavailable::misconfigured(tenant, format!("{key} is not a valid URL: {e}"))
        }),
    }
}

fn secret_error(tenant: &TenantId, e: &AppSecretsError) -> TenantUnavailable {
    if e.is_retryable() {
        TenantUnavailable::passing(tenant, e)
    } else {
        TenantUnavailable::misconfigured(tenant, e)
    }
}

/// Builds a sync worker's syncer for each tenant, with the one account check
/// (`pipeline::accounts::check_accounts`) against the tenant's book; its notes become
/// warnings, and a book that cannot be read now is checked again at the next build.
pub struct WorkerBuilder {
    pub aws: Aws,
    pub app: ReckonAppSecret,
}

impl BuildForTenant for WorkerBuilder {
    type Built = LambdaSyncer;

    async fn build(&self, entry: &TenantEntry) -> Result<LambdaSyncer, TenantUnavailable> {
        let tenant = &entry.id;
        let config = self.aws.config(entry)?;
        let (reckon, mapping) = self.aws.checked_reckon(tenant, &config, &self.app).await?;
        let cliniko = self.aws.cliniko(tenant, &config).await?;
        // The businesses the approval workflow names must be Cliniko's (one request, only
        // when any is named): a misspelt one would silently approve what should wait.
        if !mapping.invoicing.businesses.is_empty() {
            use cliniko_reckon::ports::ClinikoSource;
            let businesses = cliniko.businesses().await.map_err(|e| {
                TenantUnavailable::passing(tenant, format!("listing Cliniko businesses: {e}"))
            })?;
            mapping
                .invoicing
                .check_businesses(&businesses)
                .map_err(|e| TenantUnavailable::misconfigured(tenant, e))?;
        }
        Ok(Syncer::new(
            cliniko,
            reckon,
            self.aws.tenant_state(tenant)?,
            mapping,
        ))
    }
}

impl HoldState<DynamoState> for WorkerBuilder {
    fn state(&self, tenant: &TenantId) -> Result<DynamoState, StateError> {
        self.aws.state(tenant)
    }
}

/// What the poller needs per tenant: its Cliniko client (kept, with its pacing, across
/// invocations), its state and the queues stamping its id.
pub struct PollParts {
    pub source: ClinikoClient,
    pub state: DynamoState,
    pub queue: SqsQueue,
    /// From the tenant's `sync.overlap_seconds`.
    pub poll: cliniko_reckon::pipeline::PollConfig,
}

pub struct PollerBuilder {
    pub aws: Aws,
    pub queues: QueueUrls,
}

impl BuildForTenant for PollerBuilder {
    type Built = PollParts;

    async fn build(&self, entry: &TenantEntry) -> Result<PollParts, TenantUnavailable> {
        let tenant = &entry.id;
        let config = self.aws.config(entry)?;
        Ok(PollParts {
            source: self.aws.cliniko(tenant, &config).await?,
            state: self.aws.tenant_state(tenant)?,
            queue: self.aws.tenant_queue(&self.queues, tenant),
            poll: cliniko_reckon::pipeline::PollConfig {
                overlap: chrono::TimeDelta::seconds(config.sync.overlap_seconds),
                kinds: config.invoicing.appointments.source.kinds(),
            },
        })
    }
}

/// What the reconciler needs per tenant.
pub struct ReconcileParts {
    pub source: ClinikoClient,
    pub book: LambdaReckon,
    pub state: DynamoState,
    pub queue: SqsQueue,
    pub mapping: MappingConfig,
}

pub struct ReconcilerBuilder {
    pub aws: Aws,
    pub app: ReckonAppSecret,
    pub queues: QueueUrls,
}

impl BuildForTenant for ReconcilerBuilder {
    type Built = ReconcileParts;

    async fn build(&self, entry: &TenantEntry) -> Result<ReconcileParts, TenantUnavailable> {
        let tenant = &entry.id;
        let config = self.aws.config(entry)?;
        let (book, mapping) = self.aws.checked_reckon(tenant, &config, &self.app).await?;
        Ok(ReconcileParts {
            source: self.aws.cliniko(tenant, &config).await?,
            book,
            state: self.aws.tenant_state(tenant)?,
            queue: self.aws.tenant_queue(&self.queues, tenant),
            mapping,
        })
    }
}

pub type WorkerTenants = Tenants<DynamoTenants, WorkerBuilder>;
pub type PollerTenants = Tenants<DynamoTenants, PollerBuilder>;
pub type ReconcilerTenants = Tenants<DynamoTenants, ReconcilerBuilder>;

/// The one check of the book (`ReckonClient::check_book`) for a Lambda: the income accounts
/// of `mapping`, the client's receipt account and the payment terms.
pub async fn checked_accounts<S: cliniko_reckon::ports::TokenStore>(
    reckon: &mut ReckonClient<S>,
    mapping: &mut MappingConfig,
) -> Result<(), String> {
    let notes = reckon.check_book(mapping).await?;
    for note in notes {
        tracing::warn!("{note}");
    }
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
