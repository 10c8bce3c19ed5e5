//! The LogQL syntax tree, with byte spans into the query text, and a
//! printer (`Display`) that writes a query back in canonical form (the
//! printed form parses to the same tree).

use crate::units::{format_duration, IpPattern};
use model::{escape_label_value, MatchType, Matcher};
use std::fmt;

/// A byte range `[start, end)` in the query text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// A whole query: a log query or a metric query.
#[derive(Clone, Debug)]
pub enum Expr {
    /// A log query returning streams.
    Log(LogExpr),
    /// A metric query returning vectors, matrices or scalars.
    Sample(SampleExpr),
}

/// A stream selector and its pipeline.
#[derive(Clone, Debug)]
pub struct LogExpr {
    /// The `{...}` matchers.
    pub matchers: Vec<Matcher>,
    /// Stages in order.
    pub pipeline: Vec<StageNode>,
    /// Where the expression is.
    pub span: Span,
}

/// The operator of a line filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFilterOp {
    /// `|=` substring.
    Contains,
    /// `!=` no substring.
    NotContains,
    /// `|~` regex (unanchored).
    Regex,
    /// `!~` negated regex.
    NotRegex,
    /// `|>` pattern.
    Pattern,
    /// `!>` negated pattern.
    NotPattern,
}

impl LineFilterOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            LineFilterOp::Contains => "|=",
            LineFilterOp::NotContains => "!=",
            LineFilterOp::Regex => "|~",
            LineFilterOp::NotRegex => "!~",
            LineFilterOp::Pattern => "|>",
            LineFilterOp::NotPattern => "!>",
        }
    }

    /// Whether the filter drops matching lines.
    pub fn is_negative(self) -> bool {
        matches!(self, LineFilterOp::NotContains | LineFilterOp::NotRegex | LineFilterOp::NotPattern)
    }
}

/// One operand of a line filter.
#[derive(Clone, Debug, PartialEq)]
pub enum FilterValue {
    /// A string (substring, regex or pattern by the operator).
    Str(String),
    /// `ip("...")`.
    Ip(IpPattern),
}

/// A line filter with its `or` operands.
#[derive(Clone, Debug, PartialEq)]
pub struct LineFilter {
    /// The operator shared by every operand.
    pub op: LineFilterOp,
    /// Operands joined by `or` (at least one).
    pub values: Vec<FilterValue>,
}

/// A `json`/`logfmt` extraction parameter: `label="expression"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extraction {
    /// Label to set.
    pub label: String,
    /// Path (json) or key (logfmt).
    pub expr: String,
}

/// A parser stage.
#[derive(Clone, Debug, PartialEq)]
pub enum ParserStage {
    /// `json` with optional extraction parameters.
    Json(Vec<Extraction>),
    /// `logfmt` with flags and optional parameters.
    Logfmt {
        /// `--strict`.
        strict: bool,
        /// `--keep-empty`.
        keep_empty: bool,
        /// Parameters.
        params: Vec<Extraction>,
    },
    /// `regexp "..."`.
    Regexp(String),
    /// `pattern "..."`.
    Pattern(String),
    /// `unpack`.
    Unpack,
}

/// A comparison of a converting label filter or a binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==` (or `=` in label filters).
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }

    /// Applies the comparison.
    pub fn apply<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }
}

/// A label filter expression.
#[derive(Clone, Debug)]
pub enum LabelFilter {
    /// Both must hold (`and`, `,` or juxtaposition).
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// Either holds; the right side is not evaluated when the left holds.
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// `name op "value"` over strings.
    Matcher(Matcher),
    /// `name op number`.
    Number {
        /// Label.
        name: String,
        /// Comparison.
        op: CmpOp,
        /// Literal.
        value: f64,
    },
    /// `name op duration` (value in nanoseconds).
    Duration {
        /// Label.
        name: String,
        /// Comparison.
        op: CmpOp,
        /// Literal in nanoseconds.
        value: f64,
    },
    /// `name op bytes`.
    Bytes {
        /// Label.
        name: String,
        /// Comparison.
        op: CmpOp,
        /// Literal in bytes.
        value: u64,
    },
    /// `name = ip("...")` / `name != ip("...")`.
    Ip {
        /// Label.
        name: String,
        /// `!=`.
        negate: bool,
        /// The pattern.
        pattern: IpPattern,
    },
}

/// One `label_format` assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelFmt {
    /// `dst=src`: rename.
    Rename {
        /// New name.
        dst: String,
        /// Old name.
        src: String,
    },
    /// `dst="template"`.
    Template {
        /// Label to set.
        dst: String,
        /// The template text.
        template: String,
    },
}

/// One `drop`/`keep` item: a bare name or a matcher.
#[derive(Clone, Debug, PartialEq)]
pub enum NameOrMatcher {
    /// A label name.
    Name(String),
    /// A matcher on a label.
    Matcher(Matcher),
}

/// A pipeline stage with where it is in the query.
#[derive(Clone, Debug)]
pub struct StageNode {
    /// The stage.
    pub stage: Stage,
    /// Where (from its `|` or filter operator to its end).
    pub span: Span,
}

/// A pipeline stage.
#[derive(Clone, Debug)]
pub enum Stage {
    /// A line filter.
    LineFilter(LineFilter),
    /// A parser.
    Parser(ParserStage),
    /// A label filter.
    LabelFilter(LabelFilter),
    /// `line_format "template"`.
    LineFormat(String),
    /// `label_format ...`.
    LabelFormat(Vec<LabelFmt>),
    /// `drop ...`.
    Drop(Vec<NameOrMatcher>),
    /// `keep ...`.
    Keep(Vec<NameOrMatcher>),
    /// `decolorize`.
    Decolorize,
}

/// The conversion of an unwrapped label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnwrapConv {
    /// A float.
    None,
    /// `duration(label)` / `duration_seconds(label)`: seconds.
    Duration,
    /// `bytes(label)`.
    Bytes,
}

/// `| unwrap label` with post-unwrap label filters.
#[derive(Clone, Debug)]
pub struct Unwrap {
    /// The label to read.
    pub label: String,
    /// The conversion.
    pub conv: UnwrapConv,
    /// Label filters after the unwrap.
    pub post_filters: Vec<LabelFilter>,
}

/// A log range: `{...} | pipeline [range] offset o`.
#[derive(Clone, Debug)]
pub struct LogRange {
    /// The log expression.
    pub log: LogExpr,
    /// The unwrap, if any.
    pub unwrap: Option<Unwrap>,
    /// Range in nanoseconds.
    pub range: i64,
    /// Offset in nanoseconds.
    pub offset: i64,
    /// Whether the log expression was parenthesised (`(...)[1m]`).
    pub paren: bool,
}

/// A range aggregation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum RangeOp {
    Rate,
    RateCounter,
    CountOverTime,
    BytesRate,
    BytesOverTime,
    AbsentOverTime,
    SumOverTime,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    FirstOverTime,
    LastOverTime,
}

impl RangeOp {
    /// All functions with their names.
    pub const ALL: [(RangeOp, &'static str); 15] = [
        (RangeOp::Rate, "rate"),
        (RangeOp::RateCounter, "rate_counter"),
        (RangeOp::CountOverTime, "count_over_time"),
        (RangeOp::BytesRate, "bytes_rate"),
        (RangeOp::BytesOverTime, "bytes_over_time"),
        (RangeOp::AbsentOverTime, "absent_over_time"),
        (RangeOp::SumOverTime, "sum_over_time"),
        (RangeOp::AvgOverTime, "avg_over_time"),
        (RangeOp::MinOverTime, "min_over_time"),
        (RangeOp::MaxOverTime, "max_over_time"),
        (RangeOp::StddevOverTime, "stddev_over_time"),
        (RangeOp::StdvarOverTime, "stdvar_over_time"),
        (RangeOp::QuantileOverTime, "quantile_over_time"),
        (RangeOp::FirstOverTime, "first_over_time"),
        (RangeOp::LastOverTime, "last_over_time"),
    ];

    /// The function name.
    pub fn name(self) -> &'static str {
        RangeOp::ALL.iter().find(|(o, _)| *o == self).map_or("", |(_, n)| n)
    }

    /// Looks a function up by name.
    pub fn from_name(s: &str) -> Option<RangeOp> {
        RangeOp::ALL.iter().find(|(_, n)| *n == s).map(|(o, _)| *o)
    }
}

/// A vector aggregation operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum VectorOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    /// `approx_topk`: evaluated exactly (an exact answer is within any
    /// approximation bound); instant queries only, no `without`.
    ApproxTopk,
    Sort,
    SortDesc,
}

impl VectorOp {
    /// All operators with their names.
    pub const ALL: [(VectorOp, &'static str); 12] = [
        (VectorOp::Sum, "sum"),
        (VectorOp::Avg, "avg"),
        (VectorOp::Min, "min"),
        (VectorOp::Max, "max"),
        (VectorOp::Count, "count"),
        (VectorOp::Stddev, "stddev"),
        (VectorOp::Stdvar, "stdvar"),
        (VectorOp::Topk, "topk"),
        (VectorOp::Bottomk, "bottomk"),
        (VectorOp::ApproxTopk, "approx_topk"),
        (VectorOp::Sort, "sort"),
        (VectorOp::SortDesc, "sort_desc"),
    ];

    /// The operator name.
    pub fn name(self) -> &'static str {
        VectorOp::ALL.iter().find(|(o, _)| *o == self).map_or("", |(_, n)| n)
    }

    /// Looks an operator up by name.
    pub fn from_name(s: &str) -> Option<VectorOp> {
        VectorOp::ALL.iter().find(|(_, n)| *n == s).map(|(o, _)| *o)
    }
}

/// `by (...)` or `without (...)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grouping {
    /// `without` instead of `by`.
    pub without: bool,
    /// The label names.
    pub labels: Vec<String>,
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinOp {
    Or,
    And,
    Unless,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Cmp(CmpOp),
}

impl BinOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Unless => "unless",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Cmp(c) => c.as_str(),
        }
    }

    /// Binding power (higher binds tighter).
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Cmp(_) => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }

    /// `and`, `or`, `unless`.
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::Or | BinOp::And | BinOp::Unless)
    }
}

/// `on`/`ignoring` and `group_left`/`group_right` of a binary operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinModifier {
    /// `bool` after a comparison.
    pub return_bool: bool,
    /// `on (...)` (true) or `ignoring (...)` (false), when present.
    pub matching: Option<(bool, Vec<String>)>,
    /// `group_left (...)` (true) or `group_right (...)` (false), when present.
    pub group: Option<(bool, Vec<String>)>,
}

/// A metric expression.
#[derive(Clone, Debug)]
pub enum SampleExpr {
    /// `op([param,] log_range) [by|without (...)]`.
    RangeAgg {
        /// Function.
        op: RangeOp,
        /// `quantile_over_time`'s parameter.
        param: Option<f64>,
        /// The log range.
        range: Box<LogRange>,
        /// Grouping, where allowed.
        grouping: Option<Grouping>,
        /// Where.
        span: Span,
    },
    /// `op [by|without (...)] ([param,] expr)`.
    VectorAgg {
        /// Operator.
        op: VectorOp,
        /// `topk`/`bottomk` parameter.
        param: Option<f64>,
        /// Operand.
        inner: Box<SampleExpr>,
        /// Grouping.
        grouping: Option<Grouping>,
        /// Where.
        span: Span,
    },
    /// `lhs op rhs`.
    Binary {
        /// Operator.
        op: BinOp,
        /// Modifiers.
        modifier: BinModifier,
        /// Left.
        lhs: Box<SampleExpr>,
        /// Right.
        rhs: Box<SampleExpr>,
        /// Where.
        span: Span,
    },
    /// A number.
    Literal(f64, Span),
    /// `vector(n)`.
    Vector(f64, Span),
    /// `label_replace(expr, "dst", "replacement", "src", "regex")`.
    LabelReplace {
        /// Operand.
        inner: Box<SampleExpr>,
        /// Destination label.
        dst: String,
        /// Replacement with `$1`-style references.
        replacement: String,
        /// Source label.
        src: String,
        /// Anchored regex.
        regex: String,
        /// Where.
        span: Span,
    },
}

impl SampleExpr {
    /// Where the expression is.
    pub fn span(&self) -> Span {
        match self {
            SampleExpr::RangeAgg { span, .. }
            | SampleExpr::VectorAgg { span, .. }
            | SampleExpr::Binary { span, .. }
            | SampleExpr::Literal(_, span)
            | SampleExpr::Vector(_, span)
            | SampleExpr::LabelReplace { span, .. } => *span,
        }
    }
}

/// Writes a Go-style double-quoted string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

fn write_matcher(f: &mut fmt::Formatter<'_>, m: &Matcher) -> fmt::Result {
    write!(f, "{}{}{}", m.name, m.kind, quote(&m.value))
}

impl fmt::Display for LogExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_matcher(f, m)?;
        }
        f.write_str("}")?;
        for s in &self.pipeline {
            write!(f, " {}", s.stage)?;
        }
        Ok(())
    }
}

impl fmt::Display for FilterValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterValue::Str(s) => f.write_str(&quote(s)),
            FilterValue::Ip(p) => write!(f, "ip({})", quote(&p.to_string())),
        }
    }
}

fn write_extractions(f: &mut fmt::Formatter<'_>, params: &[Extraction]) -> fmt::Result {
    for (i, e) in params.iter().enumerate() {
        f.write_str(if i == 0 { " " } else { ", " })?;
        write!(f, "{}={}", e.label, quote(&e.expr))?;
    }
    Ok(())
}

impl fmt::Display for LabelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelFilter::And(a, b) => {
                write_lf_operand(f, a)?;
                f.write_str(" and ")?;
                write_lf_operand(f, b)
            }
            LabelFilter::Or(a, b) => write!(f, "{a} or {b}"),
            LabelFilter::Matcher(m) => write_matcher(f, m),
            LabelFilter::Number { name, op, value } => write!(f, "{name} {} {}", op.as_str(), fmt_num(*value)),
            LabelFilter::Duration { name, op, value } => {
                write!(f, "{name} {} {}", op.as_str(), format_duration(*value as i64))
            }
            LabelFilter::Bytes { name, op, value } => write!(f, "{name} {} {value}B", op.as_str()),
            LabelFilter::Ip { name, negate, pattern } => {
                write!(f, "{name} {} ip({})", if *negate { "!=" } else { "=" }, quote(&pattern.to_string()))
            }
        }
    }
}

fn write_lf_operand(f: &mut fmt::Formatter<'_>, lf: &LabelFilter) -> fmt::Result {
    if matches!(lf, LabelFilter::Or(..)) {
        write!(f, "({lf})")
    } else {
        write!(f, "{lf}")
    }
}

fn write_names_or_matchers(f: &mut fmt::Formatter<'_>, items: &[NameOrMatcher]) -> fmt::Result {
    for (i, it) in items.iter().enumerate() {
        f.write_str(if i == 0 { " " } else { ", " })?;
        match it {
            NameOrMatcher::Name(n) => f.write_str(n)?,
            NameOrMatcher::Matcher(m) => write_matcher(f, m)?,
        }
    }
    Ok(())
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter(lf) => {
                write!(f, "{} ", lf.op.as_str())?;
                for (i, v) in lf.values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{v}")?;
                }
                Ok(())
            }
            Stage::Parser(p) => match p {
                ParserStage::Json(params) => {
                    f.write_str("| json")?;
                    write_extractions(f, params)
                }
                ParserStage::Logfmt { strict, keep_empty, params } => {
                    f.write_str("| logfmt")?;
                    if *strict {
                        f.write_str(" --strict")?;
                    }
                    if *keep_empty {
                        f.write_str(" --keep-empty")?;
                    }
                    write_extractions(f, params)
                }
                ParserStage::Regexp(r) => write!(f, "| regexp {}", quote(r)),
                ParserStage::Pattern(p) => write!(f, "| pattern {}", quote(p)),
                ParserStage::Unpack => f.write_str("| unpack"),
            },
            Stage::LabelFilter(lf) => write!(f, "| {lf}"),
            Stage::LineFormat(t) => write!(f, "| line_format {}", quote(t)),
            Stage::LabelFormat(items) => {
                f.write_str("| label_format")?;
                for (i, it) in items.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { ", " })?;
                    match it {
                        LabelFmt::Rename { dst, src } => write!(f, "{dst}={src}")?,
                        LabelFmt::Template { dst, template } => write!(f, "{dst}={}", quote(template))?,
                    }
                }
                Ok(())
            }
            Stage::Drop(items) => {
                f.write_str("| drop")?;
                write_names_or_matchers(f, items)
            }
            Stage::Keep(items) => {
                f.write_str("| keep")?;
                write_names_or_matchers(f, items)
            }
            Stage::Decolorize => f.write_str("| decolorize"),
        }
    }
}

impl fmt::Display for LogRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut inner = self.log.to_string();
        if let Some(u) = &self.unwrap {
            inner.push_str(" | unwrap ");
            match u.conv {
                UnwrapConv::None => inner.push_str(&u.label),
                UnwrapConv::Duration => inner.push_str(&format!("duration_seconds({})", u.label)),
                UnwrapConv::Bytes => inner.push_str(&format!("bytes({})", u.label)),
            }
            for pf in &u.post_filters {
                inner.push_str(&format!(" | {pf}"));
            }
        }
        if self.paren {
            write!(f, "({inner})[{}]", format_duration(self.range))?;
        } else {
            write!(f, "{inner} [{}]", format_duration(self.range))?;
        }
        if self.offset != 0 {
            write!(f, " offset {}", format_duration(self.offset))?;
        }
        Ok(())
    }
}

impl fmt::Display for Grouping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", if self.without { "without" } else { "by" }, self.labels.join(", "))
    }
}

impl fmt::Display for SampleExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SampleExpr::RangeAgg { op, param, range, grouping, .. } => {
                write!(f, "{}(", op.name())?;
                if let Some(p) = param {
                    write!(f, "{}, ", fmt_num(*p))?;
                }
                write!(f, "{range})")?;
                if let Some(g) = grouping {
                    write!(f, " {g}")?;
                }
                Ok(())
            }
            SampleExpr::VectorAgg { op, param, inner, grouping, .. } => {
                f.write_str(op.name())?;
                if let Some(g) = grouping {
                    write!(f, " {g} ")?;
                }
                f.write_str("(")?;
                if let Some(p) = param {
                    write!(f, "{}, ", fmt_num(*p))?;
                }
                write!(f, "{inner})")
            }
            SampleExpr::Binary { op, modifier, lhs, rhs, .. } => {
                write_operand(f, lhs, *op, false)?;
                write!(f, " {}", op.as_str())?;
                if modifier.return_bool {
                    f.write_str(" bool")?;
                }
                if let Some((on, labels)) = &modifier.matching {
                    write!(f, " {} ({})", if *on { "on" } else { "ignoring" }, labels.join(", "))?;
                }
                if let Some((left, labels)) = &modifier.group {
                    write!(f, " {} ({})", if *left { "group_left" } else { "group_right" }, labels.join(", "))?;
                }
                f.write_str(" ")?;
                write_operand(f, rhs, *op, true)
            }
            SampleExpr::Literal(v, _) => f.write_str(&fmt_num(*v)),
            SampleExpr::Vector(v, _) => write!(f, "vector({})", fmt_num(*v)),
            SampleExpr::LabelReplace { inner, dst, replacement, src, regex, .. } => write!(
                f,
                "label_replace({inner}, {}, {}, {}, {})",
                quote(dst),
                quote(replacement),
                quote(src),
                quote(regex)
            ),
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, e: &SampleExpr, parent: BinOp, right: bool) -> fmt::Result {
    let needs = match e {
        SampleExpr::Binary { op, .. } => {
            let (p, c) = (parent.precedence(), op.precedence());
            // ^ is right-associative, everything else left-associative.
            c < p || (c == p && (right != (parent == BinOp::Pow)))
        }
        SampleExpr::Literal(v, _) => *v < 0.0 || (v.is_sign_negative() && *v == 0.0),
        _ => false,
    };
    if needs {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(l) => write!(f, "{l}"),
            Expr::Sample(s) => write!(f, "{s}"),
        }
    }
}

/// Whether a matcher can only match a non-empty value (so it may anchor a
/// stream selector).
pub(crate) fn matcher_is_selective(m: &Matcher) -> bool {
    !m.matches_empty() && matches!(m.kind, MatchType::Equal | MatchType::Regex)
}

/// Escapes like a label value in a series string.
pub(crate) fn fmt_labels(l: &model::Labels) -> String {
    let mut s = String::from("{");
    for (i, lb) in l.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&format!("{}=\"{}\"", lb.name, escape_label_value(&lb.value)));
    }
    s.push('}');
    s
}
