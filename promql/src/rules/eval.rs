//! Evaluating a group: pure, sans-IO. The caller supplies the storage to
//! read and appends what comes back.

use super::file::{AlertingRule, RecordingRule, Rule, RuleGroup};
use super::template::TemplateData;
use crate::engine::Engine;
use crate::value::Value;
use model::{stale_nan, Labels, LabelsBuilder, Queryable};
use std::collections::{BTreeMap, HashMap, HashSet};

/// How long a resolved alert stays in the active set (and is reported as
/// resolved) before it is forgotten, as in Prometheus.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60_000;

/// A sample to append: labels, timestamp (ms), value.
pub type RecordedSample = (Labels, i64, f64);

/// An instant vector as rules see it: labels and values.
pub type InstantVector = Vec<(Labels, f64)>;

/// The state of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    /// Not active (resolved).
    Inactive,
    /// Active, waiting out `for`.
    Pending,
    /// Active and firing.
    Firing,
}

impl AlertState {
    /// `inactive`, `pending` or `firing`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Labels: the series labels without `__name__`, the rule's labels, and
    /// `alertname`.
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// The current state.
    pub state: AlertState,
    /// The latest sample value.
    pub value: f64,
    /// When it first became active, ms.
    pub active_at: i64,
    /// When it started firing, ms (0 if it never has).
    pub fired_at: i64,
    /// When it resolved, ms (0 while active).
    pub resolved_at: i64,
    /// Start of the `keep_firing_for` window, ms (0 when not in one).
    pub keep_firing_since: i64,
}

/// A change of an alert's state during one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The group.
    pub group: String,
    /// The alert after the change.
    pub alert: Alert,
    /// The state before (`Inactive` for a new alert).
    pub from: AlertState,
}

/// A rule that failed to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFailure {
    /// Group name.
    pub group: String,
    /// Rule name.
    pub rule: String,
    /// What went wrong (engine error, duplicate labelsets, limit).
    pub message: String,
}

/// What one evaluation of a group produced.
#[derive(Debug, Clone, Default)]
pub struct GroupOutput {
    /// Samples to append: recording rule results, `ALERTS`,
    /// `ALERTS_FOR_STATE`, and stale markers for series that disappeared.
    pub samples: Vec<RecordedSample>,
    /// Alert state changes (new pending, pending → firing, resolved).
    pub transitions: Vec<Transition>,
    /// Rules that failed (the others still ran).
    pub failures: Vec<RuleFailure>,
}

/// Where alerts come from: external labels and URL for templates.
#[derive(Debug, Clone, Default)]
pub struct EvalContext {
    /// `$externalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// `$externalURL`.
    pub external_url: String,
}

#[derive(Debug, Default, Clone)]
struct RuleState {
    /// Alerting rules: active alerts by label fingerprint.
    active: HashMap<Labels, Alert>,
    /// Series written last time, for stale markers.
    written: HashSet<Labels>,
}

/// A group plus its evaluation state (alerts, series written last time).
#[derive(Debug, Clone)]
pub struct GroupEvaluator {
    group: RuleGroup,
    engine: Engine,
    ctx: EvalContext,
    states: Vec<RuleState>,
}

impl GroupEvaluator {
    /// Starts with no active alerts.
    pub fn new(group: RuleGroup, engine: Engine, ctx: EvalContext) -> Self {
        let states = vec![RuleState::default(); group.rules.len()];
        GroupEvaluator { group, engine, ctx, states }
    }

    /// The group.
    pub fn group(&self) -> &RuleGroup {
        &self.group
    }

    /// Active (pending, firing, or resolved within retention) alerts of
    /// every alerting rule, sorted by labels.
    pub fn alerts(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.states.iter().flat_map(|s| s.active.values()).collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Evaluates every rule at `t` (ms) against `store` and returns the
    /// output. Rules in a group read what earlier rules of the same
    /// evaluation recorded only if the caller appends it in between: see
    /// [`GroupEvaluator::eval_with`].
    pub fn eval(&mut self, store: &dyn Queryable, t: i64) -> GroupOutput {
        self.eval_with(store, t, &mut |_| {})
    }

    /// Like [`eval`](Self::eval), calling `append` with each rule's samples
    /// right after the rule ran, so a caller that appends them to `store`
    /// gives later rules the values just recorded (as Prometheus does).
    pub fn eval_with(&mut self, store: &dyn Queryable, t: i64, append: &mut dyn FnMut(&[RecordedSample])) -> GroupOutput {
        let engine = self.engine.clone();
        let mut q = |rule: &Rule, at: i64| -> Result<InstantVector, String> {
            let expr = match rule {
                Rule::Recording(r) => &r.expr,
                Rule::Alerting(a) => &a.expr,
            };
            query(&engine, expr, store, at)
        };
        self.eval_inner(t, &mut q, append)
    }

    /// Evaluates every rule at `t` with results from `query`, which is
    /// given each rule's expression text and the query time (ms, `t` minus
    /// the group's `query_offset`) and returns the instant vector (a scalar
    /// as one sample with no labels) or an error message. This is how a
    /// caller evaluates rules on a remote server (`/api/v1/query`).
    pub fn eval_query(&mut self, t: i64, query: &mut dyn FnMut(&str, i64) -> Result<InstantVector, String>) -> GroupOutput {
        let mut q = |rule: &Rule, at: i64| query(rule.expr_text(), at);
        self.eval_inner(t, &mut q, &mut |_| {})
    }

    fn eval_inner(
        &mut self,
        t: i64,
        query: &mut dyn FnMut(&Rule, i64) -> Result<InstantVector, String>,
        append: &mut dyn FnMut(&[RecordedSample]),
    ) -> GroupOutput {
        let mut out = GroupOutput::default();
        let at = t - self.group.query_offset;
        for i in 0..self.group.rules.len() {
            let start = out.samples.len();
            let rule = &self.group.rules[i];
            let res = query(rule, at).and_then(|res| match rule {
                Rule::Recording(r) => eval_recording(r, self.group.limit, res),
                Rule::Alerting(a) => {
                    let limit = self.group.limit;
                    eval_alerting(&self.ctx, limit, a, &mut self.states[i].active, res, t, &self.group.name, &mut out.transitions)
                }
            });
            let state = &mut self.states[i];
            let series = match res {
                Ok(s) => s,
                Err(message) => {
                    // As in Prometheus: a failed rule writes nothing, not even
                    // stale markers, and its alerts keep their state.
                    out.failures.push(RuleFailure { group: self.group.name.clone(), rule: self.group.rules[i].name().to_string(), message });
                    continue;
                }
            };
            let now: HashSet<Labels> = series.iter().map(|(l, _)| l.clone()).collect();
            for (l, v) in series {
                out.samples.push((l, t, v));
            }
            let mut gone: Vec<&Labels> = state.written.iter().filter(|l| !now.contains(*l)).collect();
            gone.sort();
            for l in gone {
                out.samples.push((l.clone(), t, stale_nan()));
            }
            state.written = now;
            append(&out.samples[start..]);
        }
        out
    }
}

fn query(engine: &Engine, expr: &crate::Expr, store: &dyn Queryable, t: i64) -> Result<InstantVector, String> {
    let r = engine.instant_expr(store, expr, t).map_err(|e| e.to_string())?;
    match r.value {
        Value::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.value)).collect()),
        Value::Scalar { value, .. } => Ok(vec![(Labels::empty(), value)]),
        other => Err(format!("rule result is not a vector or scalar: {other:?}")),
    }
}

fn eval_recording(r: &RecordingRule, limit: usize, res: Vec<(Labels, f64)>) -> Result<InstantVector, String> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(res.len());
    for (l, v) in res {
        let mut b = l.builder();
        b.set("__name__", r.name.clone());
        for lab in r.labels.iter() {
            if lab.value.is_empty() {
                b.del(&lab.name);
            } else {
                b.set(lab.name.clone(), lab.value.clone());
            }
        }
        let l = b.build();
        if !seen.insert(l.clone()) {
            return Err("vector contains metrics with the same labelset after applying rule labels".into());
        }
        out.push((l, v));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!("exceeded limit of {limit} with {} series", out.len()));
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn eval_alerting(
    ctx: &EvalContext,
    limit: usize,
    rule: &AlertingRule,
    active: &mut HashMap<Labels, Alert>,
    res: Vec<(Labels, f64)>,
    t: i64,
    group: &str,
    transitions: &mut Vec<Transition>,
) -> Result<InstantVector, String> {
    let mut current: HashMap<Labels, (f64, BTreeMap<String, String>)> = HashMap::new();
    for (l, v) in res {
        let data = TemplateData {
            // As in Prometheus, `$labels` is the sample's metric, `__name__` included.
            labels: l.iter().map(|x| (x.name.to_string(), x.value.to_string())).collect(),
            value: v,
            external_labels: ctx.external_labels.clone(),
            external_url: ctx.external_url.clone(),
        };
        let mut b: LabelsBuilder = l.builder();
        b.del("__name__");
        for (k, tmpl) in &rule.labels {
            let val = tmpl.render(&data);
            if val.is_empty() {
                b.del(k);
            } else {
                b.set(k.clone(), val);
            }
        }
        b.set("alertname", rule.name.clone());
        let labels = b.build();
        let ann: BTreeMap<String, String> = rule.annotations.iter().map(|(k, tmpl)| (k.clone(), tmpl.render(&data))).collect();
        if current.insert(labels, (v, ann)).is_some() {
            return Err("vector contains metrics with the same labelset after applying alert labels".into());
        }
    }
    if limit > 0 && current.len() > limit {
        // Prometheus drops every alert of the rule when the limit is hit.
        for a in active.values_mut() {
            if a.state != AlertState::Inactive {
                let from = a.state;
                a.state = AlertState::Inactive;
                a.resolved_at = t;
                transitions.push(Transition { group: group.into(), alert: a.clone(), from });
            }
        }
        return Err(format!("exceeded limit of {limit} with {} alerts", current.len()));
    }
    let mut fresh = HashSet::new();
    for (labels, (value, annotations)) in current.iter() {
        match active.get_mut(labels) {
            Some(a) if a.state != AlertState::Inactive => {
                a.value = *value;
                a.annotations = annotations.clone();
            }
            _ => {
                fresh.insert(labels.clone());
                active.insert(
                    labels.clone(),
                    Alert {
                        labels: labels.clone(),
                        annotations: annotations.clone(),
                        state: AlertState::Pending,
                        value: *value,
                        active_at: t,
                        fired_at: 0,
                        resolved_at: 0,
                        keep_firing_since: 0,
                    },
                );
            }
        }
    }
    let mut out = Vec::new();
    let mut remove = Vec::new();
    let mut keys: Vec<Labels> = active.keys().cloned().collect();
    keys.sort();
    for key in keys {
        let Some(a) = active.get_mut(&key) else { continue };
        let before = a.state;
        let is_new = fresh.contains(&key);
        if !current.contains_key(&key) {
            let mut keep = false;
            if a.state == AlertState::Firing && rule.keep_firing_for_ms > 0 {
                if a.keep_firing_since == 0 {
                    a.keep_firing_since = t;
                }
                keep = t - a.keep_firing_since < rule.keep_firing_for_ms;
            }
            if a.state == AlertState::Pending || (a.resolved_at != 0 && t - a.resolved_at > RESOLVED_RETENTION_MS) {
                remove.push(key.clone());
            }
            if a.state != AlertState::Inactive && !keep {
                a.state = AlertState::Inactive;
                a.resolved_at = t;
                transitions.push(Transition { group: group.into(), alert: a.clone(), from: before });
            }
            if !keep {
                continue;
            }
        } else {
            a.keep_firing_since = 0;
        }
        if a.state == AlertState::Pending && t - a.active_at >= rule.for_ms {
            a.state = AlertState::Firing;
            a.fired_at = t;
        }
        if is_new || a.state != before {
            let from = if is_new { AlertState::Inactive } else { before };
            transitions.push(Transition { group: group.into(), alert: a.clone(), from });
        }
        let mut b = a.labels.builder();
        b.set("__name__", "ALERTS");
        b.set("alertstate", a.state.as_str());
        out.push((b.build(), 1.0));
        let mut b = a.labels.builder();
        b.set("__name__", "ALERTS_FOR_STATE");
        out.push((b.build(), (a.active_at / 1000) as f64));
    }
    for k in remove {
        active.remove(&k);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse_groups;
    use model::mem::MemStore;

    const RULES: &str = r#"
groups:
  - name: g
    rules:
      - alert: Down
        expr: up == 0
        for: 2m
        keep_firing_for: 1m
        labels: { severity: page }
        annotations: { summary: "{{ $labels.instance }} down, value {{ $value }}" }
"#;

    fn states(ev: &GroupEvaluator) -> Vec<&'static str> {
        ev.alerts().iter().map(|a| a.state.as_str()).collect()
    }

    #[test]
    fn pending_firing_keep_firing_resolved() {
        let g = parse_groups(RULES, "r.yml").unwrap().remove(0);
        let mut ev = GroupEvaluator::new(g, Engine::default(), EvalContext::default());
        let s = MemStore::new();
        let up = Labels::from_pairs([("__name__", "up"), ("instance", "a")]);
        // down from 0 to 4m, up again from 5m.
        for m in 0..=10 {
            s.append(&up, m * 60_000, if m <= 4 { 0.0 } else { 1.0 });
        }
        let mut seen = Vec::new();
        for m in 0..=10 {
            let out = ev.eval(&s, m * 60_000);
            assert!(out.failures.is_empty(), "{:?}", out.failures);
            seen.push(states(&ev).join(","));
            if m == 0 {
                assert_eq!(out.transitions.len(), 1);
                assert_eq!(out.transitions[0].alert.annotations["summary"], "a down, value 0");
                let names: Vec<String> = out.samples.iter().map(|(l, _, _)| l.to_string()).collect();
                assert_eq!(
                    names,
                    vec![
                        r#"{__name__="ALERTS", alertname="Down", alertstate="pending", instance="a", severity="page"}"#,
                        r#"{__name__="ALERTS_FOR_STATE", alertname="Down", instance="a", severity="page"}"#
                    ]
                );
            }
        }
        // Pending 0-1m, firing 2-4m, kept firing at 5m (within 1m), resolved at 6m.
        assert_eq!(seen, vec!["pending", "pending", "firing", "firing", "firing", "firing", "inactive", "inactive", "inactive", "inactive", "inactive"]);
        // Resolved alerts are dropped after 15 minutes.
        ev.eval(&s, 6 * 60_000 + RESOLVED_RETENTION_MS + 1);
        assert!(ev.alerts().is_empty());
    }

    #[test]
    fn recording_rule_duplicates_and_staleness() {
        let g = parse_groups("groups: [{name: r, rules: [{record: 'job:up:sum', expr: 'sum by (job) (up)'}, {record: 'bad', expr: 'up', labels: {instance: x}}]}]", "f").unwrap().remove(0);
        let mut ev = GroupEvaluator::new(g, Engine::default(), EvalContext::default());
        let s = MemStore::new();
        for inst in ["a", "b"] {
            s.append(&Labels::from_pairs([("__name__", "up"), ("job", "n"), ("instance", inst)]), 0, 1.0);
        }
        let out = ev.eval(&s, 0);
        assert_eq!(out.samples, vec![(Labels::from_pairs([("__name__", "job:up:sum"), ("job", "n")]), 0, 2.0)]);
        assert_eq!(out.failures.len(), 1);
        assert!(out.failures[0].message.contains("same labelset"), "{:?}", out.failures);
        // 10 minutes later `up` is gone: a stale marker is written.
        let out = ev.eval(&s, 600_000);
        assert_eq!(out.samples.len(), 1);
        assert!(model::is_stale_nan(out.samples[0].2));
    }

    #[test]
    fn remote_queries_offset_and_limit() {
        let y = "groups: [{name: g, query_offset: 30s, limit: 1, rules: [{alert: Hot, expr: 'temp > 1'}]}]";
        let g = parse_groups(y, "f").unwrap().remove(0);
        let mut ev = GroupEvaluator::new(g, Engine::default(), EvalContext::default());
        let one = |i: &str| (Labels::from_pairs([("__name__", "temp"), ("i", i)]), 2.0);
        let mut asked = Vec::new();
        let out = ev.eval_query(60_000, &mut |q, at| {
            asked.push((q.to_string(), at));
            Ok(vec![one("a")])
        });
        assert_eq!(asked, vec![("temp > 1".to_string(), 30_000)]);
        assert_eq!(out.transitions[0].alert.state, AlertState::Firing);
        // Two alerts exceed the limit of 1: the rule fails and its alerts resolve.
        let out = ev.eval_query(120_000, &mut |_, _| Ok(vec![one("a"), one("b")]));
        assert!(out.failures[0].message.contains("exceeded limit of 1 with 2 alerts"), "{:?}", out.failures);
        assert_eq!(out.transitions[0].alert.state, AlertState::Inactive);
        // A failing query writes nothing and keeps alert state.
        let out = ev.eval_query(180_000, &mut |_, _| Err("unreachable".into()));
        assert!(out.samples.is_empty() && out.transitions.is_empty());
    }
}
