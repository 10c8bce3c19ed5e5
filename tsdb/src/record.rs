//! WAL record payloads of the head: series definitions and samples.
//!
//! The WAL ([`crate::wal`]) frames and checksums opaque bytes; this module
//! gives them meaning. Every payload starts with a one-byte kind:
//!
//! - `1` series: `count: uvarint`, then per series `ref: uvarint`,
//!   `nlabels: uvarint`, and `nlabels` × (`name`, `value`) as
//!   uvarint-length-prefixed UTF-8 strings, labels sorted by name;
//! - `2` samples: `count: uvarint`, then (if count > 0) `base_t: varint`,
//!   then per sample `ref: uvarint`, `t - base_t: varint`, `value: u64 BE`
//!   (the IEEE-754 bits, so NaN payloads such as the staleness marker
//!   survive);
//! - `3` commit: a series section followed by a samples section (each
//!   without its kind byte), written as one record so that a commit is
//!   all-or-nothing on recovery;
//! - `4` commit with start timestamps: as `3`, followed by a start section:
//!   `count: uvarint`, then per entry `index: uvarint` (the sample's
//!   position in the samples section, strictly increasing) and
//!   `t - st: varint` (how long before its sample the counter started).
//!   Commits without start timestamps are still written as `3`, so WALs
//!   stay readable by older versions unless start timestamps are used.

use crate::encoding::{DecodeError, Decbuf, Encbuf};
use model::{Label, Labels};

/// A series definition: the reference the head gave it and its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefSeries {
    /// The head's series reference.
    pub series_ref: u64,
    /// The series' labels.
    pub labels: Labels,
}

/// A sample of a series known by reference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefSample {
    /// The head's series reference.
    pub series_ref: u64,
    /// Timestamp, ms.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// The start timestamp of a sample in a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleStart {
    /// Position of the sample in the record's samples.
    pub sample: usize,
    /// Its start timestamp, ms.
    pub st: i64,
}

/// The kind byte opening a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKind {
    /// Series definitions only.
    Series = 1,
    /// Samples only.
    Samples = 2,
    /// Series then samples of one commit.
    Commit = 3,
    /// Series, samples and start timestamps of one commit.
    CommitWithStarts = 4,
}

/// A payload that does not decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The payload is empty.
    #[error("empty WAL record")]
    Empty,
    /// The kind byte is unknown.
    #[error("unknown WAL record kind {0}")]
    UnknownKind(u8),
    /// The body is malformed (offset within the payload).
    #[error("malformed WAL record: {0}")]
    Decode(#[from] DecodeError),
}

/// Encodes a series record into `buf` (cleared first).
pub fn encode_series(series: &[RefSeries], buf: &mut Encbuf) {
    buf.reset();
    buf.put_u8(RecordKind::Series as u8);
    put_series(series, buf);
}

/// Encodes a samples record into `buf` (cleared first).
pub fn encode_samples(samples: &[RefSample], buf: &mut Encbuf) {
    buf.reset();
    buf.put_u8(RecordKind::Samples as u8);
    put_samples(samples, buf);
}

/// Encodes one commit (new series and samples) into `buf` (cleared first).
pub fn encode_commit(series: &[RefSeries], samples: &[RefSample], buf: &mut Encbuf) {
    buf.reset();
    buf.put_u8(RecordKind::Commit as u8);
    put_series(series, buf);
    put_samples(samples, buf);
}

/// Encodes one commit whose samples may have start timestamps (`starts`:
/// sorted by sample position, each position below `samples.len()`). Without
/// start timestamps this is exactly [`encode_commit`].
pub fn encode_commit_with_starts(
    series: &[RefSeries],
    samples: &[RefSample],
    starts: &[SampleStart],
    buf: &mut Encbuf,
) {
    if starts.is_empty() {
        return encode_commit(series, samples, buf);
    }
    buf.reset();
    buf.put_u8(RecordKind::CommitWithStarts as u8);
    put_series(series, buf);
    put_samples(samples, buf);
    buf.put_uvarint(starts.len() as u64);
    for s in starts {
        let t = samples.get(s.sample).map_or(0, |x| x.t);
        buf.put_uvarint(s.sample as u64);
        buf.put_varint(t.wrapping_sub(s.st));
    }
}

fn put_series(series: &[RefSeries], buf: &mut Encbuf) {
    buf.put_uvarint(series.len() as u64);
    for s in series {
        buf.put_uvarint(s.series_ref);
        buf.put_uvarint(s.labels.len() as u64);
        for l in &s.labels {
            buf.put_uvarint_str(&l.name);
            buf.put_uvarint_str(&l.value);
        }
    }
}

fn put_samples(samples: &[RefSample], buf: &mut Encbuf) {
    buf.put_uvarint(samples.len() as u64);
    let Some(first) = samples.first() else { return };
    buf.put_varint(first.t);
    for s in samples {
        buf.put_uvarint(s.series_ref);
        buf.put_varint(s.t.wrapping_sub(first.t));
        buf.put_be64(s.v.to_bits());
    }
}

/// Decodes a payload, appending its series and samples to the given
/// vectors. Returns the payload's kind.
pub fn decode(
    payload: &[u8],
    series: &mut Vec<RefSeries>,
    samples: &mut Vec<RefSample>,
) -> Result<RecordKind, RecordError> {
    let mut starts = Vec::new();
    decode_with_starts(payload, series, samples, &mut starts)
}

/// Decodes a payload like [`decode`], also appending the start timestamps
/// of a [`RecordKind::CommitWithStarts`] record to `starts` (their sample
/// positions count from the first sample this payload added).
pub fn decode_with_starts(
    payload: &[u8],
    series: &mut Vec<RefSeries>,
    samples: &mut Vec<RefSample>,
    starts: &mut Vec<SampleStart>,
) -> Result<RecordKind, RecordError> {
    let mut d = Decbuf::new(payload);
    if d.is_empty() {
        return Err(RecordError::Empty);
    }
    let kind = match d.u8()? {
        1 => RecordKind::Series,
        2 => RecordKind::Samples,
        3 => RecordKind::Commit,
        4 => RecordKind::CommitWithStarts,
        k => return Err(RecordError::UnknownKind(k)),
    };
    if matches!(kind, RecordKind::Series | RecordKind::Commit | RecordKind::CommitWithStarts) {
        get_series(&mut d, series)?;
    }
    let first_sample = samples.len();
    if matches!(kind, RecordKind::Samples | RecordKind::Commit | RecordKind::CommitWithStarts) {
        get_samples(&mut d, samples)?;
    }
    if kind == RecordKind::CommitWithStarts {
        get_starts(&mut d, &samples[first_sample..], starts)?;
    }
    if !d.is_empty() {
        return Err(d.invalid(format!("{} trailing bytes", d.remaining())).into());
    }
    Ok(kind)
}

fn get_str(d: &mut Decbuf<'_>) -> Result<String, DecodeError> {
    let at = d.offset();
    let b = d.uvarint_bytes()?;
    std::str::from_utf8(b)
        .map(str::to_owned)
        .map_err(|_| DecodeError::invalid(at, "label is not valid UTF-8"))
}

fn get_series(d: &mut Decbuf<'_>, out: &mut Vec<RefSeries>) -> Result<(), DecodeError> {
    // Each series takes at least 2 bytes: bounds the pre-allocation.
    let n = d.uvarint_len(2)?;
    out.reserve(n);
    for _ in 0..n {
        let series_ref = d.uvarint()?;
        let nl = d.uvarint_len(2)?;
        let mut labels = Vec::with_capacity(nl);
        for _ in 0..nl {
            let name = get_str(d)?;
            let value = get_str(d)?;
            labels.push(Label { name, value });
        }
        out.push(RefSeries { series_ref, labels: Labels::new(labels) });
    }
    Ok(())
}

fn get_samples(d: &mut Decbuf<'_>, out: &mut Vec<RefSample>) -> Result<(), DecodeError> {
    // Each sample takes at least 10 bytes.
    let n = d.uvarint_len(10)?;
    if n == 0 {
        return Ok(());
    }
    let base = d.varint()?;
    out.reserve(n);
    for _ in 0..n {
        let series_ref = d.uvarint()?;
        let t = base.wrapping_add(d.varint()?);
        let v = f64::from_bits(d.be64()?);
        out.push(RefSample { series_ref, t, v });
    }
    Ok(())
}

fn get_starts(d: &mut Decbuf<'_>, samples: &[RefSample], out: &mut Vec<SampleStart>) -> Result<(), DecodeError> {
    // Each entry takes at least 2 bytes.
    let n = d.uvarint_len(2)?;
    if n > samples.len() {
        return Err(d.invalid(format!("{n} start timestamps for {} samples", samples.len())));
    }
    out.reserve(n);
    let mut next_min = 0usize;
    for _ in 0..n {
        let at = d.offset();
        let i = usize::try_from(d.uvarint()?).unwrap_or(usize::MAX);
        if i < next_min || i >= samples.len() {
            return Err(DecodeError::invalid(at, format!("start timestamp for sample {i} out of order or out of range ({} samples)", samples.len())));
        }
        next_min = i + 1;
        let st = samples[i].t.wrapping_sub(d.varint()?);
        out.push(SampleStart { sample: i, st });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_labels() -> impl Strategy<Value = Labels> {
        proptest::collection::btree_map("[a-z_]{1,6}", ".{0,8}", 0..5)
            .prop_map(Labels::from_pairs)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn commit_round_trips(
            series in proptest::collection::vec((any::<u64>(), arb_labels()), 0..5),
            samples in proptest::collection::vec((any::<u64>(), any::<i64>(), any::<u64>()), 0..20),
        ) {
            let series: Vec<RefSeries> = series.into_iter()
                .map(|(r, l)| RefSeries { series_ref: r, labels: l }).collect();
            let samples: Vec<RefSample> = samples.into_iter()
                .map(|(r, t, v)| RefSample { series_ref: r, t, v: f64::from_bits(v) }).collect();
            let mut buf = Encbuf::new();
            encode_commit(&series, &samples, &mut buf);
            let (mut s2, mut x2) = (Vec::new(), Vec::new());
            prop_assert_eq!(decode(buf.get(), &mut s2, &mut x2).unwrap(), RecordKind::Commit);
            prop_assert_eq!(&s2, &series);
            prop_assert_eq!(x2.len(), samples.len());
            for (a, b) in x2.iter().zip(&samples) {
                prop_assert_eq!((a.series_ref, a.t, a.v.to_bits()), (b.series_ref, b.t, b.v.to_bits()));
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let (mut s, mut x, mut st) = (Vec::new(), Vec::new(), Vec::new());
            let _ = decode(&bytes, &mut s, &mut x);
            let _ = decode_with_starts(&bytes, &mut s, &mut x, &mut st);
        }

        #[test]
        fn commit_with_starts_round_trips(
            series in proptest::collection::vec((any::<u64>(), arb_labels()), 0..3),
            samples in proptest::collection::vec((any::<u64>(), any::<i64>(), any::<u64>(), proptest::option::of(any::<i64>())), 0..20),
        ) {
            let series: Vec<RefSeries> = series.into_iter()
                .map(|(r, l)| RefSeries { series_ref: r, labels: l }).collect();
            let refs: Vec<RefSample> = samples.iter()
                .map(|&(r, t, v, _)| RefSample { series_ref: r, t, v: f64::from_bits(v) }).collect();
            let starts: Vec<SampleStart> = samples.iter().enumerate()
                .filter_map(|(i, x)| x.3.map(|st| SampleStart { sample: i, st })).collect();
            let mut buf = Encbuf::new();
            encode_commit_with_starts(&series, &refs, &starts, &mut buf);
            // Records decode after whatever the caller already collected.
            let (mut s2, mut x2, mut st2) = (Vec::new(), vec![RefSample { series_ref: 0, t: 0, v: 0.0 }], Vec::new());
            let kind = decode_with_starts(buf.get(), &mut s2, &mut x2, &mut st2).unwrap();
            let want = if starts.is_empty() { RecordKind::Commit } else { RecordKind::CommitWithStarts };
            prop_assert_eq!(kind, want);
            prop_assert_eq!(&s2, &series);
            prop_assert_eq!(x2.len(), refs.len() + 1);
            prop_assert_eq!(&st2, &starts);
            // The plain decoder reads it too, without the start timestamps.
            let (mut s3, mut x3) = (Vec::new(), Vec::new());
            prop_assert_eq!(decode(buf.get(), &mut s3, &mut x3).unwrap(), want);
            prop_assert_eq!(x3.len(), refs.len());
        }
    }

    #[test]
    fn series_and_samples_records() {
        let mut buf = Encbuf::new();
        let l = Labels::from_pairs([("__name__", "up")]);
        encode_series(&[RefSeries { series_ref: 7, labels: l.clone() }], &mut buf);
        let (mut s, mut x) = (Vec::new(), Vec::new());
        assert_eq!(decode(buf.get(), &mut s, &mut x).unwrap(), RecordKind::Series);
        assert_eq!(s[0].labels, l);
        encode_samples(&[RefSample { series_ref: 7, t: -5, v: 1.5 }], &mut buf);
        assert_eq!(decode(buf.get(), &mut s, &mut x).unwrap(), RecordKind::Samples);
        assert_eq!(x, vec![RefSample { series_ref: 7, t: -5, v: 1.5 }]);
        assert!(matches!(decode(&[9], &mut s, &mut x), Err(RecordError::UnknownKind(9))));
        // Start timestamps pointing past the samples, or out of order.
        let one = [RefSample { series_ref: 7, t: 100, v: 1.0 }];
        encode_commit_with_starts(&[], &one, &[SampleStart { sample: 0, st: 40 }], &mut buf);
        let mut st = Vec::new();
        decode_with_starts(buf.get(), &mut s, &mut x, &mut st).unwrap();
        assert_eq!(st, vec![SampleStart { sample: 0, st: 40 }]);
        let mut bad = buf.get().to_vec();
        let n = bad.len();
        bad[n - 2] = 1; // index 1 of 1 sample
        assert!(matches!(decode_with_starts(&bad, &mut s, &mut x, &mut st), Err(RecordError::Decode(_))));
        encode_commit_with_starts(&[], &one, &[SampleStart { sample: 0, st: 40 }, SampleStart { sample: 0, st: 40 }], &mut buf);
        assert!(matches!(decode_with_starts(buf.get(), &mut s, &mut x, &mut st), Err(RecordError::Decode(_))));
        assert!(matches!(decode(&[], &mut s, &mut x), Err(RecordError::Empty)));
    }
}
