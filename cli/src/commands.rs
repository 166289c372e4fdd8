//! `sync`, `connect`, `status` and `config check`.

use crate::clients::{self, Counted};
use crate::report::{ApiRequests, Bars, RunReport};
use crate::settings::{self, Scope};
use anyhow::Context;
use cliniko_reckon::adapters::sqlite::SqliteState;
use cliniko_reckon::domain::TenantId;
use cliniko_reckon::pipeline::local::{self, RetryPolicy};
use cliniko_reckon::pipeline::{PipelineError, PollConfig, Syncer, disposition};
use cliniko_reckon::ports::{
    ClinikoSource, ReckonSink, StateStore, TenantDirectory, TenantEntry, TenantStatus, TokenStore,
};
use secrecy::ExposeSecret;

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// One run (`local::run_once`: re-queue, poll every entity type, drain), with the API
/// requests it cost and the time it took.
pub async fn run_once<S, R>(
    syncer: &Syncer<S, R, SqliteState>,
    poll: &PollConfig,
    retry: &RetryPolicy,
    requeue: local::Requeue,
    bars: &Bars,
) -> anyhow::Result<RunReport>
where
    S: ClinikoSource + Counted,
    R: ReckonSink + Counted,
{
    let requests = || ApiRequests {
        cliniko: syncer.source.requests_made(),
        reckon: syncer.sink.requests_made(),
    };
    let started = Instant::now();
    let before = requests();
    let on_event = |e: local::Progress<'_>| bars.event(e);
    let outcome = local::run_once(syncer, poll, retry, requeue, &on_event)
        .await
        .context("syncing")?;
    bars.finish();
    let after = requests();
    Ok(RunReport::new(
        &outcome,
        ApiRequests {
            cliniko: after.cliniko - before.cliniko,
            reckon: after.reckon - before.reckon,
        },
        started.elapsed(),
    ))
}

fn print_report(report: &RunReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// `sync`: the clinic of `scope`, or with `all_tenants` every active clinic of the state
/// file at once, each with its own clients, pacing and queue, so one clinic's outage or
/// throttling never holds up another's changes.
pub async fn sync(
    scope: &Scope,
    all_tenants: bool,
    watch: Option<Duration>,
    json: bool,
    retry_failed: bool,
) -> anyhow::Result<ExitCode> {
    let command = if watch.is_some() {
        "sync --watch"
    } else {
        "sync --once"
    };
    if all_tenants && scope.tenant.is_some() {
        anyhow::bail!(
            "--all-tenants syncs every active clinic: drop --tenant (or drop --all-tenants)"
        );
    }
    if all_tenants && scope.config.is_some() {
        anyhow::bail!(
            "--all-tenants reads each clinic's own file: drop --config (or sync one clinic with --tenant ID --config FILE)"
        );
    }
    let store = settings::open_state_writer(&scope.state_path(), command)?;
    let tenants = if all_tenants {
        let all = store.tenants().await.context("listing tenants")?;
        if all.is_empty() {
            anyhow::bail!(
                "no tenants in {}: add one with `cliniko-reckon tenants add ID --config FILE`",
                scope.state_path().display()
            );
        }
        let mut active = Vec::new();
        for t in all {
            if t.status == TenantStatus::Active {
                active.push(t.id);
            } else {
                eprintln!(
                    "tenant {}: {}, skipped{}",
                    t.id,
                    t.status.as_str(),
                    reason(&t)
                );
            }
        }
        active
    } else {
        let tenant = scope.tenant_id();
        if let Some(t) = store.tenant(&tenant).await.context("reading the tenant")?
            && t.status != TenantStatus::Active
        {
            anyhow::bail!("{}", not_active(&t));
        }
        vec![tenant]
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let options = std::sync::Arc::new(TenantRun {
        labelled: all_tenants,
        watch,
        json,
        retry_failed,
        stopped,
    });
    let mut runs = tokio::task::JoinSet::new();
    let mut running = std::collections::BTreeSet::new();
    // Starts a clinic's runs unless they are running already.
    let start = |runs: &mut tokio::task::JoinSet<_>,
                 running: &mut std::collections::BTreeSet<TenantId>,
                 t: &TenantId| {
        if running.insert(t.clone()) {
            runs.spawn(sync_tenant(
                scope.for_tenant(t),
                store.for_tenant(t),
                options.clone(),
            ));
        }
    };
    for t in &tenants {
        start(&mut runs, &mut running, t);
    }
    let mut code = ExitCode::SUCCESS;
    let mut note = |tenant: &TenantId, result: anyhow::Result<bool>| -> anyhow::Result<()> {
        match result {
            Ok(true) => {}
            Ok(false) => code = ExitCode::FAILURE,
            Err(e) if all_tenants => {
                eprintln!("tenant {tenant}: error: {e:#}");
                code = ExitCode::FAILURE;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    };
    loop {
        let stopping = *stop.borrow();
        // `--all-tenants --watch` keeps waiting for clinics to be added or resumed.
        if runs.is_empty() && (stopping || !(all_tenants && watch.is_some())) {
            break;
        }
        // With --all-tenants --watch, clinics added or resumed meanwhile join each interval.
        let rescan = async {
            match watch {
                Some(interval) if all_tenants => tokio::time::sleep(interval).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(done) = runs.join_next(), if !runs.is_empty() => {
                let (tenant, result) = done.context("a tenant's sync task ended abnormally")?;
                running.remove(&tenant);
                note(&tenant, result)?;
            }
            _ = rescan, if !stopping => {
                for t in store.tenants().await.context("listing tenants")? {
                    if t.status == TenantStatus::Active {
                        start(&mut runs, &mut running, &t.id);
                    }
                }
            }
            signal = tokio::signal::ctrl_c(), if watch.is_some() && !stopping => {
                signal.context("waiting for Ctrl-C")?;
                // Each clinic finishes the run it is in, then stops.
                stop.send_replace(true);
            }
        }
    }
    Ok(code)
}

fn reason(t: &TenantEntry) -> String {
    t.reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default()
}

/// Why a clinic is not synced, and what brings it back.
pub fn not_active(t: &TenantEntry) -> String {
    let how = match t.status {
        TenantStatus::NeedsReconnect => format!("`cliniko-reckon --tenant {} connect`", t.id),
        _ => format!("`cliniko-reckon tenants resume {}`", t.id),
    };
    format!(
        "tenant {} is {}{}: {how} makes it active again",
        t.id,
        t.status.as_str(),
        reason(t)
    )
}

struct TenantRun {
    /// Several clinics run at once: each report names its clinic, no progress bars.
    labelled: bool,
    watch: Option<Duration>,
    json: bool,
    retry_failed: bool,
    /// Becomes true on Ctrl-C: stop watching after the current run.
    stopped: tokio::sync::watch::Receiver<bool>,
}

/// One clinic's sync; `Ok(false)` when a record failed. A lost Reckon connection marks a
/// registered clinic `needs_reconnect` (its queue is kept) and ends its runs.
async fn sync_tenant(
    scope: Scope,
    store: SqliteState,
    run: std::sync::Arc<TenantRun>,
) -> (TenantId, anyhow::Result<bool>) {
    let tenant = store.tenant_id().clone();
    let result = sync_tenant_runs(scope, store, &run).await;
    (tenant, result)
}

async fn sync_tenant_runs(
    scope: Scope,
    store: SqliteState,
    run: &TenantRun,
) -> anyhow::Result<bool> {
    let tenant = store.tenant_id().clone();
    let loaded = scope.load(&store).await?;
    let cliniko = loaded.cliniko()?;
    let reckon = loaded.reckon()?;
    let source = clients::cliniko(&cliniko)?;
    let mut mapping = loaded.file.mapping.clone();
    clients::check_businesses(&source, &mapping).await?;
    let (sink, notes) = clients::reckon_checked(&reckon, store.clone(), &mut mapping).await?;
    for note in notes {
        eprintln!("{}warning: {note}", label(run, &tenant));
    }
    let poll = PollConfig {
        overlap: loaded.overlap(),
        ..PollConfig::for_mapping(&mapping)
    };
    let mut syncer = Syncer::new(source, sink, store.clone(), mapping);
    let retry = RetryPolicy::default();
    let bars = Bars::new(
        !run.json && !run.labelled && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
    let mut requeue = if run.retry_failed {
        local::Requeue::All
    } else {
        local::Requeue::Retryable
    };
    let mut all_ok = true;
    loop {
        // Paused or removed meanwhile (`tenants pause`): stop before touching it again.
        if let Some(t) = store.tenant(&tenant).await.context("reading the tenant")?
            && t.status != TenantStatus::Active
        {
            eprintln!("{}{}", label(run, &tenant), not_active(&t));
            return Ok(all_ok);
        }
        let result = run_once(&syncer, &poll, &retry, requeue, &bars).await;
        // `--retry-failed` retries everything once; later runs retry passing failures.
        requeue = local::Requeue::Retryable;
        match result {
            Ok(mut report) => {
                all_ok &= report.failed == 0;
                if run.labelled {
                    report.tenant = Some(tenant.to_string());
                }
                print_report(&report, run.json)?;
            }
            Err(e) if stops_tenant(&e) => {
                let why = format!("Reckon refused the connection: {e:#}");
                let marked = store
                    .set_tenant_status(
                        &tenant,
                        TenantStatus::NeedsReconnect,
                        Some(&why),
                        chrono::Utc::now(),
                    )
                    .await
                    .context("marking the tenant")?;
                let retry = if marked {
                    format!(
                        "; its work is kept and `cliniko-reckon --tenant {tenant} connect` resumes it"
                    )
                } else {
                    "; its work is kept: run `connect`, then sync again".to_string()
                };
                return Err(e.context(format!("tenant {tenant} stopped{retry}")));
            }
            Err(e) if run.watch.is_none() => return Err(e),
            // Keep watching through outages: the next run picks up where this one stopped.
            Err(e) => eprintln!("{}sync run failed: {e:#}", label(run, &tenant)),
        }
        let Some(interval) = run.watch else {
            return Ok(all_ok);
        };
        bars.reset();
        syncer.reset_caches();
        let mut stopped = run.stopped.clone();
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.wait_for(|stop| *stop) => return Ok(all_ok),
        }
    }
}

fn label(run: &TenantRun, tenant: &TenantId) -> String {
    if run.labelled {
        format!("tenant {tenant}: ")
    } else {
        String::new()
    }
}

/// Whether a run ended because Reckon needs reconnecting (see `pipeline::disposition`).
fn stops_tenant(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<PipelineError>()
            .is_some_and(disposition::stops_tenant)
    })
}

pub async fn connect(
    scope: &Scope,
    refresh_token: Option<String>,
    tokens_json: Option<PathBuf>,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let loaded = scope.load_config().await?;
    let mut reckon = loaded.reckon()?;
    if let Some(token) = refresh_token {
        reckon.refresh_token = Some(secrecy::SecretString::from(token));
    }
    if let Some(path) = tokens_json {
        // For AWS: the pair goes only to the file (for the tokens secret), never to a local
        // state file, so exactly one live copy exists once the file is put and deleted.
        // Checked before connecting: a redeemed refresh token is spent, so the new pair
        // must have somewhere to go.
        // The file is created (empty, owner-only) before the refresh token is redeemed,
        // so a missing directory or an existing file fails before anything is spent.
        let mut file = create_private(&path)?;
        let store = SqliteState::open_in_memory()?;
        let tokens = match clients::connect(&reckon, store.clone(), timeout).await {
            Ok(()) => store
                .load()
                .await?
                .context("Reckon answered without a token pair"),
            Err(e) => Err(e),
        };
        let tokens = match tokens {
            Ok(t) => t,
            Err(e) => {
                // Nothing was written: the empty file would only confuse a retry.
                if let Err(rm) = std::fs::remove_file(&path) {
                    eprintln!("warning: could not remove {}: {rm}", path.display());
                }
                return Err(e);
            }
        };
        use std::io::Write;
        file.write_all(tokens.to_secret_json().expose_secret().as_bytes())
            .and_then(|_| file.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "Reckon connected; tokens written to {} (put it into the tokens secret, then delete it)",
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let state_path = scope.state_path();
    let (store, _) = scope.open(Some("connect")).await?;
    clients::connect(&reckon, store.clone(), timeout).await?;
    let tenant = store.tenant_id().clone();
    let resumed = match store.tenant(&tenant).await? {
        Some(t) if t.status == TenantStatus::NeedsReconnect => {
            store
                .set_tenant_status(&tenant, TenantStatus::Active, None, chrono::Utc::now())
                .await?
        }
        _ => false,
    };
    println!(
        "Reckon connected for tenant {tenant}; tokens stored in {}{}",
        state_path.display(),
        if resumed {
            " (the tenant is active again; its kept work goes on the next sync)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates a new file only its owner can read; refuses to replace an existing one.
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).with_context(|| {
        format!(
            "creating {} (it must not exist yet, in a directory that does)",
            path.display()
        )
    })
}

#[derive(Serialize)]
struct StatusView {
    state_file: String,
    tenant: String,
    /// `None` for the unregistered clinic of a single-clinic state file.
    tenant_status: Option<String>,
    tenant_note: Option<String>,
    watermarks: Vec<(String, String)>,
    linked: Vec<(String, u64)>,
    queued: u64,
    retrying: u64,
    failed: Vec<FailureView>,
    recent_errors: Vec<String>,
}

#[derive(Serialize)]
struct FailureView {
    kind: String,
    cliniko_id: String,
    attempts: u32,
    retryable: bool,
    last_at: String,
    error: String,
}

pub async fn status(scope: &Scope, json: bool) -> anyhow::Result<ExitCode> {
    let path = scope.state_path();
    if !path.exists() {
        anyhow::bail!(
            "no state file at {} (run `sync` first or pass --state)",
            path.display()
        );
    }
    let store = SqliteState::open(&path)?.for_tenant(&scope.tenant_id());
    let entry = store.tenant(store.tenant_id()).await?;
    if entry.is_none() && store.tenant_id().as_str() != cliniko_reckon::domain::DEFAULT_TENANT {
        anyhow::bail!(
            "no tenant {} in {} (`cliniko-reckon tenants list` shows them)",
            store.tenant_id(),
            path.display()
        );
    }
    let depth = store.queue_depth()?;
    let failures = store.failures().await?;
    let view = StatusView {
        state_file: path.display().to_string(),
        tenant: store.tenant_id().to_string(),
        tenant_status: entry.as_ref().map(|t| t.status.as_str().to_string()),
        tenant_note: entry.as_ref().and_then(|t| t.reason.clone()),
        watermarks: store
            .watermarks()?
            .into_iter()
            .map(|(k, at)| (k.to_string(), at.to_rfc3339()))
            .collect(),
        linked: store
            .cross_ref_counts()?
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        queued: depth.pending,
        retrying: depth.retrying,
        failed: failures
            .iter()
            .map(|f| FailureView {
                kind: f.kind.to_string(),
                cliniko_id: f.cliniko_id.to_string(),
                attempts: f.attempts,
                retryable: f.retryable,
                last_at: f.last_at.to_rfc3339(),
                error: f.error.clone(),
            })
            .collect(),
        recent_errors: store
            .recent_audit(200)?
            .into_iter()
            .filter(|e| e.outcome == cliniko_reckon::ports::Outcome::Failed)
            .take(5)
            .map(|e| {
                format!(
                    "{} {} {}: {}",
                    e.at.to_rfc3339(),
                    e.kind,
                    e.cliniko_id,
                    e.detail
                )
            })
            .collect(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("state file: {}", view.state_file);
    match &view.tenant_status {
        Some(status) => println!(
            "tenant: {} ({status}{})",
            view.tenant,
            view.tenant_note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ),
        None => println!("tenant: {}", view.tenant),
    }
    println!("watermarks:");
    if view.watermarks.is_empty() {
        println!("  (none yet: nothing synced)");
    }
    for (k, at) in &view.watermarks {
        println!("  {k:<14} {at}");
    }
    println!("linked records:");
    for (k, n) in &view.linked {
        println!("  {k:<14} {n}");
    }
    println!(
        "queued: {} ({} waiting to retry)",
        view.queued, view.retrying
    );
    println!("failed: {}", view.failed.len());
    for f in &view.failed {
        println!(
            "  {} {} (attempts {}, {}): {}",
            f.kind,
            f.cliniko_id,
            f.attempts,
            if f.retryable {
                "retryable"
            } else {
                "needs attention"
            },
            f.error
        );
    }
    if !view.recent_errors.is_empty() {
        println!("last errors:");
        for e in &view.recent_errors {
            println!("  {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn config_check(scope: &Scope) -> anyhow::Result<ExitCode> {
    let loaded = scope.load_config().await?;
    let cliniko = loaded.cliniko()?;
    let reckon = loaded.reckon()?;
    println!("configuration: ok");
    let source = clients::cliniko(&cliniko)?;
    let businesses = source
        .businesses()
        .await
        .context("reaching Cliniko (listing businesses)")?;
    println!("Cliniko: ok ({} business(es))", businesses.len());
    loaded
        .file
        .mapping
        .invoicing
        .check_businesses(&businesses)
        .map_err(|e| anyhow::anyhow!(e))?;
    let store = settings::open_state(&scope.state_path())?.for_tenant(&scope.tenant_id());
    let notes = clients::check_reckon(&reckon, store, &loaded.file.mapping)
        .await
        .context("checking the Reckon book")?;
    println!("Reckon: ok");
    for note in notes {
        println!("warning: {note}");
    }
    Ok(ExitCode::SUCCESS)
}
