//! `filefd`: `node_filefd_allocated` and `node_filefd_maximum` from
//! `/proc/sys/fs/file-nr`.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::procfs::file_nr;
use crate::root::Root;

pub(crate) struct FileFd;

impl Collector for FileFd {
    fn name(&self) -> &'static str {
        "filefd"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let (allocated, maximum) = root.parse_proc("sys/fs/file-nr", file_nr::parse)?;
        out.gauge("node_filefd_allocated", "File descriptor statistics: allocated.", &[], allocated as f64);
        out.gauge("node_filefd_maximum", "File descriptor statistics: maximum.", &[], maximum as f64);
        Ok(())
    }
}
