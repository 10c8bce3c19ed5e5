//! `/proc/pressure/{cpu,io,memory}`: pressure stall information.

use super::u64_field;
use crate::error::ParseError;

/// Total stall times in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    /// `some ... total=` (µs).
    pub some_total: Option<u64>,
    /// `full ... total=` (µs).
    pub full_total: Option<u64>,
}

/// Parses one pressure file.
pub fn parse(text: &str) -> Result<Pressure, ParseError> {
    let mut p = Pressure::default();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let mut it = line.split_whitespace();
        let Some(kind) = it.next() else { continue };
        let mut total = None;
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(ParseError::new(ln, format!("malformed field {kv:?}")));
            };
            if k == "total" {
                total = Some(u64_field(v, ln, "total")?);
            }
        }
        let total = total.ok_or_else(|| ParseError::new(ln, "missing total="))?;
        match kind {
            "some" => p.some_total = Some(total),
            "full" => p.full_total = Some(total),
            other => return Err(ParseError::new(ln, format!("unknown pressure kind {other:?}"))),
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses() {
        let p = parse("some avg10=0.18 avg60=0.34 avg300=0.10 total=159886802\nfull avg10=0.18 avg60=0.34 avg300=0.10 total=159229614\n").unwrap();
        assert_eq!(p.some_total, Some(159886802));
        assert_eq!(p.full_total, Some(159229614));
        assert!(parse("some avg10=1\n").is_err());
        assert!(parse("half total=1\n").is_err());
        assert!(parse("some total\n").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }
    }
}
