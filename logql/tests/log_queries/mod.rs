//! Log-query results (lines, order, limit, labels after parsers), checked
//! against Loki's documented behaviour.

use logql::{Engine, EngineOptions, EvalError, QueryParams, QueryResult, StreamResult};
use model::mem::MemLogStore;
use model::{Direction, Labels, LogEntry};

const S: i64 = 1_000_000_000;

fn store() -> MemLogStore {
    let s = MemLogStore::new();
    let api = Labels::from_pairs([("app", "api"), ("env", "prod")]);
    let web = Labels::from_pairs([("app", "web"), ("env", "prod")]);
    for i in 0..5 {
        let lvl = if i % 2 == 0 { "error" } else { "info" };
        s.push(&api, LogEntry::new(i * 10 * S, format!("level={lvl} n={i} msg=\"api {i}\"")));
        s.push(&web, LogEntry::new(i * 10 * S + 5 * S, format!(r#"{{"level":"{lvl}","n":{i}}}"#)));
    }
    s
}

fn streams(store: &MemLogStore, q: &str, p: QueryParams) -> Vec<StreamResult> {
    match Engine::new(store).query(q, p) {
        Ok(QueryResult::Streams(s)) => s,
        other => panic!("{q}: expected streams, got {other:?}"),
    }
}

fn lines(s: &[StreamResult]) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = s.iter().flat_map(|st| st.entries.iter().map(|e| (e.ts / S, e.line.clone()))).collect();
    v.sort();
    v
}

#[test]
fn backward_is_newest_first_and_limit_is_global() {
    let st = store();
    let p = QueryParams::range(0, 100 * S, S).with_limit(3);
    let s = streams(&st, r#"{env="prod"}"#, p);
    let all = lines(&s);
    // The 3 newest entries across both streams: 45s (web), 40s (api), 35s (web).
    assert_eq!(all.iter().map(|x| x.0).collect::<Vec<_>>(), vec![35, 40, 45]);
    for stream in &s {
        assert!(stream.entries.windows(2).all(|w| w[0].ts >= w[1].ts), "backward order inside a stream");
    }
}

#[test]
fn forward_is_oldest_first() {
    let st = store();
    let p = QueryParams::range(0, 100 * S, S).with_limit(2).with_direction(Direction::Forward);
    let s = streams(&st, r#"{env="prod"}"#, p);
    assert_eq!(lines(&s).iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 5]);
    for stream in &s {
        assert!(stream.entries.windows(2).all(|w| w[0].ts <= w[1].ts));
    }
}

#[test]
fn end_is_exclusive_start_inclusive() {
    let st = store();
    let p = QueryParams::range(10 * S, 30 * S, S).with_direction(Direction::Forward);
    let s = streams(&st, r#"{app="api"}"#, p);
    assert_eq!(lines(&s).iter().map(|x| x.0).collect::<Vec<_>>(), vec![10, 20]);
}

#[test]
fn parsed_labels_split_streams() {
    let st = store();
    let p = QueryParams::range(0, 100 * S, S);
    let s = streams(&st, r#"{app="api"} | logfmt | drop n, msg"#, p);
    let labels: Vec<Labels> = s.iter().map(|x| x.labels.clone()).collect();
    assert_eq!(
        labels,
        vec![
            Labels::from_pairs([("app", "api"), ("env", "prod"), ("level", "error")]),
            Labels::from_pairs([("app", "api"), ("env", "prod"), ("level", "info")]),
        ]
    );
    assert_eq!(s[0].entries.len(), 3);
    assert_eq!(s[1].entries.len(), 2);
}

#[test]
fn filters_and_line_format() {
    let st = store();
    let p = QueryParams::range(0, 100 * S, S).with_direction(Direction::Forward);
    let s = streams(&st, r#"{app="web"} | json | level="error" | n >= 2 | line_format "{{.level | ToUpper}} #{{.n}}""#, p);
    assert_eq!(lines(&s), vec![(25, "ERROR #2".to_string()), (45, "ERROR #4".to_string())]);
    let s = streams(&st, r#"{app="api"} |= "api 3" or "api 1" != "n=1""#, p);
    assert_eq!(lines(&s).len(), 1);
}

#[test]
fn errors_are_labels_in_log_queries() {
    let st = store();
    let p = QueryParams::range(0, 100 * S, S);
    // logfmt lines are not json: the entries stay, labelled with the error.
    let s = streams(&st, r#"{app="api"} | json"#, p);
    assert!(s.iter().all(|x| x.labels.get("__error__") == Some("JSONParserErr")));
    assert_eq!(s.iter().map(|x| x.entries.len()).sum::<usize>(), 5);
    let s = streams(&st, r#"{app="api"} | json | __error__="""#, p);
    assert!(s.is_empty());
}

#[test]
fn structured_metadata_becomes_labels() {
    let st = MemLogStore::new();
    let l = Labels::from_pairs([("app", "a")]);
    st.push(&l, LogEntry { ts: S, line: "x".into(), metadata: Labels::from_pairs([("trace", "t1")]) });
    st.push(&l, LogEntry { ts: 2 * S, line: "y".into(), metadata: Labels::from_pairs([("trace", "t2")]) });
    let s = streams(&st, r#"{app="a"} | trace="t2""#, QueryParams::range(0, 10 * S, S));
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].labels, Labels::from_pairs([("app", "a"), ("trace", "t2")]));
    assert_eq!(s[0].entries[0].line, "y");
}

#[test]
fn instant_log_queries_and_limits_are_rejected() {
    let st = store();
    let e = Engine::new(&st).query(r#"{app="api"}"#, QueryParams::instant(10 * S)).unwrap_err();
    assert!(e.to_string().contains("log queries are not supported as an instant query"), "{e}");
    let eng = Engine::with_options(&st, EngineOptions { max_entries_limit: 10, ..EngineOptions::default() });
    let e = eng.query(r#"{app="api"}"#, QueryParams::range(0, S, S).with_limit(11)).unwrap_err();
    assert!(matches!(e, EvalError::Limit(_)), "{e}");
    let eng = Engine::with_options(&st, EngineOptions { max_series: 2, ..EngineOptions::default() });
    let e = eng.query(r#"count_over_time({app="api"} | logfmt [1m])"#, QueryParams::instant(60 * S)).unwrap_err();
    assert!(e.to_string().contains("maximum of series (2)"), "{e}");
    let eng = Engine::with_options(&st, EngineOptions { timeout: Some(std::time::Duration::ZERO), ..EngineOptions::default() });
    let e = eng.query(r#"count_over_time({app="api"}[1m])"#, QueryParams::range(0, 60 * S, S)).unwrap_err();
    assert!(matches!(e, EvalError::Timeout(_)), "{e}");
    let e = Engine::new(&st).query("{app=", QueryParams::instant(0)).unwrap_err();
    assert!(e.to_string().starts_with("parse error at line 1, col 6:"), "{e}");
}

#[test]
fn metric_queries_fail_on_pipeline_errors() {
    let st = store();
    let e = Engine::new(&st).query(r#"count_over_time({app="api"} | json [1m])"#, QueryParams::instant(60 * S)).unwrap_err();
    assert!(e.to_string().contains("pipeline error: 'JSONParserErr'"), "{e}");
    let q = r#"sum(sum_over_time({app="web"} | json | unwrap level [1m]))"#;
    let r = Engine::new(&st).query(q, QueryParams::instant(60 * S)).unwrap_err();
    assert!(r.to_string().contains("'SampleExtractionErr'"), "{r}");
    let q = r#"sum(sum_over_time({app="web"} | json | unwrap level | __error__="" [1m]))"#;
    assert_eq!(Engine::new(&st).query(q, QueryParams::instant(60 * S)).unwrap(), QueryResult::Vector(vec![]));
    let q = r#"sum(sum_over_time({app="web"} | json | unwrap n [1m]))"#;
    let QueryResult::Vector(v) = Engine::new(&st).query(q, QueryParams::instant(60 * S)).unwrap() else { panic!() };
    assert_eq!(v[0].value, 10.0);
}

fn vector(store: &MemLogStore, q: &str, t: i64) -> Vec<(Labels, f64)> {
    match Engine::new(store).query(q, QueryParams::instant(t)) {
        Ok(QueryResult::Vector(v)) => {
            let mut v: Vec<(Labels, f64)> = v.into_iter().map(|s| (s.labels, s.value)).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        }
        other => panic!("{q}: expected a vector, got {other:?}"),
    }
}

#[test]
fn metric_pipelines_with_formatters() {
    let st = store();
    // regexp + label_format + keep shape the series labels.
    let q = r#"sum by (lvl) (count_over_time({app="api"} | regexp "level=(?P<level>\\w+)" | label_format lvl="{{ .level | upper }}" | keep lvl [1m]))"#;
    assert_eq!(
        vector(&st, q, 60 * S),
        // (0s, 60s] holds the entries at 10s..40s: errors at 20s and 40s.
        vec![(Labels::from_pairs([("lvl", "ERROR")]), 2.0), (Labels::from_pairs([("lvl", "INFO")]), 2.0)]
    );
    // line_format changes what bytes_over_time measures.
    let q = r#"bytes_over_time({app="api"} | line_format "{{.app}}" [1m])"#;
    assert_eq!(vector(&st, q, 60 * S), vec![(Labels::from_pairs([("app", "api"), ("env", "prod")]), 12.0)]);
    // label_replace over a metric.
    let q = r#"label_replace(sum by (app) (count_over_time({env="prod"}[1m])), "svc", "s-$1", "app", "(a.*)")"#;
    assert_eq!(
        vector(&st, q, 60 * S),
        vec![
            (Labels::from_pairs([("app", "api"), ("svc", "s-api")]), 4.0),
            (Labels::from_pairs([("app", "web")]), 5.0),
        ]
    );
    // offset shifts the window: (0s, 20s] at t=40s with offset 20s holds api entries 10s and 20s.
    let q = r#"count_over_time({app="api"}[20s] offset 20s)"#;
    assert_eq!(vector(&st, q, 40 * S)[0].1, 2.0);
}

#[test]
fn range_query_steps() {
    let st = store();
    let q = r#"count_over_time({app="api"}[10s])"#;
    match Engine::new(&st).query(q, QueryParams::range(0, 50 * S, 10 * S)).unwrap() {
        QueryResult::Matrix(m) => {
            assert_eq!(m.len(), 1);
            let pts: Vec<(i64, f64)> = m[0].points.iter().map(|(t, v)| (t / S, *v)).collect();
            // Windows (t-10s, t]: one entry each at 0,10,..,40; none at 50.
            assert_eq!(pts, vec![(0, 1.0), (10, 1.0), (20, 1.0), (30, 1.0), (40, 1.0)]);
        }
        other => panic!("{other:?}"),
    }
    let e = Engine::new(&st).query(q, QueryParams::range(0, 50 * S, 0)).unwrap_err();
    assert!(matches!(e, EvalError::BadRequest(_)), "{e}");
}

#[test]
fn approx_topk_is_exact_and_instant_only() {
    let st = store();
    let q = r#"approx_topk(1, sum by (app) (count_over_time({env="prod"}[1m])))"#;
    assert_eq!(vector(&st, q, 60 * S), vec![(Labels::from_pairs([("app", "web")]), 5.0)]);
    let e = Engine::new(&st).query(q, QueryParams::range(0, 60 * S, 10 * S)).unwrap_err();
    assert!(e.to_string().contains("only supported for instant queries"), "{e}");
}
