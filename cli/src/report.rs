//! What a run prints: progress bars while it works, then a summary table or JSON.

use cliniko_reckon::domain::EntityKind;
use cliniko_reckon::pipeline::local::{Counts, Progress, RunOutcome};
use cliniko_reckon::pipeline::{Parked, PollFailure, PollReport};
use cliniko_reckon::ports::Outcome;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// One run of poll + drain, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Which clinic, when several ran at once (`sync --all-tenants`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub entities: BTreeMap<EntityKind, EntityReport>,
    pub requeued_failures: usize,
    pub api_requests: ApiRequests,
    pub duration_seconds: f64,
    /// Records that failed or were parked in this run, plus polls that failed: non-zero
    /// makes the command exit non-zero.
    pub failed: u64,
    /// Each record parked by this run's polls (unreadable, or too large to queue).
    pub parked: Vec<Parked>,
    /// Entity types whose poll failed (the queue was drained regardless).
    pub poll_errors: Vec<PollFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requeue_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EntityReport {
    pub fetched: usize,
    pub enqueued: usize,
    #[serde(flatten)]
    pub counts: Counts,
}

impl EntityReport {
    pub fn add(&mut self, other: &EntityReport) {
        self.fetched += other.fetched;
        self.enqueued += other.enqueued;
        self.counts.add(&other.counts);
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ApiRequests {
    pub cliniko: u64,
    pub reckon: u64,
}

impl RunReport {
    pub fn new(outcome: &RunOutcome, api_requests: ApiRequests, duration: Duration) -> RunReport {
        let polls: &[PollReport] = &outcome.polls.reports;
        let drain = &outcome.drained;
        let mut entities: BTreeMap<EntityKind, EntityReport> = EntityKind::ALL
            .into_iter()
            .map(|k| (k, EntityReport::default()))
            .collect();
        for p in polls {
            let e = entities.entry(p.kind).or_default();
            e.fetched += p.fetched;
            e.enqueued += p.enqueued;
        }
        for (kind, c) in &drain.per_kind {
            entities.entry(*kind).or_default().counts.add(c);
        }
        RunReport {
            tenant: None,
            entities,
            requeued_failures: outcome.requeued,
            api_requests,
            duration_seconds: (duration.as_secs_f64() * 1000.0).round() / 1000.0,
            failed: outcome.problems(),
            parked: polls
                .iter()
                .flat_map(|p| p.parked.iter().cloned())
                .collect(),
            poll_errors: outcome.polls.errors.clone(),
            requeue_error: outcome.requeue_error.clone(),
        }
    }

    /// Records written to Reckon (creates, updates, links).
    pub fn reckon_writes(&self) -> u64 {
        self.entities.values().map(|e| e.counts.writes()).sum()
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        if let Some(tenant) = &self.tenant {
            out.push_str(&format!("tenant {tenant}\n"));
        }
        out.push_str(&format!(
            "{:<14} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8} {:>7}\n",
            "entity", "changed", "created", "updated", "linked", "unchanged", "skipped", "failed"
        ));
        for (kind, e) in &self.entities {
            out.push_str(&format!(
                "{:<14} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8} {:>7}\n",
                kind.as_str(),
                e.enqueued,
                e.counts.created,
                e.counts.updated,
                e.counts.linked,
                e.counts.unchanged,
                e.counts.skipped,
                e.counts.failed
            ));
        }
        for p in &self.parked {
            out.push_str(&format!(
                "parked {} {}: {}\n",
                p.kind,
                p.cliniko_id
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "(no id)".into()),
                p.reason
            ));
        }
        for e in &self.poll_errors {
            out.push_str(&format!("polling {} failed: {}\n", e.kind, e.error));
        }
        if let Some(e) = &self.requeue_error {
            out.push_str(&format!("re-queueing parked records failed: {e}\n"));
        }
        out.push_str(&format!(
            "API requests: Cliniko {}, Reckon {}; {:.1} s\n",
            self.api_requests.cliniko, self.api_requests.reckon, self.duration_seconds
        ));
        out
    }
}

/// One bar per entity type; hidden for `--json` and when stderr is not a terminal.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<EntityKind, ProgressBar>>,
}

impl Bars {
    pub fn new(visible: bool) -> Bars {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    fn bar(&self, kind: EntityKind) -> Option<ProgressBar> {
        let mut bars = self.bars.lock().ok()?;
        let bar = bars.entry(kind).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(0));
            let style =
                ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos:>6}/{len:<6} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(kind.as_str());
            bar
        });
        Some(bar.clone())
    }

    pub fn event(&self, event: Progress<'_>) {
        match event {
            Progress::Polled(report) => {
                if let Some(bar) = self.bar(report.kind) {
                    bar.inc_length(report.enqueued as u64);
                }
            }
            Progress::Applied {
                kind,
                outcome,
                detail,
            } => {
                if let Some(bar) = self.bar(kind) {
                    bar.inc(1);
                    if outcome == Outcome::Failed {
                        bar.set_message(format!("failed: {detail}"));
                    }
                }
            }
            Progress::Retrying { kind, error } => {
                if let Some(bar) = self.bar(kind) {
                    bar.set_message(format!("retrying: {error}"));
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                bar.finish();
            }
        }
    }

    /// Starts a fresh set of bars for the next run.
    pub fn reset(&self) {
        if let Ok(mut bars) = self.bars.lock() {
            for (_, bar) in std::mem::take(&mut *bars) {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
    }
}
