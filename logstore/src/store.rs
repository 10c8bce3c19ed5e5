//! The store: opening (chunk files, then the WAL), pushing, flushing,
//! retention and closing. Queries live in `querier.rs`.

use crate::chunk::file::{write_chunk_file, ChunkFile, OpenChunkError, StreamBlocks};
use crate::chunk::filter;
use crate::error::{
    CloseError, FlushError, OpenError, PushError, RejectReason, Rejection, RetentionError,
};
use crate::options::Options;
use crate::record::{decode_push, encode_push};
use crate::streams::{BlockData, BlockRef, Postings, StreamState};
use model::{is_valid_label_name, Labels, LogEntry};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;
use tsdb::encoding::{crc32, Encbuf};
use tsdb::fs::{IoContext, IoError};
use tsdb::wal::{RepairReport, Wal, WalOptions};

const CHUNKS_DIR: &str = "chunks";
const WAL_DIR: &str = "wal";
const RETENTION_FILE: &str = "retention";

/// What a push did. Entries are either accepted, dropped as exact
/// duplicates (same timestamp and line as an entry already in the stream's
/// head or earlier in the same push), or rejected with a reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Entries stored.
    pub accepted: usize,
    /// Exact duplicates dropped.
    pub duplicates: usize,
    /// Entries refused, with reasons.
    pub rejected: Vec<Rejection>,
}

/// Counters of the store's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Streams held.
    pub streams: usize,
    /// Entries held (blocks and heads).
    pub entries: u64,
    /// Bytes of log lines held (the "raw" size).
    pub raw_bytes: u64,
    /// Compressed bytes of all blocks (flushed or not).
    pub compressed_bytes: u64,
    /// Chunk files on disk.
    pub chunks: usize,
    /// Compressed blocks (flushed or not).
    pub blocks: usize,
    /// Entries still in head blocks (uncompressed).
    pub head_entries: u64,
    /// Entries older than this (ns) are deleted by retention.
    pub retention_cutoff: Option<i64>,
    /// The last error of the background flush thread, if any.
    pub last_background_error: Option<String>,
}

/// What [`Store::flush`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushStats {
    /// The chunk file written, if there was anything to write.
    pub file: Option<PathBuf>,
    /// Blocks written.
    pub blocks: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// What [`Store::apply_retention`] deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionStats {
    /// Entries older than this (ns) are gone.
    pub cutoff: Option<i64>,
    /// Chunk files deleted.
    pub files_removed: usize,
    /// Blocks dropped.
    pub blocks_removed: usize,
    /// Head entries dropped.
    pub head_entries_removed: usize,
    /// Streams left without data and removed.
    pub streams_removed: usize,
}

/// What [`Store::open`] found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    /// Chunk files loaded.
    pub chunk_files: usize,
    /// Blocks loaded from them.
    pub blocks: usize,
    /// WAL records replayed into the heads.
    pub wal_records: u64,
    /// A torn WAL tail that was cut off (the process died mid-write).
    pub repair: Option<RepairReport>,
    /// Leftover temporary files removed.
    pub removed_tmp: Vec<PathBuf>,
}

/// A log store in a directory. See the crate docs.
///
/// `Store` is `Send + Sync`: pushes take a write lock for validation, one
/// WAL append and the in-memory update; queries take a read lock only to
/// snapshot the blocks and head entries they need, then decode without
/// holding it.
#[derive(Debug)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
    background: Option<Background>,
    report: OpenReport,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub state: RwLock<State>,
    pub opts: Options,
    dir: PathBuf,
    /// zstd contexts and block buffers reused by queries.
    pub read_pool: crate::querier::ReadPool,
}

#[derive(Debug)]
struct Background {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: JoinHandle<()>,
}

#[derive(Debug)]
struct FileInfo {
    file: Arc<ChunkFile>,
    max_t: i64,
}

pub(crate) struct State {
    pub streams: HashMap<u32, StreamState>,
    by_labels: HashMap<Labels, u32>,
    pub postings: Postings,
    next_id: u32,
    /// `None` once closed.
    wal: Option<Wal>,
    wal_dirty: bool,
    files: BTreeMap<u32, FileInfo>,
    next_file_seq: u32,
    /// Entries before this are deleted (`i64::MIN`: no retention yet).
    pub watermark: i64,
    compressor: zstd::bulk::Compressor<'static>,
    /// Compressed blocks at least this large get a trigram filter
    /// (`None`: no filters).
    filters: Option<usize>,
    raw: Vec<u8>,
    enc: Encbuf,
    background_error: Option<String>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("streams", &self.streams.len())
            .field("files", &self.files.len())
            .field("watermark", &self.watermark)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`: loads the chunk
    /// files, replays the WAL into the heads (repairing a torn tail, see
    /// [`Store::open_report`]), and starts the background flush thread if
    /// configured.
    ///
    /// Corruption — a damaged chunk file, a bad WAL record before the tail —
    /// is an error naming the file and offset.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Store, OpenError> {
        let dir = dir.as_ref().to_path_buf();
        let chunks_dir = dir.join(CHUNKS_DIR);
        let wal_dir = dir.join(WAL_DIR);
        std::fs::create_dir_all(&chunks_dir).ctx("create directory", &chunks_dir)?;
        std::fs::create_dir_all(&wal_dir).ctx("create directory", &wal_dir)?;
        let mut report = OpenReport {
            removed_tmp: tsdb::fs::remove_tmp_dirs(&chunks_dir)?,
            ..Default::default()
        };
        let watermark = read_watermark(&dir.join(RETENTION_FILE))?;
        let compressor = block_compressor(opts.zstd_level).map_err(OpenError::Zstd)?;
        let mut st = State {
            streams: HashMap::new(),
            by_labels: HashMap::new(),
            postings: Postings::default(),
            next_id: 0,
            wal: None,
            wal_dirty: false,
            files: BTreeMap::new(),
            next_file_seq: 1,
            watermark,
            compressor,
            filters: opts.block_filters.then_some(opts.block_filter_min_size),
            raw: Vec::new(),
            enc: Encbuf::new(),
            background_error: None,
        };

        // Chunk files, oldest first: block order within a stream is push
        // order.
        let mut wal_upto = 0u32;
        for (seq, path) in list_chunk_files(&chunks_dir)? {
            let (file, index) = ChunkFile::open(&path).map_err(|e| match e {
                OpenChunkError::Io(e) => OpenError::Io(e),
                OpenChunkError::Corrupt(e) => OpenError::Chunk(e),
            })?;
            let max_t = index
                .iter()
                .flat_map(|(_, b)| b.iter().map(|b| b.meta.max_t))
                .max()
                .unwrap_or(i64::MIN);
            st.next_file_seq = st.next_file_seq.max(seq + 1);
            wal_upto = wal_upto.max(file.wal_upto);
            if max_t < watermark {
                // Retention decided to delete it; a crash came first.
                std::fs::remove_file(&path).ctx("remove", &path)?;
                continue;
            }
            for (labels, blocks) in index {
                let id = st.stream_id(labels);
                let s = st.streams.get_mut(&id).expect("stream_id returns a live stream"); // invariant
                let list = Arc::make_mut(&mut s.blocks);
                for fb in blocks {
                    if fb.meta.max_t < watermark {
                        continue;
                    }
                    s.newest = s.newest.max(fb.meta.max_t);
                    list.push(BlockRef {
                        meta: fb.meta,
                        data: BlockData::File(file.clone(), fb),
                        mem_filter: None,
                    });
                    report.blocks += 1;
                }
            }
            report.chunk_files += 1;
            st.files.insert(seq, FileInfo { file, max_t });
        }
        st.drop_empty_streams();

        // WAL segments covered by chunk files are superseded; a crash may
        // have left them behind between writing a chunk file and deleting
        // them. tsdb's WAL replays whole directories, so remove them first.
        remove_wal_segments_upto(&wal_dir, wal_upto)?;
        let outcome = tsdb::wal::replay(&wal_dir, |payload| {
            let streams = decode_push(payload)?;
            for (labels, entries) in streams {
                let id = st.stream_id(labels);
                st.apply(id, entries.iter().filter(|e| e.ts >= watermark), opts.block_size);
            }
            Ok(())
        })?;
        st.drop_empty_streams();
        report.wal_records = outcome.records;
        report.repair = outcome.repair;
        let wal_opts = WalOptions { segment_size: opts.wal_segment_size, fsync: opts.fsync };
        st.wal = Some(Wal::open(&wal_dir, wal_opts)?);
        st.wal_dirty = outcome.records > 0;

        let interval = opts.flush_interval;
        let shared = Arc::new(Shared {
            state: RwLock::new(st),
            opts,
            dir,
            read_pool: crate::querier::ReadPool::default(),
        });
        let background = interval.map(|d| Background::start(Arc::downgrade(&shared), d));
        Ok(Store { shared, background, report })
    }

    /// What opening found: files loaded, WAL records replayed, a torn tail
    /// repaired.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The options in effect.
    pub fn options(&self) -> &Options {
        &self.shared.opts
    }

    /// Stores a push request: every stream's entries are validated, the
    /// accepted ones are written to the WAL in one record (durable per the
    /// fsync policy when this returns), then applied to the heads.
    ///
    /// Per-entry refusals (too old, too long, limits) are reported in the
    /// outcome; only store-level failures are errors, and then nothing of
    /// the request was stored.
    pub fn push(&self, streams: &[(Labels, Vec<LogEntry>)]) -> Result<PushOutcome, PushError> {
        self.shared.push(streams)
    }

    /// Counters of the store's contents.
    pub fn stats(&self) -> StoreStats {
        let st = self.shared.read();
        let mut s = StoreStats {
            streams: st.streams.len(),
            chunks: st.files.len(),
            retention_cutoff: (st.watermark != i64::MIN).then_some(st.watermark),
            last_background_error: st.background_error.clone(),
            ..Default::default()
        };
        for x in st.streams.values() {
            for b in x.blocks.iter() {
                s.entries += u64::from(b.meta.entries);
                s.raw_bytes += b.meta.line_bytes;
                s.compressed_bytes += b.compressed_len() as u64;
                s.blocks += 1;
            }
            s.entries += x.head.len() as u64;
            s.head_entries += x.head.len() as u64;
            s.raw_bytes += x.head.line_bytes() as u64;
        }
        s
    }

    /// Cuts every head block and writes all unflushed blocks to a new chunk
    /// file, then drops the WAL segments it covers.
    pub fn flush(&self) -> Result<FlushStats, FlushError> {
        self.shared.flush()
    }

    /// Deletes data older than `now_ns - retention` (does nothing without a
    /// retention period): whole chunk files and blocks whose newest entry
    /// is older, and older head entries. Queries never return entries
    /// before the cutoff, and pushes of such entries are rejected.
    pub fn apply_retention(&self, now_ns: i64) -> Result<RetentionStats, RetentionError> {
        self.shared.apply_retention(now_ns)
    }

    /// Stops the background thread, flushes, and closes the WAL.
    pub fn close(mut self) -> Result<(), CloseError> {
        if let Some(bg) = self.background.take() {
            bg.stop();
        }
        self.shared.flush()?;
        let wal = self.shared.write().wal.take();
        if let Some(w) = wal {
            w.close()?;
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(bg) = self.background.take() {
            bg.stop();
        }
        // Not flushed: the WAL has everything. Sync in case of a lax fsync
        // policy (best effort: drop cannot report errors).
        if let Some(w) = self.shared.write().wal.as_mut() {
            let _ = w.sync();
        }
    }
}

impl Background {
    fn start(shared: Weak<Shared>, interval: Duration) -> Background {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || loop {
            let (lock, cv) = &*stop2;
            let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let (guard, _) =
                cv.wait_timeout_while(guard, interval, |s| !*s).unwrap_or_else(|e| e.into_inner());
            if *guard {
                return;
            }
            drop(guard);
            let Some(shared) = shared.upgrade() else { return };
            let err = shared.flush().err();
            let mut st = shared.write();
            if let Some(e) = err {
                st.background_error = Some(e.to_string());
            }
        });
        Background { stop, handle }
    }

    fn stop(self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        let _ = self.handle.join();
    }
}

/// One stream of a push being validated.
struct Plan<'a> {
    labels: &'a Labels,
    id: Option<u32>,
    reject: Option<RejectReason>,
    accepted: Vec<&'a LogEntry>,
    newest: i64,
}

impl Shared {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, streams: &[(Labels, Vec<LogEntry>)]) -> Result<PushOutcome, PushError> {
        let opts = &self.opts;
        let window = opts.out_of_order_window_ns();
        let mut guard = self.write();
        let st = &mut *guard;
        if st.wal.is_none() {
            return Err(PushError::Closed);
        }
        let mut out = PushOutcome::default();
        let mut plans: Vec<Plan<'_>> = Vec::new();
        let mut plan_of: HashMap<&Labels, usize> = HashMap::new();
        let mut new_streams = 0usize;
        for (labels, entries) in streams {
            if entries.is_empty() {
                continue;
            }
            let k = match plan_of.get(labels) {
                Some(k) => *k,
                None => {
                    let id = st.by_labels.get(labels).copied();
                    let mut reject = check_labels(labels, opts);
                    if reject.is_none() && id.is_none() {
                        if opts.max_streams > 0
                            && st.streams.len() + new_streams >= opts.max_streams
                        {
                            reject = Some(RejectReason::StreamLimit { limit: opts.max_streams });
                        } else {
                            new_streams += 1;
                        }
                    }
                    let newest = id.and_then(|i| st.streams.get(&i)).map_or(i64::MIN, |s| s.newest);
                    plans.push(Plan { labels, id, reject, accepted: Vec::new(), newest });
                    plan_of.insert(labels, plans.len() - 1);
                    plans.len() - 1
                }
            };
            let p = &mut plans[k];
            let head = p.id.and_then(|i| st.streams.get(&i)).map(|s| &s.head);
            for e in entries {
                let reason = if let Some(r) = &p.reject {
                    Some(r.clone())
                } else if opts.max_line_size > 0 && e.line.len() > opts.max_line_size {
                    Some(RejectReason::LineTooLong { len: e.line.len(), limit: opts.max_line_size })
                } else if e.ts < st.watermark {
                    Some(RejectReason::OlderThanRetention { ts: e.ts, cutoff: st.watermark })
                } else if p.newest != i64::MIN && e.ts < p.newest.saturating_sub(window) {
                    Some(RejectReason::TooFarBehind {
                        ts: e.ts,
                        oldest_acceptable: p.newest.saturating_sub(window),
                    })
                } else {
                    None
                };
                if let Some(reason) = reason {
                    out.rejected.push(Rejection { labels: labels.clone(), ts: e.ts, reason });
                    continue;
                }
                if head.is_some_and(|h| h.contains(e.ts, &e.line)) {
                    out.duplicates += 1;
                    continue;
                }
                p.newest = p.newest.max(e.ts);
                p.accepted.push(e);
            }
        }
        for p in &mut plans {
            out.duplicates += drop_request_duplicates(&mut p.accepted);
        }
        plans.retain(|p| !p.accepted.is_empty());
        if plans.is_empty() {
            return Ok(out);
        }
        encode_push(&mut st.enc, plans.iter().map(|p| (p.labels, p.accepted.iter().copied())));
        let Some(wal) = st.wal.as_mut() else { return Err(PushError::Closed) };
        wal.log(st.enc.get())?;
        st.wal_dirty = true;
        if st.enc.len() > 16 << 20 {
            st.enc = Encbuf::new();
        }
        for p in plans {
            let id = match p.id {
                Some(id) => id,
                None => st.stream_id(p.labels.clone()),
            };
            out.accepted += p.accepted.len();
            st.apply(id, p.accepted.into_iter(), self.opts.block_size);
        }
        Ok(out)
    }

    pub(crate) fn flush(&self) -> Result<FlushStats, FlushError> {
        let mut guard = self.write();
        let st = &mut *guard;
        if st.wal.is_none() {
            return Err(FlushError::Closed);
        }
        let mut ids: Vec<u32> = st.streams.keys().copied().collect();
        ids.sort_unstable();
        for id in &ids {
            if let Some(s) = st.streams.get_mut(id) {
                cut_head(s, &mut st.compressor, &mut st.raw, st.filters)
                    .map_err(FlushError::Compress)?;
            }
        }
        // (stream id, indices of its in-memory blocks), in file order.
        let mut todo: Vec<(u32, Vec<usize>)> = Vec::new();
        for id in &ids {
            if let Some(s) = st.streams.get(id) {
                let idx: Vec<usize> = s
                    .blocks
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| matches!(b.data, BlockData::Mem(_)))
                    .map(|(i, _)| i)
                    .collect();
                if !idx.is_empty() {
                    todo.push((*id, idx));
                }
            }
        }
        let Some(wal) = st.wal.as_mut() else { return Err(FlushError::Closed) };
        if todo.is_empty() {
            if st.wal_dirty {
                // Everything the WAL holds is flushed or expired.
                let closed = wal.next_segment()?;
                wal.remove_segments_upto(closed)?;
                st.wal_dirty = false;
            }
            return Ok(FlushStats::default());
        }
        let closed = wal.next_segment()?;
        let seq = st.next_file_seq;
        let path = self.dir.join(CHUNKS_DIR).join(format!("{seq:08}"));
        let mut nblocks = 0;
        let bytes = {
            let mut groups = Vec::with_capacity(todo.len());
            for (id, idx) in &todo {
                let Some(s) = st.streams.get(id) else { continue };
                let blocks = idx
                    .iter()
                    .filter_map(|i| match &s.blocks[*i].data {
                        BlockData::Mem(b) => {
                            Some((s.blocks[*i].meta, &b[..], s.blocks[*i].mem_filter.as_deref()))
                        }
                        BlockData::File(..) => None,
                    })
                    .collect::<Vec<_>>();
                nblocks += blocks.len();
                groups.push(StreamBlocks { labels: &s.labels, blocks });
            }
            write_chunk_file(&path, closed, &groups)?
        };
        let (file, index) = ChunkFile::open(&path).map_err(|e| match e {
            OpenChunkError::Io(e) => FlushError::Io(e),
            OpenChunkError::Corrupt(e) => FlushError::Chunk(e),
        })?;
        st.next_file_seq = seq + 1;
        let mut max_t = i64::MIN;
        for ((id, idx), (_, fblocks)) in todo.iter().zip(index) {
            let Some(s) = st.streams.get_mut(id) else { continue };
            let list = Arc::make_mut(&mut s.blocks);
            for (i, fb) in idx.iter().zip(fblocks) {
                max_t = max_t.max(fb.meta.max_t);
                list[*i].data = BlockData::File(file.clone(), fb);
                list[*i].mem_filter = None;
            }
        }
        st.files.insert(seq, FileInfo { file, max_t });
        if let Some(wal) = st.wal.as_mut() {
            wal.remove_segments_upto(closed)?;
        }
        st.wal_dirty = false;
        Ok(FlushStats { file: Some(path), blocks: nblocks, bytes })
    }

    fn apply_retention(&self, now_ns: i64) -> Result<RetentionStats, RetentionError> {
        let Some(ret) = self.opts.retention else { return Ok(RetentionStats::default()) };
        let cutoff = now_ns.saturating_sub(i64::try_from(ret.as_nanos()).unwrap_or(i64::MAX));
        let mut guard = self.write();
        let st = &mut *guard;
        if st.wal.is_none() {
            return Err(RetentionError::Closed);
        }
        let mut stats =
            RetentionStats { cutoff: Some(cutoff.max(st.watermark)), ..Default::default() };
        if cutoff > st.watermark {
            // Durable first: after a crash, open applies it again.
            write_watermark(&self.dir.join(RETENTION_FILE), cutoff)?;
            st.watermark = cutoff;
        }
        let cutoff = st.watermark;
        for s in st.streams.values_mut() {
            if s.blocks.iter().any(|b| b.meta.max_t < cutoff) {
                let list = Arc::make_mut(&mut s.blocks);
                let before = list.len();
                list.retain(|b| b.meta.max_t >= cutoff);
                stats.blocks_removed += before - list.len();
            }
            stats.head_entries_removed += s.head.drop_before(cutoff);
        }
        stats.streams_removed = st.drop_empty_streams();
        let expired: Vec<u32> =
            st.files.iter().filter(|(_, f)| f.max_t < cutoff).map(|(k, _)| *k).collect();
        for seq in expired {
            if let Some(f) = st.files.remove(&seq) {
                // Running queries keep their mapping; the inode lives on.
                std::fs::remove_file(&f.file.path).ctx("remove", &f.file.path)?;
                stats.files_removed += 1;
            }
        }
        if stats.files_removed > 0 {
            tsdb::fs::fsync_dir(&self.dir.join(CHUNKS_DIR))?;
        }
        Ok(stats)
    }
}

impl State {
    /// The id of the stream with these labels, creating it if needed.
    fn stream_id(&mut self, labels: Labels) -> u32 {
        if let Some(id) = self.by_labels.get(&labels) {
            return *id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.postings.add(id, &labels);
        self.by_labels.insert(labels.clone(), id);
        self.streams.insert(id, StreamState::new(labels));
        id
    }

    /// Inserts already-validated entries into a stream's head, cutting it
    /// into a block whenever it reaches `block_size`. A compression failure
    /// leaves the head as it is (the data is safe in the WAL) to be cut
    /// later.
    fn apply<'a>(
        &mut self,
        id: u32,
        entries: impl Iterator<Item = &'a LogEntry>,
        block_size: usize,
    ) {
        let Some(s) = self.streams.get_mut(&id) else { return };
        for e in entries {
            s.head.insert(e.ts, &e.line, &e.metadata);
            s.newest = s.newest.max(e.ts);
            if s.head.size() >= block_size {
                let _ = cut_head(s, &mut self.compressor, &mut self.raw, self.filters);
            }
        }
    }

    /// Removes streams with no blocks and an empty head; returns how many.
    fn drop_empty_streams(&mut self) -> usize {
        let empty: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.blocks.is_empty() && s.head.is_empty())
            .map(|(k, _)| *k)
            .collect();
        for id in &empty {
            if let Some(s) = self.streams.remove(id) {
                self.postings.remove(*id, &s.labels);
                self.by_labels.remove(&s.labels);
            }
        }
        empty.len()
    }
}

/// Shortest match the fast zstd strategies (levels 1 to 4) look for in
/// blocks. Their default (5 or 6 bytes at these sizes) finds many short
/// matches in log lines — pieces of numbers, IP addresses, ids — which
/// each cost a sequence to decode and barely pay for themselves; with 7,
/// the benchmark logs compress slightly better, faster, and decode about
/// 10% faster (decoding is most of a line-filter scan).
const FAST_LEVEL_MIN_MATCH: u32 = 7;

/// The block compressor for a zstd level.
pub(crate) fn block_compressor(level: i32) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    if (1..=4).contains(&level) {
        c.set_parameter(zstd::zstd_safe::CParameter::MinMatch(FAST_LEVEL_MIN_MATCH))?;
    }
    Ok(c)
}

/// Compresses a stream's head into a new in-memory block.
fn cut_head(
    s: &mut StreamState,
    compressor: &mut zstd::bulk::Compressor<'static>,
    raw: &mut Vec<u8>,
    filter_min_size: Option<usize>,
) -> std::io::Result<()> {
    let Some((meta, lines_len)) = s.head.encode(raw) else { return Ok(()) };
    let compressed = crate::chunk::block::compress_v3(compressor, raw, lines_len)?;
    // The lines (with their terminators, if any) are the start of the raw
    // block; the filter covers them as stored.
    let lines = raw.get(..lines_len).unwrap_or(&raw[..]);
    let mem_filter = match filter_min_size {
        Some(min) if compressed.len() >= min => filter::build(lines).map(Arc::from),
        _ => None,
    };
    Arc::make_mut(&mut s.blocks).push(BlockRef {
        meta,
        data: BlockData::Mem(compressed.into()),
        mem_filter,
    });
    s.head.clear();
    if raw.capacity() > 8 << 20 {
        *raw = Vec::new();
    }
    Ok(())
}

fn check_labels(labels: &Labels, opts: &Options) -> Option<RejectReason> {
    if labels.is_empty() {
        return Some(RejectReason::NoLabels);
    }
    if let Some(l) = labels.iter().find(|l| !is_valid_label_name(&l.name)) {
        return Some(RejectReason::InvalidLabelName(l.name.clone()));
    }
    if opts.max_labels_per_stream > 0 && labels.len() > opts.max_labels_per_stream {
        return Some(RejectReason::TooManyLabels {
            count: labels.len(),
            limit: opts.max_labels_per_stream,
        });
    }
    None
}

/// Drops later copies of entries with the same timestamp and line within
/// one push; returns how many were dropped.
fn drop_request_duplicates(acc: &mut Vec<&LogEntry>) -> usize {
    if acc.windows(2).all(|w| w[0].ts < w[1].ts) {
        return 0;
    }
    let mut order: Vec<usize> = (0..acc.len()).collect();
    order.sort_by_key(|&i| (acc[i].ts, i));
    let mut dup = vec![false; acc.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && acc[order[j]].ts == acc[order[i]].ts {
            j += 1;
        }
        for a in i + 1..j {
            if (i..a).any(|b| !dup[order[b]] && acc[order[b]].line == acc[order[a]].line) {
                dup[order[a]] = true;
            }
        }
        i = j;
    }
    let n = dup.iter().filter(|d| **d).count();
    if n > 0 {
        let mut k = 0;
        acc.retain(|_| {
            k += 1;
            !dup[k - 1]
        });
    }
    n
}

/// Chunk files in `dir`, sorted by sequence number.
fn list_chunk_files(dir: &Path) -> Result<Vec<(u32, PathBuf)>, IoError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).ctx("read directory", dir)? {
        let entry = entry.ctx("read directory", dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(seq) = name.parse::<u32>() {
                out.push((seq, entry.path()));
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn remove_wal_segments_upto(dir: &Path, upto: u32) -> Result<(), IoError> {
    if upto == 0 {
        return Ok(());
    }
    let mut removed = false;
    for (seq, path) in list_chunk_files(dir)? {
        // WAL segments use the same 8-digit naming as chunk files.
        if seq <= upto {
            std::fs::remove_file(&path).ctx("remove", &path)?;
            removed = true;
        }
    }
    if removed {
        tsdb::fs::fsync_dir(dir)?;
    }
    Ok(())
}

/// Retention file: `i64` cutoff big-endian, then its CRC32C big-endian.
fn read_watermark(path: &Path) -> Result<i64, OpenError> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(i64::MIN),
        Err(e) => return Err(IoError::new("read", path, e).into()),
    };
    let bad = |reason: String| OpenError::Retention { path: path.to_path_buf(), reason };
    if data.len() != 12 {
        return Err(bad(format!("expected 12 bytes, found {}", data.len())));
    }
    let mut v = [0u8; 8];
    v.copy_from_slice(&data[..8]);
    let mut c = [0u8; 4];
    c.copy_from_slice(&data[8..]);
    if crc32(&v) != u32::from_be_bytes(c) {
        return Err(bad("checksum mismatch".into()));
    }
    Ok(i64::from_be_bytes(v))
}

fn write_watermark(path: &Path, cutoff: i64) -> Result<(), IoError> {
    let mut data = cutoff.to_be_bytes().to_vec();
    let c = crc32(&data);
    data.extend_from_slice(&c.to_be_bytes());
    tsdb::fs::write_atomic(path, &data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{DEFAULT_BLOCK_FILTER_MIN_SIZE, DEFAULT_ZSTD_LEVEL};

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Store>();
    }

    #[test]
    fn only_large_enough_blocks_get_filters() {
        let labels = Labels::from_pairs([("job", "a")]);
        let mut c = block_compressor(DEFAULT_ZSTD_LEVEL).unwrap();
        let mut raw = Vec::new();
        let cut =
            |min: Option<usize>, c: &mut zstd::bulk::Compressor<'static>, raw: &mut Vec<u8>| {
                let mut s = StreamState::new(labels.clone());
                for i in 0..200 {
                    s.head.insert(i, &format!("GET /api/{i} 200"), &Labels::empty());
                }
                cut_head(&mut s, c, raw, min).unwrap();
                assert!(s.head.is_empty());
                s.blocks[0].mem_filter.clone()
            };
        let f = cut(Some(0), &mut c, &mut raw).expect("a filter when any size qualifies");
        assert!(filter::may_contain(&f, b"/api/17 2"));
        assert!(!filter::may_contain(&f, b"queue full"));
        assert!(cut(Some(DEFAULT_BLOCK_FILTER_MIN_SIZE), &mut c, &mut raw).is_none());
        assert!(cut(None, &mut c, &mut raw).is_none());
    }

    #[test]
    fn request_duplicates_keep_the_first() {
        let a = LogEntry::new(1, "x");
        let b = LogEntry::new(1, "y");
        let c = LogEntry::new(1, "x");
        let d = LogEntry::new(0, "x");
        let mut v = vec![&a, &b, &c, &d];
        assert_eq!(drop_request_duplicates(&mut v), 1);
        assert_eq!(v, vec![&a, &b, &d]);
    }

    #[test]
    fn watermark_file_roundtrip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(RETENTION_FILE);
        assert_eq!(read_watermark(&p).unwrap(), i64::MIN);
        write_watermark(&p, 12345).unwrap();
        assert_eq!(read_watermark(&p).unwrap(), 12345);
        let mut d = std::fs::read(&p).unwrap();
        d[3] ^= 1;
        std::fs::write(&p, d).unwrap();
        assert!(read_watermark(&p).unwrap_err().to_string().contains("checksum"));
    }
}
