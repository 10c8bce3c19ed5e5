//! Fuzzes the template language of `line_format` / `label_format` (Loki's
//! functions over the shared `gotemplate` engine).
//!
//! Properties: no panic on any template text; what parses renders (to
//! text or an error, within the engine's limits) against a few labels.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use logql::template::{Context, Template};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(t) = Template::parse(text) else { return };
    let labels: BTreeMap<String, String> =
        [("app", "api"), ("level", "warn"), ("n", "42"), ("json", r#"{"a":[1,2]}"#)].into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let ctx = Context { labels: &labels, line: "GET /x 200 12ms", ts: 1_700_000_000_123_456_789 };
    let _ = t.render(&ctx);
});
