//! `agent`: a log collector (a small Promtail). Tails the files of a
//! Promtail-style YAML config and pushes their lines to Loki push endpoints.
//! See `examples::agent::config` for the supported configuration.

use anyhow::Context;
use clap::Parser;
use examples::agent::{Agent, Config};
use std::sync::atomic::AtomicBool;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Promtail-style YAML configuration.
    #[arg(long = "config.file", alias = "config")]
    config: std::path::PathBuf,
    /// Check the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = Config::load(&args.config)?;
    if args.check_config {
        eprintln!("agent: {} is valid", args.config.display());
        return Ok(());
    }
    let mut agent = Agent::new(cfg).context("starting agent")?;
    eprintln!("agent: started");
    agent.run(&AtomicBool::new(false)).context("agent stopped")?;
    Ok(())
}
