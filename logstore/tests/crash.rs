//! Crash safety: a child process pushes batches and prints each
//! acknowledged one; the parent kills it with SIGKILL at random moments
//! (with a background flush running, so kills also land mid-flush),
//! reopens the store, and checks that every acknowledged batch is there and
//! that no batch is half-present.

use crate::common::{dump, lbl};
use crate::crash_harness::{check_batches, run_and_kill, Rng};
use logstore::{Options, Store};
use model::{Labels, LogEntry};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const STREAMS: usize = 4;
const PER_STREAM: usize = 3;
const ENV_DIR: &str = "LOGSTORE_CRASH_CHILD_DIR";

fn options() -> Options {
    Options::builder().block_size(2048).flush_interval(Some(Duration::from_millis(20))).build()
}

fn stream(i: usize) -> Labels {
    lbl(&[("job", "crash"), ("stream", &i.to_string())])
}

/// The child: pushes batch after batch until killed. Runs only when the
/// parent test re-executes this binary with the environment variable set.
#[test]
#[ignore = "child process of crash_kill9_keeps_acknowledged_batches"]
fn crash_child() {
    let Ok(dir) = std::env::var(ENV_DIR) else { return };
    let store = Store::open(&dir, options()).unwrap();
    let next = dump(&store).iter().filter_map(|(_, e)| e.last().map(|x| x.ts)).max();
    let mut b = next.map_or(0, |t| t / 10 + 1);
    println!("start {b}");
    loop {
        let req: Vec<(Labels, Vec<LogEntry>)> = (0..STREAMS)
            .map(|i| {
                let entries = (0..PER_STREAM)
                    .map(|j| {
                        LogEntry::new(
                            b * 10 + j as i64,
                            format!(
                                "batch {b} stream {i} entry {j} {}",
                                "p".repeat(b as usize % 64)
                            ),
                        )
                    })
                    .collect();
                (stream(i), entries)
            })
            .collect();
        let out = store.push(&req).unwrap();
        assert_eq!(out.accepted, STREAMS * PER_STREAM);
        println!("ack {b}");
        b += 1;
    }
}

#[test]
fn crash_kill9_keeps_acknowledged_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::from_clock();
    let mut acked: Vec<i64> = Vec::new();
    let started = Instant::now();
    let rounds = 24;
    let mut repairs = 0;
    for round in 0..rounds {
        acked.extend(run_and_kill("crash::crash_child", ENV_DIR, tmp.path(), &mut rng));

        let store =
            Store::open(tmp.path(), Options::builder().flush_interval(None).build()).unwrap();
        repairs += usize::from(store.open_report().repair.is_some());
        let mut per_batch: BTreeMap<i64, usize> = BTreeMap::new();
        for (labels, entries) in dump(&store) {
            let i: usize = labels.get("stream").unwrap().parse().unwrap();
            for e in &entries {
                let (b, j) = (e.ts / 10, e.ts % 10);
                let want =
                    format!("batch {b} stream {i} entry {j} {}", "p".repeat(b as usize % 64));
                assert_eq!(e.line, want, "round {round}: wrong line in {labels}");
                *per_batch.entry(b).or_default() += 1;
            }
        }
        check_batches(round, &per_batch, STREAMS * PER_STREAM, &acked);
        drop(store);
    }
    assert!(!acked.is_empty(), "the child never acknowledged a batch");
    eprintln!(
        "{rounds} rounds, {} batches acknowledged, {repairs} torn tails repaired, {:?}",
        acked.len(),
        started.elapsed()
    );
}
