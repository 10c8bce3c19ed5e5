//! `/proc/vmstat`: `name value` lines.

use crate::error::ParseError;

/// Parses `/proc/vmstat` into (name, raw value) pairs; values are parsed
/// by the collector only for the fields it keeps.
pub fn parse(text: &str) -> Result<Vec<(&str, &str)>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut it = line.split_whitespace();
        let Some(name) = it.next() else { continue };
        let Some(value) = it.next() else {
            return Err(ParseError::new(i + 1, format!("missing value for {name:?}")));
        };
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses() {
        assert_eq!(parse("nr_free_pages 1\npgfault 2\n").unwrap(), vec![("nr_free_pages", "1"), ("pgfault", "2")]);
        assert_eq!(parse("a 1\nb\n").unwrap_err().line, 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }
    }
}
