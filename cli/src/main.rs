//! `cliniko-reckon`: the Cliniko → Reckon One sync on one machine, with SQLite state.

#[cfg(feature = "aws")]
mod aws;
mod clients;
mod commands;
mod demo;
mod preview;
mod reconcile;
mod report;
mod settings;
mod tenants;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Keeps a clinic's Reckon One books in step with Cliniko: patients become customers,
/// products and billable items become items, invoices become invoices with GST to the cent.
#[derive(Parser, Debug)]
#[command(name = "cliniko-reckon", version)]
struct Cli {
    /// TOML configuration file. For the `default` clinic environment variables override its
    /// values; with `tenants add` it is the new clinic's file (never overridden).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// SQLite state file (watermarks, links, queue, audit log, Reckon tokens) of every
    /// clinic it serves.
    #[arg(long, global = true, value_name = "PATH")]
    state: Option<PathBuf>,

    /// The clinic (see `tenants`) a command is for; without it, `default`: the clinic of
    /// `--config` and the environment.
    #[arg(long, global = true, value_name = "ID")]
    tenant: Option<cliniko_reckon::domain::TenantId>,

    /// `tenants` and `connect` for an AWS deployment: its state table (the stack output
    /// `StateTableName`). Credentials and region from the AWS environment.
    #[cfg(feature = "aws")]
    #[arg(long, global = true, value_name = "TABLE")]
    aws_table: Option<String>,

    /// With --aws-table: where the tenants' secrets are (stack output `TenantSecretPrefix`).
    #[cfg(feature = "aws")]
    #[arg(
        long,
        global = true,
        value_name = "PREFIX",
        default_value = "cliniko-reckon/tenants/"
    )]
    secret_prefix: String,

    /// With --aws-table: the KMS key new secrets are encrypted with (stack output `DataKeyArn`).
    #[cfg(feature = "aws")]
    #[arg(long, global = true, value_name = "KEY")]
    kms_key: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole sync against the bundled simulators with a seeded clinic: backfill,
    /// then rounds of live Cliniko edits synced incrementally, then a summary.
    Demo(DemoArgs),
    /// Sync Cliniko changes to Reckon: once (drain and exit) or continuously.
    Sync(SyncArgs),
    /// Connect to Reckon One (OAuth code flow in the browser, or a refresh token).
    Connect(ConnectArgs),
    /// Watermarks, queued and failed work, and the latest errors.
    Status(StatusArgs),
    /// Compare Cliniko and Reckon in full and write the mismatch report (JSON, CSV per
    /// category, HTML). Exits with 2 when mismatches exist.
    Reconcile(ReconcileArgs),
    /// Accept a link suggestion from the report: Cliniko's record is this Reckon record.
    Link(LinkArgs),
    /// Configuration commands.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The clinics this state file serves (or, with --aws-table, an AWS deployment serves):
    /// add, list, pause, resume, remove.
    #[command(subcommand)]
    Tenants(TenantsCommand),
}

#[derive(Subcommand, Debug)]
enum TenantsCommand {
    /// Register a clinic (or point it at another file): its TOML file holds its Cliniko key,
    /// Reckon book and client, mapping and pacing. Environment variables never apply to it.
    /// The file is the global `--config FILE`; it stays where it is and is read on every run.
    Add {
        /// The clinic's id: 1-64 letters, digits, '_', '.' or '-'.
        id: cliniko_reckon::domain::TenantId,
    },
    /// Every clinic with its status, links, queue, failures and how far it is synced.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop syncing a clinic, keeping all of its state (a running `sync --watch` stops it
    /// before its next run).
    Pause {
        /// The clinic's id.
        id: cliniko_reckon::domain::TenantId,
        /// Why (shown by `tenants list` and `status`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Sync a paused clinic again, from where it stopped.
    Resume {
        /// The clinic's id.
        id: cliniko_reckon::domain::TenantId,
    },
    /// Forget a clinic and all of its sync state. Cliniko and Reckon are untouched.
    Remove {
        /// The clinic's id.
        id: cliniko_reckon::domain::TenantId,
    },
}

#[derive(Args, Debug)]
struct ReconcileArgs {
    /// Directory for report.json, report.html and one CSV per category.
    #[arg(long, value_name = "DIR", default_value = "reconciliation")]
    out: PathBuf,
    /// Print the JSON report on stdout instead of the summary.
    #[arg(long)]
    json: bool,
    /// Also queue what the sync can put right (missing, drifted, deleted-in-Reckon records
    /// and waiting failures). Nothing is deleted in Reckon.
    #[arg(long)]
    repair: bool,
}

#[derive(Args, Debug)]
struct LinkArgs {
    /// What the Cliniko record is: patient, product, billable_item or invoice.
    #[arg(value_parser = parse_kind)]
    kind: cliniko_reckon::domain::EntityKind,
    /// The Cliniko record's id.
    cliniko_id: cliniko_reckon::domain::ClinikoId,
    /// The Reckon record's id (customer, item or invoice).
    reckon_id: cliniko_reckon::domain::ReckonId,
}

fn parse_kind(text: &str) -> Result<cliniko_reckon::domain::EntityKind, String> {
    use cliniko_reckon::domain::EntityKind;
    let wanted = text.trim().to_lowercase().replace('-', "_");
    EntityKind::ALL
        .into_iter()
        .find(|k| k.as_str() == wanted)
        .ok_or_else(|| {
            "expected patient, product, billable_item, invoice or appointment".to_string()
        })
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Patients in the seeded clinic.
    #[arg(long, default_value_t = 300)]
    size: usize,
    /// Seed for the generated clinic.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Rounds of live Cliniko edits after the backfill.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Reckon customers that already exist before the first sync (linked by email).
    #[arg(long, default_value_t = 12)]
    existing_customers: usize,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Then edit Reckon by hand (rename, duplicate, delete, re-price), reconcile, repair
    /// and reconcile again: what the report looks like when something is wrong.
    #[arg(long, conflicts_with = "invoicing")]
    drift: bool,
    /// Where the clinic's Reckon invoices come from: cliniko_invoices, completed_appointments
    /// (an appointments clinic: attended appointments are invoiced, a cancellation withdrawn)
    /// or both.
    #[arg(long, default_value = "cliniko_invoices", value_parser = parse_invoicing)]
    invoicing: cliniko_reckon::mapping::appointment::InvoicingSource,
}

fn parse_invoicing(
    text: &str,
) -> Result<cliniko_reckon::mapping::appointment::InvoicingSource, String> {
    use cliniko_reckon::mapping::appointment::InvoicingSource;
    match text.trim() {
        "cliniko_invoices" => Ok(InvoicingSource::ClinikoInvoices),
        "completed_appointments" => Ok(InvoicingSource::CompletedAppointments),
        "both" => Ok(InvoicingSource::Both),
        _ => Err("expected cliniko_invoices, completed_appointments or both".into()),
    }
}

#[derive(Args, Debug)]
struct SyncArgs {
    /// Poll once, apply everything queued (waiting for due retries), then exit.
    #[arg(long, conflicts_with = "watch", required_unless_present = "watch")]
    once: bool,
    /// Keep polling and applying until interrupted.
    #[arg(long)]
    watch: bool,
    /// Time between polls with --watch (e.g. 10s, 2m).
    #[arg(long, default_value = "10s", value_parser = settings::parse_interval, requires = "watch")]
    interval: std::time::Duration,
    /// Print a JSON summary per run.
    #[arg(long)]
    json: bool,
    /// Preview only (with --once): read both sides, write nothing to Reckon, change no
    /// sync state, and write the plan (plan.json, plan.csv, plan.html) to --out. Exits with
    /// 2 when records would be blocked.
    #[arg(long, requires = "once")]
    dry_run: bool,
    /// Where --dry-run writes its plan.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "preview",
        requires = "dry_run"
    )]
    out: PathBuf,
    /// Also retry records parked for good (unreadable, unmapped, refused by Reckon), after
    /// fixing the cause; passing failures (outages) are retried on every run anyway.
    #[arg(long)]
    retry_failed: bool,
    /// Every active clinic of the state file at once (each with its own clients, pacing and
    /// queue); with --watch, clinics added or resumed meanwhile join on the next interval.
    #[arg(long, conflicts_with = "dry_run")]
    all_tenants: bool,
}

#[derive(Args, Debug)]
struct ConnectArgs {
    /// Skip the browser: store tokens obtained by refreshing this token.
    #[arg(long, value_name = "TOKEN")]
    refresh_token: Option<String>,
    /// Write the token pair to this new file (owner-only), in the AWS tokens secret's JSON
    /// format, instead of the state file.
    #[arg(long, value_name = "FILE")]
    tokens_json: Option<PathBuf>,
    /// Give up waiting for the browser after this long.
    #[arg(long, default_value = "5m", value_parser = settings::parse_interval)]
    timeout: std::time::Duration,
}

#[derive(Args, Debug)]
struct StatusArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate the configuration and reach both APIs.
    Check,
}

fn main() -> ExitCode {
    // A closed pipe (`status | head`) ends the command quietly, as for any Unix tool,
    // instead of panicking on the next print.
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread exists; SIG_DFL is always a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let state = cli.state.as_deref();
        let scope = settings::Scope {
            config: cli.config.clone(),
            state: cli.state.clone(),
            tenant: cli.tenant.clone(),
        };
        #[cfg(feature = "aws")]
        if let Some(table) = cli.aws_table.clone() {
            let d = aws::Deployment {
                table,
                secret_prefix: cli.secret_prefix.clone(),
                kms_key: cli.kms_key.clone(),
            };
            use cliniko_reckon::ports::TenantStatus;
            return match cli.command {
                Command::Connect(a) if a.tokens_json.is_some() => Err(anyhow::anyhow!(
                    "--tokens-json writes a file for a hand-managed secret; with --aws-table the tokens go straight into the tenant's secret: drop one of them"
                )),
                Command::Connect(a) => aws::connect(&scope, &d, a.refresh_token, a.timeout).await,
                Command::Tenants(TenantsCommand::Add { id }) => aws::add(&scope, &d, &id).await,
                Command::Tenants(TenantsCommand::List { json }) => aws::list(&d, json).await,
                Command::Tenants(TenantsCommand::Pause { id, reason }) => {
                    aws::set_status(&d, &id, TenantStatus::Paused, reason.as_deref()).await
                }
                Command::Tenants(TenantsCommand::Resume { id }) => {
                    aws::set_status(&d, &id, TenantStatus::Active, None).await
                }
                Command::Tenants(TenantsCommand::Remove { id }) => aws::remove(&d, &id).await,
                _ => Err(anyhow::anyhow!(
                    "--aws-table applies to `tenants` and `connect`; on AWS the functions sync, reconcile and report"
                )),
            };
        }
        match cli.command {
            Command::Demo(a) => {
                demo::run(demo::DemoOptions {
                    size: a.size,
                    seed: a.seed,
                    rounds: a.rounds,
                    existing_customers: a.existing_customers,
                    json: a.json,
                    drift: a.drift,
                    invoicing: a.invoicing,
                    state,
                })
                .await
            }
            Command::Sync(a) if a.dry_run => preview::run(&scope, a.json, Some(a.out)).await,
            Command::Sync(a) => {
                commands::sync(
                    &scope,
                    a.all_tenants,
                    a.watch.then_some(a.interval),
                    a.json,
                    a.retry_failed,
                )
                .await
            }
            Command::Connect(a) => {
                commands::connect(&scope, a.refresh_token, a.tokens_json, a.timeout).await
            }
            Command::Status(a) => commands::status(&scope, a.json).await,
            Command::Reconcile(a) => reconcile::run(&scope, Some(a.out), a.json, a.repair).await,
            Command::Link(a) => {
                reconcile::link_records(&scope, a.kind, a.cliniko_id, a.reckon_id).await
            }
            Command::Config(ConfigCommand::Check) => commands::config_check(&scope).await,
            Command::Tenants(t) => match t {
                TenantsCommand::Add { id } => tenants::add(&scope, &id).await,
                TenantsCommand::List { json } => tenants::list(&scope, json).await,
                TenantsCommand::Pause { id, reason } => {
                    tenants::set_status(
                        &scope,
                        &id,
                        cliniko_reckon::ports::TenantStatus::Paused,
                        reason.as_deref(),
                    )
                    .await
                }
                TenantsCommand::Resume { id } => {
                    tenants::set_status(
                        &scope,
                        &id,
                        cliniko_reckon::ports::TenantStatus::Active,
                        None,
                    )
                    .await
                }
                TenantsCommand::Remove { id } => tenants::remove(&scope, &id).await,
            },
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line, the cause chain joined: what failed and why.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
