//! `sockstat`: socket counts from `/proc/net/sockstat` and `sockstat6`.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::procfs::sockstat::{self, Sockstat};
use crate::root::Root;

pub(crate) struct SockStat;

/// The states node_exporter reports, in its order.
const STATES: [&str; 6] = ["inuse", "orphan", "tw", "alloc", "mem", "memory"];

fn emit(out: &mut Sink, s: &Sockstat, ipv6: bool) {
    if !ipv6 {
        if let Some(used) = s.used {
            out.gauge("node_sockstat_sockets_used", "Number of IPv4 sockets in use.", &[], used as f64);
        }
    }
    let page = rustix::param::page_size() as u64;
    for p in &s.protocols {
        let get = |k: &str| p.fields.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let mut pairs: Vec<(&str, u64)> = STATES.iter().filter_map(|st| get(st).map(|v| (*st, v))).collect();
        if let Some(mem) = get("mem") {
            pairs.push(("mem_bytes", mem.saturating_mul(page)));
        }
        for (state, v) in pairs {
            let name = format!("node_sockstat_{}_{}", p.name, state);
            let help = format!("Number of {} sockets in state {}.", p.name, state);
            out.gauge(&name, &help, &[], v as f64);
        }
    }
}

impl Collector for SockStat {
    fn name(&self) -> &'static str {
        "sockstat"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        for (file, ipv6) in [("net/sockstat", false), ("net/sockstat6", true)] {
            match root.parse_proc(file, sockstat::parse) {
                Ok(s) => emit(out, &s, ipv6),
                // IPv6 (or the whole file) may be absent; node_exporter skips it.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
