//! Property tests: disambiguation is stable and within Reckon's limits, and for random
//! Cliniko lines Reckon's arithmetic reproduces Cliniko's totals and tax to the cent under
//! every rounding rule Reckon might use.

use super::invoice::testkit::*;
use super::text::{self, NAME_MAX, units};
use super::*;
use crate::domain::{ClinikoId, Discount, ItemType};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn name_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z' -]{0,40}",
        "[A-Za-zÀ-ÿ'’ -]{0,130}",
        "[\\p{Han}\\p{Greek}\\p{Cyrillic} ]{0,120}",
        ".{0,160}",
        // Astral-plane characters count twice towards Reckon's limit.
        "[😀𠀋a ]{0,120}",
    ]
}

fn id_strategy() -> impl Strategy<Value = ClinikoId> {
    prop_oneof![
        any::<u64>(),
        1_100_000_000_000_000_000u64..1_100_000_000_100_000_000
    ]
    .prop_map(ClinikoId)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn customer_disambiguation_is_stable_and_fits(
        base in name_strategy(),
        id in id_strategy(),
        other in id_strategy(),
    ) {
        let a = disambiguate(&base, id);
        prop_assert_eq!(&a, &disambiguate(&base, id));
        prop_assert!(units(&a) <= NAME_MAX, "{} units: {:?}", units(&a), a);
        prop_assert!(!a.is_empty());
        prop_assert!(a.ends_with(&format!("({id})")), "{:?}", a);
        if other != id {
            prop_assert_ne!(&a, &disambiguate(&base, other));
        }
    }

    #[test]
    fn item_disambiguation_is_stable_distinct_and_fits(
        base in name_strategy(),
        id in id_strategy(),
    ) {
        let p = disambiguate_item(&base, ItemType::Product, id);
        let s = disambiguate_item(&base, ItemType::Service, id);
        prop_assert_eq!(&p, &disambiguate_item(&base, ItemType::Product, id));
        prop_assert_ne!(&p, &s);
        prop_assert!(units(&p) <= NAME_MAX && units(&s) <= NAME_MAX);
        let n = item_name(&base, ItemType::Product, id);
        prop_assert!(!n.is_empty() && units(&n) <= NAME_MAX);
    }

    #[test]
    fn addresses_fit_reckon_and_keep_what_fits(
        lines in prop::collection::vec("[A-Za-z0-9,/' -]{0,255}", 0..6),
    ) {
        let address = crate::domain::Address { lines: lines.clone(), ..Default::default() };
        let cleaned: Vec<String> = lines.iter().map(|l| text::clean(l)).filter(|l| !l.is_empty()).collect();
        match crate::mapping::customer::map_address(&address, "Billing") {
            None => prop_assert!(cleaned.is_empty()),
            Some(a) => {
                prop_assert!(a.lines.len() <= text::ADDRESS_LINES, "{:?}", a.lines);
                prop_assert!(a.lines.iter().all(|l| !l.is_empty() && units(l) <= text::ADDRESS_LINE_MAX), "{:?}", a.lines);
                if cleaned.iter().all(|l| units(l) <= text::ADDRESS_LINE_MAX) {
                    // Whatever fits is kept whole, in order (extra lines joined, not dropped).
                    let total: usize = cleaned.iter().map(|l| units(l) + 2).sum();
                    if total <= text::ADDRESS_LINE_MAX || cleaned.len() <= text::ADDRESS_LINES {
                        prop_assert_eq!(a.lines.join(", "), cleaned.join(", "));
                    }
                }
            }
        }
    }

    #[test]
    fn customer_names_fit(first in name_strategy(), last in name_strategy()) {
        let mut p = crate::mapping::customer::test_patient();
        p.first_name = first;
        p.last_name = last;
        let n = customer_name(&p);
        prop_assert!(!n.is_empty() && units(&n) <= NAME_MAX, "{:?}", n);
        prop_assert_eq!(n.trim(), n.as_str());
        prop_assert!(!n.contains("  "));
    }
}

/// A money value with `dp` decimal places from an integer number of the smallest unit.
fn money(units: i64, dp: u32) -> Decimal {
    Decimal::new(units, dp)
}

fn line_strategy() -> impl Strategy<Value = LineSpec> {
    let price = prop_oneof![
        (0i64..=50_000).prop_map(|c| money(c, 2)),
        (0i64..=5_000_000).prop_map(|c| money(c, 4)),
        Just(money(3333, 2)),
        Just(money(9545, 2)),
        Just(money(1295, 2)),
        Just(money(333_333, 4)),
    ];
    let quantity = prop_oneof![
        (1i64..=10).prop_map(Decimal::from),
        Just(money(5, 1)),
        Just(money(15, 1)),
        (1i64..=1000).prop_map(|q| money(q, 2)),
    ];
    let rate = prop_oneof![Just(Decimal::ZERO), Just(Decimal::TEN)];
    (
        price,
        quantity,
        rate,
        0u8..3,
        0i64..=1_000_000,
        0i64..=200_000,
    )
        .prop_map(|(unit_price, quantity, rate, which, pct, amount)| {
            let discount = match which {
                0 => Discount::None,
                // 0–100 % to 4 dp.
                1 => Discount::Percent(money(pct, 4)),
                // 0–2000 dollars, often more than the line (Cliniko caps it).
                _ => Discount::Amount(money(amount, 2)),
            };
            LineSpec {
                unit_price,
                quantity,
                discount,
                rate,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn reckon_reproduces_clinikos_totals_to_the_cent(
        lines in prop::collection::vec(line_strategy(), 1..8),
        inclusive in any::<bool>(),
    ) {
        let inv = invoice(&lines, inclusive);
        let draft = invoice_to_draft(
            &inv,
            customer(),
            &targets(lines.len()),
            chrono_tz::Australia::Sydney,
            &MappingConfig::default(),
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for rounding in ROUNDINGS {
            let (total, tax) = reckon_totals(&draft, rounding);
            prop_assert_eq!(total, inv.total_amount, "total under {:?}", rounding);
            prop_assert_eq!(tax, inv.tax_amount, "tax under {:?}", rounding);
        }
        prop_assert_eq!(draft.expected_total, inv.total_amount);
        prop_assert_eq!(draft.expected_tax, inv.tax_amount);
        for (l, item) in draft.lines.iter().zip(&inv.items) {
            // Never a negative discount; Cliniko's quantity, or the fallback (quantity 1 at
            // the line amount, Cliniko's quantity and price kept in the description), which
            // cents-only discounts need when a sub-cent gross meets a tiny target.
            prop_assert!(l.discount_amount.is_none_or(|d| d > Decimal::ZERO), "{:?}", l);
            if l.quantity != item.quantity {
                prop_assert_eq!(l.quantity, Decimal::ONE);
                prop_assert!(l.discount_amount.is_none());
                prop_assert!(l.description.contains(" × "), "{:?}", l);
            }
            prop_assert_eq!(l.tax_amount, item.tax_amount);
            let code = if item.tax_rate.is_zero() { "FRE" } else { "GST" };
            prop_assert_eq!(l.tax_code.as_str(), code);
            if matches!(item.discount, Discount::None) && l.discount_amount.is_some() {
                // Only Cliniko's own rounding may need a discount on an undiscounted line,
                // and then never more than a cent per unit.
                prop_assert!(
                    l.discount_amount.unwrap_or_default() <= Decimal::new(1, 2) * item.quantity.max(Decimal::ONE),
                    "{:?} for {:?}", l, item
                );
            }
        }
    }
}
