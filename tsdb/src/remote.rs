//! Prometheus remote-write 1.0: the wire messages (protobuf, snappy block
//! compression) and conversions to and from model types. Pure: no I/O.
//!
//! The messages are declared with `prost` derives, field numbers as in
//! Prometheus's `prompb` package, so no `protoc` is needed at build time.
//! Native histograms (field 4 of `TimeSeries`) are not decoded yet: prost
//! skips unknown fields and there is no accessor for them, so callers can
//! tell users their histograms were ignored only by counting series
//! without samples.
//!
//! ```
//! use tsdb::remote::{decode_write_request, encode_write_request, TimeSeries, WriteRequest};
//! use model::Labels;
//!
//! let labels = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
//! let req = WriteRequest { timeseries: vec![TimeSeries::from_samples(&labels, &[(1000, 1.0)])], metadata: vec![] };
//! let body = encode_write_request(&req);
//! let back = decode_write_request(&body, 1 << 20).unwrap();
//! assert_eq!(back.timeseries[0].labels(), labels);
//! ```

use model::{Label as ModelLabel, Labels};
use prost::Message;

/// The content type of remote-write 1.0 bodies.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
/// The header naming the protocol version, as senders set it.
pub const VERSION_HEADER: &str = "X-Prometheus-Remote-Write-Version";
/// The version this module speaks.
pub const VERSION: &str = "0.1.0";

/// A remote-write request: a batch of series with samples, and metadata.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// The series in this batch.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metric metadata (HELP/TYPE/UNIT) sent alongside.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// One series: labels and its samples in time order.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Labels, sorted by name (senders must sort; receivers sort anyway).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Exemplars (kept on the wire, not stored).
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
}

/// A label pair on the wire.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A float sample on the wire.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// An exemplar on the wire.
#[derive(Clone, PartialEq, Message)]
pub struct Exemplar {
    /// Exemplar labels (e.g. trace_id).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// The exemplar's value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// Metric metadata on the wire.
#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    /// The metric type (see [`MetricType`]).
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    /// The family name.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// HELP text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// UNIT text.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// Metric types as numbered in `prompb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    /// Unknown / untyped.
    Unknown = 0,
    /// Counter.
    Counter = 1,
    /// Gauge.
    Gauge = 2,
    /// Histogram.
    Histogram = 3,
    /// Gauge histogram.
    Gaugehistogram = 4,
    /// Summary.
    Summary = 5,
    /// Info.
    Info = 6,
    /// State set.
    Stateset = 7,
}

impl MetricType {
    /// The lowercase name Prometheus's API uses.
    pub fn api_name(self) -> &'static str {
        match self {
            MetricType::Unknown => "unknown",
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Gaugehistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::Stateset => "stateset",
        }
    }

    /// Parses the API name back (unknown names give `Unknown`).
    pub fn from_api_name(s: &str) -> MetricType {
        match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::Gaugehistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::Stateset,
            _ => MetricType::Unknown,
        }
    }
}

impl TimeSeries {
    /// Builds a series from model labels and `(timestamp_ms, value)` pairs.
    pub fn from_samples(labels: &Labels, samples: &[(i64, f64)]) -> Self {
        TimeSeries {
            labels: labels
                .iter()
                .map(|l| Label { name: l.name.clone(), value: l.value.clone() })
                .collect(),
            samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
            exemplars: Vec::new(),
        }
    }

    /// The series' labels as a model label set (sorted; a repeated name
    /// keeps the last value).
    pub fn labels(&self) -> Labels {
        Labels::new(self.labels.iter().map(|l| ModelLabel::new(&l.name, &l.value)).collect())
    }
}

impl MetricMetadata {
    /// Converts to model's metadata.
    pub fn to_model(&self) -> model::MetricMetadata {
        let kind = MetricType::try_from(self.r#type).unwrap_or(MetricType::Unknown);
        model::MetricMetadata {
            metric: self.metric_family_name.clone(),
            kind: kind.api_name().to_string(),
            help: self.help.clone(),
            unit: self.unit.clone(),
        }
    }
}

/// Why a remote-write body was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteWriteError {
    /// The snappy framing is invalid.
    #[error("snappy decode: {0}")]
    Snappy(#[from] snap::Error),
    /// The decompressed body would exceed the configured limit.
    #[error("decompressed body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size announced by the snappy header.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The protobuf is invalid.
    #[error("protobuf decode: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A series has an invalid label set.
    #[error("series {index}: {reason}")]
    InvalidSeries {
        /// Index of the series in the request.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Encodes a request as a remote-write body (protobuf, snappy block format).
pub fn encode_write_request(req: &WriteRequest) -> Vec<u8> {
    let raw = req.encode_to_vec();
    // snap's raw encoder only fails for inputs over ~4 GiB; a request that
    // large is a caller bug, and an empty body is then rejected by receivers.
    snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default()
}

/// Decodes a remote-write body, refusing bodies that decompress to more than
/// `max_decompressed` bytes (a hostile body cannot make us allocate more).
pub fn decode_write_request(
    body: &[u8],
    max_decompressed: usize,
) -> Result<WriteRequest, RemoteWriteError> {
    let size = snap::raw::decompress_len(body)?;
    if size > max_decompressed {
        return Err(RemoteWriteError::TooLarge { size, limit: max_decompressed });
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body)?;
    let req = WriteRequest::decode(raw.as_slice())?;
    Ok(req)
}

/// Checks what Prometheus's receiver checks of each series: a metric name,
/// valid and unique label names, no empty label values. Returns the first
/// problem.
pub fn validate(req: &WriteRequest) -> Result<(), RemoteWriteError> {
    for (index, ts) in req.timeseries.iter().enumerate() {
        let bad = |reason: String| RemoteWriteError::InvalidSeries { index, reason };
        let mut names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad(format!("duplicate label name {:?}", w[0])));
        }
        for l in &ts.labels {
            if !model::is_valid_label_name(&l.name) {
                return Err(bad(format!("invalid label name {:?}", l.name)));
            }
        }
        match ts.labels.iter().find(|l| l.name == model::METRIC_NAME) {
            None => return Err(bad("missing metric name (__name__ label)".into())),
            Some(l) if !model::is_valid_metric_name(&l.value) => {
                return Err(bad(format!("invalid metric name {:?}", l.value)))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_garbage_and_oversize() {
        assert!(decode_write_request(b"not snappy at all", 1 << 20).is_err());
        let labels = Labels::from_pairs([("__name__", "x")]);
        let samples: Vec<(i64, f64)> = (0..1000).map(|i| (i, i as f64)).collect();
        let body = encode_write_request(&WriteRequest {
            timeseries: vec![TimeSeries::from_samples(&labels, &samples)],
            metadata: vec![],
        });
        assert!(matches!(decode_write_request(&body, 100), Err(RemoteWriteError::TooLarge { .. })));
        // Valid snappy of invalid protobuf.
        let junk = snap::raw::Encoder::new().compress_vec(&[0xff, 0xff, 0xff]).unwrap();
        assert!(matches!(decode_write_request(&junk, 1 << 20), Err(RemoteWriteError::Protobuf(_))));
    }

    #[test]
    fn validate_catches_bad_series() {
        let mk = |pairs: &[(&str, &str)]| WriteRequest {
            timeseries: vec![TimeSeries {
                labels: pairs.iter().map(|(n, v)| Label { name: n.to_string(), value: v.to_string() }).collect(),
                samples: vec![],
                exemplars: vec![],
            }],
            metadata: vec![],
        };
        assert!(validate(&mk(&[("__name__", "ok"), ("a", "1")])).is_ok());
        assert!(validate(&mk(&[("a", "1")])).is_err());
        assert!(validate(&mk(&[("__name__", "ok"), ("a", "1"), ("a", "2")])).is_err());
        assert!(validate(&mk(&[("__name__", "1bad")])).is_err());
        assert!(validate(&mk(&[("__name__", "ok"), ("b-c", "1")])).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn round_trip(series in proptest::collection::vec(
            (proptest::collection::btree_map("[a-z_]{1,6}", ".{0,8}", 0..4),
             proptest::collection::vec((any::<i64>(), any::<f64>()), 0..20)), 0..5)) {
            let req = WriteRequest {
                timeseries: series.iter().map(|(l, s)| TimeSeries::from_samples(&Labels::from_pairs(l.clone()), s)).collect(),
                metadata: vec![MetricMetadata { r#type: MetricType::Counter as i32, metric_family_name: "m".into(), help: "h".into(), unit: String::new() }],
            };
            let back = decode_write_request(&encode_write_request(&req), 64 << 20).unwrap();
            prop_assert_eq!(back.timeseries.len(), req.timeseries.len());
            for (a, b) in back.timeseries.iter().zip(&req.timeseries) {
                prop_assert_eq!(a.labels(), b.labels());
                prop_assert_eq!(a.samples.len(), b.samples.len());
                for (x, y) in a.samples.iter().zip(&b.samples) {
                    prop_assert_eq!(x.timestamp, y.timestamp);
                    // proto3 omits a zero double, so -0.0 arrives as +0.0
                    // (Prometheus's own encoder does the same).
                    if y.value == 0.0 {
                        prop_assert_eq!(x.value, 0.0);
                    } else {
                        prop_assert_eq!(x.value.to_bits(), y.value.to_bits());
                    }
                }
            }
            prop_assert_eq!(back.metadata[0].to_model().kind, "counter");
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_write_request(&body, 1 << 20);
        }
    }
}
