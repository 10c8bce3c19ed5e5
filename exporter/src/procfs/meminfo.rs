//! `/proc/meminfo` (and the per-node `meminfo` files' shape).

use super::f64_field;
use crate::error::ParseError;

/// One line: the key as node_exporter names it (`Active(anon)` becomes
/// `Active_anon`, `_bytes` appended when the value had a `kB` unit), and
/// the value (already multiplied by 1024 for `kB`).
#[derive(Debug, Clone, PartialEq)]
pub struct MemEntry {
    /// Metric suffix, e.g. `MemTotal_bytes` or `HugePages_Total`.
    pub key: String,
    /// Value in bytes (or a count when the line had no unit).
    pub value: f64,
}

/// Parses `/proc/meminfo`.
pub fn parse(text: &str) -> Result<Vec<MemEntry>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        let raw = parts[0].strip_suffix(':').unwrap_or(parts[0]);
        let key = rename_parens(raw);
        if parts.len() < 2 {
            return Err(ParseError::new(ln, format!("invalid line: {line:?}")));
        }
        let mut value = f64_field(parts[1], ln, raw)?;
        let key = match parts.len() {
            2 => key,
            3 => {
                value *= 1024.0;
                format!("{key}_bytes")
            }
            _ => return Err(ParseError::new(ln, format!("invalid line: {line:?}"))),
        };
        out.push(MemEntry { key, value });
    }
    Ok(out)
}

/// `Active(anon)` → `Active_anon`.
fn rename_parens(key: &str) -> String {
    match (key.find('('), key.rfind(')')) {
        (Some(a), Some(b)) if a < b => format!("{}_{}{}", &key[..a], &key[a + 1..b], &key[b + 1..]),
        _ => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses() {
        let v = parse("MemTotal:        3742148 kB\nActive(anon):    2020004 kB\n\nHugePages_Total:       0\n").unwrap();
        assert_eq!(v[0], MemEntry { key: "MemTotal_bytes".into(), value: 3742148.0 * 1024.0 });
        assert_eq!(v[1].key, "Active_anon_bytes");
        assert_eq!(v[2], MemEntry { key: "HugePages_Total".into(), value: 0.0 });
    }

    #[test]
    fn rejects_bad_lines() {
        assert_eq!(parse("A: 1\nB: x kB\n").unwrap_err().line, 2);
        assert!(parse("A: 1 kB extra\n").is_err());
        assert!(parse("A:\n").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }
    }
}
