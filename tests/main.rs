//! End-to-end tests, in one binary (one link of the dependency graph): the sync pipeline and
//! the `cliniko-reckon` binary against both simulators.

mod appointments;
mod going_live;
mod reconcile;
mod resilience;
mod sync_pipeline;
