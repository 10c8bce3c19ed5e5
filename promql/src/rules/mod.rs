//! Prometheus rule files: loading, validation, evaluation, and
//! `promtool test rules` unit tests (feature `rules`).
//!
//! - [`parse_groups`] / [`load_file`] read rule files as Prometheus writes
//!   them (`groups: [{name, interval, limit, rules: [...]}]`) and validate
//!   them; errors name the file, group and rule.
//! - [`GroupEvaluator`] evaluates a group at a time against any
//!   [`model::Queryable`] and returns the samples to append (recorded
//!   series, `ALERTS`, `ALERTS_FOR_STATE`, stale markers) and alert state
//!   [`Transition`]s. It does no I/O and reads no clock.
//! - [`Template`] expands labels and annotations (the Go-template subset
//!   Prometheus users write).
//! - [`run_test_file`] runs a promtool rule unit-test file.
//!
//! ```
//! use model::{mem::MemStore, Labels};
//! use promql::rules::{parse_groups, AlertState, EvalContext, GroupEvaluator};
//! use promql::Engine;
//!
//! let yaml = r#"
//! groups:
//!   - name: node
//!     rules:
//!       - alert: InstanceDown
//!         expr: up == 0
//!         for: 1m
//!         annotations:
//!           summary: "{{ $labels.instance }} is down"
//! "#;
//! let group = parse_groups(yaml, "node.yml")?.remove(0);
//! let mut ev = GroupEvaluator::new(group, Engine::default(), EvalContext::default());
//! let store = MemStore::new();
//! let up = Labels::from_pairs([("__name__", "up"), ("instance", "a:9100")]);
//! for m in 0..3 {
//!     store.append(&up, m * 60_000, 0.0);
//! }
//! ev.eval(&store, 0);
//! let out = ev.eval(&store, 60_000);
//! let t = &out.transitions[0];
//! assert_eq!((t.from, t.alert.state), (AlertState::Pending, AlertState::Firing));
//! assert_eq!(t.alert.annotations["summary"], "a:9100 is down");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod eval;
mod file;
mod template;
mod unittest;

pub use eval::{
    Alert, AlertState, EvalContext, GroupEvaluator, GroupOutput, InstantVector, RecordedSample, RuleFailure, Transition,
    RESOLVED_RETENTION_MS,
};
pub use file::{
    load_file, load_files, parse_groups, AlertingRule, RecordingRule, Rule, RuleGroup, DEFAULT_INTERVAL_MS,
};
pub use template::{
    humanize, humanize1024, humanize_duration, humanize_timestamp, Template, TemplateData, TemplateError,
};
pub use unittest::{expand_values, parse_series, run_test_file, CaseResult, SeriesValue, UnitTestReport};

/// A rule file or unit-test file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not parse or has unknown fields.
    #[error("{path}: yaml: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// The YAML parser's message (with line and column).
        message: String,
    },
    /// A group or rule is invalid.
    #[error("{path}: group {group:?}{}: {message}", rule.as_ref().map(|r| format!(", {r}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: String,
        /// The group.
        group: String,
        /// The rule (`rule 2 (alert "X")`), if the problem is in one.
        rule: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A unit-test file is invalid.
    #[error("{path}: {message}")]
    Test {
        /// The test file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl RuleError {
    fn invalid(path: &str, group: &str, rule: Option<&str>, message: String) -> Self {
        RuleError::Invalid { path: path.into(), group: group.into(), rule: rule.map(str::to_string), message }
    }
}
