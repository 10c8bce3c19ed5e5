//! File-system helpers: read-only memory maps, durable atomic writes and
//! crash-safe directory deletion.
//!
//! Everything here follows one rule: a file or directory becomes visible
//! under its final name only once its contents are durable (written,
//! fsynced, renamed, parent directory fsynced), and disappears from its
//! final name atomically before its contents are removed.

pub mod mmap;

pub use mmap::Mmap;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An I/O error together with the operation and the path it concerned.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
#[non_exhaustive]
pub struct IoError {
    /// What was being done ("open", "write", "rename", ...).
    pub op: &'static str,
    /// The file or directory concerned.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl IoError {
    /// Wraps `source` with the operation and path.
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        IoError { op, path: path.into(), source }
    }
}

/// Extension to attach an operation and path to `io::Result`s.
pub trait IoContext<T> {
    /// Converts the error into an [`IoError`] naming `op` and `path`.
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, IoError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, IoError> {
        self.map_err(|e| IoError::new(op, path, e))
    }
}

/// Suffix of a directory that is being deleted.
pub const DELETION_SUFFIX: &str = ".tmp-for-deletion";

/// Suffix of a directory or file that is being created.
pub const TMP_SUFFIX: &str = ".tmp";

/// Fsyncs a directory, making renames and creations inside it durable.
pub fn fsync_dir(dir: &Path) -> Result<(), IoError> {
    let f = File::open(dir).ctx("open directory", dir)?;
    f.sync_all().ctx("fsync directory", dir)
}

/// Writes `data` to `path` atomically: to `<path>.tmp` first, fsynced,
/// then renamed over `path`, then the parent directory is fsynced.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), IoError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .ctx("create", &tmp)?;
        f.write_all(data).ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)?;
    }
    fs::rename(&tmp, path).ctx("rename into place", path)?;
    if let Some(parent) = path.parent() {
        fsync_dir(if parent.as_os_str().is_empty() { Path::new(".") } else { parent })?;
    }
    Ok(())
}

/// Renames `from` to `to` and fsyncs the parent directory of `to`.
pub fn rename_durable(from: &Path, to: &Path) -> Result<(), IoError> {
    fs::rename(from, to).ctx("rename into place", to)?;
    if let Some(parent) = to.parent() {
        fsync_dir(if parent.as_os_str().is_empty() { Path::new(".") } else { parent })?;
    }
    Ok(())
}

/// Deletes a directory tree crash-safely: it is first renamed to
/// `<dir>.tmp-for-deletion` (atomic, so a crash never leaves a half-deleted
/// directory under its real name), then removed. Leftover
/// `*.tmp-for-deletion` directories are cleaned by [`remove_tmp_dirs`].
pub fn remove_dir_atomic(dir: &Path) -> Result<(), IoError> {
    let mut del = dir.as_os_str().to_owned();
    del.push(DELETION_SUFFIX);
    let del = PathBuf::from(del);
    if del.exists() {
        fs::remove_dir_all(&del).ctx("remove", &del)?;
    }
    fs::rename(dir, &del).ctx("rename for deletion", dir)?;
    if let Some(parent) = dir.parent() {
        fsync_dir(if parent.as_os_str().is_empty() { Path::new(".") } else { parent })?;
    }
    fs::remove_dir_all(&del).ctx("remove", &del)
}

/// Removes every `*.tmp` and `*.tmp-for-deletion` entry directly inside
/// `parent` (leftovers of interrupted block writes and deletions). Returns
/// the removed paths.
pub fn remove_tmp_dirs(parent: &Path) -> Result<Vec<PathBuf>, IoError> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(parent).ctx("read directory", parent)? {
        let entry = entry.ctx("read directory", parent)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(TMP_SUFFIX) || name.ends_with(DELETION_SUFFIX) {
            let p = entry.path();
            if p.is_dir() {
                fs::remove_dir_all(&p).ctx("remove", &p)?;
            } else {
                fs::remove_file(&p).ctx("remove", &p)?;
            }
            removed.push(p);
        }
    }
    Ok(removed)
}

/// Total size in bytes of the regular files under `dir` (recursively,
/// with an explicit stack).
pub fn dir_size(dir: &Path) -> Result<u64, IoError> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).ctx("read directory", &d)? {
            let entry = entry.ctx("read directory", &d)?;
            let ft = entry.file_type().ctx("stat", &entry.path())?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                total += entry.metadata().ctx("stat", &entry.path())?.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta.json");
        write_atomic(&p, b"{}").unwrap();
        write_atomic(&p, b"{\"a\":1}").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"{\"a\":1}");
        assert!(!dir.path().join("meta.json.tmp").exists());

        let b = dir.path().join("block");
        fs::create_dir_all(b.join("chunks")).unwrap();
        fs::write(b.join("chunks/000001"), b"x").unwrap();
        assert_eq!(dir_size(dir.path()).unwrap(), 8);
        remove_dir_atomic(&b).unwrap();
        assert!(!b.exists());
        assert!(!dir.path().join("block.tmp-for-deletion").exists());
        let e = remove_dir_atomic(&b).unwrap_err();
        assert!(e.to_string().contains("block"), "{e}");
    }

    #[test]
    fn removes_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("01ABC.tmp")).unwrap();
        fs::create_dir(dir.path().join("01ABD.tmp-for-deletion")).unwrap();
        fs::create_dir(dir.path().join("01ABE")).unwrap();
        let removed = remove_tmp_dirs(dir.path()).unwrap();
        assert_eq!(removed.len(), 2);
        assert!(dir.path().join("01ABE").exists());
    }
}
