//! Write-ahead log: segmented files of checksummed, opaque records.
//!
//! The WAL only frames bytes; what a record means is decided by its users
//! (the head writes [`crate::record`] payloads, logstore writes its own).
//! The byte layout is specified in `docs/format/wal.md`:
//!
//! - a directory holds segments named by an 8-digit decimal index
//!   (`00000001`, `00000002`, ...), contiguous, plus at most one
//!   `checkpoint.NNNNNNNN` directory holding the compacted contents of every
//!   segment up to and including `NNNNNNNN`;
//! - each segment starts with an 8-byte header (magic `TWAL`, version 1,
//!   three zero bytes), then records: `len: u32 LE`, `crc32c(payload): u32
//!   LE`, `crc32c(first 8 header bytes): u32 LE`, `payload`;
//! - a record never spans segments; a new segment is started when the
//!   current one would grow past the configured size.
//!
//! Recovery ([`replay`]) distinguishes a *torn tail* (the end of the last
//! segment holds an incomplete record: the process or machine died while
//! writing) from *corruption* (a bad record followed by more data, or a bad
//! record in an older segment). A torn tail is repaired by truncating the
//! segment to its last good record and reported in a [`RepairReport`];
//! corruption is an error naming the file and the offset.

mod checkpoint;
mod reader;
mod writer;

pub use checkpoint::{checkpoint, CheckpointStats};
pub use reader::{replay, ApplyError, ReplayOutcome};
pub use writer::Wal;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Magic bytes opening every segment.
pub(crate) const SEGMENT_MAGIC: [u8; 4] = *b"TWAL";
/// Current segment format version.
pub(crate) const SEGMENT_VERSION: u8 = 1;
/// Bytes of the segment header.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 8;
/// Bytes of a record header.
pub(crate) const RECORD_HEADER_LEN: usize = 12;
/// Largest accepted record payload (a sanity bound on the length field).
pub const MAX_RECORD_LEN: usize = 1 << 30;
/// Default segment size (128 MiB, as Prometheus).
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 << 20;

/// When the WAL forces written records to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// `fsync` before every append returns: an acknowledged record survives
    /// a power loss. The default.
    #[default]
    Always,
    /// `fsync` at most once per interval (on the append that finds the last
    /// sync older than the interval, and on close). Records survive a
    /// process crash (they are in the page cache) but up to one interval may
    /// be lost on power loss.
    Interval(Duration),
    /// Never `fsync` except on close and segment rotation; survives process
    /// crashes only.
    Never,
}

/// Segment size and fsync policy of a WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment starts when a record would take the current one past
    /// this many bytes (records larger than this get a segment of their own).
    pub segment_size: u64,
    /// The durability policy.
    pub fsync: FsyncPolicy,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_size: DEFAULT_SEGMENT_SIZE, fsync: FsyncPolicy::Always }
    }
}

/// What recovery repaired: a torn tail cut off the last segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairReport {
    /// The segment that was truncated.
    pub segment: PathBuf,
    /// The offset it was truncated to (the end of its last good record).
    pub offset: u64,
    /// How many bytes were discarded.
    pub discarded_bytes: u64,
    /// Why the tail was considered torn.
    pub reason: String,
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "repaired torn WAL tail: truncated {} at offset {} ({} bytes discarded: {})",
            self.segment.display(),
            self.offset,
            self.discarded_bytes,
            self.reason
        )
    }
}

/// An error reading or writing the WAL. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// An I/O operation failed.
    #[error("WAL I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A record in the middle of the log is damaged.
    #[error("WAL corruption in {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the damaged record's header.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A segment between the first and the last is missing.
    #[error("WAL segment {missing} is missing from {dir} (found segments {first}..={last})")]
    MissingSegment {
        /// The WAL directory.
        dir: PathBuf,
        /// Index of the missing segment.
        missing: u32,
        /// First segment present.
        first: u32,
        /// Last segment present.
        last: u32,
    },
    /// A record payload is larger than [`MAX_RECORD_LEN`].
    #[error("WAL record of {len} bytes exceeds the limit of {MAX_RECORD_LEN} bytes")]
    RecordTooLarge {
        /// The payload length.
        len: usize,
    },
    /// The consumer of a replayed record rejected it.
    #[error("WAL record in {path} at offset {offset} could not be applied: {source}")]
    Apply {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record's header.
        offset: u64,
        /// The consumer's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The WAL was poisoned by an earlier write failure and refuses
    /// further appends (the state on disk is unknown until reopened).
    #[error("WAL is unusable after an earlier write failure on {path}")]
    Poisoned {
        /// The segment whose write failed.
        path: PathBuf,
    },
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> WalError {
    WalError::Io { path: path.to_path_buf(), source }
}

/// The file name of segment `index`.
pub fn segment_name(index: u32) -> String {
    format!("{index:08}")
}

/// Parses an 8-digit segment file name.
pub(crate) fn parse_segment_name(name: &str) -> Option<u32> {
    if name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// Parses `checkpoint.NNNNNNNN`.
pub(crate) fn parse_checkpoint_name(name: &str) -> Option<u32> {
    name.strip_prefix("checkpoint.").and_then(parse_segment_name)
}

/// Segment indices in `dir`, sorted (checkpoints and other files ignored).
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u32>, WalError> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        if let Some(i) = entry.file_name().to_str().and_then(parse_segment_name) {
            if entry.file_type().map_err(|e| io_err(&entry.path(), e))?.is_file() {
                out.push(i);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The newest complete checkpoint in `dir`: its index and path.
pub(crate) fn last_checkpoint(dir: &Path) -> Result<Option<(u32, PathBuf)>, WalError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut best: Option<(u32, PathBuf)> = None;
    for entry in rd {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        if let Some(i) = entry.file_name().to_str().and_then(parse_checkpoint_name) {
            if best.as_ref().is_none_or(|(b, _)| i > *b) {
                best = Some((i, entry.path()));
            }
        }
    }
    Ok(best)
}

/// Encodes the 12-byte record header for `payload`.
pub(crate) fn record_header(payload: &[u8]) -> [u8; RECORD_HEADER_LEN] {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4..8].copy_from_slice(&crate::encoding::crc32(payload).to_le_bytes());
    let hcrc = crate::encoding::crc32(&h[0..8]);
    h[8..12].copy_from_slice(&hcrc.to_le_bytes());
    h
}

/// The segment header bytes.
pub(crate) fn segment_header() -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[0..4].copy_from_slice(&SEGMENT_MAGIC);
    h[4] = SEGMENT_VERSION;
    h
}

/// Fsyncs a directory so that created, renamed or removed entries persist.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    let f = std::fs::File::open(dir).map_err(|e| io_err(dir, e))?;
    f.sync_all().map_err(|e| io_err(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn read_all(dir: &Path) -> Result<(Vec<Vec<u8>>, ReplayOutcome), WalError> {
        let mut got = Vec::new();
        let out = replay(dir, |p| {
            got.push(p.to_vec());
            Ok(())
        })?;
        Ok((got, out))
    }

    #[test]
    fn log_rotate_replay() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let opts = WalOptions { segment_size: 4096, fsync: FsyncPolicy::Never };
        let mut w = Wal::open(tmp.path(), opts.clone())?;
        let recs: Vec<Vec<u8>> = (0..200u32).map(|i| vec![i as u8; (i as usize * 7) % 300]).collect();
        for r in &recs {
            w.log(r)?;
        }
        // A record larger than a segment gets one of its own.
        w.log(&[7u8; 10_000])?;
        w.close()?;
        let (got, out) = read_all(tmp.path())?;
        assert_eq!(&got[..200], &recs[..]);
        assert_eq!(got[200].len(), 10_000);
        assert!(out.segments > 5);
        assert!(out.repair.is_none());
        Ok(())
    }

    #[test]
    fn checkpoint_keeps_filtered_records_and_replays_them_first() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let mut w = Wal::open(tmp.path(), WalOptions::default())?;
        for i in 0..10u8 {
            w.log(&[i])?;
        }
        let closed = w.next_segment()?;
        w.log(&[100])?;
        let stats = checkpoint(tmp.path(), closed, |p| Ok((p[0] % 2 == 0).then(|| vec![p[0], 0])))?;
        assert_eq!((stats.records_read, stats.records_kept), (10, 5));
        assert_eq!(w.remove_segments_upto(closed)?, 1);
        let (got, out) = read_all(tmp.path())?;
        assert_eq!(out.checkpoint, Some(closed));
        assert_eq!(got, vec![vec![0, 0], vec![2, 0], vec![4, 0], vec![6, 0], vec![8, 0], vec![100]]);
        // A second checkpoint folds in the first.
        let closed2 = w.next_segment()?;
        checkpoint(tmp.path(), closed2, |p| Ok(Some(p.to_vec())))?;
        w.remove_segments_upto(closed2)?;
        let (got2, out2) = read_all(tmp.path())?;
        assert_eq!(got2, got);
        assert_eq!(out2.checkpoint, Some(closed2));
        assert!(!tmp.path().join(format!("checkpoint.{}", segment_name(closed))).exists());
        Ok(())
    }

    #[test]
    fn apply_errors_name_the_record() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let mut w = Wal::open(tmp.path(), WalOptions::default())?;
        w.log(b"ok")?;
        w.log(b"bad")?;
        w.close()?;
        let err = replay(tmp.path(), |p| if p == b"bad" { Err("nope".into()) } else { Ok(()) }).unwrap_err();
        assert!(matches!(err, WalError::Apply { offset: 22, .. }), "{err}");
        Ok(())
    }
}
