//! A whole sync on one machine for end-to-end tests: both simulators in-process, a seeded
//! clinic, the real clients, a SQLite state file in a temporary directory, and helpers
//! that run the pipeline and compare both sides record by record.

use cliniko_reckon::adapters::sqlite::SqliteState;
use cliniko_reckon::cliniko::{ClinikoClient, ClinikoClientConfig};
use cliniko_reckon::domain::{ClinikoId, EntityKind, ReckonId};
use cliniko_reckon::mapping::MappingConfig;
use cliniko_reckon::pipeline::local::{self, DrainSummary, RetryPolicy};
use cliniko_reckon::pipeline::{PollConfig, PollReport, Syncer};
use cliniko_reckon::ports::StateStore;
use cliniko_reckon::reckon::{ReckonClient, ReckonClientConfig};
use secrecy::SecretString;
use simulators::cliniko::{ClinikoConfig, ClinikoSim, DEFAULT_API_KEY};
use simulators::common::RunningServer;
use simulators::generator::{self, ClinicSize, SeedReport};
use simulators::reckon::{DEFAULT_SUBSCRIPTION_KEY, ReckonConfig, ReckonSim};
use std::path::PathBuf;
use std::time::Duration;

pub type Sync = Syncer<ClinikoClient, ReckonClient<SqliteState>, SqliteState>;

pub struct Harness {
    pub cliniko: ClinikoSim,
    pub reckon: ReckonSim,
    pub seed: SeedReport,
    pub cliniko_server: RunningServer,
    pub reckon_server: RunningServer,
    pub dir: tempfile::TempDir,
    pub syncer: Sync,
}

pub struct Options {
    pub patients: usize,
    pub seed: u64,
    /// Reckon customers that exist before the first sync (as a share of patients).
    pub existing_fraction: f64,
    pub cliniko_rate_limit: u32,
    pub reckon_rate_limit: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            patients: 40,
            seed: 11,
            existing_fraction: 0.0,
            cliniko_rate_limit: 0,
            reckon_rate_limit: 0,
        }
    }
}

/// Fast retries for tests: the simulators' faults clear in milliseconds, not minutes.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    }
}

impl Harness {
    pub async fn start(opts: Options) -> Harness {
        let cliniko = ClinikoSim::new(ClinikoConfig {
            rate_limit_per_minute: opts.cliniko_rate_limit,
            seed: opts.seed,
            ..Default::default()
        });
        let seed = cliniko.with(|s| {
            generator::seed_clinic(s, opts.seed, ClinicSize::with_patients(opts.patients))
        });
        let reckon = ReckonSim::new(ReckonConfig {
            rate_limit_per_minute: opts.reckon_rate_limit,
            seed: opts.seed,
            ..Default::default()
        });
        if opts.existing_fraction > 0.0 {
            let existing = cliniko.with(|s| {
                generator::existing_reckon_customers(s, opts.seed, opts.existing_fraction)
            });
            reckon.with_book(|b, ctx| generator::seed_reckon_customers(b, ctx, &existing));
        }
        let cliniko_server = cliniko.start("127.0.0.1", 0).await.expect("cliniko sim");
        let reckon_server = reckon.start("127.0.0.1", 0).await.expect("reckon sim");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut h = Harness {
            syncer: placeholder_syncer(&cliniko_server, &reckon, &reckon_server, &dir).await,
            cliniko,
            reckon,
            seed,
            cliniko_server,
            reckon_server,
            dir,
        };
        h.restart().await;
        h
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("state.sqlite")
    }

    /// A new process on another state file in the same directory (a lost state file, a
    /// second machine): new clients, the Reckon connection carried over.
    pub async fn use_state_file(&mut self, name: &str) {
        let path = self.dir.path().join(name);
        self.syncer = build_syncer(
            &self.cliniko_server,
            &self.reckon,
            &self.reckon_server,
            &path,
        )
        .await;
    }

    /// A fresh process: new clients and a new connection to the same state file.
    pub async fn restart(&mut self) {
        self.syncer = build_syncer(
            &self.cliniko_server,
            &self.reckon,
            &self.reckon_server,
            &self.state_path(),
        )
        .await;
    }

    /// One `sync --once`: re-queue failures, poll everything, drain; every poll succeeds.
    pub async fn run(&self) -> (Vec<PollReport>, DrainSummary) {
        let outcome = self.try_run().await.expect("sync run");
        assert!(
            outcome.polls.errors.is_empty(),
            "polls failed: {:?}",
            outcome.polls.errors
        );
        (outcome.polls.reports, outcome.drained)
    }

    /// One run as `sync --once` does it (`local::run_once`), whatever its polls met.
    pub async fn try_run(
        &self,
    ) -> Result<local::RunOutcome, cliniko_reckon::pipeline::PipelineError> {
        self.run_with(local::Requeue::Retryable).await
    }

    pub async fn run_with(
        &self,
        requeue: local::Requeue,
    ) -> Result<local::RunOutcome, cliniko_reckon::pipeline::PipelineError> {
        let quiet = |_: local::Progress<'_>| {};
        local::run_once(
            &self.syncer,
            &PollConfig::for_mapping(&self.syncer.mapping),
            &fast_retry(),
            requeue,
            &quiet,
        )
        .await
    }

    pub fn state(&self) -> &SqliteState {
        &self.syncer.state
    }

    pub async fn reckon_id(&self, kind: EntityKind, id: u64) -> Option<ReckonId> {
        self.state()
            .cross_ref(kind, ClinikoId(id))
            .await
            .expect("state")
            .map(|x| x.reckon_id)
    }

    /// Reckon API writes (POST/PUT/PATCH/DELETE under /r1/v2) seen so far.
    pub fn reckon_writes(&self) -> u64 {
        ["POST", "PUT", "PATCH", "DELETE"]
            .iter()
            .map(|m| self.reckon.traffic.count(m, "/r1/v2/"))
            .sum()
    }

    /// Waits until Cliniko's next second, so the next edit has a newer `updated_at`.
    pub async fn next_second(&self) {
        tokio::time::sleep(Duration::from_millis(1050)).await;
    }
}

async fn placeholder_syncer(
    cliniko_server: &RunningServer,
    reckon: &ReckonSim,
    reckon_server: &RunningServer,
    dir: &tempfile::TempDir,
) -> Sync {
    build_syncer(
        cliniko_server,
        reckon,
        reckon_server,
        &dir.path().join("state.sqlite"),
    )
    .await
}

pub fn cliniko_client(server: &RunningServer) -> ClinikoClient {
    let mut cfg = ClinikoClientConfig::new(
        SecretString::from(DEFAULT_API_KEY),
        "Cliniko-Reckon e2e (tests@example.com)",
    );
    cfg.base_url = Some(url::Url::parse(&format!("{}/v1", server.origin())).expect("cliniko url"));
    cfg.requests_per_minute = 0;
    cfg.backoff_base = Duration::from_millis(10);
    cfg.max_backoff = Duration::from_millis(100);
    // The simulator's injected 429s reset a minute out; tests do not wait that long.
    cfg.max_rate_limit_wait = Duration::from_millis(100);
    cfg.max_attempts = 8;
    ClinikoClient::new(cfg).expect("cliniko client")
}

pub fn reckon_config(reckon: &ReckonSim, server: &RunningServer) -> ReckonClientConfig {
    let oauth = &reckon.config().oauth;
    let mut cfg = ReckonClientConfig::new(
        oauth.client_id.clone(),
        SecretString::from(oauth.client_secret.clone()),
        SecretString::from(DEFAULT_SUBSCRIPTION_KEY),
        ReckonId(reckon.book_id()),
        url::Url::parse("http://127.0.0.1:8765/callback").expect("redirect"),
        "Undeposited Funds",
    )
    .expect("reckon config");
    cfg.api_base_url = url::Url::parse(&format!("{}/r1/v2", server.origin())).expect("api url");
    cfg.identity_url = url::Url::parse(&server.origin()).expect("identity url");
    cfg.requests_per_minute = 0;
    cfg.backoff_base = Duration::from_millis(10);
    cfg.max_backoff = Duration::from_millis(100);
    cfg.max_attempts = 8;
    cfg
}

async fn build_syncer(
    cliniko_server: &RunningServer,
    reckon: &ReckonSim,
    reckon_server: &RunningServer,
    path: &std::path::Path,
) -> Sync {
    let state = SqliteState::open(path).expect("state file");
    let has_tokens = cliniko_reckon::ports::TokenStore::load(&state)
        .await
        .expect("tokens")
        .is_some();
    if !has_tokens {
        let pair = reckon.issue_tokens();
        cliniko_reckon::ports::TokenStore::save(
            &state,
            &cliniko_reckon::ports::TokenSet {
                access_token: SecretString::from(pair.access_token),
                refresh_token: SecretString::from(pair.refresh_token),
                expires_at: chrono::Utc::now() + chrono::Duration::seconds(pair.expires_in),
            },
        )
        .await
        .expect("save tokens");
    }
    let sink = ReckonClient::new(reckon_config(reckon, reckon_server), state.clone())
        .expect("reckon client");
    Syncer::new(
        cliniko_client(cliniko_server),
        sink,
        state,
        MappingConfig::default(),
    )
}

/// What `assert_in_step` compared.
#[derive(Debug, Default)]
pub struct Compared {
    pub patients: usize,
    pub items: usize,
    pub invoices: usize,
    pub paid_invoices: usize,
    pub closed_invoices: usize,
    pub credit_notes: usize,
}

impl Harness {
    /// [`assert_in_step`] over this harness's simulators and SQLite state.
    pub async fn assert_in_step(&self) -> Compared {
        assert_in_step(&self.cliniko, &self.reckon, self.state()).await
    }
}

async fn linked(state: &impl StateStore, kind: EntityKind, id: u64) -> Option<ReckonId> {
    state
        .cross_ref(kind, ClinikoId(id))
        .await
        .expect("state")
        .map(|x| x.reckon_id)
}

/// Every Cliniko record is linked (through `state`'s cross-references) to a Reckon record
/// that says the same thing: customers (name present, email, Active/Inactive), items (name,
/// status), invoices (reference, total and GST to the cent, paid ↔ Paid with balance 0).
/// Panics naming the first difference; returns what it compared.
pub async fn assert_in_step(
    cliniko: &ClinikoSim,
    reckon: &ReckonSim,
    state: &impl StateStore,
) -> Compared {
    use rust_decimal::Decimal;
    let mut compared = Compared::default();
    let patients: Vec<_> = cliniko.with(|s| s.tables.patients.values().cloned().collect());
    let products: Vec<_> = cliniko.with(|s| s.tables.products.values().cloned().collect());
    let billables: Vec<_> = cliniko.with(|s| s.tables.billable_items.values().cloned().collect());
    let invoices: Vec<_> = cliniko.with(|s| s.tables.invoices.values().cloned().collect());
    let mut seen_reckon = std::collections::HashSet::new();
    for p in &patients {
        let rid = linked(state, EntityKind::Patient, p.id)
            .await
            .unwrap_or_else(|| panic!("patient {} has no Reckon customer", p.id));
        assert!(
            seen_reckon.insert(rid.0),
            "two patients share customer {rid}"
        );
        let (status, emails) = reckon.with_book(|b, _| {
            let c = b
                .customers
                .get(&rid.0)
                .unwrap_or_else(|| panic!("customer {rid} of patient {} is gone", p.id));
            (
                c.status.clone(),
                c.electronic_addresses
                    .iter()
                    .filter_map(|e| e.address.clone())
                    .collect::<Vec<_>>(),
            )
        });
        let inactive = p.archived_at.is_some() || p.merged_at.is_some();
        assert_eq!(
            status,
            if inactive { "Inactive" } else { "Active" },
            "patient {} status",
            p.id
        );
        // The patient's own email (`prefer_invoice_email` is off by default), else the
        // invoice address when that is all there is.
        let want = p
            .email
            .clone()
            .filter(|e| !e.trim().is_empty())
            .or_else(|| p.invoice_email.clone().filter(|e| !e.trim().is_empty()));
        if let Some(want) = want {
            assert!(
                emails.iter().any(|e| e.eq_ignore_ascii_case(want.trim())),
                "patient {} email {want:?} not on customer ({emails:?})",
                p.id
            );
        }
        compared.patients += 1;
    }
    let items = products
        .iter()
        .map(|p| (EntityKind::Product, p.id, p.archived_at.is_some()))
        .chain(
            billables
                .iter()
                .map(|b| (EntityKind::BillableItem, b.id, b.archived_at.is_some())),
        );
    for (kind, id, archived) in items {
        let rid = linked(state, kind, id)
            .await
            .unwrap_or_else(|| panic!("{kind} {id} has no Reckon item"));
        let status = reckon.with_book(|b, _| {
            b.items
                .get(&rid.0)
                .map(|i| i.status.clone())
                .unwrap_or_else(|| panic!("item {rid} of {kind} {id} is gone"))
        });
        assert_eq!(
            status,
            if archived { "Inactive" } else { "Active" },
            "{kind} {id}"
        );
        compared.items += 1;
    }
    for inv in &invoices {
        let rid = linked(state, EntityKind::Invoice, inv.id).await;
        if inv.archived_at.is_some() || inv.deleted_at.is_some() {
            continue;
        }
        let rid = rid.unwrap_or_else(|| panic!("invoice {} has no Reckon invoice", inv.id));
        let cliniko_total = inv.total_amount.unwrap_or_default();
        if cliniko_total < Decimal::ZERO {
            // A Cliniko credit note: a Reckon credit note with the amounts made positive;
            // an Open credit one unused, a Closed one applied to its invoice when it had
            // a balance to take it.
            let (reference, total, tax, balance) = reckon.with_book(|b, _| {
                let c = b
                    .credit_notes
                    .get(&rid.0)
                    .unwrap_or_else(|| panic!("Reckon credit note {rid} of {} is gone", inv.id));
                let t = b.credit_note_totals(c);
                (
                    c.reference.clone(),
                    t.total,
                    t.total_tax,
                    b.credit_note_balance(c),
                )
            });
            assert_eq!(
                reference,
                Some(inv.number.to_string()),
                "credit {} reference",
                inv.id
            );
            assert_eq!(total, -cliniko_total, "credit {} total", inv.id);
            assert_eq!(
                tax,
                -inv.tax_amount.unwrap_or_default(),
                "credit {} GST",
                inv.id
            );
            if inv.status == 40 {
                assert_eq!(balance, total, "credit {} is unused in Cliniko", inv.id);
            }
            compared.credit_notes += 1;
            continue;
        }
        let (reference, total, tax, status, balance) = reckon.with_book(|b, _| {
            let r = b
                .invoices
                .get(&rid.0)
                .unwrap_or_else(|| panic!("Reckon invoice {rid} is gone"));
            let t = b.invoice_totals(r);
            (
                r.reference.clone(),
                t.total,
                t.total_tax,
                r.status.clone(),
                b.invoice_balance(r),
            )
        });
        assert_eq!(
            reference,
            Some(inv.number.to_string()),
            "invoice {} reference",
            inv.id
        );
        assert_eq!(
            total,
            inv.total_amount.unwrap_or_default(),
            "invoice {} total",
            inv.id
        );
        assert_eq!(
            tax,
            inv.tax_amount.unwrap_or_default(),
            "invoice {} GST",
            inv.id
        );
        if inv.status == 20 {
            assert_eq!(status, "Paid", "invoice {} is paid in Cliniko", inv.id);
            assert_eq!(balance, Decimal::ZERO, "invoice {} balance", inv.id);
            compared.paid_invoices += 1;
        } else if inv.status == 30 {
            // Closed: cleared by its credit notes and the write-off of the rest.
            assert_eq!(
                balance,
                Decimal::ZERO,
                "invoice {} is closed in Cliniko",
                inv.id
            );
            assert_eq!(status, "Paid", "invoice {} status", inv.id);
            compared.closed_invoices += 1;
        } else {
            assert_eq!(status, "Approved", "invoice {} status", inv.id);
        }
        compared.invoices += 1;
    }
    compared
}
