//! Acting on a report: `repair` queues what the sync can put right, and `link` accepts a
//! link suggestion. Neither writes to Reckon itself, and nothing is ever deleted there:
//! both only change the sync's own state and queue Cliniko records, so every Reckon write
//! still goes through `apply` (idempotent, version-guarded, audited).

use super::ReconcileError;
use super::report::{ReconcileReport, Repair};
use crate::domain::*;
use crate::ports::{
    AuditEntry, ClinikoSource, CrossRef, Outcome, ReckonBook, SinkError, SourceError, StateError,
    StateStore, WorkItem, WorkQueue,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// What `repair` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepairSummary {
    /// Records queued for the sync to create or retry.
    pub queued_to_sync: u64,
    /// Records queued with their stored content forgotten (Reckon rewritten from Cliniko).
    pub queued_to_rewrite: u64,
    /// Records whose link to a deleted Reckon record was dropped, queued to re-create.
    pub queued_to_recreate: u64,
    /// Records no longer in Cliniko (nothing to queue).
    pub gone_from_cliniko: u64,
    /// Mismatches left for a person (duplicates, link suggestions, paid-in-Reckon edits).
    pub left_for_a_person: u64,
}

impl RepairSummary {
    pub fn queued(&self) -> u64 {
        self.queued_to_sync + self.queued_to_rewrite + self.queued_to_recreate
    }
}

/// Queues every record the report marks as repairable, each once with the strongest
/// repair any of its mismatches asks for. Records are fetched fresh from Cliniko.
pub async fn repair<S, St, Q>(
    report: &ReconcileReport,
    source: &S,
    state: &St,
    queue: &Q,
    now: DateTime<Utc>,
) -> Result<RepairSummary, ReconcileError>
where
    S: ClinikoSource,
    St: StateStore,
    Q: WorkQueue,
{
    let mut summary = RepairSummary::default();
    // (kind, Cliniko id) → (repair, the Reckon id the mismatch named). `EntityKind` orders
    // as `EntityKind::ALL`, so records are queued dependencies first (patients and items
    // before the invoices that use them).
    let mut plan: BTreeMap<(EntityKind, ClinikoId), (Repair, Option<ReckonId>)> = BTreeMap::new();
    for m in &report.mismatches {
        match (m.repair, m.cliniko_id) {
            (Some(r), Some(id)) => {
                let entry = plan.entry((m.entity, id)).or_insert((r, m.reckon_id));
                if r > entry.0 {
                    *entry = (r, m.reckon_id);
                }
            }
            _ => summary.left_for_a_person += 1,
        }
    }
    let mut items = Vec::new();
    for ((kind, id), (step, reckon_id)) in plan {
        let Some(record) = source.record(kind, id).await? else {
            summary.gone_from_cliniko += 1;
            continue;
        };
        match step {
            Repair::Sync => summary.queued_to_sync += 1,
            Repair::Rewrite => {
                if let Some(x) = state.cross_ref(kind, id).await? {
                    // The sync writes Reckon whenever the content differs from the stored
                    // hash; an empty hash matches nothing.
                    state
                        .put_cross_ref(&CrossRef {
                            content_hash: String::new(),
                            ..x
                        })
                        .await?;
                }
                summary.queued_to_rewrite += 1;
            }
            Repair::Recreate => {
                if let Some(gone) = reckon_id {
                    state.forget_cross_ref(kind, id, gone).await?;
                    state
                        .audit(&AuditEntry {
                            at: now,
                            kind,
                            cliniko_id: id,
                            version: record.version(),
                            outcome: Outcome::Skipped,
                            reckon_id: Some(gone),
                            detail: "link dropped by reconcile --repair: the Reckon record was deleted; queued to re-create".into(),
                        })
                        .await?;
                }
                summary.queued_to_recreate += 1;
            }
        }
        items.push(WorkItem::new(record, now));
    }
    if !items.is_empty() {
        queue.enqueue(items).await?;
    }
    Ok(summary)
}

/// Why `link` refused.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("Cliniko has no {kind} {id}")]
    NoSuchClinikoRecord { kind: EntityKind, id: ClinikoId },
    #[error("Reckon has no {what} {id}")]
    NoSuchReckonRecord { what: &'static str, id: ReckonId },
    #[error("{kind} {id} is already linked to Reckon {what} {linked}")]
    AlreadyLinked {
        kind: EntityKind,
        id: ClinikoId,
        what: &'static str,
        linked: ReckonId,
    },
    #[error("Reckon {what} {reckon_id} is already linked to {kind} {owner}")]
    TakenByAnother {
        what: &'static str,
        reckon_id: ReckonId,
        kind: EntityKind,
        owner: ClinikoId,
    },
    #[error(transparent)]
    Failed(#[from] ReconcileError),
}

macro_rules! link_failure_from {
    ($($t:ty),*) => {$(
        impl From<$t> for LinkError {
            fn from(e: $t) -> Self {
                LinkError::Failed(e.into())
            }
        }
    )*};
}
link_failure_from!(SourceError, SinkError, StateError);

/// A link to record: Cliniko's `kind` `cliniko_id` is Reckon's `reckon_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkRequest {
    pub kind: EntityKind,
    pub cliniko_id: ClinikoId,
    pub reckon_id: ReckonId,
}

/// What the Reckon record of a Cliniko kind is called, and which kinds share it.
fn reckon_side(kind: EntityKind) -> (&'static str, &'static [EntityKind]) {
    match kind {
        EntityKind::Patient => ("customer", &[EntityKind::Patient]),
        EntityKind::Product | EntityKind::BillableItem => {
            ("item", &[EntityKind::Product, EntityKind::BillableItem])
        }
        EntityKind::Invoice | EntityKind::Appointment => {
            ("invoice", &[EntityKind::Invoice, EntityKind::Appointment])
        }
    }
}

/// Accepts a link suggestion: records that Cliniko's `kind` `id` is Reckon's `reckon_id`,
/// then queues the record so the sync brings the Reckon record in line with Cliniko
/// (names, contact details, amounts). Refuses when either side is missing or already
/// linked elsewhere. Linking the same pair again is harmless.
pub async fn link<S, B, St, Q>(
    source: &S,
    book: &B,
    state: &St,
    queue: &Q,
    request: LinkRequest,
    now: DateTime<Utc>,
) -> Result<(), LinkError>
where
    S: ClinikoSource,
    B: ReckonBook,
    St: StateStore,
    Q: WorkQueue,
{
    let LinkRequest {
        kind,
        cliniko_id: id,
        reckon_id,
    } = request;
    let (what, sharing) = reckon_side(kind);
    let record = source
        .record(kind, id)
        .await?
        .ok_or(LinkError::NoSuchClinikoRecord { kind, id })?;
    if let Some(x) = state.cross_ref(kind, id).await?
        && x.reckon_id != reckon_id
    {
        return Err(LinkError::AlreadyLinked {
            kind,
            id,
            what,
            linked: x.reckon_id,
        });
    }
    for k in sharing {
        if let Some(owner) = state.cross_ref_by_reckon(*k, reckon_id).await?
            && !(owner.kind == kind && owner.cliniko_id == id)
        {
            return Err(LinkError::TakenByAnother {
                what,
                reckon_id,
                kind: *k,
                owner: owner.cliniko_id,
            });
        }
    }
    let exists = match kind {
        EntityKind::Patient => book.customer(reckon_id).await.map(|r| r.is_some()),
        EntityKind::Product | EntityKind::BillableItem => {
            book.item(reckon_id).await.map(|r| r.is_some())
        }
        EntityKind::Invoice | EntityKind::Appointment => {
            book.invoice_record(reckon_id).await.map(|r| r.is_some())
        }
    }?;
    if !exists {
        return Err(LinkError::NoSuchReckonRecord {
            what,
            id: reckon_id,
        });
    }
    // An empty content hash makes the next sync of the record write Reckon; no stored name
    // makes it choose the Cliniko name (disambiguated if another record has it).
    state
        .put_cross_ref(&CrossRef {
            kind,
            cliniko_id: id,
            reckon_id,
            version: record.version(),
            content_hash: String::new(),
            reckon_name: None,
            // A person said the Reckon record is this one: it existed before the link.
            adopted: true,
        })
        .await?;
    state
        .audit(&AuditEntry {
            at: now,
            kind,
            cliniko_id: id,
            version: record.version(),
            outcome: Outcome::Linked,
            reckon_id: Some(reckon_id),
            detail: format!("linked by hand to Reckon {what} {reckon_id} (cliniko-reckon link)"),
        })
        .await?;
    queue.enqueue(vec![WorkItem::new(record, now)]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_kinds_order_dependencies_first_so_the_repair_plan_queues_them_first() {
        assert!(EntityKind::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(EntityKind::ALL.last(), Some(&EntityKind::Appointment));
    }
}
