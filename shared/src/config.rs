//! One clinic's configuration, the same schema everywhere: the clinic's TOML file locally
//! (`cliniko-reckon --config`), the tenant item's TOML text on AWS. Parsing names the key of
//! any error (`sync.overlap_seconds: expected …`); unknown keys are refused so a typo never
//! passes silently.

use crate::mapping::MappingConfig;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantConfig {
    pub cliniko: ClinikoSection,
    pub reckon: ReckonSection,
    pub mapping: MappingConfig,
    /// The approval workflow (`crate::mapping::approval`); folded into `mapping` on parsing.
    pub invoicing: crate::mapping::approval::InvoicingRules,
    /// How customers are named (`crate::mapping::CustomerRules`); folded into `mapping`.
    pub customers: crate::mapping::CustomerRules,
    /// The ledger accounts (`[accounts]`); folded into `mapping` and `reckon`.
    pub accounts: AccountsSection,
    /// Cliniko taxes → Reckon tax codes (`[taxes]`); folded into `mapping`.
    pub taxes: TaxesSection,
    pub sync: SyncSection,
}

/// `[taxes]`: which Reckon tax code each Cliniko tax becomes. A taxed line whose tax is not
/// listed is never guessed: its invoice waits, naming the tax.
///
/// ```toml
/// [taxes]
/// untaxed = "FRE"          # lines and items with no tax or a 0% one (default FRE)
/// [taxes.codes]            # Cliniko tax name = Reckon tax code (default GST = "GST")
/// GST = "GST"
/// "Input taxed" = "INP"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaxesSection {
    pub untaxed: Option<String>,
    pub codes: Option<std::collections::BTreeMap<String, String>>,
}

/// `[accounts]`: the ledger accounts, by name or id as in the Reckon book.
///
/// ```toml
/// [accounts]
/// services = "Consultation Fees"   # billable items (and invoice lines that name none)
/// products = "Product Sales"
/// receipt = "Undeposited Funds"    # where payments of invoices paid in Cliniko go
/// write_off = "Bad Debts"          # write-offs of Closed invoices' remainders
/// [accounts.items]                 # a billable item or product, by name or id
/// "Initial consultation" = "Initial Consultations"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsSection {
    pub services: Option<String>,
    pub products: Option<String>,
    pub receipt: Option<String>,
    pub write_off: Option<String>,
    pub items: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClinikoSection {
    pub api_key: Option<String>,
    pub base_url: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReckonSection {
    pub api_base_url: Option<String>,
    pub identity_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub subscription_key: Option<String>,
    pub book_id: Option<String>,
    pub refresh_token: Option<String>,
    pub redirect_uri: Option<String>,
    /// Bank or clearing account that receives payments of invoices Cliniko marks paid.
    pub receipt_account: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSection {
    /// How far back each poll re-reads before the watermark, in seconds (0–3600).
    #[serde(deserialize_with = "overlap_seconds")]
    pub overlap_seconds: i64,
    /// Cliniko's documented limit is 200 per minute per user (1–10000).
    #[serde(deserialize_with = "per_minute")]
    pub cliniko_requests_per_minute: u32,
    /// Reckon does not document its limit; 60 per minute is a cautious default (0 = no
    /// pacing, up to 10000).
    #[serde(deserialize_with = "per_minute_or_zero")]
    pub reckon_requests_per_minute: u32,
}

/// A whole number from the configuration within `min..=max`, with a message that says
/// what was expected and what was found (serde adds the key's path).
fn whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
    what: &'static str,
    min: i64,
    max: i64,
) -> Result<i64, D::Error> {
    use serde::de::Error;
    let value = toml::Value::deserialize(d)?;
    let n = match &value {
        toml::Value::Integer(n) => *n,
        toml::Value::String(s) => {
            return Err(D::Error::custom(format!("expected {what}, got {s:?}")));
        }
        other => return Err(D::Error::custom(format!("expected {what}, got {other}"))),
    };
    if !(min..=max).contains(&n) {
        return Err(D::Error::custom(format!(
            "expected {what} from {min} to {max}, got {n}"
        )));
    }
    Ok(n)
}

fn overlap_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    whole_number(d, "a whole number of seconds", 0, 3600)
}

fn per_minute<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    whole_number(d, "a whole number of requests per minute", 1, 10_000).map(|n| n as u32)
}

fn per_minute_or_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    whole_number(d, "a whole number of requests per minute", 0, 10_000).map(|n| n as u32)
}

/// Reads the TOML configuration; an error names the key (`sync.overlap_seconds: …`).
pub fn parse_tenant_config(text: &str) -> Result<TenantConfig, String> {
    let de = toml::Deserializer::parse(text).map_err(|e| e.message().to_string())?;
    let mut config: TenantConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().to_string();
        if path.is_empty() || path == "." {
            message
        } else {
            format!("{path}: {message}")
        }
    })?;
    // Two keys for one choice would leave the reader guessing which wins.
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| e.message().to_string())?;
    let open_status_mapped = table
        .get("mapping")
        .and_then(|m| m.get("invoice_statuses"))
        .and_then(|s| s.get("open"))
        .is_some();
    if open_status_mapped && config.invoicing.approval.status.is_some() {
        return Err(
            "invoicing.status and mapping.invoice_statuses.open both set the status of open invoices: keep invoicing.status".into(),
        );
    }
    // Thresholds that leave no total between them would hold every invoice as Draft.
    let levels = std::iter::once(("invoicing".to_string(), &config.invoicing.approval)).chain(
        config
            .invoicing
            .businesses
            .iter()
            .map(|(k, r)| (format!("invoicing.businesses.{k:?}"), r)),
    );
    for (key, rule) in levels {
        if let (Some(above), Some(below)) = (rule.draft_above, rule.draft_below)
            && below > above
        {
            return Err(format!(
                "{key}: draft_below {below} is above draft_above {above}, so every invoice would wait as Draft (use status = \"Draft\" for that)"
            ));
        }
    }
    config.mapping.invoicing = config.invoicing.clone();
    config.mapping.customers = config.customers.clone();
    fold_accounts(&mut config, &table)?;
    fold_taxes(&mut config, &table)?;
    Ok(config)
}

/// Moves `[accounts]` into the places the sync reads (the mapping, the Reckon client's
/// receipt account), refusing a second key for the same account.
fn fold_accounts(config: &mut TenantConfig, table: &toml::Table) -> Result<(), String> {
    let given = |section: &str, key: &str| table.get(section).and_then(|s| s.get(key)).is_some();
    let both = |new: &str, old: &str| {
        format!("accounts.{new} and {old} both name one account: keep accounts.{new}")
    };
    let clean = |key: &str, v: &str| match v.trim() {
        "" => Err(format!(
            "accounts.{key}: expected an account name or id, got an empty string"
        )),
        t => Ok(t.to_string()),
    };
    let a = &config.accounts;
    let m = &mut config.mapping;
    if let Some(v) = &a.services {
        if given("mapping", "service_income_account") {
            return Err(both("services", "mapping.service_income_account"));
        }
        m.service_income_account = clean("services", v)?;
        m.account_keys.service_income = "accounts.services";
    }
    if let Some(v) = &a.products {
        if given("mapping", "product_income_account") {
            return Err(both("products", "mapping.product_income_account"));
        }
        m.product_income_account = clean("products", v)?;
        m.account_keys.product_income = "accounts.products";
    }
    if let Some(v) = &a.write_off {
        if given("mapping", "write_off_account") {
            return Err(both("write_off", "mapping.write_off_account"));
        }
        m.write_off_account = Some(clean("write_off", v)?);
        m.account_keys.write_off = "accounts.write_off";
    }
    if let Some(v) = &a.receipt {
        if given("reckon", "receipt_account") {
            return Err(both("receipt", "reckon.receipt_account"));
        }
        config.reckon.receipt_account = Some(clean("receipt", v)?);
        m.account_keys.receipt = "accounts.receipt";
    }
    for (item, account) in &a.items {
        let account = clean(&format!("items.{item:?}"), account)?;
        m.item_accounts.insert(item.trim().to_string(), account);
    }
    Ok(())
}

/// Moves `[taxes]` into the mapping, refusing a second key for the same choice.
fn fold_taxes(config: &mut TenantConfig, table: &toml::Table) -> Result<(), String> {
    let given = |key: &str| table.get("mapping").and_then(|m| m.get(key)).is_some();
    let t = &config.taxes;
    if let Some(untaxed) = &t.untaxed {
        if given("tax_free_code") {
            return Err("taxes.untaxed and mapping.tax_free_code both set the code for untaxed lines: keep taxes.untaxed".into());
        }
        match untaxed.trim() {
            "" => {
                return Err(
                    "taxes.untaxed: expected a Reckon tax code, got an empty string".into(),
                );
            }
            code => config.mapping.tax_free_code = code.to_string(),
        }
    }
    if let Some(codes) = &t.codes {
        if given("tax_codes") {
            return Err(
                "taxes.codes and mapping.tax_codes both map Cliniko taxes: keep taxes.codes".into(),
            );
        }
        let mut mapped = std::collections::BTreeMap::new();
        for (tax, code) in codes {
            match code.trim() {
                "" => {
                    return Err(format!(
                        "taxes.codes.{tax:?}: expected a Reckon tax code, got an empty string"
                    ));
                }
                code => {
                    mapped.insert(tax.trim().to_string(), code.to_string());
                }
            }
        }
        config.mapping.tax_codes = mapped;
    }
    Ok(())
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            overlap_seconds: 120,
            cliniko_requests_per_minute: 200,
            reckon_requests_per_minute: 60,
        }
    }
}

impl TenantConfig {
    /// The keys holding a credential. A deployment that keeps credentials in a secret store
    /// (AWS Secrets Manager) refuses a configuration that carries any of them, so a key never
    /// sits in plain text beside the clinic's settings.
    pub fn credential_keys(&self) -> Vec<&'static str> {
        let mut found = Vec::new();
        let present = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
        if present(&self.cliniko.api_key) {
            found.push("cliniko.api_key");
        }
        for (key, value) in [
            ("reckon.client_id", &self.reckon.client_id),
            ("reckon.client_secret", &self.reckon.client_secret),
            ("reckon.subscription_key", &self.reckon.subscription_key),
            ("reckon.refresh_token", &self.reckon.refresh_token),
        ] {
            if present(value) {
                found.push(key);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key_and_unknown_keys_are_refused() {
        let e = parse_tenant_config("[sync]\noverlap_seconds = 99999\n").err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("sync.overlap_seconds: expected")),
            "{e:?}"
        );
        let e = parse_tenant_config("[reckon]\nbook = \"x\"\n").err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("unknown field `book`")),
            "{e:?}"
        );
    }

    #[test]
    fn credentials_in_the_configuration_are_found_by_key() {
        let config = parse_tenant_config(
            "[cliniko]\nuser_agent = \"A (a@b.c)\"\napi_key = \"k\"\n[reckon]\nbook_id = \"b\"\nclient_secret = \"s\"\n",
        );
        assert_eq!(
            config.map(|c| c.credential_keys()).ok(),
            Some(vec!["cliniko.api_key", "reckon.client_secret"])
        );
        let clean = parse_tenant_config("[reckon]\nbook_id = \"b\"\n[mapping]\n");
        assert_eq!(clean.map(|c| c.credential_keys().len()).ok(), Some(0));
    }

    #[test]
    fn invoicing_rules_are_read_checked_and_reach_the_mapping() {
        let config = parse_tenant_config(
            "[invoicing]\nstatus = \"Draft\"\ndraft_above = 500\ndraft_below = \"0.01\"\n[invoicing.businesses.\"Bondi Junction\"]\nstatus = \"Approved\"\n",
        )
        .expect("valid");
        let rules = &config.mapping.invoicing;
        assert_eq!(
            rules.approval.status,
            Some(crate::mapping::approval::ApprovalStatus::Draft)
        );
        assert_eq!(
            rules.approval.draft_above,
            Some(rust_decimal::Decimal::new(500, 0))
        );
        assert_eq!(
            rules.approval.draft_below,
            Some(rust_decimal::Decimal::new(1, 2))
        );
        assert_eq!(rules.businesses.len(), 1);
        let customers = parse_tenant_config(
            "[customers]\nname_format = \"last_first\"\ncollision = \"cliniko_id\"\n",
        )
        .expect("valid");
        assert_eq!(
            customers.mapping.customers.name_format,
            crate::mapping::NameFormat::LastFirst
        );
        assert_eq!(
            customers.mapping.customers.collision,
            crate::mapping::Collision::ClinikoId
        );
        let named = parse_tenant_config(
            "[invoicing]\ntemplate = \" Professional invoice \"\npayment_terms = \"14 days net\"\n",
        )
        .expect("valid");
        assert_eq!(
            named.mapping.invoicing.template.as_deref(),
            Some("Professional invoice")
        );
        assert_eq!(
            named.mapping.invoicing.payment_terms.as_deref(),
            Some("14 days net")
        );
        let appointments = parse_tenant_config(
            "[invoicing]\nsource = \"completed_appointments\"\ncompleted_when = \"ended\"\ngrace_minutes = 15\nwithdraw = \"draft\"\n",
        )
        .expect("valid");
        {
            use crate::mapping::appointment::*;
            assert_eq!(
                appointments.mapping.invoicing.appointments,
                AppointmentRules {
                    source: InvoicingSource::CompletedAppointments,
                    completed_when: CompletedWhen::Ended,
                    grace_minutes: 15,
                    withdraw: Withdraw::Draft,
                }
            );
            assert_eq!(
                InvoicingSource::CompletedAppointments.kinds().last(),
                Some(&crate::domain::EntityKind::Appointment)
            );
            assert!(
                !InvoicingSource::CompletedAppointments
                    .kinds()
                    .contains(&crate::domain::EntityKind::Invoice)
            );
            assert!(
                !InvoicingSource::default()
                    .kinds()
                    .contains(&crate::domain::EntityKind::Appointment)
            );
        }

        for (text, want) in [
            (
                "[invoicing]\ndraft_above = -5\n",
                "invoicing.draft_above: expected an amount of money of 0 or more",
            ),
            (
                "[invoicing]\ndraft_above = 1.005\n",
                "invoicing.draft_above: expected whole cents",
            ),
            (
                "[invoicing]\ndraft_below = \"lots\"\n",
                "invoicing.draft_below: expected an amount of money",
            ),
            (
                "[invoicing]\nstatus = \"Pending\"\n",
                "invoicing.status: unknown variant `Pending`",
            ),
            (
                "[invoicing]\nstatuss = \"Draft\"\n",
                "unknown field `statuss`",
            ),
            (
                "[invoicing]\npayment_terms = \" \"\n",
                "invoicing.payment_terms: expected a name",
            ),
            (
                "[invoicing]\ntemplate = 7\n",
                "invoicing.template: invalid type",
            ),
            (
                "[invoicing]\ndraft_above = 10\ndraft_below = 100\n",
                "invoicing: draft_below 100 is above draft_above 10",
            ),
            (
                "[invoicing]\nsource = \"appointments\"\n",
                "invoicing.source: unknown variant `appointments`",
            ),
            (
                "[invoicing]\nwithdraw = \"draft\"\n",
                "invoicing.withdraw applies only to appointment invoicing",
            ),
            (
                "[invoicing]\nsource = \"both\"\ngrace_minutes = 10\n",
                "invoicing.grace_minutes counts from an appointment's end",
            ),
            (
                "[invoicing]\nsource = \"both\"\ncompleted_when = \"ended\"\ngrace_minutes = -1\n",
                "invoicing.grace_minutes: invalid value",
            ),
            (
                "[customers]\nname_format = \"surname\"\n",
                "customers.name_format: unknown variant `surname`",
            ),
            (
                "[customers]\ncollisions = \"email\"\n",
                "unknown field `collisions`",
            ),
            (
                "[invoicing.businesses.Manly]\ndraft_abov = 5\n",
                "unknown field `draft_abov`",
            ),
            (
                "[invoicing]\nstatus = \"Draft\"\n[mapping.invoice_statuses]\nopen = \"Approved\"\n",
                "invoicing.status and mapping.invoice_statuses.open",
            ),
        ] {
            let e = parse_tenant_config(text).err().unwrap_or_default();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn accounts_reach_the_mapping_and_the_reckon_client_with_one_key_each() {
        let c = parse_tenant_config(
            "[accounts]\nservices = \"Consultation Fees\"\nproducts = \" Product Sales \"\nreceipt = \"Clearing\"\nwrite_off = \"Bad Debts\"\n[accounts.items]\n\"Initial consult\" = \"Initial Consultations\"\n",
        )
        .expect("valid");
        assert_eq!(c.mapping.service_income_account, "Consultation Fees");
        assert_eq!(c.mapping.product_income_account, "Product Sales");
        assert_eq!(c.mapping.write_off_account.as_deref(), Some("Bad Debts"));
        assert_eq!(c.reckon.receipt_account.as_deref(), Some("Clearing"));
        assert_eq!(c.mapping.account_keys.service_income, "accounts.services");
        assert_eq!(c.mapping.account_keys.receipt, "accounts.receipt");
        assert_eq!(
            c.mapping
                .item_income_account(crate::domain::ClinikoId(9), "initial CONSULT", "Income"),
            "Initial Consultations"
        );
        assert_eq!(
            c.mapping
                .item_income_account(crate::domain::ClinikoId(9), "Review", "Income"),
            "Income"
        );
        for (text, want) in [
            (
                "[accounts]\nservices = \"A\"\n[mapping]\nservice_income_account = \"B\"\n",
                "accounts.services and mapping.service_income_account both name one account",
            ),
            (
                "[accounts]\nreceipt = \"A\"\n[reckon]\nreceipt_account = \"B\"\n",
                "accounts.receipt and reckon.receipt_account",
            ),
            (
                "[accounts]\nproducts = \" \"\n",
                "accounts.products: expected an account name",
            ),
            ("[accounts]\nclearing = \"X\"\n", "unknown field `clearing`"),
        ] {
            let e = parse_tenant_config(text).err().unwrap_or_default();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn taxes_reach_the_mapping_with_one_key_each() {
        let c = parse_tenant_config(
            "[taxes]\nuntaxed = \"EXP\"\n[taxes.codes]\nGST = \"GST\"\n\"Input taxed\" = \" INP \"\n",
        )
        .expect("valid");
        assert_eq!(c.mapping.tax_free_code, "EXP");
        assert_eq!(
            c.mapping
                .tax_code(Some("input TAXED"), rust_decimal::Decimal::ZERO),
            Some("INP".to_string())
        );
        assert_eq!(
            c.mapping.tax_code(Some("VAT"), rust_decimal::Decimal::TEN),
            None,
            "an unlisted tax is never guessed"
        );
        for (text, want) in [
            (
                "[taxes]\nuntaxed = \"FRE\"\n[mapping]\ntax_free_code = \"FRE\"\n",
                "taxes.untaxed and mapping.tax_free_code",
            ),
            (
                "[taxes.codes]\nGST = \"GST\"\n[mapping.tax_codes]\nGST = \"GST\"\n",
                "taxes.codes and mapping.tax_codes",
            ),
            (
                "[taxes.codes]\nGST = \"\"\n",
                "taxes.codes.\"GST\": expected a Reckon tax code",
            ),
            ("[taxes]\ndefault = \"FRE\"\n", "unknown field `default`"),
        ] {
            let e = parse_tenant_config(text).err().unwrap_or_default();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
