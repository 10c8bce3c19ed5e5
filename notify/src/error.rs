//! Error types, one per operation: parsing a URL, checking a payload, one delivery attempt,
//! a whole delivery, handing a notification over, waiting for the queue.
//!
//! None of them carries a webhook URL other than in its redacted form, and none wraps an HTTP
//! library error as a `source`, because those print the full URL.

use std::fmt;
use std::time::Duration;

/// Why a string is not a usable webhook URL. Never contains the URL's key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The string was empty or only whitespace.
    #[error("webhook URL is empty")]
    Empty,
    /// Longer than we accept.
    #[error("webhook URL is {len} bytes long, more than the {max} accepted")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
        /// Largest accepted length.
        max: usize,
    },
    /// No `scheme://` prefix.
    #[error("webhook URL {url} has no scheme: expected https://host/hooks/<key>")]
    MissingScheme {
        /// The first few characters of the input, the rest masked.
        url: String,
    },
    /// A scheme other than http or https.
    #[error("webhook URL scheme {scheme:?} is not supported: use http or https")]
    UnsupportedScheme {
        /// The scheme found.
        scheme: String,
    },
    /// Nothing between `://` and the path.
    #[error("webhook URL has no host")]
    MissingHost,
    /// Whitespace or a control character inside the URL.
    #[error("webhook URL contains whitespace or a control character at byte {position}")]
    InvalidCharacter {
        /// Byte offset in the trimmed input.
        position: usize,
    },
}

/// Why a payload cannot be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Mattermost answers 400 to a webhook without text and without attachments.
    #[error("payload has neither text nor attachments: Mattermost requires one of them")]
    Empty,
    /// Serialising to JSON failed.
    #[error("cannot encode payload as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

/// How one delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The server answered with a status outside 2xx.
    Status {
        /// HTTP status code.
        status: u16,
        /// Mattermost's error message (the `message` of its JSON error body, else the body
        /// itself), shortened and with the webhook URL masked.
        message: String,
        /// The delay the server asked for in `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// No complete answer within the timeout.
    Timeout,
    /// Connecting, sending or reading failed (refused, reset, DNS, TLS ...). Worth retrying.
    Connection {
        /// What went wrong, with the webhook URL masked.
        message: String,
    },
    /// The request could not be made at all (e.g. a URL the HTTP library rejects). Not retried.
    Request {
        /// What went wrong, with the webhook URL masked.
        message: String,
    },
}

impl Failure {
    /// Whether another attempt may succeed: 5xx, 408, 429, timeouts and connection errors.
    /// Other 4xx (a bad payload, a deleted hook) will fail the same way every time.
    pub fn is_retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            Failure::Timeout | Failure::Connection { .. } => true,
            Failure::Request { .. } => false,
        }
    }

    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status {
                status, message, ..
            } => {
                write!(f, "HTTP {status}")?;
                if let Some(reason) = reason_phrase(*status) {
                    write!(f, " {reason}")?;
                }
                if message.is_empty() {
                    f.write_str(" (empty body)")
                } else {
                    write!(f, ": {message}")
                }
            }
            Failure::Timeout => f.write_str("timed out waiting for Mattermost"),
            Failure::Connection { message } => write!(f, "connection failed: {message}"),
            Failure::Request { message } => write!(f, "request failed: {message}"),
        }
    }
}

/// Why a notification was not delivered. `url` fields are always redacted.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// Mattermost refused the notification with a status that retrying cannot fix (a 4xx other
    /// than 408/429, or a redirect).
    #[error("Mattermost rejected the notification to {url}: {failure}")]
    Rejected {
        /// The redacted webhook URL.
        url: String,
        /// The refusal; always [`Failure::Status`].
        failure: Failure,
    },
    /// Every allowed attempt failed.
    #[error("gave up delivering to {url} after {attempts} attempts; last error: {last}")]
    GaveUp {
        /// The redacted webhook URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's failure.
        last: Failure,
    },
    /// The request could not be made; see [`Failure::Request`].
    #[error("cannot deliver to {url}: {failure}")]
    Unsendable {
        /// The redacted webhook URL.
        url: String,
        /// What went wrong.
        failure: Failure,
    },
    /// The [`Notifier`](crate::Notifier) shut down before the notification got through.
    #[error("notification to {url} abandoned at shutdown after {attempts} attempts{}",
        last.as_ref().map(|l| format!("; last error: {l}")).unwrap_or_default())]
    Abandoned {
        /// The redacted webhook URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's failure, if there was an attempt.
        last: Option<Failure>,
    },
}

impl DeliveryError {
    /// The HTTP status of the refusal or of the last failed attempt, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            DeliveryError::Rejected { failure, .. } | DeliveryError::Unsendable { failure, .. } => {
                failure.status()
            }
            DeliveryError::GaveUp { last, .. } => last.status(),
            DeliveryError::Abandoned { last, .. } => last.as_ref().and_then(Failure::status),
        }
    }
}

/// Why a notification could not be sent or queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The payload is not acceptable to Mattermost.
    #[error(transparent)]
    InvalidPayload(#[from] PayloadError),
    /// The queue has no room; the notification was not queued. It is returned here.
    #[error("notification queue is full ({queued} of {capacity} posts waiting; this notification needs {needed})")]
    QueueFull {
        /// Queue capacity in posts.
        capacity: usize,
        /// Posts waiting now.
        queued: usize,
        /// Posts this notification needs (more than one when its text is split).
        needed: usize,
        /// The notification that was not queued.
        payload: Box<crate::Payload>,
    },
    /// The notifier is shutting down or its worker thread has stopped.
    #[error("notifier is closed; notification not sent")]
    Closed,
    /// A synchronous delivery failed.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

/// Why [`Notifier::flush`](crate::Notifier::flush) returned before the queue was empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// Time ran out.
    #[error("flush timed out after {waited:?} with {pending} posts still pending")]
    Timeout {
        /// Posts queued or in flight.
        pending: usize,
        /// How long we waited.
        waited: Duration,
    },
    /// The worker thread stopped unexpectedly (a bug), so the queue will not drain.
    #[error("notifier worker has stopped with {pending} posts still queued")]
    WorkerStopped {
        /// Posts left in the queue.
        pending: usize,
    },
}

/// Standard reason phrases for statuses a webhook endpoint or a proxy in front of it returns.
pub(crate) fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_display_names_status_and_message() {
        let f = Failure::Status {
            status: 400,
            message: "No text specified.".into(),
            retry_after: None,
        };
        assert_eq!(f.to_string(), "HTTP 400 Bad Request: No text specified.");
        assert!(!f.is_retryable());
        let f = Failure::Status {
            status: 599,
            message: String::new(),
            retry_after: None,
        };
        assert_eq!(f.to_string(), "HTTP 599 (empty body)");
        assert!(f.is_retryable());
        assert!(Failure::Status {
            status: 429,
            message: String::new(),
            retry_after: None
        }
        .is_retryable());
        assert!(Failure::Timeout.is_retryable());
        assert!(!Failure::Request {
            message: "x".into()
        }
        .is_retryable());
    }

    #[test]
    fn abandoned_display_with_and_without_attempts() {
        let e = DeliveryError::Abandoned {
            url: "https://h/hooks/***".into(),
            attempts: 0,
            last: None,
        };
        assert_eq!(
            e.to_string(),
            "notification to https://h/hooks/*** abandoned at shutdown after 0 attempts"
        );
        let e = DeliveryError::Abandoned {
            url: "u".into(),
            attempts: 2,
            last: Some(Failure::Timeout),
        };
        assert!(e
            .to_string()
            .ends_with("; last error: timed out waiting for Mattermost"));
        assert_eq!(e.status(), None);
    }
}
