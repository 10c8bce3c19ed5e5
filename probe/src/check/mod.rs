//! Checks: the only network I/O of the crate.
//!
//! Every check is blocking, bounded by the monitor's timeout, and never
//! panics on what a server sends: any failure becomes a DOWN
//! [`CheckOutcome`] with a message.

mod dns;
mod http;
mod ping;
mod tcp;
pub mod tls;

use crate::config::{MonitorConfig, MonitorKind};
use crate::error::SetupError;
use crate::state::Observation;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

pub use tls::{CertInfo, TlsCache};

/// The result of one check run.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOutcome {
    /// Whether the check passed.
    pub ok: bool,
    /// Message for people.
    pub msg: String,
    /// Response time in ms, when measured.
    pub ping_ms: Option<u64>,
    /// HTTP status code, for HTTP checks that got a response.
    pub http_status: Option<u16>,
    /// The peer's certificates, when a TLS handshake happened during the check.
    pub cert: Option<CertInfo>,
}

impl CheckOutcome {
    /// A passing outcome.
    pub fn up(msg: impl Into<String>, ping_ms: Option<u64>) -> Self {
        CheckOutcome { ok: true, msg: msg.into(), ping_ms, http_status: None, cert: None }
    }

    /// A failing outcome.
    pub fn down(msg: impl Into<String>) -> Self {
        CheckOutcome { ok: false, msg: msg.into(), ping_ms: None, http_status: None, cert: None }
    }

    /// The part the state machine needs.
    pub fn observation(&self) -> Observation {
        Observation { ok: self.ok, msg: self.msg.clone(), ping_ms: self.ping_ms }
    }
}

/// A prepared check for one monitor. Cheap to share between threads.
#[derive(Debug)]
pub enum Check {
    /// `http`, `keyword`, `json-query`.
    Http(http::HttpCheck),
    /// `tcp`.
    Tcp(tcp::TcpCheck),
    /// `dns`.
    Dns(dns::DnsCheck),
    /// `tls`.
    Tls(tls::TlsCheck),
    /// `ping`.
    Ping(ping::PingCheck),
    /// `push`: nothing to run; the scheduler judges pushed heartbeats.
    Push,
}

impl Check {
    /// Prepare the check of `monitor`, reusing TLS configurations and HTTP
    /// agents from `cache`.
    pub fn build(monitor: &MonitorConfig, cache: &mut TlsCache) -> Result<Check, SetupError> {
        Ok(match &monitor.kind {
            MonitorKind::Http(spec) => {
                let agent = cache.agent(&monitor.name, spec.ignore_tls, spec.ca_file.as_deref(), spec.max_redirects)?;
                Check::Http(http::HttpCheck { spec: (**spec).clone(), agent })
            }
            MonitorKind::Tcp { hostname, port } => Check::Tcp(tcp::TcpCheck { hostname: hostname.clone(), port: *port }),
            MonitorKind::Dns(spec) => Check::Dns(dns::DnsCheck { spec: spec.clone() }),
            MonitorKind::Tls(spec) => Check::Tls(tls::TlsCheck {
                hostname: spec.hostname.clone(),
                port: spec.port,
                config: cache.client_config(&monitor.name, spec.ignore_tls, spec.ca_file.as_deref())?,
            }),
            MonitorKind::Ping { hostname, count } => {
                Check::Ping(ping::PingCheck { hostname: hostname.clone(), count: *count })
            }
            MonitorKind::Push { .. } => Check::Push,
        })
    }

    /// Run the check once at `now_ms` (Unix ms, used for certificate
    /// expiry), giving up after `timeout`.
    pub fn run(&self, now_ms: i64, timeout: Duration) -> CheckOutcome {
        match self {
            Check::Http(c) => c.run(timeout),
            Check::Tcp(c) => c.run(timeout),
            Check::Dns(c) => c.run(timeout),
            Check::Tls(c) => c.run(now_ms, timeout),
            Check::Ping(c) => c.run(timeout),
            Check::Push => CheckOutcome::down("push monitors are not run; heartbeats are pushed to them"),
        }
    }
}

/// Resolve `host:port` to socket addresses.
pub(crate) fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    // Literal IPv6 addresses may come bracketed.
    let h = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (h, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("cannot resolve {host}: no addresses"));
    }
    Ok(addrs)
}

/// Connect to the first reachable address of `host:port` before `deadline`.
pub(crate) fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let addrs = resolve(host, port)?;
    let mut last = String::new();
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timeout connecting to {host}:{port}"));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => last = format!("timeout connecting to {addr}"),
            Err(e) => last = format!("connecting to {addr}: {e}"),
        }
    }
    Err(last)
}
