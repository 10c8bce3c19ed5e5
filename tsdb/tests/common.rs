//! Helpers shared by the integration tests.

use model::{collect_range, Labels, Matcher, MatchType, Queryable, Sample, SelectHints};
use tsdb::{Db, Options};

/// Options with small WAL segments and manual compaction.
pub fn small_opts() -> Options {
    Options::builder().wal_segment_size(64 * 1024).build()
}

/// One-minute blocks compacted up to nine minutes, small WAL segments, no
/// retention: twenty minutes of data exercise blocks and compaction.
pub fn compacting_opts() -> Options {
    Options::builder()
        .block_range(std::time::Duration::from_secs(60))
        .max_block_range(std::time::Duration::from_secs(540))
        .retention_time(None)
        .wal_segment_size(32 * 1024)
        .build()
}

/// Every series and its samples in `[mint, maxt]`, sorted by labels.
pub fn dump(q: &dyn Queryable, mint: i64, maxt: i64) -> Vec<(Labels, Vec<Sample>)> {
    let querier = q.querier(mint, maxt).expect("querier");
    let all = [Matcher::new(MatchType::Regex, "__name__", ".+").expect("matcher")];
    let mut series = querier.select(&SelectHints::range(mint, maxt), &all).expect("select");
    let mut out = Vec::new();
    for s in series.iter_mut() {
        let samples = collect_range(s.samples.as_mut(), mint, maxt).expect("samples");
        if !samples.is_empty() {
            out.push((s.labels.clone(), samples));
        }
    }
    out
}

/// Opens `dir` with `opts`, panicking with the error on failure.
pub fn open(dir: &std::path::Path, opts: Options) -> Db {
    Db::open(dir, opts).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// `{__name__="m", i="<i>"}`.
pub fn series(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
}
