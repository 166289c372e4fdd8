//! `reconcile`: compares Cliniko and Reckon in full and writes the mismatch report.

use crate::clients;
use crate::settings::{Loaded, Scope};
use cliniko_reckon::adapters::report_dir::ReportDir;
use cliniko_reckon::adapters::sqlite::SqliteState;
use cliniko_reckon::cliniko::ClinikoClient;
use cliniko_reckon::domain::{ClinikoId, EntityKind, ReckonId};
use cliniko_reckon::mapping::MappingConfig;
use cliniko_reckon::ports::{ClinikoSource, ReckonBook, StateStore, WorkQueue};
use cliniko_reckon::reconcile::{
    Category, LinkRequest, ReconcileReport, Reconciled, RepairSummary, link, reconcile_and_publish,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code when the report lists mismatches (errors exit with 1).
pub const MISMATCHES_FOUND: u8 = 2;

/// The shared reconcile-and-publish step with the report written into `dir`
/// (`report.json`, `report.html`, one CSV per category) and, with `repair_into`, repairs
/// queued; returns the run and the HTML report's path (the one a person opens).
#[allow(clippy::too_many_arguments)]
pub async fn reconcile_into<S, B, St, Q>(
    source: &S,
    book: &B,
    state: &St,
    mapping: &MappingConfig,
    tenant: &str,
    dir: &Path,
    repair_into: Option<&Q>,
) -> anyhow::Result<(Reconciled, PathBuf)>
where
    S: ClinikoSource,
    B: ReckonBook,
    St: StateStore,
    Q: WorkQueue,
{
    let run = reconcile_and_publish(
        source,
        book,
        state,
        mapping,
        tenant,
        chrono::Utc::now(),
        &ReportDir {
            dir: dir.to_path_buf(),
        },
        repair_into,
    )
    .await?;
    let html = dir.join("report.html");
    Ok((run, html))
}

/// The summary a person reads in the terminal.
pub fn summary_table(report: &ReconcileReport) -> String {
    let s = &report.scanned;
    let mut out = format!(
        "Scanned Cliniko: {} patients, {} products and services, {} invoices (credit notes included), {} appointments\n\
         Scanned Reckon:  {} customers, {} items, {} invoices, {} credit notes\n\n",
        s.cliniko_patients,
        s.cliniko_products,
        s.cliniko_invoices,
        s.cliniko_appointments,
        s.reckon_customers,
        s.reckon_items,
        s.reckon_invoices,
        s.reckon_credit_notes
    );
    for c in Category::ALL {
        out.push_str(&format!("  {:<28} {:>6}\n", c.title(), report.count(c)));
    }
    out.push_str(&if report.is_clean() {
        "\nBoth sides agree.\n".to_string()
    } else {
        format!("\n{} mismatches need attention.\n", report.total())
    });
    out
}

/// What `--repair` did, for the terminal.
pub fn repair_lines(summary: &RepairSummary) -> String {
    let mut out = format!(
        "\nRepair: queued {} record(s) for the sync ({} to create or retry, {} to rewrite from Cliniko, {} to re-create).\n",
        summary.queued(),
        summary.queued_to_sync,
        summary.queued_to_rewrite,
        summary.queued_to_recreate
    );
    if summary.gone_from_cliniko > 0 {
        out.push_str(&format!(
            "  {} record(s) are no longer in Cliniko; nothing to queue.\n",
            summary.gone_from_cliniko
        ));
    }
    if summary.left_for_a_person > 0 {
        out.push_str(&format!(
            "  {} mismatch(es) need a person (duplicates, link suggestions, paid-in-Reckon edits): see the report.\n",
            summary.left_for_a_person
        ));
    }
    if summary.queued() > 0 {
        out.push_str("  `cliniko-reckon sync --once` applies them (a running `sync --watch` does on its next run).\n");
    }
    out
}

/// The configuration, the state file and clients for both sides (read-only use of Reckon).
/// `writer` names the command when it changes sync state (it then holds the writer lock).
async fn open_both_sides(
    scope: &Scope,
    writer: Option<&str>,
) -> anyhow::Result<(Loaded, SqliteState, ClinikoClient, clients::Reckon)> {
    let (store, loaded) = scope.open(writer).await?;
    let source = clients::cliniko(&loaded.cliniko()?)?;
    let book = clients::reckon(&loaded.reckon()?, store.clone()).await?;
    Ok((loaded, store, source, book))
}

pub async fn run(
    scope: &Scope,
    out: Option<PathBuf>,
    json: bool,
    repair_too: bool,
) -> anyhow::Result<ExitCode> {
    let writer = repair_too.then_some("reconcile --repair");
    let (loaded, store, source, book) = open_both_sides(scope, writer).await?;
    let mapping = loaded.file.mapping.clone();
    let dir = out.unwrap_or_else(|| PathBuf::from("reconciliation"));
    let (run, html) = reconcile_into(
        &source,
        &book,
        &store,
        &mapping,
        store.tenant_id().as_str(),
        &dir,
        repair_too.then_some(&store),
    )
    .await?;
    let Reconciled {
        report,
        repair: repaired,
        ..
    } = run;
    if json {
        let mut doc: serde_json::Value = serde_json::from_str(&report.to_json()?)?;
        if let Some(summary) = &repaired {
            doc["repair"] = serde_json::to_value(summary)?;
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", summary_table(&report));
        println!("Report: {}", html.display());
        if let Some(summary) = &repaired {
            print!("{}", repair_lines(summary));
        }
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(MISMATCHES_FOUND)
    })
}

/// `link KIND CLINIKO_ID RECKON_ID`: accepts a link suggestion and queues the record.
pub async fn link_records(
    scope: &Scope,
    kind: EntityKind,
    cliniko_id: ClinikoId,
    reckon_id: ReckonId,
) -> anyhow::Result<ExitCode> {
    let (_, store, source, book) = open_both_sides(scope, Some("link")).await?;
    let request = LinkRequest {
        kind,
        cliniko_id,
        reckon_id,
    };
    link(&source, &book, &store, &store, request, chrono::Utc::now()).await?;
    println!(
        "Linked {kind} {cliniko_id} to Reckon {reckon_id}. Queued for the sync: `cliniko-reckon sync --once` brings the Reckon record in line with Cliniko."
    );
    Ok(ExitCode::SUCCESS)
}
