//! Store configuration: [`Options`], built with [`OptionsBuilder`].

use std::time::Duration;
use tsdb::wal::FsyncPolicy;

/// Default uncompressed block size: 256 KiB.
pub const DEFAULT_BLOCK_SIZE: usize = 256 << 10;
/// Default longest accepted line: 256 KB (Loki's `max_line_size`).
pub const DEFAULT_MAX_LINE_SIZE: usize = 256_000;
/// Default most labels per stream (Loki's `max_label_names_per_series`).
pub const DEFAULT_MAX_LABELS_PER_STREAM: usize = 15;
/// Default most streams in the store.
pub const DEFAULT_MAX_STREAMS: usize = 100_000;
/// Default `max_chunk_age` (Loki: 2h); out-of-order entries are accepted
/// back to half of it behind a stream's newest entry.
pub const DEFAULT_MAX_CHUNK_AGE: Duration = Duration::from_secs(2 * 3600);
/// Default zstd level: 3. For blocks of at most 256 KiB zstd's level 3 is
/// its `dfast` strategy and level 4 already `greedy`: on the benchmark logs
/// (`shared/bench/gen_logs.py 24 20000`, block format 3, minimum match
/// length 7) level 4 stores 5.6× instead of 5.3× (blocks only; 5.5× and
/// 5.15× with block filters) but compresses about twice as slowly, and
/// compression is most of the cost of [`crate::Store::push`]. Level 3 keeps
/// ingest above 100 MB/s per core including JSON push decoding.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// Default smallest compressed block that gets a trigram filter: 16 KiB,
/// sixteen times the filter's size.
pub const DEFAULT_BLOCK_FILTER_MIN_SIZE: usize = 16 << 10;
/// Default WAL segment size (64 MiB).
pub const DEFAULT_WAL_SEGMENT_SIZE: u64 = 64 << 20;

/// Configuration of a [`crate::Store`]. Build one with [`Options::builder`];
/// `Options::default()` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// A stream's head block is cut (compressed and sealed) once its
    /// uncompressed size reaches this many bytes.
    pub block_size: usize,
    /// Longest accepted line in bytes; `0` disables the limit.
    pub max_line_size: usize,
    /// Most labels a stream may have; `0` disables the limit.
    pub max_labels_per_stream: usize,
    /// Most streams the store holds; `0` disables the limit.
    pub max_streams: usize,
    /// Entries older than this (relative to the `now` given to
    /// [`crate::Store::apply_retention`]) are deleted; `None` keeps
    /// everything.
    pub retention: Option<Duration>,
    /// Loki's `max_chunk_age`: an entry is accepted if its timestamp is at
    /// least the stream's newest timestamp minus half of this.
    pub max_chunk_age: Duration,
    /// When the WAL fsyncs.
    pub fsync: FsyncPolicy,
    /// How often a background thread flushes head blocks to chunk files;
    /// `None` flushes only on [`crate::Store::flush`] and close.
    pub flush_interval: Option<Duration>,
    /// zstd compression level of blocks.
    pub zstd_level: i32,
    /// WAL segment size in bytes.
    pub wal_segment_size: u64,
    /// Whether new blocks get a trigram filter (1 KiB each, when it is
    /// selective enough) that lets line-filter queries skip blocks without
    /// decompressing them. Blocks without one are read as usual.
    pub block_filters: bool,
    /// Only blocks at least this large once compressed get a filter, so
    /// filters cost at most 1/16 of the space of the blocks they describe
    /// (small blocks — a quiet stream's head cut by a flush — are cheap to
    /// decompress anyway).
    pub block_filter_min_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            block_size: DEFAULT_BLOCK_SIZE,
            max_line_size: DEFAULT_MAX_LINE_SIZE,
            max_labels_per_stream: DEFAULT_MAX_LABELS_PER_STREAM,
            max_streams: DEFAULT_MAX_STREAMS,
            retention: None,
            max_chunk_age: DEFAULT_MAX_CHUNK_AGE,
            fsync: FsyncPolicy::Always,
            flush_interval: Some(Duration::from_secs(60)),
            zstd_level: DEFAULT_ZSTD_LEVEL,
            wal_segment_size: DEFAULT_WAL_SEGMENT_SIZE,
            block_filters: true,
            block_filter_min_size: DEFAULT_BLOCK_FILTER_MIN_SIZE,
        }
    }
}

impl Options {
    /// A builder starting from the defaults.
    pub fn builder() -> OptionsBuilder {
        OptionsBuilder { opts: Options::default() }
    }

    /// The out-of-order window in nanoseconds: `max_chunk_age / 2`.
    pub fn out_of_order_window_ns(&self) -> i64 {
        i64::try_from(self.max_chunk_age.as_nanos() / 2).unwrap_or(i64::MAX)
    }
}

/// Builds [`Options`] (`&mut self` setters, then [`OptionsBuilder::build`];
/// the builder stays usable).
///
/// ```
/// use std::time::Duration;
/// let opts = logstore::Options::builder()
///     .block_size(64 << 10)
///     .retention(Some(Duration::from_secs(7 * 86400)))
///     .flush_interval(None)
///     .build();
/// assert_eq!(opts.block_size, 64 << 10);
/// ```
#[derive(Clone, Debug)]
pub struct OptionsBuilder {
    opts: Options,
}

impl OptionsBuilder {
    /// Uncompressed block size in bytes (at least 1 KiB is used).
    pub fn block_size(&mut self, bytes: usize) -> &mut Self {
        self.opts.block_size = bytes.max(1024);
        self
    }
    /// Longest accepted line in bytes (`0`: unlimited).
    pub fn max_line_size(&mut self, bytes: usize) -> &mut Self {
        self.opts.max_line_size = bytes;
        self
    }
    /// Most labels per stream (`0`: unlimited).
    pub fn max_labels_per_stream(&mut self, n: usize) -> &mut Self {
        self.opts.max_labels_per_stream = n;
        self
    }
    /// Most streams in the store (`0`: unlimited).
    pub fn max_streams(&mut self, n: usize) -> &mut Self {
        self.opts.max_streams = n;
        self
    }
    /// Retention period (`None`: keep everything).
    pub fn retention(&mut self, d: Option<Duration>) -> &mut Self {
        self.opts.retention = d;
        self
    }
    /// Loki's `max_chunk_age` (the out-of-order window is half of it).
    pub fn max_chunk_age(&mut self, d: Duration) -> &mut Self {
        self.opts.max_chunk_age = d;
        self
    }
    /// WAL fsync policy.
    pub fn fsync(&mut self, p: FsyncPolicy) -> &mut Self {
        self.opts.fsync = p;
        self
    }
    /// Background flush interval (`None`: no background thread).
    pub fn flush_interval(&mut self, d: Option<Duration>) -> &mut Self {
        self.opts.flush_interval = d;
        self
    }
    /// zstd compression level (clamped to 1..=19).
    pub fn zstd_level(&mut self, level: i32) -> &mut Self {
        self.opts.zstd_level = level.clamp(1, 19);
        self
    }
    /// Whether new blocks get a trigram filter (default: yes).
    pub fn block_filters(&mut self, on: bool) -> &mut Self {
        self.opts.block_filters = on;
        self
    }
    /// Smallest compressed block size that gets a filter (default
    /// [`DEFAULT_BLOCK_FILTER_MIN_SIZE`]).
    pub fn block_filter_min_size(&mut self, bytes: usize) -> &mut Self {
        self.opts.block_filter_min_size = bytes;
        self
    }
    /// WAL segment size in bytes (at least 64 KiB is used).
    pub fn wal_segment_size(&mut self, bytes: u64) -> &mut Self {
        self.opts.wal_segment_size = bytes.max(64 << 10);
        self
    }
    /// The options.
    pub fn build(&self) -> Options {
        self.opts.clone()
    }
}
