//! `softnet`: per-CPU packet processing from `/proc/net/softnet_stat`.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::procfs::softnet;
use crate::root::Root;

pub(crate) struct Softnet;

impl Collector for Softnet {
    fn name(&self) -> &'static str {
        "softnet"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let rows = root.parse_proc("net/softnet_stat", softnet::parse)?;
        for (cpu, r) in rows.iter().enumerate() {
            let cpu = cpu.to_string();
            let l = [("cpu", cpu.as_str())];
            out.counter("node_softnet_processed_total", "Number of processed packets", &l, r.processed as f64);
            out.counter("node_softnet_dropped_total", "Number of dropped packets", &l, r.dropped as f64);
            out.counter(
                "node_softnet_times_squeezed_total",
                "Number of times processing packets ran out of quota",
                &l,
                r.time_squeezed as f64,
            );
        }
        Ok(())
    }
}
