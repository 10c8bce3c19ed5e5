//! The `tsdb` binary: import, stats and dump on a temporary directory.

use std::path::Path;
use std::process::{Command, Output};

fn tsdb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tsdb")).args(args).output().expect("run tsdb")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "tsdb failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn block_dirs(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Two series, samples on both sides of a 2h boundary (7200 s), one
/// series written with its labels in another order halfway.
const OM: &str = "# HELP up Whether up.
# TYPE up gauge
up{job=\"a\",instance=\"x\"} 1 7190
up{job=\"a\",instance=\"x\"} 0 7200.5
up{instance=\"x\",job=\"a\"} 1 7210
up{job=\"b\",instance=\"x\"} 2.5 10
# TYPE temp_celsius gauge
temp_celsius 21.25 7199.999
# EOF
";

#[test]
fn import_then_stats_and_dump() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("in.om");
    std::fs::write(&file, OM).unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let out = stdout(&tsdb(&["import", "--data-dir", d, file.to_str().unwrap()]));
    assert!(out.starts_with("imported 5 samples of 3 series from 9 lines into 2 blocks"), "{out}");

    let stats = stdout(&tsdb(&["stats", "--data-dir", d]));
    let head: Vec<&str> = stats.lines().take(5).collect();
    assert_eq!(head, ["series: 3", "samples: 5", "blocks: 2", "head series: 0", "head samples: 0"], "{stats}");
    assert!(stats.contains("bytes per sample: "), "{stats}");

    let dump = stdout(&tsdb(&["dump", "--data-dir", d]));
    let want = "\
{__name__=\"temp_celsius\"} 21.25 7199999
{__name__=\"up\", instance=\"x\", job=\"a\"} 1 7190000
{__name__=\"up\", instance=\"x\", job=\"a\"} 0 7200500
{__name__=\"up\", instance=\"x\", job=\"a\"} 1 7210000
{__name__=\"up\", instance=\"x\", job=\"b\"} 2.5 10000
";
    assert_eq!(dump, want);

    let dump = stdout(&tsdb(&[
        "dump", "--data-dir", d, "--match", "up{job=~\"a|c\"}", "--min-time", "7200000", "--max-time", "7205000",
    ]));
    assert_eq!(dump, "{__name__=\"up\", instance=\"x\", job=\"a\"} 0 7200500\n");

    let bad = tsdb(&["dump", "--data-dir", d, "--match", "up{job=a}"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid --match"));
}

#[test]
fn bad_line_reports_its_number_and_leaves_no_block() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.om");
    let mut text = String::from("# TYPE up gauge\n");
    for i in 0..5 {
        text.push_str(&format!("up{{i=\"{i}\"}} 1 {}\n", 7000 + i));
    }
    text.push_str("up{i=\"9\" 1 8000\n"); // line 7: unterminated label set
    text.push_str("up{i=\"10\"} 1 8000\n# EOF\n");
    std::fs::write(&file, text).unwrap();
    let data = tmp.path().join("data");
    let o = tsdb(&["import", "--data-dir", data.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 7"), "{err}");
    let left = block_dirs(&data);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn missing_timestamp_and_text_format() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("in.prom");
    std::fs::write(&file, "# TYPE a counter\na_total 1 1000\na_total 2 2000\na_total 3\n").unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let o = tsdb(&["import", "--data-dir", d, file.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 4"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(block_dirs(&data).is_empty());

    std::fs::write(&file, "# TYPE a counter\na_total 1 1000\na_total 2 2000\n").unwrap();
    stdout(&tsdb(&["import", "--data-dir", d, "--format", "text", file.to_str().unwrap()]));
    let dump = stdout(&tsdb(&["dump", "--data-dir", d]));
    assert_eq!(dump, "{__name__=\"a_total\"} 1 1000\n{__name__=\"a_total\"} 2 2000\n");
}

/// A multi-megabyte input crosses the importer's read pieces: line numbers
/// and the OpenMetrics `# EOF` handling must hold across them.
#[test]
fn large_input_spans_pieces() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("big.om");
    let mut text = String::new();
    let mut lines = 0;
    for s in 0..60 {
        for k in 0..2000 {
            text.push_str(&format!("metric_with_a_long_name{{series=\"{s}\",pad=\"{:040}\"}} {k} {}\n", 0, k * 15));
            lines += 1;
        }
    }
    let good = format!("{text}# EOF\n");
    std::fs::write(&file, &good).unwrap();
    assert!(good.len() > 9 << 20);
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let out = stdout(&tsdb(&["import", "--data-dir", d, file.to_str().unwrap()]));
    assert!(out.starts_with(&format!("imported {lines} samples of 60 series")), "{out}");
    let stats = stdout(&tsdb(&["stats", "--data-dir", d]));
    assert!(stats.contains(&format!("samples: {lines}\n")), "{stats}");

    // A bad line deep in the file is reported with its global number.
    let bad_line = 100_000;
    let mut bad: Vec<&str> = text.lines().collect();
    bad[bad_line - 1] = "metric_with_a_long_name{series=\"1\"} notanumber 5";
    let bad = format!("{}\n# EOF\n", bad.join("\n"));
    std::fs::write(&file, bad).unwrap();
    let data2 = tmp.path().join("data2");
    let o = tsdb(&["import", "--data-dir", data2.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("line {bad_line}")), "{err}");
    assert!(block_dirs(&data2).is_empty());

    // An early "# EOF" (inside the first piece read) followed by more
    // text is an error.
    let quarter = text[..text.len() / 4].rfind('\n').unwrap() + 1;
    let early = format!("{}# EOF\n{}# EOF\n", &text[..quarter], &text[quarter..]);
    std::fs::write(&file, early).unwrap();
    let data3 = tmp.path().join("data3");
    let o = tsdb(&["import", "--data-dir", data3.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(!o.status.success(), "text after an early # EOF must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    let eof_line = text[..quarter].lines().count() + 1;
    assert!(err.contains(&format!("line {}", eof_line + 1)) && err.contains("EOF"), "{err}");
    assert!(block_dirs(&data3).is_empty());
}
