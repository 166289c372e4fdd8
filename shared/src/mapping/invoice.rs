//! Cliniko invoice → Reckon invoice draft, with totals and GST equal to the cent.
//!
//! Reckon computes each line's amount as `round_half_away(price × quantity − discountAmount,
//! 2)`, takes each line's tax from the client's `taxAmount` when one is sent, totals the tax
//! as the sum of line taxes, and the invoice as the sum of line amounts (plus the tax when
//! `Exclusive`). So each line is sent with:
//!
//! - **amount target** `A`: Cliniko's `total_including_tax` on tax-inclusive invoices, and
//!   `total_including_tax − tax_amount` on tax-exclusive ones;
//! - **price and quantity** as a bookkeeper reads them: Cliniko's quantity, and its unit price
//!   in the invoice's tax status (× (1 + rate) on inclusive invoices) to the cent, or to 4 dp
//!   when cents cannot land on `A`;
//! - a **monetary discount** `price × quantity − A` rounded to the cent (Cliniko's percentage
//!   and money discounts both become money, as do the cents Cliniko's own rounding moved),
//!   only ever ≥ 0, and checked against Reckon's arithmetic before it is used;
//! - else the **fallback**: quantity 1 at price `A` with no discount, the description keeping
//!   `"{quantity} × {unit price}"` (e.g. a negative-price credit line);
//! - **`taxAmount`** = Cliniko's line tax on every line (0 on GST-free lines), so Reckon never
//!   computes tax itself and its rounding rule cannot matter.
//!
//! Then `Σ amount (+ Σ tax) = Σ total_including_tax = Cliniko's total`, and
//! `Σ taxAmount = Cliniko's tax`, for every rounding rule Reckon might use.

use super::text::{DESCRIPTION_MAX, clean, truncate};
use super::{MappingConfig, MappingError};
use crate::domain::{
    AmountTaxStatus, Business, Discount, EntityKind, Invoice, InvoiceDraft, InvoiceItem,
    InvoiceLineDraft, LineTarget, ReckonId, ReckonInvoiceStatus, TaxCalculation,
};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};

/// Reckon's line amount: `price × quantity − discount`, rounded half away from zero to the
/// cent (a copy of the arithmetic the simulator assumes; see `simulators::reckon::tax`).
pub fn reckon_line_amount(price: Decimal, quantity: Decimal, discount: Option<Decimal>) -> Decimal {
    cents(price * quantity - discount.unwrap_or_default())
}

fn cents(v: Decimal) -> Decimal {
    v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn is_cents(v: Decimal) -> bool {
    v.round_dp(2) == v
}

/// The business's own time zone: Cliniko's IANA zone when it names a known one, else the
/// configured default (Australia/Sydney unless configured).
pub fn business_time_zone(business: Option<&Business>, cfg: &MappingConfig) -> Tz {
    business
        .and_then(|b| b.time_zone.as_deref())
        .and_then(|z| z.trim().parse::<Tz>().ok())
        .unwrap_or(cfg.default_time_zone)
}

/// How one Cliniko line is written to Reckon.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedLine {
    pub price: Decimal,
    pub quantity: Decimal,
    pub discount_amount: Option<Decimal>,
    /// Quantity 1 at the line amount: no non-negative discount could land on the target.
    pub fallback: bool,
}

/// Price, quantity and monetary discount whose Reckon amount is exactly `target`.
/// `unit_price` is Cliniko's (ex tax); `rate` is the line's tax percentage, applied to the
/// shown price only when `inclusive`. `undiscounted` prefers a price that needs no discount.
pub fn fit_line(
    unit_price: Decimal,
    quantity: Decimal,
    rate: Decimal,
    inclusive: bool,
    undiscounted: bool,
    target: Decimal,
) -> FittedLine {
    let shown = if inclusive {
        unit_price * (Decimal::ONE + rate / Decimal::ONE_HUNDRED)
    } else {
        unit_price
    };
    let mut candidates: Vec<Decimal> = Vec::with_capacity(4);
    for p in [
        cents(shown),
        shown.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero),
        shown.round_dp_with_strategy(2, RoundingStrategy::AwayFromZero),
    ] {
        let p = p.normalize();
        if !candidates.contains(&p) {
            candidates.push(p);
        }
    }
    let try_price = |price: Decimal| -> Option<FittedLine> {
        let discount = cents(price * quantity - target);
        if discount.is_sign_negative() && !discount.is_zero() {
            return None;
        }
        let discount = (!discount.is_zero()).then_some(discount);
        (reckon_line_amount(price, quantity, discount) == target).then_some(FittedLine {
            price,
            quantity,
            discount_amount: discount,
            fallback: false,
        })
    };
    let fitted = if undiscounted {
        // A line Cliniko did not discount reads best without a discount, if any price allows.
        candidates
            .iter()
            .filter_map(|&p| try_price(p))
            .find(|f| f.discount_amount.is_none())
    } else {
        None
    };
    fitted
        .or_else(|| candidates.iter().find_map(|&p| try_price(p)))
        .unwrap_or(FittedLine {
            price: target,
            quantity: Decimal::ONE,
            discount_amount: None,
            fallback: true,
        })
}

/// A Cliniko invoice as a Reckon invoice draft. `line_targets` gives, in order, what each of
/// the invoice's items sells in Reckon; `tz` is the business's zone (see
/// [`business_time_zone`]).
pub fn invoice_to_draft(
    invoice: &Invoice,
    customer: ReckonId,
    line_targets: &[LineTarget],
    tz: Tz,
    cfg: &MappingConfig,
) -> Result<InvoiceDraft, MappingError> {
    let kind = EntityKind::Invoice;
    let id = invoice.id;
    if invoice.items.is_empty() {
        return Err(MappingError::invalid(
            kind,
            id,
            "items",
            "the invoice has no live items (Reckon needs at least one line)",
        ));
    }
    if line_targets.len() != invoice.items.len() {
        return Err(MappingError::invalid(
            kind,
            id,
            "items",
            format!(
                "{} items but {} Reckon line targets",
                invoice.items.len(),
                line_targets.len()
            ),
        ));
    }
    for (field, v) in [
        ("total_amount", invoice.total_amount),
        ("tax_amount", invoice.tax_amount),
    ] {
        if !is_cents(v) {
            return Err(MappingError::invalid(
                kind,
                id,
                field,
                format!("{v} is not a whole number of cents"),
            ));
        }
    }
    let line_total: Decimal = invoice.items.iter().map(|i| i.total_including_tax).sum();
    let line_tax: Decimal = invoice.items.iter().map(|i| i.tax_amount).sum();
    for (field, stated, from_lines) in [
        ("total_amount", invoice.total_amount, line_total),
        ("tax_amount", invoice.tax_amount, line_tax),
    ] {
        if stated != from_lines {
            return Err(MappingError::TotalsMismatch {
                kind,
                id,
                field: field.into(),
                stated: stated.to_string(),
                from_lines: from_lines.to_string(),
            });
        }
    }

    let inclusive = invoice.calculation == TaxCalculation::Inclusive;
    let lines = invoice
        .items
        .iter()
        .zip(line_targets)
        .enumerate()
        .map(|(i, (item, target))| map_line(invoice, i, item, target, inclusive, cfg))
        .collect::<Result<Vec<_>, _>>()?;

    let invoice_date = invoice
        .issue_date
        .unwrap_or_else(|| invoice.created_at.with_timezone(&tz).date_naive());
    let mapped = cfg.invoice_status(invoice.status);
    let (status, paid) = match mapped {
        ReckonInvoiceStatus::Paid => (ReckonInvoiceStatus::Approved, true),
        other => (other, false),
    };
    Ok(InvoiceDraft {
        customer,
        reference: invoice.number.to_string(),
        invoice_date,
        amount_tax_status: if inclusive {
            AmountTaxStatus::Inclusive
        } else {
            AmountTaxStatus::Exclusive
        },
        status,
        notes: if cfg.copy_invoice_notes {
            invoice
                .notes
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| truncate(n, DESCRIPTION_MAX))
        } else {
            None
        },
        lines,
        expected_total: invoice.total_amount,
        expected_tax: invoice.tax_amount,
        paid,
    })
}

fn map_line(
    invoice: &Invoice,
    index: usize,
    item: &InvoiceItem,
    target: &LineTarget,
    inclusive: bool,
    cfg: &MappingConfig,
) -> Result<InvoiceLineDraft, MappingError> {
    let kind = EntityKind::Invoice;
    let id = invoice.id;
    let field = |f: &str| format!("items[{index}].{f}");
    for (f, v) in [
        ("total_including_tax", item.total_including_tax),
        ("tax_amount", item.tax_amount),
    ] {
        if !is_cents(v) {
            return Err(MappingError::invalid(
                kind,
                id,
                field(f),
                format!("{v} is not a whole number of cents (item {})", item.id),
            ));
        }
    }
    let tax_code = cfg
        .tax_code(item.tax_name.as_deref(), item.tax_rate)
        .ok_or_else(|| MappingError::UnknownTax {
            kind,
            id,
            field: field("tax_name"),
            tax: format!(
                "{:?} ({}%) on item {}",
                item.tax_name.as_deref().unwrap_or(""),
                item.tax_rate.normalize(),
                item.id
            ),
        })?;
    if tax_code == cfg.tax_free_code && !item.tax_amount.is_zero() {
        return Err(MappingError::invalid(
            kind,
            id,
            field("tax_amount"),
            format!(
                "tax of {} on a line coded {} (item {})",
                item.tax_amount, tax_code, item.id
            ),
        ));
    }
    let amount = if inclusive {
        item.total_including_tax
    } else {
        item.total_including_tax - item.tax_amount
    };
    let fitted = fit_line(
        item.unit_price,
        item.quantity,
        item.tax_rate,
        inclusive,
        matches!(item.discount, Discount::None),
        amount,
    );
    let name = match clean(&item.name) {
        n if n.is_empty() => format!("Item {}", item.id),
        n => n,
    };
    let description = if fitted.fallback {
        let shown = if inclusive {
            item.unit_price * (Decimal::ONE + item.tax_rate / Decimal::ONE_HUNDRED)
        } else {
            item.unit_price
        };
        format!(
            "{name} ({} × {})",
            item.quantity.normalize(),
            shown
                .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
                .normalize()
        )
    } else {
        name
    };
    Ok(InvoiceLineDraft {
        line_number: u32::try_from(index + 1).unwrap_or(u32::MAX),
        description: truncate(&description, DESCRIPTION_MAX),
        target: target.clone(),
        price: fitted.price,
        quantity: fitted.quantity,
        discount_amount: fitted.discount_amount,
        tax_code,
        tax_amount: item.tax_amount,
    })
}
