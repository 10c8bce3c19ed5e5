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

use regex::Regex;

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
        "netstat" => Box::new(netstat::NetStat { fields: regex("collector.netstat.fields", &opts.netstat_fields)? }),
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
        "vmstat" => Box::new(vmstat::VmStat { fields: regex("collector.vmstat.fields", &opts.vmstat_fields)? }),
        other => return Err(Error::UnknownCollector(other.to_string())),
    })
}
