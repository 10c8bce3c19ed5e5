//! A runner for Prometheus's PromQL test scripts (`*.test`), following
//! `../shared/conformance/promql/FORMAT.md`. The storage is a parameter, so
//! the same scripts can run over `model::mem::MemStore` or a real TSDB.

use model::{Labels, Queryable};
use promql::ast::{AtModifier, Expr};
use promql::value::AnnotationKind;
use promql::{lexer, parse, print, Engine, EngineOptions, Value};
use regex::Regex;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// A storage the runner can load samples into and query. A fresh one is
/// made for each file and after each `clear`.
pub trait TestStorage {
    /// Adds one float sample. Within a `load` block samples arrive series by
    /// series, each in time order; a later block may add later samples.
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), String>;
    /// Adds one float sample with an optional start timestamp (ms), from
    /// an `@st` line (FORMAT.md 3.4). Storages that cannot keep start
    /// timestamps refuse samples that have one.
    fn append_with_start(&mut self, labels: &Labels, t: i64, v: f64, st: Option<i64>) -> Result<(), String> {
        match st {
            None => self.append(labels, t, v),
            Some(_) => Err("this storage does not keep start timestamps".into()),
        }
    }
    /// Called after each `load` block, before any query (a storage with
    /// an appender commits here).
    fn commit(&mut self) -> Result<(), String> {
        Ok(())
    }
    /// The storage as the engine reads it.
    fn queryable(&self) -> &dyn Queryable;
}

impl TestStorage for model::mem::MemStore {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), String> {
        model::mem::MemStore::append(self, labels, t, v);
        Ok(())
    }
    fn append_with_start(&mut self, labels: &Labels, t: i64, v: f64, st: Option<i64>) -> Result<(), String> {
        model::mem::MemStore::append_with_start(self, labels, t, v, st);
        Ok(())
    }
    fn queryable(&self) -> &dyn Queryable {
        self
    }
}

/// Counts for one file or a whole run.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Evals that passed.
    pub passed: usize,
    /// Evals that failed.
    pub failed: usize,
    /// Evals that need native histograms (not run).
    pub native: usize,
    /// @-modifier cross-check level (instant evals it applies to).
    pub at_passed: usize,
    /// @ cross-check failures.
    pub at_failed: usize,
    /// One line per failed eval.
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Missing,
    Float(f64),
    Histogram,
}

#[derive(Debug, Clone)]
struct SeriesLine {
    labels: Labels,
    values: Vec<Item>,
    /// Start-timestamp offsets per position (from the `@st` line before
    /// this one), relative to each sample's own timestamp.
    starts: Option<Vec<Option<i64>>>,
}

/// A parsed `@st` line: labels and per-position offsets.
#[derive(Debug, Clone)]
struct StartLine {
    labels: Labels,
    offsets: Vec<Option<i64>>,
    line: usize,
}

/// A duration with an optional sign (`-1m`, `+30s`, `0`).
fn signed_dur(s: &str, line: usize) -> Result<i64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let d = dur(body, line)?;
    Ok(if neg { -d } else { d })
}

/// Expands one item of an `@st` line: `_`, `_xK`, `D`, `DxK`, `D+ExK` or
/// `D-ExK`, where D and E are (possibly signed) durations.
fn expand_start_item(tok: &str, line: usize) -> Result<Vec<Option<i64>>, String> {
    if tok == "_" {
        return Ok(vec![None]);
    }
    if let Some(k) = tok.strip_prefix("_x") {
        let k: usize = k.parse().map_err(|_| format!("line {line}: bad start-timestamp item {tok:?}"))?;
        return Ok(vec![None; k]);
    }
    let (body, k) = match tok.rfind('x') {
        Some(i) => (&tok[..i], tok[i + 1..].parse::<usize>().map_err(|_| format!("line {line}: bad repeat in {tok:?}"))?),
        None => (tok, 0),
    };
    // The operator between D and E is the first sign after position 0.
    let split = body.char_indices().skip(1).find(|(_, c)| *c == '+' || *c == '-').map(|(i, _)| i);
    let (d, e) = match split {
        Some(i) => {
            let e = signed_dur(&body[i + 1..], line)?;
            (signed_dur(&body[..i], line)?, if &body[i..=i] == "-" { -e } else { e })
        }
        None => (signed_dur(body, line)?, 0),
    };
    let mut out = Vec::with_capacity(k + 1);
    let mut off = d;
    for _ in 0..=k {
        out.push(Some(off));
        off = off.checked_add(e).ok_or_else(|| format!("line {line}: start-timestamp offset overflows in {tok:?}"))?;
    }
    Ok(out)
}

/// Parses an `@st` line (FORMAT.md 3.4), or returns `None` for any other line.
fn parse_start_line(s: &str, line: usize) -> Result<Option<StartLine>, String> {
    let (lab, vals) = split_series(s).ok_or_else(|| format!("line {line}: bad series line"))?;
    // Either `metric{..}@st` or a bare `metric@st` (split at the space).
    let (lab, vals) = match (lab.strip_suffix("@st"), vals.strip_prefix("@st")) {
        (Some(l), _) => (l, vals),
        (None, Some(v)) if v.starts_with(char::is_whitespace) || v.is_empty() => (lab, v),
        _ => return Ok(None),
    };
    let labels = parse_labels(lab, line)?;
    let mut offsets = Vec::new();
    for tok in value_tokens(vals) {
        offsets.extend(expand_start_item(&tok, line)?);
    }
    Ok(Some(StartLine { labels, offsets, line }))
}

#[derive(Debug, Clone)]
enum ExpectKind {
    Fail,
    Warn,
    Info,
    NoWarn,
    NoInfo,
    Ordered,
}

#[derive(Debug, Clone)]
struct Expect {
    kind: ExpectKind,
    msg: Option<String>,
    regex: Option<Regex>,
}

#[derive(Debug, Clone)]
enum Mode {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

#[derive(Debug, Clone)]
struct Eval {
    line: usize,
    query: String,
    mode: Mode,
    expects: Vec<Expect>,
    range_vector: Option<(i64, i64, i64)>,
    string: Option<String>,
    series: Vec<SeriesLine>,
    scalar: Option<f64>,
    has_histogram_expect: bool,
}

#[derive(Debug)]
enum Cmd {
    Clear,
    Load { interval: i64, lines: Vec<SeriesLine>, nhcb: bool },
    Eval(Box<Eval>),
}

fn dur(s: &str, line: usize) -> Result<i64, String> {
    lexer::parse_duration(s).ok_or_else(|| format!("line {line}: bad duration {s:?}"))
}

/// Splits a series line into the label part and the values part.
fn split_series(s: &str) -> Option<(&str, &str)> {
    let mut in_str: Option<char> = None;
    let mut depth = 0;
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == q {
                in_str = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => in_str = Some(c),
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&s[..=i], &s[i + 1..]));
                }
            }
            c if c.is_whitespace() && depth == 0 => return Some((&s[..i], &s[i..])),
            _ => {}
        }
    }
    Some((s, ""))
}

/// Splits the values part at whitespace outside `{{ }}`.
fn value_tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if c.is_whitespace() && depth == 0 {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse_float(s: &str) -> Option<f64> {
    let l = s.to_ascii_lowercase();
    let body = l.trim_start_matches(['+', '-']);
    if body.starts_with("0x") {
        return None;
    }
    if body == "inf" || body == "nan" || body.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-')) {
        return s.parse::<f64>().ok();
    }
    None
}

fn expand_item(tok: &str, line: usize) -> Result<Vec<Item>, String> {
    if tok.contains("{{") {
        // Native histograms: count the positions only.
        let n = match tok.rfind("}}x") {
            Some(i) => tok[i + 3..].parse::<usize>().map_err(|_| format!("line {line}: bad histogram repeat {tok:?}"))? + 1,
            None => 1,
        };
        return Ok(vec![Item::Histogram; n]);
    }
    if tok == "_" {
        return Ok(vec![Item::Missing]);
    }
    if let Some(k) = tok.strip_prefix("_x") {
        let k: usize = k.parse().map_err(|_| format!("line {line}: bad item {tok:?}"))?;
        return Ok(vec![Item::Missing; k]);
    }
    if tok == "stale" {
        return Ok(vec![Item::Float(model::stale_nan())]);
    }
    if let Some(v) = parse_float(tok) {
        return Ok(vec![Item::Float(v)]);
    }
    let xi = tok.rfind('x').ok_or_else(|| format!("line {line}: bad value {tok:?}"))?;
    let k: usize = tok[xi + 1..].parse().map_err(|_| format!("line {line}: bad repeat in {tok:?}"))?;
    let body = &tok[..xi];
    // Find the +/- separating A and B (not a leading sign, not an exponent sign).
    let bytes = body.as_bytes();
    let mut split = None;
    for i in 1..bytes.len() {
        if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
            split = Some(i);
            break;
        }
    }
    let (a, b) = match split {
        Some(i) => {
            let a = parse_float(&body[..i]).ok_or_else(|| format!("line {line}: bad value {tok:?}"))?;
            let b = parse_float(&body[i + 1..]).ok_or_else(|| format!("line {line}: bad value {tok:?}"))?;
            (a, if bytes[i] == b'-' { -b } else { b })
        }
        None => (parse_float(body).ok_or_else(|| format!("line {line}: bad value {tok:?}"))?, 0.0),
    };
    let mut out = Vec::with_capacity(k + 1);
    let mut v = a;
    for _ in 0..=k {
        out.push(Item::Float(v));
        v += b;
    }
    Ok(out)
}

fn parse_labels(s: &str, line: usize) -> Result<Labels, String> {
    let vs = promql::parser::parse_selector(s).map_err(|e| format!("line {line}: bad series {s:?}: {e}"))?;
    Ok(Labels::from_pairs(vs.matchers.iter().map(|m| (m.name.clone(), m.value.clone()))))
}

fn parse_series_line(s: &str, line: usize) -> Result<Option<SeriesLine>, String> {
    let (lab, vals) = split_series(s).ok_or_else(|| format!("line {line}: bad series line"))?;
    if lab.ends_with("@st") || vals.starts_with("@st") {
        // Start-timestamp lines belong to load blocks (see parse_start_line).
        return Err(format!("line {line}: unexpected start-timestamp line"));
    }
    let labels = parse_labels(lab, line)?;
    let mut values = Vec::new();
    for tok in value_tokens(vals) {
        values.extend(expand_item(&tok, line)?);
    }
    Ok(Some(SeriesLine { labels, values, starts: None }))
}

fn parse_go_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if body.len() > 1 && body.starts_with('0') && body.chars().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()
    } else {
        body.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(if neg { -(i as f64) } else { i as f64 });
    }
    parse_float(s)
}

fn parse_expect(rest: &str, line: usize) -> Result<Expect, String> {
    let (kind_s, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    let kind = match kind_s {
        "fail" => ExpectKind::Fail,
        "warn" => ExpectKind::Warn,
        "info" => ExpectKind::Info,
        "no_warn" => ExpectKind::NoWarn,
        "no_info" => ExpectKind::NoInfo,
        "ordered" => ExpectKind::Ordered,
        other => return Err(format!("line {line}: unknown expect type {other:?}")),
    };
    let tail = tail.trim();
    let mut e = Expect { kind, msg: None, regex: None };
    if let Some(m) = tail.strip_prefix("msg:") {
        e.msg = Some(m.trim().to_string());
    } else if let Some(r) = tail.strip_prefix("regex:") {
        e.regex = Some(Regex::new(r.trim()).map_err(|err| format!("line {line}: bad regex: {err}"))?);
    } else if !tail.is_empty() {
        return Err(format!("line {line}: bad expect line"));
    }
    Ok(e)
}

fn parse_script(text: &str) -> Result<Vec<Cmd>, String> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        let lineno = i + 1;
        if l.is_empty() {
            i += 1;
            continue;
        }
        let first = l.split_whitespace().next().unwrap_or("");
        if first == "clear" {
            cmds.push(Cmd::Clear);
            i += 1;
        } else if first.starts_with("load") {
            let parts: Vec<&str> = l.split_whitespace().collect();
            if parts.len() != 2 {
                return Err(format!("line {lineno}: bad load line"));
            }
            let interval = dur(parts[1], lineno)?;
            let mut series = Vec::new();
            let mut starts: Option<StartLine> = None;
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                if let Some(st) = parse_start_line(&lines[i], i + 1)? {
                    if let Some(prev) = starts {
                        return Err(format!("line {}: start-timestamp line not followed by its sample line", prev.line));
                    }
                    starts = Some(st);
                    i += 1;
                    continue;
                }
                if let Some(mut s) = parse_series_line(&lines[i], i + 1)? {
                    if let Some(st) = starts.take() {
                        if st.labels != s.labels || st.offsets.len() != s.values.len() {
                            return Err(format!(
                                "line {}: start-timestamp line must be followed by the same series with as many positions ({} with {}, then {} with {})",
                                st.line,
                                st.labels,
                                st.offsets.len(),
                                s.labels,
                                s.values.len()
                            ));
                        }
                        s.starts = Some(st.offsets);
                    }
                    series.push(s);
                }
                i += 1;
            }
            if let Some(st) = starts {
                return Err(format!("line {}: start-timestamp line not followed by its sample line", st.line));
            }
            cmds.push(Cmd::Load { interval, lines: series, nhcb: first == "load_with_nhcb" });
        } else if first.starts_with("eval") {
            let rest = l[first.len()..].trim();
            let mut expects = Vec::new();
            match first {
                "eval" => {}
                "eval_fail" => expects.push(Expect { kind: ExpectKind::Fail, msg: None, regex: None }),
                "eval_warn" => expects.push(Expect { kind: ExpectKind::Warn, msg: None, regex: None }),
                "eval_info" => expects.push(Expect { kind: ExpectKind::Info, msg: None, regex: None }),
                "eval_ordered" => expects.push(Expect { kind: ExpectKind::Ordered, msg: None, regex: None }),
                other => return Err(format!("line {lineno}: unknown command {other:?}")),
            }
            let toks: Vec<&str> = rest.splitn(2, ' ').collect();
            let (mode, query) = match toks.first().copied() {
                Some("instant") => {
                    let r: Vec<&str> = toks.get(1).unwrap_or(&"").splitn(3, ' ').collect();
                    if r.len() < 3 || r[0] != "at" {
                        return Err(format!("line {lineno}: bad instant eval"));
                    }
                    (Mode::Instant(dur(r[1], lineno)?), r[2].trim().to_string())
                }
                Some("range") => {
                    let r: Vec<&str> = toks.get(1).unwrap_or(&"").splitn(7, ' ').collect();
                    if r.len() < 7 || r[0] != "from" || r[2] != "to" || r[4] != "step" {
                        return Err(format!("line {lineno}: bad range eval"));
                    }
                    (Mode::Range { start: dur(r[1], lineno)?, end: dur(r[3], lineno)?, step: dur(r[5], lineno)? }, r[6].trim().to_string())
                }
                _ => return Err(format!("line {lineno}: bad eval line")),
            };
            let mut ev = Eval { line: lineno, query, mode, expects, range_vector: None, string: None, series: Vec::new(), scalar: None, has_histogram_expect: false };
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let bl = &lines[i];
                let ln = i + 1;
                i += 1;
                if bl.split(' ').next() == Some("expect") {
                    let rest = bl["expect".len()..].trim();
                    if let Some(r) = rest.strip_prefix("range vector ") {
                        let p: Vec<&str> = r.split_whitespace().collect();
                        if p.len() != 6 || p[0] != "from" || p[2] != "to" || p[4] != "step" {
                            return Err(format!("line {ln}: bad expect range vector"));
                        }
                        ev.range_vector = Some((dur(p[1], ln)?, dur(p[3], ln)?, dur(p[5], ln)?));
                    } else if let Some(s) = rest.strip_prefix("string ") {
                        let (v, _) = lexer::string(s.trim()).map_err(|e| format!("line {ln}: bad string: {}", e.message))?;
                        ev.string = Some(v);
                    } else {
                        ev.expects.push(parse_expect(rest, ln)?);
                    }
                    continue;
                }
                if bl.starts_with("expected_fail_message") || bl.starts_with("expected_fail_regexp") {
                    let (k, v) = bl.split_once(' ').unwrap_or((bl, ""));
                    let e = ev.expects.iter_mut().find(|e| matches!(e.kind, ExpectKind::Fail));
                    if let Some(e) = e {
                        if k == "expected_fail_message" {
                            e.msg = Some(v.trim().to_string());
                        } else {
                            e.regex = Some(Regex::new(v.trim()).map_err(|err| format!("line {ln}: {err}"))?);
                        }
                    }
                    break;
                }
                if let Some(v) = parse_go_number(bl) {
                    ev.scalar = Some(v);
                    continue;
                }
                if bl.contains("{{") {
                    ev.has_histogram_expect = true;
                }
                if let Some(s) = parse_series_line(bl, ln)? {
                    ev.series.push(s);
                }
            }
            cmds.push(Cmd::Eval(Box::new(ev)));
        } else {
            return Err(format!("line {lineno}: unknown command {first:?}"));
        }
    }
    Ok(cmds)
}

/// `almost.Equal` with ε = 1e-6 and StaleNaN handling.
pub fn almost_equal(a: f64, b: f64) -> bool {
    if model::is_stale_nan(a) || model::is_stale_nan(b) {
        return model::is_stale_nan(a) && model::is_stale_nan(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let eps = 1e-6;
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < eps * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

fn fmt_labels(l: &Labels) -> String {
    l.to_string()
}

fn compare_vector(ev: &Eval, got: &[(Labels, f64)], ordered: bool) -> Result<(), String> {
    let exp: Vec<(&Labels, f64)> = ev
        .series
        .iter()
        .map(|s| {
            let v = match s.values.first() {
                Some(Item::Float(v)) => *v,
                _ => f64::NAN,
            };
            (&s.labels, v)
        })
        .collect();
    for s in &ev.series {
        if s.values.len() != 1 {
            return Err(format!("expected line for {} must have exactly one value", fmt_labels(&s.labels)));
        }
    }
    if got.len() != exp.len() {
        let gs: Vec<String> = got.iter().map(|(l, v)| format!("{} {v}", fmt_labels(l))).collect();
        return Err(format!("expected {} samples, got {}: [{}]", exp.len(), got.len(), gs.join(", ")));
    }
    for (i, (l, v)) in got.iter().enumerate() {
        let Some(pos) = exp.iter().position(|(el, _)| *el == l) else {
            return Err(format!("unexpected sample {} {v}", fmt_labels(l)));
        };
        if ordered && pos != i {
            return Err(format!("sample {} at position {i}, expected at {pos}", fmt_labels(l)));
        }
        if !almost_equal(exp[pos].1, *v) {
            return Err(format!("{}: expected {}, got {v}", fmt_labels(l), exp[pos].1));
        }
    }
    Ok(())
}

fn compare_matrix(ev: &Eval, got: &[promql::value::MatrixSeries], start: i64, step: i64) -> Result<(), String> {
    for w in got.windows(2) {
        if w[0].labels >= w[1].labels {
            return Err(format!("matrix not sorted by labels: {} before {}", fmt_labels(&w[0].labels), fmt_labels(&w[1].labels)));
        }
    }
    for s in got {
        let Some(e) = ev.series.iter().find(|e| e.labels == s.labels) else {
            let pts: Vec<String> = s.points.iter().map(|p| format!("{}@{}", p.v, p.t)).collect();
            return Err(format!("unexpected series {} [{}]", fmt_labels(&s.labels), pts.join(" ")));
        };
        let exp: Vec<(i64, f64)> = e
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, it)| match it {
                Item::Float(v) => Some((start + i as i64 * step, *v)),
                _ => None,
            })
            .collect();
        let pts: Vec<String> = s.points.iter().map(|p| format!("{}@{}", p.v, p.t)).collect();
        if exp.len() != s.points.len() {
            return Err(format!("series {}: expected {} points, got {} [{}]", fmt_labels(&s.labels), exp.len(), s.points.len(), pts.join(" ")));
        }
        for ((t, v), p) in exp.iter().zip(&s.points) {
            if *t != p.t || !almost_equal(*v, p.v) {
                return Err(format!("series {}: expected {v}@{t}, got [{}]", fmt_labels(&s.labels), pts.join(" ")));
            }
        }
    }
    for e in &ev.series {
        if !got.iter().any(|s| s.labels == e.labels) {
            return Err(format!("expected series {} missing", fmt_labels(&e.labels)));
        }
    }
    Ok(())
}

fn check_annotations(ev: &Eval, rendered: &[(AnnotationKind, String)]) -> Result<(), String> {
    for (kind, name, none_kind) in [(AnnotationKind::Warning, "warn", "no_warn"), (AnnotationKind::Info, "info", "no_info")] {
        let actual: Vec<&String> = rendered.iter().filter(|(k, _)| *k == kind).map(|(_, s)| s).collect();
        let wants: Vec<&Expect> = ev
            .expects
            .iter()
            .filter(|e| match e.kind {
                ExpectKind::Warn => name == "warn",
                ExpectKind::Info => name == "info",
                _ => false,
            })
            .collect();
        let none = ev.expects.iter().any(|e| match e.kind {
            ExpectKind::NoWarn => none_kind == "no_warn",
            ExpectKind::NoInfo => none_kind == "no_info",
            _ => false,
        });
        if none && !actual.is_empty() {
            return Err(format!("expected no {name} annotations, got {actual:?}"));
        }
        if wants.is_empty() {
            continue;
        }
        let matches = |e: &Expect, a: &str| match (&e.msg, &e.regex) {
            (Some(m), _) => m == a,
            (_, Some(r)) => r.is_match(a),
            _ => true,
        };
        for w in &wants {
            if !actual.iter().any(|a| matches(w, a)) {
                return Err(format!("expected {name} annotation {:?} not found in {actual:?}", w.msg.as_deref().or(w.regex.as_ref().map(|r| r.as_str())).unwrap_or("(any)")));
            }
        }
        for a in &actual {
            if !wants.iter().any(|w| matches(w, a)) {
                return Err(format!("unexpected {name} annotation {a:?}"));
            }
        }
    }
    Ok(())
}

fn fail_expect(ev: &Eval) -> Option<&Expect> {
    ev.expects.iter().find(|e| matches!(e.kind, ExpectKind::Fail))
}

fn check_error(ev: &Eval, err: &str) -> Result<(), String> {
    match fail_expect(ev) {
        None => Err(format!("unexpected error: {err}")),
        Some(e) => match (&e.msg, &e.regex) {
            (Some(m), _) if m != err => Err(format!("expected error {m:?}, got {err:?}")),
            (_, Some(r)) if !r.is_match(err) => Err(format!("expected error matching {:?}, got {err:?}", r.as_str())),
            _ => Ok(()),
        },
    }
}

fn check_value(ev: &Eval, value: &Value) -> Result<(), String> {
    let ordered = ev.expects.iter().any(|e| matches!(e.kind, ExpectKind::Ordered));
    if let Some((start, _, step)) = ev.range_vector {
        let Value::Matrix(m) = value else { return Err(format!("expected range vector, got {value:?}")) };
        return compare_matrix(ev, m, start, step);
    }
    if let Some(s) = &ev.string {
        return match value {
            Value::String { value, .. } if value == s => Ok(()),
            other => Err(format!("expected string {s:?}, got {other:?}")),
        };
    }
    match value {
        Value::Scalar { value, .. } => match ev.scalar {
            Some(e) if almost_equal(e, *value) => Ok(()),
            Some(e) => Err(format!("expected scalar {e}, got {value}")),
            None => Err(format!("expected vector, got scalar {value}")),
        },
        Value::Vector(v) => {
            if ev.scalar.is_some() {
                return Err("expected scalar, got vector".into());
            }
            let got: Vec<(Labels, f64)> = v.iter().map(|s| (s.labels.clone(), s.value)).collect();
            compare_vector(ev, &got, ordered)
        }
        Value::Matrix(m) => {
            if m.is_empty() && ev.series.is_empty() && ev.scalar.is_none() {
                return Ok(());
            }
            Err("received range result on instant evaluation".into())
        }
        Value::String { value, .. } => {
            if value.is_empty() && ev.series.is_empty() {
                Ok(())
            } else {
                Err(format!("unexpected string result {value:?}"))
            }
        }
    }
}

fn engine() -> Engine {
    Engine::new(EngineOptions {
        lookback_delta: Duration::from_secs(300),
        max_samples: 10_000_000,
        timeout: Duration::from_secs(100),
        default_subquery_step: Duration::from_secs(60),
        delayed_name_removal: true,
        use_start_timestamps: true,
        ..EngineOptions::default()
    })
}

/// Runs one instant check (query, annotations, result, range cross-check).
fn run_instant(ev: &Eval, store: &dyn Queryable, query: &str, t: i64, cross_check: bool) -> Result<(), String> {
    let eng = engine();
    let res = eng.instant_query(store, query, t);
    let res = match res {
        Err(e) => return check_error(ev, &e.to_string()),
        Ok(r) => r,
    };
    if fail_expect(ev).is_some() {
        return Err(format!("expected error, got result {}", res.value));
    }
    let rendered: Vec<(AnnotationKind, String)> = res.annotations.iter().map(|a| (a.kind, a.render(query))).collect();
    check_annotations(ev, &rendered)?;
    check_value(ev, &res.value)?;
    let skip_range = ev.range_vector.is_some() || ev.string.is_some() || ["start()", "end()", "range()", "step()"].iter().any(|f| query.contains(f));
    if !cross_check || skip_range {
        return Ok(());
    }
    let rr = eng.range_query(store, query, t - 60_000, t + 60_000, 60_000).map_err(|e| format!("range cross-check failed: {e}"))?;
    if ev.expects.iter().any(|e| matches!(e.kind, ExpectKind::Ordered)) {
        return Ok(());
    }
    let Value::Matrix(m) = rr.value else { return Err("range cross-check: not a matrix".into()) };
    for w in m.windows(2) {
        if w[0].labels >= w[1].labels {
            return Err("range cross-check: series not sorted".into());
        }
    }
    let at_t: Vec<(Labels, f64)> = m.iter().filter_map(|s| s.points.iter().find(|p| p.t == t).map(|p| (s.labels.clone(), p.v))).collect();
    if let Some(e) = ev.scalar {
        return match at_t.as_slice() {
            [(l, v)] if l.is_empty() && almost_equal(e, *v) => Ok(()),
            other => Err(format!("range cross-check: expected scalar {e}, got {other:?}")),
        };
    }
    compare_vector(ev, &at_t, false).map_err(|e| format!("range cross-check: {e}"))
}

fn run_range(ev: &Eval, store: &dyn Queryable, start: i64, end: i64, step: i64) -> Result<(), String> {
    let res = match engine().range_query(store, &ev.query, start, end, step) {
        Err(e) => return check_error(ev, &e.to_string()),
        Ok(r) => r,
    };
    if fail_expect(ev).is_some() {
        return Err("expected error, got result".into());
    }
    if ev.expects.iter().any(|e| matches!(e.kind, ExpectKind::Ordered)) {
        return Err("expect ordered is not allowed on range queries".into());
    }
    let rendered: Vec<(AnnotationKind, String)> = res.annotations.iter().map(|a| (a.kind, a.render(&ev.query))).collect();
    check_annotations(ev, &rendered)?;
    let Value::Matrix(m) = &res.value else { return Err(format!("range query returned {:?}", res.value)) };
    if let Some(s) = ev.scalar {
        return Err(format!("scalar expectation {s} in range eval"));
    }
    compare_matrix(ev, m, start, step)
}

const TIME_FUNCS: &[&str] = &["time", "timestamp", "predict_linear", "minute", "hour", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "month", "year"];

/// Pins every selector and top-level subquery to `@ t` (FORMAT.md §5.2.3).
fn pin_at(e: &mut Expr, t: i64) {
    match e {
        Expr::Vector(vs) if vs.at.is_none() => vs.at = Some(AtModifier::Timestamp(t)),
        Expr::Matrix { selector, .. } if selector.at.is_none() => selector.at = Some(AtModifier::Timestamp(t)),
        Expr::Subquery { at, .. } if at.is_none() => *at = Some(AtModifier::Timestamp(t)),
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => pin_at(expr, t),
        Expr::Binary { lhs, rhs, .. } => {
            pin_at(lhs, t);
            pin_at(rhs, t);
        }
        Expr::Aggregate { expr, param, .. } => {
            if let Some(p) = param {
                pin_at(p, t);
            }
            pin_at(expr, t);
        }
        // The info-series selector of info() follows its first argument.
        Expr::Call { func, args, .. } if func == "info" => pin_at(&mut args[0], t),
        Expr::Call { args, .. } => args.iter_mut().for_each(|a| pin_at(a, t)),
        _ => {}
    }
}

fn at_cross_check(ev: &Eval, store: &dyn Queryable, t: i64) -> Option<Result<(), String>> {
    let mut expr = parse(&ev.query).ok()?;
    let mut uses_time = false;
    expr.walk(&mut |n| match n {
        Expr::Call { func, .. } if TIME_FUNCS.contains(&func.as_str()) => uses_time = true,
        Expr::Duration { .. } => uses_time = true,
        _ => {}
    });
    if uses_time || ["start()", "end()", "range()", "step()"].iter().any(|f| ev.query.contains(f)) {
        return None;
    }
    pin_at(&mut expr, t);
    let text = print(&expr);
    let times: Vec<i64> = if t == 0 { vec![-1000, 0, 1000] } else { vec![t * -10, 0, t / 5, t, t * 10] };
    for et in times {
        if let Err(e) = run_instant(ev, store, &text, et, true) {
            return Some(Err(format!("@ cross-check at {et}ms ({text}): {e}")));
        }
    }
    Some(Ok(()))
}

/// Which series are native histograms (so evals touching them are not run).
struct NativeSet {
    series: Vec<Labels>,
}

impl NativeSet {
    fn touched_by(&self, query: &str) -> bool {
        let Ok(expr) = parse(query) else { return false };
        let mut hit = false;
        expr.walk(&mut |n| {
            let vs = match n {
                Expr::Vector(vs) => vs,
                Expr::Matrix { selector, .. } => selector,
                _ => return,
            };
            if self.series.iter().any(|l| model::matches_all(&vs.matchers, l)) {
                hit = true;
            }
        });
        hit
    }
}

/// Runs one script file over fresh storages from `make`.
pub fn run_file(path: &Path, make: &dyn Fn() -> Box<dyn TestStorage>) -> Result<Counts, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let fname = path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    run_script(&text, &fname, make)
}

/// Runs the text of one script; `fname` names it in failure messages.
pub fn run_script(text: &str, fname: &str, make: &dyn Fn() -> Box<dyn TestStorage>) -> Result<Counts, String> {
    let cmds = parse_script(text).map_err(|e| format!("{fname}: {e}"))?;
    let mut counts = Counts::default();
    let mut store = make();
    let mut native = NativeSet { series: Vec::new() };
    for cmd in cmds {
        match cmd {
            Cmd::Clear => {
                store = make();
                native.series.clear();
            }
            Cmd::Load { interval, lines, nhcb } => {
                // Within one block, a later line for the same label set wins.
                let lines: Vec<&SeriesLine> =
                    lines.iter().enumerate().filter(|(i, l)| !lines[i + 1..].iter().any(|m| m.labels == l.labels)).map(|(_, l)| l).collect();
                for l in lines {
                    if l.values.contains(&Item::Histogram) {
                        native.series.push(l.labels.clone());
                    }
                    for (i, v) in l.values.iter().enumerate() {
                        if let Item::Float(v) = v {
                            let t = i as i64 * interval;
                            let res = match l.starts.as_ref().and_then(|st| st[i]) {
                                Some(off) => store.append_with_start(&l.labels, t, *v, Some(t + off)),
                                None => store.append(&l.labels, t, *v),
                            };
                            res.map_err(|e| format!("{fname}: loading {}: {e}", l.labels))?;
                        }
                    }
                    if nhcb {
                        if let Some(name) = l.labels.metric_name() {
                            for suffix in ["_bucket", "_count", "_sum"] {
                                if let Some(base) = name.strip_suffix(suffix) {
                                    let mut lb = l.labels.builder();
                                    lb.set(model::METRIC_NAME, base);
                                    lb.del("le");
                                    native.series.push(lb.build());
                                }
                            }
                        }
                    }
                }
                store.commit().map_err(|e| format!("{fname}: commit: {e}"))?;
            }
            Cmd::Eval(ev) => {
                if ev.has_histogram_expect || native.touched_by(&ev.query) {
                    counts.native += 1;
                    continue;
                }
                let result = match ev.mode {
                    Mode::Instant(t) => {
                        let t = ev.range_vector.map(|r| r.1).unwrap_or(t);
                        let r = run_instant(&ev, store.queryable(), &ev.query, t, true);
                        if r.is_ok() {
                            match at_cross_check(&ev, store.queryable(), t) {
                                Some(Ok(())) => counts.at_passed += 1,
                                Some(Err(e)) => {
                                    counts.at_failed += 1;
                                    if std::env::var("PROMQL_TEST_VERBOSE").is_ok() {
                                        eprintln!("  {fname}:{} [@] {} => {e}", ev.line, ev.query);
                                    }
                                }
                                None => {}
                            }
                        }
                        r
                    }
                    Mode::Range { start, end, step } => run_range(&ev, store.queryable(), start, end, step),
                };
                match result {
                    Ok(()) => counts.passed += 1,
                    Err(e) => {
                        counts.failed += 1;
                        let mut msg = String::new();
                        let _ = write!(msg, "{fname}:{}: {} => {e}", ev.line, ev.query);
                        counts.failures.push(msg);
                    }
                }
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> Box<dyn TestStorage> {
        Box::new(model::mem::MemStore::new())
    }

    #[test]
    fn runner_counts_passes_and_failures() {
        let script = "load 1m\n  m{a=\"x\"} 1+1x10\n  h {{schema:0 sum:1 count:1}}\n\n\
            eval instant at 5m m\n  m{a=\"x\"} 6\n\n\
            eval instant at 5m m\n  m{a=\"x\"} 7\n\n\
            eval range from 0 to 2m step 1m m * 2\n  {a=\"x\"} 2 4 6\n\n\
            eval instant at 0 h\n\n\
            eval instant at 0 nosuch\n  expect fail\n";
        let c = run_script(script, "inline", &mem).unwrap();
        assert_eq!((c.passed, c.failed, c.native), (2, 2, 1), "{:?}", c.failures);
        assert!(c.failures[0].contains("inline:8"), "{:?}", c.failures);
    }

    #[test]
    fn runner_rejects_broken_scripts() {
        assert!(run_script("bogus command\n", "x", &mem).is_err());
        assert!(run_script("load 1m\n  m 1 2 zz\n", "x", &mem).is_err());
        assert!(run_script("eval instant at 1m\n", "x", &mem).is_err());
    }

    #[test]
    fn expands_series_notation() {
        let s = parse_series_line("m{a=\"b c\"} 1+1x2 _x2 -2-1x1 stale 3x1", 1).unwrap().unwrap();
        assert_eq!(s.labels.get("a"), Some("b c"));
        let f: Vec<String> = s.values.iter().map(|v| format!("{v:?}")).collect();
        assert_eq!(f.len(), 3 + 2 + 2 + 1 + 2);
        assert_eq!(s.values[0], Item::Float(1.0));
        assert_eq!(s.values[2], Item::Float(3.0));
        assert_eq!(s.values[3], Item::Missing);
        assert_eq!(s.values[6], Item::Float(-3.0));
    }

    #[test]
    fn parses_start_timestamp_lines() {
        let st = parse_start_line("m{a=\"b\"}@st _ -30s-1mx2 -59999msx1 _x2 +1m 0-1mx1 1ms", 1).unwrap().unwrap();
        assert_eq!(st.labels.get("a"), Some("b"));
        let want = [None, Some(-30_000), Some(-90_000), Some(-150_000), Some(-59_999), Some(-59_999), None, None, Some(60_000), Some(0), Some(-60_000), Some(1)];
        assert_eq!(st.offsets, want);
        assert!(parse_start_line("m 1 2", 1).unwrap().is_none());
        assert!(parse_start_line("m@st 1q", 1).is_err());
        // The sample line must follow with the same labels and length.
        let ok = "load 1m\n  m@st _ -1m\n  m 1 2\n\neval instant at 1m m\n  m 2\n";
        let c = run_script(ok, "st", &mem).unwrap();
        assert_eq!((c.passed, c.failed), (1, 0), "{:?}", c.failures);
        assert!(run_script("load 1m\n  m@st _ -1m\n  n 1 2\n", "st", &mem).is_err());
        assert!(run_script("load 1m\n  m@st _ -1m\n  m 1 2 3\n", "st", &mem).is_err());
        assert!(run_script("load 1m\n  m@st _ -1m\n", "st", &mem).is_err());
    }

    #[test]
    fn almost_equal_rules() {
        assert!(almost_equal(f64::NAN, f64::NAN));
        assert!(!almost_equal(model::stale_nan(), f64::NAN));
        assert!(almost_equal(1.0, 1.0000001));
        assert!(!almost_equal(0.0, 1e-300));
    }
}
