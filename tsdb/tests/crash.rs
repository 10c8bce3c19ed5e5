//! Crash safety: a child process appends batches and prints each
//! acknowledged one; the parent kills it with SIGKILL at random moments,
//! reopens the store, and checks that every acknowledged batch is there and
//! that every batch is all-or-nothing.

use crate::common::{dump, open, series};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
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

/// A small deterministic PRNG (xorshift64*), so the test needs no crate.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn crash_kill9_keeps_acknowledged_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let mut acked: BTreeSet<i64> = BTreeSet::new();
    let started = Instant::now();
    let rounds = 24;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash::crash_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env(ENV_DIR, tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ack ") {
                    let _ = tx.send(n.parse::<i64>().unwrap());
                } else if line.starts_with("start ") {
                    let _ = tx.send(-1);
                }
            }
        });
        // Wait for the child to be running, then kill it at a random moment.
        let _ = rx.recv_timeout(Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        let round_acks: Vec<i64> = rx.try_iter().filter(|n| *n >= 0).collect();
        acked.extend(&round_acks);

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
        for (b, n) in &per_batch {
            assert_eq!(*n, SERIES_PER_BATCH, "round {round}: batch {b} is half-present ({n} samples)");
        }
        for b in &acked {
            assert!(per_batch.contains_key(b), "round {round}: acknowledged batch {b} was lost");
        }
        // Batches are contiguous: nothing beyond the last stored one, no gaps.
        let stored: Vec<i64> = per_batch.keys().copied().collect();
        if let (Some(first), Some(last)) = (stored.first(), stored.last()) {
            assert_eq!(*first, 0);
            assert_eq!(stored.len() as i64, last + 1, "round {round}: gap in stored batches");
        }
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
