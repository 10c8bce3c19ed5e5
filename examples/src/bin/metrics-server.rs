//! `metrics-server`: a Prometheus-compatible metrics store. Serves the
//! Prometheus HTTP query API and a remote-write receiver over a local tsdb,
//! and scrapes the targets of a Prometheus-style config file.

use anyhow::Context;
use clap::Parser;
use examples::http::{Server, ServerConfig};
use examples::metrics_server::{handler, MetricsStore};
use examples::remote_write::{RemoteWriteOptions, RemoteWriter};
use examples::scrape::{self, ScrapeManager, ScrapeSink};
use model::Labels;
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
    /// Data directory of the tsdb.
    #[arg(long, default_value = "data/metrics")]
    data_dir: std::path::PathBuf,
    /// Address to serve the HTTP API on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: String,
    /// Prometheus-style YAML with scrape_configs (and remote_write).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Drop data older than this (e.g. 15d; Prometheus's default).
    #[arg(long, default_value = "15d")]
    retention_time: String,
    /// Also cap the size of blocks on disk (bytes, e.g. 10000000000).
    #[arg(long)]
    retention_size: Option<u64>,
    /// HTTP threads kept waiting for connections (more start while all
    /// are busy, one per connection).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Evaluate with Prometheus 2.x windows (a sample exactly at a range
    /// window's or the lookback's start counts), to compare results with a
    /// 2.x server; the default is Prometheus 3's left-open windows.
    #[arg(long)]
    query_closed_windows: bool,
    /// Threads one query may use to read large selections (default: the
    /// available cores, at most 4; 1 reads on the request's thread only).
    #[arg(long)]
    query_parallelism: Option<usize>,
}

/// Sends every scraped batch to the local store and to remote-write queues.
struct Fanout(Vec<Arc<dyn ScrapeSink>>);

impl ScrapeSink for Fanout {
    fn append(&self, batch: &[(Labels, i64, f64)]) -> Result<usize, String> {
        let mut first = Ok(0);
        for (i, s) in self.0.iter().enumerate() {
            let r = s.append(batch);
            if i == 0 {
                first = r;
            }
        }
        first
    }

    fn metadata(&self, md: Vec<model::MetricMetadata>) {
        for s in &self.0 {
            s.metadata(md.clone());
        }
    }
}

fn main() -> anyhow::Result<()> {
    alloc::tune();
    let args = Args::parse();
    let retention = scrape::config::parse_duration(&args.retention_time)
        .with_context(|| format!("invalid --retention-time {:?}", args.retention_time))?;
    let opts = tsdb::Options::builder()
        .retention_time(Some(retention))
        .retention_size(args.retention_size)
        .background_compaction(Some(Duration::from_secs(60)))
        .build();
    let db = tsdb::Db::open(&args.data_dir, opts)
        .with_context(|| format!("opening tsdb in {}", args.data_dir.display()))?;
    if let Some(r) = db.repair_report() {
        eprintln!("metrics-server: repaired torn WAL tail: {r}");
    }
    let store = Arc::new(MetricsStore::new(db));
    let defaults = promql::EngineOptions::default();
    let engine = Arc::new(promql::Engine::new(promql::EngineOptions {
        closed_windows: args.query_closed_windows,
        parallelism: args.query_parallelism.unwrap_or(defaults.parallelism).max(1),
        ..defaults
    }));

    let mut scraper = None;
    let mut writers = Vec::new();
    if let Some(path) = &args.config {
        let cfg = scrape::Config::load(path)?;
        let mut sinks: Vec<Arc<dyn ScrapeSink>> = vec![store.clone()];
        for rw in &cfg.remote_write {
            let mut o = RemoteWriteOptions::new(&rw.url);
            o.capacity = rw.queue_config.capacity;
            o.max_samples_per_send = rw.queue_config.max_samples_per_send;
            o.timeout = rw.remote_timeout.unwrap_or(o.timeout);
            o.relabel = rw.write_relabel_configs.clone();
            for r in &mut o.relabel {
                r.compile().map_err(|e| anyhow::anyhow!("remote_write {}: {e}", rw.url))?;
            }
            o.external_labels = cfg.global.external_labels.clone();
            let w = RemoteWriter::start(o);
            writers.push(w.clone());
            sinks.push(Arc::new(w));
        }
        let targets = scrape::targets(&cfg)?;
        eprintln!("metrics-server: scraping {} targets", targets.len());
        scraper = Some(ScrapeManager::start(targets, Arc::new(Fanout(sinks))));
    }

    let server = Server::start(
        &args.listen,
        ServerConfig { threads: args.threads, ..Default::default() },
        handler(store.clone(), engine),
    )?;
    eprintln!("metrics-server: listening on http://{}", server.local_addr().map(|a| a.to_string()).unwrap_or(args.listen.clone()));
    server.join();
    if let Some(s) = scraper {
        s.stop();
    }
    for w in writers {
        w.stop();
    }
    Ok(())
}
