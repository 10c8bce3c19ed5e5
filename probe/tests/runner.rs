//! The runner end to end: scheduling, retries, pushes, maintenance,
//! history across restarts, metrics. Intervals are 1 s, and every run is
//! bounded by a deadline; tests stop the runner as soon as they have seen
//! what they need.

use crate::servers::{http_server, https_server, make_pki};
use probe::{Config, Event, HistoryLog, NotifyReason, Push, Runner, RunnerOptions, Status, Window};
use std::net::TcpListener;
use std::time::{Duration, Instant};

fn beats_until(runner: &mut Runner, max: Duration, mut done: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
    let handle = runner.handle();
    let mut events = Vec::new();
    runner.run(Some(Instant::now() + max), |e| {
        events.push(e.clone());
        if done(&events) {
            handle.stop();
        }
    });
    events
}

fn statuses(events: &[Event], name: &str) -> Vec<Status> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Beat { monitor, beat, .. } if monitor == name => Some(beat.status),
            _ => None,
        })
        .collect()
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn retries_then_down_then_up_with_notifications() {
    let port = closed_port();
    let s = http_server();
    let cfg = Config::from_yaml_str(&format!(
        "workers: 2\nmonitors:\n  - {{name: tcp, type: tcp, hostname: 127.0.0.1, port: {port}, interval: 1, max_retries: 1}}\n  - {{name: web, type: http, url: '{}', interval: 1}}\n",
        s.url("/ok")
    ))
    .unwrap();
    let mut r = Runner::new(&cfg, RunnerOptions::default()).unwrap();
    let ev = beats_until(&mut r, Duration::from_secs(10), |ev| statuses(ev, "tcp").len() >= 3 && !statuses(ev, "web").is_empty());
    assert_eq!(&statuses(&ev, "tcp")[..3], &[Status::Pending, Status::Down, Status::Down]);
    let notes: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Beat { monitor, beat, .. } if monitor == "tcp" => Some(beat.notify),
            _ => None,
        })
        .collect();
    // First beat (PENDING) is notified as a first beat, PENDING -> DOWN too, DOWN -> DOWN not.
    assert_eq!(&notes[..3], &[Some(NotifyReason::Change), Some(NotifyReason::Change), None]);
    assert_eq!(statuses(&ev, "web")[0], Status::Up);
    assert_eq!(r.status("web"), Some(Status::Up));
    r.shutdown().unwrap();
}

#[test]
fn push_monitor_up_on_push_down_without() {
    let cfg = Config::from_yaml_str("monitors:\n  - {name: job, type: push, push_token: tok-1, interval: 1}\n").unwrap();
    let mut r = Runner::new(&cfg, RunnerOptions::default()).unwrap();
    let h = r.handle();
    let pusher = std::thread::spawn(move || {
        assert!(!h.push("wrong", Push::default()));
        assert!(h.push("tok-1", Push { ok: true, msg: "backup done".into(), ping_ms: Some(12) }));
    });
    let ev = beats_until(&mut r, Duration::from_secs(10), |ev| statuses(ev, "job").len() >= 2);
    pusher.join().unwrap();
    assert_eq!(&statuses(&ev, "job")[..2], &[Status::Up, Status::Down]);
    let Event::Beat { beat, .. } = ev.iter().filter(|e| matches!(e, Event::Beat { .. })).nth(1).unwrap() else {
        unreachable!()
    };
    assert!(beat.msg.contains("No heartbeat"), "{}", beat.msg);
    r.shutdown().unwrap();
}

#[test]
fn maintenance_window_suppresses_checks_and_notifications() {
    let port = closed_port();
    let now = chrono::Utc::now();
    let start = (now - chrono::Duration::hours(1)).to_rfc3339();
    let end = (now + chrono::Duration::hours(1)).to_rfc3339();
    let cfg = Config::from_yaml_str(&format!(
        "monitors:\n  - name: m\n    type: tcp\n    hostname: 127.0.0.1\n    port: {port}\n    interval: 1\n    maintenance:\n      - {{start: '{start}', end: '{end}'}}\n"
    ))
    .unwrap();
    let mut r = Runner::new(&cfg, RunnerOptions::default()).unwrap();
    let ev = beats_until(&mut r, Duration::from_secs(10), |ev| statuses(ev, "m").len() >= 2);
    assert_eq!(&statuses(&ev, "m")[..2], &[Status::Maintenance, Status::Maintenance]);
    let notified = ev.iter().filter(|e| matches!(e, Event::Beat { beat, .. } if beat.notify.is_some())).count();
    assert_eq!(notified, 1, "only the first beat is notified");
    r.shutdown().unwrap();
}

#[test]
fn history_survives_restart_and_feeds_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("beats.jsonl");
    let port = closed_port();
    let s = http_server();
    let yaml = format!(
        "history: {{path: '{}'}}\nmonitors:\n  - {{name: web, type: http, url: '{}', interval: 1}}\n  - {{name: dead, type: tcp, hostname: 127.0.0.1, port: {port}, interval: 1}}\n",
        path.display(),
        s.url("/ok")
    );
    let cfg = Config::from_yaml_str(&yaml).unwrap();
    let mut r = Runner::new(&cfg, RunnerOptions::default()).unwrap();
    beats_until(&mut r, Duration::from_secs(10), |ev| statuses(ev, "web").len() >= 2 && statuses(ev, "dead").len() >= 2);
    r.shutdown().unwrap();
    let stored = HistoryLog::read_beats(&path, Some("web")).unwrap();
    assert!(stored.len() >= 2);
    assert!(stored[0].important && !stored[1].important);

    // Restart: uptime comes back from the file, and a DOWN monitor that
    // stays DOWN is not a first beat again.
    let mut r = Runner::new(&cfg, RunnerOptions::default()).unwrap();
    let snap = r.snapshot(probe::now_ms());
    let web = snap.iter().find(|m| m.name == "web").unwrap();
    assert_eq!(web.uptime[0], (Window::Day, Some(1.0)));
    assert_eq!(web.status, Some(Status::Up));
    let dead = snap.iter().find(|m| m.name == "dead").unwrap();
    assert_eq!(dead.uptime[0], (Window::Day, Some(0.0)));
    let ev = beats_until(&mut r, Duration::from_secs(10), |ev| !statuses(ev, "dead").is_empty() && !statuses(ev, "web").is_empty());
    let first_dead = ev.iter().find_map(|e| match e {
        Event::Beat { monitor, beat, .. } if monitor == "dead" => Some(beat.clone()),
        _ => None,
    });
    let first_dead = first_dead.unwrap();
    assert_eq!(first_dead.status, Status::Down);
    assert!(!first_dead.important && first_dead.notify.is_none());

    let text = r.handle();
    let metrics = std::thread::spawn(move || text.metrics_text());
    beats_until(&mut r, Duration::from_secs(5), |_| false);
    let metrics = metrics.join().unwrap().expect("runner answered");
    assert!(metrics.contains("probe_success{monitor=\"web\",type=\"http\"} 1"), "{metrics}");
    assert!(metrics.contains("probe_success{monitor=\"dead\",type=\"tcp\"} 0"), "{metrics}");
    assert!(metrics.contains("probe_http_status_code{monitor=\"web\",type=\"http\"} 200"), "{metrics}");
    assert!(metrics.contains("probe_uptime_ratio{monitor=\"dead\",type=\"tcp\",window=\"24h\"} 0"), "{metrics}");
    r.shutdown().unwrap();
}

#[test]
fn certificate_expiry_warning_once_per_threshold() {
    let pki = make_pki(-30, 10);
    let addr = https_server(&pki);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let cfg = Config::from_yaml_str(&format!(
        "monitors:\n  - {{name: cert, type: tls, hostname: localhost, port: {}, ca_file: '{}', interval: 1}}\n",
        addr.port(),
        ca.display()
    ))
    .unwrap();
    let mut r = Runner::new(&cfg, RunnerOptions::default()).unwrap();
    let ev = beats_until(&mut r, Duration::from_secs(10), |ev| statuses(ev, "cert").len() >= 3);
    let warnings: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::CertExpiry { threshold, days_left, .. } => Some((*threshold, *days_left)),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].0, 14);
    assert!((8..=10).contains(&warnings[0].1));
    assert_eq!(statuses(&ev, "cert")[0], Status::Up);
    let snap = r.snapshot(probe::now_ms());
    assert!(snap[0].cert_expiry.is_some());
    r.shutdown().unwrap();
}
