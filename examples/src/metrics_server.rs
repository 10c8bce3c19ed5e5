//! The metrics server: a [`tsdb::Db`] behind the Prometheus HTTP query API,
//! a remote-write receiver, scraping into the same store, and its own
//! `/metrics`. The binary `metrics-server` only parses flags and calls this.

use crate::http::{Handler, Request, Response};
use crate::scrape::{now_ms, ScrapeSink};
use model::exposition::{write_families, MetricFamily, MetricType, MetricValue};
use model::{Labels, MetricMetadata, Querier, Queryable, StorageError};
use promql::http_api::{ApiRequest, PromApi};
use promql::Engine;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tsdb::remote::{decode_write_request, validate};
use tsdb::Db;

/// Largest remote-write body accepted after snappy decompression.
pub const MAX_WRITE_BYTES: usize = 64 << 20;

/// The store the server answers from: the database plus the metric
/// metadata seen in scrapes and remote-write requests.
pub struct MetricsStore {
    db: Db,
    metadata: RwLock<BTreeMap<String, MetricMetadata>>,
    rejected: AtomicU64,
    write_requests: AtomicU64,
}

impl MetricsStore {
    /// Wraps an open database.
    pub fn new(db: Db) -> Self {
        MetricsStore { db, metadata: RwLock::new(BTreeMap::new()), rejected: AtomicU64::new(0), write_requests: AtomicU64::new(0) }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Appends a batch, skipping (and counting) samples the database
    /// rejects (out of order, duplicate, too old); commits the rest.
    /// Returns (accepted, first rejection message).
    pub fn append_batch(&self, batch: &[(Labels, i64, f64)]) -> Result<(usize, Option<String>), String> {
        let mut app = self.db.appender();
        let mut accepted = 0;
        let mut first_err = None;
        for (l, t, v) in batch {
            match app.append(l, *t, *v) {
                Ok(_) => accepted += 1,
                Err(e) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    first_err.get_or_insert_with(|| e.to_string());
                }
            }
        }
        app.commit().map_err(|e| e.to_string())?;
        Ok((accepted, first_err))
    }

    fn record_metadata(&self, md: impl IntoIterator<Item = MetricMetadata>) {
        if let Ok(mut m) = self.metadata.write() {
            for x in md {
                m.insert(x.metric.clone(), x);
            }
        }
    }

    /// Handles a remote-write request body (snappy + protobuf).
    pub fn remote_write(&self, body: &[u8]) -> Response {
        self.write_requests.fetch_add(1, Ordering::Relaxed);
        let req = match decode_write_request(body, MAX_WRITE_BYTES) {
            Ok(r) => r,
            Err(e) => return Response::text(400, format!("{e}\n")),
        };
        if let Err(e) = validate(&req) {
            return Response::text(400, format!("{e}\n"));
        }
        self.record_metadata(req.metadata.iter().map(|m| m.to_model()));
        let mut batch = Vec::new();
        for ts in &req.timeseries {
            let l = ts.labels();
            for s in &ts.samples {
                batch.push((l.clone(), s.timestamp, s.value));
            }
        }
        match self.append_batch(&batch) {
            // As Prometheus: rejected samples are a client error the sender
            // must not retry; the accepted ones are stored.
            Ok((_, Some(first))) => Response::text(400, format!("{first}\n")),
            Ok(_) => Response::new(204, "text/plain", Vec::new()),
            Err(e) => Response::text(500, format!("{e}\n")),
        }
    }

    /// The server's own metrics.
    pub fn self_metrics(&self) -> Vec<MetricFamily> {
        let s = self.db.stats();
        let g = |name: &str, help: &str, kind: MetricType, v: f64| {
            let value = match kind {
                MetricType::Counter => MetricValue::Counter { total: v, created: None },
                _ => MetricValue::Gauge(v),
            };
            MetricFamily::new(name, kind).with_help(help).with_metric(Labels::empty(), value)
        };
        let block_bytes: u64 = s.blocks.iter().map(|b| b.bytes).sum();
        vec![
            g("prometheus_tsdb_head_series", "Total number of series in the head block.", MetricType::Gauge, s.head_series as f64),
            g("prometheus_tsdb_head_samples_appended_total", "Total number of appended samples.", MetricType::Counter, s.samples_appended as f64),
            g("prometheus_tsdb_out_of_order_samples_total", "Total number of out of order samples ingestion failed attempts.", MetricType::Counter, s.out_of_order as f64),
            g("prometheus_tsdb_blocks_loaded", "Number of currently loaded data blocks.", MetricType::Gauge, s.blocks.len() as f64),
            g("prometheus_tsdb_storage_blocks_bytes", "The number of bytes that are currently used for local storage by all blocks.", MetricType::Gauge, block_bytes as f64),
            g("prometheus_tsdb_wal_storage_size_bytes", "Size of the write log directory.", MetricType::Gauge, s.wal_bytes as f64),
            g("prometheus_remote_write_requests_total", "Remote-write requests received.", MetricType::Counter, self.write_requests.load(Ordering::Relaxed) as f64),
            g("prometheus_samples_rejected_total", "Samples rejected by the database (out of order, duplicate, out of bounds).", MetricType::Counter, self.rejected.load(Ordering::Relaxed) as f64),
        ]
    }
}

impl Queryable for MetricsStore {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        self.db.querier(mint, maxt)
    }

    fn metadata(&self) -> Result<Vec<MetricMetadata>, StorageError> {
        Ok(self.metadata.read().map(|m| m.values().cloned().collect()).unwrap_or_default())
    }
}

impl ScrapeSink for MetricsStore {
    fn append(&self, batch: &[(Labels, i64, f64)]) -> Result<usize, String> {
        self.append_batch(batch).map(|(n, _)| n)
    }

    fn metadata(&self, md: Vec<MetricMetadata>) {
        self.record_metadata(md);
    }
}

/// Builds the HTTP handler: the Prometheus API under `/api/v1/`,
/// `/api/v1/write`, `/-/healthy`, `/-/ready`, `/metrics`.
pub fn handler(store: Arc<MetricsStore>, engine: Arc<Engine>) -> Handler {
    Arc::new(move |req: &Request| route(&store, &engine, req))
}

fn route(store: &MetricsStore, engine: &Engine, req: &Request) -> Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/api/v1/write") => store.remote_write(&req.body),
        (_, "/api/v1/write") => Response::text(405, "method not allowed\n"),
        (_, "/-/healthy") => Response::text(200, "Prometheus Server is Healthy.\n"),
        (_, "/-/ready") => Response::text(200, "Prometheus Server is Ready.\n"),
        ("GET", "/metrics") => {
            let format = model::exposition::negotiate(req.header("accept"));
            let mut out = Vec::new();
            match write_families(&store.self_metrics(), format, &mut out) {
                Ok(()) => Response::new(200, format.content_type(), out),
                Err(e) => Response::text(500, format!("{e}\n")),
            }
        }
        ("GET", "/") => Response::new(200, "text/html; charset=utf-8", LANDING.as_bytes().to_vec()),
        ("GET", "/dashboard") => Response::new(200, "text/html; charset=utf-8", DASHBOARD.as_bytes().to_vec()),
        (_, p) if p.starts_with("/api/v1/") => {
            let api = PromApi::new(engine, store);
            let r = api.handle(
                &ApiRequest {
                    method: &req.method,
                    path: &req.path,
                    query: &req.query,
                    body: &req.body,
                    content_type: req.header("content-type"),
                },
                now_ms(),
            );
            Response::new(r.status, r.content_type, r.body)
        }
        _ => Response::text(404, "404 page not found\n"),
    }
}

const LANDING: &str = "<!doctype html><html><head><title>metrics-server</title></head><body>\
<h1>metrics-server</h1><p>Prometheus-compatible API under <a href=\"/api/v1/labels\">/api/v1/</a>; \
remote-write receiver at <code>/api/v1/write</code>; own metrics at <a href=\"/metrics\">/metrics</a>; \
a <a href=\"/dashboard\">dashboard</a> of PromQL panels.</p></body></html>";

/// The dashboard page: PromQL panels drawn in the browser from this
/// server's `/api/v1/query_range`.
pub const DASHBOARD: &str = include_str!("dashboard.html");
