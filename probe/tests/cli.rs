//! The `probe` binary: a temp dir with a config, run it, read its output.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn prints_state_changes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("probe.yaml");
    let port = free_port();
    std::fs::write(
        &cfg,
        format!("history: {{path: beats.jsonl}}\nmonitors:\n  - {{name: dead, type: tcp, hostname: 127.0.0.1, port: {port}, interval: 1}}\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_probe"))
        .args(["--config", cfg.to_str().unwrap(), "--duration", "2.5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    // Only the first beat is a state change; the following DOWN beats are not printed.
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(lines[0].contains(" dead [tcp] DOWN [notify]: connecting to 127.0.0.1:"), "{stdout}");
    // History is relative to the config file.
    assert!(dir.path().join("beats.jsonl").exists());
}

#[test]
fn config_errors_name_monitor_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("probe.yaml");
    std::fs::write(&cfg, "monitors:\n  - {name: api, type: http, url: 'ftp://x'}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_probe")).args(["--config", cfg.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("monitor \"api\": field `url`"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_probe"))
        .args(["--config", dir.path().join("missing.yaml").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
}

#[test]
fn push_url_and_metrics_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("probe.yaml");
    std::fs::write(&cfg, "monitors:\n  - {name: backup, type: push, push_token: s3cret, interval: 60}\n").unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_probe"))
        .args(["--config", cfg.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}"), "--duration", "10"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(8);
    let pushed = loop {
        match ureq::get(&format!("{base}/api/push/s3cret?status=up&msg=backup%20ok&ping=12")).call() {
            Ok(r) => break r.into_string().unwrap(),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("probe did not come up: {e}"),
        }
    };
    assert_eq!(pushed, r#"{"ok":true}"#);
    let unknown = ureq::get(&format!("{base}/api/push/nope")).call();
    assert!(matches!(unknown, Err(ureq::Error::Status(404, _))));
    let metrics = ureq::get(&format!("{base}/metrics")).call().unwrap().into_string().unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(metrics.contains("probe_success{monitor=\"backup\",type=\"push\"} 1"), "{metrics}");
    assert!(metrics.contains("probe_duration_seconds{monitor=\"backup\",type=\"push\"} 0.012"), "{metrics}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("backup [push] UP [notify]: backup ok 12 ms"), "{stdout}");
}

#[test]
fn notifications_go_to_the_webhook() {
    let receiver = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let hook_port = receiver.server_addr().to_ip().unwrap().port();
    let got = std::thread::spawn(move || {
        let mut req = receiver.recv_timeout(Duration::from_secs(10)).unwrap().expect("a notification arrives");
        let mut body = String::new();
        req.as_reader().read_to_string(&mut body).unwrap();
        let path = req.url().to_string();
        let _ = req.respond(tiny_http::Response::from_string("ok"));
        (path, body)
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("probe.yaml");
    let port = free_port();
    std::fs::write(&cfg, format!("monitors:\n  - {{name: dead, type: tcp, hostname: 127.0.0.1, port: {port}, interval: 1}}\n"))
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_probe"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--duration",
            "2.5",
            "--webhook",
            &format!("http://127.0.0.1:{hook_port}/hooks/abcdefghijklmnopqrstuvwxyz"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (path, body) = got.join().unwrap();
    assert_eq!(path, "/hooks/abcdefghijklmnopqrstuvwxyz");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = json.to_string();
    assert!(text.contains("dead") && text.contains("DOWN"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
}
