//! `node-exporter`: host metrics on `/metrics`, node_exporter-compatible.
//!
//! A thin binary: flags → [`exporter::RegistryBuilder`] → a small HTTP/1.1
//! server. Flags follow node_exporter 1.5 (kingpin style: `--flag=value`
//! or `--flag value`, `--flag` / `--no-flag` for booleans):
//! `--web.listen-address`, `--path.procfs`, `--collector.<name>` /
//! `--no-collector.<name>`, ...
//!
//! Unlike the other binaries this one uses neither clap nor the shared
//! server of [`examples::http`] (issue 4: an exporter runs on every host
//! and is held to 4 MB peak RSS): the same exporter behind clap and
//! tiny_http (the shared server's base then) measured 4.33 MB peak RSS
//! against 3.6 MB here (`benches/compare/exporter.sh`), from resident code
//! and the server's threads and their malloc arenas. Requests are read
//! and answered by the shared connection code ([`examples::http::conn`]:
//! `httparse` heads, keep-alive, pipelining); the rest is a table of flags
//! and a loop that answers `GET`. Each connection gets a thread (keep-alive, idle timeout,
//! bounded request head; finished threads wait for the next connection);
//! scrapes beyond `--web.max-requests` at once get 503, as in
//! node_exporter. Scrapes themselves run one at a time on the main thread:
//! glibc gives every thread that allocates its own malloc arena, and a
//! scrape's few hundred KB of families and output would otherwise grow one
//! arena per connection thread. procfs and sysfs files stay open between
//! scrapes ([`Root::keep_open`]): opening them cost more than reading.

use std::collections::BTreeMap;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use examples::http::conn::{Conn, Limits};
use examples::http::{self, Request, Response};
use exporter::{negotiate, Options, Registry, RegistryBuilder, Root, COLLECTORS};

// ---------------------------------------------------------------- flags

/// A flag's kind and default.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// `--name` / `--no-name` (also `--name=true|false`).
    Bool(bool),
    /// `--name=value` or `--name value`; `None`: no default.
    Value(Option<&'static str>),
}

#[derive(Debug)]
struct Flag {
    name: String,
    kind: Kind,
    help: String,
}

/// node_exporter's flags that this exporter implements.
fn flags() -> Vec<Flag> {
    fn value(name: &str, default: Option<&'static str>, help: &str) -> Flag {
        Flag { name: name.into(), kind: Kind::Value(default), help: help.into() }
    }
    fn boolean(name: &str, default: bool, help: &str) -> Flag {
        Flag { name: name.into(), kind: Kind::Bool(default), help: help.into() }
    }
    // The defaults of the collector options live in `Options::default()`;
    // they are filled in after parsing, so `--help` says "(default: ...)"
    // only for the flags whose default is short.
    let mut v = vec![
        value("web.listen-address", Some(":9100"), "Address on which to expose metrics and web interface."),
        value("web.telemetry-path", Some("/metrics"), "Path under which to expose metrics."),
        value("web.max-requests", Some("40"), "Maximum number of parallel scrape requests. Use 0 to disable."),
        value("path.procfs", Some("/proc"), "procfs mountpoint."),
        value("path.sysfs", Some("/sys"), "sysfs mountpoint."),
        value("path.rootfs", Some("/"), "rootfs mountpoint."),
        value("path.udev.data", Some("/run/udev/data"), "udev data path."),
        // node_exporter's default too. More threads overlap the kernel's
        // file generation on an idle multi-core host but cost a malloc
        // arena each (about 0.3 MB more peak RSS for 2) and were slower on
        // a busy 2-core machine (issue 4).
        value(
            "runtime.gomaxprocs",
            Some("1"),
            "The number of threads that run collectors during a scrape (node_exporter: GOMAXPROCS).",
        ),
        boolean("collector.disable-defaults", false, "Set all collectors to disabled by default."),
        boolean("collector.cpu.info", false, "Enables metric node_cpu_info"),
        value("collector.cpu.info.flags-include", None, "Filter the `flags` field in cpuInfo with a value that must be a regular expression"),
        value("collector.cpu.info.bugs-include", None, "Filter the `bugs` field in cpuInfo with a value that must be a regular expression"),
        boolean("collector.stat.softirq", false, "Export softirq calls per vector"),
        value("collector.diskstats.device-exclude", None, "Regexp of diskstats devices to exclude (mutually exclusive to device-include)."),
        value("collector.diskstats.device-include", None, "Regexp of diskstats devices to include (mutually exclusive to device-exclude)."),
        value("collector.filesystem.mount-points-exclude", None, "Regexp of mount points to exclude for filesystem collector."),
        value("collector.filesystem.fs-types-exclude", None, "Regexp of filesystem types to exclude for filesystem collector."),
        boolean("collector.netdev.netlink", true, "Use netlink to gather stats instead of /sys/class/net."),
        value("collector.netdev.device-include", None, "Regexp of net devices to include (mutually exclusive to device-exclude)."),
        value("collector.netdev.device-exclude", None, "Regexp of net devices to exclude (mutually exclusive to device-include)."),
        value("collector.netstat.fields", None, "Regexp of fields to return for netstat collector."),
        value("collector.vmstat.fields", None, "Regexp of fields to return for vmstat collector."),
        value("collector.textfile.directory", Some(""), "Directory to read text files with metrics from."),
    ];
    for name in COLLECTORS {
        v.push(boolean(&format!("collector.{name}"), true, &format!("Enable the {name} collector.")));
    }
    v
}

/// Parsed flags: booleans and values given on the command line (defaults
/// are applied by the getters).
#[derive(Debug)]
struct Args {
    flags: Vec<Flag>,
    bools: BTreeMap<String, bool>,
    values: BTreeMap<String, String>,
}

/// What the command line asks for.
#[derive(Debug)]
enum Parsed {
    Run(Args),
    Help,
    Version,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let flags = flags();
    let mut bools = BTreeMap::new();
    let mut values = BTreeMap::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--version" => return Ok(Parsed::Version),
            _ => {}
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let find = |n: &str| flags.iter().find(|f| f.name == n);
        if let Some(flag) = find(name) {
            match flag.kind {
                Kind::Bool(_) => {
                    let on = match inline.as_deref() {
                        None | Some("true") => true,
                        Some("false") => false,
                        Some(other) => return Err(format!("--{name}: expected true or false, got {other:?}")),
                    };
                    bools.insert(flag.name.clone(), on);
                }
                Kind::Value(_) => {
                    let v = match inline {
                        Some(v) => v,
                        None => it.next().ok_or_else(|| format!("--{name} needs a value"))?,
                    };
                    if values.insert(flag.name.clone(), v).is_some() {
                        return Err(format!("flag --{name} cannot be repeated"));
                    }
                }
            }
            continue;
        }
        match name.strip_prefix("no-").and_then(find) {
            Some(flag) if matches!(flag.kind, Kind::Bool(_)) && inline.is_none() => {
                bools.insert(flag.name.clone(), false);
            }
            _ => return Err(format!("unknown long flag --{name}")),
        }
    }
    Ok(Parsed::Run(Args { flags, bools, values }))
}

impl Args {
    fn flag(&self, name: &str) -> &Flag {
        // Getters are only called with names from `flags()`; a typo is a
        // bug caught by the tests, so fail loudly.
        self.flags.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no flag --{name}"))
    }

    fn bool(&self, name: &str) -> bool {
        match (self.bools.get(name), self.flag(name).kind) {
            (Some(v), _) => *v,
            (None, Kind::Bool(d)) => d,
            (None, Kind::Value(_)) => panic!("--{name} is not a boolean flag"),
        }
    }

    /// The value given, else the default (`None` when neither).
    fn value(&self, name: &str) -> Option<String> {
        match (self.values.get(name), self.flag(name).kind) {
            (Some(v), _) => Some(v.clone()),
            (None, Kind::Value(d)) => d.map(str::to_string),
            (None, Kind::Bool(_)) => panic!("--{name} is not a value flag"),
        }
    }

    fn given(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.bools.contains_key(name)
    }
}

fn help() -> String {
    let d = Options::default();
    let long_defaults = [
        ("collector.diskstats.device-exclude", d.diskstats_device_exclude),
        ("collector.filesystem.mount-points-exclude", d.filesystem_mount_points_exclude),
        ("collector.filesystem.fs-types-exclude", d.filesystem_fs_types_exclude),
        ("collector.netstat.fields", d.netstat_fields),
        ("collector.vmstat.fields", d.vmstat_fields),
    ];
    let mut s = String::from(
        "usage: node-exporter [<flags>]\n\nPrometheus exporter for machine metrics (node_exporter 1.5 compatible).\n\nFlags:\n  -h, --help  Show this help.\n      --version  Show the version.\n",
    );
    for f in flags() {
        let (syntax, default) = match f.kind {
            Kind::Bool(d) => (format!("--[no-]{}", f.name), Some(d.to_string())),
            Kind::Value(d) => (
                format!("--{}=VALUE", f.name),
                d.filter(|d| !d.is_empty())
                    .map(str::to_string)
                    .or_else(|| long_defaults.iter().find(|(n, _)| *n == f.name).map(|(_, v)| v.clone())),
            ),
        };
        s.push_str(&format!("      {syntax}\n          {}", f.help));
        if let Some(d) = default {
            s.push_str(&format!(" (default: {d})"));
        }
        s.push('\n');
    }
    s
}

fn builder(a: &Args) -> Result<RegistryBuilder> {
    let mut root = Root::new();
    root.procfs(a.value("path.procfs").unwrap_or_default())
        .sysfs(a.value("path.sysfs").unwrap_or_default())
        .rootfs(a.value("path.rootfs").unwrap_or_default())
        .udev_data(a.value("path.udev.data").unwrap_or_default())
        // Opening procfs/sysfs files costs more than reading them (issue 4).
        .keep_open(true);
    let d = Options::default();
    let options = Options {
        cpu_info: a.bool("collector.cpu.info"),
        cpu_info_flags_include: a.value("collector.cpu.info.flags-include"),
        cpu_info_bugs_include: a.value("collector.cpu.info.bugs-include"),
        stat_softirq: a.bool("collector.stat.softirq"),
        diskstats_device_exclude: a.value("collector.diskstats.device-exclude").unwrap_or(d.diskstats_device_exclude),
        diskstats_device_include: a.value("collector.diskstats.device-include"),
        filesystem_mount_points_exclude: a
            .value("collector.filesystem.mount-points-exclude")
            .unwrap_or(d.filesystem_mount_points_exclude),
        filesystem_fs_types_exclude: a.value("collector.filesystem.fs-types-exclude").unwrap_or(d.filesystem_fs_types_exclude),
        netdev_device_include: a.value("collector.netdev.device-include"),
        netdev_device_exclude: a.value("collector.netdev.device-exclude"),
        netdev_netlink: a.bool("collector.netdev.netlink"),
        netstat_fields: a.value("collector.netstat.fields").unwrap_or(d.netstat_fields),
        vmstat_fields: a.value("collector.vmstat.fields").unwrap_or(d.vmstat_fields),
        textfile_directory: a.value("collector.textfile.directory").filter(|s| !s.is_empty()).map(PathBuf::from),
    };
    if a.given("collector.diskstats.device-include") && a.given("collector.diskstats.device-exclude") {
        bail!("--collector.diskstats.device-include and --collector.diskstats.device-exclude are mutually exclusive");
    }
    if a.given("collector.netdev.device-include") && a.given("collector.netdev.device-exclude") {
        bail!("--collector.netdev.device-include and --collector.netdev.device-exclude are mutually exclusive");
    }
    let workers: usize = parse_number(a, "runtime.gomaxprocs")?;
    let mut b = RegistryBuilder::new();
    b.root(root).options(options).workers(workers);
    if a.bool("collector.disable-defaults") {
        b.disable_all();
    }
    for name in COLLECTORS {
        let flag = format!("collector.{name}");
        if a.given(&flag) {
            b.enable(name, a.bool(&flag))?;
        }
    }
    Ok(b)
}

fn parse_number(a: &Args, name: &str) -> Result<usize> {
    let v = a.value(name).unwrap_or_default();
    v.parse().with_context(|| format!("--{name}: not a number: {v:?}"))
}

// ---------------------------------------------------------------- HTTP

/// Largest request head (request line and headers) accepted, and largest
/// request body read (and discarded; scrapes have none).
const LIMITS: Limits = Limits { max_head: 16 * 1024, max_body: 64 * 1024 };
/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Most connections served at once; more are closed at once, so a flood
/// of idle connections cannot exhaust threads.
const MAX_CONNECTIONS: usize = 256;

const LANDING: &str = "<html>
<head><title>Node Exporter</title></head>
<body>
<h1>Node Exporter</h1>
<p><a href=\"METRICS\">Metrics</a></p>
</body>
</html>
";

/// What connection threads share.
struct App {
    telemetry_path: String,
    landing: String,
    /// Scrape requests, answered by [`run_scrapes`] on the main thread.
    scrapes: mpsc::Sender<ScrapeJob>,
    /// `--web.max-requests` (0: unlimited) and the scrapes queued or
    /// running now.
    max_requests: usize,
    in_flight: AtomicUsize,
    connections: AtomicUsize,
}

/// One scrape to run: the `Accept` header, and where the response goes.
struct ScrapeJob {
    accept: Option<String>,
    reply: mpsc::SyncSender<Response>,
}

/// Runs scrapes one after another until every [`App`] (every sender) is
/// gone.
fn run_scrapes(registry: &Registry, jobs: mpsc::Receiver<ScrapeJob>) {
    for job in jobs {
        let resp = scrape(registry, job.accept.as_deref());
        // The connection may have gone meanwhile; nothing to do then.
        let _ = job.reply.send(resp);
    }
}

/// One scrape, rendered in the format the `Accept` header asks for.
fn scrape(registry: &Registry, accept: Option<&str>) -> Response {
    let format = negotiate(accept);
    let (families, outcomes) = registry.gather_with_outcomes();
    // As node_exporter: a collector with nothing to report (no hwmon
    // chips, ...) is logged at debug level only, i.e. not at all here.
    for o in outcomes.iter().filter(|o| !o.no_data) {
        if let Some(e) = &o.error {
            eprintln!("node-exporter: collector {} failed: {e}", o.name);
        }
    }
    let mut body = Vec::with_capacity(48 * 1024);
    match model::exposition::write_families(&families, format, &mut body) {
        Ok(()) => Response::new(200, format.content_type(), body),
        Err(e) => Response::text(500, format!("error gathering metrics: {e}\n")),
    }
}

impl App {
    fn respond(&self, req: &Request) -> Response {
        if req.method != "GET" && req.method != "HEAD" {
            return Response::text(405, "method not allowed\n").with_header("Allow", "GET, HEAD");
        }
        if req.path == self.telemetry_path {
            // Every Accept header counts, as in Go's net/http.
            let accept: Vec<&str> = req.headers.iter().filter(|(k, _)| k == "accept").map(|(_, v)| v.as_str()).collect();
            return self.scrape((!accept.is_empty()).then(|| accept.join(", ")).as_deref());
        }
        if req.path == "/" {
            return Response::new(200, "text/html; charset=utf-8", self.landing.clone());
        }
        Response::text(404, "404 page not found\n")
    }

    fn scrape(&self, accept: Option<&str>) -> Response {
        let running = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let _done = Decrement(&self.in_flight);
        if self.max_requests > 0 && running >= self.max_requests {
            return Response::text(503, format!("Limit of concurrent requests reached ({}), try again later.\n", self.max_requests));
        }
        let (reply, response) = mpsc::sync_channel(1);
        let job = ScrapeJob { accept: accept.map(str::to_string), reply };
        match self.scrapes.send(job).ok().and_then(|()| response.recv().ok()) {
            Some(r) => r,
            // The scrape loop is gone (it panicked): say so rather than hang.
            None => Response::text(500, "scraping stopped\n"),
        }
    }
}

/// Decrements a counter when dropped (also when a scrape panics).
struct Decrement<'a>(&'a AtomicUsize);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves requests on one connection until the client closes it, it
/// idles past [`IDLE_TIMEOUT`], or a request asks to close.
fn serve_connection(stream: TcpStream, app: &App) -> io::Result<()> {
    http::conn::set_up(&stream, Some(IDLE_TIMEOUT))?;
    let mut conn = Conn::new(stream);
    while let Some(inc) = conn.next_request(&LIMITS) {
        conn.answer(&inc, &app.respond(&inc.request))?;
        if inc.close {
            break;
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            print!("{}", help());
            return Ok(());
        }
        Ok(Parsed::Version) => {
            println!("node-exporter {} (node_exporter 1.5 compatible)", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Err(e) => {
            // A usage error, not a failure worth a backtrace (as kingpin:
            // message and exit status 1).
            eprintln!("node-exporter: error: {e}, try --help");
            std::process::exit(1);
        }
    };
    let registry = builder(&args)?.build().context("configuring collectors")?;
    let telemetry_path = args.value("web.telemetry-path").unwrap_or_else(|| "/metrics".into());
    let mut addr = args.value("web.listen-address").unwrap_or_else(|| ":9100".into());
    if addr.starts_with(':') {
        addr = format!("0.0.0.0{addr}");
    }
    let max_requests = parse_number(&args, "web.max-requests")?;
    let listener = TcpListener::bind(&addr).with_context(|| format!("listening on {addr}"))?;
    eprintln!("node-exporter: listening on {addr}, collectors: {}", registry.collector_names().join(", "));
    let (scrapes, jobs) = mpsc::channel();
    let app = Arc::new(App {
        landing: LANDING.replace("METRICS", &telemetry_path),
        telemetry_path,
        scrapes,
        max_requests,
        in_flight: AtomicUsize::new(0),
        connections: AtomicUsize::new(0),
    });
    drop(args);
    std::thread::Builder::new()
        .name("accept".into())
        .stack_size(64 * 1024)
        .spawn(move || accept_loop(&listener, &app))
        .context("starting the accept thread")?;
    run_scrapes(&registry, jobs);
    Ok(())
}

/// Threads that finished a connection wait here for the next one (at most
/// [`MAX_IDLE`] of them), so that a scrape on a new connection does not pay
/// for starting a thread (stack, guard page, signal stack: about fifteen
/// system calls).
struct Idle {
    /// Threads waiting (or about to wait) on `streams`.
    count: AtomicUsize,
    streams: std::sync::Mutex<mpsc::Receiver<TcpStream>>,
}

/// Most connection threads kept waiting for a connection.
const MAX_IDLE: usize = 2;

/// Accepts connections and gives each to an idle thread or a new one.
fn accept_loop(listener: &TcpListener, app: &Arc<App>) {
    let (handoff, streams) = mpsc::channel();
    let idle = Arc::new(Idle { count: AtomicUsize::new(0), streams: std::sync::Mutex::new(streams) });
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                eprintln!("node-exporter: accepting a connection: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if app.connections.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            app.connections.fetch_sub(1, Ordering::AcqRel);
            drop(stream);
            continue;
        }
        // Claim a waiting thread; each claim matches one thread that
        // counted itself in before waiting, so the stream never waits for
        // a busy one.
        if idle.count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok() {
            // The receiver lives in `idle`, held here: sending cannot fail.
            let _ = handoff.send(stream);
            continue;
        }
        let (app2, idle2) = (Arc::clone(app), Arc::clone(&idle));
        // Small stacks: the HTTP loop keeps its data on the heap, and
        // scrapes run on the main thread.
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(128 * 1024)
            .spawn(move || connection_thread(stream, &app2, &idle2));
        if let Err(e) = spawned {
            app.connections.fetch_sub(1, Ordering::AcqRel);
            eprintln!("node-exporter: starting a connection thread: {e}");
        }
    }
}

/// Serves `stream`, then waits for further connections while fewer than
/// [`MAX_IDLE`] threads wait.
fn connection_thread(mut stream: TcpStream, app: &App, idle: &Idle) {
    loop {
        let done = Decrement(&app.connections);
        if let Err(e) = serve_connection(stream, app) {
            if !matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset) {
                eprintln!("node-exporter: connection: {e}");
            }
        }
        drop(done);
        if idle.count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_IDLE).then_some(n + 1)).is_err() {
            return;
        }
        let next = idle.streams.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match next {
            Ok(s) => stream = s,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    type TestResult = Result<(), Box<dyn std::error::Error>>;
    use super::*;
    use std::io::{Read, Write};

    fn args(list: &[&str]) -> Result<Parsed, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    fn run(list: &[&str]) -> Args {
        match args(list) {
            Ok(Parsed::Run(a)) => a,
            other => panic!("{list:?}: {other:?}"),
        }
    }

    #[test]
    fn flags_take_values_both_ways_and_booleans_negate() {
        let a = run(&["--web.listen-address=127.0.0.1:1", "--path.procfs", "/x/proc", "--no-collector.cpu", "--collector.stat.softirq"]);
        assert_eq!(a.value("web.listen-address").as_deref(), Some("127.0.0.1:1"));
        assert_eq!(a.value("path.procfs").as_deref(), Some("/x/proc"));
        assert_eq!(a.value("path.sysfs").as_deref(), Some("/sys"));
        assert!(!a.bool("collector.cpu") && a.bool("collector.loadavg") && a.bool("collector.stat.softirq"));
        assert!(a.given("collector.cpu") && !a.given("collector.loadavg"));
        let a = run(&["--collector.netdev.netlink=false", "--collector.cpu", "--no-collector.cpu"]);
        assert!(!a.bool("collector.netdev.netlink") && !a.bool("collector.cpu"));
        assert_eq!(a.value("collector.vmstat.fields"), None);
    }

    #[test]
    fn bad_command_lines_are_errors() {
        for bad in [
            &["--nope"][..],
            &["--no-path.procfs"],
            &["--path.procfs"],
            &["positional"],
            &["--collector.cpu=maybe"],
            &["--path.procfs=/a", "--path.procfs=/b"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(args(&["--path.sysfs=/s", "--help"]), Ok(Parsed::Help)));
        assert!(matches!(args(&["--version"]), Ok(Parsed::Version)));
    }

    #[test]
    fn every_flag_is_known_to_the_getters_and_help() -> TestResult {
        let a = run(&[]);
        let text = help();
        for f in flags() {
            match f.kind {
                Kind::Bool(d) => assert_eq!(a.bool(&f.name), d),
                Kind::Value(_) => {
                    let _ = a.value(&f.name);
                }
            }
            let syntax = match f.kind {
                Kind::Bool(_) => format!("--[no-]{}\n", f.name),
                Kind::Value(_) => format!("--{}=VALUE\n", f.name),
            };
            assert!(text.contains(&syntax), "{syntax}");
        }
        assert!(text.contains("(default: ^(oom_kill|pgpg|pswp|pg.*fault).*)"), "{text}");
        let b = builder(&a)?.build()?;
        assert_eq!(b.collector_names(), COLLECTORS.to_vec());
        Ok(())
    }

    #[test]
    fn collector_selection_and_exclusive_flags() -> TestResult {
        let a = run(&["--collector.disable-defaults", "--collector.loadavg", "--collector.meminfo", "--no-collector.meminfo"]);
        assert_eq!(builder(&a)?.build()?.collector_names(), vec!["loadavg"]);
        let a = run(&["--collector.diskstats.device-include=sd.*", "--collector.diskstats.device-exclude=x"]);
        assert!(builder(&a).is_err());
        let a = run(&["--collector.vmstat.fields=("]);
        let e = builder(&a)?.build().unwrap_err();
        assert!(e.to_string().contains("collector.vmstat.fields"), "{e}");
        assert!(builder(&run(&["--runtime.gomaxprocs=x"])).is_err());
        Ok(())
    }

    /// A live server on a free loopback port, over fixture-free collectors.
    fn serve(app: App) -> (std::net::SocketAddr, Arc<App>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Arc::new(app);
        let app2 = Arc::clone(&app);
        std::thread::spawn(move || accept_loop(&listener, &app2));
        (addr, app)
    }

    #[test]
    fn idle_keep_alive_connections_do_not_block_new_ones() {
        let (addr, app) = serve(test_app(40));
        // Sequential connections (threads go back to waiting)...
        for _ in 0..5 {
            assert!(exchange(addr, b"GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200 OK"));
        }
        // ...then more idle keep-alive connections than waiting threads:
        // a new connection is still answered at once.
        let open: Vec<TcpStream> = (0..MAX_IDLE + 2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        assert!(exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n").contains("node_uname_info"));
        drop(open);
        // Every connection is accounted for once closed.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while app.connections.load(Ordering::SeqCst) != 0 {
            assert!(std::time::Instant::now() < deadline, "{} connections still counted", app.connections.load(Ordering::SeqCst));
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn test_app(max_requests: usize) -> App {
        let mut b = RegistryBuilder::new();
        b.disable_all().enable("uname", true).unwrap();
        let registry = b.build().unwrap();
        let (scrapes, jobs) = mpsc::channel();
        std::thread::spawn(move || run_scrapes(&registry, jobs));
        App {
            scrapes,
            telemetry_path: "/metrics".into(),
            landing: LANDING.replace("METRICS", "/metrics"),
            max_requests,
            in_flight: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        }
    }

    /// Sends `raw` and reads until the server closes the connection.
    fn exchange(addr: std::net::SocketAddr, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn serves_metrics_landing_and_errors_over_keep_alive() {
        let (addr, _app) = serve(test_app(40));
        // Two pipelined requests on one connection, the second closing it.
        let out = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text; version=1.0.0\r\nConnection: close\r\n\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), "{out}");
        assert!(out.contains("node_uname_info{"), "{out}");
        assert!(out.contains("node_scrape_collector_success{collector=\"uname\"} 1\n"), "{out}");
        let second = out.split("HTTP/1.1 ").nth(2).unwrap();
        assert!(second.starts_with("200 OK\r\n") && second.contains("\r\nContent-Type: text/html"), "{second}");
        assert!(second.contains("Connection: close\r\n") && second.contains("<a href=\"/metrics\">"), "{second}");
        // Content-Length is exact.
        let first = &out[..out[1..].find("HTTP/1.1 200 OK\r\n").unwrap() + 1];
        let (head, body) = first.split_once("\r\n\r\n").unwrap();
        let len: usize = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().parse().unwrap();
        assert_eq!(len, body.len());

        let om = exchange(addr, b"GET /metrics HTTP/1.0\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n");
        assert!(om.contains("Content-Type: application/openmetrics-text; version=1.0.0"), "{om}");
        assert!(om.ends_with("# EOF\n"), "{om}");
        let head = exchange(addr, b"HEAD /metrics HTTP/1.0\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK") && head.ends_with("\r\n\r\n"), "{head}");
        assert!(exchange(addr, b"GET /nope HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 404 Not Found"));
        let post = exchange(addr, b"POST /metrics HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi");
        assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD"), "{post}");
        assert!(exchange(addr, b"BROKEN\r\n\r\n").starts_with("HTTP/1.1 400 Bad Request"));
        // Exactly one byte too many, so the server has read everything
        // sent when it answers (unread bytes would turn its close into a
        // reset).
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.resize(LIMITS.max_head + 1, b'a');
        assert!(exchange(addr, &huge).starts_with("HTTP/1.1 431"));
    }

    #[test]
    fn scrapes_over_the_limit_get_503() {
        let app = test_app(1);
        app.in_flight.store(1, Ordering::SeqCst);
        let r = app.scrape(None);
        assert_eq!(r.status, 503);
        assert_eq!(app.in_flight.load(Ordering::SeqCst), 1, "the refused scrape must not leak a slot");
        app.in_flight.store(0, Ordering::SeqCst);
        assert_eq!(app.scrape(None).status, 200);
        assert_eq!(test_app(0).scrape(None).status, 200);
    }
}
