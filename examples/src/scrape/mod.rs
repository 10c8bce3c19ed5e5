//! Scraping Prometheus targets: a [`Config`] of jobs becomes [`Target`]s,
//! each scraped on its interval by its own thread; samples (plus `up`,
//! `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `scrape_samples_post_metric_relabeling` and `scrape_series_added`) go to a
//! [`ScrapeSink`], with staleness markers when a series or a target
//! disappears, as Prometheus does.

pub mod config;
pub mod relabel;

pub use config::{Config, ConfigError, ScrapeConfig};
pub use relabel::{relabel, RelabelConfig};

use model::exposition::{Entry, Format, Parser};
use model::{stale_nan, Labels, MetricMetadata};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where scraped samples go (a tsdb, a remote-write queue, both).
pub trait ScrapeSink: Send + Sync {
    /// Appends one scrape's samples as one batch; returns how many were
    /// accepted. Out-of-order or duplicate samples may be rejected per
    /// sample without failing the batch.
    fn append(&self, batch: &[(Labels, i64, f64)]) -> Result<usize, String>;

    /// Metric metadata seen in a scrape (HELP/TYPE/UNIT).
    fn metadata(&self, _md: Vec<MetricMetadata>) {}
}

/// The current time in ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// One target to scrape, with everything its loop needs.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL scraped.
    pub url: String,
    /// `job`, `instance` and static labels.
    pub labels: Labels,
    /// Scrape interval.
    pub interval: Duration,
    /// Scrape timeout.
    pub timeout: Duration,
    /// Keep scraped labels on conflict with target labels.
    pub honor_labels: bool,
    /// Keep scraped timestamps.
    pub honor_timestamps: bool,
    /// Relabelling of scraped samples.
    pub metric_relabel: Vec<RelabelConfig>,
    /// Most samples per scrape (0 = none).
    pub sample_limit: usize,
}

/// Expands a configuration into targets (static configs, after target
/// relabelling). Relabel rules come back compiled.
pub fn targets(cfg: &Config) -> Result<Vec<Target>, ConfigError> {
    let mut out = Vec::new();
    for sc in &cfg.scrape_configs {
        let compile = |rules: &[RelabelConfig], field| -> Result<Vec<RelabelConfig>, ConfigError> {
            let mut v = rules.to_vec();
            for r in &mut v {
                r.compile().map_err(|message| ConfigError::Invalid { job: sc.job_name.clone(), field, message })?;
            }
            Ok(v)
        };
        let target_rules = compile(&sc.relabel_configs, "relabel_configs")?;
        let metric_rules = compile(&sc.metric_relabel_configs, "metric_relabel_configs")?;
        for st in &sc.static_configs {
            for addr in &st.targets {
                let mut b = model::LabelsBuilder::new();
                for (k, v) in &st.labels {
                    b.set(k.clone(), v.clone());
                }
                b.set("job", sc.job_name.clone());
                b.set("__address__", addr.clone());
                b.set("__scheme__", sc.scheme.clone());
                b.set("__metrics_path__", sc.metrics_path.clone());
                let Some(l) = relabel(&b.build(), &target_rules) else { continue };
                let address = l.get("__address__").unwrap_or(addr).to_string();
                let scheme = l.get("__scheme__").unwrap_or(&sc.scheme).to_string();
                let path = l.get("__metrics_path__").unwrap_or(&sc.metrics_path).to_string();
                let mut query = String::new();
                for (k, vs) in &sc.params {
                    for v in vs {
                        query.push(if query.is_empty() { '?' } else { '&' });
                        query.push_str(&format!("{k}={v}"));
                    }
                }
                let mut final_labels = l.builder();
                if final_labels.get("instance").is_none() {
                    final_labels.set("instance", address.clone());
                }
                // Labels starting with "__" are dropped after relabelling.
                let built = final_labels.build();
                let public: Labels = built.iter().filter(|l| !l.name.starts_with("__")).cloned().collect();
                out.push(Target {
                    url: format!("{scheme}://{address}{path}{query}"),
                    labels: public,
                    interval: cfg.interval(sc),
                    timeout: cfg.timeout(sc),
                    honor_labels: sc.honor_labels,
                    honor_timestamps: sc.honor_timestamps,
                    metric_relabel: metric_rules.clone(),
                    sample_limit: sc.sample_limit,
                });
            }
        }
    }
    Ok(out)
}

/// The result of one scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeReport {
    /// Whether the scrape succeeded.
    pub up: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// Samples in the response.
    pub scraped: usize,
    /// Samples left after metric relabelling.
    pub post_relabel: usize,
    /// Series not seen in the previous scrape.
    pub series_added: usize,
    /// Series that went stale (marked with StaleNaN).
    pub stale: usize,
}

/// The state a target's loop keeps between scrapes.
#[derive(Debug, Default)]
pub struct ScrapeState {
    /// Series written by the previous scrape (for staleness).
    prev: HashSet<Labels>,
    /// Raw series text → labels after target labels and relabelling
    /// (`None` = dropped): most scrapes repeat the same series.
    cache: HashMap<String, Option<Labels>>,
}

/// Scrapes once at `ts` (ms), sending samples and report series to `sink`.
pub fn scrape_once(
    agent: &ureq::Agent,
    target: &Target,
    state: &mut ScrapeState,
    sink: &dyn ScrapeSink,
    ts: i64,
) -> ScrapeReport {
    let started = Instant::now();
    let fetched = fetch(agent, target);
    let mut batch: Vec<(Labels, i64, f64)> = Vec::new();
    let mut report = ScrapeReport { up: false, error: None, scraped: 0, post_relabel: 0, series_added: 0, stale: 0 };
    let mut current: HashSet<Labels> = HashSet::new();
    match fetched.and_then(|(body, format)| parse_into(target, state, &body, format, ts, &mut batch, sink)) {
        Ok(scraped) => {
            report.scraped = scraped;
            report.post_relabel = batch.len();
            if target.sample_limit > 0 && batch.len() > target.sample_limit {
                report.error = Some(format!("sample limit exceeded: {} > {}", batch.len(), target.sample_limit));
                batch.clear();
            } else {
                report.up = true;
                for (l, _, _) in &batch {
                    if !state.prev.contains(l) {
                        report.series_added += 1;
                    }
                    current.insert(l.clone());
                }
            }
        }
        Err(e) => report.error = Some(e),
    }
    // Series that were there last time and are not now get a stale marker.
    for l in state.prev.iter() {
        if !current.contains(l) {
            batch.push((l.clone(), ts, stale_nan()));
            report.stale += 1;
        }
    }
    state.prev = current;
    let duration = started.elapsed().as_secs_f64();
    let report_series = [
        ("up", if report.up { 1.0 } else { 0.0 }),
        ("scrape_duration_seconds", duration),
        ("scrape_samples_scraped", report.scraped as f64),
        ("scrape_samples_post_metric_relabeling", report.post_relabel as f64),
        ("scrape_series_added", report.series_added as f64),
    ];
    for (name, v) in report_series {
        let mut b = target.labels.builder();
        b.set("__name__", name);
        batch.push((b.build(), ts, v));
    }
    if let Err(e) = sink.append(&batch) {
        report.error.get_or_insert(format!("storing samples: {e}"));
    }
    report
}

/// Writes stale markers for everything the target's last scrape wrote,
/// including its report series (used when a target goes away).
pub fn mark_target_stale(target: &Target, state: &mut ScrapeState, sink: &dyn ScrapeSink, ts: i64) {
    let mut batch: Vec<(Labels, i64, f64)> = state.prev.drain().map(|l| (l, ts, stale_nan())).collect();
    for name in ["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"] {
        let mut b = target.labels.builder();
        b.set("__name__", name);
        batch.push((b.build(), ts, stale_nan()));
    }
    let _ = sink.append(&batch);
}

const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const MAX_SCRAPE_BYTES: u64 = 64 << 20;

fn fetch(agent: &ureq::Agent, target: &Target) -> Result<(Vec<u8>, Format), String> {
    let resp = agent
        .get(&target.url)
        .timeout(target.timeout)
        .set("Accept", ACCEPT)
        .set("X-Prometheus-Scrape-Timeout-Seconds", &format!("{}", target.timeout.as_secs_f64()))
        .call()
        .map_err(|e| match e {
            ureq::Error::Status(code, _) => format!("server returned HTTP status {code}"),
            other => other.to_string(),
        })?;
    let format = if resp.content_type().starts_with("application/openmetrics-text") {
        Format::OpenMetrics
    } else {
        Format::Text004
    };
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(resp.into_reader(), MAX_SCRAPE_BYTES + 1), &mut body)
        .map_err(|e| format!("reading body: {e}"))?;
    if body.len() as u64 > MAX_SCRAPE_BYTES {
        return Err(format!("body larger than {MAX_SCRAPE_BYTES} bytes"));
    }
    Ok((body, format))
}

/// Parses a scrape body into `batch`; returns the number of samples in the
/// body.
fn parse_into(
    target: &Target,
    state: &mut ScrapeState,
    body: &[u8],
    format: Format,
    ts: i64,
    batch: &mut Vec<(Labels, i64, f64)>,
    sink: &dyn ScrapeSink,
) -> Result<usize, String> {
    let mut parser = Parser::new(body, format);
    let mut scraped = 0;
    let mut md: BTreeMap<String, MetricMetadata> = BTreeMap::new();
    loop {
        let entry = match parser.next() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => return Err(format!("parsing scrape: {e}")),
        };
        match entry {
            Entry::Sample(s) => {
                scraped += 1;
                let labels = match state.cache.get(s.series) {
                    Some(l) => l.clone(),
                    None => {
                        let scraped_labels = s.labels().map_err(|e| format!("parsing scrape: {e}"))?;
                        let l = relabel(&merge_target_labels(&scraped_labels, target), &target.metric_relabel);
                        state.cache.insert(s.series.to_string(), l.clone());
                        l
                    }
                };
                if let Some(l) = labels {
                    let t = match (target.honor_timestamps, s.timestamp_ms) {
                        (true, Some(t)) => t,
                        _ => ts,
                    };
                    batch.push((l, t, s.value));
                }
            }
            Entry::Help { name, text } => md.entry(name.to_string()).or_insert_with(|| meta(name)).help = text.to_string(),
            Entry::Type { name, kind } => md.entry(name.to_string()).or_insert_with(|| meta(name)).kind = kind.as_str().to_string(),
            Entry::Unit { name, unit } => md.entry(name.to_string()).or_insert_with(|| meta(name)).unit = unit.to_string(),
            _ => {}
        }
    }
    if state.cache.len() > 4 * batch.len().max(1024) {
        // The target's series churned a lot: drop the cache rather than grow forever.
        state.cache.clear();
    }
    if !md.is_empty() {
        sink.metadata(md.into_values().collect());
    }
    Ok(scraped)
}

fn meta(name: &str) -> MetricMetadata {
    MetricMetadata { metric: name.to_string(), kind: "unknown".into(), help: String::new(), unit: String::new() }
}

/// Adds the target's labels to scraped ones. On a conflict, honor_labels
/// keeps the scraped value; otherwise the scraped one is renamed
/// `exported_<name>`, as Prometheus does.
pub fn merge_target_labels(scraped: &Labels, target: &Target) -> Labels {
    let mut b = scraped.builder();
    for l in target.labels.iter() {
        match scraped.get(&l.name) {
            Some(v) if target.honor_labels => {
                if v.is_empty() {
                    b.set(l.name.clone(), l.value.clone());
                }
            }
            Some(v) => {
                let v = v.to_string();
                let mut name = format!("exported_{}", l.name);
                while scraped.contains(&name) {
                    name = format!("exported_{name}");
                }
                b.set(name, v);
                b.set(l.name.clone(), l.value.clone());
            }
            None => {
                b.set(l.name.clone(), l.value.clone());
            }
        }
    }
    b.build().without_empty()
}

/// Runs every target on its own thread until [`ScrapeManager::stop`].
pub struct ScrapeManager {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
    last: Arc<Mutex<BTreeMap<String, ScrapeReport>>>,
}

impl ScrapeManager {
    /// Starts scraping `targets` into `sink`.
    pub fn start(targets: Vec<Target>, sink: Arc<dyn ScrapeSink>) -> ScrapeManager {
        let stop = Arc::new(AtomicBool::new(false));
        let last = Arc::new(Mutex::new(BTreeMap::new()));
        let agent = ureq::AgentBuilder::new().redirects(10).build();
        let mut threads = Vec::new();
        for (i, t) in targets.into_iter().enumerate() {
            let stop = Arc::clone(&stop);
            let sink = Arc::clone(&sink);
            let last = Arc::clone(&last);
            let agent = agent.clone();
            let spawned = thread::Builder::new().name(format!("scrape-{i}")).spawn(move || {
                let mut state = ScrapeState::default();
                // Spread targets over the interval, deterministically per URL.
                let offset_ms = Labels::from_pairs([("u", t.url.as_str())]).stable_hash() % (t.interval.as_millis().max(1) as u64);
                let mut next = Instant::now() + Duration::from_millis(offset_ms.min(1000));
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now < next {
                        thread::sleep((next - now).min(Duration::from_millis(100)));
                        continue;
                    }
                    let report = scrape_once(&agent, &t, &mut state, sink.as_ref(), now_ms());
                    if let Ok(mut m) = last.lock() {
                        m.insert(t.url.clone(), report);
                    }
                    next += t.interval;
                    if next < Instant::now() {
                        next = Instant::now() + t.interval;
                    }
                }
                mark_target_stale(&t, &mut state, sink.as_ref(), now_ms());
            });
            if let Ok(h) = spawned {
                threads.push(h);
            }
        }
        ScrapeManager { stop, threads, last }
    }

    /// The last report of each target, by URL.
    pub fn reports(&self) -> BTreeMap<String, ScrapeReport> {
        self.last.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Stops every loop (each writes stale markers for its series).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}
