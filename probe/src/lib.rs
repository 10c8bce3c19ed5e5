//! Uptime-Kuma-style service checks with heartbeat history and uptime figures.
//!
//! Monitors are described in a YAML [`Config`] (types `http`, `keyword`,
//! `json-query`, `tcp`, `dns`, `tls`, `push`, `ping`, with Uptime Kuma's
//! settings and defaults). A [`Runner`] schedules them on a fixed pool of
//! worker threads, passes every result through the pure state machine
//! ([`MonitorState`]: UP, DOWN, PENDING while retrying, MAINTENANCE), appends
//! heartbeats to a JSON-lines history file ([`HistoryLog`]), keeps uptime
//! figures ([`UptimeStats`]) and reports [`Event`]s: beats, whether to
//! notify, and certificate-expiry warnings. [`metrics`] writes the figures in
//! the Prometheus exposition format.
//!
//! The pure parts (state machine, schedule, uptime, maintenance windows)
//! take `now` as an argument and can be driven without sleeping:
//!
//! ```
//! use probe::{Config, MonitorState, Observation, Status, UptimeStats, Window};
//!
//! let config = Config::from_yaml_str(r#"
//! monitors:
//!   - name: api
//!     type: http
//!     url: https://api.example.org/health
//!     max_retries: 1
//!     retry_interval: 20
//! "#)?;
//! let settings = config.monitors[0].state_settings();
//!
//! let mut state = MonitorState::new();
//! let mut stats = UptimeStats::new();
//! let t0 = 1_790_000_000_000; // Unix ms
//! let mut statuses = Vec::new();
//! for (i, ok) in [true, false, false, true].into_iter().enumerate() {
//!     let obs = if ok { Observation::up("200 - OK", Some(42)) } else { Observation::down("timeout") };
//!     let beat = state.observe(&settings, t0 + i as i64 * 60_000, obs, false);
//!     stats.add(beat.time, beat.status, beat.ping_ms);
//!     statuses.push((beat.status, beat.notify.is_some()));
//! }
//! // PENDING while retrying, then DOWN (notified), then UP again (notified).
//! assert_eq!(statuses, [
//!     (Status::Up, true),
//!     (Status::Pending, false),
//!     (Status::Down, true),
//!     (Status::Up, true),
//! ]);
//! // Uptime counts beats: PENDING and DOWN count as down.
//! assert_eq!(stats.uptime(Window::Day, t0 + 4 * 60_000), Some(0.5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Running real monitors is a matter of `Runner::new(&config,
//! RunnerOptions::default())?.run(None, |event| ...)`; see the `probe`
//! binary and `examples/bench_scale.rs`.

#![deny(missing_docs)]

pub mod check;
mod config;
mod error;
mod history;
mod history_file;
mod maintenance;
pub mod metrics;
mod runner;
mod schedule;
mod state;

pub use config::{
    Config, ContentCheck, DnsRecordType, DnsSpec, HistoryConfig, HttpSpec, JsonOp, MonitorConfig, MonitorKind,
    StatusRange, TlsSpec, DEFAULT_EXPIRY_DAYS, DEFAULT_INTERVAL, DEFAULT_TIMEOUT, DEFAULT_WORKERS, MAX_INTERVAL,
};
pub use error::{ConfigError, HistoryError, RunError, SetupError};
pub use history::{
    day_of, BeatRecord, DayRecord, HeaderRecord, MonitorHistory, Record, Totals, UptimeStats, Window, HISTORY_FORMAT,
    HISTORY_VERSION,
};
pub use history_file::{HistoryLog, PruneStats};
pub use maintenance::{in_maintenance, Cron, CronError, MaintenanceWindow, MAX_DURATION_MS};
pub use metrics::MonitorSnapshot;
pub use runner::{now_ms, Event, Push, Runner, RunnerHandle, RunnerOptions};
pub use schedule::Schedule;
pub use state::{
    is_important, is_important_for_notification, Beat, MonitorState, NotifyReason, Observation, StateSettings,
    Status,
};
