//! Small binaries composing the crates into the monitoring stack (see
//! `src/bin`), and the little glue they share.
//!
//! - [`http`]: the one small synchronous HTTP server (`tiny_http` plus a
//!   worker pool and body limits).
//! - [`metrics_server`]: tsdb + Prometheus API + remote-write receiver.
//! - [`remote_write`]: a queued, retrying remote-write sender.
//! - [`scrape`]: Prometheus-style scraping with relabelling and staleness.
#![warn(missing_docs)]

pub mod http;
pub mod metrics_server;
pub mod remote_write;
pub mod scrape;
