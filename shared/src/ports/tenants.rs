//! The tenants (clinics) of a deployment or state file.

use super::StateError;
use crate::domain::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::future::Future;

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
