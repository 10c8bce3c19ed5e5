//! `entropy`: the kernel's entropy pool, from `/proc/sys/kernel/random`.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::root::Root;

pub(crate) struct Entropy;

impl Collector for Entropy {
    fn name(&self) -> &'static str {
        "entropy"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let avail = root.read_u64(&root.proc_path("sys/kernel/random/entropy_avail"))?;
        out.gauge("node_entropy_available_bits", "Bits of available entropy.", &[], avail as f64);
        let pool = root.read_u64(&root.proc_path("sys/kernel/random/poolsize"))?;
        out.gauge("node_entropy_pool_size_bits", "Bits of entropy pool.", &[], pool as f64);
        Ok(())
    }
}
