//! `reconciler`: nightly (EventBridge Scheduler, Australia/Sydney), reads Cliniko and Reckon
//! in full, writes the mismatch report to S3 and emits the counts as metrics (handler:
//! `lambda_handlers::reconcile_and_publish`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_handlers::runtime::run_reconciler().await
}
