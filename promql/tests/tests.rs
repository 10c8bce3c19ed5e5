//! Integration tests: engine behaviour and the Prometheus conformance scripts.

mod conformance;
#[cfg(feature = "rules")]
mod rules;

use model::{mem::MemStore, Labels};
use promql::{Engine, EngineOptions, EvalError, Value};
use std::path::PathBuf;
use std::time::Duration;

fn store() -> MemStore {
    let s = MemStore::new();
    for (job, step) in [("a", 1.0), ("b", 2.0)] {
        let l = Labels::from_pairs([("__name__", "reqs_total"), ("job", job)]);
        for i in 0..=20 {
            s.append(&l, i * 30_000, i as f64 * step * 30.0);
        }
    }
    s
}

fn vector(v: Value) -> Vec<(String, f64)> {
    match v {
        Value::Vector(v) => {
            let mut out: Vec<(String, f64)> = v.into_iter().map(|s| (s.labels.to_string(), s.value)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("expected vector, got {other:?}"),
    }
}

#[test]
fn rate_sum_and_name_dropping() {
    let e = Engine::default();
    let r = e.instant_query(&store(), "sum by (job) (rate(reqs_total[5m]))", 600_000).unwrap();
    assert_eq!(vector(r.value), vec![(r#"{job="a"}"#.into(), 1.0), (r#"{job="b"}"#.into(), 2.0)]);
    let r = e.instant_query(&store(), "reqs_total{job=\"a\"} * 2", 600_000).unwrap();
    assert_eq!(vector(r.value), vec![(r#"{job="a"}"#.into(), 1200.0)]);
    let r = e.instant_query(&store(), "reqs_total > 1000", 600_000).unwrap();
    assert_eq!(vector(r.value), vec![(r#"{__name__="reqs_total", job="b"}"#.into(), 1200.0)]);
}

#[test]
fn lookback_and_staleness() {
    let s = MemStore::new();
    let l = Labels::from_pairs([("__name__", "m")]);
    s.append(&l, 0, 1.0);
    s.append(&l, 60_000, model::stale_nan());
    let e = Engine::default();
    assert_eq!(vector(e.instant_query(&s, "m", 30_000).unwrap().value).len(), 1);
    assert!(vector(e.instant_query(&s, "m", 90_000).unwrap().value).is_empty());
    let s2 = MemStore::new();
    s2.append(&l, 0, 1.0);
    assert_eq!(vector(e.instant_query(&s2, "m", 299_999).unwrap().value).len(), 1);
    assert!(vector(e.instant_query(&s2, "m", 300_000).unwrap().value).is_empty());
}

#[test]
fn range_query_and_matching_errors() {
    let e = Engine::default();
    let r = e.range_query(&store(), "reqs_total", 0, 120_000, 60_000).unwrap();
    let Value::Matrix(m) = r.value else { panic!() };
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].points.len(), 3);
    let err = e.instant_query(&store(), "reqs_total + on() reqs_total", 60_000).unwrap_err();
    assert!(err.to_string().contains("many-to-many matching not allowed"), "{err}");
    assert!(matches!(e.instant_query(&store(), "rate(reqs_total)", 0), Err(EvalError::Parse(_))));
}

#[test]
fn sample_limit_is_an_error() {
    let e = Engine::new(EngineOptions { max_samples: 10, ..EngineOptions::default() });
    let err = e.instant_query(&store(), "count_over_time(reqs_total[10m])", 600_000).unwrap_err();
    assert!(matches!(err, EvalError::TooManySamples(_)), "{err}");
    let e = Engine::new(EngineOptions { timeout: Duration::ZERO, ..EngineOptions::default() });
    assert!(matches!(e.instant_query(&store(), "reqs_total", 0), Err(EvalError::Timeout(_))));
}

#[test]
fn subquery_and_at_modifier() {
    let e = Engine::default();
    let r = e.instant_query(&store(), "max_over_time(reqs_total{job=\"a\"}[5m:1m] @ 300)", 0).unwrap();
    assert_eq!(vector(r.value), vec![(r#"{job="a"}"#.into(), 300.0)]);
}

/// The conformance floor: the number of evals that passed when this was last raised.
const MIN_PASSED: usize = 1162;

/// Runs every script in the conformance folder with storages from `make`,
/// printing per-file counts and the `N passed, M failed` line.
fn run_conformance(label: &str, make: &dyn Fn() -> Box<dyn conformance::TestStorage>) {
    let dir = std::env::var("PROMQL_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/promql"));
    if !dir.is_dir() {
        println!("skipped: {} not found", dir.display());
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("conformance dir is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let mut total = conformance::Counts::default();
    let verbose = std::env::var("PROMQL_TEST_VERBOSE").is_ok();
    println!("PromQL conformance over {label}:");
    for f in &files {
        let c = conformance::run_file(f, make).unwrap_or_else(|e| panic!("runner failed on {}: {e}", f.display()));
        println!(
            "{}: {} passed, {} failed, {} native-histogram not run, @ cross-check {} passed {} failed",
            f.file_name().unwrap_or_default().to_string_lossy(),
            c.passed,
            c.failed,
            c.native,
            c.at_passed,
            c.at_failed
        );
        for msg in c.failures.iter().take(if verbose { usize::MAX } else { 3 }) {
            println!("    FAIL {msg}");
        }
        total.passed += c.passed;
        total.failed += c.failed;
        total.native += c.native;
        total.at_passed += c.at_passed;
        total.at_failed += c.at_failed;
    }
    assert!(total.passed + total.failed > 0, "no evals were executed from {}", dir.display());
    println!("@ cross-check level: {} passed, {} failed", total.at_passed, total.at_failed);
    println!("native histograms: {} evals not run", total.native);
    println!("{} passed, {} failed", total.passed, total.failed);
    // Regression floor: conformance must not silently collapse.
    assert!(total.passed >= MIN_PASSED, "conformance over {label} regressed: only {} passed", total.passed);
}

#[test]
fn prometheus_conformance_scripts() {
    run_conformance("model::mem::MemStore", &|| -> Box<dyn conformance::TestStorage> { Box::new(MemStore::new()) });
}

/// The same scripts over the real tsdb: samples go through the WAL, the
/// head and the querier. Each `load` block is one commit.
#[test]
fn prometheus_conformance_scripts_over_tsdb() {
    run_conformance("tsdb::Db", &|| -> Box<dyn conformance::TestStorage> { Box::new(TsdbStorage::new()) });
}

struct TsdbStorage {
    db: tsdb::Db,
    // Samples of the current load block; a label set repeated within a
    // block keeps the later line, as the script format says.
    pending: std::collections::BTreeMap<(Labels, i64), (f64, Option<i64>)>,
    _dir: tempfile::TempDir,
}

impl TsdbStorage {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = tsdb::Options::builder().fsync(tsdb::FsyncPolicy::Never).build();
        let db = tsdb::Db::open(dir.path(), opts).expect("open tsdb");
        TsdbStorage { db, pending: Default::default(), _dir: dir }
    }
}

impl conformance::TestStorage for TsdbStorage {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), String> {
        self.pending.insert((labels.clone(), t), (v, None));
        Ok(())
    }

    fn append_with_start(&mut self, labels: &Labels, t: i64, v: f64, st: Option<i64>) -> Result<(), String> {
        self.pending.insert((labels.clone(), t), (v, st));
        Ok(())
    }

    fn commit(&mut self) -> Result<(), String> {
        let mut app = self.db.appender();
        for ((l, t), (v, st)) in std::mem::take(&mut self.pending) {
            app.append_with_start(&l, t, v, st).map_err(|e| e.to_string())?;
        }
        app.commit().map(|_| ()).map_err(|e| e.to_string())
    }

    fn queryable(&self) -> &dyn model::Queryable {
        &self.db
    }
}

#[test]
fn deepest_accepted_query_evaluates() {
    // Default parser limits: the deepest query that parses must also evaluate
    // on a normal (2 MiB) test thread without overflowing the stack.
    let q = format!("{}vector(1){}", "-(1 + ".repeat(20), ")".repeat(20));
    let r = Engine::default().range_query(&store(), &q, 0, 60_000, 30_000).unwrap();
    assert!(matches!(r.value, Value::Matrix(_)));
    let q = format!("{}reqs_total{}", "abs(".repeat(99), ")".repeat(99));
    assert!(Engine::default().instant_query(&store(), &q, 0).is_ok());
}

#[test]
fn name_removal_modes() {
    let s = MemStore::new();
    for name in ["a_total", "b_total"] {
        let l = Labels::from_pairs([("__name__", name), ("env", "1")]);
        for i in 0..=10 {
            s.append(&l, i * 60_000, i as f64);
        }
    }
    let q = r#"label_replace(rate({env="1"}[5m]), "__name__", "r_$1", "__name__", "(.+)")"#;
    // Delayed (Prometheus 3 with the feature flag): the name is still there
    // for label_replace to read.
    let delayed = Engine::default().instant_query(&s, q, 600_000).unwrap();
    assert_eq!(vector(delayed.value).len(), 2);
    // Immediate: rate() drops the names first, so both series collide.
    let eager = Engine::new(EngineOptions { delayed_name_removal: false, ..EngineOptions::default() });
    let err = eager.instant_query(&s, q, 600_000).unwrap_err();
    assert!(err.to_string().contains("same labelset"), "{err}");
}

#[test]
fn annotations_carry_positions() {
    let s = MemStore::new();
    let l = Labels::from_pairs([("__name__", "gauge_thing")]);
    for i in 0..=10 {
        s.append(&l, i * 60_000, i as f64);
    }
    let q = "rate(gauge_thing[5m])";
    let r = Engine::default().instant_query(&s, q, 600_000).unwrap();
    let rendered: Vec<String> = r.annotations.iter().map(|a| a.render(q)).collect();
    assert_eq!(
        rendered,
        vec![r#"PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "gauge_thing" (1:6)"#.to_string()]
    );
    let r = Engine::default().instant_query(&s, "quantile(2, gauge_thing)", 0).unwrap();
    assert_eq!(r.annotations[0].render("quantile(2, gauge_thing)"), "PromQL warning: quantile value should be between 0 and 1, got 2 (1:10)");
}

#[test]
fn hand_built_ast_with_bad_arity_is_an_error() {
    let mut e = promql::parse("clamp(reqs_total, 0, 1)").unwrap();
    if let promql::Expr::Call { args, .. } = &mut e {
        args.truncate(1);
    }
    let err = Engine::default().instant_expr(&store(), &e, 0).unwrap_err();
    assert!(err.to_string().contains("wrong number of arguments"), "{err}");
}

#[test]
fn extreme_times_and_durations_are_errors_or_clamped_not_panics() {
    let e = Engine::default();
    let s = store();
    for q in [
        "reqs_total offset 1e300",
        "reqs_total offset -292471208y",
        "rate(reqs_total[292471208y])",
        "reqs_total @ 9e15",
        "max_over_time(reqs_total[1e18:1e17] @ -9e15)",
        "reqs_total offset (1/0)",
        "reqs_total offset (0/0)",
    ] {
        let _ = e.instant_query(&s, q, 0);
        let _ = e.range_query(&s, q, 0, 60_000, 30_000);
    }
    assert!(matches!(e.instant_query(&s, "reqs_total", i64::MIN), Err(EvalError::BadParams(_))));
    assert!(matches!(e.range_query(&s, "reqs_total", 0, i64::MAX, 1), Err(EvalError::BadParams(_))));
}

#[test]
fn runaway_subquery_hits_the_sample_limit() {
    let e = Engine::new(EngineOptions { max_samples: 100_000, ..EngineOptions::default() });
    let err = e.instant_query(&store(), "max_over_time(vector(1)[1000y:1ms])", 0).unwrap_err();
    assert!(matches!(err, EvalError::TooManySamples(_)), "{err}");
}

/// A series for [`load`]: label pairs and values at successive intervals.
type SeriesSpec<'a> = (&'a [(&'a str, &'a str)], &'a [f64]);

fn load(series: &[SeriesSpec], interval: i64) -> MemStore {
    let s = MemStore::new();
    for (labels, values) in series {
        let l = Labels::from_pairs(labels.iter().copied());
        for (i, v) in values.iter().enumerate() {
            s.append(&l, i as i64 * interval, *v);
        }
    }
    s
}

fn instant(s: &MemStore, q: &str, t: i64) -> Vec<(String, f64)> {
    vector(Engine::default().instant_query(s, q, t).unwrap_or_else(|e| panic!("{q}: {e}")).value)
}

#[test]
fn classic_histogram_quantile() {
    let s = load(
        &[
            (&[("__name__", "h_bucket"), ("le", "1")], &[0.0, 10.0]),
            (&[("__name__", "h_bucket"), ("le", "2")], &[0.0, 20.0]),
            (&[("__name__", "h_bucket"), ("le", "+Inf")], &[0.0, 20.0]),
        ],
        60_000,
    );
    assert_eq!(instant(&s, "histogram_quantile(0.75, h_bucket)", 60_000), vec![("{}".into(), 1.5)]);
    assert_eq!(instant(&s, "histogram_fraction(0, 1, h_bucket)", 60_000), vec![("{}".into(), 0.5)]);
}

#[test]
fn range_windows_are_left_open_and_matching_joins() {
    let s = load(
        &[
            (&[("__name__", "m"), ("job", "a"), ("i", "1")], &[1.0, 2.0, 3.0]),
            (&[("__name__", "m"), ("job", "a"), ("i", "2")], &[10.0, 20.0, 30.0]),
            (&[("__name__", "info"), ("job", "a"), ("team", "x")], &[1.0, 1.0, 1.0]),
        ],
        60_000,
    );
    // (60s, 120s] holds one sample: the one at 60 s is outside.
    assert_eq!(instant(&s, "count_over_time(m{i=\"1\"}[1m])", 120_000), vec![(r#"{i="1", job="a"}"#.into(), 1.0)]);
    let got = instant(&s, "m * on(job) group_left(team) info", 120_000);
    assert_eq!(got, vec![(r#"{i="1", job="a", team="x"}"#.into(), 3.0), (r#"{i="2", job="a", team="x"}"#.into(), 30.0)]);
    let got = instant(&s, r#"label_replace(m, "x", "v$1", "i", "(.*)")"#, 0);
    assert_eq!(got[0].0, r#"{__name__="m", i="1", job="a", x="v1"}"#);
    assert_eq!(instant(&s, "absent(nope{job=\"z\"})", 0), vec![(r#"{job="z"}"#.into(), 1.0)]);
    let e = Engine::default();
    let r = e.instant_query(&s, "topk(1, m)", 0).unwrap();
    let Value::Vector(v) = r.value else { panic!() };
    assert_eq!(v[0].value, 10.0);
    let r = e.instant_query(&s, "sort_desc(m)", 120_000).unwrap();
    let Value::Vector(v) = r.value else { panic!() };
    assert_eq!(v.iter().map(|s| s.value).collect::<Vec<_>>(), vec![30.0, 3.0]);
}

#[test]
fn subquery_steps_are_aligned_to_absolute_time() {
    let s = load(&[(&[("__name__", "m")], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])], 60_000);
    // Steps at 2m, 3m, 4m (aligned to multiples of 1m), not at 150 s - 3m + k·1m.
    assert_eq!(instant(&s, "count_over_time(m[3m:1m])", 270_000), vec![("{}".into(), 3.0)]);
    assert_eq!(instant(&s, "sum_over_time(m[3m:1m])", 270_000), vec![("{}".into(), 2.0 + 3.0 + 4.0)]);
    // @ and offset move the window; both may be combined.
    assert_eq!(instant(&s, "m @ 120 offset 1m", 999_000), vec![(r#"{__name__="m"}"#.into(), 1.0)]);
}

mod robustness {
    use super::*;
    use promql::ast::ValueType;
    use promql::functions::FUNCTIONS;
    use proptest::prelude::*;

    fn data() -> MemStore {
        let s = MemStore::new();
        let series: Vec<Labels> = vec![
            Labels::from_pairs([("__name__", "m"), ("job", "a"), ("le", "1")]),
            Labels::from_pairs([("__name__", "m"), ("job", "a"), ("le", "+Inf")]),
            Labels::from_pairs([("__name__", "m"), ("job", "b"), ("le", "junk")]),
            Labels::from_pairs([("__name__", "n_total"), ("job", "a")]),
        ];
        for (k, l) in series.iter().enumerate() {
            for i in 0..40i64 {
                let v = match (i + k as i64) % 9 {
                    0 => f64::NAN,
                    4 => model::stale_nan(),
                    7 => -(i as f64),
                    _ => (i * (k as i64 + 1)) as f64,
                };
                s.append(l, i * 15_000, v);
            }
        }
        s
    }

    fn leaf(ty: ValueType) -> BoxedStrategy<String> {
        match ty {
            ValueType::Scalar => prop_oneof![
                (-3i32..5).prop_map(|n| n.to_string()),
                Just("NaN".to_string()),
                Just("Inf".to_string()),
                Just("time()".to_string()),
                Just("0.5".to_string()),
            ]
            .boxed(),
            ValueType::Vector => prop_oneof![
                Just("m".to_string()),
                Just("n_total".to_string()),
                Just(r#"m{job="a"} offset 1m"#.to_string()),
                Just(r#"{__name__=~"m|n_total"} @ 300"#.to_string()),
                Just("nothing".to_string()),
                Just(r#"info(m, {job=~".+"})"#.to_string()),
            ]
            .boxed(),
            ValueType::Matrix => prop_oneof![
                Just("m[1m]".to_string()),
                Just("n_total[2m] offset 30s".to_string()),
                Just("m[90s] anchored".to_string()),
                Just("n_total[1m] smoothed".to_string()),
                Just("nothing[5m]".to_string()),
            ]
            .boxed(),
            ValueType::String => prop_oneof![Just(r#""le""#.to_string()), Just(r#""job""#.to_string()), Just(r#""q""#.to_string())].boxed(),
        }
    }

    fn expr(ty: ValueType, depth: u32) -> BoxedStrategy<String> {
        if depth == 0 {
            return leaf(ty);
        }
        let d = depth - 1;
        match ty {
            ValueType::Vector => {
                let funcs: Vec<&'static promql::functions::Function> = FUNCTIONS.iter().filter(|f| f.ret == ValueType::Vector && f.name != "info").collect();
                let call = prop::sample::select(funcs).prop_flat_map(move |f| {
                    let max = f.max_args().unwrap_or(f.args.len() + 1);
                    (f.min_args()..=max).prop_flat_map(move |n| {
                        let args: Vec<BoxedStrategy<String>> = (0..n).map(|i| expr(f.arg_type(i), d)).collect();
                        args.prop_map(move |a| format!("{}({})", f.name, a.join(", ")))
                    })
                });
                let ops = prop::sample::select(vec!["+", "-", "*", "/", "%", "^", "==", "!= bool", "> bool", "and", "or", "unless", "atan2", "+ on(job) group_left(le)", "* ignoring(le)", "- fill(0)"]);
                let aggs = prop::sample::select(vec!["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]);
                let kaggs = prop::sample::select(vec!["topk", "bottomk", "quantile", "limitk", "limit_ratio"]);
                prop_oneof![
                    leaf(ValueType::Vector),
                    call,
                    (expr(ValueType::Vector, d), ops, expr(ValueType::Vector, d)).prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
                    (expr(ValueType::Vector, d), expr(ValueType::Scalar, d)).prop_map(|(a, b)| format!("({a}) * ({b})")),
                    (aggs, expr(ValueType::Vector, d)).prop_map(|(op, a)| format!("{op} by (job) ({a})")),
                    (kaggs, expr(ValueType::Scalar, d), expr(ValueType::Vector, d)).prop_map(|(op, k, a)| format!("{op} without (le) ({k}, {a})")),
                    expr(ValueType::Vector, d).prop_map(|a| format!("count_values(\"v\", {a})")),
                    expr(ValueType::Vector, d).prop_map(|a| format!("-({a})")),
                ]
                .boxed()
            }
            ValueType::Matrix => prop_oneof![
                leaf(ValueType::Matrix),
                expr(ValueType::Vector, d).prop_map(|a| format!("({a})[2m:30s]")),
                expr(ValueType::Vector, d).prop_map(|a| format!("({a})[1m:] @ 200 offset 10s")),
            ]
            .boxed(),
            ValueType::Scalar => prop_oneof![
                leaf(ValueType::Scalar),
                expr(ValueType::Vector, d).prop_map(|a| format!("scalar({a})")),
                (expr(ValueType::Scalar, d), expr(ValueType::Scalar, d)).prop_map(|(a, b)| format!("({a}) - ({b})")),
            ]
            .boxed(),
            ValueType::String => leaf(ValueType::String),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any well-typed query built from every function and operator
        /// evaluates to a result or an error, never a panic.
        #[test]
        fn typed_queries_never_panic(q in expr(ValueType::Vector, 3)) {
            let s = data();
            let e = Engine::default();
            match promql::parse(&q) {
                Ok(_) => {
                    let _ = e.instant_query(&s, &q, 450_000);
                    let _ = e.range_query(&s, &q, 0, 600_000, 45_000);
                }
                Err(err) => {
                    // Only parse-time type rules the generator does not model.
                    prop_assert!(err.message().contains("got") || err.message().contains("set operator") || err.message().contains("non-empty"), "{}: {}", q, err);
                }
            }
        }
    }
}

/// Issue 3: start timestamps. `start_timestamp()` over floats (the
/// conformance file only checks it on native histograms), and rate over
/// a series whose start timestamps come from the tsdb and from MemStore.
#[test]
fn start_timestamp_function_and_counters_with_starts() {
    let s = MemStore::new();
    let a = Labels::from_pairs([("__name__", "reqs_total"), ("case", "a")]);
    let b = Labels::from_pairs([("__name__", "reqs_total"), ("case", "b")]);
    // a: 10, 20, 30 at 10s, 20s, 30s with starts 5s, none, 25s.
    s.append_with_start(&a, 10_000, 10.0, Some(5_000));
    s.append_with_start(&a, 20_000, 20.0, None);
    s.append_with_start(&a, 30_000, 30.0, Some(25_000));
    s.append(&b, 10_000, 1.0);
    let e = Engine::default();
    let at = |q: &str, t: i64| vector(e.instant_query(&s, q, t).unwrap().value);
    assert_eq!(at("start_timestamp(reqs_total)", 15_000), vec![(r#"{case="a"}"#.into(), 5.0), (r#"{case="b"}"#.into(), 0.0)]);
    assert_eq!(at("start_timestamp(reqs_total{case=\"a\"})", 20_000), vec![(r#"{case="a"}"#.into(), 0.0)]);
    assert_eq!(at("start_timestamp(reqs_total{case=\"a\"} offset 5s)", 35_000), vec![(r#"{case="a"}"#.into(), 25.0)]);
    assert!(at("start_timestamp(reqs_total * 1)", 15_000).is_empty());
    // The start at 25s (after the sample at 20s) is a reset: 30 - 20 + 20
    // over 10s, extrapolated by 5s to the window start (20 has no start).
    assert_eq!(at("resets(reqs_total{case=\"a\"}[1m])", 30_000), vec![(r#"{case="a"}"#.into(), 1.0)]);
    assert_eq!(at("increase(reqs_total{case=\"a\"}[15s])", 30_000), vec![(r#"{case="a"}"#.into(), 45.0)]);
    // Started at 5s, inside the window: 0 at 5s, no left extrapolation
    // (10 by 10s, +10, then 30 after the reset).
    assert_eq!(at("increase(reqs_total{case=\"a\"}[30s])", 30_000), vec![(r#"{case="a"}"#.into(), 50.0)]);
    // Through a subquery the start timestamps are gone: no reset.
    assert_eq!(at("resets(reqs_total{case=\"a\"}[1m:10s])", 30_000), vec![(r#"{case="a"}"#.into(), 0.0)]);
    // With start timestamps switched off, the classic answers.
    let off = Engine::new(EngineOptions { use_start_timestamps: false, ..EngineOptions::default() });
    let off_at = |q: &str, t: i64| vector(off.instant_query(&s, q, t).unwrap().value);
    assert_eq!(off_at("resets(reqs_total{case=\"a\"}[1m])", 30_000), vec![(r#"{case="a"}"#.into(), 0.0)]);
    assert_eq!(off_at("increase(reqs_total{case=\"a\"}[15s])", 30_000), vec![(r#"{case="a"}"#.into(), 15.0)]);
    assert_eq!(off_at("start_timestamp(reqs_total)", 15_000), vec![(r#"{case="a"}"#.into(), 0.0), (r#"{case="b"}"#.into(), 0.0)]);

    // The same data through the tsdb, persisted to a block.
    let dir = tempfile::tempdir().unwrap();
    let db = tsdb::Db::open(dir.path(), tsdb::Options::builder().retention_time(None).build()).unwrap();
    let mut app = db.appender();
    app.append_with_start(&a, 10_000, 10.0, Some(5_000)).unwrap();
    app.append_with_start(&a, 20_000, 20.0, None).unwrap();
    app.append_with_start(&a, 30_000, 30.0, Some(25_000)).unwrap();
    app.append(&b, 10_000, 1.0).unwrap();
    app.commit().unwrap();
    db.flush_head().unwrap();
    for (q, t) in [
        ("start_timestamp(reqs_total)", 15_000),
        ("start_timestamp(reqs_total)", 30_000),
        ("increase(reqs_total{case=\"a\"}[15s])", 30_000),
        ("rate(reqs_total[1m])", 30_000),
        ("irate(reqs_total[1m])", 30_000),
    ] {
        assert_eq!(vector(e.instant_query(&db, q, t).unwrap().value), at(q, t), "{q} at {t}");
    }
    db.close().unwrap();
}

/// Range queries over a tsdb read large selections on two threads while
/// a writer keeps appending: no deadlock, and every answer covers the
/// series that existed before the queries started.
#[test]
fn parallel_loading_over_tsdb_with_a_live_writer() {
    let dir = tempfile::tempdir().unwrap();
    let opts = tsdb::Options::builder().fsync(tsdb::FsyncPolicy::Never).retention_time(None).build();
    let db = std::sync::Arc::new(tsdb::Db::open(dir.path(), opts).unwrap());
    let labels: Vec<Labels> = (0..3200).map(|i| Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])).collect();
    let mut app = db.appender();
    for k in 0..20i64 {
        for l in &labels {
            app.append(l, k * 15_000, k as f64).unwrap();
        }
    }
    app.commit().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop, labels) = (db.clone(), stop.clone(), labels.clone());
        std::thread::spawn(move || {
            // New samples for the existing series (after the queried
            // range) and one new series per commit.
            let mut k = 20i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut app = db.appender();
                for l in labels.iter().step_by(10) {
                    app.append(l, k * 15_000, k as f64).unwrap();
                }
                let l = Labels::from_pairs([("__name__", "m".to_string()), ("i", format!("new-{k}"))]);
                app.append(&l, 60_000, 1.0).unwrap();
                app.commit().unwrap();
                k += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let e = Engine::new(EngineOptions { parallelism: 2, ..EngineOptions::default() });
    for _ in 0..10 {
        let r = e.range_query(&*db, "count(m)", 60_000, 285_000, 15_000).unwrap();
        let Value::Matrix(m) = r.value else { panic!("not a matrix") };
        assert!(m[0].points.iter().all(|p| p.v >= 3200.0), "{:?}", m[0].points.first());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}
