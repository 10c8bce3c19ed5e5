//! Samples and the read traits query engines use over metric storage.
//!
//! The chain is [`Queryable`] → [`Querier`] (a view over an inclusive time
//! range) → [`Series`] (labels plus a [`SampleIter`]). Timestamps are
//! milliseconds since the Unix epoch; `mint`/`maxt` bounds are inclusive.

use crate::labels::{Labels, Matcher};
use std::fmt;

/// The bit pattern Prometheus uses to mark a series as stale.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker value (a NaN with [`STALE_NAN_BITS`]).
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the staleness marker (compares bits: an ordinary NaN is not).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: a millisecond timestamp and a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value. May be NaN, ±Inf, or the staleness marker.
    pub v: f64,
}

impl Sample {
    /// Builds a sample.
    pub fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }

    /// Whether both timestamp and value bits are identical (NaN-safe equality).
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

/// An error from a storage while reading: it names what it was reading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Reading failed; `context` says where (file, offset, series).
    #[error("{context}: {source}")]
    Read {
        /// Where the failure happened.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// Stored data is corrupt at the named place.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The storage is closed or otherwise unavailable.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A query limit of the storage was hit.
    #[error("limit exceeded: {0}")]
    Limit(String),
}

impl StorageError {
    /// Wraps any error with a description of where it happened.
    pub fn read(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        StorageError::Read { context: context.into(), source: source.into() }
    }
}

/// A cursor over one series' samples in increasing timestamp order.
///
/// Contract: timestamps strictly increase; only samples within the
/// querier's `[mint, maxt]` are guaranteed to be present (samples outside
/// may appear and callers must filter). Errors (a corrupt chunk) end the
/// iteration: after an `Err`, further calls may return `Ok(None)`.
pub trait SampleIter {
    /// The next sample, or `None` at the end.
    fn next(&mut self) -> Result<Option<Sample>, StorageError>;

    /// Advances to the first sample with timestamp `>= t` and returns it.
    /// The iterator never moves backwards: if the current position is
    /// already past `t`, the next unread sample is returned.
    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        loop {
            match self.next()? {
                Some(s) if s.t >= t => return Ok(Some(s)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// Appends every remaining sample with timestamp `<= maxt` to `out`, in
    /// order, and returns how many were appended.
    ///
    /// Meant as the last read of a series (storages implement it with bulk
    /// copies of decoded chunks): afterwards the iterator may already have
    /// consumed the first sample past `maxt`.
    fn read_until(&mut self, maxt: i64, out: &mut Vec<Sample>) -> Result<usize, StorageError> {
        let before = out.len();
        while let Some(s) = self.next()? {
            if s.t > maxt {
                break;
            }
            out.push(s);
        }
        Ok(out.len() - before)
    }

    /// The start timestamp (ms) of the sample last returned by
    /// [`next`](Self::next) or [`seek`](Self::seek): when the counter (or
    /// the delta) that sample measures started, as OpenTelemetry's
    /// `start_time` and Prometheus's created timestamps give it. `None`
    /// when the sample has none, or before the first / after the last
    /// sample. Storages without start timestamps keep this default.
    /// After [`read_until`](Self::read_until) it is unspecified: readers
    /// that need start timestamps read sample by sample.
    fn start_timestamp(&self) -> Option<i64> {
        None
    }

    /// Whether any sample of this iterator may carry a start timestamp.
    /// When `false`, [`start_timestamp`](Self::start_timestamp) always
    /// returns `None`, so readers may skip asking for it.
    fn has_start_timestamps(&self) -> bool {
        false
    }
}

/// Attaches start timestamps to the samples of another iterator.
///
/// `starts` lists `(t, st)` pairs sorted by `t`: the sample at `t` has
/// start timestamp `st`; samples whose timestamp is not listed have none.
///
/// ```
/// use model::{Sample, SampleIter, StartIter, VecIter};
/// let inner = VecIter::new(vec![Sample::new(10, 1.0), Sample::new(20, 2.0)]);
/// let mut it = StartIter::new(inner, vec![(20, 15)]);
/// assert_eq!(it.next()?.map(|s| s.t), Some(10));
/// assert_eq!(it.start_timestamp(), None);
/// assert_eq!(it.next()?.map(|s| s.t), Some(20));
/// assert_eq!(it.start_timestamp(), Some(15));
/// # Ok::<(), model::StorageError>(())
/// ```
#[derive(Clone, Debug)]
pub struct StartIter<I> {
    inner: I,
    starts: Vec<(i64, i64)>,
    pos: usize,
    cur: Option<i64>,
}

impl<I: SampleIter> StartIter<I> {
    /// Wraps `inner`; `starts` must be sorted by sample timestamp.
    pub fn new(inner: I, starts: Vec<(i64, i64)>) -> Self {
        StartIter { inner, starts, pos: 0, cur: None }
    }

    fn note(&mut self, s: Option<Sample>) -> Option<Sample> {
        self.cur = None;
        if let Some(x) = s {
            // Samples come in increasing time order, so the cursor only
            // moves forward.
            let rest = &self.starts[self.pos..];
            self.pos += rest.partition_point(|(t, _)| *t < x.t);
            if let Some(&(t, st)) = self.starts.get(self.pos) {
                if t == x.t {
                    self.cur = Some(st);
                }
            }
        }
        s
    }
}

impl<I: SampleIter> SampleIter for StartIter<I> {
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        let s = self.inner.next()?;
        Ok(self.note(s))
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        let s = self.inner.seek(t)?;
        Ok(self.note(s))
    }

    fn read_until(&mut self, maxt: i64, out: &mut Vec<Sample>) -> Result<usize, StorageError> {
        // Bulk reads skip the start timestamps (unspecified afterwards).
        self.cur = None;
        self.inner.read_until(maxt, out)
    }

    fn start_timestamp(&self) -> Option<i64> {
        self.cur
    }

    fn has_start_timestamps(&self) -> bool {
        !self.starts.is_empty()
    }
}

impl SampleIter for Box<dyn SampleIter + Send + '_> {
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        (**self).next()
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        (**self).seek(t)
    }

    fn read_until(&mut self, maxt: i64, out: &mut Vec<Sample>) -> Result<usize, StorageError> {
        (**self).read_until(maxt, out)
    }

    fn start_timestamp(&self) -> Option<i64> {
        (**self).start_timestamp()
    }

    fn has_start_timestamps(&self) -> bool {
        (**self).has_start_timestamps()
    }
}

/// A sample iterator over an in-memory slice.
#[derive(Clone, Debug)]
pub struct SliceIter<'a> {
    samples: &'a [Sample],
    pos: usize,
}

impl<'a> SliceIter<'a> {
    /// Iterates `samples`, which must be sorted by timestamp.
    pub fn new(samples: &'a [Sample]) -> Self {
        SliceIter { samples, pos: 0 }
    }
}

impl SampleIter for SliceIter<'_> {
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        let s = self.samples.get(self.pos).copied();
        if s.is_some() {
            self.pos += 1;
        }
        Ok(s)
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        let rest = &self.samples[self.pos..];
        self.pos += rest.partition_point(|s| s.t < t);
        self.next()
    }

    fn read_until(&mut self, maxt: i64, out: &mut Vec<Sample>) -> Result<usize, StorageError> {
        let rest = &self.samples[self.pos..];
        let n = rest.partition_point(|s| s.t <= maxt);
        out.extend_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// A sample iterator that owns its samples.
#[derive(Clone, Debug, Default)]
pub struct VecIter {
    samples: Vec<Sample>,
    pos: usize,
}

impl VecIter {
    /// Iterates `samples`, which must be sorted by timestamp.
    pub fn new(samples: Vec<Sample>) -> Self {
        VecIter { samples, pos: 0 }
    }
}

impl SampleIter for VecIter {
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        let s = self.samples.get(self.pos).copied();
        if s.is_some() {
            self.pos += 1;
        }
        Ok(s)
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        let rest = &self.samples[self.pos..];
        self.pos += rest.partition_point(|s| s.t < t);
        self.next()
    }

    fn read_until(&mut self, maxt: i64, out: &mut Vec<Sample>) -> Result<usize, StorageError> {
        let rest = &self.samples[self.pos..];
        let n = rest.partition_point(|s| s.t <= maxt);
        out.extend_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// One selected series: its labels and a cursor over its samples.
pub struct Series<'a> {
    /// The series' labels (including `__name__`).
    pub labels: Labels,
    /// Its samples within the querier's range. `Send`, so that a query
    /// engine can read the series of one selection on several threads.
    pub samples: Box<dyn SampleIter + Send + 'a>,
}

impl fmt::Debug for Series<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Series").field("labels", &self.labels).finish_non_exhaustive()
    }
}

/// Hints a query engine may pass to `select`; storages may ignore them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SelectHints {
    /// Inclusive start of the samples needed, ms.
    pub mint: i64,
    /// Inclusive end of the samples needed, ms.
    pub maxt: i64,
    /// Query step in ms (0 for instant queries).
    pub step: i64,
    /// The range of a range selector in ms (0 for plain vector selectors).
    pub range: i64,
    /// The function the selection feeds, if any (e.g. `rate`).
    pub func: Option<String>,
}

impl SelectHints {
    /// Hints for exactly the inclusive range `[mint, maxt]`.
    pub fn range(mint: i64, maxt: i64) -> Self {
        SelectHints { mint, maxt, ..Default::default() }
    }
}

/// Metadata of a metric family, as given by HELP/TYPE/UNIT lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricMetadata {
    /// Metric family name.
    pub metric: String,
    /// Type as Prometheus names it: counter, gauge, histogram, summary,
    /// gaugehistogram, stateset, info, unknown.
    pub kind: String,
    /// HELP text.
    pub help: String,
    /// UNIT text (may be empty).
    pub unit: String,
}

/// A read view of a metric storage over an inclusive time range.
///
/// Contract: `select` returns the series whose labels satisfy every matcher
/// and that may have samples in `[hints.mint, hints.maxt]`, sorted by
/// [`Labels`] order, each series once. At least one matcher should not match
/// the empty string; storages may reject selections that would scan
/// everything. A querier is cheap to create and may hold read locks or
/// mmapped files until dropped.
pub trait Querier {
    /// Series matching all `matchers`, sorted by labels.
    fn select<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series<'a>>, StorageError>;

    /// Sorted, unique label names of the series matching `matchers` (all
    /// series in range when `matchers` is empty).
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// Sorted, unique values of label `name` among series matching
    /// `matchers` (all series in range when empty).
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;
}

/// A metric storage that hands out [`Querier`]s.
pub trait Queryable: Send + Sync {
    /// A querier over samples in the inclusive range `[mint, maxt]` (ms).
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError>;

    /// Known metric metadata (HELP/TYPE/UNIT). Storages without it return
    /// an empty list.
    fn metadata(&self) -> Result<Vec<MetricMetadata>, StorageError> {
        Ok(Vec::new())
    }
}

/// Reads every sample of `iter` within `[mint, maxt]` into a vector.
pub fn collect_range(
    iter: &mut dyn SampleIter,
    mint: i64,
    maxt: i64,
) -> Result<Vec<Sample>, StorageError> {
    let mut out = Vec::new();
    let mut cur = iter.seek(mint)?;
    while let Some(s) = cur {
        if s.t > maxt {
            break;
        }
        out.push(s);
        cur = iter.next()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_nan_is_a_specific_nan() {
        assert!(stale_nan().is_nan());
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
    }

    #[test]
    fn start_iter_follows_next_and_seek() {
        let s: Vec<Sample> = (0..10).map(|i| Sample::new(i * 10, i as f64)).collect();
        let starts = vec![(0, -5), (30, 25), (40, 25), (90, 1)];
        let mut it = StartIter::new(SliceIter::new(&s), starts);
        assert!(it.has_start_timestamps());
        assert_eq!(it.start_timestamp(), None);
        assert_eq!(it.next().unwrap().map(|s| s.t), Some(0));
        assert_eq!(it.start_timestamp(), Some(-5));
        assert_eq!(it.next().unwrap().map(|s| s.t), Some(10));
        assert_eq!(it.start_timestamp(), None);
        assert_eq!(it.seek(35).unwrap().map(|s| s.t), Some(40));
        assert_eq!(it.start_timestamp(), Some(25));
        assert_eq!(it.seek(85).unwrap().map(|s| s.t), Some(90));
        assert_eq!(it.start_timestamp(), Some(1));
        assert_eq!(it.next().unwrap(), None);
        assert_eq!(it.start_timestamp(), None);
        assert!(!StartIter::new(VecIter::default(), Vec::new()).has_start_timestamps());
        assert!(!SliceIter::new(&s).has_start_timestamps());
    }

    #[test]
    fn slice_iter_seek_never_moves_back() {
        let s: Vec<Sample> = (0..10).map(|i| Sample::new(i * 10, i as f64)).collect();
        let mut it = SliceIter::new(&s);
        assert_eq!(it.seek(35).unwrap().map(|s| s.t), Some(40));
        assert_eq!(it.seek(0).unwrap().map(|s| s.t), Some(50));
        assert_eq!(it.seek(1000).unwrap(), None);
        let mut it = SliceIter::new(&s);
        assert_eq!(collect_range(&mut it, 15, 42).unwrap().len(), 3);
    }

    /// The default `read_until` (through `next`) and the slice one agree.
    struct ByNext<'a>(SliceIter<'a>);
    impl SampleIter for ByNext<'_> {
        fn next(&mut self) -> Result<Option<Sample>, StorageError> {
            self.0.next()
        }
    }

    #[test]
    fn read_until_stops_at_maxt() {
        let s: Vec<Sample> = (0..10).map(|i| Sample::new(i * 10, i as f64)).collect();
        for maxt in [-5, 0, 35, 40, 90, 200] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut fast = SliceIter::new(&s);
            let mut slow = ByNext(SliceIter::new(&s));
            assert_eq!(fast.next().unwrap(), slow.next().unwrap());
            let n = fast.read_until(maxt, &mut a).unwrap();
            slow.read_until(maxt, &mut b).unwrap();
            assert_eq!(a, b);
            assert_eq!(n, a.len());
            assert!(a.iter().all(|x| x.t <= maxt && x.t >= 10));
            let mut v = VecIter::new(s.clone());
            let mut c = Vec::new();
            v.next().unwrap();
            v.read_until(maxt, &mut c).unwrap();
            assert_eq!(a, c);
        }
    }
}
