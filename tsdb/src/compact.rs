//! Compaction and retention: merging blocks into larger ones, choosing
//! which blocks to merge, and choosing which blocks to delete.
//!
//! [`compact`] merges any set of blocks (overlapping or not) into one new
//! block. [`plan`] is Prometheus's leveled planner over exponential block
//! ranges (2h, 6h, 18h, ...). [`blocks_beyond_retention`] applies time and
//! size retention. The planners are pure functions over [`BlockMeta`]s;
//! deleting goes through [`delete_block`] (crash-safe rename, then remove).

use crate::block::{Block, BlockError, BlockMeta, BlockWriter};
use crate::fs;
use model::{Labels, Sample, SampleIter, StorageError};
use std::path::Path;

/// Merges `blocks` into one new block under `parent`: series with the same
/// labels are merged by timestamp (when blocks overlap and hold a sample
/// at the same timestamp, the one from the earlier block in `blocks` is
/// kept), chunks are re-encoded, the level is the parents' maximum plus one
/// and the parents are recorded. The input blocks are not deleted.
pub fn compact(blocks: &[&Block], parent: &Path) -> Result<BlockMeta, BlockError> {
    let Some(min_time) = blocks.iter().map(|b| b.meta().min_time).min() else {
        return Err(BlockError::InvalidSeries {
            series: String::new(),
            detail: "no blocks to compact".into(),
        });
    };
    let max_time = blocks.iter().map(|b| b.meta().max_time).max().unwrap_or(min_time + 1);
    let level = blocks.iter().map(|b| b.meta().compaction.level).max().unwrap_or(0) + 1;
    let metas: Vec<BlockMeta> = blocks.iter().map(|b| b.meta().clone()).collect();
    let mut w = BlockWriter::new(parent, min_time, max_time)?;
    w.set_compaction(level, &metas);

    let lists: Vec<_> = blocks.iter().map(|b| b.all_series()).collect::<Result<_, _>>()?;
    let mut pos = vec![0usize; lists.len()];
    let mut parts: Vec<Vec<Sample>> = Vec::new();
    // Start timestamps per part, aligned with `parts`, when any input
    // block has them.
    let with_starts = blocks.iter().any(|b| b.has_start_timestamps());
    let mut part_starts: Vec<Vec<Option<i64>>> = Vec::new();
    loop {
        // The smallest label set among the heads of all lists.
        let mut next: Option<&Labels> = None;
        for (l, &p) in lists.iter().zip(&pos) {
            if let Some(s) = l.get(p) {
                let smaller = match next {
                    None => true,
                    Some(n) => s.labels < *n,
                };
                if smaller {
                    next = Some(&s.labels);
                }
            }
        }
        let Some(labels) = next.cloned() else { break };
        parts.clear();
        part_starts.clear();
        for (i, l) in lists.iter().enumerate() {
            if let Some(s) = l.get(pos[i]) {
                if s.labels == labels {
                    let mut samples = Vec::new();
                    let mut starts = Vec::new();
                    let mut it = blocks[i].series_iter(s.chunks.clone(), i64::MIN, i64::MAX);
                    while let Some(x) = it.next().map_err(|e| chunk_err(blocks[i], &labels, e))? {
                        samples.push(x);
                        if with_starts {
                            starts.push(it.start_timestamp());
                        }
                    }
                    parts.push(samples);
                    part_starts.push(starts);
                    pos[i] += 1;
                }
            }
        }
        if with_starts {
            let (merged, starts) = merge_samples_with_starts(&parts, &part_starts);
            w.add_series_samples_with_starts(&labels, &merged, &starts)?;
            continue;
        }
        let merged = merge_samples(&mut parts);
        w.add_series_samples(&labels, &merged)?;
    }
    w.finish()
}

fn chunk_err(b: &Block, labels: &Labels, e: StorageError) -> BlockError {
    BlockError::Chunk {
        context: format!("compacting block {} series {labels}", b.meta().ulid),
        source: e,
    }
}

/// Merges sorted sample lists; at equal timestamps the earliest list wins.
fn merge_samples(parts: &mut [Vec<Sample>]) -> Vec<Sample> {
    match parts {
        [] => Vec::new(),
        [one] => std::mem::take(one),
        _ => {
            let mut all: Vec<(i64, usize, Sample)> = parts
                .iter()
                .enumerate()
                .flat_map(|(i, p)| p.iter().map(move |s| (s.t, i, *s)))
                .collect();
            all.sort_by_key(|&(t, i, _)| (t, i));
            all.dedup_by_key(|x| x.0);
            all.into_iter().map(|(_, _, s)| s).collect()
        }
    }
}

/// [`merge_samples`] for samples with start timestamps (`starts[i]` is
/// aligned with `parts[i]`): each kept sample keeps its own start.
fn merge_samples_with_starts(parts: &[Vec<Sample>], starts: &[Vec<Option<i64>>]) -> (Vec<Sample>, Vec<Option<i64>>) {
    let mut all: Vec<(i64, usize, Sample, Option<i64>)> = parts
        .iter()
        .zip(starts)
        .enumerate()
        .flat_map(|(i, (p, st))| p.iter().enumerate().map(move |(j, s)| (s.t, i, *s, st.get(j).copied().flatten())))
        .collect();
    all.sort_by_key(|&(t, i, _, _)| (t, i));
    all.dedup_by_key(|x| x.0);
    all.into_iter().map(|(_, _, s, st)| (s, st)).unzip()
}

/// Prometheus's default block ranges: `min`, `min*step`, ... (`steps`
/// values), e.g. `exponential_ranges(2h, 3, 3)` = 2h, 6h, 18h.
pub fn exponential_ranges(min: i64, steps: usize, step: i64) -> Vec<i64> {
    let mut out = Vec::with_capacity(steps);
    let mut r = min;
    for _ in 0..steps {
        out.push(r);
        r = r.saturating_mul(step);
    }
    out
}

/// Chooses blocks to compact next, as Prometheus's leveled compactor does,
/// and returns their ULIDs in time order (empty: nothing to do).
///
/// 1. Blocks whose time ranges overlap are compacted together first.
/// 2. Otherwise the newest block is left alone (a window for backups), and
///    for each range after the first in `ranges`, blocks are grouped by
///    aligned windows of that range; the first group of two or more blocks
///    that spans its whole window, or lies entirely before the newest
///    block, is chosen.
pub fn plan(metas: &[BlockMeta], ranges: &[i64]) -> Vec<String> {
    let mut ms: Vec<&BlockMeta> = metas.iter().collect();
    ms.sort_by_key(|m| (m.min_time, m.max_time));
    let overlapping = overlapping_blocks(&ms);
    if !overlapping.is_empty() {
        return overlapping;
    }
    if ms.len() < 2 || ranges.len() < 2 {
        return Vec::new();
    }
    ms.pop();
    let Some(newest) = metas.iter().map(|m| m.min_time).max() else { return Vec::new() };
    for &r in ranges[1..].iter().filter(|&&r| r > 0) {
        for group in split_by_range(&ms, r) {
            let (Some(first), Some(last)) = (group.first(), group.last()) else { continue };
            let (mint, maxt) = (first.min_time, last.max_time);
            if group.len() > 1 && (maxt.checked_sub(mint) == Some(r) || maxt <= newest) {
                return group.iter().map(|m| m.ulid.clone()).collect();
            }
        }
    }
    Vec::new()
}

/// The first run of blocks whose ranges overlap one another (sorted input).
fn overlapping_blocks(ms: &[&BlockMeta]) -> Vec<String> {
    let mut i = 0;
    while i < ms.len() {
        let mut end = ms[i].max_time;
        let mut j = i + 1;
        while j < ms.len() && ms[j].min_time < end {
            end = end.max(ms[j].max_time);
            j += 1;
        }
        if j - i > 1 {
            return ms[i..j].iter().map(|m| m.ulid.clone()).collect();
        }
        i = j;
    }
    Vec::new()
}

/// Groups sorted blocks by aligned windows `[k*r, (k+1)*r)`; blocks that do
/// not fit entirely in one window are left out.
fn split_by_range<'a>(ms: &[&'a BlockMeta], r: i64) -> Vec<Vec<&'a BlockMeta>> {
    let mut out: Vec<Vec<&BlockMeta>> = Vec::new();
    let mut i = 0;
    while i < ms.len() {
        let m = ms[i];
        let t0 = m.min_time.saturating_sub(m.min_time.rem_euclid(r));
        if m.max_time > t0.saturating_add(r) {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < ms.len() {
            let b = ms[i];
            if b.max_time > t0.saturating_add(r) || b.min_time < t0 {
                break;
            }
            group.push(b);
            i += 1;
        }
        if !group.is_empty() {
            out.push(group);
        }
    }
    out
}

/// ULIDs of blocks to delete under time retention and size retention.
///
/// - Time (`retention_ms`): blocks whose end lies at least `retention_ms`
///   before the newest block's end (as Prometheus).
/// - Size (`max_bytes`): sizes are summed from the newest block down; the
///   block that crosses the limit and every older one are deleted, except
///   that the newest block is always kept (unlike Prometheus, which may
///   delete it too: keeping it means retention never empties the store).
///
/// `blocks` pairs each block's metadata with its size in bytes (callers
/// that want the head counted, as Prometheus does, subtract its size from
/// `max_bytes`); 0 disables either limit.
pub fn blocks_beyond_retention(
    blocks: &[(BlockMeta, u64)],
    retention_ms: i64,
    max_bytes: u64,
) -> Vec<String> {
    let mut bs: Vec<&(BlockMeta, u64)> = blocks.iter().collect();
    bs.sort_by_key(|(m, _)| std::cmp::Reverse(m.max_time));
    let Some(newest) = bs.first().map(|(m, _)| m.max_time) else { return Vec::new() };
    let mut out = Vec::new();
    let mut total = 0u64;
    for (i, (m, size)) in bs.iter().enumerate() {
        total = total.saturating_add(*size);
        let too_old = retention_ms > 0 && newest.saturating_sub(m.max_time) >= retention_ms;
        let too_big = max_bytes > 0 && total > max_bytes && i > 0;
        if too_old || too_big {
            out.push(m.ulid.clone());
        }
    }
    out
}

/// Deletes the block directory `<parent>/<ulid>` crash-safely.
pub fn delete_block(parent: &Path, ulid: &str) -> Result<(), BlockError> {
    if !crate::block::is_ulid(ulid) {
        return Err(BlockError::InvalidSeries {
            series: String::new(),
            detail: format!("{ulid:?} is not a block ULID"),
        });
    }
    fs::remove_dir_atomic(&parent.join(ulid))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{write_block, BlockCompaction, BlockStats, META_VERSION};
    use model::{collect_range, Matcher, Querier, SelectHints};

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    const H: i64 = 3_600_000;

    fn meta(id: &str, mint: i64, maxt: i64) -> BlockMeta {
        BlockMeta {
            ulid: id.to_string(),
            min_time: mint,
            max_time: maxt,
            stats: BlockStats::default(),
            compaction: BlockCompaction {
                level: 1,
                sources: vec![id.to_string()],
                parents: vec![],
            },
            version: META_VERSION,
        }
    }

    #[test]
    fn planner_follows_leveled_ranges() {
        let ranges = exponential_ranges(2 * H, 3, 3);
        assert_eq!(ranges, vec![2 * H, 6 * H, 18 * H]);
        // Three 2h blocks fill a 6h window, plus a newer one.
        let ms = vec![
            meta("a", 0, 2 * H),
            meta("b", 2 * H, 4 * H),
            meta("c", 4 * H, 6 * H),
            meta("d", 6 * H, 8 * H),
        ];
        assert_eq!(plan(&ms, &ranges), vec!["a", "b", "c"]);
        // Only two blocks of the window, and the newest is inside it: wait.
        let ms = vec![meta("a", 0, 2 * H), meta("b", 2 * H, 4 * H)];
        assert!(plan(&ms, &ranges).is_empty());
        // Two blocks of a window that lies before the newest block.
        let ms = vec![
            meta("a", 0, 2 * H),
            meta("b", 2 * H, 4 * H),
            meta("x", 6 * H, 8 * H),
            meta("y", 8 * H, 10 * H),
        ];
        assert_eq!(plan(&ms, &ranges), vec!["a", "b"]);
        // Overlaps win.
        let ms = vec![meta("a", 0, 2 * H), meta("b", H, 3 * H), meta("c", 4 * H, 6 * H)];
        assert_eq!(plan(&ms, &ranges), vec!["a", "b"]);
        // 6h blocks fill an 18h window.
        let ms = vec![
            meta("a", 0, 6 * H),
            meta("b", 6 * H, 12 * H),
            meta("c", 12 * H, 18 * H),
            meta("d", 18 * H, 20 * H),
        ];
        assert_eq!(plan(&ms, &ranges), vec!["a", "b", "c"]);
        assert!(plan(&[], &ranges).is_empty());
        // Nonsense ranges are ignored rather than dividing by zero.
        assert!(plan(&ms, &[0, 0, -5]).is_empty());
        let extreme = vec![
            meta("a", i64::MIN, i64::MIN + 10),
            meta("b", i64::MIN + 10, i64::MIN + 20),
            meta("c", 0, 1),
        ];
        assert_eq!(plan(&extreme, &[7, 3 * H]), vec!["a", "b"]);
    }

    #[test]
    fn retention_by_time_and_size() {
        let bs = vec![
            (meta("a", 0, 2 * H), 100),
            (meta("b", 2 * H, 4 * H), 100),
            (meta("c", 4 * H, 6 * H), 100),
        ];
        assert_eq!(blocks_beyond_retention(&bs, 4 * H, 0), vec!["a"]);
        assert!(blocks_beyond_retention(&bs, 5 * H, 0).is_empty());
        assert_eq!(blocks_beyond_retention(&bs, 0, 250), vec!["a"]);
        assert_eq!(blocks_beyond_retention(&bs, 0, 150), vec!["b", "a"]);
        // The newest block is never deleted for size.
        assert!(blocks_beyond_retention(&bs[2..], 0, 1).is_empty());
    }

    #[test]
    fn compaction_keeps_start_timestamps() -> TestResult {
        let dir = tempfile::tempdir()?;
        let l = Labels::from_pairs([("__name__", "c_total")]);
        let write = |ts: &[i64], st: &[Option<i64>], v: f64| -> TestResult<Block> {
            let mut w = BlockWriter::new_unbounded(dir.path())?;
            let samples: Vec<Sample> = ts.iter().map(|&t| Sample::new(t, v)).collect();
            w.add_series_samples_with_starts(&l, &samples, st)?;
            let m = w.finish()?;
            Ok(Block::open(&dir.path().join(&m.ulid))?)
        };
        let a = write(&[10, 20, 30], &[Some(5), Some(5), None], 1.0)?;
        let b = write(&[30, 40], &[Some(25), Some(30)], 2.0)?;
        assert_eq!(a.meta().stats.num_start_timestamps, 2);
        let m = compact(&[&a, &b], dir.path())?;
        assert_eq!(m.stats.num_start_timestamps, 3);
        let c = Block::open(&dir.path().join(&m.ulid))?;
        assert!(c.has_start_timestamps());
        let s = c.all_series()?;
        let mut it = c.series_iter(s[0].chunks.clone(), i64::MIN, i64::MAX);
        let mut got = Vec::new();
        while let Some(x) = it.next()? {
            got.push((x.t, x.v, it.start_timestamp()));
        }
        // At t=30 the earlier block wins, with its own (absent) start.
        assert_eq!(got, [(10, 1.0, Some(5)), (20, 1.0, Some(5)), (30, 1.0, None), (40, 2.0, Some(30))]);
        Ok(())
    }

    #[test]
    fn compaction_merges_overlapping_blocks() -> TestResult {
        let dir = tempfile::tempdir()?;
        let a = Labels::from_pairs([("__name__", "m"), ("i", "a")]);
        let b = Labels::from_pairs([("__name__", "m"), ("i", "b")]);
        let c = Labels::from_pairs([("__name__", "m"), ("i", "c")]);
        let s =
            |r: std::ops::Range<i64>, v: f64| r.map(|t| Sample::new(t * 10, v)).collect::<Vec<_>>();
        let m1 = write_block(
            dir.path(),
            vec![(a.clone(), s(0..200, 1.0)), (b.clone(), s(0..50, 1.0))],
        )?;
        let m2 = write_block(
            dir.path(),
            vec![(a.clone(), s(150..300, 2.0)), (c.clone(), s(0..10, 2.0))],
        )?;
        let b1 = Block::open(&dir.path().join(&m1.ulid))?;
        let b2 = Block::open(&dir.path().join(&m2.ulid))?;
        assert_eq!(plan(&[m1.clone(), m2.clone()], &[2 * H, 6 * H]).len(), 2);
        let out = compact(&[&b1, &b2], dir.path())?;
        assert_eq!(out.compaction.level, 2);
        assert_eq!(out.compaction.parents.len(), 2);
        assert_eq!(out.stats.num_series, 3);
        assert_eq!(out.stats.num_samples, 300 + 50 + 10);
        assert_eq!((out.min_time, out.max_time), (0, 2991));
        let blk = Block::open(&dir.path().join(&out.ulid))?;
        let q = blk.querier(i64::MIN, i64::MAX);
        let mut got = q.select(&SelectHints::range(0, 10_000), &[Matcher::equal("i", "a")])?;
        let samples = collect_range(got[0].samples.as_mut(), 0, 10_000)?;
        assert_eq!(samples.len(), 300);
        assert_eq!(samples[160].v, 1.0, "the earlier block wins duplicates");
        assert_eq!(samples[250].v, 2.0);
        assert!(samples.windows(2).all(|w| w[0].t < w[1].t));
        let mut sources = out.compaction.sources.clone();
        sources.sort();
        let mut want = vec![m1.ulid.clone(), m2.ulid.clone()];
        want.sort();
        assert_eq!(sources, want);
        delete_block(dir.path(), &m1.ulid)?;
        assert!(!dir.path().join(&m1.ulid).exists());
        assert!(delete_block(dir.path(), "../etc").is_err());
        Ok(())
    }
}
