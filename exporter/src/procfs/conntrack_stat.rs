//! `/proc/net/stat/nf_conntrack`: per-CPU conntrack statistics (hex), with a
//! header line naming the columns.

use super::hex_field;
use crate::error::ParseError;

/// Column name → sum over all CPUs, in header order.
pub fn parse(text: &str) -> Result<Vec<(String, u64)>, ParseError> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(ParseError::new(1, "empty file"));
    };
    let names: Vec<&str> = header.split_whitespace().collect();
    let mut sums = vec![0u64; names.len()];
    for (i, line) in lines {
        let ln = i + 1;
        let vals: Vec<&str> = line.split_whitespace().collect();
        if vals.len() != names.len() {
            return Err(ParseError::new(ln, format!("{} values for {} columns", vals.len(), names.len())));
        }
        for (sum, tok) in sums.iter_mut().zip(vals) {
            *sum = sum.wrapping_add(hex_field(tok, ln, "conntrack stat")?);
        }
    }
    Ok(names.into_iter().map(String::from).zip(sums).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sums_columns() {
        let v = parse("entries  found invalid\n00000021  00000001 00000003\n00000021 00000002 0000002f\n").unwrap();
        assert_eq!(v, vec![("entries".into(), 0x42), ("found".into(), 3), ("invalid".into(), 50)]);
        assert_eq!(parse("a b\n1\n").unwrap_err().line, 2);
        assert!(parse("").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }
    }
}
