//! The `dns` check: ask a configured resolver over UDP (TCP when the answer
//! is truncated) with hickory-proto messages and std sockets.

use super::CheckOutcome;
use crate::config::{DnsRecordType, DnsSpec};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// A prepared DNS check.
#[derive(Debug)]
pub struct DnsCheck {
    pub(crate) spec: DnsSpec,
}

fn record_type(t: DnsRecordType) -> RecordType {
    match t {
        DnsRecordType::A => RecordType::A,
        DnsRecordType::Aaaa => RecordType::AAAA,
        DnsRecordType::Cname => RecordType::CNAME,
        DnsRecordType::Mx => RecordType::MX,
        DnsRecordType::Txt => RecordType::TXT,
        DnsRecordType::Ns => RecordType::NS,
    }
}

fn name_text(n: &Name) -> String {
    let s = n.to_utf8();
    s.strip_suffix('.').unwrap_or(&s).to_string()
}

/// The text form of a record's data, or `None` for other types.
pub(crate) fn rdata_text(d: &RData) -> Option<String> {
    Some(match d {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(c) => name_text(&c.0),
        RData::NS(n) => name_text(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference(), name_text(mx.exchange())),
        RData::TXT(t) => t.txt_data().iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect(),
        _ => return None,
    })
}

/// Normalise for comparison: trim, lower-case, drop a trailing dot (except
/// for TXT, which is compared exactly).
fn normalise(t: DnsRecordType, s: &str) -> String {
    match t {
        DnsRecordType::Txt => s.to_string(),
        _ => {
            let s = s.trim().to_ascii_lowercase();
            let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
            s.strip_suffix('.').unwrap_or(&s).to_string()
        }
    }
}

/// Build the query message.
pub(crate) fn query_message(id: u16, name: &Name, rt: RecordType) -> Message {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(name.clone(), rt));
    m
}

fn left(deadline: Instant) -> Result<Duration, String> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err("timeout waiting for the DNS answer".into())
    } else {
        Ok(d)
    }
}

fn io_msg(e: std::io::Error, what: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "timeout waiting for the DNS answer".into(),
        _ => format!("{what}: {e}"),
    }
}

fn ask_udp(server: SocketAddr, query: &[u8], id: u16, deadline: Instant) -> Result<Message, String> {
    let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .map_err(|e| format!("{e}"))?;
    let sock = UdpSocket::bind(bind).map_err(|e| format!("binding a UDP socket: {e}"))?;
    sock.connect(server).map_err(|e| format!("connecting to {server}: {e}"))?;
    sock.send(query).map_err(|e| io_msg(e, "sending the query"))?;
    let mut buf = vec![0u8; 4096];
    loop {
        sock.set_read_timeout(Some(left(deadline)?)).map_err(|e| e.to_string())?;
        let n = sock.recv(&mut buf).map_err(|e| io_msg(e, &format!("receiving from {server}")))?;
        match Message::from_bytes(&buf[..n]) {
            // Ignore stray datagrams (wrong id, or not a response).
            Ok(m) if m.id() == id && m.message_type() == MessageType::Response => return Ok(m),
            Ok(_) => continue,
            Err(e) => return Err(format!("malformed DNS answer from {server}: {e}")),
        }
    }
}

fn ask_tcp(server: SocketAddr, query: &[u8], id: u16, deadline: Instant) -> Result<Message, String> {
    let mut s = TcpStream::connect_timeout(&server, left(deadline)?).map_err(|e| io_msg(e, "DNS over TCP"))?;
    s.set_read_timeout(Some(left(deadline)?)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(left(deadline)?)).map_err(|e| e.to_string())?;
    let len = u16::try_from(query.len()).map_err(|_| "query too long".to_string())?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    s.write_all(&framed).map_err(|e| io_msg(e, "DNS over TCP"))?;
    let mut lb = [0u8; 2];
    s.read_exact(&mut lb).map_err(|e| io_msg(e, "DNS over TCP"))?;
    let mut buf = vec![0u8; u16::from_be_bytes(lb) as usize];
    s.read_exact(&mut buf).map_err(|e| io_msg(e, "DNS over TCP"))?;
    let m = Message::from_bytes(&buf).map_err(|e| format!("malformed DNS answer from {server}: {e}"))?;
    if m.id() != id {
        return Err(format!("DNS answer from {server} has the wrong id"));
    }
    Ok(m)
}

impl DnsCheck {
    pub(crate) fn run(&self, timeout: Duration) -> CheckOutcome {
        let start = Instant::now();
        match self.resolve(start + timeout) {
            Ok(records) => {
                let ms = start.elapsed().as_millis() as u64;
                let rt = self.spec.record_type;
                let shown = records.join(" | ");
                match &self.spec.expected {
                    Some(exp) => {
                        let want = normalise(rt, exp);
                        if records.iter().any(|r| normalise(rt, r) == want) {
                            CheckOutcome::up(format!("Records: {shown}"), Some(ms))
                        } else {
                            CheckOutcome::down(format!("expected {exp:?} among records: {shown}"))
                        }
                    }
                    None => CheckOutcome::up(format!("Records: {shown}"), Some(ms)),
                }
            }
            Err(e) => CheckOutcome::down(e),
        }
    }

    fn resolve(&self, deadline: Instant) -> Result<Vec<String>, String> {
        let spec = &self.spec;
        let name = Name::from_utf8(&spec.hostname)
            .map_err(|e| format!("{:?} is not a DNS name: {e}", spec.hostname))?;
        let rt = record_type(spec.record_type);
        let id: u16 = rand_id();
        let query = query_message(id, &name, rt).to_bytes().map_err(|e| format!("encoding the query: {e}"))?;
        let mut answer = ask_udp(spec.server, &query, id, deadline)?;
        if answer.truncated() {
            answer = ask_tcp(spec.server, &query, id, deadline)?;
        }
        if answer.response_code() != ResponseCode::NoError {
            return Err(format!("{} answered {}", spec.server, answer.response_code()));
        }
        let records: Vec<String> = answer
            .answers()
            .iter()
            .filter(|r| r.record_type() == rt)
            .filter_map(|r| r.data().and_then(rdata_text))
            .collect();
        if records.is_empty() {
            return Err(format!("no {rt} records for {}", spec.hostname));
        }
        Ok(records)
    }
}

/// A query id that is hard to guess (std's randomly keyed hasher seeded
/// per call, mixed with the time).
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish() as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata;

    #[test]
    fn record_texts_and_normalisation() {
        let mx = RData::MX(rdata::MX::new(10, Name::from_ascii("Mail.Example.org.").unwrap()));
        assert_eq!(rdata_text(&mx).unwrap(), "10 Mail.Example.org");
        assert_eq!(normalise(DnsRecordType::Mx, "10  mail.example.ORG."), "10 mail.example.org");
        assert_eq!(normalise(DnsRecordType::Txt, "Hello"), "Hello");
        let txt = RData::TXT(rdata::TXT::new(vec!["a=".into(), "b".into()]));
        assert_eq!(rdata_text(&txt).unwrap(), "a=b");
    }

    #[test]
    fn query_round_trips() {
        let name = Name::from_ascii("example.org.").unwrap();
        let m = query_message(7, &name, RecordType::AAAA);
        let bytes = m.to_bytes().unwrap();
        let back = Message::from_bytes(&bytes).unwrap();
        assert_eq!(back.id(), 7);
        assert_eq!(back.queries()[0].query_type(), RecordType::AAAA);
    }
}
