//! The agent against a real `log-server`: rotation, truncation, `kill -9`
//! and restart, and a crash between push and commit; every line must be
//! stored exactly once.

use super::common::{query_lines, start_log_server, start_log_server_on, wait_until, Proc};
use examples::agent::{Agent, AgentError, Config};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn append(path: &Path, lines: impl IntoIterator<Item = String>) {
    let mut f = OpenOptions::new().create(true).append(true).open(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn config(dir: &Path, addr: &str, format: &str) -> String {
    config_with(dir, addr, format, 400)
}

fn config_with(dir: &Path, addr: &str, format: &str, batchsize: usize) -> String {
    format!(
        r#"
clients:
  - url: http://{addr}/loki/api/v1/push
    batchwait: 50ms
    batchsize: {batchsize}
    format: {format}
    backoff_config: {{min_period: 20ms, max_period: 200ms}}
positions:
  filename: {pos}
target_config:
  sync_period: 100ms
poll_interval: 20ms
scrape_configs:
  - job_name: test
    static_configs:
      - targets: [localhost]
        labels:
          job: agent-test
          __path__: {glob}
"#,
        pos = dir.join("positions.yaml").display(),
        glob = dir.join("logs/*.log").display(),
    )
}

fn start_agent(cfg: &Path) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_agent"))
            .arg("--config.file")
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent"),
    )
}

/// Lines of `file` stored by the server; asserts labels.
fn stored(addr: &str, dir: &Path, file: &str) -> Vec<String> {
    let path = dir.join("logs").join(file);
    let q = format!("{{job=\"agent-test\", filename=\"{}\"}}", path.display());
    query_lines(addr, &q)
        .into_iter()
        .map(|(labels, _, line)| {
            assert_eq!(labels["filename"], path.display().to_string());
            line
        })
        .collect()
}

fn assert_exactly_once(got: &[String], want: &[String], what: &str) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in got {
        *counts.entry(l.as_str()).or_default() += 1;
    }
    let missing: Vec<&String> = want.iter().filter(|l| !counts.contains_key(l.as_str())).collect();
    let dup: Vec<(&&str, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(missing.is_empty(), "{what}: {} lines missing, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    assert!(dup.is_empty(), "{what}: duplicated lines {:?}", &dup[..dup.len().min(5)]);
    assert_eq!(got.len(), want.len(), "{what}: unexpected lines");
}

fn lines(prefix: &str, r: std::ops::Range<usize>) -> Vec<String> {
    r.map(|i| format!("{prefix}-{i:05} payload")).collect()
}

#[test]
fn rotate_truncate_kill9_restart_exactly_once() {
    for format in ["protobuf", "json"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let (_srv, addr) = start_log_server(dir.path());
        let cfg = dir.path().join("agent.yaml");
        std::fs::write(&cfg, config(dir.path(), &addr, format)).unwrap();
        let a = dir.path().join("logs/a.log");
        let b = dir.path().join("logs/b.log");
        append(&a, lines("a", 0..200));
        append(&b, lines("b", 0..50));

        let agent = start_agent(&cfg);
        assert!(wait_until(Duration::from_secs(30), || stored(&addr, dir.path(), "a.log").len() >= 50), "{format}: agent sent nothing");
        // Rotate: rename, new file, keep writing.
        std::fs::rename(&a, dir.path().join("logs/a.log.1")).unwrap();
        append(&a, lines("a", 200..300));
        assert!(wait_until(Duration::from_secs(30), || stored(&addr, dir.path(), "a.log").len() >= 220));
        // b.log must be delivered before it is truncated (lines truncated
        // away before they were read are lost, with any collector).
        assert!(wait_until(Duration::from_secs(30), || stored(&addr, dir.path(), "b.log").len() >= 50), "{format}: b.log");
        drop(agent); // SIGKILL, mid-stream

        // While it is down: more lines, another rotation, a truncation.
        append(&a, lines("a", 300..400));
        std::fs::rename(&a, dir.path().join("logs/a.log.2")).unwrap();
        append(&a, lines("a", 400..450));
        std::fs::write(&b, "").unwrap();
        append(&b, lines("b", 50..60));

        let agent = start_agent(&cfg);
        let want_a = lines("a", 0..450);
        let want_b = lines("b", 0..60);
        let done = wait_until(Duration::from_secs(60), || {
            stored(&addr, dir.path(), "a.log").len() >= want_a.len() && stored(&addr, dir.path(), "b.log").len() >= want_b.len()
        });
        // Give a wrongly duplicating agent the chance to show it.
        std::thread::sleep(Duration::from_millis(300));
        drop(agent);
        assert!(done, "{format}: not everything arrived in time");
        assert_exactly_once(&stored(&addr, dir.path(), "a.log"), &want_a, &format!("{format} a.log"));
        assert_exactly_once(&stored(&addr, dir.path(), "b.log"), &want_b, &format!("{format} b.log"));
    }
}

#[test]
fn crash_between_push_and_commit_replays_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let (_srv, addr) = start_log_server(dir.path());
    let cfg_text = config_with(dir.path(), &addr, "protobuf", 4096);
    let a = dir.path().join("logs/a.log");
    append(&a, lines("a", 0..30));
    let stop = AtomicBool::new(false);

    let mut agent = Agent::new(Config::parse(&cfg_text, Path::new("agent.yaml")).unwrap()).unwrap();
    agent.discover();
    assert_eq!(agent.poll_files(&stop).unwrap(), 30);
    agent.crash_after_next_push();
    assert!(matches!(agent.flush(&stop), Err(AgentError::SimulatedCrash)));
    drop(agent);
    // The server has the lines, the positions file still says offset 0
    // with the batch pending.
    assert_eq!(stored(&addr, dir.path(), "a.log").len(), 30);
    let pos = examples::agent::Positions::load(&dir.path().join("positions.yaml")).unwrap();
    assert_eq!(pos.pending.len(), 1);
    assert_eq!(pos.pending[0].lines, 30);

    append(&a, lines("a", 30..40));
    let mut agent = Agent::new(Config::parse(&cfg_text, Path::new("agent.yaml")).unwrap()).unwrap();
    assert!(agent.recover(&stop).unwrap());
    assert_eq!(agent.stats().lines_replayed, 30);
    agent.discover();
    assert_eq!(agent.poll_files(&stop).unwrap(), 10, "only the new lines are read again");
    assert!(agent.flush(&stop).unwrap());
    assert_exactly_once(&stored(&addr, dir.path(), "a.log"), &lines("a", 0..40), "after replay");
    let m = ureq::get(&format!("http://{addr}/metrics")).call().unwrap().into_string().unwrap();
    assert!(m.contains("loki_ingester_duplicate_entries_total 30"), "the replayed copies were dropped as duplicates:\n{m}");
    let pos = examples::agent::Positions::load(&dir.path().join("positions.yaml")).unwrap();
    assert!(pos.pending.is_empty());
    assert_eq!(pos.files[0].offset, std::fs::metadata(&a).unwrap().len());
}

#[test]
fn repeated_kill9_during_transfer_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let (_srv, addr) = start_log_server(dir.path());
    let cfg = dir.path().join("agent.yaml");
    // Small batches (about 4 lines) so that a transfer takes a while.
    std::fs::write(&cfg, config_with(dir.path(), &addr, "protobuf", 80)).unwrap();
    let a = dir.path().join("logs/a.log");
    let total = 1500;
    append(&a, lines("a", 0..total));
    let mut kills = 0;
    // Kill the agent while it is pushing, several times, at varying points.
    for round in 0..6u64 {
        let agent = start_agent(&cfg);
        std::thread::sleep(Duration::from_millis(60 + 37 * round));
        drop(agent);
        if stored(&addr, dir.path(), "a.log").len() < total {
            kills += 1;
        }
    }
    let agent = start_agent(&cfg);
    let done = wait_until(Duration::from_secs(60), || stored(&addr, dir.path(), "a.log").len() >= total);
    std::thread::sleep(Duration::from_millis(300));
    drop(agent);
    assert!(done, "not everything arrived in time");
    println!("agent killed mid-transfer {kills} times");
    assert!(kills >= 3, "the agent was killed mid-transfer only {kills} times");
    assert_exactly_once(&stored(&addr, dir.path(), "a.log"), &lines("a", 0..total), "after repeated kill -9");
}

#[test]
fn agent_retries_until_the_server_is_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    // A loopback port with nothing listening yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(&cfg, config(dir.path(), &addr, "json")).unwrap();
    append(&dir.path().join("logs/a.log"), lines("a", 0..100));
    let agent = start_agent(&cfg);
    // The agent retries (connection refused) with backoff meanwhile.
    std::thread::sleep(Duration::from_millis(500));
    let pos = examples::agent::Positions::load(&dir.path().join("positions.yaml")).unwrap();
    assert!(!pos.pending.is_empty(), "a batch is in flight while the server is down");
    assert!(pos.files.iter().all(|f| f.offset == 0), "nothing is committed before an acknowledgement");
    let (_srv, _) = start_log_server_on(dir.path(), &addr);
    let done = wait_until(Duration::from_secs(30), || stored(&addr, dir.path(), "a.log").len() >= 100);
    std::thread::sleep(Duration::from_millis(200));
    drop(agent);
    assert!(done, "lines did not arrive after the server came up");
    assert_exactly_once(&stored(&addr, dir.path(), "a.log"), &lines("a", 0..100), "after retries");
}
