//! Crash safety: a child process appends batches and prints each
//! acknowledged one; the parent kills it with SIGKILL at random moments,
//! reopens the store, and checks that every acknowledged batch is there and
//! that every batch is all-or-nothing.

use crate::common::{dump, open, series};
use crate::crash_harness::{check_batches, run_and_kill, Rng};
use std::collections::BTreeSet;
use std::time::Instant;
use tsdb::Options;

const SERIES_PER_BATCH: usize = 8;

/// Small blocks and segments so that kills also land in segment rotation,
/// block writing, head truncation and WAL checkpointing.
fn opts() -> Options {
    Options::builder()
        .block_range(std::time::Duration::from_millis(200))
        .retention_time(None)
        .wal_segment_size(4096)
        .build()
}
const ENV_DIR: &str = "TSDB_CRASH_CHILD_DIR";

/// The child: appends batch after batch until killed. Runs only when the
/// parent test re-executes this binary with the environment variable set.
#[test]
#[ignore = "child process of crash_kill9_keeps_acknowledged_batches"]
fn crash_child() {
    let Ok(dir) = std::env::var(ENV_DIR) else { return };
    let db = open(std::path::Path::new(&dir), opts());
    // Continue after the newest batch already stored.
    let next = dump(&db, 0, i64::MAX).iter().filter_map(|(_, s)| s.last().map(|x| x.t)).max();
    let mut b = next.map_or(0, |t| t / 10 + 1);
    println!("start {b}");
    loop {
        let mut app = db.appender();
        for i in 0..SERIES_PER_BATCH {
            app.append(&series(i), b * 10, b as f64).unwrap();
        }
        app.commit().unwrap();
        println!("ack {b}");
        b += 1;
        if b % 7 == 0 {
            db.compact().unwrap();
        }
    }
}

#[test]
fn crash_kill9_keeps_acknowledged_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::from_clock();
    let mut acked: BTreeSet<i64> = BTreeSet::new();
    let started = Instant::now();
    let rounds = 24;
    for round in 0..rounds {
        acked.extend(run_and_kill("crash::crash_child", ENV_DIR, tmp.path(), &mut rng));

        let db = open(tmp.path(), opts());
        let data = dump(&db, 0, i64::MAX);
        let mut per_batch: std::collections::BTreeMap<i64, usize> = Default::default();
        for (labels, samples) in &data {
            for s in samples {
                assert_eq!(s.t % 10, 0, "{labels}: unexpected timestamp {}", s.t);
                assert_eq!(s.v, (s.t / 10) as f64, "{labels}: wrong value at {}", s.t);
                *per_batch.entry(s.t / 10).or_default() += 1;
            }
        }
        check_batches(round, &per_batch, SERIES_PER_BATCH, &acked);
        db.close().unwrap();
    }
    assert!(!acked.is_empty(), "the child never acknowledged a batch");
    let db = open(tmp.path(), opts());
    assert!(!db.stats().blocks.is_empty(), "the children persisted blocks");
    let wal: Vec<String> = std::fs::read_dir(tmp.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!wal.iter().any(|n| n.ends_with(".tmp")), "stale temporary checkpoint: {wal:?}");
    eprintln!("{rounds} rounds, {} batches acknowledged, {:?}", acked.len(), started.elapsed());
}
