//! Re-queueing parked records: the watermark has moved past them, so without this a record
//! that failed during an outage would never sync. The local run does it before each poll,
//! the Lambda poller once per invocation; both through [`requeue_failures`].

use super::PipelineError;
use crate::ports::{ClinikoSource, Failure, StateStore, WorkItem, WorkQueue};
use chrono::{TimeDelta, Utc};

/// Which parked records are queued again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Requeue {
    /// Those that failed for a passing reason (an outage): they will work now.
    #[default]
    Retryable,
    /// Every parked record (`sync --retry-failed`): after fixing data or configuration.
    All,
}

/// Queues again the parked records `which` asks for that were last tried at least
/// `rest` ago, fetched fresh from Cliniko. A record queued again is marked as tried now,
/// so a poller that runs every minute re-queues it once per `rest`, not every minute, while
/// an outage lasts. A record Cliniko no longer has is cleared; one that still cannot be
/// read stays parked with the new reason. Returns how many were queued.
pub async fn requeue_failures<S, St, Q>(
    source: &S,
    state: &St,
    queue: &Q,
    which: Requeue,
    rest: TimeDelta,
) -> Result<usize, PipelineError>
where
    S: ClinikoSource,
    St: StateStore,
    Q: WorkQueue,
{
    let now = Utc::now();
    let mut items = Vec::new();
    for failure in state.failures().await? {
        if which == Requeue::Retryable && !failure.retryable {
            continue;
        }
        if now - failure.last_at < rest {
            continue;
        }
        match source.record(failure.kind, failure.cliniko_id).await {
            Ok(Some(record)) => {
                // Marked before it is queued: a worker that applies it clears the row, and
                // must not find it written again after.
                state
                    .record_failure(&Failure {
                        last_at: now,
                        ..failure
                    })
                    .await?;
                items.push(WorkItem::new(record, now));
            }
            // Gone from Cliniko entirely: nothing left to sync.
            Ok(None) => {
                state
                    .clear_failure(failure.kind, failure.cliniko_id)
                    .await?
            }
            Err(e) if !e.is_retryable() => {
                state
                    .record_failure(&Failure {
                        error: e.to_string(),
                        retryable: false,
                        attempts: failure.attempts.saturating_add(1),
                        last_at: now,
                        ..failure
                    })
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let n = items.len();
    if n == 0 {
        return Ok(0);
    }
    let refused = queue.enqueue(items).await?;
    Ok(n - refused.len())
}
