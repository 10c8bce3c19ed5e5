//! The one small synchronous HTTP server the binaries share: `tiny_http`
//! with a fixed pool of worker threads (the most recently idle one takes
//! the next request), body-size limits, and plain request/response values
//! so handlers stay testable.

use std::io::Read;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;

/// A request as handlers see it.
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method, upper case.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string (without `?`).
    pub query: String,
    /// Header name (lower case) and value pairs.
    pub headers: Vec<(String, String)>,
    /// The body (at most the server's limit).
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response from a handler.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body and content type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response { status, content_type: content_type.to_string(), headers: Vec::new(), body: body.into() }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status, "text/plain; charset=utf-8", body.into().into_bytes())
    }

    /// A JSON response.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response::new(status, "application/json", body)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A request handler shared by the worker threads.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A hook that sees each raw request before the [`Handler`]: it returns the
/// request to let the handler answer it, or `None` when it took the
/// connection over itself (a websocket upgrade, say).
pub type RawHook = Arc<dyn Fn(tiny_http::Request) -> Option<tiny_http::Request> + Send + Sync>;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Worker threads.
    pub threads: usize,
    /// Largest accepted request body, in bytes (larger: 413).
    pub max_body: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { threads: 8, max_body: 32 << 20 }
    }
}

/// A running server; dropping it does not stop it (call [`Server::shutdown`]).
pub struct Server {
    inner: Arc<tiny_http::Server>,
    workers: Vec<thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` and starts the worker threads.
    pub fn start(addr: &str, cfg: ServerConfig, handler: Handler) -> anyhow::Result<Server> {
        Server::start_with_hook(addr, cfg, handler, None)
    }

    /// Like [`Server::start`], with a [`RawHook`] that sees every request
    /// first.
    pub fn start_with_hook(
        addr: &str,
        cfg: ServerConfig,
        handler: Handler,
        hook: Option<RawHook>,
    ) -> anyhow::Result<Server> {
        let inner = Arc::new(
            tiny_http::Server::http(addr)
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?,
        );
        // One thread accepts; each request goes to the worker that became
        // idle last (a LIFO stack), so a client sending one request at a
        // time keeps hitting the same thread, with warm caches and heap,
        // while concurrent requests still spread over all workers.
        let idle = Arc::new(IdleStack::default());
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for i in 0..cfg.threads.max(1) {
            let (tx, rx) = mpsc::channel::<tiny_http::Request>();
            senders.push(tx);
            let h = Arc::clone(&handler);
            let hook = hook.clone();
            let max_body = cfg.max_body;
            let idle = Arc::clone(&idle);
            workers.push(thread::Builder::new().name(format!("http-{i}")).spawn(move || {
                idle.push(i);
                while let Ok(rq) = rx.recv() {
                    let rq = match &hook {
                        Some(hook) => hook(rq),
                        None => Some(rq),
                    };
                    if let Some(rq) = rq {
                        serve_one(rq, &h, max_body);
                    }
                    idle.push(i);
                }
            })?);
        }
        let srv = Arc::clone(&inner);
        workers.push(thread::Builder::new().name("http-accept".into()).spawn(move || {
            for rq in srv.incoming_requests() {
                let i = idle.pop();
                if let Some(tx) = senders.get(i) {
                    // A worker only goes away when its sender is dropped.
                    let _ = tx.send(rq);
                }
            }
            // Dropping the senders stops the workers.
        })?);
        Ok(Server { inner, workers })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.server_addr().to_ip()
    }

    /// Stops accepting and waits for the workers.
    pub fn shutdown(self) {
        self.inner.unblock();
        for w in self.workers {
            let _ = w.join();
        }
    }

    /// Blocks until the server stops.
    pub fn join(self) {
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// Idle workers, most recently idle last.
#[derive(Default)]
struct IdleStack {
    ids: Mutex<Vec<usize>>,
    ready: Condvar,
}

impl IdleStack {
    fn push(&self, i: usize) {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).push(i);
        self.ready.notify_one();
    }

    /// The most recently idle worker, waiting for one if all are busy.
    fn pop(&self) -> usize {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(i) = ids.pop() {
                return i;
            }
            ids = self.ready.wait(ids).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn serve_one(mut rq: tiny_http::Request, handler: &Handler, max_body: usize) {
    let url = rq.url().to_string();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (url, String::new()),
    };
    let headers: Vec<(String, String)> = rq
        .headers()
        .iter()
        .map(|h| (h.field.as_str().as_str().to_ascii_lowercase(), h.value.as_str().to_string()))
        .collect();
    let mut body = Vec::new();
    let too_large = rq.body_length().is_some_and(|n| n > max_body) || {
        let mut limited = rq.as_reader().take(max_body as u64 + 1);
        limited.read_to_end(&mut body).is_err() || body.len() > max_body
    };
    let resp = if too_large {
        Response::text(413, format!("request body larger than {max_body} bytes\n"))
    } else {
        let req = Request { method: rq.method().as_str().to_ascii_uppercase(), path, query, headers, body };
        handler(&req)
    };
    respond(rq, resp);
}

/// Sends `resp` as the answer to a raw request.
pub fn respond(rq: tiny_http::Request, resp: Response) {
    // The body goes out with its length (tiny_http would switch bodies over
    // 32 KiB to chunked encoding, one chunk per 8 KiB copy) and in large
    // writes: copying from a `BufReader` hands the writer the reader's
    // whole buffer at once, sized here to the body (up to 4 MiB) instead of
    // one syscall — and one chunk for the client to parse — per 8 KiB.
    let len = resp.body.len();
    let reader = std::io::BufReader::with_capacity(len.clamp(8 << 10, 4 << 20), std::io::Cursor::new(resp.body));
    let mut out = tiny_http::Response::new(tiny_http::StatusCode(resp.status), Vec::new(), reader, Some(len), None)
        .with_chunked_threshold(usize::MAX);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], resp.content_type.as_bytes()) {
        out.add_header(h);
    }
    for (k, v) in &resp.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            out.add_header(h);
        }
    }
    // The client may have gone away; nothing useful to do about it.
    let _ = rq.respond(out);
}

/// Decodes a request body according to `Content-Encoding` (gzip,
/// deflate, snappy framing is the caller's business), with a size limit on
/// the decoded bytes.
pub fn decode_content_encoding(req: &Request, max: usize) -> Result<Vec<u8>, String> {
    match req.header("content-encoding").map(|s| s.trim().to_ascii_lowercase()) {
        None => Ok(req.body.clone()),
        Some(e) if e.is_empty() || e == "identity" => Ok(req.body.clone()),
        Some(e) if e == "gzip" => read_limited(flate2::read::GzDecoder::new(&req.body[..]), max),
        Some(e) if e == "deflate" => read_limited(flate2::read::ZlibDecoder::new(&req.body[..]), max),
        Some(e) => Err(format!("unsupported Content-Encoding {e:?}")),
    }
}

fn read_limited(r: impl Read, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    r.take(max as u64 + 1).read_to_end(&mut out).map_err(|e| format!("cannot decode body: {e}"))?;
    if out.len() > max {
        return Err(format!("decoded body larger than {max} bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    type TestResult = Result<(), Box<dyn std::error::Error>>;
    use super::*;

    #[test]
    fn serves_and_limits_bodies() -> TestResult {
        let h: Handler = Arc::new(|r: &Request| Response::text(200, format!("{} {} {} {}", r.method, r.path, r.query, r.body.len())));
        let srv = Server::start("127.0.0.1:0", ServerConfig { threads: 2, max_body: 10 }, h)?;
        let addr = srv.local_addr().ok_or("server has no address")?;
        let body = ureq::get(&format!("http://{addr}/x?y=1")).call()?.into_string()?;
        assert_eq!(body, "GET /x y=1 0");
        let r = ureq::post(&format!("http://{addr}/p")).send_bytes(&[0u8; 5])?.into_string()?;
        assert_eq!(r, "POST /p  5");
        match ureq::post(&format!("http://{addr}/p")).send_bytes(&[0u8; 50]) {
            Err(ureq::Error::Status(413, _)) => {}
            other => panic!("expected 413, got {other:?}"),
        }
        srv.shutdown();
        Ok(())
    }

    /// Large bodies go out whole with their length (no chunked encoding),
    /// and the connection still serves the next request.
    #[test]
    fn large_bodies_have_a_length() -> TestResult {
        let h: Handler = Arc::new(|r: &Request| {
            let n: usize = r.query.parse().unwrap_or(0);
            Response::text(200, (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect::<String>())
        });
        let srv = Server::start("127.0.0.1:0", ServerConfig { threads: 2, max_body: 10 }, h)?;
        let addr = srv.local_addr().ok_or("server has no address")?;
        let agent = ureq::agent();
        for n in [0usize, 10, 40_000, 5 << 20] {
            let r = agent.get(&format!("http://{addr}/big?{n}")).call()?;
            assert_eq!(r.header("content-length"), Some(n.to_string().as_str()));
            assert_eq!(r.header("transfer-encoding"), None);
            let body = r.into_string()?;
            assert_eq!(body.len(), n);
            assert!(body.bytes().enumerate().all(|(i, b)| b == b'a' + (i % 26) as u8));
        }
        srv.shutdown();
        Ok(())
    }

    /// The most recently idle worker is handed out first.
    #[test]
    fn idle_workers_are_a_stack() {
        let idle = IdleStack::default();
        for i in 0..3 {
            idle.push(i);
        }
        assert_eq!(idle.pop(), 2);
        idle.push(2);
        assert_eq!(idle.pop(), 2);
        assert_eq!(idle.pop(), 1);
        idle.push(1);
        assert_eq!(idle.pop(), 1);
        assert_eq!(idle.pop(), 0);
    }

    /// A request that arrives while another is being served goes to a
    /// different worker.
    #[test]
    fn overlapping_requests_use_other_workers() {
        // The slow handler says when it has started, then waits until the
        // other request has been answered.
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let (started_tx, done_rx) = (Mutex::new(started_tx), Mutex::new(done_rx));
        let h: Handler = Arc::new(move |r: &Request| {
            if r.path == "/slow" {
                let _ = started_tx.lock().unwrap().send(());
                let _ = done_rx.lock().unwrap().recv_timeout(std::time::Duration::from_secs(10));
            }
            Response::text(200, thread::current().name().unwrap_or("").to_string())
        });
        let srv = Server::start("127.0.0.1:0", ServerConfig { threads: 4, max_body: 10 }, h).unwrap();
        let addr = srv.local_addr().unwrap();
        let get = |p: &str| ureq::get(&format!("http://{addr}{p}")).call().unwrap().into_string().unwrap();
        assert!(get("/").starts_with("http-"));
        let slow = thread::spawn(move || ureq::get(&format!("http://{addr}/slow")).call().unwrap().into_string().unwrap());
        started_rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        let other = get("/");
        done_tx.send(()).unwrap();
        let slow = slow.join().unwrap();
        assert_ne!(slow, other);
        srv.shutdown();
    }
}
