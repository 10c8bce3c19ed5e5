//! The head block of a stream: entries not yet compressed, kept sorted by
//! timestamp (equal timestamps in push order) so that out-of-order inserts
//! and snapshots are cheap. Cut into a compressed block when it reaches the
//! configured size, and on flush.

use crate::chunk::block::{encode_raw, DecodedBlock};
use crate::chunk::BlockMeta;
use model::Labels;

#[derive(Clone, Copy, Debug)]
struct HeadEntry {
    ts: i64,
    off: usize,
    len: usize,
    /// Index into `Head::meta`, or `usize::MAX` for none.
    meta: usize,
}

/// Per-entry overhead counted towards the block size: an over-estimate of
/// the timestamp delta plus the line's terminator or length varint, which
/// keeps blocks at most `block_size` (so zstd compresses them all with its
/// parameters for inputs of up to 256 KiB at the default size).
const ENTRY_OVERHEAD: usize = 4;

/// Uncompressed entries of one stream.
#[derive(Debug, Default)]
pub(crate) struct Head {
    entries: Vec<HeadEntry>,
    /// Lines in arrival order.
    lines: String,
    meta: Vec<Labels>,
    empty: Labels,
}

impl Head {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Approximate uncompressed block size.
    pub fn size(&self) -> usize {
        self.lines.len() + self.entries.len() * ENTRY_OVERHEAD
    }

    /// Bytes of lines.
    pub fn line_bytes(&self) -> usize {
        self.entries.iter().map(|e| e.len).sum()
    }

    #[cfg(test)]
    pub fn max_t(&self) -> Option<i64> {
        self.entries.last().map(|e| e.ts)
    }

    fn line(&self, e: &HeadEntry) -> &str {
        self.lines.get(e.off..e.off + e.len).unwrap_or("")
    }

    fn meta_of(&self, e: &HeadEntry) -> &Labels {
        self.meta.get(e.meta).unwrap_or(&self.empty)
    }

    /// Whether an entry with this timestamp and line is already here.
    pub fn contains(&self, ts: i64, line: &str) -> bool {
        let hi = self.entries.partition_point(|e| e.ts <= ts);
        self.entries[..hi].iter().rev().take_while(|e| e.ts == ts).any(|e| self.line(e) == line)
    }

    /// Inserts after every entry with a timestamp `<= ts`.
    pub fn insert(&mut self, ts: i64, line: &str, meta: &Labels) {
        let off = self.lines.len();
        self.lines.push_str(line);
        let meta = if meta.is_empty() {
            usize::MAX
        } else {
            self.meta.push(meta.clone());
            self.meta.len() - 1
        };
        let e = HeadEntry { ts, off, len: line.len(), meta };
        if self.entries.last().is_none_or(|l| l.ts <= ts) {
            self.entries.push(e);
        } else {
            let at = self.entries.partition_point(|x| x.ts <= ts);
            self.entries.insert(at, e);
        }
    }

    fn iter(&self) -> impl Iterator<Item = (i64, &str, &Labels)> + '_ {
        self.entries.iter().map(|e| (e.ts, self.line(e), self.meta_of(e)))
    }

    /// Empties the head.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.lines.clear();
        self.meta.clear();
        if self.lines.capacity() > 4 << 20 {
            self.lines = String::new();
        }
    }

    /// Encodes the head as an uncompressed block into `raw` (cleared).
    /// `None` when empty; else the block's metadata and the length of the
    /// lines region at the start of `raw`. The head is unchanged: the
    /// caller clears it once the block is safely stored.
    pub fn encode(&self, raw: &mut Vec<u8>) -> Option<(BlockMeta, usize)> {
        raw.clear();
        let info = encode_raw(self.iter(), raw)?;
        let meta = BlockMeta {
            min_t: info.min_t,
            max_t: info.max_t,
            entries: info.entries,
            line_bytes: info.line_bytes,
            raw_len: raw.len() as u32,
        };
        Some((meta, info.lines_len))
    }

    /// Whether some entry lies in `[start, end]`.
    pub fn has_entry_in(&self, start: i64, end: i64) -> bool {
        let lo = self.entries.partition_point(|e| e.ts < start);
        self.entries.get(lo).is_some_and(|e| e.ts <= end)
    }

    /// A copy of the entries in `[start, end]`, or `None` if there are none.
    pub fn snapshot(&self, start: i64, end: i64) -> Option<DecodedBlock> {
        let lo = self.entries.partition_point(|e| e.ts < start);
        let hi = self.entries.partition_point(|e| e.ts <= end);
        if lo >= hi {
            return None;
        }
        let mut b = DecodedBlock::default();
        b.fill_from(self.entries[lo..hi].iter().map(|e| (e.ts, self.line(e), self.meta_of(e))));
        Some(b)
    }

    /// Drops entries older than `cutoff`; returns how many.
    pub fn drop_before(&mut self, cutoff: i64) -> usize {
        let n = self.entries.partition_point(|e| e.ts < cutoff);
        if n == 0 {
            return 0;
        }
        // Rebuild so the arena does not keep dropped lines.
        let old = std::mem::take(self);
        for e in &old.entries[n..] {
            self.insert(e.ts, old.line(e), old.meta_of(e));
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::block::BlockFormat;

    #[test]
    fn sorted_inserts_duplicates_and_cut() {
        let mut h = Head::default();
        let e = Labels::empty();
        h.insert(10, "b", &e);
        h.insert(5, "a", &e);
        h.insert(10, "c", &e);
        assert!(h.contains(10, "b") && h.contains(10, "c") && !h.contains(10, "a"));
        assert_eq!(h.max_t(), Some(10));
        let s = h.snapshot(6, 20).unwrap();
        assert_eq!((s.line(0), s.line(1)), ("b", "c"));
        assert!(h.snapshot(11, 20).is_none());
        assert_eq!(h.drop_before(6), 1);
        let mut raw = Vec::new();
        let (m, lines_len) = h.encode(&mut raw).unwrap();
        assert_eq!(lines_len, 4, "b and c, newline-terminated");
        assert_eq!((m.min_t, m.max_t, m.entries), (10, 10, 2));
        h.clear();
        assert!(h.is_empty());
        let mut d = DecodedBlock::default();
        d.decode_raw(raw, BlockFormat::V3).unwrap();
        assert_eq!((d.line(0), d.line(1)), ("b", "c"));
    }
}
