//! Grouping samples into typed metric families, with the OpenMetrics
//! semantic checks.

use std::collections::{HashMap, HashSet};

use super::parser::{ns_to_ms, Entry, ParseError, ParseErrorKind, Parser, SampleEntry};
use super::{Bucket, Format, Metric, MetricFamily, MetricType, MetricValue, Quantile, State};
use crate::{Label, Labels, METRIC_NAME};

/// Parses a whole exposition into metric families, in input order.
///
/// Text 0.0.4 follows Prometheus' text parser: samples of a family may be
/// spread out, `_sum`/`_count`/`_bucket` samples join the histogram or
/// summary family they belong to, samples without a `# TYPE` form untyped
/// families, and `# HELP`/`# TYPE` may appear once per family (`# TYPE`
/// before the family's samples).
///
/// OpenMetrics additionally enforces the rules of the specification (as the
/// reference parser and the OpenMetrics test suite check them): metadata
/// before samples and at most once, families contiguous and not clashing
/// (`a` vs `a_total`, ...), series of a family not interleaved, timestamps
/// not going backwards within a series, counter-like values (`_total`,
/// `_count`, `_sum`, `_bucket`, `_gcount`) non-negative and not NaN, integer
/// counts, valid `le` (`+Inf` spelled canonically) and `quantile` labels,
/// buckets in increasing order with non-decreasing counts and a final
/// `+Inf` bucket equal to `_count`, `_sum`/`_count` pairing, state set and
/// info values, units matching the name suffix, exemplars only on counters'
/// `_total` and histogram buckets, and the final `# EOF`.
///
/// Points of one series whose timestamps are equal at millisecond
/// precision are merged (the first value wins).
pub fn parse_families(input: &[u8], format: Format) -> Result<Vec<MetricFamily>, ParseError> {
    match format {
        Format::Text004 => text_families(input),
        Format::OpenMetrics => om_families(input),
    }
}

fn fam_err(line: usize, family: &str, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        column: 1,
        kind: ParseErrorKind::Family { family: family.to_string(), message: message.into() },
    }
}

/// The sample's labels without `__name__`, sorted, checked for duplicates.
fn sample_labels(s: &SampleEntry<'_>) -> Result<Vec<Label>, ParseError> {
    let mut v = Vec::new();
    s.push_labels(&mut v).map_err(|mut e| {
        e.line = s.line();
        e
    })?;
    v.sort_by(|a, b| a.name.cmp(&b.name));
    let dup = v.windows(2).find(|w| w[0].name == w[1].name).map(|w| w[0].name.clone());
    let dup = dup.or_else(|| v.iter().find(|l| l.name == METRIC_NAME).map(|l| l.name.clone()));
    if let Some(name) = dup {
        return Err(ParseError {
            line: s.line(),
            column: s.name.chars().count() + 1,
            kind: ParseErrorKind::DuplicateLabel(name),
        });
    }
    Ok(v)
}

/// Removes label `name` from a sorted label vector, returning its value.
fn take_label(labels: &mut Vec<Label>, name: &str) -> Option<String> {
    let i = labels.iter().position(|l| l.name == name)?;
    Some(labels.remove(i).value)
}

fn to_labels(v: Vec<Label>) -> Labels {
    // Callers pass sorted vectors with unique names; fall back to sorting.
    match Labels::from_sorted(v.clone()) {
        Some(l) => l,
        None => Labels::new(v),
    }
}

// ---------------------------------------------------------------- text 0.0.4

struct TextFamily {
    fam: MetricFamily,
    has_samples: bool,
    type_seen: bool,
    /// Histogram/summary metrics by label set (without le/quantile).
    groups: HashMap<Vec<Label>, usize>,
}

fn text_families(input: &[u8]) -> Result<Vec<MetricFamily>, ParseError> {
    let mut p = Parser::new(input, Format::Text004);
    let mut fams: Vec<TextFamily> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let get =
        |fams: &mut Vec<TextFamily>, by_name: &mut HashMap<String, usize>, name: &str| -> usize {
            if let Some(&i) = by_name.get(name) {
                return i;
            }
            fams.push(TextFamily {
                fam: MetricFamily::new(name, MetricType::Unknown),
                has_samples: false,
                type_seen: false,
                groups: HashMap::new(),
            });
            by_name.insert(name.to_string(), fams.len() - 1);
            fams.len() - 1
        };
    while let Some(e) = p.next()? {
        let line = p.line_number();
        match e {
            Entry::Help { name, text } => {
                let i = get(&mut fams, &mut by_name, name);
                if fams[i].fam.help.is_some() {
                    return Err(fam_err(line, name, "second HELP line"));
                }
                fams[i].fam.help = Some(text.into_owned());
            }
            Entry::Type { name, kind } => {
                let i = get(&mut fams, &mut by_name, name);
                let f = &mut fams[i];
                if f.type_seen {
                    return Err(fam_err(line, name, "second TYPE line"));
                }
                if f.has_samples {
                    return Err(fam_err(line, name, "TYPE line after samples of the family"));
                }
                f.type_seen = true;
                f.fam.kind = kind;
            }
            Entry::Unit { .. } | Entry::Comment(_) => {}
            Entry::Sample(s) => text_sample(&mut fams, &mut by_name, &s, &get)?,
        }
    }
    Ok(fams.into_iter().map(|f| f.fam).collect())
}

type GetFn = dyn Fn(&mut Vec<TextFamily>, &mut HashMap<String, usize>, &str) -> usize;

fn text_sample(
    fams: &mut Vec<TextFamily>,
    by_name: &mut HashMap<String, usize>,
    s: &SampleEntry<'_>,
    get: &GetFn,
) -> Result<(), ParseError> {
    let line = s.line();
    // Which family: the exact name, else the histogram/summary the suffix
    // belongs to, else a new untyped family.
    let mut target = by_name.get(s.name).copied().map(|i| (i, ""));
    if target.is_none() {
        for suffix in ["_bucket", "_sum", "_count"] {
            let Some(base) = s.name.strip_suffix(suffix) else { continue };
            if let Some(&i) = by_name.get(base) {
                let k = fams[i].fam.kind;
                if k == MetricType::Histogram || (k == MetricType::Summary && suffix != "_bucket") {
                    target = Some((i, suffix));
                }
            }
        }
    }
    let (i, suffix) = match target {
        Some(t) => t,
        None => (get(fams, by_name, s.name), ""),
    };
    let mut labels = sample_labels(s)?;
    let f = &mut fams[i];
    f.has_samples = true;
    let fname = f.fam.name.clone();
    let ts = s.timestamp_ms;
    let simple = |value| Metric { labels: Labels::empty(), value, timestamp_ms: ts };
    match f.fam.kind {
        MetricType::Counter => {
            let mut m = simple(MetricValue::Counter { total: s.value, created: None });
            m.labels = to_labels(labels);
            f.fam.metrics.push(m);
        }
        MetricType::Gauge => {
            let mut m = simple(MetricValue::Gauge(s.value));
            m.labels = to_labels(labels);
            f.fam.metrics.push(m);
        }
        MetricType::Unknown => {
            let mut m = simple(MetricValue::Untyped(s.value));
            m.labels = to_labels(labels);
            f.fam.metrics.push(m);
        }
        MetricType::Summary | MetricType::Histogram => {
            let is_hist = f.fam.kind == MetricType::Histogram;
            // As Prometheus' text parser does, `le` (histograms) and
            // `quantile` (summaries) never count as ordinary labels, on any
            // sample of the family.
            let special = take_label(&mut labels, if is_hist { "le" } else { "quantile" });
            let extra = match (is_hist, suffix, special) {
                (true, "_bucket", None) => {
                    return Err(fam_err(line, &fname, "bucket sample without \"le\" label"));
                }
                (true, "_bucket", Some(le)) => Some(parse_text_float(&le).ok_or_else(|| {
                    fam_err(line, &fname, format!("invalid \"le\" label value {le:?}"))
                })?),
                (false, "", None) => {
                    return Err(fam_err(line, &fname, "summary sample without \"quantile\" label"));
                }
                (false, "", Some(q)) => Some(parse_text_float(&q).ok_or_else(|| {
                    fam_err(line, &fname, format!("invalid \"quantile\" label value {q:?}"))
                })?),
                (true, "", _) => {
                    return Err(fam_err(
                        line,
                        &fname,
                        "histogram sample without _bucket, _sum or _count suffix",
                    ))
                }
                _ => None,
            };
            let idx = match f.groups.get(&labels) {
                Some(&idx) => idx,
                None => {
                    let value = if is_hist {
                        MetricValue::Histogram {
                            buckets: Vec::new(),
                            sum: f64::NAN,
                            count: f64::NAN,
                            created: None,
                        }
                    } else {
                        MetricValue::Summary {
                            quantiles: Vec::new(),
                            sum: f64::NAN,
                            count: f64::NAN,
                            created: None,
                        }
                    };
                    f.fam.metrics.push(Metric {
                        labels: to_labels(labels.clone()),
                        value,
                        timestamp_ms: ts,
                    });
                    f.groups.insert(labels, f.fam.metrics.len() - 1);
                    f.fam.metrics.len() - 1
                }
            };
            let m = &mut f.fam.metrics[idx];
            if m.timestamp_ms.is_none() {
                m.timestamp_ms = ts;
            }
            match &mut m.value {
                MetricValue::Histogram { buckets, sum, count, .. } => match suffix {
                    "_bucket" => buckets.push(Bucket {
                        upper_bound: extra.unwrap_or(f64::INFINITY),
                        cumulative_count: s.value,
                    }),
                    "_sum" => *sum = s.value,
                    _ => *count = s.value,
                },
                MetricValue::Summary { quantiles, sum, count, .. } => match suffix {
                    "" => quantiles
                        .push(Quantile { quantile: extra.unwrap_or(f64::NAN), value: s.value }),
                    "_sum" => *sum = s.value,
                    _ => *count = s.value,
                },
                _ => {}
            }
        }
        // Text 0.0.4 has no other types.
        other => {
            return Err(fam_err(line, &fname, format!("type {other} is not a text 0.0.4 type")))
        }
    }
    Ok(())
}

fn parse_text_float(s: &str) -> Option<f64> {
    super::float::parse_go_float(s)
}

// -------------------------------------------------------------- OpenMetrics

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Suffix {
    None,
    Total,
    Created,
    Count,
    Sum,
    Bucket,
    GCount,
    GSum,
    Info,
}

impl Suffix {
    fn as_str(self) -> &'static str {
        match self {
            Suffix::None => "",
            Suffix::Total => "_total",
            Suffix::Created => "_created",
            Suffix::Count => "_count",
            Suffix::Sum => "_sum",
            Suffix::Bucket => "_bucket",
            Suffix::GCount => "_gcount",
            Suffix::GSum => "_gsum",
            Suffix::Info => "_info",
        }
    }

    /// The sample names a family of this type may have.
    fn allowed(kind: Option<MetricType>) -> &'static [Suffix] {
        match kind {
            Some(MetricType::Counter) => &[Suffix::Total, Suffix::Created],
            Some(MetricType::Summary) => {
                &[Suffix::None, Suffix::Count, Suffix::Sum, Suffix::Created]
            }
            Some(MetricType::Histogram) => {
                &[Suffix::Count, Suffix::Sum, Suffix::Bucket, Suffix::Created]
            }
            Some(MetricType::GaugeHistogram) => &[Suffix::GCount, Suffix::GSum, Suffix::Bucket],
            Some(MetricType::Info) => &[Suffix::Info],
            _ => &[Suffix::None],
        }
    }

    fn counter_like(self) -> bool {
        matches!(
            self,
            Suffix::Total
                | Suffix::Sum
                | Suffix::Count
                | Suffix::Bucket
                | Suffix::GCount
                | Suffix::GSum
        )
    }
}

struct OmSample {
    suffix: Suffix,
    /// Labels without `__name__` and without le/quantile/state.
    group: Vec<Label>,
    /// le, quantile, or the state (for state sets).
    le_or_q: f64,
    state: Option<String>,
    value: f64,
    ts_ns: Option<i128>,
    line: usize,
}

struct OmFamily {
    name: String,
    help: Option<String>,
    kind: Option<MetricType>,
    unit: Option<String>,
    unit_line: usize,
    first_line: usize,
    samples: Vec<OmSample>,
    // Grouping state (as the reference parser keeps it).
    group: Option<Vec<Label>>,
    group_ts: Option<i128>,
    seen_groups: HashSet<Vec<Label>>,
    group_ts_series: HashSet<(Suffix, Vec<Label>)>,
}

impl OmFamily {
    fn new(name: &str, kind: Option<MetricType>, line: usize) -> Self {
        OmFamily {
            name: name.to_string(),
            help: None,
            kind,
            unit: None,
            unit_line: line,
            first_line: line,
            samples: Vec::new(),
            group: None,
            group_ts: None,
            seen_groups: HashSet::new(),
            group_ts_series: HashSet::new(),
        }
    }
}

fn om_families(input: &[u8]) -> Result<Vec<MetricFamily>, ParseError> {
    let mut p = Parser::new(input, Format::OpenMetrics);
    let mut out = Vec::new();
    let mut seen_names: HashSet<String> = HashSet::new();
    let mut cur: Option<OmFamily> = None;
    while let Some(e) = p.next()? {
        let line = p.line_number();
        match e {
            Entry::Help { name, .. } | Entry::Type { name, .. } | Entry::Unit { name, .. } => {
                let same = cur.as_ref().is_some_and(|f| f.name == name);
                if same && cur.as_ref().is_some_and(|f| !f.samples.is_empty() || f.group.is_some())
                {
                    return Err(fam_err(line, name, "metadata after samples of the family"));
                }
                if !same {
                    if let Some(f) = cur.take() {
                        out.push(finish(f, &mut seen_names)?);
                    }
                    cur = Some(OmFamily::new(name, None, line));
                }
                let f = cur.as_mut().ok_or_else(|| fam_err(line, name, "internal: no family"))?;
                match e {
                    Entry::Help { text, .. } => {
                        if f.help.is_some() {
                            return Err(fam_err(line, name, "more than one HELP line"));
                        }
                        f.help = Some(text.into_owned());
                    }
                    Entry::Type { kind, .. } => {
                        if f.kind.is_some() {
                            return Err(fam_err(line, name, "more than one TYPE line"));
                        }
                        f.kind = Some(kind);
                    }
                    Entry::Unit { unit, .. } => {
                        if f.unit.is_some() {
                            return Err(fam_err(line, name, "more than one UNIT line"));
                        }
                        f.unit = Some(unit.to_string());
                        f.unit_line = line;
                    }
                    _ => {}
                }
            }
            Entry::Comment(_) => {}
            Entry::Sample(s) => {
                let suffix = cur.as_ref().and_then(|f| {
                    let rest = s.name.strip_prefix(f.name.as_str())?;
                    Suffix::allowed(f.kind).iter().copied().find(|x| x.as_str() == rest)
                });
                let suffix = match suffix {
                    Some(x) => x,
                    None => {
                        if let Some(f) = cur.take() {
                            out.push(finish(f, &mut seen_names)?);
                        }
                        cur = Some(OmFamily::new(s.name, Some(MetricType::Unknown), line));
                        Suffix::None
                    }
                };
                let f = cur.as_mut().ok_or_else(|| fam_err(line, s.name, "internal: no family"))?;
                om_sample(f, &s, suffix)?;
            }
        }
    }
    if let Some(f) = cur.take() {
        out.push(finish(f, &mut seen_names)?);
    }
    Ok(out)
}

fn is_integer(v: f64) -> bool {
    v.is_finite() && v.fract() == 0.0
}

fn om_sample(f: &mut OmFamily, s: &SampleEntry<'_>, suffix: Suffix) -> Result<(), ParseError> {
    let line = s.line();
    let name = f.name.clone();
    let err = |m: String| fam_err(line, &name, m);
    let kind = f.kind.unwrap_or(MetricType::Unknown);
    let mut labels = sample_labels(s)?;
    let full_labels = labels.clone();
    let mut le_or_q = f64::NAN;
    let mut state = None;

    if kind == MetricType::StateSet {
        state = Some(
            take_label(&mut labels, &name)
                .ok_or_else(|| err(format!("state set sample without the {name:?} label")))?,
        );
    }
    if suffix == Suffix::Bucket {
        let le = take_label(&mut labels, "le")
            .ok_or_else(|| err("bucket sample without \"le\" label".into()))?;
        let v = le.parse::<f64>().ok().filter(|v| !v.is_nan());
        match v {
            Some(v) if v == f64::INFINITY && le != "+Inf" => {
                return Err(err(format!("non-canonical \"le\" label {le:?} (write \"+Inf\")")))
            }
            Some(v) => le_or_q = v,
            None => return Err(err(format!("invalid \"le\" label {le:?}"))),
        }
        if !is_integer(s.value) {
            return Err(err(format!("bucket value {} is not an integer", s.value)));
        }
    }
    if matches!(suffix, Suffix::Count | Suffix::GCount) && !is_integer(s.value) {
        return Err(err(format!("count value {} is not an integer", s.value)));
    }
    if kind == MetricType::Summary && suffix == Suffix::None {
        let q = take_label(&mut labels, "quantile")
            .ok_or_else(|| err("summary sample without \"quantile\" label".into()))?;
        match q.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => le_or_q = v,
            _ => {
                return Err(err(format!(
                    "invalid \"quantile\" label {q:?} (must be a number in [0, 1])"
                )))
            }
        }
    }

    // Grouping: series of a family must not interleave; within a series
    // timestamps must all be present or absent and must not go backwards.
    let g = if kind == MetricType::Info { Vec::new() } else { labels.clone() };
    let ts = s.timestamp_ns;
    let same_group = f.group.as_ref() == Some(&g);
    if f.group.is_some() && !same_group && f.seen_groups.contains(&g) {
        return Err(err(
            "series of the family are interleaved (samples of one series must be contiguous)"
                .into(),
        ));
    }
    if same_group {
        if ts.is_none() != f.group_ts.is_none() {
            return Err(err("mix of samples with and without timestamp in one series".into()));
        }
        if let (Some(prev), Some(t)) = (f.group_ts, ts) {
            if prev > t && kind != MetricType::Info {
                return Err(err("timestamps went backwards within a series".into()));
            }
        }
    } else {
        f.group_ts_series.clear();
    }
    let series_id = (suffix, full_labels);
    let duplicate = ts == f.group_ts && f.group_ts_series.contains(&series_id);
    f.group_ts_series.insert(series_id);
    f.group = Some(g.clone());
    f.group_ts = ts;
    if !same_group {
        f.seen_groups.insert(g);
    }

    // Values.
    let v = s.value;
    if kind == MetricType::StateSet && v != 0.0 && v != 1.0 {
        return Err(err(format!("state set value {v} is not 0 or 1")));
    }
    if kind == MetricType::Info && v != 1.0 {
        return Err(err(format!("info value {v} is not 1")));
    }
    if kind == MetricType::Summary && suffix == Suffix::None && v < 0.0 {
        return Err(err(format!("quantile value {v} is negative")));
    }
    if suffix.counter_like() && v.is_nan() {
        return Err(err(format!("{} value is NaN", suffix.as_str())));
    }
    if suffix.counter_like() && suffix != Suffix::GSum && v < 0.0 {
        return Err(err(format!("{} value {v} is negative", suffix.as_str())));
    }
    if s.exemplar.is_some() {
        let ok = match kind {
            MetricType::Histogram | MetricType::GaugeHistogram => suffix == Suffix::Bucket,
            MetricType::Counter => suffix == Suffix::Total,
            _ => false,
        };
        if !ok {
            return Err(err(format!(
                "exemplar on a {}{} sample (only counter _total and histogram _bucket samples may have one)",
                kind,
                suffix.as_str()
            )));
        }
        if let Some(ex) = &s.exemplar {
            ex.labels().map_err(|mut e| {
                e.line = line;
                e
            })?;
        }
    }
    if !duplicate {
        // For info metrics each label set is its own metric.
        let group = if kind == MetricType::Info { labels } else { g_from(&f.group) };
        f.samples.push(OmSample { suffix, group, le_or_q, state, value: v, ts_ns: ts, line });
    }
    Ok(())
}

fn g_from(g: &Option<Vec<Label>>) -> Vec<Label> {
    g.clone().unwrap_or_default()
}

/// Histogram structure checks, per series and timestamp.
fn check_histogram(f: &OmFamily) -> Result<(), ParseError> {
    struct Acc {
        last_le: Option<f64>,
        last_value: f64,
        count: Option<f64>,
        has_sum: bool,
        has_gsum: bool,
        negative_buckets: bool,
        negative_gsum: bool,
        line: usize,
    }
    let name = &f.name;
    let check = |a: &Acc| -> Result<(), ParseError> {
        let e = |m: &str| fam_err(a.line, name, m);
        if a.last_le != Some(f64::INFINITY) {
            return Err(e("the last bucket must be le=\"+Inf\""));
        }
        if a.count.is_some_and(|c| c != a.last_value) {
            return Err(e("count does not match the +Inf bucket"));
        }
        if a.has_sum && a.count.is_none() {
            return Err(e("_sum without _count"));
        }
        if a.has_gsum && a.count.is_none() {
            return Err(e("_gsum without _gcount"));
        }
        if !(a.has_sum || a.has_gsum) && a.count.is_some() {
            return Err(e("_count/_gcount without _sum/_gsum"));
        }
        if a.negative_buckets && a.has_sum {
            return Err(e("_sum is not allowed with negative buckets"));
        }
        if !a.negative_buckets && a.negative_gsum {
            return Err(e("negative _gsum without negative buckets"));
        }
        Ok(())
    };
    let mut acc: Option<Acc> = None;
    let mut key: Option<(&Vec<Label>, Option<i128>)> = None;
    for s in &f.samples {
        let k = (&s.group, s.ts_ns);
        if key != Some(k) {
            if let Some(a) = &acc {
                check(a)?;
            }
            acc = Some(Acc {
                last_le: None,
                last_value: 0.0,
                count: None,
                has_sum: false,
                has_gsum: false,
                negative_buckets: false,
                negative_gsum: false,
                line: s.line,
            });
            key = Some(k);
        }
        let Some(a) = acc.as_mut() else { continue };
        a.line = s.line;
        match s.suffix {
            Suffix::Bucket => {
                let b = s.le_or_q;
                if b < 0.0 {
                    a.negative_buckets = true;
                }
                if a.last_le.is_some_and(|l| b <= l) {
                    return Err(fam_err(s.line, name, "buckets out of order (le must increase)"));
                }
                if s.value < a.last_value {
                    return Err(fam_err(
                        s.line,
                        name,
                        "bucket counts decrease (they must be cumulative)",
                    ));
                }
                a.last_le = Some(b);
                a.last_value = s.value;
            }
            Suffix::Count | Suffix::GCount => a.count = Some(s.value),
            Suffix::Sum => a.has_sum = true,
            Suffix::GSum => {
                a.has_gsum = true;
                if s.value < 0.0 {
                    a.negative_gsum = true;
                }
            }
            _ => {}
        }
    }
    if let Some(a) = &acc {
        check(a)?;
    }
    Ok(())
}

/// Checks a finished family and converts it.
fn finish(f: OmFamily, seen_names: &mut HashSet<String>) -> Result<MetricFamily, ParseError> {
    let kind = f.kind.unwrap_or(MetricType::Unknown);
    let mut names: Vec<&str> = Suffix::allowed(Some(kind)).iter().map(|s| s.as_str()).collect();
    if !names.contains(&"") {
        names.push("");
    }
    for suffix in names {
        let full = format!("{}{}", f.name, suffix);
        if !seen_names.insert(full.clone()) {
            return Err(fam_err(
                f.first_line,
                &f.name,
                format!("name {full:?} clashes with an earlier family"),
            ));
        }
    }
    if let Some(unit) = f.unit.as_deref().filter(|u| !u.is_empty()) {
        if !f.name.ends_with(&format!("_{unit}")) {
            return Err(fam_err(
                f.unit_line,
                &f.name,
                format!("unit {unit:?} is not the suffix of the family name"),
            ));
        }
        if matches!(kind, MetricType::Info | MetricType::StateSet) {
            return Err(fam_err(
                f.unit_line,
                &f.name,
                format!("{kind} families cannot have a unit"),
            ));
        }
    }
    if matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram) {
        check_histogram(&f)?;
    }
    let name = match kind {
        MetricType::Counter => format!("{}_total", f.name),
        MetricType::Info => format!("{}_info", f.name),
        _ => f.name.clone(),
    };
    let metrics = build_metrics(kind, f.samples);
    Ok(MetricFamily { name, help: f.help, kind, unit: f.unit, metrics })
}

#[derive(Default)]
struct Point {
    value: Option<f64>,
    created: Option<f64>,
    sum: Option<f64>,
    count: Option<f64>,
    buckets: Vec<Bucket>,
    quantiles: Vec<Quantile>,
    states: Vec<State>,
}

fn build_metrics(kind: MetricType, samples: Vec<OmSample>) -> Vec<Metric> {
    let mut out: Vec<(Vec<Label>, Option<i64>, Point)> = Vec::new();
    // The exact timestamp of the current point: a later point of the same
    // series with the same millisecond is dropped whole (first wins).
    let mut point_ns: Option<i128> = None;
    for s in samples {
        let ts = s.ts_ns.map(ns_to_ms);
        let new = match out.last() {
            Some((g, t, _)) => *g != s.group || *t != ts,
            None => true,
        };
        if new {
            out.push((s.group, ts, Point::default()));
            point_ns = s.ts_ns;
        } else if s.ts_ns != point_ns {
            continue;
        }
        let Some((_, _, p)) = out.last_mut() else { continue };
        let first = |slot: &mut Option<f64>| {
            if slot.is_none() {
                *slot = Some(s.value);
            }
        };
        match s.suffix {
            Suffix::None if kind == MetricType::Summary => {
                if !p.quantiles.iter().any(|q| q.quantile == s.le_or_q) {
                    p.quantiles.push(Quantile { quantile: s.le_or_q, value: s.value });
                }
            }
            Suffix::None if kind == MetricType::StateSet => {
                let name = s.state.unwrap_or_default();
                if !p.states.iter().any(|st| st.name == name) {
                    p.states.push(State { name, enabled: s.value == 1.0 });
                }
            }
            Suffix::None | Suffix::Total | Suffix::Info => first(&mut p.value),
            Suffix::Created => first(&mut p.created),
            Suffix::Sum | Suffix::GSum => first(&mut p.sum),
            Suffix::Count | Suffix::GCount => first(&mut p.count),
            Suffix::Bucket => {
                if !p.buckets.iter().any(|b| b.upper_bound == s.le_or_q) {
                    p.buckets.push(Bucket { upper_bound: s.le_or_q, cumulative_count: s.value });
                }
            }
        }
    }
    out.into_iter()
        .map(|(group, ts, p)| {
            let nan = f64::NAN;
            let value = match kind {
                MetricType::Counter => {
                    MetricValue::Counter { total: p.value.unwrap_or(nan), created: p.created }
                }
                MetricType::Gauge => MetricValue::Gauge(p.value.unwrap_or(nan)),
                MetricType::Unknown => MetricValue::Untyped(p.value.unwrap_or(nan)),
                MetricType::Histogram => MetricValue::Histogram {
                    buckets: p.buckets,
                    sum: p.sum.unwrap_or(nan),
                    count: p.count.unwrap_or(nan),
                    created: p.created,
                },
                MetricType::GaugeHistogram => MetricValue::GaugeHistogram {
                    buckets: p.buckets,
                    sum: p.sum.unwrap_or(nan),
                    count: p.count.unwrap_or(nan),
                },
                MetricType::Summary => MetricValue::Summary {
                    quantiles: p.quantiles,
                    sum: p.sum.unwrap_or(nan),
                    count: p.count.unwrap_or(nan),
                    created: p.created,
                },
                MetricType::Info => MetricValue::Info,
                MetricType::StateSet => MetricValue::StateSet { states: p.states },
            };
            Metric { labels: to_labels(group), value, timestamp_ms: ts }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn om(s: &str) -> Result<Vec<MetricFamily>, ParseError> {
        parse_families(s.as_bytes(), Format::OpenMetrics)
    }

    #[test]
    fn text_grouping() {
        let input = "# TYPE h histogram\nh_bucket{a=\"1\",le=\"1\"} 1\nh_bucket{a=\"2\",le=\"+Inf\"} 5\nh_bucket{a=\"1\",le=\"+Inf\"} 2\nh_sum{a=\"1\"} 3\nh_count{a=\"1\"} 2\nother 7\n# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\nh_sum{a=\"2\"} 9\n";
        let f = parse_families(input.as_bytes(), Format::Text004).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].metrics.len(), 2);
        let MetricValue::Histogram { buckets, sum, count, .. } = &f[0].metrics[0].value else {
            panic!()
        };
        assert_eq!(buckets.len(), 2);
        assert_eq!((*sum, *count), (3.0, 2.0));
        let MetricValue::Histogram { sum, count, .. } = &f[0].metrics[1].value else { panic!() };
        assert_eq!(*sum, 9.0);
        assert!(count.is_nan());
        assert_eq!(f[1].kind, MetricType::Unknown);
        assert_eq!(f[2].kind, MetricType::Summary);
    }

    #[test]
    fn text_family_errors() {
        for (input, msg) in [
            ("# HELP a x\n# HELP a y\n", "line 2, column 1: metric family \"a\": second HELP line"),
            (
                "a 1\n# TYPE a gauge\n",
                "line 2, column 1: metric family \"a\": TYPE line after samples of the family",
            ),
            (
                "# TYPE h histogram\nh_bucket 1\n",
                "line 2, column 1: metric family \"h\": bucket sample without \"le\" label",
            ),
            (
                "# TYPE s summary\ns 1\n",
                "line 2, column 1: metric family \"s\": summary sample without \"quantile\" label",
            ),
            ("a{b=\"1\",b=\"2\"} 1\n", "line 1, column 2: duplicate label name \"b\""),
        ] {
            assert_eq!(
                parse_families(input.as_bytes(), Format::Text004).unwrap_err().to_string(),
                msg
            );
        }
    }

    #[test]
    fn om_counter_and_created() {
        let f = om("# TYPE a counter\n# UNIT a \na_total{x=\"1\"} 3 # {t=\"a\"} 1\na_created{x=\"1\"} 100\n# EOF\n").unwrap();
        assert_eq!(f[0].name, "a_total");
        assert_eq!(
            f[0].metrics[0].value,
            MetricValue::Counter { total: 3.0, created: Some(100.0) }
        );
    }

    #[test]
    fn om_family_errors() {
        for (input, msg) in [
            ("# TYPE a counter\na_total -1\n# EOF\n", "line 2, column 1: metric family \"a\": _total value -1 is negative"),
            ("# TYPE a histogram\na_bucket{le=\"2\"} 0\na_bucket{le=\"1\"} 0\na_bucket{le=\"+Inf\"} 0\n# EOF\n", "line 3, column 1: metric family \"a\": buckets out of order (le must increase)"),
            ("# TYPE a gauge\na{x=\"1\"} 1\na{x=\"2\"} 1\na{x=\"1\"} 1\n# EOF\n", "line 4, column 1: metric family \"a\": series of the family are interleaved (samples of one series must be contiguous)"),
            ("# UNIT a_s m\n# EOF\n", "line 1, column 1: metric family \"a_s\": unit \"m\" is not the suffix of the family name"),
            ("# TYPE a counter\na_total 1 # {x=\"1\",x=\"2\"} 1\n# EOF\n", "line 2, column 1: duplicate label name \"x\""),
            ("# TYPE a gauge\na 1 # {x=\"1\"} 1\n# EOF\n", "line 2, column 1: metric family \"a\": exemplar on a gauge sample (only counter _total and histogram _bucket samples may have one)"),
            ("# TYPE a stateset\na{b=\"1\"} 1\n# EOF\n", "line 2, column 1: metric family \"a\": state set sample without the \"a\" label"),
            ("# TYPE a info\na_info 2\n# EOF\n", "line 2, column 1: metric family \"a\": info value 2 is not 1"),
            ("# TYPE a gauge\na 1\n# TYPE b gauge\na 2\n# EOF\n", "line 4, column 1: metric family \"a\": name \"a\" clashes with an earlier family"),
            ("a 1 1\na 1\n# EOF\n", "line 2, column 1: metric family \"a\": mix of samples with and without timestamp in one series"),
            ("a 1 2\na 1 1\n# EOF\n", "line 2, column 1: metric family \"a\": timestamps went backwards within a series"),
        ] {
            assert_eq!(om(input).unwrap_err().to_string(), msg);
        }
    }

    #[test]
    fn om_types_build() {
        let f = om("# TYPE s stateset\ns{x=\"1\",s=\"on\"} 1\ns{x=\"1\",s=\"off\"} 0\n# TYPE i info\ni_info{v=\"1\"} 1\n# TYPE g gaugehistogram\ng_bucket{le=\"-1\"} 1\ng_bucket{le=\"+Inf\"} 2\ng_gcount 2\ng_gsum -3\n# TYPE q summary\nq{quantile=\"0.9\"} 5\nq_count 3\n# EOF\n").unwrap();
        assert_eq!(f[0].metrics[0].labels, Labels::from_pairs([("x", "1")]));
        assert_eq!(
            f[0].metrics[0].value,
            MetricValue::StateSet {
                states: vec![
                    State { name: "on".into(), enabled: true },
                    State { name: "off".into(), enabled: false }
                ]
            }
        );
        assert_eq!((f[1].name.as_str(), &f[1].metrics[0].value), ("i_info", &MetricValue::Info));
        assert_eq!(
            f[2].metrics[0].value,
            MetricValue::GaugeHistogram {
                buckets: vec![
                    Bucket { upper_bound: -1.0, cumulative_count: 1.0 },
                    Bucket { upper_bound: f64::INFINITY, cumulative_count: 2.0 }
                ],
                sum: -3.0,
                count: 2.0
            }
        );
        let MetricValue::Summary { quantiles, sum, count, created } = &f[3].metrics[0].value else {
            panic!()
        };
        assert_eq!(
            (quantiles.as_slice(), *count, *created),
            (&[Quantile { quantile: 0.9, value: 5.0 }][..], 3.0, None)
        );
        assert!(sum.is_nan(), "absent _sum reads as NaN");
    }

    #[test]
    fn om_duplicate_timestamps_merge() {
        let f = om("a 1 0\na 2 0.0000001\na 3 1\n# EOF\n").unwrap();
        let got: Vec<_> = f[0].metrics.iter().map(|m| (m.value.clone(), m.timestamp_ms)).collect();
        assert_eq!(
            got,
            vec![(MetricValue::Untyped(1.0), Some(0)), (MetricValue::Untyped(3.0), Some(1000))]
        );
    }
}
