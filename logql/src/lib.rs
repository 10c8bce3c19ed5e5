//! LogQL parser and evaluator over model log read traits, and the Loki HTTP API.
//!
//! - [`parse`] turns a query into an [`Expr`] (with byte spans; `Display`
//!   prints it back in canonical form). Errors read like Loki's:
//!   `parse error at line 1, col 12: syntax error: unexpected ...`.
//! - [`Engine`] evaluates log queries (streams) and metric queries (instant
//!   and range) over any [`model::LogQueryable`], with Loki's pipeline
//!   semantics (parsers, label precedence and `_extracted`, `__error__`).
//! - [`http_api`] maps Loki HTTP API requests to queries and results to
//!   Loki's JSON bodies, without doing any I/O; [`push`] decodes (and
//!   encodes) Loki push request bodies, JSON and snappy protobuf.
//!
//! ```
//! use logql::{Engine, QueryParams, QueryResult};
//! use model::{mem::MemLogStore, Labels, LogEntry};
//!
//! let store = MemLogStore::new();
//! let app = Labels::from_pairs([("app", "api")]);
//! for i in 0..6 {
//!     let line = if i % 2 == 0 { "level=error msg=boom" } else { "level=info msg=ok" };
//!     store.push(&app, LogEntry::new(i * 10_000_000_000, line)); // every 10s
//! }
//! let engine = Engine::new(&store);
//!
//! // A metric query at t=60s over the window (0s, 60s].
//! let q = r#"sum by (level) (count_over_time({app="api"} | logfmt [1m]))"#;
//! let QueryResult::Vector(v) = engine.query(q, QueryParams::instant(60_000_000_000))? else { panic!() };
//! assert_eq!(v.len(), 2);
//!
//! // A log query: newest first, limited, grouped by the parsed labels.
//! let q = r#"{app="api"} | logfmt | level="error""#;
//! let params = QueryParams::range(0, 60_000_000_000, 1_000_000_000).with_limit(2);
//! let QueryResult::Streams(s) = engine.query(q, params)? else { panic!() };
//! assert_eq!(s[0].entries.len(), 2);
//! assert_eq!(s[0].entries[0].ts, 40_000_000_000);
//! # Ok::<(), logql::EvalError>(())
//! ```

pub mod ast;
pub mod engine;
pub mod error;
pub mod http_api;
pub mod json;
pub mod lexer;
pub mod parser;
pub mod pattern;
pub mod pipeline;
pub mod push;
pub mod template;
pub mod units;

pub use ast::{Expr, LogExpr, SampleExpr, Span};
pub use engine::{Engine, EngineOptions, MatrixSeries, QueryParams, QueryResult, StreamResult, VectorSample};
pub use error::{EvalError, ParseError};
pub use parser::{parse, parse_sample};
