//! Set operations on postings lists: sorted, duplicate-free series
//! references.
//!
//! Lists are materialised as vectors: the index decodes a list in one pass
//! and these merges are linear (intersection gallops when one side is much
//! shorter), which keeps matcher evaluation simple and fast.

/// A series reference inside one index (the byte offset of its entry).
pub type SeriesRef = u64;

/// Intersection of two sorted lists.
pub fn intersect(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.is_empty() {
        return out;
    }
    if large.len() / small.len() >= 16 {
        // Galloping: binary-search each element of the short list in the
        // remaining part of the long one.
        let mut rest = large;
        for &x in small {
            let i = rest.partition_point(|&y| y < x);
            rest = &rest[i..];
            match rest.first() {
                Some(&y) if y == x => {
                    out.push(x);
                    rest = &rest[1..];
                }
                Some(_) => {}
                None => break,
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Elements of `a` that are not in `b`.
pub fn subtract(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

/// Union of any number of sorted lists.
pub fn merge(lists: Vec<Vec<SeriesRef>>) -> Vec<SeriesRef> {
    let mut lists: Vec<Vec<SeriesRef>> = lists.into_iter().filter(|l| !l.is_empty()).collect();
    match lists.len() {
        0 => Vec::new(),
        1 => lists.pop().unwrap_or_default(),
        _ => {
            // Pairwise merging: log(k) passes over the data.
            while lists.len() > 1 {
                let mut next = Vec::with_capacity(lists.len().div_ceil(2));
                let mut it = lists.into_iter();
                while let Some(a) = it.next() {
                    match it.next() {
                        Some(b) => next.push(union2(&a, &b)),
                        None => next.push(a),
                    }
                }
                lists = next;
            }
            lists.pop().unwrap_or_default()
        }
    }
}

fn union2(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn set() -> impl Strategy<Value = BTreeSet<u64>> {
        prop_oneof![
            proptest::collection::btree_set(0u64..200, 0..100),
            proptest::collection::btree_set(0u64..5000, 0..3),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn ops_match_sets(a in set(), b in set(), c in set()) {
            let (va, vb, vc): (Vec<u64>, Vec<u64>, Vec<u64>) =
                (a.iter().copied().collect(), b.iter().copied().collect(), c.iter().copied().collect());
            prop_assert_eq!(intersect(&va, &vb), a.intersection(&b).copied().collect::<Vec<_>>());
            prop_assert_eq!(subtract(&va, &vb), a.difference(&b).copied().collect::<Vec<_>>());
            let all: BTreeSet<u64> = a.union(&b).chain(c.iter()).copied().collect();
            prop_assert_eq!(merge(vec![va, vb, vc]), all.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn galloping_path() {
        let large: Vec<u64> = (0..10_000).map(|i| i * 2).collect();
        assert_eq!(intersect(&[3, 4, 19_998, 20_000], &large), vec![4, 19_998]);
        assert!(merge(vec![]).is_empty());
    }
}
