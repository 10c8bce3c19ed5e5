//! A real Loki client: the PyPI package `python-logging-loki`
//! (`pip install python-logging-loki`) pushes through Python's logging
//! into the built `log-server`; the lines come back from query_range.

use super::common::{query_lines, start_log_server};
use std::process::Command;

const SCRIPT: &str = r#"
import logging, sys
import logging_loki

class Strict(logging_loki.LokiHandler):
    def handleError(self, record):
        raise  # fail the test instead of printing and going on

base = sys.argv[1]
for version, path in (("1", "/loki/api/v1/push"), ("0", "/api/prom/push")):
    handler = Strict(url=base + path, tags={"application": "pytest", "emitter": "v" + version}, version=version)
    logger = logging.getLogger("it" + version)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    for i in range(5):
        logger.warning("line %d from v%s", i, version, extra={"tags": {"service": "checkout"}})
"#;

#[test]
fn python_logging_loki_round_trip() {
    let available = Command::new("python3").args(["-c", "import logging_loki"]).output().is_ok_and(|o| o.status.success());
    if !available {
        println!("skipped: python3 cannot import logging_loki (pip install python-logging-loki)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (srv, addr) = start_log_server(dir.path());
    let out = Command::new("python3").args(["-c", SCRIPT, &format!("http://{addr}")]).output().expect("run python3");
    assert!(out.status.success(), "python client failed:\n{}", String::from_utf8_lossy(&out.stderr));

    check(&addr);
    // Everything is still there after a restart (WAL replay).
    drop(srv);
    let (_srv, addr) = start_log_server(dir.path());
    check(&addr);
}

fn check(addr: &str) {
    for version in ["1", "0"] {
        let got = query_lines(addr, &format!("{{application=\"pytest\", emitter=\"v{version}\"}}"));
        let lines: Vec<&str> = got.iter().map(|(_, _, l)| l.as_str()).collect();
        let want: Vec<String> = (0..5).map(|i| format!("line {i} from v{version}")).collect();
        assert_eq!(lines, want, "emitter v{version}");
        for (labels, ts, _) in &got {
            assert_eq!(labels["severity"], "warning", "{labels}");
            assert_eq!(labels["logger"], format!("it{version}"), "{labels}");
            assert_eq!(labels["service"], "checkout", "{labels}");
            assert_eq!(labels["application"], "pytest", "{labels}");
            let ts: i64 = ts.parse().unwrap();
            assert!((ts - super::common::now_ns()).abs() < 600_000_000_000, "timestamp {ts} is not recent");
        }
    }
    // The labels endpoints see the client's tags.
    let v: serde_json::Value = serde_json::from_str(&ureq::get(&format!("http://{addr}/loki/api/v1/label/service/values")).call().unwrap().into_string().unwrap()).unwrap();
    assert_eq!(v["data"], serde_json::json!(["checkout"]));
}
