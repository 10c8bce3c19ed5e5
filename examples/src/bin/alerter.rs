//! `alerter`: evaluates Prometheus rule files against a Prometheus-compatible
//! server, writes recorded series back over remote-write, and posts firing
//! and resolved alerts to a Mattermost incoming webhook.
//!
//! ```text
//! alerter --rules 'rules/*.yml' --query-url http://127.0.0.1:9090 \
//!         [--remote-write-url http://127.0.0.1:9090/api/v1/write] \
//!         [--webhook https://chat.example.com/hooks/KEY] [--interval 15s]
//! ```
//!
//! Each rule's expression is evaluated by the server (`/api/v1/query` at the
//! evaluation time); see `examples::alerter` for why.

use anyhow::{bail, Context};
use clap::Parser;
use examples::alerter::{now_ms, Alerter, Outputs, QueryClient};
use examples::remote_write::{RemoteWriteOptions, RemoteWriter};
use promql::rules::{load_file, EvalContext};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Rule files or glob patterns (repeatable).
    #[arg(long = "rules", required = true)]
    rules: Vec<String>,
    /// Prometheus-compatible server to query, e.g. http://127.0.0.1:9090.
    #[arg(long)]
    query_url: String,
    /// Remote-write endpoint for recorded series (and ALERTS).
    #[arg(long)]
    remote_write_url: Option<String>,
    /// Mattermost incoming-webhook URL for notifications.
    #[arg(long)]
    webhook: Option<String>,
    /// Evaluation interval of groups that set none (Prometheus's
    /// `evaluation_interval`).
    #[arg(long, default_value = "1m")]
    interval: String,
    /// Timeout of each query.
    #[arg(long, default_value = "30s")]
    query_timeout: String,
    /// `$externalLabels` for templates and labels added to remote-written
    /// series: `name=value` (repeatable).
    #[arg(long = "external-label")]
    external_labels: Vec<String>,
    /// `$externalURL` for templates, also the alerts' generator link.
    #[arg(long, default_value = "")]
    external_url: String,
    /// Check the rule files, print a summary and exit.
    #[arg(long)]
    check: bool,
    /// Evaluate once, deliver, and exit.
    #[arg(long)]
    once: bool,
}

fn duration(s: &str, what: &str) -> anyhow::Result<Duration> {
    let ms = promql::lexer::parse_duration(s).with_context(|| format!("--{what}: not a duration: {s:?}"))?;
    if ms <= 0 {
        bail!("--{what} must be positive");
    }
    Ok(Duration::from_millis(ms as u64))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let interval = duration(&args.interval, "interval")?;
    let query_timeout = duration(&args.query_timeout, "query-timeout")?;
    let mut files = Vec::new();
    for pattern in &args.rules {
        let mut matched: Vec<_> = glob::glob(pattern).with_context(|| format!("bad pattern {pattern:?}"))?.collect::<Result<_, _>>()?;
        if matched.is_empty() {
            bail!("--rules {pattern:?} matches no file");
        }
        matched.sort();
        files.extend(matched);
    }
    let mut groups = Vec::new();
    for f in &files {
        let g = load_file(f)?;
        let rules: usize = g.iter().map(|g| g.rules.len()).sum();
        eprintln!("{}: {} groups, {rules} rules", f.display(), g.len());
        groups.extend(g);
    }
    if args.check {
        return Ok(());
    }
    let mut external = BTreeMap::new();
    for kv in &args.external_labels {
        let (k, v) = kv.split_once('=').with_context(|| format!("--external-label {kv:?}: expected name=value"))?;
        if !model::is_valid_label_name(k) {
            bail!("--external-label {kv:?}: invalid label name");
        }
        external.insert(k.to_string(), v.to_string());
    }
    let remote_write = args.remote_write_url.as_ref().map(|url| {
        let mut opts = RemoteWriteOptions::new(url.clone());
        opts.external_labels = external.clone();
        RemoteWriter::start(opts)
    });
    let notifier = match &args.webhook {
        Some(url) => {
            let url: notify::WebhookUrl = url.parse().context("--webhook")?;
            Some(
                notify::Notifier::builder()
                    .on_error(|e| eprintln!("alerter: notification failed: {e}"))
                    .build(url)
                    .context("starting the notifier")?,
            )
        }
        None => None,
    };
    let style = notify::MessageStyle { username: Some("Alerter".into()), ..notify::MessageStyle::default() };
    let ctx = EvalContext { external_labels: external, external_url: args.external_url.clone() };
    let client = QueryClient::new(&args.query_url, query_timeout);
    let mut alerter = Alerter::new(groups, interval, client, Outputs { remote_write, notifier, style }, ctx);

    loop {
        let report = alerter.tick(now_ms());
        for e in &report.errors {
            eprintln!("alerter: {e}");
        }
        if report.notified > 0 {
            eprintln!("alerter: notified {} alerts", report.notified);
        }
        if args.once {
            break;
        }
        let wait = alerter.next_due().map_or(1000, |t| (t - now_ms()).clamp(10, 60_000));
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
    alerter.shutdown(Duration::from_secs(10));
    Ok(())
}
