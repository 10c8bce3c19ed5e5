//! Error types, one per operation.

use std::path::PathBuf;
use thiserror::Error;

/// An error loading or validating a monitor configuration.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The document is not valid YAML or has the wrong shape at top level.
    #[error("config is not valid YAML: {0}")]
    Yaml(#[source] serde_yaml::Error),
    /// A monitor entry does not have the expected shape (unknown field,
    /// wrong type, ...). `name` is the monitor's name when it could be read.
    #[error("monitor #{index}{}: {source}", name.as_deref().map(|n| format!(" ({n:?})")).unwrap_or_default())]
    MonitorShape {
        /// Position in the `monitors` list (0-based).
        index: usize,
        /// The monitor's name, when present.
        name: Option<String>,
        /// The cause.
        #[source]
        source: serde_yaml::Error,
    },
    /// A monitor field has an invalid value.
    #[error("monitor {monitor:?}: field `{field}`: {reason}")]
    Field {
        /// The monitor's name (or `#index` when it has none).
        monitor: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Two monitors share a name.
    #[error("monitor name {0:?} is used more than once")]
    DuplicateName(String),
    /// Two push monitors share a token.
    #[error("push token of monitor {0:?} is already used by another monitor")]
    DuplicatePushToken(String),
    /// A top-level setting is invalid.
    #[error("config field `{field}`: {reason}")]
    Setting {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// An error reading or writing the heartbeat history file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// An I/O error on the history file.
    #[error("history file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A complete (newline-terminated) line is not a valid record.
    #[error("history file {path}: line {line} (byte offset {offset}) is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Byte offset of the start of the line.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// An error preparing a check from its configuration (reading a CA file,
/// building a TLS configuration).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The CA file could not be read or holds no certificate.
    #[error("monitor {monitor:?}: CA file {path}: {reason}")]
    CaFile {
        /// The monitor.
        monitor: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The TLS configuration could not be built.
    #[error("monitor {monitor:?}: TLS setup: {reason}")]
    Tls {
        /// The monitor.
        monitor: String,
        /// What is wrong.
        reason: String,
    },
}

/// An error starting or running the scheduler.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// A check could not be prepared.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The history file failed.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// A worker thread could not be started.
    #[error("starting worker thread: {0}")]
    Spawn(#[source] std::io::Error),
}
