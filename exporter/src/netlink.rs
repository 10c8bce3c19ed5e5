//! A minimal rtnetlink client: one `RTM_GETLINK` dump, returning each
//! interface's name and `IFLA_STATS64` counters (what node_exporter 1.5's
//! netdev collector reads by default). The message parser is pure and
//! tested on synthetic bytes; only [`dump_links`] does I/O.

use crate::error::ParseError;

const NLMSG_HDR: usize = 16;
const IFINFOMSG: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_IFNAME: u16 = 3;
const IFLA_STATS64: u16 = 23;

/// One interface: its name and the `rtnl_link_stats64` counters, in kernel
/// order (`rx_packets`, `tx_packets`, `rx_bytes`, ...; older kernels send
/// fewer fields, missing ones are absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface name.
    pub name: String,
    /// `rtnl_link_stats64` fields.
    pub stats: Vec<u64>,
}

/// Indexes into [`Link::stats`].
pub mod stat {
    /// rx_packets
    pub const RX_PACKETS: usize = 0;
    /// tx_packets
    pub const TX_PACKETS: usize = 1;
    /// rx_bytes
    pub const RX_BYTES: usize = 2;
    /// tx_bytes
    pub const TX_BYTES: usize = 3;
    /// rx_errors
    pub const RX_ERRORS: usize = 4;
    /// tx_errors
    pub const TX_ERRORS: usize = 5;
    /// rx_dropped
    pub const RX_DROPPED: usize = 6;
    /// tx_dropped
    pub const TX_DROPPED: usize = 7;
    /// multicast
    pub const MULTICAST: usize = 8;
    /// collisions
    pub const COLLISIONS: usize = 9;
    /// rx_frame_errors
    pub const RX_FRAME_ERRORS: usize = 13;
    /// rx_fifo_errors
    pub const RX_FIFO_ERRORS: usize = 14;
    /// tx_carrier_errors
    pub const TX_CARRIER_ERRORS: usize = 17;
    /// tx_fifo_errors
    pub const TX_FIFO_ERRORS: usize = 18;
    /// rx_compressed
    pub const RX_COMPRESSED: usize = 21;
    /// tx_compressed
    pub const TX_COMPRESSED: usize = 22;
    /// rx_nohandler
    pub const RX_NOHANDLER: usize = 23;
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The request: `nlmsghdr` + an empty `ifinfomsg`, dump flag set.
pub fn getlink_request(seq: u32) -> Vec<u8> {
    let len = (NLMSG_HDR + IFINFOMSG) as u32;
    let mut v = Vec::with_capacity(len as usize);
    v.extend_from_slice(&len.to_ne_bytes());
    v.extend_from_slice(&RTM_GETLINK.to_ne_bytes());
    v.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    v.extend_from_slice(&seq.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v.extend_from_slice(&[0u8; IFINFOMSG]);
    v
}

/// Parses one datagram of the dump, appending links to `out`. Returns
/// true when the dump is complete (`NLMSG_DONE`).
pub fn parse_datagram(buf: &[u8], out: &mut Vec<Link>) -> Result<bool, ParseError> {
    let bad = |msg: &str| ParseError::new(0, format!("netlink: {msg}"));
    let mut off = 0;
    while off + NLMSG_HDR <= buf.len() {
        let len = u32_at(buf, off).ok_or_else(|| bad("short header"))? as usize;
        let kind = u16_at(buf, off + 4).ok_or_else(|| bad("short header"))?;
        if len < NLMSG_HDR || off + len > buf.len() {
            return Err(bad("message length out of bounds"));
        }
        let msg = &buf[off..off + len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = u32_at(msg, NLMSG_HDR).map(|c| c as i32).unwrap_or(0);
                return Err(bad(&format!("kernel error {code}")));
            }
            RTM_NEWLINK => {
                if let Some(link) = parse_link(msg.get(NLMSG_HDR + IFINFOMSG..).unwrap_or(&[])) {
                    out.push(link);
                }
            }
            _ => {}
        }
        off += align4(len);
    }
    Ok(false)
}

/// Reads the `IFLA_IFNAME` and `IFLA_STATS64` attributes; links without
/// both are skipped (as node_exporter skips links without stats).
fn parse_link(mut attrs: &[u8]) -> Option<Link> {
    let (mut name, mut stats) = (None, None);
    while attrs.len() >= 4 {
        let len = u16_at(attrs, 0)? as usize;
        let kind = u16_at(attrs, 2)? & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        let data = &attrs[4..len];
        match kind {
            IFLA_IFNAME => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                name = Some(String::from_utf8_lossy(&data[..end]).into_owned());
            }
            IFLA_STATS64 => {
                stats = Some(
                    data.chunks_exact(8)
                        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
                        .collect::<Vec<u64>>(),
                );
            }
            _ => {}
        }
        attrs = attrs.get(align4(len)..).unwrap_or(&[]);
    }
    Some(Link { name: name?, stats: stats? })
}

/// Dumps all links of the current network namespace.
pub fn dump_links() -> std::io::Result<Vec<Link>> {
    use rustix::net::{netlink::SocketAddrNetlink, recv, sendto, socket, AddressFamily, RecvFlags, SendFlags, SocketType};

    let fd = socket(AddressFamily::NETLINK, SocketType::RAW, None)?;
    sendto(&fd, &getlink_request(1), SendFlags::empty(), &SocketAddrNetlink::new(0, 0))?;
    let mut buf = vec![0u8; 32 * 1024];
    let mut links = Vec::new();
    // Bounded: a dump of even thousands of interfaces is far fewer
    // datagrams than this.
    for _ in 0..100_000 {
        let (n, full) = recv(&fd, &mut buf[..], RecvFlags::empty())?;
        if full > n {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "netlink datagram truncated"));
        }
        if n == 0 {
            break;
        }
        let done = parse_datagram(&buf[..n], &mut links)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if done {
            return Ok(links);
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "netlink dump did not finish"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attr(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(data);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn msg(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&[0u8; 10]);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn parses_a_dump() {
        let stats: Vec<u8> = (0u64..24).flat_map(|i| (i * 10).to_ne_bytes()).collect();
        let mut body = vec![0u8; IFINFOMSG];
        body.extend(attr(IFLA_IFNAME, b"eth0\0"));
        body.extend(attr(IFLA_STATS64, &stats));
        let mut dgram = msg(RTM_NEWLINK, &body);
        let mut no_stats = vec![0u8; IFINFOMSG];
        no_stats.extend(attr(IFLA_IFNAME, b"x\0"));
        dgram.extend(msg(RTM_NEWLINK, &no_stats));
        let mut links = Vec::new();
        assert!(!parse_datagram(&dgram, &mut links).unwrap());
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].name, "eth0");
        assert_eq!(links[0].stats[stat::RX_NOHANDLER], 230);
        assert!(parse_datagram(&msg(NLMSG_DONE, &[0; 4]), &mut links).unwrap());
        assert!(parse_datagram(&msg(NLMSG_ERROR, &(-1i32).to_ne_bytes()), &mut links).is_err());
        assert_eq!(getlink_request(7).len(), 32);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut links = Vec::new();
            let _ = parse_datagram(&b, &mut links);
            let _ = parse_link(&b);
        }
    }

    #[test]
    fn live_dump_has_loopback() {
        // Every Linux network namespace has `lo`; skip where netlink is
        // not permitted (some sandboxes).
        match dump_links() {
            Ok(links) => assert!(links.iter().any(|l| l.name == "lo"), "{links:?}"),
            Err(e) => println!("skipped: netlink unavailable: {e}"),
        }
    }
}
