//! What the Lambda functions run, free of AWS wiring so it is tested with the local twins:
//! the sync workers' SQS batch handler (one `apply` per message, partial batch failures)
//! and the poller's loop (`poll_once` per entity type, optionally repeated inside one
//! invocation). Each function's `main.rs` only builds clients and calls these.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use cliniko_reckon::domain::{EntityKind, TenantId};
use cliniko_reckon::pipeline::disposition::{Disposition, RetryPolicy, disposition, park};
use cliniko_reckon::pipeline::requeue::{Requeue, requeue_failures};
use cliniko_reckon::pipeline::{
    PipelineError, PollConfig, PollFailure, PollReport, Syncer, poll_every_kind,
};
use cliniko_reckon::ports::{
    ClinikoSource, ReckonSink, StateStore, WORK_SCHEMA, WorkItem, WorkQueue,
};
use futures_util::FutureExt;
use serde::Serialize;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// Why a message could not even be read: it goes to the DLQ as it is.
#[derive(Debug, thiserror::Error)]
pub enum PoisonMessage {
    #[error("not a work item: {0}")]
    Unreadable(String),
    #[error("work item schema {0} is newer than this function understands ({WORK_SCHEMA})")]
    NewerSchema(u32),
    #[error("a {0} does not belong on this queue")]
    WrongQueue(EntityKind),
    /// Never applied: this deployment keeps another clinic's books.
    #[error("a record of tenant {found}, but this function serves tenant {serves}")]
    OtherTenant { found: TenantId, serves: TenantId },
}

/// Reads a queued work item, accepting every schema up to the current one, for the tenant
/// this function serves only.
pub fn decode(
    body: &str,
    accepts: &[EntityKind],
    serves: &TenantId,
) -> Result<WorkItem, PoisonMessage> {
    let item: WorkItem =
        serde_json::from_str(body).map_err(|e| PoisonMessage::Unreadable(e.to_string()))?;
    if item.schema > WORK_SCHEMA {
        return Err(PoisonMessage::NewerSchema(item.schema));
    }
    if !accepts.contains(&item.record.kind()) {
        return Err(PoisonMessage::WrongQueue(item.record.kind()));
    }
    if item.tenant != *serves {
        return Err(PoisonMessage::OtherTenant {
            found: item.tenant,
            serves: serves.clone(),
        });
    }
    Ok(item)
}

fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// One SQS batch for a sync worker, with the pipeline's one failure policy
/// ([`disposition`]): applied messages are deleted; a passing failure comes back on the
/// queue after the visibility timeout; a permanent one, or a passing one on its last
/// receive (`max_receives`, the queue's `maxReceiveCount`), is recorded with its reason (for
/// `status`, the report and the alarm) and left to reach the DLQ; a lost Reckon connection
/// keeps the message and raises the reconnect alarm.
pub async fn handle_batch<S, R, St>(
    syncer: &Syncer<S, R, St>,
    event: SqsEvent,
    accepts: &[EntityKind],
    max_receives: u32,
    serves: &TenantId,
) -> Result<SqsBatchResponse, PipelineError>
where
    S: ClinikoSource,
    R: ReckonSink,
    St: StateStore,
{
    // SQS waits the visibility timeout between receives; only the count matters here.
    let retry = RetryPolicy {
        max_attempts: max_receives,
        ..RetryPolicy::default()
    };
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let mut fail = |id: String| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        };
        let body = message.body.as_deref().unwrap_or_default();
        let item = match decode(body, accepts, serves) {
            Ok(item) => item,
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "poison message");
                fail(id);
                continue;
            }
        };
        let record = &item.record;
        // The last line of defence: nothing a record contains may panic the batch (the
        // later messages would never be tried). A panic is that record's failure alone.
        let applied = match AssertUnwindSafe(syncer.apply(record)).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => Err(PipelineError::Internal(format!(
                "{} {}: the sync panicked applying it ({}); it is parked for a person",
                record.kind(),
                record.id(),
                panic_message(panic.as_ref())
            ))),
        };
        let e = match applied {
            Ok(applied) => {
                tracing::info!(
                    kind = %record.kind(),
                    cliniko_id = %record.id(),
                    outcome = applied.outcome.as_str(),
                    "applied"
                );
                continue;
            }
            Err(e) => e,
        };
        let receives = receive_count(&message);
        match disposition(&e, receives, &retry) {
            Disposition::StopTenant => {
                // Nothing works until someone reconnects: alarm, and keep the message.
                tracing::error!(error = %e, "Reckon needs to be connected again");
                emf::emit(emf::Metric::ReckonReauthorizationNeeded, 1.0);
            }
            Disposition::Retry { .. } => {
                tracing::warn!(kind = %record.kind(), cliniko_id = %record.id(), receives, error = %e, "will retry");
            }
            Disposition::Park => {
                tracing::error!(kind = %record.kind(), cliniko_id = %record.id(), receives, error = %e, "failed");
                park(&syncer.state, record, &e, receives, Utc::now()).await?;
            }
        }
        fail(id);
    }
    Ok(response)
}

/// What a panic said, when it said it with a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// How the poller spends one invocation: `rounds` polls of every entity type, `pause`
/// apart (e.g. 5 × 10 s inside a one-minute schedule keeps changes seconds fresh while an
/// idle round costs one Cliniko request per type: 4 × 6 = 24 of the 200 per minute).
#[derive(Debug, Clone)]
pub struct PollLoop {
    pub rounds: u32,
    pub pause: Duration,
    pub poll: PollConfig,
    /// How long a record parked for a passing reason (an outage) rests before the poller
    /// queues it again (once per invocation; each time it is marked as tried).
    pub requeue_after: chrono::TimeDelta,
}

impl Default for PollLoop {
    fn default() -> Self {
        PollLoop {
            rounds: 1,
            pause: Duration::from_secs(10),
            poll: PollConfig::default(),
            requeue_after: chrono::TimeDelta::minutes(10),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PollSummary {
    pub rounds: u32,
    pub enqueued: usize,
    /// Parked records queued again (see [`PollLoop::requeue_after`]).
    pub requeued: usize,
    pub reports: Vec<PollReport>,
    /// Entity types whose poll failed (the others still ran); retried next round.
    pub errors: Vec<PollFailure>,
}

/// The poller's invocation: every entity type in dependency order, `rounds` times.
pub async fn poll_rounds<S, St, Q>(
    source: &S,
    state: &St,
    queue: &Q,
    plan: &PollLoop,
) -> Result<PollSummary, PipelineError>
where
    S: ClinikoSource,
    St: StateStore,
    Q: WorkQueue,
{
    let mut summary = PollSummary::default();
    // As the local run does before it polls: what an outage parked gets another go. A
    // failure here is logged and never stops the polls.
    match requeue_failures(source, state, queue, Requeue::Retryable, plan.requeue_after).await {
        Ok(n) => summary.requeued = n,
        Err(e) => tracing::error!(error = %e, "re-queueing parked records failed"),
    }
    for round in 0..plan.rounds.max(1) {
        if round > 0 {
            tokio::time::sleep(plan.pause).await;
        }
        let round = poll_every_kind(source, state, queue, &plan.poll, |_| {}).await?;
        for e in &round.errors {
            tracing::error!(kind = %e.kind, error = %e.error, "polling failed");
        }
        summary.enqueued += round.reports.iter().map(|r| r.enqueued).sum::<usize>();
        summary.reports.extend(round.reports);
        summary.errors.extend(round.errors);
        summary.rounds += 1;
    }
    Ok(summary)
}

/// What one reconciler run produced.
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileOutcome {
    pub mismatches: u64,
    pub summary: std::collections::BTreeMap<String, u64>,
    /// The HTML report's key in the bucket.
    pub report_key: String,
    pub keys: Vec<String>,
    /// What the repair queued, when the invocation asked for one (`{"repair": true}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<cliniko_reckon::reconcile::RepairSummary>,
}

/// Whether a reconciler invocation asks for a repair: `{"repair": true}` (the nightly
/// schedule does not; a person invokes it after reading the report).
pub fn repair_requested(event: &serde_json::Value) -> bool {
    event
        .get("repair")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// The reconciler's invocation: the shared reconcile-and-publish step (reports to S3 on
/// AWS), then the counts as metrics. `repair_into` queues what the sync can put right (as
/// `cliniko-reckon reconcile --repair`).
#[allow(clippy::too_many_arguments)]
pub async fn reconcile_and_publish<S, B, St, R, Q>(
    source: &S,
    book: &B,
    state: &St,
    mapping: &cliniko_reckon::mapping::MappingConfig,
    tenant: &str,
    reports: &R,
    repair_into: Option<&Q>,
) -> Result<ReconcileOutcome, ReconcilerError>
where
    S: ClinikoSource,
    B: cliniko_reckon::ports::ReckonBook,
    St: StateStore,
    R: cliniko_reckon::ports::ReportSink,
    Q: WorkQueue,
{
    use cliniko_reckon::reconcile::Category;
    let run = cliniko_reckon::reconcile::reconcile_and_publish(
        source,
        book,
        state,
        mapping,
        tenant,
        Utc::now(),
        reports,
        repair_into,
    )
    .await?;
    let report = &run.report;
    let per_category: Vec<(&str, u64)> = Category::ALL
        .iter()
        .map(|c| (c.key(), report.count(*c)))
        .collect();
    emf::emit_reconciliation(report.total(), &per_category);
    Ok(ReconcileOutcome {
        mismatches: report.total(),
        summary: report.summary.clone(),
        report_key: run
            .published
            .iter()
            .find(|k| k.ends_with(".html"))
            .cloned()
            .unwrap_or_default(),
        keys: run.published,
        repair: run.repair,
    })
}

/// Why a reconciler run failed (mismatches are not failures).
#[derive(Debug, thiserror::Error)]
pub enum ReconcilerError {
    #[error(transparent)]
    Reconcile(#[from] cliniko_reckon::reconcile::ReconcileError),
}

pub mod emf;
#[cfg(feature = "aws")]
pub mod runtime;
#[cfg(feature = "aws")]
pub mod wiring;
