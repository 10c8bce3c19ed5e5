//! Monitor configuration: a YAML document, validated into typed settings.
//!
//! ```yaml
//! workers: 16                 # worker threads doing checks (default 32)
//! history:
//!   path: heartbeats.jsonl    # optional; without it history is kept in memory only
//!   retention_days: 180       # raw beats older than this are folded into daily totals
//! monitors:
//!   - name: website
//!     type: http              # http | keyword | json-query | tcp | dns | tls | push | ping
//!     url: https://example.org/
//!     interval: 60            # seconds (default 60, at least 1)
//!     retry_interval: 30      # seconds (default: interval)
//!     max_retries: 2          # default 0
//!     timeout: 10             # seconds (default 48, capped at 80% of interval)
//!     accepted_status_codes: ["200-299", 301]
//! ```
//!
//! Every field, its default and its meaning are listed on [`MonitorConfig`]
//! and [`MonitorKind`]. Errors name the monitor and the field.

use crate::error::ConfigError;
use crate::maintenance::{Cron, MaintenanceWindow, MAX_DURATION_MS};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default interval between checks (Uptime Kuma: 60 s).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default check timeout (Uptime Kuma: 48 s), before the 80%-of-interval cap.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(48);
/// Longest interval accepted (Uptime Kuma's limit: 24 days).
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 24 * 3600);
/// Default certificate-expiry warning thresholds in days, for `tls` monitors.
pub const DEFAULT_EXPIRY_DAYS: [u32; 3] = [7, 14, 21];
/// Default number of worker threads.
pub const DEFAULT_WORKERS: usize = 32;

/// A whole configuration file.
#[derive(Clone, Debug)]
pub struct Config {
    /// Monitors, in file order.
    pub monitors: Vec<MonitorConfig>,
    /// Worker threads for checks.
    pub workers: usize,
    /// Heartbeat history settings.
    pub history: HistoryConfig,
}

/// Where and how long heartbeats are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryConfig {
    /// The JSON-lines file; `None` keeps history in memory only.
    pub path: Option<PathBuf>,
    /// Raw beats older than this are folded into per-day totals (default 180 days).
    pub retention: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig { path: None, retention: Duration::from_secs(180 * 24 * 3600) }
    }
}

/// One monitor, validated.
#[derive(Clone, Debug)]
pub struct MonitorConfig {
    /// Unique name.
    pub name: String,
    /// What to check.
    pub kind: MonitorKind,
    /// Time between checks (default 60 s).
    pub interval: Duration,
    /// Time between checks while PENDING (default: `interval`).
    pub retry_interval: Duration,
    /// Failures tolerated as PENDING before DOWN (default 0).
    pub max_retries: u32,
    /// Effective timeout: the configured one (default 48 s) capped at 80% of
    /// `interval`.
    pub timeout: Duration,
    /// Invert UP and DOWN (default false).
    pub upside_down: bool,
    /// Re-notify every N beats while DOWN (default 0 = never).
    pub resend_interval: u32,
    /// Maintenance windows.
    pub maintenance: Vec<MaintenanceWindow>,
}

impl MonitorConfig {
    /// The settings the state machine needs.
    pub fn state_settings(&self) -> crate::state::StateSettings {
        crate::state::StateSettings {
            interval: self.interval,
            retry_interval: self.retry_interval,
            max_retries: self.max_retries,
            upside_down: self.upside_down,
            resend_interval: self.resend_interval,
        }
    }

    /// A monitor with Uptime Kuma's default settings.
    pub fn new(name: impl Into<String>, kind: MonitorKind) -> Self {
        MonitorConfig {
            name: name.into(),
            kind,
            interval: DEFAULT_INTERVAL,
            retry_interval: DEFAULT_INTERVAL,
            max_retries: 0,
            timeout: DEFAULT_TIMEOUT,
            upside_down: false,
            resend_interval: 0,
            maintenance: Vec::new(),
        }
    }
}

/// An inclusive range of accepted HTTP status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest accepted code.
    pub lo: u16,
    /// Highest accepted code.
    pub hi: u16,
}

impl StatusRange {
    /// Parse `"200-299"` or `"301"`.
    pub fn parse(s: &str) -> Result<StatusRange, String> {
        let s = s.trim();
        let num = |t: &str| -> Result<u16, String> {
            let v: u16 = t.trim().parse().map_err(|_| format!("{t:?} is not a status code"))?;
            if !(100..=999).contains(&v) {
                return Err(format!("{v} is not a status code (100-999)"));
            }
            Ok(v)
        };
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let v = num(s)?;
                (v, v)
            }
        };
        if lo > hi {
            return Err(format!("range {s:?} starts after it ends"));
        }
        Ok(StatusRange { lo, hi })
    }

    /// Whether `code` is in the range.
    pub fn contains(&self, code: u16) -> bool {
        (self.lo..=self.hi).contains(&code)
    }
}

/// How an HTTP response body is judged, beyond its status code.
#[derive(Clone, Debug)]
pub enum ContentCheck {
    /// Status code only (`type: http`).
    None,
    /// `type: keyword`: the body must contain `keyword` (case-sensitive), or
    /// must not when `invert` is set.
    Keyword {
        /// The text to look for.
        keyword: String,
        /// Look for its absence instead.
        invert: bool,
    },
    /// `type: json-query`: evaluate a JSONPath (RFC 9535) on the JSON body and
    /// compare the result with `expected`.
    JsonQuery {
        /// The path as written.
        path: String,
        /// The compiled path.
        query: serde_json_path::JsonPath,
        /// The expected value, compared as text or number.
        expected: String,
        /// The comparison.
        op: JsonOp,
    },
}

/// Comparison for `json-query` monitors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonOp {
    /// `==`: equal (numbers compared as numbers, else as text).
    Eq,
    /// `!=`: not equal.
    Ne,
    /// `<`: less than (numbers).
    Lt,
    /// `<=`: at most (numbers).
    Le,
    /// `>`: greater than (numbers).
    Gt,
    /// `>=`: at least (numbers).
    Ge,
    /// `contains`: the text contains the expected value.
    Contains,
}

impl JsonOp {
    /// Parse an operator.
    pub fn parse(s: &str) -> Option<JsonOp> {
        Some(match s {
            "==" => JsonOp::Eq,
            "!=" => JsonOp::Ne,
            "<" => JsonOp::Lt,
            "<=" => JsonOp::Le,
            ">" => JsonOp::Gt,
            ">=" => JsonOp::Ge,
            "contains" => JsonOp::Contains,
            _ => return None,
        })
    }

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            JsonOp::Eq => "==",
            JsonOp::Ne => "!=",
            JsonOp::Lt => "<",
            JsonOp::Le => "<=",
            JsonOp::Gt => ">",
            JsonOp::Ge => ">=",
            JsonOp::Contains => "contains",
        }
    }
}

/// An HTTP(S) check.
#[derive(Clone, Debug)]
pub struct HttpSpec {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Method (default GET).
    pub method: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Option<String>,
    /// Accepted status codes (default 200-299).
    pub accepted: Vec<StatusRange>,
    /// Redirects followed (default 10; 0 = none).
    pub max_redirects: u32,
    /// Accept any certificate (default false).
    pub ignore_tls: bool,
    /// Extra trusted CA certificates (PEM file), added to the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Body check.
    pub content: ContentCheck,
    /// Certificate-expiry warning thresholds in days (default none for HTTP).
    pub expiry_notify_days: Vec<u32>,
}

/// DNS record types the `dns` monitor can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsRecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Canonical name.
    Cname,
    /// Mail exchanger.
    Mx,
    /// Text.
    Txt,
    /// Name server.
    Ns,
}

impl DnsRecordType {
    /// Parse a record type name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "A" => Self::A,
            "AAAA" => Self::Aaaa,
            "CNAME" => Self::Cname,
            "MX" => Self::Mx,
            "TXT" => Self::Txt,
            "NS" => Self::Ns,
            _ => return None,
        })
    }
}

/// A DNS check.
#[derive(Clone, Debug)]
pub struct DnsSpec {
    /// The name to resolve.
    pub hostname: String,
    /// The resolver to ask (default 1.1.1.1:53).
    pub server: SocketAddr,
    /// Record type (default A).
    pub record_type: DnsRecordType,
    /// When set, one of the returned records must equal this (names compare
    /// case-insensitively, without the trailing dot; MX as `pref host`).
    pub expected: Option<String>,
}

/// A TLS certificate-expiry check.
#[derive(Clone, Debug)]
pub struct TlsSpec {
    /// Host to connect to (also the SNI name).
    pub hostname: String,
    /// Port (default 443).
    pub port: u16,
    /// Accept certificates that fail verification (expiry is still checked).
    pub ignore_tls: bool,
    /// Extra trusted CA certificates (PEM file).
    pub ca_file: Option<PathBuf>,
    /// Warning thresholds in days (default 7, 14, 21).
    pub expiry_notify_days: Vec<u32>,
}

/// What a monitor checks.
#[derive(Clone, Debug)]
pub enum MonitorKind {
    /// `http`, `keyword` and `json-query`.
    Http(Box<HttpSpec>),
    /// `tcp`: a TCP connection to `hostname:port` succeeds.
    Tcp {
        /// Host name or address.
        hostname: String,
        /// Port.
        port: u16,
    },
    /// `dns`.
    Dns(DnsSpec),
    /// `tls`.
    Tls(TlsSpec),
    /// `push`: DOWN when no heartbeat is pushed within the interval.
    Push {
        /// The secret in the push URL.
        token: String,
    },
    /// `ping`: ICMP echo through an unprivileged datagram socket.
    Ping {
        /// Host name or address.
        hostname: String,
        /// Echo requests per check (default 1); UP if any is answered.
        count: u32,
    },
}

impl MonitorKind {
    /// The type name, as in the config file.
    pub fn type_name(&self) -> &'static str {
        match self {
            MonitorKind::Http(h) => match h.content {
                ContentCheck::None => "http",
                ContentCheck::Keyword { .. } => "keyword",
                ContentCheck::JsonQuery { .. } => "json-query",
            },
            MonitorKind::Tcp { .. } => "tcp",
            MonitorKind::Dns(_) => "dns",
            MonitorKind::Tls(_) => "tls",
            MonitorKind::Push { .. } => "push",
            MonitorKind::Ping { .. } => "ping",
        }
    }
}

// ---------------------------------------------------------------------------
// Raw (file) shape.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    workers: Option<usize>,
    #[serde(default)]
    history: Option<RawHistory>,
    #[serde(default)]
    monitors: Vec<serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistory {
    path: Option<PathBuf>,
    retention_days: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawCode {
    Num(u32),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawScalar {
    Text(String),
    Num(f64),
    Bool(bool),
}

impl RawScalar {
    fn into_text(self) -> String {
        match self {
            RawScalar::Text(s) => s,
            RawScalar::Num(n) => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    format!("{}", n as i64)
                } else {
                    n.to_string()
                }
            }
            RawScalar::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    start: Option<String>,
    end: Option<String>,
    cron: Option<String>,
    /// Seconds.
    duration: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonitor {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    interval: Option<f64>,
    retry_interval: Option<f64>,
    max_retries: Option<u32>,
    timeout: Option<f64>,
    upside_down: Option<bool>,
    resend_interval: Option<u32>,
    #[serde(default)]
    maintenance: Vec<RawWindow>,
    // http / keyword / json-query
    url: Option<String>,
    method: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    body: Option<String>,
    accepted_status_codes: Option<Vec<RawCode>>,
    max_redirects: Option<u32>,
    ignore_tls: Option<bool>,
    ca_file: Option<PathBuf>,
    keyword: Option<String>,
    invert_keyword: Option<bool>,
    json_path: Option<String>,
    expected_value: Option<RawScalar>,
    json_path_operator: Option<String>,
    expiry_notify_days: Option<Vec<u32>>,
    // tcp / dns / tls / ping
    hostname: Option<String>,
    port: Option<u16>,
    dns_resolve_server: Option<String>,
    dns_resolve_port: Option<u16>,
    dns_resolve_type: Option<String>,
    // push
    push_token: Option<String>,
    // ping
    ping_count: Option<u32>,
}

impl RawMonitor {
    /// Names of the type-specific fields that are set.
    fn specific_fields(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        macro_rules! f {
            ($($field:ident),*) => { $( if self.$field.is_some() { v.push(stringify!($field)); } )* };
        }
        f!(url, method, headers, body, accepted_status_codes, max_redirects, ignore_tls, ca_file,
           keyword, invert_keyword, json_path, expected_value, json_path_operator,
           expiry_notify_days, hostname, port, dns_resolve_server, dns_resolve_port,
           dns_resolve_type, push_token, ping_count);
        v
    }
}

fn allowed_fields(kind: &str) -> Option<&'static [&'static str]> {
    const HTTP: &[&str] = &[
        "url", "method", "headers", "body", "accepted_status_codes", "max_redirects",
        "ignore_tls", "ca_file", "expiry_notify_days",
    ];
    const KEYWORD: &[&str] = &[
        "url", "method", "headers", "body", "accepted_status_codes", "max_redirects",
        "ignore_tls", "ca_file", "expiry_notify_days", "keyword", "invert_keyword",
    ];
    const JSON: &[&str] = &[
        "url", "method", "headers", "body", "accepted_status_codes", "max_redirects",
        "ignore_tls", "ca_file", "expiry_notify_days", "json_path", "expected_value",
        "json_path_operator",
    ];
    Some(match kind {
        "http" => HTTP,
        "keyword" => KEYWORD,
        "json-query" => JSON,
        "tcp" => &["hostname", "port"],
        "dns" => &["hostname", "dns_resolve_server", "dns_resolve_port", "dns_resolve_type", "expected_value"],
        "tls" => &["hostname", "port", "ignore_tls", "ca_file", "expiry_notify_days"],
        "push" => &["push_token"],
        "ping" => &["hostname", "ping_count"],
        _ => return None,
    })
}

fn secs(monitor: &str, field: &'static str, v: f64, min: f64) -> Result<Duration, ConfigError> {
    if !v.is_finite() || v < min || v > MAX_INTERVAL.as_secs_f64() {
        return Err(ConfigError::Field {
            monitor: monitor.to_string(),
            field,
            reason: format!("{v} seconds is out of range ({min} to {})", MAX_INTERVAL.as_secs()),
        });
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_time(monitor: &str, field: &'static str, s: &str) -> Result<i64, ConfigError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| ConfigError::Field {
            monitor: monitor.to_string(),
            field,
            reason: format!("{s:?} is not an RFC 3339 time (e.g. 2026-01-31T02:00:00Z): {e}"),
        })
}

fn windows(monitor: &str, raw: Vec<RawWindow>) -> Result<Vec<MaintenanceWindow>, ConfigError> {
    let field_err = |reason: String| ConfigError::Field {
        monitor: monitor.to_string(),
        field: "maintenance",
        reason,
    };
    raw.into_iter()
        .enumerate()
        .map(|(i, w)| match (w.start, w.end, w.cron, w.duration) {
            (Some(s), Some(e), None, None) => {
                let start = parse_time(monitor, "maintenance.start", &s)?;
                let end = parse_time(monitor, "maintenance.end", &e)?;
                if end <= start {
                    return Err(field_err(format!("window #{i}: end {e} is not after start {s}")));
                }
                Ok(MaintenanceWindow::Fixed { start, end })
            }
            (None, None, Some(c), Some(d)) => {
                let cron = Cron::parse(&c).map_err(|e| field_err(format!("window #{i}: {e}")))?;
                let duration_ms = (d * 1000.0).round();
                if !(duration_ms >= 60_000.0 && duration_ms <= MAX_DURATION_MS as f64) {
                    return Err(field_err(format!(
                        "window #{i}: duration {d} s must be between 60 s and 366 days"
                    )));
                }
                Ok(MaintenanceWindow::Recurring { cron, duration_ms: duration_ms as i64 })
            }
            _ => Err(field_err(format!(
                "window #{i}: give either `start` and `end` (RFC 3339), or `cron` and `duration` (seconds)"
            ))),
        })
        .collect()
}

fn validate_monitor(index: usize, raw: RawMonitor) -> Result<MonitorConfig, ConfigError> {
    let label = raw.name.clone().unwrap_or_else(|| format!("#{index}"));
    let err = |field: &'static str, reason: String| ConfigError::Field {
        monitor: label.clone(),
        field,
        reason,
    };
    let name = match raw.name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => n.to_string(),
        Some(_) => return Err(err("name", "must not be empty".into())),
        None => return Err(err("name", "is required".into())),
    };
    let kind_name = raw.kind.clone().ok_or_else(|| {
        err("type", "is required (http, keyword, json-query, tcp, dns, tls, push, ping)".into())
    })?;
    let allowed = allowed_fields(&kind_name).ok_or_else(|| {
        err(
            "type",
            format!("unknown type {kind_name:?}; expected http, keyword, json-query, tcp, dns, tls, push or ping"),
        )
    })?;
    for f in raw.specific_fields() {
        if !allowed.contains(&f) {
            return Err(err(f, format!("does not apply to type {kind_name}")));
        }
    }

    let interval = secs(&label, "interval", raw.interval.unwrap_or(60.0), 1.0)?;
    let retry_interval = match raw.retry_interval {
        Some(v) => secs(&label, "retry_interval", v, 1.0)?,
        None => interval,
    };
    let timeout = match raw.timeout {
        Some(v) if !v.is_finite() || v <= 0.0 => {
            return Err(err("timeout", format!("{v} must be a positive number of seconds")))
        }
        Some(v) => Duration::from_secs_f64(v.min(MAX_INTERVAL.as_secs_f64())),
        None => DEFAULT_TIMEOUT,
    };
    let timeout = timeout.min(interval.mul_f64(0.8));

    let host = |field_required: &'static str| -> Result<String, ConfigError> {
        match raw.hostname.as_deref().map(str::trim) {
            Some(h) if !h.is_empty() && !h.contains(char::is_whitespace) => Ok(h.to_string()),
            Some(h) => Err(err(field_required, format!("{h:?} is not a host name"))),
            None => Err(err(field_required, "is required".into())),
        }
    };

    let kind = match kind_name.as_str() {
        "http" | "keyword" | "json-query" => {
            let url = raw.url.clone().ok_or_else(|| err("url", "is required".into()))?;
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) || url.len() < 9 {
                return Err(err("url", format!("{url:?} is not an http:// or https:// URL")));
            }
            let method = raw.method.clone().unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(err("method", format!("{method:?} is not an HTTP method")));
            }
            let accepted = match &raw.accepted_status_codes {
                None => vec![StatusRange { lo: 200, hi: 299 }],
                Some(list) if list.is_empty() => {
                    return Err(err("accepted_status_codes", "must not be empty".into()))
                }
                Some(list) => list
                    .iter()
                    .map(|c| match c {
                        RawCode::Num(n) => StatusRange::parse(&n.to_string()),
                        RawCode::Text(t) => StatusRange::parse(t),
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| err("accepted_status_codes", e))?,
            };
            let headers: Vec<(String, String)> =
                raw.headers.clone().unwrap_or_default().into_iter().collect();
            for (k, v) in &headers {
                if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                    return Err(err("headers", format!("{k:?} is not a header name")));
                }
                if v.contains(['\r', '\n']) {
                    return Err(err("headers", format!("value of {k:?} contains a line break")));
                }
            }
            let content = match kind_name.as_str() {
                "keyword" => {
                    let keyword = raw.keyword.clone().unwrap_or_default();
                    if keyword.is_empty() {
                        return Err(err("keyword", "is required and must not be empty".into()));
                    }
                    ContentCheck::Keyword { keyword, invert: raw.invert_keyword.unwrap_or(false) }
                }
                "json-query" => {
                    let path = raw.json_path.clone().ok_or_else(|| err("json_path", "is required".into()))?;
                    let query = serde_json_path::JsonPath::parse(&path)
                        .map_err(|e| err("json_path", format!("{path:?} is not a JSONPath: {e}")))?;
                    let expected = raw
                        .expected_value
                        .ok_or_else(|| err("expected_value", "is required".into()))?
                        .into_text();
                    let op_text = raw.json_path_operator.clone().unwrap_or_else(|| "==".into());
                    let op = JsonOp::parse(&op_text).ok_or_else(|| {
                        err("json_path_operator", format!("{op_text:?} is not one of ==, !=, <, <=, >, >=, contains"))
                    })?;
                    ContentCheck::JsonQuery { path, query, expected, op }
                }
                _ => ContentCheck::None,
            };
            MonitorKind::Http(Box::new(HttpSpec {
                url,
                method,
                headers,
                body: raw.body.clone(),
                accepted,
                max_redirects: raw.max_redirects.unwrap_or(10),
                ignore_tls: raw.ignore_tls.unwrap_or(false),
                ca_file: raw.ca_file.clone(),
                content,
                expiry_notify_days: raw.expiry_notify_days.clone().unwrap_or_default(),
            }))
        }
        "tcp" => MonitorKind::Tcp {
            hostname: host("hostname")?,
            port: match raw.port {
                Some(0) => return Err(err("port", "must be 1-65535".into())),
                Some(p) => p,
                None => return Err(err("port", "is required".into())),
            },
        },
        "dns" => {
            let server_ip = raw.dns_resolve_server.clone().unwrap_or_else(|| "1.1.1.1".into());
            let ip: IpAddr = server_ip
                .trim()
                .parse()
                .map_err(|_| err("dns_resolve_server", format!("{server_ip:?} is not an IP address")))?;
            let port = raw.dns_resolve_port.unwrap_or(53);
            if port == 0 {
                return Err(err("dns_resolve_port", "must be 1-65535".into()));
            }
            let type_text = raw.dns_resolve_type.clone().unwrap_or_else(|| "A".into());
            let record_type = DnsRecordType::parse(&type_text).ok_or_else(|| {
                err("dns_resolve_type", format!("{type_text:?} is not one of A, AAAA, CNAME, MX, TXT, NS"))
            })?;
            MonitorKind::Dns(DnsSpec {
                hostname: host("hostname")?,
                server: SocketAddr::new(ip, port),
                record_type,
                expected: raw.expected_value.map(RawScalar::into_text),
            })
        }
        "tls" => MonitorKind::Tls(TlsSpec {
            hostname: host("hostname")?,
            port: match raw.port {
                Some(0) => return Err(err("port", "must be 1-65535".into())),
                Some(p) => p,
                None => 443,
            },
            ignore_tls: raw.ignore_tls.unwrap_or(false),
            ca_file: raw.ca_file.clone(),
            expiry_notify_days: raw.expiry_notify_days.clone().unwrap_or_else(|| DEFAULT_EXPIRY_DAYS.to_vec()),
        }),
        "push" => {
            let token = raw.push_token.clone().unwrap_or_default();
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(err("push_token", "is required: letters, digits, '-' and '_' only".into()));
            }
            MonitorKind::Push { token }
        }
        "ping" => {
            let count = raw.ping_count.unwrap_or(1);
            if !(1..=100).contains(&count) {
                return Err(err("ping_count", format!("{count} must be between 1 and 100")));
            }
            MonitorKind::Ping { hostname: host("hostname")?, count }
        }
        _ => unreachable!("allowed_fields accepted only known types"),
    };

    Ok(MonitorConfig {
        name,
        kind,
        interval,
        retry_interval,
        max_retries: raw.max_retries.unwrap_or(0),
        timeout,
        upside_down: raw.upside_down.unwrap_or(false),
        resend_interval: raw.resend_interval.unwrap_or(0),
        maintenance: windows(&label, raw.maintenance)?,
    })
}

impl Config {
    /// Parse and validate a YAML document.
    pub fn from_yaml_str(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_yaml::from_str(text).map_err(ConfigError::Yaml)?;
        let workers = raw.workers.unwrap_or(DEFAULT_WORKERS);
        if !(1..=1024).contains(&workers) {
            return Err(ConfigError::Setting { field: "workers", reason: format!("{workers} must be 1-1024") });
        }
        let mut history = HistoryConfig::default();
        if let Some(h) = raw.history {
            history.path = h.path;
            if let Some(d) = h.retention_days {
                if !d.is_finite() || !(1.0..=3650.0).contains(&d) {
                    return Err(ConfigError::Setting {
                        field: "history.retention_days",
                        reason: format!("{d} must be between 1 and 3650"),
                    });
                }
                history.retention = Duration::from_secs_f64(d * 86400.0);
            }
        }
        let mut monitors = Vec::with_capacity(raw.monitors.len());
        let mut names = HashSet::new();
        let mut tokens = HashSet::new();
        for (index, value) in raw.monitors.into_iter().enumerate() {
            let name = value.get("name").and_then(|n| n.as_str()).map(str::to_string);
            let rm: RawMonitor = serde_yaml::from_value(value)
                .map_err(|source| ConfigError::MonitorShape { index, name, source })?;
            let m = validate_monitor(index, rm)?;
            if !names.insert(m.name.clone()) {
                return Err(ConfigError::DuplicateName(m.name));
            }
            if let MonitorKind::Push { token } = &m.kind {
                if !tokens.insert(token.clone()) {
                    return Err(ConfigError::DuplicatePushToken(m.name));
                }
            }
            monitors.push(m);
        }
        Ok(Config { monitors, workers, history })
    }

    /// Read, parse and validate a YAML file. A relative `history.path` is
    /// taken relative to the config file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let mut cfg = Self::from_yaml_str(&text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(p) = &cfg.history.path {
            if p.is_relative() {
                cfg.history.path = Some(base.join(p));
            }
        }
        for m in &mut cfg.monitors {
            let ca = match &mut m.kind {
                MonitorKind::Http(h) => h.ca_file.as_mut(),
                MonitorKind::Tls(t) => t.ca_file.as_mut(),
                _ => None,
            };
            if let Some(ca) = ca {
                if ca.is_relative() {
                    *ca = base.join(&*ca);
                }
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(yaml_monitor: &str) -> Result<MonitorConfig, ConfigError> {
        let doc = format!("monitors:\n{}", yaml_monitor);
        Config::from_yaml_str(&doc).map(|mut c| c.monitors.remove(0))
    }

    #[test]
    fn http_defaults_follow_kuma() {
        let m = one("  - name: web\n    type: http\n    url: http://127.0.0.1/\n").unwrap();
        assert_eq!(m.interval, Duration::from_secs(60));
        assert_eq!(m.retry_interval, Duration::from_secs(60));
        assert_eq!(m.timeout, Duration::from_secs(48));
        assert_eq!(m.max_retries, 0);
        assert!(!m.upside_down);
        let MonitorKind::Http(h) = &m.kind else { panic!() };
        assert_eq!(h.method, "GET");
        assert_eq!(h.accepted, vec![StatusRange { lo: 200, hi: 299 }]);
        assert_eq!(h.max_redirects, 10);
        assert_eq!(m.kind.type_name(), "http");
    }

    #[test]
    fn timeout_is_capped_at_80_percent_of_interval() {
        let m = one("  - {name: a, type: tcp, hostname: x, port: 1, interval: 20}\n").unwrap();
        assert_eq!(m.timeout, Duration::from_secs(16));
        let m = one("  - {name: a, type: tcp, hostname: x, port: 1, interval: 20, timeout: 5}\n").unwrap();
        assert_eq!(m.timeout, Duration::from_secs(5));
        let m = one("  - {name: a, type: tcp, hostname: x, port: 1, interval: 30, retry_interval: 10}\n").unwrap();
        assert_eq!(m.retry_interval, Duration::from_secs(10));
    }

    #[test]
    fn errors_name_monitor_and_field() {
        let e = one("  - {name: api, type: http}\n").unwrap_err().to_string();
        assert!(e.contains("\"api\"") && e.contains("`url`"), "{e}");
        let e = one("  - {name: api, type: tcp, hostname: h, port: 1, keyword: x}\n").unwrap_err().to_string();
        assert!(e.contains("`keyword`") && e.contains("does not apply"), "{e}");
        let e = one("  - {name: api, type: smtp}\n").unwrap_err().to_string();
        assert!(e.contains("unknown type"), "{e}");
        let e = one("  - {name: api, type: http, url: 'http://x/', accepted_status_codes: ['299-200']}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("accepted_status_codes"), "{e}");
        let e = one("  - {name: api, type: http, url: 'http://x/', bogus: 1}\n").unwrap_err().to_string();
        assert!(e.contains("monitor #0") && e.contains("api") && e.contains("bogus"), "{e}");
        let e = one("  - {name: j, type: json-query, url: 'http://x/', json_path: '$..[', expected_value: 1}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("json_path"), "{e}");
        let e = one("  - {name: d, type: dns, hostname: x, dns_resolve_type: SRV}\n").unwrap_err().to_string();
        assert!(e.contains("dns_resolve_type"), "{e}");
        let e = one("  - {name: p, type: tcp, hostname: x, port: 1, interval: 0.5}\n").unwrap_err().to_string();
        assert!(e.contains("interval"), "{e}");
        let e = Config::from_yaml_str("monitors:\n  - {name: a, type: push, push_token: t}\n  - {name: a, type: push, push_token: u}\n")
            .unwrap_err();
        assert!(matches!(e, ConfigError::DuplicateName(_)));
        let e = Config::from_yaml_str("monitors: [").unwrap_err();
        assert!(matches!(e, ConfigError::Yaml(_)));
    }

    #[test]
    fn all_kinds_parse() {
        let doc = r#"
workers: 4
history: {path: h.jsonl, retention_days: 30}
monitors:
  - {name: k, type: keyword, url: "http://a/", keyword: hello, invert_keyword: true}
  - {name: j, type: json-query, url: "http://a/", json_path: "$.a.b[0]", expected_value: 3, json_path_operator: ">="}
  - {name: d, type: dns, hostname: example.org, dns_resolve_server: "127.0.0.1", dns_resolve_port: 5353, dns_resolve_type: mx, expected_value: "10 mail.example.org"}
  - {name: t, type: tls, hostname: localhost}
  - {name: p, type: push, push_token: abc_1}
  - {name: i, type: ping, hostname: 127.0.0.1, ping_count: 2}
  - name: m
    type: tcp
    hostname: h
    port: 80
    upside_down: true
    resend_interval: 3
    maintenance:
      - {start: "2026-01-01T00:00:00Z", end: "2026-01-01T01:00:00Z"}
      - {cron: "0 3 * * SUN", duration: 3600}
"#;
        let c = Config::from_yaml_str(doc).unwrap();
        assert_eq!(c.workers, 4);
        assert_eq!(c.history.retention, Duration::from_secs(30 * 86400));
        let types: Vec<_> = c.monitors.iter().map(|m| m.kind.type_name()).collect();
        assert_eq!(types, ["keyword", "json-query", "dns", "tls", "push", "ping", "tcp"]);
        let MonitorKind::Dns(d) = &c.monitors[2].kind else { panic!("dns") };
        assert_eq!(d.server, "127.0.0.1:5353".parse().unwrap());
        assert_eq!(d.record_type, DnsRecordType::Mx);
        assert_eq!(d.expected.as_deref(), Some("10 mail.example.org"));
        let MonitorKind::Tls(t) = &c.monitors[3].kind else { panic!("tls") };
        assert_eq!((t.port, t.expiry_notify_days.clone()), (443, vec![7, 14, 21]));
        let MonitorKind::Http(h) = &c.monitors[1].kind else { panic!("json") };
        let ContentCheck::JsonQuery { expected, op, .. } = &h.content else { panic!("json") };
        assert_eq!((expected.as_str(), *op), ("3", JsonOp::Ge));
        assert_eq!(c.monitors[6].maintenance.len(), 2);
        assert!(c.monitors[6].upside_down);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn arbitrary_documents_never_panic(s in "\\PC{0,200}") {
                let _ = Config::from_yaml_str(&s);
            }

            #[test]
            fn arbitrary_monitor_fields_never_panic(
                kind in prop_oneof![Just("http"), Just("keyword"), Just("json-query"), Just("tcp"), Just("dns"), Just("tls"), Just("push"), Just("ping"), Just("x")],
                field in prop_oneof![Just("url"), Just("port"), Just("interval"), Just("timeout"), Just("hostname"), Just("json_path"), Just("accepted_status_codes"), Just("dns_resolve_server"), Just("maintenance"), Just("push_token")],
                value in "[ -~]{0,30}",
            ) {
                let doc = format!("monitors:\n  - name: m\n    type: {kind}\n    {field}: {value:?}\n");
                if let Err(e) = Config::from_yaml_str(&doc) {
                    // Every error names where it is.
                    let text = e.to_string();
                    prop_assert!(text.contains("monitor") || text.contains("YAML"), "{}", text);
                }
            }

            #[test]
            fn status_ranges_round_trip(lo in 100u16..1000, len in 0u16..100) {
                let hi = (lo + len).min(999);
                let r = StatusRange::parse(&format!("{lo}-{hi}")).unwrap();
                prop_assert_eq!(r, StatusRange { lo, hi });
                prop_assert!(r.contains(lo) && r.contains(hi) && !r.contains(hi + 1));
            }
        }
    }
}
