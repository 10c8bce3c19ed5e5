//! Appending to the head through the WAL.

use super::series::MemSeries;
use super::{lock, Head, SeriesHandle};
use crate::encoding::Encbuf;
use crate::error::{AppendError, CommitError};
use crate::record::{encode_commit_with_starts, RefSample, RefSeries, SampleStart};
use crate::wal::Wal;
use model::Labels;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// A reference to a head series, valid while the series stays in the head
/// (it is removed once all its data was persisted to blocks and it
/// received no new samples).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesRef(u64);

impl SeriesRef {
    /// The numeric reference (as written to the WAL).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// What a commit did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Samples written to the WAL and published.
    pub samples: usize,
    /// Series whose definition was written to the WAL by this commit.
    pub new_series: usize,
    /// Samples that were valid when appended but conflicted, at commit
    /// time, with a sample another appender committed first (counted as
    /// out-of-order or duplicate in the database stats).
    pub rejected: usize,
}

/// Buffers samples and commits them atomically.
///
/// Samples are validated as they are appended: out-of-order samples
/// (older than their series' newest sample, unless within the
/// [out-of-order window](crate::OptionsBuilder::out_of_order_window)),
/// duplicates (a sample at an existing timestamp) and out-of-bounds samples
/// (in a range already persisted) get an [`AppendError`], are counted in
/// [`DbStats`](crate::DbStats), and are not buffered.
/// [`commit`](Self::commit) writes all buffered samples as one WAL record —
/// so after a crash either all or none of them are recovered — syncs it
/// according to the fsync policy, and only then makes them visible to
/// queries. Dropping an appender without committing discards its samples.
pub struct Appender<'a> {
    head: &'a Head,
    wal: &'a Mutex<Option<Wal>>,
    hook: Option<&'a dyn CommitHook>,
    pending: Vec<(SeriesHandle, i64, f64)>,
    /// Newest pending sample per series: (handle, t, v).
    batch_last: HashMap<u64, (SeriesHandle, i64, f64)>,
    /// Every pending (series, timestamp), kept only when out-of-order
    /// samples are accepted (to reject duplicates within the batch).
    pending_times: HashSet<(u64, i64)>,
    /// Start timestamps of pending samples: (index in `pending`, st).
    pending_starts: Vec<(usize, i64)>,
}

/// Told about every successful commit (the database uses it to wake
/// background compaction).
pub(crate) trait CommitHook: Sync {
    fn committed(&self);
}

impl std::fmt::Debug for Appender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender").field("pending", &self.pending.len()).finish_non_exhaustive()
    }
}

impl<'a> Appender<'a> {
    pub(crate) fn new(
        head: &'a Head,
        wal: &'a Mutex<Option<Wal>>,
        hook: Option<&'a dyn CommitHook>,
    ) -> Self {
        Appender {
            head,
            wal,
            hook,
            pending: Vec::new(),
            batch_last: HashMap::new(),
            pending_times: HashSet::new(),
            pending_starts: Vec::new(),
        }
    }

    /// Buffers a sample of the series `labels` (created if new). Labels are
    /// stored exactly as given, as Prometheus's TSDB does: dropping labels
    /// with empty values is the job of the layers above (scraping,
    /// relabelling), and PromQL's own test scripts expect a stored
    /// `__unit__=""` to come back. Returns the series' reference for
    /// [`append_ref`](Self::append_ref).
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        if labels.is_empty() {
            return Err(AppendError::EmptyLabels);
        }
        if let Some(l) = labels.iter().find(|l| l.name.is_empty()) {
            return Err(AppendError::InvalidLabels {
                labels: labels.clone(),
                reason: format!("empty label name (value {:?})", l.value),
            });
        }
        let (h, _) = self.head.get_or_create(labels);
        self.push(h, t, v)
    }

    /// Buffers a sample like [`append`](Self::append), with an optional
    /// start timestamp `st` (ms): when the counter or delta the sample
    /// measures started. It is logged with the sample and returned by
    /// [`SampleIter::start_timestamp`](model::SampleIter::start_timestamp)
    /// when the sample is read.
    pub fn append_with_start(
        &mut self,
        labels: &Labels,
        t: i64,
        v: f64,
        st: Option<i64>,
    ) -> Result<SeriesRef, AppendError> {
        let r = self.append(labels, t, v)?;
        self.note_start(st);
        Ok(r)
    }

    /// Buffers a sample of a series known by reference, with an optional
    /// start timestamp (see [`append_with_start`](Self::append_with_start)).
    pub fn append_ref_with_start(
        &mut self,
        r: SeriesRef,
        t: i64,
        v: f64,
        st: Option<i64>,
    ) -> Result<SeriesRef, AppendError> {
        let r = self.append_ref(r, t, v)?;
        self.note_start(st);
        Ok(r)
    }

    /// Records `st` for the sample just buffered.
    fn note_start(&mut self, st: Option<i64>) {
        if let (Some(st), Some(i)) = (st, self.pending.len().checked_sub(1)) {
            self.pending_starts.push((i, st));
        }
    }

    /// Buffers a sample of a series known by reference.
    pub fn append_ref(&mut self, r: SeriesRef, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        let h = match self.batch_last.get(&r.0) {
            Some((h, _, _)) => h.clone(),
            None => self.head.series_by_ref(r.0).ok_or(AppendError::UnknownRef(r.0))?,
        };
        self.push(h, t, v)
    }

    fn push(&mut self, h: SeriesHandle, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        let r = {
            let s = lock(&h);
            let last = self.batch_last.get(&s.series_ref).map(|(_, t, v)| (*t, *v));
            check_sample(self.head, &s, t, v, last, &self.pending_times, false)?;
            s.series_ref
        };
        if self.head.ooo_window() > 0 {
            self.pending_times.insert((r, t));
        }
        let newest = self.batch_last.get(&r).is_none_or(|(_, lt, _)| t > *lt);
        if newest {
            self.batch_last.insert(r, (h.clone(), t, v));
        }
        self.pending.push((h, t, v));
        Ok(SeriesRef(r))
    }

    /// Number of buffered samples.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Writes the buffered samples to the WAL (one record, synced per the
    /// fsync policy) and publishes them to the head. On error nothing is
    /// published and the batch is discarded.
    pub fn commit(&mut self) -> Result<CommitStats, CommitError> {
        let pending = std::mem::take(&mut self.pending);
        let pending_starts = std::mem::take(&mut self.pending_starts);
        let mut next_start = pending_starts.iter().peekable();
        let mut starts: Vec<SampleStart> = Vec::new();
        self.batch_last.clear();
        self.pending_times.clear();
        if pending.is_empty() {
            return Ok(CommitStats::default());
        }
        let head = self.head;
        // The WAL lock serialises commits, so validation below and
        // publication cannot interleave with another commit.
        let mut guard = self.wal.lock().unwrap_or_else(|e| e.into_inner());
        let wal = guard.as_mut().ok_or(CommitError::Closed)?;

        let mut stats = CommitStats::default();
        let mut new_series: Vec<RefSeries> = Vec::new();
        let mut new_handles: Vec<SeriesHandle> = Vec::new();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut samples: Vec<RefSample> = Vec::with_capacity(pending.len());
        let mut handles: Vec<SeriesHandle> = Vec::with_capacity(pending.len());
        let mut last: HashMap<u64, (i64, f64)> = HashMap::new();
        let mut accepted: HashSet<(u64, i64)> = HashSet::new();
        for (i, (h, t, v)) in pending.into_iter().enumerate() {
            let st = next_start.next_if(|(j, _)| *j == i).map(|(_, st)| *st);
            let removed = lock(&h).removed;
            let h = if removed {
                let labels = lock(&h).labels.clone();
                head.get_or_create(&labels).0
            } else {
                h
            };
            let s = lock(&h);
            // Re-check: another appender may have committed since `append`.
            if check_sample(head, &s, t, v, last.get(&s.series_ref).copied(), &accepted, false).is_err() {
                stats.rejected += 1;
                continue;
            }
            if head.ooo_window() > 0 {
                accepted.insert((s.series_ref, t));
            }
            if last.get(&s.series_ref).is_none_or(|(lt, _)| t > *lt) {
                last.insert(s.series_ref, (t, v));
            }
            if !s.logged && seen.insert(s.series_ref) {
                new_series.push(RefSeries { series_ref: s.series_ref, labels: s.labels.clone() });
                new_handles.push(h.clone());
            }
            if let Some(st) = st {
                starts.push(SampleStart { sample: samples.len(), st });
            }
            samples.push(RefSample { series_ref: s.series_ref, t, v });
            drop(s);
            handles.push(h);
        }
        if samples.is_empty() {
            return Ok(stats);
        }
        let mut buf = Encbuf::with_capacity(16 + samples.len() * 14);
        encode_commit_with_starts(&new_series, &samples, &starts, &mut buf);
        wal.log(buf.get())?;

        for h in &new_handles {
            lock(h).logged = true;
        }
        for (h, s) in handles.iter().zip(&samples) {
            publish(head, h, s.t, s.v);
        }
        for st in &starts {
            lock(&handles[st.sample]).set_start(samples[st.sample].t, st.st);
        }
        head.counters.samples_appended.fetch_add(samples.len() as u64, Ordering::Relaxed);
        stats.samples = samples.len();
        stats.new_series = new_series.len();
        drop(guard);
        if let Some(h) = self.hook {
            h.committed();
        }
        Ok(stats)
    }

    /// Discards the buffered samples.
    pub fn rollback(&mut self) {
        self.pending.clear();
        self.pending_starts.clear();
        self.batch_last.clear();
        self.pending_times.clear();
    }
}

/// Appends a validated sample to a series' chunks.
pub(crate) fn publish(head: &Head, h: &SeriesHandle, t: i64, v: f64) {
    let res = lock(h).append(t, v, head.chunk_range(), head.disk_mutex());
    if res.is_err() {
        head.counters.chunk_write_errors.fetch_add(1, Ordering::Relaxed);
    }
    head.note_time(t);
}

/// Checks a sample against the head's lower bound, the series' newest
/// sample (or `pending`, the newest not yet committed one) and, for older
/// samples within the out-of-order window, against existing samples at the
/// same timestamp (`pending_times`: uncommitted ones). Counts rejections.
/// `replaying` accepts older samples regardless of the window.
pub(crate) fn check_sample(
    head: &Head,
    s: &MemSeries,
    t: i64,
    v: f64,
    pending: Option<(i64, f64)>,
    pending_times: &HashSet<(u64, i64)>,
    replaying: bool,
) -> Result<(), AppendError> {
    let min_valid_time = head.min_valid_time();
    if t < min_valid_time {
        head.counters.out_of_bounds.fetch_add(1, Ordering::Relaxed);
        return Err(AppendError::OutOfBounds { labels: s.labels.clone(), t, min_valid_time });
    }
    let (last_t, last_v) = match pending {
        Some(p) if p.0 > s.last_t => p,
        _ => (s.last_t, s.last_v),
    };
    // `i64::MIN` means "no sample yet"; it is below every valid time.
    if last_t == i64::MIN || t > last_t {
        return Ok(());
    }
    let duplicate = |same_value: bool| {
        head.counters.duplicates.fetch_add(1, Ordering::Relaxed);
        Err(AppendError::Duplicate { labels: s.labels.clone(), t, same_value })
    };
    if t == last_t {
        return duplicate(v.to_bits() == last_v.to_bits());
    }
    let window = head.ooo_window();
    // Replayed samples were accepted when committed (the head's newest
    // time then excluded later samples of the same record): keep them.
    if replaying || window > 0 && t >= head.maxt().max(last_t).saturating_sub(window) {
        if pending_times.contains(&(s.series_ref, t)) {
            return duplicate(false);
        }
        return match s.value_at(t, head.disk_mutex()) {
            Some(old) => duplicate(old.to_bits() == v.to_bits()),
            None => Ok(()),
        };
    }
    head.counters.out_of_order.fetch_add(1, Ordering::Relaxed);
    Err(AppendError::OutOfOrder { labels: s.labels.clone(), t, last_t })
}
