//! Monitor figures in the Prometheus exposition formats, written with
//! `model::exposition`.
//!
//! Every series carries `monitor` (the name) and `type` (http, tcp, ...):
//!
//! | metric | meaning |
//! |---|---|
//! | `probe_success` | 1 if the last beat is UP, else 0 |
//! | `probe_status` | last status as Uptime Kuma's code: 0 DOWN, 1 UP, 2 PENDING, 3 MAINTENANCE |
//! | `probe_duration_seconds` | response time of the last beat |
//! | `probe_http_status_code` | status code of the last HTTP response |
//! | `probe_ssl_earliest_cert_expiry` | earliest `notAfter` of the peer's chain, Unix seconds |
//! | `probe_uptime_ratio{window="24h"\|"30d"\|"1y"}` | uptime by beat count (see [`crate::UptimeStats`]) |
//! | `probe_response_time_average_seconds{window=..}` | mean response time of up beats |
//!
//! Monitors without a beat yet have no `probe_success`, `probe_status` or
//! duration series; windows without beats have no ratio series.

use crate::history::Window;
use crate::state::Status;
use model::exposition::{families_to_string, Format, Metric, MetricFamily, MetricType, MetricValue};
use model::Labels;

/// The figures of one monitor at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorSnapshot {
    /// Monitor name.
    pub name: String,
    /// Monitor type.
    pub kind: &'static str,
    /// Status of the last beat.
    pub status: Option<Status>,
    /// Response time of the last beat, ms.
    pub last_ping_ms: Option<u64>,
    /// Last HTTP status code.
    pub http_status: Option<u16>,
    /// Earliest certificate expiry, Unix seconds.
    pub cert_expiry: Option<i64>,
    /// Uptime ratio per window.
    pub uptime: [(Window, Option<f64>); 3],
    /// Mean response time (ms) per window.
    pub avg_ping_ms: [(Window, Option<f64>); 3],
}

fn gauge(name: &str, help: &str) -> MetricFamily {
    MetricFamily {
        name: name.into(),
        help: Some(help.into()),
        kind: MetricType::Gauge,
        unit: None,
        metrics: Vec::new(),
    }
}

fn push(f: &mut MetricFamily, labels: Labels, v: f64) {
    f.metrics.push(Metric { labels, value: MetricValue::Gauge(v), timestamp_ms: None });
}

/// The metric families for `snapshots`.
pub fn families(snapshots: &[MonitorSnapshot]) -> Vec<MetricFamily> {
    let mut success = gauge("probe_success", "Whether the last check of the monitor succeeded (status UP).");
    let mut status = gauge("probe_status", "Last status: 0 DOWN, 1 UP, 2 PENDING, 3 MAINTENANCE.");
    let mut duration = gauge("probe_duration_seconds", "Response time of the last check, in seconds.");
    let mut http = gauge("probe_http_status_code", "HTTP status code of the last response.");
    let mut cert = gauge(
        "probe_ssl_earliest_cert_expiry",
        "Earliest expiry of the peer's certificate chain, in Unix seconds.",
    );
    let mut ratio = gauge("probe_uptime_ratio", "Share of beats counted as up (UP, MAINTENANCE) in the window.");
    let mut avg = gauge(
        "probe_response_time_average_seconds",
        "Mean response time of the up beats in the window, in seconds.",
    );
    for s in snapshots {
        let base = [("monitor", s.name.as_str()), ("type", s.kind)];
        let labels = || Labels::from_pairs(base);
        if let Some(st) = s.status {
            push(&mut success, labels(), (st == Status::Up) as u8 as f64);
            push(&mut status, labels(), st.code() as f64);
        }
        if let Some(ms) = s.last_ping_ms {
            push(&mut duration, labels(), ms as f64 / 1000.0);
        }
        if let Some(code) = s.http_status {
            push(&mut http, labels(), code as f64);
        }
        if let Some(exp) = s.cert_expiry {
            push(&mut cert, labels(), exp as f64);
        }
        for (w, v) in s.uptime {
            if let Some(v) = v {
                let l = Labels::from_pairs([base[0], base[1], ("window", w.label())]);
                push(&mut ratio, l, v);
            }
        }
        for (w, v) in s.avg_ping_ms {
            if let Some(v) = v {
                let l = Labels::from_pairs([base[0], base[1], ("window", w.label())]);
                push(&mut avg, l, v / 1000.0);
            }
        }
    }
    vec![success, status, duration, http, cert, ratio, avg]
}

/// Text format 0.0.4 of `snapshots`.
pub fn render(snapshots: &[MonitorSnapshot]) -> String {
    render_as(snapshots, Format::Text004)
}

/// `snapshots` in the given format.
pub fn render_as(snapshots: &[MonitorSnapshot], format: Format) -> String {
    // Writing into a String cannot fail.
    families_to_string(&families(snapshots), format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_format_with_escaped_labels() {
        let s = MonitorSnapshot {
            name: "web \"main\"".into(),
            kind: "http",
            status: Some(Status::Up),
            last_ping_ms: Some(125),
            http_status: Some(200),
            cert_expiry: Some(1_800_000_000),
            uptime: [(Window::Day, Some(0.5)), (Window::Month, Some(1.0)), (Window::Year, None)],
            avg_ping_ms: [(Window::Day, Some(100.0)), (Window::Month, None), (Window::Year, None)],
        };
        let text = render(&[s]);
        assert!(text.contains("# TYPE probe_success gauge\n"), "{text}");
        assert!(text.contains("probe_success{monitor=\"web \\\"main\\\"\",type=\"http\"} 1\n"), "{text}");
        assert!(text.contains("probe_duration_seconds{monitor=\"web \\\"main\\\"\",type=\"http\"} 0.125\n"), "{text}");
        assert!(text.contains("probe_ssl_earliest_cert_expiry{monitor=\"web \\\"main\\\"\",type=\"http\"} 1.8e+09\n"), "{text}");
        assert!(text.contains("probe_uptime_ratio{monitor=\"web \\\"main\\\"\",type=\"http\",window=\"24h\"} 0.5\n"), "{text}");
        assert!(!text.contains("window=\"1y\""), "{text}");
        // The writer's output parses back.
        let fams = model::exposition::parse_families(text.as_bytes(), Format::Text004).unwrap();
        assert_eq!(fams.len(), 7);
    }
}
