//! A remote-write sender: a bounded in-memory queue drained by a thread
//! that posts protobuf + snappy batches to any remote-write 1.0 receiver
//! (ours, Prometheus with `--web.enable-remote-write-receiver`, Mimir,
//! VictoriaMetrics), retrying 5xx, 429 and network errors with exponential
//! backoff, dropping (and counting) batches the receiver rejects with
//! another 4xx.

use crate::scrape::{relabel, RelabelConfig, ScrapeSink};
use model::Labels;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;
use tsdb::remote::{encode_write_request, TimeSeries, WriteRequest};

/// Sender settings.
#[derive(Debug, Clone)]
pub struct RemoteWriteOptions {
    /// Receiver URL, e.g. `http://127.0.0.1:9090/api/v1/write`.
    pub url: String,
    /// Request timeout.
    pub timeout: Duration,
    /// Samples buffered at most; beyond, new samples are dropped and counted.
    pub capacity: usize,
    /// Samples per request.
    pub max_samples_per_send: usize,
    /// First retry delay; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Relabelling before sending.
    pub relabel: Vec<RelabelConfig>,
    /// Labels added to every series (without overriding).
    pub external_labels: BTreeMap<String, String>,
}

impl RemoteWriteOptions {
    /// Defaults like Prometheus's queue manager.
    pub fn new(url: impl Into<String>) -> Self {
        RemoteWriteOptions {
            url: url.into(),
            timeout: Duration::from_secs(30),
            capacity: 100_000,
            max_samples_per_send: 2000,
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            relabel: Vec::new(),
            external_labels: BTreeMap::new(),
        }
    }
}

/// Counters of what the sender did.
#[derive(Debug, Default)]
pub struct RemoteWriteStats {
    /// Samples delivered.
    pub sent: AtomicU64,
    /// Samples dropped because the queue was full.
    pub dropped_full: AtomicU64,
    /// Samples dropped because the receiver rejected them (4xx).
    pub rejected: AtomicU64,
    /// Retried requests.
    pub retries: AtomicU64,
}

struct Shared {
    queue: Mutex<VecDeque<(Labels, i64, f64)>>,
    ready: Condvar,
    stop: AtomicBool,
    /// Samples taken off the queue and not yet delivered or given up on.
    inflight: AtomicUsize,
    stats: RemoteWriteStats,
}

/// The sender. Cloning shares the queue.
#[derive(Clone)]
pub struct RemoteWriter {
    shared: Arc<Shared>,
    opts: Arc<RemoteWriteOptions>,
    worker: Arc<Mutex<Option<thread::JoinHandle<()>>>>,
}

impl RemoteWriter {
    /// Starts the sending thread.
    pub fn start(opts: RemoteWriteOptions) -> RemoteWriter {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            stop: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            stats: RemoteWriteStats::default(),
        });
        let opts = Arc::new(opts);
        let (s, o) = (Arc::clone(&shared), Arc::clone(&opts));
        let handle = thread::Builder::new().name("remote-write".into()).spawn(move || run(&s, &o)).ok();
        RemoteWriter { shared, opts, worker: Arc::new(Mutex::new(handle)) }
    }

    /// Queues samples; returns how many were accepted (the rest did not fit).
    pub fn enqueue(&self, samples: &[(Labels, i64, f64)]) -> usize {
        let mut accepted = 0;
        if let Ok(mut q) = self.shared.queue.lock() {
            for (l, t, v) in samples {
                if q.len() >= self.opts.capacity {
                    break;
                }
                let Some(l) = relabel(l, &self.opts.relabel) else { continue };
                let l = add_external(&l, &self.opts.external_labels);
                q.push_back((l, *t, *v));
                accepted += 1;
            }
        }
        let dropped = samples.len() - accepted;
        self.shared.stats.dropped_full.fetch_add(dropped as u64, Ordering::Relaxed);
        self.shared.ready.notify_one();
        accepted
    }

    /// The counters.
    pub fn stats(&self) -> &RemoteWriteStats {
        &self.shared.stats
    }

    /// Samples waiting.
    pub fn pending(&self) -> usize {
        self.shared.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Waits up to `timeout` for the queue to drain.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.pending() == 0 && self.shared.inflight.load(Ordering::Acquire) == 0 {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.pending() == 0 && self.shared.inflight.load(Ordering::Acquire) == 0
    }

    /// Stops the thread after one last attempt to send what is queued.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.ready.notify_all();
        if let Some(h) = self.worker.lock().ok().and_then(|mut w| w.take()) {
            let _ = h.join();
        }
    }
}

impl ScrapeSink for RemoteWriter {
    fn append(&self, batch: &[(Labels, i64, f64)]) -> Result<usize, String> {
        Ok(self.enqueue(batch))
    }
}

fn add_external(l: &Labels, ext: &BTreeMap<String, String>) -> Labels {
    if ext.is_empty() {
        return l.clone();
    }
    let mut b = l.builder();
    for (k, v) in ext {
        if !l.contains(k) {
            b.set(k.clone(), v.clone());
        }
    }
    b.build()
}

fn run(shared: &Shared, opts: &RemoteWriteOptions) {
    let agent = ureq::AgentBuilder::new().timeout(opts.timeout).build();
    loop {
        let batch: Vec<(Labels, i64, f64)> = {
            let Ok(mut q) = shared.queue.lock() else { return };
            while q.is_empty() && !shared.stop.load(Ordering::Relaxed) {
                q = match shared.ready.wait_timeout(q, Duration::from_millis(200)) {
                    Ok((g, _)) => g,
                    Err(_) => return,
                };
            }
            if q.is_empty() {
                return;
            }
            let n = q.len().min(opts.max_samples_per_send.max(1));
            shared.inflight.store(n, Ordering::Release);
            q.drain(..n).collect()
        };
        let body = encode_write_request(&to_request(&batch));
        let mut backoff = opts.min_backoff;
        loop {
            match post(&agent, &opts.url, &body) {
                Ok(()) => {
                    shared.stats.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    shared.inflight.store(0, Ordering::Release);
                    break;
                }
                Err(Retry::No(msg)) => {
                    eprintln!("remote-write to {}: batch of {} samples rejected: {msg}", redact(&opts.url), batch.len());
                    shared.stats.rejected.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    shared.inflight.store(0, Ordering::Release);
                    break;
                }
                Err(Retry::After(msg, wait)) => {
                    if shared.stop.load(Ordering::Relaxed) {
                        eprintln!("remote-write to {}: giving up on {} samples at shutdown: {msg}", redact(&opts.url), batch.len());
                        return;
                    }
                    shared.stats.retries.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(wait.unwrap_or(backoff));
                    backoff = (backoff * 2).min(opts.max_backoff);
                }
            }
        }
    }
}

fn redact(url: &str) -> String {
    // Credentials in the URL are secrets.
    match url.split_once('@') {
        Some((scheme_user, host)) => match scheme_user.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://***@{host}"),
            None => format!("***@{host}"),
        },
        None => url.to_string(),
    }
}

enum Retry {
    No(String),
    After(String, Option<Duration>),
}

fn post(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<(), Retry> {
    let r = agent
        .post(url)
        .set("Content-Type", tsdb::remote::CONTENT_TYPE)
        .set("Content-Encoding", "snappy")
        .set(tsdb::remote::VERSION_HEADER, tsdb::remote::VERSION)
        .set("User-Agent", concat!("monitoring-stack/", env!("CARGO_PKG_VERSION")))
        .send_bytes(body);
    match r {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, resp)) => {
            let retry_after = resp.header("Retry-After").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
            let text = resp.into_string().unwrap_or_default();
            let msg = format!("HTTP {code}: {}", text.trim());
            if code >= 500 || code == 429 {
                Err(Retry::After(msg, retry_after))
            } else {
                Err(Retry::No(msg))
            }
        }
        Err(e) => Err(Retry::After(e.to_string(), None)),
    }
}

/// Groups samples by series into a request, keeping each series' samples
/// in time order.
pub fn to_request(batch: &[(Labels, i64, f64)]) -> WriteRequest {
    let mut by_series: BTreeMap<&Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for (l, t, v) in batch {
        by_series.entry(l).or_default().push((*t, *v));
    }
    WriteRequest {
        timeseries: by_series
            .into_iter()
            .map(|(l, mut s)| {
                s.sort_by_key(|x| x.0);
                TimeSeries::from_samples(l, &s)
            })
            .collect(),
        metadata: Vec::new(),
    }
}
