//! Bulk import of an exposition file (OpenMetrics or text 0.0.4, with
//! timestamps) directly into blocks, like `promtool tsdb
//! create-blocks-from openmetrics`.
//!
//! The input is read in pieces of a few MiB and parsed as a stream. Samples
//! are compressed as they arrive into per-series XOR chunks, grouped by
//! block window (multiples of the block range), so memory holds about two
//! bytes per sample rather than the text. Series are cached by their raw
//! text (`name{labels}` exactly as written), so labels are decoded once
//! per series. When the whole input parsed, one block per window is
//! written into a staging directory (chunks re-encoded in the block
//! writer's most compact encoding), and only then are the blocks renamed
//! into the output directory: a bad line leaves no block behind.

use crate::block::{BlockError, BlockWriter};
use crate::chunkenc::XorChunk;
use model::exposition::{Entry, Format, ParseError, Parser};
use model::{Labels, Sample};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Samples per chunk.
const SAMPLES_PER_CHUNK: usize = 120;
/// Bytes read and parsed at a time.
const PIECE: usize = 4 << 20;
/// Longest accepted input line.
const MAX_LINE: usize = 256 << 20;

/// Why an import failed. Nothing was written to the output directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Reading the input or writing the output failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line of the input is malformed.
    #[error("line {line}, column {column}: {message}")]
    Parse {
        /// 1-based line number in the whole input.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A sample has no timestamp (import needs explicit timestamps).
    #[error("line {line}: sample of {series} has no timestamp (import needs timestamps)")]
    MissingTimestamp {
        /// 1-based line number.
        line: usize,
        /// The series text.
        series: String,
    },
    /// A series has two samples at one timestamp with different values.
    #[error("line {line}: duplicate sample for {series} at timestamp {t} with a different value")]
    Duplicate {
        /// 1-based line number of the second sample.
        line: usize,
        /// The series.
        series: String,
        /// The timestamp, ms.
        t: i64,
    },
    /// Writing a block failed.
    #[error("writing block [{mint}, {maxt}): {source}")]
    Block {
        /// Window start, ms.
        mint: i64,
        /// Window end (exclusive), ms.
        maxt: i64,
        /// The cause.
        #[source]
        source: BlockError,
    },
}

fn parse_err(e: ParseError, line_base: usize) -> ImportError {
    ImportError::Parse { line: line_base + e.line, column: e.column, message: e.kind.to_string() }
}

/// One block written by an import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedBlock {
    /// The block's ULID.
    pub ulid: String,
    /// Inclusive start, ms.
    pub mint: i64,
    /// Exclusive end, ms.
    pub maxt: i64,
    /// Series in it.
    pub series: u64,
    /// Samples in it.
    pub samples: u64,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Lines read.
    pub lines: usize,
    /// Samples imported.
    pub samples: u64,
    /// Distinct series.
    pub series: usize,
    /// Exact duplicates (same series, timestamp and value) skipped.
    pub duplicates_skipped: u64,
    /// The blocks written, in time order.
    pub blocks: Vec<ImportedBlock>,
}

/// The input format, chosen from the content when not given: OpenMetrics
/// when the input ends with a `# EOF` line.
pub fn detect_format(tail: &[u8]) -> Format {
    let t = tail.strip_suffix(b"\n").unwrap_or(tail);
    let t = t.strip_suffix(b"\r").unwrap_or(t);
    if t.ends_with(b"# EOF") {
        Format::OpenMetrics
    } else {
        Format::Text004
    }
}

/// Samples of one series in one block window.
#[derive(Debug)]
struct Window {
    start: i64,
    done: Vec<(i64, i64, u32, Vec<u8>)>,
    open: XorChunk,
    open_mint: i64,
    last_t: i64,
    last_v: f64,
    /// Set when samples arrived out of order: everything is kept raw and
    /// sorted before writing.
    unsorted: Option<Vec<Sample>>,
}

impl Window {
    fn new(start: i64) -> Window {
        Window {
            start,
            done: Vec::new(),
            open: XorChunk::new(),
            open_mint: 0,
            last_t: i64::MIN,
            last_v: 0.0,
            unsorted: None,
        }
    }

    fn cut(&mut self) {
        if self.open.num_samples() > 0 {
            let c = std::mem::take(&mut self.open);
            let n = c.num_samples() as u32;
            self.done.push((self.open_mint, self.last_t, n, c.into_bytes()));
        }
    }

    /// All samples, decoded.
    fn decode_all(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        self.decode_into(&mut out);
        out
    }

    /// Appends all samples, decoded, to `out`.
    fn decode_into(&self, out: &mut Vec<Sample>) {
        use model::SampleIter;
        let mut push = |bytes: &[u8]| {
            let mut it = crate::chunkenc::XorIter::new(bytes);
            // Chunks written by this module decode; stop at the impossible.
            while let Ok(Some(s)) = it.next() {
                out.push(s);
            }
        };
        for (_, _, _, b) in &self.done {
            push(b);
        }
        push(self.open.bytes());
    }

    /// Adds a sample; `Err(())` for a conflicting duplicate.
    fn push(&mut self, t: i64, v: f64, dups: &mut u64) -> Result<(), ()> {
        if let Some(raw) = &mut self.unsorted {
            raw.push(Sample::new(t, v));
            return Ok(());
        }
        if self.last_t != i64::MIN && t <= self.last_t {
            if t == self.last_t {
                if v.to_bits() == self.last_v.to_bits() {
                    *dups += 1;
                    return Ok(());
                }
                return Err(());
            }
            let mut raw = self.decode_all();
            raw.push(Sample::new(t, v));
            self.done.clear();
            self.open = XorChunk::new();
            self.unsorted = Some(raw);
            return Ok(());
        }
        if self.open.num_samples() >= SAMPLES_PER_CHUNK {
            self.cut();
        }
        if self.open.num_samples() == 0 {
            self.open_mint = t;
        }
        self.open.append(t, v);
        self.last_t = t;
        self.last_v = v;
        Ok(())
    }
}

#[derive(Debug)]
struct SeriesBuf {
    labels: Labels,
    windows: Vec<Window>,
}

/// Collects parsed samples.
#[derive(Debug)]
struct Collector {
    block_range: i64,
    by_key: HashMap<Box<str>, u32>,
    by_labels: HashMap<Labels, u32>,
    series: Vec<SeriesBuf>,
    last_key: String,
    last_id: u32,
    samples: u64,
    dups: u64,
}

impl Collector {
    fn series_id(&mut self, key: &str, labels: impl FnOnce() -> Result<Labels, ParseError>) -> Result<u32, ParseError> {
        if key == self.last_key {
            return Ok(self.last_id);
        }
        let id = match self.by_key.get(key) {
            Some(id) => *id,
            None => {
                let labels = labels()?;
                let id = match self.by_labels.get(&labels) {
                    Some(id) => *id,
                    None => {
                        let id = self.series.len() as u32;
                        self.series.push(SeriesBuf { labels: labels.clone(), windows: Vec::new() });
                        self.by_labels.insert(labels, id);
                        id
                    }
                };
                self.by_key.insert(key.into(), id);
                id
            }
        };
        self.last_key.clear();
        self.last_key.push_str(key);
        self.last_id = id;
        Ok(id)
    }

    fn push(&mut self, id: u32, t: i64, v: f64) -> Result<(), ()> {
        let start = t.div_euclid(self.block_range) * self.block_range;
        let s = &mut self.series[id as usize];
        let w = match s.windows.iter().rposition(|w| w.start == start) {
            Some(i) => &mut s.windows[i],
            None => {
                s.windows.push(Window::new(start));
                let i = s.windows.len() - 1;
                &mut s.windows[i]
            }
        };
        w.push(t, v, &mut self.dups)?;
        self.samples += 1;
        Ok(())
    }
}

/// Options of an import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Block range (ms); blocks are aligned to multiples of it.
    pub block_range: i64,
    /// The input format (`None`: detect from the content).
    pub format: Option<Format>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { block_range: crate::options::DEFAULT_BLOCK_RANGE_MS, format: None }
    }
}

/// Imports the file at `input` into blocks under `out_dir` (created if
/// missing). `progress` is called with the number of input bytes consumed
/// so far.
pub fn import_file(
    input: &Path,
    out_dir: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportStats, ImportError> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { op, path, source }
    };
    let mut file = std::fs::File::open(input).map_err(io("open", input))?;
    let format = match opts.format {
        Some(f) => f,
        None => {
            use std::io::{Seek, SeekFrom};
            let len = file.metadata().map_err(io("stat", input))?.len();
            let mut tail = Vec::new();
            file.seek(SeekFrom::Start(len.saturating_sub(16))).map_err(io("seek", input))?;
            file.read_to_end(&mut tail).map_err(io("read", input))?;
            file.seek(SeekFrom::Start(0)).map_err(io("seek", input))?;
            detect_format(&tail)
        }
    };
    import_reader(&mut file, input, format, out_dir, opts.block_range, progress)
}

/// Imports from a reader (`name` is used in error messages).
pub fn import_reader(
    r: &mut dyn Read,
    name: &Path,
    format: Format,
    out_dir: &Path,
    block_range: i64,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportStats, ImportError> {
    let block_range = block_range.max(1);
    let mut col = Collector {
        block_range,
        by_key: HashMap::new(),
        by_labels: HashMap::new(),
        series: Vec::new(),
        last_key: String::new(),
        last_id: 0,
        samples: 0,
        dups: 0,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(PIECE + (64 << 10));
    let mut line_base = 0usize;
    let mut consumed = 0u64;
    let mut at_end = false;
    let mut target = PIECE;
    while !at_end {
        // Fill the buffer to PIECE bytes or the end of input
        // (`read_to_end` fills spare capacity without zeroing it first).
        while buf.len() < target {
            let want = (target - buf.len()) as u64;
            let n = match (&mut *r).take(want).read_to_end(&mut buf) {
                Ok(n) => n,
                Err(source) => return Err(ImportError::Io { op: "read", path: name.to_path_buf(), source }),
            };
            if n == 0 {
                at_end = true;
                break;
            }
        }
        // Parse whole lines only; keep the partial last line for later.
        let cut = if at_end {
            buf.len()
        } else {
            match buf.iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                None => {
                    // A line longer than the buffer: read more of it.
                    if target >= MAX_LINE {
                        return Err(ImportError::Parse {
                            line: line_base + 1,
                            column: 1,
                            message: format!("line longer than {MAX_LINE} bytes"),
                        });
                    }
                    target *= 2;
                    continue;
                }
            }
        };
        target = PIECE;
        let tail = buf[cut..].to_vec();
        buf.truncate(cut);
        let lines_in = count_newlines(&buf);
        // OpenMetrics needs "# EOF" at the end: close every piece but the
        // last with one, and notice a real one that comes too early.
        let fake_eof = format == Format::OpenMetrics && !at_end;
        if fake_eof {
            buf.extend_from_slice(b"# EOF\n");
        }
        parse_piece(&buf, format, line_base, &mut col)?.map_or(Ok(()), |eof_line| {
            // The parser itself rejects text after the final piece's EOF.
            if fake_eof && eof_line != lines_in + 1 {
                Err(ImportError::Parse {
                    line: line_base + eof_line + 1,
                    column: 1,
                    message: "text after \"# EOF\"".into(),
                })
            } else {
                Ok(())
            }
        })?;
        line_base += lines_in;
        consumed += cut as u64;
        progress(consumed);
        buf.clear();
        buf.extend_from_slice(&tail);
    }
    write_blocks(col, out_dir, line_base)
}

/// Counts `\n` bytes. Byte-wide counters over 16-byte lanes vectorise well
/// (a plain `filter().count()` widens every byte to 64 bits); each lane
/// counts at most 255 per block, so the `u8`s never overflow.
fn count_newlines(buf: &[u8]) -> usize {
    let mut total = 0usize;
    for block in buf.chunks(255 * 16) {
        let mut acc = [0u8; 16];
        let mut lanes = block.chunks_exact(16);
        for c in &mut lanes {
            for i in 0..16 {
                acc[i] += u8::from(c[i] == b'\n');
            }
        }
        total += acc.iter().map(|x| usize::from(*x)).sum::<usize>();
        total += lanes.remainder().iter().filter(|b| **b == b'\n').count();
    }
    total
}

/// Parses one piece; returns the line of `# EOF` when the parser stopped
/// at one (OpenMetrics).
fn parse_piece(
    buf: &[u8],
    format: Format,
    line_base: usize,
    col: &mut Collector,
) -> Result<Option<usize>, ImportError> {
    let mut p = Parser::new(buf, format);
    loop {
        match p.next() {
            Ok(Some(Entry::Sample(s))) => {
                let line = line_base + s.line();
                let Some(t) = s.timestamp_ms else {
                    return Err(ImportError::MissingTimestamp { line, series: s.series.to_string() });
                };
                let id = col.series_id(s.series, || s.labels()).map_err(|mut e| {
                    e.line = s.line();
                    parse_err(e, line_base)
                })?;
                if col.push(id, t, s.value).is_err() {
                    return Err(ImportError::Duplicate { line, series: s.series.to_string(), t });
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                return Ok((format == Format::OpenMetrics).then(|| p.line_number()));
            }
            Err(e) => return Err(parse_err(e, line_base)),
        }
    }
}

/// Writes one block per window into a staging directory, then renames the
/// blocks into `out_dir`.
fn write_blocks(col: Collector, out_dir: &Path, lines: usize) -> Result<ImportStats, ImportError> {
    let Collector { block_range, mut series, samples, dups, .. } = col;
    let mut stats = ImportStats { lines, samples, series: series.len(), duplicates_skipped: dups, blocks: Vec::new() };
    if samples == 0 {
        return Ok(stats);
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|source| ImportError::Io { op: "create directory", path: out_dir.to_path_buf(), source })?;
    let staging = out_dir.join(format!("import-{}{}", std::process::id(), crate::fs::TMP_SUFFIX));
    let result = (|| {
        std::fs::create_dir_all(&staging)
            .map_err(|source| ImportError::Io { op: "create directory", path: staging.clone(), source })?;
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut starts: Vec<i64> = series.iter().flat_map(|s| s.windows.iter().map(|w| w.start)).collect();
        starts.sort_unstable();
        starts.dedup();
        let mut samples: Vec<Sample> = Vec::new();
        for start in starts {
            let end = start.saturating_add(block_range);
            let berr = |source| ImportError::Block { mint: start, maxt: end, source };
            let mut w = BlockWriter::new(&staging, start, end).map_err(berr)?;
            let (mut nseries, mut nsamples) = (0u64, 0u64);
            for s in series.iter_mut() {
                let Some(i) = s.windows.iter().position(|w| w.start == start) else { continue };
                let mut win = s.windows.swap_remove(i);
                if let Some(mut raw) = win.unsorted.take() {
                    raw.sort_by_key(|x| x.t);
                    let before = raw.len();
                    raw.dedup_by(|b, a| a.t == b.t && a.v.to_bits() == b.v.to_bits());
                    stats.duplicates_skipped += (before - raw.len()) as u64;
                    if let Some(pair) = raw.windows(2).find(|p| p[0].t == p[1].t) {
                        return Err(ImportError::Duplicate { line: 0, series: s.labels.to_string(), t: pair[0].t });
                    }
                    nsamples += raw.len() as u64;
                    w.add_series_samples(&s.labels, &raw).map_err(berr)?;
                } else {
                    // Re-encode from the samples so the block writer picks
                    // the most compact encoding per chunk (XOR, decimal).
                    samples.clear();
                    win.decode_into(&mut samples);
                    nsamples += samples.len() as u64;
                    w.add_series_samples(&s.labels, &samples).map_err(berr)?;
                }
                nseries += 1;
            }
            let meta = w.finish().map_err(berr)?;
            stats.blocks.push(ImportedBlock { ulid: meta.ulid, mint: start, maxt: end, series: nseries, samples: nsamples });
        }
        stats.samples = stats.blocks.iter().map(|b| b.samples).sum();
        // Every block is complete: move them into place.
        for b in &stats.blocks {
            let from = staging.join(&b.ulid);
            let to = out_dir.join(&b.ulid);
            crate::fs::rename_durable(&from, &to).map_err(|e| ImportError::Io {
                op: "rename block into place",
                path: to.clone(),
                source: std::io::Error::other(e),
            })?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result.map(|()| stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_newlines_like_the_naive_loop() {
        let mut data = Vec::new();
        for i in 0..20_000u32 {
            data.push(if i % 3 == 0 || i % 7 == 0 { b'\n' } else { b'a' });
        }
        for len in [0, 1, 15, 16, 17, 4079, 4080, 4081, 20_000] {
            let naive = data[..len].iter().filter(|b| **b == b'\n').count();
            assert_eq!(count_newlines(&data[..len]), naive, "len {len}");
        }
        assert_eq!(count_newlines(&[b'\n'; 10_000]), 10_000);
    }

    #[test]
    fn detects_format_by_eof() {
        assert_eq!(detect_format(b"a 1 2\n# EOF\n"), Format::OpenMetrics);
        assert_eq!(detect_format(b"a 1 2\n"), Format::Text004);
    }

    #[test]
    fn lines_longer_than_a_piece_and_unsorted_series() {
        let tmp = tempfile::tempdir().unwrap();
        let long = "x".repeat(PIECE + 100);
        let text = format!("m{{l=\"{long}\"}} 1 1000\nm{{l=\"a\"}} 2 3000\nm{{l=\"a\"}} 1 2000\n");
        let mut r = text.as_bytes();
        let stats = import_reader(&mut r, Path::new("in"), Format::Text004, tmp.path(), 7_200_000, &mut |_| {}).unwrap();
        assert_eq!((stats.series, stats.samples, stats.blocks.len()), (2, 3, 1));
        let block = crate::block::Block::open(&tmp.path().join(&stats.blocks[0].ulid)).unwrap();
        let all = block.all_series().unwrap();
        let a = all.iter().find(|s| s.labels.get("l") == Some("a")).unwrap();
        let mut it = block.series_iter(a.chunks.clone(), 0, 10_000);
        let got = model::collect_range(&mut it, 0, 10_000).unwrap();
        assert_eq!(got, vec![Sample::new(2000, 1.0), Sample::new(3000, 2.0)]);
    }

    #[test]
    fn window_handles_out_of_order_and_duplicates() {
        let mut w = Window::new(0);
        let mut d = 0;
        for t in [1, 2, 3] {
            w.push(t, t as f64, &mut d).unwrap();
        }
        w.push(3, 3.0, &mut d).unwrap();
        assert_eq!(d, 1);
        assert!(w.push(3, 4.0, &mut d).is_err());
        w.push(0, 0.0, &mut d).unwrap();
        let raw = w.unsorted.as_ref().unwrap();
        assert_eq!(raw.len(), 4);
    }
}
