//! Byte-level primitives shared by every on-disk format: varints,
//! big-endian integers, CRC32 (Castagnoli) and byte cursors.
//!
//! [`Encbuf`] appends to a growable buffer; [`Decbuf`] reads from a borrowed
//! slice and reports every failure with the absolute offset at which it
//! happened (a `Decbuf` over a section of a file carries the section's
//! file offset, so errors point into the file, not into the section).
//!
//! Varints are the LEB128 encoding Go's `encoding/binary` uses: 7 bits per
//! byte, least significant group first, high bit set on every byte but the
//! last. Signed varints are zig-zag encoded first.
//!
//! ```
//! use tsdb::encoding::{Decbuf, Encbuf};
//! let mut e = Encbuf::new();
//! e.put_be32(7);
//! e.put_uvarint(300);
//! e.put_varint(-2);
//! e.put_uvarint_str("up");
//! let mut d = Decbuf::new(e.get());
//! assert_eq!(d.be32()?, 7);
//! assert_eq!(d.uvarint()?, 300);
//! assert_eq!(d.varint()?, -2);
//! assert_eq!(d.uvarint_str()?, "up");
//! assert!(d.is_empty());
//! # Ok::<(), tsdb::encoding::DecodeError>(())
//! ```

use std::fmt;

/// CRC32 with the Castagnoli polynomial (as Prometheus's TSDB uses).
pub fn crc32(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Extends a running Castagnoli CRC32 with `data`.
pub fn crc32_append(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// Maximum number of bytes of a 64-bit varint.
pub const MAX_VARINT_LEN: usize = 10;

/// Appends `v` as an unsigned varint.
#[inline]
pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends `v` as a zig-zag signed varint.
#[inline]
pub fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, zigzag(v));
}

/// Zig-zag maps signed to unsigned so small magnitudes stay small.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Number of bytes `v` takes as an unsigned varint.
pub fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Decodes an unsigned varint at the start of `buf`: `(value, bytes read)`,
/// or `None` when `buf` ends early or the varint overflows 64 bits.
#[inline]
pub fn uvarint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut x: u64 = 0;
    let mut shift = 0u32;
    for (i, &b) in buf.iter().enumerate() {
        if i == MAX_VARINT_LEN {
            return None;
        }
        if b < 0x80 {
            if i == MAX_VARINT_LEN - 1 && b > 1 {
                return None;
            }
            return Some((x | (u64::from(b) << shift), i + 1));
        }
        x |= u64::from(b & 0x7f) << shift;
        shift += 7;
    }
    None
}

/// What went wrong while decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The data ended while `needed` more bytes were expected.
    UnexpectedEof {
        /// Bytes that were needed.
        needed: u64,
    },
    /// A varint was longer than 10 bytes or overflowed 64 bits.
    VarintOverflow,
    /// A string was not valid UTF-8.
    InvalidUtf8,
    /// A value was out of its allowed range or otherwise invalid.
    Invalid(String),
}

/// A decoding failure at an absolute byte offset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct DecodeError {
    /// Absolute offset (within the file, when the cursor knows its base).
    pub offset: u64,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// An error of kind [`DecodeErrorKind::Invalid`].
    pub fn invalid(offset: u64, msg: impl Into<String>) -> Self {
        DecodeError { offset, kind: DecodeErrorKind::Invalid(msg.into()) }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DecodeErrorKind::UnexpectedEof { needed } => {
                write!(
                    f,
                    "unexpected end of data at offset {} ({needed} more bytes needed)",
                    self.offset
                )
            }
            DecodeErrorKind::VarintOverflow => {
                write!(f, "varint overflow at offset {}", self.offset)
            }
            DecodeErrorKind::InvalidUtf8 => {
                write!(f, "invalid UTF-8 string at offset {}", self.offset)
            }
            DecodeErrorKind::Invalid(m) => write!(f, "{m} at offset {}", self.offset),
        }
    }
}

/// An append-only encoding buffer.
#[derive(Clone, Debug, Default)]
pub struct Encbuf {
    buf: Vec<u8>,
}

impl Encbuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Encbuf { buf: Vec::new() }
    }

    /// An empty buffer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Encbuf { buf: Vec::with_capacity(n) }
    }

    /// Clears the contents, keeping the allocation.
    pub fn reset(&mut self) {
        self.buf.clear();
    }

    /// The encoded bytes.
    pub fn get(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the encoded bytes out.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    /// Mutable access to the underlying vector (to patch lengths in place).
    pub fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Number of bytes encoded so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been encoded.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends one byte.
    pub fn put_u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a big-endian u32.
    pub fn put_be32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian u64.
    pub fn put_be64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends an unsigned varint.
    pub fn put_uvarint(&mut self, v: u64) {
        put_uvarint(&mut self.buf, v);
    }

    /// Appends a zig-zag signed varint.
    pub fn put_varint(&mut self, v: i64) {
        put_varint(&mut self.buf, v);
    }

    /// Appends raw bytes.
    pub fn put_bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Appends a string as `len uvarint | bytes`.
    pub fn put_uvarint_str(&mut self, s: &str) {
        self.put_uvarint_bytes(s.as_bytes());
    }

    /// Appends bytes as `len uvarint | bytes`.
    pub fn put_uvarint_bytes(&mut self, b: &[u8]) {
        self.put_uvarint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// Appends the Castagnoli CRC32 of the bytes from `start` to the end,
    /// big-endian.
    pub fn put_crc32_since(&mut self, start: usize) {
        let c = crc32(&self.buf[start.min(self.buf.len())..]);
        self.put_be32(c);
    }
}

/// A read cursor over a borrowed byte slice.
///
/// Every read either succeeds or returns a [`DecodeError`] with the
/// absolute offset of the failing read; a cursor never panics on any input.
#[derive(Clone, Debug)]
pub struct Decbuf<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Decbuf<'a> {
    /// A cursor over `data`; offsets in errors are relative to `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Decbuf { data, pos: 0, base: 0 }
    }

    /// A cursor over `data` that starts at absolute offset `base` of a file.
    pub fn with_base(data: &'a [u8], base: u64) -> Self {
        Decbuf { data, pos: 0, base }
    }

    /// Absolute offset of the next byte to read.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Position relative to the start of this cursor's slice.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    fn eof(&self, needed: usize) -> DecodeError {
        DecodeError {
            offset: self.offset(),
            kind: DecodeErrorKind::UnexpectedEof { needed: (needed - self.remaining()) as u64 },
        }
    }

    /// An [`DecodeErrorKind::Invalid`] error at the current offset.
    pub fn invalid(&self, msg: impl Into<String>) -> DecodeError {
        DecodeError::invalid(self.offset(), msg)
    }

    /// Reads `n` raw bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.eof(n));
        }
        let b = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.bytes(n).map(|_| ())
    }

    /// Reads one byte.
    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.eof(1)),
        }
    }

    /// Reads a big-endian u32.
    #[inline]
    pub fn be32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a big-endian u64.
    #[inline]
    pub fn be64(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Reads an unsigned varint.
    #[inline]
    pub fn uvarint(&mut self) -> Result<u64, DecodeError> {
        match uvarint(&self.data[self.pos..]) {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => {
                let rest = &self.data[self.pos..];
                if rest.len() < MAX_VARINT_LEN && rest.iter().all(|&b| b >= 0x80) {
                    Err(self.eof(rest.len() + 1))
                } else {
                    Err(DecodeError {
                        offset: self.offset(),
                        kind: DecodeErrorKind::VarintOverflow,
                    })
                }
            }
        }
    }

    /// Reads an unsigned varint that must fit in a `u32`.
    pub fn uvarint32(&mut self) -> Result<u32, DecodeError> {
        let off = self.offset();
        let v = self.uvarint()?;
        u32::try_from(v)
            .map_err(|_| DecodeError::invalid(off, format!("value {v} exceeds 32 bits")))
    }

    /// Reads an unsigned varint used as a length or count: it must not
    /// exceed the bytes left, times `min_item_size` (so hostile lengths
    /// cannot trigger huge allocations).
    pub fn uvarint_len(&mut self, min_item_size: usize) -> Result<usize, DecodeError> {
        let off = self.offset();
        let v = self.uvarint()?;
        let max = self.remaining() / min_item_size.max(1);
        if v > max as u64 {
            return Err(DecodeError::invalid(
                off,
                format!("length {v} exceeds the {} remaining bytes", self.remaining()),
            ));
        }
        Ok(v as usize)
    }

    /// Reads a zig-zag signed varint.
    #[inline]
    pub fn varint(&mut self) -> Result<i64, DecodeError> {
        self.uvarint().map(unzigzag)
    }

    /// Reads `len uvarint | bytes`.
    pub fn uvarint_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.uvarint_len(1)?;
        self.bytes(n)
    }

    /// Reads `len uvarint | UTF-8 bytes`.
    pub fn uvarint_str(&mut self) -> Result<&'a str, DecodeError> {
        let off = self.offset();
        let b = self.uvarint_bytes()?;
        std::str::from_utf8(b)
            .map_err(|_| DecodeError { offset: off, kind: DecodeErrorKind::InvalidUtf8 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc_is_castagnoli() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32(b"123456789"), 0xE306_9283);
        assert_eq!(crc32_append(crc32(b"1234"), b"56789"), 0xE306_9283);
    }

    #[test]
    fn varint_edges() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(b.len(), uvarint_len(v));
            assert_eq!(uvarint(&b), Some((v, b.len())));
        }
        // 11 continuation bytes overflow; a 10th byte > 1 overflows.
        assert_eq!(uvarint(&[0xff; 11]), None);
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(uvarint(&over), None);
        let mut d = Decbuf::new(&over);
        assert_eq!(d.uvarint().unwrap_err().kind, DecodeErrorKind::VarintOverflow);
    }

    #[test]
    fn errors_carry_absolute_offsets() {
        let data = [0u8, 0, 0, 1, 0x80];
        let mut d = Decbuf::with_base(&data, 1000);
        assert_eq!(d.be32().unwrap(), 1);
        let e = d.uvarint().unwrap_err();
        assert_eq!(e.offset, 1004);
        assert!(matches!(e.kind, DecodeErrorKind::UnexpectedEof { .. }));
        let e = d.be64().unwrap_err();
        assert_eq!(e.to_string(), "unexpected end of data at offset 1004 (7 more bytes needed)");
        let mut d = Decbuf::new(&[5, b'a']);
        assert!(d.uvarint_str().is_err());
        let mut d = Decbuf::new(&[2, 0xff, 0xfe]);
        assert_eq!(d.uvarint_str().unwrap_err().kind, DecodeErrorKind::InvalidUtf8);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip(u in any::<u64>(), i in any::<i64>(), a in any::<u32>(), b in any::<u64>(), s in ".{0,20}") {
            let mut e = Encbuf::new();
            e.put_uvarint(u);
            e.put_varint(i);
            e.put_be32(a);
            e.put_be64(b);
            e.put_uvarint_str(&s);
            let start = 0;
            e.put_crc32_since(start);
            let buf = e.into_inner();
            let mut d = Decbuf::new(&buf);
            prop_assert_eq!(d.uvarint().unwrap(), u);
            prop_assert_eq!(d.varint().unwrap(), i);
            prop_assert_eq!(d.be32().unwrap(), a);
            prop_assert_eq!(d.be64().unwrap(), b);
            prop_assert_eq!(d.uvarint_str().unwrap(), s.as_str());
            let crc = d.be32().unwrap();
            prop_assert_eq!(crc, crc32(&buf[..buf.len() - 4]));
            prop_assert!(d.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut d = Decbuf::new(&data);
            loop {
                let before = d.position();
                let r = match before % 4 {
                    0 => d.uvarint().map(|_| ()),
                    1 => d.uvarint_str().map(|_| ()),
                    2 => d.be32().map(|_| ()),
                    _ => d.varint().map(|_| ()),
                };
                if r.is_err() || d.is_empty() {
                    break;
                }
                prop_assert!(d.position() > before);
            }
        }
    }
}
