//! The `ping` check: ICMP echo through an unprivileged datagram socket
//! (`SOCK_DGRAM` + `IPPROTO_ICMP`), which Linux allows when the process's
//! group is in `net.ipv4.ping_group_range`. No raw sockets, no privileges.

use super::CheckOutcome;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A prepared ping check.
#[derive(Debug)]
pub struct PingCheck {
    pub(crate) hostname: String,
    pub(crate) count: u32,
}

/// RFC 1071 Internet checksum.
pub(crate) fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 { u16::from_be_bytes([chunk[0], chunk[1]]) } else { u16::from_be_bytes([chunk[0], 0]) };
        sum += word as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type, code, checksum, id (the kernel replaces it with
/// the socket's), sequence, payload.
pub(crate) fn echo_request(v6: bool, seq: u16) -> Vec<u8> {
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0, 0, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"probe-uptime-ping-payload-56-bytes-------------------...");
    if !v6 {
        // The kernel fills in the ICMPv6 checksum itself.
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `reply` is the echo reply for `seq`.
pub(crate) fn is_reply(v6: bool, reply: &[u8], seq: u16) -> bool {
    reply.len() >= 8 && reply[0] == if v6 { 129 } else { 0 } && reply[6..8] == seq.to_be_bytes()
}

/// Message for a socket that cannot be opened.
pub(crate) fn socket_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) if code == libc_eacces() || code == libc_eperm() => format!(
            "ICMP ping is not permitted for this process ({e}): unprivileged ping needs the process's group \
             inside the sysctl net.ipv4.ping_group_range (e.g. `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`)"
        ),
        _ => format!("cannot open an ICMP datagram socket: {e}"),
    }
}

// Linux errno values; std does not export them and the crate avoids a libc
// dependency for two constants.
fn libc_eperm() -> i32 {
    1
}
fn libc_eacces() -> i32 {
    13
}

impl PingCheck {
    pub(crate) fn run(&self, timeout: Duration) -> CheckOutcome {
        let start = Instant::now();
        let deadline = start + timeout;
        let addr = match super::resolve(&self.hostname, 0) {
            Ok(a) => a[0],
            Err(e) => return CheckOutcome::down(e),
        };
        let v6 = addr.is_ipv6();
        let (domain, proto) = if v6 { (Domain::IPV6, Protocol::ICMPV6) } else { (Domain::IPV4, Protocol::ICMPV4) };
        let sock = match Socket::new(domain, Type::DGRAM, Some(proto)) {
            Ok(s) => s,
            Err(e) => return CheckOutcome::down(socket_error(&e)),
        };
        // A connected ICMP datagram socket behaves like a UDP socket for
        // send/recv, so use std's safe wrapper.
        let sock: UdpSocket = sock.into();
        if let Err(e) = sock.connect(SocketAddr::new(addr.ip(), 0)) {
            return CheckOutcome::down(format!("ping {}: {e}", addr.ip()));
        }
        let per_try = timeout / self.count.max(1);
        let mut rtts = Vec::new();
        let mut last_err = String::from("no reply");
        let mut buf = [0u8; 1500];
        for seq in 1..=self.count as u16 {
            let sent = Instant::now();
            if let Err(e) = sock.send(&echo_request(v6, seq)) {
                last_err = format!("sending echo request: {e}");
                continue;
            }
            let try_deadline = (sent + per_try).min(deadline);
            loop {
                let left = try_deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    last_err = format!("no reply within {:.1} s", per_try.as_secs_f64());
                    break;
                }
                if sock.set_read_timeout(Some(left)).is_err() {
                    break;
                }
                match sock.recv(&mut buf) {
                    Ok(n) if is_reply(v6, &buf[..n], seq) => {
                        rtts.push(sent.elapsed());
                        break;
                    }
                    Ok(_) => continue,
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        last_err = format!("no reply within {:.1} s", per_try.as_secs_f64());
                        break;
                    }
                    Err(e) => {
                        last_err = format!("receiving echo reply: {e}");
                        break;
                    }
                }
            }
        }
        if rtts.is_empty() {
            return CheckOutcome::down(format!("ping {}: {last_err}", addr.ip()));
        }
        let avg = rtts.iter().sum::<Duration>() / rtts.len() as u32;
        CheckOutcome::up(
            format!("{} of {} echo replies from {}", rtts.len(), self.count, addr.ip()),
            Some(avg.as_millis() as u64),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_request_verifies() {
        let p = echo_request(false, 3);
        // A packet with its checksum in place sums to zero.
        assert_eq!(checksum(&p), 0);
        assert!(is_reply(false, &[0, 0, 0, 0, 0, 0, 0, 3], 3));
        assert!(!is_reply(false, &[8, 0, 0, 0, 0, 0, 0, 3], 3));
        assert!(!is_reply(false, &[0, 0, 0], 3));
    }

    #[test]
    fn permission_error_names_the_sysctl() {
        let e = std::io::Error::from_raw_os_error(13);
        assert!(socket_error(&e).contains("net.ipv4.ping_group_range"));
        let e = std::io::Error::from_raw_os_error(97);
        assert!(!socket_error(&e).contains("ping_group_range"));
    }
}
