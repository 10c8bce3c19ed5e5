//! Helpers: start the built `log-server`, query it.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (SIGKILL) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `log-server` (on-disk store in `dir/data`) on a free port;
/// returns it and its address.
pub fn start_log_server(dir: &std::path::Path) -> (Proc, String) {
    start_log_server_on(dir, "127.0.0.1:0")
}

/// Starts `log-server` on `listen`.
pub fn start_log_server_on(dir: &std::path::Path, listen: &str) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_log-server"))
        .args(["--listen", listen, "--threads", "4", "--data-dir"])
        .arg(dir.join("data"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn log-server");
    let stderr = child.stderr.take().expect("stderr");
    let proc = Proc(child);
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(a) = l.strip_prefix("log-server: listening on http://") {
                    break a.trim().to_string();
                }
            }
            other => panic!("log-server did not start: {other:?}"),
        }
    };
    // Keep draining its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (proc, addr)
}

/// Now in ns.
pub fn now_ns() -> i64 {
    examples::log_server::now_ns()
}

/// Entries of a log query over the last hour (forward): (labels, ts, line).
pub fn query_lines(addr: &str, query: &str) -> Vec<(Value, String, String)> {
    let now = now_ns();
    let resp = ureq::get(&format!("http://{addr}/loki/api/v1/query_range"))
        .query("query", query)
        .query("start", &(now - 3_600_000_000_000).to_string())
        .query("end", &(now + 600_000_000_000).to_string())
        .query("limit", "5000")
        .query("direction", "forward")
        .call()
        .expect("query_range");
    let v: Value = serde_json::from_str(&resp.into_string().expect("body")).expect("json");
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["data"]["resultType"], "streams", "{v}");
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().expect("result") {
        for e in s["values"].as_array().expect("values") {
            out.push((s["stream"].clone(), e[0].as_str().unwrap_or("").to_string(), e[1].as_str().unwrap_or("").to_string()));
        }
    }
    out
}

/// Polls `f` every 50ms until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}
