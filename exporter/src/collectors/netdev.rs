//! `netdev`: network interface counters.
//!
//! As node_exporter 1.5 does by default, the counters come from an
//! rtnetlink dump (`IFLA_STATS64`) of the running kernel. With
//! `--no-collector.netdev.netlink` they are read from the same kernel
//! counters under `--path.sysfs` (`class/net/<dev>/statistics/`), where
//! node_exporter would read `/proc/net/dev` (which sums some of them).

use regex_lite::Regex;

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::netlink::{self, stat};
use crate::root::{list_dir, Root};

pub(crate) struct NetDev {
    pub(crate) include: Option<Regex>,
    pub(crate) exclude: Option<Regex>,
    pub(crate) netlink: bool,
}

/// (statistics file, `rtnl_link_stats64` index, node_exporter stat name).
const STATS: [(&str, usize, &str); 17] = [
    ("rx_bytes", stat::RX_BYTES, "receive_bytes"),
    ("rx_packets", stat::RX_PACKETS, "receive_packets"),
    ("rx_errors", stat::RX_ERRORS, "receive_errs"),
    ("rx_dropped", stat::RX_DROPPED, "receive_drop"),
    ("rx_fifo_errors", stat::RX_FIFO_ERRORS, "receive_fifo"),
    ("rx_frame_errors", stat::RX_FRAME_ERRORS, "receive_frame"),
    ("rx_compressed", stat::RX_COMPRESSED, "receive_compressed"),
    ("multicast", stat::MULTICAST, "receive_multicast"),
    ("rx_nohandler", stat::RX_NOHANDLER, "receive_nohandler"),
    ("tx_bytes", stat::TX_BYTES, "transmit_bytes"),
    ("tx_packets", stat::TX_PACKETS, "transmit_packets"),
    ("tx_errors", stat::TX_ERRORS, "transmit_errs"),
    ("tx_dropped", stat::TX_DROPPED, "transmit_drop"),
    ("tx_fifo_errors", stat::TX_FIFO_ERRORS, "transmit_fifo"),
    ("collisions", stat::COLLISIONS, "transmit_colls"),
    ("tx_carrier_errors", stat::TX_CARRIER_ERRORS, "transmit_carrier"),
    ("tx_compressed", stat::TX_COMPRESSED, "transmit_compressed"),
];

fn emit(out: &mut Sink, dev: &str, stat: &str, v: u64) {
    out.counter(
        &format!("node_network_{stat}_total"),
        &format!("Network device statistic {stat}."),
        &[("device", dev)],
        v as f64,
    );
}

impl NetDev {
    fn ignored(&self, dev: &str) -> bool {
        if let Some(inc) = &self.include {
            if !inc.is_match(dev) {
                return true;
            }
        }
        matches!(&self.exclude, Some(exc) if exc.is_match(dev))
    }
}

impl Collector for NetDev {
    fn name(&self) -> &'static str {
        "netdev"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        if self.netlink {
            let links = netlink::dump_links().map_err(|e| Error::io("rtnetlink RTM_GETLINK", e))?;
            for link in links.iter().filter(|l| !self.ignored(&l.name)) {
                for (_, idx, stat) in STATS {
                    if let Some(v) = link.stats.get(idx) {
                        emit(out, &link.name, stat, *v);
                    }
                }
            }
            return Ok(());
        }
        let dir = root.sys_path("class/net");
        for dev in list_dir(&dir)? {
            if self.ignored(&dev) {
                continue;
            }
            let stats = dir.join(&dev).join("statistics");
            if !stats.is_dir() {
                continue;
            }
            for (file, _, stat) in STATS {
                let Ok(v) = root.read_u64(&stats.join(file)) else { continue };
                emit(out, &dev, stat, v);
            }
        }
        Ok(())
    }
}
