//! The alerter: Prometheus rule groups evaluated against a remote
//! Prometheus-compatible server.
//!
//! Design choice: each rule's expression is sent as is to the server's
//! `/api/v1/query` with `time=t`, and the JSON vector (or scalar) that comes
//! back is fed to [`promql::rules::GroupEvaluator::eval_query`], which runs
//! the alert state machine, templating and `ALERTS` series locally. This is
//! what Prometheus itself computes (the server runs the same PromQL), costs
//! one request per rule, and needs no raw-sample transfer. The price: a
//! recording rule's output is visible to later rules only once it has been
//! written back (remote-write) and is queryable on the server, i.e. from
//! the next evaluation on — as in Prometheus with a separate rule
//! evaluator (Thanos Ruler, `--mode=agent` setups).
//!
//! [`Alerter::tick`] evaluates the groups that are due; the binary loops
//! over it. Recorded samples go to a [`RemoteWriter`]; firing and resolved
//! alerts of one evaluation become one Mattermost message
//! ([`notify::alerts_message`]: firing red, resolved green) on a
//! [`notify::Notifier`].

use crate::remote_write::RemoteWriter;
use model::Labels;
use promql::rules::{AlertState, EvalContext, GroupEvaluator, RuleGroup, Transition};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A failed query against the remote server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Connection or HTTP failure.
    #[error("query {url}: {message}")]
    Http {
        /// The request URL (without the query text).
        url: String,
        /// What failed (status and server error text when there is one).
        message: String,
    },
    /// The response is not the Prometheus API JSON expected.
    #[error("query {url}: bad response: {message}")]
    Decode {
        /// The request URL.
        url: String,
        /// What was wrong.
        message: String,
    },
}

/// Runs instant queries on a Prometheus-compatible HTTP API.
#[derive(Debug, Clone)]
pub struct QueryClient {
    base: String,
    agent: ureq::Agent,
}

impl QueryClient {
    /// `base` is the server root, e.g. `http://127.0.0.1:9090`.
    pub fn new(base: &str, timeout: Duration) -> Self {
        QueryClient { base: base.trim_end_matches('/').to_string(), agent: ureq::AgentBuilder::new().timeout(timeout).build() }
    }

    /// Evaluates `expr` at `t_ms`; returns the vector (a scalar as one
    /// sample without labels).
    pub fn query(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, QueryError> {
        let url = format!("{}/api/v1/query", self.base);
        let time = format!("{}.{:03}", t_ms.div_euclid(1000), t_ms.rem_euclid(1000));
        let resp = self.agent.post(&url).send_form(&[("query", expr), ("time", &time)]);
        let body = match resp {
            Ok(r) => r.into_string(),
            // 4xx/5xx carry the API's JSON error: decode it for the message.
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                let msg = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                    .unwrap_or(text);
                return Err(QueryError::Http { url, message: format!("status {code}: {msg}") });
            }
            Err(e) => return Err(QueryError::Http { url, message: e.to_string() }),
        }
        .map_err(|e| QueryError::Http { url: url.clone(), message: e.to_string() })?;
        decode_query_response(&body).map_err(|message| QueryError::Decode { url, message })
    }
}

/// Decodes an `/api/v1/query` response body into samples.
pub fn decode_query_response(body: &str) -> Result<Vec<(Labels, f64)>, String> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("status").and_then(|s| s.as_str()) != Some("success") {
        let err = v.get("error").and_then(|e| e.as_str()).unwrap_or("status is not success");
        return Err(err.to_string());
    }
    let data = v.get("data").ok_or("missing data")?;
    let kind = data.get("resultType").and_then(|t| t.as_str()).ok_or("missing resultType")?;
    let result = data.get("result").ok_or("missing result")?;
    match kind {
        "vector" => {
            let items = result.as_array().ok_or("result is not an array")?;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let metric = item.get("metric").and_then(|m| m.as_object()).ok_or("sample without metric")?;
                let mut pairs = Vec::with_capacity(metric.len());
                for (k, v) in metric {
                    pairs.push((k.as_str(), v.as_str().ok_or("label value is not a string")?));
                }
                let value = sample_value(item.get("value").ok_or("sample without value")?)?;
                out.push((Labels::from_pairs(pairs), value));
            }
            Ok(out)
        }
        "scalar" => Ok(vec![(Labels::empty(), sample_value(result)?)]),
        other => Err(format!("rule result is a {other}, not a vector or scalar")),
    }
}

fn sample_value(v: &serde_json::Value) -> Result<f64, String> {
    let s = v.as_array().and_then(|a| a.get(1)).and_then(|x| x.as_str()).ok_or("value is not [time, \"number\"]")?;
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad sample value {s:?}")),
    }
}

/// Turns a transition into a notification: becoming firing gives a firing
/// alert, firing → inactive a resolved one; pending changes give `None`
/// (Prometheus sends only firing and resolved alerts to Alertmanager).
pub fn notification(t: &Transition, generator_url: Option<&str>) -> Option<notify::Alert> {
    let status = match (t.from, t.alert.state) {
        (from, AlertState::Firing) if from != AlertState::Firing => notify::AlertStatus::Firing,
        (AlertState::Firing, AlertState::Inactive) => notify::AlertStatus::Resolved,
        _ => return None,
    };
    let at = |ms: i64| UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    Some(notify::Alert {
        status,
        labels: t.alert.labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect(),
        annotations: t.alert.annotations.clone(),
        starts_at: at(t.alert.active_at),
        ends_at: (status == notify::AlertStatus::Resolved).then(|| at(t.alert.resolved_at)),
        generator_url: generator_url.map(str::to_string),
    })
}

/// Where the alerter sends things.
pub struct Outputs {
    /// Recorded samples go here, if set.
    pub remote_write: Option<RemoteWriter>,
    /// Alert notifications go here, if set.
    pub notifier: Option<notify::Notifier>,
    /// Message style for notifications.
    pub style: notify::MessageStyle,
}

/// What one [`Alerter::tick`] did, for logs and tests.
#[derive(Debug, Default, Clone)]
pub struct TickReport {
    /// Groups evaluated.
    pub groups: usize,
    /// Samples handed to remote-write.
    pub samples: usize,
    /// Notifications (alerts) sent.
    pub notified: usize,
    /// Rule failures and delivery errors, readable.
    pub errors: Vec<String>,
}

struct Scheduled {
    eval: GroupEvaluator,
    interval_ms: i64,
    next_ms: i64,
}

/// Groups with their schedules, a query client and outputs.
pub struct Alerter {
    groups: Vec<Scheduled>,
    client: QueryClient,
    outputs: Outputs,
    generator_url: Option<String>,
}

impl Alerter {
    /// Groups without an `interval` run every `default_interval`.
    pub fn new(groups: Vec<RuleGroup>, default_interval: Duration, client: QueryClient, outputs: Outputs, ctx: EvalContext) -> Self {
        let default_ms = i64::try_from(default_interval.as_millis()).unwrap_or(i64::MAX).max(1);
        let generator_url = (!ctx.external_url.is_empty()).then(|| ctx.external_url.clone());
        let groups = groups
            .into_iter()
            .map(|g| {
                let interval_ms = g.interval_or(default_ms);
                Scheduled { eval: GroupEvaluator::new(g, promql::Engine::default(), ctx.clone()), interval_ms, next_ms: 0 }
            })
            .collect();
        Alerter { groups, client, outputs, generator_url }
    }

    /// The earliest time (ms) a group is due.
    pub fn next_due(&self) -> Option<i64> {
        self.groups.iter().map(|g| g.next_ms).min()
    }

    /// Evaluates every group due at `now_ms`, at its interval-aligned time
    /// (as Prometheus aligns evaluations), sends the results, and schedules
    /// the next evaluation.
    pub fn tick(&mut self, now_ms: i64) -> TickReport {
        let mut report = TickReport::default();
        let mut alerts = Vec::new();
        for g in self.groups.iter_mut().filter(|g| g.next_ms <= now_ms) {
            let t = now_ms - now_ms.rem_euclid(g.interval_ms);
            g.next_ms = t + g.interval_ms;
            let client = &self.client;
            let out = g.eval.eval_query(t, &mut |expr, at| client.query(expr, at).map_err(|e| e.to_string()));
            report.groups += 1;
            for f in &out.failures {
                report.errors.push(format!("group {:?} rule {:?}: {}", f.group, f.rule, f.message));
            }
            if let Some(rw) = &self.outputs.remote_write {
                report.samples += rw.enqueue(&out.samples);
            }
            alerts.extend(out.transitions.iter().filter_map(|t| notification(t, self.generator_url.as_deref())));
        }
        if let (Some(n), Some(payload)) = (&self.outputs.notifier, notify::alerts_message(&alerts, &self.outputs.style)) {
            match n.send(payload) {
                Ok(_) => report.notified = alerts.len(),
                Err(e) => report.errors.push(format!("notification: {e}")),
            }
        }
        report
    }

    /// The active alerts of all groups: (group, labels, state).
    pub fn alerts(&self) -> Vec<(String, BTreeMap<String, String>, AlertState)> {
        let mut v = Vec::new();
        for g in &self.groups {
            for a in g.eval.alerts() {
                let labels = a.labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect();
                v.push((g.eval.group().name.clone(), labels, a.state));
            }
        }
        v
    }

    /// Stops the outputs, waiting up to `timeout` for queued data.
    pub fn shutdown(self, timeout: Duration) {
        if let Some(rw) = &self.outputs.remote_write {
            rw.flush(timeout);
            rw.stop();
        }
        if let Some(n) = self.outputs.notifier {
            let _ = n.flush(timeout);
            n.shutdown();
        }
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql::rules::parse_groups;

    #[test]
    fn decodes_vectors_scalars_and_errors() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"n"},"value":[1.5,"0"]}]}}"#;
        let v = decode_query_response(body).unwrap();
        assert_eq!(v, vec![(Labels::from_pairs([("__name__", "up"), ("job", "n")]), 0.0)]);
        let s = decode_query_response(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#).unwrap();
        assert_eq!(s[0].1, f64::INFINITY);
        for bad in [
            "nope",
            r#"{"status":"error","error":"boom"}"#,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":1},"value":[1,"1"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#,
        ] {
            assert!(decode_query_response(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn transitions_become_firing_and_resolved_notifications() {
        let g = parse_groups("groups: [{name: g, rules: [{alert: Down, expr: up == 0, annotations: {summary: '{{ $labels.i }} down'}}]}]", "f").unwrap().remove(0);
        let mut ev = GroupEvaluator::new(g, promql::Engine::default(), EvalContext::default());
        let down = vec![(Labels::from_pairs([("__name__", "up"), ("i", "a")]), 0.0)];
        let out = ev.eval_query(60_000, &mut |_, _| Ok(down.clone()));
        let n: Vec<notify::Alert> = out.transitions.iter().filter_map(|t| notification(t, None)).collect();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].status, notify::AlertStatus::Firing);
        assert_eq!(n[0].annotations["summary"], "a down");
        let out = ev.eval_query(120_000, &mut |_, _| Ok(Vec::new()));
        let n: Vec<notify::Alert> = out.transitions.iter().filter_map(|t| notification(t, None)).collect();
        assert_eq!(n[0].status, notify::AlertStatus::Resolved);
        assert_eq!(n[0].ends_at, Some(UNIX_EPOCH + Duration::from_secs(120)));
        let out = ev.eval_query(180_000, &mut |_, _| Err("server down".into()));
        assert_eq!(out.failures[0].message, "server down");
    }
}
