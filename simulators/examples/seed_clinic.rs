//! Prints how long seeding a clinic takes: `cargo run --release -p simulators --example seed_clinic -- 10000`.

fn main() {
    let patients: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let mut state =
        simulators::cliniko::store::ClinikoState::new(simulators::common::SimClock::new());
    let started = std::time::Instant::now();
    let report = simulators::generator::seed_clinic(
        &mut state,
        1,
        simulators::generator::ClinicSize::with_patients(patients),
    );
    println!(
        "seeded {} patients, {} invoices, {} invoice items, {} appointments in {:.2?}",
        report.patients,
        report.invoices,
        report.invoice_items,
        report.appointments,
        started.elapsed()
    );
}
