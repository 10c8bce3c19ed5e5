//! Helpers shared by the integration tests: free ports, child processes
//! that die with the test, polling with a deadline.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

/// Whether `cmd` is on PATH.
pub fn have(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

/// Prints a skip notice (the test then returns and passes).
pub fn skip(test: &str, why: &str) {
    eprintln!("skipped: {test}: {why}");
}

/// A child process killed when dropped.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// Its name in messages.
    pub name: String,
}

impl Proc {
    /// Spawns `cmd` (stdin and stdout closed; stderr as the caller set it).
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc { child, name: name.to_string() }
    }

    /// Fails the test if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.name);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// GET a URL, returning the body on a 2xx.
pub fn get(url: &str) -> Option<String> {
    ureq::get(url).timeout(Duration::from_secs(5)).call().ok()?.into_string().ok()
}

/// Waits until `url` answers 2xx.
pub fn wait_http(url: &str, timeout: Duration) -> bool {
    wait_for(timeout, || get(url)).is_some()
}

/// Starts our metrics-server on a free port with a data dir under `dir`.
pub fn metrics_server(dir: &Path, extra: &[&str]) -> (Proc, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metrics-server"));
    cmd.arg("--data-dir").arg(dir.join("metrics")).arg("--listen").arg(&addr).args(extra);
    let p = Proc::spawn("metrics-server", &mut cmd);
    let base = format!("http://{addr}");
    assert!(wait_http(&format!("{base}/-/ready"), Duration::from_secs(20)), "metrics-server did not start");
    (p, base)
}

/// Starts the real Prometheus with `config` (YAML text) on `port`, with
/// its remote-write receiver enabled.
pub fn prometheus(dir: &Path, config: &str, port: u16) -> (Proc, String) {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).expect("write prometheus.yml");
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        // Prometheus logs a lot; keep it out of the test output.
        .stderr(Stdio::null());
    let mut p = Proc::spawn("prometheus", &mut cmd);
    let base = format!("http://127.0.0.1:{port}");
    assert!(wait_http(&format!("{base}/-/ready"), Duration::from_secs(30)), "prometheus did not start");
    p.assert_running();
    (p, base)
}

/// Runs an instant query against a Prometheus-compatible API; returns the
/// parsed JSON `data.result`.
pub fn query(base: &str, q: &str) -> Option<serde_json::Value> {
    let r = ureq::get(&format!("{base}/api/v1/query")).query("query", q).timeout(Duration::from_secs(10)).call().ok()?;
    let v: serde_json::Value = serde_json::from_str(&r.into_string().ok()?).ok()?;
    (v["status"] == "success").then(|| v["data"]["result"].clone())
}
