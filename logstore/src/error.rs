//! Error types, one per operation, and the reasons an entry is rejected.

use model::Labels;
use std::fmt;
use std::path::PathBuf;
use tsdb::fs::IoError;
use tsdb::wal::WalError;

/// A damaged or unreadable chunk file, with the place of the damage.
#[derive(Debug, thiserror::Error)]
#[error("corrupt chunk file {} at offset {offset}: {reason}", path.display())]
#[non_exhaustive]
pub struct ChunkError {
    /// The chunk file.
    pub path: PathBuf,
    /// Byte offset of the damaged structure.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// Opening a store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A chunk file is damaged.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// The WAL could not be read or opened (corruption names file and
    /// offset).
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The retention watermark file is damaged.
    #[error("corrupt retention file {}: {reason}", path.display())]
    Retention {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// zstd could not allocate a context.
    #[error("zstd context: {0}")]
    Zstd(#[source] std::io::Error),
}

/// A push failed as a whole (nothing of it was stored).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// Writing the WAL failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// Compressing a block failed.
    #[error("compressing a block: {0}")]
    Compress(#[source] std::io::Error),
    /// The store was closed.
    #[error("the log store is closed")]
    Closed,
}

/// Flushing head blocks to a chunk file failed; the data stays in memory
/// and in the WAL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The WAL could not be rotated or truncated.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The chunk file just written could not be read back.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// Compressing a block failed.
    #[error("compressing a block: {0}")]
    Compress(#[source] std::io::Error),
    /// The store was closed.
    #[error("the log store is closed")]
    Closed,
}

/// Applying retention failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The store was closed.
    #[error("the log store is closed")]
    Closed,
}

/// Closing the store failed (the final flush or WAL sync).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloseError {
    /// The final flush failed; the WAL still holds the data.
    #[error(transparent)]
    Flush(#[from] FlushError),
    /// Syncing the WAL failed.
    #[error(transparent)]
    Wal(#[from] WalError),
}

/// Why one entry was not stored. The messages follow Loki's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// The entry is older than the stream's out-of-order window.
    TooFarBehind {
        /// The entry's timestamp (ns).
        ts: i64,
        /// The oldest timestamp the stream accepts now (ns).
        oldest_acceptable: i64,
    },
    /// The entry is older than the retention watermark.
    OlderThanRetention {
        /// The entry's timestamp (ns).
        ts: i64,
        /// Entries before this (ns) are deleted.
        cutoff: i64,
    },
    /// The line is longer than `max_line_size`.
    LineTooLong {
        /// The line length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The stream has more labels than `max_labels_per_stream`.
    TooManyLabels {
        /// Number of labels.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Accepting the stream would exceed `max_streams`.
    StreamLimit {
        /// The limit.
        limit: usize,
    },
    /// The stream has no labels.
    NoLabels,
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*`.
    InvalidLabelName(String),
}

impl RejectReason {
    /// A short machine-friendly name (as Loki's discarded-samples reasons).
    pub fn kind(&self) -> &'static str {
        match self {
            RejectReason::TooFarBehind { .. } => "out_of_order",
            RejectReason::OlderThanRetention { .. } => "greater_than_max_sample_age",
            RejectReason::LineTooLong { .. } => "line_too_long",
            RejectReason::TooManyLabels { .. } => "max_label_names_per_series",
            RejectReason::StreamLimit { .. } => "stream_limit",
            RejectReason::NoLabels => "missing_labels",
            RejectReason::InvalidLabelName(_) => "invalid_labels",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::TooFarBehind { ts, oldest_acceptable } => write!(
                f,
                "entry too far behind, entry timestamp is: {}, oldest acceptable timestamp is: {}",
                Rfc3339(*ts),
                Rfc3339(*oldest_acceptable)
            ),
            RejectReason::OlderThanRetention { ts, cutoff } => write!(
                f,
                "entry too old, entry timestamp is: {}, entries before {} are past the retention period",
                Rfc3339(*ts),
                Rfc3339(*cutoff)
            ),
            RejectReason::LineTooLong { len, limit } => write!(
                f,
                "max entry size '{limit}' bytes exceeded while adding an entry with length '{len}' bytes"
            ),
            RejectReason::TooManyLabels { count, limit } => {
                write!(f, "entry for stream has {count} label names; limit {limit}")
            }
            RejectReason::StreamLimit { limit } => write!(
                f,
                "maximum active stream limit exceeded ({limit} streams): reduce the number of streams \
                 (fewer labels or label values) or raise the limit"
            ),
            RejectReason::NoLabels => f.write_str("error at least one label pair is required per stream"),
            RejectReason::InvalidLabelName(n) => write!(f, "invalid label name {n:?}"),
        }
    }
}

/// One rejected entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The stream the entry was pushed to.
    pub labels: Labels,
    /// The entry's timestamp (ns).
    pub ts: i64,
    /// Why it was rejected.
    pub reason: RejectReason,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream {}: {}", self.labels, self.reason)
    }
}

/// Formats nanoseconds since the epoch as RFC 3339 in UTC with
/// nanoseconds, as Go's `time.Time` prints in Loki's messages.
pub(crate) struct Rfc3339(pub i64);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", sod / 3600, (sod / 60) % 60, sod % 60)?;
        if nanos != 0 {
            let mut s = format!("{nanos:09}");
            while s.ends_with('0') {
                s.pop();
            }
            write!(f, ".{s}")?;
        }
        f.write_str("Z")
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_like_go() {
        assert_eq!(Rfc3339(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Rfc3339(1_700_000_000_123_000_000).to_string(), "2023-11-14T22:13:20.123Z");
        assert_eq!(Rfc3339(-1).to_string(), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(Rfc3339(951_782_400 * 1_000_000_000).to_string(), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn too_far_behind_message_is_lokis() {
        let r = RejectReason::TooFarBehind { ts: 0, oldest_acceptable: 3_600_000_000_000 };
        assert_eq!(
            r.to_string(),
            "entry too far behind, entry timestamp is: 1970-01-01T00:00:00Z, oldest acceptable timestamp is: 1970-01-01T01:00:00Z"
        );
    }
}
