//! Log store benchmarks over `shared/bench/gen_logs.py 24 20000` (480k
//! lines of nginx, logfmt and JSON logs in 24 streams, as Loki push
//! bodies):
//!
//! - `logstore/decode_push_json_cpu`: decoding every body with
//!   log-server's push decoder (`logql::push::decode_push`, JSON), the
//!   first half of the push path (throughput in raw line bytes);
//! - `logstore/ingest_*`: `Store::push` of every decoded body into a fresh
//!   store (throughput in raw line bytes), without fsync and with the WAL
//!   fsynced per push (the default policy);
//! - `logstore/scan_*`: a line-filter scan — iterate every entry of
//!   `{job="nginx"}` over the whole range checking `contains("queue full")`
//!   (throughput in raw line bytes scanned), forward and backward;
//! - `logstore/scan_nginx_hinted_*`: the same scan with the filter pushed
//!   down as `LogSelectHints` (`select_with_hints`, as logql does for
//!   `|= "queue full"`): blocks are searched whole with memmem, and blocks
//!   whose trigram filter rules the literal out are skipped; `_no_filters`
//!   runs it on a store written without block filters (every block
//!   decompressed and searched).
//!
//! - `logstore/zstd_decode_only_cpu`: the baseline — decompressing the
//!   nginx lines cut into blocks of up to 256 KiB as the store does, compressed at its default
//!   level, without parsing or iterating.
//!
//! Benchmarks named `..._cpu` measure the calling thread's CPU time
//! (Linux `/proc/thread-self/schedstat`) instead of wall time, so their
//! throughput is per core even when other processes compete for the CPUs;
//! the others measure wall time.
//!
//! The compression ratio of the flushed chunks is printed once. Set
//! `LOGSTORE_BENCH_LOGS` to an existing file to skip generating the data.
// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use logstore::{FsyncPolicy, Options, Store};
use model::{Direction, Labels, LogEntry, LogQueryable, LogSelectHints, Matcher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type Request = Vec<(Labels, Vec<LogEntry>)>;

/// The generated push bodies, or `None` (with a message) when the shared
/// generator is not beside the repository.
fn load() -> Option<(Vec<String>, Vec<Request>)> {
    let path = match std::env::var_os("LOGSTORE_BENCH_LOGS") {
        Some(p) => PathBuf::from(p),
        None => {
            let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/gen_logs.py");
            if !gen.exists() {
                eprintln!("skipped: ../shared/bench/gen_logs.py not found");
                return None;
            }
            let out = std::env::temp_dir().join("logstore-bench-logs-24-20000.jsonl");
            if !out.exists() {
                let data = std::process::Command::new("python3")
                    .arg(&gen)
                    .args(["24", "20000"])
                    .output()
                    .expect("running gen_logs.py");
                assert!(data.status.success(), "gen_logs.py failed");
                std::fs::write(&out, data.stdout).expect("writing generated logs");
            }
            out
        }
    };
    let text = std::fs::read_to_string(&path).expect("reading the generated logs");
    let bodies: Vec<String> =
        text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    let reqs = bodies.iter().map(|b| decode(b)).collect();
    Some((bodies, reqs))
}

/// Decodes a JSON push body with log-server's decoder.
fn decode(body: &str) -> Request {
    logql::push::decode_push(Some("application/json"), body.as_bytes(), usize::MAX)
        .expect("valid JSON push body")
        .into_iter()
        .map(|s| (s.labels, s.entries))
        .collect()
}

fn raw_bytes(reqs: &[Request], job: Option<&str>) -> u64 {
    reqs.iter()
        .flatten()
        .filter(|(l, _)| job.is_none_or(|j| l.get("job") == Some(j)))
        .flat_map(|(_, e)| e.iter().map(|x| x.line.len() as u64))
        .sum()
}

fn options(fsync: FsyncPolicy) -> Options {
    Options::builder().flush_interval(None).fsync(fsync).build()
}

/// CPU time consumed by the calling thread so far (sum_exec_runtime, in
/// ns, from `/proc/thread-self/schedstat`).
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(s.split_whitespace().next()?.parse().ok()?))
}

/// Wall or thread-CPU clock.
#[derive(Clone, Copy)]
enum Clock {
    Wall,
    Cpu,
}

impl Clock {
    fn measure(self, f: impl FnOnce()) -> Duration {
        match self {
            Clock::Wall => {
                let t = Instant::now();
                f();
                t.elapsed()
            }
            Clock::Cpu => {
                let a = thread_cpu().expect("/proc/thread-self/schedstat");
                f();
                thread_cpu().expect("/proc/thread-self/schedstat").saturating_sub(a)
            }
        }
    }
}

fn ingest(dir: &Path, reqs: &[Request], fsync: FsyncPolicy, clock: Clock) -> (Store, Duration) {
    let store = Store::open(dir, options(fsync)).expect("open");
    let took = clock.measure(|| {
        for r in reqs {
            let out = store.push(r).expect("push");
            assert!(out.rejected.is_empty(), "{:?}", out.rejected.first());
        }
    });
    (store, took)
}

fn scan(store: &Store, dir: Direction) -> (u64, u64) {
    let q = store.log_querier().expect("querier");
    let mut streams =
        q.select(&[Matcher::equal("job", "nginx")], i64::MIN, i64::MAX, dir).expect("select");
    let (mut n, mut hits) = (0u64, 0u64);
    for s in &mut streams {
        while let Some(e) = s.entries.next().expect("next") {
            n += 1;
            hits += u64::from(e.line.contains("queue full"));
        }
    }
    (n, hits)
}

/// The pushed-down scan: entries of `{job="nginx"}` containing "queue
/// full", as the store returns them with the hint.
fn scan_hinted(store: &Store) -> u64 {
    let q = store.log_querier().expect("querier");
    let hints = LogSelectHints::line_contains(["queue full"]);
    let mut streams = q
        .select_with_hints(
            &[Matcher::equal("job", "nginx")],
            i64::MIN,
            i64::MAX,
            Direction::Backward,
            &hints,
        )
        .expect("select");
    let mut hits = 0u64;
    for s in &mut streams {
        while let Some(e) = s.entries.next().expect("next") {
            hits += u64::from(e.line.contains("queue full"));
        }
    }
    hits
}

fn bench(c: &mut Criterion) {
    let Some((bodies, reqs)) = load() else { return };
    let total = raw_bytes(&reqs, None);
    let nginx = raw_bytes(&reqs, Some("nginx"));

    // One-off figures: compression ratio and push CPU time per zstd level.
    for level in [3, 4, 5] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut o = Options::builder();
        o.flush_interval(None).fsync(FsyncPolicy::Never).zstd_level(level);
        let store = Store::open(tmp.path(), o.build()).expect("open");
        let took = Clock::Cpu.measure(|| {
            for r in &reqs {
                store.push(r).expect("push");
            }
            store.flush().expect("flush");
        });
        let on_disk = tsdb::fs::dir_size(&tmp.path().join("chunks")).expect("size");
        eprintln!(
            "logstore: zstd level {level}: push + flush {:.0} MB/s per core (CPU time), ratio {:.2}x",
            total as f64 / 1e6 / took.as_secs_f64(),
            total as f64 / on_disk as f64
        );
    }
    // Default options from here on.
    let tmp = tempfile::tempdir().expect("tempdir");
    let (store, took) = ingest(tmp.path(), &reqs, FsyncPolicy::Never, Clock::Wall);
    let t = Instant::now();
    store.flush().expect("flush");
    let flush = t.elapsed();
    let st = store.stats();
    let on_disk = tsdb::fs::dir_size(&tmp.path().join("chunks")).expect("size");
    eprintln!(
        "logstore: {} entries, {:.1} MB raw lines ({:.1} MB nginx); push {:.2?} ({:.0} MB/s wall, no fsync), \
         flush {flush:.2?}; {} blocks, {:.2} MB compressed, {:.2} MB chunk files; ratio {:.2}x (blocks) {:.2}x (files)",
        st.entries,
        total as f64 / 1e6,
        nginx as f64 / 1e6,
        took,
        total as f64 / 1e6 / took.as_secs_f64(),
        st.blocks,
        st.compressed_bytes as f64 / 1e6,
        on_disk as f64 / 1e6,
        st.raw_bytes as f64 / st.compressed_bytes as f64,
        total as f64 / on_disk as f64,
    );
    let (n, hits) = scan(&store, Direction::Forward);
    eprintln!(
        "logstore: scan of {{job=\"nginx\"}} reads {n} entries, {hits} contain \"queue full\""
    );

    let mut g = c.benchmark_group("logstore");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Bytes(total));
    g.bench_function("decode_push_json_cpu", |b| {
        b.iter_custom(|iters| {
            Clock::Cpu.measure(|| {
                for _ in 0..iters {
                    for body in &bodies {
                        black_box(decode(body));
                    }
                }
            })
        })
    });
    let ingests = [
        ("ingest_no_fsync_cpu", FsyncPolicy::Never, Clock::Cpu),
        ("ingest_no_fsync", FsyncPolicy::Never, Clock::Wall),
        ("ingest_fsync_per_push", FsyncPolicy::Always, Clock::Wall),
    ];
    for (name, fsync, clock) in ingests {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut sum = Duration::ZERO;
                for _ in 0..iters {
                    let tmp = tempfile::tempdir().expect("tempdir");
                    let (store, took) = ingest(tmp.path(), &reqs, fsync, clock);
                    sum += took;
                    drop(store);
                }
                sum
            })
        });
    }
    g.throughput(Throughput::Bytes(nginx));
    let scans = [
        ("scan_nginx_forward_cpu", Direction::Forward, Clock::Cpu),
        ("scan_nginx_backward_cpu", Direction::Backward, Clock::Cpu),
        ("scan_nginx_forward", Direction::Forward, Clock::Wall),
    ];
    for (name, dir, clock) in scans {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                clock.measure(|| {
                    for _ in 0..iters {
                        black_box(scan(&store, dir));
                    }
                })
            })
        });
    }
    let tmp_bare = tempfile::tempdir().expect("tempdir");
    let bare = {
        let mut o = Options::builder();
        o.flush_interval(None).fsync(FsyncPolicy::Never).block_filters(false);
        let s = Store::open(tmp_bare.path(), o.build()).expect("open");
        for r in &reqs {
            s.push(r).expect("push");
        }
        s.flush().expect("flush");
        s
    };
    assert_eq!(scan_hinted(&store), hits, "hinted scan disagrees with the plain one");
    assert_eq!(
        scan_hinted(&bare),
        hits,
        "hinted scan without filters disagrees with the plain one"
    );
    for (name, s) in
        [("scan_nginx_hinted_cpu", &store), ("scan_nginx_hinted_no_filters_cpu", &bare)]
    {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                Clock::Cpu.measure(|| {
                    for _ in 0..iters {
                        black_box(scan_hinted(s));
                    }
                })
            })
        });
    }
    // Baseline: zstd decompression alone of the same lines in blocks cut
    // as the store's head cuts them (lines plus 4 bytes per entry up to
    // 256 KiB, so zstd picks the same parameter set), same level and
    // minimum match length as the store, same clock.
    let mut comp = zstd::bulk::Compressor::new(logstore::DEFAULT_ZSTD_LEVEL).expect("compressor");
    comp.set_parameter(zstd::zstd_safe::CParameter::MinMatch(7)).expect("min match");
    let mut blocks = Vec::new();
    let mut bufs: std::collections::HashMap<&Labels, (Vec<u8>, usize)> = Default::default();
    for (labels, entries) in reqs.iter().flatten().filter(|(l, _)| l.get("job") == Some("nginx")) {
        let (buf, n) = bufs.entry(labels).or_default();
        for e in entries {
            buf.extend_from_slice(e.line.as_bytes());
            *n += 1;
            if buf.len() + 4 * *n >= logstore::DEFAULT_BLOCK_SIZE {
                blocks.push((comp.compress(buf).expect("compress"), buf.len()));
                buf.clear();
                *n = 0;
            }
        }
    }
    for (buf, _) in bufs.values().filter(|b| !b.0.is_empty()) {
        blocks.push((comp.compress(buf).expect("compress"), buf.len()));
    }
    g.bench_function("zstd_decode_only_cpu", |b| {
        let mut dctx = zstd::bulk::Decompressor::new().expect("dctx");
        let mut out: Vec<u8> = Vec::new();
        b.iter_custom(|iters| {
            Clock::Cpu.measure(|| {
                for _ in 0..iters {
                    for (c, n) in &blocks {
                        out.clear();
                        out.reserve(*n);
                        black_box(dctx.decompress_to_buffer(c, &mut out).expect("decompress"));
                    }
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
