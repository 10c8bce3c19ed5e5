//! Replays the fuzz target's properties (tsdb/model/fuzz) over saved inputs
//! (tests/fuzz/exposition/*, crash reproducers go there) and over the
//! OpenMetrics suite and its single-byte mutations.

use std::path::Path;

use model::exposition::{families_to_string, parse_families, Entry, Format, Parser};

/// The fuzz target's checks; panics on a violation.
fn check(data: &[u8]) {
    for format in [Format::Text004, Format::OpenMetrics] {
        let mut p = Parser::new(data, format);
        while let Ok(Some(e)) = p.next() {
            if let Entry::Sample(s) = e {
                let _ = s.labels();
            }
        }
    }
    if let Ok(f) = parse_families(data, Format::Text004) {
        let out = families_to_string(&f, Format::Text004).expect("text: write what was parsed");
        if let Err(e) = parse_families(out.as_bytes(), Format::Text004) {
            panic!("text: re-parse failed: {e}\n{out}");
        }
    }
    if let Ok(f) = parse_families(data, Format::OpenMetrics) {
        let out = families_to_string(&f, Format::OpenMetrics)
            .expect("openmetrics: write what was parsed");
        let again = parse_families(out.as_bytes(), Format::OpenMetrics)
            .unwrap_or_else(|e| panic!("openmetrics: re-parse failed: {e}\n{out}"));
        let out2 = families_to_string(&again, Format::OpenMetrics).expect("write again");
        assert_eq!(out, out2, "openmetrics: writing is not idempotent");
    }
}

#[test]
fn saved_fuzz_inputs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/exposition");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fuzz/exposition exists").flatten() {
        let data = std::fs::read(entry.path()).expect("read input");
        check(&data);
        n += 1;
    }
    assert!(n > 0, "no saved inputs in {}", dir.display());
}

#[test]
fn suite_and_mutations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/openmetrics/parsers");
    if !dir.is_dir() {
        println!("skipped: ../shared/conformance/openmetrics/parsers not found");
        return;
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("read suite").flatten() {
        let Ok(data) = std::fs::read(entry.path().join("metrics")) else { continue };
        check(&data);
        // Deterministic mutations: each position gets a few structural bytes.
        for (i, b) in [b' ', b'"', b'\n', b'{', b'#', b'0'].iter().enumerate() {
            for pos in (i..data.len()).step_by(7) {
                let mut d = data.clone();
                d[pos] = *b;
                check(&d);
                checked += 1;
            }
        }
    }
    assert!(checked > 1000);
}
