//! Appending records to the WAL.

use super::{
    io_err, last_checkpoint, list_segments, record_header, segment_header, segment_name, sync_dir,
    FsyncPolicy, WalError, WalOptions, MAX_RECORD_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// An open WAL, appending to its newest segment.
///
/// Opening never appends to an existing segment: it starts a fresh one
/// after the newest segment or checkpoint, so a segment written by a
/// crashed process is never extended (run [`super::replay`] first to read
/// and repair what is there).
///
/// Not synchronised: wrap it in a mutex to share it.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    file: File,
    path: PathBuf,
    index: u32,
    size: u64,
    last_sync: Instant,
    dirty: bool,
    poisoned: bool,
    buf: Vec<u8>,
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir` and starts a new segment.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal, WalError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        remove_stale_checkpoints(dir)?;
        let segs = list_segments(dir)?;
        let cp = last_checkpoint(dir)?.map(|(i, _)| i).unwrap_or(0);
        let next = segs.last().copied().unwrap_or(0).max(cp) + 1;
        let (file, path) = create_segment(dir, next)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            opts,
            file,
            path,
            index: next,
            size: SEGMENT_HEADER_LEN,
            last_sync: Instant::now(),
            dirty: false,
            poisoned: false,
            buf: Vec::new(),
        })
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Index of the segment being written.
    pub fn current_segment(&self) -> u32 {
        self.index
    }

    /// The options in effect.
    pub fn options(&self) -> &WalOptions {
        &self.opts
    }

    /// Appends one record and syncs according to the fsync policy. When this
    /// returns `Ok` under [`FsyncPolicy::Always`], the record is on stable
    /// storage.
    ///
    /// A failed write poisons the WAL: later calls return
    /// [`WalError::Poisoned`], because the segment may now end in a partial
    /// record that only recovery on reopen can cut off.
    pub fn log(&mut self, payload: &[u8]) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned { path: self.path.clone() });
        }
        if payload.len() > MAX_RECORD_LEN {
            return Err(WalError::RecordTooLarge { len: payload.len() });
        }
        let rec_len = (RECORD_HEADER_LEN + payload.len()) as u64;
        if self.size > SEGMENT_HEADER_LEN && self.size + rec_len > self.opts.segment_size {
            self.next_segment()?;
        }
        // One write call for header and payload: a crash leaves at most one
        // partial record at the tail, which recovery recognises as torn.
        self.buf.clear();
        self.buf.extend_from_slice(&record_header(payload));
        self.buf.extend_from_slice(payload);
        if let Err(e) = self.file.write_all(&self.buf) {
            self.poisoned = true;
            return Err(io_err(&self.path, e));
        }
        self.size += rec_len;
        self.dirty = true;
        let sync_now = match self.opts.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval(d) => self.last_sync.elapsed() >= d,
            FsyncPolicy::Never => false,
        };
        if sync_now {
            self.sync()?;
        }
        if self.buf.capacity() > 4 << 20 {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Forces everything written so far to stable storage.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.dirty {
            if let Err(e) = self.file.sync_data() {
                self.poisoned = true;
                return Err(io_err(&self.path, e));
            }
            self.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Closes the current segment (synced) and starts the next one. Returns
    /// the index of the closed segment: every record logged so far is in
    /// segments `<=` it.
    pub fn next_segment(&mut self) -> Result<u32, WalError> {
        self.sync()?;
        let closed = self.index;
        let (file, path) = create_segment(&self.dir, closed + 1)?;
        self.file = file;
        self.path = path;
        self.index = closed + 1;
        self.size = SEGMENT_HEADER_LEN;
        self.dirty = false;
        Ok(closed)
    }

    /// Deletes every segment with index `<= upto` (after a checkpoint
    /// covering them was written). Never deletes the current segment.
    pub fn remove_segments_upto(&mut self, upto: u32) -> Result<usize, WalError> {
        let mut n = 0;
        for i in list_segments(&self.dir)? {
            if i <= upto && i < self.index {
                let p = self.dir.join(segment_name(i));
                std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
                n += 1;
            }
        }
        if n > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(n)
    }

    /// Syncs and closes the WAL.
    pub fn close(mut self) -> Result<(), WalError> {
        self.sync()
    }
}

/// Removes `checkpoint.N.tmp` directories left by a crash while a
/// checkpoint was being written.
fn remove_stale_checkpoints(dir: &Path) -> Result<(), WalError> {
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("checkpoint.") && name.ends_with(".tmp") {
            let p = entry.path();
            std::fs::remove_dir_all(&p).map_err(|e| io_err(&p, e))?;
        }
    }
    Ok(())
}

/// Creates segment `index` holding only its header, synced with its
/// directory entry.
pub(crate) fn create_segment(dir: &Path, index: u32) -> Result<(File, PathBuf), WalError> {
    let path = dir.join(segment_name(index));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    file.write_all(&segment_header()).map_err(|e| io_err(&path, e))?;
    file.sync_all().map_err(|e| io_err(&path, e))?;
    sync_dir(dir)?;
    Ok((file, path))
}
