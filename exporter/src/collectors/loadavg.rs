//! `loadavg`: `node_load1`, `node_load5`, `node_load15` from `/proc/loadavg`.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::procfs::loadavg;
use crate::root::Root;

pub(crate) struct LoadAvg;

impl Collector for LoadAvg {
    fn name(&self) -> &'static str {
        "loadavg"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let [l1, l5, l15] = root.parse_proc("loadavg", loadavg::parse)?;
        out.gauge("node_load1", "1m load average.", &[], l1);
        out.gauge("node_load5", "5m load average.", &[], l5);
        out.gauge("node_load15", "15m load average.", &[], l15);
        Ok(())
    }
}
