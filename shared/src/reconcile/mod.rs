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
use crate::ports::{ClinikoSource, PageCursor, ReckonBook, StateError, StateStore};
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

/// Reads Reckon's customers, items and invoices in full (page by page).
async fn read_book<B: ReckonBook>(book: &B) -> Result<compare::Book, ReckonError> {
    let mut out = compare::Book::default();
    let mut cursor: Option<PageCursor> = None;
    loop {
        let page = book.customer_page(cursor.take()).await?;
        for c in page.items {
            out.customers.insert(c.id, c);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    loop {
        let page = book.item_page(cursor.take()).await?;
        for i in page.items {
            out.items.insert(i.id, i);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    loop {
        let page = book.invoice_page(cursor.take()).await?;
        for i in page.items {
            out.invoices.insert(i.id, compare::InvoiceSummary::from(i));
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
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
        let mut cursor: Option<PageCursor> = None;
        loop {
            let page = source.all_page(kind, cursor.take()).await?;
            for record in &page.items {
                run.compare(record);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(run.finish(tenant, now))
}
