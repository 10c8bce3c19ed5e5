//! Integration tests of the logstore crate: reopening (head from the WAL,
//! blocks from chunk files), WAL and chunk corruption, limits, the
//! out-of-order window, retention, the oracle comparison against
//! `model::mem::MemLogStore`, and crash safety under SIGKILL.

mod common;
mod compat;
mod crash;
/// The kill -9 harness shared with tsdb's crash test.
#[path = "../../tsdb/tests/crash_harness.rs"]
mod crash_harness;
mod prop;
mod store;
