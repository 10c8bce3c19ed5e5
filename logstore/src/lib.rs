//! Log store: streams in zstd-compressed chunks with a label index, WAL and retention.
