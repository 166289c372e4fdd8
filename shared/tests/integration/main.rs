//! The library's integration tests, in one binary (one link of the dependency graph): the
//! vendor clients against the simulators, the AWS adapters against moto, the port contracts
//! run against every adapter, and the mapping over a generated clinic.

mod support;

mod aws_adapters;
mod cliniko_client;
mod mapping_generated_clinic;
mod reckon_client;
mod sink_contract;
mod state_store_contract;
