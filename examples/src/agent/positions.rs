//! The positions file: how far each file has been delivered, and the batch
//! in flight.
//!
//! YAML, written atomically (temporary file, fsync, rename, fsync of the
//! directory), so a crash leaves either the old or the new contents:
//!
//! ```yaml
//! files:
//!   - path: /var/log/app.log      # where the file was found (its `filename` label)
//!     dev: 2049
//!     ino: 131
//!     offset: 5120                # bytes acknowledged by every client
//!     next_ts: 1700000000000000042
//!     labels: {filename: /var/log/app.log, job: varlogs}
//! pending:                        # the batch being pushed (absent when none)
//!   - {path: ..., dev: 2049, ino: 131, start: 5120, end: 6144, first_ts: ..., lines: 12, partial_tail: false, labels: {...}}
//! ```
//!
//! `pending` is written before a batch is pushed and cleared (with the
//! offsets advanced) after every client acknowledged it. After a crash the
//! agent re-reads exactly those byte ranges, gives the lines the same
//! timestamps and pushes them again: a receiver that had stored them drops
//! the copies as duplicates (same stream, timestamp and line, as Loki
//! does), one that had not stores them now.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the positions file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PositionsError {
    /// I/O on the file (or its temporary file or directory).
    #[error("positions file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid YAML of this shape.
    #[error("positions file {path} is malformed: {msg}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong (with line and column).
        msg: String,
    },
}

/// One file's delivered position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    /// Path it was found at.
    pub path: PathBuf,
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Bytes acknowledged.
    pub offset: u64,
    /// Next timestamp to give a line (ns).
    pub next_ts: i64,
    /// Its stream labels.
    pub labels: BTreeMap<String, String>,
}

/// A byte range of one file in the batch in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Path it was found at.
    pub path: PathBuf,
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// First byte.
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
    /// Timestamp of the first line; line `i` has `first_ts + i`.
    pub first_ts: i64,
    /// Number of lines.
    pub lines: u64,
    /// Whether the range ends with a line without a newline (the end of a
    /// rotated file).
    pub partial_tail: bool,
    /// Stream labels.
    pub labels: BTreeMap<String, String>,
}

/// The file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Positions {
    /// Delivered positions.
    #[serde(default)]
    pub files: Vec<FilePosition>,
    /// The batch in flight, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Segment>,
}

impl Positions {
    /// Reads `path`; a missing file is empty positions.
    pub fn load(path: &Path) -> Result<Positions, PositionsError> {
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => Ok(Positions::default()),
            Ok(text) => serde_yaml::from_str(&text).map_err(|e| PositionsError::Malformed { path: path.to_path_buf(), msg: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Positions::default()),
            Err(source) => Err(PositionsError::Io { path: path.to_path_buf(), source }),
        }
    }

    /// Writes `path` atomically: temporary file, fsync, rename, fsync of
    /// the directory.
    pub fn save(&self, path: &Path) -> Result<(), PositionsError> {
        let io = |source| PositionsError::Io { path: path.to_path_buf(), source };
        let text = serde_yaml::to_string(self).map_err(|e| PositionsError::Malformed { path: path.to_path_buf(), msg: e.to_string() })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut tmp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "positions".into());
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        // Persist the rename itself.
        std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/pos.yaml");
        assert_eq!(Positions::load(&p).unwrap(), Positions::default());
        let pos = Positions {
            files: vec![FilePosition { path: "/a".into(), dev: 1, ino: 2, offset: 3, next_ts: 4, labels: BTreeMap::from([("job".into(), "x".into())]) }],
            pending: vec![Segment { path: "/a".into(), dev: 1, ino: 2, start: 3, end: 9, first_ts: 4, lines: 2, partial_tail: false, labels: BTreeMap::new() }],
        };
        pos.save(&p).unwrap();
        assert_eq!(Positions::load(&p).unwrap(), pos);
        assert!(!dir.path().join("sub/pos.yaml.tmp").exists());
        std::fs::write(&p, "files: [ {path: 1").unwrap();
        let e = Positions::load(&p).unwrap_err();
        assert!(e.to_string().contains("is malformed"), "{e}");
    }
}
