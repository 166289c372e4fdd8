//! Checks the ledger accounts the configuration names against the book before syncing, so a
//! chart of accounts that differs from the defaults costs a warning, not every item failing.

use crate::domain::{LedgerAccount, PaymentTerm};
use crate::mapping::MappingConfig;

/// The account to use for one configured name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChoice {
    /// What to send to Reckon (the account's name as the book spells it).
    pub name: String,
    /// Set when the configured account was not found and another was chosen.
    pub note: Option<String>,
}

/// Finds `configured` (by id or name, case-insensitively, active accounts only); otherwise
/// the first active account whose `accountType` starts with `type_prefix` (e.g. `Income`,
/// `CurrentAsset_Bank`). `purpose` names the setting in messages.
pub fn choose_account(
    accounts: &[LedgerAccount],
    configured: &str,
    type_prefix: &str,
    purpose: &str,
) -> Result<AccountChoice, String> {
    let wanted = configured.trim();
    let active = accounts.iter().filter(|a| a.active);
    if let Some(found) = active.clone().find(|a| {
        a.id.to_string().eq_ignore_ascii_case(wanted) || a.name.eq_ignore_ascii_case(wanted)
    }) {
        // The book has it, so it is used; an account of another kind is likely a slip.
        let note = (!found.account_type.starts_with(type_prefix)).then(|| {
            format!(
                "{purpose}: {:?} is a {} account, not {type_prefix}; using it as configured",
                found.name, found.account_type
            )
        });
        return Ok(AccountChoice {
            name: found.name.clone(),
            note,
        });
    }
    // Reckon's own clearing account for receipts, when the book has it, before any other
    // bank account.
    let preferred = (type_prefix == "CurrentAsset_Bank")
        .then(|| {
            active.clone().find(|a| {
                a.account_type.starts_with(type_prefix)
                    && a.name.eq_ignore_ascii_case("Undeposited Funds")
            })
        })
        .flatten();
    match preferred.or_else(|| {
        active
            .clone()
            .find(|a| a.account_type.starts_with(type_prefix))
    }) {
        Some(fallback) => Ok(AccountChoice {
            name: fallback.name.clone(),
            note: Some(format!(
                "{purpose}: the book has no active account {wanted:?}; using {:?} ({})",
                fallback.name, fallback.account_type
            )),
        }),
        None => Err(format!(
            "{purpose}: the book has no active account {wanted:?} and no {type_prefix} account to use instead"
        )),
    }
}

/// Checks both income accounts of `mapping` against the book's chart (see
/// [`choose_account`]), replacing each the book lacks; `settings` name the two settings
/// (product, service) in messages. Returns the notes about replaced accounts.
pub fn choose_income_accounts(
    accounts: &[LedgerAccount],
    mapping: &mut MappingConfig,
    settings: [&str; 2],
) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    for (account, purpose) in [
        &mut mapping.product_income_account,
        &mut mapping.service_income_account,
    ]
    .into_iter()
    .zip(settings)
    {
        let choice = choose_account(accounts, account, "Income", purpose)?;
        notes.extend(choice.note);
        *account = choice.name;
    }
    // A write-off posted to a stand-in account would misstate the books: it must exist.
    if let Some(wanted) = mapping.write_off_account.as_mut() {
        let found = accounts.iter().filter(|a| a.active).find(|a| {
            a.id.to_string().eq_ignore_ascii_case(wanted.trim())
                || a.name.eq_ignore_ascii_case(wanted.trim())
        });
        match found {
            Some(a) => *wanted = a.name.clone(),
            None => {
                return Err(format!(
                    "{}: the book has no active account {:?}",
                    mapping.account_keys.write_off,
                    wanted.trim()
                ));
            }
        }
    }
    // An item's own account is a deliberate choice: no stand-in, it must exist.
    for (item, wanted) in mapping.item_accounts.iter_mut() {
        let found = accounts.iter().filter(|a| a.active).find(|a| {
            a.id.to_string().eq_ignore_ascii_case(wanted.trim())
                || a.name.eq_ignore_ascii_case(wanted.trim())
        });
        match found {
            Some(a) => *wanted = a.name.clone(),
            None => {
                return Err(format!(
                    "accounts.items.{item:?}: the book has no active account {:?}",
                    wanted.trim()
                ));
            }
        }
    }
    Ok(notes)
}

/// What each checked account is called in the configuration, for messages.
#[derive(Debug, Clone, Copy)]
pub struct AccountSettings {
    pub product_income: &'static str,
    pub service_income: &'static str,
    pub receipt: &'static str,
}

/// The one account check, as every shell runs it before syncing: the income accounts and
/// the write-off account of `mapping` and the receipt account, against the book's chart
/// (`chart`, or why it could not be read). One policy everywhere: an account the book lacks
/// is replaced by an active one of the right type, with a note; none of that type, or a
/// missing write-off account, is an error; a chart that cannot be read (Reckon down, not
/// connected yet) keeps the configured names, with a note, and the first write says what
/// is wrong.
pub fn check_accounts(
    chart: Result<&[LedgerAccount], String>,
    mapping: &mut MappingConfig,
    receipt_account: &mut String,
    settings: AccountSettings,
) -> Result<Vec<String>, String> {
    let accounts = match chart {
        Ok(accounts) => accounts,
        Err(why) => {
            return Ok(vec![format!(
                "cannot read the Reckon chart of accounts ({why}); keeping the configured accounts"
            )]);
        }
    };
    let mut notes = choose_income_accounts(
        accounts,
        mapping,
        [settings.product_income, settings.service_income],
    )?;
    let receipt = choose_account(
        accounts,
        receipt_account,
        "CurrentAsset_Bank",
        settings.receipt,
    )?;
    notes.extend(receipt.note);
    *receipt_account = receipt.name;
    Ok(notes)
}

/// Checks `invoicing.payment_terms` against the book's terms (or why they could not be
/// read): spells it as the book does and records the term's id, which customers are given.
/// Terms the book lacks are an error (a stand-in would misstate every due date); terms that
/// cannot be read now keep the configured name, with a note, and Reckon's answer to the
/// first customer says more.
pub fn check_payment_terms(
    terms: Result<&[PaymentTerm], String>,
    mapping: &mut MappingConfig,
) -> Result<Vec<String>, String> {
    let rules = &mut mapping.invoicing;
    let Some(wanted) = rules.payment_terms.as_mut() else {
        return Ok(Vec::new());
    };
    let terms = match terms {
        Ok(terms) => terms,
        Err(why) => {
            return Ok(vec![format!(
                "cannot read the Reckon payment terms ({why}); keeping invoicing.payment_terms {wanted:?}"
            )]);
        }
    };
    match terms
        .iter()
        .find(|t| t.active && t.name.trim().to_lowercase() == wanted.trim().to_lowercase())
    {
        Some(t) => {
            *wanted = t.name.clone();
            rules.payment_terms_id = Some(t.id.clone());
            Ok(Vec::new())
        }
        None => Err(format!(
            "invoicing.payment_terms: the book has no active payment terms {:?} (it has: {})",
            wanted.trim(),
            terms
                .iter()
                .filter(|t| t.active)
                .map(|t| format!("{:?}", t.name))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ReckonId;

    fn account(n: u128, name: &str, kind: &str, active: bool) -> LedgerAccount {
        LedgerAccount {
            id: ReckonId(uuid::Uuid::from_u128(n)),
            name: name.into(),
            account_type: kind.into(),
            active,
        }
    }

    #[test]
    fn configured_accounts_are_found_by_name_or_id_else_by_type() {
        let book = [
            account(1, "Cheque Account", "CurrentAsset_Bank", true),
            account(2, "Old Sales", "Income", false),
            account(3, "Treatment Income", "Income", true),
        ];
        let by_name = choose_account(&book, "treatment income", "Income", "income").unwrap();
        assert_eq!(
            by_name,
            AccountChoice {
                name: "Treatment Income".into(),
                note: None
            }
        );
        let by_id = choose_account(&book, &uuid::Uuid::from_u128(1).to_string(), "X", "r").unwrap();
        assert_eq!(by_id.name, "Cheque Account");
        let fallback =
            choose_account(&book, "Sales", "Income", "mapping.product_income_account").unwrap();
        assert_eq!(
            fallback.name, "Treatment Income",
            "inactive accounts are not used"
        );
        assert!(
            fallback
                .note
                .unwrap()
                .contains("mapping.product_income_account")
        );
        let none = choose_account(&book, "Sales", "Expense", "x").unwrap_err();
        assert!(none.contains("no Expense account"), "{none}");
    }

    #[test]
    fn income_accounts_the_book_lacks_are_replaced_with_a_note_naming_the_setting() {
        let book = [
            account(1, "Income", "Income", true),
            account(2, "Treatment Income", "Income", true),
        ];
        let mut mapping = MappingConfig::default();
        let notes =
            choose_income_accounts(&book, &mut mapping, ["PRODUCT_SETTING", "SERVICE_SETTING"])
                .unwrap();
        assert_eq!(
            mapping.product_income_account, "Income",
            "Sales is not in the book"
        );
        assert_eq!(mapping.service_income_account, "Income");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("PRODUCT_SETTING"), "{notes:?}");
        let mut none = MappingConfig::default();
        assert!(choose_income_accounts(&[], &mut none, ["a", "b"]).is_err());
    }

    const NAMES: AccountSettings = AccountSettings {
        product_income: "mapping.product_income_account",
        service_income: "mapping.service_income_account",
        receipt: "reckon.receipt_account",
    };

    #[test]
    fn one_check_one_policy() {
        let book = [
            account(1, "Income", "Income", true),
            account(2, "Cheque Account", "CurrentAsset_Bank", true),
        ];
        let mut mapping = MappingConfig::default();
        let mut receipt = "Undeposited Funds".to_string();
        let notes = check_accounts(Ok(&book), &mut mapping, &mut receipt, NAMES).unwrap();
        assert_eq!(
            receipt, "Cheque Account",
            "replaced by one of the right type"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("reckon.receipt_account")),
            "{notes:?}"
        );
        // Unreadable chart: the configured names stand, with a note.
        let mut kept = MappingConfig::default();
        let mut receipt = "Undeposited Funds".to_string();
        let notes = check_accounts(Err("503".into()), &mut kept, &mut receipt, NAMES).unwrap();
        assert_eq!(
            (kept, receipt.as_str()),
            (MappingConfig::default(), "Undeposited Funds")
        );
        assert_eq!(notes.len(), 1);
        // No bank account at all: an error naming the setting.
        let no_bank = [account(1, "Income", "Income", true)];
        let err = check_accounts(
            Ok(&no_bank),
            &mut MappingConfig::default(),
            &mut "Undeposited Funds".to_string(),
            NAMES,
        )
        .unwrap_err();
        assert!(err.starts_with("reckon.receipt_account"), "{err}");
    }

    #[test]
    fn a_write_off_account_must_exist_exactly() {
        let book = [
            account(1, "Income", "Income", true),
            account(2, "Bad Debts", "Expense", true),
        ];
        let mut mapping = MappingConfig {
            write_off_account: Some("bad debts".into()),
            ..MappingConfig::default()
        };
        choose_income_accounts(&book, &mut mapping, ["a", "b"]).unwrap();
        assert_eq!(mapping.write_off_account.as_deref(), Some("Bad Debts"));
        let mut missing = MappingConfig {
            write_off_account: Some("Write-offs".into()),
            ..MappingConfig::default()
        };
        let err = choose_income_accounts(&book, &mut missing, ["a", "b"]).unwrap_err();
        assert!(err.starts_with("mapping.write_off_account"), "{err}");
    }

    #[test]
    fn payment_terms_are_spelled_as_the_book_does_and_unknown_ones_stop() {
        let term = |id: &str, name: &str, active| PaymentTerm {
            id: id.into(),
            name: name.into(),
            active,
        };
        let terms = vec![
            term("t-14", "14 days net", true),
            term("t-old", "Old terms", false),
        ];
        let mut mapping = MappingConfig::default();
        assert_eq!(check_payment_terms(Ok(&terms), &mut mapping), Ok(vec![]));
        mapping.invoicing.payment_terms = Some(" 14 DAYS NET ".into());
        assert_eq!(check_payment_terms(Ok(&terms), &mut mapping), Ok(vec![]));
        assert_eq!(
            mapping.invoicing.payment_terms.as_deref(),
            Some("14 days net")
        );
        assert_eq!(mapping.invoicing.payment_terms_id.as_deref(), Some("t-14"));

        mapping.invoicing.payment_terms = Some("Old terms".into());
        let err = check_payment_terms(Ok(&terms), &mut mapping).unwrap_err();
        assert!(
            err.starts_with(
                "invoicing.payment_terms: the book has no active payment terms \"Old terms\""
            ) && err.contains("\"14 days net\""),
            "{err}"
        );
        let notes = check_payment_terms(Err("Reckon is down".into()), &mut mapping).unwrap();
        assert!(
            notes[0].contains("keeping invoicing.payment_terms"),
            "{notes:?}"
        );
    }

    #[test]
    fn an_items_own_account_must_be_in_the_book_and_messages_name_the_key_used() {
        let chart = vec![
            account(1, "Sales", "Income", true),
            account(2, "Income", "Income", true),
            account(3, "Initial Consultations", "Income", true),
            account(4, "Undeposited Funds", "CurrentAsset_Bank", true),
        ];
        let mut mapping = MappingConfig::default();
        mapping
            .item_accounts
            .insert("Initial consult".into(), "initial consultations".into());
        let mut receipt = "Undeposited Funds".to_string();
        let keys = |m: &MappingConfig| AccountSettings {
            product_income: m.account_keys.product_income,
            service_income: m.account_keys.service_income,
            receipt: m.account_keys.receipt,
        };
        let settings = keys(&mapping);
        assert_eq!(
            check_accounts(Ok(&chart), &mut mapping, &mut receipt, settings),
            Ok(vec![])
        );
        assert_eq!(
            mapping
                .item_accounts
                .get("Initial consult")
                .map(String::as_str),
            Some("Initial Consultations"),
            "spelled as the book does"
        );
        mapping
            .item_accounts
            .insert("Massage".into(), "Massage Income".into());
        let settings = keys(&mapping);
        let err = check_accounts(Ok(&chart), &mut mapping, &mut receipt, settings).unwrap_err();
        assert_eq!(
            err,
            "accounts.items.\"Massage\": the book has no active account \"Massage Income\""
        );
        mapping.item_accounts.remove("Massage");
        mapping.write_off_account = Some("Bad Debts".into());
        mapping.account_keys.write_off = "accounts.write_off";
        let settings = keys(&mapping);
        let err = check_accounts(Ok(&chart), &mut mapping, &mut receipt, settings).unwrap_err();
        assert!(err.starts_with("accounts.write_off: "), "{err}");
    }

    #[test]
    fn a_wrong_kind_of_account_is_noted_and_receipts_fall_back_to_undeposited_funds() {
        let chart = vec![
            account(1, "Cheque Account", "CurrentAsset_Bank", true),
            account(2, "Undeposited Funds", "CurrentAsset_Bank", true),
            account(3, "Income", "Income", true),
        ];
        let choice =
            choose_account(&chart, "Cheque Account", "Income", "accounts.services").unwrap();
        assert_eq!(choice.name, "Cheque Account");
        assert!(
            choice
                .note
                .as_deref()
                .is_some_and(|n| n.contains("is a CurrentAsset_Bank account, not Income")),
            "{choice:?}"
        );
        let receipt =
            choose_account(&chart, "Clearing", "CurrentAsset_Bank", "accounts.receipt").unwrap();
        assert_eq!(receipt.name, "Undeposited Funds");
    }
}
