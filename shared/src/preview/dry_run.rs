//! The two stand-ins that let the real `apply` run without changing anything: a Reckon sink
//! that reads the book for real but only records what it would write (answering later reads
//! as if it had written it), and a state store that reads the sync's state for real but
//! keeps every change in memory. What they record is the preview's plan.

use super::{Change, SinkAction};
use crate::domain::*;
use crate::ports::{
    AuditEntry, CreditNoteSink, CrossRef, CustomerSink, Failure, Intent, InvoiceSink, ItemSink,
    NotQueued, PaymentDraft, ReckonBook, ReckonSink, SinkError, StateError, StateStore, WorkItem,
    WorkQueue,
};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the preview saw, shared by the sink and the state (the sink's writes wait in
/// `pending` until `apply` writes the audit line of the record they belong to).
#[derive(Debug, Default)]
pub(super) struct Recorder {
    pub pending: Vec<SinkAction>,
    pub entries: Vec<(AuditEntry, Vec<SinkAction>)>,
    pub queued: Vec<WorkItem>,
}

pub(super) type Shared = Arc<Mutex<Recorder>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Recorder> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A [`ReckonSink`] that writes nothing: creates get a made-up id, updates are compared with
/// the record Reckon has now (field by field), and reads see what the preview "wrote".
pub struct DryRunSink<R> {
    inner: R,
    shared: Shared,
    customers: Mutex<HashMap<ReckonId, CustomerDraft>>,
    items: Mutex<HashMap<ReckonId, ItemDraft>>,
    invoices: Mutex<HashMap<ReckonId, (InvoiceDraft, Decimal)>>,
    /// Credit notes as the preview left them (made up, or real ones it changed).
    credits: Mutex<HashMap<ReckonId, ReckonCreditNote>>,
    /// What the preview paid or credited on invoices it did not write itself.
    settled: Mutex<HashMap<ReckonId, Decimal>>,
}

impl<R> DryRunSink<R> {
    pub(super) fn new(inner: R, shared: Shared) -> Self {
        DryRunSink {
            inner,
            shared,
            customers: Mutex::default(),
            items: Mutex::default(),
            invoices: Mutex::default(),
            credits: Mutex::default(),
            settled: Mutex::default(),
        }
    }

    fn record(&self, action: SinkAction) {
        lock(&self.shared).pending.push(action);
    }
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn made_up_id() -> ReckonId {
    ReckonId(uuid::Uuid::new_v4())
}

fn text(v: Option<&str>) -> String {
    v.map(str::trim).unwrap_or_default().to_string()
}

fn push_change(changes: &mut Vec<Change>, field: &str, reckon: String, cliniko: String) {
    if reckon != cliniko {
        changes.push(Change {
            field: field.to_string(),
            reckon,
            cliniko,
        });
    }
}

fn status_text(s: ActiveStatus) -> String {
    format!("{s:?}")
}

fn phones(p: &[ReckonPhone]) -> String {
    let mut v: Vec<String> = p
        .iter()
        .map(|p| format!("{} {}", p.kind, p.number))
        .collect();
    v.sort();
    v.join("; ")
}

fn addresses(a: &[ReckonAddress]) -> String {
    let mut v: Vec<String> = a
        .iter()
        .map(|a| {
            let mut parts = a.lines.clone();
            parts.extend(
                [&a.suburb, &a.state, &a.postcode, &a.country]
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            format!("{}: {}", a.kind, parts.join(", "))
        })
        .collect();
    v.sort();
    v.join("; ")
}

fn customer_changes(now: &ReckonCustomerRecord, draft: &CustomerDraft) -> Vec<Change> {
    let mut c = Vec::new();
    push_change(&mut c, "name", now.name.clone(), draft.name.clone());
    push_change(
        &mut c,
        "email",
        text(now.email.as_deref()).to_lowercase(),
        text(draft.email.as_deref()).to_lowercase(),
    );
    push_change(
        &mut c,
        "status",
        status_text(now.status),
        status_text(draft.status),
    );
    push_change(&mut c, "phones", phones(&now.phones), phones(&draft.phones));
    push_change(
        &mut c,
        "addresses",
        addresses(&now.addresses),
        addresses(&draft.addresses),
    );
    c
}

fn draft_customer_changes(before: &CustomerDraft, draft: &CustomerDraft) -> Vec<Change> {
    customer_changes(
        &ReckonCustomerRecord {
            id: ReckonId(uuid::Uuid::nil()),
            name: before.name.clone(),
            status: before.status,
            email: before.email.clone(),
            phones: before.phones.clone(),
            addresses: before.addresses.clone(),
        },
        draft,
    )
}

fn item_changes(now: &ReckonItemRecord, draft: &ItemDraft) -> Vec<Change> {
    let mut c = Vec::new();
    push_change(&mut c, "name", now.name.clone(), draft.name.clone());
    push_change(
        &mut c,
        "price",
        now.sale_price
            .map(|p| p.normalize().to_string())
            .unwrap_or_default(),
        draft.sale_price.normalize().to_string(),
    );
    push_change(
        &mut c,
        "tax code",
        text(now.tax_code.as_deref()),
        draft.tax_code.clone(),
    );
    push_change(
        &mut c,
        "status",
        status_text(now.status),
        status_text(draft.status),
    );
    c
}

fn invoice_changes(now: &ReckonInvoiceRecord, draft: &InvoiceDraft) -> Vec<Change> {
    let mut c = Vec::new();
    let money = |d: Decimal| format!("{:.2}", d);
    push_change(
        &mut c,
        "total",
        money(now.total_amount),
        money(draft.expected_total),
    );
    push_change(
        &mut c,
        "GST",
        money(now.total_tax_amount),
        money(draft.expected_tax),
    );
    push_change(
        &mut c,
        "customer",
        now.customer.map(|c| c.to_string()).unwrap_or_default(),
        draft.customer.to_string(),
    );
    push_change(
        &mut c,
        "lines",
        now.lines.len().to_string(),
        draft.lines.len().to_string(),
    );
    push_change(
        &mut c,
        "status",
        format!("{:?}", now.status),
        format!("{:?}", draft.status),
    );
    c
}

impl<R: ReckonSink + ReckonBook> CustomerSink for DryRunSink<R> {
    async fn customers(&self) -> Result<Vec<ReckonCustomer>, SinkError> {
        let mut list = self.inner.customers().await?;
        let ours = guard(&self.customers).clone();
        for c in &mut list {
            if let Some(d) = ours.get(&c.id) {
                c.name = d.name.clone();
                c.email = d.email.clone();
                c.status = d.status;
            }
        }
        Ok(list)
    }

    async fn find_customer_by_name(&self, name: &str) -> Result<Option<ReckonCustomer>, SinkError> {
        let ours = guard(&self.customers).clone();
        if let Some((id, d)) = ours.iter().find(|(_, d)| d.name == name) {
            return Ok(Some(ReckonCustomer {
                id: *id,
                name: d.name.clone(),
                status: d.status,
                email: d.email.clone(),
            }));
        }
        Ok(self
            .inner
            .find_customer_by_name(name)
            .await?
            .filter(|c| !ours.contains_key(&c.id)))
    }

    async fn create_customer(&self, customer: &CustomerDraft) -> Result<ReckonId, SinkError> {
        let id = made_up_id();
        guard(&self.customers).insert(id, customer.clone());
        self.record(SinkAction::Create {
            what: format!("customer {:?}", customer.name),
        });
        Ok(id)
    }

    async fn update_customer(
        &self,
        id: ReckonId,
        customer: &CustomerDraft,
    ) -> Result<(), SinkError> {
        let before = guard(&self.customers).get(&id).cloned();
        let changes = match before {
            Some(d) => draft_customer_changes(&d, customer),
            None => match self.inner.customer(id).await? {
                Some(now) => customer_changes(&now, customer),
                None => Vec::new(),
            },
        };
        guard(&self.customers).insert(id, customer.clone());
        self.record(SinkAction::Update { id, changes });
        Ok(())
    }
}

impl<R: ReckonSink + ReckonBook> ItemSink for DryRunSink<R> {
    async fn find_item_by_name(&self, name: &str) -> Result<Option<ReckonItem>, SinkError> {
        let ours = guard(&self.items).clone();
        if let Some((id, d)) = ours.iter().find(|(_, d)| d.name == name) {
            return Ok(Some(item_view(*id, d)));
        }
        Ok(self
            .inner
            .find_item_by_name(name)
            .await?
            .filter(|i| !ours.contains_key(&i.id)))
    }

    async fn find_items_by_code(&self, code: &str) -> Result<Vec<ReckonItem>, SinkError> {
        let ours = guard(&self.items).clone();
        let mut found: Vec<ReckonItem> = self
            .inner
            .find_items_by_code(code)
            .await?
            .into_iter()
            .filter(|i| !ours.contains_key(&i.id))
            .collect();
        found.extend(
            ours.iter()
                .filter(|(_, d)| d.item_code.as_deref() == Some(code))
                .map(|(id, d)| item_view(*id, d)),
        );
        Ok(found)
    }

    async fn create_item(&self, item: &ItemDraft) -> Result<ReckonId, SinkError> {
        let id = made_up_id();
        guard(&self.items).insert(id, item.clone());
        self.record(SinkAction::Create {
            what: format!("{:?} item {:?}", item.item_type, item.name),
        });
        Ok(id)
    }

    async fn update_item(&self, id: ReckonId, item: &ItemDraft) -> Result<(), SinkError> {
        let before = guard(&self.items).get(&id).cloned();
        let changes = match before {
            Some(d) => item_changes(&draft_item_record(id, &d), item),
            None => match self.inner.item(id).await? {
                Some(now) => item_changes(&now, item),
                None => Vec::new(),
            },
        };
        guard(&self.items).insert(id, item.clone());
        self.record(SinkAction::Update { id, changes });
        Ok(())
    }
}

impl<R: ReckonSink + ReckonBook> InvoiceSink for DryRunSink<R> {
    async fn find_invoices_by_reference(
        &self,
        reference: &str,
    ) -> Result<Vec<ReckonInvoice>, SinkError> {
        let ours = guard(&self.invoices).clone();
        let mut found: Vec<ReckonInvoice> = self
            .inner
            .find_invoices_by_reference(reference)
            .await?
            .into_iter()
            .filter(|i| !ours.contains_key(&i.id))
            .collect();
        found.extend(
            ours.iter()
                .filter(|(_, (d, _))| d.reference == reference)
                .map(|(id, (d, paid))| invoice_view(*id, d, *paid)),
        );
        Ok(found)
    }

    async fn invoice(&self, id: ReckonId) -> Result<Option<ReckonInvoice>, SinkError> {
        if let Some((d, paid)) = guard(&self.invoices).get(&id).cloned() {
            return Ok(Some(invoice_view(id, &d, paid)));
        }
        let settled = guard(&self.settled).get(&id).copied();
        Ok(self.inner.invoice(id).await?.map(|mut i| {
            if let Some(s) = settled {
                i.balance = i
                    .balance
                    .checked_sub(s)
                    .unwrap_or_default()
                    .max(Decimal::ZERO);
                if i.balance.is_zero() {
                    i.status = ReckonInvoiceStatus::Paid;
                }
            }
            i
        }))
    }

    async fn create_invoice(&self, invoice: &InvoiceDraft) -> Result<ReckonId, SinkError> {
        let id = made_up_id();
        guard(&self.invoices).insert(id, (invoice.clone(), Decimal::ZERO));
        self.record(SinkAction::Create {
            what: format!(
                "invoice {} for {:.2} ({:?})",
                invoice.reference, invoice.expected_total, invoice.status
            ),
        });
        Ok(id)
    }

    async fn update_invoice(&self, id: ReckonId, invoice: &InvoiceDraft) -> Result<(), SinkError> {
        let ours = guard(&self.invoices).get(&id).cloned();
        let (changes, paid) = match ours {
            Some((d, paid)) => (
                invoice_changes(&draft_invoice_record(id, &d, paid), invoice),
                paid,
            ),
            None => match self.inner.invoice_record(id).await? {
                // What was paid against it stays paid after the rewrite.
                Some(now) => (
                    invoice_changes(&now, invoice),
                    now.total_amount
                        .checked_sub(now.balance)
                        .unwrap_or_default(),
                ),
                None => (Vec::new(), Decimal::ZERO),
            },
        };
        guard(&self.invoices).insert(id, (invoice.clone(), paid));
        self.record(SinkAction::Update { id, changes });
        Ok(())
    }

    async fn record_payment(&self, payment: &PaymentDraft) -> Result<ReckonId, SinkError> {
        self.settle(payment.invoice, payment.amount);
        self.record(SinkAction::Payment {
            amount: payment.amount,
            date: payment.date,
        });
        Ok(made_up_id())
    }
}

impl<R: ReckonSink + ReckonBook> CreditNoteSink for DryRunSink<R> {
    async fn find_credit_notes_by_reference(
        &self,
        reference: &str,
    ) -> Result<Vec<ReckonCreditNote>, SinkError> {
        let ours = guard(&self.credits).clone();
        let mut found: Vec<ReckonCreditNote> = self
            .inner
            .find_credit_notes_by_reference(reference)
            .await?
            .into_iter()
            .filter(|c| !ours.contains_key(&c.id))
            .collect();
        found.extend(
            ours.into_values()
                .filter(|c| c.reference.as_deref() == Some(reference)),
        );
        Ok(found)
    }

    async fn credit_note(&self, id: ReckonId) -> Result<Option<ReckonCreditNote>, SinkError> {
        if let Some(c) = guard(&self.credits).get(&id).cloned() {
            return Ok(Some(c));
        }
        self.inner.credit_note(id).await
    }

    async fn create_credit_note(&self, credit: &CreditNoteDraft) -> Result<ReckonId, SinkError> {
        let id = made_up_id();
        guard(&self.credits).insert(id, credit_view(id, credit, Vec::new()));
        self.record(SinkAction::Create {
            what: format!(
                "credit note {} for {:.2} ({:?})",
                credit.reference, credit.expected_total, credit.status
            ),
        });
        Ok(id)
    }

    async fn update_credit_note(
        &self,
        id: ReckonId,
        credit: &CreditNoteDraft,
    ) -> Result<(), SinkError> {
        let before = self.credit_note(id).await?;
        let money = |d: Decimal| format!("{:.2}", d);
        let mut changes = Vec::new();
        let allocations = match before {
            Some(now) => {
                push_change(
                    &mut changes,
                    "total",
                    money(now.total_amount),
                    money(credit.expected_total),
                );
                push_change(
                    &mut changes,
                    "GST",
                    money(now.total_tax_amount),
                    money(credit.expected_tax),
                );
                now.allocations
            }
            None => Vec::new(),
        };
        guard(&self.credits).insert(id, credit_view(id, credit, allocations));
        self.record(SinkAction::Update { id, changes });
        Ok(())
    }

    async fn allocate_credit_note(
        &self,
        credit: ReckonId,
        invoice: ReckonId,
        amount: Decimal,
    ) -> Result<(), SinkError> {
        if let Some(mut c) = self.credit_note(credit).await? {
            c.balance = c.balance.checked_sub(amount).unwrap_or_default();
            c.allocations.push(CreditAllocation {
                link_id: None,
                invoice,
                amount,
            });
            guard(&self.credits).insert(credit, c);
        }
        self.settle(invoice, amount);
        self.record(SinkAction::Update {
            id: credit,
            changes: vec![Change {
                field: "credit applied to the invoice".into(),
                reckon: String::new(),
                cliniko: format!("{amount:.2}"),
            }],
        });
        Ok(())
    }
}

impl<R> DryRunSink<R> {
    /// Lowers an invoice's balance by a payment or a credit the preview would record.
    fn settle(&self, invoice: ReckonId, amount: Decimal) {
        if let Some((_, paid)) = guard(&self.invoices).get_mut(&invoice) {
            *paid = paid.checked_add(amount).unwrap_or(*paid);
            return;
        }
        let mut settled = guard(&self.settled);
        let entry = settled.entry(invoice).or_default();
        *entry = entry.checked_add(amount).unwrap_or(*entry);
    }
}

/// A credit note as Reckon would show it after the preview's writes.
fn credit_view(
    id: ReckonId,
    d: &CreditNoteDraft,
    allocations: Vec<CreditAllocation>,
) -> ReckonCreditNote {
    let used = allocations
        .iter()
        .try_fold(Decimal::ZERO, |sum, a| sum.checked_add(a.amount))
        .unwrap_or_default();
    ReckonCreditNote {
        id,
        reference: Some(d.reference.clone()),
        customer: Some(d.customer),
        status: d.status,
        total_amount: d.expected_total,
        total_tax_amount: d.expected_tax,
        balance: d.expected_total.checked_sub(used).unwrap_or_default(),
        allocations,
    }
}

fn item_view(id: ReckonId, d: &ItemDraft) -> ReckonItem {
    ReckonItem {
        id,
        name: d.name.clone(),
        status: d.status,
        item_type: Some(d.item_type),
        item_code: d.item_code.clone(),
    }
}

fn draft_item_record(id: ReckonId, d: &ItemDraft) -> ReckonItemRecord {
    ReckonItemRecord {
        id,
        name: d.name.clone(),
        status: d.status,
        sale_price: Some(d.sale_price),
        tax_code: Some(d.tax_code.clone()),
    }
}

/// An invoice as Reckon would show it after the preview's writes: Reckon computes the
/// totals the sync sends (checked after every real write), so they are the draft's.
fn invoice_view(id: ReckonId, d: &InvoiceDraft, paid: Decimal) -> ReckonInvoice {
    let balance = d
        .expected_total
        .checked_sub(paid)
        .unwrap_or_default()
        .max(Decimal::ZERO);
    ReckonInvoice {
        id,
        reference: Some(d.reference.clone()),
        customer: Some(d.customer),
        invoice_number: None,
        status: if paid > Decimal::ZERO && balance.is_zero() {
            ReckonInvoiceStatus::Paid
        } else {
            d.status
        },
        total_amount: d.expected_total,
        total_tax_amount: d.expected_tax,
        balance,
        last_modified: None,
    }
}

fn draft_invoice_record(id: ReckonId, d: &InvoiceDraft, paid: Decimal) -> ReckonInvoiceRecord {
    let v = invoice_view(id, d, paid);
    ReckonInvoiceRecord {
        id,
        reference: v.reference,
        customer: v.customer,
        status: v.status,
        total_amount: v.total_amount,
        total_tax_amount: v.total_tax_amount,
        balance: v.balance,
        lines: Vec::new(),
    }
}

/// A [`StateStore`] (and work queue) over the sync's real state that keeps every change in
/// memory: the preview changes no watermark, link, intent, failure or queued record.
pub struct OverlayState<St> {
    inner: St,
    shared: Shared,
    watermarks: Mutex<BTreeMap<EntityKind, DateTime<Utc>>>,
    /// `None` marks a link the preview forgot.
    xrefs: Mutex<HashMap<(EntityKind, ClinikoId), Option<CrossRef>>>,
    intents: Mutex<HashMap<(EntityKind, ClinikoId), Option<Intent>>>,
    failures: Mutex<HashMap<(EntityKind, ClinikoId), Option<Failure>>>,
}

impl<St> OverlayState<St> {
    pub(super) fn new(inner: St, shared: Shared) -> Self {
        OverlayState {
            inner,
            shared,
            watermarks: Mutex::default(),
            xrefs: Mutex::default(),
            intents: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    pub(super) fn inner(&self) -> &St {
        &self.inner
    }
}

impl<St: StateStore> StateStore for OverlayState<St> {
    async fn watermark(&self, kind: EntityKind) -> Result<Option<DateTime<Utc>>, StateError> {
        if let Some(at) = guard(&self.watermarks).get(&kind) {
            return Ok(Some(*at));
        }
        self.inner.watermark(kind).await
    }

    async fn advance_watermark(
        &self,
        kind: EntityKind,
        to: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let current = self.watermark(kind).await?;
        if current.is_none_or(|c| c < to) {
            guard(&self.watermarks).insert(kind, to);
        }
        Ok(())
    }

    async fn cross_ref(
        &self,
        kind: EntityKind,
        id: ClinikoId,
    ) -> Result<Option<CrossRef>, StateError> {
        if let Some(x) = guard(&self.xrefs).get(&(kind, id)) {
            return Ok(x.clone());
        }
        self.inner.cross_ref(kind, id).await
    }

    async fn cross_ref_by_reckon(
        &self,
        kind: EntityKind,
        id: ReckonId,
    ) -> Result<Option<CrossRef>, StateError> {
        let ours = guard(&self.xrefs).clone();
        if let Some(x) = ours
            .values()
            .flatten()
            .find(|x| x.kind == kind && x.reckon_id == id)
        {
            return Ok(Some(x.clone()));
        }
        Ok(self
            .inner
            .cross_ref_by_reckon(kind, id)
            .await?
            .filter(|x| !ours.contains_key(&(kind, x.cliniko_id))))
    }

    async fn links(&self, kind: EntityKind) -> Result<Vec<(ClinikoId, ReckonId)>, StateError> {
        let ours = guard(&self.xrefs).clone();
        let mut out: Vec<(ClinikoId, ReckonId)> = self
            .inner
            .links(kind)
            .await?
            .into_iter()
            .filter(|(c, _)| !ours.contains_key(&(kind, *c)))
            .collect();
        out.extend(
            ours.values()
                .flatten()
                .filter(|x| x.kind == kind)
                .map(|x| (x.cliniko_id, x.reckon_id)),
        );
        Ok(out)
    }

    async fn name_owner(
        &self,
        kind: EntityKind,
        name: &str,
    ) -> Result<Option<ClinikoId>, StateError> {
        let same = |n: &str| n.to_lowercase() == name.to_lowercase();
        let xrefs = guard(&self.xrefs).clone();
        if let Some(x) = xrefs
            .values()
            .flatten()
            .find(|x| x.kind == kind && x.reckon_name.as_deref().is_some_and(same))
        {
            return Ok(Some(x.cliniko_id));
        }
        let intents = guard(&self.intents).clone();
        if let Some(i) = intents
            .values()
            .flatten()
            .find(|i| i.kind == kind && same(&i.marker))
        {
            return Ok(Some(i.cliniko_id));
        }
        Ok(self
            .inner
            .name_owner(kind, name)
            .await?
            .filter(|id| !xrefs.contains_key(&(kind, *id))))
    }

    async fn put_cross_ref(&self, xref: &CrossRef) -> Result<bool, StateError> {
        let current = self.cross_ref(xref.kind, xref.cliniko_id).await?;
        if current.is_some_and(|c| c.version > xref.version) {
            return Ok(false);
        }
        guard(&self.xrefs).insert((xref.kind, xref.cliniko_id), Some(xref.clone()));
        Ok(true)
    }

    async fn forget_cross_ref(
        &self,
        kind: EntityKind,
        id: ClinikoId,
        reckon_id: ReckonId,
    ) -> Result<bool, StateError> {
        let current = self.cross_ref(kind, id).await?;
        if current.is_some_and(|c| c.reckon_id == reckon_id) {
            guard(&self.xrefs).insert((kind, id), None);
            return Ok(true);
        }
        Ok(false)
    }

    async fn intent(&self, kind: EntityKind, id: ClinikoId) -> Result<Option<Intent>, StateError> {
        if let Some(i) = guard(&self.intents).get(&(kind, id)) {
            return Ok(i.clone());
        }
        self.inner.intent(kind, id).await
    }

    async fn put_intent(&self, intent: &Intent) -> Result<bool, StateError> {
        guard(&self.intents).insert((intent.kind, intent.cliniko_id), Some(intent.clone()));
        Ok(true)
    }

    async fn clear_intent(&self, kind: EntityKind, id: ClinikoId) -> Result<(), StateError> {
        guard(&self.intents).insert((kind, id), None);
        Ok(())
    }

    /// The line `apply` writes last for each record: the writes recorded since belong to it.
    async fn audit(&self, entry: &AuditEntry) -> Result<(), StateError> {
        let mut r = lock(&self.shared);
        let actions = std::mem::take(&mut r.pending);
        r.entries.push((entry.clone(), actions));
        Ok(())
    }

    async fn record_failure(&self, failure: &Failure) -> Result<(), StateError> {
        guard(&self.failures).insert((failure.kind, failure.cliniko_id), Some(failure.clone()));
        Ok(())
    }

    async fn clear_failure(&self, kind: EntityKind, id: ClinikoId) -> Result<(), StateError> {
        guard(&self.failures).insert((kind, id), None);
        Ok(())
    }

    async fn failures(&self) -> Result<Vec<Failure>, StateError> {
        let ours = guard(&self.failures).clone();
        let mut out: Vec<Failure> = self
            .inner
            .failures()
            .await?
            .into_iter()
            .filter(|f| !ours.contains_key(&(f.kind, f.cliniko_id)))
            .collect();
        out.extend(ours.into_values().flatten());
        Ok(out)
    }
}

impl<St: Send + Sync> WorkQueue for OverlayState<St> {
    async fn enqueue(&self, items: Vec<WorkItem>) -> Result<Vec<NotQueued>, StateError> {
        lock(&self.shared).queued.extend(items);
        Ok(Vec::new())
    }
}
