//! The Cliniko side: where changes come from (read-only).

use super::{Failure, SourceError};
use crate::domain::*;
use chrono::{DateTime, Utc};
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
    ) -> impl Future<Output = Result<Changes, SourceError>> + Send;

    /// One record by id, archived included; `None` when Cliniko has no such record.
    fn record(
        &self,
        kind: EntityKind,
        id: ClinikoId,
    ) -> impl Future<Output = Result<Option<Record>, SourceError>> + Send;

    /// One page of every record of `kind` (archived and deleted included) in id order, for
    /// a full read in bounded memory (reconciliation). Start with `None`; pass each page's
    /// `next` until it is `None`.
    fn all_page(
        &self,
        kind: EntityKind,
        cursor: Option<PageCursor>,
    ) -> impl Future<Output = Result<Page<Record>, SourceError>> + Send;

    fn taxes(&self) -> impl Future<Output = Result<Vec<Tax>, SourceError>> + Send;

    fn businesses(&self) -> impl Future<Output = Result<Vec<Business>, SourceError>> + Send;

    /// What each appointment type is charged with: every appointment type billable item.
    fn appointment_type_lines(
        &self,
    ) -> impl Future<Output = Result<Vec<AppointmentTypeLine>, SourceError>> + Send;

    /// The live (neither archived nor deleted) Cliniko invoices of one appointment, without
    /// their items: whether Cliniko invoiced the appointment itself.
    fn invoices_of_appointment(
        &self,
        appointment: ClinikoId,
    ) -> impl Future<Output = Result<Vec<Invoice>, SourceError>> + Send;
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
