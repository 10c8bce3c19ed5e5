//! The background [`Notifier`] against the receiver: outages, ordering, dedupe.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{ClientBuilder, Enqueued, Notifier, NotifierBuilder, Payload, RetryPolicy, SendError};

use crate::receiver::{free_port, url_for, Receiver, Reply};

fn builder() -> NotifierBuilder {
    let mut client = ClientBuilder::new();
    client.timeout(Duration::from_secs(2)).seed(7);
    let mut b = Notifier::builder();
    b.client(client)
        .queue_retry(
            RetryPolicy::unlimited()
                .initial_backoff(Duration::from_millis(20))
                .max_backoff(Duration::from_millis(100)),
        )
        .rate_limit(None)
        .shutdown_timeout(Duration::from_secs(2));
    b
}

#[test]
fn send_returns_at_once_and_flush_delivers() {
    let rx = Receiver::start();
    rx.script([Reply::Status(500, "hiccup")]);
    let n = builder().build(rx.url()).unwrap();
    for i in 0..3 {
        assert_eq!(
            n.send(Payload::text(format!("m{i}"))).unwrap(),
            Enqueued::Queued { posts: 1 }
        );
    }
    n.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(rx.accepted_texts(), vec!["m0", "m1", "m2"]);
    let stats = n.shutdown();
    assert_eq!(
        (stats.delivered, stats.failed, stats.retries, stats.queued),
        (3, 0, 1, 0)
    );
}

#[test]
fn survives_an_outage_and_delivers_everything_in_order() {
    let port = free_port();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&errors);
    let n = builder()
        .on_error(move |e| sink.lock().unwrap().push(e.to_string()))
        .build(url_for(port))
        .unwrap();
    let sent: Vec<String> = (0..8).map(|i| format!("event {i}")).collect();
    for text in &sent {
        n.send(Payload::text(text.clone())).unwrap();
    }
    // Nothing listens yet: connections are refused and retried, and nothing is lost.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(n.pending(), 8);
    assert!(matches!(
        n.flush(Duration::from_millis(10)),
        Err(notify::FlushError::Timeout { pending: 8, .. })
    ));

    let rx = Receiver::start_on(port);
    n.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(rx.accepted_texts(), sent);
    let stats = n.shutdown();
    assert_eq!(stats.delivered, 8);
    assert!(stats.retries >= 1, "{stats:?}");
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );
}

#[test]
fn survives_a_run_of_503_and_429() {
    let rx = Receiver::start();
    rx.script([
        Reply::Status(503, "restarting"),
        Reply::Status(503, "restarting"),
        Reply::TooMany(0),
        Reply::Status(504, ""),
    ]);
    let n = builder().build(rx.url()).unwrap();
    n.send(Payload::text("first")).unwrap();
    n.send(Payload::text("second")).unwrap();
    n.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(rx.accepted_texts(), vec!["first", "second"]);
    assert_eq!(rx.hits().len(), 6);
}

#[test]
fn rejected_notification_is_reported_and_the_rest_go_through() {
    let rx = Receiver::start();
    rx.script([Reply::Status(400, "Invalid channel.")]);
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&errors);
    let n = builder()
        .on_error(move |e| sink.lock().unwrap().push(e.to_string()))
        .build(rx.url())
        .unwrap();
    n.send(Payload::text("to a bad channel")).unwrap();
    n.send(Payload::text("fine")).unwrap();
    n.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(rx.accepted_texts(), vec!["fine"]);
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("HTTP 400 Bad Request: Invalid channel."),
        "{}",
        errors[0]
    );
    assert_eq!(n.stats().failed, 1);
}

#[test]
fn identical_notifications_within_the_window_are_sent_once() {
    let rx = Receiver::start();
    let n = builder()
        .dedupe_window(Duration::from_secs(60))
        .build(rx.url())
        .unwrap();
    assert_eq!(
        n.send(Payload::text("disk full")).unwrap(),
        Enqueued::Queued { posts: 1 }
    );
    assert_eq!(
        n.send(Payload::text("disk full")).unwrap(),
        Enqueued::Duplicate
    );
    assert_eq!(
        n.send(Payload::text("disk ok")).unwrap(),
        Enqueued::Queued { posts: 1 }
    );
    let mut other_channel = Payload::text("disk full");
    other_channel.channel = Some("ops".into());
    assert_eq!(
        n.send(other_channel).unwrap(),
        Enqueued::Queued { posts: 1 }
    );
    assert_eq!(
        n.send(Payload::text("disk full")).unwrap(),
        Enqueued::Duplicate
    );
    n.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(
        rx.accepted_texts(),
        vec!["disk full", "disk ok", "disk full"]
    );
    assert_eq!(n.stats().duplicates, 2);
}

#[test]
fn identical_notification_after_the_window_is_sent_again() {
    let rx = Receiver::start();
    let n = builder()
        .dedupe_window(Duration::from_millis(200))
        .build(rx.url())
        .unwrap();
    n.send(Payload::text("flapping")).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(
        n.send(Payload::text("flapping")).unwrap(),
        Enqueued::Queued { posts: 1 }
    );
    n.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(rx.accepted_texts(), vec!["flapping", "flapping"]);
}

#[test]
fn full_queue_says_so() {
    let port = free_port();
    let n = builder()
        .capacity(2)
        .shutdown_timeout(Duration::from_millis(50))
        .build(url_for(port))
        .unwrap();
    n.send(Payload::text("a")).unwrap();
    n.send(Payload::text("b")).unwrap();
    let err = n.send(Payload::text("c")).unwrap_err();
    assert!(
        matches!(err, SendError::QueueFull { capacity: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("queue is full"), "{err}");
    let stats = n.shutdown();
    assert_eq!(stats.abandoned, 2);
}

#[test]
fn rate_limit_paces_posts_without_losing_any() {
    let rx = Receiver::start();
    let n = builder()
        .rate_limit(Some((2, Duration::from_millis(100))))
        .build(rx.url())
        .unwrap();
    let start = std::time::Instant::now();
    for i in 0..5 {
        n.send(Payload::text(format!("r{i}"))).unwrap();
    }
    n.flush(Duration::from_secs(10)).unwrap();
    let hits = rx.hits();
    assert_eq!(rx.accepted_texts(), vec!["r0", "r1", "r2", "r3", "r4"]);
    // Two at once, then one per 100 ms: the fifth cannot start before 300 ms have passed.
    assert!(hits[4].at.duration_since(start) >= Duration::from_millis(300));
}

#[test]
fn drop_flushes_the_queue() {
    let rx = Receiver::start();
    {
        let n = builder().build(rx.url()).unwrap();
        n.send(Payload::text("last words")).unwrap();
    }
    assert_eq!(rx.accepted_texts(), vec!["last words"]);
}

#[test]
fn concurrent_senders_keep_their_own_order() {
    let rx = Receiver::start();
    let n = Arc::new(builder().build(rx.url()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let n = Arc::clone(&n);
            std::thread::spawn(move || {
                for i in 0..25 {
                    n.send(Payload::text(format!("t{t} #{i}"))).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    n.flush(Duration::from_secs(20)).unwrap();
    let texts = rx.accepted_texts();
    assert_eq!(texts.len(), 100);
    for t in 0..4 {
        let mine: Vec<&String> = texts
            .iter()
            .filter(|s| s.starts_with(&format!("t{t} ")))
            .collect();
        let expected: Vec<String> = (0..25).map(|i| format!("t{t} #{i}")).collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>());
    }
}
