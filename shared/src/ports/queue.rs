//! The work queue between the poller and the workers.

use super::StateError;
use crate::domain::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::future::Future;

/// Version of the queued message body; readers accept every version up to this one.
pub const WORK_SCHEMA: u32 = 1;

/// One queued change: a Cliniko record snapshot for a sync worker to apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    pub schema: u32,
    pub enqueued_at: DateTime<Utc>,
    /// Whose record it is: stamped by the queue adapter of the tenant that polled it, and
    /// checked by the worker before anything is applied (absent in messages written before
    /// tenants were named: `default`).
    #[serde(default)]
    pub tenant: TenantId,
    #[serde(flatten)]
    pub record: Record,
}

impl WorkItem {
    pub fn new(record: Record, now: DateTime<Utc>) -> WorkItem {
        WorkItem {
            schema: WORK_SCHEMA,
            enqueued_at: now,
            tenant: TenantId::default(),
            record,
        }
    }
}

/// A work item the queue can never carry (e.g. larger than an SQS message), with why.
#[derive(Debug, Clone, PartialEq)]
pub struct NotQueued {
    pub kind: EntityKind,
    pub cliniko_id: ClinikoId,
    pub version: DateTime<Utc>,
    pub reason: String,
}

/// The poller's side of the work queue (SQS per entity type, or the local SQLite queue).
pub trait WorkQueue: Send + Sync {
    /// Queues every item it can; returns the ones it never can (to be parked by the
    /// caller), so one oversized record never stops the rest.
    fn enqueue(
        &self,
        items: Vec<WorkItem>,
    ) -> impl Future<Output = Result<Vec<NotQueued>, StateError>> + Send;
}
