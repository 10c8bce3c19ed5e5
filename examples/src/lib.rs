//! Small binaries composing the crates into the monitoring stack (see
//! `src/bin`), and the little glue they share.
//!
//! - [`agent`]: the log collector (tails files, pushes to Loki endpoints).
//! - [`alerter`]: Prometheus rule groups evaluated against a remote server,
//!   with remote-write and Mattermost notifications.
//! - [`http`]: the one small synchronous HTTP/1.1 server (threads that
//!   accept and serve their own connections, size limits, upgrades).
//! - [`log_server`]: logstore + Loki HTTP API (push, query, tail).
//! - [`metrics_server`]: tsdb + Prometheus API + remote-write receiver.
//! - [`remote_write`]: a queued, retrying remote-write sender.
//! - [`scrape`]: Prometheus-style scraping with relabelling and staleness.
#![warn(missing_docs)]

pub mod agent;
pub mod alerter;
pub mod http;
pub mod log_server;
pub mod metrics_server;
pub mod remote_write;
pub mod scrape;
