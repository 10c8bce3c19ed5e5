//! Crash safety: a child process pushes batches and prints each
//! acknowledged one; the parent kills it with SIGKILL at random moments
//! (with a background flush running, so kills also land mid-flush),
//! reopens the store, and checks that every acknowledged batch is there and
//! that no batch is half-present.

use crate::common::{dump, lbl};
use logstore::{Options, Store};
use model::{Labels, LogEntry};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
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
    let mut acked: Vec<i64> = Vec::new();
    let started = Instant::now();
    let rounds = 24;
    let mut repairs = 0;
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
        let _ = rx.recv_timeout(Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        acked.extend(rx.try_iter().filter(|n| *n >= 0));

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
        for (b, n) in &per_batch {
            assert_eq!(
                *n,
                STREAMS * PER_STREAM,
                "round {round}: batch {b} is half-present ({n} entries)"
            );
        }
        for b in &acked {
            assert!(per_batch.contains_key(b), "round {round}: acknowledged batch {b} was lost");
        }
        let stored: Vec<i64> = per_batch.keys().copied().collect();
        if let (Some(first), Some(last)) = (stored.first(), stored.last()) {
            assert_eq!(*first, 0);
            assert_eq!(stored.len() as i64, last + 1, "round {round}: gap in stored batches");
        }
        drop(store);
    }
    assert!(!acked.is_empty(), "the child never acknowledged a batch");
    eprintln!(
        "{rounds} rounds, {} batches acknowledged, {repairs} torn tails repaired, {:?}",
        acked.len(),
        started.elapsed()
    );
}
