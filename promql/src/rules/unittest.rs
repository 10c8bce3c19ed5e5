//! `promtool test rules`: rule unit-test files run against the rule
//! evaluator over an in-memory store.
//!
//! The file format is promtool's: `rule_files` (paths relative to the test
//! file), `evaluation_interval`, `group_eval_order`, and `tests`, each with
//! `interval`, `input_series` (`series` + expanding `values` such as
//! `1+2x3 _ stale _x2`), `alert_rule_test` and `promql_expr_test`. As in
//! promtool, every group is evaluated at every `evaluation_interval` step
//! from 0 to the latest `eval_time`, in `group_eval_order`, and each rule's
//! output is appended before the next rule runs; an alert test at
//! `eval_time` checks the firing alerts of the last evaluation at or before
//! it. Sample values compare with a relative tolerance of 1e-9.

use super::eval::{AlertState, EvalContext, GroupEvaluator};
use super::file::{load_file, Rule, RuleGroup};
use super::RuleError;
use crate::engine::Engine;
use crate::value::Value;
use model::{mem::MemStore, stale_nan, Labels, MatchType};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<RawTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<RawSeries>,
    #[serde(default)]
    alert_rule_test: Vec<RawAlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<RawExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeries {
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertTest {
    eval_time: String,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<RawExpAlert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExprTest {
    expr: String,
    eval_time: String,
    #[serde(default)]
    exp_samples: Vec<RawExpSample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpSample {
    #[serde(default)]
    labels: String,
    value: serde_yaml::Value,
}

/// The outcome of one test case (one entry of `tests`).
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// The case's `name`, or `#<index>`.
    pub name: String,
    /// Failed expectations, readable; empty when the case passed.
    pub failures: Vec<String>,
    /// Rule evaluation errors. Like promtool, they do not fail the case by
    /// themselves (they usually break an expectation too).
    pub rule_errors: Vec<String>,
}

/// The outcome of one test file.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitTestReport {
    /// The test file.
    pub file: String,
    /// One result per test case.
    pub cases: Vec<CaseResult>,
}

impl UnitTestReport {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.failures.is_empty())
    }
}

/// One value of an input series: a number, `_` (no sample) or `stale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeriesValue {
    /// A sample.
    Value(f64),
    /// No sample at this step.
    Omitted,
    /// A staleness marker.
    Stale,
}

/// Expands promtool's value notation: `1 2 3`, `a+bxn` / `a-bxn` (n+1
/// values), `axn` (n+1 copies), `_`, `_xn` (n gaps), `stale`, and the
/// literals `Inf`, `-Inf`, `NaN`.
pub fn expand_values(text: &str) -> Result<Vec<SeriesValue>, String> {
    const MAX_VALUES: u64 = 10_000_000;
    let mut out = Vec::new();
    for tok in text.split_whitespace() {
        if tok == "_" {
            out.push(SeriesValue::Omitted);
            continue;
        }
        if tok == "stale" {
            out.push(SeriesValue::Stale);
            continue;
        }
        let (head, times) = match tok.rsplit_once('x') {
            Some((h, n)) if !h.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                let n: u64 = n.parse().map_err(|_| format!("bad repetition count in {tok:?}"))?;
                (h, Some(n))
            }
            _ => (tok, None),
        };
        if out.len() as u64 + times.unwrap_or(0) > MAX_VALUES {
            return Err(format!("{tok:?}: more than {MAX_VALUES} values"));
        }
        let Some(n) = times else {
            out.push(SeriesValue::Value(number(tok).ok_or_else(|| format!("bad value {tok:?}"))?));
            continue;
        };
        if head == "_" {
            out.extend(std::iter::repeat_n(SeriesValue::Omitted, n as usize));
            continue;
        }
        if head == "stale" {
            out.extend(std::iter::repeat_n(SeriesValue::Stale, n as usize));
            continue;
        }
        // Split `a+b` / `a-b` at the sign that is not the leading one or part of an exponent.
        let b = head.as_bytes();
        let split = (1..b.len()).rev().find(|&i| (b[i] == b'+' || b[i] == b'-') && !matches!(b[i - 1], b'e' | b'E'));
        let (start, step) = match split {
            Some(i) => {
                let a = number(&head[..i]).ok_or_else(|| format!("bad value {tok:?}"))?;
                let d = number(&head[i + 1..]).ok_or_else(|| format!("bad value {tok:?}"))?;
                (a, if b[i] == b'-' { -d } else { d })
            }
            None => (number(head).ok_or_else(|| format!("bad value {tok:?}"))?, 0.0),
        };
        for k in 0..=n {
            out.push(SeriesValue::Value(start + step * k as f64));
        }
    }
    Ok(out)
}

fn number(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => {
            let v: f64 = s.parse().ok()?;
            v.is_finite().then_some(v)
        }
    }
}

/// Parses `name{a="b"}` (equality matchers only) into labels.
pub fn parse_series(text: &str) -> Result<Labels, String> {
    let sel = crate::parser::parse_selector(text).map_err(|e| e.to_string())?;
    let mut pairs = Vec::new();
    for m in &sel.matchers {
        if m.kind != MatchType::Equal {
            return Err(format!("{text}: only = matchers are allowed in a series"));
        }
        pairs.push((m.name.clone(), m.value.clone()));
    }
    Ok(Labels::from_pairs(pairs).without_empty())
}

fn dur(path: &str, what: &str, s: &str) -> Result<i64, RuleError> {
    crate::lexer::parse_duration(s.trim()).ok_or_else(|| RuleError::Test { path: path.into(), message: format!("{what}: not a valid duration string: {s:?}") })
}

/// Runs one promtool unit-test file. Load errors (bad YAML, a rule file
/// that fails validation) are an `Err`; failed expectations are in the
/// report.
pub fn run_test_file(path: &Path) -> Result<UnitTestReport, RuleError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| RuleError::Io { path: p.clone(), source })?;
    let raw: RawTestFile = serde_yaml::from_str(&text).map_err(|e| RuleError::Yaml { path: p.clone(), message: e.to_string() })?;
    let eval_interval = match &raw.evaluation_interval {
        Some(s) => dur(&p, "evaluation_interval", s)?,
        None => 60_000,
    };
    if eval_interval <= 0 {
        return Err(RuleError::Test { path: p, message: "evaluation_interval must be positive".into() });
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut groups: Vec<RuleGroup> = Vec::new();
    for f in &raw.rule_files {
        let fp = base.join(f);
        groups.extend(load_file(&fp)?);
    }
    // group_eval_order first, the rest in file order.
    let mut ordered = Vec::new();
    for name in &raw.group_eval_order {
        let Some(i) = groups.iter().position(|g| &g.name == name) else {
            return Err(RuleError::Test { path: p, message: format!("group_eval_order: group {name:?} not found in rule files") });
        };
        ordered.push(groups.remove(i));
    }
    ordered.extend(groups);
    let mut cases = Vec::new();
    for (i, t) in raw.tests.into_iter().enumerate() {
        let name = t.name.clone().unwrap_or_else(|| format!("#{i}"));
        let (failures, rule_errors) = run_case(&p, &ordered, eval_interval, t)?;
        cases.push(CaseResult { name, failures, rule_errors });
    }
    Ok(UnitTestReport { file: p, cases })
}

type CaseOutcome = (Vec<String>, Vec<String>);

fn run_case(path: &str, groups: &[RuleGroup], eval_interval: i64, t: RawTest) -> Result<CaseOutcome, RuleError> {
    let terr = |m: String| RuleError::Test { path: path.into(), message: m };
    let interval = match &t.interval {
        Some(s) => dur(path, "interval", s)?,
        None => eval_interval,
    };
    let store = MemStore::new();
    for s in &t.input_series {
        let labels = parse_series(&s.series).map_err(|e| terr(format!("input_series: {e}")))?;
        let values = expand_values(&s.values).map_err(|e| terr(format!("input_series {}: {e}", s.series)))?;
        for (k, v) in values.iter().enumerate() {
            let ts = k as i64 * interval;
            match v {
                SeriesValue::Value(v) => store.append(&labels, ts, *v),
                SeriesValue::Stale => store.append(&labels, ts, stale_nan()),
                SeriesValue::Omitted => {}
            }
        }
    }
    let ctx = EvalContext { external_labels: t.external_labels.clone(), external_url: t.external_url.clone() };
    let mut evals: Vec<GroupEvaluator> = groups.iter().map(|g| GroupEvaluator::new(g.clone(), Engine::default(), ctx.clone())).collect();
    let mut alert_tests = Vec::new();
    for a in &t.alert_rule_test {
        alert_tests.push((dur(path, "eval_time", &a.eval_time)?, a));
    }
    alert_tests.sort_by_key(|(t, _)| *t);
    let mut expr_tests = Vec::new();
    for e in &t.promql_expr_test {
        expr_tests.push((dur(path, "eval_time", &e.eval_time)?, e));
    }
    let maxt = alert_tests.iter().map(|(t, _)| *t).chain(expr_tests.iter().map(|(t, _)| *t)).max().unwrap_or(0);
    let mut failures = Vec::new();
    let mut rule_errors = Vec::new();
    let mut next_alert = 0;
    let mut ts = 0;
    while ts <= maxt {
        for ev in evals.iter_mut() {
            let out = ev.eval_with(&store, ts, &mut |samples| {
                for (l, t, v) in samples {
                    store.append(l, *t, *v);
                }
            });
            for f in out.failures {
                rule_errors.push(format!("rule {:?} in group {:?} failed at {}: {}", f.rule, f.group, fmt_ms(ts), f.message));
            }
        }
        while next_alert < alert_tests.len() && alert_tests[next_alert].0 < ts + eval_interval {
            let (at, test) = alert_tests[next_alert];
            if at >= ts {
                check_alerts(&evals, test, at, &mut failures);
            }
            next_alert += 1;
        }
        ts += eval_interval;
    }
    for (at, e) in expr_tests {
        check_expr(&store, e, at, &mut failures);
    }
    Ok((failures, rule_errors))
}

fn fmt_ms(ms: i64) -> String {
    crate::lexer::format_duration(ms)
}

type LabelsAndAnnotations = (BTreeMap<String, String>, BTreeMap<String, String>);

fn show(v: &[LabelsAndAnnotations]) -> String {
    let items: Vec<String> = v.iter().map(|(l, a)| format!("Labels:{} Annotations:{}", map_str(l), map_str(a))).collect();
    format!("[{}]", items.join(", "))
}

fn map_str(m: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", items.join(", "))
}

fn check_alerts(evals: &[GroupEvaluator], test: &RawAlertTest, at: i64, failures: &mut Vec<String>) {
    let mut got: Vec<LabelsAndAnnotations> = Vec::new();
    for ev in evals {
        let names: Vec<&str> = ev.group().rules.iter().filter_map(|r| if let Rule::Alerting(a) = r { Some(a.name.as_str()) } else { None }).collect();
        if !names.contains(&test.alertname.as_str()) {
            continue;
        }
        for a in ev.alerts() {
            if a.state == AlertState::Firing && a.labels.get("alertname") == Some(test.alertname.as_str()) {
                let labels = a.labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect();
                got.push((labels, a.annotations.clone()));
            }
        }
    }
    let mut exp: Vec<LabelsAndAnnotations> = test
        .exp_alerts
        .iter()
        .map(|e| {
            let mut l = e.exp_labels.clone();
            l.insert("alertname".into(), test.alertname.clone());
            (l, e.exp_annotations.clone())
        })
        .collect();
    got.sort();
    exp.sort();
    if got != exp {
        failures.push(format!("    alertname: {}, time: {}, \n        exp:{}, \n        got:{}", test.alertname, fmt_ms(at), show(&exp), show(&got)));
    }
}

fn same(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn check_expr(store: &MemStore, test: &RawExprTest, at: i64, failures: &mut Vec<String>) {
    let head = format!("    expr: {:?}, time: {}", test.expr, fmt_ms(at));
    let got = match Engine::default().instant_query(store, &test.expr, at) {
        Ok(r) => match r.value {
            Value::Vector(v) => v.into_iter().map(|s| (s.labels, s.value)).collect::<Vec<_>>(),
            Value::Scalar { value, .. } => vec![(Labels::empty(), value)],
            other => {
                failures.push(format!("{head},\n        err: expression did not give a vector or scalar: {other:?}"));
                return;
            }
        },
        Err(e) => {
            failures.push(format!("{head},\n        err: {e}"));
            return;
        }
    };
    let mut exp = Vec::new();
    for s in &test.exp_samples {
        let labels = if s.labels.trim().is_empty() { Ok(Labels::empty()) } else { parse_series(&s.labels) };
        let value = match &s.value {
            serde_yaml::Value::Number(n) => n.as_f64(),
            serde_yaml::Value::String(v) => number(v.trim()),
            _ => None,
        };
        match (labels, value) {
            (Ok(l), Some(v)) => exp.push((l, v)),
            (Err(e), _) => {
                failures.push(format!("{head},\n        err: bad exp_samples labels: {e}"));
                return;
            }
            (_, None) => {
                failures.push(format!("{head},\n        err: bad exp_samples value: {:?}", s.value));
                return;
            }
        }
    }
    let mut got = got;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    let equal = got.len() == exp.len() && got.iter().zip(&exp).all(|(g, e)| g.0 == e.0 && same(g.1, e.1));
    if !equal {
        let fmt = |v: &[(Labels, f64)]| {
            let items: Vec<String> = v.iter().map(|(l, x)| format!("{l} {}", super::template::go_float(*x, None))).collect();
            format!("[{}]", items.join(", "))
        };
        failures.push(format!("{head},\n        exp: {}\n        got: {}", fmt(&exp), fmt(&got)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use SeriesValue::*;

    #[test]
    fn value_notation_expands_like_promtool() {
        assert_eq!(expand_values("1+2x3").unwrap(), vec![Value(1.0), Value(3.0), Value(5.0), Value(7.0)]);
        assert_eq!(expand_values("10-1x2 _ stale _x2").unwrap(), vec![Value(10.0), Value(9.0), Value(8.0), Omitted, Stale, Omitted, Omitted]);
        assert_eq!(expand_values("5x2").unwrap(), vec![Value(5.0); 3]);
        assert_eq!(expand_values("-1+1x1 1e3").unwrap(), vec![Value(-1.0), Value(0.0), Value(1000.0)]);
        assert_eq!(expand_values("1e-1+1e1x1").unwrap(), vec![Value(0.1), Value(10.1)]);
        for bad in ["x", "1+", "abc", "1+2xz", "1+2x99999999999"] {
            assert!(expand_values(bad).is_err(), "{bad}");
        }
        assert!(matches!(expand_values("NaN").unwrap()[0], Value(v) if v.is_nan()));
    }

    #[test]
    fn series_notation() {
        assert_eq!(parse_series(r#"up{job="a", instance="b:1"}"#).unwrap().to_string(), r#"{__name__="up", instance="b:1", job="a"}"#);
        assert!(parse_series(r#"up{job=~"a"}"#).is_err());
        assert!(parse_series("up{").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn expansion_count_and_values(a in -1000i64..1000, b in 0i64..100, n in 0u64..50) {
            let v = expand_values(&format!("{a}+{b}x{n}")).unwrap();
            prop_assert_eq!(v.len() as u64, n + 1);
            prop_assert_eq!(v[n as usize], Value((a + b * n as i64) as f64));
        }

        #[test]
        fn expansion_never_panics(s in "[0-9x+_ a-z.-]{0,30}") {
            let _ = expand_values(&s);
        }
    }
}
