//! `cliniko-sim`: the Cliniko API v1 simulator as a standalone server, seeded with a small
//! clinic, with the vendor's auth, paging, rate limit and optional fault injection.

use anyhow::Context;
use clap::Parser;
use rust_decimal::Decimal;
use serde_json::json;
use simulators::cliniko::model::*;
use simulators::cliniko::store::{ClinikoState, InvoiceSpec, ItemSpec};
use simulators::cliniko::{ClinikoConfig, ClinikoSim, DEFAULT_API_KEY};
use simulators::common::FaultRule;

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

    /// Number of patients to seed the clinic with.
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
    // TODO(generator): replace with the seeded clinic generator (`simulators::generator`)
    // once it is merged: `sim.with(|s| generator::seed(s, args.seed, args.size))`.
    sim.with(|s| seed_fixtures(s, args.size));

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

/// A handful of fixture records: one business, practitioner, tax, appointment type, billable
/// item and product, `patients` patients, and an appointment plus invoice for every other one.
fn seed_fixtures(s: &mut ClinikoState, patients: usize) {
    let now = s.now();
    let gst = s.fresh_id();
    s.insert(Tax {
        id: gst,
        name: "GST".into(),
        rate: Decimal::TEN,
        amount: Decimal::TEN,
        created_at: now,
        updated_at: now,
    });
    let business = s.fresh_id();
    s.insert(Business {
        id: business,
        business_name: Some("Harbour Physiotherapy".into()),
        display_name: Some("Harbour Physio".into()),
        label: Some("Harbour Physio".into()),
        city: Some("Hobart".into()),
        state: Some("Tasmania".into()),
        country: Some("Australia".into()),
        country_code: Some("AU".into()),
        business_registration_name: Some("ABN".into()),
        business_registration_value: Some("51 824 753 556".into()),
        time_zone: Some("Hobart".into()),
        time_zone_identifier: Some("Australia/Hobart".into()),
        created_at: now,
        updated_at: now,
        ..Default::default()
    });
    let practitioner = s.fresh_id();
    s.insert(Practitioner {
        id: practitioner,
        active: Some(true),
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        display_name: Some("Ada Lovelace".into()),
        label: Some("Ada Lovelace, Physiotherapist".into()),
        designation: Some("Physiotherapist".into()),
        show_in_online_bookings: Some(true),
        created_at: now,
        updated_at: now,
        ..Default::default()
    });
    let consult = s.fresh_id();
    s.insert(BillableItem {
        id: consult,
        name: "Standard consultation".into(),
        item_code: Some("SC".into()),
        item_type: "Service".into(),
        price: Decimal::new(9500, 2),
        created_at: now,
        updated_at: now,
        ..Default::default()
    });
    let appointment_type = s.fresh_id();
    s.insert(AppointmentType {
        id: appointment_type,
        name: "Standard consultation".into(),
        category: Some("Physio".into()),
        color: "#3a87ad".into(),
        duration_in_minutes: 30,
        max_attendees: 1,
        show_in_online_bookings: Some(true),
        telehealth_enabled: Some(false),
        created_at: now,
        updated_at: now,
        billable_item_id: Some(consult),
        ..Default::default()
    });
    let product = s
        .create_product(
            &json!({"name": "Theraband", "item_code": "TB-1", "price": 22,
                "price_includes_tax": true, "tax_id": gst.to_string(), "stock_level": "40"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        )
        .map(|p| p.id)
        .ok();
    const FIRST: [&str; 8] = [
        "Zoë", "Liam", "Aroha", "Mei", "Jack", "Priya", "Sione", "Ella",
    ];
    const LAST: [&str; 6] = ["O'Brien", "Nguyen", "Smith", "Tane", "Kowalski", "Singh"];
    for i in 0..patients {
        let body = json!({"first_name": FIRST[i % FIRST.len()],
            "last_name": LAST[(i / FIRST.len()) % LAST.len()],
            "email": format!("patient{i}@example.com"), "country_code": "AU",
            "patient_phone_numbers": [{"number": format!("0400 000 {:03}", i % 1000), "phone_type": "Mobile"}]});
        let Ok(patient) = s.create_patient(body.as_object().expect("an object")) else {
            continue;
        };
        if i % 2 != 0 {
            continue;
        }
        let start = now - chrono::TimeDelta::days(1 + i as i64);
        let appt = s.fresh_id();
        s.insert(IndividualAppointment {
            id: appt,
            starts_at: start,
            ends_at: start + chrono::TimeDelta::minutes(30),
            patient_name: Some(patient.full_label()),
            did_not_arrive: Some(false),
            patient_arrived: Some(true),
            email_reminder_sent: Some(true),
            sms_reminder_sent: Some(false),
            invoice_status: Some(invoice_status::OPEN),
            created_at: now,
            updated_at: now,
            patient_id: Some(patient.id),
            practitioner_id: Some(practitioner),
            business_id: Some(business),
            appointment_type_id: Some(appointment_type),
            ..Default::default()
        });
        let mut items = vec![ItemSpec {
            billable_item_id: Some(consult),
            ..Default::default()
        }];
        if i % 4 == 0 {
            items.push(ItemSpec {
                product_id: product,
                ..Default::default()
            });
        }
        let spec = InvoiceSpec {
            patient_id: Some(patient.id),
            business_id: Some(business),
            practitioner_id: Some(practitioner),
            appointment_id: Some(appt),
            status: Some(if i % 3 == 0 {
                invoice_status::PAID
            } else {
                invoice_status::OPEN
            }),
            items,
            ..Default::default()
        };
        if let Err(e) = s.create_invoice(&spec) {
            tracing::warn!(?e, "fixture invoice not created");
        }
    }
}
