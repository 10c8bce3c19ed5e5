//! Rule files: YAML as Prometheus reads it, validated into [`RuleGroup`]s.

use super::template::Template;
use super::RuleError;
use crate::ast::Expr;
use model::{is_valid_label_name, is_valid_metric_name, Labels};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::Path;

/// A group's evaluation interval when neither it nor the caller sets one.
pub const DEFAULT_INTERVAL_MS: i64 = 60_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    query_offset: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    alert: Option<String>,
    expr: Option<serde_yaml::Value>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// A named group of rules evaluated together, in order, on one interval.
#[derive(Debug, Clone)]
pub struct RuleGroup {
    /// The group name (unique within a file).
    pub name: String,
    /// The file it came from (`""` for text parsed directly).
    pub file: String,
    /// The evaluation interval in ms, if the group sets one.
    pub interval: Option<i64>,
    /// How far back from the evaluation time queries run, ms (`query_offset`).
    pub query_offset: i64,
    /// Most series (alerts) one rule may produce; 0 = no limit.
    pub limit: usize,
    /// The rules in evaluation order.
    pub rules: Vec<Rule>,
}

impl RuleGroup {
    /// The interval to evaluate at: the group's own, else `default_ms`.
    pub fn interval_or(&self, default_ms: i64) -> i64 {
        self.interval.unwrap_or(default_ms)
    }
}

/// A recording or an alerting rule.
#[derive(Debug, Clone)]
pub enum Rule {
    /// `record:` — stores the expression's result under a new name.
    Recording(RecordingRule),
    /// `alert:` — turns the expression's result into alerts.
    Alerting(AlertingRule),
}

impl Rule {
    /// The record or alert name.
    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.name,
            Rule::Alerting(a) => &a.name,
        }
    }

    /// The expression text as written in the file.
    pub fn expr_text(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.expr_text,
            Rule::Alerting(a) => &a.expr_text,
        }
    }
}

/// A recording rule.
#[derive(Debug, Clone)]
pub struct RecordingRule {
    /// The metric name to record under.
    pub name: String,
    /// The parsed expression.
    pub expr: Expr,
    /// The expression text.
    pub expr_text: String,
    /// Labels set on (overriding) every result series.
    pub labels: Labels,
}

/// An alerting rule.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    /// The `alertname`.
    pub name: String,
    /// The parsed expression.
    pub expr: Expr,
    /// The expression text.
    pub expr_text: String,
    /// How long an alert stays pending before it fires, ms.
    pub for_ms: i64,
    /// How long a firing alert keeps firing after its condition clears, ms.
    pub keep_firing_for_ms: i64,
    /// Extra labels (templates), in name order.
    pub labels: Vec<(String, Template)>,
    /// Annotations (templates), in name order.
    pub annotations: Vec<(String, Template)>,
}

/// Reads and validates one rule file.
pub fn load_file(path: &Path) -> Result<Vec<RuleGroup>, RuleError> {
    let text = std::fs::read_to_string(path).map_err(|source| RuleError::Io { path: path.display().to_string(), source })?;
    parse_groups(&text, &path.display().to_string())
}

/// Reads several rule files; group names must be unique per file.
pub fn load_files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<RuleGroup>, RuleError> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(load_file(p.as_ref())?);
    }
    Ok(out)
}

fn duration(file: &str, group: &str, rule: Option<&str>, field: &str, s: &str) -> Result<i64, RuleError> {
    crate::lexer::parse_duration(s.trim()).ok_or_else(|| RuleError::invalid(file, group, rule, format!("{field}: not a valid duration string: {s:?}")))
}

/// Parses rule-file YAML (`file` names it in errors).
pub fn parse_groups(text: &str, file: &str) -> Result<Vec<RuleGroup>, RuleError> {
    let raw: RawFile = if text.trim().is_empty() {
        RawFile { groups: Vec::new() }
    } else {
        serde_yaml::from_str(text).map_err(|e| RuleError::Yaml { path: file.to_string(), message: e.to_string() })?
    };
    let mut seen = HashSet::new();
    let mut groups = Vec::new();
    for g in raw.groups {
        let gname = g.name.clone();
        if gname.is_empty() {
            return Err(RuleError::invalid(file, "", None, "groupname must not be empty".into()));
        }
        if !seen.insert(gname.clone()) {
            return Err(RuleError::invalid(file, &gname, None, format!("{gname:?} is repeated in the same file")));
        }
        let interval = match &g.interval {
            Some(s) => {
                let ms = duration(file, &gname, None, "interval", s)?;
                if ms <= 0 {
                    return Err(RuleError::invalid(file, &gname, None, "interval must be positive".into()));
                }
                Some(ms)
            }
            None => None,
        };
        let query_offset = match &g.query_offset {
            Some(s) => duration(file, &gname, None, "query_offset", s)?,
            None => 0,
        };
        let mut rules = Vec::new();
        for (i, r) in g.rules.into_iter().enumerate() {
            rules.push(validate_rule(file, &gname, i, r)?);
        }
        groups.push(RuleGroup {
            name: gname,
            file: file.to_string(),
            interval,
            query_offset,
            limit: usize::try_from(g.limit.unwrap_or(0)).unwrap_or(usize::MAX),
            rules,
        });
    }
    Ok(groups)
}

fn validate_rule(file: &str, group: &str, index: usize, r: RawRule) -> Result<Rule, RuleError> {
    let label = match (&r.record, &r.alert) {
        (Some(n), _) => format!("rule {} (record {n:?})", index + 1),
        (_, Some(n)) => format!("rule {} (alert {n:?})", index + 1),
        _ => format!("rule {}", index + 1),
    };
    let err = |m: String| RuleError::invalid(file, group, Some(&label), m);
    let expr_text = match &r.expr {
        Some(serde_yaml::Value::String(s)) => s.clone(),
        Some(serde_yaml::Value::Number(n)) => n.to_string(),
        Some(serde_yaml::Value::Bool(b)) => b.to_string(),
        Some(_) => return Err(err("field 'expr' must be a string".into())),
        None => return Err(err("field 'expr' must be set in rule".into())),
    };
    if expr_text.trim().is_empty() {
        return Err(err("field 'expr' must be set in rule".into()));
    }
    let expr = crate::parse(&expr_text).map_err(|e| err(format!("could not parse expression: {e}")))?;
    let labels = r.labels.unwrap_or_default();
    for (k, v) in &labels {
        if !is_valid_label_name(k) {
            return Err(err(format!("invalid label name: {k}")));
        }
        if k == "__name__" {
            return Err(err("invalid label name: __name__".into()));
        }
        let _ = v;
    }
    match (r.record, r.alert) {
        (Some(_), Some(_)) => Err(err("only one of 'record' and 'alert' must be set".into())),
        (None, None) => Err(err("one of 'record' or 'alert' must be set".into())),
        (Some(name), None) => {
            if !is_valid_metric_name(&name) {
                return Err(err(format!("invalid recording rule name: {name}")));
            }
            if r.for_.is_some() || r.keep_firing_for.is_some() {
                return Err(err("invalid field 'for' or 'keep_firing_for' in recording rule".into()));
            }
            if r.annotations.is_some_and(|a| !a.is_empty()) {
                return Err(err("invalid field 'annotations' in recording rule".into()));
            }
            let labels = Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            Ok(Rule::Recording(RecordingRule { name, expr, expr_text, labels }))
        }
        (None, Some(name)) => {
            if name.is_empty() {
                return Err(err("invalid alert name: empty".into()));
            }
            let for_ms = match &r.for_ {
                Some(s) => duration(file, group, Some(&label), "for", s)?,
                None => 0,
            };
            let keep_firing_for_ms = match &r.keep_firing_for {
                Some(s) => duration(file, group, Some(&label), "keep_firing_for", s)?,
                None => 0,
            };
            let mut tl = Vec::new();
            for (k, v) in labels {
                let t = Template::parse(&v).map_err(|e| err(format!("label {k:?}: {e}")))?;
                tl.push((k, t));
            }
            let mut ta = Vec::new();
            for (k, v) in r.annotations.unwrap_or_default() {
                if !is_valid_label_name(&k) {
                    return Err(err(format!("invalid annotation name: {k}")));
                }
                let t = Template::parse(&v).map_err(|e| err(format!("annotation {k:?}: {e}")))?;
                ta.push((k, t));
            }
            Ok(Rule::Alerting(AlertingRule { name, expr, expr_text, for_ms, keep_firing_for_ms, labels: tl, annotations: ta }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn group_fields() {
        let g = parse_groups("groups: [{name: g, interval: 15s, query_offset: 1m, limit: 3, rules: [{record: 'a:b', expr: '1', labels: {x: y}}]}]", "f").unwrap();
        assert_eq!((g[0].interval, g[0].query_offset, g[0].limit), (Some(15_000), 60_000, 3));
        assert_eq!(g[0].interval_or(1), 15_000);
        let Rule::Recording(r) = &g[0].rules[0] else { panic!("not a recording rule") };
        assert_eq!(r.labels.get("x"), Some("y"));
        assert!(parse_groups("", "f").unwrap().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Arbitrary YAML-ish text is accepted or rejected, never a panic.
        #[test]
        fn parse_never_panics(s in "(groups|name|rules|alert|expr|record|for|labels|[:{}\\[\\], \n'a-z0-9$]){0,40}") {
            let _ = parse_groups(&s, "f");
        }

        #[test]
        fn valid_record_names_load(name in "[a-z_:][a-z0-9_:]{0,20}") {
            let y = format!("groups: [{{name: g, rules: [{{record: '{name}', expr: up}}]}}]");
            prop_assert!(parse_groups(&y, "f").is_ok());
        }
    }
}
