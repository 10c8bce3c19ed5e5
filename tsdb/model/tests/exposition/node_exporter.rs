//! node_exporter's expected output (../shared/conformance/node_exporter):
//! every sample value, parsed and printed again with the Go float format,
//! must give back the original text; the whole file must parse as text
//! 0.0.4 families.

use std::path::Path;

use model::exposition::{format_go_float, parse_families, Entry, Format, Parser};

#[test]
fn node_exporter_values_format_like_go() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/node_exporter");
    if !dir.is_dir() {
        println!("skipped: ../shared/conformance/node_exporter not found");
        return;
    }
    let mut checked = 0;
    for file in [
        "e2e-output.txt",
        "e2e-64k-page-output.txt",
        "e2e-output-darwin.txt",
        "e2e-output-freebsd.txt",
    ] {
        let path = dir.join(file);
        let Ok(input) = std::fs::read(&path) else { continue };
        let text = String::from_utf8(input.clone()).expect("utf-8");
        let mut p = Parser::new(&input, Format::Text004);
        let mut raw_lines = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#'));
        while let Some(e) = p.next().unwrap_or_else(|e| panic!("{file}: {e}")) {
            let Entry::Sample(s) = e else { continue };
            let raw = raw_lines.next().expect("a raw sample line per sample");
            // node_exporter prints no timestamps: the value is the last token.
            let want = raw.rsplit(' ').next().unwrap_or_default();
            assert_eq!(format_go_float(s.value), want, "{file} line {}: {raw}", p.line_number());
            checked += 1;
        }
        let families =
            parse_families(&input, Format::Text004).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!families.is_empty());
    }
    println!("node_exporter: {checked} values formatted back identically");
    assert!(checked > 2000, "only {checked} values checked");
}

/// node_exporter's textfile collector fixtures are valid text 0.0.4.
#[test]
fn textfile_fixtures_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/node_exporter/textfile");
    if !dir.is_dir() {
        println!("skipped: ../shared/conformance/node_exporter/textfile not found");
        return;
    }
    let mut files = 0;
    for case in std::fs::read_dir(&dir).expect("read textfile dir").flatten() {
        let Ok(entries) = std::fs::read_dir(case.path()) else { continue };
        for f in entries.flatten() {
            let path = f.path();
            if path.extension().and_then(|e| e.to_str()) != Some("prom") {
                continue;
            }
            let input = std::fs::read(&path).expect("read .prom");
            let fams = parse_families(&input, Format::Text004)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!fams.is_empty(), "{}", path.display());
            files += 1;
        }
    }
    assert!(files >= 10, "only {files} .prom files");

    let input = std::fs::read(dir.join("histogram/metrics.prom")).expect("histogram fixture");
    let fams = parse_families(&input, Format::Text004).expect("parse");
    assert_eq!(fams.len(), 1);
    let model::exposition::MetricValue::Histogram { buckets, sum, count, .. } =
        &fams[0].metrics[0].value
    else {
        panic!("not a histogram: {:?}", fams[0]);
    };
    assert_eq!((buckets.len(), *sum, *count), (11, 6.71393432189e11, 1.691853e6));
    assert_eq!(buckets[7].upper_bound, 1.6384e6);
}
