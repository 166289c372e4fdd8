//! What happens to a record whose apply failed: the one policy the local drain and the
//! Lambda workers' SQS handler share, so a failure is retried, parked or stops the tenant in
//! the same way, and is recorded the same way, wherever it runs.

use super::PipelineError;
use crate::domain::Record;
use crate::ports::{AuditEntry, Failure, Outcome, StateStore};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// How often and how patiently a failed record is retried before it is parked. On SQS the
/// attempts are the message's receive count and `max_attempts` the queue's
/// `maxReceiveCount`, so the last receive parks the record before it moves to the DLQ.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`: doubling from `base_delay`, at most
    /// `max_delay`.
    pub fn delay(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.min(16));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// What to do with a failed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// A passing failure (an outage, a rate limit, another worker on it): try again after
    /// `after` (locally the queue row waits; on SQS the message comes back).
    Retry { after: Duration },
    /// Given up on: recorded in the failures table with its reason (retried when Cliniko
    /// changes it, on the next run when the reason was passing, or on `--retry-failed`).
    Park,
    /// Nothing of this tenant can succeed until a person acts (Reckon must be connected
    /// again): the work is kept, not parked, and the tenant's drain stops.
    StopTenant,
}

/// The disposition of an error met on attempt `attempts` (1 for the first).
pub fn disposition(error: &PipelineError, attempts: u32, retry: &RetryPolicy) -> Disposition {
    if stops_tenant(error) {
        return Disposition::StopTenant;
    }
    if error.is_retryable() && attempts < retry.max_attempts {
        return Disposition::Retry {
            after: retry.delay(attempts.saturating_sub(1)),
        };
    }
    Disposition::Park
}

/// Whether an error means the tenant as a whole cannot go on (a revoked or spent Reckon
/// connection), rather than this one record.
pub fn stops_tenant(error: &PipelineError) -> bool {
    error.stops_tenant()
}

/// Records a record the sync gave up on, with the reason, for `status`, the report and
/// the alarm; a failure that was passing stays marked retryable, so the next run tries it
/// again.
pub async fn park<St: StateStore>(
    state: &St,
    record: &Record,
    error: &PipelineError,
    attempts: u32,
    now: DateTime<Utc>,
) -> Result<(), PipelineError> {
    let message = error.to_string();
    state
        .record_failure(&Failure {
            kind: record.kind(),
            cliniko_id: record.id(),
            version: record.version(),
            error: message.clone(),
            retryable: error.is_retryable(),
            attempts,
            last_at: now,
        })
        .await?;
    state
        .audit(&AuditEntry {
            at: now,
            kind: record.kind(),
            cliniko_id: record.id(),
            version: record.version(),
            outcome: Outcome::Failed,
            reckon_id: None,
            detail: message,
        })
        .await?;
    Ok(())
}

/// Keeps a record for later without trying it: its tenant cannot be synced now (paused, or
/// Reckon must be connected again). Recorded as a passing failure with `reason`, so the
/// work is visible in `status` and the re-queue picks it up once the tenant is active.
pub async fn hold<St: StateStore>(
    state: &St,
    record: &Record,
    reason: &str,
    attempts: u32,
    now: DateTime<Utc>,
) -> Result<(), PipelineError> {
    state
        .record_failure(&Failure {
            kind: record.kind(),
            cliniko_id: record.id(),
            version: record.version(),
            error: reason.to_string(),
            retryable: true,
            attempts,
            last_at: now,
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{ErrorClass, SinkError, SourceError};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(5),
        }
    }

    #[test]
    fn passing_failures_retry_until_the_last_attempt_then_park() {
        let outage = PipelineError::Source(SourceError::new(ErrorClass::Retry, "503 down"));
        assert!(outage.is_retryable());
        assert_eq!(
            disposition(&outage, 1, &policy()),
            Disposition::Retry {
                after: Duration::from_secs(2)
            }
        );
        assert_eq!(
            disposition(&outage, 2, &policy()),
            Disposition::Retry {
                after: Duration::from_secs(4)
            }
        );
        assert_eq!(disposition(&outage, 3, &policy()), Disposition::Park);
        let in_progress = PipelineError::InProgress("another worker".into());
        assert!(matches!(
            disposition(&in_progress, 1, &policy()),
            Disposition::Retry { .. }
        ));
    }

    #[test]
    fn data_problems_park_at_once_and_a_lost_connection_stops_the_tenant() {
        let conflict = PipelineError::Conflict("paid in Reckon".into());
        assert_eq!(disposition(&conflict, 1, &policy()), Disposition::Park);
        let revoked = PipelineError::Sink(SinkError::new(ErrorClass::StopTenant, "invalid_grant"));
        for attempt in [1, 3, 9] {
            assert_eq!(
                disposition(&revoked, attempt, &policy()),
                Disposition::StopTenant
            );
        }
    }
}
