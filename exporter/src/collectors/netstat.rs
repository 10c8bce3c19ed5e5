//! `netstat`: selected counters of `/proc/net/netstat`, `/proc/net/snmp`
//! and `/proc/net/snmp6`, as untyped `node_netstat_<Proto>_<Field>`.

use super::FieldFilter;
use crate::collector::{Collector, Sink};
use crate::error::{Error, ParseError};
use crate::procfs::netstat;
use crate::root::Root;

/// A parser of one of the three files.
type Parser = fn(&str) -> Result<netstat::Stats<'_>, ParseError>;

pub(crate) struct NetStat {
    pub(crate) fields: FieldFilter,
}

impl Collector for NetStat {
    fn name(&self) -> &'static str {
        "netstat"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let mut fields = self.fields.matcher();
        // One name buffer for all fields: `node_netstat_` + `Proto_Field`.
        const PREFIX: &str = "node_netstat_";
        let mut name = String::from(PREFIX);
        let files: [(&str, Parser); 3] =
            [("net/netstat", netstat::parse_pairs), ("net/snmp", netstat::parse_pairs), ("net/snmp6", netstat::parse_snmp6)];
        for (rel, parse) in files {
            let path = root.proc_path(rel);
            let text = match root.read(&path) {
                Ok(t) => t,
                // Without IPv6 the kernel has no snmp6 file.
                Err(e) if rel == "net/snmp6" && e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            let stats = parse(&text).map_err(|e| Error::parse(&path, e))?;
            for (proto, field, raw) in stats {
                let v: f64 = raw.parse().map_err(|_| {
                    Error::parse(&path, ParseError::new(0, format!("invalid value {raw:?} for {proto}{field}")))
                })?;
                name.truncate(PREFIX.len());
                name.push_str(proto);
                name.push('_');
                name.push_str(field);
                if !fields.is_match(&name[PREFIX.len()..])? {
                    continue;
                }
                out.untyped(&name, &format!("Statistic {proto}{field}."), &[], v);
            }
        }
        Ok(())
    }
}
