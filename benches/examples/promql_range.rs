//! Times PromQL range queries over a tsdb directory, in process (engine and
//! JSON rendering through the HTTP API handler), for profiling.
//!
//! ```text
//! python3 ../shared/bench/gen_openmetrics.py 100 240 > /tmp/hard.om
//! tsdb import --data-dir /tmp/perfdb /tmp/hard.om
//! cargo run --release -p benches --example promql_range -- /tmp/perfdb [RUNS] [QUERY_INDEX]
//! ```
//!
//! Queries and range are those of `compare/promql_queries.py` (1h at 60s
//! from 1700000000). Prints each query's median time in ms. With
//! `PROMQL_PAUSE_MS=N` the runs are N ms apart (untimed), closer to a
//! server answering one request now and then than back-to-back runs with
//! hot caches; `PROMQL_PARALLELISM=1` keeps loading on one thread;
//! `PROMQL_QUERY='...'` times that query instead of the list.

use promql::http_api::{ApiRequest, PromApi};

/// The allocator metrics-server uses, so that profiles match the server.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use promql::Engine;
use std::time::Instant;

const QUERIES: &[&str] = &[
    r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))"#,
    r#"rate(node_network_bytes_total[1m])"#,
    r#"topk(5, avg_over_time(node_load{window="1"}[10m]))"#,
    r#"count by (job) (node_filesystem_size_bytes > 1e12)"#,
    r#"count by (__name__) ({__name__=~"node_.+"})"#,
    r#"avg by (job, kind) (node_memory_bytes)"#,
    r#"max_over_time(node_disk_io_time_seconds{op="read"}[5m])"#,
    r#"sum by (job) (increase(node_context_switches_total[10m]))"#,
    r#"quantile(0.9, rate(node_cpu_seconds_total{mode="user"}[5m]))"#,
    r#"node_load{window="15"} / on (instance) group_left () node_load{window="1"}"#,
];

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "/tmp/perfdb".into());
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let only: Option<usize> = args.next().and_then(|s| s.parse().ok());
    let db = tsdb::Db::open(&dir, tsdb::Options::builder().retention_time(None).build()).expect("open tsdb");
    // PROMQL_PARALLELISM=1 keeps loading on one thread (for instruction
    // counts that compare changes).
    let mut opts = promql::EngineOptions::default();
    if let Some(p) = std::env::var("PROMQL_PARALLELISM").ok().and_then(|v| v.parse().ok()) {
        opts.parallelism = p;
    }
    let engine = Engine::new(opts);
    let api = PromApi::new(&engine, &db);
    // `PROMQL_QUERY` replaces the list with one query of your own.
    let own = std::env::var("PROMQL_QUERY").ok();
    let queries: Vec<&str> = match &own {
        Some(q) => vec![q.as_str()],
        None => QUERIES.to_vec(),
    };
    for (i, q) in queries.iter().enumerate() {
        if own.is_none() && only.is_some_and(|o| o != i) {
            continue;
        }
        let query = format!("query={}&start=1700000000&end=1700003600&step=60", encode(q));
        let req = ApiRequest::get("/api/v1/query_range", &query);
        let mut times = Vec::new();
        let mut bytes = 0;
        let pause = std::env::var("PROMQL_PAUSE_MS").ok().and_then(|v| v.parse::<u64>().ok());
        for _ in 0..runs.max(1) {
            if let Some(ms) = pause {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            let t0 = Instant::now();
            let r = api.handle(&req, 0);
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(r.status, 200, "{q}: {}", String::from_utf8_lossy(&r.body));
            bytes = r.body.len();
        }
        times.sort_by(f64::total_cmp);
        println!("{:8.2} ms (min {:8.2}) {:9} B  {q}", times[times.len() / 2], times[0], bytes);
    }
}
