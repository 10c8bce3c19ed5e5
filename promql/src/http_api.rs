//! The Prometheus HTTP query API as pure request → response functions.
//!
//! [`PromApi::handle`] takes a method, a path, the query string and the
//! body (for `POST` forms) and returns the status, content type and JSON
//! body that Prometheus would send, with the same shapes, value formatting
//! (`[<unix seconds>, "<value>"]`) and error bodies
//! (`{"status":"error","errorType":"bad_data","error":"..."}`). No sockets:
//! a server binary feeds it whatever HTTP library it uses.
//!
//! ```
//! use model::{mem::MemStore, Labels};
//! use promql::{Engine, http_api::{ApiRequest, PromApi}};
//!
//! let store = MemStore::new();
//! store.append(&Labels::from_pairs([("__name__", "up"), ("job", "node")]), 10_000, 1.0);
//! let engine = Engine::default();
//! let api = PromApi::new(&engine, &store);
//! let resp = api.handle(&ApiRequest::get("/api/v1/query", "query=up&time=20"), 0);
//! assert_eq!(resp.status, 200);
//! assert_eq!(
//!     String::from_utf8(resp.body).unwrap(),
//!     r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"node"},"value":[20,"1"]}]}}"#
//! );
//! ```

use crate::engine::{Engine, EvalError};
use crate::value::{AnnotationKind, Value};
use crate::QueryResult;
use model::{Labels, Matcher, MetricMetadata, Queryable};
use std::collections::BTreeMap;

/// Smallest timestamp the API accepts as "from the beginning" (as Prometheus's
/// `minTime`, in ms).
pub const MIN_TIME_MS: i64 = -9_223_309_901_257_974;
/// Largest timestamp the API accepts as "until the end" (ms).
pub const MAX_TIME_MS: i64 = 9_223_309_901_257_974;

/// One HTTP request, already split by the server.
#[derive(Clone, Debug)]
pub struct ApiRequest<'a> {
    /// `GET` or `POST` (others give 405).
    pub method: &'a str,
    /// The path, without the query string (e.g. `/api/v1/query`).
    pub path: &'a str,
    /// The raw query string (without `?`).
    pub query: &'a str,
    /// The body; for `POST` with a form content type its parameters are
    /// added to the query string's.
    pub body: &'a [u8],
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
}

impl<'a> ApiRequest<'a> {
    /// A `GET` request.
    pub fn get(path: &'a str, query: &'a str) -> Self {
        ApiRequest { method: "GET", path, query, body: &[], content_type: None }
    }

    /// A `POST` request with a URL-encoded form body.
    pub fn post_form(path: &'a str, body: &'a [u8]) -> Self {
        ApiRequest {
            method: "POST",
            path,
            query: "",
            body,
            content_type: Some("application/x-www-form-urlencoded"),
        }
    }
}

/// The response to send.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// Content type of `body`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

/// What `/api/v1/status/buildinfo` reports.
#[derive(Clone, Debug)]
pub struct BuildInfo {
    /// Version string.
    pub version: String,
    /// Source revision.
    pub revision: String,
    /// Branch.
    pub branch: String,
    /// Who built it.
    pub build_user: String,
    /// When.
    pub build_date: String,
    /// Toolchain (Prometheus reports its Go version here).
    pub go_version: String,
}

impl Default for BuildInfo {
    fn default() -> Self {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: String::new(),
            branch: String::new(),
            build_user: String::new(),
            build_date: String::new(),
            go_version: "rust".to_string(),
        }
    }
}

/// Prometheus's error types and their status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// 400: invalid parameters or query.
    BadData,
    /// 422: the query failed while running.
    Execution,
    /// 503: the query timed out.
    Timeout,
    /// 500: the storage failed.
    Internal,
    /// 404: no such endpoint.
    NotFound,
    /// 405: wrong method.
    MethodNotAllowed,
}

impl ErrorType {
    fn name(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Internal => "internal",
            ErrorType::NotFound => "not_found",
            ErrorType::MethodNotAllowed => "method_not_allowed",
        }
    }

    fn status(self) -> u16 {
        match self {
            ErrorType::BadData => 400,
            ErrorType::Execution => 422,
            ErrorType::Timeout => 503,
            ErrorType::Internal => 500,
            ErrorType::NotFound => 404,
            ErrorType::MethodNotAllowed => 405,
        }
    }
}

type ApiResult = Result<Vec<u8>, (ErrorType, String)>;

/// The API over one engine and one storage.
pub struct PromApi<'a> {
    engine: &'a Engine,
    store: &'a dyn Queryable,
    build: BuildInfo,
}

impl<'a> PromApi<'a> {
    /// An API answering from `store` with `engine`.
    pub fn new(engine: &'a Engine, store: &'a dyn Queryable) -> Self {
        PromApi { engine, store, build: BuildInfo::default() }
    }

    /// Replaces the build information reported.
    pub fn with_build_info(mut self, build: BuildInfo) -> Self {
        self.build = build;
        self
    }

    /// Answers one request. `now_ms` is the time used when a query gives
    /// none.
    pub fn handle(&self, req: &ApiRequest<'_>, now_ms: i64) -> ApiResponse {
        if req.method != "GET" && req.method != "POST" {
            return error_response(ErrorType::MethodNotAllowed, "method not allowed");
        }
        let mut params: Vec<(String, String)> = parse_form(req.query.as_bytes());
        if req.method == "POST"
            && req.content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
        {
            params.extend(parse_form(req.body));
        }
        let p = Params(params);
        let result = match req.path {
            "/api/v1/query" => self.query(&p, now_ms),
            "/api/v1/query_range" => self.query_range(&p),
            "/api/v1/series" => self.series(&p),
            "/api/v1/labels" => self.labels(&p),
            "/api/v1/metadata" => self.metadata(&p),
            "/api/v1/status/buildinfo" => Ok(self.buildinfo()),
            "/api/v1/format_query" => format_query(&p),
            path => match path.strip_prefix("/api/v1/label/").and_then(|r| r.strip_suffix("/values")) {
                Some(name) => self.label_values(&percent_decode(name), &p),
                None => Err((ErrorType::NotFound, format!("unknown API endpoint {path}"))),
            },
        };
        match result {
            Ok(body) => ApiResponse { status: 200, content_type: JSON, body },
            Err((kind, msg)) => error_response(kind, &msg),
        }
    }

    fn query(&self, p: &Params, now_ms: i64) -> ApiResult {
        let q = p.required("query")?;
        let t = match p.get("time") {
            Some(s) => parse_time(s).map_err(|e| bad(format!("invalid parameter \"time\": {e}")))?,
            None => now_ms,
        };
        let res = self.engine.instant_query(self.store, q, t).map_err(eval_error)?;
        Ok(success_query(&res, q))
    }

    fn query_range(&self, p: &Params) -> ApiResult {
        let q = p.required("query")?;
        let start = parse_time(p.required("start")?)
            .map_err(|e| bad(format!("invalid parameter \"start\": {e}")))?;
        let end = parse_time(p.required("end")?)
            .map_err(|e| bad(format!("invalid parameter \"end\": {e}")))?;
        if end < start {
            return Err(bad("invalid parameter \"end\": end timestamp must not be before start time"));
        }
        let step = parse_duration_param(p.required("step")?)
            .map_err(|e| bad(format!("invalid parameter \"step\": {e}")))?;
        if step <= 0 {
            return Err(bad(
                "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if (end - start) / step > 11_000 {
            return Err(bad(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        let res = self.engine.range_query(self.store, q, start, end, step).map_err(eval_error)?;
        Ok(success_query(&res, q))
    }

    fn time_bounds(p: &Params) -> Result<(i64, i64), (ErrorType, String)> {
        let start = match p.get("start") {
            Some(s) => parse_time(s).map_err(|e| bad(format!("invalid parameter \"start\": {e}")))?,
            None => MIN_TIME_MS,
        };
        let end = match p.get("end") {
            Some(s) => parse_time(s).map_err(|e| bad(format!("invalid parameter \"end\": {e}")))?,
            None => MAX_TIME_MS,
        };
        if end < start {
            return Err(bad("invalid parameter \"end\": end timestamp must not be before start time"));
        }
        Ok((start, end))
    }

    fn series(&self, p: &Params) -> ApiResult {
        let sets = match_sets(p)?;
        if sets.is_empty() {
            return Err(bad("no match[] parameter provided"));
        }
        let (start, end) = Self::time_bounds(p)?;
        let limit = p.limit()?;
        let querier = self.store.querier(start, end).map_err(internal)?;
        let hints = model::SelectHints::range(start, end);
        let mut all: std::collections::BTreeSet<Labels> = std::collections::BTreeSet::new();
        for set in &sets {
            for s in querier.select(&hints, set).map_err(internal)? {
                all.insert(s.labels);
            }
        }
        let mut out = String::from("[");
        for (i, l) in all.iter().take(limit.unwrap_or(usize::MAX)).enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_labels(&mut out, l);
        }
        out.push(']');
        Ok(success(&out, &limit_warning(limit, all.len())))
    }

    fn labels(&self, p: &Params) -> ApiResult {
        let sets = match_sets(p)?;
        let (start, end) = Self::time_bounds(p)?;
        let limit = p.limit()?;
        let querier = self.store.querier(start, end).map_err(internal)?;
        let mut names = std::collections::BTreeSet::new();
        if sets.is_empty() {
            names.extend(querier.label_names(&[]).map_err(internal)?);
        } else {
            for set in &sets {
                names.extend(querier.label_names(set).map_err(internal)?);
            }
        }
        let n = names.len();
        Ok(success(&string_array(names.iter().take(limit.unwrap_or(usize::MAX))), &limit_warning(limit, n)))
    }

    fn label_values(&self, name: &str, p: &Params) -> ApiResult {
        if !model::is_valid_label_name(name) {
            return Err(bad(format!("invalid label name: {name:?}")));
        }
        let sets = match_sets(p)?;
        let (start, end) = Self::time_bounds(p)?;
        let limit = p.limit()?;
        let querier = self.store.querier(start, end).map_err(internal)?;
        let mut values = std::collections::BTreeSet::new();
        if sets.is_empty() {
            values.extend(querier.label_values(name, &[]).map_err(internal)?);
        } else {
            for set in &sets {
                values.extend(querier.label_values(name, set).map_err(internal)?);
            }
        }
        let n = values.len();
        Ok(success(&string_array(values.iter().take(limit.unwrap_or(usize::MAX))), &limit_warning(limit, n)))
    }

    fn metadata(&self, p: &Params) -> ApiResult {
        let limit = p.limit()?;
        let metric = p.get("metric").filter(|m| !m.is_empty());
        let mut by_name: BTreeMap<String, Vec<MetricMetadata>> = BTreeMap::new();
        for md in self.store.metadata().map_err(internal)? {
            if metric.is_some_and(|m| m != md.metric) {
                continue;
            }
            by_name.entry(md.metric.clone()).or_default().push(md);
        }
        let mut out = String::from("{");
        for (i, (name, mds)) in by_name.iter().take(limit.unwrap_or(usize::MAX)).enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_str(&mut out, name);
            out.push_str(":[");
            for (j, md) in mds.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str("{\"type\":");
                write_json_str(&mut out, &md.kind);
                out.push_str(",\"help\":");
                write_json_str(&mut out, &md.help);
                out.push_str(",\"unit\":");
                write_json_str(&mut out, &md.unit);
                out.push('}');
            }
            out.push(']');
        }
        out.push('}');
        Ok(success(&out, &[]))
    }

    fn buildinfo(&self) -> Vec<u8> {
        let b = &self.build;
        let mut out = String::from("{");
        for (i, (k, v)) in [
            ("version", &b.version),
            ("revision", &b.revision),
            ("branch", &b.branch),
            ("buildUser", &b.build_user),
            ("buildDate", &b.build_date),
            ("goVersion", &b.go_version),
        ]
        .iter()
        .enumerate()
        {
            if i > 0 {
                out.push(',');
            }
            write_json_str(&mut out, k);
            out.push(':');
            write_json_str(&mut out, v);
        }
        out.push('}');
        success(&out, &[])
    }
}

const JSON: &str = "application/json";

fn bad(msg: impl Into<String>) -> (ErrorType, String) {
    (ErrorType::BadData, msg.into())
}

fn internal(e: model::StorageError) -> (ErrorType, String) {
    (ErrorType::Internal, e.to_string())
}

fn eval_error(e: EvalError) -> (ErrorType, String) {
    let kind = match &e {
        EvalError::Parse(_) | EvalError::BadParams(_) => ErrorType::BadData,
        EvalError::Timeout(_) => ErrorType::Timeout,
        EvalError::Storage(_) => ErrorType::Internal,
        _ => ErrorType::Execution,
    };
    let msg = match &e {
        EvalError::Parse(p) => format!("invalid parameter \"query\": {p}"),
        other => other.to_string(),
    };
    (kind, msg)
}

fn error_response(kind: ErrorType, msg: &str) -> ApiResponse {
    let mut out = String::from("{\"status\":\"error\",\"errorType\":");
    write_json_str(&mut out, kind.name());
    out.push_str(",\"error\":");
    write_json_str(&mut out, msg);
    out.push('}');
    ApiResponse { status: kind.status(), content_type: JSON, body: out.into_bytes() }
}

fn success(data: &str, warnings: &[String]) -> Vec<u8> {
    let mut out = String::with_capacity(data.len() + 40);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    if !warnings.is_empty() {
        out.push_str(",\"warnings\":");
        out.push_str(&string_array(warnings.iter()));
    }
    out.push('}');
    out.into_bytes()
}

fn limit_warning(limit: Option<usize>, n: usize) -> Vec<String> {
    match limit {
        Some(l) if n > l => vec!["results truncated due to limit".to_string()],
        _ => Vec::new(),
    }
}

fn success_query(res: &QueryResult, query: &str) -> Vec<u8> {
    // Bytes: numbers are formatted into small buffers and copied in whole.
    let mut out: Vec<u8> = Vec::with_capacity(256);
    out.text("{\"status\":\"success\",\"data\":{\"resultType\":");
    match &res.value {
        Value::Scalar { t, value } => {
            out.text("\"scalar\",\"result\":");
            write_point(&mut out, *t, *value);
        }
        Value::String { t, value } => {
            out.text("\"string\",\"result\":[");
            write_ts(&mut out, *t);
            out.byte(b',');
            write_json_str(&mut out, value);
            out.byte(b']');
        }
        Value::Vector(v) => {
            out.text("\"vector\",\"result\":[");
            for (i, s) in v.iter().enumerate() {
                if i > 0 {
                    out.byte(b',');
                }
                out.text("{\"metric\":");
                write_labels(&mut out, &s.labels);
                out.text(",\"value\":");
                write_point(&mut out, s.t, s.value);
                out.byte(b'}');
            }
            out.byte(b']');
        }
        Value::Matrix(m) => {
            // Up to about 40 bytes per point (`[1700000000,"123.456"],`, 35
            // with a 17-digit value) and 100 per series' labels: one
            // allocation instead of doublings with copies for large
            // results (a little too much costs only untouched pages).
            let points: usize = m.iter().map(|s| s.points.len()).sum();
            out.reserve(points * 40 + m.len() * 100);
            out.text("\"matrix\",\"result\":[");
            let mut stamps = StampCache::new();
            for (i, s) in m.iter().enumerate() {
                if i > 0 {
                    out.byte(b',');
                }
                out.text("{\"metric\":");
                write_labels(&mut out, &s.labels);
                out.text(",\"values\":[");
                for (j, p) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.byte(b',');
                    }
                    stamps.write(&mut out, p.t);
                    write_value(&mut out, p.v);
                    out.byte(b'"');
                    out.byte(b']');
                }
                out.text("]}");
            }
            out.byte(b']');
        }
    }
    out.byte(b'}');
    let render = |kind| -> Vec<String> {
        res.annotations.iter().filter(|a| a.kind == kind).map(|a| a.render(query)).collect()
    };
    let warnings = render(AnnotationKind::Warning);
    if !warnings.is_empty() {
        out.text(",\"warnings\":");
        out.text(&string_array(warnings.iter()));
    }
    let infos = render(AnnotationKind::Info);
    if !infos.is_empty() {
        out.text(",\"infos\":");
        out.text(&string_array(infos.iter()));
    }
    out.byte(b'}');
    out
}

/// Where JSON goes: query results are written as bytes, other bodies and
/// [`format_value`] as strings.
trait Out {
    fn text(&mut self, s: &str);
    /// ASCII bytes only.
    fn ascii(&mut self, b: &[u8]);
    /// An ASCII byte.
    fn byte(&mut self, b: u8);
    /// The first `len` bytes of `buf`, ASCII.
    fn ascii32(&mut self, buf: &[u8; 32], len: usize) {
        self.ascii(&buf[..len.min(32)]);
    }
}

impl Out for String {
    fn text(&mut self, s: &str) {
        self.push_str(s);
    }

    fn ascii(&mut self, b: &[u8]) {
        self.extend(b.iter().map(|&c| char::from(c)));
    }

    fn byte(&mut self, b: u8) {
        self.push(char::from(b));
    }
}

impl Out for Vec<u8> {
    fn text(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }

    fn ascii(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }

    fn byte(&mut self, b: u8) {
        self.push(b);
    }

    /// A copy of constant length (two vector moves) and a truncation,
    /// cheaper than a variable-length copy for these few bytes.
    fn ascii32(&mut self, buf: &[u8; 32], len: usize) {
        let end = self.len() + len.min(32);
        self.extend_from_slice(buf);
        self.truncate(end);
    }
}

/// Writes `[<seconds>, "<value>"]` as Prometheus does.
fn write_point(out: &mut impl Out, t: i64, v: f64) {
    out.byte(b'[');
    write_ts(out, t);
    out.text(",\"");
    write_value(out, v);
    out.text("\"]");
}

/// The start of a point, `[<timestamp>,"`, for recent timestamps: every
/// series of a range query's result has points at the same steps, so each
/// step's start is formatted once rather than once per series (and goes
/// out in one copy). Direct-mapped by whole seconds modulo the size; a miss
/// formats and replaces.
struct StampCache {
    /// Per slot: the timestamp, and its text and length (0: empty).
    slots: Vec<(i64, [u8; 32], usize)>,
}

impl StampCache {
    const SLOTS: usize = 256;

    fn new() -> Self {
        // An empty string is never a formatted timestamp: every slot
        // starts as a miss.
        StampCache { slots: vec![(0, [0; 32], 0); Self::SLOTS] }
    }

    #[inline]
    fn write(&mut self, out: &mut impl Out, t: i64) {
        let slot = &mut self.slots[(t.unsigned_abs() / 1000) as usize % Self::SLOTS];
        if slot.0 != t || slot.2 == 0 {
            let mut text = Vec::with_capacity(32);
            text.push(b'[');
            write_ts(&mut text, t);
            text.extend_from_slice(b",\"");
            if text.len() > 32 {
                // Not a recent timestamp: written out each time.
                out.ascii(&text);
                return;
            }
            slot.1[..text.len()].copy_from_slice(&text);
            slot.2 = text.len();
            slot.0 = t;
        }
        out.ascii32(&slot.1, slot.2);
    }
}

/// Unix seconds with a three-digit millisecond fraction when it is not
/// zero (`1435781451.781`, `1.500`, `20`), exactly as Prometheus's JSON
/// encoder writes timestamps.
fn write_ts(out: &mut impl Out, t: i64) {
    let abs = t.unsigned_abs();
    if t < 0 {
        out.byte(b'-');
    }
    write_u64(out, abs / 1000);
    let frac = abs % 1000;
    if frac != 0 {
        // frac < 1000: three digits, each < 10.
        let digit = |d: u64| b'0' + (d % 10) as u8;
        out.ascii(&[b'.', digit(frac / 100), digit(frac / 10), digit(frac)]);
    }
}

/// Decimal digits of `v` (timestamps and integral values are most of a
/// response).
fn write_u64(out: &mut impl Out, v: u64) {
    out.text(itoa::Buffer::new().format(v));
}

/// Formats a value as Go's `strconv.FormatFloat(v, 'f', -1, 64)`:
/// shortest round-trip digits, no exponent; `NaN`, `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    let mut s = String::new();
    write_value(&mut s, v);
    s
}

fn write_value(out: &mut impl Out, v: f64) {
    if v.is_nan() {
        out.text("NaN");
    } else if v == f64::INFINITY {
        out.text("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.text("-Inf");
    } else if v.abs() < 1e15 && (v as i64) as f64 == v && !(v == 0.0 && v.is_sign_negative()) {
        // An integer below 2^53 prints as its digits either way (the cast
        // truncates exactly in this range: no call to `fract`).
        if v < 0.0 {
            out.byte(b'-');
        }
        write_u64(out, v.abs() as u64);
    } else if !write_short_decimal(out, v) {
        // Shortest round-trip digits, as Go's 'f' with precision -1. Żmij
        // writes them fast, but switches to an exponent for very large or
        // small magnitudes; Rust's Display never does, with the same digits.
        let mut b = zmij::Buffer::new();
        let s = b.format_finite(v);
        // Żmij writes plain digits for decimal exponents -5 to 15: only
        // values outside that range need the check.
        let plain = (1e-4..1e15).contains(&v.abs());
        if !plain && s.bytes().any(|b| b == b'e') {
            out.text(&v.to_string());
        } else {
            // Żmij marks integral values with ".0" (-0.0 included).
            out.text(s.strip_suffix(".0").unwrap_or(s));
        }
    }
}

/// Writes a non-integer `v` with at most four decimals (most gauges:
/// `12.34`, `0.5`) from its digits as an integer, when that is what the
/// shortest round-trip form is; false, with nothing written, otherwise
/// (arbitrary values such as rates fail the first checks).
///
/// If some decimal with at most four places reads back as `v`, it is
/// `m / 10^4` for the integer `m` nearest to `v * 10^4` (below 2^51 the
/// scaled product is within a third of a unit of it), and reading that
/// decimal back is the correctly rounded quotient `m / 10^4`: one division
/// checks it. Such a decimal is the shortest form: a shorter one would have
/// fewer places, so it would be the same number with trailing zeros
/// stripped. Below 2^51 no two decimals with the same places read back as
/// `v`, so there is no tie to break.
fn write_short_decimal(out: &mut impl Out, v: f64) -> bool {
    let a = v.abs();
    let x = a * 1e4;
    // (NaN fails too.)
    if x.is_nan() || x >= (1u64 << 51) as f64 {
        return false;
    }
    // Signed conversions (x < 2^51): without AVX-512 the unsigned ones take
    // several instructions.
    let m = (x + 0.5) as i64;
    let mf = m as f64;
    if (mf - x).abs() > x * 1e-15 || mf / 1e4 != a {
        return false;
    }
    let (int, frac) = ((m / 10_000) as u64, (m % 10_000) as usize);
    if frac == 0 {
        // An integer (or zero): `write_value` writes those.
        return false;
    }
    // Sign and integer part, then the four decimals without trailing
    // zeros, assembled here and copied in once.
    let mut buf = [0u8; 32];
    let mut len = 0;
    if v < 0.0 {
        buf[0] = b'-';
        len = 1;
    }
    let mut digits = itoa::Buffer::new();
    let int = digits.format(int).as_bytes();
    buf[len..len + int.len()].copy_from_slice(int);
    len += int.len();
    let (hi, lo) = (frac / 100, frac % 100);
    buf[len..len + 5].copy_from_slice(&[b'.', PAIRS[2 * hi], PAIRS[2 * hi + 1], PAIRS[2 * lo], PAIRS[2 * lo + 1]]);
    // Trailing zeros of the decimals (frac is not 0).
    len += match (hi, lo) {
        (_, 0) if hi % 10 == 0 => 2,
        (_, 0) => 3,
        _ if lo % 10 == 0 => 4,
        _ => 5,
    };
    out.ascii32(&buf, len);
    true
}

/// `00` to `99`.
const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

fn write_labels(out: &mut impl Out, l: &Labels) {
    out.byte(b'{');
    for (i, label) in l.iter().enumerate() {
        if i > 0 {
            out.byte(b',');
        }
        write_json_str(out, &label.name);
        out.byte(b':');
        write_json_str(out, &label.value);
    }
    out.byte(b'}');
}

fn string_array<'s>(items: impl Iterator<Item = &'s String>) -> String {
    let mut out = String::from("[");
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(&mut out, s);
    }
    out.push(']');
    out
}

fn write_json_str(out: &mut impl Out, s: &str) {
    out.byte(b'"');
    // Runs of characters that need no escape go out in one copy.
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            // Go's encoder escapes these for HTML safety; clients accept both.
            '<' => "\\u003c",
            '>' => "\\u003e",
            '&' => "\\u0026",
            '\u{2028}' => "\\u2028",
            '\u{2029}' => "\\u2029",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.text(&s[start..i]);
        if escaped.is_empty() {
            out.text(&format!("\\u{:04x}", c as u32));
        } else {
            out.text(escaped);
        }
        start = i + c.len_utf8();
    }
    out.text(&s[start..]);
    out.byte(b'"');
}

fn format_query(p: &Params) -> ApiResult {
    let q = p.required("query")?;
    let expr = crate::parse(q).map_err(|e| bad(format!("invalid parameter \"query\": {e}")))?;
    let mut s = String::new();
    write_json_str(&mut s, &crate::print(&expr));
    Ok(success(&s, &[]))
}

struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, k: &str) -> Option<&str> {
        // Prometheus reads single-valued parameters with Go's FormValue,
        // which takes the first occurrence.
        self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }

    fn all<'s>(&'s self, k: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.0.iter().filter(move |(key, _)| key == k).map(|(_, v)| v.as_str())
    }

    fn required(&self, k: &str) -> Result<&str, (ErrorType, String)> {
        match self.get(k) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(bad(format!("invalid parameter \"{k}\": parameter is missing"))),
        }
    }

    fn limit(&self) -> Result<Option<usize>, (ErrorType, String)> {
        match self.get("limit") {
            None | Some("") | Some("0") => Ok(None),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n > 0 => Ok(Some(n as usize)),
                Ok(_) => Ok(None),
                Err(_) => Err(bad(format!("invalid parameter \"limit\": cannot parse {s:?} to a valid limit"))),
            },
        }
    }
}

fn match_sets(p: &Params) -> Result<Vec<Vec<Matcher>>, (ErrorType, String)> {
    let mut out = Vec::new();
    for m in p.all("match[]") {
        let sel = crate::parser::parse_selector(m)
            .map_err(|e| bad(format!("invalid parameter \"match[]\": {e}")))?;
        if sel.matchers.iter().all(|m| m.matches_empty()) {
            return Err(bad(
                "invalid parameter \"match[]\": match[] must contain at least one non-empty matcher",
            ));
        }
        out.push(sel.matchers);
    }
    Ok(out)
}

/// Parses a time parameter: Unix seconds (fractions allowed) or RFC 3339.
/// Returns milliseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        let ms = (f * 1000.0).round();
        if ms < MIN_TIME_MS as f64 || ms > MAX_TIME_MS as f64 {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        return Ok(ms as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

/// Parses a duration parameter: seconds (fractions allowed) or a PromQL
/// duration (`15s`, `1m30s`). Returns milliseconds.
pub fn parse_duration_param(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms.abs() > i64::MAX as f64 {
            return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"));
        }
        return Ok(ms.round() as i64);
    }
    crate::lexer::parse_duration(s).ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// Decodes `application/x-www-form-urlencoded` pairs (also query strings).
pub fn parse_form(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(b: &[u8]) -> String {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_decode(s: &str) -> String {
    // Path segments use %XX but keep '+' literal.
    form_decode(s.replace('+', "%2B").as_bytes())
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::mem::MemStore;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The point-start cache writes `[`, what `write_ts` writes, and
        /// `,"`, across hits, misses and slot collisions.
        #[test]
        fn stamp_cache_matches_write_ts(ts in proptest::collection::vec(prop_oneof![any::<i64>(), (0i64..600).prop_map(|i| 1_700_000_000_000 + i * 15_000 + i % 3), Just(i64::MIN), Just(i64::MAX)], 0..300)) {
            let mut cache = StampCache::new();
            for t in ts {
                let (mut got, mut want) = (String::new(), String::new());
                cache.write(&mut got, t);
                want.push('[');
                write_ts(&mut want, t);
                want.push_str(",\"");
                prop_assert_eq!(got, want);
            }
        }

        /// The hand-written digit paths agree with `Display` — the same
        /// shortest round-trip digits without exponent — except that on an
        /// exact tie between two shortest candidates Go (and so Prometheus)
        /// rounds half to even where `Display` rounds half up: then only the
        /// last digit may differ (see `number_formatting_matches_prometheus`).
        #[test]
        fn fast_number_formatting_matches_display(
            v in prop_oneof![any::<f64>(), (-2_000_000_000_000_000i64..2_000_000_000_000_000).prop_map(|i| i as f64), Just(-0.0), Just(0.0), Just(1e15), Just(-999_999_999_999_999.0), (-1_000_000_000i64..1_000_000_000).prop_map(|i| i as f64 / 1000.0), (1u32..400).prop_map(|e| 0.000_123 / 10f64.powi(e as i32 % 30))],
            t in prop_oneof![any::<i64>().prop_map(|t| t / 2), -5_000i64..5_000],
        ) {
            let mut got = String::new();
            write_value(&mut got, v);
            let want = if v.is_nan() { "NaN".to_string() } else if v.is_infinite() { if v > 0.0 { "+Inf".into() } else { "-Inf".into() } } else { format!("{v}") };
            if got != want {
                // Only a tie: same length, same digits but the last, and
                // both read back as `v`.
                prop_assert!(v.is_finite());
                prop_assert_eq!(got.len(), want.len(), "{} vs {}", got, want);
                prop_assert_eq!(&got[..got.len() - 1], &want[..want.len() - 1]);
                prop_assert_eq!(got.parse::<f64>().ok(), Some(v));
                prop_assert_eq!(want.parse::<f64>().ok(), Some(v));
            }
            let mut got = String::new();
            write_ts(&mut got, t);
            let abs = t.unsigned_abs();
            let mut want = format!("{}{}", if t < 0 { "-" } else { "" }, abs / 1000);
            if abs % 1000 != 0 {
                want.push_str(&format!(".{:03}", abs % 1000));
            }
            prop_assert_eq!(got, want);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// The short-decimal path writes exactly what the general path
        /// (Żmij) writes, whenever it takes a value.
        #[test]
        fn short_decimals_match_the_general_path(
            v in prop_oneof![
                (-10_000_000_000_000i64..10_000_000_000_000, 0u32..7).prop_map(|(m, d)| m as f64 / 10f64.powi(d as i32)),
                (-100_000i64..100_000, 0u32..9).prop_map(|(m, d)| m as f64 / 10f64.powi(d as i32)),
                any::<f64>(),
                (0u64..1 << 20).prop_map(|i| f64::from_bits(0x4320_0000_0000_0000 - i)),
                (0u64..1 << 20).prop_map(|i| f64::from_bits(0x3f1a_36e2_eb1c_432d + i)),
            ]
        ) {
            let mut fast = String::new();
            if write_short_decimal(&mut fast, v) {
                let mut b = zmij::Buffer::new();
                let general = b.format_finite(v);
                prop_assert_eq!(&fast, general.strip_suffix(".0").unwrap_or(general), "{:?}", v);
                prop_assert_eq!(fast.parse::<f64>().ok(), Some(v));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]
        /// JSON strings read back as what was written, the same as text and
        /// as bytes, with Go's HTML-safe escapes and no raw control
        /// characters.
        #[test]
        fn json_strings_round_trip(v in prop_oneof![any::<String>(), "[a-z<>&\"\\\n\t\u{1}\u{2028}\u{2029}é€😀]{0,20}"]) {
            let (mut text, mut bytes) = (String::new(), Vec::new());
            write_json_str(&mut text, &v);
            write_json_str(&mut bytes, &v);
            prop_assert_eq!(text.as_bytes(), &bytes[..]);
            prop_assert_eq!(serde_json::from_str::<String>(&text).ok(), Some(v));
            let raw = text.chars().any(|c| matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') || (c as u32) < 0x20);
            prop_assert!(!raw, "unescaped character in {}", text);
        }
    }

    #[test]
    fn short_decimals_take_gauges_and_leave_the_rest() {
        for (v, want) in [
            (12.34, Some("12.34")),
            (-0.5, Some("-0.5")),
            (0.0001, Some("0.0001")),
            (-3.05, Some("-3.05")),
            (1234567.8912, Some("1234567.8912")),
            (0.1 + 0.2, None),
            (0.00001, None),
            (1.0 / 3.0, None),
            (-0.0, None),
            (0.0, None),
            (2.5e15, None),
            (100.0, None),
            (-7.0, None),
            (f64::NAN, None),
        ] {
            let mut got = String::new();
            let took = write_short_decimal(&mut got, v);
            assert_eq!(took.then_some(got.as_str()), want, "{v}");
        }
    }

    /// Values whose formatting was checked against Prometheus 2.42's
    /// `/api/v1/query` (ties between shortest candidates round half to
    /// even, as Go's `strconv.FormatFloat(v, 'f', -1, 64)` does).
    #[test]
    // The literals are exact binary values (ties between two shortest
    // decimals), written out in full on purpose.
    #[allow(clippy::excessive_precision)]
    fn number_formatting_matches_prometheus() {
        for (v, want) in [
            (-1144034260489862.25, "-1144034260489862.2"),
            (1144034260489862.75, "1144034260489862.8"),
            (562949953421312.25, "562949953421312.2"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1000000000000000000000"),
            (123456789012345678.0, "123456789012345680"),
        ] {
            let mut got = String::new();
            write_value(&mut got, v);
            assert_eq!(got, want);
        }
    }

    fn store() -> MemStore {
        let s = MemStore::new();
        for (inst, v) in [("a", 1.0), ("b", 2.5)] {
            let l = Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", inst)]);
            for i in 0..10 {
                s.append(&l, i * 15_000, v);
            }
        }
        s.set_metadata(MetricMetadata {
            metric: "up".into(),
            kind: "gauge".into(),
            help: "Whether the target is up.".into(),
            unit: String::new(),
        });
        s
    }

    fn call(path: &str, query: &str) -> (u16, serde_json::Value) {
        let s = store();
        let e = Engine::default();
        let api = PromApi::new(&e, &s);
        let r = api.handle(&ApiRequest::get(path, query), 60_000);
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("valid JSON");
        (r.status, body)
    }

    #[test]
    fn instant_query_shapes() {
        let (st, b) = call("/api/v1/query", "query=sum(up)&time=30.5");
        assert_eq!(st, 200);
        assert_eq!(b["data"]["resultType"], "vector");
        assert_eq!(b["data"]["result"][0]["value"][1], "3.5");
        assert_eq!(b["data"]["result"][0]["value"][0], 30.5);
        let (_, b) = call("/api/v1/query", "query=1%2B1");
        assert_eq!(b["data"]["resultType"], "scalar");
        assert_eq!(b["data"]["result"], serde_json::json!([60, "2"]));
        let (_, b) = call("/api/v1/query", "query=%22hi%22&time=1");
        assert_eq!(b["data"]["result"], serde_json::json!([1, "hi"]));
    }

    #[test]
    fn range_query_matrix() {
        let (st, b) = call("/api/v1/query_range", "query=up&start=0&end=60&step=15s");
        assert_eq!(st, 200, "{b}");
        assert_eq!(b["data"]["resultType"], "matrix");
        assert_eq!(b["data"]["result"].as_array().map(Vec::len), Some(2));
        assert_eq!(b["data"]["result"][1]["values"][4], serde_json::json!([60, "2.5"]));
    }

    #[test]
    fn errors_match_prometheus() {
        let (st, b) = call("/api/v1/query", "query=sum(");
        assert_eq!(st, 400);
        assert_eq!(b["status"], "error");
        assert_eq!(b["errorType"], "bad_data");
        let (st, b) = call("/api/v1/query", "");
        assert_eq!(st, 400);
        assert_eq!(b["error"], "invalid parameter \"query\": parameter is missing");
        let (st, _) = call("/api/v1/query_range", "query=up&start=10&end=0&step=1");
        assert_eq!(st, 400);
        let (st, _) = call("/api/v1/query_range", "query=up&start=0&end=10&step=0");
        assert_eq!(st, 400);
        let (st, _) = call("/api/v1/query", "query=up&time=yesterday");
        assert_eq!(st, 400);
        let (st, b) = call("/api/v1/nope", "");
        assert_eq!(st, 404);
        assert_eq!(b["errorType"], "not_found");
        let (st, _) = call("/api/v1/series", "");
        assert_eq!(st, 400);
        let (st, _) = call("/api/v1/series", "match[]=%7Bjob%3D%22%22%7D");
        assert_eq!(st, 400);
    }

    #[test]
    fn metadata_endpoints() {
        let (_, b) = call("/api/v1/labels", "");
        assert_eq!(b["data"], serde_json::json!(["__name__", "instance", "job"]));
        let (_, b) = call("/api/v1/label/instance/values", "");
        assert_eq!(b["data"], serde_json::json!(["a", "b"]));
        let (_, b) = call("/api/v1/label/instance/values", "limit=1");
        assert_eq!(b["data"], serde_json::json!(["a"]));
        assert_eq!(b["warnings"][0], "results truncated due to limit");
        let (_, b) = call("/api/v1/series", "match[]=up%7Binstance%3D%22b%22%7D&start=0&end=100");
        assert_eq!(
            b["data"],
            serde_json::json!([{"__name__": "up", "instance": "b", "job": "node"}])
        );
        let (_, b) = call("/api/v1/metadata", "");
        assert_eq!(b["data"]["up"][0]["type"], "gauge");
        let (_, b) = call("/api/v1/status/buildinfo", "");
        assert!(b["data"]["version"].is_string());
    }

    #[test]
    fn post_form_params() {
        let s = store();
        let e = Engine::default();
        let api = PromApi::new(&e, &s);
        let r = api.handle(&ApiRequest::post_form("/api/v1/query", b"query=count(up)&time=60"), 0);
        let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["data"]["result"][0]["value"], serde_json::json!([60, "2"]));
    }

    #[test]
    fn formatting_helpers() {
        let mut s = String::new();
        write_ts(&mut s, 1_435_781_451_781);
        assert_eq!(s, "1435781451.781");
        s.clear();
        write_ts(&mut s, 1500);
        assert_eq!(s, "1.500");
        s.clear();
        write_ts(&mut s, -1500);
        assert_eq!(s, "-1.500");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_duration_param("1m30s").unwrap(), 90_000);
        assert_eq!(parse_duration_param("0.5").unwrap(), 500);
        assert_eq!(parse_form(b"a=1+2&b=%2F%zz&c"), vec![
            ("a".to_string(), "1 2".to_string()),
            ("b".to_string(), "/%zz".to_string()),
            ("c".to_string(), String::new()),
        ]);
    }
}
