//! Scale benchmark: many HTTP monitors against a local server, for a bounded
//! time; prints the probe process's CPU time and peak RSS.
//!
//! ```text
//! cargo run --release -p probe --example bench_scale -- [MONITORS] [INTERVAL_S] [SECONDS] [WORKERS]
//! ```
//!
//! Defaults: 10000 monitors, 20 s interval, 60 s run, 16 workers. The HTTP
//! server runs in a child process (this same binary with `--serve`), so the
//! figures read from `/proc/self/stat` (utime + stime) and
//! `/proc/self/status` (VmHWM) are the monitor's alone. Heartbeats are
//! written to a history file in a temporary directory, as in real use.

use probe::{Config, Event, HistoryConfig, MonitorConfig, MonitorKind, Runner, RunnerOptions, Status};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn serve() {
    let server = match tiny_http::Server::http("127.0.0.1:0") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench server: {e}");
            std::process::exit(1);
        }
    };
    let port = server.server_addr().to_ip().map(|a| a.port()).unwrap_or(0);
    println!("{port}");
    let _ = std::io::stdout().flush();
    for req in server.incoming_requests() {
        let _ = req.respond(tiny_http::Response::from_string("ok"));
    }
}

/// (utime + stime) in seconds for `/proc/<pid>/stat`, assuming USER_HZ = 100
/// (fixed on Linux for /proc).
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return f64::NAN };
    // Fields after the parenthesised command name; utime and stime are 14th and 15th overall.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { return f64::NAN };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

fn status_kb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        serve();
        return;
    }
    let arg = |i: usize, d: u64| args.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
    let (n, interval, seconds, workers) = (arg(1, 10_000), arg(2, 20), arg(3, 60), arg(4, 16));

    let exe = std::env::current_exe().expect("own executable path");
    let mut child = Command::new(exe).arg("--serve").stdout(Stdio::piped()).spawn().expect("start server");
    let mut line = String::new();
    let out = child.stdout.take().expect("piped stdout");
    BufReader::new(out).read_line(&mut line).expect("server port");
    let port: u16 = line.trim().parse().expect("server port number");
    let server_pid = child.id().to_string();

    let dir = tempfile::tempdir().expect("temp dir");
    let monitors: Vec<MonitorConfig> = (0..n)
        .map(|i| {
            let yaml = format!(
                "monitors:\n  - {{name: m{i}, type: http, url: 'http://127.0.0.1:{port}/m{i}', interval: {interval}}}\n"
            );
            let mut c = Config::from_yaml_str(&yaml).expect("valid monitor");
            c.monitors.remove(0)
        })
        .collect();
    assert!(monitors.iter().all(|m| matches!(m.kind, MonitorKind::Http(_))));
    let config = Config {
        monitors,
        workers: workers as usize,
        history: HistoryConfig { path: Some(dir.path().join("beats.jsonl")), ..HistoryConfig::default() },
    };

    let cpu0 = cpu_seconds("self");
    let srv0 = cpu_seconds(&server_pid);
    let start = Instant::now();
    let mut runner = Runner::new(&config, RunnerOptions { spread_start: true, ..RunnerOptions::default() })
        .expect("runner starts");
    let (mut beats, mut up, mut ping_sum, mut ping_n) = (0u64, 0u64, 0u64, 0u64);
    let mut other = std::collections::BTreeMap::<String, u64>::new();
    runner.run(Some(start + Duration::from_secs(seconds)), |e| {
        if let Event::Beat { beat, .. } = e {
            beats += 1;
            if beat.status == Status::Up {
                up += 1;
            } else {
                *other.entry(beat.msg.chars().take(60).collect()).or_default() += 1;
            }
            if let Some(p) = beat.ping_ms {
                ping_sum += p;
                ping_n += 1;
            }
        }
    });
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self") - cpu0;
    let srv = cpu_seconds(&server_pid) - srv0;
    let hwm = status_kb("VmHWM:");
    let rss = status_kb("VmRSS:");
    let history_len = std::fs::metadata(dir.path().join("beats.jsonl")).map(|m| m.len()).unwrap_or(0);
    runner.shutdown().expect("clean shutdown");
    let _ = child.kill();
    let _ = child.wait();

    println!("monitors:            {n} http, interval {interval} s, {workers} workers");
    println!("run time:            {wall:.1} s");
    println!("beats:               {beats} ({:.0}/s expected {:.0}/s), {up} UP", beats as f64 / wall, n as f64 / interval as f64);
    if !other.is_empty() {
        println!("non-UP messages:     {other:?}");
    }
    println!("mean response:       {:.2} ms", ping_sum as f64 / ping_n.max(1) as f64);
    println!("probe CPU time:      {cpu:.2} s = {:.1}% of one core", 100.0 * cpu / wall);
    println!("server CPU time:     {srv:.2} s (child process, not included above)");
    println!("probe peak RSS:      {:.1} MB (VmHWM), current {:.1} MB", hwm / 1024.0, rss / 1024.0);
    println!("history file:        {:.1} MB", history_len as f64 / 1e6);
}
