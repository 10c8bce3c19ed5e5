//! The OpenMetrics parser test suite (../shared/conformance/openmetrics):
//! every case must parse or fail as its test.json says.

use std::path::{Path, PathBuf};

use model::exposition::{parse_families, Format};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/openmetrics/parsers")
}

#[test]
fn openmetrics_parser_suite() {
    let dir = suite_dir();
    if !dir.is_dir() {
        println!("skipped: ../shared/conformance/openmetrics/parsers not found");
        return;
    }
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read suite dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("test.json").is_file())
        .collect();
    cases.sort();
    let (mut passed, mut failed) = (0, Vec::new());
    for case in &cases {
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(case.join("test.json")).expect("read test.json"))
                .expect("test.json is JSON");
        assert_eq!(json["type"], "text", "{name}: only text cases exist");
        let file = json["file"].as_str().unwrap_or("metrics");
        let should_parse = json["shouldParse"].as_bool().expect("shouldParse is a bool");
        let input = std::fs::read(case.join(file)).expect("read metrics");
        let result = parse_families(&input, Format::OpenMetrics);
        if result.is_ok() == should_parse {
            passed += 1;
        } else {
            match &result {
                Ok(_) => println!("FAIL {name}: parsed, but should fail"),
                Err(e) => println!("FAIL {name}: should parse, got: {e}"),
            }
            failed.push(name);
        }
    }
    println!("openmetrics: {passed} passed, {} failed", failed.len());
    assert_eq!(cases.len(), 211, "the suite has 211 cases");
    assert!(failed.is_empty(), "failing cases: {failed:?}");
}

/// Failing cases must fail with a located, readable error, never a panic.
#[test]
fn openmetrics_errors_have_positions() {
    let dir = suite_dir();
    if !dir.is_dir() {
        println!("skipped: ../shared/conformance/openmetrics/parsers not found");
        return;
    }
    for entry in std::fs::read_dir(&dir).expect("read suite dir").flatten() {
        let input = match std::fs::read(entry.path().join("metrics")) {
            Ok(i) => i,
            Err(_) => continue,
        };
        if let Err(e) = parse_families(&input, Format::OpenMetrics) {
            assert!(e.line >= 1 && e.column >= 1, "{}: {e}", entry.path().display());
            assert!(e.to_string().starts_with(&format!("line {}, column {}: ", e.line, e.column)));
        }
    }
}
