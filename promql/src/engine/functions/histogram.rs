//! Functions over classic histograms (series of `le` buckets):
//! `histogram_quantile`, `histogram_quantiles`, `histogram_fraction`. The
//! native-histogram-only functions return nothing for float input.

use super::super::eval::{Ctx, El, Val};
use super::super::EvalError;
use super::{format_value, scalar_arg, string_arg, vector_arg};
use crate::ast::{Expr, Span};
use model::Labels;
use std::collections::HashMap;

const MONOTONIC_DOCS: &str = "(see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)";

#[derive(Clone, Copy, Debug)]
struct Bucket {
    upper: f64,
    count: f64,
}

/// Sorts, merges equal bounds and forces monotonic counts. Returns
/// whether counts had to be forced up. `None` when there is no `+Inf`
/// bucket.
fn prepare(buckets: &mut Vec<Bucket>) -> Option<bool> {
    buckets.sort_by(|a, b| a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal));
    if !buckets.last().is_some_and(|b| b.upper == f64::INFINITY) {
        return None;
    }
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => merged.push(*b),
        }
    }
    *buckets = merged;
    let mut forced = false;
    let mut prev = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let cur = b.count;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, 1e-12) {
            b.count = prev;
            continue;
        }
        if cur < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    Some(forced)
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < eps * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

fn bucket_quantile(q: f64, buckets: &[Bucket]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 || observations.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|x| x.count < rank);
    if b == n {
        return buckets[n - 1].upper;
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return buckets[0].upper;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].upper, buckets[b].count);
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    start + (end - start) * (rank / count)
}

/// Cumulative count at `x`, interpolating linearly inside finite buckets.
fn cumulative_at(x: f64, buckets: &[Bucket]) -> f64 {
    let total = buckets[buckets.len() - 1].count;
    if x == f64::NEG_INFINITY {
        return 0.0;
    }
    if x == f64::INFINITY {
        return total;
    }
    let mut rank = 0.0;
    for (i, b) in buckets.iter().enumerate() {
        let lower = if i == 0 {
            if b.upper > 0.0 {
                0.0
            } else {
                f64::NEG_INFINITY
            }
        } else {
            buckets[i - 1].upper
        };
        if x <= b.upper {
            if x <= lower {
                return rank;
            }
            if lower == f64::NEG_INFINITY {
                return b.count;
            }
            if b.upper == f64::INFINITY {
                return rank;
            }
            return rank + (b.count - rank) * (x - lower) / (b.upper - lower);
        }
        rank = b.count;
    }
    total
}

fn bucket_fraction(lower: f64, upper: f64, buckets: &[Bucket]) -> f64 {
    let total = buckets[buckets.len() - 1].count;
    if total == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    (cumulative_at(upper, buckets) - cumulative_at(lower, buckets)) / total
}

struct Group {
    labels: Labels,
    name: String,
    buckets: Vec<Bucket>,
}

/// Groups classic bucket series by their labels without `le` and name.
fn group_buckets(ctx: &mut Ctx, v: Vec<El>, span: Span) -> Vec<Group> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for el in v {
        let name = el.labels.metric_name().unwrap_or("").to_string();
        let le = el.labels.get("le").unwrap_or("");
        let upper = match le.trim().to_ascii_lowercase().as_str() {
            "+inf" | "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            s => s.parse::<f64>().ok().filter(|_| !s.is_empty() && !s.contains("inf") && !s.contains("nan")),
        };
        let Some(upper) = upper else {
            ctx.warn(format!("bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {name:?}"), span);
            continue;
        };
        // The name stays in the group key and is dropped at the end, so two
        // histograms that differ only by name collide as in Prometheus.
        let key = el.labels.without(&["le"]);
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push(Group { labels: key, name: name.clone(), buckets: Vec::new() });
            groups.len() - 1
        });
        groups[i].buckets.push(Bucket { upper, count: el.v });
    }
    groups
}

pub(super) fn call(ctx: &mut Ctx, name: &str, args: &[Expr], span: Span, t: i64) -> Result<Option<Val>, EvalError> {
    match name {
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar" => {
            // These read native histograms only; float samples are ignored.
            let _ = vector_arg(ctx, &args[0], t)?;
            Ok(Some(Val::Vector(Vec::new())))
        }
        "histogram_quantile" | "histogram_quantiles" | "histogram_fraction" => {
            let (vec_arg, qs, label): (&Expr, Vec<f64>, Option<String>) = match name {
                "histogram_quantile" => (&args[1], vec![scalar_arg(ctx, &args[0], t)?], None),
                "histogram_fraction" => (&args[2], vec![scalar_arg(ctx, &args[0], t)?, scalar_arg(ctx, &args[1], t)?], None),
                _ => {
                    let label = string_arg(ctx, &args[1], t)?;
                    let mut qs = Vec::new();
                    for a in &args[2..] {
                        qs.push(scalar_arg(ctx, a, t)?);
                    }
                    (&args[0], qs, Some(label))
                }
            };
            if name != "histogram_fraction" {
                for (i, q) in qs.iter().enumerate() {
                    if !(0.0..=1.0).contains(q) {
                        let qspan = if name == "histogram_quantile" { args[0].span() } else { args[2 + i].span() };
                        ctx.warn(format!("quantile value should be between 0 and 1, got {}", format_value(*q)), qspan);
                    }
                }
            }
            let v = vector_arg(ctx, vec_arg, t)?;
            let vspan = vec_arg.span();
            let groups = group_buckets(ctx, v, vspan);
            let mut out = Vec::new();
            for mut g in groups {
                let forced = prepare(&mut g.buckets);
                if forced == Some(true) && name != "histogram_fraction" {
                    ctx.info(format!("input to histogram_quantile needed to be fixed for monotonicity {MONOTONIC_DOCS} for metric name {:?}", g.name), vspan);
                }
                let ok = forced.is_some();
                match name {
                    "histogram_quantile" => {
                        let v = if ok { bucket_quantile(qs[0], &g.buckets) } else { f64::NAN };
                        out.push(El { labels: g.labels, v, drop_name: true, src_t: t });
                    }
                    "histogram_fraction" => {
                        let v = if ok { bucket_fraction(qs[0], qs[1], &g.buckets) } else { f64::NAN };
                        out.push(El { labels: g.labels, v, drop_name: true, src_t: t });
                    }
                    _ => {
                        let label = label.clone().unwrap_or_default();
                        if g.labels.contains(&label) {
                            return Err(EvalError::rt(format!("label {label:?} already exists in the input series"), span));
                        }
                        for q in &qs {
                            let v = if ok { bucket_quantile(*q, &g.buckets) } else { f64::NAN };
                            let mut lb = g.labels.builder();
                            lb.set(label.clone(), quantile_label(*q));
                            out.push(El { labels: lb.build(), v, drop_name: true, src_t: t });
                        }
                    }
                }
            }
            Ok(Some(Val::Vector(out)))
        }
        _ => Ok(None),
    }
}

/// Formats a quantile as a label value: integers keep one decimal (`0.0`).
fn quantile_label(q: f64) -> String {
    if q.is_finite() && q.fract() == 0.0 {
        format!("{q:.1}")
    } else {
        format_value(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs.iter().map(|&(upper, count)| Bucket { upper, count }).collect()
    }

    #[test]
    fn quantile_in_middle_of_bucket() {
        let mut bs = b(&[(0.0, 0.0), (2.0, 1.0), (4.0, 2.0), (6.0, 3.0), (f64::INFINITY, 3.0)]);
        assert_eq!(prepare(&mut bs), Some(false));
        assert!((bucket_quantile(0.5, &bs) - 3.0).abs() < 1e-12);
        assert!((bucket_fraction(0.0, 4.0, &bs) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn monotonicity_is_forced() {
        let mut bs = b(&[(1.0, 2.0), (2.0, 1.0), (f64::INFINITY, 3.0)]);
        assert_eq!(prepare(&mut bs), Some(true));
        assert_eq!(bs[1].count, 2.0);
        let mut no_inf = b(&[(1.0, 2.0)]);
        assert_eq!(prepare(&mut no_inf), None);
    }
}
