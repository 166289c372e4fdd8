//! Completed appointments → Reckon invoices (`[invoicing] source` in a clinic's
//! configuration), for clinics that do not raise invoices in Cliniko, or not for every
//! appointment.
//!
//! ```toml
//! [invoicing]
//! source = "completed_appointments"  # or "both"; default "cliniko_invoices"
//! completed_when = "arrived"         # or "ended": arrived, and its end time has passed
//! grace_minutes = 15                 # with "ended": minutes after the end before invoicing
//! withdraw = "credit_note"           # or "draft": what un-completing an invoiced one does
//! ```
//!
//! An appointment is complete when the patient arrived and it is not cancelled, marked
//! did-not-arrive, archived or deleted (and, with `completed_when = "ended"`, it ended at
//! least `grace_minutes` ago). It is invoiced as its appointment type's billable items
//! (quantity, discount, each item's price and tax), tax-exclusive as Cliniko prices items,
//! dated the day it started in the business's time zone, with reference `APPT-<id>` so it
//! is found again. With `both`, a Cliniko invoice for the appointment takes its place.

use super::MappingError;
use crate::domain::{
    Appointment, AppointmentTypeLine, BillableItem, ClinikoId, Discount, EntityKind, Invoice,
    InvoiceItem, InvoiceStatus, Tax, TaxCalculation,
};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;

/// Where the invoices the sync writes come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoicingSource {
    /// Cliniko's invoices only; appointments are not read.
    #[default]
    ClinikoInvoices,
    /// Completed appointments only; Cliniko's invoices are not read.
    CompletedAppointments,
    /// Both: a completed appointment is invoiced until Cliniko invoices it itself.
    Both,
}

impl InvoicingSource {
    pub fn reads_appointments(self) -> bool {
        self != InvoicingSource::ClinikoInvoices
    }

    pub fn reads_invoices(self) -> bool {
        self != InvoicingSource::CompletedAppointments
    }

    /// The Cliniko entity types a sync with this source reads, in dependency order.
    pub fn kinds(self) -> Vec<EntityKind> {
        EntityKind::ALL
            .into_iter()
            .filter(|k| match k {
                EntityKind::Invoice => self.reads_invoices(),
                EntityKind::Appointment => self.reads_appointments(),
                _ => true,
            })
            .collect()
    }
}

/// When an arrived appointment counts as complete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletedWhen {
    /// As soon as the patient is marked arrived.
    #[default]
    Arrived,
    /// Arrived, and `grace_minutes` after its end time.
    Ended,
}

/// What happens to the invoice of an appointment that is no longer complete (cancelled,
/// un-arrived, did not arrive, archived or deleted) and not paid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Withdraw {
    /// An approved invoice is reversed by a credit note for its whole amount; a Draft one
    /// is left as a Draft marked withdrawn.
    #[default]
    CreditNote,
    /// The invoice goes back to Draft, marked withdrawn, for a bookkeeper to void.
    Draft,
}

/// The appointment keys of `[invoicing]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppointmentRules {
    pub source: InvoicingSource,
    pub completed_when: CompletedWhen,
    pub grace_minutes: u32,
    pub withdraw: Withdraw,
}

/// Whether `appt` is complete at `now`, or why not (for the audit log).
pub fn completion(
    appt: &Appointment,
    rules: &AppointmentRules,
    now: DateTime<Utc>,
) -> Result<(), &'static str> {
    if appt.deleted_at.is_some() {
        return Err("deleted in Cliniko");
    }
    if appt.archived_at.is_some() {
        return Err("archived in Cliniko");
    }
    if appt.cancelled_at.is_some() {
        return Err("cancelled in Cliniko");
    }
    if appt.did_not_arrive {
        return Err("marked did-not-arrive in Cliniko");
    }
    if !appt.arrived {
        return Err("the patient is not marked arrived");
    }
    if rules.completed_when == CompletedWhen::Ended {
        let grace = TimeDelta::minutes(i64::from(rules.grace_minutes));
        let due = appt
            .ends_at
            .checked_add_signed(grace)
            .unwrap_or(appt.ends_at);
        if now < due {
            return Err("it has not ended yet");
        }
    }
    Ok(())
}

/// When an arrived appointment that has not ended yet becomes complete (`None` when it
/// never will by waiting, or already is).
pub fn completes_at(appt: &Appointment, rules: &AppointmentRules) -> Option<DateTime<Utc>> {
    if rules.completed_when != CompletedWhen::Ended {
        return None;
    }
    let grace = TimeDelta::minutes(i64::from(rules.grace_minutes));
    appt.ends_at.checked_add_signed(grace)
}

/// The Reckon reference of an appointment's invoice: `APPT-<id>`, then `APPT-<id>-2`, … for
/// each time it is invoiced again after a withdrawal.
pub fn appointment_reference(id: ClinikoId, generation: u32) -> String {
    if generation <= 1 {
        format!("APPT-{id}")
    } else {
        format!("APPT-{id}-{generation}")
    }
}

/// The generation of a reference made by [`appointment_reference`] (1 for `APPT-<id>`).
pub fn reference_generation(reference: &str) -> u32 {
    let mut parts = reference.trim().splitn(3, '-');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("APPT"), Some(_), Some(n)) => n.parse().unwrap_or(1),
        _ => 1,
    }
}

/// The reference of the credit note that withdraws invoice `reference`.
pub fn withdrawal_reference(reference: &str) -> String {
    format!("Withdrawn {}", reference.trim())
}

fn cents(v: Decimal) -> Decimal {
    v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The appointment as the invoice Cliniko would raise for it: one line per billable item
/// of its type, tax-exclusive (Cliniko's item prices exclude tax), each line's tax and
/// total to the cent, the header the sum of its lines. Its `id` is the appointment's and its
/// items' ids are the type lines'; `issue_date` is the local day it started.
pub fn appointment_invoice(
    appt: &Appointment,
    lines: &[AppointmentTypeLine],
    items: &[BillableItem],
    taxes: &[Tax],
    tz: Tz,
) -> Result<Invoice, MappingError> {
    let kind = EntityKind::Appointment;
    let id = appt.id;
    let Some(type_id) = appt.appointment_type_id else {
        return Err(MappingError::invalid(
            kind,
            id,
            "appointment_type",
            "the appointment has no appointment type, so nothing to charge",
        ));
    };
    let lines: Vec<&AppointmentTypeLine> = lines
        .iter()
        .filter(|l| l.appointment_type_id == type_id)
        .collect();
    if lines.is_empty() {
        return Err(MappingError::invalid(
            kind,
            id,
            "appointment_type",
            format!(
                "appointment type {type_id} has no billable items in Cliniko: add one to invoice its appointments"
            ),
        ));
    }
    let out_of_range = |field: String| {
        MappingError::invalid(kind, id, field, "the line adds up beyond any real amount")
    };
    let mut invoice_items = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let field = |f: &str| format!("appointment_type_billable_items[{i}].{f}");
        let Some(item) = items.iter().find(|b| b.id == line.billable_item_id) else {
            return Err(MappingError::invalid(
                kind,
                id,
                field("billable_item"),
                format!("billable item {} is not in Cliniko", line.billable_item_id),
            ));
        };
        let (tax_name, rate) = match item.tax_id {
            None => (None, Decimal::ZERO),
            Some(tax_id) => match taxes.iter().find(|t| t.id == tax_id) {
                Some(t) => (Some(t.name.clone()), t.rate),
                None => {
                    return Err(MappingError::UnknownTax {
                        kind,
                        id,
                        field: field("billable_item.tax"),
                        tax: format!(
                            "tax {tax_id} of billable item {} (Cliniko does not list it)",
                            item.id
                        ),
                    });
                }
            },
        };
        if line.quantity <= Decimal::ZERO {
            return Err(MappingError::invalid(
                kind,
                id,
                field("quantity"),
                format!("{} is not a quantity to charge", line.quantity),
            ));
        }
        let gross = item
            .price
            .checked_mul(line.quantity)
            .ok_or_else(|| out_of_range(field("quantity")))?;
        let off = match line.discount {
            Discount::None => Decimal::ZERO,
            Discount::Percent(p) => gross
                .checked_mul(p)
                .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
                .map(|v| v.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero))
                .ok_or_else(|| out_of_range(field("discount")))?,
            Discount::Amount(a) => a.min(gross),
        };
        let net = gross
            .checked_sub(off)
            .ok_or_else(|| out_of_range(field("discount")))?;
        let tax = net
            .checked_mul(rate)
            .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
            .map(cents)
            .ok_or_else(|| out_of_range(field("billable_item.tax")))?;
        let total = cents(net)
            .checked_add(tax)
            .ok_or_else(|| out_of_range(field("quantity")))?;
        invoice_items.push(InvoiceItem {
            id: line.id,
            invoice_id: id,
            name: item.name.clone(),
            code: item.item_code.clone(),
            unit_price: item.price,
            quantity: line.quantity,
            discount: line.discount,
            net_price: net,
            tax_name,
            tax_rate: rate,
            tax_amount: tax,
            total_including_tax: total,
            product_id: None,
            billable_item_id: Some(item.id),
            updated_at: appt.updated_at,
        });
    }
    let sum = |f: fn(&InvoiceItem) -> Decimal| {
        invoice_items
            .iter()
            .try_fold(Decimal::ZERO, |a, i| a.checked_add(f(i)))
            .ok_or_else(|| out_of_range("appointment_type_billable_items".into()))
    };
    let total_amount = sum(|i| i.total_including_tax)?;
    let tax_amount = sum(|i| i.tax_amount)?;
    let net_amount = total_amount
        .checked_sub(tax_amount)
        .ok_or_else(|| out_of_range("appointment_type_billable_items".into()))?;
    Ok(Invoice {
        id,
        number: 0,
        issue_date: Some(appt.starts_at.with_timezone(&tz).date_naive()),
        status: InvoiceStatus::Open,
        calculation: TaxCalculation::Exclusive,
        total_amount,
        net_amount,
        tax_amount,
        notes: None,
        patient_id: appt.patient_id,
        business_id: appt.business_id,
        appointment_id: Some(id),
        closed_at: None,
        archived_at: None,
        deleted_at: None,
        created_at: appt.created_at,
        updated_at: appt.updated_at,
        items: invoice_items,
        original_invoice_id: None,
        reversals: Vec::new(),
    })
}

impl MappingError {
    /// The same error, said of another record (an appointment's invoice's errors are the
    /// appointment's).
    pub fn of(self, kind: EntityKind, id: ClinikoId) -> MappingError {
        match self {
            MappingError::UnknownTax { field, tax, .. } => MappingError::UnknownTax {
                kind,
                id,
                field,
                tax,
            },
            MappingError::TotalsMismatch {
                field,
                stated,
                from_lines,
                ..
            } => MappingError::TotalsMismatch {
                kind,
                id,
                field,
                stated,
                from_lines,
            },
            MappingError::Invalid { field, message, .. } => MappingError::Invalid {
                kind,
                id,
                field,
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0)
            .single()
            .expect("time")
    }

    fn appointment() -> Appointment {
        Appointment {
            id: ClinikoId(500),
            patient_id: Some(ClinikoId(3)),
            practitioner_id: Some(ClinikoId(9)),
            business_id: Some(ClinikoId(1)),
            appointment_type_id: Some(ClinikoId(70)),
            // 13:30 UTC on 1 March is 00:30 on 2 March in Sydney (daylight time).
            starts_at: at(13) + TimeDelta::minutes(30),
            ends_at: at(14) + TimeDelta::minutes(30),
            arrived: true,
            did_not_arrive: false,
            cancelled_at: None,
            archived_at: None,
            deleted_at: None,
            created_at: at(1),
            updated_at: at(14),
        }
    }

    fn service(id: u64, price: Decimal, tax: Option<u64>) -> BillableItem {
        BillableItem {
            id: ClinikoId(id),
            name: format!("Service {id}"),
            item_code: None,
            item_type: "Service".into(),
            price,
            tax_id: tax.map(ClinikoId),
            archived_at: None,
            created_at: at(0),
            updated_at: at(0),
        }
    }

    fn line(id: u64, item: u64, quantity: i64, discount: Discount) -> AppointmentTypeLine {
        AppointmentTypeLine {
            id: ClinikoId(id),
            appointment_type_id: ClinikoId(70),
            billable_item_id: ClinikoId(item),
            quantity: Decimal::from(quantity),
            discount,
        }
    }

    fn gst() -> Vec<Tax> {
        vec![Tax {
            id: ClinikoId(1),
            name: "GST".into(),
            rate: Decimal::TEN,
        }]
    }

    #[test]
    fn complete_means_arrived_and_nothing_taken_back_and_with_ended_its_end_passed() {
        let rules = AppointmentRules::default();
        let a = appointment();
        assert_eq!(completion(&a, &rules, at(0)), Ok(()), "arrived is enough");
        for (change, why) in [
            (
                (|a: &mut Appointment| a.arrived = false) as fn(&mut Appointment),
                "not marked arrived",
            ),
            (|a| a.did_not_arrive = true, "did-not-arrive"),
            (|a| a.cancelled_at = Some(at(2)), "cancelled"),
            (|a| a.archived_at = Some(at(2)), "archived"),
            (|a| a.deleted_at = Some(at(2)), "deleted"),
        ] {
            let mut b = a.clone();
            change(&mut b);
            let reason = completion(&b, &rules, at(20)).expect_err("not complete");
            assert!(reason.contains(why), "{reason}");
        }
        let ended = AppointmentRules {
            completed_when: CompletedWhen::Ended,
            grace_minutes: 15,
            ..rules
        };
        let end = a.ends_at;
        assert!(completion(&a, &ended, end + TimeDelta::minutes(14)).is_err());
        assert_eq!(completion(&a, &ended, end + TimeDelta::minutes(15)), Ok(()));
        assert_eq!(completes_at(&a, &ended), Some(end + TimeDelta::minutes(15)));
        assert_eq!(completes_at(&a, &rules), None);
    }

    #[test]
    fn an_appointment_is_priced_from_its_types_items_to_the_cent_and_dated_locally() {
        let items = [
            service(30, Decimal::new(9000, 2), Some(1)),
            service(31, Decimal::new(3333, 2), None),
        ];
        let lines = [
            line(1, 30, 1, Discount::Percent(Decimal::new(15, 0))),
            line(2, 31, 3, Discount::None),
            // Another type's line is not this appointment's.
            AppointmentTypeLine {
                appointment_type_id: ClinikoId(71),
                ..line(3, 30, 9, Discount::None)
            },
        ];
        let inv = appointment_invoice(
            &appointment(),
            &lines,
            &items,
            &gst(),
            chrono_tz::Australia::Sydney,
        )
        .expect("priced");
        assert_eq!(inv.items.len(), 2);
        // 90 less 15% = 76.50 + 7.65 GST.
        assert_eq!(inv.items[0].total_including_tax, Decimal::new(8415, 2));
        assert_eq!(inv.items[0].tax_amount, Decimal::new(765, 2));
        assert_eq!(inv.items[0].tax_name.as_deref(), Some("GST"));
        // 3 × 33.33, GST-free.
        assert_eq!(inv.items[1].total_including_tax, Decimal::new(9999, 2));
        assert_eq!(inv.items[1].tax_amount, Decimal::ZERO);
        assert_eq!(inv.total_amount, Decimal::new(18414, 2));
        assert_eq!(inv.tax_amount, Decimal::new(765, 2));
        assert_eq!(inv.net_amount, Decimal::new(17649, 2));
        assert_eq!(inv.items[0].billable_item_id, Some(ClinikoId(30)));
        assert_eq!(
            inv.issue_date,
            chrono::NaiveDate::from_ymd_opt(2026, 3, 2),
            "the day it started in Sydney"
        );
        assert_eq!(inv.calculation, TaxCalculation::Exclusive);
    }

    #[test]
    fn what_cannot_be_priced_is_refused_naming_the_appointment_and_field() {
        let items = [service(30, Decimal::new(9000, 2), Some(7))];
        let lines = [line(1, 30, 1, Discount::None)];
        let tz = chrono_tz::Australia::Sydney;
        let unknown = appointment_invoice(&appointment(), &lines, &items, &gst(), tz)
            .expect_err("tax 7 is not Cliniko's");
        assert!(
            matches!(unknown, MappingError::UnknownTax { .. })
                && unknown.kind() == EntityKind::Appointment
                && unknown.id() == ClinikoId(500),
            "{unknown}"
        );
        let mut untyped = appointment();
        untyped.appointment_type_id = Some(ClinikoId(99));
        let none = appointment_invoice(&untyped, &lines, &items, &gst(), tz)
            .expect_err("type 99 has no items");
        assert_eq!(none.field(), "appointment_type");
        assert!(none.to_string().contains("appointment 500"), "{none}");
        let missing =
            appointment_invoice(&appointment(), &lines, &[], &gst(), tz).expect_err("item 30 gone");
        assert_eq!(
            missing.field(),
            "appointment_type_billable_items[0].billable_item"
        );
        let huge = [service(30, Decimal::MAX, None)];
        let many = [line(1, 30, 1000, Discount::None)];
        assert!(appointment_invoice(&appointment(), &many, &huge, &gst(), tz).is_err());
    }

    #[test]
    fn references_count_their_generations() {
        let id = ClinikoId(500);
        assert_eq!(appointment_reference(id, 1), "APPT-500");
        assert_eq!(appointment_reference(id, 2), "APPT-500-2");
        assert_eq!(reference_generation("APPT-500"), 1);
        assert_eq!(reference_generation("APPT-500-3"), 3);
        assert_eq!(reference_generation("1042"), 1);
        assert_eq!(withdrawal_reference("APPT-500"), "Withdrawn APPT-500");
    }
}
