//! The Prometheus exposition formats, both directions: text format 0.0.4
//! and OpenMetrics 1.0.
//!
//! # Writing
//!
//! Build [`MetricFamily`] values and call [`write_families`] with the
//! [`Format`] chosen by [`negotiate`] from the scraper's `Accept` header:
//!
//! ```
//! use model::exposition::{
//!     negotiate, write_families, Bucket, Format, Metric, MetricFamily, MetricType, MetricValue,
//! };
//! use model::Labels;
//!
//! let families = vec![
//!     MetricFamily {
//!         name: "http_requests_total".into(),
//!         help: Some("Requests served.".into()),
//!         kind: MetricType::Counter,
//!         unit: None,
//!         metrics: vec![Metric {
//!             labels: Labels::from_pairs([("code", "200")]),
//!             value: MetricValue::Counter { total: 1027.0, created: None },
//!             timestamp_ms: None,
//!         }],
//!     },
//!     MetricFamily {
//!         name: "latency_seconds".into(),
//!         help: None,
//!         kind: MetricType::Histogram,
//!         unit: Some("seconds".into()),
//!         metrics: vec![Metric {
//!             labels: Labels::empty(),
//!             value: MetricValue::Histogram {
//!                 buckets: vec![Bucket { upper_bound: 0.5, cumulative_count: 3.0 }],
//!                 sum: 1.25,
//!                 count: 4.0,
//!                 created: None,
//!             },
//!             timestamp_ms: None,
//!         }],
//!     },
//! ];
//!
//! let mut text = Vec::new();
//! write_families(&families, negotiate(Some("text/plain")), &mut text)?;
//! assert_eq!(String::from_utf8(text)?, "\
//! ## HELP http_requests_total Requests served.
//! ## TYPE http_requests_total counter
//! http_requests_total{code=\"200\"} 1027
//! ## TYPE latency_seconds histogram
//! latency_seconds_bucket{le=\"0.5\"} 3
//! latency_seconds_bucket{le=\"+Inf\"} 4
//! latency_seconds_sum 1.25
//! latency_seconds_count 4
//! ");
//!
//! let format = negotiate(Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"));
//! assert_eq!(format, Format::OpenMetrics);
//! let mut om = Vec::new();
//! write_families(&families, format, &mut om)?;
//! let om = String::from_utf8(om)?;
//! assert!(om.contains("# TYPE http_requests counter\nhttp_requests_total{code=\"200\"} 1027\n"));
//! assert!(om.ends_with("# EOF\n"));
//!
//! // And back: parse_families groups the samples into families again.
//! use model::exposition::parse_families;
//! // (The writer added the +Inf bucket the histogram lacked.)
//! let parsed = parse_families(om.as_bytes(), Format::OpenMetrics)?;
//! assert_eq!(parsed[0], families[0]);
//! let MetricValue::Histogram { buckets, .. } = &parsed[1].metrics[0].value else { panic!() };
//! assert_eq!(buckets[1], Bucket { upper_bound: f64::INFINITY, cumulative_count: 4.0 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Reading
//!
//! [`Parser`] is a streaming, allocation-free tokenizer over a byte buffer:
//! it yields [`Entry`] values (HELP, TYPE, UNIT, comments, samples) whose
//! strings borrow from the input; [`SampleEntry::series`] is the raw text of
//! the name and label set, usable as a cache key so that label sets are only
//! decoded ([`SampleEntry::labels`]) for series not seen before.
//! [`parse_families`] builds typed [`MetricFamily`] values and, for
//! OpenMetrics, checks the semantic rules of the specification (family
//! grouping, name clashes, counter and bucket values, `le`/`quantile`
//! labels, units, timestamps, exemplars, `# EOF`).
//!
//! ```
//! use model::exposition::{Entry, Format, Parser};
//!
//! let input = b"# TYPE up gauge\nup{job=\"node\"} 1 1700000000000\n";
//! let mut p = Parser::new(input, Format::Text004);
//! let mut samples = 0;
//! while let Some(entry) = p.next()? {
//!     if let Entry::Sample(s) = entry {
//!         assert_eq!(s.series, "up{job=\"node\"}");
//!         assert_eq!(s.labels()?.get("job"), Some("node"));
//!         assert_eq!((s.value, s.timestamp_ms), (1.0, Some(1_700_000_000_000)));
//!         samples += 1;
//!     }
//! }
//! assert_eq!(samples, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The data model and the two formats
//!
//! A [`MetricFamily`]'s `name` is the name text format 0.0.4 prints in its
//! `# TYPE` line, as client_golang names families: a counter is normally
//! named `..._total` and an info metric `..._info`. In OpenMetrics the family
//! name drops that suffix and the samples carry it:
//!
//! | [`MetricType`]   | text 0.0.4 `# TYPE` / samples                         | OpenMetrics `# TYPE` / samples                              |
//! |------------------|-------------------------------------------------------|-------------------------------------------------------------|
//! | `Counter`        | `counter`; `name`                                     | `counter`; `base_total`, `base_created`                     |
//! | `Gauge`          | `gauge`; `name`                                       | `gauge`; `name`                                             |
//! | `Unknown`        | `untyped`; `name`                                     | `unknown`; `name`                                           |
//! | `Histogram`      | `histogram`; `_bucket{le}`, `_sum`, `_count`          | `histogram`; `_bucket{le}`, `_count`, `_sum`, `_created`    |
//! | `GaugeHistogram` | `histogram`; `_bucket{le}`, `_sum`, `_count`          | `gaugehistogram`; `_bucket{le}`, `_gcount`, `_gsum`         |
//! | `Summary`        | `summary`; `name{quantile}`, `_sum`, `_count`         | `summary`; `name{quantile}`, `_count`, `_sum`, `_created`   |
//! | `Info`           | `gauge`; `name` = 1                                   | `info`; `base_info` = 1                                     |
//! | `StateSet`       | `gauge`; `name{name="state"}` = 0/1                   | `stateset`; `name{name="state"}` = 0/1                      |
//!
//! Timestamps are milliseconds in text 0.0.4 and seconds (exact decimals,
//! e.g. `1700000000.123`) in OpenMetrics; `_created` values are seconds.
//! Values are printed as Go's `strconv.FormatFloat(v, 'g', -1, 64)` does
//! ([`format_go_float`]). A `sum` or `count` of NaN stands for "absent" in
//! OpenMetrics (where NaN is not allowed there): the writer leaves the sample
//! out and [`parse_families`] fills in NaN when it is missing. Exemplars are
//! parsed and validated ([`SampleEntry::exemplar`]) but not kept in
//! [`MetricFamily`].
//!
//! Text 0.0.4 parsing follows Prometheus' scrape parser: lenient about
//! spacing, strict about names, quoting and numbers (Go's `ParseFloat`
//! grammar), `# HELP`/`# TYPE` at most once per family and before its
//! samples.

mod families;
mod float;
mod negotiate;
mod parser;
mod writer;

pub use families::parse_families;
pub use float::{format_go_float, push_go_float, GoFloat};
pub use negotiate::negotiate;
pub use parser::{Entry, Exemplar, ParseError, ParseErrorKind, Parser, SampleEntry};
pub use writer::{families_to_string, write_families};

use crate::Labels;

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text004,
    /// OpenMetrics 1.0.0 text format.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` header value for a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text004 => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The type of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricType {
    /// A monotonically increasing count.
    Counter,
    /// A value that can go up and down.
    Gauge,
    /// Cumulative buckets, sum and count.
    Histogram,
    /// A histogram of current values (OpenMetrics).
    GaugeHistogram,
    /// Quantiles, sum and count.
    Summary,
    /// Textual information as labels, value always 1 (OpenMetrics).
    Info,
    /// A set of boolean states (OpenMetrics).
    StateSet,
    /// No type given: "untyped" in text 0.0.4, "unknown" in OpenMetrics.
    Unknown,
}

impl MetricType {
    /// The OpenMetrics type name (`counter`, …, `unknown`), also the name
    /// [`MetricMetadata::kind`](crate::MetricMetadata) uses.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    /// The type name text format 0.0.4 prints: `untyped` for
    /// [`Unknown`](MetricType::Unknown), and the closest 0.0.4 type for the
    /// OpenMetrics-only types.
    pub fn text_name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge | MetricType::Info | MetricType::StateSet => "gauge",
            MetricType::Histogram | MetricType::GaugeHistogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Unknown => "untyped",
        }
    }

    /// Parses a `# TYPE` word of `format`. Text 0.0.4 knows counter, gauge,
    /// histogram, summary and untyped; OpenMetrics knows its eight names
    /// (and not `untyped`).
    pub fn parse(s: &str, format: Format) -> Option<MetricType> {
        Some(match (s, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::Text004) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            ("unknown", Format::OpenMetrics) => MetricType::Unknown,
            _ => return None,
        })
    }
}

impl std::fmt::Display for MetricType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A metric family: metadata and the metrics (series) that belong to it.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFamily {
    /// The family name as text 0.0.4 prints it (counters normally end in
    /// `_total`, info metrics in `_info`; see the [module docs](self)).
    pub name: String,
    /// HELP text, unescaped.
    pub help: Option<String>,
    /// The family type; every metric's value must be of this type.
    pub kind: MetricType,
    /// UNIT (OpenMetrics only; text 0.0.4 has no unit line).
    pub unit: Option<String>,
    /// The metrics, in output order.
    pub metrics: Vec<Metric>,
}

impl MetricFamily {
    /// A family without metrics.
    pub fn new(name: impl Into<String>, kind: MetricType) -> Self {
        MetricFamily { name: name.into(), help: None, kind, unit: None, metrics: Vec::new() }
    }

    /// Sets the HELP text (builder style).
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the UNIT (builder style).
    pub fn with_unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }

    /// Adds a metric without timestamp (builder style).
    pub fn with_metric(mut self, labels: Labels, value: MetricValue) -> Self {
        self.metrics.push(Metric { labels, value, timestamp_ms: None });
        self
    }

    /// The family's metadata as storages keep it: `metric` is [`name`](Self::name),
    /// `kind` the OpenMetrics type name, `help` and `unit` empty when absent.
    pub fn metadata(&self) -> crate::MetricMetadata {
        crate::MetricMetadata {
            metric: self.name.clone(),
            kind: self.kind.as_str().to_string(),
            help: self.help.clone().unwrap_or_default(),
            unit: self.unit.clone().unwrap_or_default(),
        }
    }

    /// The family name OpenMetrics uses: `name` without the `_total` suffix
    /// for counters and without `_info` for info metrics.
    pub fn openmetrics_name(&self) -> &str {
        let suffix = match self.kind {
            MetricType::Counter => "_total",
            MetricType::Info => "_info",
            _ => return &self.name,
        };
        self.name.strip_suffix(suffix).filter(|b| !b.is_empty()).unwrap_or(&self.name)
    }
}

/// One metric (series) of a family.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// The labels, without `__name__` (and without the `le`, `quantile` or
    /// state labels the format adds).
    pub labels: Labels,
    /// The value(s).
    pub value: MetricValue,
    /// Timestamp in milliseconds since the epoch, if the exposition gives
    /// one.
    pub timestamp_ms: Option<i64>,
}

/// A histogram bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// The inclusive upper bound (`le`).
    pub upper_bound: f64,
    /// Observations `<= upper_bound`.
    pub cumulative_count: f64,
}

/// A summary quantile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantile {
    /// The quantile, in `[0, 1]`.
    pub quantile: f64,
    /// Its value.
    pub value: f64,
}

/// One state of a state set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The state name (the value of the label named like the family).
    pub name: String,
    /// Whether the state is currently set.
    pub enabled: bool,
}

/// The value(s) of one metric.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    /// A value of an untyped (unknown) family.
    Untyped(f64),
    /// A gauge value.
    Gauge(f64),
    /// A counter and its creation time (seconds since the epoch).
    Counter {
        /// The count.
        total: f64,
        /// When the counter was created (seconds), OpenMetrics `_created`.
        created: Option<f64>,
    },
    /// A histogram with cumulative buckets in increasing `le` order.
    Histogram {
        /// Buckets; normally the last is `+Inf`.
        buckets: Vec<Bucket>,
        /// Sum of observations (NaN: absent, see the module docs).
        sum: f64,
        /// Count of observations (NaN: absent).
        count: f64,
        /// Creation time (seconds), OpenMetrics `_created`.
        created: Option<f64>,
    },
    /// An OpenMetrics gauge histogram (`_gsum`, `_gcount`).
    GaugeHistogram {
        /// Buckets; normally the last is `+Inf`.
        buckets: Vec<Bucket>,
        /// `_gsum` (NaN: absent).
        sum: f64,
        /// `_gcount` (NaN: absent).
        count: f64,
    },
    /// A summary.
    Summary {
        /// Quantiles in output order.
        quantiles: Vec<Quantile>,
        /// Sum of observations (NaN: absent).
        sum: f64,
        /// Count of observations (NaN: absent).
        count: f64,
        /// Creation time (seconds), OpenMetrics `_created`.
        created: Option<f64>,
    },
    /// An info metric: the information is in the labels; the value is 1.
    Info,
    /// A state set.
    StateSet {
        /// The states in output order.
        states: Vec<State>,
    },
}

impl MetricValue {
    /// The family type this value belongs to.
    pub fn metric_type(&self) -> MetricType {
        match self {
            MetricValue::Untyped(_) => MetricType::Unknown,
            MetricValue::Gauge(_) => MetricType::Gauge,
            MetricValue::Counter { .. } => MetricType::Counter,
            MetricValue::Histogram { .. } => MetricType::Histogram,
            MetricValue::GaugeHistogram { .. } => MetricType::GaugeHistogram,
            MetricValue::Summary { .. } => MetricType::Summary,
            MetricValue::Info => MetricType::Info,
            MetricValue::StateSet { .. } => MetricType::StateSet,
        }
    }

    fn type_name(&self) -> &'static str {
        self.metric_type().as_str()
    }
}

/// Sorts families by name and each family's metrics by labels, the order
/// node_exporter (client_golang) output has. Stable: equal keys keep their
/// order.
pub fn sort_families(families: &mut [MetricFamily]) {
    families.sort_by(|a, b| a.name.cmp(&b.name));
    for f in families.iter_mut() {
        f.metrics.sort_by(|a, b| a.labels.cmp(&b.labels));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        for t in [
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::GaugeHistogram,
            MetricType::Summary,
            MetricType::Info,
            MetricType::StateSet,
            MetricType::Unknown,
        ] {
            assert_eq!(MetricType::parse(t.as_str(), Format::OpenMetrics), Some(t));
        }
        assert_eq!(MetricType::parse("untyped", Format::Text004), Some(MetricType::Unknown));
        assert_eq!(MetricType::parse("untyped", Format::OpenMetrics), None);
        assert_eq!(MetricType::parse("info", Format::Text004), None);
    }

    #[test]
    fn openmetrics_names() {
        assert_eq!(MetricFamily::new("a_total", MetricType::Counter).openmetrics_name(), "a");
        assert_eq!(MetricFamily::new("a", MetricType::Counter).openmetrics_name(), "a");
        assert_eq!(MetricFamily::new("_total", MetricType::Counter).openmetrics_name(), "_total");
        assert_eq!(MetricFamily::new("b_info", MetricType::Info).openmetrics_name(), "b");
        assert_eq!(MetricFamily::new("c_total", MetricType::Gauge).openmetrics_name(), "c_total");
    }

    #[test]
    fn metadata() {
        let m = MetricFamily::new("up", MetricType::Unknown).with_help("Up.").metadata();
        assert_eq!(
            (m.metric.as_str(), m.kind.as_str(), m.help.as_str(), m.unit.as_str()),
            ("up", "unknown", "Up.", "")
        );
    }

    #[test]
    fn sorting() {
        let mut fams = vec![
            MetricFamily::new("b", MetricType::Gauge)
                .with_metric(Labels::from_pairs([("x", "2")]), MetricValue::Gauge(1.0))
                .with_metric(Labels::from_pairs([("x", "10")]), MetricValue::Gauge(2.0)),
            MetricFamily::new("a", MetricType::Gauge),
        ];
        sort_families(&mut fams);
        assert_eq!(fams[0].name, "a");
        assert_eq!(fams[1].metrics[0].labels.get("x"), Some("10"));
    }
}
