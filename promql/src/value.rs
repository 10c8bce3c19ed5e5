//! Query results.

use crate::ast::Span;
use model::Labels;
use std::fmt;

/// One sample of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSample {
    /// The series labels.
    pub labels: Labels,
    /// Evaluation timestamp, ms.
    pub t: i64,
    /// The value.
    pub value: f64,
}

/// One series of a range vector (matrix).
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSeries {
    /// The series labels.
    pub labels: Labels,
    /// Points in time order.
    pub points: Vec<model::Sample>,
}

/// The result of a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar at a time.
    Scalar {
        /// Evaluation timestamp, ms.
        t: i64,
        /// The value.
        value: f64,
    },
    /// An instant vector.
    Vector(Vec<VectorSample>),
    /// A range vector, or the result of a range query.
    Matrix(Vec<MatrixSeries>),
    /// A string at a time.
    String {
        /// Evaluation timestamp, ms.
        t: i64,
        /// The value.
        value: String,
    },
}

/// Whether an annotation is a warning or an informational note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnotationKind {
    /// Something is probably wrong with the query or data.
    Warning,
    /// Something may be surprising.
    Info,
}

/// A warning or info annotation attached to a result.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    /// Warning or info.
    pub kind: AnnotationKind,
    /// The message, as Prometheus words it.
    pub message: String,
    /// The expression it is about.
    pub span: Span,
}

impl Annotation {
    /// Renders as Prometheus does: `PromQL warning: <msg> (<line>:<col>)`.
    pub fn render(&self, query: &str) -> String {
        let (line, col) = crate::parser::line_col(query, self.span.start);
        let kind = match self.kind {
            AnnotationKind::Warning => "warning",
            AnnotationKind::Info => "info",
        };
        format!("PromQL {kind}: {} ({line}:{col})", self.message)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Scalar { t, value } => write!(f, "scalar: {value} @[{t}]"),
            Value::String { t, value } => write!(f, "string: {value:?} @[{t}]"),
            Value::Vector(v) => {
                for s in v {
                    writeln!(f, "{} => {} @[{}]", s.labels, s.value, s.t)?;
                }
                Ok(())
            }
            Value::Matrix(m) => {
                for s in m {
                    write!(f, "{} =>", s.labels)?;
                    for p in &s.points {
                        write!(f, " {} @[{}]", p.v, p.t)?;
                    }
                    writeln!(f)?;
                }
                Ok(())
            }
        }
    }
}
