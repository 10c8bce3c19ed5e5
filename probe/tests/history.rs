//! Reading history files written by earlier versions.

use probe::{HistoryLog, Status, Window};
use std::path::Path;

#[test]
fn reads_version_1_fixture() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/history-v1.jsonl");
    // Open a copy: opening may append (it never rewrites a valid file).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    std::fs::copy(&src, &path).unwrap();
    let (_, hist) = HistoryLog::open(&path).unwrap();
    let web = &hist["web"];
    let last = web.last.as_ref().unwrap();
    assert_eq!((last.status, last.ping_ms, last.msg.as_str()), (Status::Up, Some(95), "200 - OK"));
    // 2025-11-09 (day 20401) beats + the day record of 2025-11-08 (day 20400).
    let now = 1762646460000 + 1000;
    let month = web.stats.totals(Window::Month, now);
    assert_eq!((month.up, month.down), (1439, 3));
    assert_eq!(web.stats.uptime(Window::Day, now), Some(0.5));
    assert_eq!(hist["db"].last.as_ref().unwrap().status, Status::Maintenance);
    assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&src).unwrap());
    assert_eq!(HistoryLog::read_beats(&path, None).unwrap().len(), 3);
}
