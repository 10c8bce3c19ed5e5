//! Synchronous delivery ([`Client`]) against the receiver: retries, Retry-After, rejections,
//! timeouts.

use std::time::Duration;

use notify::{
    Client, ClientBuilder, DeliveryError, Failure, HttpTransport, Payload, RetryPolicy, SendError,
    Transport,
};

use crate::receiver::{url_for, Receiver, Reply, KEY};

/// Short delays so the suite stays fast; the policy logic itself is unit-tested.
fn fast_policy() -> RetryPolicy {
    RetryPolicy::default()
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(50))
        .max_attempts(Some(4))
}

fn client(rx: &Receiver, timeout: Duration) -> Client {
    ClientBuilder::new()
        .timeout(timeout)
        .retry(fast_policy())
        .seed(42)
        .build(rx.url())
}

#[test]
fn delivers_a_plain_message() {
    let rx = Receiver::start();
    let receipt = client(&rx, Duration::from_secs(5))
        .send(&Payload::text("hello"))
        .unwrap();
    assert_eq!((receipt.posts, receipt.attempts), (1, 1));
    assert_eq!(rx.accepted_texts(), vec!["hello"]);
}

#[test]
fn retries_after_500_then_succeeds() {
    let rx = Receiver::start();
    rx.script([
        Reply::Status(500, "database down"),
        Reply::Status(502, "bad gateway"),
    ]);
    let receipt = client(&rx, Duration::from_secs(5))
        .send(&Payload::text("after 5xx"))
        .unwrap();
    assert_eq!(receipt.attempts, 3);
    let hits = rx.hits();
    assert_eq!(
        hits.iter().map(|h| h.status).collect::<Vec<_>>(),
        vec![500, 502, 200]
    );
    // Every attempt carried the same body.
    assert!(hits.iter().all(|h| h.body == hits[0].body));
}

#[test]
fn honours_retry_after_on_429() {
    let rx = Receiver::start();
    rx.script([Reply::TooMany(1)]);
    let receipt = client(&rx, Duration::from_secs(5))
        .send(&Payload::text("rate limited"))
        .unwrap();
    assert_eq!(receipt.attempts, 2);
    let hits = rx.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].status, 429);
    // The backoff alone would have been at most 10 ms; Retry-After: 1 asks for a second.
    let gap = hits[1].at.duration_since(hits[0].at);
    assert!(
        gap >= Duration::from_secs(1),
        "second attempt came {gap:?} after the 429"
    );
}

#[test]
fn gives_up_after_the_attempt_limit() {
    let rx = Receiver::start();
    rx.script(vec![Reply::Status(503, "maintenance"); 10]);
    let err = client(&rx, Duration::from_secs(5))
        .send(&Payload::text("never"))
        .unwrap_err();
    match &err {
        SendError::Delivery(DeliveryError::GaveUp {
            attempts: 4, last, ..
        }) => {
            assert_eq!(last.status(), Some(503));
        }
        other => panic!("unexpected: {other:?}"),
    }
    assert_eq!(rx.hits().len(), 4);
    assert!(
        err.to_string()
            .contains("HTTP 503 Service Unavailable: maintenance"),
        "{err}"
    );
}

#[test]
fn rejects_400_without_retry_naming_status_and_body() {
    let rx = Receiver::start();
    rx.script([Reply::Status(400, "Unable to parse incoming data.")]);
    let err = client(&rx, Duration::from_secs(5))
        .send(&Payload::text("bad"))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("HTTP 400 Bad Request"), "{msg}");
    assert!(
        msg.contains("Unable to parse incoming data. (test.injected.app_error)"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("http://127.0.0.1:{}/hooks/***", rx.port())),
        "{msg}"
    );
    assert!(!msg.contains(KEY), "{msg}");
    assert!(!format!("{err:?}").contains(KEY));
    assert_eq!(rx.hits().len(), 1, "a 400 must not be retried");
}

#[test]
fn receiver_validation_rejects_what_mattermost_rejects() {
    let rx = Receiver::start();
    let http = HttpTransport::new(Duration::from_secs(5));
    // No text and no attachments: the receiver answers like Mattermost.
    let failure = http
        .post_json(&rx.url(), r#"{"username":"bot","unknown_field":1}"#)
        .unwrap_err();
    assert_eq!(
        failure,
        Failure::Status {
            status: 400,
            message: "No text specified. (web.incoming_webhook.text.app_error)".into(),
            retry_after: None
        }
    );
    // Unknown fields are ignored when the rest is fine.
    http.post_json(&rx.url(), r#"{"text":"x","unknown_field":{"a":1}}"#)
        .unwrap();
    // A wrong key.
    let wrong =
        notify::WebhookUrl::parse(&format!("http://127.0.0.1:{}/hooks/wrongkey123", rx.port()))
            .unwrap();
    let err = Client::new(wrong)
        .send(&Payload::text("x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Invalid webhook."), "{err}");
    assert!(!err.contains("wrongkey123"), "{err}");
}

#[test]
fn slow_answer_times_out_then_retries() {
    let rx = Receiver::start();
    rx.script([Reply::Slow(Duration::from_millis(2000))]);
    let receipt = client(&rx, Duration::from_millis(500))
        .send(&Payload::text("slow"))
        .unwrap();
    assert_eq!(receipt.attempts, 2);
    // The slow answer is recorded when the receiver finishes it, after the client moved on.
    let hits = rx.wait_for_hits(2, Duration::from_secs(5));
    assert_eq!(hits.len(), 2);
    assert!(matches!(hits[0].reply, Reply::Slow(_)));
    assert!(matches!(hits[1].reply, Reply::Normal));

    // With one attempt the timeout is the error.
    rx.script([Reply::Slow(Duration::from_millis(2000))]);
    let one_shot = ClientBuilder::new()
        .timeout(Duration::from_millis(500))
        .retry(fast_policy().max_attempts(Some(1)))
        .build(rx.url());
    let err = one_shot.send(&Payload::text("slow again")).unwrap_err();
    assert!(
        matches!(
            err,
            SendError::Delivery(DeliveryError::GaveUp {
                last: Failure::Timeout,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn connection_refused_is_retried_and_reported_without_the_key() {
    let port = crate::receiver::free_port();
    let err = ClientBuilder::new()
        .timeout(Duration::from_secs(2))
        .retry(fast_policy().max_attempts(Some(2)))
        .build(url_for(port))
        .send(&Payload::text("nobody home"))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            SendError::Delivery(DeliveryError::GaveUp { attempts: 2, .. })
        ),
        "{msg}"
    );
    assert!(msg.contains("connection failed"), "{msg}");
    assert!(!msg.contains(KEY), "{msg}");
}

#[test]
fn long_text_arrives_as_several_posts_in_order() {
    let rx = Receiver::start();
    let line = "0123456789 ".repeat(9) + "\n"; // 100 characters
    let text = line.repeat(400); // 40,000 characters
    let receipt = client(&rx, Duration::from_secs(5))
        .send(&Payload::text(text.clone()))
        .unwrap();
    assert_eq!(receipt.posts, 3);
    let texts = rx.accepted_texts();
    assert_eq!(texts.len(), 3);
    assert_eq!(texts.concat(), text);
    assert!(texts
        .iter()
        .all(|t| t.chars().count() <= notify::MAX_POST_CHARS && t.ends_with('\n')));
}

#[test]
fn redirect_is_not_followed_and_says_where_without_the_key() {
    let rx = Receiver::start();
    let target = format!("https://127.0.0.1:{}/hooks/{KEY}", rx.port());
    rx.script([Reply::Redirect(target)]);
    let err = client(&rx, Duration::from_secs(5))
        .send(&Payload::text("x"))
        .unwrap_err();
    let msg = err.to_string();
    let expected = format!(
        "HTTP 301 Moved Permanently: redirects to https://127.0.0.1:{}/hooks/***; use that as the webhook URL",
        rx.port()
    );
    assert!(msg.ends_with(&expected), "{msg}");
    assert!(!msg.contains(KEY), "{msg}");
    assert_eq!(rx.hits().len(), 1);
}
