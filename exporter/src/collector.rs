//! The [`Collector`] trait and the [`Sink`] collectors write into.

use std::collections::HashMap;

use model::exposition::{Metric, MetricFamily, MetricType, MetricValue};
use model::{Label, Labels};

use crate::error::Error;
use crate::root::Root;

/// One source of metrics (node_exporter's collectors: `cpu`, `meminfo`, ...).
///
/// Contract: `collect` reads only under the paths of `root` (plus, for
/// collectors that report on the running kernel through system calls such
/// as `uname`, `statfs` and the clock), writes its families into `out`, and
/// returns an error when its source is unusable. It must not panic on odd
/// file contents; the registry still contains a panic (reporting the
/// collector as failed) so that a bug never takes a scrape down. Metrics
/// written before an error are kept, as node_exporter keeps metrics sent
/// before a collector fails.
pub trait Collector: Send + Sync {
    /// The collector's name, as in `--collector.<name>`.
    fn name(&self) -> &'static str;

    /// Reads the system and writes metric families into `out`.
    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error>;
}

/// Accumulates metric families; samples with the same family name are
/// merged into one family.
#[derive(Debug, Default)]
pub struct Sink {
    families: Vec<MetricFamily>,
    index: HashMap<String, usize>,
}

impl Sink {
    /// An empty sink.
    pub fn new() -> Self {
        Sink::default()
    }

    fn family(&mut self, name: &str, help: &str, kind: MetricType) -> &mut MetricFamily {
        // Consecutive samples mostly go to the same family (per CPU, per
        // device): skip the hash then.
        if let Some(last) = self.families.len().checked_sub(1) {
            if self.families[last].name == name {
                return &mut self.families[last];
            }
        }
        let idx = match self.index.get(name) {
            Some(&i) => i,
            None => {
                let i = self.families.len();
                self.families.push(MetricFamily::new(name, kind).with_help(help));
                self.index.insert(name.to_string(), i);
                i
            }
        };
        &mut self.families[idx]
    }

    /// Adds one sample to family `name`, creating it with `help` and `kind`
    /// on first use.
    pub fn add(&mut self, name: &str, help: &str, kind: MetricType, labels: Labels, value: MetricValue) {
        self.family(name, help, kind).metrics.push(Metric { labels, value, timestamp_ms: None });
    }

    /// Adds a gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.add(name, help, MetricType::Gauge, make_labels(labels), MetricValue::Gauge(v));
    }

    /// Adds a counter sample.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.add(
            name,
            help,
            MetricType::Counter,
            make_labels(labels),
            MetricValue::Counter { total: v, created: None },
        );
    }

    /// Adds an untyped sample.
    pub fn untyped(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.add(name, help, MetricType::Unknown, make_labels(labels), MetricValue::Untyped(v));
    }

    /// Adds a whole family (merging its metrics into an existing family of
    /// the same name, whose help and type win).
    pub fn push_family(&mut self, fam: MetricFamily) {
        match self.index.get(&fam.name) {
            Some(&i) => self.families[i].metrics.extend(fam.metrics),
            None => {
                self.index.insert(fam.name.clone(), self.families.len());
                self.families.push(fam);
            }
        }
    }

    /// True when the sink holds a family of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The families, in first-use order.
    pub fn into_families(self) -> Vec<MetricFamily> {
        self.families
    }

    /// The families so far.
    pub fn families(&self) -> &[MetricFamily] {
        &self.families
    }
}

/// Builds a label set from pairs (sorted by name).
pub fn make_labels(pairs: &[(&str, &str)]) -> Labels {
    if pairs.is_empty() {
        return Labels::empty();
    }
    Labels::new(pairs.iter().map(|(k, v)| Label::new(*k, *v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_by_name() {
        let mut s = Sink::new();
        s.gauge("a", "help a", &[("x", "1")], 1.0);
        s.counter("b_total", "help b", &[], 2.0);
        s.gauge("a", "ignored", &[("x", "2")], 3.0);
        let f = s.into_families();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].metrics.len(), 2);
        assert_eq!(f[0].help.as_deref(), Some("help a"));
        assert_eq!(f[1].kind, MetricType::Counter);
    }
}
