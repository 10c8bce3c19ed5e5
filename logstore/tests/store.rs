//! Store behaviour: reopen, corruption, limits, out-of-order, retention.

use crate::common::{collect, dump, lbl, open, opts};
use logstore::{OpenError, RejectReason, Store};
use model::{Direction, LogEntry, LogQueryable, Matcher, StorageError};
use std::time::Duration;

const HOUR: i64 = 3_600_000_000_000;

fn entries(from: i64, n: i64, tag: &str) -> Vec<LogEntry> {
    (0..n)
        .map(|i| {
            LogEntry::new(from + i, format!("{tag} line {i} {}", "x".repeat((i % 40) as usize)))
        })
        .collect()
}

#[test]
fn head_is_replayed_from_the_wal() {
    let tmp = tempfile::tempdir().unwrap();
    let a = lbl(&[("job", "a")]);
    let b = lbl(&[("job", "b"), ("env", "prod")]);
    let want = {
        let s = open(tmp.path(), &opts());
        s.push(&[(a.clone(), entries(0, 50, "a")), (b.clone(), entries(10, 5, "b"))]).unwrap();
        let mut m = LogEntry::new(100, "with metadata");
        m.metadata = lbl(&[("trace_id", "abc")]);
        s.push(&[(a.clone(), vec![m])]).unwrap();
        dump(&s)
        // Dropped without flush or close: only the WAL has the data.
    };
    assert_eq!(want.len(), 2);
    let s = open(tmp.path(), &opts());
    assert_eq!(s.open_report().wal_records, 2);
    assert_eq!(s.open_report().chunk_files, 0);
    assert_eq!(dump(&s), want);
    let a_entries = &want.iter().find(|(l, _)| *l == a).unwrap().1;
    assert_eq!(a_entries.last().unwrap().metadata, lbl(&[("trace_id", "abc")]));
}

#[test]
fn blocks_are_read_back_from_chunk_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.block_size(2048);
    let a = lbl(&[("job", "a")]);
    let want = {
        let s = open(tmp.path(), &o);
        for k in 0..10 {
            s.push(&[(a.clone(), entries(k * 100, 100, "a"))]).unwrap();
        }
        assert!(s.stats().blocks > 5, "{:?}", s.stats());
        s.flush().unwrap();
        s.push(&[(a.clone(), entries(2000, 10, "late"))]).unwrap();
        let d = dump(&s);
        s.close().unwrap();
        d
    };
    let s = open(tmp.path(), &o);
    let r = s.open_report().clone();
    assert_eq!(r.chunk_files, 2);
    assert_eq!(r.wal_records, 0, "the WAL was truncated by the flushes");
    assert_eq!(dump(&s), want);
    let st = s.stats();
    assert_eq!(st.entries, 1010);
    assert!(st.compressed_bytes > 0 && st.compressed_bytes < st.raw_bytes);
    // Sub-ranges and both directions.
    for (lo, hi) in [(0, 0), (150, 420), (999, 1000), (995, 2005), (3000, 4000)] {
        let fwd = collect(&s, &[Matcher::equal("job", "a")], lo, hi, Direction::Forward);
        let bwd = collect(&s, &[Matcher::equal("job", "a")], lo, hi, Direction::Backward);
        let expect: Vec<LogEntry> =
            want[0].1.iter().filter(|e| e.ts >= lo && e.ts <= hi).cloned().collect();
        if expect.is_empty() {
            assert!(fwd.is_empty() && bwd.is_empty());
            continue;
        }
        assert_eq!(fwd[0].1, expect);
        let mut rev = expect.clone();
        rev.reverse();
        assert_eq!(bwd[0].1, rev);
    }
}

#[test]
fn out_of_order_window_duplicates_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.max_chunk_age(Duration::from_secs(7200)).block_size(1024);
    let s = open(tmp.path(), &o);
    let a = lbl(&[("job", "a")]);
    let t = 10 * HOUR;
    let r = s.push(&[(a.clone(), vec![LogEntry::new(t, "newest")])]).unwrap();
    assert_eq!(r.accepted, 1);
    s.flush().unwrap();
    // Within the window (max_chunk_age / 2 = 1h): accepted, even though it
    // is older than the flushed block.
    let r = s
        .push(&[(
            a.clone(),
            vec![LogEntry::new(t - HOUR / 2, "ooo"), LogEntry::new(t - HOUR - 1, "too old")],
        )])
        .unwrap();
    assert_eq!(r.accepted, 1);
    assert_eq!(r.rejected.len(), 1);
    let rej = &r.rejected[0];
    assert_eq!(rej.ts, t - HOUR - 1);
    assert!(
        matches!(rej.reason, RejectReason::TooFarBehind { oldest_acceptable, .. } if oldest_acceptable == t - HOUR)
    );
    let msg = rej.reason.to_string();
    assert!(msg.starts_with("entry too far behind, entry timestamp is: 1970-01-01T08:59:59.999999999Z, oldest acceptable timestamp is: 1970-01-01T09:00:00Z"), "{msg}");
    // Exact duplicate (same ts and line) dropped; same ts, other line kept;
    // a duplicate inside one request dropped too.
    let r = s
        .push(&[(
            a.clone(),
            vec![
                LogEntry::new(t - HOUR / 2, "ooo"),
                LogEntry::new(t - HOUR / 2, "ooo 2"),
                LogEntry::new(t - HOUR / 2, "ooo 2"),
            ],
        )])
        .unwrap();
    assert_eq!((r.accepted, r.duplicates), (1, 2));
    // Equal timestamps across overlapping blocks come out in push order.
    s.push(&[(a.clone(), vec![LogEntry::new(t, "newest again")])]).unwrap();
    s.flush().unwrap();
    s.push(&[(a.clone(), vec![LogEntry::new(t, "third")])]).unwrap();
    let lines = |d: Direction| -> Vec<String> {
        collect(&s, &[], 0, i64::MAX, d)[0].1.iter().map(|e| e.line.clone()).collect()
    };
    assert_eq!(lines(Direction::Forward), ["ooo", "ooo 2", "newest", "newest again", "third"]);
    assert_eq!(lines(Direction::Backward), ["third", "newest again", "newest", "ooo 2", "ooo"]);
    drop(s);
    let s = open(tmp.path(), &o);
    let fwd: Vec<String> = dump(&s)[0].1.iter().map(|e| e.line.clone()).collect();
    assert_eq!(fwd, ["ooo", "ooo 2", "newest", "newest again", "third"]);
    // The window survives a restart.
    let r = s.push(&[(a, vec![LogEntry::new(t - 2 * HOUR, "old")])]).unwrap();
    assert_eq!(r.rejected.len(), 1);
}

#[test]
fn limits_give_clear_rejections() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.max_line_size(10).max_labels_per_stream(2).max_streams(2);
    let s = open(tmp.path(), &o);
    let r = s
        .push(&[
            (
                lbl(&[("job", "a")]),
                vec![LogEntry::new(1, "short"), LogEntry::new(2, "much too long line")],
            ),
            (lbl(&[("a", "1"), ("b", "2"), ("c", "3")]), vec![LogEntry::new(1, "x")]),
            (lbl(&[("job", "b")]), vec![LogEntry::new(1, "x")]),
            (lbl(&[("job", "c")]), vec![LogEntry::new(1, "x"), LogEntry::new(2, "y")]),
            (lbl(&[]), vec![LogEntry::new(1, "x")]),
            (lbl(&[("0bad", "v")]), vec![LogEntry::new(1, "x")]),
        ])
        .unwrap();
    assert_eq!(r.accepted, 2);
    let msgs: Vec<String> = r.rejected.iter().map(|x| x.to_string()).collect();
    assert_eq!(msgs.len(), 6, "{msgs:#?}");
    assert!(
        msgs[0].contains(
            "max entry size '10' bytes exceeded while adding an entry with length '18' bytes"
        ),
        "{}",
        msgs[0]
    );
    assert!(msgs[0].starts_with("stream {job=\"a\"}"));
    assert!(msgs[1].contains("has 3 label names; limit 2"), "{}", msgs[1]);
    assert!(msgs[2].contains("maximum active stream limit exceeded (2 streams)"), "{}", msgs[2]);
    assert_eq!(r.rejected[3].ts, 2);
    assert!(msgs[4].contains("at least one label pair is required"), "{}", msgs[4]);
    assert!(msgs[5].contains("invalid label name \"0bad\""), "{}", msgs[5]);
    assert_eq!(s.stats().streams, 2);
}

#[test]
fn retention_deletes_old_data_and_survives_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.retention(Some(Duration::from_secs(3600))).max_chunk_age(Duration::from_secs(100 * 3600));
    let a = lbl(&[("job", "a")]);
    let b = lbl(&[("job", "b")]);
    {
        let s = open(tmp.path(), &o);
        s.push(&[
            (a.clone(), vec![LogEntry::new(HOUR, "old a")]),
            (b.clone(), vec![LogEntry::new(HOUR, "old b")]),
        ])
        .unwrap();
        s.flush().unwrap();
        s.push(&[(
            a.clone(),
            vec![LogEntry::new(2 * HOUR, "mid a"), LogEntry::new(5 * HOUR, "new a")],
        )])
        .unwrap();
        assert_eq!(s.stats().chunks, 1);
        let r = s.apply_retention(5 * HOUR + HOUR / 2).unwrap();
        assert_eq!(r.cutoff, Some(4 * HOUR + HOUR / 2));
        assert_eq!((r.files_removed, r.streams_removed, r.head_entries_removed), (1, 1, 1));
        let d = dump(&s);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].1, vec![LogEntry::new(5 * HOUR, "new a")]);
        let r = s.push(&[(a.clone(), vec![LogEntry::new(4 * HOUR, "too old")])]).unwrap();
        assert!(matches!(r.rejected[0].reason, RejectReason::OlderThanRetention { .. }));
        assert!(r.rejected[0].to_string().contains("entry too old"));
        assert_eq!(s.stats().chunks, 0);
        // Dropped without flush: the WAL still holds "mid a", which the
        // watermark must keep out after reopening.
    }
    let s = open(tmp.path(), &o);
    assert_eq!(s.stats().retention_cutoff, Some(4 * HOUR + HOUR / 2));
    let d = dump(&s);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].1, vec![LogEntry::new(5 * HOUR, "new a")]);
    let q = s.log_querier().unwrap();
    assert_eq!(q.label_values("job", &[], 0, i64::MAX).unwrap(), vec!["a"]);
}

fn wal_segment_with_data(dir: &std::path::Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::metadata(p).unwrap().len() > 8)
        .collect();
    segs.sort();
    segs.pop().expect("a WAL segment with records")
}

#[test]
fn torn_wal_tail_is_repaired_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let a = lbl(&[("job", "a")]);
    {
        let s = open(tmp.path(), &opts());
        for k in 0..3 {
            s.push(&[(a.clone(), entries(k * 10, 10, "a"))]).unwrap();
        }
    }
    let seg = wal_segment_with_data(tmp.path());
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 7).unwrap();
    drop(f);
    let s = open(tmp.path(), &opts());
    let rep = s.open_report().repair.clone().expect("repair reported");
    assert_eq!(rep.segment, seg);
    assert!(rep.to_string().contains("repaired torn WAL tail"), "{rep}");
    assert_eq!(s.open_report().wal_records, 2);
    assert_eq!(dump(&s)[0].1.len(), 20, "the torn batch is wholly absent");
}

#[test]
fn wal_corruption_names_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let a = lbl(&[("job", "a")]);
    {
        let s = open(tmp.path(), &opts());
        for k in 0..3 {
            s.push(&[(a.clone(), entries(k * 10, 10, "a"))]).unwrap();
        }
    }
    let seg = wal_segment_with_data(tmp.path());
    let mut data = std::fs::read(&seg).unwrap();
    data[30] ^= 0xff; // inside the first record's payload
    std::fs::write(&seg, data).unwrap();
    let err = Store::open(tmp.path(), opts().build()).unwrap_err();
    assert!(matches!(err, OpenError::Wal(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&seg.display().to_string()) && msg.contains("offset 8"), "{msg}");
}

#[test]
fn chunk_corruption_is_reported_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let a = lbl(&[("job", "a")]);
    {
        let s = open(tmp.path(), &opts());
        s.push(&[(a.clone(), entries(0, 100, "a"))]).unwrap();
        s.close().unwrap();
    }
    let chunk = tmp.path().join("chunks/00000001");
    let good = std::fs::read(&chunk).unwrap();
    // A damaged block: open succeeds (blocks are checked when read), the
    // query fails with the file and offset.
    let mut d = good.clone();
    d[20] ^= 0xff;
    std::fs::write(&chunk, &d).unwrap();
    let s = open(tmp.path(), &opts());
    let q = s.log_querier().unwrap();
    let mut st = q.select(&[], 0, 1000, Direction::Forward).unwrap();
    let err = st[0].entries.next().unwrap_err();
    assert!(matches!(err, StorageError::Corrupt(_)));
    let msg = err.to_string();
    assert!(
        msg.contains("00000001") && msg.contains("offset 8") && msg.contains("checksum"),
        "{msg}"
    );
    drop(st);
    drop(q);
    drop(s);
    // A damaged index: open fails naming the file.
    let mut d = good.clone();
    let n = d.len();
    d[n - 20] ^= 0xff;
    std::fs::write(&chunk, &d).unwrap();
    let err = Store::open(tmp.path(), opts().build()).unwrap_err();
    assert!(matches!(err, OpenError::Chunk(_)), "{err:?}");
    assert!(err.to_string().contains("00000001"), "{err}");
    // Truncated: also an error, never a panic.
    std::fs::write(&chunk, &good[..good.len() / 2]).unwrap();
    assert!(Store::open(tmp.path(), opts().build()).is_err());
}

#[test]
fn readers_run_alongside_writers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.block_size(4096);
    let s = open(tmp.path(), &o);
    let a = lbl(&[("job", "a")]);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            for k in 0..200 {
                s.push(&[(a.clone(), entries(k * 10, 10, "w"))]).unwrap();
                if k % 50 == 0 {
                    s.flush().unwrap();
                }
            }
        });
        sc.spawn(|| {
            for _ in 0..50 {
                for (_, e) in dump(&s) {
                    assert!(e.windows(2).all(|w| w[0].ts <= w[1].ts));
                    assert_eq!(e.len() % 10, 0, "a push is visible wholly or not at all");
                }
            }
        });
    });
    assert_eq!(dump(&s)[0].1.len(), 2000);
}
