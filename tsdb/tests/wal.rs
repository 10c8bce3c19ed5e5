//! WAL recovery: torn tails are repaired and reported, damage in the
//! middle and missing segments are errors naming the file.

use crate::common::{dump, open, series, small_opts};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use tsdb::{Db, OpenError, WalError};

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().bytes().all(|b| b.is_ascii_digit()))
        .collect();
    v.sort();
    v
}

/// Writes `batches` commits of 5 series each, one sample per series.
fn write_batches(dir: &Path, batches: usize) {
    write_batches_from(dir, 0, batches)
}

fn write_batches_from(dir: &Path, first: usize, batches: usize) {
    let db = open(dir, small_opts());
    for b in first..first + batches {
        let mut app = db.appender();
        for i in 0..5 {
            app.append(&series(i), b as i64 * 1000, b as f64).unwrap();
        }
        app.commit().unwrap();
    }
    db.close().unwrap();
}

/// The newest non-empty segment.
fn last_data_segment(dir: &Path) -> PathBuf {
    segments(dir).into_iter().rev().find(|p| std::fs::metadata(p).unwrap().len() > 8).unwrap()
}

/// Removes empty segments after `keep`, so `keep` is the last segment
/// (as if the process died before opening a new one).
fn drop_newer_segments(dir: &Path, keep: &Path) {
    for p in segments(dir) {
        if p.as_path() > keep {
            std::fs::remove_file(p).unwrap();
        }
    }
}

#[test]
fn truncated_tail_is_repaired_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    write_batches(tmp.path(), 3);
    let seg = last_data_segment(tmp.path());
    drop_newer_segments(tmp.path(), &seg);
    let len = std::fs::metadata(&seg).unwrap().len();
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 7).unwrap();

    let db = open(tmp.path(), small_opts());
    let report = db.repair_report().cloned().expect("a repair report");
    assert_eq!(report.segment, seg);
    assert!(report.offset < len - 7 && report.offset > 8, "offset {}", report.offset);
    assert_eq!(report.discarded_bytes, len - 7 - report.offset);
    assert!(report.to_string().contains(&seg.display().to_string()));
    assert_eq!(db.stats().repair, Some(report.clone()));
    let data = dump(&db, i64::MIN + 1, i64::MAX);
    assert_eq!(data.len(), 5);
    for (_, samples) in &data {
        let ts: Vec<i64> = samples.iter().map(|s| s.t).collect();
        assert_eq!(ts, [0, 1000], "the torn third batch is gone entirely");
    }
    // The repaired WAL accepts new data and reopens cleanly.
    let mut app = db.appender();
    app.append(&series(0), 5000, 1.0).unwrap();
    app.commit().unwrap();
    db.close().unwrap();
    let db = open(tmp.path(), small_opts());
    assert!(db.repair_report().is_none());
    assert_eq!(dump(&db, 0, 10_000)[0].1.len(), 3);
}

#[test]
fn zero_filled_tail_is_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    write_batches(tmp.path(), 2);
    let seg = last_data_segment(tmp.path());
    drop_newer_segments(tmp.path(), &seg);
    let len = std::fs::metadata(&seg).unwrap().len();
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(len + 4096).unwrap();
    let db = open(tmp.path(), small_opts());
    let r = db.repair_report().expect("repaired");
    assert_eq!((r.offset, r.discarded_bytes), (len, 4096));
    assert_eq!(dump(&db, 0, 10_000)[0].1.len(), 2);
}

#[test]
fn flipped_byte_in_the_middle_is_an_error_naming_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    write_batches(tmp.path(), 3);
    let seg = last_data_segment(tmp.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    // Segment header is 8 bytes, record header 12: flip a payload byte of
    // the first record.
    bytes[8 + 12 + 3] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let err = Db::open(tmp.path(), small_opts()).unwrap_err();
    match &err {
        OpenError::Wal(WalError::Corrupt { path, offset, .. }) => {
            assert_eq!(path, &seg);
            assert_eq!(*offset, 8);
        }
        other => panic!("unexpected error {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&seg.display().to_string()) && msg.contains("offset 8"), "{msg}");
    // Nothing was modified: the error repeats.
    assert!(Db::open(tmp.path(), small_opts()).is_err());
    assert_eq!(std::fs::read(&seg).unwrap(), bytes);
}

#[test]
fn flipped_length_byte_is_corruption_not_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    write_batches(tmp.path(), 3);
    let seg = last_data_segment(tmp.path());
    drop_newer_segments(tmp.path(), &seg);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[8 + 2] ^= 0x01; // the first record's length field
    std::fs::write(&seg, &bytes).unwrap();
    let err = Db::open(tmp.path(), small_opts()).unwrap_err();
    assert!(matches!(err, OpenError::Wal(WalError::Corrupt { offset: 8, .. })), "{err}");
}

#[test]
fn missing_segment_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    // Several reopenings make several segments.
    for k in 0..3 {
        write_batches_from(tmp.path(), k, 1);
    }
    let segs = segments(tmp.path());
    assert!(segs.len() >= 3, "{segs:?}");
    std::fs::remove_file(&segs[1]).unwrap();
    let err = Db::open(tmp.path(), small_opts()).unwrap_err();
    match &err {
        OpenError::Wal(WalError::MissingSegment { missing, .. }) => assert_eq!(*missing, 2),
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("segment 2 is missing"), "{err}");
}

#[test]
fn segments_rotate_and_replay_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path(), small_opts());
    // ~100 series × 14 bytes per sample per commit: many 64 KiB segments.
    for b in 0..200 {
        let mut app = db.appender();
        for i in 0..100 {
            app.append(&series(i), b * 10, (b * i as i64) as f64).unwrap();
        }
        app.commit().unwrap();
    }
    db.close().unwrap();
    assert!(segments(tmp.path()).len() > 3);
    let db = open(tmp.path(), small_opts());
    let data = dump(&db, 0, 10_000);
    assert_eq!(data.len(), 100);
    assert!(data.iter().all(|(_, s)| s.len() == 200));
    assert_eq!(db.stats().replay.samples, 200 * 100);
}

mod damage {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever happens to the WAL's bytes, opening never panics: it
        /// either fails with an error or recovers a prefix of the commits,
        /// each commit whole.
        #[test]
        fn damaged_wal_never_panics_and_keeps_whole_commits(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 0..4),
            cut in proptest::option::of(any::<prop::sample::Index>()),
            garbage in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            write_batches(tmp.path(), 6);
            let seg = last_data_segment(tmp.path());
            drop_newer_segments(tmp.path(), &seg);
            let mut bytes = std::fs::read(&seg).unwrap();
            for (i, x) in &flips {
                let i = i.index(bytes.len());
                bytes[i] ^= x;
            }
            if let Some(c) = cut {
                bytes.truncate(c.index(bytes.len() + 1));
            }
            bytes.extend_from_slice(&garbage);
            std::fs::write(&seg, &bytes).unwrap();
            match Db::open(tmp.path(), small_opts()) {
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(msg.contains(&seg.display().to_string()), "{}", msg);
                }
                Ok(db) => {
                    let data = dump(&db, i64::MIN + 1, i64::MAX);
                    let mut per_batch = std::collections::BTreeMap::<i64, usize>::new();
                    for (_, samples) in &data {
                        for s in samples {
                            *per_batch.entry(s.t).or_default() += 1;
                        }
                    }
                    let ts: Vec<i64> = per_batch.keys().copied().collect();
                    let want: Vec<i64> = (0..ts.len() as i64).map(|b| b * 1000).collect();
                    prop_assert_eq!(ts, want, "a prefix of the commits");
                    prop_assert!(per_batch.values().all(|n| *n == 5), "whole commits: {:?}", per_batch);
                    if flips.is_empty() && cut.is_none() && garbage.is_empty() {
                        prop_assert_eq!(per_batch.len(), 6);
                    }
                }
            }
        }
    }
}

#[test]
fn every_fsync_policy_replays_after_close() {
    use std::time::Duration;
    use tsdb::FsyncPolicy;
    for policy in [FsyncPolicy::Always, FsyncPolicy::Interval(Duration::from_millis(5)), FsyncPolicy::Never] {
        let tmp = tempfile::tempdir().unwrap();
        let opts = tsdb::Options::builder().fsync(policy).wal_segment_size(8192).build();
        let db = open(tmp.path(), opts.clone());
        for b in 0..50 {
            let mut app = db.appender();
            app.append(&series(b % 3), b as i64, 1.0).unwrap();
            app.commit().unwrap();
        }
        db.close().unwrap();
        let db = open(tmp.path(), opts);
        let n: usize = dump(&db, 0, 1000).iter().map(|(_, s)| s.len()).sum();
        assert_eq!(n, 50, "{policy:?}");
    }
}
