//! Persisted, immutable blocks.
//!
//! A block is a directory named by a ULID holding
//!
//! ```text
//! <ulid>/
//!   meta.json      block metadata (BlockMeta), written last
//!   index          labels, chunk metadata and postings (crate::index)
//!   chunks/000001  chunk segments (crate::chunks)
//! ```
//!
//! [`BlockWriter`] builds a block in `<ulid>.tmp`, fsyncs every file and the
//! directory, then renames it into place, so a block directory either is
//! complete or does not exist. [`Block::open`] maps a block and
//! [`BlockQuerier`] serves [`model::Querier`] reads from it.
//!
//! Time ranges: `meta.json`'s `minTime`/`maxTime` follow Prometheus, so
//! `maxTime` is **exclusive** (a 2h block starting at 0 has maxTime
//! 7200000). Query bounds (`mint`/`maxt` of queriers and chunk metadata)
//! are inclusive, like everywhere else in this crate.
//!
//! ```
//! use model::{collect_range, Labels, Matcher, Querier, Sample, SelectHints};
//! use tsdb::block::{write_block, Block};
//!
//! let dir = tempfile::tempdir()?;
//! let up = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
//! let samples: Vec<Sample> = (0..500).map(|i| Sample::new(i * 15_000, 1.0)).collect();
//! let meta = write_block(dir.path(), [(up.clone(), samples)])?;
//! assert_eq!((meta.stats.num_samples, meta.stats.num_chunks), (500, 5));
//!
//! let block = Block::open(&dir.path().join(&meta.ulid))?;
//! let q = block.querier(0, 60_000);
//! let mut series = q.select(&SelectHints::range(0, 60_000), &[Matcher::equal("job", "node")])?;
//! assert_eq!(series[0].labels, up);
//! assert_eq!(collect_range(series[0].samples.as_mut(), 0, 60_000)?.len(), 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::chunkenc::{encode_best, encode_with_starts, pack, ChunkIter, XorIter, ENCODING_PACK, ENCODING_ST, ENCODING_XOR};
use crate::chunks::{ChunkReader, ChunkRef, ChunkWriter, ChunksError};
use crate::fs::{self, IoContext, IoError};
use crate::index::{ChunkMeta, IndexError, IndexReader, IndexWriter, SeriesRef};
use model::{
    Label, Labels, Matcher, Querier, Sample, SampleIter, SelectHints, Series, StorageError,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::path::{Path, PathBuf};

/// Samples per chunk when the writer cuts chunks itself (as Prometheus).
pub const SAMPLES_PER_CHUNK: usize = 120;
/// Version of `meta.json` written by this crate.
pub const META_VERSION: u32 = 1;
/// File name of the block metadata.
pub const META_FILENAME: &str = "meta.json";
/// File name of the block index.
pub const INDEX_FILENAME: &str = "index";
/// Directory name of the chunk segments.
pub const CHUNKS_DIRNAME: &str = "chunks";

/// Errors creating, opening or reading blocks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// An I/O failure, naming the file.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Reading or writing the chunk segments failed.
    #[error(transparent)]
    Chunks(#[from] ChunksError),
    /// Reading or writing the index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// `meta.json` is malformed.
    #[error("invalid block metadata {}: {source}", path.display())]
    Meta {
        /// The meta.json file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The metadata parsed but describes something impossible.
    #[error("invalid block metadata {}: {detail}", path.display())]
    MetaInvalid {
        /// The meta.json file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A series handed to the writer is invalid.
    #[error("invalid series {series}: {detail}")]
    InvalidSeries {
        /// The series' labels.
        series: String,
        /// What is wrong.
        detail: String,
    },
    /// A chunk could not be decoded.
    #[error("{context}: {source}")]
    Chunk {
        /// Block, series and chunk reference.
        context: String,
        /// The decoding error.
        #[source]
        source: StorageError,
    },
}

impl From<BlockError> for StorageError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::Chunks(ChunksError::Corrupt { .. })
            | BlockError::Index(IndexError::Corrupt { .. })
            | BlockError::Chunk { .. } => StorageError::Corrupt(e.to_string()),
            other => StorageError::read("block", other),
        }
    }
}

/// Counts of a block's contents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    /// Samples in the block.
    pub num_samples: u64,
    /// Series in the block.
    pub num_series: u64,
    /// Chunks in the block.
    pub num_chunks: u64,
    /// Samples that carry a start timestamp (absent from meta.json when
    /// 0, so blocks without them are written exactly as before).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_start_timestamps: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A reference to another block (a compaction parent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    /// The block's ULID.
    pub ulid: String,
    /// Inclusive start, ms.
    pub min_time: i64,
    /// Exclusive end, ms.
    pub max_time: i64,
}

/// How a block came to be.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockCompaction {
    /// 1 for blocks cut from the head, parents' max + 1 for compacted ones.
    pub level: u32,
    /// ULIDs of the level-1 blocks whose data this block holds.
    #[serde(default)]
    pub sources: Vec<String>,
    /// The blocks compacted into this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
}

/// The contents of `meta.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    /// The block's ULID (also its directory name).
    pub ulid: String,
    /// Inclusive start of the block's time range, ms.
    pub min_time: i64,
    /// **Exclusive** end of the block's time range, ms (as Prometheus).
    pub max_time: i64,
    /// Content counts.
    pub stats: BlockStats,
    /// Compaction history.
    pub compaction: BlockCompaction,
    /// meta.json format version.
    pub version: u32,
}

impl BlockMeta {
    /// The inclusive last millisecond the block may hold.
    pub fn maxt_inclusive(&self) -> i64 {
        self.max_time.saturating_sub(1)
    }

    /// Whether the block may hold samples in the inclusive `[mint, maxt]`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint < self.max_time
    }

    /// A description of this block for a child's `parents` list.
    pub fn desc(&self) -> BlockDesc {
        BlockDesc { ulid: self.ulid.clone(), min_time: self.min_time, max_time: self.max_time }
    }

    /// Reads and validates `<dir>/meta.json`.
    pub fn read(dir: &Path) -> Result<BlockMeta, BlockError> {
        let path = dir.join(META_FILENAME);
        let bytes = std::fs::read(&path).ctx("read", &path)?;
        let meta: BlockMeta = serde_json::from_slice(&bytes)
            .map_err(|source| BlockError::Meta { path: path.clone(), source })?;
        let invalid = |detail: String| BlockError::MetaInvalid { path: path.clone(), detail };
        if meta.version != META_VERSION {
            return Err(invalid(format!("unsupported version {}", meta.version)));
        }
        if meta.min_time >= meta.max_time {
            return Err(invalid(format!(
                "minTime {} is not before maxTime {}",
                meta.min_time, meta.max_time
            )));
        }
        if !is_ulid(&meta.ulid) {
            return Err(invalid(format!("ulid {:?} is not a ULID", meta.ulid)));
        }
        Ok(meta)
    }
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new ULID: 48 bits of milliseconds since the epoch and 80 random bits,
/// as 26 Crockford base32 characters. ULIDs of different milliseconds sort
/// by time.
pub fn new_ulid() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    ulid_from_parts(ms, random_u128())
}

/// Formats a ULID from a millisecond timestamp and randomness (the low 80
/// bits of `random` are used).
pub fn ulid_from_parts(ms: u64, random: u128) -> String {
    let v: u128 = (u128::from(ms & 0xFFFF_FFFF_FFFF) << 80) | (random & ((1u128 << 80) - 1));
    (0..26)
        .map(|i| {
            let shift = 125 - 5 * i;
            CROCKFORD[((v >> shift) & 31) as usize] as char
        })
        .collect()
}

/// Whether `s` looks like a ULID (26 Crockford base32 characters).
pub fn is_ulid(s: &str) -> bool {
    s.len() == 26 && s.bytes().all(|b| CROCKFORD.contains(&b)) && s.as_bytes()[0] <= b'7'
}

fn random_u128() -> u128 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    // RandomState is seeded from the OS once per process and then
    // incremented; hashing a counter and the clock through fresh states
    // gives ids that differ across calls and processes without an RNG
    // dependency (ULIDs need uniqueness, not cryptographic strength).
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let c = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut out = 0u128;
    for i in 0..2u64 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(c);
        h.write_u64(nanos);
        h.write_u64(i);
        h.write_u32(std::process::id());
        out = (out << 64) | u128::from(h.finish());
    }
    out
}

/// One chunk handed to [`BlockWriter::add_series`].
#[derive(Clone, Copy, Debug)]
pub struct ChunkData<'a> {
    /// Timestamp of the first sample.
    pub mint: i64,
    /// Timestamp of the last sample.
    pub maxt: i64,
    /// Encoding byte (see [`crate::chunkenc::Encoding`]).
    pub encoding: u8,
    /// The encoded chunk.
    pub data: &'a [u8],
    /// Number of samples (for the block statistics).
    pub num_samples: u64,
}

/// Writes one block.
///
/// Series must be added in strictly increasing label order. Chunk data is
/// streamed to the segment files as it arrives; only labels and chunk
/// metadata are kept until [`BlockWriter::finish`].
#[derive(Debug)]
pub struct BlockWriter {
    parent: PathBuf,
    tmp: PathBuf,
    ulid: String,
    range: Option<(i64, i64)>,
    seen: Option<(i64, i64)>,
    /// `None` only after `finish` took them.
    chunks: Option<ChunkWriter>,
    index: Option<IndexWriter>,
    stats: BlockStats,
    compaction: BlockCompaction,
    metas: Vec<ChunkMeta>,
    recode: bool,
    scratch: Vec<Sample>,
    finished: bool,
}

impl BlockWriter {
    /// A writer for a block covering `[mint, maxt)` (maxt exclusive, as in
    /// meta.json) under `parent`. Samples outside the range are rejected.
    pub fn new(parent: &Path, mint: i64, maxt: i64) -> Result<Self, BlockError> {
        if mint >= maxt {
            return Err(BlockError::InvalidSeries {
                series: String::new(),
                detail: format!("block range [{mint}, {maxt}) is empty"),
            });
        }
        Self::create(parent, Some((mint, maxt)))
    }

    /// A writer whose time range is taken from the samples written
    /// (`[first sample, last sample + 1)`).
    pub fn new_unbounded(parent: &Path) -> Result<Self, BlockError> {
        Self::create(parent, None)
    }

    fn create(parent: &Path, range: Option<(i64, i64)>) -> Result<Self, BlockError> {
        let ulid = new_ulid();
        let tmp = parent.join(format!("{ulid}{}", fs::TMP_SUFFIX));
        std::fs::create_dir_all(&tmp).ctx("create block directory", &tmp)?;
        let chunks = ChunkWriter::new(&tmp.join(CHUNKS_DIRNAME))?;
        let index = IndexWriter::new(&tmp.join(INDEX_FILENAME));
        Ok(BlockWriter {
            parent: parent.to_path_buf(),
            tmp,
            ulid: ulid.clone(),
            range,
            seen: None,
            chunks: Some(chunks),
            index: Some(index),
            stats: BlockStats::default(),
            compaction: BlockCompaction { level: 1, sources: vec![ulid], parents: Vec::new() },
            metas: Vec::new(),
            recode: true,
            scratch: Vec::new(),
            finished: false,
        })
    }

    /// The ULID the block will have.
    pub fn ulid(&self) -> &str {
        &self.ulid
    }

    /// Whether XOR chunks given to [`BlockWriter::add_series`] are
    /// re-encoded as decimal chunks when that is smaller (default: yes).
    /// Turn off to keep every chunk readable by Prometheus.
    pub fn recode(&mut self, yes: bool) -> &mut Self {
        self.recode = yes;
        self
    }

    /// Records the compaction level and parents (for compacted blocks).
    pub fn set_compaction(&mut self, level: u32, parents: &[BlockMeta]) {
        let mut sources: Vec<String> =
            parents.iter().flat_map(|p| p.compaction.sources.iter().cloned()).collect();
        sources.sort();
        sources.dedup();
        if sources.is_empty() {
            sources.push(self.ulid.clone());
        }
        self.compaction = BlockCompaction {
            level: level.max(1),
            sources,
            parents: parents.iter().map(BlockMeta::desc).collect(),
        };
    }

    fn check_range(&mut self, labels: &Labels, mint: i64, maxt: i64) -> Result<(), BlockError> {
        if let Some((lo, hi)) = self.range {
            if mint < lo || maxt >= hi {
                return Err(BlockError::InvalidSeries {
                    series: labels.to_string(),
                    detail: format!(
                        "samples [{mint}, {maxt}] outside the block range [{lo}, {hi})"
                    ),
                });
            }
        }
        self.seen = Some(match self.seen {
            None => (mint, maxt),
            Some((a, b)) => (a.min(mint), b.max(maxt)),
        });
        Ok(())
    }

    /// Adds a series with already encoded chunks (sorted by time, not
    /// overlapping). Series without chunks are skipped.
    pub fn add_series(
        &mut self,
        labels: &Labels,
        chunks: &[ChunkData<'_>],
    ) -> Result<(), BlockError> {
        if chunks.is_empty() {
            return Ok(());
        }
        if let (Some(first), Some(last)) = (chunks.first(), chunks.last()) {
            self.check_range(labels, first.mint, last.maxt)?;
        }
        let (Some(cw), Some(iw)) = (self.chunks.as_mut(), self.index.as_mut()) else {
            return Err(BlockError::InvalidSeries {
                series: labels.to_string(),
                detail: "block writer already finished".into(),
            });
        };
        self.metas.clear();
        let mut samples = 0;
        for c in chunks {
            let mut recoded = None;
            if self.recode && c.encoding == ENCODING_XOR {
                self.scratch.clear();
                let mut it = XorIter::new(c.data);
                loop {
                    match it.next() {
                        Ok(Some(s)) => self.scratch.push(s),
                        Ok(None) => break,
                        Err(source) => {
                            return Err(BlockError::Chunk {
                                context: format!("series {labels} chunk [{}, {}]", c.mint, c.maxt),
                                source,
                            })
                        }
                    }
                }
                recoded = pack::encode(&self.scratch).filter(|d| d.len() < c.data.len());
            }
            if c.encoding == ENCODING_ST {
                // Counted for the block's statistics (which tell readers
                // whether to look for start timestamps); also validates
                // the chunk.
                let chunk_err = |source| BlockError::Chunk {
                    context: format!("series {labels} chunk [{}, {}]", c.mint, c.maxt),
                    source,
                };
                let mut it = ChunkIter::new(c.encoding, c.data).map_err(chunk_err)?;
                while it.next().map_err(chunk_err)?.is_some() {
                    if it.start_timestamp().is_some() {
                        self.stats.num_start_timestamps += 1;
                    }
                }
            }
            let r: ChunkRef = match &recoded {
                Some(d) => cw.write_chunk(ENCODING_PACK, d)?,
                None => cw.write_chunk(c.encoding, c.data)?,
            };
            self.metas.push(ChunkMeta { mint: c.mint, maxt: c.maxt, chunk_ref: r });
            samples += c.num_samples;
        }
        iw.add_series(labels, &self.metas)?;
        self.stats.num_series += 1;
        self.stats.num_chunks += chunks.len() as u64;
        self.stats.num_samples += samples;
        Ok(())
    }

    /// Adds a series from its samples (strictly increasing timestamps),
    /// cutting chunks of [`SAMPLES_PER_CHUNK`] samples, each in the most
    /// compact encoding. Empty series are skipped.
    pub fn add_series_samples(
        &mut self,
        labels: &Labels,
        samples: &[Sample],
    ) -> Result<(), BlockError> {
        self.add_chunked(labels, samples, |range| encode_best(&samples[range]))
    }

    /// Adds a series from its samples (strictly increasing timestamps) and
    /// their start timestamps (`starts`, aligned with `samples`), like
    /// [`add_series_samples`](Self::add_series_samples); chunks holding a
    /// start timestamp are written in the [`ENCODING_ST`] encoding.
    pub fn add_series_samples_with_starts(
        &mut self,
        labels: &Labels,
        samples: &[Sample],
        starts: &[Option<i64>],
    ) -> Result<(), BlockError> {
        if starts.len() != samples.len() {
            return Err(BlockError::InvalidSeries {
                series: labels.to_string(),
                detail: format!("{} start timestamps for {} samples", starts.len(), samples.len()),
            });
        }
        if starts.iter().all(Option::is_none) {
            return self.add_series_samples(labels, samples);
        }
        self.add_chunked(labels, samples, |range| encode_with_starts(&samples[range.clone()], &starts[range]))
    }

    /// Checks that timestamps increase, cuts `samples` into chunks of
    /// [`SAMPLES_PER_CHUNK`] and adds the series with each chunk encoded by
    /// `encode` (given the chunk's index range). Empty series are skipped.
    fn add_chunked(
        &mut self,
        labels: &Labels,
        samples: &[Sample],
        encode: impl Fn(std::ops::Range<usize>) -> (u8, Vec<u8>),
    ) -> Result<(), BlockError> {
        if samples.is_empty() {
            return Ok(());
        }
        if let Some(w) = samples.windows(2).find(|w| w[1].t <= w[0].t) {
            return Err(BlockError::InvalidSeries {
                series: labels.to_string(),
                detail: format!("timestamps not increasing: {} then {}", w[0].t, w[1].t),
            });
        }
        let encoded: Vec<(i64, i64, u8, Vec<u8>, u64)> = (0..samples.len())
            .step_by(SAMPLES_PER_CHUNK)
            .map(|lo| {
                let hi = (lo + SAMPLES_PER_CHUNK).min(samples.len());
                let (enc, data) = encode(lo..hi);
                (samples[lo].t, samples[hi - 1].t, enc, data, (hi - lo) as u64)
            })
            .collect();
        let datas: Vec<ChunkData<'_>> = encoded
            .iter()
            .map(|(mint, maxt, enc, data, n)| ChunkData {
                mint: *mint,
                maxt: *maxt,
                encoding: *enc,
                data,
                num_samples: *n,
            })
            .collect();
        self.add_series(labels, &datas)
    }

    /// Writes the index and meta.json, fsyncs, and renames the block into
    /// place. Returns its metadata. An empty block (no series) is still
    /// written when a range was given; without a range it is an error.
    pub fn finish(mut self) -> Result<BlockMeta, BlockError> {
        let (min_time, max_time) = match (self.range, self.seen) {
            (Some(r), _) => r,
            (None, Some((a, b))) => (a, b.saturating_add(1)),
            (None, None) => {
                return Err(BlockError::InvalidSeries {
                    series: String::new(),
                    detail: "no samples to write and no block range given".into(),
                })
            }
        };
        if let Some(chunks) = self.chunks.take() {
            chunks.finish()?;
        }
        if let Some(index) = self.index.take() {
            index.finish()?;
        }
        let meta = BlockMeta {
            ulid: self.ulid.clone(),
            min_time,
            max_time,
            stats: self.stats,
            compaction: self.compaction.clone(),
            version: META_VERSION,
        };
        let json = serde_json::to_vec_pretty(&meta)
            .map_err(|source| BlockError::Meta { path: self.tmp.join(META_FILENAME), source })?;
        fs::write_atomic(&self.tmp.join(META_FILENAME), &json)?;
        fs::fsync_dir(&self.tmp.join(CHUNKS_DIRNAME))?;
        fs::fsync_dir(&self.tmp)?;
        let dst = self.parent.join(&self.ulid);
        fs::rename_durable(&self.tmp, &dst)?;
        self.finished = true;
        Ok(meta)
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if !self.finished {
            // An abandoned block leaves only its temporary directory, which
            // is removed here (or by fs::remove_tmp_dirs after a crash).
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Writes a block from series given in increasing label order, each with
/// strictly increasing samples; the range is taken from the data. Returns
/// the block's metadata.
pub fn write_block<I>(parent: &Path, series: I) -> Result<BlockMeta, BlockError>
where
    I: IntoIterator<Item = (Labels, Vec<Sample>)>,
{
    let mut w = BlockWriter::new_unbounded(parent)?;
    for (labels, samples) in series {
        w.add_series_samples(&labels, &samples)?;
    }
    w.finish()
}

/// An open, memory-mapped block.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
    /// Series queries read from the index, by reference.
    series: Mutex<SeriesCache>,
}

/// Series of a block read from its index, kept by reference for queries
/// (see [`Block::select_series_cached`]): a block never changes, so the next
/// query selecting a series shares its labels instead of decoding them
/// again (checksum, symbol lookups, one allocation per name and value).
#[derive(Debug, Default)]
struct SeriesCache {
    by_ref: HashMap<SeriesRef, (Labels, Arc<[ChunkMeta]>)>,
    /// Estimated bytes of the entries (counted in [`CACHED_BYTES`] too).
    bytes: usize,
}

/// Estimated bytes held by the series caches of every open block of the
/// process, bounded by [`CACHE_BUDGET`].
static CACHED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Bytes all blocks' series caches may hold together (about 25k series of
/// a node exporter's labels). A block that would go over starts its own
/// cache over; one whose cache is empty then reads without keeping.
const CACHE_BUDGET: usize = 16 << 20;

impl SeriesCache {
    /// Roughly what an entry costs: labels, chunk metadata, the map slot.
    fn cost(labels: &Labels, chunks: &[ChunkMeta]) -> usize {
        labels.iter().map(|l| l.name.len() + l.value.len() + 64).sum::<usize>() + std::mem::size_of_val(chunks) + 96
    }

    fn clear(&mut self) {
        CACHED_BYTES.fetch_sub(self.bytes, Ordering::Relaxed);
        self.by_ref.clear();
        self.bytes = 0;
    }

    /// Keeps an entry if the budget allows (making room from this cache).
    fn keep(&mut self, r: SeriesRef, labels: &Labels, chunks: &Arc<[ChunkMeta]>) {
        let cost = Self::cost(labels, chunks);
        if CACHED_BYTES.load(Ordering::Relaxed) + cost > CACHE_BUDGET {
            if self.by_ref.is_empty() {
                return;
            }
            self.clear();
        }
        if self.by_ref.insert(r, (labels.clone(), Arc::clone(chunks))).is_none() {
            self.bytes += cost;
            CACHED_BYTES.fetch_add(cost, Ordering::Relaxed);
        }
    }
}

impl Drop for SeriesCache {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A series of a block selected by matchers: labels and the metadata of
/// its chunks that overlap the requested range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Its chunks overlapping the range, in time order.
    pub chunks: Vec<ChunkMeta>,
}

impl Block {
    /// Opens the block in `dir`: reads meta.json, maps and validates the
    /// index and chunk segments.
    pub fn open(dir: &Path) -> Result<Block, BlockError> {
        let meta = BlockMeta::read(dir)?;
        let index = IndexReader::open(&dir.join(INDEX_FILENAME))?;
        let chunks = ChunkReader::open(&dir.join(CHUNKS_DIRNAME))?;
        Ok(Block { dir: dir.to_path_buf(), meta, index, chunks, series: Mutex::default() })
    }

    /// The block's metadata.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The block's index.
    pub fn index(&self) -> &IndexReader {
        &self.index
    }

    /// The block's chunk segments.
    pub fn chunks(&self) -> &ChunkReader {
        &self.chunks
    }

    /// Bytes of the index and chunk files.
    pub fn size(&self) -> u64 {
        self.index.size() + self.chunks.size()
    }

    /// Series matching every matcher that have chunks overlapping the
    /// inclusive `[mint, maxt]`, in label order.
    pub fn select_series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<BlockSeries>, BlockError> {
        let refs = self.index.postings_for_matchers(matchers)?;
        let mut out = Vec::with_capacity(refs.len());
        let mut labels: Vec<Label> = Vec::new();
        let mut chunks: Vec<ChunkMeta> = Vec::new();
        for r in refs {
            self.index.series_into(r, &mut labels, &mut chunks)?;
            chunks.retain(|c| c.overlaps(mint, maxt));
            if chunks.is_empty() {
                continue;
            }
            // The label vector is handed over, not copied: `series_into`
            // refills a fresh one next time.
            out.push(BlockSeries { labels: self.labels_of(r, std::mem::take(&mut labels))?, chunks: chunks.clone() });
        }
        Ok(out)
    }

    /// [`Self::select_series`] for queries: series read before (by earlier
    /// queries) come from a cache of the block's series, within a budget
    /// shared by all blocks, instead of being decoded again; the others
    /// are read and kept.
    pub fn select_series_cached(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<BlockSeries>, BlockError> {
        let refs = self.index.postings_for_matchers(matchers)?;
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let (labels, all) = self.series_at(r)?;
            let chunks: Vec<ChunkMeta> = all.iter().filter(|c| c.overlaps(mint, maxt)).copied().collect();
            if !chunks.is_empty() {
                out.push(BlockSeries { labels, chunks });
            }
        }
        Ok(out)
    }

    /// The series at `r`: its labels and all its chunks, from the cache or
    /// read from the index (and then kept if the budget allows).
    fn series_at(&self, r: SeriesRef) -> Result<(Labels, Arc<[ChunkMeta]>), BlockError> {
        let lock = || self.series.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((labels, chunks)) = lock().by_ref.get(&r) {
            return Ok((labels.clone(), Arc::clone(chunks)));
        }
        let mut labels: Vec<Label> = Vec::new();
        let mut chunks: Vec<ChunkMeta> = Vec::new();
        self.index.series_into(r, &mut labels, &mut chunks)?;
        let (labels, chunks): (Labels, Arc<[ChunkMeta]>) = (self.labels_of(r, labels)?, Arc::from(chunks));
        lock().keep(r, &labels, &chunks);
        Ok((labels, chunks))
    }

    fn labels_of(&self, r: SeriesRef, labels: Vec<Label>) -> Result<Labels, BlockError> {
        Labels::from_sorted(labels).ok_or_else(|| {
            BlockError::Index(IndexError::Corrupt {
                path: self.index.path_buf(),
                offset: r,
                detail: "series labels are not sorted by name".into(),
            })
        })
    }

    /// Every series of the block with all its chunks, in label order.
    pub fn all_series(&self) -> Result<Vec<BlockSeries>, BlockError> {
        self.select_series(&[], i64::MIN, i64::MAX)
    }

    /// Whether some samples of the block carry start timestamps.
    pub fn has_start_timestamps(&self) -> bool {
        self.meta.stats.num_start_timestamps > 0
    }

    /// An iterator over one chunk's samples.
    pub fn chunk_iter(&self, c: &ChunkMeta) -> Result<ChunkIter<'_>, BlockError> {
        let bytes = self.chunks.chunk(c.chunk_ref)?;
        ChunkIter::new(bytes.encoding, bytes.data).map_err(|source| BlockError::Chunk {
            context: format!("block {} chunk {:#x}", self.meta.ulid, c.chunk_ref),
            source,
        })
    }

    /// An iterator over the samples of `chunks` (sorted, non-overlapping)
    /// restricted to the inclusive `[mint, maxt]`.
    pub fn series_iter<'a>(
        &'a self,
        chunks: Vec<ChunkMeta>,
        mint: i64,
        maxt: i64,
    ) -> BlockSeriesIter<'a> {
        BlockSeriesIter { block: self, chunks, next_chunk: 0, cur: None, mint, maxt, done: false }
    }

    /// A querier over the inclusive range `[mint, maxt]`.
    pub fn querier(&self, mint: i64, maxt: i64) -> BlockQuerier<'_> {
        BlockQuerier { block: self, mint, maxt }
    }
}

/// Iterates a series' samples across its chunks in one block.
#[derive(Debug)]
pub struct BlockSeriesIter<'a> {
    block: &'a Block,
    chunks: Vec<ChunkMeta>,
    next_chunk: usize,
    cur: Option<ChunkIter<'a>>,
    mint: i64,
    maxt: i64,
    done: bool,
}

impl BlockSeriesIter<'_> {
    fn open_next(&mut self, min_t: i64) -> Result<bool, StorageError> {
        while let Some(c) = self.chunks.get(self.next_chunk) {
            self.next_chunk += 1;
            if c.maxt < min_t {
                continue;
            }
            if c.mint > self.maxt {
                break;
            }
            self.cur = Some(self.block.chunk_iter(c).map_err(StorageError::from)?);
            return Ok(true);
        }
        self.done = true;
        self.cur = None;
        Ok(false)
    }
}

impl SampleIter for BlockSeriesIter<'_> {
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        self.seek_inner(i64::MIN, false)
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        self.seek_inner(t, true)
    }

    fn start_timestamp(&self) -> Option<i64> {
        if self.done {
            return None;
        }
        self.cur.as_ref().and_then(|c| c.start_timestamp())
    }

    fn has_start_timestamps(&self) -> bool {
        self.block.has_start_timestamps()
    }
}

impl BlockSeriesIter<'_> {
    fn seek_inner(&mut self, t: i64, seeking: bool) -> Result<Option<Sample>, StorageError> {
        let lo = self.mint.max(t);
        loop {
            if self.done {
                return Ok(None);
            }
            let Some(it) = self.cur.as_mut() else {
                if !self.open_next(lo)? {
                    return Ok(None);
                }
                continue;
            };
            let s = if seeking { it.seek(lo)? } else { it.next()? };
            match s {
                Some(s) if s.t > self.maxt => {
                    self.done = true;
                    return Ok(None);
                }
                Some(s) if s.t < lo => continue,
                Some(s) => return Ok(Some(s)),
                None => self.cur = None,
            }
        }
    }
}

/// A [`Querier`] over one block and an inclusive time range.
#[derive(Debug)]
pub struct BlockQuerier<'a> {
    block: &'a Block,
    mint: i64,
    maxt: i64,
}

impl BlockQuerier<'_> {
    fn matching_labels(&self, matchers: &[Matcher]) -> Result<Vec<Labels>, StorageError> {
        Ok(self
            .block
            .select_series(matchers, self.mint, self.maxt)
            .map_err(StorageError::from)?
            .into_iter()
            .map(|s| s.labels)
            .collect())
    }

    fn covers_whole_block(&self) -> bool {
        self.mint <= self.block.meta.min_time && self.maxt >= self.block.meta.maxt_inclusive()
    }
}

impl Querier for BlockQuerier<'_> {
    fn select<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series<'a>>, StorageError> {
        let mint = hints.mint.max(self.mint);
        let maxt = hints.maxt.min(self.maxt);
        if mint > maxt {
            return Ok(Vec::new());
        }
        let series = self.block.select_series_cached(matchers, mint, maxt).map_err(StorageError::from)?;
        Ok(series
            .into_iter()
            .map(|s| Series {
                labels: s.labels,
                samples: Box::new(self.block.series_iter(s.chunks, mint, maxt)),
            })
            .collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() && self.covers_whole_block() {
            return Ok(self.block.index.label_names());
        }
        let mut names = BTreeSet::new();
        for l in self.matching_labels(matchers)? {
            names.extend(l.iter().map(|x| x.name.clone()));
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() && self.covers_whole_block() {
            return Ok(self.block.index.label_values(name));
        }
        let mut values = BTreeSet::new();
        for l in self.matching_labels(matchers)? {
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
    use model::mem::MemStore;
    use model::{collect_range, MatchType, Queryable};
    use proptest::prelude::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A small deterministic PRNG (xorshift) so tests need no RNG crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Thousands of node-exporter-like series with irregular samples.
    fn dataset(rng: &mut Rng, n_series: usize) -> Vec<(Labels, Vec<Sample>)> {
        let jobs = ["node", "api", "db"];
        let modes = ["idle", "user", "system", "iowait", ""];
        let mut out = Vec::new();
        for i in 0..n_series {
            let mut b = model::LabelsBuilder::new();
            b.set("__name__", format!("metric_{}", i % 17));
            b.set("instance", format!("host-{}:9100", i / 17 % 40));
            b.set("job", jobs[i % 3]);
            let mode = modes[(i / 680) % 5];
            if !mode.is_empty() {
                b.set("mode", mode);
            }
            if i % 7 == 0 {
                b.set("cpu", (i % 4).to_string());
            }
            let labels = b.build();
            let n = rng.below(200) as i64;
            let mut t = rng.below(10_000) as i64;
            let mut samples = Vec::new();
            for k in 0..n {
                t += 1 + rng.below(30_000) as i64;
                let v = match i % 4 {
                    0 => k as f64,
                    1 => (rng.below(10_000) as f64) / 100.0,
                    2 => f64::from_bits(rng.next()),
                    _ => 1.0,
                };
                samples.push(Sample::new(t, v));
            }
            out.push((labels, samples));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    fn samples_of(
        it: &mut dyn SampleIter,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(i64, u64)>, Box<dyn std::error::Error>> {
        Ok(collect_range(it, mint, maxt)?.into_iter().map(|s| (s.t, s.v.to_bits())).collect())
    }

    /// Queries' cached selection gives what reading the index gives, on
    /// the first query and from the cache on the next, and the cache
    /// accounts for what it keeps.
    #[test]
    fn cached_selection_equals_reading_the_index() -> TestResult {
        let dir = tempfile::tempdir()?;
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let meta = write_block(dir.path(), dataset(&mut rng, 600))?;
        let block = Block::open(&dir.path().join(&meta.ulid))?;
        let job = Matcher::new(MatchType::Equal, "job", "api")?;
        let name = Matcher::new(MatchType::Regex, "__name__", "metric_1.*")?;
        for (matchers, mint, maxt) in [(vec![job.clone()], i64::MIN, i64::MAX), (vec![name.clone()], 100_000, 900_000), (vec![job, name], 0, 50_000)] {
            let want = block.select_series(&matchers, mint, maxt)?;
            assert!(!want.is_empty());
            assert_eq!(block.select_series_cached(&matchers, mint, maxt)?, want);
            assert_eq!(block.select_series_cached(&matchers, mint, maxt)?, want);
        }
        let cache = block.series.lock().map_err(|e| e.to_string())?;
        assert!(!cache.by_ref.is_empty());
        let costs: usize = cache.by_ref.values().map(|(l, c)| SeriesCache::cost(l, c)).sum();
        assert_eq!(cache.bytes, costs);
        Ok(())
    }

    #[test]
    fn block_matches_mem_store_oracle() -> TestResult {
        let dir = tempfile::tempdir()?;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let data = dataset(&mut rng, 2000);
        let mem = MemStore::new();
        for (l, s) in &data {
            for x in s {
                mem.append(l, x.t, x.v);
            }
        }
        let meta = write_block(dir.path(), data.clone())?;
        assert_eq!(meta.stats.num_series as usize, data.iter().filter(|d| !d.1.is_empty()).count());
        assert_eq!(meta.stats.num_samples as usize, mem.num_samples());
        let block = Block::open(&dir.path().join(&meta.ulid))?;
        assert_eq!(block.meta(), &meta);

        let names = ["__name__", "instance", "job", "mode", "cpu", "absent"];
        let values = [
            "metric_3",
            "host-7:9100",
            "node",
            "idle",
            "",
            "1",
            "metric_1.*",
            "host-1.*|api",
            ".*",
            ".+",
            "x",
        ];
        for _ in 0..80 {
            let n = 1 + rng.below(3) as usize;
            let mut ms = Vec::new();
            for _ in 0..n {
                let kind =
                    [MatchType::Equal, MatchType::NotEqual, MatchType::Regex, MatchType::NotRegex]
                        [rng.below(4) as usize];
                let name = names[rng.below(names.len() as u64) as usize];
                let value = values[rng.below(values.len() as u64) as usize];
                ms.push(Matcher::new(kind, name, value)?);
            }
            let mint = rng.below(6_000_000) as i64 - 100_000;
            let maxt = mint + rng.below(8_000_000) as i64;
            let hints = SelectHints::range(mint, maxt);
            let bq = block.querier(mint, maxt);
            let mq = mem.querier(mint, maxt)?;
            let mut got = bq.select(&hints, &ms)?;
            let mut want = mq.select(&hints, &ms)?;
            assert_eq!(got.len(), want.len(), "matchers {ms:?} range {mint}..{maxt}");
            for (g, w) in got.iter_mut().zip(want.iter_mut()) {
                assert_eq!(g.labels, w.labels);
                assert_eq!(
                    samples_of(g.samples.as_mut(), mint, maxt)?,
                    samples_of(w.samples.as_mut(), mint, maxt)?,
                    "{}",
                    g.labels
                );
            }
            assert_eq!(bq.label_names(&ms)?, mq.label_names(&ms)?, "{ms:?}");
            assert_eq!(
                bq.label_values("instance", &ms)?,
                mq.label_values("instance", &ms)?
            );
        }
        // Whole-range label queries come straight from the postings table.
        let full = block.querier(i64::MIN, i64::MAX);
        let mfull = mem.querier(i64::MIN, i64::MAX)?;
        assert_eq!(full.label_names(&[])?, mfull.label_names(&[])?);
        assert_eq!(
            full.label_values("mode", &[])?,
            mfull.label_values("mode", &[])?
        );
        Ok(())
    }

    #[test]
    fn seek_across_chunks() -> TestResult {
        let dir = tempfile::tempdir()?;
        let l = Labels::from_pairs([("__name__", "x")]);
        let samples: Vec<Sample> = (0..1000).map(|i| Sample::new(i * 10, i as f64)).collect();
        let meta = write_block(dir.path(), vec![(l.clone(), samples)])?;
        assert_eq!(meta.stats.num_chunks, 9);
        assert_eq!((meta.min_time, meta.max_time), (0, 9991));
        let b = Block::open(&dir.path().join(&meta.ulid))?;
        let q = b.querier(100, 8000);
        let mut s =
            q.select(&SelectHints::range(0, 100_000), &[Matcher::equal("__name__", "x")])?;
        let it = s[0].samples.as_mut();
        assert_eq!(it.next()?.map(|s| s.t), Some(100));
        assert_eq!(it.seek(5005)?.map(|s| s.t), Some(5010));
        assert_eq!(it.seek(10)?.map(|s| s.t), Some(5020));
        assert_eq!(it.seek(7995)?.map(|s| s.t), Some(8000));
        assert_eq!(it.next()?, None);
        Ok(())
    }

    #[test]
    fn xor_chunks_are_recoded_unless_disabled() -> TestResult {
        let dir = tempfile::tempdir()?;
        let l = Labels::from_pairs([("a", "b")]);
        let mut x = crate::chunkenc::XorChunk::new();
        for i in 0..120 {
            x.append(i * 15_000, (i % 5) as f64 * 0.25);
        }
        let samples: Vec<Sample> = {
            let mut it = x.iter();
            let mut v = Vec::new();
            while let Some(s) = it.next()? {
                v.push(s);
            }
            v
        };
        let chunk = ChunkData {
            mint: 0,
            maxt: 119 * 15_000,
            encoding: ENCODING_XOR,
            data: x.bytes(),
            num_samples: 120,
        };
        for recode in [true, false] {
            let mut w = BlockWriter::new(dir.path(), 0, 2 * 3_600_000)?;
            w.recode(recode);
            w.add_series(&l, &[chunk])?;
            let meta = w.finish()?;
            let b = Block::open(&dir.path().join(&meta.ulid))?;
            let s = b.all_series()?;
            let stored = b.chunks().chunk(s[0].chunks[0].chunk_ref)?;
            assert_eq!(stored.encoding, if recode { ENCODING_PACK } else { ENCODING_XOR });
            assert!(!recode || stored.data.len() < x.bytes().len());
            let mut it = b.series_iter(s[0].chunks.clone(), i64::MIN, i64::MAX);
            for want in &samples {
                assert!(it.next()?.ok_or("series ended early")?.bit_eq(want));
            }
        }
        // A corrupt XOR chunk is reported, naming the series.
        let mut w = BlockWriter::new(dir.path(), 0, 2 * 3_600_000)?;
        let bad = ChunkData { data: &x.bytes()[..20], ..chunk };
        let e = w.add_series(&l, &[bad]).unwrap_err().to_string();
        assert!(e.contains("a=\"b\""), "{e}");
        Ok(())
    }

    /// Blocks written before the packed decimal chunk (0x13) hold
    /// interleaved (0x10) and columnar (0x12) ones: they must keep reading,
    /// sample by sample through a block and in bulk through a `Db`, next
    /// to new chunks.
    #[test]
    fn older_decimal_chunks_still_read() -> TestResult {
        use crate::chunkenc::{dec, deccol, ENCODING_DEC, ENCODING_DEC_COL};
        use model::{collect_range, Queryable};
        let dir = tempfile::tempdir()?;
        let l = Labels::from_pairs([("__name__", "m"), ("a", "b")]);
        let samples: Vec<Sample> = (0..480)
            .map(|i| Sample::new(i * 15_000 + (i % 3), 100.0 + 0.25 * (i % 17) as f64))
            .collect();
        let encoded: Vec<(u8, Vec<u8>)> = samples
            .chunks(120)
            .enumerate()
            .map(|(k, part)| match k {
                0 => Ok((ENCODING_DEC, dec::encode(part).ok_or("dec::encode refused the part")?)),
                1 => {
                    let data = deccol::encode(part).ok_or("deccol::encode refused the part")?;
                    Ok((ENCODING_DEC_COL, data))
                }
                2 => Ok((ENCODING_PACK, pack::encode(part).ok_or("pack::encode refused the part")?)),
                _ => {
                    let mut x = crate::chunkenc::XorChunk::new();
                    for s in part {
                        assert!(x.append(s.t, s.v));
                    }
                    Ok((ENCODING_XOR, x.into_bytes()))
                }
            })
            .collect::<Result<_, Box<dyn std::error::Error>>>()?;
        let chunks: Vec<ChunkData<'_>> = samples
            .chunks(120)
            .zip(&encoded)
            .map(|(part, (enc, data))| ChunkData {
                mint: part[0].t,
                maxt: part[part.len() - 1].t,
                encoding: *enc,
                data,
                num_samples: part.len() as u64,
            })
            .collect();
        let mut w = BlockWriter::new(dir.path(), 0, 2 * 3_600_000)?;
        w.recode(false);
        w.add_series(&l, &chunks)?;
        let meta = w.finish()?;
        let b = Block::open(&dir.path().join(&meta.ulid))?;
        let s = b.all_series()?;
        let stored: Vec<u8> = s[0]
            .chunks
            .iter()
            .map(|c| b.chunks().chunk(c.chunk_ref).map(|c| c.encoding))
            .collect::<Result<_, _>>()?;
        assert_eq!(stored, [ENCODING_DEC, ENCODING_DEC_COL, ENCODING_PACK, ENCODING_XOR]);
        let mut it = b.series_iter(s[0].chunks.clone(), i64::MIN, i64::MAX);
        for want in &samples {
            assert!(it.next()?.ok_or("series ended early")?.bit_eq(want));
        }
        assert_eq!(it.next()?, None);
        drop(it);
        drop(b);

        let db = crate::Db::open(dir.path(), crate::Options::builder().retention_time(None).build())?;
        let q = db.querier(0, i64::MAX)?;
        for (mint, maxt) in [(0, i64::MAX), (samples[50].t, samples[300].t), (samples[130].t + 1, samples[400].t - 1)] {
            let mut found = q.select(&SelectHints::range(mint, maxt), &[Matcher::equal("a", "b")])?;
            let got = collect_range(found[0].samples.as_mut(), mint, maxt)?;
            let want: Vec<&Sample> = samples.iter().filter(|s| s.t >= mint && s.t <= maxt).collect();
            assert_eq!(got.len(), want.len());
            assert!(got.iter().zip(want).all(|(a, b)| a.bit_eq(b)));
        }
        drop(q);
        db.close()?;
        Ok(())
    }

    #[test]
    fn writer_validates_and_cleans_up() -> TestResult {
        let dir = tempfile::tempdir()?;
        let l = Labels::from_pairs([("a", "b")]);
        let mut w = BlockWriter::new(dir.path(), 0, 100)?;
        let e = w.add_series_samples(&l, &[Sample::new(5, 1.0), Sample::new(5, 2.0)]).unwrap_err();
        assert!(e.to_string().contains("not increasing"), "{e}");
        let e = w.add_series_samples(&l, &[Sample::new(100, 1.0)]).unwrap_err();
        assert!(e.to_string().contains("outside the block range"), "{e}");
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0, "tmp dir removed");
        // An empty block with a range is valid.
        let w = BlockWriter::new(dir.path(), 0, 100)?;
        let meta = w.finish()?;
        let b = Block::open(&dir.path().join(&meta.ulid))?;
        assert!(b.all_series()?.is_empty());
        assert!(BlockWriter::new_unbounded(dir.path())?.finish().is_err());
        Ok(())
    }

    #[test]
    fn corrupt_files_give_clear_errors() -> TestResult {
        let dir = tempfile::tempdir()?;
        let data: Vec<(Labels, Vec<Sample>)> = (0..30)
            .map(|i| {
                (
                    Labels::from_pairs([("__name__", "m".to_string()), ("i", format!("{i:02}"))]),
                    (0..300).map(|k| Sample::new(k * 1000, (k * i) as f64)).collect(),
                )
            })
            .collect();
        let meta = write_block(dir.path(), data)?;
        let bdir = dir.path().join(&meta.ulid);
        let seg = bdir.join("chunks/000001");
        let orig = std::fs::read(&seg)?;
        let mut rng = Rng(7);
        for _ in 0..40 {
            let mut b = orig.clone();
            let pos = 8 + rng.below(orig.len() as u64 - 8) as usize;
            b[pos] ^= 1 << rng.below(8);
            std::fs::write(&seg, &b)?;
            let block = Block::open(&bdir)?;
            let q = block.querier(i64::MIN, i64::MAX);
            let mut series = q
                .select(&SelectHints::range(i64::MIN, i64::MAX), &[Matcher::equal("__name__", "m")])
                ?;
            let mut errors = Vec::new();
            for s in &mut series {
                loop {
                    match s.samples.next() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            errors.push(e.to_string());
                            break;
                        }
                    }
                }
            }
            assert_eq!(errors.len(), 1, "one flipped byte breaks exactly one chunk: {errors:?}");
            assert!(errors[0].contains("000001") && errors[0].contains("offset"), "{}", errors[0]);
        }
        std::fs::write(&seg, &orig)?;
        let idx = bdir.join("index");
        let mut b = std::fs::read(&idx)?;
        let n = b.len();
        b[n - 10] ^= 0xff;
        std::fs::write(&idx, &b)?;
        let e = Block::open(&bdir).unwrap_err().to_string();
        assert!(e.contains("index") && e.contains("offset"), "{e}");
        std::fs::write(bdir.join("meta.json"), b"{")?;
        let e = Block::open(&bdir).unwrap_err().to_string();
        assert!(e.contains("meta.json"), "{e}");
        Ok(())
    }

    /// The content of the committed golden block `tests/data/block-v1`:
    /// a constant, a decimal gauge, an integer counter, a float sum and a
    /// series of special values (NaN payloads, infinities, -0.0), so both
    /// chunk encodings are present.
    fn golden_series() -> Vec<(Labels, Vec<Sample>)> {
        let t0 = 1_700_000_000_000i64;
        let mk = |name: &str, f: &dyn Fn(i64) -> f64| {
            let l = Labels::from_pairs([
                ("__name__", name),
                ("instance", "host-0:9100"),
                ("job", "node"),
            ]);
            (
                l,
                (0..300)
                    .map(|i| Sample::new(t0 + i * 15_000 + (i % 7 == 3) as i64, f(i)))
                    .collect(),
            )
        };
        let mut v = vec![
            mk("a_constant", &|_| 1.0),
            mk("b_gauge", &|i| [0.2105, 0.2107, 0.2113, 0.2109][i as usize % 4]),
            mk("c_counter_total", &|i| (i * i * 37) as f64),
            mk("d_cpu_seconds_total", &|i| {
                (0..=i).fold(12_345.67, |acc, k| acc + [0.15, 1.37, 12.01][k as usize % 3])
            }),
            mk("e_special", &|i| {
                [
                    f64::NAN,
                    f64::INFINITY,
                    -0.0,
                    model::stale_nan(),
                    f64::from_bits(0x7ff8_0000_dead_beef),
                    1e-300,
                ][i as usize % 6]
            }),
        ];
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn golden_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/block-v1")
    }

    /// Regenerates the golden block; run by hand only when the format
    /// version changes (then keep the old fixture and add a new one):
    /// `cargo test -p tsdb --lib regenerate_golden_block -- --ignored`.
    #[test]
    #[ignore]
    fn regenerate_golden_block() -> TestResult {
        let dir = golden_dir();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        write_block(&dir, golden_series())?;
        Ok(())
    }

    #[test]
    fn reads_golden_block_v1() -> TestResult {
        let dir = golden_dir();
        let entry = std::fs::read_dir(&dir)?.next().ok_or("golden block dir is empty")??;
        let b = Block::open(&entry.path())?;
        assert_eq!(b.meta().ulid, entry.file_name().to_string_lossy());
        let want = golden_series();
        let got = b.all_series()?;
        assert_eq!(got.len(), want.len());
        let mut encodings = BTreeSet::new();
        for (g, (wl, ws)) in got.iter().zip(&want) {
            assert_eq!(&g.labels, wl);
            for c in &g.chunks {
                encodings.insert(b.chunks().chunk(c.chunk_ref)?.encoding);
            }
            let mut it = b.series_iter(g.chunks.clone(), i64::MIN, i64::MAX);
            for w in ws {
                let s = it.next()?.ok_or("series ended early")?;
                assert!(s.bit_eq(w), "{wl}: {s:?} != {w:?}");
            }
            assert!(it.next()?.is_none());
        }
        assert_eq!(encodings.into_iter().collect::<Vec<_>>(), vec![1, 0x10]);
        Ok(())
    }

    #[test]
    fn ulids_sort_by_time_and_validate() {
        let a = ulid_from_parts(1, u128::MAX);
        let b = ulid_from_parts(2, 0);
        assert!(a < b);
        assert!(is_ulid(&a) && is_ulid(&new_ulid()));
        assert_ne!(new_ulid(), new_ulid());
        assert!(!is_ulid("not-a-ulid"));
    }

    /// Turns any error into a proptest failure, keeping its message.
    fn fail(e: impl std::fmt::Display) -> TestCaseError {
        TestCaseError::fail(e.to_string())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn meta_json_round_trips(level in 1u32..10, mint in -1_000_000i64..1_000_000, span in 1i64..1_000_000) {
            let m = BlockMeta {
                ulid: new_ulid(),
                min_time: mint,
                max_time: mint + span,
                stats: BlockStats { num_samples: 5, num_series: 2, num_chunks: 3, num_start_timestamps: 0 },
                compaction: BlockCompaction { level, sources: vec![new_ulid()], parents: vec![] },
                version: META_VERSION,
            };
            let dir = tempfile::tempdir().map_err(fail)?;
            let json = serde_json::to_vec(&m).map_err(fail)?;
            fs::write_atomic(&dir.path().join(META_FILENAME), &json).map_err(fail)?;
            prop_assert_eq!(BlockMeta::read(dir.path()).map_err(fail)?, m);
        }
    }
}
