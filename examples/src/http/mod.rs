//! The one small synchronous HTTP/1.1 server the binaries share: worker
//! threads that each accept and serve their own connections (keep-alive,
//! pipelining, chunked request bodies, `Expect: 100-continue`), size
//! limits, websocket-style upgrades, and plain request/response values so
//! handlers stay testable. Request heads and chunk sizes are parsed by
//! `httparse` ([`conn`]).

use std::collections::HashMap;
use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::Context;

pub mod conn;

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

/// What an [`UpgradeHook`] answers for a request it takes: the response,
/// and what then gets the connection (the stream and any bytes the client
/// sent after the request), for a websocket say. Without `then` the
/// connection goes on serving requests.
pub struct Upgrade {
    /// Sent as is (a `101 Switching Protocols` with its headers, or an
    /// error).
    pub response: Response,
    /// Takes the connection over once the response is sent (the stream
    /// keeps [`ServerConfig::idle_timeout`] as its read and write timeouts).
    pub then: Option<Takeover>,
}

/// What takes a connection over after an [`Upgrade`]: the stream, and the
/// bytes the client sent after its request.
pub type Takeover = Box<dyn FnOnce(TcpStream, Vec<u8>) + Send>;

/// A hook that sees each request before the [`Handler`]: `None` lets the
/// handler answer it.
pub type UpgradeHook = Arc<dyn Fn(&Request) -> Option<Upgrade> + Send + Sync>;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Threads kept waiting for connections (more start while all are
    /// busy, up to [`ServerConfig::max_connections`]; one more may wait).
    /// The kernel hands connections to waiting threads in turn, so the
    /// fewer wait, the warmer the one that serves: one client's requests
    /// one after another through metrics-server (alternating with
    /// Prometheus, 300 runs) took 0.795-0.822 ms with 1 against
    /// 0.825-0.831 ms with 8.
    pub threads: usize,
    /// Largest accepted request body, in bytes (larger: 413).
    pub max_body: usize,
    /// Most connections served at once (each has a thread); further ones
    /// wait to be accepted. Prometheus's `--web.max-connections` default.
    pub max_connections: usize,
    /// How long a connection may idle between requests, or stall within
    /// one, before it is closed (Prometheus's `--web.read-timeout`
    /// default).
    pub idle_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { threads: 1, max_body: 32 << 20, max_connections: 512, idle_timeout: Duration::from_secs(300) }
    }
}

/// Largest request head (request line and headers): Go's
/// `http.DefaultMaxHeaderBytes`, as Prometheus and Loki use.
const MAX_HEAD: usize = 1 << 20;

/// A running server; dropping it does not stop it (call [`Server::shutdown`]).
///
/// Every worker thread waits in `accept` on the listening socket itself and
/// serves the connection it gets, request after request, so a request
/// goes from the kernel to the thread that answers it without passing
/// through other threads. While every thread is busy with a connection, the
/// one that accepted last starts another (up to
/// [`ServerConfig::max_connections`]); threads beyond
/// [`ServerConfig::threads`] idle end when their connection does.
pub struct Server {
    shared: Arc<Shared>,
}

/// What the worker threads share.
struct Shared {
    listener: TcpListener,
    handler: Handler,
    hook: Option<UpgradeHook>,
    cfg: ServerConfig,
    /// Threads waiting (or about to wait) in `accept`.
    waiting: AtomicUsize,
    /// Threads alive, with a condition variable for [`Server::join`].
    live: Mutex<usize>,
    ended: Condvar,
    stop: AtomicBool,
    /// The connections being served (clones of their streams), so that
    /// shutting down can close them.
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
    next_thread: AtomicUsize,
}

impl Server {
    /// Binds `addr` and starts the worker threads.
    pub fn start(addr: &str, cfg: ServerConfig, handler: Handler) -> anyhow::Result<Server> {
        Server::start_with_hook(addr, cfg, handler, None)
    }

    /// Like [`Server::start`], with an [`UpgradeHook`] that sees every
    /// request first.
    pub fn start_with_hook(addr: &str, cfg: ServerConfig, handler: Handler, hook: Option<UpgradeHook>) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        let threads = cfg.threads.max(1);
        let shared = Arc::new(Shared {
            listener,
            handler,
            hook,
            cfg,
            waiting: AtomicUsize::new(0),
            live: Mutex::new(0),
            ended: Condvar::new(),
            stop: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            next_thread: AtomicUsize::new(0),
        });
        for _ in 0..threads {
            spawn_worker(&shared).context("starting HTTP worker threads")?;
        }
        Ok(Server { shared })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.shared.listener.local_addr().ok()
    }

    /// Stops accepting, closes the connections being served (a request
    /// being answered finishes first) and waits for the worker threads.
    pub fn shutdown(self) {
        let s = &self.shared;
        s.stop.store(true, Ordering::SeqCst);
        for c in lock(&s.conns).values() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        // Threads blocked in `accept` notice the flag on their next
        // connection: make those connections.
        let wake = self.local_addr().map(|mut a| {
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() });
            }
            a
        });
        let mut live = lock(&s.live);
        while *live > 0 {
            if let Some(a) = wake {
                drop(live);
                let _ = TcpStream::connect_timeout(&a, Duration::from_millis(100));
                live = lock(&s.live);
            }
            live = s.ended.wait_timeout(live, Duration::from_millis(5)).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Blocks until the server stops.
    pub fn join(self) {
        let mut live = lock(&self.shared.live);
        while *live > 0 {
            live = self.shared.ended.wait(live).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a worker thread, counted as alive and waiting.
fn spawn_worker(shared: &Arc<Shared>) -> std::io::Result<()> {
    *lock(&shared.live) += 1;
    shared.waiting.fetch_add(1, Ordering::SeqCst);
    let s = Arc::clone(shared);
    let name = format!("http-{}", shared.next_thread.fetch_add(1, Ordering::Relaxed));
    thread::Builder::new().name(name).spawn(move || worker(&s)).map(|_| ()).inspect_err(|_| {
        shared.waiting.fetch_sub(1, Ordering::SeqCst);
        *lock(&shared.live) -= 1;
    })
}

/// A worker: accepts a connection, serves it, and goes back to waiting
/// unless enough threads already wait.
fn worker(s: &Arc<Shared>) {
    loop {
        let accepted = s.listener.accept();
        if s.stop.load(Ordering::SeqCst) {
            s.waiting.fetch_sub(1, Ordering::SeqCst);
            break;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                eprintln!("http: accepting a connection: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if s.waiting.fetch_sub(1, Ordering::SeqCst) == 1 && *lock(&s.live) < s.cfg.max_connections.max(1) {
            // The last waiting thread took this connection: start one for
            // the next (failing that, the next waits for a thread to end
            // its connection).
            if let Err(e) = spawn_worker(s) {
                eprintln!("http: cannot start a worker thread: {e}");
            }
        }
        // A panic is caught where the handler runs; this one would be a
        // bug of the connection code: keep the thread's count right anyway.
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve_connection(s, stream)));
        if served.is_err() {
            eprintln!("http: a connection's thread panicked");
        }
        let keep = s.cfg.threads.max(1);
        if s.stop.load(Ordering::SeqCst) || s.waiting.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| (w <= keep).then_some(w + 1)).is_err() {
            break;
        }
    }
    *lock(&s.live) -= 1;
    s.ended.notify_all();
}

/// Serves requests on one connection until the client closes it, it idles
/// out, a request asks to close, or the server stops.
fn serve_connection(s: &Shared, stream: TcpStream) {
    let timeout = Some(s.cfg.idle_timeout).filter(|t| !t.is_zero());
    let id = s.next_conn.fetch_add(1, Ordering::Relaxed);
    let Ok(clone) = conn::set_up(&stream, timeout).and(stream.try_clone()) else { return };
    lock(&s.conns).insert(id, clone);
    let _unregister = Unregister(&s.conns, id);
    if s.stop.load(Ordering::SeqCst) {
        return;
    }
    let limits = conn::Limits { max_head: MAX_HEAD, max_body: s.cfg.max_body };
    let mut c = conn::Conn::new(stream);
    while let Some(inc) = c.next_request(&limits) {
        if let Some(up) = s.hook.as_ref().and_then(|h| h(&inc.request)) {
            if c.answer(&inc, &up.response).is_err() {
                return;
            }
            if let Some(then) = up.then {
                let (stream, rest) = c.into_parts();
                // Not the server's to close any more.
                lock(&s.conns).remove(&id);
                then(stream, rest);
                return;
            }
        } else {
            let req = &inc.request;
            let resp = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (s.handler)(req))).unwrap_or_else(|_| {
                eprintln!("http: the handler panicked on {} {}", req.method, req.path);
                Response::text(500, "internal server error\n")
            });
            if c.answer(&inc, &resp).is_err() {
                return;
            }
        }
        if inc.close || s.stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Removes a connection from the server's list when dropped.
struct Unregister<'a>(&'a Mutex<HashMap<u64, TcpStream>>, u64);

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        lock(self.0).remove(&self.1);
    }
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
    use std::io::{BufRead, BufReader, Write};
    use std::sync::mpsc;

    #[test]
    fn serves_and_limits_bodies() -> TestResult {
        let h: Handler = Arc::new(|r: &Request| Response::text(200, format!("{} {} {} {}", r.method, r.path, r.query, r.body.len())));
        let srv = Server::start("127.0.0.1:0", ServerConfig { threads: 2, max_body: 10, ..ServerConfig::default() }, h)?;
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
        let srv = Server::start("127.0.0.1:0", ServerConfig { threads: 2, max_body: 10, ..ServerConfig::default() }, h)?;
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
        let srv = Server::start("127.0.0.1:0", ServerConfig { threads: 4, max_body: 10, ..ServerConfig::default() }, h).unwrap();
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

    /// Keep-alive connections hold their threads: more of them than
    /// `threads` are still all served, and shutting down closes idle ones
    /// instead of waiting for their clients.
    #[test]
    fn more_kept_alive_connections_than_threads() -> TestResult {
        let h: Handler = Arc::new(|r: &Request| Response::text(200, r.path.clone()));
        let srv = Server::start("127.0.0.1:0", ServerConfig { threads: 1, ..ServerConfig::default() }, h)?;
        let addr = srv.local_addr().ok_or("server has no address")?;
        let mut conns = Vec::new();
        for i in 0..6 {
            let mut s = TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            write!(s, "GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n")?;
            let mut r = BufReader::new(s.try_clone()?);
            let mut head = String::new();
            while !head.ends_with("\r\n\r\n") {
                if r.read_line(&mut head)? == 0 {
                    return Err("connection closed".into());
                }
            }
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("Content-Length: 2\r\n"), "{head}");
            let mut body = [0u8; 2];
            r.read_exact(&mut body)?;
            assert_eq!(&body, format!("/{i}").as_bytes());
            conns.push(s);
        }
        let t0 = std::time::Instant::now();
        srv.shutdown();
        assert!(t0.elapsed() < Duration::from_secs(5), "shutdown took {:?}", t0.elapsed());
        Ok(())
    }

    /// A panicking handler costs its request a 500, not the server.
    #[test]
    fn a_panicking_handler_gets_a_500() -> TestResult {
        let h: Handler = Arc::new(|r: &Request| {
            if r.path == "/boom" {
                panic!("handler bug");
            }
            Response::text(200, "fine")
        });
        let srv = Server::start("127.0.0.1:0", ServerConfig { threads: 1, ..ServerConfig::default() }, h)?;
        let addr = srv.local_addr().ok_or("server has no address")?;
        match ureq::get(&format!("http://{addr}/boom")).call() {
            Err(ureq::Error::Status(500, _)) => {}
            other => panic!("expected 500, got {other:?}"),
        }
        assert_eq!(ureq::get(&format!("http://{addr}/")).call()?.into_string()?, "fine");
        let head = ureq::head(&format!("http://{addr}/")).call()?;
        assert_eq!(head.header("content-length"), Some("4"));
        assert_eq!(head.into_string()?, "");
        srv.shutdown();
        Ok(())
    }

    /// An upgrade hook answers, then gets the connection with the bytes
    /// the client sent after its request.
    #[test]
    fn upgrades_hand_the_connection_over() -> TestResult {
        let h: Handler = Arc::new(|_: &Request| Response::text(200, "plain"));
        let hook: UpgradeHook = Arc::new(|r: &Request| {
            (r.path == "/echo").then(|| Upgrade {
                response: Response::new(101, "", Vec::new()).with_header("Upgrade", "echo").with_header("Connection", "Upgrade"),
                then: Some(Box::new(|mut s: TcpStream, rest: Vec<u8>| {
                    let _ = s.write_all(b"rest:");
                    let _ = s.write_all(&rest);
                })),
            })
        });
        let srv = Server::start_with_hook("127.0.0.1:0", ServerConfig { threads: 1, ..ServerConfig::default() }, h, Some(hook))?;
        let addr = srv.local_addr().ok_or("server has no address")?;
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"GET /echo HTTP/1.1\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nextra")?;
        let mut got = String::new();
        s.read_to_string(&mut got)?;
        assert!(got.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{got}");
        assert!(got.contains("\r\nConnection: Upgrade\r\n") && !got.contains("Content-Length"), "{got}");
        assert!(got.ends_with("\r\n\r\nrest:extra"), "{got}");
        assert_eq!(ureq::get(&format!("http://{addr}/")).call()?.into_string()?, "plain");
        srv.shutdown();
        Ok(())
    }

    /// Many clients at once, on kept and on new connections: threads
    /// start while all are busy (four requests are in the handler at
    /// once with one thread kept waiting), every request gets its own
    /// answer, and once the clients are gone the extra threads end.
    #[test]
    fn concurrent_clients_then_threads_wind_down() -> TestResult {
        // `/meet` answers only once four requests are in the handler at
        // the same time (or says it gave up waiting).
        let met = Arc::new((Mutex::new(0usize), Condvar::new()));
        let h: Handler = Arc::new(move |r: &Request| {
            if r.path == "/meet" {
                let (n, cv) = &*met;
                let mut n = lock(n);
                *n += 1;
                cv.notify_all();
                let (n, _) = cv.wait_timeout_while(n, Duration::from_secs(10), |n| *n < 4).unwrap_or_else(|e| e.into_inner());
                return Response::text(200, if *n >= 4 { "met" } else { "alone" });
            }
            Response::text(200, format!("{}?{}", r.path, r.query))
        });
        let srv = Server::start("127.0.0.1:0", ServerConfig { threads: 1, ..ServerConfig::default() }, h)?;
        let addr = srv.local_addr().ok_or("server has no address")?;
        let meet = move || -> Result<String, String> {
            let r = ureq::get(&format!("http://{addr}/meet")).call().map_err(|e| e.to_string())?;
            r.into_string().map_err(|e| e.to_string())
        };
        let meeting: Vec<_> = (0..4).map(|_| thread::spawn(meet)).collect();
        for m in meeting {
            assert_eq!(m.join().map_err(|_| "client panicked")??, "met");
        }
        let clients: Vec<_> = (0..12)
            .map(|c| {
                thread::spawn(move || -> Result<(), String> {
                    let kept = ureq::agent();
                    for i in 0..20 {
                        let url = format!("http://{addr}/c{c}?{i}");
                        let r = if i % 3 == 0 { ureq::get(&url).set("Connection", "close").call() } else { kept.get(&url).call() };
                        let body = r.map_err(|e| e.to_string())?.into_string().map_err(|e| e.to_string())?;
                        if body != format!("/c{c}?{i}") {
                            return Err(format!("{url}: {body}"));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for c in clients {
            c.join().map_err(|_| "client panicked")??;
        }
        // The clients' kept connections closed with their agents: the
        // threads that served them end, down to the waiting ones.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while *lock(&srv.shared.live) > 2 {
            assert!(std::time::Instant::now() < deadline, "{} threads still alive", *lock(&srv.shared.live));
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(srv.shared.waiting.load(Ordering::SeqCst), *lock(&srv.shared.live));
        srv.shutdown();
        Ok(())
    }
}
