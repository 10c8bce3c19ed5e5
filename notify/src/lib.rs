//! Mattermost notifications through incoming webhooks, with retries and rate limits.
//!
//! The pieces, from pure to I/O:
//!
//! - [`Payload`], [`Attachment`], [`Field`], [`Priority`]: the webhook JSON; [`Payload::split`]
//!   fits long text into Mattermost's 16,383-character posts.
//! - [`probe_message`] and [`alerts_message`]: ready-made messages for monitor state changes
//!   (UP/DOWN/PENDING/MAINTENANCE) and for firing/resolved alerts.
//! - [`Dedupe`] and [`RateLimit`]: drop repeats and pace posts; they take `now` as an argument.
//! - [`RetryPolicy`]: exponential backoff with jitter, honouring `Retry-After`; no retry on a
//!   4xx other than 408/429.
//! - [`Client`]: synchronous delivery with retries over a [`Transport`] (HTTP by default).
//! - [`Notifier`]: a bounded queue and a background thread, so `send` never blocks and an
//!   outage delays notifications instead of losing them.
//!
//! A webhook URL is a secret, so it lives in a [`WebhookUrl`], which prints (Display, Debug,
//! errors) with its key replaced by `***`.
//!
//! # Example
//!
//! ```
//! use notify::{probe_message, MessageStyle, MonitorStatus, Notifier, ProbeEvent, WebhookUrl};
//! use std::time::{Duration, SystemTime};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let event = ProbeEvent {
//!     monitor: "Website".into(),
//!     target: Some("https://www.example.com/".into()),
//!     status: MonitorStatus::Down,
//!     previous: Some(MonitorStatus::Up),
//!     message: "503 - Service Unavailable".into(),
//!     time: SystemTime::now(),
//!     response_time: Some(Duration::from_millis(87)),
//! };
//! let style = MessageStyle { username: Some("Uptime".into()), ..MessageStyle::default() };
//! let payload = probe_message(&event, &style);
//! assert_eq!(payload.attachments[0].title.as_deref(), Some("🔴 Website is DOWN"));
//!
//! let url: WebhookUrl = "https://chat.example.com/hooks/3n8fh2k4xbgw7pdyq1rmz6s5ta".parse()?;
//! assert_eq!(format!("{url}"), "https://chat.example.com/hooks/***");
//! # // Nothing listens on the documentation port: the send is queued, then abandoned quickly.
//! # let url: WebhookUrl = "http://127.0.0.1:9/hooks/3n8fh2k4xbgw7pdyq1rmz6s5ta".parse()?;
//! let notifier = Notifier::builder()
//!     .shutdown_timeout(Duration::from_millis(100))
//!     .build(url)?;
//! notifier.send(payload)?; // returns at once; a background thread delivers
//! let _ = notifier.flush(Duration::from_millis(50));
//! let stats = notifier.shutdown();
//! # assert_eq!(stats.delivered + stats.abandoned + stats.failed, 1);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod client;
mod error;
mod message;
mod payload;
mod queue;
mod retry;
mod throttle;
mod time;
mod url;

pub use client::{Client, ClientBuilder, HttpTransport, Receipt, Transport};
pub use error::{DeliveryError, Failure, FlushError, PayloadError, SendError, UrlError};
pub use message::{
    alert_message, alerts_message, probe_message, Alert, AlertStatus, MessageStyle, MonitorStatus,
    ProbeEvent, COLOR_MAINTENANCE, COLOR_OK, COLOR_PENDING, COLOR_PROBLEM,
};
pub use payload::{
    split_text, Attachment, Field, LongText, Payload, Priority, PriorityLevel, MAX_POST_CHARS,
};
pub use queue::{Enqueued, ErrorCallback, Notifier, NotifierBuilder, Sent, Stats};
pub use retry::{parse_retry_after, Retry, RetryPolicy};
pub use throttle::{Dedupe, Fingerprint, RateLimit};
pub use url::WebhookUrl;
