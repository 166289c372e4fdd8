//! Completed appointments → Reckon invoices (`[invoicing] source`), see
//! [`crate::mapping::appointment`]: invoiced once as `APPT-<id>`, withdrawn when the
//! appointment is no longer complete, and, with `both`, replaced by the Cliniko invoice for
//! it when one arrives (the Reckon invoice is updated to it, never doubled).

use super::*;
use crate::mapping::appointment::{
    self as rules, AppointmentRules, InvoicingSource, Withdraw, appointment_reference,
    reference_generation, withdrawal_reference,
};

/// The link content of an appointment whose invoice was withdrawn.
pub(super) const WITHDRAWN: &str = "withdrawn";
/// The link content of an appointment a Cliniko invoice bills (its Reckon invoice is now
/// that invoice's).
pub(super) const SUPERSEDED: &str = "billed by a Cliniko invoice";

/// An appointment priced as an invoice, and its Reckon draft.
struct Priced {
    invoice: Invoice,
    draft: InvoiceDraft,
    customer: ReckonId,
    tz: chrono_tz::Tz,
}

impl<S, R, St> Syncer<S, R, St>
where
    S: ClinikoSource,
    R: ReckonSink,
    St: StateStore,
{
    fn appointment_rules(&self) -> AppointmentRules {
        self.mapping.invoicing.appointments
    }

    async fn type_lines(&self) -> Result<&[AppointmentTypeLine], PipelineError> {
        let lines = self
            .type_lines
            .get_or_try_init(|| async { self.source.appointment_type_lines().await })
            .await?;
        Ok(lines)
    }

    pub(super) async fn apply_appointment(
        &self,
        a: &Appointment,
    ) -> Result<Applied, PipelineError> {
        let kind = EntityKind::Appointment;
        let version = a.updated_at;
        let (xref, stale) = self.stale(kind, a.id, version).await?;
        if stale {
            return Ok(Applied::new(
                Outcome::Skipped,
                xref.map(|x| x.reckon_id),
                "a newer version is already in Reckon",
            ));
        }
        if let Some(x) = &xref
            && x.content_hash == SUPERSEDED
        {
            self.keep_link(a, x).await?;
            return Ok(Applied::new(
                Outcome::Skipped,
                Some(x.reckon_id),
                "billed by its Cliniko invoice, which the Reckon invoice now follows",
            ));
        }
        let rules = self.appointment_rules();
        if let Err(why) = rules::completion(a, &rules, Utc::now()) {
            return match xref {
                Some(x) if x.content_hash != WITHDRAWN => self.withdraw(a, x, why).await,
                Some(x) => {
                    self.keep_link(a, &x).await?;
                    Ok(Applied::new(
                        Outcome::Skipped,
                        Some(x.reckon_id),
                        format!("{why}; its invoice is withdrawn already"),
                    ))
                }
                None if why == "it has not ended yet" => {
                    // Waits as a passing failure, tried again until it has ended.
                    let at = rules::completes_at(a, &rules).unwrap_or(a.ends_at);
                    Err(PipelineError::InProgress(format!(
                        "appointment {}: invoiced once it has ended ({} UTC)",
                        a.id,
                        at.format("%Y-%m-%d %H:%M")
                    )))
                }
                None => Ok(Applied::new(
                    Outcome::Skipped,
                    None,
                    format!("not invoiced: {why}"),
                )),
            };
        }

        // Whoever bills this appointment holds its claim: this worker while it decides and
        // creates, or the worker applying a Cliniko invoice for it (`bill_appointment`).
        let (generation, current) = match &xref {
            Some(x) if x.content_hash == WITHDRAWN => (
                x.reckon_name
                    .as_deref()
                    .map(reference_generation)
                    .unwrap_or(1)
                    .saturating_add(1),
                None,
            ),
            Some(x) => (
                x.reckon_name
                    .as_deref()
                    .map(reference_generation)
                    .unwrap_or(1),
                Some(x.clone()),
            ),
            None => (1, None),
        };
        let reference = appointment_reference(a.id, generation);
        self.claim_create(Intent {
            kind,
            cliniko_id: a.id,
            marker: reference.clone(),
            started_at: Utc::now(),
            owner: self.owner.clone(),
        })
        .await?;
        if rules.source == InvoicingSource::Both {
            let billed = self.source.invoices_of_appointment(a.id).await?;
            if let Some(first) = billed.iter().find(|i| i.role() != InvoiceRole::Credit) {
                self.state.clear_intent(kind, a.id).await?;
                return Ok(Applied::new(
                    Outcome::Skipped,
                    current.map(|x| x.reckon_id),
                    format!(
                        "billed by Cliniko invoice {}, which the sync applies instead",
                        first.number
                    ),
                ));
            }
        }
        let priced = self.price(a, &reference).await?;
        self.write_invoice(
            kind,
            &priced.invoice,
            priced.draft,
            priced.customer,
            priced.tz,
            current,
            Some(reference),
        )
        .await
    }

    /// The appointment priced from its type's billable items, as a Reckon draft with
    /// `reference`, under the clinic's approval rule.
    async fn price(&self, a: &Appointment, reference: &str) -> Result<Priced, PipelineError> {
        let kind = EntityKind::Appointment;
        let Some(patient_id) = a.patient_id else {
            return Err(PipelineError::Mapping(mapping::MappingError::invalid(
                kind,
                a.id,
                "patient_id",
                "an appointment without a patient has no Reckon customer",
            )));
        };
        let lines = self.type_lines().await?;
        let mut items = Vec::new();
        for line in lines
            .iter()
            .filter(|l| Some(l.appointment_type_id) == a.appointment_type_id)
        {
            if let Some(Record::BillableItem(b)) = self
                .source
                .record(EntityKind::BillableItem, line.billable_item_id)
                .await?
            {
                items.push(b);
            }
        }
        let businesses = self.businesses().await?;
        let business = a
            .business_id
            .and_then(|b| businesses.iter().find(|x| x.id == b));
        let tz = mapping::business_time_zone(business, &self.mapping);
        let taxes = self.taxes().await?;
        let invoice = rules::appointment_invoice(a, lines, &items, taxes, tz)?;
        // Mapped once before anything is written, so a tax with no Reckon code parks the
        // appointment (naming it) rather than its customer or items being synced first.
        let unlinked = vec![writes::line_target(None, &self.mapping); invoice.items.len()];
        let nobody = ReckonId(uuid::Uuid::nil());
        mapping::invoice_to_draft(&invoice, nobody, &unlinked, tz, &self.mapping)
            .map_err(|e| e.of(kind, a.id))?;
        let mut targets = Vec::with_capacity(invoice.items.len());
        for item in &invoice.items {
            let linked = match writes::line_source(item) {
                Some((kind, id)) => Some(self.dependency(kind, id).await?),
                None => None,
            };
            targets.push(writes::line_target(linked, &self.mapping));
        }
        let customer = self.dependency(EntityKind::Patient, patient_id).await?;
        let mut draft = mapping::invoice_to_draft(&invoice, customer, &targets, tz, &self.mapping)
            .map_err(|e| e.of(kind, a.id))?;
        draft.reference = reference.to_string();
        draft.notes = Some(format!(
            "Appointment on {} (Cliniko appointment {})",
            a.starts_at.with_timezone(&tz).format("%-d %b %Y %H:%M"),
            a.id
        ));
        draft.status = self
            .mapping
            .invoicing
            .status(&invoice, business, draft.status);
        Ok(Priced {
            invoice,
            draft,
            customer,
            tz,
        })
    }

    /// The appointment is no longer complete: its unpaid invoice is credited in full or put
    /// back to Draft (`invoicing.withdraw`); a paid one is left for a person.
    async fn withdraw(
        &self,
        a: &Appointment,
        x: CrossRef,
        why: &str,
    ) -> Result<Applied, PipelineError> {
        let kind = EntityKind::Appointment;
        let rid = x.reckon_id;
        let reference = x
            .reckon_name
            .clone()
            .unwrap_or_else(|| appointment_reference(a.id, 1));
        let Some(current) = self.sink.invoice(rid).await? else {
            self.record_link(
                kind,
                a.id,
                rid,
                a.updated_at,
                WITHDRAWN.into(),
                Some(reference),
                x.adopted,
            )
            .await?;
            return Ok(Applied::new(
                Outcome::Skipped,
                Some(rid),
                format!("{why}; its Reckon invoice {rid} is gone already"),
            ));
        };
        if current.status == ReckonInvoiceStatus::Paid || current.balance < current.total_amount {
            return Err(PipelineError::Conflict(format!(
                "appointment {}: {why}, but its Reckon invoice {reference} is paid ({} of {} still owing): refund or credit it by hand",
                a.id, current.balance, current.total_amount
            )));
        }
        let mut priced = self.price(a, &reference).await?;
        let detail = if current.status == ReckonInvoiceStatus::Draft
            || self.appointment_rules().withdraw == Withdraw::Draft
        {
            priced.draft.status = ReckonInvoiceStatus::Draft;
            priced.draft.notes = Some(format!(
                "Withdrawn: {why}. Void or delete this draft in Reckon."
            ));
            self.sink.update_invoice(rid, &priced.draft).await?;
            format!("{why}: invoice {reference} put back to Draft")
        } else {
            let date = Utc::now().with_timezone(&priced.tz).date_naive();
            let credit = withdrawal_reference(&reference);
            // Checked against Reckon's own amounts: the credit is for what it invoiced.
            priced.draft.expected_total = current.total_amount;
            priced.draft.expected_tax = current.total_tax_amount;
            let used = self
                .credit_invoice(
                    &priced.invoice,
                    &priced.draft,
                    rid,
                    current.balance,
                    date,
                    &credit,
                    Some(why),
                )
                .await?;
            format!("{why}: invoice {reference} credited in full ({used}, {credit})")
        };
        self.record_link(
            kind,
            a.id,
            rid,
            a.updated_at,
            WITHDRAWN.into(),
            Some(reference),
            x.adopted,
        )
        .await?;
        Ok(Applied::new(Outcome::Updated, Some(rid), detail))
    }

    /// Moves the link to this version, changing nothing else.
    async fn keep_link(&self, a: &Appointment, x: &CrossRef) -> Result<(), PipelineError> {
        self.record_link(
            EntityKind::Appointment,
            a.id,
            x.reckon_id,
            a.updated_at,
            x.content_hash.clone(),
            x.reckon_name.clone(),
            x.adopted,
        )
        .await
    }

    /// With `both`: a Cliniko invoice for `appointment` bills it. When the appointment was
    /// invoiced already, its Reckon invoice becomes this invoice's (updated to Cliniko's
    /// lines and number, unless paid); else the invoice is written as any other. Holds the
    /// appointment's claim meanwhile, so its own worker cannot invoice it at the same time.
    pub(super) async fn bill_appointment(
        &self,
        inv: &Invoice,
        appointment: ClinikoId,
        draft: InvoiceDraft,
        customer: ReckonId,
        tz: chrono_tz::Tz,
    ) -> Result<Applied, PipelineError> {
        let akind = EntityKind::Appointment;
        self.claim_create(Intent {
            kind: akind,
            cliniko_id: appointment,
            marker: format!("billed by invoice {}", inv.number),
            started_at: Utc::now(),
            owner: self.owner.clone(),
        })
        .await?;
        let billed = self.state.cross_ref(akind, appointment).await?;
        let applied = match billed {
            Some(ax) if ax.content_hash != WITHDRAWN && ax.content_hash != SUPERSEDED => {
                let takeover = CrossRef {
                    // Never equal to a draft's hash: the invoice is rewritten as Cliniko's.
                    content_hash: String::new(),
                    ..ax.clone()
                };
                let mut applied = self
                    .write_invoice(
                        EntityKind::Invoice,
                        inv,
                        draft,
                        customer,
                        tz,
                        Some(takeover),
                        None,
                    )
                    .await?;
                self.record_link(
                    akind,
                    appointment,
                    ax.reckon_id,
                    ax.version,
                    SUPERSEDED.into(),
                    ax.reckon_name.clone(),
                    ax.adopted,
                )
                .await?;
                applied.detail = format!(
                    "{}; it bills appointment {appointment}, so the Reckon invoice {} now follows it",
                    applied.detail,
                    ax.reckon_name.as_deref().unwrap_or("of the appointment")
                );
                applied
            }
            _ => {
                self.write_invoice(EntityKind::Invoice, inv, draft, customer, tz, None, None)
                    .await?
            }
        };
        self.state.clear_intent(akind, appointment).await?;
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::mapping::appointment::CompletedWhen;

    /// Patient 3, a 90.00 + GST consult (service 30) charged once per appointment of
    /// type 70, and the clinic invoicing appointments by `source`.
    fn clinic(source: InvoicingSource) -> TestSyncer {
        let mut s = syncer();
        s.mapping.invoicing.appointments.source = source;
        s.source
            .put(Record::Patient(patient(3, "Ada", "Lovelace", None)));
        s.source
            .put(Record::BillableItem(service(30, "Consult", money(9000))));
        s.source.put_appointment_type_line(AppointmentTypeLine {
            id: ClinikoId(1),
            appointment_type_id: ClinikoId(70),
            billable_item_id: ClinikoId(30),
            quantity: Decimal::ONE,
            discount: Discount::None,
        });
        s
    }

    fn attended(id: u64) -> Appointment {
        Appointment {
            id: ClinikoId(id),
            patient_id: Some(ClinikoId(3)),
            practitioner_id: None,
            business_id: None,
            appointment_type_id: Some(ClinikoId(70)),
            starts_at: day(2),
            ends_at: day(2) + chrono::TimeDelta::hours(1),
            arrived: true,
            did_not_arrive: false,
            cancelled_at: None,
            archived_at: None,
            deleted_at: None,
            created_at: day(1),
            updated_at: day(2),
        }
    }

    #[tokio::test]
    async fn an_attended_appointment_is_invoiced_once_priced_from_its_type() {
        let s = clinic(InvoicingSource::CompletedAppointments);
        let mut a = attended(500);
        a.arrived = false;
        let booked = s
            .apply(&Record::Appointment(a.clone()))
            .await
            .expect("booked");
        assert_eq!(booked.outcome, Outcome::Skipped, "{}", booked.detail);
        assert_eq!(s.sink.counts().2, 0, "not arrived: nothing billed");

        a.arrived = true;
        a.updated_at = day(3);
        let applied = s
            .apply(&Record::Appointment(a.clone()))
            .await
            .expect("apply");
        assert_eq!(applied.outcome, Outcome::Created, "{}", applied.detail);
        let rid = applied.reckon_id.expect("id");
        let seen = s.sink.invoice(rid).await.expect("read").expect("there");
        assert_eq!(seen.reference.as_deref(), Some("APPT-500"));
        assert_eq!(seen.total_amount, money(9900));
        assert_eq!(seen.total_tax_amount, money(900));
        let draft = s.sink.invoice_draft(rid).expect("draft");
        assert!(
            draft.notes.as_deref().is_some_and(|n| n.contains("500")),
            "{:?}",
            draft.notes
        );

        let writes = s.sink.writes();
        a.updated_at = day(4);
        let again = s.apply(&Record::Appointment(a)).await.expect("again");
        assert_eq!(again.outcome, Outcome::Unchanged, "{}", again.detail);
        assert_eq!(s.sink.writes(), writes, "nothing written twice");
        assert_eq!(s.sink.counts().2, 1);
    }

    #[tokio::test]
    async fn a_cancelled_appointment_has_its_invoice_credited_and_a_new_attendance_billed_anew() {
        let s = clinic(InvoicingSource::CompletedAppointments);
        let mut a = attended(500);
        let rid = s
            .apply(&Record::Appointment(a.clone()))
            .await
            .expect("billed")
            .reckon_id
            .expect("id");
        a.cancelled_at = Some(day(3));
        a.updated_at = day(3);
        let withdrawn = s
            .apply(&Record::Appointment(a.clone()))
            .await
            .expect("withdrawn");
        assert_eq!(withdrawn.outcome, Outcome::Updated, "{}", withdrawn.detail);
        let seen = s.sink.invoice(rid).await.expect("read").expect("there");
        assert_eq!(seen.balance, Decimal::ZERO, "credited in full");
        let credits = s
            .sink
            .find_credit_notes_by_reference("Withdrawn APPT-500")
            .await
            .expect("read");
        assert_eq!(credits.len(), 1);

        // Seen again: nothing more is credited.
        a.updated_at = day(4);
        let again = s
            .apply(&Record::Appointment(a.clone()))
            .await
            .expect("again");
        assert_eq!(again.outcome, Outcome::Skipped, "{}", again.detail);

        // Un-cancelled and attended after all: billed again under a new reference.
        a.cancelled_at = None;
        a.updated_at = day(5);
        let rebilled = s.apply(&Record::Appointment(a)).await.expect("rebilled");
        assert_eq!(rebilled.outcome, Outcome::Created, "{}", rebilled.detail);
        let new = s
            .sink
            .invoice(rebilled.reckon_id.expect("id"))
            .await
            .expect("read")
            .expect("there");
        assert_eq!(new.reference.as_deref(), Some("APPT-500-2"));
    }

    #[tokio::test]
    async fn with_withdraw_draft_an_unarrived_appointment_goes_back_to_draft() {
        let mut s = clinic(InvoicingSource::CompletedAppointments);
        s.mapping.invoicing.appointments.withdraw = Withdraw::Draft;
        let mut a = attended(500);
        let rid = s
            .apply(&Record::Appointment(a.clone()))
            .await
            .expect("billed")
            .reckon_id
            .expect("id");
        a.arrived = false;
        a.updated_at = day(3);
        s.apply(&Record::Appointment(a)).await.expect("withdrawn");
        let draft = s.sink.invoice_draft(rid).expect("draft");
        assert_eq!(draft.status, ReckonInvoiceStatus::Draft);
        assert!(
            draft
                .notes
                .as_deref()
                .is_some_and(|n| n.starts_with("Withdrawn")),
            "{:?}",
            draft.notes
        );
        assert_eq!(s.sink.counts().3, 0, "no credit note");
    }

    #[tokio::test]
    async fn with_both_the_cliniko_invoice_takes_over_the_appointments_invoice() {
        let s = clinic(InvoicingSource::Both);
        let a = attended(500);
        let rid = s
            .apply(&Record::Appointment(a.clone()))
            .await
            .expect("billed")
            .reckon_id
            .expect("id");
        let mut inv = invoice(40, 1001, 3, &[(30, money(9000), 1)]);
        inv.appointment_id = Some(a.id);
        s.source.put(Record::Invoice(inv.clone()));
        let applied = s.apply(&Record::Invoice(inv)).await.expect("invoice");
        assert_eq!(applied.outcome, Outcome::Updated, "{}", applied.detail);
        assert_eq!(applied.reckon_id, Some(rid), "the same Reckon invoice");
        assert_eq!(s.sink.counts().2, 1, "never two invoices");
        let seen = s.sink.invoice(rid).await.expect("read").expect("there");
        assert_eq!(seen.reference.as_deref(), Some("1001"), "Cliniko's number");

        // The appointment seen again is not billed again.
        let mut later = a;
        later.updated_at = day(6);
        let again = s.apply(&Record::Appointment(later)).await.expect("again");
        assert_eq!(again.outcome, Outcome::Skipped, "{}", again.detail);
        assert_eq!(s.sink.counts().2, 1);
    }

    #[tokio::test]
    async fn with_both_an_appointment_cliniko_invoiced_first_is_not_billed() {
        let s = clinic(InvoicingSource::Both);
        let mut inv = invoice(40, 1001, 3, &[(30, money(9000), 1)]);
        inv.appointment_id = Some(ClinikoId(500));
        s.source.put(Record::Invoice(inv.clone()));
        s.apply(&Record::Invoice(inv)).await.expect("invoice");
        let skipped = s
            .apply(&Record::Appointment(attended(500)))
            .await
            .expect("appointment");
        assert_eq!(skipped.outcome, Outcome::Skipped, "{}", skipped.detail);
        assert!(skipped.detail.contains("1001"), "{}", skipped.detail);
        assert_eq!(s.sink.counts().2, 1);
    }

    #[tokio::test]
    async fn with_ended_an_arrived_appointment_waits_for_its_end() {
        let mut s = clinic(InvoicingSource::CompletedAppointments);
        s.mapping.invoicing.appointments.completed_when = CompletedWhen::Ended;
        let mut a = attended(500);
        a.ends_at = Utc::now() + chrono::TimeDelta::hours(1);
        let err = s.apply(&Record::Appointment(a)).await.expect_err("not yet");
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("once it has ended"), "{err}");
        assert_eq!(s.sink.counts().2, 0);
    }

    #[tokio::test]
    async fn an_appointment_of_an_unmapped_tax_is_parked_naming_it() {
        let mut s = clinic(InvoicingSource::CompletedAppointments);
        s.mapping.tax_codes.clear();
        let err = s
            .apply(&Record::Appointment(attended(500)))
            .await
            .expect_err("unmapped");
        assert!(!err.is_retryable());
        let message = err.to_string();
        assert!(
            message.contains("appointment 500") && message.contains("unknown tax"),
            "{message}"
        );
        assert_eq!(s.sink.counts().2, 0);
    }
}
