//! Fuzzes the LogQL parser.
//!
//! Properties: no panic on any input (the nesting limit holds); what parses
//! displays as text that parses again to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(expr) = logql::parse(text) {
        let shown = expr.to_string();
        match logql::parse(&shown) {
            Ok(again) => assert_eq!(again.to_string(), shown, "display is not stable for {text:?}"),
            Err(e) => panic!("displayed query {shown:?} (from {text:?}) does not parse: {e}"),
        }
    }
});
