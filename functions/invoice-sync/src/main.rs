//! `invoice-sync`: applies the invoice changes on the `invoices` SQS queue to Reckon (Cliniko
//! invoices, and completed appointments for clinics that invoice them), one message at a time, reporting per-message failures (handler: `lambda_handlers::handle_batch`).

use cliniko_reckon::domain::EntityKind;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_handlers::runtime::run_sync_worker(&[EntityKind::Invoice, EntityKind::Appointment]).await
}
