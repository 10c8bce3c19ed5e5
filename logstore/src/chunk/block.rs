//! One block: a stream's entries, columnar, zstd-compressed.
//!
//! Uncompressed layout (see `docs/format/chunks.md`):
//!
//! ```text
//! lines      the lines' bytes, back to back
//! count      uvarint: number of entries n
//! first_ts   varint (zig-zag): timestamp of entry 0
//! scale      uvarint >= 1: greatest common divisor of the deltas
//! deltas     n-1 uvarints: (ts[i] - ts[i-1]) / scale (never negative)
//! lengths    n uvarints: byte length of each line
//! has_meta   u8: 0, or 1 when metadata follows
//! metadata   if has_meta: per entry uvarint pair count, then pairs of
//!            uvarint-length-prefixed name and value strings
//! lines_len  u32 little-endian: length of `lines`
//! ```
//!
//! Lines come first so that decoding can truncate the decompressed buffer
//! to the lines and turn it into a `String` in place: one UTF-8 check per
//! block and no copy, after which each line is a sub-slice.

use model::{Label, Labels};
use tsdb::encoding::{Decbuf, Encbuf};

/// Largest uncompressed block accepted when reading (a sanity bound
/// against hostile sizes).
pub(crate) const MAX_RAW_BLOCK_LEN: usize = 256 << 20;

/// Summary of an encoded block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawInfo {
    pub min_t: i64,
    pub max_t: i64,
    pub entries: u32,
    pub line_bytes: u64,
}

/// Encodes entries (sorted by timestamp) into the uncompressed block
/// layout, appending to `out`. Returns `None` for an empty input.
pub(crate) fn encode_raw<'a, I>(entries: I, out: &mut Vec<u8>) -> Option<RawInfo>
where
    I: IntoIterator<Item = (i64, &'a str, &'a Labels)>,
{
    let start = out.len();
    let mut deltas: Vec<u64> = Vec::new();
    let mut lens = Encbuf::new();
    let mut meta = Encbuf::new();
    let mut has_meta = false;
    let mut n: u32 = 0;
    let mut first = 0i64;
    let mut prev = 0i64;
    for (ts, line, md) in entries {
        out.extend_from_slice(line.as_bytes());
        if n == 0 {
            first = ts;
            prev = ts;
        } else {
            // Callers pass sorted entries; a decrease would be a bug in the
            // head: clamp rather than write an undecodable block.
            let delta = ts.saturating_sub(prev).max(0);
            deltas.push(delta as u64);
            prev = prev.saturating_add(delta);
        }
        lens.put_uvarint(line.len() as u64);
        meta.put_uvarint(md.len() as u64);
        for l in md.iter() {
            meta.put_uvarint_str(&l.name);
            meta.put_uvarint_str(&l.value);
        }
        has_meta |= !md.is_empty();
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let lines_len = out.len() - start;
    // Timestamps often share a unit (ms or µs precision in ns): store the
    // deltas divided by their greatest common divisor.
    let scale = deltas.iter().fold(0u64, |g, d| gcd(g, *d)).max(1);
    let mut cols = Encbuf::with_capacity(deltas.len() * 2 + 16);
    cols.put_uvarint(u64::from(n));
    cols.put_varint(first);
    cols.put_uvarint(scale);
    for d in &deltas {
        cols.put_uvarint(d / scale);
    }
    out.extend_from_slice(cols.get());
    out.extend_from_slice(lens.get());
    out.push(u8::from(has_meta));
    if has_meta {
        out.extend_from_slice(meta.get());
    }
    out.extend_from_slice(&(lines_len as u32).to_le_bytes());
    Some(RawInfo { min_t: first, max_t: prev, entries: n, line_bytes: lines_len as u64 })
}

/// A decoded block: the lines as one string plus per-entry columns.
/// Reused across decodes so that iterating allocates nothing per block
/// once the buffers have grown.
#[derive(Debug, Default)]
pub(crate) struct DecodedBlock {
    /// All lines back to back.
    pub lines: String,
    /// Timestamps, non-decreasing.
    pub ts: Vec<i64>,
    /// End offset of each line in `lines`.
    pub ends: Vec<u32>,
    /// Per-entry metadata, or empty when no entry has any.
    pub meta: Vec<Labels>,
}

impl DecodedBlock {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Line `i` (empty for an out-of-range index, which callers never
    /// pass: boundaries were checked at decode time).
    #[inline]
    pub fn line(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends.get(i - 1).copied().unwrap_or(0) as usize };
        let end = self.ends.get(i).copied().unwrap_or(0) as usize;
        self.lines.get(start..end).unwrap_or("")
    }

    /// Metadata of entry `i`, if the block has any.
    #[inline]
    pub fn meta(&self, i: usize) -> Option<&Labels> {
        self.meta.get(i)
    }

    /// Decompresses and decodes `compressed`, whose uncompressed size must
    /// be `raw_len`.
    pub fn decode(
        &mut self,
        compressed: &[u8],
        raw_len: usize,
        dctx: &mut zstd::bulk::Decompressor<'_>,
    ) -> Result<(), String> {
        if raw_len > MAX_RAW_BLOCK_LEN {
            return Err(format!("block size {raw_len} exceeds the limit of {MAX_RAW_BLOCK_LEN}"));
        }
        let mut buf = std::mem::take(&mut self.lines).into_bytes();
        buf.clear();
        buf.reserve(raw_len);
        match dctx.decompress_to_buffer(compressed, &mut buf) {
            Ok(n) if n == raw_len => {}
            Ok(n) => {
                self.lines = recycle(buf);
                return Err(format!("block decompressed to {n} bytes, expected {raw_len}"));
            }
            Err(e) => {
                self.lines = recycle(buf);
                return Err(format!("zstd: {e}"));
            }
        }
        self.decode_raw(buf)
    }

    /// Decodes an uncompressed block, taking ownership of its buffer.
    pub fn decode_raw(&mut self, mut buf: Vec<u8>) -> Result<(), String> {
        self.ts.clear();
        self.ends.clear();
        self.meta.clear();
        let res = self.parse_columns(&buf);
        match res {
            Ok(lines_len) => {
                buf.truncate(lines_len);
                match String::from_utf8(buf) {
                    Ok(s) => self.lines = s,
                    Err(e) => {
                        self.lines = recycle(e.into_bytes());
                        self.clear();
                        return Err("lines are not valid UTF-8".into());
                    }
                }
                if self.ends.iter().any(|&e| !self.lines.is_char_boundary(e as usize)) {
                    self.clear();
                    return Err("a line boundary splits a UTF-8 character".into());
                }
                Ok(())
            }
            Err(e) => {
                self.lines = recycle(buf);
                self.clear();
                Err(e)
            }
        }
    }

    /// Empties the block (no entries).
    pub fn clear(&mut self) {
        self.lines.clear();
        self.ts.clear();
        self.ends.clear();
        self.meta.clear();
    }

    /// Parses the columns after the lines; returns the lines' length.
    fn parse_columns(&mut self, buf: &[u8]) -> Result<usize, String> {
        if buf.len() < 4 {
            return Err(format!("block of {} bytes is too short", buf.len()));
        }
        let body = buf.len() - 4;
        let mut fl = [0u8; 4];
        fl.copy_from_slice(&buf[body..]);
        let lines_len = u32::from_le_bytes(fl) as usize;
        if lines_len > body {
            return Err(format!("lines length {lines_len} exceeds the block body of {body} bytes"));
        }
        let mut d = Decbuf::with_base(&buf[lines_len..body], lines_len as u64);
        let e = |e: tsdb::encoding::DecodeError| e.to_string();
        // Each entry needs at least one byte of delta and one of length.
        let n = d.uvarint_len(2).map_err(e)?;
        if n == 0 {
            return Err("block has no entries".into());
        }
        self.ts.reserve(n);
        self.ends.reserve(n);
        let mut t = d.varint().map_err(e)?;
        let scale_at = d.offset();
        let scale = d.uvarint().map_err(e)?;
        if scale == 0 {
            return Err(format!("timestamp scale is zero at offset {scale_at}"));
        }
        self.ts.push(t);
        // The two per-entry columns are the decoder's hot loop: read them
        // with an inlined varint reader over the slice rather than the
        // general cursor.
        let base = d.offset();
        let cols = d.rest();
        let mut pos = 0usize;
        let bad = |pos: usize| format!("bad varint at offset {}", base + pos as u64);
        for _ in 1..n {
            let delta = read_uvarint(cols, &mut pos).ok_or_else(|| bad(pos))?;
            t = delta
                .checked_mul(scale)
                .and_then(|dl| i64::try_from(dl).ok())
                .and_then(|dl| t.checked_add(dl))
                .ok_or_else(|| {
                    format!("timestamp delta {delta} overflows at offset {}", base + pos as u64)
                })?;
            self.ts.push(t);
        }
        let mut end: u64 = 0;
        for _ in 0..n {
            end += read_uvarint(cols, &mut pos).ok_or_else(|| bad(pos))?;
            if end > lines_len as u64 {
                return Err(format!(
                    "line lengths exceed the {lines_len} bytes of lines at offset {}",
                    base + pos as u64
                ));
            }
            self.ends.push(end as u32);
        }
        if end != lines_len as u64 {
            return Err(format!("line lengths sum to {end}, lines take {lines_len} bytes"));
        }
        d.skip(pos).map_err(e)?;
        let has_meta = d.u8().map_err(e)?;
        match has_meta {
            0 => {}
            1 => {
                self.meta.reserve(n);
                let mut labels = Vec::new();
                for _ in 0..n {
                    let pairs = d.uvarint_len(2).map_err(e)?;
                    labels.clear();
                    for _ in 0..pairs {
                        let name = d.uvarint_str().map_err(e)?;
                        let value = d.uvarint_str().map_err(e)?;
                        labels.push(Label::new(name, value));
                    }
                    let off = d.offset();
                    let l = Labels::from_sorted(std::mem::take(&mut labels)).ok_or_else(|| {
                        format!("metadata names not sorted and unique before offset {off}")
                    })?;
                    self.meta.push(l);
                }
            }
            b => return Err(format!("bad metadata flag {b} at offset {}", d.offset() - 1)),
        }
        if !d.is_empty() {
            return Err(format!("{} trailing bytes at offset {}", d.remaining(), d.offset()));
        }
        Ok(lines_len)
    }

    /// Fills the block from entries already sorted by timestamp (used for
    /// head snapshots).
    pub fn fill_from<'a, I>(&mut self, entries: I)
    where
        I: IntoIterator<Item = (i64, &'a str, &'a Labels)>,
    {
        self.clear();
        let mut any_meta = false;
        let mut metas = Vec::new();
        for (ts, line, md) in entries {
            self.lines.push_str(line);
            self.ts.push(ts);
            self.ends.push(self.lines.len() as u32);
            any_meta |= !md.is_empty();
            metas.push(md.clone());
        }
        if any_meta {
            self.meta = metas;
        }
    }
}

/// Reads one unsigned varint at `*pos`, advancing it.
#[inline(always)]
fn read_uvarint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let b = *buf.get(*pos)?;
    if b < 0x80 {
        *pos += 1;
        return Some(u64::from(b));
    }
    // Two bytes (128..16383) is the other common case: line lengths of
    // typical log lines, millisecond deltas of a busy stream.
    if let Some(&b1) = buf.get(*pos + 1) {
        if b1 < 0x80 {
            *pos += 2;
            return Some(u64::from(b & 0x7f) | u64::from(b1) << 7);
        }
    }
    let (v, n) = tsdb::encoding::uvarint(buf.get(*pos..)?)?;
    *pos += n;
    Some(v)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn recycle(mut buf: Vec<u8>) -> String {
    buf.clear();
    // An empty vector is valid UTF-8.
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(entries: &[(i64, String, Labels)]) -> DecodedBlock {
        let mut raw = Vec::new();
        let info =
            encode_raw(entries.iter().map(|(t, l, m)| (*t, l.as_str(), m)), &mut raw).unwrap();
        assert_eq!(info.entries as usize, entries.len());
        let comp = zstd::bulk::compress(&raw, 3).unwrap();
        let mut d = DecodedBlock::default();
        let mut dctx = zstd::bulk::Decompressor::new().unwrap();
        d.decode(&comp, raw.len(), &mut dctx).unwrap();
        d
    }

    #[test]
    fn encodes_and_decodes() {
        let m = Labels::from_pairs([("trace", "abc")]);
        let e = vec![
            (5, "héllo".to_string(), Labels::empty()),
            (5, String::new(), m.clone()),
            (9, "z".to_string(), Labels::empty()),
        ];
        let d = roundtrip(&e);
        assert_eq!(d.ts, vec![5, 5, 9]);
        assert_eq!(d.line(0), "héllo");
        assert_eq!(d.line(1), "");
        assert_eq!(d.line(2), "z");
        assert_eq!(d.meta(1), Some(&m));
        assert_eq!(d.meta(0), Some(&Labels::empty()));
    }

    #[test]
    fn uvarint_fast_paths_agree_with_the_general_reader() {
        for v in [0u64, 1, 127, 128, 200, 16_383, 16_384, 1 << 21, u64::MAX] {
            let mut e = Encbuf::new();
            e.put_uvarint(v);
            e.put_uvarint(5);
            let b = e.get();
            let mut pos = 0;
            assert_eq!(read_uvarint(b, &mut pos), Some(v));
            assert_eq!(read_uvarint(b, &mut pos), Some(5));
            assert_eq!(pos, b.len());
            // Cut inside the first varint: no value.
            let n = tsdb::encoding::uvarint_len(v);
            let mut pos = 0;
            assert_eq!(read_uvarint(&b[..n - 1], &mut pos), None, "{v}");
        }
    }

    #[test]
    fn rejects_damage() {
        let mut raw = Vec::new();
        let l = Labels::empty();
        encode_raw([(1, "abc", &l), (2, "de", &l)], &mut raw).unwrap();
        let mut d = DecodedBlock::default();
        for cut in 0..raw.len() {
            assert!(d.decode_raw(raw[..cut].to_vec()).is_err(), "cut {cut}");
        }
        let mut bad = raw.clone();
        bad[0] = 0xff; // invalid UTF-8 in the lines
        assert!(d.decode_raw(bad).unwrap_err().contains("UTF-8"));
        d.decode_raw(raw).unwrap();
        assert_eq!(d.line(1), "de");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn roundtrip_prop(mut e in proptest::collection::vec(
            (-1_000_000i64..1_000_000, ".{0,40}", proptest::collection::vec(("[a-z]{1,3}", "[a-z]{0,3}"), 0..3)),
            1..60,
        )) {
            e.sort_by_key(|x| x.0);
            let e: Vec<(i64, String, Labels)> =
                e.into_iter().map(|(t, l, m)| (t, l, Labels::from_pairs(m))).collect();
            let d = roundtrip(&e);
            prop_assert_eq!(d.len(), e.len());
            for (i, (t, l, m)) in e.iter().enumerate() {
                prop_assert_eq!(d.ts[i], *t);
                prop_assert_eq!(d.line(i), l.as_str());
                prop_assert_eq!(d.meta(i).cloned().unwrap_or_default(), m.clone());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300), raw_len in 0usize..100_000) {
            let mut d = DecodedBlock::default();
            let _ = d.decode_raw(b.clone());
            let mut dctx = zstd::bulk::Decompressor::new().unwrap();
            let _ = d.decode(&b, raw_len, &mut dctx);
        }

        #[test]
        fn mutated_blocks_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let l = Labels::from_pairs([("k", "v")]);
            let mut raw = Vec::new();
            encode_raw([(1, "abc", &l), (7, "ü", &Labels::empty())], &mut raw).unwrap();
            let i = pos.index(raw.len());
            raw[i] = byte;
            let mut d = DecodedBlock::default();
            if d.decode_raw(raw).is_ok() {
                for k in 0..d.len() {
                    let _ = d.line(k);
                }
            }
        }
    }
}
