//! The `http`, `keyword` and `json-query` checks (ureq over rustls).

use super::tls::{cert_info, clear_captured, take_captured};
use super::CheckOutcome;
use crate::config::{ContentCheck, HttpSpec, JsonOp};
use serde_json::Value;
use std::io::Read;
use std::time::{Duration, Instant};

/// Largest response body read for keyword and JSON checks (bytes).
pub const MAX_BODY: u64 = 8 * 1024 * 1024;

/// A prepared HTTP check.
#[derive(Debug)]
pub struct HttpCheck {
    pub(crate) spec: HttpSpec,
    pub(crate) agent: ureq::Agent,
}

fn transport_message(e: &ureq::Transport, timeout: Duration) -> String {
    use std::error::Error as _;
    // ureq reports timeouts as I/O errors deep in the chain.
    let mut src: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) {
                return format!("timeout after {:.1} s", timeout.as_secs_f64());
            }
        }
        src = s.source();
    }
    let text = e.to_string();
    if text.contains("timed out") || text.contains("Timeout") {
        return format!("timeout after {:.1} s", timeout.as_secs_f64());
    }
    text
}

fn snippet(s: &str) -> String {
    let mut t: String = s.chars().take(50).collect();
    if t.len() < s.len() {
        t.push_str("...");
    }
    t.replace(['\r', '\n'], " ")
}

/// The JSON value as text for comparison: strings unquoted, other values
/// as JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn as_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Compare a queried value with the expected text.
pub(crate) fn compare(actual: &str, op: JsonOp, expected: &str) -> Result<bool, String> {
    let nums = as_number(actual).zip(as_number(expected));
    Ok(match op {
        JsonOp::Eq => nums.map_or(actual == expected, |(a, b)| a == b),
        JsonOp::Ne => nums.map_or(actual != expected, |(a, b)| a != b),
        JsonOp::Contains => actual.contains(expected),
        JsonOp::Lt | JsonOp::Le | JsonOp::Gt | JsonOp::Ge => {
            let (a, b) = nums.ok_or_else(|| {
                format!("cannot compare {actual:?} {} {expected:?}: both sides must be numbers", op.as_str())
            })?;
            match op {
                JsonOp::Lt => a < b,
                JsonOp::Le => a <= b,
                JsonOp::Gt => a > b,
                _ => a >= b,
            }
        }
    })
}

impl HttpCheck {
    pub(crate) fn run(&self, timeout: Duration) -> CheckOutcome {
        let start = Instant::now();
        clear_captured();
        let mut req = self.agent.request(&self.spec.method, &self.spec.url).timeout(timeout);
        for (k, v) in &self.spec.headers {
            req = req.set(k, v);
        }
        let res = match &self.spec.body {
            Some(b) => req.send_string(b),
            None => req.call(),
        };
        let cert = cert_info(&take_captured());
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                let mut out = CheckOutcome::down(transport_message(&t, timeout));
                out.cert = cert;
                return out;
            }
        };
        let code = resp.status();
        let status_line = format!("{} - {}", code, resp.status_text());
        let accepted = self.spec.accepted.iter().any(|r| r.contains(code));
        // Read the body (bounded) before stopping the clock, as a browser would.
        let mut body = Vec::new();
        let read = resp.into_reader().take(MAX_BODY).read_to_end(&mut body);
        let ping = Some(start.elapsed().as_millis() as u64);
        let mut out = if !accepted {
            let list: Vec<String> = self
                .spec
                .accepted
                .iter()
                .map(|r| if r.lo == r.hi { r.lo.to_string() } else { format!("{}-{}", r.lo, r.hi) })
                .collect();
            CheckOutcome::down(format!("{status_line}: status code not accepted (accepted: {})", list.join(", ")))
        } else if let Err(e) = read {
            if matches!(self.spec.content, ContentCheck::None) {
                CheckOutcome::up(status_line, ping)
            } else {
                CheckOutcome::down(format!("{status_line}: reading body failed: {e}"))
            }
        } else {
            self.judge_body(status_line, &body, ping)
        };
        out.http_status = Some(code);
        out.cert = cert;
        out
    }

    fn judge_body(&self, status_line: String, body: &[u8], ping: Option<u64>) -> CheckOutcome {
        match &self.spec.content {
            ContentCheck::None => CheckOutcome::up(status_line, ping),
            ContentCheck::Keyword { keyword, invert } => {
                let text = String::from_utf8_lossy(body);
                let found = text.contains(keyword.as_str());
                match (found, invert) {
                    (true, false) => CheckOutcome::up(format!("{status_line}, keyword {keyword:?} found"), ping),
                    (false, true) => CheckOutcome::up(format!("{status_line}, keyword {keyword:?} absent as expected"), ping),
                    (false, false) => CheckOutcome::down(format!(
                        "{status_line}, but keyword {keyword:?} is not in [{}]",
                        snippet(&text)
                    )),
                    (true, true) => CheckOutcome::down(format!("{status_line}, but keyword {keyword:?} is present")),
                }
            }
            ContentCheck::JsonQuery { path, query, expected, op } => {
                let json: Value = match serde_json::from_slice(body) {
                    Ok(v) => v,
                    Err(e) => return CheckOutcome::down(format!("{status_line}, but the body is not JSON: {e}")),
                };
                let nodes = query.query(&json).all();
                let actual = match nodes.as_slice() {
                    [] => return CheckOutcome::down(format!("{status_line}, but {path} matched nothing")),
                    [one] => value_text(one),
                    many => Value::Array(many.iter().map(|v| (*v).clone()).collect()).to_string(),
                };
                match compare(&actual, *op, expected) {
                    Ok(true) => CheckOutcome::up(
                        format!("{status_line}, {path} = {} {} {expected}", snippet(&actual), op.as_str()),
                        ping,
                    ),
                    Ok(false) => CheckOutcome::down(format!(
                        "{status_line}, but {path} = {} is not {} {expected}",
                        snippet(&actual),
                        op.as_str()
                    )),
                    Err(e) => CheckOutcome::down(format!("{status_line}, but {e}")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons() {
        assert!(compare("3", JsonOp::Eq, "3.0").unwrap());
        assert!(compare("ok", JsonOp::Eq, "ok").unwrap());
        assert!(!compare("ok", JsonOp::Eq, "OK").unwrap());
        assert!(compare("ok", JsonOp::Ne, "fail").unwrap());
        assert!(compare("10", JsonOp::Gt, "9").unwrap());
        assert!(compare("9", JsonOp::Le, "9").unwrap());
        assert!(!compare("10", JsonOp::Lt, "9").unwrap());
        assert!(compare("hello world", JsonOp::Contains, "lo w").unwrap());
        assert!(compare("abc", JsonOp::Gt, "1").is_err());
    }

    #[test]
    fn value_text_unquotes_strings_only() {
        assert_eq!(value_text(&Value::String("x".into())), "x");
        assert_eq!(value_text(&serde_json::json!(true)), "true");
        assert_eq!(value_text(&serde_json::json!([1, 2])), "[1,2]");
        assert_eq!(snippet(&"a\n".repeat(40)).len(), 53);
    }
}
