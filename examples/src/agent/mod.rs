//! The log collector agent (a small Promtail): tails files matched by
//! globs, follows rotation (rename + new file) and truncation, attaches the
//! labels of its config plus `filename`, batches lines and pushes them to
//! Loki push endpoints (ours or Loki, protobuf+snappy or JSON) with retries.
//!
//! Delivery is exactly once across crashes, given a receiver that drops
//! identical entries (same stream, timestamp and line) as Loki does:
//! - every line gets a timestamp when read, strictly increasing per stream;
//! - before a batch is pushed, its byte ranges and first timestamps are
//!   written to the positions file (`pending`), atomically;
//! - offsets advance only after every client acknowledged the batch (or
//!   refused it for good with a 4xx, which is logged);
//! - on start, a `pending` batch is re-read from the same byte ranges, given
//!   the same timestamps and pushed again before anything else.
//!
//! Files are tracked by device and inode, so a renamed file is read to its
//! end under its original `filename`, even if it was renamed while the
//! agent was down (it is looked for in the same directory). A file that
//! shrank below the read offset was truncated and is read again from 0.
//!
//! Everything runs on the calling thread; memory is bounded by the batch
//! size plus one read window per file.
//!
//! ```no_run
//! use examples::agent::{Agent, Config};
//! use std::sync::atomic::AtomicBool;
//! let cfg = Config::load(std::path::Path::new("agent.yaml"))?;
//! let mut agent = Agent::new(cfg)?;
//! agent.run(&AtomicBool::new(false))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod client;
pub mod config;
pub mod positions;

pub use client::{Client, SendOutcome};
pub use config::{Config, ConfigError, Target};
pub use positions::{FilePosition, Positions, PositionsError, Segment};

use crate::log_server::push::PushStream;
use model::{Labels, LogEntry};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The positions file could not be read or written.
    #[error(transparent)]
    Positions(#[from] PositionsError),
    /// A test asked the agent to stop between push and commit.
    #[error("simulated crash after push, before the positions were committed")]
    SimulatedCrash,
}

type FileKey = (u64, u64);

struct Tracked {
    path: PathBuf,
    file: File,
    labels: Labels,
    committed: u64,
    read_off: u64,
    rotated: bool,
    flush_partial: bool,
}

#[derive(Default)]
struct Batch {
    streams: BTreeMap<Labels, Vec<LogEntry>>,
    segments: Vec<(FileKey, Segment)>,
    bytes: usize,
    started: Option<Instant>,
}

/// Counters of what the agent did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Lines in acknowledged batches.
    pub lines_sent: u64,
    /// Batches acknowledged by every client.
    pub batches_sent: u64,
    /// Batches some client refused for good.
    pub batches_dropped: u64,
    /// Lines pushed again from a `pending` record at start.
    pub lines_replayed: u64,
}

/// The agent.
pub struct Agent {
    cfg: Config,
    targets: Vec<Target>,
    clients: Vec<Client>,
    positions_path: PathBuf,
    files: BTreeMap<FileKey, Tracked>,
    saved: BTreeMap<FileKey, FilePosition>,
    pending: Vec<Segment>,
    stream_ts: HashMap<Labels, i64>,
    batch: Batch,
    batch_wait: Duration,
    batch_size: usize,
    last_discovery: Option<Instant>,
    crash_after_push: bool,
    stats: AgentStats,
}

fn labels_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter().map(|x| (x.name.clone(), x.value.clone())).collect()
}

fn now_ns() -> i64 {
    crate::log_server::now_ns()
}

/// Splits `buf` into lines, deterministically: a line ends at `\n` (a
/// trailing `\r` is dropped); a line longer than `max` bytes is cut at the
/// last character boundary at or before `max`; without a newline the rest
/// (up to `hard_end`) is a line only when `final_` (the end of a rotated
/// file). No line starts at or after `budget` or `hard_end`. Returns the
/// lines, the bytes consumed and whether the last line had no newline.
///
/// The decision for a line only looks at the `max + 1` bytes from its
/// start, so re-reading a consumed range with that much lookahead gives the
/// same lines (what makes a replay after a crash exact).
pub fn split_lines(buf: &[u8], budget: usize, hard_end: usize, final_: bool, max: usize) -> (Vec<String>, usize, bool) {
    let mut lines = Vec::new();
    let mut pos = 0;
    let mut partial = false;
    let hard_end = hard_end.min(buf.len());
    while pos < budget && pos < hard_end {
        let rest = &buf[pos..];
        let window = &rest[..rest.len().min(max + 1)];
        let (line, used) = if let Some(i) = window.iter().position(|&b| b == b'\n') {
            let mut l = &rest[..i];
            if l.last() == Some(&b'\r') {
                l = &l[..l.len() - 1];
            }
            (l, i + 1)
        } else if rest.len() > max {
            let mut b = max;
            while b > 0 && (rest[b] & 0xC0) == 0x80 {
                b -= 1;
            }
            if b == 0 {
                b = max;
            }
            (&rest[..b], b)
        } else if final_ {
            let n = rest.len().min(hard_end - pos);
            partial = true;
            (&rest[..n], n)
        } else {
            break;
        };
        lines.push(String::from_utf8_lossy(line).into_owned());
        pos += used;
    }
    (lines, pos, partial)
}

/// Looks for the file `(dev, ino)`: at `path`, or else in `path`'s
/// directory (where rotation renames it).
fn find_file(path: &Path, key: FileKey) -> Option<(PathBuf, File)> {
    let same = |m: &std::fs::Metadata| m.is_file() && (m.dev(), m.ino()) == key;
    if std::fs::metadata(path).is_ok_and(|m| same(&m)) {
        return File::open(path).ok().map(|f| (path.to_path_buf(), f));
    }
    let dir = path.parent()?;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if std::fs::metadata(&p).is_ok_and(|m| same(&m)) {
            return File::open(&p).ok().map(|f| (p, f));
        }
    }
    None
}

fn read_range(f: &File, start: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match f.read_at(&mut buf[got..], start + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

impl Agent {
    /// An agent for `cfg`; reads the positions file.
    pub fn new(cfg: Config) -> Result<Agent, AgentError> {
        let targets = cfg.targets(Path::new("<config>"))?;
        let clients = cfg.clients.iter().cloned().map(Client::new).collect();
        let positions_path = cfg.positions.filename.clone();
        let pos = Positions::load(&positions_path)?;
        let mut stream_ts: HashMap<Labels, i64> = HashMap::new();
        let mut saved = BTreeMap::new();
        for f in pos.files {
            let l = Labels::from_pairs(f.labels.clone());
            let e = stream_ts.entry(l).or_insert(f.next_ts);
            *e = (*e).max(f.next_ts);
            saved.insert((f.dev, f.ino), f);
        }
        for s in &pos.pending {
            let l = Labels::from_pairs(s.labels.clone());
            let next = s.first_ts.saturating_add(s.lines as i64);
            let e = stream_ts.entry(l).or_insert(next);
            *e = (*e).max(next);
        }
        let (batch_wait, batch_size) = cfg.batch();
        Ok(Agent {
            cfg,
            targets,
            clients,
            positions_path,
            files: BTreeMap::new(),
            saved,
            pending: pos.pending,
            stream_ts,
            batch: Batch::default(),
            batch_wait,
            batch_size,
            last_discovery: None,
            crash_after_push: false,
            stats: AgentStats::default(),
        })
    }

    /// What the agent did so far.
    pub fn stats(&self) -> &AgentStats {
        &self.stats
    }

    /// Paths of the files being read.
    pub fn files(&self) -> Vec<PathBuf> {
        self.files.values().map(|t| t.path.clone()).collect()
    }

    /// For crash tests: make the next [`Agent::flush`] stop with
    /// [`AgentError::SimulatedCrash`] after the push was acknowledged and
    /// before the positions are committed, as a `kill -9` there would.
    pub fn crash_after_next_push(&mut self) {
        self.crash_after_push = true;
    }

    /// Runs until `stop` is set: replays a pending batch, then discovers,
    /// reads, batches and pushes. Lines read but not yet pushed when
    /// stopping are read again next time.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), AgentError> {
        if !self.recover(stop)? {
            return Ok(());
        }
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            self.step(stop)?;
        }
        Ok(())
    }

    /// One round: discovery when due, reading, and a push when the batch
    /// is full or old enough; sleeps when there was nothing to do.
    pub fn step(&mut self, stop: &AtomicBool) -> Result<(), AgentError> {
        if self.last_discovery.is_none_or(|t| t.elapsed() >= self.cfg.target_config.sync_period) {
            if self.discover() > 0 {
                // Drop finished files from the positions file.
                self.save()?;
            }
            self.last_discovery = Some(Instant::now());
        }
        let read = self.poll_files(stop)?;
        let due = self.batch.started.is_some_and(|t| t.elapsed() >= self.batch_wait) || self.batch.bytes >= self.batch_size;
        if due {
            self.flush(stop)?;
        } else if read == 0 {
            let mut nap = self.cfg.poll_interval;
            if let Some(t) = self.batch.started {
                nap = nap.min(self.batch_wait.saturating_sub(t.elapsed()));
            }
            client::sleep_unless_stopped(nap, stop);
        }
        Ok(())
    }

    /// Pushes a `pending` batch left by a crash. False if stopped first.
    pub fn recover(&mut self, stop: &AtomicBool) -> Result<bool, AgentError> {
        if self.pending.is_empty() {
            return Ok(true);
        }
        let max = self.cfg.max_line_size;
        let mut streams: BTreeMap<Labels, Vec<LogEntry>> = BTreeMap::new();
        let mut replayed = 0u64;
        for seg in &self.pending {
            let key = (seg.dev, seg.ino);
            let Some((_, f)) = find_file(&seg.path, key) else {
                eprintln!("agent: cannot replay {} lines of {}: the file is gone", seg.lines, seg.path.display());
                continue;
            };
            let len = (seg.end - seg.start) as usize;
            let buf = match read_range(&f, seg.start, len + max + 1) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("agent: cannot replay {}: {e}", seg.path.display());
                    continue;
                }
            };
            let (lines, used, _) = split_lines(&buf, len, len, seg.partial_tail, max);
            if used != len || lines.len() as u64 != seg.lines {
                eprintln!(
                    "agent: cannot replay {} lines of {}: the file changed (truncated?) since they were read",
                    seg.lines,
                    seg.path.display()
                );
                continue;
            }
            let labels = Labels::from_pairs(seg.labels.clone());
            let out = streams.entry(labels).or_default();
            for (i, l) in lines.into_iter().enumerate() {
                out.push(LogEntry::new(seg.first_ts + i as i64, l));
            }
            replayed += seg.lines;
        }
        let streams: Vec<PushStream> = streams.into_iter().map(|(labels, entries)| PushStream { labels, entries }).collect();
        if !streams.is_empty() {
            eprintln!("agent: replaying {replayed} lines of the batch in flight at the last stop");
            if !self.send_all(&streams, stop) {
                return Ok(false);
            }
        }
        for seg in std::mem::take(&mut self.pending) {
            let key = (seg.dev, seg.ino);
            let next_ts = seg.first_ts.saturating_add(seg.lines as i64);
            let e = self.saved.entry(key).or_insert_with(|| FilePosition {
                path: seg.path.clone(),
                dev: seg.dev,
                ino: seg.ino,
                offset: 0,
                next_ts,
                labels: seg.labels.clone(),
            });
            e.offset = e.offset.max(seg.end);
            e.next_ts = e.next_ts.max(next_ts);
        }
        self.stats.lines_replayed += replayed;
        self.save()?;
        Ok(true)
    }

    /// Expands the globs: opens new files, notices rotated and deleted
    /// ones. Returns how many finished files were forgotten.
    pub fn discover(&mut self) -> usize {
        let mut seen: HashSet<FileKey> = HashSet::new();
        for t in &self.targets {
            let paths = match glob::glob(&t.include) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("agent: job {}: invalid glob {:?}: {e}", t.job_name, t.include);
                    continue;
                }
            };
            for path in paths.flatten() {
                if t.exclude.as_ref().is_some_and(|x| x.matches_path(&path)) {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else { continue };
                if !meta.is_file() {
                    continue;
                }
                let key = (meta.dev(), meta.ino());
                if !seen.insert(key) || self.files.contains_key(&key) {
                    continue;
                }
                let file = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) => {
                        eprintln!("agent: cannot open {}: {e}", path.display());
                        continue;
                    }
                };
                let mut b = t.labels.builder();
                b.set("filename", path.to_string_lossy().into_owned());
                let labels = b.build();
                let offset = match self.saved.remove(&key) {
                    Some(p) if p.offset <= meta.len() => p.offset,
                    Some(_) => {
                        eprintln!("agent: {} is shorter than its saved position: reading it from the start", path.display());
                        0
                    }
                    None => 0,
                };
                eprintln!("agent: reading {} from offset {offset}", path.display());
                self.files.insert(key, Tracked { path, file, labels, committed: offset, read_off: offset, rotated: false, flush_partial: false });
            }
        }
        // Files renamed while the agent was down: finish them.
        for (key, p) in std::mem::take(&mut self.saved) {
            match find_file(&p.path, key) {
                Some((at, file)) if file.metadata().is_ok_and(|m| m.len() >= p.offset) => {
                    eprintln!("agent: finishing rotated {} (now {}) from offset {}", p.path.display(), at.display(), p.offset);
                    let labels = Labels::from_pairs(p.labels.clone());
                    self.files.insert(key, Tracked { path: p.path, file, labels, committed: p.offset, read_off: p.offset, rotated: true, flush_partial: false });
                }
                _ => eprintln!("agent: forgetting {}: the file is gone", p.path.display()),
            }
        }
        let in_batch: HashSet<FileKey> = self.batch.segments.iter().map(|(k, _)| *k).collect();
        let mut done = Vec::new();
        for (key, t) in self.files.iter_mut() {
            if seen.contains(key) {
                continue;
            }
            if !t.rotated {
                eprintln!("agent: {} was rotated or deleted: reading it to its end", t.path.display());
                t.rotated = true;
                continue;
            }
            // Second pass since rotation: the writer had time to reopen.
            t.flush_partial = true;
            let len = t.file.metadata().map(|m| m.len()).unwrap_or(0);
            if t.read_off >= len && t.committed == t.read_off && !in_batch.contains(key) {
                done.push(*key);
            }
        }
        let forgotten = done.len();
        for k in done {
            if let Some(t) = self.files.remove(&k) {
                eprintln!("agent: finished rotated {}", t.path.display());
            }
        }
        forgotten
    }

    /// Reads new lines of every file into the batch (until it is full).
    /// Returns the number of lines read.
    pub fn poll_files(&mut self, stop: &AtomicBool) -> Result<usize, AgentError> {
        let max = self.cfg.max_line_size;
        let mut total = 0;
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        for key in keys {
            if self.batch.bytes >= self.batch_size {
                break;
            }
            let Some(len) = self.files.get(&key).and_then(|t| t.file.metadata().ok()).map(|m| m.len()) else { continue };
            let (read_off, committed) = match self.files.get(&key) {
                Some(t) => (t.read_off, t.committed),
                None => continue,
            };
            if len < read_off || len < committed {
                // Truncated: deliver what was read before, then start over.
                if self.batch.segments.iter().any(|(k, _)| *k == key) && !self.flush(stop)? {
                    return Ok(total);
                }
                if let Some(t) = self.files.get_mut(&key) {
                    eprintln!("agent: {} was truncated: reading it from the start", t.path.display());
                    t.committed = 0;
                    t.read_off = 0;
                }
                self.save()?;
                continue;
            }
            if len == read_off {
                continue;
            }
            let Some(t) = self.files.get(&key) else { continue };
            // Lines start below `room`; each needs `max + 1` bytes of lookahead.
            let room = self.batch_size.saturating_sub(self.batch.bytes).clamp(1, 4 << 20);
            let want = ((len - read_off) as usize).min(room + max + 1);
            let buf = match read_range(&t.file, read_off, want) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("agent: reading {}: {e}", t.path.display());
                    continue;
                }
            };
            let final_ = t.flush_partial && read_off + buf.len() as u64 >= len;
            let (lines, used, partial) = split_lines(&buf, room, buf.len(), final_, max);
            if lines.is_empty() {
                continue;
            }
            let labels = t.labels.clone();
            let path = t.path.clone();
            let n = lines.len();
            let next = self.stream_ts.get(&labels).copied().unwrap_or(i64::MIN);
            // Extend the previous segment of this file when contiguous.
            let extend = self.batch.segments.last().is_some_and(|(k, s)| {
                *k == key && s.end == read_off && !s.partial_tail && s.first_ts.saturating_add(s.lines as i64) == next
            });
            let first_ts = if extend { next } else { now_ns().max(next) };
            if extend {
                if let Some((_, s)) = self.batch.segments.last_mut() {
                    s.end += used as u64;
                    s.lines += n as u64;
                    s.partial_tail = partial;
                }
            } else {
                self.batch.segments.push((
                    key,
                    Segment {
                        path,
                        dev: key.0,
                        ino: key.1,
                        start: read_off,
                        end: read_off + used as u64,
                        first_ts,
                        lines: n as u64,
                        partial_tail: partial,
                        labels: labels_map(&labels),
                    },
                ));
            }
            self.stream_ts.insert(labels.clone(), first_ts.saturating_add(n as i64));
            let entries = self.batch.streams.entry(labels).or_default();
            for (i, l) in lines.into_iter().enumerate() {
                self.batch.bytes += l.len();
                entries.push(LogEntry::new(first_ts + i as i64, l));
            }
            self.batch.started.get_or_insert_with(Instant::now);
            if let Some(t) = self.files.get_mut(&key) {
                t.read_off = read_off + used as u64;
            }
            total += n;
        }
        Ok(total)
    }

    fn send_all(&mut self, streams: &[PushStream], stop: &AtomicBool) -> bool {
        let mut dropped = false;
        for c in &self.clients {
            match c.send(streams, stop) {
                SendOutcome::Sent => {}
                SendOutcome::Dropped(_) => dropped = true,
                SendOutcome::Interrupted => return false,
            }
        }
        if dropped {
            self.stats.batches_dropped += 1;
        }
        true
    }

    /// Pushes the batch: records it as pending, sends it to every client,
    /// then advances the positions. False if stopped before every client
    /// acknowledged (the batch stays pending).
    pub fn flush(&mut self, stop: &AtomicBool) -> Result<bool, AgentError> {
        if self.batch.segments.is_empty() {
            self.batch = Batch::default();
            return Ok(true);
        }
        self.pending = self.batch.segments.iter().map(|(_, s)| s.clone()).collect();
        self.save()?;
        let streams: Vec<PushStream> =
            self.batch.streams.iter().map(|(l, e)| PushStream { labels: l.clone(), entries: e.clone() }).collect();
        if !self.send_all(&streams, stop) {
            return Ok(false);
        }
        if self.crash_after_push {
            self.crash_after_push = false;
            return Err(AgentError::SimulatedCrash);
        }
        let lines: u64 = self.batch.segments.iter().map(|(_, s)| s.lines).sum();
        for (key, s) in std::mem::take(&mut self.batch.segments) {
            if let Some(t) = self.files.get_mut(&key) {
                t.committed = t.committed.max(s.end);
            }
        }
        self.batch = Batch::default();
        self.pending.clear();
        self.save()?;
        self.stats.lines_sent += lines;
        self.stats.batches_sent += 1;
        Ok(true)
    }

    fn save(&self) -> Result<(), PositionsError> {
        let mut files: Vec<FilePosition> = self
            .files
            .iter()
            .map(|(k, t)| FilePosition {
                path: t.path.clone(),
                dev: k.0,
                ino: k.1,
                offset: t.committed,
                next_ts: self.stream_ts.get(&t.labels).copied().unwrap_or(0),
                labels: labels_map(&t.labels),
            })
            .collect();
        files.extend(self.saved.values().cloned());
        Positions { files, pending: self.pending.clone() }.save(&self.positions_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_lines() {
        assert_eq!(split_lines(b"a\nbb\r\ncc", 8, 8, false, 100), (vec!["a".into(), "bb".into()], 6, false));
        assert_eq!(split_lines(b"a\nbb\r\ncc", 8, 8, true, 100), (vec!["a".into(), "bb".into(), "cc".into()], 8, true));
        // Long lines are cut at character boundaries.
        assert_eq!(split_lines("abcdé\n".as_bytes(), 7, 7, false, 5), (vec!["abcd".into(), "é".into()], 7, false));
        assert_eq!(split_lines(b"abcdefgh", 8, 8, false, 3), (vec!["abc".into(), "def".into()], 6, false));
        // The budget stops new lines, not the one under way.
        assert_eq!(split_lines(b"a\nbbb\nc\n", 3, 8, false, 10), (vec!["a".into(), "bbb".into()], 6, false));
        assert_eq!(split_lines(b"a\nbbb\nc\n", 2, 8, false, 10), (vec!["a".into()], 2, false));
        // A partial tail stops at the hard end.
        assert_eq!(split_lines(b"a\nbcdef", 10, 4, true, 10), (vec!["a".into(), "bc".into()], 4, true));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Reading in windows of any size, then replaying a consumed range
        /// with lookahead, gives the same lines: what makes replay exact.
        #[test]
        fn split_is_deterministic_across_windows(data in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'x'), Just(0xC3u8), Just(0xA9u8)], 0..200), window in 1usize..50, max in 16usize..24) {
            let mut pos = 0;
            let mut live = Vec::new();
            let mut ranges = Vec::new();
            loop {
                // As the agent reads: a budget, and `max + 1` bytes of lookahead.
                let end = (pos + window + max + 1).min(data.len());
                let (l, used, _) = split_lines(&data[pos..end], window, end - pos, false, max);
                if used == 0 { break; }
                ranges.push((pos, pos + used, l.clone()));
                live.extend(l);
                pos += used;
            }
            // Each pushed range replays (with lookahead) to the same lines.
            for (s, e, lines) in ranges {
                let look = (e + max + 1).min(data.len());
                let (again, used, _) = split_lines(&data[s..look], e - s, e - s, false, max);
                prop_assert_eq!(used, e - s);
                prop_assert_eq!(again, lines);
            }
            let (all, used, _) = split_lines(&data, pos, pos, false, max);
            prop_assert_eq!(used, pos);
            prop_assert_eq!(all, live);
        }
    }
}
