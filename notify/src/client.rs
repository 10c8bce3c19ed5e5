//! The I/O: [`Transport`] (one POST) with its HTTP implementation [`HttpTransport`], and
//! [`Client`], which drives a transport through a [`RetryPolicy`] synchronously.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::error::{DeliveryError, Failure, SendError};
use crate::payload::{LongText, Payload, MAX_POST_CHARS};
use crate::retry::{parse_retry_after, Retry, RetryPolicy};
use crate::url::WebhookUrl;

/// Most bytes of an error response we read; Mattermost's JSON errors are a few hundred.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// Most characters of a server's error message we put into an error.
const MAX_ERROR_MESSAGE_CHARS: usize = 300;

/// Sends one JSON body to a webhook, once. The only place where the network is touched.
///
/// Contract: `post_json` makes exactly one attempt, returns within the transport's own timeout,
/// never panics on any server behaviour, and puts nothing from `url` into a [`Failure`] except
/// through [`WebhookUrl::scrub`]. Retrying is the caller's job. Implementations must be usable
/// from several threads at once.
pub trait Transport: Send + Sync {
    /// POSTs `body` (a JSON document) to `url`: `Ok` for any 2xx answer.
    fn post_json(&self, url: &WebhookUrl, body: &str) -> Result<(), Failure>;
}

/// [`Transport`] over HTTP(S) with `ureq`: one timeout for the whole exchange, redirects not
/// followed (a webhook that redirects is misconfigured, and following would re-send the secret
/// URL's body elsewhere).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    agent: ureq::Agent,
}

impl HttpTransport {
    /// A transport whose requests fail with [`Failure::Timeout`] after `timeout` (connect,
    /// send and read together).
    pub fn new(timeout: Duration) -> HttpTransport {
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            .user_agent(concat!("notify/", env!("CARGO_PKG_VERSION")))
            .build();
        HttpTransport { agent }
    }
}

impl Transport for HttpTransport {
    fn post_json(&self, url: &WebhookUrl, body: &str) -> Result<(), Failure> {
        let result = self
            .agent
            .post(url.expose_secret())
            .set("Content-Type", "application/json")
            .send_string(body);
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Err(transport_failure(url, &t)),
        };
        let status = response.status();
        if (200..300).contains(&status) {
            // Drain the (tiny) body so the connection can be reused.
            let mut sink = Vec::new();
            let _ = response
                .into_reader()
                .take(MAX_ERROR_BODY)
                .read_to_end(&mut sink);
            return Ok(());
        }
        let retry_after = response
            .header("Retry-After")
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        // Most often http:// redirected to https://: say where, so the user can fix the URL.
        let location = if (300..400).contains(&status) {
            response.header("Location").map(|l| url.scrub(l))
        } else {
            None
        };
        let mut raw = Vec::new();
        // A body we cannot read completely still tells us something; keep what we got.
        let _ = response
            .into_reader()
            .take(MAX_ERROR_BODY)
            .read_to_end(&mut raw);
        let mut message = describe_error_body(url, &String::from_utf8_lossy(&raw));
        if let Some(location) = location {
            let location: String = location
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_ERROR_MESSAGE_CHARS)
                .collect();
            message = if message.is_empty() {
                format!("redirects to {location}; use that as the webhook URL")
            } else {
                format!("redirects to {location}; use that as the webhook URL ({message})")
            };
        }
        Err(Failure::Status {
            status,
            message,
            retry_after,
        })
    }
}

/// Classifies a ureq transport error. Its Display includes the full URL, so we build our own
/// text from its parts and scrub that too.
fn transport_failure(url: &WebhookUrl, t: &ureq::Transport) -> Failure {
    use std::error::Error as _;
    let io_kind = t
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    if matches!(
        io_kind,
        Some(std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
    ) {
        return Failure::Timeout;
    }
    let mut message = t.kind().to_string();
    if let Some(m) = t.message() {
        message.push_str(": ");
        message.push_str(m);
    }
    if let Some(source) = t.source() {
        message.push_str(": ");
        message.push_str(&source.to_string());
    }
    let message = url.scrub(&message);
    match t.kind() {
        ureq::ErrorKind::InvalidUrl
        | ureq::ErrorKind::UnknownScheme
        | ureq::ErrorKind::InsecureRequestHttpsOnly => Failure::Request { message },
        _ => Failure::Connection { message },
    }
}

/// Turns an error body into one line for an error message: Mattermost's `message` (and error
/// `id`) when the body is its JSON error, else the body itself; with the webhook URL masked,
/// control characters replaced, and shortened.
///
/// Masking happens before shortening (a cut could leave half a key that no longer matches) and
/// both before and after JSON decoding (escapes could hide the key from the first pass).
pub(crate) fn describe_error_body(url: &WebhookUrl, body: &str) -> String {
    let text = url.scrub(&extract_message(&url.scrub(body)));
    let text = text.trim();
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_MESSAGE_CHARS)
        .collect();
    if text.chars().count() > MAX_ERROR_MESSAGE_CHARS {
        out.push('…');
    }
    out
}

/// Mattermost's `message` (with its error `id`) from a JSON error body, else the body.
fn extract_message(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => match map.get("message").and_then(|m| m.as_str()) {
            Some(m) => match map.get("id").and_then(|i| i.as_str()) {
                Some(id) if !id.is_empty() => format!("{m} ({id})"),
                _ => m.to_string(),
            },
            None => body.to_string(),
        },
        _ => body.to_string(),
    }
}

/// What a successful delivery took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Posts made (more than one when long text was split).
    pub posts: usize,
    /// HTTP requests made, retries included.
    pub attempts: u32,
}

/// Configures a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    timeout: Duration,
    retry: RetryPolicy,
    long_text: LongText,
    max_chars: usize,
    seed: Option<u64>,
    transport: Option<Arc<dyn Transport>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("long_text", &self.long_text)
            .field("max_chars", &self.max_chars)
            .field("seed", &self.seed)
            .field("custom_transport", &self.transport.is_some())
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder::new()
    }
}

impl ClientBuilder {
    /// Defaults: 10 s timeout, [`RetryPolicy::default`], long text split at [`MAX_POST_CHARS`].
    pub fn new() -> ClientBuilder {
        ClientBuilder {
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            long_text: LongText::Split,
            max_chars: MAX_POST_CHARS,
            seed: None,
            transport: None,
        }
    }

    /// Timeout of each HTTP request (ignored with a custom [`transport`](Self::transport)).
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = timeout;
        self
    }

    /// The retry policy.
    pub fn retry(&mut self, policy: RetryPolicy) -> &mut Self {
        self.retry = policy;
        self
    }

    /// What to do with text over the post limit.
    pub fn long_text(&mut self, mode: LongText) -> &mut Self {
        self.long_text = mode;
        self
    }

    /// The post limit in characters (default [`MAX_POST_CHARS`]; lower it for servers
    /// configured with a smaller limit).
    pub fn max_chars(&mut self, max_chars: usize) -> &mut Self {
        self.max_chars = max_chars;
        self
    }

    /// Seeds the jitter RNG, for reproducible delays in tests. Unseeded uses OS entropy.
    pub fn seed(&mut self, seed: u64) -> &mut Self {
        self.seed = Some(seed);
        self
    }

    /// Sends through this transport instead of HTTP (for tests, or a proxy-aware agent).
    pub fn transport(&mut self, transport: Arc<dyn Transport>) -> &mut Self {
        self.transport = Some(transport);
        self
    }

    /// The client for `url`.
    pub fn build(&self, url: WebhookUrl) -> Client {
        let transport = match &self.transport {
            Some(t) => Arc::clone(t),
            None => Arc::new(HttpTransport::new(self.timeout)),
        };
        let rng = match self.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Client {
            url,
            transport,
            retry: self.retry.clone(),
            long_text: self.long_text,
            max_chars: self.max_chars,
            rng: std::sync::Mutex::new(rng),
        }
    }
}

/// Synchronous delivery to one webhook, with retries; see [`Notifier`](crate::Notifier) for
/// the queued, non-blocking kind.
pub struct Client {
    url: WebhookUrl,
    transport: Arc<dyn Transport>,
    retry: RetryPolicy,
    long_text: LongText,
    max_chars: usize,
    rng: std::sync::Mutex<StdRng>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with default settings; see [`ClientBuilder`].
    pub fn new(url: WebhookUrl) -> Client {
        ClientBuilder::new().build(url)
    }

    /// The webhook URL (prints redacted).
    pub fn url(&self) -> &WebhookUrl {
        &self.url
    }

    /// Validates, splits and delivers `payload`, blocking through retries (sleeping between
    /// them). Posts of a split message go out in order; the first post that fails stops the rest.
    pub fn send(&self, payload: &Payload) -> Result<Receipt, SendError> {
        let bodies = self.prepare(payload)?;
        let mut attempts = 0;
        for body in &bodies {
            attempts += self.deliver(body, &mut |d| {
                std::thread::sleep(d);
                true
            })?;
        }
        Ok(Receipt {
            posts: bodies.len(),
            attempts,
        })
    }

    /// Validates and splits `payload` into the JSON bodies of its posts.
    pub(crate) fn prepare(&self, payload: &Payload) -> Result<Vec<String>, SendError> {
        payload.validate()?;
        let mut bodies = Vec::new();
        for part in payload.split(self.max_chars, self.long_text) {
            bodies.push(part.to_json()?);
        }
        Ok(bodies)
    }

    /// Delivers one body with this client's policy; see [`Client::deliver_with`].
    pub(crate) fn deliver(
        &self,
        body: &str,
        wait: &mut dyn FnMut(Duration) -> bool,
    ) -> Result<u32, DeliveryError> {
        self.deliver_with(&self.retry, body, wait)
    }

    /// Posts `body` until it is delivered or `policy` gives up. `wait(d)` is called between
    /// attempts and must return after about `d`; returning false abandons the delivery (used at
    /// shutdown). Returns the number of attempts made.
    pub(crate) fn deliver_with(
        &self,
        policy: &RetryPolicy,
        body: &str,
        wait: &mut dyn FnMut(Duration) -> bool,
    ) -> Result<u32, DeliveryError> {
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            let failure = match self.transport.post_json(&self.url, body) {
                Ok(()) => return Ok(attempt),
                Err(f) => f,
            };
            let decision = {
                let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                policy.next(attempt, &failure, &mut *rng)
            };
            let url = self.url.redacted().to_string();
            match decision {
                Retry::After(delay) => {
                    if !wait(delay) {
                        return Err(DeliveryError::Abandoned {
                            url,
                            attempts: attempt,
                            last: Some(failure),
                        });
                    }
                }
                Retry::GiveUp if !failure.is_retryable() => {
                    return Err(match failure {
                        Failure::Request { .. } => DeliveryError::Unsendable { url, failure },
                        _ => DeliveryError::Rejected { url, failure },
                    });
                }
                Retry::GiveUp => {
                    return Err(DeliveryError::GaveUp {
                        url,
                        attempts: attempt,
                        last: failure,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// A transport that replays scripted outcomes and records bodies.
    struct Script {
        outcomes: Mutex<VecDeque<Result<(), Failure>>>,
        bodies: Mutex<Vec<String>>,
    }

    impl Script {
        fn new(outcomes: Vec<Result<(), Failure>>) -> Arc<Script> {
            Arc::new(Script {
                outcomes: Mutex::new(outcomes.into()),
                bodies: Mutex::new(Vec::new()),
            })
        }
    }

    impl Transport for Script {
        fn post_json(&self, _url: &WebhookUrl, body: &str) -> Result<(), Failure> {
            self.bodies.lock().unwrap().push(body.to_string());
            self.outcomes.lock().unwrap().pop_front().unwrap_or(Ok(()))
        }
    }

    fn url() -> WebhookUrl {
        WebhookUrl::parse("https://chat.example.com/hooks/k3y5ecr3tk3y5ecr3t").unwrap()
    }

    fn client(script: &Arc<Script>, policy: RetryPolicy) -> Client {
        let transport: Arc<dyn Transport> = script.clone();
        ClientBuilder::new()
            .retry(policy)
            .seed(1)
            .transport(transport)
            .build(url())
    }

    fn e(status: u16, message: &str) -> Result<(), Failure> {
        Err(Failure::Status {
            status,
            message: message.into(),
            retry_after: None,
        })
    }

    #[test]
    fn retries_transient_then_succeeds() {
        let script = Script::new(vec![e(500, "boom"), Err(Failure::Timeout), Ok(())]);
        let c = client(
            &script,
            RetryPolicy::default().initial_backoff(Duration::from_millis(1)),
        );
        let mut waits = Vec::new();
        let n = c.deliver(r#"{"text":"a"}"#, &mut |d| {
            waits.push(d);
            true
        });
        assert_eq!(n.unwrap(), 3);
        assert_eq!(waits.len(), 2);
        assert_eq!(script.bodies.lock().unwrap().len(), 3);
    }

    #[test]
    fn permanent_failure_is_not_retried_and_names_status() {
        let script = Script::new(vec![e(
            400,
            "No text specified. (web.incoming_webhook.text.app_error)",
        )]);
        let c = client(&script, RetryPolicy::default());
        let err = c
            .deliver("{}", &mut |_| panic!("must not wait"))
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("HTTP 400 Bad Request"), "{msg}");
        assert!(msg.contains("No text specified."), "{msg}");
        assert!(msg.contains("https://chat.example.com/hooks/***"), "{msg}");
        assert!(!msg.contains("k3y5ecr3t"), "{msg}");
        assert_eq!(err.status(), Some(400));
    }

    #[test]
    fn gives_up_after_max_attempts_and_can_be_abandoned() {
        let script = Script::new(vec![e(503, ""), e(503, ""), e(503, ""), e(503, "")]);
        let c = client(&script, RetryPolicy::default().max_attempts(Some(3)));
        let err = c.deliver("{}", &mut |_| true).unwrap_err();
        assert!(
            matches!(err, DeliveryError::GaveUp { attempts: 3, .. }),
            "{err:?}"
        );

        let script = Script::new(vec![e(503, "")]);
        let c = client(&script, RetryPolicy::unlimited());
        let err = c.deliver("{}", &mut |_| false).unwrap_err();
        assert!(
            matches!(err, DeliveryError::Abandoned { attempts: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn send_validates_and_splits() {
        let script = Script::new(vec![]);
        let transport: Arc<dyn Transport> = script.clone();
        let c = ClientBuilder::new()
            .max_chars(10)
            .transport(transport)
            .build(url());
        assert!(matches!(
            c.send(&Payload::default()),
            Err(SendError::InvalidPayload(_))
        ));
        let r = c.send(&Payload::text("aaaa bbbb cccc dddd")).unwrap();
        assert_eq!(
            r,
            Receipt {
                posts: 2,
                attempts: 2
            }
        );
        assert_eq!(
            *script.bodies.lock().unwrap(),
            vec![r#"{"text":"aaaa bbbb "}"#, r#"{"text":"cccc dddd"}"#]
        );
    }

    #[test]
    fn error_bodies_become_one_short_line() {
        let u = url();
        let mm = r#"{"id":"web.incoming_webhook.invalid.app_error","message":"Invalid webhook.","detailed_error":"","request_id":"x","status_code":400}"#;
        assert_eq!(
            describe_error_body(&u, mm),
            "Invalid webhook. (web.incoming_webhook.invalid.app_error)"
        );
        assert_eq!(describe_error_body(&u, "  bad\ngateway \n"), "bad gateway");
        assert_eq!(
            describe_error_body(&u, r#"{"error":"x"}"#),
            r#"{"error":"x"}"#
        );
        let long = "x".repeat(1000);
        assert_eq!(
            describe_error_body(&u, &long).chars().count(),
            MAX_ERROR_MESSAGE_CHARS + 1
        );
        // A key hidden behind JSON escapes is still masked.
        let escaped = r#"{"message":"bad hook \u006b3y5ecr3tk3y5ecr3t"}"#;
        assert_eq!(describe_error_body(&u, escaped), "bad hook ***");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever a server echoes back, and wherever a cut falls, no part of the key longer
        /// than a few characters survives into the error message.
        #[test]
        fn echoed_urls_never_leak_the_key(
            key in "[a-z0-9]{26}",
            before in "[ A-Z.]{0,400}",
            after in "[ A-Z.]{0,50}",
            json in proptest::bool::ANY,
        ) {
            let u = WebhookUrl::parse(&format!("https://chat.example.com/hooks/{key}")).unwrap();
            let echoed = format!("{before}{} {key}{after}", u.expose_secret());
            let body = if json { serde_json::json!({"message": echoed, "id": "x"}).to_string() } else { echoed };
            let message = describe_error_body(&u, &body);
            proptest::prop_assert!(!message.contains(&key[..8]), "{}", message);
            let failure = Failure::Status { status: 400, message, retry_after: None };
            let err = DeliveryError::Rejected { url: u.redacted().to_string(), failure };
            proptest::prop_assert!(!err.to_string().contains(&key[..8]));
            let debug = format!("{err:?}");
            proptest::prop_assert!(!debug.contains(&key[..8]), "{}", debug);
        }
    }
}
