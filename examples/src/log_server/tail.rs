//! `/loki/api/v1/tail`: live tailing over a websocket.
//!
//! Each tail subscribes to the pushes the server accepts (a bounded channel
//! per tail: a slow client loses entries, reported in the next frame's
//! `dropped_entries`, instead of slowing pushes down), first sends the
//! matching entries since `start` (at most `limit`), then every new
//! matching entry, as Loki's frames:
//! `{"streams":[{"stream":{..},"values":[["<ns>","line"]]}],"dropped_entries":null}`.
//! The query's pipeline (filters, parsers, formatting) runs on each pushed
//! batch through the LogQL engine. Idle connections get a ping every
//! [`PING_INTERVAL`]; a failed write ends the tail.

use super::push::PushStream;
use logql::{Engine, EngineOptions, QueryParams, QueryResult, StreamResult};
use model::mem::MemLogStore;
use model::{Direction, Labels, LogEntry, LogQueryable};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tungstenite::{Message, WebSocket};

/// How often an idle tail is pinged (a dead client is noticed then).
pub const PING_INTERVAL: Duration = Duration::from_secs(10);
/// Pushed batches queued per tail before entries are dropped.
const QUEUE: usize = 256;
/// Most dropped entries remembered per tail between two frames.
const MAX_DROPPED: usize = 1000;
/// Most bytes of lines queued per tail (beyond: entries are dropped).
const MAX_QUEUED_BYTES: usize = 16 << 20;

/// A batch of accepted entries, shared by every tail.
pub type Batch = Arc<Vec<PushStream>>;

struct Sub {
    id: u64,
    tx: SyncSender<Batch>,
    dropped: Arc<Mutex<Vec<(Labels, i64)>>>,
    queued: Arc<AtomicUsize>,
}

/// The registry of live tails.
pub struct Tailers {
    subs: Mutex<(u64, Vec<Sub>)>,
    max: usize,
}

/// A subscription; unsubscribes when dropped.
pub struct Subscription<'a> {
    owner: &'a Tailers,
    id: u64,
    rx: Receiver<Batch>,
    dropped: Arc<Mutex<Vec<(Labels, i64)>>>,
    queued: Arc<AtomicUsize>,
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut g = self.owner.subs.lock().unwrap_or_else(|e| e.into_inner());
        g.1.retain(|s| s.id != self.id);
    }
}

impl Tailers {
    /// A registry allowing `max` concurrent tails (Loki's
    /// `max_concurrent_tail_requests`, default 10).
    pub fn new(max: usize) -> Self {
        Tailers { subs: Mutex::new((0, Vec::new())), max }
    }

    /// Number of live tails.
    pub fn len(&self) -> usize {
        self.subs.lock().map(|g| g.1.len()).unwrap_or(0)
    }

    /// Whether no tail is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Subscribes, or says why not (limit reached).
    pub fn subscribe(&self) -> Result<Subscription<'_>, String> {
        let mut g = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        if g.1.len() >= self.max {
            return Err(format!("max concurrent tail requests limit exceeded, count > limit ({} > {})", g.1.len() + 1, self.max));
        }
        g.0 += 1;
        let id = g.0;
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = Arc::new(Mutex::new(Vec::new()));
        let queued = Arc::new(AtomicUsize::new(0));
        g.1.push(Sub { id, tx, dropped: dropped.clone(), queued: queued.clone() });
        Ok(Subscription { owner: self, id, rx, dropped, queued })
    }

    /// Hands a batch of accepted entries to every tail (never blocks).
    pub fn publish(&self, batch: Batch) {
        let size = batch_bytes(&batch);
        let g = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        for s in &g.1 {
            let sent = if s.queued.load(Ordering::Relaxed) + size > MAX_QUEUED_BYTES {
                Err(TrySendError::Full(batch.clone()))
            } else {
                s.tx.try_send(batch.clone())
            };
            match sent {
                Ok(()) => {
                    s.queued.fetch_add(size, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(b)) => {
                    let mut d = s.dropped.lock().unwrap_or_else(|e| e.into_inner());
                    for st in b.iter() {
                        for e in &st.entries {
                            if d.len() < MAX_DROPPED {
                                d.push((st.labels.clone(), e.ts));
                            }
                        }
                    }
                }
            }
        }
    }
}

fn batch_bytes(b: &[PushStream]) -> usize {
    b.iter().flat_map(|s| s.entries.iter()).map(|e| e.line.len() + 16).sum()
}

/// Parsed tail parameters.
#[derive(Clone, Debug)]
pub struct TailRequest {
    /// The log query (a selector and pipeline; no metric queries).
    pub query: String,
    /// Entries before the live ones: at most this many.
    pub limit: usize,
    /// Start of the history sent first (ns).
    pub start: i64,
}

/// Parses `/loki/api/v1/tail` parameters (`query`, `limit` default 100,
/// `start` default one hour ago, `delay_for` at most 5 seconds).
pub fn parse_tail_request(query_string: &str, now: i64) -> Result<TailRequest, String> {
    let params = logql::http_api::parse_query_string(query_string);
    let get = |n: &str| params.iter().find(|(k, v)| k == n && !v.is_empty()).map(|(_, v)| v.as_str());
    let query = get("query").ok_or("invalid parameter \"query\": missing")?.to_string();
    match logql::parse(&query) {
        Ok(logql::Expr::Log(_)) => {}
        Ok(_) => return Err("tail requires a log query (a stream selector with an optional pipeline), not a metric query".into()),
        Err(e) => return Err(e.to_string()),
    }
    let limit = match get("limit") {
        None => 100,
        Some(v) => v.parse::<usize>().map_err(|_| format!("invalid parameter \"limit\": cannot parse {v:?} as a positive integer"))?,
    };
    let start = match get("start") {
        None => now - 3_600_000_000_000,
        Some(v) => logql::http_api::parse_time("start", v).map_err(|e| e.to_string())?,
    };
    if let Some(d) = get("delay_for") {
        let secs: u64 = d.parse().map_err(|_| format!("invalid parameter \"delay_for\": cannot parse {d:?}"))?;
        if secs > 5 {
            return Err("delay_for can't be greater than 5".into());
        }
    }
    Ok(TailRequest { query, limit, start })
}

fn frame(streams: &[StreamResult], dropped: &[(Labels, i64)]) -> String {
    let streams: Vec<Value> = streams
        .iter()
        .filter(|s| !s.entries.is_empty())
        .map(|s| {
            let labels: serde_json::Map<String, Value> =
                s.labels.iter().map(|l| (l.name.clone(), Value::String(l.value.clone()))).collect();
            json!({"stream": labels, "values": s.entries.iter().map(|e| json!([e.ts.to_string(), e.line])).collect::<Vec<_>>()})
        })
        .collect();
    let dropped = if dropped.is_empty() {
        Value::Null
    } else {
        Value::Array(
            dropped
                .iter()
                .map(|(l, ts)| {
                    let labels: serde_json::Map<String, Value> =
                        l.iter().map(|l| (l.name.clone(), Value::String(l.value.clone()))).collect();
                    json!({"labels": labels, "timestamp": ts.to_string()})
                })
                .collect(),
        )
    };
    json!({"streams": streams, "dropped_entries": dropped}).to_string()
}

fn run_query(store: &dyn LogQueryable, opts: &EngineOptions, q: &str, p: QueryParams) -> Result<Vec<StreamResult>, String> {
    match Engine::with_options(store, opts.clone()).query(q, p) {
        Ok(QueryResult::Streams(s)) => Ok(s),
        Ok(_) => Err("tail requires a log query".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs one tail over an open websocket until the client goes away, a
/// write fails or `stop` is set. `history` is the store to read the
/// initial entries from.
pub fn run<S: Read + Write>(
    mut ws: WebSocket<S>,
    history: &dyn LogQueryable,
    opts: &EngineOptions,
    req: &TailRequest,
    sub: Subscription<'_>,
    now: i64,
    stop: &AtomicBool,
) {
    // History first (newest `limit` entries, sent oldest first), then live.
    let mut sent: HashSet<(Labels, i64, String)> = HashSet::new();
    match run_query(history, opts, &req.query, QueryParams::range(req.start, now, 1_000_000_000).with_limit(req.limit)) {
        Ok(mut streams) => {
            for s in &mut streams {
                s.entries.reverse();
                for e in &s.entries {
                    sent.insert((s.labels.clone(), e.ts, e.line.clone()));
                }
            }
            if streams.iter().any(|s| !s.entries.is_empty()) && ws.send(Message::text(frame(&streams, &[]))).is_err() {
                return;
            }
        }
        Err(e) => {
            let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
                code: tungstenite::protocol::frame::coding::CloseCode::Error,
                reason: e.into(),
            }));
            let _ = ws.flush();
            return;
        }
    }
    while !stop.load(Ordering::Relaxed) {
        match sub.rx.recv_timeout(PING_INTERVAL) {
            Ok(batch) => {
                sub.queued.fetch_sub(batch_bytes(&batch).min(sub.queued.load(Ordering::Relaxed)), Ordering::Relaxed);
                let store = MemLogStore::new();
                let (mut lo, mut hi) = (i64::MAX, i64::MIN);
                let mut n = 0;
                for st in batch.iter() {
                    for e in &st.entries {
                        store.push(&st.labels, e.clone());
                        lo = lo.min(e.ts);
                        hi = hi.max(e.ts);
                        n += 1;
                    }
                }
                let dropped = std::mem::take(&mut *sub.dropped.lock().unwrap_or_else(|e| e.into_inner()));
                if n == 0 && dropped.is_empty() {
                    continue;
                }
                let mut streams = if n == 0 {
                    Vec::new()
                } else {
                    let p = QueryParams::range(lo, hi.saturating_add(1), 1_000_000_000).with_limit(n).with_direction(Direction::Forward);
                    // A push may hold more entries than a query may return.
                    let batch_opts = EngineOptions { max_entries_limit: opts.max_entries_limit.max(n), ..opts.clone() };
                    run_query(&store, &batch_opts, &req.query, p).unwrap_or_default()
                };
                if !sent.is_empty() {
                    for s in &mut streams {
                        let l = s.labels.clone();
                        s.entries.retain(|e: &LogEntry| !sent.contains(&(l.clone(), e.ts, e.line.clone())));
                    }
                }
                if (streams.iter().any(|s| !s.entries.is_empty()) || !dropped.is_empty())
                    && ws.send(Message::text(frame(&streams, &dropped))).is_err()
                {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if ws.send(Message::Ping(Vec::new().into())).is_err() {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
    let _ = ws.close(None);
    let _ = ws.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let r = parse_tail_request("query=%7Ba%3D%22b%22%7D&limit=5&start=10", 100).unwrap();
        assert_eq!((r.limit, r.start), (5, 10_000_000_000));
        assert!(parse_tail_request("query=count_over_time(%7Ba%3D%22b%22%7D%5B1m%5D)", 0).unwrap_err().contains("log query"));
        assert!(parse_tail_request("limit=5", 0).unwrap_err().contains("query"));
        assert!(parse_tail_request("query=%7Ba%3D%22b%22%7D&delay_for=6", 0).unwrap_err().contains("delay_for"));
    }

    #[test]
    fn subscription_limits_and_drops() {
        let t = Tailers::new(1);
        let s = t.subscribe().unwrap();
        assert!(t.subscribe().is_err());
        let batch: Batch = Arc::new(vec![PushStream { labels: Labels::from_pairs([("a", "b")]), entries: vec![LogEntry::new(1, "x")] }]);
        for _ in 0..QUEUE + 3 {
            t.publish(batch.clone());
        }
        assert_eq!(s.dropped.lock().unwrap().len(), 3);
        // A batch larger than the byte bound is dropped even with room in the queue.
        while s.rx.try_recv().is_ok() {}
        s.queued.store(0, Ordering::Relaxed);
        s.dropped.lock().unwrap().clear();
        let big: Batch = Arc::new(vec![PushStream { labels: Labels::from_pairs([("a", "b")]), entries: vec![LogEntry::new(1, "x".repeat(MAX_QUEUED_BYTES))] }]);
        t.publish(big);
        assert_eq!(s.dropped.lock().unwrap().len(), 1);
        assert_eq!(s.queued.load(Ordering::Relaxed), 0);
        drop(s);
        assert!(t.is_empty());
        assert!(t.subscribe().is_ok());
    }

    #[test]
    fn frame_shape() {
        let s = vec![StreamResult { labels: Labels::from_pairs([("a", "b")]), entries: vec![LogEntry::new(5, "x")] }];
        let v: Value = serde_json::from_str(&frame(&s, &[])).unwrap();
        assert_eq!(v, json!({"streams":[{"stream":{"a":"b"},"values":[["5","x"]]}],"dropped_entries":null}));
        let v: Value = serde_json::from_str(&frame(&[], &[(Labels::from_pairs([("a", "b")]), 7)])).unwrap();
        assert_eq!(v["dropped_entries"], json!([{"labels":{"a":"b"},"timestamp":"7"}]));
    }
}
