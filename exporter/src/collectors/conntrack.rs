//! `conntrack`: netfilter connection tracking table size and statistics.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::procfs::conntrack_stat;
use crate::root::Root;

pub(crate) struct Conntrack;

/// (column in `/proc/net/stat/nf_conntrack`, metric suffix, help).
const STATS: [(&str, &str, &str); 8] = [
    ("found", "found", "Number of searched entries which were successful."),
    ("invalid", "invalid", "Number of packets seen which can not be tracked."),
    ("ignore", "ignore", "Number of packets seen which are already connected to a conntrack entry."),
    ("insert", "insert", "Number of entries inserted into the list."),
    ("insert_failed", "insert_failed", "Number of entries for which list insertion was attempted but failed."),
    ("drop", "drop", "Number of packets dropped due to conntrack failure."),
    (
        "early_drop",
        "early_drop",
        "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
    ),
    (
        "search_restart",
        "search_restart",
        "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
    ),
];

impl Collector for Conntrack {
    fn name(&self) -> &'static str {
        "conntrack"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let count = match root.read_u64(&root.proc_path("sys/net/netfilter/nf_conntrack_count")) {
            Ok(v) => v,
            Err(e) if e.is_not_found() => {
                return Err(Error::NoData { collector: "conntrack", reason: e.to_string() })
            }
            Err(e) => return Err(e),
        };
        out.gauge(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            &[],
            count as f64,
        );
        let max = match root.read_u64(&root.proc_path("sys/net/netfilter/nf_conntrack_max")) {
            Ok(v) => v,
            Err(e) if e.is_not_found() => {
                return Err(Error::NoData { collector: "conntrack", reason: e.to_string() })
            }
            Err(e) => return Err(e),
        };
        out.gauge("node_nf_conntrack_entries_limit", "Maximum size of connection tracking table.", &[], max as f64);

        let stats = root.parse_proc("net/stat/nf_conntrack", conntrack_stat::parse)?;
        for (col, suffix, help) in STATS {
            let v = stats.iter().find(|(k, _)| k == col).map(|(_, v)| *v).unwrap_or(0);
            out.gauge(&format!("node_nf_conntrack_stat_{suffix}"), help, &[], v as f64);
        }
        Ok(())
    }
}
