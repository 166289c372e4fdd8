//! The approval workflow (`[invoicing]` in a clinic's configuration): which invoices the
//! sync leaves as Draft in Reckon for a bookkeeper to approve, clinic-wide and per business.
//!
//! ```toml
//! [invoicing]
//! status = "Approved"     # or "Draft": every invoice still owing waits for approval
//! draft_above = 500       # …except: above this total (GST included) it waits as Draft
//! draft_below = 0.01      # …and below this one (e.g. zero-total invoices)
//! [invoicing.businesses."Bondi Junction"]   # a Cliniko business, by name or id
//! status = "Draft"        # replaces only the keys it sets
//! ```
//!
//! Only invoices still owing in Cliniko (status Open) follow the rule: a paid or closed
//! invoice is approved, because Reckon takes a receipt or a credit only on an approved
//! invoice.

use super::appointment::{AppointmentRules, CompletedWhen, InvoicingSource, Withdraw};
use crate::domain::{Business, Invoice, InvoiceStatus, ReckonInvoiceStatus};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// The status an invoice waits in, as a clinic configures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ApprovalStatus {
    Draft,
    Approved,
}

impl From<ApprovalStatus> for ReckonInvoiceStatus {
    fn from(s: ApprovalStatus) -> Self {
        match s {
            ApprovalStatus::Draft => ReckonInvoiceStatus::Draft,
            ApprovalStatus::Approved => ReckonInvoiceStatus::Approved,
        }
    }
}

/// One level of the rule (the clinic's, or a business's): every key optional, a business's
/// keys replacing the clinic's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalRule {
    pub status: Option<ApprovalStatus>,
    /// An invoice whose total (GST included) is above this waits as Draft.
    #[serde(deserialize_with = "money")]
    pub draft_above: Option<Decimal>,
    /// An invoice whose total (GST included) is below this waits as Draft.
    #[serde(deserialize_with = "money")]
    pub draft_below: Option<Decimal>,
}

/// The clinic's approval rule and its per-business overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "InvoicingSection")]
pub struct InvoicingRules {
    pub approval: ApprovalRule,
    /// Keyed by a Cliniko business's name (matched trimmed, case-insensitively) or its id.
    pub businesses: BTreeMap<String, ApprovalRule>,
    /// `invoicing.template`: the Reckon invoice template (a name in the book) for every
    /// invoice the sync writes; `None`: the book's default.
    pub template: Option<String>,
    /// `invoicing.payment_terms`: the Reckon payment terms (a name in the book) given to
    /// every customer the sync writes that has none of its own; its invoices then fall due
    /// by them. Terms a bookkeeper set on a customer in Reckon are kept.
    pub payment_terms: Option<String>,
    /// The book's id for `payment_terms`, found by the start-up check of the book
    /// (`pipeline::accounts::check_payment_terms`): what customers are given, as Reckon's
    /// customer input documents an id. `None` until checked.
    pub payment_terms_id: Option<String>,
    /// `invoicing.source`, `completed_when`, `grace_minutes`, `withdraw`: whether (and
    /// when) completed appointments are invoiced (see [`super::appointment`]).
    pub appointments: AppointmentRules,
}

/// `[invoicing]` as written (serde cannot refuse unknown keys of a flattened table).
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct InvoicingSection {
    status: Option<ApprovalStatus>,
    #[serde(deserialize_with = "money")]
    draft_above: Option<Decimal>,
    #[serde(deserialize_with = "money")]
    draft_below: Option<Decimal>,
    businesses: BTreeMap<String, ApprovalRule>,
    #[serde(deserialize_with = "template_name")]
    template: Option<String>,
    #[serde(deserialize_with = "name")]
    payment_terms: Option<String>,
    source: InvoicingSource,
    completed_when: Option<CompletedWhen>,
    grace_minutes: Option<u32>,
    withdraw: Option<Withdraw>,
}

impl TryFrom<InvoicingSection> for InvoicingRules {
    type Error = String;

    fn try_from(s: InvoicingSection) -> Result<Self, String> {
        // Appointment keys under a source that reads no appointments would silently do
        // nothing: say so instead.
        if !s.source.reads_appointments() {
            for (key, set) in [
                ("completed_when", s.completed_when.is_some()),
                ("grace_minutes", s.grace_minutes.is_some()),
                ("withdraw", s.withdraw.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "invoicing.{key} applies only to appointment invoicing: set invoicing.source = \"completed_appointments\" or \"both\", or remove it"
                    ));
                }
            }
        }
        if s.grace_minutes.is_some() && s.completed_when != Some(CompletedWhen::Ended) {
            return Err(
                "invoicing.grace_minutes counts from an appointment's end: set invoicing.completed_when = \"ended\", or remove it".into(),
            );
        }
        if s.grace_minutes.is_some_and(|m| m > 10_080) {
            return Err("invoicing.grace_minutes: at most 10080 (a week)".into());
        }
        let appointments = AppointmentRules {
            source: s.source,
            completed_when: s.completed_when.unwrap_or_default(),
            grace_minutes: s.grace_minutes.unwrap_or(0),
            withdraw: s.withdraw.unwrap_or_default(),
        };
        Ok(InvoicingRules {
            appointments,
            template: s.template,
            payment_terms: s.payment_terms,
            payment_terms_id: None,
            approval: ApprovalRule {
                status: s.status,
                draft_above: s.draft_above,
                draft_below: s.draft_below,
            },
            businesses: s.businesses,
        })
    }
}

impl InvoicingRules {
    /// Whether any key is set (an empty `[invoicing]` changes nothing).
    pub fn is_empty(&self) -> bool {
        *self == InvoicingRules::default()
    }

    /// Whether the clinic runs an approval workflow (a status, a threshold or a business
    /// override is set).
    pub fn has_approval(&self) -> bool {
        self.approval != ApprovalRule::default() || !self.businesses.is_empty()
    }

    /// Checks the business override keys against Cliniko's businesses: each must name one
    /// (by id or name), and no business may be named twice; the error names the key.
    pub fn check_businesses(&self, businesses: &[Business]) -> Result<(), String> {
        let mut claimed: BTreeMap<u64, &str> = BTreeMap::new();
        for key in self.businesses.keys() {
            let k = key.trim();
            let found = businesses
                .iter()
                .find(|b| b.id.0.to_string() == k)
                .or_else(|| {
                    businesses
                        .iter()
                        .find(|b| b.name.trim().to_lowercase() == k.to_lowercase())
                });
            let Some(b) = found else {
                return Err(format!(
                    "invoicing.businesses.{key:?}: Cliniko has no business of that name or id (it has: {})",
                    businesses
                        .iter()
                        .map(|b| format!("{:?} ({})", b.name, b.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            if let Some(first) = claimed.insert(b.id.0, key) {
                return Err(format!(
                    "invoicing.businesses.{first:?} and invoicing.businesses.{key:?} both name business {:?} ({}): keep one",
                    b.name, b.id
                ));
            }
        }
        Ok(())
    }

    /// The rule for an invoice of `business`: the clinic's, with the business's keys over it.
    pub fn rule_for(&self, business: Option<&Business>) -> ApprovalRule {
        let mut rule = self.approval.clone();
        let Some(b) = business else {
            return rule;
        };
        // Its id first (exact), then its name, compared case-insensitively in any script.
        let id = b.id.0.to_string();
        let name = b.name.trim().to_lowercase();
        let found = self
            .businesses
            .iter()
            .find(|(key, _)| key.trim() == id)
            .or_else(|| {
                self.businesses
                    .iter()
                    .find(|(key, _)| key.trim().to_lowercase() == name)
            });
        if let Some((_, over)) = found {
            rule.status = over.status.or(rule.status);
            rule.draft_above = over.draft_above.or(rule.draft_above);
            rule.draft_below = over.draft_below.or(rule.draft_below);
        }
        rule
    }

    /// The Reckon status for `invoice` when its status mapping gives `mapped`: for an
    /// invoice still owing in Cliniko, the rule's status (else `mapped`), and Draft when its
    /// total is above `draft_above` or below `draft_below`; any other invoice keeps `mapped`.
    pub fn status(
        &self,
        invoice: &Invoice,
        business: Option<&Business>,
        mapped: ReckonInvoiceStatus,
    ) -> ReckonInvoiceStatus {
        // A credit note used on it must be allocated, and Reckon allocates credit only to
        // an approved invoice.
        if invoice.status != InvoiceStatus::Open || invoice.used_reversals().next().is_some() {
            return mapped;
        }
        let rule = self.rule_for(business);
        let total = invoice.total_amount;
        let outside = rule.draft_above.is_some_and(|limit| total > limit)
            || rule.draft_below.is_some_and(|limit| total < limit);
        if outside {
            ReckonInvoiceStatus::Draft
        } else {
            rule.status.map(Into::into).unwrap_or(mapped)
        }
    }
}

/// A name of something in the Reckon book: trimmed, not empty, at most 50 characters
/// (Reckon's limit for payment terms).
fn name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    let text = String::deserialize(d)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(D::Error::custom("expected a name, got an empty string"));
    }
    if text.chars().count() > 50 {
        return Err(D::Error::custom(format!(
            "expected a name of at most 50 characters, got {}",
            text.chars().count()
        )));
    }
    Ok(Some(text.to_string()))
}

/// A template's name in the Reckon book: trimmed, not empty.
fn template_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    let text = String::deserialize(d)?;
    match text.trim() {
        "" => Err(D::Error::custom("expected a name, got an empty string")),
        t => Ok(Some(t.to_string())),
    }
}

/// A non-negative amount of money in whole cents, given as a TOML number or a string
/// (`500`, `499.95`, `"499.95"`).
fn money<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    use serde::de::Error;
    let value = toml::Value::deserialize(d)?;
    let amount = match &value {
        toml::Value::Integer(n) => Decimal::from(*n),
        toml::Value::Float(f) => Decimal::try_from(*f)
            .map_err(|_| D::Error::custom(format!("expected an amount of money, got {f}")))?
            .round_dp(10)
            .normalize(),
        toml::Value::String(s) => s
            .trim()
            .parse::<Decimal>()
            .map_err(|_| D::Error::custom(format!("expected an amount of money, got {s:?}")))?,
        other => {
            return Err(D::Error::custom(format!(
                "expected an amount of money, got {other}"
            )));
        }
    };
    if amount.is_sign_negative() {
        return Err(D::Error::custom(format!(
            "expected an amount of money of 0 or more, got {amount}"
        )));
    }
    if amount.normalize().scale() > 2 {
        return Err(D::Error::custom(format!(
            "expected whole cents, got {amount}"
        )));
    }
    Ok(Some(amount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ClinikoId;
    use crate::domain::Discount;
    use crate::mapping::invoice::testkit::{LineSpec, invoice};

    fn open_invoice(total_ex_gst: i64) -> Invoice {
        invoice(
            &[LineSpec {
                unit_price: Decimal::new(total_ex_gst, 0),
                quantity: Decimal::ONE,
                discount: Discount::None,
                rate: Decimal::TEN,
            }],
            false,
        )
    }

    fn business(id: u64, name: &str) -> Business {
        Business {
            id: ClinikoId(id),
            name: name.into(),
            time_zone: None,
        }
    }

    #[test]
    fn thresholds_put_invoices_outside_them_in_draft_and_settled_ones_stay_approved() {
        let rules = InvoicingRules {
            approval: ApprovalRule {
                status: None,
                draft_above: Some(Decimal::new(500, 0)),
                draft_below: Some(Decimal::new(1, 2)),
            },
            ..InvoicingRules::default()
        };
        let approved = ReckonInvoiceStatus::Approved;
        // 100 + GST = 110: inside.
        assert_eq!(rules.status(&open_invoice(100), None, approved), approved);
        // 1000 + GST = 1100: above.
        let big = open_invoice(1000);
        assert_eq!(
            rules.status(&big, None, approved),
            ReckonInvoiceStatus::Draft
        );
        // Zero: below 0.01.
        assert_eq!(
            rules.status(&open_invoice(0), None, approved),
            ReckonInvoiceStatus::Draft
        );
        // One with a credit note used on it is approved: Reckon allocates only to those.
        let mut credited = big.clone();
        credited.reversals.push(crate::domain::Reversal {
            id: ClinikoId(99),
            number: 77,
            status: InvoiceStatus::Closed,
            total_amount: Decimal::new(-1100, 0),
            created_at: credited.created_at,
        });
        assert_eq!(rules.status(&credited, None, approved), approved);
        // A paid invoice keeps what its status mapping says, whatever its total.
        let mut paid = big;
        paid.status = InvoiceStatus::Paid;
        assert_eq!(rules.status(&paid, None, approved), approved);
    }

    #[test]
    fn a_business_override_replaces_only_the_keys_it_sets() {
        let rules = InvoicingRules {
            approval: ApprovalRule {
                status: Some(ApprovalStatus::Approved),
                draft_above: Some(Decimal::new(500, 0)),
                draft_below: None,
            },
            businesses: BTreeMap::from([(
                " bondi junction ".to_string(),
                ApprovalRule {
                    status: Some(ApprovalStatus::Draft),
                    ..ApprovalRule::default()
                },
            )]),
            ..InvoicingRules::default()
        };
        let bondi = business(7, "Bondi Junction");
        let manly = business(8, "Manly");
        let small = open_invoice(100);
        let approved = ReckonInvoiceStatus::Approved;
        assert_eq!(
            rules.status(&small, Some(&bondi), approved),
            ReckonInvoiceStatus::Draft
        );
        assert_eq!(rules.status(&small, Some(&manly), approved), approved);
        assert_eq!(
            rules.rule_for(Some(&bondi)).draft_above,
            Some(Decimal::new(500, 0)),
            "the clinic's threshold still applies"
        );
        let by_id = InvoicingRules {
            businesses: BTreeMap::from([(
                "8".to_string(),
                ApprovalRule {
                    status: Some(ApprovalStatus::Draft),
                    ..ApprovalRule::default()
                },
            )]),
            ..rules
        };
        assert_eq!(
            by_id.status(&small, Some(&manly), approved),
            ReckonInvoiceStatus::Draft
        );
    }

    #[test]
    fn business_keys_must_name_one_business_each() {
        let businesses = [business(7, "Bondi Junction"), business(8, "Manly")];
        let rules = |keys: &[&str]| InvoicingRules {
            businesses: keys
                .iter()
                .map(|k| (k.to_string(), ApprovalRule::default()))
                .collect(),
            ..InvoicingRules::default()
        };
        assert_eq!(
            rules(&["bondi junction", "8"]).check_businesses(&businesses),
            Ok(())
        );
        let typo = rules(&["Bondi Juntion"])
            .check_businesses(&businesses)
            .unwrap_err();
        assert!(
            typo.starts_with("invoicing.businesses.\"Bondi Juntion\": Cliniko has no business")
                && typo.contains("\"Manly\" (8)"),
            "{typo}"
        );
        let twice = rules(&["7", "Bondi Junction"])
            .check_businesses(&businesses)
            .unwrap_err();
        assert!(
            twice.contains("both name business \"Bondi Junction\""),
            "{twice}"
        );
    }
}
