//! The README's main command: `all-in-one` starts every piece, scrapes
//! them all, and the log server accepts and returns lines.

use crate::support::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn all_in_one_runs_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let (m, e, l) = (free_port(), free_port(), free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_all-in-one"));
    cmd.arg("--data-dir").arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{m}"), "--exporter-listen", &format!("127.0.0.1:{e}")])
        .args(["--logs-listen", &format!("127.0.0.1:{l}"), "--scrape-interval", "1s"]);
    let mut p = Proc::spawn("all-in-one", cmd.stderr(std::process::Stdio::null()));
    let base = format!("http://127.0.0.1:{m}");
    assert!(wait_http(&format!("{base}/-/ready"), Duration::from_secs(30)), "metrics server did not start");
    // Every scrape target (exporter, metrics server, log server, uptime
    // monitor) reports up, and the monitors' results arrive as metrics.
    let jobs = wait_for(Duration::from_secs(40), || {
        p.assert_running();
        let r = query(&base, "up == 1")?;
        let mut jobs: Vec<String> = r.as_array()?.iter().filter_map(|s| s["metric"]["job"].as_str().map(String::from)).collect();
        jobs.sort();
        (jobs.len() == 4).then_some(jobs)
    });
    assert_eq!(jobs, Some(vec!["log-server".into(), "metrics-server".into(), "node".into(), "uptime".into()]));
    let probes = wait_for(Duration::from_secs(30), || query(&base, "probe_success == 1").filter(|r| r.as_array().is_some_and(|a| a.len() == 3)));
    assert!(probes.is_some(), "the three built-in monitors did not all report success");
    assert!(get(&format!("{base}/dashboard")).is_some_and(|b| b.contains("query_range")));
    // Logs: push one line, read it back.
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let body = format!("{{\"streams\":[{{\"stream\":{{\"job\":\"stack-test\"}},\"values\":[[\"{ts}\",\"hello stack\"]]}}]}}");
    let r = ureq::post(&format!("http://127.0.0.1:{l}/loki/api/v1/push")).set("Content-Type", "application/json").send_string(&body).unwrap();
    assert_eq!(r.status(), 204);
    let got = ureq::get(&format!("http://127.0.0.1:{l}/loki/api/v1/query_range"))
        .query("query", "{job=\"stack-test\"}")
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(got.contains("hello stack"), "{got}");
}
