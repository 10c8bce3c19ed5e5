//! The block index: which series exist, their labels, where their chunks
//! are, and the inverted index from label pairs to series.
//!
//! The layout follows the ideas of Prometheus's index format v2 (a sorted
//! symbol table, series entries referring to symbols, postings lists per
//! label pair, a postings offset table and a table of contents, a CRC32 per
//! section) with two changes that make it smaller: series are addressed by
//! their byte offset rather than a 16-byte-aligned slot, and postings lists
//! are delta-encoded varints rather than 4-byte integers. It is therefore
//! not byte-compatible with Prometheus; `docs/format/index.md` specifies it.
//!
//! [`IndexWriter`] builds an index from series added in label order;
//! [`IndexReader`] reads one from a memory map and evaluates label
//! matchers with postings set operations ([`postings`]).

pub mod postings;
mod reader;
mod writer;

pub use postings::SeriesRef;
pub use reader::IndexReader;
pub use writer::{IndexStats, IndexWriter};

use crate::chunks::ChunkRef;
use crate::fs::IoError;
use std::path::PathBuf;

/// Magic number at the start of an index file ("TSIX").
pub const MAGIC_INDEX: u32 = 0x5453_4958;
/// Index format version written by this crate.
pub const INDEX_VERSION: u8 = 1;
/// Bytes of the table of contents at the end of the file.
pub const TOC_SIZE: usize = 4 * 8 + 4;
/// Bytes of the file header (magic + version).
pub const HEADER_SIZE: usize = 5;

/// Where one chunk of a series is and which time range it covers
/// (inclusive, milliseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Timestamp of the first sample.
    pub mint: i64,
    /// Timestamp of the last sample.
    pub maxt: i64,
    /// Location in the block's chunk segments.
    pub chunk_ref: ChunkRef,
}

impl ChunkMeta {
    /// Whether the chunk may hold samples in `[mint, maxt]`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.mint <= maxt && mint <= self.maxt
    }
}

/// Errors writing or reading an index file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// An I/O failure, naming the file.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The file is corrupt at the given offset.
    #[error("corrupt index {} at offset {offset}: {detail}", path.display())]
    Corrupt {
        /// The index file.
        path: PathBuf,
        /// Byte offset within the file.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// Series were added out of order, or with invalid labels or chunks.
    #[error("invalid series {series}: {detail}")]
    InvalidSeries {
        /// The offending series' labels.
        series: String,
        /// What is wrong.
        detail: String,
    },
    /// A series reference does not point at a series entry.
    #[error("invalid series reference {0}")]
    BadRef(SeriesRef),
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{matches_all, Labels, MatchType, Matcher};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn write(dir: &std::path::Path, series: &BTreeMap<Labels, Vec<ChunkMeta>>) -> IndexReader {
        let p = dir.join("index");
        let mut w = IndexWriter::new(&p);
        for (l, c) in series {
            w.add_series(l, c).unwrap();
        }
        let stats = w.finish().unwrap();
        assert_eq!(stats.series, series.len() as u64);
        IndexReader::open(&p).unwrap()
    }

    fn label_set() -> impl Strategy<Value = Labels> {
        proptest::collection::vec(("[a-d]", "[a-c]{0,2}"), 1..4).prop_map(Labels::from_pairs)
    }

    fn matcher() -> impl Strategy<Value = Matcher> {
        (
            0..4u8,
            "[a-e]",
            prop_oneof![
                "[a-c]{0,2}",
                Just("a|b".to_string()),
                Just(".*".to_string()),
                Just("a.*".to_string()),
                Just(".+".to_string())
            ],
        )
            .prop_map(|(k, n, v)| {
                let kind =
                    [MatchType::Equal, MatchType::NotEqual, MatchType::Regex, MatchType::NotRegex]
                        [k as usize];
                Matcher::new(kind, n, v).unwrap()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn round_trip_and_matchers(
            sets in proptest::collection::btree_set(label_set(), 0..40),
            metas in proptest::collection::vec((any::<i32>(), 0u32..100_000, any::<u32>()), 0..5),
            queries in proptest::collection::vec(proptest::collection::vec(matcher(), 1..4), 1..8),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut chunks: Vec<ChunkMeta> = Vec::new();
            let mut t = -1_000_000_000i64;
            for (gap, span, r) in metas {
                let mint = t + i64::from(gap).abs() + 1;
                let maxt = mint + i64::from(span);
                t = maxt;
                chunks.push(ChunkMeta { mint, maxt, chunk_ref: u64::from(r) << 3 });
            }
            let series: BTreeMap<Labels, Vec<ChunkMeta>> = sets.into_iter().map(|l| (l, chunks.clone())).collect();
            let r = write(dir.path(), &series);
            let all = r.all_postings().unwrap();
            prop_assert_eq!(all.len(), series.len());
            let read: Vec<(Labels, Vec<ChunkMeta>)> = all.iter().map(|&s| r.series(s).unwrap()).collect();
            let want: Vec<(Labels, Vec<ChunkMeta>)> = series.clone().into_iter().collect();
            prop_assert_eq!(&read, &want);
            for q in &queries {
                let got: Vec<Labels> = r.postings_for_matchers(q).unwrap().into_iter().map(|s| r.series(s).unwrap().0).collect();
                let exp: Vec<Labels> = series.keys().filter(|l| matches_all(q, l)).cloned().collect();
                prop_assert_eq!(got, exp, "matchers {:?}", q);
            }
            let mut names: Vec<String> = series.keys().flat_map(|l| l.iter().map(|x| x.name.clone()).collect::<Vec<_>>()).collect();
            names.sort();
            names.dedup();
            prop_assert_eq!(r.label_names(), names);
        }
    }

    #[test]
    fn rejects_out_of_order_and_overlaps() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = IndexWriter::new(&dir.path().join("index"));
        let b = Labels::from_pairs([("a", "2")]);
        w.add_series(&b, &[]).unwrap();
        assert!(w.add_series(&Labels::from_pairs([("a", "1")]), &[]).is_err());
        assert!(w.add_series(&b, &[]).is_err());
        let c = ChunkMeta { mint: 0, maxt: 10, chunk_ref: 8 };
        let e = w.add_series(&Labels::from_pairs([("a", "3")]), &[c, c]).unwrap_err();
        assert!(e.to_string().contains("overlaps"), "{e}");
    }

    #[test]
    fn corruption_is_reported_with_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut series = BTreeMap::new();
        for i in 0..50 {
            let l = Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
            series.insert(l, vec![ChunkMeta { mint: i, maxt: i + 10, chunk_ref: 8 }]);
        }
        write(dir.path(), &series);
        let p = dir.path().join("index");
        let orig = std::fs::read(&p).unwrap();
        let mut seen_errors = 0;
        // Flip each byte in turn: opening or reading everything must either
        // succeed with the same content or fail with a clear error.
        for pos in (0..orig.len()).step_by(3) {
            let mut b = orig.clone();
            b[pos] ^= 0x5a;
            std::fs::write(&p, &b).unwrap();
            let res = IndexReader::open(&p).and_then(|r| {
                let all = r.all_postings()?;
                let mut out = Vec::new();
                for s in all {
                    out.push(r.series(s)?);
                }
                for i in 0..50 {
                    r.postings("i", &i.to_string())?;
                }
                Ok(out)
            });
            match res {
                Ok(out) => prop_assert_eq_like(&out, &series),
                Err(e) => {
                    seen_errors += 1;
                    let msg = e.to_string();
                    assert!(msg.contains("index") && msg.contains("offset"), "{msg}");
                }
            }
        }
        assert!(seen_errors > orig.len() / 4);
    }

    fn prop_assert_eq_like(
        out: &[(Labels, Vec<ChunkMeta>)],
        series: &BTreeMap<Labels, Vec<ChunkMeta>>,
    ) {
        let want: Vec<(Labels, Vec<ChunkMeta>)> = series.clone().into_iter().collect();
        assert_eq!(out, &want[..]);
    }
}
