//! Memory-mapped time-series database: WAL, Gorilla chunks, blocks, index, compaction.
