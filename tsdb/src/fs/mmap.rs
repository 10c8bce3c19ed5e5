//! Read-only memory maps of immutable files: the crate's only `unsafe`.

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A read-only memory map of a whole file (or an empty slice for an empty
/// file, which cannot be mapped).
///
/// Only files that are never modified after they become visible may be
/// mapped: block files (index, chunk segments) are written under a
/// temporary directory, fsynced and renamed into place, and from then on
/// only read or deleted. Deleting a mapped file is fine on Unix (the
/// mapping keeps the inode alive).
#[derive(Debug)]
pub struct Mmap {
    map: Option<memmap2::Mmap>,
    path: PathBuf,
}

impl Mmap {
    /// Maps the file at `path` read-only.
    pub fn open(path: &Path) -> io::Result<Mmap> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(Mmap { map: None, path: path.to_path_buf() });
        }
        let map = map_file(&file)?;
        Ok(Mmap { map: Some(map), path: path.to_path_buf() })
    }

    /// The path the map was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The mapped bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.map {
            Some(m) => m,
            None => &[],
        }
    }
}

impl Deref for Mmap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Mmap {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Maps `file` read-only.
///
/// # Safety
///
/// A memory map is only sound while nobody truncates or rewrites the file:
/// otherwise reads through the returned slice may observe changing bytes or
/// fault (SIGBUS). This crate maps only block files (index and chunk
/// segments), which it writes once into a `<id>.tmp` directory, fsyncs and
/// renames into place, and never opens for writing again; they are only
/// ever deleted whole, which keeps existing mappings valid. Anyone editing a
/// block directory by hand while it is open breaks this assumption.
#[allow(unsafe_code)]
fn map_file(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: see the function docs: mapped files are immutable once visible.
    unsafe { memmap2::Mmap::map(file) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_files_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        let m = Mmap::open(&p).unwrap();
        assert_eq!(&*m, b"hello");
        assert_eq!(m.path(), p);
        let e = dir.path().join("e");
        std::fs::write(&e, b"").unwrap();
        assert!(Mmap::open(&e).unwrap().is_empty());
        assert!(Mmap::open(&dir.path().join("missing")).is_err());
    }
}
