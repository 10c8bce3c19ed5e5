//! `vmstat`: selected `/proc/vmstat` fields as untyped `node_vmstat_*`.

use super::FieldFilter;
use crate::collector::{Collector, Sink};
use crate::error::{Error, ParseError};
use crate::procfs::{f64_field, vmstat};
use crate::root::Root;

pub(crate) struct VmStat {
    pub(crate) fields: FieldFilter,
}

impl Collector for VmStat {
    fn name(&self) -> &'static str {
        "vmstat"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let path = root.proc_path("vmstat");
        let text = root.read(&path)?;
        let pairs = vmstat::parse(&text).map_err(|e| Error::parse(&path, e))?;
        let mut fields = self.fields.matcher();
        for (i, (name, raw)) in pairs.into_iter().enumerate() {
            let v = f64_field(raw, i + 1, name).map_err(|e: ParseError| Error::parse(&path, e))?;
            if !fields.is_match(name)? {
                continue;
            }
            let metric = format!("node_vmstat_{name}");
            let help = format!("/proc/vmstat information field {name}.");
            out.untyped(&metric, &help, &[], v);
        }
        Ok(())
    }
}
