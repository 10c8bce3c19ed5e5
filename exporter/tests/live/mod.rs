//! Live comparison with Debian's `prometheus-node-exporter` 1.5 on this
//! machine: same family names, types and label names for the collectors we
//! implement; and `promtool check metrics` finds nothing in our output.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use exporter::{Format, RegistryBuilder, Root};

use crate::support::{label_names, owner, split_families};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const PROMTOOL: &str = "/usr/bin/promtool";

/// Kills the child when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A plain HTTP/1.0 GET on loopback; returns the body.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    match buf.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => Ok(body.to_string()),
        _ => Err(std::io::Error::other(format!("bad response: {}", buf.lines().next().unwrap_or("")))),
    }
}

fn scrape_debian() -> Option<String> {
    if !Path::new(NODE_EXPORTER).exists() {
        println!("skipped: {NODE_EXPORTER} not installed (apt-get install prometheus-node-exporter)");
        return None;
    }
    let port = free_port();
    let child = Command::new(NODE_EXPORTER)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus-node-exporter");
    let _guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match http_get(port, "/metrics") {
            Ok(body) => return Some(body),
            Err(e) if Instant::now() > deadline => panic!("prometheus-node-exporter did not answer: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// family → (TYPE line, set of label-name sets).
fn shape(text: &str) -> BTreeMap<String, (String, BTreeSet<Vec<String>>)> {
    split_families(text)
        .into_iter()
        .map(|(name, f)| {
            let kind = f.kind.unwrap_or_default();
            let labels = f.samples.iter().map(|s| label_names(s)).collect();
            (name, (kind, labels))
        })
        .collect()
}

fn successes(text: &str) -> BTreeMap<String, bool> {
    text.lines()
        .filter_map(|l| l.strip_prefix("node_scrape_collector_success{collector=\""))
        .filter_map(|rest| rest.split_once("\"} ").map(|(c, v)| (c.to_string(), v.trim() == "1")))
        .collect()
}

/// Our output as the node-exporter binary serves it: procfs and sysfs
/// files kept open, so the second scrape reads kept files again; both
/// scrapes must have the same families, types and label names.
fn ours() -> String {
    let mut root = Root::new();
    root.keep_open(true);
    let mut b = RegistryBuilder::new();
    b.root(root);
    let reg = b.build().expect("default registry");
    let scrape = || {
        let mut out = Vec::new();
        reg.write(Format::Text004, &mut out).expect("write");
        String::from_utf8(out).expect("utf8")
    };
    let first = scrape();
    let second = scrape();
    assert_eq!(shape(&first), shape(&second), "a scrape over kept files differs in shape");
    second
}

#[test]
fn same_families_as_debian_node_exporter() {
    let Some(theirs) = scrape_debian() else { return };
    let ours = ours();
    let (their_ok, our_ok) = (successes(&theirs), successes(&ours));
    let (their_shape, our_shape) = (shape(&theirs), shape(&ours));

    println!("{:<14} {:>7} {:>5} {:>9}  difference", "collector", "debian", "ours", "families");
    let mut failures = Vec::new();
    for name in exporter::COLLECTORS {
        let t = their_ok.get(*name).copied();
        let o = our_ok.get(*name).copied();
        let mut diff = Vec::new();
        let mut compared = 0;
        if t == Some(true) && o == Some(true) {
            let fams: BTreeSet<&String> = their_shape
                .keys()
                .chain(our_shape.keys())
                .filter(|f| owner(f) == Some(*name))
                .collect();
            for f in fams {
                compared += 1;
                match (their_shape.get(f), our_shape.get(f)) {
                    (Some(a), Some(b)) if a == b => {}
                    (Some(a), Some(b)) => diff.push(format!("{f}: debian {a:?} ours {b:?}")),
                    (Some(_), None) => diff.push(format!("{f}: missing in ours")),
                    (None, Some(_)) => diff.push(format!("{f}: not in debian's")),
                    (None, None) => {}
                }
            }
        } else if t == Some(true) && o != Some(true) {
            diff.push(format!("debian succeeds, we do not ({o:?})"));
        }
        let show = |v: Option<bool>| match v {
            Some(true) => "ok",
            Some(false) => "fail",
            None => "-",
        };
        println!(
            "{:<14} {:>7} {:>5} {:>9}  {}",
            name,
            show(t),
            show(o),
            compared,
            diff.first().map(String::as_str).unwrap_or("")
        );
        for d in diff.iter().skip(1) {
            println!("{:<40}{d}", "");
        }
        if !diff.is_empty() {
            failures.push(*name);
        }
    }
    assert!(failures.is_empty(), "collectors differing from Debian's node_exporter: {failures:?}");
}

/// Runs `promtool check metrics` on `text`: (exit code, report lines).
fn promtool_lint(text: &str) -> (i32, Vec<String>) {
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), report.lines().map(String::from).collect())
}

/// promtool must parse our output without errors. Its lint findings must
/// all be findings it also reports on node_exporter's own output: they
/// come from node_exporter's metric names (`node_memory_MemTotal_bytes` is
/// "camelCase", `node_entropy_available_bits` "should use bytes"), which
/// compatibility requires us to keep.
#[test]
fn promtool_check_metrics_is_clean() {
    if !Path::new(PROMTOOL).exists() {
        println!("skipped: {PROMTOOL} not installed (apt-get install prometheus)");
        return;
    }
    let (code, ours) = promtool_lint(&ours());
    assert!(
        code == 0 || code == 3,
        "promtool could not check our output (exit {code}):\n{}",
        ours.join("\n")
    );
    assert!(!ours.iter().any(|l| l.contains("error while linting")), "{}", ours.join("\n"));
    let Some(theirs) = scrape_debian() else {
        println!("promtool: {} lint findings (node_exporter naming), no errors", ours.len());
        return;
    };
    let (_, theirs) = promtool_lint(&theirs);
    let theirs: BTreeSet<&String> = theirs.iter().collect();
    let extra: Vec<&String> = ours.iter().filter(|l| !theirs.contains(l)).collect();
    println!("promtool: {} findings on ours, {} on Debian's node_exporter, {} only on ours", ours.len(), theirs.len(), extra.len());
    assert!(extra.is_empty(), "promtool findings on our output only:\n{extra:#?}");
}
