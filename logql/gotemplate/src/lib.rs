//! Go's `text/template` language, for hosts that bring their own data and
//! functions.
//!
//! Prometheus rule annotations (`{{ $labels.instance }}`) and Loki's
//! `line_format` (`{{ .level | ToUpper }}`) are both Go templates with a
//! different function table and different data. This crate holds what
//! they share:
//!
//! - text and actions, with `{{- `/` -}}` trimming and `{{/* comments */}}`
//!   exactly where Go allows them;
//! - actions: pipelines joined by `|`, parentheses, string (`"..."`,
//!   `` `...` ``), character, number (any Go base), `true`/`false`/`nil`
//!   literals, `.`, fields (`.a.b`, `$x.a`, `(f).a`), variables (`$x :=`,
//!   `$x =`, `$`), `if`/`else if`/`else`/`end` and `range`/`else`/`end`
//!   (over lists, maps in key order, integers; with `$e :=` or
//!   `$i, $e :=`);
//! - Go's builtins `and`, `or` (both short-circuit), `not`, `eq` (any
//!   number of operands), `ne`, `lt`, `le`, `gt`, `ge`, `len`, `index`,
//!   `print`, `printf`, `println`;
//! - a [`Value`] type, and errors that carry the byte offset in the text
//!   ([`ParseError`], [`ExecError`]).
//!
//! What differs between hosts is supplied by the caller: the function
//! table and the predefined variables ([`ParserBuilder`]), and at run time
//! an [`Env`]: what `.`, `.Field` and `$name` read, what the functions do,
//! what a missing key reads as, and how values print.
//!
//! Not supported: `with`, `define`, `template`, `block`, `break`,
//! `continue` (they fail to parse), methods, and complex numbers.
//! Comparisons are a little more lenient than Go's: integers and floats
//! compare with each other. `printf`'s numeric verbs also take numeric
//! strings and floats (`%d` truncates).
//!
//! Untrusted text is safe to parse and run: nothing panics, nesting and
//! length are limited when parsing, and steps and output when running
//! (see [`ParserBuilder`]).
//!
//! ```
//! use gotemplate::{Arity, Env, FuncError, ParserBuilder, Value};
//!
//! struct Alert {
//!     host: String,
//!     load: f64,
//! }
//!
//! impl Env for Alert {
//!     fn field(&self, name: &str) -> Option<Value> {
//!         match name {
//!             "Host" => Some(self.host.as_str().into()),
//!             "Load" => Some(self.load.into()),
//!             _ => None,
//!         }
//!     }
//!
//!     fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, FuncError> {
//!         match (name, args.as_slice()) {
//!             ("upper", [Value::Str(s)]) => Ok(s.to_uppercase().into()),
//!             _ => Err(format!("{name} wants a string").into()),
//!         }
//!     }
//! }
//!
//! let parser = ParserBuilder::new().function("upper", Arity::Exact(1)).build();
//! let t = parser.parse("{{ .Host | upper }}: {{ if gt .Load 1.5 -}} high {{- else }}ok{{ end }}")?;
//! let out = t.render(&Alert { host: "db1".into(), load: 2.5 })?;
//! assert_eq!(out, "DB1: high");
//!
//! let err = parser.parse("{{ .Host | lower }}").unwrap_err();
//! assert_eq!(err.to_string(), r#"template: 11: function "lower" not defined"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod builtins;
mod error;
mod exec;
mod fmt;
mod lex;
mod parse;
mod value;

pub use error::{Arity, ExecError, ExecErrorKind, FuncError, ParseError, ParseErrorKind};
pub use exec::Env;
pub use fmt::format_float;
pub use parse::{Parser, ParserBuilder, Template};
pub use value::Value;
