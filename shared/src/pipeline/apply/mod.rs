//! `apply`: one Cliniko record into Reckon. Skips versions older than the one applied,
//! writes nothing when the mapped content is unchanged, resolves dependencies (an invoice's
//! customer and items) through the same code path, and creates idempotently: an intent is
//! stored before every Reckon create, and a retry that finds one looks the record up by its
//! marker (name or invoice reference) before creating again.
//!
//! What is common to every entity is here; each entity type's apply is in its own file
//! (`patient.rs`, `item.rs`, `invoice.rs`, `credit_note.rs`, `appointment.rs`), dispatched from
//! [`Syncer::apply`] — the one place an entity type is registered for applying.

use super::PipelineError;
use crate::domain::*;
use crate::mapping::writes::{self, Settlement};
use crate::mapping::{self, ClosedRemainder, MappingConfig};
use crate::ports::{
    AuditEntry, ClinikoSource, CrossRef, Intent, Outcome, PaymentDraft, ReckonSink, StateStore,
};
use chrono::Utc;
use rust_decimal::Decimal;
use std::collections::HashMap;
use tokio::sync::{Mutex, OnceCell};

mod appointment;
mod credit_note;
mod invoice;
mod item;
mod patient;
#[cfg(test)]
mod testkit;

/// What `apply` did with one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub outcome: Outcome,
    pub reckon_id: Option<ReckonId>,
    pub detail: String,
}

impl Applied {
    fn new(outcome: Outcome, reckon_id: Option<ReckonId>, detail: impl Into<String>) -> Applied {
        Applied {
            outcome,
            reckon_id,
            detail: detail.into(),
        }
    }
}

/// Reckon customers by lower-cased email and name, read once per run for linking and
/// collision checks, then kept current as the run creates customers.
#[derive(Default)]
struct CustomerIndex {
    by_email: HashMap<String, Vec<ReckonCustomer>>,
    by_name: HashMap<String, ReckonId>,
    by_id: HashMap<ReckonId, ReckonCustomer>,
}

impl CustomerIndex {
    fn add(&mut self, c: ReckonCustomer) {
        self.by_name.insert(c.name.to_lowercase(), c.id);
        if let Some(email) = &c.email {
            self.by_email
                .entry(email.trim().to_lowercase())
                .or_default()
                .push(c.clone());
        }
        self.by_id.insert(c.id, c);
    }

    /// The customer holding a (lower-cased) name, as Reckon had it when the index was read.
    fn by_id_of_name(&self, lower_name: &str) -> Option<&ReckonCustomer> {
        self.by_name
            .get(lower_name)
            .and_then(|id| self.by_id.get(id))
    }
}

/// The apply step with its collaborators and per-run caches (Cliniko taxes and
/// businesses, the Reckon customer index). Build once per process or Lambda container.
pub struct Syncer<S, R, St> {
    pub source: S,
    pub sink: R,
    pub state: St,
    pub mapping: MappingConfig,
    taxes: OnceCell<Vec<Tax>>,
    businesses: OnceCell<Vec<Business>>,
    /// What each appointment type is charged with (read when an appointment is first billed).
    type_lines: OnceCell<Vec<AppointmentTypeLine>>,
    customers: Mutex<Option<CustomerIndex>>,
    /// This worker's name in the intents it claims (one per Syncer, so per process or
    /// Lambda execution environment).
    owner: String,
}

impl<S, R, St> Syncer<S, R, St>
where
    S: ClinikoSource,
    R: ReckonSink,
    St: StateStore,
{
    pub fn new(source: S, sink: R, state: St, mapping: MappingConfig) -> Self {
        Syncer {
            source,
            sink,
            state,
            mapping,
            taxes: OnceCell::new(),
            businesses: OnceCell::new(),
            type_lines: OnceCell::new(),
            customers: Mutex::new(None),
            owner: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Forget cached Cliniko taxes/businesses and the Reckon customer index (a new run).
    pub fn reset_caches(&mut self) {
        self.taxes = OnceCell::new();
        self.businesses = OnceCell::new();
        self.type_lines = OnceCell::new();
        self.customers = Mutex::new(None);
    }

    /// Applies one record and writes the audit entry for it.
    pub async fn apply(&self, record: &Record) -> Result<Applied, PipelineError> {
        let applied = match record {
            Record::Patient(p) => self.apply_patient(p).await?,
            Record::Product(p) => self.apply_product(p).await?,
            Record::BillableItem(b) => self.apply_billable_item(b).await?,
            Record::Invoice(i) => self.apply_invoice(i).await?,
            Record::Appointment(a) => self.apply_appointment(a).await?,
        };
        self.state
            .audit(&AuditEntry {
                at: Utc::now(),
                kind: record.kind(),
                cliniko_id: record.id(),
                version: record.version(),
                outcome: applied.outcome,
                reckon_id: applied.reckon_id,
                detail: applied.detail.clone(),
            })
            .await?;
        self.state.clear_failure(record.kind(), record.id()).await?;
        Ok(applied)
    }

    async fn taxes(&self) -> Result<&[Tax], PipelineError> {
        let taxes = self
            .taxes
            .get_or_try_init(|| async { self.source.taxes().await })
            .await?;
        Ok(taxes)
    }

    async fn businesses(&self) -> Result<&[Business], PipelineError> {
        let b = self
            .businesses
            .get_or_try_init(|| async { self.source.businesses().await })
            .await?;
        Ok(b)
    }

    /// The cross-reference when this version (or a newer one) is already applied.
    async fn stale(
        &self,
        kind: EntityKind,
        id: ClinikoId,
        version: chrono::DateTime<Utc>,
    ) -> Result<(Option<CrossRef>, bool), PipelineError> {
        let xref = self.state.cross_ref(kind, id).await?;
        let stale = xref.as_ref().is_some_and(|x| x.version > version);
        Ok((xref, stale))
    }

    /// Stores the intent before a create, or says another worker holds it right now.
    async fn claim_create(&self, intent: Intent) -> Result<(), PipelineError> {
        if self.state.put_intent(&intent).await? {
            return Ok(());
        }
        Err(PipelineError::InProgress(format!(
            "{} {}: another worker is creating it ({:?})",
            intent.kind, intent.cliniko_id, intent.marker
        )))
    }

    /// Stores the link (every field of a [`CrossRef`], spelled out at each call so a
    /// reader sees what each path records) and clears the record's intent.
    #[allow(clippy::too_many_arguments)]
    async fn record_link(
        &self,
        kind: EntityKind,
        id: ClinikoId,
        reckon_id: ReckonId,
        version: chrono::DateTime<Utc>,
        content_hash: String,
        reckon_name: Option<String>,
        adopted: bool,
    ) -> Result<(), PipelineError> {
        self.state
            .put_cross_ref(&CrossRef {
                kind,
                cliniko_id: id,
                reckon_id,
                version,
                content_hash,
                reckon_name,
                adopted,
            })
            .await?;
        self.state.clear_intent(kind, id).await?;
        Ok(())
    }

    /// The Reckon id for a dependency, syncing it first when it has never been synced.
    async fn dependency(&self, kind: EntityKind, id: ClinikoId) -> Result<ReckonId, PipelineError> {
        if let Some(x) = self.state.cross_ref(kind, id).await? {
            return Ok(x.reckon_id);
        }
        let Some(record) = self.source.record(kind, id).await? else {
            return Err(PipelineError::MissingDependency(format!(
                "{kind} {id} does not exist in Cliniko"
            )));
        };
        let applied = Box::pin(self.apply(&record)).await?;
        applied.reckon_id.ok_or_else(|| {
            PipelineError::MissingDependency(format!(
                "{kind} {id} was not synced: {}",
                applied.detail
            ))
        })
    }
}

/// What adopting a Reckon `what` found by `reference` did: finished an interrupted create
/// of ours, or linked a record that was there before.
fn found_by_reference(
    interrupted: bool,
    what: &str,
    reference: &str,
    rid: ReckonId,
    detail: &str,
) -> Applied {
    if interrupted {
        Applied::new(
            Outcome::Created,
            Some(rid),
            format!("{what} found after an interrupted create{detail}"),
        )
    } else {
        Applied::new(
            Outcome::Linked,
            Some(rid),
            format!("linked by reference {reference} to existing {what}{detail}"),
        )
    }
}
