//! `/proc/diskstats`: per block device I/O counters.

use super::u64_field;
use crate::error::ParseError;

/// One device line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStat {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Device name.
    pub device: String,
    /// The counters after the name, in kernel order (11, 15 or 17 of them).
    pub values: Vec<u64>,
}

/// Parses `/proc/diskstats`.
pub fn parse(text: &str) -> Result<Vec<DiskStat>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() < 14 {
            return Err(ParseError::new(ln, format!("want at least 14 fields, got {}", f.len())));
        }
        let major = u64_field(f[0], ln, "major")?;
        let minor = u64_field(f[1], ln, "minor")?;
        let mut values = Vec::with_capacity(f.len() - 3);
        for tok in &f[3..] {
            values.push(u64_field(tok, ln, "counter")?);
        }
        out.push(DiskStat {
            major: u32::try_from(major).map_err(|_| ParseError::new(ln, "major out of range"))?,
            minor: u32::try_from(minor).map_err(|_| ParseError::new(ln, "minor out of range"))?,
            device: f[2].to_string(),
            values,
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
        let v = parse("   8       0 sda 25354637 34367663 1003346126 18492372 28444756 11134226 505697032 63877960 0 9653880 82621804\n").unwrap();
        assert_eq!(v[0].device, "sda");
        assert_eq!(v[0].major, 8);
        assert_eq!(v[0].values.len(), 11);
        assert_eq!(v[0].values[10], 82621804);
        assert!(parse("8 0 sda 1 2\n").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }
    }
}
