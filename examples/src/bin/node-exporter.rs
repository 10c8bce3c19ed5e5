//! `node-exporter`: host metrics on `/metrics`, node_exporter-compatible.
//!
//! A thin binary: flags → [`exporter::RegistryBuilder`] → a synchronous
//! tiny_http loop. Flags follow node_exporter 1.5 (`--web.listen-address`,
//! `--path.procfs`, `--collector.<name>` / `--no-collector.<name>`, ...).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Arg, ArgAction, ArgMatches, Command};
use exporter::{negotiate, Options, RegistryBuilder, Root, COLLECTORS};

/// Boolean flags with node_exporter's `--flag` / `--no-flag` pair.
fn bool_pair(cmd: Command, name: &'static str, help: String) -> Command {
    let no: &'static str = Box::leak(format!("no-{name}").into_boxed_str());
    cmd.arg(Arg::new(name).long(name).action(ArgAction::SetTrue).help(help.clone()))
        .arg(Arg::new(no).long(no).action(ArgAction::SetTrue).hide(true).overrides_with(name))
}

fn string_flag(cmd: Command, name: &'static str, help: &'static str, default: Option<String>) -> Command {
    let mut a = Arg::new(name).long(name).help(help).num_args(1);
    if let Some(d) = default {
        a = a.default_value(Box::leak(d.into_boxed_str()) as &'static str);
    }
    cmd.arg(a)
}

fn command() -> Command {
    let d = Options::default();
    let mut cmd = Command::new("node-exporter")
        .about("Prometheus exporter for machine metrics (node_exporter-compatible)")
        .arg(Arg::new("web.listen-address").long("web.listen-address").default_value(":9100").help("Address to listen on"))
        .arg(Arg::new("web.telemetry-path").long("web.telemetry-path").default_value("/metrics").help("Path under which to expose metrics"))
        .arg(Arg::new("path.procfs").long("path.procfs").default_value("/proc").help("procfs mountpoint"))
        .arg(Arg::new("path.sysfs").long("path.sysfs").default_value("/sys").help("sysfs mountpoint"))
        .arg(Arg::new("path.rootfs").long("path.rootfs").default_value("/").help("rootfs mountpoint"))
        .arg(Arg::new("path.udev.data").long("path.udev.data").default_value("/run/udev/data").help("udev data path"))
        .arg(
            Arg::new("collector.disable-defaults")
                .long("collector.disable-defaults")
                .action(ArgAction::SetTrue)
                .help("Set all collectors to disabled by default"),
        );
    for name in COLLECTORS {
        let flag: &'static str = Box::leak(format!("collector.{name}").into_boxed_str());
        cmd = bool_pair(cmd, flag, format!("Enable the {name} collector (default: enabled)"));
    }
    cmd = bool_pair(cmd, "collector.cpu.info", "Enables metric node_cpu_info".into());
    cmd = bool_pair(cmd, "collector.stat.softirq", "Export softirq calls per vector".into());
    cmd = bool_pair(cmd, "collector.netdev.netlink", "Use netlink to gather stats instead of sysfs (default: enabled)".into());
    cmd = string_flag(cmd, "collector.cpu.info.flags-include", "Filter the `flags` field in cpuInfo with a value that must be a regular expression", None);
    cmd = string_flag(cmd, "collector.cpu.info.bugs-include", "Filter the `bugs` field in cpuInfo with a value that must be a regular expression", None);
    cmd = string_flag(cmd, "collector.diskstats.device-exclude", "Regexp of diskstats devices to exclude", Some(d.diskstats_device_exclude));
    cmd = string_flag(cmd, "collector.diskstats.device-include", "Regexp of diskstats devices to include (mutually exclusive to device-exclude)", None);
    cmd = string_flag(cmd, "collector.filesystem.mount-points-exclude", "Regexp of mount points to exclude for filesystem collector", Some(d.filesystem_mount_points_exclude));
    cmd = string_flag(cmd, "collector.filesystem.fs-types-exclude", "Regexp of filesystem types to exclude for filesystem collector", Some(d.filesystem_fs_types_exclude));
    cmd = string_flag(cmd, "collector.netdev.device-include", "Regexp of net devices to include (mutually exclusive to device-exclude)", None);
    cmd = string_flag(cmd, "collector.netdev.device-exclude", "Regexp of net devices to exclude (mutually exclusive to device-include)", None);
    cmd = string_flag(cmd, "collector.netstat.fields", "Regexp of fields to return for netstat collector", Some(d.netstat_fields));
    cmd = string_flag(cmd, "collector.vmstat.fields", "Regexp of fields to return for vmstat collector", Some(d.vmstat_fields));
    cmd = string_flag(cmd, "collector.textfile.directory", "Directory to read text files with metrics from", Some(String::new()));
    cmd
}

fn get(m: &ArgMatches, name: &str) -> Option<String> {
    m.get_one::<String>(name).cloned()
}

fn builder(m: &ArgMatches) -> Result<RegistryBuilder> {
    let mut root = Root::new();
    root.procfs(get(m, "path.procfs").unwrap_or_default())
        .sysfs(get(m, "path.sysfs").unwrap_or_default())
        .rootfs(get(m, "path.rootfs").unwrap_or_default())
        .udev_data(get(m, "path.udev.data").unwrap_or_default());
    let d = Options::default();
    let options = Options {
        cpu_info: m.get_flag("collector.cpu.info"),
        cpu_info_flags_include: get(m, "collector.cpu.info.flags-include"),
        cpu_info_bugs_include: get(m, "collector.cpu.info.bugs-include"),
        stat_softirq: m.get_flag("collector.stat.softirq"),
        diskstats_device_exclude: get(m, "collector.diskstats.device-exclude").unwrap_or(d.diskstats_device_exclude),
        diskstats_device_include: get(m, "collector.diskstats.device-include"),
        filesystem_mount_points_exclude: get(m, "collector.filesystem.mount-points-exclude")
            .unwrap_or(d.filesystem_mount_points_exclude),
        filesystem_fs_types_exclude: get(m, "collector.filesystem.fs-types-exclude").unwrap_or(d.filesystem_fs_types_exclude),
        netdev_device_include: get(m, "collector.netdev.device-include"),
        netdev_device_exclude: get(m, "collector.netdev.device-exclude"),
        netdev_netlink: !m.get_flag("no-collector.netdev.netlink"),
        netstat_fields: get(m, "collector.netstat.fields").unwrap_or(d.netstat_fields),
        vmstat_fields: get(m, "collector.vmstat.fields").unwrap_or(d.vmstat_fields),
        textfile_directory: get(m, "collector.textfile.directory").filter(|s| !s.is_empty()).map(PathBuf::from),
    };
    if options.diskstats_device_include.is_some() && m.value_source("collector.diskstats.device-exclude") == Some(clap::parser::ValueSource::CommandLine) {
        bail!("--collector.diskstats.device-include and --collector.diskstats.device-exclude are mutually exclusive");
    }
    let mut b = RegistryBuilder::new();
    b.root(root).options(options);
    if m.get_flag("collector.disable-defaults") {
        b.disable_all();
    }
    for name in COLLECTORS {
        if m.get_flag(&format!("collector.{name}")) {
            b.enable(name, true)?;
        }
        if m.get_flag(&format!("no-collector.{name}")) {
            b.enable(name, false)?;
        }
    }
    Ok(b)
}

const LANDING: &str = "<html>
<head><title>Node Exporter</title></head>
<body>
<h1>Node Exporter</h1>
<p><a href=\"METRICS\">Metrics</a></p>
</body>
</html>
";

fn main() -> Result<()> {
    let m = command().get_matches();
    let registry = builder(&m)?.build().context("configuring collectors")?;
    let path = get(&m, "web.telemetry-path").unwrap_or_else(|| "/metrics".into());
    let mut addr = get(&m, "web.listen-address").unwrap_or_else(|| ":9100".into());
    if addr.starts_with(':') {
        addr = format!("0.0.0.0{addr}");
    }
    let server = tiny_http::Server::http(&addr).map_err(|e| anyhow::anyhow!("listening on {addr}: {e}"))?;
    eprintln!("node-exporter: listening on {addr}, collectors: {}", registry.collector_names().join(", "));
    let landing = LANDING.replace("METRICS", &path);
    let html = tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8").expect("static header");
    for req in server.incoming_requests() {
        let url = req.url().split('?').next().unwrap_or("").to_string();
        let result = if url == path {
            let accept = req.headers().iter().find(|h| h.field.equiv("Accept")).map(|h| h.value.as_str().to_string());
            let format = negotiate(accept.as_deref());
            let (families, outcomes) = registry.gather_with_outcomes();
            for o in outcomes.iter().filter(|o| o.error.is_some()) {
                eprintln!("node-exporter: collector {} failed: {}", o.name, o.error.as_deref().unwrap_or(""));
            }
            let mut body = Vec::with_capacity(64 * 1024);
            match model::exposition::write_families(&families, format, &mut body) {
                Ok(()) => {
                    let ct = tiny_http::Header::from_bytes("Content-Type", format.content_type()).expect("static header");
                    req.respond(tiny_http::Response::from_data(body).with_header(ct))
                }
                Err(e) => req.respond(tiny_http::Response::from_string(format!("error gathering metrics: {e}\n")).with_status_code(500)),
            }
        } else if url == "/" {
            req.respond(tiny_http::Response::from_string(landing.clone()).with_header(html.clone()))
        } else {
            req.respond(tiny_http::Response::from_string("404 page not found\n").with_status_code(404))
        };
        if let Err(e) = result {
            eprintln!("node-exporter: writing response: {e}");
        }
    }
    Ok(())
}
