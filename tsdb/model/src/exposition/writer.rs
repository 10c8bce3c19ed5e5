//! Writing metric families in text 0.0.4 or OpenMetrics 1.0.

use std::fmt::Write as _;
use std::io;

use super::float::FloatBuf;
use super::{Format, Metric, MetricFamily, MetricValue};

/// Writes `families` in `format`, in the order given (see
/// [`sort_families`](super::sort_families)). OpenMetrics output ends with
/// `# EOF`.
///
/// Conventions (see the [module docs](super) for the full mapping):
/// - each metric's [`MetricValue`] variant must match the family's
///   [`MetricType`](super::MetricType) (an [`io::ErrorKind::InvalidInput`] error otherwise);
/// - text 0.0.4 has no `_created` samples, no units and no info, stateset or
///   gaugehistogram types: those families are written as gauge, gauge and
///   histogram, as Prometheus' Python client does;
/// - a histogram whose last bucket is not `+Inf` gets a `+Inf` bucket whose
///   count is the histogram's count, as client_golang does;
/// - in OpenMetrics, a NaN counter `total`, `sum` or `count` means
///   "absent" (OpenMetrics forbids NaN there) and the sample is left out.
///
/// Names are not validated here: the caller (a registry) does that.
pub fn write_families(
    families: &[MetricFamily],
    format: Format,
    out: &mut impl io::Write,
) -> io::Result<()> {
    let mut buf = String::with_capacity(4096);
    for fam in families {
        buf.clear();
        match format {
            Format::Text004 => write_family_text(fam, &mut buf)?,
            Format::OpenMetrics => write_family_om(fam, &mut buf)?,
        }
        out.write_all(buf.as_bytes())?;
    }
    if format == Format::OpenMetrics {
        out.write_all(b"# EOF\n")?;
    }
    Ok(())
}

/// Writes `families` into a `String` (convenience over [`write_families`]).
pub fn families_to_string(families: &[MetricFamily], format: Format) -> io::Result<String> {
    let mut out = Vec::new();
    write_families(families, format, &mut out)?;
    String::from_utf8(out).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn mismatch(fam: &MetricFamily, m: &Metric) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "metric family {:?} has type {} but metric {} holds a {} value",
            fam.name,
            fam.kind.as_str(),
            m.labels,
            m.value.type_name()
        ),
    )
}

fn check_kinds(fam: &MetricFamily) -> io::Result<()> {
    for m in &fam.metrics {
        if m.value.metric_type() != fam.kind {
            return Err(mismatch(fam, m));
        }
    }
    Ok(())
}

/// Appends `s` with `\`, newline (and `"` when `quote`) escaped.
fn push_escaped(out: &mut String, s: &str, quote: bool) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'"' if quote => "\\\"",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(rep);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

fn push_float(out: &mut String, v: f64) {
    let mut b = FloatBuf::new();
    out.push_str(b.format(v));
}

/// The value printed by client_golang's text writer: Go formatting, except
/// that negative zero prints as `0`.
fn push_value(out: &mut String, v: f64) {
    if v == 0.0 {
        out.push('0');
    } else {
        push_float(out, v);
    }
}

/// One extra label appended after the metric's own (le, quantile, state).
struct Extra<'a> {
    name: &'a str,
    value: ExtraValue<'a>,
}

enum ExtraValue<'a> {
    Float(f64),
    Str(&'a str),
}

/// Writes `name{labels[,extra]} ` (the trailing space included).
fn push_series(out: &mut String, name: &str, suffix: &str, m: &Metric, extra: Option<Extra<'_>>) {
    out.push_str(name);
    out.push_str(suffix);
    if !m.labels.is_empty() || extra.is_some() {
        out.push('{');
        let mut first = true;
        for l in m.labels.iter() {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&l.name);
            out.push_str("=\"");
            push_escaped(out, &l.value, true);
            out.push('"');
        }
        if let Some(e) = extra {
            if !first {
                out.push(',');
            }
            out.push_str(e.name);
            out.push_str("=\"");
            match e.value {
                ExtraValue::Float(v) => push_float(out, v),
                ExtraValue::Str(s) => push_escaped(out, s, true),
            }
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

/// Appends a timestamp in milliseconds as exact decimal seconds
/// (`1700000000.123`).
fn push_om_timestamp(out: &mut String, ms: i64) {
    let neg = ms < 0;
    let a = ms.unsigned_abs();
    let (secs, frac) = (a / 1000, a % 1000);
    if neg {
        out.push('-');
    }
    let _ = write!(out, "{secs}");
    if frac != 0 {
        let mut f = format!("{frac:03}");
        while f.ends_with('0') {
            f.pop();
        }
        out.push('.');
        out.push_str(&f);
    }
}

fn end_line(out: &mut String, format: Format, ts: Option<i64>) {
    if let Some(t) = ts {
        out.push(' ');
        match format {
            Format::Text004 => {
                let _ = write!(out, "{t}");
            }
            Format::OpenMetrics => push_om_timestamp(out, t),
        }
    }
    out.push('\n');
}

fn line(
    out: &mut String,
    format: Format,
    name: &str,
    suffix: &str,
    m: &Metric,
    extra: Option<Extra<'_>>,
    v: f64,
) {
    push_series(out, name, suffix, m, extra);
    push_value(out, v);
    end_line(out, format, m.timestamp_ms);
}

fn write_family_text(fam: &MetricFamily, out: &mut String) -> io::Result<()> {
    check_kinds(fam)?;
    let name = fam.name.as_str();
    const F: Format = Format::Text004;
    if let Some(help) = &fam.help {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        push_escaped(out, help, false);
        out.push('\n');
    }
    out.push_str("# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(fam.kind.text_name());
    out.push('\n');
    for m in &fam.metrics {
        match &m.value {
            MetricValue::Untyped(v) | MetricValue::Gauge(v) => line(out, F, name, "", m, None, *v),
            MetricValue::Counter { total, .. } => line(out, F, name, "", m, None, *total),
            MetricValue::Info => line(out, F, name, "", m, None, 1.0),
            MetricValue::StateSet { states } => {
                for s in states {
                    let e = Extra { name, value: ExtraValue::Str(&s.name) };
                    line(out, F, name, "", m, Some(e), if s.enabled { 1.0 } else { 0.0 });
                }
            }
            MetricValue::Histogram { buckets, sum, count, .. }
            | MetricValue::GaugeHistogram { buckets, sum, count } => {
                for b in buckets {
                    let e = Extra { name: "le", value: ExtraValue::Float(b.upper_bound) };
                    line(out, F, name, "_bucket", m, Some(e), b.cumulative_count);
                }
                if buckets.last().is_none_or(|b| b.upper_bound != f64::INFINITY) {
                    let e = Extra { name: "le", value: ExtraValue::Float(f64::INFINITY) };
                    line(out, F, name, "_bucket", m, Some(e), *count);
                }
                line(out, F, name, "_sum", m, None, *sum);
                line(out, F, name, "_count", m, None, *count);
            }
            MetricValue::Summary { quantiles, sum, count, .. } => {
                for q in quantiles {
                    let e = Extra { name: "quantile", value: ExtraValue::Float(q.quantile) };
                    line(out, F, name, "", m, Some(e), q.value);
                }
                line(out, F, name, "_sum", m, None, *sum);
                line(out, F, name, "_count", m, None, *count);
            }
        }
    }
    Ok(())
}

fn write_family_om(fam: &MetricFamily, out: &mut String) -> io::Result<()> {
    check_kinds(fam)?;
    const F: Format = Format::OpenMetrics;
    let base = fam.openmetrics_name();
    if let Some(help) = &fam.help {
        out.push_str("# HELP ");
        out.push_str(base);
        out.push(' ');
        push_escaped(out, help, true);
        out.push('\n');
    }
    out.push_str("# TYPE ");
    out.push_str(base);
    out.push(' ');
    out.push_str(fam.kind.as_str());
    out.push('\n');
    if let Some(unit) = fam.unit.as_deref().filter(|u| !u.is_empty()) {
        out.push_str("# UNIT ");
        out.push_str(base);
        out.push(' ');
        out.push_str(unit);
        out.push('\n');
    }
    for m in &fam.metrics {
        match &m.value {
            MetricValue::Untyped(v) | MetricValue::Gauge(v) => line(out, F, base, "", m, None, *v),
            MetricValue::Counter { total, created } => {
                if !total.is_nan() {
                    line(out, F, base, "_total", m, None, *total);
                }
                if let Some(c) = created {
                    line(out, F, base, "_created", m, None, *c);
                }
            }
            MetricValue::Info => line(out, F, base, "_info", m, None, 1.0),
            MetricValue::StateSet { states } => {
                for s in states {
                    let e = Extra { name: base, value: ExtraValue::Str(&s.name) };
                    line(out, F, base, "", m, Some(e), if s.enabled { 1.0 } else { 0.0 });
                }
            }
            MetricValue::Histogram { buckets, sum, count, created } => {
                om_buckets(out, base, m, buckets, *count);
                if !count.is_nan() {
                    line(out, F, base, "_count", m, None, *count);
                }
                if !sum.is_nan() {
                    line(out, F, base, "_sum", m, None, *sum);
                }
                if let Some(c) = created {
                    line(out, F, base, "_created", m, None, *c);
                }
            }
            MetricValue::GaugeHistogram { buckets, sum, count } => {
                om_buckets(out, base, m, buckets, *count);
                if !count.is_nan() {
                    line(out, F, base, "_gcount", m, None, *count);
                }
                if !sum.is_nan() {
                    line(out, F, base, "_gsum", m, None, *sum);
                }
            }
            MetricValue::Summary { quantiles, sum, count, created } => {
                for q in quantiles {
                    let e = Extra { name: "quantile", value: ExtraValue::Float(q.quantile) };
                    line(out, F, base, "", m, Some(e), q.value);
                }
                if !count.is_nan() {
                    line(out, F, base, "_count", m, None, *count);
                }
                if !sum.is_nan() {
                    line(out, F, base, "_sum", m, None, *sum);
                }
                if let Some(c) = created {
                    line(out, F, base, "_created", m, None, *c);
                }
            }
        }
    }
    Ok(())
}

fn om_buckets(out: &mut String, base: &str, m: &Metric, buckets: &[super::Bucket], count: f64) {
    const F: Format = Format::OpenMetrics;
    for b in buckets {
        let e = Extra { name: "le", value: ExtraValue::Float(b.upper_bound) };
        line(out, F, base, "_bucket", m, Some(e), b.cumulative_count);
    }
    if buckets.last().is_none_or(|b| b.upper_bound != f64::INFINITY) {
        let e = Extra { name: "le", value: ExtraValue::Float(f64::INFINITY) };
        line(out, F, base, "_bucket", m, Some(e), count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        let mut s = String::new();
        push_escaped(&mut s, "a\\b\"c\nd", true);
        assert_eq!(s, r#"a\\b\"c\nd"#);
        s.clear();
        push_escaped(&mut s, "a\\b\"c\nd", false);
        assert_eq!(s, r#"a\\b"c\nd"#);
    }

    #[test]
    fn om_timestamps() {
        let mut s = String::new();
        for (ms, want) in [
            (0, "0"),
            (1500, "1.5"),
            (1_700_000_000_123, "1700000000.123"),
            (-1, "-0.001"),
            (10, "0.01"),
        ] {
            s.clear();
            push_om_timestamp(&mut s, ms);
            assert_eq!(s, want);
        }
    }
}
