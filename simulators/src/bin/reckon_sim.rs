//! `reckon-sim`: a local Reckon One API v2 (with its identity server) for development and
//! end-to-end runs of the sync. Prints everything a client needs to connect, then serves
//! until Ctrl-C.

use clap::Parser;
use simulators::cliniko::store::ClinikoState;
use simulators::common::FaultRule;
use simulators::common::SimClock;
use simulators::generator::{self, ClinicSize};
use simulators::reckon::oauth::OAuthConfig;
use simulators::reckon::tax::Rounding;
use simulators::reckon::{DEFAULT_SUBSCRIPTION_KEY, ReckonConfig, ReckonSim};

/// A faithful local stand-in for the Reckon One API v2 (served under /r1/v2) and its OAuth 2
/// identity server (/connect/authorize, /connect/token, /connect/revocation).
#[derive(Parser, Debug)]
#[command(name = "reckon-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// Port to listen on (0 picks a free port).
    #[arg(long, default_value_t = 8082)]
    port: u16,

    /// Seed for fault injection and the seeded clinic (same seed, same faults and customers).
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// OAuth client id accepted by /connect/token (HTTP Basic).
    #[arg(long, default_value = "cliniko-reckon-sync")]
    client_id: String,

    /// OAuth client secret accepted by /connect/token (HTTP Basic).
    #[arg(long, default_value = "sim-client-secret")]
    client_secret: String,

    /// Accepted Ocp-Apim-Subscription-Key value; repeat the flag for several keys
    /// [default: sim-subscription-key-0123456789abcdef].
    #[arg(long = "subscription-key")]
    subscription_keys: Vec<String>,

    /// Access-token lifetime in seconds (`expires_in`).
    #[arg(long, default_value_t = 10800)]
    access_token_ttl: i64,

    /// Keep refresh tokens valid after use (IdentityServer `ReUse`); by default they rotate and
    /// are single-use (`OneTime`).
    #[arg(long)]
    reuse_refresh_tokens: bool,

    /// Requests per minute per subscription key (token bucket; 0 = off). Reckon publishes no
    /// limit values; 60/min is the simulator's assumption.
    #[arg(long, default_value_t = 60)]
    rate_limit: u32,

    /// Token-bucket burst capacity [default: the --rate-limit value].
    #[arg(long)]
    rate_burst: Option<u32>,

    /// Largest `perpage` honoured on lists (Reckon's maximum is undocumented).
    #[arg(long, default_value_t = 100)]
    max_per_page: usize,

    /// How invoice GST is rounded to cents.
    #[arg(long, value_enum, default_value_t = Rounding::LineHalfUp)]
    rounding: Rounding,

    /// Fault injection: probability (0..1) of answering 500/502/503.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,

    /// Fault injection: path glob the --error-rate applies to (`*` = any run of characters),
    /// e.g. `/r1/v2/*/invoices*` [default: every route].
    #[arg(long)]
    error_route: Option<String>,

    /// Fault injection: latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,

    /// Fault injection: probability (0..1) of a hung request (held 300 s, then 504).
    #[arg(long, default_value_t = 0.0)]
    hang_rate: f64,

    /// Fault injection: probability (0..1) of a dropped connection after the headers.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,

    /// Pre-populate the book with N customers who already exist before the first sync: patients
    /// of the seeded clinic (the same --seed and --size as cliniko-sim's, so
    /// their emails match), typed as a bookkeeper would ("Last, First", capitals).
    #[arg(long, default_value_t = 0)]
    existing_customers: usize,

    /// Clinic size (patients) of the seeded clinic that --existing-customers are drawn from.
    #[arg(long = "size", default_value_t = 300)]
    clinic_size: usize,
}

fn config(args: &Args) -> ReckonConfig {
    let subscription_keys = if args.subscription_keys.is_empty() {
        vec![DEFAULT_SUBSCRIPTION_KEY.to_string()]
    } else {
        args.subscription_keys.clone()
    };
    ReckonConfig {
        oauth: OAuthConfig {
            client_id: args.client_id.clone(),
            client_secret: args.client_secret.clone(),
            access_ttl_secs: args.access_token_ttl,
            rotate_refresh_tokens: !args.reuse_refresh_tokens,
            ..OAuthConfig::default()
        },
        subscription_keys,
        rate_limit_per_minute: args.rate_limit,
        rate_limit_burst: args.rate_burst.unwrap_or(args.rate_limit),
        max_per_page: args.max_per_page.max(1),
        rounding: args.rounding,
        seed: args.seed,
        ..ReckonConfig::default()
    }
}

fn install_faults(sim: &ReckonSim, args: &Args) {
    if args.error_rate > 0.0 {
        sim.faults.add(FaultRule {
            path: args.error_route.clone(),
            error_rate: args.error_rate,
            ..FaultRule::default()
        });
    }
    if args.latency_ms > 0 || args.hang_rate > 0.0 || args.drop_rate > 0.0 {
        sim.faults.add(FaultRule {
            latency_ms: args.latency_ms,
            hang_rate: args.hang_rate,
            drop_rate: args.drop_rate,
            ..FaultRule::default()
        });
    }
}

fn seed_customers(sim: &ReckonSim, args: &Args) -> usize {
    if args.existing_customers == 0 {
        return 0;
    }
    let mut clinic = ClinikoState::new(SimClock::new());
    generator::seed_clinic(
        &mut clinic,
        args.seed,
        ClinicSize::with_patients(args.clinic_size),
    );
    let mut customers = generator::existing_reckon_customers(&clinic, args.seed, 1.0);
    customers.truncate(args.existing_customers);
    sim.with_book(|book, ctx| generator::seed_reckon_customers(book, ctx, &customers))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let sim = ReckonSim::new(config(&args));
    install_faults(&sim, &args);
    let seeded = seed_customers(&sim, &args);
    let server = sim.start(&args.host, args.port).await?;
    let origin = server.origin();
    let tokens = sim.issue_tokens();
    let cfg = sim.config();
    println!("Reckon One simulator listening on {origin}");
    println!("API base URL:      {origin}/r1/v2");
    println!(
        "Identity URL:      {origin}  (/connect/authorize, /connect/token, /connect/revocation)"
    );
    println!("Book id:           {}", sim.book_id());
    println!("Client id:         {}", cfg.oauth.client_id);
    println!("Client secret:     {}", cfg.oauth.client_secret);
    println!(
        "Subscription key:  {}",
        cfg.subscription_keys
            .first()
            .map(String::as_str)
            .unwrap_or("")
    );
    println!("Bearer token:      {}", tokens.access_token);
    println!("Refresh token:     {}", tokens.refresh_token);
    println!(
        "Admin routes:      GET {origin}/__admin/state, POST /__admin/tokens, POST /__admin/tokens/expire, \
         GET|POST|DELETE /__admin/faults, POST /__admin/outage, POST /__admin/clock/advance, GET|DELETE /__admin/requests"
    );
    tracing::info!(
        rate_limit = args.rate_limit,
        rounding = ?args.rounding,
        customers = seeded,
        "reckon-sim ready"
    );
    tokio::select! {
        result = server.wait() => result?,
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received, stopping"),
    }
    Ok(())
}
