//! `sync`, `connect`, `status` and `config check`.

use crate::clients::{self, Counted};
use crate::report::{ApiRequests, Bars, RunReport};
use crate::settings::{self, Loaded};
use anyhow::Context;
use cliniko_reckon::adapters::sqlite::SqliteState;
use cliniko_reckon::pipeline::local::{self, RetryPolicy};
use cliniko_reckon::pipeline::{PollConfig, Syncer};
use cliniko_reckon::ports::{ClinikoSource, ReckonSink, StateStore, TokenStore};
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

pub async fn sync(
    config: Option<&Path>,
    state: Option<&Path>,
    watch: Option<Duration>,
    json: bool,
    retry_failed: bool,
) -> anyhow::Result<ExitCode> {
    let loaded = Loaded::load(config)?;
    let cliniko = loaded.cliniko()?;
    let reckon = loaded.reckon()?;
    let state_path = settings::state_path(state);
    let store = settings::open_state_writer(
        &state_path,
        if watch.is_some() {
            "sync --watch"
        } else {
            "sync --once"
        },
    )?;
    let source = clients::cliniko(&cliniko)?;
    let mut mapping = loaded.file.mapping.clone();
    let (sink, notes) = clients::reckon_checked(&reckon, store.clone(), &mut mapping).await?;
    for note in notes {
        eprintln!("warning: {note}");
    }
    let poll = PollConfig {
        overlap: loaded.overlap(),
    };
    let mut syncer = Syncer::new(source, sink, store, mapping);
    let retry = RetryPolicy::default();
    let bars = Bars::new(!json && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let mut requeue = if retry_failed {
        local::Requeue::All
    } else {
        local::Requeue::Retryable
    };
    let Some(interval) = watch else {
        let report = run_once(&syncer, &poll, &retry, requeue, &bars).await?;
        print_report(&report, json)?;
        return Ok(if report.failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    };
    let mut any_failed = false;
    loop {
        let run = run_once(&syncer, &poll, &retry, requeue, &bars).await;
        // `--retry-failed` retries everything once; later runs retry passing failures.
        requeue = local::Requeue::Retryable;
        match run {
            Ok(report) => {
                any_failed |= report.failed > 0;
                print_report(&report, json)?;
            }
            // Keep watching through outages: the next run picks up where this one stopped.
            Err(e) => eprintln!("sync run failed: {e:#}"),
        }
        bars.reset();
        syncer.reset_caches();
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            signal = tokio::signal::ctrl_c() => {
                signal.context("waiting for Ctrl-C")?;
                break;
            }
        }
    }
    Ok(if any_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn connect(
    config: Option<&Path>,
    state: Option<&Path>,
    refresh_token: Option<String>,
    tokens_json: Option<PathBuf>,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let loaded = Loaded::load(config)?;
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
    let state_path = settings::state_path(state);
    let store = settings::open_state_writer(&state_path, "connect")?;
    clients::connect(&reckon, store, timeout).await?;
    println!(
        "Reckon connected; tokens stored in {}",
        state_path.display()
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

pub async fn status(state: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let path = settings::state_path(state);
    if !path.exists() {
        anyhow::bail!(
            "no state file at {} (run `sync` first or pass --state)",
            path.display()
        );
    }
    let store = SqliteState::open(&path)?;
    let depth = store.queue_depth()?;
    let failures = store.failures().await?;
    let view = StatusView {
        state_file: path.display().to_string(),
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

pub async fn config_check(config: Option<&Path>, state: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = Loaded::load(config)?;
    let cliniko = loaded.cliniko()?;
    let reckon = loaded.reckon()?;
    println!("configuration: ok");
    let source = clients::cliniko(&cliniko)?;
    let businesses = source
        .businesses()
        .await
        .context("reaching Cliniko (listing businesses)")?;
    println!("Cliniko: ok ({} business(es))", businesses.len());
    let state_path = settings::state_path(state);
    let store = settings::open_state(&state_path)?;
    let notes = clients::check_reckon(&reckon, store, &loaded.file.mapping)
        .await
        .context("reaching Reckon")?;
    println!("Reckon: ok");
    for note in notes {
        println!("warning: {note}");
    }
    Ok(ExitCode::SUCCESS)
}
