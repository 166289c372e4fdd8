//! `apply`: one Cliniko record into Reckon. Skips versions older than the one applied,
//! writes nothing when the mapped content is unchanged, resolves dependencies (an invoice's
//! customer and items) through the same code path, and creates idempotently: an intent is
//! stored before every Reckon create, and a retry that finds one looks the record up by its
//! marker (name or invoice reference) before creating again.

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
            customers: Mutex::new(None),
            owner: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Forget cached Cliniko taxes/businesses and the Reckon customer index (a new run).
    pub fn reset_caches(&mut self) {
        self.taxes = OnceCell::new();
        self.businesses = OnceCell::new();
        self.customers = Mutex::new(None);
    }

    /// Applies one record and writes the audit entry for it.
    pub async fn apply(&self, record: &Record) -> Result<Applied, PipelineError> {
        let applied = match record {
            Record::Patient(p) => self.apply_patient(p).await?,
            Record::Product(p) => self.apply_product(p).await?,
            Record::BillableItem(b) => self.apply_billable_item(b).await?,
            Record::Invoice(i) => self.apply_invoice(i).await?,
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

    // ---- patients → customers ----------------------------------------------------------

    async fn apply_patient(&self, p: &Patient) -> Result<Applied, PipelineError> {
        let kind = EntityKind::Patient;
        let (xref, stale) = self.stale(kind, p.id, p.updated_at).await?;
        if stale {
            return Ok(Applied::new(
                Outcome::Skipped,
                xref.map(|x| x.reckon_id),
                "a newer version is already in Reckon",
            ));
        }
        if let Some(x) = xref {
            let name = self.current_customer_name(p, &x).await?;
            let draft = mapping::customer_draft(p, &name, &self.mapping, x.adopted);
            let hash = mapping::content_hash(&draft);
            if hash == x.content_hash {
                self.record_link(
                    kind,
                    p.id,
                    x.reckon_id,
                    p.updated_at,
                    hash,
                    Some(name),
                    x.adopted,
                )
                .await?;
                return Ok(Applied::new(
                    Outcome::Unchanged,
                    Some(x.reckon_id),
                    "no change",
                ));
            }
            self.sink.update_customer(x.reckon_id, &draft).await?;
            self.record_link(
                kind,
                p.id,
                x.reckon_id,
                p.updated_at,
                hash,
                Some(name),
                x.adopted,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Updated,
                Some(x.reckon_id),
                "customer updated",
            ));
        }

        // A previous attempt may have created the customer and crashed before recording it.
        if let Some(intent) = self.state.intent(kind, p.id).await?
            && let Some(found) = self.sink.find_customer_by_name(&intent.marker).await?
            && self
                .state
                .cross_ref_by_reckon(kind, found.id)
                .await?
                .is_none()
        {
            let draft = mapping::patient_to_customer(p, &intent.marker, &self.mapping);
            let hash = mapping::content_hash(&draft);
            self.sink.update_customer(found.id, &draft).await?;
            self.record_link(
                kind,
                p.id,
                found.id,
                p.updated_at,
                hash,
                Some(intent.marker),
                false,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Created,
                Some(found.id),
                "customer found after an interrupted create",
            ));
        }

        let mut guard = self.customers.lock().await;
        let index = self.customer_index(&mut guard).await?;

        // Adopt before create, whatever state the sync starts from: an unlinked Reckon
        // customer with the patient's email, else with the patient's name. Its name then
        // follows Cliniko's, as for every linked customer.
        if let Some((existing, how)) = self.adoptable_customer(p, index).await? {
            let base = mapping::customer_name(p);
            let ours = mapping::disambiguate(&base, p.id);
            let name = if existing.name == base || existing.name == ours {
                existing.name.clone()
            } else {
                let name = self
                    .free_customer_name(p.id, Some(existing.id), &base, index)
                    .await?;
                index.by_name.remove(&existing.name.to_lowercase());
                index.by_name.insert(name.to_lowercase(), existing.id);
                name
            };
            let draft = mapping::customer_draft(p, &name, &self.mapping, true);
            let hash = mapping::content_hash(&draft);
            self.sink.update_customer(existing.id, &draft).await?;
            self.record_link(
                kind,
                p.id,
                existing.id,
                p.updated_at,
                hash,
                Some(name),
                true,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Linked,
                Some(existing.id),
                format!("linked by {how} to existing customer {:?}", existing.name),
            ));
        }

        let base = mapping::customer_name(p);
        let name = self.free_customer_name(p.id, None, &base, index).await?;
        let draft = mapping::patient_to_customer(p, &name, &self.mapping);
        let hash = mapping::content_hash(&draft);
        self.claim_create(Intent {
            kind,
            cliniko_id: p.id,
            marker: name.clone(),
            started_at: Utc::now(),
            owner: self.owner.clone(),
        })
        .await?;
        let id = self.sink.create_customer(&draft).await?;
        index.add(ReckonCustomer {
            id,
            name: name.clone(),
            status: draft.status,
            email: draft.email.clone(),
        });
        drop(guard);
        self.record_link(
            kind,
            p.id,
            id,
            p.updated_at,
            hash,
            Some(name.clone()),
            false,
        )
        .await?;
        let detail = if name == base {
            "customer created".to_string()
        } else {
            format!("customer created as {name:?}: {base:?} belongs to another record")
        };
        Ok(Applied::new(Outcome::Created, Some(id), detail))
    }

    /// The Reckon customer this patient should be linked to instead of creating one, and
    /// how it was matched: an unlinked customer with the patient's email (the one with the
    /// patient's name when a family shares an email, else the only one), else an unlinked
    /// customer with the patient's name and no other email. The name this sync gives a
    /// namesake (`Name (id)`) is tried before the plain name, so two patients of one name
    /// are each adopted by their own customer in any order.
    async fn adoptable_customer(
        &self,
        p: &Patient,
        index: &CustomerIndex,
    ) -> Result<Option<(ReckonCustomer, &'static str)>, PipelineError> {
        let emails: Vec<String> = [p.email.as_deref(), p.invoice_email.as_deref()]
            .into_iter()
            .flatten()
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        let base = mapping::customer_name(p);
        let names = [
            mapping::disambiguate(&base, p.id).to_lowercase(),
            base.to_lowercase(),
        ];
        for email in &emails {
            let Some(candidates) = index.by_email.get(email) else {
                continue;
            };
            let mut unlinked = Vec::new();
            for c in candidates {
                if !self.customer_linked(c.id).await? {
                    unlinked.push(c);
                }
            }
            for name in &names {
                if let Some(same) = unlinked.iter().find(|c| c.name.to_lowercase() == *name) {
                    return Ok(Some(((*same).clone(), "email")));
                }
            }
            // A shared family email with several customers is ambiguous: go on by name.
            if let [only] = unlinked.as_slice() {
                return Ok(Some(((*only).clone(), "email")));
            }
        }
        for name in &names {
            let Some(found) = index.by_id_of_name(name) else {
                continue;
            };
            let other_email = found
                .email
                .as_deref()
                .map(|e| e.trim().to_lowercase())
                .is_some_and(|e| !e.is_empty() && !emails.contains(&e));
            if !other_email && !self.customer_linked(found.id).await? {
                return Ok(Some((found.clone(), "name")));
            }
        }
        Ok(None)
    }

    async fn customer_linked(&self, id: ReckonId) -> Result<bool, PipelineError> {
        Ok(self
            .state
            .cross_ref_by_reckon(EntityKind::Patient, id)
            .await?
            .is_some())
    }

    /// The name a linked customer should have now. Names follow Cliniko: the name in
    /// Reckon is kept while it is still this patient's name (or its disambiguated form);
    /// after a rename in Cliniko (or for a customer linked by email under another name) it
    /// becomes the patient's current name, disambiguated if another customer has it.
    async fn current_customer_name(
        &self,
        p: &Patient,
        x: &CrossRef,
    ) -> Result<String, PipelineError> {
        let base = mapping::customer_name(p);
        if let Some(current) = &x.reckon_name
            && (current == &base || current == &mapping::disambiguate(&base, p.id))
        {
            return Ok(current.clone());
        }
        let mut guard = self.customers.lock().await;
        let index = self.customer_index(&mut guard).await?;
        let name = self
            .free_customer_name(p.id, Some(x.reckon_id), &base, index)
            .await?;
        if let Some(old) = &x.reckon_name {
            index.by_name.remove(&old.to_lowercase());
        }
        index.by_name.insert(name.to_lowercase(), x.reckon_id);
        Ok(name)
    }

    /// The Reckon customer index, read once per process.
    async fn customer_index<'a>(
        &self,
        guard: &'a mut Option<CustomerIndex>,
    ) -> Result<&'a mut CustomerIndex, PipelineError> {
        if guard.is_none() {
            let mut index = CustomerIndex::default();
            for c in self.sink.customers().await? {
                index.add(c);
            }
            *guard = Some(index);
        }
        guard
            .as_mut()
            .ok_or_else(|| PipelineError::Internal("customer index missing".into()))
    }

    /// Whether another product or billable item owns `name` in the cross-references (item
    /// names are unique in Reckon across products and services).
    async fn item_name_owned_by_another(
        &self,
        kind: EntityKind,
        id: ClinikoId,
        name: &str,
    ) -> Result<bool, PipelineError> {
        for k in [EntityKind::Product, EntityKind::BillableItem] {
            if self
                .state
                .name_owner(k, name)
                .await?
                .is_some_and(|o| !(k == kind && o == id))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether `name` belongs to another item, in the cross-references or in Reckon.
    async fn item_name_taken(
        &self,
        kind: EntityKind,
        id: ClinikoId,
        mine: ReckonId,
        name: &str,
    ) -> Result<bool, PipelineError> {
        if self.item_name_owned_by_another(kind, id, name).await? {
            return Ok(true);
        }
        Ok(self
            .sink
            .find_item_by_name(name)
            .await?
            .is_some_and(|found| found.id != mine))
    }

    /// `base`, or its disambiguated form when another customer has it; `mine` is the
    /// customer this patient has (or is being linked to), whose own name is not "taken".
    async fn free_customer_name(
        &self,
        id: ClinikoId,
        mine: Option<ReckonId>,
        base: &str,
        index: &CustomerIndex,
    ) -> Result<String, PipelineError> {
        let taken = |name: &str| {
            index
                .by_name
                .get(&name.to_lowercase())
                .is_some_and(|holder| Some(*holder) != mine)
        };
        let owner = self.state.name_owner(EntityKind::Patient, base).await?;
        if !taken(base) && owner.is_none_or(|o| o == id) {
            return Ok(base.to_string());
        }
        let name = mapping::disambiguate(base, id);
        if taken(&name) {
            return Err(PipelineError::Conflict(format!(
                "patient {id}: customer names {base:?} and {name:?} are both taken in Reckon"
            )));
        }
        Ok(name)
    }

    // ---- products and billable items → items -------------------------------------------

    async fn apply_product(&self, p: &Product) -> Result<Applied, PipelineError> {
        let taxes = self.taxes().await?;
        let draft = mapping::product_to_item(p, taxes, &self.mapping)?;
        self.apply_item(EntityKind::Product, p.id, p.updated_at, draft)
            .await
    }

    async fn apply_billable_item(&self, b: &BillableItem) -> Result<Applied, PipelineError> {
        let taxes = self.taxes().await?;
        let draft = mapping::billable_item_to_item(b, taxes, &self.mapping)?;
        self.apply_item(EntityKind::BillableItem, b.id, b.updated_at, draft)
            .await
    }

    async fn apply_item(
        &self,
        kind: EntityKind,
        id: ClinikoId,
        version: chrono::DateTime<Utc>,
        mut draft: ItemDraft,
    ) -> Result<Applied, PipelineError> {
        let (xref, stale) = self.stale(kind, id, version).await?;
        if stale {
            return Ok(Applied::new(
                Outcome::Skipped,
                xref.map(|x| x.reckon_id),
                "a newer version is already in Reckon",
            ));
        }
        if let Some(x) = xref {
            // Names follow Cliniko: a suffixed name stays while the base name is unchanged;
            // a rename in Cliniko renames the item (suffixed if the name is taken).
            let base = draft.name.clone();
            let suffixed = mapping::disambiguate_item(&base, draft.item_type, id);
            draft.name = match &x.reckon_name {
                Some(current) if *current == base || *current == suffixed => current.clone(),
                _ if self.item_name_taken(kind, id, x.reckon_id, &base).await? => suffixed,
                _ => base,
            };
            let hash = mapping::content_hash(&draft);
            if hash == x.content_hash {
                self.record_link(
                    kind,
                    id,
                    x.reckon_id,
                    version,
                    hash,
                    Some(draft.name),
                    x.adopted,
                )
                .await?;
                return Ok(Applied::new(
                    Outcome::Unchanged,
                    Some(x.reckon_id),
                    "no change",
                ));
            }
            self.sink.update_item(x.reckon_id, &draft).await?;
            self.record_link(
                kind,
                id,
                x.reckon_id,
                version,
                hash,
                Some(draft.name),
                x.adopted,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Updated,
                Some(x.reckon_id),
                "item updated",
            ));
        }

        if let Some(intent) = self.state.intent(kind, id).await?
            && let Some(found) = self.sink.find_item_by_name(&intent.marker).await?
            && self.item_owner(found.id).await?.is_none()
        {
            draft.name = intent.marker.clone();
            let hash = mapping::content_hash(&draft);
            self.sink.update_item(found.id, &draft).await?;
            self.record_link(
                kind,
                id,
                found.id,
                version,
                hash,
                Some(intent.marker),
                false,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Created,
                Some(found.id),
                "item found after an interrupted create",
            ));
        }

        // Adopt before create: an unlinked Reckon item of the same type with this sync's
        // own suffixed name, the same item code, or the same name. Item names are unique
        // in Reckon across products and services, so a same-named item of the other type
        // (or one another record owns) makes this one take the suffixed name instead.
        let base = draft.name.clone();
        let owned = self.item_name_owned_by_another(kind, id, &base).await?;
        if let Some((found, how)) = self.adoptable_item(id, &draft, owned).await? {
            let suffixed = mapping::disambiguate_item(&base, draft.item_type, id);
            draft.name = if found.name == base || found.name == suffixed {
                found.name.clone()
            } else if self.item_name_taken(kind, id, found.id, &base).await? {
                suffixed
            } else {
                base
            };
            let hash = mapping::content_hash(&draft);
            self.sink.update_item(found.id, &draft).await?;
            self.record_link(
                kind,
                id,
                found.id,
                version,
                hash,
                Some(draft.name.clone()),
                true,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Linked,
                Some(found.id),
                format!("linked by {how} to existing item {:?}", found.name),
            ));
        }
        let existing = self.sink.find_item_by_name(&base).await?;
        if owned || existing.is_some() {
            draft.name = mapping::disambiguate_item(&base, draft.item_type, id);
        }
        self.claim_create(Intent {
            kind,
            cliniko_id: id,
            marker: draft.name.clone(),
            started_at: Utc::now(),
            owner: self.owner.clone(),
        })
        .await?;
        let hash = mapping::content_hash(&draft);
        let rid = self.sink.create_item(&draft).await?;
        self.record_link(
            kind,
            id,
            rid,
            version,
            hash,
            Some(draft.name.clone()),
            false,
        )
        .await?;
        Ok(Applied::new(Outcome::Created, Some(rid), "item created"))
    }

    /// The Reckon item this product or billable item should be linked to instead of
    /// creating one, and how it was matched. Only an item of the same type that no record
    /// is linked to qualifies.
    async fn adoptable_item(
        &self,
        id: ClinikoId,
        draft: &ItemDraft,
        base_owned: bool,
    ) -> Result<Option<(ReckonItem, &'static str)>, PipelineError> {
        let fits = |item: &ReckonItem| item.item_type == Some(draft.item_type);
        let suffixed = mapping::disambiguate_item(&draft.name, draft.item_type, id);
        if let Some(found) = self.sink.find_item_by_name(&suffixed).await?
            && fits(&found)
            && self.item_owner(found.id).await?.is_none()
        {
            return Ok(Some((found, "name")));
        }
        if let Some(code) = draft
            .item_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            let mut unlinked = Vec::new();
            for found in self.sink.find_items_by_code(code).await? {
                if fits(&found) && self.item_owner(found.id).await?.is_none() {
                    unlinked.push(found);
                }
            }
            // Two unlinked items with one code are ambiguous: go on by name.
            if unlinked.len() == 1 {
                return Ok(unlinked.pop().map(|f| (f, "item code")));
            }
        }
        if !base_owned
            && let Some(found) = self.sink.find_item_by_name(&draft.name).await?
            && fits(&found)
            && self.item_owner(found.id).await?.is_none()
        {
            return Ok(Some((found, "name and item type")));
        }
        Ok(None)
    }

    async fn item_owner(&self, rid: ReckonId) -> Result<Option<CrossRef>, PipelineError> {
        for k in [EntityKind::Product, EntityKind::BillableItem] {
            if let Some(x) = self.state.cross_ref_by_reckon(k, rid).await? {
                return Ok(Some(x));
            }
        }
        Ok(None)
    }

    // ---- invoices ----------------------------------------------------------------------

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

    async fn apply_invoice(&self, inv: &Invoice) -> Result<Applied, PipelineError> {
        let kind = EntityKind::Invoice;
        let version = inv.version();
        let (xref, stale) = self.stale(kind, inv.id, version).await?;
        if stale {
            return Ok(Applied::new(
                Outcome::Skipped,
                xref.map(|x| x.reckon_id),
                "a newer version is already in Reckon",
            ));
        }
        if inv.archived_at.is_some() || inv.deleted_at.is_some() {
            // Nothing is ever deleted in Reckon; reconciliation reports the difference.
            let detail = match &xref {
                Some(_) => "archived or deleted in Cliniko; the Reckon invoice is left as it is",
                None => "archived or deleted in Cliniko before it was synced; not created",
            };
            if let Some(x) = &xref {
                self.record_link(
                    kind,
                    inv.id,
                    x.reckon_id,
                    version,
                    x.content_hash.clone(),
                    None,
                    x.adopted,
                )
                .await?;
            }
            return Ok(Applied::new(
                Outcome::Skipped,
                xref.map(|x| x.reckon_id),
                detail,
            ));
        }

        let Some(patient_id) = inv.patient_id else {
            return Err(PipelineError::Mapping(mapping::MappingError::invalid(
                kind,
                inv.id,
                "patient_id",
                "an invoice without a patient has no Reckon customer",
            )));
        };
        let customer = self.dependency(EntityKind::Patient, patient_id).await?;
        let mut targets = Vec::with_capacity(inv.items.len());
        for item in &inv.items {
            let linked = match writes::line_source(item) {
                Some((kind, id)) => Some(self.dependency(kind, id).await?),
                None => None,
            };
            targets.push(writes::line_target(linked, &self.mapping));
        }
        let tz = writes::invoice_time_zone(inv, self.businesses().await?, &self.mapping);
        if inv.role() == InvoiceRole::Credit {
            return self
                .apply_credit_note(inv, customer, &targets, tz, xref)
                .await;
        }
        let draft = mapping::invoice_to_draft(inv, customer, &targets, tz, &self.mapping)?;
        // A Closed invoice is settled by its reversals and the remainder policy: a change
        // in either must reach Reckon even when the invoice itself reads the same.
        let hash = if inv.status == InvoiceStatus::Closed {
            mapping::content_hash(&(&draft, &inv.reversals, self.mapping.closed_remainder))
        } else if !inv.reversals.is_empty() {
            mapping::content_hash(&(&draft, &inv.reversals))
        } else {
            mapping::content_hash(&draft)
        };
        let settled_in_cliniko = self.settled_in_cliniko(inv, &draft)?;

        if let Some(x) = xref {
            if hash == x.content_hash {
                self.record_link(kind, inv.id, x.reckon_id, version, hash, None, x.adopted)
                    .await?;
                return Ok(Applied::new(
                    Outcome::Unchanged,
                    Some(x.reckon_id),
                    "no change",
                ));
            }
            let current = self.sink.invoice(x.reckon_id).await?.ok_or_else(|| {
                PipelineError::Conflict(format!(
                    "invoice {}: Reckon invoice {} is gone; reconcile to re-create it",
                    inv.id, x.reckon_id
                ))
            })?;
            if current.status == ReckonInvoiceStatus::Paid {
                if settled_in_cliniko && current.total_amount == draft.expected_total {
                    // Paid on both sides with the same total: only fields Reckon locks on
                    // paid invoices changed; keep the link current.
                    self.record_link(kind, inv.id, x.reckon_id, version, hash, None, x.adopted)
                        .await?;
                    return Ok(Applied::new(
                        Outcome::Unchanged,
                        Some(x.reckon_id),
                        "paid in Reckon; nothing to change",
                    ));
                }
                return Err(PipelineError::Conflict(format!(
                    "invoice {} changed in Cliniko but Reckon invoice {} is paid and cannot be edited",
                    inv.id, x.reckon_id
                )));
            }
            self.sink.update_invoice(x.reckon_id, &draft).await?;
            let detail = self.settle(inv, &draft, customer, x.reckon_id, tz).await?;
            self.record_link(kind, inv.id, x.reckon_id, version, hash, None, x.adopted)
                .await?;
            return Ok(Applied::new(
                Outcome::Updated,
                Some(x.reckon_id),
                format!("invoice updated{detail}"),
            ));
        }

        // Adopt before create, always (a new, lost or emptied state file must never
        // duplicate the book): an unlinked Reckon invoice with this reference for this
        // customer is this invoice. One for another customer is left alone: a reference
        // the bookkeeper used for something else is not ours to overwrite.
        let interrupted = self.state.intent(kind, inv.id).await?.is_some();
        for candidate in self
            .sink
            .find_invoices_by_reference(&draft.reference)
            .await?
        {
            if !self
                .adoptable_by_reference(candidate.id, candidate.customer, customer)
                .await?
            {
                continue;
            }
            if candidate.status == ReckonInvoiceStatus::Paid {
                if candidate.total_amount != draft.expected_total {
                    return Err(PipelineError::Conflict(format!(
                        "invoice {}: Reckon invoice {} with reference {} is paid with total {}, Cliniko's total is {}; a paid invoice cannot be edited",
                        inv.id,
                        candidate.id,
                        draft.reference,
                        candidate.total_amount,
                        draft.expected_total
                    )));
                }
            } else {
                self.sink.update_invoice(candidate.id, &draft).await?;
            }
            let detail = self.settle(inv, &draft, customer, candidate.id, tz).await?;
            self.record_link(
                kind,
                inv.id,
                candidate.id,
                version,
                hash,
                None,
                !interrupted,
            )
            .await?;
            return Ok(found_by_reference(
                interrupted,
                "invoice",
                &draft.reference,
                candidate.id,
                &detail,
            ));
        }
        self.claim_create(Intent {
            kind,
            cliniko_id: inv.id,
            marker: draft.reference.clone(),
            started_at: Utc::now(),
            owner: self.owner.clone(),
        })
        .await?;
        let rid = self.sink.create_invoice(&draft).await?;
        let detail = self.settle(inv, &draft, customer, rid, tz).await?;
        self.record_link(kind, inv.id, rid, version, hash, None, false)
            .await?;
        Ok(Applied::new(
            Outcome::Created,
            Some(rid),
            format!("invoice created{detail}"),
        ))
    }

    /// Checks Reckon's totals against Cliniko's, applies the credit notes used on the
    /// invoice, and settles what Cliniko says is settled: a receipt for a paid one, the
    /// remainder policy for a Closed one. Every amount comes from Reckon's balances as read
    /// now, under the invoice's claim, so a retry or a second worker writes nothing twice.
    async fn settle(
        &self,
        inv: &Invoice,
        draft: &InvoiceDraft,
        customer: ReckonId,
        rid: ReckonId,
        tz: chrono_tz::Tz,
    ) -> Result<String, PipelineError> {
        let remainder = mapping::closed_remainder(inv)?;
        let used: Vec<&Reversal> = inv.used_reversals().collect();
        if draft.paid || remainder.is_some() || !used.is_empty() {
            // Held until the link is stored (which clears it): another worker on the same
            // invoice waits rather than reading the same balance and paying it again.
            self.claim_create(Intent {
                kind: EntityKind::Invoice,
                cliniko_id: inv.id,
                marker: format!("settle {}", draft.reference),
                started_at: Utc::now(),
                owner: self.owner.clone(),
            })
            .await?;
        }
        let written = self.sink.invoice(rid).await?.ok_or_else(|| {
            PipelineError::Conflict(format!("invoice {}: Reckon lost invoice {rid}", inv.id))
        })?;
        if written.total_amount != draft.expected_total
            || written.total_tax_amount != draft.expected_tax
        {
            return Err(PipelineError::TotalsMismatch {
                invoice: inv.id,
                reckon_total: written.total_amount,
                cliniko_total: draft.expected_total,
                reckon_tax: written.total_tax_amount,
                cliniko_tax: draft.expected_tax,
            });
        }
        // The bookkeeper's date: the day the invoice was settled in the business's own
        // time zone (08:30 in Perth is that day, not the UTC one before).
        let date = draft
            .invoice_date
            .max(mapping::payment_date(inv.closed_at, tz).unwrap_or(draft.invoice_date));
        let mut detail = String::new();
        let mut balance = written.balance;
        // Credit notes used on this invoice that are in Reckon are applied now; room is
        // kept for the ones still to come (they apply themselves when they arrive).
        let mut pending = Decimal::ZERO;
        for r in used {
            let linked = self.state.cross_ref(EntityKind::Invoice, r.id).await?;
            let credit = match linked {
                Some(x) => self.sink.credit_note(x.reckon_id).await?,
                None => None,
            };
            let applied = match credit {
                Some(c) if c.status != CreditNoteStatus::Draft => {
                    let now = self.allocate(&c, rid, balance).await?;
                    if !now.is_zero() {
                        balance = balance.checked_sub(now).unwrap_or_default();
                        detail.push_str(&format!("; credit note {} applied ({now})", r.number));
                    }
                    true
                }
                _ => false,
            };
            if !applied {
                pending = pending
                    .checked_add(r.total_amount.abs())
                    .unwrap_or(Decimal::MAX);
            }
        }
        let room = balance.checked_sub(pending).unwrap_or_default();
        if draft.paid {
            if room > Decimal::ZERO {
                self.sink
                    .record_payment(&PaymentDraft {
                        customer,
                        invoice: rid,
                        amount: room,
                        date,
                        reference: draft.reference.clone(),
                    })
                    .await?;
                detail.push_str(&format!("; payment of {room} recorded"));
            }
            return Ok(detail);
        }
        let Some(remainder) = remainder else {
            return Ok(detail);
        };
        let amount = remainder.min(room);
        if amount <= Decimal::ZERO {
            return Ok(detail);
        }
        match self.mapping.closed_remainder {
            ClosedRemainder::LeaveOwing => {}
            ClosedRemainder::Receipt => {
                self.sink
                    .record_payment(&PaymentDraft {
                        customer,
                        invoice: rid,
                        amount,
                        date,
                        reference: draft.reference.clone(),
                    })
                    .await?;
                detail.push_str(&format!(
                    "; closed in Cliniko: payment of {amount} recorded"
                ));
            }
            ClosedRemainder::WriteOff => {
                if remainder < draft.expected_total && self.mapping.write_off_account.is_none() {
                    // Which lines the credit notes reversed is not known here, so a
                    // proportional write-off could move GST between lines: a person decides.
                    return Err(PipelineError::Conflict(format!(
                        "invoice {} is Closed in Cliniko with {remainder} of its {} not covered by its credit notes; write the rest off in Reckon by hand, or set mapping.closed_remainder or mapping.write_off_account",
                        inv.id, draft.expected_total
                    )));
                }
                detail.push_str(&self.write_off(inv, draft, rid, amount, date).await?);
            }
        }
        Ok(detail)
    }

    /// Writes off `amount` of invoice `rid` with a credit note `Write-off <number>`: the
    /// one a previous attempt made (approved if it was left a Draft) or a new one, checked
    /// against Reckon's totals, then allocated.
    async fn write_off(
        &self,
        inv: &Invoice,
        draft: &InvoiceDraft,
        rid: ReckonId,
        amount: Decimal,
        date: chrono::NaiveDate,
    ) -> Result<String, PipelineError> {
        let reference = mapping::write_off_reference(&draft.reference);
        let write_off = mapping::write_off_draft(inv.id, draft, amount, date, &self.mapping)?;
        let existing = self
            .sink
            .find_credit_notes_by_reference(&reference)
            .await?
            .into_iter()
            .find(|c| c.customer.is_none_or(|id| id == draft.customer));
        let id = match existing {
            Some(c) if c.status != CreditNoteStatus::Draft => c.id,
            Some(c) => {
                // Created, but the approval never happened (a crash or a failed PATCH).
                self.sink.update_credit_note(c.id, &write_off).await?;
                c.id
            }
            None => self.sink.create_credit_note(&write_off).await?,
        };
        let credit = self.sink.credit_note(id).await?.ok_or_else(|| {
            PipelineError::Conflict(format!(
                "invoice {}: Reckon lost write-off credit note {id}",
                inv.id
            ))
        })?;
        if credit.allocations.is_empty()
            && (credit.total_amount != write_off.expected_total
                || credit.total_tax_amount != write_off.expected_tax)
        {
            return Err(PipelineError::TotalsMismatch {
                invoice: inv.id,
                reckon_total: credit.total_amount,
                cliniko_total: write_off.expected_total,
                reckon_tax: credit.total_tax_amount,
                cliniko_tax: write_off.expected_tax,
            });
        }
        let used = self.allocate(&credit, rid, amount).await?;
        Ok(if used.is_zero() {
            String::new()
        } else {
            format!("; closed in Cliniko: {used} written off ({reference})")
        })
    }

    /// Whether a Reckon invoice or credit note found by reference may be adopted: it is for
    /// this customer (one with that reference for another customer is not ours to
    /// overwrite) and no other Cliniko record is linked to it.
    async fn adoptable_by_reference(
        &self,
        found: ReckonId,
        found_customer: Option<ReckonId>,
        customer: ReckonId,
    ) -> Result<bool, PipelineError> {
        if found_customer.is_some_and(|c| c != customer) {
            return Ok(false);
        }
        Ok(self
            .state
            .cross_ref_by_reckon(EntityKind::Invoice, found)
            .await?
            .is_none())
    }

    /// Whether Cliniko says nothing is owed on this sale (see [`writes::settlement`]).
    fn settled_in_cliniko(
        &self,
        inv: &Invoice,
        draft: &InvoiceDraft,
    ) -> Result<bool, PipelineError> {
        Ok(writes::settlement(inv, draft.paid, &self.mapping)? == Settlement::Settled)
    }

    /// Allocates what is left of a credit note to an invoice, up to `at_most` (the
    /// invoice's balance); nothing when it is allocated to that invoice already. Returns
    /// the amount allocated now.
    async fn allocate(
        &self,
        credit: &ReckonCreditNote,
        invoice: ReckonId,
        at_most: Decimal,
    ) -> Result<Decimal, PipelineError> {
        if credit.status == CreditNoteStatus::Draft
            || credit.allocated_to(invoice).is_none_or(|a| !a.is_zero())
        {
            return Ok(Decimal::ZERO);
        }
        let amount = credit.balance.min(at_most);
        if amount <= Decimal::ZERO {
            return Ok(Decimal::ZERO);
        }
        self.sink
            .allocate_credit_note(credit.id, invoice, amount)
            .await?;
        Ok(amount)
    }

    // ---- credit notes ------------------------------------------------------------------

    /// A Cliniko credit note (negative total) becomes a Reckon credit note. A Closed one
    /// (its credit used) is allocated to the invoice it reverses when that is in Reckon;
    /// an Open credit one stays unallocated: the patient's credit.
    async fn apply_credit_note(
        &self,
        inv: &Invoice,
        customer: ReckonId,
        targets: &[LineTarget],
        tz: chrono_tz::Tz,
        xref: Option<CrossRef>,
    ) -> Result<Applied, PipelineError> {
        let kind = EntityKind::Invoice;
        let version = inv.version();
        let draft = mapping::credit_note_draft(inv, customer, targets, tz, &self.mapping)?;
        // Its status is in the hash: a credit that becomes used (40 → 30) must be applied
        // even though the credit note itself reads the same.
        let hash = mapping::content_hash(&(&draft, inv.status.code()));
        if let Some(x) = xref {
            if hash == x.content_hash {
                self.record_link(kind, inv.id, x.reckon_id, version, hash, None, x.adopted)
                    .await?;
                return Ok(Applied::new(
                    Outcome::Unchanged,
                    Some(x.reckon_id),
                    "no change",
                ));
            }
            let current = self.sink.credit_note(x.reckon_id).await?.ok_or_else(|| {
                PipelineError::Conflict(format!(
                    "credit note {}: Reckon credit note {} is gone; reconcile to re-create it",
                    inv.id, x.reckon_id
                ))
            })?;
            self.rewrite_credit(inv, &current, &draft).await?;
            let detail = self.finish_credit(inv, &draft, x.reckon_id).await?;
            self.record_link(kind, inv.id, x.reckon_id, version, hash, None, x.adopted)
                .await?;
            return Ok(Applied::new(
                Outcome::Updated,
                Some(x.reckon_id),
                format!("credit note updated{detail}"),
            ));
        }
        let interrupted = self.state.intent(kind, inv.id).await?.is_some();
        for candidate in self
            .sink
            .find_credit_notes_by_reference(&draft.reference)
            .await?
        {
            if !self
                .adoptable_by_reference(candidate.id, candidate.customer, customer)
                .await?
            {
                continue;
            }
            self.rewrite_credit(inv, &candidate, &draft).await?;
            let detail = self.finish_credit(inv, &draft, candidate.id).await?;
            self.record_link(
                kind,
                inv.id,
                candidate.id,
                version,
                hash,
                None,
                !interrupted,
            )
            .await?;
            return Ok(found_by_reference(
                interrupted,
                "credit note",
                &draft.reference,
                candidate.id,
                &detail,
            ));
        }
        self.claim_create(Intent {
            kind,
            cliniko_id: inv.id,
            marker: draft.reference.clone(),
            started_at: Utc::now(),
            owner: self.owner.clone(),
        })
        .await?;
        let rid = self.sink.create_credit_note(&draft).await?;
        let detail = self.finish_credit(inv, &draft, rid).await?;
        self.record_link(kind, inv.id, rid, version, hash, None, false)
            .await?;
        Ok(Applied::new(
            Outcome::Created,
            Some(rid),
            format!("credit note created{detail}"),
        ))
    }

    /// Rewrites a Reckon credit note unless it already reads the same; one that is
    /// allocated keeps its total (Reckon refuses less than what is allocated, and an
    /// allocation is the bookkeeper's as much as ours).
    async fn rewrite_credit(
        &self,
        inv: &Invoice,
        current: &ReckonCreditNote,
        draft: &CreditNoteDraft,
    ) -> Result<(), PipelineError> {
        let same_total = current.total_amount == draft.expected_total
            && current.total_tax_amount == draft.expected_tax;
        if !current.allocations.is_empty() {
            if same_total {
                return Ok(());
            }
            return Err(PipelineError::Conflict(format!(
                "credit note {}: Reckon credit note {} is applied to invoices with total {}, Cliniko's total is {}; unapply it in Reckon first",
                inv.id, current.id, current.total_amount, draft.expected_total
            )));
        }
        self.sink.update_credit_note(current.id, draft).await?;
        Ok(())
    }

    /// Checks Reckon's totals against Cliniko's, then allocates a used (Closed) credit
    /// note to the invoice it reverses.
    async fn finish_credit(
        &self,
        inv: &Invoice,
        draft: &CreditNoteDraft,
        rid: ReckonId,
    ) -> Result<String, PipelineError> {
        let written = self.sink.credit_note(rid).await?.ok_or_else(|| {
            PipelineError::Conflict(format!(
                "credit note {}: Reckon lost credit note {rid}",
                inv.id
            ))
        })?;
        if written.total_amount != draft.expected_total
            || written.total_tax_amount != draft.expected_tax
        {
            return Err(PipelineError::TotalsMismatch {
                invoice: inv.id,
                reckon_total: written.total_amount,
                cliniko_total: draft.expected_total,
                reckon_tax: written.total_tax_amount,
                cliniko_tax: draft.expected_tax,
            });
        }
        if inv.status != InvoiceStatus::Closed {
            return Ok(String::new());
        }
        let Some(original) = inv.original_invoice_id else {
            return Ok(String::new());
        };
        let Some(link) = self.state.cross_ref(EntityKind::Invoice, original).await? else {
            // Being created right now by another worker: come back, or neither side would
            // apply the credit (its settle counted this one as still to come).
            if let Some(i) = self.state.intent(EntityKind::Invoice, original).await?
                && Utc::now() - i.started_at < crate::ports::INTENT_CLAIM
                && i.owner != self.owner
            {
                return Err(PipelineError::InProgress(format!(
                    "credit note {}: invoice {original} it reverses is being written by another worker",
                    inv.id
                )));
            }
            return Ok(String::new());
        };
        // Used on the invoice it reverses, or a refund or credit spent elsewhere? The
        // original's own status says (the same rule its settle applies).
        let Some(Record::Invoice(reversed)) =
            self.source.record(EntityKind::Invoice, original).await?
        else {
            return Ok(String::new());
        };
        if !reversed.credited_by(inv.status, inv.created_at) {
            return Ok("; a refund or credit used elsewhere: left unallocated".into());
        }
        self.claim_create(Intent {
            kind: EntityKind::Invoice,
            cliniko_id: inv.id,
            marker: format!("apply {}", draft.reference),
            started_at: Utc::now(),
            owner: self.owner.clone(),
        })
        .await?;
        let written = self.sink.credit_note(rid).await?.ok_or_else(|| {
            PipelineError::Conflict(format!(
                "credit note {}: Reckon lost credit note {rid}",
                inv.id
            ))
        })?;
        let Some(target) = self.sink.invoice(link.reckon_id).await? else {
            return Ok(String::new());
        };
        let used = self.allocate(&written, target.id, target.balance).await?;
        if used.is_zero() {
            return Ok(String::new());
        }
        Ok(format!(
            "; applied {used} to invoice {}",
            target.reference.as_deref().unwrap_or("?")
        ))
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
