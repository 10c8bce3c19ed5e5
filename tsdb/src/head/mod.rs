//! The head: the in-memory, appendable part of the database.
//!
//! Each series keeps its open XOR chunk in memory and its full chunks in
//! the head chunk files (`chunks_disk.rs`). An inverted index (label
//! name → value → series refs) serves selections. Appends go through an
//! [`Appender`](crate::Appender) whose commit writes the WAL record first;
//! recovery replays the WAL (`replay.rs`). Methods are split by concern:
//! `append.rs`, `read.rs`, `replay.rs`.

pub(crate) mod append;
pub(crate) mod chunks_disk;
pub(crate) mod read;
pub(crate) mod replay;
pub(crate) mod series;

use chunks_disk::HeadChunks;
use model::{Labels, Matcher};
use series::MemSeries;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) type SeriesHandle = Arc<Mutex<MemSeries>>;

/// Locks a series. A poisoned lock means a panic while appending; the
/// series' chunks are still structurally valid, so keep using them.
pub(crate) fn lock(s: &SeriesHandle) -> MutexGuard<'_, MemSeries> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct HeadIndex {
    by_labels: HashMap<Labels, SeriesHandle>,
    by_ref: HashMap<u64, SeriesHandle>,
    postings: HashMap<String, HashMap<String, BTreeSet<u64>>>,
}

impl HeadIndex {
    fn insert(&mut self, series_ref: u64, labels: Labels) -> SeriesHandle {
        for l in &labels {
            self.postings
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default()
                .insert(series_ref);
        }
        let h = Arc::new(Mutex::new(MemSeries::new(series_ref, labels.clone())));
        self.by_labels.insert(labels, h.clone());
        self.by_ref.insert(series_ref, h.clone());
        h
    }

    fn remove(&mut self, series_ref: u64, labels: &Labels) {
        self.by_labels.remove(labels);
        self.by_ref.remove(&series_ref);
        for l in labels {
            if let Some(values) = self.postings.get_mut(&l.name) {
                if let Some(refs) = values.get_mut(&l.value) {
                    refs.remove(&series_ref);
                    if refs.is_empty() {
                        values.remove(&l.value);
                    }
                }
                if values.is_empty() {
                    self.postings.remove(&l.name);
                }
            }
        }
    }

    /// Series refs that may match all `matchers` (a superset: callers
    /// check the labels).
    fn candidates(&self, matchers: &[Matcher]) -> Vec<u64> {
        let mut acc: Option<BTreeSet<u64>> = None;
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let mut set = BTreeSet::new();
            if let Some(values) = self.postings.get(&m.name) {
                if m.kind == model::MatchType::Equal {
                    if let Some(refs) = values.get(&m.value) {
                        set.extend(refs.iter().copied());
                    }
                } else {
                    for (v, refs) in values {
                        if m.matches(v) {
                            set.extend(refs.iter().copied());
                        }
                    }
                }
            }
            acc = Some(match acc {
                None => set,
                Some(a) => a.intersection(&set).copied().collect(),
            });
            if acc.as_ref().is_some_and(BTreeSet::is_empty) {
                break;
            }
        }
        match acc {
            Some(a) => a.into_iter().collect(),
            None => self.by_ref.keys().copied().collect(),
        }
    }
}

/// Counters of the head (monotonic since open).
#[derive(Debug, Default)]
pub(crate) struct HeadCounters {
    pub samples_appended: AtomicU64,
    pub out_of_order: AtomicU64,
    pub duplicates: AtomicU64,
    pub out_of_bounds: AtomicU64,
    pub series_created: AtomicU64,
    pub series_removed: AtomicU64,
    pub chunk_write_errors: AtomicU64,
}

/// The head block.
#[derive(Debug)]
pub(crate) struct Head {
    chunk_range: i64,
    ooo_window: i64,
    index: RwLock<HeadIndex>,
    next_ref: AtomicU64,
    mint: AtomicI64,
    maxt: AtomicI64,
    /// Samples older than this are rejected (their range is in a block).
    min_valid_time: AtomicI64,
    disk: Mutex<HeadChunks>,
    pub counters: HeadCounters,
}

impl Head {
    /// A new, empty head whose chunk files live in `chunks_dir` (cleared).
    pub fn new(
        chunks_dir: &Path,
        chunk_range: i64,
        chunk_file_size: u64,
        ooo_window: i64,
    ) -> std::io::Result<Head> {
        Ok(Head {
            chunk_range: chunk_range.max(1),
            ooo_window: ooo_window.max(0),
            index: RwLock::default(),
            next_ref: AtomicU64::new(1),
            mint: AtomicI64::new(i64::MAX),
            maxt: AtomicI64::new(i64::MIN),
            // `i64::MIN` is the series' "no sample" marker, so it is never valid.
            min_valid_time: AtomicI64::new(i64::MIN + 1),
            disk: Mutex::new(HeadChunks::create(chunks_dir, chunk_file_size)?),
            counters: HeadCounters::default(),
        })
    }

    fn read_index(&self) -> RwLockReadGuard<'_, HeadIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, HeadIndex> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn disk_mutex(&self) -> &Mutex<HeadChunks> {
        &self.disk
    }

    pub(crate) fn disk(&self) -> MutexGuard<'_, HeadChunks> {
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How far (ms) behind the newest sample an out-of-order sample is
    /// accepted (0: never).
    pub fn ooo_window(&self) -> i64 {
        self.ooo_window
    }

    pub fn chunk_range(&self) -> i64 {
        self.chunk_range
    }

    /// Oldest sample time in the head (`i64::MAX` when empty).
    pub fn mint(&self) -> i64 {
        self.mint.load(Ordering::Acquire)
    }

    /// Newest sample time in the head (`i64::MIN` when empty).
    pub fn maxt(&self) -> i64 {
        self.maxt.load(Ordering::Acquire)
    }

    pub fn min_valid_time(&self) -> i64 {
        self.min_valid_time.load(Ordering::Acquire)
    }

    pub fn set_min_valid_time(&self, t: i64) {
        self.min_valid_time.fetch_max(t, Ordering::AcqRel);
    }

    /// Records that a sample at `t` entered the head.
    pub(crate) fn note_time(&self, t: i64) {
        self.mint.fetch_min(t, Ordering::AcqRel);
        self.maxt.fetch_max(t, Ordering::AcqRel);
    }

    /// The series with these labels, created if new (`true` when created).
    pub fn get_or_create(&self, labels: &Labels) -> (SeriesHandle, bool) {
        if let Some(h) = self.read_index().by_labels.get(labels) {
            return (h.clone(), false);
        }
        let mut idx = self.write_index();
        if let Some(h) = idx.by_labels.get(labels) {
            return (h.clone(), false);
        }
        let r = self.next_ref.fetch_add(1, Ordering::AcqRel);
        self.counters.series_created.fetch_add(1, Ordering::Relaxed);
        (idx.insert(r, labels.clone()), true)
    }

    /// Creates a series with a given ref (WAL replay). An existing series
    /// with the same labels is returned instead.
    pub fn create_with_ref(&self, series_ref: u64, labels: Labels) -> SeriesHandle {
        let mut idx = self.write_index();
        if let Some(h) = idx.by_labels.get(&labels) {
            return h.clone();
        }
        self.next_ref.fetch_max(series_ref + 1, Ordering::AcqRel);
        self.counters.series_created.fetch_add(1, Ordering::Relaxed);
        idx.insert(series_ref, labels)
    }

    /// The series with reference `r`.
    pub fn series_by_ref(&self, r: u64) -> Option<SeriesHandle> {
        self.read_index().by_ref.get(&r).cloned()
    }

    /// Whether a series ref is currently in the head.
    pub fn has_ref(&self, r: u64) -> bool {
        self.read_index().by_ref.contains_key(&r)
    }

    /// Series matching all matchers, sorted by labels.
    pub fn select_series(&self, matchers: &[Matcher]) -> Vec<SeriesHandle> {
        let idx = self.read_index();
        let mut out: Vec<(Labels, SeriesHandle)> = idx
            .candidates(matchers)
            .into_iter()
            .filter_map(|r| idx.by_ref.get(&r))
            .filter_map(|h| {
                let labels = lock(h).labels.clone();
                model::matches_all(matchers, &labels).then(|| (labels, h.clone()))
            })
            .collect();
        drop(idx);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.into_iter().map(|(_, h)| h).collect()
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        self.read_index().by_ref.len()
    }

    /// Number of samples held.
    pub fn num_samples(&self) -> u64 {
        let all: Vec<SeriesHandle> = self.read_index().by_ref.values().cloned().collect();
        all.iter().map(|h| lock(h).num_samples()).sum()
    }

    /// Bytes of head chunk files.
    pub fn disk_size(&self) -> u64 {
        self.disk().disk_size()
    }

    /// Drops all data older than `mint` and series left empty. Called after
    /// the range below `mint` was persisted to a block.
    pub fn truncate(&self, mint: i64) {
        self.set_min_valid_time(mint);
        let all: Vec<SeriesHandle> = self.read_index().by_ref.values().cloned().collect();
        let mut new_mint = i64::MAX;
        let mut dead = Vec::new();
        for h in &all {
            let mut s = lock(h);
            if s.truncate_before(mint) {
                s.removed = true;
                dead.push((s.series_ref, s.labels.clone()));
            } else if let Some(t) = s.mint() {
                new_mint = new_mint.min(t);
            }
        }
        if !dead.is_empty() {
            let mut idx = self.write_index();
            for (r, l) in &dead {
                idx.remove(*r, l);
            }
            self.counters.series_removed.fetch_add(dead.len() as u64, Ordering::Relaxed);
        }
        // Remaining chunks start at or after `mint` (chunks never straddle
        // a multiple of the chunk range). Should one straddle anyway (a
        // failed chunk write keeps a chunk open), data below `mint` is
        // already in a block: report `mint` so persisting moves on.
        let new_mint = if new_mint == i64::MAX { new_mint } else { new_mint.max(mint) };
        self.mint.store(new_mint, Ordering::Release);
        self.disk().truncate_before(mint);
    }
}
