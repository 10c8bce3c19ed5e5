//! Fuzzes the shared HTTP/1.1 connection code with hostile clients.
//!
//! The first byte sets how many bytes each read hands over (1..=256), the
//! rest is what the client sends. Properties: no panic; requests come out
//! until the input ends or a request is refused; a refused request is
//! answered with a well-formed response head; no body is larger than the
//! limit.
#![no_main]

use std::io::{self, Read, Write};

use examples::http::conn::{Conn, Limits, ReadError};
use examples::http::Response;
use libfuzzer_sys::fuzz_target;

/// A client that sends `input` in reads of at most `step` bytes and keeps
/// what the server writes.
struct Client {
    input: Vec<u8>,
    at: usize,
    step: usize,
    written: Vec<u8>,
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step).min(self.input.len() - self.at);
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Client {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const LIMITS: Limits = Limits { max_head: 4096, max_body: 4096 };

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else { return };
    let client = Client { input: input.to_vec(), at: 0, step: usize::from(step) + 1, written: Vec::new() };
    let mut conn = Conn::new(client);
    // Each request consumes at least one byte of its head, so this ends.
    for _ in 0..=input.len() {
        match conn.read_request(&LIMITS) {
            Ok(inc) => {
                assert!(inc.request.body.len() <= LIMITS.max_body);
                let resp = Response::text(200, inc.request.path.clone());
                conn.write_response(&resp, inc.request.method == "HEAD", inc.connection_header()).expect("in-memory write");
                if inc.close {
                    break;
                }
            }
            Err(ReadError::Reject(status, msg)) => {
                assert!((400..600).contains(&status), "{status}: {msg}");
                let mut answer = Conn::new(io::Cursor::new(Vec::new()));
                answer.write_response(&Response::text(status, msg), false, Some("close")).expect("in-memory write");
                let (written, _) = answer.into_parts();
                assert!(written.get_ref().starts_with(format!("HTTP/1.1 {status} ").as_bytes()));
                break;
            }
            Err(ReadError::Closed | ReadError::Io) => break,
        }
    }
});
