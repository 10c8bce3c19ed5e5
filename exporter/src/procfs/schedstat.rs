//! `/proc/schedstat`: per-CPU run and wait times.

use super::u64_field;
use crate::error::ParseError;

/// One `cpuN` line's last three fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSched {
    /// The N of `cpuN`, as written.
    pub cpu: String,
    /// Time spent running (ns).
    pub running_ns: u64,
    /// Time spent waiting to run (ns).
    pub waiting_ns: u64,
    /// Timeslices run.
    pub timeslices: u64,
}

/// Parses `/proc/schedstat`.
pub fn parse(text: &str) -> Result<Vec<CpuSched>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(key) = f.first() else { continue };
        let Some(num) = key.strip_prefix("cpu") else { continue };
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::new(ln, format!("bad cpu key {key:?}")));
        }
        if f.len() < 4 {
            return Err(ParseError::new(ln, "cpu line needs at least 3 values"));
        }
        let n = f.len();
        out.push(CpuSched {
            cpu: num.to_string(),
            running_ns: u64_field(f[n - 3], ln, "running")?,
            waiting_ns: u64_field(f[n - 2], ln, "waiting")?,
            timeslices: u64_field(f[n - 1], ln, "timeslices")?,
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
        let v = parse("version 15\ntimestamp 1\ncpu0 4 0 3 2 3 2 2045936778163039 343796328169361 4767485306\ndomain0 1 2\n").unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].cpu, "0");
        assert_eq!(v[0].running_ns, 2045936778163039);
        assert_eq!(v[0].waiting_ns, 343796328169361);
        assert_eq!(v[0].timeslices, 4767485306);
        assert!(parse("cpu0 1 2\n").is_err());
        assert!(parse("cpux 1 2 3\n").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }
    }
}
