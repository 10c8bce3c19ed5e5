//! Memory-mapped time-series database: WAL with CRC32, Gorilla-compressed
//! chunks, immutable memory-mapped blocks, an inverted label index,
//! compaction and retention.
//!
//! A [`Db`] is a directory: appends go through an [`Appender`] whose
//! commit is written to the WAL (synced per [`FsyncPolicy`]) before it is
//! visible; the head keeps recent data (open chunks in memory, full chunks
//! mapped from disk) and is persisted into 2h [`Block`]s, which are merged
//! and expired in the background or by [`Db::compact`]. Reads go through
//! [`model::Queryable`], merging blocks and head. Samples may carry start
//! timestamps ([`Appender::append_with_start`]), kept through the WAL,
//! blocks and compaction and read back with
//! [`model::SampleIter::start_timestamp`]. See `ARCHITECTURE.md`.
//!
//! ```
//! use model::{collect_range, Labels, Matcher, Queryable, SelectHints};
//! use tsdb::{Db, Options};
//! # let dir = tempfile::tempdir()?;
//! let db = Db::open(dir.path(), Options::builder().retention_time(None).build())?;
//! let mut app = db.appender();
//! let series = Labels::from_pairs([("__name__", "temp"), ("room", "kitchen")]);
//! for i in 0..10 {
//!     app.append(&series, i * 60_000, 20.0 + i as f64 / 10.0)?;
//! }
//! app.commit()?;
//! db.flush_head()?; // persist to a block now instead of waiting
//! let q = db.querier(0, 3_600_000)?;
//! let mut found = q.select(&SelectHints::range(0, 3_600_000), &[Matcher::equal("room", "kitchen")])?;
//! assert_eq!(collect_range(found[0].samples.as_mut(), 0, 3_600_000)?.len(), 10);
//! assert_eq!(db.stats().blocks.len(), 1);
//! # drop(found); drop(q);
//! # db.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod encoding;
pub mod fs;
pub mod chunkenc;
pub mod chunks;
pub mod index;
pub mod block;
pub mod compact;
pub mod wal;
pub mod record;
pub mod head;
pub mod db;
pub mod error;
pub mod options;
pub mod import;
pub mod querier;
#[cfg(feature = "remote-write")]
pub mod remote;

pub use db::{BlockInfo, CompactStats, Db, DbStats};
pub use error::{AppendError, CommitError, CompactError, OpenError};
pub use head::append::{Appender, CommitStats, SeriesRef};
pub use head::replay::ReplayStats;
pub use options::{Options, OptionsBuilder};
pub use wal::{FsyncPolicy, RepairReport, WalError};
pub use block::{Block, BlockMeta, BlockQuerier, BlockWriter};
