//! What the Lambda functions run, free of AWS wiring so it is tested with the local twins:
//! the sync workers' SQS batch handler (one `apply` per message, partial batch failures)
//! and the poller's loop (`poll_once` per entity type, optionally repeated inside one
//! invocation). Each function's `main.rs` only builds clients and calls these.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use cliniko_reckon::domain::{EntityKind, TenantId};
use cliniko_reckon::pipeline::disposition::{Disposition, RetryPolicy, disposition, hold, park};
use cliniko_reckon::pipeline::requeue::{Requeue, requeue_failures};
use cliniko_reckon::pipeline::{
    PipelineError, PollConfig, PollFailure, PollReport, Syncer, poll_every_kind,
};
use cliniko_reckon::ports::{
    ClinikoSource, ReckonSink, StateStore, TenantDirectory, WORK_SCHEMA, WorkItem, WorkQueue,
};
use futures_util::FutureExt;
use serde::Serialize;
use std::panic::AssertUnwindSafe;
use std::time::Duration;
pub use tenancy::{BuildForTenant, TenantUnavailable, Tenants};
use tracing::Instrument;

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
    let item = decode_any_tenant(body, accepts)?;
    if item.tenant != *serves {
        return Err(PoisonMessage::OtherTenant {
            found: item.tenant,
            serves: serves.clone(),
        });
    }
    Ok(item)
}

/// Reads a queued work item of any tenant (the deployed workers serve them all).
pub fn decode_any_tenant(body: &str, accepts: &[EntityKind]) -> Result<WorkItem, PoisonMessage> {
    let item: WorkItem =
        serde_json::from_str(body).map_err(|e| PoisonMessage::Unreadable(e.to_string()))?;
    if item.schema > WORK_SCHEMA {
        return Err(PoisonMessage::NewerSchema(item.schema));
    }
    if !accepts.contains(&item.record.kind()) {
        return Err(PoisonMessage::WrongQueue(item.record.kind()));
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

/// A message that decoded to a work item.
struct Delivered {
    message_id: String,
    receives: u32,
    item: WorkItem,
}

fn failure(message_id: &str) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = message_id.to_string();
    failure
}

/// After this many passing failures in a row, a tenant's Reckon (or Cliniko) is taken to be
/// down: the rest of its messages in the batch go back untried instead of each waiting out
/// its own timeouts, so the batch (and the other tenants' messages in it) is not held up.
/// One is enough: a passing failure reaches here only after the client's own retries.
const OUTAGE_AFTER: u32 = 1;

/// One SQS batch for a sync worker serving one tenant's syncer (`serves`); a message of
/// another tenant is poison. The deployed workers serve every tenant of the directory
/// through [`handle_tenant_batch`]; both share [`apply_in_order`].
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
    let mut response = SqsBatchResponse::default();
    let mut group = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        match decode(message.body.as_deref().unwrap_or_default(), accepts, serves) {
            Ok(item) => group.push(Delivered {
                message_id: id,
                receives: receive_count(&message),
                item,
            }),
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "poison message");
                response.batch_item_failures.push(failure(&id));
            }
        }
    }
    let outcome = apply_in_order(syncer, serves, &group, max_receives, None, |_| async {
        Ok(true)
    })
    .await?;
    response
        .batch_item_failures
        .extend(outcome.failed.iter().map(|id| failure(id)));
    Ok(response)
}

/// One SQS batch for a sync worker serving every tenant of the directory: the messages are
/// grouped by tenant and the groups applied concurrently, each in its own order, so one
/// clinic's slow or failing Reckon never holds up another's records. A paused tenant's
/// records, and those of a tenant that needs Reckon connected again, are kept as passing
/// failures and deleted from the queue (the poller's re-queue brings them back once the
/// tenant is active); a record of an unknown tenant is poison.
///
/// `budget` bounds each tenant's group (the invocation's time left, less a margin): a group
/// still running then (a tenant's Reckon hanging, a token lease held by a crashed holder)
/// has its messages returned, and kept as passing failures on their last receive, while the
/// other tenants' results stand. Nothing of one clinic can time out the whole batch.
pub async fn handle_tenant_batch<D, B, S, R, St>(
    tenants: &Tenants<D, B>,
    event: SqsEvent,
    accepts: &[EntityKind],
    max_receives: u32,
    budget: std::time::Duration,
) -> SqsBatchResponse
where
    D: TenantDirectory,
    B: BuildForTenant<Built = Syncer<S, R, St>> + HoldState<St>,
    S: ClinikoSource,
    R: ReckonSink,
    St: StateStore,
{
    let mut response = SqsBatchResponse::default();
    let mut groups: std::collections::BTreeMap<TenantId, Vec<Delivered>> = Default::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        match decode_any_tenant(message.body.as_deref().unwrap_or_default(), accepts) {
            Ok(item) => groups
                .entry(item.tenant.clone())
                .or_default()
                .push(Delivered {
                    message_id: id,
                    receives: receive_count(&message),
                    item,
                }),
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "poison message");
                response.batch_item_failures.push(failure(&id));
            }
        }
    }
    let runs = groups.iter().map(|(tenant, group)| async move {
        // Every line logged while applying this tenant's records names it.
        let span = tracing::info_span!("tenant", tenant = %tenant);
        let run = tenant_group(tenants, tenant, group, max_receives).instrument(span);
        let failed = match tokio::time::timeout(budget, run).await {
            Ok(failed) => failed,
            Err(_) => {
                tracing::error!(tenant = %tenant, budget_s = budget.as_secs(), "the tenant's batch ran out of time");
                out_of_time(tenants, tenant, group, max_receives).await
            }
        };
        match failed {
            Ok(failed) => failed,
            Err(e) => {
                // The tenant's own state store failed: its messages come back, the
                // other tenants' results stand.
                tracing::error!(tenant = %tenant, error = %e, "recording the batch's outcome failed");
                group.iter().map(|d| d.message_id.clone()).collect()
            }
        }
    });
    for failed in futures_util::future::join_all(runs).await {
        response
            .batch_item_failures
            .extend(failed.iter().map(|id| failure(id)));
    }
    response
}

/// A group cut off by the time budget: every message goes back, and one on its last
/// receive is kept as a passing failure (it may have been applied; applying it again later
/// is harmless).
async fn out_of_time<D, B, S, R, St>(
    tenants: &Tenants<D, B>,
    tenant: &TenantId,
    group: &[Delivered],
    max_receives: u32,
) -> Result<Vec<String>, PipelineError>
where
    D: TenantDirectory,
    B: BuildForTenant<Built = Syncer<S, R, St>> + HoldState<St>,
    S: ClinikoSource,
    R: ReckonSink,
    St: StateStore,
{
    let state = tenants.builder().state(tenant)?;
    let mut failed = Vec::new();
    for d in group {
        if d.receives >= max_receives {
            let reason = "not finished within the worker's time: the tenant's Reckon or token lease was slow";
            hold(&state, &d.item.record, reason, d.receives, Utc::now()).await?;
        } else {
            failed.push(d.message_id.clone());
        }
    }
    Ok(failed)
}

/// Where a worker records the work it holds for a tenant it cannot sync now.
pub trait HoldState<St>: Send + Sync {
    fn state(&self, tenant: &TenantId) -> Result<St, cliniko_reckon::ports::StateError>;
}

async fn tenant_group<D, B, S, R, St>(
    tenants: &Tenants<D, B>,
    tenant: &TenantId,
    group: &[Delivered],
    max_receives: u32,
) -> Result<Vec<String>, PipelineError>
where
    D: TenantDirectory,
    B: BuildForTenant<Built = Syncer<S, R, St>> + HoldState<St>,
    S: ClinikoSource,
    R: ReckonSink,
    St: StateStore,
{
    let unavailable = match tenants.get(tenant).await {
        Ok(syncer) => {
            let known = tenants.outage(tenant).await;
            let outcome = apply_in_order(
                &syncer,
                tenant,
                group,
                max_receives,
                known.clone(),
                |reason| async move { tenants.needs_reconnect(tenant, &reason).await },
            )
            .await?;
            // A known outage simply runs out (`Tenants::outage_rest`); the next batch tries.
            if let (Some(why), None) = (&outcome.outage, known) {
                tenants.mark_outage(tenant, why).await;
            }
            return Ok(outcome.failed);
        }
        Err(unavailable) => unavailable,
    };
    let reason = unavailable.to_string();
    if matches!(unavailable, TenantUnavailable::Unknown(_)) {
        tracing::error!(tenant = %tenant, "poison: {reason}");
        return Ok(group.iter().map(|d| d.message_id.clone()).collect());
    }
    let state = tenants.builder().state(tenant)?;
    let mut failed = Vec::new();
    // Held work is acked: it waits in the failures table and the poller re-queues it once
    // the tenant can be synced. A passing unavailability sends the message back instead,
    // except on its last receive, where it is held like the rest (as `out_of_time` does): a
    // clinic's outage never dead-letters its records.
    let mut held = 0;
    for d in group {
        let last = d.receives >= max_receives;
        if unavailable.holds_work() || last {
            hold(&state, &d.item.record, &reason, d.receives, Utc::now()).await?;
            held += 1;
        } else {
            failed.push(d.message_id.clone());
        }
    }
    let returned = failed.len();
    if matches!(unavailable, TenantUnavailable::Misconfigured { .. }) {
        tracing::error!(tenant = %tenant, held, returned, "{reason}");
    } else {
        tracing::warn!(tenant = %tenant, held, returned, "{reason}");
    }
    Ok(failed)
}

/// What one tenant's group of messages came to.
struct GroupOutcome {
    /// Message ids to report as failed.
    failed: Vec<String>,
    /// Set when the group met an outage (its service kept failing for a passing reason).
    outage: Option<String>,
}

/// One tenant's messages in order, with the pipeline's one failure policy
/// ([`disposition`]): applied messages are deleted; a passing failure comes back on the
/// queue after the visibility timeout; a permanent one, or a passing one on its last
/// receive (`max_receives`, the queue's `maxReceiveCount`), is recorded with its reason (for
/// `status`, the report and the alarm) and left to reach the DLQ. A lost Reckon connection
/// stops the tenant (`stop_tenant` marks it; true when this call did, so the alarm fires
/// once): that record and the rest of the group are kept as passing failures and deleted.
///
/// After [`OUTAGE_AFTER`] passing failures in a row (or when `known_outage` says the
/// tenant's service failed moments ago), the rest of the group is not tried: each message
/// goes back to the queue, and on its last receive is kept as a passing failure and deleted
/// (an outage is not the record's fault; the poller's re-queue brings it back).
async fn apply_in_order<S, R, St, F, Fut>(
    syncer: &Syncer<S, R, St>,
    tenant: &TenantId,
    group: &[Delivered],
    max_receives: u32,
    known_outage: Option<String>,
    stop_tenant: F,
) -> Result<GroupOutcome, PipelineError>
where
    S: ClinikoSource,
    R: ReckonSink,
    St: StateStore,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<bool, cliniko_reckon::ports::StateError>>,
{
    // SQS waits the visibility timeout between receives; only the count matters here.
    let retry = RetryPolicy {
        max_attempts: max_receives,
        ..RetryPolicy::default()
    };
    let mut failed = Vec::new();
    let mut stopped: Option<String> = None;
    let mut passing_in_a_row = 0u32;
    let mut outage = known_outage;
    let mut untried = 0usize;
    for d in group {
        let record = &d.item.record;
        if let Some(reason) = &stopped {
            hold(&syncer.state, record, reason, d.receives, Utc::now()).await?;
            continue;
        }
        if let Some(why) = &outage {
            untried += 1;
            if d.receives >= max_receives {
                let reason = format!("not tried, the tenant's service was failing: {why}");
                hold(&syncer.state, record, &reason, d.receives, Utc::now()).await?;
            } else {
                failed.push(d.message_id.clone());
            }
            continue;
        }
        let e = match apply_guarded(syncer, record).await {
            Ok(applied) => {
                passing_in_a_row = 0;
                tracing::info!(
                    tenant = %tenant,
                    kind = %record.kind(),
                    cliniko_id = %record.id(),
                    outcome = applied.outcome.as_str(),
                    "applied"
                );
                continue;
            }
            Err(e) => e,
        };
        match disposition(&e, d.receives, &retry) {
            Disposition::StopTenant => {
                let reason = format!("kept until Reckon is connected again: {e}");
                if stop_tenant(reason.clone()).await? {
                    tracing::error!(tenant = %tenant, error = %e, "Reckon needs to be connected again");
                    emf::emit(
                        emf::Metric::ReckonReauthorizationNeeded,
                        1.0,
                        tenant.as_str(),
                    );
                }
                hold(&syncer.state, record, &reason, d.receives, Utc::now()).await?;
                stopped = Some(reason);
                continue;
            }
            Disposition::Retry { .. } => {
                tracing::warn!(tenant = %tenant, kind = %record.kind(), cliniko_id = %record.id(), receives = d.receives, error = %e, "will retry");
            }
            Disposition::Park => {
                tracing::error!(tenant = %tenant, kind = %record.kind(), cliniko_id = %record.id(), receives = d.receives, error = %e, "failed");
                park(&syncer.state, record, &e, d.receives, Utc::now()).await?;
            }
        }
        failed.push(d.message_id.clone());
        if e.is_retryable() && !matches!(e, PipelineError::InProgress(_)) {
            passing_in_a_row += 1;
            if passing_in_a_row >= OUTAGE_AFTER {
                outage = Some(e.to_string());
            }
        } else {
            passing_in_a_row = 0;
        }
    }
    if untried > 0 {
        tracing::warn!(tenant = %tenant, untried, "the tenant's service is failing; the rest of its batch was not tried");
    }
    Ok(GroupOutcome { failed, outage })
}

/// The last line of defence: nothing a record contains may panic the batch (the later
/// messages would never be tried). A panic is that record's failure alone.
async fn apply_guarded<S, R, St>(
    syncer: &Syncer<S, R, St>,
    record: &cliniko_reckon::domain::Record,
) -> Result<cliniko_reckon::pipeline::Applied, PipelineError>
where
    S: ClinikoSource,
    R: ReckonSink,
    St: StateStore,
{
    match AssertUnwindSafe(syncer.apply(record)).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(PipelineError::Internal(format!(
            "{} {}: the sync panicked applying it ({}); it is parked for a person",
            record.kind(),
            record.id(),
            panic_message(panic.as_ref())
        ))),
    }
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
    // After the polls, so new changes are never starved by a long list of kept records:
    // what an outage parked, or a stopped tenant kept, gets another go. A failure here is
    // logged and never fails the invocation.
    match requeue_failures(source, state, queue, Requeue::Retryable, plan.requeue_after).await {
        Ok(n) => summary.requeued = n,
        Err(e) => tracing::error!(error = %e, "re-queueing parked records failed"),
    }
    Ok(summary)
}

/// What the poller needs of one tenant: its Cliniko source, its state and the queues that
/// stamp its id on every message.
pub trait TenantPollParts: Send + Sync {
    type Source: ClinikoSource;
    type State: StateStore;
    type Queue: WorkQueue;
    fn parts(&self) -> (&Self::Source, &Self::State, &Self::Queue);
    /// The tenant's own poll settings (its `sync.overlap_seconds`), else the plan's.
    fn poll_config(&self) -> Option<PollConfig> {
        None
    }
}

/// How one tenant's poll went.
#[derive(Debug, Clone, Serialize)]
pub struct TenantPolled {
    pub tenant: TenantId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<PollSummary>,
    /// Why the tenant was not polled (paused, needs reconnecting, misconfigured), or why its
    /// poll failed; the other tenants are polled all the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The poller's invocation for every tenant of the directory: each active tenant's rounds
/// run concurrently (`concurrency` at a time) with the tenant's own Cliniko client and
/// pacing, so one clinic's slow or failing Cliniko never delays another's changes. Returns
/// one entry per tenant; only a directory that cannot be read fails the invocation.
pub async fn poll_tenants<D, B>(
    tenants: &Tenants<D, B>,
    plan: &PollLoop,
    concurrency: usize,
) -> Result<Vec<TenantPolled>, cliniko_reckon::ports::StateError>
where
    D: TenantDirectory,
    B: BuildForTenant,
    B::Built: TenantPollParts,
{
    use futures_util::StreamExt;
    let entries = tenants.all().await?;
    let polls = entries.into_iter().map(|entry| {
        let span = tracing::info_span!("tenant", tenant = %entry.id);
        poll_one_tenant(tenants, entry, plan).instrument(span)
    });
    Ok(futures_util::stream::iter(polls)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await)
}

async fn poll_one_tenant<D, B>(
    tenants: &Tenants<D, B>,
    entry: cliniko_reckon::ports::TenantEntry,
    plan: &PollLoop,
) -> TenantPolled
where
    D: TenantDirectory,
    B: BuildForTenant,
    B::Built: TenantPollParts,
{
    {
        let tenant = entry.id.clone();
        let parts = match tenants.for_entry(&entry).await {
            Ok(parts) => parts,
            Err(why) => {
                if matches!(
                    why,
                    TenantUnavailable::Misconfigured { .. } | TenantUnavailable::Passing { .. }
                ) {
                    tracing::error!(tenant = %tenant, "not polled: {why}");
                    emf::emit(emf::Metric::PollFailures, 1.0, tenant.as_str());
                }
                return TenantPolled {
                    tenant,
                    summary: None,
                    skipped: Some(why.to_string()),
                };
            }
        };
        let (source, state, queue) = parts.parts();
        let started = std::time::Instant::now();
        let own;
        let plan = match parts.poll_config() {
            Some(poll) => {
                own = PollLoop {
                    poll,
                    ..plan.clone()
                };
                &own
            }
            None => plan,
        };
        match poll_rounds(source, state, queue, plan).await {
            Ok(summary) => {
                let per_round = started.elapsed().as_secs_f64() / f64::from(summary.rounds.max(1));
                if summary.errors.is_empty() {
                    emf::emit(emf::Metric::WatermarkAgeSeconds, per_round, tenant.as_str());
                } else {
                    emf::emit(emf::Metric::PollFailures, 1.0, tenant.as_str());
                }
                tracing::info!(tenant = %tenant, rounds = summary.rounds, enqueued = summary.enqueued, "polled");
                TenantPolled {
                    tenant,
                    summary: Some(summary),
                    skipped: None,
                }
            }
            Err(e) => {
                tracing::error!(tenant = %tenant, error = %e, "polling failed");
                emf::emit(emf::Metric::PollFailures, 1.0, tenant.as_str());
                TenantPolled {
                    tenant,
                    summary: None,
                    skipped: Some(format!("polling failed: {e}")),
                }
            }
        }
    }
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

/// The tenant a reconciler invocation names (`{"tenant": "clinic-a"}`), if any.
pub fn tenant_requested(event: &serde_json::Value) -> Result<Option<TenantId>, String> {
    match event.get("tenant") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(t)) => TenantId::new(t)
            .map(Some)
            .map_err(|e| format!("event field tenant: {e}")),
        Some(other) => Err(format!(
            "event field tenant: expected a tenant id, got {other}"
        )),
    }
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
    emf::emit_reconciliation(tenant, report.total(), &per_category);
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
pub mod tenancy;
#[cfg(feature = "aws")]
pub mod wiring;

#[cfg(test)]
mod tenant_batch_tests {
    //! What a worker does with the records of a tenant it cannot sync now, over the
    //! in-memory Cliniko and Reckon twins and SQLite in memory.
    use super::*;
    use chrono::TimeZone;
    use cliniko_reckon::adapters::memory::{MemoryBook, MemoryCliniko};
    use cliniko_reckon::adapters::sqlite::SqliteState;
    use cliniko_reckon::domain::{Address, ClinikoId, Patient, Record};
    use cliniko_reckon::mapping::MappingConfig;
    use cliniko_reckon::ports::{TenantDirectory, TenantEntry, TenantStatus, WorkItem};

    /// Builds every tenant over the twins, or fails as told (a secret store throttled).
    struct Builder {
        state: SqliteState,
        passing_failure: bool,
    }

    impl BuildForTenant for Builder {
        type Built = Syncer<MemoryCliniko, MemoryBook, SqliteState>;
        async fn build(&self, entry: &TenantEntry) -> Result<Self::Built, TenantUnavailable> {
            if self.passing_failure {
                return Err(TenantUnavailable::passing(
                    &entry.id,
                    "reading its secrets: throttled",
                ));
            }
            Ok(Syncer::new(
                MemoryCliniko::new(),
                MemoryBook::new(),
                self.state.for_tenant(&entry.id),
                MappingConfig::default(),
            ))
        }
    }

    impl HoldState<SqliteState> for Builder {
        fn state(
            &self,
            tenant: &TenantId,
        ) -> Result<SqliteState, cliniko_reckon::ports::StateError> {
            Ok(self.state.for_tenant(tenant))
        }
    }

    fn patient(id: u64) -> Record {
        let at = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
        Record::Patient(Patient {
            id: ClinikoId(id),
            title: None,
            first_name: "Ada".into(),
            last_name: format!("Patient {id}"),
            preferred_first_name: None,
            email: None,
            invoice_email: None,
            address: Address::default(),
            phones: vec![],
            archived_at: None,
            merged_at: None,
            merged_into: None,
            created_at: at,
            updated_at: at,
        })
    }

    /// One message per `(patient id, receive count)` for `tenant`.
    fn batch(tenant: &TenantId, messages: &[(u64, u32)]) -> SqsEvent {
        let mut event = SqsEvent::default();
        for (id, receives) in messages {
            let mut item = WorkItem::new(patient(*id), Utc::now());
            item.tenant = tenant.clone();
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{id}"));
            m.body = Some(serde_json::to_string(&item).unwrap());
            m.attributes
                .insert("ApproximateReceiveCount".into(), receives.to_string());
            event.records.push(m);
        }
        event
    }

    async fn run(status: TenantStatus, passing_failure: bool) -> (Vec<String>, Vec<u64>, u64) {
        let state = SqliteState::open_in_memory().unwrap();
        let tenant = TenantId::new("bondi").unwrap();
        let now = Utc::now();
        state
            .put_tenant(&TenantEntry {
                id: tenant.clone(),
                config: "bondi.toml".into(),
                status: TenantStatus::Active,
                reason: None,
                added_at: now,
                changed_at: now,
            })
            .await
            .unwrap();
        state
            .set_tenant_status(&tenant, status, Some("by a test"), now)
            .await
            .unwrap();
        let builder = Builder {
            state: state.for_tenant(&tenant),
            passing_failure,
        };
        let tenants = Tenants::new(state.for_tenant(&tenant), builder);
        // Receive 1 of 5, and the last receive.
        let response = handle_tenant_batch(
            &tenants,
            batch(&tenant, &[(1, 1), (2, 5)]),
            &[EntityKind::Patient],
            5,
            Duration::from_secs(30),
        )
        .await;
        let returned = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        let held = state
            .for_tenant(&tenant)
            .failures()
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.retryable)
            .map(|f| f.cliniko_id.0)
            .collect();
        let applied = state
            .for_tenant(&tenant)
            .cross_ref(EntityKind::Patient, ClinikoId(1))
            .await
            .unwrap()
            .map_or(0, |_| 1);
        (returned, held, applied)
    }

    #[tokio::test]
    async fn a_passing_unavailability_returns_the_work_and_holds_it_on_its_last_receive() {
        let (returned, held, applied) = run(TenantStatus::Active, true).await;
        assert_eq!(returned, vec!["m1".to_string()], "comes back later");
        assert_eq!(held, vec![2], "the last receive is kept, not dead-lettered");
        assert_eq!(applied, 0);
    }

    #[tokio::test]
    async fn a_paused_tenant_has_all_its_work_held_and_acked() {
        let (returned, mut held, applied) = run(TenantStatus::Paused, false).await;
        held.sort_unstable();
        assert!(returned.is_empty(), "{returned:?}");
        assert_eq!(held, vec![1, 2]);
        assert_eq!(applied, 0, "nothing applied while paused");
    }

    #[tokio::test]
    async fn an_active_tenant_has_its_work_applied() {
        let (returned, held, applied) = run(TenantStatus::Active, false).await;
        assert!(
            returned.is_empty() && held.is_empty(),
            "{returned:?} {held:?}"
        );
        assert_eq!(applied, 1);
    }
}
