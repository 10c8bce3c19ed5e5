//! `stat`: kernel counters from `/proc/stat` (interrupts, context switches,
//! forks, boot time, process states, softirqs).

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::procfs::stat::{self, SOFTIRQ_VECTORS};
use crate::root::Root;

pub(crate) struct Stat {
    pub(crate) softirq: bool,
}

impl Collector for Stat {
    fn name(&self) -> &'static str {
        "stat"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let st = root.parse_proc("stat", stat::parse)?;
        let v = |o: Option<u64>| o.unwrap_or(0) as f64;
        out.counter("node_intr_total", "Total number of interrupts serviced.", &[], v(st.intr));
        out.counter("node_context_switches_total", "Total number of context switches.", &[], v(st.ctxt));
        out.counter("node_forks_total", "Total number of forks.", &[], v(st.processes));
        out.gauge("node_boot_time_seconds", "Node boot time, in unixtime.", &[], v(st.btime));
        out.gauge("node_procs_running", "Number of processes in runnable state.", &[], v(st.procs_running));
        out.gauge(
            "node_procs_blocked",
            "Number of processes blocked waiting for I/O to complete.",
            &[],
            v(st.procs_blocked),
        );
        if self.softirq {
            if let Some((_, per_vector)) = &st.softirq {
                for (name, count) in SOFTIRQ_VECTORS.iter().zip(per_vector) {
                    out.counter("node_softirqs_total", "Number of softirq calls.", &[("vector", name)], *count as f64);
                }
            }
        }
        Ok(())
    }
}
