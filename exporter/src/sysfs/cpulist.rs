//! CPU list files (`/sys/devices/system/cpu/isolated`, `online`, ...):
//! comma separated numbers and inclusive ranges, e.g. `0-3,8,10-11`.

use crate::error::ParseError;

/// Upper bound on the CPUs one list may name, so a hostile `0-4294967295`
/// cannot allocate gigabytes.
pub const MAX_CPUS: u32 = 1 << 16;

/// Parses a CPU list into sorted, de-duplicated CPU numbers.
pub fn parse(text: &str) -> Result<Vec<u32>, ParseError> {
    let text = text.trim();
    let mut out = Vec::new();
    if text.is_empty() {
        return Ok(out);
    }
    for part in text.split(',') {
        let part = part.trim();
        let bad = || ParseError::new(1, format!("bad cpu list element {part:?}"));
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().map_err(|_| bad())?, b.parse::<u32>().map_err(|_| bad())?),
            None => {
                let v = part.parse::<u32>().map_err(|_| bad())?;
                (v, v)
            }
        };
        if lo > hi || hi >= MAX_CPUS {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses() {
        assert_eq!(parse("1,3-5,9\n").unwrap(), vec![1, 3, 4, 5, 9]);
        assert_eq!(parse("\n").unwrap(), Vec::<u32>::new());
        assert!(parse("5-3").is_err());
        assert!(parse("a").is_err());
        assert!(parse("0-4294967295").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in "[0-9,\\- a]{0,30}") {
            let _ = parse(&s);
        }
    }
}
