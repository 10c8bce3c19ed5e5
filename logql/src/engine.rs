//! Query evaluation over a [`LogQueryable`].
//!
//! - Log queries select `[start, end)` in the requested direction, run the
//!   pipeline, keep the first `limit` entries in that direction and group
//!   them into streams by their final label set.
//! - Metric queries evaluate at each step `t` (or once for an instant
//!   query); a range aggregation at `t` covers `(t - offset - range,
//!   t - offset]`. A sample whose series carries `__error__` inside an
//!   evaluated window fails the query, as in Loki.

use crate::ast::*;
use crate::error::EvalError;
use crate::pipeline::{LineLabels, Pipeline, ERROR_LABEL, SAMPLE_EXTRACTION_ERR};
use crate::units::{parse_bytes, parse_go_duration, parse_go_float};
use model::{Direction, Label, Labels, LogEntry, LogQueryable, LogSelectHints, MatchType};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// Limits of a query engine.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Most series a range aggregation may produce (Loki's
    /// `max_query_series`).
    pub max_series: usize,
    /// Largest `limit` a log query may ask for (Loki's
    /// `max_entries_limit_per_query`).
    pub max_entries_limit: usize,
    /// Wall-clock budget of one query.
    pub timeout: Option<Duration>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { max_series: 500, max_entries_limit: 5000, timeout: Some(Duration::from_secs(300)) }
    }
}

/// The parameters of one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryParams {
    /// Start (ns); equals `end` for an instant query.
    pub start: i64,
    /// End (ns).
    pub end: i64,
    /// Step (ns) of a range query.
    pub step: i64,
    /// An instant query (evaluated once, at `start`).
    pub instant: bool,
    /// Entry limit of log queries.
    pub limit: usize,
    /// Entry order of log queries.
    pub direction: Direction,
}

impl QueryParams {
    /// An instant query at `t` (ns).
    pub fn instant(t: i64) -> Self {
        QueryParams { start: t, end: t, step: 0, instant: true, limit: 100, direction: Direction::Backward }
    }

    /// A range query.
    pub fn range(start: i64, end: i64, step: i64) -> Self {
        QueryParams { start, end, step, instant: false, limit: 100, direction: Direction::Backward }
    }

    /// Sets the log limit.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Sets the log direction.
    pub fn with_direction(mut self, d: Direction) -> Self {
        self.direction = d;
        self
    }

    fn is_instant(&self) -> bool {
        self.instant
    }
}

/// One stream of a log query result.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamResult {
    /// Final labels (after parsers and formatters).
    pub labels: Labels,
    /// Entries in the query direction (lines after `line_format`).
    pub entries: Vec<LogEntry>,
}

/// One sample of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSample {
    /// Series labels.
    pub labels: Labels,
    /// Timestamp (ns).
    pub ts: i64,
    /// Value.
    pub value: f64,
}

/// One series of a matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSeries {
    /// Series labels.
    pub labels: Labels,
    /// `(timestamp ns, value)` by time.
    pub points: Vec<(i64, f64)>,
}

/// What a query returns.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryResult {
    /// Log streams.
    Streams(Vec<StreamResult>),
    /// An instant vector.
    Vector(Vec<VectorSample>),
    /// A range result.
    Matrix(Vec<MatrixSeries>),
    /// A scalar at a time (ns).
    Scalar(i64, f64),
}

/// Evaluates LogQL over a log store.
pub struct Engine<'a> {
    store: &'a dyn LogQueryable,
    opts: EngineOptions,
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("opts", &self.opts).finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
enum Val {
    Scalar(f64),
    Vector(Vec<(Labels, f64)>),
}

struct SeriesData {
    labels: Labels,
    has_err: bool,
    ts: Vec<i64>,
    vals: Vec<f64>,
}

struct RangeData {
    series: Vec<SeriesData>,
    absent_labels: Labels,
}

struct Deadline {
    at: Option<Instant>,
    budget: Option<Duration>,
}

impl Deadline {
    fn check(&self) -> Result<(), EvalError> {
        match (self.at, self.budget) {
            (Some(at), Some(b)) if Instant::now() >= at => Err(EvalError::Timeout(b)),
            _ => Ok(()),
        }
    }
}

impl<'a> Engine<'a> {
    /// An engine with default limits.
    pub fn new(store: &'a dyn LogQueryable) -> Self {
        Engine { store, opts: EngineOptions::default() }
    }

    /// An engine with the given limits.
    pub fn with_options(store: &'a dyn LogQueryable, opts: EngineOptions) -> Self {
        Engine { store, opts }
    }

    /// Parses and runs a query.
    pub fn query(&self, query: &str, params: QueryParams) -> Result<QueryResult, EvalError> {
        let expr = crate::parse(query)?;
        self.eval(&expr, params)
    }

    /// Runs a parsed query.
    pub fn eval(&self, expr: &Expr, params: QueryParams) -> Result<QueryResult, EvalError> {
        if params.end < params.start {
            return Err(EvalError::BadRequest("end timestamp must not be before start time".into()));
        }
        if !params.is_instant() && params.step <= 0 {
            return Err(EvalError::BadRequest("zero or negative query resolution step widths are not accepted".into()));
        }
        let deadline = Deadline { at: self.opts.timeout.map(|d| Instant::now() + d), budget: self.opts.timeout };
        match expr {
            Expr::Log(l) => {
                if params.is_instant() {
                    return Err(EvalError::BadRequest(
                        "log queries are not supported as an instant query type, please change your query to a range query type".into(),
                    ));
                }
                if params.limit > self.opts.max_entries_limit {
                    return Err(EvalError::Limit(format!(
                        "max entries limit per query exceeded, limit > max_entries_limit_per_query ({} > {})",
                        params.limit, self.opts.max_entries_limit
                    )));
                }
                self.eval_log(l, params, &deadline).map(QueryResult::Streams)
            }
            Expr::Sample(s) => {
                if !params.is_instant() && uses_approx_topk(s) {
                    return Err(EvalError::BadRequest("approx_topk is only supported for instant queries".into()));
                }
                self.eval_metric(s, params, &deadline)
            }
        }
    }

    fn eval_log(&self, l: &LogExpr, p: QueryParams, deadline: &Deadline) -> Result<Vec<StreamResult>, EvalError> {
        let pipeline = Pipeline::compile(&l.pipeline).map_err(EvalError::BadRequest)?;
        let querier = self.store.log_querier()?;
        // End is exclusive for log queries.
        let end = if p.end > p.start { p.end - 1 } else { p.end };
        let hints = LogSelectHints::line_contains(pipeline.required_substrings());
        let mut streams = querier.select_with_hints(&l.matchers, p.start, end, p.direction, &hints)?;
        // Each stream contributes at most `limit` entries, already in order.
        let mut candidates: Vec<(i64, usize, Labels, LogEntry)> = Vec::new();
        let mut seq = 0usize;
        let mut checked = 0u32;
        let fast = pipeline.is_line_filter_only();
        for st in streams.iter_mut() {
            let mut taken = 0;
            while taken < p.limit {
                let Some(e) = st.entries.next()? else { break };
                checked += 1;
                if checked & 4095 == 0 {
                    deadline.check()?;
                }
                if fast && e.metadata.is_empty() {
                    if pipeline.keep_line(e.line) {
                        candidates.push((e.ts, seq, st.labels.clone(), e.to_owned()));
                        seq += 1;
                        taken += 1;
                    }
                    continue;
                }
                if let Some((line, lbs)) = pipeline.process(e.ts, e.line, &st.labels, e.metadata) {
                    candidates.push((e.ts, seq, lbs.to_labels(None), LogEntry { ts: e.ts, line: line.into_owned(), metadata: e.metadata.clone() }));
                    seq += 1;
                    taken += 1;
                }
            }
        }
        match p.direction {
            Direction::Forward => candidates.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1))),
            Direction::Backward => candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1))),
        }
        candidates.truncate(p.limit);
        let mut by_labels: BTreeMap<Labels, Vec<LogEntry>> = BTreeMap::new();
        for (_, _, labels, e) in candidates {
            by_labels.entry(labels).or_default().push(e);
        }
        Ok(by_labels.into_iter().map(|(labels, entries)| StreamResult { labels, entries }).collect())
    }

    fn eval_metric(&self, e: &SampleExpr, p: QueryParams, deadline: &Deadline) -> Result<QueryResult, EvalError> {
        let steps: Vec<i64> = if p.is_instant() {
            vec![p.start]
        } else {
            let n = p.end.saturating_sub(p.start) / p.step + 1;
            if n > 11_000 {
                return Err(EvalError::BadRequest(
                    "exceeded maximum resolution of 11,000 points per timeseries. Try increasing the value of the step parameter".into(),
                ));
            }
            (0..n).map(|i| p.start + i * p.step).collect()
        };
        let mut ranges = HashMap::new();
        self.prepare(e, &steps, &mut ranges, deadline)?;
        let ev = Evaluator { ranges: &ranges, deadline };
        if p.is_instant() {
            return Ok(match ev.eval(e, p.start)? {
                Val::Scalar(v) => QueryResult::Scalar(p.start, v),
                Val::Vector(v) => QueryResult::Vector(
                    v.into_iter().map(|(labels, value)| VectorSample { labels, ts: p.start, value }).collect(),
                ),
            });
        }
        let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        for &t in &steps {
            deadline.check()?;
            match ev.eval(e, t)? {
                Val::Scalar(v) => series.entry(Labels::empty()).or_default().push((t, v)),
                Val::Vector(v) => {
                    for (l, x) in v {
                        series.entry(l).or_default().push((t, x));
                    }
                }
            }
        }
        Ok(QueryResult::Matrix(series.into_iter().map(|(labels, points)| MatrixSeries { labels, points }).collect()))
    }

    fn prepare(
        &self,
        e: &SampleExpr,
        steps: &[i64],
        out: &mut HashMap<usize, RangeData>,
        deadline: &Deadline,
    ) -> Result<(), EvalError> {
        match e {
            SampleExpr::RangeAgg { op, range, span, .. } => {
                let data = self.load_range(*op, range, steps, deadline)?;
                out.insert(span.start, data);
            }
            SampleExpr::VectorAgg { inner, .. } | SampleExpr::LabelReplace { inner, .. } => {
                self.prepare(inner, steps, out, deadline)?
            }
            SampleExpr::Binary { lhs, rhs, .. } => {
                self.prepare(lhs, steps, out, deadline)?;
                self.prepare(rhs, steps, out, deadline)?;
            }
            SampleExpr::Literal(..) | SampleExpr::Vector(..) => {}
        }
        Ok(())
    }

    fn load_range(&self, op: RangeOp, r: &LogRange, steps: &[i64], deadline: &Deadline) -> Result<RangeData, EvalError> {
        let pipeline = Pipeline::compile(&r.log.pipeline).map_err(EvalError::BadRequest)?;
        let first = steps.first().copied().unwrap_or(0);
        let last = steps.last().copied().unwrap_or(0);
        let lo = first.saturating_sub(r.offset).saturating_sub(r.range); // exclusive
        let hi = last.saturating_sub(r.offset); // inclusive
        let querier = self.store.log_querier()?;
        let hints = LogSelectHints::line_contains(pipeline.required_substrings());
        let mut streams =
            querier.select_with_hints(&r.log.matchers, lo.saturating_add(1), hi, Direction::Forward, &hints)?;
        let bytes = matches!(op, RangeOp::BytesRate | RangeOp::BytesOverTime);
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut series: Vec<SeriesData> = Vec::new();
        let mut checked = 0u32;
        // Line filters alone leave labels as they are: one series per stream.
        let fast = pipeline.is_line_filter_only() && r.unwrap.is_none();
        for st in streams.iter_mut() {
            let mut fast_series: Option<usize> = None;
            while let Some(e) = st.entries.next()? {
                checked += 1;
                if checked & 4095 == 0 {
                    deadline.check()?;
                }
                if e.ts <= lo || e.ts > hi {
                    continue;
                }
                if fast && e.metadata.is_empty() {
                    if !pipeline.keep_line(e.line) {
                        continue;
                    }
                    let i = match fast_series {
                        Some(i) => i,
                        None => {
                            let i = self.series_index(&mut index, &mut series, st.labels.clone())?;
                            fast_series = Some(i);
                            i
                        }
                    };
                    series[i].ts.push(e.ts);
                    series[i].vals.push(if bytes { e.line.len() as f64 } else { 1.0 });
                    continue;
                }
                let Some((line, mut lbs)) = pipeline.process(e.ts, e.line, &st.labels, e.metadata) else { continue };
                let value = match &r.unwrap {
                    None => {
                        if bytes {
                            line.len() as f64
                        } else {
                            1.0
                        }
                    }
                    Some(u) => match extract_value(u, &mut lbs) {
                        Some(v) => v,
                        None => continue,
                    },
                };
                let labels = lbs.to_labels(r.unwrap.as_ref().map(|u| u.label.as_str()));
                let i = self.series_index(&mut index, &mut series, labels)?;
                series[i].ts.push(e.ts);
                series[i].vals.push(value);
            }
        }
        for s in &mut series {
            if s.ts.windows(2).any(|w| w[0] > w[1]) {
                let mut pairs: Vec<(i64, f64)> = s.ts.iter().copied().zip(s.vals.iter().copied()).collect();
                pairs.sort_by_key(|p| p.0);
                s.ts = pairs.iter().map(|p| p.0).collect();
                s.vals = pairs.iter().map(|p| p.1).collect();
            }
        }
        let absent_labels = {
            let mut seen = HashSet::new();
            let mut v = Vec::new();
            for m in &r.log.matchers {
                if m.kind == MatchType::Equal && seen.insert(m.name.clone()) {
                    v.push(Label::new(m.name.clone(), m.value.clone()));
                }
            }
            Labels::new(v)
        };
        Ok(RangeData { series, absent_labels })
    }
}

impl Engine<'_> {
    fn series_index(
        &self,
        index: &mut HashMap<Labels, usize>,
        series: &mut Vec<SeriesData>,
        labels: Labels,
    ) -> Result<usize, EvalError> {
        if let Some(i) = index.get(&labels) {
            return Ok(*i);
        }
        if series.len() >= self.opts.max_series {
            return Err(EvalError::Limit(format!(
                "maximum of series ({}) reached for a single query",
                self.opts.max_series
            )));
        }
        let has_err = labels.contains(ERROR_LABEL);
        series.push(SeriesData { labels: labels.clone(), has_err, ts: Vec::new(), vals: Vec::new() });
        index.insert(labels, series.len() - 1);
        Ok(series.len() - 1)
    }
}

fn uses_approx_topk(e: &SampleExpr) -> bool {
    match e {
        SampleExpr::VectorAgg { op, inner, .. } => *op == VectorOp::ApproxTopk || uses_approx_topk(inner),
        SampleExpr::LabelReplace { inner, .. } => uses_approx_topk(inner),
        SampleExpr::Binary { lhs, rhs, .. } => uses_approx_topk(lhs) || uses_approx_topk(rhs),
        SampleExpr::RangeAgg { .. } | SampleExpr::Literal(..) | SampleExpr::Vector(..) => false,
    }
}

/// Reads the unwrapped value; `None` drops the line. Conversion failures
/// set `SampleExtractionErr` and keep a 0 sample.
fn extract_value(u: &Unwrap, lbs: &mut LineLabels<'_>) -> Option<f64> {
    let raw = lbs.labels.get(&u.label).cloned().unwrap_or_default();
    let mut value = 0.0;
    if raw.is_empty() {
        // No value: the line contributes no sample (unless it already failed).
        lbs.err.as_ref()?;
    } else {
        let conv = match u.conv {
            UnwrapConv::None => parse_go_float(raw.trim()),
            UnwrapConv::Duration => parse_go_duration(raw.trim()).map(|ns| ns / 1e9),
            UnwrapConv::Bytes => parse_bytes(raw.trim()).map(|b| b as f64),
        };
        match conv {
            Ok(v) => value = v,
            Err(e) => lbs.set_err(SAMPLE_EXTRACTION_ERR, e),
        }
    }
    for f in &u.post_filters {
        if !crate::pipeline::eval_label_filter(f, lbs) {
            return None;
        }
    }
    Some(value)
}

struct Evaluator<'r> {
    ranges: &'r HashMap<usize, RangeData>,
    deadline: &'r Deadline,
}

fn group_key(labels: &Labels, g: Option<&Grouping>) -> Labels {
    match g {
        None => Labels::empty(),
        Some(g) => {
            let names: Vec<&str> = g.labels.iter().map(String::as_str).collect();
            if g.without {
                labels.without(&names)
            } else {
                labels.keep(&names)
            }
        }
    }
}

impl Evaluator<'_> {
    fn eval(&self, e: &SampleExpr, t: i64) -> Result<Val, EvalError> {
        self.deadline.check()?;
        match e {
            SampleExpr::Literal(v, _) => Ok(Val::Scalar(*v)),
            SampleExpr::Vector(v, _) => Ok(Val::Vector(vec![(Labels::empty(), *v)])),
            SampleExpr::RangeAgg { op, param, range, grouping, span } => {
                let data = self
                    .ranges
                    .get(&span.start)
                    .ok_or_else(|| EvalError::BadRequest("internal: range data missing".into()))?;
                range_agg(*op, *param, range, grouping.as_ref(), data, t).map(Val::Vector)
            }
            SampleExpr::VectorAgg { op, param, inner, grouping, .. } => {
                let v = match self.eval(inner, t)? {
                    Val::Vector(v) => v,
                    Val::Scalar(_) => return Err(EvalError::BadRequest(format!("{} expects a vector", op.name()))),
                };
                Ok(Val::Vector(vector_agg(*op, *param, grouping.as_ref(), v)))
            }
            SampleExpr::LabelReplace { inner, dst, replacement, src, regex, .. } => {
                let v = match self.eval(inner, t)? {
                    Val::Vector(v) => v,
                    Val::Scalar(_) => return Err(EvalError::BadRequest("label_replace expects a vector".into())),
                };
                let re = regex::Regex::new(&format!("^(?s:{regex})$")).map_err(|e| EvalError::BadRequest(e.to_string()))?;
                let mut out = Vec::with_capacity(v.len());
                for (l, x) in v {
                    let sv = l.get(src).unwrap_or("");
                    let l = match re.captures(sv) {
                        Some(caps) => {
                            let mut res = String::new();
                            caps.expand(replacement, &mut res);
                            let mut b = l.builder();
                            if res.is_empty() {
                                b.del(dst);
                            } else {
                                b.set(dst.clone(), res);
                            }
                            b.build()
                        }
                        None => l,
                    };
                    out.push((l, x));
                }
                Ok(Val::Vector(out))
            }
            SampleExpr::Binary { op, modifier, lhs, rhs, .. } => {
                let l = self.eval(lhs, t)?;
                let r = self.eval(rhs, t)?;
                binary(*op, modifier, l, r)
            }
        }
    }
}

fn range_agg(
    op: RangeOp,
    param: Option<f64>,
    r: &LogRange,
    grouping: Option<&Grouping>,
    data: &RangeData,
    t: i64,
) -> Result<Vec<(Labels, f64)>, EvalError> {
    let hi = t.saturating_sub(r.offset);
    let lo = hi.saturating_sub(r.range);
    let mut windows: Vec<(&SeriesData, usize, usize)> = Vec::new();
    for s in &data.series {
        let a = s.ts.partition_point(|x| *x <= lo);
        let b = s.ts.partition_point(|x| *x <= hi);
        if a == b {
            continue;
        }
        if s.has_err {
            return Err(EvalError::Pipeline {
                error: s.labels.get(ERROR_LABEL).unwrap_or("").to_string(),
                series: fmt_labels(&s.labels),
            });
        }
        windows.push((s, a, b));
    }
    if op == RangeOp::AbsentOverTime {
        return Ok(if windows.is_empty() { vec![(data.absent_labels.clone(), 1.0)] } else { Vec::new() });
    }
    let secs = r.range as f64 / 1e9;
    let unwrapped = r.unwrap.is_some();
    let mut out = Vec::new();
    match grouping {
        None => {
            for (s, a, b) in windows {
                out.push((s.labels.clone(), window_value(op, param, unwrapped, &s.ts[a..b], &s.vals[a..b], lo, hi, secs)));
            }
        }
        Some(g) => {
            let mut groups: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
            let mut idx: HashMap<Labels, usize> = HashMap::new();
            for (s, a, b) in windows {
                let key = group_key(&s.labels, Some(g));
                let i = *idx.entry(key.clone()).or_insert_with(|| {
                    groups.push((key, Vec::new()));
                    groups.len() - 1
                });
                groups[i].1.extend(s.ts[a..b].iter().copied().zip(s.vals[a..b].iter().copied()));
            }
            for (key, mut pts) in groups {
                pts.sort_by_key(|p| p.0);
                let ts: Vec<i64> = pts.iter().map(|p| p.0).collect();
                let vals: Vec<f64> = pts.iter().map(|p| p.1).collect();
                out.push((key, window_value(op, param, unwrapped, &ts, &vals, lo, hi, secs)));
            }
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn window_value(op: RangeOp, param: Option<f64>, unwrapped: bool, ts: &[i64], vals: &[f64], lo: i64, hi: i64, secs: f64) -> f64 {
    let n = vals.len() as f64;
    let sum = || vals.iter().sum::<f64>();
    match op {
        RangeOp::Rate => {
            if unwrapped {
                sum() / secs
            } else {
                n / secs
            }
        }
        RangeOp::CountOverTime => n,
        RangeOp::BytesRate => sum() / secs,
        RangeOp::BytesOverTime | RangeOp::SumOverTime => sum(),
        RangeOp::AbsentOverTime => 1.0,
        RangeOp::AvgOverTime => sum() / n,
        RangeOp::MinOverTime => vals.iter().copied().fold(f64::NAN, |m, v| if v < m || m.is_nan() { v } else { m }),
        RangeOp::MaxOverTime => vals.iter().copied().fold(f64::NAN, |m, v| if v > m || m.is_nan() { v } else { m }),
        RangeOp::StddevOverTime => variance(vals).sqrt(),
        RangeOp::StdvarOverTime => variance(vals),
        RangeOp::QuantileOverTime => quantile(param.unwrap_or(0.0), vals),
        RangeOp::FirstOverTime => vals.first().copied().unwrap_or(f64::NAN),
        RangeOp::LastOverTime => vals.last().copied().unwrap_or(f64::NAN),
        RangeOp::RateCounter => rate_counter(ts, vals, lo, hi, secs),
    }
}

fn variance(vals: &[f64]) -> f64 {
    let n = vals.len() as f64;
    let mean = vals.iter().sum::<f64>() / n;
    vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n
}

/// Prometheus's quantile: linear interpolation between ranked values.
fn quantile(q: f64, vals: &[f64]) -> f64 {
    if vals.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let mut v = vals.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let w = rank - lower;
    v[lower as usize] * (1.0 - w) + v[upper as usize] * w
}

/// A counter rate with Prometheus-style extrapolation to the window edges
/// (threshold cap first, then the zero-point cap); one sample gives 0.
fn rate_counter(ts: &[i64], vals: &[f64], lo: i64, hi: i64, secs: f64) -> f64 {
    if vals.len() < 2 {
        return 0.0;
    }
    let mut result = vals[vals.len() - 1] - vals[0];
    for w in vals.windows(2) {
        if w[1] < w[0] {
            result += w[0];
        }
    }
    let first_t = ts[0] as f64 / 1e9;
    let last_t = ts[ts.len() - 1] as f64 / 1e9;
    let mut to_start = first_t - lo as f64 / 1e9;
    let mut to_end = hi as f64 / 1e9 - last_t;
    let sampled = last_t - first_t;
    if sampled <= 0.0 {
        return 0.0;
    }
    let avg = sampled / (vals.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if result > 0.0 && vals[0] >= 0.0 {
        let to_zero = sampled * (vals[0] / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let extrapolated = sampled + to_start + to_end;
    result * (extrapolated / sampled) / secs
}

fn vector_agg(op: VectorOp, param: Option<f64>, grouping: Option<&Grouping>, v: Vec<(Labels, f64)>) -> Vec<(Labels, f64)> {
    match op {
        VectorOp::Sort | VectorOp::SortDesc => {
            let mut v = v;
            v.sort_by(|a, b| {
                let (x, y) = (a.1, b.1);
                match (x.is_nan(), y.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ => {
                        let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                        if op == VectorOp::Sort { o } else { o.reverse() }
                    }
                }
            });
            return v;
        }
        _ => {}
    }
    let mut groups: Vec<(Labels, Vec<(Labels, f64)>)> = Vec::new();
    let mut idx: HashMap<Labels, usize> = HashMap::new();
    for (l, x) in v {
        let key = group_key(&l, grouping);
        let i = *idx.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push((l, x));
    }
    let mut out = Vec::new();
    for (key, members) in groups {
        let vals: Vec<f64> = members.iter().map(|m| m.1).collect();
        let n = vals.len() as f64;
        let value = match op {
            VectorOp::Sum => vals.iter().sum(),
            VectorOp::Avg => vals.iter().sum::<f64>() / n,
            VectorOp::Count => n,
            VectorOp::Min => vals.iter().copied().fold(f64::NAN, |m, v| if v < m || m.is_nan() { v } else { m }),
            VectorOp::Max => vals.iter().copied().fold(f64::NAN, |m, v| if v > m || m.is_nan() { v } else { m }),
            VectorOp::Stddev => variance(&vals).sqrt(),
            VectorOp::Stdvar => variance(&vals),
            VectorOp::Topk | VectorOp::Bottomk | VectorOp::ApproxTopk => {
                let k = param.unwrap_or(0.0).max(0.0) as usize;
                let mut m = members;
                let top = op != VectorOp::Bottomk;
                m.sort_by(|a, b| {
                    // NaN always sorts last (dropped first).
                    match (a.1.is_nan(), b.1.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ => {
                            let o = a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal);
                            if top { o.reverse() } else { o }
                        }
                    }
                });
                m.truncate(k);
                out.extend(m);
                continue;
            }
            VectorOp::Sort | VectorOp::SortDesc => continue,
        };
        out.push((key, value));
    }
    out
}

fn arith(op: BinOp, a: f64, b: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (a + b, true),
        BinOp::Sub => (a - b, true),
        BinOp::Mul => (a * b, true),
        BinOp::Div => (if b == 0.0 { f64::NAN } else { a / b }, true),
        BinOp::Mod => (if b == 0.0 { f64::NAN } else { a % b }, true),
        BinOp::Pow => (a.powf(b), true),
        BinOp::Cmp(c) => (a, c.apply(a, b)),
        BinOp::Or | BinOp::And | BinOp::Unless => (a, true),
    }
}

fn signature(l: &Labels, m: &BinModifier) -> Labels {
    match &m.matching {
        Some((true, names)) => l.keep(&names.iter().map(String::as_str).collect::<Vec<_>>()),
        Some((false, names)) => l.without(&names.iter().map(String::as_str).collect::<Vec<_>>()),
        None => l.clone(),
    }
}

fn binary(op: BinOp, m: &BinModifier, l: Val, r: Val) -> Result<Val, EvalError> {
    match (l, r) {
        (Val::Scalar(a), Val::Scalar(b)) => {
            if op.is_set() {
                return Err(EvalError::BadRequest("set operations are not allowed between scalars".into()));
            }
            let (v, keep) = arith(op, a, b);
            Ok(Val::Scalar(if matches!(op, BinOp::Cmp(_)) { f64::from(u8::from(keep)) } else { v }))
        }
        (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(vector_scalar(op, m, v, s, false))),
        (Val::Scalar(s), Val::Vector(v)) => Ok(Val::Vector(vector_scalar(op, m, v, s, true))),
        (Val::Vector(a), Val::Vector(b)) => vector_vector(op, m, a, b).map(Val::Vector),
    }
}

fn vector_scalar(op: BinOp, m: &BinModifier, v: Vec<(Labels, f64)>, s: f64, swap: bool) -> Vec<(Labels, f64)> {
    let mut out = Vec::with_capacity(v.len());
    for (l, x) in v {
        let (a, b) = if swap { (s, x) } else { (x, s) };
        let (value, keep) = arith(op, a, b);
        if matches!(op, BinOp::Cmp(_)) {
            if m.return_bool {
                out.push((l, f64::from(u8::from(keep))));
            } else if keep {
                out.push((l, x));
            }
        } else {
            out.push((l, value));
        }
    }
    out
}

fn vector_vector(op: BinOp, m: &BinModifier, lhs: Vec<(Labels, f64)>, rhs: Vec<(Labels, f64)>) -> Result<Vec<(Labels, f64)>, EvalError> {
    match op {
        BinOp::And => {
            let sigs: HashSet<Labels> = rhs.iter().map(|(l, _)| signature(l, m)).collect();
            return Ok(lhs.into_iter().filter(|(l, _)| sigs.contains(&signature(l, m))).collect());
        }
        BinOp::Unless => {
            let sigs: HashSet<Labels> = rhs.iter().map(|(l, _)| signature(l, m)).collect();
            return Ok(lhs.into_iter().filter(|(l, _)| !sigs.contains(&signature(l, m))).collect());
        }
        BinOp::Or => {
            let sigs: HashSet<Labels> = lhs.iter().map(|(l, _)| signature(l, m)).collect();
            let mut out = lhs;
            out.extend(rhs.into_iter().filter(|(l, _)| !sigs.contains(&signature(l, m))));
            return Ok(out);
        }
        _ => {}
    }
    // group_right swaps the sides so the "one" side is always `one`.
    let group_right = matches!(m.group, Some((false, _)));
    let (many, one) = if group_right { (rhs, lhs) } else { (lhs, rhs) };
    let one_side = if group_right { "left" } else { "right" };
    let mut one_sigs: HashMap<Labels, (Labels, f64)> = HashMap::new();
    for (l, x) in one {
        let sig = signature(&l, m);
        if let Some((prev, _)) = one_sigs.get(&sig) {
            return Err(EvalError::Matching(format!(
                "found duplicate series on the {one_side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                fmt_labels(prev),
                fmt_labels(&l)
            )));
        }
        one_sigs.insert(sig, (l, x));
    }
    let include: Vec<String> = m.group.as_ref().map(|g| g.1.clone()).unwrap_or_default();
    let mut matched: HashMap<Labels, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for (l, x) in many {
        let sig = signature(&l, m);
        let Some((ol, ox)) = one_sigs.get(&sig) else { continue };
        let (a, b) = if group_right { (*ox, x) } else { (x, *ox) };
        let (mut value, keep) = arith(op, a, b);
        if m.return_bool {
            value = f64::from(u8::from(keep));
        } else if matches!(op, BinOp::Cmp(_)) && !keep {
            continue;
        }
        // Result labels: the "many" side's, reduced for one-to-one matching.
        let mut metric = if m.group.is_none() {
            match &m.matching {
                Some((true, names)) => l.keep(&names.iter().map(String::as_str).collect::<Vec<_>>()),
                Some((false, names)) => l.without(&names.iter().map(String::as_str).collect::<Vec<_>>()),
                None => l.clone(),
            }
        } else {
            l.clone()
        };
        if !include.is_empty() {
            let mut b = metric.builder();
            for name in &include {
                match ol.get(name) {
                    Some(v) if !v.is_empty() => {
                        b.set(name.clone(), v.to_string());
                    }
                    _ => {
                        b.del(name);
                    }
                }
            }
            metric = b.build();
        }
        let entry = matched.entry(sig);
        match entry {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                if m.group.is_none() {
                    return Err(EvalError::Matching(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                    ));
                }
                if !o.get_mut().insert(metric.clone()) {
                    return Err(EvalError::Matching(
                        "multiple matches for labels: grouping labels must ensure unique matches".into(),
                    ));
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                let mut s = HashSet::new();
                s.insert(metric.clone());
                v.insert(s);
            }
        }
        out.push((metric, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_rates() {
        assert_eq!(quantile(0.4, &[1.0, 2.0, 3.0, 4.0, 5.0]), 2.6);
        assert_eq!(quantile(1.5, &[1.0]), f64::INFINITY);
        // c=100@90s, 130@120s over (60s,120s]: increase 30 extrapolated to 60s.
        let r = rate_counter(&[90_000_000_000, 120_000_000_000], &[100.0, 130.0], 60_000_000_000, 120_000_000_000, 60.0);
        assert!((r - 1.0).abs() < 1e-9);
    }
}
