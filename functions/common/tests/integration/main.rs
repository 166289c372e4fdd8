//! The Lambda handlers' integration tests, in one binary: the handlers against the
//! simulators, and the whole AWS pipeline against moto.

mod aws_pipeline;
mod handlers;
