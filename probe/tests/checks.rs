//! Each check kind against a real local server.

use crate::servers::{dns_server, http_server, https_server, make_pki};
use crate::{monitor, run_once};
use probe::check::{Check, TlsCache};
use std::io::Write;
use std::net::TcpListener;

#[test]
fn http_status_codes_and_ranges() {
    let s = http_server();
    let o = run_once(&format!("{{name: a, type: http, url: '{}'}}", s.url("/ok")));
    assert!(o.ok, "{o:?}");
    assert_eq!(o.msg, "200 - OK");
    assert_eq!(o.http_status, Some(200));
    assert!(o.ping_ms.is_some());

    let o = run_once(&format!("{{name: a, type: http, url: '{}'}}", s.url("/status/503")));
    assert!(!o.ok);
    assert_eq!(o.http_status, Some(503));
    assert!(o.msg.contains("503") && o.msg.contains("not accepted"), "{}", o.msg);

    let o = run_once(&format!(
        "{{name: a, type: http, url: '{}', accepted_status_codes: ['200-299', 503]}}",
        s.url("/status/503")
    ));
    assert!(o.ok, "{o:?}");
    let o = run_once(&format!("{{name: a, type: http, url: '{}', accepted_status_codes: ['500-599']}}", s.url("/ok")));
    assert!(!o.ok);
}

#[test]
fn http_redirects_are_followed_up_to_the_limit() {
    let s = http_server();
    let o = run_once(&format!("{{name: a, type: http, url: '{}'}}", s.url("/redirect/3")));
    assert!(o.ok, "{o:?}");
    assert_eq!(o.http_status, Some(200));
    let o = run_once(&format!("{{name: a, type: http, url: '{}', max_redirects: 2}}", s.url("/redirect/3")));
    assert!(!o.ok, "{o:?}");
    // With redirects off, the 302 itself is the answer and is judged by the ranges.
    let o = run_once(&format!(
        "{{name: a, type: http, url: '{}', max_redirects: 0, accepted_status_codes: ['300-399']}}",
        s.url("/redirect/1")
    ));
    assert!(o.ok, "{o:?}");
    assert_eq!(o.http_status, Some(302));
}

#[test]
fn http_timeout_is_down() {
    let s = http_server();
    let o = run_once(&format!("{{name: a, type: http, url: '{}', timeout: 0.3}}", s.url("/slow")));
    assert!(!o.ok);
    assert!(o.msg.contains("timeout"), "{}", o.msg);
}

#[test]
fn http_connection_refused_is_down() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let o = run_once(&format!("{{name: a, type: http, url: 'http://127.0.0.1:{port}/'}}"));
    assert!(!o.ok);
    assert_eq!(o.http_status, None);
}

#[test]
fn http_method_headers_and_body_are_sent() {
    let s = http_server();
    let o = run_once(&format!(
        "{{name: a, type: keyword, url: '{}', method: post, headers: {{X-Probe: yes-42}}, body: 'ping=1', keyword: 'method=POST x-probe=yes-42 body=ping=1'}}",
        s.url("/echo")
    ));
    assert!(o.ok, "{o:?}");
}

#[test]
fn keyword_and_inverted_keyword() {
    let s = http_server();
    let url = s.url("/ok");
    assert!(run_once(&format!("{{name: a, type: keyword, url: '{url}', keyword: 'all is fine'}}")).ok);
    let o = run_once(&format!("{{name: a, type: keyword, url: '{url}', keyword: 'All Is Fine'}}"));
    assert!(!o.ok, "keyword match is case-sensitive");
    assert!(o.msg.contains("hello world"), "{}", o.msg);
    assert!(run_once(&format!("{{name: a, type: keyword, url: '{url}', keyword: error, invert_keyword: true}}")).ok);
    let o = run_once(&format!("{{name: a, type: keyword, url: '{url}', keyword: hello, invert_keyword: true}}"));
    assert!(!o.ok);
    assert!(o.msg.contains("present"), "{}", o.msg);
}

#[test]
fn json_query_comparisons() {
    let s = http_server();
    let url = s.url("/json");
    let q = |path: &str, op: &str, exp: &str| {
        run_once(&format!(
            "{{name: a, type: json-query, url: '{url}', json_path: '{path}', json_path_operator: '{op}', expected_value: '{exp}'}}"
        ))
    };
    assert!(q("$.status", "==", "ok").ok);
    assert!(!q("$.status", "==", "fail").ok);
    assert!(q("$.a.b[0].c", "==", "42").ok);
    assert!(q("$.a.b[1].c", "<", "10").ok);
    assert!(q("$.load", ">=", "0.5").ok);
    assert!(!q("$.load", ">", "0.9").ok);
    assert!(q("$.name", "contains", "probe").ok);
    assert!(q("$.status", "!=", "down").ok);
    let o = q("$.missing", "==", "x");
    assert!(!o.ok && o.msg.contains("matched nothing"), "{}", o.msg);
    let o = q("$.status", ">", "1");
    assert!(!o.ok && o.msg.contains("numbers"), "{}", o.msg);
    // A body that is not JSON.
    let o = run_once(&format!(
        "{{name: a, type: json-query, url: '{}', json_path: '$.a', expected_value: 1}}",
        s.url("/ok")
    ));
    assert!(!o.ok && o.msg.contains("not JSON"), "{}", o.msg);
}

#[test]
fn tcp_port_open_and_closed() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let o = run_once(&format!("{{name: a, type: tcp, hostname: 127.0.0.1, port: {port}}}"));
    assert!(o.ok, "{o:?}");
    drop(l);
    let o = run_once(&format!("{{name: a, type: tcp, hostname: 127.0.0.1, port: {port}}}"));
    assert!(!o.ok, "{o:?}");
}

fn write_ca(pem: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(pem.as_bytes()).unwrap();
    f
}

#[test]
fn https_with_trusted_untrusted_and_ignored_certificates() {
    let pki = make_pki(-10, 60);
    let addr = https_server(&pki);
    let ca = write_ca(&pki.ca_pem);
    let url = format!("https://localhost:{}/", addr.port());
    let o = run_once(&format!("{{name: a, type: http, url: '{url}', ca_file: '{}'}}", ca.path().display()));
    assert!(o.ok, "{o:?}");
    let cert = o.cert.expect("certificate captured");
    let days = cert.days_left(probe::now_ms());
    assert!((58..=60).contains(&days), "{days}");
    // Without the CA the self-made chain is rejected ...
    let o = run_once(&format!("{{name: a, type: http, url: '{url}'}}"));
    assert!(!o.ok, "{o:?}");
    // ... unless TLS errors are ignored.
    let o = run_once(&format!("{{name: a, type: keyword, url: '{url}', ignore_tls: true, keyword: secure}}"));
    assert!(o.ok, "{o:?}");
}

#[test]
fn tls_expiry_near_and_expired() {
    let near = make_pki(-30, 5);
    let addr = https_server(&near);
    let ca = write_ca(&near.ca_pem);
    let o = run_once(&format!(
        "{{name: t, type: tls, hostname: localhost, port: {}, ca_file: '{}'}}",
        addr.port(),
        ca.path().display()
    ));
    assert!(o.ok, "{o:?}");
    assert!(o.msg.contains("valid for 4 more days") || o.msg.contains("valid for 5 more days"), "{}", o.msg);
    assert!(o.cert.is_some());

    let expired = make_pki(-30, -3);
    let addr = https_server(&expired);
    let ca = write_ca(&expired.ca_pem);
    let o = run_once(&format!(
        "{{name: t, type: tls, hostname: localhost, port: {}, ca_file: '{}'}}",
        addr.port(),
        ca.path().display()
    ));
    assert!(!o.ok);
    assert!(o.msg.to_lowercase().contains("expired"), "{}", o.msg);
    // Even when verification fails, the expiry is known.
    assert!(o.cert.unwrap().days_left(probe::now_ms()) < 0);
    let o = run_once(&format!("{{name: t, type: tls, hostname: localhost, port: {}, ignore_tls: true}}", addr.port()));
    assert!(!o.ok);
    assert!(o.msg.contains("certificate expired"), "{}", o.msg);
}

#[test]
fn tls_to_a_plain_tcp_port_is_down() {
    let s = http_server();
    let o = run_once(&format!("{{name: t, type: tls, hostname: 127.0.0.1, port: {}, ignore_tls: true}}", s.addr.port()));
    assert!(!o.ok, "{o:?}");
}

#[test]
fn dns_record_types_and_expected_values() {
    let dns = dns_server();
    let q = |host: &str, rt: &str, expected: Option<&str>| {
        let exp = expected.map(|e| format!(", expected_value: '{e}'")).unwrap_or_default();
        run_once(&format!(
            "{{name: d, type: dns, hostname: {host}, dns_resolve_server: '{}', dns_resolve_port: {}, dns_resolve_type: {rt}{exp}}}",
            dns.ip(),
            dns.port()
        ))
    };
    let o = q("example.test", "A", None);
    assert!(o.ok, "{o:?}");
    assert_eq!(o.msg, "Records: 192.0.2.1 | 192.0.2.2");
    assert!(q("example.test", "A", Some("192.0.2.2")).ok);
    let o = q("example.test", "A", Some("192.0.2.9"));
    assert!(!o.ok && o.msg.contains("192.0.2.9"), "{}", o.msg);
    assert!(q("example.test", "AAAA", Some("2001:db8::1")).ok);
    assert!(q("example.test", "MX", Some("10 MAIL.example.test.")).ok);
    assert!(q("example.test", "TXT", Some("v=spf1 -all")).ok);
    assert!(q("example.test", "NS", Some("ns1.example.test")).ok);
    assert!(q("www.example.test", "CNAME", Some("example.test")).ok);
    let o = q("nothing.example.test", "A", None);
    assert!(!o.ok && o.msg.contains("no A records"), "{}", o.msg);
    let o = q("missing.invalid", "A", None);
    assert!(!o.ok && o.msg.contains("Non-Existent Domain"), "{}", o.msg);
    // A truncated UDP answer is retried over TCP.
    let o = q("big.test", "A", Some("198.51.100.60"));
    assert!(o.ok, "{o:?}");
}

#[test]
fn dns_server_that_never_answers_times_out() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let m = monitor(&format!(
        "{{name: d, type: dns, hostname: example.test, dns_resolve_server: 127.0.0.1, dns_resolve_port: {port}, timeout: 0.3}}"
    ));
    let c = Check::build(&m, &mut TlsCache::new()).unwrap();
    let o = c.run(probe::now_ms(), m.timeout);
    assert!(!o.ok);
    assert!(o.msg.contains("timeout"), "{}", o.msg);
}

#[test]
fn ping_loopback_or_clear_permission_error() {
    let o = run_once("{name: p, type: ping, hostname: 127.0.0.1, timeout: 2}");
    let allowed = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|s| {
            let v: Vec<i64> = s.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            v.len() == 2 && v[0] <= v[1]
        })
        .unwrap_or(false);
    if o.ok {
        assert!(o.msg.contains("echo replies"), "{}", o.msg);
        assert!(o.ping_ms.is_some());
    } else {
        // Where unprivileged ICMP is off, the message says how to turn it on.
        assert!(!allowed || o.msg.contains("ping_group_range"), "{}", o.msg);
        assert!(o.msg.contains("net.ipv4.ping_group_range"), "{}", o.msg);
    }
}

#[test]
fn bad_ca_file_is_a_setup_error() {
    let f = write_ca("not a certificate");
    let m = monitor(&format!(
        "{{name: a, type: http, url: 'https://localhost/', ca_file: '{}'}}",
        f.path().display()
    ));
    let e = Check::build(&m, &mut TlsCache::new()).unwrap_err().to_string();
    assert!(e.contains("\"a\"") && e.contains("no PEM certificate"), "{e}");
}
