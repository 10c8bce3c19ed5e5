//! Golden files for the message formats: `tests/golden/*.json`. A mismatch fails with both
//! versions printed; `UPDATE_GOLDEN=1 cargo test -p notify` rewrites the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use notify::{
    alert_message, alerts_message, probe_message, Alert, AlertStatus, MessageStyle, MonitorStatus,
    Payload, Priority, ProbeEvent,
};

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `actual` with the golden file `name` (or rewrites it under UPDATE_GOLDEN=1).
pub fn check_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the output.\n--- golden\n{expected}\n--- actual\n{actual}\n(rerun with UPDATE_GOLDEN=1 to accept the new output)",
        path.display()
    );
}

/// Checks a payload against its golden file, that the file reads back into the same payload,
/// and that Mattermost's checks accept it.
fn check_payload_golden(name: &str, payload: &Payload) {
    let json = serde_json::to_string_pretty(payload).unwrap() + "\n";
    check_golden(name, &json);
    let back: Payload = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, payload, "{name} does not read back");
    crate::receiver::check_payload(&json)
        .unwrap_or_else(|e| panic!("{name} would be refused: {e:?}"));
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn uptime_style() -> MessageStyle {
    MessageStyle {
        username: Some("Uptime".into()),
        icon_url: Some("https://status.example.com/icon.png".into()),
        channel: Some("ops-alerts".into()),
        footer: Some("uptime on mon-1".into()),
        footer_icon: None,
        problem_priority: Some(Priority::urgent().requested_ack(true)),
        problem_mention: Some("@channel".into()),
    }
}

fn event(status: MonitorStatus, previous: MonitorStatus) -> ProbeEvent {
    ProbeEvent {
        monitor: "Shop API".into(),
        target: Some("https://shop.example.com/api/health".into()),
        status,
        previous: Some(previous),
        message: String::new(),
        time: at(1_717_243_200),
        response_time: None,
    }
}

#[test]
fn probe_down() {
    let e = ProbeEvent {
        message: "connect ECONNREFUSED 10.0.0.7:443".into(),
        ..event(MonitorStatus::Down, MonitorStatus::Up)
    };
    check_payload_golden("probe_down.json", &probe_message(&e, &uptime_style()));
}

#[test]
fn probe_up() {
    let e = ProbeEvent {
        message: "200 - OK".into(),
        response_time: Some(Duration::from_millis(123)),
        ..event(MonitorStatus::Up, MonitorStatus::Down)
    };
    check_payload_golden("probe_up.json", &probe_message(&e, &uptime_style()));
}

#[test]
fn probe_pending() {
    let e = ProbeEvent {
        monitor: "Postgres".into(),
        target: Some("db.internal:5432".into()),
        message: "timeout after 48000 ms (retry 1 of 3)".into(),
        ..event(MonitorStatus::Pending, MonitorStatus::Up)
    };
    check_payload_golden(
        "probe_pending.json",
        &probe_message(&e, &MessageStyle::default()),
    );
}

#[test]
fn probe_maintenance() {
    let e = ProbeEvent {
        message: "Scheduled maintenance: kernel upgrade".into(),
        ..event(MonitorStatus::Maintenance, MonitorStatus::Up)
    };
    check_payload_golden(
        "probe_maintenance.json",
        &probe_message(&e, &uptime_style()),
    );
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn cpu_alert(status: AlertStatus) -> Alert {
    Alert {
        status,
        labels: map(&[
            ("alertname", "HighCpuLoad"),
            ("instance", "web-1:9100"),
            ("job", "node"),
            ("severity", "critical"),
        ]),
        annotations: map(&[
            ("summary", "CPU load above 90% on web-1:9100"),
            (
                "description",
                "The 5-minute load average has been above 90% of cores for 10 minutes.",
            ),
            (
                "runbook_url",
                "https://wiki.example.com/runbooks/high-cpu-load-on-web-frontends",
            ),
        ]),
        starts_at: at(1_717_243_200),
        ends_at: match status {
            AlertStatus::Firing => None,
            AlertStatus::Resolved => Some(at(1_717_243_200 + 1_530)),
        },
        generator_url: Some(
            "http://metrics.example.com:9090/graph?g0.expr=node_load5+%3E+0.9".into(),
        ),
    }
}

fn alert_style() -> MessageStyle {
    MessageStyle {
        username: Some("Alerts".into()),
        footer: Some("alerter".into()),
        problem_priority: Some(Priority::important()),
        ..MessageStyle::default()
    }
}

#[test]
fn alert_firing() {
    check_payload_golden(
        "alert_firing.json",
        &alert_message(&cpu_alert(AlertStatus::Firing), &alert_style()),
    );
}

#[test]
fn alert_resolved() {
    check_payload_golden(
        "alert_resolved.json",
        &alert_message(&cpu_alert(AlertStatus::Resolved), &alert_style()),
    );
}

#[test]
fn alert_group() {
    let disk = Alert {
        status: AlertStatus::Firing,
        labels: map(&[
            ("alertname", "DiskAlmostFull"),
            ("device", "/dev/sda1"),
            ("instance", "db-1:9100"),
            ("mountpoint", "/var/lib/postgresql"),
        ]),
        annotations: map(&[("summary", "Disk /var/lib/postgresql is 95% full")]),
        starts_at: at(1_717_240_000),
        ends_at: None,
        generator_url: None,
    };
    let alerts = [
        cpu_alert(AlertStatus::Firing),
        disk,
        cpu_alert(AlertStatus::Resolved),
    ];
    check_payload_golden(
        "alert_group.json",
        &alerts_message(&alerts, &alert_style()).unwrap(),
    );
}
