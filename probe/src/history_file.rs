//! The heartbeat history file: JSON lines, append-only, pruned by rewrite.
//!
//! The first line is a header, `{"rec":"header","format":"probe-history",
//! "version":1}`; files with another format or version are refused (a file
//! without a header is read as version 1). Each further line is one
//! [`Record`] as a JSON object ending in `\n`: a beat
//! (`{"rec":"beat","monitor":..,"status":"up","time":<unix ms>,"ping_ms":..,
//! "important":..,"msg":..}`) or a day's totals (`{"rec":"day","monitor":..,
//! "day":<days since epoch>,"up":..,"down":..,"ping_sum":..,"ping_count":..}`).
//!
//! * A line without its final `\n` at the end of the file is a torn write
//!   (the process died mid-append): it is cut off when the file is opened.
//! * A complete line that does not parse is corruption: opening fails with
//!   [`HistoryError::Corrupt`] naming the line and byte offset, so nothing
//!   is silently lost.
//! * [`HistoryLog::prune`] folds beats older than the retention into one day
//!   record per monitor and day (so 30-day and 1-year uptime survive), drops
//!   day records older than 366 days, and replaces the file atomically
//!   (write a temporary file, fsync, rename).
//!
//! Appends go through a buffer; [`HistoryLog::flush`] hands them to the OS
//! and [`HistoryLog::sync`] also fsyncs.

use crate::error::HistoryError;
use crate::history::{day_of, BeatRecord, DayRecord, HeaderRecord, MonitorHistory, Record, Totals, HISTORY_FORMAT, HISTORY_VERSION};
use crate::state::Beat;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Day records are kept this many days (enough for the 1-year window).
const KEEP_DAYS: i64 = 366;

/// An open history file.
#[derive(Debug)]
pub struct HistoryLog {
    path: PathBuf,
    out: BufWriter<File>,
}

/// What [`HistoryLog::prune`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Beats folded into day records.
    pub folded: usize,
    /// Records dropped for being older than a year.
    pub dropped: usize,
    /// Records in the file afterwards.
    pub kept: usize,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> HistoryError + '_ {
    move |source| HistoryError::Io { path: path.to_path_buf(), source }
}

/// Read every complete record of `path`, calling `f` for each. Returns the
/// byte length of the complete lines (where a torn tail starts).
fn scan(path: &Path, mut f: impl FnMut(Record)) -> Result<u64, HistoryError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut r = BufReader::new(file);
    let mut line = Vec::new();
    let mut offset = 0u64;
    let mut lineno = 0usize;
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(io_err(path))?;
        if n == 0 || line.last() != Some(&b'\n') {
            // End of file, possibly after a torn (unterminated) last line.
            return Ok(offset);
        }
        lineno += 1;
        let body = &line[..line.len() - 1];
        if !body.iter().all(u8::is_ascii_whitespace) {
            let rec: Record = serde_json::from_slice(body).map_err(|e| HistoryError::Corrupt {
                path: path.to_path_buf(),
                line: lineno,
                offset,
                reason: e.to_string(),
            })?;
            if let Record::Header(h) = &rec {
                if h.format != HISTORY_FORMAT || h.version != HISTORY_VERSION {
                    return Err(HistoryError::Corrupt {
                        path: path.to_path_buf(),
                        line: lineno,
                        offset,
                        reason: format!(
                            "unsupported history format {:?} version {} (this program reads {HISTORY_FORMAT:?} version {HISTORY_VERSION})",
                            h.format, h.version
                        ),
                    });
                }
            }
            f(rec);
        }
        offset += n as u64;
    }
}

impl HistoryLog {
    /// Open (or create) the file, cut off a torn last line, and replay it
    /// into per-monitor histories keyed by monitor name.
    pub fn open(path: &Path) -> Result<(HistoryLog, HashMap<String, MonitorHistory>), HistoryError> {
        let mut hist: HashMap<String, MonitorHistory> = HashMap::new();
        let good = scan(path, |rec| {
            let name = match &rec {
                Record::Beat(b) => &b.monitor,
                Record::Day(d) => &d.monitor,
                Record::Header(_) => return,
            };
            match hist.get_mut(name) {
                Some(h) => h.apply(&rec),
                None => {
                    let mut h = MonitorHistory::default();
                    h.apply(&rec);
                    hist.insert(name.clone(), h);
                }
            }
        })?;
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        if len > good {
            // Drop the torn tail so the next append starts on a fresh line.
            file.set_len(good).map_err(io_err(path))?;
        }
        let mut log = HistoryLog { path: path.to_path_buf(), out: BufWriter::new(file) };
        if good == 0 {
            log.append_record(&Record::Header(HeaderRecord::current()))?;
            log.flush()?;
        }
        Ok((log, hist))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one beat of `monitor` (buffered).
    pub fn append(&mut self, monitor: &str, beat: &Beat) -> Result<(), HistoryError> {
        self.append_record(&Record::Beat(BeatRecord::from_beat(monitor, beat)))
    }

    /// Append any record (buffered).
    pub fn append_record(&mut self, rec: &Record) -> Result<(), HistoryError> {
        let path = &self.path;
        serde_json::to_writer(&mut self.out, rec).map_err(|e| HistoryError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.out.write_all(b"\n").map_err(io_err(path))
    }

    /// Hand buffered records to the OS.
    pub fn flush(&mut self) -> Result<(), HistoryError> {
        self.out.flush().map_err(io_err(&self.path))
    }

    /// Flush and fsync.
    pub fn sync(&mut self) -> Result<(), HistoryError> {
        self.flush()?;
        self.out.get_ref().sync_data().map_err(io_err(&self.path))
    }

    /// Every beat in the file (optionally of one monitor), oldest first as
    /// written.
    pub fn read_beats(path: &Path, monitor: Option<&str>) -> Result<Vec<BeatRecord>, HistoryError> {
        let mut out = Vec::new();
        scan(path, |rec| {
            if let Record::Beat(b) = rec {
                if monitor.is_none() || monitor == Some(b.monitor.as_str()) {
                    out.push(b);
                }
            }
        })?;
        Ok(out)
    }

    /// Fold beats older than `now - retention_ms` into day records, drop
    /// day records older than 366 days, and atomically replace the file.
    pub fn prune(&mut self, now: i64, retention_ms: i64) -> Result<PruneStats, HistoryError> {
        self.flush()?;
        let cutoff = now - retention_ms;
        let oldest_day = day_of(now) - KEEP_DAYS;
        let mut stats = PruneStats::default();
        let mut days: BTreeMap<(String, i64), Totals> = BTreeMap::new();
        let mut keep: Vec<Record> = Vec::new();
        scan(&self.path, |rec| match rec {
            Record::Beat(b) if b.time < cutoff => {
                let day = day_of(b.time);
                if day < oldest_day {
                    stats.dropped += 1;
                } else {
                    stats.folded += 1;
                    let t = Totals::of(b.status, b.ping_ms);
                    let e = days.entry((b.monitor, day)).or_default();
                    e.up += t.up;
                    e.down += t.down;
                    e.ping_sum += t.ping_sum;
                    e.ping_count += t.ping_count;
                }
            }
            Record::Day(d) => {
                if d.day < oldest_day {
                    stats.dropped += 1;
                } else {
                    let t = d.totals();
                    let e = days.entry((d.monitor, d.day)).or_default();
                    e.up += t.up;
                    e.down += t.down;
                    e.ping_sum += t.ping_sum;
                    e.ping_count += t.ping_count;
                }
            }
            Record::Header(_) => {}
            other => keep.push(other),
        })?;
        let tmp = self.path.with_extension("tmp");
        {
            let f = File::create(&tmp).map_err(io_err(&tmp))?;
            let mut w = BufWriter::new(f);
            let mut write = |rec: &Record| -> Result<(), HistoryError> {
                serde_json::to_writer(&mut w, rec)
                    .map_err(|e| HistoryError::Io { path: tmp.clone(), source: std::io::Error::other(e) })?;
                w.write_all(b"\n").map_err(io_err(&tmp))
            };
            write(&Record::Header(HeaderRecord::current()))?;
            for ((monitor, day), t) in &days {
                write(&Record::Day(DayRecord::new(monitor, *day, *t)))?;
                stats.kept += 1;
            }
            for rec in &keep {
                write(rec)?;
                stats.kept += 1;
            }
            let f = w.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
        if let Some(dir) = self.path.parent() {
            // Make the rename durable; some filesystems refuse to open a directory.
            if let Ok(d) = File::open(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }) {
                let _ = d.sync_all();
            }
        }
        let file = OpenOptions::new().append(true).read(true).open(&self.path).map_err(io_err(&self.path))?;
        self.out = BufWriter::new(file);
        Ok(stats)
    }

    /// The byte length of the file as written so far (after a flush).
    pub fn len(&mut self) -> Result<u64, HistoryError> {
        self.flush()?;
        let f = self.out.get_mut();
        f.seek(SeekFrom::End(0)).map_err(io_err(&self.path))
    }

    /// Whether the file is empty.
    pub fn is_empty(&mut self) -> Result<bool, HistoryError> {
        Ok(self.len()? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Window;
    use crate::state::Status;
    use std::io::Read;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn read_text(path: &Path) -> Result<String, HistoryError> {
        let mut s = String::new();
        File::open(path).and_then(|mut f| f.read_to_string(&mut s)).map_err(io_err(path))?;
        Ok(s)
    }

    fn beat(status: Status, time: i64) -> Beat {
        Beat {
            status,
            msg: "m".into(),
            ping_ms: Some(7),
            time,
            important: false,
            notify: None,
            previous: None,
            next_in_ms: 0,
        }
    }

    #[test]
    fn reopen_keeps_history_and_cuts_torn_tail() -> TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("h.jsonl");
        let now = 1_790_000_000_000;
        {
            let (mut log, h) = HistoryLog::open(&p)?;
            assert!(h.is_empty());
            log.append("a", &beat(Status::Up, now))?;
            log.append("a", &beat(Status::Down, now + 1))?;
            log.append("b", &beat(Status::Up, now + 2))?;
            log.sync()?;
        }
        // Simulate a crash mid-append.
        let mut f = OpenOptions::new().append(true).open(&p)?;
        f.write_all(br#"{"rec":"beat","monitor":"a","sta"#)?;
        drop(f);
        let (mut log, h) = HistoryLog::open(&p)?;
        assert_eq!(h["a"].stats.uptime(Window::Day, now + 10), Some(0.5));
        assert_eq!(h["a"].last.as_ref().ok_or("no last beat")?.status, Status::Down);
        assert_eq!(h["b"].last.as_ref().ok_or("no last beat")?.time, now + 2);
        log.append("b", &beat(Status::Up, now + 3))?;
        log.flush()?;
        let text = read_text(&p)?;
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.starts_with(r#"{"rec":"header","format":"probe-history","version":1}"#), "{text}");
        assert!(text.ends_with('\n'));
        assert_eq!(HistoryLog::read_beats(&p, Some("b"))?.len(), 2);
        Ok(())
    }

    #[test]
    fn corrupt_line_is_an_error_with_position() -> TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("h.jsonl");
        let first = r#"{"rec":"beat","monitor":"a","status":"up","time":1,"important":true,"msg":""}"#;
        std::fs::write(&p, format!("{first}\nnot json\n"))?;
        let e = HistoryLog::open(&p).unwrap_err();
        match &e {
            HistoryError::Corrupt { line, offset, .. } => {
                assert_eq!(*line, 2);
                assert_eq!(*offset, first.len() as u64 + 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("line 2"), "{e}");
        Ok(())
    }

    #[test]
    fn unknown_version_is_refused() -> TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("h.jsonl");
        std::fs::write(&p, "{\"rec\":\"header\",\"format\":\"probe-history\",\"version\":9}\n")?;
        let e = HistoryLog::open(&p).unwrap_err().to_string();
        assert!(e.contains("version 9") && e.contains("line 1"), "{e}");
        Ok(())
    }

    #[test]
    fn prune_folds_old_beats_into_days() -> TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("h.jsonl");
        let day = 86_400_000;
        let now = 1_790_000_000_000;
        let (mut log, _) = HistoryLog::open(&p)?;
        log.append("a", &beat(Status::Down, now - 10 * day))?;
        log.append("a", &beat(Status::Up, now - 10 * day + 1))?;
        log.append("a", &beat(Status::Up, now - 400 * day))?;
        log.append("a", &beat(Status::Up, now - 1000))?;
        let st = log.prune(now, 5 * day)?;
        assert_eq!(st, PruneStats { folded: 2, dropped: 1, kept: 2 });
        log.append("a", &beat(Status::Up, now))?;
        log.flush()?;
        drop(log);
        let (_, h) = HistoryLog::open(&p)?;
        let s = &h["a"].stats;
        assert_eq!(s.uptime(Window::Month, now), Some(0.75));
        assert_eq!(s.uptime(Window::Day, now), Some(1.0));
        assert_eq!(HistoryLog::read_beats(&p, None)?.len(), 2);
        Ok(())
    }
}
