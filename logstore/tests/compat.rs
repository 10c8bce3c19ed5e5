//! Reading stores written by each chunk format version (committed under
//! `tests/data/v<N>/`): chunk files with two streams (one with structured
//! metadata, one with overlapping blocks) and a WAL segment with entries
//! that were never flushed. Version 1 has no block filters; version 2
//! stores a trigram filter after each block; version 3 changes the block
//! layout (newline-terminated lines instead of a lengths column,
//! fixed-width timestamp deltas, flags at the end).
//!
//! A fixture is made by running
//! `LOGSTORE_WRITE_FIXTURE=$PWD/logstore/tests/data/v<N> cargo test -p logstore --test tests -- --ignored compat::write_fixture`
//! from the workspace root (an absolute path: tests run in the crate's
//! directory) on an empty directory with the code that writes version N.

use crate::common::{collect_hinted, dump, lbl};
use logstore::{FsyncPolicy, Options, Store};
use model::{Direction, Labels, LogEntry, Matcher};
use std::path::Path;

fn options() -> Options {
    // Filters even for these tiny blocks, so that the version 2 and 3
    // fixtures have some.
    Options::builder()
        .flush_interval(None)
        .fsync(FsyncPolicy::Never)
        .block_size(1024)
        .block_filter_min_size(0)
        .build()
}

fn expected() -> Vec<(Labels, Vec<LogEntry>)> {
    let mut meta = LogEntry::new(1_700_000_000_000_000_005, "GET /metrics 200");
    meta.metadata = lbl(&[("trace_id", "0af7651916cd43dd")]);
    let a: Vec<LogEntry> =
        vec![LogEntry::new(1_700_000_000_000_000_000, "level=info msg=\"started\""), meta]
            .into_iter()
            .chain((0..40).map(|i| {
                LogEntry::new(
                    1_700_000_000_000_000_010 + i,
                    format!("line {i} héllo wörld {}", "x".repeat(i as usize)),
                )
            }))
            .collect();
    let b = vec![
        LogEntry::new(1_700_000_000_000_000_000, "ooo: earlier than the first block"),
        LogEntry::new(1_700_000_000_000_000_100, "first"),
        LogEntry::new(1_700_000_000_000_000_100, "same ts, pushed later"),
        LogEntry::new(1_700_000_000_000_000_200, "unflushed, from the WAL"),
    ];
    vec![(lbl(&[("job", "api")]), a), (lbl(&[("job", "nginx"), ("env", "prod")]), b)]
}

/// Writes the fixture. Not a test of its own: run by hand (see the module
/// docs) when adding a format version.
#[test]
#[ignore = "writes the compatibility fixture"]
fn write_fixture() {
    let Ok(dir) = std::env::var("LOGSTORE_WRITE_FIXTURE") else { return };
    let s = Store::open(&dir, options()).unwrap();
    let e = expected();
    let (api, nginx) = (&e[0], &e[1]);
    s.push(&[(api.0.clone(), api.1.clone()), (nginx.0.clone(), vec![nginx.1[1].clone()])]).unwrap();
    s.flush().unwrap();
    s.push(&[(nginx.0.clone(), vec![nginx.1[0].clone(), nginx.1[2].clone()])]).unwrap();
    s.flush().unwrap();
    s.push(&[(nginx.0.clone(), vec![nginx.1[3].clone()])]).unwrap();
    // Dropped without close: the last push stays in the WAL only.
}

/// Opens a copy of the fixture of `version`.
fn open_fixture(version: u32) -> (tempfile::TempDir, Store) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/v{version}"));
    let tmp = tempfile::tempdir().unwrap();
    for sub in ["chunks", "wal"] {
        std::fs::create_dir_all(tmp.path().join(sub)).unwrap();
        for f in std::fs::read_dir(fixture.join(sub)).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), tmp.path().join(sub).join(f.file_name())).unwrap();
        }
    }
    let s = Store::open(tmp.path(), options()).unwrap();
    (tmp, s)
}

fn check_fixture(s: &Store) {
    assert_eq!(s.open_report().chunk_files, 2);
    assert_eq!(s.open_report().wal_records, 1);
    let mut want = expected();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(dump(s), want.clone());
    // Line hints give the entries containing the needle, whichever way
    // the blocks are filtered.
    for needle in ["héllo wörld xx", "same ts", "GET /metrics", "not there"] {
        check_hinted(s, &want, needle);
    }
}

/// A select with `needle` as line hint gives the `job="api"` entries of
/// `want` that contain it.
fn check_hinted(s: &Store, want: &[(Labels, Vec<LogEntry>)], needle: &str) {
    let hinted = collect_hinted(
        s,
        &[Matcher::equal("job", "api")],
        i64::MIN,
        i64::MAX,
        Direction::Forward,
        &[needle],
    );
    let api = &want.iter().find(|(l, _)| l.get("job") == Some("api")).unwrap().1;
    let expect: Vec<LogEntry> = api.iter().filter(|e| e.line.contains(needle)).cloned().collect();
    assert_eq!(hinted.len(), 1, "{needle:?}");
    assert_eq!(hinted[0].1, expect, "{needle:?}");
}

#[test]
fn reads_format_v1() {
    let (_tmp, s) = open_fixture(1);
    check_fixture(&s);
}

#[test]
fn reads_format_v2() {
    let (_tmp, s) = open_fixture(2);
    check_fixture(&s);
    let chunk = _tmp.path().join("chunks/00000001");
    let data = std::fs::read(&chunk).unwrap();
    assert_eq!(data[4], 2, "fixture is format version 2");
}

#[test]
fn reads_format_v3() {
    let (tmp, s) = open_fixture(3);
    check_fixture(&s);
    for f in ["chunks/00000001", "chunks/00000002"] {
        let data = std::fs::read(tmp.path().join(f)).unwrap();
        assert_eq!(data[4], 3, "fixture {f} is format version 3");
    }
}

/// A store written now is read back after reopening, in the current
/// version, including a block whose lines hold newlines (stored with a
/// lengths column rather than newline-terminated).
#[test]
fn writes_format_v3() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), options()).unwrap();
    let mut want = expected();
    want[0].1.push(LogEntry::new(1_700_000_000_000_001_000, "two\nlines"));
    want[0].1.push(LogEntry::new(1_700_000_000_000_001_001, "after them"));
    s.push(&want).unwrap();
    s.close().unwrap();
    let data = std::fs::read(dir.path().join("chunks/00000001")).unwrap();
    assert_eq!(data[4], 3);
    let s = Store::open(dir.path(), options()).unwrap();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(dump(&s), want.clone());
    for needle in ["two\nlines", "s\na", "after", "wörld x"] {
        check_hinted(&s, &want, needle);
    }
}
