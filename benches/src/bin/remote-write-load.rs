//! Load generator for remote-write receivers: sends `--series` series ×
//! `--samples` samples each, in requests of `--batch` samples, from
//! `--threads` threads, and prints samples per second.
//!
//! `cargo run --release -p benches --bin remote-write-load -- --url http://127.0.0.1:9090/api/v1/write`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tsdb::remote::{encode_write_request, TimeSeries, WriteRequest};

struct Args {
    url: String,
    series: usize,
    samples: usize,
    batch: usize,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { url: String::new(), series: 10_000, samples: 120, batch: 2000, threads: 4 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = val()?,
            "--series" => a.series = val()?.parse().map_err(|e| format!("--series: {e}"))?,
            "--samples" => a.samples = val()?.parse().map_err(|e| format!("--samples: {e}"))?,
            "--batch" => a.batch = val()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--threads" => a.threads = val()?.parse().map_err(|e| format!("--threads: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.url.is_empty() {
        return Err("--url is required".into());
    }
    Ok(a)
}

fn labels(i: usize) -> Vec<tsdb::remote::Label> {
    let l = |n: &str, v: String| tsdb::remote::Label { name: n.into(), value: v };
    vec![
        l("__name__", format!("load_metric_{}", i % 50)),
        l("instance", format!("host-{:05}:9100", i / 100)),
        l("job", "load".into()),
        l("series", (i % 100).to_string()),
    ]
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("remote-write-load: {e}");
            std::process::exit(2);
        }
    };
    // Build all request bodies first so the timing measures the receiver.
    // Each request carries `batch` samples: a slice of series at one step,
    // and steps advance in order so every series stays in time order.
    // Recent timestamps: receivers reject samples far older than their head.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let start_ts: i64 = now_ms - args.samples as i64 * 15_000;
    let per_series_in_batch = 1usize;
    let series_per_req = (args.batch / per_series_in_batch).max(1).min(args.series);
    let mut bodies: Vec<Vec<Vec<u8>>> = vec![Vec::new(); args.threads];
    let mut total = 0u64;
    for step in 0..args.samples {
        let t = start_ts + step as i64 * 15_000;
        for (k, chunk_start) in (0..args.series).step_by(series_per_req).enumerate() {
            let end = (chunk_start + series_per_req).min(args.series);
            let req = WriteRequest {
                timeseries: (chunk_start..end)
                    .map(|i| TimeSeries {
                        labels: labels(i),
                        samples: vec![tsdb::remote::Sample { value: (i * 7 + step) as f64 * 0.5, timestamp: t }],
                        exemplars: vec![],
                    })
                    .collect(),
                metadata: vec![],
            };
            total += (end - chunk_start) as u64;
            // The same series always go to the same thread, so each series'
            // samples arrive in order.
            bodies[k % args.threads].push(encode_write_request(&req));
        }
    }
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let handles: Vec<_> = bodies
        .into_iter()
        .map(|bs| {
            let url = args.url.clone();
            let failed = Arc::clone(&failed);
            let sent = Arc::clone(&sent);
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
                for b in bs {
                    let r = agent
                        .post(&url)
                        .set("Content-Type", "application/x-protobuf")
                        .set("Content-Encoding", "snappy")
                        .set("X-Prometheus-Remote-Write-Version", "0.1.0")
                        .send_bytes(&b);
                    match r {
                        Ok(_) => sent.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "samples={total} requests_ok={} requests_failed={} seconds={secs:.3} samples_per_second={:.0}",
        sent.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        total as f64 / secs
    );
}
