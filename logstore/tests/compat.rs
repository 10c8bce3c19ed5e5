//! Reading a store written by format version 1 (committed under
//! `tests/data/v1/`): one chunk file with two streams (one with structured
//! metadata, one with overlapping blocks) and a WAL segment with entries
//! that were never flushed.
//!
//! The fixture was made by running
//! `LOGSTORE_WRITE_FIXTURE=logstore/tests/data/v1 cargo test -p logstore --test tests -- --ignored compat::write_v1_fixture`
//! on an empty directory.

use crate::common::{dump, lbl};
use logstore::{FsyncPolicy, Options, Store};
use model::{Labels, LogEntry};
use std::path::Path;

fn options() -> Options {
    Options::builder().flush_interval(None).fsync(FsyncPolicy::Never).block_size(1024).build()
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
fn write_v1_fixture() {
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

#[test]
fn reads_format_v1() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1");
    let tmp = tempfile::tempdir().unwrap();
    for sub in ["chunks", "wal"] {
        std::fs::create_dir_all(tmp.path().join(sub)).unwrap();
        for f in std::fs::read_dir(fixture.join(sub)).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), tmp.path().join(sub).join(f.file_name())).unwrap();
        }
    }
    let s = Store::open(tmp.path(), options()).unwrap();
    assert_eq!(s.open_report().chunk_files, 2);
    assert_eq!(s.open_report().wal_records, 1);
    let mut want = expected();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(dump(&s), want);
}
