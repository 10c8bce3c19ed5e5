//! The registry: which collectors run, running them, adding the
//! `node_scrape_collector_*` metrics, sorting, and writing the output.

use std::collections::BTreeMap;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use model::exposition::{sort_families, write_families, Format, MetricFamily, MetricType, MetricValue};

use crate::collector::{make_labels, Collector, Sink};
use crate::collectors::{self, Options};
use crate::error::Error;
use crate::root::Root;

/// Chooses collectors and their options, then builds a [`Registry`].
#[derive(Debug, Clone)]
pub struct RegistryBuilder {
    root: Root,
    options: Options,
    enabled: BTreeMap<&'static str, bool>,
    workers: usize,
}

impl Default for RegistryBuilder {
    fn default() -> Self {
        RegistryBuilder {
            root: Root::new(),
            options: Options::default(),
            enabled: collectors::ALL.iter().map(|n| (*n, collectors::default_enabled(n))).collect(),
            workers: 1,
        }
    }
}

impl RegistryBuilder {
    /// node_exporter's defaults: every implemented collector enabled, live
    /// system roots.
    pub fn new() -> Self {
        RegistryBuilder::default()
    }

    /// Sets the filesystem roots.
    pub fn root(&mut self, root: Root) -> &mut Self {
        self.root = root;
        self
    }

    /// Sets the collector options.
    pub fn options(&mut self, options: Options) -> &mut Self {
        self.options = options;
        self
    }

    /// `--collector.<name>` (yes) / `--no-collector.<name>` (no).
    pub fn enable(&mut self, name: &str, yes: bool) -> Result<&mut Self, Error> {
        let key = collectors::ALL
            .iter()
            .find(|n| **n == name)
            .ok_or_else(|| Error::UnknownCollector(name.to_string()))?;
        self.enabled.insert(key, yes);
        Ok(self)
    }

    /// `--collector.disable-defaults`: disable every collector (enable
    /// some afterwards with [`enable`](Self::enable)).
    pub fn disable_all(&mut self) -> &mut Self {
        for v in self.enabled.values_mut() {
            *v = false;
        }
        self
    }

    /// How many threads run collectors during a scrape (default 1: all on
    /// the calling thread; extra threads are started per scrape). More
    /// threads overlap the kernel's file generation on idle multi-core
    /// hosts, as node_exporter's goroutines do, but cost memory (glibc
    /// gives each thread its own malloc arena: about 0.3 MB more peak RSS
    /// with 2 in node-exporter) and were slower on a busy 2-core machine
    /// in our measurements (issue 4).
    pub fn workers(&mut self, n: usize) -> &mut Self {
        self.workers = n.max(1);
        self
    }

    /// Builds the registry (compiling the options' regular expressions).
    pub fn build(&self) -> Result<Registry, Error> {
        let mut list = Vec::new();
        for (name, on) in &self.enabled {
            if *on {
                list.push(collectors::build(name, &self.options)?);
            }
        }
        Ok(Registry { root: self.root.clone(), collectors: list, workers: self.workers })
    }
}

/// The outcome of one collector in one scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorOutcome {
    /// The collector's name.
    pub name: &'static str,
    /// Its error, if it failed (also when it panicked).
    pub error: Option<String>,
    /// True when the error is [`Error::NoData`] (nothing to report on this
    /// host, e.g. no hwmon chips): node_exporter logs those at debug level
    /// only, other failures at error level.
    pub no_data: bool,
    /// How long it took, in seconds.
    pub duration_seconds: f64,
}

/// A set of collectors over one [`Root`]. Reusable: each
/// [`gather`](Self::gather) is one scrape.
pub struct Registry {
    root: Root,
    collectors: Vec<Box<dyn Collector>>,
    workers: usize,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.collectors.iter().map(|c| c.name()).collect();
        f.debug_struct("Registry").field("root", &self.root).field("collectors", &names).finish()
    }
}

impl Registry {
    /// A registry over explicit collectors (e.g. your own [`Collector`]s).
    pub fn with_collectors(root: Root, collectors: Vec<Box<dyn Collector>>) -> Self {
        Registry { root, collectors, workers: 1 }
    }

    /// The names of the collectors that run, in order.
    pub fn collector_names(&self) -> Vec<&'static str> {
        self.collectors.iter().map(|c| c.name()).collect()
    }

    /// Runs every collector and returns the sorted families, including
    /// `node_scrape_collector_duration_seconds` and
    /// `node_scrape_collector_success`, plus each collector's outcome. A
    /// failing (or panicking) collector reports success 0; the others are
    /// unaffected.
    pub fn gather_with_outcomes(&self) -> (Vec<MetricFamily>, Vec<CollectorOutcome>) {
        let n = self.collectors.len();
        let workers = self.workers.min(n).max(1);
        let mut results: Vec<(usize, Sink, CollectorOutcome)> = if workers == 1 {
            (0..n).map(|i| self.run_one(i)).collect()
        } else {
            // Workers take collectors by index; results are put back in
            // collector order so the merge below is deterministic.
            let next = AtomicUsize::new(0);
            let worker = || {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break mine;
                    }
                    mine.push(self.run_one(i));
                }
            };
            std::thread::scope(|scope| {
                let handles: Vec<_> = (1..workers).map(|_| scope.spawn(worker)).collect();
                let mut all = worker();
                for h in handles {
                    // run_one contains collector panics, so a worker
                    // cannot panic; if it somehow did, its collectors
                    // are missing from the outcomes rather than the
                    // scrape failing.
                    if let Ok(v) = h.join() {
                        all.extend(v);
                    }
                }
                all
            })
        };
        results.sort_by_key(|(i, _, _)| *i);
        let mut families = Vec::with_capacity(256);
        let mut outcomes = Vec::with_capacity(n);
        for (_, part, outcome) in results {
            families.extend(part.into_families());
            outcomes.push(outcome);
        }
        let mut duration = MetricFamily::new("node_scrape_collector_duration_seconds", MetricType::Gauge)
            .with_help("node_exporter: Duration of a collector scrape.");
        let mut success = MetricFamily::new("node_scrape_collector_success", MetricType::Gauge)
            .with_help("node_exporter: Whether a collector succeeded.");
        for o in &outcomes {
            let labels = make_labels(&[("collector", o.name)]);
            duration = duration.with_metric(labels.clone(), MetricValue::Gauge(o.duration_seconds));
            success = success.with_metric(labels, MetricValue::Gauge(if o.error.is_none() { 1.0 } else { 0.0 }));
        }
        families.push(duration);
        families.push(success);
        // Families of the same name (from different collectors) merge into
        // the first one, whose help and type win: the stable sort keeps
        // them in collector order.
        families.sort_by(|a, b| a.name.cmp(&b.name));
        families.dedup_by(|later, first| {
            let same = later.name == first.name;
            if same {
                first.metrics.append(&mut later.metrics);
            }
            same
        });
        sort_families(&mut families);
        (families, outcomes)
    }

    fn run_one(&self, i: usize) -> (usize, Sink, CollectorOutcome) {
        let c = &self.collectors[i];
        let mut sink = Sink::new();
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| c.collect(&self.root, &mut sink)));
        let duration_seconds = start.elapsed().as_secs_f64();
        let (error, no_data) = match result {
            Ok(Ok(())) => (None, false),
            Ok(Err(e)) => (Some(e.chain()), matches!(e, Error::NoData { .. })),
            Err(_) => (Some(format!("collector {} panicked", c.name())), false),
        };
        (i, sink, CollectorOutcome { name: c.name(), error, no_data, duration_seconds })
    }

    /// Runs every collector and returns the sorted families.
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.gather_with_outcomes().0
    }

    /// One scrape written in `format`.
    pub fn write(&self, format: Format, out: &mut impl Write) -> Result<(), Error> {
        write_families(&self.gather(), format, out).map_err(Error::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing;
    impl Collector for Failing {
        fn name(&self) -> &'static str {
            "failing"
        }
        fn collect(&self, _: &Root, out: &mut Sink) -> Result<(), Error> {
            out.gauge("partial", "Written before failing.", &[], 1.0);
            Err(Error::NoData { collector: "failing", reason: "test".into() })
        }
    }

    struct Panicking;
    impl Collector for Panicking {
        fn name(&self) -> &'static str {
            "panicking"
        }
        fn collect(&self, _: &Root, _: &mut Sink) -> Result<(), Error> {
            panic!("bug in a collector")
        }
    }

    struct AlsoB;
    impl Collector for AlsoB {
        fn name(&self) -> &'static str {
            "also_b"
        }
        fn collect(&self, _: &Root, out: &mut Sink) -> Result<(), Error> {
            out.counter("b_metric", "Other help.", &[("x", "0")], 0.0);
            Ok(())
        }
    }

    #[test]
    fn same_named_families_of_two_collectors_merge_into_the_first() {
        let reg = Registry::with_collectors(Root::new(), vec![Box::new(Good), Box::new(AlsoB)]);
        let fams = reg.gather();
        let b: Vec<&MetricFamily> = fams.iter().filter(|f| f.name == "b_metric").collect();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].help.as_deref(), Some("B."));
        assert_eq!(b[0].kind, MetricType::Gauge);
        let xs: Vec<String> = b[0].metrics.iter().map(|m| format!("{:?}", m.labels)).collect();
        assert_eq!(xs.len(), 3);
        assert!(xs[0].contains('0') && xs[1].contains('1') && xs[2].contains('2'), "{xs:?}");
    }

    struct Good;
    impl Collector for Good {
        fn name(&self) -> &'static str {
            "good"
        }
        fn collect(&self, _: &Root, out: &mut Sink) -> Result<(), Error> {
            out.gauge("b_metric", "B.", &[("x", "2")], 2.0);
            out.gauge("b_metric", "B.", &[("x", "1")], 1.0);
            out.gauge("a_metric", "A.", &[], 0.5);
            Ok(())
        }
    }

    #[test]
    fn failures_are_reported_not_fatal_and_output_is_sorted() {
        let mut reg = Registry::with_collectors(Root::new(), vec![Box::new(Failing), Box::new(Panicking), Box::new(Good)]);
        let (fams, outcomes) = reg.gather_with_outcomes();
        reg.workers = 3;
        let (fams_parallel, outcomes_parallel) = reg.gather_with_outcomes();
        assert_eq!(outcomes.iter().map(|o| (o.name, o.error.clone())).collect::<Vec<_>>(),
            outcomes_parallel.iter().map(|o| (o.name, o.error.clone())).collect::<Vec<_>>());
        assert_eq!(fams.iter().map(|f| &f.name).collect::<Vec<_>>(), fams_parallel.iter().map(|f| &f.name).collect::<Vec<_>>());
        assert!(outcomes[0].error.is_some());
        assert!(outcomes[0].no_data);
        assert!(!outcomes[1].no_data && !outcomes[2].no_data);
        assert!(outcomes[1].error.as_deref().unwrap_or("").contains("panicked"));
        assert!(outcomes[2].error.is_none());
        let names: Vec<&str> = fams.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["a_metric", "b_metric", "node_scrape_collector_duration_seconds", "node_scrape_collector_success", "partial"]
        );
        let mut text = Vec::new();
        write_families(&fams, Format::Text004, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("b_metric{x=\"1\"} 1\nb_metric{x=\"2\"} 2\n"), "{text}");
        assert!(text.contains("node_scrape_collector_success{collector=\"failing\"} 0\n"));
        assert!(text.contains("node_scrape_collector_success{collector=\"good\"} 1\n"));
        assert!(text.contains("node_scrape_collector_success{collector=\"panicking\"} 0\n"));
    }

    #[test]
    fn builder_rejects_unknown_collectors_and_bad_regex() {
        assert!(matches!(RegistryBuilder::new().enable("nope", true), Err(Error::UnknownCollector(_))));
        let mut b = RegistryBuilder::new();
        let opts = Options { vmstat_fields: "(".into(), ..Options::default() };
        b.options(opts);
        assert!(matches!(b.build(), Err(Error::Regex { .. })));
        b.enable("vmstat", false).unwrap();
        assert!(b.build().is_ok());
        let mut b = RegistryBuilder::new();
        b.disable_all().enable("loadavg", true).unwrap();
        assert_eq!(b.build().unwrap().collector_names(), vec!["loadavg"]);
    }
}
