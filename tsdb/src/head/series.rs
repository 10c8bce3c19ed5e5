//! One in-memory series: its full chunks (on disk) and its open chunk.

use super::chunks_disk::{ChunkLoc, HeadChunks};
use crate::chunkenc::XorChunk;
use model::{Labels, Sample};
use std::sync::Mutex;

/// Samples per chunk before a new one is cut (as Prometheus).
pub(crate) const SAMPLES_PER_CHUNK: usize = 120;

/// A full chunk written to the head chunk files.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DiskChunk {
    pub mint: i64,
    pub maxt: i64,
    pub num: u32,
    pub loc: ChunkLoc,
}

/// The chunk still being appended to.
#[derive(Clone, Debug)]
pub(crate) struct OpenChunk {
    pub chunk: XorChunk,
    pub mint: i64,
    pub maxt: i64,
}

/// A series in the head.
#[derive(Debug)]
pub(crate) struct MemSeries {
    pub series_ref: u64,
    pub labels: Labels,
    pub disk_chunks: Vec<DiskChunk>,
    pub open: Option<OpenChunk>,
    /// Samples accepted out of order (within the out-of-order window),
    /// sorted by time; merged with the chunks when read or persisted.
    pub ooo: Vec<Sample>,
    /// Timestamp of the newest sample (`i64::MIN` when none).
    pub last_t: i64,
    /// Value of the newest sample (to tell duplicates from conflicts).
    pub last_v: f64,
    /// Start timestamps of samples that have one: `(t, st)` sorted by `t`.
    /// Kept beside the chunks (the WAL holds them, and replay restores
    /// them) and written to blocks with the samples.
    pub starts: Vec<(i64, i64)>,
    /// Whether its series record is in the WAL.
    pub logged: bool,
    /// Set when garbage collection removed it from the head: appenders
    /// holding it must look it up again.
    pub removed: bool,
}

impl MemSeries {
    pub fn new(series_ref: u64, labels: Labels) -> Self {
        MemSeries {
            series_ref,
            labels,
            disk_chunks: Vec::new(),
            open: None,
            ooo: Vec::new(),
            last_t: i64::MIN,
            last_v: 0.0,
            starts: Vec::new(),
            logged: false,
            removed: false,
        }
    }

    /// Appends a sample the caller validated (`t > last_t`). Cuts a chunk
    /// when the open one holds [`SAMPLES_PER_CHUNK`] samples or `t` crosses
    /// a multiple of `chunk_range` (so chunks never straddle block
    /// boundaries and whole chunks can be dropped on truncation).
    pub fn append(
        &mut self,
        t: i64,
        v: f64,
        chunk_range: i64,
        disk: &Mutex<HeadChunks>,
    ) -> std::io::Result<()> {
        if self.last_t != i64::MIN && t <= self.last_t {
            // Validated as an out-of-order sample without a duplicate.
            let i = self.ooo.partition_point(|s| s.t < t);
            self.ooo.insert(i, Sample::new(t, v));
            return Ok(());
        }
        let cut = match &self.open {
            None => false,
            Some(o) => {
                o.chunk.num_samples() >= SAMPLES_PER_CHUNK
                    || range_start(t, chunk_range) != range_start(o.mint, chunk_range)
            }
        };
        let mut res = Ok(());
        if cut {
            let mut d = disk.lock().unwrap_or_else(|e| e.into_inner());
            // On failure the chunk stays open and keeps growing (the WAL
            // holds the data; the error is counted by the caller).
            res = self.flush_open(&mut d);
        }
        let open = self.open.get_or_insert_with(|| OpenChunk { chunk: XorChunk::new(), mint: t, maxt: t });
        open.chunk.append(t, v);
        open.maxt = t;
        self.last_t = t;
        self.last_v = v;
        res
    }

    /// Moves the open chunk to disk.
    fn flush_open(&mut self, disk: &mut HeadChunks) -> std::io::Result<()> {
        if let Some(o) = self.open.take() {
            let loc = match disk.write(self.series_ref, o.mint, o.maxt, o.chunk.bytes()) {
                Ok(loc) => loc,
                Err(e) => {
                    self.open = Some(o);
                    return Err(e);
                }
            };
            self.disk_chunks.push(DiskChunk { mint: o.mint, maxt: o.maxt, num: o.chunk.num_samples() as u32, loc });
        }
        Ok(())
    }

    /// Records the start timestamp of the (published) sample at `t`.
    pub fn set_start(&mut self, t: i64, st: i64) {
        match self.starts.last() {
            // The usual case: samples arrive in time order.
            Some(&(lt, _)) if lt < t => self.starts.push((t, st)),
            None => self.starts.push((t, st)),
            _ => match self.starts.binary_search_by_key(&t, |x| x.0) {
                Ok(i) => self.starts[i].1 = st,
                Err(i) => self.starts.insert(i, (t, st)),
            },
        }
    }

    /// Start timestamps of samples in `[mint, maxt]`.
    pub fn starts_in(&self, mint: i64, maxt: i64) -> &[(i64, i64)] {
        let lo = self.starts.partition_point(|x| x.0 < mint);
        let hi = self.starts.partition_point(|x| x.0 <= maxt);
        &self.starts[lo..hi.max(lo)]
    }

    /// Drops chunks that end before `mint`. Returns whether the series is
    /// now empty.
    pub fn truncate_before(&mut self, mint: i64) -> bool {
        self.disk_chunks.retain(|c| c.maxt >= mint);
        if self.open.as_ref().is_some_and(|o| o.maxt < mint) {
            self.open = None;
        }
        self.ooo.retain(|s| s.t >= mint);
        // Start timestamps of samples still held (the oldest kept chunk
        // may begin before `mint`).
        let oldest = self.mint().unwrap_or(i64::MAX);
        self.starts.retain(|x| x.0 >= oldest);
        self.disk_chunks.is_empty() && self.open.is_none() && self.ooo.is_empty()
    }

    /// Number of samples held.
    pub fn num_samples(&self) -> u64 {
        let disk: u64 = self.disk_chunks.iter().map(|c| u64::from(c.num)).sum();
        disk + self.open.as_ref().map_or(0, |o| o.chunk.num_samples() as u64) + self.ooo.len() as u64
    }

    /// The value stored at exactly `t`, if any (decodes at most one chunk).
    pub fn value_at(&self, t: i64, disk: &Mutex<HeadChunks>) -> Option<f64> {
        if let Ok(i) = self.ooo.binary_search_by_key(&t, |s| s.t) {
            return Some(self.ooo[i].v);
        }
        let find = |bytes: &[u8]| {
            let mut it = crate::chunkenc::XorIter::new(bytes);
            match model::SampleIter::seek(&mut it, t) {
                Ok(Some(s)) if s.t == t => Some(s.v),
                _ => None,
            }
        };
        if let Some(o) = self.open.as_ref().filter(|o| o.mint <= t && t <= o.maxt) {
            return find(o.chunk.bytes());
        }
        let c = self.disk_chunks.iter().find(|c| c.mint <= t && t <= c.maxt)?;
        let src = disk.lock().unwrap_or_else(|e| e.into_inner()).reader(c.loc).ok()?;
        let bytes = src.load().ok()?;
        find(bytes.as_slice())
    }

    /// Oldest sample time, if any.
    pub fn mint(&self) -> Option<i64> {
        let in_order = self.disk_chunks.first().map(|c| c.mint).or(self.open.as_ref().map(|o| o.mint));
        match (in_order, self.ooo.first()) {
            (Some(a), Some(b)) => Some(a.min(b.t)),
            (a, b) => a.or(b.map(|s| s.t)),
        }
    }
}

/// Start of the `range`-aligned window holding `t`.
pub(crate) fn range_start(t: i64, range: i64) -> i64 {
    t.div_euclid(range) * range
}
