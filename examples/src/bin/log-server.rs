//! `log-server`: a Loki-compatible log store. Serves Loki's HTTP API
//! (push, query, query_range, labels, series, index/stats, tail) over a
//! logstore in `--data-dir`.

use anyhow::Context;
use clap::Parser;
use examples::http::ServerConfig;
use examples::log_server::{now_ns, serve, Limits, LogServer, LogSink, LogstoreSink, MemSink};
use std::sync::Arc;
use std::time::Duration;

/// mimalloc keeps memory a query freed for the next one, per thread,
/// where glibc's allocator handed much of it back to the kernel and every
/// query faulted it in again (measured: about 20% of a large range query).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's settings, shared by the server binaries (kept out of the
/// `examples` library, so that binaries on the system allocator do not
/// link mimalloc: its constructor runs even unused).
#[path = "shared/alloc.rs"]
mod alloc;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Data directory of the log store.
    #[arg(long, default_value = "data/logs")]
    data_dir: std::path::PathBuf,
    /// Address to serve the HTTP API on.
    #[arg(long, default_value = "127.0.0.1:3100")]
    listen: String,
    /// HTTP threads kept waiting for connections (more start while all
    /// are busy, one per connection; tails get their own threads).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Keep everything in memory instead of the data directory (nothing
    /// survives a restart).
    #[arg(long)]
    memory: bool,
    /// Delete entries older than this (e.g. 744h, 30d); 0 keeps everything.
    #[arg(long, default_value = "0")]
    retention_period: String,
    /// Longest accepted line in bytes (0: no limit).
    #[arg(long, default_value_t = 256 << 10)]
    max_line_size: usize,
    /// Refuse entries older than this (Loki's reject_old_samples_max_age);
    /// 0 accepts any age.
    #[arg(long, default_value = "168h")]
    reject_old_samples_max_age: String,
}

fn duration(flag: &str, v: &str) -> anyhow::Result<Option<Duration>> {
    if v.trim() == "0" {
        return Ok(None);
    }
    examples::scrape::config::parse_duration(v)
        .map(Some)
        .with_context(|| format!("invalid --{flag} {v:?} (e.g. 168h, 30d, 0)"))
}

fn main() -> anyhow::Result<()> {
    alloc::tune();
    let args = Args::parse();
    let max_age = duration("reject-old-samples-max-age", &args.reject_old_samples_max_age)?;
    let retention = duration("retention-period", &args.retention_period)?;
    let limits = Limits {
        max_line_size: args.max_line_size,
        reject_old_samples_max_age: max_age.map(|d| d.as_nanos().min(i64::MAX as u128) as i64),
        ..Limits::default()
    };
    let sink: Arc<dyn LogSink> = if args.memory {
        Arc::new(MemSink::new())
    } else {
        let opts = logstore::Options::builder().max_line_size(args.max_line_size).retention(retention).build();
        let store = logstore::Store::open(&args.data_dir, opts)
            .with_context(|| format!("opening the log store in {}", args.data_dir.display()))?;
        let st = store.stats();
        eprintln!("log-server: opened {} ({} streams, {} entries)", args.data_dir.display(), st.streams, st.entries);
        let sink = Arc::new(LogstoreSink::new(store));
        if retention.is_some() {
            let s = sink.clone();
            std::thread::Builder::new().name("retention".into()).spawn(move || loop {
                if let Err(e) = s.store().apply_retention(now_ns()) {
                    eprintln!("log-server: retention: {e}");
                }
                std::thread::sleep(Duration::from_secs(600));
            })?;
        }
        sink
    };
    let server = serve(&args.listen, ServerConfig { threads: args.threads, ..Default::default() }, LogServer::new(sink, limits))?;
    eprintln!(
        "log-server: listening on http://{}",
        server.local_addr().map(|a| a.to_string()).unwrap_or(args.listen.clone())
    );
    server.join();
    Ok(())
}
