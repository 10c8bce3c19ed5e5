//! Chunks whose samples carry start timestamps (encoding byte 0x11, this
//! crate's own): an ordinary XOR or decimal chunk plus a column with one
//! start timestamp entry per sample.
//!
//! Start timestamps (OpenTelemetry's `start_time`, Prometheus's created
//! timestamps) follow a few patterns: constant while a cumulative counter
//! lives, or equal to the previous sample's timestamp for delta samples. The
//! column names those patterns with one tag byte per sample, so they cost
//! one byte; other starts add a varint of how long before the sample they
//! lie. The byte layout is in `docs/format/chunks.md`. Chunks without any
//! start timestamp are never written in this encoding.

use super::{encode_best, ChunkIter, Encoding};
use crate::encoding::{put_uvarint, put_varint, Decbuf};
use model::{Sample, SampleIter, StorageError};

/// Encoding byte of chunks with start timestamps.
pub const ENCODING_ST: u8 = 0x11;

/// The sample has no start timestamp.
const TAG_NONE: u8 = 0;
/// The same start timestamp as the previous sample.
const TAG_SAME: u8 = 1;
/// The previous sample's timestamp.
const TAG_PREV_T: u8 = 2;
/// Followed by `t - st` as a varint.
const TAG_DELTA: u8 = 3;

/// Encodes `samples` (strictly increasing timestamps) with their start
/// timestamps (`starts`, aligned with `samples`). Without any start
/// timestamp this is [`encode_best`]; otherwise an [`ENCODING_ST`] chunk
/// wrapping the smallest plain encoding. Returns the encoding byte and the
/// bytes.
pub fn encode_with_starts(samples: &[Sample], starts: &[Option<i64>]) -> (u8, Vec<u8>) {
    let (enc, inner) = encode_best(samples);
    if starts.iter().all(Option::is_none) {
        return (enc, inner);
    }
    let mut out = Vec::with_capacity(inner.len() + samples.len() + 8);
    put_uvarint(&mut out, inner.len() as u64);
    out.push(enc);
    out.extend_from_slice(&inner);
    let mut prev: Option<(i64, Option<i64>)> = None;
    for (i, s) in samples.iter().enumerate() {
        let st = starts.get(i).copied().flatten();
        match st {
            None => out.push(TAG_NONE),
            Some(st) if prev.is_some_and(|(_, pst)| pst == Some(st)) => out.push(TAG_SAME),
            Some(st) if prev.is_some_and(|(pt, _)| pt == st) => out.push(TAG_PREV_T),
            Some(st) => {
                out.push(TAG_DELTA);
                put_varint(&mut out, s.t.wrapping_sub(st));
            }
        }
        prev = Some((s.t, st));
    }
    (ENCODING_ST, out)
}

fn corrupt(detail: String) -> StorageError {
    StorageError::Corrupt(format!("chunk with start timestamps: {detail}"))
}

/// Iterates an [`ENCODING_ST`] chunk: the samples of the wrapped chunk,
/// with [`SampleIter::start_timestamp`] giving each one's start.
#[derive(Clone, Debug)]
pub struct StIter<'a> {
    inner: ChunkIter<'a>,
    column: Decbuf<'a>,
    prev: Option<(i64, Option<i64>)>,
    cur: Option<i64>,
    failed: bool,
}

impl<'a> StIter<'a> {
    /// Opens `data` (the chunk body after its encoding byte). Fails when
    /// the header is malformed or the wrapped encoding is not a plain one;
    /// a damaged column is reported while iterating.
    pub fn new(data: &'a [u8]) -> Result<Self, StorageError> {
        let mut d = Decbuf::new(data);
        let len = d.uvarint().map_err(|e| corrupt(format!("inner chunk length: {e}")))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let enc = d.u8().map_err(|e| corrupt(format!("inner encoding: {e}")))?;
        if !matches!(Encoding::from_byte(enc), Some(Encoding::Xor | Encoding::Dec | Encoding::DecCol | Encoding::Pack)) {
            return Err(corrupt(format!("unsupported inner encoding {enc}")));
        }
        if len > d.remaining() {
            return Err(corrupt(format!("inner chunk of {len} bytes but {} remain", d.remaining())));
        }
        let inner_bytes = d.bytes(len).map_err(|e| corrupt(format!("inner chunk: {e}")))?;
        let inner = ChunkIter::new(enc, inner_bytes)?;
        Ok(StIter { inner, column: d, prev: None, cur: None, failed: false })
    }

    /// Number of samples the wrapped chunk's header claims.
    pub fn num_samples(&self) -> usize {
        self.inner.num_samples()
    }

    /// The start timestamp column entry of the sample at `t`.
    fn read_start(&mut self, t: i64) -> Result<Option<i64>, StorageError> {
        let at = self.column.offset();
        let tag = self.column.u8().map_err(|_| corrupt(format!("start column ends early at byte {at}")))?;
        let st = match tag {
            TAG_NONE => None,
            TAG_SAME => match self.prev {
                Some((_, Some(st))) => Some(st),
                _ => return Err(corrupt(format!("byte {at}: repeats a start timestamp that does not exist"))),
            },
            TAG_PREV_T => match self.prev {
                Some((pt, _)) => Some(pt),
                None => return Err(corrupt(format!("byte {at}: first sample refers to a previous one"))),
            },
            TAG_DELTA => {
                let d = self.column.varint().map_err(|e| corrupt(format!("start delta: {e}")))?;
                Some(t.wrapping_sub(d))
            }
            other => return Err(corrupt(format!("byte {at}: unknown start tag {other}"))),
        };
        self.prev = Some((t, st));
        Ok(st)
    }

    fn step(&mut self) -> Result<Option<Sample>, StorageError> {
        self.cur = None;
        if self.failed {
            return Ok(None);
        }
        match self.inner.next()? {
            Some(s) => {
                self.cur = self.read_start(s.t)?;
                Ok(Some(s))
            }
            None if !self.column.is_empty() => {
                Err(corrupt(format!("{} bytes after the last start timestamp", self.column.remaining())))
            }
            None => Ok(None),
        }
    }
}

impl SampleIter for StIter<'_> {
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        let r = self.step();
        if r.is_err() {
            self.failed = true;
            self.cur = None;
        }
        r
    }

    // `seek` keeps the default (repeated `next`): the column is read in
    // step with every sample.

    fn start_timestamp(&self) -> Option<i64> {
        self.cur
    }

    fn has_start_timestamps(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(enc: u8, data: &[u8]) -> Result<Vec<(Sample, Option<i64>)>, StorageError> {
        let mut it = ChunkIter::new(enc, data)?;
        let mut out = Vec::new();
        while let Some(s) = it.next()? {
            out.push((s, it.start_timestamp()));
        }
        Ok(out)
    }

    #[test]
    fn common_patterns_cost_one_byte_per_sample() {
        let samples: Vec<Sample> = (1..=100).map(|i| Sample::new(i * 15_000, i as f64)).collect();
        let (_, plain) = encode_best(&samples);
        // Cumulative: one start for all samples.
        let cumulative: Vec<Option<i64>> = vec![Some(1_000); 100];
        let (enc, data) = encode_with_starts(&samples, &cumulative);
        assert_eq!(enc, ENCODING_ST);
        assert!(data.len() <= plain.len() + 100 + 8, "{} vs {}", data.len(), plain.len());
        // Delta: each start is the previous sample's time.
        let delta: Vec<Option<i64>> = (0..100).map(|i| Some(i * 15_000)).collect();
        let (_, data2) = encode_with_starts(&samples, &delta);
        assert!(data2.len() <= plain.len() + 100 + 8);
        let got = read_all(enc, &data2).unwrap();
        assert_eq!(got.iter().map(|x| x.1).collect::<Vec<_>>(), delta);
        // No start timestamps: the plain encoding.
        assert_eq!(encode_with_starts(&samples, &[None; 100]), encode_best(&samples));
    }

    #[test]
    fn corrupt_chunks_are_errors() {
        let samples: Vec<Sample> = (0..5).map(|i| Sample::new(i * 10, 1.0)).collect();
        let starts = [Some(-5), None, Some(3), Some(3), Some(30)];
        let (enc, data) = encode_with_starts(&samples, &starts);
        assert_eq!(read_all(enc, &data).unwrap().len(), 5);
        // Column cut short, extra bytes, bad tag, bad header.
        assert!(read_all(enc, &data[..data.len() - 1]).is_err());
        let mut long = data.clone();
        long.push(0);
        assert!(read_all(enc, &long).is_err());
        let mut bad_tag = data.clone();
        let n = bad_tag.len();
        bad_tag[n - 2] = 9;
        assert!(read_all(enc, &bad_tag).is_err());
        assert!(read_all(enc, &[]).is_err());
        assert!(read_all(enc, &[200]).is_err());
        let mut nested = data.clone();
        nested[1] = ENCODING_ST;
        assert!(read_all(enc, &nested).is_err());
    }

    /// Blocks written before the packed decimal chunk wrap interleaved
    /// (0x10) or columnar (0x12) ones; they must keep reading.
    #[test]
    fn older_decimal_inner_chunks_still_read() {
        use super::super::{dec, deccol, ENCODING_DEC, ENCODING_DEC_COL, ENCODING_PACK};
        let samples: Vec<Sample> = (0..20).map(|i| Sample::new(i * 15_000, 0.5 * i as f64)).collect();
        type Encoder = fn(&[Sample]) -> Option<Vec<u8>>;
        for (enc, encode) in [(ENCODING_DEC, dec::encode as Encoder), (ENCODING_DEC_COL, deccol::encode)] {
            let inner = encode(&samples).unwrap();
            let mut data = Vec::new();
            put_uvarint(&mut data, inner.len() as u64);
            data.push(enc);
            data.extend_from_slice(&inner);
            data.push(TAG_DELTA);
            put_varint(&mut data, 100);
            data.extend(std::iter::repeat_n(TAG_SAME, 19));
            let got = read_all(ENCODING_ST, &data).unwrap();
            assert_eq!(got.len(), 20);
            for ((s, st), want) in got.iter().zip(&samples) {
                assert!(s.bit_eq(want));
                assert_eq!(*st, Some(-100));
            }
        }
        // New chunks wrap the packed layout.
        let (_, new) = encode_with_starts(&samples, &[Some(-100); 20]);
        assert_eq!(new[1], ENCODING_PACK);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trips(
            points in proptest::collection::vec((1i64..100_000, any::<u64>(), proptest::option::of(prop_oneof![
                Just(0i64), Just(-1), any::<i64>(), -100_000i64..100_000,
            ])), 1..130),
            start in any::<i64>(),
        ) {
            let mut t = start;
            let mut samples = Vec::new();
            let mut starts = Vec::new();
            for (i, (dt, v, st)) in points.iter().enumerate() {
                if i > 0 {
                    t = match t.checked_add(*dt) { Some(x) => x, None => break };
                }
                samples.push(Sample::new(t, f64::from_bits(*v)));
                // Mix the patterns: same as before, previous time, other.
                let st = match st {
                    Some(0) => starts.last().copied().flatten(),
                    Some(-1) => samples.len().checked_sub(2).map(|j| samples[j].t),
                    other => other.map(|x| t.wrapping_sub(x)),
                };
                starts.push(st);
            }
            let (enc, data) = encode_with_starts(&samples, &starts);
            let got = read_all(enc, &data).unwrap();
            prop_assert_eq!(got.len(), samples.len());
            for ((s, st), (w, wst)) in got.iter().zip(samples.iter().zip(&starts)) {
                prop_assert_eq!((s.t, s.v.to_bits(), *st), (w.t, w.v.to_bits(), *wst));
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = read_all(ENCODING_ST, &bytes);
        }
    }
}
