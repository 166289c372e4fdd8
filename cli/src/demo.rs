//! `demo`: both simulators in-process with a seeded clinic, the full backfill, rounds of
//! live Cliniko edits synced incrementally, then a summary and a to-the-cent check.

use crate::clients;
use crate::commands::run_once;
use crate::report::{Bars, RunReport};
use crate::settings::{self, ClinikoSettings, DEFAULT_REDIRECT, ReckonSettings};
use anyhow::{Context, anyhow};
use cliniko_reckon::adapters::sqlite::SqliteState;
use cliniko_reckon::domain::{ClinikoId, EntityKind};
use cliniko_reckon::mapping::MappingConfig;
use cliniko_reckon::mapping::appointment::InvoicingSource;
use cliniko_reckon::pipeline::local::Requeue;
use cliniko_reckon::pipeline::local::RetryPolicy;
use cliniko_reckon::pipeline::{PollConfig, Syncer};
use cliniko_reckon::ports::StateStore;
use cliniko_reckon::reconcile::{ReconcileReport, RepairSummary, reconcile};
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use simulators::cliniko::store::{
    AppointmentMark, ClinikoState, InvoicePatch, InvoiceSpec, ItemSpec,
};
use simulators::cliniko::{ClinikoConfig, ClinikoSim, DEFAULT_API_KEY};
use simulators::generator::{self, ClinicSize, SeedReport};
use simulators::reckon::book::LineDetail;
use simulators::reckon::{DEFAULT_SUBSCRIPTION_KEY, ReckonConfig, ReckonSim};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

pub struct DemoOptions<'a> {
    pub size: usize,
    pub seed: u64,
    pub rounds: u32,
    pub existing_customers: usize,
    pub json: bool,
    /// After the clean reconciliation: edit Reckon by hand, reconcile, repair, sync,
    /// reconcile again (the report a bookkeeper sees when something is wrong).
    pub drift: bool,
    /// `[invoicing] source` of the demo clinic.
    pub invoicing: InvoicingSource,
    pub state: Option<&'a Path>,
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn remove_state(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        // A missing file is the normal case.
        std::fs::remove_file(PathBuf::from(p)).ok();
    }
}

/// A day at an appointments clinic: a new patient attends an appointment (invoiced from
/// its type), and a past attended appointment turns out cancelled (its invoice withdrawn).
fn appointment_round(
    s: &mut ClinikoState,
    round: u32,
    seed: &SeedReport,
    patient: u64,
) -> anyhow::Result<Vec<String>> {
    let sim_err = |e| anyhow!("simulator refused a demo edit: {e:?}");
    let mut did = Vec::new();
    let appointment_type = s
        .tables
        .appointment_types
        .keys()
        .nth(round as usize % s.tables.appointment_types.len().max(1))
        .copied()
        .ok_or_else(|| anyhow!("the demo clinic has no appointment types"))?;
    let practitioner = seed
        .practitioner_ids
        .first()
        .copied()
        .ok_or_else(|| anyhow!("the demo clinic has no practitioners"))?;
    let starts = s.now() - chrono::TimeDelta::hours(1);
    let booked = s
        .create_appointment(&object(json!({
            "starts_at": starts.to_rfc3339(),
            "patient_id": patient.to_string(),
            "practitioner_id": practitioner.to_string(),
            "business_id": seed.business_id.to_string(),
            "appointment_type_id": appointment_type.to_string(),
        })))
        .map_err(sim_err)?;
    s.mark_appointment(
        booked.id,
        &AppointmentMark {
            patient_arrived: Some(true),
            ..Default::default()
        },
    )
    .map_err(sim_err)?;
    did.push(format!(
        "patient {patient} attended appointment {}",
        booked.id
    ));
    let attended = s
        .tables
        .appointments
        .values()
        .filter(|a| {
            a.patient_arrived == Some(true)
                && a.cancelled_at.is_none()
                && a.deleted_at.is_none()
                && a.archived_at.is_none()
                && a.id != booked.id
        })
        .map(|a| a.id)
        .nth(round as usize * 3);
    if let Some(id) = attended {
        s.mark_appointment(
            id,
            &AppointmentMark {
                patient_arrived: Some(false),
                ..Default::default()
            },
        )
        .map_err(sim_err)?;
        s.cancel_appointment(
            id,
            &object(json!({"cancellation_reason": 50, "cancellation_note": "Entered in error"})),
        )
        .map_err(sim_err)?;
        did.push(format!("appointment {id} cancelled after it was invoiced"));
    }
    Ok(did)
}

/// One round of edits a clinic makes in a day; returns what it did, for the log.
fn edit_round(
    s: &mut ClinikoState,
    round: u32,
    seed: &SeedReport,
    patients: &[u64],
    invoicing: InvoicingSource,
) -> anyhow::Result<Vec<String>> {
    let mut did = Vec::new();
    let sim_err = |e| anyhow!("simulator refused a demo edit: {e:?}");
    // A new patient, who is invoiced straight away (and pays).
    let first_name = ["Aroha", "Mei", "Łukasz", "Bríd"][round as usize % 4];
    let new = s
        .create_patient(&object(json!({
            "first_name": first_name,
            "last_name": format!("Demo-Round{round}"),
            "email": format!("round{round}.patient@example.com"),
            "address_1": "12 Wharf Street",
            "city": "Hobart",
            "state": "Tasmania",
            "post_code": "7000",
            "country": "Australia",
        })))
        .map_err(sim_err)?;
    did.push(format!("new patient {}", new.id));
    if invoicing == InvoicingSource::CompletedAppointments {
        did.extend(appointment_round(s, round, seed, new.id)?);
    }

    let pick = |n: usize| patients[(round as usize * 7 + n) % patients.len()];
    let changed = pick(1);
    s.update_patient(
        changed,
        &object(json!({ "email": format!("updated.round{round}@example.com") })),
    )
    .map_err(sim_err)?;
    did.push(format!("changed email of patient {changed}"));

    let archived = pick(3);
    s.set_patient_archived(archived, true).map_err(sim_err)?;
    did.push(format!("archived patient {archived}"));

    let product = s
        .create_product(&object(json!({
            "name": format!("Heat pack, round {round}"),
            "price": "24.95",
            "tax_id": seed.gst_tax_id.to_string(),
        })))
        .map_err(sim_err)?;
    did.push(format!("new product {}", product.id));

    if invoicing == InvoicingSource::CompletedAppointments {
        // Cliniko's invoices are not this clinic's books.
        return Ok(did);
    }
    let billable = seed.billable_item_ids.first().copied();
    let invoice = s
        .create_invoice(&InvoiceSpec {
            patient_id: Some(new.id),
            business_id: Some(seed.business_id),
            calculation_method: Some(if round.is_multiple_of(2) { 3 } else { 2 }),
            items: vec![
                ItemSpec {
                    billable_item_id: billable,
                    quantity: Some(Decimal::ONE),
                    ..Default::default()
                },
                ItemSpec {
                    product_id: Some(product.id),
                    quantity: Some(Decimal::TWO),
                    discount_percentage: Some(Decimal::TEN),
                    ..Default::default()
                },
            ],
            ..Default::default()
        })
        .map_err(sim_err)?;
    did.push(format!("new invoice #{}", invoice.number));

    // An open invoice from the backfill gets paid.
    let open = s
        .tables
        .invoices
        .values()
        .filter(|i| i.status == 10 && i.archived_at.is_none() && i.deleted_at.is_none())
        .map(|i| i.id)
        .nth(round as usize);
    if let Some(id) = open {
        let paid = s
            .update_invoice(
                id,
                &InvoicePatch {
                    status: Some(20),
                    ..Default::default()
                },
            )
            .map_err(sim_err)?;
        did.push(format!("paid invoice #{}", paid.number));
    }
    Ok(did)
}

pub async fn run(opts: DemoOptions<'_>) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let state_path = opts
        .state
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::env::temp_dir().join("cliniko-reckon-demo.sqlite"));
    // The demo starts from a new state file: take the writer lock before removing the old
    // one, so a demo never pulls the file from under another run.
    let _writer = cliniko_reckon::adapters::state_file::lock_writer(&state_path, "demo")?;
    remove_state(&state_path);

    // Cliniko at its documented 200 requests/minute; Reckon's limit is undocumented (the
    // simulator defaults to 60/minute), so the demo lifts it to backfill in seconds.
    let cliniko_sim = ClinikoSim::new(ClinikoConfig {
        seed: opts.seed,
        ..Default::default()
    });
    let seed = cliniko_sim
        .with(|s| generator::seed_clinic(s, opts.seed, ClinicSize::with_patients(opts.size)));
    let reckon_sim = ReckonSim::new(ReckonConfig {
        rate_limit_per_minute: 0,
        seed: opts.seed,
        ..Default::default()
    });
    let existing = cliniko_sim.with(|s| {
        let fraction = opts.existing_customers as f64 / opts.size.max(1) as f64;
        generator::existing_reckon_customers(s, opts.seed, fraction.min(1.0))
    });
    let existing_n =
        reckon_sim.with_book(|b, ctx| generator::seed_reckon_customers(b, ctx, &existing));
    let cliniko_server = cliniko_sim
        .start("127.0.0.1", 0)
        .await
        .context("starting the Cliniko simulator")?;
    let reckon_server = reckon_sim
        .start("127.0.0.1", 0)
        .await
        .context("starting the Reckon simulator")?;

    let say = |line: String| {
        if !opts.json {
            println!("{line}");
        }
    };
    say(format!(
        "Seeded clinic: {} patients, {} invoices ({} lines), {} products; {} customers already in Reckon",
        seed.patients, seed.invoices, seed.invoice_items, seed.products, existing_n
    ));
    say(format!(
        "Cliniko simulator {}/v1, Reckon simulator {}/r1/v2",
        cliniko_server.origin(),
        reckon_server.origin()
    ));

    let cliniko = ClinikoSettings {
        api_key: SecretString::from(DEFAULT_API_KEY),
        base_url: Some(
            format!("{}/v1", cliniko_server.origin())
                .parse()
                .context("simulator URL")?,
        ),
        user_agent: "Cliniko-Reckon demo (demo@example.com)".into(),
        requests_per_minute: 200,
    };
    let oauth = &reckon_sim.config().oauth;
    let reckon = ReckonSettings {
        api_base_url: format!("{}/r1/v2", reckon_server.origin())
            .parse()
            .context("simulator URL")?,
        identity_url: reckon_server.origin().parse().context("simulator URL")?,
        client_id: oauth.client_id.clone(),
        client_secret: SecretString::from(oauth.client_secret.clone()),
        subscription_key: SecretString::from(DEFAULT_SUBSCRIPTION_KEY),
        book_id: reckon_sim.book_id().to_string(),
        refresh_token: None,
        redirect_uri: DEFAULT_REDIRECT.parse().context("redirect URL")?,
        receipt_account: "Undeposited Funds".into(),
        // The simulator's limit is lifted above; pacing to Reckon's cautious default would
        // make the backfill take minutes.
        requests_per_minute: 0,
    };

    let store = settings::open_state(&state_path)?;
    clients::connect_auto_approved(&reckon, store.clone())
        .await
        .context("connecting to the Reckon simulator (OAuth code flow)")?;
    say("Connected to Reckon (OAuth code flow; tokens in the state file)".into());

    let source = clients::cliniko(&cliniko)?;
    let mut mapping = MappingConfig::default();
    mapping.invoicing.appointments.source = opts.invoicing;
    let (sink, notes) = clients::reckon_checked(&reckon, store.clone(), &mut mapping).await?;
    for note in notes {
        say(format!("warning: {note}"));
    }
    let mut syncer = Syncer::new(source, sink, store.clone(), mapping);
    let poll = PollConfig::for_mapping(&syncer.mapping);
    let retry = RetryPolicy::default();
    let bars = Bars::new(!opts.json && std::io::IsTerminal::is_terminal(&std::io::stderr()));

    // Going live: the preview a bookkeeper approves, then the backfill, which must do
    // exactly what the preview said.
    let plan = cliniko_reckon::preview::preview(
        clients::cliniko(&cliniko)?,
        clients::reckon(&reckon, store.clone()).await?,
        store.clone(),
        syncer.mapping.clone(),
        &poll,
        "demo",
        chrono::Utc::now(),
    )
    .await
    .context("previewing the backfill")?;
    let plan_dir = state_path
        .parent()
        .map(|p| p.join("demo-preview"))
        .unwrap_or_else(|| PathBuf::from("demo-preview"));
    let plan_html = crate::preview::write_plan(&plan, &plan_dir, syncer.mapping.default_time_zone)?;
    if !opts.json {
        println!("\nGo-live preview (nothing written)");
        print!("{}", crate::preview::summary_table(&plan));
        println!("Plan: {}", plan_html.display());
    }

    say("\nBackfill".into());
    let backfill = run_once(&syncer, &poll, &retry, Requeue::Retryable, &bars).await?;
    bars.reset();
    if !opts.json {
        print!("{}", backfill.table());
    }
    {
        use cliniko_reckon::preview::Action;
        let sum = |f: fn(&crate::report::EntityReport) -> u64| -> u64 {
            backfill.entities.values().map(f).sum()
        };
        let did = [
            (Action::Create, sum(|e| e.counts.created)),
            (Action::Link, sum(|e| e.counts.linked)),
            (Action::Unchanged, sum(|e| e.counts.unchanged)),
            (Action::Blocked, backfill.failed),
        ];
        for (action, done) in did {
            if plan.count(action) != done {
                anyhow::bail!(
                    "the backfill did not do what the preview said: {} {} planned, {done} done",
                    plan.count(action),
                    action.key()
                );
            }
        }
    }

    let patients: Vec<u64> = cliniko_sim.with(|s| {
        s.tables
            .patients
            .values()
            .filter(|p| p.archived_at.is_none())
            .map(|p| p.id)
            .collect()
    });
    let mut rounds: Vec<RunReport> = Vec::new();
    for round in 1..=opts.rounds {
        // Cliniko timestamps have second precision: let each round's edits land in a new second.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let did = cliniko_sim.with(|s| edit_round(s, round, &seed, &patients, opts.invoicing))?;
        say(format!("\nRound {round}: {}", did.join("; ")));
        syncer.reset_caches();
        let report = run_once(&syncer, &poll, &retry, Requeue::Retryable, &bars).await?;
        bars.reset();
        if !opts.json {
            print!("{}", report.table());
        }
        rounds.push(report);
    }

    // A last run with nothing changed must write nothing.
    let idle = run_once(&syncer, &poll, &retry, Requeue::Retryable, &bars).await?;
    bars.reset();

    let check = if opts.invoicing == InvoicingSource::CompletedAppointments {
        check_appointments(&cliniko_sim, &reckon_sim, &store).await?
    } else {
        check_invoices(&cliniko_sim, &reckon_sim, &store).await?
    };

    // The nightly proof: both sides read in full and compared through the links.
    let report_dir = state_path
        .parent()
        .map(|p| p.join("demo-reconciliation"))
        .unwrap_or_else(|| PathBuf::from("demo-reconciliation"));
    let (reconciled, report_html) = crate::reconcile::reconcile_into(
        &syncer.source,
        &syncer.sink,
        &store,
        &syncer.mapping,
        "demo",
        &report_dir,
        None::<&SqliteState>,
    )
    .await?;
    let reconciliation = reconciled.report;
    let drift = if opts.drift {
        let dir = report_dir.with_file_name("demo-reconciliation-drift");
        Some(drift_and_repair(&syncer, &reckon_sim, &poll, &retry, &bars, &dir).await?)
    } else {
        None
    };
    let failed = backfill.failed + rounds.iter().map(|r| r.failed).sum::<u64>() + idle.failed;
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "backfill": backfill,
                "rounds": rounds,
                "idle_run": idle,
                "invoices_checked": check.checked,
                "invoices_equal_to_the_cent": check.equal,
                "preview": {
                    "summary": plan.summary,
                    "plan": plan_html.display().to_string(),
                },
                "reconciliation": {
                    "summary": reconciliation.summary,
                    "mismatches": reconciliation.total(),
                    "report": report_html.display().to_string(),
                },
                "drift": drift.as_ref().map(|d| json!({
                    "made_in_reckon": d.made,
                    "summary": d.found.summary,
                    "mismatches": d.found.total(),
                    "report": d.report_html.display().to_string(),
                    "repair": d.repair,
                    "mismatches_after_repair": d.after.total(),
                    "left_after_repair": d.after.summary,
                })),
                "state_file": state_path.display().to_string(),
                "duration_seconds": started.elapsed().as_secs_f64(),
            }))?
        );
    } else {
        println!("\nSummary");
        let mut total = backfill.clone();
        for r in &rounds {
            for (k, e) in &r.entities {
                total.entities.entry(*k).or_default().add(e);
            }
            total.api_requests.cliniko += r.api_requests.cliniko;
            total.api_requests.reckon += r.api_requests.reckon;
            total.duration_seconds += r.duration_seconds;
        }
        print!("{}", total.table());
        println!(
            "Idle run: {} Reckon writes, {} Cliniko requests",
            idle.reckon_writes(),
            idle.api_requests.cliniko
        );
        println!(
            "Invoices in Reckon equal to Cliniko to the cent (total and GST): {} of {}",
            check.equal, check.checked
        );
        println!("\nReconciliation");
        print!("{}", crate::reconcile::summary_table(&reconciliation));
        println!("Report: {}", report_html.display());
        if let Some(d) = &drift {
            println!("\nDrift made in Reckon by hand: {}", d.made.join("; "));
            print!("{}", crate::reconcile::summary_table(&d.found));
            println!("Report: {}", d.report_html.display());
            print!("{}", crate::reconcile::repair_lines(&d.repair));
            println!(
                "After the repair and one sync: {} mismatch(es) left (a duplicate is for a person to merge in Reckon).",
                d.after.total()
            );
        }
        println!("State file: {}", state_path.display());
        println!("Finished in {:.1} s", started.elapsed().as_secs_f64());
    }
    let ok = failed == 0
        && check.equal == check.checked
        && idle.reckon_writes() == 0
        && reconciliation.is_clean()
        && drift.as_ref().is_none_or(|d| {
            d.found.total() == DRIFTS_MADE && d.after.total() == 1 && d.repair.queued() == 3
        });
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How many mismatches the demo's hand edits in Reckon make.
const DRIFTS_MADE: u64 = 4;

type DemoSyncer = Syncer<cliniko_reckon::cliniko::ClinikoClient, clients::Reckon, SqliteState>;

struct Drift {
    made: Vec<String>,
    found: ReconcileReport,
    report_html: PathBuf,
    repair: RepairSummary,
    after: ReconcileReport,
}

/// Edits Reckon behind the sync's back as a bookkeeper might (a customer renamed, a
/// duplicate customer, an invoice deleted, a line price changed), reconciles into `dir`,
/// repairs, syncs once and reconciles again.
async fn drift_and_repair(
    syncer: &DemoSyncer,
    reckon_sim: &ReckonSim,
    poll: &PollConfig,
    retry: &RetryPolicy,
    bars: &Bars,
    dir: &Path,
) -> anyhow::Result<Drift> {
    let store = &syncer.state;
    let customers = store.links(EntityKind::Patient).await?;
    let invoices = store.links(EntityKind::Invoice).await?;
    let made = reckon_sim.with_book(|b, _| -> anyhow::Result<Vec<String>> {
        let mut made = Vec::new();
        let mut linked_customers = customers
            .iter()
            .filter_map(|(_, r)| b.customers.get(&r.0).map(|c| c.id));
        let (Some(renamed), Some(copied)) = (linked_customers.next(), linked_customers.next())
        else {
            return Err(anyhow!("the demo clinic has fewer than two customers"));
        };
        if let Some(c) = b.customers.get_mut(&renamed) {
            c.name = format!("{} (edited in Reckon)", c.name);
            made.push(format!("customer renamed to {:?}", c.name));
        }
        if let Some(c) = b.customers.get(&copied) {
            let mut copy = c.clone();
            copy.id = uuid::Uuid::new_v4();
            copy.name = format!("{} (duplicate)", c.name);
            made.push(format!("duplicate customer {:?} added", copy.name));
            b.customers.insert(copy.id, copy);
        }
        let mut open = invoices
            .iter()
            .filter_map(|(_, r)| b.invoices.get(&r.0))
            .filter(|i| i.status == "Approved")
            .map(|i| i.id);
        let (Some(deleted), Some(edited)) = (open.next(), open.next()) else {
            return Err(anyhow!(
                "the demo clinic has fewer than two unpaid invoices"
            ));
        };
        if let Some(i) = b.invoices.shift_remove(&deleted) {
            made.push(format!(
                "invoice {} deleted",
                i.reference.unwrap_or_default()
            ));
        }
        if let Some(i) = b.invoices.get_mut(&edited)
            && let Some(line) = i.lines.first_mut()
        {
            let price = match &mut line.detail {
                LineDetail::Item { price, .. } => price,
                LineDetail::Account { amount, .. } => amount,
            };
            *price = Some(price.unwrap_or_default() + Decimal::new(1000, 2));
            made.push(format!(
                "invoice {} line 1 raised by $10.00",
                i.reference.clone().unwrap_or_default()
            ));
        }
        Ok(made)
    })?;
    let (reconciled, report_html) = crate::reconcile::reconcile_into(
        &syncer.source,
        &syncer.sink,
        store,
        &syncer.mapping,
        "demo",
        dir,
        Some(store),
    )
    .await?;
    let found = reconciled.report;
    let repaired = reconciled.repair.unwrap_or_default();
    run_once(syncer, poll, retry, Requeue::Retryable, bars).await?;
    bars.reset();
    let after = reconcile(
        &syncer.source,
        &syncer.sink,
        store,
        &syncer.mapping,
        "demo",
        chrono::Utc::now(),
    )
    .await?;
    Ok(Drift {
        made,
        found,
        report_html,
        repair: repaired,
        after,
    })
}

struct InvoiceCheck {
    checked: usize,
    equal: usize,
}

/// Compares the Reckon invoice of every attended appointment with what the simulator's own
/// arithmetic charges for it (its type's billable items, tax exclusive); a cancelled one's
/// invoice must be credited in full.
async fn check_appointments(
    cliniko: &ClinikoSim,
    reckon: &ReckonSim,
    store: &SqliteState,
) -> anyhow::Result<InvoiceCheck> {
    use simulators::cliniko::invoice_math::{Discount, line_totals};
    // (id, whether complete, total and tax the simulator charges)
    let appointments: Vec<(u64, bool, Decimal, Decimal)> = cliniko.with(|s| {
        s.tables
            .appointments
            .values()
            .map(|a| {
                let (mut total, mut tax) = (Decimal::ZERO, Decimal::ZERO);
                for l in s
                    .tables
                    .appointment_type_billable_items
                    .values()
                    .filter(|l| l.appointment_type_id == a.appointment_type_id)
                {
                    if let Some(item) = l
                        .billable_item_id
                        .and_then(|id| s.tables.billable_items.get(&id))
                    {
                        let rate = s.tax_rate(item.tax_id).map(|t| t.rate).unwrap_or_default();
                        let t = line_totals(item.price, l.quantity, Discount::None, rate, false);
                        total += t.total_including_tax;
                        tax += t.tax;
                    }
                }
                let complete = a.patient_arrived == Some(true)
                    && a.did_not_arrive != Some(true)
                    && a.cancelled_at.is_none()
                    && a.archived_at.is_none()
                    && a.deleted_at.is_none();
                (a.id, complete, total, tax)
            })
            .collect()
    });
    let mut check = InvoiceCheck {
        checked: 0,
        equal: 0,
    };
    for (id, complete, total, tax) in appointments {
        let linked = store
            .cross_ref(EntityKind::Appointment, ClinikoId(id))
            .await?;
        if !complete && linked.is_none() {
            continue;
        }
        check.checked += 1;
        let Some(x) = linked else {
            continue;
        };
        let equal = reckon.with_book(|b, _| {
            b.invoices.get(&x.reckon_id.0).is_some_and(|inv| {
                let t = b.invoice_totals(inv);
                let balance = b.invoice_balance(inv);
                t.total == total
                    && t.total_tax == tax
                    && if complete {
                        balance == total
                    } else {
                        balance.is_zero()
                    }
            })
        });
        if equal {
            check.equal += 1;
        }
    }
    Ok(check)
}

/// Compares every linked invoice's (and credit note's) total and tax in the Reckon
/// simulator with Cliniko's.
async fn check_invoices(
    cliniko: &ClinikoSim,
    reckon: &ReckonSim,
    store: &SqliteState,
) -> anyhow::Result<InvoiceCheck> {
    let invoices: Vec<(u64, Decimal, Decimal)> = cliniko.with(|s| {
        s.tables
            .invoices
            .values()
            .filter(|i| i.archived_at.is_none() && i.deleted_at.is_none())
            .map(|i| {
                (
                    i.id,
                    i.total_amount.unwrap_or_default(),
                    i.tax_amount.unwrap_or_default(),
                )
            })
            .collect()
    });
    let mut check = InvoiceCheck {
        checked: 0,
        equal: 0,
    };
    for (id, total, tax) in invoices {
        check.checked += 1;
        let Some(x) = store.cross_ref(EntityKind::Invoice, ClinikoId(id)).await? else {
            continue;
        };
        // A Cliniko credit note (negative total) is a Reckon credit note, amounts positive.
        let equal = reckon.with_book(|b, _| {
            if total < Decimal::ZERO {
                return b.credit_notes.get(&x.reckon_id.0).is_some_and(|c| {
                    let t = b.credit_note_totals(c);
                    t.total == -total && t.total_tax == -tax
                });
            }
            b.invoices.get(&x.reckon_id.0).is_some_and(|inv| {
                let t = b.invoice_totals(inv);
                t.total == total && t.total_tax == tax
            })
        });
        if equal {
            check.equal += 1;
        }
    }
    Ok(check)
}
