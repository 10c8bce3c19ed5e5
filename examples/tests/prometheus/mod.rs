//! Against the real Prometheus 2.42 and promtool (Debian's `prometheus`
//! package) and node_exporter 1.5 (`prometheus-node-exporter`).

use crate::support::*;
use examples::remote_write::{to_request, RemoteWriteOptions, RemoteWriter};
use model::Labels;
use std::process::Command;
use std::time::Duration;

fn now_ms() -> i64 {
    examples::scrape::now_ms()
}

/// Remote-writes `samples` to `base` with our encoder; panics on failure.
fn push(base: &str, samples: &[(Labels, i64, f64)]) {
    let body = tsdb::remote::encode_write_request(&to_request(samples));
    let r = ureq::post(&format!("{base}/api/v1/write"))
        .set("Content-Type", "application/x-protobuf")
        .set("Content-Encoding", "snappy")
        .send_bytes(&body)
        .expect("remote-write accepted");
    assert_eq!(r.status(), 204);
}

#[test]
fn promtool_queries_metrics_server() {
    if !have("promtool") {
        return skip("promtool_queries_metrics_server", "promtool not installed (apt-get install prometheus)");
    }
    let dir = tempfile::tempdir().unwrap();
    let (_srv, base) = metrics_server(dir.path(), &[]);
    // Whole seconds, so promtool's timestamps print predictably.
    let end = now_ms() / 1000 * 1000;
    let mut samples = Vec::new();
    for inst in ["a", "b"] {
        let up = Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", inst)]);
        let load = Labels::from_pairs([("__name__", "node_load1"), ("instance", inst)]);
        for i in 0..5 {
            let t = end - (4 - i) * 15_000;
            samples.push((up.clone(), t, 1.0));
            samples.push((load.clone(), t, 0.5 * (i + 1) as f64));
        }
    }
    push(&base, &samples);

    let out = Command::new("promtool").args(["query", "instant", &base, "sum(up)"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "promtool failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.trim_start().starts_with("{} => 2 @["), "unexpected promtool output: {text}");

    let out = Command::new("promtool")
        .args(["query", "instant", &base, "node_load1{instance=\"b\"}"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("node_load1{instance=\"b\"} => 2.5 @["), "unexpected promtool output: {text}");

    let (s, e) = ((end - 60_000) / 1000, end / 1000);
    let out = Command::new("promtool")
        .args(["query", "range", "--start", &s.to_string(), "--end", &e.to_string(), "--step", "15s", &base, "node_load1{instance=\"a\"} * 2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "promtool range failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // One series; the values at the five steps are 1, 2, 3, 4, 5.
    assert!(text.contains("{instance=\"a\"} =>"), "unexpected promtool output: {text}");
    for (i, v) in [1, 2, 3, 4, 5].iter().enumerate() {
        let line = format!("{v} @[{}]", s + 15 * i as i64);
        assert!(text.contains(&line), "missing {line:?} in promtool output: {text}");
    }

    // A bad query gives promtool Prometheus's error.
    let out = Command::new("promtool").args(["query", "instant", &base, "sum("]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad_data"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn prometheus_remote_writes_into_metrics_server() {
    if !have("prometheus") {
        return skip("prometheus_remote_writes_into_metrics_server", "prometheus not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    let (_srv, ours) = metrics_server(dir.path(), &[]);
    let port = free_port();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\nremote_write:\n  - url: {ours}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n"
    );
    let pdir = dir.path().join("p");
    std::fs::create_dir_all(&pdir).unwrap();
    let (mut prom, pbase) = prometheus(&pdir, &cfg, port);
    let got = wait_for(Duration::from_secs(60), || {
        prom.assert_running();
        let r = query(&ours, "up{job=\"prometheus\"}")?;
        let v = r.get(0)?["value"][1].as_str()?.to_string();
        Some(v)
    });
    assert_eq!(got.as_deref(), Some("1"), "up from Prometheus's remote-write never arrived");
    // Many series arrive, not just one.
    let n = wait_for(Duration::from_secs(30), || {
        let r = query(&ours, "count({job=\"prometheus\"})")?;
        let n: f64 = r.get(0)?["value"][1].as_str()?.parse().ok()?;
        (n > 100.0).then_some(n)
    });
    assert!(n.is_some(), "expected >100 series from Prometheus");
    // And what we hold matches what Prometheus itself reports.
    let theirs = query(&pbase, "prometheus_build_info").unwrap();
    let mine = wait_for(Duration::from_secs(10), || query(&ours, "prometheus_build_info").filter(|r| r.get(0).is_some())).unwrap();
    assert_eq!(theirs[0]["metric"], mine[0]["metric"]);
}

#[test]
fn our_sender_remote_writes_into_prometheus() {
    if !have("prometheus") {
        return skip("our_sender_remote_writes_into_prometheus", "prometheus not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_prom, base) = prometheus(dir.path(), "scrape_configs: []\n", port);
    let w = RemoteWriter::start(RemoteWriteOptions::new(format!("{base}/api/v1/write")));
    let l = Labels::from_pairs([("__name__", "stack_sender_test"), ("source", "rust")]);
    let end = now_ms();
    let samples: Vec<_> = (0..10).map(|i| (l.clone(), end - (9 - i) * 1000, i as f64)).collect();
    assert_eq!(w.enqueue(&samples), 10);
    assert!(w.flush(Duration::from_secs(20)), "queue did not drain");
    assert_eq!(w.stats().sent.load(std::sync::atomic::Ordering::Relaxed), 10);
    assert_eq!(w.stats().rejected.load(std::sync::atomic::Ordering::Relaxed), 0);
    let r = wait_for(Duration::from_secs(10), || query(&base, "stack_sender_test").filter(|r| r.get(0).is_some())).unwrap();
    assert_eq!(r[0]["metric"]["source"], "rust");
    assert_eq!(r[0]["value"][1], "9");
    w.stop();
}

#[test]
fn metrics_server_scrapes_node_exporter_with_staleness() {
    if !have("prometheus-node-exporter") {
        return skip("metrics_server_scrapes_node_exporter_with_staleness", "prometheus-node-exporter not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut ne = Command::new("prometheus-node-exporter");
    ne.arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let ne = Proc::spawn("node_exporter", ne.stderr(std::process::Stdio::null()));
    assert!(wait_http(&format!("http://127.0.0.1:{port}/metrics"), Duration::from_secs(20)));
    let cfg = dir.path().join("scrape.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n        labels: {{env: test}}\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'go_.*'\n        action: drop\n"),
    )
    .unwrap();
    let (_srv, ours) = metrics_server(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let up = wait_for(Duration::from_secs(30), || {
        let r = query(&ours, "up{job=\"node\"}")?;
        (r.get(0)?["value"][1] == "1").then(|| r[0]["metric"].clone())
    })
    .expect("up{job=node} never became 1");
    assert_eq!(up["instance"], format!("127.0.0.1:{port}"));
    assert_eq!(up["env"], "test");
    let load = query(&ours, "node_load1").unwrap();
    assert_eq!(load.as_array().map(Vec::len), Some(1), "{load}");
    // metric_relabel_configs dropped the Go runtime metrics.
    assert_eq!(query(&ours, "go_goroutines").unwrap().as_array().map(Vec::len), Some(0));
    let scraped: f64 = query(&ours, "scrape_samples_scraped{job=\"node\"}").unwrap()[0]["value"][1].as_str().unwrap().parse().unwrap();
    let post: f64 = query(&ours, "scrape_samples_post_metric_relabeling{job=\"node\"}").unwrap()[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(scraped > 100.0 && post < scraped, "scraped {scraped}, kept {post}");
    // Metadata from the scrape reaches /api/v1/metadata.
    let md = ureq::get(&format!("{ours}/api/v1/metadata?metric=node_load1")).call().unwrap().into_string().unwrap();
    let md: serde_json::Value = serde_json::from_str(&md).unwrap();
    assert_eq!(md["data"]["node_load1"][0]["type"], "gauge");

    // The target goes away: up drops to 0 and its series go stale at once
    // (not after the 5m lookback).
    drop(ne);
    let down = wait_for(Duration::from_secs(30), || {
        let r = query(&ours, "up{job=\"node\"}")?;
        (r.get(0)?["value"][1] == "0").then_some(())
    });
    assert!(down.is_some(), "up never dropped to 0");
    let gone = wait_for(Duration::from_secs(10), || {
        let r = query(&ours, "node_load1")?;
        r.as_array()?.is_empty().then_some(())
    });
    assert!(gone.is_some(), "node_load1 did not go stale");
}

#[test]
fn prometheus_scrapes_our_node_exporter() {
    if !have("prometheus") {
        return skip("prometheus_scrapes_our_node_exporter", "prometheus not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    let ne_port = free_port();
    let mut ne = Command::new(env!("CARGO_BIN_EXE_node-exporter"));
    ne.arg("--web.listen-address").arg(format!("127.0.0.1:{ne_port}"));
    let _ne = Proc::spawn("node-exporter", ne.stderr(std::process::Stdio::null()));
    assert!(wait_http(&format!("http://127.0.0.1:{ne_port}/metrics"), Duration::from_secs(20)), "node-exporter did not start");
    let port = free_port();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ours\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
    );
    let (mut prom, base) = prometheus(dir.path(), &cfg, port);
    let up = wait_for(Duration::from_secs(30), || {
        prom.assert_running();
        let r = query(&base, "up{job=\"ours\"}")?;
        (r.get(0)?["value"][1] == "1").then_some(())
    });
    assert!(up.is_some(), "Prometheus never saw our node-exporter up");
    for metric in ["node_load1", "node_memory_MemTotal_bytes", "node_cpu_seconds_total", "node_scrape_collector_success"] {
        let r = wait_for(Duration::from_secs(10), || query(&base, metric).filter(|r| r.get(0).is_some()));
        assert!(r.is_some(), "{metric} not queryable in Prometheus");
    }
    // Prometheus parsed every sample we served (no scrape errors, many samples).
    let n: f64 = query(&base, "scrape_samples_scraped{job=\"ours\"}").unwrap()[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(n > 100.0, "only {n} samples scraped");
}
