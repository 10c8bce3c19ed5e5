//! Test support: locating the shared fixtures, the ttar unpacker, and
//! exposition-text helpers for comparisons.

pub mod ttar;

use std::collections::BTreeMap;
use std::path::PathBuf;

use regex_lite::Regex;

/// `shared/conformance/node_exporter/v1.5.0` beside the workspace, or None
/// (after printing a skip line) when this is a clone without `../shared`.
pub fn fixtures() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/node_exporter/v1.5.0");
    if p.is_dir() {
        Some(p)
    } else {
        println!("skipped: ../shared/conformance/node_exporter/v1.5.0 not found");
        None
    }
}

/// One family of exposition text: its HELP and TYPE lines and samples.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TextFamily {
    pub help: Option<String>,
    pub kind: Option<String>,
    pub samples: Vec<String>,
}

/// Splits text format 0.0.4 into families by name (the name in HELP/TYPE
/// lines; samples belong to the family announced last, as node_exporter
/// prints them).
pub fn split_families(text: &str) -> BTreeMap<String, TextFamily> {
    let mut out: BTreeMap<String, TextFamily> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("").to_string();
            out.entry(name.clone()).or_default().help = Some(line.to_string());
            current = name;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap_or("").to_string();
            out.entry(name.clone()).or_default().kind = Some(line.to_string());
            current = name;
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..name_end];
            let fam = if name == current || name.starts_with(&current) && !current.is_empty() {
                current.clone()
            } else {
                name.to_string()
            };
            out.entry(fam).or_default().samples.push(line.to_string());
        }
    }
    out
}

/// The label names of a sample line, sorted.
pub fn label_names(sample: &str) -> Vec<String> {
    let Some(open) = sample.find('{') else { return Vec::new() };
    let Some(close) = sample.rfind('}') else { return Vec::new() };
    let body = &sample[open + 1..close];
    let mut names = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in body.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
        } else if c == '"' {
            in_quotes = true;
        } else if c == '=' {
            names.push(body[start..i].trim_start_matches(',').trim().to_string());
        } else if c == ',' {
            start = i + 1;
        }
    }
    names.sort();
    names
}

/// Which collector a node_exporter family belongs to (None: one we do not
/// implement).
pub fn owner(family: &str) -> Option<&'static str> {
    let f = family;
    let p = |s: &str| f.starts_with(s);
    Some(match () {
        _ if p("node_nf_conntrack_") => "conntrack",
        _ if p("node_cpu_frequency_") || p("node_cpu_scaling_frequency_") => "cpufreq",
        _ if p("node_cpu_") => "cpu",
        _ if p("node_disk_") => "diskstats",
        _ if p("node_entropy_") => "entropy",
        _ if p("node_filefd_") => "filefd",
        _ if p("node_filesystem_") => "filesystem",
        _ if p("node_hwmon_") => "hwmon",
        _ if ["node_load1", "node_load5", "node_load15"].contains(&f) => "loadavg",
        _ if p("node_memory_numa_") => return None,
        _ if p("node_memory_") => "meminfo",
        _ if Regex::new("^node_network_(receive|transmit)_[a-z]+_total$").ok()?.is_match(f) => "netdev",
        _ if p("node_netstat_") => "netstat",
        _ if p("node_os_") => "os",
        _ if p("node_pressure_") => "pressure",
        _ if p("node_schedstat_") => "schedstat",
        _ if p("node_sockstat_") => "sockstat",
        _ if p("node_softnet_") => "softnet",
        _ if [
            "node_intr_total",
            "node_context_switches_total",
            "node_forks_total",
            "node_boot_time_seconds",
            "node_procs_running",
            "node_procs_blocked",
            "node_softirqs_total",
        ]
        .contains(&f) =>
        {
            "stat"
        }
        _ if p("node_textfile_") || p("testmetric") => "textfile",
        _ if p("node_thermal_zone_") || p("node_cooling_device_") => "thermal_zone",
        _ if p("node_timex_") => "timex",
        _ if p("node_time_") => "time",
        _ if p("node_uname_") => "uname",
        _ if p("node_vmstat_") => "vmstat",
        _ => return None,
    })
}

