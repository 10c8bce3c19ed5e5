//! The `alerter` binary against our metrics-server: rules evaluated over
//! the HTTP API, recorded series written back by remote-write, firing and
//! resolved alerts posted to a local webhook receiver.

use crate::support::*;
use examples::remote_write::to_request;
use model::Labels;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn push(base: &str, samples: &[(Labels, i64, f64)]) {
    let body = tsdb::remote::encode_write_request(&to_request(samples));
    let r = ureq::post(&format!("{base}/api/v1/write"))
        .set("Content-Type", "application/x-protobuf")
        .set("Content-Encoding", "snappy")
        .send_bytes(&body)
        .expect("remote-write accepted");
    assert_eq!(r.status(), 204);
}

/// A webhook receiver on loopback: every POST body goes to the channel.
fn webhook_receiver() -> (String, mpsc::Receiver<serde_json::Value>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind webhook receiver");
    let port = server.server_addr().to_ip().map(|a| a.port()).expect("ip listener");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let _ = req.respond(tiny_http::Response::from_string("ok"));
            if let Ok(v) = serde_json::from_str(&body) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    (format!("http://127.0.0.1:{port}/hooks/k3yk3yk3yk3yk3yk3yk3yk3yk3y"), rx)
}

/// Waits for a webhook post whose first card's title contains `want`.
fn wait_post(rx: &mpsc::Receiver<serde_json::Value>, want: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(v) => {
                if v.to_string().contains(want) {
                    return v;
                }
                seen.push(v);
            }
            Err(_) => break,
        }
    }
    panic!("no webhook post containing {want:?}; got {seen:#?}");
}

const RULES: &str = r#"
groups:
  - name: node
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: InstanceDown
        expr: up{job="node"} == 0
        labels:
          severity: page
        annotations:
          summary: "Instance {{ $labels.instance }} down"
          description: "{{ $labels.instance }} of job {{ $labels.job }} is down ({{ $value }})."
"#;

#[test]
fn alerter_fires_and_resolves_against_metrics_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_srv, base) = metrics_server(dir.path(), &[]);
    let now = examples::alerter::now_ms();
    let a = Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "a:9100")]);
    let b = Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "b:9100")]);
    let mut samples = Vec::new();
    for i in 0..4 {
        samples.push((a.clone(), now - (3 - i) * 15_000, 0.0));
        samples.push((b.clone(), now - (3 - i) * 15_000, 1.0));
    }
    push(&base, &samples);

    let rules = dir.path().join("node.rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let (hook, rx) = webhook_receiver();
    let bin = env!("CARGO_BIN_EXE_alerter");
    // --check validates and exits.
    let check = Command::new(bin).args(["--rules", &rules.display().to_string(), "--query-url", &base, "--check"]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stderr).contains("1 groups, 2 rules"));

    let pattern = dir.path().join("*.rules.yml").display().to_string();
    let mut cmd = Command::new(bin);
    cmd.args(["--rules", &pattern, "--query-url", &base, "--webhook", &hook, "--interval", "1s"])
        .arg("--remote-write-url")
        .arg(format!("{base}/api/v1/write"))
        .stderr(Stdio::inherit());
    let mut alerter = Proc::spawn("alerter", &mut cmd);

    let post = wait_post(&rx, "FIRING");
    let card = &post["attachments"][0];
    assert_eq!(card["color"], notify::COLOR_PROBLEM, "{post:#}");
    let text = post.to_string();
    assert!(text.contains("InstanceDown") && text.contains("Instance a:9100 down") && !text.contains("b:9100"), "{post:#}");
    assert!(text.contains("a:9100 of job node is down (0)."), "{post:#}");

    // The recording rule's output comes back through remote-write.
    let recorded = wait_for(Duration::from_secs(20), || {
        let r = query(&base, "job:up:sum")?;
        let v = r.as_array()?.first()?["value"][1].as_str()?.to_string();
        Some(v)
    });
    assert_eq!(recorded.as_deref(), Some("1"));
    alerter.assert_running();

    // The instance recovers: the alert resolves (green).
    push(&base, &[(a.clone(), examples::alerter::now_ms(), 1.0)]);
    let post = wait_post(&rx, "RESOLVED");
    assert_eq!(post["attachments"][0]["color"], notify::COLOR_OK, "{post:#}");
    assert!(post.to_string().contains("InstanceDown"), "{post:#}");
}

#[test]
fn alerter_rejects_bad_rule_files() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("bad.yml");
    std::fs::write(&rules, "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: rate(up[5m]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_alerter"))
        .args(["--rules", &rules.display().to_string(), "--query-url", "http://127.0.0.1:9", "--check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.yml") && err.contains("group \"g\", rule 1 (alert \"X\")"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_alerter"))
        .args(["--rules", &dir.path().join("none*.yml").display().to_string(), "--query-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("matches no file"));
}
