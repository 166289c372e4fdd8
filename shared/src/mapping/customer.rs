//! Patient → Reckon customer.
//!
//! **Name rule.** `"{first} {last}"` from the patient's *legal* first and last names, each
//! trimmed with inner whitespace collapsed; the title (Dr, Ms…) is left out and the preferred
//! first name is used only when the legal first name is blank (an accounting record is
//! addressed to the legal name, and a customer typed into Reckon by hand usually carries
//! it). Apostrophes, hyphens, accents and non-Latin scripts are kept as they are; the order
//! is always first then last, as Cliniko stores them. An empty last name gives the first
//! name alone; a patient with no name at all becomes `"Patient {id}"`. The result is cut to
//! Reckon's 100 UTF-16 units.
//!
//! **Collisions.** Two different patients with the same name are never merged:
//! [`disambiguate`] appends the Cliniko patient id, `"{base} ({id})"`, cutting the base so the
//! whole stays within 100 units. It depends only on its inputs, so a retried create looks
//! for (and finds) the same name.
//!
//! A clinic can choose both (`[customers]`, [`CustomerRules`]): the name's order
//! (`name_format`) and a collision form bookkeepers can read (`collision = "email"`, the
//! default: `"{base} ({email})"`; the id form when the patient has no email, when another
//! customer has the same email (a family sharing one: the email would not tell them apart
//! again), or when the email form is taken). Names already given keep their form.

use super::MappingConfig;
use super::text::{
    ADDRESS_LINE_MAX, ADDRESS_LINES, ADDRESS_SHORT_MAX, EMAIL_MAX, NAME_MAX, PHONE_MAX, clean,
    clean_opt, truncate, units,
};
use crate::domain::{
    ActiveStatus, Address, ClinikoId, CustomerDraft, Patient, PhoneKind, ReckonAddress, ReckonPhone,
};

/// How a patient's customer is named (`[customers]` in a clinic's configuration).
///
/// ```toml
/// [customers]
/// name_format = "last_first"   # "first_last" (default), "last_first", "preferred_first_last"
/// collision = "email"          # "email" (default) or "cliniko_id"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustomerRules {
    pub name_format: NameFormat,
    pub collision: Collision,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameFormat {
    /// `Giulia Pham` (legal first name; the preferred one only when it is blank).
    #[default]
    FirstLast,
    /// `Pham, Giulia`.
    LastFirst,
    /// `Jules Pham`: the preferred first name when the patient has one.
    PreferredFirstLast,
}

/// What tells two patients of one name apart in Reckon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collision {
    /// `Giulia Pham (giulia@example.com)`; the id form when there is no email.
    #[default]
    Email,
    /// `Giulia Pham (1100000000000018197)`.
    ClinikoId,
}

impl CustomerRules {
    /// The customer name for a patient under this clinic's `name_format`.
    pub fn name(&self, patient: &Patient) -> String {
        let first = clean(&patient.first_name);
        let preferred = clean_opt(patient.preferred_first_name.as_deref());
        let last = clean(&patient.last_name);
        let first = match self.name_format {
            NameFormat::PreferredFirstLast => preferred.unwrap_or(first),
            _ if first.is_empty() => preferred.unwrap_or_default(),
            _ => first,
        };
        let full = match self.name_format {
            NameFormat::LastFirst if !first.is_empty() && !last.is_empty() => {
                format!("{last}, {first}")
            }
            _ => [first, last]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        };
        if full.is_empty() {
            return format!("Patient {}", patient.id);
        }
        truncate(&full, NAME_MAX)
    }

    /// The names this patient's customer may carry when `base` belongs to another
    /// customer, in the order they are tried; the id form is always last (it is unique).
    pub fn alternatives(&self, base: &str, patient: &Patient) -> Vec<String> {
        let mut names = Vec::with_capacity(2);
        // Only a real address, and only when the whole name fits beside it: a cut name or
        // a placeholder ("n/a") would tell no one apart.
        if self.collision == Collision::Email
            && let Some(email) = usable_email(patient.email.as_deref())
        {
            let base = clean(base);
            if units(&base) + units(&email) + 3 <= NAME_MAX {
                names.push(format!("{base} ({email})"));
            }
        }
        names.push(disambiguate(base, patient.id));
        names
    }
}

/// The customer name for a patient (see the module docs for the rule).
pub fn customer_name(patient: &Patient) -> String {
    let first = match clean(&patient.first_name) {
        f if f.is_empty() => clean_opt(patient.preferred_first_name.as_deref()).unwrap_or_default(),
        f => f,
    };
    let last = clean(&patient.last_name);
    let full = [first, last]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if full.is_empty() {
        return format!("Patient {}", patient.id);
    }
    truncate(&full, NAME_MAX)
}

/// A stable name for a patient whose [`customer_name`] is already taken by another
/// customer: `"{base} ({patient_id})"`, within Reckon's limit.
pub fn disambiguate(base: &str, patient_id: ClinikoId) -> String {
    let suffix = format!("({patient_id})");
    let room = NAME_MAX.saturating_sub(units(&suffix) + 1);
    let base = truncate(&clean(base), room);
    if base.is_empty() {
        format!("Patient {suffix}")
    } else {
        format!("{base} {suffix}")
    }
}

/// The Reckon customer for a patient, under the given (possibly disambiguated) name.
pub fn patient_to_customer(patient: &Patient, name: &str, cfg: &MappingConfig) -> CustomerDraft {
    customer_draft(patient, name, cfg, false)
}

/// [`patient_to_customer`] for a customer that existed in Reckon before the sync linked
/// it (`adopted`): its email is the patient's own, never replaced by an invoice address
/// (`prefer_invoice_email` applies only to customers the sync created).
pub fn customer_draft(
    patient: &Patient,
    name: &str,
    cfg: &MappingConfig,
    adopted: bool,
) -> CustomerDraft {
    let name = match truncate(&clean(name), NAME_MAX) {
        n if n.is_empty() => cfg.customers.name(patient),
        n => n,
    };
    let email = {
        let invoice = usable_email(patient.invoice_email.as_deref());
        let main = usable_email(patient.email.as_deref());
        if cfg.prefer_invoice_email && !adopted {
            invoice.or(main)
        } else {
            main.or(invoice)
        }
    };
    CustomerDraft {
        name,
        first_name: clean_opt(Some(&patient.first_name)).map(|s| truncate(&s, NAME_MAX)),
        last_name: clean_opt(Some(&patient.last_name)).map(|s| truncate(&s, NAME_MAX)),
        status: if patient.is_inactive() {
            ActiveStatus::Inactive
        } else {
            ActiveStatus::Active
        },
        email,
        addresses: map_address(&patient.address, &cfg.address_type)
            .into_iter()
            .collect(),
        phones: map_phones(patient),
        payment_terms: cfg
            .invoicing
            .payment_terms_id
            .clone()
            .or_else(|| cfg.invoicing.payment_terms.clone()),
    }
}

/// An email Reckon can hold: trimmed, with an `@`, no spaces, ≤ 100 units. A longer one is
/// left out rather than cut (a cut address would deliver to someone else).
fn usable_email(e: Option<&str>) -> Option<String> {
    let e = e?.trim();
    let ok = !e.is_empty()
        && units(e) <= EMAIL_MAX
        && !e.chars().any(char::is_whitespace)
        && e.find('@').is_some_and(|at| at > 0 && at + 1 < e.len());
    ok.then(|| e.to_string())
}

/// Cliniko's lines (up to three, 255 each) into Reckon's three lines of 80: a line too long
/// for one Reckon line wraps onto a free one at a word boundary; when more text remains than
/// lines, the rest is joined with ", " into the last line (and only then cut).
pub(crate) fn map_address(address: &Address, kind: &str) -> Option<ReckonAddress> {
    let lines: Vec<String> = address
        .lines
        .iter()
        .map(|l| clean(l))
        .filter(|l| !l.is_empty())
        .collect();
    let lines = fit_lines(&lines, ADDRESS_LINES, ADDRESS_LINE_MAX);
    let short = |s: &Option<String>, max: usize| clean_opt(s.as_deref()).map(|s| truncate(&s, max));
    let out = ReckonAddress {
        kind: kind.to_string(),
        lines,
        suburb: short(&address.city, ADDRESS_LINE_MAX),
        state: short(&address.state, ADDRESS_LINE_MAX),
        postcode: short(&address.post_code, ADDRESS_SHORT_MAX),
        country: clean_opt(address.country_code.as_deref())
            .map(|c| truncate(&country_name(&c), ADDRESS_SHORT_MAX)),
    };
    let empty = out.lines.is_empty()
        && out.suburb.is_none()
        && out.state.is_none()
        && out.postcode.is_none()
        && out.country.is_none();
    (!empty).then_some(out)
}

fn fit_lines(lines: &[String], max_lines: usize, max_len: usize) -> Vec<String> {
    // Split every line into pieces that fit, at word boundaries where possible.
    let mut pieces: Vec<Vec<String>> = lines.iter().map(|l| wrap(l, max_len)).collect();
    let needed: usize = pieces.iter().map(Vec::len).sum();
    if needed <= max_lines {
        return pieces.into_iter().flatten().collect();
    }
    // Too many: keep each original line whole-or-wrapped while room lasts, and pour the
    // remainder into the last line, comma-joined.
    let mut out: Vec<String> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    for (i, p) in pieces.iter_mut().enumerate() {
        let lines_left_after = lines.len() - i - 1;
        let room = max_lines.saturating_sub(out.len());
        if rest.is_empty() && p.len() < room && lines_left_after > 0 {
            out.append(p);
        } else {
            rest.push(lines[i].clone());
            for later in &lines[i + 1..] {
                rest.push(later.clone());
            }
            break;
        }
    }
    let room = max_lines.saturating_sub(out.len());
    let mut tail = wrap(&rest.join(", "), max_len);
    if room > 0 && tail.len() > room {
        let last = tail[room - 1..].join(" ");
        tail.truncate(room - 1);
        tail.push(truncate(&last, max_len));
    }
    out.extend(tail);
    out.truncate(max_lines);
    out
}

/// Word-wraps to `max` units (a word longer than `max` is cut into pieces).
fn wrap(line: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in line.split(' ') {
        let mut word = word.to_string();
        loop {
            let candidate = if cur.is_empty() {
                word.clone()
            } else {
                format!("{cur} {word}")
            };
            if units(&candidate) <= max {
                cur = candidate;
                break;
            }
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            // A single word longer than a line.
            let head = truncate(&word, max);
            let head = if head.is_empty() {
                word.chars().next().map(String::from).unwrap_or_default()
            } else {
                head
            };
            word = word[head.len()..].to_string();
            out.push(head);
            if word.is_empty() {
                break;
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn country_name(code: &str) -> String {
    let name = match code.to_ascii_uppercase().as_str() {
        "AU" => "Australia",
        "NZ" => "New Zealand",
        "GB" | "UK" => "United Kingdom",
        "US" => "United States",
        "CA" => "Canada",
        "IE" => "Ireland",
        "SG" => "Singapore",
        _ => return code.to_string(),
    };
    name.to_string()
}

/// One Reckon phone per type (Mobile, Home, Work, Fax), the first Cliniko number of each
/// type winning. Cliniko's `Other` numbers take a free Home, then Work slot. A number longer
/// than Reckon's 30 units, even without its spaces, is left out rather than cut.
pub(crate) fn map_phones(patient: &Patient) -> Vec<ReckonPhone> {
    const SLOTS: [(PhoneKind, &str); 4] = [
        (PhoneKind::Mobile, "Mobile"),
        (PhoneKind::Home, "Home"),
        (PhoneKind::Work, "Work"),
        (PhoneKind::Fax, "Fax"),
    ];
    let mut taken: [Option<String>; 4] = Default::default();
    let number = |raw: &str| {
        let n = clean(raw);
        if n.is_empty() {
            None
        } else if units(&n) <= PHONE_MAX {
            Some(n)
        } else {
            let compact: String = n.chars().filter(|c| !c.is_whitespace()).collect();
            (units(&compact) <= PHONE_MAX).then_some(compact)
        }
    };
    for phone in &patient.phones {
        let Some(n) = number(&phone.number) else {
            continue;
        };
        let slot = match phone.kind {
            PhoneKind::Other => [1, 2].into_iter().find(|&i| taken[i].is_none()),
            kind => SLOTS
                .iter()
                .position(|(k, _)| *k == kind)
                .filter(|&i| taken[i].is_none()),
        };
        if let Some(i) = slot {
            taken[i] = Some(n);
        }
    }
    SLOTS
        .iter()
        .zip(taken)
        .filter_map(|((_, name), n)| {
            n.map(|number| ReckonPhone {
                kind: (*name).to_string(),
                number,
            })
        })
        .collect()
}

/// A plain patient for tests elsewhere in the module.
#[cfg(test)]
pub(crate) fn test_patient() -> Patient {
    tests::patient("Test", "Patient")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Phone;
    use chrono::{TimeZone, Utc};

    pub(crate) fn patient(first: &str, last: &str) -> Patient {
        let t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        Patient {
            id: ClinikoId(1_100_000_000_000_000_123),
            title: None,
            first_name: first.into(),
            last_name: last.into(),
            preferred_first_name: None,
            email: None,
            invoice_email: None,
            address: Address::default(),
            phones: vec![],
            archived_at: None,
            merged_at: None,
            merged_into: None,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn names() {
        let cases: &[(&str, &str, &str)] = &[
            ("Seán", "O'Brien", "Seán O'Brien"),
            ("Mary-Jane", "Smith-Jones", "Mary-Jane Smith-Jones"),
            ("  Zoë  ", "  Müller ", "Zoë Müller"),
            ("Renée\tMarie", "D’Arcy", "Renée Marie D’Arcy"),
            ("伟", "王", "伟 王"),
            ("Νίκος", "Παπαδόπουλος", "Νίκος Παπαδόπουλος"),
            ("Aisha", "", "Aisha"),
            ("", "Nguyen", "Nguyen"),
            ("Kiri", "Te\u{00A0}Aho", "Kiri Te Aho"),
        ];
        for (first, last, want) in cases {
            assert_eq!(
                customer_name(&patient(first, last)),
                *want,
                "{first:?} {last:?}"
            );
        }
    }

    #[test]
    fn title_left_out_preferred_name_only_as_fallback() {
        let mut p = patient("Katherine", "Smith");
        p.title = Some("Dr".into());
        p.preferred_first_name = Some("Kate".into());
        assert_eq!(customer_name(&p), "Katherine Smith");
        p.first_name = "  ".into();
        assert_eq!(customer_name(&p), "Kate Smith");
        let mut nobody = patient(" ", "");
        nobody.preferred_first_name = Some(" ".into());
        assert_eq!(customer_name(&nobody), "Patient 1100000000000000123");
    }

    #[test]
    fn long_names_are_cut_to_the_limit() {
        let p = patient(&"Bartholomew".repeat(8), &"Featherstonehaugh".repeat(8));
        let n = customer_name(&p);
        assert_eq!(units(&n), 100);
        assert!(n.starts_with("BartholomewBartholomew"));
        let p = patient(&"王".repeat(80), &"李".repeat(80));
        assert_eq!(units(&customer_name(&p)), 100);
        // Astral-plane characters count twice, never split.
        let p = patient(&"𠀋".repeat(60), "");
        let n = customer_name(&p);
        assert_eq!(units(&n), 100);
        assert_eq!(n.chars().count(), 50);
    }

    #[test]
    fn disambiguation_is_stable_and_fits() {
        let id = ClinikoId(1_100_000_000_000_000_123);
        assert_eq!(
            disambiguate("John Smith", id),
            "John Smith (1100000000000000123)"
        );
        assert_eq!(
            disambiguate("John Smith", id),
            disambiguate("John Smith", id)
        );
        assert_ne!(
            disambiguate("John Smith", id),
            disambiguate("John Smith", ClinikoId(1))
        );
        let long = "X".repeat(100);
        let d = disambiguate(&long, id);
        assert_eq!(units(&d), 100);
        assert!(d.ends_with(" (1100000000000000123)"));
        assert_eq!(disambiguate("", ClinikoId(5)), "Patient (5)");
    }

    #[test]
    fn customer_fields() {
        let mut p = patient("Olivia", "Brown");
        p.email = Some(" olivia@example.com ".into());
        p.invoice_email = Some("accounts@brownfamily.example".into());
        let cfg = MappingConfig {
            prefer_invoice_email: true,
            ..MappingConfig::default()
        };
        let c = patient_to_customer(&p, "Olivia Brown", &cfg);
        assert_eq!(c.name, "Olivia Brown");
        assert_eq!(c.first_name.as_deref(), Some("Olivia"));
        assert_eq!(c.last_name.as_deref(), Some("Brown"));
        assert_eq!(c.email.as_deref(), Some("accounts@brownfamily.example"));
        assert_eq!(c.status, ActiveStatus::Active);
        assert!(c.addresses.is_empty());
        assert!(c.phones.is_empty());
        // A customer that existed in Reckon keeps the patient's own email.
        let adopted = customer_draft(&p, "Olivia Brown", &cfg, true);
        assert_eq!(adopted.email.as_deref(), Some("olivia@example.com"));
        // Off by default: the patient's own email.
        let c = patient_to_customer(&p, "Olivia Brown", &MappingConfig::default());
        assert_eq!(c.email.as_deref(), Some("olivia@example.com"));
        // Unusable addresses fall back or vanish.
        p.invoice_email = Some("not an email".into());
        assert_eq!(
            patient_to_customer(&p, "x", &cfg).email.as_deref(),
            Some("olivia@example.com")
        );
        p.email = Some(format!("{}@example.com", "a".repeat(95)));
        assert_eq!(patient_to_customer(&p, "x", &cfg).email, None);
        // A blank name falls back to the patient's own.
        assert_eq!(patient_to_customer(&p, "  ", &cfg).name, "Olivia Brown");
    }

    #[test]
    fn archived_or_merged_is_inactive() {
        let cfg = MappingConfig::default();
        let mut p = patient("A", "B");
        p.archived_at = Some(p.created_at);
        assert_eq!(
            patient_to_customer(&p, "A B", &cfg).status,
            ActiveStatus::Inactive
        );
        let mut p = patient("A", "B");
        p.merged_at = Some(p.created_at);
        p.merged_into = Some(ClinikoId(9));
        assert_eq!(
            patient_to_customer(&p, "A B", &cfg).status,
            ActiveStatus::Inactive
        );
    }

    fn addr(lines: &[&str]) -> Address {
        Address {
            lines: lines.iter().map(|s| s.to_string()).collect(),
            city: Some("Double Bay".into()),
            state: Some("NSW".into()),
            post_code: Some("2028".into()),
            country_code: Some("AU".into()),
        }
    }

    #[test]
    fn addresses() {
        let a = map_address(&addr(&["Unit 4", "12 Bay St", "Rear entrance"]), "Billing").unwrap();
        assert_eq!(a.kind, "Billing");
        assert_eq!(a.lines, vec!["Unit 4", "12 Bay St", "Rear entrance"]);
        assert_eq!(a.suburb.as_deref(), Some("Double Bay"));
        assert_eq!(a.state.as_deref(), Some("NSW"));
        assert_eq!(a.postcode.as_deref(), Some("2028"));
        assert_eq!(a.country.as_deref(), Some("Australia"));

        // Empty: no address at all.
        assert_eq!(map_address(&Address::default(), "Billing"), None);
        let blank = Address {
            lines: vec!["  ".into()],
            city: Some(" ".into()),
            ..Address::default()
        };
        assert_eq!(map_address(&blank, "Billing"), None);

        // One long line wraps onto free lines at word boundaries, nothing lost.
        let long = "Level 12, Suite 1204, The Harbourside Professional Centre, 88-90 Bay Street North, Double Bay Village";
        let a = map_address(&addr(&[long]), "Billing").unwrap();
        assert!(a.lines.len() >= 2);
        assert!(a.lines.iter().all(|l| units(l) <= 80));
        assert_eq!(a.lines.join(" "), long);

        // More text than lines: the rest is joined into the last line, not dropped.
        let a = map_address(
            &addr(&[&"A".repeat(70), "Building B, 1 Long Road", "Back gate"]),
            "Postal",
        )
        .unwrap();
        assert_eq!(a.lines.len(), 3);
        assert_eq!(a.lines[2], "Back gate");
        let a = map_address(
            &addr(&[
                &format!("{} {}", "a".repeat(60), "b".repeat(60)),
                "Second line",
                "Third line",
            ]),
            "Postal",
        )
        .unwrap();
        assert_eq!(a.lines.len(), 3);
        assert_eq!(a.lines[0], "a".repeat(60));
        assert_eq!(a.lines[1], "b".repeat(60));
        assert_eq!(a.lines[2], "Second line, Third line");
        // A short first line, then one that needs three lines: it wraps into the two left
        // and only the overflow is cut.
        let words = "word ".repeat(40);
        let a = map_address(&addr(&["Unit 1", words.trim()]), "Postal").unwrap();
        assert_eq!(a.lines.len(), 3);
        assert_eq!(a.lines[0], "Unit 1");
        assert!(
            a.lines[1..]
                .iter()
                .all(|l| l.starts_with("word") && units(l) <= 80)
        );
        assert!(units(&a.lines[1]) > 70);
        // Unknown country codes pass through; locality fields within their limits.
        let mut odd = addr(&["1 Rue"]);
        odd.country_code = Some("FR".into());
        odd.post_code = Some("9".repeat(40));
        let a = map_address(&odd, "Billing").unwrap();
        assert_eq!(a.country.as_deref(), Some("FR"));
        assert_eq!(units(a.postcode.as_deref().unwrap()), 30);
    }

    #[test]
    fn phones_one_per_type() {
        let mut p = patient("A", "B");
        let ph = |kind, n: &str| Phone {
            kind,
            number: n.into(),
        };
        p.phones = vec![
            ph(PhoneKind::Mobile, "0412 345 678"),
            ph(PhoneKind::Mobile, "0499 999 999"),
            ph(PhoneKind::Other, "02 9999 0000"),
            ph(PhoneKind::Work, "  02 8888  1111 "),
            ph(PhoneKind::Fax, ""),
            ph(PhoneKind::Other, "03 1111 2222"),
        ];
        let got: Vec<(String, String)> = map_phones(&p)
            .into_iter()
            .map(|r| (r.kind, r.number))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Mobile".into(), "0412 345 678".into()),
                ("Home".into(), "02 9999 0000".into()),
                ("Work".into(), "02 8888 1111".into()),
            ]
        );
        // A number too long even without spaces is left out; one that fits compacted stays.
        p.phones = vec![
            ph(PhoneKind::Home, &"1 ".repeat(20)),
            ph(PhoneKind::Fax, &"9".repeat(31)),
        ];
        let got = map_phones(&p);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, "Home");
        assert_eq!(got[0].number, "1".repeat(20));
    }

    #[test]
    fn name_formats_and_readable_collisions() {
        let mut p = patient("Giulia", "Pham");
        p.preferred_first_name = Some("Jules".into());
        p.email = Some(" giulia@example.com ".into());
        let rules = |name_format, collision| CustomerRules {
            name_format,
            collision,
        };
        let default = CustomerRules::default();
        assert_eq!(default.name(&p), "Giulia Pham");
        assert_eq!(
            default.name(&p),
            customer_name(&p),
            "the default is the old rule"
        );
        assert_eq!(
            rules(NameFormat::LastFirst, Collision::Email).name(&p),
            "Pham, Giulia"
        );
        assert_eq!(
            rules(NameFormat::PreferredFirstLast, Collision::Email).name(&p),
            "Jules Pham"
        );
        let mut no_last = p.clone();
        no_last.last_name = " ".into();
        assert_eq!(
            rules(NameFormat::LastFirst, Collision::Email).name(&no_last),
            "Giulia"
        );

        assert_eq!(
            default.alternatives("Giulia Pham", &p),
            vec![
                "Giulia Pham (giulia@example.com)".to_string(),
                disambiguate("Giulia Pham", p.id)
            ]
        );
        assert_eq!(
            rules(NameFormat::FirstLast, Collision::ClinikoId).alternatives("Giulia Pham", &p),
            vec![disambiguate("Giulia Pham", p.id)]
        );
        let mut no_email = p.clone();
        no_email.email = None;
        assert_eq!(
            default.alternatives("Giulia Pham", &no_email),
            vec![disambiguate("Giulia Pham", p.id)]
        );
        // A placeholder, or a name that would not fit whole beside the email: the id form.
        for email in [
            "n/a",
            "jane at home",
            &format!("{}@example.com", "g".repeat(85)),
        ] {
            p.email = Some(email.to_string());
            assert_eq!(
                default.alternatives("Giulia Pham", &p),
                vec![disambiguate("Giulia Pham", p.id)],
                "{email}"
            );
        }
        p.email = Some("g@example.com".into());
        assert_eq!(
            default.alternatives(&"x".repeat(95), &p),
            vec![disambiguate(&"x".repeat(95), p.id)]
        );
    }

    #[test]
    fn customers_are_given_the_terms_id_once_the_book_is_checked() {
        let p = patient("Ada", "Lovelace");
        let mut cfg = MappingConfig::default();
        assert_eq!(patient_to_customer(&p, "Ada", &cfg).payment_terms, None);
        cfg.invoicing.payment_terms = Some("14 days net".into());
        assert_eq!(
            patient_to_customer(&p, "Ada", &cfg)
                .payment_terms
                .as_deref(),
            Some("14 days net"),
            "unchecked: the name"
        );
        cfg.invoicing.payment_terms_id = Some("t-14".into());
        assert_eq!(
            patient_to_customer(&p, "Ada", &cfg)
                .payment_terms
                .as_deref(),
            Some("t-14")
        );
    }
}
