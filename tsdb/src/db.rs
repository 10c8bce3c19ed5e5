//! The database: a head with its WAL, plus persisted blocks.
//!
//! Layout of a data directory:
//!
//! ```text
//! <data>/lock            advisory lock (one process at a time)
//! <data>/wal/            WAL segments and checkpoint (see crate::wal)
//! <data>/chunks_head/    full head chunks (a cache rebuilt from the WAL)
//! <data>/<block id>/     persisted blocks (see crate::block)
//! ```

use crate::error::{CompactError, OpenError};
use crate::head::append::Appender;
use crate::head::read::HeadQuerier;
use crate::head::replay::ReplayStats;
use crate::head::series::range_start;
use crate::head::Head;
use crate::options::Options;
use crate::querier::merge_series;
use crate::wal::{self, RepairReport, Wal};
use model::{Matcher, Querier, Queryable, SelectHints, Series, StorageError};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;

mod blocks;

pub use blocks::BlockInfo;

/// How long [`Db::open`] waits for a lock held by someone else.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Statistics of an open database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbStats {
    /// Series in the head.
    pub head_series: usize,
    /// Samples in the head.
    pub head_samples: u64,
    /// Oldest head sample (ms), if any.
    pub head_mint: Option<i64>,
    /// Newest head sample (ms), if any.
    pub head_maxt: Option<i64>,
    /// Persisted blocks.
    pub blocks: Vec<BlockInfo>,
    /// Samples accepted by commits since open.
    pub samples_appended: u64,
    /// Samples rejected as out of order since open.
    pub out_of_order: u64,
    /// Samples rejected as duplicates since open.
    pub duplicates: u64,
    /// Samples rejected as older than the head's lower bound since open.
    pub out_of_bounds: u64,
    /// Head chunk writes that failed (the data stayed in memory and the
    /// WAL).
    pub chunk_write_errors: u64,
    /// Bytes of the WAL directory.
    pub wal_bytes: u64,
    /// Bytes of the head chunk files.
    pub head_chunk_bytes: u64,
    /// What WAL replay found at open.
    pub replay: ReplayStats,
    /// The torn WAL tail repaired at open, if any.
    pub repair: Option<RepairReport>,
    /// The last error of the background compaction thread, if its last
    /// run failed.
    pub background_error: Option<String>,
}

/// What [`Db::compact`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Blocks written from the head.
    pub persisted: Vec<BlockInfo>,
    /// Blocks produced by merging smaller ones.
    pub compacted: Vec<BlockInfo>,
    /// Blocks deleted by retention or because they were merged.
    pub deleted: Vec<PathBuf>,
}

pub(crate) struct Inner {
    dir: PathBuf,
    opts: Options,
    head: Head,
    wal: Mutex<Option<Wal>>,
    blocks: RwLock<Vec<Arc<blocks::OpenBlock>>>,
    compact_lock: Mutex<()>,
    _lock_file: File,
    repair: Option<RepairReport>,
    replay: ReplayStats,
    closed: AtomicBool,
    wake: (Mutex<bool>, Condvar),
    background_error: Mutex<Option<String>>,
}

/// A time-series database in a directory.
///
/// `Db` is `Send + Sync`: share it (e.g. in an `Arc`) between writers and
/// readers. Writes go through [`Db::appender`]; reads through
/// [`model::Queryable`].
///
/// ```
/// use model::{Labels, Matcher, Queryable, SelectHints, collect_range};
/// use tsdb::{Db, Options};
/// # let dir = tempfile::tempdir()?;
/// let db = Db::open(dir.path(), Options::default())?;
/// let up = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
/// let mut app = db.appender();
/// app.append(&up, 1_000, 1.0)?;
/// app.append(&up, 2_000, 0.0)?;
/// app.commit()?;
/// let q = db.querier(0, 10_000)?;
/// let mut series = q.select(&SelectHints::range(0, 10_000), &[Matcher::equal("job", "node")])?;
/// assert_eq!(collect_range(series[0].samples.as_mut(), 0, 10_000)?.len(), 2);
/// # drop(series); drop(q);
/// db.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Db {
    inner: Arc<Inner>,
    bg: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

fn io<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> OpenError + 'p {
    move |source| OpenError::Io { op, path: path.to_path_buf(), source }
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: takes the lock,
    /// opens the blocks, replays the WAL (repairing a torn tail, reported
    /// by [`Db::repair_report`]) and starts a fresh WAL segment.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Db, OpenError> {
        let dir = dir.as_ref().to_path_buf();
        opts.validate().map_err(OpenError::InvalidOptions)?;
        std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
        let lock_path = dir.join("lock");
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("open lock file", &lock_path))?;
        // An advisory flock: released by the kernel when the process dies.
        // A lock held for a moment longer is waited for briefly: a process
        // that just closed the database, or one whose freshly forked child
        // still holds a copy of the descriptor until it execs, releases it
        // within milliseconds; a database really in use stays locked.
        let waited_since = std::time::Instant::now();
        loop {
            match lock_file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if waited_since.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(OpenError::Locked { dir, lock: lock_path });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", &lock_path)(e)),
            }
        }

        let blocks = blocks::open_all(&dir)?;
        let head = Head::new(
            &dir.join("chunks_head"),
            opts.block_range,
            opts.head_chunk_file_size,
            opts.ooo_window,
        )
            .map_err(io("create head chunks directory", &dir.join("chunks_head")))?;
        if let Some(maxt) = blocks.iter().map(|b| b.info.maxt).max() {
            head.set_min_valid_time(maxt.saturating_add(1));
        }
        let wal_dir = dir.join("wal");
        let (outcome, replay) = head.replay(&wal_dir)?;
        let wal = Wal::open(&wal_dir, opts.wal.clone())?;
        let inner = Arc::new(Inner {
            dir,
            opts,
            head,
            wal: Mutex::new(Some(wal)),
            blocks: RwLock::new(blocks),
            compact_lock: Mutex::new(()),
            _lock_file: lock_file,
            repair: outcome.repair,
            replay,
            closed: AtomicBool::new(false),
            wake: (Mutex::new(false), Condvar::new()),
            background_error: Mutex::new(None),
        });
        let bg = inner.opts.background.map(|interval| {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("tsdb-compact".into())
                .spawn(move || background(inner, interval))
        });
        let bg = match bg {
            Some(Ok(h)) => Some(h),
            Some(Err(e)) => return Err(io("spawn compaction thread", Path::new("tsdb-compact"))(e)),
            None => None,
        };
        Ok(Db { inner, bg: Mutex::new(bg) })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options in effect.
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// The torn WAL tail that was repaired when opening, if any.
    pub fn repair_report(&self) -> Option<&RepairReport> {
        self.inner.repair.as_ref()
    }

    /// A new appender. Appenders are independent; commits are serialised.
    pub fn appender(&self) -> Appender<'_> {
        Appender::new(&self.inner.head, &self.inner.wal, Some(&*self.inner))
    }

    /// Current statistics.
    pub fn stats(&self) -> DbStats {
        let h = &self.inner.head;
        let c = &h.counters;
        let (mint, maxt) = (h.mint(), h.maxt());
        let nonempty = mint <= maxt;
        DbStats {
            head_series: h.num_series(),
            head_samples: h.num_samples(),
            head_mint: nonempty.then_some(mint),
            head_maxt: nonempty.then_some(maxt),
            blocks: self.inner.read_blocks().iter().map(|b| b.info.clone()).collect(),
            samples_appended: c.samples_appended.load(Ordering::Relaxed),
            out_of_order: c.out_of_order.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            out_of_bounds: c.out_of_bounds.load(Ordering::Relaxed),
            chunk_write_errors: c.chunk_write_errors.load(Ordering::Relaxed),
            wal_bytes: crate::fs::dir_size(&self.inner.dir.join("wal")).unwrap_or(0),
            head_chunk_bytes: h.disk_size(),
            replay: self.inner.replay.clone(),
            repair: self.inner.repair.clone(),
            background_error: self.inner.background_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Persists the head to blocks while it spans more than 1.5 block
    /// ranges (then truncates the WAL with a checkpoint), merges small
    /// blocks, and applies retention.
    pub fn compact(&self) -> Result<CompactStats, CompactError> {
        self.inner.compact(false)
    }

    /// Persists everything in the head to blocks regardless of its span
    /// (e.g. before a backup), then compacts as [`Db::compact`]. Afterwards
    /// the head accepts only samples newer than the newest persisted one.
    pub fn flush_head(&self) -> Result<CompactStats, CompactError> {
        self.inner.compact(true)
    }

    /// Stops the background thread, syncs and closes the WAL, and releases
    /// the lock. Further commits fail with
    /// [`CommitError::Closed`](crate::error::CommitError::Closed).
    pub fn close(self) -> Result<(), wal::WalError> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<(), wal::WalError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        {
            let (m, cv) = &self.inner.wake;
            *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
            cv.notify_all();
        }
        if let Some(h) = self.bg.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
        let wal = self.inner.wal_guard().take();
        match wal {
            Some(w) => w.close(),
            None => Ok(()),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn background(inner: Arc<Inner>, interval: std::time::Duration) {
    let (m, cv) = &inner.wake;
    loop {
        {
            let mut woke = m.lock().unwrap_or_else(|e| e.into_inner());
            if !*woke {
                woke = cv.wait_timeout(woke, interval).map(|r| r.0).unwrap_or_else(|e| e.into_inner().0);
            }
            *woke = false;
        }
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        // The error is reported by `Db::stats`; the thread keeps trying on
        // its schedule.
        let res = inner.compact(false);
        *inner.background_error.lock().unwrap_or_else(|e| e.into_inner()) = match res {
            Ok(_) | Err(CompactError::Closed) => None,
            Err(e) => Some(e.to_string()),
        };
    }
}

impl Inner {
    fn wal_guard(&self) -> MutexGuard<'_, Option<Wal>> {
        self.wal.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_blocks(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<blocks::OpenBlock>>> {
        self.blocks.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the head spans more than 1.5 block ranges (Prometheus's rule).
    fn head_compactable(&self) -> bool {
        let (mint, maxt) = (self.head.mint(), self.head.maxt());
        mint <= maxt && (maxt as i128 - mint as i128) > (self.opts.block_range as i128) * 3 / 2
    }

    fn compact(&self, flush_all: bool) -> Result<CompactStats, CompactError> {
        let _g = self.compact_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return Err(CompactError::Closed);
        }
        let mut stats = CompactStats::default();
        let mut truncated_to = None;
        while self.head_compactable() || (flush_all && self.head.mint() <= self.head.maxt()) {
            let start = range_start(self.head.mint(), self.opts.block_range);
            let mut end = start.saturating_add(self.opts.block_range - 1);
            if flush_all {
                // A partial window ends at the newest sample, so the head
                // keeps accepting samples after it; the partial block and
                // a later one of the same window overlap and get merged.
                end = end.min(self.head.maxt());
            }
            if let Some(info) = self.persist_range(start, end)? {
                stats.persisted.push(info);
            }
            truncated_to = Some(end.saturating_add(1));
        }
        if let Some(mint) = truncated_to {
            self.truncate_wal(mint)?;
        }
        self.compact_blocks(&mut stats)?;
        self.apply_retention(&mut stats)?;
        Ok(stats)
    }

    /// Writes the head's samples in `[start, end]` to a block and drops them
    /// from the head.
    fn persist_range(&self, start: i64, end: i64) -> Result<Option<BlockInfo>, CompactError> {
        {
            // Under the WAL lock no commit is half-published: from here on
            // commits of samples <= end are rejected as out of bounds.
            let _w = self.wal_guard();
            self.head.set_min_valid_time(end.saturating_add(1));
        }
        let info = blocks::write_from_head(self, start, end)?;
        if let Some(b) = &info {
            let mut list = self.blocks.write().unwrap_or_else(|e| e.into_inner());
            list.push(b.clone());
            list.sort_by_key(|b| (b.info.mint, b.info.maxt));
        }
        {
            let _w = self.wal_guard();
            self.head.truncate(end.saturating_add(1));
        }
        Ok(info.map(|b| b.info.clone()))
    }

    /// Checkpoints the WAL: keeps series still in the head and samples at
    /// or after `mint`, then removes the covered segments.
    fn truncate_wal(&self, mint: i64) -> Result<(), CompactError> {
        let closed = {
            let mut g = self.wal_guard();
            let Some(w) = g.as_mut() else { return Err(CompactError::Closed) };
            w.next_segment()?
        };
        let wal_dir = self.dir.join("wal");
        wal::checkpoint(&wal_dir, closed, self.head.checkpoint_filter(mint))?;
        let mut g = self.wal_guard();
        if let Some(w) = g.as_mut() {
            w.remove_segments_upto(closed)?;
        }
        Ok(())
    }

    /// The blocks overlapping `[mint, maxt]`, oldest first.
    fn blocks_in(&self, mint: i64, maxt: i64) -> Vec<Arc<blocks::OpenBlock>> {
        self.read_blocks().iter().filter(|b| b.info.maxt >= mint && b.info.mint <= maxt).cloned().collect()
    }
}

/// The database's querier. Each call reads the head first and then the
/// block list of that moment: data leaves the head only after its block
/// joined the list, so nothing falls between the two (data present in
/// both is deduplicated).
struct DbQuerier<'a> {
    inner: &'a Inner,
    mint: i64,
    maxt: i64,
}

impl DbQuerier<'_> {
    fn head(&self) -> HeadQuerier<'_> {
        HeadQuerier { head: &self.inner.head, mint: self.mint, maxt: self.maxt }
    }

    fn strings<F>(&self, get: F) -> Result<Vec<String>, StorageError>
    where
        F: Fn(&dyn Querier) -> Result<Vec<String>, StorageError>,
    {
        let mut set: std::collections::BTreeSet<String> = get(&self.head())?.into_iter().collect();
        for b in self.inner.blocks_in(self.mint, self.maxt) {
            set.extend(get(&b.block.querier(self.mint, self.maxt))?);
        }
        Ok(set.into_iter().collect())
    }
}

impl Querier for DbQuerier<'_> {
    fn select<'b>(
        &'b self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series<'b>>, StorageError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StorageError::Unavailable("the database is closed".into()));
        }
        let mint = hints.mint.max(self.mint);
        let maxt = hints.maxt.min(self.maxt);
        if mint > maxt {
            return Ok(Vec::new());
        }
        let head_series = self.inner.head.select(mint, maxt, matchers)?;
        // Blocks oldest first, the head last: on a shared timestamp the
        // persisted value wins (they are equal unless a block was imported).
        let mut sources = Vec::new();
        for b in self.inner.blocks_in(mint, maxt) {
            sources.push(blocks::select(&b, mint, maxt, matchers)?);
        }
        sources.push(head_series);
        Ok(merge_series(sources))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.strings(|q| q.label_names(matchers))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.strings(|q| q.label_values(name, matchers))
    }
}

impl Queryable for Db {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StorageError::Unavailable("the database is closed".into()));
        }
        Ok(Box::new(DbQuerier { inner: &self.inner, mint, maxt }))
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl crate::head::append::CommitHook for Inner {
    fn committed(&self) {
        if self.opts.background.is_some() && self.head_compactable() {
            let (m, cv) = &self.wake;
            *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
            cv.notify_all();
        }
    }
}
