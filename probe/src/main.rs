//! `probe`: run the monitors of a config file and print their state changes.

use anyhow::{bail, Context, Result};
use clap::Parser;
use probe::{Config, Event, NotifyReason, Push, Runner, RunnerHandle, RunnerOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Uptime-Kuma-style monitors: HTTP, keyword, JSON query, TCP, DNS, TLS expiry, push, ping.
#[derive(Parser, Debug)]
#[command(name = "probe", version)]
struct Args {
    /// YAML file of monitors.
    #[arg(long, short = 'c')]
    config: PathBuf,
    /// Serve `/metrics` (Prometheus text format) and Uptime Kuma's push URL
    /// `/api/push/<token>?status=up|down&msg=..&ping=..` on this address.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long)]
    duration: Option<f64>,
    /// Print every beat, not only state changes and notifications.
    #[arg(long, short = 'v')]
    verbose: bool,
    /// Override the config's number of worker threads.
    #[arg(long)]
    workers: Option<usize>,
    /// Only validate the config and print the monitors.
    #[arg(long)]
    check_config: bool,
    /// Mattermost incoming-webhook URL: notifications (state changes, resends,
    /// certificate expiry) are posted there.
    #[arg(long)]
    webhook: Option<String>,
}

/// What a notification says the monitor checks.
fn target_of(m: &probe::MonitorConfig) -> Option<String> {
    use probe::MonitorKind;
    Some(match &m.kind {
        MonitorKind::Http(h) => h.url.clone(),
        MonitorKind::Tcp { hostname, port } => format!("{hostname}:{port}"),
        MonitorKind::Dns(d) => format!("{} ({:?} via {})", d.hostname, d.record_type, d.server),
        MonitorKind::Tls(t) => format!("{}:{}", t.hostname, t.port),
        MonitorKind::Ping { hostname, .. } => hostname.clone(),
        MonitorKind::Push { .. } => return None,
    })
}

fn status_of(s: probe::Status) -> notify::MonitorStatus {
    match s {
        probe::Status::Up => notify::MonitorStatus::Up,
        probe::Status::Down => notify::MonitorStatus::Down,
        probe::Status::Pending => notify::MonitorStatus::Pending,
        probe::Status::Maintenance => notify::MonitorStatus::Maintenance,
    }
}

/// Sends notifications for events that call for one.
struct Notifications {
    notifier: notify::Notifier,
    targets: std::collections::HashMap<String, String>,
    style: notify::MessageStyle,
}

impl Notifications {
    fn new(url: &str, config: &Config) -> Result<Self> {
        let url: notify::WebhookUrl = url.parse().context("--webhook")?;
        let notifier = notify::Notifier::builder().build(url).context("starting the notifier")?;
        let targets = config.monitors.iter().filter_map(|m| Some((m.name.clone(), target_of(m)?))).collect();
        let style = notify::MessageStyle { username: Some("probe".into()), ..notify::MessageStyle::default() };
        Ok(Notifications { notifier, targets, style })
    }

    fn on_event(&self, e: &Event) {
        let payload = match e {
            Event::Beat { monitor, beat, .. } if beat.notify.is_some() => {
                let event = notify::ProbeEvent {
                    monitor: monitor.clone(),
                    target: self.targets.get(monitor).cloned(),
                    status: status_of(beat.status),
                    previous: beat.previous.map(status_of),
                    message: beat.msg.clone(),
                    time: std::time::UNIX_EPOCH + Duration::from_millis(beat.time.max(0) as u64),
                    response_time: beat.ping_ms.map(Duration::from_millis),
                };
                notify::probe_message(&event, &self.style)
            }
            Event::CertExpiry { monitor, days_left, subject, .. } => notify::Payload::text(format!(
                "Certificate of {monitor} ({subject}) expires in {days_left} days."
            )),
            _ => return,
        };
        if let Err(e) = self.notifier.send(payload) {
            eprintln!("probe: notification not queued: {e}");
        }
    }

    fn finish(self) {
        let _ = self.notifier.flush(Duration::from_secs(5));
        let stats = self.notifier.shutdown();
        if stats.failed + stats.abandoned > 0 {
            eprintln!("probe: {} notifications failed, {} abandoned", stats.failed, stats.abandoned);
        }
    }
}

fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn print_event(e: &Event, verbose: bool) {
    match e {
        Event::Beat { monitor, kind, beat } => {
            if !(verbose || beat.important || beat.notify.is_some()) {
                return;
            }
            let was = beat.previous.map(|p| format!(" (was {p})")).unwrap_or_default();
            let note = match beat.notify {
                Some(NotifyReason::Change) => " [notify]",
                Some(NotifyReason::Resend) => " [notify again: still down]",
                None => "",
            };
            let ping = beat.ping_ms.map(|p| format!(" {p} ms")).unwrap_or_default();
            println!("{} {monitor} [{kind}] {}{was}{note}: {}{ping}", time_text(beat.time), beat.status, beat.msg);
        }
        Event::CertExpiry { monitor, days_left, threshold, subject } => {
            println!(
                "{} {monitor} certificate expires in {days_left} days (warning at {threshold} days) [notify]: {subject}",
                time_text(probe::now_ms())
            );
        }
        Event::HistoryError(msg) => eprintln!("probe: history: {msg}"),
        other => println!("{other:?}"),
    }
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve(addr: SocketAddr, handle: RunnerHandle) -> Result<()> {
    let server = tiny_http::Server::http(addr).map_err(|e| anyhow::anyhow!("listening on {addr}: {e}"))?;
    eprintln!("probe: serving /metrics and /api/push/<token> on http://{addr}");
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let url = req.url().to_string();
            let (path, query) = url.split_once('?').unwrap_or((&url, ""));
            let resp = if path == "/metrics" {
                match handle.metrics_text() {
                    Some(text) => {
                        let ct = tiny_http::Header::from_bytes("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                            .expect("static header is valid");
                        tiny_http::Response::from_string(text).with_header(ct)
                    }
                    None => tiny_http::Response::from_string("stopped").with_status_code(503),
                }
            } else if let Some(token) = path.strip_prefix("/api/push/") {
                let push = Push {
                    ok: query_param(query, "status").as_deref() != Some("down"),
                    msg: query_param(query, "msg").filter(|m| !m.is_empty()).unwrap_or_else(|| "OK".into()),
                    ping_ms: query_param(query, "ping").and_then(|p| p.parse::<f64>().ok()).map(|p| p.max(0.0) as u64),
                };
                if handle.push(token, push) {
                    tiny_http::Response::from_string(r#"{"ok":true}"#)
                } else {
                    tiny_http::Response::from_string(r#"{"ok":false,"msg":"Monitor not found or not active."}"#)
                        .with_status_code(404)
                }
            } else {
                tiny_http::Response::from_string("not found").with_status_code(404)
            };
            let _ = req.respond(resp);
        }
    });
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = Config::load(&args.config)?;
    if args.check_config {
        for m in &config.monitors {
            println!("{} [{}] every {} s, timeout {:.1} s", m.name, m.kind.type_name(), m.interval.as_secs_f64(), m.timeout.as_secs_f64());
        }
        return Ok(());
    }
    if config.monitors.is_empty() {
        bail!("{}: no monitors configured", args.config.display());
    }
    let opts = RunnerOptions { workers: args.workers, ..RunnerOptions::default() };
    let mut runner = Runner::new(&config, opts).context("starting monitors")?;
    if let Some(addr) = args.listen {
        serve(addr, runner.handle())?;
    }
    let until = match args.duration {
        Some(d) if d.is_finite() && d >= 0.0 => Some(Instant::now() + Duration::from_secs_f64(d)),
        Some(d) => bail!("--duration {d}: must be a non-negative number of seconds"),
        None => None,
    };
    let notifications = args.webhook.as_deref().map(|u| Notifications::new(u, &config)).transpose()?;
    let verbose = args.verbose;
    runner.run(until, |e| {
        print_event(e, verbose);
        if let Some(n) = &notifications {
            n.on_event(e);
        }
    });
    runner.shutdown().context("stopping")?;
    if let Some(n) = notifications {
        n.finish();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        assert_eq!(query_param("status=down&msg=disk%20full+now", "msg").as_deref(), Some("disk full now"));
        assert_eq!(query_param("status=down", "status").as_deref(), Some("down"));
        assert_eq!(query_param("a=%zz%2", "a").as_deref(), Some("%zz%2"));
        assert_eq!(query_param("", "a"), None);
    }
}
