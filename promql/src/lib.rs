//! PromQL parser and evaluator over model read traits.
//!
//! - [`parser`] turns query text into an [`ast::Expr`] (every node carries a
//!   byte [`Span`]) and type-checks it the way Prometheus 3 does at parse
//!   time; [`ParseError`] carries the position and draws a caret. Query
//!   length and nesting depth are limited ([`ParseOptions`]).
//! - [`printer`] turns an AST back into PromQL that parses to the same tree.
//! - [`Engine`] evaluates instant and range queries over any
//!   [`model::Queryable`]: 5m lookback, staleness markers, left-open range
//!   windows, rate extrapolation, subqueries, `@`, vector matching, delayed
//!   `__name__` removal, classic-histogram functions, `info()`, and
//!   Prometheus's warning/info annotations. Sample and time limits fail
//!   with an [`EvalError`].
//!
//! Not supported: native histograms and start timestamps (the model's
//! samples are floats without start times).
//!
//! ```
//! use model::{mem::MemStore, Labels};
//! use promql::{Engine, EngineOptions, Value};
//!
//! let store = MemStore::new();
//! let up = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
//! for i in 0..10 {
//!     store.append(&up, i * 15_000, i as f64);
//! }
//! let engine = Engine::new(EngineOptions::default());
//! let result = engine.instant_query(&store, "sum by (job) (up) * 2", 135_000)?;
//! match result.value {
//!     Value::Vector(v) => assert_eq!(v[0].value, 18.0),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod ast;
pub mod engine;
pub mod functions;
pub mod http_api;
pub mod lexer;
pub mod parser;
pub mod printer;
#[cfg(feature = "rules")]
pub mod rules;
pub mod value;

pub use ast::{Expr, Span, ValueType};
pub use engine::{Engine, EngineOptions, EvalError, QueryResult};
pub use parser::{parse, parse_with, ParseError, ParseOptions};
pub use printer::print;
pub use value::{Annotation, Value};
