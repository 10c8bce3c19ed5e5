//! The shared vocabulary of the monitoring stack.
//!
//! `model` holds what several crates must agree on, and nothing that does
//! I/O or belongs to one engine:
//!
//! - [`Labels`] and [`Matcher`]: sorted label sets and `=`, `!=`, `=~`, `!~`
//!   matchers with fully anchored RE2 semantics (the `regex` crate);
//! - [`Sample`] and the metric read traits [`Queryable`] → [`Querier`] →
//!   [`Series`] → [`SampleIter`] that PromQL evaluates over (timestamps in
//!   milliseconds, inclusive `mint`/`maxt`), with optional per-sample start
//!   timestamps ([`SampleIter::start_timestamp`], [`StartIter`]);
//! - [`LogEntry`] and the log read traits [`LogQueryable`] → [`LogQuerier`]
//!   → [`Stream`] → [`EntryIter`] that LogQL evaluates over (nanoseconds);
//! - [`mem`]: in-memory implementations of both, the test oracle.
//!
//! ```
//! use model::{mem::MemStore, collect_range, Labels, Matcher, MatchType, Queryable, SelectHints};
//!
//! let store = MemStore::new();
//! let up = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
//! for i in 0..5 {
//!     store.append(&up, i * 15_000, 1.0);
//! }
//! let querier = store.querier(0, 60_000)?;
//! let matchers = [Matcher::new(MatchType::Regex, "job", "no.*")?];
//! let mut series = querier.select(&SelectHints::range(0, 60_000), &matchers)?;
//! let samples = collect_range(series[0].samples.as_mut(), 15_000, 45_000)?;
//! assert_eq!(samples.len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod exposition;
mod labels;
mod logs;
#[cfg(feature = "mem")]
pub mod mem;
mod series;

pub use labels::{
    escape_label_value, is_valid_label_name, is_valid_metric_name, matches_all, Label, Labels,
    LabelsBuilder, MatchType, Matcher, MatcherError, METRIC_NAME,
};
pub use logs::{
    Direction, EntryIter, LogEntry, LogEntryRef, LogQuerier, LogQueryable, LogSelectHints, Stream,
    VecEntryIter,
};
pub use series::{
    collect_range, is_stale_nan, stale_nan, MetricMetadata, Querier, Queryable, Sample,
    SampleIter, SelectHints, Series, SliceIter, StartIter, StorageError, VecIter, STALE_NAN_BITS,
};
