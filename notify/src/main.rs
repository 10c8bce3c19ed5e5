//! `notify`: post a message to a Mattermost incoming webhook from scripts.
//!
//! ```text
//! notify send --webhook https://chat.example.com/hooks/KEY --text "backup done"
//! NOTIFY_WEBHOOK_URL=... notify send --text - --title "Nightly backup" --color good < log.txt
//! ```
//!
//! Exits 0 when Mattermost accepted the message, 1 with a message on stderr otherwise.

use std::io::Read;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use notify::{
    Attachment, ClientBuilder, Payload, Priority, PriorityLevel, RetryPolicy, WebhookUrl,
};

#[derive(Parser)]
#[command(
    name = "notify",
    version,
    about = "Send notifications to Mattermost incoming webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Post one message (retrying transient failures) and wait for Mattermost's answer.
    Send(SendArgs),
}

#[derive(Args)]
struct SendArgs {
    /// Incoming-webhook URL, https://host/hooks/<key>. It is never printed in full.
    #[arg(long, env = "NOTIFY_WEBHOOK_URL", hide_env_values = true)]
    webhook: Option<String>,
    /// Message text (Markdown); `-` reads it from standard input.
    #[arg(long)]
    text: String,
    /// Poster name override.
    #[arg(long)]
    username: Option<String>,
    /// Channel name override (e.g. `town-square`, or `@user` for a direct message).
    #[arg(long)]
    channel: Option<String>,
    /// Poster avatar URL override.
    #[arg(long)]
    icon_url: Option<String>,
    /// Put the text in an attachment with this side-bar colour (`#RRGGBB`, good, warning, danger).
    #[arg(long)]
    color: Option<String>,
    /// Put the text in an attachment with this title.
    #[arg(long)]
    title: Option<String>,
    /// Link for the attachment title.
    #[arg(long, requires = "title")]
    title_link: Option<String>,
    /// Message priority: standard, important or urgent.
    #[arg(long)]
    priority: Option<PriorityLevel>,
    /// Ask recipients to acknowledge (with --priority).
    #[arg(long, requires = "priority")]
    requested_ack: bool,
    /// Seconds to wait for each request.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Attempts in total, counting the first (transient failures only are retried).
    #[arg(long, default_value_t = 4)]
    attempts: u32,
    /// Truncate text over Mattermost's post limit instead of sending several posts.
    #[arg(long)]
    truncate: bool,
    /// Print the JSON body instead of sending it.
    #[arg(long)]
    dry_run: bool,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send(args) => send(args),
    };
    if let Err(e) = result {
        eprintln!("notify: error: {e:#}");
        std::process::exit(1);
    }
}

fn send(args: SendArgs) -> anyhow::Result<()> {
    let text = if args.text == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the message text from standard input")?;
        s.trim_end_matches('\n').to_string()
    } else {
        args.text.clone()
    };
    let payload = build_payload(&args, text);
    payload.validate().context("nothing to send")?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&payload)?);
        return Ok(());
    }
    let Some(raw_url) = args.webhook.as_deref() else {
        bail!("no webhook URL: pass --webhook or set NOTIFY_WEBHOOK_URL");
    };
    let url = WebhookUrl::parse(raw_url)?;
    let timeout = match Duration::try_from_secs_f64(args.timeout) {
        Ok(t) if !t.is_zero() => t,
        _ => bail!(
            "--timeout must be a positive number of seconds, got {}",
            args.timeout
        ),
    };
    let client = ClientBuilder::new()
        .timeout(timeout)
        .retry(RetryPolicy::default().max_attempts(Some(args.attempts)))
        .long_text(if args.truncate {
            notify::LongText::Truncate
        } else {
            notify::LongText::Split
        })
        .build(url);
    let receipt = client.send(&payload)?;
    if receipt.posts > 1 {
        eprintln!("notify: long text sent as {} posts", receipt.posts);
    }
    Ok(())
}

fn build_payload(args: &SendArgs, text: String) -> Payload {
    let mut payload = Payload {
        username: args.username.clone(),
        channel: args.channel.clone(),
        icon_url: args.icon_url.clone(),
        priority: args.priority.map(|level| {
            Priority {
                priority: level,
                ..Priority::default()
            }
            .requested_ack(args.requested_ack)
        }),
        ..Payload::default()
    };
    if args.color.is_some() || args.title.is_some() {
        let fallback = match &args.title {
            Some(t) if text.is_empty() => t.clone(),
            Some(t) => format!("{t}: {text}"),
            None => text.clone(),
        };
        payload.attachments.push(Attachment {
            fallback: Some(fallback).filter(|f| !f.is_empty()),
            color: args.color.clone(),
            title: args.title.clone(),
            title_link: args.title_link.clone(),
            text: Some(text).filter(|t| !t.is_empty()),
            ..Attachment::default()
        });
    } else {
        payload.text = Some(text);
    }
    payload
}
