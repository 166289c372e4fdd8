//! The go-live preview (`sync --once --dry-run`): the real sync's poll and `apply` run over
//! stand-ins that write nothing (see `dry_run`), and what they would have done is the plan,
//! record by record: create, update (the fields that change, both values), link to an
//! existing Reckon record (and how it was matched), unchanged, skipped, or blocked (and
//! why). A real run right after does exactly what the plan says.

mod dry_run;

pub use dry_run::{DryRunSink, OverlayState};

use crate::domain::{ClinikoId, EntityKind, ReckonId, Record};
use crate::mapping::{self, MappingConfig};
use crate::pipeline::local::park;
use crate::pipeline::{PipelineError, PollConfig, Syncer, poll_once};
use crate::ports::{ClinikoSource, Outcome, ReckonBook, ReckonSink, StateStore};
use crate::reconcile::report::{CategoryView, ReportError, Row, csv_document, render_records_page};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Version of the plan's JSON.
pub const PLAN_SCHEMA: u32 = 1;

/// What the sync would do with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Link,
    Unchanged,
    Skip,
    Blocked,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Create,
        Action::Update,
        Action::Link,
        Action::Unchanged,
        Action::Skip,
        Action::Blocked,
    ];

    /// The action the real sync reports as this outcome.
    pub fn of(outcome: Outcome) -> Action {
        match outcome {
            Outcome::Created => Action::Create,
            Outcome::Updated => Action::Update,
            Outcome::Linked => Action::Link,
            Outcome::Unchanged => Action::Unchanged,
            Outcome::Skipped => Action::Skip,
            Outcome::Failed => Action::Blocked,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Link => "link",
            Action::Unchanged => "unchanged",
            Action::Skip => "skip",
            Action::Blocked => "blocked",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Action::Create => "Would be created in Reckon",
            Action::Update => "Would be updated in Reckon",
            Action::Link => "Would be linked to an existing Reckon record",
            Action::Unchanged => "Already in step",
            Action::Skip => "Skipped",
            Action::Blocked => "Blocked",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Action::Create => "New Reckon records, with what they would hold.",
            Action::Update => {
                "Reckon records that would change: each changed field, today's value and the new one."
            }
            Action::Link => {
                "Records Reckon already holds (keyed by hand, or by an earlier sync): adopted, never duplicated; how each was matched."
            }
            Action::Unchanged => {
                "Linked already and saying the same thing: nothing would be written."
            }
            Action::Skip => {
                "Nothing to do in Reckon (a newer version is there, or withdrawn in Cliniko before it was ever synced)."
            }
            Action::Blocked => {
                "Records the sync would park instead of writing, and why: fix the cause before going live."
            }
        }
    }
}

/// One field that would change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub field: String,
    pub reckon: String,
    pub cliniko: String,
}

/// A write the sink would have made.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "write", rename_all = "snake_case")]
pub enum SinkAction {
    Create { what: String },
    Update { id: ReckonId, changes: Vec<Change> },
    Payment { amount: Decimal, date: NaiveDate },
}

/// One record of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    pub kind: EntityKind,
    pub cliniko_id: ClinikoId,
    pub label: String,
    pub action: Action,
    /// The Reckon record it would update or link to (none for a create).
    pub reckon_id: Option<ReckonId>,
    /// The sync's own words: how it was matched, why it is blocked, what it did.
    pub detail: String,
    pub changes: Vec<Change>,
    /// A receipt the sync would record (amount, date).
    pub payment: Option<(Decimal, NaiveDate)>,
    /// What a create would make.
    pub creates: Vec<String>,
}

/// The whole preview.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub schema: u32,
    pub generated_at: DateTime<Utc>,
    pub tenant: String,
    /// Records per action, every action present.
    pub summary: BTreeMap<&'static str, u64>,
    pub records: Vec<Planned>,
    /// Entity types whose read from Cliniko failed (the plan is incomplete for them).
    pub poll_errors: Vec<String>,
}

impl Plan {
    pub fn count(&self, action: Action) -> u64 {
        self.summary.get(action.key()).copied().unwrap_or(0)
    }

    /// Records a real run would write to Reckon (creates, updates, links).
    pub fn writes(&self) -> u64 {
        self.count(Action::Create) + self.count(Action::Update) + self.count(Action::Link)
    }

    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    fn rows(&self, action: Action) -> Vec<Row> {
        let mut rows = Vec::new();
        for p in self.records.iter().filter(|p| p.action == action) {
            let row = |field: &str, cliniko: String, reckon: String, action_text: String| Row {
                entity: p.kind.as_str().to_string(),
                label: p.label.clone(),
                cliniko_id: p.cliniko_id.to_string(),
                // A record to be created has no Reckon id yet (the preview's is made up).
                reckon_id: match p.action {
                    Action::Create => String::new(),
                    _ => p.reckon_id.map(|r| r.to_string()).unwrap_or_default(),
                },
                field: field.to_string(),
                cliniko_value: cliniko,
                reckon_value: reckon,
                action: action_text,
            };
            let payment = p
                .payment
                .map(|(amount, date)| format!("; a receipt of {amount:.2} dated {date}"))
                .unwrap_or_default();
            if p.changes.is_empty() {
                let what = p.creates.join("; ");
                rows.push(row(
                    "",
                    what,
                    String::new(),
                    format!("{}{payment}", p.detail),
                ));
            }
            for c in &p.changes {
                rows.push(row(
                    &c.field,
                    c.cliniko.clone(),
                    c.reckon.clone(),
                    format!("{}{payment}", p.detail),
                ));
            }
        }
        rows
    }

    /// One CSV of every planned record and change (spreadsheet-safe, BOM first), the
    /// action in the first column.
    pub fn to_csv(&self) -> Result<String, ReportError> {
        csv_document(
            &["plan"],
            Action::ALL.into_iter().flat_map(|a| {
                self.rows(a)
                    .into_iter()
                    .map(move |r| (vec![a.key().to_string()], r))
            }),
        )
    }

    /// The page a bookkeeper approves go-live from (same family as the reconciliation).
    pub fn to_html(&self, zone: Tz) -> Result<String, ReportError> {
        let categories: Vec<CategoryView> = Action::ALL
            .iter()
            .map(|a| CategoryView {
                key: a.key(),
                title: a.title(),
                description: a.description(),
                count: self.count(*a),
                rows: self.rows(*a),
            })
            .collect();
        let writes = self.writes();
        let blocked = self.count(Action::Blocked);
        let per_kind = |kind: EntityKind| {
            let of = |a: Action| {
                self.records
                    .iter()
                    .filter(|p| p.kind == kind && p.action == a)
                    .count()
            };
            (
                of(Action::Create),
                of(Action::Link) + of(Action::Update) + of(Action::Unchanged),
            )
        };
        let scanned: Vec<minijinja::Value> = EntityKind::ALL
            .iter()
            .map(|k| {
                let (new, existing) = per_kind(*k);
                minijinja::context! {
                    label => k.as_str().replace('_', " "),
                    cliniko => new,
                    reckon => existing,
                }
            })
            .collect();
        let page = minijinja::context! {
            title => "Cliniko → Reckon go-live preview",
            heading => "Cliniko → Reckon go-live preview",
            generator => "sync --dry-run",
            clean => blocked == 0 && self.poll_errors.is_empty(),
            clean_headline => if writes == 0 {
                "Nothing to write: Reckon is in step".to_string()
            } else {
                format!("{writes} record(s) would be written; nothing is blocked")
            },
            clean_detail => "Nothing was written to Reckon and no sync state changed. Review each section, then run the sync: it does exactly this.",
            attention_headline => format!("{blocked} record(s) blocked; {writes} would be written"),
            attention_detail => "Nothing was written. Blocked records would be parked: fix their cause first. Each section lists the records, both values and what the sync would do.",
            scanned_heading => "Records by kind",
            scanned_cliniko => "New in Reckon",
            scanned_reckon => "Already in Reckon",
            scanned => scanned,
            total_label => "Records",
            total => self.records.len(),
            cliniko_column => "Cliniko (new value)",
            reckon_column => "Reckon now",
            action_column => "The sync's note",
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

/// A short name for a record, for the plan.
fn label(record: &Record) -> String {
    match record {
        Record::Patient(p) => mapping::customer_name(p),
        Record::Product(p) => p.name.clone(),
        Record::BillableItem(b) => b.name.clone(),
        Record::Invoice(i) => format!("Invoice {}", i.number),
        Record::Appointment(a) => {
            format!(
                "Appointment {}",
                mapping::appointment::appointment_reference(a.id, 1)
            )
        }
    }
}

/// Dependency order, as the local queue claims records.
fn rank(kind: EntityKind) -> usize {
    EntityKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

/// Runs the sync as `sync --once` would (parked passing failures first, then every entity
/// type's changes, in the queue's order) and returns what it would do. Writes nothing to
/// Reckon and changes nothing in `state`; the Reckon client's token store is its own (a
/// rotated token is still saved).
pub async fn preview<S, R, St>(
    source: S,
    sink: R,
    state: St,
    mapping: MappingConfig,
    poll: &PollConfig,
    tenant: &str,
    now: DateTime<Utc>,
) -> Result<Plan, PipelineError>
where
    S: ClinikoSource,
    R: ReckonSink + ReckonBook,
    St: StateStore,
{
    let shared = Arc::default();
    let syncer = Syncer::new(
        source,
        DryRunSink::new(sink, Arc::clone(&shared)),
        OverlayState::new(state, Arc::clone(&shared)),
        mapping,
    );
    let mut labels: HashMap<(EntityKind, ClinikoId), String> = HashMap::new();
    let mut work: Vec<Record> = Vec::new();
    for failure in syncer.state.inner().failures().await? {
        if !failure.retryable {
            continue;
        }
        if let Some(record) = syncer
            .source
            .record(failure.kind, failure.cliniko_id)
            .await?
        {
            work.push(record);
        }
    }
    let mut poll_errors = Vec::new();
    for kind in poll.kinds.iter().copied() {
        match poll_once(
            &syncer.source,
            &syncer.state,
            &syncer.state,
            kind,
            poll,
            now,
        )
        .await
        {
            Ok(_) => {}
            Err(PipelineError::State(e)) => return Err(PipelineError::State(e)),
            Err(e) => poll_errors.push(format!("{kind}: {e}")),
        }
    }
    {
        let mut r = shared.lock().unwrap_or_else(|e| e.into_inner());
        work.extend(r.queued.drain(..).map(|w| w.record));
    }
    // The queue keeps the newest version of each record once, patients first.
    let mut newest: HashMap<(EntityKind, ClinikoId), Record> = HashMap::new();
    let mut order = Vec::new();
    for record in work {
        let key = (record.kind(), record.id());
        match newest.get(&key) {
            Some(seen) if seen.version() >= record.version() => {}
            Some(_) => {
                newest.insert(key, record);
            }
            None => {
                order.push(key);
                newest.insert(key, record);
            }
        }
    }
    order.sort_by_key(|(kind, _)| rank(*kind));
    for key in order {
        let Some(record) = newest.remove(&key) else {
            continue;
        };
        labels.insert(key, label(&record));
        if let Err(e) = syncer.apply(&record).await {
            park(&syncer.state, &record, &e, 1, now).await?;
        }
    }
    let entries = {
        let mut r = shared.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut r.entries)
    };
    let mut records = Vec::with_capacity(entries.len());
    for (entry, writes) in entries {
        let mut planned = Planned {
            kind: entry.kind,
            cliniko_id: entry.cliniko_id,
            label: labels
                .get(&(entry.kind, entry.cliniko_id))
                .cloned()
                .unwrap_or_else(|| format!("{} {}", entry.kind, entry.cliniko_id)),
            action: Action::of(entry.outcome),
            // A create's id is the preview's own invention: none until the real run.
            reckon_id: entry
                .reckon_id
                .filter(|_| entry.outcome != Outcome::Created),
            detail: entry.detail,
            changes: Vec::new(),
            payment: None,
            creates: Vec::new(),
        };
        for w in writes {
            match w {
                SinkAction::Create { what } => planned.creates.push(what),
                SinkAction::Update { changes, .. } => planned.changes.extend(changes),
                SinkAction::Payment { amount, date } => planned.payment = Some((amount, date)),
            }
        }
        records.push(planned);
    }
    let mut summary: BTreeMap<&'static str, u64> =
        Action::ALL.iter().map(|a| (a.key(), 0)).collect();
    for r in &records {
        *summary.entry(r.action.key()).or_default() += 1;
    }
    Ok(Plan {
        schema: PLAN_SCHEMA,
        generated_at: now,
        tenant: tenant.to_string(),
        summary,
        records,
        poll_errors,
    })
}
