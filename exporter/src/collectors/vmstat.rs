//! `vmstat`: selected `/proc/vmstat` fields as untyped `node_vmstat_*`.

use regex::Regex;

use crate::collector::{Collector, Sink};
use crate::error::{Error, ParseError};
use crate::procfs::{f64_field, vmstat};
use crate::root::Root;

pub(crate) struct VmStat {
    pub(crate) fields: Regex,
}

impl Collector for VmStat {
    fn name(&self) -> &'static str {
        "vmstat"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let path = root.proc_path("vmstat");
        let text = crate::root::read_text(&path)?;
        let pairs = vmstat::parse(&text).map_err(|e| Error::parse(&path, e))?;
        for (i, (name, raw)) in pairs.into_iter().enumerate() {
            let v = f64_field(raw, i + 1, name).map_err(|e: ParseError| Error::parse(&path, e))?;
            if !self.fields.is_match(name) {
                continue;
            }
            let metric = format!("node_vmstat_{name}");
            let help = format!("/proc/vmstat information field {name}.");
            out.untyped(&metric, &help, &[], v);
        }
        Ok(())
    }
}
