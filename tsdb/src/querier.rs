//! Reading across the head and the blocks: merging sorted series sets and
//! deduplicating overlapping samples.
//!
//! Every source (each block, the head) answers a selection with series
//! sorted by labels. [`merge_series`] merges those lists; series present in
//! several sources get a [`MergeIter`] that yields each timestamp once (the
//! first source listed wins on conflicting values, so callers list the
//! newest data — the head — last only when older data should win; the
//! database lists blocks oldest first, then the head).

use model::{Querier, Sample, SampleIter, SelectHints, Series, StorageError, Matcher};
use std::collections::BTreeSet;

/// Merges several sample iterators into one, in timestamp order, yielding
/// each timestamp once (the value of the lowest-indexed iterator holding
/// it).
pub struct MergeIter<'a> {
    iters: Vec<Box<dyn SampleIter + Send + 'a>>,
    peeked: Vec<Option<Sample>>,
    started: bool,
    /// Start timestamp of the sample last returned (from the iterator that
    /// gave it).
    cur_st: Option<i64>,
    /// Whether some source has start timestamps (else they are not asked).
    with_starts: bool,
}

impl std::fmt::Debug for MergeIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeIter").field("sources", &self.iters.len()).finish_non_exhaustive()
    }
}

impl<'a> MergeIter<'a> {
    /// Merges `iters`.
    pub fn new(iters: Vec<Box<dyn SampleIter + Send + 'a>>) -> Self {
        let n = iters.len();
        let with_starts = iters.iter().any(|i| i.has_start_timestamps());
        MergeIter { iters, peeked: vec![None; n], started: false, cur_st: None, with_starts }
    }

    fn start(&mut self) -> Result<(), StorageError> {
        if !self.started {
            self.started = true;
            for (i, it) in self.iters.iter_mut().enumerate() {
                self.peeked[i] = it.next()?;
            }
        }
        Ok(())
    }

    fn pop_min(&mut self) -> Result<Option<Sample>, StorageError> {
        let mut best: Option<(usize, Sample)> = None;
        for (i, p) in self.peeked.iter().enumerate() {
            if let Some(s) = p {
                if best.is_none_or(|(_, b)| s.t < b.t) {
                    best = Some((i, *s));
                }
            }
        }
        self.cur_st = None;
        let Some((winner, s)) = best else { return Ok(None) };
        if self.with_starts {
            // Each iterator's last returned sample is its peeked one.
            self.cur_st = self.iters[winner].start_timestamp();
        }
        for i in 0..self.iters.len() {
            if self.peeked[i].is_some_and(|p| p.t == s.t) {
                self.peeked[i] = self.iters[i].next()?;
            }
        }
        Ok(Some(s))
    }
}

impl SampleIter for MergeIter<'_> {
    fn next(&mut self) -> Result<Option<Sample>, StorageError> {
        self.start()?;
        self.pop_min()
    }

    fn seek(&mut self, t: i64) -> Result<Option<Sample>, StorageError> {
        self.start()?;
        for i in 0..self.iters.len() {
            if self.peeked[i].is_some_and(|p| p.t < t) {
                self.peeked[i] = self.iters[i].seek(t)?;
            }
        }
        self.pop_min()
    }

    fn start_timestamp(&self) -> Option<i64> {
        self.cur_st
    }

    fn has_start_timestamps(&self) -> bool {
        self.with_starts
    }
}

/// Merges per-source series lists (each sorted by labels) into one sorted
/// list with each label set once.
pub fn merge_series<'a>(sources: Vec<Vec<Series<'a>>>) -> Vec<Series<'a>> {
    let non_empty = sources.iter().filter(|s| !s.is_empty()).count();
    if non_empty <= 1 {
        return sources.into_iter().flatten().collect();
    }
    let mut all: Vec<(usize, Series<'a>)> = sources
        .into_iter()
        .enumerate()
        .flat_map(|(i, v)| v.into_iter().map(move |s| (i, s)))
        .collect();
    // Stable: equal label sets keep source order, so lower sources win.
    all.sort_by(|a, b| a.1.labels.cmp(&b.1.labels).then(a.0.cmp(&b.0)));
    let mut out: Vec<Series<'a>> = Vec::with_capacity(all.len());
    let mut group: Vec<Series<'a>> = Vec::new();
    let flush = |group: &mut Vec<Series<'a>>, out: &mut Vec<Series<'a>>| {
        if group.len() == 1 {
            out.append(group);
        } else if let Some(first) = group.first() {
            let labels = first.labels.clone();
            let iters = group.drain(..).map(|s| s.samples).collect();
            out.push(Series { labels, samples: Box::new(MergeIter::new(iters)) });
        }
    };
    for (_, s) in all {
        if group.first().is_some_and(|g| g.labels != s.labels) {
            flush(&mut group, &mut out);
        }
        group.push(s);
    }
    flush(&mut group, &mut out);
    out
}

/// A querier over several queriers (blocks oldest first, then the head).
pub struct MergeQuerier<'a> {
    queriers: Vec<Box<dyn Querier + 'a>>,
}

impl std::fmt::Debug for MergeQuerier<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeQuerier").field("sources", &self.queriers.len()).finish()
    }
}

impl<'a> MergeQuerier<'a> {
    /// Merges `queriers`; on duplicate timestamps the first wins.
    pub fn new(queriers: Vec<Box<dyn Querier + 'a>>) -> Self {
        MergeQuerier { queriers }
    }
}

impl Querier for MergeQuerier<'_> {
    fn select<'b>(
        &'b self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series<'b>>, StorageError> {
        let mut sources = Vec::with_capacity(self.queriers.len());
        for q in &self.queriers {
            sources.push(q.select(hints, matchers)?);
        }
        Ok(merge_series(sources))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut set = BTreeSet::new();
        for q in &self.queriers {
            set.extend(q.label_names(matchers)?);
        }
        Ok(set.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut set = BTreeSet::new();
        for q in &self.queriers {
            set.extend(q.label_values(name, matchers)?);
        }
        Ok(set.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{collect_range, Labels, VecIter};

    fn series(name: &str, ts: &[i64], v: f64) -> Series<'static> {
        Series {
            labels: Labels::from_pairs([("__name__", name)]),
            samples: Box::new(VecIter::new(ts.iter().map(|t| Sample::new(*t, v)).collect())),
        }
    }

    #[test]
    fn merges_and_dedupes() {
        let a = vec![series("a", &[1, 3, 5], 1.0), series("c", &[1], 1.0)];
        let b = vec![series("a", &[2, 3, 6], 2.0), series("b", &[9], 2.0)];
        let mut out = merge_series(vec![a, b]);
        let names: Vec<_> = out.iter().map(|s| s.labels.metric_name().unwrap_or("").to_string()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let got = collect_range(out[0].samples.as_mut(), i64::MIN, i64::MAX).unwrap();
        let ts: Vec<i64> = got.iter().map(|s| s.t).collect();
        assert_eq!(ts, [1, 2, 3, 5, 6]);
        assert_eq!(got[2].v, 1.0, "first source wins on a shared timestamp");
    }

    #[test]
    fn merge_keeps_start_timestamps_of_the_winning_source() {
        use model::StartIter;
        let a = VecIter::new(vec![Sample::new(1, 1.0), Sample::new(3, 1.0)]);
        let b = VecIter::new(vec![Sample::new(2, 2.0), Sample::new(3, 2.0), Sample::new(4, 2.0)]);
        let mut m = MergeIter::new(vec![
            Box::new(StartIter::new(a, vec![(3, -3)])),
            Box::new(StartIter::new(b, vec![(2, -2), (3, -30), (4, -4)])),
        ]);
        assert!(m.has_start_timestamps());
        let mut got = Vec::new();
        while let Some(s) = m.next().unwrap() {
            got.push((s.t, m.start_timestamp()));
        }
        assert_eq!(got, [(1, None), (2, Some(-2)), (3, Some(-3)), (4, Some(-4))]);
        assert_eq!(m.start_timestamp(), None);
        let plain = MergeIter::new(vec![Box::new(VecIter::new(vec![Sample::new(1, 1.0)]))]);
        assert!(!plain.has_start_timestamps());
    }

    #[test]
    fn merge_seek_never_moves_back() {
        let mut m = MergeIter::new(vec![
            Box::new(VecIter::new(vec![Sample::new(1, 0.0), Sample::new(10, 0.0)])),
            Box::new(VecIter::new(vec![Sample::new(5, 0.0), Sample::new(20, 0.0)])),
        ]);
        assert_eq!(m.seek(6).unwrap().map(|s| s.t), Some(10));
        assert_eq!(m.seek(0).unwrap().map(|s| s.t), Some(20));
        assert_eq!(m.next().unwrap(), None);
    }
}
