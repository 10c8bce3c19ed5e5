//! `Accept` header content negotiation.

use super::Format;

/// Picks the exposition format for an `Accept` header as client_golang's
/// `expfmt.NegotiateIncludingOpenMetrics` does (the handler node_exporter
/// and Prometheus' own `/metrics` use).
///
/// Media ranges are ranked by `q` (highest first; more specific ranges win
/// ties, then header order). The first acceptable one decides:
/// `application/openmetrics-text` with `version` 1.0.0, 0.0.1 or none gives
/// [`Format::OpenMetrics`]; `text/plain` with version 0.0.4 or none gives
/// [`Format::Text004`]. Other types (protobuf, `*/*`) are skipped, and
/// ranges with `q=0` are never chosen. Without a match, or without a
/// header, the answer is text 0.0.4.
///
/// ```
/// use model::exposition::{negotiate, Format};
/// assert_eq!(negotiate(None), Format::Text004);
/// assert_eq!(negotiate(Some("application/openmetrics-text; version=1.0.0")), Format::OpenMetrics);
/// assert_eq!(
///     negotiate(Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.9")),
///     Format::Text004
/// );
/// assert_eq!(negotiate(Some("application/openmetrics-text; version=2.0.0")), Format::Text004);
/// ```
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text004;
    };
    let mut ranges: Vec<Range<'_>> =
        accept.split(',').enumerate().filter_map(|(i, part)| Range::parse(part, i)).collect();
    ranges.sort_by(|a, b| {
        b.q.partial_cmp(&a.q)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.specificity().cmp(&a.specificity()))
            .then(a.index.cmp(&b.index))
    });
    for r in ranges {
        if r.q <= 0.0 {
            continue;
        }
        let ty = (r.ty.to_ascii_lowercase(), r.sub.to_ascii_lowercase());
        match (ty.0.as_str(), ty.1.as_str()) {
            ("application", "openmetrics-text")
                if matches!(r.version, None | Some("1.0.0") | Some("0.0.1")) =>
            {
                return Format::OpenMetrics
            }
            ("text", "plain") if matches!(r.version, None | Some("0.0.4")) => {
                return Format::Text004
            }
            _ => {}
        }
    }
    Format::Text004
}

struct Range<'a> {
    ty: &'a str,
    sub: &'a str,
    version: Option<&'a str>,
    q: f64,
    index: usize,
}

impl<'a> Range<'a> {
    fn parse(part: &'a str, index: usize) -> Option<Range<'a>> {
        let mut params = part.split(';');
        let media = params.next()?.trim();
        let (ty, sub) = match media.split_once('/') {
            Some((t, s)) => (t.trim(), s.trim()),
            // goautoneg treats a bare "*" as "*/*".
            None if media == "*" => ("*", "*"),
            None => return None,
        };
        if ty.is_empty() || sub.is_empty() {
            return None;
        }
        let mut r = Range { ty, sub, version: None, q: 1.0, index };
        for p in params {
            let Some((k, v)) = p.split_once('=') else { continue };
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            if k.eq_ignore_ascii_case("q") {
                // goautoneg reads an unparsable q as 0.
                r.q = v.parse().unwrap_or(0.0);
            } else if k.eq_ignore_ascii_case("version") {
                r.version = Some(v);
            }
        }
        Some(r)
    }

    fn specificity(&self) -> u8 {
        u8::from(self.ty != "*") + u8::from(self.sub != "*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_scrape_header() {
        // Prometheus 2.x/3.x default scrape Accept header.
        let h = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(negotiate(Some(h)), Format::OpenMetrics);
        let h = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,text/plain;version=0.0.4;q=0.3";
        assert_eq!(negotiate(Some(h)), Format::Text004);
    }

    #[test]
    fn odd_headers() {
        assert_eq!(negotiate(Some("")), Format::Text004);
        assert_eq!(negotiate(Some("*/*")), Format::Text004);
        assert_eq!(negotiate(Some("garbage;;,,")), Format::Text004);
        assert_eq!(negotiate(Some("application/openmetrics-text")), Format::OpenMetrics);
        assert_eq!(
            negotiate(Some("Application/OpenMetrics-Text; Version=\"1.0.0\"")),
            Format::OpenMetrics
        );
        assert_eq!(negotiate(Some("application/openmetrics-text;q=0")), Format::Text004);
        assert_eq!(
            negotiate(Some("text/plain;version=0.0.5,application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(Some("text/plain;q=0.5, application/openmetrics-text;q=0.5")),
            Format::Text004,
            "equal q: header order"
        );
    }
}
