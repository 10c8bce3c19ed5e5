//! Bit streams: an appending bit writer and a buffered bit reader.
//!
//! Bits are packed most significant first into bytes, as Prometheus's
//! `bstream` does, so a chunk's bytes are readable at any moment while it is
//! still being appended to.

/// Appends bits to a byte vector.
#[derive(Clone, Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Unused low bits of the last byte (0 when the last byte is full).
    free: u32,
}

impl BitWriter {
    /// An empty stream.
    pub fn new() -> Self {
        BitWriter { bytes: Vec::new(), free: 0 }
    }

    /// An empty stream with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        BitWriter { bytes: Vec::with_capacity(n), free: 0 }
    }

    /// Continues a stream whose last byte has `free` unused low bits.
    pub fn from_parts(bytes: Vec<u8>, free: u32) -> Self {
        BitWriter { bytes, free: free.min(7) }
    }

    /// The bytes written so far (the last byte may be partial).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Mutable access to the bytes (to patch a header in place).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Takes the bytes out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Appends whole bytes; the stream must be byte aligned (only used for
    /// headers written before any bit).
    pub fn write_aligned(&mut self, b: &[u8]) {
        debug_assert_eq!(self.free, 0);
        self.bytes.extend_from_slice(b);
    }

    /// Appends one bit.
    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.bytes.push(0);
            self.free = 8;
        }
        self.free -= 1;
        if bit {
            if let Some(last) = self.bytes.last_mut() {
                *last |= 1 << self.free;
            }
        }
    }

    /// Appends the low `n` bits of `v` (`n <= 64`), most significant first.
    #[inline]
    pub fn write_bits(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 64);
        if n == 0 {
            return;
        }
        let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
        let mut n = n;
        // Top up the partial last byte.
        if self.free > 0 {
            let take = n.min(self.free);
            let bits = (v >> (n - take)) as u8 & ((1u16 << take) - 1) as u8;
            self.free -= take;
            n -= take;
            if let Some(last) = self.bytes.last_mut() {
                *last |= bits << self.free;
            }
        }
        // Whole bytes.
        while n >= 8 {
            n -= 8;
            self.bytes.push((v >> n) as u8);
        }
        // The remaining high bits of a new partial byte.
        if n > 0 {
            self.bytes.push((v << (8 - n)) as u8);
            self.free = 8 - n;
        }
    }
}

/// The stream ended before the requested bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitEof;

/// Reads bits from a byte slice through a 64-bit buffer.
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` to load into `buf`.
    pos: usize,
    /// Buffered bits, left aligned.
    buf: u64,
    /// Number of valid bits in `buf`.
    nbits: u32,
}

impl<'a> BitReader<'a> {
    /// A reader over `data`, starting at its first bit.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0, buf: 0, nbits: 0 }
    }

    /// All the data this reader reads from (from its first bit).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Number of bits consumed so far.
    pub fn bit_position(&self) -> u64 {
        self.pos as u64 * 8 - u64::from(self.nbits)
    }

    /// Loads whole bytes until the buffer holds more than 56 bits or the
    /// data ends.
    #[inline]
    fn refill(&mut self) {
        if self.pos + 8 <= self.data.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&self.data[self.pos..self.pos + 8]);
            let word = u64::from_be_bytes(w);
            let take = (64 - self.nbits) / 8;
            if take == 0 {
                return;
            }
            let total = self.nbits + take * 8;
            let mut add = word >> self.nbits;
            if total < 64 {
                add &= !(u64::MAX >> total);
            }
            self.buf |= add;
            self.nbits = total;
            self.pos += take as usize;
        } else {
            while self.nbits <= 56 && self.pos < self.data.len() {
                self.buf |= u64::from(self.data[self.pos]) << (56 - self.nbits);
                self.nbits += 8;
                self.pos += 1;
            }
        }
    }

    /// Reads one bit.
    #[inline]
    pub fn read_bit(&mut self) -> Result<bool, BitEof> {
        if self.nbits == 0 {
            self.refill();
            if self.nbits == 0 {
                return Err(BitEof);
            }
        }
        let bit = self.buf >> 63 == 1;
        self.buf <<= 1;
        self.nbits -= 1;
        Ok(bit)
    }

    /// Reads `n <= 64` bits as the low bits of the result.
    #[inline(always)]
    pub fn read_bits(&mut self, n: u32) -> Result<u64, BitEof> {
        debug_assert!(n <= 64);
        // Fast path: 1..=56 bits already buffered.
        if n.wrapping_sub(1) < self.nbits.min(56) {
            let v = self.buf >> (64 - n);
            self.buf <<= n;
            self.nbits -= n;
            return Ok(v);
        }
        self.read_bits_slow(n)
    }

    #[inline(never)]
    fn read_bits_slow(&mut self, n: u32) -> Result<u64, BitEof> {
        if n == 0 {
            return Ok(0);
        }
        if n > 56 {
            let hi = self.read_bits(n - 32)?;
            let lo = self.read_bits(32)?;
            return Ok((hi << 32) | lo);
        }
        if self.nbits < n {
            self.refill();
            if self.nbits < n {
                return Err(BitEof);
            }
        }
        let v = self.buf >> (64 - n);
        self.buf <<= n;
        self.nbits -= n;
        Ok(v)
    }

    /// Counts up to `max` leading one bits, consuming them and the
    /// terminating zero (if fewer than `max` ones were read).
    #[inline]
    pub fn read_unary(&mut self, max: u32) -> Result<u32, BitEof> {
        let mut n = 0;
        while n < max {
            if !self.read_bit()? {
                break;
            }
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn bits_round_trip(items in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..60)) {
            let mut w = BitWriter::new();
            for &(v, n) in &items {
                if n == 1 { w.write_bit(v & 1 == 1) } else { w.write_bits(v, n) }
            }
            let bytes = w.into_bytes();
            let mut r = BitReader::new(&bytes);
            for &(v, n) in &items {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                let got = if n == 1 { u64::from(r.read_bit().unwrap()) } else { r.read_bits(n).unwrap() };
                prop_assert_eq!(got, v & mask);
            }
            let total: u64 = items.iter().map(|&(_, n)| u64::from(n)).sum();
            prop_assert_eq!(r.bit_position(), total);
            prop_assert_eq!(bytes.len() as u64, total.div_ceil(8));
        }
    }

    #[test]
    fn eof_is_reported() {
        let mut r = BitReader::new(&[0xAB]);
        assert_eq!(r.read_bits(4), Ok(0xA));
        assert_eq!(r.read_bits(5), Err(BitEof));
        assert_eq!(r.read_bits(4), Ok(0xB));
        assert_eq!(r.read_bit(), Err(BitEof));
    }
}
