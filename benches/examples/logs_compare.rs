//! The log side-by-side figures in one run (driven by
//! `benches/compare/logs.sh`, which also times the `zstd` and `grep`
//! references over the same lines).
//!
//! ```text
//! cargo run --release -p benches --example logs_compare -- LOGS.jsonl [--level N] [--lines-dir DIR]
//!     [--min-cpu SECS] [--fsync-never] [--no-filters] [--line-filter-only]
//! ```
//!
//! `LOGS.jsonl` holds Loki JSON push bodies, one per line
//! (`shared/bench/gen_logs.py 24 20000`). The program
//!
//! 1. ingests them into fresh `logstore::Store`s the way log-server's push
//!    handler does — decode each JSON body into streams of entries
//!    (`logql::push::decode_push`, log-server's decoder), then `Store::push` — and
//!    flushes; CPU time on this thread gives MB/s of raw line bytes per
//!    core, with and without the JSON decoding. Three stores: default
//!    options (WAL fsync per push), no fsync, and no fsync without block
//!    filters (no background flush thread in any: flushing is explicit);
//! 2. prints the compression ratio: raw line bytes / bytes of chunk files;
//! 3. runs the three LogQL queries of the issue through `logql::Engine`
//!    over the whole range on the no-fsync store (log queries with a limit
//!    above their result size, so every entry is looked at), repeating each
//!    until `--min-cpu` seconds of CPU time (default 2), and prints CPU
//!    time per run, GB/s per core over the raw bytes of the selected
//!    streams and the result size; then the line-filter query on the store
//!    without block filters, where every block is decompressed and searched;
//! 4. checks each result against a naive evaluation over the input (plain
//!    `str::contains`, a logfmt `level=` split, a JSON parse) and exits
//!    non-zero on any difference;
//! 5. prints the floor of a scan that decompresses everything: zstd
//!    decoding alone of the nginx lines in 256 KiB blocks with the store's
//!    settings, in process;
//! 6. with `--lines-dir`, writes the raw lines (`all.txt`, `nginx.txt`,
//!    newline-terminated) for the reference tools.
//!
//! `--fsync-never` and `--no-filters` ingest only the one store described;
//! `--line-filter-only` skips the two metric/parser queries (for profiling).
//!
//! CPU time is the thread's `sum_exec_runtime` (Linux
//! `/proc/thread-self/schedstat`), so the figures are per core even on a
//! busy machine. It is read at scheduler-tick granularity, so every figure
//! is timed as one long interval (or a mean over many back-to-back runs).
#![allow(missing_docs)]

use logql::{Engine, EngineOptions, QueryParams, QueryResult};

/// The allocator log-server uses, so that the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use logstore::{FsyncPolicy, Options, OptionsBuilder, Store};
use model::{Direction, Labels, LogEntry};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

type Request = Vec<(Labels, Vec<LogEntry>)>;

fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("reading /proc/thread-self/schedstat (Linux only)");
    Duration::from_nanos(
        s.split_whitespace().next().and_then(|x| x.parse().ok()).expect("schedstat"),
    )
}

fn cpu<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let a = thread_cpu();
    let out = f();
    (out, thread_cpu().saturating_sub(a))
}

/// Decodes one Loki JSON push body with log-server's decoder
/// (`logql::push::decode_push`, as for `Content-Type: application/json`)
/// into what `Store::push` takes.
fn decode_push(body: &str) -> Result<Request, logql::push::PushDecodeError> {
    let streams = logql::push::decode_push(Some("application/json"), body.as_bytes(), usize::MAX)?;
    Ok(streams.into_iter().map(|s| (s.labels, s.entries)).collect())
}

struct Args {
    logs: PathBuf,
    level: Option<i32>,
    fsync_never: bool,
    no_filters: bool,
    line_filter_only: bool,
    lines_dir: Option<PathBuf>,
    min_cpu: f64,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        logs: PathBuf::new(),
        level: None,
        fsync_never: false,
        no_filters: false,
        line_filter_only: false,
        lines_dir: None,
        min_cpu: 2.0,
    };
    while let Some(x) = it.next() {
        match x.as_str() {
            "--level" => a.level = it.next().and_then(|v| v.parse().ok()),
            "--lines-dir" => a.lines_dir = it.next().map(PathBuf::from),
            "--min-cpu" => a.min_cpu = it.next().and_then(|v| v.parse().ok()).unwrap_or(2.0),
            "--fsync-never" => a.fsync_never = true,
            "--no-filters" => a.no_filters = true,
            "--line-filter-only" => a.line_filter_only = true,
            "--bench" => {}
            _ => a.logs = PathBuf::from(x),
        }
    }
    if a.logs.as_os_str().is_empty() {
        eprintln!(
            "usage: logs_compare LOGS.jsonl [--level N] [--lines-dir DIR] [--min-cpu SECS] \
             [--fsync-never] [--no-filters] [--line-filter-only]"
        );
        std::process::exit(2);
    }
    a
}

/// Every input entry with its stream's `job`.
struct Input {
    /// (job, ts, line)
    entries: Vec<(String, i64, String)>,
}

impl Input {
    fn bytes(&self, job: Option<&str>) -> u64 {
        self.entries.iter().filter(|e| job.is_none_or(|j| e.0 == j)).map(|e| e.2.len() as u64).sum()
    }
    fn job<'a>(&'a self, job: &'a str) -> impl Iterator<Item = &'a (String, i64, String)> + 'a {
        self.entries.iter().filter(move |e| e.0 == job)
    }
}

/// A store filled from the push bodies, with its ingest figures.
struct Ingested {
    store: Store,
    dir: tempfile::TempDir,
    /// CPU time of decoding the JSON bodies.
    decode: Duration,
    /// CPU time of `Store::push` of every request, then `Store::flush`.
    push: Duration,
}

/// Decodes every body, then pushes everything and flushes, timing both
/// phases on this thread (each as one interval: thread CPU time is read at
/// scheduler-tick granularity, so many short intervals would not add up).
fn ingest(bodies: &[&str], o: &OptionsBuilder) -> Ingested {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), o.build()).expect("open store");
    let (reqs, decode) =
        cpu(|| bodies.iter().map(|b| decode_push(b).expect("valid push body")).collect::<Vec<_>>());
    let ((), push) = cpu(|| {
        for r in &reqs {
            let out = store.push(r).expect("push");
            assert!(out.rejected.is_empty(), "rejected: {:?}", out.rejected.first());
        }
        store.flush().expect("flush");
    });
    Ingested { store, dir, decode, push }
}

fn print_ingest(what: &str, raw: u64, i: &Ingested) {
    let mb = raw as f64 / 1e6;
    let both = i.decode + i.push;
    println!(
        "ingest ({what}): {:.0} MB/s per core through the push path ({:.2} s CPU: JSON decoding {:.2} s, \
         Store::push + flush {:.2} s = {:.0} MB/s alone)",
        mb / both.as_secs_f64(),
        both.as_secs_f64(),
        i.decode.as_secs_f64(),
        i.push.as_secs_f64(),
        mb / i.push.as_secs_f64()
    );
}

fn print_compression(what: &str, raw: u64, i: &Ingested) {
    let files = tsdb::fs::dir_size(&i.dir.path().join("chunks")).expect("chunk dir size");
    let st = i.store.stats();
    println!(
        "compression ({what}): {:.2}x ({} blocks; {:.2} MB of chunk files, of which {:.2} MB compressed blocks)",
        raw as f64 / files as f64,
        st.blocks,
        files as f64 / 1e6,
        st.compressed_bytes as f64 / 1e6
    );
}

fn main() {
    let a = args();
    let text = std::fs::read_to_string(&a.logs).expect("reading the push bodies");
    let bodies: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    // The input as entries, for the naive checks.
    let mut input = Input { entries: Vec::new() };
    for b in &bodies {
        for (labels, entries) in decode_push(b).expect("valid push body") {
            let job = labels.get("job").unwrap_or_default().to_string();
            input.entries.extend(entries.into_iter().map(|e| (job.clone(), e.ts, e.line)));
        }
    }
    let raw = input.bytes(None);
    println!(
        "data: {} push bodies, {} entries, {:.1} MB of raw lines ({:.1} MB nginx)",
        bodies.len(),
        input.entries.len(),
        raw as f64 / 1e6,
        input.bytes(Some("nginx")) as f64 / 1e6
    );
    if let Some(d) = &a.lines_dir {
        std::fs::create_dir_all(d).expect("lines dir");
        let mut all = String::new();
        let mut nginx = String::new();
        for (job, _, line) in &input.entries {
            all.push_str(line);
            all.push('\n');
            if job == "nginx" {
                nginx.push_str(line);
                nginx.push('\n');
            }
        }
        std::fs::write(d.join("all.txt"), all).expect("write all.txt");
        std::fs::write(d.join("nginx.txt"), nginx).expect("write nginx.txt");
    }

    // 1 and 2: ingest and compression. The store options are the defaults
    // (as log-server uses them) but for the background flush thread, whose
    // CPU time would not be on this thread: flushing is done (and timed)
    // explicitly.
    let mut o = Options::builder();
    o.flush_interval(None);
    if let Some(l) = a.level {
        o.zstd_level(l);
    }
    let mut no_fsync = o.clone();
    no_fsync.fsync(FsyncPolicy::Never);
    let mut no_filters = no_fsync.clone();
    no_filters.block_filters(false);
    let with_filters = if a.fsync_never || a.no_filters { None } else { Some(ingest(&bodies, &o)) };
    let main = ingest(&bodies, if a.no_filters { &no_filters } else { &no_fsync });
    if let Some(i) = &with_filters {
        print_ingest("defaults: WAL fsync per push", raw, i);
    }
    print_ingest("WAL without fsync", raw, &main);
    print_compression("defaults", raw, &main);
    let bare = if a.no_filters { None } else { Some(ingest(&bodies, &no_filters)) };
    if let Some(b) = &bare {
        print_ingest("WAL without fsync, no block filters", raw, b);
        print_compression("no block filters", raw, b);
    }
    drop(with_filters);

    // 3 and 4: the queries, then the line filter without block filters.
    let mut failed = query_all(&main.store, &input, &a, !a.line_filter_only);
    if let Some(b) = &bare {
        println!("without block filters (every nginx block decompressed and searched):");
        failed |= query_all(&b.store, &input, &a, false);
    }
    // The floor, interleaved run by run with the full scan (the line
    // filter on the store without block filters) when there is one, so
    // that both see the same machine.
    let scan = bare.as_ref().map(|b| line_filter_scan(&b.store, &input));
    zstd_floor(
        &input,
        a.level.unwrap_or(logstore::DEFAULT_ZSTD_LEVEL),
        a.min_cpu,
        scan.as_ref().map(|f| f as &dyn Fn() -> Duration),
    );
    if failed {
        std::process::exit(1);
    }
}

/// The floor of a line-filter scan that decompresses everything: zstd
/// decoding alone of the nginx lines, cut per stream into blocks the way
/// the store's head cuts them (when the lines plus 4 bytes per entry reach
/// the block size, so the blocks stay under 256 KiB and zstd picks the same
/// parameter set as for the store's blocks) and compressed with its level
/// and minimum match length (7 at levels 1 to 4), into a reused buffer.
///
/// With `scan` (one run of the full scan, returning its CPU time), runs
/// alternate between the two and both means are printed with their ratio.
fn zstd_floor(input: &Input, level: i32, min_cpu: f64, scan: Option<&dyn Fn() -> Duration>) {
    let mut c = zstd::bulk::Compressor::new(level).expect("compressor");
    if (1..=4).contains(&level) {
        c.set_parameter(zstd::zstd_safe::CParameter::MinMatch(7)).expect("min match");
    }
    // Per stream: lines, entry count.
    let mut per_stream: BTreeMap<i64, (Vec<u8>, usize)> = BTreeMap::new();
    let mut blocks = Vec::new();
    let mut bytes = 0u64;
    // Entries come stream after stream; a new stream starts when the
    // timestamps go back.
    let mut last = i64::MIN;
    let mut stream = 0i64;
    for (_, ts, line) in input.job("nginx") {
        if *ts < last {
            stream += 1;
        }
        last = *ts;
        let (buf, n) = per_stream.entry(stream).or_default();
        buf.extend_from_slice(line.as_bytes());
        *n += 1;
        bytes += line.len() as u64;
        if buf.len() + 4 * *n >= logstore::DEFAULT_BLOCK_SIZE {
            blocks.push((c.compress(buf).expect("compress"), buf.len()));
            buf.clear();
            *n = 0;
        }
    }
    for (buf, _) in per_stream.values().filter(|b| !b.0.is_empty()) {
        blocks.push((c.compress(buf).expect("compress"), buf.len()));
    }
    let mut d = zstd::bulk::Decompressor::new().expect("decompressor");
    let mut out = Vec::new();
    let mut runs = 0u32;
    let mut total = Duration::ZERO;
    let mut scan_total = Duration::ZERO;
    while runs < 3 || total.as_secs_f64() < min_cpu {
        if let Some(f) = scan {
            scan_total += f();
        }
        let ((), took) = cpu(|| {
            for (z, n) in &blocks {
                out.clear();
                out.reserve(*n);
                std::hint::black_box(d.decompress_to_buffer(z, &mut out).expect("decompress"));
            }
        });
        runs += 1;
        total += took;
    }
    let mean = total / runs;
    println!(
        "zstd decoding alone of the nginx lines in {} blocks of up to 256 KiB cut as the store does (level {level}, in process): \
         {:.3} ms CPU, {:.2} GB/s per core",
        blocks.len(),
        mean.as_secs_f64() * 1e3,
        bytes as f64 / 1e9 / mean.as_secs_f64()
    );
    if scan.is_some() {
        let scan_mean = scan_total / runs;
        println!(
            "  interleaved with it, {runs} runs each: the full scan (line filter, no block filters) {:.3} ms CPU, \
             {:.2} GB/s per core = {:.2}x zstd decoding alone",
            scan_mean.as_secs_f64() * 1e3,
            bytes as f64 / 1e9 / scan_mean.as_secs_f64(),
            scan_mean.as_secs_f64() / mean.as_secs_f64()
        );
    }
}

/// One run of the line-filter query over the whole range (as in
/// `query_all`), returning its CPU time.
fn line_filter_scan<'a>(store: &'a Store, input: &Input) -> impl Fn() -> Duration + 'a {
    let min_t = input.entries.iter().map(|e| e.1).min().unwrap_or(0);
    let max_t = input.entries.iter().map(|e| e.1).max().unwrap_or(0);
    let opts = EngineOptions { max_series: 100_000, max_entries_limit: 10_000_000, timeout: None };
    let params = QueryParams::range(min_t, max_t + 1, 1_000_000_000)
        .with_limit(input.entries.len() + 1)
        .with_direction(Direction::Backward);
    move || {
        let engine = Engine::with_options(store, opts.clone());
        let (r, took) = cpu(|| engine.query(r#"{job="nginx"} |= "queue full""#, params));
        std::hint::black_box(r.expect("query"));
        took
    }
}

/// Runs the queries (only the line filter unless `all`); whether a check
/// failed.
fn query_all(store: &Store, input: &Input, a: &Args, all: bool) -> bool {
    let min_t = input.entries.iter().map(|e| e.1).min().unwrap_or(0);
    let max_t = input.entries.iter().map(|e| e.1).max().unwrap_or(0);
    let opts = EngineOptions { max_series: 100_000, max_entries_limit: 10_000_000, timeout: None };
    let engine = Engine::with_options(store, opts);
    // Log queries: a limit above any result, so every entry is looked at.
    let log_params = QueryParams::range(min_t, max_t + 1, 1_000_000_000)
        .with_limit(input.entries.len() + 1)
        .with_direction(Direction::Backward);
    let step = 300_000_000_000i64;
    let metric_start = min_t - min_t.rem_euclid(step);
    let metric_end = max_t + step - max_t.rem_euclid(step);
    let metric_params = QueryParams::range(metric_start, metric_end, step);

    let mut failed = false;
    let queries: [(&str, &str, QueryParams); 3] = [
        ("nginx", r#"{job="nginx"} |= "queue full""#, log_params),
        (
            "app-logfmt",
            r#"sum by (level) (count_over_time({job="app-logfmt"} | logfmt | level="error" [5m]))"#,
            metric_params,
        ),
        ("app-json", r#"{job="app-json"} | json | status >= 500"#, log_params),
    ];
    for (job, q, params) in queries.into_iter().take(if all { 3 } else { 1 }) {
        let bytes = input.bytes(Some(job));
        let mut runs = 0u32;
        let mut total = Duration::ZERO;
        let mut result = None;
        while runs < 3 || total.as_secs_f64() < a.min_cpu {
            let (r, took) = cpu(|| engine.query(q, params).expect("query"));
            runs += 1;
            total += took;
            result = Some(r);
        }
        let result = result.expect("ran at least once");
        let mean = total / runs;
        let (size, check) = check(job, &result, input, &metric_params);
        println!(
            "query {q}\n  {runs} runs, {:.3} ms CPU each: {:.2} GB/s per core over {:.1} MB of {job} lines; \
             result: {size}; check: {}",
            mean.as_secs_f64() * 1e3,
            bytes as f64 / 1e9 / mean.as_secs_f64(),
            bytes as f64 / 1e6,
            match &check {
                Ok(s) => format!("ok ({s})"),
                Err(e) => format!("FAILED: {e}"),
            }
        );
        failed |= check.is_err();
    }
    failed
}

/// Result size, and its comparison with a naive evaluation.
fn check(
    job: &str,
    r: &QueryResult,
    input: &Input,
    metric: &QueryParams,
) -> (String, Result<String, String>) {
    match job {
        "nginx" => {
            let QueryResult::Streams(s) = r else { return ("?".into(), Err("not streams".into())) };
            let got: Vec<(i64, &str)> =
                s.iter().flat_map(|s| s.entries.iter().map(|e| (e.ts, e.line.as_str()))).collect();
            let mut want: Vec<(i64, &str)> = input
                .job("nginx")
                .filter(|e| e.2.contains("queue full"))
                .map(|e| (e.1, e.2.as_str()))
                .collect();
            let mut g = got.clone();
            g.sort();
            want.sort();
            let size = format!("{} entries in {} streams", got.len(), s.len());
            if g == want {
                (size, Ok(format!("same {} entries as str::contains over the input", want.len())))
            } else {
                (size, Err(format!("{} entries, naive {}", g.len(), want.len())))
            }
        }
        "app-logfmt" => {
            let QueryResult::Matrix(m) = r else { return ("?".into(), Err("not a matrix".into())) };
            let size = format!(
                "{} series, {} points",
                m.len(),
                m.iter().map(|s| s.points.len()).sum::<usize>()
            );
            // Naive: lines whose logfmt `level` is `error`, counted per
            // 5m window ending at each step.
            let mut errs: Vec<i64> = input
                .job("app-logfmt")
                .filter(|e| {
                    e.2.split(' ').find_map(|kv| kv.strip_prefix("level=")) == Some("error")
                })
                .map(|e| e.1)
                .collect();
            errs.sort_unstable();
            let mut want = Vec::new();
            let mut t = metric.start;
            while t <= metric.end {
                let n = errs.partition_point(|x| *x <= t)
                    - errs.partition_point(|x| *x <= t - 300_000_000_000);
                if n > 0 {
                    want.push((t, n as f64));
                }
                t += metric.step;
            }
            let want_labels = Labels::from_pairs([("level", "error")]);
            match m.as_slice() {
                [s] if s.labels == want_labels && s.points == want => (
                    size,
                    Ok(format!(
                        "{} error lines, same counts per step as a naive count",
                        errs.len()
                    )),
                ),
                _ => (size, Err(format!("naive: one series {{level=\"error\"}} with {want:?}"))),
            }
        }
        _ => {
            let QueryResult::Streams(s) = r else { return ("?".into(), Err("not streams".into())) };
            let mut got: BTreeMap<i64, usize> = BTreeMap::new();
            for st in s {
                for e in &st.entries {
                    *got.entry(e.ts).or_default() += 1;
                }
            }
            let mut want: BTreeMap<i64, usize> = BTreeMap::new();
            for e in input.job("app-json") {
                let v: serde_json::Value = serde_json::from_str(&e.2).unwrap_or_default();
                if v["status"].as_f64().is_some_and(|x| x >= 500.0) {
                    *want.entry(e.1).or_default() += 1;
                }
            }
            let n: usize = got.values().sum();
            let size = format!("{n} entries in {} streams", s.len());
            if got == want {
                (size, Ok(format!("same {n} timestamps as a serde_json filter over the input")))
            } else {
                (size, Err(format!("{n} entries, naive {}", want.values().sum::<usize>())))
            }
        }
    }
}
