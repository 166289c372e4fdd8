//! `poller`: scheduled every minute; reads Cliniko changes since each watermark and queues
//! them on the per-entity SQS queues (handler: `lambda_handlers::poll_rounds`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_handlers::runtime::run_poller().await
}
