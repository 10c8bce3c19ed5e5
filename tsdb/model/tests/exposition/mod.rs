//! Tests of `model::exposition`.

mod fuzz_replay;
mod golden;
mod node_exporter;
mod openmetrics_suite;
mod roundtrip;
