//! [`Notifier`]: a bounded queue in front of a [`Client`], drained by one background thread.
//!
//! `send` validates, deduplicates and queues, and returns at once; the worker posts the queue in
//! order, waiting out rate limits and retrying transient failures (by default without an
//! attempt limit, so a Mattermost outage delays notifications instead of losing them). The head
//! of the queue stays queued while it is being retried, so order is kept and the capacity bound
//! counts it. Permanent failures are counted and handed to the error callback.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::{Client, ClientBuilder, Receipt};
use crate::error::{DeliveryError, FlushError, SendError};
use crate::payload::Payload;
use crate::retry::RetryPolicy;
use crate::throttle::{Dedupe, Fingerprint, RateLimit};
use crate::url::WebhookUrl;

/// Called on the worker thread for every queued notification that could not be delivered.
pub type ErrorCallback = Arc<dyn Fn(&DeliveryError) + Send + Sync>;

/// What [`Notifier::send`] did with a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued as this many posts (more than one when long text was split).
    Queued {
        /// Posts queued.
        posts: usize,
    },
    /// Dropped: an identical notification was accepted within the dedupe window.
    Duplicate,
}

/// What [`Notifier::send_now`] did with a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Delivered.
    Delivered(Receipt),
    /// Not sent: an identical notification was accepted within the dedupe window.
    Duplicate,
}

/// Counters since the notifier started. Counts are in posts, except `duplicates`, which counts
/// notifications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Posts waiting, the one being sent included.
    pub queued: usize,
    /// Posts delivered (queued and synchronous).
    pub delivered: u64,
    /// Posts that failed for good (rejected, or the retry policy gave up).
    pub failed: u64,
    /// Posts dropped unsent at shutdown.
    pub abandoned: u64,
    /// Notifications dropped as duplicates.
    pub duplicates: u64,
    /// Extra HTTP attempts spent on retries.
    pub retries: u64,
}

/// Configures a [`Notifier`].
#[derive(Clone)]
pub struct NotifierBuilder {
    client: ClientBuilder,
    queue_retry: RetryPolicy,
    capacity: usize,
    dedupe_window: Duration,
    rate_limit: Option<(u32, Duration)>,
    shutdown_timeout: Duration,
    on_error: Option<ErrorCallback>,
}

impl std::fmt::Debug for NotifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifierBuilder")
            .field("client", &self.client)
            .field("queue_retry", &self.queue_retry)
            .field("capacity", &self.capacity)
            .field("dedupe_window", &self.dedupe_window)
            .field("rate_limit", &self.rate_limit)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}

impl Default for NotifierBuilder {
    fn default() -> Self {
        NotifierBuilder::new()
    }
}

impl NotifierBuilder {
    /// Defaults: [`ClientBuilder::new`], queue retries [`RetryPolicy::unlimited`], room for
    /// 1,000 posts, 60 s dedupe window, at most 10 posts at once then 2 per second, 5 s to
    /// drain at shutdown.
    pub fn new() -> NotifierBuilder {
        NotifierBuilder {
            client: ClientBuilder::new(),
            queue_retry: RetryPolicy::unlimited(),
            capacity: 1000,
            dedupe_window: Duration::from_secs(60),
            rate_limit: Some((10, Duration::from_millis(500))),
            shutdown_timeout: Duration::from_secs(5),
            on_error: None,
        }
    }

    /// HTTP, split and synchronous-retry settings, shared with [`Client`]; its retry policy
    /// applies to [`Notifier::send_now`].
    pub fn client(&mut self, client: ClientBuilder) -> &mut Self {
        self.client = client;
        self
    }

    /// The retry policy of queued notifications.
    pub fn queue_retry(&mut self, policy: RetryPolicy) -> &mut Self {
        self.queue_retry = policy;
        self
    }

    /// Most posts waiting at once (at least 1); `send` fails with
    /// [`SendError::QueueFull`] beyond it.
    pub fn capacity(&mut self, posts: usize) -> &mut Self {
        self.capacity = posts.max(1);
        self
    }

    /// Identical notifications within this window are dropped; zero turns deduplication off.
    pub fn dedupe_window(&mut self, window: Duration) -> &mut Self {
        self.dedupe_window = window;
        self
    }

    /// `Some((burst, interval))`: at most `burst` posts at once, then one per `interval`.
    /// `None` sends as fast as Mattermost answers.
    pub fn rate_limit(&mut self, limit: Option<(u32, Duration)>) -> &mut Self {
        self.rate_limit = limit;
        self
    }

    /// How long shutdown (and drop) keeps delivering what is queued before abandoning it. A
    /// request in flight at the deadline still runs to its own timeout.
    pub fn shutdown_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Called on the worker thread for each queued post that failed for good or was abandoned.
    /// It must not block for long (it holds up the queue); a panic in it is caught, so the
    /// worker goes on.
    pub fn on_error(
        &mut self,
        callback: impl Fn(&DeliveryError) + Send + Sync + 'static,
    ) -> &mut Self {
        self.on_error = Some(Arc::new(callback));
        self
    }

    /// Starts the notifier's worker thread; fails only if the OS cannot start a thread.
    pub fn build(&self, url: WebhookUrl) -> std::io::Result<Notifier> {
        let client = Arc::new(self.client.build(url));
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                closing: None,
                worker_alive: true,
                dedupe: Dedupe::new(self.dedupe_window),
                rate: self
                    .rate_limit
                    .map(|(burst, every)| RateLimit::new(burst, every)),
                stats: Stats::default(),
            }),
            wake: Condvar::new(),
            idle: Condvar::new(),
        });
        let worker = Worker {
            shared: Arc::clone(&shared),
            client: Arc::clone(&client),
            policy: self.queue_retry.clone(),
            on_error: self.on_error.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("notify-worker".into())
            .spawn(move || worker.run())?;
        Ok(Notifier {
            shared,
            client,
            capacity: self.capacity,
            shutdown_timeout: self.shutdown_timeout,
            worker: Some(handle),
        })
    }
}

/// `now + d`, saturating at about a century for durations meant as "forever" (`Duration::MAX`).
fn deadline_after(now: Instant, d: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);
    now.checked_add(d.min(CENTURY)).unwrap_or(now)
}

struct State {
    /// JSON bodies in send order; the front one is being delivered.
    queue: VecDeque<String>,
    /// Set at shutdown: deliver until this instant, then abandon.
    closing: Option<Instant>,
    worker_alive: bool,
    dedupe: Dedupe,
    rate: Option<RateLimit>,
    stats: Stats,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the worker: new work, or shutdown.
    wake: Condvar,
    /// Wakes flushers: the queue shrank or the worker stopped.
    idle: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps for `d` unless shutdown's deadline falls before the end: then returns false at
    /// once (or as soon as shutdown starts).
    fn sleep(&self, d: Duration) -> bool {
        let until = deadline_after(Instant::now(), d);
        let mut st = self.lock();
        loop {
            if st.closing.is_some_and(|deadline| until > deadline) {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            st = self
                .wake
                .wait_timeout(st, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

struct Worker {
    shared: Arc<Shared>,
    client: Arc<Client>,
    policy: RetryPolicy,
    on_error: Option<ErrorCallback>,
}

/// Marks the worker gone however it exits (even by an unforeseen panic), so that `send`
/// and `flush` stop waiting for it.
struct AliveGuard(Arc<Shared>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.worker_alive = false;
        self.0.idle.notify_all();
    }
}

impl Worker {
    fn run(self) {
        let _guard = AliveGuard(Arc::clone(&self.shared));
        loop {
            let mut errors = Vec::new();
            let body = {
                let mut st = self.shared.lock();
                loop {
                    if let Some(deadline) = st.closing {
                        if Instant::now() >= deadline || st.queue.is_empty() {
                            errors.extend(self.abandon_all(&mut st));
                            self.shared.idle.notify_all();
                            drop(st);
                            self.report(&errors);
                            return;
                        }
                    }
                    if let Some(front) = st.queue.front() {
                        break front.clone();
                    }
                    st = self.shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            let result = if self.wait_for_rate_limit() {
                self.client
                    .deliver_with(&self.policy, &body, &mut |d| self.shared.sleep(d))
            } else {
                Err(DeliveryError::Abandoned {
                    url: self.client.url().redacted().to_string(),
                    attempts: 0,
                    last: None,
                })
            };
            let mut st = self.shared.lock();
            st.queue.pop_front();
            st.stats.queued = st.queue.len();
            match result {
                Ok(attempts) => {
                    st.stats.delivered += 1;
                    st.stats.retries += u64::from(attempts.saturating_sub(1));
                }
                Err(e @ DeliveryError::Abandoned { .. }) => {
                    st.stats.abandoned += 1;
                    errors.push(e);
                    errors.extend(self.abandon_all(&mut st));
                }
                Err(e) => {
                    st.stats.failed += 1;
                    if let DeliveryError::GaveUp { attempts, .. } = &e {
                        st.stats.retries += u64::from(attempts.saturating_sub(1));
                    }
                    errors.push(e);
                }
            }
            self.shared.idle.notify_all();
            drop(st);
            self.report(&errors);
        }
    }

    /// Waits until the rate limit allows a post; false if shutdown's deadline comes first.
    fn wait_for_rate_limit(&self) -> bool {
        loop {
            let wait = {
                let mut st = self.shared.lock();
                match st.rate.as_mut().map(|r| r.try_acquire(Instant::now())) {
                    None | Some(Ok(())) => return true,
                    Some(Err(d)) => d,
                }
            };
            if !self.shared.sleep(wait) {
                return false;
            }
        }
    }

    /// Empties the queue at shutdown, one error per dropped post.
    fn abandon_all(&self, st: &mut State) -> Vec<DeliveryError> {
        let url = self.client.url().redacted().to_string();
        let dropped = st.queue.len();
        st.queue.clear();
        st.stats.queued = 0;
        st.stats.abandoned += dropped as u64;
        (0..dropped)
            .map(|_| DeliveryError::Abandoned {
                url: url.clone(),
                attempts: 0,
                last: None,
            })
            .collect()
    }

    fn report(&self, errors: &[DeliveryError]) {
        if let Some(callback) = &self.on_error {
            for e in errors {
                // A bug in the caller's callback must not stop deliveries; the panic hook has
                // already reported the panic, so it is dropped here.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(e)));
            }
        }
    }
}

/// Sends Mattermost notifications in the background (see the crate example).
///
/// [`send`](Self::send) validates, deduplicates and queues, and returns at once. One worker
/// thread posts the queue in order, waiting out the rate limit and retrying transient failures
/// (by default without an attempt limit, so an outage delays notifications instead of losing
/// them); the post being retried stays at the head of the queue and counts against its
/// capacity. Permanent failures are counted in [`stats`](Self::stats) and passed to the
/// [`on_error`](NotifierBuilder::on_error) callback.
///
/// Dropping a `Notifier` shuts it down like [`shutdown`](Self::shutdown): it blocks for at
/// most the shutdown timeout (plus one request timeout) while the queue drains.
pub struct Notifier {
    shared: Arc<Shared>,
    client: Arc<Client>,
    capacity: usize,
    shutdown_timeout: Duration,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("url", self.client.url())
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier with default settings; see [`NotifierBuilder`].
    pub fn new(url: WebhookUrl) -> std::io::Result<Notifier> {
        NotifierBuilder::new().build(url)
    }

    /// A builder with default settings.
    pub fn builder() -> NotifierBuilder {
        NotifierBuilder::new()
    }

    /// Queues a notification and returns at once.
    ///
    /// Errors: the payload is invalid ([`SendError::InvalidPayload`]), the queue has no room for
    /// all of its posts ([`SendError::QueueFull`], nothing queued), or the notifier is shutting
    /// down ([`SendError::Closed`]). Delivery failures are reported later through the error
    /// callback and [`stats`](Self::stats).
    pub fn send(&self, payload: Payload) -> Result<Enqueued, SendError> {
        let bodies = self.client.prepare(&payload)?;
        let key = Fingerprint::of(&payload);
        let now = Instant::now();
        let mut st = self.shared.lock();
        if st.closing.is_some() || !st.worker_alive {
            return Err(SendError::Closed);
        }
        if st.dedupe.is_duplicate(key, now) {
            st.stats.duplicates += 1;
            return Ok(Enqueued::Duplicate);
        }
        if st.queue.len() + bodies.len() > self.capacity {
            return Err(SendError::QueueFull {
                capacity: self.capacity,
                queued: st.queue.len(),
                needed: bodies.len(),
                payload: Box::new(payload),
            });
        }
        st.dedupe.record(key, now);
        let posts = bodies.len();
        st.queue.extend(bodies);
        st.stats.queued = st.queue.len();
        self.shared.wake.notify_all();
        Ok(Enqueued::Queued { posts })
    }

    /// Delivers a notification now, on the calling thread, with the client's (finite) retry
    /// policy, bypassing the queue (so it may overtake queued notifications). Deduplication and
    /// the rate limit apply; a notification that fails is forgotten by the deduplication, so
    /// the caller can try it again.
    pub fn send_now(&self, payload: &Payload) -> Result<Sent, SendError> {
        let bodies = self.client.prepare(payload)?;
        let key = Fingerprint::of(payload);
        {
            let mut st = self.shared.lock();
            if st.closing.is_some() {
                return Err(SendError::Closed);
            }
            if !st.dedupe.admit(key, Instant::now()) {
                st.stats.duplicates += 1;
                return Ok(Sent::Duplicate);
            }
        }
        let mut attempts = 0u32;
        for (i, body) in bodies.iter().enumerate() {
            self.wait_for_rate_limit_blocking();
            let result = self.client.deliver(body, &mut |d| {
                std::thread::sleep(d);
                true
            });
            let mut st = self.shared.lock();
            match result {
                Ok(n) => {
                    attempts += n;
                    st.stats.delivered += 1;
                    st.stats.retries += u64::from(n.saturating_sub(1));
                }
                Err(e) => {
                    st.stats.failed += (bodies.len() - i) as u64;
                    st.dedupe.forget(key);
                    return Err(SendError::Delivery(e));
                }
            }
        }
        Ok(Sent::Delivered(Receipt {
            posts: bodies.len(),
            attempts,
        }))
    }

    fn wait_for_rate_limit_blocking(&self) {
        loop {
            let wait = {
                let mut st = self.shared.lock();
                match st.rate.as_mut().map(|r| r.try_acquire(Instant::now())) {
                    None | Some(Ok(())) => return,
                    Some(Err(d)) => d,
                }
            };
            std::thread::sleep(wait);
        }
    }

    /// Waits until every queued post has been delivered or has failed for good, for at most
    /// `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let start = Instant::now();
        let deadline = deadline_after(start, timeout);
        let mut st = self.shared.lock();
        loop {
            if st.queue.is_empty() {
                return Ok(());
            }
            if !st.worker_alive {
                return Err(FlushError::WorkerStopped {
                    pending: st.queue.len(),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(FlushError::Timeout {
                    pending: st.queue.len(),
                    waited: now - start,
                });
            }
            st = self
                .shared
                .idle
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Posts queued or being sent.
    pub fn pending(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }

    /// The webhook URL (prints redacted).
    pub fn url(&self) -> &WebhookUrl {
        self.client.url()
    }

    /// Stops accepting notifications, delivers what is queued for up to the shutdown timeout,
    /// abandons the rest (reporting each to the error callback), stops the worker and returns
    /// the final counters.
    pub fn shutdown(mut self) -> Stats {
        self.close();
        self.stats()
    }

    fn close(&mut self) {
        {
            let mut st = self.shared.lock();
            if st.closing.is_none() {
                st.closing = Some(deadline_after(Instant::now(), self.shutdown_timeout));
            }
            self.shared.wake.notify_all();
        }
        if let Some(handle) = self.worker.take() {
            // A panic in the worker came from the user's callback and was already reported by
            // the panic hook; nothing more to do with it here.
            let _ = handle.join();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Transport;
    use crate::error::Failure;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{MutexGuard, PoisonError};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Locks `m`, also after a panic elsewhere (one test panics on purpose).
    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A notifier from `b` for a webhook nobody listens on (the tests'
    /// transports never connect).
    fn build(b: &NotifierBuilder) -> Result<Notifier, Box<dyn std::error::Error>> {
        Ok(b.build(WebhookUrl::parse("http://127.0.0.1:1/hooks/abcdefgh")?)?)
    }

    /// Fails with 503 while `down` is set; records delivered bodies.
    struct Switch {
        down: AtomicBool,
        delivered: Mutex<Vec<String>>,
    }

    impl Transport for Switch {
        fn post_json(&self, _url: &WebhookUrl, body: &str) -> Result<(), Failure> {
            if self.down.load(Ordering::SeqCst) {
                return Err(Failure::Status {
                    status: 503,
                    message: String::new(),
                    retry_after: None,
                });
            }
            if body.contains("reject") {
                return Err(Failure::Status {
                    status: 400,
                    message: "bad".into(),
                    retry_after: None,
                });
            }
            lock(&self.delivered).push(body.to_string());
            Ok(())
        }
    }

    fn setup(down: bool, capacity: usize) -> (Arc<Switch>, NotifierBuilder) {
        let switch = Arc::new(Switch {
            down: AtomicBool::new(down),
            delivered: Mutex::new(Vec::new()),
        });
        let transport: Arc<dyn Transport> = switch.clone();
        let mut client = ClientBuilder::new();
        client
            .transport(transport)
            .seed(9)
            .retry(RetryPolicy::default().initial_backoff(Duration::from_millis(1)));
        let mut b = NotifierBuilder::new();
        b.client(client)
            .capacity(capacity)
            .rate_limit(None)
            .queue_retry(
                RetryPolicy::unlimited()
                    .initial_backoff(Duration::from_millis(1))
                    .max_backoff(Duration::from_millis(5)),
            )
            .shutdown_timeout(Duration::from_millis(200));
        (switch, b)
    }

    #[test]
    fn queue_full_is_an_error_and_returns_the_payload() -> TestResult {
        let (switch, b) = setup(true, 2);
        let n = build(&b)?;
        assert_eq!(
            n.send(Payload::text("1"))?,
            Enqueued::Queued { posts: 1 }
        );
        assert_eq!(
            n.send(Payload::text("2"))?,
            Enqueued::Queued { posts: 1 }
        );
        match n.send(Payload::text("3")) {
            Err(SendError::QueueFull {
                capacity: 2,
                queued: 2,
                needed: 1,
                payload,
            }) => {
                assert_eq!(payload.text.as_deref(), Some("3"))
            }
            other => panic!("{other:?}"),
        }
        switch.down.store(false, Ordering::SeqCst);
        n.flush(Duration::from_secs(5))?;
        assert_eq!(
            *lock(&switch.delivered),
            vec![r#"{"text":"1"}"#, r#"{"text":"2"}"#]
        );
        assert_eq!(
            n.send(Payload::text("3"))?,
            Enqueued::Queued { posts: 1 }
        );
        Ok(())
    }

    #[test]
    fn shutdown_abandons_what_cannot_be_delivered_and_reports_it() -> TestResult {
        let (_switch, mut b) = setup(true, 10);
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        b.on_error(move |e| lock(&sink).push(e.to_string()));
        let n = build(&b)?;
        n.send(Payload::text("a"))?;
        n.send(Payload::text("b"))?;
        assert!(matches!(
            n.flush(Duration::from_millis(50)),
            Err(FlushError::Timeout { pending: 2, .. })
        ));
        let stats = n.shutdown();
        assert_eq!(stats.abandoned, 2);
        assert_eq!(stats.delivered, 0);
        assert_eq!(stats.queued, 0);
        let errors = lock(&errors);
        assert_eq!(errors.len(), 2);
        assert!(errors[0].contains("abandoned at shutdown"), "{}", errors[0]);
        assert!(errors[0].contains("HTTP 503"), "{}", errors[0]);
        assert!(!errors[0].contains("abcdefgh"));
        Ok(())
    }

    #[test]
    fn rejected_posts_are_counted_and_the_queue_moves_on() -> TestResult {
        let (switch, b) = setup(false, 10);
        let n = build(&b)?;
        n.send(Payload::text("reject me"))?;
        n.send(Payload::text("fine"))?;
        n.flush(Duration::from_secs(5))?;
        let stats = n.stats();
        assert_eq!((stats.failed, stats.delivered), (1, 1));
        assert_eq!(
            *lock(&switch.delivered),
            vec![r#"{"text":"fine"}"#]
        );
        Ok(())
    }

    #[test]
    fn send_now_dedupes_and_forgets_failures() -> TestResult {
        let (switch, b) = setup(false, 10);
        let n = build(&b)?;
        assert!(matches!(
            n.send_now(&Payload::text("x"))?,
            Sent::Delivered(Receipt {
                posts: 1,
                attempts: 1
            })
        ));
        assert_eq!(n.send_now(&Payload::text("x"))?, Sent::Duplicate);
        assert_eq!(n.send(Payload::text("x"))?, Enqueued::Duplicate);
        assert!(n.send_now(&Payload::text("reject")).is_err());
        assert!(
            n.send_now(&Payload::text("reject")).is_err(),
            "a failed notification is not a duplicate"
        );
        assert_eq!(n.stats().duplicates, 2);
        assert_eq!(lock(&switch.delivered).len(), 1);
        let stats = n.shutdown();
        assert_eq!(stats.failed, 2);
        Ok(())
    }

    #[test]
    fn panicking_callback_does_not_stop_the_worker() -> TestResult {
        let (switch, mut b) = setup(false, 10);
        b.on_error(|_| panic!("callback bug (expected by this test)"));
        let n = build(&b)?;
        n.send(Payload::text("reject: triggers the callback"))
            ?;
        n.send(Payload::text("after the panic"))?;
        n.flush(Duration::from_secs(30))?;
        assert_eq!(
            *lock(&switch.delivered),
            vec![r#"{"text":"after the panic"}"#]
        );
        assert_eq!(n.shutdown().failed, 1);
        Ok(())
    }

    #[test]
    fn forever_durations_do_not_overflow() -> TestResult {
        let (switch, mut b) = setup(false, 10);
        b.shutdown_timeout(Duration::MAX)
            .rate_limit(Some((1, Duration::MAX)));
        let n = build(&b)?;
        n.send(Payload::text("one"))?;
        n.flush(Duration::MAX)?;
        assert_eq!(lock(&switch.delivered).len(), 1);
        // The second post would wait "forever" for the rate limit: flush gives up in time.
        n.send(Payload::text("two"))?;
        assert!(matches!(
            n.flush(Duration::from_millis(20)),
            Err(FlushError::Timeout { pending: 1, .. })
        ));
        let mut n = n;
        // Shutdown with an unbounded timeout would wait forever for "two"; shorten it.
        n.shutdown_timeout = Duration::from_millis(20);
        assert_eq!(n.shutdown().abandoned, 1);
        Ok(())
    }

    #[test]
    fn closed_notifier_refuses() -> TestResult {
        let (_switch, b) = setup(false, 10);
        let mut n = build(&b)?;
        n.close();
        assert!(matches!(
            n.send(Payload::text("late")),
            Err(SendError::Closed)
        ));
        assert!(matches!(
            n.send(Payload::default()),
            Err(SendError::InvalidPayload(_))
        ));
        Ok(())
    }
}
