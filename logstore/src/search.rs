//! Line search pushed down from a query: lines must contain every one of a
//! few literal substrings (`model::LogSelectHints::line_contains`).
//!
//! Instead of testing each line, the decoded lines of a block — one string
//! — are searched as a whole for the first needle with a `memmem` finder
//! built once per query; line boundaries are looked up only around hits.
//! On selective filters almost all of a block is skipped at memchr speed.
//! Blocks whose trigram filter (`chunk::filter`) rules a needle out are not
//! even decompressed, and a decompressed block whose lines region holds no
//! occurrence of the first needle ([`LineSearch::first_hit`]) is not
//! decoded any further (no column parsing, no UTF-8 check).

use crate::chunk::block::DecodedBlock;
use memchr::memmem::Finder;

/// Compiled needles of one query.
#[derive(Debug)]
pub(crate) struct LineSearch {
    /// Longest needle first: it is searched block-wide, the others only
    /// inside the lines it hits.
    finders: Vec<Finder<'static>>,
}

impl LineSearch {
    /// A search for lines containing all `needles`, or `None` when there is
    /// nothing to search for (no needles, or only empty ones).
    pub fn new(needles: &[String]) -> Option<LineSearch> {
        let mut v: Vec<&str> = needles
            .iter()
            .map(String::as_str)
            .filter(|n| !n.is_empty())
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        v.dedup();
        Some(LineSearch {
            finders: v.into_iter().map(|n| Finder::new(n).into_owned()).collect(),
        })
    }

    /// The needles, longest first.
    #[cfg(test)]
    pub fn needles(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.finders.iter().map(Finder::needle)
    }

    /// Whether a block with this trigram filter may hold a matching line
    /// (`false` only when some needle surely does not occur in it).
    pub fn may_match(&self, filter: &[u8]) -> bool {
        self.finders
            .iter()
            .all(|f| crate::chunk::filter::may_contain(filter, f.needle()))
    }

    /// Offset of the first occurrence of the longest needle in a block's
    /// raw lines region (any bytes), or `None`: then no line of the block
    /// can match. A hit may still straddle lines or lie outside the queried
    /// time range.
    pub fn first_hit(&self, lines: &[u8]) -> Option<usize> {
        self.finders.first().and_then(|f| f.find(lines))
    }

    /// Appends to `out` the indices in `lo..hi` of the entries of `b` whose
    /// line contains every needle, in increasing order. The search starts
    /// at byte `from` of the lines (the block's [`LineSearch::first_hit`],
    /// or 0).
    pub fn matching(
        &self,
        b: &DecodedBlock,
        lo: usize,
        hi: usize,
        from: usize,
        out: &mut Vec<u32>,
    ) {
        let Some((first, rest)) = self.finders.split_first() else {
            return;
        };
        if lo >= hi {
            return;
        }
        let text = b.lines.as_bytes();
        let ends = &b.ends[..hi];
        let sep = b.sep as usize;
        let start_of = |i: usize| {
            if i == 0 {
                0
            } else {
                ends[i - 1] as usize + sep
            }
        };
        let limit = (ends[hi - 1] as usize).min(text.len());
        let n = first.needle().len();
        let mut pos = start_of(lo).max(from);
        // Entries before `cursor` end at or before `pos`.
        let mut cursor = lo;
        while pos < limit {
            let Some(off) = first.find(&text[pos..limit]) else {
                break;
            };
            let hit = pos + off;
            cursor += ends[cursor..].partition_point(|&e| e as usize <= hit);
            // `hit < limit = ends[hi - 1]`, so some line ends after it.
            let Some(&end) = ends.get(cursor) else { break };
            let end = end as usize;
            // With separators, a hit may start on the separator before
            // line `cursor`.
            if hit + n <= end && hit >= start_of(cursor) {
                let line = &text[start_of(cursor)..end];
                if rest.iter().all(|f| f.find(line).is_some()) {
                    out.push(cursor as u32);
                }
                // The next line starts at `end`; a line whose end equals
                // `end` (empty lines) cannot hold the needle either.
                pos = end;
            } else {
                // The hit straddles a line boundary (or starts on a
                // separator): look again just after its start.
                pos = hit + 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::block::{encode_raw, BlockFormat};
    use model::Labels;
    use proptest::prelude::*;

    /// A block of these lines, as a head snapshot (back to back) or
    /// decoded from version 3 (newline-terminated when no line holds a
    /// newline).
    fn block(lines: &[&str], stored: bool) -> DecodedBlock {
        let mut b = DecodedBlock::default();
        let e = Labels::empty();
        let entries = lines.iter().enumerate().map(|(i, l)| (i as i64, *l, &e));
        if stored {
            let mut raw = Vec::new();
            if encode_raw(entries, &mut raw).is_some() {
                b.decode_raw(raw, BlockFormat::V3).unwrap();
            }
        } else {
            b.fill_from(entries);
        }
        b
    }

    fn naive(b: &DecodedBlock, needles: &[String], lo: usize, hi: usize) -> Vec<u32> {
        (lo..hi)
            .filter(|&i| needles.iter().all(|n| b.line(i).contains(n.as_str())))
            .map(|i| i as u32)
            .collect()
    }

    #[test]
    fn finds_lines_not_straddling_hits() {
        for stored in [false, true] {
            let b = block(
                &[
                    "queue",
                    " full",
                    "queue full!",
                    "",
                    "a queue full",
                    "queue fu",
                ],
                stored,
            );
            let s = LineSearch::new(&["queue full".into()]).unwrap();
            let mut out = Vec::new();
            s.matching(&b, 0, b.len(), 0, &mut out);
            assert_eq!(out, [2, 4]);
            out.clear();
            s.matching(&b, 3, 4, 0, &mut out);
            assert!(out.is_empty());
            out.clear();
            s.matching(&b, 4, 6, 0, &mut out);
            assert_eq!(out, [4]);
            // Starting at the first hit gives the same.
            let at = s.first_hit(b.lines.as_bytes()).unwrap();
            out.clear();
            s.matching(&b, 0, b.len(), at, &mut out);
            assert_eq!(out, [2, 4]);
            let two =
                LineSearch::new(&["a".into(), "queue".into(), String::new(), "a".into()]).unwrap();
            assert_eq!(two.needles().count(), 2);
            assert_eq!(two.needles().next(), Some(&b"queue"[..]));
            out.clear();
            two.matching(&b, 0, b.len(), 0, &mut out);
            assert_eq!(out, [4]);
        }
        assert!(LineSearch::new(&[String::new()]).is_none());
        assert!(LineSearch::new(&[]).is_none());
    }

    #[test]
    fn needles_with_newlines_never_match_across_terminated_lines() {
        let b = block(&["ab", "cd", "a"], true);
        assert_eq!(b.sep, 1);
        for needle in ["b\nc", "\ncd", "\n", "d\n"] {
            let s = LineSearch::new(&[needle.into()]).unwrap();
            assert!(
                s.first_hit(b.lines.as_bytes()).is_some(),
                "{needle:?} is in the raw region"
            );
            let mut out = Vec::new();
            s.matching(&b, 0, b.len(), 0, &mut out);
            assert!(out.is_empty(), "{needle:?}: {out:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn agrees_with_a_per_line_check(
            lines in proptest::collection::vec("[abé \n]{0,8}", 0..40),
            needles in proptest::collection::vec("[abé \n]{1,3}", 1..3),
            lo in 0usize..45,
            len in 0usize..45,
            stored in any::<bool>(),
            newline_free in any::<bool>(),
        ) {
            let lines: Vec<String> =
                lines.into_iter().map(|l| if newline_free { l.replace('\n', "") } else { l }).collect();
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let b = block(&refs, stored);
            let lo = lo.min(b.len());
            let hi = (lo + len).min(b.len());
            let s = LineSearch::new(&needles).unwrap();
            let want = naive(&b, &needles, lo, hi);
            let mut out = Vec::new();
            s.matching(&b, lo, hi, 0, &mut out);
            prop_assert_eq!(&out, &want);
            // From the first hit: the same; no hit: no match.
            out.clear();
            match s.first_hit(b.lines.as_bytes()) {
                Some(at) => s.matching(&b, lo, hi, at, &mut out),
                None => prop_assert!(want.is_empty()),
            }
            prop_assert_eq!(out, want);
        }
    }
}
