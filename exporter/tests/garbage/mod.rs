//! Odd kernel files: every collector over trees of garbage must fail
//! cleanly (success 0, an error naming the file) and never panic.

use std::fs;
use std::path::Path;

use exporter::{Options, RegistryBuilder, Root};

const PROC_FILES: &[&str] = &[
    "stat",
    "meminfo",
    "loadavg",
    "vmstat",
    "diskstats",
    "cpuinfo",
    "schedstat",
    "1/mounts",
    "mounts",
    "pressure/cpu",
    "pressure/io",
    "pressure/memory",
    "net/netstat",
    "net/snmp",
    "net/snmp6",
    "net/sockstat",
    "net/sockstat6",
    "net/softnet_stat",
    "net/stat/nf_conntrack",
    "sys/fs/file-nr",
    "sys/kernel/random/entropy_avail",
    "sys/kernel/random/poolsize",
    "sys/net/netfilter/nf_conntrack_count",
    "sys/net/netfilter/nf_conntrack_max",
];

const SYS_FILES: &[&str] = &[
    "devices/system/cpu/isolated",
    "devices/system/cpu/cpu0/topology/physical_package_id",
    "devices/system/cpu/cpu0/topology/core_id",
    "devices/system/cpu/cpu0/thermal_throttle/core_throttle_count",
    "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq",
    "devices/system/clocksource/clocksource0/available_clocksource",
    "devices/system/clocksource/clocksource0/current_clocksource",
    "class/hwmon/hwmon0/name",
    "class/hwmon/hwmon0/temp1_input",
    "class/hwmon/hwmon0/fan1_label",
    "class/thermal/thermal_zone0/type",
    "class/thermal/thermal_zone0/temp",
    "class/thermal/cooling_device0/cur_state",
    "class/net/eth0/statistics/rx_bytes",
];

const GARBAGE: &[&[u8]] = &[
    b"",
    b"\n\n\n",
    b"\xff\xfe\x00garbage\x00\n",
    b"cpu0 1 2\nintr x\n",
    b"a: b: c: d\n1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\n",
    b"-1\n",
    b"99999999999999999999999999999\n",
    b"some total=\nfull avg10=\n",
    b"0-4294967295\n",
    b"Ip: A B\nIp: 1\n",
    b"NaN\n",
];

fn write(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
    fs::write(p, content).expect("write");
}

#[test]
fn garbage_trees_never_panic() {
    for (i, g) in GARBAGE.iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in PROC_FILES {
            write(&dir.path().join("proc"), f, g);
        }
        for f in SYS_FILES {
            write(&dir.path().join("sys"), f, g);
        }
        write(&dir.path().join("textfile"), "x.prom", g);
        let mut root = Root::new();
        root.procfs(dir.path().join("proc"))
            .sysfs(dir.path().join("sys"))
            .rootfs(dir.path())
            .udev_data(dir.path().join("udev"));
        let options = Options {
            cpu_info: true,
            cpu_info_flags_include: Some(".*".into()),
            stat_softirq: true,
            netdev_netlink: false,
            textfile_directory: Some(dir.path().join("textfile")),
            ..Options::default()
        };
        let mut b = RegistryBuilder::new();
        b.root(root).options(options);
        let (families, outcomes) = b.build().expect("build").gather_with_outcomes();
        for o in &outcomes {
            if let Some(e) = &o.error {
                assert!(!e.contains("panicked"), "garbage #{i}: {e}");
            }
        }
        // Whatever succeeded must still be writable in both formats.
        for format in [exporter::Format::Text004, exporter::Format::OpenMetrics] {
            let mut out = Vec::new();
            model::exposition::write_families(&families, format, &mut out).expect("write");
        }
        let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
        assert!(failed > 0, "garbage #{i}: some collector should have rejected the input");
    }
}
