//! `/proc/net/softnet_stat`: per-CPU packet processing counters (hex).

use super::hex_field;
use crate::error::ParseError;

/// One CPU's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftnetRow {
    /// Packets processed.
    pub processed: u64,
    /// Packets dropped (backlog full).
    pub dropped: u64,
    /// Times net_rx_action ran out of budget.
    pub time_squeezed: u64,
}

/// Parses the file; row i belongs to CPU i.
pub fn parse(text: &str) -> Result<Vec<SoftnetRow>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() < 3 {
            return Err(ParseError::new(ln, format!("want at least 3 columns, got {}", f.len())));
        }
        out.push(SoftnetRow {
            processed: hex_field(f[0], ln, "processed")?,
            dropped: hex_field(f[1], ln, "dropped")?,
            time_squeezed: hex_field(f[2], ln, "time_squeeze")?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses() {
        let v = parse("00049279 00000000 00000001 00000000\n000dfb82 00000029 0000000a 00000000\n").unwrap();
        assert_eq!(v[1], SoftnetRow { processed: 0xdfb82, dropped: 0x29, time_squeezed: 10 });
        assert!(parse("1 2\n").is_err());
        assert!(parse("zz 1 2\n").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }
    }
}
