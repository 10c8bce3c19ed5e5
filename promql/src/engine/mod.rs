//! The PromQL evaluation engine.
//!
//! The engine evaluates an [`Expr`] step by step over any
//! [`model::Queryable`]. Before evaluating, it works out the time range
//! every selector needs (through offsets, `@` and subqueries), loads those
//! series once, and then evaluates the tree at each step.
//!
//! Range queries take shortcuts that give the same results:
//! - an instant selector read only at the query's steps keeps, per series,
//!   just the samples some step picks;
//! - such selectors, and window functions (`rate`, `*_over_time`, ...) of
//!   matrix selectors read only at the steps, are worked out for all steps
//!   at once, series by series, into step tables; `sum`/`count`/`avg`/
//!   `min`/`max`/`group` over them (or over a comparison of them with a
//!   number) fold table rows without building intermediate vectors;
//! - large selections are read on several threads
//!   ([`EngineOptions::parallelism`]): the selected series' iterators are
//!   `Send`, so parts of them go to a small pool of loading threads.

mod aggregate;
mod binary;
mod eval;
mod functions;

use crate::ast::{Expr, Span};
use crate::parser::{self, ParseError, ParseOptions};
use crate::value::{Annotation, Value};
use model::{Queryable, StorageError};
use std::time::Duration;

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (default 5m).
    pub lookback_delta: Duration,
    /// Most samples a query may hold in memory at once.
    pub max_samples: usize,
    /// Longest a query may run.
    pub timeout: Duration,
    /// Step of subqueries written without one (`[1h:]`), default 1m.
    pub default_subquery_step: Duration,
    /// Keep `__name__` until the end of evaluation and drop it only then
    /// (Prometheus's `promql-delayed-name-removal`).
    pub delayed_name_removal: bool,
    /// Parser limits.
    pub parse: ParseOptions,
    /// Prometheus 2.x window semantics: range windows and the lookback of
    /// instant selectors include a sample exactly at their start
    /// (`[t - range, t]`), where Prometheus 3 (the default, `false`)
    /// excludes it (`(t - range, t]`). For comparing results with a 2.x
    /// server; the conformance scripts assume `false`.
    pub closed_windows: bool,
    /// Threads a query may use to read large selections from storage (the
    /// calling thread included; 1 reads everything on the calling thread).
    /// Parts beyond the first go to a pool of loading threads the engine
    /// starts on first use (one fewer than the machine's cores), shared by
    /// all queries. Default: the available parallelism, at most 4.
    pub parallelism: usize,
    /// Read the start timestamps storages keep with samples (Prometheus's
    /// `use-start-timestamps`): `rate`, `increase`, `irate` and `resets`
    /// then also see resets and counter starts they imply, and
    /// `start_timestamp()` returns them. Series without start timestamps
    /// evaluate the same either way. When off, start timestamps are not
    /// read and `start_timestamp()` gives 0. Default: on.
    pub use_start_timestamps: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
            delayed_name_removal: true,
            parse: ParseOptions::default(),
            closed_windows: false,
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            use_start_timestamps: true,
        }
    }
}

/// The largest |timestamp| a query may use, in ms (2^60, about 36 million
/// years from the epoch): keeps time arithmetic far from overflow.
pub const MAX_TIME_MS: i64 = 1 << 60;

fn check_time(t: i64) -> Result<(), EvalError> {
    if t.unsigned_abs() > MAX_TIME_MS as u64 {
        return Err(EvalError::BadParams(format!("timestamp {t} ms is out of range")));
    }
    Ok(())
}

/// An error while running a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The query does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The storage failed.
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
    /// The query would hold more samples than allowed.
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    /// The query ran out of time.
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// A runtime error with Prometheus's message (duplicate series, bad
    /// parameters, ...); `span` is the expression it is about.
    #[error("{message}")]
    Runtime {
        /// The message.
        message: String,
        /// The expression.
        span: Span,
    },
    /// Bad query parameters (step, range).
    #[error("invalid query parameters: {0}")]
    BadParams(String),
}

impl EvalError {
    pub(crate) fn rt(message: impl Into<String>, span: Span) -> Self {
        EvalError::Runtime { message: message.into(), span }
    }
}

/// The value of a query plus its annotations.
#[derive(Clone, Debug)]
pub struct QueryResult {
    /// The result.
    pub value: Value,
    /// Warnings and info notes, in the order they were raised (deduplicated).
    pub annotations: Vec<Annotation>,
}

/// A PromQL engine: options plus query entry points.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    /// An engine with these options.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Parses and evaluates `query` at time `t` (ms).
    pub fn instant_query(&self, store: &dyn Queryable, query: &str, t: i64) -> Result<QueryResult, EvalError> {
        let expr = parser::parse_with(query, &self.opts.parse)?;
        self.instant_expr(store, &expr, t)
    }

    /// Parses and evaluates `query` over `[start, end]` (ms) every `step` ms.
    pub fn range_query(&self, store: &dyn Queryable, query: &str, start: i64, end: i64, step: i64) -> Result<QueryResult, EvalError> {
        let expr = parser::parse_with(query, &self.opts.parse)?;
        self.range_expr(store, &expr, start, end, step)
    }

    /// Evaluates a parsed expression at time `t` (ms).
    pub fn instant_expr(&self, store: &dyn Queryable, expr: &Expr, t: i64) -> Result<QueryResult, EvalError> {
        check_time(t)?;
        eval::run(&self.opts, store, expr, t, t, 0, true)
    }

    /// Evaluates a parsed expression as a range query.
    pub fn range_expr(&self, store: &dyn Queryable, expr: &Expr, start: i64, end: i64, step: i64) -> Result<QueryResult, EvalError> {
        if step <= 0 {
            return Err(EvalError::BadParams("zero or negative query resolution step widths are not accepted".into()));
        }
        check_time(start)?;
        check_time(end)?;
        if end < start {
            return Err(EvalError::BadParams("end timestamp must not be before start time".into()));
        }
        if (end - start) / step > 11_000 {
            return Err(EvalError::BadParams("exceeded maximum resolution of 11,000 points per timeseries".into()));
        }
        eval::run(&self.opts, store, expr, start, end, step, false)
    }
}
