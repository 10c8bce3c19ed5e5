//! `/proc/cpuinfo` (x86 layout: `key : value` blocks separated by blank
//! lines, one per logical CPU).

use crate::error::ParseError;

/// One logical CPU's block (only the keys node_exporter reports).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuInfo {
    /// `processor`
    pub processor: String,
    /// `vendor_id`
    pub vendor_id: String,
    /// `cpu family`
    pub cpu_family: String,
    /// `model`
    pub model: String,
    /// `model name`
    pub model_name: String,
    /// `stepping`
    pub stepping: String,
    /// `microcode`
    pub microcode: String,
    /// `cache size`
    pub cache_size: String,
    /// `physical id`
    pub physical_id: String,
    /// `core id`
    pub core_id: String,
    /// `flags`, split on whitespace.
    pub flags: Vec<String>,
    /// `bugs`, split on whitespace.
    pub bugs: Vec<String>,
}

/// Parses `/proc/cpuinfo`.
pub fn parse(text: &str) -> Result<Vec<CpuInfo>, ParseError> {
    let mut out: Vec<CpuInfo> = Vec::new();
    let mut cur: Option<CpuInfo> = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if let Some(c) = cur.take() {
                out.push(c);
            }
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(ParseError::new(i + 1, format!("missing ':' in {line:?}")));
        };
        let (k, v) = (k.trim(), v.trim());
        if k == "processor" {
            if let Some(c) = cur.take() {
                out.push(c);
            }
            cur = Some(CpuInfo { processor: v.to_string(), ..CpuInfo::default() });
            continue;
        }
        let Some(c) = cur.as_mut() else {
            // Lines before the first `processor` (some architectures put a
            // header there) are not per-CPU data.
            continue;
        };
        let v = v.to_string();
        match k {
            "vendor_id" => c.vendor_id = v,
            "cpu family" => c.cpu_family = v,
            "model" => c.model = v,
            "model name" => c.model_name = v,
            "stepping" => c.stepping = v,
            "microcode" => c.microcode = v,
            "cache size" => c.cache_size = v,
            "physical id" => c.physical_id = v,
            "core id" => c.core_id = v,
            "flags" => c.flags = v.split_whitespace().map(String::from).collect(),
            "bugs" => c.bugs = v.split_whitespace().map(String::from).collect(),
            _ => {}
        }
    }
    if let Some(c) = cur.take() {
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses() {
        let v = parse("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) X\nflags\t\t: fpu aes\nbugs\t\t: cpu_meltdown\n\nprocessor\t: 1\ncore id\t\t: 3\n").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].model_name, "Intel(R) X");
        assert_eq!(v[0].flags, vec!["fpu", "aes"]);
        assert_eq!(v[1].core_id, "3");
        assert!(parse("processor 0\n").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }
    }
}
