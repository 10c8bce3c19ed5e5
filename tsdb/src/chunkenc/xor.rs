//! The XOR ("Gorilla") float chunk, bit-compatible with Prometheus's
//! `chunkenc.XORChunk`.
//!
//! Layout: a 2-byte big-endian sample count, then a bit stream. The first
//! sample stores its timestamp as a signed varint and its value as 64 raw
//! bits; the second its timestamp delta as an unsigned varint and its value
//! XOR-encoded; later samples store the delta-of-delta of the timestamp in
//! a prefix-coded bucket (`0`, `10`+14 bits, `110`+17, `1110`+20, `1111`+64)
//! and the value XOR-encoded against the previous one (`0` when equal,
//! `10` + bits inside the previous leading/trailing-zero window, or `11` +
//! 5 bits of leading zeros + 6 bits of length + the meaningful bits).
//!
//! Timestamp arithmetic wraps (mod 2^64), so every increasing sequence of
//! `i64` timestamps round-trips, including ones spanning `i64::MIN` to
//! `i64::MAX`. Values round-trip bit for bit (NaN payloads, the staleness
//! marker, -0.0, ±Inf).

use super::bstream::{BitEof, BitReader, BitWriter};
use crate::encoding::uvarint;
use model::{Sample, SampleIter, StorageError};

/// Bytes of the sample-count header.
const HEADER: usize = 2;

/// Most samples one chunk can hold (the header is a u16).
pub const MAX_SAMPLES: usize = u16::MAX as usize;

/// An appendable XOR chunk that owns its bytes.
#[derive(Clone, Debug)]
pub struct XorChunk {
    w: BitWriter,
    num: u16,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl XorChunk {
    /// An empty chunk.
    pub fn new() -> Self {
        let mut w = BitWriter::with_capacity(128);
        w.write_aligned(&[0, 0]);
        XorChunk { w, num: 0, t: 0, t_delta: 0, v: 0, leading: 0xff, trailing: 0 }
    }

    /// Loads a chunk from its bytes so it can be read and appended to.
    /// Decodes every sample to restore the appender state, so corrupt
    /// bytes are rejected here.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Result<Self, StorageError> {
        if bytes.is_empty() {
            return Ok(Self::new());
        }
        let mut it = XorIter::new(&bytes);
        while it.next()?.is_some() {}
        let num = it.num;
        let (t, t_delta, v, trailing) = (it.t, it.t_delta, it.v, it.trailing);
        let leading = if it.has_window { it.leading } else { 0xff };
        let bits = it.r.bit_position();
        let used_bytes = HEADER + bits.div_ceil(8) as usize;
        let free = ((8 - bits % 8) % 8) as u32;
        // Trailing bytes after the last sample would be misread as the next
        // sample's bits: drop them.
        bytes.truncate(used_bytes);
        Ok(XorChunk {
            w: BitWriter::from_parts(bytes, free),
            num,
            t,
            t_delta,
            v,
            leading,
            trailing,
        })
    }

    /// Number of samples.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    /// Whether the chunk holds [`MAX_SAMPLES`] samples.
    pub fn is_full(&self) -> bool {
        self.num == u16::MAX
    }

    /// The encoded bytes (header included), valid at any time.
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Takes the encoded bytes out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.w.into_bytes()
    }

    /// A borrowed view of the current bytes.
    pub fn as_ref(&self) -> XorChunkRef<'_> {
        XorChunkRef(self.bytes())
    }

    /// An iterator over the samples appended so far.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter::new(self.bytes())
    }

    /// Timestamp of the last appended sample (`None` when empty).
    pub fn last_t(&self) -> Option<i64> {
        (self.num > 0).then_some(self.t)
    }

    /// Appends a sample. The caller guarantees `t` is greater than the
    /// previous timestamp and that the chunk is not full; a full chunk
    /// ignores the sample and returns `false`.
    pub fn append(&mut self, t: i64, v: f64) -> bool {
        let vbits = v.to_bits();
        match self.num {
            u16::MAX => return false,
            0 => {
                let mut buf = Vec::with_capacity(10);
                crate::encoding::put_varint(&mut buf, t);
                for b in buf {
                    self.w.write_bits(u64::from(b), 8);
                }
                self.w.write_bits(vbits, 64);
            }
            1 => {
                let delta = t.wrapping_sub(self.t);
                let mut buf = Vec::with_capacity(10);
                crate::encoding::put_uvarint(&mut buf, delta as u64);
                for b in buf {
                    self.w.write_bits(u64::from(b), 8);
                }
                self.write_value(vbits);
                self.t_delta = delta;
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                let dod = delta.wrapping_sub(self.t_delta);
                if dod == 0 {
                    self.w.write_bit(false);
                } else if fits(dod, 14) {
                    self.w.write_bits(0b10, 2);
                    self.w.write_bits(dod as u64, 14);
                } else if fits(dod, 17) {
                    self.w.write_bits(0b110, 3);
                    self.w.write_bits(dod as u64, 17);
                } else if fits(dod, 20) {
                    self.w.write_bits(0b1110, 4);
                    self.w.write_bits(dod as u64, 20);
                } else {
                    self.w.write_bits(0b1111, 4);
                    self.w.write_bits(dod as u64, 64);
                }
                self.write_value(vbits);
                self.t_delta = delta;
            }
        }
        self.t = t;
        self.v = vbits;
        self.num += 1;
        self.w.bytes_mut()[..HEADER].copy_from_slice(&self.num.to_be_bytes());
        true
    }

    fn write_value(&mut self, vbits: u64) {
        let x = vbits ^ self.v;
        if x == 0 {
            self.w.write_bit(false);
            return;
        }
        self.w.write_bit(true);
        let mut leading = x.leading_zeros() as u8;
        let trailing = x.trailing_zeros() as u8;
        // Five bits hold the leading-zero count.
        if leading >= 32 {
            leading = 31;
        }
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bit(false);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.w.write_bits(x >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            self.w.write_bit(true);
            self.w.write_bits(u64::from(leading), 5);
            let sig = 64 - u32::from(leading) - u32::from(trailing);
            // 64 meaningful bits are written as 0: the length 0 cannot
            // occur otherwise because x != 0.
            self.w.write_bits(u64::from(sig as u8 & 0x3f), 6);
            self.w.write_bits(x >> trailing, sig);
        }
    }
}

/// The exact size in bytes [`XorChunk`] would take for `samples`
/// (strictly increasing timestamps), computed without encoding.
pub fn encoded_len(samples: &[Sample]) -> usize {
    let mut bits: u64 = 0;
    let (mut t, mut t_delta, mut v) = (0i64, 0i64, 0u64);
    let (mut leading, mut trailing) = (0xffu8, 0u8);
    for (i, s) in samples.iter().enumerate() {
        let vbits = s.v.to_bits();
        match i {
            0 => {
                bits += 8 * crate::encoding::uvarint_len(crate::encoding::zigzag(s.t)) as u64 + 64;
            }
            _ => {
                let delta = s.t.wrapping_sub(t);
                if i == 1 {
                    bits += 8 * crate::encoding::uvarint_len(delta as u64) as u64;
                } else {
                    let dod = delta.wrapping_sub(t_delta);
                    bits += if dod == 0 {
                        1
                    } else if fits(dod, 14) {
                        16
                    } else if fits(dod, 17) {
                        20
                    } else if fits(dod, 20) {
                        24
                    } else {
                        68
                    };
                }
                t_delta = delta;
                let x = vbits ^ v;
                if x == 0 {
                    bits += 1;
                } else {
                    let l = (x.leading_zeros() as u8).min(31);
                    let tr = x.trailing_zeros() as u8;
                    if leading != 0xff && l >= leading && tr >= trailing {
                        bits += 2 + 64 - u64::from(leading) - u64::from(trailing);
                    } else {
                        leading = l;
                        trailing = tr;
                        bits += 2 + 5 + 6 + 64 - u64::from(l) - u64::from(tr);
                    }
                }
            }
        }
        t = s.t;
        v = vbits;
    }
    HEADER + bits.div_ceil(8) as usize
}

/// Whether `x` fits Prometheus's `nbits` bucket: `-(2^(n-1) - 1) ..= 2^(n-1)`.
#[inline]
fn fits(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

/// A borrowed XOR chunk (for example inside a memory-mapped block).
#[derive(Clone, Copy, Debug)]
pub struct XorChunkRef<'a>(pub &'a [u8]);

impl<'a> XorChunkRef<'a> {
    /// Number of samples from the header (0 if the header is missing).
    pub fn num_samples(&self) -> usize {
        match self.0 {
            [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
            _ => 0,
        }
    }

    /// Timestamp of the first sample, read from the start of the stream
    /// without decoding the rest.
    pub fn mint(&self) -> Result<Option<i64>, StorageError> {
        if self.num_samples() == 0 {
            return Ok(None);
        }
        match uvarint(&self.0[HEADER..]) {
            Some((u, _)) => Ok(Some(crate::encoding::unzigzag(u))),
            None => Err(corrupt(HEADER as u64 * 8, "bad first timestamp")),
        }
    }

    /// Timestamp of the last sample (decodes the timestamps).
    pub fn maxt(&self) -> Result<Option<i64>, StorageError> {
        let mut it = self.iter();
        let mut last = None;
        while let Some(s) = it.next()? {
            last = Some(s.t);
        }
        Ok(last)
    }

    /// An iterator over the samples.
    pub fn iter(&self) -> XorIter<'a> {
        XorIter::new(self.0)
    }
}

fn corrupt(bit: u64, what: &str) -> StorageError {
    StorageError::Corrupt(format!("xor chunk: {what} at bit {bit}"))
}

/// Iterates the samples of an XOR chunk; corrupt or truncated bytes give
/// [`StorageError::Corrupt`], never a panic.
#[derive(Clone, Debug)]
pub struct XorIter<'a> {
    r: BitReader<'a>,
    /// Samples in the chunk, from the header.
    num: u16,
    /// Samples read so far.
    read: u16,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
    /// Whether a leading/trailing window was ever read.
    has_window: bool,
    failed: bool,
}

impl<'a> XorIter<'a> {
    /// An iterator over the chunk bytes `data` (header included).
    pub fn new(data: &'a [u8]) -> Self {
        let (num, body, failed) = super::split_header(data);
        XorIter {
            r: BitReader::new(body),
            num,
            read: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: 0,
            trailing: 0,
            has_window: false,
            failed,
        }
    }

    /// Samples the header says the chunk holds.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    fn eof(&self, what: &str) -> StorageError {
        corrupt(
            self.r.bit_position() + HEADER as u64 * 8,
            &format!("unexpected end of data reading {what}"),
        )
    }

    fn read_varint_bytes(&mut self) -> Result<u64, StorageError> {
        let mut x = 0u64;
        let mut shift = 0u32;
        for i in 0..crate::encoding::MAX_VARINT_LEN {
            let b = self.r.read_bits(8).map_err(|_| self.eof("varint"))?;
            if b < 0x80 {
                if i == crate::encoding::MAX_VARINT_LEN - 1 && b > 1 {
                    break;
                }
                return Ok(x | (b << shift));
            }
            x |= (b & 0x7f) << shift;
            shift += 7;
        }
        Err(corrupt(self.r.bit_position() + HEADER as u64 * 8, "varint overflow"))
    }

    #[inline]
    fn read_value(&mut self) -> Result<(), BitEof> {
        if !self.r.read_bit()? {
            return Ok(());
        }
        if self.r.read_bit()? {
            self.leading = self.r.read_bits(5)? as u8;
            let mut sig = self.r.read_bits(6)? as u8;
            if sig == 0 {
                sig = 64;
            }
            // A corrupt stream may claim more bits than 64 - leading; clamp
            // so the shifts below stay in range (the value is garbage, but
            // it was garbage anyway and the CRC catches it upstream).
            let sig = sig.min(64 - self.leading);
            self.trailing = 64 - self.leading - sig;
            self.has_window = true;
        }
        let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = self.r.read_bits(sig)?;
        self.v ^= if self.trailing >= 64 { 0 } else { bits << self.trailing };
        Ok(())
    }

    fn step(&mut self) -> Result<Sample, StorageError> {
        match self.read {
            0 => {
                let u = self.read_varint_bytes()?;
                self.t = crate::encoding::unzigzag(u);
                self.v = self.r.read_bits(64).map_err(|_| self.eof("first value"))?;
            }
            1 => {
                let d = self.read_varint_bytes()?;
                self.t_delta = d as i64;
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_value().map_err(|_| self.eof("value"))?;
            }
            _ => {
                let prefix = self.r.read_unary(4).map_err(|_| self.eof("timestamp"))?;
                let nbits = match prefix {
                    0 => 0,
                    1 => 14,
                    2 => 17,
                    3 => 20,
                    _ => 64,
                };
                let mut dod = 0i64;
                if nbits > 0 {
                    let bits = self.r.read_bits(nbits).map_err(|_| self.eof("timestamp"))?;
                    dod = if nbits == 64 {
                        bits as i64
                    } else if bits > (1u64 << (nbits - 1)) {
                        (bits as i64) - (1i64 << nbits)
                    } else {
                        bits as i64
                    };
                }
                self.t_delta = self.t_delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_value().map_err(|_| self.eof("value"))?;
            }
        }
        self.read += 1;
        Ok(Sample { t: self.t, v: f64::from_bits(self.v) })
    }
}

impl SampleIter for XorIter<'_> {
    #[inline]
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        if self.failed {
            return Err(corrupt(0, "truncated header"));
        }
        if self.read >= self.num {
            return Ok(None);
        }
        match self.step() {
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                // End the iteration: further calls return the error again
                // rather than garbage.
                self.failed = true;
                Err(e)
            }
        }
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        while let Some(s) = self.next()? {
            if s.t >= t {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(samples: &[Sample]) -> XorChunk {
        let mut c = XorChunk::new();
        for s in samples {
            assert!(c.append(s.t, s.v));
        }
        c
    }

    fn decode(bytes: &[u8]) -> Result<Vec<Sample>, StorageError> {
        let mut it = XorIter::new(bytes);
        let mut out = Vec::new();
        while let Some(s) = it.next()? {
            out.push(s);
        }
        Ok(out)
    }

    fn assert_bits_eq(a: &[Sample], b: &[Sample]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!(x.bit_eq(y), "{x:?} != {y:?}");
        }
    }

    #[test]
    fn special_values_round_trip() {
        let vals = [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            model::stale_nan(),
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::MIN_POSITIVE,
            f64::MAX,
            1.5,
            1.5,
            -3.25e-300,
        ];
        let samples: Vec<Sample> =
            vals.iter().enumerate().map(|(i, &v)| Sample::new(i as i64 * 15_000 - 7, v)).collect();
        let c = encode(&samples);
        assert_eq!(c.num_samples(), samples.len());
        assert_bits_eq(&decode(c.bytes()).unwrap(), &samples);
        assert_eq!(c.as_ref().mint().unwrap(), Some(-7));
        assert_eq!(c.as_ref().maxt().unwrap(), Some(11 * 15_000 - 7));
    }

    #[test]
    fn extreme_timestamps() {
        let samples = vec![
            Sample::new(i64::MIN, 1.0),
            Sample::new(i64::MIN + 1, 2.0),
            Sample::new(-1, 3.0),
            Sample::new(0, 4.0),
            Sample::new(i64::MAX - 1, 5.0),
            Sample::new(i64::MAX, 6.0),
        ];
        assert_bits_eq(&decode(encode(&samples).bytes()).unwrap(), &samples);
    }

    #[test]
    fn regular_scrapes_are_small() {
        // A constant series at a fixed interval costs ~2 bits per sample.
        let samples: Vec<Sample> =
            (0..120).map(|i| Sample::new(1_700_000_000_000 + i * 15_000, 42.0)).collect();
        let c = encode(&samples);
        assert!(c.bytes().len() < 50, "{} bytes", c.bytes().len());
    }

    #[test]
    fn from_bytes_continues_appending() {
        let samples: Vec<Sample> =
            (0..50).map(|i| Sample::new(i * 1000 + (i % 3), (i as f64).sqrt())).collect();
        for split in [0, 1, 2, 3, 17, 50] {
            let c = encode(&samples[..split]);
            let mut bytes = c.into_bytes();
            if split == 0 {
                bytes.push(0); // trailing garbage is dropped
            }
            let mut c = XorChunk::from_bytes(bytes).unwrap();
            for s in &samples[split..] {
                c.append(s.t, s.v);
            }
            assert_bits_eq(&decode(c.bytes()).unwrap(), &samples);
        }
    }

    #[test]
    fn seek_and_truncation() {
        let samples: Vec<Sample> = (0..100).map(|i| Sample::new(i * 10, i as f64)).collect();
        let c = encode(&samples);
        let mut it = c.iter();
        assert_eq!(it.seek(355).unwrap().map(|s| s.t), Some(360));
        assert_eq!(it.seek(0).unwrap().map(|s| s.t), Some(370));
        assert_eq!(it.seek(10_000).unwrap(), None);
        let b = c.bytes();
        let e = decode(&b[..b.len() / 2]).unwrap_err();
        assert!(e.to_string().contains("unexpected end of data"), "{e}");
        assert!(decode(&b[..1]).is_err());
        assert!(decode(&[]).unwrap().is_empty());
    }

    #[test]
    fn full_chunk_refuses() {
        let mut c = XorChunk::new();
        for i in 0..MAX_SAMPLES as i64 {
            assert!(c.append(i, 0.0));
        }
        assert!(c.is_full());
        assert!(!c.append(MAX_SAMPLES as i64, 0.0));
        assert_eq!(c.iter().count_all(), MAX_SAMPLES);
    }

    trait CountAll {
        fn count_all(self) -> usize;
    }
    impl CountAll for XorIter<'_> {
        fn count_all(mut self) -> usize {
            let mut n = 0;
            while self.next().unwrap().is_some() {
                n += 1;
            }
            n
        }
    }

    fn timestamps() -> impl Strategy<Value = Vec<i64>> {
        (
            any::<i64>(),
            proptest::collection::vec(
                prop_oneof![
                    4 => Just(15_000u64),
                    4 => 1u64..100_000,
                    1 => 1u64..(1 << 40),
                    1 => any::<u64>(),
                ],
                0..200,
            ),
        )
            .prop_map(|(start, deltas)| {
                let mut out = vec![start];
                let mut t = start;
                for d in deltas {
                    match t.checked_add_unsigned(d) {
                        Some(n) => {
                            t = n;
                            out.push(t);
                        }
                        None => break,
                    }
                }
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip(ts in timestamps(), bits in proptest::collection::vec(prop_oneof![
            any::<u64>(),
            (-1000i64..1000).prop_map(|i| (i as f64).to_bits()),
            (0u64..20).prop_map(|i| (i as f64 * 0.1).to_bits()),
        ], 200)) {
            let samples: Vec<Sample> = ts.iter().zip(&bits).map(|(&t, &b)| Sample::new(t, f64::from_bits(b))).collect();
            let c = encode(&samples);
            prop_assert_eq!(encoded_len(&samples), c.bytes().len());
            let got = decode(c.bytes()).unwrap();
            prop_assert_eq!(got.len(), samples.len());
            for (x, y) in got.iter().zip(&samples) {
                prop_assert!(x.bit_eq(y));
            }
            let r = XorChunkRef(c.bytes());
            prop_assert_eq!(r.mint().unwrap(), samples.first().map(|s| s.t));
            prop_assert_eq!(r.maxt().unwrap(), samples.last().map(|s| s.t));
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&data);
            let _ = XorChunkRef(&data).mint();
            let _ = XorChunk::from_bytes(data);
        }
    }
}
