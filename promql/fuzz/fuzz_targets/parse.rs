//! Fuzzes the PromQL parser and printer.
//!
//! Properties: no panic on any input (length and depth limits hold); what
//! parses prints to text that parses to the same AST.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(expr) = promql::parse(text) {
        let printed = promql::print(&expr);
        match promql::parse(&printed) {
            Ok(again) => assert_eq!(promql::print(&again), printed, "printing is not stable for {text:?}"),
            Err(e) => panic!("printed query {printed:?} (from {text:?}) does not parse: {e}"),
        }
    }
});
