//! The Lambda entry points: build everything once per execution environment (outside the
//! handler), then serve events. Each function's `main.rs` calls one of these.

use crate::wiring::Aws;
use crate::{PollLoop, emf, handle_batch, poll_rounds};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cliniko_reckon::domain::EntityKind;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::time::{Duration, Instant};

/// JSON logs without timestamps (CloudWatch adds them), level from `RUST_LOG`.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .without_time()
        .with_target(false)
        .init();
}

/// A sync worker for the entity types its queue carries.
pub async fn run_sync_worker(accepts: &'static [EntityKind]) -> Result<(), Error> {
    init_logging();
    let aws = Aws::from_env().await?;
    let syncer = aws.syncer().await?;
    let (syncer, serves) = (&syncer, &aws.tenant);
    // As the stack sets it from the queue's redrive policy (infra/lib/entity-queue.ts).
    let max_receives = env_number("MAX_RECEIVE_COUNT", 5, 1, 1000)? as u32;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let response: SqsBatchResponse =
            handle_batch(syncer, event.payload, accepts, max_receives, serves).await?;
        Ok::<_, Error>(response)
    }))
    .await
}

/// A whole number from the environment within `min..=max` (`default` when unset); a bad
/// value stops the cold start with the variable named, never silently the default.
fn env_number(name: &str, default: u64, min: u64, max: u64) -> Result<u64, Error> {
    let Some(text) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    match text.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => {
            Err(format!("{name}: expected a whole number from {min} to {max}, got {text:?}").into())
        }
    }
}

/// The poller: `POLL_ROUNDS` rounds (default 1), `POLL_PAUSE_SECONDS` apart (default 10),
/// per scheduled invocation; emits the poller-lag metric after each successful invocation.
pub async fn run_poller() -> Result<(), Error> {
    init_logging();
    let aws = Aws::from_env().await?;
    let source = aws.cliniko().await?;
    let state = aws.state()?;
    let queue = aws.queue()?;
    let plan = PollLoop {
        rounds: env_number("POLL_ROUNDS", 1, 1, 12)? as u32,
        pause: Duration::from_secs(env_number("POLL_PAUSE_SECONDS", 10, 0, 60)?),
        ..PollLoop::default()
    };
    let (source, state, queue, plan) = (&source, &state, &queue, &plan);
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            let started = Instant::now();
            let summary = poll_rounds(source, state, queue, plan).await?;
            let per_round = started.elapsed().as_secs_f64() / f64::from(summary.rounds.max(1));
            emf::emit(emf::Metric::WatermarkAgeSeconds, per_round);
            tracing::info!(
                rounds = summary.rounds,
                enqueued = summary.enqueued,
                "polled"
            );
            Ok::<_, Error>(serde_json::to_value(&summary)?)
        },
    ))
    .await
}

/// The nightly reconciler: reads both sides in full, writes the report to S3 and emits the
/// mismatch counts (the alarm fires on any).
pub async fn run_reconciler() -> Result<(), Error> {
    init_logging();
    let aws = Aws::from_env().await?;
    let source = aws.cliniko().await?;
    let mut book = aws.reckon().await?;
    let state = aws.state()?;
    let reports = aws.reports()?;
    let queue = aws.queue()?;
    // The reconciler compares with the mapping the workers write with.
    let mut mapping = crate::wiring::mapping_from_env();
    crate::wiring::checked_accounts(&mut book, &mut mapping).await?;
    let tenant = aws.tenant.to_string();
    let (source, book, state, reports, queue, mapping, tenant) =
        (&source, &book, &state, &reports, &queue, &mapping, &tenant);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let repair_into = crate::repair_requested(&event.payload).then_some(queue);
            let outcome = crate::reconcile_and_publish(
                source,
                book,
                state,
                mapping,
                tenant,
                reports,
                repair_into,
            )
            .await?;
            tracing::info!(
                mismatches = outcome.mismatches,
                report = %outcome.report_key,
                repaired = ?outcome.repair,
                "reconciled"
            );
            Ok::<_, Error>(serde_json::to_value(&outcome)?)
        },
    ))
    .await
}
