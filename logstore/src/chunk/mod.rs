//! The on-disk format: compressed blocks ([`block`]) grouped into chunk
//! files ([`file`]). The byte layout is specified in
//! `docs/format/chunks.md`.

pub(crate) mod block;
pub(crate) mod file;
pub(crate) mod filter;

/// What the index records about one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockMeta {
    /// Oldest entry timestamp (ns).
    pub min_t: i64,
    /// Newest entry timestamp (ns).
    pub max_t: i64,
    /// Number of entries.
    pub entries: u32,
    /// Bytes of lines (the "raw" size users think of).
    pub line_bytes: u64,
    /// Uncompressed block size.
    pub raw_len: u32,
}
