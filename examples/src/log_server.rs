//! The log server: a log store behind Loki's HTTP API. The binary
//! `log-server` only parses flags and calls this.
//!
//! Endpoints (same JSON shapes, status codes and plain-text error bodies as
//! Loki, so Grafana's Loki data source and Loki clients work):
//!
//! | path | |
//! |---|---|
//! | `POST /loki/api/v1/push` (and legacy `/api/prom/push`) | JSON or snappy protobuf ([`push`]), `Content-Encoding: gzip`/`deflate`; 204, or 400 listing the rejected entries (the accepted ones are kept) |
//! | `/loki/api/v1/query`, `query_range`, `labels`, `label/<name>/values`, `series` | [`logql::http_api`]; GET, or POST with a form body |
//! | `/loki/api/v1/index/stats` | `{"streams","chunks","bytes","entries"}` for a selector and range |
//! | `/loki/api/v1/tail` | websocket ([`tail`]) |
//! | `/ready`, `/loki/api/v1/status/buildinfo`, `/metrics` | |
//!
//! Pushes are validated as Loki's distributor does ([`Limits`]: labels
//! present and valid, line size, too old, too new) before the store sees
//! them; the store reports its own rejections (out of order, ...) and
//! duplicates (same stream, timestamp and line), which are dropped silently
//! as in Loki.
//!
//! ```
//! use examples::http::Request;
//! use examples::log_server::{LogServer, Limits, MemSink};
//! use std::sync::Arc;
//! let srv = LogServer::new(Arc::new(MemSink::new()), Limits::default());
//! let now = 1_700_000_000_000_000_000;
//! let ts = now - 1_000_000_000;
//! let push = Request {
//!     method: "POST".into(),
//!     path: "/loki/api/v1/push".into(),
//!     query: String::new(),
//!     headers: vec![("content-type".into(), "application/json".into())],
//!     body: format!(r#"{{"streams":[{{"stream":{{"job":"a"}},"values":[["{ts}","hello"]]}}]}}"#).into_bytes(),
//! };
//! assert_eq!(srv.handle(&push, now).status, 204);
//! let q = Request { method: "GET".into(), path: "/loki/api/v1/query_range".into(),
//!     query: "query=%7Bjob%3D%22a%22%7D".into(), headers: vec![], body: vec![] };
//! let r = srv.handle(&q, now);
//! assert!(String::from_utf8(r.body).unwrap().contains("hello"));
//! ```

pub mod push;
pub mod tail;

use crate::http::{decode_content_encoding, Request, Response, ServerConfig, Upgrade};
use logql::EngineOptions;
use model::mem::MemLogStore;
use model::{Direction, Labels, LogEntry, LogQuerier, LogQueryable, StorageError};
use push::PushStream;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// What a store did with a push.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkOutcome {
    /// Entries stored.
    pub accepted: usize,
    /// Entries identical to a stored one (same stream, timestamp, line):
    /// dropped silently, as Loki does.
    pub duplicates: usize,
    /// Entries refused, with the reason.
    pub rejected: Vec<SinkRejection>,
}

/// One refused entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkRejection {
    /// Its stream.
    pub labels: Labels,
    /// Its timestamp (ns).
    pub ts: i64,
    /// Why (Loki's wording where there is one).
    pub reason: String,
}

/// A log store the server can write to and query.
pub trait LogSink: LogQueryable {
    /// Stores entries; per-entry refusals go into the outcome, a failure of
    /// the whole write (I/O) is an `Err`.
    fn push(&self, streams: &[(Labels, Vec<LogEntry>)]) -> Result<SinkOutcome, String>;

    /// Chunks holding entries of streams matching `matchers` in
    /// `[start, end]`, when the store has chunks (for `index/stats`).
    fn chunk_count(&self, _matchers: &[model::Matcher], _start: i64, _end: i64) -> Option<u64> {
        None
    }
}

/// An in-memory store ([`MemLogStore`]) that drops duplicate entries like
/// Loki. Nothing survives a restart.
#[derive(Debug, Default)]
pub struct MemSink {
    store: MemLogStore,
    seen: Mutex<HashSet<(u64, i64, u64)>>,
}

impl MemSink {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl LogQueryable for MemSink {
    fn log_querier(&self) -> Result<Box<dyn LogQuerier + '_>, StorageError> {
        self.store.log_querier()
    }
}

impl LogSink for MemSink {
    fn push(&self, streams: &[(Labels, Vec<LogEntry>)]) -> Result<SinkOutcome, String> {
        let mut out = SinkOutcome::default();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        for (labels, entries) in streams {
            let lh = labels.stable_hash();
            for e in entries {
                let mut h = DefaultHasher::new();
                e.line.hash(&mut h);
                if seen.insert((lh, e.ts, h.finish())) {
                    self.store.push(labels, e.clone());
                    out.accepted += 1;
                } else {
                    out.duplicates += 1;
                }
            }
        }
        Ok(out)
    }
}

/// The on-disk store ([`logstore::Store`]).
pub struct LogstoreSink {
    store: logstore::Store,
}

impl LogstoreSink {
    /// Wraps an open store.
    pub fn new(store: logstore::Store) -> Self {
        LogstoreSink { store }
    }

    /// The store (for stats, flush and retention).
    pub fn store(&self) -> &logstore::Store {
        &self.store
    }
}

impl LogQueryable for LogstoreSink {
    fn log_querier(&self) -> Result<Box<dyn LogQuerier + '_>, StorageError> {
        self.store.log_querier()
    }
}

/// Streams with their entries, as stores take them.
type StreamBatch = Vec<(Labels, Vec<LogEntry>)>;

/// Most stored entries looked at per stream and push when checking for
/// duplicates outside the store's head.
const MAX_DUP_SCAN: usize = 100_000;

impl LogstoreSink {
    /// Drops entries identical (timestamp and line) to ones already stored
    /// in the same stream. The store itself only checks its head blocks;
    /// this makes a replayed push (an agent restarting after a crash)
    /// idempotent after a flush too, as Loki's query-time deduplication
    /// does. Bounded: gives up (keeps everything) past [`MAX_DUP_SCAN`].
    fn drop_stored_duplicates(&self, streams: &[(Labels, Vec<LogEntry>)]) -> Result<(StreamBatch, usize), String> {
        let q = self.store.log_querier().map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(streams.len());
        let mut dropped = 0;
        for (labels, entries) in streams {
            let (Some(lo), Some(hi)) = (entries.iter().map(|e| e.ts).min(), entries.iter().map(|e| e.ts).max()) else {
                continue;
            };
            let matchers: Vec<model::Matcher> = labels.iter().map(|l| model::Matcher::equal(l.name.clone(), l.value.clone())).collect();
            let mut seen: HashSet<(i64, u64)> = HashSet::new();
            let mut scanned = 0;
            for mut st in q.select(&matchers, lo, hi, Direction::Forward).map_err(|e| e.to_string())? {
                if st.labels != *labels {
                    continue;
                }
                while let Some(e) = st.entries.next().map_err(|e| e.to_string())? {
                    scanned += 1;
                    if scanned > MAX_DUP_SCAN {
                        seen.clear();
                        break;
                    }
                    seen.insert((e.ts, line_hash(e.line)));
                }
            }
            if seen.is_empty() {
                out.push((labels.clone(), entries.clone()));
                continue;
            }
            let keep: Vec<LogEntry> = entries.iter().filter(|e| !seen.contains(&(e.ts, line_hash(&e.line)))).cloned().collect();
            dropped += entries.len() - keep.len();
            if !keep.is_empty() {
                out.push((labels.clone(), keep));
            }
        }
        Ok((out, dropped))
    }
}

fn line_hash(line: &str) -> u64 {
    let mut h = DefaultHasher::new();
    line.hash(&mut h);
    h.finish()
}

impl LogSink for LogstoreSink {
    fn push(&self, streams: &[(Labels, Vec<LogEntry>)]) -> Result<SinkOutcome, String> {
        let (streams, stored_dups) = self.drop_stored_duplicates(streams)?;
        let out = self.store.push(&streams).map_err(|e| e.to_string())?;
        Ok(SinkOutcome {
            accepted: out.accepted,
            duplicates: out.duplicates + stored_dups,
            rejected: out
                .rejected
                .into_iter()
                .map(|r| SinkRejection { reason: r.reason.to_string(), labels: r.labels, ts: r.ts })
                .collect(),
        })
    }
}

/// Ingestion limits, Loki's distributor defaults.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest line in bytes (`max_line_size`, 256 KiB); 0 = no limit.
    pub max_line_size: usize,
    /// Oldest accepted entry relative to now (`reject_old_samples_max_age`,
    /// 168h), in ns; `None` accepts any age.
    pub reject_old_samples_max_age: Option<i64>,
    /// How far in the future an entry may be (`creation_grace_period`,
    /// 10m), in ns.
    pub creation_grace_period: i64,
    /// Most labels per stream (`max_label_names_per_series`, 15).
    pub max_label_names_per_series: usize,
    /// Largest decoded push body in bytes.
    pub max_decoded_body: usize,
    /// Concurrent tails (`max_concurrent_tail_requests`, 10).
    pub max_tails: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_size: 256 << 10,
            reject_old_samples_max_age: Some(168 * 3_600_000_000_000),
            creation_grace_period: 600_000_000_000,
            max_label_names_per_series: 15,
            max_decoded_body: 64 << 20,
            max_tails: 10,
        }
    }
}

/// Formats ns like Go's `time.Time` `String()` in UTC, as Loki's messages do.
pub fn go_time(ns: i64) -> String {
    match chrono::DateTime::from_timestamp(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32) {
        Some(t) => {
            let frac = t.format("%.9f").to_string();
            let frac = frac.trim_end_matches('0').trim_end_matches('.');
            format!("{}{} +0000 UTC", t.format("%Y-%m-%d %H:%M:%S"), frac)
        }
        None => format!("{ns}ns"),
    }
}

/// Server counters (exposed at `/metrics`).
#[derive(Debug, Default)]
struct Counters {
    push_requests: AtomicU64,
    lines_received: AtomicU64,
    bytes_received: AtomicU64,
    lines_discarded: AtomicU64,
    duplicates: AtomicU64,
}

/// The Loki API over a [`LogSink`].
pub struct LogServer {
    sink: Arc<dyn LogSink>,
    limits: Limits,
    engine: EngineOptions,
    tailers: tail::Tailers,
    counters: Counters,
}

impl LogServer {
    /// A server over `sink` with `limits`.
    pub fn new(sink: Arc<dyn LogSink>, limits: Limits) -> Arc<Self> {
        let tailers = tail::Tailers::new(limits.max_tails);
        Arc::new(LogServer { sink, limits, engine: EngineOptions::default(), tailers, counters: Counters::default() })
    }

    /// The store.
    pub fn sink(&self) -> &Arc<dyn LogSink> {
        &self.sink
    }

    /// Handles every endpoint except the tail websocket (which needs the
    /// connection: see [`serve`]). `now` is in ns.
    pub fn handle(&self, req: &Request, now: i64) -> Response {
        let path = req.path.trim_end_matches('/');
        match path {
            "/loki/api/v1/push" | "/api/prom/push" => {
                if req.method != "POST" {
                    return Response::text(405, "method not allowed\n");
                }
                self.push(req, now)
            }
            "/ready" => Response::text(200, "ready\n"),
            "/loki/api/v1/status/buildinfo" => Response::json(
                200,
                serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "revision": "",
                    "branch": "",
                    "buildUser": "",
                    "buildDate": "",
                    "goVersion": "",
                })
                .to_string(),
            ),
            "/metrics" => Response::new(200, "text/plain; version=0.0.4; charset=utf-8", self.metrics_text()),
            "/loki/api/v1/tail" => Response::text(400, "websocket: the client is not using the websocket protocol: 'upgrade' token not found in 'Connection' header\n"),
            "/loki/api/v1/index/stats" => match self.index_stats(&query_params(req), now) {
                Ok(v) => Response::json(200, v.to_string()),
                Err(r) => r,
            },
            p if p.starts_with("/loki/api/v1/") => {
                let qs = query_params(req);
                let r = logql::http_api::handle(self.sink.as_ref(), &self.engine, p, &qs, now);
                Response::new(r.status, r.content_type, r.body)
            }
            _ => Response::text(404, "404 page not found\n"),
        }
    }

    /// Handles a push request.
    pub fn push(&self, req: &Request, now: i64) -> Response {
        self.counters.push_requests.fetch_add(1, Ordering::Relaxed);
        let body = match decode_content_encoding(req, self.limits.max_decoded_body) {
            Ok(b) => b,
            Err(e) => return Response::text(400, format!("{e}\n")),
        };
        let streams = match push::decode_push(req.header("content-type"), &body, self.limits.max_decoded_body) {
            Ok(s) => s,
            Err(e) => return Response::text(400, format!("{e}\n")),
        };
        self.ingest(streams, now)
    }

    /// Validates and stores decoded streams; 204, or 400 with Loki's
    /// messages for what was refused.
    pub fn ingest(&self, streams: Vec<PushStream>, now: i64) -> Response {
        let mut errors: Vec<String> = Vec::new();
        let mut batch: Vec<(Labels, Vec<LogEntry>)> = Vec::with_capacity(streams.len());
        let mut total = 0usize;
        let mut discarded = 0usize;
        let lim = &self.limits;
        for s in streams {
            total += s.entries.len();
            let labels = s.labels.without_empty();
            let text = push::labels_text(&labels);
            self.counters.lines_received.fetch_add(s.entries.len() as u64, Ordering::Relaxed);
            self.counters.bytes_received.fetch_add(s.entries.iter().map(|e| e.line.len() as u64).sum(), Ordering::Relaxed);
            if labels.is_empty() {
                errors.push("error at least one label pair is required per stream".into());
                discarded += s.entries.len();
                continue;
            }
            if let Some(bad) = labels.iter().find(|l| !model::is_valid_label_name(&l.name)) {
                errors.push(format!("error parsing labels '{text}' with error: invalid label name {:?}", bad.name));
                discarded += s.entries.len();
                continue;
            }
            if labels.len() > lim.max_label_names_per_series {
                errors.push(format!(
                    "entry for stream '{text}' has {} label names; limit {}",
                    labels.len(),
                    lim.max_label_names_per_series
                ));
                discarded += s.entries.len();
                continue;
            }
            let mut keep = Vec::with_capacity(s.entries.len());
            for e in s.entries {
                if lim.max_line_size > 0 && e.line.len() > lim.max_line_size {
                    errors.push(format!(
                        "max entry size '{}' bytes exceeded for stream '{text}' while adding an entry with length '{}' bytes",
                        lim.max_line_size,
                        e.line.len()
                    ));
                } else if lim.reject_old_samples_max_age.is_some_and(|age| e.ts < now.saturating_sub(age)) {
                    let oldest = now.saturating_sub(lim.reject_old_samples_max_age.unwrap_or(0));
                    errors.push(format!(
                        "entry for stream '{text}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                        go_time(e.ts),
                        go_time(oldest)
                    ));
                } else if e.ts > now.saturating_add(lim.creation_grace_period) {
                    errors.push(format!("entry for stream '{text}' has timestamp too new: {}", go_time(e.ts)));
                } else {
                    keep.push(e);
                    continue;
                }
                discarded += 1;
            }
            if !keep.is_empty() {
                batch.push((labels, keep));
            }
        }
        if !batch.is_empty() {
            match self.sink.push(&batch) {
                Ok(out) => {
                    self.counters.duplicates.fetch_add(out.duplicates as u64, Ordering::Relaxed);
                    discarded += out.rejected.len();
                    if !self.tailers.is_empty() {
                        let refused: HashSet<(&Labels, i64)> = out.rejected.iter().map(|r| (&r.labels, r.ts)).collect();
                        let live: Vec<PushStream> = batch
                            .iter()
                            .map(|(l, es)| PushStream {
                                labels: l.clone(),
                                entries: es.iter().filter(|e| !refused.contains(&(l, e.ts))).cloned().collect(),
                            })
                            .collect();
                        self.tailers.publish(Arc::new(live));
                    }
                    for r in &out.rejected {
                        errors.push(format!(
                            "entry with timestamp {} ignored, reason: '{}' for stream: {},",
                            go_time(r.ts),
                            r.reason,
                            push::labels_text(&r.labels)
                        ));
                    }
                }
                Err(e) => return Response::text(500, format!("{e}\n")),
            }
        }
        self.counters.lines_discarded.fetch_add(discarded as u64, Ordering::Relaxed);
        if errors.is_empty() {
            return Response::new(204, "text/plain", Vec::new());
        }
        const SHOWN: usize = 20;
        let more = errors.len().saturating_sub(SHOWN);
        errors.truncate(SHOWN);
        let mut msg = errors.join("\n");
        if more > 0 {
            msg.push_str(&format!("\n... and {more} more"));
        }
        msg.push_str(&format!("\ntotal ignored: {discarded} out of {total}\n"));
        Response::text(400, msg)
    }

    /// `GET /loki/api/v1/index/stats?query={...}&start=&end=`.
    fn index_stats(&self, qs: &str, now: i64) -> Result<serde_json::Value, Response> {
        let params = logql::http_api::parse_query_string(qs);
        let get = |n: &str| params.iter().find(|(k, v)| k == n && !v.is_empty()).map(|(_, v)| v.as_str());
        let bad = |m: String| Response::text(400, format!("{m}\n"));
        let query = get("query").ok_or_else(|| bad("invalid parameter \"query\": missing".into()))?;
        let matchers = match logql::parse(query) {
            Ok(logql::Expr::Log(l)) => l.matchers,
            Ok(_) => return Err(bad(format!("{query:?} is not a stream selector"))),
            Err(e) => return Err(bad(e.to_string())),
        };
        let end = match get("end") {
            Some(v) => logql::http_api::parse_time("end", v).map_err(|e| bad(e.to_string()))?,
            None => now,
        };
        let start = match get("start") {
            Some(v) => logql::http_api::parse_time("start", v).map_err(|e| bad(e.to_string()))?,
            None => end.saturating_sub(3_600_000_000_000),
        };
        let storage = |e: StorageError| Response::text(500, format!("{e}\n"));
        let q = self.sink.log_querier().map_err(storage)?;
        let streams = q.select(&matchers, start, end, Direction::Forward).map_err(storage)?;
        let (mut n_streams, mut entries, mut bytes) = (0u64, 0u64, 0u64);
        for mut s in streams {
            let mut any = false;
            while let Some(e) = s.entries.next().map_err(storage)? {
                any = true;
                entries += 1;
                bytes += e.line.len() as u64;
            }
            n_streams += u64::from(any);
        }
        let chunks = self.sink.chunk_count(&matchers, start, end).unwrap_or(0);
        Ok(serde_json::json!({"streams": n_streams, "chunks": chunks, "bytes": bytes, "entries": entries}))
    }

    fn metrics_text(&self) -> String {
        let c = &self.counters;
        let mut s = String::new();
        for (name, help, v) in [
            ("loki_distributor_push_requests_total", "Push requests received.", &c.push_requests),
            ("loki_distributor_lines_received_total", "Log lines received.", &c.lines_received),
            ("loki_distributor_bytes_received_total", "Bytes of log lines received.", &c.bytes_received),
            ("loki_discarded_samples_total", "Log lines refused (validation or store).", &c.lines_discarded),
            ("loki_ingester_duplicate_entries_total", "Entries dropped as duplicates.", &c.duplicates),
        ] {
            s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n", v.load(Ordering::Relaxed)));
        }
        s.push_str(&format!("# HELP loki_live_tails Live tail connections.\n# TYPE loki_live_tails gauge\nloki_live_tails {}\n", self.tailers.len()));
        s
    }
}

/// The query string, plus the form body of a POST (Loki accepts both).
fn query_params(req: &Request) -> String {
    let form = req.method == "POST"
        && req.header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form && !req.body.is_empty() {
        let body = String::from_utf8_lossy(&req.body);
        if req.query.is_empty() {
            body.into_owned()
        } else {
            format!("{}&{}", req.query, body)
        }
    } else {
        req.query.clone()
    }
}

/// Nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

/// A running log server; see [`serve`].
pub struct RunningServer {
    server: crate::http::Server,
    stop: Arc<AtomicBool>,
}

impl RunningServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.local_addr()
    }

    /// Stops accepting, ends the tails and waits for the workers.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.server.shutdown();
    }

    /// Blocks until the server stops.
    pub fn join(self) {
        self.server.join();
    }
}

/// Serves `srv` on `addr` with the shared [`crate::http::Server`], plus a
/// hook that takes websocket upgrades for `/loki/api/v1/tail` (they need
/// the raw connection); each tail gets its own thread.
pub fn serve(addr: &str, cfg: ServerConfig, srv: Arc<LogServer>) -> anyhow::Result<RunningServer> {
    let stop = Arc::new(AtomicBool::new(false));
    let handler_srv = Arc::clone(&srv);
    let handler: crate::http::Handler = Arc::new(move |req: &Request| handler_srv.handle(req, now_ns()));
    let hook_stop = Arc::clone(&stop);
    let hook: crate::http::UpgradeHook = Arc::new(move |rq: &Request| {
        let is_upgrade = rq.header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        (is_upgrade && rq.path.trim_end_matches('/') == "/loki/api/v1/tail").then(|| start_tail(rq, &srv, &hook_stop))
    });
    let server = crate::http::Server::start_with_hook(addr, cfg, handler, Some(hook))?;
    Ok(RunningServer { server, stop })
}

/// Answers a websocket upgrade of `/loki/api/v1/tail`: errors as plain
/// responses, else the handshake, after which the tail runs on a thread of
/// its own.
fn start_tail(rq: &Request, srv: &Arc<LogServer>, stop: &Arc<AtomicBool>) -> Upgrade {
    let refuse = |msg: String| Upgrade { response: Response::text(400, msg), then: None };
    let now = now_ns();
    let Some(key) = rq.header("sec-websocket-key").filter(|k| !k.trim().is_empty()) else {
        return refuse("websocket: not a websocket handshake: 'Sec-WebSocket-Key' header is missing or blank\n".into());
    };
    let req = match tail::parse_tail_request(&rq.query, now) {
        Ok(r) => r,
        Err(e) => return refuse(format!("{e}\n")),
    };
    // Check the limit before upgrading so the client gets a real status.
    if srv.tailers.len() >= srv.limits.max_tails {
        return refuse(format!(
            "max concurrent tail requests limit exceeded, count > limit ({} > {})\n",
            srv.tailers.len() + 1,
            srv.limits.max_tails
        ));
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = Response::new(101, "", Vec::new());
    for (k, v) in [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept.as_str())] {
        response = response.with_header(k, v);
    }
    let srv = Arc::clone(srv);
    let stop = Arc::clone(stop);
    let then = move |stream: TcpStream, rest: Vec<u8>| {
        let spawned = thread::Builder::new().name("loki-tail".into()).spawn(move || {
            let ws = tungstenite::WebSocket::from_partially_read(stream, rest, tungstenite::protocol::Role::Server, None);
            match srv.tailers.subscribe() {
                Ok(sub) => tail::run(ws, srv.sink.as_ref(), &srv.engine, &req, sub, now, &stop),
                Err(e) => {
                    let mut ws = ws;
                    let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
                        code: tungstenite::protocol::frame::coding::CloseCode::Again,
                        reason: e.into(),
                    }));
                    let _ = ws.flush();
                }
            }
        });
        if let Err(e) = spawned {
            eprintln!("log-server: cannot start tail thread: {e}");
        }
    };
    Upgrade { response, then: Some(Box::new(then)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn req(method: &str, path: &str, query: &str, ct: Option<&str>, body: Vec<u8>) -> Request {
        let headers = ct.map(|c| vec![("content-type".to_string(), c.to_string())]).unwrap_or_default();
        Request { method: method.into(), path: path.into(), query: query.into(), headers, body }
    }

    fn json_push(streams: &str) -> Request {
        req("POST", "/loki/api/v1/push", "", Some("application/json"), format!(r#"{{"streams":[{streams}]}}"#).into_bytes())
    }

    fn body(r: &Response) -> String {
        String::from_utf8_lossy(&r.body).into_owned()
    }

    #[test]
    fn push_query_and_rejections() {
        let srv = LogServer::new(Arc::new(MemSink::new()), Limits { max_line_size: 10, ..Limits::default() });
        let ok = srv.handle(&json_push(&format!(r#"{{"stream":{{"job":"a"}},"values":[["{NOW}","one"],["{}","two"]]}}"#, NOW + 1)), NOW);
        assert_eq!(ok.status, 204, "{}", body(&ok));
        // A duplicate is dropped silently.
        assert_eq!(srv.handle(&json_push(&format!(r#"{{"stream":{{"job":"a"}},"values":[["{NOW}","one"]]}}"#)), NOW).status, 204);
        let old = NOW - 200 * 3_600_000_000_000;
        let r = srv.handle(
            &json_push(&format!(
                r#"{{"stream":{{"job":"a"}},"values":[["{old}","x"],["{}","keep"],["{}","far too long line"],["{}","new"]]}},{{"stream":{{}},"values":[["{NOW}","nolabels"]]}}"#,
                NOW + 2,
                NOW + 3,
                NOW + 3_600_000_000_000
            )),
            NOW,
        );
        assert_eq!(r.status, 400);
        let msg = body(&r);
        assert!(msg.contains("entry for stream '{job=\"a\"}' has timestamp too old: 2023-11-06 14:13:20 +0000 UTC"), "{msg}");
        assert!(msg.contains("max entry size '10' bytes exceeded"), "{msg}");
        assert!(msg.contains("has timestamp too new"), "{msg}");
        assert!(msg.contains("error at least one label pair is required per stream"), "{msg}");
        assert!(msg.ends_with("total ignored: 4 out of 5\n"), "{msg}");
        let q = srv.handle(&req("GET", "/loki/api/v1/query_range", &format!("query=%7Bjob%3D%22a%22%7D&start={}&end={}&direction=forward", NOW - 1, NOW + 10), None, vec![]), NOW);
        let v: Value = serde_json::from_slice(&q.body).unwrap();
        assert_eq!(v["data"]["result"][0]["values"], serde_json::json!([[NOW.to_string(), "one"], [(NOW + 1).to_string(), "two"], [(NOW + 2).to_string(), "keep"]]));
        // POST form queries work too.
        let q = srv.handle(&req("POST", "/loki/api/v1/query", "", Some("application/x-www-form-urlencoded"), b"query=vector(1)%2Bvector(1)".to_vec()), NOW);
        let v: Value = serde_json::from_slice(&q.body).unwrap();
        assert_eq!(v["data"]["result"][0]["value"][1], "2", "{v}");
        let st = srv.handle(&req("GET", "/loki/api/v1/index/stats", &format!("query=%7Bjob%3D%22a%22%7D&start={}&end={}", NOW - 1, NOW + 10), None, vec![]), NOW);
        let v: Value = serde_json::from_slice(&st.body).unwrap();
        assert_eq!(v, serde_json::json!({"streams": 1, "chunks": 0, "bytes": 10, "entries": 3}));
        let m = body(&srv.handle(&req("GET", "/metrics", "", None, vec![]), NOW));
        assert!(m.contains("loki_discarded_samples_total 4"), "{m}");
        assert!(m.contains("loki_ingester_duplicate_entries_total 1"), "{m}");
    }

    #[test]
    fn protobuf_gzip_and_errors() {
        let srv = LogServer::new(Arc::new(MemSink::new()), Limits::default());
        let s = vec![PushStream { labels: Labels::from_pairs([("job", "p")]), entries: vec![LogEntry::new(NOW, "pb")] }];
        let pb = push::encode_protobuf(&s);
        assert_eq!(srv.handle(&req("POST", "/loki/api/v1/push", "", Some("application/x-protobuf"), pb), NOW).status, 204);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &push::encode_json(&[PushStream { labels: Labels::from_pairs([("job", "g")]), entries: vec![LogEntry::new(NOW, "gz")] }])).unwrap();
        let mut r = req("POST", "/loki/api/v1/push", "", Some("application/json"), gz.finish().unwrap());
        r.headers.push(("content-encoding".into(), "gzip".into()));
        assert_eq!(srv.handle(&r, NOW).status, 204);
        let v: Value = serde_json::from_slice(&srv.handle(&req("GET", "/loki/api/v1/label/job/values", &format!("start={}&end={}", NOW - 1, NOW + 1), None, vec![]), NOW).body).unwrap();
        assert_eq!(v["data"], serde_json::json!(["g", "p"]));
        let bad = srv.handle(&req("POST", "/loki/api/v1/push", "", Some("application/x-protobuf"), b"garbage".to_vec()), NOW);
        assert_eq!(bad.status, 400);
        assert!(body(&bad).starts_with("decompressing snappy body"), "{}", body(&bad));
        assert_eq!(srv.handle(&req("GET", "/loki/api/v1/push", "", None, vec![]), NOW).status, 405);
        assert_eq!(srv.handle(&req("GET", "/nope", "", None, vec![]), NOW).status, 404);
        assert_eq!(srv.handle(&req("GET", "/ready", "", None, vec![]), NOW).status, 200);
        assert_eq!(srv.handle(&req("GET", "/loki/api/v1/index/stats", "query=sum(", None, vec![]), NOW).status, 400);
        let b: Value = serde_json::from_slice(&srv.handle(&req("GET", "/loki/api/v1/status/buildinfo", "", None, vec![]), NOW).body).unwrap();
        assert!(b["version"].is_string());
    }

    #[test]
    fn logstore_sink_drops_duplicates_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = logstore::Store::open(dir.path(), logstore::Options::builder().flush_interval(None).build()).unwrap();
        let sink = LogstoreSink::new(store);
        let l = Labels::from_pairs([("job", "a")]);
        let longer = Labels::from_pairs([("job", "a"), ("x", "y")]);
        let batch = vec![(l.clone(), vec![LogEntry::new(NOW, "one"), LogEntry::new(NOW + 1, "two")])];
        assert_eq!(sink.push(&batch).unwrap().accepted, 2);
        sink.store().flush().unwrap();
        // Same entries after a flush: dropped; a new line at a stored
        // timestamp, and the same entry in another stream: kept.
        let again = vec![
            (l.clone(), vec![LogEntry::new(NOW, "one"), LogEntry::new(NOW + 1, "two"), LogEntry::new(NOW + 1, "three")]),
            (longer.clone(), vec![LogEntry::new(NOW, "one")]),
        ];
        let out = sink.push(&again).unwrap();
        assert_eq!((out.accepted, out.duplicates), (2, 2));
        let srv = LogServer::new(Arc::new(sink), Limits::default());
        let st = srv.handle(&req("GET", "/loki/api/v1/index/stats", &format!("query=%7Bjob%3D%22a%22%7D&start={}&end={}", NOW - 1, NOW + 10), None, vec![]), NOW);
        let v: Value = serde_json::from_slice(&st.body).unwrap();
        assert_eq!((v["streams"].as_u64(), v["entries"].as_u64()), (Some(2), Some(4)), "{v}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Hostile push bodies (any bytes, any content type and encoding)
        /// get a status, never a panic; valid JSON with hostile values too.
        #[test]
        fn hostile_pushes_never_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            ct in 0usize..4,
            enc in 0usize..3,
            ts in proptest::prelude::any::<i64>(),
            name in "\\PC{0,12}",
            line in "\\PC{0,20}",
        ) {
            let srv = LogServer::new(Arc::new(MemSink::new()), Limits::default());
            let cts = [None, Some("application/json"), Some("application/x-protobuf"), Some("text/plain")];
            let mut r = req("POST", "/loki/api/v1/push", "", cts[ct], body);
            if enc > 0 {
                r.headers.push(("content-encoding".into(), ["", "gzip", "deflate"][enc].into()));
            }
            let st = srv.handle(&r, NOW).status;
            proptest::prop_assert!(st == 400 || st == 204, "status {}", st);
            let json = serde_json::json!({"streams": [{"stream": {name: "v"}, "values": [[ts.to_string(), line]]}]}).to_string();
            let st = srv.handle(&req("POST", "/loki/api/v1/push", "", Some("application/json"), json.into_bytes()), NOW).status;
            proptest::prop_assert!(st == 400 || st == 204, "status {}", st);
        }
    }

    #[test]
    fn go_time_format() {
        assert_eq!(go_time(1_704_067_200_500_000_000), "2024-01-01 00:00:00.5 +0000 UTC");
        assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
    }
}
