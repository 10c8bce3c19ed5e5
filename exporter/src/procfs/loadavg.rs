//! `/proc/loadavg`: the 1, 5 and 15 minute load averages.

use super::f64_field;
use crate::error::ParseError;

/// Parses `/proc/loadavg` into `[load1, load5, load15]`.
pub fn parse(text: &str) -> Result<[f64; 3], ParseError> {
    let f: Vec<&str> = text.split_whitespace().collect();
    if f.len() < 3 {
        return Err(ParseError::new(1, format!("want at least 3 fields, got {}", f.len())));
    }
    Ok([f64_field(f[0], 1, "load1")?, f64_field(f[1], 1, "load5")?, f64_field(f[2], 1, "load15")?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses() {
        assert_eq!(parse("0.21 0.37 0.39 1/719 19737\n").unwrap(), [0.21, 0.37, 0.39]);
        assert!(parse("0.21 0.37\n").is_err());
        assert!(parse("a b c\n").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }
    }
}
