//! `poll_once`: read what changed in Cliniko since the watermark, queue what is new, then
//! advance the watermark. An idle cycle costs one Cliniko request per entity type.

use super::PipelineError;
use crate::domain::{ClinikoId, EntityKind, FUTURE_TOLERANCE, Record};
use crate::ports::{
    AuditEntry, Changes, ClinikoSource, Failure, Outcome, StateStore, WorkItem, WorkQueue,
};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct PollConfig {
    /// How far before the watermark each poll starts again: covers second-precision
    /// timestamps and rows that shift between pages while we read (docs/vendor-apis.md: 1–2 minutes).
    pub overlap: Duration,
    /// The entity types polled, in dependency order: appointments only when the clinic
    /// invoices them, invoices unless it invoices appointments only
    /// ([`crate::mapping::appointment::InvoicingSource::kinds`]).
    pub kinds: Vec<EntityKind>,
}

impl PollConfig {
    /// The default overlap, polling what `mapping`'s invoicing source reads.
    pub fn for_mapping(mapping: &crate::mapping::MappingConfig) -> Self {
        PollConfig {
            kinds: mapping.invoicing.appointments.source.kinds(),
            ..PollConfig::default()
        }
    }
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            overlap: Duration::minutes(2),
            kinds: crate::mapping::appointment::InvoicingSource::default().kinds(),
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
    /// Records Cliniko sent that could not be read or queued: each is parked with its
    /// reason (in the failures table) while the rest flow on.
    pub parked: Vec<Parked>,
    pub watermark: Option<DateTime<Utc>>,
}

/// A record the poll parked instead of queueing, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parked {
    pub kind: EntityKind,
    /// `None` when even the record's id was unreadable.
    pub cliniko_id: Option<ClinikoId>,
    pub reason: String,
}

/// The timestamp the Cliniko filter compares: the record's own `updated_at`.
fn polled_at(record: &Record) -> DateTime<Utc> {
    match record {
        Record::Patient(r) => r.updated_at,
        Record::Product(r) => r.updated_at,
        Record::BillableItem(r) => r.updated_at,
        Record::Invoice(r) => r.updated_at,
        Record::Appointment(r) => r.updated_at,
    }
}

/// One poll of one entity type. The watermark moves only after every page was read and
/// every new version was queued (or parked), so a crash anywhere repeats work instead of
/// losing it. A record that cannot be read or queued is parked with its reason and the
/// watermark moves past it: it is kept, retried when Cliniko changes it or on request.
/// The watermark never moves past `now` plus [`FUTURE_TOLERANCE`].
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
    let since = watermark.map(|w| w.checked_sub_signed(config.overlap).unwrap_or(w));
    let Changes {
        records,
        unreadable,
    } = source.changed_since(kind, since).await?;
    let fetched = records.len() + unreadable.len();
    let newest_seen = records
        .iter()
        .map(polled_at)
        .chain(unreadable.iter().filter_map(|u| u.updated_at))
        .max()
        .map(|t| t.min(now + FUTURE_TOLERANCE));

    let mut parked = Vec::new();
    for u in &unreadable {
        match u.failure(now) {
            Some(failure) => park_failure(state, &failure).await?,
            None => {
                tracing::error!(kind = %kind, error = %u.error, "unreadable Cliniko record without a readable id")
            }
        }
        parked.push(Parked {
            kind,
            cliniko_id: u.id,
            reason: u.error.clone(),
        });
    }

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
    let mut enqueued = items.len();
    if !items.is_empty() {
        for refused in queue.enqueue(items).await? {
            enqueued -= 1;
            park_failure(
                state,
                &Failure {
                    kind: refused.kind,
                    cliniko_id: refused.cliniko_id,
                    version: refused.version,
                    error: refused.reason.clone(),
                    retryable: false,
                    attempts: 1,
                    last_at: now,
                },
            )
            .await?;
            parked.push(Parked {
                kind: refused.kind,
                cliniko_id: Some(refused.cliniko_id),
                reason: refused.reason,
            });
        }
    }
    if let Some(newest) = newest_seen {
        state.advance_watermark(kind, newest).await?;
    }
    Ok(PollReport {
        kind,
        fetched,
        enqueued,
        already_applied: fetched.saturating_sub(enqueued + parked.len()),
        parked,
        watermark: match (watermark, newest_seen) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
    })
}

/// Records a failure and its audit line (the record waits in `status` and the report).
async fn park_failure<St: StateStore>(state: &St, failure: &Failure) -> Result<(), PipelineError> {
    state.record_failure(failure).await?;
    state
        .audit(&AuditEntry {
            at: failure.last_at,
            kind: failure.kind,
            cliniko_id: failure.cliniko_id,
            version: failure.version,
            outcome: Outcome::Failed,
            reckon_id: None,
            detail: failure.error.clone(),
        })
        .await?;
    Ok(())
}

/// What one poll of every entity type found; a kind whose poll failed (Cliniko down, say)
/// is listed with the error and the others still ran.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PollRound {
    pub reports: Vec<PollReport>,
    pub errors: Vec<PollFailure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PollFailure {
    pub kind: EntityKind,
    pub error: String,
    pub retryable: bool,
}

/// Polls every entity type once, in dependency order. A failed poll of one kind (Cliniko
/// down or throttled) is reported and does not stop the others, nor the draining of what
/// is queued; a failure of our own state stops the round.
pub async fn poll_every_kind<S, St, Q>(
    source: &S,
    state: &St,
    queue: &Q,
    config: &PollConfig,
    mut on_report: impl FnMut(&PollReport),
) -> Result<PollRound, PipelineError>
where
    S: ClinikoSource,
    St: StateStore,
    Q: WorkQueue,
{
    let mut round = PollRound::default();
    for &kind in &config.kinds {
        match poll_once(source, state, queue, kind, config, Utc::now()).await {
            Ok(report) => {
                on_report(&report);
                round.reports.push(report);
            }
            Err(PipelineError::State(e)) => return Err(PipelineError::State(e)),
            Err(e) => {
                tracing::warn!(kind = %kind, error = %e, "polling failed; the others go on");
                round.errors.push(PollFailure {
                    kind,
                    retryable: e.is_retryable(),
                    error: e.to_string(),
                });
            }
        }
    }
    Ok(round)
}
