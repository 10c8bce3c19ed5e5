//! A log store: streams of log entries identified by label sets, kept in
//! zstd-compressed, checksummed blocks inside memory-mapped chunk files,
//! with a write-ahead log for the head, a label index, an out-of-order
//! window, limits and retention.
//!
//! - [`Store::push`] validates entries (line size, labels, stream count,
//!   out-of-order window, duplicates), writes the accepted ones to the WAL
//!   in one record and adds them to per-stream head blocks;
//! - heads are cut into blocks of about [`Options::block_size`] bytes,
//!   compressed, and written to chunk files by [`Store::flush`] (also run
//!   by a background thread and on [`Store::close`]);
//! - queries go through [`model::LogQueryable`]: streams are picked with
//!   label postings, blocks outside the time range are skipped by their
//!   min/max timestamps, and entries are lent from a reused buffer;
//!   with `LogQuerier::select_with_hints`, literals that lines must contain
//!   are searched for block-wide, and blocks whose trigram filter rules
//!   them out are not even decompressed.
//!
//! The WAL is `tsdb::wal` (framing, checksums, torn-tail repair) carrying
//! this crate's records; the file formats are specified in
//! `docs/format/chunks.md`.
//!
//! ```
//! use logstore::{Options, Store};
//! use model::{Direction, Labels, LogEntry, LogQueryable, Matcher};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), Options::builder().flush_interval(None).build())?;
//! let app = Labels::from_pairs([("job", "app")]);
//! let out = store.push(&[(app.clone(), vec![LogEntry::new(1, "started"), LogEntry::new(2, "queue full")])])?;
//! assert_eq!(out.accepted, 2);
//! store.flush()?;
//!
//! let querier = store.log_querier()?;
//! let mut streams = querier.select(&[Matcher::equal("job", "app")], 0, 10, Direction::Forward)?;
//! let mut lines = Vec::new();
//! while let Some(e) = streams[0].entries.next()? {
//!     lines.push(e.line.to_string());
//! }
//! assert_eq!(lines, ["started", "queue full"]);
//! drop(streams);
//! drop(querier);
//! store.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod chunk;
mod error;
mod head;
mod options;
mod querier;
mod record;
mod search;
mod store;
mod streams;

pub use error::{
    ChunkError, CloseError, FlushError, OpenError, PushError, RejectReason, Rejection,
    RetentionError,
};
pub use options::{
    Options, OptionsBuilder, DEFAULT_BLOCK_FILTER_MIN_SIZE, DEFAULT_BLOCK_SIZE,
    DEFAULT_MAX_CHUNK_AGE, DEFAULT_MAX_LABELS_PER_STREAM, DEFAULT_MAX_LINE_SIZE,
    DEFAULT_MAX_STREAMS, DEFAULT_WAL_SEGMENT_SIZE, DEFAULT_ZSTD_LEVEL,
};
pub use store::{FlushStats, OpenReport, PushOutcome, RetentionStats, Store, StoreStats};
pub use tsdb::wal::{FsyncPolicy, RepairReport};
