//! The clinics of an AWS deployment (`--aws-table TABLE`): `tenants add | list | pause |
//! resume | remove` and `connect` write the tenant item in the state table and the tenant's
//! secrets, so adding a clinic needs no deploy. The functions pick a change up at their next
//! batch or poll. The clinic's TOML is the same file as locally: its credentials go to the
//! tenant's secrets, the rest to the tenant item.

use crate::settings::{Loaded, Scope};
use anyhow::{Context, anyhow, bail};
use cliniko_reckon::adapters::aws::{
    DynamoState, DynamoTenants, SecretsTokenStore, load_sdk_config,
};
use cliniko_reckon::config::parse_tenant_config;
use cliniko_reckon::domain::TenantId;
use cliniko_reckon::ports::{StateStore, TenantDirectory, TenantEntry, TenantStatus};
use secrecy::ExposeSecret;
use std::process::ExitCode;

/// Where the deployment keeps its clinics (the stack's outputs `StateTableName`,
/// `TenantSecretPrefix` and `DataKeyArn`).
#[derive(Debug, Clone)]
pub struct Deployment {
    pub table: String,
    pub secret_prefix: String,
    /// The key new secrets are encrypted with (else Secrets Manager's own key).
    pub kms_key: Option<String>,
}

/// The keys of a clinic's file that hold credentials: never written to the tenant item.
const CREDENTIALS: &[(&str, &str)] = &[
    ("cliniko", "api_key"),
    ("reckon", "client_id"),
    ("reckon", "client_secret"),
    ("reckon", "subscription_key"),
    ("reckon", "refresh_token"),
];

struct Clients {
    directory: DynamoTenants,
    dynamodb: aws_sdk_dynamodb::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

async fn clients(d: &Deployment) -> Clients {
    let sdk = load_sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    Clients {
        directory: DynamoTenants::new(dynamodb.clone(), d.table.clone()),
        dynamodb,
        secrets: aws_sdk_secretsmanager::Client::new(&sdk),
    }
}

impl Deployment {
    /// The flags that name this deployment, for the next command a message suggests.
    fn flags(&self) -> String {
        let mut flags = format!("--aws-table {}", self.table);
        if self.secret_prefix != DEFAULT_SECRET_PREFIX {
            flags.push_str(&format!(" --secret-prefix {}", self.secret_prefix));
        }
        if let Some(key) = &self.kms_key {
            flags.push_str(&format!(" --kms-key {key}"));
        }
        flags
    }

    /// Refuses a prefix that is not a secret-name folder (as the stack does).
    pub fn check(&self) -> anyhow::Result<()> {
        let ok = self.secret_prefix.ends_with('/')
            && self.secret_prefix.len() <= 200
            && self
                .secret_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
        if !ok {
            bail!(
                "--secret-prefix {:?} must be secret-name characters (letters, digits, /_+=.@-) ending in '/', as the stack's TenantSecretPrefix output",
                self.secret_prefix
            );
        }
        Ok(())
    }
}

const DEFAULT_SECRET_PREFIX: &str = "cliniko-reckon/tenants/";

fn cliniko_secret(d: &Deployment, id: &TenantId) -> String {
    format!("{}{id}/cliniko", d.secret_prefix)
}

fn tokens_secret(d: &Deployment, id: &TenantId) -> String {
    format!("{}{id}/reckon-tokens", d.secret_prefix)
}

/// The clinic's file without its credentials, as the tenant item keeps it.
fn without_credentials(text: &str) -> anyhow::Result<String> {
    let mut table: toml::Table = text.parse().map_err(|e| anyhow!("{e}"))?;
    for (section, key) in CREDENTIALS {
        if let Some(toml::Value::Table(t)) = table.get_mut(*section) {
            t.remove(*key);
        }
    }
    Ok(toml::to_string(&table)?)
}

/// What the functions need of a tenant item beyond parsing: a Cliniko User-Agent with a
/// contact, and URLs that are URLs.
fn check_for_functions(config: &cliniko_reckon::config::TenantConfig) -> anyhow::Result<()> {
    let agent = config.cliniko.user_agent.as_deref().unwrap_or_default();
    if !crate::settings::user_agent_has_contact(agent) {
        bail!(
            "cliniko.user_agent must name the app and a contact email, e.g. \"Clinic Sync (ops@example.com)\""
        );
    }
    for (key, value) in [
        ("cliniko.base_url", &config.cliniko.base_url),
        ("reckon.api_base_url", &config.reckon.api_base_url),
        ("reckon.identity_url", &config.reckon.identity_url),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            let url =
                url::Url::parse(v.trim()).map_err(|e| anyhow!("{key} is not a valid URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                bail!("{key} must be an http(s) URL");
            }
        }
    }
    Ok(())
}

/// Creates or updates a secret's value; a secret scheduled for deletion (the clinic was
/// removed less than 7 days ago) is restored first.
async fn put_secret(c: &Clients, d: &Deployment, name: &str, value: &str) -> anyhow::Result<()> {
    if let Ok(found) = c.secrets.describe_secret().secret_id(name).send().await
        && found.deleted_date().is_some()
    {
        c.secrets
            .restore_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "restoring secret {name} (scheduled for deletion): {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                )
            })?;
        println!("secret {name} was scheduled for deletion: restored");
    }
    let updated = c
        .secrets
        .put_secret_value()
        .secret_id(name)
        .secret_string(value)
        .send()
        .await;
    match updated {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            let mut create = c.secrets.create_secret().name(name).secret_string(value);
            if let Some(key) = &d.kms_key {
                create = create.kms_key_id(key);
            }
            create.send().await.map_err(|e| {
                anyhow!(
                    "creating secret {name}: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                )
            })?;
            Ok(())
        }
        Err(e) => Err(anyhow!(
            "writing secret {name}: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
        )),
    }
}

/// `tenants add ID --config FILE --aws-table T`: the tenant item from the file (credentials
/// removed) and the Cliniko key into `{prefix}{id}/cliniko`. Re-adding replaces the
/// configuration and keeps the status.
pub async fn add(scope: &Scope, d: &Deployment, id: &TenantId) -> anyhow::Result<ExitCode> {
    let Some(path) = scope.config.as_deref() else {
        bail!("tenants add {id} --aws-table needs the clinic's file: --config FILE");
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let config =
        parse_tenant_config(&text).map_err(|e| anyhow!("config file {}: {e}", path.display()))?;
    let mut loaded = Loaded::load(Some(path))?;
    loaded.use_env = false;
    let book = loaded
        .file
        .reckon
        .book_id
        .as_deref()
        .and_then(|b| uuid::Uuid::parse_str(b.trim()).ok())
        .ok_or_else(|| {
            anyhow!(
                "reckon.book_id in {} must be the Reckon book's GUID",
                path.display()
            )
        })?;
    // As the functions will build the clinic: a bad value is found now, not at its first poll.
    check_for_functions(&config).with_context(|| format!("tenant {id}: {}", path.display()))?;
    // Only from the clinic's own file: a key left in the shell from another clinic would
    // sync that clinic's patients into this clinic's book.
    let api_key = config
        .cliniko
        .api_key
        .clone()
        .filter(|k| !k.trim().is_empty());
    d.check()?;
    let c = clients(d).await;
    let existing = c.directory.tenant(id).await?;
    // Its links point into the book it synced; another book needs a fresh start.
    if let Some(old) = &existing
        && let Some(old_book) = parse_tenant_config(&old.config)
            .ok()
            .and_then(|o| o.reckon.book_id)
            .and_then(|b| uuid::Uuid::parse_str(b.trim()).ok())
        && old_book != book
    {
        bail!(
            "tenant {id} syncs into Reckon book {old_book}, and its links point there; to sync into {book}, `tenants remove {id}` first (its Reckon records are adopted again, not duplicated)"
        );
    }
    if existing.is_none() && api_key.is_none() {
        bail!(
            "cliniko.api_key is missing from {}: it goes into the secret {}",
            path.display(),
            cliniko_secret(d, id)
        );
    }
    for other in c.directory.tenants().await? {
        if other.id == *id {
            continue;
        }
        // As GUIDs, so braces, hyphens or case never let a second tenant onto one book.
        let same_book = parse_tenant_config(&other.config)
            .ok()
            .and_then(|o| o.reckon.book_id)
            .and_then(|b| uuid::Uuid::parse_str(b.trim()).ok())
            .is_some_and(|b| b == book);
        if same_book {
            bail!(
                "tenant {} already syncs into Reckon book {book}: one book, one tenant, or every record is written twice",
                other.id
            );
        }
    }
    if let Some(key) = api_key {
        let value = serde_json::json!({ "api_key": key }).to_string();
        put_secret(&c, d, &cliniko_secret(d, id), &value).await?;
    }
    let now = chrono::Utc::now();
    c.directory
        .put_tenant(&TenantEntry {
            id: id.clone(),
            config: without_credentials(&text)?,
            status: TenantStatus::Active,
            reason: None,
            added_at: now,
            changed_at: now,
        })
        .await?;
    if existing.is_some() {
        println!(
            "tenant {id}: configuration replaced in {} (status kept)",
            d.table
        );
    } else {
        println!(
            "tenant {id} added to {}; Cliniko key in {}. Next: `cliniko-reckon {} --tenant {id} connect --config APP.toml` (the Reckon app's credentials; without reckon.refresh_token the browser flow runs)",
            d.table,
            cliniko_secret(d, id),
            d.flags()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct TenantView {
    id: String,
    status: String,
    reason: Option<String>,
    added_at: String,
    changed_at: String,
    failed: usize,
    /// The most recent entity watermark: when the clinic was last read from Cliniko.
    last_polled: Option<String>,
}

pub async fn list(d: &Deployment, json: bool) -> anyhow::Result<ExitCode> {
    let c = clients(d).await;
    let mut views = Vec::new();
    for t in c.directory.tenants().await? {
        let state = DynamoState::new(c.dynamodb.clone(), d.table.clone(), t.id.to_string())?;
        views.push(TenantView {
            id: t.id.to_string(),
            status: t.status.as_str().into(),
            reason: t.reason.clone(),
            added_at: t.added_at.to_rfc3339(),
            changed_at: t.changed_at.to_rfc3339(),
            failed: state.failures().await?.len(),
            last_polled: state
                .watermarks()
                .await?
                .iter()
                .map(|(_, at)| *at)
                .max()
                .map(|at| at.to_rfc3339()),
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(ExitCode::SUCCESS);
    }
    if views.is_empty() {
        println!(
            "no tenants in {} (add one with `tenants add ID --config FILE --aws-table {}`)",
            d.table, d.table
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<16} {:>7}  {:<32} changed",
        "tenant", "status", "failed", "last polled"
    );
    for v in &views {
        println!(
            "{:<20} {:<16} {:>7}  {:<32} {}",
            v.id,
            v.status,
            v.failed,
            v.last_polled.as_deref().unwrap_or("-"),
            v.changed_at
        );
        if let Some(r) = &v.reason {
            println!("{:<20} {r}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn set_status(
    d: &Deployment,
    id: &TenantId,
    status: TenantStatus,
    reason: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let c = clients(d).await;
    let Some(entry) = c.directory.tenant(id).await? else {
        bail!("no tenant {id} in {}", d.table);
    };
    // A paused clinic that was disconnected would otherwise come back without its Reckon.
    if entry.status == TenantStatus::NeedsReconnect {
        bail!(
            "tenant {id} needs Reckon connecting again: `cliniko-reckon {} --tenant {id} connect --config APP.toml` makes it active",
            d.flags()
        );
    }
    if entry.status == status && reason.is_none() {
        println!("tenant {id} is already {}", status.as_str());
        return Ok(ExitCode::SUCCESS);
    }
    c.directory
        .set_tenant_status(id, status, reason, chrono::Utc::now())
        .await?;
    match status {
        TenantStatus::Paused => {
            println!("tenant {id} paused: the functions leave it alone until `tenants resume {id}`")
        }
        _ => println!("tenant {id} active: the next poll picks up where it stopped"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes the tenant item and all of its state, and schedules its secrets for deletion
/// (Secrets Manager keeps them 7 days, `restore-secret` brings them back).
pub async fn remove(d: &Deployment, id: &TenantId) -> anyhow::Result<ExitCode> {
    let c = clients(d).await;
    if !c.directory.remove_tenant(id).await? {
        bail!("no tenant {id} in {}", d.table);
    }
    for name in [cliniko_secret(d, id), tokens_secret(d, id)] {
        let deleted = c
            .secrets
            .delete_secret()
            .secret_id(&name)
            .recovery_window_in_days(7)
            .send()
            .await;
        match deleted {
            Ok(_) => println!("secret {name} scheduled for deletion in 7 days"),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(e) => eprintln!(
                "warning: secret {name} not deleted: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ),
        }
    }
    println!(
        "tenant {id} removed with its sync state; its Cliniko account and Reckon book are untouched"
    );
    Ok(ExitCode::SUCCESS)
}

/// `connect` for a tenant of the deployment: the OAuth flow with the app of `--config` (or
/// the environment) for the book the tenant item names; the token pair goes straight into
/// `{prefix}{id}/reckon-tokens`, and a tenant that needed reconnecting is active again.
pub async fn connect(
    scope: &Scope,
    d: &Deployment,
    refresh_token: Option<String>,
    timeout: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    if scope.tenant.is_none() {
        bail!(
            "connect with --aws-table needs the clinic: `cliniko-reckon {} --tenant ID connect --config APP.toml`",
            d.flags()
        );
    }
    let id = scope.tenant_id();
    let c = clients(d).await;
    let Some(entry) = c.directory.tenant(&id).await? else {
        bail!(
            "no tenant {id} in {} (add it first with `tenants add {id} --config FILE --aws-table {}`)",
            d.table,
            d.table
        );
    };
    let item = parse_tenant_config(&entry.config).map_err(|e| anyhow!("tenant {id} item: {e}"))?;
    // The app's credentials from --config or the environment; the book and endpoints from
    // the tenant item, so the tokens are for the book the functions write.
    let mut loaded = Loaded::load(scope.config.as_deref())?;
    loaded.file.reckon.book_id = item.reckon.book_id.clone();
    if item.reckon.api_base_url.is_some() {
        loaded.file.reckon.api_base_url = item.reckon.api_base_url.clone();
    }
    if item.reckon.identity_url.is_some() {
        loaded.file.reckon.identity_url = item.reckon.identity_url.clone();
    }
    let mut reckon = loaded.reckon()?;
    if let Some(token) = refresh_token {
        reckon.refresh_token = Some(secrecy::SecretString::from(token));
    }
    // Make sure the secret exists with the deployment's key before tokens are spent.
    let name = tokens_secret(d, &id);
    let store = SecretsTokenStore::new(c.secrets.clone(), name.clone());
    let exists = c
        .secrets
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .is_ok();
    if !exists {
        // Empty fields: the shape the functions read as "not connected yet".
        let empty = serde_json::json!({"access_token": "", "refresh_token": "", "expires_at": ""});
        put_secret(&c, d, &name, &empty.to_string()).await?;
    }
    crate::clients::connect(&reckon, store.clone(), timeout).await?;
    let saved = cliniko_reckon::ports::TokenStore::load(&store).await?;
    if saved
        .as_ref()
        .is_none_or(|t| t.refresh_token.expose_secret().is_empty())
    {
        bail!("Reckon answered without a token pair");
    }
    let reactivated = entry.status == TenantStatus::NeedsReconnect
        && c.directory
            .set_tenant_status(&id, TenantStatus::Active, None, chrono::Utc::now())
            .await?;
    println!(
        "Reckon connected for tenant {id}; tokens in {name}{}",
        if reactivated {
            " (the tenant is active again; its kept work is queued at the next poll)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_item_never_holds_a_credential() {
        let text = "[cliniko]\napi_key = \"k\"\nuser_agent = \"A (a@b.c)\"\n[reckon]\nbook_id = \"b\"\nclient_secret = \"s\"\nsubscription_key = \"x\"\n[sync]\noverlap_seconds = 60\n";
        let kept = without_credentials(text).unwrap_or_default();
        let parsed = parse_tenant_config(&kept).ok();
        assert_eq!(
            parsed.as_ref().map(|c| c.credential_keys().len()),
            Some(0),
            "{kept}"
        );
        assert_eq!(parsed.as_ref().map(|c| c.sync.overlap_seconds), Some(60));
        assert!(
            kept.contains("A (a@b.c)") && !kept.contains("\"k\""),
            "{kept}"
        );
    }
}
