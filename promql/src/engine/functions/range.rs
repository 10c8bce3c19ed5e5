//! Functions over range vectors: rate and friends, `*_over_time`,
//! regression, smoothing.

use super::super::aggregate::{average, kahan_inc, quantile, variance};
use super::super::eval::{Ctx, El, RSeries, RangeArg, Val};
use super::super::EvalError;
use super::{absent_labels, format_value};
use crate::ast::{Expr, Span};
use model::Sample;

/// Go's `%f`: six decimals, `+Inf`/`-Inf`/`NaN` for the special values.
fn go_fixed(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        format_value(v)
    }
}

fn linear_regression(samples: &[Sample], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = samples[0].v;
    let mut const_y = true;
    for (i, s) in samples.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_time) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(s.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * s.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    let intercept = sy / n - slope * sx / n;
    (slope, intercept)
}

/// Prometheus's extrapolated rate over the window `(end - range, end]`.
fn extrapolated_rate(points: &[Sample], range: i64, end: i64, counter: bool, is_rate: bool) -> Option<f64> {
    extrapolated_rate_with(points, range, end, counter, is_rate, true)
}

/// `rate` (`is_rate`) or `increase` of `points`: [`WindowFn::apply_with`]
/// for those two, inlined into the caller's loop.
#[inline(always)]
pub(crate) fn counter_rate(points: &[Sample], range: i64, end: i64, is_rate: bool, may_reset: bool) -> Option<f64> {
    extrapolated_rate_with(points, range, end, true, is_rate, may_reset)
}

/// [`extrapolated_rate`]; `may_reset: false` says the caller knows the
/// window holds no counter reset, so the scan for them is skipped (the
/// result is the same).
#[inline(always)]
fn extrapolated_rate_with(points: &[Sample], range: i64, end: i64, counter: bool, is_rate: bool, may_reset: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut result = last.v - first.v;
    if counter && may_reset {
        let mut prev = first.v;
        for p in &points[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let range_start = end - range;
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let mut to_end = (end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg = sampled / (points.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// A start timestamp the counter functions can use: known (0 means
/// unknown, as in Prometheus and OpenTelemetry) and before the sample's own
/// timestamp (a start at or after the sample covers no time).
fn valid_start(st: i64, t: i64) -> Option<i64> {
    (st != 0 && st < t).then_some(st)
}

/// Whether a sample whose (valid) start timestamp is `st` begins a new
/// counter after `prev`: it started after `prev` was taken, or exactly at
/// `prev` when `prev` had a start of its own (a delta sample following
/// another; a cumulative sample whose predecessor has no start timestamp
/// only tells where the counter's history begins).
fn start_resets(prev: Sample, prev_st: Option<i64>, st: Option<i64>) -> bool {
    match st {
        Some(st) => st > prev.t || (st == prev.t && prev_st.is_some()),
        None => false,
    }
}

/// Walks consecutive points with their valid start timestamps, calling
/// `f(prev, cur, reset)` for each pair, where `reset` says the counter
/// restarted (its value dropped or its start timestamp says so). Returns
/// whether a start timestamp overlaps the previous sample (it lies before
/// the previous sample without being the same start).
fn walk_starts(points: &[Sample], sts: &[i64], mut f: impl FnMut(Sample, Sample, bool)) -> bool {
    let mut overlap = false;
    let mut prev_st = points.first().zip(sts.first()).and_then(|(p, &st)| valid_start(st, p.t));
    for (w, &st) in points.windows(2).zip(sts.iter().skip(1)) {
        let (prev, cur) = (w[0], w[1]);
        let st = valid_start(st, cur.t);
        if st.is_some_and(|x| x < prev.t) && st != prev_st {
            overlap = true;
        }
        f(prev, cur, cur.v < prev.v || start_resets(prev, prev_st, st));
        prev_st = st;
    }
    overlap
}

/// [`extrapolated_rate`] of a counter with start timestamps (`sts`,
/// aligned with `points`, 0 = none): start timestamps also mark resets,
/// and when the first point's counter started inside the window, the
/// counter is known to have been 0 at its start, so the increase from
/// there is used instead of extrapolating to the window start. The second
/// value tells whether some start timestamp overlaps its previous sample.
fn extrapolated_rate_with_starts(points: &[Sample], sts: &[i64], range: i64, end: i64, is_rate: bool) -> (Option<f64>, bool) {
    let (Some(&first), Some(&last)) = (points.first(), points.last()) else { return (None, false) };
    let range_start = end - range;
    let known_start = sts.first().and_then(|&st| valid_start(st, first.t)).filter(|&st| st > range_start);
    let mut result = last.v - first.v;
    let overlap = walk_starts(points, sts, |prev, _, reset| {
        if reset {
            result += prev.v;
        }
    });
    if points.len() < 2 && known_start.is_none() {
        return (None, overlap);
    }
    let n = points.len();
    let mut to_end = (end - last.t) as f64 / 1000.0;
    let factor = if let Some(st) = known_start {
        result += first.v;
        let sampled = (last.t - st) as f64 / 1000.0;
        if n < 2 {
            // One sample: nothing tells how often the series is sampled,
            // so nothing is extrapolated.
            to_end = 0.0;
        } else {
            let avg = (last.t - first.t) as f64 / 1000.0 / (n - 1) as f64;
            if to_end >= avg * 1.1 {
                to_end = avg / 2.0;
            }
        }
        (sampled + to_end) / sampled
    } else {
        let mut to_start = (first.t - range_start) as f64 / 1000.0;
        let sampled = (last.t - first.t) as f64 / 1000.0;
        let avg = sampled / (n - 1) as f64;
        let threshold = avg * 1.1;
        if to_start >= threshold {
            to_start = avg / 2.0;
        }
        if result > 0.0 && first.v >= 0.0 {
            let to_zero = sampled * (first.v / result);
            if to_zero < to_start {
                to_start = to_zero;
            }
        }
        if to_end >= threshold {
            to_end = avg / 2.0;
        }
        (sampled + to_start + to_end) / sampled
    };
    let mut v = result * factor;
    if is_rate {
        v /= range as f64 / 1000.0;
    }
    (Some(v), overlap)
}

/// The value at `t` interpolated linearly between the samples around it
/// (each within `lookback`); with only one neighbour, its value. For
/// counters, a drop between the neighbours is a reset: the value rises
/// from zero to the later sample.
pub(crate) fn interpolate(samples: &[Sample], t: i64, lookback: i64, counter: bool) -> Option<f64> {
    let i = samples.partition_point(|s| s.t <= t);
    let before = (i > 0).then(|| samples[i - 1]).filter(|s| s.t > t - lookback);
    let after = samples.get(i).copied().filter(|s| s.t < t + lookback);
    match (before, after) {
        (Some(b), _) if b.t == t => Some(b.v),
        (Some(b), Some(a)) => {
            let frac = (t - b.t) as f64 / (a.t - b.t) as f64;
            if counter && a.v < b.v {
                Some(a.v * frac)
            } else {
                Some(b.v + (a.v - b.v) * frac)
            }
        }
        (Some(b), None) => Some(b.v),
        (None, Some(a)) => Some(a.v),
        (None, None) => None,
    }
}

/// Builds the points of an anchored or smoothed window: the window's own
/// samples plus boundary points at `end - range` and `end`. `None` when the
/// window has no data to anchor to.
fn boundary_points(ra: &RangeArg, idx: usize, lookback: i64, counter: bool) -> Option<Vec<Sample>> {
    let ext: Vec<Sample> = ra.extended[idx].iter().filter(|s| !model::is_stale_nan(s.v)).copied().collect();
    let start = ra.end - ra.range;
    let inside: Vec<Sample> = ext.iter().filter(|s| s.t > start && s.t <= ra.end).copied().collect();
    let mut out = Vec::with_capacity(inside.len() + 2);
    if ra.anchored {
        let first = *inside.first()?;
        // The value at the window start is the last sample at or before it
        // (within the lookback), else the first sample in the window.
        let i = ext.partition_point(|s| s.t <= start);
        let before = (i > 0).then(|| ext[i - 1]).filter(|s| s.t > start - lookback);
        out.push(Sample::new(start, before.unwrap_or(first).v));
        out.extend(inside.iter().copied());
        if let Some(l) = out.last().copied() {
            if l.t != ra.end {
                out.push(Sample::new(ra.end, l.v));
            }
        }
        return Some(out);
    }
    // Smoothed: needs data at or before the window end and at or after its
    // start (data only before or only after the window gives nothing).
    if !ext.iter().any(|s| s.t <= ra.end) || !ext.iter().any(|s| s.t >= start) {
        return None;
    }
    out.push(Sample::new(start, interpolate(&ext, start, lookback, counter)?));
    out.extend(inside.iter().filter(|s| s.t != ra.end).copied());
    out.push(Sample::new(ra.end, interpolate(&ext, ra.end, lookback, counter)?));
    Some(out)
}

fn anchored_delta(points: &[Sample], counter: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let mut result = points[points.len() - 1].v - points[0].v;
    if counter {
        let mut prev = points[0].v;
        for p in &points[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    Some(result)
}

fn per_series(ra: &RangeArg, keep_name: bool, mut f: impl FnMut(&RSeries) -> Option<f64>, t: i64) -> Val {
    let mut out = Vec::new();
    for s in &ra.series {
        if s.points.is_empty() {
            continue;
        }
        if let Some(v) = f(s) {
            out.push(El { labels: s.labels.clone(), v, drop_name: s.drop_name || !keep_name, src_t: t });
        }
    }
    Val::Vector(out)
}

/// Range functions of one matrix argument whose value depends only on the
/// window's samples: the engine may work them out for every step of a
/// range query at once (see `Ctx::call_table`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WindowFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    AvgOverTime,
    SumOverTime,
    CountOverTime,
    MinOverTime,
    MaxOverTime,
    LastOverTime,
}

impl WindowFn {
    pub(crate) fn from_name(name: &str) -> Option<WindowFn> {
        Some(match name {
            "rate" => WindowFn::Rate,
            "increase" => WindowFn::Increase,
            "delta" => WindowFn::Delta,
            "irate" => WindowFn::Irate,
            "idelta" => WindowFn::Idelta,
            "avg_over_time" => WindowFn::AvgOverTime,
            "sum_over_time" => WindowFn::SumOverTime,
            "count_over_time" => WindowFn::CountOverTime,
            "min_over_time" => WindowFn::MinOverTime,
            "max_over_time" => WindowFn::MaxOverTime,
            "last_over_time" => WindowFn::LastOverTime,
            _ => return None,
        })
    }

    /// Whether the result keeps the metric name.
    pub(crate) fn keeps_name(self) -> bool {
        self == WindowFn::LastOverTime
    }

    /// Whether Prometheus notes that the metric may not be a counter.
    pub(crate) fn wants_counter(self) -> bool {
        matches!(self, WindowFn::Rate | WindowFn::Increase)
    }

    /// Whether the function is worked out from the window's compensated
    /// sum (see [`Self::value_from_sum`]).
    pub(crate) fn is_sum(self) -> bool {
        matches!(self, WindowFn::AvgOverTime | WindowFn::SumOverTime)
    }

    /// `avg_over_time` or `sum_over_time` of `points` given their
    /// [`finite_kahan_sum`] (`None`: work it out the careful way).
    pub(crate) fn value_from_sum(self, points: &[Sample], sum: Option<(f64, f64)>) -> f64 {
        match (self, sum) {
            (WindowFn::AvgOverTime, Some((a, c))) => {
                let n = points.len() as f64;
                a / n + c / n
            }
            (WindowFn::AvgOverTime, None) => average(points.iter().map(|p| p.v)),
            (_, Some((a, c))) => a + c,
            (_, None) => {
                let (a, c) = points.iter().fold((0.0, 0.0), |(a, c), p| kahan_inc(p.v, a, c));
                a + c
            }
        }
    }

    /// The function's value over the (non-empty, stale-free) window
    /// `(end - range, end]`.
    pub(crate) fn apply(self, points: &[Sample], range: i64, end: i64) -> Option<f64> {
        self.apply_with(points, range, end, true)
    }

    /// [`Self::apply`]; `may_reset: false` when the caller knows no value
    /// in the window is below its predecessor (skips the counter-reset
    /// scan of `rate`/`increase`; same result).
    pub(crate) fn apply_with(self, points: &[Sample], range: i64, end: i64, may_reset: bool) -> Option<f64> {
        match self {
            WindowFn::Rate => extrapolated_rate_with(points, range, end, true, true, may_reset),
            WindowFn::Increase => extrapolated_rate_with(points, range, end, true, false, may_reset),
            WindowFn::Delta => extrapolated_rate(points, range, end, false, false),
            WindowFn::Irate | WindowFn::Idelta => {
                let n = points.len();
                if n < 2 {
                    return None;
                }
                let (a, b) = (points[n - 2], points[n - 1]);
                if self == WindowFn::Idelta {
                    return Some(b.v - a.v);
                }
                let dv = if b.v < a.v { b.v } else { b.v - a.v };
                let dt = (b.t - a.t) as f64 / 1000.0;
                if dt == 0.0 {
                    return None;
                }
                Some(dv / dt)
            }
            WindowFn::AvgOverTime | WindowFn::SumOverTime => Some(self.value_from_sum(points, finite_kahan_sum(points))),
            WindowFn::CountOverTime => Some(points.len() as f64),
            WindowFn::MinOverTime => Some(points.iter().fold(f64::NAN, |m, p| if m.is_nan() || p.v < m { p.v } else { m })),
            WindowFn::MaxOverTime => Some(points.iter().fold(f64::NAN, |m, p| if m.is_nan() || p.v > m { p.v } else { m })),
            WindowFn::LastOverTime => points.last().map(|p| p.v),
        }
    }
}

/// The compensated (Neumaier) sum of the values and its compensation, as
/// [`kahan_inc`] folds them, when the sum stays finite; `None` otherwise.
///
/// Without the infinity checks of [`kahan_inc`] the loop has no branches.
/// It gives the same result whenever the final sum is finite: a running
/// sum that once becomes infinite stays infinite or NaN, so a finite
/// result means no step hit the checks. Infinite or NaN sums go the
/// careful way (which also handles `avg`'s switch to an incremental mean).
pub(crate) fn finite_kahan_sum(points: &[Sample]) -> Option<(f64, f64)> {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for p in points {
        let t = sum + p.v;
        let (x, y) = if sum.abs() >= p.v.abs() { (sum, p.v) } else { (p.v, sum) };
        c += (x - t) + y;
        sum = t;
    }
    (sum.is_finite() && c.is_finite()).then_some((sum, c))
}

/// [`finite_kahan_sum`] of four windows at once, each lane doing exactly
/// the operations of the one-window loop. One compensated sum is a chain
/// of dependent additions; four independent chains keep the floating-point
/// units busy where one leaves them waiting on the previous addition, and
/// as one vector of four (`wide::f64x4`: two SSE2 registers on any x86-64)
/// they take half the instructions: lane-wise IEEE additions, so each lane's
/// result is bit for bit the scalar loop's.
pub(crate) fn finite_kahan_sums4(w: [&[Sample]; 4]) -> [Option<(f64, f64)>; 4] {
    // Knuth's TwoSum: the rounding error of `sum + v` without comparing
    // magnitudes. It is the exact error, as Neumaier's ordered difference
    // is, so `c` gets the same value (while the sum is finite: otherwise
    // the result is not used); six additions and no selects, the same for
    // every lane.
    macro_rules! step {
        ($sum:expr, $c:expr, $v:expr) => {{
            let v = $v;
            let t = $sum + v;
            let v_part = t - $sum;
            let sum_part = t - v_part;
            $c += ($sum - sum_part) + (v - v_part);
            $sum = t;
        }};
    }
    let (mut sum, mut c) = (wide::f64x4::ZERO, wide::f64x4::ZERO);
    let common = w.iter().map(|x| x.len()).min().unwrap_or(0);
    let lanes = w[0][..common].iter().zip(&w[1][..common]).zip(&w[2][..common]).zip(&w[3][..common]);
    for (((a, b), d), e) in lanes {
        step!(sum, c, wide::f64x4::new([a.v, b.v, d.v, e.v]));
    }
    let (sum, c) = (sum.to_array(), c.to_array());
    let mut out = [None; 4];
    for (l, o) in out.iter_mut().enumerate() {
        let (mut sum, mut c) = (sum[l], c[l]);
        for p in &w[l][common..] {
            step!(sum, c, p.v);
        }
        *o = (sum.is_finite() && c.is_finite()).then_some((sum, c));
    }
    out
}

/// The note `rate`/`increase` give for a metric that does not look like a
/// counter, if `labels` is such a metric.
pub(crate) fn not_counter_note(labels: &model::Labels) -> Option<String> {
    let metric = labels.metric_name()?;
    let typed_counter = labels.get("__type__") == Some("counter");
    if typed_counter || ["_total", "_sum", "_count", "_bucket"].iter().any(|x| metric.ends_with(x)) {
        return None;
    }
    Some(format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric:?}"))
}

const ANCHORED_OK: &[&str] = &["changes", "delta", "increase", "rate", "resets"];
const SMOOTHED_OK: &[&str] = &["delta", "increase", "rate"];

pub(super) fn call(ctx: &mut Ctx, name: &str, args: &[Expr], span: Span, t: i64) -> Result<Option<Val>, EvalError> {
    let margs = crate::functions::lookup(name).map(|f| f.args).unwrap_or(&[]);
    let Some(mpos) = margs.iter().position(|a| *a == crate::ast::ValueType::Matrix) else {
        return Ok(None);
    };
    let mut scalars = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != mpos {
            match ctx.eval(a, t)? {
                Val::Scalar(v) => scalars.push(v),
                _ => return Err(EvalError::rt("expected a scalar argument", a.span())),
            }
        }
    }
    let ra = ctx.range_arg(&args[mpos], t)?;
    if ra.anchored && !ANCHORED_OK.contains(&name) {
        return Err(EvalError::rt(format!("anchored modifier can only be used with: {} - not with {name}", ANCHORED_OK.join(", ")), span));
    }
    if ra.smoothed && !SMOOTHED_OK.contains(&name) {
        return Err(EvalError::rt(format!("smoothed modifier can only be used with: {} - not with {name}", SMOOTHED_OK.join(", ")), span));
    }
    let lookback = ctx.lookback;
    if ra.anchored || ra.smoothed {
        let mut out = Vec::new();
        for (i, s) in ra.series.iter().enumerate() {
            let counter = name != "delta";
            let Some(pts) = boundary_points(&ra, i, lookback, counter) else { continue };
            let v = match name {
                "rate" | "increase" | "delta" => {
                    let counter = name != "delta";
                    anchored_delta(&pts, counter).map(|d| if name == "rate" { d / (ra.range as f64 / 1000.0) } else { d })
                }
                "changes" | "resets" => {
                    if pts.is_empty() {
                        None
                    } else {
                        let n = pts.windows(2).filter(|w| if name == "changes" { w[0].v != w[1].v && !(w[0].v.is_nan() && w[1].v.is_nan()) } else { w[1].v < w[0].v }).count();
                        Some(n as f64)
                    }
                }
                _ => None,
            };
            if let Some(v) = v {
                out.push(El { labels: s.labels.clone(), v, drop_name: true, src_t: t });
            }
        }
        return Ok(Some(Val::Vector(out)));
    }
    let range = ra.range;
    let end = ra.end;
    if name == "rate" || name == "increase" {
        for s in &ra.series {
            if s.points.len() < 2 {
                continue;
            }
            // Label sets repeat at every step: judge each one once.
            let p = s.labels.as_slice().as_ptr() as usize;
            let not_counter = match ctx.counter_names.get(&p) {
                Some((_, v)) => v.clone(),
                None => {
                    let v = not_counter_note(&s.labels);
                    if ctx.counter_names.len() >= 1 << 20 {
                        ctx.counter_names.clear();
                    }
                    // The label set is kept so that its address is not reused.
                    ctx.counter_names.insert(p, (s.labels.clone(), v.clone()));
                    v
                }
            };
            if let Some(note) = not_counter {
                ctx.info(note, args[mpos].span());
            }
        }
    }
    if uses_starts(name) && ra.series.iter().any(|s| s.points.starts().is_some()) {
        return Ok(Some(counter_with_starts(ctx, name, &ra, &args[mpos], t)));
    }
    if let Some(wf) = WindowFn::from_name(name) {
        return Ok(Some(per_series(&ra, wf.keeps_name(), |s| wf.apply(&s.points, range, end), t)));
    }
    let v = match name {
        "deriv" => per_series(
            &ra,
            false,
            |s| {
                if s.points.len() < 2 {
                    return None;
                }
                Some(linear_regression(&s.points, s.points[0].t).0)
            },
            t,
        ),
        "predict_linear" => {
            let d = scalars[0];
            per_series(
                &ra,
                false,
                |s| {
                    if s.points.len() < 2 {
                        return None;
                    }
                    let (slope, intercept) = linear_regression(&s.points, t);
                    Some(slope * d + intercept)
                },
                t,
            )
        }
        "changes" => per_series(&ra, false, |s| Some(s.points.windows(2).filter(|w| w[0].v != w[1].v && !(w[0].v.is_nan() && w[1].v.is_nan())).count() as f64), t),
        "resets" => per_series(&ra, false, |s| Some(s.points.windows(2).filter(|w| w[1].v < w[0].v).count() as f64), t),
        "first_over_time" => per_series(&ra, true, |s| s.points.first().map(|p| p.v), t),
        "ts_of_last_over_time" => per_series(&ra, false, |s| s.points.last().map(|p| p.t as f64 / 1000.0), t),
        "ts_of_first_over_time" => per_series(&ra, false, |s| s.points.first().map(|p| p.t as f64 / 1000.0), t),
        "ts_of_max_over_time" | "ts_of_min_over_time" => {
            let max = name == "ts_of_max_over_time";
            per_series(
                &ra,
                false,
                |s| {
                    let mut best: Option<Sample> = None;
                    for p in s.points.iter() {
                        best = match best {
                            None => Some(*p),
                            Some(b) if b.v.is_nan() && !p.v.is_nan() => Some(*p),
                            Some(b) if (max && p.v >= b.v) || (!max && p.v <= b.v) => Some(*p),
                            keep => keep,
                        };
                    }
                    best.map(|b| b.t as f64 / 1000.0)
                },
                t,
            )
        }
        "present_over_time" => per_series(&ra, false, |_| Some(1.0), t),
        "stddev_over_time" => per_series(&ra, false, |s| Some(variance(s.points.iter().map(|p| p.v)).sqrt()), t),
        "stdvar_over_time" => per_series(&ra, false, |s| Some(variance(s.points.iter().map(|p| p.v))), t),
        "mad_over_time" => per_series(
            &ra,
            false,
            |s| {
                if s.points.iter().any(|p| p.v.is_nan()) {
                    return Some(f64::NAN);
                }
                let mut vs: Vec<f64> = s.points.iter().map(|p| p.v).collect();
                let med = quantile(0.5, &mut vs);
                let mut dev: Vec<f64> = vs.iter().map(|v| (v - med).abs()).collect();
                Some(quantile(0.5, &mut dev))
            },
            t,
        ),
        "quantile_over_time" => {
            let q = scalars[0];
            if !(0.0..=1.0).contains(&q) {
                ctx.warn(format!("quantile value should be between 0 and 1, got {}", format_value(q)), args[0].span());
            }
            per_series(
                &ra,
                false,
                |s| {
                    let mut vs: Vec<f64> = s.points.iter().map(|p| p.v).collect();
                    Some(quantile(q, &mut vs))
                },
                t,
            )
        }
        "double_exponential_smoothing" => {
            let (sf, tf) = (scalars[0], scalars[1]);
            if !(sf > 0.0 && sf < 1.0) {
                return Err(EvalError::rt(format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {}", go_fixed(sf)), span));
            }
            if !(tf > 0.0 && tf < 1.0) {
                return Err(EvalError::rt(format!("invalid trend factor. Expected: 0 < tf < 1, got: {}", go_fixed(tf)), span));
            }
            per_series(
                &ra,
                false,
                |s| {
                    let p = &s.points;
                    if p.len() < 2 {
                        return None;
                    }
                    let (mut s0, mut s1) = (0.0, p[0].v);
                    let mut b = p[1].v - p[0].v;
                    for (i, pt) in p.iter().enumerate().skip(1) {
                        let x = sf * pt.v;
                        if i > 1 {
                            b = tf * (s1 - s0) + (1.0 - tf) * b;
                        }
                        let y = (1.0 - sf) * (s1 + b);
                        s0 = s1;
                        s1 = x + y;
                    }
                    Some(s1)
                },
                t,
            )
        }
        "absent_over_time" => {
            if ra.series.iter().any(|s| !s.points.is_empty()) {
                Val::Vector(Vec::new())
            } else {
                Val::Vector(vec![El { labels: absent_labels(&args[mpos]), v: 1.0, drop_name: false, src_t: t }])
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(v))
}

/// Whether the range function `name` reads start timestamps (when the
/// series has them; see [`counter_with_starts`]).
pub(crate) fn uses_starts(name: &str) -> bool {
    matches!(name, "rate" | "increase" | "irate" | "resets")
}

/// `rate`, `increase`, `irate` and `resets` over a range whose series
/// (some of them) carry start timestamps; series without them are
/// evaluated exactly as usual. Warns when a start timestamp overlaps the
/// previous sample.
fn counter_with_starts(ctx: &mut Ctx, name: &str, ra: &RangeArg, arg: &Expr, t: i64) -> Val {
    let mut overlapping: Vec<String> = Vec::new();
    let (range, end) = (ra.range, ra.end);
    let v = per_series(
        ra,
        false,
        |s| {
            let pts = &s.points;
            let zeros;
            let sts = match pts.starts() {
                Some(st) => st,
                None => {
                    zeros = vec![0; pts.len()];
                    &zeros[..]
                }
            };
            let (v, overlap) = match name {
                "rate" | "increase" => extrapolated_rate_with_starts(pts, sts, range, end, name == "rate"),
                "irate" => {
                    let n = pts.len();
                    let mut last_reset = false;
                    let overlap = walk_starts(pts, sts, |_, _, reset| last_reset = reset);
                    if n < 2 {
                        (None, overlap)
                    } else {
                        let (a, b) = (pts[n - 2], pts[n - 1]);
                        let dv = if last_reset { b.v } else { b.v - a.v };
                        let dt = (b.t - a.t) as f64 / 1000.0;
                        (Some(dv / dt), overlap)
                    }
                }
                _ => {
                    let mut n = 0;
                    let overlap = walk_starts(pts, sts, |_, _, reset| n += usize::from(reset));
                    (Some(n as f64), overlap)
                }
            };
            if overlap {
                let metric = s.labels.metric_name().unwrap_or("").to_string();
                if !overlapping.contains(&metric) {
                    overlapping.push(metric);
                }
            }
            v
        },
        t,
    );
    for metric in overlapping {
        ctx.warn(format!("sample has start time that overlaps with previous sample timestamp for metric {metric:?}"), arg.span());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The branch-free sum gives the careful fold's bits, or declines.
        #[test]
        fn finite_sum_matches_the_careful_fold(vals in proptest::collection::vec(prop_oneof![
            -1e6f64..1e6, Just(f64::MAX), Just(-f64::MAX), Just(f64::INFINITY), Just(f64::NAN), Just(1e-300), Just(0.1), any::<f64>()], 0..50)) {
            let pts: Vec<Sample> = vals.iter().enumerate().map(|(i, &v)| Sample::new(i as i64, v)).collect();
            let careful = pts.iter().fold((0.0, 0.0), |(a, c), p| kahan_inc(p.v, a, c));
            if let Some((a, c)) = finite_kahan_sum(&pts) {
                prop_assert_eq!(a.to_bits(), careful.0.to_bits());
                prop_assert_eq!(c.to_bits(), careful.1.to_bits());
            }
            // Four lanes give each window's one-lane result, or decline
            // (TwoSum's differences can overflow near the largest values,
            // where Neumaier's ordered difference does not).
            let cut = |k: usize| &pts[..pts.len().saturating_sub(k)];
            let four = finite_kahan_sums4([cut(0), cut(3), cut(1), &pts[pts.len() / 2..]]);
            for (w, got) in [cut(0), cut(3), cut(1), &pts[pts.len() / 2..]].into_iter().zip(four) {
                let one = finite_kahan_sum(w);
                if let Some((a, c)) = got {
                    prop_assert_eq!(Some((a.to_bits(), c.to_bits())), one.map(|(a, c)| (a.to_bits(), c.to_bits())));
                } else {
                    prop_assert!(one.is_none() || w.iter().any(|p| p.v.abs() > f64::MAX / 4.0));
                }
            }
            let avg = WindowFn::AvgOverTime.apply_with(&pts, 1, 1, false);
            if !pts.is_empty() {
                let want = average(pts.iter().map(|p| p.v));
                let got = avg.unwrap_or(f64::NAN);
                prop_assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{} vs {}", got, want);
            }
        }
    }

    #[test]
    fn rate_extrapolates_to_window_edges() {
        // 0, 10, 20 ... every 15s over a 60s window ending at 60s.
        let pts: Vec<Sample> = (1..=4).map(|i| Sample::new(i * 15_000, i as f64 * 10.0)).collect();
        let inc = extrapolated_rate(&pts, 60_000, 60_000, true, false).unwrap();
        assert!((inc - 40.0).abs() < 1e-9, "{inc}");
    }

    #[test]
    fn start_timestamps_mark_resets_and_replace_left_extrapolation() {
        // 1, 2, 3, 4 every minute from 2m, window (1m, 6m].
        let pts: Vec<Sample> = (2..=5).map(|i| Sample::new(i * 60_000, (i - 1) as f64)).collect();
        let inc = |sts: &[i64]| extrapolated_rate_with_starts(&pts, sts, 300_000, 360_000, false).0.unwrap();
        // No start timestamps: the usual extrapolation.
        let plain = extrapolated_rate(&pts, 300_000, 360_000, true, false).unwrap();
        assert!((inc(&[0; 4]) - plain).abs() < 1e-12);
        // Started at 90s, inside the window: 0 at 90s, then extrapolated
        // to the right only.
        assert!((inc(&[90_000; 4]) - 36.0 / 7.0).abs() < 1e-12);
        // A start at the sample's own time is unusable.
        assert!((inc(&[120_000; 4]) - plain).abs() < 1e-12);
        // A start after the previous sample is a reset.
        let (_, overlap) = extrapolated_rate_with_starts(&pts, &[0, 120_001, 0, 0], 300_000, 360_000, false);
        assert!(!overlap);
        assert!(inc(&[0, 120_001, 0, 0]) > plain);
        // A start before the previous sample that is not its start overlaps.
        assert!(extrapolated_rate_with_starts(&pts, &[0, 60_000, 60_000, 60_000], 300_000, 360_000, false).1);
        // One sample with a known start gives its value.
        let one = [Sample::new(240_000, 3.0)];
        assert_eq!(extrapolated_rate_with_starts(&one, &[90_000], 300_000, 360_000, false).0, Some(3.0));
        assert_eq!(extrapolated_rate_with_starts(&one, &[60_000], 300_000, 360_000, false).0, None);
    }

    #[test]
    fn start_resets_follow_the_otel_rules() {
        let prev = Sample::new(120_000, 1.0);
        // Cumulative with unknown start: the second sample's start is the
        // first sample's time, which had no start.
        assert!(!start_resets(prev, None, Some(120_000)));
        // Delta: each start is the previous sample's time.
        assert!(start_resets(prev, Some(60_000), Some(120_000)));
        assert!(start_resets(prev, None, Some(120_001)));
        assert!(!start_resets(prev, Some(60_000), Some(60_000)));
        assert!(!start_resets(prev, Some(60_000), None));
    }

    #[test]
    fn regression_on_a_line() {
        let pts: Vec<Sample> = (0..5).map(|i| Sample::new(i * 1000, 2.0 * i as f64 + 1.0)).collect();
        let (slope, intercept) = linear_regression(&pts, 0);
        assert!((slope - 2.0).abs() < 1e-12 && (intercept - 1.0).abs() < 1e-12);
    }
}
