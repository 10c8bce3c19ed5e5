//! `/proc/sys/fs/file-nr`: allocated, unused, maximum file handles.

use super::u64_field;
use crate::error::ParseError;

/// Parses `file-nr` into (allocated, maximum).
pub fn parse(text: &str) -> Result<(u64, u64), ParseError> {
    let f: Vec<&str> = text.split_whitespace().collect();
    if f.len() != 3 {
        return Err(ParseError::new(1, format!("want 3 fields, got {}", f.len())));
    }
    Ok((u64_field(f[0], 1, "allocated")?, u64_field(f[2], 1, "maximum")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses() {
        assert_eq!(parse("1024\t0\t1631329\n").unwrap(), (1024, 1631329));
        assert!(parse("1 2\n").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }
    }
}
