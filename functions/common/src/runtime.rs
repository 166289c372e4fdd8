//! The Lambda entry points: build everything once per execution environment (outside the
//! handler), then serve events. Each function's `main.rs` calls one of these.

use crate::wiring::{Aws, PollParts, PollerBuilder, ReconcilerBuilder, WorkerBuilder};
use crate::{PollLoop, TenantPollParts, Tenants, handle_tenant_batch, poll_tenants};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cliniko_reckon::domain::EntityKind;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::time::Duration;
use tracing::Instrument;

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

/// A sync worker for the entity types its queue carries, serving every tenant.
pub async fn run_sync_worker(accepts: &'static [EntityKind]) -> Result<(), Error> {
    init_logging();
    let aws = Aws::from_env().await?;
    let app = aws.reckon_app().await?;
    let tenants = Tenants::new(aws.directory(), WorkerBuilder { aws, app });
    // As the stack sets it from the queue's redrive policy (infra/lib/entity-queue.ts).
    let max_receives = env_number("MAX_RECEIVE_COUNT", 5, 1, 1000)? as u32;
    let tenants = &tenants;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        // The invocation's time left, less a margin to answer and record.
        let left = Duration::from_millis(
            (event.context.deadline as i64 - chrono::Utc::now().timestamp_millis()).max(0) as u64,
        );
        let budget = left
            .saturating_sub(Duration::from_secs(5))
            .max(Duration::from_secs(1));
        let response: SqsBatchResponse =
            handle_tenant_batch(tenants, event.payload, accepts, max_receives, budget).await;
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

/// The poller: for every active tenant, `POLL_ROUNDS` rounds (default 1),
/// `POLL_PAUSE_SECONDS` apart (default 10), `POLL_CONCURRENCY` tenants at once (default 16),
/// per scheduled invocation.
pub async fn run_poller() -> Result<(), Error> {
    init_logging();
    let aws = Aws::from_env().await?;
    let queues = Aws::queue_urls()?;
    let tenants = Tenants::new(aws.directory(), PollerBuilder { aws, queues });
    let plan = PollLoop {
        rounds: env_number("POLL_ROUNDS", 1, 1, 12)? as u32,
        pause: Duration::from_secs(env_number("POLL_PAUSE_SECONDS", 10, 0, 60)?),
        ..PollLoop::default()
    };
    let concurrency = env_number("POLL_CONCURRENCY", 16, 1, 256)? as usize;
    let (tenants, plan) = (&tenants, &plan);
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            let polled = poll_tenants(tenants, plan, concurrency).await?;
            Ok::<_, Error>(serde_json::to_value(&polled)?)
        },
    ))
    .await
}

/// The nightly reconciler: for every active tenant (or the one the event names,
/// `{"tenant": "clinic-a"}`), reads both sides in full, writes the report under the
/// tenant's prefix in S3 and emits the mismatch counts (the alarm fires on any). One
/// tenant's failure is reported and the others still run.
pub async fn run_reconciler() -> Result<(), Error> {
    init_logging();
    let aws = Aws::from_env().await?;
    let app = aws.reckon_app().await?;
    let reports = aws.reports()?;
    let queues = Aws::queue_urls()?;
    let tenants = Tenants::new(aws.directory(), ReconcilerBuilder { aws, app, queues });
    let (tenants, reports) = (&tenants, &reports);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let only = crate::tenant_requested(&event.payload)?;
            let repair = crate::repair_requested(&event.payload);
            let mut results = serde_json::Map::new();
            let entries = tenants.all().await?;
            if let Some(t) = &only
                && !entries.iter().any(|e| e.id == *t)
            {
                return Err(format!("no tenant {t} in the tenant directory").into());
            }
            for entry in entries {
                if only.as_ref().is_some_and(|t| *t != entry.id) {
                    continue;
                }
                let tenant = entry.id.clone();
                let outcome = match tenants.for_entry(&entry).await {
                    Err(why) => serde_json::json!({ "skipped": why.to_string() }),
                    Ok(parts) => match crate::reconcile_and_publish(
                        &parts.source,
                        &parts.book,
                        &parts.state,
                        &parts.mapping,
                        tenant.as_str(),
                        reports,
                        repair.then_some(&parts.queue),
                    )
                    .instrument(tracing::info_span!("tenant", tenant = %tenant))
                    .await
                    {
                        Ok(outcome) => {
                            tracing::info!(
                                tenant = %tenant,
                                mismatches = outcome.mismatches,
                                report = %outcome.report_key,
                                repaired = ?outcome.repair,
                                "reconciled"
                            );
                            serde_json::to_value(&outcome)?
                        }
                        Err(e) => {
                            tracing::error!(tenant = %tenant, error = %e, "reconciliation failed");
                            serde_json::json!({ "error": e.to_string() })
                        }
                    },
                };
                results.insert(tenant.to_string(), outcome);
            }
            Ok::<_, Error>(serde_json::Value::Object(results))
        },
    ))
    .await
}

impl TenantPollParts for PollParts {
    type Source = cliniko_reckon::cliniko::ClinikoClient;
    type State = cliniko_reckon::adapters::aws::DynamoState;
    type Queue = cliniko_reckon::adapters::aws::SqsQueue;
    fn parts(&self) -> (&Self::Source, &Self::State, &Self::Queue) {
        (&self.source, &self.state, &self.queue)
    }
    fn poll_config(&self) -> Option<cliniko_reckon::pipeline::PollConfig> {
        Some(self.poll.clone())
    }
}
