//! The `tcp` check: a connection to `hostname:port` succeeds in time.

use super::CheckOutcome;
use std::time::{Duration, Instant};

/// A prepared TCP port check.
#[derive(Debug)]
pub struct TcpCheck {
    pub(crate) hostname: String,
    pub(crate) port: u16,
}

impl TcpCheck {
    pub(crate) fn run(&self, timeout: Duration) -> CheckOutcome {
        let start = Instant::now();
        match super::connect(&self.hostname, self.port, start + timeout) {
            Ok(sock) => {
                let ms = start.elapsed().as_millis() as u64;
                drop(sock);
                CheckOutcome::up(format!("port {} open", self.port), Some(ms))
            }
            Err(e) => CheckOutcome::down(e),
        }
    }
}
