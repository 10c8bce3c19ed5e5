//! A loopback stand-in for Mattermost's incoming-webhook endpoint.
//!
//! It checks requests the way Mattermost does (POST, JSON body, unknown fields ignored, `text`
//! or `attachments` required, known fields of the right types, text within the post limit) and
//! answers with Mattermost-shaped errors. Tests can script faults: 5xx, 429 with Retry-After,
//! any status, or a slow answer. Every request is recorded with the instant it arrived.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::WebhookUrl;
use serde_json::{json, Value};

/// The hook key our receiver accepts.
pub const KEY: &str = "qk7w1zr9t3xbm5ydhe8ufnp2sa";

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Validate like Mattermost: 200 `ok`, or 400 with Mattermost's error.
    Normal,
    /// This status with a Mattermost-style JSON error carrying `message`.
    Status(u16, &'static str),
    /// 429 with `Retry-After: <secs>`.
    TooMany(u64),
    /// Wait this long, then answer as `Normal`.
    Slow(Duration),
    /// 301 to this location, as a proxy that upgrades http to https does.
    Redirect(String),
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Hit {
    /// When it arrived.
    pub at: Instant,
    /// The status we answered.
    pub status: u16,
    /// The request body.
    pub body: String,
    /// The reply we scripted for it.
    pub reply: Reply,
}

impl Hit {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

struct Inner {
    script: Mutex<VecDeque<Reply>>,
    hits: Mutex<Vec<Hit>>,
    stop: AtomicBool,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    port: u16,
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// The webhook URL of a receiver on `port`.
pub fn url_for(port: u16) -> WebhookUrl {
    WebhookUrl::parse(&format!("http://127.0.0.1:{port}/hooks/{KEY}")).expect("valid test URL")
}

impl Receiver {
    /// A receiver on an ephemeral port.
    pub fn start() -> Receiver {
        Receiver::start_on(0)
    }

    /// A receiver on `port` (0: any).
    pub fn start_on(port: u16) -> Receiver {
        let server = Arc::new(
            tiny_http::Server::http(("127.0.0.1", port)).expect("start the test receiver"),
        );
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let inner = Arc::new(Inner {
            script: Mutex::new(VecDeque::new()),
            hits: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept_inner = Arc::clone(&inner);
        let thread = std::thread::spawn(move || {
            while !accept_inner.stop.load(Ordering::SeqCst) {
                match server.recv_timeout(Duration::from_millis(20)) {
                    Ok(Some(request)) => {
                        let at = Instant::now();
                        let reply = accept_inner
                            .script
                            .lock()
                            .unwrap()
                            .pop_front()
                            .unwrap_or(Reply::Normal);
                        let inner = Arc::clone(&accept_inner);
                        // One thread per request, so a slow answer does not hold up the next.
                        std::thread::spawn(move || handle(&inner, request, at, reply));
                    }
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        });
        Receiver {
            port,
            inner,
            thread: Some(thread),
        }
    }

    /// Queues scripted replies for the next requests (then `Normal` again).
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    /// The webhook URL with the right key.
    pub fn url(&self) -> WebhookUrl {
        url_for(self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Requests so far, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        let mut hits = self.inner.hits.lock().unwrap().clone();
        hits.sort_by_key(|h| h.at);
        hits
    }

    /// Waits (at most `timeout`) until `n` requests have been answered, for answers that
    /// finish after the client gave up on them; returns the hits.
    pub fn wait_for_hits(&self, n: usize, timeout: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + timeout;
        while self.inner.hits.lock().unwrap().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.hits()
    }

    /// The `text` of every accepted (200) post, in arrival order.
    pub fn accepted_texts(&self) -> Vec<String> {
        self.hits()
            .iter()
            .filter(|h| h.status == 200)
            .map(|h| h.json()["text"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn mm_error(status: u16, id: &str, message: &str) -> (u16, String) {
    let body = json!({"id": id, "message": message, "detailed_error": "", "request_id": "testreq", "status_code": status});
    (status, body.to_string())
}

fn handle(inner: &Inner, mut request: tiny_http::Request, at: Instant, reply: Reply) {
    let mut body = String::new();
    let read_ok = request.as_reader().read_to_string(&mut body).is_ok();
    let mut headers = Vec::new();
    let (status, text) = match &reply {
        Reply::Status(code, message) => mm_error(*code, "test.injected.app_error", message),
        Reply::TooMany(secs) => {
            headers.push(tiny_http::Header::from_bytes("Retry-After", secs.to_string()).unwrap());
            mm_error(429, "api.context.rate_limit", "Too many requests")
        }
        Reply::Redirect(location) => {
            headers.push(tiny_http::Header::from_bytes("Location", location.as_bytes()).unwrap());
            (301, String::new())
        }
        Reply::Slow(d) => {
            std::thread::sleep(*d);
            validate(&request, read_ok, &body)
        }
        Reply::Normal => validate(&request, read_ok, &body),
    };
    inner.hits.lock().unwrap().push(Hit {
        at,
        status,
        body,
        reply,
    });
    let mut response = tiny_http::Response::from_string(text).with_status_code(status);
    for h in headers {
        response.add_header(h);
    }
    let _ = request.respond(response);
}

/// What Mattermost answers to a webhook request.
fn validate(request: &tiny_http::Request, read_ok: bool, body: &str) -> (u16, String) {
    if request.method() != &tiny_http::Method::Post {
        return mm_error(405, "api.context.method_not_allowed", "Method not allowed");
    }
    if request.url() != format!("/hooks/{KEY}") {
        return mm_error(
            400,
            "web.incoming_webhook.invalid.app_error",
            "Invalid webhook.",
        );
    }
    let json_type = request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Content-Type") && h.value.as_str().starts_with("application/json"));
    if !json_type {
        return mm_error(
            400,
            "web.incoming_webhook.parse.app_error",
            "Unable to parse incoming data.",
        );
    }
    if !read_ok {
        return mm_error(
            400,
            "web.incoming_webhook.parse.app_error",
            "Unable to parse incoming data.",
        );
    }
    match check_payload(body) {
        Ok(()) => (200, "ok".to_string()),
        Err((id, message)) => mm_error(400, id, &message),
    }
}

type Problem = (&'static str, String);

fn parse_err(what: String) -> Problem {
    (
        "web.incoming_webhook.parse.app_error",
        format!("Unable to parse incoming data: {what}"),
    )
}

fn opt_str(obj: &serde_json::Map<String, Value>, key: &str) -> Result<(), Problem> {
    match obj.get(key) {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        Some(other) => Err(parse_err(format!("{key} must be a string, got {other}"))),
    }
}

/// Mirrors the checks of Mattermost's incoming-webhook handler on a JSON body.
pub fn check_payload(body: &str) -> Result<(), Problem> {
    let v: Value = serde_json::from_str(body).map_err(|e| parse_err(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| parse_err("not an object".into()))?;
    for key in [
        "text",
        "username",
        "icon_url",
        "icon_emoji",
        "channel",
        "type",
    ] {
        opt_str(obj, key)?;
    }
    let text = obj.get("text").and_then(Value::as_str).unwrap_or("");
    let attachments = match obj.get("attachments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => {
            return Err(parse_err(format!(
                "attachments must be an array, got {other}"
            )))
        }
    };
    for a in &attachments {
        let a = a
            .as_object()
            .ok_or_else(|| parse_err("attachment must be an object".into()))?;
        for key in [
            "fallback",
            "color",
            "pretext",
            "author_name",
            "author_icon",
            "author_link",
            "title",
            "title_link",
            "text",
            "image_url",
            "thumb_url",
            "footer",
            "footer_icon",
        ] {
            opt_str(a, key)?;
        }
        match a.get("fields") {
            None | Some(Value::Null) => {}
            Some(Value::Array(fields)) => {
                for f in fields {
                    let f = f
                        .as_object()
                        .ok_or_else(|| parse_err("field must be an object".into()))?;
                    opt_str(f, "title")?;
                    if !matches!(f.get("short"), None | Some(Value::Bool(_))) {
                        return Err(parse_err("field short must be a boolean".into()));
                    }
                }
            }
            Some(_) => return Err(parse_err("fields must be an array".into())),
        }
    }
    if !matches!(
        obj.get("props"),
        None | Some(Value::Null) | Some(Value::Object(_))
    ) {
        return Err(parse_err("props must be an object".into()));
    }
    if let Some(p) = obj.get("priority") {
        let p = p
            .as_object()
            .ok_or_else(|| parse_err("priority must be an object".into()))?;
        if !matches!(
            p.get("priority").and_then(Value::as_str),
            Some("" | "important" | "urgent")
        ) {
            return Err((
                "api.post.invalid_priority",
                "Invalid message priority.".into(),
            ));
        }
        if !matches!(p.get("requested_ack"), None | Some(Value::Bool(_))) {
            return Err(parse_err("requested_ack must be a boolean".into()));
        }
    }
    if text.is_empty() && attachments.is_empty() {
        return Err((
            "web.incoming_webhook.text.app_error",
            "No text specified.".into(),
        ));
    }
    // Mattermost would split such a post; we insist the client did it already.
    if text.chars().count() > notify::MAX_POST_CHARS {
        return Err((
            "test.text_too_long",
            format!("text has {} characters", text.chars().count()),
        ));
    }
    Ok(())
}
