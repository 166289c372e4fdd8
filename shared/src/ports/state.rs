//! Our own sync state: watermarks, cross-references, intents, failures, the audit log.

use crate::domain::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::future::Future;

/// Failures of our own state (SQLite, DynamoDB, SQS, Secrets Manager).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state store: {detail}")]
    Backend { detail: String, retryable: bool },
    #[error("state store holds unreadable data at {key}: {detail}")]
    Corrupt { key: String, detail: String },
    /// The state file is not one this build may use (empty, another program's, newer).
    #[error("state file {path} {reason}")]
    Unusable { path: String, reason: String },
    /// Another process is writing this state; one writer at a time.
    #[error("state file {path} is in use by {holder}; wait for it to finish or stop it")]
    InUse { path: String, holder: String },
}

impl StateError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StateError::Backend {
                retryable: true,
                ..
            }
        )
    }
}

/// The link between a Cliniko record and its Reckon twin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossRef {
    pub kind: EntityKind,
    pub cliniko_id: ClinikoId,
    pub reckon_id: ReckonId,
    /// The Cliniko version last applied (`Record::version`).
    pub version: DateTime<Utc>,
    /// Hash of the last draft written, so unchanged content causes no Reckon write.
    pub content_hash: String,
    /// The name the record has in Reckon (customer and item names must be unique there).
    pub reckon_name: Option<String>,
    /// The Reckon record existed before the sync linked it (found by email, name, code or
    /// reference, or linked by hand): what the bookkeeper keyed there is treated with care
    /// (e.g. its email is never replaced by an invoice email).
    #[serde(default)]
    pub adopted: bool,
}

/// How long an intent excludes other creates of the same record: longer than one create
/// takes (a few requests), shorter than a redelivery's wait; an older intent is left by an
/// attempt that crashed, and the next attempt looks the record up before creating again.
pub const INTENT_CLAIM: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Written before a Reckon create, removed after the cross-reference is stored: if one is
/// found, a previous attempt may have created the record, so look it up by `marker` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub kind: EntityKind,
    pub cliniko_id: ClinikoId,
    /// What finds the record in Reckon: the customer or item name, the invoice reference.
    pub marker: String,
    pub started_at: DateTime<Utc>,
    /// Which worker (one per process or Lambda environment) made the attempt.
    #[serde(default)]
    pub owner: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Linked,
    Unchanged,
    Skipped,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Created,
        Outcome::Updated,
        Outcome::Linked,
        Outcome::Unchanged,
        Outcome::Skipped,
        Outcome::Failed,
    ];

    /// The inverse of `as_str`.
    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Linked => "linked",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// One line of the audit log: what happened to which record, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub kind: EntityKind,
    pub cliniko_id: ClinikoId,
    pub version: DateTime<Utc>,
    pub outcome: Outcome,
    pub reckon_id: Option<ReckonId>,
    pub detail: String,
}

/// A record the sync could not apply, waiting for a retry or a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: EntityKind,
    pub cliniko_id: ClinikoId,
    pub version: DateTime<Utc>,
    pub error: String,
    pub retryable: bool,
    pub attempts: u32,
    pub last_at: DateTime<Utc>,
}

/// Watermarks, cross-references, intents, failures and the audit log of one tenant.
pub trait StateStore: Send + Sync {
    fn watermark(
        &self,
        kind: EntityKind,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StateError>> + Send;
    /// Never moves a watermark backwards.
    fn advance_watermark(
        &self,
        kind: EntityKind,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    fn cross_ref(
        &self,
        kind: EntityKind,
        id: ClinikoId,
    ) -> impl Future<Output = Result<Option<CrossRef>, StateError>> + Send;
    /// The cross-reference pointing at a Reckon record, if any (is it linked already?).
    fn cross_ref_by_reckon(
        &self,
        kind: EntityKind,
        id: ReckonId,
    ) -> impl Future<Output = Result<Option<CrossRef>, StateError>> + Send;
    /// Every link of `kind` as `(Cliniko id, Reckon id)`, compactly (reconciliation reads
    /// them all; 400,000 links take about 10 MB).
    fn links(
        &self,
        kind: EntityKind,
    ) -> impl Future<Output = Result<Vec<(ClinikoId, ReckonId)>, StateError>> + Send;
    /// Whether another Cliniko record already owns `name` in Reckon.
    fn name_owner(
        &self,
        kind: EntityKind,
        name: &str,
    ) -> impl Future<Output = Result<Option<ClinikoId>, StateError>> + Send;
    /// Stores the link unless a newer version is already stored; returns whether it did.
    fn put_cross_ref(
        &self,
        xref: &CrossRef,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;
    /// Removes the link (and its name claim) while it still points at `reckon_id`, so the
    /// next sync of the record creates a new Reckon twin: for a Reckon record deleted by
    /// hand. Returns whether it removed one.
    fn forget_cross_ref(
        &self,
        kind: EntityKind,
        id: ClinikoId,
        reckon_id: ReckonId,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;

    fn intent(
        &self,
        kind: EntityKind,
        id: ClinikoId,
    ) -> impl Future<Output = Result<Option<Intent>, StateError>> + Send;
    /// Claims the create of a record: stores the intent unless another one for the same
    /// record started less than [`INTENT_CLAIM`] before this one (another worker is
    /// creating it right now). Returns whether this caller holds the claim. A conditional
    /// write on DynamoDB, so two workers can never both create one record.
    fn put_intent(&self, intent: &Intent) -> impl Future<Output = Result<bool, StateError>> + Send;
    fn clear_intent(
        &self,
        kind: EntityKind,
        id: ClinikoId,
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    fn audit(&self, entry: &AuditEntry) -> impl Future<Output = Result<(), StateError>> + Send;

    fn record_failure(
        &self,
        failure: &Failure,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    fn clear_failure(
        &self,
        kind: EntityKind,
        id: ClinikoId,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    fn failures(&self) -> impl Future<Output = Result<Vec<Failure>, StateError>> + Send;
}
