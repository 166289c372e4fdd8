//! Local mode in one process: poll every entity type into the SQLite queue, then drain it
//! through `Syncer::apply`, retrying what can be retried with backoff and parking the rest
//! in the failures table (the local twin of a DLQ).

use super::disposition::{Disposition, disposition};
use super::{PipelineError, PollConfig, PollReport, PollRound, Syncer, poll_every_kind};
use crate::adapters::sqlite::SqliteState;
use crate::domain::EntityKind;
use crate::ports::{ClinikoSource, Outcome, ReckonSink};
use chrono::Utc;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub use super::disposition::{RetryPolicy, park};
pub use super::requeue::{Requeue, requeue_failures};

/// Per entity type: what happened to the records this run applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub linked: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Attempts that failed with a retryable error and were queued again.
    pub retried: u64,
}

impl Counts {
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Linked => self.linked += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Failed => self.failed += 1,
        }
    }

    /// Writes this run made to Reckon records (creates, updates, links).
    pub fn writes(&self) -> u64 {
        self.created + self.updated + self.linked
    }

    pub fn add(&mut self, other: &Counts) {
        self.created += other.created;
        self.updated += other.updated;
        self.linked += other.linked;
        self.unchanged += other.unchanged;
        self.skipped += other.skipped;
        self.failed += other.failed;
        self.retried += other.retried;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrainSummary {
    pub per_kind: BTreeMap<EntityKind, Counts>,
}

impl DrainSummary {
    pub fn failed(&self) -> u64 {
        self.per_kind.values().map(|c| c.failed).sum()
    }

    pub fn merge(&mut self, other: &DrainSummary) {
        for (kind, c) in &other.per_kind {
            self.per_kind.entry(*kind).or_default().add(c);
        }
    }
}

/// What the runner reports as it goes (drives the CLI's progress bars).
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    Polled(&'a PollReport),
    Applied {
        kind: EntityKind,
        outcome: Outcome,
        detail: &'a str,
    },
    Retrying {
        kind: EntityKind,
        error: &'a str,
    },
}

/// Polls every entity type once, in dependency order, into the local queue (see
/// [`poll_every_kind`]).
pub async fn poll_all<S: ClinikoSource>(
    source: &S,
    state: &SqliteState,
    config: &PollConfig,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<PollRound, PipelineError> {
    poll_every_kind(source, state, state, config, |r| {
        progress(Progress::Polled(r))
    })
    .await
}

/// One local run: queue parked records again, poll every entity type, drain the queue.
/// A failed re-queue or poll never prevents the drain: what is queued is applied, and the
/// errors are in the outcome.
pub async fn run_once<S, R>(
    syncer: &Syncer<S, R, SqliteState>,
    poll: &PollConfig,
    retry: &RetryPolicy,
    requeue: Requeue,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<RunOutcome, PipelineError>
where
    S: ClinikoSource,
    R: ReckonSink,
{
    let mut outcome = RunOutcome::default();
    match requeue_failures(
        &syncer.source,
        &syncer.state,
        &syncer.state,
        requeue,
        chrono::TimeDelta::zero(),
    )
    .await
    {
        Ok(n) => outcome.requeued = n,
        Err(PipelineError::State(e)) => return Err(PipelineError::State(e)),
        Err(e) => outcome.requeue_error = Some(e.to_string()),
    }
    outcome.polls = poll_all(&syncer.source, &syncer.state, poll, progress).await?;
    outcome.drained = drain(syncer, retry, progress).await?;
    Ok(outcome)
}

/// What [`run_once`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunOutcome {
    pub requeued: usize,
    pub requeue_error: Option<String>,
    pub polls: PollRound,
    pub drained: DrainSummary,
}

impl RunOutcome {
    /// Records parked or failed in this run, and polls or re-queues that failed.
    pub fn problems(&self) -> u64 {
        let parked: usize = self.polls.reports.iter().map(|r| r.parked.len()).sum();
        self.drained.failed()
            + parked as u64
            + self.polls.errors.len() as u64
            + u64::from(self.requeue_error.is_some())
    }
}

/// Applies queued records until the queue is empty, waiting for records whose retry is due
/// (so `sync --once` ends with every record applied or parked as failed).
pub async fn drain<S, R>(
    syncer: &Syncer<S, R, SqliteState>,
    retry: &RetryPolicy,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<DrainSummary, PipelineError>
where
    S: ClinikoSource,
    R: ReckonSink,
{
    let state = &syncer.state;
    let mut summary = DrainSummary::default();
    loop {
        let now = Utc::now();
        let batch = state.claim(50, now)?;
        if batch.is_empty() {
            match state.next_due()? {
                Some(due) => {
                    let wait = (due - now).to_std().unwrap_or(Duration::ZERO);
                    tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
                    continue;
                }
                None => return Ok(summary),
            }
        }
        for claimed in batch {
            let record = &claimed.item.record;
            let kind = record.kind();
            let counts = summary.per_kind.entry(kind).or_default();
            match syncer.apply(record).await {
                Ok(applied) => {
                    counts.count(applied.outcome);
                    progress(Progress::Applied {
                        kind,
                        outcome: applied.outcome,
                        detail: &applied.detail,
                    });
                    state.ack(claimed.seq)?;
                }
                Err(e) => {
                    let attempts = claimed.attempts + 1;
                    let message = e.to_string();
                    match disposition(&e, attempts, retry) {
                        Disposition::Retry { after } => {
                            counts.retried += 1;
                            progress(Progress::Retrying {
                                kind,
                                error: &message,
                            });
                            let at = Utc::now()
                                + chrono::Duration::from_std(after)
                                    .unwrap_or_else(|_| chrono::Duration::seconds(60));
                            state.retry_later(claimed.seq, at, &message)?;
                        }
                        Disposition::Park => {
                            counts.count(Outcome::Failed);
                            park(state, record, &e, attempts, Utc::now()).await?;
                            progress(Progress::Applied {
                                kind,
                                outcome: Outcome::Failed,
                                detail: &message,
                            });
                            state.ack(claimed.seq)?;
                        }
                        // The queue is kept as it is: after `connect` the next run goes on.
                        Disposition::StopTenant => return Err(e),
                    }
                }
            }
        }
    }
}
