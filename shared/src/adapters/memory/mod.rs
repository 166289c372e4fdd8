//! In-memory twins of the source and sink ports (the state, queue and tenant ports have
//! theirs in SQLite's in-memory mode, `crate::adapters::sqlite::SqliteState::open_in_memory`):
//! the real steps run against them in unit tests, without HTTP or simulators.

mod cliniko;
mod reckon;

pub use cliniko::{MemoryCliniko, MemoryClinikoError};
pub use reckon::{MemoryBook, MemoryBookError};
