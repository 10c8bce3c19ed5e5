//! Start timestamps (issue 3): stored with their samples through the WAL,
//! head chunks, persisted and compacted blocks, checkpoints and reopening,
//! and read back exactly as `model::mem` keeps them.

use crate::common::{compacting_opts, open, series};
use model::mem::MemStore;
use model::{Labels, MatchType, Matcher, Queryable, SelectHints};

type Dumped = Vec<(Labels, Vec<(i64, u64, Option<i64>)>)>;

/// Every series with its samples and their start timestamps.
fn dump_starts(q: &dyn Queryable, mint: i64, maxt: i64) -> Dumped {
    let querier = q.querier(mint, maxt).expect("querier");
    let all = [Matcher::new(MatchType::Regex, "__name__", ".+").expect("matcher")];
    let mut out = Vec::new();
    for mut s in querier.select(&SelectHints::range(mint, maxt), &all).expect("select") {
        let mut samples = Vec::new();
        let mut cur = s.samples.seek(mint).expect("seek");
        while let Some(x) = cur {
            if x.t > maxt {
                break;
            }
            samples.push((x.t, x.v.to_bits(), s.samples.start_timestamp()));
            cur = s.samples.next().expect("next");
        }
        if !samples.is_empty() {
            out.push((s.labels.clone(), samples));
        }
    }
    out
}

/// The start timestamp of sample `s` (one per second) of series `i`:
/// 0 none; 1 cumulative, restarting every 150 samples; 2 delta (the
/// previous sample's time); 3 a mix, with gaps.
fn start_of(i: usize, s: i64) -> Option<i64> {
    match i {
        0 => None,
        1 => Some((s / 150) * 150_000 - 500),
        2 => Some(s * 1000 - 1000),
        _ => (s % 7 != 3).then(|| s * 1000 - (s % 5) * 333),
    }
}

/// Number of start timestamps in the newest WAL checkpoint (read from a
/// copy, as a WAL of its own).
fn checkpoint_starts(wal: &std::path::Path) -> usize {
    let cp = std::fs::read_dir(wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("checkpoint.")))
        .max()
        .expect("a checkpoint");
    let copy = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&cp).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), copy.path().join(f.file_name())).unwrap();
    }
    let mut n = 0;
    let (mut series, mut samples, mut starts) = (Vec::new(), Vec::new(), Vec::new());
    tsdb::wal::replay(copy.path(), |payload| {
        starts.clear();
        tsdb::record::decode_with_starts(payload, &mut series, &mut samples, &mut starts).unwrap();
        n += starts.len();
        Ok(())
    })
    .unwrap();
    n
}

#[test]
fn start_timestamps_survive_wal_blocks_compaction_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = compacting_opts();
    let oracle = MemStore::new();
    let db = open(tmp.path(), opts.clone());
    for s in 0..1200i64 {
        let mut app = db.appender();
        for i in 0..4 {
            let v = (s * (i as i64 + 1)) as f64;
            app.append_with_start(&series(i), s * 1000, v, start_of(i, s)).unwrap();
            oracle.append_with_start(&series(i), s * 1000, v, start_of(i, s));
        }
        app.commit().unwrap();
        if s % 100 == 99 {
            db.compact().unwrap();
        }
        if s == 650 {
            // Half way: from blocks and the head.
            let want = dump_starts(&oracle, 0, i64::MAX);
            assert_eq!(dump_starts(&db, 0, i64::MAX), want);
        }
    }
    let stats = db.stats();
    assert!(stats.blocks.iter().any(|b| b.level > 1), "blocks were merged: {:?}", stats.blocks);
    let wal: Vec<String> = std::fs::read_dir(tmp.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(wal.iter().any(|n| n.starts_with("checkpoint.")), "{wal:?}");
    let want = dump_starts(&oracle, 0, i64::MAX);
    assert_eq!(want[1].1[200].2, Some(149_500));
    assert_eq!(dump_starts(&db, 0, i64::MAX), want);
    // A window inside the data, crossing block and head boundaries.
    assert_eq!(dump_starts(&db, 333_333, 1_100_000), dump_starts(&oracle, 333_333, 1_100_000));
    db.close().unwrap();
    // Blocks and the WAL checkpoint hold start timestamps.
    assert!(stats.blocks.iter().any(|b| {
        let meta = std::fs::read_to_string(b.dir.join("meta.json")).unwrap();
        meta.contains("\"numStartTimestamps\"")
    }));
    assert!(checkpoint_starts(&tmp.path().join("wal")) > 0);

    let db = open(tmp.path(), opts.clone());
    assert_eq!(dump_starts(&db, 0, i64::MAX), want);
    db.flush_head().unwrap();
    assert_eq!(db.stats().head_samples, 0);
    assert_eq!(dump_starts(&db, 0, i64::MAX), want);
    db.close().unwrap();
    let db = open(tmp.path(), opts);
    assert_eq!(dump_starts(&db, 0, i64::MAX), want);
    db.close().unwrap();
}

#[test]
fn series_without_start_timestamps_keep_the_plain_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path(), crate::common::small_opts());
    let mut app = db.appender();
    for s in 0..300 {
        app.append_with_start(&series(0), s * 1000, s as f64, None).unwrap();
    }
    app.commit().unwrap();
    db.close().unwrap();
    // The WAL holds only plain commit records (kind 3), as before start
    // timestamps existed.
    let mut kinds = Vec::new();
    let (mut series, mut samples) = (Vec::new(), Vec::new());
    tsdb::wal::replay(&tmp.path().join("wal"), |payload| {
        kinds.push(tsdb::record::decode(payload, &mut series, &mut samples).unwrap());
        Ok(())
    })
    .unwrap();
    assert!(!kinds.is_empty());
    assert!(kinds.iter().all(|k| *k == tsdb::record::RecordKind::Commit), "{kinds:?}");
    let db = open(tmp.path(), crate::common::small_opts());
    let q = db.querier(0, i64::MAX).unwrap();
    let got = q.select(&SelectHints::range(0, i64::MAX), &[Matcher::equal("i", "0")]).unwrap();
    assert!(!got[0].samples.has_start_timestamps());
    drop(got);
    drop(q);
    db.flush_head().unwrap();
    let blocks = db.stats().blocks;
    assert_eq!(blocks.len(), 1);
    // meta.json does not mention start timestamps at all.
    let meta = std::fs::read_to_string(blocks[0].dir.join("meta.json")).unwrap();
    assert!(!meta.contains("StartTimestamps"), "{meta}");
    let q = db.querier(0, i64::MAX).unwrap();
    let got = q.select(&SelectHints::range(0, i64::MAX), &[Matcher::equal("i", "0")]).unwrap();
    assert!(!got[0].samples.has_start_timestamps());
    drop(got);
    drop(q);
    db.close().unwrap();
}
