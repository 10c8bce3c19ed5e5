//! One HTTP/1.1 connection: request heads and chunk sizes parsed by
//! `httparse`, bodies framed by `Content-Length` or chunked encoding,
//! responses written head and body in one system call.
//!
//! [`Conn`] is generic over the stream, so the tests drive it with
//! in-memory bytes; the shared server ([`super::Server`]) and
//! `node-exporter`'s own loop give it a `TcpStream`.

use std::io::{self, IoSlice, Read, Write};

use super::{Request, Response};

/// Size limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request head (request line and headers), in bytes.
    pub max_head: usize,
    /// Largest request body, in bytes (after chunked decoding).
    pub max_body: usize,
}

/// A request read off a connection.
#[derive(Debug)]
pub struct Incoming {
    /// The request, body included.
    pub request: Request,
    /// The client asked to close the connection after this request
    /// (`Connection: close`, or HTTP/1.0 without `keep-alive`).
    pub close: bool,
    /// The request was HTTP/1.0 (keep-alive must then be said).
    pub http10: bool,
}

impl Incoming {
    /// The `Connection` header the response needs: `close` when the
    /// connection ends after it, `keep-alive` for an HTTP/1.0 client that
    /// asked for it, none for HTTP/1.1's default.
    pub fn connection_header(&self) -> Option<&'static str> {
        match (self.close, self.http10) {
            (true, _) => Some("close"),
            (false, true) => Some("keep-alive"),
            (false, false) => None,
        }
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed the connection, or let it idle past the read
    /// timeout, between requests (or within a head): nothing to answer.
    Closed,
    /// Reading or writing failed in the middle of a request (the client
    /// went away, or stalled past the timeout): nothing to answer either.
    Io,
    /// The request is malformed or too large: answer with this status and
    /// message, then close.
    Reject(u16, String),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

fn reject(status: u16, msg: impl Into<String>) -> ReadError {
    ReadError::Reject(status, msg.into())
}

/// Headers parsed at first; a head with more is parsed again with
/// [`MANY_HEADERS`].
const FEW_HEADERS: usize = 64;
/// Most headers (or trailers) one request may have.
const MANY_HEADERS: usize = 1024;
/// Bytes read from the stream at a time.
const READ_SIZE: usize = 16 * 1024;
/// Longest chunk-size line (with extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 4096;

/// A connection's stream and the bytes read from it but not used yet (the
/// start of a pipelined request, say).
pub struct Conn<S> {
    stream: S,
    /// Read bytes up to `end`; after it, room zeroed once when the buffer
    /// grew (not before every read).
    buf: Vec<u8>,
    /// Start of the unused bytes in `buf`.
    pos: usize,
    /// End of the bytes read.
    end: usize,
}

impl<S: Read + Write> Conn<S> {
    /// A connection over `stream`, nothing read yet.
    pub fn new(stream: S) -> Self {
        Conn { stream, buf: Vec::new(), pos: 0, end: 0 }
    }

    /// The stream and the bytes read from it that no request used (for a
    /// connection taken over after an upgrade).
    pub fn into_parts(mut self) -> (S, Vec<u8>) {
        self.buf.truncate(self.end);
        self.buf.drain(..self.pos);
        (self.stream, self.buf)
    }

    fn unused(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Reads more bytes after the unused ones; `Ok(0)` at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.pos == self.end {
            (self.pos, self.end) = (0, 0);
        } else if self.pos >= READ_SIZE {
            self.buf.copy_within(self.pos..self.end, 0);
            (self.pos, self.end) = (0, self.end - self.pos);
        }
        if self.buf.len() - self.end < READ_SIZE {
            self.buf.resize(self.end + READ_SIZE, 0);
        }
        let n = loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.end += n;
        Ok(n)
    }

    /// Reads more bytes; the end of the stream is an error here (the
    /// request is incomplete).
    fn fill_more(&mut self) -> io::Result<()> {
        match self.fill()? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Ok(()),
        }
    }

    /// Reads the next request, head and body. Answers `Expect:
    /// 100-continue` itself before reading the body.
    pub fn read_request(&mut self, limits: &Limits) -> Result<Incoming, ReadError> {
        // Bytes of the unused input known not to end a head: a client
        // sending its head a byte at a time costs one scan of it, not one
        // parse per byte: only the first line and a head's end call for a
        // parse (a malformed request line is refused once it is in).
        let (mut scanned, mut line_seen) = (0usize, false);
        let head = loop {
            let unused = self.unused();
            let fresh = &unused[scanned.saturating_sub(2)..];
            let first_line = !line_seen && fresh.contains(&b'\n');
            line_seen |= first_line;
            let parsed = if first_line || fresh.windows(2).any(|w| w == b"\n\n") || fresh.windows(3).any(|w| w == b"\n\r\n") {
                parse_head(unused)
            } else {
                Ok(None)
            };
            scanned = unused.len();
            match parsed {
                Ok(Some((head, len))) if len <= limits.max_head => {
                    self.pos += len;
                    break head;
                }
                Ok(None) if scanned <= limits.max_head => {}
                Ok(_) => return Err(reject(431, format!("request head larger than {} bytes", limits.max_head))),
                Err(e) => return Err(e),
            }
            match self.fill() {
                Ok(0) => return Err(ReadError::Closed),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Err(ReadError::Closed),
                Err(_) => return Err(ReadError::Io),
            }
        };
        let framing = head.framing()?;
        let body_follows = !matches!(framing, Framing::Length(0));
        if let Framing::Length(n) = framing {
            if n > limits.max_body as u64 {
                return Err(reject(413, format!("request body larger than {} bytes", limits.max_body)));
            }
        }
        match head.header("expect") {
            Some(e) if !e.eq_ignore_ascii_case("100-continue") => return Err(reject(417, format!("unsupported expectation {e:?}"))),
            // The client waits for this before sending its body (unless it
            // already has).
            Some(_) if body_follows && !head.http10 && self.unused().is_empty() => {
                self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                self.stream.flush()?;
            }
            _ => {}
        }
        let body = match framing {
            Framing::Length(n) => self.read_exact_body(n as usize)?,
            Framing::Chunked => self.read_chunked_body(limits.max_body)?,
        };
        let close = head.connection_has("close") || (head.http10 && !head.connection_has("keep-alive"));
        let http10 = head.http10;
        Ok(Incoming { request: head.into_request(body), close, http10 })
    }

    fn read_exact_body(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        let have = self.unused().len().min(n);
        let mut body = Vec::with_capacity(n);
        body.extend_from_slice(&self.unused()[..have]);
        self.pos += have;
        if body.len() < n {
            // The rest straight from the stream, not through `buf`.
            body.resize(n, 0);
            self.stream.read_exact(&mut body[have..])?;
        }
        Ok(body)
    }

    fn read_chunked_body(&mut self, max: usize) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let size = loop {
                match httparse::parse_chunk_size(self.unused()) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.pos += used;
                        break size;
                    }
                    Ok(httparse::Status::Partial) if self.unused().len() <= MAX_CHUNK_LINE => self.fill_more()?,
                    _ => return Err(reject(400, "malformed chunked body: bad chunk size line")),
                }
            };
            if size == 0 {
                return self.skip_trailers().map(|()| body);
            }
            let size = usize::try_from(size).ok().filter(|s| body.len().saturating_add(*s) <= max);
            let Some(size) = size else {
                return Err(reject(413, format!("request body larger than {max} bytes")));
            };
            while self.unused().len() < size + 2 {
                self.fill_more()?;
            }
            let data = &self.unused()[..size + 2];
            if &data[size..] != b"\r\n" {
                return Err(reject(400, "malformed chunked body: chunk data not followed by CRLF"));
            }
            body.extend_from_slice(&data[..size]);
            self.pos += size + 2;
        }
    }

    /// Skips the trailer section after the last chunk (up to its blank
    /// line); trailers are not used.
    fn skip_trailers(&mut self) -> Result<(), ReadError> {
        loop {
            let mut headers = vec![httparse::EMPTY_HEADER; MANY_HEADERS];
            match httparse::parse_headers(self.unused(), &mut headers) {
                Ok(httparse::Status::Complete((used, _))) => {
                    self.pos += used;
                    return Ok(());
                }
                Ok(httparse::Status::Partial) if self.unused().len() <= MAX_CHUNK_LINE * 4 => self.fill_more()?,
                Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                    return Err(reject(431, "chunked body trailers too large"))
                }
                Err(e) => return Err(reject(400, format!("malformed chunked body trailers: {e}"))),
            }
        }
    }

    /// The next request, or `None` once the connection is done: the client
    /// closed it or went quiet, reading failed, or the request was refused
    /// (answered here with its status and `Connection: close`).
    pub fn next_request(&mut self, limits: &Limits) -> Option<Incoming> {
        match self.read_request(limits) {
            Ok(inc) => Some(inc),
            Err(ReadError::Reject(status, msg)) => {
                // The connection ends either way.
                let _ = self.write_response(&Response::text(status, format!("{msg}\n")), false, Some("close"));
                None
            }
            Err(ReadError::Closed | ReadError::Io) => None,
        }
    }

    /// Answers `inc` with `resp`: without the body for `HEAD`, with the
    /// `Connection` header the request calls for.
    pub fn answer(&mut self, inc: &Incoming, resp: &Response) -> io::Result<()> {
        self.write_response(resp, inc.request.method == "HEAD", inc.connection_header())
    }

    /// Writes `resp` whole (head and body in one system call where the
    /// kernel takes it), without its body for `HEAD`, with a `Connection`
    /// header when one is given.
    pub fn write_response(&mut self, resp: &Response, head_only: bool, connection: Option<&str>) -> io::Result<()> {
        let head = response_head(resp, connection, &http_date());
        let body: &[u8] = if head_only || !has_body(resp.status) { &[] } else { &resp.body };
        let mut parts = [IoSlice::new(&head), IoSlice::new(body)];
        let mut parts = &mut parts[..];
        while !parts.is_empty() {
            match self.stream.write_vectored(parts) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut parts, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.stream.flush()
    }
}

/// Whether a response with this status carries a body (and its length):
/// not 1xx, 204 or 304.
fn has_body(status: u16) -> bool {
    !(100..200).contains(&status) && status != 204 && status != 304
}

/// The current time as an HTTP `Date`.
fn http_date() -> String {
    chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// A response's status line and headers, blank line included.
fn response_head(resp: &Response, connection: Option<&str>, date: &str) -> Vec<u8> {
    let mut h = Vec::with_capacity(256);
    let reason = http::StatusCode::from_u16(resp.status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Unknown");
    h.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", resp.status).as_bytes());
    let mut line = |name: &str, value: &str| {
        // A value with a line break would end the head early: drop it.
        if !value.contains(['\r', '\n']) && !name.contains(['\r', '\n', ':']) {
            h.extend_from_slice(name.as_bytes());
            h.extend_from_slice(b": ");
            h.extend_from_slice(value.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
    };
    if !(100..200).contains(&resp.status) {
        line("Date", date);
    }
    if has_body(resp.status) {
        line("Content-Type", &resp.content_type);
        line("Content-Length", &resp.body.len().to_string());
    }
    let mut own_connection = false;
    for (k, v) in &resp.headers {
        own_connection |= k.eq_ignore_ascii_case("connection");
        line(k, v);
    }
    if let (Some(c), false) = (connection, own_connection) {
        line("Connection", c);
    }
    h.extend_from_slice(b"\r\n");
    h
}

/// Sets up an accepted connection for [`Conn`]: responses go out in one
/// write, so Nagle's algorithm is off (a keep-alive client would otherwise
/// wait for a delayed ACK on the next one); reads and writes give up after
/// `timeout` (none: never).
pub fn set_up(stream: &std::net::TcpStream, timeout: Option<std::time::Duration>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)
}

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    Length(u64),
    Chunked,
}

/// A parsed request head.
#[derive(Debug, PartialEq)]
struct Head {
    method: String,
    target: String,
    http10: bool,
    /// Names lower case.
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether a `Connection` header lists `token`.
    fn connection_has(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k == "connection")
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The body's framing, from `Transfer-Encoding` and `Content-Length`
    /// (RFC 9112 section 6): chunked must be the only coding, and a request
    /// may not have both headers or disagreeing lengths.
    fn framing(&self) -> Result<Framing, ReadError> {
        let codings: Vec<String> = self
            .headers
            .iter()
            .filter(|(k, _)| k == "transfer-encoding")
            .flat_map(|(_, v)| v.split(','))
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .collect();
        let mut length: Option<u64> = None;
        for (_, v) in self.headers.iter().filter(|(k, _)| k == "content-length") {
            for part in v.split(',').map(str::trim) {
                let n = part
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| part.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(|| reject(400, format!("bad Content-Length {v:?}")))?;
                if length.is_some_and(|l| l != n) {
                    return Err(reject(400, "conflicting Content-Length headers"));
                }
                length = Some(n);
            }
        }
        match (codings.as_slice(), length) {
            ([], l) => Ok(Framing::Length(l.unwrap_or(0))),
            (_, Some(_)) => Err(reject(400, "a request may not have both Transfer-Encoding and Content-Length")),
            ([c], None) if c == "chunked" => Ok(Framing::Chunked),
            (other, None) => Err(reject(501, format!("unsupported transfer encoding {:?}", other.join(", ")))),
        }
    }

    fn into_request(self, body: Vec<u8>) -> Request {
        // Absolute-form targets (`http://host/path`, as sent to proxies)
        // are served by their path.
        let mut target = self.target.as_str();
        for scheme in ["http://", "https://"] {
            // Compared as bytes: the target's first bytes need not end on a
            // character boundary (the scheme's do, so slicing after it is safe).
            if target.as_bytes().get(..scheme.len()).is_some_and(|p| p.eq_ignore_ascii_case(scheme.as_bytes())) {
                let rest = &target[scheme.len()..];
                target = rest.find(['/', '?']).map_or("/", |i| &rest[i..]);
            }
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.to_string(), String::new()),
        };
        let path = if path.is_empty() { "/".to_string() } else { path };
        Request { method: self.method.to_ascii_uppercase(), path, query, headers: self.headers, body }
    }
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is
/// incomplete, else the head and its length (blank line included).
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, ReadError> {
    let mut few = [httparse::EMPTY_HEADER; FEW_HEADERS];
    match parse_head_with(buf, &mut few) {
        Err(httparse::Error::TooManyHeaders) => {
            let mut many = vec![httparse::EMPTY_HEADER; MANY_HEADERS];
            parse_head_with(buf, &mut many).map_err(|e| match e {
                httparse::Error::TooManyHeaders => reject(431, format!("more than {MANY_HEADERS} header lines")),
                e => reject(400, format!("malformed request head: {e}")),
            })
        }
        other => other.map_err(|e| reject(400, format!("malformed request head: {e}"))),
    }
}

fn parse_head_with<'b>(buf: &'b [u8], headers: &mut [httparse::Header<'b>]) -> Result<Option<(Head, usize)>, httparse::Error> {
    let mut r = httparse::Request::new(headers);
    let len = match r.parse(buf)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let (Some(method), Some(target), Some(version)) = (r.method, r.path, r.version) else {
        return Err(httparse::Error::Version);
    };
    let headers = r
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_string()))
        .collect();
    Ok(Some((Head { method: method.to_string(), target: target.to_string(), http10: version == 0, headers }, len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A stream over fixed input that hands out at most `step` bytes per
    /// read and records what is written.
    struct Pipe {
        input: Vec<u8>,
        at: usize,
        step: usize,
        out: Vec<u8>,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step).min(self.input.len() - self.at);
            buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn conn(input: &[u8], step: usize) -> Conn<Pipe> {
        Conn::new(Pipe { input: input.to_vec(), at: 0, step: step.max(1), out: Vec::new() })
    }

    const LIMITS: Limits = Limits { max_head: 1024, max_body: 100 };

    fn read_all(input: &[u8], step: usize) -> (Vec<Result<Incoming, ReadError>>, Vec<u8>) {
        let mut c = conn(input, step);
        let mut out = Vec::new();
        loop {
            let r = c.read_request(&LIMITS);
            let stop = r.is_err();
            out.push(r);
            if stop {
                break;
            }
        }
        (out, c.stream.out)
    }

    fn status(r: &Result<Incoming, ReadError>) -> Option<u16> {
        match r {
            Err(ReadError::Reject(s, _)) => Some(*s),
            _ => None,
        }
    }

    #[test]
    fn pipelined_requests_with_both_framings() {
        let input = b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n\
            POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
            POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n\
            get http://example.com/d HTTP/1.0\r\n\r\n";
        for step in [1, 2, 7, 4096] {
            let (got, written) = read_all(input, step);
            assert_eq!(got.len(), 5, "step {step}: {got:?}");
            let reqs: Vec<&Incoming> = got.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!((reqs[0].request.path.as_str(), reqs[0].request.query.as_str()), ("/a", "x=1"));
            assert_eq!(reqs[0].request.header("HOST"), Some("h"));
            assert!(!reqs[0].close && !reqs[0].http10);
            assert_eq!(reqs[1].request.body, b"hello");
            assert_eq!((reqs[2].request.method.as_str(), &reqs[2].request.body[..]), ("POST", &b"abcde"[..]));
            assert_eq!((reqs[3].request.method.as_str(), reqs[3].request.path.as_str()), ("GET", "/d"));
            assert!(reqs[3].close && reqs[3].http10);
            assert!(matches!(got[4], Err(ReadError::Closed)));
            assert!(written.is_empty());
        }
    }

    #[test]
    fn connection_tokens_decide_closing() {
        let one = |input: &[u8]| read_all(input, 4096).0.remove(0).unwrap();
        assert!(one(b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n").close);
        let r = one(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(!r.close && r.http10);
        assert!(!one(b"GET / HTTP/1.1\r\n\r\n").close);
    }

    #[test]
    fn expect_continue_is_answered_before_the_body() {
        // The client waits for the interim response before sending its
        // body: here, the head comes in one read.
        let head = b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        let (got, written) = read_all(&[&head[..], b"ok"].concat(), head.len());
        assert_eq!(written, b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(got[0].as_ref().map(|r| r.request.body.clone()).ok(), Some(b"ok".to_vec()));
        // Too large: refused without asking for the body.
        let (got, written) = read_all(b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 101\r\n\r\n", 4096);
        assert_eq!(status(&got[0]), Some(413));
        assert!(written.is_empty());
        let (got, _) = read_all(b"PUT /x HTTP/1.1\r\nExpect: something\r\n\r\n", 4096);
        assert_eq!(status(&got[0]), Some(417));
    }

    #[test]
    fn bad_requests_get_their_status() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(2000));
        let many: String = (0..1100).map(|i| format!("X-{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        let big_chunk = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n";
        let cases: [(&[u8], u16); 11] = [
            (b"GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            (b"GET / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413),
            (big_chunk.as_bytes(), 413),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 400),
            (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
            (long.as_bytes(), 431),
            (many.as_bytes(), 431),
        ];
        for (input, want) in cases {
            let (got, _) = read_all(input, 4096);
            assert_eq!(status(&got[0]), Some(want), "{:?}: {:?}", String::from_utf8_lossy(input), got[0]);
        }
        // Cut short: nothing to answer within a head, an error within a body.
        assert!(matches!(read_all(b"GET / HT", 3).0[0], Err(ReadError::Closed)));
        assert!(matches!(read_all(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc", 3).0[0], Err(ReadError::Io)));
        assert!(matches!(read_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 3).0[0], Err(ReadError::Io)));
    }

    #[test]
    fn responses_have_length_date_and_reason() {
        let mut c = conn(b"", 1);
        let resp = Response::json(200, "{}").with_header("X-A", "b").with_header("X-Bad", "a\r\nInjected: 1");
        c.write_response(&resp, false, Some("close")).unwrap();
        let text = String::from_utf8(c.stream.out.clone()).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nDate: "), "{text}");
        assert!(text.ends_with("\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-A: b\r\nConnection: close\r\n\r\n{}"), "{text}");
        let mut c = conn(b"", 1);
        c.write_response(&Response::text(204, "ignored"), false, None).unwrap();
        c.write_response(&Response::text(404, "gone"), true, Some("keep-alive")).unwrap();
        let text = String::from_utf8(c.stream.out).unwrap();
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\nDate: "), "{text}");
        assert!(!text.contains("ignored") && !text.contains("gone"), "{text}");
        assert!(text.contains("\r\n\r\nHTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.ends_with("Content-Length: 4\r\nConnection: keep-alive\r\n\r\n"), "{text}");
    }

    /// Found by fuzzing: a target whose first bytes cut a character in
    /// two where an absolute-form scheme would end.
    #[test]
    fn targets_with_multibyte_characters() {
        let (got, _) = read_all("GET {{{{<@\u{7c3}{{{/ HTTP/1.1\r\n\r\n".as_bytes(), 4096);
        assert_eq!(got[0].as_ref().map(|r| r.request.path.clone()).ok().as_deref(), Some("{{{{<@\u{7c3}{{{/"));
        let (got, _) = read_all("GET htt\u{e9}://x/y HTTP/1.1\r\n\r\n".as_bytes(), 4096);
        assert_eq!(got[0].as_ref().map(|r| r.request.path.clone()).ok().as_deref(), Some("htt\u{e9}://x/y"));
        let (got, _) = read_all(b"GET HTTP://x/y?q HTTP/1.1\r\n\r\n", 4096);
        assert_eq!(got[0].as_ref().map(|r| (r.request.path.clone(), r.request.query.clone())).ok(), Some(("/y".into(), "q".into())));
    }

    #[test]
    fn leftover_bytes_go_with_the_stream() {
        let mut c = conn(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x00", 4096);
        let r = c.read_request(&LIMITS).unwrap();
        assert_eq!(r.request.path, "/ws");
        let (_, rest) = c.into_parts();
        assert_eq!(rest, b"\x81\x00");
    }

    proptest! {
        /// Any bytes, read in any slices, give requests or an error, never
        /// a panic; a well-formed request survives any slicing.
        #[test]
        fn arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..600), step in 1usize..50) {
            let _ = read_all(&input, step);
            let mut framed = b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            let body: Vec<u8> = input.iter().copied().take(100).collect();
            for part in body.chunks(step) {
                framed.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                framed.extend_from_slice(part);
                framed.extend_from_slice(b"\r\n");
            }
            framed.extend_from_slice(b"0\r\n\r\n");
            let (got, _) = read_all(&framed, step);
            prop_assert_eq!(&got[0].as_ref().map(|r| r.request.body.clone()).ok(), &Some(body));
        }
    }
}
