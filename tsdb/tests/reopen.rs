//! Reopening: data written, closed and reopened reads back the same, from
//! the WAL and from blocks.

use crate::common::{compacting_opts, dump, open, series, small_opts};
use model::mem::MemStore;

#[test]
fn write_close_reopen_same_data() {
    let tmp = tempfile::tempdir().unwrap();
    let oracle = MemStore::new();
    let db = open(tmp.path(), small_opts());
    for b in 0..300i64 {
        let mut app = db.appender();
        for i in 0..20 {
            let v = (b * 31 + i as i64) as f64 / 7.0;
            app.append(&series(i), b * 15_000 + i as i64, v).unwrap();
            oracle.append(&series(i), b * 15_000 + i as i64, v);
        }
        app.commit().unwrap();
    }
    let before = dump(&db, i64::MIN + 1, i64::MAX);
    assert_eq!(before, dump(&oracle, i64::MIN + 1, i64::MAX));
    db.close().unwrap();
    let db = open(tmp.path(), small_opts());
    assert_eq!(dump(&db, i64::MIN + 1, i64::MAX), before);
    let stats = db.stats();
    assert_eq!(stats.head_samples, 300 * 20);
    assert!(stats.head_chunk_bytes > 8, "full chunks were written to chunks_head");
}

#[test]
fn rejected_samples_are_counted_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path(), small_opts());
    let mut app = db.appender();
    app.append(&series(0), 100, 1.0).unwrap();
    let e = app.append(&series(0), 50, 1.0).unwrap_err();
    assert!(matches!(e, tsdb::AppendError::OutOfOrder { t: 50, last_t: 100, .. }), "{e}");
    let e = app.append(&series(0), 100, 2.0).unwrap_err();
    assert!(e.to_string().contains("duplicate sample"), "{e}");
    app.commit().unwrap();
    let mut app = db.appender();
    assert!(app.append(&series(0), 99, 1.0).is_err());
    assert!(app.append(&model::Labels::empty(), 99, 1.0).is_err());
    let r = app.append(&series(1), 10, 1.0).unwrap();
    app.append_ref(r, 20, 2.0).unwrap();
    app.rollback();
    app.commit().unwrap();
    let s = db.stats();
    assert_eq!((s.out_of_order, s.duplicates, s.samples_appended), (2, 1, 1));
    assert_eq!(dump(&db, 0, 1000).len(), 1, "rolled back samples are not visible");
}

#[test]
fn second_open_of_the_same_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path(), small_opts());
    let err = tsdb::Db::open(tmp.path(), small_opts()).unwrap_err();
    assert!(matches!(err, tsdb::OpenError::Locked { .. }), "{err}");
    db.close().unwrap();
    open(tmp.path(), small_opts()).close().unwrap();
}

#[test]
fn persist_to_blocks_compact_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = compacting_opts();
    let oracle = MemStore::new();
    let db = open(tmp.path(), opts.clone());
    // 20 minutes of 5 series every second.
    for s in 0..1200i64 {
        let mut app = db.appender();
        for i in 0..5 {
            app.append(&series(i), s * 1000, (s + i as i64) as f64).unwrap();
            oracle.append(&series(i), s * 1000, (s + i as i64) as f64);
        }
        app.commit().unwrap();
        if s % 100 == 99 {
            db.compact().unwrap();
        }
    }
    let stats = db.stats();
    assert!(!stats.blocks.is_empty());
    assert!(stats.blocks.iter().any(|b| b.level > 1), "blocks were merged: {:?}", stats.blocks);
    assert!(stats.head_samples < 1200 * 5, "the head was truncated");
    // Checkpoint present, old segments gone.
    let wal: Vec<String> = std::fs::read_dir(tmp.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(wal.iter().any(|n| n.starts_with("checkpoint.")), "{wal:?}");
    assert!(!wal.iter().any(|n| n == "00000001"), "{wal:?}");
    let all = dump(&oracle, 0, i64::MAX);
    assert_eq!(dump(&db, 0, i64::MAX), all);
    // Samples in a persisted range are now out of bounds.
    let mut app = db.appender();
    let e = app.append(&series(0), 0, 1.0).unwrap_err();
    assert!(matches!(e, tsdb::AppendError::OutOfBounds { .. }), "{e}");
    drop(app);
    db.close().unwrap();
    let db = open(tmp.path(), opts);
    assert_eq!(dump(&db, 0, i64::MAX), all);
    db.flush_head().unwrap();
    assert_eq!(db.stats().head_samples, 0);
    assert_eq!(dump(&db, 0, i64::MAX), all);
}

#[test]
fn retention_deletes_old_blocks() {
    use std::time::Duration;
    let tmp = tempfile::tempdir().unwrap();
    let opts = tsdb::Options::builder()
        .block_range(Duration::from_secs(10))
        .max_block_range(Duration::from_secs(10))
        .retention_time(Some(Duration::from_secs(30)))
        .build();
    let db = open(tmp.path(), opts);
    for s in 0..100i64 {
        let mut app = db.appender();
        app.append(&series(0), s * 1000, s as f64).unwrap();
        app.commit().unwrap();
    }
    let stats = db.compact().unwrap();
    assert!(!stats.deleted.is_empty(), "{stats:?}");
    let blocks = db.stats().blocks;
    let newest = blocks.iter().map(|b| b.maxt).max().unwrap();
    assert!(blocks.iter().all(|b| newest - b.maxt < 30_000), "{blocks:?}");
    for d in &stats.deleted {
        assert!(!d.exists(), "{} still exists", d.display());
    }
    let data = dump(&db, 0, i64::MAX);
    assert!(data[0].1.first().unwrap().t >= 50_000);
}

#[test]
fn background_compaction_persists_the_head() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let opts = tsdb::Options::builder()
        .block_range(Duration::from_secs(10))
        .retention_time(None)
        .background_compaction(Some(Duration::from_millis(20)))
        .build();
    let db = open(tmp.path(), opts);
    let mut app = db.appender();
    for s in 0..40i64 {
        app.append(&series(1), s * 1000, 1.0).unwrap();
    }
    app.commit().unwrap();
    // The commit wakes the thread; give it up to 20 s on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.stats().blocks.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = db.stats();
    assert!(!stats.blocks.is_empty(), "no block was persisted in the background");
    assert_eq!(stats.background_error, None);
    assert_eq!(dump(&db, 0, i64::MAX)[0].1.len(), 40);
    db.close().unwrap();
}

#[test]
fn concurrent_appenders_and_readers() {
    let tmp = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(open(tmp.path(), small_opts()));
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    assert_send_sync(&*db);
    let mut handles = Vec::new();
    for w in 0..4usize {
        let db = db.clone();
        handles.push(std::thread::spawn(move || {
            for b in 0..200i64 {
                let mut app = db.appender();
                app.append(&series(w), b, b as f64).unwrap();
                app.append(&series(100 + (b as usize % 3)), b * 4 + w as i64, 0.0).ok();
                app.commit().unwrap();
                if b % 50 == 0 {
                    let _ = dump(&*db, 0, i64::MAX);
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let data = dump(&*db, 0, i64::MAX);
    for w in 0..4 {
        let s = data.iter().find(|(l, _)| *l == series(w)).unwrap();
        assert_eq!(s.1.len(), 200);
    }
    let stats = db.stats();
    let shared: usize = data.iter().filter(|(l, _)| l.get("i").unwrap().parse::<usize>().unwrap() >= 100).map(|(_, s)| s.len()).sum();
    assert_eq!(stats.samples_appended as usize, 800 + shared);
}

#[test]
fn dropping_the_db_releases_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path(), small_opts());
    let q = tsdb::Db::open(tmp.path(), small_opts());
    assert!(q.is_err());
    drop(db);
    // Dropping closes too: the lock is free again.
    let db = open(tmp.path(), small_opts());
    db.close().unwrap();
}

#[test]
fn flush_head_then_more_samples_in_the_same_window() {
    use std::time::Duration;
    let tmp = tempfile::tempdir().unwrap();
    let opts = tsdb::Options::builder()
        .block_range(Duration::from_secs(100))
        .retention_time(None)
        .build();
    let db = open(tmp.path(), opts.clone());
    let oracle = MemStore::new();
    let put = |from: i64, to: i64| {
        let mut app = db.appender();
        for t in from..to {
            app.append(&series(0), t * 1000, t as f64).unwrap();
            oracle.append(&series(0), t * 1000, t as f64);
        }
        app.commit().unwrap();
    };
    put(0, 30);
    db.flush_head().unwrap();
    put(30, 60);
    db.flush_head().unwrap();
    let stats = db.stats();
    assert_eq!(stats.head_samples, 0);
    assert!(stats.blocks.iter().all(|b| b.maxt < 60_000 || b.level > 1), "{:?}", stats.blocks);
    assert_eq!(stats.blocks.iter().map(|b| b.num_samples).sum::<u64>(), 60);
    assert_eq!(dump(&db, 0, i64::MAX), dump(&oracle, 0, i64::MAX));
    db.close().unwrap();
    let db = open(tmp.path(), opts);
    assert_eq!(dump(&db, 0, i64::MAX), dump(&oracle, 0, i64::MAX));
}

#[test]
fn size_retention_deletes_oldest_blocks() {
    use std::time::Duration;
    let tmp = tempfile::tempdir().unwrap();
    let build = |size: Option<u64>| {
        tsdb::Options::builder()
            .block_range(Duration::from_secs(10))
            .max_block_range(Duration::from_secs(10))
            .retention_time(None)
            .retention_size(size)
            .build()
    };
    let db = open(tmp.path(), build(None));
    for s in 0..100i64 {
        let mut app = db.appender();
        for i in 0..20 {
            app.append(&series(i), s * 1000, (s * i as i64) as f64).unwrap();
        }
        app.commit().unwrap();
    }
    db.compact().unwrap();
    let blocks = db.stats().blocks;
    assert!(blocks.len() >= 5, "{blocks:?}");
    let one = blocks.iter().map(|b| b.bytes).max().unwrap();
    db.close().unwrap();
    // Room for about two blocks: the oldest ones go.
    let db = open(tmp.path(), build(Some(one * 2 + one / 2)));
    let stats = db.compact().unwrap();
    let left = db.stats().blocks;
    assert_eq!(left.len(), 2, "deleted {:?}", stats.deleted);
    let newest_before = blocks.iter().map(|b| b.maxt).max().unwrap();
    assert!(left.iter().any(|b| b.maxt == newest_before));
    assert!(left.iter().map(|b| b.bytes).sum::<u64>() <= one * 2 + one / 2);
}

/// Readers never miss committed data while the head is persisted and
/// truncated underneath them (the querier reads the head before the block
/// list, and data leaves the head only after its block is listed).
#[test]
fn queries_see_all_committed_data_during_compaction() {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::time::Duration;
    let tmp = tempfile::tempdir().unwrap();
    let opts = tsdb::Options::builder()
        .block_range(Duration::from_millis(500))
        .max_block_range(Duration::from_millis(4500))
        .retention_time(None)
        .fsync(tsdb::FsyncPolicy::Never)
        .build();
    let db = std::sync::Arc::new(open(tmp.path(), opts));
    let committed = std::sync::Arc::new(AtomicI64::new(0));
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, committed, done) = (db.clone(), committed.clone(), done.clone());
        std::thread::spawn(move || {
            let mut checks = 0;
            while !done.load(Ordering::Acquire) {
                let before = committed.load(Ordering::Acquire);
                let q = model::Queryable::querier(&*db, 0, i64::MAX).unwrap();
                std::thread::yield_now();
                let m = [model::Matcher::equal("__name__", "m")];
                let mut n = 0;
                for mut s in q.select(&model::SelectHints::range(0, i64::MAX), &m).unwrap() {
                    n += model::collect_range(s.samples.as_mut(), 0, i64::MAX).unwrap().len() as i64;
                }
                assert!(n >= before, "saw {n} samples, {before} were committed before the query");
                checks += 1;
            }
            checks
        })
    };
    for t in 0..2000i64 {
        let mut app = db.appender();
        app.append(&series(0), t * 10, t as f64).unwrap();
        app.commit().unwrap();
        committed.store(t + 1, Ordering::Release);
        if t % 40 == 0 {
            db.compact().unwrap();
        }
    }
    done.store(true, Ordering::Release);
    let checks = reader.join().unwrap();
    assert!(checks > 0);
    assert!(db.stats().blocks.len() > 1);
    assert_eq!(dump(&*db, 0, i64::MAX)[0].1.len(), 2000);
}
