//! `all-in-one`: the whole stack on one machine from one command, with a
//! local data directory:
//!
//! - the node exporter (host metrics) on `--exporter-listen`;
//! - the metrics server (tsdb + Prometheus API + remote-write receiver +
//!   the dashboard page) on `--listen`, scraping the exporter, itself and
//!   the uptime monitor every `--scrape-interval`;
//! - the log server (logstore + Loki push and query API) on `--logs-listen`;
//! - the uptime monitor (probe) checking the stack's own endpoints, or the
//!   monitors of `--probe-config`; state changes are printed (for
//!   Mattermost notifications run `probe --config FILE --webhook URL`).
//!
//! Open `http://<listen>/dashboard` in a browser.

use anyhow::Context;
use clap::Parser;
use examples::http::{Handler, Request, Response, Server, ServerConfig};
use examples::log_server::{serve as serve_logs, Limits, LogServer, LogSink, LogstoreSink};
use examples::metrics_server::{handler as metrics_handler, MetricsStore};
use examples::scrape::{self, ScrapeManager};
use std::path::PathBuf;
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
#[command(version, about = "The whole monitoring stack in one process")]
struct Args {
    /// Data directory (tsdb under metrics/, probe history under probe/).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Metrics server, Prometheus API and dashboard.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: String,
    /// Node exporter.
    #[arg(long, default_value = "127.0.0.1:9100")]
    exporter_listen: String,
    /// Log server (Loki API).
    #[arg(long, default_value = "127.0.0.1:3100")]
    logs_listen: String,
    /// How often to scrape.
    #[arg(long, default_value = "15s")]
    scrape_interval: String,
    /// Uptime monitors (probe YAML); default: the stack's own endpoints.
    #[arg(long)]
    probe_config: Option<PathBuf>,
    /// Keep metrics this long.
    #[arg(long, default_value = "15d")]
    retention_time: String,
}

fn main() -> anyhow::Result<()> {
    alloc::tune();
    let args = Args::parse();
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let interval = scrape::config::parse_duration(&args.scrape_interval)
        .with_context(|| format!("invalid --scrape-interval {:?}", args.scrape_interval))?;
    let retention = scrape::config::parse_duration(&args.retention_time)
        .with_context(|| format!("invalid --retention-time {:?}", args.retention_time))?;

    // Node exporter.
    let registry = Arc::new(exporter::RegistryBuilder::new().build().context("configuring collectors")?);
    let reg = Arc::clone(&registry);
    let exporter_handler: Handler = Arc::new(move |req: &Request| {
        if req.path != "/metrics" {
            return Response::text(404, "404 page not found\n");
        }
        let format = exporter::negotiate(req.header("accept"));
        let mut out = Vec::new();
        match reg.write(format, &mut out) {
            Ok(()) => Response::new(200, format.content_type(), out),
            Err(e) => Response::text(500, format!("{e}\n")),
        }
    });
    let exporter_srv = Server::start(&args.exporter_listen, ServerConfig { threads: 2, ..Default::default() }, exporter_handler)?;

    // Log server.
    let logs_dir = args.data_dir.join("logs");
    let store = logstore::Store::open(&logs_dir, logstore::Options::default())
        .with_context(|| format!("opening the log store in {}", logs_dir.display()))?;
    let sink: Arc<dyn LogSink> = Arc::new(LogstoreSink::new(store));
    let logs_srv = serve_logs(&args.logs_listen, ServerConfig { threads: 4, ..Default::default() }, LogServer::new(sink, Limits::default()))?;

    // Uptime monitor.
    let probe_yaml = match &args.probe_config {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        None => default_monitors(&args),
    };
    let probe_cfg = probe::Config::from_yaml_str(&probe_yaml).context("probe config")?;
    let mut runner = probe::Runner::new(&probe_cfg, probe::RunnerOptions::default()).context("starting monitors")?;
    let probe_handle = runner.handle();
    let probe_thread = std::thread::Builder::new().name("probe".into()).spawn(move || {
        runner.run(None, report_probe_event);
        let _ = runner.shutdown();
    })?;

    // Metrics server, scraping everything above.
    let opts = tsdb::Options::builder()
        .retention_time(Some(retention))
        .background_compaction(Some(Duration::from_secs(60)))
        .build();
    let dir = args.data_dir.join("metrics");
    let db = tsdb::Db::open(&dir, opts).with_context(|| format!("opening tsdb in {}", dir.display()))?;
    let store = Arc::new(MetricsStore::new(db));
    let engine = Arc::new(promql::Engine::default());
    let inner = metrics_handler(store.clone(), engine);
    let ph = probe_handle.clone();
    let handler: Handler = Arc::new(move |req: &Request| match req.path.as_str() {
        "/probe/metrics" => match ph.metrics_text() {
            Some(t) => Response::new(200, "text/plain; version=0.0.4; charset=utf-8", t.into_bytes()),
            None => Response::text(503, "monitor stopped\n"),
        },
        _ => inner(req),
    });
    let server = Server::start(&args.listen, ServerConfig::default(), handler)?;
    let secs = interval.as_secs().max(1);
    let scrape_yaml = format!(
        "global: {{scrape_interval: {secs}s, scrape_timeout: {t}s}}\nscrape_configs:\n  - job_name: node\n    static_configs: [{{targets: ['{e}']}}]\n  - job_name: metrics-server\n    static_configs: [{{targets: ['{l}']}}]\n  - job_name: log-server\n    static_configs: [{{targets: ['{g}']}}]\n  - job_name: uptime\n    metrics_path: /probe/metrics\n    static_configs: [{{targets: ['{l}']}}]\n",
        t = secs.min(10),
        e = args.exporter_listen,
        l = args.listen,
        g = args.logs_listen,
    );
    let cfg = scrape::Config::parse(&scrape_yaml, "built-in scrape config")?;
    let scraper = ScrapeManager::start(scrape::targets(&cfg)?, store.clone());

    eprintln!("all-in-one: node exporter on http://{}/metrics", args.exporter_listen);
    eprintln!("all-in-one: Prometheus API on http://{}/api/v1/", args.listen);
    eprintln!("all-in-one: Loki API on http://{}/loki/api/v1/", args.logs_listen);
    eprintln!("all-in-one: dashboard on http://{}/dashboard", args.listen);
    eprintln!("all-in-one: data in {}", args.data_dir.display());
    server.join();
    scraper.stop();
    probe_handle.stop();
    let _ = probe_thread.join();
    exporter_srv.shutdown();
    logs_srv.shutdown();
    Ok(())
}

fn default_monitors(args: &Args) -> String {
    let history = args.data_dir.join("probe").join("beats.jsonl");
    if let Some(p) = history.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    format!(
        "history: {{path: '{h}'}}\nmonitors:\n  - {{name: metrics-server, type: http, url: 'http://{l}/-/ready', interval: 30}}\n  - {{name: node-exporter, type: keyword, url: 'http://{e}/metrics', keyword: node_load1, interval: 30}}\n  - {{name: log-server, type: http, url: 'http://{g}/ready', interval: 30}}\n",
        h = history.display(),
        l = args.listen,
        e = args.exporter_listen,
        g = args.logs_listen,
    )
}

fn report_probe_event(ev: &probe::Event) {
    match ev {
        probe::Event::Beat { monitor, kind, beat } if beat.important => {
            eprintln!("uptime: {monitor} ({kind}) is {:?}: {}", beat.status, beat.msg);
        }
        probe::Event::CertExpiry { monitor, days_left, .. } => {
            eprintln!("uptime: certificate of {monitor} expires in {days_left} days");
        }
        probe::Event::HistoryError(e) => eprintln!("uptime: history: {e}"),
        _ => {}
    }
}
