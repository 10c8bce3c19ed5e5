//! `schedstat`: per-CPU scheduler statistics from `/proc/schedstat`.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::procfs::schedstat;
use crate::root::Root;

pub(crate) struct SchedStat;

const NS_PER_SEC: f64 = 1e9;

impl Collector for SchedStat {
    fn name(&self) -> &'static str {
        "schedstat"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let cpus = match root.parse_proc("schedstat", schedstat::parse) {
            Ok(v) => v,
            Err(e) if e.is_not_found() => {
                return Err(Error::NoData { collector: "schedstat", reason: e.to_string() })
            }
            Err(e) => return Err(e),
        };
        for c in cpus {
            let l = [("cpu", c.cpu.as_str())];
            out.counter(
                "node_schedstat_running_seconds_total",
                "Number of seconds CPU spent running a process.",
                &l,
                c.running_ns as f64 / NS_PER_SEC,
            );
            out.counter(
                "node_schedstat_waiting_seconds_total",
                "Number of seconds spent by processing waiting for this CPU.",
                &l,
                c.waiting_ns as f64 / NS_PER_SEC,
            );
            out.counter(
                "node_schedstat_timeslices_total",
                "Number of timeslices executed by CPU.",
                &l,
                c.timeslices as f64,
            );
        }
        Ok(())
    }
}
