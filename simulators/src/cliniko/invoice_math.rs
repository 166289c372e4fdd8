//! How the simulator computes Cliniko invoice lines and totals. Cliniko does not document
//! its arithmetic; this follows its legacy example (unit price ex tax 100, monetary discount
//! 20 taken off the tax-inclusive amount, 10% GST → net 81.818, total 90.0), rounds money
//! half away from zero to the cent per line, and makes the invoice the sum of its lines.

use rust_decimal::{Decimal, RoundingStrategy};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Discount {
    None,
    /// Percentage 0–100 of the line.
    Percent(Decimal),
    /// Money off the line (tax inclusive for tax-inclusive invoices, else exclusive).
    Amount(Decimal),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LineTotals {
    /// Line amount after discount, excluding tax (4 dp, as Cliniko shows it).
    pub net_price: Decimal,
    pub tax: Decimal,
    pub total_including_tax: Decimal,
    pub discount_percentage: Decimal,
    pub discounted_amount: Decimal,
}

pub fn cents(v: Decimal) -> Decimal {
    v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn dp4(v: Decimal) -> Decimal {
    v.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
}

/// `tax_rate` is a percentage (10 for GST). `tax_inclusive` is calculation method 3.
pub fn line_totals(
    unit_price: Decimal,
    quantity: Decimal,
    discount: Discount,
    tax_rate: Decimal,
    tax_inclusive: bool,
) -> LineTotals {
    let hundred = Decimal::ONE_HUNDRED;
    let factor = Decimal::ONE + tax_rate / hundred;
    if tax_inclusive {
        let gross = cents(unit_price * quantity * factor);
        let off = match discount {
            Discount::None => Decimal::ZERO,
            Discount::Percent(p) => cents(gross * p / hundred),
            Discount::Amount(a) => a.min(gross),
        };
        let total = cents(gross - off);
        let tax = cents(total * tax_rate / (hundred + tax_rate));
        LineTotals {
            net_price: dp4(total / factor),
            tax,
            total_including_tax: total,
            discount_percentage: percent_of(off, gross),
            discounted_amount: off,
        }
    } else {
        let gross = unit_price * quantity;
        let off = match discount {
            Discount::None => Decimal::ZERO,
            Discount::Percent(p) => dp4(gross * p / hundred),
            Discount::Amount(a) => a.min(gross),
        };
        let net = gross - off;
        let tax = cents(net * tax_rate / hundred);
        LineTotals {
            net_price: dp4(net),
            tax,
            total_including_tax: cents(net) + tax,
            discount_percentage: percent_of(off, gross),
            discounted_amount: off,
        }
    }
}

fn percent_of(part: Decimal, whole: Decimal) -> Decimal {
    if whole.is_zero() {
        Decimal::ZERO
    } else {
        dp4(part * Decimal::ONE_HUNDRED / whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn reproduces_clinikos_legacy_example() {
        let t = line_totals(
            dec!(100),
            dec!(1),
            Discount::Amount(dec!(20)),
            dec!(10),
            true,
        );
        assert_eq!(t.total_including_tax, dec!(90.00));
        assert_eq!(t.tax, dec!(8.18));
        assert_eq!(t.net_price, dec!(81.8182));
        assert_eq!(t.discount_percentage, dec!(18.1818));
    }

    #[test]
    fn exclusive_with_percentage_discount() {
        let t = line_totals(
            dec!(85),
            dec!(2),
            Discount::Percent(dec!(10)),
            dec!(10),
            false,
        );
        assert_eq!(t.net_price, dec!(153));
        assert_eq!(t.tax, dec!(15.30));
        assert_eq!(t.total_including_tax, dec!(168.30));
    }

    #[test]
    fn gst_free_lines_have_no_tax() {
        let t = line_totals(dec!(95.5), dec!(1), Discount::None, dec!(0), true);
        assert_eq!(t.tax, dec!(0));
        assert_eq!(t.total_including_tax, dec!(95.50));
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        // 0.05 * 10% = 0.005 → 0.01
        let t = line_totals(dec!(0.05), dec!(1), Discount::None, dec!(10), false);
        assert_eq!(t.tax, dec!(0.01));
    }
}
