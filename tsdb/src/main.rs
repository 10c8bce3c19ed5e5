//! `tsdb`: import exposition files into blocks, show statistics, dump
//! samples. Flags are parsed here; the work is done by the library.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use model::exposition::{format_go_float, Format};
use model::{collect_range, MatchType, Matcher, Queryable, SelectHints};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;
use tsdb::import::{import_file, ImportOptions};
use tsdb::{Db, Options};

#[derive(Parser, Debug)]
#[command(name = "tsdb", version, about = "Inspect and fill a tsdb data directory")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Import an OpenMetrics or text-format file (with timestamps) as
    /// blocks aligned to the block range, without going through the WAL.
    Import {
        /// The data directory to write blocks into.
        #[arg(long)]
        data_dir: PathBuf,
        /// Input format (default: detected; OpenMetrics ends with "# EOF").
        #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
        format: FormatArg,
        /// Block range in hours.
        #[arg(long, default_value_t = 2)]
        block_hours: u32,
        /// The file to import.
        file: PathBuf,
    },
    /// Print series, samples, blocks and bytes of a data directory.
    Stats {
        /// The data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Print samples as `labels value timestamp` lines.
    Dump {
        /// The data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Series selector, e.g. `up{job="node",instance=~"a.*"}`
        /// (default: every series).
        #[arg(long = "match")]
        selector: Option<String>,
        /// Inclusive start, ms since the epoch.
        #[arg(long, default_value_t = i64::MIN + 1, allow_hyphen_values = true)]
        min_time: i64,
        /// Inclusive end, ms since the epoch.
        #[arg(long, default_value_t = i64::MAX, allow_hyphen_values = true)]
        max_time: i64,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Auto,
    Openmetrics,
    Text,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("tsdb: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Import { data_dir, format, block_hours, file } => import(data_dir, format, block_hours, file),
        Cmd::Stats { data_dir } => stats(data_dir),
        Cmd::Dump { data_dir, selector, min_time, max_time } => dump(data_dir, selector, min_time, max_time),
    }
}

fn import(data_dir: PathBuf, format: FormatArg, block_hours: u32, file: PathBuf) -> Result<()> {
    if block_hours == 0 {
        bail!("--block-hours must be at least 1");
    }
    let opts = ImportOptions {
        block_range: i64::from(block_hours) * 3600 * 1000,
        format: match format {
            FormatArg::Auto => None,
            FormatArg::Openmetrics => Some(Format::OpenMetrics),
            FormatArg::Text => Some(Format::Text004),
        },
    };
    let len = std::fs::metadata(&file).with_context(|| format!("reading {}", file.display()))?.len();
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(len);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} parsing [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Some(bar)
    } else {
        None
    };
    let started = Instant::now();
    let mut progress = |n: u64| {
        if let Some(b) = &bar {
            b.set_position(n);
        }
    };
    let result = import_file(&file, &data_dir, &opts, &mut progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let stats = result.with_context(|| format!("importing {}", file.display()))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "imported {} samples of {} series from {} lines into {} blocks in {:.2}s",
        stats.samples,
        stats.series,
        stats.lines,
        stats.blocks.len(),
        started.elapsed().as_secs_f64()
    )?;
    if stats.duplicates_skipped > 0 {
        writeln!(out, "skipped {} exact duplicate samples", stats.duplicates_skipped)?;
    }
    for b in &stats.blocks {
        writeln!(out, "block {} [{}, {}) series={} samples={}", b.ulid, b.mint, b.maxt, b.series, b.samples)?;
    }
    Ok(())
}

fn open(data_dir: &PathBuf) -> Result<Db> {
    if !data_dir.is_dir() {
        bail!("data directory {} does not exist", data_dir.display());
    }
    let opts = Options::builder().retention_time(None).build();
    let db = Db::open(data_dir, opts).with_context(|| format!("opening {}", data_dir.display()))?;
    if let Some(r) = db.repair_report() {
        eprintln!("tsdb: warning: {r}");
    }
    Ok(db)
}

fn stats(data_dir: PathBuf) -> Result<()> {
    let db = open(&data_dir)?;
    let s = db.stats();
    let q = db.querier(i64::MIN + 1, i64::MAX)?;
    let all = [Matcher::new(MatchType::Regex, "__name__", ".*")?];
    let series = q.select(&SelectHints::range(i64::MIN + 1, i64::MAX), &all)?.len();
    drop(q);
    let block_samples: u64 = s.blocks.iter().map(|b| b.num_samples).sum();
    let samples = block_samples + s.head_samples;
    let bytes = tsdb::fs::dir_size(&data_dir)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "series: {series}")?;
    writeln!(out, "samples: {samples}")?;
    writeln!(out, "blocks: {}", s.blocks.len())?;
    writeln!(out, "head series: {}", s.head_series)?;
    writeln!(out, "head samples: {}", s.head_samples)?;
    writeln!(out, "bytes on disk: {bytes}")?;
    if samples > 0 {
        writeln!(out, "bytes per sample: {:.3}", bytes as f64 / samples as f64)?;
    }
    for b in &s.blocks {
        writeln!(
            out,
            "block {} mint={} maxt={} series={} samples={} bytes={} level={}",
            b.ulid, b.mint, b.maxt, b.num_series, b.num_samples, b.bytes, b.level
        )?;
    }
    drop(out);
    db.close()?;
    Ok(())
}

fn dump(data_dir: PathBuf, selector: Option<String>, mint: i64, maxt: i64) -> Result<()> {
    let matchers = match &selector {
        Some(s) => parse_selector(s).with_context(|| format!("invalid --match {s:?}"))?,
        None => vec![Matcher::new(MatchType::Regex, "__name__", ".*")?],
    };
    let db = open(&data_dir)?;
    let q = db.querier(mint, maxt)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for mut s in q.select(&SelectHints::range(mint, maxt), &matchers)? {
        let labels = s.labels.to_string();
        for x in collect_range(s.samples.as_mut(), mint, maxt)? {
            writeln!(out, "{labels} {} {}", format_go_float(x.v), x.t)?;
        }
    }
    out.flush()?;
    drop(out);
    drop(q);
    db.close()?;
    Ok(())
}

/// Parses `name{l="v", l2=~"re", l3!="x", l4!~"y"}` (name or braces
/// optional, not both absent).
fn parse_selector(s: &str) -> Result<Vec<Matcher>> {
    let s = s.trim();
    let (name, rest) = match s.find('{') {
        Some(i) => (s[..i].trim(), &s[i..]),
        None => (s, ""),
    };
    let mut out = Vec::new();
    if !name.is_empty() {
        if !model::is_valid_metric_name(name) {
            bail!("invalid metric name {name:?}");
        }
        out.push(Matcher::equal("__name__", name));
    }
    if !rest.is_empty() {
        let Some(body) = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
            bail!("expected a label set in braces after the metric name");
        };
        let b = body.as_bytes();
        let mut i = 0;
        loop {
            while i < b.len() && (b[i] == b' ' || b[i] == b',') {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let lname = &body[start..i];
            if lname.is_empty() {
                bail!("expected a label name at byte {}", start + name.len() + 1);
            }
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            let (kind, len) = match &b[i..] {
                [b'=', b'~', ..] => (MatchType::Regex, 2),
                [b'!', b'=', ..] => (MatchType::NotEqual, 2),
                [b'!', b'~', ..] => (MatchType::NotRegex, 2),
                [b'=', ..] => (MatchType::Equal, 1),
                _ => bail!("expected =, !=, =~ or !~ after label {lname:?}"),
            };
            i += len;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i >= b.len() || b[i] != b'"' {
                bail!("expected a double-quoted value for label {lname:?}");
            }
            i += 1;
            let mut value = String::new();
            let mut closed = false;
            let mut chars = body[i..].char_indices();
            while let Some((k, c)) = chars.next() {
                match c {
                    '"' => {
                        i += k + 1;
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => break,
                    },
                    c => value.push(c),
                }
            }
            if !closed {
                bail!("unterminated value for label {lname:?}");
            }
            out.push(Matcher::new(kind, lname, &value)?);
        }
    }
    if out.is_empty() {
        bail!("empty selector");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let m = parse_selector(r#"up{job="node", i=~"a.*",x!="y\"z"}"#).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[3].value, "y\"z");
        assert_eq!(m[2].kind, MatchType::Regex);
        assert!(parse_selector("{a=\"b\"}").is_ok());
        assert!(parse_selector("up{job=node}").is_err());
        assert!(parse_selector("up{job=\"x}").is_err());
        assert!(parse_selector("").is_err());
        assert!(parse_selector("1up").is_err());
    }
}
