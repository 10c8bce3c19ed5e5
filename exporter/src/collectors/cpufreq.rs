//! `cpufreq`: CPU frequencies from `/sys/devices/system/cpu/cpu*/cpufreq`.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::root::{list_dir, Root};

pub(crate) struct CpuFreq;

/// (file, metric, help); files hold kHz.
const FILES: [(&str, &str, &str); 6] = [
    ("cpuinfo_cur_freq", "node_cpu_frequency_hertz", "Current cpu thread frequency in hertz."),
    ("cpuinfo_max_freq", "node_cpu_frequency_max_hertz", "Maximum cpu thread frequency in hertz."),
    ("cpuinfo_min_freq", "node_cpu_frequency_min_hertz", "Minimum cpu thread frequency in hertz."),
    ("scaling_cur_freq", "node_cpu_scaling_frequency_hertz", "Current scaled CPU thread frequency in hertz."),
    ("scaling_max_freq", "node_cpu_scaling_frequency_max_hertz", "Maximum scaled CPU thread frequency in hertz."),
    ("scaling_min_freq", "node_cpu_scaling_frequency_min_hertz", "Minimum scaled CPU thread frequency in hertz."),
];

impl Collector for CpuFreq {
    fn name(&self) -> &'static str {
        "cpufreq"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let dir = root.sys_path("devices/system/cpu");
        for name in list_dir(&dir)? {
            let Some(num) = name.strip_prefix("cpu") else { continue };
            if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let freq = dir.join(&name).join("cpufreq");
            if !freq.is_dir() {
                continue;
            }
            for (file, metric, help) in FILES {
                match root.read_u64(&freq.join(file)) {
                    Ok(khz) => out.gauge(metric, help, &[("cpu", num)], khz as f64 * 1000.0),
                    // Each file is optional (cpuinfo_cur_freq needs root, some
                    // drivers lack scaling files).
                    Err(e) if e.is_not_found() => {}
                    Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::PermissionDenied => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}
