//! Golden files for the writer: tests/golden/families.txt (text 0.0.4) and
//! tests/golden/families.om.txt (OpenMetrics). Set UPDATE_GOLDEN=1 to
//! rewrite them after an intended change.

use std::path::Path;

use model::exposition::{
    families_to_string, parse_families, Bucket, Format, Metric, MetricFamily, MetricType,
    MetricValue, Quantile, State,
};
use model::Labels;

fn m(labels: &[(&str, &str)], value: MetricValue) -> Metric {
    Metric { labels: Labels::from_pairs(labels.iter().copied()), value, timestamp_ms: None }
}

/// One family of every type, with escapes, special values and timestamps.
pub fn sample_families() -> Vec<MetricFamily> {
    vec![
        MetricFamily {
            name: "http_requests_total".into(),
            help: Some("Requests served, by \"code\".\nSecond line with a \\ backslash.".into()),
            kind: MetricType::Counter,
            unit: None,
            metrics: vec![
                Metric {
                    labels: Labels::from_pairs([("code", "200"), ("path", "/a\"b\\c\nd")]),
                    value: MetricValue::Counter { total: 1027.0, created: Some(1_700_000_000.25) },
                    timestamp_ms: Some(1_700_000_000_123),
                },
                m(
                    &[("code", "500"), ("path", "/ünïcødé ☃")],
                    MetricValue::Counter { total: 3.0, created: None },
                ),
            ],
        },
        MetricFamily {
            name: "node_load1".into(),
            help: Some("1m load average.".into()),
            kind: MetricType::Gauge,
            unit: None,
            metrics: vec![m(&[], MetricValue::Gauge(0.21))],
        },
        MetricFamily {
            name: "odd_values".into(),
            help: None,
            kind: MetricType::Gauge,
            unit: None,
            metrics: vec![
                m(&[("v", "nan")], MetricValue::Gauge(f64::NAN)),
                m(&[("v", "+inf")], MetricValue::Gauge(f64::INFINITY)),
                m(&[("v", "-inf")], MetricValue::Gauge(f64::NEG_INFINITY)),
                m(&[("v", "big")], MetricValue::Gauge(1.8446744073709552e19)),
                m(&[("v", "small")], MetricValue::Gauge(1.305e-6)),
                m(&[("v", "million")], MetricValue::Gauge(1e6)),
                m(&[("v", "neg")], MetricValue::Gauge(-123456.5)),
            ],
        },
        MetricFamily {
            name: "request_duration_seconds".into(),
            help: Some("Request latency.".into()),
            kind: MetricType::Histogram,
            unit: Some("seconds".into()),
            metrics: vec![Metric {
                labels: Labels::from_pairs([("handler", "/")]),
                value: MetricValue::Histogram {
                    buckets: vec![
                        Bucket { upper_bound: 0.005, cumulative_count: 1.0 },
                        Bucket { upper_bound: 0.1, cumulative_count: 4.0 },
                        Bucket { upper_bound: 1e6, cumulative_count: 6.0 },
                        Bucket { upper_bound: f64::INFINITY, cumulative_count: 7.0 },
                    ],
                    sum: 12.5,
                    count: 7.0,
                    created: Some(1_600_000_000.0),
                },
                timestamp_ms: None,
            }],
        },
        MetricFamily {
            name: "queue_size_bytes".into(),
            help: None,
            kind: MetricType::GaugeHistogram,
            unit: Some("bytes".into()),
            metrics: vec![m(
                &[],
                MetricValue::GaugeHistogram {
                    buckets: vec![
                        Bucket { upper_bound: -1.0, cumulative_count: 1.0 },
                        Bucket { upper_bound: f64::INFINITY, cumulative_count: 3.0 },
                    ],
                    sum: -2.0,
                    count: 3.0,
                },
            )],
        },
        MetricFamily {
            name: "go_gc_duration_seconds".into(),
            help: Some("GC pauses.".into()),
            kind: MetricType::Summary,
            unit: None,
            metrics: vec![m(
                &[],
                MetricValue::Summary {
                    quantiles: vec![
                        Quantile { quantile: 0.0, value: 1.5e-5 },
                        Quantile { quantile: 0.5, value: 0.0001 },
                        Quantile { quantile: 1.0, value: f64::NAN },
                    ],
                    sum: 0.5,
                    count: 1234.0,
                    created: None,
                },
            )],
        },
        MetricFamily {
            name: "build_info".into(),
            help: Some("Build information.".into()),
            kind: MetricType::Info,
            unit: None,
            metrics: vec![m(&[("version", "1.2.3"), ("revision", "abc")], MetricValue::Info)],
        },
        MetricFamily {
            name: "door".into(),
            help: None,
            kind: MetricType::StateSet,
            unit: None,
            metrics: vec![m(
                &[("room", "hall")],
                MetricValue::StateSet {
                    states: vec![
                        State { name: "open".into(), enabled: false },
                        State { name: "closed".into(), enabled: true },
                    ],
                },
            )],
        },
        MetricFamily {
            name: "legacy".into(),
            help: Some(String::new()),
            kind: MetricType::Unknown,
            unit: None,
            metrics: vec![Metric {
                labels: Labels::empty(),
                value: MetricValue::Untyped(42.0),
                timestamp_ms: Some(-1500),
            }],
        },
    ]
}

fn check_golden(file: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create)", path.display()));
    assert_eq!(actual, want, "{} differs (UPDATE_GOLDEN=1 rewrites it)", path.display());
}

#[test]
fn golden_text() {
    let out = families_to_string(&sample_families(), Format::Text004).expect("write");
    check_golden("families.txt", &out);
}

#[test]
fn golden_openmetrics() {
    let out = families_to_string(&sample_families(), Format::OpenMetrics).expect("write");
    check_golden("families.om.txt", &out);
}

/// The OpenMetrics golden output is valid OpenMetrics and reads back to the
/// same families.
#[test]
fn golden_openmetrics_reads_back() {
    let fams = sample_families();
    let out = families_to_string(&fams, Format::OpenMetrics).expect("write");
    let back = parse_families(out.as_bytes(), Format::OpenMetrics).expect("parse");
    assert_eq!(format!("{back:?}"), format!("{fams:?}"));
}

/// Text 0.0.4 reads back with the OpenMetrics-only types mapped to their
/// text 0.0.4 counterparts.
#[test]
fn golden_text_reads_back() {
    let out = families_to_string(&sample_families(), Format::Text004).expect("write");
    let back = parse_families(out.as_bytes(), Format::Text004).expect("parse");
    let kinds: Vec<_> = back.iter().map(|f| (f.name.as_str(), f.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("http_requests_total", MetricType::Counter),
            ("node_load1", MetricType::Gauge),
            ("odd_values", MetricType::Gauge),
            ("request_duration_seconds", MetricType::Histogram),
            ("queue_size_bytes", MetricType::Histogram),
            ("go_gc_duration_seconds", MetricType::Summary),
            ("build_info", MetricType::Gauge),
            ("door", MetricType::Gauge),
            ("legacy", MetricType::Unknown),
        ]
    );
    assert_eq!(back[0].help, sample_families()[0].help);
    assert_eq!(back[0].metrics[0].labels.get("path"), Some("/a\"b\\c\nd"));
    assert_eq!(back[0].metrics[0].timestamp_ms, Some(1_700_000_000_123));
    assert_eq!(back[7].metrics.len(), 2, "one gauge sample per state");
}

#[test]
fn writer_rejects_mismatched_value() {
    let fam = MetricFamily::new("x", MetricType::Counter)
        .with_metric(Labels::empty(), MetricValue::Gauge(1.0));
    let err = families_to_string(&[fam], Format::Text004).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("has type counter but metric {} holds a gauge value"),
        "{err}"
    );
}
