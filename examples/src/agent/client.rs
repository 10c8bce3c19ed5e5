//! Pushing a batch to one Loki push endpoint, with retries and backoff:
//! 5xx, 429 and network errors are retried (exponential backoff between
//! `min_period` and `max_period`); other 4xx drop the batch with a log line.

use super::config::{ClientConfig, PushFormat};
use crate::log_server::push::{encode_json, encode_protobuf, PushStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What happened to a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Acknowledged (2xx).
    Sent,
    /// Refused for good (4xx other than 429), or retries exhausted: the
    /// batch is given up (already logged).
    Dropped(String),
    /// Stopped while retrying: the batch was not delivered.
    Interrupted,
}

/// A push endpoint.
pub struct Client {
    cfg: ClientConfig,
    http: ureq::Agent,
    auth: Option<String>,
}

impl Client {
    /// A client for one `clients:` entry.
    pub fn new(cfg: ClientConfig) -> Client {
        let http = ureq::AgentBuilder::new().timeout(cfg.timeout).build();
        let auth = cfg.basic_auth.as_ref().map(|b| format!("Basic {}", base64(format!("{}:{}", b.username, b.password).as_bytes())));
        Client { cfg, http, auth }
    }

    /// The push URL.
    pub fn url(&self) -> &str {
        &self.cfg.url
    }

    fn encode(&self, streams: &[PushStream]) -> (Vec<u8>, &'static str) {
        let with_external: Vec<PushStream>;
        let streams = if self.cfg.external_labels.is_empty() {
            streams
        } else {
            with_external = streams
                .iter()
                .map(|s| {
                    let mut b = s.labels.builder();
                    for (k, v) in &self.cfg.external_labels {
                        if !s.labels.contains(k) {
                            b.set(k.clone(), v.clone());
                        }
                    }
                    PushStream { labels: b.build(), entries: s.entries.clone() }
                })
                .collect();
            &with_external
        };
        match self.cfg.format {
            PushFormat::Protobuf => (encode_protobuf(streams), "application/x-protobuf"),
            PushFormat::Json => (encode_json(streams), "application/json"),
        }
    }

    /// One attempt: `Ok` on 2xx, `Err((retryable, message))` otherwise.
    fn attempt(&self, body: &[u8], content_type: &str) -> Result<(), (bool, String)> {
        let mut rq = self.http.post(&self.cfg.url).set("Content-Type", content_type).set("User-Agent", "agent/0.1");
        if let Some(t) = &self.cfg.tenant_id {
            rq = rq.set("X-Scope-OrgID", t);
        }
        if let Some(a) = &self.auth {
            rq = rq.set("Authorization", a);
        }
        match rq.send_bytes(body) {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(code, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let text = text.trim();
                let short: String = text.chars().take(500).collect();
                Err((code == 429 || code >= 500, format!("server returned HTTP status {code}: {short}")))
            }
            Err(ureq::Error::Transport(t)) => Err((true, t.to_string())),
        }
    }

    /// Sends `streams` until acknowledged, dropped or `stop` is set.
    pub fn send(&self, streams: &[PushStream], stop: &AtomicBool) -> SendOutcome {
        let (body, ct) = self.encode(streams);
        let b = &self.cfg.backoff_config;
        let mut wait = b.min_period;
        let mut tries: u32 = 0;
        loop {
            match self.attempt(&body, ct) {
                Ok(()) => return SendOutcome::Sent,
                Err((false, msg)) => {
                    eprintln!("agent: dropping batch for {}: {msg}", self.cfg.url);
                    return SendOutcome::Dropped(msg);
                }
                Err((true, msg)) => {
                    tries += 1;
                    if b.max_retries > 0 && tries >= b.max_retries {
                        eprintln!("agent: dropping batch for {} after {tries} attempts: {msg}", self.cfg.url);
                        return SendOutcome::Dropped(msg);
                    }
                    eprintln!("agent: push to {} failed (attempt {tries}), retrying in {wait:?}: {msg}", self.cfg.url);
                    if !sleep_unless_stopped(wait, stop) {
                        return SendOutcome::Interrupted;
                    }
                    wait = (wait * 2).min(b.max_period).max(b.min_period);
                }
            }
        }
    }
}

/// Sleeps `d` in short steps; false if `stop` was set meanwhile.
pub(crate) fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::config::BackoffConfig;
    use crate::http::{Handler, Request, Response, Server, ServerConfig};
    use model::{Labels, LogEntry};
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};

    fn cfg(url: String, format: PushFormat) -> ClientConfig {
        ClientConfig {
            url,
            batchwait: Duration::from_millis(10),
            batchsize: 1000,
            timeout: Duration::from_secs(5),
            backoff_config: BackoffConfig { min_period: Duration::from_millis(5), max_period: Duration::from_millis(20), max_retries: 0 },
            tenant_id: Some("t1".into()),
            basic_auth: Some(super::super::config::BasicAuth { username: "u".into(), password: "p".into() }),
            external_labels: [("host".to_string(), "h".to_string()), ("job".to_string(), "ignored".to_string())].into(),
            format,
        }
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"u:p"), "dTpw");
    }

    #[test]
    fn retries_5xx_and_429_then_succeeds_drops_4xx() {
        // Answers 503, 429, then 204; records what it got.
        let calls = Arc::new(AtomicUsize::new(0));
        let got: Arc<Mutex<Vec<Request>>> = Arc::default();
        let (c2, g2) = (calls.clone(), got.clone());
        let h: Handler = Arc::new(move |r: &Request| {
            g2.lock().unwrap().push(r.clone());
            match (r.path.as_str(), c2.fetch_add(1, Ordering::SeqCst)) {
                ("/bad", _) => Response::text(400, "entry too old"),
                (_, 0) => Response::text(503, "busy"),
                (_, 1) => Response::text(429, "slow down"),
                _ => Response::new(204, "text/plain", Vec::new()),
            }
        });
        let srv = Server::start("127.0.0.1:0", ServerConfig { threads: 1, max_body: 1 << 20, ..ServerConfig::default() }, h).unwrap();
        let addr = srv.local_addr().unwrap();
        let streams = vec![PushStream { labels: Labels::from_pairs([("job", "a")]), entries: vec![LogEntry::new(7, "x")] }];
        let stop = AtomicBool::new(false);
        for format in [PushFormat::Protobuf, PushFormat::Json] {
            calls.store(0, Ordering::SeqCst);
            got.lock().unwrap().clear();
            let c = Client::new(cfg(format!("http://{addr}/loki/api/v1/push"), format));
            assert_eq!(c.send(&streams, &stop), SendOutcome::Sent);
            let reqs = got.lock().unwrap();
            assert_eq!(reqs.len(), 3);
            let r = &reqs[2];
            assert_eq!(r.header("x-scope-orgid"), Some("t1"));
            assert_eq!(r.header("authorization"), Some("Basic dTpw"));
            let back = crate::log_server::push::decode_push(r.header("content-type"), &r.body, 1 << 20).unwrap();
            assert_eq!(back[0].labels, Labels::from_pairs([("job", "a"), ("host", "h")]));
            assert_eq!(back[0].entries, streams[0].entries);
        }
        let c = Client::new(cfg(format!("http://{addr}/bad"), PushFormat::Json));
        assert!(matches!(c.send(&streams, &stop), SendOutcome::Dropped(m) if m.contains("400") && m.contains("entry too old")));
        srv.shutdown();
    }

    #[test]
    fn network_errors_retry_until_limit_or_stop() {
        // Nothing listens on this port (bound then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut c = cfg(format!("http://127.0.0.1:{port}/loki/api/v1/push"), PushFormat::Protobuf);
        c.backoff_config.max_retries = 3;
        let streams = vec![PushStream { labels: Labels::from_pairs([("job", "a")]), entries: vec![LogEntry::new(7, "x")] }];
        assert!(matches!(Client::new(c.clone()).send(&streams, &AtomicBool::new(false)), SendOutcome::Dropped(_)));
        c.backoff_config.max_retries = 0;
        assert_eq!(Client::new(c).send(&streams, &AtomicBool::new(true)), SendOutcome::Interrupted);
    }
}
