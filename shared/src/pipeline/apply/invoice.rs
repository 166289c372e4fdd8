//! Invoices → Reckon invoices: write, verify Reckon's totals, settle what Cliniko says is
//! paid (receipts, credit allocations, write-offs).

use super::*;
use crate::mapping::appointment::InvoicingSource;

impl<S, R, St> Syncer<S, R, St>
where
    S: ClinikoSource,
    R: ReckonSink,
    St: StateStore,
{
    /// Under an approval workflow, an approval stands: an invoice approved in Reckon is not
    /// put back to Draft when Cliniko changes it (only a person moves it back). Clinics
    /// without one keep their status mapping as it is.
    fn keep_approval(
        &self,
        mut draft: InvoiceDraft,
        in_reckon: ReckonInvoiceStatus,
    ) -> InvoiceDraft {
        if self.mapping.invoicing.has_approval()
            && draft.status == ReckonInvoiceStatus::Draft
            && in_reckon == ReckonInvoiceStatus::Approved
        {
            draft.status = ReckonInvoiceStatus::Approved;
        }
        draft
    }

    pub(super) async fn apply_invoice(&self, inv: &Invoice) -> Result<Applied, PipelineError> {
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
        let businesses = self.businesses().await?;
        let tz = writes::invoice_time_zone(inv, businesses, &self.mapping);
        if inv.role() == InvoiceRole::Credit {
            return self
                .apply_credit_note(inv, customer, &targets, tz, xref)
                .await;
        }
        let mut draft = mapping::invoice_to_draft(inv, customer, &targets, tz, &self.mapping)?;
        let business = inv
            .business_id
            .and_then(|b| businesses.iter().find(|x| x.id == b));
        draft.status = self.mapping.invoicing.status(inv, business, draft.status);
        if xref.is_none()
            && self.mapping.invoicing.appointments.source == InvoicingSource::Both
            && let Some(appointment) = inv.appointment_id
        {
            return self
                .bill_appointment(inv, appointment, draft, customer, tz)
                .await;
        }
        self.write_invoice(kind, inv, draft, customer, tz, xref, None)
            .await
    }

    /// Writes `draft` (the Reckon form of `inv`) as the Reckon invoice linked to Cliniko
    /// record `kind` `inv.id`: unchanged, updated, adopted by reference or created, then
    /// settled. `inv` is a Cliniko invoice, or an appointment priced as one (`kind`
    /// Appointment); `reckon_name` is kept in the link (an appointment's reference).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write_invoice(
        &self,
        kind: EntityKind,
        inv: &Invoice,
        draft: InvoiceDraft,
        customer: ReckonId,
        tz: chrono_tz::Tz,
        xref: Option<CrossRef>,
        reckon_name: Option<String>,
    ) -> Result<Applied, PipelineError> {
        let version = inv.version();
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
                self.record_link(
                    kind,
                    inv.id,
                    x.reckon_id,
                    version,
                    hash,
                    reckon_name.clone(),
                    x.adopted,
                )
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
                    self.record_link(
                        kind,
                        inv.id,
                        x.reckon_id,
                        version,
                        hash,
                        reckon_name.clone(),
                        x.adopted,
                    )
                    .await?;
                    return Ok(Applied::new(
                        Outcome::Unchanged,
                        Some(x.reckon_id),
                        "paid in Reckon; nothing to change",
                    ));
                }
                return Err(PipelineError::Conflict(format!(
                    "{kind} {} changed in Cliniko but Reckon invoice {} is paid and cannot be edited",
                    inv.id, x.reckon_id
                )));
            }
            let draft = self.keep_approval(draft, current.status);
            self.sink.update_invoice(x.reckon_id, &draft).await?;
            let detail = self.settle(inv, &draft, customer, x.reckon_id, tz).await?;
            self.record_link(
                kind,
                inv.id,
                x.reckon_id,
                version,
                hash,
                reckon_name.clone(),
                x.adopted,
            )
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
                        "{kind} {}: Reckon invoice {} with reference {} is paid with total {}, Cliniko's total is {}; a paid invoice cannot be edited",
                        inv.id,
                        candidate.id,
                        draft.reference,
                        candidate.total_amount,
                        draft.expected_total
                    )));
                }
            } else {
                let draft = self.keep_approval(draft.clone(), candidate.status);
                self.sink.update_invoice(candidate.id, &draft).await?;
            }
            let detail = self.settle(inv, &draft, customer, candidate.id, tz).await?;
            self.record_link(
                kind,
                inv.id,
                candidate.id,
                version,
                hash,
                reckon_name.clone(),
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
        self.record_link(kind, inv.id, rid, version, hash, reckon_name, false)
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
    pub(super) async fn settle(
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
                let reference = mapping::write_off_reference(&draft.reference);
                let used = self
                    .credit_invoice(inv, draft, rid, amount, date, &reference, None)
                    .await?;
                if !used.is_zero() {
                    detail.push_str(&format!(
                        "; closed in Cliniko: {used} written off ({reference})"
                    ));
                }
            }
        }
        Ok(detail)
    }

    /// Credits `amount` of invoice `rid` (drafted as `draft`) with the credit note
    /// `reference` (`Write-off <number>`, or `Withdrawn APPT-<id>` with `withdrawal` its
    /// reason): the one a previous attempt made (approved if it was left a Draft) or a new
    /// one, checked against Reckon's totals, then allocated. Returns the amount allocated now.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn credit_invoice(
        &self,
        inv: &Invoice,
        draft: &InvoiceDraft,
        rid: ReckonId,
        amount: Decimal,
        date: chrono::NaiveDate,
        reference: &str,
        withdrawal: Option<&str>,
    ) -> Result<Decimal, PipelineError> {
        let mut write_off = mapping::write_off_draft(inv.id, draft, amount, date, &self.mapping)?;
        if let Some(why) = withdrawal {
            write_off.reference = reference.to_string();
            write_off.notes = Some(format!(
                "Withdraws invoice {}: the appointment is no longer complete ({why}).",
                draft.reference
            ));
            for line in &mut write_off.lines {
                line.description = line.description.replacen("Write-off: ", "Withdrawn: ", 1);
            }
        }
        let existing = self
            .sink
            .find_credit_notes_by_reference(reference)
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
        self.allocate(&credit, rid, amount).await
    }

    /// Whether a Reckon invoice or credit note found by reference may be adopted: it is for
    /// this customer (one with that reference for another customer is not ours to
    /// overwrite) and no other Cliniko record is linked to it.
    pub(super) async fn adoptable_by_reference(
        &self,
        found: ReckonId,
        found_customer: Option<ReckonId>,
        customer: ReckonId,
    ) -> Result<bool, PipelineError> {
        if found_customer.is_some_and(|c| c != customer) {
            return Ok(false);
        }
        for kind in [EntityKind::Invoice, EntityKind::Appointment] {
            if self.state.cross_ref_by_reckon(kind, found).await?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether Cliniko says nothing is owed on this sale (see [`writes::settlement`]).
    pub(super) fn settled_in_cliniko(
        &self,
        inv: &Invoice,
        draft: &InvoiceDraft,
    ) -> Result<bool, PipelineError> {
        Ok(writes::settlement(inv, draft.paid, &self.mapping)? == Settlement::Settled)
    }

    /// Allocates what is left of a credit note to an invoice, up to `at_most` (the
    /// invoice's balance); nothing when it is allocated to that invoice already. Returns
    /// the amount allocated now.
    pub(super) async fn allocate(
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
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    /// Patient 3 and service 30 in Cliniko, neither synced yet.
    fn clinic() -> TestSyncer {
        let s = syncer();
        s.source
            .put(Record::Patient(patient(3, "Ada", "Lovelace", None)));
        s.source
            .put(Record::BillableItem(service(30, "Consult", money(9000))));
        s
    }

    #[tokio::test]
    async fn an_invoice_brings_its_customer_and_items_and_reckon_agrees_on_its_totals() {
        let s = clinic();
        let inv = invoice(40, 1001, 3, &[(30, money(9000), 1), (30, money(4550), 2)]);
        let applied = s.apply(&Record::Invoice(inv.clone())).await.expect("apply");
        assert_eq!(applied.outcome, Outcome::Created, "{}", applied.detail);
        assert_eq!(s.sink.counts(), (1, 1, 1, 0), "customer, item, invoice");
        let rid = applied.reckon_id.expect("id");
        let seen = s.sink.invoice(rid).await.expect("read").expect("there");
        assert_eq!(seen.reference.as_deref(), Some("1001"));
        assert_eq!(seen.total_amount, money(19910));
        assert_eq!(seen.total_tax_amount, money(1810));
        assert_eq!(seen.status, ReckonInvoiceStatus::Approved);
        let draft = s.sink.invoice_draft(rid).expect("draft");
        assert_eq!(
            draft.invoice_date,
            NaiveDate::from_ymd_opt(2024, 3, 2).expect("date")
        );
        let customer = s
            .state
            .cross_ref(EntityKind::Patient, ClinikoId(3))
            .await
            .expect("state")
            .expect("patient synced first");
        assert_eq!(draft.customer, customer.reckon_id);

        let writes = s.sink.writes();
        let again = s.apply(&Record::Invoice(inv)).await.expect("again");
        assert_eq!(again.outcome, Outcome::Unchanged);
        assert_eq!(s.sink.writes(), writes);
    }

    #[tokio::test]
    async fn a_paid_invoice_gets_one_receipt_however_often_it_is_applied() {
        let s = clinic();
        let mut inv = invoice(40, 1001, 3, &[(30, money(9000), 1)]);
        let rid = s
            .apply(&Record::Invoice(inv.clone()))
            .await
            .expect("open")
            .reckon_id
            .expect("id");
        inv.status = InvoiceStatus::Paid;
        inv.closed_at = Some(day(3));
        inv.updated_at = day(3);
        let paid = s.apply(&Record::Invoice(inv.clone())).await.expect("paid");
        assert_eq!(paid.outcome, Outcome::Updated, "{}", paid.detail);
        let receipts = s.sink.receipts();
        assert_eq!(receipts.len(), 1);
        assert_eq!(receipts[0].amount, money(9900));
        let seen = s.sink.invoice(rid).await.expect("read").expect("there");
        assert_eq!(
            (seen.status, seen.balance),
            (ReckonInvoiceStatus::Paid, Decimal::ZERO)
        );

        inv.notes = Some("seen again".into());
        inv.updated_at = day(4);
        let again = s.apply(&Record::Invoice(inv)).await;
        assert_eq!(s.sink.receipts().len(), 1, "never paid twice: {again:?}");
    }

    #[tokio::test]
    async fn a_create_whose_answer_was_lost_is_found_on_retry_not_made_twice() {
        let s = clinic();
        let inv = Record::Invoice(invoice(40, 1001, 3, &[(30, money(9000), 1)]));
        // The customer and item exist; the invoice create is what loses its answer.
        s.apply(&Record::Patient(patient(3, "Ada", "Lovelace", None)))
            .await
            .expect("patient");
        s.apply(&Record::BillableItem(service(30, "Consult", money(9000))))
            .await
            .expect("service");
        s.sink.lose_next_answer();
        let lost = s.apply(&inv).await.expect_err("answer lost");
        assert!(lost.is_retryable(), "{lost}");
        assert_eq!(s.sink.counts().2, 1, "Reckon made it");

        let retried = s.apply(&inv).await.expect("retry");
        assert_eq!(retried.outcome, Outcome::Created);
        assert!(
            retried.detail.contains("interrupted create"),
            "{}",
            retried.detail
        );
        assert_eq!(s.sink.counts().2, 1, "still one invoice");
        assert!(
            s.state
                .intent(EntityKind::Invoice, ClinikoId(40))
                .await
                .expect("state")
                .is_none(),
            "the intent is cleared once linked"
        );
    }

    #[tokio::test]
    async fn an_invoice_for_a_patient_cliniko_does_not_have_is_parked_and_writes_nothing() {
        let s = clinic();
        let inv = invoice(40, 1001, 99, &[(30, money(9000), 1)]);
        let err = s
            .apply(&Record::Invoice(inv))
            .await
            .expect_err("no patient");
        assert!(
            matches!(err, PipelineError::MissingDependency(_)),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("99"), "{err}");
        assert_eq!(s.sink.counts().2, 0);
    }

    #[tokio::test]
    async fn an_invoice_whose_header_disagrees_with_its_lines_is_parked_naming_the_field() {
        let s = clinic();
        let mut inv = invoice(40, 1001, 3, &[(30, money(9000), 1)]);
        // Cliniko's header says one cent more GST than its lines add up to.
        inv.tax_amount += money(1);
        inv.total_amount += money(1);
        let err = s.apply(&Record::Invoice(inv)).await.expect_err("mismatch");
        assert!(matches!(err, PipelineError::Mapping(_)), "{err:?}");
        assert!(!err.is_retryable(), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("40") && message.contains("total_amount"),
            "{message}"
        );
        assert_eq!(s.sink.counts().2, 0, "nothing written for it");
    }

    #[tokio::test]
    async fn above_the_threshold_an_invoice_waits_as_draft_and_a_bookkeepers_approval_stands() {
        let mut s = clinic();
        s.mapping.invoicing.approval.draft_above = Some(money(15000));
        let small = invoice(40, 1001, 3, &[(30, money(9000), 1)]);
        let mut large = invoice(41, 1002, 3, &[(30, money(9000), 2)]);
        let small_id = s
            .apply(&Record::Invoice(small))
            .await
            .expect("small")
            .reckon_id
            .expect("id");
        let large_id = s
            .apply(&Record::Invoice(large.clone()))
            .await
            .expect("large")
            .reckon_id
            .expect("id");
        let status = |id| s.sink.invoice_draft(id).map(|d| d.status);
        assert_eq!(
            status(small_id),
            Some(ReckonInvoiceStatus::Approved),
            "99.00"
        );
        assert_eq!(status(large_id), Some(ReckonInvoiceStatus::Draft), "198.00");

        assert!(s.sink.approve_by_hand(large_id));
        large.notes = Some("edited in Cliniko".into());
        large.updated_at = day(5);
        let edited = s.apply(&Record::Invoice(large)).await.expect("edit");
        assert_eq!(edited.outcome, Outcome::Updated);
        assert_eq!(
            status(large_id),
            Some(ReckonInvoiceStatus::Approved),
            "the sync never takes an approval back"
        );
    }
}
