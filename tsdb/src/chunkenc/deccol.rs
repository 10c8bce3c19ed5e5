//! The columnar decimal chunk (encoding byte 0x12): the same information as
//! the decimal chunk of [`super::dec`], laid out for fast bulk decoding.
//!
//! Values are again `m × 10^e` plus a correction in units in the last place,
//! and the same three integer sequences are stored with the same per-chunk
//! codes (timestamp delta-of-deltas, value deltas or delta-of-deltas,
//! corrections), so a chunk is as small as its 0x10 twin plus a few header
//! bytes. But where 0x10 interleaves the sequences sample by sample in one
//! bit stream, here each sequence is a contiguous column, and the header is
//! whole bytes. Three consequences:
//!
//! - the bulk decoder ([`decode_all`]) runs one tight loop per column,
//!   compiled once per code kind, instead of three dependent variable-width
//!   reads with a code match per sample; a column coded `Zero` (the
//!   corrections of decimal data, the timestamps of a regular scrape) costs
//!   no reads at all;
//! - the careful sample-by-sample iterator ([`DecColIter`]) keeps one
//!   cursor per column, each checked against the column's end, so
//!   [`SampleIter::next`] and `seek` still work without decoding ahead;
//! - the header is parsed with byte reads instead of a bit reader.
//!
//! Like [`super::dec`], the chunk is written at once from complete samples
//! (block writing and compaction) and cannot be appended to. The byte
//! layout is specified in `docs/format/chunks.md`.

use super::bstream::BitWriter;
use super::dec::{self, Code, C, MAX_EXP, MIN_EXP, NAMES, POW10, T, V};
use crate::encoding::{put_uvarint, put_varint, unzigzag, Decbuf};
use model::{Sample, SampleIter, StorageError};

/// Encoding byte of columnar decimal chunks (this crate's own; Prometheus
/// cannot read them).
pub const ENCODING_DEC_COL: u8 = 0x12;


fn corrupt(detail: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("columnar decimal chunk: {detail}"))
}

/// The 2-bit kind of a code in the header.
fn kind(c: Code) -> u8 {
    match c {
        Code::Zero => 0,
        Code::Fixed(_) => 1,
        Code::Two(..) => 2,
        Code::Three(..) => 3,
    }
}

/// Bits a code spends on the value `z`.
fn value_bits(c: Code, z: u64) -> u64 {
    let len = 64 - z.leading_zeros();
    u64::from(match c {
        Code::Zero => 0,
        Code::Fixed(a) => a,
        Code::Two(a, b) => 1 + if len <= a { a } else { b },
        Code::Three(_, _) if z == 0 => 1,
        Code::Three(a, b) => 2 + if len <= a { a } else { b },
    })
}

/// Whether column `i`'s bit length is stored in the header: only for a
/// variable-width column followed by a non-empty one (fixed-width lengths
/// are implied, and the last non-empty column runs to the chunk's end).
fn length_stored(codes: &[Code; 3], i: usize) -> bool {
    matches!(codes[i], Code::Two(..) | Code::Three(..))
        && codes[i + 1..].iter().any(|c| *c != Code::Zero)
}

/// Encodes `samples` (strictly increasing timestamps, at most 65535) as a
/// columnar decimal chunk. Returns `None` when the values cannot be
/// expressed (for example non-finite values), in which case XOR should be
/// used.
pub fn encode(samples: &[Sample]) -> Option<Vec<u8>> {
    let p = dec::Parts::new(samples)?;
    let n = samples.len();
    let mut out = Vec::with_capacity(24 + n);
    dec::put_times_head(&mut out, n, &p)?;
    if n == 0 {
        return Some(out);
    }
    // `e - MIN_EXP` is in 0..=44 (Parts guarantees MIN_EXP <= e <= MAX_EXP).
    out.push((((p.e - MIN_EXP) as u8) << 2) | (u8::from(p.dod) << 1));
    let codes = [p.code_t, p.code_v, p.code_c];
    out.push((kind(codes[T]) << 6) | (kind(codes[V]) << 4) | (kind(codes[C]) << 2));
    for c in codes {
        // Widths are 1..=64, stored minus one.
        match c {
            Code::Zero => {}
            Code::Fixed(a) => out.push((a - 1) as u8),
            Code::Two(a, b) | Code::Three(a, b) => out.extend_from_slice(&[(a - 1) as u8, (b - 1) as u8]),
        }
    }
    put_varint(&mut out, p.m0);
    if p.dod {
        put_varint(&mut out, p.d1);
    }
    let seqs: [&[u64]; 3] = [&p.ts, &p.vres, &p.cs];
    for i in [T, V] {
        if length_stored(&codes, i) {
            put_uvarint(&mut out, seqs[i].iter().map(|&z| value_bits(codes[i], z)).sum());
        }
    }
    let mut w = BitWriter::from_parts(out, 0);
    for (code, seq) in codes.iter().zip(seqs) {
        for &z in seq {
            code.write(&mut w, z);
        }
    }
    Some(w.into_bytes())
}

/// Where one column's bits lie, as bit offsets from the start of the chunk.
#[derive(Clone, Copy, Debug)]
struct Column {
    code: Code,
    start: usize,
    /// One past the column's last bit; for an open column, the end of the
    /// chunk.
    end: usize,
    /// The column's length is not stored: it ends in the chunk's last byte,
    /// whose remaining bits are zero.
    open: bool,
}

impl Column {
    /// Whether a cursor that has read every value ends where the column
    /// must end.
    fn ends_at(&self, pos: usize, data: &[u8]) -> bool {
        if !self.open {
            return pos == self.end;
        }
        pos <= self.end && self.end - pos < 8 && padding_is_zero(data, pos)
    }
}

/// Whether the bits from `pos` to the end of its byte are zero.
fn padding_is_zero(data: &[u8], pos: usize) -> bool {
    let used = pos & 7;
    used == 0 || data.get(pos >> 3).is_some_and(|b| b & (0xff >> used) == 0)
}

/// The parsed header of a chunk.
#[derive(Clone, Copy, Debug)]
struct Layout {
    n: u16,
    t0: i64,
    t_delta: i64,
    m0: i64,
    d1: i64,
    e: i32,
    dod: bool,
    cols: [Column; 3],
}

fn parse(data: &[u8]) -> Result<Layout, StorageError> {
    let mut d = Decbuf::new(data);
    let hdr = |e: crate::encoding::DecodeError| corrupt(format!("header: {e}"));
    let head = dec::read_times_head(&mut d).map_err(corrupt)?;
    let n = head.n;
    let zero = Column { code: Code::Zero, start: 16, end: 16, open: false };
    let mut l = Layout { n, t0: head.t0, t_delta: head.t_delta, m0: 0, d1: 0, e: 0, dod: false, cols: [zero; 3] };
    if n == 0 {
        return Ok(l);
    }
    let at = d.offset();
    let flags = d.u8().map_err(hdr)?;
    l.e = i32::from(flags >> 2) + MIN_EXP;
    if l.e > MAX_EXP {
        return Err(corrupt(format!("exponent {} out of range at byte {at}", l.e)));
    }
    if flags & 1 != 0 {
        return Err(corrupt(format!("reserved flag bit set at byte {at}")));
    }
    l.dod = flags & 2 != 0;
    let at = d.offset();
    let kinds = d.u8().map_err(hdr)?;
    if kinds & 3 != 0 {
        return Err(corrupt(format!("reserved code bits set at byte {at}")));
    }
    let n = usize::from(n);
    let counts = [
        n.saturating_sub(2),
        if n < 2 {
            0
        } else if l.dod {
            n - 2
        } else {
            n - 1
        },
        n,
    ];
    let mut codes = [Code::Zero; 3];
    for i in [T, V, C] {
        let k = (kinds >> (6 - 2 * i)) & 3;
        let at = d.offset();
        let ws = d.bytes(usize::from(k.min(2))).map_err(hdr)?;
        if let Some(w) = ws.iter().find(|&&w| w > 63) {
            return Err(corrupt(format!("{} code width {} over 64 at byte {at}", NAMES[i], u32::from(*w) + 1)));
        }
        let w = |j: usize| ws.get(j).map_or(0, |&w| u32::from(w) + 1);
        codes[i] = match k {
            0 => Code::Zero,
            1 => Code::Fixed(w(0)),
            2 => Code::Two(w(0), w(1)),
            _ => Code::Three(w(0), w(1)),
        };
        if counts[i] == 0 && codes[i] != Code::Zero {
            return Err(corrupt(format!("{} column has no values but a code at byte {at}", NAMES[i])));
        }
    }
    if n < 2 && l.dod {
        return Err(corrupt("delta-of-delta flag on a one-sample chunk"));
    }
    l.m0 = d.varint().map_err(hdr)?;
    if l.dod {
        l.d1 = d.varint().map_err(hdr)?;
    }
    let mut lens: [Option<usize>; 3] = [None; 3];
    for i in [T, V] {
        if length_stored(&codes, i) {
            let at = d.offset();
            let len = d.uvarint().map_err(hdr)?;
            lens[i] = Some(usize::try_from(len).map_err(|_| corrupt(format!("column length {len} at byte {at}")))?);
        }
    }
    let total = data.len() * 8;
    let mut pos = d.position() * 8;
    for i in [T, V, C] {
        let (len, open) = match codes[i] {
            Code::Zero => (0, false),
            // At most 65535 values of at most 64 bits: no overflow.
            Code::Fixed(w) => (counts[i] * w as usize, false),
            Code::Two(..) | Code::Three(..) => match lens[i] {
                Some(len) => (len, false),
                None => (total.saturating_sub(pos), true),
            },
        };
        let end = pos.checked_add(len).filter(|&e| e <= total).ok_or_else(|| {
            corrupt(format!("{} column of {len} bits at bit {pos} runs past the end (bit {total})", NAMES[i]))
        })?;
        l.cols[i] = Column { code: codes[i], start: pos, end, open };
        pos = end;
    }
    // With every length known, the chunk must end in the byte holding the
    // last column bit, zero-padded (an open column is checked when read).
    if !l.cols.iter().any(|c| c.open) && (total - pos >= 8 || !padding_is_zero(data, pos)) {
        return Err(corrupt(format!("unused data after the last column at bit {pos} of {total}")));
    }
    Ok(l)
}

/// A bit cursor: reads are one unaligned 8-byte load and two shifts, past
/// the end of the data they see zeros. Callers check the position against
/// a column's end (per value or per column).
#[derive(Clone, Copy, Debug)]
pub(super) struct Bits<'b> {
    pub(super) data: &'b [u8],
    pub(super) pos: usize,
}

/// The 64 bits from `pos` on, left-aligned, for a position in the last 8
/// bytes of `data` or past it (zeros beyond the data).
#[inline(never)]
fn peek_tail(data: &[u8], pos: usize) -> u64 {
    let i = pos >> 3;
    let mut w = [0u8; 8];
    if let Some(rest) = data.get(i..) {
        let k = rest.len().min(8);
        w[..k].copy_from_slice(&rest[..k]);
    }
    u64::from_be_bytes(w) << (pos & 7)
}

/// A bit cursor of the decoders ([`Bits`] over any slice, [`Window`] over
/// a fixed-size copy).
pub(super) trait BitSource: Copy {
    /// The next 57 or more bits, left-aligned.
    fn peek(&self) -> u64;
    /// The position, in bits.
    fn pos(&self) -> usize;
    /// Moves the position to `pos`.
    fn set_pos(&mut self, pos: usize);

    /// Reads `n` bits, `1 <= n <= 56`.
    #[inline(always)]
    fn short(&mut self, n: u32) -> u64 {
        let v = self.peek() >> (64 - n);
        self.set_pos(self.pos() + n as usize);
        v
    }

    /// Reads `n` bits, `1 <= n <= 64`.
    #[inline(always)]
    fn bits(&mut self, n: u32) -> u64 {
        if n <= 56 {
            self.short(n)
        } else {
            let hi = self.short(n - 32);
            (hi << 32) | self.short(32)
        }
    }

    /// Reads one value of code `c`.
    #[inline(always)]
    fn value(&mut self, c: Code) -> u64 {
        match c {
            Code::Zero => 0,
            Code::Fixed(a) => self.bits(a),
            Code::Two(a, b) => {
                let top = self.peek() >> 63;
                self.set_pos(self.pos() + 1);
                self.bits(if top == 1 { b } else { a })
            }
            Code::Three(a, b) => {
                let w = self.peek();
                if w >> 63 == 0 {
                    self.set_pos(self.pos() + 1);
                    0
                } else {
                    self.set_pos(self.pos() + 2);
                    self.bits(if (w >> 62) & 1 == 1 { b } else { a })
                }
            }
        }
    }
}

impl BitSource for Bits<'_> {
    #[inline(always)]
    fn peek(&self) -> u64 {
        let i = self.pos >> 3;
        match self.data.get(i..i + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(w) => u64::from_be_bytes(w) << (self.pos & 7),
            None => peek_tail(self.data, self.pos),
        }
    }

    #[inline(always)]
    fn pos(&self) -> usize {
        self.pos
    }

    #[inline(always)]
    fn set_pos(&mut self, pos: usize) {
        self.pos = pos;
    }
}

/// Chunks up to this many bytes (less 8) are bulk decoded from a copy of
/// this size, where reads need no bounds checks.
const WINDOW: usize = 1 << 12;

/// A bit cursor over a fixed-size buffer: the byte index is masked into
/// range, so the compiler drops the bounds check of every load. Positions
/// past the window (only reached on corrupt data, whose columns then fail
/// their end checks) wrap around instead of reading zeros.
#[derive(Clone, Copy, Debug)]
struct Window<'b> {
    data: &'b [u8; WINDOW + 8],
    pos: usize,
}

impl BitSource for Window<'_> {
    #[inline(always)]
    fn peek(&self) -> u64 {
        let i = (self.pos >> 3) & (WINDOW - 1);
        let w = <[u8; 8]>::try_from(&self.data[i..i + 8]).map_or(0, u64::from_be_bytes);
        w << (self.pos & 7)
    }

    #[inline(always)]
    fn pos(&self) -> usize {
        self.pos
    }

    #[inline(always)]
    fn set_pos(&mut self, pos: usize) {
        self.pos = pos;
    }
}

/// Iterates a columnar decimal chunk sample by sample, with one cursor per
/// column; corrupt bytes give [`StorageError::Corrupt`].
#[derive(Clone, Debug)]
pub struct DecColIter<'a> {
    data: &'a [u8],
    l: Layout,
    read: u16,
    pos: [usize; 3],
    t: i64,
    t_delta: i64,
    m: i64,
    m_delta: i64,
    failed: bool,
}

impl<'a> DecColIter<'a> {
    /// An iterator over the chunk bytes `data` (sample count included).
    /// Fails when the header is malformed; damaged columns are reported
    /// while iterating.
    pub fn new(data: &'a [u8]) -> Result<Self, StorageError> {
        let l = parse(data)?;
        Ok(DecColIter {
            data,
            l,
            read: 0,
            pos: [l.cols[T].start, l.cols[V].start, l.cols[C].start],
            t: l.t0,
            t_delta: l.t_delta,
            m: l.m0,
            m_delta: l.d1,
            failed: false,
        })
    }

    /// Samples the header says the chunk holds.
    pub fn num_samples(&self) -> usize {
        usize::from(self.l.n)
    }

    /// Reads the next value of column `i`; `None` when it does not end
    /// inside the column.
    #[inline(always)]
    fn value(&mut self, i: usize) -> Option<i64> {
        let col = &self.l.cols[i];
        let mut b = Bits { data: self.data, pos: self.pos[i] };
        let z = b.value(col.code);
        self.pos[i] = b.pos;
        (b.pos <= col.end).then_some(unzigzag(z))
    }

    #[cold]
    fn overrun(&self, i: usize) -> StorageError {
        let col = &self.l.cols[i];
        corrupt(format!(
            "{} column (bits {}..{}) ends before its value for sample {}",
            NAMES[i], col.start, col.end, self.read
        ))
    }

    /// After the last sample: every column must end where its values do.
    #[cold]
    fn check_ends(&self) -> Result<(), StorageError> {
        for (k, col) in self.l.cols.iter().enumerate() {
            if !col.ends_at(self.pos[k], self.data) {
                return Err(corrupt(format!(
                    "{} column (bits {}..{}) has unread bits after its last value at bit {}",
                    NAMES[k], col.start, col.end, self.pos[k]
                )));
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn step(&mut self) -> Result<Sample, StorageError> {
        let i = self.read;
        if i >= 1 {
            if i >= 2 {
                let Some(dd) = self.value(T) else { return Err(self.overrun(T)) };
                self.t_delta = self.t_delta.wrapping_add(dd);
            }
            self.t = self.t.wrapping_add(self.t_delta);
            if !self.l.dod {
                let Some(d) = self.value(V) else { return Err(self.overrun(V)) };
                self.m = self.m.wrapping_add(d);
            } else {
                if i >= 2 {
                    let Some(dd) = self.value(V) else { return Err(self.overrun(V)) };
                    self.m_delta = self.m_delta.wrapping_add(dd);
                }
                self.m = self.m.wrapping_add(self.m_delta);
            }
        }
        let Some(c) = self.value(C) else { return Err(self.overrun(C)) };
        if i + 1 == self.l.n {
            self.check_ends()?;
        }
        self.read += 1;
        let bits = dec::scale(self.m, self.l.e).to_bits().wrapping_add(c as u64);
        Ok(Sample { t: self.t, v: f64::from_bits(bits) })
    }

    /// Decodes the samples of a fresh iterator into `out` (see
    /// [`decode_all`]); on an iterator already read from, appends the
    /// remaining samples one by one.
    pub fn decode_into(mut self, out: &mut Vec<Sample>, scratch: &mut Vec<u8>) -> Result<(), StorageError> {
        if self.read == 0 && !self.failed && decode_fresh(&self, out, scratch) {
            return Ok(());
        }
        // Damaged columns (or a started iterator): the careful reader
        // yields exactly the samples before the damage and says where.
        while let Some(s) = self.next()? {
            out.push(s);
        }
        Ok(())
    }
}

impl SampleIter for DecColIter<'_> {
    #[inline]
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        if self.failed || self.read >= self.l.n {
            return Ok(None);
        }
        match self.step() {
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}

/// Zero bytes after the chunk in [`decode_all`]'s copy, so that every read
/// inside the chunk is one 8-byte load.
const PAD: usize = 16;

/// Decodes every sample of a columnar decimal chunk into `out`: the same
/// samples as iterating a [`DecColIter`], several times faster. `scratch`
/// is a reusable buffer. On corrupt data the samples before the damage are
/// in `out` and the error says where.
pub fn decode_all(data: &[u8], out: &mut Vec<Sample>, scratch: &mut Vec<u8>) -> Result<(), StorageError> {
    DecColIter::new(data)?.decode_into(out, scratch)
}

/// A variable-width code whose prefix and value fit one 57-bit peek: one
/// value is one load, a few shifts and a conditional move.
trait VarCode: Copy {
    fn read<R: BitSource>(self, r: &mut R) -> i64;
}

/// [`Code::Fixed`] with a width of at most 56.
#[derive(Clone, Copy)]
struct FixedCode(u32);

impl VarCode for FixedCode {
    #[inline(always)]
    fn read<R: BitSource>(self, r: &mut R) -> i64 {
        unzigzag(r.short(self.0))
    }
}

/// [`Code::Two`] with both widths at most 56.
#[derive(Clone, Copy)]
struct TwoCode(u32, u32);

impl VarCode for TwoCode {
    #[inline(always)]
    fn read<R: BitSource>(self, r: &mut R) -> i64 {
        let w = r.peek();
        let width = if w >> 63 == 1 { self.1 } else { self.0 };
        let z = (w << 1) >> (64 - width);
        r.set_pos(r.pos() + 1 + width as usize);
        unzigzag(z)
    }
}

/// [`Code::Three`] with both widths at most 55.
#[derive(Clone, Copy)]
struct ThreeCode(u32, u32);

impl VarCode for ThreeCode {
    #[inline(always)]
    fn read<R: BitSource>(self, r: &mut R) -> i64 {
        let w = r.peek();
        // Zero or not is data (jittered timestamps: either, at random):
        // masks instead of a branch the processor would mispredict.
        let nonzero = 0u64.wrapping_sub(w >> 63);
        let width = if (w >> 62) & 1 == 1 { self.1 } else { self.0 };
        let z = ((w << 2) >> (64 - width)) & nonzero;
        r.set_pos(r.pos() + 1 + ((1 + width as usize) & nonzero as usize));
        unzigzag(z)
    }
}

/// Calls `f` on each item of `items` with the next value of a column coded
/// `code` read through `r`. Matching the code once, outside the loop, gives
/// one specialised loop per code kind; when prefix and value fit in one
/// 57-bit peek (widths up to 55), a value is one load.
#[inline(always)]
fn for_each_value<R: BitSource, S>(code: Code, r: &mut R, items: &mut [S], mut f: impl FnMut(&mut S, i64)) {
    match code {
        Code::Zero => items.iter_mut().for_each(|x| f(x, 0)),
        Code::Fixed(a) if a <= 56 => {
            for x in items {
                f(x, FixedCode(a).read(r));
            }
        }
        Code::Two(a, b) if a.max(b) <= 56 => {
            for x in items {
                f(x, TwoCode(a, b).read(r));
            }
        }
        Code::Three(a, b) if a.max(b) <= 55 => {
            for x in items {
                f(x, ThreeCode(a, b).read(r));
            }
        }
        _ => {
            for x in items {
                f(x, unzigzag(r.value(code)));
            }
        }
    }
}

/// The bulk decoder: fills `out` column by column from a copy of the chunk
/// in `scratch`. Returns false, with `out` as it was, when a column does
/// not end where it should (corrupt data; the caller then reads
/// carefully).
fn decode_fresh(it: &DecColIter<'_>, out: &mut Vec<Sample>, scratch: &mut Vec<u8>) -> bool {
    let l = &it.l;
    let n = usize::from(l.n);
    if n == 0 {
        return true;
    }
    let len = it.data.len();
    let base = out.len();
    out.resize(base + n, Sample { t: 0, v: 0.0 });
    let s = &mut out[base..];
    let ok = if len + 8 <= WINDOW {
        // Bytes past the chunk are left from earlier chunks: valid reads
        // shift them out, and a read that uses them ends past its column.
        if scratch.len() < WINDOW + 8 {
            scratch.resize(WINDOW + 8, 0);
        }
        scratch[..len].copy_from_slice(it.data);
        match <&[u8; WINDOW + 8]>::try_from(&scratch[..WINDOW + 8]) {
            Ok(data) => decode_columns(l, it.data, Window { data, pos: 0 }, s),
            Err(_) => false,
        }
    } else {
        scratch.clear();
        scratch.extend_from_slice(it.data);
        scratch.resize(len + PAD, 0);
        decode_columns(l, it.data, Bits { data: scratch, pos: 0 }, s)
    };
    if !ok {
        out.truncate(base);
    }
    ok
}

/// Decodes the three columns of `l` from `src` (a copy of `data`) into `s`.
#[inline(always)]
fn decode_columns<R: BitSource>(l: &Layout, data: &[u8], src: R, s: &mut [Sample]) -> bool {
    // Variable-width timestamps and variable- or fixed-width values
    // (irregular scrapes of changing values): both columns in one loop, so
    // that the two chains of dependent reads overlap.
    let fused = match (l.cols[T].code, l.cols[V].code) {
        _ if s.len() < 3 => None,
        (Code::Two(a, b), Code::Two(c, d)) if a.max(b).max(c).max(d) <= 56 => Some(fill_both(l, data, src, TwoCode(a, b), TwoCode(c, d), s)),
        (Code::Two(a, b), Code::Three(c, d)) if a.max(b) <= 56 && c.max(d) <= 55 => Some(fill_both(l, data, src, TwoCode(a, b), ThreeCode(c, d), s)),
        (Code::Three(a, b), Code::Two(c, d)) if a.max(b) <= 55 && c.max(d) <= 56 => Some(fill_both(l, data, src, ThreeCode(a, b), TwoCode(c, d), s)),
        (Code::Three(a, b), Code::Three(c, d)) if a.max(b).max(c).max(d) <= 55 => Some(fill_both(l, data, src, ThreeCode(a, b), ThreeCode(c, d), s)),
        // Jittered timestamps of a steadily growing counter.
        (Code::Two(a, b), Code::Fixed(c)) if a.max(b).max(c) <= 56 => Some(fill_both(l, data, src, TwoCode(a, b), FixedCode(c), s)),
        (Code::Three(a, b), Code::Fixed(c)) if a.max(b) <= 55 && c <= 56 => Some(fill_both(l, data, src, ThreeCode(a, b), FixedCode(c), s)),
        _ => None,
    };
    let filled = match fused {
        Some(ok) => ok,
        None => fill_timestamps(l, data, src, s) && fill_values(l, data, src, s),
    };
    filled && add_corrections(l, data, src, s)
}

/// Timestamps and values (before corrections) of at least three samples,
/// both columns read in one loop: what [`fill_timestamps`] and
/// [`fill_values`] compute, one after the other.
fn fill_both<R: BitSource, TC: VarCode, VC: VarCode>(l: &Layout, data: &[u8], src: R, tc: TC, vc: VC, s: &mut [Sample]) -> bool {
    let ends = if l.dod { fill_both_with::<R, TC, VC, true>(l, src, tc, vc, s) } else { fill_both_with::<R, TC, VC, false>(l, src, tc, vc, s) };
    // The loop left each value's mantissa in its bits: scaled here, in a
    // loop of its own without reads.
    let p = POW10[(l.e.unsigned_abs() as usize).min(POW10.len() - 1)];
    if l.e >= 0 {
        s.iter_mut().for_each(|x| x.v = x.v.to_bits() as i64 as f64 * p);
    } else {
        s.iter_mut().for_each(|x| x.v = x.v.to_bits() as i64 as f64 / p);
    }
    l.cols[T].ends_at(ends[T], data) && l.cols[V].ends_at(ends[V], data)
}

/// The loop of [`fill_both`] for values coded as deltas (`DOD` false) or
/// delta-of-deltas: timestamps, and mantissas in the values' bits. Returns
/// where the two cursors ended.
#[inline(always)]
fn fill_both_with<R: BitSource, TC: VarCode, VC: VarCode, const DOD: bool>(l: &Layout, src: R, tc: TC, vc: VC, s: &mut [Sample]) -> [usize; 2] {
    let (mut rt, mut rv) = (src, src);
    rt.set_pos(l.cols[T].start);
    rv.set_pos(l.cols[V].start);
    let mantissa = |m: i64| f64::from_bits(m as u64);
    let (mut t, mut d) = (l.t0.wrapping_add(l.t_delta), l.t_delta);
    let (mut m, mut dm) = (l.m0, l.d1);
    s[0] = Sample { t: l.t0, v: mantissa(m) };
    m = m.wrapping_add(if DOD { dm } else { vc.read(&mut rv) });
    s[1] = Sample { t, v: mantissa(m) };
    for x in &mut s[2..] {
        d = d.wrapping_add(tc.read(&mut rt));
        t = t.wrapping_add(d);
        let z = vc.read(&mut rv);
        if DOD {
            dm = dm.wrapping_add(z);
            m = m.wrapping_add(dm);
        } else {
            m = m.wrapping_add(z);
        }
        *x = Sample { t, v: mantissa(m) };
    }
    [rt.pos(), rv.pos()]
}

fn fill_timestamps<R: BitSource>(l: &Layout, data: &[u8], mut r: R, s: &mut [Sample]) -> bool {
    s[0].t = l.t0;
    let (mut t, mut d) = (l.t0.wrapping_add(l.t_delta), l.t_delta);
    let Some((second, rest)) = s[1..].split_first_mut() else { return true };
    second.t = t;
    let col = &l.cols[T];
    r.set_pos(col.start);
    for_each_value(col.code, &mut r, rest, |x, dd| {
        d = d.wrapping_add(dd);
        t = t.wrapping_add(d);
        x.t = t;
    });
    col.ends_at(r.pos(), data)
}

fn fill_values<R: BitSource>(l: &Layout, data: &[u8], r: R, s: &mut [Sample]) -> bool {
    // One loop per sign of the exponent: the scale is a multiplication or a
    // division (dividing by an exact power of ten is what makes decimal
    // values come out exactly).
    let e = l.e.unsigned_abs() as usize;
    let p = POW10[e.min(POW10.len() - 1)];
    if l.e >= 0 {
        fill_values_with(l, data, r, s, |m| m as f64 * p)
    } else {
        fill_values_with(l, data, r, s, |m| m as f64 / p)
    }
}

#[inline(always)]
fn fill_values_with<R: BitSource>(l: &Layout, data: &[u8], mut r: R, s: &mut [Sample], scale: impl Fn(i64) -> f64) -> bool {
    let mut m = l.m0;
    s[0].v = scale(m);
    let col = &l.cols[V];
    r.set_pos(col.start);
    if l.dod {
        let mut d = l.d1;
        m = m.wrapping_add(d);
        let Some((second, rest)) = s[1..].split_first_mut() else { return col.ends_at(r.pos(), data) };
        second.v = scale(m);
        for_each_value(col.code, &mut r, rest, |x, dd| {
            d = d.wrapping_add(dd);
            m = m.wrapping_add(d);
            x.v = scale(m);
        });
    } else {
        for_each_value(col.code, &mut r, &mut s[1..], |x, d| {
            m = m.wrapping_add(d);
            x.v = scale(m);
        });
    }
    col.ends_at(r.pos(), data)
}

fn add_corrections<R: BitSource>(l: &Layout, data: &[u8], mut r: R, s: &mut [Sample]) -> bool {
    let col = &l.cols[C];
    if col.code == Code::Zero {
        return true;
    }
    r.set_pos(col.start);
    for_each_value(col.code, &mut r, s, |x, c| {
        x.v = f64::from_bits(x.v.to_bits().wrapping_add(c as u64));
    });
    col.ends_at(r.pos(), data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes `bytes` carefully (next), in bulk, and by seeking, checking
    /// that all agree: same samples, same failure.
    fn decode(bytes: &[u8]) -> Result<Vec<Sample>, StorageError> {
        let mut careful = Vec::new();
        let res = DecColIter::new(bytes).and_then(|mut it| {
            while let Some(s) = it.next()? {
                careful.push(s);
            }
            Ok(())
        });
        let mut fast = vec![Sample::new(-1, 0.5)];
        // A scratch buffer full of leftovers, as after earlier chunks.
        let mut scratch = vec![0xa5; WINDOW + 64];
        let bulk = decode_all(bytes, &mut fast, &mut scratch);
        assert_eq!(
            res.as_ref().map_err(ToString::to_string),
            bulk.as_ref().map_err(ToString::to_string)
        );
        assert_eq!(fast.len(), careful.len() + 1);
        assert!(careful.iter().zip(&fast[1..]).all(|(a, b)| a.bit_eq(b)));
        // A partly read iterator finishes one sample at a time.
        if let Ok(mut it) = DecColIter::new(bytes) {
            if let Ok(Some(first)) = it.next() {
                let mut rest = vec![first];
                let r = it.decode_into(&mut rest, &mut Vec::new());
                assert_eq!(r.is_ok(), res.is_ok());
                assert_eq!(rest.len(), careful.len());
            }
        }
        res.map(|()| careful)
    }

    /// Encodes `samples`, decodes them every way and checks the round
    /// trip; `Ok(None)` when they are not decimal.
    fn check(samples: &[Sample]) -> Result<Option<Vec<u8>>, String> {
        let Some(bytes) = encode(samples) else { return Ok(None) };
        let got = decode(&bytes).map_err(|e| e.to_string())?;
        assert_eq!(got.len(), samples.len());
        for (a, b) in got.iter().zip(samples) {
            assert!(a.bit_eq(b), "{a:?} != {b:?}");
        }
        // Same information as the interleaved layout, a few bytes more: at
        // most 3 + 2 × 6 bits of byte-aligned kinds and widths, two column
        // lengths of up to 3 bytes, and a byte of rounding.
        let old = dec::encode(samples).ok_or("the interleaved encoder refused decimal samples")?;
        assert!(bytes.len() <= old.len() + 9, "{} vs {}", bytes.len(), old.len());
        Ok(Some(bytes))
    }

    /// [`check`] for samples that must be decimal.
    fn encoded(samples: &[Sample]) -> Result<Vec<u8>, String> {
        check(samples)?.ok_or_else(|| "not decimal".to_string())
    }

    fn err(e: StorageError) -> String {
        e.to_string()
    }

    fn ts(i: i64) -> i64 {
        1_700_000_000_000 + i * 15_000
    }

    #[test]
    fn typical_series_are_tiny() -> Result<(), String> {
        let constant: Vec<Sample> = (0..120).map(|i| Sample::new(ts(i), 1.0)).collect();
        assert!(encoded(&constant)?.len() <= 16);
        let gauge: Vec<Sample> =
            (0..120).map(|i| Sample::new(ts(i), [0.2105, 0.2107, 0.2113, 0.2109][i as usize % 4])).collect();
        assert!(encoded(&gauge)?.len() < 120);
        let mut v = 3_687_850.32;
        let sums: Vec<Sample> = (0..120)
            .map(|i| {
                v += [0.15, 1.37, 12.01][i as usize % 3];
                Sample::new(ts(i) + [0, 3, -2][i as usize % 3], v)
            })
            .collect();
        encoded(&sums)?;
        let counter: Vec<Sample> = (0..120).map(|i| Sample::new(ts(i), (i * 1500) as f64)).collect();
        assert!(encoded(&counter)?.len() <= 16);
        Ok(())
    }

    #[test]
    fn chunks_larger_than_the_window() -> Result<(), String> {
        // Scattered values and jitter: over WINDOW bytes, so the bulk
        // decoder reads from a padded copy instead of the fixed window.
        let samples: Vec<Sample> =
            (0..3000).map(|i| Sample::new(ts(i) + (i * i) % 11, (i * 2_654_435_761 % 1_000_003) as f64 * 0.01)).collect();
        let bytes = encoded(&samples)?;
        assert!(bytes.len() + 8 > WINDOW, "{}", bytes.len());
        for cut in [bytes.len() - 1, bytes.len() / 2] {
            assert!(decode(&bytes[..cut]).is_err());
        }
        Ok(())
    }

    #[test]
    fn short_chunks() -> Result<(), String> {
        assert_eq!(encoded(&[])?, vec![0, 0]);
        encoded(&[Sample::new(-5, 7.0)])?;
        encoded(&[Sample::new(-5, 0.25), Sample::new(i64::MAX, 12_345.5)])?;
        encoded(&[Sample::new(i64::MIN, 0.1), Sample::new(0, 0.2), Sample::new(i64::MAX, 0.4)])?;
        encoded(&[Sample::new(1, 5e-324), Sample::new(2, 0.0)])?;
        // Magnitudes no one exponent covers are left to XOR.
        assert!(encode(&[Sample::new(1, 0.25), Sample::new(2, f64::MAX)]).is_none());
        encoded(&[Sample::new(1, 1.0), Sample::new(2, 2.0), Sample::new(4, 3.0)])?;
        Ok(())
    }

    #[test]
    fn special_values_round_trip_through_encode_best() -> Result<(), String> {
        // Non-finite values are not decimal: encode refuses them and the
        // chunk falls back to XOR, which keeps every bit.
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let vals = [
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::from_bits(0xfff0_0000_0000_0001),
            stale,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            5e-324,
        ];
        for (i, &v) in vals.iter().enumerate() {
            let samples: Vec<Sample> =
                (0..10).map(|k| Sample::new(ts(k), if k == 4 { v } else { 1.5 })).collect();
            let (enc, bytes) = super::super::encode_best(&samples);
            // -0.0 is not `m × 10^e` for any m: it needs a correction of
            // 2^63, which the encoder does not try.
            let decimal = v.is_finite() && v.to_bits() != (-0.0f64).to_bits();
            assert_eq!(encode(&samples).is_some(), decimal, "value {i}");
            let mut it = super::super::ChunkIter::new(enc, &bytes).map_err(err)?;
            for want in &samples {
                let got = it.next().map_err(err)?.ok_or("chunk ended early")?;
                assert!(got.bit_eq(want), "value {i}");
            }
            assert_eq!(it.next().map_err(err)?, None);
        }
        // The format itself holds any bit pattern: m = 0 plus a 64-bit
        // correction (a hand-made one-sample chunk).
        for (i, &v) in vals.iter().enumerate() {
            let mut bytes = vec![0, 1, 0, 0x58, 0x04, 63, 0];
            bytes.extend_from_slice(&crate::encoding::zigzag(v.to_bits() as i64).to_be_bytes());
            let got = decode(&bytes).map_err(err)?;
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].v.to_bits(), v.to_bits(), "value {i}");
        }
        Ok(())
    }

    /// The exact bytes of a small chunk (see docs/format/chunks.md).
    #[test]
    fn golden_layout() -> Result<(), String> {
        // Timestamps 1000, 2000, 3000, 4001 (dods 0, 1); values 1.5, 1.7,
        // 1.8, 2.4 (e = -1, m = 15, 17, 18, 24: deltas 2, 1, 6); the last
        // value is 2.4000000000000004, one unit in the last place above 2.4.
        let samples = [
            Sample::new(1000, 1.5),
            Sample::new(2000, 1.7),
            Sample::new(3000, 1.8),
            Sample::new(4001, f64::from_bits(2.4f64.to_bits() + 1)),
        ];
        let bytes = encoded(&samples)?;
        let want: &[u8] = &[
            0x00, 0x04, // 4 samples
            0xd0, 0x0f, // t0 = 1000 (varint, zig-zag: 2000)
            0xe8, 0x07, // t1 - t0 = 1000 (uvarint)
            0x54, // e + 22 = 21 << 2, delta mode
            0x54, // kinds: t Fixed, v Fixed, c Fixed
            0x01, 0x03, 0x01, // widths - 1: t 2, v 4, c 2
            0x1e, // m0 = 15 (zig-zag 30)
            // columns: t [0, 1] as zig-zag 2-bit: 00 10; v [2, 1, 6] as
            // zig-zag 4-bit: 0100 0010 1100; c [0, 0, 0, 1] as 2-bit:
            // 00 00 00 10 (24 bits: no padding).
            0b0010_0100, 0b0010_1100, 0b0000_0010,
        ];
        assert_eq!(bytes, want);
        Ok(())
    }

    #[test]
    fn corrupt_chunks_are_errors() -> Result<(), String> {
        let samples: Vec<Sample> = (0..50).map(|i| Sample::new(ts(i) + (i * i) % 7, (i % 9) as f64 * 0.1)).collect();
        let bytes = encoded(&samples)?;
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "truncated to {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        let e = decode(&long).unwrap_err().to_string();
        assert!(e.contains("columnar decimal chunk"), "{e}");
        assert!(decode(&[0, 0, 0]).is_err());
        // Reserved bits and out-of-range exponents.
        assert!(decode(&[0, 1, 0, 0xb4, 0]).is_err());
        assert!(decode(&[0, 1, 0, 0x01, 0]).is_err());
        assert!(decode(&[0, 1, 0, 0x58, 0x01, 0]).is_err());
        // A valid one-sample chunk, for contrast.
        assert_eq!(decode(&[0, 1, 0, 0x58, 0, 2]).map_err(err)?, vec![Sample::new(0, 1.0)]);
        Ok(())
    }

    fn samples_from(start: i64, deltas: Vec<u64>, vals: &[f64]) -> Vec<Sample> {
        let mut t = start;
        let mut samples = vec![];
        for (i, d) in std::iter::once(0u64).chain(deltas).enumerate() {
            if i > 0 {
                match t.checked_add_unsigned(d) {
                    Some(n) => t = n,
                    None => break,
                }
            }
            samples.push(Sample::new(t, vals[i % vals.len()]));
        }
        samples
    }

    fn deltas() -> impl Strategy<Value = Vec<u64>> {
        proptest::collection::vec(prop_oneof![Just(15_000u64), 14_990u64..15_010, 1u64..100_000, any::<u64>()], 0..150)
    }

    fn values() -> impl Strategy<Value = Vec<f64>> {
        proptest::collection::vec(
            prop_oneof![
                (-100_000i64..100_000).prop_map(|m| m as f64 / 100.0),
                (0i64..10_000).prop_map(|m| m as f64 * 1e6),
                (0i64..1_000_000_000).prop_map(|m| m as f64 * 0.1 + 0.2),
                any::<f64>(),
            ],
            1..150,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip(start in any::<i64>(), deltas in deltas(), vals in values()) {
            let samples = samples_from(start, deltas, &vals);
            check(&samples).map_err(TestCaseError::fail)?;
        }

        /// The correction column can restore any bit pattern from any
        /// `m × 10^e`.
        #[test]
        fn any_bit_pattern_fits_the_format(bits in any::<u64>(), m in -100_000i64..100_000, e in MIN_EXP..=MAX_EXP) {
            let mut bytes = vec![0, 1, 0, ((e - MIN_EXP) as u8) << 2, 0x04, 63];
            put_varint(&mut bytes, m);
            let c = bits.wrapping_sub(dec::scale(m, e).to_bits()) as i64;
            bytes.extend_from_slice(&crate::encoding::zigzag(c).to_be_bytes());
            let got = decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(got[0].v.to_bits(), bits);
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&data);
        }

        #[test]
        fn damaged_chunks_never_panic(start in any::<i64>(), deltas in deltas(), vals in values(),
                                      cut in any::<prop::sample::Index>(), flips in proptest::collection::vec(any::<prop::sample::Index>(), 1..4)) {
            let samples = samples_from(start, deltas, &vals);
            if let Some(bytes) = encode(&samples) {
                let c = cut.index(bytes.len());
                prop_assert!(decode(&bytes[..c]).is_err());
                let mut flipped = bytes.clone();
                for f in &flips {
                    let bit = f.index(bytes.len() * 8);
                    flipped[bit / 8] ^= 0x80 >> (bit % 8);
                }
                let _ = decode(&flipped);
            }
        }
    }
}
