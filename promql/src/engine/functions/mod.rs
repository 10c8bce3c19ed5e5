//! Function calls: dispatch plus the instant-vector functions. Range-vector
//! functions live in [`range`], classic-histogram functions in [`histogram`].

mod histogram;
mod range;

pub(crate) use range::{counter_rate, finite_kahan_sums4, interpolate, not_counter_note, uses_starts, WindowFn};

use super::aggregate::format_value;
use super::eval::{Ctx, El, Val};
use super::EvalError;
use crate::ast::{Expr, Span};
use chrono::{Datelike, Timelike};
use model::{is_valid_label_name, Labels, MatchType, METRIC_NAME};
use std::cmp::Ordering;

/// Go's `math.Max`: NaN wins.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren { expr, .. } => unwrap_parens(expr),
        other => other,
    }
}

fn vector_arg(ctx: &mut Ctx, e: &Expr, t: i64) -> Result<Vec<El>, EvalError> {
    match ctx.eval(e, t)? {
        Val::Vector(v) => Ok(v),
        _ => Err(EvalError::rt("expected an instant vector argument", e.span())),
    }
}

fn scalar_arg(ctx: &mut Ctx, e: &Expr, t: i64) -> Result<f64, EvalError> {
    match ctx.eval(e, t)? {
        Val::Scalar(v) => Ok(v),
        _ => Err(EvalError::rt("expected a scalar argument", e.span())),
    }
}

fn string_arg(ctx: &mut Ctx, e: &Expr, t: i64) -> Result<String, EvalError> {
    match ctx.eval(e, t)? {
        Val::Str(s) => Ok(s),
        _ => Err(EvalError::rt("expected a string argument", e.span())),
    }
}

fn map_values(v: Vec<El>, f: impl Fn(f64) -> f64) -> Val {
    Val::Vector(
        v.into_iter()
            .map(|mut el| {
                el.v = f(el.v);
                el.drop_name = true;
                el
            })
            .collect(),
    )
}

/// Labels for `absent()`: the selector's equality matchers, minus the name
/// and minus labels matched more than once.
pub(crate) fn absent_labels(e: &Expr) -> Labels {
    let vs = match unwrap_parens(e) {
        Expr::Vector(vs) => vs,
        Expr::Matrix { selector, .. } => selector,
        _ => return Labels::empty(),
    };
    let mut lb = Labels::empty().builder();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.kind == MatchType::Equal && !has.contains(&m.name.as_str()) {
            lb.set(m.name.clone(), m.value.clone());
            has.push(&m.name);
        } else {
            lb.del(&m.name);
        }
    }
    lb.build().without_empty()
}

/// Natural ("version") string order: digit runs compare numerically.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut ai, mut bi) = (a.as_bytes(), b.as_bytes());
    loop {
        match (ai.first(), bi.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let an = ai.iter().take_while(|c| c.is_ascii_digit()).count();
                let bn = bi.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (&ai[..an], &bi[..bn]);
                let ta: &[u8] = {
                    let z = da.iter().take_while(|c| **c == b'0').count();
                    &da[z..]
                };
                let tb: &[u8] = {
                    let z = db.iter().take_while(|c| **c == b'0').count();
                    &db[z..]
                };
                let o = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if o != Ordering::Equal {
                    return o;
                }
                ai = &ai[an..];
                bi = &bi[bn..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                ai = &ai[1..];
                bi = &bi[1..];
            }
        }
    }
}

fn date_fn(ctx: &mut Ctx, args: &[Expr], t: i64, f: fn(chrono::DateTime<chrono::Utc>) -> f64) -> Result<Val, EvalError> {
    let v = if args.is_empty() {
        vec![El { labels: Labels::empty(), v: t as f64 / 1000.0, drop_name: false, src_t: t }]
    } else {
        vector_arg(ctx, &args[0], t)?
    };
    let mut out = Vec::with_capacity(v.len());
    for mut el in v {
        if el.v.is_nan() || el.v.is_infinite() {
            continue;
        }
        let Some(dt) = chrono::DateTime::from_timestamp(el.v as i64, 0) else { continue };
        el.v = f(dt);
        el.drop_name = true;
        out.push(el);
    }
    Ok(Val::Vector(out))
}

pub(crate) fn call(ctx: &mut Ctx, name: &str, args: &[Expr], span: Span, t: i64) -> Result<Val, EvalError> {
    // The parser checks arity, but a hand-built AST may not have been
    // through it; the implementations below index arguments by position.
    let Some(f) = crate::functions::lookup(name) else {
        return Err(EvalError::rt(format!("unknown function with name {name:?}"), span));
    };
    if args.len() < f.min_args() || f.max_args().is_some_and(|m| args.len() > m) {
        return Err(EvalError::rt(format!("wrong number of arguments ({}) in call to {name:?}", args.len()), span));
    }
    if let Some(v) = range::call(ctx, name, args, span, t)? {
        return Ok(v);
    }
    if let Some(v) = histogram::call(ctx, name, args, span, t)? {
        return Ok(v);
    }
    let simple: Option<fn(f64) -> f64> = match name {
        "abs" => Some(f64::abs),
        "ceil" => Some(f64::ceil),
        "floor" => Some(f64::floor),
        "exp" => Some(f64::exp),
        "sqrt" => Some(f64::sqrt),
        "ln" => Some(f64::ln),
        "log2" => Some(f64::log2),
        "log10" => Some(f64::log10),
        "sgn" => Some(|v: f64| if v > 0.0 { 1.0 } else if v < 0.0 { -1.0 } else { v }),
        "acos" => Some(f64::acos),
        "acosh" => Some(f64::acosh),
        "asin" => Some(f64::asin),
        "asinh" => Some(f64::asinh),
        "atan" => Some(f64::atan),
        "atanh" => Some(f64::atanh),
        "cos" => Some(f64::cos),
        "cosh" => Some(f64::cosh),
        "sin" => Some(f64::sin),
        "sinh" => Some(f64::sinh),
        "tan" => Some(f64::tan),
        "tanh" => Some(f64::tanh),
        "deg" => Some(|v: f64| v * 180.0 / std::f64::consts::PI),
        "rad" => Some(|v: f64| v * std::f64::consts::PI / 180.0),
        _ => None,
    };
    if let Some(f) = simple {
        let v = vector_arg(ctx, &args[0], t)?;
        return Ok(map_values(v, f));
    }
    match name {
        "time" => Ok(Val::Scalar(t as f64 / 1000.0)),
        "start" => Ok(Val::Scalar(ctx.start as f64 / 1000.0)),
        "end" => Ok(Val::Scalar(ctx.end as f64 / 1000.0)),
        "pi" => Ok(Val::Scalar(std::f64::consts::PI)),
        "vector" => {
            let s = scalar_arg(ctx, &args[0], t)?;
            Ok(Val::Vector(vec![El { labels: Labels::empty(), v: s, drop_name: false, src_t: t }]))
        }
        "scalar" => {
            let v = vector_arg(ctx, &args[0], t)?;
            Ok(Val::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }))
        }
        "round" => {
            let v = vector_arg(ctx, &args[0], t)?;
            let to = if args.len() > 1 { scalar_arg(ctx, &args[1], t)? } else { 1.0 };
            let inv = 1.0 / to;
            Ok(map_values(v, move |x| (x * inv + 0.5).floor() / inv))
        }
        "clamp" => {
            let v = vector_arg(ctx, &args[0], t)?;
            let lo = scalar_arg(ctx, &args[1], t)?;
            let hi = scalar_arg(ctx, &args[2], t)?;
            if hi < lo {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(map_values(v, move |x| go_max(lo, go_min(hi, x))))
        }
        "clamp_max" => {
            let v = vector_arg(ctx, &args[0], t)?;
            let hi = scalar_arg(ctx, &args[1], t)?;
            Ok(map_values(v, move |x| go_min(hi, x)))
        }
        "clamp_min" => {
            let v = vector_arg(ctx, &args[0], t)?;
            let lo = scalar_arg(ctx, &args[1], t)?;
            Ok(map_values(v, move |x| go_max(lo, x)))
        }
        "timestamp" => {
            let is_selector = matches!(unwrap_parens(&args[0]), Expr::Vector(_));
            let v = vector_arg(ctx, &args[0], t)?;
            Ok(Val::Vector(
                v.into_iter()
                    .map(|mut el| {
                        el.v = if is_selector { el.src_t } else { t } as f64 / 1000.0;
                        el.drop_name = true;
                        el
                    })
                    .collect(),
            ))
        }
        "absent" => {
            let v = vector_arg(ctx, &args[0], t)?;
            if !v.is_empty() {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(Val::Vector(vec![El { labels: absent_labels(&args[0]), v: 1.0, drop_name: false, src_t: t }]))
        }
        "minute" => date_fn(ctx, args, t, |d| d.minute() as f64),
        "hour" => date_fn(ctx, args, t, |d| d.hour() as f64),
        "day_of_month" => date_fn(ctx, args, t, |d| d.day() as f64),
        "day_of_week" => date_fn(ctx, args, t, |d| d.weekday().num_days_from_sunday() as f64),
        "day_of_year" => date_fn(ctx, args, t, |d| d.ordinal() as f64),
        "month" => date_fn(ctx, args, t, |d| d.month() as f64),
        "year" => date_fn(ctx, args, t, |d| d.year() as f64),
        "days_in_month" => date_fn(ctx, args, t, |d| {
            let (y, m) = (d.year(), d.month());
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            match (chrono::NaiveDate::from_ymd_opt(ny, nm, 1), chrono::NaiveDate::from_ymd_opt(y, m, 1)) {
                (Some(a), Some(b)) => (a - b).num_days() as f64,
                _ => f64::NAN,
            }
        }),
        "sort" | "sort_desc" => {
            if ctx.step > 0 {
                ctx.warn("sort is ineffective for range queries since results are always ordered by labels", span);
            }
            let mut v = vector_arg(ctx, &args[0], t)?;
            let desc = name == "sort_desc";
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => {
                    let o = a.v.partial_cmp(&b.v).unwrap_or(Ordering::Equal);
                    if desc {
                        o.reverse()
                    } else {
                        o
                    }
                }
            });
            Ok(Val::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            if ctx.step > 0 {
                ctx.warn("sort is ineffective for range queries since results are always ordered by labels", span);
            }
            let mut v = vector_arg(ctx, &args[0], t)?;
            let mut names = Vec::new();
            for a in &args[1..] {
                names.push(string_arg(ctx, a, t)?);
            }
            let desc = name == "sort_by_label_desc";
            v.sort_by(|a, b| {
                for n in &names {
                    let (x, y) = (a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                    let o = natural_cmp(x, y);
                    if o != Ordering::Equal {
                        return if desc { o.reverse() } else { o };
                    }
                }
                let o = a.labels.cmp(&b.labels);
                if desc {
                    o.reverse()
                } else {
                    o
                }
            });
            Ok(Val::Vector(v))
        }
        "label_replace" => {
            let v = vector_arg(ctx, &args[0], t)?;
            let dst = string_arg(ctx, &args[1], t)?;
            let repl = string_arg(ctx, &args[2], t)?;
            let src = string_arg(ctx, &args[3], t)?;
            let re = string_arg(ctx, &args[4], t)?;
            let regex = regex::Regex::new(&format!("^(?s:{re})$"))
                .map_err(|_| EvalError::rt(format!("invalid regular expression in label_replace(): {re}"), span))?;
            if !is_valid_label_name(&dst) {
                return Err(EvalError::rt(format!("invalid destination label name in label_replace(): {dst}"), span));
            }
            let mut out = Vec::with_capacity(v.len());
            for mut el in v {
                let sv = el.labels.get(&src).unwrap_or("").to_string();
                if let Some(caps) = regex.captures(&sv) {
                    let mut res = String::new();
                    caps.expand(&repl, &mut res);
                    let mut lb = el.labels.builder();
                    if res.is_empty() {
                        lb.del(&dst);
                    } else {
                        lb.set(dst.clone(), res);
                    }
                    el.labels = lb.build();
                    if dst == METRIC_NAME {
                        el.drop_name = false;
                    }
                }
                out.push(el);
            }
            Ok(Val::Vector(out))
        }
        "label_join" => {
            let v = vector_arg(ctx, &args[0], t)?;
            let dst = string_arg(ctx, &args[1], t)?;
            let sep = string_arg(ctx, &args[2], t)?;
            let mut srcs = Vec::new();
            for a in &args[3..] {
                srcs.push(string_arg(ctx, a, t)?);
            }
            if !is_valid_label_name(&dst) {
                return Err(EvalError::rt(format!("invalid destination label name in label_join(): {dst}"), span));
            }
            let mut out = Vec::with_capacity(v.len());
            for mut el in v {
                let joined = srcs.iter().map(|s| el.labels.get(s).unwrap_or("")).collect::<Vec<_>>().join(&sep);
                let mut lb = el.labels.builder();
                if joined.is_empty() {
                    lb.del(&dst);
                } else {
                    lb.set(dst.clone(), joined);
                }
                el.labels = lb.build();
                if dst == METRIC_NAME {
                    el.drop_name = false;
                }
                out.push(el);
            }
            Ok(Val::Vector(out))
        }
        "info" => info(ctx, args, span, t),
        "start_timestamp" => match unwrap_parens(&args[0]) {
            Expr::Vector(vs) => Ok(Val::Vector(ctx.vector_selector_starts(vs, t)?)),
            // Start timestamps belong to raw samples: a computed vector has
            // none, and the result is empty.
            other => {
                vector_arg(ctx, other, t)?;
                Ok(Val::Vector(Vec::new()))
            }
        },
        _ => Err(EvalError::rt(format!("function {name:?} is not implemented"), span)),
    }
}

/// `info(v, {data selector})`: adds the data labels of matching info
/// series (default `target_info`) joined on their identifying labels
/// (`instance`, `job`).
fn info(ctx: &mut Ctx, args: &[Expr], span: Span, t: i64) -> Result<Val, EvalError> {
    let base = vector_arg(ctx, &args[0], t)?;
    // The parser always supplies the selector (`{__name__="target_info"}`
    // when the query has none).
    let Some(Expr::Vector(sel)) = args.get(1) else {
        return Err(EvalError::rt("expected a label selector as the second argument of info()", span));
    };
    let ts = ctx.ref_time(&args[0], t);
    let infos = ctx.vector_selector_at(sel, ts)?;
    let mut name_matchers: Vec<model::Matcher> = sel.matchers.iter().filter(|m| m.name == METRIC_NAME).cloned().collect();
    if name_matchers.is_empty() {
        name_matchers.push(model::Matcher::equal(METRIC_NAME, "target_info"));
    }
    let data: Vec<model::Matcher> = sel.matchers.iter().filter(|m| m.name != METRIC_NAME).cloned().collect();
    info_join(base, &name_matchers, &data, infos)
}

/// Joins each base series with the info series sharing its identifying
/// labels (`instance`, `job`), adding their data labels.
fn info_join(base: Vec<El>, name_matchers: &[model::Matcher], data: &[model::Matcher], infos: Vec<El>) -> Result<Val, EvalError> {
    const IDENTIFYING: &[&str] = &["instance", "job"];
    let has_positive = name_matchers.iter().any(|m| matches!(m.kind, MatchType::Equal | MatchType::Regex));
    let mut out = Vec::with_capacity(base.len());
    for mut el in base {
        if has_positive && name_matchers.iter().all(|m| m.matches_labels(&el.labels)) {
            out.push(el);
            continue;
        }
        let mut matched: Vec<&El> = Vec::new();
        for i in infos.iter().filter(|i| IDENTIFYING.iter().all(|l| i.labels.get(l).unwrap_or("") == el.labels.get(l).unwrap_or(""))) {
            // Of several series of one info metric, the latest sample wins.
            match matched.iter_mut().find(|m| m.labels.metric_name() == i.labels.metric_name()) {
                Some(m) if m.src_t < i.src_t => *m = i,
                Some(_) => {}
                None => matched.push(i),
            }
        }
        if matched.is_empty() {
            if data.iter().all(|m| m.matches_empty()) {
                out.push(el);
            }
            continue;
        }
        let mut lb = el.labels.builder();
        for i in matched {
            for l in &i.labels {
                if l.name == METRIC_NAME || IDENTIFYING.contains(&l.name.as_str()) || el.labels.contains(&l.name) {
                    continue;
                }
                if !data.is_empty() && !data.iter().any(|m| m.name == l.name) {
                    continue;
                }
                if let Some(prev) = lb.get(&l.name) {
                    if prev != l.value {
                        return Err(EvalError::rt(
                            format!("conflicting label {:?}: info series give both {prev:?} and {:?} for {}", l.name, l.value, el.labels),
                            Span::default(),
                        ));
                    }
                }
                lb.set(l.name.clone(), l.value.clone());
            }
        }
        el.labels = lb.build();
        out.push(el);
    }
    Ok(Val::Vector(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("a2", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("10", "9"), Ordering::Greater);
        assert_eq!(natural_cmp("abc", "abd"), Ordering::Less);
        assert!(go_max(1.0, f64::NAN).is_nan());
    }
}
