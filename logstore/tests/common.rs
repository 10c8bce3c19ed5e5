//! Helpers shared by the integration tests.

use logstore::{FsyncPolicy, Options, OptionsBuilder, Store};
use model::{Direction, Labels, LogEntry, LogQueryable, LogSelectHints, Matcher};
use std::path::Path;

/// Options without a background thread and without fsync (tests only
/// simulate process crashes, which the page cache survives).
pub fn opts() -> OptionsBuilder {
    let mut b = Options::builder();
    b.flush_interval(None).fsync(FsyncPolicy::Never);
    b
}

pub fn open(dir: &Path, o: &OptionsBuilder) -> Store {
    Store::open(dir, o.build()).unwrap()
}

pub fn lbl(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// Every stream matching `matchers` in `[start, end]` with its entries.
pub fn collect(
    q: &dyn LogQueryable,
    matchers: &[Matcher],
    start: i64,
    end: i64,
    dir: Direction,
) -> Vec<(Labels, Vec<LogEntry>)> {
    let querier = q.log_querier().unwrap();
    drain(querier.select(matchers, start, end, dir).unwrap())
}

/// Every entry of every stream, owned.
fn drain(streams: Vec<model::Stream<'_>>) -> Vec<(Labels, Vec<LogEntry>)> {
    streams
        .into_iter()
        .map(|mut s| {
            let mut v = Vec::new();
            while let Some(e) = s.entries.next().unwrap() {
                v.push(e.to_owned());
            }
            (s.labels, v)
        })
        .collect()
}

/// Like [`collect`], through `select_with_hints` with lines that must
/// contain all of `needles`.
pub fn collect_hinted(
    q: &dyn LogQueryable,
    matchers: &[Matcher],
    start: i64,
    end: i64,
    dir: Direction,
    needles: &[&str],
) -> Vec<(Labels, Vec<LogEntry>)> {
    let querier = q.log_querier().unwrap();
    let hints = LogSelectHints::line_contains(needles.iter().copied());
    drain(querier.select_with_hints(matchers, start, end, dir, &hints).unwrap())
}

/// Everything in the store, oldest first.
pub fn dump(q: &dyn LogQueryable) -> Vec<(Labels, Vec<LogEntry>)> {
    collect(q, &[], i64::MIN, i64::MAX, Direction::Forward)
}
