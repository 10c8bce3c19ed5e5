//! `cpu`: CPU times from `/proc/stat`, thermal throttling and isolation
//! from sysfs, and (with `--collector.cpu.info`) `/proc/cpuinfo`.

use std::collections::BTreeMap;

use regex_lite::Regex;

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::procfs::{cpuinfo, stat};
use crate::root::{list_dir, Root};
use crate::sysfs::cpulist;

/// USER_HZ: the kernel reports CPU times in 1/100 s.
const USER_HZ: f64 = 100.0;

pub(crate) struct Cpu {
    pub(crate) info: bool,
    pub(crate) flags_include: Option<Regex>,
    pub(crate) bugs_include: Option<Regex>,
}

impl Collector for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        if self.info {
            self.update_info(root, out)?;
        }
        self.update_stat(root, out)?;
        update_isolated(root, out)?;
        update_thermal_throttle(root, out)?;
        Ok(())
    }
}

impl Cpu {
    fn update_info(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let infos = root.parse_proc("cpuinfo", cpuinfo::parse)?;
        for c in &infos {
            out.gauge(
                "node_cpu_info",
                "CPU information from /proc/cpuinfo.",
                &[
                    ("package", &c.physical_id),
                    ("core", &c.core_id),
                    ("cpu", &c.processor),
                    ("vendor", &c.vendor_id),
                    ("family", &c.cpu_family),
                    ("model", &c.model),
                    ("model_name", &c.model_name),
                    ("microcode", &c.microcode),
                    ("stepping", &c.stepping),
                    ("cachesize", &c.cache_size),
                ],
                1.0,
            );
        }
        let Some(first) = infos.first() else { return Ok(()) };
        if let Some(re) = &self.flags_include {
            for flag in first.flags.iter().filter(|f| re.is_match(f)) {
                out.gauge(
                    "node_cpu_flag_info",
                    "The `flags` field of CPU information from /proc/cpuinfo taken from the first core.",
                    &[("flag", flag)],
                    1.0,
                );
            }
        }
        if let Some(re) = &self.bugs_include {
            for bug in first.bugs.iter().filter(|f| re.is_match(f)) {
                out.gauge(
                    "node_cpu_bug_info",
                    "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.",
                    &[("bug", bug)],
                    1.0,
                );
            }
        }
        Ok(())
    }

    fn update_stat(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let st = root.parse_proc("stat", stat::parse)?;
        for (n, t) in &st.cpus {
            let cpu = n.to_string();
            for (mode, ticks) in [
                ("user", t.user),
                ("nice", t.nice),
                ("system", t.system),
                ("idle", t.idle),
                ("iowait", t.iowait),
                ("irq", t.irq),
                ("softirq", t.softirq),
                ("steal", t.steal),
            ] {
                out.counter(
                    "node_cpu_seconds_total",
                    "Seconds the CPUs spent in each mode.",
                    &[("cpu", &cpu), ("mode", mode)],
                    ticks as f64 / USER_HZ,
                );
            }
            for (mode, ticks) in [("user", t.guest), ("nice", t.guest_nice)] {
                out.counter(
                    "node_cpu_guest_seconds_total",
                    "Seconds the CPUs spent in guests (VMs) for each mode.",
                    &[("cpu", &cpu), ("mode", mode)],
                    ticks as f64 / USER_HZ,
                );
            }
        }
        Ok(())
    }
}

fn update_isolated(root: &Root, out: &mut Sink) -> Result<(), Error> {
    let path = root.sys_path("devices/system/cpu/isolated");
    let text = match root.read(&path) {
        Ok(t) => t,
        // Kernels without isolcpus support have no such file.
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    };
    let cpus = cpulist::parse(&text).map_err(|e| Error::parse(&path, e))?;
    for c in cpus {
        out.gauge(
            "node_cpu_isolated",
            "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
            &[("cpu", &c.to_string())],
            1.0,
        );
    }
    Ok(())
}

/// Per core and per package throttle counts. Each (package, core) and each
/// package is read once, from its first CPU that has the file.
fn update_thermal_throttle(root: &Root, out: &mut Sink) -> Result<(), Error> {
    let dir = root.sys_path("devices/system/cpu");
    let Ok(names) = list_dir(&dir) else { return Ok(()) };
    let mut package: BTreeMap<u64, u64> = BTreeMap::new();
    let mut core: BTreeMap<(u64, u64), Option<u64>> = BTreeMap::new();
    for name in names {
        let Some(num) = name.strip_prefix("cpu") else { continue };
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cpu = dir.join(&name);
        let Ok(pkg) = root.read_u64(&cpu.join("topology/physical_package_id")) else { continue };
        let Ok(core_id) = root.read_u64(&cpu.join("topology/core_id")) else { continue };
        core.entry((pkg, core_id))
            .or_insert_with(|| root.read_u64(&cpu.join("thermal_throttle/core_throttle_count")).ok());
        if let std::collections::btree_map::Entry::Vacant(v) = package.entry(pkg) {
            if let Ok(c) = root.read_u64(&cpu.join("thermal_throttle/package_throttle_count")) {
                v.insert(c);
            }
        }
    }
    for ((pkg, core_id), count) in core {
        let Some(count) = count else { continue };
        out.counter(
            "node_cpu_core_throttles_total",
            "Number of times this CPU core has been throttled.",
            &[("package", &pkg.to_string()), ("core", &core_id.to_string())],
            count as f64,
        );
    }
    for (pkg, count) in package {
        out.counter(
            "node_cpu_package_throttles_total",
            "Number of times this CPU package has been throttled.",
            &[("package", &pkg.to_string())],
            count as f64,
        );
    }
    Ok(())
}
