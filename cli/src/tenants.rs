//! `tenants add | list | pause | resume | remove`: the clinics one state file serves. Each
//! clinic keeps its own TOML file (credentials, book, mapping, pacing); the state file
//! records where it is, whether the clinic is synced, and all of its sync state.

use crate::settings::{self, Loaded, Scope};
use anyhow::{Context, bail};
use cliniko_reckon::domain::TenantId;
use cliniko_reckon::ports::{StateStore, TenantDirectory, TenantEntry, TenantStatus};
use serde::Serialize;
use std::process::ExitCode;

/// Registers a clinic, or points a registered one at another file. The file must load and
/// hold both sides' settings, so a typo is found now rather than at the first sync.
pub async fn add(scope: &Scope, id: &TenantId) -> anyhow::Result<ExitCode> {
    if id.as_str() == cliniko_reckon::domain::DEFAULT_TENANT {
        bail!(
            "`default` is the clinic of --config and the environment; register this clinic under its own name"
        );
    }
    let Some(config) = scope.config.as_deref() else {
        bail!(
            "tenants add {id} needs the clinic's file: `cliniko-reckon tenants add {id} --config FILE`"
        );
    };
    let path =
        std::path::absolute(config).with_context(|| format!("resolving {}", config.display()))?;
    let mut loaded = Loaded::load(Some(&path))?;
    loaded.use_env = false;
    loaded
        .cliniko()
        .with_context(|| format!("tenant {id}: {}", path.display()))?;
    let book = loaded
        .reckon()
        .with_context(|| format!("tenant {id}: {}", path.display()))?
        .book_id;
    // Not the writer lock: a running `sync --watch --all-tenants` picks the clinic up.
    let store = settings::open_state(&scope.state_path())?;
    // Two tenants on one book would both write every record into it.
    for other in store.tenants().await? {
        if other.id == *id {
            continue;
        }
        let same_file = std::path::Path::new(&other.config) == path;
        let same_book = Loaded::load(Some(std::path::Path::new(&other.config)))
            .ok()
            .and_then(|mut l| {
                l.use_env = false;
                l.reckon().ok()
            })
            .is_some_and(|r| r.book_id.eq_ignore_ascii_case(&book));
        if same_file || same_book {
            bail!(
                "tenant {} already syncs into Reckon book {book} ({}): one book, one tenant, or every record is written twice",
                other.id,
                other.config
            );
        }
    }
    let now = chrono::Utc::now();
    let existed = store.tenant(id).await?.is_some();
    store
        .put_tenant(&TenantEntry {
            id: id.clone(),
            config: path.display().to_string(),
            status: TenantStatus::Active,
            reason: None,
            added_at: now,
            changed_at: now,
        })
        .await?;
    if existed {
        println!("tenant {id}: configuration now {}", path.display());
    } else {
        println!(
            "tenant {id} added ({}). Next: `cliniko-reckon --tenant {id} connect`, then `cliniko-reckon --tenant {id} sync --once --dry-run` to preview",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct TenantView {
    id: String,
    status: String,
    reason: Option<String>,
    config: String,
    added_at: String,
    linked: u64,
    queued: u64,
    failed: usize,
    /// The oldest entity watermark: how far behind Cliniko the clinic's sync is.
    synced_up_to: Option<String>,
}

pub async fn list(scope: &Scope, json: bool) -> anyhow::Result<ExitCode> {
    let path = scope.state_path();
    if !path.exists() {
        bail!("no state file at {}", path.display());
    }
    let store = settings::open_state(&path)?;
    let mut views = Vec::new();
    for t in store.tenants().await? {
        let own = store.for_tenant(&t.id);
        views.push(TenantView {
            id: t.id.to_string(),
            status: t.status.as_str().to_string(),
            reason: t.reason.clone(),
            config: t.config.clone(),
            added_at: t.added_at.to_rfc3339(),
            linked: own.cross_ref_counts()?.iter().map(|(_, n)| n).sum(),
            queued: own.queue_depth()?.pending,
            failed: own.failures().await?.len(),
            synced_up_to: own
                .watermarks()?
                .iter()
                .map(|(_, at)| *at)
                .min()
                .map(|at| at.to_rfc3339()),
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(ExitCode::SUCCESS);
    }
    if views.is_empty() {
        println!("no tenants (add one with `cliniko-reckon tenants add ID --config FILE`)");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<16} {:>7} {:>7} {:>7}  {:<26} config",
        "tenant", "status", "linked", "queued", "failed", "synced up to"
    );
    for v in &views {
        println!(
            "{:<20} {:<16} {:>7} {:>7} {:>7}  {:<26} {}",
            v.id,
            v.status,
            v.linked,
            v.queued,
            v.failed,
            v.synced_up_to.as_deref().unwrap_or("-"),
            v.config
        );
        if let Some(r) = &v.reason {
            println!("{:<20} {r}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pause` / `resume`: the clinic's state is kept either way.
pub async fn set_status(
    scope: &Scope,
    id: &TenantId,
    status: TenantStatus,
    reason: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if !scope.state_path().exists() {
        bail!("no state file at {}", scope.state_path().display());
    }
    let store = settings::open_state(&scope.state_path())?;
    // Paused and then resumed, a disconnected clinic would come back without its Reckon.
    if let Some(t) = store.tenant(id).await?
        && t.status == TenantStatus::NeedsReconnect
    {
        bail!(
            "tenant {id} needs Reckon connecting again: `cliniko-reckon --tenant {id} connect` makes it active"
        );
    }
    let found = store
        .set_tenant_status(id, status, reason, chrono::Utc::now())
        .await?;
    if !found {
        bail!("no tenant {id} in {}", scope.state_path().display());
    }
    match status {
        TenantStatus::Paused => println!(
            "tenant {id} paused: `sync` leaves it alone until `cliniko-reckon tenants resume {id}`"
        ),
        _ => println!("tenant {id} active: the next sync picks up where it stopped"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Forgets a clinic: its registration and all of its sync state (links, queue, failures,
/// audit log, Reckon tokens). Cliniko and Reckon are untouched; adding it again adopts
/// what the sync made (by email, name and reference) rather than duplicating it.
pub async fn remove(scope: &Scope, id: &TenantId) -> anyhow::Result<ExitCode> {
    let store = settings::open_state_writer(&scope.state_path(), "tenants remove")?;
    if !store.remove_tenant(id).await? {
        bail!("no tenant {id} in {}", scope.state_path().display());
    }
    println!(
        "tenant {id} removed with its sync state; its Cliniko account and Reckon book are untouched"
    );
    Ok(ExitCode::SUCCESS)
}
