//! The Loki HTTP API as a pure function: request path and query string in,
//! status code and JSON body out (no sockets; a server crate wires it up).
//!
//! Endpoints: `/loki/api/v1/query`, `/loki/api/v1/query_range`,
//! `/loki/api/v1/labels`, `/loki/api/v1/label/<name>/values`,
//! `/loki/api/v1/series`. Bodies follow Loki's shapes:
//! `{"status":"success","data":{"resultType":...,"result":[...],"stats":{...}}}`.
//! Errors are written like Loki's `http.Error`: a plain-text message with
//! 400 for bad queries/parameters/limits/pipeline errors, 504 for timeouts,
//! 500 for storage faults and 404 for unknown paths.
//!
//! ```
//! use model::{mem::MemLogStore, Labels, LogEntry};
//! let store = MemLogStore::new();
//! store.push(&Labels::from_pairs([("app", "a")]), LogEntry::new(1_000_000_000, "hello"));
//! let resp = logql::http_api::handle(
//!     &store,
//!     &logql::EngineOptions::default(),
//!     "/loki/api/v1/query_range",
//!     "query=%7Bapp%3D%22a%22%7D&start=0&end=2",
//!     2_000_000_000,
//! );
//! assert_eq!(resp.status, 200);
//! assert!(resp.body.contains(r#"["1000000000","hello"]"#));
//! ```

use crate::engine::{Engine, EngineOptions, QueryParams, QueryResult};
use crate::error::EvalError;
use crate::units::parse_query_duration;
use model::{Direction, Labels, LogQueryable};
use serde_json::{json, Map, Value};
use std::time::Instant;

/// An HTTP response: status, content type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// `application/json` for success, `text/plain; charset=utf-8` for errors.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// A request parameter error (400).
#[derive(Debug, thiserror::Error)]
#[error("invalid parameter {name:?}: {msg}")]
#[non_exhaustive]
pub struct ParamError {
    /// Parameter name.
    pub name: String,
    /// What is wrong.
    pub msg: String,
}

fn perr(name: &str, msg: impl Into<String>) -> ParamError {
    ParamError { name: name.to_string(), msg: msg.into() }
}

/// Decodes an `application/x-www-form-urlencoded` query string.
pub fn parse_query_string(qs: &str) -> Vec<(String, String)> {
    fn dec(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    match s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    qs.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

fn get<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// Parses a Loki timestamp: float seconds (`1.5`), integer seconds (up to
/// 10 digits) or nanoseconds, or RFC 3339.
pub fn parse_time(name: &str, v: &str) -> Result<i64, ParamError> {
    if v.contains('.') {
        if let Ok(f) = v.parse::<f64>() {
            return Ok((f * 1e9).round() as i64);
        }
    }
    if let Ok(n) = v.parse::<i64>() {
        return Ok(if v.trim_start_matches('-').len() <= 10 { n.saturating_mul(1_000_000_000) } else { n });
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| perr(name, format!("cannot parse {v:?} to a valid timestamp")))
}

/// Parses a step/duration: float seconds or a duration literal; in ns.
pub fn parse_step(name: &str, v: &str) -> Result<i64, ParamError> {
    if let Ok(f) = v.parse::<f64>() {
        if !f.is_finite() {
            return Err(perr(name, format!("cannot parse {v:?} to a valid duration")));
        }
        return Ok((f * 1e9).round() as i64);
    }
    parse_query_duration(v).map(|d| d as i64).map_err(|_| perr(name, format!("cannot parse {v:?} to a valid duration")))
}

fn direction(params: &[(String, String)]) -> Result<Direction, ParamError> {
    match get(params, "direction").map(str::to_ascii_lowercase).as_deref() {
        None | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(other) => Err(perr("direction", format!("invalid direction {other:?}"))),
    }
}

fn limit(params: &[(String, String)]) -> Result<usize, ParamError> {
    match get(params, "limit") {
        None => Ok(100),
        Some(v) => v.parse::<usize>().map_err(|_| perr("limit", format!("cannot parse {v:?} as a positive integer"))),
    }
}

/// Formats a sample value like Prometheus (`NaN`, `+Inf`, shortest decimal).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

fn labels_json(l: &Labels) -> Value {
    let mut m = Map::new();
    for lb in l.iter() {
        m.insert(lb.name.clone(), Value::String(lb.value.clone()));
    }
    Value::Object(m)
}

fn ts_secs(ns: i64) -> Value {
    serde_json::Number::from_f64(ns as f64 / 1e9).map_or(Value::Null, Value::Number)
}

/// The `data` object of a query result.
pub fn result_json(r: &QueryResult, exec_secs: f64) -> Value {
    let (kind, result) = match r {
        QueryResult::Streams(s) => (
            "streams",
            Value::Array(
                s.iter()
                    .map(|st| {
                        json!({
                            "stream": labels_json(&st.labels),
                            "values": st.entries.iter().map(|e| json!([e.ts.to_string(), e.line])).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            ),
        ),
        QueryResult::Vector(v) => (
            "vector",
            Value::Array(
                v.iter().map(|s| json!({"metric": labels_json(&s.labels), "value": [ts_secs(s.ts), format_value(s.value)]})).collect(),
            ),
        ),
        QueryResult::Matrix(m) => (
            "matrix",
            Value::Array(
                m.iter()
                    .map(|s| {
                        json!({
                            "metric": labels_json(&s.labels),
                            "values": s.points.iter().map(|(t, v)| json!([ts_secs(*t), format_value(*v)])).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            ),
        ),
        QueryResult::Scalar(t, v) => ("scalar", json!([ts_secs(*t), format_value(*v)])),
    };
    json!({"resultType": kind, "result": result, "stats": {"summary": {"execTime": exec_secs}}})
}

fn error_response(status: u16, msg: &str) -> Response {
    Response { status, content_type: "text/plain; charset=utf-8", body: format!("{msg}\n") }
}

fn eval_error_response(e: &EvalError) -> Response {
    match e {
        EvalError::Timeout(_) => error_response(504, &e.to_string()),
        EvalError::Storage(_) => error_response(500, &e.to_string()),
        _ => error_response(400, &e.to_string()),
    }
}

fn success(data: Value) -> Response {
    Response { status: 200, content_type: "application/json", body: json!({"status": "success", "data": data}).to_string() }
}

/// Handles one API request. `now` (ns) fills default times.
pub fn handle(store: &dyn LogQueryable, opts: &EngineOptions, path: &str, query_string: &str, now: i64) -> Response {
    let params = parse_query_string(query_string);
    match route(store, opts, path.trim_end_matches('/'), &params, now) {
        Ok(r) => r,
        Err(e) => error_response(400, &e.to_string()),
    }
}

const HOUR: i64 = 3_600_000_000_000;

fn range_bounds(params: &[(String, String)], now: i64) -> Result<(i64, i64), ParamError> {
    let end = get(params, "end").map(|v| parse_time("end", v)).transpose()?.unwrap_or(now);
    let start = match (get(params, "start"), get(params, "since")) {
        (Some(v), _) => parse_time("start", v)?,
        (None, Some(s)) => end.saturating_sub(parse_step("since", s)?),
        (None, None) => end.saturating_sub(HOUR),
    };
    if end < start {
        return Err(perr("end", "end timestamp must not be before or equal to start time"));
    }
    Ok((start, end))
}

fn route(
    store: &dyn LogQueryable,
    opts: &EngineOptions,
    path: &str,
    params: &[(String, String)],
    now: i64,
) -> Result<Response, ParamError> {
    let engine = Engine::with_options(store, opts.clone());
    match path {
        "/loki/api/v1/query" => {
            let q = get(params, "query").ok_or_else(|| perr("query", "missing"))?;
            let t = get(params, "time").map(|v| parse_time("time", v)).transpose()?.unwrap_or(now);
            let p = QueryParams::instant(t).with_limit(limit(params)?).with_direction(direction(params)?);
            Ok(run(&engine, q, p))
        }
        "/loki/api/v1/query_range" => {
            let q = get(params, "query").ok_or_else(|| perr("query", "missing"))?;
            let (start, end) = range_bounds(params, now)?;
            let step = match get(params, "step") {
                Some(s) => parse_step("step", s)?,
                // Loki's default: (end - start) / 250, at least 1s.
                None => ((end - start) / 250 / 1_000_000_000).max(1) * 1_000_000_000,
            };
            if step <= 0 {
                return Err(perr("step", "zero or negative query resolution step widths are not accepted. Try a positive integer"));
            }
            let p = QueryParams::range(start, end, step).with_limit(limit(params)?).with_direction(direction(params)?);
            Ok(run(&engine, q, p))
        }
        "/loki/api/v1/labels" => {
            let (start, end) = range_bounds(params, now)?;
            Ok(storage(store.log_querier().and_then(|q| q.label_names(start, end))).map_or_else(|r| r, |v| success(json!(v))))
        }
        "/loki/api/v1/series" => {
            let (start, end) = range_bounds(params, now)?;
            let selectors: Vec<&str> =
                params.iter().filter(|(k, _)| k == "match[]" || k == "match").map(|(_, v)| v.as_str()).collect();
            if selectors.is_empty() {
                return Err(perr("match[]", "at least one selector is required"));
            }
            let mut out: Vec<Labels> = Vec::new();
            for sel in selectors {
                let matchers = match crate::parse(sel) {
                    Ok(crate::Expr::Log(l)) => l.matchers,
                    Ok(_) => return Err(perr("match[]", format!("{sel:?} is not a stream selector"))),
                    Err(e) => return Ok(error_response(400, &e.to_string())),
                };
                match storage(store.log_querier().and_then(|q| q.series(&matchers, start, end))) {
                    Ok(v) => out.extend(v),
                    Err(r) => return Ok(r),
                }
            }
            out.sort();
            out.dedup();
            Ok(success(Value::Array(out.iter().map(labels_json).collect())))
        }
        _ => {
            if let Some(name) = path.strip_prefix("/loki/api/v1/label/").and_then(|r| r.strip_suffix("/values")) {
                let (start, end) = range_bounds(params, now)?;
                let matchers = match get(params, "query") {
                    Some(sel) => match crate::parse(sel) {
                        Ok(crate::Expr::Log(l)) => l.matchers,
                        Ok(_) => return Err(perr("query", "not a stream selector")),
                        Err(e) => return Ok(error_response(400, &e.to_string())),
                    },
                    None => Vec::new(),
                };
                return Ok(storage(store.log_querier().and_then(|q| q.label_values(name, &matchers, start, end)))
                    .map_or_else(|r| r, |v| success(json!(v))));
            }
            Ok(error_response(404, &format!("404 page not found: {path}")))
        }
    }
}

fn storage<T>(r: Result<T, model::StorageError>) -> Result<T, Response> {
    r.map_err(|e| error_response(500, &e.to_string()))
}

fn run(engine: &Engine<'_>, q: &str, p: QueryParams) -> Response {
    let started = Instant::now();
    match engine.query(q, p) {
        Ok(r) => success(result_json(&r, started.elapsed().as_secs_f64())),
        Err(e) => eval_error_response(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::mem::MemLogStore;
    use model::LogEntry;

    const S: i64 = 1_000_000_000;

    fn store() -> MemLogStore {
        let s = MemLogStore::new();
        let l = Labels::from_pairs([("app", "a")]);
        for i in 1..=6 {
            s.push(&l, LogEntry::new(i * 10 * S, format!("n={i}")));
        }
        s
    }

    fn call(path: &str, qs: &str) -> (u16, Value) {
        let st = store();
        let r = handle(&st, &EngineOptions::default(), path, qs, 60 * S);
        if r.status == 200 {
            assert_eq!(r.content_type, "application/json");
            (r.status, serde_json::from_str(&r.body).expect("valid json"))
        } else {
            assert!(r.content_type.starts_with("text/plain"));
            (r.status, Value::String(r.body))
        }
    }

    #[test]
    fn shapes() {
        let (s, v) = call("/loki/api/v1/query", "query=count_over_time(%7Bapp%3D%22a%22%7D%5B1m%5D)&time=60");
        assert_eq!(s, 200);
        assert_eq!(v["data"]["resultType"], "vector");
        assert_eq!(v["data"]["result"][0]["metric"]["app"], "a");
        assert_eq!(v["data"]["result"][0]["value"][1], "6");
        let (_, v) = call("/loki/api/v1/query_range", "query=count_over_time({app=\"a\"}[30s])&start=30&end=60&step=30s");
        assert_eq!(v["data"]["resultType"], "matrix");
        assert_eq!(v["data"]["result"][0]["values"], json!([[30.0, "3"], [60.0, "3"]]));
        let (_, v) = call("/loki/api/v1/query", "query=1%2B1&time=60");
        assert_eq!(v["data"]["result"], json!([60.0, "2"]));
        let (_, v) = call("/loki/api/v1/query_range", "query={app=\"a\"}&start=0&end=60&limit=2");
        assert_eq!(v["data"]["resultType"], "streams");
        assert_eq!(v["data"]["result"][0]["values"], json!([["50000000000", "n=5"], ["40000000000", "n=4"]]));
        let (_, v) = call("/loki/api/v1/labels", "start=0&end=60");
        assert_eq!(v["data"], json!(["app"]));
        let (_, v) = call("/loki/api/v1/label/app/values", "start=0&end=60");
        assert_eq!(v["data"], json!(["a"]));
        let (_, v) = call("/loki/api/v1/series", "match[]={app=\"a\"}&start=0&end=60");
        assert_eq!(v["data"], json!([{"app": "a"}]));
    }

    #[test]
    fn errors() {
        let (s, v) = call("/loki/api/v1/query", "query=sum(");
        assert_eq!(s, 400);
        assert!(v.as_str().unwrap_or("").starts_with("parse error at line 1, col 5"), "{v}");
        let (s, v) = call("/loki/api/v1/query", "query=count_over_time(%7Bapp%3D%22a%22%7D%7Cjson%5B1m%5D)&time=60");
        assert_eq!(s, 400);
        assert!(v.as_str().unwrap_or("").contains("JSONParserErr"), "{v}");
        assert_eq!(call("/loki/api/v1/query_range", "query=1&step=-1").0, 400);
        assert_eq!(call("/loki/api/v1/query", "query=1&time=yesterday").0, 400);
        assert_eq!(call("/loki/api/v1/query_range", "query={app=\"a\"}&direction=up").0, 400);
        assert_eq!(call("/nope", "").0, 404);
        assert_eq!(parse_time("t", "2024-01-01T00:00:00Z").unwrap(), 1_704_067_200 * S);
        assert_eq!(parse_time("t", "1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_step("s", "1m").unwrap(), 60 * S);
    }
}
