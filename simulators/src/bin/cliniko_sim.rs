//! `cliniko-sim`: the Cliniko API v1 simulator as a standalone server, seeded with a
//! generated clinic, with the vendor's auth, paging, rate limit and optional fault injection.

use anyhow::Context;
use clap::Parser;
use simulators::cliniko::{ClinikoConfig, ClinikoSim, DEFAULT_API_KEY};
use simulators::common::FaultRule;
use simulators::generator::{self, ClinicSize};

fn probability(text: &str) -> Result<f64, String> {
    let p: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not between 0 and 1"))
    }
}

/// A local stand-in for the Cliniko API v1 (https://api.<shard>.cliniko.com/v1).
///
/// Clients authenticate with HTTP Basic (API key as user name, empty password), send
/// `Accept: application/json` and a `User-Agent: App Name (contact@email)`. Test controls
/// live under /__admin (no auth).
#[derive(Parser, Debug)]
#[command(name = "cliniko-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8081)]
    port: u16,

    /// Seed for the generated data and for fault injection (same seed, same behaviour).
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Clinic size: patients in the seeded clinic (with about 2.5 invoices each).
    #[arg(long, default_value_t = 50)]
    size: usize,

    /// Accepted API key (repeatable). Keys work with or without their `-shard` suffix.
    /// Default: the built-in demo key.
    #[arg(long = "api-key", value_name = "KEY")]
    api_keys: Vec<String>,

    /// Requests per minute per user before 429 + X-RateLimit-Reset (Cliniko: 200); 0 = off.
    #[arg(long, default_value_t = 200, value_name = "PER_MINUTE")]
    rate_limit: u32,

    /// Probability (0..1) of answering 500, 502 or 503 instead of serving the request.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    error_rate: f64,

    /// Path glob the error rate applies to (`*` matches anything), e.g. `/v1/invoices*`.
    #[arg(long, default_value = "/v1/*", value_name = "GLOB")]
    error_route: String,

    /// Latency added to every API request, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    latency_ms: u64,

    /// Probability (0..1) that a request hangs (answered 504 only after 5 minutes).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    hang_rate: f64,

    /// Probability (0..1) that the connection is dropped after the response headers.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    drop_rate: f64,

    /// Accept requests whose User-Agent has no `(contact email)` instead of answering 403.
    #[arg(long)]
    no_user_agent_check: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let api_keys = if args.api_keys.is_empty() {
        vec![DEFAULT_API_KEY.to_string()]
    } else {
        args.api_keys.clone()
    };
    let sim = ClinikoSim::new(ClinikoConfig {
        api_keys: api_keys.clone(),
        rate_limit_per_minute: args.rate_limit,
        seed: args.seed,
        capture_traffic: false,
        require_user_agent_email: !args.no_user_agent_check,
        ..Default::default()
    });
    sim.with(|s| generator::seed_clinic(s, args.seed, ClinicSize::with_patients(args.size)));

    if args.error_rate > 0.0 {
        sim.faults.add(FaultRule {
            path: Some(args.error_route.clone()),
            error_rate: args.error_rate,
            ..Default::default()
        });
    }
    if args.latency_ms > 0 || args.hang_rate > 0.0 || args.drop_rate > 0.0 {
        sim.faults.add(FaultRule {
            path: Some("/v1/*".into()),
            latency_ms: args.latency_ms,
            hang_rate: args.hang_rate,
            drop_rate: args.drop_rate,
            ..Default::default()
        });
    }

    let server = sim
        .start(&args.host, args.port)
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let origin = server.origin();
    let tables = sim.state().summary();
    println!("cliniko-sim listening");
    println!("  base URL:   {origin}/v1");
    for key in &api_keys {
        println!("  API key:    {key}");
    }
    println!("  auth:       HTTP Basic, API key as user name, empty password");
    println!("  headers:    Accept: application/json; User-Agent: App Name (you@example.com)");
    println!(
        "  rate limit: {}",
        if args.rate_limit == 0 {
            "off".to_string()
        } else {
            format!("{} requests/minute per user", args.rate_limit)
        }
    );
    println!("  seeded:     {tables:?}");
    println!("  admin routes (no auth):");
    for (method, path, what) in [
        ("GET", "/__admin/state", "table sizes, API key, rate limit"),
        (
            "POST",
            "/__admin/invoices",
            "create an invoice {patient_id, items: [...]}",
        ),
        (
            "PATCH",
            "/__admin/invoices/{id}",
            "status, notes, items, archived, deleted",
        ),
        (
            "POST",
            "/__admin/patients/{id}/merge",
            "{\"into\": \"<survivor id>\"}",
        ),
        (
            "POST",
            "/__admin/import/{resource}",
            "Cliniko JSON: a record or a list envelope",
        ),
        (
            "POST",
            "/__admin/rate_limit",
            "{\"per_minute\": N} (0 = off)",
        ),
        ("GET|POST|DELETE", "/__admin/faults", "fault rules"),
        ("POST", "/__admin/outage", "{\"down\": true|false}"),
        ("POST", "/__admin/clock/advance", "{\"seconds\": N}"),
        ("GET|DELETE", "/__admin/requests", "request counters"),
    ] {
        println!("    {method:<16} {origin}{path:<30} {what}");
    }
    tracing::info!(%origin, "cliniko-sim ready; Ctrl-C to stop");

    tokio::select! {
        result = server.wait() => result.context("server stopped")?,
        signal = tokio::signal::ctrl_c() => {
            signal.context("cannot listen for Ctrl-C")?;
            tracing::info!("stopping");
        }
    }
    Ok(())
}
