//! Integration tests of the tsdb crate: WAL recovery, crash safety,
//! reopening, the oracle comparison against `model::mem`, and the CLI.

#[cfg(feature = "cli")]
mod cli;
mod common;
mod crash;
mod crash_harness;
mod prop;
mod reopen;
mod starts;
mod wal;
