//! `netstat`: selected counters of `/proc/net/netstat`, `/proc/net/snmp`
//! and `/proc/net/snmp6`, as untyped `node_netstat_<Proto>_<Field>`.

use regex::Regex;

use crate::collector::{Collector, Sink};
use crate::error::{Error, ParseError};
use crate::procfs::netstat;
use crate::root::Root;

pub(crate) struct NetStat {
    pub(crate) fields: Regex,
}

impl Collector for NetStat {
    fn name(&self) -> &'static str {
        "netstat"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let mut files = vec![
            (root.proc_path("net/netstat"), root.parse_proc("net/netstat", netstat::parse_pairs)?),
            (root.proc_path("net/snmp"), root.parse_proc("net/snmp", netstat::parse_pairs)?),
        ];
        // Without IPv6 the kernel has no snmp6 file.
        match root.parse_proc("net/snmp6", netstat::parse_snmp6) {
            Ok(s) => files.push((root.proc_path("net/snmp6"), s)),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        for (path, stats) in files {
            for (proto, field, raw) in stats {
                let v: f64 = raw.parse().map_err(|_| {
                    Error::parse(&path, ParseError::new(0, format!("invalid value {raw:?} for {proto}{field}")))
                })?;
                let key = format!("{proto}_{field}");
                if !self.fields.is_match(&key) {
                    continue;
                }
                out.untyped(&format!("node_netstat_{key}"), &format!("Statistic {proto}{field}."), &[], v);
            }
        }
        Ok(())
    }
}
