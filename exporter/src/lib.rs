//! A Linux node exporter reading procfs and sysfs, compatible with
//! Prometheus' node_exporter 1.5: the same metric names, labels, types and
//! HELP texts, in text format 0.0.4 or OpenMetrics.
//!
//! Collectors ([`Collector`]) read files under injected roots ([`Root`]:
//! `--path.procfs`, `--path.sysfs`, `--path.rootfs`, `--path.udev.data`),
//! so tests point them at fixture trees. A [`Registry`], built with a
//! [`RegistryBuilder`], runs the enabled collectors, adds
//! `node_scrape_collector_success` / `node_scrape_collector_duration_seconds`
//! per collector, sorts everything, and writes it through
//! [`model::exposition`]. A failing collector reports success 0 and never
//! breaks the scrape.
//!
//! ```
//! use exporter::{Format, RegistryBuilder, Root};
//! # let dir = tempfile::tempdir()?;
//! # std::fs::write(dir.path().join("loadavg"), "0.25 0.5 1.00 1/100 42\n")?;
//! let mut root = Root::new();
//! root.procfs(dir.path());
//! let mut builder = RegistryBuilder::new();
//! builder.root(root).disable_all().enable("loadavg", true)?;
//! let registry = builder.build()?;
//!
//! let mut out = Vec::new();
//! registry.write(Format::Text004, &mut out)?;
//! let text = String::from_utf8(out)?;
//! assert!(text.contains("# TYPE node_load1 gauge\nnode_load1 0.25\n"));
//! assert!(text.contains("node_scrape_collector_success{collector=\"loadavg\"} 1\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layout: `procfs/` and `sysfs/` hold pure parsers (one module per kernel
//! file), `collectors/` one module per node_exporter collector, `registry`
//! the enable/disable logic and the scrape.
#![deny(missing_docs)]

mod collector;
mod collectors;
mod error;
mod netlink;
mod os_release;
pub mod procfs;
mod registry;
mod root;
pub mod sysfs;
mod udev;

pub use collector::{make_labels, Collector, Sink};
pub use collectors::{default_enabled, Options, ALL as COLLECTORS};
pub use error::{Error, ParseError};
pub use model::exposition::{negotiate, Format, MetricFamily};
pub use registry::{CollectorOutcome, Registry, RegistryBuilder};
pub use root::{list_dir, read_text, read_trimmed, read_u64, Root, MAX_FILE_BYTES};
