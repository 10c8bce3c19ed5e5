//! One module per node_exporter collector.

mod conntrack;
mod cpu;
mod cpufreq;
mod diskstats;
mod entropy;
mod filefd;
mod filesystem;
mod hwmon;
mod loadavg;
mod meminfo;
mod netdev;
mod netstat;
mod os;
mod pressure;
mod schedstat;
mod sockstat;
mod softnet;
mod stat;
mod textfile;
mod thermal_zone;
mod time;
mod timex;
mod uname;
mod vmstat;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use regex_lite::Regex;

use crate::collector::Collector;
use crate::error::Error;

/// Names of all collectors this crate implements, sorted. All of them are
/// enabled by default in node_exporter 1.5 on Linux.
pub const ALL: &[&str] = &[
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "entropy",
    "filefd",
    "filesystem",
    "hwmon",
    "loadavg",
    "meminfo",
    "netdev",
    "netstat",
    "os",
    "pressure",
    "schedstat",
    "sockstat",
    "softnet",
    "stat",
    "textfile",
    "thermal_zone",
    "time",
    "timex",
    "uname",
    "vmstat",
];

/// Whether node_exporter 1.5 enables a collector by default.
pub fn default_enabled(name: &str) -> bool {
    ALL.contains(&name)
}

/// Options of individual collectors, named after node_exporter's flags.
/// `Default` gives node_exporter 1.5's defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--collector.cpu.info`: report `node_cpu_info` (and flag/bug info).
    pub cpu_info: bool,
    /// `--collector.cpu.info.flags-include`.
    pub cpu_info_flags_include: Option<String>,
    /// `--collector.cpu.info.bugs-include`.
    pub cpu_info_bugs_include: Option<String>,
    /// `--collector.stat.softirq`: report `node_softirqs_total`.
    pub stat_softirq: bool,
    /// `--collector.diskstats.device-exclude`.
    pub diskstats_device_exclude: String,
    /// `--collector.diskstats.device-include` (overrides the exclude).
    pub diskstats_device_include: Option<String>,
    /// `--collector.filesystem.mount-points-exclude`.
    pub filesystem_mount_points_exclude: String,
    /// `--collector.filesystem.fs-types-exclude`.
    pub filesystem_fs_types_exclude: String,
    /// `--collector.netdev.device-include`.
    pub netdev_device_include: Option<String>,
    /// `--collector.netdev.device-exclude`.
    pub netdev_device_exclude: Option<String>,
    /// `--collector.netdev.netlink`: counters over rtnetlink (default) or,
    /// when false, from `class/net/*/statistics` under sysfs.
    pub netdev_netlink: bool,
    /// `--collector.netstat.fields`.
    pub netstat_fields: String,
    /// `--collector.vmstat.fields`.
    pub vmstat_fields: String,
    /// `--collector.textfile.directory` (empty: nothing read).
    pub textfile_directory: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cpu_info: false,
            cpu_info_flags_include: None,
            cpu_info_bugs_include: None,
            stat_softirq: false,
            diskstats_device_exclude: "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$".into(),
            diskstats_device_include: None,
            filesystem_mount_points_exclude:
                "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)".into(),
            filesystem_fs_types_exclude: "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$".into(),
            netdev_device_include: None,
            netdev_device_exclude: None,
            netdev_netlink: true,
            netstat_fields: "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$".into(),
            vmstat_fields: "^(oom_kill|pgpg|pswp|pg.*fault).*".into(),
            textfile_directory: None,
        }
    }
}

pub(crate) fn regex(option: &'static str, pattern: &str) -> Result<Regex, Error> {
    Regex::new(pattern).map_err(|source| Error::Regex { option, source })
}

/// A `--collector.<name>.fields` filter that remembers its answer for each
/// field name. The names come from kernel files (`/proc/net/netstat`,
/// `/proc/vmstat`) whose fields and their order do not change while
/// running, so it keeps the last scrape's names in order: after the first
/// scrape a field costs one string comparison rather than a regex match
/// (regex-lite runs a backtracker or PikeVM, no DFA, and netstat alone has
/// a few hundred fields). The regex itself is compiled only while a scrape
/// meets names out of the remembered order: its match cache (tens of KB
/// for the default netstat pattern) is not kept between scrapes.
pub(crate) struct FieldFilter {
    option: &'static str,
    pattern: String,
    /// The names of the last scrape, in order, with their answers.
    order: Mutex<Vec<(Box<str>, bool)>>,
}

impl FieldFilter {
    /// Most names remembered: a kernel has a few hundred; a hostile or
    /// odd file beyond this is still filtered correctly, just not cached.
    const MAX_REMEMBERED: usize = 4096;

    /// Checks that `pattern` compiles (the error names `--option`).
    pub(crate) fn new(option: &'static str, pattern: &str) -> Result<Self, Error> {
        regex(option, pattern)?;
        Ok(FieldFilter { option, pattern: pattern.to_string(), order: Mutex::new(Vec::new()) })
    }

    /// A matcher for one scrape, which must ask about the names in file
    /// order (it holds the filter's lock).
    pub(crate) fn matcher(&self) -> FieldMatcher<'_> {
        // A poisoned lock only means another scrape panicked mid-update;
        // the list holds complete entries either way.
        FieldMatcher { filter: self, order: self.order.lock().unwrap_or_else(|p| p.into_inner()), next: 0, regex: None }
    }
}

/// [`FieldFilter`] during one scrape; the regex, if a name needed it, is
/// dropped with the matcher.
pub(crate) struct FieldMatcher<'a> {
    filter: &'a FieldFilter,
    order: MutexGuard<'a, Vec<(Box<str>, bool)>>,
    /// Index in `order` of the name expected next.
    next: usize,
    regex: Option<Regex>,
}

impl FieldMatcher<'_> {
    /// Whether the regex matches `name` (unanchored, as Go's `MatchString`).
    pub(crate) fn is_match(&mut self, name: &str) -> Result<bool, Error> {
        if let Some((expected, m)) = self.order.get(self.next) {
            if **expected == *name {
                self.next += 1;
                return Ok(*m);
            }
        }
        // A name out of the remembered order (first scrape, or the file
        // changed): ask the regex, and remember the new order from here.
        let m = match &self.regex {
            Some(r) => r.is_match(name),
            None => {
                let r = regex(self.filter.option, &self.filter.pattern)?;
                let m = r.is_match(name);
                self.regex = Some(r);
                m
            }
        };
        if self.next < FieldFilter::MAX_REMEMBERED {
            self.order.truncate(self.next);
            self.order.push((name.into(), m));
            self.next += 1;
        }
        Ok(m)
    }
}

fn opt_regex(option: &'static str, pattern: &Option<String>) -> Result<Option<Regex>, Error> {
    pattern.as_deref().filter(|p| !p.is_empty()).map(|p| regex(option, p)).transpose()
}

/// Builds the collector called `name` with `opts`.
pub fn build(name: &str, opts: &Options) -> Result<Box<dyn Collector>, Error> {
    Ok(match name {
        "conntrack" => Box::new(conntrack::Conntrack),
        "cpu" => Box::new(cpu::Cpu {
            info: opts.cpu_info,
            flags_include: opt_regex("collector.cpu.info.flags-include", &opts.cpu_info_flags_include)?,
            bugs_include: opt_regex("collector.cpu.info.bugs-include", &opts.cpu_info_bugs_include)?,
        }),
        "cpufreq" => Box::new(cpufreq::CpuFreq),
        "diskstats" => Box::new(diskstats::DiskStats {
            exclude: regex("collector.diskstats.device-exclude", &opts.diskstats_device_exclude)?,
            include: opt_regex("collector.diskstats.device-include", &opts.diskstats_device_include)?,
        }),
        "entropy" => Box::new(entropy::Entropy),
        "filefd" => Box::new(filefd::FileFd),
        "filesystem" => Box::new(filesystem::Filesystem {
            mount_points_exclude: regex(
                "collector.filesystem.mount-points-exclude",
                &opts.filesystem_mount_points_exclude,
            )?,
            fs_types_exclude: regex("collector.filesystem.fs-types-exclude", &opts.filesystem_fs_types_exclude)?,
        }),
        "hwmon" => Box::new(hwmon::Hwmon),
        "loadavg" => Box::new(loadavg::LoadAvg),
        "meminfo" => Box::new(meminfo::MemInfo),
        "netdev" => Box::new(netdev::NetDev {
            include: opt_regex("collector.netdev.device-include", &opts.netdev_device_include)?,
            exclude: opt_regex("collector.netdev.device-exclude", &opts.netdev_device_exclude)?,
            netlink: opts.netdev_netlink,
        }),
        "netstat" => Box::new(netstat::NetStat { fields: FieldFilter::new("collector.netstat.fields", &opts.netstat_fields)? }),
        "os" => Box::new(os::Os),
        "pressure" => Box::new(pressure::Pressure),
        "schedstat" => Box::new(schedstat::SchedStat),
        "sockstat" => Box::new(sockstat::SockStat),
        "softnet" => Box::new(softnet::Softnet),
        "stat" => Box::new(stat::Stat { softirq: opts.stat_softirq }),
        "textfile" => Box::new(textfile::Textfile { directory: opts.textfile_directory.clone() }),
        "thermal_zone" => Box::new(thermal_zone::ThermalZone),
        "time" => Box::new(time::Time),
        "timex" => Box::new(timex::Timex),
        "uname" => Box::new(uname::Uname),
        "vmstat" => Box::new(vmstat::VmStat { fields: FieldFilter::new("collector.vmstat.fields", &opts.vmstat_fields)? }),
        other => return Err(Error::UnknownCollector(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_filter_remembers_answers_and_agrees_with_the_regex() {
        let f = FieldFilter::new("collector.vmstat.fields", &Options::default().vmstat_fields).unwrap();
        let names = ["pgpgin", "nr_free_pages", "pgmajfault", "oom_kill", "xpgpgin"];
        for scrape in 0..2 {
            let mut m = f.matcher();
            let got: Vec<bool> = names.iter().map(|n| m.is_match(n).unwrap()).collect();
            assert_eq!(got, [true, false, true, true, false]);
            // Compiled for the first scrape's names only.
            assert_eq!(m.regex.is_some(), scrape == 0);
        }
        assert_eq!(f.order.lock().unwrap().len(), 5);
    }

    #[test]
    fn field_filter_follows_a_changed_field_order() {
        let f = FieldFilter::new("collector.netstat.fields", "_InErrors$").unwrap();
        let ask = |names: &[&str]| {
            let mut m = f.matcher();
            let got: Vec<bool> = names.iter().map(|n| m.is_match(n).unwrap()).collect();
            (got, m.regex.is_some())
        };
        assert_eq!(ask(&["Ip_InErrors", "Ip_X", "Tcp_InErrors"]), (vec![true, false, true], true));
        assert_eq!(ask(&["Ip_InErrors", "Ip_X", "Tcp_InErrors"]), (vec![true, false, true], false));
        // A field appears in the middle, another disappears.
        let changed = ["Ip_InErrors", "Ip_New_InErrors", "Ip_X", "Udp_InErrors"];
        assert_eq!(ask(&changed), (vec![true, true, false, true], true));
        assert_eq!(ask(&changed), (vec![true, true, false, true], false));
        assert_eq!(f.order.lock().unwrap().len(), 4);
    }

    #[test]
    fn field_filter_memory_is_bounded() {
        let f = FieldFilter::new("collector.netstat.fields", "_InErrors$").unwrap();
        let n = FieldFilter::MAX_REMEMBERED + 100;
        let names: Vec<String> =
            (0..n).map(|i| if i % 2 == 0 { format!("P{i}_InErrors") } else { format!("P{i}_Other") }).collect();
        for _ in 0..2 {
            let mut m = f.matcher();
            for (i, name) in names.iter().enumerate() {
                assert_eq!(m.is_match(name).unwrap(), i % 2 == 0, "{name}");
            }
            // Past the bound, answers still come (from the regex).
            assert!(m.regex.is_some());
        }
        assert_eq!(f.order.lock().unwrap().len(), FieldFilter::MAX_REMEMBERED);
    }

    #[test]
    fn perl_classes_are_ascii_as_in_go() {
        // Go's RE2 syntax: \d, \w and \s match ASCII only, like regex-lite.
        let r = regex("collector.diskstats.device-exclude", &Options::default().diskstats_device_exclude).unwrap();
        assert!(r.is_match("sda1") && r.is_match("nvme0n1p2") && r.is_match("loop7"));
        assert!(!r.is_match("sda") && !r.is_match("nvme0n1") && !r.is_match("sda\u{0661}"));
    }

    #[test]
    fn bad_patterns_name_their_flag() {
        let e = FieldFilter::new("collector.netstat.fields", "(").err().unwrap();
        assert!(e.to_string().contains("--collector.netstat.fields"), "{e}");
    }

    #[test]
    fn every_default_pattern_compiles() {
        let o = Options::default();
        for name in ALL {
            build(name, &o).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
