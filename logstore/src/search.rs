//! Line search pushed down from a query: lines must contain every one of a
//! few literal substrings (`model::LogSelectHints::line_contains`).
//!
//! Instead of testing each line, the decoded lines of a block — one string
//! — are searched as a whole for the first needle with a `memmem` finder
//! built once per query; line boundaries are looked up only around hits.
//! On selective filters almost all of a block is skipped at memchr speed.
//! Blocks whose trigram filter (`chunk::filter`) rules a needle out are not
//! even decompressed.

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
        let mut v: Vec<&str> =
            needles.iter().map(String::as_str).filter(|n| !n.is_empty()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        v.dedup();
        Some(LineSearch { finders: v.into_iter().map(|n| Finder::new(n).into_owned()).collect() })
    }

    /// The needles, longest first.
    #[cfg(test)]
    pub fn needles(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.finders.iter().map(Finder::needle)
    }

    /// Whether a block with this trigram filter may hold a matching line
    /// (`false` only when some needle surely does not occur in it).
    pub fn may_match(&self, filter: &[u8]) -> bool {
        self.finders.iter().all(|f| crate::chunk::filter::may_contain(filter, f.needle()))
    }

    /// Appends to `out` the indices in `lo..hi` of the entries of `b` whose
    /// line contains every needle, in increasing order.
    pub fn matching(&self, b: &DecodedBlock, lo: usize, hi: usize, out: &mut Vec<u32>) {
        let Some((first, rest)) = self.finders.split_first() else { return };
        if lo >= hi {
            return;
        }
        let text = b.lines.as_bytes();
        let ends = &b.ends[..hi];
        let start_of = |i: usize| if i == 0 { 0 } else { ends[i - 1] as usize };
        let limit = (ends[hi - 1] as usize).min(text.len());
        let n = first.needle().len();
        let mut pos = start_of(lo);
        // Entries before `cursor` end at or before `pos`.
        let mut cursor = lo;
        while pos < limit {
            let Some(off) = first.find(&text[pos..limit]) else { break };
            let hit = pos + off;
            cursor += ends[cursor..].partition_point(|&e| e as usize <= hit);
            // `hit < limit = ends[hi - 1]`, so some line ends after it.
            let Some(&end) = ends.get(cursor) else { break };
            let end = end as usize;
            if hit + n <= end {
                let line = &text[start_of(cursor)..end];
                if rest.iter().all(|f| f.find(line).is_some()) {
                    out.push(cursor as u32);
                }
                // The next line starts at `end`; a line whose end equals
                // `end` (empty lines) cannot hold the needle either.
                pos = end;
            } else {
                // The hit straddles a line boundary: look again just after
                // its start.
                pos = hit + 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Labels;
    use proptest::prelude::*;

    fn block(lines: &[&str]) -> DecodedBlock {
        let mut b = DecodedBlock::default();
        let e = Labels::empty();
        b.fill_from(lines.iter().enumerate().map(|(i, l)| (i as i64, *l, &e)));
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
        let b = block(&["queue", " full", "queue full!", "", "a queue full", "queue fu"]);
        let s = LineSearch::new(&["queue full".into()]).unwrap();
        let mut out = Vec::new();
        s.matching(&b, 0, b.len(), &mut out);
        assert_eq!(out, [2, 4]);
        out.clear();
        s.matching(&b, 3, 4, &mut out);
        assert!(out.is_empty());
        out.clear();
        s.matching(&b, 4, 6, &mut out);
        assert_eq!(out, [4]);
        let two =
            LineSearch::new(&["a".into(), "queue".into(), String::new(), "a".into()]).unwrap();
        assert_eq!(two.needles().count(), 2);
        assert_eq!(two.needles().next(), Some(&b"queue"[..]));
        out.clear();
        two.matching(&b, 0, b.len(), &mut out);
        assert_eq!(out, [4]);
        assert!(LineSearch::new(&[String::new()]).is_none());
        assert!(LineSearch::new(&[]).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn agrees_with_a_per_line_check(
            lines in proptest::collection::vec("[abé ]{0,8}", 0..40),
            needles in proptest::collection::vec("[abé ]{1,3}", 1..3),
            lo in 0usize..45,
            len in 0usize..45,
        ) {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let b = block(&refs);
            let lo = lo.min(b.len());
            let hi = (lo + len).min(b.len());
            let s = LineSearch::new(&needles).unwrap();
            let mut out = Vec::new();
            s.matching(&b, lo, hi, &mut out);
            prop_assert_eq!(out, naive(&b, &needles, lo, hi));
        }
    }
}
