//! `meminfo`: `node_memory_*` from `/proc/meminfo`.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::procfs::meminfo;
use crate::root::Root;

pub(crate) struct MemInfo;

impl Collector for MemInfo {
    fn name(&self) -> &'static str {
        "meminfo"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        for e in root.parse_proc("meminfo", meminfo::parse)? {
            let name = format!("node_memory_{}", e.key);
            let help = format!("Memory information field {}.", e.key);
            out.gauge(&name, &help, &[], e.value);
        }
        Ok(())
    }
}
