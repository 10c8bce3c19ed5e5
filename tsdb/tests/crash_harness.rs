//! The kill -9 harness of the storage crates' crash tests (tsdb's and
//! logstore's, which includes this file with `#[path]`).
//!
//! A crash test re-executes its own test binary to run an ignored child
//! test that writes numbered batches forever, printing `start N` once and
//! `ack N` after each batch the store acknowledged. The parent kills the
//! child with SIGKILL at a random moment, reopens the store, and checks
//! what it holds with [`check_batches`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A small deterministic PRNG (xorshift64*), so the tests need no crate.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from the clock (the seed is printed, so a failing
    /// run can be told apart from others).
    pub fn from_clock() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        eprintln!("crash test seed {seed}");
        Rng(seed)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Runs the ignored test `child` of this test binary with `env_var` set
/// to `dir`, waits until it has started, kills it after a random delay of
/// up to 150 ms, and returns the batches it acknowledged.
pub fn run_and_kill(child: &str, env_var: &str, dir: &Path, rng: &mut Rng) -> Vec<i64> {
    let exe = std::env::current_exe().unwrap();
    let mut proc = Command::new(exe)
        .args(["--exact", child, "--ignored", "--nocapture", "--test-threads=1"])
        .env(env_var, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = proc.stdout.take().unwrap();
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
    proc.kill().unwrap(); // SIGKILL on Unix
    proc.wait().unwrap();
    reader.join().unwrap();
    rx.try_iter().filter(|n| *n >= 0).collect()
}

/// Checks the batches a store holds after round `round`: `per_batch` maps
/// each stored batch to its item count, which must be `batch_size` (no
/// batch half-present); every acknowledged batch must be there; and the
/// stored batches run from 0 without gaps.
pub fn check_batches<'a>(
    round: usize,
    per_batch: &BTreeMap<i64, usize>,
    batch_size: usize,
    acked: impl IntoIterator<Item = &'a i64>,
) {
    for (b, n) in per_batch {
        assert_eq!(*n, batch_size, "round {round}: batch {b} is half-present ({n} items)");
    }
    for b in acked {
        assert!(per_batch.contains_key(b), "round {round}: acknowledged batch {b} was lost");
    }
    let stored: Vec<i64> = per_batch.keys().copied().collect();
    if let (Some(first), Some(last)) = (stored.first(), stored.last()) {
        assert_eq!(*first, 0);
        assert_eq!(stored.len() as i64, last + 1, "round {round}: gap in stored batches");
    }
}
