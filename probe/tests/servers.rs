//! Local test servers on 127.0.0.1: HTTP (tiny_http), HTTPS (rustls with
//! rcgen certificates), DNS (UDP + TCP with hickory-proto messages).

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// A tiny_http server with fixed routes. Dropping it stops accepting.
pub struct HttpServer {
    pub addr: SocketAddr,
    server: Arc<tiny_http::Server>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

impl HttpServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

fn respond(mut req: tiny_http::Request) {
    let url = req.url().to_string();
    let text = |code: u16, body: &str| {
        tiny_http::Response::from_string(body.to_string()).with_status_code(code)
    };
    let resp = if url == "/ok" {
        text(200, "hello world, all is fine")
    } else if let Some(code) = url.strip_prefix("/status/") {
        text(code.parse().unwrap_or(500), "status page")
    } else if let Some(n) = url.strip_prefix("/redirect/") {
        let n: u32 = n.parse().unwrap_or(0);
        if n == 0 {
            text(200, "landed")
        } else {
            let loc = tiny_http::Header::from_bytes("Location", format!("/redirect/{}", n - 1)).unwrap();
            text(302, "moved").with_header(loc)
        }
    } else if url == "/slow" {
        thread::sleep(Duration::from_millis(1500));
        text(200, "slow")
    } else if url == "/json" {
        let h = tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap();
        text(200, r#"{"status":"ok","load":0.75,"a":{"b":[{"c":42},{"c":7}]},"name":"probe server"}"#).with_header(h)
    } else if url == "/echo" {
        let mut body = String::new();
        let _ = req.as_reader().read_to_string(&mut body);
        let hdr = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("X-Probe"))
            .map(|h| h.value.to_string())
            .unwrap_or_default();
        text(200, &format!("method={} x-probe={} body={}", req.method(), hdr, body))
    } else {
        text(404, "not found")
    };
    let _ = req.respond(resp);
}

pub fn http_server() -> HttpServer {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let addr = server.server_addr().to_ip().unwrap();
    let s = server.clone();
    thread::spawn(move || {
        for req in s.incoming_requests() {
            // One thread per request so /slow does not block the others.
            thread::spawn(move || respond(req));
        }
    });
    HttpServer { addr, server }
}

/// A certificate authority and a leaf for `localhost` / 127.0.0.1.
pub struct TestPki {
    pub ca_pem: String,
    pub leaf_der: CertificateDer<'static>,
    pub leaf_key: PrivateKeyDer<'static>,
}

/// Make a CA and a leaf valid from `from_days` to `to_days` relative to today.
pub fn make_pki(from_days: i64, to_days: i64) -> TestPki {
    use chrono::Datelike;
    let date = |d: i64| {
        let t = chrono::Utc::now() + chrono::Duration::days(d);
        rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
    };
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "probe test CA");
    ca.not_before = date(-400);
    ca.not_after = date(400);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names.push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    leaf.distinguished_name.push(rcgen::DnType::CommonName, "probe test leaf");
    leaf.not_before = date(from_days);
    leaf.not_after = date(to_days);
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        leaf_der: leaf_cert.der().clone(),
        leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// An HTTPS server answering every request with 200 "secure hello".
pub fn https_server(pki: &TestPki) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf_der.clone()], pki.leaf_key.clone_key())
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { continue };
            let config = config.clone();
            thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = "secure hello";
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    addr
}

fn answers_for(name: &Name, rt: RecordType) -> Option<Vec<RData>> {
    let n = name.to_ascii().to_ascii_lowercase();
    let host = |s: &str| Name::from_ascii(s).unwrap();
    Some(match (n.as_str(), rt) {
        ("example.test.", RecordType::A) => vec![
            RData::A(A("192.0.2.1".parse().unwrap())),
            RData::A(A("192.0.2.2".parse().unwrap())),
        ],
        ("example.test.", RecordType::AAAA) => vec![RData::AAAA(AAAA("2001:db8::1".parse().unwrap()))],
        ("example.test.", RecordType::MX) => vec![RData::MX(MX::new(10, host("mail.example.test.")))],
        ("example.test.", RecordType::TXT) => vec![RData::TXT(TXT::new(vec!["v=spf1 -all".into()]))],
        ("example.test.", RecordType::NS) => vec![RData::NS(NS(host("ns1.example.test.")))],
        ("www.example.test.", RecordType::CNAME) => vec![RData::CNAME(CNAME(host("example.test.")))],
        ("big.test.", RecordType::A) => {
            (1..=60).map(|i| RData::A(A(format!("198.51.100.{i}").parse().unwrap()))).collect()
        }
        (_, _) if n.ends_with("example.test.") || n == "big.test." => vec![],
        _ => return None,
    })
}

fn dns_answer(query: &[u8], udp: bool) -> Option<Vec<u8>> {
    let q = Message::from_bytes(query).ok()?;
    let question = q.queries().first()?.clone();
    let mut m = Message::new();
    m.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_op_code(q.op_code())
        .set_recursion_desired(q.recursion_desired())
        .set_recursion_available(true)
        .add_query(question.clone());
    match answers_for(question.name(), question.query_type()) {
        None => {
            m.set_response_code(ResponseCode::NXDomain);
        }
        Some(list) => {
            let big = list.len() > 20;
            if big && udp {
                // Too big for our UDP answers: set TC, the client must use TCP.
                m.set_truncated(true);
            } else {
                for rd in list {
                    m.add_answer(Record::from_rdata(question.name().clone(), 60, rd));
                }
            }
        }
    }
    m.to_bytes().ok()
}

/// A DNS server on UDP and TCP of the same 127.0.0.1 port.
pub fn dns_server() -> SocketAddr {
    // Find a port free for both UDP and TCP.
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf) else { return };
            if let Some(a) = dns_answer(&buf[..n], true) {
                let _ = udp.send_to(&a, peer);
            }
        }
    });
    thread::spawn(move || {
        for s in tcp.incoming() {
            let Ok(mut s) = s else { continue };
            let mut lb = [0u8; 2];
            if s.read_exact(&mut lb).is_err() {
                continue;
            }
            let mut q = vec![0u8; u16::from_be_bytes(lb) as usize];
            if s.read_exact(&mut q).is_err() {
                continue;
            }
            if let Some(a) = dns_answer(&q, false) {
                let mut out = (a.len() as u16).to_be_bytes().to_vec();
                out.extend_from_slice(&a);
                let _ = s.write_all(&out);
            }
        }
    });
    addr
}
