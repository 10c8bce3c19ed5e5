//! Loki push request bodies: the decoder and encoder live in
//! [`logql::push`] (so the ingest benchmark measures the same code); this
//! module re-exports them under their historical path for the log server
//! and the agent.
//!
//! ```
//! use examples::log_server::push::{decode_push, encode_json, PushStream};
//! use model::{Labels, LogEntry};
//! let streams = vec![PushStream {
//!     labels: Labels::from_pairs([("job", "app")]),
//!     entries: vec![LogEntry::new(1_700_000_000_000_000_000, "hello")],
//! }];
//! let back = decode_push(Some("application/json"), &encode_json(&streams), 1 << 20).unwrap();
//! assert_eq!(back, streams);
//! ```

pub use logql::push::*;
