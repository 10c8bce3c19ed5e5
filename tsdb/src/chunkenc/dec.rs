//! The decimal chunk: a compact encoding for complete, immutable chunks
//! whose values are decimal numbers (as nearly all exposition-format
//! metrics are).
//!
//! Each value is written as `m × 10^e` for one exponent `e` per chunk and
//! an integer `m`, plus an optional correction in units in the last place
//! that restores the exact bits (`bits(v) = bits(m × 10^e) + c`, wrapping),
//! so every `f64` round-trips exactly — NaN payloads, -0.0 and infinities
//! included — though such values are cheaper as XOR, which the block
//! writer then picks. Integer sequences (timestamp delta-of-deltas, value
//! deltas or delta-of-deltas, corrections) are zig-zag encoded with a
//! per-chunk bit-width code chosen from the sequence's histogram, so a
//! regular scrape interval or a constant series costs no bits per sample.
//!
//! Unlike [`super::XorChunk`] this chunk is encoded at once from all its
//! samples (block writing and compaction); it cannot be appended to.
//! The byte layout is specified in `docs/format/chunks.md`.

use super::bstream::{BitEof, BitReader, BitWriter};
use super::deccol::{BitSource, Bits};
use crate::encoding::{unzigzag, zigzag, MAX_VARINT_LEN};
use model::{Sample, SampleIter, StorageError};

/// Powers of ten that are exact in `f64`.
pub(super) const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
pub(super) const MAX_EXP: i32 = 22;
pub(super) const MIN_EXP: i32 = -22;
/// Largest |m| accepted (beyond it, `m as f64` stops being exact).
const MAX_MANTISSA: f64 = 9_007_199_254_740_992.0; // 2^53

/// The three sequences of the byte-aligned decimal layouts (0x12, 0x13), in
/// storage order: their names for error messages, and their indices.
pub(super) const NAMES: [&str; 3] = ["timestamp", "value", "correction"];
pub(super) const T: usize = 0;
pub(super) const V: usize = 1;
pub(super) const C: usize = 2;

/// Writes the [`TimesHead`] of `n` samples decomposed as `p`;
/// `None` (nothing written) for more than 65535 samples.
pub(super) fn put_times_head(out: &mut Vec<u8>, n: usize, p: &Parts) -> Option<()> {
    out.extend_from_slice(&u16::try_from(n).ok()?.to_be_bytes());
    if n >= 1 {
        crate::encoding::put_varint(out, p.t0);
    }
    if n >= 2 {
        crate::encoding::put_uvarint(out, p.t_delta);
    }
    Some(())
}

/// The start of the byte-aligned decimal layouts (0x12, 0x13): the sample
/// count and, for a non-empty chunk, the first timestamp and the first
/// delta (wrapping, so any increasing pair fits; 0 for one sample).
#[derive(Clone, Copy, Debug)]
pub(super) struct TimesHead {
    pub(super) n: u16,
    pub(super) t0: i64,
    pub(super) t_delta: i64,
}

/// Reads a [`TimesHead`]; an empty chunk must end after its count. The
/// error says what is wrong, for the caller to name its layout.
pub(super) fn read_times_head(d: &mut crate::encoding::Decbuf<'_>) -> Result<TimesHead, String> {
    let hdr = |e: crate::encoding::DecodeError| format!("header: {e}");
    let nb = d.bytes(2).map_err(hdr)?;
    let mut h = TimesHead { n: u16::from_be_bytes([nb[0], nb[1]]), t0: 0, t_delta: 0 };
    if h.n == 0 {
        if !d.is_empty() {
            return Err(format!("{} bytes after the header of an empty chunk", d.remaining()));
        }
        return Ok(h);
    }
    h.t0 = d.varint().map_err(hdr)?;
    if h.n >= 2 {
        h.t_delta = d.uvarint().map_err(hdr)? as i64;
    }
    Ok(h)
}

/// `m × 10^e` as the format defines it (`e` in `MIN_EXP..=MAX_EXP`).
#[inline]
pub(super) fn scale(m: i64, e: i32) -> f64 {
    if e >= 0 {
        m as f64 * POW10[e as usize]
    } else {
        m as f64 / POW10[(-e) as usize]
    }
}

/// `m` such that `m × 10^e` is nearest to `v`, if it is in range.
///
/// Rounds half away from zero by adding ±0.5 and truncating (`f64::round`
/// is a libm call); any `m` would be correct, since the correction makes up
/// the difference, so only grid values need the exact nearest integer, and
/// they are never near a half.
#[inline]
fn mantissa(v: f64, e: i32) -> Option<i64> {
    let q = if e >= 0 { v / POW10[e as usize] } else { v * POW10[(-e) as usize] };
    (q.abs() < MAX_MANTISSA).then(|| (q + 0.5f64.copysign(q)) as i64)
}

#[inline]
fn on_grid(v: f64, e: i32) -> bool {
    mantissa(v, e).is_some_and(|m| scale(m, e).to_bits() == v.to_bits())
}

/// The finest exponent worth trying for `v`: below it `|m|` would exceed
/// 2^50 (a margin under 2^53 so that computing `m` by rounding is exact).
fn finest_exp(v: f64) -> i32 {
    let e = (v.abs().log10() - 15.05).ceil();
    if e.is_nan() {
        MIN_EXP
    } else {
        (e as i32).clamp(MIN_EXP, MAX_EXP)
    }
}

/// The coarsest exponent at which `v` is exactly `m × 10^e`, searching
/// from `hint`; `None` when no exponent in range works.
///
/// Being on the grid is monotone: if `v = m × 10^e` then `v = (10m) ×
/// 10^(e-1)`, both being the correctly rounded value of the same real
/// number. So one test at the finest usable exponent rules out values off
/// every grid, and the search walks from the hint in one direction.
fn coarsest_exact(v: f64, hint: i32) -> Option<i32> {
    let lo = finest_exp(v);
    let mut e = hint.clamp(lo, MAX_EXP);
    if on_grid(v, e) {
        while e < MAX_EXP && on_grid(v, e + 1) {
            e += 1;
        }
        return Some(e);
    }
    if e == lo || !on_grid(v, lo) {
        return None;
    }
    while e > lo + 1 {
        e -= 1;
        if on_grid(v, e) {
            return Some(e);
        }
    }
    Some(lo)
}

/// For a value off every decimal grid (a float sum, say), the coarsest
/// exponent within a small correction.
fn coarsest_near(v: f64, start: i32) -> Option<i32> {
    let lo = finest_exp(v);
    let mut e = start.clamp(lo, MAX_EXP);
    loop {
        if let Some(m) = mantissa(v, e) {
            let c = (v.to_bits() as i64).wrapping_sub(scale(m, e).to_bits() as i64);
            if c.unsigned_abs() <= 1 << 12 {
                return Some(e);
            }
        }
        if e <= lo {
            return None;
        }
        e -= 1;
    }
}

/// How one integer sequence is coded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Code {
    /// Every value is zero: no bits.
    Zero,
    /// Each value in `w` bits.
    Fixed(u32),
    /// `0` + `w1` bits or `1` + `w2` bits.
    Two(u32, u32),
    /// `0` for zero, `10` + `w1` bits, `11` + `w2` bits.
    Three(u32, u32),
}

fn bitlen(z: u64) -> u32 {
    64 - z.leading_zeros()
}

impl Code {
    /// The cheapest code for `zs` and its cost in bits (header included).
    fn choose(zs: &[u64]) -> (Code, u64) {
        let mut hist = [0u64; 65];
        for &z in zs {
            hist[bitlen(z) as usize] += 1;
        }
        let wmax = (0..=64).rev().find(|&b| hist[b] > 0).unwrap_or(0) as u32;
        if wmax == 0 {
            return (Code::Zero, 2);
        }
        let n = zs.len() as u64;
        let mut best = (Code::Fixed(wmax), 8 + n * u64::from(wmax));
        // cum[b] = residuals with bit length <= b.
        let mut cum = [0u64; 65];
        let mut acc = 0;
        for b in 0..=64 {
            acc += hist[b];
            cum[b] = acc;
        }
        for w1 in 1..wmax {
            let small = cum[w1 as usize];
            let large = n - small;
            let two = 14 + small * u64::from(1 + w1) + large * u64::from(1 + wmax);
            if two < best.1 {
                best = (Code::Two(w1, wmax), two);
            }
            let zeros = hist[0];
            let three =
                14 + zeros + (small - zeros) * u64::from(2 + w1) + large * u64::from(2 + wmax);
            if three < best.1 {
                best = (Code::Three(w1, wmax), three);
            }
        }
        (best.0, best.1)
    }

    fn write_header(self, w: &mut BitWriter) {
        match self {
            Code::Zero => w.write_bits(0, 2),
            Code::Fixed(a) => {
                w.write_bits(1, 2);
                w.write_bits(u64::from(a - 1), 6);
            }
            Code::Two(a, b) | Code::Three(a, b) => {
                w.write_bits(if matches!(self, Code::Two(..)) { 2 } else { 3 }, 2);
                w.write_bits(u64::from(a - 1), 6);
                w.write_bits(u64::from(b - 1), 6);
            }
        }
    }

    fn read_header(r: &mut BitReader<'_>) -> Result<Code, BitEof> {
        Ok(match r.read_bits(2)? {
            0 => Code::Zero,
            1 => Code::Fixed(r.read_bits(6)? as u32 + 1),
            k => {
                let a = r.read_bits(6)? as u32 + 1;
                let b = r.read_bits(6)? as u32 + 1;
                if k == 2 {
                    Code::Two(a, b)
                } else {
                    Code::Three(a, b)
                }
            }
        })
    }

    #[inline]
    pub(super) fn write(self, w: &mut BitWriter, z: u64) {
        // Prefix and value go out in one call when they fit in 64 bits.
        match self {
            Code::Zero => {}
            Code::Fixed(a) => w.write_bits(z, a),
            Code::Two(a, b) => {
                let (sel, width) = if bitlen(z) <= a { (0, a) } else { (1, b) };
                if width < 64 {
                    w.write_bits((sel << width) | z, width + 1);
                } else {
                    w.write_bit(sel == 1);
                    w.write_bits(z, width);
                }
            }
            Code::Three(a, b) => {
                if z == 0 {
                    w.write_bit(false);
                    return;
                }
                let (sel, width) = if bitlen(z) <= a { (0b10, a) } else { (0b11, b) };
                if width < 63 {
                    w.write_bits((sel << width) | z, width + 2);
                } else {
                    w.write_bits(sel, 2);
                    w.write_bits(z, width);
                }
            }
        }
    }

    #[inline(always)]
    fn read(self, r: &mut BitReader<'_>) -> Result<u64, BitEof> {
        match self {
            Code::Zero => Ok(0),
            Code::Fixed(a) => r.read_bits(a),
            Code::Two(a, b) => {
                if r.read_bit()? {
                    r.read_bits(b)
                } else {
                    r.read_bits(a)
                }
            }
            Code::Three(a, b) => {
                if !r.read_bit()? {
                    Ok(0)
                } else if r.read_bit()? {
                    r.read_bits(b)
                } else {
                    r.read_bits(a)
                }
            }
        }
    }
}

fn write_varint_bits(w: &mut BitWriter, v: u64) {
    let mut buf = Vec::with_capacity(MAX_VARINT_LEN);
    crate::encoding::put_uvarint(&mut buf, v);
    for b in buf {
        w.write_bits(u64::from(b), 8);
    }
}

fn read_varint_bits(r: &mut BitReader<'_>) -> Result<u64, &'static str> {
    let mut x = 0u64;
    let mut shift = 0;
    for i in 0..MAX_VARINT_LEN {
        let b = r.read_bits(8).map_err(|_| "unexpected end of data reading varint")?;
        if b < 0x80 {
            if i == MAX_VARINT_LEN - 1 && b > 1 {
                break;
            }
            return Ok(x | (b << shift));
        }
        x |= (b & 0x7f) << shift;
        shift += 7;
    }
    Err("varint overflow")
}

/// A decimal chunk's content before layout: the exponent, the first
/// sample, and the three residual sequences with the code chosen for each.
/// Shared by the interleaved (0x10) and columnar (0x12) layouts, which
/// therefore cost the same bits per sample.
pub(super) struct Parts {
    /// The chunk's exponent, in `MIN_EXP..=MAX_EXP`.
    pub(super) e: i32,
    pub(super) t0: i64,
    /// `t1 - t0` (wrapping; 0 for fewer than two samples).
    pub(super) t_delta: u64,
    pub(super) m0: i64,
    /// Value residuals are delta-of-deltas (else deltas) of `m`.
    pub(super) dod: bool,
    /// In delta-of-delta mode, the first delta `m1 - m0` (else 0).
    pub(super) d1: i64,
    /// Zig-zag timestamp delta-of-deltas, from the third sample on.
    pub(super) ts: Vec<u64>,
    /// Zig-zag value residuals: from the second sample on (deltas) or the
    /// third (delta-of-deltas).
    pub(super) vres: Vec<u64>,
    /// Zig-zag corrections, one per sample.
    pub(super) cs: Vec<u64>,
    pub(super) code_t: Code,
    pub(super) code_v: Code,
    pub(super) code_c: Code,
}

impl Parts {
    /// Analyses `samples` (strictly increasing timestamps, at most 65535)
    /// with the codes of this encoding; `None` when the values cannot be
    /// expressed (non-finite values).
    pub(super) fn new(samples: &[Sample]) -> Option<Parts> {
        let mut p = Parts::analyse(samples, |zs| Code::choose(zs).1)?;
        p.code_t = Code::choose(&p.ts).0;
        p.code_v = Code::choose(&p.vres).0;
        p.code_c = Code::choose(&p.cs).0;
        Some(p)
    }

    /// The decimal decomposition of `samples`, choosing between value
    /// deltas and delta-of-deltas by `cost` (bits a sequence takes); the
    /// codes are left `Zero` for the caller to choose.
    pub(super) fn analyse(samples: &[Sample], cost: impl Fn(&[u64]) -> u64) -> Option<Parts> {
        let n = samples.len();
        if n > super::xor::MAX_SAMPLES {
            return None;
        }
        // Choose the exponent: the finest needed by any sample. Grid
        // membership is monotone, so a sample on the grid of the current
        // candidate needs no search: one test per sample in the common case.
        let mut e_min: Option<i32> = None;
        let mut off_grid: Vec<usize> = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            let v = s.v;
            if !v.is_finite() {
                return None;
            }
            if v == 0.0 && v.is_sign_positive() {
                continue;
            }
            match e_min {
                Some(e) if on_grid(v, e) => {}
                Some(e) => match coarsest_exact(v, e) {
                    Some(f) => e_min = Some(f.min(e)),
                    None => off_grid.push(i),
                },
                None => match coarsest_exact(v, 0) {
                    Some(f) => e_min = Some(f),
                    None => off_grid.push(i),
                },
            }
        }
        // Values off every grid get the exponent of their neighbours when that
        // leaves a small correction (float sums of decimals).
        let mut near_hint = e_min.unwrap_or(0).min(0);
        for &i in &off_grid {
            let e = coarsest_near(samples[i].v, near_hint)?;
            near_hint = e;
            e_min = Some(e_min.map_or(e, |m: i32| m.min(e)));
        }
        let e = e_min.unwrap_or(0);

        let mut ms = Vec::with_capacity(n);
        let mut cs = Vec::with_capacity(n);
        for s in samples {
            let m = mantissa(s.v, e)?;
            ms.push(m);
            cs.push(zigzag((s.v.to_bits() as i64).wrapping_sub(scale(m, e).to_bits() as i64)));
        }
        // Timestamp delta-of-deltas from the third sample on.
        let mut ts = Vec::with_capacity(n.saturating_sub(2));
        for i in 2..n {
            let d1 = samples[i].t.wrapping_sub(samples[i - 1].t);
            let d0 = samples[i - 1].t.wrapping_sub(samples[i - 2].t);
            ts.push(zigzag(d1.wrapping_sub(d0)));
        }
        // Value residuals: deltas (from the second sample) or delta-of-deltas
        // (from the third, with the first delta in the header).
        let deltas: Vec<i64> = ms.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        let vd: Vec<u64> = deltas.iter().map(|&d| zigzag(d)).collect();
        let vdd: Vec<u64> = deltas.windows(2).map(|w| zigzag(w[1].wrapping_sub(w[0]))).collect();
        let dod = n >= 2 && cost(&vdd) + 8 * crate::encoding::uvarint_len(vd[0]) as u64 <= cost(&vd);
        let vres = if dod { vdd } else { vd };
        Some(Parts {
            e,
            t0: samples.first().map_or(0, |s| s.t),
            t_delta: if n >= 2 { samples[1].t.wrapping_sub(samples[0].t) as u64 } else { 0 },
            m0: ms.first().copied().unwrap_or(0),
            dod,
            d1: if dod { deltas[0] } else { 0 },
            ts,
            vres,
            cs,
            code_t: Code::Zero,
            code_v: Code::Zero,
            code_c: Code::Zero,
        })
    }
}

/// Encodes `samples` (strictly increasing timestamps, at most 65535) as a
/// decimal chunk. Returns `None` when the values cannot be expressed (for
/// example non-finite values), in which case XOR should be used.
pub fn encode(samples: &[Sample]) -> Option<Vec<u8>> {
    let p = Parts::new(samples)?;
    let n = samples.len();
    let mut w = BitWriter::with_capacity(64 + n);
    w.write_aligned(&(n as u16).to_be_bytes());
    if n == 0 {
        return Some(w.into_bytes());
    }
    write_varint_bits(&mut w, zigzag(p.t0));
    w.write_bits((p.e - MIN_EXP) as u64, 6);
    write_varint_bits(&mut w, zigzag(p.m0));
    p.code_c.write_header(&mut w);
    if n >= 2 {
        write_varint_bits(&mut w, p.t_delta);
        w.write_bit(p.dod);
        if p.dod {
            write_varint_bits(&mut w, zigzag(p.d1));
        }
        p.code_v.write_header(&mut w);
    }
    if n >= 3 {
        p.code_t.write_header(&mut w);
    }
    p.code_c.write(&mut w, p.cs[0]);
    for i in 1..n {
        if i >= 2 {
            p.code_t.write(&mut w, p.ts[i - 2]);
        }
        if !p.dod {
            p.code_v.write(&mut w, p.vres[i - 1]);
        } else if i >= 2 {
            p.code_v.write(&mut w, p.vres[i - 2]);
        }
        p.code_c.write(&mut w, p.cs[i]);
    }
    Some(w.into_bytes())
}

/// Iterates a decimal chunk; corrupt bytes give [`StorageError::Corrupt`].
#[derive(Clone, Debug)]
pub struct DecIter<'a> {
    r: BitReader<'a>,
    num: u16,
    read: u16,
    t: i64,
    t_delta: i64,
    m: i64,
    m_delta: i64,
    e: i32,
    dod: bool,
    code_t: Code,
    code_v: Code,
    code_c: Code,
    failed: bool,
}

impl<'a> DecIter<'a> {
    /// An iterator over the chunk bytes `data` (header included).
    pub fn new(data: &'a [u8]) -> Self {
        let (num, body, failed) = super::split_header(data);
        DecIter {
            r: BitReader::new(body),
            num,
            read: 0,
            t: 0,
            t_delta: 0,
            m: 0,
            m_delta: 0,
            e: 0,
            dod: false,
            code_t: Code::Zero,
            code_v: Code::Zero,
            code_c: Code::Zero,
            failed,
        }
    }

    /// Samples the header says the chunk holds.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    fn err(&self, what: &str) -> StorageError {
        StorageError::Corrupt(format!(
            "decimal chunk: {what} at bit {}",
            self.r.bit_position() + 16
        ))
    }

    fn header(&mut self) -> Result<(), StorageError> {
        let eof = |s: &Self| s.err("unexpected end of data in header");
        self.t = unzigzag(read_varint_bits(&mut self.r).map_err(|m| self.err(m))?);
        let e = self.r.read_bits(6).map_err(|_| eof(self))? as i32 + MIN_EXP;
        if e > MAX_EXP {
            return Err(self.err(&format!("exponent {e} out of range")));
        }
        self.e = e;
        self.m = unzigzag(read_varint_bits(&mut self.r).map_err(|m| self.err(m))?);
        self.code_c = Code::read_header(&mut self.r).map_err(|_| eof(self))?;
        if self.num >= 2 {
            self.t_delta = read_varint_bits(&mut self.r).map_err(|m| self.err(m))? as i64;
            self.dod = self.r.read_bit().map_err(|_| eof(self))?;
            if self.dod {
                self.m_delta = unzigzag(read_varint_bits(&mut self.r).map_err(|m| self.err(m))?);
            }
            self.code_v = Code::read_header(&mut self.r).map_err(|_| eof(self))?;
        }
        if self.num >= 3 {
            self.code_t = Code::read_header(&mut self.r).map_err(|_| eof(self))?;
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Sample, StorageError> {
        let i = self.read;
        let eof = |s: &Self| s.err("unexpected end of data");
        if i == 0 {
            self.header()?;
        } else {
            if i == 1 {
                self.t = self.t.wrapping_add(self.t_delta);
            } else {
                let z = self.code_t.read(&mut self.r).map_err(|_| eof(self))?;
                self.t_delta = self.t_delta.wrapping_add(unzigzag(z));
                self.t = self.t.wrapping_add(self.t_delta);
            }
            if !self.dod {
                let z = self.code_v.read(&mut self.r).map_err(|_| eof(self))?;
                self.m = self.m.wrapping_add(unzigzag(z));
            } else {
                if i >= 2 {
                    let z = self.code_v.read(&mut self.r).map_err(|_| eof(self))?;
                    self.m_delta = self.m_delta.wrapping_add(unzigzag(z));
                }
                self.m = self.m.wrapping_add(self.m_delta);
            }
        }
        let c = unzigzag(self.code_c.read(&mut self.r).map_err(|_| eof(self))?);
        let bits = scale(self.m, self.e).to_bits().wrapping_add(c as u64);
        self.read += 1;
        Ok(Sample { t: self.t, v: f64::from_bits(bits) })
    }
}

/// Zero bytes after a chunk's body in [`decode_all`]'s copy: more than one
/// sample's widest encoding (3 × 66 bits) plus an 8-byte load.
const PAD: usize = 40;

/// Decodes every sample of a decimal chunk into `out`: the same samples as
/// iterating a [`DecIter`], several times faster. `scratch` is a reusable
/// buffer. On corrupt data the samples before the damage are in `out` and
/// the error says where.
pub fn decode_all(data: &[u8], out: &mut Vec<Sample>, scratch: &mut Vec<u8>) -> Result<(), StorageError> {
    DecIter::new(data).decode_into(out, scratch)
}

impl DecIter<'_> {
    /// Decodes the samples of a fresh iterator into `out` (see
    /// [`decode_all`]); on an iterator already read from, appends the
    /// remaining samples one by one.
    pub fn decode_into(mut self, out: &mut Vec<Sample>, scratch: &mut Vec<u8>) -> Result<(), StorageError> {
        if self.read > 0 {
            while let Some(s) = self.next()? {
                out.push(s);
            }
            return Ok(());
        }
        decode_fresh(self, out, scratch)
    }
}

fn decode_fresh(mut it: DecIter<'_>, out: &mut Vec<Sample>, scratch: &mut Vec<u8>) -> Result<(), StorageError> {
    let Some(first) = it.next()? else { return Ok(()) };
    out.push(first);
    if it.num < 2 {
        return Ok(());
    }
    // The header and the first sample went through the careful reader;
    // the rest is read from a padded copy of the body.
    let body = it.r.data();
    let total = body.len() * 8;
    scratch.clear();
    scratch.extend_from_slice(body);
    scratch.resize(body.len() + PAD, 0);
    let start = usize::try_from(it.r.bit_position()).unwrap_or(usize::MAX);
    let mut r = Bits { data: scratch, pos: start };
    let (mut t, mut t_delta, mut m, mut m_delta) = (it.t, it.t_delta, it.m, it.m_delta);
    let (code_t, code_v, code_c, e, dod) = (it.code_t, it.code_v, it.code_c, it.e, it.dod);
    out.reserve(usize::from(it.num) - 1);
    for i in 1..it.num {
        if i == 1 {
            t = t.wrapping_add(t_delta);
        } else {
            t_delta = t_delta.wrapping_add(unzigzag(r.value(code_t)));
            t = t.wrapping_add(t_delta);
        }
        if !dod {
            m = m.wrapping_add(unzigzag(r.value(code_v)));
        } else {
            if i >= 2 {
                m_delta = m_delta.wrapping_add(unzigzag(r.value(code_v)));
            }
            m = m.wrapping_add(m_delta);
        }
        let c = unzigzag(r.value(code_c));
        if r.pos() > total {
            return Err(StorageError::Corrupt(format!(
                "decimal chunk: unexpected end of data at bit {}",
                total.min(r.pos()) + 16
            )));
        }
        let bits = scale(m, e).to_bits().wrapping_add(c as u64);
        out.push(Sample { t, v: f64::from_bits(bits) });
    }
    Ok(())
}

impl SampleIter for DecIter<'_> {
    #[inline]
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        if self.failed {
            return Err(StorageError::Corrupt("decimal chunk: truncated header".into()));
        }
        if self.read >= self.num {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(bytes: &[u8]) -> Result<Vec<Sample>, StorageError> {
        let mut it = DecIter::new(bytes);
        let mut out = Vec::new();
        let careful = (|| {
            while let Some(s) = it.next()? {
                out.push(s);
            }
            Ok(())
        })();
        // The bulk decoder gives the same samples and fails on the same data.
        let mut fast = Vec::new();
        let bulk = decode_all(bytes, &mut fast, &mut Vec::new());
        assert_eq!(careful.is_ok(), bulk.is_ok(), "{careful:?} vs {bulk:?}");
        assert_eq!(out.len(), fast.len());
        assert!(out.iter().zip(&fast).all(|(a, b)| a.bit_eq(b)));
        careful.map(|()| out)
    }

    fn check(samples: &[Sample]) -> Option<usize> {
        let bytes = encode(samples)?;
        let got = decode(&bytes).unwrap();
        assert_eq!(got.len(), samples.len());
        for (a, b) in got.iter().zip(samples) {
            assert!(a.bit_eq(b), "{a:?} != {b:?}");
        }
        Some(bytes.len())
    }

    #[test]
    fn typical_series_are_tiny() {
        let ts = |i: i64| 1_700_000_000_000 + i * 15_000;
        let constant: Vec<Sample> = (0..120).map(|i| Sample::new(ts(i), 1.0)).collect();
        assert!(check(&constant).unwrap() <= 16);
        let gauge: Vec<Sample> = (0..120)
            .map(|i| Sample::new(ts(i), [0.2105, 0.2107, 0.2113, 0.2109][i as usize % 4]))
            .collect();
        let n = check(&gauge).unwrap();
        assert!(n < 120, "{n} bytes");
        let big: Vec<Sample> =
            (0..120).map(|i| Sample::new(ts(i), 929_800.0 + 100.0 * (i % 7) as f64)).collect();
        assert!(check(&big).unwrap() < 80);
        // A float sum off the decimal grid still round-trips.
        let mut v = 3_687_850.32;
        let sums: Vec<Sample> = (0..120)
            .map(|i| {
                v += [0.15, 1.37, 12.01][i as usize % 3];
                Sample::new(ts(i), v)
            })
            .collect();
        check(&sums).unwrap();
        assert!(encode(&[Sample::new(0, f64::NAN)]).is_none());
        assert_eq!(coarsest_exact(1e20, 0), Some(20));
        assert_eq!(coarsest_exact(1.842e19, -3), Some(16));
        assert_eq!(coarsest_exact(0.2105, 5), Some(-4));
        assert_eq!(coarsest_exact(7_394_093.779_999_999, 0), None);
        let huge: Vec<Sample> =
            (0..120).map(|i| Sample::new(i, 1.84e19 + 1e16 * (i % 3) as f64)).collect();
        assert!(check(&huge).unwrap() < 100);
        assert_eq!(check(&[]), Some(2));
        check(&[Sample::new(-5, -0.0), Sample::new(i64::MAX, 1e300)]);
    }

    /// The exact bytes of a small chunk, derived by hand from
    /// docs/format/chunks.md: chunks written before the columnar layout
    /// (0x12) replaced this one must keep reading, and this encoder (kept
    /// for tests and benchmarks) must keep writing the same bytes.
    #[test]
    fn golden_layout() {
        let samples = [
            Sample::new(1000, 1.5),
            Sample::new(2000, 1.7),
            Sample::new(3000, 1.8),
            Sample::new(4001, f64::from_bits(2.4f64.to_bits() + 1)),
        ];
        // t0 varint d0 0f | e+22 = 21 (6 bits) | m0 varint 1e | code(c)
        // Fixed(2) | t1-t0 uvarint e8 07 | dod 0 | code(v) Fixed(4) |
        // code(t) Fixed(2) | c0 00 | v 0100 c 00 | t 00 v 0010 c 00 |
        // t 10 v 1100 c 10 | 2 bits of padding.
        let want: &[u8] =
            &[0x00, 0x04, 0xd0, 0x0f, 0x54, 0x79, 0x07, 0xa0, 0x1c, 0x86, 0x82, 0x20, 0x11, 0x64];
        assert_eq!(encode(&samples).unwrap(), want);
        let got = decode(want).unwrap();
        assert!(got.iter().zip(&samples).all(|(a, b)| a.bit_eq(b)) && got.len() == 4);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip(start in any::<i64>(), deltas in proptest::collection::vec(prop_oneof![Just(15_000u64), 1u64..100_000, any::<u64>()], 0..150),
                      vals in proptest::collection::vec(prop_oneof![
                          (-100_000i64..100_000).prop_map(|m| m as f64 / 100.0),
                          (0i64..10_000).prop_map(|m| m as f64 * 1e6),
                          any::<f64>(),
                      ], 150)) {
            let mut t = start;
            let mut samples = vec![];
            for (i, d) in std::iter::once(0u64).chain(deltas).enumerate() {
                if i > 0 {
                    match t.checked_add_unsigned(d) { Some(n) => t = n, None => break }
                }
                samples.push(Sample::new(t, vals[i]));
            }
            let _ = check(&samples);
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&data);
        }
    }
}
