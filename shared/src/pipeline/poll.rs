//! `poll_once`: read what changed in Cliniko since the watermark, queue what is new, then
//! advance the watermark. An idle cycle costs one Cliniko request per entity type.

use super::PipelineError;
use crate::domain::{EntityKind, Record};
use crate::ports::{ClinikoSource, StateStore, WorkItem, WorkQueue};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct PollConfig {
    /// How far before the watermark each poll starts again: covers second-precision
    /// timestamps and rows that shift between pages while we read (NOTES §5: 1–2 minutes).
    pub overlap: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            overlap: Duration::minutes(2),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PollReport {
    pub kind: EntityKind,
    /// Rows Cliniko returned (the overlap re-reads some every time).
    pub fetched: usize,
    /// Records queued for the workers.
    pub enqueued: usize,
    /// Versions already applied, or repeated within the read.
    pub already_applied: usize,
    pub watermark: Option<DateTime<Utc>>,
}

/// The timestamp the Cliniko filter compares: the record's own `updated_at`.
fn polled_at(record: &Record) -> DateTime<Utc> {
    match record {
        Record::Patient(r) => r.updated_at,
        Record::Product(r) => r.updated_at,
        Record::BillableItem(r) => r.updated_at,
        Record::Invoice(r) => r.updated_at,
    }
}

/// One poll of one entity type. The watermark moves only after every page was read and
/// every new version was queued, so a crash anywhere repeats work instead of losing it.
pub async fn poll_once<S, St, Q>(
    source: &S,
    state: &St,
    queue: &Q,
    kind: EntityKind,
    config: &PollConfig,
    now: DateTime<Utc>,
) -> Result<PollReport, PipelineError>
where
    S: ClinikoSource,
    St: StateStore,
    Q: WorkQueue,
{
    let watermark = state.watermark(kind).await?;
    let since = watermark.map(|w| w - config.overlap);
    let records = source.changed_since(kind, since).await?;
    let fetched = records.len();
    let newest_seen = records.iter().map(polled_at).max();

    // Dedupe by id, keeping the newest version read.
    let mut latest: HashMap<_, Record> = HashMap::with_capacity(records.len());
    let mut order = Vec::with_capacity(records.len());
    for record in records {
        match latest.get(&record.id()) {
            Some(seen) if seen.version() >= record.version() => {}
            Some(_) => {
                latest.insert(record.id(), record);
            }
            None => {
                order.push(record.id());
                latest.insert(record.id(), record);
            }
        }
    }

    let mut items = Vec::new();
    for id in order {
        let Some(record) = latest.remove(&id) else {
            continue;
        };
        match state.cross_ref(kind, id).await? {
            Some(x) if x.version >= record.version() => continue,
            // Withdrawn before it was ever synced: there is nothing to do in Reckon.
            None if record.is_withdrawn_invoice() => continue,
            _ => {}
        }
        items.push(WorkItem::new(record, now));
    }
    let enqueued = items.len();
    if !items.is_empty() {
        queue.enqueue(items).await?;
    }
    if let Some(newest) = newest_seen {
        state.advance_watermark(kind, newest).await?;
    }
    Ok(PollReport {
        kind,
        fetched,
        enqueued,
        already_applied: fetched - enqueued,
        watermark: match (watermark, newest_seen) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
    })
}
