//! Fuzzes the exposition parsers and the writer.
//!
//! Properties: no panic on any input; what parses writes out again and
//! parses again; in OpenMetrics, writing is idempotent after one parse
//! (write(parse(write(f))) == write(f)). The same checks run over the
//! saved inputs in tests/fuzz/exposition/ in `cargo test -p model`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::exposition::{families_to_string, parse_families, Entry, Format, Parser};

fuzz_target!(|data: &[u8]| {
    for format in [Format::Text004, Format::OpenMetrics] {
        let mut p = Parser::new(data, format);
        while let Ok(Some(e)) = p.next() {
            if let Entry::Sample(s) = e {
                let _ = s.labels();
                if let Some(ex) = &s.exemplar {
                    let _ = ex.labels();
                }
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
        let again = match parse_families(out.as_bytes(), Format::OpenMetrics) {
            Ok(f) => f,
            Err(e) => panic!("openmetrics: re-parse failed: {e}\n{out}"),
        };
        let out2 =
            families_to_string(&again, Format::OpenMetrics).expect("openmetrics: write again");
        assert_eq!(out, out2, "openmetrics: writing is not idempotent");
    }
});
