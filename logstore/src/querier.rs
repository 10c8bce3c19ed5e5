//! Reading: `model::LogQueryable` for [`Store`].
//!
//! A query takes the store's read lock only to pick streams through the
//! postings and snapshot what it needs (block handles, which are cheap
//! reference-counted clones, and a copy of the head entries in range).
//! Decoding happens after the lock is released, one block at a time into
//! reused buffers; entries are lent out as `LogEntryRef`s borrowing those
//! buffers, so a scan allocates nothing per line.
//!
//! Blocks of a stream normally cover disjoint time ranges and are read one
//! after the other. Out-of-order pushes can make blocks overlap; overlapping
//! blocks form a group whose entries are merged by timestamp, ties broken
//! by block creation order (which is push order).
//!
//! `select_with_hints` takes the literals a query's line filters require
//! (`LogSelectHints::line_contains`): blocks whose trigram filter rules one
//! out are not decompressed; the others are decompressed and their raw
//! lines searched for the longest literal before anything else is decoded,
//! so a block without it costs only its decompression and a `memmem` pass;
//! blocks with a hit are decoded and searched as a whole (`search.rs`) so
//! only matching entries are lent out.

use crate::chunk::block::DecodedBlock;
use crate::search::LineSearch;
use crate::store::Store;
use crate::streams::{BlockData, BlockRef};
use model::{
    matches_all, Direction, EntryIter, Labels, LogEntryRef, LogQuerier, LogQueryable,
    LogSelectHints, Matcher, StorageError, Stream,
};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

impl LogQueryable for Store {
    fn log_querier(&self) -> Result<Box<dyn LogQuerier + '_>, StorageError> {
        Ok(Box::new(StoreQuerier { store: self }))
    }
}

struct StoreQuerier<'a> {
    store: &'a Store,
}

/// A stream picked by a query, with what it needs to read.
struct Selected {
    labels: Labels,
    /// (creation rank, block) of blocks overlapping the range.
    blocks: Vec<(u32, BlockRef)>,
    head: Option<DecodedBlock>,
    head_hit: bool,
}

impl StoreQuerier<'_> {
    /// Streams matching `matchers` with at least one entry in
    /// `[start, end]`, sorted by labels. With `want_head`, head entries in
    /// range are copied.
    fn gather(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        want_head: bool,
    ) -> Result<(Vec<Selected>, i64), StorageError> {
        let mut out = Vec::new();
        let start = {
            let st = self.store.shared.read();
            let start = start.max(st.watermark);
            if start > end {
                return Ok((out, start));
            }
            for id in st.postings.candidates(matchers) {
                let Some(s) = st.streams.get(&id) else { continue };
                if !matches_all(matchers, &s.labels) {
                    continue;
                }
                let blocks: Vec<(u32, BlockRef)> = s
                    .blocks
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.meta.max_t >= start && b.meta.min_t <= end)
                    .map(|(i, b)| (i as u32, b.clone()))
                    .collect();
                let head = if want_head { s.head.snapshot(start, end) } else { None };
                let head_hit = head.is_some() || (!want_head && s.head.has_entry_in(start, end));
                if blocks.is_empty() && !head_hit {
                    continue;
                }
                out.push(Selected { labels: s.labels.clone(), blocks, head, head_hit });
            }
            start
        };
        // A block's min and max are entry timestamps, so a block with
        // either inside the range surely has an entry there. Only a block
        // strictly spanning the range may have a gap there: decode it.
        let mut scratch: Option<(DecodedBlock, zstd::bulk::Decompressor<'static>)> = None;
        let mut keep = Vec::with_capacity(out.len());
        let pool = &self.store.shared.read_pool;
        for sel in out {
            let sure = sel.head_hit
                || sel.blocks.iter().any(|(_, b)| {
                    (b.meta.min_t >= start && b.meta.min_t <= end)
                        || (b.meta.max_t >= start && b.meta.max_t <= end)
                });
            let hit = if sure {
                true
            } else {
                let (buf, dctx) = match &mut scratch {
                    Some(s) => s,
                    None => scratch.insert((pool.take_block(), pool.take_dctx()?)),
                };
                let mut any = false;
                for (_, b) in &sel.blocks {
                    decode_block(b, buf, dctx)?;
                    let i = buf.ts.partition_point(|t| *t < start);
                    if buf.ts.get(i).is_some_and(|t| *t <= end) {
                        any = true;
                        break;
                    }
                }
                any
            };
            if hit {
                keep.push(sel);
            }
        }
        if let Some((b, d)) = scratch {
            pool.give_dctx(d);
            pool.give_blocks([b]);
        }
        keep.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok((keep, start))
    }
}

impl LogQuerier for StoreQuerier<'_> {
    fn select<'a>(
        &'a self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        direction: Direction,
    ) -> Result<Vec<Stream<'a>>, StorageError> {
        self.select_with_hints(matchers, start, end, direction, &LogSelectHints::none())
    }

    /// Uses `hints.line_contains`: each block's lines are searched as one
    /// string for the needles, and only the entries whose line contains
    /// all of them are returned.
    fn select_with_hints<'a>(
        &'a self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        direction: Direction,
        hints: &LogSelectHints,
    ) -> Result<Vec<Stream<'a>>, StorageError> {
        let (sel, start) = self.gather(matchers, start, end, true)?;
        let search = LineSearch::new(&hints.line_contains).map(Arc::new);
        Ok(sel
            .into_iter()
            .map(|s| Stream {
                labels: s.labels,
                entries: Box::new(StreamIter::new(
                    &self.store.shared.read_pool,
                    s.blocks,
                    s.head,
                    start,
                    end,
                    direction,
                    search.clone(),
                )),
            })
            .collect())
    }

    fn series(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Labels>, StorageError> {
        Ok(self.gather(matchers, start, end, false)?.0.into_iter().map(|s| s.labels).collect())
    }

    fn label_names(&self, start: i64, end: i64) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        for s in self.gather(&[], start, end, false)?.0 {
            for l in s.labels.iter() {
                if !names.contains(&l.name) {
                    names.insert(l.name.clone());
                }
            }
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
        for s in self.gather(matchers, start, end, false)?.0 {
            if let Some(v) = s.labels.get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }
}

fn decompressor() -> Result<zstd::bulk::Decompressor<'static>, StorageError> {
    zstd::bulk::Decompressor::new().map_err(|e| StorageError::read("creating a zstd context", e))
}

/// Scratch kept by a store for its queries: zstd decompression contexts
/// (creating one — allocating and initialising its tables — costs about
/// as much as decompressing a small block) and block buffers (about
/// 256 KiB each, which would otherwise be allocated and faulted in afresh
/// for every stream of every query).
#[derive(Default)]
pub(crate) struct ReadPool {
    dctxs: Mutex<Vec<zstd::bulk::Decompressor<'static>>>,
    blocks: Mutex<Vec<DecodedBlock>>,
}

impl std::fmt::Debug for ReadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadPool")
    }
}

/// Locks a pool list. A poisoned lock only means another query panicked
/// while pushing or popping: the vector itself is intact.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ReadPool {
    /// Most contexts (about 100 KiB each) and buffers kept.
    const MAX: usize = 8;

    /// A context from the pool, or a new one.
    fn take_dctx(&self) -> Result<zstd::bulk::Decompressor<'static>, StorageError> {
        let pooled = lock(&self.dctxs).pop();
        match pooled {
            Some(d) => Ok(d),
            None => decompressor(),
        }
    }

    /// Returns a context for reuse. Contexts carry no state between
    /// frames: `decompress_to_buffer` starts each frame afresh.
    fn give_dctx(&self, d: zstd::bulk::Decompressor<'static>) {
        let mut v = lock(&self.dctxs);
        if v.len() < Self::MAX {
            v.push(d);
        }
    }

    /// An empty block buffer, from the pool when there is one.
    fn take_block(&self) -> DecodedBlock {
        lock(&self.blocks).pop().unwrap_or_default()
    }

    /// Returns block buffers for reuse (their contents are cleared when
    /// they are next decoded into).
    fn give_blocks(&self, bufs: impl IntoIterator<Item = DecodedBlock>) {
        let mut v = lock(&self.blocks);
        for mut b in bufs {
            if v.len() >= Self::MAX {
                break;
            }
            b.clear();
            v.push(b);
        }
    }
}

/// Where a block is, for error messages.
fn place(b: &BlockRef) -> String {
    match &b.data {
        BlockData::Mem(_) => "unflushed block".to_string(),
        BlockData::File(f, fb) => {
            format!("chunk file {} block at offset {}", f.path.display(), fb.offset)
        }
    }
}

/// The compressed bytes of a block (checked against its CRC if in a
/// file).
fn block_bytes(b: &BlockRef) -> Result<&[u8], StorageError> {
    match &b.data {
        BlockData::Mem(bytes) => Ok(bytes),
        BlockData::File(f, fb) => f.block(fb).map_err(|e| StorageError::Corrupt(e.to_string())),
    }
}

/// Decompresses a block's lines into `out`, leaving it pending (see
/// `DecodedBlock::decompress_lines`).
fn decompress_block(
    b: &BlockRef,
    out: &mut DecodedBlock,
    dctx: &mut zstd::bulk::Decompressor<'static>,
) -> Result<(), StorageError> {
    out.decompress_lines(block_bytes(b)?, b.meta.raw_len as usize, b.format(), dctx)
        .map_err(|e| StorageError::Corrupt(format!("{}: {e}", place(b))))
}

/// Decodes a pending block and checks it against its index entry.
fn finish_block(
    b: &BlockRef,
    out: &mut DecodedBlock,
    dctx: &mut zstd::bulk::Decompressor<'static>,
) -> Result<(), StorageError> {
    out.finish(block_bytes(b)?, b.meta.raw_len as usize, b.format(), dctx)
        .map_err(|e| StorageError::Corrupt(format!("{}: {e}", place(b))))?;
    let ok = out.len() == b.meta.entries as usize
        && out.ts.first() == Some(&b.meta.min_t)
        && out.ts.last() == Some(&b.meta.max_t);
    if !ok {
        return Err(StorageError::Corrupt(format!(
            "{}: contents disagree with the index",
            place(b)
        )));
    }
    Ok(())
}

/// Decodes a block and checks it against its index entry.
fn decode_block(
    b: &BlockRef,
    out: &mut DecodedBlock,
    dctx: &mut zstd::bulk::Decompressor<'static>,
) -> Result<(), StorageError> {
    decompress_block(b, out, dctx)?;
    finish_block(b, out, dctx)
}

/// For a line-filter query: decompresses a block and searches its raw
/// lines for the longest needle; only when that occurs is the block
/// decoded (columns parsed, UTF-8 checked, index compared). Returns where
/// the first occurrence is, or `None` (then `out` has no entries): no
/// line of the block can match, whatever the time range.
fn decode_block_if_hit(
    b: &BlockRef,
    out: &mut DecodedBlock,
    dctx: &mut zstd::bulk::Decompressor<'static>,
    search: &LineSearch,
) -> Result<Option<usize>, StorageError> {
    decompress_block(b, out, dctx)?;
    let lines = out
        .pending_lines(b.format())
        .map_err(|e| StorageError::Corrupt(format!("{}: {e}", place(b))))?;
    match search.first_hit(lines) {
        None => {
            out.clear();
            Ok(None)
        }
        Some(at) => {
            finish_block(b, out, dctx)?;
            Ok(Some(at))
        }
    }
}

enum SourceKind {
    Block(BlockRef),
    Head(Option<DecodedBlock>),
}

struct Source {
    min_t: i64,
    max_t: i64,
    rank: u32,
    kind: SourceKind,
}

/// Entries of one stream in `[start, end]`, in one direction.
struct StreamIter<'a> {
    /// Where `dctx` comes from and goes back to.
    pool: &'a ReadPool,
    sources: Vec<Source>,
    /// Ranges of `sources` whose time ranges overlap, in time order.
    groups: Vec<(usize, usize)>,
    consumed: usize,
    forward: bool,
    start: i64,
    end: i64,
    bufs: Vec<DecodedBlock>,
    single: bool,
    merged: Vec<(u32, u32)>,
    keyed: Vec<(i64, u32, u32, u32)>,
    lo: usize,
    hi: usize,
    dctx: Option<zstd::bulk::Decompressor<'static>>,
    empty: Labels,
    failed: bool,
    /// Only entries whose line passes this are returned.
    search: Option<Arc<LineSearch>>,
    /// Scratch for `LineSearch::matching`.
    hits: Vec<u32>,
    /// Per buffer of the loaded group: where the search starts in its
    /// lines (the block's first hit of the longest needle).
    from: Vec<usize>,
}

impl<'a> StreamIter<'a> {
    fn new(
        pool: &'a ReadPool,
        blocks: Vec<(u32, BlockRef)>,
        head: Option<DecodedBlock>,
        start: i64,
        end: i64,
        direction: Direction,
        search: Option<Arc<LineSearch>>,
    ) -> StreamIter<'a> {
        let mut sources: Vec<Source> = blocks
            .into_iter()
            .map(|(rank, b)| Source {
                min_t: b.meta.min_t,
                max_t: b.meta.max_t,
                rank,
                kind: SourceKind::Block(b),
            })
            .collect();
        if let Some(h) = head {
            if let (Some(&min_t), Some(&max_t)) = (h.ts.first(), h.ts.last()) {
                sources.push(Source {
                    min_t,
                    max_t,
                    rank: u32::MAX,
                    kind: SourceKind::Head(Some(h)),
                });
            }
        }
        sources.sort_by_key(|s| (s.min_t, s.rank));
        let mut groups = Vec::new();
        let mut i = 0;
        while i < sources.len() {
            let mut max_t = sources[i].max_t;
            let mut j = i + 1;
            while j < sources.len() && sources[j].min_t <= max_t {
                max_t = max_t.max(sources[j].max_t);
                j += 1;
            }
            groups.push((i, j));
            i = j;
        }
        StreamIter {
            pool,
            sources,
            groups,
            consumed: 0,
            forward: direction == Direction::Forward,
            start,
            end,
            bufs: Vec::new(),
            single: true,
            merged: Vec::new(),
            keyed: Vec::new(),
            lo: 0,
            hi: 0,
            dctx: None,
            empty: Labels::empty(),
            failed: false,
            search,
            hits: Vec::new(),
            from: Vec::new(),
        }
    }

    fn load(&mut self, (g0, g1): (usize, usize)) -> Result<(), StorageError> {
        let n = g1 - g0;
        while self.bufs.len() < n {
            self.bufs.push(self.pool.take_block());
        }
        self.from.clear();
        self.from.resize(n, 0);
        for (k, src) in self.sources[g0..g1].iter_mut().enumerate() {
            match &mut src.kind {
                SourceKind::Block(b) => {
                    if let Some(s) = &self.search {
                        let filter =
                            b.filter().map_err(|e| StorageError::Corrupt(e.to_string()))?;
                        if filter.is_some_and(|f| !s.may_match(f)) {
                            // No line of this block can match: skip it
                            // (without even creating a zstd context).
                            self.bufs[k].clear();
                            continue;
                        }
                    }
                    let dctx = match &mut self.dctx {
                        Some(d) => d,
                        None => self.dctx.insert(self.pool.take_dctx()?),
                    };
                    match &self.search {
                        None => decode_block(b, &mut self.bufs[k], dctx)?,
                        Some(s) => {
                            // Without a hit the block is left empty.
                            let hit = decode_block_if_hit(b, &mut self.bufs[k], dctx, s)?;
                            self.from[k] = hit.unwrap_or(0);
                        }
                    }
                }
                SourceKind::Head(h) => {
                    if let Some(h) = h.take() {
                        self.bufs[k] = h;
                    }
                }
            }
        }
        let (start, end) = (self.start, self.end);
        if n == 1 && self.search.is_none() {
            let ts = &self.bufs[0].ts;
            self.single = true;
            self.lo = ts.partition_point(|t| *t < start);
            self.hi = ts.partition_point(|t| *t <= end);
        } else if n == 1 {
            // Entries of one block in time order: the hits, in order.
            let b = &self.bufs[0];
            let lo = b.ts.partition_point(|t| *t < start);
            let hi = b.ts.partition_point(|t| *t <= end);
            self.hits.clear();
            if let Some(s) = &self.search {
                s.matching(b, lo, hi, self.from[0], &mut self.hits);
            }
            self.single = false;
            self.merged.clear();
            self.merged.extend(self.hits.iter().map(|&i| (0, i)));
            self.lo = 0;
            self.hi = self.merged.len();
        } else {
            self.single = false;
            self.keyed.clear();
            for k in 0..n {
                let ts = &self.bufs[k].ts;
                let rank = self.sources[g0 + k].rank;
                let lo = ts.partition_point(|t| *t < start);
                let hi = ts.partition_point(|t| *t <= end);
                match &self.search {
                    None => {
                        for (i, t) in ts.iter().enumerate().take(hi).skip(lo) {
                            self.keyed.push((*t, rank, k as u32, i as u32));
                        }
                    }
                    Some(s) => {
                        self.hits.clear();
                        s.matching(&self.bufs[k], lo, hi, self.from[k], &mut self.hits);
                        for &i in &self.hits {
                            self.keyed.push((ts[i as usize], rank, k as u32, i));
                        }
                    }
                }
            }
            // Stable: within one block, entries keep their order.
            self.keyed.sort_by_key(|x| (x.0, x.1));
            self.merged.clear();
            self.merged.extend(self.keyed.iter().map(|x| (x.2, x.3)));
            self.lo = 0;
            self.hi = self.merged.len();
        }
        Ok(())
    }
}

impl Drop for StreamIter<'_> {
    fn drop(&mut self) {
        if let Some(d) = self.dctx.take() {
            self.pool.give_dctx(d);
        }
        self.pool.give_blocks(std::mem::take(&mut self.bufs));
    }
}

impl EntryIter for StreamIter<'_> {
    fn next(&mut self) -> Result<Option<LogEntryRef<'_>>, StorageError> {
        loop {
            if self.lo < self.hi {
                let pos = if self.forward {
                    self.lo += 1;
                    self.lo - 1
                } else {
                    self.hi -= 1;
                    self.hi
                };
                let (k, i) = if self.single {
                    (0, pos)
                } else {
                    let (k, i) = self.merged[pos];
                    (k as usize, i as usize)
                };
                let b = &self.bufs[k];
                return Ok(Some(LogEntryRef {
                    ts: b.ts[i],
                    line: b.line(i),
                    metadata: b.meta(i).unwrap_or(&self.empty),
                }));
            }
            if self.failed || self.consumed >= self.groups.len() {
                // Done: give the block buffers back now rather than when
                // the query ends, so that the next stream of the query
                // reuses them.
                if !self.bufs.is_empty() {
                    self.pool.give_blocks(std::mem::take(&mut self.bufs));
                }
                return Ok(None);
            }
            let g = if self.forward {
                self.groups[self.consumed]
            } else {
                self.groups[self.groups.len() - 1 - self.consumed]
            };
            self.consumed += 1;
            if let Err(e) = self.load(g) {
                self.failed = true;
                return Err(e);
            }
        }
    }
}
