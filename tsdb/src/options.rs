//! Database options and their builder.

use crate::wal::{FsyncPolicy, WalOptions, DEFAULT_SEGMENT_SIZE};
use std::time::Duration;

/// Two hours, Prometheus's default block range, in ms.
pub const DEFAULT_BLOCK_RANGE_MS: i64 = 2 * 3600 * 1000;
/// Fifteen days, Prometheus's default retention, in ms.
pub const DEFAULT_RETENTION_MS: i64 = 15 * 24 * 3600 * 1000;

/// Options of a [`Db`](crate::Db). Build with [`Options::builder`]; the
/// default is Prometheus's: 2h blocks, 15d retention, no size limit, WAL
/// fsync on every commit, 128 MiB WAL segments.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub(crate) block_range: i64,
    pub(crate) max_block_range: i64,
    pub(crate) retention_ms: Option<i64>,
    pub(crate) retention_bytes: Option<u64>,
    pub(crate) wal: WalOptions,
    pub(crate) head_chunk_file_size: u64,
    pub(crate) background: Option<Duration>,
    pub(crate) ooo_window: i64,
}

impl Default for Options {
    fn default() -> Self {
        OptionsBuilder::new().build()
    }
}

impl Options {
    /// A builder starting from the defaults.
    pub fn builder() -> OptionsBuilder {
        OptionsBuilder::new()
    }

    /// Block range (ms): head data is persisted in blocks this long,
    /// aligned to multiples of it.
    pub fn block_range(&self) -> i64 {
        self.block_range
    }

    /// Longest block compaction produces (ms).
    pub fn max_block_range(&self) -> i64 {
        self.max_block_range
    }

    /// Time retention (ms), if any.
    pub fn retention_time(&self) -> Option<i64> {
        self.retention_ms
    }

    /// Size retention (bytes of blocks), if any.
    pub fn retention_size(&self) -> Option<u64> {
        self.retention_bytes
    }

    /// The out-of-order window (ms; 0 when disabled).
    pub fn out_of_order_window(&self) -> i64 {
        self.ooo_window
    }

    /// The WAL's options.
    pub fn wal(&self) -> &WalOptions {
        &self.wal
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.block_range <= 0 {
            return Err(format!("block range must be positive, got {} ms", self.block_range));
        }
        if self.max_block_range < self.block_range {
            return Err(format!(
                "max block range {} ms is smaller than the block range {} ms",
                self.max_block_range, self.block_range
            ));
        }
        if self.wal.segment_size < 4096 {
            return Err(format!("WAL segment size {} is below 4096 bytes", self.wal.segment_size));
        }
        if self.retention_ms.is_some_and(|r| r <= 0) {
            return Err("retention time must be positive".into());
        }
        Ok(())
    }
}

/// Builds [`Options`] (`&mut self` setters, reusable).
#[derive(Clone, Debug)]
pub struct OptionsBuilder {
    opts: Options,
    max_block_range_set: bool,
}

impl Default for OptionsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl OptionsBuilder {
    /// The defaults.
    pub fn new() -> Self {
        OptionsBuilder {
            opts: Options {
                block_range: DEFAULT_BLOCK_RANGE_MS,
                max_block_range: DEFAULT_BLOCK_RANGE_MS,
                retention_ms: Some(DEFAULT_RETENTION_MS),
                retention_bytes: None,
                wal: WalOptions { segment_size: DEFAULT_SEGMENT_SIZE, fsync: FsyncPolicy::Always },
                head_chunk_file_size: crate::head::chunks_disk::DEFAULT_FILE_SIZE,
                background: None,
                ooo_window: 0,
            },
            max_block_range_set: false,
        }
    }

    /// Block range (default 2h).
    pub fn block_range(&mut self, d: Duration) -> &mut Self {
        self.opts.block_range = ms(d);
        self
    }

    /// Longest block compaction may produce (default: a tenth of the
    /// retention time, capped at 31 days and at least the block range, as
    /// Prometheus).
    pub fn max_block_range(&mut self, d: Duration) -> &mut Self {
        self.opts.max_block_range = ms(d);
        self.max_block_range_set = true;
        self
    }

    /// Deletes blocks entirely older than this, measured from the newest
    /// block's end (default 15 days; `None` keeps everything).
    pub fn retention_time(&mut self, d: Option<Duration>) -> &mut Self {
        self.opts.retention_ms = d.map(ms);
        self
    }

    /// Deletes the oldest blocks while blocks take more than this many
    /// bytes (default: no limit).
    pub fn retention_size(&mut self, bytes: Option<u64>) -> &mut Self {
        self.opts.retention_bytes = bytes;
        self
    }

    /// The WAL fsync policy (default [`FsyncPolicy::Always`]).
    pub fn fsync(&mut self, policy: FsyncPolicy) -> &mut Self {
        self.opts.wal.fsync = policy;
        self
    }

    /// WAL segment size in bytes (default 128 MiB, at least 4096).
    pub fn wal_segment_size(&mut self, bytes: u64) -> &mut Self {
        self.opts.wal.segment_size = bytes;
        self
    }

    /// Size at which a head chunk file is sealed and memory-mapped
    /// (default 32 MiB).
    pub fn head_chunk_file_size(&mut self, bytes: u64) -> &mut Self {
        self.opts.head_chunk_file_size = bytes;
        self
    }

    /// Runs [`Db::compact`](crate::Db::compact) on a background thread every
    /// `interval` and whenever a commit makes the head persistable
    /// (default: off; call `compact` yourself).
    pub fn background_compaction(&mut self, interval: Option<Duration>) -> &mut Self {
        self.opts.background = interval;
        self
    }

    /// Accepts samples older than their series' newest sample when they
    /// are at most `window` behind the newest sample of the head (default:
    /// zero, every out-of-order sample is rejected). Such samples are kept
    /// in memory, sorted, until persisted; a sample at an existing
    /// timestamp is still rejected as a duplicate.
    pub fn out_of_order_window(&mut self, window: Duration) -> &mut Self {
        self.opts.ooo_window = ms(window);
        self
    }

    /// The options.
    pub fn build(&self) -> Options {
        let mut o = self.opts.clone();
        if !self.max_block_range_set {
            let tenth = o.retention_ms.map_or(31 * 24 * 3600 * 1000, |r| r / 10);
            let capped = tenth.min(31 * 24 * 3600 * 1000);
            // A multiple of the block range, at least one range.
            let mult = (capped / o.block_range.max(1)).max(1);
            o.max_block_range = mult.saturating_mul(o.block_range);
        }
        o
    }
}
