//! Invoice arithmetic as the simulator's Reckon computes it. Reckon does not document its
//! rounding; the usual assumption is GST line tax = amount/11 (inclusive) or amount × 10%
//! (exclusive) rounded to cents. The rule is configurable so a client can be tested
//! against the variants, and a client-supplied line `taxAmount` always wins.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    /// Each line's tax rounded to cents, half away from zero (default).
    #[default]
    LineHalfUp,
    /// Each line's tax rounded to cents, half to even (banker's rounding).
    LineHalfEven,
    /// Tax computed per rate on the invoice's summed amounts, then rounded once.
    InvoiceTotal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountTaxStatus {
    NonTaxed,
    Inclusive,
    Exclusive,
}

impl AmountTaxStatus {
    pub const NAMES: &'static [&'static str] = &["NonTaxed", "Inclusive", "Exclusive"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "NonTaxed" => Some(Self::NonTaxed),
            "Inclusive" => Some(Self::Inclusive),
            "Exclusive" => Some(Self::Exclusive),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::NonTaxed => "NonTaxed",
            Self::Inclusive => "Inclusive",
            Self::Exclusive => "Exclusive",
        }
    }
}

/// One line as the arithmetic sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LineIn {
    /// Price × quantity − discount, in the invoice's tax status (inclusive or exclusive).
    pub amount: Decimal,
    /// Percentage, e.g. 10 for GST; 0 when the line has no tax rate.
    pub rate: Decimal,
    /// The client's `taxAmount`, which replaces the computed tax.
    pub tax_override: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    pub line_tax: Vec<Decimal>,
    pub total_tax: Decimal,
    /// Always tax inclusive.
    pub total: Decimal,
}

pub fn round_cents(v: Decimal, rounding: Rounding) -> Decimal {
    let strategy = match rounding {
        Rounding::LineHalfEven => RoundingStrategy::MidpointNearestEven,
        _ => RoundingStrategy::MidpointAwayFromZero,
    };
    v.round_dp_with_strategy(2, strategy)
}

fn raw_tax(amount: Decimal, rate: Decimal, status: AmountTaxStatus) -> Decimal {
    match status {
        AmountTaxStatus::NonTaxed => Decimal::ZERO,
        AmountTaxStatus::Inclusive => amount * rate / (Decimal::ONE_HUNDRED + rate),
        AmountTaxStatus::Exclusive => amount * rate / Decimal::ONE_HUNDRED,
    }
}

/// Line amount: `price × quantity` less a money or percentage discount, rounded to cents.
pub fn line_amount(
    price: Decimal,
    quantity: Decimal,
    discount_amount: Option<Decimal>,
    discount_percent: Option<Decimal>,
) -> Decimal {
    let gross = price * quantity;
    let off = match (discount_amount, discount_percent) {
        (Some(a), _) => a,
        (None, Some(p)) => gross * p / Decimal::ONE_HUNDRED,
        (None, None) => Decimal::ZERO,
    };
    round_cents(gross - off, Rounding::LineHalfUp)
}

pub fn compute(lines: &[LineIn], status: AmountTaxStatus, rounding: Rounding) -> Totals {
    let line_tax: Vec<Decimal> = lines
        .iter()
        .map(|l| {
            l.tax_override
                .unwrap_or_else(|| round_cents(raw_tax(l.amount, l.rate, status), rounding))
        })
        .collect();
    let total_tax = match rounding {
        Rounding::InvoiceTotal => {
            // Overridden lines count as given; the rest are taxed per rate on their sum.
            let overridden: Decimal = lines.iter().filter_map(|l| l.tax_override).sum();
            let mut by_rate: Vec<(Decimal, Decimal)> = Vec::new();
            for l in lines.iter().filter(|l| l.tax_override.is_none()) {
                match by_rate.iter_mut().find(|(r, _)| *r == l.rate) {
                    Some((_, sum)) => *sum += l.amount,
                    None => by_rate.push((l.rate, l.amount)),
                }
            }
            overridden
                + by_rate
                    .iter()
                    .map(|(rate, sum)| {
                        round_cents(raw_tax(*sum, *rate, status), Rounding::LineHalfUp)
                    })
                    .sum::<Decimal>()
        }
        _ => line_tax.iter().sum(),
    };
    let amounts: Decimal = lines.iter().map(|l| l.amount).sum();
    let total = match status {
        AmountTaxStatus::Exclusive => amounts + total_tax,
        _ => amounts,
    };
    Totals {
        line_tax,
        total_tax,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn line(amount: Decimal, rate: Decimal) -> LineIn {
        LineIn {
            amount,
            rate,
            tax_override: None,
        }
    }

    #[test]
    fn inclusive_gst_is_one_eleventh() {
        let t = compute(
            &[line(dec!(110), dec!(10)), line(dec!(95), dec!(0))],
            AmountTaxStatus::Inclusive,
            Rounding::LineHalfUp,
        );
        assert_eq!(t.line_tax, vec![dec!(10.00), dec!(0)]);
        assert_eq!(t.total, dec!(205));
        assert_eq!(t.total_tax, dec!(10.00));
    }

    #[test]
    fn exclusive_adds_tax_to_total() {
        let t = compute(
            &[line(dec!(33.33), dec!(10))],
            AmountTaxStatus::Exclusive,
            Rounding::LineHalfUp,
        );
        assert_eq!(t.total_tax, dec!(3.33));
        assert_eq!(t.total, dec!(36.66));
    }

    #[test]
    fn override_wins() {
        let t = compute(
            &[LineIn {
                amount: dec!(10),
                rate: dec!(10),
                tax_override: Some(dec!(0.90)),
            }],
            AmountTaxStatus::Inclusive,
            Rounding::LineHalfUp,
        );
        assert_eq!(t.line_tax, vec![dec!(0.90)]);
        assert_eq!(t.total_tax, dec!(0.90));
    }

    #[test]
    fn rounding_rules_differ_where_they_should() {
        // 0.25 * 10% = 0.025: half-up 0.03, half-even 0.02.
        let lines = [line(dec!(0.25), dec!(10))];
        assert_eq!(
            compute(&lines, AmountTaxStatus::Exclusive, Rounding::LineHalfUp).total_tax,
            dec!(0.03)
        );
        assert_eq!(
            compute(&lines, AmountTaxStatus::Exclusive, Rounding::LineHalfEven).total_tax,
            dec!(0.02)
        );
        // Three lines of 0.05 exclusive: per line 0.01 each = 0.03; on the total 0.015 → 0.02.
        let three = [
            line(dec!(0.05), dec!(10)),
            line(dec!(0.05), dec!(10)),
            line(dec!(0.05), dec!(10)),
        ];
        assert_eq!(
            compute(&three, AmountTaxStatus::Exclusive, Rounding::LineHalfUp).total_tax,
            dec!(0.03)
        );
        assert_eq!(
            compute(&three, AmountTaxStatus::Exclusive, Rounding::InvoiceTotal).total_tax,
            dec!(0.02)
        );
    }

    #[test]
    fn line_amount_applies_discounts() {
        assert_eq!(line_amount(dec!(95.45), dec!(3), None, None), dec!(286.35));
        assert_eq!(
            line_amount(dec!(100), dec!(1), None, Some(dec!(33.3333))),
            dec!(66.67)
        );
        assert_eq!(
            line_amount(dec!(100), dec!(2), Some(dec!(12.5)), None),
            dec!(187.50)
        );
    }
}
