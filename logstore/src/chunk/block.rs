//! One block: a stream's entries, columnar, zstd-compressed.
//!
//! Two uncompressed layouts exist (see `docs/format/chunks.md`); which one
//! a block has is given by the chunk file's version ([`BlockFormat`]).
//!
//! Version 3 (written now), stored as two zstd frames back to back: the
//! `lines` region, then everything after it ([`compress_v3`]):
//!
//! ```text
//! lines      the lines' bytes; with flag NEWLINES each line is followed
//!            by '\n', otherwise they are back to back
//! count      uvarint: number of entries n
//! first_ts   varint (zig-zag): timestamp of entry 0
//! scale      uvarint >= 1: greatest common divisor of the deltas
//! width      u8 in {1, 2, 4, 8}: bytes per delta
//! deltas     n-1 little-endian unsigned integers of `width` bytes:
//!            (ts[i] - ts[i-1]) / scale
//! lengths    without NEWLINES: n uvarints, byte length of each line
//! metadata   with HAS_META: per entry uvarint pair count, then pairs of
//!            uvarint-length-prefixed name and value strings
//! flags      u8: bit 0 HAS_META, bit 1 NEWLINES, other bits zero
//! lines_len  u32 little-endian: length of `lines` (terminators included)
//! ```
//!
//! Versions 1 and 2 (read only): `lines | count | first_ts | scale |
//! (n-1) uvarint deltas | n uvarint lengths | has_meta u8 | metadata |
//! lines_len u32`.
//!
//! Lines come first so that decoding can truncate the decompressed buffer
//! to the lines and turn it into a `String` in place: one UTF-8 check per
//! block and no copy, after which each line is a sub-slice. The flags and
//! the lines' length sit at the very end, so a reader can find the lines
//! without parsing any column, and in version 3 decompress the lines
//! without the columns: a line-filter scan decompresses and searches the
//! lines first and decompresses the columns, parses them and checks UTF-8
//! only for blocks with a hit ([`DecodedBlock::decompress_lines`],
//! [`DecodedBlock::pending_lines`], [`DecodedBlock::finish`]). Two frames
//! also compress better than one here: the lines and the columns do not
//! share zstd's entropy tables.
//!
//! Newline terminators instead of a lengths column: the terminators cost
//! zstd almost nothing (they sit between predictable bytes), whereas a
//! column of random-looking length varints costs about a byte per entry
//! compressed. Fixed-width deltas compress better than varints of mixed
//! lengths for the same reason (zstd's literal coder sees aligned bytes).

use model::{Label, Labels};
use tsdb::encoding::{Decbuf, Encbuf};

/// Largest uncompressed block accepted when reading (a sanity bound
/// against hostile sizes).
pub(crate) const MAX_RAW_BLOCK_LEN: usize = 256 << 20;

/// Flag: structured metadata follows the columns (version 3).
const FLAG_HAS_META: u8 = 1;
/// Flag: lines are newline-terminated and there is no lengths column
/// (version 3).
const FLAG_NEWLINES: u8 = 2;

/// The uncompressed layout of a block, given by its chunk file's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockFormat {
    /// Chunk file versions 1 and 2: varint deltas, a lengths column, a
    /// `has_meta` byte before the metadata.
    V1,
    /// Chunk file version 3 (and unflushed blocks): flags at the end,
    /// newline-terminated lines when no line holds a newline, fixed-width
    /// deltas.
    V3,
}

/// Summary of an encoded block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawInfo {
    pub min_t: i64,
    pub max_t: i64,
    pub entries: u32,
    /// Sum of the lines' lengths.
    pub line_bytes: u64,
    /// Length of the lines region at the start of the block (the lines
    /// plus their terminators, if any).
    pub lines_len: usize,
}

/// Encodes entries (sorted by timestamp) into the uncompressed block
/// layout of version 3, appending to `out`. Returns `None` for an empty
/// input.
pub(crate) fn encode_raw<'a, I>(entries: I, out: &mut Vec<u8>) -> Option<RawInfo>
where
    I: IntoIterator<Item = (i64, &'a str, &'a Labels)>,
{
    let start = out.len();
    let mut deltas: Vec<u64> = Vec::new();
    let mut lens: Vec<u32> = Vec::new();
    let mut meta = Encbuf::new();
    let mut has_meta = false;
    let mut newlines = true;
    let mut line_bytes = 0u64;
    let mut first = 0i64;
    let mut prev = 0i64;
    for (ts, line, md) in entries {
        // Lines are written newline-terminated optimistically; a line
        // holding a newline switches the block to a lengths column below.
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        newlines &= memchr::memchr(b'\n', line.as_bytes()).is_none();
        if lens.is_empty() {
            first = ts;
            prev = ts;
        } else {
            // Callers pass sorted entries; a decrease would be a bug in the
            // head: clamp rather than write an undecodable block.
            let delta = ts.saturating_sub(prev).max(0);
            deltas.push(delta as u64);
            prev = prev.saturating_add(delta);
        }
        // Lines are at most a few MB (the store's line size limit is far
        // below 4 GiB, and so is the block size).
        lens.push(line.len() as u32);
        line_bytes += line.len() as u64;
        meta.put_uvarint(md.len() as u64);
        for l in md.iter() {
            meta.put_uvarint_str(&l.name);
            meta.put_uvarint_str(&l.value);
        }
        has_meta |= !md.is_empty();
    }
    if lens.is_empty() {
        return None;
    }
    if !newlines {
        // Drop the terminators: move each line down over them.
        let mut w = start;
        let mut r = start;
        for &l in &lens {
            let l = l as usize;
            out.copy_within(r..r + l, w);
            w += l;
            r += l + 1;
        }
        out.truncate(w);
    }
    let lines_len = out.len() - start;
    // Timestamps often share a unit (ms or µs precision in ns): store the
    // deltas divided by their greatest common divisor.
    let scale = deltas.iter().fold(0u64, |g, d| gcd(g, *d)).max(1);
    let max = deltas.iter().map(|d| d / scale).max().unwrap_or(0);
    let width: usize = match max {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    };
    let mut cols = Encbuf::with_capacity(deltas.len() * width + lens.len() * 2 + 24);
    cols.put_uvarint(lens.len() as u64);
    cols.put_varint(first);
    cols.put_uvarint(scale);
    cols.put_u8(width as u8);
    let v = cols.as_mut_vec();
    for d in &deltas {
        v.extend_from_slice(&(d / scale).to_le_bytes()[..width]);
    }
    if !newlines {
        for &l in &lens {
            cols.put_uvarint(u64::from(l));
        }
    }
    out.extend_from_slice(cols.get());
    if has_meta {
        out.extend_from_slice(meta.get());
    }
    let flags = if has_meta { FLAG_HAS_META } else { 0 } | if newlines { FLAG_NEWLINES } else { 0 };
    out.push(flags);
    out.extend_from_slice(&(lines_len as u32).to_le_bytes());
    Some(RawInfo {
        min_t: first,
        max_t: prev,
        entries: lens.len() as u32,
        line_bytes,
        lines_len,
    })
}

/// Compresses an uncompressed format 3 block (`raw`, whose first
/// `lines_len` bytes are the lines region) as stored: two zstd frames back
/// to back, the lines region then the rest, so that a reader can
/// decompress the lines alone.
pub(crate) fn compress_v3(
    c: &mut zstd::bulk::Compressor<'_>,
    raw: &[u8],
    lines_len: usize,
) -> std::io::Result<Vec<u8>> {
    let (lines, cols) = raw.split_at(lines_len.min(raw.len()));
    let mut out = c.compress(lines)?;
    out.extend_from_slice(&c.compress(cols)?);
    Ok(out)
}

/// A decoded block: the lines as one string plus per-entry columns.
/// Reused across decodes so that iterating allocates nothing per block
/// once the buffers have grown.
///
/// A block is decoded in one call ([`DecodedBlock::decode`]) or in two
/// steps: [`DecodedBlock::decompress`], which leaves the raw bytes pending
/// (the block then has no entries) so that [`DecodedBlock::pending_lines`]
/// can be searched, then [`DecodedBlock::finish`], which parses the columns
/// and checks UTF-8.
#[derive(Debug, Default)]
pub(crate) struct DecodedBlock {
    /// All lines, back to back or each followed by a separator byte (see
    /// `sep`).
    pub lines: String,
    /// Timestamps, non-decreasing.
    pub ts: Vec<i64>,
    /// End offset of each line in `lines` (its separator excluded).
    pub ends: Vec<u32>,
    /// Bytes between one line's end and the next line's start: 1 for
    /// newline-terminated lines, else 0.
    pub sep: u32,
    /// Per-entry metadata, or empty when no entry has any.
    pub meta: Vec<Labels>,
    /// Decompressed bytes not decoded yet (between `decompress_lines` and
    /// `finish`); otherwise an empty buffer kept for its capacity.
    pending: Vec<u8>,
    /// Compressed size of the lines frame of the pending block.
    lines_frame: usize,
    /// Scratch for the decompressed columns frame.
    cols: Vec<u8>,
}

impl DecodedBlock {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Byte offset in `lines` where line `i` starts.
    #[inline]
    pub fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends
                .get(i - 1)
                .map_or(0, |&e| e as usize + self.sep as usize)
        }
    }

    /// Line `i` (empty for an out-of-range index, which callers never
    /// pass: boundaries were checked at decode time).
    #[inline]
    pub fn line(&self, i: usize) -> &str {
        let end = self.ends.get(i).copied().unwrap_or(0) as usize;
        self.lines.get(self.start(i)..end).unwrap_or("")
    }

    /// Metadata of entry `i`, if the block has any.
    #[inline]
    pub fn meta(&self, i: usize) -> Option<&Labels> {
        self.meta.get(i)
    }

    /// Decompresses and decodes `compressed`, whose uncompressed size must
    /// be `raw_len` (readers use the two steps directly).
    #[cfg(test)]
    pub fn decode(
        &mut self,
        compressed: &[u8],
        raw_len: usize,
        format: BlockFormat,
        dctx: &mut zstd::bulk::Decompressor<'_>,
    ) -> Result<(), String> {
        self.decompress_lines(compressed, raw_len, format, dctx)?;
        self.finish(compressed, raw_len, format, dctx)
    }

    /// Decompresses the part of `compressed` (a block of uncompressed size
    /// `raw_len`) that holds the lines, and keeps it pending: the block
    /// has no entries until [`DecodedBlock::finish`]. In format 3 that is
    /// the block's first zstd frame only; in format 1 the block is one
    /// frame, decompressed whole.
    pub fn decompress_lines(
        &mut self,
        compressed: &[u8],
        raw_len: usize,
        format: BlockFormat,
        dctx: &mut zstd::bulk::Decompressor<'_>,
    ) -> Result<(), String> {
        if raw_len > MAX_RAW_BLOCK_LEN {
            return Err(format!(
                "block size {raw_len} exceeds the limit of {MAX_RAW_BLOCK_LEN}"
            ));
        }
        // One allocation moves between `pending` and `lines`: reuse it.
        let mut buf = std::mem::take(&mut self.pending);
        let lines = std::mem::take(&mut self.lines).into_bytes();
        if lines.capacity() > buf.capacity() {
            buf = lines;
        }
        self.clear();
        buf.clear();
        buf.reserve(raw_len);
        let frame = match format {
            BlockFormat::V1 => compressed,
            BlockFormat::V3 => match zstd::zstd_safe::find_frame_compressed_size(compressed) {
                Ok(n) => &compressed[..n.min(compressed.len())],
                Err(code) => {
                    self.pending = buf;
                    return Err(format!(
                        "no zstd frame of lines: {}",
                        zstd::zstd_safe::get_error_name(code)
                    ));
                }
            },
        };
        let res = dctx.decompress_to_buffer(frame, &mut buf);
        self.pending = buf;
        let whole = format == BlockFormat::V1;
        match res {
            Ok(n) if n == raw_len || (!whole && n < raw_len) => {
                self.lines_frame = frame.len();
                Ok(())
            }
            Ok(n) => {
                self.pending.clear();
                Err(format!(
                    "block decompressed to {n} bytes, expected {raw_len}"
                ))
            }
            Err(e) => {
                self.pending.clear();
                Err(format!("zstd: {e}"))
            }
        }
    }

    /// The lines region of the pending block (after
    /// [`DecodedBlock::decompress_lines`], before `finish`): the lines with
    /// their terminators, if any, possibly not valid UTF-8.
    pub fn pending_lines(&self, format: BlockFormat) -> Result<&[u8], String> {
        match format {
            BlockFormat::V1 => {
                let t = trailer(&self.pending, format)?;
                Ok(&self.pending[..t.lines_len])
            }
            BlockFormat::V3 => Ok(&self.pending),
        }
    }

    /// Decodes the pending block: in format 3, decompresses the second
    /// frame (the columns) after the lines first, then parses everything.
    pub fn finish(
        &mut self,
        compressed: &[u8],
        raw_len: usize,
        format: BlockFormat,
        dctx: &mut zstd::bulk::Decompressor<'_>,
    ) -> Result<(), String> {
        let mut buf = std::mem::take(&mut self.pending);
        if format == BlockFormat::V3 {
            let rest = compressed.get(self.lines_frame..).unwrap_or_default();
            let want = raw_len.saturating_sub(buf.len());
            let mut cols = std::mem::take(&mut self.cols);
            cols.clear();
            cols.reserve(want);
            let res = dctx.decompress_to_buffer(rest, &mut cols);
            match res {
                Ok(n) if n == want => buf.extend_from_slice(&cols),
                Ok(n) => {
                    buf.clear();
                    self.pending = buf;
                    self.cols = cols;
                    return Err(format!(
                        "block decompressed to {} bytes, expected {raw_len}",
                        raw_len - want + n
                    ));
                }
                Err(e) => {
                    buf.clear();
                    self.pending = buf;
                    self.cols = cols;
                    return Err(format!("zstd (columns frame): {e}"));
                }
            }
            self.cols = cols;
        }
        self.decode_raw(buf, format)
    }

    /// Decodes an uncompressed block, taking ownership of its buffer.
    pub fn decode_raw(&mut self, mut buf: Vec<u8>, format: BlockFormat) -> Result<(), String> {
        self.clear();
        let res = match format {
            BlockFormat::V1 => self.parse_columns_v1(&buf),
            BlockFormat::V3 => self.parse_columns_v3(&buf),
        };
        match res {
            Ok(lines_len) => {
                buf.truncate(lines_len);
                match String::from_utf8(buf) {
                    Ok(s) => self.lines = s,
                    Err(e) => {
                        self.pending = e.into_bytes();
                        self.pending.clear();
                        self.clear();
                        return Err("lines are not valid UTF-8".into());
                    }
                }
                // Newline-separated lines end at newlines, which are
                // character boundaries in valid UTF-8; lengths may not.
                if self.sep == 0
                    && self
                        .ends
                        .iter()
                        .any(|&e| !self.lines.is_char_boundary(e as usize))
                {
                    self.clear();
                    return Err("a line boundary splits a UTF-8 character".into());
                }
                Ok(())
            }
            Err(e) => {
                buf.clear();
                self.pending = buf;
                self.clear();
                Err(e)
            }
        }
    }

    /// Empties the block (no entries). A pending buffer is kept for its
    /// capacity only.
    pub fn clear(&mut self) {
        self.lines.clear();
        self.ts.clear();
        self.ends.clear();
        self.meta.clear();
        self.sep = 0;
    }

    /// Parses the version 1/2 columns after the lines; returns the lines'
    /// length.
    fn parse_columns_v1(&mut self, buf: &[u8]) -> Result<usize, String> {
        let tr = trailer(buf, BlockFormat::V1)?;
        let lines_len = tr.lines_len;
        let mut d = Decbuf::with_base(&buf[lines_len..tr.body_end], lines_len as u64);
        let e = |e: tsdb::encoding::DecodeError| e.to_string();
        // Each entry needs at least one byte of delta and one of length.
        let (n, mut t, scale) = column_head(&mut d, 2)?;
        self.ts.reserve(n);
        self.ends.reserve(n);
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
            t = add_delta(t, delta, scale, base + pos as u64)?;
            self.ts.push(t);
        }
        pos = self.read_lengths(cols, pos, n, lines_len, base)?;
        d.skip(pos).map_err(e)?;
        let has_meta = d.u8().map_err(e)?;
        match has_meta {
            0 => {}
            1 => self.read_meta(&mut d, n)?,
            b => {
                return Err(format!(
                    "bad metadata flag {b} at offset {}",
                    d.offset() - 1
                ))
            }
        }
        all_read(&d)?;
        Ok(lines_len)
    }

    /// Parses the version 3 columns after the lines; returns the lines'
    /// length.
    fn parse_columns_v3(&mut self, buf: &[u8]) -> Result<usize, String> {
        let tr = trailer(buf, BlockFormat::V3)?;
        let lines_len = tr.lines_len;
        let mut d = Decbuf::with_base(&buf[lines_len..tr.body_end], lines_len as u64);
        let e = |e: tsdb::encoding::DecodeError| e.to_string();
        // Each entry needs at least one byte of delta (the first one is a
        // varint).
        let (n, mut t, scale) = column_head(&mut d, 1)?;
        let width_at = d.offset();
        let width = d.u8().map_err(e)? as usize;
        if !matches!(width, 1 | 2 | 4 | 8) {
            return Err(format!("bad delta width {width} at offset {width_at}"));
        }
        let deltas_at = d.offset();
        let deltas = d
            .bytes((n - 1).checked_mul(width).ok_or("delta column too large")?)
            .map_err(e)?;
        self.ts.reserve(n);
        self.ends.reserve(n);
        self.ts.push(t);
        for (k, c) in deltas.chunks_exact(width).enumerate() {
            let mut b = [0u8; 8];
            b[..width].copy_from_slice(c);
            let delta = u64::from_le_bytes(b);
            t = add_delta(t, delta, scale, deltas_at + (k * width) as u64)?;
            self.ts.push(t);
        }
        if tr.flags & FLAG_NEWLINES != 0 {
            self.sep = 1;
            let lines = &buf[..lines_len];
            // Exactly n terminators, the last one ending the region.
            for nl in memchr::memchr_iter(b'\n', lines) {
                if self.ends.len() == n {
                    return Err(format!("more than {n} lines: newline at offset {nl}"));
                }
                self.ends.push(nl as u32);
            }
            if lines.last() != Some(&b'\n') {
                return Err("the last line is not newline-terminated".into());
            }
            if self.ends.len() != n {
                return Err(format!(
                    "{} newline-terminated lines in the block, {n} entries",
                    self.ends.len()
                ));
            }
        } else {
            let base = d.offset();
            let cols = d.rest();
            let pos = self.read_lengths(cols, 0, n, lines_len, base)?;
            d.skip(pos).map_err(e)?;
        }
        if tr.flags & FLAG_HAS_META != 0 {
            self.read_meta(&mut d, n)?;
        }
        all_read(&d)?;
        Ok(lines_len)
    }

    /// Reads `n` uvarint line lengths from `cols` at `pos` into `ends`;
    /// they must sum to `lines_len`. Returns the position after them.
    fn read_lengths(
        &mut self,
        cols: &[u8],
        mut pos: usize,
        n: usize,
        lines_len: usize,
        base: u64,
    ) -> Result<usize, String> {
        let mut end: u64 = 0;
        for _ in 0..n {
            end += read_uvarint(cols, &mut pos)
                .ok_or_else(|| format!("bad varint at offset {}", base + pos as u64))?;
            if end > lines_len as u64 {
                return Err(format!(
                    "line lengths exceed the {lines_len} bytes of lines at offset {}",
                    base + pos as u64
                ));
            }
            self.ends.push(end as u32);
        }
        if end != lines_len as u64 {
            return Err(format!(
                "line lengths sum to {end}, lines take {lines_len} bytes"
            ));
        }
        Ok(pos)
    }

    /// Reads `n` entries' metadata.
    fn read_meta(&mut self, d: &mut Decbuf<'_>, n: usize) -> Result<(), String> {
        let e = |e: tsdb::encoding::DecodeError| e.to_string();
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
        Ok(())
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

/// Where a block's parts end, read from its last bytes.
struct Trailer {
    /// Length of the lines region at the start.
    lines_len: usize,
    /// End of the columns (start of the trailer).
    body_end: usize,
    /// Version 3 flags (0 for version 1).
    flags: u8,
}

/// Reads and checks a block's trailer.
fn trailer(buf: &[u8], format: BlockFormat) -> Result<Trailer, String> {
    let tail = match format {
        BlockFormat::V1 => 4,
        BlockFormat::V3 => 5,
    };
    if buf.len() < tail {
        return Err(format!("block of {} bytes is too short", buf.len()));
    }
    let body_end = buf.len() - tail;
    let mut fl = [0u8; 4];
    fl.copy_from_slice(&buf[buf.len() - 4..]);
    let lines_len = u32::from_le_bytes(fl) as usize;
    let flags = if format == BlockFormat::V3 {
        buf[body_end]
    } else {
        0
    };
    if flags & !(FLAG_HAS_META | FLAG_NEWLINES) != 0 {
        return Err(format!(
            "unknown block flags {flags:#04x} at offset {body_end}"
        ));
    }
    if lines_len > body_end {
        return Err(format!(
            "lines length {lines_len} exceeds the block body of {body_end} bytes"
        ));
    }
    Ok(Trailer {
        lines_len,
        body_end,
        flags,
    })
}

/// `t + delta * scale`, or an error naming the delta and its offset `at`
/// on overflow.
#[inline(always)]
fn add_delta(t: i64, delta: u64, scale: u64, at: u64) -> Result<i64, String> {
    delta
        .checked_mul(scale)
        .and_then(|dl| i64::try_from(dl).ok())
        .and_then(|dl| t.checked_add(dl))
        .ok_or_else(|| format!("timestamp delta {delta} overflows at offset {at}"))
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

/// The version 1/2 encoder, kept to test that such blocks still decode.
#[cfg(test)]
pub(crate) fn encode_raw_v1<'a, I>(entries: I, out: &mut Vec<u8>) -> Option<RawInfo>
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
    let scale = deltas.iter().fold(0u64, |g, d| gcd(g, *d)).max(1);
    let mut cols = Encbuf::new();
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
    Some(RawInfo {
        min_t: first,
        max_t: prev,
        entries: n,
        line_bytes: lines_len as u64,
        lines_len,
    })
}

/// Fails when bytes are left after a block's columns.
fn all_read(d: &Decbuf<'_>) -> Result<(), String> {
    if d.is_empty() {
        Ok(())
    } else {
        Err(format!("{} trailing bytes at offset {}", d.remaining(), d.offset()))
    }
}

/// The start of a block's columns, common to all versions: the entry
/// count (at least one, each entry taking at least `min_entry_bytes` of
/// what follows), the first timestamp and the timestamp scale (not zero).
fn column_head(d: &mut Decbuf<'_>, min_entry_bytes: usize) -> Result<(usize, i64, u64), String> {
    let e = |e: tsdb::encoding::DecodeError| e.to_string();
    let n = d.uvarint_len(min_entry_bytes).map_err(e)?;
    if n == 0 {
        return Err("block has no entries".into());
    }
    let t = d.varint().map_err(e)?;
    let scale_at = d.offset();
    let scale = d.uvarint().map_err(e)?;
    if scale == 0 {
        return Err(format!("timestamp scale is zero at offset {scale_at}"));
    }
    Ok((n, t, scale))
}

#[cfg(test)]
mod tests {
    type TestResult = Result<(), Box<dyn std::error::Error>>;
    use super::*;
    use proptest::prelude::*;

    type Encoder =
        for<'a> fn(std::vec::IntoIter<(i64, &'a str, &'a Labels)>, &mut Vec<u8>) -> Option<RawInfo>;

    fn enc(format: BlockFormat) -> Encoder {
        match format {
            BlockFormat::V1 => |e, out| encode_raw_v1(e, out),
            BlockFormat::V3 => |e, out| encode_raw(e, out),
        }
    }

    fn encode(entries: &[(i64, String, Labels)], format: BlockFormat) -> Vec<u8> {
        let mut raw = Vec::new();
        let items: Vec<(i64, &str, &Labels)> = entries
            .iter()
            .map(|(t, l, m)| (*t, l.as_str(), m))
            .collect();
        let info = enc(format)(items.into_iter(), &mut raw).unwrap();
        assert_eq!(info.entries as usize, entries.len());
        assert_eq!(
            info.line_bytes,
            entries.iter().map(|e| e.1.len() as u64).sum::<u64>()
        );
        raw
    }

    /// Compresses an encoded block as the store does for `format`.
    fn compress(raw: &[u8], format: BlockFormat) -> Vec<u8> {
        match format {
            BlockFormat::V1 => zstd::bulk::compress(raw, 3).unwrap(),
            BlockFormat::V3 => {
                let mut d = DecodedBlock::default();
                d.decode_raw(raw.to_vec(), format).unwrap();
                let lines_len = d.lines.len();
                let mut c = zstd::bulk::Compressor::new(3).unwrap();
                compress_v3(&mut c, raw, lines_len).unwrap()
            }
        }
    }

    fn roundtrip(entries: &[(i64, String, Labels)], format: BlockFormat) -> DecodedBlock {
        let raw = encode(entries, format);
        let comp = compress(&raw, format);
        let mut d = DecodedBlock::default();
        let mut dctx = zstd::bulk::Decompressor::new().unwrap();
        d.decode(&comp, raw.len(), format, &mut dctx).unwrap();
        d
    }

    const FORMATS: [BlockFormat; 2] = [BlockFormat::V1, BlockFormat::V3];

    #[test]
    fn encodes_and_decodes() -> TestResult {
        let m = Labels::from_pairs([("trace", "abc")]);
        let e = vec![
            (5, "héllo".to_string(), Labels::empty()),
            (5, String::new(), m.clone()),
            (9, "z".to_string(), Labels::empty()),
        ];
        for f in FORMATS {
            let d = roundtrip(&e, f);
            assert_eq!(d.ts, vec![5, 5, 9]);
            assert_eq!(d.line(0), "héllo");
            assert_eq!(d.line(1), "");
            assert_eq!(d.line(2), "z");
            assert_eq!(d.meta(1), Some(&m));
            assert_eq!(d.meta(0), Some(&Labels::empty()));
        }
        Ok(())
    }

    #[test]
    fn v3_layout() -> TestResult {
        let l = Labels::empty();
        // Newline-free lines: terminated, no lengths column; deltas of
        // 2 and 600 ms are 1 and 300 in units of 2 ms: two bytes each.
        let mut raw = Vec::new();
        let ms = 1_000_000;
        let info = encode_raw(
            [(10 * ms, "ab", &l), (12 * ms, "", &l), (612 * ms, "c", &l)],
            &mut raw,
        )
        .ok_or("nothing to encode")?;
        assert_eq!(info.lines_len, 6);
        assert_eq!(info.line_bytes, 3);
        let mut want = b"ab\n\nc\n".to_vec();
        want.push(3); // count
        tsdb::encoding::put_varint(&mut want, 10 * ms);
        tsdb::encoding::put_uvarint(&mut want, 2 * ms as u64);
        want.push(2); // width
        want.extend_from_slice(&[1, 0, 44, 1]); // 1 and 300, u16 LE
        want.push(FLAG_NEWLINES);
        want.extend_from_slice(&6u32.to_le_bytes());
        assert_eq!(raw, want);
        // A line holding a newline: lengths column, no terminators.
        let mut raw = Vec::new();
        let info = encode_raw([(1, "a\nb", &l), (1, "c", &l)], &mut raw).ok_or("nothing to encode")?;
        assert_eq!(info.lines_len, 4);
        let mut want = b"a\nbc".to_vec();
        // count, first_ts 1, scale 1, width 1, delta 0, lengths 3 and 1, flags
        want.extend_from_slice(&[2, 2, 1, 1, 0, 3, 1, 0]);
        want.extend_from_slice(&4u32.to_le_bytes());
        assert_eq!(raw, want);
        let mut d = DecodedBlock::default();
        d.decode_raw(raw, BlockFormat::V3)?;
        assert_eq!((d.line(0), d.line(1), d.sep), ("a\nb", "c", 0));
        Ok(())
    }

    #[test]
    fn delta_widths() -> TestResult {
        let l = Labels::empty();
        for step in [1i64, 255, 256, 65_535, 65_536, 1 << 32, i64::MAX / 4] {
            // Two deltas: `step` and 1, so the scale stays 1.
            let e = [(0, "a", &l), (step, "b", &l), (step + 1, "c", &l)];
            let mut raw = Vec::new();
            encode_raw(e, &mut raw).ok_or("nothing to encode")?;
            let mut d = DecodedBlock::default();
            d.decode_raw(raw, BlockFormat::V3)?;
            assert_eq!(d.ts, [0, step, step + 1]);
        }
        Ok(())
    }

    #[test]
    fn two_step_decoding() -> TestResult {
        let e: Vec<(i64, String, Labels)> = (0..5)
            .map(|i| (i, format!("line {i}"), Labels::empty()))
            .collect();
        for f in FORMATS {
            let raw = encode(&e, f);
            let comp = compress(&raw, f);
            let n = raw.len();
            let mut d = DecodedBlock::default();
            let mut dctx = zstd::bulk::Decompressor::new()?;
            d.decompress_lines(&comp, n, f, &mut dctx)?;
            assert_eq!(d.len(), 0, "nothing decoded yet");
            let lines = d.pending_lines(f)?;
            let want: &[u8] = if f == BlockFormat::V3 {
                b"line 0\nline 1\nline 2\nline 3\nline 4\n"
            } else {
                b"line 0line 1line 2line 3line 4"
            };
            assert_eq!(lines, want);
            d.finish(&comp, n, f, &mut dctx)?;
            assert_eq!(d.len(), 5);
            assert_eq!(d.line(3), "line 3");
            // Again into the same buffers, skipping `finish`.
            d.decompress_lines(&comp, n, f, &mut dctx)?;
            assert_eq!(d.len(), 0);
            d.decompress_lines(&comp, n, f, &mut dctx)?;
            d.finish(&comp, n, f, &mut dctx)?;
            assert_eq!(d.line(4), "line 4");
            // Wrong sizes, damaged or missing frames: errors.
            let mut fails = |comp: &[u8], n: usize| {
                d.decompress_lines(comp, n, f, &mut dctx).is_err()
                    || d.finish(comp, n, f, &mut dctx).is_err()
            };
            assert!(fails(&comp, n + 1));
            assert!(fails(&comp, n - 1));
            assert!(fails(&comp[..comp.len() - 1], n));
            if f == BlockFormat::V3 {
                let first = zstd::zstd_safe::find_frame_compressed_size(&comp).map_err(|code| format!("zstd error {code}"))?;
                assert!(first < comp.len(), "two frames");
                assert!(fails(&comp[..first], n));
            }
            assert_eq!(d.len(), 0);
        }
        Ok(())
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
    fn rejects_damage() -> TestResult {
        let l = Labels::empty();
        for f in FORMATS {
            for lines in [["abc", "de"], ["a\nc", "de"]] {
                let mut raw = Vec::new();
                let items = vec![(1, lines[0], &l), (2, lines[1], &l)];
                enc(f)(items.into_iter(), &mut raw).ok_or("nothing to encode")?;
                let mut d = DecodedBlock::default();
                for cut in 0..raw.len() {
                    assert!(
                        d.decode_raw(raw[..cut].to_vec(), f).is_err(),
                        "{f:?} cut {cut}"
                    );
                }
                let mut bad = raw.clone();
                bad[0] = 0xff; // invalid UTF-8 in the lines
                assert!(d.decode_raw(bad, f).unwrap_err().contains("UTF-8"), "{f:?}");
                d.decode_raw(raw, f)?;
                assert_eq!(d.line(1), "de");
            }
        }
        // Version 3: a newline too many or too few, unknown flags.
        let mut raw = Vec::new();
        encode_raw([(1, "ab", &l), (2, "cd", &l)], &mut raw).ok_or("nothing to encode")?;
        let mut d = DecodedBlock::default();
        for (edits, msg) in [
            (&[(1, b'\n')][..], "more than 2 lines"),
            (
                &[(2, b'x')][..],
                "1 newline-terminated lines in the block, 2 entries",
            ),
            (
                &[(4, b'\n'), (5, b'x')][..],
                "last line is not newline-terminated",
            ),
        ] {
            let mut bad = raw.clone();
            for &(at, byte) in edits {
                bad[at] = byte;
            }
            let err = d.decode_raw(bad, BlockFormat::V3).unwrap_err();
            assert!(err.contains(msg), "{err}");
        }
        let mut bad = raw.clone();
        let flags_at = bad.len() - 5;
        bad[flags_at] |= 0x80;
        assert!(d
            .decode_raw(bad, BlockFormat::V3)
            .unwrap_err()
            .contains("unknown block flags"));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn roundtrip_prop(mut e in proptest::collection::vec(
            (-1_000_000i64..1_000_000, "(.|\n){0,40}", proptest::collection::vec(("[a-z]{1,3}", "[a-z]{0,3}"), 0..3)),
            1..60,
        ), ms in any::<bool>(), newline_free in any::<bool>()) {
            e.sort_by_key(|x| x.0);
            let e: Vec<(i64, String, Labels)> = e
                .into_iter()
                .map(|(t, l, m)| {
                    let l = if newline_free { l.replace('\n', " ") } else { l };
                    (if ms { t * 1_000_000 } else { t }, l, Labels::from_pairs(m))
                })
                .collect();
            for f in FORMATS {
                let d = roundtrip(&e, f);
                prop_assert_eq!(d.len(), e.len());
                for (i, (t, l, m)) in e.iter().enumerate() {
                    prop_assert_eq!(d.ts[i], *t);
                    prop_assert_eq!(d.line(i), l.as_str());
                    prop_assert_eq!(d.meta(i).cloned().unwrap_or_default(), m.clone());
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300), raw_len in 0usize..100_000) {
            for f in FORMATS {
                let mut d = DecodedBlock::default();
                let _ = d.decode_raw(b.clone(), f);
                let mut dctx = zstd::bulk::Decompressor::new().unwrap();
                if d.decompress_lines(&b, raw_len, f, &mut dctx).is_ok() {
                    let _ = d.pending_lines(f);
                    let _ = d.finish(&b, raw_len, f, &mut dctx);
                }
            }
        }

        #[test]
        fn mutated_blocks_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), nl in any::<bool>()) {
            let l = Labels::from_pairs([("k", "v")]);
            for f in FORMATS {
                let mut raw = Vec::new();
                let first = if nl { "a\nc" } else { "abc" };
                let empty = Labels::empty();
                let items = vec![(1, first, &l), (7_000, "ü", &empty), (9_000, "x", &l)];
                enc(f)(items.into_iter(), &mut raw).unwrap();
                let i = pos.index(raw.len());
                raw[i] = byte;
                let mut d = DecodedBlock::default();
                if d.decode_raw(raw, f).is_ok() {
                    for k in 0..d.len() {
                        let _ = d.line(k);
                    }
                }
            }
        }
    }
}
