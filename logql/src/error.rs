//! Error types.

use model::StorageError;

/// A query that does not parse or is not valid LogQL.
///
/// Displays in Loki's style:
/// `parse error at line 1, col 12: syntax error: unexpected ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at line {line}, col {col}: {msg}")]
#[non_exhaustive]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    /// Byte offset in the query.
    pub offset: usize,
    /// What is wrong.
    pub msg: String,
}

impl ParseError {
    /// An error at byte `offset` of `src`.
    pub fn at(src: &str, offset: usize, msg: impl Into<String>) -> Self {
        let offset = offset.min(src.len());
        let before = src.get(..offset).unwrap_or(src);
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseError { line, col, offset, msg: msg.into() }
    }
}

/// A query that failed while running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The query text is invalid.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A line failed a pipeline stage and no `__error__` filter dropped it.
    #[error(
        "pipeline error: '{error}' for series: '{series}'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"{error}\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )."
    )]
    Pipeline {
        /// The `__error__` value.
        error: String,
        /// The series, with `__error_details__`.
        series: String,
    },
    /// Vector matching found duplicates or ambiguous matches.
    #[error("{0}")]
    Matching(String),
    /// The query hit a limit (series, entries).
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// The query ran longer than its timeout.
    #[error("query timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// Invalid request parameters (times, step, direction).
    #[error("invalid request: {0}")]
    BadRequest(String),
}
