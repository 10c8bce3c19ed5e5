//! Property tests: arbitrary families → write → parse_families → the same
//! families, for both formats.

use model::exposition::{
    families_to_string, parse_families, Bucket, Format, Metric, MetricFamily, MetricType,
    MetricValue, Quantile, State,
};
use model::Labels;
use proptest::prelude::*;

/// Any f64 the formats must carry: NaN, ±Inf, zero, huge, tiny, integers.
fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
        (1e-320f64..1e-300),
        (1e300f64..f64::MAX),
    ]
    // -0 prints as "0" (as client_golang does), so it reads back as +0.
    .prop_map(|v| if v == 0.0 { 0.0 } else { v })
}

fn non_negative() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u64..1_000_000_000).prop_map(|i| i as f64),
        (0.0f64..1e20),
        Just(f64::INFINITY),
        (1e-320f64..1e-300),
    ]
}

fn count() -> impl Strategy<Value = f64> {
    prop_oneof![(0u64..1_000_000).prop_map(|i| i as f64), Just(9_007_199_254_740_992.0)]
}

fn label_value() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            any::<char>(),
            Just('"'),
            Just('\\'),
            Just('\n'),
            Just('#'),
            Just('{'),
            Just('}'),
            Just(','),
            Just(' '),
            Just('é'),
            Just('☃'),
        ],
        0..8,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// Label sets: names from `[a-e]...` so they never collide with `le`,
/// `quantile`, `__name__` or a state set's family name (which starts with `f`).
fn labels() -> impl Strategy<Value = Labels> {
    prop::collection::btree_map("[a-e][a-z0-9_]{0,5}", label_value(), 0..3)
        .prop_map(Labels::from_pairs)
}

fn help() -> impl Strategy<Value = Option<String>> {
    prop::option::of(label_value())
}

fn timestamp() -> impl Strategy<Value = Option<i64>> {
    prop::option::of(-1_000_000_000_000_000i64..1_000_000_000_000_000)
}

/// Strictly increasing finite bounds, then +Inf, with cumulative counts.
fn buckets(allow_negative: bool) -> impl Strategy<Value = Vec<Bucket>> {
    let lo = if allow_negative { -1e6 } else { 0.0 };
    (
        prop::collection::btree_set((lo..1e6f64).prop_map(|v| v.to_bits()), 0..4),
        prop::collection::vec(0u32..1000, 5),
    )
        .prop_map(move |(bounds, incs)| {
            let mut bounds: Vec<f64> = bounds.into_iter().map(f64::from_bits).collect();
            bounds.sort_by(|a, b| a.total_cmp(b));
            bounds.dedup();
            bounds.push(f64::INFINITY);
            let mut acc = 0.0;
            bounds
                .into_iter()
                .zip(incs)
                .map(|(upper_bound, inc)| {
                    acc += f64::from(inc);
                    Bucket {
                        upper_bound: if upper_bound == 0.0 { 0.0 } else { upper_bound },
                        cumulative_count: acc,
                    }
                })
                .collect()
        })
}

fn quantiles(om: bool) -> impl Strategy<Value = Vec<Quantile>> {
    let value =
        if om { prop_oneof![non_negative(), Just(f64::NAN)].boxed() } else { any_value().boxed() };
    prop::collection::btree_map(0u32..=1000, value, 0..4).prop_map(|m| {
        m.into_iter()
            .map(|(q, value)| Quantile { quantile: f64::from(q) / 1000.0, value })
            .collect()
    })
}

fn created() -> impl Strategy<Value = Option<f64>> {
    prop::option::of(prop_oneof![(0u64..2_000_000_000).prop_map(|s| s as f64 + 0.5), any_value()])
}

/// A value of `kind` valid for `format`.
fn value(kind: MetricType, format: Format) -> BoxedStrategy<MetricValue> {
    let om = format == Format::OpenMetrics;
    match kind {
        MetricType::Gauge => any_value().prop_map(MetricValue::Gauge).boxed(),
        MetricType::Unknown => any_value().prop_map(MetricValue::Untyped).boxed(),
        MetricType::Counter if om => (non_negative(), created())
            .prop_map(|(total, created)| MetricValue::Counter { total, created })
            .boxed(),
        MetricType::Counter => {
            any_value().prop_map(|total| MetricValue::Counter { total, created: None }).boxed()
        }
        MetricType::Histogram if om => (any::<bool>(), buckets(true), non_negative(), created())
            .prop_map(|(with_sum, buckets, sum, created)| {
                let negative = buckets.iter().any(|b| b.upper_bound < 0.0);
                let total = buckets.last().map_or(0.0, |b| b.cumulative_count);
                let (sum, count) =
                    if with_sum && !negative { (sum, total) } else { (f64::NAN, f64::NAN) };
                MetricValue::Histogram { buckets, sum, count, created }
            })
            .boxed(),
        MetricType::Histogram => (buckets(true), any_value(), any_value())
            .prop_map(|(buckets, sum, count)| MetricValue::Histogram {
                buckets,
                sum,
                count,
                created: None,
            })
            .boxed(),
        MetricType::GaugeHistogram => (any::<bool>(), buckets(true), any_value())
            .prop_map(|(with_sum, buckets, gsum)| {
                let negative = buckets.iter().any(|b| b.upper_bound < 0.0);
                let total = buckets.last().map_or(0.0, |b| b.cumulative_count);
                let gsum =
                    if gsum.is_nan() || (!negative && gsum < 0.0) { gsum.abs() } else { gsum };
                let gsum = if gsum.is_nan() { 1.0 } else { gsum };
                let (sum, count) = if with_sum { (gsum, total) } else { (f64::NAN, f64::NAN) };
                MetricValue::GaugeHistogram { buckets, sum, count }
            })
            .boxed(),
        MetricType::Summary if om => {
            (
                quantiles(true),
                prop::option::of(non_negative()),
                prop::option::of(count()),
                created(),
            )
                .prop_map(|(quantiles, sum, count, created)| {
                    // A summary needs at least one sample to exist in OpenMetrics.
                    let count = if quantiles.is_empty() && sum.is_none() {
                        count.or(Some(0.0))
                    } else {
                        count
                    };
                    MetricValue::Summary {
                        quantiles,
                        sum: sum.unwrap_or(f64::NAN),
                        count: count.unwrap_or(f64::NAN),
                        created,
                    }
                })
                .boxed()
        }
        MetricType::Summary => (quantiles(false), any_value(), any_value())
            .prop_map(|(quantiles, sum, count)| MetricValue::Summary {
                quantiles,
                sum,
                count,
                created: None,
            })
            .boxed(),
        MetricType::Info => Just(MetricValue::Info).boxed(),
        MetricType::StateSet => prop::collection::btree_map(label_value(), any::<bool>(), 1..4)
            .prop_map(|m| MetricValue::StateSet {
                states: m.into_iter().map(|(name, enabled)| State { name, enabled }).collect(),
            })
            .boxed(),
    }
}

fn kinds(format: Format) -> Vec<MetricType> {
    let mut k = vec![
        MetricType::Counter,
        MetricType::Gauge,
        MetricType::Histogram,
        MetricType::Summary,
        MetricType::Unknown,
    ];
    if format == Format::OpenMetrics {
        k.extend([MetricType::GaugeHistogram, MetricType::Info, MetricType::StateSet]);
    }
    k
}

/// A family; `index` makes names unique across families so that they never
/// clash (`a` vs `a_total`).
fn family(index: usize, format: Format) -> BoxedStrategy<MetricFamily> {
    let om = format == Format::OpenMetrics;
    (
        prop::sample::select(kinds(format)),
        "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        prop::option::of("[a-z]{1,5}"),
        help(),
        any::<bool>(),
    )
        .prop_flat_map(move |(kind, stem, unit, help, info_ts)| {
            let unit = if om && !matches!(kind, MetricType::Info | MetricType::StateSet) {
                unit
            } else {
                None
            };
            let base = match &unit {
                Some(u) => format!("f{index}_{stem}_{u}"),
                None => format!("f{index}_{stem}"),
            };
            let name = match kind {
                MetricType::Counter => format!("{base}_total"),
                MetricType::Info => format!("{base}_info"),
                _ => base,
            };
            let ts = if kind == MetricType::Info {
                // Info metrics form one group: timestamps all present or all absent.
                if info_ts {
                    timestamp().prop_map(|t| t.or(Some(0))).boxed()
                } else {
                    Just(None).boxed()
                }
            } else {
                timestamp().boxed()
            };
            let metric = (labels(), value(kind, format), ts)
                .prop_map(|(labels, value, timestamp_ms)| Metric { labels, value, timestamp_ms });
            prop::collection::vec(metric, 0..4).prop_map(move |mut metrics| {
                // Unique label sets: OpenMetrics forbids interleaving, text
                // merges histogram/summary samples by label set.
                let mut seen = std::collections::HashSet::new();
                metrics.retain(|m| seen.insert(m.labels.clone()));
                MetricFamily {
                    name: name.clone(),
                    help: help.clone(),
                    kind,
                    unit: unit.clone(),
                    metrics,
                }
            })
        })
        .boxed()
}

fn families(format: Format) -> impl Strategy<Value = Vec<MetricFamily>> {
    (0usize..5).prop_flat_map(move |n| (0..n).map(|i| family(i, format)).collect::<Vec<_>>())
}

/// Equality that treats NaN as equal to NaN (Debug prints both as `NaN`).
fn same(a: &[MetricFamily], b: &[MetricFamily]) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

fn round_trip(fams: &[MetricFamily], format: Format) -> Result<(), TestCaseError> {
    let text = families_to_string(fams, format).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back = parse_families(text.as_bytes(), format)
        .map_err(|e| TestCaseError::fail(format!("{e}\n--- input ---\n{text}")))?;
    prop_assert!(
        same(fams, &back),
        "\n--- written ---\n{}\n--- want ---\n{:?}\n--- got ---\n{:?}",
        text,
        fams,
        back
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn text_round_trip(fams in families(Format::Text004)) {
        round_trip(&fams, Format::Text004)?;
    }

    #[test]
    fn openmetrics_round_trip(fams in families(Format::OpenMetrics)) {
        round_trip(&fams, Format::OpenMetrics)?;
    }

    /// Arbitrary bytes never panic either parser.
    #[test]
    fn parsers_do_not_panic(input in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_families(&input, Format::Text004);
        let _ = parse_families(&input, Format::OpenMetrics);
    }

    /// Mutated valid expositions never panic and errors are positioned.
    #[test]
    fn mutated_inputs(fams in families(Format::OpenMetrics), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        for format in [Format::Text004, Format::OpenMetrics] {
            let Ok(text) = families_to_string(&fams, format) else { continue };
            let mut bytes = text.into_bytes();
            if !bytes.is_empty() {
                let i = pos.index(bytes.len());
                bytes[i] = byte;
            }
            if let Err(e) = parse_families(&bytes, format) {
                prop_assert!(e.line >= 1 && e.column >= 1, "{e}");
            }
        }
    }
}
