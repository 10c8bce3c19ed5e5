//! `pressure`: pressure stall information from `/proc/pressure`.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::procfs::pressure;
use crate::root::Root;

pub(crate) struct Pressure;

fn seconds(us: Option<u64>) -> f64 {
    // node_exporter divides twice by 1000; keep the same rounding.
    us.unwrap_or(0) as f64 / 1000.0 / 1000.0
}

impl Collector for Pressure {
    fn name(&self) -> &'static str {
        "pressure"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        for res in ["cpu", "io", "memory"] {
            let p = match root.parse_proc(&format!("pressure/{res}"), pressure::parse) {
                Ok(p) => p,
                Err(e) if e.is_not_found() => {
                    return Err(Error::NoData {
                        collector: "pressure",
                        reason: format!("pressure information is unavailable (Linux >= 4.20 with CONFIG_PSI needed): {e}"),
                    })
                }
                Err(e) => return Err(e),
            };
            match res {
                "cpu" => out.counter(
                    "node_pressure_cpu_waiting_seconds_total",
                    "Total time in seconds that processes have waited for CPU time",
                    &[],
                    seconds(p.some_total),
                ),
                "io" => {
                    out.counter(
                        "node_pressure_io_waiting_seconds_total",
                        "Total time in seconds that processes have waited due to IO congestion",
                        &[],
                        seconds(p.some_total),
                    );
                    out.counter(
                        "node_pressure_io_stalled_seconds_total",
                        "Total time in seconds no process could make progress due to IO congestion",
                        &[],
                        seconds(p.full_total),
                    );
                }
                _ => {
                    out.counter(
                        "node_pressure_memory_waiting_seconds_total",
                        "Total time in seconds that processes have waited for memory",
                        &[],
                        seconds(p.some_total),
                    );
                    out.counter(
                        "node_pressure_memory_stalled_seconds_total",
                        "Total time in seconds no process could make progress due to memory congestion",
                        &[],
                        seconds(p.full_total),
                    );
                }
            }
        }
        Ok(())
    }
}
