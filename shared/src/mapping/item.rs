//! Products and billable items → Reckon items.
//!
//! **Names.** The Cliniko name, trimmed with whitespace collapsed, cut to Reckon's 100 UTF-16
//! units (`"Product {id}"` / `"Service {id}"` when blank). Reckon item names are unique per
//! book, and Cliniko keeps products and billable items apart, so a product and a billable
//! item (or two of either) may share a name: the one that finds its name taken is created
//! as [`disambiguate_item`], `"{base} (product {id})"` or `"{base} (service {id})"`, which is
//! stable for retries and within the limit.

use super::text::{ITEM_CODE_MAX, NAME_MAX, clean, clean_opt, truncate, units};
use super::{MappingConfig, MappingError};
use crate::domain::{
    ActiveStatus, BillableItem, ClinikoId, EntityKind, ItemDraft, ItemType, Product, Tax,
};
use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places kept when a product's ex-tax price is derived from its tax-inclusive one
/// (Cliniko shows unit prices to 4; Reckon items take up to 8).
pub const DERIVED_PRICE_DP: u32 = 4;

fn kind_word(kind: ItemType) -> &'static str {
    match kind {
        ItemType::Product => "product",
        ItemType::Service => "service",
    }
}

/// The Reckon item name for a Cliniko product or billable item name.
pub fn item_name(name: &str, kind: ItemType, id: ClinikoId) -> String {
    match truncate(&clean(name), NAME_MAX) {
        n if n.is_empty() => match kind {
            ItemType::Product => format!("Product {id}"),
            ItemType::Service => format!("Service {id}"),
        },
        n => n,
    }
}

/// The name for an item whose [`item_name`] is taken by a different record.
pub fn disambiguate_item(base: &str, kind: ItemType, id: ClinikoId) -> String {
    let suffix = format!("({} {id})", kind_word(kind));
    let room = NAME_MAX.saturating_sub(units(&suffix) + 1);
    let base = truncate(&clean(base), room);
    if base.is_empty() {
        suffix
    } else {
        format!("{base} {suffix}")
    }
}

/// The Reckon tax code for a record's `tax_id` (none → the GST-free code).
fn tax_code_for(
    tax_id: Option<ClinikoId>,
    taxes: &[Tax],
    cfg: &MappingConfig,
    kind: EntityKind,
    id: ClinikoId,
) -> Result<(String, Decimal), MappingError> {
    let Some(tax_id) = tax_id else {
        return Ok((cfg.tax_free_code.clone(), Decimal::ZERO));
    };
    let unknown = |tax: String| MappingError::UnknownTax {
        kind,
        id,
        field: "tax_id".into(),
        tax,
    };
    let tax = taxes
        .iter()
        .find(|t| t.id == tax_id)
        .ok_or_else(|| unknown(format!("id {tax_id} (not among Cliniko's taxes)")))?;
    let code = cfg
        .tax_code(Some(&tax.name), tax.rate)
        .ok_or_else(|| unknown(format!("{:?} ({}%)", tax.name, tax.rate.normalize())))?;
    Ok((code, tax.rate))
}

fn status(archived: bool) -> ActiveStatus {
    if archived {
        ActiveStatus::Inactive
    } else {
        ActiveStatus::Active
    }
}

/// A Cliniko product as a Reckon `Product` item. The sale price is ex tax: `price_ex_tax`,
/// or `price_including_tax ÷ (1 + rate)` to 4 dp when only that is set, or 0 when neither
/// is (invoice lines carry their own prices). Stock is not written: Reckon has no stock.
pub fn product_to_item(
    product: &Product,
    taxes: &[Tax],
    cfg: &MappingConfig,
) -> Result<ItemDraft, MappingError> {
    let kind = EntityKind::Product;
    let (tax_code, rate) = tax_code_for(product.tax_id, taxes, cfg, kind, product.id)?;
    let sale_price = match (product.price_ex_tax, product.price_including_tax) {
        (Some(ex), _) => ex,
        (None, Some(inc)) => {
            // Tax rates come from Cliniko: a rate that makes no positive factor, or a
            // division that overflows, is an error naming the record, never a panic.
            let factor = rate
                .checked_div(Decimal::ONE_HUNDRED)
                .and_then(|r| Decimal::ONE.checked_add(r))
                .filter(|f| f.is_sign_positive() && !f.is_zero());
            let Some(ex) = factor.and_then(|f| inc.checked_div(f)) else {
                return Err(MappingError::invalid(
                    kind,
                    product.id,
                    "tax_id",
                    format!(
                        "a tax rate of {rate}% cannot be taken out of price_including_tax {inc}"
                    ),
                ));
            };
            ex.round_dp_with_strategy(DERIVED_PRICE_DP, RoundingStrategy::MidpointAwayFromZero)
                .normalize()
        }
        (None, None) => Decimal::ZERO,
    };
    if sale_price.is_sign_negative() && !sale_price.is_zero() {
        return Err(MappingError::invalid(
            kind,
            product.id,
            "price_ex_tax",
            format!("negative price {sale_price}"),
        ));
    }
    Ok(ItemDraft {
        name: item_name(&product.name, ItemType::Product, product.id),
        item_code: clean_opt(product.item_code.as_deref()).map(|c| truncate(&c, ITEM_CODE_MAX)),
        item_type: ItemType::Product,
        status: status(product.archived_at.is_some()),
        sale_price,
        tax_code,
        income_account: cfg.item_income_account(
            product.id,
            &product.name,
            &cfg.product_income_account,
        ),
        description: None,
    })
}

/// A Cliniko billable item as a Reckon `Service` item (whatever its Cliniko `item_type`:
/// Reckon's item types describe stock, and billable items carry none).
pub fn billable_item_to_item(
    item: &BillableItem,
    taxes: &[Tax],
    cfg: &MappingConfig,
) -> Result<ItemDraft, MappingError> {
    let kind = EntityKind::BillableItem;
    let (tax_code, _) = tax_code_for(item.tax_id, taxes, cfg, kind, item.id)?;
    if item.price.is_sign_negative() && !item.price.is_zero() {
        return Err(MappingError::invalid(
            kind,
            item.id,
            "price",
            format!("negative price {}", item.price),
        ));
    }
    Ok(ItemDraft {
        name: item_name(&item.name, ItemType::Service, item.id),
        item_code: clean_opt(item.item_code.as_deref()).map(|c| truncate(&c, ITEM_CODE_MAX)),
        item_type: ItemType::Service,
        status: status(item.archived_at.is_some()),
        sale_price: item.price,
        tax_code,
        income_account: cfg.item_income_account(item.id, &item.name, &cfg.service_income_account),
        description: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use rust_decimal_macros::dec;

    fn taxes() -> Vec<Tax> {
        vec![
            Tax {
                id: ClinikoId(1),
                name: "GST".into(),
                rate: dec!(10.0),
            },
            Tax {
                id: ClinikoId(2),
                name: "GST Free".into(),
                rate: dec!(0),
            },
            Tax {
                id: ClinikoId(3),
                name: "VAT".into(),
                rate: dec!(20),
            },
        ]
    }

    fn product(ex: Option<Decimal>, inc: Option<Decimal>, tax: Option<u64>) -> Product {
        let t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        Product {
            id: ClinikoId(77),
            name: "  Wheat   Heat Pack ".into(),
            item_code: Some("HP-1".into()),
            price_ex_tax: ex,
            price_including_tax: inc,
            tax_id: tax.map(ClinikoId),
            stock_level: Some(dec!(18)),
            archived_at: None,
            created_at: t,
            updated_at: t,
        }
    }

    fn billable(price: Decimal, tax: Option<u64>) -> BillableItem {
        let t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        BillableItem {
            id: ClinikoId(88),
            name: "Standard Consultation".into(),
            item_code: None,
            item_type: "Service".into(),
            price,
            tax_id: tax.map(ClinikoId),
            archived_at: None,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn products() {
        let cfg = MappingConfig::default();
        type Case = (
            Option<Decimal>,
            Option<Decimal>,
            Option<u64>,
            Decimal,
            &'static str,
        );
        let cases: &[Case] = &[
            (
                Some(dec!(22.68)),
                Some(dec!(24.95)),
                Some(1),
                dec!(22.68),
                "GST",
            ),
            (None, Some(dec!(24.95)), Some(1), dec!(22.6818), "GST"),
            (None, Some(dec!(11.00)), Some(1), dec!(10), "GST"),
            (None, Some(dec!(89.00)), Some(2), dec!(89), "FRE"),
            (Some(dec!(89.00)), None, None, dec!(89.00), "FRE"),
            (None, None, Some(1), dec!(0), "GST"),
        ];
        for (ex, inc, tax, price, code) in cases {
            let item = product_to_item(&product(*ex, *inc, *tax), &taxes(), &cfg).unwrap();
            assert_eq!(item.sale_price, *price, "{ex:?} {inc:?}");
            assert_eq!(item.tax_code, *code);
            assert_eq!(item.item_type, ItemType::Product);
            assert_eq!(item.name, "Wheat Heat Pack");
            assert_eq!(item.item_code.as_deref(), Some("HP-1"));
            assert_eq!(item.income_account, "Sales");
            assert_eq!(item.status, ActiveStatus::Active);
        }
        let mut archived = product(Some(dec!(1)), None, None);
        archived.archived_at = Some(archived.created_at);
        assert_eq!(
            product_to_item(&archived, &taxes(), &cfg).unwrap().status,
            ActiveStatus::Inactive
        );
    }

    #[test]
    fn unknown_taxes_name_the_field() {
        let cfg = MappingConfig::default();
        let e =
            product_to_item(&product(Some(dec!(1)), None, Some(3)), &taxes(), &cfg).unwrap_err();
        assert_eq!(e.kind(), EntityKind::Product);
        assert_eq!(e.id(), ClinikoId(77));
        assert_eq!(e.field(), "tax_id");
        assert!(e.to_string().contains("VAT"), "{e}");
        let e = billable_item_to_item(&billable(dec!(1), Some(99)), &taxes(), &cfg).unwrap_err();
        assert_eq!(e.kind(), EntityKind::BillableItem);
        assert_eq!(e.field(), "tax_id");
        assert!(e.to_string().contains("99"), "{e}");
        // Configured, it maps.
        let mut cfg = cfg;
        cfg.tax_codes.insert("VAT".into(), "VAT20".into());
        let item = product_to_item(&product(Some(dec!(1)), None, Some(3)), &taxes(), &cfg).unwrap();
        assert_eq!(item.tax_code, "VAT20");
    }

    #[test]
    fn billable_items() {
        let cfg = MappingConfig::default();
        let item = billable_item_to_item(&billable(dec!(95.00), None), &taxes(), &cfg).unwrap();
        assert_eq!(item.item_type, ItemType::Service);
        assert_eq!(item.sale_price, dec!(95.00));
        assert_eq!(item.tax_code, "FRE");
        assert_eq!(item.income_account, "Income");
        assert_eq!(item.name, "Standard Consultation");
        let item = billable_item_to_item(&billable(dec!(95.45), Some(1)), &taxes(), &cfg).unwrap();
        assert_eq!(item.tax_code, "GST");
        let mut b = billable(dec!(1), None);
        b.archived_at = Some(b.created_at);
        assert_eq!(
            billable_item_to_item(&b, &taxes(), &cfg).unwrap().status,
            ActiveStatus::Inactive
        );
        assert!(billable_item_to_item(&billable(dec!(-1), None), &taxes(), &cfg).is_err());
    }

    #[test]
    fn item_names_and_disambiguation() {
        let id = ClinikoId(1_100_000_000_000_000_042);
        let p = item_name("Strapping", ItemType::Product, id);
        let s = item_name("Strapping", ItemType::Service, id);
        assert_eq!(p, s);
        let dp = disambiguate_item(&p, ItemType::Product, id);
        let ds = disambiguate_item(&s, ItemType::Service, id);
        assert_eq!(dp, "Strapping (product 1100000000000000042)");
        assert_eq!(ds, "Strapping (service 1100000000000000042)");
        assert_ne!(dp, ds);
        assert_eq!(dp, disambiguate_item(&p, ItemType::Product, id));
        let long = disambiguate_item(&"Z".repeat(120), ItemType::Service, id);
        assert_eq!(units(&long), 100);
        assert_eq!(item_name(" ", ItemType::Product, ClinikoId(3)), "Product 3");
        assert_eq!(
            units(&item_name(&"é".repeat(101), ItemType::Product, id)),
            100
        );
    }
}
