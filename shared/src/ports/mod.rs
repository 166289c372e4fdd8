//! Ports: the small traits the pipeline steps are written against. Adapters implement them:
//! the Cliniko and Reckon clients (`crate::cliniko`, `crate::reckon`), SQLite for local
//! mode (`crate::adapters::sqlite`), and AWS (DynamoDB, SQS, Secrets Manager) for Lambda.
//!
//! Futures are `Send` so the same steps run inside Lambda handlers and tokio tasks.

use crate::cliniko::ClinikoError;
use crate::domain::*;
use crate::reckon::ReckonError;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// Where changes come from: Cliniko, read-only.
pub trait ClinikoSource: Send + Sync {
    /// Every record of `kind` whose `updated_at` is at or after `since` (all when `None`),
    /// archived (and deleted, for invoices) included, every page followed, in
    /// `updated_at, id` order. Invoices come with their live items.
    /// A record that cannot be read comes back in `Changes::unreadable`, never failing
    /// the others.
    fn changed_since(
        &self,
        kind: EntityKind,
        since: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<Changes, ClinikoError>> + Send;

    /// One record by id, archived included; `None` when Cliniko has no such record.
    fn record(
        &self,
        kind: EntityKind,
        id: ClinikoId,
    ) -> impl Future<Output = Result<Option<Record>, ClinikoError>> + Send;

    /// One page of every record of `kind` (archived and deleted included) in id order, for
    /// a full read in bounded memory (reconciliation). Start with `None`; pass each page's
    /// `next` until it is `None`.
    fn all_page(
        &self,
        kind: EntityKind,
        cursor: Option<PageCursor>,
    ) -> impl Future<Output = Result<Page<Record>, ClinikoError>> + Send;

    fn taxes(&self) -> impl Future<Output = Result<Vec<Tax>, ClinikoError>> + Send;

    fn businesses(&self) -> impl Future<Output = Result<Vec<Business>, ClinikoError>> + Send;
}

/// Where changes go: one Reckon One book.
pub trait ReckonSink: Send + Sync {
    /// Every customer in the book (for linking by email on the first sync).
    fn customers(&self) -> impl Future<Output = Result<Vec<ReckonCustomer>, ReckonError>> + Send;
    fn find_customer_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ReckonCustomer>, ReckonError>> + Send;
    fn create_customer(
        &self,
        customer: &CustomerDraft,
    ) -> impl Future<Output = Result<ReckonId, ReckonError>> + Send;
    fn update_customer(
        &self,
        id: ReckonId,
        customer: &CustomerDraft,
    ) -> impl Future<Output = Result<(), ReckonError>> + Send;

    fn find_item_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ReckonItem>, ReckonError>> + Send;
    /// Items whose `itemCode` is exactly `code`.
    fn find_items_by_code(
        &self,
        code: &str,
    ) -> impl Future<Output = Result<Vec<ReckonItem>, ReckonError>> + Send;
    fn create_item(
        &self,
        item: &ItemDraft,
    ) -> impl Future<Output = Result<ReckonId, ReckonError>> + Send;
    fn update_item(
        &self,
        id: ReckonId,
        item: &ItemDraft,
    ) -> impl Future<Output = Result<(), ReckonError>> + Send;

    /// Invoices whose `reference` is exactly `reference`.
    fn find_invoices_by_reference(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Vec<ReckonInvoice>, ReckonError>> + Send;
    fn invoice(
        &self,
        id: ReckonId,
    ) -> impl Future<Output = Result<Option<ReckonInvoice>, ReckonError>> + Send;
    /// Creates the invoice and brings it to `draft.status`.
    fn create_invoice(
        &self,
        invoice: &InvoiceDraft,
    ) -> impl Future<Output = Result<ReckonId, ReckonError>> + Send;
    /// Replaces the invoice's content and brings it to `draft.status`.
    fn update_invoice(
        &self,
        id: ReckonId,
        invoice: &InvoiceDraft,
    ) -> impl Future<Output = Result<(), ReckonError>> + Send;
    /// Records a customer payment of `amount` against the invoice (a receipt linked to it).
    fn record_payment(
        &self,
        payment: &PaymentDraft,
    ) -> impl Future<Output = Result<ReckonId, ReckonError>> + Send;

    /// Credit notes whose `reference` is exactly `reference`.
    fn find_credit_notes_by_reference(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Vec<ReckonCreditNote>, ReckonError>> + Send;
    fn credit_note(
        &self,
        id: ReckonId,
    ) -> impl Future<Output = Result<Option<ReckonCreditNote>, ReckonError>> + Send;
    /// Creates the credit note and brings it to `draft.status`.
    fn create_credit_note(
        &self,
        credit: &CreditNoteDraft,
    ) -> impl Future<Output = Result<ReckonId, ReckonError>> + Send;
    /// Replaces the credit note's content and brings it to `draft.status`.
    fn update_credit_note(
        &self,
        id: ReckonId,
        credit: &CreditNoteDraft,
    ) -> impl Future<Output = Result<(), ReckonError>> + Send;
    /// Allocates `amount` of an approved credit note to an invoice of the same customer
    /// (lowers both balances).
    fn allocate_credit_note(
        &self,
        credit: ReckonId,
        invoice: ReckonId,
        amount: Decimal,
    ) -> impl Future<Output = Result<(), ReckonError>> + Send;
}

/// What one changed-since read found: the records it could read, and the ones it could
/// not (each named, to be parked while the rest flow on).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    pub records: Vec<Record>,
    pub unreadable: Vec<Unreadable>,
}

/// A Cliniko record that could not be decoded: who it is (as far as its raw form tells)
/// and what is wrong with it, naming the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unreadable {
    pub kind: EntityKind,
    /// `None` only when even the id is unreadable.
    pub id: Option<ClinikoId>,
    pub updated_at: Option<DateTime<Utc>>,
    pub error: String,
}

impl Unreadable {
    /// How it waits in the failures table: not retryable (the same data fails again), so
    /// retried when Cliniko changes it or on `sync --retry-failed`.
    pub fn failure(&self, now: DateTime<Utc>) -> Option<Failure> {
        Some(Failure {
            kind: self.kind,
            cliniko_id: self.id?,
            version: self.updated_at.unwrap_or(now),
            error: self.error.clone(),
            retryable: false,
            attempts: 1,
            last_at: now,
        })
    }
}

/// Where the next page of a full read starts (opaque to callers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor(pub String);

/// One page of a full read and where the next one starts.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<PageCursor>,
    /// Records on this page that could not be read (Cliniko pages only).
    pub unreadable: Vec<Unreadable>,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, next: Option<PageCursor>) -> Page<T> {
        Page {
            items,
            next,
            unreadable: Vec::new(),
        }
    }
}

/// Reading a whole Reckon book back, page by page (reconciliation; never writes).
pub trait ReckonBook: Send + Sync {
    fn customer_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> impl Future<Output = Result<Page<ReckonCustomerRecord>, ReckonError>> + Send;
    fn item_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> impl Future<Output = Result<Page<ReckonItemRecord>, ReckonError>> + Send;
    fn invoice_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> impl Future<Output = Result<Page<ReckonInvoiceRecord>, ReckonError>> + Send;
    fn credit_note_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> impl Future<Output = Result<Page<ReckonCreditNote>, ReckonError>> + Send;
    /// One record by id; `None` when the book has no such record.
    fn customer(
        &self,
        id: ReckonId,
    ) -> impl Future<Output = Result<Option<ReckonCustomerRecord>, ReckonError>> + Send;
    fn item(
        &self,
        id: ReckonId,
    ) -> impl Future<Output = Result<Option<ReckonItemRecord>, ReckonError>> + Send;
    fn invoice_record(
        &self,
        id: ReckonId,
    ) -> impl Future<Output = Result<Option<ReckonInvoiceRecord>, ReckonError>> + Send;
}

/// Where reconciliation reports go: a folder locally, S3 on AWS, memory in tests. Each
/// stores every rendering of a report (`ReconcileReport::renderings`) and says where.
pub trait ReportSink: Send + Sync {
    fn publish(
        &self,
        tenant: &str,
        report: &crate::reconcile::ReconcileReport,
        zone: chrono_tz::Tz,
    ) -> impl Future<Output = Result<Vec<String>, StateError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentDraft {
    pub customer: ReckonId,
    pub invoice: ReckonId,
    pub amount: Decimal,
    pub date: NaiveDate,
    /// Carries the Cliniko invoice number, so a retried payment can be found.
    pub reference: String,
}

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

/// Whether the sync runs for a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// Polled and synced.
    Active,
    /// Stopped by a person (`tenants pause`); its state is kept, nothing is read or written.
    Paused,
    /// Stopped by the sync: Reckon refused the connection (revoked or expired refresh
    /// token). Its work is kept; `connect` for the tenant makes it active again.
    NeedsReconnect,
}

impl TenantStatus {
    pub const ALL: [TenantStatus; 3] = [
        TenantStatus::Active,
        TenantStatus::Paused,
        TenantStatus::NeedsReconnect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Paused => "paused",
            TenantStatus::NeedsReconnect => "needs_reconnect",
        }
    }

    pub fn parse(text: &str) -> Option<TenantStatus> {
        TenantStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One clinic served by this deployment or state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantEntry {
    pub id: TenantId,
    /// The tenant's configuration (the `[cliniko]`, `[reckon]`, `[mapping]` and `[sync]`
    /// TOML) as its directory keeps it: in a local state file the path of the clinic's TOML
    /// file (edited in place, credentials may be in it); in DynamoDB the TOML text itself,
    /// without credentials (those are in the tenant's secrets).
    pub config: String,
    pub status: TenantStatus,
    /// Why the status last changed (a person's note, or the error that stopped it).
    pub reason: Option<String>,
    pub added_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

/// The tenants of a deployment: added, paused, resumed and removed without a deploy.
pub trait TenantDirectory: Send + Sync {
    /// Every tenant, in id order.
    fn tenants(&self) -> impl Future<Output = Result<Vec<TenantEntry>, StateError>> + Send;
    fn tenant(
        &self,
        id: &TenantId,
    ) -> impl Future<Output = Result<Option<TenantEntry>, StateError>> + Send;
    /// Adds the tenant, or replaces its configuration keeping its status and history.
    fn put_tenant(
        &self,
        entry: &TenantEntry,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    /// Returns whether the tenant exists.
    fn set_tenant_status(
        &self,
        id: &TenantId,
        status: TenantStatus,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;
    /// Removes the tenant and every row of its sync state (watermarks, links, queue,
    /// failures, audit log, tokens); Cliniko and Reckon are untouched. Returns whether it
    /// existed.
    fn remove_tenant(&self, id: &TenantId)
    -> impl Future<Output = Result<bool, StateError>> + Send;
}

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

/// An OAuth token pair for Reckon.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    pub expires_at: DateTime<Utc>,
}

impl TokenSet {
    /// The pair as the Reckon tokens secret holds it on AWS:
    /// `{"access_token", "refresh_token", "expires_at"}` (RFC 3339, UTC).
    pub fn to_secret_json(&self) -> SecretString {
        use secrecy::ExposeSecret;
        let body = serde_json::json!({
            "access_token": self.access_token.expose_secret(),
            "refresh_token": self.refresh_token.expose_secret(),
            "expires_at": self
                .expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        });
        SecretString::from(body.to_string())
    }
}

/// Where the Reckon tokens live; `save` must be atomic (a rotated refresh token is the only
/// one that works, so losing it means reconnecting by hand).
///
/// A store shared by several processes (Secrets Manager behind concurrent Lambdas) also
/// excludes the other processes while one refreshes: the token manager calls
/// `begin_refresh` before it re-reads and redeems the refresh token and `end_refresh` after
/// the new pair is saved (or the refresh failed). The defaults do nothing: a store used by
/// one process needs only the manager's own in-process lock.
pub trait TokenStore: Send + Sync {
    fn load(&self) -> impl Future<Output = Result<Option<TokenSet>, StateError>> + Send;
    fn save(&self, tokens: &TokenSet) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Waits until this process may refresh. An error means the refresh must not happen.
    fn begin_refresh(&self) -> impl Future<Output = Result<(), StateError>> + Send {
        std::future::ready(Ok(()))
    }

    /// Lets the other processes refresh again.
    fn end_refresh(&self) -> impl Future<Output = Result<(), StateError>> + Send {
        std::future::ready(Ok(()))
    }

    /// Whether a `save` would succeed now, checked before a refresh token is redeemed (a
    /// redeemed token is spent: the new pair must have somewhere to go). The default
    /// trusts the store.
    fn check_writable(&self) -> impl Future<Output = Result<(), StateError>> + Send {
        std::future::ready(Ok(()))
    }
}
