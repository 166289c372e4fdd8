//! The simulators' integration tests, in one binary: their HTTP APIs, their conformance to
//! the vendors' OpenAPI descriptions and examples, and the binaries.

mod reckon_common;
mod support;

mod cliniko_api;
mod cliniko_bin;
mod cliniko_conformance;
mod openapi_specs;
mod reckon_api;
mod reckon_bin;
mod reckon_conformance;
mod reckon_credit_notes;
