//! WAL payloads. The WAL (`tsdb::wal`) frames and checksums opaque
//! records; this module gives them meaning.
//!
//! A push record holds every entry a push accepted, so a push is durable
//! all at once or not at all:
//!
//! ```text
//! type        u8 = 1
//! streams     uvarint count, then per stream:
//!   labels    uvarint count, (uvarint-str name, uvarint-str value)*
//!   entries   uvarint count, then per entry:
//!     ts        varint
//!     line      uvarint-str
//!     metadata  uvarint count, (uvarint-str name, uvarint-str value)*
//! ```

use model::{Label, Labels, LogEntry};
use tsdb::encoding::{Decbuf, DecodeError, Encbuf};

/// Type byte of a push record.
pub(crate) const PUSH: u8 = 1;

fn put_labels(e: &mut Encbuf, l: &Labels) {
    e.put_uvarint(l.len() as u64);
    for x in l.iter() {
        e.put_uvarint_str(&x.name);
        e.put_uvarint_str(&x.value);
    }
}

fn get_labels(d: &mut Decbuf<'_>) -> Result<Labels, DecodeError> {
    let n = d.uvarint_len(2)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let name = d.uvarint_str()?;
        let value = d.uvarint_str()?;
        v.push(Label::new(name, value));
    }
    let at = d.offset();
    Labels::from_sorted(v).ok_or_else(|| DecodeError::invalid(at, "labels not sorted and unique"))
}

/// Encodes a push record into `e` (cleared first).
pub(crate) fn encode_push<'a, S, E>(e: &mut Encbuf, streams: S)
where
    S: ExactSizeIterator<Item = (&'a Labels, E)>,
    E: ExactSizeIterator<Item = &'a LogEntry>,
{
    e.reset();
    e.put_u8(PUSH);
    e.put_uvarint(streams.len() as u64);
    for (labels, entries) in streams {
        put_labels(e, labels);
        e.put_uvarint(entries.len() as u64);
        for x in entries {
            e.put_varint(x.ts);
            e.put_uvarint_str(&x.line);
            put_labels(e, &x.metadata);
        }
    }
}

/// Decodes a push record.
pub(crate) fn decode_push(payload: &[u8]) -> Result<Vec<(Labels, Vec<LogEntry>)>, DecodeError> {
    let mut d = Decbuf::new(payload);
    let t = d.u8()?;
    if t != PUSH {
        return Err(DecodeError::invalid(0, format!("unknown record type {t}")));
    }
    let n = d.uvarint_len(2)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let labels = get_labels(&mut d)?;
        let k = d.uvarint_len(3)?;
        let mut entries = Vec::with_capacity(k);
        for _ in 0..k {
            let ts = d.varint()?;
            let line = d.uvarint_str()?.to_string();
            let metadata = get_labels(&mut d)?;
            entries.push(LogEntry { ts, line, metadata });
        }
        out.push((labels, entries));
    }
    if !d.is_empty() {
        return Err(d.invalid(format!("{} trailing bytes", d.remaining())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn roundtrip(streams in proptest::collection::vec(
            (proptest::collection::vec(("[a-z]{1,3}", ".{0,4}"), 0..4),
             proptest::collection::vec((any::<i64>(), ".{0,20}", proptest::collection::vec(("[a-z]{1,2}", "[a-z]{0,2}"), 0..2)), 0..5)),
            0..4)) {
            let streams: Vec<(Labels, Vec<LogEntry>)> = streams.into_iter().map(|(l, e)| {
                (Labels::from_pairs(l), e.into_iter().map(|(ts, line, m)| LogEntry { ts, line, metadata: Labels::from_pairs(m) }).collect())
            }).collect();
            let mut e = Encbuf::new();
            encode_push(&mut e, streams.iter().map(|(l, v)| (l, v.iter())));
            prop_assert_eq!(decode_push(e.get()).unwrap(), streams);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_push(&b);
            let mut p = vec![PUSH];
            p.extend_from_slice(&b);
            let _ = decode_push(&p);
        }
    }
}
