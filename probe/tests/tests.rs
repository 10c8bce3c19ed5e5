//! Integration tests: checks against real local servers on 127.0.0.1, the
//! runner end to end, history across restarts, and the CLI.

mod checks;
mod cli;
mod history;
mod runner;
mod servers;

use probe::check::{Check, CheckOutcome, TlsCache};
use probe::{Config, MonitorConfig};
use std::time::Duration;

/// Parse one monitor (a YAML flow mapping) through the config loader.
pub fn monitor(yaml: &str) -> MonitorConfig {
    let doc = format!("monitors:\n  - {yaml}\n");
    match Config::from_yaml_str(&doc) {
        Ok(mut c) => c.monitors.remove(0),
        Err(e) => panic!("config {yaml}: {e}"),
    }
}

/// Build and run the check of one monitor once.
pub fn run_once(yaml: &str) -> CheckOutcome {
    let m = monitor(yaml);
    let check = Check::build(&m, &mut TlsCache::new()).unwrap();
    check.run(probe::now_ms(), m.timeout.min(Duration::from_secs(5)))
}
