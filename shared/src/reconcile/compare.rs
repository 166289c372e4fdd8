//! The comparison itself: pure, over records already read. Each Cliniko record is turned
//! into what the sync would write (the mapping functions) and compared field by field with
//! its linked Reckon record.

use super::report::{Category, Mismatch, ReconcileReport, Repair, Scanned};
use super::scratch::{Scratch, ScratchError, Shelf};
use crate::domain::*;
use crate::mapping::writes::{self, Settlement};
use crate::mapping::{self, MappingConfig};
use crate::ports::{Failure, Unreadable};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// A Reckon invoice as reconciliation keeps it: what the comparison reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct InvoiceSummary {
    pub reference: Option<String>,
    pub customer: Option<ReckonId>,
    pub status: ReckonInvoiceStatus,
    pub total: Decimal,
    pub tax: Decimal,
    pub balance: Decimal,
    /// `(amount, tax)` per line, in line order.
    pub lines: Box<[(Decimal, Decimal)]>,
}

impl From<ReckonInvoiceRecord> for InvoiceSummary {
    fn from(r: ReckonInvoiceRecord) -> Self {
        let mut lines = r.lines;
        lines.sort_by_key(|l| l.line_number);
        InvoiceSummary {
            reference: r.reference,
            customer: r.customer,
            status: r.status,
            total: r.total_amount,
            tax: r.total_tax_amount,
            balance: r.balance,
            lines: lines.iter().map(|l| (l.amount, l.tax_amount)).collect(),
        }
    }
}

fn money(d: Decimal) -> String {
    let d = d.round_dp(2);
    if d.is_sign_negative() {
        format!("-${:.2}", d.abs())
    } else {
        format!("${d:.2}")
    }
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map(str::trim).unwrap_or_default().to_string()
}

fn phone_text(phones: &[ReckonPhone]) -> String {
    let mut v: Vec<String> = phones
        .iter()
        .map(|p| format!("{}: {}", p.kind, p.number.trim()))
        .collect();
    v.sort();
    v.join("; ")
}

fn address_text(addresses: &[ReckonAddress]) -> String {
    let mut v: Vec<String> = addresses
        .iter()
        .map(|a| {
            let mut parts: Vec<String> = a.lines.iter().map(|l| l.trim().to_string()).collect();
            for p in [&a.suburb, &a.state, &a.postcode, &a.country]
                .into_iter()
                .flatten()
            {
                parts.push(p.trim().to_string());
            }
            format!("{}: {}", a.kind, parts.join(", "))
        })
        .collect();
    v.sort();
    v.join("; ")
}

fn status_text(s: ActiveStatus) -> String {
    match s {
        ActiveStatus::Active => "Active".into(),
        ActiveStatus::Inactive => "Inactive".into(),
    }
}

fn invoice_status_text(s: ReckonInvoiceStatus) -> &'static str {
    match s {
        ReckonInvoiceStatus::Draft => "Draft",
        ReckonInvoiceStatus::Approved => "Approved",
        ReckonInvoiceStatus::Paid => "Paid",
    }
}

/// Something Cliniko has that Reckon lacks, remembered until the unlinked Reckon records
/// have been searched for a match.
#[derive(Debug)]
struct Missing {
    entity: EntityKind,
    id: ClinikoId,
    label: String,
    value: Option<String>,
    keys: Vec<String>,
}

pub(super) struct Run<'a> {
    /// The Reckon book, the links, and the lookups below (on disk, not in memory).
    scratch: Scratch,
    failing: HashSet<(EntityKind, ClinikoId)>,
    failures: Vec<Failure>,
    taxes: Vec<Tax>,
    businesses: Vec<Business>,
    mapping: &'a MappingConfig,
    /// When completion is judged (`completed_when = "ended"`).
    now: DateTime<Utc>,
    scanned: Scanned,
    found: Vec<Mismatch>,
    missing: Vec<Missing>,
}

impl<'a> Run<'a> {
    /// `scratch` holds the Reckon book and the links, already read.
    pub fn new(
        scratch: Scratch,
        failures: Vec<Failure>,
        taxes: Vec<Tax>,
        businesses: Vec<Business>,
        mapping: &'a MappingConfig,
        now: DateTime<Utc>,
    ) -> Result<Self, ScratchError> {
        let scanned = Scanned {
            reckon_customers: scratch.count(Shelf::Customers)?,
            reckon_items: scratch.count(Shelf::Items)?,
            reckon_invoices: scratch.count(Shelf::Invoices)?,
            reckon_credit_notes: scratch.count(Shelf::CreditNotes)?,
            ..Scanned::default()
        };
        Ok(Run {
            scratch,
            failing: failures.iter().map(|f| (f.kind, f.cliniko_id)).collect(),
            failures,
            taxes,
            businesses,
            mapping,
            now,
            scanned,
            found: Vec::new(),
            missing: Vec::new(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        category: Category,
        entity: EntityKind,
        label: &str,
        cliniko_id: Option<ClinikoId>,
        reckon_id: Option<ReckonId>,
        field: Option<&str>,
        values: (Option<String>, Option<String>),
        action: &str,
    ) {
        self.found.push(Mismatch {
            category,
            entity,
            label: label.to_string(),
            cliniko_id,
            reckon_id,
            field: field.map(str::to_string),
            cliniko_value: values.0,
            reckon_value: values.1,
            action: action.to_string(),
            repair: match category {
                Category::MissingInReckon | Category::SyncFailure => Some(Repair::Sync),
                Category::LinkedRecordGone => Some(Repair::Recreate),
                Category::FieldDrift | Category::AmountDrift | Category::StatusDrift => {
                    Some(Repair::Rewrite)
                }
                Category::DuplicateInReckon | Category::LinkSuggestion => None,
            },
        });
    }

    /// The mismatch just found needs a person: `--repair` leaves it alone.
    fn by_hand(&mut self) {
        if let Some(last) = self.found.last_mut() {
            last.repair = None;
        }
    }

    fn drift(
        &mut self,
        entity: EntityKind,
        label: &str,
        ids: (ClinikoId, ReckonId),
        field: &str,
        cliniko: String,
        reckon: String,
    ) {
        let action = "Re-sync from Cliniko (reconcile --repair), or correct it in Cliniko if Reckon is right.";
        self.push(
            Category::FieldDrift,
            entity,
            label,
            Some(ids.0),
            Some(ids.1),
            Some(field),
            (Some(cliniko), Some(reckon)),
            action,
        );
    }

    /// A linked invoice or credit note for another customer than the one the sync would
    /// write: reported with both customers' names.
    fn customer_drift(
        &mut self,
        kind: EntityKind,
        label: &str,
        ids: (ClinikoId, ReckonId),
        want: Option<ReckonId>,
        got: Option<ReckonId>,
    ) -> Result<(), ScratchError> {
        let (Some(want), Some(got)) = (want, got) else {
            return Ok(());
        };
        if want == got {
            return Ok(());
        }
        let name = |run: &Self, id: ReckonId| -> Result<String, ScratchError> {
            let c: Option<ReckonCustomerRecord> = run.scratch.get(Shelf::Customers, id)?;
            Ok(c.map(|c| c.name).unwrap_or_else(|| id.to_string()))
        };
        let (a, b) = (name(self, want)?, name(self, got)?);
        self.drift(kind, label, ids, "customer", a, b);
        Ok(())
    }

    /// The linked Reckon record is gone, or the record is missing; failures already
    /// waiting in the sync are reported as such, once.
    fn absent(
        &mut self,
        entity: EntityKind,
        id: ClinikoId,
        label: &str,
        linked: Option<ReckonId>,
        value: Option<String>,
        keys: Vec<String>,
    ) {
        if self.failing.contains(&(entity, id)) {
            return;
        }
        match linked {
            Some(rid) => self.push(
                Category::LinkedRecordGone,
                entity,
                label,
                Some(id),
                Some(rid),
                None,
                (value, None),
                "It was deleted in Reckon: re-create it with reconcile --repair.",
            ),
            None => self.missing.push(Missing {
                entity,
                id,
                label: label.to_string(),
                value,
                keys,
            }),
        }
    }

    pub fn compare(&mut self, record: &Record) -> Result<(), ScratchError> {
        match record {
            Record::Patient(p) => self.patient(p),
            Record::Product(p) => {
                self.scanned.cliniko_products += 1;
                let draft = mapping::product_to_item(p, &self.taxes, self.mapping);
                self.item(EntityKind::Product, p.id, draft.ok())
            }
            Record::BillableItem(b) => {
                self.scanned.cliniko_products += 1;
                let draft = mapping::billable_item_to_item(b, &self.taxes, self.mapping);
                self.item(EntityKind::BillableItem, b.id, draft.ok())
            }
            Record::Invoice(i) => self.invoice(i),
            Record::Appointment(a) => self.appointment(a),
        }
    }

    /// A completed appointment should have its Reckon invoice (`APPT-<id>`), unless a
    /// Cliniko invoice for it took its place (`both`). Its amounts are the sync's own
    /// pricing of the appointment type, so only presence is compared here.
    fn appointment(&mut self, a: &Appointment) -> Result<(), ScratchError> {
        self.scanned.cliniko_appointments += 1;
        let kind = EntityKind::Appointment;
        let link = self.scratch.link(kind, a.id)?;
        if let Some(rid) = link {
            // Whatever became of it (withdrawn, or taken over by a Cliniko invoice that
            // was compared first), it is ours, not an extra.
            let _taken: Option<InvoiceSummary> = self.scratch.take(Shelf::Invoices, rid)?;
            return Ok(());
        }
        let rules = &self.mapping.invoicing.appointments;
        if mapping::appointment::completion(a, rules, self.now).is_err()
            || self.scratch.key(&format!("appt:{}", a.id))?.is_some()
        {
            return Ok(());
        }
        let reference = mapping::appointment::appointment_reference(a.id, 1);
        let patient = match a.patient_id {
            Some(p) => self.scratch.patient_name(p)?.unwrap_or_default(),
            None => String::new(),
        };
        let label = match patient.as_str() {
            "" => format!("Appointment {reference}"),
            p => format!("Appointment {reference} — {p}"),
        };
        self.absent(
            kind,
            a.id,
            &label,
            link,
            None,
            vec![format!("ref:{reference}")],
        );
        Ok(())
    }

    fn patient(&mut self, p: &Patient) -> Result<(), ScratchError> {
        self.scanned.cliniko_patients += 1;
        let kind = EntityKind::Patient;
        let base = self.mapping.customers.name(p);
        self.scratch.put_patient_name(p.id, &base)?;
        let label = format!("Patient {base}");
        let link = self.scratch.link(kind, p.id)?;
        let customer: Option<ReckonCustomerRecord> = match link {
            Some(rid) => self.scratch.take(Shelf::Customers, rid)?,
            None => None,
        };
        let Some(c) = customer else {
            let mut keys = vec![format!("name:{}", fold(&base))];
            for e in [&p.email, &p.invoice_email].into_iter().flatten() {
                if !e.trim().is_empty() {
                    keys.push(format!("email:{}", fold(e)));
                }
            }
            self.absent(kind, p.id, &label, link, Some(base), keys);
            return Ok(());
        };
        let ids = (p.id, c.id);
        self.scratch
            .put_key(&format!("name:{}", fold(&base)), ids)?;
        let emails = [&c.email, &p.email, &p.invoice_email];
        for e in emails.into_iter().flatten() {
            if !e.trim().is_empty() {
                self.scratch.put_key(&format!("email:{}", fold(e)), ids)?;
            }
        }
        // The sync keeps a disambiguated name ("Jane Citizen (jane@…)", "Jane Citizen (123)")
        // as the patient's.
        let expected_name = if self
            .mapping
            .customers
            .alternatives(&base, p)
            .contains(&c.name)
        {
            c.name.clone()
        } else {
            base
        };
        let draft = mapping::patient_to_customer(p, &expected_name, self.mapping);
        if draft.name != c.name {
            self.drift(
                kind,
                &label,
                ids,
                "name",
                draft.name.clone(),
                c.name.clone(),
            );
        }
        if fold(&opt(&draft.email)) != fold(&opt(&c.email)) {
            self.drift(kind, &label, ids, "email", opt(&draft.email), opt(&c.email));
        }
        if phone_text(&draft.phones) != phone_text(&c.phones) {
            self.drift(
                kind,
                &label,
                ids,
                "phone",
                phone_text(&draft.phones),
                phone_text(&c.phones),
            );
        }
        if address_text(&draft.addresses) != address_text(&c.addresses) {
            self.drift(
                kind,
                &label,
                ids,
                "address",
                address_text(&draft.addresses),
                address_text(&c.addresses),
            );
        }
        if draft.status != c.status {
            self.push(
                Category::StatusDrift,
                kind,
                &label,
                Some(p.id),
                Some(c.id),
                Some("status"),
                (Some(status_text(draft.status)), Some(status_text(c.status))),
                "Re-sync from Cliniko (reconcile --repair); archived and merged patients are Inactive.",
            );
        }
        Ok(())
    }

    fn item(
        &mut self,
        kind: EntityKind,
        id: ClinikoId,
        draft: Option<ItemDraft>,
    ) -> Result<(), ScratchError> {
        let link = self.scratch.link(kind, id)?;
        let name = draft
            .as_ref()
            .map(|d| d.name.clone())
            .unwrap_or_else(|| format!("{kind} {id}"));
        let label = format!(
            "{} {name}",
            if kind == EntityKind::Product {
                "Product"
            } else {
                "Service"
            }
        );
        let item: Option<ReckonItemRecord> = match link {
            Some(rid) => self.scratch.take(Shelf::Items, rid)?,
            None => None,
        };
        let Some(item) = item else {
            let keys = vec![format!("item:{}", fold(&name))];
            self.absent(kind, id, &label, link, Some(name), keys);
            return Ok(());
        };
        let Some(draft) = draft else {
            // The sync cannot map it either; its failure is reported on its own.
            return Ok(());
        };
        let ids = (id, item.id);
        let suffixed = mapping::disambiguate_item(&draft.name, draft.item_type, id);
        if item.name != draft.name && item.name != suffixed {
            self.drift(
                kind,
                &label,
                ids,
                "name",
                draft.name.clone(),
                item.name.clone(),
            );
        }
        match item.sale_price {
            Some(price) if price.round_dp(4) == draft.sale_price.round_dp(4) => {}
            other => self.drift(
                kind,
                &label,
                ids,
                "price",
                money(draft.sale_price),
                other.map(money).unwrap_or_default(),
            ),
        }
        if item.tax_code.as_deref().map(fold) != Some(fold(&draft.tax_code)) {
            self.drift(
                kind,
                &label,
                ids,
                "tax code",
                draft.tax_code.clone(),
                item.tax_code.clone().unwrap_or_default(),
            );
        }
        if item.status != draft.status {
            self.push(
                Category::StatusDrift,
                kind,
                &label,
                Some(id),
                Some(item.id),
                Some("status"),
                (
                    Some(status_text(draft.status)),
                    Some(status_text(item.status)),
                ),
                "Re-sync from Cliniko (reconcile --repair); archived products are Inactive.",
            );
        }
        Ok(())
    }

    fn invoice(&mut self, inv: &Invoice) -> Result<(), ScratchError> {
        self.scanned.cliniko_invoices += 1;
        let kind = EntityKind::Invoice;
        let patient = match inv.patient_id {
            Some(p) => self.scratch.patient_name(p)?.unwrap_or_default(),
            None => String::new(),
        };
        let label = if patient.is_empty() {
            format!("Invoice {}", inv.number)
        } else {
            format!("Invoice {} — {patient}", inv.number)
        };
        let link = self.scratch.link(kind, inv.id)?;
        if let Some(appointment) = inv.appointment_id {
            // With `both`, this invoice bills its appointment: no APPT- invoice is expected.
            self.scratch.put_key(
                &format!("appt:{appointment}"),
                (inv.id, link.unwrap_or(ReckonId(uuid::Uuid::nil()))),
            )?;
        }
        let gone_in_cliniko = inv.archived_at.is_some() || inv.deleted_at.is_some();
        let reckon: Option<(ReckonId, InvoiceSummary)> = match link {
            Some(rid) => self.scratch.take(Shelf::Invoices, rid)?.map(|s| (rid, s)),
            None => None,
        };
        if inv.role() == InvoiceRole::Credit {
            if !gone_in_cliniko {
                return self.credit_note(inv, &label, link);
            }
            // Withdrawn in Cliniko: an unused Reckon twin is still credit on the account.
            let label = label.replacen("Invoice", "Credit note", 1);
            if let Some(rid) = link
                && let Some(c) = self
                    .scratch
                    .take::<ReckonCreditNote>(Shelf::CreditNotes, rid)?
                && c.balance > Decimal::ZERO
            {
                self.push(
                    Category::StatusDrift,
                    kind,
                    &label,
                    Some(inv.id),
                    Some(rid),
                    Some("status"),
                    (
                        Some(
                            if inv.deleted_at.is_some() {
                                "Deleted"
                            } else {
                                "Archived"
                            }
                            .into(),
                        ),
                        Some(format!("{} unused credit", money(c.balance))),
                    ),
                    "Void the Reckon credit note by hand (the sync never deletes in Reckon).",
                );
                self.by_hand();
            }
            return Ok(());
        }
        if gone_in_cliniko {
            // The sync never deletes in Reckon: an open Reckon twin needs a person.
            if let Some((rid, r)) = reckon
                && r.status != ReckonInvoiceStatus::Paid
                && r.total != Decimal::ZERO
            {
                self.push(
                    Category::StatusDrift,
                    kind,
                    &label,
                    Some(inv.id),
                    Some(rid),
                    Some("status"),
                    (
                        Some(
                            if inv.deleted_at.is_some() {
                                "Deleted"
                            } else {
                                "Archived"
                            }
                            .into(),
                        ),
                        Some(invoice_status_text(r.status).into()),
                    ),
                    "Void or credit the Reckon invoice by hand (the sync never deletes in Reckon).",
                );
                self.by_hand();
            }
            return Ok(());
        }
        let Some((rid, r)) = reckon else {
            let keys = vec![format!("ref:{}", inv.number)];
            let value = Some(money(inv.total_amount));
            if !inv.items.is_empty() {
                self.absent(kind, inv.id, &label, link, value, keys);
            }
            return Ok(());
        };
        if let Some(reference) = &r.reference {
            self.scratch
                .put_key(&format!("ref:{}", reference.trim()), (inv.id, rid))?;
        }
        let customer = match inv.patient_id {
            Some(p) => self.scratch.link(EntityKind::Patient, p)?,
            None => None,
        };
        let mut targets = Vec::with_capacity(inv.items.len());
        for item in &inv.items {
            let linked = match writes::line_source(item) {
                Some((kind, id)) => self.scratch.link(kind, id)?,
                None => None,
            };
            targets.push(writes::line_target(linked, self.mapping));
        }
        let tz = writes::invoice_time_zone(inv, &self.businesses, self.mapping);
        let Ok(draft) = mapping::invoice_to_draft(
            inv,
            customer.unwrap_or(ReckonId(uuid::Uuid::nil())),
            &targets,
            tz,
            self.mapping,
        ) else {
            return Ok(());
        };
        let ids = (inv.id, rid);
        // One row per invoice, listing only the amounts that differ, both sides' values.
        let mut fields = Vec::new();
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let mut differs = |field: String, c: Decimal, k: Decimal| {
            if c.round_dp(2) != k.round_dp(2) {
                ours.push(format!("{field} {}", money(c)));
                theirs.push(format!("{field} {}", money(k)));
                fields.push(field);
            }
        };
        differs("total".into(), draft.expected_total, r.total);
        differs("GST".into(), draft.expected_tax, r.tax);
        for i in 0..draft.lines.len().max(r.lines.len()) {
            let want = draft
                .lines
                .get(i)
                .map(|l| {
                    (
                        mapping::reckon_line_amount(l.price, l.quantity, l.discount_amount)
                            .unwrap_or_default(),
                        l.tax_amount,
                    )
                })
                .unwrap_or_default();
            let got = r.lines.get(i).copied().unwrap_or_default();
            differs(format!("line {} amount", i + 1), want.0, got.0);
            differs(format!("line {} GST", i + 1), want.1, got.1);
        }
        if !fields.is_empty() {
            self.push(
                Category::AmountDrift,
                kind,
                &label,
                Some(inv.id),
                Some(rid),
                Some(&fields.join(", ")),
                (Some(ours.join("; ")), Some(theirs.join("; "))),
                if r.status == ReckonInvoiceStatus::Paid {
                    "Reckon has it paid, so Reckon will not take edits: credit and re-issue it by hand."
                } else {
                    "Re-sync from Cliniko (reconcile --repair)."
                },
            );
            if r.status == ReckonInvoiceStatus::Paid {
                self.by_hand();
            }
        }
        self.customer_drift(kind, &label, ids, customer, r.customer)?;
        // Settled in Cliniko: the sync's own rule. (An amount beyond any real one has
        // failed the sync already: it is listed with the waiting failures.)
        let (settled, owing) = match writes::settlement(inv, draft.paid, self.mapping)
            .unwrap_or(Settlement::Owing { exact: None })
        {
            Settlement::Settled => (true, None),
            Settlement::Owing { exact } => (false, exact),
        };
        if let Some(rest) = owing
            && r.balance.round_dp(2) != rest.round_dp(2)
            && r.balance != Decimal::ZERO
        {
            self.push(
                Category::StatusDrift,
                kind,
                &label,
                Some(inv.id),
                Some(rid),
                Some("balance"),
                (
                    Some(format!(
                        "Closed, {} left owing (closed_remainder = leave_owing)",
                        money(rest)
                    )),
                    Some(money(r.balance)),
                ),
                "Check what was paid or credited in Reckon against Cliniko.",
            );
            self.by_hand();
        }
        let reckon_paid = r.status == ReckonInvoiceStatus::Paid || r.balance == Decimal::ZERO;
        if settled != reckon_paid {
            let settled_word = if inv.status == InvoiceStatus::Closed {
                "Closed (nothing owing)"
            } else {
                "Paid"
            };
            let (c, k) = (
                if settled { settled_word } else { "Unpaid" }.to_string(),
                format!(
                    "{} (balance {})",
                    invoice_status_text(r.status),
                    money(r.balance)
                ),
            );
            let action = if settled {
                "Record the payment or credit in Reckon (reconcile --repair re-applies it)."
            } else {
                "Paid in Reckon but not in Cliniko: check the payment and record it in Cliniko, or remove it in Reckon."
            };
            self.push(
                Category::StatusDrift,
                kind,
                &label,
                Some(inv.id),
                Some(rid),
                Some("paid"),
                (Some(c), Some(k)),
                action,
            );
            if !settled {
                self.by_hand();
            }
        }
        Ok(())
    }

    /// A Cliniko credit note against its Reckon credit note: total, GST, customer, an Open
    /// credit one's credit still unused, and a Closed one's not left wholly unused (where a
    /// used credit went, Cliniko does not say: the invoice it reverses, another one, or a
    /// refund; one left unused needs a person).
    fn credit_note(
        &mut self,
        inv: &Invoice,
        label: &str,
        link: Option<ReckonId>,
    ) -> Result<(), ScratchError> {
        let kind = EntityKind::Invoice;
        let label = label.replacen("Invoice", "Credit note", 1);
        let reckon: Option<(ReckonId, ReckonCreditNote)> = match link {
            Some(rid) => self
                .scratch
                .take(Shelf::CreditNotes, rid)?
                .map(|c| (rid, c)),
            None => None,
        };
        let Some((rid, r)) = reckon else {
            let keys = vec![format!("cref:{}", inv.number)];
            let value = Some(money(inv.total_amount));
            if !inv.items.is_empty() {
                self.absent(kind, inv.id, &label, link, value, keys);
            }
            return Ok(());
        };
        let amount = inv.total_amount.abs();
        let tax = inv.tax_amount.abs();
        let mut fields = Vec::new();
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for (field, c, k) in [
            ("total", amount, r.total_amount),
            ("GST", tax, r.total_tax_amount),
        ] {
            if c.round_dp(2) != k.round_dp(2) {
                ours.push(format!("{field} {}", money(c)));
                theirs.push(format!("{field} {}", money(k)));
                fields.push(field);
            }
        }
        let ids = (inv.id, rid);
        if !fields.is_empty() {
            let allocated = !r.allocations.is_empty();
            self.push(
                Category::AmountDrift,
                kind,
                &label,
                Some(inv.id),
                Some(rid),
                Some(&fields.join(", ")),
                (Some(ours.join("; ")), Some(theirs.join("; "))),
                if allocated {
                    "The Reckon credit note is applied to invoices: unapply it in Reckon, then reconcile --repair."
                } else {
                    "Re-sync from Cliniko (reconcile --repair)."
                },
            );
            if allocated {
                self.by_hand();
            }
        }
        let customer = match inv.patient_id {
            Some(p) => self.scratch.link(EntityKind::Patient, p)?,
            None => None,
        };
        self.customer_drift(kind, &label, ids, customer, r.customer)?;
        if inv.status == InvoiceStatus::OpenCredit
            && r.balance.round_dp(2) != r.total_amount.round_dp(2)
        {
            self.push(
                Category::StatusDrift,
                kind,
                &label,
                Some(inv.id),
                Some(rid),
                Some("credit"),
                (
                    Some(format!("Open credit {} (unused)", money(amount))),
                    Some(format!("{} unused of {}", money(r.balance), money(r.total_amount))),
                ),
                "The credit is used in Reckon but still open in Cliniko: apply it in Cliniko too, or unapply it in Reckon.",
            );
            self.by_hand();
        }
        if inv.status == InvoiceStatus::Closed
            && r.total_amount > Decimal::ZERO
            && r.balance.round_dp(2) == r.total_amount.round_dp(2)
        {
            self.push(
                Category::StatusDrift,
                kind,
                &label,
                Some(inv.id),
                Some(rid),
                Some("credit"),
                (
                    Some(format!("Closed: {} used or refunded", money(amount))),
                    Some(format!("{} unused", money(r.balance))),
                ),
                "Cliniko says this credit was used or refunded, and not on the invoice it reverses: record the refund in Reckon, or apply the credit to the invoice it paid.",
            );
            self.by_hand();
        }
        Ok(())
    }

    /// A Cliniko record that could not be read: reported with the waiting failures (once,
    /// if the sync parked it already).
    pub fn unreadable(&mut self, bad: &Unreadable, now: DateTime<Utc>) {
        let Some(failure) = bad.failure(now) else {
            tracing::warn!(kind = %bad.kind, error = %bad.error, "unreadable Cliniko record without an id");
            return;
        };
        if self.failing.insert((failure.kind, failure.cliniko_id)) {
            self.failures.push(failure);
        }
    }

    /// Lists what no link knows (duplicates and link suggestions), what is missing, and
    /// the sync's waiting failures. Memory here grows with the mismatches, not the book.
    pub fn finish(
        mut self,
        tenant: &str,
        now: DateTime<Utc>,
    ) -> Result<ReconcileReport, ScratchError> {
        // The sync's write-offs are allocated in full when made: one with credit left is a
        // duplicate or was never approved, and would show as the patient's credit.
        let credits: Vec<(ReckonId, ReckonCreditNote)> =
            self.scratch.untaken(Shelf::CreditNotes)?;
        for (rid, c) in credits {
            let reference = c.reference.as_deref().unwrap_or_default();
            if reference.starts_with("Write-off ") && c.balance > Decimal::ZERO {
                self.push(
                    Category::DuplicateInReckon,
                    EntityKind::Invoice,
                    &format!("Credit note {reference}"),
                    None,
                    Some(rid),
                    Some("balance"),
                    (
                        Some("allocated in full to its invoice".into()),
                        Some(format!("{} not allocated ({:?})", money(c.balance), c.status)),
                    ),
                    "Delete this write-off in Reckon, or allocate it to its invoice if that still owes.",
                );
            }
        }
        // Unlinked Reckon records: duplicates of linked ones, or link candidates.
        let mut candidates: HashMap<String, Vec<(EntityKind, ReckonId, String)>> = HashMap::new();
        let customers: Vec<(ReckonId, ReckonCustomerRecord)> =
            self.scratch.untaken(Shelf::Customers)?;
        for (_, c) in &customers {
            let mut keys = vec![format!("name:{}", fold(&c.name))];
            if let Some(e) = c.email.as_deref().filter(|e| !e.trim().is_empty()) {
                keys.push(format!("email:{}", fold(e)));
            }
            let mut duplicate_of = None;
            for k in &keys {
                if let Some(hit) = self.scratch.key(k)? {
                    duplicate_of = Some((hit, k.clone()));
                    break;
                }
            }
            match duplicate_of {
                Some(((pid, linked), key)) => {
                    let (field, value) = key.split_once(':').unwrap_or(("name", ""));
                    let label = format!(
                        "Patient {}",
                        self.scratch.patient_name(pid)?.unwrap_or_default()
                    );
                    self.push(
                        Category::DuplicateInReckon,
                        EntityKind::Patient,
                        &label,
                        Some(pid),
                        Some(c.id),
                        Some(field),
                        (Some(value.to_string()), Some(format!("{} (linked: {linked})", c.name))),
                        "A second Reckon customer for this patient: merge it into the linked one in Reckon.",
                    );
                }
                None => {
                    for k in keys {
                        candidates.entry(k).or_default().push((
                            EntityKind::Patient,
                            c.id,
                            c.name.clone(),
                        ));
                    }
                }
            }
        }
        let items: Vec<(ReckonId, ReckonItemRecord)> = self.scratch.untaken(Shelf::Items)?;
        for (_, i) in &items {
            candidates
                .entry(format!("item:{}", fold(&i.name)))
                .or_default()
                .push((EntityKind::Product, i.id, i.name.clone()));
        }
        let invoices: Vec<(ReckonId, InvoiceSummary)> = self.scratch.untaken(Shelf::Invoices)?;
        for (rid, inv) in &invoices {
            let Some(reference) = inv.reference.as_deref().map(str::trim) else {
                continue;
            };
            let key = format!("ref:{reference}");
            match self.scratch.key(&key)? {
                Some((cid, linked)) => {
                    self.push(
                        Category::DuplicateInReckon,
                        EntityKind::Invoice,
                        &format!("Invoice {reference}"),
                        Some(cid),
                        Some(*rid),
                        Some("reference"),
                        (
                            Some(reference.to_string()),
                            Some(format!("{} (linked: {linked})", money(inv.total))),
                        ),
                        "Two Reckon invoices carry this reference: void the one that is not linked.",
                    );
                }
                None => candidates.entry(key).or_default().push((
                    EntityKind::Invoice,
                    *rid,
                    money(inv.total),
                )),
            }
        }
        for m in std::mem::take(&mut self.missing) {
            let suggestion = m
                .keys
                .iter()
                .find_map(|k| candidates.get(k).and_then(|v| v.first()).map(|c| (k, c)));
            match suggestion {
                Some((key, (_, rid, value))) => {
                    let by = key.split_once(':').map(|(f, _)| f).unwrap_or("name");
                    let by = if by == "ref" { "reference" } else { by };
                    let action = format!(
                        "Reckon has an unlinked record with the same {by}: link them (cliniko-reckon link {} {} {rid}) instead of creating another.",
                        m.entity.as_str(),
                        m.id
                    );
                    self.push(
                        Category::LinkSuggestion,
                        m.entity,
                        &m.label,
                        Some(m.id),
                        Some(*rid),
                        Some(by),
                        (m.value, Some(value.clone())),
                        &action,
                    );
                }
                None => self.push(
                    Category::MissingInReckon,
                    m.entity,
                    &m.label,
                    Some(m.id),
                    None,
                    None,
                    (m.value, None),
                    "Create it with reconcile --repair (it is queued for the sync).",
                ),
            }
        }
        for f in std::mem::take(&mut self.failures) {
            let label = format!("{} {}", f.kind, f.cliniko_id);
            self.push(
                Category::SyncFailure,
                f.kind,
                &label,
                Some(f.cliniko_id),
                None,
                None,
                (Some(f.error.clone()), None),
                &format!(
                    "{} attempt(s), last {}; {}",
                    f.attempts,
                    f.last_at.format("%Y-%m-%d %H:%M UTC"),
                    if f.retryable {
                        "it will be retried (or run reconcile --repair)"
                    } else {
                        "fix the cause in Cliniko or Reckon, then run reconcile --repair"
                    }
                ),
            );
        }
        Ok(ReconcileReport::new(tenant, now, self.scanned, self.found))
    }
}
