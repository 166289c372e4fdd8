//! The mismatch report: one stable JSON schema for machines, a CSV per category for
//! spreadsheets, and a self-contained HTML page for the bookkeeper (rendered by minijinja
//! from `shared/templates/records_report.html`, shared with the go-live preview).

use crate::domain::{ClinikoId, EntityKind, ReckonId};
use crate::ports::{RenderedReport, ReportFile};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Version of the JSON report; bumped on any incompatible change.
pub const REPORT_SCHEMA: u32 = 1;

/// What kind of difference a mismatch is. The order is the report's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    MissingInReckon,
    LinkedRecordGone,
    FieldDrift,
    AmountDrift,
    StatusDrift,
    DuplicateInReckon,
    LinkSuggestion,
    SyncFailure,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::MissingInReckon,
        Category::LinkedRecordGone,
        Category::FieldDrift,
        Category::AmountDrift,
        Category::StatusDrift,
        Category::DuplicateInReckon,
        Category::LinkSuggestion,
        Category::SyncFailure,
    ];

    /// The key used in JSON, file names and metric dimensions.
    pub fn key(self) -> &'static str {
        match self {
            Category::MissingInReckon => "missing_in_reckon",
            Category::LinkedRecordGone => "linked_record_gone",
            Category::FieldDrift => "field_drift",
            Category::AmountDrift => "amount_drift",
            Category::StatusDrift => "status_drift",
            Category::DuplicateInReckon => "duplicate_in_reckon",
            Category::LinkSuggestion => "link_suggestion",
            Category::SyncFailure => "sync_failure",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Category::MissingInReckon => "Missing in Reckon",
            Category::LinkedRecordGone => "Linked Reckon record gone",
            Category::FieldDrift => "Field drift",
            Category::AmountDrift => "Amount drift",
            Category::StatusDrift => "Status drift",
            Category::DuplicateInReckon => "Duplicates in Reckon",
            Category::LinkSuggestion => "Link suggestions",
            Category::SyncFailure => "Sync failures waiting",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Category::MissingInReckon => "Cliniko records with no Reckon twin.",
            Category::LinkedRecordGone => {
                "Cliniko records whose linked Reckon record no longer exists (deleted in Reckon)."
            }
            Category::FieldDrift => {
                "Names, emails, addresses, phones, prices or tax codes that differ between the two sides."
            }
            Category::AmountDrift => {
                "Invoice totals, GST or line amounts that differ, to the cent."
            }
            Category::StatusDrift => {
                "Paid in one system but not the other, or active in one and inactive in the other."
            }
            Category::DuplicateInReckon => {
                "Reckon records that duplicate a linked one: a second customer for a patient, a second invoice with the same reference."
            }
            Category::LinkSuggestion => {
                "Reckon records no link knows that match a Cliniko record missing in Reckon, by email, name or reference."
            }
            Category::SyncFailure => {
                "Changes the sync could not apply and is holding for a retry or a person."
            }
        }
    }
}

/// What `reconcile --repair` does about a mismatch. It only ever queues Cliniko records
/// for the sync (which never deletes in Reckon); the rest needs a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Repair {
    /// Queue the record: the sync creates its Reckon twin or retries its failure.
    Sync,
    /// Queue it with its stored content forgotten, so the sync rewrites Reckon from Cliniko.
    Rewrite,
    /// Forget the link to the deleted Reckon record, then queue it: the sync re-creates it.
    Recreate,
}

/// One difference, with both sides' ids and values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    pub category: Category,
    pub entity: EntityKind,
    /// A human label: "Invoice 1042 — Jane Citizen".
    pub label: String,
    pub cliniko_id: Option<ClinikoId>,
    pub reckon_id: Option<ReckonId>,
    /// The field that differs (`name`, `total`, `line 2 amount`, ...), when one does.
    pub field: Option<String>,
    pub cliniko_value: Option<String>,
    pub reckon_value: Option<String>,
    /// What to do about it.
    pub action: String,
    /// What `reconcile --repair` does about it; `None` when it needs a person.
    #[serde(default)]
    pub repair: Option<Repair>,
}

/// How many records each side had.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scanned {
    pub cliniko_patients: u64,
    pub cliniko_products: u64,
    pub cliniko_invoices: u64,
    /// Appointments read (only when the clinic invoices them).
    #[serde(default)]
    pub cliniko_appointments: u64,
    pub reckon_customers: u64,
    pub reckon_items: u64,
    pub reckon_invoices: u64,
    #[serde(default)]
    pub reckon_credit_notes: u64,
}

/// The whole report (`schema` 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileReport {
    pub schema: u32,
    pub generated_at: DateTime<Utc>,
    pub tenant: String,
    pub scanned: Scanned,
    /// Count per category key, every category present (zeros included).
    pub summary: std::collections::BTreeMap<String, u64>,
    pub mismatches: Vec<Mismatch>,
}

impl ReconcileReport {
    pub fn new(
        tenant: &str,
        generated_at: DateTime<Utc>,
        scanned: Scanned,
        mut mismatches: Vec<Mismatch>,
    ) -> Self {
        mismatches.sort_by(|a, b| {
            (
                a.category,
                a.entity.as_str(),
                a.cliniko_id.map(|c| c.0),
                &a.field,
            )
                .cmp(&(
                    b.category,
                    b.entity.as_str(),
                    b.cliniko_id.map(|c| c.0),
                    &b.field,
                ))
        });
        let summary = Category::ALL
            .iter()
            .map(|c| {
                let n = mismatches.iter().filter(|m| m.category == *c).count() as u64;
                (c.key().to_string(), n)
            })
            .collect();
        ReconcileReport {
            schema: REPORT_SCHEMA,
            generated_at,
            tenant: tenant.to_string(),
            scanned,
            summary,
            mismatches,
        }
    }

    pub fn count(&self, category: Category) -> u64 {
        self.summary.get(category.key()).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.mismatches.len() as u64
    }

    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty()
    }

    pub fn in_category(&self, category: Category) -> impl Iterator<Item = &Mismatch> {
        self.mismatches
            .iter()
            .filter(move |m| m.category == category)
    }

    pub fn to_json(&self) -> Result<String, ReportError> {
        serde_json::to_string_pretty(self).map_err(|e| ReportError::Render(e.to_string()))
    }

    /// One category as CSV (header row included, even when empty), UTF-8 with a BOM so
    /// Excel opens accents and non-Latin names correctly.
    pub fn to_csv(&self, category: Category) -> Result<String, ReportError> {
        csv_document(
            &[],
            self.in_category(category)
                .map(|m| (Vec::new(), Row::from(m))),
        )
    }

    /// Every rendering a person or a program reads: `report.json`, `report.html` and one
    /// CSV per category. Every report sink stores exactly these.
    pub fn rendered(&self, zone: Tz) -> Result<RenderedReport, ReportError> {
        let file = |name: String, content_type, body| ReportFile {
            name,
            content_type,
            body,
        };
        let mut files = vec![
            file("report.json".into(), "application/json", self.to_json()?),
            file(
                "report.html".into(),
                "text/html; charset=utf-8",
                self.to_html(zone)?,
            ),
        ];
        for c in Category::ALL {
            files.push(file(
                format!("{}.csv", c.key()),
                "text/csv; charset=utf-8",
                self.to_csv(c)?,
            ));
        }
        Ok(RenderedReport {
            generated_at: self.generated_at,
            files,
        })
    }

    /// The bookkeeper's page, times shown in `zone`.
    pub fn to_html(&self, zone: Tz) -> Result<String, ReportError> {
        let categories: Vec<CategoryView> = Category::ALL
            .iter()
            .map(|c| CategoryView {
                key: c.key(),
                title: c.title(),
                description: c.description(),
                count: self.count(*c),
                rows: self.in_category(*c).map(Row::from).collect(),
            })
            .collect();
        let total = self.total();
        let s = &self.scanned;
        let page = minijinja::context! {
            title => "Cliniko ↔ Reckon reconciliation",
            heading => "Cliniko ↔ Reckon reconciliation",
            generator => "reconcile",
            clean => self.is_clean(),
            clean_headline => "Both sides agree",
            clean_detail => "No mismatches were found between the records scanned in Cliniko and in Reckon.",
            attention_headline => if total == 1 {
                "1 mismatch needs attention".to_string()
            } else {
                format!("{total} mismatches need attention")
            },
            attention_detail => "Each section below lists the records concerned, Cliniko’s and Reckon’s values side by side, and what to do.",
            scanned_heading => "Records scanned",
            scanned_cliniko => "Cliniko",
            scanned_reckon => "Reckon",
            scanned => vec![
                minijinja::context! { label => "Patients ↔ customers", cliniko => s.cliniko_patients, reckon => s.reckon_customers },
                minijinja::context! { label => "Products ↔ items", cliniko => s.cliniko_products, reckon => s.reckon_items },
                minijinja::context! { label => "Invoices and credit notes", cliniko => s.cliniko_invoices, reckon => format!("{} + {} credit notes", s.reckon_invoices, s.reckon_credit_notes) },
                minijinja::context! { label => "Completed appointments (invoiced as APPT-…)", cliniko => s.cliniko_appointments, reckon => "" },
            ],
            total_label => "Total",
            total => total,
            cliniko_column => "Cliniko value",
            reckon_column => "Reckon value",
            action_column => "Suggested action",
        };
        render_records_page(
            page,
            self.schema,
            self.generated_at,
            &self.tenant,
            zone,
            &categories,
        )
    }
}

/// Renders `shared/templates/records_report.html` (the reconciliation report and the
/// go-live preview share the page): `page` says what kind of page it is.
pub(crate) fn render_records_page<C: serde::Serialize>(
    page: minijinja::Value,
    schema: u32,
    generated_at: DateTime<Utc>,
    tenant: &str,
    zone: Tz,
    categories: &[C],
) -> Result<String, ReportError> {
    let mut env = minijinja::Environment::new();
    env.add_template("records_report.html", TEMPLATE)
        .map_err(|e| ReportError::Render(e.to_string()))?;
    let template = env
        .get_template("records_report.html")
        .map_err(|e| ReportError::Render(e.to_string()))?;
    let local = generated_at.with_timezone(&zone);
    let context = minijinja::context! {
        page => page,
        report => minijinja::context! {
            schema => schema,
            generated_at => generated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            generated_at_local => local.format("%-d %b %Y, %-I:%M %P %Z").to_string(),
            tenant => tenant,
        },
        categories => categories,
    };
    template
        .render(context)
        .map_err(|e| ReportError::Render(e.to_string()))
}

const TEMPLATE: &str = include_str!("../../templates/records_report.html");

/// A spreadsheet must not run a cell as a formula (CSV injection): values starting with
/// `=`, `+`, `-`, `@` get a leading apostrophe, except plain numbers and amounts.
pub(crate) fn csv_safe(value: &str) -> String {
    let risky = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let numeric = value
        .trim_start_matches(['-', '+'])
        .trim_start_matches('$')
        .replace(',', "")
        .parse::<f64>()
        .is_ok();
    if risky && !numeric {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

/// One CSV of rows (a spreadsheet-safe one, BOM first): `leading` names extra columns put
/// before the row's own, each row bringing their values.
pub(crate) fn csv_document(
    leading: &[&str],
    rows: impl Iterator<Item = (Vec<String>, Row)>,
) -> Result<String, ReportError> {
    let render = |e: csv::Error| ReportError::Render(e.to_string());
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = leading.to_vec();
    header.extend([
        "entity",
        "label",
        "cliniko_id",
        "reckon_id",
        "field",
        "cliniko_value",
        "reckon_value",
        "action",
    ]);
    w.write_record(&header).map_err(render)?;
    for (mut cells, row) in rows {
        cells.extend([
            row.entity,
            csv_safe(&row.label),
            row.cliniko_id,
            row.reckon_id,
            csv_safe(&row.field),
            csv_safe(&row.cliniko_value),
            csv_safe(&row.reckon_value),
            csv_safe(&row.action),
        ]);
        w.write_record(&cells).map_err(render)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ReportError::Render(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| ReportError::Render(e.to_string()))?;
    Ok(format!("\u{feff}{text}"))
}

/// A mismatch as the HTML and CSV show it: every field a string.
#[derive(Debug, Serialize)]
pub(crate) struct Row {
    pub(crate) entity: String,
    pub(crate) label: String,
    pub(crate) cliniko_id: String,
    pub(crate) reckon_id: String,
    pub(crate) field: String,
    pub(crate) cliniko_value: String,
    pub(crate) reckon_value: String,
    pub(crate) action: String,
}

impl From<&Mismatch> for Row {
    fn from(m: &Mismatch) -> Row {
        Row {
            entity: m.entity.as_str().to_string(),
            label: m.label.clone(),
            cliniko_id: m.cliniko_id.map(|i| i.to_string()).unwrap_or_default(),
            reckon_id: m.reckon_id.map(|i| i.to_string()).unwrap_or_default(),
            field: m.field.clone().unwrap_or_default(),
            cliniko_value: m.cliniko_value.clone().unwrap_or_default(),
            reckon_value: m.reckon_value.clone().unwrap_or_default(),
            action: m.action.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct CategoryView {
    pub(crate) key: &'static str,
    pub(crate) title: &'static str,
    pub(crate) description: &'static str,
    pub(crate) count: u64,
    pub(crate) rows: Vec<Row>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("could not render the report: {0}")]
    Render(String),
}
