//! Chunk encodings: compressed runs of samples of one series.
//!
//! [`XorChunk`] is Prometheus's Gorilla-style float chunk (encoding byte 1
//! in chunk segment files), built on the bit streams of [`bstream`].
//! [`pack`] is this crate's decimal chunk (encoding byte 0x13), which the
//! block writer uses whenever it is smaller than XOR; [`deccol`] (0x12) and
//! [`dec`] (0x10) are its older, smaller but slower to decode layouts,
//! still read but no longer written.
//! [`ChunkIter`] iterates a chunk of any supported encoding. [`st`] wraps
//! any of them with a column of start timestamps.

pub mod bstream;
pub mod dec;
pub mod deccol;
pub mod pack;
pub mod st;
pub mod xor;

pub use dec::DecIter;
pub use deccol::{DecColIter, ENCODING_DEC_COL};
pub use pack::{PackIter, ENCODING_PACK};
pub use st::{encode_with_starts, StIter, ENCODING_ST};
pub use xor::{XorChunk, XorChunkRef, XorIter};

use model::{Sample, SampleIter, StorageError};

/// Encoding byte of XOR chunks (as in Prometheus).
pub const ENCODING_XOR: u8 = 1;
/// Encoding byte of interleaved decimal chunks (this crate's own;
/// Prometheus cannot read them). Read, but no longer written: see
/// [`ENCODING_DEC_COL`].
pub const ENCODING_DEC: u8 = 0x10;

/// The encoding of a chunk, as stored in its encoding byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// Prometheus's XOR float chunk.
    Xor,
    /// The interleaved decimal chunk of [`dec`].
    Dec,
    /// The columnar decimal chunk of [`deccol`].
    DecCol,
    /// The packed decimal chunk of [`pack`].
    Pack,
    /// A chunk with start timestamps ([`st`]).
    St,
}

impl Encoding {
    /// The encoding's byte in chunk segment files.
    pub fn to_byte(self) -> u8 {
        match self {
            Encoding::Xor => ENCODING_XOR,
            Encoding::Dec => ENCODING_DEC,
            Encoding::DecCol => ENCODING_DEC_COL,
            Encoding::Pack => ENCODING_PACK,
            Encoding::St => ENCODING_ST,
        }
    }

    /// The encoding for byte `b`, if supported.
    pub fn from_byte(b: u8) -> Option<Encoding> {
        match b {
            ENCODING_XOR => Some(Encoding::Xor),
            ENCODING_DEC => Some(Encoding::Dec),
            ENCODING_DEC_COL => Some(Encoding::DecCol),
            ENCODING_PACK => Some(Encoding::Pack),
            ENCODING_ST => Some(Encoding::St),
            _ => None,
        }
    }
}

/// Iterates a chunk of any supported encoding.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ChunkIter<'a> {
    /// An XOR chunk.
    Xor(XorIter<'a>),
    /// An interleaved decimal chunk.
    Dec(DecIter<'a>),
    /// A columnar decimal chunk.
    DecCol(DecColIter<'a>),
    /// A packed decimal chunk.
    Pack(PackIter<'a>),
    /// A chunk with start timestamps.
    St(Box<StIter<'a>>),
}

impl<'a> ChunkIter<'a> {
    /// An iterator over `data` encoded with encoding byte `encoding`.
    pub fn new(encoding: u8, data: &'a [u8]) -> Result<Self, StorageError> {
        match Encoding::from_byte(encoding) {
            Some(Encoding::Xor) => Ok(ChunkIter::Xor(XorIter::new(data))),
            Some(Encoding::Dec) => Ok(ChunkIter::Dec(DecIter::new(data))),
            Some(Encoding::DecCol) => Ok(ChunkIter::DecCol(DecColIter::new(data)?)),
            Some(Encoding::Pack) => Ok(ChunkIter::Pack(PackIter::new(data)?)),
            Some(Encoding::St) => Ok(ChunkIter::St(Box::new(StIter::new(data)?))),
            None => Err(StorageError::Corrupt(format!("unknown chunk encoding {encoding}"))),
        }
    }

    /// Number of samples the chunk header claims.
    pub fn num_samples(&self) -> usize {
        match self {
            ChunkIter::Xor(i) => i.num_samples(),
            ChunkIter::Dec(i) => i.num_samples(),
            ChunkIter::DecCol(i) => i.num_samples(),
            ChunkIter::Pack(i) => i.num_samples(),
            ChunkIter::St(i) => i.num_samples(),
        }
    }
}

impl SampleIter for ChunkIter<'_> {
    #[inline]
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        match self {
            ChunkIter::Xor(i) => i.next(),
            ChunkIter::Dec(i) => i.next(),
            ChunkIter::DecCol(i) => i.next(),
            ChunkIter::Pack(i) => i.next(),
            ChunkIter::St(i) => i.next(),
        }
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        match self {
            ChunkIter::Xor(i) => i.seek(t),
            ChunkIter::Dec(i) => i.seek(t),
            ChunkIter::DecCol(i) => i.seek(t),
            ChunkIter::Pack(i) => i.seek(t),
            ChunkIter::St(i) => i.seek(t),
        }
    }

    fn start_timestamp(&self) -> Option<i64> {
        match self {
            ChunkIter::St(i) => i.start_timestamp(),
            _ => None,
        }
    }

    fn has_start_timestamps(&self) -> bool {
        matches!(self, ChunkIter::St(_))
    }
}

/// Splits a chunk into its big-endian sample count and body. The third
/// value is true when the chunk is too short to hold the count (an empty
/// chunk is valid and holds no samples). The XOR and 0x10 decimal
/// encodings share this header.
pub(crate) fn split_header(data: &[u8]) -> (u16, &[u8], bool) {
    match data {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest, false),
        _ => (0, &[][..], !data.is_empty()),
    }
}

/// Encodes `samples` (strictly increasing timestamps, at most
/// [`xor::MAX_SAMPLES`]) into the smallest supported encoding; returns the
/// encoding byte and the bytes.
pub fn encode_best(samples: &[Sample]) -> (u8, Vec<u8>) {
    // Sizing XOR is much cheaper than encoding it, so only the winner is
    // encoded twice at most.
    if let Some(d) = pack::encode(samples) {
        if d.len() < xor::encoded_len(samples) {
            return (ENCODING_PACK, d);
        }
    }
    let mut c = XorChunk::new();
    for s in samples {
        c.append(s.t, s.v);
    }
    (ENCODING_XOR, c.into_bytes())
}

