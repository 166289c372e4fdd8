//! Cliniko credit notes (negative invoices) → Reckon credit notes, allocated to the invoice
//! they reverse when Cliniko used them on it.

use super::*;

impl<S, R, St> Syncer<S, R, St>
where
    S: ClinikoSource,
    R: ReckonSink,
    St: StateStore,
{
    /// A Cliniko credit note (negative total) becomes a Reckon credit note. A Closed one
    /// (its credit used) is allocated to the invoice it reverses when that is in Reckon;
    /// an Open credit one stays unallocated: the patient's credit.
    pub(super) async fn apply_credit_note(
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
    pub(super) async fn rewrite_credit(
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
    pub(super) async fn finish_credit(
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

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[tokio::test]
    async fn a_used_credit_note_becomes_a_reckon_credit_note_allocated_to_its_invoice() {
        let s = syncer();
        s.source
            .put(Record::Patient(patient(3, "Ada", "Lovelace", None)));
        s.source
            .put(Record::BillableItem(service(30, "Consult", money(9000))));
        let sale = invoice(40, 1001, 3, &[(30, money(9000), 1)]);
        s.source.put(Record::Invoice(sale.clone()));
        let sale_id = s
            .apply(&Record::Invoice(sale.clone()))
            .await
            .expect("sale")
            .reckon_id
            .expect("id");

        // Cliniko reverses it in full: a Closed credit note (negative), used on the sale.
        let mut credit = invoice(41, 1002, 3, &[(30, money(-9000), 1)]);
        credit.status = InvoiceStatus::Closed;
        credit.original_invoice_id = Some(ClinikoId(40));
        credit.created_at = day(3);
        credit.updated_at = day(3);
        let applied = s
            .apply(&Record::Invoice(credit.clone()))
            .await
            .expect("credit");
        assert_eq!(applied.outcome, Outcome::Created, "{}", applied.detail);
        let cid = applied.reckon_id.expect("id");
        let note = s.sink.credit_note(cid).await.expect("read").expect("there");
        assert_eq!(note.total_amount, money(9900), "positive in Reckon");
        assert_eq!(note.reference.as_deref(), Some("1002"));
        assert_eq!(note.allocated_to(sale_id), Some(money(9900)));
        assert!(applied.detail.contains("applied"), "{}", applied.detail);
        let sale_now = s.sink.invoice(sale_id).await.expect("read").expect("there");
        assert_eq!(sale_now.balance, Decimal::ZERO);

        let writes = s.sink.writes();
        let again = s.apply(&Record::Invoice(credit)).await.expect("again");
        assert_eq!(again.outcome, Outcome::Unchanged);
        assert_eq!(s.sink.writes(), writes, "allocated once");
    }
}
