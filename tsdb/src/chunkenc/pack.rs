//! The packed decimal chunk (encoding byte 0x13): the decimal values of
//! [`super::dec`] with every integer sequence bit-packed in frames of 64
//! values of one width each.
//!
//! Values are `m × 10^e` plus a correction in units in the last place, as
//! in the other decimal chunks, and the chunk stores the same three
//! zig-zag sequences (timestamp delta-of-deltas, value deltas or
//! delta-of-deltas, corrections). What differs is how a sequence is
//! stored: in frames of [`FRAME`] values, each a width byte `w` followed
//! by the values at exactly `w` bits each — or, when most of a frame's
//! values are zero (a few jittered scrapes, a gauge that moves now and
//! then), by a bitmap of the non-zero ones and only those. Within a frame
//! every stored value sits at a position known in advance, so
//!
//! - the bulk decoder ([`decode_all`]) unpacks a frame with one loop
//!   compiled for its width (loads, shifts and masks at constant offsets,
//!   no value depending on the one before); only the running sums that
//!   turn residuals into timestamps and mantissas are sequential, and a
//!   frame of zeros (a regular scrape interval, a constant) is no work;
//! - the chunk's whole structure (where each frame lies) follows from the
//!   width bytes and bitmaps, so [`PackIter::new`] checks it once and
//!   nothing read afterwards can fail;
//! - the sample-by-sample iterator reads any value directly at its bit
//!   position, with one small cursor per sequence.
//!
//! A frame spends the bits of its largest value on every stored value,
//! where the variable-width codes of [`super::deccol`] spend fewer on small
//! ones, so chunks come out a little larger (on the benchmark datasets,
//! 0.5-6% more bytes per sample). Like the other decimal chunks, this one is
//! written at once from complete samples and cannot be appended to. The
//! byte layout is specified in `docs/format/chunks.md`.

use super::dec::{self, C, MAX_EXP, MIN_EXP, NAMES, T, V};
use crate::encoding::{put_varint, unzigzag, Decbuf};
use model::{Sample, SampleIter, StorageError};

/// Encoding byte of packed decimal chunks (this crate's own; Prometheus
/// cannot read them).
pub const ENCODING_PACK: u8 = 0x13;

/// Values per frame (the last frame of a sequence may hold fewer).
pub const FRAME: usize = 64;


fn corrupt(detail: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("packed decimal chunk: {detail}"))
}

/// Bits needed for the largest of `zs`.
fn width(zs: &[u64]) -> u32 {
    64 - zs.iter().fold(0, |a, &z| a | z).leading_zeros()
}

/// Bytes `len` values at `w` bits take.
fn bits_bytes(len: usize, w: u32) -> usize {
    (len * w as usize).div_ceil(8)
}

/// Flag in a frame's width byte: the frame is sparse (a bitmap of its
/// non-zero values, then only those).
const SPARSE: u8 = 0x80;

/// How a frame of `len` values is stored, chosen by size: its width byte
/// and the bytes after it.
fn frame_choice(frame: &[u64]) -> (u8, usize) {
    let w = width(frame);
    let dense = bits_bytes(frame.len(), w);
    let nonzero = frame.iter().filter(|&&z| z != 0).count();
    let sparse = frame.len().div_ceil(8) + bits_bytes(nonzero, w);
    if w > 0 && sparse < dense {
        (w as u8 | SPARSE, sparse)
    } else {
        (w as u8, dense)
    }
}

/// Bytes the sequence `zs` takes packed, width bytes included.
fn packed_len(zs: &[u64]) -> usize {
    zs.chunks(FRAME).map(|f| 1 + frame_choice(f).1).sum()
}

/// Writes `zs` at `w` bits each into `bytes` (zeroed), from the least
/// significant bit of the first byte on.
fn put_bits(bytes: &mut [u8], zs: impl Iterator<Item = u64>, w: u32) {
    for (i, z) in zs.enumerate() {
        let bit = i * w as usize;
        let wide = u128::from(z) << (bit % 8);
        let touched = (bit % 8 + w as usize).div_ceil(8);
        for (k, b) in bytes[bit / 8..bit / 8 + touched].iter_mut().enumerate() {
            *b |= (wide >> (8 * k)) as u8;
        }
    }
}

/// Appends `zs` packed, frame by frame: the width byte, then either every
/// value (dense) or a bitmap of the non-zero values followed by those
/// (sparse).
fn pack(out: &mut Vec<u8>, zs: &[u64]) {
    for frame in zs.chunks(FRAME) {
        let (wb, bytes) = frame_choice(frame);
        out.push(wb);
        let start = out.len();
        out.resize(start + bytes, 0);
        let body = &mut out[start..];
        let w = u32::from(wb & !SPARSE);
        if wb & SPARSE == 0 {
            put_bits(body, frame.iter().copied(), w);
        } else {
            let (bitmap, values) = body.split_at_mut(frame.len().div_ceil(8));
            for (i, &z) in frame.iter().enumerate() {
                bitmap[i / 8] |= u8::from(z != 0) << (i % 8);
            }
            put_bits(values, frame.iter().copied().filter(|&z| z != 0), w);
        }
    }
}

/// A frame as its width byte describes it.
#[derive(Clone, Copy, Debug)]
struct Frame {
    /// Bits per stored value.
    w: u32,
    /// Which values are stored, for a sparse frame (bit `i`: value `i`);
    /// all ones for a dense one.
    bitmap: u64,
    sparse: bool,
    /// Byte offset of the first stored value.
    body: usize,
    /// Values stored (`len`, or the non-zero ones of a sparse frame).
    stored: usize,
    /// One past the frame's last byte.
    end: usize,
}

impl Frame {
    /// The frame of `len` values (1 ..= [`FRAME`]) whose width byte is at
    /// `pos`. Missing bytes read as zero: [`parse`] checks that they are
    /// there.
    #[inline(always)]
    fn at(data: &[u8], pos: usize, len: usize) -> Frame {
        let wb = data.get(pos).copied().unwrap_or(0);
        let w = u32::from(wb & !SPARSE);
        if wb & SPARSE == 0 {
            return Frame { w, bitmap: u64::MAX, sparse: false, body: pos + 1, stored: len, end: pos + 1 + bits_bytes(len, w) };
        }
        let bm_bytes = len.div_ceil(8);
        let bitmap = match data.get(pos + 1..pos + 9) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_le_bytes(a) & (u64::MAX >> (64 - 8 * bm_bytes))
            }
            None => {
                let mut a = [0u8; 8];
                for (d, s) in a.iter_mut().zip(data.iter().skip(pos + 1).take(bm_bytes)) {
                    *d = *s;
                }
                u64::from_le_bytes(a)
            }
        };
        let stored = bitmap.count_ones() as usize;
        let body = pos + 1 + bm_bytes;
        Frame { w, bitmap, sparse: true, body, stored, end: body + bits_bytes(stored, w) }
    }
}

/// Encodes `samples` (strictly increasing timestamps, at most 65535) as a
/// packed decimal chunk. Returns `None` when the values cannot be
/// expressed (for example non-finite values), in which case XOR should be
/// used.
pub fn encode(samples: &[Sample]) -> Option<Vec<u8>> {
    let p = dec::Parts::analyse(samples, |zs| packed_len(zs) as u64 * 8)?;
    let n = samples.len();
    let mut out = Vec::with_capacity(16 + n * 2);
    dec::put_times_head(&mut out, n, &p)?;
    if n == 0 {
        return Some(out);
    }
    // `e - MIN_EXP` is in 0..=44 (Parts guarantees MIN_EXP <= e <= MAX_EXP).
    out.push((((p.e - MIN_EXP) as u8) << 1) | u8::from(p.dod));
    put_varint(&mut out, p.m0);
    if p.dod {
        put_varint(&mut out, p.d1);
    }
    for zs in [&p.ts, &p.vres, &p.cs] {
        pack(&mut out, zs);
    }
    Some(out)
}

/// The parsed header and where each sequence starts; every frame of every
/// sequence has been checked to lie inside the chunk.
#[derive(Clone, Copy, Debug)]
struct Layout {
    n: u16,
    t0: i64,
    t_delta: i64,
    m0: i64,
    d1: i64,
    e: i32,
    dod: bool,
    /// Byte offset of each sequence's first frame.
    starts: [usize; 3],
    /// Values in each sequence.
    counts: [usize; 3],
    /// Every correction is zero (all its frames have width 0).
    no_corrections: bool,
}

fn parse(data: &[u8]) -> Result<Layout, StorageError> {
    if u32::try_from(data.len()).is_err() {
        return Err(corrupt(format!("chunk of {} bytes", data.len())));
    }
    let mut d = Decbuf::new(data);
    let hdr = |e: crate::encoding::DecodeError| corrupt(format!("header: {e}"));
    let head = dec::read_times_head(&mut d).map_err(corrupt)?;
    let mut l = Layout {
        n: head.n,
        t0: head.t0,
        t_delta: head.t_delta,
        m0: 0,
        d1: 0,
        e: 0,
        dod: false,
        starts: [2; 3],
        counts: [0; 3],
        no_corrections: true,
    };
    let n = head.n;
    if n == 0 {
        return Ok(l);
    }
    let at = d.offset();
    let flags = d.u8().map_err(hdr)?;
    l.e = i32::from(flags >> 1) + MIN_EXP;
    if l.e > MAX_EXP {
        return Err(corrupt(format!("exponent {} out of range at byte {at}", l.e)));
    }
    l.dod = flags & 1 != 0;
    if n < 2 && l.dod {
        return Err(corrupt(format!("delta-of-delta flag on a one-sample chunk at byte {at}")));
    }
    l.m0 = d.varint().map_err(hdr)?;
    if l.dod {
        l.d1 = d.varint().map_err(hdr)?;
    }
    let n = usize::from(n);
    l.counts = [n.saturating_sub(2), if l.dod { n - 2 } else { n - 1 }, n];
    let mut pos = d.position();
    for i in [T, V, C] {
        l.starts[i] = pos;
        let mut left = l.counts[i];
        while left > 0 {
            let len = left.min(FRAME);
            let name = NAMES[i];
            let wb = *data.get(pos).ok_or_else(|| {
                corrupt(format!("{name} frame at byte {pos} is past the end of the chunk ({} bytes)", data.len()))
            })?;
            let f = Frame::at(data, pos, len);
            if f.w > 64 {
                return Err(corrupt(format!("{name} frame width {} over 64 at byte {pos}", f.w)));
            }
            if f.sparse && (f.w == 0 || f.body > data.len() || (len < 64 && f.bitmap >> len != 0)) {
                return Err(corrupt(format!("{name} frame at byte {pos}: bad sparse frame (width byte {wb:#04x})")));
            }
            if i == C && f.w != 0 {
                l.no_corrections = false;
            }
            if f.end > data.len() {
                return Err(corrupt(format!(
                    "{name} frame of {} bytes at byte {pos} runs past the end of the chunk ({} bytes)",
                    f.end - pos,
                    data.len()
                )));
            }
            // The bits after the frame's last value are zero.
            let used = f.stored * f.w as usize % 8;
            if used != 0 && data[f.end - 1] >> used != 0 {
                return Err(corrupt(format!("{name} frame at byte {pos} has padding bits set")));
            }
            pos = f.end;
            left -= len;
        }
    }
    if pos != data.len() {
        return Err(corrupt(format!("{} unused bytes after the last frame at byte {pos}", data.len() - pos)));
    }
    Ok(l)
}

/// The `w`-bit value (`w` at most 64) at bit `bit` of `data`, whose bytes
/// [`parse`] checked to be there; missing bytes would read as zero.
#[inline]
fn read_bits(data: &[u8], bit: usize, w: u32) -> u64 {
    if w == 0 {
        return 0;
    }
    let at = bit / 8;
    let mask = u64::MAX >> (64 - w);
    if let (true, Some(b)) = (w <= 56, data.get(at..at + 8)) {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        return (u64::from_le_bytes(a) >> (bit % 8)) & mask;
    }
    let mut b = [0u8; 16];
    let avail = data.len().saturating_sub(at).min(16);
    b[..avail].copy_from_slice(&data[at..at + avail]);
    ((u128::from_le_bytes(b) >> (bit % 8)) as u64) & mask
}

/// A position in one sequence: the frame being read and the next value's
/// index in it (kept small: chunk iterators are moved around by value).
#[derive(Clone, Copy, Debug)]
struct Cursor {
    /// The current frame's bitmap (all ones when dense).
    bitmap: u64,
    /// Byte offset of the current frame's first stored value.
    body: u32,
    /// Byte offset of the next frame's width byte.
    next: u32,
    /// Values of the sequence in frames not loaded yet.
    left: u16,
    /// Bits per stored value in the current frame.
    w: u8,
    /// Index of the next value in the current frame; [`FRAME`] before the
    /// first value.
    k: u8,
    /// Index of the next stored value in the current frame.
    j: u8,
}

/// Iterates a packed decimal chunk sample by sample; the chunk's structure
/// is checked when the iterator is made, so reading cannot fail.
#[derive(Clone, Debug)]
pub struct PackIter<'a> {
    data: &'a [u8],
    l: Layout,
    read: u16,
    cur: [Cursor; 3],
    t: i64,
    t_delta: i64,
    m: i64,
    m_delta: i64,
}

impl<'a> PackIter<'a> {
    /// An iterator over the chunk bytes `data` (sample count included).
    /// Fails, saying where, when the header or the frames are malformed.
    pub fn new(data: &'a [u8]) -> Result<Self, StorageError> {
        let l = parse(data)?;
        Ok(PackIter {
            data,
            l,
            read: 0,
            cur: [T, V, C].map(|i| Cursor { bitmap: 0, body: 0, next: l.starts[i] as u32, left: l.counts[i] as u16, w: 0, k: FRAME as u8, j: 0 }),
            t: l.t0,
            t_delta: l.t_delta,
            m: l.m0,
            m_delta: l.d1,
        })
    }

    /// Samples the header says the chunk holds.
    pub fn num_samples(&self) -> usize {
        usize::from(self.l.n)
    }

    /// The next value of sequence `i` (the caller knows one is left).
    #[inline]
    fn value(&mut self, i: usize) -> i64 {
        let c = &mut self.cur[i];
        if usize::from(c.k) == FRAME {
            let len = usize::from(c.left).min(FRAME);
            let f = Frame::at(self.data, c.next as usize, len);
            // Offsets fit: `parse` turns away chunks of 4 GiB or more.
            (c.bitmap, c.body, c.next, c.w) = (f.bitmap, f.body as u32, f.end as u32, f.w as u8);
            c.left -= len as u16;
            (c.k, c.j) = (0, 0);
        }
        let present = c.bitmap >> c.k & 1 != 0;
        c.k += 1;
        if !present {
            return 0;
        }
        let z = read_bits(self.data, c.body as usize * 8 + usize::from(c.j) * usize::from(c.w), u32::from(c.w));
        c.j += 1;
        unzigzag(z)
    }

    /// Decodes the samples not read yet into `out`: in bulk for a fresh
    /// iterator, one by one for one already read from.
    pub fn decode_into(mut self, out: &mut Vec<Sample>) {
        if self.read == 0 {
            decode_layout(&self.l, self.data, out);
            return;
        }
        while let Some(s) = self.step() {
            out.push(s);
        }
    }

    #[inline]
    fn step(&mut self) -> Option<Sample> {
        let i = self.read;
        if i >= self.l.n {
            return None;
        }
        if i >= 1 {
            if i >= 2 {
                let dd = self.value(T);
                self.t_delta = self.t_delta.wrapping_add(dd);
            }
            self.t = self.t.wrapping_add(self.t_delta);
            if !self.l.dod {
                let d = self.value(V);
                self.m = self.m.wrapping_add(d);
            } else {
                if i >= 2 {
                    let dd = self.value(V);
                    self.m_delta = self.m_delta.wrapping_add(dd);
                }
                self.m = self.m.wrapping_add(self.m_delta);
            }
        }
        let c = if self.l.no_corrections { 0 } else { self.value(C) };
        self.read += 1;
        let bits = dec::scale(self.m, self.l.e).to_bits().wrapping_add(c as u64);
        Some(Sample { t: self.t, v: f64::from_bits(bits) })
    }
}

impl SampleIter for PackIter<'_> {
    #[inline]
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        Ok(self.step())
    }
}

/// Decodes every sample of a packed decimal chunk into `out`: the same
/// samples as iterating a [`PackIter`], several times faster. On a
/// malformed chunk nothing is appended and the error says where.
pub fn decode_all(data: &[u8], out: &mut Vec<Sample>) -> Result<(), StorageError> {
    PackIter::new(data)?.decode_into(out);
    Ok(())
}

/// Bytes an unpacking kernel for width `w` reads from a frame's first
/// value byte on: a whole frame, plus the width of one 16-byte load.
const fn kernel_bytes(w: usize) -> usize {
    FRAME * w / 8 + 16
}

/// Unpacks a whole frame of `W`-bit values from `src` (at least
/// [`kernel_bytes`]`(W)` bytes; values past the frame's length come out as
/// whatever the bytes after it hold). Eight values take exactly `W` bytes,
/// so each group of eight starts on a byte and the offsets and shifts
/// inside a group are constants.
#[inline(always)]
fn unpack<const W: usize>(src: &[u8], out: &mut [u64; FRAME]) {
    if W == 0 {
        *out = [0; FRAME];
        return;
    }
    let mask = u64::MAX >> (64 - W);
    for (g, o) in out.chunks_exact_mut(8).enumerate() {
        let group = &src[g * W..g * W + W + 16];
        for (k, x) in o.iter_mut().enumerate() {
            let bit = k * W;
            let at = bit / 8;
            *x = if W <= 56 {
                let mut b = [0u8; 8];
                b.copy_from_slice(&group[at..at + 8]);
                (u64::from_le_bytes(b) >> (bit % 8)) & mask
            } else {
                let mut b = [0u8; 16];
                b.copy_from_slice(&group[at..at + 16]);
                ((u128::from_le_bytes(b) >> (bit % 8)) as u64) & mask
            };
        }
    }
}

type Kernel = fn(&[u8], &mut [u64; FRAME]);

macro_rules! kernels {
    ($($w:literal)*) => { [$(unpack::<$w> as Kernel),*] };
}

/// The unpacking kernel of each width.
static KERNELS: [Kernel; 65] = kernels!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
    33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64
);

/// Room to unpack a frame: its values, the stored values of a sparse
/// frame, and a zero-padded copy of a frame at the end of the chunk.
struct FrameBuf {
    vals: [u64; FRAME],
    dense: [u64; FRAME],
    pad: [u8; kernel_bytes(64)],
}

impl FrameBuf {
    const fn new() -> FrameBuf {
        FrameBuf { vals: [0; FRAME], dense: [0; FRAME], pad: [0; kernel_bytes(64)] }
    }
}

thread_local! {
    /// The frame buffer of a thread's bulk decoder (1.6 KiB that would
    /// otherwise be zeroed for every chunk).
    static FRAME_BUF: std::cell::RefCell<FrameBuf> = const { std::cell::RefCell::new(FrameBuf::new()) };
}

/// Calls `f` with each frame of the sequence starting at byte `start`
/// (`count` values, structure checked by [`parse`]): the index of its first
/// value, its length, and its values unpacked (`None` when all are zero).
#[inline(always)]
fn for_each_frame(data: &[u8], start: usize, count: usize, buf: &mut FrameBuf, mut f: impl FnMut(usize, usize, Option<&[u64]>)) {
    let FrameBuf { vals, dense, pad } = buf;
    let mut pos = start;
    let mut done = 0;
    while done < count {
        let len = (count - done).min(FRAME);
        let fr = Frame::at(data, pos, len);
        let w = (fr.w as usize).min(64);
        if w == 0 {
            f(done, len, None);
            pos = fr.end;
            done += len;
            continue;
        }
        let out = if fr.sparse { &mut *dense } else { &mut *vals };
        let need = kernel_bytes(w);
        if data.len() >= fr.body + need {
            KERNELS[w](&data[fr.body..], out);
        } else {
            // Near the end of the chunk: unpack from a zero-padded copy.
            let avail = data.len().saturating_sub(fr.body).min(need);
            pad[..avail].copy_from_slice(&data[fr.body..fr.body + avail]);
            pad[avail..need].fill(0);
            KERNELS[w](&pad[..], out);
        }
        if fr.sparse {
            // Spread the stored values over the bitmap's positions.
            *vals = [0; FRAME];
            let mut bm = fr.bitmap;
            for &z in dense.iter().take(fr.stored) {
                vals[bm.trailing_zeros() as usize & (FRAME - 1)] = z;
                bm &= bm.wrapping_sub(1);
            }
        }
        f(done, len, Some(&vals[..len]));
        pos = fr.end;
        done += len;
    }
}

/// The bulk decoder behind [`decode_all`]: one pass per sequence over the
/// appended samples (timestamps, then scaled mantissas, then corrections).
fn decode_layout(l: &Layout, data: &[u8], out: &mut Vec<Sample>) {
    FRAME_BUF.with(|shared| match shared.try_borrow_mut() {
        Ok(mut buf) => decode_with(l, data, out, &mut buf),
        Err(_) => decode_with(l, data, out, &mut FrameBuf::new()),
    })
}

fn decode_with(l: &Layout, data: &[u8], out: &mut Vec<Sample>, buf: &mut FrameBuf) {
    let n = usize::from(l.n);
    if n == 0 {
        return;
    }
    let base = out.len();
    out.reserve(n);
    // Timestamps first, appending the samples (mantissas go into the
    // values' bits next, scaled last).
    let (mut t, mut d) = (l.t0.wrapping_add(l.t_delta), l.t_delta);
    out.push(Sample { t: l.t0, v: 0.0 });
    if n >= 2 {
        out.push(Sample { t, v: 0.0 });
    }
    for_each_frame(data, l.starts[T], l.counts[T], buf, |_, len, zs| match zs {
        None => out.extend((0..len).map(|_| {
            t = t.wrapping_add(d);
            Sample { t, v: 0.0 }
        })),
        Some(zs) => out.extend(zs.iter().map(|&z| {
            d = d.wrapping_add(unzigzag(z));
            t = t.wrapping_add(d);
            Sample { t, v: 0.0 }
        })),
    });
    let s = &mut out[base..];
    // `dec::scale`, one loop per sign of the exponent (dividing by an exact
    // power of ten is what makes decimal values come out exactly).
    let p = dec::POW10[l.e.unsigned_abs() as usize];
    if l.e >= 0 {
        decode_values(l, data, buf, s, |m| m as f64 * p);
    } else {
        decode_values(l, data, buf, s, |m| m as f64 / p);
    }
    if !l.no_corrections {
        for_each_frame(data, l.starts[C], l.counts[C], buf, |at, _, zs| {
            for (x, &c) in s[at..].iter_mut().zip(zs.unwrap_or_default()) {
                x.v = f64::from_bits(x.v.to_bits().wrapping_add(unzigzag(c) as u64));
            }
        });
    }
}

/// The values of the samples `s` (timestamps already set): mantissas
/// from the value sequence, scaled by `scale`.
#[inline(always)]
fn decode_values(l: &Layout, data: &[u8], buf: &mut FrameBuf, s: &mut [Sample], scale: impl Fn(i64) -> f64) {
    let mut m = l.m0;
    s[0].v = scale(m);
    if l.dod {
        let mut dm = l.d1;
        m = m.wrapping_add(dm);
        s[1].v = scale(m);
        for_each_frame(data, l.starts[V], l.counts[V], buf, |at, len, zs| {
            let xs = s[2 + at..2 + at + len].iter_mut();
            match zs {
                None => xs.for_each(|x| {
                    m = m.wrapping_add(dm);
                    x.v = scale(m);
                }),
                Some(zs) => xs.zip(zs).for_each(|(x, &z)| {
                    dm = dm.wrapping_add(unzigzag(z));
                    m = m.wrapping_add(dm);
                    x.v = scale(m);
                }),
            }
        });
    } else {
        for_each_frame(data, l.starts[V], l.counts[V], buf, |at, len, zs| {
            let xs = s[1 + at..1 + at + len].iter_mut();
            match zs {
                None => {
                    let v = scale(m);
                    xs.for_each(|x| x.v = v);
                }
                Some(zs) => xs.zip(zs).for_each(|(x, &z)| {
                    m = m.wrapping_add(unzigzag(z));
                    x.v = scale(m);
                }),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes `bytes` sample by sample and in bulk (into a vector holding
    /// an earlier sample), checking that both agree.
    fn decode(bytes: &[u8]) -> Result<Vec<Sample>, StorageError> {
        let mut careful = Vec::new();
        let mut it = PackIter::new(bytes)?;
        while let Some(s) = it.next()? {
            careful.push(s);
        }
        let mut bulk = vec![Sample::new(-1, 0.5)];
        decode_all(bytes, &mut bulk)?;
        assert_eq!(bulk.len(), careful.len() + 1);
        assert!(careful.iter().zip(&bulk[1..]).all(|(a, b)| a.bit_eq(b)));
        // An iterator read partly finishes one sample at a time.
        let mut it = PackIter::new(bytes)?;
        let mut rest = Vec::new();
        if let Some(first) = it.next()? {
            rest.push(first);
            it.decode_into(&mut rest);
            assert!(rest.iter().zip(&careful).all(|(a, b)| a.bit_eq(b)));
            assert_eq!(rest.len(), careful.len());
        }
        Ok(careful)
    }

    fn round_trip(samples: &[Sample]) -> Result<Vec<u8>, StorageError> {
        let bytes = encode(samples).ok_or_else(|| corrupt("encode refused"))?;
        let got = decode(&bytes)?;
        assert_eq!(got.len(), samples.len());
        for (a, b) in got.iter().zip(samples) {
            assert!(a.bit_eq(b), "{a:?} != {b:?}");
        }
        Ok(bytes)
    }

    #[test]
    fn golden_layout() -> Result<(), StorageError> {
        // The example of docs/format/chunks.md.
        let samples = [
            Sample::new(1000, 1.5),
            Sample::new(2000, 1.7),
            Sample::new(3000, 1.8),
            Sample::new(4001, f64::from_bits(2.4f64.to_bits() + 1)),
        ];
        let bytes = round_trip(&samples)?;
        let want = [
            0x00, 0x04, // n = 4
            0xd0, 0x0f, // t0 = 1000
            0xe8, 0x07, // t1 - t0 = 1000
            0x2b, // e = -1 (21 << 1), delta-of-delta mode
            0x1e, // m0 = 15
            0x04, // d1 = 2 (m1 - m0)
            0x02, 0x08, // t: width 2, dods 0, 1 (zig-zag 0, 2)
            0x04, 0xa1, // v: width 4, dods -1, 5 (zig-zag 1, 10)
            0x02, 0x80, // c: width 2, corrections 0, 0, 0, 1 (zig-zag 2)
        ];
        assert_eq!(bytes, want);
        Ok(())
    }

    #[test]
    fn edge_cases_round_trip() -> Result<(), StorageError> {
        round_trip(&[]).map_err(|e| corrupt(format!("empty: {e}")))?;
        round_trip(&[Sample::new(-5, 0.0)]).map_err(|e| corrupt(format!("one: {e}")))?;
        round_trip(&[Sample::new(i64::MIN, -0.25), Sample::new(i64::MAX, 2.5)]).map_err(|e| corrupt(format!("two: {e}")))?;
        // Widths over 56 bits (the kernels' 16-byte loads), and frame
        // boundaries at 64 and 65 values.
        for n in [3, 63, 64, 65, 66, 128, 129, 300] {
            let wide: Vec<Sample> =
                (0..n).map(|i| Sample::new(i * (1 << 40) + (i * i % 7) * (1 << 57), ((i * 7919) % 13) as f64 * 1e15)).collect();
            round_trip(&wide).map_err(|e| corrupt(format!("wide {n}: {e}")))?;
            let regular: Vec<Sample> = (0..n).map(|i| Sample::new(1_700_000_000_000 + 15_000 * i, 42.0)).collect();
            let bytes = round_trip(&regular)?;
            // A regular scrape of a constant: a few header bytes and one
            // zero width byte per frame.
            assert!(bytes.len() <= 16 + 3 * (n as usize).div_ceil(FRAME), "{n}: {}", bytes.len());
        }
        Ok(())
    }

    #[test]
    fn sparse_frames() -> Result<(), StorageError> {
        // A gauge that changes every fourth scrape, scraped with a little
        // jitter every tenth time: both sequences are mostly zeros.
        let samples: Vec<Sample> =
            (0..200).map(|i| Sample::new(15_000 * i + 3 * i64::from(i % 10 == 0), ((i / 4) * 4096 * (i % 7)) as f64)).collect();
        let bytes = round_trip(&samples)?;
        let l = parse(&bytes)?;
        for i in [T, V] {
            assert!(Frame::at(&bytes, l.starts[i], FRAME).sparse, "{}", NAMES[i]);
        }
        // Smaller than with dense frames only.
        let dense = |zs: &[u64]| zs.chunks(FRAME).map(|f| 1 + bits_bytes(f.len(), width(f))).sum::<usize>();
        let p = dec::Parts::analyse(&samples, |zs| dense(zs) as u64 * 8).ok_or_else(|| corrupt("refused"))?;
        let sparse = bytes.len() - l.starts[T];
        assert!(sparse < dense(&p.ts) + dense(&p.vres) + dense(&p.cs), "{sparse}");
        // A sparse frame must have a width, and no bits past its values.
        let mut bad = bytes.clone();
        bad[l.starts[T]] = SPARSE;
        assert!(decode(&bad).is_err());
        let short: Vec<Sample> = samples[..20].to_vec();
        let mut bad = round_trip(&short)?;
        let l = parse(&bad)?;
        assert!(Frame::at(&bad, l.starts[V], 19).sparse);
        bad[l.starts[V] + 3] |= 0x80;
        let e = decode(&bad).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("bad sparse frame"), "{e}");
        Ok(())
    }

    #[test]
    fn malformed_chunks_are_reported() {
        let samples: Vec<Sample> = (0..70).map(|i| Sample::new(1000 * i + i % 3, (i * i) as f64 / 4.0)).collect();
        let bytes = encode(&samples).unwrap_or_default();
        assert!(decode(&bytes).is_ok());
        let err = |b: &[u8]| decode(b).err().map(|e| e.to_string()).unwrap_or_default();
        for cut in [1, 2, 5] {
            let e = err(&bytes[..bytes.len() - cut]);
            assert!(e.contains("past the end of the chunk"), "{e}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(err(&longer).contains("unused bytes"), "{}", err(&longer));
        assert!(err(&[0, 0, 1]).contains("empty chunk"));
        assert!(err(&[0]).contains("header"));
        // Width byte of the first timestamp frame.
        let hdr = 2 + 2 + 2 + 1 + 1;
        let mut wide = bytes.clone();
        wide[hdr] = 65;
        assert!(err(&wide).contains("over 64"), "{}", err(&wide));
        // The one-sample chunk with the delta-of-delta flag.
        assert!(err(&[0, 1, 0, 0x2d, 0, 0]).contains("one-sample"));
    }

    fn arb_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-100_000i64..100_000).prop_map(|m| m as f64 / 100.0),
            (0u64..1 << 40).prop_map(|m| m as f64 * 4096.0),
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            Just(f64::from_bits(model::STALE_NAN_BITS)),
        ]
    }

    /// Samples with regular and irregular intervals, and values that
    /// often repeat (sparse frames) or not.
    fn arb_samples() -> impl Strategy<Value = Vec<Sample>> {
        let dt = prop_oneof![3 => Just(15_000i64), 1 => 1i64..1 << 20];
        let v = prop_oneof![2 => Just(None), 3 => arb_value().prop_map(Some)];
        (any::<i64>(), prop::collection::vec((dt, v), 0..300)).prop_map(|(t0, steps)| {
            let (mut t, mut last) = (t0 >> 2, 0.0);
            steps
                .into_iter()
                .map(|(dt, v)| {
                    t = t.saturating_add(dt);
                    last = v.unwrap_or(last);
                    Sample::new(t, last)
                })
                .collect::<Vec<_>>()
        })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(mut samples in arb_samples(), decimal in any::<bool>()) {
            samples.dedup_by_key(|s| s.t);
            if decimal {
                samples.iter_mut().for_each(|s| if !s.v.is_finite() { s.v = 1.25 });
            }
            match encode(&samples) {
                Some(bytes) => {
                    let got = decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(got.len(), samples.len());
                    prop_assert!(got.iter().zip(&samples).all(|(a, b)| a.bit_eq(b)));
                }
                // Refused exactly when the other decimal encodings refuse.
                None => prop_assert!(dec::encode(&samples).is_none()),
            }
        }

        #[test]
        fn damaged_chunks_never_panic(samples in arb_samples(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
            let Some(mut bytes) = encode(&samples) else { return Ok(()) };
            for (at, x) in flips {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] ^= x;
                }
            }
            // Whatever happens, careful and bulk decoding agree (checked
            // inside `decode`), and a truncated chunk fails or reads fewer
            // samples than its header claims never.
            let _ = decode(&bytes);
            let cut = cut % (bytes.len() + 1);
            let _ = decode(&bytes[..cut]);
        }
    }
}
