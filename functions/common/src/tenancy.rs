//! Many clinics in one deployment: each function serves every tenant of the directory,
//! building a tenant's clients the first time one of its records (or its poll) comes by and
//! keeping them for the life of the execution environment, rebuilt when the tenant's
//! configuration changes. Free of AWS so it is tested with the SQLite directory; the AWS
//! builders live in `wiring.rs`.

use cliniko_reckon::domain::TenantId;
use cliniko_reckon::ports::{StateError, TenantDirectory, TenantEntry, TenantStatus};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Why a tenant's work cannot go ahead now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TenantUnavailable {
    /// Not in the directory (removed, or never added): its messages are poison.
    #[error("tenant {0} is not in the tenant directory")]
    Unknown(TenantId),
    #[error("tenant {0} is paused")]
    Paused(TenantId),
    #[error("tenant {0} needs Reckon connected again (`cliniko-reckon --tenant {0} connect`)")]
    NeedsReconnect(TenantId),
    /// Its configuration or secrets are wrong; a person must fix them.
    #[error("tenant {tenant}: {detail}")]
    Misconfigured { tenant: TenantId, detail: String },
    /// Reading its configuration or secrets failed for a passing reason.
    #[error("tenant {tenant}: {detail}")]
    Passing { tenant: TenantId, detail: String },
}

impl TenantUnavailable {
    /// Whether the tenant's records are kept as passing failures (picked up again by the
    /// re-queue once the tenant is active) rather than returned to the queue.
    pub fn holds_work(&self) -> bool {
        matches!(
            self,
            TenantUnavailable::Paused(_)
                | TenantUnavailable::NeedsReconnect(_)
                | TenantUnavailable::Misconfigured { .. }
        )
    }

    pub fn passing(tenant: &TenantId, detail: impl std::fmt::Display) -> TenantUnavailable {
        TenantUnavailable::Passing {
            tenant: tenant.clone(),
            detail: detail.to_string(),
        }
    }

    pub fn misconfigured(tenant: &TenantId, detail: impl std::fmt::Display) -> TenantUnavailable {
        TenantUnavailable::Misconfigured {
            tenant: tenant.clone(),
            detail: detail.to_string(),
        }
    }
}

/// Builds what one tenant needs (a syncer, or the poller's source/state/queue) from its
/// directory entry.
pub trait BuildForTenant: Send + Sync {
    type Built: Send + Sync;
    fn build(
        &self,
        entry: &TenantEntry,
    ) -> impl Future<Output = Result<Self::Built, TenantUnavailable>> + Send;
}

struct Cached<T> {
    config: String,
    built: Arc<T>,
    at: std::time::Instant,
}

/// How long what was built for a tenant is kept even when its configuration is unchanged:
/// a changed secret (a new Cliniko key) and an account check that could not reach the book
/// are picked up within this time.
pub const REBUILD_AFTER: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// The tenants of a directory with what was built for each, kept while the tenant's
/// configuration is unchanged (a client keeps its pacing and its token cache).
pub struct Tenants<D, B: BuildForTenant> {
    pub directory: D,
    builder: B,
    built: Mutex<HashMap<TenantId, Cached<B::Built>>>,
    /// Tenants whose service was failing moments ago, with why and since when: their
    /// records are not tried for [`Tenants::outage_rest`], so a clinic whose Reckon is down
    /// does not spend the workers' time on timeouts while the other clinics wait.
    outages: Mutex<HashMap<TenantId, (std::time::Instant, String)>>,
    outage_rest: std::time::Duration,
}

/// How long a tenant's records rest untried after its service was seen failing.
pub const OUTAGE_REST: std::time::Duration = std::time::Duration::from_secs(30);

impl<D: TenantDirectory, B: BuildForTenant> Tenants<D, B> {
    pub fn new(directory: D, builder: B) -> Self {
        Tenants {
            directory,
            builder,
            built: Mutex::new(HashMap::new()),
            outages: Mutex::new(HashMap::new()),
            outage_rest: OUTAGE_REST,
        }
    }

    /// How long a failing tenant's records rest untried (default [`OUTAGE_REST`]).
    pub fn with_outage_rest(mut self, rest: std::time::Duration) -> Self {
        self.outage_rest = rest;
        self
    }

    /// Why the tenant's service was failing, if it was within the rest period.
    pub async fn outage(&self, tenant: &TenantId) -> Option<String> {
        let mut outages = self.outages.lock().await;
        match outages.get(tenant) {
            Some((since, why)) if since.elapsed() < self.outage_rest => Some(why.clone()),
            Some(_) => {
                outages.remove(tenant);
                None
            }
            None => None,
        }
    }

    pub async fn mark_outage(&self, tenant: &TenantId, why: &str) {
        self.outages
            .lock()
            .await
            .insert(tenant.clone(), (std::time::Instant::now(), why.to_string()));
    }

    pub fn builder(&self) -> &B {
        &self.builder
    }

    /// What is built for an active tenant, read afresh from the directory each time (one
    /// read), so a pause or a new configuration takes effect at the next batch or poll.
    pub async fn get(&self, tenant: &TenantId) -> Result<Arc<B::Built>, TenantUnavailable> {
        let entry = self
            .directory
            .tenant(tenant)
            .await
            .map_err(|e| directory_error(tenant, &e))?
            .ok_or_else(|| TenantUnavailable::Unknown(tenant.clone()))?;
        self.for_entry(&entry).await
    }

    /// As [`Tenants::get`], for an entry already read (the poller lists them all at once).
    pub async fn for_entry(&self, entry: &TenantEntry) -> Result<Arc<B::Built>, TenantUnavailable> {
        match entry.status {
            TenantStatus::Active => {}
            TenantStatus::Paused => return Err(TenantUnavailable::Paused(entry.id.clone())),
            TenantStatus::NeedsReconnect => {
                return Err(TenantUnavailable::NeedsReconnect(entry.id.clone()));
            }
        }
        if let Some(cached) = self.built.lock().await.get(&entry.id)
            && cached.config == entry.config
            && cached.at.elapsed() < REBUILD_AFTER
        {
            return Ok(cached.built.clone());
        }
        // Built outside the lock: one tenant's slow secret read never holds up another's.
        let built = Arc::new(self.builder.build(entry).await?);
        self.built.lock().await.insert(
            entry.id.clone(),
            Cached {
                config: entry.config.clone(),
                built: built.clone(),
                at: std::time::Instant::now(),
            },
        );
        Ok(built)
    }

    /// Every tenant the directory lists.
    pub async fn all(&self) -> Result<Vec<TenantEntry>, StateError> {
        self.directory.tenants().await
    }

    /// Marks an active tenant as needing Reckon connected again, and forgets its clients.
    /// Returns whether this call changed it (so the alert fires once, not per record).
    pub async fn needs_reconnect(
        &self,
        tenant: &TenantId,
        reason: &str,
    ) -> Result<bool, StateError> {
        self.built.lock().await.remove(tenant);
        let Some(entry) = self.directory.tenant(tenant).await? else {
            return Ok(false);
        };
        if entry.status != TenantStatus::Active {
            return Ok(false);
        }
        self.directory
            .set_tenant_status(
                tenant,
                TenantStatus::NeedsReconnect,
                Some(reason),
                chrono::Utc::now(),
            )
            .await
    }
}

fn directory_error(tenant: &TenantId, e: &StateError) -> TenantUnavailable {
    let detail = format!("reading the tenant directory: {e}");
    if e.is_retryable() {
        TenantUnavailable::passing(tenant, detail)
    } else {
        TenantUnavailable::misconfigured(tenant, detail)
    }
}
