//! Full head chunks on disk (`<data>/chunks_head/NNNNNN`), so that memory
//! holds only each series' open chunk.
//!
//! Files are append-only. The file being written is read with positioned
//! reads; once it reaches its size limit it is sealed and memory-mapped.
//! The files are a cache of the WAL: they are not fsynced, and on open the
//! directory is cleared and rebuilt by WAL replay. The layout is in
//! `docs/format/wal.md` ("Head chunks").

use crate::fs::Mmap;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Magic bytes opening a head chunk file.
const MAGIC: [u8; 4] = *b"THCK";
const VERSION: u8 = 1;
const FILE_HEADER_LEN: u64 = 8;
/// Per-chunk header: series ref u64, mint i64, maxt i64, len u32 (all BE).
const CHUNK_HEADER_LEN: usize = 28;
/// Default size at which a file is sealed.
pub(crate) const DEFAULT_FILE_SIZE: u64 = 32 << 20;

/// Where a chunk lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkLoc {
    pub file: u32,
    /// Offset of the chunk data (after its header).
    pub offset: u64,
    pub len: u32,
}

/// The bytes of one chunk, borrowed from a map or copied from a file.
#[derive(Clone, Debug)]
pub(crate) enum ChunkBytes {
    Mapped(Arc<Mmap>, usize, usize),
    Owned(Vec<u8>),
}

impl ChunkBytes {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            ChunkBytes::Mapped(m, a, b) => &m.as_slice()[*a..*b],
            ChunkBytes::Owned(v) => v,
        }
    }
}

#[derive(Debug)]
struct DiskFile {
    file: Arc<File>,
    map: Option<Arc<Mmap>>,
    path: PathBuf,
    /// Newest sample time of any chunk in the file.
    maxt: i64,
}

/// Head chunk files.
#[derive(Debug)]
pub(crate) struct HeadChunks {
    dir: PathBuf,
    files: BTreeMap<u32, DiskFile>,
    active: u32,
    size: u64,
    max_file_size: u64,
    buf: Vec<u8>,
}

impl HeadChunks {
    /// Clears `dir` and starts file 1.
    pub fn create(dir: &Path, max_file_size: u64) -> std::io::Result<HeadChunks> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        let mut hc = HeadChunks {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
            active: 0,
            size: 0,
            max_file_size: max_file_size.max(FILE_HEADER_LEN + 1024),
            buf: Vec::new(),
        };
        hc.start_file(1)?;
        Ok(hc)
    }

    fn path_of(&self, i: u32) -> PathBuf {
        self.dir.join(format!("{i:06}"))
    }

    fn start_file(&mut self, i: u32) -> std::io::Result<()> {
        let path = self.path_of(i);
        let mut f = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path)?;
        let mut h = [0u8; FILE_HEADER_LEN as usize];
        h[0..4].copy_from_slice(&MAGIC);
        h[4] = VERSION;
        f.write_all(&h)?;
        self.files.insert(i, DiskFile { file: Arc::new(f), map: None, path, maxt: i64::MIN });
        self.active = i;
        self.size = FILE_HEADER_LEN;
        Ok(())
    }

    /// Appends a full chunk and returns where its data is.
    pub fn write(&mut self, series_ref: u64, mint: i64, maxt: i64, data: &[u8]) -> std::io::Result<ChunkLoc> {
        let need = (CHUNK_HEADER_LEN + data.len() + 4) as u64;
        if self.size + need > self.max_file_size && self.size > FILE_HEADER_LEN {
            self.seal_active()?;
        }
        self.buf.clear();
        self.buf.extend_from_slice(&series_ref.to_be_bytes());
        self.buf.extend_from_slice(&mint.to_be_bytes());
        self.buf.extend_from_slice(&maxt.to_be_bytes());
        self.buf.extend_from_slice(&(data.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(data);
        let crc = crate::encoding::crc32(&self.buf);
        self.buf.extend_from_slice(&crc.to_be_bytes());
        let Some(f) = self.files.get_mut(&self.active) else {
            return Err(std::io::Error::other("head chunk file missing"));
        };
        (&*f.file).write_all(&self.buf)?;
        f.maxt = f.maxt.max(maxt);
        let loc = ChunkLoc {
            file: self.active,
            offset: self.size + CHUNK_HEADER_LEN as u64,
            len: data.len() as u32,
        };
        self.size += need;
        Ok(loc)
    }

    fn seal_active(&mut self) -> std::io::Result<()> {
        let next = self.active + 1;
        if let Some(f) = self.files.get_mut(&self.active) {
            // The file is never written again: safe to map (see fs::Mmap).
            f.map = Some(Arc::new(Mmap::open(&f.path)?));
        }
        self.start_file(next)
    }

    /// A handle to read the chunk at `loc` without holding the lock.
    pub fn reader(&self, loc: ChunkLoc) -> std::io::Result<ChunkSource> {
        let f = self.files.get(&loc.file).ok_or_else(|| {
            std::io::Error::other(format!("head chunk file {:06} was removed", loc.file))
        })?;
        Ok(match &f.map {
            Some(m) => ChunkSource::Mapped(m.clone(), loc),
            None => ChunkSource::File(f.file.clone(), f.path.clone(), loc),
        })
    }

    /// Removes sealed files whose chunks all end before `mint`.
    pub fn truncate_before(&mut self, mint: i64) {
        let dead: Vec<u32> = self
            .files
            .iter()
            .filter(|(i, f)| **i != self.active && f.maxt < mint)
            .map(|(i, _)| *i)
            .collect();
        for i in dead {
            if let Some(f) = self.files.remove(&i) {
                // Readers holding the map or file keep the inode alive.
                let _ = std::fs::remove_file(&f.path);
            }
        }
    }

    /// Bytes on disk.
    pub fn disk_size(&self) -> u64 {
        self.files
            .iter()
            .map(|(i, f)| {
                if *i == self.active {
                    self.size
                } else {
                    f.map.as_ref().map_or(0, |m| m.len() as u64)
                }
            })
            .sum()
    }
}

/// A chunk to be read, detached from the [`HeadChunks`] lock.
#[derive(Clone, Debug)]
pub(crate) enum ChunkSource {
    Mapped(Arc<Mmap>, ChunkLoc),
    File(Arc<File>, PathBuf, ChunkLoc),
}

impl ChunkSource {
    /// The chunk's bytes (checked against the map's bounds).
    pub fn load(&self) -> Result<ChunkBytes, model::StorageError> {
        match self {
            ChunkSource::Mapped(m, loc) => {
                let a = loc.offset as usize;
                let b = a + loc.len as usize;
                if b > m.len() {
                    return Err(model::StorageError::Corrupt(format!(
                        "head chunk at {}:{} extends past the end of the file",
                        m.path().display(),
                        loc.offset
                    )));
                }
                Ok(ChunkBytes::Mapped(m.clone(), a, b))
            }
            ChunkSource::File(f, path, loc) => {
                let mut v = vec![0u8; loc.len as usize];
                f.read_exact_at(&mut v, loc.offset).map_err(|e| {
                    model::StorageError::read(format!("head chunk {}:{}", path.display(), loc.offset), e)
                })?;
                Ok(ChunkBytes::Owned(v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_seal_read_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let mut hc = HeadChunks::create(dir.path(), 2048).unwrap();
        let mut locs = Vec::new();
        for i in 0..100u64 {
            let data = vec![i as u8; 40];
            locs.push(hc.write(i, i as i64 * 10, i as i64 * 10 + 9, &data).unwrap());
        }
        assert!(hc.files.len() > 2);
        for (i, loc) in locs.iter().enumerate() {
            let b = hc.reader(*loc).unwrap().load().unwrap();
            assert_eq!(b.as_slice(), &vec![i as u8; 40][..]);
        }
        let before = hc.files.len();
        hc.truncate_before(500);
        assert!(hc.files.len() < before);
        assert!(hc.reader(locs[0]).is_err());
        let last = *locs.last().unwrap();
        assert_eq!(hc.reader(last).unwrap().load().unwrap().as_slice()[0], 99);
    }
}
