//! The database's persisted blocks: opening them, cutting them from the
//! head, merging them (via [`crate::compact`]) and retention.

use super::{CompactStats, Inner};
use crate::block::{is_ulid, Block, BlockWriter};
use crate::chunkenc::{ChunkIter, StIter, XorIter};
use crate::compact;
use crate::error::{CompactError, OpenError};
use crate::index::ChunkMeta;
use model::{Matcher, Sample, SampleIter, Series, StorageError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A persisted block as the database reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// The block's ULID (its directory name).
    pub ulid: String,
    /// The block directory.
    pub dir: PathBuf,
    /// Inclusive start, ms.
    pub mint: i64,
    /// Inclusive end, ms.
    pub maxt: i64,
    /// Series in the block.
    pub num_series: u64,
    /// Samples in the block.
    pub num_samples: u64,
    /// Compaction level (1 for blocks cut from the head or imported).
    pub level: u32,
    /// Bytes of its index and chunk files.
    pub bytes: u64,
}

#[derive(Debug)]
pub(crate) struct OpenBlock {
    pub info: BlockInfo,
    pub block: Block,
}

impl OpenBlock {
    fn new(block: Block) -> OpenBlock {
        let m = block.meta();
        let info = BlockInfo {
            ulid: m.ulid.clone(),
            dir: block.dir().to_path_buf(),
            mint: m.min_time,
            maxt: m.maxt_inclusive(),
            num_series: m.stats.num_series,
            num_samples: m.stats.num_samples,
            level: m.compaction.level,
            bytes: block.size(),
        };
        OpenBlock { info, block }
    }
}

fn block_err(dir: &Path, e: crate::block::BlockError) -> OpenError {
    OpenError::Block { dir: dir.to_path_buf(), source: Box::new(e) }
}

/// Opens every block directly under `dir` (after removing leftovers of
/// interrupted writes), sorted by time.
pub(crate) fn open_all(dir: &Path) -> Result<Vec<Arc<OpenBlock>>, OpenError> {
    crate::fs::remove_tmp_dirs(dir).map_err(|e| block_err(dir, e.into()))?;
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir)
        .map_err(|source| OpenError::Io { op: "read directory", path: dir.to_path_buf(), source })?;
    for entry in rd {
        let entry = entry
            .map_err(|source| OpenError::Io { op: "read directory", path: dir.to_path_buf(), source })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if is_ulid(name) && path.is_dir() {
            let block = Block::open(&path).map_err(|e| block_err(&path, e))?;
            out.push(Arc::new(OpenBlock::new(block)));
        }
    }
    out.sort_by_key(|b| (b.info.mint, b.info.maxt));
    Ok(out)
}

fn write_err(mint: i64, maxt: i64) -> impl Fn(crate::block::BlockError) -> CompactError {
    move |e| CompactError::WriteBlock { mint, maxt, source: Box::new(e) }
}

/// Writes the head's samples in `[start, end]` as a block (none when the
/// range holds no samples) and opens it.
pub(crate) fn write_from_head(
    db: &Inner,
    start: i64,
    end: i64,
) -> Result<Option<Arc<OpenBlock>>, CompactError> {
    let err = write_err(start, end);
    let mut w = BlockWriter::new(&db.dir, start, end.saturating_add(1)).map_err(&err)?;
    let mut any = false;
    let mut samples: Vec<Sample> = Vec::new();
    let mut starts: Vec<Option<i64>> = Vec::new();
    // Sorted by labels, as the writer requires.
    for h in db.head.select_series(&[]) {
        let Some((labels, mut it)) = db.head.series_iter(&h, start, end)? else { continue };
        samples.clear();
        starts.clear();
        let with_starts = it.has_start_timestamps();
        while let Some(s) = it.next()? {
            samples.push(s);
            if with_starts {
                starts.push(it.start_timestamp());
            }
        }
        if !samples.is_empty() {
            if with_starts {
                w.add_series_samples_with_starts(&labels, &samples, &starts).map_err(&err)?;
            } else {
                w.add_series_samples(&labels, &samples).map_err(&err)?;
            }
            any = true;
        }
    }
    if !any {
        // Dropping the writer removes its temporary directory.
        return Ok(None);
    }
    let meta = w.finish().map_err(&err)?;
    let block = Block::open(&db.dir.join(&meta.ulid)).map_err(&err)?;
    Ok(Some(Arc::new(OpenBlock::new(block))))
}

thread_local! {
    /// Scratch space of the columnar chunk decoder, shared by the series
    /// iterators of a thread (each series would otherwise allocate and zero
    /// its own).
    static DECODE_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Iterates a series of a shared block, decoding one chunk at a time; owns
/// its block so it outlives the list it was selected from.
#[derive(Debug)]
struct OwnedBlockIter {
    b: Arc<OpenBlock>,
    chunks: Vec<ChunkMeta>,
    next_chunk: usize,
    buf: Vec<Sample>,
    /// Reused by the bulk chunk decoder.
    scratch: Vec<u8>,
    pos: usize,
    mint: i64,
    maxt: i64,
    failed: bool,
    /// Start timestamps aligned with `buf`; empty for chunks without them.
    st_buf: Vec<Option<i64>>,
}

impl OwnedBlockIter {
    fn load_next(&mut self, min_t: i64) -> Result<bool, StorageError> {
        while let Some(c) = self.chunks.get(self.next_chunk) {
            self.next_chunk += 1;
            if c.maxt < min_t {
                continue;
            }
            self.buf.clear();
            self.st_buf.clear();
            self.pos = 0;
            let (mint, maxt) = (self.mint, self.maxt);
            let inside = c.mint >= mint && c.maxt <= maxt;
            let it = self.b.block.chunk_iter(c).map_err(StorageError::from)?;
            self.buf.reserve(it.num_samples());
            // One dispatch on the encoding per chunk, not per sample.
            match decode_decimal(it, &mut self.buf, &mut self.scratch)? {
                Decoded::Done => keep_range(&mut self.buf, mint, maxt),
                Decoded::Xor(mut x) => fill(&mut x, &mut self.buf, mint, maxt, inside)?,
                Decoded::St(mut x) => fill_with_starts(x.as_mut(), &mut self.buf, &mut self.st_buf, mint, maxt)?,
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Decodes the next chunk straight into `out` (no copy through the
    /// iterator's buffer) when it lies inside the iterator's range, ends at
    /// or before `maxt`, and the block has no start timestamps (those stay
    /// aligned with the buffer); false, with nothing read, otherwise — also
    /// when its samples are not where its metadata says (a damaged chunk
    /// then goes the careful way).
    fn decode_whole_into(&mut self, maxt: i64, out: &mut Vec<Sample>) -> Result<bool, StorageError> {
        let Some(c) = self.chunks.get(self.next_chunk) else { return Ok(false) };
        if c.maxt > maxt || c.mint < self.mint || c.maxt > self.maxt || self.b.block.has_start_timestamps() {
            return Ok(false);
        }
        let base = out.len();
        let it = self.b.block.chunk_iter(c).map_err(StorageError::from)?;
        let decoded = match decode_decimal(it, out, &mut self.scratch) {
            Ok(Decoded::Done) => Ok(()),
            Ok(Decoded::Xor(mut x)) => append_all(&mut x, out),
            // Not reached: blocks with start timestamps were turned away.
            Ok(Decoded::St(_)) => return Ok(false),
            Err(e) => Err(e),
        };
        if decoded.is_err() || out[base..].iter().any(|s| s.t < self.mint || s.t > maxt) {
            out.truncate(base);
            return Ok(false);
        }
        self.next_chunk += 1;
        self.buf.clear();
        self.st_buf.clear();
        self.pos = 0;
        Ok(true)
    }

    fn advance(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        loop {
            if self.failed {
                return Ok(None);
            }
            while let Some(s) = self.buf.get(self.pos) {
                self.pos += 1;
                if s.t >= t {
                    return Ok(Some(*s));
                }
            }
            match self.load_next(t) {
                Ok(true) => {}
                Ok(false) => {
                    self.st_buf.clear();
                    return Ok(None);
                }
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
    }
}

/// Keeps the samples of a decoded chunk that lie in `[mint, maxt]`: up to
/// the first sample past `maxt`, without those before `mint` (what reading
/// the chunk sample by sample keeps).
fn keep_range(buf: &mut Vec<Sample>, mint: i64, maxt: i64) {
    if buf.iter().any(|s| s.t < mint || s.t > maxt) {
        if let Some(end) = buf.iter().position(|s| s.t > maxt) {
            buf.truncate(end);
        }
        buf.retain(|s| s.t >= mint);
    }
}

/// A chunk after [`decode_decimal`]: decoded, or handed back to be read
/// sample by sample.
enum Decoded<'a> {
    Done,
    Xor(XorIter<'a>),
    St(Box<StIter<'a>>),
}

/// Decodes a decimal chunk (any of its three layouts) into `out` in bulk;
/// XOR chunks and chunks with start timestamps come back undecoded.
/// `scratch` serves the interleaved layout, and the columnar one when the
/// thread's shared window is already in use.
fn decode_decimal<'a>(it: ChunkIter<'a>, out: &mut Vec<Sample>, scratch: &mut Vec<u8>) -> Result<Decoded<'a>, StorageError> {
    match it {
        // The columnar decoder wants a 4 KiB window: share one per thread
        // rather than zero a new one per series.
        ChunkIter::DecCol(d) => DECODE_SCRATCH.with(|shared| match shared.try_borrow_mut() {
            Ok(mut shared) => d.decode_into(out, &mut shared),
            Err(_) => d.decode_into(out, scratch),
        })?,
        ChunkIter::Dec(d) => d.decode_into(out, scratch)?,
        ChunkIter::Pack(d) => d.decode_into(out),
        ChunkIter::Xor(x) => return Ok(Decoded::Xor(x)),
        ChunkIter::St(x) => return Ok(Decoded::St(x)),
    }
    Ok(Decoded::Done)
}

/// Appends every remaining sample of `it` to `out`.
fn append_all<I: SampleIter + ?Sized>(it: &mut I, out: &mut Vec<Sample>) -> Result<(), StorageError> {
    while let Some(s) = it.next()? {
        out.push(s);
    }
    Ok(())
}

/// Appends the samples of `it` within `[mint, maxt]` to `buf`; `inside`
/// says the chunk's metadata already places all of them in the range.
#[inline]
fn fill<I: SampleIter + ?Sized>(
    it: &mut I,
    buf: &mut Vec<Sample>,
    mint: i64,
    maxt: i64,
    inside: bool,
) -> Result<(), StorageError> {
    if inside {
        append_all(it, buf)?;
        // A chunk whose samples disagree with its metadata is filtered
        // like any other.
        keep_range(buf, mint, maxt);
        return Ok(());
    }
    while let Some(s) = it.next()? {
        if s.t > maxt {
            break;
        }
        if s.t >= mint {
            buf.push(s);
        }
    }
    Ok(())
}

/// Appends the samples of `it` within `[mint, maxt]` to `buf` and their
/// start timestamps to `starts`.
fn fill_with_starts<I: SampleIter + ?Sized>(
    it: &mut I,
    buf: &mut Vec<Sample>,
    starts: &mut Vec<Option<i64>>,
    mint: i64,
    maxt: i64,
) -> Result<(), StorageError> {
    while let Some(s) = it.next()? {
        if s.t > maxt {
            break;
        }
        if s.t >= mint {
            buf.push(s);
            starts.push(it.start_timestamp());
        }
    }
    Ok(())
}

impl SampleIter for OwnedBlockIter {
    #[inline]
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        // Fast path: the next sample of the decoded chunk.
        if !self.failed {
            if let Some(s) = self.buf.get(self.pos) {
                self.pos += 1;
                return Ok(Some(*s));
            }
        }
        self.advance(i64::MIN)
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        self.advance(t)
    }

    fn read_until(&mut self, maxt: i64, out: &mut Vec<Sample>) -> Result<usize, StorageError> {
        let before = out.len();
        loop {
            if self.failed {
                break;
            }
            // Whole decoded chunks are copied at once.
            let rest = self.buf.get(self.pos..).unwrap_or(&[]);
            let n = rest.partition_point(|s| s.t <= maxt);
            out.extend_from_slice(&rest[..n]);
            self.pos += n;
            if n < rest.len() {
                break;
            }
            match self.decode_whole_into(maxt, out) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
            match self.load_next(i64::MIN) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        Ok(out.len() - before)
    }

    fn start_timestamp(&self) -> Option<i64> {
        // `pos` is one past the sample last returned.
        self.st_buf.get(self.pos.checked_sub(1)?).copied().flatten()
    }

    fn has_start_timestamps(&self) -> bool {
        self.b.block.has_start_timestamps()
    }
}

/// Selects from a shared block: series with iterators that own the block.
pub(crate) fn select(
    b: &Arc<OpenBlock>,
    mint: i64,
    maxt: i64,
    matchers: &[Matcher],
) -> Result<Vec<Series<'static>>, StorageError> {
    let series = b.block.select_series_cached(matchers, mint, maxt).map_err(StorageError::from)?;
    Ok(series
        .into_iter()
        .map(|s| {
            let it = OwnedBlockIter {
                b: b.clone(),
                chunks: s.chunks,
                next_chunk: 0,
                buf: Vec::new(),
                scratch: Vec::new(),
                pos: 0,
                mint,
                maxt,
                failed: false,
                st_buf: Vec::new(),
            };
            Series { labels: s.labels, samples: Box::new(it) }
        })
        .collect())
}

impl Inner {
    fn block_ranges(&self) -> Vec<i64> {
        let mut ranges = vec![self.opts.block_range];
        while let Some(last) = ranges.last() {
            let next = last.saturating_mul(3);
            if next > self.opts.max_block_range || ranges.len() >= 10 {
                break;
            }
            ranges.push(next);
        }
        ranges
    }

    /// Merges blocks as the leveled planner says, until it has nothing to do.
    pub(super) fn compact_blocks(&self, stats: &mut CompactStats) -> Result<(), CompactError> {
        let ranges = self.block_ranges();
        // Bounded: each round replaces two or more blocks by one.
        for _ in 0..1000 {
            let current: Vec<Arc<OpenBlock>> = self.read_blocks().clone();
            let metas: Vec<_> = current.iter().map(|b| b.block.meta().clone()).collect();
            let ulids = compact::plan(&metas, &ranges);
            if ulids.len() < 2 {
                return Ok(());
            }
            let chosen: Vec<Arc<OpenBlock>> =
                current.iter().filter(|b| ulids.contains(&b.info.ulid)).cloned().collect();
            let refs: Vec<&Block> = chosen.iter().map(|b| &b.block).collect();
            let meta = compact::compact(&refs, &self.dir).map_err(|e| CompactError::Compact(Box::new(e)))?;
            let block = Block::open(&self.dir.join(&meta.ulid)).map_err(|e| CompactError::Compact(Box::new(e)))?;
            let new = Arc::new(OpenBlock::new(block));
            stats.compacted.push(new.info.clone());
            {
                let mut list = self.blocks.write().unwrap_or_else(|e| e.into_inner());
                list.retain(|b| !ulids.contains(&b.info.ulid));
                list.push(new);
                list.sort_by_key(|b| (b.info.mint, b.info.maxt));
            }
            for b in &chosen {
                compact::delete_block(&self.dir, &b.info.ulid).map_err(|e| CompactError::Compact(Box::new(e)))?;
                stats.deleted.push(b.info.dir.clone());
            }
        }
        Ok(())
    }

    /// Deletes blocks beyond the time and size retention.
    pub(super) fn apply_retention(&self, stats: &mut CompactStats) -> Result<(), CompactError> {
        if self.opts.retention_ms.is_none() && self.opts.retention_bytes.is_none() {
            return Ok(());
        }
        let current: Vec<Arc<OpenBlock>> = self.read_blocks().clone();
        let sized: Vec<_> = current.iter().map(|b| (b.block.meta().clone(), b.info.bytes)).collect();
        let doomed = compact::blocks_beyond_retention(
            &sized,
            self.opts.retention_ms.unwrap_or(0),
            self.opts.retention_bytes.unwrap_or(0),
        );
        if doomed.is_empty() {
            return Ok(());
        }
        {
            let mut list = self.blocks.write().unwrap_or_else(|e| e.into_inner());
            list.retain(|b| !doomed.contains(&b.info.ulid));
        }
        for b in current.iter().filter(|b| doomed.contains(&b.info.ulid)) {
            compact::delete_block(&self.dir, &b.info.ulid).map_err(|e| CompactError::Compact(Box::new(e)))?;
            stats.deleted.push(b.info.dir.clone());
        }
        Ok(())
    }
}
