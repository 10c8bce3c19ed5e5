//! `uname`: `node_uname_info` from the uname system call of the running
//! kernel (not from the injected roots, as node_exporter does).

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::root::Root;

pub(crate) struct Uname;

impl Collector for Uname {
    fn name(&self) -> &'static str {
        "uname"
    }

    fn collect(&self, _root: &Root, out: &mut Sink) -> Result<(), Error> {
        let u = rustix::system::uname();
        let s = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
        let (sysname, nodename, release, version, machine, domainname) = (
            s(u.sysname()),
            s(u.nodename()),
            s(u.release()),
            s(u.version()),
            s(u.machine()),
            s(u.domainname()),
        );
        out.gauge(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            &[
                ("sysname", &sysname),
                ("release", &release),
                ("version", &version),
                ("machine", &machine),
                ("nodename", &nodename),
                ("domainname", &domainname),
            ],
            1.0,
        );
        Ok(())
    }
}
