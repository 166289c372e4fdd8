//! Reconciliation: reads both sides in full and lists every difference, with the ids on
//! both sides, the field, both values and what to do about it.
//!
//! How it reads (memory stays bounded however large the clinic: the working set lives in a
//! temporary SQLite file, see `scratch`): the Reckon book is read page by page into the
//! scratch database keyed by Reckon id; the links come from the state store as
//! `(Cliniko id, Reckon id)` pairs; then Cliniko is streamed page by page and each record is
//! compared with what the sync would write for it (the same mapping functions), and its
//! Reckon twin is marked taken. What is left untaken afterwards is Reckon records no link
//! knows: duplicates of linked records, or candidates to link to Cliniko records that are
//! missing in Reckon. Memory then grows only with the mismatches reported.

mod compare;
mod repair;
pub mod report;
mod scratch;

pub use repair::{LinkError, LinkRequest, RepairSummary, link, repair};
pub use report::{Category, Mismatch, ReconcileReport, Repair, Scanned};

use crate::domain::*;
use crate::mapping::MappingConfig;
use crate::ports::{
    ClinikoSource, Page, PageCursor, ReckonBook, SinkError, SourceError, StateError, StateStore,
};
use chrono::{DateTime, Utc};
pub use scratch::ScratchError;
use scratch::{Scratch, Shelf};

/// Why reconciliation could not finish (mismatches are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Scratch(#[from] ScratchError),
}

impl ReconcileError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ReconcileError::Source(e) => e.is_retryable(),
            ReconcileError::Sink(e) => e.is_retryable(),
            ReconcileError::State(e) => e.is_retryable(),
            // Disk full or no temporary directory: a retry on the same machine fails too.
            ReconcileError::Scratch(_) => false,
        }
    }
}

/// Follows a paged read from the first page to the last, handing each record to `each`.
async fn each_record<T, E, F, Fut>(
    mut page: F,
    mut each: impl FnMut(T) -> Result<(), ReconcileError>,
) -> Result<(), ReconcileError>
where
    F: FnMut(Option<PageCursor>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, E>>,
    ReconcileError: From<E>,
{
    let mut cursor = None;
    loop {
        let current = page(cursor).await?;
        for record in current.items {
            each(record)?;
        }
        match current.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// Reads Reckon's customers, items, invoices and credit notes in full (page by page) into `scratch`.
async fn read_book<B: ReckonBook>(book: &B, scratch: &Scratch) -> Result<(), ReconcileError> {
    each_record(
        |c| book.customer_page(c),
        |c| Ok(scratch.put(Shelf::Customers, c.id, &c)?),
    )
    .await?;
    each_record(
        |c| book.item_page(c),
        |i| Ok(scratch.put(Shelf::Items, i.id, &i)?),
    )
    .await?;
    each_record(
        |c| book.invoice_page(c),
        |i| Ok(scratch.put(Shelf::Invoices, i.id, &compare::InvoiceSummary::from(i))?),
    )
    .await?;
    each_record(
        |c| book.credit_note_page(c),
        |c| Ok(scratch.put(Shelf::CreditNotes, c.id, &c)?),
    )
    .await
}

/// Reconciles one tenant: Cliniko (via `source`) against the Reckon book (via `book`)
/// through the links in `state`. `tenant` only labels the report.
pub async fn reconcile<S, B, St>(
    source: &S,
    book: &B,
    state: &St,
    mapping: &MappingConfig,
    tenant: &str,
    now: DateTime<Utc>,
) -> Result<ReconcileReport, ReconcileError>
where
    S: ClinikoSource,
    B: ReckonBook,
    St: StateStore,
{
    let scratch = Scratch::open()?;
    read_book(book, &scratch).await?;
    for kind in EntityKind::ALL {
        for (cliniko, reckon) in state.links(kind).await? {
            scratch.put_link(kind, cliniko, reckon)?;
        }
    }
    let failures = state.failures().await?;
    let taxes = source.taxes().await?;
    let businesses = source.businesses().await?;
    let mut run = compare::Run::new(scratch, failures, taxes, businesses, mapping, now)?;
    for kind in mapping.invoicing.appointments.source.kinds() {
        // A Cliniko record that cannot be read is listed with the sync's waiting failures
        // (it is one: the sync parks it too) and never stops the comparison of the rest.
        let mut cursor = None;
        loop {
            let page = source.all_page(kind, cursor).await?;
            for record in page.items {
                run.compare(&record)?;
            }
            for bad in &page.unreadable {
                run.unreadable(bad, now);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(run.finish(tenant, now)?)
}

/// One reconciliation as every shell runs it (the CLI's `reconcile [--repair]`, the
/// reconciler Lambda): the report, where its renderings were published, and what was
/// queued to put right when asked.
#[derive(Debug)]
pub struct Reconciled {
    pub report: ReconcileReport,
    pub published: Vec<String>,
    pub repair: Option<RepairSummary>,
}

/// Reconciles one tenant, publishes every rendering of the report to `reports`, and when
/// `repair_into` is given queues what the sync can put right (see [`repair`]).
#[allow(clippy::too_many_arguments)]
pub async fn reconcile_and_publish<S, B, St, R, Q>(
    source: &S,
    book: &B,
    state: &St,
    mapping: &MappingConfig,
    tenant: &str,
    now: DateTime<Utc>,
    reports: &R,
    repair_into: Option<&Q>,
) -> Result<Reconciled, ReconcileError>
where
    S: ClinikoSource,
    B: ReckonBook,
    St: StateStore,
    R: crate::ports::ReportSink,
    Q: crate::ports::WorkQueue,
{
    let report = reconcile(source, book, state, mapping, tenant, now).await?;
    // A report that cannot be rendered fails the same way again: not retryable.
    let rendered = report
        .rendered(mapping.default_time_zone)
        .map_err(|e| StateError::Backend {
            detail: format!("rendering the report: {e}"),
            retryable: false,
        })?;
    let published = reports.publish(tenant, &rendered).await?;
    let repair = match repair_into {
        Some(queue) => Some(repair::repair(&report, source, state, queue, now).await?),
        None => None,
    };
    Ok(Reconciled {
        report,
        published,
        repair,
    })
}
