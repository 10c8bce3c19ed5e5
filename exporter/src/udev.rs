//! The udev database (`/run/udev/data/b<major>:<minor>`): `E:KEY=VALUE`
//! lines carry the device properties diskstats reports.

use std::collections::HashMap;

/// Parses a udev database file into its `E:` properties. Other line kinds
/// (`S:`, `L:`, `I:`, `G:`, ...) are skipped; malformed lines are ignored
/// as udev itself does.
pub fn parse_properties(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if let Some(kv) = line.strip_prefix("E:") {
            if let Some((k, v)) = kv.split_once('=') {
                out.insert(k.to_string(), v.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses() {
        let p = parse_properties("S:disk/by-id/x\nE:ID_MODEL=SuperMicro_SSD\nE:ID_FS_VERSION=LVM2 001\nE:BAD\n");
        assert_eq!(p.get("ID_MODEL").map(String::as_str), Some("SuperMicro_SSD"));
        assert_eq!(p.get("ID_FS_VERSION").map(String::as_str), Some("LVM2 001"));
        assert_eq!(p.len(), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse_properties(&s);
        }
    }
}
