//! Log entries and the read traits LogQL engines use over log storage.
//!
//! The chain is [`LogQueryable`] → [`LogQuerier`] → [`Stream`] (labels plus
//! an [`EntryIter`]). Log timestamps are **nanoseconds** since the Unix epoch
//! (as in Loki); bounds are inclusive.

use crate::labels::{Labels, Matcher};
use crate::series::StorageError;
use std::fmt;

/// An owned log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
    /// The log line (UTF-8).
    pub line: String,
    /// Structured metadata attached to this entry (may be empty).
    pub metadata: Labels,
}

impl LogEntry {
    /// An entry without structured metadata.
    pub fn new(ts: i64, line: impl Into<String>) -> Self {
        LogEntry { ts, line: line.into(), metadata: Labels::empty() }
    }

    /// Borrows the entry.
    pub fn as_ref(&self) -> LogEntryRef<'_> {
        LogEntryRef { ts: self.ts, line: &self.line, metadata: &self.metadata }
    }
}

/// A borrowed log entry, valid until the iterator advances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogEntryRef<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
    /// The log line.
    pub line: &'a str,
    /// Structured metadata.
    pub metadata: &'a Labels,
}

impl LogEntryRef<'_> {
    /// Copies into an owned entry.
    pub fn to_owned(&self) -> LogEntry {
        LogEntry { ts: self.ts, line: self.line.to_string(), metadata: self.metadata.clone() }
    }
}

/// The order entries are returned in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first (Loki's default for log queries).
    #[default]
    Backward,
}

/// A cursor over one stream's entries, lending each entry until the next
/// call (so storages can decode into a reused buffer without allocating per
/// line).
///
/// Contract: entries come in the querier's direction, ordered by timestamp
/// (entries with equal timestamps keep their push order, reversed for
/// backward); only entries within the requested range are returned.
pub trait EntryIter {
    /// The next entry, or `None` at the end.
    fn next(&mut self) -> Result<Option<LogEntryRef<'_>>, StorageError>;
}

/// An entry iterator over owned entries in the order given.
#[derive(Clone, Debug, Default)]
pub struct VecEntryIter {
    entries: Vec<LogEntry>,
    pos: usize,
}

impl VecEntryIter {
    /// Iterates `entries` in the order given.
    pub fn new(entries: Vec<LogEntry>) -> Self {
        VecEntryIter { entries, pos: 0 }
    }
}

impl EntryIter for VecEntryIter {
    fn next(&mut self) -> Result<Option<LogEntryRef<'_>>, StorageError> {
        let i = self.pos;
        if i < self.entries.len() {
            self.pos += 1;
        }
        Ok(self.entries.get(i).map(LogEntry::as_ref))
    }
}

/// One selected stream.
pub struct Stream<'a> {
    /// The stream's labels.
    pub labels: Labels,
    /// Its entries within the range, in the requested direction.
    pub entries: Box<dyn EntryIter + 'a>,
}

impl fmt::Debug for Stream<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream").field("labels", &self.labels).finish_non_exhaustive()
    }
}

/// What a query will do with the entries of a select, which a storage may
/// use to return fewer of them.
///
/// Hints only ever allow a storage to leave out entries the query would
/// drop anyway: a storage may ignore them entirely, and the query still
/// applies its whole pipeline to whatever is returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogSelectHints {
    /// Every entry the query keeps has a line containing each of these
    /// strings (case-sensitive, exact bytes), so entries whose line lacks
    /// one may be skipped.
    pub line_contains: Vec<String>,
}

impl LogSelectHints {
    /// No hints: every entry in range is wanted.
    pub fn none() -> Self {
        LogSelectHints::default()
    }

    /// Hints that lines must contain every string of `needles` (empty
    /// strings are dropped: every line contains them).
    pub fn line_contains<I, S>(needles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut v: Vec<String> =
            needles.into_iter().map(Into::into).filter(|s: &String| !s.is_empty()).collect();
        v.sort();
        v.dedup();
        LogSelectHints { line_contains: v }
    }

    /// Whether there is nothing to hint.
    pub fn is_empty(&self) -> bool {
        self.line_contains.is_empty()
    }

    /// Whether `line` satisfies the hints (a storage may skip it if not).
    pub fn accepts(&self, line: &str) -> bool {
        self.line_contains.iter().all(|n| line.contains(n.as_str()))
    }
}

/// A read view of a log storage.
///
/// Contract: `select` returns streams whose labels satisfy every matcher and
/// that may have entries in `[start, end]` (ns, inclusive), sorted by
/// labels, each once.
pub trait LogQuerier {
    /// Streams matching all `matchers` with entries in `[start, end]`.
    fn select<'a>(
        &'a self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        direction: Direction,
    ) -> Result<Vec<Stream<'a>>, StorageError>;

    /// Like [`LogQuerier::select`], with hints about which entries the
    /// caller will keep: a storage may leave out entries that fail them
    /// (the entries it does return keep `select`'s order and contract).
    /// The default ignores the hints.
    fn select_with_hints<'a>(
        &'a self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        direction: Direction,
        hints: &LogSelectHints,
    ) -> Result<Vec<Stream<'a>>, StorageError> {
        let _ = hints;
        self.select(matchers, start, end, direction)
    }

    /// Label sets of streams matching `matchers` with entries in
    /// `[start, end]`, sorted.
    fn series(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Labels>, StorageError>;

    /// Sorted, unique label names of streams in `[start, end]`.
    fn label_names(&self, start: i64, end: i64) -> Result<Vec<String>, StorageError>;

    /// Sorted, unique values of label `name` among streams in `[start, end]`
    /// matching `matchers`.
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, StorageError>;
}

/// A log storage that hands out [`LogQuerier`]s.
pub trait LogQueryable: Send + Sync {
    /// A querier over the current contents.
    fn log_querier(&self) -> Result<Box<dyn LogQuerier + '_>, StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_drop_empty_needles_and_check_all() {
        let h = LogSelectHints::line_contains(["full", "", "queue", "full"]);
        assert_eq!(h.line_contains, ["full", "queue"]);
        assert!(!h.is_empty());
        assert!(h.accepts("a queue is full"));
        assert!(!h.accepts("queue"));
        assert!(LogSelectHints::line_contains([""]).is_empty());
        assert!(LogSelectHints::none().accepts("anything"));
    }
}
