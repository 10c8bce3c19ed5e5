//! The PromQL abstract syntax tree.
//!
//! Every node carries a byte [`Span`] into the query text it was parsed from.
//! Spans are not part of node equality in spirit, so [`Expr::strip_spans`]
//! exists for comparing trees parsed from different texts.

use model::Matcher;
use std::fmt;

/// The largest duration the engine works with, in ms (2^52 ≈ 142,000
/// years); longer ones are clamped.
pub const MAX_DURATION_MS: i64 = 1 << 52;

/// A half-open byte range `[start, end)` into the query text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

/// The type of a PromQL expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// A single number.
    Scalar,
    /// A set of series with one sample each.
    Vector,
    /// A set of series with a range of samples each.
    Matrix,
    /// A string.
    String,
}

impl ValueType {
    /// The name Prometheus uses in error messages.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `@` modifier of a selector or subquery.
#[derive(Clone, Debug, PartialEq)]
pub enum AtModifier {
    /// `@ <unix seconds>`, stored in milliseconds.
    Timestamp(i64),
    /// `@ start()`.
    Start,
    /// `@ end()`.
    End,
}

/// A duration as written in a range, step or offset, possibly computed
/// (`[5m*2]`, `offset (1h/2)`, `[step()]`).
#[derive(Clone, Debug, PartialEq)]
pub enum DurationExpr {
    /// A literal duration (`5m`), in milliseconds.
    Literal(i64),
    /// A plain number of seconds (`300`, `1.5`).
    Number(f64),
    /// `step()`: the query step.
    Step,
    /// `range()`: the query range (end − start).
    Range,
    /// `-d` or `+d`.
    Unary(bool, Box<DurationExpr>),
    /// `a op b` with one of `+ - * / % ^`.
    Binary(BinaryOp, Box<DurationExpr>, Box<DurationExpr>),
    /// `min_of(a, b)`.
    MinOf(Box<DurationExpr>, Box<DurationExpr>),
    /// `max_of(a, b)`.
    MaxOf(Box<DurationExpr>, Box<DurationExpr>),
    /// `( d )`.
    Paren(Box<DurationExpr>),
}

impl DurationExpr {
    /// Whether this is a plain literal (no arithmetic, no step/range).
    pub fn literal_ms(&self) -> Option<i64> {
        match self {
            DurationExpr::Literal(ms) => Some(*ms),
            _ => None,
        }
    }

    /// Whether the expression uses `step()` or `range()`.
    pub fn uses_query_params(&self) -> bool {
        match self {
            DurationExpr::Step | DurationExpr::Range => true,
            DurationExpr::Literal(_) | DurationExpr::Number(_) => false,
            DurationExpr::Unary(_, e) | DurationExpr::Paren(e) => e.uses_query_params(),
            DurationExpr::Binary(_, a, b) | DurationExpr::MinOf(a, b) | DurationExpr::MaxOf(a, b) => {
                a.uses_query_params() || b.uses_query_params()
            }
        }
    }

    /// Evaluates to seconds given the query step and range (both in ms).
    pub fn eval_seconds(&self, step_ms: i64, range_ms: i64) -> f64 {
        match self {
            DurationExpr::Literal(ms) => *ms as f64 / 1000.0,
            DurationExpr::Number(n) => *n,
            DurationExpr::Step => step_ms as f64 / 1000.0,
            DurationExpr::Range => range_ms as f64 / 1000.0,
            DurationExpr::Unary(neg, e) => {
                let v = e.eval_seconds(step_ms, range_ms);
                if *neg {
                    -v
                } else {
                    v
                }
            }
            DurationExpr::Paren(e) => e.eval_seconds(step_ms, range_ms),
            DurationExpr::Binary(op, a, b) => {
                let (a, b) = (a.eval_seconds(step_ms, range_ms), b.eval_seconds(step_ms, range_ms));
                match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    BinaryOp::Div => a / b,
                    BinaryOp::Mod => a % b,
                    BinaryOp::Pow => a.powf(b),
                    _ => f64::NAN,
                }
            }
            DurationExpr::MinOf(a, b) | DurationExpr::MaxOf(a, b) => {
                let (a, b) = (a.eval_seconds(step_ms, range_ms), b.eval_seconds(step_ms, range_ms));
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if matches!(self, DurationExpr::MinOf(..)) {
                    a.min(b)
                } else {
                    a.max(b)
                }
            }
        }
    }

    /// Evaluates to whole milliseconds (rounded toward zero like Prometheus).
    ///
    /// The result is clamped to ±[`MAX_DURATION_MS`] (about 142,000 years)
    /// so that time arithmetic on it cannot overflow.
    pub fn eval_ms(&self, step_ms: i64, range_ms: i64) -> i64 {
        let ms = match self {
            DurationExpr::Literal(ms) => *ms,
            _ => {
                let v = self.eval_seconds(step_ms, range_ms) * 1000.0;
                if v.is_nan() {
                    0
                } else {
                    v as i64
                }
            }
        };
        ms.clamp(-MAX_DURATION_MS, MAX_DURATION_MS)
    }
}

/// A vector selector: `name{matchers} offset d @ t`.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSelector {
    /// The metric name if given outside braces (or as a quoted name inside).
    pub name: Option<String>,
    /// All matchers, including one for the name.
    pub matchers: Vec<Matcher>,
    /// The `offset` modifier.
    pub offset: Option<DurationExpr>,
    /// The `@` modifier.
    pub at: Option<AtModifier>,
    /// `smoothed` on an instant selector: interpolate linearly between the
    /// samples around the evaluation time.
    pub smoothed: bool,
    /// Where it is in the query.
    pub span: Span,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `+`
    Plus,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `</`: trims the upper part of native histograms (no effect on
    /// floats, which are dropped).
    TrimUpper,
    /// `>/`: trims the lower part of native histograms.
    TrimLower,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinaryOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Gt => ">",
            BinaryOp::Lt => "<",
            BinaryOp::Ge => ">=",
            BinaryOp::Le => "<=",
            BinaryOp::TrimUpper => "</",
            BinaryOp::TrimLower => ">/",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Unless => "unless",
        }
    }

    /// Binding strength: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Gt | BinaryOp::Lt | BinaryOp::Ge | BinaryOp::Le => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Atan2 | BinaryOp::TrimUpper | BinaryOp::TrimLower => 5,
            BinaryOp::Pow => 6,
        }
    }

    /// Whether `^`, the only right-associative operator.
    pub fn right_assoc(self) -> bool {
        self == BinaryOp::Pow
    }

    /// `== != > < >= <=`.
    pub fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Gt | BinaryOp::Lt | BinaryOp::Ge | BinaryOp::Le)
    }

    /// `and or unless`.
    pub fn is_set(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }
}

/// Which side of a one-to-many match has the higher cardinality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cardinality {
    /// One-to-one (the default).
    OneToOne,
    /// `group_left`: many on the left.
    ManyToOne,
    /// `group_right`: many on the right.
    OneToMany,
    /// Set operators.
    ManyToMany,
}

/// Vector matching for a binary operation between two vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorMatching {
    /// Cardinality of the match.
    pub card: Cardinality,
    /// `on(...)` (true) or `ignoring(...)` (false).
    pub on: bool,
    /// Whether `on`/`ignoring` was written at all.
    pub explicit: bool,
    /// The `on`/`ignoring` labels.
    pub labels: Vec<String>,
    /// The extra labels of `group_left(...)`/`group_right(...)`.
    pub include: Vec<String>,
}

impl Default for VectorMatching {
    fn default() -> Self {
        VectorMatching { card: Cardinality::OneToOne, on: false, explicit: false, labels: Vec::new(), include: Vec::new() }
    }
}

/// The modifiers of a binary operator.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BinModifier {
    /// `bool` on a comparison.
    pub return_bool: bool,
    /// Vector matching (only meaningful between two vectors).
    pub matching: VectorMatching,
    /// `fill(v)` / `fill_left(v)`: value for a missing left-hand sample.
    pub fill_left: Option<f64>,
    /// `fill(v)` / `fill_right(v)`: value for a missing right-hand sample.
    pub fill_right: Option<f64>,
}

/// Aggregation operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    /// `sum`
    Sum,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `avg`
    Avg,
    /// `group`
    Group,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `count`
    Count,
    /// `count_values`
    CountValues,
    /// `topk`
    Topk,
    /// `bottomk`
    Bottomk,
    /// `quantile`
    Quantile,
    /// `limitk`
    Limitk,
    /// `limit_ratio`
    LimitRatio,
}

impl AggregateOp {
    /// Looks an aggregation up by name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "sum" => AggregateOp::Sum,
            "min" => AggregateOp::Min,
            "max" => AggregateOp::Max,
            "avg" => AggregateOp::Avg,
            "group" => AggregateOp::Group,
            "stddev" => AggregateOp::Stddev,
            "stdvar" => AggregateOp::Stdvar,
            "count" => AggregateOp::Count,
            "count_values" => AggregateOp::CountValues,
            "topk" => AggregateOp::Topk,
            "bottomk" => AggregateOp::Bottomk,
            "quantile" => AggregateOp::Quantile,
            "limitk" => AggregateOp::Limitk,
            "limit_ratio" => AggregateOp::LimitRatio,
            _ => return None,
        })
    }

    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Sum => "sum",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Avg => "avg",
            AggregateOp::Group => "group",
            AggregateOp::Stddev => "stddev",
            AggregateOp::Stdvar => "stdvar",
            AggregateOp::Count => "count",
            AggregateOp::CountValues => "count_values",
            AggregateOp::Topk => "topk",
            AggregateOp::Bottomk => "bottomk",
            AggregateOp::Quantile => "quantile",
            AggregateOp::Limitk => "limitk",
            AggregateOp::LimitRatio => "limit_ratio",
        }
    }

    /// The type of the parameter, if the operator takes one.
    pub fn param_type(self) -> Option<ValueType> {
        match self {
            AggregateOp::CountValues => Some(ValueType::String),
            AggregateOp::Topk
            | AggregateOp::Bottomk
            | AggregateOp::Quantile
            | AggregateOp::Limitk
            | AggregateOp::LimitRatio => Some(ValueType::Scalar),
            _ => None,
        }
    }
}

/// `by (...)` or `without (...)`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Grouping {
    /// `without` (true) or `by` (false).
    pub without: bool,
    /// Whether a clause was written.
    pub explicit: bool,
    /// The labels.
    pub labels: Vec<String>,
}

/// A PromQL expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A number literal.
    Number {
        /// The value.
        value: f64,
        /// Location.
        span: Span,
    },
    /// A string literal.
    String {
        /// The unquoted value.
        value: String,
        /// Location.
        span: Span,
    },
    /// An instant vector selector.
    Vector(VectorSelector),
    /// A range vector selector `sel[range]`.
    Matrix {
        /// The selector (carries offset and `@`).
        selector: VectorSelector,
        /// The range.
        range: DurationExpr,
        /// `anchored` modifier.
        anchored: bool,
        /// `smoothed` modifier.
        smoothed: bool,
        /// Location.
        span: Span,
    },
    /// A subquery `expr[range:step]`.
    Subquery {
        /// The inner expression.
        expr: Box<Expr>,
        /// The range.
        range: DurationExpr,
        /// The step (`None` = the engine default).
        step: Option<DurationExpr>,
        /// The `offset` modifier.
        offset: Option<DurationExpr>,
        /// The `@` modifier.
        at: Option<AtModifier>,
        /// Location.
        span: Span,
    },
    /// `( expr )`.
    Paren {
        /// The inner expression.
        expr: Box<Expr>,
        /// Location.
        span: Span,
    },
    /// `-expr` or `+expr`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        expr: Box<Expr>,
        /// Location.
        span: Span,
    },
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
        /// `bool`, matching and fill modifiers.
        modifier: BinModifier,
        /// Location.
        span: Span,
    },
    /// An aggregation `op by (...) (param, expr)`.
    Aggregate {
        /// The operator.
        op: AggregateOp,
        /// The aggregated expression.
        expr: Box<Expr>,
        /// The parameter of topk/quantile/count_values/...
        param: Option<Box<Expr>>,
        /// The grouping clause.
        grouping: Grouping,
        /// Location.
        span: Span,
    },
    /// A function call.
    Call {
        /// The function name.
        func: String,
        /// The arguments.
        args: Vec<Expr>,
        /// Location.
        span: Span,
    },
    /// A duration expression used as a scalar (`step()`, `range()`,
    /// `min_of(...)`).
    Duration {
        /// The expression.
        expr: DurationExpr,
        /// Location.
        span: Span,
    },
}

impl Expr {
    /// The node's location.
    pub fn span(&self) -> Span {
        match self {
            Expr::Number { span, .. }
            | Expr::String { span, .. }
            | Expr::Matrix { span, .. }
            | Expr::Subquery { span, .. }
            | Expr::Paren { span, .. }
            | Expr::Unary { span, .. }
            | Expr::Binary { span, .. }
            | Expr::Aggregate { span, .. }
            | Expr::Call { span, .. }
            | Expr::Duration { span, .. } => *span,
            Expr::Vector(vs) => vs.span,
        }
    }

    /// The static type of the expression.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::Number { .. } | Expr::Duration { .. } => ValueType::Scalar,
            Expr::String { .. } => ValueType::String,
            Expr::Vector(_) | Expr::Aggregate { .. } => ValueType::Vector,
            Expr::Matrix { .. } | Expr::Subquery { .. } => ValueType::Matrix,
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => expr.value_type(),
            Expr::Binary { lhs, rhs, .. } => {
                if lhs.value_type() == ValueType::Scalar && rhs.value_type() == ValueType::Scalar {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Expr::Call { func, .. } => crate::functions::lookup(func).map(|f| f.ret).unwrap_or(ValueType::Vector),
        }
    }

    /// A copy with every span set to the default, for comparing trees
    /// parsed from different texts.
    pub fn strip_spans(&self) -> Expr {
        let mut e = self.clone();
        e.walk_mut(&mut |n| match n {
            Expr::Number { span, .. }
            | Expr::String { span, .. }
            | Expr::Matrix { span, .. }
            | Expr::Subquery { span, .. }
            | Expr::Paren { span, .. }
            | Expr::Unary { span, .. }
            | Expr::Binary { span, .. }
            | Expr::Aggregate { span, .. }
            | Expr::Call { span, .. }
            | Expr::Duration { span, .. } => {
                *span = Span::default();
                if let Expr::Matrix { selector, .. } = n {
                    selector.span = Span::default();
                }
            }
            Expr::Vector(vs) => vs.span = Span::default(),
        });
        e
    }

    /// Visits every node, parents before children.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Subquery { expr, .. } | Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => expr.walk(f),
            Expr::Binary { lhs, rhs, .. } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            Expr::Aggregate { expr, param, .. } => {
                if let Some(p) = param {
                    p.walk(f);
                }
                expr.walk(f);
            }
            Expr::Call { args, .. } => {
                for a in args {
                    a.walk(f);
                }
            }
            _ => {}
        }
    }

    /// Visits every node mutably, parents before children.
    pub fn walk_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        f(self);
        match self {
            Expr::Subquery { expr, .. } | Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => expr.walk_mut(f),
            Expr::Binary { lhs, rhs, .. } => {
                lhs.walk_mut(f);
                rhs.walk_mut(f);
            }
            Expr::Aggregate { expr, param, .. } => {
                if let Some(p) = param {
                    p.walk_mut(f);
                }
                expr.walk_mut(f);
            }
            Expr::Call { args, .. } => {
                for a in args {
                    a.walk_mut(f);
                }
            }
            _ => {}
        }
    }
}
