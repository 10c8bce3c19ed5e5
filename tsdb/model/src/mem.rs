//! In-memory storages implementing the read traits: the test oracle every
//! real storage is compared against, and a handy store for small tools.

use crate::labels::{matches_all, Labels, Matcher};
use crate::logs::{Direction, LogEntry, LogQuerier, LogQueryable, Stream, VecEntryIter};
use crate::series::{
    MetricMetadata, Querier, Queryable, Sample, SelectHints, Series, StartIter, StorageError,
    VecIter,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{RwLock, RwLockReadGuard};

/// An in-memory metric store.
///
/// ```
/// use model::{mem::MemStore, Labels, Matcher, Queryable, SelectHints};
/// let store = MemStore::new();
/// store.append(&Labels::from_pairs([("__name__", "up")]), 1000, 1.0);
/// let q = store.querier(0, 2000)?;
/// let series = q.select(&SelectHints::range(0, 2000), &[Matcher::equal("__name__", "up")])?;
/// assert_eq!(series.len(), 1);
/// # Ok::<(), model::StorageError>(())
/// ```
#[derive(Debug, Default)]
pub struct MemStore {
    series: RwLock<BTreeMap<Labels, Vec<Sample>>>,
    metadata: RwLock<BTreeMap<String, MetricMetadata>>,
    /// Start timestamps per series: `(t, st)` sorted by `t`, only for
    /// samples that have one.
    starts: RwLock<BTreeMap<Labels, Vec<(i64, i64)>>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Labels, Vec<Sample>>> {
        // A poisoned lock only means a writer panicked mid-insert; the map is
        // still structurally valid, so keep serving it.
        self.series.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a sample. A sample at an existing timestamp replaces it (the
    /// oracle is lenient; real storages reject duplicates), start
    /// timestamp included.
    pub fn append(&self, labels: &Labels, t: i64, v: f64) {
        let mut map = self.series.write().unwrap_or_else(|e| e.into_inner());
        let samples = map.entry(labels.clone()).or_default();
        match samples.binary_search_by_key(&t, |s| s.t) {
            Ok(i) => {
                samples[i].v = v;
                drop(map);
                // The replaced sample's start timestamp goes with it.
                let mut starts = self.starts.write().unwrap_or_else(|e| e.into_inner());
                if let Some(st) = starts.get_mut(labels) {
                    if let Ok(i) = st.binary_search_by_key(&t, |x| x.0) {
                        st.remove(i);
                    }
                }
            }
            Err(i) => samples.insert(i, Sample::new(t, v)),
        }
    }

    /// Adds a sample with an optional start timestamp (ms): when the
    /// counter or delta it measures started (see
    /// [`SampleIter::start_timestamp`](crate::SampleIter::start_timestamp)).
    /// Like [`append`](Self::append), a sample at an existing timestamp is
    /// replaced, start timestamp included.
    ///
    /// ```
    /// use model::{mem::MemStore, Labels, Matcher, Queryable, SelectHints};
    /// let store = MemStore::new();
    /// let l = Labels::from_pairs([("__name__", "reqs_total")]);
    /// store.append_with_start(&l, 60_000, 5.0, Some(30_000));
    /// let q = store.querier(0, 60_000)?;
    /// let mut s = q.select(&SelectHints::range(0, 60_000), &[Matcher::equal("__name__", "reqs_total")])?;
    /// assert!(s[0].samples.next()?.is_some());
    /// assert_eq!(s[0].samples.start_timestamp(), Some(30_000));
    /// # Ok::<(), model::StorageError>(())
    /// ```
    pub fn append_with_start(&self, labels: &Labels, t: i64, v: f64, st: Option<i64>) {
        self.append(labels, t, v);
        let mut map = self.starts.write().unwrap_or_else(|e| e.into_inner());
        match st {
            Some(st) => {
                let starts = map.entry(labels.clone()).or_default();
                match starts.binary_search_by_key(&t, |x| x.0) {
                    Ok(i) => starts[i].1 = st,
                    Err(i) => starts.insert(i, (t, st)),
                }
            }
            None => {
                if let Some(starts) = map.get_mut(labels) {
                    if let Ok(i) = starts.binary_search_by_key(&t, |x| x.0) {
                        starts.remove(i);
                    }
                }
            }
        }
    }

    /// Records metadata for a metric family.
    pub fn set_metadata(&self, md: MetricMetadata) {
        let mut map = self.metadata.write().unwrap_or_else(|e| e.into_inner());
        map.insert(md.metric.clone(), md);
    }

    /// Removes everything.
    pub fn clear(&self) {
        self.series.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.metadata.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.starts.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        self.read().len()
    }

    /// Number of samples.
    pub fn num_samples(&self) -> usize {
        self.read().values().map(Vec::len).sum()
    }
}

impl Queryable for MemStore {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        let starts = self.starts.read().unwrap_or_else(|e| e.into_inner());
        Ok(Box::new(MemQuerier { guard: self.read(), starts, mint, maxt }))
    }

    fn metadata(&self) -> Result<Vec<MetricMetadata>, StorageError> {
        let map = self.metadata.read().unwrap_or_else(|e| e.into_inner());
        Ok(map.values().cloned().collect())
    }
}

struct MemQuerier<'a> {
    guard: RwLockReadGuard<'a, BTreeMap<Labels, Vec<Sample>>>,
    starts: RwLockReadGuard<'a, BTreeMap<Labels, Vec<(i64, i64)>>>,
    mint: i64,
    maxt: i64,
}

impl MemQuerier<'_> {
    fn in_range<'s>(
        &'s self,
        mint: i64,
        maxt: i64,
        matchers: &'s [Matcher],
    ) -> impl Iterator<Item = (&'s Labels, &'s [Sample])> + 's {
        self.guard.iter().filter_map(move |(l, s)| {
            if !matches_all(matchers, l) {
                return None;
            }
            let lo = s.partition_point(|x| x.t < mint);
            let hi = s.partition_point(|x| x.t <= maxt);
            (lo < hi).then(|| (l, &s[lo..hi]))
        })
    }
}

impl Querier for MemQuerier<'_> {
    fn select<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series<'a>>, StorageError> {
        let mint = hints.mint.max(self.mint);
        let maxt = hints.maxt.min(self.maxt);
        Ok(self
            .in_range(mint, maxt, matchers)
            .map(|(l, s)| {
                let samples = VecIter::new(s.to_vec());
                let starts = self.starts.get(l).map(|st| {
                    let lo = st.partition_point(|x| x.0 < mint);
                    let hi = st.partition_point(|x| x.0 <= maxt);
                    &st[lo..hi]
                });
                match starts {
                    Some(st) if !st.is_empty() => Series {
                        labels: l.clone(),
                        samples: Box::new(StartIter::new(samples, st.to_vec())),
                    },
                    _ => Series { labels: l.clone(), samples: Box::new(samples) },
                }
            })
            .collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        for (l, _) in self.in_range(self.mint, self.maxt, matchers) {
            for label in l {
                names.insert(label.name.clone());
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        for (l, _) in self.in_range(self.mint, self.maxt, matchers) {
            if let Some(v) = l.get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }
}

/// An in-memory log store.
///
/// ```
/// use model::{mem::MemLogStore, Direction, LogEntry, LogQueryable, Labels, Matcher};
/// let store = MemLogStore::new();
/// store.push(&Labels::from_pairs([("job", "app")]), LogEntry::new(5, "hello"));
/// let q = store.log_querier()?;
/// let mut streams = q.select(&[Matcher::equal("job", "app")], 0, 10, Direction::Forward)?;
/// let e = streams[0].entries.next()?.ok_or("no entry")?;
/// assert_eq!(e.line, "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemLogStore {
    streams: RwLock<BTreeMap<Labels, Vec<LogEntry>>>,
}

impl MemLogStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry; entries are kept sorted by timestamp, equal
    /// timestamps in push order.
    pub fn push(&self, labels: &Labels, entry: LogEntry) {
        let mut map = self.streams.write().unwrap_or_else(|e| e.into_inner());
        let entries = map.entry(labels.clone()).or_default();
        let i = entries.partition_point(|e| e.ts <= entry.ts);
        entries.insert(i, entry);
    }

    /// Removes everything.
    pub fn clear(&self) {
        self.streams.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Labels, Vec<LogEntry>>> {
        self.streams.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl LogQueryable for MemLogStore {
    fn log_querier(&self) -> Result<Box<dyn LogQuerier + '_>, StorageError> {
        Ok(Box::new(MemLogQuerier { guard: self.read() }))
    }
}

struct MemLogQuerier<'a> {
    guard: RwLockReadGuard<'a, BTreeMap<Labels, Vec<LogEntry>>>,
}

impl MemLogQuerier<'_> {
    fn in_range<'s>(
        &'s self,
        matchers: &'s [Matcher],
        start: i64,
        end: i64,
    ) -> impl Iterator<Item = (&'s Labels, &'s [LogEntry])> + 's {
        self.guard.iter().filter_map(move |(l, e)| {
            if !matches_all(matchers, l) {
                return None;
            }
            let lo = e.partition_point(|x| x.ts < start);
            let hi = e.partition_point(|x| x.ts <= end);
            (lo < hi).then(|| (l, &e[lo..hi]))
        })
    }
}

impl LogQuerier for MemLogQuerier<'_> {
    fn select<'a>(
        &'a self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        direction: Direction,
    ) -> Result<Vec<Stream<'a>>, StorageError> {
        Ok(self
            .in_range(matchers, start, end)
            .map(|(l, e)| {
                let mut v = e.to_vec();
                if direction == Direction::Backward {
                    v.reverse();
                }
                Stream { labels: l.clone(), entries: Box::new(VecEntryIter::new(v)) }
            })
            .collect())
    }

    fn series(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Labels>, StorageError> {
        Ok(self.in_range(matchers, start, end).map(|(l, _)| l.clone()).collect())
    }

    fn label_names(&self, start: i64, end: i64) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        for (l, _) in self.in_range(&[], start, end) {
            names.extend(l.iter().map(|x| x.name.clone()));
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        for (l, _) in self.in_range(matchers, start, end) {
            if let Some(v) = l.get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::collect_range;
    use crate::MatchType;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn select_filters_by_matchers_and_range() -> TestResult {
        let s = MemStore::new();
        let a = Labels::from_pairs([("__name__", "m"), ("i", "a")]);
        let b = Labels::from_pairs([("__name__", "m"), ("i", "b")]);
        for t in 0..10 {
            s.append(&a, t * 10, t as f64);
            s.append(&b, t * 10 + 100, t as f64);
        }
        let q = s.querier(0, 1000)?;
        let m = [Matcher::new(MatchType::Regex, "i", "a|b")?];
        let mut got = q.select(&SelectHints::range(50, 95), &m)?;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels, a);
        assert_eq!(collect_range(got[0].samples.as_mut(), 0, 1000)?.len(), 5);
        assert_eq!(q.label_values("i", &[])?, vec!["a", "b"]);
        assert_eq!(q.label_names(&m)?, vec!["__name__", "i"]);
        Ok(())
    }

    #[test]
    fn start_timestamps_are_stored_and_replaced() -> TestResult {
        let s = MemStore::new();
        let a = Labels::from_pairs([("__name__", "c_total")]);
        s.append_with_start(&a, 10, 1.0, Some(5));
        s.append_with_start(&a, 20, 2.0, None);
        s.append_with_start(&a, 30, 3.0, Some(5));
        s.append_with_start(&a, 30, 4.0, Some(25));
        s.append_with_start(&a, 10, 1.5, None);
        s.append_with_start(&a, 40, 5.0, Some(35));
        s.append(&a, 40, 6.0);
        let q = s.querier(0, 100)?;
        let mut got = q.select(&SelectHints::range(0, 100), &[Matcher::equal("__name__", "c_total")])?;
        let it = got[0].samples.as_mut();
        assert!(it.has_start_timestamps());
        let mut seen = Vec::new();
        while let Some(x) = it.next()? {
            seen.push((x.t, x.v, it.start_timestamp()));
        }
        assert_eq!(seen, vec![(10, 1.5, None), (20, 2.0, None), (30, 4.0, Some(25)), (40, 6.0, None)]);
        // A range without start timestamps gives a plain iterator.
        let got = q.select(&SelectHints::range(0, 20), &[Matcher::equal("__name__", "c_total")])?;
        assert!(!got[0].samples.has_start_timestamps());
        Ok(())
    }

    #[test]
    fn logs_backward_reverses() -> TestResult {
        let s = MemLogStore::new();
        let l = Labels::from_pairs([("job", "x")]);
        s.push(&l, LogEntry::new(2, "b"));
        s.push(&l, LogEntry::new(1, "a"));
        let q = s.log_querier()?;
        let mut st = q.select(&[Matcher::equal("job", "x")], 0, 10, Direction::Backward)?;
        assert_eq!(st[0].entries.next()?.map(|e| e.line.to_string()), Some("b".into()));
        assert_eq!(st[0].entries.next()?.map(|e| e.line.to_string()), Some("a".into()));
        assert!(st[0].entries.next()?.is_none());
        Ok(())
    }
}
