//! What the sync writes for a Cliniko invoice, in the terms both `apply` (which writes it)
//! and the reconciliation (which checks Reckon against it) use: what each line sells, the
//! business's time zone, and whether Reckon should show the invoice as settled. One place,
//! so the two can never disagree.

use super::{ClosedRemainder, MappingConfig, MappingError, business_time_zone};
use crate::domain::{Business, ClinikoId, EntityKind, Invoice, InvoiceItem, LineTarget, ReckonId};
use chrono_tz::Tz;
use rust_decimal::Decimal;

/// The Cliniko record a line sells (a product, else a billable item), whose Reckon item the
/// line points at; `None` for a line that names neither (it goes to an income account).
pub fn line_source(item: &InvoiceItem) -> Option<(EntityKind, ClinikoId)> {
    match (item.product_id, item.billable_item_id) {
        (Some(p), _) => Some((EntityKind::Product, p)),
        (None, Some(b)) => Some((EntityKind::BillableItem, b)),
        (None, None) => None,
    }
}

/// What a line sells in Reckon: its source's Reckon item, or the service income account.
pub fn line_target(linked: Option<ReckonId>, cfg: &MappingConfig) -> LineTarget {
    match linked {
        Some(id) => LineTarget::Item(id),
        None => LineTarget::Account(cfg.service_income_account.clone()),
    }
}

/// The time zone of the invoice's business (its dates are the bookkeeper's local dates).
pub fn invoice_time_zone(inv: &Invoice, businesses: &[Business], cfg: &MappingConfig) -> Tz {
    let business = inv
        .business_id
        .and_then(|b| businesses.iter().find(|x| x.id == b));
    business_time_zone(business, cfg)
}

/// How a sale should stand in Reckon once the sync has written it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Nothing owing: paid, Closed with its remainder settled, or wholly credited.
    Settled,
    /// Still owing: `exact` when Cliniko says how much (a Closed invoice left owing by
    /// `closed_remainder = leave_owing`); `None` for an open invoice (part payments are not
    /// visible in Cliniko's API).
    Owing { exact: Option<Decimal> },
}

/// The settlement of a sale whose draft is `paid` or not, under the configured remainder
/// policy.
pub fn settlement(
    inv: &Invoice,
    paid: bool,
    cfg: &MappingConfig,
) -> Result<Settlement, MappingError> {
    if paid {
        return Ok(Settlement::Settled);
    }
    if let Some(rest) = super::closed_remainder(inv)? {
        return Ok(
            if rest.is_zero() || cfg.closed_remainder != ClosedRemainder::LeaveOwing {
                Settlement::Settled
            } else {
                Settlement::Owing { exact: Some(rest) }
            },
        );
    }
    let credited = super::credited_amount(inv)?;
    Ok(
        if inv.total_amount.checked_sub(credited).unwrap_or_default() <= Decimal::ZERO {
            Settlement::Settled
        } else {
            Settlement::Owing { exact: None }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InvoiceStatus, Reversal};
    use crate::mapping::invoice::testkit::invoice_of;
    use rust_decimal_macros::dec;

    fn sale(status: InvoiceStatus, total: Decimal) -> Invoice {
        let mut inv = invoice_of(Vec::new(), true);
        inv.status = status;
        inv.total_amount = total;
        inv.closed_at = Some(inv.created_at);
        inv
    }

    fn used(inv: &Invoice, amount: Decimal) -> Reversal {
        Reversal {
            id: ClinikoId(9),
            number: 9,
            status: InvoiceStatus::Closed,
            total_amount: -amount,
            created_at: inv.created_at,
        }
    }

    #[test]
    fn settlement_follows_cliniko_and_the_remainder_policy() {
        let cfg = MappingConfig::default();
        let open = sale(InvoiceStatus::Open, dec!(100));
        assert_eq!(
            settlement(&open, false, &cfg).unwrap(),
            Settlement::Owing { exact: None }
        );
        assert_eq!(settlement(&open, true, &cfg).unwrap(), Settlement::Settled);
        let mut credited = open.clone();
        credited.reversals = vec![used(&open, dec!(100))];
        assert_eq!(
            settlement(&credited, false, &cfg).unwrap(),
            Settlement::Settled
        );
        let mut closed = sale(InvoiceStatus::Closed, dec!(100));
        assert_eq!(
            settlement(&closed, false, &cfg).unwrap(),
            Settlement::Settled
        );
        let leave = MappingConfig {
            closed_remainder: ClosedRemainder::LeaveOwing,
            ..MappingConfig::default()
        };
        closed.reversals = vec![used(&closed, dec!(30))];
        assert_eq!(
            settlement(&closed, false, &leave).unwrap(),
            Settlement::Owing {
                exact: Some(dec!(70))
            }
        );
        closed.reversals = vec![used(&closed, dec!(100))];
        assert_eq!(
            settlement(&closed, false, &leave).unwrap(),
            Settlement::Settled,
            "nothing left to leave owing"
        );
        closed.reversals = vec![used(&closed, Decimal::MAX), used(&closed, Decimal::MAX)];
        assert!(
            settlement(&closed, false, &cfg).is_err(),
            "overflow named, not guessed"
        );
    }
}
