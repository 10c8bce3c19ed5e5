//! Errors of collectors and of the registry.

use std::path::PathBuf;

/// A parse failure inside one kernel file, without the path (the pure
/// parsers in `procfs` and `sysfs` do not know where their text came from).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct ParseError {
    /// 1-based line number in the parsed text (0 when not line related).
    pub line: usize,
    /// What was wrong.
    pub msg: String,
}

impl ParseError {
    /// A parse error at `line` (1-based).
    pub fn new(line: usize, msg: impl Into<String>) -> Self {
        ParseError { line, msg: msg.into() }
    }
}

/// Everything that can go wrong while collecting metrics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file or a directory failed.
    #[error("reading {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A kernel (or textfile) file did not have the expected shape.
    #[error("parsing {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and what.
        #[source]
        source: ParseError,
    },
    /// A collector found nothing to report (node_exporter's `ErrNoData`):
    /// the scrape goes on, the collector reports `success 0`.
    #[error("collector {collector} has no data: {reason}")]
    NoData {
        /// The collector's name.
        collector: &'static str,
        /// Why.
        reason: String,
    },
    /// A collector name given to the registry is unknown.
    #[error("unknown collector {0:?}")]
    UnknownCollector(String),
    /// A regular expression option did not compile.
    #[error("invalid regular expression for --{option}")]
    Regex {
        /// The option (flag name).
        option: &'static str,
        /// The cause.
        #[source]
        source: regex_lite::Error,
    },
    /// Writing the exposition output failed.
    #[error("writing metrics")]
    Write(#[source] std::io::Error),
}

impl Error {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Wraps a parse error with its path.
    pub fn parse(path: impl Into<PathBuf>, source: ParseError) -> Self {
        Error::Parse { path: path.into(), source }
    }

    /// The message with all its causes, `: `-separated (for logs and for
    /// the registry's outcome report).
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(self);
        while let Some(e) = cur {
            s.push_str(": ");
            s.push_str(&e.to_string());
            cur = e.source();
        }
        s
    }

    /// True when the error is "file or directory not found".
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}
