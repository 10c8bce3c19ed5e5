//! Chunk segment files: the `chunks/` directory of a block.
//!
//! A block stores its chunks in numbered segment files `000001`,
//! `000002`, ... of at most [`DEFAULT_SEGMENT_SIZE`] bytes each. A segment
//! starts with an 8-byte header (magic `0x85BD40DD`, version 1, three zero
//! bytes), followed by chunks laid out as
//! `len uvarint | encoding u8 | data (len bytes) | crc32c(encoding, data) u32 BE`.
//! A chunk is addressed by a [`ChunkRef`]: the segment index (file number
//! minus one) in the high 32 bits and the chunk's byte offset in the low 32
//! bits, as in Prometheus. See `docs/format/chunks.md`.

use crate::encoding::{crc32_append, put_uvarint, uvarint};
use crate::fs::{IoContext, IoError, Mmap};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Magic number at the start of every chunk segment file.
pub const MAGIC_CHUNKS: u32 = 0x85BD_40DD;
/// Segment format version written by this crate.
pub const CHUNKS_FORMAT_V1: u8 = 1;
/// Bytes of the segment header.
pub const SEGMENT_HEADER_SIZE: usize = 8;
/// Largest segment size the writer produces (unless one chunk is larger).
pub const DEFAULT_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;

/// Reference to a chunk: `segment index << 32 | byte offset`.
pub type ChunkRef = u64;

/// Builds a [`ChunkRef`] from a segment index and an offset.
pub fn chunk_ref(segment: u32, offset: u32) -> ChunkRef {
    (u64::from(segment) << 32) | u64::from(offset)
}

/// Splits a [`ChunkRef`] into segment index and offset.
pub fn split_ref(r: ChunkRef) -> (u32, u32) {
    ((r >> 32) as u32, r as u32)
}

/// File name of the segment with index `i` (`000001` for index 0).
pub fn segment_name(i: u32) -> String {
    format!("{:06}", u64::from(i) + 1)
}

/// Errors writing or reading chunk segments.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunksError {
    /// An I/O failure, naming the file.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A segment or chunk is corrupt.
    #[error("corrupt chunk data in {} at offset {offset}: {detail}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset within the file.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A chunk reference points to no segment or past its end.
    #[error("invalid chunk reference {reference:#x}: {detail}")]
    BadRef {
        /// The reference.
        reference: ChunkRef,
        /// What is wrong.
        detail: String,
    },
    /// The chunk is too large to be stored (more than 4 GiB).
    #[error("chunk of {0} bytes is too large")]
    TooLarge(usize),
}

/// A chunk as read from a segment: its encoding byte and data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkBytes<'a> {
    /// The encoding byte (see [`crate::chunkenc::Encoding`]).
    pub encoding: u8,
    /// The encoded chunk.
    pub data: &'a [u8],
}

/// Writes chunks into numbered segment files in one directory.
///
/// Chunks are buffered; [`ChunkWriter::finish`] flushes and fsyncs every
/// segment. Dropping a writer without `finish` leaves partial files (the
/// block writer works in a temporary directory, so they are never seen).
#[derive(Debug)]
pub struct ChunkWriter {
    dir: PathBuf,
    segment_size: u64,
    cur: Option<(BufWriter<File>, PathBuf)>,
    seq: u32,
    offset: u64,
    finished: Vec<PathBuf>,
    scratch: Vec<u8>,
    bytes_written: u64,
}

impl ChunkWriter {
    /// A writer creating segments in `dir` (created if missing).
    pub fn new(dir: &Path) -> Result<Self, ChunksError> {
        Self::with_segment_size(dir, DEFAULT_SEGMENT_SIZE)
    }

    /// A writer with a custom maximum segment size (tests use small ones).
    pub fn with_segment_size(dir: &Path, segment_size: u64) -> Result<Self, ChunksError> {
        std::fs::create_dir_all(dir).ctx("create directory", dir)?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            segment_size: segment_size.clamp(SEGMENT_HEADER_SIZE as u64 + 1, u64::from(u32::MAX)),
            cur: None,
            seq: 0,
            offset: 0,
            finished: Vec::new(),
            scratch: Vec::with_capacity(16),
            bytes_written: 0,
        })
    }

    fn cut(&mut self) -> Result<(), ChunksError> {
        self.close_current()?;
        let seq = if self.cur.is_none() && self.finished.is_empty() { 0 } else { self.seq + 1 };
        let path = self.dir.join(segment_name(seq));
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .ctx("create chunk segment", &path)?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut hdr = [0u8; SEGMENT_HEADER_SIZE];
        hdr[..4].copy_from_slice(&MAGIC_CHUNKS.to_be_bytes());
        hdr[4] = CHUNKS_FORMAT_V1;
        w.write_all(&hdr).ctx("write", &path)?;
        self.seq = seq;
        self.offset = SEGMENT_HEADER_SIZE as u64;
        self.bytes_written += SEGMENT_HEADER_SIZE as u64;
        self.cur = Some((w, path));
        Ok(())
    }

    fn close_current(&mut self) -> Result<(), ChunksError> {
        if let Some((w, path)) = self.cur.take() {
            let f = w.into_inner().map_err(|e| IoError::new("flush", &path, e.into_error()))?;
            f.sync_all().ctx("fsync", &path)?;
            self.finished.push(path);
        }
        Ok(())
    }

    /// Appends one chunk and returns its reference.
    pub fn write_chunk(&mut self, encoding: u8, data: &[u8]) -> Result<ChunkRef, ChunksError> {
        if data.len() > u32::MAX as usize / 2 {
            return Err(ChunksError::TooLarge(data.len()));
        }
        self.scratch.clear();
        put_uvarint(&mut self.scratch, data.len() as u64);
        let total = (self.scratch.len() + 1 + data.len() + 4) as u64;
        let need_cut = match &self.cur {
            None => true,
            Some(_) => {
                self.offset > SEGMENT_HEADER_SIZE as u64 && self.offset + total > self.segment_size
            }
        };
        if need_cut {
            self.cut()?;
        }
        let r = chunk_ref(self.seq, self.offset as u32);
        let crc = crc32_append(crc32_append(0, &[encoding]), data);
        let Some((w, path)) = self.cur.as_mut() else {
            // cut() always leaves a current segment.
            return Err(ChunksError::BadRef { reference: r, detail: "no open segment".into() });
        };
        let io = (|| {
            w.write_all(&self.scratch)?;
            w.write_all(&[encoding])?;
            w.write_all(data)?;
            w.write_all(&crc.to_be_bytes())
        })();
        io.ctx("write", path)?;
        self.offset += total;
        self.bytes_written += total;
        Ok(r)
    }

    /// Total bytes written so far (headers included).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Flushes and fsyncs all segments; returns their paths.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, ChunksError> {
        self.close_current()?;
        Ok(std::mem::take(&mut self.finished))
    }
}

/// Reads chunks from the memory-mapped segments of one directory.
#[derive(Debug)]
pub struct ChunkReader {
    segments: Vec<Mmap>,
    size: u64,
}

impl ChunkReader {
    /// Maps every segment (`000001`, `000002`, ... consecutively) in
    /// `dir` and validates their headers.
    pub fn open(dir: &Path) -> Result<Self, ChunksError> {
        let mut names: Vec<(u32, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(dir).ctx("read directory", dir)? {
            let entry = entry.ctx("read directory", dir)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.len() == 6 && name.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(n) = name.parse::<u32>() {
                    names.push((n, entry.path()));
                }
            }
        }
        names.sort();
        let mut segments = Vec::with_capacity(names.len());
        let mut size = 0;
        for (i, (n, path)) in names.into_iter().enumerate() {
            if n as usize != i + 1 {
                return Err(ChunksError::Corrupt {
                    path,
                    offset: 0,
                    detail: format!(
                        "segment sequence has a gap: expected {}",
                        segment_name(i as u32)
                    ),
                });
            }
            let m = Mmap::open(&path).ctx("mmap", &path)?;
            let bad =
                |detail: String| ChunksError::Corrupt { path: path.clone(), offset: 0, detail };
            if m.len() < SEGMENT_HEADER_SIZE {
                return Err(bad(format!("file of {} bytes is shorter than its header", m.len())));
            }
            let magic = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
            if magic != MAGIC_CHUNKS {
                return Err(bad(format!("bad magic {magic:#010x}")));
            }
            if m[4] != CHUNKS_FORMAT_V1 {
                return Err(bad(format!("unsupported version {}", m[4])));
            }
            size += m.len() as u64;
            segments.push(m);
        }
        Ok(ChunkReader { segments, size })
    }

    /// Total bytes of all segments.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of segment files.
    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }

    /// The chunk at `r`, with its CRC verified.
    pub fn chunk(&self, r: ChunkRef) -> Result<ChunkBytes<'_>, ChunksError> {
        let (seg, off) = split_ref(r);
        let Some(m) = self.segments.get(seg as usize) else {
            return Err(ChunksError::BadRef {
                reference: r,
                detail: format!("segment {} does not exist", segment_name(seg)),
            });
        };
        let data: &[u8] = m;
        let off = off as usize;
        let corrupt = |offset: usize, detail: String| ChunksError::Corrupt {
            path: m.path().to_path_buf(),
            offset: offset as u64,
            detail,
        };
        if off < SEGMENT_HEADER_SIZE || off >= data.len() {
            return Err(ChunksError::BadRef {
                reference: r,
                detail: format!(
                    "offset {off} outside {} ({} bytes)",
                    m.path().display(),
                    data.len()
                ),
            });
        }
        let (len, n) =
            uvarint(&data[off..]).ok_or_else(|| corrupt(off, "bad chunk length varint".into()))?;
        let start = off + n;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        // encoding byte + data + crc must fit in the file.
        if len > data.len() || data.len() - start < len + 5 {
            return Err(corrupt(off, format!("chunk length {len} runs past the end of the file")));
        }
        let encoding = data[start];
        let body = &data[start + 1..start + 1 + len];
        let crc_at = start + 1 + len;
        let want = u32::from_be_bytes([
            data[crc_at],
            data[crc_at + 1],
            data[crc_at + 2],
            data[crc_at + 3],
        ]);
        let got = crc32_append(0, &data[start..crc_at]);
        if want != got {
            return Err(corrupt(
                off,
                format!("checksum mismatch: stored {want:#010x}, computed {got:#010x}"),
            ));
        }
        Ok(ChunkBytes { encoding, data: body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn write_read_and_cut_segments() -> TestResult {
        let dir = tempfile::tempdir()?;
        let mut w = ChunkWriter::with_segment_size(dir.path(), 100)?;
        let mut refs = Vec::new();
        for i in 0..20u8 {
            let data = vec![i; usize::from(i) * 3];
            refs.push((w.write_chunk(1, &data)?, data));
        }
        let files = w.finish()?;
        assert!(files.len() > 3, "{files:?}");
        let r = ChunkReader::open(dir.path())?;
        assert_eq!(r.num_segments(), files.len());
        for (cr, data) in &refs {
            let c = r.chunk(*cr)?;
            assert_eq!(c.encoding, 1);
            assert_eq!(c.data, &data[..]);
        }
        assert!(matches!(r.chunk(chunk_ref(99, 8)), Err(ChunksError::BadRef { .. })));
        assert!(matches!(r.chunk(chunk_ref(0, 3)), Err(ChunksError::BadRef { .. })));
        Ok(())
    }

    #[test]
    fn corruption_names_file_and_offset() -> TestResult {
        let dir = tempfile::tempdir()?;
        let mut w = ChunkWriter::new(dir.path())?;
        let a = w.write_chunk(1, b"hello world")?;
        let b = w.write_chunk(1, b"second")?;
        w.finish()?;
        let p = dir.path().join("000001");
        let mut bytes = std::fs::read(&p)?;
        bytes[split_ref(b).1 as usize + 4] ^= 0x40;
        std::fs::write(&p, &bytes)?;
        let r = ChunkReader::open(dir.path())?;
        assert_eq!(r.chunk(a)?.data, b"hello world");
        let e = r.chunk(b).unwrap_err().to_string();
        assert!(e.contains("000001") && e.contains(&format!("offset {}", split_ref(b).1)), "{e}");
        assert!(e.contains("checksum mismatch"), "{e}");

        bytes[0] = 0;
        std::fs::write(&p, &bytes)?;
        let e = ChunkReader::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("bad magic") && e.contains("000001"), "{e}");
        // Truncation: length runs past the end.
        let mut bytes = std::fs::read(&p)?;
        bytes[0] = 0x85;
        bytes.truncate(split_ref(b).1 as usize + 3);
        std::fs::write(&p, &bytes)?;
        let r = ChunkReader::open(dir.path())?;
        assert!(r.chunk(b).unwrap_err().to_string().contains("past the end"));
        Ok(())
    }
}
