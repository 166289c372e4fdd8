//! `sync --once --dry-run`: the go-live preview. Reads Cliniko and Reckon, writes nothing to
//! Reckon, changes no sync state, and writes the plan (JSON, CSV, HTML) for a bookkeeper
//! to approve.

use crate::clients;
use crate::settings::Scope;
use anyhow::Context;
use cliniko_reckon::pipeline::PollConfig;
use cliniko_reckon::preview::{Action, Plan, preview};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code when the plan has blocked records (errors exit with 1).
pub const BLOCKED: u8 = 2;

/// Writes `plan.json`, `plan.csv` and `plan.html` into `dir`; returns the HTML's path.
pub fn write_plan(plan: &Plan, dir: &Path, zone: chrono_tz::Tz) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, text: String| -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    write("plan.json", plan.to_json()?)?;
    write("plan.csv", plan.to_csv()?)?;
    write("plan.html", plan.to_html(zone)?)
}

/// The summary a person reads in the terminal.
pub fn summary_table(plan: &Plan) -> String {
    let mut out = String::from("Preview (nothing was written to Reckon):\n");
    for a in Action::ALL {
        out.push_str(&format!("  {:<10} {:>6}\n", a.key(), plan.count(a)));
    }
    for p in plan.records.iter().filter(|p| p.action == Action::Blocked) {
        out.push_str(&format!(
            "  blocked {} {} ({}): {}\n",
            p.kind, p.cliniko_id, p.label, p.detail
        ));
    }
    for e in &plan.poll_errors {
        out.push_str(&format!("  reading Cliniko failed: {e}\n"));
    }
    out
}

pub async fn run(scope: &Scope, json: bool, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    // Read-only use of the sync's state: a preview may run beside a sync (token refreshes
    // take turns); a rotated Reckon token is still saved there, or it would be lost.
    let (store, loaded) = scope.open(None).await?;
    let cliniko = loaded.cliniko()?;
    let reckon = loaded.reckon()?;
    let source = clients::cliniko(&cliniko)?;
    let mut mapping = loaded.file.mapping.clone();
    clients::check_businesses(&source, &mapping).await?;
    let (sink, notes) = clients::reckon_checked(&reckon, store.clone(), &mut mapping).await?;
    for note in notes {
        eprintln!("warning: {note}");
    }
    let zone = mapping.default_time_zone;
    let poll = PollConfig {
        overlap: loaded.overlap(),
        ..PollConfig::for_mapping(&mapping)
    };
    let tenant = store.tenant_id().to_string();
    let plan = preview(
        source,
        sink,
        store,
        mapping,
        &poll,
        &tenant,
        chrono::Utc::now(),
    )
    .await
    .context("previewing the sync")?;
    let dir = out.unwrap_or_else(|| PathBuf::from("preview"));
    let html = write_plan(&plan, &dir, zone)?;
    if json {
        println!("{}", plan.to_json()?);
    } else {
        print!("{}", summary_table(&plan));
        println!("Plan: {}", html.display());
    }
    Ok(
        if plan.count(Action::Blocked) > 0 || !plan.poll_errors.is_empty() {
            ExitCode::from(BLOCKED)
        } else {
            ExitCode::SUCCESS
        },
    )
}
