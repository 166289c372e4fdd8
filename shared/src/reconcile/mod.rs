//! Reconciliation: reads both sides in full and lists every difference, with the ids on
//! both sides, the field, both values and what to do about it.
//!
//! How it reads (memory stays proportional to the Reckon book plus compact indexes, never
//! to Cliniko's history): the Reckon book is read page by page into maps keyed by Reckon
//! id; the links come from the state store as `(Cliniko id, Reckon id)` pairs; then Cliniko
//! is streamed page by page and each record is compared with what the sync would write for
//! it (the same mapping functions), and its Reckon twin is taken out of the map. What is
//! left in the maps afterwards is Reckon records no link knows: duplicates of linked
//! records, or candidates to link to Cliniko records that are missing in Reckon.

mod compare;
pub mod report;

pub use report::{Category, Mismatch, ReconcileReport, Scanned};

use crate::cliniko::ClinikoError;
use crate::domain::*;
use crate::mapping::MappingConfig;
use crate::ports::{ClinikoSource, Page, PageCursor, ReckonBook, StateError, StateStore};
use crate::reckon::ReckonError;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Why reconciliation could not finish (mismatches are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Cliniko(#[from] ClinikoError),
    #[error(transparent)]
    Reckon(#[from] ReckonError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl ReconcileError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ReconcileError::Cliniko(e) => e.is_retryable(),
            ReconcileError::Reckon(e) => e.is_retryable(),
            ReconcileError::State(e) => e.is_retryable(),
        }
    }
}

/// Follows a paged read from the first page to the last, handing each record to `each`.
async fn each_record<T, E, F, Fut>(mut page: F, mut each: impl FnMut(T)) -> Result<(), E>
where
    F: FnMut(Option<PageCursor>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, E>>,
{
    let mut cursor = None;
    loop {
        let current = page(cursor).await?;
        current.items.into_iter().for_each(&mut each);
        match current.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// Reads Reckon's customers, items and invoices in full (page by page).
async fn read_book<B: ReckonBook>(book: &B) -> Result<compare::Book, ReckonError> {
    let mut out = compare::Book::default();
    each_record(
        |c| book.customer_page(c),
        |c| {
            out.customers.insert(c.id, c);
        },
    )
    .await?;
    each_record(
        |c| book.item_page(c),
        |i| {
            out.items.insert(i.id, i);
        },
    )
    .await?;
    each_record(
        |c| book.invoice_page(c),
        |i| {
            out.invoices.insert(i.id, compare::InvoiceSummary::from(i));
        },
    )
    .await?;
    Ok(out)
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
    let reckon = read_book(book).await?;
    let mut links: HashMap<EntityKind, HashMap<ClinikoId, ReckonId>> = HashMap::new();
    for kind in EntityKind::ALL {
        links.insert(kind, state.links(kind).await?.into_iter().collect());
    }
    let failures = state.failures().await?;
    let taxes = source.taxes().await?;
    let businesses = source.businesses().await?;
    let mut run = compare::Run::new(reckon, links, failures, taxes, businesses, mapping);
    for kind in EntityKind::ALL {
        each_record(|c| source.all_page(kind, c), |record| run.compare(&record)).await?;
    }
    Ok(run.finish(tenant, now))
}
