//! `textfile`: metrics from `*.prom` files in a directory
//! (`--collector.textfile.directory`), parsed as text format 0.0.4.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use model::exposition::{parse_families, Format, MetricFamily};
use model::{Label, Labels};

use crate::collector::{Collector, Sink};
use crate::error::{Error, ParseError};
use crate::root::list_dir;

pub(crate) struct Textfile {
    pub(crate) directory: Option<PathBuf>,
}

/// Parses one file into families with node_exporter's adjustments: a
/// family without HELP gets `Metric read from <path>`, and every metric of
/// a family gets all label names used in the family (missing ones empty).
/// Client-side timestamps are refused.
fn read_file(path: &Path) -> Result<Vec<MetricFamily>, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut fams = parse_families(&bytes, Format::Text004)
        .map_err(|e| Error::parse(path, ParseError::new(e.line, e.kind.to_string())))?;
    if fams.iter().any(|f| f.metrics.iter().any(|m| m.timestamp_ms.is_some())) {
        return Err(Error::parse(
            path,
            ParseError::new(0, "textfile contains unsupported client-side timestamps, skipping entire file"),
        ));
    }
    for f in &mut fams {
        if f.help.is_none() {
            f.help = Some(format!("Metric read from {}", path.display()));
        }
        let names: BTreeSet<String> =
            f.metrics.iter().flat_map(|m| m.labels.iter().map(|l| l.name.clone())).collect();
        for m in &mut f.metrics {
            if m.labels.len() < names.len() {
                let mut v: Vec<Label> = m.labels.iter().cloned().collect();
                for n in &names {
                    if !m.labels.contains(n) {
                        v.push(Label::new(n.clone(), ""));
                    }
                }
                m.labels = Labels::new(v);
            }
        }
    }
    Ok(fams)
}

impl Collector for Textfile {
    fn name(&self) -> &'static str {
        "textfile"
    }

    fn collect(&self, _root: &crate::root::Root, out: &mut Sink) -> Result<(), Error> {
        let mut errored = false;
        let mut mtimes = Vec::new();
        if let Some(dir) = self.directory.as_deref().filter(|d| !d.as_os_str().is_empty()) {
            match list_dir(dir) {
                Ok(names) => {
                    for name in names.iter().filter(|n| n.ends_with(".prom")) {
                        let path = dir.join(name);
                        match read_file(&path) {
                            Ok(fams) => {
                                for f in fams {
                                    out.push_family(f);
                                }
                                // Stat only after a successful parse, so a
                                // broken file never looks fresh.
                                let mtime = std::fs::metadata(&path)
                                    .and_then(|m| m.modified())
                                    .ok()
                                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                                    .map(|d| (d.as_millis() as f64) / 1000.0);
                                match mtime {
                                    Some(t) => mtimes.push((path.display().to_string(), t)),
                                    None => errored = true,
                                }
                            }
                            Err(_) => errored = true,
                        }
                    }
                }
                Err(_) => errored = true,
            }
        }
        for (file, t) in &mtimes {
            out.gauge(
                "node_textfile_mtime_seconds",
                "Unixtime mtime of textfiles successfully read.",
                &[("file", file)],
                *t,
            );
        }
        out.gauge(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
            &[],
            if errored { 1.0 } else { 0.0 },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path) -> String {
        let mut sink = Sink::new();
        Textfile { directory: Some(dir.to_path_buf()) }.collect(&crate::root::Root::new(), &mut sink).unwrap();
        let mut fams = sink.into_families();
        model::exposition::sort_families(&mut fams);
        model::exposition::families_to_string(&fams, Format::Text004).unwrap()
    }

    #[test]
    fn reads_prom_files_and_flags_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.prom"), "# TYPE x counter\nx{a=\"1\"} 2\nx{b=\"2\"} 3\ny 1\n").unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "garbage {{{\n").unwrap();
        let text = run(dir.path());
        assert!(text.contains("x{a=\"\",b=\"2\"} 3\nx{a=\"1\",b=\"\"} 2\n"), "{text}");
        assert!(text.contains(&format!("# HELP y Metric read from {}/a.prom\n", dir.path().display())));
        assert!(text.contains("node_textfile_scrape_error 0\n"));
        std::fs::write(dir.path().join("b.prom"), "bad line {\n").unwrap();
        std::fs::write(dir.path().join("c.prom"), "z 1 1700000000000\n").unwrap();
        let text = run(dir.path());
        assert!(text.contains("node_textfile_scrape_error 1\n"));
        assert!(!text.contains("\nz "));
        assert!(text.contains("x{a=\"1\",b=\"\"} 2\n"));
    }

    #[test]
    fn missing_directory_is_an_error_metric_not_a_failure() {
        let text = run(Path::new("/nonexistent/textfile/dir"));
        assert!(text.contains("node_textfile_scrape_error 1\n"));
    }
}
