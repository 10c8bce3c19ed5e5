//! Errors of the database's operations: one enum per operation.

use crate::wal::WalError;
use model::Labels;
use std::path::PathBuf;

/// Why [`Db::open`](crate::Db::open) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process (or another `Db` in this one) holds the directory.
    #[error("data directory {dir} is locked by another process ({lock})")]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The WAL could not be read (corruption in the middle, a missing
    /// segment, ...).
    #[error("replaying the WAL: {0}")]
    Wal(#[from] WalError),
    /// A block could not be opened.
    #[error("opening block {dir}: {source}")]
    Block {
        /// The block directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The options are inconsistent.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
}

/// Why a sample was rejected by [`Appender::append`](crate::Appender::append).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The sample is older than the newest sample of its series.
    #[error("out-of-order sample for {labels}: timestamp {t} is before the series' newest sample at {last_t}")]
    OutOfOrder {
        /// The series.
        labels: Labels,
        /// The rejected timestamp, ms.
        t: i64,
        /// The series' newest timestamp, ms.
        last_t: i64,
    },
    /// The series already has a sample at this timestamp.
    #[error("duplicate sample for {labels} at timestamp {t} ({})", if *.same_value { "same value" } else { "different value" })]
    Duplicate {
        /// The series.
        labels: Labels,
        /// The timestamp, ms.
        t: i64,
        /// Whether the value equals the stored one.
        same_value: bool,
    },
    /// The sample falls in a time range already persisted to a block.
    #[error("sample for {labels} at {t} is out of bounds: the head accepts timestamps from {min_valid_time}")]
    OutOfBounds {
        /// The series.
        labels: Labels,
        /// The timestamp, ms.
        t: i64,
        /// The oldest accepted timestamp, ms.
        min_valid_time: i64,
    },
    /// The label set is empty.
    #[error("empty label set")]
    EmptyLabels,
    /// A label name or the metric name is invalid.
    #[error("invalid labels {labels}: {reason}")]
    InvalidLabels {
        /// The labels.
        labels: Labels,
        /// What is wrong.
        reason: String,
    },
    /// `append_ref` with a reference the head does not know (never handed
    /// out, or its series was removed after being persisted).
    #[error("unknown series reference {0}")]
    UnknownRef(u64),
}

/// Why [`Appender::commit`](crate::Appender::commit) failed. Nothing of the
/// batch was published when this is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// Writing or syncing the WAL failed.
    #[error("writing the WAL: {0}")]
    Wal(#[from] WalError),
    /// The database was closed.
    #[error("the database is closed")]
    Closed,
}

/// Why persisting, compaction or retention failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// Writing a block failed.
    #[error("writing block for [{mint}, {maxt}]: {source}")]
    WriteBlock {
        /// Inclusive start, ms.
        mint: i64,
        /// Inclusive end, ms.
        maxt: i64,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// Reading head data for a block failed.
    #[error("reading the head: {0}")]
    Read(#[from] model::StorageError),
    /// Compacting blocks failed.
    #[error("compacting blocks: {0}")]
    Compact(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// Truncating the WAL (checkpoint) failed.
    #[error("truncating the WAL: {0}")]
    Wal(#[from] WalError),
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database was closed.
    #[error("the database is closed")]
    Closed,
}
