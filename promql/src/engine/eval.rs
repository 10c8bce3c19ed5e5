//! Expression evaluation: data loading, selectors, subqueries and the step
//! loop.

use super::{aggregate, binary, functions, EngineOptions, EvalError, QueryResult};
use crate::ast::{AggregateOp, AtModifier, DurationExpr, Expr, Span, UnaryOp, VectorSelector};
use crate::value::{Annotation, AnnotationKind, MatrixSeries, Value, VectorSample};
use model::{is_stale_nan, Labels, Queryable, Sample, SelectHints, StorageError};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Instant;

/// One element of an instant vector during evaluation.
#[derive(Clone, Debug)]
pub(crate) struct El {
    pub labels: Labels,
    pub v: f64,
    /// `__name__` is to be removed at the end (delayed name removal).
    pub drop_name: bool,
    /// Timestamp of the underlying raw sample (for `timestamp()`).
    pub src_t: i64,
}

/// One series of a range vector during evaluation.
#[derive(Clone, Debug)]
pub(crate) struct RSeries {
    pub labels: Labels,
    pub points: Points,
    pub drop_name: bool,
}

/// The samples of one series in a window. Windows of loaded data share the
/// loaded buffer instead of copying it at every step.
#[derive(Clone, Debug)]
pub(crate) struct Points {
    buf: Rc<Vec<Sample>>,
    lo: usize,
    hi: usize,
    /// Start timestamps aligned with `buf` (0: none), when the series has
    /// any.
    st: Option<Rc<[i64]>>,
}

impl Points {
    /// `buf[lo..hi]`, shared.
    fn shared(buf: &Rc<Vec<Sample>>, lo: usize, hi: usize) -> Self {
        Points { buf: Rc::clone(buf), lo, hi, st: None }
    }

    /// Points built for this window only.
    pub fn owned(v: Vec<Sample>) -> Self {
        let hi = v.len();
        Points { buf: Rc::new(v), lo: 0, hi, st: None }
    }

    /// `buf[lo..hi]` with the start timestamps `st` (aligned with `buf`).
    fn shared_with_starts(buf: &Rc<Vec<Sample>>, st: &Rc<[i64]>, lo: usize, hi: usize) -> Self {
        Points { buf: Rc::clone(buf), lo, hi, st: Some(Rc::clone(st)) }
    }

    /// The non-stale samples of `window` with their start timestamps
    /// (`st` is aligned with `window`).
    fn owned_with_starts(window: &[Sample], st: &[i64]) -> Self {
        let (v, st): (Vec<Sample>, Vec<i64>) = window.iter().zip(st).filter(|(s, _)| !is_stale_nan(s.v)).map(|(s, st)| (*s, *st)).unzip();
        let hi = v.len();
        Points { buf: Rc::new(v), lo: 0, hi, st: Some(Rc::from(st)) }
    }

    /// The start timestamps of the points (0: none), when the series has
    /// any. Only windows of raw series carry them: subqueries and other
    /// computed points do not pass start timestamps on.
    pub fn starts(&self) -> Option<&[i64]> {
        self.st.as_ref().map(|st| &st[self.lo..self.hi])
    }
}

impl std::ops::Deref for Points {
    type Target = [Sample];
    fn deref(&self) -> &[Sample] {
        &self.buf[self.lo..self.hi]
    }
}

/// An intermediate value.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    Scalar(f64),
    Vector(Vec<El>),
    Matrix(Vec<RSeries>),
    Str(String),
}

/// A range-vector argument with the window it covers.
pub(crate) struct RangeArg {
    pub series: Vec<RSeries>,
    /// Window length, ms.
    pub range: i64,
    /// Window end (after `@` and offset), ms.
    pub end: i64,
    pub anchored: bool,
    pub smoothed: bool,
    /// Samples around the window (for anchored/smoothed), per series.
    pub extended: Vec<Vec<Sample>>,
}

type SeriesData = Vec<(Labels, Rc<Vec<Sample>>)>;

pub(crate) struct Ctx<'o> {
    pub opts: &'o EngineOptions,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub lookback: i64,
    /// 1 with Prometheus 2.x closed windows (a sample exactly at a window's
    /// start is inside), else 0: window starts move this much earlier.
    closed: i64,
    data: HashMap<usize, SeriesData>,
    /// Per selector, per loaded series: whether it holds a stale marker.
    has_stale: HashMap<usize, Vec<bool>>,
    /// Per selector, per loaded series: start timestamps aligned with its
    /// samples (0: none), for series that have any.
    starts: HashMap<usize, Vec<Option<Rc<[i64]>>>>,
    deadline: Instant,
    samples: usize,
    pub annotations: Vec<Annotation>,
    /// Inner results of subqueries by node and (absolute, step-aligned)
    /// time, so consecutive steps of a range query reuse them.
    subquery_cache: HashMap<usize, BTreeMap<i64, Rc<Val>>>,
    /// Per selector (and bound), per series: the sample index found at the
    /// previous step, where the next search starts.
    cursors: HashMap<(usize, u8), Vec<usize>>,
    /// Group keys per aggregation node (see [`aggregate::GroupCache`]).
    pub group_cache: HashMap<usize, aggregate::GroupCache>,
    /// Per aggregation node over a selector: each loaded series' group id.
    series_groups: HashMap<usize, Vec<usize>>,
    /// Window-function calls read only at the query's steps (by address),
    /// answered from step tables.
    step_calls: Vec<usize>,
    /// Instant-selector results for every step of a range query, worked
    /// out series by series on first use (see [`StepTable`]).
    step_tables: HashMap<usize, Option<StepTable>>,
    /// Per label set (by address, kept alive): the metric name when
    /// `rate`/`increase` should note that it does not look like a counter.
    pub counter_names: AddrMap<(Labels, Option<String>)>,
    /// Match signatures per binary operation (see [`binary::MatchCache`]).
    pub match_cache: HashMap<usize, binary::MatchCache>,
    /// Per binary operation between two step tables: the series pairs it
    /// matches, worked out once (`None`: the general path decides).
    table_matches: HashMap<usize, Option<binary::TableMatch>>,
}

/// A series' element in a step table row (see [`Ctx::step_members`]).
pub(crate) struct StepMember {
    /// The series' position among its selector's loaded series (see
    /// [`Ctx::loaded_labels`]).
    pub series: u32,
    pub v: f64,
    /// Timestamp of the underlying raw sample.
    pub src_t: i64,
}

/// Receives the members of a step's groups (see [`Ctx::step_members`]).
pub(crate) trait MemberSink {
    /// Called first with the most members that will come.
    fn reserve(&mut self, n: usize);
    fn push(&mut self, slot: usize, m: StepMember);
}

/// (group position, value) pairs.
impl MemberSink for Vec<(usize, f64)> {
    fn reserve(&mut self, n: usize) {
        Vec::reserve(self, n);
    }

    fn push(&mut self, slot: usize, m: StepMember) {
        Vec::push(self, (slot, m.v));
    }
}

fn key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

impl<'o> Ctx<'o> {
    pub fn warn(&mut self, message: impl Into<String>, span: Span) {
        self.annotate(AnnotationKind::Warning, message.into(), span);
    }

    pub fn info(&mut self, message: impl Into<String>, span: Span) {
        self.annotate(AnnotationKind::Info, message.into(), span);
    }

    fn annotate(&mut self, kind: AnnotationKind, message: String, span: Span) {
        if !self.annotations.iter().any(|a| a.kind == kind && a.message == message && a.span == span) {
            self.annotations.push(Annotation { kind, message, span });
        }
    }

    pub fn dur_ms(&self, d: &DurationExpr) -> i64 {
        d.eval_ms(self.step, self.end - self.start)
    }

    fn at_time(&self, at: &Option<AtModifier>, t: i64) -> i64 {
        match at {
            Some(AtModifier::Timestamp(ms)) => (*ms).clamp(-super::MAX_TIME_MS, super::MAX_TIME_MS),
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
            None => t,
        }
    }

    fn selector_time(&self, vs: &VectorSelector, t: i64) -> i64 {
        self.at_time(&vs.at, t) - vs.offset.as_ref().map(|o| self.dur_ms(o)).unwrap_or(0)
    }

    pub fn check_limits(&mut self, added: usize, what: &'static str) -> Result<(), EvalError> {
        self.samples = self.samples.saturating_add(added);
        if self.samples > self.opts.max_samples {
            return Err(EvalError::TooManySamples(what));
        }
        if Instant::now() >= self.deadline {
            return Err(EvalError::Timeout(what));
        }
        Ok(())
    }

    /// Works out the inclusive time range each selector needs.
    fn plan(&self, e: &Expr, start: i64, end: i64, out: &mut HashMap<usize, (i64, i64, i64)>) {
        let widen = |out: &mut HashMap<usize, (i64, i64, i64)>, k: usize, lo: i64, hi: i64, range: i64| {
            let ent = out.entry(k).or_insert((lo, hi, range));
            ent.0 = ent.0.min(lo);
            ent.1 = ent.1.max(hi);
        };
        match e {
            Expr::Vector(vs) => {
                let (s, en) = self.pinned(&vs.at, &vs.offset, start, end);
                widen(out, key(vs), s - self.lookback - self.closed, en + if vs.smoothed { self.lookback } else { 0 }, 0);
            }
            Expr::Matrix { selector, range, anchored, smoothed, .. } => {
                let (s, en) = self.pinned(&selector.at, &selector.offset, start, end);
                let r = self.dur_ms(range);
                let extra = if *anchored || *smoothed { self.lookback } else { 0 };
                widen(out, key(selector), s - r - extra - self.closed, en + if *smoothed { self.lookback } else { 0 }, r);
            }
            Expr::Subquery { expr, range, step, offset, at, .. } => {
                let (s, en) = self.pinned(at, offset, start, end);
                let st = step.as_ref().map(|d| self.dur_ms(d)).unwrap_or(duration_ms(self.opts.default_subquery_step)).max(1);
                self.plan(expr, s - self.dur_ms(range) - st, en, out);
            }
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => self.plan(expr, start, end, out),
            Expr::Binary { lhs, rhs, .. } => {
                self.plan(lhs, start, end, out);
                self.plan(rhs, start, end, out);
            }
            Expr::Aggregate { expr, param, .. } => {
                if let Some(p) = param {
                    self.plan(p, start, end, out);
                }
                self.plan(expr, start, end, out);
            }
            Expr::Call { func, args, .. } if func == "info" && args.len() == 2 => {
                self.plan(&args[0], start, end, out);
                if let Expr::Vector(vs) = &args[1] {
                    // The info series are read as of the base expression's
                    // reference time (its `@` and offsets).
                    let (s, en) = self.ref_range(&args[0], start, end);
                    widen(out, key(vs), s - self.lookback, en, 0);
                }
            }
            Expr::Call { args, .. } => {
                for a in args {
                    self.plan(a, start, end, out);
                }
            }
            Expr::Number { .. } | Expr::String { .. } | Expr::Duration { .. } => {}
        }
    }

    /// The range of reference times of an expression evaluated over
    /// `[start, end]`: where its selectors read, after `@` and offsets.
    fn ref_range(&self, e: &Expr, start: i64, end: i64) -> (i64, i64) {
        match e {
            Expr::Vector(vs) => self.pinned(&vs.at, &vs.offset, start, end),
            Expr::Matrix { selector, .. } => self.pinned(&selector.at, &selector.offset, start, end),
            Expr::Subquery { expr, offset, at, .. } => {
                let (s, en) = self.pinned(at, offset, start, end);
                self.ref_range(expr, s, en)
            }
            _ => match first_child(e) {
                Some(c) => self.ref_range(c, start, end),
                None => (start, end),
            },
        }
    }

    /// The reference time of `e` evaluated at `t` (see [`Self::ref_range`]).
    pub(crate) fn ref_time(&self, e: &Expr, t: i64) -> i64 {
        self.ref_range(e, t, t).1
    }

    fn pinned(&self, at: &Option<AtModifier>, offset: &Option<DurationExpr>, start: i64, end: i64) -> (i64, i64) {
        let off = offset.as_ref().map(|o| self.dur_ms(o)).unwrap_or(0);
        match at {
            Some(_) => {
                let t = self.at_time(at, start);
                (t - off, t - off)
            }
            None => (start - off, end - off),
        }
    }

    fn load(&mut self, store: &dyn Queryable, e: &Expr) -> Result<(), EvalError> {
        let mut ranges = HashMap::new();
        self.plan(e, self.start, self.end, &mut ranges);
        if ranges.is_empty() {
            return Ok(());
        }
        let mut selectors: Vec<(&VectorSelector, bool)> = Vec::new();
        e.walk(&mut |n| match n {
            Expr::Vector(vs) if !selectors.iter().any(|(s, _)| std::ptr::eq(*s, vs)) => selectors.push((vs, false)),
            Expr::Matrix { selector, .. } => selectors.push((selector, false)),
            Expr::Call { func, args, .. } if func == "info" => {
                if let Some(Expr::Vector(vs)) = args.get(1) {
                    selectors.push((vs, true));
                }
            }
            _ => {}
        });
        let mint = ranges.values().map(|r| r.0).min().unwrap_or(self.start);
        let maxt = ranges.values().map(|r| r.1).max().unwrap_or(self.end);
        let querier = store.querier(mint, maxt)?;
        let mut thin = Vec::new();
        if self.step > 0 {
            step_only_nodes(e, &mut thin, &mut self.step_calls);
        }
        let n_steps = (self.end - self.start) / self.step.max(1);
        let mut loaded = 0usize;
        let mut reader = SeriesReader { read_starts: self.opts.use_start_timestamps, ..Default::default() };
        for (vs, info) in selectors {
            let k = key(vs);
            if self.data.contains_key(&k) {
                continue;
            }
            let Some(&(lo, hi, range)) = ranges.get(&k) else { continue };
            let hints = SelectHints { mint: lo, maxt: hi, step: self.step, range, func: None };
            let mut matchers = vs.matchers.clone();
            if info {
                let names: Vec<&model::Matcher> = matchers.iter().filter(|m| m.name == model::METRIC_NAME).collect();
                if names.is_empty() {
                    matchers.push(model::Matcher::equal(model::METRIC_NAME, "target_info"));
                } else if !names.iter().any(|m| matches!(m.kind, model::MatchType::Equal | model::MatchType::Regex)) {
                    // Only negative name matchers: info series are still `*_info`.
                    if let Ok(m) = model::Matcher::new(model::MatchType::Regex, model::METRIC_NAME, ".+_info") {
                        matchers.push(m);
                    }
                }
            }
            // A selector read only at the query's steps keeps, per series,
            // just the samples some step picks (the last one at or before
            // it): the same answers from a fraction of the memory.
            reader.lo = lo;
            reader.hi = hi;
            reader.steps = (!info && thin.contains(&k)).then(|| (self.selector_time(vs, self.start), self.step, n_steps));
            let mut series = querier.select(&hints, &matchers)?;
            let parts = self.opts.parallelism.clamp(1, 64).min(series.len() / PARALLEL_MIN_SERIES).max(1);
            // Per position in `series`: samples already read on another
            // thread (or on this one while the others worked).
            let mut done: Vec<Option<(Vec<Sample>, Vec<i64>)>> = Vec::new();
            if parts > 1 {
                done.resize_with(series.len(), || None);
                self.read_in_parallel(&reader, &mut series, &mut done, parts)?;
            }
            let mut out = Vec::new();
            let mut stale = Vec::new();
            let mut starts: Vec<Option<Rc<[i64]>>> = Vec::new();
            for (pos, mut s) in series.into_iter().enumerate() {
                let (samples, st) = match done.get_mut(pos).and_then(Option::take) {
                    Some(read) => read,
                    None => reader.read(&mut *s.samples)?,
                };
                loaded += samples.len();
                if loaded > self.opts.max_samples {
                    return Err(EvalError::TooManySamples("query execution"));
                }
                if !samples.is_empty() {
                    stale.push(samples.iter().any(|x| is_stale_nan(x.v)));
                    starts.push((!st.is_empty()).then(|| Rc::from(st)));
                    out.push((s.labels, Rc::new(samples)));
                }
            }
            if Instant::now() >= self.deadline {
                return Err(EvalError::Timeout("query loading"));
            }
            self.data.insert(k, out);
            self.has_stale.insert(k, stale);
            if starts.iter().any(Option::is_some) {
                self.starts.insert(k, starts);
            }
        }
        Ok(())
    }

    /// Reads `series` split in `parts` of consecutive positions: this
    /// thread reads the first part while threads of the loading pool read
    /// the others (series iterators are `Send`). Results land in `done` by
    /// position; every part stops at the query's sample limit.
    fn read_in_parallel(&self, reader: &SeriesReader, series: &mut [model::Series<'_>], done: &mut [Option<(Vec<Sample>, Vec<i64>)>], parts: usize) -> Result<(), EvalError> {
        let n = series.len();
        let budget = self.opts.max_samples;
        // Parts of `size` consecutive series (the last one shorter).
        let size = n.div_ceil(parts).max(1);
        let mut errors: Vec<Option<StorageError>> = (0..n.div_ceil(size)).map(|_| None).collect();
        let read_part = |series: &mut [model::Series<'_>], done: &mut [Option<(Vec<Sample>, Vec<i64>)>], err: &mut Option<StorageError>| {
            let mut local = reader.like();
            let mut total = 0usize;
            for (s, slot) in series.iter_mut().zip(done) {
                match local.read(&mut *s.samples) {
                    Ok((v, st)) => {
                        total += v.len();
                        if total > budget {
                            *err = Some(StorageError::Limit("query processing would load too many samples into memory".into()));
                            return;
                        }
                        *slot = Some((v, st));
                    }
                    Err(e) => {
                        *err = Some(e);
                        return;
                    }
                }
            }
        };
        let mut split = series.chunks_mut(size).zip(done.chunks_mut(size)).zip(errors.iter_mut()).map(|((s, d), e)| (s, d, e));
        let first = split.next();
        match loading_pool() {
            Some(pool) => pool.in_place_scope(|sc| {
                for (s, d, e) in split {
                    sc.spawn(move |_| read_part(s, d, e));
                }
                if let Some((s, d, e)) = first {
                    read_part(s, d, e);
                }
            }),
            None => first.into_iter().chain(split).for_each(|(s, d, e)| read_part(s, d, e)),
        }
        match errors.into_iter().flatten().next() {
            None => Ok(()),
            Some(StorageError::Limit(_)) => Err(EvalError::TooManySamples("query execution")),
            Some(e) => Err(EvalError::Storage(e)),
        }
    }

    fn vector_selector(&mut self, vs: &VectorSelector, t: i64) -> Result<Vec<El>, EvalError> {
        let ts = self.selector_time(vs, t);
        if vs.smoothed {
            return self.smoothed_selector(vs, ts);
        }
        self.vector_selector_at(vs, ts)
    }

    /// A `smoothed` instant selector: the value linearly interpolated at
    /// `ts` between the neighbouring samples (within the lookback delta).
    fn smoothed_selector(&mut self, vs: &VectorSelector, ts: i64) -> Result<Vec<El>, EvalError> {
        let lookback = self.lookback;
        let mut out = Vec::new();
        if let Some(data) = self.data.get(&key(vs)) {
            for (labels, samples) in data {
                let live: Vec<Sample> = samples.iter().filter(|s| !is_stale_nan(s.v)).copied().collect();
                if let Some(v) = super::functions::interpolate(&live, ts, lookback, false) {
                    if live.iter().any(|s| s.t <= ts && s.t > ts - lookback) {
                        out.push(El { labels: labels.clone(), v, drop_name: false, src_t: ts });
                    }
                }
            }
        }
        self.check_limits(out.len(), "query execution")?;
        Ok(out)
    }

    /// Builds the [`StepTable`] of a selector for the steps of this range
    /// query; `None` for instant queries, pinned (`@`) selectors, and when
    /// the table would be too large.
    fn build_step_table(&self, vs: &VectorSelector, sink: &mut impl TableSink) -> Option<StepTable> {
        if self.step <= 0 || vs.at.is_some() {
            return None;
        }
        let data = self.data.get(&key(vs))?;
        let n = usize::try_from((self.end - self.start) / self.step).ok()?.checked_add(1)?;
        if data.len().saturating_mul(n) > STEP_TABLE_MAX {
            return None;
        }
        let base = self.selector_time(vs, self.start);
        let lookback = self.lookback;
        sink.start(n, data.len());
        for (i, (_, samples)) in data.iter().enumerate() {
            // One pass over the series for all steps.
            let mut idx = 0;
            for j in 0..n {
                let ts = base + j as i64 * self.step;
                while idx < samples.len() && samples[idx].t <= ts {
                    idx += 1;
                }
                if idx == 0 {
                    continue;
                }
                let s = samples[idx - 1];
                if s.t <= ts - lookback - self.closed || is_stale_nan(s.v) {
                    continue;
                }
                // data.len() <= STEP_TABLE_MAX, so i fits.
                sink.put(j, i as u32, s.v, s.t);
            }
        }
        Some(StepTable { base, step: self.step, rows: Vec::new(), src: key(vs), drop_name: false, counts: None, notes: Vec::new(), note_span: vs.span })
    }

    /// Whether `e` can have a step table: a plain instant selector, or a
    /// window-function call read only at the steps. Without delayed name
    /// removal, function results lose their name at once: the general path
    /// handles that.
    fn has_step_table(&self, e: &Expr) -> bool {
        match e {
            Expr::Vector(vs) => !vs.smoothed,
            Expr::Call { .. } => self.opts.delayed_name_removal && self.step_calls.contains(&(e as *const Expr as usize)),
            _ => false,
        }
    }

    /// The step table answering `e` at time `t` of a range query, built on
    /// first use: `(table key, row index)`. `None` when `e` has no table
    /// (not a plain selector or window function read at the query's steps,
    /// or `t` is not a step).
    fn table_row(&mut self, e: &Expr, t: i64) -> Option<(usize, usize)> {
        if self.step <= 0 {
            return None;
        }
        if !self.has_step_table(e) {
            return None;
        }
        let (k, ts) = match e {
            Expr::Vector(vs) => (key(vs), self.selector_time(vs, t)),
            _ => (e as *const Expr as usize, t),
        };
        if !self.step_tables.contains_key(&k) {
            let mut rows: Vec<Vec<(u32, f64, i64)>> = Vec::new();
            let table = match e {
                Expr::Vector(vs) => self.build_step_table(vs, &mut rows),
                _ => self.build_call_table(e, &mut rows),
            };
            self.step_tables.insert(k, table.map(|t| StepTable { rows, ..t }));
        }
        let j = self.step_tables.get(&k)?.as_ref()?.index(ts)?;
        Some((k, j))
    }

    /// Row `j` of table `k` as elements, counting its samples and raising
    /// the table's notes.
    fn table_elements(&mut self, k: usize, j: usize) -> Result<Vec<El>, EvalError> {
        let Some(Some(table)) = self.step_tables.get(&k) else { return Ok(Vec::new()) };
        let row = &table.rows[j];
        let mut out = Vec::with_capacity(row.len());
        if let Some(data) = self.data.get(&table.src) {
            for &(i, v, src_t) in row {
                out.push(El { labels: data[i as usize].0.clone(), v, drop_name: table.drop_name, src_t });
            }
        }
        self.table_used(k, j)?;
        Ok(out)
    }

    /// Accounts for reading row `j` of table `k`: raises the table's notes
    /// and counts the row's samples against the query's limits.
    fn table_used(&mut self, k: usize, j: usize) -> Result<(), EvalError> {
        let Some(Some(table)) = self.step_tables.get(&k) else { return Ok(()) };
        let (n, notes, span) = (table.count(j), table.notes.clone(), table.note_span);
        self.note_and_count(&notes, span, n)
    }

    /// Raises a table's notes and counts `n` samples read from it against
    /// the query's limits.
    fn note_and_count(&mut self, notes: &[String], span: Span, n: usize) -> Result<(), EvalError> {
        for note in notes {
            self.info(note.clone(), span);
        }
        self.check_limits(n, "query execution")
    }

    /// The whole result of a range query whose expression has a step table
    /// (a plain selector or a window function of one, see
    /// [`Self::table_row`]), series by series straight from the table
    /// instead of step by step through vectors. `None` when `expr` has no
    /// table, or when dropping names makes two series' label sets equal
    /// (the step-by-step path then merges them or reports the collision).
    fn matrix_from_table(&mut self, expr: &Expr, start: i64, end: i64, step: i64) -> Result<Option<Vec<MatrixSeries>>, EvalError> {
        if self.step <= 0 || (start, end, step) != (self.start, self.end, self.step) {
            return Ok(None);
        }
        let e = strip_parens(expr);
        // Built straight into per-series points: a table of rows would be
        // written step-major and read back series by series.
        let mut sink = SeriesPoints { t0: start, step, points: Vec::new(), per_step: Vec::new() };
        if !self.has_step_table(e) {
            return Ok(None);
        }
        let table = match e {
            Expr::Vector(vs) => self.build_step_table(vs, &mut sink),
            _ => self.build_call_table(e, &mut sink),
        };
        let Some(table) = table else { return Ok(None) };
        let Some(data) = self.data.get(&table.src) else { return Ok(None) };
        let n = usize::try_from((end - start) / step).unwrap_or(0) + 1;
        // The table's first step must be the query's first.
        let first = match e {
            Expr::Vector(vs) => self.selector_time(vs, start),
            _ => start,
        };
        if first != table.base || table.step != step || sink.per_step.len() != n {
            return Ok(None);
        }
        let total: usize = sink.per_step.iter().sum();
        if total > self.opts.max_samples {
            return Err(EvalError::TooManySamples("range query result"));
        }
        // Selected series differ, but may not once their names are gone.
        let Some(out) = result_series(data.iter().map(|(l, _)| l).zip(sink.points), table.drop_name) else { return Ok(None) };
        // Notes and per-step sample limits, as the step-by-step path
        // raises and checks them.
        for (j, &put) in sink.per_step.iter().enumerate().take(n) {
            self.table_step_used(&table, j, put)?;
        }
        Ok(Some(out))
    }

    /// Accounts for step `j` of a table worked out whole (`puts` values put
    /// at that step): raises the table's notes and counts the step's
    /// samples against the limits, as reading its row step by step would.
    fn table_step_used(&mut self, table: &StepTable, j: usize, puts: usize) -> Result<(), EvalError> {
        self.samples = 0;
        let count = table.counts.as_ref().map_or(puts, |c| c.get(j).copied().unwrap_or(0));
        self.note_and_count(&table.notes, table.note_span, count)
    }

    /// The whole result of a range query of `op by/without (...) (e)`
    /// (`sum`, `count`, `group`, `min`, `max`, `avg`, `stddev`, `stdvar`,
    /// or `quantile`, `topk`, `bottomk` with a number) whose argument `e`
    /// has a step table, or is `table > number` (see
    /// [`Self::step_members`]): each value is folded into its group's point
    /// at its step (or kept with the group's others there) while the table
    /// is worked out, instead of rows kept and aggregated step by step. A
    /// group's values at a step come in series order either way, so the
    /// results are the same to the bit. `None` when the expression has
    /// another shape, or when the step-by-step path must decide (an
    /// average's sums overflowed, dropped names make two groups or series
    /// collide).
    fn matrix_from_grouped_table(&mut self, expr: &Expr, start: i64, end: i64, step: i64) -> Result<Option<Vec<MatrixSeries>>, EvalError> {
        if self.step <= 0 || (start, end, step) != (self.start, self.end, self.step) {
            return Ok(None);
        }
        let Expr::Aggregate { op, expr: arg, param, grouping, .. } = strip_parens(expr) else { return Ok(None) };
        let op = *op;
        // quantile's parameter and topk/bottomk's, numbers (or the step
        // path evaluates them).
        let (mut q, mut k) = (None, None);
        match (op, param.as_deref().map(strip_parens)) {
            (AggregateOp::Sum | AggregateOp::Count | AggregateOp::Group | AggregateOp::Min | AggregateOp::Max | AggregateOp::Avg | AggregateOp::Stddev | AggregateOp::Stdvar, None) => {}
            (AggregateOp::Quantile, Some(p @ Expr::Number { value, .. })) => q = Some((*value, p.span())),
            (AggregateOp::Topk | AggregateOp::Bottomk, Some(Expr::Number { value, .. })) => match aggregate::plain_k(*value) {
                Some(n) => k = Some(n),
                None => return Ok(None),
            },
            _ => return Ok(None),
        }
        let Some((e, filter)) = comparison_filter(strip_parens(arg)) else { return Ok(None) };
        if !self.has_step_table(e) {
            return Ok(None);
        }
        // The selector whose loaded series the table's rows index.
        let src = match e {
            Expr::Vector(vs) => key(vs),
            Expr::Call { args, .. } => match args.first() {
                Some(Expr::Matrix { selector, .. }) => key(selector),
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        let Some(data) = self.data.get(&src) else { return Ok(None) };
        let cache = self.group_cache.entry(&**arg as *const Expr as usize).or_default();
        let ids: Vec<usize> = data.iter().map(|(l, _)| cache.group_of(grouping, l)).collect();
        let groups = cache.keys.len();
        let n = usize::try_from((end - start) / step).unwrap_or(0) + 1;
        let mut sink = GroupedSink { ids: &ids, groups, op, filter, acc: GroupAcc::for_op(op), puts: Vec::new() };
        let table = match e {
            Expr::Vector(vs) => self.build_step_table(vs, &mut sink),
            _ => self.build_call_table(e, &mut sink),
        };
        let Some(table) = table else { return Ok(None) };
        let first = match e {
            Expr::Vector(vs) => self.selector_time(vs, start),
            _ => start,
        };
        if first != table.base || table.step != step || sink.puts.len() != n || table.src != src {
            return Ok(None);
        }
        let GroupedSink { acc, puts, .. } = sink;
        let mut acc = match (acc, k) {
            (GroupAcc::Ranked(mut ranked), Some(k)) => return self.ranked_series(&table, &mut ranked, (op, k), groups, &puts, (start, step, n)),
            (acc, _) => acc,
        };
        // Per group, its points; a group is in the result from the first
        // step it has members at.
        let mut points: Vec<Vec<Sample>> = vec![Vec::new(); groups];
        let mut total = 0usize;
        for (j, &put) in puts.iter().enumerate().take(n) {
            // The step-by-step path's limits and notes, step by step.
            self.table_step_used(&table, j, put)?;
            if let Some((q, span)) = q {
                if !(0.0..=1.0).contains(&q) {
                    self.warn(format!("quantile value should be between 0 and 1, got {}", aggregate::format_value(q)), span);
                }
            }
            let t = start + j as i64 * step;
            for (g, pts) in points.iter_mut().enumerate() {
                let at = j * groups + g;
                let v = match &mut acc {
                    GroupAcc::Folds(folds) => match folds.get(at) {
                        Some(fold) if !fold.is_empty() => match fold.value(op) {
                            Some(v) => v,
                            None => return Ok(None),
                        },
                        _ => continue,
                    },
                    GroupAcc::Values(values) => match values.get_mut(at) {
                        Some(vals) if !vals.is_empty() => match op {
                            AggregateOp::Quantile => aggregate::quantile(q.map_or(f64::NAN, |q| q.0), vals),
                            AggregateOp::Stdvar => aggregate::variance(vals.iter().copied()),
                            _ => aggregate::variance(vals.iter().copied()).sqrt(),
                        },
                        _ => continue,
                    },
                    // Ranked members always come with their `k` (above).
                    GroupAcc::Ranked(_) => return Ok(None),
                };
                pts.push(Sample::new(t, v));
                total += 1;
            }
            if total > self.opts.max_samples {
                return Err(EvalError::TooManySamples("range query result"));
            }
        }
        let Some(keys) = self.group_cache.get(&(&**arg as *const Expr as usize)).map(|c| &c.keys) else { return Ok(None) };
        if keys.len() != points.len() {
            return Ok(None);
        }
        Ok(result_series(keys.iter().zip(points), table.drop_name))
    }

    /// The end of [`Self::matrix_from_grouped_table`] for `topk`/`bottomk`
    /// (`op`, `k`): per step and group the members kept, each series in the
    /// result with the steps it was kept at. `None` when dropped names make
    /// two series' label sets equal (the step path decides).
    fn ranked_series(&mut self, table: &StepTable, ranked: &mut [Vec<(f64, usize)>], (op, k): (AggregateOp, usize), groups: usize, puts: &[usize], (start, step, n): (i64, i64, usize)) -> Result<Option<Vec<MatrixSeries>>, EvalError> {
        let Some(series) = self.data.get(&table.src).map(Vec::len) else { return Ok(None) };
        let mut points: Vec<Vec<Sample>> = vec![Vec::new(); series];
        let mut total = 0usize;
        for (j, &put) in puts.iter().enumerate().take(n) {
            self.table_step_used(table, j, put)?;
            let t = start + j as i64 * step;
            for keyed in ranked.iter_mut().skip(j * groups).take(groups) {
                aggregate::rank_k(op, keyed, k);
                for &(v, i) in keyed.iter() {
                    if let Some(pts) = points.get_mut(i) {
                        pts.push(Sample::new(t, v));
                        total += 1;
                    }
                }
            }
            if total > self.opts.max_samples {
                return Err(EvalError::TooManySamples("range query result"));
            }
        }
        let Some(data) = self.data.get(&table.src) else { return Ok(None) };
        Ok(result_series(data.iter().map(|(l, _)| l).zip(points), table.drop_name))
    }

    /// For an aggregation (node `gkey`, grouping `g`) directly over `e` at
    /// step `t` of a range query: the groups in order of first appearance,
    /// each present series' (group position, value) in series order, and
    /// whether the members drop `__name__`. `None` when `e` has no step
    /// table (see [`Self::table_row`]).
    #[allow(clippy::type_complexity)]
    pub(crate) fn step_groups(&mut self, e: &Expr, gkey: usize, g: &crate::ast::Grouping, t: i64) -> Result<Option<(Vec<Labels>, Vec<(usize, f64)>, bool)>, EvalError> {
        let mut member: Vec<(usize, f64)> = Vec::new();
        let Some((keys, drop_name, _)) = self.step_members(e, gkey, g, t, &mut member)? else { return Ok(None) };
        let drop_name = drop_name && !member.is_empty();
        Ok(Some((keys, member, drop_name)))
    }

    /// Like [`Self::step_groups`], but hands `sink` every member's group
    /// position and [`StepMember`] (series, value, sample time) in series
    /// order, and returns the groups, whether members drop
    /// `__name__`, and the key of the selector whose loaded series the
    /// members are (see [`Self::loaded_labels`]).
    #[allow(clippy::type_complexity)]
    pub(crate) fn step_members(&mut self, e: &Expr, gkey: usize, g: &crate::ast::Grouping, t: i64, sink: &mut impl MemberSink) -> Result<Option<(Vec<Labels>, bool, usize)>, EvalError> {
        let Some((src, filter)) = comparison_filter(e) else { return Ok(None) };
        let Some((k, j)) = self.table_row(src, t) else { return Ok(None) };
        let Some(Some(table)) = self.step_tables.get(&k) else { return Ok(None) };
        let Some(data) = self.data.get(&table.src) else { return Ok(None) };
        let row = &table.rows[j];
        let cache = self.group_cache.entry(gkey).or_default();
        let ids = self.series_groups.entry(gkey).or_insert_with(|| data.iter().map(|(l, _)| cache.group_of(g, l)).collect());
        let mut slot = vec![usize::MAX; cache.keys.len()];
        let mut keys = Vec::new();
        sink.reserve(row.len());
        for &(i, v, src_t) in row {
            if let Some((op, s)) = filter {
                if !binary::scalar_op(op, v, s).1 {
                    continue;
                }
            }
            let id = ids[i as usize];
            if slot[id] == usize::MAX {
                slot[id] = keys.len();
                keys.push(cache.keys[id].clone());
            }
            sink.push(slot[id], StepMember { series: i, v, src_t });
        }
        let (drop_name, src) = (table.drop_name, table.src);
        self.table_used(k, j)?;
        Ok(Some((keys, drop_name, src)))
    }

    /// The labels of loaded series `i` of the selector with key `src`.
    pub(crate) fn loaded_labels(&self, src: usize, i: u32) -> Option<&Labels> {
        self.data.get(&src)?.get(i as usize).map(|(l, _)| l)
    }

    /// `lhs <op> rhs` at step `t` of a range query when both sides have
    /// step tables (see [`Self::table_row`]): the elements
    /// [`binary::eval`] would give, from series pairs matched once for the
    /// whole query instead of at every step. `None` when a side has no
    /// table or the matching may fail at some step (then the general path
    /// runs and reports it).
    pub(crate) fn binary_from_tables(&mut self, op: crate::ast::BinaryOp, lhs: &Expr, rhs: &Expr, m: &crate::ast::BinModifier, t: i64) -> Result<Option<Vec<El>>, EvalError> {
        let (Some((kl, jl)), Some((kr, jr))) = (self.table_row(strip_parens(lhs), t), self.table_row(strip_parens(rhs), t)) else { return Ok(None) };
        let node = lhs as *const Expr as usize;
        if !self.table_matches.contains_key(&node) {
            let plan = match (self.step_tables.get(&kl), self.step_tables.get(&kr)) {
                (Some(Some(a)), Some(Some(b))) => match (self.data.get(&a.src), self.data.get(&b.src)) {
                    (Some(l), Some(r)) => binary::TableMatch::new(m, l, r),
                    _ => None,
                },
                _ => None,
            };
            self.table_matches.insert(node, plan);
        }
        let (Some(Some(plan)), Some(Some(lt)), Some(Some(rt))) = (self.table_matches.get_mut(&node), self.step_tables.get(&kl), self.step_tables.get(&kr)) else { return Ok(None) };
        let out = plan.step(op, m, (&lt.rows[jl], lt.drop_name), (&rt.rows[jr], rt.drop_name));
        self.table_used(kl, jl)?;
        self.table_used(kr, jr)?;
        Ok(Some(out))
    }

    /// A window function of a matrix selector (`rate(x[5m])`, see
    /// [`functions::WindowFn`]) at every step, series by series: each
    /// window is found by moving two cursors forward, instead of slicing
    /// every series at every step.
    fn build_call_table(&self, e: &Expr, sink: &mut impl TableSink) -> Option<StepTable> {
        let Expr::Call { func, args, .. } = e else { return None };
        let wf = functions::WindowFn::from_name(func)?;
        let Some(Expr::Matrix { selector, range, .. }) = args.first() else { return None };
        let k = key(selector);
        // Series with start timestamps take the general path, which reads
        // them (see `functions::uses_starts`).
        if functions::uses_starts(func) && self.starts.contains_key(&k) {
            return None;
        }
        let data = self.data.get(&k)?;
        let n = usize::try_from((self.end - self.start) / self.step).ok()?.checked_add(1)?;
        if data.len().saturating_mul(n) > STEP_TABLE_MAX {
            return None;
        }
        let r = self.dur_ms(range);
        let base = self.selector_time(selector, self.start);
        let stale = self.has_stale.get(&k);
        sink.start(n, data.len());
        let mut counts = vec![0usize; n];
        let mut notes = Vec::new();
        let mut live: Vec<Sample> = Vec::new();
        // Sum-based windows waiting to be worked out: (step, lo, hi).
        let mut pending: Vec<(usize, usize, usize)> = Vec::with_capacity(4);
        // Per series: resets[i] = how many of samples[1..=i] are below
        // their predecessor, so a window without a counter reset is known
        // without scanning it.
        let mut resets: Vec<u32> = Vec::new();
        // min/max_over_time: the window's extreme from a sliding
        // monotonic queue instead of a scan of every window.
        let extreme = match wf {
            functions::WindowFn::MaxOverTime => Some(true),
            functions::WindowFn::MinOverTime => Some(false),
            _ => None,
        };
        let mut extremes = SlidingExtreme::default();
        for (i, (labels, samples)) in data.iter().enumerate() {
            let may_be_stale = stale.and_then(|v| v.get(i)).copied().unwrap_or(true);
            // Counted only for a series that has a reset at all (a counter
            // seldom does): otherwise no window has one.
            let has_reset = wf.wants_counter() && samples.windows(2).fold(false, |a, w| a | (w[1].v < w[0].v));
            if has_reset {
                resets.clear();
                let mut n = 0u32;
                resets.push(0);
                for w in samples.windows(2) {
                    n += u32::from(w[1].v < w[0].v);
                    resets.push(n);
                }
            }
            if wf.wants_counter() && !may_be_stale {
                // rate/increase over a series without stale markers: the
                // loop below without the cases that cannot arise.
                let is_rate = wf == functions::WindowFn::Rate;
                let (mut lo, mut hi) = (0usize, 0usize);
                let mut noted = false;
                for (j, count) in counts.iter_mut().enumerate() {
                    let ts = base + j as i64 * self.step;
                    lo += samples[lo..].iter().take_while(|s| s.t <= ts - r - self.closed).count();
                    hi = hi.max(lo);
                    hi += samples[hi..].iter().take_while(|s| s.t <= ts).count();
                    let len = hi - lo;
                    *count += len;
                    if len < 2 {
                        continue;
                    }
                    if !noted {
                        noted = true;
                        note_not_counter(labels, &mut notes);
                    }
                    let may_reset = has_reset && resets[hi - 1] != resets[lo];
                    if let Some(v) = functions::counter_rate(&samples[lo..hi], r, ts, is_rate, may_reset) {
                        sink.put(j, i as u32, v, self.start + j as i64 * self.step);
                    }
                }
                continue;
            }
            let (mut lo, mut hi) = (0usize, 0usize);
            let mut noted = false;
            extremes.clear();
            let mut next_in = 0usize;
            for (j, count) in counts.iter_mut().enumerate() {
                let ts = base + j as i64 * self.step;
                // Windows are left-open: (ts - r, ts].
                while lo < samples.len() && samples[lo].t <= ts - r - self.closed {
                    lo += 1;
                }
                hi = hi.max(lo);
                while hi < samples.len() && samples[hi].t <= ts {
                    hi += 1;
                }
                if let Some(want_max) = extreme {
                    extremes.slide(samples, lo, &mut next_in, hi, want_max);
                }
                let mut window = &samples[lo..hi];
                // With stale markers filtered out, neighbours change: scan.
                let mut may_reset = !wf.wants_counter() || hi <= lo || (has_reset && resets[hi - 1] != resets[lo]);
                let mut filtered = false;
                if may_be_stale && window.iter().any(|s| is_stale_nan(s.v)) {
                    live.clear();
                    live.extend(window.iter().filter(|s| !is_stale_nan(s.v)));
                    window = &live;
                    may_reset = true;
                    filtered = true;
                }
                if window.is_empty() {
                    continue;
                }
                *count += window.len();
                if wf.wants_counter() && !noted && window.len() >= 2 {
                    noted = true;
                    note_not_counter(labels, &mut notes);
                }
                if extreme.is_some() && !filtered {
                    // The window's first extreme non-NaN value, or NaN when
                    // it has none: what the fold over the window gives.
                    let v = extremes.front(samples).unwrap_or(f64::NAN);
                    sink.put(j, i as u32, v, self.start + j as i64 * self.step);
                    continue;
                }
                if wf.is_sum() && !filtered {
                    // Windows of the loaded samples: four at a time (see
                    // `finite_kahan_sums4`).
                    pending.push((j, lo, hi));
                    if pending.len() == 4 {
                        flush_sums(wf, samples, &pending, i, self.start, self.step, sink);
                        pending.clear();
                    }
                    continue;
                }
                if let Some(v) = wf.apply_with(window, r, ts, may_reset) {
                    // `i` fits: data.len() <= STEP_TABLE_MAX.
                    sink.put(j, i as u32, v, self.start + j as i64 * self.step);
                }
            }
            flush_sums(wf, samples, &pending, i, self.start, self.step, sink);
            pending.clear();
        }
        Some(StepTable {
            base: self.start,
            step: self.step,
            rows: Vec::new(),
            src: k,
            drop_name: !wf.keeps_name(),
            counts: Some(counts),
            notes,
            note_span: args[0].span(),
        })
    }

    /// The samples of a selector as of `ts`, ignoring its own `@`/offset.
    pub(crate) fn vector_selector_at(&mut self, vs: &VectorSelector, ts: i64) -> Result<Vec<El>, EvalError> {
        let lookback = self.lookback;
        let mut out = Vec::new();
        let k = key(vs);
        if let Some(data) = self.data.get(&k) {
            let cursors = self.cursors.entry((k, 0)).or_insert_with(|| vec![0; data.len()]);
            for ((labels, samples), cur) in data.iter().zip(cursors.iter_mut()) {
                let idx = upper_bound(samples, *cur, ts);
                *cur = idx;
                if idx == 0 {
                    continue;
                }
                let s = samples[idx - 1];
                if s.t <= ts - lookback - self.closed || is_stale_nan(s.v) {
                    continue;
                }
                out.push(El { labels: labels.clone(), v: s.v, drop_name: false, src_t: s.t });
            }
        }
        self.check_limits(out.len(), "query execution")?;
        Ok(out)
    }

    /// `start_timestamp(selector)`: for each series with a sample as of
    /// the selector's time (within the lookback delta), the start timestamp
    /// of that sample in seconds (0 when it has none).
    pub(crate) fn vector_selector_starts(&mut self, vs: &VectorSelector, t: i64) -> Result<Vec<El>, EvalError> {
        let ts = self.selector_time(vs, t);
        let lookback = self.lookback;
        let k = key(vs);
        let mut out = Vec::new();
        if let Some(data) = self.data.get(&k) {
            let starts = self.starts.get(&k);
            for (i, (labels, samples)) in data.iter().enumerate() {
                let idx = samples.partition_point(|s| s.t <= ts);
                if idx == 0 {
                    continue;
                }
                let s = samples[idx - 1];
                if s.t <= ts - lookback - self.closed || is_stale_nan(s.v) {
                    continue;
                }
                let st = starts.and_then(|v| v.get(i)).and_then(Option::as_ref).and_then(|st| st.get(idx - 1)).copied().unwrap_or(0);
                out.push(El { labels: labels.clone(), v: st as f64 / 1000.0, drop_name: true, src_t: s.t });
            }
        }
        self.check_limits(out.len(), "query execution")?;
        Ok(out)
    }

    /// Evaluates a range-vector argument at `t`.
    pub fn range_arg(&mut self, e: &Expr, t: i64) -> Result<RangeArg, EvalError> {
        match e {
            Expr::Paren { expr, .. } => self.range_arg(expr, t),
            Expr::Matrix { selector, range, anchored, smoothed, .. } => {
                let ts = self.selector_time(selector, t);
                let r = self.dur_ms(range);
                let mut series = Vec::new();
                let mut extended = Vec::new();
                let mut n = 0;
                let lookback = self.lookback;
                let k = key(selector);
                if let Some(data) = self.data.get(&k) {
                    let stale = self.has_stale.get(&k);
                    let starts = self.starts.get(&k);
                    let mut new_lo = self.cursors.remove(&(k, 1)).unwrap_or_else(|| vec![0; data.len()]);
                    let mut new_hi = self.cursors.remove(&(k, 2)).unwrap_or_else(|| vec![0; data.len()]);
                    series.reserve(data.len());
                    for (i, (labels, samples)) in data.iter().enumerate() {
                        let lo = upper_bound(samples, new_lo[i], ts - r - self.closed);
                        let hi = upper_bound(samples, new_hi[i].max(lo), ts);
                        new_lo[i] = lo;
                        new_hi[i] = hi;
                        let window = &samples[lo..hi];
                        let may_be_stale = stale.and_then(|v| v.get(i)).copied().unwrap_or(true);
                        let st = starts.and_then(|v| v.get(i)).and_then(Option::as_ref);
                        let points = if may_be_stale && window.iter().any(|s| is_stale_nan(s.v)) {
                            match st {
                                Some(st) => Points::owned_with_starts(window, &st[lo..hi]),
                                None => Points::owned(window.iter().filter(|s| !is_stale_nan(s.v)).copied().collect()),
                            }
                        } else if let Some(st) = st {
                            Points::shared_with_starts(samples, st, lo, hi)
                        } else {
                            Points::shared(samples, lo, hi)
                        };
                        if *anchored || *smoothed {
                            let elo = samples.partition_point(|s| s.t <= ts - r - lookback);
                            let ehi = if *smoothed { samples.partition_point(|s| s.t <= ts + lookback) } else { hi };
                            extended.push(samples[elo..ehi].to_vec());
                        } else if points.is_empty() {
                            continue;
                        }
                        n += points.len();
                        series.push(RSeries { labels: labels.clone(), points, drop_name: false });
                    }
                    self.cursors.insert((k, 1), new_lo);
                    self.cursors.insert((k, 2), new_hi);
                }
                self.check_limits(n, "query execution")?;
                Ok(RangeArg { series, range: r, end: ts, anchored: *anchored, smoothed: *smoothed, extended })
            }
            Expr::Subquery { expr, range, step, offset, at, .. } => {
                let off = offset.as_ref().map(|o| self.dur_ms(o)).unwrap_or(0);
                let ts = self.at_time(at, t) - off;
                let r = self.dur_ms(range);
                let st = step.as_ref().map(|d| self.dur_ms(d)).unwrap_or(duration_ms(self.opts.default_subquery_step));
                if st <= 0 {
                    return Err(EvalError::rt("zero or negative subquery step", e.span()));
                }
                let lo = ts - r - self.closed;
                let mut first = st * (lo / st);
                if first <= lo {
                    first += st;
                }
                // Series in first-seen order; consecutive steps usually list
                // them in the same order, so try the same position first.
                let mut series: Vec<(Labels, Vec<Sample>, bool)> = Vec::new();
                let mut index: HashMap<Labels, usize> = HashMap::new();
                let mut n = 0;
                let mut ti = first;
                let ckey = e as *const Expr as usize;
                if let Some(c) = self.subquery_cache.get_mut(&ckey) {
                    // Steps only move forward: drop what no later window needs.
                    *c = c.split_off(&first);
                }
                while ti <= ts {
                    if Instant::now() >= self.deadline {
                        return Err(EvalError::Timeout("subquery evaluation"));
                    }
                    let cached = self.subquery_cache.get(&ckey).and_then(|c| c.get(&ti)).cloned();
                    let val = match cached {
                        Some(v) => v,
                        None => {
                            let v = Rc::new(self.eval(expr, ti)?);
                            // Every inner step costs at least one sample, so the
                            // sample limit also bounds the number of steps.
                            let len = if let Val::Vector(els) = &*v { els.len() } else { 1 };
                            self.check_limits(1 + len, "subquery evaluation")?;
                            self.subquery_cache.entry(ckey).or_default().insert(ti, Rc::clone(&v));
                            v
                        }
                    };
                    let scalar_el;
                    let els: &[El] = match &*val {
                        Val::Vector(v) => v,
                        Val::Scalar(v) => {
                            scalar_el = [El { labels: Labels::empty(), v: *v, drop_name: false, src_t: ti }];
                            &scalar_el
                        }
                        _ => return Err(EvalError::rt("subquery over a non-vector expression", e.span())),
                    };
                    for (j, el) in els.iter().enumerate() {
                        n += 1;
                        let pos = match series.get(j) {
                            Some(s) if same_labels(&s.0, &el.labels) => j,
                            _ => match index.get(&el.labels) {
                                Some(&i) => i,
                                None => {
                                    index.insert(el.labels.clone(), series.len());
                                    series.push((el.labels.clone(), Vec::new(), false));
                                    series.len() - 1
                                }
                            },
                        };
                        let s = &mut series[pos];
                        s.2 |= el.drop_name;
                        s.1.push(Sample::new(ti, el.v));
                    }
                    ti += st;
                }
                self.check_limits(n, "subquery evaluation")?;
                series.sort_by(|a, b| a.0.cmp(&b.0));
                let series = series.into_iter().map(|(labels, v, drop_name)| RSeries { labels, points: Points::owned(v), drop_name }).collect();
                Ok(RangeArg { series, range: r, end: ts, anchored: false, smoothed: false, extended: Vec::new() })
            }
            other => Err(EvalError::rt(format!("expected a range vector, got {}", other.value_type().name()), other.span())),
        }
    }

    /// Evaluates an expression at time `t`.
    pub fn eval(&mut self, e: &Expr, t: i64) -> Result<Val, EvalError> {
        let v = self.eval_node(e, t)?;
        if self.opts.delayed_name_removal {
            return Ok(v);
        }
        // Without delayed name removal, names go as soon as an operation
        // drops them, and the result must still have unique label sets.
        match v {
            Val::Vector(els) if els.iter().any(|el| el.drop_name) => Ok(Val::Vector(finalize_vector(els, e.span())?)),
            other => Ok(other),
        }
    }

    fn eval_node(&mut self, e: &Expr, t: i64) -> Result<Val, EvalError> {
        match e {
            Expr::Number { value, .. } => Ok(Val::Scalar(*value)),
            Expr::String { value, .. } => Ok(Val::Str(value.clone())),
            Expr::Duration { expr, .. } => Ok(Val::Scalar(expr.eval_seconds(self.step, self.end - self.start))),
            Expr::Paren { expr, .. } => self.eval(expr, t),
            Expr::Vector(vs) => {
                if let Some((k, j)) = self.table_row(e, t) {
                    return Ok(Val::Vector(self.table_elements(k, j)?));
                }
                Ok(Val::Vector(self.vector_selector(vs, t)?))
            }
            Expr::Matrix { .. } | Expr::Subquery { .. } => {
                let ra = self.range_arg(e, t)?;
                Ok(Val::Matrix(ra.series.into_iter().filter(|s| !s.points.is_empty()).collect()))
            }
            Expr::Unary { op, expr, .. } => {
                let v = self.eval(expr, t)?;
                if *op == UnaryOp::Plus {
                    return Ok(v);
                }
                Ok(match v {
                    Val::Scalar(x) => Val::Scalar(-x),
                    Val::Vector(mut els) => {
                        for el in &mut els {
                            el.v = -el.v;
                            el.drop_name = true;
                        }
                        Val::Vector(els)
                    }
                    other => other,
                })
            }
            Expr::Binary { op, lhs, rhs, modifier, span } => binary::eval(self, *op, lhs, rhs, modifier, *span, t),
            Expr::Aggregate { op, expr, param, grouping, span } => aggregate::eval(self, *op, expr, param.as_deref(), grouping, *span, t),
            Expr::Call { func, args, span } => {
                if let Some((k, j)) = self.table_row(e, t) {
                    return Ok(Val::Vector(self.table_elements(k, j)?));
                }
                functions::call(self, func, args, *span, t)
            }
        }
    }
}

/// Hashes addresses (`usize` keys) with one multiplication: maps keyed
/// by the address of a label set are looked up for every series at every
/// step, where SipHash would dominate.
#[derive(Clone, Copy, Default)]
pub(crate) struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn write_usize(&mut self, n: usize) {
        // Addresses are 8- or 16-byte aligned: the multiplication spreads
        // the varying middle bits over the high bits hashbrown uses.
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(26);
    }
}

/// A map keyed by addresses.
pub(crate) type AddrMap<V> = HashMap<usize, V, std::hash::BuildHasherDefault<AddrHasher>>;

/// A set of addresses (or tuples of them).
pub(crate) type AddrSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<AddrHasher>>;

/// Indexes of a sliding window's candidates for its maximum (or minimum):
/// non-NaN samples in time order whose values decrease (increase) strictly
/// from front to back, the front being the window's first extreme value —
/// the one `max_over_time`'s fold keeps, since it only replaces on a
/// strictly greater value and skips NaNs unless all are NaN.
#[derive(Default)]
struct SlidingExtreme {
    /// The queue is `queue[head..]`: indexes only enter at the back and
    /// leave at either end, so a vector and a start index do (reset per
    /// series).
    queue: Vec<usize>,
    head: usize,
}

impl SlidingExtreme {
    fn clear(&mut self) {
        self.queue.clear();
        self.head = 0;
    }

    /// Moves the window to `samples[lo..hi]`: takes in the samples from
    /// `*next_in` up to `hi` (both bounds only move forward), drops those
    /// before `lo`.
    #[inline(always)]
    fn slide(&mut self, samples: &[Sample], lo: usize, next_in: &mut usize, hi: usize, max: bool) {
        *next_in = (*next_in).max(lo);
        while *next_in < hi {
            let v = samples[*next_in].v;
            if !v.is_nan() {
                // A later value at least as extreme replaces earlier ones
                // that are strictly less so; equal ones stay in front.
                while self.queue.len() > self.head {
                    let bv = samples[self.queue[self.queue.len() - 1]].v;
                    if (max && bv < v) || (!max && bv > v) {
                        self.queue.pop();
                    } else {
                        break;
                    }
                }
                self.queue.push(*next_in);
            }
            *next_in += 1;
        }
        while self.queue.get(self.head).is_some_and(|&f| f < lo) {
            self.head += 1;
        }
    }

    /// The current window's extreme, `None` when it has no non-NaN value.
    fn front(&self, samples: &[Sample]) -> Option<f64> {
        self.queue.get(self.head).map(|&f| samples[f].v)
    }
}

/// Works out the sum-based window function `wf` (see
/// [`functions::WindowFn::is_sum`]) over the windows `samples[lo..hi]` of
/// series `i` listed in `pending` as `(step, lo, hi)`, four at a time, into
/// the step rows.
fn flush_sums(wf: functions::WindowFn, samples: &[Sample], pending: &[(usize, usize, usize)], i: usize, start: i64, step: i64, sink: &mut impl TableSink) {
    let window = |k: usize| pending.get(k).map_or(&[][..], |&(_, lo, hi)| &samples[lo..hi]);
    for (n, chunk) in pending.chunks(4).enumerate() {
        let ws = [window(4 * n), window(4 * n + 1), window(4 * n + 2), window(4 * n + 3)];
        let sums = functions::finite_kahan_sums4(ws);
        for (k, &(j, _, _)) in chunk.iter().enumerate() {
            // `i` fits: the table holds at most STEP_TABLE_MAX series.
            sink.put(j, i as u32, wf.value_from_sum(ws[k], sums[k]), start + j as i64 * step);
        }
    }
}

/// Adds the note that the series with `labels` may not be a counter, if it
/// looks like none and `notes` does not hold that note yet.
fn note_not_counter(labels: &Labels, notes: &mut Vec<String>) {
    if let Some(note) = functions::not_counter_note(labels) {
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
}

/// Where the table builders put each series' result at each step.
trait TableSink {
    /// Called first: `steps` steps, `series` series.
    fn start(&mut self, steps: usize, series: usize);
    /// Series `i` has value `v` (from a sample at `t`) at step `j`; calls
    /// come series by series, each series' steps in order.
    fn put(&mut self, j: usize, i: u32, v: f64, t: i64);
}

/// Rows of a [`StepTable`]: per step, (series, value, sample time).
impl TableSink for Vec<Vec<(u32, f64, i64)>> {
    fn start(&mut self, steps: usize, series: usize) {
        *self = (0..steps).map(|_| Vec::with_capacity(series)).collect();
    }

    fn put(&mut self, j: usize, i: u32, v: f64, t: i64) {
        self[j].push((i, v, t));
    }
}

/// A range query's result points per series, at the step times (see
/// [`Ctx::matrix_from_table`]), and how many series have a point at each
/// step.
struct SeriesPoints {
    t0: i64,
    step: i64,
    points: Vec<Vec<Sample>>,
    per_step: Vec<usize>,
}

impl TableSink for SeriesPoints {
    fn start(&mut self, steps: usize, series: usize) {
        self.points = (0..series).map(|_| Vec::new()).collect();
        self.per_step = vec![0; steps];
    }

    fn put(&mut self, j: usize, i: u32, v: f64, _t: i64) {
        let (steps, t) = (self.per_step.len(), self.t0 + j as i64 * self.step);
        if let Some(p) = self.points.get_mut(i as usize) {
            if p.capacity() == 0 {
                p.reserve_exact(steps - j);
            }
            p.push(Sample::new(t, v));
        }
        if let Some(c) = self.per_step.get_mut(j) {
            *c += 1;
        }
    }
}

/// Folds a step table's values into their groups at each step as they
/// come (see [`Ctx::matrix_from_grouped_table`]).
struct GroupedSink<'a> {
    /// Group of each series.
    ids: &'a [usize],
    groups: usize,
    op: AggregateOp,
    /// A comparison with a number the values must pass.
    filter: Option<(crate::ast::BinaryOp, f64)>,
    acc: GroupAcc,
    /// Values put per step, before the filter (the samples a step reads).
    puts: Vec<usize>,
}

/// What a [`GroupedSink`] keeps of each group at each step, step-major
/// (`groups` entries per step).
enum GroupAcc {
    /// Operators folded member by member (see [`aggregate::GroupFold`]).
    Folds(Vec<aggregate::GroupFold>),
    /// The members' values (quantile, stddev, stdvar).
    Values(Vec<Vec<f64>>),
    /// The members' (value, series) (topk, bottomk).
    Ranked(Vec<Vec<(f64, usize)>>),
}

impl GroupAcc {
    /// The kind `op` needs, empty until [`TableSink::start`].
    fn for_op(op: AggregateOp) -> GroupAcc {
        if aggregate::GroupFold::folds(op) {
            GroupAcc::Folds(Vec::new())
        } else if matches!(op, AggregateOp::Topk | AggregateOp::Bottomk) {
            GroupAcc::Ranked(Vec::new())
        } else {
            GroupAcc::Values(Vec::new())
        }
    }
}

impl TableSink for GroupedSink<'_> {
    fn start(&mut self, steps: usize, _series: usize) {
        let n = steps * self.groups;
        match &mut self.acc {
            GroupAcc::Folds(folds) => *folds = vec![aggregate::GroupFold::new(self.op); n],
            GroupAcc::Values(values) => *values = vec![Vec::new(); n],
            GroupAcc::Ranked(ranked) => *ranked = vec![Vec::new(); n],
        }
        self.puts = vec![0; steps];
    }

    #[inline]
    fn put(&mut self, j: usize, i: u32, v: f64, _t: i64) {
        if let Some(c) = self.puts.get_mut(j) {
            *c += 1;
        }
        if let Some((op, s)) = self.filter {
            if !binary::scalar_op(op, v, s).1 {
                return;
            }
        }
        let Some(&g) = self.ids.get(i as usize) else { return };
        let at = j * self.groups + g;
        match &mut self.acc {
            GroupAcc::Folds(folds) => {
                if let Some(fold) = folds.get_mut(at) {
                    fold.add(self.op, v);
                }
            }
            GroupAcc::Values(values) => {
                if let Some(vals) = values.get_mut(at) {
                    vals.push(v);
                }
            }
            GroupAcc::Ranked(ranked) => {
                if let Some(keyed) = ranked.get_mut(at) {
                    keyed.push((v, i as usize));
                }
            }
        }
    }
}

/// Most (series x steps) entries a [`StepTable`] may hold.
const STEP_TABLE_MAX: usize = 2_000_000;

/// The result of an instant selector at every step of a range query:
/// per step, `(series index, value, sample timestamp)` of the series that
/// have a sample there. Computed series by series (one sequential pass over
/// each series' samples) instead of touching every series at every step.
#[derive(Debug)]
struct StepTable {
    /// Lookup time of the first step (the selector's time for selector
    /// tables, the evaluation time for function tables).
    base: i64,
    step: i64,
    rows: Vec<Vec<(u32, f64, i64)>>,
    /// The loaded data the series indexes refer to (a selector's key).
    src: usize,
    /// Whether the elements drop `__name__` (function results).
    drop_name: bool,
    /// Samples each step reads, for the query's sample limit (`None`: the
    /// row's length).
    counts: Option<Vec<usize>>,
    /// Annotations (info notes) to raise when the table is used.
    notes: Vec<String>,
    /// Span the notes are about.
    note_span: Span,
}

impl StepTable {
    /// The row index for lookup time `ts`, if `ts` is one of the steps.
    fn index(&self, ts: i64) -> Option<usize> {
        let d = ts.checked_sub(self.base)?;
        if d < 0 || d % self.step != 0 {
            return None;
        }
        let j = usize::try_from(d / self.step).ok()?;
        (j < self.rows.len()).then_some(j)
    }

    /// Samples read at row `j`.
    fn count(&self, j: usize) -> usize {
        match &self.counts {
            Some(c) => c.get(j).copied().unwrap_or(0),
            None => self.rows.get(j).map_or(0, Vec::len),
        }
    }
}

/// A range query's result from label sets and their points (those without
/// points left out), without their names when `drop_name`, sorted by
/// labels; `None` when two label sets end up equal (the step-by-step path
/// then merges them or reports the collision).
fn result_series<'l>(sets: impl Iterator<Item = (&'l Labels, Vec<Sample>)>, drop_name: bool) -> Option<Vec<MatrixSeries>> {
    let mut out: Vec<MatrixSeries> = sets
        .filter(|(_, points)| !points.is_empty())
        .map(|(labels, points)| MatrixSeries { labels: if drop_name { labels.without(NAME_LABELS) } else { labels.clone() }, points })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    if out.windows(2).any(|w| w[0].labels == w[1].labels) {
        return None;
    }
    Some(out)
}

/// `e` as the expression whose elements it keeps and the comparison with a
/// number that picks them, when it is `x > 5` (a comparison with a number,
/// without `bool`, keeps the elements of `x` it holds for, unchanged); `e`
/// and no filter otherwise. `None` for a comparison with anything else.
fn comparison_filter(e: &Expr) -> Option<(&Expr, Option<(crate::ast::BinaryOp, f64)>)> {
    match e {
        Expr::Binary { op, lhs, rhs, modifier, .. } if op.is_comparison() && !modifier.return_bool => match strip_parens(rhs) {
            Expr::Number { value, .. } => Some((strip_parens(lhs), Some((*op, *value)))),
            _ => None,
        },
        _ => Some((e, None)),
    }
}

/// `e` without enclosing parentheses.
fn strip_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren { expr, .. } = e {
        e = expr;
    }
    e
}

/// Fewest series per thread for which loading is split across threads.
/// Threads of the pool read series the query already selected, so the
/// split costs a wake-up and a copy of each part's samples. In process,
/// 1,000 series read only at the steps (`avg by (job, kind)
/// (node_memory_bytes)` of the benchmark) loaded in 2.8-3.2 ms on two
/// threads against 4.0 ms on one, while 400-600 series of a `rate` or
/// `max_over_time` gained nothing measurable. But on the 2-vCPU VM these
/// figures come from, a woken thread often waits most of a millisecond
/// for a CPU: through metrics-server, with requests tens of milliseconds
/// apart, splitting those 1,000 series gave 3.5-5.6 ms against 4.5-4.8 ms
/// unsplit, while 3,200 series (`sum by (instance) (rate(...))`) gained
/// (18.0-21.6 against 19.3-26.5 ms). Hence a split only from 1,500 series
/// per thread.
const PARALLEL_MIN_SERIES: usize = 1500;

/// The threads that read later parts of large selections: a pool of its
/// own, one thread fewer than the machine has, so that the engine neither
/// depends on nor crowds an embedder's global rayon pool. `None` when its
/// threads could not be started (loading then stays on the calling
/// thread).
fn loading_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(2, 64) - 1);
        rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("promql-load-{i}")).build().ok()
    })
    .as_ref()
}

/// Reads the samples one selector needs from series iterators.
#[derive(Default)]
struct SeriesReader {
    /// Inclusive range of samples needed.
    lo: i64,
    hi: i64,
    /// For selectors read only at steps: first step time, step, step count.
    steps: Option<(i64, i64, i64)>,
    scratch: Vec<Sample>,
    kept: Vec<Sample>,
    /// Whether to read start timestamps (see
    /// [`EngineOptions::use_start_timestamps`]).
    read_starts: bool,
    /// Start timestamps aligned with `scratch` / `kept` (0: none); empty
    /// when the series has none.
    st_scratch: Vec<i64>,
    kept_st: Vec<i64>,
}

impl SeriesReader {
    /// A reader with the same settings and empty buffers.
    fn like(&self) -> SeriesReader {
        SeriesReader { lo: self.lo, hi: self.hi, steps: self.steps, read_starts: self.read_starts, ..Default::default() }
    }

    /// The needed samples of one series (thinned to the steps' picks for
    /// step-only selectors) and their start timestamps (aligned with the
    /// samples, 0 for none; empty when the series has none), handed over
    /// rather than copied.
    fn read(&mut self, it: &mut dyn model::SampleIter) -> Result<(Vec<Sample>, Vec<i64>), StorageError> {
        self.scratch.clear();
        self.st_scratch.clear();
        if self.read_starts && it.has_start_timestamps() {
            // Sample by sample: the start timestamp belongs to the sample
            // just read.
            let mut cur = it.seek(self.lo)?;
            while let Some(x) = cur {
                if x.t > self.hi {
                    break;
                }
                self.scratch.push(x);
                self.st_scratch.push(it.start_timestamp().unwrap_or(0));
                cur = it.next()?;
            }
            if self.st_scratch.iter().all(|&st| st == 0) {
                self.st_scratch.clear();
            }
        } else if let Some(x) = it.seek(self.lo)? {
            if x.t <= self.hi {
                self.scratch.push(x);
                it.read_until(self.hi, &mut self.scratch)?;
            }
        }
        let Some((base, step, n)) = self.steps else {
            let st = std::mem::take(&mut self.st_scratch);
            return Ok((hand_over(&mut self.scratch), st));
        };
        self.kept.clear();
        self.kept_st.clear();
        if self.st_scratch.is_empty() {
            keep_step_samples(&self.scratch, base, step, n, &mut self.kept);
        } else {
            let (samples, sts) = (&self.scratch, &self.st_scratch);
            let (kept, kept_st) = (&mut self.kept, &mut self.kept_st);
            step_picks(samples, base, step, n, |i| {
                kept.push(samples[i]);
                kept_st.push(sts[i]);
            });
        }
        let st = std::mem::take(&mut self.kept_st);
        Ok((hand_over(&mut self.kept), st))
    }
}

/// Takes the samples out of `buf`, leaving it empty with room for a few
/// more than it held: the next series of a selector is usually about as
/// long, and is then read without growing (and copying) its buffer. A
/// series much shorter than the room it was read into gives the excess
/// back (the loaded data lives as long as the query).
fn hand_over(buf: &mut Vec<Sample>) -> Vec<Sample> {
    let n = buf.len();
    let mut v = std::mem::replace(buf, Vec::with_capacity(n + n / 16 + 4));
    if v.capacity() > 2 * n + 16 {
        v.shrink_to_fit();
    }
    v
}

/// The instant selectors of `e` that are read only at the steps of the
/// query (not under a subquery, without `@`, not `smoothed`), by key, and
/// the window-function calls over plain matrix selectors read only at the
/// steps (see [`functions::WindowFn`]), by address.
fn step_only_nodes(e: &Expr, sels: &mut Vec<usize>, calls: &mut Vec<usize>) {
    match e {
        Expr::Vector(vs) => {
            if vs.at.is_none() && !vs.smoothed {
                sels.push(key(vs));
            }
        }
        // Subqueries evaluate their inner expression at their own steps;
        // a matrix selector's samples are all needed.
        Expr::Subquery { .. } | Expr::Matrix { .. } => {}
        // `info`'s second argument is read at its first argument's times.
        Expr::Call { func, args, .. } if func == "info" => {
            if let Some(a) = args.first() {
                step_only_nodes(a, sels, calls);
            }
        }
        Expr::Call { func, args, .. } => {
            if let ([Expr::Matrix { selector, anchored: false, smoothed: false, .. }], Some(_)) = (args.as_slice(), functions::WindowFn::from_name(func)) {
                if selector.at.is_none() {
                    calls.push(e as *const Expr as usize);
                }
            }
            args.iter().for_each(|a| step_only_nodes(a, sels, calls));
        }
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => step_only_nodes(expr, sels, calls),
        Expr::Binary { lhs, rhs, .. } => {
            step_only_nodes(lhs, sels, calls);
            step_only_nodes(rhs, sels, calls);
        }
        Expr::Aggregate { expr, param, .. } => {
            if let Some(p) = param {
                step_only_nodes(p, sels, calls);
            }
            step_only_nodes(expr, sels, calls);
        }
        Expr::Number { .. } | Expr::String { .. } | Expr::Duration { .. } => {}
    }
}

/// Appends to `out` the samples (sorted by time) that an instant selector
/// picks at some step `base + j * step`, `j` in `0..=n`: the last sample
/// at or before the step. Others can never be the answer at any step.
fn keep_step_samples(samples: &[Sample], base: i64, step: i64, n: i64, out: &mut Vec<Sample>) {
    step_picks(samples, base, step, n, |i| out.push(samples[i]));
}

/// Calls `keep` with the index of every sample [`keep_step_samples`] keeps,
/// in order: step by step, the last sample at or before the step (a cursor
/// that only moves forward), each index once.
fn step_picks(samples: &[Sample], base: i64, step: i64, n: i64, mut keep: impl FnMut(usize)) {
    let mut idx = 0usize;
    let mut kept = usize::MAX;
    let (mut j, mut ts) = (0i64, base);
    while j <= n {
        // The samples up to the step: a few at most, with no check per
        // sample that the slice goes on (the search stops at the first
        // sample after the step, or the end).
        idx += samples[idx..].iter().take_while(|s| s.t <= ts).count();
        if idx > 0 && idx - 1 != kept {
            kept = idx - 1;
            keep(kept);
        }
        let Some(next) = samples.get(idx) else {
            // Every later step picks the last sample again.
            break;
        };
        if step <= 0 {
            break;
        }
        // The steps before the next sample pick the same one: go to the
        // first step at or after it (usually just the next step).
        let gap = next.t.saturating_sub(ts);
        if gap <= step {
            j += 1;
            ts = ts.saturating_add(step);
            continue;
        }
        let advance = (gap - 1) / step + 1;
        j = j.saturating_add(advance);
        ts = ts.saturating_add(advance.saturating_mul(step));
    }
}

/// Label-set equality that is cheap for clones of one set (they share
/// storage), falling back to comparing contents.
fn same_labels(a: &Labels, b: &Labels) -> bool {
    (std::ptr::eq(a.as_slice(), b.as_slice())) || a == b
}

/// The index of the first sample after `t` (like `partition_point(s.t <= t)`),
/// searching forward from `hint` (the answer for an earlier `t`): steps move
/// forward, so this touches a few nearby samples instead of binary-searching
/// the whole series each step. Falls back to a binary search when `t` moved
/// backwards.
fn upper_bound(samples: &[Sample], hint: usize, t: i64) -> usize {
    let n = samples.len();
    let h = hint.min(n);
    if h > 0 && samples[h - 1].t > t {
        return samples[..h].partition_point(|s| s.t <= t);
    }
    // Invariant: every sample before `lo` is at or before `t`.
    let mut lo = h;
    let mut step = 1;
    while lo < n && samples[lo].t <= t {
        let probe = lo + step;
        if probe < n && samples[probe].t <= t {
            lo = probe + 1;
            step *= 2;
        } else {
            let hi = probe.min(n);
            return lo + 1 + samples[lo + 1..hi].partition_point(|s| s.t <= t);
        }
    }
    lo
}

/// A `Duration` option in ms, clamped like durations in queries.
fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).min(crate::ast::MAX_DURATION_MS)
}

/// The first operand of a node that carries a vector through (for the
/// reference time of `info()`).
fn first_child(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } | Expr::Aggregate { expr, .. } => Some(expr),
        Expr::Binary { lhs, rhs, .. } => Some(if lhs.value_type() == crate::ast::ValueType::Scalar { rhs } else { lhs }),
        Expr::Call { args, .. } => args.iter().find(|a| matches!(a.value_type(), crate::ast::ValueType::Vector | crate::ast::ValueType::Matrix)),
        _ => None,
    }
}

/// Labels removed when a metric's name is dropped: the name and the
/// type/unit metadata labels that belong to it.
pub(crate) const NAME_LABELS: &[&str] = &[model::METRIC_NAME, "__type__", "__unit__"];

/// Removes `__name__` from elements marked for it and checks that no two
/// elements share a label set.
pub(crate) fn finalize_vector(els: Vec<El>, span: Span) -> Result<Vec<El>, EvalError> {
    let mut out: Vec<El> = Vec::with_capacity(els.len());
    let mut seen = std::collections::HashSet::new();
    for mut el in els {
        if el.drop_name {
            el.labels = el.labels.without(NAME_LABELS);
            el.drop_name = false;
        }
        if !seen.insert(el.labels.clone()) {
            return Err(EvalError::rt("vector cannot contain metrics with the same labelset", span));
        }
        out.push(el);
    }
    Ok(out)
}

pub(crate) fn run(opts: &EngineOptions, store: &dyn Queryable, expr: &Expr, start: i64, end: i64, step: i64, instant: bool) -> Result<QueryResult, EvalError> {
    let mut ctx = Ctx {
        opts,
        start,
        end,
        step,
        lookback: duration_ms(opts.lookback_delta),
        closed: i64::from(opts.closed_windows),
        data: HashMap::new(),
        has_stale: HashMap::new(),
        starts: HashMap::new(),
        deadline: Instant::now() + opts.timeout,
        samples: 0,
        annotations: Vec::new(),
        subquery_cache: HashMap::new(),
        cursors: HashMap::new(),
        group_cache: HashMap::new(),
        series_groups: HashMap::new(),
        step_calls: Vec::new(),
        step_tables: HashMap::new(),
        counter_names: AddrMap::default(),
        match_cache: HashMap::new(),
        table_matches: HashMap::new(),
    };
    ctx.load(store, expr)?;
    let span = expr.span();
    if instant {
        let value = match ctx.eval(expr, start)? {
            Val::Scalar(v) => Value::Scalar { t: start, value: v },
            Val::Str(s) => Value::String { t: start, value: s },
            Val::Vector(v) => {
                let v = if opts.delayed_name_removal { finalize_vector(v, span)? } else { v };
                Value::Vector(v.into_iter().map(|el| VectorSample { labels: el.labels, t: start, value: el.v }).collect())
            }
            Val::Matrix(m) => {
                let mut out: Vec<MatrixSeries> = Vec::new();
                for s in m {
                    let labels = if s.drop_name { s.labels.without(NAME_LABELS) } else { s.labels };
                    out.push(MatrixSeries { labels, points: s.points.to_vec() });
                }
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                for w in out.windows(2) {
                    if w[0].labels == w[1].labels {
                        return Err(EvalError::rt("vector cannot contain metrics with the same labelset", span));
                    }
                }
                Value::Matrix(out)
            }
        };
        return Ok(QueryResult { value, annotations: ctx.annotations });
    }
    if let Some(series) = ctx.matrix_from_table(expr, start, end, step)? {
        return Ok(QueryResult { value: Value::Matrix(series), annotations: ctx.annotations });
    }
    if let Some(series) = ctx.matrix_from_grouped_table(expr, start, end, step)? {
        return Ok(QueryResult { value: Value::Matrix(series), annotations: ctx.annotations });
    }
    let mut acc = SeriesAccumulator::default();
    let mut total = 0usize;
    let mut t = start;
    // Label sets without the name, by address of the label set they were
    // made from (kept alive so the address is not reused): the same series
    // comes back at every step, so its name is dropped once, and the
    // accumulator sees one shared label set.
    let mut unnamed: AddrMap<(Labels, Labels)> = AddrMap::default();
    let empty = Labels::empty();
    while t <= end {
        ctx.samples = 0;
        match ctx.eval(expr, t)? {
            Val::Scalar(v) => acc.push(0, &empty, t, v, span)?,
            Val::Vector(v) => {
                total += v.len();
                for (j, el) in v.into_iter().enumerate() {
                    if !el.drop_name {
                        acc.push(j, &el.labels, t, el.v, span)?;
                        continue;
                    }
                    let p = el.labels.as_slice().as_ptr() as usize;
                    if let Some((_, l)) = unnamed.get(&p) {
                        acc.push(j, l, t, el.v, span)?;
                        continue;
                    }
                    if unnamed.len() >= 1 << 20 {
                        unnamed.clear();
                    }
                    let l = el.labels.without(NAME_LABELS);
                    acc.push(j, &l, t, el.v, span)?;
                    unnamed.insert(p, (el.labels, l));
                }
            }
            Val::Matrix(_) => return Err(EvalError::rt("invalid expression type \"range vector\" for range query, must be Scalar or instant Vector", span)),
            Val::Str(_) => return Err(EvalError::rt("invalid expression type \"string\" for range query, must be Scalar or instant Vector", span)),
        }
        if total > opts.max_samples {
            return Err(EvalError::TooManySamples("range query result"));
        }
        t += step;
    }
    let mut series = acc.series;
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let value = Value::Matrix(series);
    Ok(QueryResult { value, annotations: ctx.annotations })
}

/// Collects the steps of a range query into series. Steps usually list the
/// same series in the same order, so the series seen at the same position in
/// the previous step is tried before the hash index.
#[derive(Default)]
struct SeriesAccumulator {
    series: Vec<MatrixSeries>,
    index: HashMap<Labels, usize>,
    /// Series index by position in the previous step.
    by_pos: Vec<usize>,
}

impl SeriesAccumulator {
    fn push(&mut self, pos: usize, labels: &Labels, t: i64, v: f64, span: Span) -> Result<(), EvalError> {
        let hit = self.by_pos.get(pos).copied().filter(|&i| same_labels(&self.series[i].labels, labels));
        let i = match hit {
            Some(i) => i,
            None => match self.index.get(labels) {
                Some(&i) => i,
                None => {
                    self.index.insert(labels.clone(), self.series.len());
                    self.series.push(MatrixSeries { labels: labels.clone(), points: Vec::new() });
                    self.series.len() - 1
                }
            },
        };
        if pos < self.by_pos.len() {
            self.by_pos[pos] = i;
        } else {
            self.by_pos.push(i);
        }
        let pts = &mut self.series[i].points;
        // Two samples at one step for one label set: names were dropped (or
        // labels rewritten) into a collision.
        if pts.last().is_some_and(|p| p.t == t) {
            return Err(EvalError::rt("vector cannot contain metrics with the same labelset", span));
        }
        pts.push(Sample::new(t, v));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every step of a range query equals an instant query at that time
    /// (the range path uses per-query tables and caches the instant path
    /// does not).
    /// The samples an instant selector can pick at the steps, by brute
    /// force: for every step, the last sample at or before it.
    fn picks_by_brute_force(samples: &[Sample], base: i64, step: i64, n: i64) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for j in 0..=n {
            let ts = base + j * step;
            if let Some(i) = samples.iter().rposition(|s| s.t <= ts) {
                if out.last() != Some(&i) {
                    out.push(i);
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The sliding queue gives the fold's value (bits included: which
        /// of 0.0 and -0.0 wins) for windows moving forward.
        #[test]
        fn sliding_extremes_equal_the_fold(
            vals in proptest::collection::vec(prop_oneof![Just(f64::NAN), Just(0.0), Just(-0.0), (-3i32..4).prop_map(f64::from)], 0..60),
            moves in proptest::collection::vec((0usize..4, 0usize..5), 1..40),
            max in proptest::bool::ANY,
        ) {
            let samples: Vec<Sample> = vals.iter().enumerate().map(|(i, &v)| Sample::new(i as i64, v)).collect();
            let wf = if max { functions::WindowFn::MaxOverTime } else { functions::WindowFn::MinOverTime };
            let mut q = SlidingExtreme::default();
            let (mut lo, mut hi, mut next_in) = (0usize, 0usize, 0usize);
            for (dl, dh) in moves {
                lo = (lo + dl).min(samples.len());
                hi = (hi + dh).max(lo).min(samples.len());
                q.slide(&samples, lo, &mut next_in, hi, max);
                if lo < hi {
                    let want = wf.apply(&samples[lo..hi], 1, 1).unwrap_or(f64::NAN);
                    let got = q.front(&samples).unwrap_or(f64::NAN);
                    prop_assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{:?} [{}, {}): {} vs {}", vals, lo, hi, got, want);
                }
            }
        }

        #[test]
        fn step_picks_are_the_last_sample_before_each_step(
            gaps in proptest::collection::vec(1i64..200, 0..60),
            first in -500i64..500,
            base in -300i64..300,
            step in 1i64..120,
            n in 0i64..40,
        ) {
            let mut t = first;
            let samples: Vec<Sample> = gaps.iter().map(|g| { t += g; Sample::new(t, 0.0) }).collect();
            let mut got = Vec::new();
            step_picks(&samples, base, step, n, |i| got.push(i));
            prop_assert_eq!(got, picks_by_brute_force(&samples, base, step, n));
        }
    }

    fn check_steps_match_instant(store: &model::mem::MemStore, q: &str, start: i64, end: i64, step: i64) -> Result<(), TestCaseError> {
        let engine = super::super::Engine::default();
        let range = match engine.range_query(store, q, start, end, step) {
            Ok(r) => r,
            Err(e) => {
                // Then some step fails as an instant query too.
                let mut t = start;
                let mut failed = false;
                while t <= end {
                    failed |= engine.instant_query(store, q, t).is_err();
                    t += step;
                }
                prop_assert!(failed, "{q}: range query failed ({e}) but every instant query worked");
                return Ok(());
            }
        };
        let Value::Matrix(series) = range.value else {
            return Err(TestCaseError::fail(format!("{q}: not a matrix")));
        };
        let mut t = start;
        while t <= end {
            let inst = engine.instant_query(store, q, t).map_err(|e| TestCaseError::fail(format!("{q} @ {t}: {e}")))?;
            let mut want: Vec<(String, u64)> = match inst.value {
                Value::Vector(v) => v.into_iter().map(|s| (s.labels.to_string(), s.value.to_bits())).collect(),
                Value::Scalar { value, .. } => vec![("{}".to_string(), value.to_bits())],
                other => return Err(TestCaseError::fail(format!("{q}: instant result {other:?}"))),
            };
            let mut got: Vec<(String, u64)> = series
                .iter()
                .filter_map(|s| s.points.iter().find(|p| p.t == t).map(|p| (s.labels.to_string(), p.v.to_bits())))
                .collect();
            want.sort();
            got.sort();
            prop_assert_eq!(got, want, "{} at {}", q, t);
            t += step;
        }
        Ok(())
    }

    /// Prometheus 2.x windows include a sample exactly at the start of a
    /// range window or of the lookback; Prometheus 3's (the default) do not.
    #[test]
    fn closed_windows_include_the_start() {
        let store = model::mem::MemStore::new();
        let l = Labels::from_pairs([("__name__", "x")]);
        for i in 0..=8 {
            store.append(&l, i * 15_000, i as f64);
        }
        let v3 = super::super::Engine::default();
        let v2 = super::super::Engine::new(EngineOptions { closed_windows: true, ..EngineOptions::default() });
        let scalar = |e: &super::super::Engine, q: &str, t: i64| match e.instant_query(&store, q, t).unwrap().value {
            Value::Vector(v) => v.first().map(|s| s.value),
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(scalar(&v3, "count_over_time(x[1m])", 60_000), Some(4.0));
        assert_eq!(scalar(&v2, "count_over_time(x[1m])", 60_000), Some(5.0));
        // The last sample is at 120s: 5m later it has just left the lookback.
        assert_eq!(scalar(&v3, "x", 420_000), None);
        assert_eq!(scalar(&v2, "x", 420_000), Some(8.0));
        assert_eq!(scalar(&v3, "count_over_time(x[1m:15s])", 60_000), Some(4.0));
        assert_eq!(scalar(&v2, "count_over_time(x[1m:15s])", 60_000), Some(5.0));
        // Range queries (step tables) agree with instant queries.
        for e in [&v2, &v3] {
            let Value::Matrix(m) = e.range_query(&store, "count_over_time(x[1m])", 60_000, 120_000, 60_000).unwrap().value else { panic!("not a matrix") };
            assert_eq!(m[0].points[0].v, scalar(e, "count_over_time(x[1m])", 60_000).unwrap());
            let Value::Matrix(m) = e.range_query(&store, "x", 360_000, 420_000, 60_000).unwrap().value else { panic!("not a matrix") };
            assert_eq!(m[0].points.last().map(|p| p.t), if e.options().closed_windows { Some(420_000) } else { Some(360_000) });
        }
    }

    /// A series' samples leave the reader whole; the reader keeps room for
    /// the next, and a short series does not keep the room of a long one.
    #[test]
    fn hand_over_keeps_samples_and_bounds_room() {
        let mut buf: Vec<Sample> = (0..1000).map(|i| Sample::new(i, i as f64)).collect();
        let long = hand_over(&mut buf);
        assert_eq!(long.len(), 1000);
        assert!(long.iter().enumerate().all(|(i, s)| s.t == i as i64));
        assert!(buf.is_empty() && buf.capacity() >= 1000);
        buf.extend((0..10).map(|i| Sample::new(i, 0.0)));
        let short = hand_over(&mut buf);
        assert_eq!(short.len(), 10);
        assert!(short.capacity() <= 2 * 10 + 16, "{}", short.capacity());
    }

    /// Aggregations folded while their step table is worked out raise the
    /// notes and warnings the step-by-step path does, and fail alike under a
    /// sample limit (a unary `+` keeps a query off the folded path without
    /// changing it).
    #[test]
    fn grouped_tables_note_and_limit_like_steps() {
        let store = model::mem::MemStore::new();
        for i in 0..6i64 {
            let l = Labels::from_pairs([("__name__", "g".to_string()), ("a", (i % 2).to_string()), ("i", i.to_string())]);
            for k in 0..40 {
                store.append(&l, k * 15_000, (k * (i + 1)) as f64);
            }
        }
        for max_samples in [50_000_000, 20] {
            let e = super::super::Engine::new(EngineOptions { max_samples, ..EngineOptions::default() });
            for (folded, stepped) in [
                ("sum by (a) (rate(g[1m]))", "sum by (a) (+rate(g[1m]))"),
                ("quantile(2, g)", "quantile(2, +g)"),
                ("count(g > 100)", "count(+g > 100)"),
                ("stddev by (a) (irate(g[2m]))", "stddev by (a) (+irate(g[2m]))"),
                ("topk by (a) (2, rate(g[1m]))", "topk by (a) (2, +rate(g[1m]))"),
            ] {
                let run = |q: &str| match e.range_query(&store, q, 60_000, 540_000, 30_000) {
                    Ok(r) => Ok((format!("{:?}", r.value), r.annotations.iter().map(|a| (a.message.clone(), a.kind)).collect::<Vec<_>>())),
                    Err(err) => Err(err.to_string()),
                };
                let (a, b) = (run(folded), run(stepped));
                assert_eq!(a, b, "{folded} / {stepped} with max_samples {max_samples}");
                if max_samples > 1000 {
                    let (_, notes) = a.as_ref().expect("within the limits");
                    assert!(!notes.is_empty() || folded.starts_with("count") || folded.starts_with("stddev"), "{folded}: no notes");
                }
            }
        }
    }

    /// Loading split across threads gives exactly the single-threaded
    /// results, for step-only selectors, range selectors and subqueries.
    #[test]
    fn parallel_loading_matches_one_thread() {
        let store = model::mem::MemStore::new();
        for i in 0..3500i64 {
            let l = Labels::from_pairs([("__name__", "m_total".to_string()), ("a", (i % 7).to_string()), ("i", i.to_string())]);
            for k in 0..40i64 {
                // Irregular times and a reset, staleness for some series.
                let t = k * 15_000 + (i * 37 + k * 11) % 5_000;
                let v = if k == 30 && i % 5 == 0 { model::stale_nan() } else { ((k * (i % 13 + 1)) % 97) as f64 };
                store.append(&l, t, v);
            }
        }
        let one = super::super::Engine::new(EngineOptions { parallelism: 1, ..EngineOptions::default() });
        let three = super::super::Engine::new(EngineOptions { parallelism: 3, ..EngineOptions::default() });
        for q in [
            "count by (a) (m_total)",
            "sum by (a) (rate(m_total[2m]))",
            "max_over_time(m_total[1m:30s])",
            "m_total offset 1m > 50",
            "timestamp(m_total)",
        ] {
            let a = one.range_query(&store, q, 60_000, 600_000, 45_000).unwrap();
            let b = three.range_query(&store, q, 60_000, 600_000, 45_000).unwrap();
            let (Value::Matrix(a), Value::Matrix(b)) = (a.value, b.value) else { panic!("{q}: not matrices") };
            assert!(!a.is_empty(), "{q}");
            assert_eq!(a.len(), b.len(), "{q}");
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.labels, y.labels, "{q}");
                assert_eq!(x.points.len(), y.points.len(), "{q}");
                assert!(x.points.iter().zip(&y.points).all(|(p, r)| p.bit_eq(r)), "{q} {}", x.labels);
            }
        }
        let limited = super::super::Engine::new(EngineOptions { parallelism: 2, max_samples: 5_000, ..EngineOptions::default() });
        assert!(matches!(limited.range_query(&store, "m_total", 0, 600_000, 60_000), Err(EvalError::TooManySamples(_))));
    }

    /// Start timestamps (issue 3) survive parallel loading and the
    /// thinning of step-only selectors: results equal one thread's and an
    /// instant query's at each step.
    #[test]
    fn start_timestamps_through_parallel_and_thinned_loading() {
        let store = model::mem::MemStore::new();
        for i in 0..3200i64 {
            let l = Labels::from_pairs([("__name__", "c_total".to_string()), ("a", (i % 5).to_string()), ("i", i.to_string())]);
            for k in 0..40i64 {
                let t = k * 15_000 + (i * 13) % 4_000;
                // Every third series has starts: a cumulative counter that
                // restarts every 10 samples.
                let st = (i % 3 == 0).then(|| (k / 10) * 150_000 + 1);
                store.append_with_start(&l, t, (k * (i % 7 + 1)) as f64, st);
            }
        }
        let one = super::super::Engine::new(EngineOptions { parallelism: 1, ..EngineOptions::default() });
        let three = super::super::Engine::new(EngineOptions { parallelism: 3, ..EngineOptions::default() });
        for q in ["sum by (a) (start_timestamp(c_total))", "sum by (a) (resets(c_total[2m]))", "sum by (a) (increase(c_total[2m]))"] {
            let a = one.range_query(&store, q, 60_000, 600_000, 45_000).unwrap();
            let b = three.range_query(&store, q, 60_000, 600_000, 45_000).unwrap();
            let (Value::Matrix(a), Value::Matrix(b)) = (a.value, b.value) else { panic!("{q}: not matrices") };
            assert_eq!(a.len(), 5, "{q}");
            assert_eq!(a.len(), b.len(), "{q}");
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.labels, y.labels, "{q}");
                assert!(x.points.iter().zip(&y.points).all(|(p, r)| p.bit_eq(r)), "{q} {}", x.labels);
                for p in &x.points {
                    let inst = one.instant_query(&store, q, p.t).unwrap();
                    let Value::Vector(v) = inst.value else { panic!("{q}: not a vector") };
                    let got = v.iter().find(|s| s.labels == x.labels).map(|s| s.value.to_bits());
                    assert_eq!(got, Some(p.v.to_bits()), "{q} {} at {}", x.labels, p.t);
                }
            }
        }
        // The starts are really used: values never drop, so every reset
        // comes from a start timestamp.
        let r = one.instant_query(&store, "sum(resets(c_total[2m]))", 330_000).unwrap();
        let Value::Vector(v) = r.value else { panic!("not a vector") };
        assert!(v[0].value > 0.0);
        let r = one.instant_query(&store, "sum(start_timestamp(c_total))", 300_000).unwrap();
        let Value::Vector(v) = r.value else { panic!("not a vector") };
        assert!(v[0].value > 0.0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn range_steps_match_instant_queries(
            series in prop::collection::vec(
                (0u8..3, 0u8..2, prop::collection::vec((prop_oneof![6 => Just(15_000i64), 1 => Just(300_000), 1 => 1i64..40_000], prop_oneof![8 => (0i64..1000).prop_map(|v| v as f64), 1 => Just(model::stale_nan()), 1 => Just(1.6e308)]), 0..40)),
                1..6,
            ),
            step in prop_oneof![Just(15_000i64), Just(60_000), 1_000i64..90_000],
            start in prop_oneof![(0i64..20).prop_map(|k| k * 15_000), 0i64..200_000],
        ) {
            let store = model::mem::MemStore::new();
            for (i, (a, name, samples)) in series.iter().enumerate() {
                let metric = if *name == 0 { "m_total" } else { "g" };
                let l = Labels::from_pairs([("__name__", metric.to_string()), ("a", a.to_string()), ("i", i.to_string())]);
                let mut t = 0;
                for (dt, v) in samples {
                    t += dt;
                    store.append(&l, t, *v);
                }
            }
            let end = start + 12 * step;
            for q in [
                "m_total",
                "g offset 1m",
                "sum by (a) (m_total)",
                "count without (i) ({__name__=~\".+\"})",
                "max by (a) (g) or min by (a) (m_total)",
                "rate(m_total[2m])",
                "sum by (a) (increase(m_total[3m]))",
                "-g",
                "g / on (a) group_left max by (a) (m_total)",
                "g > bool ignoring (i) group_left sum by (a) (m_total)",
                "g / on (a) group_left m_total",
                "m_total and on (a) g",
                "m_total unless on (a) g",
                "avg by (a) (g)",
                "irate(m_total[2m])",
                "max_over_time(g[1m])",
                "sum_over_time(g[90s] offset 30s)",
                "last_over_time(g[1m])",
                "avg by (a) (delta(g[2m]))",
                "min by (a) (count_over_time(g[1m]))",
                "group by (a) (idelta(g[2m]))",
                "sum(avg_over_time(m_total[1m]))",
                "count by (a) (g > 500)",
                "sum by (a) ((g) <= 200)",
                "count by (a) (rate(m_total[2m]) != 0)",
                // Matched once per query from the step tables.
                "g / ignoring (x) m_total",
                "g > on (a, i) m_total",
                "g == bool ignoring (x) m_total",
                "m_total - on (i) group_left (a) g",
                "g + on (a, i) group_right m_total",
                "rate(m_total[2m]) / on (a, i) g",
                "(g) * on (i) (m_total offset 1m)",
                // Ranked straight from the step tables.
                "topk(2, g)",
                "bottomk by (a) (1, rate(m_total[2m]))",
                "topk by (a) (3, g > 100)",
                "bottomk(1e20, avg_over_time(g[1m]))",
                // Folded into groups while the step tables are worked out.
                "max by (a) (rate(m_total[2m]))",
                "min without (i) (g offset 1m)",
                "avg(increase(m_total[2m]))",
                "group without (i) (g)",
                "count(g > 500)",
                "avg by (a) (g >= 0)",
                "sum by (__name__) (rate({__name__=~\".+\"}[2m]))",
                "quantile(0.5, g)",
                "quantile by (a) ((0.9), rate(m_total[2m]))",
                "quantile without (i) (2, g)",
                "stddev by (a) (g)",
                "stdvar(increase(m_total[2m]) > 3)",
                "topk(0.5, g)",
                "topk without (i) (1, g offset 1m)",
                "bottomk by (a) (2, sum_over_time(g[1m]) < 900)",
            ] {
                check_steps_match_instant(&store, q, start, end, step)?;
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn upper_bound_matches_partition_point(
            ts in prop::collection::btree_set(-50i64..50, 0..40),
            hint in 0usize..50,
            t in -60i64..60,
        ) {
            let samples: Vec<Sample> = ts.into_iter().map(|t| Sample::new(t, 0.0)).collect();
            prop_assert_eq!(upper_bound(&samples, hint, t), samples.partition_point(|s| s.t <= t));
        }
    }
}
